//! `cargo xtask bench lifecycle`: `plan` of 1,000 secrets that need no
//! change, against the embedded local cloud (in-process, durable store in a
//! temp dir). The budget is 2 s; the figure printed is the median of
//! five plans, plus the configuration load time. Then `apply` of 1,000 new
//! secrets (one `count` block) with parallelism 1 and 10, on the embedded
//! cloud in-process and on `rota local serve` over loopback HTTP (V1
//! signatures, the client's default rate limits), each run on fresh names.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::Instant;

use rota_engine::config::{Config, LoadOptions};
use rota_engine::plan::{PlanMode, PlanOptions};
use rota_engine::{Ownership, apply::NoProgress};
use rota_kms::credentials::StaticCredentials;
use rota_kms::{Endpoints, HttpTransport, KmsClient, SignatureVersion, Transport};
use rota_local::{LocalCloud, World};

const N: usize = 1_000;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cloud = LocalCloud::open(dir.path().join("data"), World::default())
        .await
        .expect("local cloud");
    let client = KmsClient::new(Arc::new(cloud));
    let cfg_dir = dir.path().join("config");
    std::fs::create_dir_all(&cfg_dir).expect("config dir");
    let mut text = String::new();
    for i in 0..N {
        text.push_str(&format!(
            "resource \"alicloud_kms_secret\" \"s{i}\" {{\n  secret_name = \"bench-{i:04}\"\n  secret_data = \"value-{i}\"\n  version_id  = \"v1\"\n  description = \"secret {i}\"\n  tags = {{ env = \"bench\", n = \"{i}\" }}\n}}\n"
        ));
    }
    std::fs::write(cfg_dir.join("main.tf"), text).expect("write config");
    let opts = LoadOptions {
        path: cfg_dir.clone(),
        ..LoadOptions::default()
    };
    let ownership = Ownership::new("bench");

    let t = Instant::now();
    let config = Config::load(&opts).expect("config loads");
    let load_ms = t.elapsed().as_secs_f64() * 1e3;

    // Create everything once (not measured).
    let t = Instant::now();
    let plan = plan_of(&client, &config, &ownership).await;
    let report = rota_engine::apply(&client, &config, &plan, &ownership, &NoProgress).await;
    assert!(report.is_success(), "setup apply failed");
    let setup_s = t.elapsed().as_secs_f64();

    let mut runs = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let config = Config::load(&opts).expect("config loads");
        let plan = plan_of(&client, &config, &ownership).await;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        assert!(!plan.has_changes(), "the second plan must show no changes");
        runs.push(ms);
    }
    runs.sort_by(f64::total_cmp);
    println!(
        "lifecycle: {N} secrets, configuration load {load_ms:.0} ms, setup apply {setup_s:.1} s"
    );
    println!(
        "lifecycle: rota plan (load + read live + diff, no changes) median {:.0} ms (min {:.0}, max {:.0}) — budget 2000 ms",
        runs[2], runs[0], runs[4]
    );

    // apply of N new secrets, in-process and over HTTP, parallelism 1 and 10.
    let data = dir.path().join("apply-data");
    let cloud = LocalCloud::open(&data, World::default())
        .await
        .expect("local cloud");
    let server =
        rota_local::server::serve(cloud.clone(), rota_local::server::ServerConfig::default())
            .await
            .expect("serve");
    let http: Arc<dyn Transport> = Arc::new(
        HttpTransport::builder()
            .endpoints(
                Endpoints::custom("cn-hangzhou", &format!("http://{}", server.local_addr()))
                    .expect("endpoint"),
            )
            .credentials(Arc::new(StaticCredentials::new(cloud.root_credentials())))
            .signature_version(SignatureVersion::V1)
            .build()
            .expect("http transport"),
    );
    let backends = [
        ("embedded", KmsClient::new(Arc::new(cloud.clone()))),
        ("HTTP", KmsClient::new(http)),
    ];
    let apply_dir = dir.path().join("apply-config");
    std::fs::create_dir_all(&apply_dir).expect("config dir");
    std::fs::write(
        apply_dir.join("main.tf"),
        format!(
            "variable \"prefix\" {{\n  type = string\n}}\nresource \"alicloud_kms_secret\" \"s\" {{\n  count       = {N}\n  secret_name = \"${{var.prefix}}-${{count.index}}\"\n  secret_data = \"value-${{count.index}}\"\n  version_id  = \"v1\"\n  tags        = {{ env = \"bench\" }}\n}}\n"
        ),
    )
    .expect("write config");
    for (backend, client) in &backends {
        for parallelism in [1usize, 10] {
            let prefix = format!("{backend}-p{parallelism}");
            let opts = LoadOptions {
                path: apply_dir.clone(),
                vars: vec![("prefix".into(), prefix.clone())],
                ..LoadOptions::default()
            };
            let ownership = Ownership::new(prefix.replace(' ', "-"));
            let config = Config::load(&opts).expect("config loads");
            let plan = plan_of(client, &config, &ownership).await;
            let t = Instant::now();
            let report = rota_engine::apply_with(
                client,
                &config,
                &plan,
                &ownership,
                &NoProgress,
                rota_engine::ApplyOptions { parallelism },
            )
            .await;
            let s = t.elapsed().as_secs_f64();
            assert!(report.is_success(), "apply failed");
            assert_eq!(report.counts().0, N);
            println!(
                "lifecycle: apply of {N} new secrets, {backend}, parallelism {parallelism:>2}: {s:.2} s ({:.0} secrets/s)",
                N as f64 / s
            );
        }
    }
    server.shutdown().await;
}

/// `rota plan` of `config`.
async fn plan_of(client: &KmsClient, config: &Config, ownership: &Ownership) -> rota_engine::Plan {
    rota_engine::plan(
        client,
        config,
        &PlanOptions::new(PlanMode::Apply, ownership.clone()),
    )
    .await
    .expect("plan")
}

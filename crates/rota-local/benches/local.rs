//! `cargo xtask bench local`: the local KMS under load on this machine.
//!
//! Prints, for GetSecretValue over HTTP keep-alive (V1-signed, rota-kms's
//! `HttpTransport`) and in-process (`LocalCloud`), at concurrency 1, 16 and
//! 64: requests per second, p50 and p99 latency; then durable
//! PutSecretValue writes per second at concurrency 1 and 64 (every write
//! acknowledged only after its group commit is on disk). The server and the
//! load generator share the machine's cores, each on its own runtime.
//! `ROTA_BENCH_SECS` sets the seconds per measurement (default 3).

// A benchmark's job is to print its figures.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rota_kms::credentials::StaticCredentials;
use rota_kms::kms::{CreateSecret, GetSecretValue, PutSecretValue};
use rota_kms::{Endpoints, HttpTransport, KmsClient, SecretString, SignatureVersion, Transport};
use rota_local::LocalCloud;
use rota_local::server::{ServerConfig, serve};

struct Stats {
    ops: usize,
    secs: f64,
    p50: Duration,
    p99: Duration,
}

async fn measure<F, Fut>(concurrency: usize, secs: f64, op: F) -> Stats
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(4096);
            let mut i = 0;
            while Instant::now() < deadline {
                let t = Instant::now();
                op(w, i).await;
                lat.push(t.elapsed());
                i += 1;
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("worker"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Stats {
        ops: all.len(),
        secs: elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

fn report(what: &str, c: usize, s: &Stats) {
    println!(
        "{what:<44} c={c:<3} {:>9.0} ops/s   p50 {:>8.1} µs   p99 {:>8.1} µs   ({} ops)",
        s.ops as f64 / s.secs,
        s.p50.as_secs_f64() * 1e6,
        s.p99.as_secs_f64() * 1e6,
        s.ops
    );
}

fn main() {
    let secs: f64 = std::env::var("ROTA_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let dir = tempfile::tempdir().expect("temp dir");
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-server")
        .enable_all()
        .build()
        .expect("runtime");
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-client")
        .enable_all()
        .build()
        .expect("runtime");
    let cloud = server_rt.block_on(async {
        LocalCloud::options(dir.path())
            .root_key("LTAIbenchroot0000001", "bench-secret")
            .open()
            .await
            .expect("open")
    });
    let server = server_rt
        .block_on(serve(cloud.clone(), ServerConfig::default()))
        .expect("serve");
    let addr = server.local_addr();
    println!(
        "rota-local bench: {secs} s per measurement, data dir on {}",
        dir.path().display()
    );

    client_rt.block_on(async move {
        let local = KmsClient::new(Arc::new(cloud.clone()));
        local
            .send(&CreateSecret {
                secret_name: "bench/get".into(),
                secret_data: SecretString::new("x".repeat(100)),
                version_id: "v1".into(),
                ..CreateSecret::default()
            })
            .await
            .expect("create");
        let http: Arc<dyn Transport> = Arc::new(
            HttpTransport::builder()
                .endpoints(
                    Endpoints::custom("cn-hangzhou", &format!("http://{addr}")).expect("endpoint"),
                )
                .credentials(Arc::new(StaticCredentials::new(cloud.root_credentials())))
                .signature_version(SignatureVersion::V1)
                .retry(rota_kms::http::RetryPolicy::none())
                .build()
                .expect("http transport"),
        );
        let http = KmsClient::new(http);
        // Warm up connections.
        let _ = measure(64, 0.5, {
            let http = http.clone();
            move |_, _| {
                let http = http.clone();
                async move {
                    http.send(&GetSecretValue::current("bench/get"))
                        .await
                        .expect("get");
                }
            }
        })
        .await;
        for c in [1, 16, 64] {
            let client = http.clone();
            let s = measure(c, secs, move |_, _| {
                let client = client.clone();
                async move {
                    client
                        .send(&GetSecretValue::current("bench/get"))
                        .await
                        .expect("get");
                }
            })
            .await;
            report("GetSecretValue over HTTP keep-alive (V1)", c, &s);
        }
        for c in [1, 16, 64] {
            let client = local.clone();
            let s = measure(c, secs, move |_, _| {
                let client = client.clone();
                async move {
                    client
                        .send(&GetSecretValue::current("bench/get"))
                        .await
                        .expect("get");
                }
            })
            .await;
            report("GetSecretValue in-process", c, &s);
        }
        for c in [1, 64] {
            for w in 0..c {
                local
                    .send(&CreateSecret {
                        secret_name: format!("bench/put/{c}/{w}"),
                        secret_data: SecretString::new("v0"),
                        version_id: "v0".into(),
                        ..CreateSecret::default()
                    })
                    .await
                    .expect("create");
            }
            let client = local.clone();
            let s = measure(c, secs, move |w, i| {
                let client = client.clone();
                async move {
                    client
                        .send(&PutSecretValue {
                            secret_name: format!("bench/put/{c}/{w}"),
                            version_id: format!("v{}", i + 1),
                            secret_data: SecretString::new(format!("value-{i}")),
                            secret_data_type: None,
                            version_stages: None,
                        })
                        .await
                        .expect("put");
                }
            })
            .await;
            report("durable PutSecretValue in-process", c, &s);
        }
    });
    server_rt.block_on(server.shutdown());
}

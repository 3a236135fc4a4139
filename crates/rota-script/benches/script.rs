//! `cargo xtask bench script`: the overhead of Rhai hooks.
//!
//! - the raw Rhai call of a no-op function in a cached AST (the floor);
//! - a no-op `set` hook through the plugin API (`RotationPlugin::set`): the
//!   `ctx` map with its secrets, the call environment, a tokio blocking
//!   thread and back — what a rotation step pays. Goal ≤ 20 µs;
//! - a `set` hook doing one `kms::get` on the embedded local cloud
//!   (in-process, durable store in a temp dir), and that `GetSecretValue`
//!   alone from Rust for comparison.
//!
//! Figures are medians of five rounds.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rota_kms::kms::CreateSecret;
use rota_kms::{KmsClient, OpenApi, SecretString, Transport};
use rota_local::{LocalCloud, World};
use rota_rotation::{CrashHook, RotationPlugin as _, SecretInfo, StepContext};
use rota_script::{RuntimeOptions, ScriptPlugin, ScriptRuntime};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn per_call<F: AsyncFnMut()>(n: u32, mut f: F) -> f64 {
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..n {
            f().await;
        }
        rounds.push(t.elapsed().as_secs_f64() * 1e6 / f64::from(n));
    }
    median(rounds)
}

async fn run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cloud = LocalCloud::open(dir.path().join("cloud"), World::default())
        .await
        .expect("local cloud");
    let transport: Arc<dyn Transport> = Arc::new(cloud);
    let kms = KmsClient::new(transport.clone());
    let api = OpenApi::new(transport);
    kms.send(&CreateSecret {
        secret_name: "bench/s".into(),
        secret_data: SecretString::new("value"),
        version_id: "v1".into(),
        ..Default::default()
    })
    .await
    .expect("create");

    let plugin_dir = dir.path().join("plugins/bench");
    std::fs::create_dir_all(&plugin_dir).expect("dir");
    std::fs::write(
        plugin_dir.join("plugin.toml"),
        "name = \"bench\"\nversion = \"1\"\n[settings.get]\ntype = \"bool\"\ndefault = false\n",
    )
    .expect("manifest");
    std::fs::write(
        plugin_dir.join("hooks.rhai"),
        "fn noop(ctx) { }\nfn set(ctx) { if ctx.settings.get { kms::get(\"bench/s\"); } }\nfn test(ctx) { }\n",
    )
    .expect("hooks");
    let runtime = ScriptRuntime::new(RuntimeOptions::default());
    let plugin = ScriptPlugin::load(&runtime, &plugin_dir).expect("plugin");
    let (ast, _) = runtime
        .compile_file(&plugin_dir.join("hooks.rhai"))
        .expect("ast");

    let ctx = |get: bool| StepContext {
        secret: SecretInfo {
            name: "bench/s".into(),
            secret_type: "Generic".into(),
            ..Default::default()
        },
        token: "rota-bench".into(),
        pending: Some(SecretString::new("pending-value")),
        current: Some(SecretString::new("current-value")),
        previous: None,
        settings: Arc::new(serde_json::json!({ "get": get })),
        api: api.clone(),
        kms: kms.clone(),
        deadline: tokio::time::Instant::now() + Duration::from_secs(3600),
        crash: CrashHook::none(),
        span: tracing::Span::none(),
    };

    // The raw Rhai call: no environment, no ctx.
    let engine = runtime.engine();
    let n = 200_000;
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..n {
            let mut scope = rhai::Scope::new();
            let _: rhai::Dynamic = engine
                .call_fn_with_options(
                    rhai::CallFnOptions::new().eval_ast(false),
                    &mut scope,
                    &ast,
                    "noop",
                    (rhai::Dynamic::UNIT,),
                )
                .expect("noop");
        }
        rounds.push(t.elapsed().as_secs_f64() * 1e9 / f64::from(n));
    }
    let raw_ns = median(rounds);

    let noop_ctx = ctx(false);
    let hook_us = per_call(20_000, async || plugin.set(&noop_ctx).await.expect("set")).await;
    let get_ctx = ctx(true);
    let get_us = per_call(5_000, async || plugin.set(&get_ctx).await.expect("set")).await;
    let rust_get_us = per_call(5_000, async || {
        kms.get_secret_value("bench/s").await.expect("get");
    })
    .await;

    println!("script: raw Rhai call of a no-op fn (cached AST)        {raw_ns:>9.0} ns");
    println!(
        "script: no-op hook via RotationPlugin::set              {hook_us:>9.2} µs   (goal ≤ 20 µs: {})",
        if hook_us <= 20.0 { "met" } else { "NOT met" }
    );
    println!("script: hook doing one kms::get (embedded local cloud)  {get_us:>9.2} µs");
    println!("script: the same GetSecretValue from Rust               {rust_get_us:>9.2} µs");
    println!(
        "script: hook overhead on top of the kms call             {:>9.2} µs",
        get_us - rust_get_us
    );
}

//! `cargo xtask bench plugin`: the overhead of a no-op native hook call with
//! a 1 KiB payload (example-echo's `test` step, which only checks that the
//! pending value is not empty), measured two ways:
//!
//! - **direct**: through the plugin table on the calling thread
//!   (`LoadedPlugin::invoke`): JSON decode in the plugin, `catch_unwind`,
//!   the answer buffer and its free. Goal: ≤ 5 µs.
//! - **host path**: `RotationPlugin::test` as the engine calls it: the
//!   payload built from a `StepContext`, a `spawn_blocking` hop with the
//!   step's deadline, and the direct call.
//!
//! The bench builds example-echo in release mode first (into
//! target/plugin-bench), so it needs nothing prepared.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rota_kms::{KmsClient, OpenApi, SecretString, Transport};
use rota_plugin_host::StepKind;
use rota_rotation::{CrashHook, RotationPlugin, SecretInfo, StepContext};
use serde_json::json;

fn build_echo() -> std::path::PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap();
    let target = root.join("target/plugin-bench");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "example-echo",
            "--target-dir",
        ])
        .arg(&target)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building example-echo failed");
    target.join("release").join(format!(
        "{}example_echo{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

fn per_call(elapsed: Duration, n: u32) -> f64 {
    elapsed.as_secs_f64() * 1e6 / f64::from(n)
}

fn main() {
    let plugin = rota_plugin_host::load(&build_echo()).expect("example-echo loads");
    let value = "x".repeat(1024);
    let input = json!({
        "step": "test", "secret": {"name": "bench", "type": "Generic"}, "token": "t",
        "pending": value, "current": null, "previous": null, "settings": {}
    })
    .to_string();

    // Direct, through the table.
    let n = 200_000;
    for _ in 0..10_000 {
        plugin.invoke(StepKind::Test, input.as_bytes()).unwrap();
    }
    let t = Instant::now();
    for _ in 0..n {
        plugin.invoke(StepKind::Test, input.as_bytes()).unwrap();
    }
    let direct = per_call(t.elapsed(), n);

    // The host path the engine uses.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hosted = rt.block_on(async {
        let cloud =
            rota_local::LocalCloud::open(dir.path().join("cloud"), rota_local::World::default())
                .await
                .unwrap();
        let transport: Arc<dyn Transport> = Arc::new(cloud);
        let ctx = StepContext {
            secret: SecretInfo {
                name: "bench".into(),
                secret_type: "Generic".into(),
                ..Default::default()
            },
            token: "t".into(),
            pending: Some(SecretString::new(value.clone())),
            current: None,
            previous: None,
            settings: Arc::new(json!({})),
            api: OpenApi::new(transport.clone()),
            kms: KmsClient::new(transport),
            deadline: tokio::time::Instant::now() + Duration::from_secs(3600),
            crash: CrashHook::none(),
            span: tracing::Span::none(),
        };
        let n = 20_000;
        for _ in 0..1_000 {
            plugin.test(&ctx).await.unwrap();
        }
        let t = Instant::now();
        for _ in 0..n {
            plugin.test(&ctx).await.unwrap();
        }
        per_call(t.elapsed(), n)
    });

    println!("plugin: no-op native hook call, 1 KiB payload");
    println!("  direct (plugin table, same thread): {direct:>8.2} µs/call  (goal ≤ 5 µs)");
    println!("  host path (payload + spawn_blocking + deadline): {hosted:>8.2} µs/call");
}

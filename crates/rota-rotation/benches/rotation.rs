//! `cargo xtask bench rotation`: full rotations per second with the
//! `password` plugin on the embedded local cloud (in-process, durable store
//! in a temp dir): 1,000 Generic secrets due at once, rotated through
//! [`RotationJobs`] (per-secret lock, protocol, step history in SQLite with
//! `synchronous=FULL`) at concurrency 1 and 16, plus per-step p50/p99
//! latency from the step history. Goal: ≥ 500 rotations/s.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rota_kms::kms::CreateSecret;
use rota_kms::{KmsClient, OpenApi, SecretString, Transport};
use rota_local::{LocalCloud, World};
use rota_rotation::{
    HistorySink, MemoryHistory, PluginRegistry, RotationJobs, RotationRequest, Rotator,
    SecretLocks, SqliteHistory, StepEvent, slot_token,
};

const N: usize = 1_000;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        for concurrency in [1, 16] {
            run(concurrency).await;
        }
    });
}

/// Records to SQLite and keeps a copy in memory for the latency figures.
#[derive(Debug)]
struct Both(SqliteHistory, MemoryHistory);

impl HistorySink for Both {
    fn record(&self, e: StepEvent) {
        self.1.record(e.clone());
        self.0.record(e);
    }
}

async fn run(concurrency: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let cloud = LocalCloud::open(dir.path().join("data"), World::default())
        .await
        .expect("local cloud");
    let transport: Arc<dyn Transport> = Arc::new(cloud.clone());
    let kms = KmsClient::new(transport.clone());
    for i in 0..N {
        kms.send(&CreateSecret {
            secret_name: format!("app/s{i:04}"),
            secret_data: SecretString::new("initial"),
            version_id: "v1".into(),
            ..Default::default()
        })
        .await
        .expect("create");
    }
    let history = Arc::new(Both(
        SqliteHistory::open(dir.path().join("scheduler.db")).expect("history"),
        MemoryHistory::default(),
    ));
    let rotator = Rotator::new(
        kms,
        OpenApi::new(transport),
        Arc::new(PluginRegistry::with_builtins()),
        history.clone(),
    );
    let jobs = Arc::new(RotationJobs::new(
        rotator,
        SecretLocks::new(dir.path().join("locks")),
    ));
    let slot = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("slot");
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let jobs = jobs.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= N {
                    break;
                }
                let secret = format!("app/s{i:04}");
                let req = RotationRequest {
                    timeout: None,
                    fence: Default::default(),
                    verify: None,
                    token: slot_token(&secret, slot),
                    secret,
                    plugin: "password".into(),
                    settings: serde_json::Value::Null,
                    attempt: 1,
                };
                jobs.rotate(&req).await.expect("rotation");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let elapsed = started.elapsed();
    println!(
        "rotation: {N} full rotations, password plugin, concurrency {concurrency:>2}: {:.2} s, {:.0} rotations/s",
        elapsed.as_secs_f64(),
        N as f64 / elapsed.as_secs_f64()
    );
    let mut by_step: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for e in history.1.events() {
        by_step.entry(e.step.name()).or_default().push(e.duration);
    }
    for step in ["inspect", "create", "set", "test", "finish"] {
        let Some(d) = by_step.get_mut(step) else {
            continue;
        };
        d.sort();
        let q = |p: f64| d[((d.len() as f64 - 1.0) * p).round() as usize];
        println!(
            "  step {step:<8} p50 {:>7.3} ms  p99 {:>7.3} ms",
            q(0.5).as_secs_f64() * 1e3,
            q(0.99).as_secs_f64() * 1e3
        );
    }
    drop(cloud);
}

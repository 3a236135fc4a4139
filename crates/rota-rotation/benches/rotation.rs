//! `cargo xtask bench rotation`: full rotations per second with the
//! `password` plugin on the embedded local cloud (in-process, durable store
//! in a temp dir): 1,000 Generic secrets due at once, rotated through
//! [`RotationJobs`] (per-secret lock, protocol, step history in SQLite with
//! `synchronous=FULL`) at concurrency 1 and 16, plus per-step p50/p99
//! latency from the step history. Goal: ≥ 500 rotations/s. Then the cost of
//! verified rotations soaking: 1,000 rotations with a `verify` block (an
//! HTTP check against a local endpoint every 5 s, soak 20 s) all soaking at
//! once, and the CPU the process uses over the soak.
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
        soak().await;
    });
}

/// utime + stime of this process, in seconds (100 ticks per second).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (get(11) + get(12)) as f64 / 100.0
}

/// A health endpoint answering 200 to anything; returns its URL.
fn health_endpoint() -> String {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/healthz", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            });
        }
    });
    url
}

async fn soak() {
    const SOAK: Duration = Duration::from_secs(20);
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
    let rotator = Rotator::new(
        kms,
        OpenApi::new(transport),
        Arc::new(PluginRegistry::with_builtins()),
        Arc::new(MemoryHistory::default()),
    );
    let jobs = Arc::new(RotationJobs::new(
        rotator,
        SecretLocks::new(dir.path().join("locks")),
    ));
    let spec = rota_rotation::verify::VerifySpec {
        soak: SOAK,
        interval: Duration::from_secs(5),
        http: vec![rota_rotation::verify::HttpCheck {
            url: health_endpoint(),
            expect_status: 200,
            timeout: Duration::from_secs(5),
        }],
        prometheus: Vec::new(),
        plugin_hook: false,
        plugin_hook_required: false,
        on_failure: rota_rotation::verify::OnVerifyFailure::Rollback,
        retries: 3,
    };
    let slot = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("slot");
    let started = Instant::now();
    let cpu0 = cpu_seconds();
    let mut tasks = Vec::new();
    for i in 0..N {
        let jobs = jobs.clone();
        let spec = spec.clone();
        tasks.push(tokio::spawn(async move {
            let secret = format!("app/s{i:04}");
            let req = RotationRequest {
                timeout: None,
                fence: Default::default(),
                verify: Some(spec),
                adoption: None,
                token: slot_token(&secret, slot),
                secret,
                plugin: "password".into(),
                settings: serde_json::Value::Null,
                attempt: 1,
            };
            jobs.rotate(&req).await.expect("verified rotation");
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let (wall, cpu) = (started.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    println!(
        "soak: {N} verified rotations soaking {} s at once (an HTTP check every 5 s each): {wall:.1} s in all, {cpu:.2} s CPU = {:.1} % of a core (rotations included)",
        SOAK.as_secs(),
        100.0 * cpu / wall
    );
    drop(cloud);
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
                    adoption: None,
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

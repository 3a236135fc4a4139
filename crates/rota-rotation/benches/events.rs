//! Event delivery through one webhook sink: the outbox in a SQLite file
//! (`synchronous=FULL`, as the daemon's), the deliverer as the daemon runs
//! it, and a loopback receiver that answers 200 at once (keep-alive).
//!
//! - latency: 1,000 events written one at a time, 5 ms apart, each timed
//!   from its write to its arrival at the receiver (p50, p99, max);
//! - throughput: 20,000 events about 200 secrets written in batches of
//!   500, timed until the last one arrived (events/s).
#![allow(clippy::print_stdout)]

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rota_rotation::events::deliver::Deliverer;
use rota_rotation::events::{Events, EventsConfig, SinkSpec, SinkTarget, event_id};
use rota_scheduler::{Clock, SqliteStore, SystemClock};

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

/// A receiver answering 200 to every POST; records when each id arrived.
fn receiver() -> (String, Arrivals) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let arrivals: Arrivals = Arc::default();
    let a = arrivals.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let a = a.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut conn = conn;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let (mut length, mut id) = (0usize, String::new());
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            match k.trim().to_ascii_lowercase().as_str() {
                                "content-length" => length = v.trim().parse().unwrap_or(0),
                                "webhook-id" => id = v.trim().to_owned(),
                                _ => {}
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    a.lock().expect("lock").insert(id, Instant::now());
                    if conn
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (url, arrivals)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(SqliteStore::open(dir.path().join("scheduler.db")).expect("store"));
        let (url, arrivals) = receiver();
        let events = Arc::new(Events::new(
            store,
            EventsConfig {
                sinks: vec![SinkSpec {
                    name: "hook".into(),
                    target: SinkTarget::Webhook {
                        url,
                        key: Some(rota_kms::SecretString::new("bench-key")),
                        timeout: Duration::from_secs(5),
                    },
                    types: vec![],
                    secrets: vec![],
                    retry_for: Duration::from_secs(3600),
                    max_pending: 1_000_000,
                }],
                ..Default::default()
            },
            "rota://bench",
            Arc::new(SystemClock::new()) as Arc<dyn Clock>,
        ));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let deliverer = Arc::new(Deliverer::new(events.clone(), "bench").expect("deliverer"));
        let task = tokio::spawn(deliverer.run(stopped));

        // Latency, one event at a time.
        const ONE_BY_ONE: usize = 1_000;
        let mut written = Vec::with_capacity(ONE_BY_ONE);
        for i in 0..ONE_BY_ONE {
            let id = event_id(&["latency", &i.to_string()]);
            let e = events.event(
                id.clone(),
                "rotation.rotated",
                &format!("app/s{:03}", i % 50),
                events.now(),
                serde_json::json!({ "rotation": "bench", "plugin": "password", "attempt": 1 }),
            );
            let ev = events.clone();
            let at = Instant::now();
            tokio::task::spawn_blocking(move || ev.append_blocking(&[e]))
                .await
                .expect("join")
                .expect("append");
            written.push((id, at));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while arrivals.lock().expect("lock").len() < ONE_BY_ONE && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut lat: Vec<Duration> = {
            let a = arrivals.lock().expect("lock");
            written
                .iter()
                .filter_map(|(id, at)| a.get(id).map(|t| t.duration_since(*at)))
                .collect()
        };
        lat.sort();
        println!(
            "events latency (write → receiver, one webhook sink, SQLite outbox, {} events 5 ms apart): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            lat.len(),
            percentile(&lat, 0.5).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3,
            lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3
        );

        // Throughput, batches.
        const MANY: usize = 20_000;
        arrivals.lock().expect("lock").clear();
        let started = Instant::now();
        for batch in 0..MANY / 500 {
            let list: Vec<_> = (0..500)
                .map(|j| {
                    let i = batch * 500 + j;
                    events.event(
                        event_id(&["throughput", &i.to_string()]),
                        "rotation.rotated",
                        &format!("app/s{:03}", i % 200),
                        events.now(),
                        serde_json::json!({ "rotation": "bench", "plugin": "password", "attempt": 1 }),
                    )
                })
                .collect();
            let ev = events.clone();
            tokio::task::spawn_blocking(move || ev.append_blocking(&list))
                .await
                .expect("join")
                .expect("append");
        }
        let deadline = Instant::now() + Duration::from_secs(600);
        while arrivals.lock().expect("lock").len() < MANY && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let n = arrivals.lock().expect("lock").len();
        println!(
            "events throughput (one webhook sink, 200 secrets, batches of 500): {n} delivered in {elapsed:.2} s = {:.0} events/s",
            n as f64 / elapsed
        );
        let _ = stop.send(true);
        let _ = task.await;
    });
}

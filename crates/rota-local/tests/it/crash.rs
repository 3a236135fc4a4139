//! Durability under SIGKILL: a child process (this test binary, re-executed
//! with `ROTA_LOCAL_CRASH_CHILD=<dir>`) creates secrets from 8 concurrent
//! tasks and prints `ack <name> <data>` after each acknowledged write; the
//! parent kills it with SIGKILL mid-stream, reopens the data directory and
//! checks every acknowledged write. Several rounds on the same directory.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use rota_kms::kms::CreateSecret;
use rota_kms::{KmsClient, SecretString};

use crate::common::say;

const CHILD_ENV: &str = "ROTA_LOCAL_CRASH_CHILD";

/// In the child process: write until killed. In a normal run: nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_writer_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let round = std::env::var("ROTA_LOCAL_CRASH_ROUND").unwrap_or_default();
    let clock = rota_local::ManualClock::new(crate::common::start_time());
    let cloud = crate::common::open(std::path::Path::new(&dir), &clock).await;
    let client = KmsClient::new(Arc::new(cloud));
    let mut tasks = Vec::new();
    for t in 0..8 {
        let client = client.clone();
        let round = round.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("crash/r{round}/t{t}/{i}");
                let data = format!("data-{round}-{t}-{i}");
                client
                    .send(&CreateSecret {
                        secret_name: name.clone(),
                        secret_data: SecretString::new(data.clone()),
                        version_id: "v1".into(),
                        ..CreateSecret::default()
                    })
                    .await
                    .unwrap();
                say(&format!("ack {name} {data}"));
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: Vec<(String, String)> = Vec::new();
    for (round, stop_after) in [(0, 40), (1, 150), (2, 7), (3, 300)] {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash::crash_writer_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .env("ROTA_LOCAL_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut n = 0;
        while n < stop_after {
            let line = lines.next().expect("the child stopped early").unwrap();
            if let Some(rest) = line.strip_prefix("ack ") {
                let (name, data) = rest.split_once(' ').unwrap();
                acked.push((name.to_owned(), data.to_owned()));
                n += 1;
            }
        }
        child.kill().unwrap(); // SIGKILL
        // Acks printed between our last read and the kill count too.
        for line in lines.map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("ack ") {
                let (name, data) = rest.split_once(' ').unwrap();
                acked.push((name.to_owned(), data.to_owned()));
            }
        }
        let _ = child.wait();
        let clock = rota_local::ManualClock::new(crate::common::start_time());
        let cloud = crate::common::open(dir.path(), &clock).await;
        let client = KmsClient::new(Arc::new(cloud));
        for (name, data) in &acked {
            let v = client
                .get_secret_value(name)
                .await
                .unwrap_or_else(|e| panic!("round {round}: acknowledged {name} lost: {e}"));
            assert_eq!(v.secret_data.expose_secret(), data, "round {round}: {name}");
        }
    }
    assert!(acked.len() >= 497);
}

/// A data directory that lost its database (kms.db deleted or truncated
/// while master.key remains, or only the WAL left) is refused at start,
/// with what to do, and nothing in it is touched.
#[tokio::test]
async fn a_lost_database_is_refused_and_nothing_is_touched() {
    let clock = rota_local::ManualClock::new(crate::common::start_time());
    for damage in ["truncated", "deleted", "wal only"] {
        let dir = tempfile::tempdir().unwrap();
        {
            let cloud = crate::common::open(dir.path(), &clock).await;
            KmsClient::new(Arc::new(cloud.clone()))
                .send(&CreateSecret {
                    secret_name: "lost/one".into(),
                    secret_data: SecretString::new("x"),
                    version_id: "v1".into(),
                    ..CreateSecret::default()
                })
                .await
                .unwrap();
        }
        let db = dir.path().join("kms.db");
        let wal = dir.path().join("kms.db-wal");
        // The writer thread closes the database on its own after the cloud
        // is dropped (SQLite then removes the WAL): wait for it, bounded.
        for _ in 0..200 {
            if !wal.exists() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(!wal.exists(), "the database was not closed");
        match damage {
            "truncated" => std::fs::write(&db, b"").unwrap(),
            "deleted" => std::fs::remove_file(&db).unwrap(),
            _ => {
                std::fs::remove_file(&db).unwrap();
                std::fs::remove_file(dir.path().join("master.key")).unwrap();
                std::fs::write(&wal, b"wal bytes that may hold data").unwrap();
            }
        }
        let listing = |d: &std::path::Path| -> Vec<(String, Vec<u8>)> {
            let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(d)
                .unwrap()
                .flatten()
                .filter(|e| e.path().is_file())
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).unwrap(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        let before = listing(dir.path());
        let err = crate::common::options(dir.path(), &clock, crate::common::TEST_WORLD)
            .open()
            .await
            .err()
            .unwrap_or_else(|| panic!("{damage}: opened"))
            .to_string();
        assert!(
            err.contains("Nothing was changed. Restore kms.db from a backup"),
            "{damage}: {err}"
        );
        assert_eq!(
            listing(dir.path()),
            before,
            "{damage}: the directory changed"
        );
    }
}

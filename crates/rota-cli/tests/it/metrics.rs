//! `rota run --metrics-addr 127.0.0.1:0` as a child process on a temp
//! directory: the bound address is read from its log, `/healthz` and
//! `/metrics` are fetched with a plain HTTP/1.1 GET over a std `TcpStream`,
//! and the counters move when a scheduled rotation (every second, 6-field
//! cron) completes. The secret's value is a canary that must never appear
//! in a scrape; its name must not either (no secret-name labels). Every
//! wait polls a condition with a bounded number of attempts.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::eventually;
use crate::rotation::{cmd, ok, run_in};

const CANARY: &str = "canary-metrics-7f3e9a-initial-value";
const SECRET: &str = "app/metrics-canary-name";

fn write_config(dir: &std::path::Path) {
    std::fs::write(
        dir.join("main.tf"),
        format!(
            "resource \"alicloud_kms_secret\" \"db\" {{\n  secret_name = \"{SECRET}\"\n  secret_data = \"{CANARY}\"\n  version_id  = \"v1\"\n}}\n\n\
             rotation \"apps\" {{\n  secrets  = [\"{SECRET}\"]\n  schedule = \"*/1 * * * * *\"\n  jitter   = false\n  plugin   = \"password\"\n}}\n"
        ),
    )
    .unwrap();
}

/// One HTTP/1.1 GET: status code and body.
pub(crate) fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

/// The sum of the samples whose series starts with `prefix` (a metric name
/// followed by `{` and leading labels, or the whole series); 0 when none.
fn sum(scrape: &str, prefix: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && l.starts_with(prefix))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// Collects the child's standard error in the background (so the pipe never
/// fills) and returns the lines seen so far.
pub(crate) fn collect_stderr(child: &mut Child) -> Arc<Mutex<Vec<String>>> {
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let err = child.stderr.take().unwrap();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

#[test]
fn metrics_move_after_a_scheduled_rotation_and_never_show_the_value() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    ok(&run_in(dir.path(), &["apply", "--auto-approve"]));
    let mut child = cmd(dir.path())
        .args(["run", "--metrics-addr", "127.0.0.1:0", "--grace", "10s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = collect_stderr(&mut child);

    // The bound address, from the one INFO line.
    let mut addr: Option<SocketAddr> = None;
    eventually("the metrics listening line", 300, || {
        addr = stderr.lock().unwrap().iter().find_map(|l| {
            l.contains("metrics listening")
                .then(|| l.rsplit_once("addr=")?.1.trim().parse().ok())
                .flatten()
        });
        addr.is_some()
    });
    let addr = addr.unwrap();

    // Healthy once the scheduler runs.
    let mut health = String::new();
    eventually("/healthz answering 200", 300, || {
        match get(addr, "/healthz") {
            Ok((200, body)) => {
                health = body;
                true
            }
            _ => false,
        }
    });
    assert!(
        health.starts_with("{\"status\":\"ok\",\"jobs\":1,"),
        "{health}"
    );

    let rotated = "rota_rotations_total{plugin=\"password\",outcome=\"rotated\"}";
    let (status, before) = get(addr, "/metrics").unwrap();
    assert_eq!(status, 200, "{before}");
    let (rotated_before, kms_before) = (
        sum(&before, rotated),
        sum(&before, "rota_kms_requests_total{"),
    );

    // A scheduled rotation completes: the counters move.
    let mut after = String::new();
    eventually(
        "rota_rotations_total{outcome=\"rotated\"} to move",
        300,
        || {
            after = get(addr, "/metrics").map(|(_, b)| b).unwrap_or_default();
            sum(&after, rotated) > rotated_before
        },
    );
    assert!(
        sum(&after, "rota_kms_requests_total{") > kms_before,
        "before:\n{before}\nafter:\n{after}"
    );
    for action in [
        "GetSecretValue",
        "PutSecretValue",
        "UpdateSecretVersionStage",
    ] {
        assert!(
            sum(
                &after,
                &format!("rota_kms_requests_total{{action=\"{action}\"}}")
            ) >= 1.0,
            "{action} not counted:\n{after}"
        );
    }
    for step in ["create", "set", "test", "finish"] {
        let count = format!(
            "rota_rotation_step_duration_seconds_count{{plugin=\"password\",step=\"{step}\"}}"
        );
        assert!(sum(&after, &count) >= 1.0, "{step} not observed:\n{after}");
    }
    for line in [
        "# TYPE rota_rotations counter",
        "# TYPE rota_rotation_step_duration_seconds histogram",
        "rota_jobs_needing_attention 0",
        "# TYPE rota_next_slot_lag_seconds histogram",
        "rota_build_info{version=\"",
    ] {
        assert!(after.contains(line), "missing {line:?}:\n{after}");
    }
    assert!(
        sum(&after, "rota_next_slot_lag_seconds_count") >= 1.0,
        "{after}"
    );

    // Neither the value nor the secret's name is ever exposed.
    for scrape in [&before, &after] {
        assert!(!scrape.contains(CANARY), "the value leaked:\n{scrape}");
        assert!(!scrape.contains(SECRET), "a secret name label:\n{scrape}");
    }
    assert_eq!(get(addr, "/nope").unwrap().0, 404);

    // SIGTERM: drain, stop serving, exit 0.
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = child.wait().unwrap();
    let log = stderr.lock().unwrap().join("\n");
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(!log.contains(CANARY), "{log}");
    assert!(
        get(addr, "/healthz").is_err(),
        "the server still answers after exit"
    );
}

#[test]
fn a_taken_metrics_address_is_an_error_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = cmd(dir.path())
        .args(["run", "--metrics-addr", &addr])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot serve metrics on {addr}")),
        "{err}"
    );
    // Nothing was opened: no local cloud, no scheduler store.
    assert!(!dir.path().join(".rota").exists());

    // Not IP:PORT: a usage error.
    let o = cmd(dir.path())
        .args(["run", "--metrics-addr", "localhost"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

//! Rotation events end to end: `rota apply` and a `rota run` daemon write
//! events; a webhook receiver that is down for 30 s, then up, then down
//! again while the daemon is SIGKILLed and restarted, gets every event as
//! written (at least once, duplicates with the same id, in order per
//! secret) with a Standard Webhooks signature it checks itself; a command
//! sink gets the events on its standard input; the SSE stream serves them
//! and resumes after `Last-Event-ID`; no secret value appears anywhere.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::common::stdout;
use crate::metrics::collect_stderr;
use crate::rotation::{cmd, ok};

const CANARY: &str = "canary-events-2f7a91";
/// The signing key as Standard Webhooks writes it: whsec_ + base64.
const KEY: &str = "whsec_cm90YS1ldmVudHMtdGVzdC1rZXktMzJieXRlcyEh";
const SECRETS: usize = 4;

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    timestamp: i64,
    signature: String,
    body: String,
}

/// A webhook receiver on a fixed loopback port that can be taken down
/// (connections refused) and brought back.
struct Receiver {
    port: u16,
    up: Arc<AtomicBool>,
    got: Arc<Mutex<Vec<Delivery>>>,
    rejected: Arc<AtomicUsize>,
}

/// Checks a Standard Webhooks signature, written here from the
/// specification (not with Rota's code).
fn signature_ok(d: &Delivery) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(KEY.trim_start_matches("whsec_"))
        .unwrap();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", d.id, d.timestamp, d.body).as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    d.signature
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

impl Receiver {
    fn new() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let r = Self {
            port,
            up: Arc::new(AtomicBool::new(false)),
            got: Arc::default(),
            rejected: Arc::default(),
        };
        let (up, got, rejected) = (r.up.clone(), r.got.clone(), r.rejected.clone());
        std::thread::spawn(move || {
            loop {
                if !up.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
                listener.set_nonblocking(true).unwrap();
                while up.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            conn.set_nonblocking(false).unwrap();
                            let (got, rejected, up) = (got.clone(), rejected.clone(), up.clone());
                            std::thread::spawn(move || serve(conn, &got, &rejected, &up));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            }
        });
        r
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        // Let the listener thread follow.
        std::thread::sleep(Duration::from_millis(100));
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/rota", self.port)
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.got.lock().unwrap().clone()
    }
}

/// Answers requests on one connection: 200 for a signed event, 401 for a
/// bad signature; once the receiver is down, kept-alive connections are
/// dropped unanswered too.
fn serve(conn: TcpStream, got: &Mutex<Vec<Delivery>>, rejected: &AtomicUsize, up: &AtomicBool) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() || !up.load(Ordering::SeqCst) {
            return;
        }
        let d = Delivery {
            id: headers.get("webhook-id").cloned().unwrap_or_default(),
            timestamp: headers
                .get("webhook-timestamp")
                .and_then(|t| t.parse().ok())
                .unwrap_or(0),
            signature: headers
                .get("webhook-signature")
                .cloned()
                .unwrap_or_default(),
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        let status = if signature_ok(&d) {
            got.lock().unwrap().push(d);
            "200 OK"
        } else {
            rejected.fetch_add(1, Ordering::SeqCst);
            "401 Unauthorized"
        };
        if conn
            .write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes())
            .is_err()
        {
            return;
        }
    }
}

fn write_config(dir: &Path, hook: &str, schedule: &str) {
    let mut text = String::new();
    for i in 0..SECRETS {
        text.push_str(&format!(
            "resource \"alicloud_kms_secret\" \"s{i}\" {{\n  secret_name = \"app/s{i}\"\n  secret_data = \"{CANARY}-{i}\"\n  version_id  = \"v1\"\n}}\n"
        ));
    }
    let log = dir.join("command.log");
    text.push_str(&format!(
        "rotation \"apps\" {{\n  secrets  = [\"app/*\"]\n  schedule = \"{schedule}\"\n  jitter   = false\n}}\n\n\
         notify \"hook\" {{\n  url             = \"{hook}\"\n  signing_key_env = \"ROTA_HOOK_KEY\"\n  retry_for       = \"10m\"\n}}\n\n\
         notify \"pager\" {{\n  command = [\"sh\", \"-c\", \"cat >> {}\"]\n  types   = [\"rotation.rotated\", \"secret.*\"]\n}}\n",
        log.display()
    ));
    std::fs::write(dir.join("main.tf"), text).unwrap();
}

fn rota(dir: &Path) -> Command {
    let mut c = cmd(dir);
    c.env("ROTA_HOOK_KEY", KEY);
    c
}

fn daemon(dir: &Path) -> (Child, Arc<Mutex<Vec<String>>>) {
    let mut child = rota(dir)
        .args(["run", "--grace", "5s", "--events-addr", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = collect_stderr(&mut child);
    (child, lines)
}

/// The address a daemon logged for `--events-addr` (waits for the line).
pub(crate) fn events_addr(log: &Arc<Mutex<Vec<String>>>) -> String {
    until("the events address", Duration::from_secs(60), || {
        log.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("events listening"))
    });
    let lines = log.lock().unwrap();
    let line = lines
        .iter()
        .find(|l| l.contains("events listening"))
        .unwrap();
    line.split("addr=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

fn until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

/// `rota events -o json`: every event, oldest first.
fn outbox(dir: &Path) -> Vec<Value> {
    let o = rota(dir)
        .args(["events", "--limit", "100000", "-o", "json"])
        .output()
        .unwrap();
    ok(&o);
    serde_json::from_str::<Value>(&stdout(&o))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Deliveries of `sink` by state.
fn sink_counts(dir: &Path, sink: &str) -> (u64, u64) {
    let o = rota(dir)
        .args(["events", "--sinks", "-o", "json"])
        .output()
        .unwrap();
    ok(&o);
    let rows: Value = serde_json::from_str(&stdout(&o)).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["sink"] == sink)
        .map_or((0, 0), |r| {
            (
                r["pending"].as_u64().unwrap(),
                r["delivered"].as_u64().unwrap(),
            )
        })
}

/// Reads an SSE stream into a shared string until the test ends.
fn sse(addr: &str, last_event_id: Option<&str>) -> Arc<Mutex<String>> {
    let text: Arc<Mutex<String>> = Arc::default();
    let mut s = TcpStream::connect(addr).unwrap();
    let extra = last_event_id
        .map(|id| format!("Last-Event-ID: {id}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET /events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{extra}\r\n"
    )
    .unwrap();
    let sink = text.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

fn kill(child: &mut Child, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    child.wait().unwrap();
}

#[test]
fn a_receiver_down_for_30s_and_a_killed_daemon_lose_no_event() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let receiver = Receiver::new();
    write_config(d, &receiver.url(), "*/3 * * * * *");
    // apply writes secret.created (the receiver is down: they wait).
    ok(&rota(d).args(["apply", "--auto-approve"]).output().unwrap());

    let (mut daemon1, log1) = daemon(d);
    let addr = events_addr(&log1);
    let stream = sse(&addr, None);
    // Down for 30 s while rotations run every 3 s.
    std::thread::sleep(Duration::from_secs(30));
    let (pending_while_down, delivered_while_down) = sink_counts(d, "hook");
    assert!(pending_while_down > 0);
    assert_eq!(delivered_while_down, 0);
    receiver.set_up(true);
    let up = Instant::now();
    until("the backlog to drain", Duration::from_secs(90), || {
        sink_counts(d, "hook").0 == 0
    });
    crate::hosts::report(&format!(
        "events: {pending_while_down} events written while the receiver was down 30 s were delivered {:.1} s after it came back (retry backoff capped at 1 min)",
        up.elapsed().as_secs_f64()
    ));

    // Down again, with deliveries pending, and the daemon SIGKILLed.
    receiver.set_up(false);
    until("deliveries to pile up", Duration::from_secs(30), || {
        sink_counts(d, "hook").0 >= 4
    });
    kill(&mut daemon1, "-KILL");
    let killed_at = Instant::now();
    let (pending_at_kill, _) = sink_counts(d, "hook");
    let received_before_restart = receiver.deliveries().len();
    // No more rotations after the restart: the schedule moves far away.
    write_config(d, &receiver.url(), "@yearly");
    let (mut daemon2, log2) = daemon(d);
    let addr2 = events_addr(&log2);
    receiver.set_up(true);
    // A rotation the killed daemon held is taken over once its lease (30 s)
    // runs out, and writes its events then: wait past it, until nothing is
    // pending.
    until(
        "the deliveries pending at the kill",
        Duration::from_secs(120),
        || killed_at.elapsed() >= Duration::from_secs(40) && sink_counts(d, "hook").0 == 0,
    );
    assert!(receiver.deliveries().len() >= received_before_restart + pending_at_kill as usize);

    // The SSE stream had them; resuming after an id gives only later ones.
    let listed = outbox(d);
    let last_seq_written = listed.last().unwrap()["seq"].as_i64().unwrap();
    let resumed = sse(&addr2, Some(&(last_seq_written - 2).to_string()));
    until("the resumed stream", Duration::from_secs(10), || {
        resumed
            .lock()
            .unwrap()
            .contains(&format!("id: {last_seq_written}\n"))
    });
    let resumed = resumed.lock().unwrap().clone();
    assert!(
        !resumed.contains(&format!("id: {}\n", last_seq_written - 2)),
        "{resumed}"
    );
    assert!(resumed.contains("event: "), "{resumed}");
    let streamed = stream.lock().unwrap().clone();
    assert!(streamed.contains("event: rotation.rotated"), "{streamed}");
    // Nothing writes events from here on.
    kill(&mut daemon2, "-TERM");

    // What the outbox holds is what the receiver got.
    let written = outbox(d);
    let for_hook: Vec<&Value> = written
        .iter()
        .filter(|e| {
            e["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["sink"] == "hook")
        })
        .collect();
    assert!(for_hook.iter().all(|e| {
        e["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["sink"] != "hook" || x["state"] == "delivered")
    }));
    let got = receiver.deliveries();
    let mut by_id: BTreeMap<&str, Vec<&Delivery>> = BTreeMap::new();
    for g in &got {
        by_id.entry(&g.id).or_default().push(g);
    }
    let seq_of: HashMap<&str, i64> = written
        .iter()
        .map(|e| {
            (
                e["event"]["id"].as_str().unwrap(),
                e["seq"].as_i64().unwrap(),
            )
        })
        .collect();
    for e in &for_hook {
        let id = e["event"]["id"].as_str().unwrap();
        let copies = by_id
            .get(id)
            .unwrap_or_else(|| panic!("event {id} never arrived"));
        for c in copies {
            let body: Value = serde_json::from_str(&c.body).unwrap();
            assert_eq!(
                body, e["event"],
                "a delivery differs from the event written"
            );
        }
    }
    let duplicates = got.len() - by_id.len();
    // Per secret, first arrivals in the order written.
    let mut last_seq: HashMap<String, i64> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    for g in &got {
        if !seen.insert(g.id.clone()) {
            continue;
        }
        let body: Value = serde_json::from_str(&g.body).unwrap();
        let subject = body["subject"].as_str().unwrap().to_owned();
        let seq = seq_of[g.id.as_str()];
        if let Some(prev) = last_seq.insert(subject.clone(), seq) {
            assert!(prev < seq, "{subject}: event {seq} arrived before {prev}");
        }
    }
    let kinds: std::collections::BTreeSet<&str> = written
        .iter()
        .map(|e| e["event"]["type"].as_str().unwrap())
        .collect();
    for k in ["secret.created", "rotation.started", "rotation.rotated"] {
        assert!(kinds.contains(k), "{kinds:?}");
    }
    assert_eq!(receiver.rejected.load(Ordering::SeqCst), 0);
    // A tampered body fails the receiver's check.
    let mut tampered = got[0].clone();
    tampered.body = tampered
        .body
        .replace("rotation", "rotatiOn")
        .replace("secret.", "secreT.");
    assert_ne!(tampered.body, got[0].body);
    assert!(signature_ok(&got[0]) && !signature_ok(&tampered));

    // The command sink got its types only, one JSON document per line.
    let command_log = std::fs::read_to_string(d.join("command.log")).unwrap();
    let lines: Vec<Value> = command_log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|v| {
        let t = v["type"].as_str().unwrap();
        t == "rotation.rotated" || t.starts_with("secret.")
    }));

    // Never a value.
    let everything = format!(
        "{}\n{}\n{command_log}\n{streamed}\n{resumed}\n{}\n{}",
        serde_json::to_string(&written).unwrap(),
        got.iter()
            .map(|g| g.body.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        log1.lock().unwrap().join("\n"),
        log2.lock().unwrap().join("\n"),
    );
    assert!(!everything.contains(CANARY), "a secret value leaked");
    crate::hosts::report(&format!(
        "events: {} written, {} for the webhook, {} deliveries received ({duplicates} duplicates, same ids), {} pending at the SIGKILL delivered after the restart",
        written.len(),
        for_hook.len(),
        got.len(),
        pending_at_kill
    ));
}

#[test]
fn notify_blocks_are_checked_at_validation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("main.tf"),
        "notify \"a\" {\n  url = \"ftp://x\"\n}\n\
         notify \"b\" {\n  url = \"https://hooks.example/x\"\n  command = [\"true\"]\n}\n\
         notify \"c\" {\n  types = [\"rotation.exploded\"]\n  command = [\"true\"]\n}\n\
         notify \"d\" {\n  retry_for = \"soon\"\n}\n\
         notify \"e\" {\n  command = [\"true\"]\n  signing_key_env = \"K\"\n}\n",
    )
    .unwrap();
    let o = rota(d).args(["validate"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = crate::common::stderr(&o);
    for expected in [
        "notify url must be an http:// or https:// URL",
        "notify \"b\" has both url and command",
        "\"rotation.exploded\" matches no event type",
        "retry_for",
        "signing_key_env signs webhooks only",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    // A key variable that is not set stops the daemon before anything runs.
    std::fs::write(
        d.join("main.tf"),
        "notify \"hook\" {\n  url = \"http://127.0.0.1:9/x\"\n  signing_key_env = \"ROTA_TEST_UNSET_KEY\"\n}\n",
    )
    .unwrap();
    let o = cmd(d)
        .env_remove("ROTA_TEST_UNSET_KEY")
        .args(["run", "--once"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", crate::common::stderr(&o));
    assert!(
        crate::common::stderr(&o).contains("ROTA_TEST_UNSET_KEY (signing_key_env) is not set"),
        "{}",
        crate::common::stderr(&o)
    );
}

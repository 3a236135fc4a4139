//! `on_failure { webhook }`: a failing rotation POSTs a JSON notification to
//! a loopback stub — from `rota rotate` (a permanent failure) and from
//! `rota run --once` (the retry budget spent) — that names the secret,
//! rotation, step, error, attempt and time and never the secret's value;
//! a webhook that does not answer is logged, not fatal.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::common::{stderr, stdout};
use crate::rotation::{cmd, ok, run_in};

const CANARY: &str = "canary-notify-5c1d08";

/// A request the stub received: request line and body.
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// An HTTP stub on 127.0.0.1:0 that answers 200 to everything and records
/// each request. Returns its base URL.
fn stub() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let received: Received = Arc::default();
    let rec = received.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            rec.lock().unwrap().push((
                request_line.trim_end().to_owned(),
                String::from_utf8_lossy(&body).into_owned(),
            ));
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, received)
}

fn write_config(dir: &Path, webhook: &str) {
    std::fs::write(
        dir.join("main.tf"),
        format!(
            "resource \"alicloud_kms_secret\" \"plain\" {{\n  secret_name = \"bad/plain\"\n  secret_data = \"{CANARY}\"\n  version_id  = \"v1\"\n}}\n\n\
             rotation \"login\" {{\n  secrets      = [\"bad/plain\"]\n  schedule     = \"@daily\"\n  plugin       = \"password\"\n  settings     = {{ field = \"password\" }}\n  max_attempts = 1\n  on_failure {{\n    webhook = \"{webhook}\"\n  }}\n}}\n"
        ),
    )
    .unwrap();
}

fn check_notice(body: &str, event: &str) -> Value {
    assert!(
        !body.contains(CANARY),
        "the notification leaks the value: {body}"
    );
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["event"], event, "{v}");
    assert_eq!(v["secret"], "bad/plain", "{v}");
    assert_eq!(v["rotation"], "login", "{v}");
    assert_eq!(v["plugin"], "password", "{v}");
    assert_eq!(v["step"], "create", "{v}");
    assert_eq!(v["attempt"], 1, "{v}");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{v}");
    v
}

#[test]
fn a_failed_rotation_posts_a_notification_without_the_value() {
    let (url, received) = stub();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &format!("{url}/hooks/T0/s3cr3t-path"));
    ok(&run_in(dir.path(), &["apply", "--auto-approve"]));

    // `rota rotate`: the value is not JSON, so field mode fails permanently.
    let o = run_in(dir.path(), &["rotate", "bad/plain"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    {
        let got = received.lock().unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "POST /hooks/T0/s3cr3t-path HTTP/1.1");
        check_notice(&got[0].1, "failed");
    }

    // `rota run --once`: one attempt allowed, so the failure needs attention.
    let o = run_in(dir.path(), &["run", "--once", "--all-due-within", "24h"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:?}");
    check_notice(&got[1].1, "needs_attention");
    for text in [stdout(&o), stderr(&o)] {
        assert!(!text.contains(CANARY));
    }
}

#[test]
fn an_unreachable_webhook_is_logged_not_fatal() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &format!("http://127.0.0.1:{port}/hook/s3cr3t-path"),
    );
    ok(&run_in(dir.path(), &["apply", "--auto-approve"]));
    let o = cmd(dir.path())
        .args(["rotate", "bad/plain"])
        .output()
        .unwrap();
    // The rotation's own failure decides the exit code, nothing else.
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("bad/plain: failed in step create"),
        "{}",
        stdout(&o)
    );
    let err = stderr(&o);
    assert!(
        err.contains("the failure notification was not delivered"),
        "{err}"
    );
    assert!(
        !err.contains("s3cr3t-path"),
        "the webhook path is logged: {err}"
    );
}

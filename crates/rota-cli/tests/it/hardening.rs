//! Hostile input that used to crash or hang `rota`: each is now one clear
//! error (never "internal error", never a hang).

use crate::common::{run_in, stderr, stdout};

fn validate(text: &str) -> (Option<i32>, String) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("main.tf"), text).unwrap();
    let o = run_in(tmp.path(), &["validate"]);
    (o.status.code(), stderr(&o))
}

#[test]
fn expressions_that_panicked_or_never_ended_are_errors() {
    let resource = |arg: &str| {
        format!(
            "resource \"alicloud_kms_secret\" \"a\" {{\n  secret_name = \"a\"\n  secret_data = \"x\"\n  version_id  = \"v1\"\n  {arg}\n}}\n"
        )
    };
    let (code, err) = validate(&resource("recovery_window_in_days = 1 % 0"));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("recovery_window_in_days: the expression cannot be evaluated"),
        "{err}"
    );
    assert!(!err.contains("internal error"), "{err}");
    let (code, err) = validate(&resource("recovery_window_in_days = 7 / 0"));
    assert_eq!(code, Some(1), "{err}");
    assert!(!err.contains("internal error"), "{err}");
    let (code, err) = validate("locals {\n  n = format(\"%.999999999f\", 1.5)\n}\n");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("the precision is at most 100"), "{err}");
    let (code, err) = validate("locals {\n  z = file(\"/dev/zero\")\n}\n");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("it is not a regular file"), "{err}");
}

#[test]
fn a_value_file_is_bounded_and_regular() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run_in(
        tmp.path(),
        &[
            "secret",
            "put",
            "app/x",
            "--version-id",
            "v2",
            "--value-file",
            "/dev/zero",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot read the value from /dev/zero: it is not a regular file"),
        "{}",
        stderr(&o)
    );
    let big = tmp.path().join("big");
    std::fs::write(&big, vec![b'a'; 70 * 1024]).unwrap();
    let o = run_in(
        tmp.path(),
        &[
            "secret",
            "put",
            "app/x",
            "--version-id",
            "v2",
            "--value-file",
            "big",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("it is larger than 64 KiB"),
        "{}",
        stderr(&o)
    );
}

/// A stub answering every request with 503 and a body; returns its URL.
fn unavailable() -> String {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut conn = conn;
            let mut buf = [0u8; 8192];
            let _ = conn.read(&mut buf);
            let body = "{\"Code\":\"ServiceUnavailable\",\"Message\":\"busy\",\"RequestId\":\"r\"}";
            let _ = conn.write_all(
                format!(
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    url
}

/// A server that accepts connections and never answers; returns its URL.
fn silent() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    url
}

/// The configuration of the canary tests: a short read timeout (the
/// Terraform provider's `client_read_timeout`, in milliseconds), one
/// secret and its rotation.
const CANARY_CONFIG: &str = r#"
provider "alicloud" {
  client_read_timeout    = 300
  client_connect_timeout = 300
}
resource "alicloud_kms_secret" "x" {
  secret_name = "app/x"
  secret_data = "initial-value-1"
  version_id  = "v1"
}
rotation "x" {
  secrets  = ["app/x"]
  schedule = "@daily"
  plugin   = "password"
}
"#;

const LEAKS: &[&str] = &[
    "Signature=",
    "ACS3-HMAC-SHA256",
    "SignatureNonce",
    "AccessKeyId=",
    "canary-key-secret",
    "x-acs-signature-nonce",
];

#[test]
fn no_signed_request_reaches_an_error_when_the_endpoint_fails() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("main.tf"), CANARY_CONFIG).unwrap();
    for endpoint in [
        "http://127.0.0.1:9".to_owned(),
        "http://rota-test.invalid".to_owned(),
        unavailable(),
        silent(),
    ] {
        {
            let o = crate::common::rota_in(tmp.path())
                .env("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIcanaryKeyId")
                .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "canary-key-secret")
                .args(["secret", "get", "app/x", "--endpoint", &endpoint, "-vv"])
                .output()
                .unwrap();
            assert_eq!(o.status.code(), Some(1));
            let err = stderr(&o);
            for leak in LEAKS {
                assert!(!err.contains(leak), "{endpoint}: {leak} in:\n{err}");
            }
        }
        // A rotation that fails the same way, in the daemon's pass: not in
        // its output or logs, nor in the reason `rota status` gives, nor
        // in `rota history` (which records runs that started; a call that
        // never reached KMS starts none).
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.tf"), CANARY_CONFIG).unwrap();
        let on = |args: &[&str]| {
            crate::common::rota_in(dir.path())
                .env("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIcanaryKeyId")
                .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "canary-key-secret")
                .args(["--endpoint", &endpoint, "-vv"])
                .args(args)
                .output()
                .unwrap()
        };
        let o = on(&["run", "--once", "--all-due-within", "24h"]);
        assert_eq!(o.status.code(), Some(1), "{endpoint}: {}", stderr(&o));
        let st = on(&["status", "-o", "json"]);
        assert!(st.status.success(), "{endpoint}: {}", stderr(&st));
        let jobs: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
        assert!(
            jobs[0]["reason"].as_str().is_some_and(|r| !r.is_empty()),
            "{endpoint}: no reason recorded: {jobs}"
        );
        let h = on(&["history", "app/x", "-o", "json"]);
        assert!(h.status.success(), "{endpoint}: {}", stderr(&h));
        for text in [stdout(&o), stderr(&o), stdout(&st), stdout(&h), stderr(&h)] {
            for leak in LEAKS {
                assert!(!text.contains(leak), "{endpoint}: {leak} in:\n{text}");
            }
        }
    }
}

#[test]
fn provider_timeouts_are_milliseconds_in_range() {
    for bad in ["0", "3600001", "\"soon\"", "-5"] {
        let (code, err) = validate(&format!(
            "provider \"alicloud\" {{\n  client_read_timeout = {bad}\n}}\n"
        ));
        assert_eq!(code, Some(1), "{bad}: {err}");
        assert!(
            err.contains(
                "`client_read_timeout` must be a number of milliseconds from 1 to 3600000"
            ),
            "{bad}: {err}"
        );
    }
    let (code, err) = validate(
        "provider \"alicloud\" {\n  client_read_timeout    = 2500\n  client_connect_timeout = 500\n}\n",
    );
    assert_eq!(code, Some(0), "{err}");
}

/// `file()` of a FIFO in a configuration is refused at once (it used to
/// block forever waiting for a writer).
#[test]
fn file_of_a_fifo_is_refused_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs (coreutils)");
    assert!(made.success());
    std::fs::write(
        tmp.path().join("main.tf"),
        "resource \"alicloud_kms_secret\" \"a\" {\n  secret_name = \"a\"\n  secret_data = file(\"pipe\")\n  version_id  = \"v1\"\n}\n",
    )
    .unwrap();
    let o = run_in(tmp.path(), &["validate"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
}

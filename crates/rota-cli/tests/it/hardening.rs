//! Hostile input that used to crash or hang `rota`: each is now one clear
//! error (never "internal error", never a hang).

use crate::common::{run_in, stderr};

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

#[test]
fn no_signed_request_reaches_an_error_when_the_endpoint_fails() {
    let tmp = tempfile::tempdir().unwrap();
    for endpoint in [
        "http://127.0.0.1:9".to_owned(),
        "http://rota-test.invalid".to_owned(),
        unavailable(),
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
            for leak in [
                "Signature=",
                "ACS3-HMAC-SHA256",
                "SignatureNonce",
                "AccessKeyId=",
                "canary-key-secret",
                "x-acs-signature-nonce",
            ] {
                assert!(!err.contains(leak), "{endpoint}: {leak} in:\n{err}");
            }
        }
    }
}

//! `rota local world`: the redacted view of the seed example's world after
//! `rota apply`, in text and JSON.

use std::path::Path;

use crate::common::{rota, stderr, stdout};

fn copy_seed(to: &Path) {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/seed-corrected");
    for f in ["main.tf", "world.hcl"] {
        std::fs::copy(seed.join(f), to.join(f)).unwrap();
    }
}

#[test]
fn world_shows_which_secret_holds_each_credential() {
    let dir = tempfile::tempdir().unwrap();
    copy_seed(dir.path());
    let apply = rota()
        .arg("-c")
        .arg(dir.path())
        .args(["apply", "--auto-approve"])
        .output()
        .unwrap();
    assert!(apply.status.success(), "{}", stderr(&apply));

    let text = rota()
        .arg("-c")
        .arg(dir.path())
        .args(["local", "world"])
        .output()
        .unwrap();
    assert!(text.status.success(), "{}", stderr(&text));
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[time]");
    settings.bind(|| insta::assert_snapshot!(stdout(&text)));

    let json = rota()
        .arg("-c")
        .arg(dir.path())
        .args(["local", "world", "-o", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["account_id"], "1117600963847258");
    assert_eq!(
        v["ecs_instances"][0]["accounts"][0]["held_by"][0],
        "acs/ecs/terraform-example ACSCurrent (v1)"
    );
}

#[test]
fn world_without_a_local_cloud_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let o = rota()
        .arg("-c")
        .arg(dir.path())
        .args(["local", "world"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no local cloud in"), "{}", stderr(&o));
}

/// `rota local serve --tls --http-addr`: what it prints, and Rota's own
/// client over HTTPS trusting the generated CA through
/// `ALIBABA_CLOUD_CA_BUNDLE`; without it the client refuses the server
/// and says why, without the signed request.
#[test]
fn rota_reaches_local_serve_over_https_with_the_ca_bundle() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("kms");
    let mut child = rota()
        .args(["local", "serve", "--tls", "--addr", "127.0.0.1:0"])
        .args(["--http-addr", "127.0.0.1:0", "--tls-name", "kms.rota.test"])
        .arg("--data-dir")
        .arg(&data)
        .args([
            "--access-key-id",
            "LTAItlstest",
            "--access-key-secret",
            "tls-secret-3f9c",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..5 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        lines.push(line.trim().to_owned());
    }
    let https = lines[0]
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{lines:?}"))
        .to_owned();
    assert!(https.starts_with("https://127.0.0.1:"), "{lines:?}");
    assert!(
        lines[3].starts_with("plain HTTP on http://127.0.0.1:"),
        "{lines:?}"
    );
    let ca = data.join("tls/ca.pem");
    assert_eq!(
        lines[4],
        format!(
            "CA certificate {}, generated now (trust it in clients)",
            ca.display()
        )
    );
    let client = |bundle: Option<&Path>| {
        let mut c = rota();
        c.current_dir(dir.path())
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAItlstest")
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "tls-secret-3f9c")
            .env_remove("ALIBABA_CLOUD_CA_BUNDLE")
            .args(["--endpoint", &https]);
        if let Some(b) = bundle {
            c.env("ALIBABA_CLOUD_CA_BUNDLE", b);
        }
        c
    };
    std::fs::write(dir.path().join("value"), "tls-canary-61d0").unwrap();
    let put = client(Some(&ca))
        .args([
            "secret",
            "put",
            "app/tls",
            "--version-id",
            "v1",
            "--value-file",
        ])
        .arg(dir.path().join("value"))
        .output()
        .unwrap();
    assert!(put.status.success(), "{}", stderr(&put));
    let get = client(Some(&ca))
        .args(["secret", "get", "app/tls", "--reveal"])
        .output()
        .unwrap();
    assert!(get.status.success(), "{}", stderr(&get));
    assert_eq!(stdout(&get), "tls-canary-61d0");
    // Without the CA the server's certificate is refused.
    let refused = client(None)
        .args(["secret", "get", "app/tls"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let said = stderr(&refused);
    assert!(said.to_lowercase().contains("certificate"), "{said}");
    for leak in ["Signature=", "tls-canary-61d0", "SignatureNonce"] {
        assert!(!said.contains(leak), "{leak} in {said}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `--header-timeout` and `--body-timeout`: a stalled client is closed at
/// the timeout given; a timeout of zero is refused at start.
#[test]
fn local_serve_timeouts_are_configurable() {
    use std::io::{BufRead as _, Read as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let refused = rota()
        .args([
            "local",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--header-timeout",
            "0s",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("a"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("--header-timeout 0s"),
        "{}",
        stderr(&refused)
    );
    let mut child = rota()
        .args(["local", "serve", "--addr", "127.0.0.1:0"])
        .args(["--header-timeout", "300ms", "--body-timeout", "300ms"])
        .arg("--data-dir")
        .arg(dir.path().join("b"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap()
        .to_owned();
    for stalled in [
        &b"GET / HTTP/1.1\r\nhost: x\r\n"[..],
        &b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nab"[..],
    ] {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        s.write_all(stalled).unwrap();
        let mut got = Vec::new();
        // Ends (answered or closed) well before the 10 s read timeout.
        let r = s.read_to_end(&mut got);
        assert!(r.is_ok(), "held open: {r:?}");
    }
    let _ = child.kill();
    let _ = child.wait();
}

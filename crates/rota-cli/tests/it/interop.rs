//! Interop with the official Python SDK (`alibabacloud-kms20160120`): the
//! suite in tests/interop/kms_sdk_test.py runs against `rota local serve`,
//! once with the SDK's default V3 signature and once with `v2` (V1); and
//! tests/interop/https_clients_test.py runs the SDK, the old core and the
//! caching Secrets Manager client against `rota local serve --tls`, each on
//! its default HTTPS route with the generated CA where it looks for trust;
//! tests/interop/node/https_test.js does the same with the official
//! Node.js KMS SDK (installed by `cargo xtask interop-setup`).
//!
//! The interpreter is the venv `cargo xtask ci` creates
//! (`cargo xtask interop-setup` alone also does), or `ROTA_INTEROP_PYTHON`.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::common::rota;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("ROTA_INTEROP_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = workspace_root().join("target/interop-venv/bin/python");
    assert!(
        venv.exists(),
        "the interop venv is missing at {}: run `cargo xtask interop-setup` (cargo xtask ci does it)",
        venv.display()
    );
    venv
}

/// `rota local serve` on a free port; killed on drop.
struct Server {
    child: Child,
    /// Kept open so the server can keep writing to it.
    _stdout: BufReader<std::process::ChildStdout>,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> Server {
    start_server_with(&[])
}

fn start_server_with(extra: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    // The SDK stamps its requests with the real time, which the server
    // checks within ±15 minutes: this server runs on the real clock.
    let mut child = rota()
        .env_remove("ROTA_TEST_NOW")
        .args(["local", "serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args([
            "--access-key-id",
            "LTAI5tInteropTest",
            "--access-key-secret",
            "interop-secret-9d2f",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("rota local serve starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let endpoint = first
        .trim()
        .strip_prefix("listening on http://")
        .or_else(|| first.trim().strip_prefix("listening on https://"))
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    Server {
        child,
        _stdout: stdout,
        endpoint,
        _dir: dir,
    }
}

/// Runs `tests/interop/SCRIPT` against `server` (its root key in
/// `ROTA_AK` / `ROTA_SK`, cloud credentials of the environment removed),
/// `configure` adding what the script needs; asserts that every check
/// passed and returns how many ran.
fn run_script(
    server: &Server,
    script: &str,
    configure: impl FnOnce(&mut Command) -> &mut Command,
) -> u32 {
    let mut cmd = Command::new(python());
    cmd.arg(workspace_root().join("tests/interop").join(script))
        .env("ROTA_ENDPOINT", &server.endpoint)
        .env("ROTA_AK", "LTAI5tInteropTest")
        .env("ROTA_SK", "interop-secret-9d2f")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET");
    let out = configure(&mut cmd).output().expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.ends_with(" passed, 0 failed"),
        "unexpected summary {summary:?}"
    );
    summary.split(' ').next().unwrap().parse().unwrap()
}

fn run_suite(server: &Server, signature: &str) {
    let passed = run_script(server, "kms_sdk_test.py", |c| {
        c.env("ROTA_SIGNATURE", signature)
    });
    assert!(passed >= 14, "only {passed} checks ran");
}

#[test]
fn official_python_sdk_with_v3_signatures() {
    let server = start_server();
    run_suite(&server, "v3");
}

#[test]
fn official_python_sdk_with_v1_signatures() {
    let server = start_server();
    run_suite(&server, "v2");
}

#[test]
fn python_clients_over_https_trust_the_generated_ca() {
    let server = start_server_with(&["--tls"]);
    let ca = server._dir.path().join("tls/ca.pem");
    assert!(ca.is_file(), "no CA at {}", ca.display());
    let passed = run_script(&server, "https_clients_test.py", |c| {
        // Where each client looks for trust.
        c.env("SSL_CERT_FILE", &ca)
            .env("ALIBABA_CLOUD_CA_BUNDLE", &ca)
            // The caching client's own configuration, as its users set it.
            .env(
                "cache_client_region_id",
                format!(
                    r#"[{{"regionId":"cn-hangzhou","endpoint":"{}"}}]"#,
                    server.endpoint
                ),
            )
            .env("credentials_type", "ak")
            .env("credentials_access_key_id", "LTAI5tInteropTest")
            .env("credentials_access_secret", "interop-secret-9d2f")
            .env_remove("REQUESTS_CA_BUNDLE")
            .current_dir(server._dir.path())
    });
    assert_eq!(passed, 4);
}

#[test]
fn python_sdks_use_sts_credentials_from_assume_role() {
    let world = tempfile::tempdir().unwrap();
    let world_file = world.path().join("world.hcl");
    std::fs::write(
        &world_file,
        r#"
account_id = "1234567890123456"
region     = "cn-hangzhou"
ram_user "alice" {
  access_key "LTAI5tAliceInterop01" {
    secret = "alice-interop-secret"
  }
}
ram_role "app-reader" {
  assume_role_policy = {
    Version   = "1"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole",
                   Principal = { RAM = ["acs:ram::1234567890123456:user/alice"] } }]
  }
  policy = {
    Version   = "1"
    Statement = [{ Effect = "Allow", Action = ["kms:GetSecretValue"],
                   Resource = ["acs:kms:*:*:secret/app/*"] }]
  }
}
"#,
    )
    .unwrap();
    let server = start_server_with(&["--world", world_file.to_str().unwrap()]);
    let passed = run_script(&server, "sts_test.py", |c| {
        c.env("ROTA_ALICE_AK", "LTAI5tAliceInterop01")
            .env("ROTA_ALICE_SK", "alice-interop-secret")
            .env("ROTA_ACCOUNT", "1234567890123456")
    });
    assert_eq!(passed, 8);
}

/// The official Node.js KMS SDK on its default HTTPS route: with the
/// generated CA in `NODE_EXTRA_CA_CERTS` it creates and reads a secret;
/// without it, it refuses the server's certificate.
#[test]
fn node_sdk_over_https_trusts_the_generated_ca() {
    let modules = workspace_root().join("target/interop-node/node_modules");
    assert!(
        modules.join("@alicloud/kms20160120").is_dir(),
        "the Node interop packages are missing at {}: run `cargo xtask interop-setup` (cargo xtask ci does it)",
        modules.display()
    );
    let server = start_server_with(&["--tls"]);
    let ca = server._dir.path().join("tls/ca.pem");
    let node = |name: &str, trust: bool| {
        let mut c = Command::new("node");
        c.arg(workspace_root().join("tests/interop/node/https_test.js"))
            .env("NODE_PATH", &modules)
            .env("ROTA_ENDPOINT", &server.endpoint)
            .env("ROTA_AK", "LTAI5tInteropTest")
            .env("ROTA_SK", "interop-secret-9d2f")
            .env("ROTA_NAME", name)
            .env_remove("NODE_EXTRA_CA_CERTS")
            .env_remove("NODE_TLS_REJECT_UNAUTHORIZED");
        if trust {
            c.env("NODE_EXTRA_CA_CERTS", &ca);
        }
        let out = c.output().expect("node runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        )
    };
    assert_eq!(
        node("node/trusted", true),
        (true, "ok from-node".to_owned())
    );
    let (ok, said) = node("node/untrusted", false);
    assert!(!ok, "an untrusted certificate was accepted: {said}");
    assert!(
        said.starts_with("error UNABLE_TO_VERIFY_LEAF_SIGNATURE"),
        "{said}"
    );
}

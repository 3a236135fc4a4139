//! How `rota` prints, as ops teams meet it: into a pipe closed early (no
//! panic, exit 0), errors as one `error:` line with a `hint:` (no Rust
//! backtrace or panic text), and progress off a terminal (plain lines
//! for long work, none for quick work or with -q, never a value).

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::Arc;

use rota_kms::kms::CreateSecret;
use rota_kms::{KmsClient, SecretString};
use rota_local::LocalCloud;

use crate::common::{ok_output as ok, rota_in as cmd, run_in, stderr, stdout};

const CANARY: &str = "canary-progress-4b1c";

/// No trace of Rust's panic or backtrace output.
fn assert_no_rust_noise(err: &str) {
    for noise in [
        "panicked",
        "stack backtrace",
        "RUST_BACKTRACE",
        "internal error",
    ] {
        assert!(!err.contains(noise), "{noise:?} in:\n{err}");
    }
}

/// `n` secrets `bulk/0000`… in the embedded cloud of `dir/.rota`, made
/// in-process and concurrently (the CLI would take a process each).
fn many_secrets(dir: &Path, n: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cloud = LocalCloud::options(dir.join(".rota"))
            .clock(Arc::new(rota_test_support::system_clock()))
            .open()
            .await
            .unwrap();
        let kms = KmsClient::new(Arc::new(cloud.clone()));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let kms = kms.clone();
            tasks.spawn(async move {
                kms.send(&CreateSecret {
                    secret_name: format!("bulk/{i:04}"),
                    secret_data: SecretString::new(CANARY.to_owned()),
                    version_id: "v1".into(),
                    ..CreateSecret::default()
                })
                .await
                .map(|_| ())
            });
            if tasks.len() >= 64 {
                tasks.join_next().await.unwrap().unwrap().unwrap();
            }
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap().unwrap();
        }
        drop(kms);
        drop(cloud);
    });
}

/// Runs `rota ARGS`, reads one line of its standard output, closes the
/// pipe and waits: like `rota ARGS | head -1`.
fn first_line_then_close(dir: &Path, args: &[&str]) -> (String, Output) {
    let mut child = cmd(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rota runs");
    let mut first = String::new();
    {
        let mut out = BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut first).unwrap();
    } // the read end closes here
    (first, child.wait_with_output().unwrap())
}

#[test]
fn a_pipe_closed_early_is_a_quiet_success() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    many_secrets(d, 1_500);
    for args in [
        &["secret", "list"][..],
        &["secret", "list", "-o", "json"],
        &["schedule", "next", "@hourly", "-n", "100000"],
        &["completions", "bash"],
        &["--help"],
    ] {
        let (first, o) = first_line_then_close(d, args);
        assert!(!first.is_empty(), "{args:?} printed nothing");
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert_no_rust_noise(&stderr(&o));
    }
}

#[test]
fn errors_are_one_line_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let filters = vec![(r"request id [0-9A-F-]+", "request id [ID]")];
    let mut seen = String::new();
    let mut check = |name: &str, args: &[&str]| {
        let o = run_in(d, args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = stderr(&o);
        assert_no_rust_noise(&err);
        assert_eq!(err.matches("error: ").count(), 1, "{err}");
        seen.push_str(&err);
        insta::with_settings!({ filters => filters.clone(), description => args.join(" ") }, {
            insta::assert_snapshot!(name, err);
        });
    };
    check("error_missing_config", &["-c", "missing.tf", "validate"]);
    check(
        "error_unknown_secret",
        &["-q", "secret", "describe", "no/such"],
    );
    std::fs::write(
        d.join("main.tf"),
        "resource \"alicloud_kms_secret\" \"a\" {\n  secret_name = \"app/a\"\n  secret_data = \"x\"\n  version_id  = \"v1\"\n}\n",
    )
    .unwrap();
    check("error_unknown_rotation", &["-q", "rotate", "app/a"]);
    check("error_apply_needs_approval", &["-q", "apply"]);
}

/// `count` secrets and a rotation over them, each with a canary value.
fn config(dir: &Path, count: usize) {
    let mut text = String::new();
    for i in 0..count {
        text.push_str(&format!(
            "resource \"alicloud_kms_secret\" \"s{i:02}\" {{\n  secret_name = \"app/s{i:02}\"\n  secret_data = \"{CANARY}-{i}\"\n  version_id  = \"v1\"\n}}\n"
        ));
    }
    text.push_str(
        "rotation \"apps\" {\n  secrets  = [\"app/*\"]\n  schedule = \"@daily\"\n  plugin   = \"password\"\n}\n",
    );
    std::fs::write(dir.join("main.tf"), text).unwrap();
}

#[test]
fn long_work_prints_progress_lines_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    config(d, 12);
    let mut lines = String::new();
    let mut all = String::new();
    for args in [
        &["apply", "--auto-approve"][..],
        &["rotate", "--all", "--dry-run"],
        &["rotate", "--all"],
        &["plan", "--destroy", "-o", "json"],
        &["destroy", "--auto-approve", "-o", "json"],
    ] {
        let o = ok(run_in(d, args));
        all.push_str(&stdout(&o));
        all.push_str(&stderr(&o));
        // Progress and notes; the INFO logs between them carry times and tokens.
        let notes: String = stderr(&o)
            .lines()
            .filter(|l| !l.contains("  INFO "))
            .map(|l| format!("{l}\n"))
            .collect();
        lines.push_str(&format!("$ rota {}\n{notes}", args.join(" ")));
    }
    insta::assert_snapshot!("progress_lines", lines);
    assert!(!all.contains(CANARY), "a value leaked:\n{all}");

    // Quick work (fewer than ten resources) and -q: no progress at all.
    let quick = tempfile::tempdir().unwrap();
    config(quick.path(), 3);
    let o = ok(run_in(quick.path(), &["apply", "--auto-approve"]));
    assert!(!stderr(&o).contains("resources ("), "{}", stderr(&o));
    config(d, 12);
    let o = ok(run_in(d, &["-q", "apply", "--auto-approve"]));
    assert_eq!(stderr(&o), "", "-q prints nothing on standard error");
    let o = ok(run_in(d, &["--log-format", "json", "rotate", "--all"]));
    assert!(!stderr(&o).contains("secrets ("), "{}", stderr(&o));
}

#[test]
fn a_long_listing_prints_progress_in_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    many_secrets(d, 1_050);
    let o = ok(run_in(d, &["secret", "list"]));
    assert_eq!(
        stdout(&o).lines().count(),
        1_051,
        "a header and every secret"
    );
    insta::assert_snapshot!("progress_list", stderr(&o));
    let o = ok(run_in(d, &["-q", "secret", "list", "-o", "json"]));
    assert_eq!(stderr(&o), "");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(1_050));
}

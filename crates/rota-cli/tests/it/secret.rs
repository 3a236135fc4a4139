//! `rota secret …` on the embedded local cloud in a temp data directory,
//! with no configuration file: every subcommand, text and JSON snapshots,
//! and the canary check (their `--help` is snapshotted with every other
//! command's, in `src/cli.rs`).

use std::io::Write as _;
use std::path::Path;
use std::process::{Output, Stdio};

use crate::common::{ok_output as ok, rota_in as cmd, run_in, stderr, stdout};

const CANARY: &str = "canary-secret-cmd-7f3a91";

/// Runs `rota ARGS` with `input` on standard input.
fn run_with_stdin(dir: &Path, args: &[&str], input: &str) -> Output {
    let mut child = cmd(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rota runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("rota finishes")
}

fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)",
            "[TIME]",
        ),
        (r"acs:kms:[A-Za-z0-9:/_.\-]+", "[ARN]"),
        (r"key-[A-Za-z0-9\-]+", "[KEY]"),
    ]
}

#[test]
fn every_subcommand_on_a_fresh_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("v1.txt"), "first-value").unwrap();
    let o = ok(run_in(
        d,
        &[
            "secret",
            "put",
            "app/db",
            "--value-file",
            "v1.txt",
            "--version-id",
            "v1",
            "--description",
            "the app database",
            "--tags",
            "team=payments",
            "--tags",
            "env=prod",
        ],
    ));
    assert_eq!(
        stdout(&o),
        "app/db: created with version v1 (ACSCurrent).\n"
    );
    assert!(
        stderr(&o).contains("using the embedded local cloud in ./.rota"),
        "{}",
        stderr(&o)
    );
    assert!(
        d.join(".rota").is_dir(),
        "the data dir is .rota/ of the current dir"
    );
    ok(run_in(
        d,
        &[
            "secret",
            "put",
            "other",
            "--value-file",
            "v1.txt",
            "--version-id",
            "a",
        ],
    ));
    // The second version comes from standard input.
    let o = ok(run_with_stdin(
        d,
        &[
            "secret",
            "put",
            "app/db",
            "--value-file",
            "-",
            "--version-id",
            "v2",
        ],
        "second-value",
    ));
    assert_eq!(stdout(&o), "app/db: stored version v2 (ACSCurrent).\n");

    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!("list_text", stdout(&ok(run_in(d, &["secret", "list"]))));
        insta::assert_snapshot!("list_json", stdout(&ok(run_in(d, &["secret", "list", "-o", "json"]))));
        insta::assert_snapshot!(
            "list_filtered",
            stdout(&ok(run_in(d, &["secret", "list", "--filter", "TagKey=team"])))
        );
        insta::assert_snapshot!("describe_text", stdout(&ok(run_in(d, &["secret", "describe", "app/db"]))));
        insta::assert_snapshot!("describe_json", stdout(&ok(run_in(d, &["secret", "describe", "app/db", "-o", "json"]))));
        insta::assert_snapshot!("get_text", stdout(&ok(run_in(d, &["secret", "get", "app/db"]))));
        insta::assert_snapshot!("get_json", stdout(&ok(run_in(d, &["secret", "get", "app/db", "-o", "json"]))));
        insta::assert_snapshot!("versions_text", stdout(&ok(run_in(d, &["secret", "versions", "app/db"]))));
        insta::assert_snapshot!("versions_json", stdout(&ok(run_in(d, &["secret", "versions", "app/db", "-o", "json"]))));
    });

    // --reveal prints exactly the value, for scripts.
    let o = ok(run_in(d, &["secret", "get", "app/db", "--reveal"]));
    assert_eq!(stdout(&o), "second-value");
    let o = ok(run_in(
        d,
        &[
            "secret",
            "get",
            "app/db",
            "--version-stage",
            "ACSPrevious",
            "--reveal",
        ],
    ));
    assert_eq!(stdout(&o), "first-value");
    let o = ok(run_in(
        d,
        &[
            "secret",
            "get",
            "app/db",
            "--version-id",
            "v1",
            "--reveal",
            "-o",
            "json",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["SecretData"], "first-value");
    assert_eq!(
        v["VersionStages"],
        serde_json::json!({ "VersionStage": ["ACSPrevious"] })
    );

    // Stages: move ACSCurrent back to v1.
    let o = ok(run_in(
        d,
        &[
            "secret",
            "stage",
            "app/db",
            "--version-stage",
            "ACSCurrent",
            "--move-to-version",
            "v1",
            "--remove-from-version",
            "v2",
        ],
    ));
    assert_eq!(
        stdout(&o),
        "app/db: ACSCurrent removed from v2, moved to v1.\n"
    );
    let o = ok(run_in(d, &["secret", "get", "app/db", "--reveal"]));
    assert_eq!(stdout(&o), "first-value");

    // Tags: add one, remove one.
    let o = ok(run_in(
        d,
        &[
            "secret",
            "tag",
            "app/db",
            "--tags",
            "owner=ops",
            "--tag-keys",
            "env",
        ],
    ));
    insta::assert_snapshot!("tag_text", stdout(&o));
    let o = ok(run_in(d, &["secret", "tag", "app/db", "-o", "json"]));
    insta::assert_snapshot!("tag_json", stdout(&o));

    // Policy: set from a file, read back.
    let policy = r#"{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::1234567890123456:*"]},"Action":["kms:*"],"Resource":["*"]}]}"#;
    std::fs::write(d.join("policy.json"), policy).unwrap();
    ok(run_in(
        d,
        &["secret", "policy", "app/db", "--policy", "policy.json"],
    ));
    let o = ok(run_in(d, &["secret", "policy", "app/db", "-o", "json"]));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["Policy"]["Statement"][0]["Action"][0], "kms:*", "{v}");

    // Delete with a recovery window, restore, then delete for good.
    let o = ok(run_in(
        d,
        &[
            "secret",
            "delete",
            "app/db",
            "--recovery-window-in-days",
            "7",
        ],
    ));
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!("delete_text", stdout(&o));
    });
    let o = ok(run_in(d, &["secret", "list", "-o", "json"]));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v[0]["PlannedDeleteTime"].is_string(), "{v}");
    let o = ok(run_in(d, &["secret", "restore", "app/db"]));
    assert_eq!(stdout(&o), "app/db: restored.\n");
    let o = ok(run_in(
        d,
        &[
            "secret",
            "delete",
            "app/db",
            "--force-delete-without-recovery",
            "-o",
            "json",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["ForceDeleteWithoutRecovery"], true, "{v}");

    // A missing secret: exit 1, what went wrong and what to do, no stack noise.
    let o = run_in(d, &["secret", "describe", "app/db"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("no secret named \"app/db\""), "{err}");
    assert!(err.contains("rota secret list"), "{err}");
    assert!(
        !err.contains("backtrace") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // put never takes the value from argv.
    let o = run_in(
        d,
        &[
            "secret",
            "put",
            "x",
            "--version-id",
            "v1",
            "--value",
            "s3cret",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run_in(d, &["secret", "put", "x", "--version-id", "v1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run_in(
        d,
        &["secret", "stage", "x", "--version-stage", "ACSCurrent"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run_in(d, &["secret", "list", "--filter", "novalue"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("write KEY=VALUE"), "{}", stderr(&o));
    let o = run_in(
        d,
        &[
            "secret",
            "delete",
            "x",
            "--recovery-window-in-days",
            "7",
            "--force-delete-without-recovery",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!d.join(".rota").exists(), "a usage error opened the cloud");
}

#[test]
fn the_canary_appears_only_with_get_reveal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("data");
    let data = data.to_str().unwrap();
    std::fs::write(d.join("canary.txt"), CANARY).unwrap();
    std::fs::write(d.join("other.txt"), "other").unwrap();
    let mut seen = String::new();
    let mut record = |o: &Output| {
        seen.push_str(&stdout(o));
        seen.push_str(&stderr(o));
    };
    let put = run_in(
        d,
        &[
            "-vv",
            "--data-dir",
            data,
            "secret",
            "put",
            "canary",
            "--value-file",
            "canary.txt",
            "--version-id",
            "v1",
            "--description",
            "canary",
        ],
    );
    record(&ok(put));
    for args in [
        &["secret", "list"][..],
        &["secret", "list", "-o", "json"],
        &["secret", "describe", "canary"],
        &["secret", "describe", "canary", "-o", "json"],
        &["secret", "get", "canary"],
        &["secret", "get", "canary", "-o", "json"],
        &["secret", "versions", "canary", "--include-deprecated"],
        &["secret", "versions", "canary", "-o", "json"],
        &["secret", "tag", "canary"],
    ] {
        let mut full = vec!["-vv", "--data-dir", data];
        full.extend_from_slice(args);
        record(&ok(run_in(d, &full)));
    }
    // Errors: a taken version id, a stage move to a missing version.
    for args in [
        &[
            "secret",
            "put",
            "canary",
            "--value-file",
            "other.txt",
            "--version-id",
            "v1",
        ][..],
        &[
            "secret",
            "stage",
            "canary",
            "--version-stage",
            "ACSCurrent",
            "--move-to-version",
            "nope",
        ],
        &["secret", "get", "canary", "--version-id", "nope"],
    ] {
        let mut full = vec!["-vv", "--data-dir", data];
        full.extend_from_slice(args);
        let o = run_in(d, &full);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        record(&o);
    }
    assert!(!seen.contains(CANARY), "the canary leaked:\n{seen}");
    let o = ok(run_in(
        d,
        &["--data-dir", data, "secret", "get", "canary", "--reveal"],
    ));
    assert_eq!(stdout(&o), CANARY);
    assert!(!stderr(&o).contains(CANARY));
}

#[test]
fn a_configured_resource_address_names_its_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("main.tf"),
        r#"
resource "alicloud_kms_secret" "api" {
  secret_name = "api-token"
  secret_data = "initial"
  version_id  = "v1"
}
"#,
    )
    .unwrap();
    ok(run_in(d, &["apply", "--auto-approve"]));
    let o = ok(run_in(
        d,
        &["secret", "versions", "alicloud_kms_secret.api"],
    ));
    assert!(stdout(&o).contains("v1"), "{}", stdout(&o));
    // An invalid configuration is reported, not silently replaced by the
    // embedded cloud.
    std::fs::write(d.join("main.tf"), "resource \"alicloud_kms_secret\" {").unwrap();
    let o = run_in(d, &["secret", "list"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

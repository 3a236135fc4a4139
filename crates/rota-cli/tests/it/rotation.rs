//! `rota rotate | run | status | history` as the built binary on temp
//! directories: crash injection at every named point with recovery, two
//! daemons on one store and one local cloud, and a canary that must never
//! appear in output, logs, history or status.

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Output, Stdio};

use rota_kms::KmsClient;
use rota_local::LocalCloud;
use serde_json::Value;

pub(crate) use crate::common::{rota_in as cmd, run_in};
use crate::common::{stderr, stdout};

const CANARY: &str = "canary-rot-9f3e77";

pub(crate) fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(o),
        stderr(o)
    );
}

/// Opens the embedded cloud in `data` (after every `rota` exited) and
/// runs `f` on it.
fn with_local_cloud<T>(data: &Path, f: impl AsyncFnOnce(&LocalCloud) -> T) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cloud = LocalCloud::options(data)
            .clock(std::sync::Arc::new(rota_test_support::system_clock()))
            .open()
            .await
            .unwrap();
        let out = f(&cloud).await;
        drop(cloud);
        out
    })
}

/// Reads the embedded cloud in `dir/.rota` (after every `rota` exited).
pub(crate) fn with_cloud<T>(data: &Path, f: impl AsyncFnOnce(KmsClient) -> T) -> T {
    with_local_cloud(data, async |cloud| {
        f(KmsClient::new(std::sync::Arc::new(cloud.clone()))).await
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stages {
    pub(crate) versions: BTreeSet<String>,
    pub(crate) current: (String, String),
    pub(crate) pending: Option<(String, String)>,
    pub(crate) previous: Option<String>,
}

use rota_test_support::cloud::stage_of as stage;

pub(crate) async fn stages(kms: &KmsClient, name: &str) -> Stages {
    let versions = kms
        .list_all_versions(name)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.version_id)
        .collect();
    Stages {
        versions,
        current: stage(kms, name, "ACSCurrent").await.unwrap(),
        pending: stage(kms, name, "ACSPending").await,
        previous: stage(kms, name, "ACSPrevious").await.map(|v| v.0),
    }
}

fn write_config(dir: &Path, secrets: &[(&str, &str)], rotation: &str) {
    let mut text = String::new();
    for (i, (name, value)) in secrets.iter().enumerate() {
        text.push_str(&format!(
            "resource \"alicloud_kms_secret\" \"s{i}\" {{\n  secret_name = \"{name}\"\n  secret_data = {value:?}\n  version_id  = \"v1\"\n}}\n"
        ));
    }
    text.push_str(rotation);
    std::fs::write(dir.join("main.tf"), text).unwrap();
}

const PASSWORD_ROTATION: &str = "rotation \"apps\" {\n  secrets  = [\"app/*\"]\n  schedule = \"@daily\"\n  plugin   = \"password\"\n  settings = { length = 40 }\n}\n";

/// The password plugin's target is the secret itself: its credential is the
/// ACSCurrent value, which must meet the policy.
fn target_is_current_or_pending(s: &Stages) {
    let v = &s.current.1;
    assert!(
        v == "initial-value-1" || v.len() == 40,
        "ACSCurrent holds a value that is neither the initial one nor the policy's"
    );
}

#[test]
fn a_crash_at_every_point_converges_on_the_next_run() {
    for point in rota_rotation::CrashPoint::PROTOCOL.map(|p| p.to_string()) {
        let point = point.as_str();
        let dir = tempfile::tempdir().unwrap();
        write_config(
            dir.path(),
            &[("app/db", "initial-value-1")],
            PASSWORD_ROTATION,
        );
        ok(&run_in(dir.path(), &["apply", "--auto-approve"]));
        let data = dir.path().join(".rota");
        let before = with_cloud(&data, async |k| stages(&k, "app/db").await);
        assert_eq!(before.current.0, "v1");

        // The crash: the process aborts at the point, as kill -9 would.
        let o = cmd(dir.path())
            .env("ROTA_TEST_CRASH_AT", point)
            .args(["rotate", "app/db"])
            .output()
            .unwrap();
        assert!(!o.status.success(), "{point}: the crash did not happen");
        assert!(
            stderr(&o).contains(&format!("aborting at {point}")),
            "{point}: {}",
            stderr(&o)
        );
        let crashed = with_cloud(&data, async |k| stages(&k, "app/db").await);
        assert!(
            crashed.versions.is_superset(&before.versions),
            "{point}: a version was lost"
        );
        target_is_current_or_pending(&crashed);
        let token = match point {
            "in-finish" => {
                // ACSCurrent moved, ACSPending not yet dropped.
                assert_ne!(crashed.current.0, "v1", "{point}");
                assert_eq!(
                    crashed.pending.as_ref().map(|p| &p.0),
                    Some(&crashed.current.0)
                );
                crashed.current.0.clone()
            }
            _ => {
                assert_eq!(crashed.current.0, "v1", "{point}: promoted too early");
                crashed
                    .pending
                    .as_ref()
                    .expect("the pending version is written")
                    .0
                    .clone()
            }
        };
        assert!(token.starts_with("rota-manual-"), "{token}");

        // Recovery: the next run finishes that rotation instead of starting another.
        let o = run_in(dir.path(), &["rotate", "app/db"]);
        ok(&o);
        assert!(
            stdout(&o).contains(&format!("resumed and finished it: version {token}")),
            "{point}: {}",
            stdout(&o)
        );
        let after = with_cloud(&data, async |k| stages(&k, "app/db").await);
        assert_eq!(after.current.0, token, "{point}: converged elsewhere");
        assert_eq!(after.pending, None, "{point}: ACSPending left behind");
        assert_eq!(after.previous.as_deref(), Some("v1"), "{point}");
        assert!(
            after.versions.is_superset(&crashed.versions),
            "{point}: a version was lost"
        );
        assert_eq!(after.versions.len(), before.versions.len() + 1, "{point}");
        target_is_current_or_pending(&after);
        assert_eq!(after.current.1.len(), 40);

        // History shows the crashed attempt and the finish.
        let h: Value =
            serde_json::from_str(&stdout(&run_in(dir.path(), &["history", "-o", "json"]))).unwrap();
        let runs = h.as_array().unwrap();
        assert!(
            runs.iter()
                .any(|r| r["token"] == token.as_str() && r["outcome"] == "rotated"),
            "{point}: {h}"
        );
    }
}

#[test]
fn an_unknown_crash_point_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &[("app/db", "initial-value-1")],
        PASSWORD_ROTATION,
    );
    let o = cmd(dir.path())
        .env("ROTA_TEST_CRASH_AT", "after-lunch")
        .args(["rotate", "app/db"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown crash point \"after-lunch\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn rotate_status_history_and_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &[
            ("app/db", "initial-value-1"),
            ("app/api", "initial-value-1"),
        ],
        PASSWORD_ROTATION,
    );
    ok(&run_in(dir.path(), &["apply", "--auto-approve"]));
    let o = run_in(dir.path(), &["rotate", "app/db", "--dry-run"]);
    ok(&o);
    assert!(
        stdout(&o).contains("Dry run: nothing was generated or changed."),
        "{}",
        stdout(&o)
    );
    let versions = with_cloud(&dir.path().join(".rota"), async |k| {
        stages(&k, "app/db").await
    });
    assert_eq!(versions.versions.len(), 1, "the dry run wrote something");

    ok(&run_in(dir.path(), &["rotate", "--all"]));
    let filters = vec![
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]"),
        (r"rota-manual-\d{8}T\d{6}Z-[0-9a-f]{8}", "[TOKEN]"),
        (r#""duration_ms": \d+"#, r#""duration_ms": "[MS]""#),
    ];
    insta::with_settings!({ filters => filters }, {
        insta::assert_snapshot!("status_json", stdout(&run_in(dir.path(), &["status", "-o", "json"])));
        insta::assert_snapshot!("history_json", stdout(&run_in(dir.path(), &["history", "app/db", "-o", "json"])));
    });
}

/// Starts `rota local serve` on a free loopback port; returns the child
/// and its URL (the child's stdout stays open).
pub(crate) fn serve(dir: &Path, data: &Path) -> (Child, String) {
    let mut child = cmd(dir)
        .args(["local", "serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args([
            "--access-key-id",
            "LTAItestrotation",
            "--access-key-secret",
            "test-secret-rotation",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    // Keep the pipe open for the server's lifetime.
    std::mem::forget(out);
    (child, url)
}

pub(crate) fn remote(dir: &Path, url: &str) -> std::process::Command {
    let mut c = cmd(dir);
    c.env("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAItestrotation")
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "test-secret-rotation")
        .args(["--endpoint", url, "--data-dir", "state"]);
    c
}

#[test]
fn two_daemons_on_one_store_rotate_each_of_200_secrets_once() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..200).map(|i| format!("app/s{i:03}")).collect();
    let secrets: Vec<(&str, &str)> = names
        .iter()
        .map(|n| (n.as_str(), "initial-value-1"))
        .collect();
    // A one-shot slot half an hour from now: due within the hour, once.
    let at = slot_after(30);
    write_config(
        dir.path(),
        &secrets,
        &format!(
            "rotation \"apps\" {{\n  secrets  = [\"app/*\"]\n  schedule = \"{at}\"\n  jitter   = false\n  plugin   = \"password\"\n}}\n"
        ),
    );
    let cloud = dir.path().join("cloud");
    let (mut server, url) = serve(dir.path(), &cloud);
    ok(&remote(dir.path(), &url)
        .args(["apply", "--auto-approve"])
        .output()
        .unwrap());

    let spawn = || {
        remote(dir.path(), &url)
            .args(["run", "--once", "--all-due-within", "1h", "-o", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    ok(&a);
    ok(&b);
    let sa: Value = serde_json::from_str(&stdout(&a)).unwrap();
    let sb: Value = serde_json::from_str(&stdout(&b)).unwrap();
    let rotated = sa["rotated"].as_u64().unwrap() + sb["rotated"].as_u64().unwrap();
    assert_eq!(rotated, 200, "a: {sa}\nb: {sb}");
    assert_eq!(sa["failed"], 0);
    assert_eq!(sb["failed"], 0);

    server.kill().unwrap();
    server.wait().unwrap();
    let counts = with_cloud(&cloud, async |k| {
        let mut out = Vec::new();
        for n in &names {
            let s = stages(&k, n).await;
            let rotations = s.versions.iter().filter(|v| v.starts_with("rota-")).count();
            out.push((
                n.clone(),
                rotations,
                s.current.0.starts_with("rota-"),
                s.pending.is_none(),
            ));
        }
        out
    });
    for (n, rotations, current, no_pending) in counts {
        assert_eq!(rotations, 1, "{n} rotated {rotations} times");
        assert!(current && no_pending, "{n}");
    }
    let h: Value = serde_json::from_str(&stdout(
        &cmd(dir.path())
            .args([
                "history",
                "-o",
                "json",
                "--limit",
                "1000",
                "--data-dir",
                "state",
            ])
            .output()
            .unwrap(),
    ))
    .unwrap();
    let finished: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "rotated")
        .map(|r| r["secret"].as_str().unwrap())
        .collect();
    assert_eq!(finished.len(), 200);
    assert_eq!(finished.iter().collect::<BTreeSet<_>>().len(), 200);
}

/// `minutes` after the suite's base instant, in whole minutes, RFC 3339.
fn slot_after(minutes: i64) -> String {
    use chrono::{DurationRound as _, TimeDelta};
    let t = (rota_test_support::base_now() + TimeDelta::minutes(minutes))
        .duration_trunc(TimeDelta::minutes(1))
        .unwrap();
    rota_test_support::rfc3339(t)
}

/// Calls a KMS action on the embedded cloud in `data` (no `rota` running).
fn kms_action(data: &Path, action: &'static str, params: &[(&str, &str)]) -> Value {
    with_local_cloud(data, async |cloud| {
        let mut r = rota_kms::ApiRequest::kms(action);
        for (k, v) in params {
            r.query(*k, *v);
        }
        rota_kms::Transport::call(cloud, r).await.unwrap()
    })
}

/// A secret whose KMS key is disabled cannot be rotated: `rota rotate`
/// fails with KMS's code, the daemon's pass marks the job as needing
/// attention at once (retrying cannot help), nothing is written (no
/// version, no stage moved, the value as it was); after EnableKey the same
/// command rotates it.
#[test]
fn a_disabled_key_fails_the_rotation_cleanly_until_it_is_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join(".rota");
    let key = kms_action(&data, "CreateKey", &[])["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::write(
        dir.path().join("main.tf"),
        format!(
            "resource \"alicloud_kms_secret\" \"db\" {{\n  secret_name       = \"app/db\"\n  secret_data       = \"initial-value-1\"\n  version_id        = \"v1\"\n  encryption_key_id = \"{key}\"\n}}\n{PASSWORD_ROTATION}"
        ),
    )
    .unwrap();
    ok(&run_in(dir.path(), &["apply", "--auto-approve"]));
    let before = with_cloud(&data, async |k| stages(&k, "app/db").await);
    kms_action(&data, "DisableKey", &[("KeyId", &key)]);

    let o = run_in(dir.path(), &["rotate", "app/db"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(said.contains("Rejected.Disabled"), "{said}");
    let o = run_in(dir.path(), &["run", "--once", "--all-due-within", "24h"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let status = run_in(dir.path(), &["status", "-o", "json"]);
    ok(&status);
    let status: Value = serde_json::from_str(&stdout(&status)).unwrap();
    let job = status
        .as_array()
        .unwrap_or_else(|| panic!("{status}"))
        .iter()
        .find(|j| j["secret"] == "app/db")
        .unwrap_or_else(|| panic!("{status}"));
    assert_eq!(job["state"], "needs attention", "{job}");
    assert!(
        job["reason"]
            .as_str()
            .is_some_and(|r| r.contains("Rejected.Disabled")),
        "{job}"
    );
    kms_action(&data, "EnableKey", &[("KeyId", &key)]);
    let after = with_cloud(&data, async |k| stages(&k, "app/db").await);
    assert_eq!(after, before, "a refused rotation changed the secret");
    assert_eq!(after.current.1, "initial-value-1");

    ok(&run_in(dir.path(), &["rotate", "app/db"]));
    let rotated = with_cloud(&data, async |k| stages(&k, "app/db").await);
    assert_ne!(rotated.current.0, "v1");
    assert_eq!(
        rotated.current.1.len(),
        40,
        "the rotation's password length"
    );
    assert_eq!(rotated.previous.as_deref(), Some("v1"));
    assert_eq!(rotated.pending, None);
}

#[test]
fn the_canary_never_appears_in_output_logs_history_or_status() {
    let dir = tempfile::tempdir().unwrap();
    let json_value = format!("{{\"user\":\"{CANARY}\",\"password\":\"{CANARY}-p\"}}");
    write_config(
        dir.path(),
        &[
            ("app/db", &format!("{CANARY}-whole")),
            ("app/login", &json_value),
            ("bad/plain", CANARY),
        ],
        &format!(
            "{}rotation \"login\" {{\n  secrets  = [\"app/login\", \"bad/plain\"]\n  schedule = \"@daily\"\n  settings = {{ field = \"password\" }}\n}}\n",
            PASSWORD_ROTATION.replace("app/*", "app/db")
        ),
    );
    let mut outputs = Vec::new();
    let mut check = |o: Output| {
        outputs.push(format!("{}{}", stdout(&o), stderr(&o)));
        o
    };
    ok(&check(run_in(
        dir.path(),
        &["-vv", "apply", "--auto-approve"],
    )));
    ok(&check(run_in(
        dir.path(),
        &["-vv", "rotate", "app/db", "app/login"],
    )));
    // A failing rotation: the plain value is not JSON, so `field` cannot apply.
    let o = check(run_in(dir.path(), &["-vv", "rotate", "bad/plain"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("failed"), "{}", stdout(&o));
    // The daemon's pass, with both daily slots due whatever the hour: the
    // failing secret fails again there, at -vv, without its value.
    let o = check(run_in(
        dir.path(),
        &["-vv", "run", "--once", "--all-due-within", "25h"],
    ));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("3 due: 2 rotated, 0 already done, 1 failed, 0 skipped"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("failed: bad/plain: "), "{}", stdout(&o));
    ok(&check(run_in(
        dir.path(),
        &["-vv", "rotate", "--all", "--dry-run"],
    )));
    ok(&check(run_in(dir.path(), &["history", "-o", "json"])));
    ok(&check(run_in(dir.path(), &["status", "-o", "json"])));
    ok(&check(run_in(dir.path(), &["history"])));
    let status = check(run_in(dir.path(), &["status"]));
    ok(&status);
    // A table, then why the failing secret needs a look (never its value).
    let text = stdout(&status);
    assert!(text.starts_with("NAME "), "{text}");
    assert!(text.lines().any(|l| l.starts_with("bad/plain: ")), "{text}");
    for (i, text) in outputs.iter().enumerate() {
        assert!(
            !text.contains(CANARY),
            "output {i} leaks the canary:\n{text}"
        );
    }
    // The canary is still in the secrets (field mode keeps the other fields).
    let login = with_cloud(&dir.path().join(".rota"), async |k| {
        stages(&k, "app/login").await
    });
    assert!(login.current.1.contains(CANARY));
    assert!(login.current.0.starts_with("rota-"));
}

/// `--once` with a horizon longer than a job's period: each job runs once
/// (its later slots wait for the next invocation, and do not hold a
/// concurrency slot: with `--concurrency 1` a job due later in the horizon
/// still runs), and `rota run` exits. A `rotate_immediately` secret is due
/// at once without any horizon, and only the first time.
#[test]
fn once_runs_each_job_one_time_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let later = slot_after(90);
    std::fs::write(
        dir.path().join("main.tf"),
        format!(
            r#"
resource "alicloud_kms_secret" "a" {{
  secret_name = "once/hourly"
  secret_data = "initial"
  version_id  = "v1"
}}
resource "alicloud_kms_secret" "b" {{
  secret_name = "once/now"
  secret_data = "initial"
  version_id  = "v1"
}}
resource "alicloud_kms_secret" "c" {{
  secret_name = "once/later"
  secret_data = "initial"
  version_id  = "v1"
}}
rotation "hourly" {{
  secrets  = ["alicloud_kms_secret.a"]
  schedule = "@hourly"
  jitter   = false
}}
rotation "now" {{
  secrets            = ["alicloud_kms_secret.b"]
  schedule           = "@yearly"
  rotate_immediately = true
}}
rotation "later" {{
  secrets  = ["alicloud_kms_secret.c"]
  schedule = "{later}"
}}
"#
        ),
    )
    .unwrap();
    let o = run_in(
        dir.path(),
        &[
            "run",
            "--apply",
            "--once",
            "--all-due-within",
            "2h",
            "--concurrency",
            "1",
        ],
    );
    ok(&o);
    assert!(
        stdout(&o).contains("3 due: 3 rotated, 0 already done, 0 failed, 0 skipped"),
        "{}",
        stdout(&o)
    );
    let history = run_in(dir.path(), &["history", "-o", "json"]);
    let runs: Vec<Value> = serde_json::from_str(&stdout(&history)).unwrap();
    assert_eq!(
        runs.iter().filter(|r| r["secret"] == "once/hourly").count(),
        1,
        "{runs:?}"
    );
    // Nothing is due now: the hourly job's next slot is in the future, the
    // immediate rotation and the one-shot happened.
    let o = run_in(dir.path(), &["run", "--once"]);
    ok(&o);
    assert!(stdout(&o).contains("0 due: 0 rotated"), "{}", stdout(&o));
}

/// `rota run` with no access key at all: its credentials come from the
/// local ECS metadata service (hardened mode) as the instance role's STS
/// credentials, and it rotates a secret end to end against `rota local
/// serve`; the role's policy bounds what it may touch.
#[test]
fn rota_run_rotates_with_the_instance_roles_credentials_from_the_metadata_service() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("world.hcl"),
        r#"
account_id = "1234567890123456"
region     = "cn-hangzhou"
ram_role "rotator" {
  assume_role_policy = {
    Version   = "1"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole",
                   Principal = { Service = ["ecs.aliyuncs.com"] } }]
  }
  policy = {
    Version   = "1"
    Statement = [
      { Effect = "Allow", Action = "kms:*", Resource = "acs:kms:*:*:secret/app/*" },
      { Effect = "Allow", Action = "kms:ListSecrets", Resource = "*" },
    ]
  }
}
ecs_instance "i-rotator000000000001" {
  ram_role = "rotator"
}
"#,
    )
    .unwrap();
    write_config(
        dir.path(),
        &[("app/db", "initial-value-1")],
        PASSWORD_ROTATION,
    );
    let mut child = cmd(dir.path())
        .args([
            "local",
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--data-dir",
            "kms",
        ])
        .args([
            "--world",
            "world.hcl",
            "--metadata-addr",
            "127.0.0.1:0",
            "--metadata-hardened",
        ])
        .args([
            "--access-key-id",
            "LTAIroot",
            "--access-key-secret",
            "root-secret-77",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    while !lines
        .iter()
        .any(|l: &String| l.starts_with("ECS metadata service on "))
    {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "{lines:?}");
        lines.push(line.trim().to_owned());
    }
    let url = lines[0].strip_prefix("listening on ").unwrap().to_owned();
    let metadata = lines
        .last()
        .unwrap()
        .strip_prefix("ECS metadata service on ")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        lines.last().unwrap(),
        &format!(
            "ECS metadata service on {metadata} (instance i-rotator000000000001, role rotator)"
        )
    );
    let on_instance = |args: &[&str]| {
        let mut c = cmd(dir.path());
        c.env("ALIBABA_CLOUD_ECS_METADATA", "rotator")
            .env("ROTA_ECS_METADATA_URL", &metadata)
            .env("ALIBABA_CLOUD_IMDSV1_DISABLED", "true")
            .args(["--endpoint", &url, "--data-dir", "state"])
            .args(args);
        c.output().unwrap()
    };
    ok(&on_instance(&["apply", "--auto-approve"]));
    let o = on_instance(&["run", "--once", "--all-due-within", "24h", "-o", "json"]);
    ok(&o);
    let history = on_instance(&["history", "app/db", "-o", "json"]);
    ok(&history);
    assert!(
        stdout(&history).contains("\"outcome\": \"rotated\""),
        "{}",
        stdout(&history)
    );
    let got = on_instance(&["secret", "get", "app/db", "--reveal"]);
    ok(&got);
    assert_eq!(stdout(&got).len(), 40, "the rotation's password length");
    let versions = on_instance(&["secret", "versions", "app/db", "-o", "json"]);
    ok(&versions);
    assert!(
        stdout(&versions).contains("ACSPrevious"),
        "{}",
        stdout(&versions)
    );
    // The role's policy does not reach other secrets.
    std::fs::write(dir.path().join("value"), "x").unwrap();
    let refused = on_instance(&[
        "secret",
        "put",
        "ops/db",
        "--version-id",
        "v1",
        "--value-file",
        "value",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("Forbidden.NoPermission"),
        "{}",
        stderr(&refused)
    );
    let _ = child.kill();
    let _ = child.wait();
    // `rota local world` shows the role and the instance it is attached to.
    let world = run_in(
        dir.path(),
        &[
            "local",
            "world",
            "--data-dir",
            "kms",
            "--world",
            "world.hcl",
        ],
    );
    ok(&world);
    let text = stdout(&world);
    assert!(
        text.contains("ecs instance i-rotator000000000001 (linux, cn-hangzhou, role rotator)"),
        "{text}"
    );
    assert!(
        text.contains(
            "ram role rotator (acs:ram::1234567890123456:role/rotator), assumable by ecs.aliyuncs.com, sessions up to 3600 s, bounded by its policy"
        ),
        "{text}"
    );
}

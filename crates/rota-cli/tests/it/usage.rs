//! What a new user meets on the documented paths, as the built binary on
//! temp directories: `$Auto` secrets rotated by address or live name,
//! missed slots after short outages, the DST fall-back hour, intervals that
//! count from the last rotation, dry runs that probe like the first step,
//! schedules that never fire, plans that say what they skip, and the
//! messages of the lifecycle and world files.

use std::path::Path;
use std::process::{Output, Stdio};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

use crate::common::{eventually, ok_output, rota_in, run_in, stderr, stdout};

/// Writes `name` under `dir`.
fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// `rota ARGS -o json` in `dir`, parsed; the command must succeed.
fn json(dir: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let o = ok_output(run_in(dir, &all));
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", stdout(&o)))
}

/// Asserts `o` failed with `code` and its standard error holds every one
/// of `needles`.
#[track_caller]
fn fails_with(o: &Output, code: i32, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{err}",
        stdout(o)
    );
    for n in needles {
        assert!(err.contains(n), "{n:?} not in:\n{err}");
    }
}

const RAM_WORLD: &str = r#"account_id = "1234567890123456"
region     = "cn-hangzhou"

ram_user "alice" {
  access_key "LTAI5tAliceKey000001" {
    secret = "alice-key-secret"
    status = "Active"
  }
}
"#;

const RAM_SECRET: &str = r#"resource "alicloud_kms_secret" "ram" {
  secret_name               = "$Auto"
  secret_type               = "RAMCredentials"
  secret_data               = jsonencode({ AccessKeys = [{ AccessKeyId = "LTAI5tAliceKey000001", AccessKeySecret = "alice-key-secret" }] })
  extended_config           = jsonencode({ SecretSubType = "RamUserAccessKey", UserName = "alice" })
  version_id                = "v1"
  enable_automatic_rotation = true
  rotation_interval         = "604800s"
}
"#;

#[test]
fn a_ram_credentials_secret_rotates_by_address_and_by_live_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "world.hcl", RAM_WORLD);
    write(dir, "main.tf", RAM_SECRET);
    // Before apply, KMS has not named it: a clear refusal.
    fails_with(
        &run_in(dir, &["rotate", "alicloud_kms_secret.ram"]),
        1,
        &["alicloud_kms_secret.ram", "run `rota apply` first"],
    );
    ok_output(run_in(dir, &["apply", "--auto-approve"]));
    for name in ["alicloud_kms_secret.ram", "acs/ram/user/alice", "auto:ram"] {
        let rows = json(dir, &["rotate", name]);
        assert_eq!(rows[0]["secret"], "acs/ram/user/alice", "{name}: {rows}");
        assert_eq!(rows[0]["outcome"], "rotated", "{name}: {rows}");
    }
    // Status names the live secret, and its next slot is KMS's
    // NextRotationDate (the interval counts from the last rotation).
    let status = json(dir, &["status"]);
    assert_eq!(status[0]["secret"], "acs/ram/user/alice", "{status}");
    let kms = json(dir, &["secret", "describe", "alicloud_kms_secret.ram"]);
    assert_eq!(kms["SecretName"], "acs/ram/user/alice");
    assert_eq!(
        status[0]["next_slot"], kms["NextRotationDate"],
        "{status}\n{kms}"
    );
    // History by address, live name or rotation name: three runs.
    for name in ["alicloud_kms_secret.ram", "acs/ram/user/alice", "auto:ram"] {
        let runs = json(dir, &["history", name]);
        assert_eq!(runs.as_array().map(Vec::len), Some(3), "{name}: {runs}");
    }
    // The daemon schedules it under its live name.
    let o = ok_output(run_in(dir, &["run", "--once", "--all-due-within", "8d"]));
    assert!(stdout(&o).contains("1 rotated"), "{}", stdout(&o));
    // The re-plan finds it again: nothing to do.
    let o = ok_output(run_in(dir, &["plan"]));
    assert!(stdout(&o).contains("No changes"), "{}", stdout(&o));
}

/// The slots (from the token) of the rotations `rota history` records
/// for `secret`.
fn rotated_slots(dir: &Path, secret: &str) -> Vec<DateTime<Utc>> {
    let runs = json(dir, &["history", secret]);
    runs.as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|r| r["outcome"] == "rotated")
        .filter_map(|r| {
            let token = r["token"].as_str()?;
            let slot = token.strip_prefix("rota-")?.get(..16)?;
            NaiveDateTime::parse_from_str(slot, "%Y%m%dT%H%M%SZ")
                .ok()
                .map(|t| t.and_utc())
        })
        .collect()
}

/// A configuration of one secret rotated every five seconds, with
/// `catch_up`.
fn every_five_seconds(dir: &Path, catch_up: &str) {
    write(
        dir,
        "main.tf",
        &format!(
            "resource \"alicloud_kms_secret\" \"s\" {{\n  secret_name = \"app/s\"\n  secret_data = \"initial\"\n  version_id  = \"v1\"\n}}\n\n\
             rotation \"r\" {{\n  secrets  = [\"app/s\"]\n  schedule = \"*/5 * * * * *\"\n  jitter   = false\n  catch_up = \"{catch_up}\"\n}}\n"
        ),
    );
}

#[test]
fn missed_slots_coalesce_after_an_outage_shorter_than_a_minute() {
    let base = rota_test_support::base_now();
    let restart = base + chrono::Duration::seconds(18);
    // The slots that pass while the daemon is down: every 5 s in
    // (base, restart].
    let first = base.timestamp().div_euclid(5) * 5 + 5;
    let last = restart.timestamp().div_euclid(5) * 5;
    assert!(last - first >= 10, "at least three slots are missed");
    for catch_up in ["once", "skip"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        every_five_seconds(dir, catch_up);
        ok_output(run_in(dir, &["apply", "--auto-approve"]));
        // The job is registered at the base instant ...
        let o = ok_output(run_in(dir, &["run", "--once"]));
        assert!(stdout(&o).starts_with("0 due"), "{}", stdout(&o));
        // ... and the daemon comes up 18 s later.
        let mut daemon = rota_in(dir)
            .env("ROTA_TEST_NOW", rota_test_support::rfc3339(restart))
            .args(["run", "--grace", "10s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        eventually("two rotations after the restart", 300, || {
            run_in(dir, &["history", "app/s", "-o", "json"]).status.success()
                && rotated_slots(dir, "app/s").len() >= 2
        });
        kill_term(&daemon);
        assert!(daemon.wait().unwrap().success());
        let slots = rotated_slots(dir, "app/s");
        let missed: Vec<i64> = slots
            .iter()
            .map(DateTime::timestamp)
            .filter(|t| *t <= restart.timestamp())
            .collect();
        match catch_up {
            // One rotation for the missed slots, at the latest.
            "once" => assert_eq!(missed, [last], "{catch_up}: {slots:?}"),
            // None: the next slot is the first to run.
            _ => assert!(missed.is_empty(), "{catch_up}: {slots:?}"),
        }
        assert!(slots.iter().any(|s| *s > restart), "{slots:?}");
    }
}

fn kill_term(child: &std::process::Child) {
    let st = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn validation_refuses_schedules_that_never_fire() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "w.rhai", "fn run(ctx) { }\n");
    write(
        dir,
        "main.tf",
        "resource \"alicloud_kms_secret\" \"a\" {\n  secret_name = \"app/a\"\n  secret_data = \"x\"\n  version_id  = \"v1\"\n}\n\n\
         rotation \"feb\" {\n  secrets  = [\"app/a\"]\n  schedule = \"0 0 31 2 *\"\n}\n\n\
         workflow \"once\" {\n  schedule = \"2020-01-01T00:00:00Z\"\n  script   = \"w.rhai\"\n}\n",
    );
    let o = run_in(dir, &["validate"]);
    fails_with(
        &o,
        1,
        &[
            "rotation \"feb\": schedule \"0 0 31 2 *\" never fires",
            "main.tf:7:1",
            "February has no 30th or 31st",
            "workflow \"once\": schedule \"2020-01-01T00:00:00Z\" never fires",
            "main.tf:12:1",
            "a one-shot time must be later than now",
        ],
    );
}

#[test]
fn an_interval_counts_from_the_secrets_creation_not_the_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "main.tf",
        "resource \"alicloud_kms_secret\" \"a\" {\n  secret_name = \"app/a\"\n  secret_data = \"x\"\n  version_id  = \"v1\"\n}\n\n\
         rotation \"r\" {\n  secrets  = [\"app/a\"]\n  schedule = \"1d\"\n  jitter   = false\n}\n",
    );
    ok_output(run_in(dir, &["apply", "--auto-approve"]));
    let kms = json(dir, &["secret", "describe", "app/a"]);
    let created = rota_test_support::parse(kms["CreateTime"].as_str().unwrap()).unwrap();
    let expect = rota_test_support::rfc3339(created + chrono::Duration::days(1));
    let status = json(dir, &["status"]);
    assert_eq!(status[0]["next_slot"], expect.as_str(), "{status}\n{kms}");
    // The daemon schedules the same slot.
    ok_output(run_in(dir, &["run", "--once"]));
    let status = json(dir, &["status"]);
    assert_eq!(status[0]["state"], "active", "{status}");
    assert_eq!(status[0]["next_slot"], expect.as_str(), "{status}");
}

//! What a new user meets on the documented paths, as the built binary on
//! temp directories: `$Auto` secrets rotated by address or live name,
//! missed slots after short outages, the DST fall-back hour, intervals that
//! count from the last rotation, dry runs that probe like the first step,
//! schedules that never fire, plans that say what they skip, and the
//! messages of the lifecycle and world files.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::common::{ok_output, run_in, stderr, stdout};

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

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
            run_in(dir, &["history", "app/s", "-o", "json"])
                .status
                .success()
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

#[test]
fn a_dry_run_probes_managed_targets_like_the_first_step() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "world.hcl",
        "account_id = \"1234567890123456\"\nregion     = \"cn-hangzhou\"\n\n\
         ecs_instance \"i-linux00000000000001\" {\n  account \"root\" {\n    password = \"Initial-Pw1\"\n  }\n}\n\n\
         ecs_instance \"i-win0000000000000001\" {\n  os_type = \"windows\"\n  account \"Administrator\" {\n    password = \"Initial-Win-Pw1\"\n  }\n}\n",
    );
    let ecs = |name: &str, sub: &str, data: &str, instance: &str| {
        format!(
            "resource \"alicloud_kms_secret\" \"{name}\" {{\n  secret_name     = \"acs/ecs/{name}\"\n  secret_type     = \"ECS\"\n  secret_data     = jsonencode({data})\n  extended_config = jsonencode({{ SecretSubType = \"{sub}\", InstanceId = \"{instance}\", RegionId = \"cn-hangzhou\" }})\n  version_id      = \"v1\"\n}}\n"
        )
    };
    let password = "{ UserName = \"root\", Password = \"Initial-Pw1\" }";
    let key = "{ UserName = \"Administrator\", PublicKey = \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl t\", PrivateKey = \"-----BEGIN OPENSSH PRIVATE KEY-----\\nx\\n-----END OPENSSH PRIVATE KEY-----\" }";
    let config = [
        ecs("ok", "Password", password, "i-linux00000000000001"),
        ecs("gone", "Password", password, "i-doesnotexist0000001"),
        ecs("win", "SSHKey", key, "i-win0000000000000001"),
        "resource \"alicloud_kms_secret\" \"polar\" {\n  secret_name     = \"polar/app\"\n  secret_type     = \"PolarDB\"\n  secret_data     = \"$Auto\"\n  extended_config = jsonencode({ SecretSubType = \"DoubleUsers\", RegionId = \"cn-hangzhou\", DBClusterId = \"pc-bp1example\", DBType = \"PostgreSQL\", AccountName = \"app\", CloneAccountName = \"app_clone\", AccountType = \"Normal\", AccountPrivilege = \"ReadWrite\" })\n  version_id      = \"v1\"\n}\n".to_owned(),
        "rotation \"all\" {\n  secrets  = [\"acs/ecs/*\", \"polar/app\"]\n  schedule = \"@daily\"\n}\n".to_owned(),
    ]
    .join("\n");
    write(dir, "main.tf", &config);
    ok_output(run_in(dir, &["apply", "--auto-approve"]));
    let rows = json(dir, &["rotate", "--all", "--dry-run"]);
    let probe = |secret: &str| {
        let row = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["secret"] == secret)
            .unwrap_or_else(|| panic!("{secret} not in {rows}"));
        (
            row["probe"]["ok"].clone(),
            row["probe"]["error"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    assert_eq!(probe("acs/ecs/ok").0, true, "{rows}");
    let (ok, why) = probe("acs/ecs/gone");
    assert_eq!(ok, false);
    assert!(why.contains("InstanceNotExists"), "{why}");
    let (ok, why) = probe("acs/ecs/win");
    assert_eq!(ok, false);
    assert!(
        why.contains("runs Windows") && why.contains("CommandNotApplicable"),
        "{why}"
    );
    let (ok, why) = probe("polar/app");
    assert_eq!(ok, false);
    assert!(why.contains("not Redis or PolarDB"), "{why}");
    // The plan shows the form of the version id, not one the run will not use.
    let text = stdout(&ok_output(run_in(
        dir,
        &["rotate", "acs/ecs/ok", "--dry-run"],
    )));
    assert!(
        text.contains("a new VersionId (rota-manual-<time>-<random>"),
        "{text}"
    );
    assert!(!text.contains("rota-manual-2"), "{text}");
}

#[test]
fn a_version_stages_change_is_planned_and_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = |stage: &str| {
        format!(
            "resource \"alicloud_kms_secret\" \"a\" {{\n  secret_name    = \"app/a\"\n  secret_data    = \"x\"\n  version_id     = \"v1\"\n  version_stages = [\"ACSCurrent\", \"{stage}\"]\n}}\n"
        )
    };
    write(dir, "main.tf", &config("blue"));
    ok_output(run_in(dir, &["apply", "--auto-approve"]));
    write(dir, "main.tf", &config("green"));
    let plan = stdout(&ok_output(run_in(dir, &["plan"])));
    assert!(
        plan.contains(r#"version_stages = ["ACSCurrent","blue"] -> ["ACSCurrent","green"]"#),
        "{plan}"
    );
    assert!(
        plan.contains("calls: UpdateSecretVersionStage, UpdateSecretVersionStage"),
        "{plan}"
    );
    ok_output(run_in(dir, &["apply", "--auto-approve"]));
    let versions = json(dir, &["secret", "versions", "app/a"]);
    assert!(
        versions.to_string().contains("green") && !versions.to_string().contains("blue"),
        "{versions}"
    );
    let plan = stdout(&ok_output(run_in(dir, &["plan"])));
    assert!(plan.contains("No changes"), "{plan}");
}

#[test]
fn a_new_version_id_of_a_managed_secret_is_a_plan_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "world.hcl",
        "account_id = \"1234567890123456\"\nregion     = \"cn-hangzhou\"\n\n\
         ecs_instance \"i-linux00000000000001\" {\n  account \"root\" {\n    password = \"Initial-Pw1\"\n  }\n}\n",
    );
    let config = |version: &str, password: &str| {
        format!(
            "resource \"alicloud_kms_secret\" \"web\" {{\n  secret_name     = \"acs/ecs/web\"\n  secret_type     = \"ECS\"\n  secret_data     = jsonencode({{ UserName = \"root\", Password = \"{password}\" }})\n  extended_config = jsonencode({{ SecretSubType = \"Password\", InstanceId = \"i-linux00000000000001\", RegionId = \"cn-hangzhou\" }})\n  version_id      = \"{version}\"\n}}\n"
        )
    };
    write(dir, "main.tf", &config("v1", "Initial-Pw1"));
    ok_output(run_in(dir, &["apply", "--auto-approve"]));
    write(dir, "main.tf", &config("v2", "canary-new-pw-77"));
    let o = ok_output(run_in(dir, &["plan"]));
    let plan = stdout(&o);
    assert!(plan.contains("No changes"), "{plan}");
    assert!(
        plan.contains("Warning: alicloud_kms_secret.web: version_id \"v2\" is not written"),
        "{plan}"
    );
    assert!(plan.contains("belongs to its rotation"), "{plan}");
    assert!(!plan.contains("canary-new-pw-77") && !stderr(&o).contains("canary-new-pw-77"));
}

#[test]
fn two_resources_naming_one_secret_are_refused_naming_both() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "main.tf",
        "resource \"alicloud_kms_secret\" \"a\" {\n  secret_name = \"app/db\"\n  secret_data = \"x\"\n  version_id  = \"v1\"\n}\n\n\
         resource \"alicloud_kms_secret\" \"b\" {\n  secret_name = \"app/db\"\n  secret_data = \"y\"\n  version_id  = \"v1\"\n}\n",
    );
    fails_with(
        &run_in(dir, &["validate"]),
        1,
        &[
            "alicloud_kms_secret.a and alicloud_kms_secret.b both name the secret \"app/db\"",
            "main.tf:8:17",
            "the other is at ./main.tf:2:17",
        ],
    );
}

#[test]
fn a_policy_that_locks_rota_out_is_a_warning_and_the_error_hints_the_repair() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let base = "resource \"alicloud_kms_secret\" \"a\" {\n  secret_name = \"app/a\"\n  secret_data = \"x\"\n  version_id  = \"v1\"\n";
    write(dir, "main.tf", &format!("{base}}}\n"));
    ok_output(run_in(dir, &["apply", "--auto-approve"]));
    write(
        dir,
        "main.tf",
        &format!(
            "{base}  policy = jsonencode({{ Version = \"1\", Statement = [{{ Effect = \"Allow\", Principal = {{ RAM = [\"*\"] }}, Action = [\"kms:GetSecretValue\"], Resource = [\"*\"] }}] }})\n}}\n"
        ),
    );
    let plan = stdout(&ok_output(run_in(dir, &["plan"])));
    assert!(
        plan.contains("Warning: alicloud_kms_secret.a: the policy allows no principal it names kms:DescribeSecret"),
        "{plan}"
    );
    ok_output(run_in(dir, &["apply", "--auto-approve"]));
    fails_with(
        &run_in(dir, &["plan"]),
        1,
        &[
            "kms:DescribeSecret is not allowed",
            "hint:",
            "rota secret policy app/a --policy FILE",
        ],
    );
}

#[test]
fn messages_restore_history_and_declared_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "main.tf",
        "resource \"alicloud_kms_secret\" \"a\" {\n  secret_name = \"app/a\"\n  secret_data = \"x\"\n  version_id  = \"v1\"\n}\n\n\
         rotation \"apps\" {\n  secrets  = [\"app/a\"]\n  schedule = \"@daily\"\n}\n",
    );
    ok_output(run_in(dir, &["apply", "--auto-approve"]));
    // Restoring a secret that is not being deleted is an error.
    fails_with(
        &run_in(dir, &["secret", "restore", "app/a"]),
        1,
        &["app/a is not scheduled for deletion: nothing to restore"],
    );
    // History of a name nothing has: an error with the names there are.
    fails_with(
        &run_in(dir, &["history", "nosuch"]),
        1,
        &[
            "no rotation, secret or workflow named \"nosuch\"",
            "apps",
            "app/a",
        ],
    );
    fails_with(&run_in(dir, &["history", "app"]), 1, &["did you mean"]);
    // The rotation name shows its secrets' runs.
    ok_output(run_in(dir, &["rotate", "apps"]));
    let runs = json(dir, &["history", "apps"]);
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs}");
    // A version_id refusal suggests an id not in use; "declared twice"
    // names both places.
    write(
        dir,
        "main.tf",
        "resource \"alicloud_kms_secret\" \"a\" {\n  secret_name = \"app/a\"\n  secret_data = \"changed\"\n  version_id  = \"v1\"\n}\n\n\
         variable \"x\" {}\nvariable \"x\" {}\n",
    );
    fails_with(
        &run_in(dir, &["validate"]),
        1,
        &["variable `x` is declared twice (first at ./main.tf:7:1)"],
    );
    // A new value under the same version_id: the suggestion is an id not
    // in use.
    let other = tempfile::tempdir().unwrap();
    let secret = |data: &str| {
        format!(
            "resource \"alicloud_kms_secret\" \"b\" {{\n  secret_name = \"app/b\"\n  secret_data = \"{data}\"\n  version_id  = \"v2\"\n}}\n"
        )
    };
    write(other.path(), "main.tf", &secret("first"));
    ok_output(run_in(other.path(), &["apply", "--auto-approve"]));
    write(other.path(), "main.tf", &secret("second"));
    fails_with(
        &run_in(other.path(), &["plan"]),
        1,
        &["version_id is still \"v2\"", "(e.g. \"v3\")"],
    );
}

#[test]
fn world_errors_come_together_with_line_and_column_and_validate_checks_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "main.tf",
        "resource \"alicloud_kms_secret\" \"a\" {\n  secret_name = \"app/a\"\n  secret_data = \"x\"\n  version_id  = \"v1\"\n}\n",
    );
    write(
        dir,
        "world.hcl",
        "region = \"cn-hangzhou\"\n\necs_instance \"i-1\" {\n  os_type = \"solaris\"\n}\n\nkey \"bad\" {\n}\n",
    );
    for command in [&["validate"][..], &["plan"][..]] {
        fails_with(
            &run_in(dir, command),
            1,
            &[
                "invalid world file ./world.hcl: 3 problems:",
                "./world.hcl:3:1: ecs_instance \"i-1\": os_type \"solaris\" is not linux or windows",
                "./world.hcl:7:1: key \"bad\": a key id starts with key-",
                "./world.hcl:1:1: account_id is required",
            ],
        );
    }
}

#[test]
fn a_data_directory_in_use_names_its_holder_and_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "main.tf",
        "resource \"alicloud_kms_secret\" \"a\" {\n  secret_name = \"app/a\"\n  secret_data = \"x\"\n  version_id  = \"v1\"\n}\n",
    );
    ok_output(run_in(dir, &["apply", "--auto-approve"]));
    let mut daemon = rota_in(dir)
        .args(["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(daemon.stderr.take().unwrap());
    let mut line = String::new();
    // The daemon has the directory once it says it runs.
    loop {
        line.clear();
        let n = std::io::BufRead::read_line(&mut err, &mut line).unwrap();
        assert!(n > 0, "the daemon stopped before it ran");
        if line.contains("rota run:") {
            break;
        }
    }
    let o = run_in(dir, &["plan"]);
    kill_term(&daemon);
    assert!(daemon.wait().unwrap().success());
    fails_with(
        &o,
        1,
        &[
            &format!(
                "is in use by another process (pid {}: rota run)",
                daemon.id()
            ),
            "rota local serve",
        ],
    );
}

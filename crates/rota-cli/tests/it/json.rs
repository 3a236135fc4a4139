//! `-o json` of every command that prints data, snapshot-tested in one
//! scenario on the embedded local cloud: these shapes are what scripts
//! parse, so a change to one must show up in review. (The `secret list`,
//! `describe`, `get`, `versions` and `tag` shapes are in `secret.rs`,
//! `status` and `history` in `rotation.rs`, `schedule next` in
//! `schedule.rs`.)

use std::path::Path;

use crate::common::{run_in, stderr, stdout};

const CANARY: &str = "canary-json-0d2f";

/// Runs `rota -q -o json ARGS`, requires success and JSON on standard
/// output, and returns it.
fn json(dir: &Path, args: &[&str]) -> String {
    let mut full = vec!["-q", "-o", "json"];
    full.extend_from_slice(args);
    let o = run_in(dir, &full);
    assert!(
        o.status.success(),
        "{args:?}: exit {:?}\n{}{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    let text = stdout(&o);
    serde_json::from_str::<serde_json::Value>(&text)
        .unwrap_or_else(|e| panic!("{args:?} did not print one JSON document ({e}):\n{text}"));
    text
}

/// What changes from run to run: times, tokens and the ids derived from
/// them, ARNs, keys, the configuration id (a hash of the temp path) and
/// durations.
fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)",
            "[TIME]",
        ),
        // Rotation tokens (version ids) carry the slot's or the run's time.
        (r"rota-(manual-)?\d{8}T\d{6}Z-[0-9a-f]{8}", "[TOKEN]"),
        (r"acs:kms:[A-Za-z0-9:/_.\-]+", "[ARN]"),
        (r"key-[A-Za-z0-9\-]+", "[KEY]"),
        (r#""config_id": "[^"]+""#, r#""config_id": "[CONFIG_ID]""#),
        (r#""duration_ms": \d+"#, r#""duration_ms": "[MS]""#),
        (r"/tmp/[^\s\x22]+", "[TEMP]"),
    ]
}

const MAIN_TF: &str = r#"
variable "token" {
  default = "canary-json-0d2f"
}

resource "alicloud_kms_secret" "api" {
  secret_name = "app/api"
  secret_data = var.token
  version_id  = "v1"
  description = "the API token"
  tags        = { team = "ops" }
}

resource "alicloud_kms_secret" "db" {
  secret_name = "app/db"
  secret_data = "canary-json-0d2f-db"
  version_id  = "v1"
}

rotation "apps" {
  secrets  = ["app/*"]
  schedule = "@daily"
  plugin   = "password"
  settings = { length = 24 }
}
"#;

#[test]
fn every_data_command_prints_stable_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("main.tf"), MAIN_TF).unwrap();
    std::fs::write(
        d.join("report.rhai"),
        "fn run(ctx) { log::info(\"checked\"); #{ summary: \"2 secrets checked\", count: 2 } }\n",
    )
    .unwrap();
    std::fs::write(d.join("v2.txt"), format!("{CANARY}-v2")).unwrap();
    std::fs::write(
        d.join("policy.json"),
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::1234567890123456:*"]},"Action":["kms:*"],"Resource":["*"]}]}"#,
    )
    .unwrap();

    let mut all = String::new();
    let mut snap = |name: &str, args: &[&str]| {
        let text = json(d, args);
        all.push_str(&text);
        insta::with_settings!({ filters => filters(), description => args.join(" ") }, {
            insta::assert_snapshot!(name, text);
        });
    };
    snap("json_validate", &["validate"]);
    snap("json_plan", &["plan"]);
    snap("json_apply", &["apply", "--auto-approve"]);
    snap("json_apply_no_changes", &["apply", "--auto-approve"]);
    snap("json_show", &["show"]);
    snap("json_show_one", &["show", "alicloud_kms_secret.api"]);
    snap("json_rotate_dry_run", &["rotate", "--all", "--dry-run"]);
    snap("json_rotate", &["rotate", "app/db"]);
    snap(
        "json_run_once",
        &["run", "--once", "--all-due-within", "24h"],
    );
    snap("json_plugins_list", &["plugins", "list"]);
    snap("json_workflow_run", &["workflow", "run", "report.rhai"]);
    snap("json_local_world", &["local", "world"]);
    snap(
        "json_secret_put",
        &[
            "secret",
            "put",
            "app/db",
            "--version-id",
            "v2",
            "--value-file",
            "v2.txt",
            "--version-stages",
            "canary",
        ],
    );
    snap(
        "json_secret_stage",
        &[
            "secret",
            "stage",
            "app/db",
            "--version-stage",
            "canary",
            "--remove-from-version",
            "v2",
        ],
    );
    snap(
        "json_secret_policy_set",
        &["secret", "policy", "app/api", "--policy", "policy.json"],
    );
    snap("json_secret_policy", &["secret", "policy", "app/api"]);
    snap(
        "json_secret_delete",
        &[
            "secret",
            "delete",
            "app/api",
            "--recovery-window-in-days",
            "7",
        ],
    );
    snap("json_secret_restore", &["secret", "restore", "app/api"]);
    snap("json_plan_destroy", &["plan", "--destroy"]);
    snap("json_destroy", &["destroy", "--auto-approve"]);
    assert!(!all.contains(CANARY), "a value leaked into JSON:\n{all}");
}

//! `rotation` blocks: selection by address, name pattern and tags; implicit
//! rotations; diagnostics with file/line/column; plugin names and settings
//! checked through the registry; and "never fight the rotator" in the plan.

use std::path::PathBuf;
use std::time::Duration;

use rota_engine::config::{Config, LoadOptions};
use rota_kms::SecretString;
use rota_kms::kms::PutSecretValue;
use rota_rotation::PluginRegistry;
use rota_scheduler::CatchUp;

use crate::common::Env;

fn load(text: &str) -> Result<Config, String> {
    let opts = LoadOptions {
        path: PathBuf::from("cfg"),
        ..LoadOptions::default()
    };
    Config::from_text("main.tf", text, &opts).map_err(|d| d.to_string())
}

const SECRETS: &str = r#"
resource "alicloud_kms_secret" "db" {
  secret_name = "app/db"
  secret_data = "x"
  version_id  = "v1"
  tags        = { team = "ops" }
}
resource "alicloud_kms_secret" "api" {
  secret_name = "app/api"
  secret_data = "x"
  version_id  = "v1"
}
resource "alicloud_kms_secret" "svc" {
  secret_name = "svc/queue"
  secret_data = "x"
  version_id  = "v1"
  tags        = { team = "ops" }
}
resource "alicloud_kms_secret" "ecs" {
  secret_name               = "acs/ecs/web-1"
  secret_type               = "ECS"
  secret_data               = jsonencode({ UserName = "root", Password = "Ecs-pass-1" })
  version_id                = "v1"
  enable_automatic_rotation = true
  rotation_interval         = "3d"
  extended_config           = jsonencode({ SecretSubType = "Password", InstanceId = "i-1", RegionId = "cn-hangzhou" })
}
"#;

#[test]
fn rotation_blocks_select_by_address_pattern_and_tags() {
    let text = format!(
        r#"{SECRETS}
rotation "apps" {{
  secrets       = ["alicloud_kms_secret.db", "app/*", "outside/secret"]
  schedule      = "0 3 * * 0"
  timezone      = "Europe/Berlin"
  window        = "2h"
  jitter        = false
  catch_up      = "skip"
  settings      = {{ length = 24, field = "password" }}
  max_attempts  = 5
  retry_backoff = "30s"
  timeout       = "5m"
  on_failure {{
    webhook = "https://hooks.example/rota"
  }}
}}
rotation "ops" {{
  schedule = "@daily"
  match {{
    tags = {{ team = "ops" }}
    name = "svc/*"
  }}
}}
"#
    );
    let c = load(&text).unwrap();
    let got: Vec<(&str, &str, &str, &str)> = c
        .rotations
        .iter()
        .map(|t| {
            (
                t.rotation.as_str(),
                t.secret.as_str(),
                t.plugin.as_str(),
                t.schedule.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("apps", "app/db", "password", "0 3 * * 0"),
            ("apps", "app/api", "password", "0 3 * * 0"),
            ("apps", "outside/secret", "password", "0 3 * * 0"),
            ("ops", "svc/queue", "password", "@daily"),
            ("auto:ecs", "acs/ecs/web-1", "managed", "259200s"),
        ]
    );
    let db = &c.rotations[0];
    assert_eq!(db.address.as_deref(), Some("alicloud_kms_secret.db"));
    assert_eq!(db.secret_type.as_deref(), Some("Generic"));
    assert_eq!(db.timezone, "Europe/Berlin");
    assert_eq!(db.window, Duration::from_secs(7200));
    assert!(!db.jitter);
    assert_eq!(db.catch_up, CatchUp::Skip);
    assert_eq!(db.max_attempts, 5);
    assert_eq!(
        db.on_failure.webhook.as_deref(),
        Some("https://hooks.example/rota")
    );
    assert_eq!(c.rotations[2].secret_type, None);
    assert!(c.rotations[4].implicit);

    c.validate_plugins(&PluginRegistry::with_builtins())
        .unwrap();

    let spec = db.job_spec().unwrap();
    assert_eq!(spec.name, "rotate:app/db");
    assert_eq!(spec.payload["plugin"], "password");
    assert_eq!(spec.payload["settings"]["length"], 24);
    assert_eq!(spec.policy.retry.max_attempts, 5);
    assert_eq!(spec.tz.name(), "Europe/Berlin");
}

#[test]
fn rotation_diagnostics() {
    let cases: &[(&str, &str)] = &[
        (
            "unknown_attribute",
            "rotation \"r\" {\n  secrets = [\"app/db\"]\n  schedul = \"@daily\"\n}\n",
        ),
        (
            "bad_schedule",
            "rotation \"r\" {\n  secrets  = [\"app/db\"]\n  schedule = \"61 * * * *\"\n}\n",
        ),
        (
            "bad_timezone",
            "rotation \"r\" {\n  secrets  = [\"app/db\"]\n  schedule = \"@daily\"\n  timezone = \"Mars/Olympus\"\n}\n",
        ),
        (
            "bad_catch_up",
            "rotation \"r\" {\n  secrets  = [\"app/db\"]\n  schedule = \"@daily\"\n  catch_up = \"all\"\n}\n",
        ),
        (
            "no_selection",
            "rotation \"r\" {\n  schedule = \"@daily\"\n}\n",
        ),
        (
            "pattern_matches_nothing",
            "rotation \"r\" {\n  secrets  = [\"nope/*\"]\n  schedule = \"@daily\"\n}\n",
        ),
        (
            "undeclared_address",
            "rotation \"r\" {\n  secrets  = [\"alicloud_kms_secret.dbb\"]\n  schedule = \"@daily\"\n}\n",
        ),
        (
            "no_schedule",
            "rotation \"r\" {\n  secrets = [\"app/db\"]\n}\n",
        ),
        (
            "selected_twice",
            "rotation \"a\" {\n  secrets  = [\"app/*\"]\n  schedule = \"@daily\"\n}\nrotation \"b\" {\n  secrets  = [\"app/db\"]\n  schedule = \"@daily\"\n}\n",
        ),
        (
            "bad_webhook",
            "rotation \"r\" {\n  secrets  = [\"app/db\"]\n  schedule = \"@daily\"\n  on_failure {\n    webhook = \"ftp://x\"\n  }\n}\n",
        ),
        ("workflow_block", "workflow \"w\" {}\n"),
    ];
    let mut out = String::new();
    for (name, block) in cases {
        let text = format!("{SECRETS}{block}");
        let msg = match load(&text) {
            Ok(_) => "ok".to_owned(),
            Err(e) => e,
        };
        out.push_str(&format!("### {name}\n{msg}\n"));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn plugin_names_and_settings_are_checked_through_the_registry() {
    let registry = PluginRegistry::with_builtins();
    let cases: &[(&str, &str)] = &[
        ("unknown_plugin", "plugin = \"pasword\""),
        ("unknown_setting", "settings = { lenght = 12 }"),
        ("wrong_type", "settings = { length = \"long\" }"),
        ("policy", "settings = { length = 3 }"),
        ("wrong_secret_type", "plugin = \"managed\""),
    ];
    let mut out = String::new();
    for (name, line) in cases {
        let text = format!(
            "{SECRETS}rotation \"r\" {{\n  secrets  = [\"app/db\"]\n  schedule = \"@daily\"\n  {line}\n}}\n"
        );
        let c = load(&text).unwrap();
        let msg = match c.validate_plugins(&registry) {
            Ok(()) => "ok".to_owned(),
            Err(d) => d.to_string(),
        };
        out.push_str(&format!("### {name}\n{msg}\n"));
    }
    insta::assert_snapshot!(out);
}

#[tokio::test]
async fn the_plan_does_not_write_back_over_a_rotated_version() {
    let env = Env::new().await;
    let v1 = "resource \"alicloud_kms_secret\" \"db\" {\n  secret_name = \"db\"\n  secret_data = \"first\"\n  version_id  = \"v1\"\n}\n";
    env.write(v1);
    env.apply().await;
    // What a rotation leaves: a `rota-` version as ACSCurrent.
    env.client
        .send(&PutSecretValue {
            secret_name: "db".into(),
            version_id: "rota-20260101T030000Z-0000abcd".into(),
            secret_data: SecretString::new("rotated"),
            secret_data_type: None,
            version_stages: Some(vec!["ACSCurrent".into()]),
        })
        .await
        .unwrap();
    // A new configured value would normally be put as a new version…
    env.write(&v1.replace("first", "second").replace("v1", "v2"));
    let plan = env.plan().await.unwrap();
    assert!(!plan.has_changes(), "{}", plan.render());
    let notes: Vec<&String> = plan.resources.iter().flat_map(|r| &r.notes).collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("written by Rota's rotation")),
        "{notes:?}"
    );
    let v = env.client.get_secret_value("db").await.unwrap();
    assert_eq!(v.secret_data.expose_secret(), "rotated");
}

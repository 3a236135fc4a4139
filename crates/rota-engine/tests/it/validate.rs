//! Validation messages: file, line, column, address, allowed values.

use std::path::PathBuf;

use rota_engine::config::{Config, LoadOptions};

fn check(text: &str) -> String {
    let opts = LoadOptions {
        path: PathBuf::from("cfg"),
        ..LoadOptions::default()
    };
    match Config::from_text("main.tf", text, &opts) {
        Ok(_) => "ok".into(),
        Err(d) => d.to_string(),
    }
}

/// A valid Rds `secret_data`.
const RDS_DATA: &str =
    "jsonencode({ Accounts = [{ AccountName = \"app\", AccountPassword = \"Initial-Pw1\" }] })";

fn secret(extra: &str) -> String {
    format!(
        "resource \"alicloud_kms_secret\" \"s\" {{\n  secret_name = \"app\"\n  secret_data = \"x\"\n  version_id  = \"v1\"\n{extra}}}\n"
    )
}

#[test]
fn validation_messages() {
    let cases: &[(&str, String)] = &[
        ("secret_type", secret("  secret_type = \"Vault\"\n")),
        ("secret_data_type", secret("  secret_data_type = \"base64\"\n")),
        ("rotation_interval", secret("  rotation_interval = \"7w\"\n")),
        ("recovery_window", secret("  recovery_window_in_days = 3\n")),
        ("key_id", secret("  key_id = \"key-1\"\n")),
        ("certificate_id", secret("  certificate_id = \"cert-1\"\n")),
        ("generic_acs_prefix", secret("").replace("\"app\"", "\"acs/app\"")),
        ("name_charset", secret("").replace("\"app\"", "\"app name!\"")),
        ("policy_json", secret("  policy = \"not json\"\n")),
        ("unknown_attribute", secret("  secret_nmae = \"x\"\n")),
        ("computed_attribute", secret("  arn = \"x\"\n")),
        ("unknown_block", "resouce \"alicloud_kms_secret\" \"s\" {}\n".into()),
        ("unknown_resource_type", "resource \"alicloud_kms_key\" \"k\" {}\n".into()),
        ("unknown_function", secret("  description = regexall(\"x\", \"y\")\n")),
        ("undeclared_variable", secret("  description = var.nope\n")),
        ("missing_required", "resource \"alicloud_kms_secret\" \"s\" {\n  secret_name = \"app\"\n}\n".into()),
        ("generic_rotation", secret("  enable_automatic_rotation = true\n  rotation_interval = \"7d\"\n")),
        ("managed_without_extended_config", secret("  secret_type = \"Rds\"\n").replace("\"x\"", RDS_DATA)),
        ("rds_double_users_two_accounts", secret("  secret_type = \"Rds\"\n  extended_config = jsonencode({ SecretSubType = \"DoubleUsers\", DBInstanceId = \"rm-1\" })\n").replace("\"x\"", "jsonencode({ Accounts = [{ AccountName = \"app\", AccountPassword = \"canary-pw-1\" }, { AccountName = \"app_clone\", AccountPassword = \"canary-pw-1\" }] })")),
        ("ecs_subtype", secret("  secret_type = \"ECS\"\n  extended_config = jsonencode({ SecretSubType = \"Token\" })\n").replace("\"app\"", "\"acs/ecs/app\"")),
        ("reserved_tag", secret("  tags = { \"rota:managed\" = \"false\" }\n")),
        ("stage_without_version", secret("  version_stage = \"ACSPrevious\"\n  remove_from_version = \"v1\"\n")),
        ("timeouts", secret("  timeouts {\n    create = \"soon\"\n  }\n")),
        ("syntax", "resource \"alicloud_kms_secret\" \"s\" {\n  secret_name = \n}\n".into()),
        ("undeclared_reference", secret("  description = alicloud_kms_secret.other.arn\n")),
        ("provider_alias", secret("  provider = alicloud.other\n")),
        ("data_block", "data \"alicloud_kms_aliases\" \"all\" {}\n".into()),
        ("plugins_missing_path", format!("{}plugins {{\n  paths = [\"no/such/folder\"]\n}}\n", secret(""))),
        ("plugins_unknown_attribute", format!("{}plugins {{\n  path = [\"x\"]\n}}\n", secret(""))),
        ("plugins_not_a_list", format!("{}plugins {{\n  paths = \"x\"\n}}\n", secret(""))),
        ("rotate_immediately_type", format!("{}rotation \"r\" {{\n  secrets = [\"app\"]\n  schedule = \"@daily\"\n  rotate_immediately = \"yes\"\n}}\n", secret(""))),
        ("secret_data_too_long", secret("").replace("\"x\"", &format!("\"{}\"", "a".repeat(30_721)))),
    ];
    let mut out = String::new();
    for (name, text) in cases {
        out.push_str(&format!("### {name}\n{}\n\n", check(text)));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn the_functions_variables_and_templates_ops_use() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.json"), r#"{"user":"app"}"#).unwrap();
    std::fs::write(
        dir.path().join("main.tf"),
        r#"
variable "env" { default = "dev" }
variable "owner" { type = string }
variable "extra" {
  type    = map(string)
  default = {}
}
locals {
  base = { env = var.env, owner = var.owner }
  tags = merge(local.base, var.extra)
}
resource "alicloud_kms_secret" "a" {
  secret_name = format("%s-%s", "app", var.env)
  secret_data = jsonencode(merge(jsondecode(file("data.json")), { pass = "p" }))
  version_id  = "v1"
  description = "owned by ${lookup(local.tags, "owner", "nobody")}"
  tags        = local.tags
  timeouts {
    create = "1m"
    delete = "30s"
  }
}
"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("terraform.tfvars"), "env = \"staging\"\n").unwrap();
    let var_file = dir.path().join("prod.tfvars");
    std::fs::write(&var_file, "env = \"prod\"\n").unwrap();
    let load = |vars: Vec<(&str, &str)>, files: Vec<PathBuf>, env: Vec<(&str, &str)>| {
        Config::load(&LoadOptions {
            path: dir.path().to_path_buf(),
            vars: vars
                .into_iter()
                .map(|(a, b)| (a.into(), b.into()))
                .collect(),
            var_files: files,
            env_vars: env.into_iter().map(|(a, b)| (a.into(), b.into())).collect(),
            now: None,
        })
    };
    // owner has no value: a clear error.
    let err = load(vec![], vec![], vec![]).unwrap_err().to_string();
    assert!(err.contains("variable `owner` has no value"), "{err}");
    // TF_VAR_ < terraform.tfvars < -var-file < -var.
    let c = load(vec![], vec![], vec![("owner", "ops"), ("env", "envvar")]).unwrap();
    let a = &c.resources[0].args;
    assert_eq!(a.secret_name, "app-staging");
    assert_eq!(
        a.secret_data.expose_secret(),
        r#"{"pass":"p","user":"app"}"#
    );
    assert_eq!(a.description.as_deref(), Some("owned by ops"));
    assert_eq!(a.tags.get("env").map(String::as_str), Some("staging"));
    assert_eq!(a.timeouts.create.as_secs(), 60);
    assert_eq!(a.timeouts.update.as_secs(), 300);
    assert_eq!(a.timeouts.delete.as_secs(), 30);
    let c = load(vec![("owner", "x")], vec![var_file.clone()], vec![]).unwrap();
    assert_eq!(c.resources[0].args.secret_name, "app-prod");
    let c = load(
        vec![("owner", "x"), ("env", "cli"), ("extra", "{team = \"t\"}")],
        vec![var_file],
        vec![],
    )
    .unwrap();
    assert_eq!(c.resources[0].args.secret_name, "app-cli");
    assert_eq!(
        c.resources[0].args.tags.get("team").map(String::as_str),
        Some("t")
    );
    let err = load(vec![("owner", "x"), ("nope", "1")], vec![], vec![])
        .unwrap_err()
        .to_string();
    assert!(err.contains("no variable `nope` is declared"), "{err}");
}

#[test]
fn the_provider_block() {
    let c = Config::from_text(
        "main.tf",
        r#"
variable "ak" { default = "LTAIexample" }
provider "alicloud" {
  region     = "cn-shanghai"
  access_key = var.ak
  secret_key = "sk"
  profile    = "default"
  endpoints {
    kms = "127.0.0.1:8080"
  }
}
"#,
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(c.provider.region.as_deref(), Some("cn-shanghai"));
    assert_eq!(c.provider.access_key.as_deref(), Some("LTAIexample"));
    assert_eq!(c.provider.kms_endpoint.as_deref(), Some("127.0.0.1:8080"));
    assert!(c.provider.has_credentials());
    assert!(c.resources.is_empty());
}

#[test]
fn plugin_paths_resolve_against_the_configuration_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("shared/plugins")).unwrap();
    std::fs::create_dir_all(dir.path().join("cfg")).unwrap();
    std::fs::write(
        dir.path().join("cfg/main.tf"),
        "plugins {\n  paths = [\"../shared/plugins\", \"../shared/plugins\"]\n}\nplugins {\n  paths = [\"../shared\"]\n}\n",
    )
    .unwrap();
    let c = Config::load(&LoadOptions {
        path: dir.path().join("cfg"),
        ..LoadOptions::default()
    })
    .unwrap();
    assert_eq!(
        c.plugin_paths,
        vec![
            dir.path().join("cfg/../shared/plugins"),
            dir.path().join("cfg/../shared"),
        ]
    );
}

#[test]
fn the_provider_names_an_ecs_instance_ram_role() {
    let opts = LoadOptions {
        path: PathBuf::from("cfg"),
        ..LoadOptions::default()
    };
    let c = Config::from_text(
        "main.tf",
        "provider \"alicloud\" {\n  region        = \"cn-shanghai\"\n  ecs_role_name = \"rota-rotator\"\n}\n",
        &opts,
    )
    .unwrap();
    assert_eq!(c.provider.ecs_role_name.as_deref(), Some("rota-rotator"));
    assert_eq!(c.provider.region.as_deref(), Some("cn-shanghai"));
}

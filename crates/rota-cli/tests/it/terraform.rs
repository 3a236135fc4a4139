//! Terraform's `lifecycle` block as teams write it around rotation:
//! `ignore_changes` stops the plan from fighting the rotated value,
//! `prevent_destroy` refuses a plan that would delete, and
//! `replace_triggered_by` replaces a secret when another one changes.

use crate::common::{run_in, stderr, stdout};

/// `rota validate` in `d` exits 1 and says `expected`; returns what it
/// said.
#[track_caller]
fn validate_fails_with(d: &std::path::Path, expected: &str) -> String {
    let o = run_in(d, &["validate"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains(expected), "{err}");
    err
}

fn write(dir: &std::path::Path, a_data: &str, a_version: &str, c_version: &str) {
    std::fs::write(
        dir.join("main.tf"),
        format!(
            "resource \"alicloud_kms_secret\" \"a\" {{\n  secret_name = \"app/a\"\n  secret_data = \"{a_data}\"\n  version_id  = \"{a_version}\"\n  lifecycle {{\n    ignore_changes  = [secret_data, version_id]\n    prevent_destroy = true\n  }}\n}}\n\
             resource \"alicloud_kms_secret\" \"c\" {{\n  secret_name = \"app/c\"\n  secret_data = \"c-{c_version}\"\n  version_id  = \"{c_version}\"\n}}\n\
             resource \"alicloud_kms_secret\" \"b\" {{\n  secret_name = \"app/b\"\n  secret_data = \"b-1\"\n  version_id  = \"v1\"\n  force_delete_without_recovery = true\n  lifecycle {{\n    replace_triggered_by = [alicloud_kms_secret.c.version_id]\n  }}\n}}\n\
             rotation \"a\" {{\n  secrets  = [\"app/a\"]\n  schedule = \"@daily\"\n}}\n"
        ),
    )
    .unwrap();
}

#[test]
fn lifecycle_ignore_changes_prevent_destroy_and_replace_triggered_by() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "a-1", "v1", "v1");
    crate::rotation::ok(&run_in(d, &["apply", "--auto-approve"]));
    // Rotated, then the configuration's value changed: nothing to do.
    crate::rotation::ok(&run_in(d, &["rotate", "app/a"]));
    write(d, "a-2", "v2", "v1");
    let o = run_in(d, &["plan", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // c changes: b is replaced, in the plan and in the apply.
    write(d, "a-2", "v2", "v2");
    let o = run_in(d, &["plan"]);
    let text = stdout(&o);
    assert!(
        text.contains("alicloud_kms_secret.b must be replaced"),
        "{text}"
    );
    assert!(
        text.contains("lifecycle.replace_triggered_by: alicloud_kms_secret.c.version_id changes"),
        "{text}"
    );
    assert!(!text.contains("alicloud_kms_secret.a"), "{text}");
    crate::rotation::ok(&run_in(d, &["apply", "--auto-approve"]));
    let o = run_in(d, &["plan", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // destroy would delete a: refused, nothing deleted.
    let o = run_in(d, &["destroy", "--auto-approve"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("Instance cannot be destroyed: Resource alicloud_kms_secret.a has lifecycle.prevent_destroy set"),
        "{}",
        stderr(&o)
    );
    let o = run_in(d, &["secret", "list"]);
    assert!(stdout(&o).contains("app/a") && stdout(&o).contains("app/b"));
}

#[test]
fn lifecycle_mistakes_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("main.tf"),
        "resource \"alicloud_kms_secret\" \"a\" {\n  secret_name = \"app/a\"\n  secret_data = \"x\"\n  version_id  = \"v1\"\n  lifecycle {\n    ignore_changes = [secret_dta]\n    prevent_destroy = \"yes\"\n    replace_triggered_by = [aws_secret.x]\n    create_before_destroy = true\n    precondition = 1\n  }\n}\n",
    )
    .unwrap();
    let o = run_in(d, &["validate"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    for expected in [
        "`secret_dta` is not an argument of alicloud_kms_secret",
        "did you mean `secret_data`",
        "lifecycle.prevent_destroy of alicloud_kms_secret.a must be true or false",
        "`aws_secret.x` is not a reference to an alicloud_kms_secret",
        "unknown attribute `precondition` in the lifecycle",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in\n{err}");
    }
}

#[test]
fn outputs_are_printed_after_apply_and_by_rota_output_with_sensitive_ones_hidden() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("main.tf"),
        "variable \"apps\" {\n  default = { web = \"canary-output-w1\", api = \"a-1\" }\n}\n\
         resource \"alicloud_kms_secret\" \"web\" {\n  secret_name = \"apps/web\"\n  secret_data = var.apps[\"web\"]\n  version_id  = \"v1\"\n}\n\
         resource \"alicloud_kms_secret\" \"api\" {\n  secret_name = \"apps/api\"\n  secret_data = var.apps[\"api\"]\n  version_id  = \"v1\"\n}\n\
         output \"arns\" {\n  value = [for s in [alicloud_kms_secret.web, alicloud_kms_secret.api] : s.arn]\n}\n\
         output \"web_value\" {\n  value     = alicloud_kms_secret.web.secret_data\n  sensitive = true\n}\n",
    )
    .unwrap();
    let o = run_in(d, &["apply", "--auto-approve"]);
    crate::rotation::ok(&o);
    let text = stdout(&o);
    assert!(text.contains("Outputs:\n\narns = [\"acs:kms:"), "{text}");
    assert!(text.contains("web_value = \"<sensitive>\""), "{text}");
    assert!(!text.contains("canary-output-w1"), "{text}");
    let o = run_in(d, &["output", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["arns"]["value"].as_array().unwrap().len(), 2);
    assert_eq!(v["web_value"]["value"], "<sensitive>");
    let o = run_in(d, &["output", "web_value", "--reveal"]);
    assert_eq!(stdout(&o), "canary-output-w1\n");
    // An output showing a secret value must be marked sensitive.
    std::fs::write(
        d.join("extra.tf"),
        "output \"leak\" {\n  value = alicloud_kms_secret.api.secret_data\n}\n",
    )
    .unwrap();
    validate_fails_with(d, "output \"leak\" refers to sensitive values");
}

#[test]
fn json_variable_files_are_read_in_terraforms_order() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("main.tf"),
        "variable \"name\" {}\nvariable \"data\" {}\nvariable \"tags\" {\n  default = {}\n}\n\
         resource \"alicloud_kms_secret\" \"a\" {\n  secret_name = var.name\n  secret_data = var.data\n  version_id  = \"v1\"\n  tags        = var.tags\n}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("terraform.tfvars"),
        "name = \"from/tfvars\"\ndata = \"x\"\n",
    )
    .unwrap();
    std::fs::write(d.join("terraform.tfvars.json"), "{\"name\": \"from/json\"}").unwrap();
    std::fs::write(
        d.join("b.auto.tfvars.json"),
        "{\"tags\": {\"team\": \"ops\"}, \"unused\": 1}",
    )
    .unwrap();
    let o = run_in(d, &["plan", "-o", "json"]);
    crate::rotation::ok(&o);
    let text = stdout(&o);
    assert!(text.contains("from/json"), "{text}");
    assert!(text.contains("\"team\""), "{text}");
    std::fs::write(d.join("b.auto.tfvars.json"), "{\"tags\": ").unwrap();
    let err = validate_fails_with(d, "b.auto.tfvars.json:1:");
    assert!(err.contains("not valid JSON"), "{err}");
}

#[test]
fn target_limits_the_plan_and_replace_forces_a_replacement() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let write = |b_version: &str, c_version: &str| {
        std::fs::write(
            d.join("main.tf"),
            format!(
                "resource \"alicloud_kms_secret\" \"a\" {{\n  secret_name = \"t/a\"\n  secret_data = \"a\"\n  version_id  = \"v1\"\n}}\n\
                 resource \"alicloud_kms_secret\" \"b\" {{\n  secret_name = \"t/b\"\n  secret_data = \"b-${{alicloud_kms_secret.a.version_id}}\"\n  version_id  = \"{b_version}\"\n  force_delete_without_recovery = true\n}}\n\
                 resource \"alicloud_kms_secret\" \"c\" {{\n  secret_name = \"t/c\"\n  secret_data = \"c\"\n  version_id  = \"{c_version}\"\n}}\n"
            ),
        )
        .unwrap();
    };
    write("v1", "v1");
    // Only b and what it depends on (a).
    let o = run_in(
        d,
        &[
            "apply",
            "--auto-approve",
            "-target",
            "alicloud_kms_secret.b",
        ],
    );
    crate::rotation::ok(&o);
    assert!(stdout(&o).contains("2 added"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("resource targeting is in effect"),
        "{}",
        stderr(&o)
    );
    let o = run_in(d, &["plan", "-o", "json"]);
    let text = stdout(&o);
    assert!(text.contains("\"t/c\""), "{text}");
    crate::rotation::ok(&run_in(d, &["apply", "--auto-approve"]));
    // -replace: b is deleted and created again.
    let o = run_in(d, &["plan", "-replace=alicloud_kms_secret.b"]);
    let text = stdout(&o);
    assert!(
        text.contains("alicloud_kms_secret.b must be replaced"),
        "{text}"
    );
    assert!(text.contains("-replace asked for it"), "{text}");
    let o = run_in(d, &["plan", "--target", "alicloud_kms_secret.nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no resource alicloud_kms_secret.nope is declared"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_moved_address_keeps_its_secret_and_the_ownership_tag_follows() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let secret = |label: &str| {
        format!(
            "resource \"alicloud_kms_secret\" \"{label}\" {{\n  secret_name = \"m/x\"\n  secret_data = \"x\"\n  version_id  = \"v1\"\n}}\n"
        )
    };
    std::fs::write(d.join("main.tf"), secret("old")).unwrap();
    crate::rotation::ok(&run_in(d, &["apply", "--auto-approve"]));
    std::fs::write(
        d.join("main.tf"),
        format!(
            "{}moved {{\n  from = alicloud_kms_secret.old\n  to   = alicloud_kms_secret.new\n}}\n",
            secret("new")
        ),
    )
    .unwrap();
    let o = run_in(d, &["plan"]);
    let text = stdout(&o);
    assert!(
        text.contains("moved from alicloud_kms_secret.old: the rota:address tag follows"),
        "{text}"
    );
    assert!(
        text.contains("0 to add, 1 to change, 0 to destroy"),
        "{text}"
    );
    crate::rotation::ok(&run_in(d, &["apply", "--auto-approve"]));
    let o = run_in(d, &["secret", "describe", "m/x", "-o", "json"]);
    assert!(
        stdout(&o).contains("alicloud_kms_secret.new"),
        "{}",
        stdout(&o)
    );
    let o = run_in(d, &["plan", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // Mistakes: the old address still declared; the new one not.
    std::fs::write(
        d.join("main.tf"),
        format!(
            "{}{}moved {{\n  from = alicloud_kms_secret.old\n  to   = alicloud_kms_secret.gone\n}}\n",
            secret("new"),
            secret("old").replace("m/x", "m/y")
        ),
    )
    .unwrap();
    validate_fails_with(
        d,
        "moved to alicloud_kms_secret.gone, which is not declared",
    );
}

#[test]
fn an_import_block_takes_over_an_existing_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("val"), "v").unwrap();
    crate::rotation::ok(&run_in(
        d,
        &[
            "secret",
            "put",
            "ext/x",
            "--version-id",
            "v1",
            "--value-file",
            "val",
        ],
    ));
    let resource = "resource \"alicloud_kms_secret\" \"x\" {\n  secret_name = \"ext/x\"\n  secret_data = \"v\"\n  version_id  = \"v1\"\n}\n";
    std::fs::write(
        d.join("main.tf"),
        format!("{resource}import {{\n  to = alicloud_kms_secret.x\n  id = \"ext/x\"\n}}\n"),
    )
    .unwrap();
    let o = run_in(d, &["plan"]);
    assert!(
        stdout(&o).contains("imported: the secret gets this configuration's ownership tags"),
        "{}",
        stdout(&o)
    );
    crate::rotation::ok(&run_in(d, &["apply", "--auto-approve"]));
    let o = run_in(d, &["secret", "describe", "ext/x", "-o", "json"]);
    assert!(
        stdout(&o).contains("\"alicloud_kms_secret.x\""),
        "{}",
        stdout(&o)
    );
    let o = run_in(d, &["plan", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // An id that is not the declared name.
    std::fs::write(
        d.join("main.tf"),
        format!("{resource}import {{\n  to = alicloud_kms_secret.x\n  id = \"ext/other\"\n}}\n"),
    )
    .unwrap();
    validate_fails_with(
        d,
        "import id \"ext/other\" is not the secret_name \"ext/x\"",
    );
}

/// A team's configuration over several files: `for_each` over a map
/// variable with `lifecycle { ignore_changes = [secret_data] }`, `count`,
/// references between instances, outputs over the instances, standard
/// functions (`yamldecode`, `try`, `formatlist`, `merge`), a rotation of
/// every instance of a block.
fn team_config(d: &std::path::Path) {
    std::fs::write(
        d.join("variables.tf"),
        r#"variable "apps" {
  type = map(string)
  default = {
    web = "web-initial"
    api = "api-initial"
  }
}

variable "replicas" {
  type    = number
  default = 2
}

variable "settings" {
  type    = string
  default = "team: payments\nowner: ops\n"
}

locals {
  settings = yamldecode(var.settings)
  tags     = merge({ team = local.settings.team }, { tier = try(local.settings.tier, "standard") })
}
"#,
    )
    .unwrap();
    std::fs::write(
        d.join("secrets.tf"),
        r#"resource "alicloud_kms_secret" "app" {
  for_each                      = var.apps
  secret_name                   = "apps/${each.key}"
  secret_data                   = each.value
  version_id                    = "v1"
  description                   = "the ${each.key} credentials of ${local.settings.team}"
  tags                          = local.tags
  force_delete_without_recovery = true
  lifecycle {
    ignore_changes = [secret_data, version_id]
  }
}

resource "alicloud_kms_secret" "replica" {
  count                         = var.replicas
  secret_name                   = "replicas/${count.index}"
  secret_data                   = "replica-${count.index}"
  version_id                    = "v1"
  description                   = "copy of ${alicloud_kms_secret.app["web"].secret_name}"
  force_delete_without_recovery = true
}
"#,
    )
    .unwrap();
    std::fs::write(
        d.join("outputs.tf"),
        r#"output "app_arns" {
  value = { for k, s in alicloud_kms_secret.app : k => s.arn }
}

output "replica_names" {
  value = formatlist("%s (replica)", alicloud_kms_secret.replica[*].secret_name)
}
"#,
    )
    .unwrap();
    std::fs::write(
        d.join("rotation.hcl"),
        r#"rotation "apps" {
  secrets  = ["alicloud_kms_secret.app"]
  schedule = "@daily"
}

rotation "first_replica" {
  secrets  = ["alicloud_kms_secret.replica[0]"]
  schedule = "@daily"
}

rotation "vault" {
  secrets  = ["module.vault.alicloud_kms_secret.this"]
  schedule = "@daily"
}
"#,
    )
    .unwrap();
    // A local module, and a data source over what the configuration made.
    std::fs::write(
        d.join("shared.tf"),
        r#"module "vault" {
  source = "./modules/vault"
  name   = "vault/${local.settings.team}"
  value  = "vault-initial"
}

data "alicloud_kms_secrets" "apps" {
  name_regex = "^apps/"
  tags       = { team = "payments" }
}

output "vault_arn" {
  value = module.vault.arn
}

output "known_apps" {
  value = data.alicloud_kms_secrets.apps.names
}
"#,
    )
    .unwrap();
    std::fs::create_dir_all(d.join("modules/vault")).unwrap();
    std::fs::write(
        d.join("modules/vault/main.tf"),
        r#"variable "name" {
  type = string
}

variable "value" {
  type      = string
  sensitive = true
}

resource "alicloud_kms_secret" "this" {
  secret_name                   = var.name
  secret_data                   = var.value
  version_id                    = "v1"
  force_delete_without_recovery = true
  lifecycle {
    ignore_changes = [secret_data, version_id]
  }
}

output "arn" {
  value = alicloud_kms_secret.this.arn
}
"#,
    )
    .unwrap();
}

#[test]
fn a_multi_file_configuration_with_every_construct_plans_applies_rotates_and_destroys() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    team_config(d);
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"rota:config=[0-9a-f]{16}", "rota:config=[id]");
    settings.add_filter(
        r"rota-(manual|[0-9]{8}T[0-9]{6}Z)-[0-9A-Za-z-]+",
        "[rotated version]",
    );
    let o = run_in(d, &["plan"]);
    assert!(o.status.success(), "{}", stderr(&o));
    settings.bind(|| insta::assert_snapshot!("for_each_count_create", stdout(&o)));
    let o = run_in(d, &["apply", "--auto-approve"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("Apply complete! Resources: 5 added"),
        "{text}"
    );
    assert!(
        text.contains(r#"replica_names = ["replicas/0 (replica)","replicas/1 (replica)"]"#),
        "{text}"
    );
    assert!(
        text.contains(r#"known_apps = ["apps/api","apps/web"]"#),
        "{text}"
    );
    assert!(
        text.contains("vault_arn = \"acs:kms:cn-hangzhou:"),
        "{text}"
    );
    assert!(text.contains(r#""web":"acs:kms:cn-hangzhou:"#), "{text}");
    // Nothing to do again.
    let o = run_in(d, &["plan", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // The rotations select every instance of app, and replica[0].
    let o = run_in(d, &["rotate", "--all"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let o = run_in(d, &["status", "-o", "json"]);
    let status = stdout(&o);
    for name in ["apps/web", "apps/api", "replicas/0", "vault/payments"] {
        assert!(status.contains(&format!("\"{name}\"")), "{name}: {status}");
    }
    assert!(!status.contains("\"replicas/1\""), "{status}");
    // The rotated values differ from the configuration: the app
    // instances ignore secret_data, and replica[0] (without
    // ignore_changes) is not fought either, its version being the
    // rotator's: no change.
    let o = run_in(d, &["plan", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // Removing a key and a replica plans exactly those instances.
    let o = run_in(
        d,
        &[
            "plan",
            "-var",
            "apps={ web = \"web-initial\" }",
            "-var",
            "replicas=1",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    settings.bind(|| insta::assert_snapshot!("for_each_count_remove", stdout(&o)));
    // -target takes a whole block or one instance.
    let o = run_in(
        d,
        &[
            "plan",
            "-target",
            r#"alicloud_kms_secret.app["api"]"#,
            "-var",
            "replicas=3",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("replica[2]"), "{}", stdout(&o));
    let o = run_in(
        d,
        &[
            "plan",
            "-target",
            "alicloud_kms_secret.replica",
            "-var",
            "replicas=3",
        ],
    );
    assert!(
        stdout(&o).contains("alicloud_kms_secret.replica[2] will be created"),
        "{}",
        stdout(&o)
    );
    let o = run_in(d, &["destroy", "--auto-approve"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("5 destroyed"), "{}", stdout(&o));
    let o = run_in(d, &["secret", "list"]);
    assert!(!stdout(&o).contains("apps/"), "{}", stdout(&o));
}

#[test]
fn count_and_for_each_mistakes_are_named_before_any_call() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let secret = |meta: &str, name: &str| {
        format!(
            "resource \"alicloud_kms_secret\" \"s\" {{\n{meta}  secret_name = \"{name}\"\n  secret_data = \"x\"\n  version_id  = \"v1\"\n}}\n"
        )
    };
    let cases = [
        (
            secret("  count = 1.5\n", "a-${count.index}"),
            "count must be a whole number from 0 to 10000 (alicloud_kms_secret.s)",
        ),
        (
            secret("  for_each = [1, 2]\n", "a-${each.key}"),
            "for_each takes a map or a set of strings; this set holds a value that is not a string",
        ),
        (
            secret("  for_each = \"x\"\n", "a-${each.key}"),
            "for_each takes a map or a set of strings (alicloud_kms_secret.s)",
        ),
        (
            secret("", "a-${each.key}"),
            "`each` is used in alicloud_kms_secret.s which has no `for_each`",
        ),
        (
            secret("", "a-${count.index}"),
            "`count` is used in alicloud_kms_secret.s which has no `count`",
        ),
        (
            secret("  count = 1\n  for_each = { a = 1 }\n", "a"),
            "alicloud_kms_secret.s sets both `count` and `for_each`",
        ),
        (
            format!(
                "{}resource \"alicloud_kms_secret\" \"t\" {{\n  for_each = {{ x = alicloud_kms_secret.s.secret_name }}\n  secret_name = \"t-${{each.key}}\"\n  secret_data = \"x\"\n  version_id = \"v1\"\n}}\n",
                secret("", "a")
            ),
            "for_each may not refer to resources (alicloud_kms_secret.t)",
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(d.join("main.tf"), &text).unwrap();
        let err = validate_fails_with(d, expected);
        assert!(err.contains("main.tf:"), "{err}");
    }
}

/// `-parallelism N` applies independent secrets at once and a dependent
/// one only after what it refers to (its description reads the ARN known
/// after that apply); destroy goes the other way. Out-of-range values are
/// refused.
#[test]
fn parallel_apply_respects_dependencies() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("main.tf"),
        r#"resource "alicloud_kms_secret" "app" {
  for_each                      = toset(["a", "b", "c", "d", "e", "f"])
  secret_name                   = "par/${each.key}"
  secret_data                   = "v-${each.key}"
  version_id                    = "v1"
  force_delete_without_recovery = true
}
resource "alicloud_kms_secret" "index" {
  secret_name                   = "par/index"
  secret_data                   = jsonencode([for s in alicloud_kms_secret.app : s.arn])
  version_id                    = "v1"
  description                   = alicloud_kms_secret.app["f"].arn
  force_delete_without_recovery = true
}
"#,
    )
    .unwrap();
    let o = run_in(d, &["apply", "--auto-approve", "-parallelism", "4"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("Resources: 7 added"), "{text}");
    let index_at = text.find("alicloud_kms_secret.index: Creating").unwrap();
    for k in ["a", "b", "c", "d", "e", "f"] {
        let done = text
            .find(&format!(
                "alicloud_kms_secret.app[\"{k}\"]: Creation complete"
            ))
            .unwrap();
        assert!(done < index_at, "{k} before index: {text}");
    }
    let o = run_in(d, &["secret", "describe", "par/index", "-o", "json"]);
    assert!(stdout(&o).contains("secret/par/f"), "{}", stdout(&o));
    let o = run_in(d, &["plan", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let o = run_in(d, &["destroy", "--auto-approve", "-parallelism=3"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    let index_gone = text
        .find("alicloud_kms_secret.index: Destruction complete")
        .unwrap();
    for k in ["a", "b", "c", "d", "e", "f"] {
        let starts = text
            .find(&format!("alicloud_kms_secret.app[\"{k}\"]: Destroying"))
            .unwrap_or_else(|| panic!("{k}: {text}"));
        assert!(index_gone < starts, "index destroyed before {k}: {text}");
    }
    for bad in ["0", "257", "x"] {
        let o = run_in(d, &["apply", "--auto-approve", "-parallelism", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("--parallelism"), "{}", stderr(&o));
    }
}

/// Instance addresses in `depends_on`, `replace_triggered_by`, `-replace`
/// and a sensitive output.
#[test]
fn instance_addresses_in_lifecycle_replace_and_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("main.tf"),
        r#"variable "v" {
  type    = string
  default = "1"
}
resource "alicloud_kms_secret" "app" {
  for_each                      = { web = "a", api = "b" }
  secret_name                   = "ed/${each.key}"
  secret_data                   = "${each.value}-${var.v}"
  version_id                    = "v${var.v}"
  force_delete_without_recovery = true
}
resource "alicloud_kms_secret" "dep" {
  secret_name                   = "ed/dep"
  secret_data                   = "d"
  version_id                    = "v1"
  force_delete_without_recovery = true
  depends_on                    = [alicloud_kms_secret.app]
  lifecycle {
    replace_triggered_by = [alicloud_kms_secret.app["web"].version_id]
  }
}
output "web_value" {
  value     = alicloud_kms_secret.app["web"].secret_data
  sensitive = true
}
"#,
    )
    .unwrap();
    let o = run_in(d, &["apply", "--auto-approve"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("web_value = \"<sensitive>\""),
        "{}",
        stdout(&o)
    );
    let o = run_in(d, &["plan", "-var", "v=2"]);
    let text = stdout(&o);
    assert!(
        text.contains("alicloud_kms_secret.dep must be replaced"),
        "{text}"
    );
    assert!(
        text.contains(
            r#"lifecycle.replace_triggered_by: alicloud_kms_secret.app["web"].version_id changes"#
        ),
        "{text}"
    );
    let o = run_in(
        d,
        &["plan", "-replace", r#"alicloud_kms_secret.app["api"]"#],
    );
    let text = stdout(&o);
    assert!(
        text.contains(r#"alicloud_kms_secret.app["api"] must be replaced"#),
        "{text}"
    );
    assert!(
        text.contains("Plan: 1 to add, 0 to change, 1 to destroy."),
        "{text}"
    );
    let o = run_in(d, &["output", "web_value", "--reveal"]);
    assert!(stdout(&o).contains("a-1"), "{}", stdout(&o));
}

/// `count = var.enabled ? 1 : 0`, as teams switch a secret off: a block
/// with no instance (or an empty `for_each`) can still be named by
/// expressions (an empty list or map), outputs and rotations.
#[test]
fn a_block_with_no_instance_is_an_empty_list_or_map() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("main.tf"),
        r#"variable "enabled" {
  type    = bool
  default = false
}
resource "alicloud_kms_secret" "opt" {
  count                         = var.enabled ? 1 : 0
  secret_name                   = "opt/${count.index}"
  secret_data                   = "x"
  version_id                    = "v1"
  force_delete_without_recovery = true
}
resource "alicloud_kms_secret" "none" {
  for_each    = {}
  secret_name = "none/${each.key}"
  secret_data = "x"
  version_id  = "v1"
}
resource "alicloud_kms_secret" "other" {
  secret_name = "other"
  secret_data = "x"
  version_id  = "v1"
  description = "opt: ${length(alicloud_kms_secret.opt)}, none: ${length(alicloud_kms_secret.none)}"
  force_delete_without_recovery = true
}
output "opt_arns" {
  value = alicloud_kms_secret.opt[*].arn
}
rotation "all" {
  secrets  = ["alicloud_kms_secret.opt", "alicloud_kms_secret.other"]
  schedule = "@daily"
}
"#,
    )
    .unwrap();
    let o = run_in(d, &["apply", "--auto-approve"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("Resources: 1 added"), "{text}");
    assert!(text.contains("opt_arns = []"), "{text}");
    let o = run_in(d, &["secret", "describe", "other", "-o", "json"]);
    assert!(stdout(&o).contains("opt: 0, none: 0"), "{}", stdout(&o));
    let o = run_in(d, &["plan", "-var", "enabled=true"]);
    let text = stdout(&o);
    assert!(
        text.contains("alicloud_kms_secret.opt[0] will be created"),
        "{text}"
    );
    assert!(
        text.contains("Plan: 1 to add, 1 to change, 0 to destroy."),
        "{text}"
    );
}

/// A configuration with local modules: a module called twice (once from
/// another module), `for_each` inside a module, outputs read by the
/// caller, and a rotation of a module's secret.
fn modules_config(d: &std::path::Path) {
    let secret = d.join("modules/secret");
    let apps = d.join("modules/app-secrets");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::create_dir_all(&apps).unwrap();
    std::fs::write(
        d.join("main.tf"),
        r#"variable "env" {
  default = "prod"
}

module "db" {
  source = "./modules/secret"
  name   = "${var.env}/db"
  value  = "db-initial"
}

module "apps" {
  source = "./modules/app-secrets"
  apps   = { web = "web-initial", api = "api-initial" }
}

resource "alicloud_kms_secret" "root" {
  secret_name = "${var.env}/root"
  secret_data = "root-initial"
  version_id  = "v1"
  description = "beside ${module.db.name}"
}

output "db_arn" {
  value = module.db.arn
}

output "app_names" {
  value = module.apps.names
}

output "existing_apps" {
  value = module.apps.existing
}

output "apps_own_dir" {
  value = module.apps.own_dir
}

rotation "db" {
  secrets  = ["module.db.alicloud_kms_secret.this"]
  schedule = "@daily"
}
"#,
    )
    .unwrap();
    std::fs::write(
        secret.join("main.tf"),
        r#"variable "name" {
  type = string
}

variable "value" {
  sensitive = true
}

variable "description" {
  default = "managed by the secret module"
}

locals {
  tags = { module = "secret" }
}

resource "alicloud_kms_secret" "this" {
  secret_name = var.name
  secret_data = var.value
  version_id  = "v1"
  description = var.description
  tags        = local.tags
  lifecycle {
    ignore_changes = [secret_data, version_id]
  }
}

output "arn" {
  value = alicloud_kms_secret.this.arn
}

output "name" {
  value = alicloud_kms_secret.this.secret_name
}
"#,
    )
    .unwrap();
    std::fs::write(
        apps.join("main.tf"),
        r#"variable "apps" {
  type = map(string)
}

resource "alicloud_kms_secret" "app" {
  for_each    = var.apps
  secret_name = "apps/${each.key}"
  secret_data = each.value
  version_id  = "v1"
}

module "shared" {
  source = "../secret"
  name   = "apps/shared"
  value  = "shared-initial"
}

output "names" {
  value = concat([for s in alicloud_kms_secret.app : s.secret_name], [module.shared.name])
}

data "alicloud_kms_secrets" "existing" {
  name_regex = "^apps/"
}

locals {
  own_dir = path.module != path.root
}

output "own_dir" {
  value = local.own_dir
}

output "existing" {
  value = data.alicloud_kms_secrets.existing.names
}
"#,
    )
    .unwrap();
}

#[test]
fn local_modules_plan_apply_rotate_move_and_destroy() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    modules_config(d);
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"rota:config=[0-9a-f]{16}", "rota:config=[id]");
    let o = run_in(d, &["plan"]);
    assert!(o.status.success(), "{}", stderr(&o));
    settings.bind(|| insta::assert_snapshot!("modules_create", stdout(&o)));
    let o = run_in(d, &["apply", "--auto-approve"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("Apply complete! Resources: 5 added"),
        "{text}"
    );
    assert!(
        text.contains(r#"app_names = ["apps/api","apps/web","apps/shared"]"#),
        "{text}"
    );
    assert!(text.contains("db_arn = \"acs:kms:cn-hangzhou:"), "{text}");
    // A module's data source, read after the apply for the outputs.
    assert!(
        text.contains(r#"existing_apps = ["apps/api","apps/shared","apps/web"]"#),
        "{text}"
    );
    // A module's path.module is its own directory, path.root the root's.
    assert!(text.contains("apps_own_dir = true"), "{text}");
    let o = run_in(d, &["secret", "describe", "prod/db", "-o", "json"]);
    assert!(
        stdout(&o).contains("module.db.alicloud_kms_secret.this"),
        "{}",
        stdout(&o)
    );
    let o = run_in(d, &["plan", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // The rotation selects the module's secret by its address.
    let o = run_in(d, &["rotate", "module.db.alicloud_kms_secret.this"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let o = run_in(d, &["status", "-o", "json"]);
    assert!(stdout(&o).contains("\"prod/db\""), "{}", stdout(&o));
    let o = run_in(d, &["plan", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // -target takes a module's resource.
    let o = run_in(
        d,
        &[
            "plan",
            "-target",
            r#"module.apps.alicloud_kms_secret.app["web"]"#,
            "-var",
            "env=staging",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("No changes"), "{}", stdout(&o));
    // Moving the root secret into a module: the tag follows, nothing is
    // replaced.
    let main = std::fs::read_to_string(d.join("main.tf")).unwrap();
    let main = main.replace(
        "resource \"alicloud_kms_secret\" \"root\" {\n  secret_name = \"${var.env}/root\"\n  secret_data = \"root-initial\"\n  version_id  = \"v1\"\n  description = \"beside ${module.db.name}\"\n}",
        "module \"root\" {\n  source      = \"./modules/secret\"\n  name        = \"${var.env}/root\"\n  value       = \"root-initial\"\n  description = \"beside prod/db\"\n}\n\nmoved {\n  from = alicloud_kms_secret.root\n  to   = module.root.alicloud_kms_secret.this\n}",
    );
    std::fs::write(d.join("main.tf"), main).unwrap();
    let o = run_in(d, &["plan"]);
    assert!(o.status.success(), "{}", stderr(&o));
    settings.bind(|| insta::assert_snapshot!("modules_moved", stdout(&o)));
    crate::rotation::ok(&run_in(d, &["apply", "--auto-approve"]));
    let o = run_in(d, &["plan", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let o = run_in(d, &["destroy", "--auto-approve"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("5 destroyed"), "{}", stdout(&o));
}

#[test]
fn module_mistakes_are_named_before_any_call() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    modules_config(d);
    let main = std::fs::read_to_string(d.join("main.tf")).unwrap();
    let with = |extra: &str| std::fs::write(d.join("main.tf"), format!("{main}\n{extra}")).unwrap();
    with(
        "module \"reg\" {\n  source  = \"terraform-alicloud-modules/kms/alicloud\"\n  version = \"1.0.0\"\n}\n",
    );
    let err = validate_fails_with(
        d,
        "module.reg: version selects a registry module, which Rota does not fetch: not supported: vendor the module locally",
    );
    assert!(err.contains("main.tf:"), "{err}");
    with("module \"git\" {\n  source = \"git::https://example.com/secrets.git\"\n}\n");
    validate_fails_with(
        d,
        "module.git: source \"git::https://example.com/secrets.git\" is not supported: vendor the module locally",
    );
    with(
        "module \"x\" {\n  source = \"./modules/secret\"\n  nme    = \"a/b\"\n  value  = \"v\"\n}\n",
    );
    let err = validate_fails_with(d, "module.x has no variable `nme`");
    assert!(err.contains("did you mean `name`?"), "{err}");
    assert!(
        err.contains("needs `name`: the module's variable has no default"),
        "{err}"
    );
    with(
        "module \"x\" {\n  source = \"./modules/secret\"\n  name   = alicloud_kms_secret.root.arn\n  value  = \"v\"\n}\n",
    );
    validate_fails_with(
        d,
        "module.x: argument `name` refers to a resource or a module's output",
    );
    with("output \"nope\" {\n  value = module.nope.arn\n}\n");
    validate_fails_with(
        d,
        "output \"nope\" refers to module.nope, which is not declared",
    );
    // A cycle through modules: a calls b, b calls a.
    for (m, other) in [("a", "b"), ("b", "a")] {
        let dir = d.join("modules").join(m);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("main.tf"),
            format!("module \"{other}\" {{\n  source = \"../{other}\"\n}}\n"),
        )
        .unwrap();
    }
    with("module \"a\" {\n  source = \"./modules/a\"\n}\n");
    let err = validate_fails_with(
        d,
        "module.a.module.b.module.a calls \"../a\", which is already being read: the modules call each other in a cycle",
    );
    assert!(err.contains("modules/b/main.tf:2:"), "{err}");
    // Rota's own blocks belong in the root.
    std::fs::write(
        d.join("modules/b/main.tf"),
        "rotation \"r\" {\n  secrets  = [\"x\"]\n  schedule = \"@daily\"\n}\n",
    )
    .unwrap();
    with("module \"b\" {\n  source = \"./modules/b\"\n}\n");
    validate_fails_with(
        d,
        "`rotation` blocks belong in the root configuration, not in a module (module.b)",
    );
}

/// The secrets the data sources of the next test read.
const DATA_BASE: &str = r#"resource "alicloud_kms_secret" "db" {
  secret_name = "shared/db"
  secret_data = "CANARY-data-db-1"
  version_id  = "v1"
  tags        = { team = "pay" }
}

resource "alicloud_kms_secret" "api" {
  secret_name = "shared/api"
  secret_data = "CANARY-data-api-1"
  version_id  = "v1"
  tags        = { team = "web" }
}
"#;

#[test]
fn data_sources_are_read_at_plan_time_and_feed_resources_and_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("main.tf"), DATA_BASE).unwrap();
    crate::rotation::ok(&run_in(d, &["apply", "--auto-approve"]));
    std::fs::write(d.join("v2.txt"), "CANARY-data-db-2").unwrap();
    crate::rotation::ok(&run_in(
        d,
        &[
            "secret",
            "put",
            "shared/db",
            "--version-id",
            "v2",
            "--value-file",
            "v2.txt",
        ],
    ));
    std::fs::write(
        d.join("data.tf"),
        r#"data "alicloud_kms_secrets" "pay" {
  name_regex     = "^shared/"
  tags           = { team = "pay" }
  enable_details = true
  output_file    = "pay.json"
}

data "alicloud_kms_secret_versions" "db" {
  secret_name        = "shared/db"
  enable_details     = true
  include_deprecated = true
}

data "alicloud_kms_secret_versions" "db_current" {
  secret_name   = "shared/db"
  version_stage = "ACSCurrent"
}

data "alicloud_kms_keys" "enabled" {
  status = "Enabled"
}

resource "alicloud_kms_secret" "copy" {
  secret_name = "copies/db"
  secret_data = data.alicloud_kms_secrets.pay.secrets[0].secret_data
  version_id  = data.alicloud_kms_secret_versions.db_current.ids[0]
  description = "copy of ${data.alicloud_kms_secrets.pay.names[0]}"
}

output "pay_names" {
  value = data.alicloud_kms_secrets.pay.names
}

output "db_versions" {
  value = sort(data.alicloud_kms_secret_versions.db.ids)
}

output "keys_enabled" {
  value = length(data.alicloud_kms_keys.enabled.ids) > 0 && data.alicloud_kms_keys.enabled.keys.0.status == "Enabled"
}

output "db_first_value" {
  value     = data.alicloud_kms_secret_versions.db.versions[0].secret_data
  sensitive = true
}
"#,
    )
    .unwrap();
    // Validation reads nothing: the data sources are read by the plan.
    crate::rotation::ok(&run_in(d, &["validate"]));
    let o = run_in(d, &["plan"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"rota:config=[0-9a-f]{16}", "rota:config=[id]");
    settings.bind(|| insta::assert_snapshot!("data_sources_plan", stdout(&o)));
    let o = run_in(d, &["apply", "--auto-approve"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains(r#"pay_names = ["shared/db"]"#), "{text}");
    assert!(text.contains(r#"db_versions = ["v1","v2"]"#), "{text}");
    assert!(text.contains("keys_enabled = true"), "{text}");
    assert!(text.contains("db_first_value = \"<sensitive>\""), "{text}");
    assert!(!text.contains("CANARY"), "{text}");
    // The copy holds the current value of shared/db.
    let o = run_in(d, &["secret", "get", "copies/db", "--reveal"]);
    assert!(stdout(&o).contains("CANARY-data-db-2"), "{}", stdout(&o));
    let o = run_in(d, &["secret", "describe", "copies/db", "-o", "json"]);
    assert!(stdout(&o).contains("copy of shared/db"), "{}", stdout(&o));
    // output_file holds the result without any value.
    let file = std::fs::read_to_string(d.join("pay.json")).unwrap();
    assert!(file.contains("\"shared/db\""), "{file}");
    assert!(!file.contains("CANARY"), "{file}");
    // Nothing to do again; rota output reads the data sources too.
    let o = run_in(d, &["plan", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let o = run_in(d, &["output", "db_versions"]);
    assert!(stdout(&o).contains("v2"), "{}", stdout(&o));
    let o = run_in(d, &["output"]);
    assert!(!stdout(&o).contains("CANARY"), "{}", stdout(&o));
}

#[test]
fn data_source_mistakes_are_named_before_any_call() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let with =
        |text: &str| std::fs::write(d.join("main.tf"), format!("{DATA_BASE}\n{text}")).unwrap();
    with("data \"alicloud_kms_secret\" \"x\" {}\n");
    let err = validate_fails_with(d, "data source `alicloud_kms_secret` is not supported");
    assert!(
        err.contains("did you mean `alicloud_kms_secrets`?"),
        "{err}"
    );
    with("data \"alicloud_kms_secrets\" \"x\" {\n  name_rgx = \"a\"\n}\n");
    let err = validate_fails_with(
        d,
        "unknown argument `name_rgx` in data.alicloud_kms_secrets.x",
    );
    assert!(err.contains("main.tf:16:3"), "{err}");
    with("data \"alicloud_kms_secrets\" \"x\" {\n  name_regex = \"(\"\n}\n");
    validate_fails_with(
        d,
        "data.alicloud_kms_secrets.x: name_regex: not a regular expression",
    );
    with("data \"alicloud_kms_keys\" \"k\" {\n  status = \"On\"\n}\n");
    validate_fails_with(
        d,
        "data.alicloud_kms_keys.k: status: \"On\" is not a key status: Enabled, Disabled, PendingDeletion",
    );
    with("data \"alicloud_kms_secret_versions\" \"v\" {\n  enable_details = true\n}\n");
    validate_fails_with(d, "data.alicloud_kms_secret_versions.v needs secret_name");
    with("data \"alicloud_kms_secrets\" \"x\" {\n  filters = \"[1]\"\n}\n");
    validate_fails_with(
        d,
        "data.alicloud_kms_secrets.x: filters: expected the JSON list",
    );
    with("data \"alicloud_kms_secrets\" \"x\" {\n  ids = [alicloud_kms_secret.db.arn]\n}\n");
    validate_fails_with(
        d,
        "data.alicloud_kms_secrets.x: `ids` refers to a resource, a module or a data source",
    );
    with(
        "data \"alicloud_kms_secrets\" \"x\" {}\nresource \"alicloud_kms_secret\" \"n\" {\n  count       = length(data.alicloud_kms_secrets.x.ids)\n  secret_name = \"n/${count.index}\"\n  secret_data = \"x\"\n  version_id  = \"v1\"\n}\n",
    );
    validate_fails_with(d, "count may not read a data source or a module's output");
    with(
        "data \"alicloud_kms_secrets\" \"x\" {}\nlocals {\n  first = data.alicloud_kms_secrets.x.ids[0]\n}\n",
    );
    validate_fails_with(d, "local `first`: no data source can be read here");
    // A rotated secret's name must be known before any call.
    with(
        "data \"alicloud_kms_secrets\" \"x\" {}\nresource \"alicloud_kms_secret\" \"n\" {\n  secret_name = \"copy/${data.alicloud_kms_secrets.x.ids[0]}\"\n  secret_data = \"x\"\n  version_id  = \"v1\"\n}\nrotation \"r\" {\n  secrets  = [\"alicloud_kms_secret.n\"]\n  schedule = \"@daily\"\n}\n",
    );
    validate_fails_with(
        d,
        "rotation \"r\" selects alicloud_kms_secret.n, whose secret_name is known only once a plan has read what it refers to",
    );
}

#[test]
fn sensitive_variables_and_values_are_hidden_in_plans_outputs_and_show() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir_all(d.join("modules/owner")).unwrap();
    std::fs::write(
        d.join("modules/owner/main.tf"),
        r#"variable "who" {}

output "label" {
  value     = "owner ${var.who}"
  sensitive = true
}

output "length" {
  value = nonsensitive(length(var.who))
}
"#,
    )
    .unwrap();
    let config = r#"variable "owner" {
  default   = "CANARY-sensitive-owner"
  sensitive = true
}

locals {
  label = "owned by ${var.owner}"
}

module "owner" {
  source = "./modules/owner"
  who    = var.owner
}

resource "alicloud_kms_secret" "a" {
  secret_name = "s/a"
  secret_data = "CANARY-sensitive-data"
  version_id  = "v1"
  description = local.label
  tags        = { owner = sensitive("CANARY-sensitive-tag"), team = "ops" }
}

resource "alicloud_kms_secret" "b" {
  secret_name = "s/b"
  secret_data = "b"
  version_id  = "v1"
  description = module.owner.label
}

output "label" {
  value     = local.label
  sensitive = true
}

output "owner_length" {
  value = module.owner.length
}
"#;
    std::fs::write(d.join("main.tf"), config).unwrap();
    let mut seen = String::new();
    for args in [
        &["plan"][..],
        &["plan", "-o", "json"],
        &["apply", "--auto-approve"],
        &["show"],
        &["show", "-o", "json"],
        &["output"],
        &["output", "-o", "json"],
    ] {
        let o = run_in(d, args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        seen.push_str(&stdout(&o));
        seen.push_str(&stderr(&o));
    }
    assert!(!seen.contains("CANARY"), "{seen}");
    assert!(seen.contains("description      = (sensitive)"), "{seen}");
    assert!(seen.contains("owner_length = 22"), "{seen}");
    // Asked for, a sensitive output is shown.
    let o = run_in(d, &["output", "label", "--reveal"]);
    assert_eq!(stdout(&o).trim(), "owned by CANARY-sensitive-owner");
    // An output that shows a sensitive value must say so.
    std::fs::write(
        d.join("main.tf"),
        format!("{config}\noutput \"leak\" {{\n  value = module.owner.label\n}}\n"),
    )
    .unwrap();
    validate_fails_with(d, "output \"leak\" refers to sensitive values");
}

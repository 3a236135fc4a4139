//! `rota validate | plan | apply | destroy | import | show` on the embedded
//! local cloud, run as the built binary in a temp directory.

use std::path::Path;

use crate::common::{run_in, stderr, stdout};

const CANARY: &str = "canary-cli-5e1d";

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn config(dir: &Path, data: &str, description: &str) {
    std::fs::write(
        dir.join("main.tf"),
        format!(
            r#"
variable "token" {{
  default = "{data}"
}}
resource "alicloud_kms_secret" "api" {{
  secret_name = "api-token"
  secret_data = var.token
  version_id  = "v1"
  description = "{description}"
}}
"#
        ),
    )
    .unwrap();
}

#[test]
fn the_verbatim_seed_fails_validation_and_plan_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(examples().join("seed/main.tf"), dir.path().join("main.tf")).unwrap();
    for cmd in ["validate", "plan"] {
        let o = run_in(dir.path(), &[cmd]);
        assert_eq!(o.status.code(), Some(1), "{cmd}");
        let err = stderr(&o);
        assert!(err.contains("must start with \"acs/ecs/\""), "{err}");
        assert!(err.contains("./main.tf:12:31"), "{err}");
        assert!(
            err.contains("secret_name = \"acs/ecs/${var.name}\""),
            "{err}"
        );
        // No backend was opened: nothing was called.
        assert!(
            !dir.path().join(".rota").exists(),
            "{cmd} opened the local cloud"
        );
    }
    let o = run_in(dir.path(), &["validate"]);
    insta::assert_snapshot!(stderr(&o));
}

#[test]
fn the_corrected_seed_applies_on_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["main.tf", "world.hcl"] {
        std::fs::copy(
            examples().join("seed-corrected").join(f),
            dir.path().join(f),
        )
        .unwrap();
    }
    let o = run_in(dir.path(), &["validate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let line = "using the embedded local cloud in ./.rota (no cloud credentials configured)\n";
    assert_eq!(stderr(&o).matches(line).count(), 1, "{}", stderr(&o));
    let o = run_in(dir.path(), &["apply", "--auto-approve"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(
            "alicloud_kms_secret.default: Creation complete [id=acs/ecs/terraform-example]"
        ),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("Apply complete! Resources: 1 added, 0 changed, 0 destroyed."));
    let o = run_in(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("No changes."));
    let o = run_in(dir.path(), &["-o", "json", "show"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[0]["attributes"]["id"], "acs/ecs/terraform-example");
    assert_eq!(v[0]["attributes"]["secret_data"], "(sensitive)");
    assert_eq!(v[0]["attributes"]["managed_by_rota"], true);
}

#[test]
fn plan_out_then_apply_file_and_destroy() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), CANARY, "one");
    let o = run_in(dir.path(), &["plan", "--out", "tfplan"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let saved = std::fs::read_to_string(dir.path().join("tfplan")).unwrap();
    assert!(!saved.contains(CANARY));
    // The value changed since: refused.
    let o = run_in(dir.path(), &["apply", "tfplan", "-var", "token=other"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("secret_data of alicloud_kms_secret.api changed"),
        "{}",
        stderr(&o)
    );
    // As planned: applied without a question.
    let o = run_in(dir.path(), &["apply", "tfplan"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Applying the same plan again: the live state changed.
    let o = run_in(dir.path(), &["apply", "tfplan"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("live state of alicloud_kms_secret.api changed"),
        "{}",
        stderr(&o)
    );
    // Without a terminal and without --auto-approve: refused.
    config(dir.path(), CANARY, "two");
    let o = run_in(dir.path(), &["apply"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("refusing to apply without confirmation"),
        "{}",
        stderr(&o)
    );
    let o = run_in(dir.path(), &["apply", "--auto-approve"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("UpdateSecret done"), "{}", stdout(&o));
    let o = run_in(dir.path(), &["plan", "--destroy"]);
    insta::assert_snapshot!(stdout(&o));
    let o = run_in(dir.path(), &["destroy", "--auto-approve"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Destroy complete! Resources: 0 added, 0 changed, 1 destroyed."));
}

#[test]
fn import_prints_or_writes_the_block() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), CANARY, "imported");
    let o = run_in(dir.path(), &["apply", "--auto-approve"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run_in(
        dir.path(),
        &["import", "alicloud_kms_secret.copy", "api-token"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    insta::assert_snapshot!(stdout(&o));
    let o = run_in(
        dir.path(),
        &[
            "import",
            "alicloud_kms_secret.copy",
            "api-token",
            "--write",
            "imported.tf.txt",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let written = std::fs::read_to_string(dir.path().join("imported.tf.txt")).unwrap();
    assert!(written.contains("resource \"alicloud_kms_secret\" \"copy\""));
    assert!(!written.contains(CANARY));
}

#[test]
fn the_canary_stays_out_of_every_output() {
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), CANARY, "one");
    let mut outputs = Vec::new();
    for args in [
        vec!["-vv", "plan"],
        vec!["-vv", "-o", "json", "plan"],
        vec!["-vv", "apply", "--auto-approve"],
        vec!["-vv", "show"],
        vec!["-vv", "-o", "json", "show"],
        vec!["-vv", "import", "alicloud_kms_secret.x", "api-token"],
        vec!["-vv", "plan", "-var", "token=canary-cli-5e1d-2"],
    ] {
        let o = run_in(dir.path(), &args);
        outputs.push(format!("{}{}", stdout(&o), stderr(&o)));
    }
    for out in &outputs {
        assert!(!out.contains(CANARY), "the canary leaked:\n{out}");
    }
    // The refused plan explains why.
    assert!(outputs.last().unwrap().contains("version_id is still"));
}

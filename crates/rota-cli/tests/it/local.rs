//! `rota local world`: the redacted view of the seed example's world after
//! `rota apply`, in text and JSON.

use std::path::Path;

use crate::common::{rota, stderr, stdout};

fn copy_seed(to: &Path) {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/seed-corrected");
    for f in ["main.tf", "world.hcl"] {
        std::fs::copy(seed.join(f), to.join(f)).unwrap();
    }
}

#[test]
fn world_shows_which_secret_holds_each_credential() {
    let dir = tempfile::tempdir().unwrap();
    copy_seed(dir.path());
    let apply = rota()
        .arg("-c")
        .arg(dir.path())
        .args(["apply", "--auto-approve"])
        .output()
        .unwrap();
    assert!(apply.status.success(), "{}", stderr(&apply));

    let text = rota()
        .arg("-c")
        .arg(dir.path())
        .args(["local", "world"])
        .output()
        .unwrap();
    assert!(text.status.success(), "{}", stderr(&text));
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[time]");
    settings.bind(|| insta::assert_snapshot!(stdout(&text)));

    let json = rota()
        .arg("-c")
        .arg(dir.path())
        .args(["local", "world", "-o", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["account_id"], "1117600963847258");
    assert_eq!(
        v["ecs_instances"][0]["accounts"][0]["held_by"][0],
        "acs/ecs/terraform-example ACSCurrent (v1)"
    );
}

#[test]
fn world_without_a_local_cloud_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let o = rota()
        .arg("-c")
        .arg(dir.path())
        .args(["local", "world"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no local cloud in"), "{}", stderr(&o));
}

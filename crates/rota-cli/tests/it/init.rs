//! `rota init [DIR]`: the starter configuration validates and applies on the
//! embedded default, and existing files are never overwritten.

use crate::common::{run_in, stderr, stdout};

#[test]
fn init_writes_a_configuration_that_validates_and_applies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = run_in(d, &["init", "starter"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "Wrote starter/main.tf and starter/world.hcl.\n\
         Next: rota validate -c starter && rota apply -c starter --auto-approve, then rota run -c starter\n"
    );
    let main = std::fs::read_to_string(d.join("starter/main.tf")).unwrap();
    assert!(main.contains("# provider \"alicloud\" {"), "{main}");
    assert!(main.contains("plugin   = \"password\""), "{main}");
    let o = run_in(d, &["validate", "-c", "starter"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "The configuration is valid: 1 secret, 1 rotating.\n"
    );
    let o = run_in(d, &["apply", "-c", "starter", "--auto-approve"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("Apply complete! Resources: 1 added, 0 changed, 0 destroyed."),
        "{}",
        stdout(&o)
    );
    let o = run_in(d, &["rotate", "-c", "starter", "app/api-token"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Never overwrites: exit 1, a clear message, the file untouched.
    std::fs::write(d.join("starter/main.tf"), "# mine\n").unwrap();
    let o = run_in(d, &["init", "starter"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("already exist; rota init never overwrites a file"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(d.join("starter/main.tf")).unwrap(),
        "# mine\n"
    );
}

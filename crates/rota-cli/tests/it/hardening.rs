//! Hostile input that used to crash or hang `rota`: each is now one clear
//! error (never "internal error", never a hang).

use crate::common::{run_in, stderr};

fn validate(text: &str) -> (Option<i32>, String) {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("main.tf"), text).unwrap();
    let o = run_in(tmp.path(), &["validate"]);
    (o.status.code(), stderr(&o))
}

#[test]
fn expressions_that_panicked_or_never_ended_are_errors() {
    let resource = |arg: &str| {
        format!(
            "resource \"alicloud_kms_secret\" \"a\" {{\n  secret_name = \"a\"\n  secret_data = \"x\"\n  version_id  = \"v1\"\n  {arg}\n}}\n"
        )
    };
    let (code, err) = validate(&resource("recovery_window_in_days = 1 % 0"));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("recovery_window_in_days: the expression cannot be evaluated"),
        "{err}"
    );
    assert!(!err.contains("internal error"), "{err}");
    let (code, err) = validate(&resource("recovery_window_in_days = 7 / 0"));
    assert_eq!(code, Some(1), "{err}");
    assert!(!err.contains("internal error"), "{err}");
    let (code, err) = validate("locals {\n  n = format(\"%.999999999f\", 1.5)\n}\n");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("the precision is at most 100"), "{err}");
    let (code, err) = validate("locals {\n  z = file(\"/dev/zero\")\n}\n");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("it is not a regular file"), "{err}");
}

#[test]
fn a_value_file_is_bounded_and_regular() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run_in(
        tmp.path(),
        &[
            "secret",
            "put",
            "app/x",
            "--version-id",
            "v2",
            "--value-file",
            "/dev/zero",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot read the value from /dev/zero: it is not a regular file"),
        "{}",
        stderr(&o)
    );
    let big = tmp.path().join("big");
    std::fs::write(&big, vec![b'a'; 70 * 1024]).unwrap();
    let o = run_in(
        tmp.path(),
        &[
            "secret",
            "put",
            "app/x",
            "--version-id",
            "v2",
            "--value-file",
            "big",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("it is larger than 64 KiB"),
        "{}",
        stderr(&o)
    );
}

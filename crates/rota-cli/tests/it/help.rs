//! `--help` of every command, `--version`, usage errors and completions.

use crate::common::{run, stderr, stdout};

#[test]
fn top_level_help() {
    let o = run(&["--help"]);
    assert!(o.status.success());
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn version() {
    let o = run(&["--version"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), format!("rota {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn usage_error_exits_2() {
    let o = run(&["no-such-command"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unrecognized subcommand 'no-such-command'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn completions_for_bash() {
    let o = run(&["completions", "bash"]);
    assert!(o.status.success());
    let script = stdout(&o);
    assert!(
        script.contains("_rota()") && script.contains("completions"),
        "unexpected script"
    );
}

#[test]
fn local_serve_help() {
    let o = run(&["local", "serve", "--help"]);
    assert!(o.status.success());
    insta::assert_snapshot!(stdout(&o));
}

//! `--help` of the built binary, `--version`, usage errors, completions and
//! colour. The help of every command is snapshotted by walking the clap
//! tree (`src/cli.rs`, snapshots in `src/snapshots/`); here the binary must
//! print exactly those snapshots, so what is reviewed is what users see.

use std::path::Path;

use crate::common::{rota, run, stderr, stdout};

/// Each help snapshot: the command path (its `expression`) and the text.
fn help_snapshots() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/snapshots");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("src/snapshots") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("rota__cli__tests__help_") || !name.ends_with(".snap") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // ---\nsource: …\nexpression: rota secret get\n---\nBODY
        let (header, body) = text
            .trim_start_matches("---\n")
            .split_once("\n---\n")
            .expect("an insta header");
        let command = header
            .lines()
            .find_map(|l| l.strip_prefix("expression: "))
            .expect("an expression")
            .to_owned();
        out.push((command, body.to_owned()));
    }
    out.sort();
    out
}

#[test]
fn the_binary_prints_the_reviewed_help_of_every_command() {
    let snapshots = help_snapshots();
    assert!(snapshots.len() > 30, "{} help snapshots", snapshots.len());
    for (command, body) in snapshots {
        let mut args: Vec<&str> = command.split(' ').skip(1).collect();
        args.push("--help");
        let o = run(&args);
        assert!(o.status.success(), "{command} --help: {}", stderr(&o));
        assert_eq!(
            stdout(&o).trim_end(),
            body.trim_end(),
            "{command} --help differs from its snapshot"
        );
    }
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

/// Colour is forced with CLICOLOR_FORCE (tests have no terminal); both
/// --no-color and NO_COLOR turn it off, for clap's usage errors and for logs.
#[test]
fn no_color_and_the_flag_turn_colour_off() {
    const ESC: &str = "\u{1b}[";
    let coloured = |args: &[&str], no_color_env: bool| {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = rota();
        cmd.current_dir(dir.path())
            .env("HOME", dir.path())
            .env_remove("NO_COLOR")
            .env("CLICOLOR_FORCE", "1")
            .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
            .env_remove("ALICLOUD_ACCESS_KEY");
        if no_color_env {
            cmd.env("NO_COLOR", "1");
        }
        let o = cmd.args(args).output().unwrap();
        stderr(&o).contains(ESC)
    };
    // A usage error (clap) and debug logs (tracing) of a real command.
    let usage: &[&str] = &["no-such-command"];
    let logs: &[&str] = &["-v", "secret", "list"];
    for args in [usage, logs] {
        assert!(coloured(args, false), "{args:?}: no colour when forced");
        assert!(!coloured(args, true), "{args:?}: colour despite NO_COLOR");
        let mut flagged = vec!["--no-color"];
        flagged.extend_from_slice(args);
        assert!(
            !coloured(&flagged, false),
            "{args:?}: colour despite --no-color"
        );
    }
}

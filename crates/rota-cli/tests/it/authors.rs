//! What plugin and workflow authors meet, on the user's path (a plugin or
//! script in a temp folder, the built binary): hooks stopped at their
//! step's deadline, values scrubbed in their transformed forms, the
//! `http::` request builder, plugin name conflicts, status with a broken
//! configuration, and the workflow commands.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{stderr, stdout};
use crate::rotation::run_in;

/// Writes a Rhai plugin folder `plugins/<name>` under `dir`.
fn rhai_plugin(dir: &Path, name: &str, manifest_extra: &str, hooks: &str) {
    let p = dir.join("plugins").join(name);
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(
        p.join("plugin.toml"),
        format!("name = \"{name}\"\nversion = \"1.0.0\"\n{manifest_extra}"),
    )
    .unwrap();
    std::fs::write(p.join("hooks.rhai"), hooks).unwrap();
}

/// A configuration of one Generic secret rotated by `plugin` with the
/// rotation block's extra lines.
fn config(dir: &Path, plugin: &str, rotation_extra: &str) {
    std::fs::write(
        dir.join("main.tf"),
        format!(
            "resource \"alicloud_kms_secret\" \"s\" {{\n  secret_name = \"app/s\"\n  secret_data = \"initial-value\"\n  version_id  = \"v1\"\n}}\n\
             rotation \"r\" {{\n  secrets  = [\"app/s\"]\n  schedule = \"@daily\"\n  plugin   = \"{plugin}\"\n{rotation_extra}}}\n"
        ),
    )
    .unwrap();
}

/// How long the test waits at most for a rotation that should stop after
/// a few seconds: a hang guard, not a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(90);

#[test]
fn a_hook_that_waits_stops_at_the_rotations_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // A silent server: accepts connections, never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    rhai_plugin(
        dir,
        "sleeper",
        "",
        "fn set(ctx) {\n  loop {\n    time::sleep_ms(1000);\n  }\n}\nfn test(ctx) { }\n",
    );
    rhai_plugin(
        dir,
        "hanger",
        &format!("[capabilities]\nhttp = [\"{silent_addr}\"]\n"),
        &format!(
            "fn set(ctx) {{\n  http::get(\"http://{silent_addr}/\");\n}}\nfn test(ctx) {{ }}\n"
        ),
    );
    for (plugin, line) in [("sleeper", "hooks.rhai:3"), ("hanger", "hooks.rhai:2")] {
        config(dir, plugin, "  timeout      = \"3s\"\n  max_attempts = 1\n");
        let o = run_in(dir, &["apply", "--auto-approve"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let started = Instant::now();
        let mut child = crate::rotation::cmd(dir)
            .args(["rotate", "app/s"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        while child.try_wait().unwrap().is_none() {
            assert!(
                started.elapsed() < HANG_GUARD,
                "{plugin}: the hook was not stopped"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let o = child.wait_with_output().unwrap();
        let took = started.elapsed();
        assert_eq!(o.status.code(), Some(1), "{plugin}: {}", stdout(&o));
        let out = stdout(&o);
        assert!(out.contains("failed in step set"), "{plugin}: {out}");
        assert!(out.contains("deadline"), "{plugin}: {out}");
        assert!(out.contains(line), "{plugin}: {out}");
        assert!(out.contains("set"), "{plugin}: {out}");
        // Seen here: about 3.1 s for a 3 s timeout. Printed for the record.
        eprintln!("{plugin}: stopped after {took:?}");
    }
    drop(silent);
}

//! `rota plugins list` and `rota plugins check`: the shipped plugins load,
//! and broken ones are refused with file, line, column or hook.

use std::path::Path;

use crate::common::{rota, stderr, stdout};
use crate::rotation::cmd;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn list_shows_the_shipped_plugins() {
    let o = rota()
        .current_dir(repo())
        .args(["plugins", "list"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    insta::assert_snapshot!(stdout(&o));
}

fn check(root: &Path, name: &str, manifest: &str, hooks: &str) -> String {
    let dir = root.join("plugins").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("plugin.toml"), manifest).unwrap();
    std::fs::write(dir.join("hooks.rhai"), hooks).unwrap();
    let o = rota()
        .current_dir(root)
        .args(["plugins", "check", name])
        .output()
        .unwrap();
    let code = o.status.code().unwrap_or(-1);
    format!("exit {code}\n{}{}", stdout(&o), stderr(&o))
}

#[test]
fn check_reports_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let head = |n: &str| format!("name = \"{n}\"\nversion = \"1.0.0\"\n");
    let ok_hooks = "fn set(ctx) { }\nfn test(ctx) { }\n";
    let mut out = String::new();
    for (name, manifest, hooks) in [
        (
            "good",
            head("good"),
            "fn set(ctx) { }\nfn test(ctx) { }\nfn generate(ctx) { \"x\" }\n",
        ),
        (
            "bad-manifest",
            "name = \"bad-manifest\"\nversion = 1.0.0\n".to_owned(),
            ok_hooks,
        ),
        (
            "unknown-setting",
            head("unknown-setting") + "[settings.port]\ntype = \"port\"\n",
            ok_hooks,
        ),
        ("missing-hook", head("missing-hook"), "fn set(ctx) { }\n"),
        (
            "syntax",
            head("syntax"),
            "fn set(ctx) {\n  let = 1;\n}\nfn test(ctx) { }\n",
        ),
    ] {
        out.push_str(&format!(
            "$ rota plugins check {name}\n{}\n",
            check(root, name, &manifest, hooks)
        ));
    }
    let o = rota()
        .current_dir(root)
        .args(["plugins", "check", "nope"])
        .output()
        .unwrap();
    out.push_str(&format!(
        "$ rota plugins check nope\nexit {}\n{}",
        o.status.code().unwrap_or(-1),
        stderr(&o)
    ));
    insta::assert_snapshot!(out);
}

/// A Rhai plugin in `plugins/` is what a rotation block names: `rota
/// validate` accepts it and `rota rotate` runs its hooks.
#[test]
fn rotate_runs_a_rhai_plugin_from_the_plugins_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let plugin = dir.join("plugins/stamp");
    std::fs::create_dir_all(&plugin).unwrap();
    std::fs::write(
        plugin.join("plugin.toml"),
        "name = \"stamp\"\nversion = \"1.0.0\"\n[settings.prefix]\ntype = \"string\"\ndefault = \"stamped\"\n",
    )
    .unwrap();
    std::fs::write(
        plugin.join("hooks.rhai"),
        "fn generate(ctx) { ctx.settings.prefix + \"-\" + ctx.token }\nfn set(ctx) { }\nfn test(ctx) { if !ctx.pending.reveal().starts_with(ctx.settings.prefix) { throw \"bad\"; } }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("main.tf"),
        "resource \"alicloud_kms_secret\" \"s\" {\n  secret_name = \"app/x\"\n  secret_data = \"initial\"\n  version_id  = \"v1\"\n}\nrotation \"x\" {\n  secrets  = [\"app/x\"]\n  schedule = \"@daily\"\n  plugin   = \"stamp\"\n  settings = { prefix = \"rhai\" }\n}\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let o = cmd(dir).args(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}{}", stdout(&o), stderr(&o));
        stdout(&o)
    };
    run(&["validate"]);
    run(&["apply", "--auto-approve"]);
    run(&["rotate", "app/x"]);
    let history = run(&["history", "app/x", "-o", "json"]);
    assert!(history.contains("\"plugin\": \"stamp\""), "{history}");
    assert!(history.contains("\"step\": \"finish\""), "{history}");
    assert!(
        !history.contains("rhai-rota-manual"),
        "the value is not in history"
    );
}

/// A shipped workflow script runs once through the binary on the embedded default.
#[test]
fn workflow_run_prints_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("main.tf"),
        "resource \"alicloud_kms_secret\" \"s\" {\n  secret_name = \"app/x\"\n  secret_data = \"initial\"\n  version_id  = \"v1\"\n}\n",
    )
    .unwrap();
    let run = |args: &[&str]| cmd(dir).args(args).output().unwrap();
    assert!(run(&["apply", "--auto-approve"]).status.success());
    let script = repo().join("scripts/compliance-report.rhai");
    let o = run(&["workflow", "run", script.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    insta::assert_snapshot!(stdout(&o));
    let o = run(&[
        "workflow",
        "run",
        script.to_str().unwrap(),
        "--settings",
        "[1]",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("workflow settings must be a map of name = value"),
        "{}",
        stderr(&o)
    );
}

/// A `workflow` block runs under `rota run` and its runs show in `rota history`.
#[test]
fn workflow_blocks_run_under_rota_run_and_show_in_history() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("scripts")).unwrap();
    std::fs::copy(
        repo().join("scripts/deletion-window-reminder.rhai"),
        dir.join("scripts/reminder.rhai"),
    )
    .unwrap();
    std::fs::write(
        dir.join("main.tf"),
        "resource \"alicloud_kms_secret\" \"s\" {\n  secret_name = \"app/x\"\n  secret_data = \"initial\"\n  version_id  = \"v1\"\n}\nworkflow \"reminder\" {\n  schedule = \"@daily\"\n  timezone = \"Europe/Berlin\"\n  script   = \"scripts/reminder.rhai\"\n  settings = { within_days = 5 }\n}\n",
    )
    .unwrap();
    let run = |args: &[&str]| cmd(dir).args(args).output().unwrap();
    let o = run(&["validate"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["apply", "--auto-approve"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&["run", "--once", "--all-due-within", "25h"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let o = run(&["history", "workflow:reminder", "-o", "json"]);
    let history: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let runs = history.as_array().unwrap();
    assert_eq!(runs.len(), 1, "{history}");
    // A workflow run is its own row, with the report's summary kept.
    assert_eq!(runs[0]["workflow"], "reminder", "{history}");
    assert_eq!(runs[0]["outcome"], "ok", "{history}");
    assert_eq!(runs[0]["attempt"], 1, "{history}");
    assert!(runs[0]["summary"].is_string(), "{history}");
    assert!(runs[0]["report"].is_object(), "{history}");

    // A broken block is refused by validate, with where it is.
    std::fs::write(
        dir.join("main.tf"),
        "workflow \"bad\" {\n  schedule = \"@daily\"\n  script   = \"scripts/missing.rhai\"\n}\n",
    )
    .unwrap();
    let o = run(&["validate"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("script \"scripts/missing.rhai\" does not exist"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("main.tf:3"), "{}", stderr(&o));
}

/// A plugin folder named in the configuration's `plugins` block is searched
/// wherever Rota runs from: `plugins list`, `validate` and `rotate` find it;
/// without the block the rotation's plugin is unknown.
#[test]
fn plugin_paths_in_the_configuration_are_searched() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = tmp.path().join("team-plugins/stamp");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(
        shared.join("plugin.toml"),
        "name = \"stamp\"\nversion = \"1.0.0\"\n",
    )
    .unwrap();
    std::fs::write(
        shared.join("hooks.rhai"),
        "fn generate(ctx) { \"stamped-\" + ctx.token }\nfn set(ctx) { }\nfn test(ctx) { }\n",
    )
    .unwrap();
    let cfg = tmp.path().join("cfg");
    std::fs::create_dir_all(&cfg).unwrap();
    let rotation = "resource \"alicloud_kms_secret\" \"s\" {\n  secret_name = \"app/x\"\n  secret_data = \"initial\"\n  version_id  = \"v1\"\n}\nrotation \"x\" {\n  secrets  = [\"app/x\"]\n  schedule = \"@daily\"\n  plugin   = \"stamp\"\n}\n";
    std::fs::write(cfg.join("main.tf"), rotation).unwrap();
    // Run from an unrelated directory, naming the configuration.
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let run = |args: &[&str]| {
        cmd(&elsewhere)
            .args(args)
            .arg("-c")
            .arg(&cfg)
            .output()
            .unwrap()
    };
    let o = run(&["validate"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("stamp"), "{}", stderr(&o));

    std::fs::write(
        cfg.join("plugins.tf"),
        "plugins {\n  paths = [\"../team-plugins\"]\n}\n",
    )
    .unwrap();
    for args in [
        &["validate"][..],
        &["apply", "--auto-approve"],
        &["rotate", "app/x"],
    ] {
        let o = run(args);
        assert!(o.status.success(), "{args:?}: {}{}", stdout(&o), stderr(&o));
    }
    let o = run(&["plugins", "list", "-o", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("\"name\": \"stamp\""), "{}", stdout(&o));
    let o = run(&["history", "app/x", "-o", "json"]);
    assert!(
        stdout(&o).contains("\"plugin\": \"stamp\""),
        "{}",
        stdout(&o)
    );
}

/// The shipped Rhai plugin ecs-password, killed between `set` and `finish`
/// (the process aborts as `kill -9` would): the instance already accepts the
/// pending password (nobody is locked out: ACSPending logs in), and the next
/// `rota rotate` finishes that rotation instead of starting another.
#[test]
fn a_rhai_rotation_killed_after_set_is_finished_by_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::copy(
        repo().join("examples/quickstart/world.hcl"),
        dir.join("world.hcl"),
    )
    .unwrap();
    let plugins = repo().join("plugins").canonicalize().unwrap();
    std::fs::write(
        dir.join("main.tf"),
        format!(
            r#"
plugins {{
  paths = ["{}"]
}}
resource "alicloud_kms_secret" "login" {{
  secret_name = "app/login"
  secret_data = jsonencode({{ username = "app", password = "Initial-Passw0rd" }})
  version_id  = "v1"
}}
rotation "login" {{
  secrets  = ["alicloud_kms_secret.login"]
  schedule = "@weekly"
  plugin   = "ecs-password"
  settings = {{ instance_id = "i-bp1fr0a100hd0yf6ksq3", region = "cn-hangzhou" }}
}}
"#,
            plugins.display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let o = cmd(dir).args(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}{}", stdout(&o), stderr(&o));
        stdout(&o)
    };
    let holders = || -> Vec<String> {
        let world: serde_json::Value =
            serde_json::from_str(&run(&["local", "world", "-o", "json"])).unwrap();
        let account = world["ecs_instances"][0]["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "app")
            .unwrap()
            .clone();
        account["held_by"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_owned())
            .collect()
    };
    run(&["apply", "--auto-approve"]);
    assert_eq!(holders(), ["app/login ACSCurrent (v1)"]);

    let o = cmd(dir)
        .env("ROTA_TEST_CRASH_AT", "after-set")
        .args(["rotate", "app/login"])
        .output()
        .unwrap();
    assert!(!o.status.success(), "the crash did not happen");
    assert!(
        stderr(&o).contains("aborting at after-set"),
        "{}",
        stderr(&o)
    );
    // The instance took the new password; KMS still has it as ACSPending.
    let held = holders();
    assert!(
        held.len() == 1 && held[0].starts_with("app/login ACSPending (rota-manual-"),
        "{held:?}"
    );

    let out = run(&["rotate", "app/login"]);
    assert!(out.contains("resumed and finished it"), "{out}");
    let held = holders();
    assert!(
        held.len() == 1 && held[0].starts_with("app/login ACSCurrent (rota-manual-"),
        "{held:?}"
    );
    let history = run(&["history", "app/login", "-o", "json"]);
    assert!(!history.contains("Initial-Passw0rd"), "{history}");
}

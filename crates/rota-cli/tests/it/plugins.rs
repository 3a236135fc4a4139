//! `rota plugins list` and `rota plugins check`: the shipped plugins load,
//! and broken ones are refused with file, line, column or hook.

use std::path::Path;

use crate::common::{rota, stderr, stdout};

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

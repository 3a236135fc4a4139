//! Plugins and workflows that cannot work are refused at load time with a
//! message naming the file (and line, column, setting or hook).

use rota_script::{ScriptPlugin, Workflow, discover};

use crate::common::{env, manifest, repo, write_plugin};

const HOOKS: &str = "fn set(ctx) { }\nfn test(ctx) { }\n";

#[tokio::test]
async fn bad_plugins_are_refused_at_load_time() {
    let e = env().await;
    let root = e.dir.path();
    let cases: Vec<(&str, String, Option<&str>)> = vec![
        (
            "toml-syntax",
            "name = \"x\"\nversion = 0.1.0\n".into(),
            Some(HOOKS),
        ),
        ("no-name", "version = \"1\"\n".into(), Some(HOOKS)),
        (
            "bad-name",
            "name = \"no spaces\"\nversion = \"1\"\n".into(),
            Some(HOOKS),
        ),
        (
            "unknown-key",
            manifest("unknown-key") + "secret_type = [\"Generic\"]\n",
            Some(HOOKS),
        ),
        (
            "unknown-setting-type",
            manifest("unknown-setting-type") + "[settings.port]\ntype = \"number\"\n",
            Some(HOOKS),
        ),
        (
            "unknown-setting-attribute",
            manifest("unknown-setting-attribute")
                + "[settings.port]\ntype = \"integer\"\ndefualt = 5432\n",
            Some(HOOKS),
        ),
        (
            "bad-default",
            manifest("bad-default")
                + "[settings.mode]\ntype = \"string\"\ndefault = \"triple\"\nallowed = [\"single\", \"dual\"]\n",
            Some(HOOKS),
        ),
        (
            "unknown-http-setting",
            manifest("unknown-http-setting") + "[capabilities]\nhttp_from_settings = [\"url\"]\n",
            Some(HOOKS),
        ),
        ("missing-hooks-file", manifest("missing-hooks-file"), None),
        (
            "missing-set",
            manifest("missing-set"),
            Some("fn test(ctx) { }\n"),
        ),
        (
            "missing-test",
            manifest("missing-test"),
            Some("fn set(ctx) { }\nfn generate(ctx) { \"x\" }\n"),
        ),
        (
            "hook-arity",
            manifest("hook-arity"),
            Some("fn set(ctx) { }\nfn test(ctx) { }\nfn finish(ctx, extra) { }\n"),
        ),
        (
            "syntax-error",
            manifest("syntax-error"),
            Some("fn set(ctx) {\n    let x = ;\n}\nfn test(ctx) { }\n"),
        ),
        (
            "unclosed",
            manifest("unclosed"),
            Some("fn set(ctx) {\n    if true {\n}\nfn test(ctx) { }\n"),
        ),
        (
            "eval-disabled",
            manifest("eval-disabled"),
            Some("fn set(ctx) { eval(\"1\") }\nfn test(ctx) { }\n"),
        ),
    ];
    let mut out = String::new();
    for (name, m, hooks) in cases {
        let dir = write_plugin(root, name, &m, hooks);
        let msg = match ScriptPlugin::load(&e.runtime, &dir) {
            Ok(_) => "loaded".to_owned(),
            Err(err) => err.to_string(),
        };
        out.push_str(&format!("{name}:\n  {msg}\n"));
    }
    let root_str = root.display().to_string();
    insta::with_settings!({filters => vec![(regex_escape(&root_str).as_str(), "[TMP]")]}, {
        insta::assert_snapshot!(out);
    });
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' {
                vec![c]
            } else {
                vec!['\\', c]
            }
        })
        .collect()
}

#[tokio::test]
async fn workflows_need_a_run_function_and_parse() {
    let e = env().await;
    let root = e.dir.path();
    let ok = root.join("ok.rhai");
    std::fs::write(&ok, "fn run(ctx) { #{} }").unwrap();
    assert_eq!(
        Workflow::load(&e.runtime, &ok, serde_json::json!({"a": 1}))
            .unwrap()
            .name(),
        "ok"
    );
    let no_run = root.join("no-run.rhai");
    std::fs::write(&no_run, "fn main(ctx) { }").unwrap();
    let err = Workflow::load(&e.runtime, &no_run, serde_json::Value::Null).unwrap_err();
    assert!(
        err.to_string().ends_with(
            "no-run.rhai: missing hook `run`: define `fn run(ctx) { … }` (required hooks: run)"
        ),
        "{err}"
    );
    let err = Workflow::load(&e.runtime, &ok, serde_json::json!([1])).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("workflow settings must be a map of name = value")
    );
}

#[tokio::test]
async fn the_shipped_plugins_and_scripts_load() {
    let e = env().await;
    let loaded = discover(&e.runtime, &[repo().join("plugins")]);
    let mut names: Vec<String> = Vec::new();
    for p in loaded {
        let p = p.unwrap_or_else(|err| panic!("{err}"));
        names.push(p.manifest().name.clone());
    }
    for want in [
        "ecs-password",
        "ecs-sshkey",
        "ram-accesskey",
        "rds-account",
        "webhook",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    for script in [
        "compliance-report",
        "cleanup-deprecated-versions",
        "deletion-window-reminder",
    ] {
        let path = repo().join("scripts").join(format!("{script}.rhai"));
        Workflow::load(&e.runtime, &path, serde_json::Value::Null)
            .unwrap_or_else(|err| panic!("{err}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_script_is_picked_up_by_the_next_call() {
    use rota_rotation::RotationPlugin as _;
    let e = env().await;
    let dir = write_plugin(
        e.dir.path(),
        "live",
        &manifest("live"),
        Some("fn set(ctx) { throw \"first\"; }\nfn test(ctx) { }\n"),
    );
    let plugin = ScriptPlugin::load(&e.runtime, &dir).unwrap();
    let ctx = e.step(Some("p"), std::time::Duration::from_secs(60));
    let err = plugin.set(&ctx).await.unwrap_err().to_string();
    assert!(err.ends_with("first"), "{err}");
    // No explicit reload: the next call sees the new modification time.
    std::fs::write(
        dir.join("hooks.rhai"),
        "fn set(ctx) { throw \"second, longer\"; }\nfn test(ctx) { }\n",
    )
    .unwrap();
    let err = plugin.set(&ctx).await.unwrap_err().to_string();
    assert!(err.ends_with("second, longer"), "{err}");
    // A broken edit keeps the last good script.
    std::fs::write(dir.join("hooks.rhai"), "fn set(ctx) {\n").unwrap();
    let err = plugin.set(&ctx).await.unwrap_err().to_string();
    assert!(err.ends_with("second, longer"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_hooks_file_is_recompiled_and_a_broken_one_keeps_the_old_ast() {
    use rota_rotation::RotationPlugin as _;
    let e = env().await;
    let dir = write_plugin(
        e.dir.path(),
        "reload",
        &manifest("reload"),
        Some("fn set(ctx) { throw \"v1\"; }\nfn test(ctx) { }\n"),
    );
    let plugin = ScriptPlugin::load(&e.runtime, &dir).unwrap();
    let ctx = e.step(Some("p"), std::time::Duration::from_secs(60));
    assert!(
        plugin
            .set(&ctx)
            .await
            .unwrap_err()
            .to_string()
            .ends_with("v1")
    );
    assert!(
        !plugin.reload_if_changed().unwrap(),
        "unchanged: the cached AST"
    );

    std::fs::write(
        dir.join("hooks.rhai"),
        "fn set(ctx) { throw \"v2\"; }\nfn test(ctx) { }\n",
    )
    .unwrap();
    assert!(plugin.reload_if_changed().unwrap());
    assert!(
        plugin
            .set(&ctx)
            .await
            .unwrap_err()
            .to_string()
            .ends_with("v2")
    );

    std::fs::write(dir.join("hooks.rhai"), "fn set(ctx) {\n").unwrap();
    let err = plugin.reload_if_changed().unwrap_err();
    assert!(err.to_string().contains("syntax error"), "{err}");
    assert!(
        plugin
            .set(&ctx)
            .await
            .unwrap_err()
            .to_string()
            .ends_with("v2"),
        "the old AST stays"
    );
}

//! Runaway scripts are stopped by the limits or the deadline and reported
//! with file, line and hook, and the process goes on serving hooks; secret
//! values never reach logs or errors (canary).

use std::time::Duration;

use rota_rotation::RotationPlugin as _;
use rota_script::{Limits, RuntimeOptions, ScriptPlugin, ScriptRuntime};

use crate::common::{CANARY, capture_logs, env, logs, manifest, request};

const RUNAWAY: &str = r#"
fn spin(ctx) {
    loop { }
}

fn grow(ctx) {
    let s = "xxxxxxxx";
    loop { s += s; }
}

fn down(n) {
    down(n + 1)
}

fn set(ctx) {
    switch ctx.settings.mode {
        "spin" => spin(ctx),
        "grow" => grow(ctx),
        "deep" => down(0),
        _ => ()
    }
}

fn test(ctx) { }
"#;

fn runaway_manifest() -> String {
    manifest("runaway") + "[settings.mode]\ntype = \"string\"\ndefault = \"ok\"\n"
}

async fn run_mode(
    plugin: &ScriptPlugin,
    e: &crate::common::Env,
    mode: &str,
    timeout: Duration,
) -> String {
    let mut ctx = e.step(Some("p"), timeout);
    ctx.settings = std::sync::Arc::new(serde_json::json!({ "mode": mode }));
    match plugin.set(&ctx).await {
        Ok(()) => "ok".into(),
        Err(err) => err.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_scripts_are_stopped_and_reported_with_file_and_line() {
    let e = env().await;
    let dir = e.plugin_dir("runaway", &runaway_manifest(), Some(RUNAWAY));
    // Small operation budget: the infinite loop hits it long before the deadline.
    let limited = ScriptRuntime::new(RuntimeOptions {
        limits: Limits {
            max_operations: 200_000,
            ..Limits::default()
        },
        ..Default::default()
    });
    let plugin = ScriptPlugin::load(&limited, &dir).unwrap();
    let file = dir.join("hooks.rhai").display().to_string();
    let long = Duration::from_secs(600);

    let spin = run_mode(&plugin, &e, "spin", long).await;
    assert_eq!(
        spin,
        format!(
            "{file}:3:5: in hook `set`: the script was stopped: too many operations (limit reached)"
        )
    );
    let grow = run_mode(&plugin, &e, "grow", long).await;
    assert!(grow.starts_with(&format!("{file}:8:")), "{grow}");
    assert!(
        grow.ends_with("in hook `set`: the script was stopped: Length of string over the limit"),
        "{grow}"
    );
    let deep = run_mode(&plugin, &e, "deep", long).await;
    assert!(deep.starts_with(&format!("{file}:12:")), "{deep}");
    assert!(deep.contains("call depth limit reached"), "{deep}");

    // The process survives and the same plugin keeps working.
    assert_eq!(run_mode(&plugin, &e, "ok", long).await, "ok");

    // Default limits: the deadline stops the loop (the operation limit is
    // far away), and the report still says where.
    let plugin = ScriptPlugin::load(&e.runtime, &dir).unwrap();
    let spin = run_mode(&plugin, &e, "spin", Duration::from_millis(200)).await;
    assert_eq!(
        spin,
        format!("{file}:3:5: in hook `set`: the script was stopped at the step's deadline")
    );
    assert_eq!(run_mode(&plugin, &e, "ok", long).await, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_error_is_permanent_and_a_thrown_error_is_retryable() {
    let e = env().await;
    let dir = e.plugin_dir(
        "kinds",
        &manifest("kinds"),
        Some(
            "fn set(ctx) { let s = \"x\"; loop { s += s; } }\nfn test(ctx) { throw \"not yet\"; }",
        ),
    );
    let plugin = ScriptPlugin::load(&e.runtime, &dir).unwrap();
    let ctx = e.step(Some("p"), Duration::from_secs(600));
    assert!(!plugin.set(&ctx).await.unwrap_err().is_retryable());
    let t = plugin.test(&ctx).await.unwrap_err();
    assert!(t.is_retryable());
    assert!(
        t.to_string().ends_with(":2:16: in hook `test`: not yet"),
        "{t}"
    );
}

const LEAKY: &str = r#"
fn generate(ctx) {
    let v = password::generate(#{ length: 20 });
    print(v);
    log::info("generated " + v);
    `canary-5f3e9a7c-${ctx.current.reveal()}`
}

fn set(ctx) {
    print(ctx.pending);
    print(ctx.pending.reveal());
    debug(ctx);
    log::info("pending is " + ctx.pending.reveal());
    log::warn(#{ value: ctx.pending, plain: ctx.pending.reveal() });
    let text = `${ctx.pending}`;
    if text != "***" { throw "interpolation shows the value"; }
}

fn test(ctx) {
    throw "refusing " + ctx.pending.reveal();
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_values_print_as_stars_in_logs_errors_and_history() {
    capture_logs();
    let e = env().await;
    e.create("app/leaky", &format!("{CANARY}-initial")).await;
    let dir = e.plugin_dir("leaky", &manifest("leaky"), Some(LEAKY));
    let plugin = ScriptPlugin::load(&e.runtime, &dir).unwrap();
    let (rotator, history) = e.rotator(vec![plugin]);
    let err = rotator
        .rotate(&request(
            "app/leaky",
            "leaky",
            serde_json::Value::Null,
            "rota-t-1",
            1,
        ))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("test failed: "), "{msg}");
    assert!(msg.ends_with("in hook `test`: refusing ***"), "{msg}");
    assert!(!msg.contains(CANARY));

    let pending = e.stage("app/leaky", "ACSPending").await.unwrap().1;
    assert!(pending.starts_with(CANARY), "the hook's value was written");
    let logs = logs();
    assert!(logs.contains("***"), "the prints were logged");
    assert!(logs.contains("hooks.rhai"), "log lines name the script");
    assert!(
        !logs.contains(CANARY),
        "a secret value reached the logs:\n{logs}"
    );
    let events = format!("{:?}", history.events());
    assert!(!events.contains(CANARY), "history leaks: {events}");
}

/// Hooks first run on the calling thread and move to a blocking thread when
/// they need to: a hook that logs, then waits on a host call inside
/// `try`/`catch`, logs each line once and gets the real answer; a hook that
/// computes past the speculative budget finishes with the right value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_that_must_block_moves_to_a_thread_once_and_logs_once() {
    capture_logs();
    let e = env().await;
    e.create("app/spec", "value-of-spec").await;
    let hooks = r#"
fn set(ctx) {
    log::info("spec-marker-before-the-call");
    let v = ();
    try { v = kms::get("app/spec"); } catch (err) { throw "swallowed: " + err; }
    if v.value.reveal() != "value-of-spec" { throw "wrong value"; }
    log::info("spec-marker-after-the-call");
}
fn test(ctx) {
    let n = 0;
    for i in 0..50000 { n += i; }
    if n != 1249975000 { throw "wrong sum " + n; }
}
// Host calls and long loops inside closures: Rhai wraps their errors in a
// catchable one, which must neither fail the hook nor be swallowed.
fn finish(ctx) {
    let caught = "";
    try { ["app/spec"].map(|name| kms::get(name)); } catch (err) { caught = "" + err; }
    if caught != "" { throw "the move was caught: " + caught; }
    let values = ["app/spec"].map(|name| kms::get(name).value.reveal());
    if values[0] != "value-of-spec" { throw "wrong value from map"; }
}
fn generate(ctx) {
    let sums = [1].map(|k| { let m = 0; for i in 0..20000 { m += k; } m });
    if sums[0] != 20000 { throw "wrong closure sum " + sums[0]; }
    "generated-" + sums[0]
}
"#;
    let dir = e.plugin_dir("spec", &manifest("spec"), Some(hooks));
    let plugin = ScriptPlugin::load(&e.runtime, &dir).unwrap();
    let ctx = e.step(Some("pending-value"), Duration::from_secs(30));
    plugin.set(&ctx).await.unwrap();
    plugin.test(&ctx).await.unwrap();
    plugin.finish(&ctx).await.unwrap();
    let generated = plugin.generate(&ctx).await.unwrap().unwrap();
    assert_eq!(generated.expose_secret(), "generated-20000");
    let logs = logs();
    for marker in ["spec-marker-before-the-call", "spec-marker-after-the-call"] {
        assert_eq!(logs.matches(marker).count(), 1, "{marker}:\n{logs}");
    }
}

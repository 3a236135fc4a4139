//! The host modules against the embedded local cloud: kms, json, base64,
//! time, password, ssh, log, and http (granted hosts only, loopback stub).

use std::time::Duration;

use rota_script::{CancelFlag, Workflow, WorkflowContext, WorkflowReport};
use serde_json::{Value, json};

use crate::common::{CANARY, Env, env, stub};

pub(crate) fn ctx(e: &Env, now: chrono::DateTime<chrono::Utc>, rotation: Value) -> WorkflowContext {
    WorkflowContext {
        kms: e.kms.clone(),
        api: e.api.clone(),
        deadline: tokio::time::Instant::now() + Duration::from_secs(120),
        now,
        rotation,
        cancel: CancelFlag::new(),
    }
}

async fn run(e: &Env, script: &str, hosts: Vec<String>) -> Result<WorkflowReport, String> {
    let path = e.dir.path().join(format!("s{}.rhai", rand_suffix()));
    std::fs::write(&path, script).unwrap();
    let wf = Workflow::load(&e.runtime, &path, json!({"n": 3}))
        .map_err(|e| e.to_string())?
        .with_http_hosts(hosts);
    wf.run(ctx(e, rota_test_support::base_now(), Value::Null))
        .await
        .map_err(|e| e.to_string())
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_module_reads_writes_and_moves_stages() {
    let e = env().await;
    e.create("app/one", CANARY).await;
    let report = run(
        &e,
        r#"
fn run(ctx) {
    let d = kms::describe("app/one");
    let cur = kms::get("app/one");
    kms::put("app/one", "v2", "second", ["ACSPending"]);
    let pending = kms::get("app/one", "ACSPending");
    kms::move_stage("app/one", "ACSCurrent", "v2", "v1");
    kms::move_stage("app/one", "ACSPending", (), "v2");
    let v1 = kms::get_version("app/one", "v1");
    let versions = kms::versions("app/one");
    versions.sort(|a, b| if a.version_id < b.version_id { -1 } else { 1 });
    #{
        type: d.type,
        current_is_canary: cur.value == "canary-5f3e9a7c",
        current_shown: cur.value,
        pending: pending.value.reveal(),
        now_current: kms::get("app/one").version_id,
        v1_stages: v1.stages,
        versions: versions.map(|v| v.version_id),
        listed: kms::list().map(|s| s.name),
        settings_n: ctx.settings.n
    }
}
"#,
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(
        report.result,
        json!({
            "type": "Generic",
            "current_is_canary": true,
            "current_shown": "***",
            "pending": "***",
            "now_current": "v2",
            "v1_stages": ["ACSPrevious"],
            "versions": ["v1", "v2"],
            "listed": ["app/one"],
            "settings_n": 3
        })
    );
    assert!(!format!("{report:?}").contains(CANARY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utility_modules() {
    let e = env().await;
    let report = run(
        &e,
        r#"
fn run(ctx) {
    let pw = password::generate(#{ length: 16, exclude_punctuation: true });
    let pair = ssh::keypair("ed25519", "me@host");
    let obj = json::decode("{\"a\": [1, 2], \"b\": \"x\"}");
    let secret_json = json::encode(#{ user: "u", pw: pw });
    let back = json::decode(secret_json);
    log::info("value " + pw.reveal());
    #{
        pw_len: pw.len(),
        pw_ok: password::check(pw, #{ length: 16, exclude_punctuation: true }),
        pub_ok: pair.public_key.starts_with("ssh-ed25519 ") && pair.public_key.ends_with(" me@host"),
        priv_ok: pair.private_key.reveal().starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"),
        fingerprint: pair.fingerprint.starts_with("SHA256:"),
        json: json::encode(obj),
        b64: base64::encode("hello"),
        unb64: base64::decode("aGVsbG8="),
        secret_json_is_secret: type_of(secret_json),
        back_user: back.user.reveal(),
        time: time::format(time::parse("2024-05-06T07:08:09Z")),
        time_plain: time::parse("2024-05-06 07:08:09"),
    }
}
"#,
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(
        report.result,
        json!({
            "pw_len": 16, "pw_ok": true, "pub_ok": true, "priv_ok": true, "fingerprint": true,
            "json": "{\"a\":[1,2],\"b\":\"x\"}", "b64": "aGVsbG8=", "unb64": "hello",
            "secret_json_is_secret": "Secret", "back_user": "u",
            "time": "2024-05-06T07:08:09Z", "time_plain": 1714979289
        })
    );
    assert_eq!(report.logs.len(), 1);
    assert_eq!(report.logs[0].message, "value ***");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_needs_a_grant_and_reaches_only_granted_hosts() {
    let e = env().await;
    let s = stub().await;
    let script = format!(
        "fn run(ctx) {{ let r = http::post_json(\"http://{}/hook\", #{{ a: 1, s: secret(\"{CANARY}\") }}); #{{ status: r.status, body: r.body }} }}",
        s.addr
    );
    let denied = run(&e, &script, vec![]).await.unwrap_err();
    assert!(
        denied.contains("http is not granted to this script"),
        "{denied}"
    );
    let other = run(&e, &script, vec!["example.invalid".into()])
        .await
        .unwrap_err();
    assert!(
        other.contains("is not granted (granted: example.invalid;"),
        "{other}"
    );
    // A bare host allows only the scheme's default port.
    let bare = run(&e, &script, vec![s.addr.ip().to_string()])
        .await
        .unwrap_err();
    assert!(bare.contains("is not granted"), "{bare}");
    let ok = run(&e, &script, vec![s.addr.to_string()]).await.unwrap();
    assert_eq!(ok.result, json!({"status": 200, "body": "ok"}));
    let bodies = s.bodies.lock().unwrap().clone();
    assert_eq!(bodies, vec![r#"{"a":1,"s":"***"}"#.to_owned()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_errors_are_typed_and_name_the_line() {
    let e = env().await;
    let err = run(&e, "fn run(ctx) {\n  kms::get(\"nope\")\n}", vec![])
        .await
        .unwrap_err();
    assert!(
        err.contains(":2:12: in hook `run`: kms::get: GetSecretValue failed"),
        "{err}"
    );
    let err = run(&e, "fn run(ctx) {\n  let x = undefined_var;\n}", vec![])
        .await
        .unwrap_err();
    assert!(
        err.contains(":2:") && err.contains("undefined_var"),
        "{err}"
    );
    let err = run(&e, "fn run(ctx) { ssh::keypair(\"dsa\") }", vec![])
        .await
        .unwrap_err();
    assert!(err.contains("unknown key type \"dsa\""), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssh_rsa_key_pairs() {
    let e = env().await;
    let report = run(
        &e,
        r#"fn run(ctx) {
    let pair = ssh::keypair("rsa", "ops@rota");
    #{
        pub_ok: pair.public_key.starts_with("ssh-rsa ") && pair.public_key.ends_with(" ops@rota"),
        priv_ok: pair.private_key.reveal().starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"),
        shown: pair.private_key,
        kind: pair.type
    }
}"#,
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(
        report.result,
        json!({"pub_ok": true, "priv_ok": true, "shown": "***", "kind": "rsa"})
    );
}

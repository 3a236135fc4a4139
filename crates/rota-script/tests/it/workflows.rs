//! The shipped workflow scripts against the embedded local cloud, with the
//! run's clock pinned through `ctx.now`.

use chrono::Duration as Days;
use rota_kms::SecretString;
use rota_kms::kms::{DeleteSecret, PutSecretValue};
use rota_script::Workflow;
use serde_json::{Value, json};

use crate::common::{Env, env, repo, stub};
use crate::modules::ctx;

fn script(e: &Env, name: &str, settings: Value) -> Workflow {
    Workflow::load(
        &e.runtime,
        &repo().join("scripts").join(format!("{name}.rhai")),
        settings,
    )
    .unwrap()
}

async fn put(e: &Env, name: &str, version: &str, stages: &[&str]) {
    e.kms
        .send(&PutSecretValue {
            secret_name: name.into(),
            version_id: version.into(),
            secret_data: SecretString::new(format!("value-{version}")),
            secret_data_type: None,
            version_stages: Some(stages.iter().map(|s| (*s).to_owned()).collect()),
        })
        .await
        .unwrap();
}

async fn delete(e: &Env, name: &str, days: u32) {
    e.kms
        .send(&DeleteSecret {
            secret_name: name.into(),
            force_delete_without_recovery: None,
            recovery_window_in_days: Some(days),
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compliance_report_finds_unrotated_overdue_and_failing_secrets() {
    let e = env().await;
    for name in [
        "a/fine",
        "a/failing",
        "a/late",
        "a/stuck",
        "a/unrotated",
        "a/deleted",
    ] {
        e.create(name, "v").await;
    }
    put(&e, "a/stuck", "p1", &["ACSPending"]).await;
    delete(&e, "a/deleted", 7).await;
    let rotation = json!({
        "a/fine": {"configured": true},
        "a/failing": {"configured": true, "failing": true, "last_error": "set failed: timeout"},
        "a/late": {"configured": true, "overdue": true, "reason": "missed the 02:00 slot"},
        "a/stuck": {"configured": true}
    });
    let wf = script(&e, "compliance-report", json!({"stuck_after_hours": 1}));
    let report = wf
        .run(ctx(
            &e,
            rota_test_support::base_now() + Days::hours(2),
            rotation,
        ))
        .await
        .unwrap();
    assert_eq!(
        report.summary,
        "5 secrets: 1 without rotation, 1 overdue, 2 failing"
    );
    assert_eq!(report.result["without_rotation"], json!(["a/unrotated"]));
    assert_eq!(
        report.result["overdue"],
        json!([{"name": "a/late", "reason": "missed the 02:00 slot"}])
    );
    assert_eq!(
        report.result["failing"],
        json!([
            {"name": "a/failing", "reason": "set failed: timeout"},
            {"name": "a/stuck", "reason": "a rotation has been pending for 2h"}
        ])
    );
    assert_eq!(report.logs.len(), 4);

    // An old current version is overdue by age.
    let wf = script(&e, "compliance-report", json!({"max_age_days": 30}));
    let report = wf
        .run(ctx(
            &e,
            rota_test_support::base_now() + Days::days(31),
            json!({"a/fine": {"configured": true}}),
        ))
        .await
        .unwrap();
    assert_eq!(report.result["overdue"][0]["name"], "a/fine");
    assert_eq!(
        report.result["overdue"][0]["reason"],
        "current version is 31 days old"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_removes_stale_labels_from_old_versions() {
    // A manual clock: versions get distinct creation times.
    let clock = rota_test_support::manual_clock();
    let e = crate::common::env_on(None, std::sync::Arc::new(clock.clone())).await;
    let tick = || clock.advance(Days::seconds(10));
    e.create("c/x", "v").await;
    tick();
    put(&e, "c/x", "v0", &["old-label"]).await;
    tick();
    // An abandoned rotation: its pending version is older than the current.
    put(&e, "c/x", "p1", &["ACSPending"]).await;
    tick();
    put(&e, "c/x", "v2", &["ACSCurrent"]).await;
    tick();
    e.create("other/y", "v").await;
    put(&e, "other/y", "o1", &["keep-me"]).await;

    let stages = |e: &Env, name: &'static str| {
        let kms = e.kms.clone();
        async move {
            let mut v: Vec<(String, Vec<String>)> = kms
                .list_all_versions(name)
                .await
                .unwrap()
                .into_iter()
                .map(|v| (v.version_id, v.version_stages.version_stage))
                .collect();
            v.sort();
            v
        }
    };
    let before = stages(&e, "c/x").await;
    let later = rota_test_support::base_now() + Days::days(31);
    // Without dry_run = false nothing changes.
    let dry = script(&e, "cleanup-deprecated-versions", json!({"prefix": "c/"}));
    let report = dry.run(ctx(&e, later, Value::Null)).await.unwrap();
    assert_eq!(
        report.summary,
        "dry run: would remove 2 stage labels from old versions of 1 secrets (1 scanned); set dry_run = false to remove them"
    );
    assert_eq!(stages(&e, "c/x").await, before);

    let wf = script(
        &e,
        "cleanup-deprecated-versions",
        json!({"prefix": "c/", "dry_run": false}),
    );
    let report = wf.run(ctx(&e, later, Value::Null)).await.unwrap();
    assert_eq!(
        report.summary,
        "removed 2 stage labels from old versions of 1 secrets (1 scanned)"
    );
    let after = stages(&e, "c/x").await;
    let labels = |after: &[(String, Vec<String>)], id: &str| {
        after
            .iter()
            .find(|(v, _)| v == id)
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    };
    assert!(
        labels(&after, "v0").is_empty() && labels(&after, "p1").is_empty(),
        "{after:?}"
    );
    assert_eq!(labels(&after, "v2"), ["ACSCurrent"]);
    assert_eq!(labels(&after, "v1"), ["ACSPrevious"]);
    assert_eq!(
        stages(&e, "other/y")
            .await
            .iter()
            .find(|(v, _)| v == "o1")
            .unwrap()
            .1,
        ["keep-me"]
    );

    // A rotation in flight keeps its ACSPending, even with max_age_days = 0.
    tick();
    put(&e, "c/x", "p3", &["ACSPending"]).await;
    let eager = script(
        &e,
        "cleanup-deprecated-versions",
        json!({"prefix": "c/", "dry_run": false, "max_age_days": 0}),
    );
    let report = eager.run(ctx(&e, later, Value::Null)).await.unwrap();
    assert_eq!(
        report.result["kept"][0]["version"], "p3",
        "{:?}",
        report.result
    );
    assert_eq!(
        labels(&stages(&e, "c/x").await, "p3"),
        ["ACSPending"],
        "a rotation in flight lost its label"
    );

    // Young versions are left alone.
    put(&e, "c/x", "v3", &["fresh"]).await;
    let report = wf
        .run(ctx(&e, rota_test_support::base_now(), Value::Null))
        .await
        .unwrap();
    assert_eq!(
        report.summary,
        "removed 0 stage labels from old versions of 0 secrets (1 scanned)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_window_reminder_lists_and_notifies() {
    let e = env().await;
    for name in ["d/soon", "d/later", "d/alive"] {
        e.create(name, "v").await;
    }
    delete(&e, "d/soon", 7).await;
    delete(&e, "d/later", 30).await;
    let s = stub().await;
    let wf = script(
        &e,
        "deletion-window-reminder",
        json!({"within_days": 3, "notify_url": format!("http://{}/remind", s.addr)}),
    )
    .with_http_hosts(vec![s.addr.to_string()]);
    let report = wf
        .run(ctx(
            &e,
            rota_test_support::base_now() + Days::days(5),
            Value::Null,
        ))
        .await
        .unwrap();
    assert_eq!(
        report.summary,
        "2 secrets scheduled for deletion, 1 within 3 days"
    );
    assert_eq!(report.result["soon"][0]["name"], "d/soon");
    let hours = report.result["soon"][0]["hours_left"].as_i64().unwrap();
    assert!((47..=48).contains(&hours), "{hours}");
    let bodies = s.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    let body: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(body["event"], "deletion-window");
    assert_eq!(body["secrets"][0]["name"], "d/soon");
}

//! Full rotations through the example-echo native plugin on the embedded
//! local cloud, a step that overruns its deadline, and a panic in `set`
//! inside a real rotation.

use std::time::Duration;

use rota_rotation::{RotationOutcome, Step};
use serde_json::json;

use crate::common::{env, load, request, steps, token};

const CANARY: &str = "canary-5e0a7c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_rotates_a_generic_secret_through_the_protocol() {
    let e = env().await;
    e.create("app/echo", CANARY).await;
    let (rotator, history) = e.rotator(load("example-echo", ""));
    let t = token(1);
    let out = rotator
        .rotate(&request(
            "app/echo",
            "example-echo",
            json!({"greeting": "hi"}),
            &t,
        ))
        .await
        .unwrap();
    assert_eq!(out, rota_test_support::rotation::rotated(&t));
    let (cur_id, cur) = e.stage("app/echo", "ACSCurrent").await.unwrap();
    assert_eq!(cur_id, t);
    assert_ne!(cur, CANARY);
    assert_eq!(
        e.stage("app/echo", "ACSPrevious").await.unwrap(),
        ("v1".into(), CANARY.into())
    );
    assert_eq!(
        steps(&history),
        ["inspect", "create", "set", "test", "finish"]
            .iter()
            .map(|s| (*s, "ok".to_owned()))
            .collect::<Vec<_>>()
    );
    let dump = format!("{:?}", history.events());
    assert!(
        !dump.contains(CANARY) && !dump.contains(&cur),
        "history leaks a value"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_overruns_is_reported_and_rota_keeps_running() {
    let e = env().await;
    e.create("app/slow", CANARY).await;
    let (rotator, history) = e.rotator(load("example-echo", ""));
    let rotator = rotator.with_step_timeout(Duration::from_millis(300));
    let err = rotator
        .rotate(&request(
            "app/slow",
            "example-echo",
            json!({"delay_ms": 3000}),
            &token(1),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.step, Step::Set);
    assert!(err.retryable);
    assert_eq!(err.message, "the step did not finish before its deadline");
    assert!(steps(&history).contains(&("set", "failed".to_owned())));
    // The next run rolls the same candidate forward with a fast plugin.
    let out = rotator
        .rotate(&request("app/slow", "example-echo", json!({}), &token(1)))
        .await
        .unwrap();
    assert!(matches!(out, RotationOutcome::Rotated { .. }), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_set_fails_the_rotation_without_aborting_rota() {
    let e = env().await;
    e.create("app/panic", CANARY).await;
    let (rotator, _) = e.rotator(load("example-echo", "panic-in-set"));
    let err = rotator
        .rotate(&request("app/panic", "example-echo", json!({}), &token(1)))
        .await
        .unwrap_err();
    assert_eq!(err.step, Step::Set);
    assert!(!err.retryable);
    assert!(
        err.message.contains("the plugin panicked"),
        "{}",
        err.message
    );
    assert_eq!(e.stage("app/panic", "ACSCurrent").await.unwrap().1, CANARY);
}

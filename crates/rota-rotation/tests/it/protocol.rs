//! The rotation protocol against the embedded local cloud: the happy paths
//! of the built-in plugins, and a test plugin with a target that fails at
//! each step, checking the recovery each time and that the target's
//! credential is always ACSCurrent or ACSPending.

use std::sync::{Arc, Mutex};

use rota_kms::SecretString;
use rota_kms::kms::PutSecretValue;
use rota_rotation::{
    MemoryHistory, PluginDescriptor, PluginError, RotationOutcome, RotationPlugin, Rotator,
    SettingsSchema, Step, StepContext, StepSet, slot_token,
};
use serde_json::{Value, json};

const CANARY: &str = "canary-8c41d2";

use rota_test_support::cloud::{Cloud as Env, create_in as create, stage_of as stage_value};

async fn env() -> Env {
    rota_test_support::cloud::open(None).await
}

use rota_test_support::rotation::request;

fn token(n: u32) -> String {
    slot_token(
        "s",
        chrono::DateTime::from_timestamp(1_700_000_000 + i64::from(n) * 3600, 0).unwrap(),
    )
}

// ---------------------------------------------------------------- built-ins

#[tokio::test]
async fn password_plugin_rotates_a_generic_secret() {
    let e = env().await;
    create(&e.kms, "app/db", CANARY).await;
    let (rotator, history) = rota_test_support::rotation::rotator(&e, []);
    let t = token(1);
    let settings = json!({"length": 20, "exclude_punctuation": true});
    let out = rotator
        .rotate(&request("app/db", "password", settings.clone(), &t, 1))
        .await
        .unwrap();
    assert_eq!(out, rota_test_support::rotation::rotated(&t));

    let (cur_id, cur) = stage_value(&e.kms, "app/db", "ACSCurrent").await.unwrap();
    assert_eq!(cur_id, t);
    assert_eq!(cur.len(), 20);
    assert!(cur.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(
        stage_value(&e.kms, "app/db", "ACSPrevious").await.unwrap(),
        ("v1".into(), CANARY.into())
    );
    assert!(stage_value(&e.kms, "app/db", "ACSPending").await.is_none());

    let steps: Vec<_> = history
        .events()
        .iter()
        .map(|ev| (ev.step.name(), ev.outcome.as_str()))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("inspect", "ok"),
            ("create", "ok"),
            ("set", "ok"),
            ("test", "ok"),
            ("finish", "ok")
        ]
    );
    let dump = format!("{:?}", history.events());
    assert!(
        !dump.contains(CANARY) && !dump.contains(&cur),
        "history leaks a value"
    );

    // The same token again: nothing left to do.
    let again = rotator
        .rotate(&request("app/db", "password", settings, &t, 2))
        .await
        .unwrap();
    assert_eq!(again, RotationOutcome::AlreadyDone { version_id: t });
}

#[tokio::test]
async fn password_plugin_rotates_one_json_field() {
    let e = env().await;
    create(
        &e.kms,
        "app/login",
        &json!({"username": "svc", "password": CANARY}).to_string(),
    )
    .await;
    let (rotator, _) = rota_test_support::rotation::rotator(&e, []);
    rotator
        .rotate(&request(
            "app/login",
            "password",
            json!({"field": "password"}),
            &token(1),
            1,
        ))
        .await
        .unwrap();
    let (_, cur) = stage_value(&e.kms, "app/login", "ACSCurrent")
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&cur).unwrap();
    assert_eq!(v["username"], "svc");
    assert_eq!(v["password"].as_str().unwrap().len(), 32);
    assert_ne!(v["password"], CANARY);
}

#[tokio::test]
async fn bad_plugin_settings_and_types_are_refused_before_anything_is_written() {
    let e = env().await;
    create(&e.kms, "app/x", "v").await;
    let (rotator, _) = rota_test_support::rotation::rotator(&e, []);
    let err = rotator
        .rotate(&request(
            "app/x",
            "password",
            json!({"lenght": 12}),
            &token(1),
            1,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.step, Step::Inspect);
    assert!(!err.retryable);
    assert!(
        err.message.contains("unknown setting \"lenght\""),
        "{}",
        err.message
    );
    let err = rotator
        .rotate(&request("app/x", "managed", json!({}), &token(1), 1))
        .await
        .unwrap_err();
    assert!(
        err.message.contains("handles secret types"),
        "{}",
        err.message
    );
    let err = rotator
        .rotate(&request("app/x", "nope", json!({}), &token(1), 1))
        .await
        .unwrap_err();
    assert!(
        err.message.contains("unknown rotation plugin \"nope\""),
        "{}",
        err.message
    );
    let versions = e.kms.list_all_versions("app/x").await.unwrap();
    assert_eq!(versions.len(), 1);
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let e = env().await;
    create(&e.kms, "app/dry", "value").await;
    let (rotator, _) = rota_test_support::rotation::rotator(&e, []);
    let err = rotator
        .dry_run(&request(
            "app/dry",
            "password",
            json!({"length": 5}),
            &token(1),
            1,
        ))
        .await
        .unwrap_err();
    assert!(
        err.message.contains("length 5 is outside 8–128"),
        "{}",
        err.message
    );
    // A valid policy; the probe finds the current value does not meet it.
    let report = rotator
        .dry_run(&request(
            "app/dry",
            "password",
            json!({"length": 12}),
            &token(1),
            1,
        ))
        .await
        .unwrap();
    assert_eq!(report.current_version, "v1");
    assert!(
        report.plan.iter().any(|l| l.contains("ACSPending")),
        "{:?}",
        report.plan
    );
    assert!(report.probe.is_err());
    assert_eq!(e.kms.list_all_versions("app/dry").await.unwrap().len(), 1);
}

// --------------------------------------------------- a plugin with a target

/// Where the fake plugin fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    Never,
    Generate,
    SetBeforeChange,
    SetAfterChange,
    Test,
    Finish,
}

/// A target holding one credential, and a plugin that rotates it.
#[derive(Debug)]
struct Target {
    credential: Mutex<String>,
    fail: Mutex<Fail>,
    /// Every credential the target held, in order.
    seen: Mutex<Vec<String>>,
    descriptor: PluginDescriptor,
}

impl Target {
    fn new(initial: &str) -> Arc<Self> {
        Arc::new(Self {
            credential: Mutex::new(initial.into()),
            fail: Mutex::new(Fail::Never),
            seen: Mutex::new(vec![initial.into()]),
            descriptor: PluginDescriptor {
                name: "fake-target".into(),
                version: "1".into(),
                description: "a test target".into(),
                secret_types: vec!["Generic".into()],
                settings: SettingsSchema::default(),
                origin: "test".into(),
                steps: StepSet {
                    generate: true,
                    finish: true,
                    rollback: false,
                    verify: false,
                },
            },
        })
    }

    fn fail_at(&self, f: Fail) {
        *self.fail.lock().unwrap() = f;
    }

    fn failing(&self, f: Fail) -> bool {
        *self.fail.lock().unwrap() == f
    }

    fn credential(&self) -> String {
        self.credential.lock().unwrap().clone()
    }
}

#[derive(Debug)]
struct FakePlugin(Arc<Target>);

impl RotationPlugin for FakePlugin {
    fn descriptor(&self) -> &PluginDescriptor {
        &self.0.descriptor
    }

    fn generate<'a>(
        &'a self,
        _ctx: &'a StepContext,
    ) -> rota_rotation::plugin::StepFuture<'a, Option<SecretString>> {
        Box::pin(async move {
            if self.0.failing(Fail::Generate) {
                return Err(PluginError::failed("generator down"));
            }
            Ok(Some(SecretString::new(format!(
                "{CANARY}-{}",
                rand_suffix()
            ))))
        })
    }

    fn set<'a>(&'a self, ctx: &'a StepContext) -> rota_rotation::plugin::StepFuture<'a, ()> {
        Box::pin(async move {
            let pending = ctx.pending_value()?.expose_secret().to_owned();
            if self.0.credential() == pending {
                return Ok(()); // probe: already set
            }
            if self.0.failing(Fail::SetBeforeChange) {
                return Err(PluginError::failed("target refused the change"));
            }
            *self.0.credential.lock().unwrap() = pending.clone();
            self.0.seen.lock().unwrap().push(pending);
            if self.0.failing(Fail::SetAfterChange) {
                return Err(PluginError::failed("connection lost after the change"));
            }
            Ok(())
        })
    }

    fn test<'a>(&'a self, ctx: &'a StepContext) -> rota_rotation::plugin::StepFuture<'a, ()> {
        Box::pin(async move {
            if self.0.failing(Fail::Test) {
                return Err(PluginError::failed("login check failed"));
            }
            let pending = ctx.pending_value()?.expose_secret().to_owned();
            if self.0.credential() == pending {
                Ok(())
            } else {
                Err(PluginError::failed("the target rejects the value"))
            }
        })
    }

    fn finish<'a>(&'a self, _ctx: &'a StepContext) -> rota_rotation::plugin::StepFuture<'a, ()> {
        Box::pin(async move {
            if self.0.failing(Fail::Finish) {
                return Err(PluginError::failed("clean-up failed"));
            }
            Ok(())
        })
    }
}

fn rand_suffix() -> u32 {
    rand::random()
}

struct Fixture {
    e: Env,
    target: Arc<Target>,
    rotator: Rotator,
    history: Arc<MemoryHistory>,
}

async fn fixture(name: &str) -> Fixture {
    let e = env().await;
    create(&e.kms, name, "initial-credential").await;
    let target = Target::new("initial-credential");
    let (rotator, history) =
        rota_test_support::rotation::rotator(&e, [Arc::new(FakePlugin(target.clone())) as Arc<_>]);
    let rotator = rotator.with_fresh_after(3);
    Fixture {
        e,
        target,
        rotator,
        history,
    }
}

impl Fixture {
    async fn rotate(
        &self,
        name: &str,
        token: &str,
        attempt: u32,
    ) -> Result<RotationOutcome, rota_rotation::RotationError> {
        self.rotator
            .rotate(&request(name, "fake-target", json!({}), token, attempt))
            .await
    }

    /// The invariant: the target holds ACSCurrent or ACSPending.
    async fn assert_no_lockout(&self, name: &str) {
        let cred = self.target.credential();
        let current = stage_value(&self.e.kms, name, "ACSCurrent")
            .await
            .map(|v| v.1);
        let pending = stage_value(&self.e.kms, name, "ACSPending")
            .await
            .map(|v| v.1);
        assert!(
            current.as_deref() == Some(cred.as_str()) || pending.as_deref() == Some(cred.as_str()),
            "lockout: the target holds neither ACSCurrent nor ACSPending"
        );
    }

    async fn assert_converged(&self, name: &str, token: &str) {
        let (id, value) = stage_value(&self.e.kms, name, "ACSCurrent").await.unwrap();
        assert_eq!(id, token);
        assert_eq!(
            value,
            self.target.credential(),
            "target differs from ACSCurrent"
        );
        assert!(stage_value(&self.e.kms, name, "ACSPending").await.is_none());
        assert_eq!(
            stage_value(&self.e.kms, name, "ACSPrevious")
                .await
                .unwrap()
                .0,
            "v1"
        );
    }
}

#[tokio::test]
async fn failure_while_generating_writes_nothing() {
    let f = fixture("t/gen").await;
    f.target.fail_at(Fail::Generate);
    let err = f.rotate("t/gen", &token(1), 1).await.unwrap_err();
    assert_eq!(err.step, Step::Create);
    assert_eq!(f.e.kms.list_all_versions("t/gen").await.unwrap().len(), 1);
    f.assert_no_lockout("t/gen").await;
    f.target.fail_at(Fail::Never);
    f.rotate("t/gen", &token(1), 2).await.unwrap();
    f.assert_converged("t/gen", &token(1)).await;
}

#[tokio::test]
async fn failure_in_set_before_the_change_rolls_forward() {
    let f = fixture("t/set1").await;
    f.target.fail_at(Fail::SetBeforeChange);
    let err = f.rotate("t/set1", &token(1), 1).await.unwrap_err();
    assert_eq!((err.step, err.retryable), (Step::Set, true));
    f.assert_no_lockout("t/set1").await;
    assert_eq!(
        stage_value(&f.e.kms, "t/set1", "ACSPending")
            .await
            .unwrap()
            .0,
        token(1)
    );
    assert_eq!(
        stage_value(&f.e.kms, "t/set1", "ACSCurrent")
            .await
            .unwrap()
            .0,
        "v1"
    );
    f.target.fail_at(Fail::Never);
    f.rotate("t/set1", &token(1), 2).await.unwrap();
    f.assert_converged("t/set1", &token(1)).await;
}

#[tokio::test]
async fn failure_in_set_after_the_change_rolls_forward() {
    let f = fixture("t/set2").await;
    f.target.fail_at(Fail::SetAfterChange);
    f.rotate("t/set2", &token(1), 1).await.unwrap_err();
    // The target already holds the candidate, which is ACSPending.
    f.assert_no_lockout("t/set2").await;
    assert_eq!(
        f.target.credential(),
        stage_value(&f.e.kms, "t/set2", "ACSPending")
            .await
            .unwrap()
            .1
    );
    f.target.fail_at(Fail::Never);
    f.rotate("t/set2", &token(1), 2).await.unwrap();
    f.assert_converged("t/set2", &token(1)).await;
    // The same candidate was used: the target saw exactly one new value.
    assert_eq!(f.target.seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn failure_in_test_never_promotes() {
    let f = fixture("t/test").await;
    f.target.fail_at(Fail::Test);
    let err = f.rotate("t/test", &token(1), 1).await.unwrap_err();
    assert_eq!(err.step, Step::Test);
    assert_eq!(
        stage_value(&f.e.kms, "t/test", "ACSCurrent")
            .await
            .unwrap()
            .0,
        "v1"
    );
    f.assert_no_lockout("t/test").await;
    f.target.fail_at(Fail::Never);
    f.rotate("t/test", &token(1), 2).await.unwrap();
    f.assert_converged("t/test", &token(1)).await;
}

#[tokio::test]
async fn failure_in_the_finish_hook_keeps_the_promotion() {
    let f = fixture("t/fin").await;
    f.target.fail_at(Fail::Finish);
    let err = f.rotate("t/fin", &token(1), 1).await.unwrap_err();
    assert_eq!(err.step, Step::Finish);
    f.assert_converged("t/fin", &token(1)).await;
    f.target.fail_at(Fail::Never);
    assert_eq!(
        f.rotate("t/fin", &token(1), 2).await.unwrap(),
        RotationOutcome::AlreadyDone {
            version_id: token(1)
        }
    );
}

#[tokio::test]
async fn a_candidate_the_target_never_took_is_replaced_after_repeated_failures() {
    let f = fixture("t/fresh").await;
    f.target.fail_at(Fail::SetBeforeChange);
    for attempt in 1..=3 {
        f.rotate("t/fresh", &token(1), attempt).await.unwrap_err();
        f.assert_no_lockout("t/fresh").await;
    }
    let first = stage_value(&f.e.kms, "t/fresh", "ACSPending")
        .await
        .unwrap();
    assert_eq!(first.0, token(1));
    f.target.fail_at(Fail::Never);
    // Attempt 4: the target rejects the old candidate, so a fresh one is made.
    let out = f.rotate("t/fresh", &token(1), 4).await.unwrap();
    let fresh = format!("{}-r2", token(1));
    assert_eq!(
        out,
        RotationOutcome::Rotated {
            version_id: fresh.clone(),
            resumed: false
        }
    );
    let (id, value) = stage_value(&f.e.kms, "t/fresh", "ACSCurrent")
        .await
        .unwrap();
    assert_eq!(id, fresh);
    assert_ne!(value, first.1);
    assert_eq!(value, f.target.credential());
}

#[tokio::test]
async fn a_rotation_in_flight_is_finished_before_another_starts() {
    let f = fixture("t/resume").await;
    f.target.fail_at(Fail::Test);
    f.rotate("t/resume", &token(1), 1).await.unwrap_err();
    f.target.fail_at(Fail::Never);
    // The next slot finds token(1) pending and finishes it instead.
    let out = f.rotate("t/resume", &token(2), 1).await.unwrap();
    assert_eq!(
        out,
        RotationOutcome::Rotated {
            version_id: token(1),
            resumed: true
        }
    );
    f.assert_converged("t/resume", &token(1)).await;
}

#[tokio::test]
async fn a_crash_in_finish_is_tidied_by_the_next_run() {
    let f = fixture("t/tidy").await;
    let t = token(1);
    // Simulate a crash after ACSCurrent moved but before ACSPending was dropped.
    f.e.kms
        .send(&PutSecretValue {
            secret_name: "t/tidy".into(),
            version_id: t.clone(),
            secret_data: SecretString::new("initial-credential-2"),
            secret_data_type: None,
            version_stages: Some(vec!["ACSPending".into(), "ACSCurrent".into()]),
        })
        .await
        .unwrap();
    *f.target.credential.lock().unwrap() = "initial-credential-2".into();
    assert_eq!(
        f.rotate("t/tidy", &t, 2).await.unwrap(),
        RotationOutcome::AlreadyDone {
            version_id: t.clone()
        }
    );
    f.assert_converged("t/tidy", &t).await;
    assert!(
        f.history
            .events()
            .iter()
            .all(|ev| ev.error.as_deref().is_none_or(|m| !m.contains(CANARY)))
    );
}

#[tokio::test]
async fn managed_types_are_refused_by_the_password_plugin() {
    let e = env().await;
    let (rotator, _) = rota_test_support::rotation::rotator(&e, []);
    let err = rotator
        .rotate(&request(
            "missing/secret",
            "password",
            json!({}),
            &token(1),
            1,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.step, Step::Inspect);
    assert!(
        err.message.contains("Forbidden.ResourceNotFound"),
        "{}",
        err.message
    );
}

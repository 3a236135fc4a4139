//! The daemon core without the binary: a scheduler pass over due
//! rotations and a workflow, a crash in the middle of a rotation and the
//! pass that resumes it, and jobs kept in step with the configuration.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rota_kms::kms::{CreateSecret, GetSecretValue};
use rota_kms::{BoxFuture, KmsClient, OpenApi, SecretString, Transport};
use rota_local::LocalCloud;
use rota_rotation::{
    CrashHook, CrashPoint, Daemon, DaemonOptions, JobKind, OnFailure, PluginRegistry, RotationJobs,
    RotationTarget, Rotator, RunOutcome, SecretLocks, SqliteHistory, Targets, WorkflowOutput,
    WorkflowRunner, WorkflowTarget,
};
use rota_scheduler::{CatchUp, Clock, JobRun, JobStore, ManualClock, SqliteStore};

/// A cloud, a scheduler store and a history in one temp dir, on a manual
/// clock at the suite's base instant.
struct Env {
    dir: tempfile::TempDir,
    _cloud: LocalCloud,
    kms: KmsClient,
    api: OpenApi,
    clock: ManualClock,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let clock = rota_test_support::manual_clock();
    let cloud = LocalCloud::options(dir.path().join("cloud"))
        .clock(Arc::new(clock.clone()))
        .automatic_rotation(false)
        .open()
        .await
        .unwrap();
    let transport: Arc<dyn Transport> = Arc::new(cloud.clone());
    Env {
        dir,
        _cloud: cloud,
        kms: KmsClient::new(transport.clone()),
        api: OpenApi::new(transport),
        clock,
    }
}

impl Env {
    async fn create(&self, name: &str) {
        self.kms
            .send(&CreateSecret {
                secret_name: name.into(),
                secret_data: SecretString::new("initial-value"),
                version_id: "v1".into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    async fn current(&self, name: &str) -> String {
        self.kms
            .send(&GetSecretValue {
                secret_name: name.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .version_id
    }

    async fn versions(&self, name: &str) -> Vec<(String, Vec<String>)> {
        self.kms
            .list_all_versions(name)
            .await
            .unwrap()
            .into_iter()
            .map(|v| (v.version_id, v.version_stages.version_stage))
            .collect()
    }

    /// A daemon on this env's store, rotating with `crash`.
    fn daemon(
        &self,
        crash: CrashHook,
        workflows: Arc<dyn WorkflowRunner>,
    ) -> (Daemon, Arc<SqliteHistory>) {
        self.daemon_with_events(crash, workflows, None)
    }

    /// The same, writing events to this env's outbox.
    fn daemon_with_events(
        &self,
        crash: CrashHook,
        workflows: Arc<dyn WorkflowRunner>,
        events: Option<Arc<rota_rotation::events::Events>>,
    ) -> (Daemon, Arc<SqliteHistory>) {
        let db = self.dir.path().join("scheduler.db");
        let history = Arc::new(SqliteHistory::open(&db).unwrap());
        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        let rotator = Rotator::new(
            self.kms.clone(),
            self.api.clone(),
            Arc::new(PluginRegistry::with_builtins()),
            history.clone(),
        )
        .with_crash_hook(crash)
        .with_clock(clock.clone());
        let jobs = RotationJobs::new(rotator, SecretLocks::new(self.dir.path().join("locks")));
        let store: Arc<dyn JobStore> = Arc::new(SqliteStore::open(&db).unwrap());
        let daemon = Daemon::new(
            store,
            jobs,
            DaemonOptions {
                owner: "test-daemon".into(),
                concurrency: 4,
                clock,
                workflows,
                history: history.clone(),
                observer: None,
                notify_timeout: Duration::from_secs(1),
                lease_ttl: Duration::from_secs(30),
                events,
            },
        );
        (daemon, history)
    }
}

fn target(secret: &str) -> RotationTarget {
    RotationTarget {
        rotation: "apps".into(),
        secret: secret.into(),
        address: None,
        secret_type: Some("Generic".into()),
        schedule: "@daily".into(),
        timezone: "UTC".into(),
        window: Duration::ZERO,
        jitter: false,
        catch_up: CatchUp::Once,
        rotate_immediately: true,
        plugin: "password".into(),
        settings: serde_json::json!({ "length": 24 }),
        max_attempts: 3,
        retry_backoff: Duration::from_secs(10),
        timeout: Duration::from_secs(60),
        on_failure: OnFailure::default(),
        implicit: false,
        verify: None,
        remind_before: None,
        adoption: None,
    }
}

/// A workflow runner that counts its runs.
#[derive(Default)]
struct Counting(Mutex<Vec<String>>);

impl WorkflowRunner for Counting {
    fn run<'a>(
        &'a self,
        name: &'a str,
        _run: &'a JobRun,
    ) -> BoxFuture<'a, Result<WorkflowOutput, String>> {
        Box::pin(async move {
            self.0.lock().unwrap().push(name.to_owned());
            Ok(WorkflowOutput {
                summary: "checked 3 secrets".into(),
                report: serde_json::json!({ "checked": 3 }),
            })
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_rotates_what_is_due_and_runs_the_workflows() {
    let e = env().await;
    for s in ["app/a", "app/b", "app/c"] {
        e.create(s).await;
    }
    let workflows = Arc::new(Counting::default());
    let (daemon, history) = e.daemon(CrashHook::none(), workflows.clone());
    let targets = Targets {
        rotations: ["app/a", "app/b", "app/c"].map(target).to_vec(),
        workflows: vec![WorkflowTarget {
            name: "report".into(),
            schedule: "@weekly".into(),
            timezone: "UTC".into(),
            script: "report.rhai".into(),
            timeout: Duration::from_secs(60),
            run_immediately: true,
        }],
    };
    let names = daemon.register(&targets).await.unwrap();
    assert_eq!(names.len(), 4);
    let report = daemon
        .once(&names, Duration::ZERO, Duration::from_secs(10), |_| {})
        .await
        .unwrap();
    assert_eq!(
        (report.due, report.rotated, report.failed),
        (3, 3, 0),
        "{report:?}"
    );
    assert!(report.runs.iter().all(|r| r.outcome == RunOutcome::Rotated));
    assert_eq!(report.workflows.len(), 1);
    assert_eq!(report.workflows[0].outcome, RunOutcome::Ran);
    assert_eq!(
        report.workflows[0].summary.as_deref(),
        Some("checked 3 secrets")
    );
    assert!(!report.any_failed());
    assert_eq!(*workflows.0.lock().unwrap(), ["report"]);
    for s in ["app/a", "app/b", "app/c"] {
        assert!(e.current(s).await.starts_with("rota-"), "{s}");
    }
    // The workflow run is its own history row, with its summary and report.
    let runs = history.workflow_runs(Some("report"), 10).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].summary.as_deref(), Some("checked 3 secrets"));
    assert_eq!(runs[0].report, Some(serde_json::json!({ "checked": 3 })));

    // A second pass at the same instant finds nothing due.
    let (again, _) = e.daemon(CrashHook::none(), workflows.clone());
    let names = again.register(&targets).await.unwrap();
    let report = again
        .once(&names, Duration::ZERO, Duration::from_secs(10), |_| {})
        .await
        .unwrap();
    assert_eq!((report.due, report.rotated), (0, 0), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_that_crashed_after_set_is_finished_by_the_next_pass() {
    let e = env().await;
    e.create("app/db").await;
    let targets = Targets {
        rotations: vec![target("app/db")],
        workflows: vec![],
    };
    // First life: the process "dies" right after the target accepted the
    // new value (the handler panics; the scheduler records the run failed).
    let crash = CrashHook::new(|p| {
        if p == CrashPoint::AfterSet {
            panic!("simulated crash after set");
        }
    });
    let (daemon, _) = e.daemon(crash, Arc::new(Counting::default()));
    let names = daemon.register(&targets).await.unwrap();
    let report = daemon
        .once(&names, Duration::ZERO, Duration::from_secs(10), |_| {})
        .await
        .unwrap();
    assert_eq!(report.failed, 1, "{report:?}");
    assert!(report.any_failed());
    let after_crash = e.versions("app/db").await;
    let pending: Vec<&String> = after_crash
        .iter()
        .filter(|(_, stages)| stages.iter().any(|s| s == "ACSPending"))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(pending.len(), 1, "{after_crash:?}");
    assert_eq!(e.current("app/db").await, "v1");
    drop(daemon);

    // Second life, after the retry backoff: the same slot's rotation is
    // resumed with its candidate and promoted.
    e.clock.advance(chrono::Duration::minutes(5));
    let (daemon, _) = e.daemon(CrashHook::none(), Arc::new(Counting::default()));
    let names = daemon.register(&targets).await.unwrap();
    let report = daemon
        .once(&names, Duration::ZERO, Duration::from_secs(10), |_| {})
        .await
        .unwrap();
    assert_eq!((report.rotated, report.failed), (1, 0), "{report:?}");
    let versions = e.versions("app/db").await;
    assert_eq!(&e.current("app/db").await, pending[0], "{versions:?}");
    assert!(
        !versions
            .iter()
            .any(|(_, stages)| stages.iter().any(|s| s == "ACSPending")),
        "{versions:?}"
    );
    // One new version for the slot, no other.
    assert_eq!(versions.len(), 2, "{versions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_removes_the_jobs_no_longer_configured() {
    let e = env().await;
    let (daemon, _) = e.daemon(CrashHook::none(), Arc::new(Counting::default()));
    let both = Targets {
        rotations: vec![target("app/a"), target("app/b")],
        workflows: vec![],
    };
    daemon.register(&both).await.unwrap();
    let one = Targets {
        rotations: vec![target("app/a")],
        workflows: vec![],
    };
    let names = daemon.register(&one).await.unwrap();
    assert_eq!(names, [JobKind::Rotation("app/a".into()).name()]);
    let store = SqliteStore::open(e.dir.path().join("scheduler.db")).unwrap();
    let stored: Vec<String> = store.jobs().unwrap().into_iter().map(|j| j.name).collect();
    assert_eq!(stored, ["rotate:app/a"]);

    // An invalid schedule changes nothing and names the rotation.
    let mut bad = target("app/c");
    bad.schedule = "not a schedule".into();
    let err = daemon
        .register(&Targets {
            rotations: vec![bad],
            workflows: vec![],
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"app/c\""), "{err}");
    let stored: Vec<String> = store.jobs().unwrap().into_iter().map(|j| j.name).collect();
    assert_eq!(stored, ["rotate:app/a"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_and_the_next_success_write_needs_attention_and_recovered() {
    use rota_rotation::events::{Events, EventsConfig};
    use rota_scheduler::outbox::{EventQuery, Outbox};
    let e = env().await;
    e.create("app/db").await;
    let mut t = target("app/db");
    t.max_attempts = 1;
    let targets = Targets {
        rotations: vec![t],
        workflows: vec![],
    };
    let outbox = Arc::new(SqliteStore::open(e.dir.path().join("scheduler.db")).unwrap());
    let events = Arc::new(Events::new(
        outbox.clone(),
        EventsConfig::default(),
        "rota://test",
        Arc::new(e.clock.clone()) as Arc<dyn Clock>,
    ));
    let crash = CrashHook::new(|p| {
        if p == CrashPoint::BeforeTargetChange {
            panic!("simulated failure");
        }
    });
    let (daemon, _) =
        e.daemon_with_events(crash, Arc::new(Counting::default()), Some(events.clone()));
    let names = daemon.register(&targets).await.unwrap();
    let report = daemon
        .once(&names, Duration::ZERO, Duration::from_secs(10), |_| {})
        .await
        .unwrap();
    assert_eq!(report.failed, 1, "{report:?}");
    drop(daemon);
    // The next slot, a day later, succeeds.
    e.clock.advance(chrono::Duration::days(1));
    let (daemon, _) = e.daemon_with_events(
        CrashHook::none(),
        Arc::new(Counting::default()),
        Some(events),
    );
    let names = daemon.register(&targets).await.unwrap();
    let report = daemon
        .once(&names, Duration::ZERO, Duration::from_secs(10), |_| {})
        .await
        .unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    let written = outbox
        .events(&EventQuery {
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    let kinds: Vec<&str> = written.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "rotation.started",
            "rotation.needs_attention",
            "rotation.started",
            "rotation.resumed",
            "rotation.recovered"
        ],
        "{written:#?}"
    );
    let attention: serde_json::Value = serde_json::from_str(&written[1].body).unwrap();
    assert_eq!(attention["subject"], "app/db");
    assert_eq!(attention["data"]["rotation"], "apps");
    assert_eq!(attention["data"]["attempt"], 1);
    assert!(
        attention["data"]["error"]
            .as_str()
            .unwrap()
            .contains("panicked"),
        "{attention}"
    );
    assert!(written.iter().all(|e| !e.body.contains("initial-value")));
}

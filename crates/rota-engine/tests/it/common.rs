//! Shared helpers: a local cloud in a temp dir, a recording transport, and
//! configuration loading from text.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rota_engine::apply::{ApplyReport, NoProgress};
use rota_engine::config::{Config, Diagnostics, LoadOptions};
use rota_engine::plan::{Plan, PlanMode, PlanOptions};
use rota_engine::{EngineError, Ownership};
use rota_kms::transport::{ApiRequest, BoxFuture, Transport};
use rota_kms::{Error, KmsClient};
use rota_local::{LocalCloud, World};

/// One recorded call: the action and its parameters, `SecretData` withheld.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    pub(crate) action: String,
    pub(crate) params: Vec<(String, String)>,
}

impl Call {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A transport that records every call it forwards.
#[derive(Debug, Clone)]
pub(crate) struct Recording {
    inner: Arc<dyn Transport>,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Transport for Recording {
    fn call(&self, request: ApiRequest) -> BoxFuture<'_, Result<serde_json::Value, Error>> {
        let call = Call {
            action: request.action.to_string(),
            params: request
                .params
                .iter()
                .map(|p| {
                    let v = if p.name == "SecretData" {
                        "<withheld>".to_owned()
                    } else {
                        p.value.clone()
                    };
                    (p.name.clone(), v)
                })
                .collect(),
        };
        self.calls.lock().unwrap().push(call);
        self.inner.call(request)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// A configuration directory plus a local cloud.
pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
    /// Kept open for the test's duration (it holds the data directory's lock).
    _cloud: LocalCloud,
    pub(crate) client: KmsClient,
    calls: Arc<Mutex<Vec<Call>>>,
    pub(crate) ownership: Ownership,
}

pub(crate) const READS: &[&str] = &[
    "DescribeSecret",
    "GetSecretValue",
    "GetSecretPolicy",
    "ListTagResources",
    "ListSecrets",
    "ListSecretVersionIds",
];

impl Env {
    pub(crate) async fn new() -> Self {
        Self::with_world(World::default()).await
    }

    pub(crate) async fn with_world(world: World) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        let cloud = LocalCloud::options(dir.path().join("data"))
            .world(world)
            .clock(Arc::new(rota_test_support::system_clock()))
            .open()
            .await
            .expect("the local cloud opens");
        let calls = Arc::new(Mutex::new(Vec::new()));
        let rec = Recording {
            inner: Arc::new(cloud.clone()),
            calls: calls.clone(),
        };
        Self {
            dir,
            _cloud: cloud,
            client: KmsClient::new(Arc::new(rec)),
            calls,
            ownership: Ownership::new("test0config0id00"),
        }
    }

    pub(crate) fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    /// Writes main.tf (replacing it).
    pub(crate) fn write(&self, text: &str) {
        std::fs::write(self.config_dir().join("main.tf"), text).unwrap();
    }

    pub(crate) fn load(&self) -> Result<Config, Diagnostics> {
        Config::load(&LoadOptions {
            path: self.config_dir(),
            ..LoadOptions::default()
        })
    }

    pub(crate) async fn plan_mode(&self, mode: PlanMode) -> Result<Plan, EngineError> {
        let config = self.load().map_err(EngineError::Config)?;
        rota_engine::plan(
            &self.client,
            &config,
            &PlanOptions::new(mode, self.ownership.clone()),
        )
        .await
    }

    pub(crate) async fn plan(&self) -> Result<Plan, EngineError> {
        self.plan_mode(PlanMode::Apply).await
    }

    /// Plans and applies; panics on any failure. Returns the plan applied.
    pub(crate) async fn apply_mode(&self, mode: PlanMode) -> (Plan, ApplyReport) {
        let config = self.load().expect("config loads");
        let plan = rota_engine::plan(
            &self.client,
            &config,
            &PlanOptions::new(mode, self.ownership.clone()),
        )
        .await
        .expect("plan");
        let report =
            rota_engine::apply(&self.client, &config, &plan, &self.ownership, &NoProgress).await;
        if let Some(f) = report.failures().next() {
            panic!("{} failed: {:?}", f.address, f.status);
        }
        (plan, report)
    }

    pub(crate) async fn apply(&self) -> (Plan, ApplyReport) {
        self.apply_mode(PlanMode::Apply).await
    }

    /// Takes the calls recorded so far.
    pub(crate) fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    /// The write calls recorded so far (reads dropped), as action names.
    pub(crate) fn take_writes(&self) -> Vec<Call> {
        self.take_calls()
            .into_iter()
            .filter(|c| !READS.contains(&c.action.as_str()))
            .collect()
    }
}

/// Replaces a temp path in text with `[CONFIG]`.
pub(crate) fn redact_path(text: &str, dir: &Path) -> String {
    text.replace(&dir.display().to_string(), "[CONFIG]")
}

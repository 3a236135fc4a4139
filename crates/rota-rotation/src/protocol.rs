//! The rotation protocol of rotation.md: `create → set → test → finish`,
//! one token per rotation (the pending version's `VersionId`), the candidate
//! written as `ACSPending` before any target is touched, and every step
//! probing before it acts so any step can be re-run after a crash.
//!
//! Decisions where rotation.md leaves room (also in ARCHITECTURE.md):
//!
//! - **Another rotation in flight.** If a version other than the token's
//!   carries `ACSPending` (a rotation that crashed, or a second process),
//!   the engine resumes *that* rotation instead of starting another one. A
//!   secret therefore never has two candidate values, and the slot that
//!   found it is served by finishing it.
//! - **Promotion order.** `finish` first gives `ACSPrevious` to the old
//!   current version, then moves `ACSCurrent` to the token, then drops
//!   `ACSPending`. A crash between any two leaves a state the next run
//!   recognises: before the move it is still a pending rotation (rolled
//!   forward); after it, the token is current and only tidying remains.
//! - **Failure before `set`** (generating or writing the candidate): nothing
//!   outside KMS was touched; a written candidate is dropped (its
//!   `ACSPending` removed) so the next attempt starts clean.
//! - **Failure in `set` or `test`**: the target may hold the candidate, so
//!   it is kept and the next attempt rolls forward. If the plugin offers
//!   `rollback` and it succeeds, the target is back on ACSCurrent and the
//!   candidate is dropped.
//! - **Fresh value.** After `fresh_after` failed attempts with one candidate,
//!   the engine asks the plugin's `test` whether the target accepts the
//!   candidate; only if it does not (the target still holds ACSCurrent) is
//!   the candidate dropped and a new one generated under a new token
//!   (`<token>-r<n>`). ACSCurrent never points at a value the target rejects,
//!   and the target never holds a value that is neither ACSCurrent nor
//!   ACSPending.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rota_kms::kms::{
    GetSecretValue, PutSecretValue, SecretMetadata, UpdateSecretVersionStage, VersionInfo,
};
use rota_kms::{ErrorKind, KmsClient, OpenApi, SecretString};
use rota_scheduler::{Clock, SystemClock};
use serde_json::Value;
use tokio::time::Instant;
use tracing::Instrument as _;

use super::crash::{CrashHook, CrashPoint};
use super::history::{HistorySink, StepEvent, StepOutcome};
use super::plugin::{
    PluginError, PluginRegistry, RotationPlugin, SecretInfo, StepContext, Strategy,
};

/// ACSCurrent.
pub const CURRENT: &str = "ACSCurrent";
/// ACSPrevious.
pub const PREVIOUS: &str = "ACSPrevious";
/// ACSPending.
pub const PENDING: &str = "ACSPending";

/// The protocol's steps, as recorded in history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Reading the secret and its versions.
    Inspect,
    /// Generating and writing the candidate.
    Create,
    /// Making the target accept it.
    Set,
    /// Proving it works.
    Test,
    /// Promoting it.
    Finish,
    /// Putting the target back.
    Rollback,
}

impl Step {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Inspect => "inspect",
            Self::Create => "create",
            Self::Set => "set",
            Self::Test => "test",
            Self::Finish => "finish",
            Self::Rollback => "rollback",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The token of a scheduled rotation: derived from the secret and the slot,
/// so a retry or a second process computes the same one.
pub fn slot_token(secret: &str, slot: DateTime<Utc>) -> String {
    let mut key = secret.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(slot.timestamp_millis().to_string().as_bytes());
    let h = rota_scheduler::job::stable_hash(&key);
    format!("rota-{}-{:08x}", slot.format("%Y%m%dT%H%M%SZ"), h as u32)
}

/// The token of a manual rotation: fresh every time.
pub fn manual_token(now: DateTime<Utc>) -> String {
    let r: u32 = rand::random();
    format!("rota-manual-{}-{r:08x}", now.format("%Y%m%dT%H%M%SZ"))
}

/// Whether a version id was written by Rota's rotation.
pub fn is_rotation_version(version_id: &str) -> bool {
    version_id.starts_with("rota-")
}

/// One rotation to perform.
#[derive(Debug, Clone)]
pub struct RotationRequest {
    /// The secret.
    pub secret: String,
    /// The plugin.
    pub plugin: String,
    /// Its settings (validated or not; they are validated again).
    pub settings: Value,
    /// The token.
    pub token: String,
    /// Attempt number at this token (1 for the first).
    pub attempt: u32,
}

/// How a rotation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotationOutcome {
    /// A new version is ACSCurrent.
    Rotated {
        /// The new current version.
        version_id: String,
        /// Whether an earlier, interrupted rotation was finished instead.
        resumed: bool,
    },
    /// The token was already current: nothing left to do but tidy.
    AlreadyDone {
        /// The current version.
        version_id: String,
    },
}

/// A failed rotation. The message is redacted (it never contains a value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{step} failed: {message}")]
pub struct RotationError {
    /// Where it failed.
    pub step: Step,
    /// What happened.
    pub message: String,
    /// Whether a later attempt may succeed.
    pub retryable: bool,
}

impl RotationError {
    fn new(step: Step, message: impl Into<String>, retryable: bool) -> Self {
        Self {
            step,
            message: message.into(),
            retryable,
        }
    }

    fn kms(step: Step, action: &str, e: &rota_kms::Error) -> Self {
        Self::new(
            step,
            format!("{action}: {e}"),
            e.kind().is_retryable() || e.kind() == ErrorKind::Other,
        )
    }

    fn plugin(step: Step, e: &PluginError) -> Self {
        Self::new(step, e.to_string(), e.is_retryable())
    }
}

/// Runs rotations.
#[derive(Debug, Clone)]
pub struct Rotator {
    kms: KmsClient,
    api: OpenApi,
    registry: Arc<PluginRegistry>,
    history: Arc<dyn HistorySink>,
    crash: CrashHook,
    step_timeout: Duration,
    fresh_after: u32,
    clock: Arc<dyn Clock>,
}

/// What a dry run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRunReport {
    /// The secret.
    pub secret: String,
    /// The plugin.
    pub plugin: String,
    /// The current version.
    pub current_version: String,
    /// What would happen, one sentence per line.
    pub plan: Vec<String>,
    /// Whether the read-only probe passed (None: the plugin has no probe).
    pub probe: Result<(), String>,
}

struct Versions {
    current: VersionInfo,
    previous: Option<VersionInfo>,
    pending: Option<VersionInfo>,
    all: Vec<VersionInfo>,
}

impl Rotator {
    /// A rotator over `kms` and `api` (the same backend), resolving plugins
    /// in `registry` and recording steps in `history`.
    pub fn new(
        kms: KmsClient,
        api: OpenApi,
        registry: Arc<PluginRegistry>,
        history: Arc<dyn HistorySink>,
    ) -> Self {
        Self {
            kms,
            api,
            registry,
            history,
            crash: CrashHook::none(),
            clock: Arc::new(SystemClock::new()),
            step_timeout: Duration::from_secs(300),
            fresh_after: 3,
        }
    }

    /// Installs a crash hook (tests).
    pub fn with_crash_hook(mut self, hook: CrashHook) -> Self {
        self.crash = hook;
        self
    }

    /// The clock that dates history records (default: the system clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The time each step may take (default 5 minutes).
    pub fn with_step_timeout(mut self, timeout: Duration) -> Self {
        self.step_timeout = timeout;
        self
    }

    /// Failed attempts with one candidate before a fresh one is considered (default 3).
    pub fn with_fresh_after(mut self, attempts: u32) -> Self {
        self.fresh_after = attempts.max(1);
        self
    }

    /// The plugin registry.
    pub fn registry(&self) -> &PluginRegistry {
        &self.registry
    }

    /// Rotates one secret through the protocol.
    pub async fn rotate(&self, req: &RotationRequest) -> Result<RotationOutcome, RotationError> {
        let span = tracing::info_span!("rotation", secret.name = %req.secret, rotation.token = %req.token, rotation.plugin = %req.plugin);
        self.rotate_inner(req).instrument(span).await
    }

    async fn rotate_inner(&self, req: &RotationRequest) -> Result<RotationOutcome, RotationError> {
        let started = Instant::now();
        let meta = self.describe(&req.secret).await?;
        let (plugin, settings) = self
            .registry
            .resolve(&req.plugin, &meta.secret_type, &req.settings)
            .map_err(|e| RotationError::new(Step::Inspect, e.to_string(), false))?;
        let settings = Arc::new(settings);
        let info = secret_info(&meta);
        let versions = self.versions(&req.secret).await?;
        self.record(req, &req.token, Step::Inspect, started, Ok(()));

        match plugin.strategy() {
            Strategy::Managed => {
                self.rotate_managed(req, plugin, settings, info, versions)
                    .await
            }
            Strategy::Protocol => {
                self.rotate_protocol(req, plugin, settings, info, versions)
                    .await
            }
        }
    }

    async fn describe(&self, name: &str) -> Result<SecretMetadata, RotationError> {
        let meta = self
            .kms
            .describe_secret(name)
            .await
            .map_err(|e| RotationError::kms(Step::Inspect, "DescribeSecret", &e))?;
        if meta.planned_delete_time.is_some() {
            return Err(RotationError::new(
                Step::Inspect,
                "the secret is scheduled for deletion",
                false,
            ));
        }
        Ok(meta)
    }

    async fn versions(&self, name: &str) -> Result<Versions, RotationError> {
        let all = self
            .kms
            .list_all_versions(name)
            .await
            .map_err(|e| RotationError::kms(Step::Inspect, "ListSecretVersionIds", &e))?;
        let find = |stage: &str| {
            all.iter()
                .find(|v| v.version_stages.contains(stage))
                .cloned()
        };
        let current = find(CURRENT).ok_or_else(|| {
            RotationError::new(Step::Inspect, "the secret has no ACSCurrent version", false)
        })?;
        let previous = find(PREVIOUS);
        let pending = all
            .iter()
            .find(|v| v.version_stages.contains(PENDING) && !v.version_stages.contains(CURRENT))
            .cloned();
        Ok(Versions {
            current,
            previous,
            pending,
            all,
        })
    }

    async fn value(
        &self,
        name: &str,
        version: Option<&str>,
        stage: Option<&str>,
    ) -> Result<Option<SecretValueParts>, RotationError> {
        let req = GetSecretValue {
            secret_name: name.to_owned(),
            version_id: version.map(str::to_owned),
            version_stage: stage.map(str::to_owned),
            fetch_extended_config: None,
            dry_run: None,
        };
        match self.kms.send(&req).await {
            Ok(v) => Ok(Some(SecretValueParts {
                data: v.secret_data,
                data_type: v.secret_data_type,
            })),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RotationError::kms(Step::Inspect, "GetSecretValue", &e)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn context(
        &self,
        info: &SecretInfo,
        token: &str,
        settings: &Arc<Value>,
        current: Option<SecretString>,
        previous: Option<SecretString>,
        pending: Option<SecretString>,
        step: Step,
    ) -> StepContext {
        StepContext {
            secret: info.clone(),
            token: token.to_owned(),
            pending,
            current,
            previous,
            settings: settings.clone(),
            api: self.api.clone(),
            kms: self.kms.clone(),
            deadline: Instant::now() + self.step_timeout,
            crash: self.crash.clone(),
            span: tracing::debug_span!("rotation.step", rotation.step = step.name()),
        }
    }

    /// A step's context in a protocol rotation: the shared values plus the
    /// token, the candidate and the step.
    fn step_ctx(
        &self,
        v: &StepValues<'_>,
        token: &str,
        pending: Option<SecretString>,
        step: Step,
    ) -> StepContext {
        self.context(
            v.info,
            token,
            v.settings,
            v.current.clone(),
            v.previous.clone(),
            pending,
            step,
        )
    }

    async fn run_step<T>(
        &self,
        req: &RotationRequest,
        token: &str,
        step: Step,
        fut: impl Future<Output = Result<T, PluginError>>,
    ) -> Result<T, RotationError> {
        let started = Instant::now();
        let result = match tokio::time::timeout(self.step_timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(PluginError::DeadlineExceeded),
        };
        let recorded = result.as_ref().map(|_| ()).map_err(ToString::to_string);
        self.record(req, token, step, started, recorded);
        result.map_err(|e| RotationError::plugin(step, &e))
    }

    fn record(
        &self,
        req: &RotationRequest,
        token: &str,
        step: Step,
        started: Instant,
        result: Result<(), String>,
    ) {
        let (outcome, error) = match result {
            Ok(()) => (StepOutcome::Ok, None),
            Err(e) => (StepOutcome::Failed, Some(e)),
        };
        tracing::debug!(
            rotation.step = step.name(),
            ok = error.is_none(),
            "step done"
        );
        self.history.record(StepEvent {
            secret: req.secret.clone(),
            token: token.to_owned(),
            plugin: req.plugin.clone(),
            step: step.name(),
            attempt: req.attempt,
            at: self.clock.now(),
            duration: started.elapsed(),
            outcome,
            error,
        });
    }

    async fn stage(
        &self,
        name: &str,
        stage: &str,
        move_to: Option<&str>,
        remove_from: Option<&str>,
    ) -> Result<(), RotationError> {
        self.kms
            .send(&UpdateSecretVersionStage {
                secret_name: name.to_owned(),
                version_stage: stage.to_owned(),
                move_to_version: move_to.map(str::to_owned),
                remove_from_version: remove_from.map(str::to_owned),
            })
            .await
            .map(|_| ())
            .map_err(|e| RotationError::kms(Step::Finish, "UpdateSecretVersionStage", &e))
    }

    #[allow(clippy::too_many_arguments)]
    async fn rotate_protocol(
        &self,
        req: &RotationRequest,
        plugin: Arc<dyn RotationPlugin>,
        settings: Arc<Value>,
        info: SecretInfo,
        versions: Versions,
    ) -> Result<RotationOutcome, RotationError> {
        let name = req.secret.as_str();
        let current_parts = self
            .value(name, Some(&versions.current.version_id), None)
            .await?
            .ok_or_else(|| {
                RotationError::new(Step::Inspect, "the ACSCurrent value cannot be read", true)
            })?;
        let previous = match &versions.previous {
            Some(p) => self
                .value(name, Some(&p.version_id), None)
                .await?
                .map(|v| v.data),
            None => None,
        };
        let current = Some(current_parts.data.clone());
        let values = StepValues {
            info: &info,
            settings: &settings,
            current: current.clone(),
            previous: previous.clone(),
        };

        // Already promoted: tidy what a crash in finish may have left.
        if versions.current.version_id == req.token {
            if versions.current.version_stages.contains(PENDING) {
                self.stage(name, PENDING, None, Some(&req.token)).await?;
            }
            let ctx = self.context(
                &info,
                &req.token,
                &settings,
                current.clone(),
                previous.clone(),
                current.clone(),
                Step::Finish,
            );
            self.run_step(req, &req.token, Step::Finish, plugin.finish(&ctx))
                .await?;
            return Ok(RotationOutcome::AlreadyDone {
                version_id: req.token.clone(),
            });
        }

        // A rotation interrupted inside finish (ACSCurrent moved, ACSPending
        // not yet dropped) under another token: tidy it and report it as the
        // rotation resumed, rather than rotating a second time.
        if versions.current.version_stages.contains(PENDING) {
            let token = versions.current.version_id.clone();
            tracing::info!(rotation.resumed = %token, "finishing the promotion already in flight");
            let started = Instant::now();
            self.stage(name, PENDING, None, Some(&token)).await?;
            let ctx = self.step_ctx(&values, &token, current.clone(), Step::Finish);
            let finished = tokio::time::timeout(self.step_timeout, plugin.finish(&ctx))
                .await
                .unwrap_or(Err(PluginError::DeadlineExceeded));
            self.record(
                req,
                &token,
                Step::Finish,
                started,
                finished.as_ref().map(|_| ()).map_err(ToString::to_string),
            );
            finished.map_err(|e| RotationError::plugin(Step::Finish, &e))?;
            return Ok(RotationOutcome::Rotated {
                version_id: token,
                resumed: true,
            });
        }

        // One rotation at a time: resume a candidate already in flight.
        let (mut token, resumed) = match &versions.pending {
            Some(p) if p.version_id != req.token => {
                tracing::info!(rotation.resumed = %p.version_id, "finishing the rotation already in flight");
                (p.version_id.clone(), true)
            }
            _ => (req.token.clone(), false),
        };

        // create: reuse the written candidate, or write one.
        let started = Instant::now();
        let mut pending = match versions.all.iter().find(|v| v.version_id == token) {
            Some(v) if v.version_stages.contains(PENDING) => {
                self.value(name, Some(&token), None).await?.map(|p| p.data)
            }
            Some(_) => {
                // The token's version exists but was abandoned: use a new token.
                token = next_token(&token, &versions.all);
                None
            }
            None => None,
        };

        // After repeated failures with one candidate, replace it if the
        // target does not hold it.
        if pending.is_some()
            && req.attempt > self.fresh_after
            && (req.attempt - 1).is_multiple_of(self.fresh_after)
        {
            let ctx = self.step_ctx(&values, &token, pending.clone(), Step::Test);
            if plugin.test(&ctx).await.is_err() {
                tracing::info!("replacing a candidate the target never accepted");
                self.stage(name, PENDING, None, Some(&token)).await?;
                token = next_token(&token, &versions.all);
                pending = None;
            }
        }

        let pending = match pending {
            Some(p) => p,
            None => {
                let ctx = self.step_ctx(&values, &token, None, Step::Create);
                let generated = match tokio::time::timeout(self.step_timeout, plugin.generate(&ctx))
                    .await
                {
                    Ok(Ok(Some(v))) => v,
                    Ok(Ok(None)) => rota_kms::password::PasswordPolicy::default()
                        .generate()
                        .map_err(|e| RotationError::new(Step::Create, e.to_string(), false))?,
                    Ok(Err(e)) => {
                        let err = RotationError::plugin(Step::Create, &e);
                        self.record(req, &token, Step::Create, started, Err(err.message.clone()));
                        return Err(err);
                    }
                    Err(_) => {
                        let err =
                            RotationError::plugin(Step::Create, &PluginError::DeadlineExceeded);
                        self.record(req, &token, Step::Create, started, Err(err.message.clone()));
                        return Err(err);
                    }
                };
                let put = PutSecretValue {
                    secret_name: name.to_owned(),
                    version_id: token.clone(),
                    secret_data: generated.clone(),
                    secret_data_type: Some(current_parts.data_type.clone())
                        .filter(|t| !t.is_empty()),
                    version_stages: Some(vec![PENDING.to_owned()]),
                };
                if let Err(e) = self.kms.send(&put).await {
                    let err = RotationError::kms(Step::Create, "PutSecretValue", &e);
                    self.record(req, &token, Step::Create, started, Err(err.message.clone()));
                    return Err(err);
                }
                generated
            }
        };
        self.record(req, &token, Step::Create, started, Ok(()));
        self.crash.reach(CrashPoint::AfterCreate);

        // set: the plugin probes, then changes the target.
        let ctx = self.step_ctx(&values, &token, Some(pending.clone()), Step::Set);
        self.crash.reach(CrashPoint::BeforeTargetChange);
        let set_result = self
            .run_step(req, &token, Step::Set, plugin.set(&ctx))
            .await;
        if let Err(e) = set_result {
            if plugin.descriptor().steps.rollback {
                let rb = self.step_ctx(&values, &token, Some(pending.clone()), Step::Rollback);
                if self
                    .run_step(req, &token, Step::Rollback, plugin.rollback(&rb))
                    .await
                    .is_ok()
                {
                    // The target is back on ACSCurrent: the candidate can go.
                    self.stage(name, PENDING, None, Some(&token)).await?;
                }
            }
            return Err(e);
        }
        self.crash.reach(CrashPoint::AfterTargetChange);
        self.crash.reach(CrashPoint::AfterSet);

        // test
        let ctx = self.step_ctx(&values, &token, Some(pending.clone()), Step::Test);
        self.run_step(req, &token, Step::Test, plugin.test(&ctx))
            .await?;
        self.crash.reach(CrashPoint::AfterTest);

        // finish: ACSPrevious to the old current, ACSCurrent to the token, drop ACSPending.
        let started = Instant::now();
        let old = versions.current.version_id.as_str();
        let finish = async {
            if versions.previous.as_ref().map(|p| p.version_id.as_str()) != Some(old) {
                let prev_holder = versions.previous.as_ref().map(|p| p.version_id.as_str());
                self.stage(name, PREVIOUS, Some(old), prev_holder).await?;
            }
            self.stage(name, CURRENT, Some(&token), Some(old)).await?;
            self.crash.reach(CrashPoint::InFinish);
            self.stage(name, PENDING, None, Some(&token)).await
        };
        if let Err(e) = finish.await {
            self.record(req, &token, Step::Finish, started, Err(e.message.clone()));
            return Err(e);
        }
        let ctx = self.context(
            &info,
            &token,
            &settings,
            Some(pending.clone()),
            current.clone(),
            Some(pending),
            Step::Finish,
        );
        match tokio::time::timeout(self.step_timeout, plugin.finish(&ctx)).await {
            Ok(Ok(())) => self.record(req, &token, Step::Finish, started, Ok(())),
            Ok(Err(e)) => {
                // Promotion is done; the plugin's extra work is retried by the next run.
                self.record(req, &token, Step::Finish, started, Err(e.to_string()));
                return Err(RotationError::plugin(Step::Finish, &e));
            }
            Err(_) => {
                self.record(
                    req,
                    &token,
                    Step::Finish,
                    started,
                    Err(PluginError::DeadlineExceeded.to_string()),
                );
                return Err(RotationError::plugin(
                    Step::Finish,
                    &PluginError::DeadlineExceeded,
                ));
            }
        }
        tracing::info!(rotation.version = %token, "rotated");
        Ok(RotationOutcome::Rotated {
            version_id: token,
            resumed,
        })
    }

    async fn rotate_managed(
        &self,
        req: &RotationRequest,
        plugin: Arc<dyn RotationPlugin>,
        settings: Arc<Value>,
        info: SecretInfo,
        versions: Versions,
    ) -> Result<RotationOutcome, RotationError> {
        let token = req.token.clone();
        if versions.current.version_id == token {
            return Ok(RotationOutcome::AlreadyDone { version_id: token });
        }
        let ctx = self.context(&info, &token, &settings, None, None, None, Step::Set);
        self.crash.reach(CrashPoint::BeforeTargetChange);
        self.run_step(req, &token, Step::Set, plugin.set(&ctx))
            .await?;
        self.crash.reach(CrashPoint::AfterTargetChange);
        self.crash.reach(CrashPoint::AfterSet);
        let ctx = self.context(&info, &token, &settings, None, None, None, Step::Test);
        self.run_step(req, &token, Step::Test, plugin.test(&ctx))
            .await?;
        if let Some(verify) = settings.get("verify").and_then(Value::as_str) {
            let verify_settings = settings
                .get("verify_settings")
                .cloned()
                .unwrap_or(Value::Null);
            let (verifier, vs) = self
                .registry
                .resolve(verify, &info.secret_type, &verify_settings)
                .map_err(|e| RotationError::new(Step::Test, e.to_string(), false))?;
            let current = self
                .value(&req.secret, None, Some(CURRENT))
                .await?
                .map(|v| v.data);
            let previous = self
                .value(&req.secret, None, Some(PREVIOUS))
                .await?
                .map(|v| v.data);
            let ctx = self.context(
                &info,
                &token,
                &Arc::new(vs),
                current.clone(),
                previous,
                current,
                Step::Test,
            );
            self.run_step(req, &token, Step::Test, verifier.test(&ctx))
                .await?;
        }
        self.crash.reach(CrashPoint::AfterTest);
        let ctx = self.context(&info, &token, &settings, None, None, None, Step::Finish);
        self.run_step(req, &token, Step::Finish, plugin.finish(&ctx))
            .await?;
        tracing::info!(rotation.version = %token, "rotated by the cloud");
        Ok(RotationOutcome::Rotated {
            version_id: token,
            resumed: false,
        })
    }

    /// Resolves the plugin, validates its settings and runs the read-only
    /// probes, changing nothing: what `rota rotate --dry-run` shows.
    pub async fn dry_run(&self, req: &RotationRequest) -> Result<DryRunReport, RotationError> {
        let meta = self.describe(&req.secret).await?;
        let (plugin, settings) = self
            .registry
            .resolve(&req.plugin, &meta.secret_type, &req.settings)
            .map_err(|e| RotationError::new(Step::Inspect, e.to_string(), false))?;
        let versions = self.versions(&req.secret).await?;
        let mut plan = Vec::new();
        let probe = match plugin.strategy() {
            Strategy::Managed => {
                plan.push(format!("call RotateSecret with VersionId {}", req.token));
                plan.push("wait until ACSCurrent carries that version".to_owned());
                if let Some(v) = settings.get("verify").and_then(Value::as_str) {
                    plan.push(format!("verify the new credential with plugin {v:?}"));
                }
                Ok(())
            }
            Strategy::Protocol => {
                if let Some(p) = &versions.pending {
                    plan.push(format!(
                        "finish the rotation already in flight (pending version {})",
                        p.version_id
                    ));
                } else {
                    let how = if plugin.descriptor().steps.generate {
                        "the plugin's generate step"
                    } else {
                        "the default password policy"
                    };
                    plan.push(format!("generate a new value with {how}"));
                    plan.push(format!(
                        "write it as version {} with stage ACSPending",
                        req.token
                    ));
                }
                plan.push(format!(
                    "set: make the target accept it ({})",
                    plugin.descriptor().name
                ));
                plan.push("test: prove the new value works".to_owned());
                plan.push(format!("finish: move ACSCurrent from {} to the new version, ACSPrevious to the old one", versions.current.version_id));
                // The read-only probe: does the target accept the current value?
                let current = self
                    .value(&req.secret, Some(&versions.current.version_id), None)
                    .await?
                    .map(|v| v.data);
                let info = secret_info(&meta);
                let settings = Arc::new(settings);
                let ctx = self.context(
                    &info,
                    &versions.current.version_id,
                    &settings,
                    current.clone(),
                    None,
                    current,
                    Step::Test,
                );
                match tokio::time::timeout(self.step_timeout, plugin.test(&ctx)).await {
                    Ok(r) => r.map_err(|e| e.to_string()),
                    Err(_) => Err(PluginError::DeadlineExceeded.to_string()),
                }
            }
        };
        Ok(DryRunReport {
            secret: req.secret.clone(),
            plugin: plugin.descriptor().name.clone(),
            current_version: versions.current.version_id.clone(),
            plan,
            probe,
        })
    }
}

/// What every step of one protocol rotation shares.
struct StepValues<'a> {
    info: &'a SecretInfo,
    settings: &'a Arc<Value>,
    current: Option<SecretString>,
    previous: Option<SecretString>,
}

struct SecretValueParts {
    data: SecretString,
    data_type: String,
}

fn secret_info(meta: &SecretMetadata) -> SecretInfo {
    SecretInfo {
        name: meta.secret_name.clone(),
        secret_type: meta.secret_type.clone(),
        extended_config: meta
            .extended_config
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok()),
        tags: meta
            .tags
            .as_ref()
            .map(|t| {
                t.tag
                    .iter()
                    .map(|t| (t.tag_key.clone(), t.tag_value.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        description: meta.description.clone(),
    }
}

/// `<token>-r<n>` with the smallest n not taken.
fn next_token(token: &str, all: &[VersionInfo]) -> String {
    let base = match token.rfind("-r") {
        Some(i) if token[i + 2..].bytes().all(|b| b.is_ascii_digit()) && i + 2 < token.len() => {
            &token[..i]
        }
        _ => token,
    };
    (2..)
        .map(|n| format!("{base}-r{n}"))
        .find(|t| !all.iter().any(|v| &v.version_id == t))
        .expect("an unused suffix exists")
}

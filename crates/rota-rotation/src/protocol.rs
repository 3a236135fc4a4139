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
use rota_kms::kms::stage::{CURRENT, PENDING, PREVIOUS};
use rota_kms::kms::{
    GetSecretValue, PutSecretValue, SecretMetadata, UpdateSecretVersionStage, VersionInfo,
};
use rota_kms::{ErrorKind, KmsClient, OpenApi, SecretString};
use rota_scheduler::{Clock, SystemClock};
use serde_json::Value;
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::crash::{CrashHook, CrashPoint};
pub use crate::error::{FailureKind, RotationError};
use crate::history::{HistorySink, StepEvent, StepOutcome};
use crate::plugin::{
    PluginError, PluginRegistry, RotationPlugin, SecretInfo, StepContext, Strategy,
};

/// The protocol's steps, as recorded in history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
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
    /// Watching the consumers after the promotion (a verified rotation).
    Verify,
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
            Self::Verify => "verify",
        }
    }
}

impl std::str::FromStr for Step {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::Inspect,
            Self::Create,
            Self::Set,
            Self::Test,
            Self::Finish,
            Self::Rollback,
            Self::Verify,
        ]
        .into_iter()
        .find(|step| step.name() == s)
        .ok_or_else(|| format!("unknown rotation step {s:?}"))
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
    /// How long the whole attempt may take (the rotation block's
    /// `timeout`); `None`: only the per-step limit. Every step's deadline is
    /// the earlier of the step limit and the attempt's end, and hooks see it
    /// (`StepContext::deadline`).
    pub timeout: Option<Duration>,
    /// What must still hold before the rotation promotes its new version
    /// (the scheduler's lease, the shared store's secret lock): checked
    /// right before the finish step changes stages, and before a managed
    /// rotation asks the cloud to rotate.
    pub fence: Fence,
    /// Watch the consumers after the promotion and roll back when they
    /// break (the rotation block's `verify`; `rota rotate` only with
    /// `--verify`).
    pub verify: Option<crate::verify::VerifySpec>,
    /// Wait for the consumers to report ACSCurrent before changing the
    /// credential ACSPrevious holds (the rotation block's `adoption`).
    pub adoption: Option<crate::adoption::AdoptionSpec>,
}

/// A condition a rotation checks before it makes its new version current.
pub trait FenceCheck: Send + Sync {
    /// `Err` with why the rotation may not finish here.
    fn check(&self) -> rota_kms::BoxFuture<'_, Result<(), String>>;
}

/// The fence checks of one rotation ([`RotationRequest::fence`]).
#[derive(Clone, Default)]
pub struct Fence(Vec<Arc<dyn FenceCheck>>);

impl std::fmt::Debug for Fence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fence({} checks)", self.0.len())
    }
}

impl Fence {
    /// Adds a check.
    pub fn push(&mut self, check: Arc<dyn FenceCheck>) {
        self.0.push(check);
    }

    /// Runs every check; the first failure says why.
    pub async fn check(&self) -> Result<(), String> {
        for c in &self.0 {
            c.check().await?;
        }
        Ok(())
    }
}

impl FenceCheck for rota_scheduler::job::RunLease {
    fn check(&self) -> rota_kms::BoxFuture<'_, Result<(), String>> {
        let held = self.held();
        Box::pin(async move {
            if held {
                Ok(())
            } else {
                Err("this daemon's lease on the slot ran out (the store could not renew it, or another daemon took it over)".to_owned())
            }
        })
    }
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

/// How long after a step's deadline the protocol still waits for the
/// plugin's own answer.
const DEADLINE_GRACE: Duration = Duration::from_secs(1);

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
    checker: crate::verify::Checker,
    adoption: Option<Arc<dyn crate::adoption::AdoptionView>>,
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
            checker: crate::verify::Checker::new(),
            adoption: None,
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

    /// Where the adoption gate reads the consumers' reports (without it,
    /// `adoption` blocks are not enforced).
    pub fn with_adoption(mut self, view: Arc<dyn crate::adoption::AdoptionView>) -> Self {
        self.adoption = Some(view);
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

    /// The clock history records are dated by.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Rotates one secret through the protocol.
    pub async fn rotate(&self, req: &RotationRequest) -> Result<RotationOutcome, RotationError> {
        let span = tracing::info_span!("rotation", secret.name = %req.secret, rotation.token = %req.token, rotation.plugin = %req.plugin);
        self.rotate_inner(req).instrument(span).await
    }

    async fn rotate_inner(&self, req: &RotationRequest) -> Result<RotationOutcome, RotationError> {
        let started = Instant::now();
        let (mut run, versions) = self.inspect(req).await?;
        run.inspected = Some(started);
        // A verification a crash cut short is finished first: a rollback in
        // progress (the version is marked failed and still soaking), or a
        // soak (ACSCurrent still soaking).
        let marked = |v: &VersionInfo, stage: &str| v.version_stages.contains(stage);
        if let Some(v) = versions
            .all
            .iter()
            .find(|v| marked(v, crate::verify::FAILED) && marked(v, crate::verify::SOAKING))
        {
            run.record_inspect(&v.version_id);
            return Err(run.resume_rollback(&versions, &v.version_id).await);
        }
        if marked(&versions.current, crate::verify::SOAKING) {
            let version = versions.current.version_id.clone();
            run.record_inspect(&version);
            match &req.verify {
                Some(spec) => {
                    let old = versions.previous.as_ref().map(|p| p.version_id.clone());
                    run.soak(spec, &version, old.as_deref()).await?;
                    return Ok(RotationOutcome::Rotated {
                        version_id: version,
                        resumed: true,
                    });
                }
                // Rotating without verification: the interrupted soak is
                // given up.
                None => {
                    self.stage(&req.secret, crate::verify::SOAKING, Moves::from(&version))
                        .await?;
                }
            }
        }
        let old = versions.current.version_id.clone();
        let outcome = match run.plugin.strategy() {
            Strategy::Managed => run.managed(versions).await?,
            Strategy::Protocol => run.protocol(versions).await?,
        };
        if let (Some(spec), RotationOutcome::Rotated { version_id, .. }) = (&req.verify, &outcome) {
            self.stage(
                &req.secret,
                crate::verify::SOAKING,
                Moves::to(version_id, None),
            )
            .await?;
            run.soak(spec, version_id, Some(&old)).await?;
        }
        Ok(outcome)
    }

    /// The inspect step: the secret, its plugin (settings validated) and
    /// its versions.
    async fn inspect<'a>(
        &'a self,
        req: &'a RotationRequest,
    ) -> Result<(Run<'a>, Versions), RotationError> {
        let soak = req.verify.as_ref().map_or(Duration::ZERO, |v| v.soak);
        let ends = req.timeout.map(|t| Instant::now() + t + soak);
        let meta = self.describe(&req.secret).await?;
        let (plugin, settings) = self
            .registry
            .resolve(&req.plugin, &meta.secret_type, &req.settings)
            .map_err(|e| {
                RotationError::new(
                    Step::Inspect,
                    FailureKind::Configuration,
                    e.to_string(),
                    false,
                )
            })?;
        let versions = self.versions(&req.secret).await?;
        let run = Run {
            rotator: self,
            req,
            plugin,
            settings: Arc::new(settings),
            info: secret_info(&meta),
            current: None,
            previous: None,
            ends,
            inspected: None,
        };
        Ok((run, versions))
    }

    async fn describe(&self, name: &str) -> Result<SecretMetadata, RotationError> {
        let meta = self
            .kms
            .describe_secret(name)
            .await
            .map_err(|e| RotationError::kms(Step::Inspect, "DescribeSecret", e))?;
        if meta.planned_delete_time.is_some() {
            return Err(RotationError::new(
                Step::Inspect,
                FailureKind::State,
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
            .map_err(|e| RotationError::kms(Step::Inspect, "ListSecretVersionIds", e))?;
        let find = |stage: &str| {
            all.iter()
                .find(|v| v.version_stages.contains(stage))
                .cloned()
        };
        let current = find(CURRENT).ok_or_else(|| {
            RotationError::new(
                Step::Inspect,
                FailureKind::State,
                "the secret has no ACSCurrent version",
                false,
            )
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

    /// A version's value (by id or stage); `None` when it does not exist.
    async fn value(
        &self,
        name: &str,
        at: At<'_>,
    ) -> Result<Option<SecretValueParts>, RotationError> {
        let (version_id, version_stage) = match at {
            At::Version(v) => (Some(v.to_owned()), None),
            At::Stage(s) => (None, Some(s.to_owned())),
        };
        let req = GetSecretValue {
            secret_name: name.to_owned(),
            version_id,
            version_stage,
            fetch_extended_config: None,
            dry_run: None,
        };
        match self.kms.send(&req).await {
            Ok(v) => Ok(Some(SecretValueParts {
                data: v.secret_data,
                data_type: v.secret_data_type,
            })),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RotationError::kms(Step::Inspect, "GetSecretValue", e)),
        }
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
            step,
            attempt: req.attempt,
            at: self.clock.now(),
            duration: started.elapsed(),
            outcome,
            error,
        });
    }

    /// Moves `stage` to `move_to` and/or removes it from `remove_from`.
    async fn stage(&self, name: &str, stage: &str, moves: Moves<'_>) -> Result<(), RotationError> {
        self.kms
            .send(&UpdateSecretVersionStage {
                secret_name: name.to_owned(),
                version_stage: stage.to_owned(),
                move_to_version: moves.to.map(str::to_owned),
                remove_from_version: moves.from.map(str::to_owned),
            })
            .await
            .map(|_| ())
            .map_err(|e| RotationError::kms(Step::Finish, "UpdateSecretVersionStage", e))
    }

    /// Removes `ACSPending` from `token`'s version.
    async fn drop_pending(&self, name: &str, token: &str) -> Result<(), RotationError> {
        self.stage(name, PENDING, Moves::from(token)).await
    }

    /// Resolves the plugin, validates its settings and runs the read-only
    /// probes, changing nothing: what `rota rotate --dry-run` shows.
    pub async fn dry_run(&self, req: &RotationRequest) -> Result<DryRunReport, RotationError> {
        let (run, versions) = self.inspect(req).await?;
        let (plan, probe) = match run.plugin.strategy() {
            Strategy::Managed => (
                run.managed_plan(),
                crate::managed::probe_target(&self.api, &run.info).await,
            ),
            Strategy::Protocol => {
                let plan = run.protocol_plan(&versions);
                // The read-only probe: does the target accept the current value?
                let current = self
                    .value(&req.secret, At::Version(&versions.current.version_id))
                    .await?
                    .map(|v| v.data);
                let ctx = run.context(
                    &versions.current.version_id,
                    Values {
                        current: current.clone(),
                        previous: None,
                        pending: current,
                    },
                    Step::Test,
                );
                let probe =
                    match tokio::time::timeout(self.step_timeout, run.plugin.test(&ctx)).await {
                        Ok(r) => r.map_err(|e| e.to_string()),
                        Err(_) => Err(PluginError::DeadlineExceeded.to_string()),
                    };
                (plan, probe)
            }
        };
        let mut plan = plan;
        if let Some(v) = &req.verify {
            plan.push(format!(
                "then watch the consumers for {} (every {}; `rota run`, or `rota rotate --verify`) and {} if a check fails: {}",
                humantime_short(v.soak),
                humantime_short(v.interval),
                match v.on_failure {
                    crate::verify::OnVerifyFailure::Rollback => "roll back",
                    crate::verify::OnVerifyFailure::Alert => "alert",
                },
                {
                    let mut names = v.check_names();
                    if v.plugin_hook && !run.plugin.descriptor().steps.verify {
                        names.retain(|n| n != "the plugin's verify hook");
                    }
                    names.join("; ")
                }
            ));
        }
        Ok(DryRunReport {
            secret: req.secret.clone(),
            plugin: run.plugin.descriptor().name.clone(),
            current_version: versions.current.version_id.clone(),
            plan,
            probe,
        })
    }
}

/// How the version id of a rotation is formed: a dry run shows the form,
/// not an id, since `rota rotate` draws a fresh one every time.
fn token_form(req: &RotationRequest) -> &'static str {
    if req.token.starts_with("rota-manual-") {
        "rota-manual-<time>-<random>, fresh for each `rota rotate`; rota-<slot>-<hash> when the daemon runs it"
    } else {
        "rota-<slot>-<hash> of the slot"
    }
}

/// `90s` → `1m30s`, `600s` → `10m`.
fn humantime_short(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// Which version of a secret to read.
#[derive(Clone, Copy)]
enum At<'a> {
    Version(&'a str),
    Stage(&'a str),
}

/// Where a stage moves: to a version, away from one, or both.
#[derive(Clone, Copy, Default)]
struct Moves<'a> {
    to: Option<&'a str>,
    from: Option<&'a str>,
}

impl<'a> Moves<'a> {
    fn from(version: &'a str) -> Self {
        Self {
            to: None,
            from: Some(version),
        }
    }

    fn to(version: &'a str, from: Option<&'a str>) -> Self {
        Self {
            to: Some(version),
            from,
        }
    }
}

/// The values a step sees.
struct Values {
    current: Option<SecretString>,
    previous: Option<SecretString>,
    pending: Option<SecretString>,
}

/// One rotation in progress: the request, its plugin and settings, and the
/// values every step shares.
struct Run<'a> {
    rotator: &'a Rotator,
    req: &'a RotationRequest,
    plugin: Arc<dyn RotationPlugin>,
    settings: Arc<Value>,
    info: SecretInfo,
    current: Option<SecretString>,
    previous: Option<SecretString>,
    /// When the attempt must be over (`RotationRequest::timeout`).
    ends: Option<Instant>,
    /// When the inspect step began: it is recorded once the rotation's
    /// token is known (a resumed rotation's, not the request's), so that a
    /// resume shows as one run in the history.
    inspected: Option<Instant>,
}

impl Run<'_> {
    fn name(&self) -> &str {
        &self.req.secret
    }

    /// Records the inspect step under `token`, the rotation this run works on.
    fn record_inspect(&self, token: &str) {
        if let Some(started) = self.inspected {
            self.rotator
                .record(self.req, token, Step::Inspect, started, Ok(()));
        }
    }

    /// The deadline of a step starting now: the step limit, or the
    /// attempt's end if that comes first.
    fn step_deadline(&self) -> Instant {
        let limit = Instant::now() + self.rotator.step_timeout;
        self.ends.map_or(limit, |end| end.min(limit))
    }

    fn context(&self, token: &str, values: Values, step: Step) -> StepContext {
        let r = self.rotator;
        StepContext {
            secret: self.info.clone(),
            token: token.to_owned(),
            pending: values.pending,
            current: values.current,
            previous: values.previous,
            settings: self.settings.clone(),
            api: r.api.clone(),
            kms: r.kms.clone(),
            deadline: self.step_deadline(),
            crash: r.crash.clone(),
            span: tracing::info_span!("rotation.step", rotation.step = step.name()),
        }
    }

    /// A step's context with the rotation's current and previous values.
    fn step_ctx(&self, token: &str, pending: Option<SecretString>, step: Step) -> StepContext {
        self.context(
            token,
            Values {
                current: self.current.clone(),
                previous: self.previous.clone(),
                pending,
            },
            step,
        )
    }

    /// Runs `work` as `step` of the rotation at `token`: bounded by the step
    /// timeout, recorded in history either way.
    async fn timed<T>(
        &self,
        token: &str,
        step: Step,
        work: impl Future<Output = Result<T, RotationError>>,
    ) -> Result<T, RotationError> {
        let started = Instant::now();
        // The plugin sees the deadline and stops there with its own error
        // (a Rhai hook names its file and line); the grace lets that error
        // arrive before the protocol gives up on the step.
        let result =
            match tokio::time::timeout_at(self.step_deadline() + DEADLINE_GRACE, work).await {
                Ok(r) => r,
                Err(_) => Err(RotationError::plugin(step, PluginError::DeadlineExceeded)),
            };
        let recorded = result.as_ref().map(|_| ()).map_err(|e| e.message.clone());
        self.rotator
            .record(self.req, token, step, started, recorded);
        result
    }

    /// Runs the plugin's `step` (a future of the plugin) as [`Run::timed`].
    async fn plugin_step(
        &self,
        token: &str,
        step: Step,
        work: impl Future<Output = Result<(), PluginError>>,
    ) -> Result<(), RotationError> {
        self.timed(token, step, async {
            work.await.map_err(|e| RotationError::plugin(step, e))
        })
        .await
    }

    async fn protocol(&mut self, versions: Versions) -> Result<RotationOutcome, RotationError> {
        let r = self.rotator;
        let current = r
            .value(self.name(), At::Version(&versions.current.version_id))
            .await?
            .ok_or_else(|| {
                RotationError::new(
                    Step::Inspect,
                    FailureKind::State,
                    "the ACSCurrent value cannot be read",
                    true,
                )
            })?;
        self.previous = match &versions.previous {
            Some(p) => r
                .value(self.name(), At::Version(&p.version_id))
                .await?
                .map(|v| v.data),
            None => None,
        };
        self.current = Some(current.data.clone());

        // Already promoted: tidy what a crash in finish may have left.
        if versions.current.version_id == self.req.token {
            return self.tidy_promoted(&versions).await;
        }
        // A rotation interrupted inside finish (ACSCurrent moved, ACSPending
        // not yet dropped) under another token: tidy it and report it as the
        // rotation resumed, rather than rotating a second time.
        if versions.current.version_stages.contains(PENDING) {
            return self.finish_interrupted_promotion(&versions).await;
        }
        self.adoption_gate(&versions).await?;
        let (token, resumed, pending) = self.candidate(&versions, &current.data_type).await?;
        r.crash.reach(CrashPoint::AfterCreate);
        self.set(&token, &pending).await?;
        r.crash.reach(CrashPoint::AfterTargetChange);
        r.crash.reach(CrashPoint::AfterSet);
        let ctx = self.step_ctx(&token, Some(pending.clone()), Step::Test);
        self.plugin_step(&token, Step::Test, self.plugin.test(&ctx))
            .await?;
        r.crash.reach(CrashPoint::AfterTest);
        self.promote(&versions, &token, pending).await?;
        tracing::info!(rotation.version = %token, "rotated");
        Ok(RotationOutcome::Rotated {
            version_id: token,
            resumed,
        })
    }

    /// The token is ACSCurrent already: drop a leftover ACSPending and run
    /// the plugin's `finish` again.
    async fn tidy_promoted(&self, versions: &Versions) -> Result<RotationOutcome, RotationError> {
        let token = &self.req.token;
        self.record_inspect(token);
        if versions.current.version_stages.contains(PENDING) {
            self.rotator.drop_pending(self.name(), token).await?;
        }
        let ctx = self.step_ctx(token, self.current.clone(), Step::Finish);
        self.plugin_step(token, Step::Finish, self.plugin.finish(&ctx))
            .await?;
        Ok(RotationOutcome::AlreadyDone {
            version_id: token.clone(),
        })
    }

    /// ACSCurrent moved to another token but kept ACSPending: finish that
    /// promotion.
    async fn finish_interrupted_promotion(
        &self,
        versions: &Versions,
    ) -> Result<RotationOutcome, RotationError> {
        let token = versions.current.version_id.clone();
        self.record_inspect(&token);
        tracing::info!(rotation.resumed = %token, "finishing the promotion already in flight");
        self.timed(&token, Step::Finish, async {
            self.rotator.drop_pending(self.name(), &token).await?;
            let ctx = self.step_ctx(&token, self.current.clone(), Step::Finish);
            self.plugin
                .finish(&ctx)
                .await
                .map_err(|e| RotationError::plugin(Step::Finish, e))
        })
        .await?;
        Ok(RotationOutcome::Rotated {
            version_id: token,
            resumed: true,
        })
    }

    /// The create step: the candidate already written (a rotation in flight,
    /// resumed), or a new one generated and written as ACSPending. Returns
    /// the token, whether it resumed another rotation, and the value.
    async fn candidate(
        &self,
        versions: &Versions,
        data_type: &str,
    ) -> Result<(String, bool, SecretString), RotationError> {
        // One rotation at a time: resume a candidate already in flight.
        let (mut token, resumed) = match &versions.pending {
            Some(p) if p.version_id != self.req.token => {
                tracing::info!(rotation.resumed = %p.version_id, "finishing the rotation already in flight");
                (p.version_id.clone(), true)
            }
            _ => (self.req.token.clone(), false),
        };
        self.record_inspect(&token);
        let started = Instant::now();
        let mut pending = match versions.all.iter().find(|v| v.version_id == token) {
            Some(v) if v.version_stages.contains(PENDING) => self
                .rotator
                .value(self.name(), At::Version(&token))
                .await?
                .map(|p| p.data),
            Some(_) => {
                // The token's version exists but was abandoned: use a new token.
                token = next_token(&token, &versions.all);
                None
            }
            None => None,
        };
        if let Some(p) = &pending
            && self.stale(p, &token).await
        {
            tracing::info!("replacing a candidate the target never accepted");
            self.rotator.drop_pending(self.name(), &token).await?;
            token = next_token(&token, &versions.all);
            pending = None;
        }
        let pending = match pending {
            Some(p) => {
                self.rotator
                    .record(self.req, &token, Step::Create, started, Ok(()));
                p
            }
            None => {
                self.timed(
                    &token,
                    Step::Create,
                    self.write_candidate(&token, data_type),
                )
                .await?
            }
        };
        Ok((token, resumed, pending))
    }

    /// After repeated failures with one candidate: whether the target does
    /// not hold it (so a fresh one may replace it).
    async fn stale(&self, pending: &SecretString, token: &str) -> bool {
        let attempt = self.req.attempt;
        let every = self.rotator.fresh_after;
        if attempt <= every || !(attempt - 1).is_multiple_of(every) {
            return false;
        }
        let ctx = self.step_ctx(token, Some(pending.clone()), Step::Test);
        self.plugin.test(&ctx).await.is_err()
    }

    /// Generates a value (the plugin's `generate`, else the default
    /// password policy) and writes it as `token` with ACSPending.
    async fn write_candidate(
        &self,
        token: &str,
        data_type: &str,
    ) -> Result<SecretString, RotationError> {
        let ctx = self.step_ctx(token, None, Step::Create);
        let generated = match self.plugin.generate(&ctx).await {
            Ok(Some(v)) => v,
            Ok(None) => rota_kms::password::PasswordPolicy::default()
                .generate()
                .map_err(|e| {
                    RotationError::new(
                        Step::Create,
                        FailureKind::Configuration,
                        e.to_string(),
                        false,
                    )
                })?,
            Err(e) => return Err(RotationError::plugin(Step::Create, e)),
        };
        let put = PutSecretValue {
            secret_name: self.name().to_owned(),
            version_id: token.to_owned(),
            secret_data: generated.clone(),
            secret_data_type: Some(data_type.to_owned()).filter(|t| !t.is_empty()),
            version_stages: Some(vec![PENDING.to_owned()]),
        };
        self.rotator
            .kms
            .send(&put)
            .await
            .map_err(|e| RotationError::kms(Step::Create, "PutSecretValue", e))?;
        Ok(generated)
    }

    /// The set step: the plugin probes, then changes the target. When it
    /// fails and the plugin can roll back, the target goes back to
    /// ACSCurrent and the candidate is dropped.
    async fn set(&self, token: &str, pending: &SecretString) -> Result<(), RotationError> {
        let ctx = self.step_ctx(token, Some(pending.clone()), Step::Set);
        self.rotator.crash.reach(CrashPoint::BeforeTargetChange);
        let Err(e) = self
            .plugin_step(token, Step::Set, self.plugin.set(&ctx))
            .await
        else {
            return Ok(());
        };
        if self.plugin.descriptor().steps.rollback {
            let rb = self.step_ctx(token, Some(pending.clone()), Step::Rollback);
            if self
                .plugin_step(token, Step::Rollback, self.plugin.rollback(&rb))
                .await
                .is_ok()
            {
                // The target is back on ACSCurrent: the candidate can go.
                self.rotator.drop_pending(self.name(), token).await?;
            }
        }
        Err(e)
    }

    /// Watches the consumers for `spec.soak` after the promotion of
    /// `version` (which carries [`crate::verify::SOAKING`]): every interval,
    /// the HTTP and Prometheus checks and the plugin's `verify` hook.
    /// Passing, the mark goes; failing, [`Self::verification_failed`]. `old`
    /// is the version it replaced.
    async fn soak(
        &self,
        spec: &crate::verify::VerifySpec,
        version: &str,
        old: Option<&str>,
    ) -> Result<(), RotationError> {
        let r = self.rotator;
        let token = version.to_owned();
        let started = Instant::now();
        let clock = r.clock.clone();
        let until = clock.now() + chrono::Duration::from_std(spec.soak).unwrap_or_default();
        let new_value = match r.value(self.name(), At::Version(&token)).await? {
            Some(v) => Some(v.data),
            None => None,
        };
        tracing::info!(rotation.version = %token, soak_s = spec.soak.as_secs(), checks = spec.check_names().len(), "verifying the rotation");
        let mut rounds = 0u32;
        loop {
            r.crash.reach(CrashPoint::DuringSoak);
            self.fenced(Step::Verify).await?;
            let mut result = r.checker.round(spec).await;
            if result.is_ok() && spec.plugin_hook {
                let ctx = self.context(
                    &token,
                    Values {
                        current: new_value.clone(),
                        previous: None,
                        pending: None,
                    },
                    Step::Verify,
                );
                let hook =
                    tokio::time::timeout_at(self.step_deadline(), self.plugin.verify(&ctx)).await;
                result = match hook {
                    Ok(Ok(()) | Err(PluginError::Unsupported(_))) => Ok(()),
                    Ok(Err(e)) => Err(crate::verify::CheckFailure::Failed {
                        check: "the plugin's verify hook".into(),
                        detail: e.to_string(),
                    }),
                    Err(_) => Err(crate::verify::CheckFailure::Failed {
                        check: "the plugin's verify hook".into(),
                        detail: "it did not answer before its deadline".into(),
                    }),
                };
            }
            rounds += 1;
            if let Err(failure) = result {
                r.record(
                    self.req,
                    &token,
                    Step::Verify,
                    started,
                    Err(failure.to_string()),
                );
                return Err(self.verification_failed(spec, &token, &failure, old).await);
            }
            let now = clock.now();
            if now >= until {
                break;
            }
            let next =
                (now + chrono::Duration::from_std(spec.interval).unwrap_or_default()).min(until);
            clock.sleep_until(next).await;
        }
        r.stage(self.name(), crate::verify::SOAKING, Moves::from(&token))
            .await?;
        r.record(self.req, &token, Step::Verify, started, Ok(()));
        tracing::info!(rotation.version = %token, rounds, "the rotation passed its verification");
        Ok(())
    }

    /// A check failed: roll back (or only alert, or a misconfigured check);
    /// returns the error the job reports (never retried: it needs attention).
    async fn verification_failed(
        &self,
        spec: &crate::verify::VerifySpec,
        version: &str,
        failure: &crate::verify::CheckFailure,
        old: Option<&str>,
    ) -> RotationError {
        use crate::verify::{CheckFailure, OnVerifyFailure};
        let r = self.rotator;
        let token = version.to_owned();
        let at = crate::report::rfc3339(r.clock.now());
        let rollback = matches!(failure, CheckFailure::Failed { .. })
            && spec.on_failure == OnVerifyFailure::Rollback
            && old.is_some();
        if !rollback {
            if let Err(e) = r
                .stage(self.name(), crate::verify::SOAKING, Moves::from(&token))
                .await
            {
                return e;
            }
            tracing::warn!(rotation.version = %token, "verification failed; the new version stays (alert only)");
            return RotationError::new(
                Step::Verify,
                FailureKind::Verification,
                format!("verification failed at {at}, the new version stays: {failure}"),
                false,
            );
        }
        let old = old.unwrap_or_default();
        if let Err(e) = self.fenced(Step::Rollback).await {
            return e;
        }
        // Marked failed first: a crash from here on is finished by the next
        // run, and the version is never promoted again.
        let marked = async {
            let holder = r
                .versions(self.name())
                .await?
                .all
                .into_iter()
                .find(|v| v.version_stages.contains(crate::verify::FAILED))
                .map(|v| v.version_id);
            r.stage(
                self.name(),
                crate::verify::FAILED,
                Moves::to(&token, holder.as_deref()),
            )
            .await
        };
        if let Err(e) = marked.await {
            return e;
        }
        match self.put_back(&token, old).await {
            Ok(()) => {
                tracing::warn!(rotation.version = %token, "verification failed: rolled back");
                RotationError::new(
                    Step::Rollback,
                    FailureKind::Verification,
                    format!("rolled back: {failure} (at {at})"),
                    false,
                )
            }
            Err(e) => e,
        }
    }

    /// Moves ACSCurrent from the failed `token` back to `old`, drops the
    /// soak mark and has the plugin put the target back on the old value.
    /// Each step is idempotent (a resumed rollback runs them again).
    async fn put_back(&self, token: &str, old: &str) -> Result<(), RotationError> {
        let r = self.rotator;
        let name = self.name();
        self.timed(token, Step::Rollback, async {
            let versions = r.versions(name).await?;
            if versions.current.version_id == token {
                r.stage(name, CURRENT, Moves::to(old, Some(token))).await?;
            }
            r.crash.reach(CrashPoint::AfterCurrentBack);
            // ACSPrevious stays on the old version (KMS only moves it): a
            // consumer falling back to it gets the old value too, never the
            // failed one.
            r.crash.reach(CrashPoint::BeforeTargetRollback);
            let old_value = r.value(name, At::Version(old)).await?.map(|v| v.data);
            let failed_value = r.value(name, At::Version(token)).await?.map(|v| v.data);
            let ctx = self.context(
                token,
                Values {
                    current: old_value,
                    previous: None,
                    pending: failed_value,
                },
                Step::Rollback,
            );
            match self.plugin.rollback(&ctx).await {
                Ok(()) | Err(PluginError::Unsupported(_)) => {}
                Err(e) => return Err(RotationError::plugin(Step::Rollback, e)),
            }
            // Last: a version marked failed and still soaking is a rollback
            // in progress, which the next run finishes.
            r.stage(name, crate::verify::SOAKING, Moves::from(token))
                .await
        })
        .await
    }

    /// `version` is marked failed and still soaking: a rollback was cut
    /// short. Finish it and report the failure again.
    async fn resume_rollback(&self, versions: &Versions, version: &str) -> RotationError {
        let old = if versions.current.version_id == version {
            versions.previous.as_ref().map(|p| p.version_id.clone())
        } else {
            Some(versions.current.version_id.clone())
        };
        let Some(old) = old else {
            return RotationError::new(
                Step::Rollback,
                FailureKind::State,
                "the failed version is ACSCurrent and no version is ACSPrevious: cannot roll back",
                false,
            );
        };
        match self.put_back(version, &old).await {
            Ok(()) => RotationError::new(
                Step::Rollback,
                FailureKind::Verification,
                format!(
                    "rolled back: the verification of version {version} had failed (the rollback was resumed after an interruption)"
                ),
                false,
            ),
            Err(e) => e,
        }
    }

    /// The adoption gate (see [`crate::adoption`]): with an `adoption`
    /// spec and an ACSPrevious, waits until enough consumers report
    /// ACSCurrent; after the timeout, a failure that is not retried.
    async fn adoption_gate(&self, versions: &Versions) -> Result<(), RotationError> {
        let (Some(spec), Some(view)) = (&self.req.adoption, &self.rotator.adoption) else {
            return Ok(());
        };
        if versions.previous.is_none() {
            return Ok(());
        }
        let clock = self.rotator.clock.clone();
        let current = versions.current.version_id.as_str();
        let deadline = clock.now() + chrono::Duration::from_std(spec.timeout).unwrap_or_default();
        let mut logged = false;
        loop {
            let reports = view.reports(self.name()).await.map_err(|e| {
                RotationError::new(
                    Step::Inspect,
                    FailureKind::State,
                    format!("cannot read the consumers' reports: {e}"),
                    true,
                )
            })?;
            let now = clock.now();
            let on = crate::adoption::consumers_on(
                &reports,
                current,
                now.timestamp_millis(),
                spec.fresh_for,
            );
            if on.len() >= spec.consumers as usize {
                tracing::info!(rotation.version = %current, consumers = on.len(), "the consumers use ACSCurrent");
                return Ok(());
            }
            if now >= deadline {
                let behind: Vec<String> = reports
                    .iter()
                    .filter(|r| !on.contains(&r.consumer))
                    .map(|r| format!("{} on {}", r.consumer, r.version_id))
                    .collect();
                return Err(RotationError::new(
                    Step::Inspect,
                    FailureKind::Adoption,
                    format!(
                        "{} of {} consumers report ACSCurrent ({current}) after waiting {}; the credential ACSPrevious holds is left as it is{}",
                        on.len(),
                        spec.consumers,
                        humantime_short(spec.timeout),
                        if behind.is_empty() {
                            String::new()
                        } else {
                            format!(" (others: {})", behind.join(", "))
                        }
                    ),
                    false,
                ));
            }
            if !logged {
                tracing::info!(rotation.version = %current, consumers = on.len(), wanted = spec.consumers, "waiting for the consumers to use ACSCurrent");
                logged = true;
            }
            self.fenced(Step::Inspect).await?;
            let next = (now + chrono::Duration::seconds(1)).min(deadline);
            clock.sleep_until(next).await;
        }
    }

    /// The request's fence, as a retryable failure of `step`: another
    /// daemon resumes the rotation through the protocol.
    async fn fenced(&self, step: Step) -> Result<(), RotationError> {
        self.req.fence.check().await.map_err(|why| {
            RotationError::new(
                step,
                FailureKind::Fenced,
                format!("not finishing here: {why}"),
                true,
            )
        })
    }

    /// The finish step: ACSPrevious to the old current, ACSCurrent to the
    /// token, drop ACSPending, then the plugin's `finish` (whose failure is
    /// retried by the next run; the promotion is done).
    async fn promote(
        &self,
        versions: &Versions,
        token: &str,
        pending: SecretString,
    ) -> Result<(), RotationError> {
        let r = self.rotator;
        let name = self.name();
        let old = versions.current.version_id.as_str();
        self.timed(token, Step::Finish, async {
            self.fenced(Step::Finish).await?;
            let previous = versions.previous.as_ref().map(|p| p.version_id.as_str());
            if previous != Some(old) {
                r.stage(name, PREVIOUS, Moves::to(old, previous)).await?;
            }
            r.stage(name, CURRENT, Moves::to(token, Some(old))).await?;
            r.crash.reach(CrashPoint::InFinish);
            r.drop_pending(name, token).await?;
            let ctx = self.context(
                token,
                Values {
                    current: Some(pending.clone()),
                    previous: self.current.clone(),
                    pending: Some(pending),
                },
                Step::Finish,
            );
            self.plugin
                .finish(&ctx)
                .await
                .map_err(|e| RotationError::plugin(Step::Finish, e))
        })
        .await
    }

    async fn managed(&self, versions: Versions) -> Result<RotationOutcome, RotationError> {
        let r = self.rotator;
        let token = self.req.token.clone();
        self.record_inspect(&token);
        if versions.current.version_id == token {
            return Ok(RotationOutcome::AlreadyDone { version_id: token });
        }
        let ctx = self.step_ctx(&token, None, Step::Set);
        r.crash.reach(CrashPoint::BeforeTargetChange);
        self.timed(&token, Step::Set, self.fenced(Step::Set))
            .await?;
        self.plugin_step(&token, Step::Set, self.plugin.set(&ctx))
            .await?;
        r.crash.reach(CrashPoint::AfterTargetChange);
        r.crash.reach(CrashPoint::AfterSet);
        let ctx = self.step_ctx(&token, None, Step::Test);
        self.plugin_step(&token, Step::Test, self.plugin.test(&ctx))
            .await?;
        self.verify_managed(&token).await?;
        r.crash.reach(CrashPoint::AfterTest);
        let ctx = self.step_ctx(&token, None, Step::Finish);
        self.plugin_step(&token, Step::Finish, self.plugin.finish(&ctx))
            .await?;
        tracing::info!(rotation.version = %token, "rotated by the cloud");
        Ok(RotationOutcome::Rotated {
            version_id: token,
            resumed: false,
        })
    }

    /// The managed plugin's optional `verify` plugin: its `test` proves the
    /// new credential.
    async fn verify_managed(&self, token: &str) -> Result<(), RotationError> {
        let Some(verify) = self.settings.get("verify").and_then(Value::as_str) else {
            return Ok(());
        };
        let r = self.rotator;
        let verify_settings = self
            .settings
            .get("verify_settings")
            .cloned()
            .unwrap_or(Value::Null);
        let (verifier, vs) = r
            .registry
            .resolve(verify, &self.info.secret_type, &verify_settings)
            .map_err(|e| {
                RotationError::new(Step::Test, FailureKind::Configuration, e.to_string(), false)
            })?;
        let current = r
            .value(self.name(), At::Stage(CURRENT))
            .await?
            .map(|v| v.data);
        let previous = r
            .value(self.name(), At::Stage(PREVIOUS))
            .await?
            .map(|v| v.data);
        let mut ctx = self.context(
            token,
            Values {
                current: current.clone(),
                previous,
                pending: current,
            },
            Step::Test,
        );
        ctx.settings = Arc::new(vs);
        self.plugin_step(token, Step::Test, verifier.test(&ctx))
            .await
    }

    fn managed_plan(&self) -> Vec<String> {
        let mut plan = vec![
            format!(
                "call RotateSecret with a new VersionId ({})",
                token_form(self.req)
            ),
            "wait until ACSCurrent carries that version".to_owned(),
        ];
        if let Some(v) = self.settings.get("verify").and_then(Value::as_str) {
            plan.push(format!("verify the new credential with plugin {v:?}"));
        }
        plan
    }

    fn protocol_plan(&self, versions: &Versions) -> Vec<String> {
        let mut plan = Vec::new();
        let d = self.plugin.descriptor();
        if let Some(p) = &versions.pending {
            plan.push(format!(
                "finish the rotation already in flight (pending version {})",
                p.version_id
            ));
        } else {
            let how = if d.steps.generate {
                "the plugin's generate step"
            } else {
                "the default password policy"
            };
            plan.push(format!("generate a new value with {how}"));
            plan.push(format!(
                "write it as a new version ({}) with stage ACSPending",
                token_form(self.req)
            ));
        }
        plan.push(format!("set: make the target accept it ({})", d.name));
        plan.push("test: prove the new value works".to_owned());
        plan.push(format!(
            "finish: move ACSCurrent from {} to the new version, ACSPrevious to the old one",
            versions.current.version_id
        ));
        plan
    }
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

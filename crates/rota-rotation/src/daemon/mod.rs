//! The daemon core: what `rota run` does between the scheduler and the
//! protocol, without argv, signals or printing (the binary keeps those).
//!
//! - [`Daemon::register`] keeps the scheduler's jobs in step with the
//!   configuration: one job per [`RotationTarget`] and per
//!   [`WorkflowTarget`], and Rota's jobs that are no longer configured
//!   removed. A job's kind is a [`JobKind`], never a string prefix taken
//!   apart.
//! - The handler maps a scheduler run onto the protocol (a rotation under
//!   the per-secret lock, through [`RotationJobs`]) or onto the
//!   [`WorkflowRunner`] the binary supplies (rota-script's workflows: the
//!   daemon core does not depend on Rhai), records workflow runs in the
//!   history, and reports to an optional [`DaemonObserver`] (the metrics).
//! - `on_failure` webhooks are posted when a job needs attention
//!   ([`Daemon::start`] watches the runner's events for it).
//! - [`Daemon::once`] is `rota run --once`: one pass over what is due
//!   within a horizon on a frozen clock, with its typed [`OnceReport`].

mod once;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rota_kms::BoxFuture;
use rota_scheduler::{
    Clock, Event, JobRun, JobSpec, JobStore, Runner, RunnerConfig, RunnerError, ScheduleError,
    ShutdownReport, StoreError,
};
use serde::Serialize;

pub use once::{OnceReport, OnceRun, OnceWorkflow};

use crate::history::{HistorySink, StepOutcome, WorkflowRunRecord};
use crate::jobs::{RotationJobs, RunRotationError};
use crate::notify::{FailureNotice, NoticeKind, Notifier};
use crate::protocol::{RotationOutcome, Step};
use crate::target::{JobKind, RotationTarget, WorkflowTarget};

/// What a workflow run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowOutput {
    /// One line for history and the summary.
    pub summary: String,
    /// The whole report as JSON (secrets shown as `***`).
    pub report: serde_json::Value,
}

/// Runs workflows for the daemon. The binary implements it over
/// rota-script, so the daemon core never depends on Rhai.
pub trait WorkflowRunner: Send + Sync + 'static {
    /// Runs the workflow `name` for the scheduler run `run`; `Err` is the
    /// redacted failure.
    fn run<'a>(
        &'a self,
        name: &'a str,
        run: &'a JobRun,
    ) -> BoxFuture<'a, Result<WorkflowOutput, String>>;
}

/// A daemon without workflows.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoWorkflows;

impl WorkflowRunner for NoWorkflows {
    fn run<'a>(
        &'a self,
        name: &'a str,
        _run: &'a JobRun,
    ) -> BoxFuture<'a, Result<WorkflowOutput, String>> {
        Box::pin(async move { Err(format!("workflow {name:?} is not configured")) })
    }
}

/// How one run of a job ended, as the daemon, `rota rotate` and metrics
/// name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// A new version is ACSCurrent.
    Rotated,
    /// An interrupted rotation was finished instead.
    Resumed,
    /// The slot's version was already current.
    AlreadyDone,
    /// The attempt failed (it may be retried).
    Failed,
    /// Another rotation of the secret was running.
    Busy,
    /// A workflow ran.
    Ran,
    /// Not run here (`--once`: missed, or another process's).
    Skipped,
}

impl RunOutcome {
    /// The outcomes of a rotation attempt (metrics create each at zero).
    pub const ROTATION: [Self; 4] = [
        Self::Rotated,
        Self::Resumed,
        Self::AlreadyDone,
        Self::Failed,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rotated => "rotated",
            Self::Resumed => "resumed",
            Self::AlreadyDone => "already_done",
            Self::Failed => "failed",
            Self::Busy => "busy",
            Self::Ran => "ran",
            Self::Skipped => "skipped",
        }
    }

    /// The outcome of a protocol run.
    pub fn of(outcome: &RotationOutcome) -> Self {
        match outcome {
            RotationOutcome::Rotated { resumed: true, .. } => Self::Resumed,
            RotationOutcome::Rotated { .. } => Self::Rotated,
            RotationOutcome::AlreadyDone { .. } => Self::AlreadyDone,
        }
    }
}

/// What the daemon reports as it works (the binary's metrics). Every
/// method has a no-op default.
pub trait DaemonObserver: Send + Sync + 'static {
    /// A run started `lag` after it was due.
    fn run_started(&self, lag: Duration) {
        let _ = lag;
    }

    /// A rotation attempt with `plugin` ended.
    fn rotation_finished(&self, plugin: &str, outcome: RunOutcome) {
        let _ = (plugin, outcome);
    }

    /// A run of `workflow` ended.
    fn workflow_finished(&self, workflow: &str, ok: bool) {
        let _ = (workflow, ok);
    }
}

/// What the daemon schedules.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// One per (rotation, secret).
    pub rotations: Vec<RotationTarget>,
    /// One per workflow block.
    pub workflows: Vec<WorkflowTarget>,
}

impl Targets {
    /// Gives every `$Auto` target its live name from `names` (resource
    /// address → the name KMS gave it). Returns the addresses of those
    /// still unnamed (not created yet).
    pub fn with_live_names(&mut self, names: &BTreeMap<String, String>) -> Vec<String> {
        let mut unnamed = Vec::new();
        for t in &mut self.rotations {
            if !t.awaits_live_name() {
                continue;
            }
            match t.address.as_ref().and_then(|a| names.get(a)) {
                Some(live) => t.secret = live.clone(),
                None => unnamed.extend(t.address.clone()),
            }
        }
        unnamed
    }

    /// Anchors every bare interval schedule (`604800s`, the implicit
    /// rotations' `rotation_interval`) at its secret's last rotation, as KMS
    /// counts `NextRotationDate`: the anchor is KMS's `NextRotationDate`
    /// less the interval, else its `LastRotationDate`, else the secret's
    /// creation. A secret KMS does not know yet keeps the bare interval.
    pub async fn anchor_intervals(&mut self, kms: &rota_kms::KmsClient) {
        for t in &mut self.rotations {
            let Some(secs) = rota_scheduler::Schedule::parse_in(&t.schedule, &t.timezone)
                .ok()
                .and_then(|s| s.unanchored_interval())
            else {
                continue;
            };
            let Ok(meta) = kms.describe_secret(&t.secret).await else {
                continue;
            };
            let parse = |s: &Option<String>| {
                s.as_deref()
                    .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                    .map(|t| t.with_timezone(&chrono::Utc))
            };
            let anchor = parse(&meta.next_rotation_date)
                .map(|n| n - chrono::Duration::seconds(secs))
                .or_else(|| parse(&meta.last_rotation_date))
                .or_else(|| parse(&Some(meta.create_time.clone())));
            if let Some(anchor) = anchor {
                t.schedule = format!(
                    "{} from {}",
                    t.schedule,
                    anchor.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
            }
        }
    }

    /// What changed from `self` to `new`, one sentence each: jobs added or
    /// removed, schedules and zones changed (a reload logs them).
    pub fn changes_to(&self, new: &Targets) -> Vec<String> {
        let describe = |t: &Targets| -> BTreeMap<String, (String, String)> {
            t.rotations
                .iter()
                .map(|r| (r.job_name(), (r.schedule.clone(), r.timezone.clone())))
                .chain(
                    t.workflows
                        .iter()
                        .map(|w| (w.job_name(), (w.schedule.clone(), w.timezone.clone()))),
                )
                .collect()
        };
        let (old, new) = (describe(self), describe(new));
        let mut out = Vec::new();
        for (job, (schedule, tz)) in &new {
            match old.get(job) {
                None => out.push(format!("{job}: scheduled ({schedule}, {tz})")),
                Some((s, z)) if s != schedule || z != tz => out.push(format!(
                    "{job}: schedule changed from {s} ({z}) to {schedule} ({tz}); its next slot follows the new schedule"
                )),
                Some(_) => {}
            }
        }
        for job in old.keys().filter(|j| !new.contains_key(*j)) {
            out.push(format!("{job}: no longer configured; removed"));
        }
        out
    }

    /// The scheduler jobs of every target, rotations' errors naming the
    /// rotation and workflows' the workflow.
    pub fn job_specs(&self) -> Result<Vec<JobSpec>, DaemonError> {
        let workflows = self.workflows.iter().map(|w| {
            w.job_spec().map_err(|source| DaemonError::Schedule {
                what: format!("workflow {:?}", w.name),
                source,
            })
        });
        let rotations = self.rotations.iter().map(|t| {
            t.job_spec().map_err(|source| DaemonError::Schedule {
                what: format!("rotation {:?} of {:?}", t.rotation, t.secret),
                source,
            })
        });
        workflows.chain(rotations).collect()
    }
}

/// Why the daemon could not do what it was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// A schedule does not parse.
    #[error("{what}: invalid schedule")]
    Schedule {
        /// Which target.
        what: String,
        /// Why.
        #[source]
        source: ScheduleError,
    },
    /// The scheduler refused.
    #[error("the scheduler failed")]
    Runner(#[from] RunnerError),
    /// The scheduler's store failed.
    #[error("the scheduler's store failed")]
    Store(#[from] StoreError),
    /// A blocking task was lost.
    #[error("a store task did not finish")]
    Join(#[from] tokio::task::JoinError),
    /// [`Daemon::start`] was called twice, or [`Daemon::once`] after it.
    #[error("the daemon is already running")]
    AlreadyRunning,
}

/// How the daemon is set up.
pub struct DaemonOptions {
    /// The lease owner id of this process.
    pub owner: String,
    /// Runs at once.
    pub concurrency: usize,
    /// Where the daemon gets the time.
    pub clock: Arc<dyn Clock>,
    /// Runs workflows.
    pub workflows: Arc<dyn WorkflowRunner>,
    /// Where workflow runs are recorded (rotation steps are recorded by
    /// the rotator).
    pub history: Arc<dyn HistorySink>,
    /// Metrics, if any.
    pub observer: Option<Arc<dyn DaemonObserver>>,
    /// How long a webhook delivery may take.
    pub notify_timeout: Duration,
    /// How long the runner's leases last unless renewed (the heartbeat
    /// renews them every third of it).
    pub lease_ttl: Duration,
    /// Where events are written and delivered from (the scheduler store's
    /// outbox); `None`: no events.
    pub events: Option<Arc<crate::events::Events>>,
}

/// The daemon core. See the module docs.
pub struct Daemon {
    store: Arc<dyn JobStore>,
    shared: Arc<Shared>,
    owner: String,
    concurrency: usize,
    lease_ttl: Duration,
    clock: Arc<dyn Clock>,
    runner: Mutex<Option<Runner>>,
    /// The targets registered last (a reload logs what changed).
    registered: Mutex<Option<Targets>>,
    /// Reminders ahead of slots, when events are on.
    reminders: Option<Arc<crate::events::reminders::Reminders>>,
    /// Stops the deliverer and the reminders.
    events_stop: tokio::sync::watch::Sender<bool>,
    /// The deliverer and reminder tasks.
    event_tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// What the handler and the notification task share.
struct Shared {
    jobs: RotationJobs,
    workflows: Arc<dyn WorkflowRunner>,
    history: Arc<dyn HistorySink>,
    observer: Option<Arc<dyn DaemonObserver>>,
    notifications: Notifications,
    clock: Arc<dyn Clock>,
    /// Per job, the outcome of its last run in this process (`--once`).
    seen: Mutex<HashMap<String, RunOutcome>>,
    /// Per workflow job, the summary of its last run in this process.
    summaries: Mutex<HashMap<String, String>>,
    /// Runs in flight.
    working: tokio::sync::watch::Sender<usize>,
    /// Events, when on.
    events: Option<Arc<crate::events::Events>>,
}

impl Daemon {
    /// A daemon over the scheduler's `store`, rotating through `jobs`.
    pub fn new(store: Arc<dyn JobStore>, jobs: RotationJobs, options: DaemonOptions) -> Self {
        let shared = Arc::new(Shared {
            jobs,
            workflows: options.workflows,
            history: options.history,
            observer: options.observer,
            notifications: Notifications::new(options.notify_timeout, options.clock.clone()),
            clock: options.clock.clone(),
            seen: Mutex::default(),
            summaries: Mutex::default(),
            working: tokio::sync::watch::Sender::new(0),
            events: options.events.clone(),
        });
        let reminders = options
            .events
            .as_ref()
            .map(|e| Arc::new(crate::events::reminders::Reminders::new(Arc::clone(e))));
        Self {
            store,
            shared,
            owner: options.owner,
            concurrency: options.concurrency,
            lease_ttl: options.lease_ttl,
            clock: options.clock,
            runner: Mutex::new(None),
            registered: Mutex::new(None),
            reminders,
            events_stop: tokio::sync::watch::Sender::new(false),
            event_tasks: Mutex::default(),
        }
    }

    /// This process's lease owner id.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The running runner (after [`Daemon::start`]), for health checks.
    pub fn runner(&self) -> Option<Runner> {
        lock(&self.runner).clone()
    }

    /// Registers a job per target and removes Rota's jobs that are no
    /// longer configured; the webhooks follow the new targets. Returns the
    /// job names. Nothing changes when a schedule is invalid.
    pub async fn register(&self, targets: &Targets) -> Result<Vec<String>, DaemonError> {
        let specs = targets.job_specs()?;
        let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
        let runner = match self.runner() {
            Some(r) => r,
            // Jobs are registered on the daemon's clock (a new job's first
            // slot is the first fire time after now); the runner loads them
            // when it starts.
            None => Runner::new(
                self.store.clone(),
                self.clock.clone(),
                RunnerConfig::with_owner(self.owner.clone()),
                |_run: JobRun| async { Ok::<(), rota_scheduler::RunError>(()) },
            ),
        };
        runner.register_many(specs).await?;
        let configured: HashSet<&str> = names.iter().map(String::as_str).collect();
        for row in self.jobs().await? {
            if JobKind::parse(&row.name).is_some() && !configured.contains(row.name.as_str()) {
                tracing::info!(job.name = %row.name, "no longer configured; job removed");
                runner.remove(&row.name).await?;
            }
        }
        self.shared.notifications.replace(&targets.rotations);
        if let Some(r) = &self.reminders {
            r.set(
                targets
                    .rotations
                    .iter()
                    .filter_map(|t| {
                        t.remind_before
                            .map(|before| crate::events::reminders::Reminder {
                                job: t.job_name(),
                                secret: t.secret.clone(),
                                rotation: t.rotation.clone(),
                                plugin: t.plugin.clone(),
                                schedule: t.schedule.clone(),
                                timezone: t.timezone.clone(),
                                before,
                            })
                    })
                    .collect(),
            );
        }
        let previous = lock(&self.registered).replace(targets.clone());
        if let Some(previous) = previous {
            for change in previous.changes_to(targets) {
                tracing::info!("{change}");
            }
        }
        Ok(names)
    }

    async fn jobs(&self) -> Result<Vec<rota_scheduler::store::JobRow>, DaemonError> {
        let store = self.store.clone();
        Ok(tokio::task::spawn_blocking(move || store.jobs()).await??)
    }

    fn handler(&self) -> impl rota_scheduler::Handler {
        let shared = self.shared.clone();
        move |run: JobRun| {
            let shared = shared.clone();
            async move { shared.handle(run).await }
        }
    }

    /// Starts the scheduler on the daemon's clock; jobs that need
    /// attention get their `on_failure` webhook. Returns the runner (for
    /// health checks).
    pub async fn start(&self) -> Result<Runner, DaemonError> {
        if self.runner().is_some() {
            return Err(DaemonError::AlreadyRunning);
        }
        let mut config = RunnerConfig::with_owner(self.owner.clone())
            .max_concurrent(self.concurrency)
            .lease_ttl(self.lease_ttl);
        if let Some(e) = &self.shared.events {
            config = config.run_events(Arc::new(crate::events::run::DaemonRunEvents::new(
                Arc::clone(e),
            )));
        }
        let runner = Runner::new(
            self.store.clone(),
            self.clock.clone(),
            config,
            self.handler(),
        );
        let mut events = runner.subscribe();
        runner.start().await?;
        *lock(&self.runner) = Some(runner.clone());
        self.start_events();
        let shared = self.shared.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(Event::Finished {
                        name,
                        needs_attention,
                        error,
                        attempt,
                        ..
                    }) => {
                        // The run's events are stored now.
                        if let Some(e) = &shared.events {
                            e.wake().notify_waiters();
                        }
                        if !needs_attention {
                            continue;
                        }
                        // Delivered aside: a slow webhook never delays
                        // the next event.
                        let shared = shared.clone();
                        tokio::spawn(async move {
                            shared
                                .notifications
                                .needs_attention(&name, attempt, error)
                                .await;
                        });
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        Ok(runner)
    }

    /// Starts delivering events and writing reminders (when events are
    /// on).
    fn start_events(&self) {
        let Some(events) = &self.shared.events else {
            return;
        };
        let mut tasks = lock(&self.event_tasks);
        match crate::events::deliver::Deliverer::new(Arc::clone(events), self.owner.clone()) {
            Ok(d) => {
                let stop = self.events_stop.subscribe();
                tasks.push(tokio::spawn(Arc::new(d).run(stop)));
            }
            Err(e) => tracing::error!(error = %e, "cannot deliver events"),
        }
        if let Some(r) = &self.reminders {
            let (r, stop) = (Arc::clone(r), self.events_stop.subscribe());
            tasks.push(tokio::spawn(async move { r.run(stop).await }));
        }
    }

    /// Delivers the events due now, for at most `within` (after a
    /// `--once` pass; a running daemon delivers continuously). Returns how
    /// many were delivered.
    pub async fn drain_events(&self, within: Duration) -> usize {
        let Some(events) = &self.shared.events else {
            return 0;
        };
        match crate::events::deliver::Deliverer::new(Arc::clone(events), self.owner.clone()) {
            Ok(d) => d.drain(within).await,
            Err(e) => {
                tracing::error!(error = %e, "cannot deliver events");
                0
            }
        }
    }

    /// Stops the scheduler, letting runs in flight finish within `grace`,
    /// then the event delivery (what is undelivered stays in the outbox).
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        let runner = lock(&self.runner).take();
        let report = match runner {
            Some(r) => r.shutdown(grace).await,
            None => ShutdownReport::default(),
        };
        self.events_stop.send_replace(true);
        let tasks = std::mem::take(&mut *lock(&self.event_tasks));
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        report
    }
}

impl Shared {
    /// One scheduler run: a rotation or a workflow.
    async fn handle(&self, run: JobRun) -> Result<(), rota_scheduler::RunError> {
        let _working = Working::new(&self.working);
        if let Some(o) = &self.observer
            && let Ok(lag) = (self.clock.now() - run.due).to_std()
        {
            // Negative under --once --all-due-within (run early on
            // purpose): not lag, not observed.
            o.run_started(lag);
        }
        match JobKind::parse(&run.name) {
            Some(JobKind::Workflow(name)) => self.workflow(&name, &run).await,
            Some(JobKind::Rotation(_)) => self.rotation(&run).await,
            None => Err(rota_scheduler::RunError::permanent(format!(
                "{:?} is not one of Rota's jobs",
                run.name
            ))),
        }
    }

    async fn rotation(&self, run: &JobRun) -> Result<(), rota_scheduler::RunError> {
        let name = run.name.to_string();
        let req = RotationJobs::request(run)?;
        if let Some(e) = &self.events {
            e.append(vec![crate::events::run::started(e, run, &req)])
                .await;
        }
        let result = self.jobs.rotate(&req).await;
        if let Some(e) = &self.events {
            let event = crate::events::run::ended(e, run, &req, &result);
            e.written(std::slice::from_ref(&event));
            run.events.push(event);
        }
        let outcome = match &result {
            Ok(o) => {
                tracing::info!(job.name = %name, rotation.version = %version_of(o), outcome = RunOutcome::of(o).as_str(), "rotation done");
                RunOutcome::of(o)
            }
            Err(e) => {
                tracing::warn!(job.name = %name, error = %e, "rotation failed");
                self.notifications.failed_in(&name, e.step());
                RunOutcome::Failed
            }
        };
        if let Some(o) = &self.observer {
            o.rotation_finished(&req.plugin, outcome);
        }
        lock(&self.seen).insert(name, outcome);
        result.map(|_| ()).map_err(|e| e.to_run_error())
    }

    async fn workflow(&self, name: &str, run: &JobRun) -> Result<(), rota_scheduler::RunError> {
        let started = std::time::Instant::now();
        let result = self.workflows.run(name, run).await;
        let (outcome, summary, report, error) = match &result {
            Ok(out) => (
                StepOutcome::Ok,
                Some(out.summary.clone()),
                Some(out.report.clone()),
                None,
            ),
            Err(e) => (StepOutcome::Failed, None, None, Some(e.clone())),
        };
        self.history.record_workflow(WorkflowRunRecord {
            workflow: name.to_owned(),
            slot: Some(run.slot),
            attempt: run.attempt,
            at: self.clock.now(),
            duration_ms: started.elapsed().as_millis() as u64,
            outcome,
            summary,
            report,
            error,
        });
        if let Some(o) = &self.observer {
            o.workflow_finished(name, result.is_ok());
        }
        if let Some(e) = &self.events {
            let event = crate::events::run::workflow(e, name, run, &result);
            e.written(std::slice::from_ref(&event));
            run.events.push(event);
        }
        let job = run.name.to_string();
        match result {
            Ok(out) => {
                tracing::info!(job.name = %job, summary = %out.summary, "workflow ran");
                lock(&self.summaries).insert(job.clone(), out.summary);
                lock(&self.seen).insert(job, RunOutcome::Ran);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(job.name = %job, error = %e, "workflow failed");
                lock(&self.seen).insert(job, RunOutcome::Failed);
                Err(rota_scheduler::RunError::retryable(e))
            }
        }
    }
}

fn version_of(o: &RotationOutcome) -> &str {
    match o {
        RotationOutcome::Rotated { version_id, .. }
        | RotationOutcome::AlreadyDone { version_id } => version_id,
    }
}

/// The `on_failure` webhooks of the configured rotations, by job name, and
/// the step each job's last failure was in.
struct Notifications {
    targets: Mutex<HashMap<String, RotationTarget>>,
    steps: Mutex<HashMap<String, Step>>,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl Notifications {
    fn new(timeout: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            targets: Mutex::default(),
            steps: Mutex::default(),
            timeout,
            clock,
        }
    }

    fn replace(&self, targets: &[RotationTarget]) {
        *lock(&self.targets) = targets.iter().map(|t| (t.job_name(), t.clone())).collect();
    }

    /// Records the step a failed attempt of `job` failed in.
    fn failed_in(&self, job: &str, step: Option<Step>) {
        let mut steps = lock(&self.steps);
        match step {
            Some(step) => steps.insert(job.to_owned(), step),
            None => steps.remove(job),
        };
    }

    /// `job` spent its retry budget: log it and POST to its webhook.
    async fn needs_attention(&self, job: &str, attempt: u32, error: Option<String>) {
        let target = lock(&self.targets).get(job).cloned();
        let step = lock(&self.steps).get(job).copied();
        tracing::error!(job.name = %job, error = ?error, "rotation needs attention");
        let Some(t) = target else { return };
        let notice = FailureNotice::new(NoticeKind::NeedsAttention, &t, self.clock.now())
            .step(step)
            .error(error.unwrap_or_default())
            .attempt(attempt);
        send_notice(&t, &notice, self.timeout).await;
    }
}

/// Posts `notice` to `target`'s webhook, if it has one; a failed delivery
/// is logged.
pub async fn send_notice(target: &RotationTarget, notice: &FailureNotice, timeout: Duration) {
    let Some(url) = &target.on_failure.webhook else {
        return;
    };
    match Notifier::new(timeout) {
        Ok(n) => {
            n.notify(url, notice).await;
        }
        Err(e) => tracing::warn!(error = %e, "cannot send the failure notification"),
    }
}

/// Posts the `on_failure` webhook of a manual rotation (`rota rotate`) that
/// failed permanently.
pub async fn notify_manual_failure(
    target: &RotationTarget,
    error: &RunRotationError,
    attempt: u32,
    clock: &dyn Clock,
    timeout: Duration,
) {
    if error.is_retryable() {
        return;
    }
    let notice = FailureNotice::new(NoticeKind::Failed, target, clock.now())
        .step(error.step())
        .error(error.to_string())
        .attempt(attempt);
    send_notice(target, &notice, timeout).await;
}

/// Counts a run doing work for as long as it lives.
struct Working(tokio::sync::watch::Sender<usize>);

impl Working {
    fn new(tx: &tokio::sync::watch::Sender<usize>) -> Self {
        tx.send_modify(|n| *n += 1);
        Self(tx.clone())
    }
}

impl Drop for Working {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::Targets;
    use crate::target::WorkflowTarget;

    fn workflow(name: &str, schedule: &str) -> WorkflowTarget {
        WorkflowTarget {
            name: name.into(),
            schedule: schedule.into(),
            timezone: "UTC".into(),
            script: "s.rhai".into(),
            timeout: std::time::Duration::from_secs(60),
            run_immediately: false,
        }
    }

    #[test]
    fn a_reload_says_what_changed() {
        let old = Targets {
            rotations: vec![],
            workflows: vec![workflow("a", "@daily"), workflow("b", "@daily")],
        };
        let new = Targets {
            rotations: vec![],
            workflows: vec![workflow("a", "@hourly"), workflow("c", "@weekly")],
        };
        assert_eq!(
            old.changes_to(&new),
            [
                "workflow:a: schedule changed from @daily (UTC) to @hourly (UTC); its next slot follows the new schedule",
                "workflow:c: scheduled (@weekly, UTC)",
                "workflow:b: no longer configured; removed",
            ]
        );
        assert!(new.changes_to(&new).is_empty());
    }
}

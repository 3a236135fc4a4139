//! What `rota status` and `rota history` show, as typed rows the binary
//! prints (text or JSON): the state of each configured job from the
//! scheduler's store and the history, and the recorded runs.
//!
//! Also the resolution of the names users give (`rota rotate NAME`,
//! `rota history NAME`): a secret name, a resource address, a rotation
//! block's name or a workflow.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use rota_scheduler::store::JobRow;
use rota_scheduler::{JobStore, Outcome, RunState, Schedule};
use serde::{Serialize, Serializer};

use crate::daemon::Targets;
use crate::history::{HistoryError, Step, StepOutcome, StoredStep};
use crate::target::{JobKind, RotationTarget};

/// A job's state in `rota status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum JobState {
    /// Scheduled.
    #[serde(rename = "active")]
    Active,
    /// Paused.
    #[serde(rename = "paused")]
    Paused,
    /// Its retry budget was spent.
    #[serde(rename = "needs attention")]
    NeedsAttention,
    /// Configured, not in the scheduler's store yet (`rota run` registers it).
    #[serde(rename = "not scheduled")]
    NotScheduled,
}

impl JobState {
    /// As printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::NeedsAttention => "needs attention",
            Self::NotScheduled => "not scheduled",
        }
    }
}

/// A rotation's row in `rota status`. (Fields in alphabetical order: the
/// JSON shape scripts parse.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RotationStatus {
    /// Attempts at the pending slot.
    pub attempts: u32,
    /// What the secret's consumers (`rota agent`) last reported.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<ConsumerStatus>,
    /// A verified rotation's state: `soaking (4m left)`, `rolled back: …`,
    /// `verification failed: …`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<String>,
    /// The daemon (owner id: host, pid, …) whose live lease holds the job,
    /// while one runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    /// When a rotation last finished.
    #[serde(serialize_with = "opt_secs")]
    pub last_rotation: Option<DateTime<Utc>>,
    /// The pending slot (or the schedule's next fire time, not scheduled).
    #[serde(serialize_with = "opt_secs")]
    pub next_slot: Option<DateTime<Utc>>,
    /// The plugin.
    pub plugin: String,
    /// Why it needs a look: the last failure.
    pub reason: Option<String>,
    /// The rotation block.
    pub rotation: String,
    /// The schedule.
    pub schedule: String,
    /// The secret.
    pub secret: String,
    /// The job's state.
    pub state: JobState,
    /// The schedule's zone.
    pub timezone: String,
}

/// A consumer of a secret, as `rota status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsumerStatus {
    /// Its id (`agent { consumer }`).
    pub consumer: String,
    /// The version it renders.
    pub version_id: String,
    /// Whether that version is ACSCurrent.
    pub on_current: bool,
    /// Whether its reload worked.
    pub reloaded: bool,
    /// When it last reported.
    #[serde(serialize_with = "opt_secs")]
    pub reported_at: Option<DateTime<Utc>>,
}

/// A workflow's row in `rota status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkflowStatus {
    /// Attempts at the pending slot.
    pub attempts: u32,
    /// The daemon whose live lease holds the job, while one runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    /// When it last ran successfully.
    #[serde(serialize_with = "opt_secs")]
    pub last_run: Option<DateTime<Utc>>,
    /// The pending slot.
    #[serde(serialize_with = "opt_secs")]
    pub next_slot: Option<DateTime<Utc>>,
    /// Why it needs a look: its last run's failure.
    pub reason: Option<String>,
    /// The schedule.
    pub schedule: String,
    /// What it runs.
    pub script: String,
    /// The job's state.
    pub state: JobState,
    /// The schedule's zone.
    pub timezone: String,
    /// The workflow.
    pub workflow: String,
}

/// One row of `rota status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum StatusRow {
    /// A rotation.
    Rotation(RotationStatus),
    /// A workflow.
    Workflow(WorkflowStatus),
}

impl StatusRow {
    /// The name shown: the secret, or `workflow:<name>`.
    pub fn name(&self) -> String {
        match self {
            Self::Rotation(r) => r.secret.clone(),
            Self::Workflow(w) => JobKind::Workflow(w.workflow.clone()).name(),
        }
    }

    /// The daemon holding the job's live lease, if any.
    pub fn held_by(&self) -> Option<&str> {
        match self {
            Self::Rotation(r) => r.held_by.as_deref(),
            Self::Workflow(w) => w.held_by.as_deref(),
        }
    }

    /// Why it needs a look, if it does.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Rotation(r) => r.reason.as_deref(),
            Self::Workflow(w) => w.reason.as_deref(),
        }
    }
}

/// A status failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The scheduler's store failed.
    #[error(transparent)]
    Store(#[from] rota_scheduler::StoreError),
    /// The history failed.
    #[error(transparent)]
    History(#[from] HistoryError),
}

/// Where status and history are read from: the scheduler's store and the
/// history, or nothing yet (no `rota run`/`rota rotate` has run).
pub struct Records<'a> {
    /// The scheduler's store.
    pub store: &'a dyn JobStore,
    /// The history.
    pub history: &'a dyn crate::history::HistoryStore,
}

/// The `rota status` rows of `targets`, at `now`.
pub fn status(
    targets: &Targets,
    records: Option<&Records<'_>>,
    now: DateTime<Utc>,
) -> Result<Vec<StatusRow>, ReportError> {
    let mut rows = Vec::new();
    for t in &targets.rotations {
        rows.push(StatusRow::Rotation(rotation_status(t, records, now)?));
    }
    for w in &targets.workflows {
        let (job, runs) = match records {
            Some(r) => (
                r.store.job(&w.job_name())?,
                r.store.runs(&w.job_name(), 20)?,
            ),
            None => (None, Vec::new()),
        };
        let (state, next_slot, attempts) = job_state(job.as_ref(), &w.schedule, &w.timezone, now);
        rows.push(StatusRow::Workflow(WorkflowStatus {
            attempts,
            held_by: holder(job.as_ref(), now),
            last_run: runs
                .iter()
                .find(|r| r.outcome == Outcome::Succeeded)
                .and_then(|r| DateTime::from_timestamp_millis(r.ended_ms.unwrap_or(r.started_ms))),
            next_slot,
            reason: runs
                .first()
                .filter(|r| r.outcome == Outcome::Failed)
                .and_then(|r| r.error.clone()),
            schedule: w.schedule.clone(),
            script: w.script.clone(),
            state,
            timezone: w.timezone.clone(),
            workflow: w.name.clone(),
        }));
    }
    Ok(rows)
}

/// The `rota status` rows of every job the store holds, when the
/// configuration cannot be read (a daemon keeps running its jobs after a
/// reload refused a broken file): the schedule comes from the store, the
/// plugin and rotation from the job's payload, the script is unknown.
pub fn status_from_store(
    records: &Records<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<StatusRow>, ReportError> {
    let mut rotations = Vec::new();
    let mut workflows = Vec::new();
    for row in records.store.jobs()? {
        match JobKind::parse(&row.name) {
            Some(JobKind::Rotation(secret)) => {
                let payload: Option<crate::jobs::JobPayload> =
                    serde_json::from_str(&row.payload).ok();
                let payload_verify = payload.as_ref().and_then(|p| p.verify.clone());
                rotations.push(RotationTarget {
                    rotation: payload
                        .as_ref()
                        .map_or_else(|| "-".into(), |p| p.rotation.clone()),
                    secret,
                    address: None,
                    secret_type: None,
                    schedule: row.schedule.clone(),
                    timezone: row.tz.clone(),
                    window: row.policy.window,
                    jitter: row.policy.jitter,
                    catch_up: row.policy.catch_up,
                    rotate_immediately: false,
                    plugin: payload.map_or_else(|| "-".into(), |p| p.plugin),
                    settings: serde_json::Value::Null,
                    max_attempts: row.policy.retry.max_attempts,
                    retry_backoff: row.policy.retry.initial_backoff,
                    timeout: row.policy.timeout,
                    on_failure: crate::target::OnFailure::default(),
                    implicit: false,
                    verify: payload_verify,
                    remind_before: None,
                    adoption: None,
                });
            }
            Some(JobKind::Workflow(name)) => workflows.push(crate::target::WorkflowTarget {
                name,
                schedule: row.schedule.clone(),
                timezone: row.tz.clone(),
                script: "-".into(),
                timeout: row.policy.timeout,
                run_immediately: false,
            }),
            None => {}
        }
    }
    status(
        &Targets {
            rotations,
            workflows,
        },
        Some(records),
        now,
    )
}

fn rotation_status(
    t: &RotationTarget,
    records: Option<&Records<'_>>,
    now: DateTime<Utc>,
) -> Result<RotationStatus, ReportError> {
    let job = match records {
        Some(r) => r.store.job(&t.job_name())?,
        None => None,
    };
    let last_rotation = match records {
        Some(r) => r.history.last_success(&t.secret)?,
        None => None,
    };
    let (state, next_slot, attempts) = job_state(job.as_ref(), &t.schedule, &t.timezone, now);
    let mut reason = None;
    if let (Some(j), Some(r)) = (&job, records)
        && (j.needs_attention || j.attempts > 0)
    {
        reason = r
            .store
            .runs(&j.name, 5)?
            .into_iter()
            .find_map(|run| run.error.filter(|_| run.outcome == Outcome::Failed));
    }
    if reason.is_none()
        && let Some(r) = records
        && let Some(step) = r.history.last(&t.secret)?
        && step.outcome == StepOutcome::Failed
    {
        reason = step.error.map(|e| format!("{} failed: {e}", step.step));
    }
    let verification = match records {
        Some(r) if t.verify.is_some() => verification_state(t, r, now)?,
        _ => None,
    };
    if let Some(v) = verification.as_ref().filter(|v| !v.starts_with("soaking")) {
        reason = Some(v.clone());
    }
    Ok(RotationStatus {
        attempts,
        consumers: Vec::new(),
        held_by: holder(job.as_ref(), now),
        verification,
        last_rotation,
        next_slot,
        plugin: t.plugin.clone(),
        reason,
        rotation: t.rotation.clone(),
        schedule: t.schedule.clone(),
        secret: t.label().to_owned(),
        state,
        timezone: t.timezone.clone(),
    })
}

/// What the history says of the last verified rotation of `t`: `soaking
/// (4m left)` while its soak runs, `rolled back: <why>` after a rollback,
/// `verification failed: <why>` after an alert; `None` otherwise.
fn verification_state(
    t: &RotationTarget,
    r: &Records<'_>,
    now: DateTime<Utc>,
) -> Result<Option<String>, ReportError> {
    let steps = r.history.list(Some(&t.secret), 200)?;
    let Some(finish) = steps
        .iter()
        .rposition(|s| s.step == Step::Finish && s.outcome == StepOutcome::Ok)
    else {
        return Ok(None);
    };
    let after = &steps[finish + 1..];
    let verify = after.iter().find(|s| s.step == Step::Verify);
    let rollback = after
        .iter()
        .find(|s| s.step == Step::Rollback && s.outcome == StepOutcome::Ok);
    Ok(match (verify, rollback) {
        (Some(v), Some(_)) if v.outcome == StepOutcome::Failed => Some(format!(
            "rolled back: {} at {}",
            v.error.as_deref().unwrap_or("a check failed"),
            rfc3339(v.at)
        )),
        (Some(v), None) if v.outcome == StepOutcome::Failed => Some(format!(
            "verification failed: {}",
            v.error.as_deref().unwrap_or("a check failed")
        )),
        (Some(_), _) => None,
        (None, _) => {
            let soak = t
                .verify
                .as_ref()
                .map_or(std::time::Duration::ZERO, |v| v.soak);
            let ends = steps[finish].at + chrono::Duration::from_std(soak).unwrap_or_default();
            (ends > now).then(|| {
                let left = (ends - now).num_seconds().max(1);
                if left >= 120 {
                    format!("soaking ({}m left)", left / 60)
                } else {
                    format!("soaking ({left}s left)")
                }
            })
        }
    })
}

/// The owner of a job's live lease.
fn holder(job: Option<&JobRow>, now: DateTime<Utc>) -> Option<String> {
    job.and_then(|j| j.lease.as_ref())
        .filter(|l| l.until_ms > now.timestamp_millis())
        .map(|l| l.owner.clone())
}

/// A job's state, next slot and attempts; a job not in the store yet shows
/// its schedule's next fire time.
fn job_state(
    job: Option<&JobRow>,
    schedule: &str,
    timezone: &str,
    now: DateTime<Utc>,
) -> (JobState, Option<DateTime<Utc>>, u32) {
    match job {
        Some(j) => (
            if j.needs_attention {
                JobState::NeedsAttention
            } else if j.state == RunState::Paused {
                JobState::Paused
            } else {
                JobState::Active
            },
            j.slot_ms.and_then(DateTime::from_timestamp_millis),
            j.attempts,
        ),
        None => (
            JobState::NotScheduled,
            Schedule::parse_in(schedule, timezone)
                .ok()
                .and_then(|s| s.next_fire(now)),
            0,
        ),
    }
}

/// How a recorded rotation run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryOutcome {
    /// Its finish step succeeded.
    Rotated,
    /// A step failed.
    Failed,
    /// It stopped before finishing (a crash, or still running).
    Incomplete,
}

impl HistoryOutcome {
    /// As printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rotated => "rotated",
            Self::Failed => "failed",
            Self::Incomplete => "incomplete",
        }
    }
}

/// One step of a recorded rotation run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepRow {
    /// When it ended.
    #[serde(serialize_with = "millis")]
    pub at: DateTime<Utc>,
    /// Milliseconds.
    pub duration_ms: u64,
    /// The redacted error.
    pub error: Option<String>,
    /// How it ended.
    pub outcome: StepOutcome,
    /// The step.
    pub step: Step,
}

/// A recorded rotation run: the steps of one (secret, token, attempt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RotationRun {
    /// Attempt at the token.
    pub attempt: u32,
    /// When its last step ended.
    #[serde(serialize_with = "millis")]
    pub ended_at: DateTime<Utc>,
    /// How it ended.
    pub outcome: HistoryOutcome,
    /// The plugin.
    pub plugin: String,
    /// The secret.
    pub secret: String,
    /// When its first step ended.
    #[serde(serialize_with = "millis")]
    pub started_at: DateTime<Utc>,
    /// Its steps.
    pub steps: Vec<StepRow>,
    /// The rotation token (the version id it writes).
    pub token: String,
}

/// Steps grouped into runs by (secret, token, attempt), in order of first
/// step.
pub fn rotation_runs(steps: Vec<StoredStep>) -> Vec<RotationRun> {
    let mut order: Vec<(String, String, u32)> = Vec::new();
    let mut by: HashMap<(String, String, u32), Vec<StoredStep>> = HashMap::new();
    for s in steps {
        let key = (s.secret.clone(), s.token.clone(), s.attempt);
        if !by.contains_key(&key) {
            order.push(key.clone());
        }
        by.entry(key).or_default().push(s);
    }
    order
        .into_iter()
        .filter_map(|k| by.remove(&k).map(|steps| (k, steps)))
        .filter_map(|((secret, token, attempt), steps)| {
            let first = steps.first()?.clone();
            let last = steps.last()?.clone();
            let outcome = if steps.iter().any(|s| s.outcome == StepOutcome::Failed) {
                HistoryOutcome::Failed
            } else if steps
                .iter()
                .any(|s| s.step == Step::Finish && s.outcome == StepOutcome::Ok)
            {
                HistoryOutcome::Rotated
            } else {
                HistoryOutcome::Incomplete
            };
            Some(RotationRun {
                attempt,
                ended_at: last.at,
                outcome,
                plugin: first.plugin,
                secret,
                started_at: first.at,
                steps: steps
                    .into_iter()
                    .map(|s| StepRow {
                        at: s.at,
                        duration_ms: s.duration_ms,
                        error: s.error,
                        outcome: s.outcome,
                        step: s.step,
                    })
                    .collect(),
                token,
            })
        })
        .collect()
}

/// What a name given on the command line refers to.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject<'a> {
    /// Configured rotations (a secret, an address or a rotation block).
    Rotations(Vec<&'a RotationTarget>),
    /// A workflow (`workflow:<name>` or the block's name).
    Workflow(String),
    /// Nothing configured by that name.
    Unknown,
}

impl Targets {
    /// What `name` refers to: a secret name, a resource address
    /// (`alicloud_kms_secret.x` or `x`), a rotation block's name, or a
    /// workflow (`workflow:<name>`, or a workflow block's name that is no
    /// rotation's).
    pub fn resolve(&self, name: &str) -> Subject<'_> {
        if let Some(JobKind::Workflow(w)) = JobKind::parse(name) {
            return Subject::Workflow(w);
        }
        let address = if name.starts_with("alicloud_kms_secret.") || name.starts_with("module.") {
            name.to_owned()
        } else {
            format!("alicloud_kms_secret.{name}")
        };
        let found: Vec<&RotationTarget> = self
            .rotations
            .iter()
            .filter(|t| {
                t.secret == name || t.address.as_deref() == Some(&address) || t.rotation == name
            })
            .collect();
        if !found.is_empty() {
            return Subject::Rotations(found);
        }
        if self.workflows.iter().any(|w| w.name == name) {
            return Subject::Workflow(name.to_owned());
        }
        Subject::Unknown
    }
}

fn millis<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn opt_secs<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Secs, true)),
        None => s.serialize_none(),
    }
}

/// `t` as RFC 3339 with whole seconds (text output).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `t` as RFC 3339 with milliseconds (history text output).
pub fn rfc3339_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

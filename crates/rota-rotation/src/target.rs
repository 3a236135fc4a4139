//! What the daemon schedules: one [`RotationTarget`] per (rotation block,
//! secret) and one [`WorkflowTarget`] per workflow block, and the
//! [`JobKind`] that names their scheduler jobs.
//!
//! The configuration (rota-engine reads it from HCL) builds these; rotation
//! never knows about HCL.

use std::fmt;
use std::time::Duration;

use rota_scheduler::{CatchUp, JobSpec, Policy, RetryPolicy, ScheduleError};

/// The `secret_name` of a secret KMS names itself (RAMCredentials: KMS
/// names it `acs/ram/user/<user>` at create). A target with this name
/// rotates under its live name once [`crate::Targets::with_live_names`]
/// found it by its resource address.
pub const AUTO_NAME: &str = "$Auto";

/// What to do when a rotation's retry budget is spent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OnFailure {
    /// A URL to POST a JSON notification to.
    pub webhook: Option<String>,
}

/// One secret under one rotation: what the daemon registers as a job.
#[derive(Debug, Clone, PartialEq)]
pub struct RotationTarget {
    /// The rotation block's name (`auto:<resource>` when implicit).
    pub rotation: String,
    /// The secret's name in KMS.
    pub secret: String,
    /// The resource address, when the secret is configured here.
    pub address: Option<String>,
    /// The secret's type, when the secret is configured here.
    pub secret_type: Option<String>,
    /// Schedule expression (any dialect of the scheduler).
    pub schedule: String,
    /// IANA time zone.
    pub timezone: String,
    /// Start window.
    pub window: Duration,
    /// Deterministic jitter across the window.
    pub jitter: bool,
    /// Missed slots.
    pub catch_up: CatchUp,
    /// A secret newly scheduled (no job for it in the scheduler's store yet)
    /// rotates at once instead of waiting for its first slot.
    pub rotate_immediately: bool,
    /// Plugin name.
    pub plugin: String,
    /// Plugin settings as written (defaults are filled in by the registry).
    pub settings: serde_json::Value,
    /// Attempts per slot.
    pub max_attempts: u32,
    /// First retry backoff.
    pub retry_backoff: Duration,
    /// Time one attempt may take.
    pub timeout: Duration,
    /// Notifications.
    pub on_failure: OnFailure,
    /// Whether it comes from `enable_automatic_rotation` rather than a block.
    pub implicit: bool,
    /// Watch the consumers after each rotation (the block's `verify`).
    pub verify: Option<crate::verify::VerifySpec>,
    /// Write `rotation.scheduled` this long before each slot.
    pub remind_before: Option<Duration>,
    /// Wait for the consumers before changing the credential ACSPrevious
    /// holds (the block's `adoption`).
    pub adoption: Option<crate::adoption::AdoptionSpec>,
}

impl RotationTarget {
    /// Whether its secret is still named `$Auto` (its live name is not
    /// known yet).
    pub fn awaits_live_name(&self) -> bool {
        self.secret == AUTO_NAME
    }

    /// The secret when named, else the resource address (what a message
    /// calls a target whose live name is not known yet).
    pub fn label(&self) -> &str {
        match &self.address {
            Some(a) if self.awaits_live_name() => a,
            _ => &self.secret,
        }
    }

    /// The scheduler job's kind.
    pub fn job(&self) -> JobKind {
        JobKind::Rotation(self.secret.clone())
    }

    /// The scheduler job name: `rotate:<secret>`.
    pub fn job_name(&self) -> String {
        self.job().name()
    }

    /// The scheduler job of this rotation.
    pub fn job_spec(&self) -> Result<JobSpec, ScheduleError> {
        let mut policy = Policy::default();
        policy.window = self.window;
        policy.jitter = self.jitter;
        policy.catch_up = self.catch_up;
        // A verified rotation soaks inside its run.
        policy.timeout = self.timeout
            + self.verify.as_ref().map_or(Duration::ZERO, |v| v.soak)
            + self.adoption.as_ref().map_or(Duration::ZERO, |a| a.timeout);
        policy.retry = RetryPolicy::new(
            self.max_attempts,
            self.retry_backoff,
            (self.retry_backoff * 64).max(Duration::from_secs(600)),
        );
        let payload = crate::jobs::JobPayload {
            rotation: self.rotation.clone(),
            secret: self.secret.clone(),
            plugin: self.plugin.clone(),
            settings: self.settings.clone(),
            timeout_ms: u64::try_from(self.timeout.as_millis()).ok(),
            verify: self.verify.clone(),
            adoption: self.adoption.clone(),
        };
        Ok(spec(
            self.job(),
            &self.schedule,
            &self.timezone,
            policy,
            self.rotate_immediately,
        )?
        .payload(serde_json::to_value(payload).unwrap_or_default()))
    }
}

/// A workflow block as the daemon schedules it (the script itself is run
/// through [`crate::daemon::WorkflowRunner`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowTarget {
    /// The block's label.
    pub name: String,
    /// The schedule expression.
    pub schedule: String,
    /// The IANA zone.
    pub timezone: String,
    /// What it runs, for display (a script's path).
    pub script: String,
    /// How long one run may take.
    pub timeout: Duration,
    /// A workflow newly scheduled runs at once instead of waiting for its
    /// first slot.
    pub run_immediately: bool,
}

impl WorkflowTarget {
    /// The scheduler job's kind.
    pub fn job(&self) -> JobKind {
        JobKind::Workflow(self.name.clone())
    }

    /// The scheduler job name: `workflow:<name>`.
    pub fn job_name(&self) -> String {
        self.job().name()
    }

    /// The scheduler job of this workflow.
    pub fn job_spec(&self) -> Result<JobSpec, ScheduleError> {
        let mut policy = Policy::default();
        policy.timeout = self.timeout;
        spec(
            self.job(),
            &self.schedule,
            &self.timezone,
            policy,
            self.run_immediately,
        )
    }
}

/// A job's spec, its schedule checked first (the scheduler would refuse it
/// later, without naming the target).
fn spec(
    job: JobKind,
    schedule: &str,
    timezone: &str,
    policy: Policy,
    start_now: bool,
) -> Result<JobSpec, ScheduleError> {
    let tz = rota_scheduler::parse_tz(timezone)?;
    rota_scheduler::Schedule::parse_in(schedule, timezone)?;
    Ok(JobSpec::new(job.name(), schedule.to_owned())
        .tz(tz)
        .policy(policy)
        .start_now(start_now))
}

/// What one of Rota's scheduler jobs does. In the scheduler's store (and in
/// `rota history`) a job is named `rotate:<secret>` or `workflow:<name>`;
/// [`JobKind::name`] and [`JobKind::parse`] are the only places that know.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobKind {
    /// Rotates the secret of that name.
    Rotation(String),
    /// Runs the workflow of that name.
    Workflow(String),
}

impl JobKind {
    const ROTATION: &'static str = "rotate:";
    const WORKFLOW: &'static str = "workflow:";

    /// The job's name in the scheduler's store.
    pub fn name(&self) -> String {
        self.to_string()
    }

    /// The kind of a job named `name`; `None` for a job that is not Rota's.
    pub fn parse(name: &str) -> Option<Self> {
        if let Some(s) = name.strip_prefix(Self::ROTATION) {
            Some(Self::Rotation(s.to_owned()))
        } else {
            name.strip_prefix(Self::WORKFLOW)
                .map(|w| Self::Workflow(w.to_owned()))
        }
    }

    /// The secret or workflow name.
    pub fn subject(&self) -> &str {
        match self {
            Self::Rotation(s) | Self::Workflow(s) => s,
        }
    }

    /// Whether it is a workflow's job.
    pub fn is_workflow(&self) -> bool {
        matches!(self, Self::Workflow(_))
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rotation(s) => write!(f, "{}{s}", Self::ROTATION),
            Self::Workflow(w) => write!(f, "{}{w}", Self::WORKFLOW),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::JobKind;

    #[test]
    fn job_names_round_trip() {
        for kind in [
            JobKind::Rotation("app/db".into()),
            JobKind::Workflow("compliance".into()),
            JobKind::Rotation("weird:name".into()),
        ] {
            assert_eq!(JobKind::parse(&kind.name()), Some(kind.clone()));
        }
        assert_eq!(JobKind::parse("other:x"), None);
        assert_eq!(JobKind::Rotation("a".into()).name(), "rotate:a");
        assert_eq!(JobKind::Workflow("w".into()).name(), "workflow:w");
    }
}

//! Jobs: what the caller registers, what a handler receives and returns.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// What to do with slots that passed while no runner could start them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Run once for all missed slots (for the latest of them).
    #[default]
    Once,
    /// Record the missed slots and wait for the next one.
    Skip,
}

/// Retries of a failed run: exponential backoff with jitter, bounded attempts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts per slot, the first included (at least 1).
    pub max_attempts: u32,
    /// Backoff before the second attempt.
    #[serde(with = "millis")]
    pub initial_backoff: Duration,
    /// Backoff ceiling.
    #[serde(with = "millis")]
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(600),
        }
    }
}

impl RetryPolicy {
    /// A policy with `max_attempts` attempts and the given backoff bounds.
    pub fn new(max_attempts: u32, initial_backoff: Duration, max_backoff: Duration) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            initial_backoff,
            max_backoff: max_backoff.max(initial_backoff),
        }
    }

    /// The wait after failed attempt number `attempt` (1-based): doubling
    /// from `initial_backoff`, capped at `max_backoff`, then "equal jitter"
    /// (between half and all of it) drawn deterministically from `seed`.
    pub fn backoff(&self, attempt: u32, seed: u64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        let full = self
            .initial_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff);
        let half = full / 2;
        let spread = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        let extra = if spread == 0 { 0 } else { seed % (spread + 1) };
        half + Duration::from_millis(extra)
    }
}

/// How a job runs: everything except its name, schedule and payload.
///
/// Policies are interned by the runner, so a million jobs that share one
/// policy hold one copy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Policy {
    /// Runs may start only inside `[slot, slot + window)`. Zero: start at the slot.
    #[serde(with = "millis")]
    pub window: Duration,
    /// Spread the start across the window by a stable hash of the job name.
    pub jitter: bool,
    /// Slots missed while down.
    pub catch_up: CatchUp,
    /// A slot not started this long after it is recorded as missed. `None`
    /// with a window means the window's end; `None` without one: no deadline.
    #[serde(with = "opt_millis")]
    pub deadline: Option<Duration>,
    /// A run still going after this long is stopped and counts as failed.
    #[serde(with = "millis")]
    pub timeout: Duration,
    /// Retries of failed runs.
    pub retry: RetryPolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            window: Duration::ZERO,
            jitter: true,
            catch_up: CatchUp::Once,
            deadline: None,
            timeout: Duration::from_secs(15 * 60),
            retry: RetryPolicy::default(),
        }
    }
}

impl Policy {
    /// The deadline in effect: explicit, else the window when there is one.
    pub fn effective_deadline(&self) -> Option<Duration> {
        match (self.deadline, self.window.is_zero()) {
            (Some(d), _) => Some(d),
            (None, false) => Some(self.window),
            (None, true) => None,
        }
    }

    /// This job's fixed offset into its window, in milliseconds.
    pub fn jitter_offset_ms(&self, name: &str) -> i64 {
        let window = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        if !self.jitter || window == 0 {
            return 0;
        }
        i64::try_from(stable_hash(name.as_bytes()) % window).unwrap_or(0)
    }
}

/// A job to register: a stable name, a schedule in a time zone, a payload the
/// caller defines, and a [`Policy`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobSpec {
    /// Stable, unique name (for rotations, e.g. `rotation/<secret>`).
    pub name: String,
    /// The schedule expression (see [`crate::schedule`]).
    pub schedule: String,
    /// The schedule's time zone.
    pub tz: Tz,
    /// Caller-defined data handed to the handler on every run.
    pub payload: serde_json::Value,
    /// How the job runs.
    pub policy: Policy,
    /// When the job is new, its first slot is the moment it is registered
    /// instead of the first fire time after it (AWS's "rotate immediately").
    /// A job already in the store is not affected, nor is a job whose
    /// schedule changed: it moves to the new schedule's next fire time.
    pub start_now: bool,
}

impl JobSpec {
    /// A job with the default policy, UTC, and a null payload.
    pub fn new(name: impl Into<String>, schedule: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            schedule: schedule.into(),
            tz: Tz::UTC,
            payload: serde_json::Value::Null,
            policy: Policy::default(),
            start_now: false,
        }
    }

    /// Makes a new job due at once (see [`JobSpec::start_now`]).
    #[must_use]
    pub fn start_now(mut self, start_now: bool) -> Self {
        self.start_now = start_now;
        self
    }

    /// Sets the time zone.
    #[must_use]
    pub fn tz(mut self, tz: Tz) -> Self {
        self.tz = tz;
        self
    }

    /// Sets the payload.
    #[must_use]
    pub fn payload(mut self, payload: serde_json::Value) -> Self {
        self.payload = payload;
        self
    }

    /// Sets the start window.
    #[must_use]
    pub fn window(mut self, window: Duration) -> Self {
        self.policy.window = window;
        self
    }

    /// Turns jitter across the window on or off.
    #[must_use]
    pub fn jitter(mut self, jitter: bool) -> Self {
        self.policy.jitter = jitter;
        self
    }

    /// Sets the catch-up behaviour.
    #[must_use]
    pub fn catch_up(mut self, catch_up: CatchUp) -> Self {
        self.policy.catch_up = catch_up;
        self
    }

    /// Sets the start deadline.
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.policy.deadline = Some(deadline);
        self
    }

    /// Sets the per-run timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.policy.timeout = timeout;
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.policy.retry = retry;
        self
    }

    /// Replaces the whole policy.
    #[must_use]
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }
}

/// One run handed to the handler.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobRun {
    /// The job's name.
    pub name: Arc<str>,
    /// The schedule slot this run serves (stable across retries: derive
    /// idempotency tokens from it).
    pub slot: DateTime<Utc>,
    /// 1 for the first attempt at this slot, 2 for the first retry, …
    pub attempt: u32,
    /// When this attempt was due (slot plus jitter, or the retry time).
    pub due: DateTime<Utc>,
    /// The payload registered with the job.
    pub payload: serde_json::Value,
    /// This run's lease: whether this runner still holds the slot.
    pub lease: RunLease,
    /// Events the handler reports about this run: stored with the run's
    /// end, in the same transaction (see [`crate::outbox`]).
    pub events: EventBuffer,
}

/// Events a handler collects during a run (cloneable; shared).
#[derive(Debug, Clone, Default)]
pub struct EventBuffer(Arc<std::sync::Mutex<Vec<crate::outbox::NewEvent>>>);

impl EventBuffer {
    /// Adds an event.
    pub fn push(&self, event: crate::outbox::NewEvent) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(event);
    }

    /// Takes the events collected so far.
    pub fn take(&self) -> Vec<crate::outbox::NewEvent> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// How a run ended, for [`RunEvents`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunEnd<'a> {
    /// The job.
    pub name: &'a str,
    /// The slot.
    pub slot: DateTime<Utc>,
    /// The attempt.
    pub attempt: u32,
    /// How it ended.
    pub outcome: crate::store::Outcome,
    /// The redacted error.
    pub error: Option<&'a str>,
    /// Whether the job needed attention before this run.
    pub was_attention: bool,
    /// Whether it needs attention now (the retry budget is spent).
    pub needs_attention: bool,
    /// The job's payload.
    pub payload: &'a serde_json::Value,
    /// When it ended.
    pub ended: DateTime<Utc>,
}

/// Turns run ends into events (needs attention, recovered), stored with
/// the run's end in one transaction.
pub trait RunEvents: Send + Sync + 'static {
    /// The events about `end`.
    fn ended(&self, end: &RunEnd<'_>) -> Vec<crate::outbox::NewEvent>;
}

/// A [`RunEvents`] in a [`crate::RunnerConfig`].
#[derive(Clone)]
pub struct RunEventsHook(pub Arc<dyn RunEvents>);

impl fmt::Debug for RunEventsHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RunEventsHook")
    }
}

/// The lease of a run, renewed by the runner's heartbeat while the run
/// lasts. A handler about to make an irreversible last step (a rotation's
/// promotion) checks [`RunLease::held`]: once the lease could not be renewed
/// and has run out, another runner may have taken the slot over.
#[derive(Clone)]
pub struct RunLease {
    until_ms: Arc<std::sync::atomic::AtomicI64>,
    clock: Arc<dyn crate::Clock>,
}

impl fmt::Debug for RunLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunLease")
            .field("until_ms", &self.until_ms())
            .finish()
    }
}

impl RunLease {
    /// A lease until `until_ms` on `clock`.
    pub fn new(until_ms: i64, clock: Arc<dyn crate::Clock>) -> Self {
        Self {
            until_ms: Arc::new(std::sync::atomic::AtomicI64::new(until_ms)),
            clock,
        }
    }

    /// A lease that never runs out (runs outside a runner).
    pub fn unbounded() -> Self {
        Self::new(i64::MAX, Arc::new(crate::SystemClock::new()))
    }

    /// Until when it holds (Unix ms).
    pub fn until_ms(&self) -> i64 {
        self.until_ms.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Extends it (the heartbeat renewed it in the store).
    pub fn extend(&self, until_ms: i64) {
        self.until_ms
            .fetch_max(until_ms, std::sync::atomic::Ordering::SeqCst);
    }

    /// Marks it lost (the store says another runner holds the slot).
    pub fn lose(&self) {
        self.until_ms
            .store(i64::MIN, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether it still holds now.
    pub fn held(&self) -> bool {
        self.clock.now().timestamp_millis() < self.until_ms()
    }
}

/// A failed run, as returned by a handler.
///
/// The message is written to the run history verbatim: handlers must return
/// redacted text that never contains secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RunError {
    message: String,
    retryable: bool,
}

impl RunError {
    /// A failure worth retrying (throttling, a timeout, a flaky target).
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure that retrying will not fix: the job goes straight to
    /// *needs attention*.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }

    /// The (redacted) message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the runner may retry.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl From<String> for RunError {
    fn from(message: String) -> Self {
        Self::retryable(message)
    }
}

impl From<&str> for RunError {
    fn from(message: &str) -> Self {
        Self::retryable(message)
    }
}

/// The future a [`Handler`] returns.
pub type RunFuture = Pin<Box<dyn Future<Output = Result<(), RunError>> + Send + 'static>>;

/// Executes runs. Implemented for every `Fn(JobRun) -> impl Future<Output =
/// Result<(), RunError>>` closure that is `Send + Sync + 'static`.
pub trait Handler: Send + Sync + 'static {
    /// Starts one run.
    fn call(&self, run: JobRun) -> RunFuture;
}

impl<F, Fut> Handler for F
where
    F: Fn(JobRun) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), RunError>> + Send + 'static,
{
    fn call(&self, run: JobRun) -> RunFuture {
        Box::pin(self(run))
    }
}

impl fmt::Debug for dyn Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handler")
    }
}

/// A stable 64-bit hash (FNV-1a with a SplitMix64 finaliser): the same on
/// every platform, process and release, unlike `RandomState`.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

mod opt_millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|o| o.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_hash_is_pinned() {
        // Changing the hash would move every job's jitter offset: pin it.
        assert_eq!(stable_hash(b""), stable_hash(b""));
        assert_ne!(stable_hash(b"a"), stable_hash(b"b"));
        assert_eq!(stable_hash(b"rotation/db-password"), 0xed3e_df5d_23d4_00b9);
    }

    #[test]
    fn backoff_doubles_caps_and_jitters_within_bounds() {
        let p = RetryPolicy::new(5, Duration::from_secs(10), Duration::from_secs(60));
        for (attempt, full) in [(1, 10), (2, 20), (3, 40), (4, 60), (9, 60)] {
            for seed in [0, 1, 7_777, u64::MAX] {
                let d = p.backoff(attempt, seed);
                assert!(d >= Duration::from_secs(full) / 2, "{attempt} {seed} {d:?}");
                assert!(d <= Duration::from_secs(full), "{attempt} {seed} {d:?}");
            }
        }
    }

    #[test]
    fn policy_round_trips_through_json() {
        let p = Policy {
            deadline: Some(Duration::from_millis(1500)),
            ..Policy::default()
        };
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(serde_json::from_str::<Policy>(&text).unwrap(), p);
    }
}

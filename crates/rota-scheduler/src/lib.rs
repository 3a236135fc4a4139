//! Rota's durable cron scheduler.
//!
//! Every rotation and every lifecycle workflow in Rota runs on this crate. It
//! has four parts, one module each:
//!
//! - [`schedule`]: parse 5-field POSIX cron, 6-field cron with seconds,
//!   `@daily`-style macros, Alibaba intervals (`7d`) and one-shot times into a
//!   [`Schedule`] with an explicit IANA time zone, and compute fire times with
//!   the pure [`Schedule::next_fire`] (DST rules included).
//! - [`clock`]: the [`Clock`] the runner reads and sleeps on; a
//!   [`SystemClock`] and a [`ManualClock`] for tests.
//! - [`store`]: the durable [`JobStore`] — pending slot, attempts, state,
//!   lease and run history per job — with [`SqliteStore`] as the default.
//! - [`runner`]: the [`Runner`], which keeps a min-heap of due times, sleeps
//!   until the earliest, claims slots with a compare-and-set lease so two
//!   processes never run one slot, and wraps each run with a timeout, panic
//!   catching, retries with backoff and jitter, and *needs attention*.
//!
//! Jobs ([`JobSpec`]) have stable names, a payload the caller defines, and a
//! [`Policy`]: start window with deterministic per-job jitter, `catch_up`,
//! deadline, timeout and retry budget.
//!
//! The crate never prints, never reads the environment and never installs a
//! tracing subscriber; it reports through `tracing` and [`Event`]s. Error
//! text returned by handlers is stored verbatim in the run history, so
//! handlers must return redacted messages that contain no secret material.

#![forbid(unsafe_code)]

pub mod clock;
pub mod job;
pub mod outbox;
mod outbox_pg;
pub mod pg;
pub mod runner;
pub mod schedule;
pub mod store;
pub mod store_pg;

pub use clock::{Clock, ManualClock, SystemClock};
pub use job::{
    CatchUp, EventBuffer, Handler, JobRun, JobSpec, Policy, RetryPolicy, RunEnd, RunError,
    RunEvents,
};
pub use outbox::{NewEvent, Outbox};
pub use runner::{Event, JobCounts, JobStatus, Runner, RunnerConfig, RunnerError, ShutdownReport};
pub use schedule::{Schedule, ScheduleError, parse_tz};
pub use store::{JobStore, Outcome, Retention, RunRecord, RunState, SqliteStore, StoreError};
pub use store_pg::PgStore;

/// The first fire time of `schedule` strictly after `after`: the pure
/// function the runner is built on. Same as [`Schedule::next_fire`].
pub fn next_fire(
    schedule: &Schedule,
    after: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    schedule.next_fire(after)
}

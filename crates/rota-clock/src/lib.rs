//! The one way Rota reads the time.
//!
//! Every read of the wall clock in Rota's libraries and binary goes through
//! a [`Clock`]; this crate holds the only direct reads of the system time
//! (the tidy test `tidy_wall_clock_read_only_through_rota_clock` enforces
//! it). Durations are measured with the monotonic [`std::time::Instant`],
//! which needs no clock of ours.
//!
//! - [`SystemClock`]: the real time, or — for tests and demonstrations — a
//!   clock that starts at a fixed instant and runs on from it at the real
//!   pace ([`SystemClock::starting_at`]; the `rota` binary builds it from
//!   `ROTA_TEST_NOW`). It waits on tokio timers.
//! - [`ManualClock`]: a clock that moves only when told to, and wakes every
//!   sleeper whose deadline it passes. Tests and simulations.
//!
//! It also holds the one duration grammar ([`parse_duration`]).
//!
//! Why a crate of its own: the scheduler, the embedded cloud and the client
//! all need the same notion of "now", and none of them may depend on the
//! others; a leaf crate with two small dependencies is the smallest home
//! that all of them can reach.
#![forbid(unsafe_code)]

pub mod duration;

pub use duration::{DurationError, parse_duration};

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant, SystemTime};

use chrono::{DateTime, Duration, Utc};
use tokio::sync::watch;

/// A boxed future returned by [`Clock::sleep_until`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of wall-clock time that can also wait.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;

    /// A future that completes once `now() >= deadline`.
    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep;

    /// [`Clock::now`] as a [`SystemTime`] (credential expiry checks).
    fn system_time(&self) -> SystemTime {
        SystemTime::from(self.now())
    }
}

/// The system's wall clock, waiting on tokio timers; optionally started at
/// a fixed instant from which it runs on at the real pace.
///
/// Timers run on the monotonic clock; so that a stepped wall clock (NTP, a
/// suspended VM) cannot delay a fire indefinitely, one sleep lasts at most
/// [`SystemClock::MAX_NAP`] before the clock is read again. That is one
/// wake-up a minute while idle, independent of the number of jobs.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock {
    /// `Some((start, at))`: the clock read `start` at the monotonic instant
    /// `at`, and runs on from there.
    origin: Option<(DateTime<Utc>, Instant)>,
}

impl SystemClock {
    /// The longest single timer sleep.
    pub const MAX_NAP: StdDuration = StdDuration::from_secs(60);

    /// The real time.
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock that reads `start` now and runs on from it at the real pace
    /// (measured on the monotonic clock, so it never jumps with the
    /// system's). For tests that need "now" to be a given instant while
    /// timers still fire.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self {
            origin: Some((start, Instant::now())),
        }
    }

    /// The instant this clock was started at, when it was
    /// ([`SystemClock::starting_at`]).
    pub fn fixed_start(&self) -> Option<DateTime<Utc>> {
        self.origin.map(|(start, _)| start)
    }

    /// This clock as a shareable trait object.
    pub fn shared(self) -> Arc<dyn Clock> {
        Arc::new(self)
    }
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        match self.origin {
            None => Utc::now(),
            Some((start, at)) => {
                let elapsed = Duration::from_std(at.elapsed()).unwrap_or(Duration::MAX);
                start.checked_add_signed(elapsed).unwrap_or(start)
            }
        }
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep {
        let clock = *self;
        Box::pin(async move {
            loop {
                let left = deadline - clock.now();
                let Ok(left) = left.to_std() else { return };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(Self::MAX_NAP)).await;
            }
        })
    }

    fn system_time(&self) -> SystemTime {
        match self.origin {
            None => SystemTime::now(),
            Some(_) => SystemTime::from(self.now()),
        }
    }
}

/// A clock that moves only when [`ManualClock::set`] or
/// [`ManualClock::advance`] is called; sleepers wake when it passes their
/// deadline. Clones share one time. For tests, and for simulations.
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<DateTime<Utc>>>,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &*self.now.borrow())
            .finish()
    }
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Arc::new(watch::Sender::new(start)),
        }
    }

    /// Moves the clock to `to` (never backwards: an earlier `to` is ignored).
    pub fn set(&self, to: DateTime<Utc>) {
        self.now.send_if_modified(|now| {
            if to > *now {
                *now = to;
                true
            } else {
                false
            }
        });
    }

    /// Moves the clock forward by `by` (a negative `by` is ignored).
    pub fn advance(&self, by: Duration) {
        let to = *self.now.borrow() + by;
        self.set(to);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep {
        let mut rx = self.now.subscribe();
        Box::pin(async move {
            loop {
                if *rx.borrow_and_update() >= deadline {
                    return;
                }
                if rx.changed().await.is_err() {
                    // The clock is gone, so time never moves again.
                    std::future::pending::<()>().await;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_when_advanced() {
        let start = at(1_000);
        let clock = ManualClock::new(start);
        let sleeper = tokio::spawn(clock.sleep_until(start + Duration::seconds(10)));
        clock.advance(Duration::seconds(5));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.clone().advance(Duration::seconds(5));
        sleeper.await.unwrap();
        assert_eq!(clock.now(), start + Duration::seconds(10));
    }

    #[test]
    fn manual_clock_never_goes_back() {
        let clock = ManualClock::new(at(1_000));
        clock.set(at(10));
        clock.advance(Duration::seconds(-5));
        assert_eq!(clock.now(), at(1_000));
    }

    #[test]
    fn a_started_system_clock_runs_on_from_its_start() {
        let start = at(1_798_761_570); // 2026-12-31T23:59:30Z
        let clock = SystemClock::starting_at(start);
        let now = clock.now();
        assert!(now >= start);
        // Monotonic: it never reads less than it did.
        assert!(clock.now() >= now);
        assert_eq!(clock.fixed_start(), Some(start));
        assert!(clock.system_time() >= SystemTime::from(start));
        assert!(SystemClock::new().fixed_start().is_none());
    }

    #[tokio::test]
    async fn a_started_system_clock_sleeps_until_its_own_deadline() {
        // 2033: a sleep measured against the system's time would not end.
        let start = at(2_000_000_000);
        let clock = SystemClock::starting_at(start);
        clock.sleep_until(start + Duration::milliseconds(20)).await;
        assert!(clock.now() >= start + Duration::milliseconds(20));
    }
}

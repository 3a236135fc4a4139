//! Clocks: where the runner gets the time and how it waits.
//!
//! The runner never polls: it asks its [`Clock`] to sleep until the earliest
//! due time (or until woken by a registration). [`SystemClock`] is the real
//! one; [`ManualClock`] is a test clock that only moves when told to, and
//! wakes every sleeper whose deadline it passes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration as StdDuration;

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
}

/// The system's wall clock, waiting on tokio timers.
///
/// Timers run on the monotonic clock; so that a stepped wall clock (NTP, a
/// suspended VM) cannot delay a fire indefinitely, one sleep lasts at most
/// [`SystemClock::MAX_NAP`] before the wall clock is read again. That is one
/// wake-up a minute while idle, independent of the number of jobs.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// The longest single timer sleep.
    pub const MAX_NAP: StdDuration = StdDuration::from_secs(60);
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> Sleep {
        Box::pin(async move {
            loop {
                let left = deadline - Utc::now();
                let Ok(left) = left.to_std() else { return };
                if left.is_zero() {
                    return;
                }
                tokio::time::sleep(left.min(Self::MAX_NAP)).await;
            }
        })
    }
}

/// A clock that moves only when [`ManualClock::set`] or
/// [`ManualClock::advance`] is called; sleepers wake when it passes their
/// deadline. For tests, and for simulations.
pub struct ManualClock {
    now: watch::Sender<DateTime<Utc>>,
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
            now: watch::Sender::new(start),
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

    /// Moves the clock forward by `by`.
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

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_when_advanced() {
        let start = DateTime::from_timestamp(1_000, 0).unwrap();
        let clock = std::sync::Arc::new(ManualClock::new(start));
        let sleeper = tokio::spawn(clock.sleep_until(start + Duration::seconds(10)));
        clock.advance(Duration::seconds(5));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::seconds(5));
        sleeper.await.unwrap();
        assert_eq!(clock.now(), start + Duration::seconds(10));
    }
}

//! What Rota's test suites share (a dev-dependency only).
//!
//! **The suite's base instant.** No test reads the wall clock: a test that
//! needs "now" takes [`base_now`], which is `ROTA_TEST_NOW` (an RFC 3339
//! instant) when the environment sets it, else [`DEFAULT_BASE`]. `cargo
//! xtask ci` runs the time-sensitive suites again with `ROTA_TEST_NOW` at
//! hostile moments (the last seconds of a year, minutes before a DST
//! change) so that a test that only passes at some hours fails in CI, not
//! on a user's machine at 23:30. Tests that run the `rota` binary pass the
//! same instant to it as `ROTA_TEST_NOW` ([`base_rfc3339`]); the binary's
//! clock starts there and runs on.
//!
//! Tests that pin their own instants (a DST fixture, a schedule's known
//! answers) keep them: they never depended on the wall clock.
#![forbid(unsafe_code)]

use chrono::{DateTime, SecondsFormat, Utc};
pub use rota_clock::{Clock, ManualClock, SystemClock};

/// The variable that moves the suite's base instant (and the `rota`
/// binary's clock).
pub const TEST_NOW_VAR: &str = "ROTA_TEST_NOW";

/// The base instant when `ROTA_TEST_NOW` is not set: an ordinary weekday
/// morning, far from midnight, the end of a month and any DST change.
pub const DEFAULT_BASE: &str = "2026-06-16T10:00:00Z";

/// The suite's base instant: `ROTA_TEST_NOW`, else [`DEFAULT_BASE`].
///
/// # Panics
///
/// When `ROTA_TEST_NOW` is set but not an RFC 3339 instant: the run is
/// misconfigured, and every test says so.
pub fn base_now() -> DateTime<Utc> {
    let text = std::env::var(TEST_NOW_VAR)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_BASE.to_owned());
    parse(&text).unwrap_or_else(|| {
        panic!("{TEST_NOW_VAR}={text:?} is not an RFC 3339 instant such as {DEFAULT_BASE}")
    })
}

/// [`base_now`] as RFC 3339 text with seconds, e.g. for `ROTA_TEST_NOW`
/// of a child process.
pub fn base_rfc3339() -> String {
    rfc3339(base_now())
}

/// A manual clock standing at [`base_now`].
pub fn manual_clock() -> ManualClock {
    ManualClock::new(base_now())
}

/// A system clock started at [`base_now`], running on at the real pace.
pub fn system_clock() -> SystemClock {
    SystemClock::starting_at(base_now())
}

/// An RFC 3339 instant; `None` if `text` is not one.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `t` as RFC 3339 text with whole seconds and `Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_base_parses() {
        assert_eq!(rfc3339(parse(DEFAULT_BASE).unwrap()), DEFAULT_BASE);
        assert_eq!(
            rfc3339(parse("2027-03-14T01:55:00-05:00").unwrap()),
            "2027-03-14T06:55:00Z"
        );
        assert!(parse("tomorrow").is_none());
    }
}

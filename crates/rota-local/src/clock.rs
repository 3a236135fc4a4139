//! Time, injectable: deletion windows, rotation dates, creation times and the
//! server's timestamp window all read a [`Clock`] (Rota's one notion of
//! time, from `rota-clock`), so tests advance a [`ManualClock`] instead of
//! sleeping; `rota local serve` passes the clock `ROTA_TEST_NOW` asks for.

use chrono::{DateTime, Utc};

pub use rota_clock::{Clock, ManualClock, SystemClock};

/// Formats a time as the API does: `YYYY-MM-DDTHH:MM:SSZ`.
pub fn wire_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses a wire time (`YYYY-MM-DDTHH:MM:SSZ`).
pub fn parse_wire_time(s: &str) -> Option<DateTime<Utc>> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%SZ")
        .ok()
        .map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(parse_wire_time("2024-01-01T00:00:00Z").unwrap());
        assert_eq!(wire_time(c.now()), "2024-01-01T00:00:00Z");
        c.advance(chrono::Duration::days(7));
        assert_eq!(wire_time(c.now()), "2024-01-08T00:00:00Z");
    }
}

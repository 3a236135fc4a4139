//! Time, injectable: deletion windows, rotation dates, creation times and the
//! server's timestamp window all read a [`Clock`] (Rota's one notion of
//! time, from `rota-clock`), so tests advance a [`ManualClock`] instead of
//! sleeping; `rota local serve` passes the clock `ROTA_TEST_NOW` asks for.

use chrono::{DateTime, Datelike as _, NaiveDate, Timelike as _, Utc};

pub use rota_clock::{Clock, ManualClock, SystemClock};

const WIRE_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// Formats a time as the API does: `YYYY-MM-DDTHH:MM:SSZ`.
///
/// Every answer carries such times and every request one, so the common
/// case (years 0–9999) is written digit by digit rather than through a
/// format string; other years go through chrono's `%Y`.
pub fn wire_time(t: DateTime<Utc>) -> String {
    match wire_time_bytes(t) {
        Some(b) => b.iter().map(|b| char::from(*b)).collect(),
        None => t.format(WIRE_FORMAT).to_string(),
    }
}

/// [`wire_time`] on the stack, for years 0–9999 (`None` for others).
pub fn wire_time_bytes(t: DateTime<Utc>) -> Option<[u8; 20]> {
    let year = t.year();
    if !(0..=9999).contains(&year) {
        return None;
    }
    let mut out = [0u8; 20];
    let mut put = |at: usize, v: u32, width: usize| {
        let mut v = v;
        for i in (0..width).rev() {
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year.unsigned_abs(), 4);
    put(5, t.month(), 2);
    put(8, t.day(), 2);
    put(11, t.hour(), 2);
    put(14, t.minute(), 2);
    put(17, t.second(), 2);
    out[4] = b'-';
    out[7] = b'-';
    out[10] = b'T';
    out[13] = b':';
    out[16] = b':';
    out[19] = b'Z';
    Some(out)
}

/// Parses a wire time (`YYYY-MM-DDTHH:MM:SSZ`): the exact 20-character
/// form digit by digit, anything else as chrono's format parser reads it.
pub fn parse_wire_time(s: &str) -> Option<DateTime<Utc>> {
    if let Some(t) = parse_exact(s.as_bytes()) {
        return Some(t);
    }
    chrono::NaiveDateTime::parse_from_str(s, WIRE_FORMAT)
        .ok()
        .map(|n| n.and_utc())
}

fn parse_exact(b: &[u8]) -> Option<DateTime<Utc>> {
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let date = NaiveDate::from_ymd_opt(i32::try_from(num(0, 4)?).ok()?, num(5, 7)?, num(8, 10)?)?;
    let (h, m, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    // chrono's parser accepts a leap second (60) as such; so does this.
    let time = if sec == 60 {
        chrono::NaiveTime::from_hms_milli_opt(h, m, 59, 1000)?
    } else {
        chrono::NaiveTime::from_hms_opt(h, m, sec)?
    };
    Some(date.and_time(time).and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_wire_time_paths_agree_with_chrono() {
        let slow_fmt = |t: DateTime<Utc>| t.format(WIRE_FORMAT).to_string();
        let slow_parse = |s: &str| {
            chrono::NaiveDateTime::parse_from_str(s, WIRE_FORMAT)
                .ok()
                .map(|n| n.and_utc())
        };
        for secs in [
            0i64,
            59,
            951_782_400,
            1_781_604_000,
            4_102_444_799,
            253_402_300_799,
        ] {
            let t = DateTime::from_timestamp(secs, 0).unwrap();
            assert_eq!(wire_time(t), slow_fmt(t));
            assert_eq!(parse_wire_time(&wire_time(t)), Some(t));
        }
        for s in [
            "2026-06-16T10:00:00Z",
            "2024-02-29T23:59:59Z",
            "2023-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-06-16T24:00:00Z",
            "2026-06-16T10:60:00Z",
            "2026-06-16T23:59:60Z",
            "2026-06-16 10:00:00Z",
            "2026-06-16T10:00:00",
            "2026-6-16T10:00:00Z",
            "+2026-06-16T10:00:00Z",
            "２026-06-16T10:00:00Z",
            "",
        ] {
            assert_eq!(parse_wire_time(s), slow_parse(s), "{s:?}");
        }
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(parse_wire_time("2024-01-01T00:00:00Z").unwrap());
        assert_eq!(wire_time(c.now()), "2024-01-01T00:00:00Z");
        c.advance(chrono::Duration::days(7));
        assert_eq!(wire_time(c.now()), "2024-01-08T00:00:00Z");
    }
}

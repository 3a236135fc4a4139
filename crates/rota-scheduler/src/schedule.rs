//! Schedules: parsing every supported dialect and computing fire times.
//!
//! A [`Schedule`] is an expression plus an explicit IANA time zone. Fire times
//! are computed by [`Schedule::next_fire`], a pure function of the schedule and
//! an instant: no clock is read here.
//!
//! # Dialects
//!
//! | dialect | example | notes |
//! |---|---|---|
//! | 5-field POSIX cron (default) | `30 2 * * 1-5` | minute hour day-of-month month day-of-week; Sunday is `0` or `7` |
//! | 6-field cron with seconds | `0 30 2 * * 1-5` | a seconds field first, otherwise exactly the 5-field dialect |
//! | macros | `@daily` | `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly` |
//! | Alibaba intervals | `7d`, `12h`, `30m`, `604800s` | elapsed time, see below |
//! | anchored intervals | `7d from 2026-12-05T01:05:00Z` | every interval counted from an instant |
//! | one-shot time | `2026-03-08T02:30:00Z`, `2026-03-08T02:30` | with an offset: that instant; without: wall-clock time in the zone |
//!
//! Cron fields accept numbers, three-letter names for months and weekdays
//! (`jan`, `mon`, case-insensitive), `*`, `?` (same as `*`, day fields only),
//! lists `a,b`, ranges `a-b`, steps `*/n`, `a-b/n` and `a/n` (from `a` to the
//! end of the field). Quartz extensions (`L`, `W`, `#`) are rejected with an
//! error naming the field.
//!
//! When both day-of-month and day-of-week are restricted (neither starts with
//! `*`), a day matches if *either* matches, as in Vixie cron and Kubernetes:
//! `0 0 1 * 1` fires on the 1st of the month and on every Monday. As in Vixie
//! cron, a field such as `*/2` counts as unrestricted for this rule.
//!
//! # Time zones and daylight saving time
//!
//! Cron fields are matched against the wall clock of the schedule's zone.
//! A wall-clock time skipped by a spring-forward transition fires once, at the
//! first instant after the gap. A wall-clock time repeated by a fall-back
//! transition fires once, at its first occurrence, for schedules with a
//! specific hour (`30 2 * * *`, `@daily`); schedules whose hour field is `*`
//! (hourly or more often: `*/15 * * * *`, `@hourly`) fire normally through
//! both occurrences of the repeated hour. This is Vixie cron's and cronie's
//! rule: only jobs at a specific time (or coarser than hourly) are treated
//! specially, so neither kind runs twice for one intended time nor loses an
//! hour of runs.
//!
//! # Intervals
//!
//! An interval of `n` seconds fires at every instant whose Unix time is a
//! multiple of `n`: a bare interval is anchored to the Unix epoch, so it is
//! deterministic across restarts and processes without any stored anchor, and
//! the time zone does not affect it (`1d` fires at 00:00 UTC). `n from T`
//! counts from the instant `T` instead (`T + k·n`): Rota anchors a rotation's
//! interval at the secret's last rotation, as KMS counts
//! `NextRotationDate`. Spread jobs that share an interval with a window and
//! jitter.
//!
//! # Implementation
//!
//! The cron dialects are translated into the 6-field syntax of the `cron`
//! crate (explicit value lists, Sunday renumbered to 1) and evaluated on the
//! *naive* wall clock of the zone; this module then maps wall-clock candidates
//! to instants with the DST rules above. The `cron` crate ANDs day-of-month
//! and day-of-week, so the Vixie OR rule is served by two translated schedules
//! whose next times are merged.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// An error parsing a schedule expression or a time zone.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The expression was empty or only whitespace.
    #[error("empty schedule expression")]
    Empty,
    /// A cron expression had the wrong number of fields.
    #[error(
        "expected 5 fields (minute hour day-of-month month day-of-week) or 6 fields (second first), found {found} in `{expr}`"
    )]
    FieldCount {
        /// How many whitespace-separated fields were found.
        found: usize,
        /// The expression as given.
        expr: String,
    },
    /// One cron field was invalid.
    #[error("invalid {field} field `{value}`: {reason}")]
    Field {
        /// The field's name, e.g. `day-of-week`.
        field: &'static str,
        /// The field's text as given.
        value: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// An `@` macro that is not supported.
    #[error(
        "unsupported macro `{name}`: allowed are @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly"
    )]
    UnknownMacro {
        /// The macro as given.
        name: String,
    },
    /// An interval such as `7d` that could not be used.
    #[error("invalid interval `{value}`: {reason}")]
    Interval {
        /// The interval as given.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A one-shot time that could not be parsed.
    #[error(
        "invalid one-shot time `{value}`: expected RFC 3339 such as 2026-03-08T02:30:00Z or a wall-clock time such as 2026-03-08T02:30"
    )]
    OneShot {
        /// The time as given.
        value: String,
    },
    /// A time zone name that is not in the IANA database.
    #[error("unknown time zone `{zone}`: expected an IANA name such as UTC or Europe/Berlin")]
    UnknownTimeZone {
        /// The zone as given.
        zone: String,
    },
    /// The translated expression was rejected by the cron engine (a bug).
    #[error("cron engine rejected translated expression `{expr}`")]
    Engine {
        /// The translated 6-field expression.
        expr: String,
        /// The engine's error.
        #[source]
        source: cron::error::Error,
    },
}

/// Parses an IANA time zone name such as `Europe/Berlin` or `UTC`.
///
/// # Errors
///
/// [`ScheduleError::UnknownTimeZone`] if the name is not in the database.
pub fn parse_tz(zone: &str) -> Result<Tz, ScheduleError> {
    Tz::from_str(zone.trim()).map_err(|_| ScheduleError::UnknownTimeZone {
        zone: zone.to_owned(),
    })
}

/// A parsed schedule with its time zone.
///
/// Parsed schedules are immutable and cheap to share behind an `Arc`; the
/// runner interns them by expression and zone.
#[derive(Clone)]
pub struct Schedule {
    expr: Box<str>,
    tz: Tz,
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Cron(Box<CronRule>),
    /// Fires at `anchor + k × secs` (the Unix epoch when not anchored).
    Interval {
        secs: i64,
        anchor: i64,
    },
    Once(DateTime<Utc>),
}

#[derive(Clone)]
struct CronRule {
    primary: cron::Schedule,
    /// Present when both day fields are restricted (Vixie's OR rule): the
    /// primary rule carries the day-of-month list, this one the weekdays.
    alternate: Option<cron::Schedule>,
    /// The hour field is `*`: the job runs every hour or more often, and
    /// fires in both occurrences of a wall-clock hour a fall-back repeats.
    frequent: bool,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schedule")
            .field("expr", &self.expr)
            .field("tz", &self.tz.name())
            .finish()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.expr, self.tz.name())
    }
}

/// Upper bound on wall-clock candidates examined for one answer; only a
/// schedule that fires every second inside a repeated DST hour comes near.
const MAX_CANDIDATES: usize = 100_000;

impl Schedule {
    /// Parses `expr` in any supported dialect, in time zone `tz`.
    ///
    /// # Errors
    ///
    /// A [`ScheduleError`] naming the offending field or token.
    pub fn parse(expr: &str, tz: Tz) -> Result<Self, ScheduleError> {
        let text = expr.trim();
        if text.is_empty() {
            return Err(ScheduleError::Empty);
        }
        let kind = if let Some(name) = text.strip_prefix('@') {
            let cron = match name.to_ascii_lowercase().as_str() {
                "yearly" | "annually" => "0 0 1 1 *",
                "monthly" => "0 0 1 * *",
                "weekly" => "0 0 * * 0",
                "daily" | "midnight" => "0 0 * * *",
                "hourly" => "0 * * * *",
                _ => {
                    return Err(ScheduleError::UnknownMacro {
                        name: text.to_owned(),
                    });
                }
            };
            Kind::Cron(Box::new(parse_cron(cron)?))
        } else if let Some((interval, from)) = text.split_once(" from ") {
            let secs = parse_interval(interval.trim())?.ok_or_else(|| ScheduleError::Interval {
                value: interval.trim().to_owned(),
                reason: "`INTERVAL from TIME` needs an interval such as 7d or 604800s",
            })?;
            let anchor = parse_one_shot(from.trim(), tz)?.timestamp();
            Kind::Interval { secs, anchor }
        } else if let Some(secs) = parse_interval(text)? {
            Kind::Interval { secs, anchor: 0 }
        } else if looks_like_date(text) {
            Kind::Once(parse_one_shot(text, tz)?)
        } else {
            Kind::Cron(Box::new(parse_cron(text)?))
        };
        Ok(Self {
            expr: text.into(),
            tz,
            kind,
        })
    }

    /// Parses `expr` with a time zone given by name.
    ///
    /// # Errors
    ///
    /// As [`Schedule::parse`], plus [`ScheduleError::UnknownTimeZone`].
    pub fn parse_in(expr: &str, zone: &str) -> Result<Self, ScheduleError> {
        Self::parse(expr, parse_tz(zone)?)
    }

    /// The expression as given (trimmed).
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The schedule's time zone.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// Whether this is a one-shot schedule.
    pub fn is_one_shot(&self) -> bool {
        matches!(self.kind, Kind::Once(_))
    }

    /// The length of an interval schedule that has no anchor yet (a bare
    /// `7d`, counted from the epoch), in seconds; `None` for any other.
    pub fn unanchored_interval(&self) -> Option<i64> {
        match self.kind {
            Kind::Interval { secs, anchor: 0 } => Some(secs),
            _ => None,
        }
    }

    /// The first fire time strictly after `after`, or `None` when the
    /// schedule is exhausted (a past one-shot, or cron beyond year 2100).
    ///
    /// Pure: the result depends only on the schedule and `after`.
    pub fn next_fire(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.kind {
            Kind::Interval { secs, anchor } => {
                let since = after.timestamp().checked_sub(*anchor)?;
                let base = anchor + since.div_euclid(*secs) * secs;
                DateTime::from_timestamp(base.checked_add(*secs)?, 0)
            }
            Kind::Once(at) => (*at > after).then_some(*at),
            Kind::Cron(rule) if rule.frequent && transition_near(self.tz, after) => {
                next_fire_across_fold(rule, self.tz, after)
            }
            Kind::Cron(rule) => {
                // Wall-clock candidates map to instants monotonically (gaps to
                // the gap's end, repeats to the first occurrence), and the wall
                // time of `after` maps to `after` or earlier, so scanning
                // candidates from it finds the earliest instant after it.
                let mut wall = after.with_timezone(&self.tz).naive_local();
                for _ in 0..MAX_CANDIDATES {
                    let candidate = rule.next_wall(wall)?;
                    let at = resolve_wall(self.tz, candidate);
                    if at > after {
                        return Some(at);
                    }
                    wall = candidate;
                }
                None
            }
        }
    }

    /// The latest fire time in `[earliest, at]`, given that `earliest` is a
    /// fire time not after `at`. Used to collapse missed slots into one.
    pub fn latest_fire_between(&self, earliest: DateTime<Utc>, at: DateTime<Utc>) -> DateTime<Utc> {
        if at <= earliest {
            return earliest;
        }
        if let Kind::Interval { secs, anchor } = self.kind {
            let base = anchor + (at.timestamp() - anchor).div_euclid(secs) * secs;
            return DateTime::from_timestamp(base, 0)
                .filter(|t| *t >= earliest)
                .unwrap_or(earliest);
        }
        // Find a probe close to `at` with a fire time in (probe, at], widening
        // the distance exponentially, then walk forward from there.
        let mut distance = Duration::seconds(1);
        let mut from = earliest;
        loop {
            let probe = at - distance;
            if probe <= earliest {
                break;
            }
            if self.next_fire(probe).is_some_and(|t| t <= at) {
                from = probe;
                break;
            }
            distance = distance * 2;
        }
        let mut latest = if from == earliest {
            earliest
        } else {
            // A fire time exists in (from, at] by construction.
            self.next_fire(from).unwrap_or(earliest)
        };
        while let Some(next) = self.next_fire(latest).filter(|t| *t <= at) {
            latest = next;
        }
        latest
    }
}

impl CronRule {
    fn next_wall(&self, wall: NaiveDateTime) -> Option<NaiveDateTime> {
        let after = wall.and_utc();
        let first = self.primary.after(&after).next().map(|t| t.naive_utc());
        let second = self
            .alternate
            .as_ref()
            .and_then(|alt| alt.after(&after).next().map(|t| t.naive_utc()));
        match (first, second) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The widest a DST transition moves the wall clock (Lord Howe's is half an
/// hour, most are one hour, none more than a few).
const MAX_SHIFT: Duration = Duration::hours(4);

/// Whether `tz` changes its UTC offset within [`MAX_SHIFT`] of `t`.
fn transition_near(tz: Tz, t: DateTime<Utc>) -> bool {
    use chrono::Offset as _;
    let offset = |t: DateTime<Utc>| t.with_timezone(&tz).offset().fix();
    offset(t - MAX_SHIFT) != offset(t + MAX_SHIFT)
}

/// `next_fire` of a frequent rule (hour field `*`) near a transition: a wall
/// time repeated by a fall-back fires at both its occurrences, as Vixie cron
/// and cronie run jobs that fire at least hourly "normally" through the
/// repeated hour. Candidates from [`MAX_SHIFT`] of wall time before `after`
/// are mapped to every instant they name; the earliest after `after` wins.
fn next_fire_across_fold(rule: &CronRule, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut wall = after.with_timezone(&tz).naive_local() - MAX_SHIFT;
    let mut best: Option<DateTime<Utc>> = None;
    for _ in 0..MAX_CANDIDATES {
        let candidate = rule.next_wall(wall)?;
        let instants: Vec<DateTime<Utc>> = match tz.from_local_datetime(&candidate) {
            LocalResult::Single(t) => vec![t.with_timezone(&Utc)],
            LocalResult::Ambiguous(a, b) => vec![a.with_timezone(&Utc), b.with_timezone(&Utc)],
            LocalResult::None => vec![gap_end(tz, candidate)],
        };
        for t in instants.iter().filter(|t| **t > after) {
            best = Some(best.map_or(*t, |b| b.min(*t)));
        }
        // Candidates only get later in wall time: once one is a whole shift
        // past the best instant, none can beat it.
        if let Some(b) = best
            && instants.iter().all(|t| *t > b + MAX_SHIFT)
        {
            return best;
        }
        wall = candidate;
    }
    best
}

/// Maps a wall-clock time in `tz` to an instant: a repeated time to its first
/// occurrence, a skipped time to the first instant after the gap.
pub(crate) fn resolve_wall(tz: Tz, wall: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&wall) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => gap_end(tz, wall),
    }
}

/// The first instant whose wall time in `tz` is later than `wall`, for a
/// `wall` inside a gap. Gaps are at most a day long (Samoa, 2011).
fn gap_end(tz: Tz, wall: NaiveDateTime) -> DateTime<Utc> {
    let is_past = |secs: i64| {
        DateTime::from_timestamp(secs, 0).is_some_and(|t| t.with_timezone(&tz).naive_local() > wall)
    };
    let centre = wall.and_utc().timestamp();
    let (mut lo, mut hi) = (centre - 2 * 86_400, centre + 2 * 86_400);
    // Invariant: !is_past(lo), is_past(hi).
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if is_past(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn looks_like_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

fn parse_one_shot(text: &str, tz: Tz) -> Result<DateTime<Utc>, ScheduleError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let normalized = text.replacen(' ', "T", 1);
    for format in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(wall) = NaiveDateTime::parse_from_str(&normalized, format) {
            return Ok(resolve_wall(tz, wall));
        }
    }
    Err(ScheduleError::OneShot {
        value: text.to_owned(),
    })
}

/// `Ok(None)` when `text` is not shaped like an interval at all. An
/// interval is a duration in Rota's one grammar (`7d`, `604800s`, `1h30m`,
/// `2 weeks`; [`rota_clock::parse_duration`]), in whole seconds.
fn parse_interval(text: &str) -> Result<Option<i64>, ScheduleError> {
    let shaped = text.starts_with(|c: char| c.is_ascii_digit())
        && text.chars().any(|c| c.is_ascii_alphabetic())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ')
        // `0 3 * * 0` has no letter; `30 2 * * mon` has a field count.
        && text.split_whitespace().count() <= 6
        && !text.split_whitespace().any(|w| w.bytes().all(|b| b.is_ascii_digit()));
    if !shaped {
        return Ok(None);
    }
    let err = |reason| ScheduleError::Interval {
        value: text.to_owned(),
        reason,
    };
    let d = rota_clock::parse_duration(text)
        .map_err(|_| err("not a duration: write e.g. 7d, 12h, 90m or 604800s"))?;
    if d.subsec_nanos() != 0 {
        return Err(err("must be whole seconds"));
    }
    let secs = i64::try_from(d.as_secs()).map_err(|_| err("number too large"))?;
    if secs == 0 {
        return Err(err("must be positive"));
    }
    // Beyond ~100 years every interval is effectively a one-shot; refuse.
    if secs > 100 * 366 * 86_400 {
        return Err(err("longer than 100 years"));
    }
    Ok(Some(secs))
}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// Whether `?` is accepted (day fields).
    question: bool,
}

const SECOND: FieldSpec = FieldSpec {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
    question: false,
};
const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    question: false,
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    question: false,
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    question: true,
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    question: false,
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    question: true,
};

/// A parsed cron field: a bit per allowed value, and whether it began with `*`.
struct Field {
    bits: u64,
    star: bool,
}

impl FieldSpec {
    fn err(&self, value: &str, reason: String) -> ScheduleError {
        ScheduleError::Field {
            field: self.name,
            value: value.to_owned(),
            reason,
        }
    }

    fn allowed(&self) -> String {
        let mut s = format!("{}-{}", self.min, self.max);
        if let (Some(first), Some(last)) = (self.names.first(), self.names.last()) {
            s.push_str(&format!(" or names {first}-{last}"));
        }
        s
    }

    fn value(&self, field: &str, token: &str) -> Result<u32, ScheduleError> {
        if let Ok(n) = token.parse::<u32>() {
            if n < self.min || n > self.max {
                return Err(self.err(
                    field,
                    format!("value {n} out of range, allowed {}", self.allowed()),
                ));
            }
            return Ok(n);
        }
        let lower = token.to_ascii_lowercase();
        if let Some(i) = self.names.iter().position(|n| *n == lower) {
            // Months are numbered from 1, weekdays from 0 (Sunday).
            let base = if self.name == MONTH.name { 1 } else { 0 };
            return Ok(u32::try_from(i).unwrap_or(0) + base);
        }
        let reason = if token.contains(['L', 'W', '#', 'l', 'w']) {
            format!(
                "`{token}` uses L, W or # (Quartz extensions), which are not supported; allowed {} with `*`, `,`, `-`, `/`",
                self.allowed()
            )
        } else {
            format!("`{token}` is not a value; allowed {}", self.allowed())
        };
        Err(self.err(field, reason))
    }

    fn parse(&self, field: &str) -> Result<Field, ScheduleError> {
        let star = field.starts_with('*') || (self.question && field.starts_with('?'));
        let mut bits = 0u64;
        for item in field.split(',') {
            if item.is_empty() {
                return Err(self.err(field, "empty list item".to_owned()));
            }
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => {
                    let step: u32 = step.parse().map_err(|_| {
                        self.err(field, format!("step `{step}` is not a positive number"))
                    })?;
                    if step == 0 {
                        return Err(self.err(field, "step must be positive".to_owned()));
                    }
                    (range, Some(step))
                }
                None => (item, None),
            };
            let (lo, hi) = if range == "*" || (self.question && range == "?") {
                if range == "?" && step.is_some() {
                    return Err(self.err(field, "`?` cannot take a step".to_owned()));
                }
                // `*` on day-of-week means 0-6; 7 is only an alias.
                let max = if self.name == DAY_OF_WEEK.name {
                    6
                } else {
                    self.max
                };
                (self.min, max)
            } else if let Some((a, b)) = range.split_once('-') {
                let (a, b) = (self.value(field, a)?, self.value(field, b)?);
                if a > b {
                    return Err(self.err(
                        field,
                        format!("range {a}-{b} runs backwards; ranges do not wrap"),
                    ));
                }
                (a, b)
            } else {
                let a = self.value(field, range)?;
                // `a/n` runs from a to the end of the field, as in Vixie cron.
                (a, if step.is_some() { self.max } else { a })
            };
            let step = step.unwrap_or(1);
            let mut v = lo;
            while v <= hi {
                bits |= 1 << v;
                v += step;
            }
        }
        if self.name == DAY_OF_WEEK.name && bits & (1 << 7) != 0 {
            bits = (bits & !(1 << 7)) | 1;
        }
        Ok(Field { bits, star })
    }
}

/// Renders a bitmask as an explicit list for the `cron` crate, shifting each
/// value by `offset` (weekdays are numbered from 1 = Sunday there).
fn render(bits: u64, offset: u32, full: u64) -> String {
    if bits == full {
        return "*".to_owned();
    }
    let mut out = String::new();
    for v in 0..64u32 {
        if bits & (1 << v) != 0 {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(&(v + offset).to_string());
        }
    }
    out
}

fn mask(min: u32, max: u32) -> u64 {
    (min..=max).fold(0, |m, v| m | (1 << v))
}

fn parse_cron(text: &str) -> Result<CronRule, ScheduleError> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let (second, rest) = match parts.len() {
        5 => (
            Field {
                bits: 1,
                star: false,
            },
            &parts[..],
        ),
        6 => (SECOND.parse(parts[0])?, &parts[1..]),
        found => {
            return Err(ScheduleError::FieldCount {
                found,
                expr: text.to_owned(),
            });
        }
    };
    let minute = MINUTE.parse(rest[0])?;
    let hour = HOUR.parse(rest[1])?;
    let dom = DAY_OF_MONTH.parse(rest[2])?;
    let month = MONTH.parse(rest[3])?;
    let dow = DAY_OF_WEEK.parse(rest[4])?;
    let frequent = hour.bits == mask(0, 23);

    let head = format!(
        "{} {} {}",
        render(second.bits, 0, mask(0, 59)),
        render(minute.bits, 0, mask(0, 59)),
        render(hour.bits, 0, mask(0, 23)),
    );
    let month_s = render(month.bits, 0, mask(1, 12));
    let dom_s = render(dom.bits, 0, mask(1, 31));
    // Weekday bits are 0 = Sunday; the cron crate numbers Sunday 1.
    let dow_s = render(dow.bits, 1, mask(0, 6));
    let build = |dom: &str, dow: &str| {
        let expr = format!("{head} {dom} {month_s} {dow}");
        cron::Schedule::from_str(&expr).map_err(|source| ScheduleError::Engine { expr, source })
    };
    if !dom.star && !dow.star {
        Ok(CronRule {
            primary: build(&dom_s, "*")?,
            alternate: Some(build("*", &dow_s)?),
            frequent,
        })
    } else {
        Ok(CronRule {
            primary: build(&dom_s, &dow_s)?,
            alternate: None,
            frequent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn latest_fire_between_collapses() {
        let s = Schedule::parse("0 * * * *", Tz::UTC).unwrap();
        let l = s.latest_fire_between(utc("2026-01-01T10:00:00Z"), utc("2026-01-03T13:30:00Z"));
        assert_eq!(l, utc("2026-01-03T13:00:00Z"));
        let y = Schedule::parse("@yearly", Tz::UTC).unwrap();
        let l = y.latest_fire_between(utc("2020-01-01T00:00:00Z"), utc("2026-06-01T00:00:00Z"));
        assert_eq!(l, utc("2026-01-01T00:00:00Z"));
    }
}

//! Fixed-case and property tests of schedule parsing and `next_fire`.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use rota_scheduler::{Schedule, ScheduleError, next_fire, parse_tz};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad fixture {s}: {e}"))
        .with_timezone(&Utc)
}

/// The next `expect.len()` fire times of `expr` in `zone` after `after`.
fn check(expr: &str, zone: &str, after: &str, expect: &[&str]) {
    let schedule = Schedule::parse_in(expr, zone).unwrap_or_else(|e| panic!("{expr}: {e}"));
    let mut t = utc(after);
    let mut got = Vec::new();
    for _ in expect {
        match next_fire(&schedule, t) {
            Some(next) => {
                got.push(next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                t = next;
            }
            None => break,
        }
    }
    assert_eq!(got, expect, "{expr} in {zone} after {after}");
}

fn check_err(expr: &str, expect: &str) {
    match Schedule::parse_in(expr, "UTC") {
        Ok(s) => panic!("{expr} parsed as {s:?}"),
        Err(e) => assert_eq!(e.to_string(), expect, "{expr}"),
    }
}

#[test]
fn month_ends_skip_short_months() {
    check(
        "0 0 31 * *",
        "UTC",
        "2026-01-31T00:00:00Z",
        &[
            "2026-03-31T00:00:00Z",
            "2026-05-31T00:00:00Z",
            "2026-07-31T00:00:00Z",
        ],
    );
    check(
        "0 0 29-31 * *",
        "UTC",
        "2026-02-01T00:00:00Z",
        &[
            "2026-03-29T00:00:00Z",
            "2026-03-30T00:00:00Z",
            "2026-03-31T00:00:00Z",
        ],
    );
}

#[test]
fn leap_days() {
    check(
        "0 12 29 2 *",
        "UTC",
        "2026-01-01T00:00:00Z",
        &["2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z"],
    );
}

#[test]
fn steps_ranges_and_names() {
    check(
        "*/15 * * * *",
        "UTC",
        "2026-01-01T00:07:00Z",
        &[
            "2026-01-01T00:15:00Z",
            "2026-01-01T00:30:00Z",
            "2026-01-01T00:45:00Z",
            "2026-01-01T01:00:00Z",
        ],
    );
    check(
        "30 9 * jan-mar mon-fri",
        "UTC",
        "2026-03-30T10:00:00Z",
        &[
            "2026-03-31T09:30:00Z",
            "2027-01-01T09:30:00Z",
            "2027-01-04T09:30:00Z",
        ],
    );
    check(
        "0 8-18/5 * * *",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-01T08:00:00Z",
            "2026-01-01T13:00:00Z",
            "2026-01-01T18:00:00Z",
        ],
    );
    // `a/n` runs to the end of the field, as in Vixie cron.
    check(
        "50/5 0 * * *",
        "UTC",
        "2026-01-01T00:00:00Z",
        &[
            "2026-01-01T00:50:00Z",
            "2026-01-01T00:55:00Z",
            "2026-01-02T00:50:00Z",
        ],
    );
    check(
        "0 0 1 JAN,Jul *",
        "UTC",
        "2026-01-01T00:00:00Z",
        &["2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z"],
    );
}

#[test]
fn sunday_is_zero_or_seven() {
    // 2026-03-01 is a Sunday.
    for expr in ["0 0 * * 0", "0 0 * * 7", "0 0 * * sun", "0 0 * * SUN"] {
        check(
            expr,
            "UTC",
            "2026-03-01T00:00:00Z",
            &["2026-03-08T00:00:00Z", "2026-03-15T00:00:00Z"],
        );
    }
    // 5-7 is Friday to Sunday.
    check(
        "0 0 * * 5-7",
        "UTC",
        "2026-03-01T00:00:00Z",
        &[
            "2026-03-06T00:00:00Z",
            "2026-03-07T00:00:00Z",
            "2026-03-08T00:00:00Z",
        ],
    );
}

#[test]
fn day_of_month_or_day_of_week_as_in_vixie_cron() {
    // The 13th, or any Friday. 2026-04-13 is a Monday.
    check(
        "0 0 13 * 5",
        "UTC",
        "2026-03-14T00:00:00Z",
        &[
            "2026-03-20T00:00:00Z",
            "2026-03-27T00:00:00Z",
            "2026-04-03T00:00:00Z",
            "2026-04-10T00:00:00Z",
            "2026-04-13T00:00:00Z",
            "2026-04-17T00:00:00Z",
        ],
    );
    // A field starting with `*` is unrestricted, so this is "odd days that
    // are Mondays" (AND), exactly as Vixie cron reads it. 2026-05-04 is an
    // even Monday, 2026-05-11 an odd one.
    check(
        "0 0 */2 * 1",
        "UTC",
        "2026-05-01T00:00:00Z",
        &["2026-05-11T00:00:00Z"],
    );
}

#[test]
fn six_fields_with_seconds() {
    check(
        "*/20 * * * * *",
        "UTC",
        "2026-01-01T00:00:05Z",
        &[
            "2026-01-01T00:00:20Z",
            "2026-01-01T00:00:40Z",
            "2026-01-01T00:01:00Z",
        ],
    );
    check(
        "30 0 12 * * 0",
        "UTC",
        "2026-03-01T00:00:00Z",
        &["2026-03-01T12:00:30Z"],
    );
}

#[test]
fn macros() {
    check(
        "@hourly",
        "UTC",
        "2026-01-01T00:10:00Z",
        &["2026-01-01T01:00:00Z"],
    );
    check(
        "@daily",
        "UTC",
        "2026-01-01T00:10:00Z",
        &["2026-01-02T00:00:00Z"],
    );
    check(
        "@midnight",
        "UTC",
        "2026-01-01T00:10:00Z",
        &["2026-01-02T00:00:00Z"],
    );
    check(
        "@weekly",
        "UTC",
        "2026-03-01T00:10:00Z",
        &["2026-03-08T00:00:00Z"],
    );
    check(
        "@monthly",
        "UTC",
        "2026-01-01T00:10:00Z",
        &["2026-02-01T00:00:00Z"],
    );
    check(
        "@yearly",
        "UTC",
        "2026-01-01T00:10:00Z",
        &["2027-01-01T00:00:00Z"],
    );
    check(
        "@annually",
        "UTC",
        "2026-01-01T00:10:00Z",
        &["2027-01-01T00:00:00Z"],
    );
    // Macros follow the zone's wall clock.
    check(
        "@daily",
        "Europe/Berlin",
        "2026-01-01T00:10:00Z",
        &["2026-01-01T23:00:00Z"],
    );
}

#[test]
fn intervals_are_anchored_to_the_epoch_and_ignore_the_zone() {
    // 2026-01-01 is day 20454 since the epoch, a multiple of 7.
    check(
        "7d",
        "UTC",
        "2026-01-01T00:00:00Z",
        &["2026-01-08T00:00:00Z", "2026-01-15T00:00:00Z"],
    );
    check(
        "604800s",
        "America/New_York",
        "2026-01-01T00:00:00Z",
        &["2026-01-08T00:00:00Z"],
    );
    check(
        "12h",
        "Europe/Berlin",
        "2026-01-01T05:00:00Z",
        &["2026-01-01T12:00:00Z", "2026-01-02T00:00:00Z"],
    );
    check(
        "30m",
        "UTC",
        "2026-01-01T05:29:59Z",
        &["2026-01-01T05:30:00Z", "2026-01-01T06:00:00Z"],
    );
}

#[test]
fn one_shot_times() {
    check(
        "2026-03-08T07:00:00Z",
        "UTC",
        "2026-03-01T00:00:00Z",
        &["2026-03-08T07:00:00Z"],
    );
    check(
        "2026-03-08T07:00:00+01:00",
        "UTC",
        "2026-03-01T00:00:00Z",
        &["2026-03-08T06:00:00Z"],
    );
    check("2026-03-08T07:00:00Z", "UTC", "2026-03-08T07:00:00Z", &[]);
    // A wall-clock time is read in the zone; one skipped by DST fires after the gap.
    check(
        "2026-03-08T02:30",
        "America/New_York",
        "2026-01-01T00:00:00Z",
        &["2026-03-08T07:00:00Z"],
    );
    check(
        "2026-07-01 09:00:00",
        "Europe/Berlin",
        "2026-01-01T00:00:00Z",
        &["2026-07-01T07:00:00Z"],
    );
}

#[test]
fn dst_gap_fires_once_right_after_the_gap() {
    // New York, 2026-03-08 02:00 EST -> 03:00 EDT.
    check(
        "30 2 * * *",
        "America/New_York",
        "2026-03-07T12:00:00Z",
        &["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"],
    );
    // Every half hour: 02:00 and 02:30 do not exist; they and 03:00 fire once.
    check(
        "0,30 * * * *",
        "America/New_York",
        "2026-03-08T06:00:00Z",
        &[
            "2026-03-08T06:30:00Z",
            "2026-03-08T07:00:00Z",
            "2026-03-08T07:30:00Z",
        ],
    );
    // Berlin, 2026-03-29 02:00 CET -> 03:00 CEST.
    check(
        "30 2 * * *",
        "Europe/Berlin",
        "2026-03-28T12:00:00Z",
        &["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"],
    );
}

#[test]
fn dst_overlap_fires_fixed_times_once_at_the_first_occurrence() {
    // New York, 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 happens twice.
    check(
        "30 1 * * *",
        "America/New_York",
        "2026-10-31T12:00:00Z",
        &["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"],
    );
    // Every half hour runs through the repeated hour, like cron does for
    // jobs more frequent than hourly: 01:00 and 01:30 EDT, then EST.
    check(
        "*/30 * * * *",
        "America/New_York",
        "2026-11-01T04:45:00Z",
        &[
            "2026-11-01T05:00:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-01T06:00:00Z",
            "2026-11-01T06:30:00Z",
            "2026-11-01T07:00:00Z",
        ],
    );
    // Asking from inside the second occurrence does not fire it either.
    check(
        "30 1 * * *",
        "America/New_York",
        "2026-11-01T06:10:00Z",
        &["2026-11-02T06:30:00Z"],
    );
    // Berlin, 2026-10-25 03:00 CEST -> 02:00 CET: 02:30 happens twice.
    check(
        "30 2 * * *",
        "Europe/Berlin",
        "2026-10-24T12:00:00Z",
        &["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"],
    );
}

#[test]
fn errors_name_the_field_and_what_is_allowed() {
    check_err(
        "61 * * * *",
        "invalid minute field `61`: value 61 out of range, allowed 0-59",
    );
    check_err(
        "* * * * 8",
        "invalid day-of-week field `8`: value 8 out of range, allowed 0-7 or names sun-sat",
    );
    check_err(
        "0 0 L * *",
        "invalid day-of-month field `L`: `L` uses L, W or # (Quartz extensions), which are not supported; allowed 1-31 with `*`, `,`, `-`, `/`",
    );
    check_err(
        "0 0 ? * 5#3",
        "invalid day-of-week field `5#3`: `5#3` uses L, W or # (Quartz extensions), which are not supported; allowed 0-7 or names sun-sat with `*`, `,`, `-`, `/`",
    );
    check_err(
        "0 0 15W * *",
        "invalid day-of-month field `15W`: `15W` uses L, W or # (Quartz extensions), which are not supported; allowed 1-31 with `*`, `,`, `-`, `/`",
    );
    check_err(
        "0 5-2 * * *",
        "invalid hour field `5-2`: range 5-2 runs backwards; ranges do not wrap",
    );
    check_err(
        "*/0 * * * *",
        "invalid minute field `*/0`: step must be positive",
    );
    check_err(
        "0 0 * foo *",
        "invalid month field `foo`: `foo` is not a value; allowed 1-12 or names jan-dec",
    );
    check_err(
        "* * *",
        "expected 5 fields (minute hour day-of-month month day-of-week) or 6 fields (second first), found 3 in `* * *`",
    );
    check_err(
        "@reboot",
        "unsupported macro `@reboot`: allowed are @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly",
    );
    check_err("0s", "invalid interval `0s`: must be positive");
    check_err("", "empty schedule expression");
    check_err(
        "2026-13-01T00:00:00Z",
        "invalid one-shot time `2026-13-01T00:00:00Z`: expected RFC 3339 such as 2026-03-08T02:30:00Z or a wall-clock time such as 2026-03-08T02:30",
    );
    match parse_tz("Mars/Olympus_Mons") {
        Err(e @ ScheduleError::UnknownTimeZone { .. }) => assert_eq!(
            e.to_string(),
            "unknown time zone `Mars/Olympus_Mons`: expected an IANA name such as UTC or Europe/Berlin"
        ),
        other => panic!("{other:?}"),
    }
}

// ---- property tests -------------------------------------------------------

/// A generated cron field: its text and, independently, the values it means.
#[derive(Debug, Clone)]
struct GenField {
    text: String,
    values: Vec<u32>,
    star: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn name_or_number(v: u32, names: Option<(&'static [&'static str], u32)>, use_name: bool) -> String {
    match names {
        Some((names, base)) if use_name && ((v - base) as usize) < names.len() => {
            names[(v - base) as usize].to_owned()
        }
        _ => v.to_string(),
    }
}

/// Fields: `*`, `*/n`, `a`, `a-b`, `a-b/n`, or a list of single values.
fn field(
    min: u32,
    max: u32,
    names: Option<(&'static [&'static str], u32)>,
) -> impl Strategy<Value = GenField> {
    // Day-of-week `*` means 0-6 (7 is an alias of 0).
    let star_max = if max == 7 { 6 } else { max };
    prop_oneof![
        Just(GenField {
            text: "*".into(),
            values: (min..=star_max).collect(),
            star: true
        }),
        (1..=max.max(2)).prop_map(move |n| GenField {
            text: format!("*/{n}"),
            values: (min..=star_max).step_by(n as usize).collect(),
            star: true,
        }),
        (min..=max, any::<bool>()).prop_map(move |(a, nm)| GenField {
            text: name_or_number(a, names, nm),
            values: vec![a],
            star: false,
        }),
        (min..=max, min..=max, 1..=4u32, any::<bool>()).prop_map(move |(a, b, n, stepped)| {
            let (a, b) = (a.min(b), a.max(b));
            let n = if stepped { n } else { 1 };
            GenField {
                text: if stepped {
                    format!("{a}-{b}/{n}")
                } else {
                    format!("{a}-{b}")
                },
                values: (a..=b).step_by(n as usize).collect(),
                star: false,
            }
        }),
        prop::collection::vec((min..=max, any::<bool>()), 1..4).prop_map(move |vs| GenField {
            text: vs
                .iter()
                .map(|(v, nm)| name_or_number(*v, names, *nm))
                .collect::<Vec<_>>()
                .join(","),
            values: vs.iter().map(|(v, _)| *v).collect(),
            star: false,
        }),
    ]
}

#[derive(Debug, Clone)]
struct GenCron {
    minute: GenField,
    hour: GenField,
    dom: GenField,
    month: GenField,
    dow: GenField,
}

impl GenCron {
    fn text(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.minute.text, self.hour.text, self.dom.text, self.month.text, self.dow.text
        )
    }

    /// The oracle: Vixie cron's matching rule, written independently.
    fn matches(&self, t: chrono::NaiveDateTime) -> bool {
        let dow = t.weekday().num_days_from_sunday();
        let dow_ok = self.dow.values.iter().any(|v| v % 7 == dow);
        let dom_ok = self.dom.values.contains(&t.day());
        let day_ok = if self.dom.star || self.dow.star {
            dom_ok && dow_ok
        } else {
            dom_ok || dow_ok
        };
        t.second() == 0
            && self.minute.values.contains(&t.minute())
            && self.hour.values.contains(&t.hour())
            && self.month.values.contains(&t.month())
            && day_ok
    }

    /// Brute force: the first matching minute strictly after `after`, within
    /// ten years (or `None`).
    fn oracle_next(&self, after: chrono::NaiveDateTime) -> Option<chrono::NaiveDateTime> {
        let start_day = after.date();
        for d in 0..(366 * 10) {
            let day = start_day + Duration::days(d);
            let probe = day.and_hms_opt(0, 0, 0)?;
            let day_ok = {
                let dow = day.weekday().num_days_from_sunday();
                let dow_ok = self.dow.values.iter().any(|v| v % 7 == dow);
                let dom_ok = self.dom.values.contains(&day.day());
                let ok = if self.dom.star || self.dow.star {
                    dom_ok && dow_ok
                } else {
                    dom_ok || dow_ok
                };
                ok && self.month.values.contains(&day.month())
            };
            if !day_ok {
                continue;
            }
            for h in 0..24 {
                for m in 0..60 {
                    let t = probe + Duration::minutes(h * 60 + m);
                    if t > after && self.matches(t) {
                        return Some(t);
                    }
                }
            }
        }
        None
    }
}

fn gen_cron() -> impl Strategy<Value = GenCron> {
    (
        field(0, 59, None),
        field(0, 23, None),
        field(1, 31, None),
        field(1, 12, Some((&MONTHS, 1))),
        field(0, 7, Some((&DAYS, 0))),
    )
        .prop_map(|(minute, hour, dom, month, dow)| GenCron {
            minute,
            hour,
            dom,
            month,
            dow,
        })
}

fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    // 2020-01-01 .. 2035-01-01, whole seconds.
    (1_577_836_800i64..2_051_222_400)
        .prop_map(|s| DateTime::from_timestamp(s, 0).unwrap_or_default())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// In UTC (no DST), `next_fire` is exactly the brute-force next match.
    #[test]
    fn posix_front_end_agrees_with_a_brute_force_oracle(cron in gen_cron(), after in instant()) {
        let text = cron.text();
        let schedule = Schedule::parse(&text, Tz::UTC).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        let expect = cron.oracle_next(after.naive_utc());
        let got = schedule.next_fire(after).map(|t| t.naive_utc());
        // Beyond the oracle's ten years, only require that there is no match inside them.
        match expect {
            Some(_) => prop_assert_eq!(got, expect, "{}", text),
            None => prop_assert!(got.is_none_or(|g| g > after.naive_utc() + Duration::days(366 * 9)), "{}", text),
        }
    }

    /// Sunday written as 0, 7 or `sun` means the same.
    #[test]
    fn sunday_spellings_agree(cron in gen_cron(), after in instant()) {
        let base = cron.text();
        let parts: Vec<&str> = base.split(' ').collect();
        let a = Schedule::parse(&format!("{} {} {} {} 0", parts[0], parts[1], parts[2], parts[3]), Tz::UTC).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let b = Schedule::parse(&format!("{} {} {} {} 7", parts[0], parts[1], parts[2], parts[3]), Tz::UTC).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let c = Schedule::parse(&format!("{} {} {} {} SUN", parts[0], parts[1], parts[2], parts[3]), Tz::UTC).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(a.next_fire(after), b.next_fire(after));
        prop_assert_eq!(a.next_fire(after), c.next_fire(after));
    }

    /// In zones with DST: fires strictly increase, each fire's wall time
    /// matches (or it is the end of a gap); a schedule with a specific hour
    /// fires a repeated wall time once (its first occurrence), one whose
    /// hour field is `*` at most at both of its occurrences.
    #[test]
    fn dst_zones_fire_each_wall_time_once(
        cron in gen_cron(),
        after in instant(),
        zone in prop::sample::select(vec!["America/New_York", "Europe/Berlin", "Australia/Sydney"]),
    ) {
        let tz: Tz = zone.parse().map_err(|_| TestCaseError::fail("zone"))?;
        let text = cron.text();
        let schedule = Schedule::parse(&text, tz).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut t = after;
        let frequent = cron.hour.values.len() == 24;
        let mut walls = std::collections::HashMap::new();
        for _ in 0..20 {
            let Some(next) = schedule.next_fire(t) else { break };
            prop_assert!(next > t);
            let wall = next.with_timezone(&tz).naive_local();
            match tz.from_local_datetime(&wall) {
                LocalResult::Ambiguous(first, _) if !frequent => prop_assert_eq!(first.with_timezone(&Utc), next, "second occurrence fired: {}", text),
                _ => {}
            }
            // Either the wall time matches, or the instant just before was in a different offset (gap end).
            let before = (next - Duration::seconds(1)).with_timezone(&tz);
            let gap_end = before.offset().to_string() != next.with_timezone(&tz).offset().to_string();
            prop_assert!(cron.matches(wall) || gap_end, "{} fired at unmatched {}", text, wall);
            let fired = walls.entry(wall).or_insert(0u32);
            *fired += 1;
            let allowed = if frequent && matches!(tz.from_local_datetime(&wall), LocalResult::Ambiguous(..)) { 2 } else { 1 };
            prop_assert!(*fired <= allowed, "{} fired wall time {} {} times", text, wall, fired);
            t = next;
        }
    }

    /// Parsing arbitrary text never panics.
    #[test]
    fn parse_never_panics(text in "\\PC{0,40}") {
        let _ = Schedule::parse(&text, Tz::UTC);
    }

    /// Intervals fire on multiples of their length, strictly after `after`.
    #[test]
    fn intervals_fire_on_multiples(secs in 1i64..1_000_000, after in instant()) {
        let s = Schedule::parse(&format!("{secs}s"), Tz::UTC).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let next = s.next_fire(after).ok_or_else(|| TestCaseError::fail("none"))?;
        prop_assert!(next > after && next - after <= Duration::seconds(secs));
        prop_assert_eq!(next.timestamp() % secs, 0);
    }
}

/// A fall-back (Berlin, 2027-10-31 03:00 CEST → 02:00 CET): a schedule
/// whose hour field is `*` runs through both occurrences of 02:xx, a
/// specific-hour one fires its 02:30 once.
#[test]
fn a_fall_back_repeats_the_hour_for_sub_hourly_schedules_only() {
    let fires = |expr: &str, after: &str, n: usize| -> Vec<String> {
        let s = Schedule::parse_in(expr, "Europe/Berlin").unwrap();
        let mut t = utc(after);
        let mut out = Vec::new();
        for _ in 0..n {
            t = s.next_fire(t).unwrap();
            out.push(t.format("%H:%MZ").to_string());
        }
        out
    };
    assert_eq!(
        fires("*/15 * * * *", "2027-10-30T23:50:00Z", 10),
        [
            "00:00Z", "00:15Z", "00:30Z", "00:45Z", "01:00Z", "01:15Z", "01:30Z", "01:45Z",
            "02:00Z", "02:15Z"
        ]
    );
    assert_eq!(
        fires("@hourly", "2027-10-30T23:30:00Z", 3),
        ["00:00Z", "01:00Z", "02:00Z"]
    );
    assert_eq!(
        fires("30 2 * * *", "2027-10-30T23:30:00Z", 2),
        ["00:30Z", "01:30Z"]
    );
    // From inside the second occurrence, the schedule goes on from there.
    assert_eq!(
        fires("*/15 * * * *", "2027-10-31T01:20:00Z", 2),
        ["01:30Z", "01:45Z"]
    );
}

#[test]
fn fixtures_use_the_expected_weekdays() {
    // Guards the comments in the fixed cases above.
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).map(|d| d.weekday().to_string());
    assert_eq!(day(2026, 3, 1).as_deref(), Some("Sun"));
    assert_eq!(day(2026, 4, 13).as_deref(), Some("Mon"));
    assert_eq!(day(2026, 5, 4).as_deref(), Some("Mon"));
    assert_eq!(day(2026, 5, 11).as_deref(), Some("Mon"));
    assert_eq!(day(2027, 1, 1).as_deref(), Some("Fri"));
    assert_eq!(
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .map(|t| t.timestamp() % 604_800),
        Some(0)
    );
}

//! `rota schedule next`: fire times and errors.

use crate::common::{run, stderr, stdout};

fn next(args: &[&str]) -> String {
    let mut all = vec!["schedule", "next"];
    all.extend_from_slice(args);
    let o = run(&all);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
}

fn usage_error(args: &[&str]) -> String {
    let mut all = vec!["schedule", "next"];
    all.extend_from_slice(args);
    let o = run(&all);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stdout(&o).is_empty());
    stderr(&o)
}

#[test]
fn next_fire_times_across_a_dst_gap() {
    insta::assert_snapshot!(next(&[
        "30 2 * * *",
        "--tz",
        "America/New_York",
        "--count",
        "3",
        "--after",
        "2026-03-07T12:00:00Z"
    ]));
}

#[test]
fn next_fire_times_of_each_dialect() {
    let cases = [
        ("*/15 9-17 * * mon-fri", "Europe/Berlin"),
        ("0 30 2 * * 0", "UTC"),
        ("@weekly", "Asia/Shanghai"),
        ("7d", "UTC"),
        ("2026-12-24T18:00", "Europe/Berlin"),
    ];
    let mut out = String::new();
    for (expr, tz) in cases {
        out.push_str(&format!("$ rota schedule next '{expr}' --tz {tz} -n 3\n"));
        out.push_str(&next(&[
            expr,
            "--tz",
            tz,
            "-n",
            "3",
            "--after",
            "2026-03-06T16:50:00Z",
        ]));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn json_output() {
    let o = run(&[
        "-o",
        "json",
        "schedule",
        "next",
        "@hourly",
        "-n",
        "2",
        "--after",
        "2026-01-01T00:00:00Z",
    ]);
    assert!(o.status.success());
    insta::assert_snapshot!(stdout(&o));
}

#[test]
fn invalid_expression_zone_and_after_are_usage_errors() {
    let mut out = String::new();
    for args in [
        &["0 0 L * *"][..],
        &["61 * * * *"],
        &["* * * * * * *"],
        &["@reboot"],
        &["0 3 * * *", "--tz", "Mars/Olympus_Mons"],
        &["0 3 * * *", "--after", "yesterday"],
    ] {
        out.push_str(&format!("$ rota schedule next {args:?}\n"));
        out.push_str(&usage_error(args));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn a_fall_back_repeats_sub_hourly_slots_and_fires_fixed_times_once() {
    // Berlin, 2027-10-31 03:00 CEST -> 02:00 CET: 02:00-02:59 happens twice
    // (00:00Z-00:59Z, then 01:00Z-01:59Z). Every 15 minutes runs through
    // both; 02:30 daily fires once, at the first.
    insta::assert_snapshot!(next(&[
        "*/15 * * * *",
        "--tz",
        "Europe/Berlin",
        "--count",
        "10",
        "--after",
        "2027-10-30T23:50:00Z"
    ]), @r"
    2027-10-31T00:00:00Z
    2027-10-31T00:15:00Z
    2027-10-31T00:30:00Z
    2027-10-31T00:45:00Z
    2027-10-31T01:00:00Z
    2027-10-31T01:15:00Z
    2027-10-31T01:30:00Z
    2027-10-31T01:45:00Z
    2027-10-31T02:00:00Z
    2027-10-31T02:15:00Z
    ");
    insta::assert_snapshot!(next(&[
        "30 2 * * *",
        "--tz",
        "Europe/Berlin",
        "--count",
        "2",
        "--after",
        "2027-10-30T23:50:00Z"
    ]), @r"
    2027-10-31T00:30:00Z
    2027-11-01T01:30:00Z
    ");
}

#[test]
fn a_schedule_that_never_fires_is_an_error() {
    for (expr, help) in [
        ("0 0 31 2 *", "day-of-month and month"),
        // The probe's case (issue 20, defect 10).
        ("0 0 30 2 *", "day-of-month and month"),
        ("2020-01-01T00:00:00Z", "one-shot"),
    ] {
        let o = run(&["schedule", "next", expr, "--after", "2026-06-16T10:00:00Z"]);
        assert_eq!(o.status.code(), Some(1), "{expr}: {}", stdout(&o));
        assert!(stdout(&o).is_empty(), "{expr}");
        let err = stderr(&o);
        assert!(
            err.contains("never fires after 2026-06-16T10:00:00Z"),
            "{err}"
        );
        assert!(err.contains(help), "{err}");
    }
}

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

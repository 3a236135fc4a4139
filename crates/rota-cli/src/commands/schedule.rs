//! `rota schedule`: schedule inspection.

use std::process::ExitCode;

use chrono::{DateTime, SecondsFormat, Utc};
use rota_scheduler::{Schedule, parse_tz};

use crate::cli::{OutputFormat, ScheduleCommand};
use crate::output::{emit_json, errln, outln};

/// Runs a `rota schedule` command. Invalid input is a usage error (exit 2).
pub(crate) fn run(command: ScheduleCommand, output: OutputFormat) -> ExitCode {
    match command {
        ScheduleCommand::Next {
            expr,
            tz,
            count,
            after,
        } => next(&expr, &tz, count, after.as_deref(), output),
    }
}

fn usage_error(message: &str) -> ExitCode {
    errln!("error: {message}");
    ExitCode::from(2)
}

fn next(
    expr: &str,
    zone: &str,
    count: usize,
    after: Option<&str>,
    output: OutputFormat,
) -> ExitCode {
    let tz = match parse_tz(zone) {
        Ok(tz) => tz,
        Err(e) => return usage_error(&e.to_string()),
    };
    let schedule = match Schedule::parse(expr, tz) {
        Ok(s) => s,
        Err(e) => return usage_error(&e.to_string()),
    };
    let mut t = match after {
        None => crate::clock::now(),
        Some(text) => match DateTime::parse_from_rfc3339(text) {
            Ok(t) => t.with_timezone(&Utc),
            Err(_) => {
                return usage_error(&format!(
                    "invalid --after `{text}`: expected an RFC 3339 time such as 2026-03-08T07:00:00Z"
                ));
            }
        },
    };
    let start = t;
    let mut times = Vec::with_capacity(count.min(10_000));
    for _ in 0..count {
        let Some(next) = schedule.next_fire(t) else {
            break;
        };
        times.push(next.to_rfc3339_opts(SecondsFormat::Secs, true));
        t = next;
    }
    if times.is_empty() && count > 0 {
        errln!(
            "error: {expr:?} never fires after {}",
            start.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        errln!(
            "  help: {}",
            if schedule.is_one_shot() {
                "a one-shot time fires once, and this one is not later"
            } else {
                "no date matches its day-of-month and month fields"
            }
        );
        return ExitCode::FAILURE;
    }
    match output {
        OutputFormat::Text => {
            for time in &times {
                outln!("{time}");
            }
        }
        OutputFormat::Json => {
            // Printing cannot fail (crate::output); serializing strings cannot either.
            let _ = emit_json(&times);
        }
    }
    ExitCode::SUCCESS
}

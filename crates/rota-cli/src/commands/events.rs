//! `rota events [--follow] [--since D] [--type T] [--sinks]`: the outbox of
//! the scheduler's store, listed, followed, or summed up per sink.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use rota_engine::config::Config;
use rota_scheduler::Outbox;
use rota_scheduler::outbox::{EventQuery, StoredEvent};
use serde::Serialize;

use crate::backend;
use crate::cli::{EventsArgs, GlobalArgs, OutputFormat};
use crate::output::{Hint, emit_json, outln};

/// How often `--follow` looks for new events.
const FOLLOW_POLL: Duration = Duration::from_millis(500);
/// Events read per query.
const PAGE: u32 = 1000;

/// One listed event.
#[derive(Debug, Serialize)]
struct Listed {
    /// Its position in the outbox (the SSE id).
    seq: i64,
    /// The CloudEvent.
    event: serde_json::Value,
    /// Where it stands with each sink.
    deliveries: Vec<Delivery>,
}

#[derive(Debug, Serialize)]
struct Delivery {
    sink: String,
    state: String,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The event types `patterns` select (empty: all).
fn kinds(patterns: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for p in patterns {
        let matched: Vec<&str> = rota_rotation::events::TYPES
            .iter()
            .copied()
            .filter(|k| rota_kms::pattern::wildcard_match(p, k))
            .collect();
        if matched.is_empty() {
            return Err(Hint::error(
                format!("--type {p:?} matches no event type"),
                format!("event types: {}", rota_rotation::events::TYPES.join(", ")),
            ));
        }
        out.extend(matched.into_iter().map(str::to_owned));
    }
    Ok(out)
}

/// `--since`: a duration back from now, or an RFC 3339 time.
fn since_ms(since: Option<&str>) -> Result<Option<i64>> {
    let Some(s) = since else { return Ok(None) };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(Some(t.timestamp_millis()));
    }
    match rota_clock::parse_duration(s) {
        Ok(d) => {
            let back = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
            Ok(Some((crate::clock::now() - back).timestamp_millis()))
        }
        Err(_) => Err(Hint::error(
            format!("--since {s:?} is neither a duration nor a time"),
            "e.g. --since 1h, --since 7d or --since 2026-12-01T00:00:00Z",
        )),
    }
}

pub(crate) async fn run(
    global: &GlobalArgs,
    config: &Config,
    args: &EventsArgs,
) -> Result<ExitCode> {
    let data_dir = backend::data_dir(global, config);
    let choice = crate::store::choice(global, Some(config), &data_dir)?;
    if !choice.exists() && !args.follow {
        return print(global, &[], args.sinks);
    }
    let outbox = choice.open(&super::rotation::owner_id())?.outbox;
    if args.sinks {
        return sinks(global, &*outbox);
    }
    let mut query = EventQuery {
        after_seq: 0,
        since_ms: since_ms(args.since.as_deref())?,
        kinds: kinds(&args.types)?,
        limit: PAGE,
    };
    let mut last: VecDeque<StoredEvent> = VecDeque::new();
    loop {
        let page = outbox.events(&query)?;
        let full = page.len() == PAGE as usize;
        for e in page {
            query.after_seq = e.seq;
            last.push_back(e);
            if last.len() > args.limit {
                last.pop_front();
            }
        }
        if !full {
            break;
        }
    }
    let first = listed(&*outbox, last.into_iter().collect())?;
    if !args.follow {
        return print(global, &first, false);
    }
    // Following: one line (or JSON object) per event, as they come.
    for l in &first {
        print_one(global, l)?;
    }
    let mut stop = crate::signals::StopSignal::new();
    loop {
        tokio::select! {
            () = stop.recv() => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(FOLLOW_POLL) => {}
        }
        let o = Arc::clone(&outbox);
        let q = query.clone();
        let page = tokio::task::spawn_blocking(move || o.events(&q)).await??;
        if let Some(e) = page.last() {
            query.after_seq = e.seq;
        }
        for l in listed(&*outbox, page)? {
            print_one(global, &l)?;
        }
    }
}

fn listed(outbox: &dyn Outbox, events: Vec<StoredEvent>) -> Result<Vec<Listed>> {
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    let states = outbox.delivery_states(&seqs)?;
    Ok(events
        .into_iter()
        .map(|e| Listed {
            seq: e.seq,
            event: serde_json::from_str(&e.body).unwrap_or(serde_json::Value::Null),
            deliveries: states
                .iter()
                .filter(|d| d.seq == e.seq)
                .map(|d| Delivery {
                    sink: d.sink.clone(),
                    state: d.state.clone(),
                    attempts: d.attempts,
                    error: d.error.clone(),
                })
                .collect(),
        })
        .collect())
}

fn line(l: &Listed) -> String {
    let field = |k: &str| l.event[k].as_str().unwrap_or("-").to_owned();
    let deliveries = if l.deliveries.is_empty() {
        "-".to_owned()
    } else {
        l.deliveries
            .iter()
            .map(|d| match d.state.as_str() {
                "delivered" => format!("{}:delivered", d.sink),
                other => format!("{}:{other}({} attempts)", d.sink, d.attempts),
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "{}  {:<24}  {}  {deliveries}",
        field("time"),
        field("type"),
        field("subject")
    )
}

fn print_one(global: &GlobalArgs, l: &Listed) -> Result<()> {
    match global.output {
        OutputFormat::Json => outln!("{}", serde_json::to_string(l)?),
        OutputFormat::Text => outln!("{}", line(l)),
    }
    Ok(())
}

fn print(global: &GlobalArgs, listed: &[Listed], sinks: bool) -> Result<ExitCode> {
    if global.output == OutputFormat::Json {
        emit_json(&listed)?;
    } else if listed.is_empty() {
        outln!(
            "{}",
            if sinks {
                "No events were addressed to any sink yet."
            } else {
                "No events recorded."
            }
        );
    } else {
        for l in listed {
            outln!("{}", line(l));
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Serialize)]
struct SinkRow {
    sink: String,
    pending: u64,
    delivered: u64,
    dead: u64,
    dropped: u64,
    oldest_pending: Option<String>,
}

fn sinks(global: &GlobalArgs, outbox: &dyn Outbox) -> Result<ExitCode> {
    let rows: Vec<SinkRow> = outbox
        .sinks()?
        .into_iter()
        .map(|c| SinkRow {
            sink: c.sink,
            pending: c.pending,
            delivered: c.delivered,
            dead: c.dead,
            dropped: c.dropped,
            oldest_pending: c
                .oldest_pending_ms
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(rota_rotation::report::rfc3339),
        })
        .collect();
    if global.output == OutputFormat::Json {
        emit_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        outln!("No events were addressed to any sink yet.");
        return Ok(ExitCode::SUCCESS);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.sink.clone(),
                r.pending.to_string(),
                r.delivered.to_string(),
                r.dead.to_string(),
                r.dropped.to_string(),
                r.oldest_pending.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    outln!(
        "{}",
        crate::output::table(
            &[
                "SINK",
                "PENDING",
                "DELIVERED",
                "DEAD",
                "DROPPED",
                "OLDEST PENDING"
            ],
            &cells
        )
    );
    Ok(ExitCode::SUCCESS)
}

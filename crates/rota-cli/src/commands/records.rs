//! `rota status` and `rota history [NAME]`: the rows of
//! `rota_rotation::report`, read from the scheduler's store and the
//! history in the data directory, printed as a table or lines, or JSON.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use rota_engine::config::Config;
use rota_rotation::HistoryStore;
use rota_rotation::report::{self, Records, StatusRow, Subject};
use serde::Serialize;

use super::lifecycle;
use crate::backend;
use crate::cli::{GlobalArgs, HistoryArgs, OutputFormat};
use crate::output::{Hint, emit_json, errln, outln};

/// The scheduler's store and the history (see [`crate::store`]), or `None`
/// when nothing was recorded yet (no SQLite file).
type Opened = (
    Arc<dyn rota_scheduler::JobStore>,
    Arc<dyn HistoryStore>,
    Arc<dyn rota_scheduler::Outbox>,
);

fn open_records(
    global: &GlobalArgs,
    config: Option<&Config>,
    data_dir: &Path,
) -> Result<Option<Opened>> {
    let choice = crate::store::choice(global, config, data_dir)?;
    if !choice.exists() {
        return Ok(None);
    }
    let stores = choice.open(&super::rotation::owner_id())?;
    Ok(Some((stores.jobs, stores.history, stores.outbox)))
}

pub(crate) async fn status(global: &GlobalArgs, config: &Config) -> Result<ExitCode> {
    let opened = open_records(global, Some(config), &backend::data_dir(global, config))?;
    let records = opened.as_ref().map(|(store, history, _)| Records {
        store: &**store,
        history: &**history,
    });
    let mut targets =
        super::rotation::recorded_targets(config, opened.as_ref().map(|(_, h, _)| &**h));
    // An interval no daemon scheduled yet counts from the secret's last
    // rotation, which only KMS knows: ask it (a data directory another
    // process holds leaves the interval as it is).
    let unscheduled_interval = |t: &rota_rotation::RotationTarget| {
        rota_scheduler::Schedule::parse_in(&t.schedule, &t.timezone)
            .is_ok_and(|s| s.unanchored_interval().is_some())
            && opened
                .as_ref()
                .is_none_or(|(store, _, _)| store.job(&t.job_name()).ok().flatten().is_none())
    };
    if targets.rotations.iter().any(unscheduled_interval) {
        match backend::resolve(global, config).await {
            Ok(b) => targets.anchor_intervals(&b.client).await,
            Err(e) => {
                tracing::debug!(error = %format!("{e:#}"), "next slots of intervals not anchored")
            }
        }
    }
    let mut rows = report::status(&targets, records.as_ref(), crate::clock::now())?;
    if let Some((_, _, outbox)) = &opened {
        add_consumers(global, config, &**outbox, &mut rows).await;
    }
    let code = print_status(global, &rows, "No rotations or workflows are configured.")?;
    if global.output == OutputFormat::Text
        && let Some((_, _, outbox)) = &opened
    {
        print_sink_trouble(&**outbox);
    }
    Ok(code)
}

/// What each secret's consumers (`rota agent`) reported, and whether they
/// are on ACSCurrent (read from KMS, for the secrets that have reports).
async fn add_consumers(
    global: &GlobalArgs,
    config: &Config,
    outbox: &dyn rota_scheduler::Outbox,
    rows: &mut [StatusRow],
) {
    let mut kms = None;
    for row in rows.iter_mut() {
        let StatusRow::Rotation(r) = row else {
            continue;
        };
        let Ok(reports) = outbox.adoption(&r.secret) else {
            continue;
        };
        if reports.is_empty() {
            continue;
        }
        if kms.is_none() {
            match backend::resolve(global, config).await {
                Ok(b) => kms = Some(b.client.clone()),
                Err(_) => return,
            }
        }
        let current = match &kms {
            Some(k) => k.list_all_versions(&r.secret).await.ok().and_then(|vs| {
                vs.into_iter()
                    .find(|v| v.version_stages.contains(rota_kms::kms::stage::CURRENT))
                    .map(|v| v.version_id)
            }),
            None => None,
        };
        r.consumers = reports
            .into_iter()
            .map(|c| report::ConsumerStatus {
                on_current: current.as_deref() == Some(c.version_id.as_str()),
                consumer: c.consumer,
                version_id: c.version_id,
                reloaded: c.reloaded,
                reported_at: chrono::DateTime::from_timestamp_millis(c.at_ms),
            })
            .collect();
    }
}

/// One line per notify sink with dead or pending events (text only).
fn print_sink_trouble(outbox: &dyn rota_scheduler::Outbox) {
    let Ok(sinks) = outbox.sinks() else { return };
    for c in sinks.iter().filter(|c| c.dead > 0 || c.pending > 0) {
        let oldest = c
            .oldest_pending_ms
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| format!(", oldest pending from {}", report::rfc3339(t)))
            .unwrap_or_default();
        outln!(
            "notify {}: {} dead, {} pending{oldest} (rota events --sinks)",
            c.sink,
            c.dead,
            c.pending
        );
    }
}

/// `rota status` when the configuration does not load (its errors are
/// printed already, or are `error`): the jobs the scheduler's store holds,
/// after a warning.
pub(crate) fn status_without_config(
    global: &GlobalArgs,
    error: Option<anyhow::Error>,
) -> Result<ExitCode> {
    let detail = error.map(|e| format!(": {e:#}")).unwrap_or_default();
    errln!(
        "warning: the configuration does not load{detail}; showing the jobs in the scheduler's store (a running daemon keeps these until a reload succeeds)"
    );
    let data_dir = global
        .data_dir
        .clone()
        .unwrap_or_else(|| lifecycle::config_root(&lifecycle::config_path(global)).join(".rota"));
    let Some((store, history, _)) = open_records(global, None, &data_dir)? else {
        errln!("error: no scheduler store in {}", data_dir.display());
        return Ok(ExitCode::FAILURE);
    };
    let rows = report::status_from_store(
        &Records {
            store: &*store,
            history: &*history,
        },
        crate::clock::now(),
    )?;
    print_status(global, &rows, "The scheduler's store holds no jobs.")
}

fn print_status(global: &GlobalArgs, rows: &[StatusRow], none: &str) -> Result<ExitCode> {
    if global.output == OutputFormat::Json {
        emit_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        outln!("{none}");
        return Ok(ExitCode::SUCCESS);
    }
    let at =
        |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or_else(|| "-".into(), report::rfc3339);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| match r {
            StatusRow::Rotation(x) => vec![
                r.name(),
                x.verification.as_deref().map_or_else(
                    || x.state.as_str().to_owned(),
                    |v| {
                        // The state column stays short: the reason line below
                        // carries the rest.
                        v.split(':').next().unwrap_or(v).to_owned()
                    },
                ),
                x.plugin.clone(),
                at(x.last_rotation),
                at(x.next_slot),
            ],
            StatusRow::Workflow(w) => vec![
                r.name(),
                w.state.as_str().into(),
                "workflow".into(),
                at(w.last_run),
                at(w.next_slot),
            ],
        })
        .collect();
    // Which daemon holds a running job: a column only while one does.
    let held: Vec<Option<&str>> = rows.iter().map(StatusRow::held_by).collect();
    let (headers, cells): (Vec<&str>, Vec<Vec<String>>) = if held.iter().any(Option::is_some) {
        let cells = cells
            .into_iter()
            .zip(&held)
            .map(|(mut c, h)| {
                c.push(h.unwrap_or("-").to_owned());
                c
            })
            .collect();
        (
            vec![
                "NAME",
                "STATE",
                "PLUGIN",
                "LAST RUN",
                "NEXT SLOT",
                "HELD BY",
            ],
            cells,
        )
    } else {
        (
            vec!["NAME", "STATE", "PLUGIN", "LAST RUN", "NEXT SLOT"],
            cells,
        )
    };
    outln!("{}", crate::output::table(&headers, &cells));
    for r in rows {
        if let Some(reason) = r.reason() {
            outln!("{}: {reason}", r.name());
        }
    }
    for r in rows {
        let StatusRow::Rotation(x) = r else { continue };
        if x.consumers.is_empty() {
            continue;
        }
        let on = x
            .consumers
            .iter()
            .filter(|c| c.on_current && c.reloaded)
            .count();
        let each: Vec<String> = x
            .consumers
            .iter()
            .map(|c| {
                format!(
                    "{} {} ({}{}, reported {})",
                    c.consumer,
                    if c.on_current {
                        "on ACSCurrent"
                    } else {
                        "behind"
                    },
                    c.version_id,
                    if c.reloaded { "" } else { ", reload failed" },
                    c.reported_at.map_or_else(|| "-".into(), report::rfc3339)
                )
            })
            .collect();
        outln!(
            "{}: consumers: {on} of {} on ACSCurrent: {}",
            r.name(),
            x.consumers.len(),
            each.join("; ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

// ------------------------------------------------------------------ history

/// One row of `rota history`: a rotation run, or a workflow run.
#[derive(Serialize)]
#[serde(untagged)]
enum HistoryRow {
    Rotation(report::RotationRun),
    Workflow(rota_rotation::WorkflowRunRecord),
}

pub(crate) fn history(
    global: &GlobalArgs,
    config: &Config,
    args: &HistoryArgs,
) -> Result<ExitCode> {
    let Some((_, h, _)) = open_records(global, Some(config), &backend::data_dir(global, config))?
    else {
        let targets = config.targets();
        if let Some(name) = args.name.as_deref()
            && matches!(targets.resolve(name), Subject::Unknown)
        {
            return Err(unknown_name(name, &targets));
        }
        return print_history(global, &[]);
    };
    let targets = super::rotation::recorded_targets(config, Some(&*h));
    let limit = u32::try_from(args.limit).unwrap_or(u32::MAX);
    let mut rows: Vec<HistoryRow> = Vec::new();
    let rotations = |secrets: &[&str]| -> Result<Vec<HistoryRow>> {
        let mut steps = Vec::new();
        for s in secrets {
            steps.extend(h.list(Some(s), 100_000)?);
        }
        steps.sort_by_key(|s| s.id);
        Ok(report::rotation_runs(steps)
            .into_iter()
            .map(HistoryRow::Rotation)
            .collect())
    };
    match args.name.as_deref().map(|n| (n, targets.resolve(n))) {
        None => {
            rows.extend(
                report::rotation_runs(h.list(None, 100_000)?)
                    .into_iter()
                    .map(HistoryRow::Rotation),
            );
            rows.extend(
                h.workflow_runs(None, limit)?
                    .into_iter()
                    .map(HistoryRow::Workflow),
            );
        }
        Some((_, Subject::Rotations(found))) => {
            let secrets: Vec<&str> = found.iter().map(|t| t.secret.as_str()).collect();
            rows = rotations(&secrets)?;
        }
        Some((_, Subject::Workflow(w))) => {
            rows.extend(
                h.workflow_runs(Some(&w), limit)?
                    .into_iter()
                    .map(HistoryRow::Workflow),
            );
        }
        // A secret outside this configuration may still have a history.
        Some((name, Subject::Unknown)) => {
            rows = rotations(&[name])?;
            if rows.is_empty() {
                return Err(unknown_name(name, &targets));
            }
        }
    }
    let skip = rows.len().saturating_sub(args.limit);
    print_history(global, &rows[skip..])
}

/// `NAME` names nothing configured and nothing recorded.
fn unknown_name(name: &str, targets: &rota_rotation::Targets) -> anyhow::Error {
    let mut known: Vec<String> = Vec::new();
    for t in &targets.rotations {
        for n in [Some(&t.secret), t.address.as_ref(), Some(&t.rotation)]
            .into_iter()
            .flatten()
        {
            if !known.contains(n) && n != rota_rotation::AUTO_NAME {
                known.push(n.clone());
            }
        }
    }
    known.extend(
        targets
            .workflows
            .iter()
            .map(|w| format!("workflow:{}", w.name)),
    );
    let refs: Vec<&str> = known.iter().map(String::as_str).collect();
    let did_you_mean = rota_engine::suggest(name, &refs);
    Hint::error(
        format!("no rotation, secret or workflow named {name:?} is configured or recorded"),
        if known.is_empty() {
            "nothing rotates in this configuration yet".to_owned()
        } else {
            format!("{did_you_mean}NAME is one of: {}", known.join(", "))
        },
    )
}

fn print_history(global: &GlobalArgs, rows: &[HistoryRow]) -> Result<ExitCode> {
    if global.output == OutputFormat::Json {
        emit_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        outln!("No rotations recorded.");
    }
    for row in rows {
        match row {
            HistoryRow::Rotation(r) => {
                outln!(
                    "{}  {}  {}  attempt {}  {}  ({})",
                    report::rfc3339_millis(r.ended_at),
                    r.secret,
                    r.token,
                    r.attempt,
                    r.outcome.as_str(),
                    r.plugin
                );
                for s in &r.steps {
                    let err = s
                        .error
                        .as_ref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default();
                    outln!(
                        "  {:<8} {:<6} {:>6} ms{err}",
                        s.step.name(),
                        s.outcome.as_str(),
                        s.duration_ms
                    );
                }
            }
            HistoryRow::Workflow(w) => {
                let detail = match (&w.summary, &w.error) {
                    (_, Some(e)) => e.clone(),
                    (Some(s), None) => s.clone(),
                    (None, None) => String::new(),
                };
                outln!(
                    "{}  workflow:{}  attempt {}  {}  {:>6} ms  {detail}",
                    report::rfc3339_millis(w.at),
                    w.workflow,
                    w.attempt,
                    w.outcome.as_str(),
                    w.duration_ms
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

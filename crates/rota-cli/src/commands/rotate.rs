//! `rota rotate NAME…|--all [--dry-run]`: rotations now, through
//! `rota_rotation`'s protocol, printed as typed rows.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use rota_rotation::{
    NoHistory, PluginRegistry, RotationOutcome, RotationTarget, Rotator, RunOutcome,
    RunRotationError, Step,
};
use serde::Serialize;

use super::lifecycle;
use super::rotation::{
    NOTIFY_TIMEOUT, crash_hook, live_targets, request, resolve_rotation, rotate_progress, select,
    unnamed_reason,
};
use crate::backend::{self, Backend};
use crate::cli::{GlobalArgs, OutputFormat, RotateArgs};
use crate::output::{emit_json, errln, outln};

/// A `rota rotate --dry-run` row.
#[derive(Serialize)]
struct DryRunRow {
    #[serde(skip_serializing_if = "Option::is_none")]
    current_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<Vec<String>>,
    plugin: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    probe: Option<Probe>,
    secret: String,
}

/// The read-only probe of a dry run.
#[derive(Serialize)]
struct Probe {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    ok: bool,
}

/// A `rota rotate` row.
#[derive(Serialize)]
struct RotateRow {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    outcome: RunOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    retryable: Option<bool>,
    secret: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<Step>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
}

pub(crate) async fn rotate(global: &GlobalArgs, args: RotateArgs) -> Result<ExitCode> {
    let crash = match crash_hook() {
        Ok(h) => h,
        Err(e) => {
            errln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let Some((config, registry)) = lifecycle::load_with_plugins(global, &args.vars)? else {
        return Ok(ExitCode::FAILURE);
    };
    let backend = backend::resolve(global, &config).await?;
    if args.dry_run {
        let (live, unnamed) = live_targets(&config, &backend.client, None).await?;
        let targets = select(&live, &args.names, args.all)?;
        refuse_unnamed(&targets, &unnamed)?;
        return dry_run(global, &backend, registry, &targets).await;
    }
    let owner = super::rotation::owner_id();
    let stores = super::rotation::open_stores(global, &config, &backend, &owner)?;
    let resolved = resolve_rotation(backend, stores, registry, crash, None)?;
    let events = crate::events::open(&config, resolved.outbox.clone())?;
    let (live, unnamed) =
        live_targets(&config, &resolved.backend.client, Some(&*resolved.history)).await?;
    let targets = select(&live, &args.names, args.all)?;
    refuse_unnamed(&targets, &unnamed)?;
    let mut rows = Vec::new();
    let task = rotate_progress(global, "rotate", targets.len());
    for t in &targets {
        task.set_item(&t.secret);
        let mut req = request(t);
        if !args.verify {
            req.verify = None;
        }
        let started = events.event(
            rota_rotation::events::event_id(&["rotation.started", &t.job_name(), &req.token]),
            "rotation.started",
            &req.secret,
            events.now(),
            serde_json::json!({
                "rotation": t.rotation,
                "plugin": req.plugin,
                "attempt": req.attempt,
                "version_id": req.token,
            }),
        );
        events.append(vec![started]).await;
        let result = resolved.jobs.rotate(&req).await;
        if !matches!(result, Err(RunRotationError::Busy(_))) {
            let ended = rota_rotation::events::run::outcome(
                &events,
                &t.job_name(),
                &t.rotation,
                &req,
                None,
                &result,
            );
            events.append(vec![ended]).await;
        }
        if let Err(e) = &result {
            let clock = crate::clock::shared();
            rota_rotation::daemon::notify_manual_failure(
                t,
                e,
                req.attempt,
                &*clock,
                NOTIFY_TIMEOUT,
            )
            .await;
        }
        let row = rotate_row(t, result);
        tracing::info!(secret.name = %t.secret, outcome = row.outcome.as_str(), "rotation done");
        rows.push(row);
        task.inc(1);
    }
    drop(task);
    crate::events::deliver_now(&events).await;
    drop(resolved.history);
    match global.output {
        OutputFormat::Json => emit_json(&rows)?,
        OutputFormat::Text => rows.iter().for_each(print_rotate_row),
    }
    drop(resolved.backend);
    let failed = rows
        .iter()
        .filter(|r| matches!(r.outcome, RunOutcome::Failed | RunOutcome::Busy))
        .count();
    if failed > 0 {
        let s = if rows.len() == 1 { "" } else { "s" };
        errln!("{failed} of {} rotation{s} failed", rows.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Refuses selected `$Auto` targets KMS has not named yet.
fn refuse_unnamed(targets: &[RotationTarget], unnamed: &[String]) -> Result<()> {
    let Some(t) = targets.iter().find(|t| t.awaits_live_name()) else {
        return Ok(());
    };
    let address = t.address.clone().or_else(|| unnamed.first().cloned());
    Err(crate::output::Hint::error(
        format!("{} cannot rotate yet", t.label()),
        unnamed_reason(address.as_deref().unwrap_or(t.label())),
    ))
}

fn rotate_row(t: &RotationTarget, result: Result<RotationOutcome, RunRotationError>) -> RotateRow {
    let mut row = RotateRow {
        error: None,
        outcome: RunOutcome::Failed,
        retryable: None,
        secret: t.secret.clone(),
        step: None,
        version: None,
    };
    match result {
        Ok(o) => {
            row.outcome = RunOutcome::of(&o);
            row.version = Some(match o {
                RotationOutcome::Rotated { version_id, .. }
                | RotationOutcome::AlreadyDone { version_id } => version_id,
            });
        }
        Err(RunRotationError::Busy(_)) => {
            row.outcome = RunOutcome::Busy;
            row.error = Some("another rotation of this secret is running".into());
        }
        Err(RunRotationError::Rotation(e)) => {
            row.step = Some(e.step);
            row.retryable = Some(e.retryable);
            row.error = Some(e.message);
        }
        Err(e) => row.error = Some(format!("{e:#}")),
    }
    row
}

fn print_rotate_row(r: &RotateRow) {
    let (s, v, e) = (
        &r.secret,
        r.version.as_deref().unwrap_or_default(),
        r.error.as_deref().unwrap_or_default(),
    );
    match r.outcome {
        RunOutcome::Rotated => outln!("{s}: rotated to version {v}"),
        RunOutcome::Resumed => {
            outln!("{s}: a rotation was already in progress; resumed and finished it: version {v}")
        }
        RunOutcome::AlreadyDone => outln!("{s}: already rotated: version {v}"),
        RunOutcome::Busy => outln!("{s}: skipped: {e}"),
        _ => outln!(
            "{s}: failed{}: {e}",
            r.step
                .map(|st| format!(" in step {st}"))
                .unwrap_or_default()
        ),
    }
}

async fn dry_run(
    global: &GlobalArgs,
    backend: &Backend,
    registry: PluginRegistry,
    targets: &[RotationTarget],
) -> Result<ExitCode> {
    let rotator = Rotator::new(
        backend.client.clone(),
        backend.api.clone(),
        Arc::new(registry),
        Arc::new(NoHistory),
    )
    .with_clock(crate::clock::shared());
    let mut rows = Vec::new();
    let task = rotate_progress(global, "dry run", targets.len());
    for t in targets {
        task.set_item(&t.secret);
        rows.push(match rotator.dry_run(&request(t)).await {
            // A failed probe is a finding, not an error: the target may
            // reject the current value for reasons rotation fixes.
            Ok(r) => DryRunRow {
                current_version: Some(r.current_version),
                error: None,
                plan: Some(r.plan),
                plugin: r.plugin,
                probe: Some(Probe {
                    ok: r.probe.is_ok(),
                    error: r.probe.err(),
                }),
                secret: r.secret,
            },
            Err(e) => DryRunRow {
                current_version: None,
                error: Some(e.to_string()),
                plan: None,
                plugin: t.plugin.clone(),
                probe: None,
                secret: t.secret.clone(),
            },
        });
        task.inc(1);
    }
    drop(task);
    match global.output {
        OutputFormat::Json => emit_json(&rows)?,
        OutputFormat::Text => {
            rows.iter().for_each(print_dry_run_row);
            outln!("Dry run: nothing was generated or changed.");
        }
    }
    Ok(if rows.iter().any(|r| r.error.is_some()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_dry_run_row(r: &DryRunRow) {
    if let Some(e) = &r.error {
        outln!("{}: cannot rotate: {e}", r.secret);
        return;
    }
    outln!(
        "{}: would rotate with plugin {} (ACSCurrent is version {})",
        r.secret,
        r.plugin,
        r.current_version.as_deref().unwrap_or_default()
    );
    for line in r.plan.iter().flatten() {
        outln!("  - {line}");
    }
    match r.probe.as_ref().and_then(|p| p.error.as_deref()) {
        None => outln!("  probe: ok"),
        Some(e) => outln!("  probe: failed: {e}"),
    }
}

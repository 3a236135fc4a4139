//! `rota run [--apply] [--once [--all-due-within D]]`: the daemon over
//! `rota_rotation::Daemon` — signals, reloads, the metrics server and the
//! printed summary; the daemon core does the rest.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use rota_engine::config::Config;
use rota_engine::plan::PlanMode;
use rota_rotation::{Daemon, DaemonOptions, PluginRegistry, RunOutcome};

use super::lifecycle;
use super::rotation::{
    NOTIFY_TIMEOUT, crash_hook, live_targets, owner_id, parse_duration, resolve_rotation,
    unnamed_reason,
};
use super::workflow::WorkflowJobs;
use crate::backend::{self, Backend};
use crate::cli::{GlobalArgs, OutputFormat, RunArgs};
use crate::metrics::Metrics;
use crate::output::{emit_json, errln, out};
use crate::signals::{HangupSignal, StopSignal};

/// How often the metrics read the store's health and cluster counts.
const STORE_WATCH: Duration = Duration::from_secs(5);

pub(crate) async fn daemon(global: &GlobalArgs, args: RunArgs) -> Result<ExitCode> {
    // Before anything else: a SIGHUP or SIGTERM that arrives while the
    // daemon starts (applying, say) waits in these streams instead of
    // killing the process or being lost.
    let (mut stop, mut hangup) = (StopSignal::new(), HangupSignal::new());
    let crash = match crash_hook() {
        Ok(h) => h,
        Err(e) => {
            errln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let within = match &args.all_due_within {
        Some(s) => parse_duration(s, "--all-due-within")?,
        None => Duration::ZERO,
    };
    let grace = parse_duration(&args.grace, "--grace")?;
    // Serving starts first, so a taken address fails before anything runs
    // and /healthz answers `starting` during a long --apply.
    let metrics = args.metrics_addr.map(|_| Arc::new(Metrics::new()));
    let server = match (args.metrics_addr, &metrics) {
        (Some(addr), Some(m)) => {
            let server = crate::metrics::server::serve(addr, m.clone())
                .await
                .with_context(|| format!("cannot serve metrics on {addr}"))?;
            tracing::info!(addr = %server.local_addr(), "metrics listening");
            Some(server)
        }
        _ => None,
    };
    let Some((config, registry)) = lifecycle::load_with_plugins(global, &args.vars)? else {
        return Ok(ExitCode::FAILURE);
    };
    let mut backend = backend::resolve(global, &config).await?;
    if let Some(m) = &metrics {
        backend = backend.observed(m.clone());
    }
    // The store first: a wrong or unreachable one stops here, before
    // anything is applied or scheduled.
    let owner = owner_id();
    let stores = super::rotation::open_stores(global, &config, &backend, &owner)?;
    if args.apply && !apply_first(global, &backend, &config).await? {
        return Ok(ExitCode::FAILURE);
    }
    let resolved = resolve_rotation(backend, stores, registry, crash, metrics.as_ref())?;
    let events = crate::events::open(&config, resolved.outbox.clone())?;
    if let Some(m) = &metrics {
        events.observe(m.clone());
    }
    let events_server = match args.events_addr {
        Some(addr) => {
            let s = crate::events::server::serve(addr, events.clone())
                .await
                .with_context(|| format!("cannot serve events on {addr}"))?;
            tracing::info!(addr = %s.local_addr(), "events listening");
            Some(s)
        }
        None => None,
    };
    let workflows = Arc::new(WorkflowJobs::load(&config, global, &resolved.backend)?);
    let daemon = Daemon::new(
        resolved.store.clone(),
        resolved.jobs.clone(),
        DaemonOptions {
            owner,
            lease_ttl: resolved.lease_ttl,
            concurrency: args.concurrency,
            clock: crate::clock::shared(),
            workflows: workflows.clone(),
            history: resolved.history.clone(),
            observer: metrics
                .clone()
                .map(|m| m as Arc<dyn rota_rotation::DaemonObserver>),
            notify_timeout: NOTIFY_TIMEOUT,
            events: Some(events.clone()),
        },
    );
    if let Some(m) = &metrics {
        tokio::spawn(m.clone().watch_store(resolved.store.clone(), STORE_WATCH));
    }
    let targets = runnable_targets(&config, &resolved.backend.client, &*resolved.history).await?;
    if let Some(m) = &metrics {
        m.expect(&targets);
    }
    let registered = daemon
        .register(&targets)
        .await
        .context("cannot register the rotation jobs")?;
    if args.once {
        let report = daemon
            .once(&registered, within, grace, |runner| {
                if let Some(s) = &server {
                    s.running(runner.clone());
                }
            })
            .await?;
        daemon.drain_events(crate::events::DRAIN).await;
        if let Some(s) = server {
            s.shutdown().await;
        }
        if let Some(s) = events_server {
            s.shutdown().await;
        }
        print_once(global, &report)?;
        return Ok(if report.any_failed() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    let runner = daemon.start().await.context("cannot start the scheduler")?;
    if let Some(s) = &server {
        s.running(runner);
    }
    if !global.quiet {
        let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        errln!(
            "rota run: {} and {} scheduled (owner {}); Ctrl-C or SIGTERM stops",
            plural(targets.rotations.len(), "rotation"),
            plural(targets.workflows.len(), "workflow"),
            daemon.owner()
        );
    }
    let reloading = Reloading {
        global,
        kms: &resolved.backend.client,
        history: &*resolved.history,
        vars: &args.vars,
        registry: &resolved.registry,
        workflows: &workflows,
        metrics: metrics.as_ref(),
        events: &events,
    };
    loop {
        tokio::select! {
            () = stop.recv() => break,
            () = hangup.recv() => reloading.reload(&daemon).await,
        }
    }
    if !global.quiet {
        errln!(
            "stopping: letting rotations in flight finish (up to {}s)",
            grace.as_secs()
        );
    }
    // /healthz answers 503 (draining) from here until the server stops.
    let report = daemon.shutdown(grace).await;
    if let Some(s) = server {
        s.shutdown().await;
    }
    if let Some(s) = events_server {
        s.shutdown().await;
    }
    if !report.drained {
        let n = report.cancelled;
        let (s, them) = if n == 1 { ("", "it") } else { ("s", "them") };
        errln!("{n} rotation{s} cancelled; the next run resumes {them}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `rota run --apply`: applies the configuration; whether it succeeded.
async fn apply_first(global: &GlobalArgs, backend: &Backend, config: &Config) -> Result<bool> {
    let scope = crate::cli::ScopeArgs::default();
    let Some(plan) = lifecycle::make_plan(backend, config, PlanMode::Apply, None, &scope).await?
    else {
        return Ok(false);
    };
    let code = lifecycle::execute(
        global,
        backend,
        config,
        &plan,
        lifecycle::Execution {
            approval: lifecycle::Approval::Approved,
            verb: lifecycle::Verb::Apply,
            // With -o json standard output is the run's summary alone.
            report_as: match global.output {
                OutputFormat::Json => lifecycle::Report::FailuresOnly,
                OutputFormat::Text => lifecycle::Report::AsOutput,
            },
            parallelism: rota_engine::ApplyOptions::default().parallelism,
        },
    )
    .await?;
    Ok(code == ExitCode::SUCCESS)
}

/// The targets the daemon schedules ([`live_targets`]); a `$Auto` secret
/// KMS has not named yet is left out, with a warning.
async fn runnable_targets(
    config: &Config,
    kms: &rota_kms::KmsClient,
    history: &dyn rota_rotation::HistoryStore,
) -> Result<rota_rotation::Targets> {
    let (mut targets, unnamed) = live_targets(config, kms, Some(history)).await?;
    for address in &unnamed {
        tracing::warn!("{}; it is not scheduled", unnamed_reason(address));
    }
    targets.rotations.retain(|t| !t.awaits_live_name());
    Ok(targets)
}

/// What a reload (SIGHUP) needs.
struct Reloading<'a> {
    global: &'a GlobalArgs,
    kms: &'a rota_kms::KmsClient,
    history: &'a dyn rota_rotation::HistoryStore,
    vars: &'a crate::cli::VarArgs,
    registry: &'a PluginRegistry,
    workflows: &'a WorkflowJobs,
    metrics: Option<&'a Arc<Metrics>>,
    events: &'a Arc<rota_rotation::events::Events>,
}

impl Reloading<'_> {
    /// Re-reads the configuration and swaps in its jobs and workflows, or
    /// keeps everything as it is (and says why) when the configuration is
    /// invalid, names a plugin this daemon did not load at start, or has a
    /// workflow that does not compile.
    async fn reload(&self, daemon: &Daemon) {
        let c = match lifecycle::load(self.global, self.vars) {
            Ok(Some(c)) => c,
            Ok(None) => {
                tracing::error!("the new configuration is invalid; keeping the jobs");
                return;
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot read the new configuration; keeping the jobs");
                return;
            }
        };
        // Plugins load at start: a reload cannot bring new ones in.
        if let Err(d) = c.validate_plugins(self.registry) {
            tracing::error!(
                error = %d,
                "the new configuration needs plugins this daemon did not load at start (restart it to load them); keeping the jobs"
            );
            return;
        }
        let sinks = match crate::events::events_config(&c) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "a notify block cannot be used; keeping the jobs");
                return;
            }
        };
        let prepared = match self.workflows.prepare(&c) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "a workflow does not load; keeping the jobs");
                return;
            }
        };
        let targets = match runnable_targets(&c, self.kms, self.history).await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot read the live names of the secrets; keeping the jobs");
                return;
            }
        };
        if let Err(e) = targets.job_specs() {
            tracing::error!(error = %format!("{:#}", anyhow::Error::from(e)), "a schedule is invalid; keeping the jobs");
            return;
        }
        // The workflows are swapped in before their jobs exist, so a job never
        // runs without its script; if registering fails the old jobs stay and
        // the new scripts serve them (unchanged names run the new script).
        self.workflows.install(prepared);
        self.events.set_config(sinks);
        match daemon.register(&targets).await {
            Ok(n) => {
                tracing::info!(jobs = n.len(), "configuration reloaded");
                if let Some(m) = self.metrics {
                    m.expect(&targets);
                }
            }
            Err(e) => {
                tracing::error!(error = %format!("{:#}", anyhow::Error::from(e)), "reload failed; keeping the jobs")
            }
        }
    }
}

fn print_once(global: &GlobalArgs, r: &rota_rotation::OnceReport) -> Result<()> {
    if global.output == OutputFormat::Json {
        return emit_json(r);
    }
    let mut text = format!(
        "{} due: {} rotated, {} already done, {} failed, {} skipped\n",
        r.due, r.rotated, r.already_done, r.failed, r.skipped
    );
    let why = |e: &Option<String>| e.clone().unwrap_or_else(|| "unknown error".into());
    for run in r.runs.iter().filter(|x| x.outcome == RunOutcome::Failed) {
        text.push_str(&format!("failed: {}: {}\n", run.secret, why(&run.error)));
    }
    for run in r.runs.iter().filter(|x| x.outcome == RunOutcome::Skipped) {
        text.push_str(&format!("skipped: {}: {}\n", run.secret, why(&run.error)));
    }
    for w in &r.workflows {
        let detail = match w.outcome {
            RunOutcome::Failed | RunOutcome::Skipped => why(&w.error),
            _ => w.summary.clone().unwrap_or_default(),
        };
        text.push_str(&format!(
            "workflow {} {}: {detail}\n",
            w.workflow,
            w.outcome.as_str()
        ));
    }
    out!("{text}");
    Ok(())
}

//! `rota rotate | run | status | history`: rotations through the protocol of
//! `rota_rotation`, the daemon over `rota_scheduler::Runner`, and
//! what they recorded.
//!
//! State lives in the data directory (`--data-dir`, default `.rota/` beside
//! the configuration): `scheduler.db` holds the scheduler's jobs and runs
//! and the rotation step history; `locks/` the per-secret rotation locks.
//!
//! Test interface: `ROTA_TEST_CRASH_AT=<point>` makes `rota rotate` and
//! `rota run` abort (as `kill -9` would) when the rotation reaches that
//! point: `after-create`, `before-target-change`, `after-target-change`,
//! `after-set`, `after-test`, `in-finish` (see
//! `rota_rotation::crash`). An unknown name is a usage error. A
//! managed rotation on the embedded cloud reaches `after-create` and
//! `in-finish` inside the cloud's `RotateSecret` (`backend::cloud_crash_hook`).
//!
//! Exit codes: 0 success, 1 a rotation failed (or another error), 2 usage.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use rota_engine::config::{Config, RotationTarget};
use rota_engine::plan::PlanMode;
use rota_rotation::history::{HistorySink, StoredStep};
use rota_rotation::{
    CrashHook, CrashPoint, FailureNotice, NoHistory, NoticeKind, Notifier, PluginRegistry,
    RotationJobs, RotationOutcome, RotationRequest, Rotator, RunRotationError, SecretLocks,
    SqliteHistory, Step, manual_token,
};
use rota_scheduler::{
    Event, JobStore as _, ManualClock, Outcome, Runner, RunnerConfig, Schedule, SqliteStore,
};
use serde_json::json;

use crate::backend::{self, Backend};
use crate::cli::{Command, GlobalArgs, HistoryArgs, OutputFormat, RotateArgs, RunArgs};
use crate::commands::lifecycle;
use crate::metrics::server::MetricsServer;
use crate::metrics::{MeteredHistory, Metrics, outcome};
use crate::output::{Hint, emit_json, errln, out, outln};
use crate::progress;

/// The crash-injection variable.
const CRASH_VAR: &str = "ROTA_TEST_CRASH_AT";
/// The scheduler store (and rotation history) in the data directory.
const STORE_FILE: &str = "scheduler.db";

/// Runs one rotation command.
pub(crate) async fn run(command: Command, mut global: GlobalArgs) -> Result<ExitCode> {
    match command {
        Command::Rotate(args) => rotate(&global, args).await,
        Command::Run(args) => {
            if let Some(c) = &args.config {
                global.config = Some(c.clone());
            }
            daemon(&global, args).await
        }
        Command::Status(args) => {
            let Some(config) = lifecycle::load(&global, &args.vars)? else {
                return Ok(ExitCode::FAILURE);
            };
            status(&global, &config)
        }
        Command::History(args) => {
            let Some(config) = lifecycle::load(&global, &args.vars)? else {
                return Ok(ExitCode::FAILURE);
            };
            history(&global, &config, &args)
        }
        _ => bail!("not a rotation command"),
    }
}

/// The crash hook `ROTA_TEST_CRASH_AT` asks for; `Err` with the message on
/// an unknown name.
fn crash_hook() -> std::result::Result<CrashHook, String> {
    match std::env::var(CRASH_VAR) {
        Ok(v) if !v.trim().is_empty() => {
            let point: CrashPoint = v.trim().parse().map_err(|e| format!("{CRASH_VAR}: {e}"))?;
            Ok(CrashHook::new(move |p| {
                if p == point {
                    errln!("{CRASH_VAR}: aborting at {p}");
                    std::process::abort();
                }
            }))
        }
        _ => Ok(CrashHook::none()),
    }
}

/// A unique owner id for leases: host, pid and a random part.
fn owner_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    let r: u32 = rand::random();
    format!("{host}-{}-{r:08x}", std::process::id())
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_duration(s: &str, what: &str) -> Result<Duration> {
    rota_engine::resource::parse_duration(s)
        .with_context(|| format!("{what}: {s:?} is not a duration (e.g. 30s, 15m, 1h)"))
}

/// Everything a rotation needs, resolved once.
struct Resolved {
    backend: Backend,
    jobs: RotationJobs,
    history: Arc<SqliteHistory>,
    /// The plugins the rotator runs with (loaded once, at start).
    registry: Arc<PluginRegistry>,
}

fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STORE_FILE)
}

/// `metrics`: the daemon's, observing every protocol step the rotator
/// records (`rota run --metrics-addr`).
fn resolve_rotation(
    backend: Backend,
    registry: PluginRegistry,
    crash: CrashHook,
    metrics: Option<&Arc<Metrics>>,
) -> Result<Resolved> {
    std::fs::create_dir_all(&backend.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            backend.data_dir.display()
        )
    })?;
    let history = Arc::new(
        SqliteHistory::open(store_path(&backend.data_dir))
            .context("cannot open the rotation history")?,
    );
    let sink: Arc<dyn HistorySink> = match metrics {
        Some(m) => Arc::new(MeteredHistory::new(history.clone(), m.clone())),
        None => history.clone(),
    };
    let registry = Arc::new(registry);
    let rotator = Rotator::new(
        backend.client.clone(),
        backend.api.clone(),
        registry.clone(),
        sink,
    )
    .with_crash_hook(crash)
    .with_clock(crate::clock::shared());
    let jobs = RotationJobs::new(rotator, SecretLocks::new(backend.data_dir.join("locks")));
    Ok(Resolved {
        backend,
        jobs,
        history,
        registry,
    })
}

/// The targets NAME… selects: secret names, addresses (`alicloud_kms_secret.x`
/// or `x`) or rotation block names.
fn select<'a>(config: &'a Config, names: &[String], all: bool) -> Result<Vec<&'a RotationTarget>> {
    if all {
        return Ok(config.rotations.iter().collect());
    }
    let mut out: Vec<&RotationTarget> = Vec::new();
    for name in names {
        let address = if name.starts_with("alicloud_kms_secret.") {
            name.clone()
        } else {
            format!("alicloud_kms_secret.{name}")
        };
        let found: Vec<&RotationTarget> = config
            .rotations
            .iter()
            .filter(|t| {
                &t.secret == name || t.address.as_deref() == Some(&address) || &t.rotation == name
            })
            .collect();
        if found.is_empty() {
            let known: Vec<&str> = config.rotations.iter().map(|t| t.secret.as_str()).collect();
            return Err(Hint::error(
                format!("no rotation is configured for {name:?}"),
                if known.is_empty() {
                    "no rotation is configured at all: add a rotation block, or set \
                     enable_automatic_rotation on the resource"
                        .to_owned()
                } else {
                    format!(
                        "NAME is a secret name, a resource address or a rotation name; configured: {}",
                        known.join(", ")
                    )
                },
            ));
        }
        for t in found {
            if !out.iter().any(|o| o.secret == t.secret) {
                out.push(t);
            }
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------ rotate

async fn rotate(global: &GlobalArgs, args: RotateArgs) -> Result<ExitCode> {
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
    let targets = select(&config, &args.names, args.all)?;
    let backend = backend::resolve(global, &config).await?;

    if args.dry_run {
        let rotator = Rotator::new(
            backend.client.clone(),
            backend.api.clone(),
            Arc::new(registry),
            Arc::new(NoHistory),
        )
        .with_clock(crate::clock::shared());
        let mut failed = 0;
        let mut reports = Vec::new();
        let task = rotate_progress(global, "dry run", targets.len());
        for t in &targets {
            task.set_item(&t.secret);
            let req = request(t, manual_token(crate::clock::now()));
            match rotator.dry_run(&req).await {
                Ok(r) => {
                    // A failed probe is a finding, not an error: the target
                    // may reject the current value for reasons rotation fixes.
                    reports.push(json!({
                        "secret": r.secret,
                        "plugin": r.plugin,
                        "current_version": r.current_version,
                        "plan": r.plan,
                        "probe": match &r.probe { Ok(()) => json!({"ok": true}), Err(e) => json!({"ok": false, "error": e}) },
                    }));
                }
                Err(e) => {
                    failed += 1;
                    reports.push(json!({
                        "secret": t.secret,
                        "plugin": t.plugin,
                        "error": e.to_string(),
                    }));
                }
            }
            task.inc(1);
        }
        drop(task);
        match global.output {
            OutputFormat::Json => emit_json(&reports)?,
            OutputFormat::Text => {
                for r in &reports {
                    let secret = r["secret"].as_str().unwrap_or_default();
                    if let Some(e) = r["error"].as_str() {
                        outln!("{secret}: cannot rotate: {e}");
                        continue;
                    }
                    outln!(
                        "{secret}: would rotate with plugin {} (ACSCurrent is version {})",
                        r["plugin"].as_str().unwrap_or_default(),
                        r["current_version"].as_str().unwrap_or_default()
                    );
                    for line in r["plan"].as_array().into_iter().flatten() {
                        outln!("  - {}", line.as_str().unwrap_or_default());
                    }
                    match r["probe"]["error"].as_str() {
                        None => outln!("  probe: ok"),
                        Some(e) => outln!("  probe: failed: {e}"),
                    }
                }
                outln!("Dry run: nothing was generated or changed.");
            }
        }
        return Ok(if failed > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }

    let resolved = resolve_rotation(backend, registry, crash, None)?;
    let mut results = Vec::new();
    let mut failed = 0;
    let task = rotate_progress(global, "rotate", targets.len());
    for t in &targets {
        task.set_item(&t.secret);
        let req = request(t, manual_token(crate::clock::now()));
        let r = resolved.jobs.rotate(&req).await;
        let row = match r {
            Ok(RotationOutcome::Rotated {
                version_id,
                resumed,
            }) => {
                json!({"secret": t.secret, "outcome": if resumed {"resumed"} else {"rotated"}, "version": version_id})
            }
            Ok(RotationOutcome::AlreadyDone { version_id }) => {
                json!({"secret": t.secret, "outcome": "already_done", "version": version_id})
            }
            Err(RunRotationError::Busy(_)) => {
                failed += 1;
                json!({"secret": t.secret, "outcome": "busy", "error": "another rotation of this secret is running"})
            }
            Err(RunRotationError::Rotation(e)) => {
                failed += 1;
                if let (false, Some(url)) = (e.retryable, &t.on_failure.webhook) {
                    let notice = FailureNotice::new(
                        NoticeKind::Failed,
                        &t.secret,
                        &t.rotation,
                        &t.plugin,
                        Some(e.step.name().to_owned()),
                        e.to_string(),
                        req.attempt,
                        crate::clock::now(),
                    );
                    send_notice(url, &notice).await;
                }
                json!({"secret": t.secret, "outcome": "failed", "step": e.step.name(), "error": e.message, "retryable": e.retryable})
            }
            Err(e) => {
                failed += 1;
                json!({"secret": t.secret, "outcome": "failed", "error": format!("{e:#}")})
            }
        };
        tracing::info!(secret.name = %t.secret, outcome = %row["outcome"].as_str().unwrap_or_default(), "rotation done");
        results.push(row);
        task.inc(1);
    }
    drop(task);
    drop(resolved.history);
    match global.output {
        OutputFormat::Json => emit_json(&results)?,
        OutputFormat::Text => {
            for r in &results {
                let s = r["secret"].as_str().unwrap_or_default();
                let v = r["version"].as_str().unwrap_or_default();
                let e = r["error"].as_str().unwrap_or_default();
                match r["outcome"].as_str().unwrap_or_default() {
                    "rotated" => outln!("{s}: rotated to version {v}"),
                    "resumed" => outln!(
                        "{s}: a rotation was already in progress; resumed and finished it: version {v}"
                    ),
                    "already_done" => outln!("{s}: already rotated: version {v}"),
                    "busy" => outln!("{s}: skipped: {e}"),
                    _ => outln!(
                        "{s}: failed{}: {e}",
                        r["step"]
                            .as_str()
                            .map(|st| format!(" in step {st}"))
                            .unwrap_or_default()
                    ),
                }
            }
        }
    }
    drop(resolved.backend);
    if failed > 0 {
        errln!(
            "{failed} of {} rotation{} failed",
            results.len(),
            if results.len() == 1 { "" } else { "s" }
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Progress over `n` rotations (one at a time, each several API calls).
fn rotate_progress(global: &GlobalArgs, verb: &'static str, n: usize) -> progress::Task {
    progress::Task::start(
        progress::Context::detect(global),
        verb,
        "secrets",
        Some(n as u64),
        progress::LINES_FROM,
    )
}

fn request(t: &RotationTarget, token: String) -> RotationRequest {
    RotationRequest {
        secret: t.secret.clone(),
        plugin: t.plugin.clone(),
        settings: t.settings.clone(),
        token,
        attempt: 1,
    }
}

// ------------------------------------------------------------------ run

/// Per job, what this process's handler saw (for the `--once` summary).
type Seen = Arc<Mutex<HashMap<String, String>>>;

async fn daemon(global: &GlobalArgs, args: RunArgs) -> Result<ExitCode> {
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
    if args.apply {
        let Some(plan) = lifecycle::make_plan(&backend, &config, PlanMode::Apply, None).await?
        else {
            return Ok(ExitCode::FAILURE);
        };
        let code = lifecycle::execute(
            global,
            &backend,
            &config,
            &plan,
            true,
            "apply",
            // With -o json standard output is the run's summary alone.
            match global.output {
                OutputFormat::Json => lifecycle::Report::FailuresOnly,
                OutputFormat::Text => lifecycle::Report::AsOutput,
            },
        )
        .await?;
        if code != ExitCode::SUCCESS {
            return Ok(code);
        }
    }
    let resolved = resolve_rotation(backend, registry, crash, metrics.as_ref())?;
    let workflows = Arc::new(super::workflow::WorkflowJobs::load(
        &config,
        global,
        &resolved.backend,
        resolved.history.clone(),
    )?);
    let store = Arc::new(
        SqliteStore::open(store_path(&resolved.backend.data_dir))
            .context("cannot open the scheduler store")?,
    );
    let owner = owner_id();
    let seen: Seen = Arc::default();
    // Workflow job name → the summary of its run.
    let reports: Seen = Arc::default();
    // Runs in flight, for the end of --once.
    let (working_tx, mut working_rx) = tokio::sync::watch::channel(0usize);
    let working_tx = Arc::new(working_tx);
    let notifications = Arc::new(Notifications::new(&config));
    let handler = {
        let jobs = resolved.jobs.clone();
        let notifications = notifications.clone();
        let seen = seen.clone();
        let reports = reports.clone();
        let workflows = workflows.clone();
        let metrics = metrics.clone();
        move |run: rota_scheduler::JobRun| {
            let jobs = jobs.clone();
            let seen = seen.clone();
            let reports = reports.clone();
            let workflows = workflows.clone();
            let notifications = notifications.clone();
            let working_tx = working_tx.clone();
            let metrics = metrics.clone();
            async move {
                let name = run.name.to_string();
                let _working = Working::new(&working_tx);
                if let Some(m) = &metrics
                    && let Ok(lag) = (crate::clock::now() - run.due).to_std()
                {
                    // Negative under --once --all-due-within (run early on
                    // purpose): not lag, not observed.
                    m.run_started(lag);
                }
                if let Some(workflow) = name.strip_prefix("workflow:") {
                    let result = workflows.run(&run).await;
                    if let Some(m) = &metrics {
                        m.workflow_run(workflow, result.is_ok());
                    }
                    if let (Ok(summary), Ok(mut r)) = (&result, reports.lock()) {
                        r.insert(name.clone(), summary.clone());
                    }
                    if let Ok(mut s) = seen.lock() {
                        s.insert(
                            name,
                            if result.is_ok() { "ran" } else { "failed" }.to_owned(),
                        );
                    }
                    return result.map(|_| ());
                }
                let req = RotationJobs::request(&run);
                let plugin = req
                    .as_ref()
                    .map_or_else(|_| "unknown".to_owned(), |r| r.plugin.clone());
                let outcome = match req {
                    Ok(req) => jobs.rotate(&req).await.map_err(|e| {
                        notifications.failed_in(&name, e.step());
                        e.to_run_error()
                    }),
                    Err(e) => Err(e),
                };
                let text = match &outcome {
                    Ok(RotationOutcome::Rotated {
                        version_id,
                        resumed,
                    }) => {
                        tracing::info!(job.name = %name, rotation.version = %version_id, resumed, "rotated");
                        if *resumed {
                            outcome::RESUMED
                        } else {
                            outcome::ROTATED
                        }
                    }
                    Ok(RotationOutcome::AlreadyDone { version_id }) => {
                        tracing::info!(job.name = %name, rotation.version = %version_id, "already rotated");
                        outcome::ALREADY_DONE
                    }
                    Err(e) => {
                        tracing::warn!(job.name = %name, error = %e.message(), "rotation failed");
                        outcome::FAILED
                    }
                };
                if let Some(m) = &metrics {
                    m.rotation(&plugin, text);
                }
                if let Ok(mut s) = seen.lock() {
                    s.insert(name, text.to_owned());
                }
                outcome.map(|_| ())
            }
        }
    };
    // Jobs are registered on the wall clock (a new job's first slot is the
    // first fire time after now); the runner loads them when it starts.
    let registrar = Runner::new(
        store.clone(),
        crate::clock::shared(),
        RunnerConfig::with_owner(owner.clone()),
        |_run: rota_scheduler::JobRun| async { Ok::<(), rota_scheduler::RunError>(()) },
    );
    // Workflows are compiled here and again on each reload (SIGHUP).
    let workflow_specs = workflows.specs()?;
    if let Some(m) = &metrics {
        expect_configured(m, &config, &workflow_specs);
    }
    let registered = register(&registrar, &store, &config, &workflow_specs).await?;
    // Read after registering: a job registered with `rotate_immediately` is
    // due at its registration time.
    let now = crate::clock::now();
    let mut runner_config =
        RunnerConfig::with_owner(owner.clone()).max_concurrent(args.concurrency);
    let clock: Arc<dyn rota_scheduler::Clock> = if args.once {
        // A frozen clock at now + DURATION: every job due by then is due,
        // retries and later slots are not; and each job runs at most once.
        runner_config = runner_config
            .misfire_grace(within + Duration::from_secs(60))
            .single_pass(true);
        Arc::new(ManualClock::new(
            now + chrono::Duration::from_std(within).unwrap_or_default(),
        ))
    } else {
        crate::clock::shared()
    };
    let runner = Runner::new(store.clone(), clock, runner_config, handler);
    let mut events = runner.subscribe();
    // What --once waits for is read before the runner starts: a job that
    // runs (and, say, fails into needs-attention) before the read would
    // otherwise not be counted as due. Its events are not lost: the
    // subscription above is older than the runner.
    let due = if args.once {
        due_at_start(&store, &registered, now, within).await?
    } else {
        BTreeMap::new()
    };
    runner.start().await.context("cannot start the scheduler")?;
    if let Some(s) = &server {
        s.running(runner.clone());
    }
    if args.once {
        let code = once(
            global,
            &runner,
            &store,
            due,
            &mut events,
            &seen,
            &owner,
            &notifications,
            &reports,
        )
        .await?;
        // The runner is single-pass, so nothing starts after the pass; let
        // what still runs finish within the grace (on the wall clock: the
        // runner's own clock is frozen), then stop.
        let _ = tokio::time::timeout(grace, working_rx.wait_for(|n| *n == 0)).await;
        runner.shutdown(Duration::ZERO).await;
        stop_serving(server).await;
        return Ok(code);
    }
    if !global.quiet {
        errln!(
            "rota run: {} rotation job{} scheduled (owner {owner}); Ctrl-C or SIGTERM stops",
            registered.len(),
            if registered.len() == 1 { "" } else { "s" }
        );
    }
    loop {
        tokio::select! {
            () = stop.recv() => break,
            () = hangup.recv() => {
                reload(global, &args.vars, &runner, &store, &resolved.registry, &workflows, &notifications, metrics.as_ref()).await;
            }
            ev = events.recv() => {
                if let Ok(Event::Finished { name, needs_attention: true, error, attempt, .. }) = ev {
                    // Delivered aside: a slow webhook never delays a signal.
                    let notifications = notifications.clone();
                    tokio::spawn(async move {
                        notifications.needs_attention(&name, attempt, error).await;
                    });
                }
            }
        }
    }
    if !global.quiet {
        errln!(
            "stopping: letting rotations in flight finish (up to {}s)",
            grace.as_secs()
        );
    }
    // /healthz answers 503 (draining) from here until the server stops.
    let report = runner.shutdown(grace).await;
    stop_serving(server).await;
    if !report.drained {
        errln!(
            "{} rotation{} cancelled; the next run resumes {}",
            report.cancelled,
            if report.cancelled == 1 { "" } else { "s" },
            if report.cancelled == 1 { "it" } else { "them" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Creates the outcome series of every configured plugin and workflow at
/// zero (at start and on each reload).
fn expect_configured(metrics: &Metrics, config: &Config, workflows: &[rota_scheduler::JobSpec]) {
    for t in &config.rotations {
        metrics.expect_plugin(&t.plugin);
    }
    for spec in workflows {
        metrics.expect_workflow(spec.name.strip_prefix("workflow:").unwrap_or(&spec.name));
    }
}

/// Stops the metrics server, if one runs.
async fn stop_serving(server: Option<MetricsServer>) {
    if let Some(s) = server {
        s.shutdown().await;
    }
}

/// SIGHUP: re-reads the configuration and swaps in its jobs and workflows,
/// or keeps everything as it is (and says why) when the configuration is
/// invalid, names a plugin this daemon did not load at start, or has a
/// workflow that does not compile.
#[allow(clippy::too_many_arguments)]
async fn reload(
    global: &GlobalArgs,
    vars: &crate::cli::VarArgs,
    runner: &Runner,
    store: &Arc<SqliteStore>,
    registry: &PluginRegistry,
    workflows: &super::workflow::WorkflowJobs,
    notifications: &Notifications,
    metrics: Option<&Arc<Metrics>>,
) {
    let c = match lifecycle::load(global, vars) {
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
    if let Err(d) = c.validate_plugins(registry) {
        tracing::error!(
            error = %d,
            "the new configuration needs plugins this daemon did not load at start (restart it to load them); keeping the jobs"
        );
        return;
    }
    let prepared = match workflows.prepare(&c) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "a workflow does not load; keeping the jobs");
            return;
        }
    };
    let specs = match super::workflow::WorkflowJobs::specs_of(&prepared) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "a workflow schedule is invalid; keeping the jobs");
            return;
        }
    };
    // The workflows are swapped in before their jobs exist, so a job never
    // runs without its script; if registering fails the old jobs stay and
    // the new scripts serve them (unchanged names run the new script).
    workflows.install(prepared);
    match register(runner, store, &c, &specs).await {
        Ok(n) => {
            tracing::info!(jobs = n.len(), "configuration reloaded");
            notifications.reload(&c);
            if let Some(m) = metrics {
                expect_configured(m, &c, &specs);
            }
        }
        Err(e) => tracing::error!(error = %format!("{e:#}"), "reload failed; keeping the jobs"),
    }
}

// ------------------------------------------------------------------ on_failure

/// How long a webhook delivery may take.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends `notice` to `url`, logging a failed delivery.
async fn send_notice(url: &str, notice: &FailureNotice) {
    match Notifier::new(NOTIFY_TIMEOUT) {
        Ok(n) => {
            n.notify(url, notice).await;
        }
        Err(e) => tracing::warn!(error = %e, "cannot send the failure notification"),
    }
}

/// The daemon's `on_failure` notifications: the configured targets by job
/// name (replaced on reload) and the step each job's last failure was in.
struct Notifications {
    targets: Mutex<HashMap<String, RotationTarget>>,
    steps: Mutex<HashMap<String, Step>>,
}

impl Notifications {
    fn new(config: &Config) -> Self {
        let n = Self {
            targets: Mutex::default(),
            steps: Mutex::default(),
        };
        n.reload(config);
        n
    }

    fn reload(&self, config: &Config) {
        if let Ok(mut t) = self.targets.lock() {
            *t = config
                .rotations
                .iter()
                .map(|t| (t.job_name(), t.clone()))
                .collect();
        }
    }

    /// Records the step a failed attempt of `job` failed in.
    fn failed_in(&self, job: &str, step: Option<Step>) {
        if let Ok(mut s) = self.steps.lock() {
            match step {
                Some(step) => s.insert(job.to_owned(), step),
                None => s.remove(job),
            };
        }
    }

    /// `job` spent its retry budget: log it and POST to its webhook.
    async fn needs_attention(&self, job: &str, attempt: u32, error: Option<String>) {
        let target = self.targets.lock().ok().and_then(|t| t.get(job).cloned());
        let step = self.steps.lock().ok().and_then(|s| s.get(job).copied());
        tracing::error!(job.name = %job, error = ?error, "rotation needs attention");
        let Some(t) = target else { return };
        let Some(url) = &t.on_failure.webhook else {
            return;
        };
        let notice = FailureNotice::new(
            NoticeKind::NeedsAttention,
            &t.secret,
            &t.rotation,
            &t.plugin,
            step.map(|s| s.name().to_owned()),
            error.unwrap_or_default(),
            attempt,
            crate::clock::now(),
        );
        send_notice(url, &notice).await;
    }
}

/// SIGTERM or SIGINT (Ctrl-C), listened to from the daemon's start.
struct StopSignal {
    #[cfg(unix)]
    streams: Vec<tokio::signal::unix::Signal>,
}

impl StopSignal {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                streams: [SignalKind::terminate(), SignalKind::interrupt()]
                    .into_iter()
                    .filter_map(|k| signal(k).ok())
                    .collect(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Resolves at the first (or an earlier, pending) signal.
    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            if self.streams.is_empty() {
                std::future::pending::<()>().await;
            }
            let waits = self.streams.iter_mut().map(|s| Box::pin(s.recv()));
            let _ = futures_select_all(waits).await;
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Resolves when the first of `futures` does.
#[cfg(unix)]
async fn futures_select_all<F: Future + Unpin>(futures: impl Iterator<Item = F>) {
    let mut futures: Vec<F> = futures.collect();
    std::future::poll_fn(move |cx| {
        for f in &mut futures {
            if std::pin::Pin::new(f).poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await;
}

/// SIGHUP, listened to from the daemon's start (never resolves elsewhere).
struct HangupSignal {
    #[cfg(unix)]
    stream: Option<tokio::signal::unix::Signal>,
}

impl HangupSignal {
    fn new() -> Self {
        #[cfg(unix)]
        {
            Self {
                stream: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(s) = &mut self.stream {
            s.recv().await;
            return;
        }
        std::future::pending::<()>().await;
    }
}

/// Registers a job per configured rotation and removes rotation jobs that
/// are no longer configured. Returns the job names.
async fn register(
    runner: &Runner,
    store: &Arc<SqliteStore>,
    config: &Config,
    workflows: &[rota_scheduler::JobSpec],
) -> Result<Vec<String>> {
    let mut specs = Vec::new();
    let mut names = HashSet::new();
    for spec in workflows {
        names.insert(spec.name.clone());
        specs.push(spec.clone());
    }
    for t in &config.rotations {
        let spec = t
            .job_spec()
            .with_context(|| format!("rotation {:?}", t.rotation))?;
        names.insert(spec.name.clone());
        specs.push(spec);
    }
    let list: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    runner
        .register_many(specs)
        .await
        .context("cannot register the rotation jobs")?;
    let stored = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.jobs()).await??
    };
    for row in stored {
        if (row.name.starts_with("rotate:") || row.name.starts_with("workflow:"))
            && !names.contains(&row.name)
        {
            tracing::info!(job.name = %row.name, "rotation no longer configured; job removed");
            runner.remove(&row.name).await?;
        }
    }
    Ok(list)
}

/// Counts a run doing work for as long as it lives.
struct Working(Arc<tokio::sync::watch::Sender<usize>>);

impl Working {
    fn new(tx: &Arc<tokio::sync::watch::Sender<usize>>) -> Self {
        tx.send_modify(|n| *n += 1);
        Self(Arc::clone(tx))
    }
}

impl Drop for Working {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// The registered jobs due by now + `within` (not paused), with the slot
/// each is due at: what `rota run --once` waits for.
async fn due_at_start(
    store: &Arc<SqliteStore>,
    registered: &[String],
    now: DateTime<Utc>,
    within: Duration,
) -> Result<BTreeMap<String, Option<i64>>> {
    let horizon = (now + chrono::Duration::from_std(within).unwrap_or_default()).timestamp_millis();
    let rows = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.jobs()).await??
    };
    let configured: HashSet<&str> = registered.iter().map(String::as_str).collect();
    let mut pending = BTreeMap::new();
    for row in rows {
        if !configured.contains(row.name.as_str()) {
            continue;
        }
        let due = row.due_ms.or(row.slot_ms);
        if row.state == rota_scheduler::RunState::Paused || due.is_none_or(|d| d > horizon) {
            continue;
        }
        pending.insert(row.name.clone(), row.slot_ms);
    }
    Ok(pending)
}

/// What `rota run --once` waits for and what it has seen so far.
struct OnceWait {
    /// Due jobs not yet settled, with the slot they were due at.
    pending: BTreeMap<String, Option<i64>>,
    /// Jobs not run here, and why.
    skipped: BTreeMap<String, String>,
    /// Jobs run here: outcome kind and error.
    results: BTreeMap<String, (String, Option<String>)>,
    /// Jobs whose run started in this process.
    started: HashSet<String>,
}

impl OnceWait {
    async fn event(&mut self, ev: Event, seen: &Seen, notifications: &Notifications) {
        match ev {
            Event::Started { name, .. } => {
                self.started.insert(name.to_string());
            }
            Event::Finished {
                name,
                outcome,
                error,
                attempt,
                needs_attention,
                ..
            } => {
                let name = name.to_string();
                if needs_attention {
                    notifications
                        .needs_attention(&name, attempt, error.clone())
                        .await;
                }
                if self.pending.remove(&name).is_some() {
                    let kind = match outcome {
                        Outcome::Succeeded => seen
                            .lock()
                            .ok()
                            .and_then(|s| s.get(&name).cloned())
                            .unwrap_or_else(|| "rotated".into()),
                        _ => "failed".into(),
                    };
                    self.results.insert(name, (kind, error));
                }
            }
            Event::Missed { name, .. } if self.pending.remove(&*name).is_some() => {
                self.skipped.insert(
                    name.to_string(),
                    "slot missed (catch_up = skip or past its deadline)".into(),
                );
            }
            _ => {}
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn once(
    global: &GlobalArgs,
    runner: &Runner,
    store: &Arc<SqliteStore>,
    pending: BTreeMap<String, Option<i64>>,
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    seen: &Seen,
    owner: &str,
    notifications: &Notifications,
    reports: &Seen,
) -> Result<ExitCode> {
    let skipped: BTreeMap<String, String> = BTreeMap::new();
    let total = pending.len();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut wait = OnceWait {
        pending,
        skipped,
        results: BTreeMap::new(),
        started: HashSet::new(),
    };
    while !wait.pending.is_empty() {
        tokio::select! {
            ev = events.recv() => match ev {
                Ok(ev) => wait.event(ev, seen, notifications).await,
                // Events were lost (thousands of jobs): judge the started
                // jobs by the store too, so none is waited for forever.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => wait.started.clear(),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            _ = tick.tick() => {
                // Jobs another process runs or ran: not ours to wait for.
                let names: Vec<String> = wait.pending.keys().filter(|n| !wait.started.contains(*n)).cloned().collect();
                let store2 = store.clone();
                let rows = tokio::task::spawn_blocking(move || {
                    names.iter().map(|n| store2.job(n)).collect::<Result<Vec<_>, _>>()
                }).await??;
                // A run of ours announces `Started` before it writes its end to
                // the store, so every run behind what was just read has been
                // announced: take those events before judging a moved slot.
                loop {
                    match events.try_recv() {
                        Ok(ev) => wait.event(ev, seen, notifications).await,
                        Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {
                            wait.started.clear();
                        }
                        Err(_) => break,
                    }
                }
                let now_ms = crate::clock::now().timestamp_millis();
                for row in rows.into_iter().flatten() {
                    if wait.started.contains(&row.name) {
                        continue;
                    }
                    let Some(initial) = wait.pending.get(&row.name).copied() else { continue };
                    let elsewhere = row.lease.as_ref().is_some_and(|l| l.owner != owner && l.until_ms > now_ms);
                    let moved_on = row.slot_ms != initial && row.attempts == 0;
                    if elsewhere || moved_on {
                        wait.pending.remove(&row.name);
                        wait.skipped.insert(row.name.clone(), if elsewhere { "running in another process".into() } else { "run by another process".into() });
                    }
                }
            }
        }
    }
    let OnceWait {
        results, skipped, ..
    } = wait;
    // Workflow jobs are reported on their own lines, after the rotations.
    let is_workflow = |n: &String| n.starts_with("workflow:");
    let (flows, results): (BTreeMap<_, _>, BTreeMap<_, _>) =
        results.into_iter().partition(|(n, _)| is_workflow(n));
    let (flows_skipped, skipped): (BTreeMap<_, _>, BTreeMap<_, _>) =
        skipped.into_iter().partition(|(n, _)| is_workflow(n));
    let total = total - flows.len() - flows_skipped.len();
    let count = |k: &str| results.values().filter(|(kind, _)| kind == k).count();
    let (rotated, resumed, done, failed) = (
        count("rotated"),
        count("resumed"),
        count("already_done"),
        count("failed"),
    );
    let flows_failed = flows.values().filter(|(k, _)| k == "failed").count();
    let report = |n: &str| reports.lock().ok().and_then(|r| r.get(n).cloned());
    let secret = |n: &String| n.strip_prefix("rotate:").unwrap_or(n).to_owned();
    let workflow = |n: &String| n.strip_prefix("workflow:").unwrap_or(n).to_owned();
    match global.output {
        OutputFormat::Json => {
            let runs: Vec<_> = results
                .iter()
                .map(|(n, (k, e))| json!({"job": n, "secret": secret(n), "outcome": k, "error": e}))
                .chain(skipped.iter().map(|(n, why)| json!({"job": n, "secret": secret(n), "outcome": "skipped", "error": why})))
                .collect();
            let workflows: Vec<_> = flows
                .iter()
                .map(|(n, (k, e))| json!({"job": n, "workflow": workflow(n), "outcome": k, "summary": report(n), "error": e}))
                .chain(flows_skipped.iter().map(|(n, why)| json!({"job": n, "workflow": workflow(n), "outcome": "skipped", "summary": null, "error": why})))
                .collect();
            emit_json(&json!({
                "due": total,
                "rotated": rotated + resumed,
                "already_done": done,
                "failed": failed,
                "skipped": skipped.len(),
                "runs": runs,
                "workflows": workflows,
            }))?;
        }
        OutputFormat::Text => {
            let mut out = format!(
                "{total} due: {} rotated, {done} already done, {failed} failed, {} skipped\n",
                rotated + resumed,
                skipped.len()
            );
            for (n, (k, e)) in &results {
                if k == "failed" {
                    out.push_str(&format!(
                        "failed: {}: {}\n",
                        secret(n),
                        e.as_deref().unwrap_or("unknown error")
                    ));
                }
            }
            for (n, why) in &skipped {
                out.push_str(&format!("skipped: {}: {why}\n", secret(n)));
            }
            for (n, (k, e)) in &flows {
                let detail = if k == "failed" {
                    e.clone().unwrap_or_else(|| "unknown error".into())
                } else {
                    report(n).unwrap_or_default()
                };
                out.push_str(&format!("workflow {} {k}: {detail}\n", workflow(n)));
            }
            for (n, why) in &flows_skipped {
                out.push_str(&format!("workflow {} skipped: {why}\n", workflow(n)));
            }
            out!("{out}");
        }
    }
    let _ = runner;
    Ok(if failed + flows_failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

// ------------------------------------------------------------------ status

fn open_store(data_dir: &Path) -> Result<Option<(SqliteStore, SqliteHistory)>> {
    let path = store_path(data_dir);
    if !path.is_file() {
        return Ok(None);
    }
    let store = SqliteStore::open(&path).context("cannot open the scheduler store")?;
    let history = SqliteHistory::open(&path).context("cannot open the rotation history")?;
    Ok(Some((store, history)))
}

/// A job's state, next slot and attempts for `rota status`; a job not in
/// the store yet ("not scheduled") shows its schedule's next fire time.
fn job_state(
    job: Option<&rota_scheduler::store::JobRow>,
    schedule: &str,
    timezone: &str,
    now: DateTime<Utc>,
) -> (&'static str, Option<DateTime<Utc>>, u32) {
    match job {
        Some(j) => (
            if j.needs_attention {
                "needs attention"
            } else if j.state == rota_scheduler::RunState::Paused {
                "paused"
            } else {
                "active"
            },
            j.slot_ms.and_then(DateTime::from_timestamp_millis),
            j.attempts,
        ),
        None => (
            "not scheduled",
            Schedule::parse_in(schedule, timezone)
                .ok()
                .and_then(|s| s.next_fire(now)),
            0,
        ),
    }
}

fn status(global: &GlobalArgs, config: &Config) -> Result<ExitCode> {
    let data_dir = backend::data_dir(global, config);
    let opened = open_store(&data_dir)?;
    let now = crate::clock::now();
    let mut rows = Vec::new();
    for t in &config.rotations {
        let job = match &opened {
            Some((store, _)) => store.job(&t.job_name())?,
            None => None,
        };
        let last = match &opened {
            Some((_, h)) => h.last_success(&t.secret)?,
            None => None,
        };
        let (state, next, attempts) = job_state(job.as_ref(), &t.schedule, &t.timezone, now);
        let mut reason = None;
        if let (Some(j), Some((store, _))) = (&job, &opened)
            && (j.needs_attention || j.attempts > 0)
        {
            reason = store
                .runs(&j.name, 5)?
                .into_iter()
                .find_map(|r| r.error.filter(|_| r.outcome == Outcome::Failed));
        }
        if reason.is_none()
            && let Some((_, h)) = &opened
            && let Some(step) = h.last(&t.secret)?
            && step.outcome == "failed"
        {
            reason = step.error.map(|e| format!("{} failed: {e}", step.step));
        }
        rows.push(json!({
            "secret": t.secret,
            "rotation": t.rotation,
            "plugin": t.plugin,
            "schedule": t.schedule,
            "timezone": t.timezone,
            "state": state,
            "last_rotation": last.map(rfc3339),
            "next_slot": next.map(rfc3339),
            "attempts": attempts,
            "reason": reason,
        }));
    }
    // Workflows: their job in the scheduler's store and its last runs.
    for w in &config.workflows {
        let name = w.job_name();
        let (job, runs) = match &opened {
            Some((store, _)) => (store.job(&name)?, store.runs(&name, 20)?),
            None => (None, Vec::new()),
        };
        let (state, next, attempts) = job_state(job.as_ref(), &w.schedule, &w.timezone, now);
        let last = runs
            .iter()
            .find(|r| r.outcome == Outcome::Succeeded)
            .and_then(|r| DateTime::from_timestamp_millis(r.ended_ms.unwrap_or(r.started_ms)));
        let reason = runs
            .first()
            .filter(|r| r.outcome == Outcome::Failed)
            .and_then(|r| r.error.clone());
        rows.push(json!({
            "workflow": w.name,
            "script": w.script.display().to_string(),
            "schedule": w.schedule,
            "timezone": w.timezone,
            "state": state,
            "last_run": last.map(rfc3339),
            "next_slot": next.map(rfc3339),
            "attempts": attempts,
            "reason": reason,
        }));
    }
    match global.output {
        OutputFormat::Json => emit_json(&rows)?,
        OutputFormat::Text => {
            if rows.is_empty() {
                outln!("No rotations or workflows are configured.");
            } else {
                let s = |r: &serde_json::Value, k: &str| r[k].as_str().unwrap_or("-").to_owned();
                let name = |r: &serde_json::Value| match r["workflow"].as_str() {
                    Some(w) => format!("workflow:{w}"),
                    None => s(r, "secret"),
                };
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        vec![
                            name(r),
                            s(r, "state"),
                            r["plugin"].as_str().unwrap_or("workflow").to_owned(),
                            r["last_rotation"]
                                .as_str()
                                .or(r["last_run"].as_str())
                                .unwrap_or("-")
                                .to_owned(),
                            s(r, "next_slot"),
                        ]
                    })
                    .collect();
                outln!(
                    "{}",
                    crate::output::table(
                        &["NAME", "STATE", "PLUGIN", "LAST RUN", "NEXT SLOT"],
                        &cells
                    )
                );
                for r in &rows {
                    if let Some(reason) = r["reason"].as_str() {
                        outln!("{}: {reason}", name(r));
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

// ------------------------------------------------------------------ history

fn history(global: &GlobalArgs, config: &Config, args: &HistoryArgs) -> Result<ExitCode> {
    let data_dir = backend::data_dir(global, config);
    let secret = args.name.as_ref().map(|n| {
        let address = if n.starts_with("alicloud_kms_secret.") {
            n.clone()
        } else {
            format!("alicloud_kms_secret.{n}")
        };
        config
            .rotations
            .iter()
            .find(|t| t.address.as_deref() == Some(&address))
            .map(|t| t.secret.clone())
            .unwrap_or_else(|| n.clone())
    });
    let steps = match open_store(&data_dir)? {
        Some((_, h)) => h.list(secret.as_deref(), 100_000)?,
        None => Vec::new(),
    };
    let runs = group_runs(steps);
    let runs: Vec<_> = runs
        .into_iter()
        .rev()
        .take(args.limit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    match global.output {
        OutputFormat::Json => emit_json(&runs)?,
        OutputFormat::Text => {
            if runs.is_empty() {
                outln!("No rotations recorded.");
            }
            for r in &runs {
                outln!(
                    "{}  {}  {}  attempt {}  {}  ({})",
                    r["ended_at"].as_str().unwrap_or_default(),
                    r["secret"].as_str().unwrap_or_default(),
                    r["token"].as_str().unwrap_or_default(),
                    r["attempt"],
                    r["outcome"].as_str().unwrap_or_default(),
                    r["plugin"].as_str().unwrap_or_default()
                );
                for s in r["steps"].as_array().into_iter().flatten() {
                    let err = s["error"]
                        .as_str()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default();
                    outln!(
                        "  {:<8} {:<6} {:>6} ms{err}",
                        s["step"].as_str().unwrap_or_default(),
                        s["outcome"].as_str().unwrap_or_default(),
                        s["duration_ms"]
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Steps grouped into runs by (secret, token, attempt), in order of first step.
fn group_runs(steps: Vec<StoredStep>) -> Vec<serde_json::Value> {
    let mut order: Vec<(String, String, u32)> = Vec::new();
    let mut by: HashMap<(String, String, u32), Vec<StoredStep>> = HashMap::new();
    for s in steps {
        let key = (s.secret.clone(), s.token.clone(), s.attempt);
        if !by.contains_key(&key) {
            order.push(key.clone());
        }
        by.entry(key).or_default().push(s);
    }
    order
        .into_iter()
        .filter_map(|k| by.remove(&k).map(|steps| (k, steps)))
        .map(|((secret, token, attempt), steps)| {
            let outcome = if steps.iter().any(|s| s.outcome == "failed") {
                "failed"
            } else if steps
                .iter()
                .any(|s| s.step == "finish" && s.outcome == "ok")
            {
                "rotated"
            } else if steps
                .iter()
                .any(|s| s.plugin == "workflow" && s.step == "run")
            {
                // A workflow run (rota-script) is one step.
                "ran"
            } else {
                "incomplete"
            };
            json!({
                "secret": secret,
                "token": token,
                "attempt": attempt,
                "plugin": steps.first().map(|s| s.plugin.clone()),
                "started_at": steps.first().map(|s| s.at.clone()),
                "ended_at": steps.last().map(|s| s.at.clone()),
                "outcome": outcome,
                "steps": steps.iter().map(|s| json!({
                    "step": s.step,
                    "outcome": s.outcome,
                    "at": s.at,
                    "duration_ms": s.duration_ms,
                    "error": s.error,
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}

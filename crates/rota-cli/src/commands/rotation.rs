//! `rota rotate | run | status | history`: argument handling and printing
//! around `rota_rotation` — the protocol ([`Rotator`]), the daemon core
//! ([`Daemon`]) and the report rows ([`rota_rotation::report`]).
//!
//! State lives in the data directory (`--data-dir`, default `.rota/` beside
//! the configuration): `scheduler.db` holds the scheduler's jobs and runs
//! and the rotation history; `locks/` the per-secret rotation locks.
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

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use rota_engine::config::Config;
use rota_engine::plan::PlanMode;
use rota_rotation::history::HistorySink;
use rota_rotation::report::{self, Records, StatusRow, Subject};
use rota_rotation::{
    CrashHook, CrashPoint, Daemon, DaemonOptions, NoHistory, PluginRegistry, RotationJobs,
    RotationOutcome, RotationRequest, RotationTarget, Rotator, RunOutcome, RunRotationError,
    SecretLocks, SqliteHistory, Step, Targets, manual_token,
};
use rota_scheduler::SqliteStore;
use serde::Serialize;

use crate::backend::{self, Backend};
use crate::cli::{Command, GlobalArgs, HistoryArgs, OutputFormat, RotateArgs, RunArgs};
use crate::commands::lifecycle;
use crate::commands::workflow::WorkflowJobs;
use crate::metrics::{MeteredHistory, Metrics};
use crate::output::{Hint, emit_json, errln, out, outln};
use crate::progress;
use crate::signals::{HangupSignal, StopSignal};

/// The crash-injection variable.
const CRASH_VAR: &str = "ROTA_TEST_CRASH_AT";
/// The scheduler store (and rotation history) in the data directory.
const STORE_FILE: &str = "scheduler.db";
/// How long a webhook delivery may take.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

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
        Command::Status(args) => match lifecycle::load(&global, &args.vars)? {
            Some(config) => status(&global, &config),
            None => Ok(ExitCode::FAILURE),
        },
        Command::History(args) => match lifecycle::load(&global, &args.vars)? {
            Some(config) => history(&global, &config, &args),
            None => Ok(ExitCode::FAILURE),
        },
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

fn parse_duration(s: &str, what: &str) -> Result<Duration> {
    rota_engine::resource::parse_duration(s)
        .with_context(|| format!("{what}: {s:?} is not a duration (e.g. 30s, 15m, 1h)"))
}

fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STORE_FILE)
}

/// Everything a rotation needs, resolved once.
struct Resolved {
    backend: Backend,
    jobs: RotationJobs,
    history: Arc<SqliteHistory>,
    /// The plugins the rotator runs with (loaded once, at start).
    registry: Arc<PluginRegistry>,
}

/// `metrics`: the daemon's, observing every protocol step the rotator
/// records (`rota run --metrics-addr`).
fn resolve_rotation(
    backend: Backend,
    registry: PluginRegistry,
    crash: CrashHook,
    metrics: Option<&Arc<Metrics>>,
) -> Result<Resolved> {
    let dir = &backend.data_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let history =
        Arc::new(SqliteHistory::open(store_path(dir)).context("cannot open the rotation history")?);
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
    let jobs = RotationJobs::new(rotator, SecretLocks::new(dir.join("locks")));
    Ok(Resolved {
        backend,
        jobs,
        history,
        registry,
    })
}

/// The targets NAME… selects (see [`Targets::resolve`]), or all.
fn select(targets: &Targets, names: &[String], all: bool) -> Result<Vec<RotationTarget>> {
    if all {
        return Ok(targets.rotations.clone());
    }
    let mut out: Vec<RotationTarget> = Vec::new();
    for name in names {
        let Subject::Rotations(found) = targets.resolve(name) else {
            let known: Vec<&str> = targets
                .rotations
                .iter()
                .map(|t| t.secret.as_str())
                .collect();
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
        };
        for t in found {
            if !out.iter().any(|o| o.secret == t.secret) {
                out.push(t.clone());
            }
        }
    }
    Ok(out)
}

fn request(t: &RotationTarget) -> RotationRequest {
    RotationRequest {
        secret: t.secret.clone(),
        plugin: t.plugin.clone(),
        settings: t.settings.clone(),
        token: manual_token(crate::clock::now()),
        attempt: 1,
    }
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

// ------------------------------------------------------------------ rotate

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
    let targets = select(&config.targets(), &args.names, args.all)?;
    let backend = backend::resolve(global, &config).await?;
    if args.dry_run {
        return dry_run(global, &backend, registry, &targets).await;
    }
    let resolved = resolve_rotation(backend, registry, crash, None)?;
    let mut rows = Vec::new();
    let task = rotate_progress(global, "rotate", targets.len());
    for t in &targets {
        task.set_item(&t.secret);
        let req = request(t);
        let result = resolved.jobs.rotate(&req).await;
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

// ------------------------------------------------------------------ run

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
    if args.apply && !apply_first(global, &backend, &config).await? {
        return Ok(ExitCode::FAILURE);
    }
    let resolved = resolve_rotation(backend, registry, crash, metrics.as_ref())?;
    let workflows = Arc::new(WorkflowJobs::load(&config, global, &resolved.backend)?);
    let store = Arc::new(
        SqliteStore::open(store_path(&resolved.backend.data_dir))
            .context("cannot open the scheduler store")?,
    );
    let daemon = Daemon::new(
        store,
        resolved.jobs.clone(),
        DaemonOptions {
            owner: owner_id(),
            concurrency: args.concurrency,
            clock: crate::clock::shared(),
            workflows: workflows.clone(),
            history: resolved.history.clone(),
            observer: metrics
                .clone()
                .map(|m| m as Arc<dyn rota_rotation::DaemonObserver>),
            notify_timeout: NOTIFY_TIMEOUT,
        },
    );
    let targets = config.targets();
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
        if let Some(s) = server {
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
        let (n, s) = (
            registered.len(),
            if registered.len() == 1 { "" } else { "s" },
        );
        errln!(
            "rota run: {n} job{s} scheduled (owner {}); Ctrl-C or SIGTERM stops",
            daemon.owner()
        );
    }
    let reloading = Reloading {
        global,
        vars: &args.vars,
        registry: &resolved.registry,
        workflows: &workflows,
        metrics: metrics.as_ref(),
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
    if !report.drained {
        let n = report.cancelled;
        let (s, them) = if n == 1 { ("", "it") } else { ("s", "them") };
        errln!("{n} rotation{s} cancelled; the next run resumes {them}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `rota run --apply`: applies the configuration; whether it succeeded.
async fn apply_first(global: &GlobalArgs, backend: &Backend, config: &Config) -> Result<bool> {
    let Some(plan) = lifecycle::make_plan(backend, config, PlanMode::Apply, None).await? else {
        return Ok(false);
    };
    let code = lifecycle::execute(
        global,
        backend,
        config,
        &plan,
        lifecycle::Approval::Approved,
        lifecycle::Verb::Apply,
        // With -o json standard output is the run's summary alone.
        match global.output {
            OutputFormat::Json => lifecycle::Report::FailuresOnly,
            OutputFormat::Text => lifecycle::Report::AsOutput,
        },
    )
    .await?;
    Ok(code == ExitCode::SUCCESS)
}

/// What a reload (SIGHUP) needs.
struct Reloading<'a> {
    global: &'a GlobalArgs,
    vars: &'a crate::cli::VarArgs,
    registry: &'a PluginRegistry,
    workflows: &'a WorkflowJobs,
    metrics: Option<&'a Arc<Metrics>>,
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
        let prepared = match self.workflows.prepare(&c) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "a workflow does not load; keeping the jobs");
                return;
            }
        };
        let targets = c.targets();
        if let Err(e) = targets.job_specs() {
            tracing::error!(error = %format!("{:#}", anyhow::Error::from(e)), "a schedule is invalid; keeping the jobs");
            return;
        }
        // The workflows are swapped in before their jobs exist, so a job never
        // runs without its script; if registering fails the old jobs stay and
        // the new scripts serve them (unchanged names run the new script).
        self.workflows.install(prepared);
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

// ------------------------------------------------------------------ status

fn open_records(data_dir: &Path) -> Result<Option<(SqliteStore, SqliteHistory)>> {
    let path = store_path(data_dir);
    if !path.is_file() {
        return Ok(None);
    }
    let store = SqliteStore::open(&path).context("cannot open the scheduler store")?;
    let history = SqliteHistory::open(&path).context("cannot open the rotation history")?;
    Ok(Some((store, history)))
}

fn status(global: &GlobalArgs, config: &Config) -> Result<ExitCode> {
    let opened = open_records(&backend::data_dir(global, config))?;
    let records = opened
        .as_ref()
        .map(|(store, history)| Records { store, history });
    let rows = report::status(&config.targets(), records.as_ref(), crate::clock::now())?;
    if global.output == OutputFormat::Json {
        emit_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        outln!("No rotations or workflows are configured.");
        return Ok(ExitCode::SUCCESS);
    }
    let at =
        |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or_else(|| "-".into(), report::rfc3339);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| match r {
            StatusRow::Rotation(x) => vec![
                r.name(),
                x.state.as_str().into(),
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
    outln!(
        "{}",
        crate::output::table(
            &["NAME", "STATE", "PLUGIN", "LAST RUN", "NEXT SLOT"],
            &cells
        )
    );
    for r in &rows {
        if let Some(reason) = r.reason() {
            outln!("{}: {reason}", r.name());
        }
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

fn history(global: &GlobalArgs, config: &Config, args: &HistoryArgs) -> Result<ExitCode> {
    let targets = config.targets();
    let Some((_, h)) = open_records(&backend::data_dir(global, config))? else {
        return print_history(global, &[]);
    };
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
        Some((name, Subject::Unknown)) => rows = rotations(&[name])?,
    }
    let skip = rows.len().saturating_sub(args.limit);
    print_history(global, &rows[skip..])
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

//! `rota rotate | run | status | history`: argument handling and printing
//! around `rota_rotation` — the protocol ([`Rotator`]), the daemon core
//! (`rota_rotation::Daemon`) and the report rows
//! (`rota_rotation::report`). This module dispatches and holds what the
//! commands share; [`super::rotate`], [`super::daemon`] and
//! [`super::records`] hold the commands.
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

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use rota_engine::config::Config;
use rota_rotation::history::{HistorySink, HistoryStore};
use rota_rotation::report::Subject;
use rota_rotation::{
    CrashHook, CrashPoint, PluginRegistry, RotationJobs, RotationRequest, RotationTarget, Rotator,
    Targets, manual_token,
};

use crate::backend::Backend;
use crate::cli::{Command, GlobalArgs};
use crate::commands::lifecycle;
use crate::metrics::{MeteredHistory, Metrics};
use crate::output::{Hint, errln};
use crate::progress;

/// The crash-injection variable.
const CRASH_VAR: &str = "ROTA_TEST_CRASH_AT";
/// How long a webhook delivery may take.
pub(crate) const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs one rotation command.
pub(crate) async fn run(command: Command, mut global: GlobalArgs) -> Result<ExitCode> {
    match command {
        Command::Rotate(args) => super::rotate::rotate(&global, args).await,
        Command::Run(args) => {
            if let Some(c) = &args.config {
                global.config = Some(c.clone());
            }
            super::daemon::daemon(&global, args).await
        }
        Command::Status(args) => match lifecycle::load(&global, &args.vars) {
            Ok(Some(config)) => super::records::status(&global, &config).await,
            // The daemon keeps its jobs when a reload finds the file broken:
            // status still shows them.
            Ok(None) => super::records::status_without_config(&global, None),
            Err(e) => super::records::status_without_config(&global, Some(e)),
        },
        Command::Events(args) => match lifecycle::load(&global, &args.vars)? {
            Some(config) => super::events::run(&global, &config, &args).await,
            None => Ok(ExitCode::FAILURE),
        },
        Command::History(args) => match lifecycle::load(&global, &args.vars)? {
            Some(config) => super::records::history(&global, &config, &args),
            None => Ok(ExitCode::FAILURE),
        },
        _ => bail!("not a rotation command"),
    }
}

/// The crash hook `ROTA_TEST_CRASH_AT` asks for; `Err` with the message on
/// an unknown name.
pub(crate) fn crash_hook() -> std::result::Result<CrashHook, String> {
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

/// This machine's host name (the kernel's, else `HOSTNAME`), if known.
pub(crate) fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

/// A unique owner id for leases: host, pid and a random part.
pub(crate) fn owner_id() -> String {
    let host = host_name().unwrap_or_else(|| "host".into());
    let r: u32 = rand::random();
    format!("{host}-{}-{r:08x}", std::process::id())
}

pub(crate) fn parse_duration(s: &str, what: &str) -> Result<Duration> {
    rota_clock::parse_duration(s).with_context(|| what.to_owned())
}

/// Everything a rotation needs, resolved once.
pub(crate) struct Resolved {
    pub(crate) backend: Backend,
    pub(crate) jobs: RotationJobs,
    pub(crate) history: Arc<dyn HistoryStore>,
    /// The scheduler's store (SQLite here, or the shared PostgreSQL).
    pub(crate) store: Arc<dyn rota_scheduler::JobStore>,
    /// The event outbox beside it.
    pub(crate) outbox: Arc<dyn rota_scheduler::Outbox>,
    /// How long the runner's leases last unless renewed.
    pub(crate) lease_ttl: Duration,
    /// The plugins the rotator runs with (loaded once, at start).
    pub(crate) registry: Arc<PluginRegistry>,
}

/// `metrics`: the daemon's, observing every protocol step the rotator
/// records (`rota run --metrics-addr`); `stores` from [`crate::store`].
pub(crate) fn resolve_rotation(
    backend: Backend,
    stores: crate::store::Stores,
    registry: PluginRegistry,
    crash: CrashHook,
    metrics: Option<&Arc<Metrics>>,
) -> Result<Resolved> {
    let history = stores.history;
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
    .with_clock(crate::clock::shared())
    .with_adoption(Arc::new(rota_rotation::adoption::StoreAdoption(
        stores.outbox.clone(),
    )));
    let jobs = RotationJobs::new(rotator, stores.locks);
    Ok(Resolved {
        backend,
        jobs,
        history,
        store: stores.jobs,
        outbox: stores.outbox,
        lease_ttl: stores.lease_ttl,
        registry,
    })
}

/// Opens the stores `config` names ([`crate::store`]) for `owner`.
pub(crate) fn open_stores(
    global: &GlobalArgs,
    config: &Config,
    backend: &Backend,
    owner: &str,
) -> Result<crate::store::Stores> {
    crate::store::choice(global, Some(config), &backend.data_dir)?.open(owner)
}

/// The targets NAME… selects (see [`Targets::resolve`]), or all.
pub(crate) fn select(
    targets: &Targets,
    names: &[String],
    all: bool,
) -> Result<Vec<RotationTarget>> {
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

/// The configuration's rotation targets as they run: `$Auto` secrets under
/// the names KMS gave them (found by their `rota:address` tag, and
/// remembered in `history` for `rota status` and `rota history`), bare
/// intervals anchored at each secret's last rotation. Returns the
/// addresses of the `$Auto` secrets KMS has not named yet (not applied).
pub(crate) async fn live_targets(
    config: &Config,
    kms: &rota_kms::KmsClient,
    history: Option<&dyn HistoryStore>,
) -> Result<(Targets, Vec<String>)> {
    let mut targets = config.targets();
    let mut unnamed = Vec::new();
    if targets
        .rotations
        .iter()
        .any(RotationTarget::awaits_live_name)
    {
        let names = rota_engine::live::live_names(kms, &lifecycle::ownership(config))
            .await
            .context("cannot find the secrets KMS named ($Auto)")?;
        unnamed = targets.with_live_names(&names);
        if let Some(h) = history
            && let Err(e) = h.remember_names(&names)
        {
            tracing::warn!(error = %e, "cannot remember the names of $Auto secrets");
        }
    }
    targets.anchor_intervals(kms).await;
    Ok((targets, unnamed))
}

/// The configuration's targets for `rota status` and `rota history`, which
/// do not ask KMS: `$Auto` secrets under the live names `rota rotate` and
/// `rota run` remembered.
pub(crate) fn recorded_targets(config: &Config, history: Option<&dyn HistoryStore>) -> Targets {
    let mut targets = config.targets();
    if let Some(h) = history
        && targets
            .rotations
            .iter()
            .any(RotationTarget::awaits_live_name)
    {
        match h.live_names() {
            Ok(names) => {
                targets.with_live_names(&names);
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the names of $Auto secrets"),
        }
    }
    targets
}

/// Why a `$Auto` secret cannot rotate yet.
pub(crate) fn unnamed_reason(address: &str) -> String {
    format!(
        "{address} is not in KMS yet (KMS names a $Auto secret when it is created): run `rota apply` first"
    )
}

pub(crate) fn request(t: &RotationTarget) -> RotationRequest {
    RotationRequest {
        secret: t.secret.clone(),
        plugin: t.plugin.clone(),
        settings: t.settings.clone(),
        token: manual_token(crate::clock::now()),
        attempt: 1,
        timeout: Some(t.timeout),
        fence: Default::default(),
        verify: t.verify.clone(),
        adoption: t.adoption.clone(),
    }
}

/// Progress over `n` rotations (one at a time, each several API calls).
pub(crate) fn rotate_progress(global: &GlobalArgs, verb: &'static str, n: usize) -> progress::Task {
    progress::Task::start(
        progress::Context::detect(global),
        verb,
        "secrets",
        Some(n as u64),
        progress::LINES_FROM,
    )
}

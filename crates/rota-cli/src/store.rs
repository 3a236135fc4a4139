//! Where the scheduler's jobs, the rotation history and the per-secret
//! locks live: the SQLite file in the data directory (one host, the
//! default), or PostgreSQL shared by daemons on several hosts.
//!
//! The store URL is `--store`, else `ROTA_STORE_URL`, else the
//! configuration's `store` block. Its password comes from the URL (only
//! `--store`/`ROTA_STORE_URL` may carry one), else the variable the block's
//! `password_env` names, else `PGPASSWORD`, else the `PGPASSFILE` (default
//! `~/.pgpass`). No message shows it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use rota_engine::config::Config;
use rota_rotation::{HistoryStore, PgHistory, SecretLocks, SqliteHistory};
use rota_scheduler::pg::{PgError, PgOptions, PgPool, is_pg_url, mask_url, pgpass_lookup};
use rota_scheduler::{JobStore, Outbox, PgStore, SqliteStore};

use crate::cli::GlobalArgs;
use crate::output::Hint;

/// The scheduler's file in the data directory.
const STORE_FILE: &str = "scheduler.db";
/// How long a lease or lock lasts unless renewed, by default.
pub(crate) const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);
/// Connections a process keeps to PostgreSQL at most.
const POOL_SIZE: usize = 8;

/// Which store, before opening it.
#[derive(Debug, Clone)]
pub(crate) enum StoreChoice {
    /// The SQLite file in this data directory.
    Local(PathBuf),
    /// PostgreSQL.
    Shared {
        /// Where.
        options: Box<PgOptions>,
        /// Lease and lock time-to-live.
        lease_ttl: Duration,
    },
}

/// The opened stores.
pub(crate) struct Stores {
    pub(crate) jobs: Arc<dyn JobStore>,
    pub(crate) history: Arc<dyn HistoryStore>,
    /// The event outbox, beside the jobs.
    pub(crate) outbox: Arc<dyn Outbox>,
    pub(crate) locks: SecretLocks,
    /// The lease time-to-live the daemon's runner uses.
    pub(crate) lease_ttl: Duration,
    /// Set for PostgreSQL.
    #[allow(dead_code)]
    pub(crate) shared: Option<Arc<PgPool>>,
}

/// The scheduler file of a data directory.
pub(crate) fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(STORE_FILE)
}

/// Picks the store for `config` (see the module docs).
pub(crate) fn choice(
    global: &GlobalArgs,
    config: Option<&Config>,
    data_dir: &Path,
) -> Result<StoreChoice> {
    let block = config.and_then(|c| c.store.as_ref());
    let url = global
        .store
        .clone()
        .filter(|u| !u.trim().is_empty())
        .or_else(|| block.map(|b| b.url.clone()));
    let Some(url) = url else {
        return Ok(StoreChoice::Local(data_dir.to_path_buf()));
    };
    if !is_pg_url(&url) {
        return Err(Hint::error(
            format!("the store URL {} is not a postgres:// URL", mask_url(&url)),
            "the shared store is PostgreSQL (postgres://USER@HOST:PORT/DATABASE); leave --store, ROTA_STORE_URL and the store block out for the SQLite file in the data directory",
        ));
    }
    let mut password = None;
    if let Some(var) = block.and_then(|b| b.password_env.as_deref()) {
        match std::env::var(var) {
            Ok(p) if !p.is_empty() => password = Some(p),
            _ => {
                return Err(Hint::error(
                    format!("the store's password_env names {var}, which is not set"),
                    format!(
                        "export {var}=… before starting rota (or use PGPASSWORD or a PGPASSFILE)"
                    ),
                ));
            }
        }
    }
    if password.is_none() {
        password = std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty());
    }
    let mut options = PgOptions::parse(&url, password.as_deref()).map_err(pg_error)?;
    if !options.has_password() {
        let file = std::env::var_os("PGPASSFILE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")));
        if let Some(text) = file.and_then(|f| std::fs::read_to_string(f).ok()) {
            let (host, port) = options.first_host_port();
            if let Some(p) = pgpass_lookup(&text, &host, port, options.database(), options.user()) {
                options = options.password(&p);
            }
        }
    }
    if let Some(schema) = block.and_then(|b| b.schema.as_deref()) {
        options = options.schema(schema);
    }
    Ok(StoreChoice::Shared {
        options: Box::new(options),
        lease_ttl: block.and_then(|b| b.lease_ttl).unwrap_or(DEFAULT_LEASE_TTL),
    })
}

/// A PostgreSQL error as `error:` and `hint:` lines.
pub(crate) fn pg_error(e: PgError) -> anyhow::Error {
    match e.hint() {
        Some(h) => Hint::error(e.to_string(), h),
        None => anyhow::Error::new(e),
    }
}

/// A store error, with its hint when PostgreSQL failed.
pub(crate) fn store_error(e: rota_scheduler::StoreError) -> anyhow::Error {
    match e {
        rota_scheduler::StoreError::Pg(e) => pg_error(e),
        other => anyhow::Error::new(other),
    }
}

impl StoreChoice {
    /// Whether there is anything to read yet (the SQLite file exists, or
    /// the store is shared).
    pub(crate) fn exists(&self) -> bool {
        match self {
            Self::Local(dir) => store_path(dir).is_file(),
            Self::Shared { .. } => true,
        }
    }

    /// Opens the stores; `owner` holds the locks.
    pub(crate) fn open(&self, owner: &str) -> Result<Stores> {
        match self {
            Self::Local(dir) => {
                std::fs::create_dir_all(dir).with_context(|| {
                    format!("cannot create the data directory {}", dir.display())
                })?;
                let path = store_path(dir);
                let jobs =
                    Arc::new(SqliteStore::open(&path).context("cannot open the scheduler store")?);
                Ok(Stores {
                    outbox: jobs.clone(),
                    jobs,
                    history: Arc::new(
                        SqliteHistory::open(&path).context("cannot open the rotation history")?,
                    ),
                    locks: SecretLocks::new(dir.join("locks")),
                    lease_ttl: DEFAULT_LEASE_TTL,
                    shared: None,
                })
            }
            Self::Shared { options, lease_ttl } => {
                let pool =
                    Arc::new(PgPool::connect((**options).clone(), POOL_SIZE).map_err(pg_error)?);
                let jobs = PgStore::open(Arc::clone(&pool)).map_err(store_error)?;
                let history = PgHistory::open(Arc::clone(&pool)).map_err(|e| match e {
                    rota_rotation::history::HistoryError::Pg(e) => pg_error(e),
                    other => anyhow::Error::new(other),
                })?;
                let locks = SecretLocks::postgres(
                    Arc::clone(&pool),
                    owner,
                    *lease_ttl,
                    crate::clock::shared(),
                )
                .map_err(pg_error)?;
                tracing::info!(store = %options.display(), schema = %options.schema_name(), "using the shared PostgreSQL store");
                let jobs = Arc::new(jobs);
                Ok(Stores {
                    outbox: jobs.clone(),
                    jobs,
                    history: Arc::new(history),
                    locks,
                    lease_ttl: *lease_ttl,
                    shared: Some(pool),
                })
            }
        }
    }
}

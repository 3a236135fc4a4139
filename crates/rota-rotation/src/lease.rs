//! One rotation per secret at a time across processes — on one host, or on
//! several.
//!
//! **One host** (the SQLite store): an exclusive lock on a per-secret file
//! in the data directory, held while the rotation runs. It is an OS file
//! lock (`flock`), so a process that dies — even by `kill -9` — releases it
//! at once.
//!
//! **Several hosts** (the PostgreSQL store): a lock row per secret with a
//! fencing token (a number that grows with every acquisition) and an
//! expiry the holder renews every third of its time-to-live. A holder that
//! dies loses the lock when the expiry passes; a holder that cannot renew
//! (the database is unreachable) must not finish: before the rotation
//! promotes its new version it checks, in the database, that the row still
//! carries its token and has not expired ([`SecretLock`] is a
//! [`FenceCheck`]).
//!
//! Either way the lock complements the scheduler's lease (one run per
//! slot) and the protocol's pending-version check (a candidate in flight is
//! finished before another starts): it keeps a manual `rota rotate` and a
//! daemon from rotating one secret at the same moment.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rota_scheduler::Clock;
use rota_scheduler::pg::{PgError, PgPool, migrate};

use crate::protocol::FenceCheck;

const MIGRATIONS: &[&str] = &["
CREATE TABLE secret_locks (
    secret   TEXT PRIMARY KEY,
    owner    TEXT NOT NULL,
    token    BIGINT NOT NULL,
    until_ms BIGINT NOT NULL
);
CREATE SEQUENCE secret_lock_tokens;
"];

/// Why a lock could not be taken (not: someone else holds it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// The lock file could not be opened.
    #[error("cannot open the lock file: {0}")]
    Io(#[from] std::io::Error),
    /// PostgreSQL failed.
    #[error(transparent)]
    Pg(#[from] PgError),
}

/// Where the locks are.
#[derive(Debug, Clone)]
pub struct SecretLocks {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Files(PathBuf),
    Postgres(Arc<PgLocks>),
}

struct PgLocks {
    pool: Arc<PgPool>,
    owner: String,
    ttl: Duration,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PgLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLocks")
            .field("pool", &self.pool)
            .field("owner", &self.owner)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct SecretLock {
    held: Held,
}

#[derive(Debug)]
enum Held {
    File(#[allow(dead_code)] File),
    Pg(PgLock),
}

#[derive(Debug)]
struct PgLock {
    locks: Arc<PgLocks>,
    secret: String,
    token: i64,
    lost: Arc<AtomicBool>,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

impl SecretLocks {
    /// File locks in `dir` (created on first use): one host.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            kind: Kind::Files(dir.into()),
        }
    }

    /// Lock rows in PostgreSQL, held by `owner` for `ttl` between renewals,
    /// timed on `clock`: several hosts.
    ///
    /// # Errors
    ///
    /// A connection error, or a layout written by a newer Rota.
    pub fn postgres(
        pool: Arc<PgPool>,
        owner: impl Into<String>,
        ttl: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, PgError> {
        migrate(&pool, "locks", MIGRATIONS)?;
        Ok(Self {
            kind: Kind::Postgres(Arc::new(PgLocks {
                pool,
                owner: owner.into(),
                ttl,
                clock,
            })),
        })
    }

    /// The lock directory (file locks only).
    pub fn dir(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Files(d) => Some(d),
            Kind::Postgres(_) => None,
        }
    }

    /// Takes the secret's lock, or `None` if another rotation holds it.
    ///
    /// # Errors
    ///
    /// The lock could not be asked for.
    pub async fn try_lock(&self, secret: &str) -> Result<Option<SecretLock>, LockError> {
        match &self.kind {
            Kind::Files(dir) => file_lock(dir, secret),
            Kind::Postgres(locks) => PgLocks::try_lock(locks, secret).await,
        }
    }
}

fn file_lock(dir: &Path, secret: &str) -> Result<Option<SecretLock>, LockError> {
    std::fs::create_dir_all(dir)?;
    let h = rota_scheduler::job::stable_hash(secret.as_bytes());
    let path = dir.join(format!("rotate-{h:016x}.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(SecretLock {
            held: Held::File(file),
        })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(e.into()),
    }
}

impl PgLocks {
    fn table(&self) -> String {
        format!("\"{}\".secret_locks", self.pool.options().schema_name())
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }

    async fn try_lock(self: &Arc<Self>, secret: &str) -> Result<Option<SecretLock>, LockError> {
        let schema = self.pool.options().schema_name().to_owned();
        let sql = format!(
            "INSERT INTO {t} AS l (secret, owner, token, until_ms)
             VALUES ($1, $2, nextval('\"{schema}\".secret_lock_tokens'), $3)
             ON CONFLICT (secret) DO UPDATE
                 SET owner = excluded.owner, token = excluded.token, until_ms = excluded.until_ms
                 WHERE l.until_ms <= $4
             RETURNING token",
            t = self.table()
        );
        let now = self.now_ms();
        let (name, owner, until) = (
            secret.to_owned(),
            self.owner.clone(),
            now.saturating_add(self.ttl_ms()),
        );
        let token: Option<i64> = self
            .pool
            .run_async(move |c| {
                Box::pin(async move {
                    c.query_opt(&sql, &[&name, &owner, &until, &now])
                        .await
                        .map(|r| r.map(|r| r.get(0)))
                })
            })
            .await?;
        let Some(token) = token else {
            return Ok(None);
        };
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = self.pool.spawn(renew(
            Arc::clone(self),
            secret.to_owned(),
            token,
            Arc::clone(&lost),
        ));
        Ok(Some(SecretLock {
            held: Held::Pg(PgLock {
                locks: Arc::clone(self),
                secret: secret.to_owned(),
                token,
                lost,
                renewer,
            }),
        }))
    }
}

/// Extends the lock every third of its time-to-live while it is held; a
/// renewal that finds the row taken marks the lock lost.
async fn renew(locks: Arc<PgLocks>, secret: String, token: i64, lost: Arc<AtomicBool>) {
    let sql = format!(
        "UPDATE {} SET until_ms = $3 WHERE secret = $1 AND token = $2",
        locks.table()
    );
    loop {
        tokio::time::sleep(locks.ttl / 3).await;
        let until = locks.now_ms().saturating_add(locks.ttl_ms());
        let (sql, secret) = (sql.clone(), secret.clone());
        let result = locks
            .pool
            .run_async(move |c| {
                Box::pin(async move { c.execute(&sql, &[&secret, &token, &until]).await })
            })
            .await;
        match result {
            Ok(0) => {
                tracing::warn!(
                    "the rotation lock was taken over: this rotation will not finish here"
                );
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "cannot renew the rotation lock; it runs out unless the store answers")
            }
        }
    }
}

impl FenceCheck for SecretLock {
    fn check(&self) -> rota_kms::BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let Held::Pg(l) = &self.held else {
                return Ok(());
            };
            if l.lost.load(Ordering::SeqCst) {
                return Err("the secret's rotation lock was taken over".into());
            }
            let sql = format!(
                "SELECT 1 FROM {} WHERE secret = $1 AND token = $2 AND until_ms > $3",
                l.locks.table()
            );
            let (secret, token, now) = (l.secret.clone(), l.token, l.locks.now_ms());
            match l
                .locks
                .pool
                .run_async(move |c| {
                    Box::pin(async move { c.query_opt(&sql, &[&secret, &token, &now]).await })
                })
                .await
            {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err("the secret's rotation lock ran out or was taken over".into()),
                Err(e) => Err(format!("cannot confirm the secret's rotation lock: {e}")),
            }
        })
    }
}

impl Drop for PgLock {
    fn drop(&mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        let sql = format!(
            "DELETE FROM {} WHERE secret = $1 AND token = $2",
            self.locks.table()
        );
        let (secret, token, pool) = (
            self.secret.clone(),
            self.token,
            Arc::clone(&self.locks.pool),
        );
        // Released in the background; if it cannot be, the row expires.
        self.locks.pool.spawn(async move {
            let _ = pool
                .run_async(move |c| {
                    Box::pin(async move { c.execute(&sql, &[&secret, &token]).await })
                })
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lock_excludes_a_second_holder_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let locks = SecretLocks::new(dir.path());
        let a = locks.try_lock("app/db").await.unwrap();
        assert!(a.is_some());
        assert!(locks.try_lock("app/db").await.unwrap().is_none());
        assert!(locks.try_lock("app/other").await.unwrap().is_some());
        drop(a);
        assert!(locks.try_lock("app/db").await.unwrap().is_some());
    }
}

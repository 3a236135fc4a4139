//! One rotation per secret at a time across processes: an exclusive lock on
//! a per-secret file in the data directory, held while the rotation runs.
//!
//! The lock is an OS file lock (`flock`), so a process that dies — even by
//! `kill -9` or an injected crash — releases it at once: the next run does
//! not wait for a lease to expire. It complements the scheduler's lease
//! (one run per slot) and the protocol's pending-version check (a candidate
//! in flight is finished before another starts): it keeps a manual
//! `rota rotate` and a daemon from rotating one secret at the same moment.
//! The store is a local SQLite file, so every process that shares it runs
//! on one host and sees the same locks.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

/// The lock directory.
#[derive(Debug, Clone)]
pub struct SecretLocks {
    dir: PathBuf,
}

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct SecretLock {
    _file: File,
}

impl SecretLocks {
    /// Locks in `dir` (created on first use).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the secret's lock, or `None` if another rotation holds it.
    pub fn try_lock(&self, secret: &str) -> io::Result<Option<SecretLock>> {
        std::fs::create_dir_all(&self.dir)?;
        let h = rota_scheduler::job::stable_hash(secret.as_bytes());
        let path = self.dir.join(format!("rotate-{h:016x}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(SecretLock { _file: file })),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_excludes_a_second_holder_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let locks = SecretLocks::new(dir.path());
        let a = locks.try_lock("app/db").unwrap();
        assert!(a.is_some());
        assert!(locks.try_lock("app/db").unwrap().is_none());
        assert!(locks.try_lock("app/other").unwrap().is_some());
        drop(a);
        assert!(locks.try_lock("app/db").unwrap().is_some());
    }
}

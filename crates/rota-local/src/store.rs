//! Durable storage: SQLite in WAL mode with `synchronous=FULL`, written by one
//! dedicated thread doing **group commit**.
//!
//! Callers submit a write batch (a list of [`Op`]s) over a channel and await a
//! oneshot acknowledgement that is sent only after the transaction holding
//! the batch has committed, i.e. is on disk: every acknowledged write survives
//! `kill -9`. The writer drains whatever batches are queued into one
//! transaction (each inside its own savepoint, so one failing batch does not
//! take the others down), which is how many concurrent writers share one
//! fsync. Reads never touch the database after [`Store::open`]: the engine
//! serves them from memory.
//!
//! The schema holds metadata as JSON documents and secret data only as
//! sealed bytes (see [`crate::crypto`]); no plaintext secret data is ever
//! written here. The state of the emulated ECS, RDS and RAM targets lives in
//! `meta` rows named `target/…`, each a sealed JSON document.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use rusqlite::{Connection, params};
use tokio::sync::oneshot;

/// Database file name in the data directory.
pub const DB_FILE: &str = "kms.db";

/// Most batches folded into one transaction.
const MAX_GROUP: usize = 512;

/// A storage failure (no secret material in it).
#[derive(Debug, Clone, thiserror::Error)]
#[error("storage: {0}")]
pub struct StoreError(pub String);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self(e.to_string())
    }
}

/// One change to the database.
#[derive(Clone)]
pub enum Op {
    /// Insert or replace a key (metadata document and wrapped data key).
    PutKey {
        /// Key id.
        key_id: String,
        /// JSON metadata.
        doc: String,
        /// Data key wrapped under the master key.
        wrapped: Vec<u8>,
    },
    /// Insert or replace a secret's metadata document.
    PutSecret {
        /// Name.
        name: String,
        /// JSON metadata (no secret data).
        doc: String,
    },
    /// Delete a secret and all its versions.
    DeleteSecret {
        /// Name.
        name: String,
    },
    /// Insert a version's sealed data (versions are immutable).
    PutVersion {
        /// Secret name.
        name: String,
        /// Version id.
        version_id: String,
        /// Sealed data.
        sealed: Vec<u8>,
    },
    /// Delete one version's data.
    DeleteVersion {
        /// Secret name.
        name: String,
        /// Version id.
        version_id: String,
    },
    /// Insert or replace a metadata value.
    PutMeta {
        /// Name.
        key: String,
        /// Value.
        value: Vec<u8>,
    },
    /// Delete a metadata value.
    DeleteMeta {
        /// Name.
        key: String,
    },
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::PutKey { key_id, .. } => write!(f, "PutKey({key_id})"),
            Op::PutSecret { name, .. } => write!(f, "PutSecret({name})"),
            Op::DeleteSecret { name } => write!(f, "DeleteSecret({name})"),
            Op::PutVersion {
                name, version_id, ..
            } => write!(f, "PutVersion({name}, {version_id})"),
            Op::DeleteVersion { name, version_id } => {
                write!(f, "DeleteVersion({name}, {version_id})")
            }
            Op::PutMeta { key, .. } => write!(f, "PutMeta({key})"),
            Op::DeleteMeta { key } => write!(f, "DeleteMeta({key})"),
        }
    }
}

/// Everything in the database, read once at open.
#[derive(Debug, Default)]
pub struct Loaded {
    /// `meta` rows.
    pub meta: Vec<(String, Vec<u8>)>,
    /// `(key_id, doc, wrapped)`.
    pub keys: Vec<(String, String, Vec<u8>)>,
    /// `(name, doc)`.
    pub secrets: Vec<(String, String)>,
    /// `(name, version_id, sealed)`.
    pub versions: Vec<(String, String, Vec<u8>)>,
}

enum Msg {
    Write(Vec<Op>, oneshot::Sender<Result<(), StoreError>>),
    Checkpoint(oneshot::Sender<Result<(), StoreError>>),
}

/// The handle to the writer thread. Cheap to clone; the thread stops (and
/// closes the database) when the last handle is dropped.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Msg>,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS kms_keys (key_id TEXT PRIMARY KEY, doc TEXT NOT NULL, wrapped BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
  name TEXT NOT NULL,
  version_id TEXT NOT NULL,
  sealed BLOB NOT NULL,
  PRIMARY KEY (name, version_id)
);
";

/// The layout version of `kms.db`, kept in SQLite's `user_version`. A newer
/// Rota that changes the layout raises it and migrates older files on open;
/// an older Rota refuses a newer file instead of misreading it.
pub const SCHEMA_VERSION: i64 = 1;

impl Store {
    /// Opens (creating if needed) `<dir>/kms.db`, reads everything, and
    /// starts the writer thread.
    pub fn open(dir: &Path) -> Result<(Self, Loaded), StoreError> {
        let path = dir.join(DB_FILE);
        let conn = Connection::open(&path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError(format!(
                "{} was written by a newer Rota (layout version {found}; this build reads up to {SCHEMA_VERSION}): upgrade Rota, or restore a backup made before the upgrade",
                path.display()
            )));
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        let loaded = load(&conn)?;
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name("rota-local-writer".into())
            .spawn(move || writer(conn, rx))
            .map_err(|e| StoreError(format!("cannot start the writer thread: {e}")))?;
        Ok((Self { tx, path }, loaded))
    }

    /// Applies `ops` atomically; returns once they are durable.
    pub async fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Write(ops, tx))
            .map_err(|_| StoreError("the writer thread has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError("the writer thread has stopped".into()))?
    }

    /// Checkpoints the WAL into the database file and truncates it.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Checkpoint(tx))
            .map_err(|_| StoreError("the writer thread has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError("the writer thread has stopped".into()))?
    }

    /// The database path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn load(conn: &Connection) -> Result<Loaded, StoreError> {
    let mut out = Loaded::default();
    let mut st = conn.prepare("SELECT k, v FROM meta")?;
    out.meta = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut st = conn.prepare("SELECT key_id, doc, wrapped FROM kms_keys")?;
    out.keys = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut st = conn.prepare("SELECT name, doc FROM secrets")?;
    out.secrets = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut st = conn.prepare("SELECT name, version_id, sealed FROM versions")?;
    out.versions = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    Ok(out)
}

fn apply(conn: &Connection, op: &Op) -> rusqlite::Result<()> {
    match op {
        Op::PutKey {
            key_id,
            doc,
            wrapped,
        } => conn
            .prepare_cached(
                "INSERT OR REPLACE INTO kms_keys (key_id, doc, wrapped) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![key_id, doc, wrapped])
            .map(drop),
        Op::PutSecret { name, doc } => conn
            .prepare_cached("INSERT OR REPLACE INTO secrets (name, doc) VALUES (?1, ?2)")?
            .execute(params![name, doc])
            .map(drop),
        Op::DeleteSecret { name } => {
            conn.prepare_cached("DELETE FROM versions WHERE name = ?1")?
                .execute(params![name])?;
            conn.prepare_cached("DELETE FROM secrets WHERE name = ?1")?
                .execute(params![name])
                .map(drop)
        }
        Op::PutVersion {
            name,
            version_id,
            sealed,
        } => conn
            .prepare_cached(
                "INSERT OR REPLACE INTO versions (name, version_id, sealed) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![name, version_id, sealed])
            .map(drop),
        Op::DeleteVersion { name, version_id } => conn
            .prepare_cached("DELETE FROM versions WHERE name = ?1 AND version_id = ?2")?
            .execute(params![name, version_id])
            .map(drop),
        Op::PutMeta { key, value } => conn
            .prepare_cached("INSERT OR REPLACE INTO meta (k, v) VALUES (?1, ?2)")?
            .execute(params![key, value])
            .map(drop),
        Op::DeleteMeta { key } => conn
            .prepare_cached("DELETE FROM meta WHERE k = ?1")?
            .execute(params![key])
            .map(drop),
    }
}

fn apply_batch(conn: &Connection, ops: &[Op]) -> Result<(), StoreError> {
    conn.execute_batch("SAVEPOINT batch")?;
    let result = ops.iter().try_for_each(|op| apply(conn, op));
    match result {
        Ok(()) => {
            conn.execute_batch("RELEASE batch")?;
            Ok(())
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO batch; RELEASE batch")?;
            Err(e.into())
        }
    }
}

fn writer(conn: Connection, rx: mpsc::Receiver<Msg>) {
    while let Ok(first) = rx.recv() {
        let mut msgs = vec![first];
        while msgs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        let mut writes = Vec::with_capacity(msgs.len());
        let mut controls = Vec::new();
        for m in msgs {
            match m {
                Msg::Write(ops, ack) => writes.push((ops, ack)),
                Msg::Checkpoint(ack) => controls.push(ack),
            }
        }
        if !writes.is_empty() {
            commit_group(&conn, writes);
        }
        for ack in controls {
            let r = conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .map_err(StoreError::from);
            let _ = ack.send(r);
        }
    }
    tracing::debug!("store writer stopped");
}

type Ack = oneshot::Sender<Result<(), StoreError>>;

fn commit_group(conn: &Connection, writes: Vec<(Vec<Op>, Ack)>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let e = StoreError::from(e);
        for (_, ack) in writes {
            let _ = ack.send(Err(e.clone()));
        }
        return;
    }
    let results: Vec<Result<(), StoreError>> = writes
        .iter()
        .map(|(ops, _)| apply_batch(conn, ops))
        .collect();
    match conn.execute_batch("COMMIT") {
        Ok(()) => {
            tracing::trace!(batches = writes.len(), "group committed");
            for ((_, ack), r) in writes.into_iter().zip(results) {
                let _ = ack.send(r);
            }
        }
        Err(e) => {
            let e = StoreError::from(e);
            let _ = conn.execute_batch("ROLLBACK");
            for (_, ack) in writes {
                let _ = ack.send(Err(e.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_are_durable_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, loaded) = Store::open(dir.path()).unwrap();
            assert!(loaded.secrets.is_empty());
            store
                .write(vec![
                    Op::PutSecret {
                        name: "a".into(),
                        doc: "{}".into(),
                    },
                    Op::PutVersion {
                        name: "a".into(),
                        version_id: "v1".into(),
                        sealed: vec![1, 2, 3],
                    },
                ])
                .await
                .unwrap();
            store
                .write(vec![Op::PutSecret {
                    name: "b".into(),
                    doc: "{}".into(),
                }])
                .await
                .unwrap();
            store
                .write(vec![Op::DeleteSecret { name: "b".into() }])
                .await
                .unwrap();
            store.checkpoint().await.unwrap();
        }
        let (_store, loaded) = Store::open(dir.path()).unwrap();
        assert_eq!(loaded.secrets, vec![("a".to_owned(), "{}".to_owned())]);
        assert_eq!(loaded.versions.len(), 1);
    }

    #[test]
    fn a_file_from_a_newer_rota_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        let err = Store::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("written by a newer Rota"), "{err}");
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION + 1);
    }
}

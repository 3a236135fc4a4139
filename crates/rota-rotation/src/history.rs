//! Rotation history: one event per protocol step (secret, token, step,
//! attempt, time, duration, outcome, redacted error), and one row per
//! workflow run (summary and report kept with it), durably in SQLite beside
//! the scheduler's run history, and shown by `rota history`.
//!
//! Workflow runs were once stored as rotation steps named `run` of a plugin
//! called `workflow`; opening a history moves such rows into their own
//! table.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, mpsc};
use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use rota_scheduler::store::retry_busy;
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;

pub use crate::protocol::Step;

/// How a step (or a workflow run) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// It succeeded.
    Ok,
    /// It failed.
    Failed,
}

impl StepOutcome {
    /// `ok` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
        }
    }

    /// The outcome named `s` (as stored).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ok" => Some(Self::Ok),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One step of one rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepEvent {
    /// The secret.
    pub secret: String,
    /// The rotation token (pending version id).
    pub token: String,
    /// The plugin.
    pub plugin: String,
    /// The step.
    pub step: Step,
    /// Attempt number at the token.
    pub attempt: u32,
    /// When it ended.
    pub at: DateTime<Utc>,
    /// How long it took.
    pub duration: Duration,
    /// How it ended.
    pub outcome: StepOutcome,
    /// The redacted error.
    pub error: Option<String>,
}

/// A stored step event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredStep {
    /// Row id.
    pub id: i64,
    /// The secret.
    pub secret: String,
    /// The token.
    pub token: String,
    /// The plugin.
    pub plugin: String,
    /// The step.
    pub step: Step,
    /// Attempt.
    pub attempt: u32,
    /// When it ended.
    pub at: DateTime<Utc>,
    /// Milliseconds.
    pub duration_ms: u64,
    /// How it ended.
    pub outcome: StepOutcome,
    /// Redacted error.
    pub error: Option<String>,
}

/// One run of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowRunRecord {
    /// The workflow's name.
    pub workflow: String,
    /// The scheduler slot it ran for (none for runs recorded before slots
    /// were kept).
    pub slot: Option<DateTime<Utc>>,
    /// Attempt at that slot.
    pub attempt: u32,
    /// When it ended.
    pub at: DateTime<Utc>,
    /// Milliseconds.
    pub duration_ms: u64,
    /// How it ended.
    pub outcome: StepOutcome,
    /// The report's one-line summary.
    pub summary: Option<String>,
    /// The report as JSON (secrets shown as `***`).
    pub report: Option<serde_json::Value>,
    /// The redacted error.
    pub error: Option<String>,
}

/// Where step events go.
pub trait HistorySink: Send + Sync + std::fmt::Debug {
    /// Records one event. Failing to record is logged, never fatal.
    fn record(&self, event: StepEvent);

    /// Records one workflow run (by default: dropped).
    fn record_workflow(&self, run: WorkflowRunRecord) {
        let _ = run;
    }
}

/// Drops every event (dry runs, benchmarks).
#[derive(Debug, Default)]
pub struct NoHistory;

impl HistorySink for NoHistory {
    fn record(&self, _event: StepEvent) {}
}

/// Keeps events in memory (tests).
#[derive(Debug, Default)]
pub struct MemoryHistory(Mutex<Vec<StepEvent>>);

impl MemoryHistory {
    /// The events so far.
    pub fn events(&self) -> Vec<StepEvent> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl HistorySink for MemoryHistory {
    fn record(&self, event: StepEvent) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(event);
    }
}

/// A history store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The database failed.
    #[error("rotation history: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("rotation history: {0}")]
    Pg(#[from] rota_scheduler::pg::PgError),
    /// A stored value could not be read back.
    #[error("rotation history: {0}")]
    Decode(String),
    /// The writer thread could not start.
    #[error("rotation history: cannot start the writer thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Step events in SQLite.
///
/// Recording never blocks a rotation on a disk sync: events go over a
/// channel to one writer thread that inserts whatever has queued up in a
/// single transaction (group commit). Reads flush first, and dropping the
/// history waits for the writer, so a command that exits has written every
/// event. The history is a record, not the source of truth (KMS is): after
/// a hard crash the last few events may be missing, never a secret version.
#[derive(Debug)]
pub struct SqliteHistory {
    conn: Mutex<Connection>,
    writer: Writer,
}

pub(crate) enum Msg {
    Event(StepEvent),
    Workflow(WorkflowRunRecord),
    Flush(mpsc::Sender<()>),
}

/// Most events written in one transaction.
const BATCH: usize = 512;

fn insert_batch(
    conn: &mut Connection,
    events: &[StepEvent],
    runs: &[WorkflowRunRecord],
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO workflow_runs (workflow, slot_ms, attempt, at_ms, duration_ms, outcome, summary, report, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for r in runs {
            stmt.execute(params![
                r.workflow,
                r.slot.map(|s| s.timestamp_millis()),
                r.attempt,
                r.at.timestamp_millis(),
                r.duration_ms as i64,
                r.outcome.as_str(),
                r.summary,
                r.report.as_ref().map(serde_json::Value::to_string),
                r.error
            ])?;
        }
    }
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO rotation_steps (secret, token, plugin, step, attempt, at_ms, duration_ms, outcome, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for e in events {
            stmt.execute(params![
                e.secret,
                e.token,
                e.plugin,
                e.step.name(),
                e.attempt,
                e.at.timestamp_millis(),
                e.duration.as_millis() as i64,
                e.outcome.as_str(),
                e.error
            ])?;
        }
    }
    tx.commit()
}

/// The thread that writes what is recorded, a batch per transaction.
#[derive(Debug)]
pub(crate) struct Writer {
    inner: Mutex<Option<(mpsc::Sender<Msg>, std::thread::JoinHandle<()>)>>,
}

impl Writer {
    /// Starts the thread; `write` stores one batch.
    pub(crate) fn spawn(
        write: impl FnMut(&[StepEvent], &[WorkflowRunRecord]) -> Result<(), String> + Send + 'static,
    ) -> Result<Self, HistoryError> {
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("rota-history".into())
            .spawn(move || writer_loop(write, rx))
            .map_err(HistoryError::Thread)?;
        Ok(Self {
            inner: Mutex::new(Some((tx, handle))),
        })
    }

    pub(crate) fn send(&self, msg: Msg) {
        let guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((tx, _)) = guard.as_ref()
            && tx.send(msg).is_err()
        {
            tracing::warn!("the rotation history writer has stopped; a record was lost");
        }
    }

    /// Waits until everything sent so far is written.
    pub(crate) fn flush(&self) {
        let (done_tx, done_rx) = mpsc::channel();
        let sent = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(|(tx, _)| tx.send(Msg::Flush(done_tx)).is_ok());
        if sent {
            let _ = done_rx.recv();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let writer = self
            .inner
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((tx, handle)) = writer {
            drop(tx);
            let _ = handle.join();
        }
    }
}

fn writer_loop(
    mut write: impl FnMut(&[StepEvent], &[WorkflowRunRecord]) -> Result<(), String>,
    rx: mpsc::Receiver<Msg>,
) {
    let mut events = Vec::new();
    let mut runs = Vec::new();
    let mut flushes = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Event(e) => events.push(e),
                Msg::Workflow(r) => runs.push(r),
                Msg::Flush(done) => flushes.push(done),
            }
            if events.len() + runs.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !events.is_empty() || !runs.is_empty() {
            if let Err(err) = write(&events, &runs) {
                tracing::warn!(events = events.len() + runs.len(), error = %err, "cannot record rotation history");
            }
            events.clear();
            runs.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

impl SqliteHistory {
    /// Opens (and creates) the history table in the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, HistoryError> {
        let path = path.as_ref();
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        retry_busy(|| conn.pragma_update(None, "journal_mode", "WAL"))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        retry_busy(|| {
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS rotation_steps (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                secret TEXT NOT NULL,
                token TEXT NOT NULL,
                plugin TEXT NOT NULL,
                step TEXT NOT NULL,
                attempt INTEGER NOT NULL,
                at_ms INTEGER NOT NULL,
                duration_ms INTEGER NOT NULL,
                outcome TEXT NOT NULL,
                error TEXT
            );
            CREATE INDEX IF NOT EXISTS rotation_steps_secret ON rotation_steps(secret, id);
            CREATE TABLE IF NOT EXISTS workflow_runs (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                workflow TEXT NOT NULL,
                slot_ms INTEGER,
                attempt INTEGER NOT NULL,
                at_ms INTEGER NOT NULL,
                duration_ms INTEGER NOT NULL,
                outcome TEXT NOT NULL,
                summary TEXT,
                report TEXT,
                error TEXT
            );
            CREATE INDEX IF NOT EXISTS workflow_runs_workflow ON workflow_runs(workflow, id);
            CREATE TABLE IF NOT EXISTS secret_names (
                address TEXT PRIMARY KEY,
                secret TEXT NOT NULL
            );
            BEGIN IMMEDIATE;
            INSERT INTO workflow_runs (workflow, slot_ms, attempt, at_ms, duration_ms, outcome, error)
                SELECT substr(secret, 10), NULL, attempt, at_ms, duration_ms, outcome, error
                FROM rotation_steps
                WHERE plugin = 'workflow' AND step = 'run' AND secret LIKE 'workflow:%'
                ORDER BY id;
            DELETE FROM rotation_steps
                WHERE plugin = 'workflow' AND step = 'run' AND secret LIKE 'workflow:%';
            COMMIT;",
            )
        })?;
        let writer_conn = Connection::open(path)?;
        writer_conn.busy_timeout(Duration::from_secs(10))?;
        writer_conn.pragma_update(None, "synchronous", "FULL")?;
        let mut writer_conn = writer_conn;
        let writer = Writer::spawn(move |events, runs| {
            insert_batch(&mut writer_conn, events, runs).map_err(|e| e.to_string())
        })?;
        Ok(Self {
            conn: Mutex::new(conn),
            writer,
        })
    }

    /// Waits until every event recorded so far is written.
    pub fn flush(&self) {
        self.writer.flush();
    }

    /// The latest `limit` events, newest last, for one secret or all.
    pub fn list(&self, secret: Option<&str>, limit: u32) -> Result<Vec<StoredStep>, HistoryError> {
        self.flush();
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut stmt = conn.prepare(
            "SELECT id, secret, token, plugin, step, attempt, at_ms, duration_ms, outcome, error
             FROM rotation_steps WHERE (?1 IS NULL OR secret = ?1) ORDER BY id DESC LIMIT ?2",
        )?;
        let mut rows: Vec<StoredStep> = stmt
            .query_map(params![secret, limit], |r| {
                let at_ms: i64 = r.get(6)?;
                let step: String = r.get(4)?;
                let outcome: String = r.get(8)?;
                Ok(StoredStep {
                    id: r.get(0)?,
                    secret: r.get(1)?,
                    token: r.get(2)?,
                    plugin: r.get(3)?,
                    step: step.parse().map_err(|e| unknown_value(4, e))?,
                    attempt: r.get(5)?,
                    at: time(at_ms),
                    duration_ms: r.get::<_, i64>(7)?.max(0) as u64,
                    outcome: StepOutcome::parse(&outcome)
                        .ok_or_else(|| unknown_value(8, format!("unknown outcome {outcome:?}")))?,
                    error: r.get(9)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        rows.reverse();
        Ok(rows)
    }

    /// The latest `limit` workflow runs, newest last, for one workflow or all.
    pub fn workflow_runs(
        &self,
        workflow: Option<&str>,
        limit: u32,
    ) -> Result<Vec<WorkflowRunRecord>, HistoryError> {
        self.flush();
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut stmt = conn.prepare(
            "SELECT workflow, slot_ms, attempt, at_ms, duration_ms, outcome, summary, report, error
             FROM workflow_runs WHERE (?1 IS NULL OR workflow = ?1) ORDER BY id DESC LIMIT ?2",
        )?;
        let mut rows: Vec<WorkflowRunRecord> = stmt
            .query_map(params![workflow, limit], |r| {
                let outcome: String = r.get(5)?;
                let report: Option<String> = r.get(7)?;
                Ok(WorkflowRunRecord {
                    workflow: r.get(0)?,
                    slot: r.get::<_, Option<i64>>(1)?.map(time),
                    attempt: r.get(2)?,
                    at: time(r.get(3)?),
                    duration_ms: r.get::<_, i64>(4)?.max(0) as u64,
                    outcome: StepOutcome::parse(&outcome)
                        .ok_or_else(|| unknown_value(5, format!("unknown outcome {outcome:?}")))?,
                    summary: r.get(6)?,
                    report: report.and_then(|t| serde_json::from_str(&t).ok()),
                    error: r.get(8)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        rows.reverse();
        Ok(rows)
    }

    /// Remembers the live names of secrets KMS named (`$Auto`), by resource
    /// address, so that status and history find them without asking KMS.
    pub fn remember_names(&self, names: &BTreeMap<String, String>) -> Result<(), HistoryError> {
        let mut conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let tx = conn.transaction()?;
        for (address, secret) in names {
            tx.execute(
                "INSERT INTO secret_names (address, secret) VALUES (?1, ?2)
                 ON CONFLICT(address) DO UPDATE SET secret = excluded.secret",
                params![address, secret],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The live names remembered by [`Self::remember_names`].
    pub fn live_names(&self) -> Result<BTreeMap<String, String>, HistoryError> {
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut stmt = conn.prepare("SELECT address, secret FROM secret_names")?;
        let names = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(names)
    }

    /// The last event of a secret, if any.
    pub fn last(&self, secret: &str) -> Result<Option<StoredStep>, HistoryError> {
        Ok(self.list(Some(secret), 1)?.pop())
    }

    /// When the secret last finished a rotation, if ever.
    pub fn last_success(&self, secret: &str) -> Result<Option<DateTime<Utc>>, HistoryError> {
        self.flush();
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ms: Option<i64> = conn
            .query_row(
                "SELECT MAX(at_ms) FROM rotation_steps WHERE secret = ?1 AND step = 'finish' AND outcome = 'ok'",
                params![secret],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok(ms.and_then(|ms| Utc.timestamp_millis_opt(ms).single()))
    }
}

pub(crate) fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

fn unknown_value(column: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, message.into())
}

impl HistorySink for SqliteHistory {
    fn record(&self, e: StepEvent) {
        self.writer.send(Msg::Event(e));
    }

    /// Written by the writer thread, like steps.
    fn record_workflow(&self, run: WorkflowRunRecord) {
        self.writer.send(Msg::Workflow(run));
    }
}

/// What `rota status` and `rota history` read, on either store: the
/// SQLite file of one host ([`SqliteHistory`]) or PostgreSQL shared by
/// several ([`crate::history_pg::PgHistory`]).
pub trait HistoryStore: HistorySink {
    /// Waits until every event recorded so far is written.
    fn flush(&self);

    /// The latest `limit` events, newest last, for one secret or all.
    ///
    /// # Errors
    ///
    /// The store failed.
    fn list(&self, secret: Option<&str>, limit: u32) -> Result<Vec<StoredStep>, HistoryError>;

    /// The latest `limit` workflow runs, newest last, for one workflow or all.
    ///
    /// # Errors
    ///
    /// The store failed.
    fn workflow_runs(
        &self,
        workflow: Option<&str>,
        limit: u32,
    ) -> Result<Vec<WorkflowRunRecord>, HistoryError>;

    /// When the secret last finished a rotation, if ever.
    ///
    /// # Errors
    ///
    /// The store failed.
    fn last_success(&self, secret: &str) -> Result<Option<DateTime<Utc>>, HistoryError>;

    /// Remembers the live names of `$Auto` secrets by resource address.
    ///
    /// # Errors
    ///
    /// The store failed.
    fn remember_names(&self, names: &BTreeMap<String, String>) -> Result<(), HistoryError>;

    /// The names [`HistoryStore::remember_names`] kept.
    ///
    /// # Errors
    ///
    /// The store failed.
    fn live_names(&self) -> Result<BTreeMap<String, String>, HistoryError>;

    /// The last event of a secret, if any.
    ///
    /// # Errors
    ///
    /// The store failed.
    fn last(&self, secret: &str) -> Result<Option<StoredStep>, HistoryError> {
        Ok(self.list(Some(secret), 1)?.pop())
    }
}

impl HistoryStore for SqliteHistory {
    fn flush(&self) {
        SqliteHistory::flush(self);
    }

    fn list(&self, secret: Option<&str>, limit: u32) -> Result<Vec<StoredStep>, HistoryError> {
        SqliteHistory::list(self, secret, limit)
    }

    fn workflow_runs(
        &self,
        workflow: Option<&str>,
        limit: u32,
    ) -> Result<Vec<WorkflowRunRecord>, HistoryError> {
        SqliteHistory::workflow_runs(self, workflow, limit)
    }

    fn last_success(&self, secret: &str) -> Result<Option<DateTime<Utc>>, HistoryError> {
        SqliteHistory::last_success(self, secret)
    }

    fn remember_names(&self, names: &BTreeMap<String, String>) -> Result<(), HistoryError> {
        SqliteHistory::remember_names(self, names)
    }

    fn live_names(&self) -> Result<BTreeMap<String, String>, HistoryError> {
        SqliteHistory::live_names(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_runs_stored_as_steps_move_to_their_own_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scheduler.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE rotation_steps (
                    id INTEGER PRIMARY KEY AUTOINCREMENT, secret TEXT NOT NULL,
                    token TEXT NOT NULL, plugin TEXT NOT NULL, step TEXT NOT NULL,
                    attempt INTEGER NOT NULL, at_ms INTEGER NOT NULL,
                    duration_ms INTEGER NOT NULL, outcome TEXT NOT NULL, error TEXT);
                 INSERT INTO rotation_steps (secret, token, plugin, step, attempt, at_ms, duration_ms, outcome, error)
                 VALUES ('workflow:report', 'workflow-20260101T000000Z', 'workflow', 'run', 1, 1000, 5, 'ok', NULL),
                        ('app/db', 'rota-x', 'password', 'finish', 1, 2000, 3, 'ok', NULL);",
            )
            .unwrap();
        }
        let h = SqliteHistory::open(&path).unwrap();
        let runs = h.workflow_runs(None, 10).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].workflow, "report");
        assert_eq!(runs[0].outcome, StepOutcome::Ok);
        let steps = h.list(None, 10).unwrap();
        assert_eq!(steps.len(), 1);
        assert_eq!(
            (steps[0].secret.as_str(), steps[0].step),
            ("app/db", Step::Finish)
        );
        drop(h);
        // Opening again moves nothing twice.
        let h = SqliteHistory::open(&path).unwrap();
        assert_eq!(h.workflow_runs(None, 10).unwrap().len(), 1);
    }
}

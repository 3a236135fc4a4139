//! Rotation history: one event per protocol step (secret, token, step,
//! attempt, time, duration, outcome, redacted error), kept durably in
//! SQLite beside the scheduler's run history, and shown by `rota history`.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use rusqlite::{Connection, OptionalExtension as _, params};

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// `inspect`, `create`, `set`, `test`, `finish` or `rollback`.
    pub step: &'static str,
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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
    pub step: String,
    /// Attempt.
    pub attempt: u32,
    /// When (RFC 3339).
    pub at: String,
    /// Milliseconds.
    pub duration_ms: u64,
    /// `ok` or `failed`.
    pub outcome: String,
    /// Redacted error.
    pub error: Option<String>,
}

/// Where step events go.
pub trait HistorySink: Send + Sync + std::fmt::Debug {
    /// Records one event. Failing to record is logged, never fatal.
    fn record(&self, event: StepEvent);
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
#[error("rotation history: {0}")]
pub struct HistoryError(#[from] rusqlite::Error);

/// Step events in SQLite.
#[derive(Debug)]
pub struct SqliteHistory {
    conn: Mutex<Connection>,
}

impl SqliteHistory {
    /// Opens (and creates) the history table in the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, HistoryError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
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
            CREATE INDEX IF NOT EXISTS rotation_steps_secret ON rotation_steps(secret, id);",
        )?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// The latest `limit` events, newest last, for one secret or all.
    pub fn list(&self, secret: Option<&str>, limit: u32) -> Result<Vec<StoredStep>, HistoryError> {
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
                Ok(StoredStep {
                    id: r.get(0)?,
                    secret: r.get(1)?,
                    token: r.get(2)?,
                    plugin: r.get(3)?,
                    step: r.get(4)?,
                    attempt: r.get(5)?,
                    at: Utc
                        .timestamp_millis_opt(at_ms)
                        .single()
                        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
                        .unwrap_or_default(),
                    duration_ms: r.get::<_, i64>(7)?.max(0) as u64,
                    outcome: r.get(8)?,
                    error: r.get(9)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        rows.reverse();
        Ok(rows)
    }

    /// The last event of a secret, if any.
    pub fn last(&self, secret: &str) -> Result<Option<StoredStep>, HistoryError> {
        Ok(self.list(Some(secret), 1)?.pop())
    }

    /// When the secret last finished a rotation, if ever.
    pub fn last_success(&self, secret: &str) -> Result<Option<DateTime<Utc>>, HistoryError> {
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

impl HistorySink for SqliteHistory {
    fn record(&self, e: StepEvent) {
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let result = conn.execute(
            "INSERT INTO rotation_steps (secret, token, plugin, step, attempt, at_ms, duration_ms, outcome, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                e.secret,
                e.token,
                e.plugin,
                e.step,
                e.attempt,
                e.at.timestamp_millis(),
                e.duration.as_millis() as i64,
                e.outcome.as_str(),
                e.error
            ],
        );
        if let Err(err) = result {
            tracing::warn!(secret.name = %e.secret, error = %err, "cannot record a rotation step");
        }
    }
}

//! The durable job store: a trait, and the embedded SQLite implementation.
//!
//! The store holds, per job, the pending slot, when its next attempt is due,
//! how many attempts it has had, its state, and the lease of the runner
//! executing it; and a history of runs. All times are Unix milliseconds.
//!
//! Every mutation that decides *who runs what* is a compare-and-set on the
//! job row (expected slot and attempt count, lease free or expired), so two
//! runner processes on one store never run the same slot. Batch methods take
//! many operations in one transaction (group commit).

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::job::Policy;

/// An error from the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed.
    #[error("sqlite store")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored policy could not be decoded.
    #[error("job `{job}` has an undecodable policy")]
    Policy {
        /// The job.
        job: String,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// The store was written by a newer version of this crate.
    #[error("store schema version {found} is newer than supported version {supported}")]
    SchemaVersion {
        /// Version found in the file.
        found: i64,
        /// Newest version this build understands.
        supported: i64,
    },
    /// A lock protecting the connection was poisoned by a panic.
    #[error("store connection lock poisoned")]
    Poisoned,
    /// PostgreSQL failed (or could not be reached).
    #[error(transparent)]
    Pg(#[from] crate::pg::PgError),
}

impl StoreError {
    /// Whether the store could not be reached (a daemon then starts
    /// nothing new and retries), as opposed to a refused operation.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Pg(e) if e.is_connection())
    }
}

/// Whether a job is scheduled at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Runs on its schedule.
    Active,
    /// Does not run until resumed.
    Paused,
}

/// A lease: which runner executes the job's pending slot, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The runner's owner id.
    pub owner: String,
    /// Expiry, Unix ms; after it another runner may take the slot over.
    pub until_ms: i64,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobRow {
    /// Stable name.
    pub name: String,
    /// Schedule expression.
    pub schedule: String,
    /// IANA time zone name.
    pub tz: String,
    /// Payload, JSON text.
    pub payload: String,
    /// Policy.
    pub policy: Policy,
    /// Active or paused.
    pub state: RunState,
    /// Set when the retry budget of a slot was spent; cleared by a success
    /// or a reset.
    pub needs_attention: bool,
    /// The pending slot (Unix ms); `None` when the schedule is exhausted.
    pub slot_ms: Option<i64>,
    /// When the next attempt at the pending slot is due (Unix ms).
    pub due_ms: Option<i64>,
    /// Attempts started at the pending slot.
    pub attempts: u32,
    /// The current lease, if any (possibly expired).
    pub lease: Option<Lease>,
}

/// A job to insert or update. An existing job keeps its slot, attempts,
/// state and lease unless its schedule or time zone changed, in which case
/// the pending slot is replaced by `slot_ms`/`due_ms`.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Stable name.
    pub name: String,
    /// Schedule expression.
    pub schedule: String,
    /// IANA time zone name.
    pub tz: String,
    /// Payload, JSON text.
    pub payload: String,
    /// Policy.
    pub policy: Policy,
    /// First slot for a new (or rescheduled) job.
    pub slot_ms: Option<i64>,
    /// When that slot is due.
    pub due_ms: Option<i64>,
    /// A new job's first slot is `now_ms` (due at once) instead of
    /// `slot_ms`; a rescheduled job still takes `slot_ms`.
    pub start_now: bool,
}

/// A request to start the pending slot of a job.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The job.
    pub name: String,
    /// The slot the runner believes is pending.
    pub slot_ms: i64,
    /// The attempt count the runner believes is stored.
    pub attempts: u32,
    /// If the runner moved the slot forward (catch-up), the slot to run;
    /// else equal to `slot_ms`.
    pub run_slot_ms: i64,
    /// Lease expiry (Unix ms): the run's timeout plus a grace period.
    pub lease_until_ms: i64,
}

/// A successful claim.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Id of the history row opened for this run.
    pub run_id: i64,
    /// Attempt number of this run (1-based).
    pub attempt: u32,
    /// The payload, JSON text.
    pub payload: String,
}

/// The answer to one [`Claim`].
#[derive(Debug, Clone)]
pub enum ClaimOutcome {
    /// The lease is ours: run it.
    Claimed(Claimed),
    /// Someone else holds it, or the row moved on: here is the row as it is
    /// now (`None` if the job was deleted).
    Lost(Option<Box<JobRow>>),
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The handler succeeded.
    Succeeded,
    /// The handler failed, panicked or timed out.
    Failed,
    /// The runner shut down before the run finished; it will be retried.
    Cancelled,
    /// The owner died mid-run; recorded when another runner takes over.
    Interrupted,
    /// The slot was not started by its deadline, or skipped by `catch_up`.
    Missed,
    /// Started, not yet ended.
    Running,
}

impl Outcome {
    /// Stable text stored in the history table.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
            Self::Missed => "missed",
            Self::Running => "running",
        }
    }

    pub(crate) fn parse(s: &str) -> Self {
        match s {
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            "interrupted" => Self::Interrupted,
            "missed" => Self::Missed,
            _ => Self::Running,
        }
    }
}

/// The job's pending work after an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Next {
    /// Pending slot; `None`: schedule exhausted.
    pub slot_ms: Option<i64>,
    /// When the next attempt is due.
    pub due_ms: Option<i64>,
    /// Attempts started at that slot.
    pub attempts: u32,
    /// The needs-attention flag.
    pub needs_attention: bool,
}

/// The end of a run: closes its history row and, if this runner still holds
/// the lease, releases it and stores `next`.
#[derive(Debug, Clone)]
pub struct Finish {
    /// The job.
    pub name: String,
    /// The history row from [`Claimed::run_id`].
    pub run_id: i64,
    /// The runner's owner id.
    pub owner: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Redacted error text.
    pub error: Option<String>,
    /// End time.
    pub ended_ms: i64,
    /// What is pending afterwards.
    pub next: Next,
    /// Events about the run, stored in the same transaction (see
    /// [`crate::outbox`]).
    pub events: Vec<crate::outbox::NewEvent>,
}

/// Slots passed over without running: records one `missed` history row and
/// moves the job on, if the row is still as expected and not leased.
#[derive(Debug, Clone)]
pub struct Skip {
    /// The job.
    pub name: String,
    /// Expected pending slot.
    pub slot_ms: i64,
    /// Expected attempts.
    pub attempts: u32,
    /// The last slot passed over (recorded in history).
    pub missed_slot_ms: i64,
    /// Why, for the history's error column.
    pub reason: String,
    /// What is pending afterwards.
    pub next: Next,
}

/// One history row.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunRecord {
    /// Row id, increasing.
    pub id: i64,
    /// The job.
    pub job: String,
    /// The slot served.
    pub slot_ms: i64,
    /// Attempt number (0 for a missed slot).
    pub attempt: u32,
    /// The runner that recorded it.
    pub owner: String,
    /// Start (for a missed slot: when it was recorded).
    pub started_ms: i64,
    /// End, if ended.
    pub ended_ms: Option<i64>,
    /// Outcome.
    pub outcome: Outcome,
    /// Redacted error text.
    pub error: Option<String>,
}

/// How much run history to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many rows per job (`None`: no limit).
    pub max_runs_per_job: Option<u32>,
    /// Drop ended rows older than this (`None`: no limit).
    pub max_age: Option<Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_runs_per_job: Some(1000),
            max_age: Some(Duration::from_secs(90 * 86_400)),
        }
    }
}

/// Durable storage for jobs, leases and run history.
///
/// Methods are synchronous and may block on I/O; the runner calls them from
/// blocking threads. Implementations must make [`JobStore::claim`] and
/// [`JobStore::skip`] atomic compare-and-set operations across processes.
pub trait JobStore: Send + Sync + 'static {
    /// Inserts or updates jobs (see [`NewJob`]), returning the stored rows.
    ///
    /// # Errors
    ///
    /// Any storage failure; nothing is written then.
    fn upsert(&self, jobs: &[NewJob], now_ms: i64) -> Result<Vec<JobRow>, StoreError>;

    /// Every job.
    ///
    /// # Errors
    ///
    /// Any storage failure.
    fn jobs(&self) -> Result<Vec<JobRow>, StoreError>;

    /// One job.
    ///
    /// # Errors
    ///
    /// Any storage failure.
    fn job(&self, name: &str) -> Result<Option<JobRow>, StoreError>;

    /// Tries to lease each job's pending slot for `owner` until the claim's
    /// `lease_until_ms`. A claim succeeds if the job is active, its slot and
    /// attempts are as expected, and its lease is free, expired, or already
    /// `owner`'s (a restarted runner with a stable owner id recovers its own
    /// leases at once). On success the attempt count is incremented, the slot
    /// set to `run_slot_ms`, any `running` history row of the job is closed as
    /// `interrupted`, and a `running` row is opened.
    ///
    /// # Errors
    ///
    /// Any storage failure; no claim in the batch is applied then.
    fn claim(
        &self,
        claims: &[Claim],
        owner: &str,
        now_ms: i64,
    ) -> Result<Vec<ClaimOutcome>, StoreError>;

    /// Ends runs. Returns, per finish, whether the job row was updated (false
    /// when the lease had been taken over).
    ///
    /// # Errors
    ///
    /// Any storage failure; nothing in the batch is applied then.
    fn finish(&self, finishes: &[Finish]) -> Result<Vec<bool>, StoreError>;

    /// Records passed-over slots and moves jobs on (same lease rule as
    /// [`JobStore::claim`]). Returns, per skip, whether it applied.
    ///
    /// # Errors
    ///
    /// Any storage failure; nothing in the batch is applied then.
    fn skip(&self, skips: &[Skip], owner: &str, now_ms: i64) -> Result<Vec<bool>, StoreError>;

    /// Pauses or resumes a job; on resume `next` becomes its pending work.
    /// Returns false if the job does not exist.
    ///
    /// # Errors
    ///
    /// Any storage failure.
    fn set_state(
        &self,
        name: &str,
        state: RunState,
        next: Option<Next>,
    ) -> Result<bool, StoreError>;

    /// Clears needs-attention and the attempt count. Returns false if the job
    /// does not exist.
    ///
    /// # Errors
    ///
    /// Any storage failure.
    fn reset(&self, name: &str) -> Result<bool, StoreError>;

    /// Deletes a job (its history stays until retention drops it).
    ///
    /// # Errors
    ///
    /// Any storage failure.
    fn remove(&self, name: &str) -> Result<bool, StoreError>;

    /// The newest `limit` history rows of a job, newest first.
    ///
    /// # Errors
    ///
    /// Any storage failure.
    fn runs(&self, name: &str, limit: u32) -> Result<Vec<RunRecord>, StoreError>;

    /// Applies retention to the history; returns the number of rows dropped.
    ///
    /// # Errors
    ///
    /// Any storage failure.
    fn prune(&self, retention: Retention, now_ms: i64) -> Result<u64, StoreError>;

    /// Extends the leases `owner` holds on `names` to `until_ms` (the
    /// heartbeat of running jobs). Returns, per name, whether the lease was
    /// still `owner`'s and is extended.
    ///
    /// # Errors
    ///
    /// Any storage failure.
    fn renew(&self, names: &[String], owner: &str, until_ms: i64) -> Result<Vec<bool>, StoreError>;

    /// Where the store is, for messages (`scheduler.db`, `postgres://…`),
    /// without a password.
    fn describe(&self) -> String {
        "the job store".into()
    }

    /// Whether the last attempt to reach the store worked (always true for
    /// a local file).
    fn is_up(&self) -> bool {
        true
    }

    /// Wakes when another process changed the jobs (PostgreSQL's
    /// `LISTEN/NOTIFY`); `None` for a store that cannot tell. A `None`
    /// message means "something may have changed: read them all again".
    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Option<String>>> {
        None
    }
}

pub(crate) const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    name            TEXT PRIMARY KEY,
    schedule        TEXT NOT NULL,
    tz              TEXT NOT NULL,
    payload         TEXT NOT NULL,
    policy          TEXT NOT NULL,
    paused          INTEGER NOT NULL DEFAULT 0,
    needs_attention INTEGER NOT NULL DEFAULT 0,
    slot            INTEGER,
    due             INTEGER,
    attempts        INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until     INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    id         INTEGER PRIMARY KEY,
    job        TEXT NOT NULL,
    slot       INTEGER NOT NULL,
    attempt    INTEGER NOT NULL,
    owner      TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER,
    outcome    TEXT NOT NULL,
    error      TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_job ON runs (job, id);
CREATE INDEX IF NOT EXISTS runs_running ON runs (job) WHERE outcome = 'running';
CREATE INDEX IF NOT EXISTS runs_by_end ON runs (ended_at);
";

const JOB_COLUMNS: &str = "name, schedule, tz, payload, policy, paused, needs_attention, \
                           slot, due, attempts, lease_owner, lease_until";

/// The embedded store: one SQLite file in WAL mode with `synchronous=FULL`,
/// so every acknowledged commit survives power loss. Several processes may
/// open the same file; SQLite's locking serialises their transactions.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`.
    ///
    /// # Errors
    ///
    /// If the file cannot be opened, configured or migrated.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    /// A private in-memory store (for tests and dry runs).
    ///
    /// # Errors
    ///
    /// If SQLite cannot initialise.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(Duration::from_secs(30))?;
        retry_busy(|| conn.pragma_update(None, "journal_mode", "WAL"))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaVersion {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        retry_busy(|| conn.execute_batch(SCHEMA))?;
        retry_busy(|| conn.execute_batch(crate::outbox::SQLITE_SCHEMA))?;
        retry_busy(|| conn.pragma_update(None, "user_version", SCHEMA_VERSION))?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }
}

/// Runs `f` again while SQLite answers "busy" without waiting for the busy
/// timeout, as it does when two processes open a new database at once
/// (switching to WAL, creating the schema). Gives up after about 8 s.
pub fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let mut delay = Duration::from_millis(5);
    for _ in 0..40 {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(200));
            }
            other => return other,
        }
    }
    f()
}

fn read_job(r: &rusqlite::Row<'_>) -> rusqlite::Result<(JobRow, String)> {
    let owner: Option<String> = r.get(10)?;
    let until: Option<i64> = r.get(11)?;
    let policy_text: String = r.get(4)?;
    Ok((
        JobRow {
            name: r.get(0)?,
            schedule: r.get(1)?,
            tz: r.get(2)?,
            payload: r.get(3)?,
            policy: Policy::default(),
            state: if r.get::<_, bool>(5)? {
                RunState::Paused
            } else {
                RunState::Active
            },
            needs_attention: r.get(6)?,
            slot_ms: r.get(7)?,
            due_ms: r.get(8)?,
            attempts: r.get(9)?,
            lease: owner.map(|owner| Lease {
                owner,
                until_ms: until.unwrap_or(0),
            }),
        },
        policy_text,
    ))
}

fn decode(pair: (JobRow, String)) -> Result<JobRow, StoreError> {
    let (mut row, text) = pair;
    row.policy = serde_json::from_str(&text).map_err(|source| StoreError::Policy {
        job: row.name.clone(),
        source,
    })?;
    Ok(row)
}

fn select_job(conn: &Connection, name: &str) -> Result<Option<JobRow>, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE name = ?1"))?;
    stmt.query_row([name], read_job)
        .optional()?
        .map(decode)
        .transpose()
}

fn encode_policy(policy: &Policy) -> String {
    // Serialising a plain struct of integers, booleans and enums cannot fail.
    serde_json::to_string(policy).unwrap_or_default()
}

impl JobStore for SqliteStore {
    fn upsert(&self, jobs: &[NewJob], now_ms: i64) -> Result<Vec<JobRow>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(jobs.len());
        {
            let mut stmt = tx.prepare_cached(&format!(
                "INSERT INTO jobs (name, schedule, tz, payload, policy, slot, due, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?9, ?10, ?8, ?8)
                 ON CONFLICT (name) DO UPDATE SET
                    payload = excluded.payload,
                    policy = excluded.policy,
                    updated_at = excluded.updated_at,
                    slot = CASE WHEN jobs.schedule = excluded.schedule AND jobs.tz = excluded.tz
                                THEN jobs.slot ELSE ?6 END,
                    due = CASE WHEN jobs.schedule = excluded.schedule AND jobs.tz = excluded.tz
                               THEN jobs.due ELSE ?7 END,
                    attempts = CASE WHEN jobs.schedule = excluded.schedule AND jobs.tz = excluded.tz
                                    THEN jobs.attempts ELSE 0 END,
                    schedule = excluded.schedule,
                    tz = excluded.tz
                 RETURNING {JOB_COLUMNS}"
            ))?;
            for job in jobs {
                let policy = encode_policy(&job.policy);
                let (first_slot, first_due) = if job.start_now {
                    (Some(now_ms), Some(now_ms))
                } else {
                    (job.slot_ms, job.due_ms)
                };
                let pair = stmt.query_row(
                    params![
                        job.name,
                        job.schedule,
                        job.tz,
                        job.payload,
                        policy,
                        job.slot_ms,
                        job.due_ms,
                        now_ms,
                        first_slot,
                        first_due
                    ],
                    read_job,
                )?;
                // The policy just written is the one stored.
                let mut row = pair.0;
                row.policy = job.policy.clone();
                out.push(row);
            }
        }
        tx.commit()?;
        Ok(out)
    }

    fn jobs(&self) -> Result<Vec<JobRow>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY name"))?;
        let rows = stmt.query_map([], read_job)?;
        let mut out = Vec::new();
        for pair in rows {
            out.push(decode(pair?)?);
        }
        Ok(out)
    }

    fn job(&self, name: &str) -> Result<Option<JobRow>, StoreError> {
        let conn = self.conn()?;
        select_job(&conn, name)
    }

    fn claim(
        &self,
        claims: &[Claim],
        owner: &str,
        now_ms: i64,
    ) -> Result<Vec<ClaimOutcome>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(claims.len());
        for c in claims {
            let won: Option<(u32, String)> = tx
                .prepare_cached(
                    "UPDATE jobs SET attempts = attempts + 1, slot = ?4, lease_owner = ?5,
                         lease_until = ?6, updated_at = ?7
                     WHERE name = ?1 AND slot = ?2 AND attempts = ?3 AND paused = 0
                       AND (lease_owner IS NULL OR lease_until <= ?7 OR lease_owner = ?5)
                     RETURNING attempts, payload",
                )?
                .query_row(
                    params![
                        c.name,
                        c.slot_ms,
                        c.attempts,
                        c.run_slot_ms,
                        owner,
                        c.lease_until_ms,
                        now_ms
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            match won {
                Some((attempt, payload)) => {
                    tx.prepare_cached(
                        "UPDATE runs SET outcome = 'interrupted', ended_at = ?2,
                             error = 'runner stopped before the run ended'
                         WHERE job = ?1 AND outcome = 'running'",
                    )?
                    .execute(params![c.name, now_ms])?;
                    tx.prepare_cached(
                        "INSERT INTO runs (job, slot, attempt, owner, started_at, outcome)
                         VALUES (?1, ?2, ?3, ?4, ?5, 'running')",
                    )?
                    .execute(params![
                        c.name,
                        c.run_slot_ms,
                        attempt,
                        owner,
                        now_ms
                    ])?;
                    out.push(ClaimOutcome::Claimed(Claimed {
                        run_id: tx.last_insert_rowid(),
                        attempt,
                        payload,
                    }));
                }
                None => out.push(ClaimOutcome::Lost(select_job(&tx, &c.name)?.map(Box::new))),
            }
        }
        tx.commit()?;
        Ok(out)
    }

    fn finish(&self, finishes: &[Finish]) -> Result<Vec<bool>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(finishes.len());
        for f in finishes {
            tx.prepare_cached(
                "UPDATE runs SET ended_at = ?2, outcome = ?3, error = ?4
                 WHERE id = ?1 AND outcome = 'running'",
            )?
            .execute(params![f.run_id, f.ended_ms, f.outcome.as_str(), f.error])?;
            let n = tx
                .prepare_cached(
                    "UPDATE jobs SET slot = ?3, due = ?4, attempts = ?5, needs_attention = ?6,
                         lease_owner = NULL, lease_until = NULL, updated_at = ?7
                     WHERE name = ?1 AND lease_owner = ?2",
                )?
                .execute(params![
                    f.name,
                    f.owner,
                    f.next.slot_ms,
                    f.next.due_ms,
                    f.next.attempts,
                    f.next.needs_attention,
                    f.ended_ms
                ])?;
            crate::outbox::insert_sqlite(&tx, &f.events)?;
            out.push(n == 1);
        }
        tx.commit()?;
        Ok(out)
    }

    fn skip(&self, skips: &[Skip], owner: &str, now_ms: i64) -> Result<Vec<bool>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(skips.len());
        for s in skips {
            let n = tx
                .prepare_cached(
                    "UPDATE jobs SET slot = ?4, due = ?5, attempts = ?6, needs_attention = ?7,
                         updated_at = ?8
                     WHERE name = ?1 AND slot = ?2 AND attempts = ?3 AND paused = 0
                       AND (lease_owner IS NULL OR lease_until <= ?8 OR lease_owner = ?9)",
                )?
                .execute(params![
                    s.name,
                    s.slot_ms,
                    s.attempts,
                    s.next.slot_ms,
                    s.next.due_ms,
                    s.next.attempts,
                    s.next.needs_attention,
                    now_ms,
                    owner
                ])?;
            if n == 1 {
                tx.prepare_cached(
                    "INSERT INTO runs (job, slot, attempt, owner, started_at, ended_at, outcome, error)
                     VALUES (?1, ?2, 0, ?3, ?4, ?4, 'missed', ?5)",
                )?
                .execute(params![s.name, s.missed_slot_ms, owner, now_ms, s.reason])?;
            }
            out.push(n == 1);
        }
        tx.commit()?;
        Ok(out)
    }

    fn set_state(
        &self,
        name: &str,
        state: RunState,
        next: Option<Next>,
    ) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let paused = state == RunState::Paused;
        let n = match next {
            Some(next) => conn.execute(
                "UPDATE jobs SET paused = ?2, slot = ?3, due = ?4, attempts = ?5 WHERE name = ?1",
                params![name, paused, next.slot_ms, next.due_ms, next.attempts],
            )?,
            None => conn.execute(
                "UPDATE jobs SET paused = ?2 WHERE name = ?1",
                params![name, paused],
            )?,
        };
        Ok(n == 1)
    }

    fn reset(&self, name: &str) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let n = conn.execute(
            "UPDATE jobs SET needs_attention = 0, attempts = 0 WHERE name = ?1",
            [name],
        )?;
        Ok(n == 1)
    }

    fn remove(&self, name: &str) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        Ok(conn.execute("DELETE FROM jobs WHERE name = ?1", [name])? == 1)
    }

    fn runs(&self, name: &str, limit: u32) -> Result<Vec<RunRecord>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, job, slot, attempt, owner, started_at, ended_at, outcome, error
             FROM runs WHERE job = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![name, limit], |r| {
            Ok(RunRecord {
                id: r.get(0)?,
                job: r.get(1)?,
                slot_ms: r.get(2)?,
                attempt: r.get(3)?,
                owner: r.get(4)?,
                started_ms: r.get(5)?,
                ended_ms: r.get(6)?,
                outcome: Outcome::parse(&r.get::<_, String>(7)?),
                error: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn renew(&self, names: &[String], owner: &str, until_ms: i64) -> Result<Vec<bool>, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let n = tx
                .prepare_cached(
                    "UPDATE jobs SET lease_until = ?3 WHERE name = ?1 AND lease_owner = ?2",
                )?
                .execute(params![name, owner, until_ms])?;
            out.push(n == 1);
        }
        tx.commit()?;
        Ok(out)
    }

    fn describe(&self) -> String {
        "the SQLite job store".into()
    }

    fn prune(&self, retention: Retention, now_ms: i64) -> Result<u64, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut dropped = 0;
        if let Some(age) = retention.max_age {
            let cutoff = now_ms - i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
            dropped += tx.execute(
                "DELETE FROM runs WHERE ended_at IS NOT NULL AND ended_at < ?1",
                [cutoff],
            )?;
        }
        if let Some(keep) = retention.max_runs_per_job {
            dropped += tx.execute(
                "DELETE FROM runs WHERE outcome != 'running' AND id IN (
                     SELECT id FROM (
                         SELECT id, ROW_NUMBER() OVER (PARTITION BY job ORDER BY id DESC) AS n
                         FROM runs
                     ) WHERE n > ?1
                 )",
                [keep],
            )?;
        }
        tx.commit()?;
        Ok(u64::try_from(dropped).unwrap_or(u64::MAX))
    }
}

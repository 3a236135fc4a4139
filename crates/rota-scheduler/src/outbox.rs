//! The event outbox: events stored beside the scheduler's state, and their
//! deliveries to each sink.
//!
//! An event is written once (its `id` is unique: writing an event whose id
//! is stored already is a no-op, so a repeated run re-writes the same
//! events harmlessly) with one delivery row per sink it is meant for. A
//! run's events go in the transaction that ends the run
//! ([`crate::store::Finish::events`]), so a run is never recorded without
//! its events nor the other way round.
//!
//! Deliveries keep the order per subject (a secret): [`Outbox::due`] hands
//! out only the oldest pending delivery of each subject for a sink, so an
//! event is never delivered before an earlier one of the same subject has
//! been delivered, declared dead or dropped. One process delivers a sink at
//! a time ([`Outbox::take_sink`], a lease like a job's).
//!
//! Both stores implement it: [`crate::SqliteStore`] (one host) and
//! [`crate::PgStore`] (daemons sharing PostgreSQL).

use rusqlite::{OptionalExtension, Transaction, params};

use crate::store::{SqliteStore, StoreError};

/// An event to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// Unique id (CloudEvents `id`); a second event with this id is ignored.
    pub id: String,
    /// What it is about (a secret's name, a workflow's): the ordering key.
    pub subject: String,
    /// The event type (`rotation.rotated`, …).
    pub kind: String,
    /// When it happened, Unix ms.
    pub time_ms: i64,
    /// The whole event as JSON (never a secret value).
    pub body: String,
    /// The sinks it goes to.
    pub sinks: Vec<String>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its position in the outbox: increasing in write order.
    pub seq: i64,
    /// Unique id.
    pub id: String,
    /// What it is about.
    pub subject: String,
    /// The event type.
    pub kind: String,
    /// When it happened, Unix ms.
    pub time_ms: i64,
    /// The event as JSON.
    pub body: String,
}

/// Where one event stands with one sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryState {
    /// The event's seq.
    pub seq: i64,
    /// The sink.
    pub sink: String,
    /// `pending`, `delivered`, `dead` or `dropped`.
    pub state: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure (redacted by the deliverer).
    pub error: Option<String>,
}

/// A delivery to attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The event.
    pub event: StoredEvent,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    /// The sink took it.
    Delivered {
        /// When, Unix ms.
        at_ms: i64,
    },
    /// Try again at `next_ms`.
    Retry {
        /// When.
        next_ms: i64,
        /// Why it failed.
        error: String,
    },
    /// Given up: parked as dead.
    Dead {
        /// When, Unix ms.
        at_ms: i64,
        /// Why it failed.
        error: String,
    },
}

/// Which events to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events after this seq.
    pub after_seq: i64,
    /// Only events at or after this time (Unix ms).
    pub since_ms: Option<i64>,
    /// Only these types (empty: all).
    pub kinds: Vec<String>,
    /// At most this many, oldest first.
    pub limit: u32,
}

/// The deliveries of one sink, by state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkCounts {
    /// The sink.
    pub sink: String,
    /// Waiting or being retried.
    pub pending: u64,
    /// Delivered.
    pub delivered: u64,
    /// Given up after the sink's retry time.
    pub dead: u64,
    /// Dropped undelivered because the sink's backlog hit its cap.
    pub dropped: u64,
    /// The time of the oldest pending event, Unix ms.
    pub oldest_pending_ms: Option<i64>,
}

/// What a consumer (`rota agent`) reported of one secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdoptionReport {
    /// The consumer's id.
    pub consumer: String,
    /// The secret.
    pub secret: String,
    /// The version it renders.
    pub version_id: String,
    /// Whether its reload after rendering that version succeeded.
    pub reloaded: bool,
    /// When it reported, Unix ms.
    pub at_ms: i64,
}

/// The outbox. See the module docs.
pub trait Outbox: Send + Sync + 'static {
    /// Stores `events` (those whose id is stored already are skipped, with
    /// their deliveries). Returns how many were new.
    ///
    /// # Errors
    ///
    /// Any storage failure.
    fn append(&self, events: &[NewEvent]) -> Result<usize, StoreError>;

    /// Events matching `query`, oldest first.
    ///
    /// # Errors
    ///
    /// Any storage failure.
    fn events(&self, query: &EventQuery) -> Result<Vec<StoredEvent>, StoreError>;

    /// The deliveries of the events with seq in `seqs`.
    ///
    /// # Errors
    ///
    /// Any storage failure.
    fn delivery_states(&self, seqs: &[i64]) -> Result<Vec<DeliveryState>, StoreError>;

    /// Up to `limit` deliveries for `sink` to attempt now: per subject only
    /// the oldest pending one, and only when it is due. Oldest first.
    ///
    /// # Errors
    ///
    /// Any storage failure.
    fn due(&self, sink: &str, now_ms: i64, limit: u32) -> Result<Vec<Pending>, StoreError>;

    /// When the next pending delivery of `sink` is due.
    ///
    /// # Errors
    ///
    /// Any storage failure.
    fn next_due_ms(&self, sink: &str) -> Result<Option<i64>, StoreError>;

    /// Records how attempts ended (seq, result). When one was delivered,
    /// the sink's other retries become due at once.
    ///
    /// # Errors
    ///
    /// Any storage failure.
    fn settle(&self, sink: &str, results: &[(i64, Settle)]) -> Result<(), StoreError>;

    /// Drops the oldest pending deliveries of `sink` beyond `max_pending`.
    /// Returns how many were dropped.
    ///
    /// # Errors
    ///
    /// Any storage failure.
    fn cap(&self, sink: &str, max_pending: u64, now_ms: i64) -> Result<u64, StoreError>;

    /// Deletes events older than `before_ms` with no pending delivery.
    /// Returns how many.
    ///
    /// # Errors
    ///
    /// Any storage failure.
    fn prune_events(&self, before_ms: i64) -> Result<u64, StoreError>;

    /// Takes or renews the right to deliver `sink` until `until_ms`; false
    /// while another owner's lease lasts.
    ///
    /// # Errors
    ///
    /// Any storage failure.
    fn take_sink(
        &self,
        sink: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError>;

    /// The position of the newest stored event (0 when there is none).
    ///
    /// # Errors
    ///
    /// Any storage failure.
    fn last_seq(&self) -> Result<i64, StoreError>;

    /// Records a consumer's report (the latest per consumer and secret).
    ///
    /// # Errors
    ///
    /// Any storage failure.
    fn report_adoption(&self, report: &AdoptionReport) -> Result<(), StoreError>;

    /// The latest report of every consumer of `secret`.
    ///
    /// # Errors
    ///
    /// Any storage failure.
    fn adoption(&self, secret: &str) -> Result<Vec<AdoptionReport>, StoreError>;

    /// Delivery counts of every sink that has deliveries.
    ///
    /// # Errors
    ///
    /// Any storage failure.
    fn sinks(&self) -> Result<Vec<SinkCounts>, StoreError>;
}

pub(crate) const SQLITE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    id      TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    kind    TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    body    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (time_ms);
CREATE TABLE IF NOT EXISTS deliveries (
    sink       TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    subject    TEXT NOT NULL,
    state      TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_ms    INTEGER NOT NULL,
    error      TEXT,
    settled_ms INTEGER,
    PRIMARY KEY (sink, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (sink, state, seq);
CREATE INDEX IF NOT EXISTS deliveries_subject ON deliveries (sink, subject, state, seq);
CREATE INDEX IF NOT EXISTS deliveries_by_seq ON deliveries (seq);
CREATE TABLE IF NOT EXISTS sink_leases (
    sink     TEXT PRIMARY KEY,
    owner    TEXT NOT NULL,
    until_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS adoption (
    consumer   TEXT NOT NULL,
    secret     TEXT NOT NULL,
    version_id TEXT NOT NULL,
    reloaded   INTEGER NOT NULL,
    at_ms      INTEGER NOT NULL,
    PRIMARY KEY (consumer, secret)
) WITHOUT ROWID;
";

/// The PostgreSQL layout of consumers' reports (the scheduler's third
/// migration).
pub(crate) const PG_ADOPTION_MIGRATION: &str = "
CREATE TABLE adoption (
    consumer   TEXT NOT NULL,
    secret     TEXT NOT NULL,
    version_id TEXT NOT NULL,
    reloaded   BOOLEAN NOT NULL,
    at_ms      BIGINT NOT NULL,
    PRIMARY KEY (consumer, secret)
);
";

/// The PostgreSQL layout of the outbox (the scheduler's second migration).
pub(crate) const PG_MIGRATION: &str = "
CREATE TABLE events (
    seq     BIGSERIAL PRIMARY KEY,
    id      TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL,
    kind    TEXT NOT NULL,
    time_ms BIGINT NOT NULL,
    body    TEXT NOT NULL
);
CREATE INDEX events_by_time ON events (time_ms);
CREATE TABLE deliveries (
    sink       TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    subject    TEXT NOT NULL,
    state      TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_ms    BIGINT NOT NULL,
    error      TEXT,
    settled_ms BIGINT,
    PRIMARY KEY (sink, seq)
);
CREATE INDEX deliveries_pending ON deliveries (sink, state, seq);
CREATE INDEX deliveries_subject ON deliveries (sink, subject, state, seq);
CREATE INDEX deliveries_by_seq ON deliveries (seq);
CREATE TABLE sink_leases (
    sink     TEXT PRIMARY KEY,
    owner    TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);
";

/// Writes `events` in `tx` (SQLite). Returns how many were new.
pub(crate) fn insert_sqlite(tx: &Transaction<'_>, events: &[NewEvent]) -> rusqlite::Result<usize> {
    let mut new = 0;
    for e in events {
        let seq: Option<i64> = tx
            .prepare_cached(
                "INSERT INTO events (id, subject, kind, time_ms, body) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO NOTHING RETURNING seq",
            )?
            .query_row(params![e.id, e.subject, e.kind, e.time_ms, e.body], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(seq) = seq else { continue };
        new += 1;
        for sink in &e.sinks {
            tx.prepare_cached(
                "INSERT INTO deliveries (sink, seq, subject, state, next_ms)
                 VALUES (?1, ?2, ?3, 'pending', ?4) ON CONFLICT DO NOTHING",
            )?
            .execute(params![sink, seq, e.subject, e.time_ms])?;
        }
    }
    Ok(new)
}

fn read_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        seq: r.get(0)?,
        id: r.get(1)?,
        subject: r.get(2)?,
        kind: r.get(3)?,
        time_ms: r.get(4)?,
        body: r.get(5)?,
    })
}

/// The `WHERE` clause of [`Outbox::due`]: pending, due, and the oldest
/// pending of its subject.
pub(crate) const DUE_WHERE: &str = "d.sink = $1 AND d.state = 'pending' AND d.next_ms <= $2
      AND d.seq = (SELECT MIN(d2.seq) FROM deliveries d2
                   WHERE d2.sink = d.sink AND d2.subject = d.subject AND d2.state = 'pending')";

impl Outbox for SqliteStore {
    fn append(&self, events: &[NewEvent]) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = insert_sqlite(&tx, events)?;
        tx.commit()?;
        Ok(n)
    }

    fn events(&self, q: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        let conn = self.conn()?;
        let kinds = serde_json::to_string(&q.kinds).unwrap_or_else(|_| "[]".into());
        let mut stmt = conn.prepare_cached(
            "SELECT seq, id, subject, kind, time_ms, body FROM events
             WHERE seq > ?1 AND time_ms >= ?2
               AND (json_array_length(?3) = 0 OR kind IN (SELECT value FROM json_each(?3)))
             ORDER BY seq LIMIT ?4",
        )?;
        let rows = stmt.query_map(
            params![q.after_seq, q.since_ms.unwrap_or(i64::MIN), kinds, q.limit],
            read_event,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn delivery_states(&self, seqs: &[i64]) -> Result<Vec<DeliveryState>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT seq, sink, state, attempts, error FROM deliveries WHERE seq = ?1 ORDER BY sink",
        )?;
        let mut out = Vec::new();
        for seq in seqs {
            let rows = stmt.query_map(params![seq], |r| {
                Ok(DeliveryState {
                    seq: r.get(0)?,
                    sink: r.get(1)?,
                    state: r.get(2)?,
                    attempts: r.get(3)?,
                    error: r.get(4)?,
                })
            })?;
            for row in rows {
                out.push(row?);
            }
        }
        Ok(out)
    }

    fn due(&self, sink: &str, now_ms: i64, limit: u32) -> Result<Vec<Pending>, StoreError> {
        let conn = self.conn()?;
        let sql = format!(
            "SELECT e.seq, e.id, e.subject, e.kind, e.time_ms, e.body, d.attempts
             FROM deliveries d JOIN events e ON e.seq = d.seq
             WHERE {} ORDER BY d.seq LIMIT $3",
            DUE_WHERE
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![sink, now_ms, limit], |r| {
            Ok(Pending {
                event: read_event(r)?,
                attempts: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn next_due_ms(&self, sink: &str) -> Result<Option<i64>, StoreError> {
        let conn = self.conn()?;
        Ok(conn
            .prepare_cached(NEXT_DUE_SQL)?
            .query_row(params![sink], |r| r.get(0))?)
    }

    fn settle(&self, sink: &str, results: &[(i64, Settle)]) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for (seq, s) in results {
            let (state, next, error, settled) = settle_columns(s);
            tx.prepare_cached(
                "UPDATE deliveries SET state = ?3, attempts = attempts + 1,
                     next_ms = COALESCE(?4, next_ms), error = ?5, settled_ms = ?6
                 WHERE sink = ?1 AND seq = ?2 AND state = 'pending'",
            )?
            .execute(params![sink, seq, state, next, error, settled])?;
        }
        if let Some(at) = healthy_again(results) {
            tx.prepare_cached(
                "UPDATE deliveries SET next_ms = ?2
                 WHERE sink = ?1 AND state = 'pending' AND next_ms > ?2",
            )?
            .execute(params![sink, at])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn cap(&self, sink: &str, max_pending: u64, now_ms: i64) -> Result<u64, StoreError> {
        let conn = self.conn()?;
        let pending: i64 = conn
            .prepare_cached(
                "SELECT COUNT(*) FROM deliveries WHERE sink = ?1 AND state = 'pending'",
            )?
            .query_row(params![sink], |r| r.get(0))?;
        let over = u64::try_from(pending)
            .unwrap_or(0)
            .saturating_sub(max_pending);
        if over == 0 {
            return Ok(0);
        }
        let n = conn
            .prepare_cached(
                "UPDATE deliveries SET state = 'dropped', settled_ms = ?3,
                     error = 'dropped: the sink''s backlog reached its cap'
                 WHERE sink = ?1 AND state = 'pending' AND seq IN (
                     SELECT seq FROM deliveries WHERE sink = ?1 AND state = 'pending'
                     ORDER BY seq LIMIT ?2)",
            )?
            .execute(params![
                sink,
                i64::try_from(over).unwrap_or(i64::MAX),
                now_ms
            ])?;
        Ok(n as u64)
    }

    fn prune_events(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = tx.execute(
            "DELETE FROM events WHERE time_ms < ?1 AND NOT EXISTS (
                 SELECT 1 FROM deliveries d WHERE d.seq = events.seq AND d.state = 'pending')",
            params![before_ms],
        )?;
        tx.execute(
            "DELETE FROM deliveries WHERE state <> 'pending'
               AND NOT EXISTS (SELECT 1 FROM events e WHERE e.seq = deliveries.seq)",
            [],
        )?;
        tx.commit()?;
        Ok(n as u64)
    }

    fn take_sink(
        &self,
        sink: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let n = conn
            .prepare_cached(
                "INSERT INTO sink_leases (sink, owner, until_ms) VALUES (?1, ?2, ?4)
                 ON CONFLICT (sink) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms
                 WHERE sink_leases.owner = excluded.owner OR sink_leases.until_ms <= ?3",
            )?
            .execute(params![sink, owner, now_ms, until_ms])?;
        Ok(n == 1)
    }

    fn last_seq(&self) -> Result<i64, StoreError> {
        let conn = self.conn()?;
        Ok(conn
            .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM events")?
            .query_row([], |r| r.get(0))?)
    }

    fn report_adoption(&self, r: &AdoptionReport) -> Result<(), StoreError> {
        let conn = self.conn()?;
        conn.prepare_cached(
            "INSERT INTO adoption (consumer, secret, version_id, reloaded, at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (consumer, secret) DO UPDATE SET version_id = excluded.version_id,
                 reloaded = excluded.reloaded, at_ms = excluded.at_ms",
        )?
        .execute(params![
            r.consumer,
            r.secret,
            r.version_id,
            r.reloaded,
            r.at_ms
        ])?;
        Ok(())
    }

    fn adoption(&self, secret: &str) -> Result<Vec<AdoptionReport>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT consumer, secret, version_id, reloaded, at_ms FROM adoption
             WHERE secret = ?1 ORDER BY consumer",
        )?;
        let rows = stmt.query_map(params![secret], |r| {
            Ok(AdoptionReport {
                consumer: r.get(0)?,
                secret: r.get(1)?,
                version_id: r.get(2)?,
                reloaded: r.get(3)?,
                at_ms: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn sinks(&self) -> Result<Vec<SinkCounts>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(SINKS_SQL)?;
        let rows = stmt.query_map([], |r| {
            let count = |i: usize| -> rusqlite::Result<u64> {
                Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0))
            };
            Ok(SinkCounts {
                sink: r.get(0)?,
                pending: count(1)?,
                delivered: count(2)?,
                dead: count(3)?,
                dropped: count(4)?,
                oldest_pending_ms: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// The earliest due time among the oldest pending delivery of each
/// subject of a sink (later ones wait for those; both dialects).
pub(crate) const NEXT_DUE_SQL: &str = "SELECT MIN(d.next_ms) FROM deliveries d
WHERE d.sink = $1 AND d.state = 'pending'
  AND d.seq = (SELECT MIN(d2.seq) FROM deliveries d2
               WHERE d2.sink = d.sink AND d2.subject = d.subject AND d2.state = 'pending')";

/// Counts per sink and state (both dialects).
pub(crate) const SINKS_SQL: &str = "
SELECT d.sink,
       COALESCE(SUM(CASE WHEN d.state = 'pending' THEN 1 ELSE 0 END), 0),
       COALESCE(SUM(CASE WHEN d.state = 'delivered' THEN 1 ELSE 0 END), 0),
       COALESCE(SUM(CASE WHEN d.state = 'dead' THEN 1 ELSE 0 END), 0),
       COALESCE(SUM(CASE WHEN d.state = 'dropped' THEN 1 ELSE 0 END), 0),
       MIN(CASE WHEN d.state = 'pending' THEN e.time_ms END)
FROM deliveries d JOIN events e ON e.seq = d.seq
GROUP BY d.sink ORDER BY d.sink";

/// When a batch delivered something, the sink works again: its waiting
/// retries are due at once (from this time) instead of after their backoff.
pub(crate) fn healthy_again(results: &[(i64, Settle)]) -> Option<i64> {
    results.iter().find_map(|(_, s)| match s {
        Settle::Delivered { at_ms } => Some(*at_ms),
        _ => None,
    })
}

/// State, next due time, error and settle time of a result.
pub(crate) fn settle_columns(s: &Settle) -> (&'static str, Option<i64>, Option<&str>, Option<i64>) {
    match s {
        Settle::Delivered { at_ms } => ("delivered", None, None, Some(*at_ms)),
        Settle::Retry { next_ms, error } => ("pending", Some(*next_ms), Some(error), None),
        Settle::Dead { at_ms, error } => ("dead", None, Some(error), Some(*at_ms)),
    }
}

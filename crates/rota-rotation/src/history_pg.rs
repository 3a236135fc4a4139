//! The rotation history on PostgreSQL, shared by daemons on several hosts:
//! the same records as [`crate::SqliteHistory`] (steps, workflow runs, the
//! live names of `$Auto` secrets), written by one thread a batch at a time.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rota_scheduler::pg::{PgPool, migrate};

use crate::history::{
    HistoryError, HistorySink, HistoryStore, Msg, StepEvent, StepOutcome, StoredStep,
    WorkflowRunRecord, Writer, time,
};

const MIGRATIONS: &[&str] = &["
CREATE TABLE rotation_steps (
    id          BIGSERIAL PRIMARY KEY,
    secret      TEXT NOT NULL,
    token       TEXT NOT NULL,
    plugin      TEXT NOT NULL,
    step        TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    at_ms       BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    outcome     TEXT NOT NULL,
    error       TEXT
);
CREATE INDEX rotation_steps_secret ON rotation_steps (secret, id);
CREATE TABLE workflow_runs (
    id          BIGSERIAL PRIMARY KEY,
    workflow    TEXT NOT NULL,
    slot_ms     BIGINT,
    attempt     INTEGER NOT NULL,
    at_ms       BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    outcome     TEXT NOT NULL,
    summary     TEXT,
    report      TEXT,
    error       TEXT
);
CREATE INDEX workflow_runs_workflow ON workflow_runs (workflow, id);
CREATE TABLE secret_names (
    address TEXT PRIMARY KEY,
    secret  TEXT NOT NULL
);
"];

/// The history in PostgreSQL.
#[derive(Debug)]
pub struct PgHistory {
    pool: Arc<PgPool>,
    writer: Writer,
}

fn i32_of(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn i64_of(n: u128) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PgHistory {
    /// The history in `pool`'s schema, migrated to this build's layout.
    ///
    /// # Errors
    ///
    /// A connection error, or a layout written by a newer Rota.
    pub fn open(pool: Arc<PgPool>) -> Result<Self, HistoryError> {
        migrate(&pool, "history", MIGRATIONS)?;
        let schema = pool.options().schema_name().to_owned();
        let writer_pool = Arc::clone(&pool);
        let writer = Writer::spawn(move |events, runs| {
            let (events, runs) = (events.to_vec(), runs.to_vec());
            let schema = schema.clone();
            writer_pool
                .run(move |c| {
                    Box::pin(async move {
                        let tx = c.transaction().await?;
                        let step = tx
                            .prepare(&format!(
                                "INSERT INTO \"{schema}\".rotation_steps
                                 (secret, token, plugin, step, attempt, at_ms, duration_ms, outcome, error)
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                            ))
                            .await?;
                        for e in &events {
                            tx.execute(
                                &step,
                                &[
                                    &e.secret,
                                    &e.token,
                                    &e.plugin,
                                    &e.step.name(),
                                    &i32_of(e.attempt),
                                    &e.at.timestamp_millis(),
                                    &i64_of(e.duration.as_millis()),
                                    &e.outcome.as_str(),
                                    &e.error,
                                ],
                            )
                            .await?;
                        }
                        let run = tx
                            .prepare(&format!(
                                "INSERT INTO \"{schema}\".workflow_runs
                                 (workflow, slot_ms, attempt, at_ms, duration_ms, outcome, summary, report, error)
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                            ))
                            .await?;
                        for r in &runs {
                            tx.execute(
                                &run,
                                &[
                                    &r.workflow,
                                    &r.slot.map(|s| s.timestamp_millis()),
                                    &i32_of(r.attempt),
                                    &r.at.timestamp_millis(),
                                    &i64::try_from(r.duration_ms).unwrap_or(i64::MAX),
                                    &r.outcome.as_str(),
                                    &r.summary,
                                    &r.report.as_ref().map(serde_json::Value::to_string),
                                    &r.error,
                                ],
                            )
                            .await?;
                        }
                        tx.commit().await
                    })
                })
                .map_err(|e| e.to_string())
        })?;
        Ok(Self { pool, writer })
    }

    fn table(&self, name: &str) -> String {
        format!("\"{}\".{name}", self.pool.options().schema_name())
    }
}

impl HistorySink for PgHistory {
    fn record(&self, e: StepEvent) {
        self.writer.send(Msg::Event(e));
    }

    fn record_workflow(&self, run: WorkflowRunRecord) {
        self.writer.send(Msg::Workflow(run));
    }
}

fn outcome(s: &str) -> Result<StepOutcome, HistoryError> {
    StepOutcome::parse(s).ok_or_else(|| HistoryError::Decode(format!("unknown outcome {s:?}")))
}

impl HistoryStore for PgHistory {
    fn flush(&self) {
        self.writer.flush();
    }

    fn list(&self, secret: Option<&str>, limit: u32) -> Result<Vec<StoredStep>, HistoryError> {
        self.writer.flush();
        let sql = format!(
            "SELECT id, secret, token, plugin, step, attempt, at_ms, duration_ms, outcome, error
             FROM {} WHERE ($1::text IS NULL OR secret = $1) ORDER BY id DESC LIMIT $2",
            self.table("rotation_steps")
        );
        let secret = secret.map(str::to_owned);
        let rows = self.pool.run(move |c| {
            Box::pin(async move { c.query(&sql, &[&secret, &i64::from(limit)]).await })
        })?;
        let mut out = rows
            .iter()
            .map(|r| {
                let step: String = r.get(4);
                Ok(StoredStep {
                    id: r.get(0),
                    secret: r.get(1),
                    token: r.get(2),
                    plugin: r.get(3),
                    step: step.parse().map_err(|e: String| HistoryError::Decode(e))?,
                    attempt: u32::try_from(r.get::<_, i32>(5)).unwrap_or(0),
                    at: time(r.get(6)),
                    duration_ms: u64::try_from(r.get::<_, i64>(7)).unwrap_or(0),
                    outcome: outcome(r.get(8))?,
                    error: r.get(9),
                })
            })
            .collect::<Result<Vec<_>, HistoryError>>()?;
        out.reverse();
        Ok(out)
    }

    fn workflow_runs(
        &self,
        workflow: Option<&str>,
        limit: u32,
    ) -> Result<Vec<WorkflowRunRecord>, HistoryError> {
        self.writer.flush();
        let sql = format!(
            "SELECT workflow, slot_ms, attempt, at_ms, duration_ms, outcome, summary, report, error
             FROM {} WHERE ($1::text IS NULL OR workflow = $1) ORDER BY id DESC LIMIT $2",
            self.table("workflow_runs")
        );
        let workflow = workflow.map(str::to_owned);
        let rows = self.pool.run(move |c| {
            Box::pin(async move { c.query(&sql, &[&workflow, &i64::from(limit)]).await })
        })?;
        let mut out = rows
            .iter()
            .map(|r| {
                let report: Option<String> = r.get(7);
                Ok(WorkflowRunRecord {
                    workflow: r.get(0),
                    slot: r.get::<_, Option<i64>>(1).map(time),
                    attempt: u32::try_from(r.get::<_, i32>(2)).unwrap_or(0),
                    at: time(r.get(3)),
                    duration_ms: u64::try_from(r.get::<_, i64>(4)).unwrap_or(0),
                    outcome: outcome(r.get(5))?,
                    summary: r.get(6),
                    report: report.and_then(|t| serde_json::from_str(&t).ok()),
                    error: r.get(8),
                })
            })
            .collect::<Result<Vec<_>, HistoryError>>()?;
        out.reverse();
        Ok(out)
    }

    fn last_success(&self, secret: &str) -> Result<Option<DateTime<Utc>>, HistoryError> {
        self.writer.flush();
        let sql = format!(
            "SELECT MAX(at_ms) FROM {} WHERE secret = $1 AND step = 'finish' AND outcome = 'ok'",
            self.table("rotation_steps")
        );
        let secret = secret.to_owned();
        let ms: Option<i64> = self.pool.run(move |c| {
            Box::pin(async move { c.query_one(&sql, &[&secret]).await.map(|r| r.get(0)) })
        })?;
        Ok(ms.map(time))
    }

    fn remember_names(&self, names: &BTreeMap<String, String>) -> Result<(), HistoryError> {
        let sql = format!(
            "INSERT INTO {} (address, secret) VALUES ($1, $2)
             ON CONFLICT (address) DO UPDATE SET secret = excluded.secret",
            self.table("secret_names")
        );
        let names = names.clone();
        self.pool.run(move |c| {
            Box::pin(async move {
                let tx = c.transaction().await?;
                for (address, secret) in &names {
                    tx.execute(&sql, &[address, secret]).await?;
                }
                tx.commit().await
            })
        })?;
        Ok(())
    }

    fn live_names(&self) -> Result<BTreeMap<String, String>, HistoryError> {
        let sql = format!("SELECT address, secret FROM {}", self.table("secret_names"));
        let rows = self
            .pool
            .run(move |c| Box::pin(async move { c.query(&sql, &[]).await }))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

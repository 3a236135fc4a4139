//! The job store on PostgreSQL, shared by daemons on several hosts.
//!
//! The same rows and the same compare-and-set rules as [`crate::SqliteStore`]:
//! a claim or a skip applies only when the job's slot and attempt count are
//! as the runner read them and its lease is free, expired or the caller's.
//! Claims and skips take the row with `FOR UPDATE SKIP LOCKED`: a row
//! another daemon is claiming at that moment is passed over at once (the
//! runner reads it again) instead of queuing behind it. Every change to the
//! set of jobs or their schedules is announced on the `rota_jobs` channel
//! (`NOTIFY`), so the other daemons read them again without polling.
//!
//! Times are the daemons' clocks (Unix ms), as with SQLite; hosts should
//! run NTP — a skew eats into the lease time-to-live.

use std::sync::Arc;

use tokio_postgres::Row;

use crate::job::Policy;
use crate::pg::{PgError, PgPool, migrate};
use crate::store::{
    Claim, ClaimOutcome, Claimed, Finish, JobRow, JobStore, Lease, NewJob, Next, Outcome,
    Retention, RunRecord, RunState, Skip, StoreError,
};

/// The channel job changes are announced on: `rota_jobs_<schema>`, so that
/// stores in other schemas of the database do not wake each other.
pub fn jobs_channel(schema: &str) -> String {
    format!("rota_jobs_{schema}")
}

/// The scheduler's tables, one migration per layout version.
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE jobs (
    name            TEXT PRIMARY KEY,
    schedule        TEXT NOT NULL,
    tz              TEXT NOT NULL,
    payload         TEXT NOT NULL,
    policy          TEXT NOT NULL,
    paused          BOOLEAN NOT NULL DEFAULT false,
    needs_attention BOOLEAN NOT NULL DEFAULT false,
    slot            BIGINT,
    due             BIGINT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until     BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE TABLE runs (
    id         BIGSERIAL PRIMARY KEY,
    job        TEXT NOT NULL,
    slot       BIGINT NOT NULL,
    attempt    INTEGER NOT NULL,
    owner      TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at   BIGINT,
    outcome    TEXT NOT NULL,
    error      TEXT
);
CREATE INDEX runs_by_job ON runs (job, id);
CREATE INDEX runs_running ON runs (job) WHERE outcome = 'running';
CREATE INDEX runs_by_end ON runs (ended_at);
",
    crate::outbox::PG_MIGRATION,
    crate::outbox::PG_ADOPTION_MIGRATION,
];

const JOB_COLUMNS: &str = "name, schedule, tz, payload, policy, paused, needs_attention, \
                           slot, due, attempts, lease_owner, lease_until";

/// Name, schedule, zone, payload and policy of each job, as arrays.
type TextColumns = (
    Vec<String>,
    Vec<String>,
    Vec<String>,
    Vec<String>,
    Vec<String>,
);
/// Rescheduled slot and due, first slot and due, as arrays.
type SlotColumns = (
    Vec<Option<i64>>,
    Vec<Option<i64>>,
    Vec<Option<i64>>,
    Vec<Option<i64>>,
);

/// The PostgreSQL job store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: Arc<PgPool>,
}

impl PgStore {
    /// The store in `pool`'s schema, migrated to this build's layout.
    ///
    /// # Errors
    ///
    /// A connection error, or a layout written by a newer Rota.
    pub fn open(pool: Arc<PgPool>) -> Result<Self, StoreError> {
        migrate(&pool, "scheduler", MIGRATIONS)?;
        Ok(Self { pool })
    }

    /// The pool (shared with the history and the locks).
    pub fn pool(&self) -> &Arc<PgPool> {
        &self.pool
    }

    pub(crate) fn table(&self, name: &str) -> String {
        format!("\"{}\".{name}", self.pool.options().schema_name())
    }

    fn channel(&self) -> String {
        jobs_channel(self.pool.options().schema_name())
    }
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn to_u32(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

fn read_job(r: &Row) -> Result<JobRow, StoreError> {
    let name: String = r.get(0);
    let policy_text: String = r.get(4);
    let policy: Policy =
        serde_json::from_str(&policy_text).map_err(|source| StoreError::Policy {
            job: name.clone(),
            source,
        })?;
    let owner: Option<String> = r.get(10);
    let until: Option<i64> = r.get(11);
    Ok(JobRow {
        name,
        schedule: r.get(1),
        tz: r.get(2),
        payload: r.get(3),
        policy,
        state: if r.get::<_, bool>(5) {
            RunState::Paused
        } else {
            RunState::Active
        },
        needs_attention: r.get(6),
        slot_ms: r.get(7),
        due_ms: r.get(8),
        attempts: to_u32(r.get(9)),
        lease: owner.map(|owner| Lease {
            owner,
            until_ms: until.unwrap_or(0),
        }),
    })
}

fn encode_policy(policy: &Policy) -> String {
    // A plain struct of integers, booleans and enums cannot fail.
    serde_json::to_string(policy).unwrap_or_default()
}

pub(crate) fn query_err(e: PgError) -> StoreError {
    StoreError::Pg(e)
}

impl JobStore for PgStore {
    fn upsert(&self, jobs: &[NewJob], now_ms: i64) -> Result<Vec<JobRow>, StoreError> {
        let jobs_t = self.table("jobs");
        let mut cols: TextColumns = Default::default();
        let mut slots: SlotColumns = Default::default();
        for j in jobs {
            cols.0.push(j.name.clone());
            cols.1.push(j.schedule.clone());
            cols.2.push(j.tz.clone());
            cols.3.push(j.payload.clone());
            cols.4.push(encode_policy(&j.policy));
            let (first_slot, first_due) = if j.start_now {
                (Some(now_ms), Some(now_ms))
            } else {
                (j.slot_ms, j.due_ms)
            };
            slots.0.push(j.slot_ms);
            slots.1.push(j.due_ms);
            slots.2.push(first_slot);
            slots.3.push(first_due);
        }
        let update = format!(
            "UPDATE {jobs_t} AS j SET
                payload = u.p, policy = u.pol, updated_at = $10,
                slot = CASE WHEN j.schedule = u.s AND j.tz = u.z THEN j.slot ELSE u.rs END,
                due = CASE WHEN j.schedule = u.s AND j.tz = u.z THEN j.due ELSE u.rd END,
                attempts = CASE WHEN j.schedule = u.s AND j.tz = u.z THEN j.attempts ELSE 0 END,
                schedule = u.s, tz = u.z
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
                  AS u(n, s, z, p, pol, rs, rd, fs, fd)
             WHERE j.name = u.n"
        );
        let insert = format!(
            "INSERT INTO {jobs_t} (name, schedule, tz, payload, policy, slot, due, created_at, updated_at)
             SELECT n, s, z, p, pol, fs, fd, $10, $10
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
                  AS u(n, s, z, p, pol, rs, rd, fs, fd)
             ON CONFLICT (name) DO NOTHING"
        );
        let select = format!("SELECT {JOB_COLUMNS} FROM {jobs_t} WHERE name = ANY($1)");
        // Daemons registering the same jobs at once may deadlock on their
        // rows; PostgreSQL aborts one, which tries again.
        let mut attempt = 0;
        let rows = loop {
            let (cols, slots) = (cols.clone(), slots.clone());
            let (update, insert, select) = (update.clone(), insert.clone(), select.clone());
            let channel = self.channel();
            let result = self.pool.run(move |c| {
                Box::pin(async move {
                    let tx = c.transaction().await?;
                    let args: [&(dyn tokio_postgres::types::ToSql + Sync); 10] = [
                        &cols.0, &cols.1, &cols.2, &cols.3, &cols.4, &slots.0, &slots.1, &slots.2,
                        &slots.3, &now_ms,
                    ];
                    tx.execute(&update, &args).await?;
                    tx.execute(&insert, &args).await?;
                    let rows = tx.query(&select, &[&cols.0]).await?;
                    tx.execute("SELECT pg_notify($1, '')", &[&channel]).await?;
                    tx.commit().await?;
                    Ok(rows)
                })
            });
            match result {
                Err(PgError::Conflict(_)) if attempt < 5 => attempt += 1,
                other => break other.map_err(query_err)?,
            }
        };
        let mut by_name: std::collections::HashMap<String, JobRow> =
            std::collections::HashMap::new();
        for r in &rows {
            let row = read_job(r)?;
            by_name.insert(row.name.clone(), row);
        }
        // In the order given, with the policy just written.
        Ok(jobs
            .iter()
            .filter_map(|j| {
                by_name.remove(&j.name).map(|mut row| {
                    row.policy = j.policy.clone();
                    row
                })
            })
            .collect())
    }

    fn jobs(&self) -> Result<Vec<JobRow>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM {} ORDER BY name",
            self.table("jobs")
        );
        let rows = self
            .pool
            .run(move |c| Box::pin(async move { c.query(&sql, &[]).await }))
            .map_err(query_err)?;
        rows.iter().map(read_job).collect()
    }

    fn job(&self, name: &str) -> Result<Option<JobRow>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM {} WHERE name = $1",
            self.table("jobs")
        );
        let name = name.to_owned();
        let row = self
            .pool
            .run(move |c| Box::pin(async move { c.query_opt(&sql, &[&name]).await }))
            .map_err(query_err)?;
        row.as_ref().map(read_job).transpose()
    }

    fn claim(
        &self,
        claims: &[Claim],
        owner: &str,
        now_ms: i64,
    ) -> Result<Vec<ClaimOutcome>, StoreError> {
        let (jobs_t, runs_t) = (self.table("jobs"), self.table("runs"));
        let take = format!(
            "WITH target AS (
                 SELECT name FROM {jobs_t}
                 WHERE name = $1 AND slot = $2 AND attempts = $3 AND NOT paused
                   AND (lease_owner IS NULL OR lease_until <= $7 OR lease_owner = $5)
                 FOR UPDATE SKIP LOCKED)
             UPDATE {jobs_t} AS j SET attempts = j.attempts + 1, slot = $4, lease_owner = $5,
                 lease_until = $6, updated_at = $7
             FROM target WHERE j.name = target.name
             RETURNING j.attempts, j.payload"
        );
        let interrupt = format!(
            "UPDATE {runs_t} SET outcome = 'interrupted', ended_at = $2,
                 error = 'runner stopped before the run ended'
             WHERE job = $1 AND outcome = 'running'"
        );
        let open = format!(
            "INSERT INTO {runs_t} (job, slot, attempt, owner, started_at, outcome)
             VALUES ($1, $2, $3, $4, $5, 'running') RETURNING id"
        );
        let current = format!("SELECT {JOB_COLUMNS} FROM {jobs_t} WHERE name = $1");
        let claims = claims.to_vec();
        let owner = owner.to_owned();
        let results = self
            .pool
            .run(move |c| {
                Box::pin(async move {
                    let tx = c.transaction().await?;
                    let (take, interrupt, open, current) = (
                        tx.prepare(&take).await?,
                        tx.prepare(&interrupt).await?,
                        tx.prepare(&open).await?,
                        tx.prepare(&current).await?,
                    );
                    let mut out: Vec<Result<(i64, i32, String), Option<Row>>> =
                        Vec::with_capacity(claims.len());
                    for cl in &claims {
                        let won = tx
                            .query_opt(
                                &take,
                                &[
                                    &cl.name,
                                    &cl.slot_ms,
                                    &to_i32(cl.attempts),
                                    &cl.run_slot_ms,
                                    &owner,
                                    &cl.lease_until_ms,
                                    &now_ms,
                                ],
                            )
                            .await?;
                        match won {
                            Some(r) => {
                                let attempt: i32 = r.get(0);
                                let payload: String = r.get(1);
                                tx.execute(&interrupt, &[&cl.name, &now_ms]).await?;
                                let id: i64 = tx
                                    .query_one(
                                        &open,
                                        &[&cl.name, &cl.run_slot_ms, &attempt, &owner, &now_ms],
                                    )
                                    .await?
                                    .get(0);
                                out.push(Ok((id, attempt, payload)));
                            }
                            None => out.push(Err(tx.query_opt(&current, &[&cl.name]).await?)),
                        }
                    }
                    tx.commit().await?;
                    Ok(out)
                })
            })
            .map_err(query_err)?;
        results
            .into_iter()
            .map(|r| match r {
                Ok((run_id, attempt, payload)) => Ok(ClaimOutcome::Claimed(Claimed {
                    run_id,
                    attempt: to_u32(attempt),
                    payload,
                })),
                Err(row) => Ok(ClaimOutcome::Lost(
                    row.as_ref().map(read_job).transpose()?.map(Box::new),
                )),
            })
            .collect()
    }

    fn finish(&self, finishes: &[Finish]) -> Result<Vec<bool>, StoreError> {
        let (jobs_t, runs_t) = (self.table("jobs"), self.table("runs"));
        let close = format!(
            "UPDATE {runs_t} SET ended_at = $2, outcome = $3, error = $4
             WHERE id = $1 AND outcome = 'running'"
        );
        let release = format!(
            "UPDATE {jobs_t} SET slot = $3, due = $4, attempts = $5, needs_attention = $6,
                 lease_owner = NULL, lease_until = NULL, updated_at = $7
             WHERE name = $1 AND lease_owner = $2"
        );
        let (insert_event, insert_delivery) = crate::outbox_pg::insert_sql(self);
        let finishes = finishes.to_vec();
        self.pool
            .run(move |c| {
                Box::pin(async move {
                    let tx = c.transaction().await?;
                    let (close, release) = (tx.prepare(&close).await?, tx.prepare(&release).await?);
                    let (insert_event, insert_delivery) = (
                        tx.prepare(&insert_event).await?,
                        tx.prepare(&insert_delivery).await?,
                    );
                    let mut out = Vec::with_capacity(finishes.len());
                    for f in &finishes {
                        tx.execute(
                            &close,
                            &[&f.run_id, &f.ended_ms, &f.outcome.as_str(), &f.error],
                        )
                        .await?;
                        let n = tx
                            .execute(
                                &release,
                                &[
                                    &f.name,
                                    &f.owner,
                                    &f.next.slot_ms,
                                    &f.next.due_ms,
                                    &to_i32(f.next.attempts),
                                    &f.next.needs_attention,
                                    &f.ended_ms,
                                ],
                            )
                            .await?;
                        crate::outbox_pg::insert(&tx, &insert_event, &insert_delivery, &f.events)
                            .await?;
                        out.push(n == 1);
                    }
                    tx.commit().await?;
                    Ok(out)
                })
            })
            .map_err(query_err)
    }

    fn skip(&self, skips: &[Skip], owner: &str, now_ms: i64) -> Result<Vec<bool>, StoreError> {
        let (jobs_t, runs_t) = (self.table("jobs"), self.table("runs"));
        let take = format!(
            "WITH target AS (
                 SELECT name FROM {jobs_t}
                 WHERE name = $1 AND slot = $2 AND attempts = $3 AND NOT paused
                   AND (lease_owner IS NULL OR lease_until <= $8 OR lease_owner = $9)
                 FOR UPDATE SKIP LOCKED)
             UPDATE {jobs_t} AS j SET slot = $4, due = $5, attempts = $6, needs_attention = $7,
                 updated_at = $8
             FROM target WHERE j.name = target.name"
        );
        let record = format!(
            "INSERT INTO {runs_t} (job, slot, attempt, owner, started_at, ended_at, outcome, error)
             VALUES ($1, $2, 0, $3, $4, $4, 'missed', $5)"
        );
        let skips = skips.to_vec();
        let owner = owner.to_owned();
        self.pool
            .run(move |c| {
                Box::pin(async move {
                    let tx = c.transaction().await?;
                    let (take, record) = (tx.prepare(&take).await?, tx.prepare(&record).await?);
                    let mut out = Vec::with_capacity(skips.len());
                    for s in &skips {
                        let n = tx
                            .execute(
                                &take,
                                &[
                                    &s.name,
                                    &s.slot_ms,
                                    &to_i32(s.attempts),
                                    &s.next.slot_ms,
                                    &s.next.due_ms,
                                    &to_i32(s.next.attempts),
                                    &s.next.needs_attention,
                                    &now_ms,
                                    &owner,
                                ],
                            )
                            .await?;
                        if n == 1 {
                            tx.execute(
                                &record,
                                &[&s.name, &s.missed_slot_ms, &owner, &now_ms, &s.reason],
                            )
                            .await?;
                        }
                        out.push(n == 1);
                    }
                    tx.commit().await?;
                    Ok(out)
                })
            })
            .map_err(query_err)
    }

    fn set_state(
        &self,
        name: &str,
        state: RunState,
        next: Option<Next>,
    ) -> Result<bool, StoreError> {
        let jobs_t = self.table("jobs");
        let name = name.to_owned();
        let paused = state == RunState::Paused;
        let channel = self.channel();
        self.pool
            .run(move |c| {
                Box::pin(async move {
                    let n = match next {
                        Some(next) => {
                            c.execute(
                                &format!(
                                    "UPDATE {jobs_t} SET paused = $2, slot = $3, due = $4, attempts = $5 WHERE name = $1"
                                ),
                                &[&name, &paused, &next.slot_ms, &next.due_ms, &to_i32(next.attempts)],
                            )
                            .await?
                        }
                        None => {
                            c.execute(&format!("UPDATE {jobs_t} SET paused = $2 WHERE name = $1"), &[&name, &paused])
                                .await?
                        }
                    };
                    c.execute("SELECT pg_notify($1, $2)", &[&channel, &name]).await?;
                    Ok(n == 1)
                })
            })
            .map_err(query_err)
    }

    fn reset(&self, name: &str) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE {} SET needs_attention = false, attempts = 0 WHERE name = $1",
            self.table("jobs")
        );
        let name = name.to_owned();
        let channel = self.channel();
        self.pool
            .run(move |c| {
                Box::pin(async move {
                    let n = c.execute(&sql, &[&name]).await?;
                    c.execute("SELECT pg_notify($1, $2)", &[&channel, &name])
                        .await?;
                    Ok(n == 1)
                })
            })
            .map_err(query_err)
    }

    fn remove(&self, name: &str) -> Result<bool, StoreError> {
        let sql = format!("DELETE FROM {} WHERE name = $1", self.table("jobs"));
        let name = name.to_owned();
        let channel = self.channel();
        self.pool
            .run(move |c| {
                Box::pin(async move {
                    let n = c.execute(&sql, &[&name]).await?;
                    c.execute("SELECT pg_notify($1, $2)", &[&channel, &name])
                        .await?;
                    Ok(n == 1)
                })
            })
            .map_err(query_err)
    }

    fn runs(&self, name: &str, limit: u32) -> Result<Vec<RunRecord>, StoreError> {
        let sql = format!(
            "SELECT id, job, slot, attempt, owner, started_at, ended_at, outcome, error
             FROM {} WHERE job = $1 ORDER BY id DESC LIMIT $2",
            self.table("runs")
        );
        let name = name.to_owned();
        let rows = self
            .pool
            .run(move |c| Box::pin(async move { c.query(&sql, &[&name, &i64::from(limit)]).await }))
            .map_err(query_err)?;
        Ok(rows
            .iter()
            .map(|r| RunRecord {
                id: r.get(0),
                job: r.get(1),
                slot_ms: r.get(2),
                attempt: to_u32(r.get(3)),
                owner: r.get(4),
                started_ms: r.get(5),
                ended_ms: r.get(6),
                outcome: Outcome::parse(r.get(7)),
                error: r.get(8),
            })
            .collect())
    }

    fn prune(&self, retention: Retention, now_ms: i64) -> Result<u64, StoreError> {
        let runs_t = self.table("runs");
        self.pool
            .run(move |c| {
                Box::pin(async move {
                    let tx = c.transaction().await?;
                    let mut dropped = 0;
                    if let Some(age) = retention.max_age {
                        let cutoff = now_ms - i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
                        dropped += tx
                            .execute(
                                &format!("DELETE FROM {runs_t} WHERE ended_at IS NOT NULL AND ended_at < $1"),
                                &[&cutoff],
                            )
                            .await?;
                    }
                    if let Some(keep) = retention.max_runs_per_job {
                        dropped += tx
                            .execute(
                                &format!(
                                    "DELETE FROM {runs_t} WHERE outcome != 'running' AND id IN (
                                         SELECT id FROM (
                                             SELECT id, ROW_NUMBER() OVER (PARTITION BY job ORDER BY id DESC) AS n
                                             FROM {runs_t}
                                         ) AS numbered WHERE n > $1
                                     )"
                                ),
                                &[&i64::from(keep)],
                            )
                            .await?;
                    }
                    tx.commit().await?;
                    Ok(dropped)
                })
            })
            .map_err(query_err)
    }

    fn renew(&self, names: &[String], owner: &str, until_ms: i64) -> Result<Vec<bool>, StoreError> {
        let sql = format!(
            "UPDATE {} SET lease_until = $3 WHERE name = ANY($1) AND lease_owner = $2 RETURNING name",
            self.table("jobs")
        );
        let list = names.to_vec();
        let owner = owner.to_owned();
        let renewed = self
            .pool
            .run(move |c| {
                Box::pin(async move {
                    let rows = c.query(&sql, &[&list, &owner, &until_ms]).await?;
                    Ok(rows
                        .iter()
                        .map(|r| r.get::<_, String>(0))
                        .collect::<std::collections::HashSet<_>>())
                })
            })
            .map_err(query_err)?;
        Ok(names.iter().map(|n| renewed.contains(n)).collect())
    }

    fn describe(&self) -> String {
        format!(
            "the PostgreSQL store {} (schema {})",
            self.pool.options().display(),
            self.pool.options().schema_name()
        )
    }

    fn is_up(&self) -> bool {
        self.pool.is_up()
    }

    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<Option<String>>> {
        Some(self.pool.listen(&format!("\"{}\"", self.channel())))
    }
}

//! The outbox on PostgreSQL: the same rows and rules as on SQLite (see
//! [`crate::outbox`]), shared by the daemons of one store.

use tokio_postgres::{Row, Statement, Transaction};

use crate::outbox::{
    AdoptionReport, DUE_WHERE, DeliveryState, EventQuery, NEXT_DUE_SQL, NewEvent, Outbox, Pending,
    SINKS_SQL, Settle, SinkCounts, StoredEvent, healthy_again, settle_columns,
};
use crate::store::StoreError;
use crate::store_pg::{PgStore, query_err};

/// The two insert statements of [`insert`], for `store`'s schema.
pub(crate) fn insert_sql(store: &PgStore) -> (String, String) {
    (
        format!(
            "INSERT INTO {} (id, subject, kind, time_ms, body) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO NOTHING RETURNING seq",
            store.table("events")
        ),
        format!(
            "INSERT INTO {} (sink, seq, subject, state, next_ms)
             VALUES ($1, $2, $3, 'pending', $4) ON CONFLICT DO NOTHING",
            store.table("deliveries")
        ),
    )
}

/// Writes `events` in `tx`. Returns how many were new.
pub(crate) async fn insert(
    tx: &Transaction<'_>,
    event: &Statement,
    delivery: &Statement,
    events: &[NewEvent],
) -> Result<usize, tokio_postgres::Error> {
    let mut new = 0;
    for e in events {
        let row = tx
            .query_opt(event, &[&e.id, &e.subject, &e.kind, &e.time_ms, &e.body])
            .await?;
        let Some(row) = row else { continue };
        let seq: i64 = row.get(0);
        new += 1;
        for sink in &e.sinks {
            tx.execute(delivery, &[sink, &seq, &e.subject, &e.time_ms])
                .await?;
        }
    }
    Ok(new)
}

/// Seq, state, next due time, error and settle time of one result.
type SettleRow = (i64, &'static str, Option<i64>, Option<String>, Option<i64>);

fn read_event(r: &Row) -> StoredEvent {
    StoredEvent {
        seq: r.get(0),
        id: r.get(1),
        subject: r.get(2),
        kind: r.get(3),
        time_ms: r.get(4),
        body: r.get(5),
    }
}

fn count(r: &Row, i: usize) -> u64 {
    u64::try_from(r.get::<_, i64>(i)).unwrap_or(0)
}

/// Replaces the unqualified table names of a shared statement with
/// `store`'s schema-qualified ones.
fn qualify(store: &PgStore, sql: &str) -> String {
    sql.replace(
        "deliveries d2",
        &format!("{} d2", store.table("deliveries")),
    )
    .replace(
        "deliveries d ",
        &format!("{} d ", store.table("deliveries")),
    )
    .replace(
        "deliveries d\n",
        &format!("{} d\n", store.table("deliveries")),
    )
    .replace(
        "JOIN events e",
        &format!("JOIN {} e", store.table("events")),
    )
}

impl Outbox for PgStore {
    fn append(&self, events: &[NewEvent]) -> Result<usize, StoreError> {
        let (ins_e, ins_d) = insert_sql(self);
        let events = events.to_vec();
        self.pool()
            .run(move |c| {
                Box::pin(async move {
                    let tx = c.transaction().await?;
                    let (e, d) = (tx.prepare(&ins_e).await?, tx.prepare(&ins_d).await?);
                    let n = insert(&tx, &e, &d, &events).await?;
                    tx.commit().await?;
                    Ok(n)
                })
            })
            .map_err(query_err)
    }

    fn events(&self, q: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = format!(
            "SELECT seq, id, subject, kind, time_ms, body FROM {}
             WHERE seq > $1 AND time_ms >= $2 AND (cardinality($3::text[]) = 0 OR kind = ANY($3))
             ORDER BY seq LIMIT $4",
            self.table("events")
        );
        let (after, since, kinds, limit) = (
            q.after_seq,
            q.since_ms.unwrap_or(i64::MIN),
            q.kinds.clone(),
            i64::from(q.limit),
        );
        let rows = self
            .pool()
            .run(move |c| {
                Box::pin(async move { c.query(&sql, &[&after, &since, &kinds, &limit]).await })
            })
            .map_err(query_err)?;
        Ok(rows.iter().map(read_event).collect())
    }

    fn delivery_states(&self, seqs: &[i64]) -> Result<Vec<DeliveryState>, StoreError> {
        let sql = format!(
            "SELECT seq, sink, state, attempts, error FROM {} WHERE seq = ANY($1) ORDER BY seq, sink",
            self.table("deliveries")
        );
        let seqs = seqs.to_vec();
        let rows = self
            .pool()
            .run(move |c| Box::pin(async move { c.query(&sql, &[&seqs]).await }))
            .map_err(query_err)?;
        Ok(rows
            .iter()
            .map(|r| DeliveryState {
                seq: r.get(0),
                sink: r.get(1),
                state: r.get(2),
                attempts: u32::try_from(r.get::<_, i32>(3)).unwrap_or(0),
                error: r.get(4),
            })
            .collect())
    }

    fn due(&self, sink: &str, now_ms: i64, limit: u32) -> Result<Vec<Pending>, StoreError> {
        let sql = qualify(
            self,
            &format!(
                "SELECT e.seq, e.id, e.subject, e.kind, e.time_ms, e.body, d.attempts
                 FROM deliveries d JOIN events e ON e.seq = d.seq
                 WHERE {DUE_WHERE} ORDER BY d.seq LIMIT $3"
            ),
        );
        let (sink, limit) = (sink.to_owned(), i64::from(limit));
        let rows = self
            .pool()
            .run(move |c| Box::pin(async move { c.query(&sql, &[&sink, &now_ms, &limit]).await }))
            .map_err(query_err)?;
        Ok(rows
            .iter()
            .map(|r| Pending {
                event: read_event(r),
                attempts: u32::try_from(r.get::<_, i32>(6)).unwrap_or(0),
            })
            .collect())
    }

    fn next_due_ms(&self, sink: &str) -> Result<Option<i64>, StoreError> {
        let sql = qualify(self, NEXT_DUE_SQL);
        let sink = sink.to_owned();
        let row = self
            .pool()
            .run(move |c| Box::pin(async move { c.query_one(&sql, &[&sink]).await }))
            .map_err(query_err)?;
        Ok(row.get(0))
    }

    fn settle(&self, sink: &str, results: &[(i64, Settle)]) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE {} SET state = $3, attempts = attempts + 1,
                 next_ms = COALESCE($4, next_ms), error = $5, settled_ms = $6
             WHERE sink = $1 AND seq = $2 AND state = 'pending'",
            self.table("deliveries")
        );
        let rows: Vec<SettleRow> = results
            .iter()
            .map(|(seq, s)| {
                let (state, next, error, settled) = settle_columns(s);
                (*seq, state, next, error.map(str::to_owned), settled)
            })
            .collect();
        let sink = sink.to_owned();
        let healthy = healthy_again(results);
        let reset = format!(
            "UPDATE {} SET next_ms = $2 WHERE sink = $1 AND state = 'pending' AND next_ms > $2",
            self.table("deliveries")
        );
        self.pool()
            .run(move |c| {
                Box::pin(async move {
                    let tx = c.transaction().await?;
                    let stmt = tx.prepare(&sql).await?;
                    for (seq, state, next, error, settled) in &rows {
                        tx.execute(&stmt, &[&sink, seq, state, next, error, settled])
                            .await?;
                    }
                    if let Some(at) = healthy {
                        tx.execute(&reset, &[&sink, &at]).await?;
                    }
                    tx.commit().await
                })
            })
            .map_err(query_err)
    }

    fn cap(&self, sink: &str, max_pending: u64, now_ms: i64) -> Result<u64, StoreError> {
        let t = self.table("deliveries");
        let count_sql = format!("SELECT COUNT(*) FROM {t} WHERE sink = $1 AND state = 'pending'");
        let drop_sql = format!(
            "UPDATE {t} SET state = 'dropped', settled_ms = $3,
                 error = 'dropped: the sink''s backlog reached its cap'
             WHERE sink = $1 AND state = 'pending' AND seq IN (
                 SELECT seq FROM {t} WHERE sink = $1 AND state = 'pending' ORDER BY seq LIMIT $2)"
        );
        let sink = sink.to_owned();
        let max = i64::try_from(max_pending).unwrap_or(i64::MAX);
        self.pool()
            .run(move |c| {
                Box::pin(async move {
                    let pending: i64 = c.query_one(&count_sql, &[&sink]).await?.get(0);
                    let over = pending.saturating_sub(max);
                    if over <= 0 {
                        return Ok(0);
                    }
                    c.execute(&drop_sql, &[&sink, &over, &now_ms]).await
                })
            })
            .map_err(query_err)
    }

    fn prune_events(&self, before_ms: i64) -> Result<u64, StoreError> {
        let (e, d) = (self.table("events"), self.table("deliveries"));
        let sql = format!(
            "WITH gone AS (
                 DELETE FROM {e} WHERE time_ms < $1 AND NOT EXISTS (
                     SELECT 1 FROM {d} x WHERE x.seq = {e}.seq AND x.state = 'pending')
                 RETURNING seq),
             settled AS (DELETE FROM {d} WHERE seq IN (SELECT seq FROM gone))
             SELECT COUNT(*) FROM gone"
        );
        self.pool()
            .run(move |c| {
                Box::pin(async move {
                    let n: i64 = c.query_one(&sql, &[&before_ms]).await?.get(0);
                    Ok(u64::try_from(n).unwrap_or(0))
                })
            })
            .map_err(query_err)
    }

    fn take_sink(
        &self,
        sink: &str,
        owner: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let t = self.table("sink_leases");
        let sql = format!(
            "INSERT INTO {t} AS l (sink, owner, until_ms) VALUES ($1, $2, $4)
             ON CONFLICT (sink) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms
             WHERE l.owner = excluded.owner OR l.until_ms <= $3"
        );
        let (sink, owner) = (sink.to_owned(), owner.to_owned());
        let n = self
            .pool()
            .run(move |c| {
                Box::pin(async move { c.execute(&sql, &[&sink, &owner, &now_ms, &until_ms]).await })
            })
            .map_err(query_err)?;
        Ok(n == 1)
    }

    fn last_seq(&self) -> Result<i64, StoreError> {
        let sql = format!("SELECT COALESCE(MAX(seq), 0) FROM {}", self.table("events"));
        let row = self
            .pool()
            .run(move |c| Box::pin(async move { c.query_one(&sql, &[]).await }))
            .map_err(query_err)?;
        Ok(row.get(0))
    }

    fn report_adoption(&self, r: &AdoptionReport) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO {} (consumer, secret, version_id, reloaded, at_ms)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (consumer, secret) DO UPDATE SET version_id = excluded.version_id,
                 reloaded = excluded.reloaded, at_ms = excluded.at_ms",
            self.table("adoption")
        );
        let r = r.clone();
        self.pool()
            .run(move |c| {
                Box::pin(async move {
                    c.execute(
                        &sql,
                        &[&r.consumer, &r.secret, &r.version_id, &r.reloaded, &r.at_ms],
                    )
                    .await
                    .map(|_| ())
                })
            })
            .map_err(query_err)
    }

    fn adoption(&self, secret: &str) -> Result<Vec<AdoptionReport>, StoreError> {
        let sql = format!(
            "SELECT consumer, secret, version_id, reloaded, at_ms FROM {}
             WHERE secret = $1 ORDER BY consumer",
            self.table("adoption")
        );
        let secret = secret.to_owned();
        let rows = self
            .pool()
            .run(move |c| Box::pin(async move { c.query(&sql, &[&secret]).await }))
            .map_err(query_err)?;
        Ok(rows
            .iter()
            .map(|r| AdoptionReport {
                consumer: r.get(0),
                secret: r.get(1),
                version_id: r.get(2),
                reloaded: r.get(3),
                at_ms: r.get(4),
            })
            .collect())
    }

    fn sinks(&self) -> Result<Vec<SinkCounts>, StoreError> {
        let sql = qualify(self, SINKS_SQL);
        let rows = self
            .pool()
            .run(move |c| Box::pin(async move { c.query(&sql, &[]).await }))
            .map_err(query_err)?;
        Ok(rows
            .iter()
            .map(|r| SinkCounts {
                sink: r.get(0),
                pending: count(r, 1),
                delivered: count(r, 2),
                dead: count(r, 3),
                dropped: count(r, 4),
                oldest_pending_ms: r.get(5),
            })
            .collect())
    }
}

//! The store's compare-and-set rules, directly: one suite, run against
//! both backends — the SQLite file (two handles on one file, as two
//! processes) and PostgreSQL (two pools on one schema of its own, as two
//! hosts, on the machine's server).

use std::sync::Arc;

use rota_scheduler::outbox::{AdoptionReport, EventQuery, NewEvent, Outbox, Settle};
use rota_scheduler::pg::{PgOptions, PgPool};
use rota_scheduler::store::{Claim, ClaimOutcome, Finish, NewJob, Next, Skip};
use rota_scheduler::{JobStore, Outcome, PgStore, Policy, Retention, SqliteStore, StoreError};
use rota_test_support::db::{PG_URL, TestSchema};

fn job(name: &str) -> NewJob {
    NewJob {
        name: name.into(),
        schedule: "@hourly".into(),
        tz: "UTC".into(),
        payload: "{\"k\":1}".into(),
        policy: Policy::default(),
        slot_ms: Some(3_600_000),
        due_ms: Some(3_600_000),
        start_now: false,
    }
}

fn claim(name: &str, attempts: u32) -> Claim {
    Claim {
        name: name.into(),
        slot_ms: 3_600_000,
        attempts,
        run_slot_ms: 3_600_000,
        lease_until_ms: 4_000_000,
    }
}

fn next(slot: i64) -> Next {
    Next {
        slot_ms: Some(slot),
        due_ms: Some(slot),
        attempts: 0,
        needs_attention: false,
    }
}

/// One backend: opens handles on one shared store, as separate processes
/// or hosts would.
struct Backend {
    name: &'static str,
    open: Box<dyn Fn() -> Arc<dyn JobStore>>,
    _keep: Box<dyn std::any::Any>,
}

fn pg_store(schema: &str) -> Arc<dyn JobStore> {
    let opts = PgOptions::parse(PG_URL, None).unwrap().schema(schema);
    let pool = Arc::new(PgPool::connect(opts, 4).expect("PostgreSQL on 127.0.0.1:5432"));
    Arc::new(PgStore::open(pool).unwrap())
}

fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let schema = TestSchema::new();
    let name = schema.name.clone();
    vec![
        Backend {
            name: "sqlite",
            open: Box::new(move || {
                Arc::new(SqliteStore::open(&path).unwrap()) as Arc<dyn JobStore>
            }),
            _keep: Box::new(dir),
        },
        Backend {
            name: "postgres",
            open: Box::new(move || pg_store(&name)),
            _keep: Box::new(schema),
        },
    ]
}

#[test]
fn one_slot_is_claimed_by_one_owner_until_the_lease_expires() {
    for be in backends() {
        let (a, b) = ((be.open)(), (be.open)());
        a.upsert(&[job("j")], 0).unwrap();

        let won = a.claim(&[claim("j", 0)], "a", 3_600_000).unwrap();
        let ClaimOutcome::Claimed(c) = &won[0] else {
            panic!("{}: {won:?}", be.name)
        };
        assert_eq!(
            (c.attempt, c.payload.as_str()),
            (1, "{\"k\":1}"),
            "{}",
            be.name
        );
        // The same expectation from another process loses and sees the lease.
        let lost = b.claim(&[claim("j", 0)], "b", 3_600_001).unwrap();
        let ClaimOutcome::Lost(Some(row)) = &lost[0] else {
            panic!("{}: {lost:?}", be.name)
        };
        assert_eq!(row.lease.as_ref().map(|l| l.owner.as_str()), Some("a"));
        // Even with the current attempt count, a live lease blocks.
        let lost = b.claim(&[claim("j", 1)], "b", 3_999_999).unwrap();
        assert!(matches!(lost[0], ClaimOutcome::Lost(_)), "{}", be.name);
        // After expiry "b" takes over; "a"'s late finish no longer moves the job.
        let won = b.claim(&[claim("j", 1)], "b", 4_000_000).unwrap();
        let ClaimOutcome::Claimed(cb) = &won[0] else {
            panic!("{}: {won:?}", be.name)
        };
        assert_eq!(cb.attempt, 2);
        let late = a
            .finish(&[Finish {
                name: "j".into(),
                run_id: c.run_id,
                owner: "a".into(),
                outcome: Outcome::Succeeded,
                error: None,
                ended_ms: 4_000_001,
                next: next(7_200_000),
                events: vec![],
            }])
            .unwrap();
        assert_eq!(late, [false], "{}", be.name);
        let row = b.job("j").unwrap().unwrap();
        assert_eq!(
            (row.slot_ms, row.attempts),
            (Some(3_600_000), 2),
            "{}",
            be.name
        );
        let runs = b.runs("j", 10).unwrap();
        let outcomes: Vec<_> = runs.iter().map(|r| (r.owner.as_str(), r.outcome)).collect();
        assert_eq!(
            outcomes,
            [("b", Outcome::Running), ("a", Outcome::Interrupted)],
            "{}",
            be.name
        );
    }
}

#[test]
fn reopening_keeps_everything() {
    for be in backends() {
        {
            let s = (be.open)();
            s.upsert(&[job("x"), job("y")], 0).unwrap();
            s.claim(&[claim("x", 0)], "a", 3_600_000).unwrap();
        }
        let s = (be.open)();
        let jobs = s.jobs().unwrap();
        assert_eq!(jobs.len(), 2, "{}", be.name);
        assert_eq!(jobs[0].attempts, 1);
        assert_eq!(jobs[0].policy, Policy::default());
        assert_eq!(s.runs("x", 10).unwrap().len(), 1);
    }
}

#[test]
fn an_upsert_keeps_the_pending_slot_unless_the_schedule_changed() {
    for be in backends() {
        let s = (be.open)();
        let rows = s.upsert(&[job("a"), job("b")], 0).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        s.claim(&[claim("a", 0)], "o", 3_600_000).unwrap();
        // Same schedule: slot, attempts and lease stay; the payload follows.
        let mut again = job("a");
        again.payload = "{\"k\":2}".into();
        again.slot_ms = Some(9_000_000);
        let rows = s.upsert(&[again], 10).unwrap();
        assert_eq!(
            (rows[0].slot_ms, rows[0].attempts),
            (Some(3_600_000), 1),
            "{}",
            be.name
        );
        assert_eq!(rows[0].payload, "{\"k\":2}");
        // A new schedule takes the given slot and starts its attempts over.
        let mut moved = job("b");
        moved.schedule = "@daily".into();
        moved.slot_ms = Some(86_400_000);
        moved.due_ms = Some(86_400_000);
        let rows = s.upsert(&[moved], 10).unwrap();
        assert_eq!(
            (rows[0].slot_ms, rows[0].attempts),
            (Some(86_400_000), 0),
            "{}",
            be.name
        );
        // A new job with start_now is due at once.
        let mut now = job("c");
        now.start_now = true;
        let rows = s.upsert(&[now], 55).unwrap();
        assert_eq!(
            (rows[0].slot_ms, rows[0].due_ms),
            (Some(55), Some(55)),
            "{}",
            be.name
        );
        assert!(s.remove("c").unwrap());
        assert!(!s.remove("c").unwrap());
        assert_eq!(s.jobs().unwrap().len(), 2);
    }
}

#[test]
fn skips_and_renewals_follow_the_lease_rule() {
    for be in backends() {
        let (a, b) = ((be.open)(), (be.open)());
        a.upsert(&[job("s"), job("t")], 0).unwrap();
        let skip = |owner_store: &Arc<dyn JobStore>, owner: &str, now: i64| {
            owner_store
                .skip(
                    &[Skip {
                        name: "s".into(),
                        slot_ms: 3_600_000,
                        attempts: 0,
                        missed_slot_ms: 3_600_000,
                        reason: "missed".into(),
                        next: next(7_200_000),
                    }],
                    owner,
                    now,
                )
                .unwrap()
        };
        assert_eq!(skip(&b, "b", 3_700_000), [true], "{}", be.name);
        // The expectation is stale now.
        assert_eq!(skip(&a, "a", 3_700_001), [false], "{}", be.name);
        let runs = a.runs("s", 5).unwrap();
        assert_eq!(runs[0].outcome, Outcome::Missed);
        // Renewal extends only the caller's own leases.
        a.claim(&[claim("t", 0)], "a", 3_600_000).unwrap();
        assert_eq!(
            a.renew(&["t".into(), "s".into()], "a", 5_000_000).unwrap(),
            [true, false],
            "{}",
            be.name
        );
        assert_eq!(b.renew(&["t".into()], "b", 6_000_000).unwrap(), [false]);
        let row = b.job("t").unwrap().unwrap();
        assert_eq!(
            row.lease.map(|l| l.until_ms),
            Some(5_000_000),
            "{}",
            be.name
        );
        // Until the renewed expiry, another owner cannot take it.
        let lost = b.claim(&[claim("t", 1)], "b", 4_500_000).unwrap();
        assert!(matches!(lost[0], ClaimOutcome::Lost(_)), "{}", be.name);
    }
}

#[test]
fn retention_drops_old_and_surplus_runs() {
    for be in backends() {
        let s = (be.open)();
        s.upsert(&[job("r")], 0).unwrap();
        for i in 0..5_i64 {
            s.skip(
                &[Skip {
                    name: "r".into(),
                    slot_ms: 3_600_000 + i * 3_600_000,
                    attempts: 0,
                    missed_slot_ms: 3_600_000 + i * 3_600_000,
                    reason: "x".into(),
                    next: next(3_600_000 + (i + 1) * 3_600_000),
                }],
                "o",
                i * 1000,
            )
            .unwrap();
        }
        let dropped = s
            .prune(
                Retention {
                    max_runs_per_job: Some(3),
                    max_age: None,
                },
                10_000,
            )
            .unwrap();
        assert_eq!(dropped, 2, "{}", be.name);
        let dropped = s
            .prune(
                Retention {
                    max_runs_per_job: None,
                    max_age: Some(std::time::Duration::from_millis(7_500)),
                },
                10_000,
            )
            .unwrap();
        assert_eq!(dropped, 1, "{}", be.name);
        assert_eq!(s.runs("r", 10).unwrap().len(), 2);
    }
}

#[test]
fn concurrent_claimers_share_the_jobs_without_a_double_claim() {
    for be in backends() {
        let names: Vec<String> = (0..200).map(|i| format!("job-{i:03}")).collect();
        let jobs: Vec<NewJob> = names.iter().map(|n| job(n)).collect();
        (be.open)().upsert(&jobs, 0).unwrap();
        let handles: Vec<_> = (0..3)
            .map(|w| {
                let store = (be.open)();
                let names = names.clone();
                std::thread::spawn(move || {
                    let owner = format!("w{w}");
                    let mut won = Vec::new();
                    // Each claims everything, in its own order and batches.
                    let mut order = names;
                    order.rotate_left(w * 67);
                    for chunk in order.chunks(16) {
                        let claims: Vec<Claim> = chunk.iter().map(|n| claim(n, 0)).collect();
                        for (c, out) in chunk
                            .iter()
                            .zip(store.claim(&claims, &owner, 3_600_000).unwrap())
                        {
                            if matches!(out, ClaimOutcome::Claimed(_)) {
                                won.push(c.clone());
                            }
                        }
                    }
                    won
                })
            })
            .collect();
        let mut all: Vec<String> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort();
        assert_eq!(all, names, "{}: each job claimed exactly once", be.name);
    }
}

#[test]
fn postgres_refuses_a_newer_layout_and_names_the_server_on_bad_urls() {
    let schema = TestSchema::new();
    drop(pg_store(&schema.name));
    // A newer Rota migrated the store.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = rota_test_support::db::pg().await;
        c.execute(
            &format!(
                "UPDATE \"{}\".rota_schema SET version = 99 WHERE component = 'scheduler'",
                schema.name
            ),
            &[],
        )
        .await
        .unwrap();
    });
    let opts = PgOptions::parse(PG_URL, None).unwrap().schema(&schema.name);
    let pool = Arc::new(PgPool::connect(opts, 1).unwrap());
    let Err(StoreError::Pg(e)) = PgStore::open(pool) else {
        panic!("a newer layout was accepted")
    };
    assert!(e.to_string().contains("layout version 99"), "{e}");
    assert!(e.hint().unwrap().contains("upgrade Rota"), "{e:?}");
    // Nobody listens on port 1; the database does not exist.
    let opts =
        PgOptions::parse("postgres://postgres:canary-pw-5@127.0.0.1:1/postgres", None).unwrap();
    let e = PgPool::connect(opts, 1).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot reach PostgreSQL at 127.0.0.1:1"),
        "{e}"
    );
    assert!(!format!("{e} {e:?}").contains("canary-pw-5"));
    let opts =
        PgOptions::parse("postgres://postgres@127.0.0.1:5432/rota_no_such_db", None).unwrap();
    let e = PgPool::connect(opts, 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        "PostgreSQL at 127.0.0.1:5432 has no database \"rota_no_such_db\""
    );
    assert!(e.hint().unwrap().contains("createdb rota_no_such_db"));
}

#[test]
fn postgres_announces_job_changes() {
    let schema = TestSchema::new();
    let (a, b) = (pg_store(&schema.name), pg_store(&schema.name));
    let mut changes = b.changes().expect("PostgreSQL announces changes");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // The first message says the listener is connected.
        let first = tokio::time::timeout(std::time::Duration::from_secs(30), changes.recv()).await;
        assert!(matches!(first, Ok(Ok(None))), "{first:?}");
        a.upsert(&[job("n")], 0).unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(30), changes.recv()).await;
        assert!(matches!(got, Ok(Ok(Some(_)))), "{got:?}");
        a.remove("n").unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(30), changes.recv()).await;
        assert!(matches!(&got, Ok(Ok(Some(n))) if n == "n"), "{got:?}");
    });
}

/// A backend's name, its job store and its outbox (the same store).
type NamedStore = (&'static str, Arc<dyn JobStore>, Arc<dyn Outbox>);

fn event(id: &str, subject: &str, sinks: &[&str]) -> NewEvent {
    NewEvent {
        id: id.into(),
        subject: subject.into(),
        kind: "rotation.rotated".into(),
        time_ms: 1_000,
        body: format!("{{\"id\":\"{id}\"}}"),
        sinks: sinks.iter().map(|s| (*s).to_owned()).collect(),
    }
}

#[test]
fn a_runs_events_are_stored_with_its_end_and_delivered_in_order_per_subject() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let schema = TestSchema::new();
    let sqlite = Arc::new(SqliteStore::open(&path).unwrap());
    let pg_pool = Arc::new(
        PgPool::connect(
            PgOptions::parse(PG_URL, None).unwrap().schema(&schema.name),
            4,
        )
        .unwrap(),
    );
    let pg = Arc::new(PgStore::open(pg_pool).unwrap());
    let stores: Vec<NamedStore> = vec![
        ("sqlite", sqlite.clone(), sqlite),
        ("postgres", pg.clone(), pg),
    ];
    for (name, jobs, outbox) in stores {
        jobs.upsert(&[job("j")], 0).unwrap();
        let won = jobs.claim(&[claim("j", 0)], "a", 3_600_000).unwrap();
        let ClaimOutcome::Claimed(c) = &won[0] else {
            panic!("{name}: {won:?}")
        };
        let done = jobs
            .finish(&[Finish {
                name: "j".into(),
                run_id: c.run_id,
                owner: "a".into(),
                outcome: Outcome::Succeeded,
                error: None,
                ended_ms: 3_600_001,
                next: next(7_200_000),
                events: vec![
                    event("e1", "app/a", &["ops", "pager"]),
                    event("e2", "app/b", &["ops"]),
                ],
            }])
            .unwrap();
        assert_eq!(done, [true], "{name}");
        assert_eq!(
            outbox
                .append(&[
                    event("e1", "app/a", &["ops"]),
                    event("e3", "app/a", &["ops"])
                ])
                .unwrap(),
            1,
            "{name}: a stored id is not written twice"
        );
        let due = outbox.due("ops", 1_000, 10).unwrap();
        let ids: Vec<&str> = due.iter().map(|p| p.event.id.as_str()).collect();
        assert_eq!(ids, ["e1", "e2"], "{name}: e3 waits for e1");
        outbox
            .settle(
                "ops",
                &[
                    (
                        due[0].event.seq,
                        Settle::Retry {
                            next_ms: 2_000,
                            error: "down".into(),
                        },
                    ),
                    (due[1].event.seq, Settle::Delivered { at_ms: 1_000 }),
                ],
            )
            .unwrap();
        // e2 went through: the sink works again, so e1 is retried at once.
        assert_eq!(outbox.next_due_ms("ops").unwrap(), Some(1_000), "{name}");
        let due = outbox.due("ops", 2_000, 10).unwrap();
        assert_eq!(
            (due[0].event.id.as_str(), due[0].attempts),
            ("e1", 1),
            "{name}"
        );
        outbox
            .settle(
                "ops",
                &[(due[0].event.seq, Settle::Delivered { at_ms: 2_000 })],
            )
            .unwrap();
        assert_eq!(
            outbox.due("ops", 2_000, 10).unwrap()[0].event.id,
            "e3",
            "{name}"
        );
        let counts = outbox.sinks().unwrap();
        let ops = counts.iter().find(|c| c.sink == "ops").unwrap();
        assert_eq!((ops.pending, ops.delivered), (1, 2), "{name}");
        let pager = counts.iter().find(|c| c.sink == "pager").unwrap();
        assert_eq!(pager.pending, 1, "{name}");
        assert_eq!(outbox.cap("pager", 0, 3_000).unwrap(), 1, "{name}");
        let listed = outbox
            .events(&EventQuery {
                kinds: vec!["rotation.rotated".into()],
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(listed.len(), 3, "{name}");
        let states = outbox.delivery_states(&[listed[0].seq]).unwrap();
        let states: Vec<(&str, &str)> = states
            .iter()
            .map(|d| (d.sink.as_str(), d.state.as_str()))
            .collect();
        assert_eq!(
            states,
            [("ops", "delivered"), ("pager", "dropped")],
            "{name}"
        );
        assert!(outbox.take_sink("ops", "a", 0, 10).unwrap(), "{name}");
        assert!(!outbox.take_sink("ops", "b", 5, 15).unwrap(), "{name}");
        assert!(outbox.take_sink("ops", "b", 10, 20).unwrap(), "{name}");
        // e1 and e2 are settled everywhere; e3 is pending.
        assert_eq!(outbox.prune_events(5_000).unwrap(), 2, "{name}");
        // Consumers' reports: the latest per consumer and secret.
        for (consumer, version, at) in [("web-1", "v1", 1), ("web-2", "v1", 2), ("web-1", "v2", 3)]
        {
            outbox
                .report_adoption(&AdoptionReport {
                    consumer: consumer.into(),
                    secret: "app/a".into(),
                    version_id: version.into(),
                    reloaded: true,
                    at_ms: at,
                })
                .unwrap();
        }
        let seen: Vec<(String, String, i64)> = outbox
            .adoption("app/a")
            .unwrap()
            .into_iter()
            .map(|r| (r.consumer, r.version_id, r.at_ms))
            .collect();
        assert_eq!(
            seen,
            [
                ("web-1".into(), "v2".into(), 3),
                ("web-2".into(), "v1".into(), 2)
            ],
            "{name}"
        );
    }
}

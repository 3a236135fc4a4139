//! The runner on a manual clock: firing, jitter, retries, timeouts, overlap,
//! concurrency, pause/resume, deadlines, catch-up, shutdown, lease takeover.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Duration as Span;
use rota_scheduler::store::{Claim, ClaimOutcome};
use rota_scheduler::{
    CatchUp, Event, JobRun, JobSpec, JobStore, Outcome, RetryPolicy, RunError, RunState,
};
use tokio::sync::{Semaphore, mpsc};

use crate::common::{Harness, config, utc};

fn ok_handler() -> impl Fn(JobRun) -> std::future::Ready<Result<(), RunError>> + Send + Sync {
    |_run| std::future::ready(Ok(()))
}

#[tokio::test]
async fn fires_each_slot_once_in_order_with_payload() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut h = Harness::new("2026-01-01T00:00:30Z", config("a"), move |run: JobRun| {
        let _ = tx.send((run.slot, run.attempt, run.payload.clone()));
        std::future::ready(Ok::<(), RunError>(()))
    });
    h.runner
        .register(
            JobSpec::new("rotation/db", "* * * * *")
                .payload(serde_json::json!({"secret": "db"}))
                .jitter(false),
        )
        .await
        .unwrap();
    h.runner.start().await.unwrap();
    for minute in 1..=3 {
        h.clock.advance(Span::seconds(60));
        let (name, slot, attempt, outcome, _) = h.finished().await;
        assert_eq!(
            (name.as_str(), attempt, outcome),
            ("rotation/db", 1, Outcome::Succeeded)
        );
        assert_eq!(slot, utc("2026-01-01T00:00:00Z") + Span::minutes(minute));
        let (seen_slot, _, payload) = rx.recv().await.unwrap();
        assert_eq!(seen_slot, slot);
        assert_eq!(payload, serde_json::json!({"secret": "db"}));
    }
    let history = h.runner.history("rotation/db", 10).await.unwrap();
    assert_eq!(history.len(), 3);
    assert!(
        history
            .iter()
            .all(|r| r.outcome == Outcome::Succeeded && r.ended_ms.is_some())
    );
    h.runner.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn jitter_is_deterministic_per_name_and_inside_the_window() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let h = Harness::new("2026-01-01T00:00:00Z", config("a"), move |run: JobRun| {
        let _ = tx.send((run.name.to_string(), run.slot, run.due));
        std::future::ready(Ok::<(), RunError>(()))
    });
    let window = Duration::from_secs(600);
    let names: Vec<String> = (0..20).map(|i| format!("secret-{i}")).collect();
    h.runner
        .register_many(
            names
                .iter()
                .map(|n| JobSpec::new(n, "0 3 * * *").window(window))
                .collect(),
        )
        .await
        .unwrap();
    h.runner.start().await.unwrap();
    h.clock.set(utc("2026-01-01T03:10:00Z"));
    let mut offsets = std::collections::BTreeMap::new();
    for _ in &names {
        let (name, slot, due) = rx.recv().await.unwrap();
        assert_eq!(slot, utc("2026-01-01T03:00:00Z"));
        let offset = due - slot;
        assert!(
            offset >= Span::zero() && offset < Span::seconds(600),
            "{name} {offset}"
        );
        let policy = JobSpec::new(&name, "0 3 * * *").window(window).policy;
        assert_eq!(offset.num_milliseconds(), policy.jitter_offset_ms(&name));
        offsets.insert(name, offset);
    }
    // Spread: twenty names do not collapse onto a few offsets.
    let distinct: std::collections::BTreeSet<_> = offsets.values().collect();
    assert!(distinct.len() >= 18, "{offsets:?}");
    h.runner.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn retries_with_backoff_then_needs_attention_until_a_success() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let mut h = Harness::new("2026-01-01T00:00:00Z", config("a"), move |run: JobRun| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        // The first slot (01-02) fails every attempt; the next one succeeds.
        let fail = run.slot < utc("2026-01-03T00:00:00Z");
        std::future::ready(if fail {
            Err(RunError::retryable(format!("throttled ({n})")))
        } else {
            Ok(())
        })
    });
    let retry = RetryPolicy::new(3, Duration::from_secs(10), Duration::from_secs(60));
    h.runner
        .register(JobSpec::new("j", "@daily").retry(retry.clone()))
        .await
        .unwrap();
    h.runner.start().await.unwrap();
    h.clock.set(utc("2026-01-02T00:00:00Z"));
    let (_, slot, attempt, outcome, attention) = h.finished().await;
    assert_eq!((attempt, outcome, attention), (1, Outcome::Failed, false));
    let due = h.runner.status("j").await.unwrap().due.unwrap();
    let wait = due - utc("2026-01-02T00:00:00Z");
    assert!(
        wait >= Span::seconds(5) && wait <= Span::seconds(10),
        "{wait}"
    );
    h.clock.set(due);
    let (_, slot2, attempt, outcome, attention) = h.finished().await;
    assert_eq!(
        (slot2, attempt, outcome, attention),
        (slot, 2, Outcome::Failed, false)
    );
    let due = h.runner.status("j").await.unwrap().due.unwrap();
    h.clock.set(due);
    let (_, _, attempt, outcome, attention) = h.finished().await;
    assert_eq!((attempt, outcome, attention), (3, Outcome::Failed, true));
    let status = h.runner.status("j").await.unwrap();
    assert!(status.needs_attention);
    assert_eq!(status.slot, Some(utc("2026-01-03T00:00:00Z")));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // The next slot succeeds and clears the flag.
    h.clock.set(utc("2026-01-03T00:00:00Z"));
    let (_, _, attempt, outcome, attention) = h.finished().await;
    assert_eq!(
        (attempt, outcome, attention),
        (1, Outcome::Succeeded, false)
    );
    assert!(!h.runner.status("j").await.unwrap().needs_attention);
    let history = h.runner.history("j", 10).await.unwrap();
    let errors: Vec<_> = history.iter().filter_map(|r| r.error.clone()).collect();
    assert_eq!(errors, ["throttled (2)", "throttled (1)", "throttled (0)"]);
    h.runner.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn permanent_errors_skip_retries_and_reset_clears_attention() {
    let mut h = Harness::new("2026-01-01T00:00:00Z", config("a"), |_run: JobRun| {
        std::future::ready(Err::<(), _>(RunError::permanent(
            "target rejected the credential",
        )))
    });
    h.runner
        .register(JobSpec::new("j", "@hourly"))
        .await
        .unwrap();
    h.runner.start().await.unwrap();
    h.clock.set(utc("2026-01-01T01:00:00Z"));
    let (_, _, attempt, outcome, attention) = h.finished().await;
    assert_eq!((attempt, outcome, attention), (1, Outcome::Failed, true));
    assert_eq!(h.runner.counts().needs_attention, 1);
    h.runner.reset("j").await.unwrap();
    let status = h.runner.status("j").await.unwrap();
    assert!(!status.needs_attention);
    assert_eq!(status.attempts, 0);
    assert_eq!(h.runner.counts().needs_attention, 0);
    assert!(!h.runner.is_stopping());
    h.runner.shutdown(Duration::from_secs(1)).await;
    assert!(h.runner.is_stopping());
}

#[tokio::test]
async fn timeouts_and_panics_are_failures_that_retry() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let mut h = Harness::new("2026-01-01T00:00:00Z", config("a"), move |_run: JobRun| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        async move {
            match n {
                0 => std::future::pending::<Result<(), RunError>>().await,
                1 => panic!("boom"),
                _ => Ok(()),
            }
        }
    });
    h.runner
        .register(
            JobSpec::new("j", "@hourly")
                .timeout(Duration::from_secs(30))
                .retry(RetryPolicy::new(
                    3,
                    Duration::from_secs(1),
                    Duration::from_secs(1),
                )),
        )
        .await
        .unwrap();
    h.runner.start().await.unwrap();
    h.clock.set(utc("2026-01-01T01:00:00Z"));
    h.started().await;
    h.clock.advance(Span::seconds(30));
    let (_, _, attempt, outcome, _) = h.finished().await;
    assert_eq!((attempt, outcome), (1, Outcome::Failed));
    h.clock.advance(Span::seconds(1));
    let (_, _, attempt, outcome, _) = h.finished().await;
    assert_eq!((attempt, outcome), (2, Outcome::Failed));
    h.clock.advance(Span::seconds(1));
    let (_, _, attempt, outcome, _) = h.finished().await;
    assert_eq!((attempt, outcome), (3, Outcome::Succeeded));
    let errors: Vec<_> = h
        .runner
        .history("j", 10)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| r.error)
        .collect();
    assert_eq!(errors, ["handler panicked", "timed out after 30s"]);
    h.runner.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn one_job_never_overlaps_itself_and_catches_up_once() {
    let gate = Arc::new(Semaphore::new(0));
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (g, r, p) = (Arc::clone(&gate), Arc::clone(&running), Arc::clone(&peak));
    let mut h = Harness::new("2026-01-01T00:00:00Z", config("a"), move |_run: JobRun| {
        let (g, r, p) = (Arc::clone(&g), Arc::clone(&r), Arc::clone(&p));
        async move {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            g.acquire()
                .await
                .map_err(|e| RunError::retryable(e.to_string()))?
                .forget();
            r.fetch_sub(1, Ordering::SeqCst);
            Ok(())
        }
    });
    h.runner
        .register(JobSpec::new("j", "* * * * * *").timeout(Duration::from_secs(3600)))
        .await
        .unwrap();
    h.runner.start().await.unwrap();
    h.clock.advance(Span::seconds(1));
    let (_, slot, _) = h.started().await;
    assert_eq!(slot, utc("2026-01-01T00:00:01Z"));
    // Ten minutes of every-second slots pass while the run is in flight.
    for _ in 0..600 {
        h.clock.advance(Span::seconds(1));
    }
    gate.add_permits(1);
    let (_, first, _, outcome, _) = h.finished().await;
    assert_eq!((first, outcome), (slot, Outcome::Succeeded));
    // The 599 slots passed during the run collapse into one catch-up run.
    let (_, catch_up, _) = h.started().await;
    assert_eq!(catch_up, utc("2026-01-01T00:10:01Z"));
    gate.add_permits(1);
    h.finished().await;
    assert_eq!(peak.load(Ordering::SeqCst), 1);
    let report = h.runner.shutdown(Duration::from_secs(1)).await;
    assert!(report.drained);
    let history = h.runner.history("j", 100).await.unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
}

#[tokio::test]
async fn global_concurrency_limit_holds() {
    let gate = Arc::new(Semaphore::new(0));
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (g, r, p) = (Arc::clone(&gate), Arc::clone(&running), Arc::clone(&peak));
    let mut h = Harness::new(
        "2026-01-01T00:00:00Z",
        config("a").max_concurrent(2),
        move |_run: JobRun| {
            let (g, r, p) = (Arc::clone(&g), Arc::clone(&r), Arc::clone(&p));
            async move {
                let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                g.acquire()
                    .await
                    .map_err(|e| RunError::retryable(e.to_string()))?
                    .forget();
                r.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        },
    );
    h.runner
        .register_many(
            (0..6)
                .map(|i| JobSpec::new(format!("j{i}"), "@hourly"))
                .collect(),
        )
        .await
        .unwrap();
    h.runner.start().await.unwrap();
    h.clock.set(utc("2026-01-01T01:00:00Z"));
    h.started().await;
    h.started().await;
    for _ in 0..6 {
        gate.add_permits(1);
        h.finished().await;
    }
    assert_eq!(peak.load(Ordering::SeqCst), 2);
    h.runner.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn paused_jobs_do_not_run_and_resume_from_the_next_slot() {
    let mut h = Harness::new("2026-01-01T00:00:00Z", config("a"), ok_handler());
    h.runner
        .register(JobSpec::new("p", "@hourly"))
        .await
        .unwrap();
    h.runner
        .register(JobSpec::new("q", "@hourly"))
        .await
        .unwrap();
    h.runner.start().await.unwrap();
    h.runner.pause("p").await.unwrap();
    assert_eq!(h.runner.status("p").await.unwrap().state, RunState::Paused);
    let counts = h.runner.counts();
    assert_eq!((counts.jobs, counts.paused), (2, 1), "{counts:?}");
    h.runner.remove("q").await.unwrap();
    assert_eq!(h.runner.counts().jobs, 1);
    h.runner
        .register(JobSpec::new("q", "@hourly"))
        .await
        .unwrap();
    h.clock.set(utc("2026-01-01T01:00:00Z"));
    let (name, ..) = h.finished().await;
    assert_eq!(name, "q");
    h.clock.set(utc("2026-01-01T02:30:00Z"));
    let (name, ..) = h.finished().await;
    assert_eq!(name, "q");
    h.runner.resume("p").await.unwrap();
    let status = h.runner.status("p").await.unwrap();
    assert_eq!(status.state, RunState::Active);
    assert_eq!(status.slot, Some(utc("2026-01-01T03:00:00Z")));
    assert!(h.runner.history("p", 10).await.unwrap().is_empty());
    assert!(matches!(
        h.runner.pause("nope").await,
        Err(rota_scheduler::RunnerError::UnknownJob { .. })
    ));
    h.runner.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_slot_not_started_by_its_deadline_is_recorded_as_missed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(rota_scheduler::ManualClock::new(utc(
        "2026-01-01T00:00:00Z",
    )));
    {
        let h = Harness::on(dir, Arc::clone(&clock), config("a"), ok_handler());
        h.runner
            .register(
                JobSpec::new("windowed", "0 2 * * *")
                    .window(Duration::from_secs(1800))
                    .jitter(false),
            )
            .await
            .unwrap();
        // The process stops before the slot; it comes back after the window.
        clock.set(utc("2026-01-01T02:45:00Z"));
        let mut h2 = Harness::on(h.dir, Arc::clone(&clock), config("a"), ok_handler());
        h2.runner.start().await.unwrap();
        match h2.event().await {
            Event::Missed { name, slot } => {
                assert_eq!((&*name, slot), ("windowed", utc("2026-01-01T02:00:00Z")));
            }
            other => panic!("{other:?}"),
        }
        let history = h2.runner.history("windowed", 10).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].outcome, Outcome::Missed);
        assert_eq!(
            h2.runner.status("windowed").await.unwrap().slot,
            Some(utc("2026-01-02T02:00:00Z"))
        );
        h2.runner.shutdown(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn catch_up_once_runs_one_slot_and_skip_runs_none_after_downtime() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(rota_scheduler::ManualClock::new(utc(
        "2026-01-01T00:00:00Z",
    )));
    let h = Harness::on(dir, Arc::clone(&clock), config("a"), ok_handler());
    h.runner
        .register_many(vec![
            JobSpec::new("once", "@hourly").catch_up(CatchUp::Once),
            JobSpec::new("skip", "@hourly").catch_up(CatchUp::Skip),
        ])
        .await
        .unwrap();
    // Down for five hours and a half.
    clock.set(utc("2026-01-01T05:30:00Z"));
    let mut h2 = Harness::on(h.dir, Arc::clone(&clock), config("b"), ok_handler());
    h2.runner.start().await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match h2.event().await {
            Event::Finished {
                name,
                slot,
                outcome,
                ..
            } => {
                seen.push((name.to_string(), slot, Some(outcome)));
            }
            Event::Missed { name, slot } => seen.push((name.to_string(), slot, None)),
            _ => {}
        }
    }
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        [
            (
                "once".to_owned(),
                utc("2026-01-01T05:00:00Z"),
                Some(Outcome::Succeeded)
            ),
            ("skip".to_owned(), utc("2026-01-01T05:00:00Z"), None),
        ]
    );
    for job in ["once", "skip"] {
        assert_eq!(
            h2.runner.status(job).await.unwrap().slot,
            Some(utc("2026-01-01T06:00:00Z"))
        );
    }
    assert_eq!(h2.runner.history("once", 10).await.unwrap().len(), 1);
    h2.runner.shutdown(Duration::from_secs(1)).await;
}

/// Missed slots coalesce whatever the outage's length: down for 17 s under
/// a five-second schedule (well inside the misfire grace) still gives one
/// catch-up run (`once`) or none (`skip`), never the three missed slots
/// back to back.
#[tokio::test]
async fn a_short_outage_coalesces_missed_slots_too() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(rota_scheduler::ManualClock::new(utc(
        "2026-01-01T00:00:00Z",
    )));
    let h = Harness::on(dir, Arc::clone(&clock), config("a"), ok_handler());
    h.runner
        .register_many(vec![
            JobSpec::new("once", "*/5 * * * * *")
                .jitter(false)
                .catch_up(CatchUp::Once),
            JobSpec::new("skip", "*/5 * * * * *")
                .jitter(false)
                .catch_up(CatchUp::Skip),
        ])
        .await
        .unwrap();
    // Slots :05, :10 and :15 pass while no runner is up.
    clock.set(utc("2026-01-01T00:00:17Z"));
    let mut h2 = Harness::on(h.dir, Arc::clone(&clock), config("b"), ok_handler());
    h2.runner.start().await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match h2.event().await {
            Event::Finished { name, slot, .. } => seen.push((name.to_string(), slot, true)),
            Event::Missed { name, slot } => seen.push((name.to_string(), slot, false)),
            _ => {}
        }
    }
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        [
            ("once".to_owned(), utc("2026-01-01T00:00:15Z"), true),
            ("skip".to_owned(), utc("2026-01-01T00:00:15Z"), false),
        ]
    );
    assert_eq!(h2.runner.history("once", 10).await.unwrap().len(), 1);
    for job in ["once", "skip"] {
        assert_eq!(
            h2.runner.status(job).await.unwrap().slot,
            Some(utc("2026-01-01T00:00:20Z"))
        );
    }
    h2.runner.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn shutdown_drains_within_grace_then_cancels_and_the_next_runner_retries() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(rota_scheduler::ManualClock::new(utc(
        "2026-01-01T00:00:00Z",
    )));
    let gate = Arc::new(Semaphore::new(0));
    let g = Arc::clone(&gate);
    let mut h = Harness::on(dir, Arc::clone(&clock), config("a"), move |run: JobRun| {
        let g = Arc::clone(&g);
        async move {
            if &*run.name == "slow" {
                std::future::pending::<()>().await;
            }
            g.acquire()
                .await
                .map_err(|e| RunError::retryable(e.to_string()))?
                .forget();
            Ok(())
        }
    });
    h.runner
        .register_many(vec![
            JobSpec::new("quick", "@hourly"),
            JobSpec::new("slow", "@hourly"),
        ])
        .await
        .unwrap();
    h.runner.start().await.unwrap();
    clock.set(utc("2026-01-01T01:00:00Z"));
    h.started().await;
    h.started().await;
    let runner = h.runner.clone();
    let shutdown = tokio::spawn(async move { runner.shutdown(Duration::from_secs(30)).await });
    // "quick" finishes inside the grace period; "slow" never does.
    gate.add_permits(1);
    let (name, _, _, outcome, _) = h.finished().await;
    assert_eq!((name.as_str(), outcome), ("quick", Outcome::Succeeded));
    clock.advance(Span::seconds(30));
    let report = shutdown.await.unwrap();
    assert!(!report.drained);
    assert_eq!(report.cancelled, 1);
    let slow = h.runner.history("slow", 10).await.unwrap();
    assert_eq!(slow[0].outcome, Outcome::Cancelled);
    let status = h.runner.status("slow").await.unwrap();
    assert_eq!((status.attempts, status.lease_owner), (1, None));

    // The next runner (another owner) retries the cancelled slot at once.
    let mut h2 = Harness::on(h.dir, Arc::clone(&clock), config("b"), |_run: JobRun| {
        std::future::ready(Ok::<(), RunError>(()))
    });
    h2.runner.start().await.unwrap();
    let (name, slot, attempt, outcome, _) = h2.finished().await;
    assert_eq!(
        (name.as_str(), slot, attempt, outcome),
        ("slow", utc("2026-01-01T01:00:00Z"), 2, Outcome::Succeeded)
    );
    h2.runner.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_crashed_owners_lease_is_taken_over_only_after_expiry() {
    let mut h = Harness::new(
        "2026-01-01T00:00:00Z",
        config("b").lease_ttl(Duration::from_secs(660)),
        ok_handler(),
    );
    h.runner
        .register(JobSpec::new("j", "@hourly").timeout(Duration::from_secs(600)))
        .await
        .unwrap();
    // Another process ("ghost") claims the 01:00 slot and dies mid-run.
    let slot = utc("2026-01-01T01:00:00Z").timestamp_millis();
    h.clock.set(utc("2026-01-01T01:00:00Z"));
    let lease_until = slot + 660_000;
    let claimed = h
        .store
        .claim(
            &[Claim {
                name: "j".into(),
                slot_ms: slot,
                attempts: 0,
                run_slot_ms: slot,
                lease_until_ms: lease_until,
            }],
            "ghost",
            slot,
        )
        .unwrap();
    assert!(matches!(claimed[0], ClaimOutcome::Claimed(_)));
    h.runner.start().await.unwrap();
    // Before expiry nothing runs: the runner sleeps until the lease ends.
    h.clock.set(utc("2026-01-01T01:10:59Z"));
    let status = h.runner.status("j").await.unwrap();
    assert_eq!(status.lease_owner.as_deref(), Some("ghost"));
    h.clock.set(utc("2026-01-01T01:11:00Z"));
    let (_, run_slot, attempt, outcome, _) = h.finished().await;
    assert_eq!(
        (run_slot.timestamp_millis(), attempt, outcome),
        (slot, 2, Outcome::Succeeded)
    );
    let history = h.runner.history("j", 10).await.unwrap();
    let outcomes: Vec<_> = history
        .iter()
        .map(|r| (r.owner.as_str(), r.attempt, r.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("b", 2, Outcome::Succeeded),
            ("ghost", 1, Outcome::Interrupted)
        ]
    );
    h.runner.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn history_retention_keeps_the_newest_runs_as_runs_end() {
    let mut h = Harness::new(
        "2026-01-01T00:00:00Z",
        config("a").retention(rota_scheduler::Retention {
            max_runs_per_job: Some(2),
            max_age: None,
        }),
        ok_handler(),
    );
    h.runner
        .register(JobSpec::new("j", "@hourly"))
        .await
        .unwrap();
    h.runner.start().await.unwrap();
    for hour in 1..=4 {
        h.clock.set(utc("2026-01-01T00:00:00Z") + Span::hours(hour));
        h.finished().await;
    }
    // The finisher applies retention as runs end; an explicit prune finds
    // nothing left to drop.
    assert_eq!(h.runner.prune().await.unwrap(), 0);
    let slots: Vec<_> = h
        .runner
        .history("j", 10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.slot_ms)
        .collect();
    assert_eq!(
        slots,
        [
            utc("2026-01-01T04:00:00Z").timestamp_millis(),
            utc("2026-01-01T03:00:00Z").timestamp_millis()
        ]
    );
    h.runner.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn reregistering_keeps_state_and_a_new_schedule_resets_the_slot() {
    let h = Harness::new("2026-01-01T00:00:00Z", config("a"), ok_handler());
    h.runner
        .register(JobSpec::new("j", "@daily"))
        .await
        .unwrap();
    h.clock.set(utc("2026-01-01T12:00:00Z"));
    h.runner
        .register(JobSpec::new("j", "@daily").payload(serde_json::json!(1)))
        .await
        .unwrap();
    assert_eq!(
        h.runner.status("j").await.unwrap().slot,
        Some(utc("2026-01-02T00:00:00Z"))
    );
    h.runner
        .register(JobSpec::new("j", "@hourly"))
        .await
        .unwrap();
    assert_eq!(
        h.runner.status("j").await.unwrap().slot,
        Some(utc("2026-01-01T13:00:00Z"))
    );
    assert!(matches!(
        h.runner.register(JobSpec::new("bad", "0 0 L * *")).await,
        Err(rota_scheduler::RunnerError::Schedule { .. })
    ));
    assert!(matches!(
        h.runner.register(JobSpec::new("", "@daily")).await,
        Err(rota_scheduler::RunnerError::InvalidName { .. })
    ));
    assert_eq!(h.runner.len(), 1);
}

#[tokio::test]
async fn start_now_makes_a_new_job_due_at_once_and_only_once() {
    let mut h = Harness::new("2026-01-01T10:30:00Z", config("a"), ok_handler());
    h.runner
        .register(JobSpec::new("j", "@daily").start_now(true))
        .await
        .unwrap();
    assert_eq!(
        h.runner.status("j").await.unwrap().slot,
        Some(utc("2026-01-01T10:30:00Z"))
    );
    h.runner.start().await.unwrap();
    let (name, slot, _, outcome, _) = h.finished().await;
    assert_eq!(
        (name.as_str(), slot, outcome),
        ("j", utc("2026-01-01T10:30:00Z"), Outcome::Succeeded)
    );
    // After the immediate run the schedule takes over; registering again
    // (a restart, a reload) does not make it due again.
    assert_eq!(
        h.runner.status("j").await.unwrap().slot,
        Some(utc("2026-01-02T00:00:00Z"))
    );
    h.runner
        .register(JobSpec::new("j", "@daily").start_now(true))
        .await
        .unwrap();
    assert_eq!(
        h.runner.status("j").await.unwrap().slot,
        Some(utc("2026-01-02T00:00:00Z"))
    );
    // A changed schedule moves to its next fire time, not to now.
    h.runner
        .register(JobSpec::new("j", "@hourly").start_now(true))
        .await
        .unwrap();
    assert_eq!(
        h.runner.status("j").await.unwrap().slot,
        Some(utc("2026-01-01T11:00:00Z"))
    );
    h.runner.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_single_pass_runner_runs_each_job_once() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let mut h = Harness::new(
        "2026-01-01T00:00:00Z",
        config("a").single_pass(true),
        move |_run: JobRun| {
            counted.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok::<(), RunError>(()))
        },
    );
    h.runner
        .register_many(vec![
            JobSpec::new("every-second", "* * * * * *").jitter(false),
            JobSpec::new("hourly", "@hourly"),
        ])
        .await
        .unwrap();
    h.runner.start().await.unwrap();
    // Many slots of the first job and a whole hour pass: one run each.
    h.clock.advance(Span::seconds(5));
    let (name, ..) = h.finished().await;
    assert_eq!(name, "every-second");
    h.clock.advance(Span::hours(1));
    let (name, ..) = h.finished().await;
    assert_eq!(name, "hourly");
    h.clock.advance(Span::hours(3));
    tokio::task::yield_now().await;
    let report = h.runner.shutdown(Duration::from_secs(1)).await;
    assert!(report.drained);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_heartbeat_renews_a_running_jobs_lease_and_marks_a_taken_one_lost() {
    // The handler reports its lease and waits to be let go.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(0));
    let handler = {
        let gate = Arc::clone(&gate);
        move |run: JobRun| {
            let (tx, gate) = (tx.clone(), Arc::clone(&gate));
            async move {
                tx.send(run.lease.clone()).unwrap();
                let _ = gate.acquire().await;
                Ok::<(), RunError>(())
            }
        }
    };
    let h = Harness::new(
        "2026-01-01T00:59:59Z",
        config("a").lease_ttl(Duration::from_secs(30)),
        handler,
    );
    h.runner
        .register(JobSpec::new("j", "@hourly").jitter(false))
        .await
        .unwrap();
    h.runner.start().await.unwrap();
    h.clock.set(utc("2026-01-01T01:00:00Z"));
    let lease = rx.recv().await.unwrap();
    let first = lease.until_ms();
    assert_eq!(first, utc("2026-01-01T01:00:30Z").timestamp_millis());
    // Every 10 s the heartbeat extends it, in memory and in the store.
    for step in 1..=6 {
        h.clock.advance(Span::seconds(10));
        let want = utc("2026-01-01T01:00:30Z").timestamp_millis() + step * 10_000;
        for _ in 0..500 {
            if lease.until_ms() >= want {
                break;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(
            lease.until_ms() >= want,
            "step {step}: {}",
            lease.until_ms()
        );
        assert!(lease.held());
    }
    let stored = h.store.job("j").unwrap().unwrap().lease.unwrap();
    assert_eq!(
        (stored.owner.as_str(), stored.until_ms),
        ("a", lease.until_ms())
    );
    // Another owner takes the row over (as after an outage): the next beat
    // finds the lease gone and marks it lost.
    {
        let conn = rusqlite::Connection::open(h.dir.path().join("sched.db")).unwrap();
        conn.execute("UPDATE jobs SET lease_owner = 'b' WHERE name = 'j'", [])
            .unwrap();
    }
    h.clock.advance(Span::seconds(10));
    for _ in 0..500 {
        if !lease.held() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(!lease.held(), "the lease is lost");
    gate.add_permits(1);
    h.runner.shutdown(Duration::from_secs(1)).await;
}

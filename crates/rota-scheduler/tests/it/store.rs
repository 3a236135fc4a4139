//! The SQLite store's compare-and-set rules, directly.

use rota_scheduler::store::{Claim, ClaimOutcome, Finish, NewJob, Next};
use rota_scheduler::{JobStore, Outcome, Policy, SqliteStore};

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

#[test]
fn one_slot_is_claimed_by_one_owner_until_the_lease_expires() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let a = SqliteStore::open(&path).unwrap();
    let b = SqliteStore::open(&path).unwrap();
    a.upsert(&[job("j")], 0).unwrap();

    let won = a.claim(&[claim("j", 0)], "a", 3_600_000).unwrap();
    let ClaimOutcome::Claimed(c) = &won[0] else {
        panic!("{won:?}")
    };
    assert_eq!((c.attempt, c.payload.as_str()), (1, "{\"k\":1}"));
    // The same expectation from another process loses and sees the lease.
    let lost = b.claim(&[claim("j", 0)], "b", 3_600_001).unwrap();
    let ClaimOutcome::Lost(Some(row)) = &lost[0] else {
        panic!("{lost:?}")
    };
    assert_eq!(row.lease.as_ref().map(|l| l.owner.as_str()), Some("a"));
    // Even with the current attempt count, a live lease blocks.
    let lost = b.claim(&[claim("j", 1)], "b", 3_999_999).unwrap();
    assert!(matches!(lost[0], ClaimOutcome::Lost(_)));
    // After expiry "b" takes over; "a"'s late finish no longer moves the job.
    let won = b.claim(&[claim("j", 1)], "b", 4_000_000).unwrap();
    let ClaimOutcome::Claimed(cb) = &won[0] else {
        panic!("{won:?}")
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
            next: Next {
                slot_ms: Some(7_200_000),
                due_ms: Some(7_200_000),
                attempts: 0,
                needs_attention: false,
            },
        }])
        .unwrap();
    assert_eq!(late, [false]);
    let row = b.job("j").unwrap().unwrap();
    assert_eq!((row.slot_ms, row.attempts), (Some(3_600_000), 2));
    let runs = b.runs("j", 10).unwrap();
    let outcomes: Vec<_> = runs.iter().map(|r| (r.owner.as_str(), r.outcome)).collect();
    assert_eq!(
        outcomes,
        [("b", Outcome::Running), ("a", Outcome::Interrupted)]
    );
}

#[test]
fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        s.upsert(&[job("x"), job("y")], 0).unwrap();
        s.claim(&[claim("x", 0)], "a", 3_600_000).unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    let jobs = s.jobs().unwrap();
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0].attempts, 1);
    assert_eq!(jobs[0].policy, Policy::default());
    assert_eq!(s.runs("x", 10).unwrap().len(), 1);
}

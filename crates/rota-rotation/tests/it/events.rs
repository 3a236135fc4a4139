//! Events without the binary: reminders ahead of slots across DST changes
//! on a manual clock, the outbox's per-subject order and retries, and a
//! daemon pass whose run ends carry their events.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rota_rotation::events::reminders::{Reminder, Reminders};
use rota_rotation::events::{Events, EventsConfig, SinkSpec, SinkTarget};
use rota_scheduler::outbox::{EventQuery, Outbox, Settle};
use rota_scheduler::{Clock, ManualClock, SqliteStore};

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn events_on(clock: &ManualClock, sinks: Vec<SinkSpec>) -> (Arc<Events>, Arc<SqliteStore>) {
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let events = Arc::new(Events::new(
        store.clone(),
        EventsConfig {
            sinks,
            ..Default::default()
        },
        "rota://test",
        Arc::new(clock.clone()) as Arc<dyn Clock>,
    ));
    (events, store)
}

/// Steps a manual clock from wake-up to wake-up and returns (when each
/// reminder was written, the slot it names).
fn reminders_between(
    schedule: &str,
    zone: &str,
    before: Duration,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, String)> {
    let clock = ManualClock::new(from);
    let (events, _store) = events_on(&clock, vec![]);
    let reminders = Reminders::new(events);
    reminders.set(vec![Reminder {
        job: "rotate:app/db".into(),
        secret: "app/db".into(),
        rotation: "db".into(),
        plugin: "password".into(),
        schedule: schedule.into(),
        timezone: zone.into(),
        before,
    }]);
    let mut sent = HashSet::new();
    let mut out = Vec::new();
    let mut now = from;
    while now < to {
        let (written, wake) = reminders.due(now, &mut sent);
        for e in written {
            let body: serde_json::Value = serde_json::from_str(&e.body).unwrap();
            assert_eq!(body["type"], "rotation.scheduled");
            assert_eq!(body["subject"], "app/db");
            assert_eq!(body["data"]["remind_before_s"], before.as_secs());
            out.push((now, body["data"]["slot"].as_str().unwrap().to_owned()));
        }
        assert!(wake > now);
        now = wake;
    }
    out
}

#[test]
fn reminders_arrive_ahead_of_each_slot_across_dst_changes() {
    // 03:00 in Berlin, an hour ahead: 01:00 UTC in winter, 00:00 UTC in
    // summer; the spring change is on 29 March 2026, at 01:00 UTC.
    let got = reminders_between(
        "0 3 * * *",
        "Europe/Berlin",
        Duration::from_secs(3600),
        at(2026, 3, 27, 12, 0),
        at(2026, 3, 30, 12, 0),
    );
    assert_eq!(
        got,
        vec![
            (at(2026, 3, 28, 1, 0), "2026-03-28T02:00:00Z".to_owned()),
            (at(2026, 3, 29, 0, 0), "2026-03-29T01:00:00Z".to_owned()),
            (at(2026, 3, 30, 0, 0), "2026-03-30T01:00:00Z".to_owned()),
        ]
    );
    // Autumn, New York: 01:30 happens twice on 1 November 2026; a
    // fixed-time schedule fires at the first, and the reminder 30 minutes
    // before it.
    let got = reminders_between(
        "30 1 * * *",
        "America/New_York",
        Duration::from_secs(1800),
        at(2026, 10, 31, 12, 0),
        at(2026, 11, 2, 12, 0),
    );
    assert_eq!(
        got,
        vec![
            (at(2026, 11, 1, 5, 0), "2026-11-01T05:30:00Z".to_owned()),
            (at(2026, 11, 2, 6, 0), "2026-11-02T06:30:00Z".to_owned()),
        ]
    );
}

#[test]
fn a_daemon_started_inside_the_lead_time_reminds_at_once_and_only_once() {
    let got = reminders_between(
        "@daily",
        "UTC",
        Duration::from_secs(2 * 3600),
        at(2026, 6, 1, 23, 0),
        at(2026, 6, 2, 23, 30),
    );
    assert_eq!(
        got,
        vec![
            (at(2026, 6, 1, 23, 0), "2026-06-02T00:00:00Z".to_owned()),
            (at(2026, 6, 2, 22, 0), "2026-06-03T00:00:00Z".to_owned()),
        ]
    );
}

fn sink(name: &str) -> SinkSpec {
    SinkSpec {
        name: name.into(),
        target: SinkTarget::Command {
            argv: vec!["true".into()],
            timeout: Duration::from_secs(5),
        },
        types: vec![],
        secrets: vec![],
        retry_for: Duration::from_secs(3600),
        max_pending: 1000,
    }
}

#[test]
fn the_outbox_hands_out_one_event_per_subject_in_order_and_ignores_repeated_ids() {
    let clock = ManualClock::new(at(2026, 6, 1, 0, 0));
    let (events, store) = events_on(&clock, vec![sink("ops")]);
    let now = clock.now();
    let mk = |id: &str, subject: &str| {
        events.event(
            id.into(),
            "rotation.rotated",
            subject,
            now,
            serde_json::json!({}),
        )
    };
    let batch = vec![mk("a1", "app/a"), mk("b1", "app/b"), mk("a2", "app/a")];
    assert_eq!(store.append(&batch).unwrap(), 3);
    assert_eq!(
        store.append(&batch[..1]).unwrap(),
        0,
        "a repeated id is ignored"
    );
    let ms = now.timestamp_millis();
    let due = store.due("ops", ms, 10).unwrap();
    let ids: Vec<&str> = due.iter().map(|p| p.event.id.as_str()).collect();
    assert_eq!(ids, ["a1", "b1"], "a2 waits for a1");
    // a1 fails: a2 still waits; b1 is delivered.
    store
        .settle(
            "ops",
            &[
                (
                    due[0].event.seq,
                    Settle::Retry {
                        next_ms: ms + 1000,
                        error: "x".into(),
                    },
                ),
                (due[1].event.seq, Settle::Delivered { at_ms: ms }),
            ],
        )
        .unwrap();
    // b1 went through, so the sink works again: a1 is retried at once
    // rather than after its backoff.
    assert_eq!(store.next_due_ms("ops").unwrap(), Some(ms));
    let due = store.due("ops", ms + 1000, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].event.id.as_str(), due[0].attempts), ("a1", 1));
    store
        .settle(
            "ops",
            &[(
                due[0].event.seq,
                Settle::Dead {
                    at_ms: ms,
                    error: "gone".into(),
                },
            )],
        )
        .unwrap();
    let due = store.due("ops", ms + 1000, 10).unwrap();
    assert_eq!(due[0].event.id, "a2", "a dead event no longer blocks");
    let counts = store.sinks().unwrap();
    assert_eq!(
        (
            counts[0].pending,
            counts[0].delivered,
            counts[0].dead,
            counts[0].dropped
        ),
        (1, 1, 1, 0)
    );
    // The cap drops the oldest pending.
    for i in 0..5 {
        store.append(&[mk(&format!("c{i}"), "app/c")]).unwrap();
    }
    assert_eq!(store.cap("ops", 2, ms).unwrap(), 4);
    let listed = store
        .events(&EventQuery {
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(listed.len(), 8);
    // Leases: one deliverer per sink.
    assert!(store.take_sink("ops", "a", ms, ms + 10).unwrap());
    assert!(!store.take_sink("ops", "b", ms + 5, ms + 15).unwrap());
    assert!(store.take_sink("ops", "b", ms + 10, ms + 20).unwrap());
    // Retention keeps events with pending deliveries.
    assert_eq!(store.prune_events(ms + 1).unwrap(), 6);
}

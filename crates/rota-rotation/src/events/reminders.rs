//! `rotation.scheduled`: a reminder `remind_before` ahead of each slot.
//!
//! The slot comes from the rotation's schedule in its time zone (DST
//! rules included), so a reminder one hour ahead of a 03:00 Berlin slot is
//! at 01:00 UTC in winter and 00:00 UTC in summer. A daemon that starts
//! inside a reminder's lead time sends it at once. The id is derived from
//! the job and the slot: daemons sharing a store, or one restarted, write
//! each reminder once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Events, RotationData, event_id, slot_key};

/// One rotation target with a reminder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    /// The scheduler job (`rotate:<secret>`).
    pub job: String,
    /// The secret.
    pub secret: String,
    /// The rotation block.
    pub rotation: String,
    /// The plugin.
    pub plugin: String,
    /// The schedule expression.
    pub schedule: String,
    /// Its time zone.
    pub timezone: String,
    /// How long before each slot.
    pub before: Duration,
}

/// Writes the reminders (see the module docs).
#[derive(Debug)]
pub struct Reminders {
    events: Arc<Events>,
    list: tokio::sync::watch::Sender<Vec<Reminder>>,
}

/// The longest sleep between two looks at the schedules.
const MAX_SLEEP: Duration = Duration::from_secs(60);

impl Reminders {
    /// Reminders written through `events`.
    pub fn new(events: Arc<Events>) -> Self {
        Self {
            events,
            list: tokio::sync::watch::Sender::new(Vec::new()),
        }
    }

    /// Replaces the targets (a reload).
    pub fn set(&self, list: Vec<Reminder>) {
        self.list.send_replace(list);
    }

    /// The reminders due at `now` that `sent` does not hold yet, and when
    /// to look again.
    pub fn due(
        &self,
        now: DateTime<Utc>,
        sent: &mut HashSet<(String, i64)>,
    ) -> (Vec<rota_scheduler::NewEvent>, DateTime<Utc>) {
        let list = self.list.borrow().clone();
        let mut wake = now + chrono::Duration::from_std(MAX_SLEEP).unwrap_or_default();
        let mut out = Vec::new();
        sent.retain(|(_, slot)| *slot >= now.timestamp_millis());
        for r in &list {
            let Ok(schedule) = rota_scheduler::Schedule::parse_in(&r.schedule, &r.timezone) else {
                continue;
            };
            let before = chrono::Duration::from_std(r.before).unwrap_or_default();
            let Some(slot) = schedule.next_fire(now) else {
                continue;
            };
            if slot - before > now {
                wake = wake.min(slot - before);
                continue;
            }
            if sent.insert((r.job.clone(), slot.timestamp_millis())) {
                out.push(self.event(r, slot, now));
            }
            if let Some(following) = schedule.next_fire(slot) {
                wake = wake.min(following - before);
            }
        }
        // A lead time longer than the interval would wake at once forever.
        let floor = now + chrono::Duration::seconds(1);
        (out, wake.max(floor))
    }

    fn event(
        &self,
        r: &Reminder,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> rota_scheduler::NewEvent {
        let mut data = RotationData {
            rotation: &r.rotation,
            plugin: &r.plugin,
            attempt: 0,
            slot: Some(slot),
            ..Default::default()
        }
        .to_json();
        data["remind_before_s"] = serde_json::json!(r.before.as_secs());
        data.as_object_mut().map(|m| m.remove("attempt"));
        self.events.event(
            event_id(&["rotation.scheduled", &r.job, &slot_key(slot)]),
            "rotation.scheduled",
            &r.secret,
            now,
            data,
        )
    }

    /// Writes reminders as they fall due until `stop` turns true.
    pub async fn run(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut sent = HashSet::new();
        let mut changed = self.list.subscribe();
        loop {
            let now = self.events.now();
            let (events, wake) = self.due(now, &mut sent);
            for e in &events {
                tracing::info!(secret.name = %e.subject, "rotation reminder");
            }
            self.events.append(events).await;
            tokio::select! {
                () = self.events.clock().sleep_until(wake) => {}
                _ = changed.changed() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

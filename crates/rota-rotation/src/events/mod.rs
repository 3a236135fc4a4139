//! Rotation events: what happened, as CloudEvents 1.0, written to the
//! scheduler store's outbox and delivered at least once to the sinks a
//! `notify` block configures.
//!
//! - [`Events`] builds events and writes them. A scheduler run's events go
//!   into the run's [`rota_scheduler::EventBuffer`] (and the daemon's
//!   [`rota_scheduler::RunEvents`] adds *needs attention* and *recovered*),
//!   so the store writes them in the transaction that ends the run; other
//!   events (a run starting, reminders, `apply`) are written on their own.
//! - Ids are derived from what the event is about (type, job, slot,
//!   attempt): a run repeated after a crash writes the same ids, which the
//!   outbox ignores, and a receiver deduplicates by id.
//! - [`deliver`] delivers them: signed webhooks (the Standard Webhooks
//!   headers) and commands, per subject in order, retried with backoff for
//!   the sink's `retry_for`, then parked as dead; a sink's backlog is
//!   capped.
//! - [`reminders`] writes `rotation.scheduled` ahead of each slot.
//!
//! An event never carries a secret value: its data are names, the plugin,
//! the step, a version id, the attempt and a redacted error.

pub mod deliver;
pub mod reminders;
pub mod run;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rota_kms::SecretString;
use rota_scheduler::outbox::NewEvent;
use rota_scheduler::{Clock, Outbox};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Every event type.
pub const TYPES: &[&str] = &[
    "rotation.scheduled",
    "rotation.started",
    "rotation.rotated",
    "rotation.resumed",
    "rotation.failed",
    "rotation.needs_attention",
    "rotation.recovered",
    "workflow.ran",
    "workflow.failed",
    "secret.created",
    "secret.updated",
    "secret.replaced",
    "secret.deleted",
];

/// Where a sink delivers.
#[derive(Debug, Clone)]
pub enum SinkTarget {
    /// An HTTP POST of the event, signed when a key is set.
    Webhook {
        /// The URL.
        url: String,
        /// The signing key (`whsec_<base64>` is decoded; anything else is
        /// used as bytes).
        key: Option<SecretString>,
        /// How long one delivery may take.
        timeout: Duration,
    },
    /// A program run with the event on its standard input.
    Command {
        /// The program and its arguments.
        argv: Vec<String>,
        /// How long it may run.
        timeout: Duration,
    },
}

/// A configured sink (a `notify` block).
#[derive(Debug, Clone)]
pub struct SinkSpec {
    /// Its name (the block's label).
    pub name: String,
    /// Where it delivers.
    pub target: SinkTarget,
    /// Event type patterns (`rotation.*`); empty: every type.
    pub types: Vec<String>,
    /// Subject patterns (secret names, `app/*`); empty: every subject.
    pub secrets: Vec<String>,
    /// How long an event is retried before it is parked as dead.
    pub retry_for: Duration,
    /// The most undelivered events kept for it; beyond, the oldest are
    /// dropped.
    pub max_pending: u64,
}

impl SinkSpec {
    /// Whether this sink takes events of `kind` about `subject`.
    pub fn wants(&self, kind: &str, subject: &str) -> bool {
        let any = |patterns: &[String], text: &str| {
            patterns.is_empty()
                || patterns
                    .iter()
                    .any(|p| rota_kms::pattern::wildcard_match(p, text))
        };
        any(&self.types, kind) && any(&self.secrets, subject)
    }
}

/// The events settings: sinks and retention.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// The sinks.
    pub sinks: Vec<SinkSpec>,
    /// How long events are kept once nothing is pending for them.
    pub retention: Duration,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            sinks: Vec::new(),
            retention: Duration::from_secs(7 * 86_400),
        }
    }
}

/// What the events report as they go (the binary's metrics). Every method
/// has a no-op default.
pub trait EventsObserver: Send + Sync + 'static {
    /// An event of `kind` was written.
    fn written(&self, kind: &str) {
        let _ = kind;
    }
    /// An event of `kind` was delivered to `sink`.
    fn delivered(&self, sink: &str, kind: &str, latency: Duration) {
        let _ = (sink, kind, latency);
    }
    /// A delivery failed and will be retried.
    fn retried(&self, sink: &str, kind: &str) {
        let _ = (sink, kind);
    }
    /// A delivery was given up (dead).
    fn dead(&self, sink: &str, kind: &str) {
        let _ = (sink, kind);
    }
    /// `n` undelivered events of `sink` were dropped (backlog cap).
    fn dropped(&self, sink: &str, n: u64) {
        let _ = (sink, n);
    }
}

/// Writes events (see the module docs).
pub struct Events {
    outbox: Arc<dyn Outbox>,
    config: RwLock<Arc<EventsConfig>>,
    source: String,
    clock: Arc<dyn Clock>,
    wake: Arc<tokio::sync::Notify>,
    observer: RwLock<Option<Arc<dyn EventsObserver>>>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// A deterministic event id (a UUID-shaped digest of `parts`).
pub fn event_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let d = h.finalize();
    let hex: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// A fresh random event id.
pub fn random_id() -> String {
    let n: u128 = rand::random();
    event_id(&[&n.to_string()])
}

impl Events {
    /// Events written to `outbox`, stamped with `source` (a URI naming
    /// this Rota, `rota://<host>`) and `clock`'s time.
    pub fn new(
        outbox: Arc<dyn Outbox>,
        config: EventsConfig,
        source: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            outbox,
            config: RwLock::new(Arc::new(config)),
            source: source.into(),
            clock,
            wake: Arc::new(tokio::sync::Notify::new()),
            observer: RwLock::new(None),
        }
    }

    /// Reports to `observer` from now on.
    pub fn observe(&self, observer: Arc<dyn EventsObserver>) {
        *self
            .observer
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(observer);
    }

    pub(crate) fn observer(&self) -> Option<Arc<dyn EventsObserver>> {
        self.observer
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The settings in force.
    pub fn config(&self) -> Arc<EventsConfig> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the settings (a reload).
    pub fn set_config(&self, config: EventsConfig) {
        *self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config);
        self.wake.notify_waiters();
    }

    /// The outbox.
    pub fn outbox(&self) -> &Arc<dyn Outbox> {
        &self.outbox
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Woken when events are written here.
    pub fn wake(&self) -> &Arc<tokio::sync::Notify> {
        &self.wake
    }

    /// An event of `kind` about `subject` with `data`, at `time`, with
    /// `id`, addressed to the sinks that want it.
    pub fn event(
        &self,
        id: String,
        kind: &str,
        subject: &str,
        time: DateTime<Utc>,
        data: Value,
    ) -> NewEvent {
        let body = json!({
            "specversion": "1.0",
            "id": id,
            "source": self.source,
            "type": kind,
            "subject": subject,
            "time": time.to_rfc3339_opts(SecondsFormat::Millis, true),
            "datacontenttype": "application/json",
            "data": data,
        });
        let sinks = self
            .config()
            .sinks
            .iter()
            .filter(|s| s.wants(kind, subject))
            .map(|s| s.name.clone())
            .collect();
        NewEvent {
            id,
            subject: subject.to_owned(),
            kind: kind.to_owned(),
            time_ms: time.timestamp_millis(),
            body: body.to_string(),
            sinks,
        }
    }

    /// Now, on the events' clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Counts `events` as written and wakes the deliverer (after they were
    /// stored by someone else, e.g. with a run's end).
    pub fn written(&self, events: &[NewEvent]) {
        if let Some(o) = self.observer() {
            for e in events {
                o.written(&e.kind);
            }
        }
        self.wake.notify_waiters();
    }

    /// Writes `events` now (blocking the calling thread on the store).
    ///
    /// # Errors
    ///
    /// The store's.
    pub fn append_blocking(
        &self,
        events: &[NewEvent],
    ) -> Result<usize, rota_scheduler::StoreError> {
        let n = self.outbox.append(events)?;
        self.written(events);
        Ok(n)
    }

    /// Writes `events`; a failure is logged (the caller goes on: the event
    /// is lost only if the store is down, and that is reported).
    pub async fn append(self: &Arc<Self>, events: Vec<NewEvent>) {
        if events.is_empty() {
            return;
        }
        let me = Arc::clone(self);
        let result = tokio::task::spawn_blocking(move || me.append_blocking(&events)).await;
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %chain(&e), "cannot write events to the outbox")
            }
            Err(e) => tracing::error!(error = %e, "cannot write events to the outbox"),
        }
    }
}

/// The `data` of a rotation event.
#[derive(Debug, Clone, Default)]
pub struct RotationData<'a> {
    /// The rotation block.
    pub rotation: &'a str,
    /// The plugin.
    pub plugin: &'a str,
    /// The attempt (1 for the first).
    pub attempt: u32,
    /// The slot it serves.
    pub slot: Option<DateTime<Utc>>,
    /// The failed step.
    pub step: Option<&'a str>,
    /// The version id it produced or works on.
    pub version_id: Option<&'a str>,
    /// The redacted error.
    pub error: Option<&'a str>,
}

impl RotationData<'_> {
    /// As JSON (absent fields omitted).
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("rotation".into(), json!(self.rotation));
        m.insert("plugin".into(), json!(self.plugin));
        m.insert("attempt".into(), json!(self.attempt));
        if let Some(s) = self.slot {
            m.insert(
                "slot".into(),
                json!(s.to_rfc3339_opts(SecondsFormat::Secs, true)),
            );
        }
        if let Some(s) = self.step {
            m.insert("step".into(), json!(s));
        }
        if let Some(v) = self.version_id {
            m.insert("version_id".into(), json!(v));
        }
        if let Some(e) = self.error {
            m.insert("error".into(), json!(e));
        }
        Value::Object(m)
    }
}

/// An error and its sources, one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// The millisecond timestamp of a slot, for ids.
pub(crate) fn slot_key(slot: DateTime<Utc>) -> String {
    slot.timestamp_millis().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_uuid_shaped() {
        let a = event_id(&["rotation.rotated", "rotate:app/db", "1", "1"]);
        assert_eq!(
            a,
            event_id(&["rotation.rotated", "rotate:app/db", "1", "1"])
        );
        assert_ne!(
            a,
            event_id(&["rotation.rotated", "rotate:app/db", "1", "2"])
        );
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
        assert_ne!(random_id(), random_id());
    }

    #[test]
    fn sinks_filter_by_type_and_subject() {
        let sink = SinkSpec {
            name: "ops".into(),
            target: SinkTarget::Command {
                argv: vec!["true".into()],
                timeout: Duration::from_secs(1),
            },
            types: vec!["rotation.*".into(), "secret.deleted".into()],
            secrets: vec!["app/*".into()],
            retry_for: Duration::from_secs(60),
            max_pending: 10,
        };
        assert!(sink.wants("rotation.failed", "app/db"));
        assert!(sink.wants("secret.deleted", "app/db"));
        assert!(!sink.wants("secret.created", "app/db"));
        assert!(!sink.wants("rotation.failed", "ops/db"));
    }
}

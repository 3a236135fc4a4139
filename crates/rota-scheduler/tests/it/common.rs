//! Shared helpers: a runner on a temp-dir store with a manual clock, and
//! waiting for events without sleeping.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rota_scheduler::{
    Event, Handler, JobStore, ManualClock, Outcome, Runner, RunnerConfig, SqliteStore,
};
use tokio::sync::broadcast;

/// A hang guard for awaiting events; never an assertion about elapsed time.
const HANG_GUARD: Duration = Duration::from_secs(60);

pub(crate) fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad fixture {s}: {e}"))
        .with_timezone(&Utc)
}

pub(crate) struct Harness {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) store: Arc<SqliteStore>,
    pub(crate) runner: Runner,
    pub(crate) events: broadcast::Receiver<Event>,
}

impl Harness {
    pub(crate) fn new(start: &str, config: RunnerConfig, handler: impl Handler) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock::new(utc(start)));
        Self::on(dir, clock, config, handler)
    }

    /// A runner on the store in `dir` (created or reopened).
    pub(crate) fn on(
        dir: tempfile::TempDir,
        clock: Arc<ManualClock>,
        config: RunnerConfig,
        handler: impl Handler,
    ) -> Self {
        let store = Arc::new(SqliteStore::open(dir.path().join("sched.db")).expect("open store"));
        let runner = Runner::new(
            Arc::clone(&store) as Arc<dyn JobStore>,
            Arc::clone(&clock) as Arc<dyn rota_scheduler::Clock>,
            config,
            handler,
        );
        let events = runner.subscribe();
        Self {
            dir,
            clock,
            store,
            runner,
            events,
        }
    }

    pub(crate) async fn event(&mut self) -> Event {
        next_event(&mut self.events).await
    }

    /// Waits for the next `Finished` event, skipping others.
    pub(crate) async fn finished(&mut self) -> (String, DateTime<Utc>, u32, Outcome, bool) {
        loop {
            if let Event::Finished {
                name,
                slot,
                attempt,
                outcome,
                needs_attention,
                ..
            } = self.event().await
            {
                return (name.to_string(), slot, attempt, outcome, needs_attention);
            }
        }
    }

    /// Waits for the next `Started` event, skipping others.
    pub(crate) async fn started(&mut self) -> (String, DateTime<Utc>, u32) {
        loop {
            if let Event::Started {
                name,
                slot,
                attempt,
            } = self.event().await
            {
                return (name.to_string(), slot, attempt);
            }
        }
    }
}

pub(crate) async fn next_event(rx: &mut broadcast::Receiver<Event>) -> Event {
    match tokio::time::timeout(HANG_GUARD, rx.recv()).await {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => panic!("event stream: {e}"),
        Err(_) => panic!("no scheduler event within the hang guard"),
    }
}

pub(crate) fn config(owner: &str) -> RunnerConfig {
    RunnerConfig::with_owner(owner)
}

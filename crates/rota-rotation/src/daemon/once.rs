//! `rota run --once`: one pass over the jobs due within a horizon, on a
//! clock frozen at now + horizon, with a single-pass runner (a job runs at
//! most once; retries and later slots wait for the next invocation), and
//! the report of what ran.
//!
//! What is due is read from the store before the runner starts, so a job
//! that runs (and, say, fails into needs-attention) before the read is
//! still counted. Jobs another process runs meanwhile are not waited for:
//! a periodic look at the store sees their lease, or their slot moved on.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use rota_scheduler::{Event, ManualClock, Outcome, Runner, RunnerConfig};
use serde::Serialize;

use super::{Daemon, DaemonError, RunOutcome, lock};
use crate::target::JobKind;

/// One rotation job of the pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OnceRun {
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// The job's name.
    pub job: String,
    /// How it ended.
    pub outcome: RunOutcome,
    /// The secret.
    pub secret: String,
}

/// One workflow job of the pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OnceWorkflow {
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// The job's name.
    pub job: String,
    /// How it ended.
    pub outcome: RunOutcome,
    /// The report's summary line, when it ran.
    pub summary: Option<String>,
    /// The workflow.
    pub workflow: String,
}

/// What one `--once` pass did. (Fields in alphabetical order: the JSON
/// shape scripts parse.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OnceReport {
    /// Rotations whose slot's version was already current.
    pub already_done: usize,
    /// Rotation jobs due.
    pub due: usize,
    /// Rotations that failed.
    pub failed: usize,
    /// Rotations that produced (or finished) a new version.
    pub rotated: usize,
    /// Each rotation job: run here, or skipped and why.
    pub runs: Vec<OnceRun>,
    /// Rotation jobs not run here.
    pub skipped: usize,
    /// Each workflow job.
    pub workflows: Vec<OnceWorkflow>,
}

impl OnceReport {
    /// Whether any rotation or workflow failed.
    pub fn any_failed(&self) -> bool {
        self.failed > 0
            || self
                .workflows
                .iter()
                .any(|w| w.outcome == RunOutcome::Failed)
    }
}

/// How often the pass looks at the store for jobs another process ran.
const LOOK_EVERY: Duration = Duration::from_millis(200);

impl Daemon {
    /// One pass over the `registered` jobs due within `within`; runs still
    /// going after the pass get `grace` to finish. `on_start` sees the
    /// runner once it runs (health checks).
    pub async fn once(
        &self,
        registered: &[String],
        within: Duration,
        grace: Duration,
        on_start: impl FnOnce(&Runner),
    ) -> Result<OnceReport, DaemonError> {
        if self.runner().is_some() {
            return Err(DaemonError::AlreadyRunning);
        }
        let horizon = self.clock.now() + chrono::Duration::from_std(within).unwrap_or_default();
        let mut config = RunnerConfig::with_owner(self.owner.clone())
            .max_concurrent(self.concurrency)
            .misfire_grace(within + Duration::from_secs(60))
            .single_pass(true)
            .lookahead(within)
            // The pass's clock is frozen, so nothing renews its leases:
            // they last as long as a run may.
            .lease_ttl(Duration::from_secs(3600));
        if let Some(e) = &self.shared.events {
            config = config.run_events(Arc::new(crate::events::run::DaemonRunEvents::new(
                Arc::clone(e),
            )));
        }
        let runner = Runner::new(
            self.store.clone(),
            Arc::new(ManualClock::new(horizon)),
            config,
            self.handler(),
        );
        let mut events = runner.subscribe();
        let due = self.due_by(registered, horizon.timestamp_millis()).await?;
        runner.start().await?;
        on_start(&runner);
        let mut wait = Wait {
            pending: due,
            skipped: BTreeMap::new(),
            results: BTreeMap::new(),
            started: HashSet::new(),
        };
        self.watch(&mut wait, &mut events).await?;
        // The runner is single-pass, so nothing starts after the pass; let
        // what still runs finish within the grace (on the real clock: the
        // runner's own is frozen), then stop.
        let mut working = self.shared.working.subscribe();
        let _ = tokio::time::timeout(grace, working.wait_for(|n| *n == 0)).await;
        runner.shutdown(Duration::ZERO).await;
        Ok(self.report(wait))
    }

    /// The registered jobs due by `horizon_ms` (not paused), with the slot
    /// each is due at.
    async fn due_by(
        &self,
        registered: &[String],
        horizon_ms: i64,
    ) -> Result<BTreeMap<String, Option<i64>>, DaemonError> {
        let configured: HashSet<&str> = registered.iter().map(String::as_str).collect();
        let mut due = BTreeMap::new();
        for row in self.jobs().await? {
            if !configured.contains(row.name.as_str()) {
                continue;
            }
            let at = row.due_ms.or(row.slot_ms);
            if row.state == rota_scheduler::RunState::Paused || at.is_none_or(|d| d > horizon_ms) {
                continue;
            }
            due.insert(row.name.clone(), row.slot_ms);
        }
        Ok(due)
    }

    /// Follows the runner's events (and, periodically, the store) until
    /// every due job is settled.
    async fn watch(
        &self,
        wait: &mut Wait,
        events: &mut tokio::sync::broadcast::Receiver<Event>,
    ) -> Result<(), DaemonError> {
        use tokio::sync::broadcast::error::{RecvError, TryRecvError};
        let mut tick = tokio::time::interval(LOOK_EVERY);
        while !wait.pending.is_empty() {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(ev) => self.event(wait, ev).await,
                    // Events were lost (thousands of jobs): judge the started
                    // jobs by the store too, so none is waited for forever.
                    Err(RecvError::Lagged(_)) => wait.started.clear(),
                    Err(RecvError::Closed) => break,
                },
                _ = tick.tick() => {
                    let names: Vec<String> = wait
                        .pending
                        .keys()
                        .filter(|n| !wait.started.contains(*n))
                        .cloned()
                        .collect();
                    let store = self.store.clone();
                    let rows = tokio::task::spawn_blocking(move || {
                        names.iter().map(|n| store.job(n)).collect::<Result<Vec<_>, _>>()
                    })
                    .await??;
                    // A run of ours announces `Started` before it writes its
                    // end to the store, so every run behind what was just read
                    // has been announced: take those events before judging a
                    // moved slot.
                    loop {
                        match events.try_recv() {
                            Ok(ev) => self.event(wait, ev).await,
                            Err(TryRecvError::Lagged(_)) => wait.started.clear(),
                            Err(_) => break,
                        }
                    }
                    let now_ms = self.clock.now().timestamp_millis();
                    for row in rows.into_iter().flatten() {
                        wait.elsewhere(&row, &self.owner, now_ms);
                    }
                }
            }
        }
        Ok(())
    }

    async fn event(&self, wait: &mut Wait, ev: Event) {
        match ev {
            Event::Started { name, .. } => {
                wait.started.insert(name.to_string());
            }
            Event::Finished {
                name,
                outcome,
                error,
                attempt,
                needs_attention,
                ..
            } => {
                let name = name.to_string();
                if needs_attention {
                    self.shared
                        .notifications
                        .needs_attention(&name, attempt, error.clone())
                        .await;
                }
                if wait.pending.remove(&name).is_some() {
                    let kind = match outcome {
                        Outcome::Succeeded => lock(&self.shared.seen)
                            .get(&name)
                            .copied()
                            .unwrap_or(RunOutcome::Rotated),
                        _ => RunOutcome::Failed,
                    };
                    wait.results.insert(name, (kind, error));
                }
            }
            Event::Missed { name, .. } if wait.pending.remove(&*name).is_some() => {
                wait.skipped.insert(
                    name.to_string(),
                    "slot missed (catch_up = skip or past its deadline)".into(),
                );
            }
            _ => {}
        }
    }

    fn report(&self, wait: Wait) -> OnceReport {
        let summaries = lock(&self.shared.summaries).clone();
        let mut report = OnceReport {
            already_done: 0,
            due: 0,
            failed: 0,
            rotated: 0,
            runs: Vec::new(),
            skipped: 0,
            workflows: Vec::new(),
        };
        let ran = wait.results.into_iter().map(|(n, (o, e))| (n, o, e));
        let skipped = wait
            .skipped
            .into_iter()
            .map(|(n, why)| (n, RunOutcome::Skipped, Some(why)));
        // Runs first, then skips, each in name order (as printed).
        for (job, outcome, error) in ran.chain(skipped) {
            match JobKind::parse(&job) {
                Some(JobKind::Workflow(workflow)) => report.workflows.push(OnceWorkflow {
                    summary: (outcome == RunOutcome::Ran)
                        .then(|| summaries.get(&job).cloned())
                        .flatten(),
                    error,
                    job,
                    outcome,
                    workflow,
                }),
                kind => {
                    report.due += 1;
                    match outcome {
                        RunOutcome::Rotated | RunOutcome::Resumed => report.rotated += 1,
                        RunOutcome::AlreadyDone => report.already_done += 1,
                        RunOutcome::Skipped => report.skipped += 1,
                        _ => report.failed += 1,
                    }
                    let secret = kind.map_or_else(|| job.clone(), |k| k.subject().to_owned());
                    report.runs.push(OnceRun {
                        error,
                        job,
                        outcome,
                        secret,
                    });
                }
            }
        }
        report
    }
}

/// What the pass waits for and what it has seen so far.
struct Wait {
    /// Due jobs not yet settled, with the slot they were due at.
    pending: BTreeMap<String, Option<i64>>,
    /// Jobs not run here, and why.
    skipped: BTreeMap<String, String>,
    /// Jobs run here: outcome and error.
    results: BTreeMap<String, (RunOutcome, Option<String>)>,
    /// Jobs whose run started in this process.
    started: HashSet<String>,
}

impl Wait {
    /// Settles a pending job another process runs or ran.
    fn elsewhere(&mut self, row: &rota_scheduler::store::JobRow, owner: &str, now_ms: i64) {
        if self.started.contains(&row.name) {
            return;
        }
        let Some(initial) = self.pending.get(&row.name).copied() else {
            return;
        };
        let running = row
            .lease
            .as_ref()
            .is_some_and(|l| l.owner != owner && l.until_ms > now_ms);
        let moved_on = row.slot_ms != initial && row.attempts == 0;
        if running || moved_on {
            self.pending.remove(&row.name);
            self.skipped.insert(
                row.name.clone(),
                if running {
                    "running in another process".into()
                } else {
                    "run by another process".into()
                },
            );
        }
    }
}

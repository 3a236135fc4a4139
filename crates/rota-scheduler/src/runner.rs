//! The runner: an in-memory min-heap of due times over a durable store.
//!
//! One dispatcher task sleeps (on the [`Clock`]) until the earliest due time
//! or until a registration wakes it; it never scans jobs. Due jobs are
//! decided (run, catch up, or record as missed), claimed in the store with a
//! compare-and-set lease in one transaction, and started under a global
//! concurrency limit. Each run is a separate task wrapped with a timeout,
//! panic catching and cancellation; its end is written back by a finisher
//! task that batches writes (group commit) before the job is rescheduled.
//!
//! The in-memory index is compact — per job one [`Entry`] plus a heap item
//! and a name-map slot; schedules and policies are interned — and payloads
//! stay in the store: a run reads its payload when it is claimed.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::job::{CatchUp, Handler, JobRun, JobSpec, Policy, RunError};
use crate::schedule::{Schedule, ScheduleError, parse_tz};
use crate::store::{
    Claim, ClaimOutcome, Claimed, Finish, JobRow, JobStore, NewJob, Next, Outcome, Retention,
    RunRecord, RunState, Skip, StoreError,
};

/// An error from the runner.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// A job name that cannot be used.
    #[error("invalid job name `{name}`: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A job whose schedule does not parse.
    #[error("job `{name}` has an invalid schedule")]
    Schedule {
        /// The job.
        name: String,
        /// Why.
        #[source]
        source: ScheduleError,
    },
    /// A job that is not registered.
    #[error("unknown job `{name}`")]
    UnknownJob {
        /// The name as given.
        name: String,
    },
    /// The store failed.
    #[error("job store")]
    Store(#[from] StoreError),
    /// A blocking store task panicked or was cancelled.
    #[error("store task did not complete")]
    StoreTask(#[source] tokio::task::JoinError),
    /// [`Runner::start`] was called twice.
    #[error("runner already started")]
    AlreadyStarted,
}

/// Runner settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunnerConfig {
    /// This runner's identity in leases. Must be unique among live runners on
    /// one store; a *stable* id lets a restarted runner take its own leases
    /// back at once instead of waiting for them to expire.
    pub owner: String,
    /// Global limit on concurrent runs.
    pub max_concurrent: usize,
    /// How long a lease lasts unless renewed: a running job's lease is
    /// renewed every third of it (the heartbeat), so a runner that dies
    /// loses its slots this long after its last renewal, and another
    /// runner takes them over.
    pub lease_ttl: Duration,
    /// A slot whose start would be later than this after its due time counts
    /// as missed (the runner was down or busy) and follows `catch_up`.
    pub misfire_grace: Duration,
    /// Most jobs claimed in one store transaction.
    pub batch: usize,
    /// Run-history retention, applied at most every `prune_every`.
    pub retention: Retention,
    /// How often history is pruned.
    pub prune_every: Duration,
    /// Delay before retrying after a store failure.
    pub store_retry: Duration,
    /// Each job runs (or has its slot recorded as missed) at most once in
    /// this runner: its next slot, or a retry, waits for another runner.
    /// For one pass over what is due (`rota run --once`).
    pub single_pass: bool,
    /// How far the runner's clock is ahead of the real time (a single pass
    /// that runs what is due within a horizon): slots in the lookahead are
    /// due early, not missed.
    pub lookahead: Duration,
    /// Events about run ends, stored with them.
    pub run_events: Option<crate::job::RunEventsHook>,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        let r: u32 = rand::random();
        Self {
            owner: format!("runner-{}-{r:08x}", std::process::id()),
            max_concurrent: 16,
            lease_ttl: Duration::from_secs(30),
            misfire_grace: Duration::from_secs(60),
            batch: 256,
            retention: Retention::default(),
            prune_every: Duration::from_secs(600),
            store_retry: Duration::from_secs(1),
            single_pass: false,
            lookahead: Duration::ZERO,
            run_events: None,
        }
    }
}

impl RunnerConfig {
    /// Default settings with the given owner id.
    pub fn with_owner(owner: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            ..Self::default()
        }
    }

    /// Sets the concurrency limit (at least 1).
    #[must_use]
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n.max(1);
        self
    }

    /// Sets the misfire grace.
    #[must_use]
    pub fn misfire_grace(mut self, d: Duration) -> Self {
        self.misfire_grace = d;
        self
    }

    /// Sets the lease grace.
    #[must_use]
    pub fn lease_ttl(mut self, d: Duration) -> Self {
        self.lease_ttl = d.max(Duration::from_millis(300));
        self
    }

    /// Sets history retention.
    #[must_use]
    pub fn retention(mut self, r: Retention) -> Self {
        self.retention = r;
        self
    }

    /// See [`RunnerConfig::lookahead`].
    pub fn lookahead(mut self, ahead: Duration) -> Self {
        self.lookahead = ahead;
        self
    }

    /// Adds events about run ends (see [`crate::job::RunEvents`]).
    #[must_use]
    pub fn run_events(mut self, hook: Arc<dyn crate::job::RunEvents>) -> Self {
        self.run_events = Some(crate::job::RunEventsHook(hook));
        self
    }

    /// Runs each job at most once (see [`RunnerConfig::single_pass`]).
    #[must_use]
    pub fn single_pass(mut self, on: bool) -> Self {
        self.single_pass = on;
        self
    }
}

/// Something that happened, for observers (metrics, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A run started.
    Started {
        /// The job.
        name: Arc<str>,
        /// Its slot.
        slot: DateTime<Utc>,
        /// Attempt number.
        attempt: u32,
    },
    /// A run ended and its end is stored.
    Finished {
        /// The job.
        name: Arc<str>,
        /// Its slot.
        slot: DateTime<Utc>,
        /// Attempt number.
        attempt: u32,
        /// How it ended.
        outcome: Outcome,
        /// The handler's (redacted) error.
        error: Option<String>,
        /// Whether the job now needs attention.
        needs_attention: bool,
    },
    /// Slots up to `slot` were passed over and recorded as missed.
    Missed {
        /// The job.
        name: Arc<str>,
        /// The last slot passed over.
        slot: DateTime<Utc>,
    },
}

/// What [`Runner::shutdown`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Whether every run in flight finished within the grace period.
    pub drained: bool,
    /// Runs stopped at the end of the grace period, recorded as cancelled
    /// and left to be retried by the next runner.
    pub cancelled: u64,
}

/// How many of a runner's jobs are in each state, as it knows them in
/// memory ([`Runner::counts`]). A job changed by another process on the
/// same store is seen as it was when this runner last loaded or ran it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct JobCounts {
    /// Registered jobs (removed ones not counted).
    pub jobs: usize,
    /// Paused jobs.
    pub paused: usize,
    /// Jobs with a run in flight.
    pub running: usize,
    /// Jobs whose retry budget was spent and no success has followed.
    pub needs_attention: usize,
}

/// A job's state as stored.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobStatus {
    /// The job.
    pub name: String,
    /// Active or paused.
    pub state: RunState,
    /// Whether its retry budget was spent and no success has followed.
    pub needs_attention: bool,
    /// The pending slot.
    pub slot: Option<DateTime<Utc>>,
    /// When its next attempt is due.
    pub due: Option<DateTime<Utc>>,
    /// Attempts started at the pending slot.
    pub attempts: u32,
    /// The current lease holder, if any.
    pub lease_owner: Option<String>,
}

const NO_SLOT: i64 = i64::MIN;
const PAUSED: u8 = 1;
const BUSY: u8 = 2;
const ATTENTION: u8 = 4;
const REMOVED: u8 = 8;
/// Ran once in a single-pass runner: not scheduled again.
const DONE: u8 = 16;

/// One registered job in memory (48 bytes plus the shared name).
#[derive(Debug)]
struct Entry {
    name: Arc<str>,
    schedule: u32,
    policy: u32,
    slot: i64,
    due: i64,
    attempts: u32,
    flags: u8,
}

impl Entry {
    fn schedulable(&self) -> bool {
        self.flags & (PAUSED | BUSY | REMOVED | DONE) == 0 && self.slot != NO_SLOT
    }
}

#[derive(Debug, Default)]
struct Index {
    entries: Vec<Entry>,
    by_name: HashMap<Arc<str>, u32>,
    heap: BinaryHeap<Reverse<(i64, u32)>>,
    schedules: Vec<Arc<Schedule>>,
    schedule_ids: HashMap<(Box<str>, Tz), u32>,
    policies: Vec<Arc<Policy>>,
    policy_ids: HashMap<Policy, u32>,
}

/// A due job taken off the heap, with what is needed to decide about it.
struct Popped {
    idx: u32,
    name: Arc<str>,
    schedule: Arc<Schedule>,
    policy: Arc<Policy>,
    slot: i64,
    due: i64,
    attempts: u32,
}

impl Index {
    fn intern_schedule(&mut self, schedule: Schedule) -> u32 {
        let key = (Box::<str>::from(schedule.expr()), schedule.tz());
        if let Some(id) = self.schedule_ids.get(&key) {
            return *id;
        }
        let id = u32::try_from(self.schedules.len()).unwrap_or(u32::MAX);
        self.schedules.push(Arc::new(schedule));
        self.schedule_ids.insert(key, id);
        id
    }

    fn schedule_id(&self, expr: &str, tz: Tz) -> Option<u32> {
        self.schedule_ids
            .get(&(Box::<str>::from(expr.trim()), tz))
            .copied()
    }

    fn intern_policy(&mut self, policy: &Policy) -> u32 {
        if let Some(id) = self.policy_ids.get(policy) {
            return *id;
        }
        let id = u32::try_from(self.policies.len()).unwrap_or(u32::MAX);
        self.policies.push(Arc::new(policy.clone()));
        self.policy_ids.insert(policy.clone(), id);
        id
    }

    fn push(&mut self, idx: u32) {
        let e = &self.entries[idx as usize];
        if e.schedulable() {
            self.heap.push(Reverse((e.due, idx)));
        }
    }

    /// Inserts or refreshes the entry for `row` (whose schedule is interned
    /// as `schedule`) and schedules it.
    ///
    /// A lease held by `me` never delays the job: this process runs at most
    /// one attempt of a job at a time (the BUSY flag), so a lease of ours on
    /// a job that is not BUSY is left over from a crash or a failed write.
    fn apply_row(&mut self, row: &JobRow, schedule: u32, me: &str) -> u32 {
        let policy = self.intern_policy(&row.policy);
        let mut flags = 0;
        if row.state == RunState::Paused {
            flags |= PAUSED;
        }
        if row.needs_attention {
            flags |= ATTENTION;
        }
        let slot = row.slot_ms.unwrap_or(NO_SLOT);
        let mut due = row.due_ms.or(row.slot_ms).unwrap_or(NO_SLOT);
        // A lease held by someone else: look again when it expires.
        if let Some(lease) = row.lease.as_ref().filter(|l| l.owner != me) {
            due = due.max(lease.until_ms);
        }
        let idx = match self.by_name.get(row.name.as_str()) {
            Some(idx) => {
                let e = &mut self.entries[*idx as usize];
                e.schedule = schedule;
                e.policy = policy;
                e.slot = slot;
                e.due = due;
                e.attempts = row.attempts;
                e.flags = flags;
                *idx
            }
            None => {
                let idx = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
                let name: Arc<str> = Arc::from(row.name.as_str());
                self.entries.push(Entry {
                    name: Arc::clone(&name),
                    schedule,
                    policy,
                    slot,
                    due,
                    attempts: row.attempts,
                    flags,
                });
                self.by_name.insert(name, idx);
                idx
            }
        };
        self.push(idx);
        idx
    }

    fn pop_due(&mut self, now_ms: i64, max: usize) -> Vec<Popped> {
        let mut out = Vec::new();
        while out.len() < max {
            let Some(Reverse((due, idx))) = self.heap.peek().copied() else {
                break;
            };
            if due > now_ms {
                break;
            }
            self.heap.pop();
            let e = &mut self.entries[idx as usize];
            if e.due != due || !e.schedulable() {
                continue; // stale heap item
            }
            e.flags |= BUSY;
            out.push(Popped {
                idx,
                name: Arc::clone(&e.name),
                schedule: Arc::clone(&self.schedules[e.schedule as usize]),
                policy: Arc::clone(&self.policies[e.policy as usize]),
                slot: e.slot,
                due: e.due,
                attempts: e.attempts,
            });
        }
        out
    }

    /// The earliest due time of a schedulable entry, dropping stale items.
    fn next_due(&mut self) -> Option<i64> {
        while let Some(Reverse((due, idx))) = self.heap.peek().copied() {
            let e = &self.entries[idx as usize];
            if e.due == due && e.schedulable() {
                return Some(due);
            }
            self.heap.pop();
        }
        None
    }

    /// Stores a job's new pending work, clears BUSY and reschedules it.
    fn settle(&mut self, idx: u32, next: Next) {
        let e = &mut self.entries[idx as usize];
        e.slot = next.slot_ms.unwrap_or(NO_SLOT);
        e.due = next.due_ms.unwrap_or(NO_SLOT);
        e.attempts = next.attempts;
        if next.needs_attention {
            e.flags |= ATTENTION;
        } else {
            e.flags &= !ATTENTION;
        }
        e.flags &= !BUSY;
        self.push(idx);
    }

    /// [`Self::apply_row`] for a row read after another process changed
    /// the jobs: an entry running here is left alone (its end is stored by
    /// this runner).
    fn sync_row(&mut self, row: &JobRow, schedule: u32, me: &str) {
        if let Some(idx) = self.by_name.get(row.name.as_str())
            && self.entries[*idx as usize].flags & (BUSY | DONE) != 0
        {
            return;
        }
        self.apply_row(row, schedule, me);
    }

    /// Unschedules the entries whose job is no longer in the store (unless
    /// running here).
    fn remove_missing(&mut self, present: &std::collections::HashSet<String>) {
        for e in &mut self.entries {
            if !present.contains(&*e.name) && e.flags & BUSY == 0 {
                e.flags |= REMOVED;
            }
        }
    }

    /// Clears BUSY and retries at `due` (after a store failure).
    fn release(&mut self, idx: u32, due: i64) {
        let e = &mut self.entries[idx as usize];
        e.flags &= !BUSY;
        e.due = due;
        self.push(idx);
    }
}

/// A finished run on its way to the store; its permit is released only once
/// the end is durable.
struct Done {
    idx: u32,
    name: Arc<str>,
    slot: i64,
    attempt: u32,
    finish: Finish,
    _permit: OwnedSemaphorePermit,
}

struct Inner {
    store: Arc<dyn JobStore>,
    clock: Arc<dyn Clock>,
    handler: Arc<dyn Handler>,
    config: RunnerConfig,
    index: Mutex<Index>,
    wake: Notify,
    permits: Arc<Semaphore>,
    stop: watch::Sender<bool>,
    cancel: watch::Sender<bool>,
    events: broadcast::Sender<Event>,
    done_tx: mpsc::UnboundedSender<Done>,
    done_rx: Mutex<Option<mpsc::UnboundedReceiver<Done>>>,
    started: AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    cancelled: AtomicU64,
    last_prune_ms: AtomicU64,
    /// The leases of the runs in flight, renewed by the heartbeat.
    running: Mutex<HashMap<Arc<str>, crate::job::RunLease>>,
    /// Store operations that failed in a row (the retry backs off).
    store_failures: std::sync::atomic::AtomicU32,
}

/// A durable scheduler over a [`JobStore`]. Cheap to clone.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use rota_scheduler::{JobSpec, RunError, Runner, RunnerConfig, SqliteStore, SystemClock};
///
/// let store = Arc::new(SqliteStore::open("scheduler.db")?);
/// let runner = Runner::new(store, Arc::new(SystemClock::new()), RunnerConfig::with_owner("node-1"),
///     |run: rota_scheduler::JobRun| async move {
///         tracing::info!(job = %run.name, "rotating");
///         Ok::<(), RunError>(())
///     });
/// runner.register(JobSpec::new("rotation/db", "0 3 * * *")
///     .tz("Europe/Berlin".parse()?)).await?;
/// runner.start().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("owner", &self.inner.config.owner)
            .finish_non_exhaustive()
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn dur_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The first slot after `after` and when it is due, for a job called `name`.
fn advance(
    schedule: &Schedule,
    policy: &Policy,
    name: &str,
    after: i64,
) -> (Option<i64>, Option<i64>) {
    let slot = schedule.next_fire(at(after)).map(ms);
    (slot, slot.map(|s| s + policy.jitter_offset_ms(name)))
}

fn validate_name(name: &str) -> Result<(), RunnerError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > 512 {
        "longer than 512 bytes"
    } else if name.chars().any(char::is_control) {
        "contains control characters"
    } else {
        return Ok(());
    };
    Err(RunnerError::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

async fn blocking<T, F>(f: F) -> Result<T, RunnerError>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(RunnerError::StoreTask)?
        .map_err(RunnerError::Store)
}

/// What the dispatcher decided about one due job.
enum Decision {
    Run {
        run_slot: i64,
    },
    Skip {
        missed: i64,
        next: Next,
        reason: String,
    },
}

impl Runner {
    /// A runner over `store`, taking time from `clock`, running `handler`.
    pub fn new(
        store: Arc<dyn JobStore>,
        clock: Arc<dyn Clock>,
        config: RunnerConfig,
        handler: impl Handler,
    ) -> Self {
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let max = config.max_concurrent.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            inner: Arc::new(Inner {
                store,
                clock,
                handler: Arc::new(handler),
                config,
                index: Mutex::new(Index::default()),
                wake: Notify::new(),
                permits: Arc::new(Semaphore::new(max)),
                stop: watch::Sender::new(false),
                cancel: watch::Sender::new(false),
                events: broadcast::channel(4096).0,
                done_tx,
                done_rx: Mutex::new(Some(done_rx)),
                started: AtomicBool::new(false),
                tasks: Mutex::new(Vec::new()),
                cancelled: AtomicU64::new(0),
                last_prune_ms: AtomicU64::new(0),
                running: Mutex::new(HashMap::new()),
                store_failures: std::sync::atomic::AtomicU32::new(0),
            }),
        }
    }

    /// This runner's owner id.
    pub fn owner(&self) -> &str {
        &self.inner.config.owner
    }

    /// Events from now on. Slow receivers lose the oldest events.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Number of jobs in memory.
    pub fn len(&self) -> usize {
        self.inner.index().entries.len()
    }

    /// Whether no job is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many jobs are in each state, from memory (no store access): one
    /// pass over the jobs, cheap enough for every health check or scrape.
    /// Whether the last attempt to reach the store worked (a shared store
    /// that went away: nothing new starts until it answers).
    pub fn store_up(&self) -> bool {
        self.inner.store.is_up()
    }

    /// The runner's counts of its jobs (in this process's view).
    pub fn counts(&self) -> JobCounts {
        let index = self.inner.index();
        let mut c = JobCounts::default();
        for e in index.entries.iter().filter(|e| e.flags & REMOVED == 0) {
            c.jobs += 1;
            c.paused += usize::from(e.flags & PAUSED != 0);
            c.running += usize::from(e.flags & BUSY != 0);
            c.needs_attention += usize::from(e.flags & ATTENTION != 0);
        }
        c
    }

    /// Whether [`Runner::shutdown`] has begun: no new run starts.
    pub fn is_stopping(&self) -> bool {
        *self.inner.stop.borrow()
    }

    /// Registers (or updates) one job. See [`Runner::register_many`].
    ///
    /// # Errors
    ///
    /// An invalid name or schedule, or a store failure.
    pub async fn register(&self, spec: JobSpec) -> Result<(), RunnerError> {
        self.register_many(vec![spec]).await
    }

    /// Registers or updates jobs, durably, in batches. A job already in the
    /// store keeps its pending slot, attempts, state and history unless its
    /// schedule or time zone changed; a new job's first slot is the first
    /// fire time after now, or now itself with [`JobSpec::start_now`]. All
    /// specs are validated before anything is written.
    ///
    /// # Errors
    ///
    /// An invalid name or schedule (nothing is written), or a store failure
    /// (earlier batches may be written).
    pub async fn register_many(&self, specs: Vec<JobSpec>) -> Result<(), RunnerError> {
        const CHUNK: usize = 20_000;
        let now = self.inner.clock.now();
        // Validate and intern everything first.
        let mut prepared: Vec<(NewJob, u32)> = Vec::with_capacity(specs.len());
        {
            let mut index = self.inner.index();
            for spec in specs {
                validate_name(&spec.name)?;
                let sid = match index.schedule_id(&spec.schedule, spec.tz) {
                    Some(id) => id,
                    None => {
                        let schedule =
                            Schedule::parse(&spec.schedule, spec.tz).map_err(|source| {
                                RunnerError::Schedule {
                                    name: spec.name.clone(),
                                    source,
                                }
                            })?;
                        index.intern_schedule(schedule)
                    }
                };
                let schedule = &index.schedules[sid as usize];
                let (slot_ms, due_ms) = advance(schedule, &spec.policy, &spec.name, ms(now));
                let new = NewJob {
                    schedule: schedule.expr().to_owned(),
                    tz: spec.tz.name().to_owned(),
                    payload: spec.payload.to_string(),
                    policy: spec.policy,
                    slot_ms,
                    due_ms,
                    start_now: spec.start_now,
                    name: spec.name,
                };
                prepared.push((new, sid));
            }
            let extra = prepared
                .len()
                .saturating_sub(index.entries.capacity() - index.entries.len());
            index.entries.reserve_exact(extra);
            index.by_name.reserve(prepared.len());
        }
        let mut rest = prepared;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(CHUNK));
            let chunk = std::mem::replace(&mut rest, tail);
            let (jobs, sids): (Vec<NewJob>, Vec<u32>) = chunk.into_iter().unzip();
            let store = Arc::clone(&self.inner.store);
            let now_ms = ms(now);
            let rows = blocking(move || store.upsert(&jobs, now_ms)).await?;
            let mut index = self.inner.index();
            for (row, sid) in rows.iter().zip(sids) {
                if let Some(&idx) = index.by_name.get(row.name.as_str())
                    && index.entries[idx as usize].flags & BUSY != 0
                {
                    // A run is in flight; its finish reschedules the job.
                    continue;
                }
                index.apply_row(row, sid, &self.inner.config.owner);
            }
        }
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Loads every job in the store into memory (jobs registered by earlier
    /// runs or other processes) and starts dispatching. Call once, inside a
    /// tokio runtime.
    ///
    /// # Errors
    ///
    /// [`RunnerError::AlreadyStarted`], or a store failure while loading.
    pub async fn start(&self) -> Result<(), RunnerError> {
        if self.inner.started.swap(true, Ordering::SeqCst) {
            return Err(RunnerError::AlreadyStarted);
        }
        let store = Arc::clone(&self.inner.store);
        let rows = blocking(move || store.jobs()).await?;
        {
            let mut index = self.inner.index();
            for row in &rows {
                let Ok(tz) = parse_tz(&row.tz) else {
                    tracing::error!(job.name = %row.name, tz = %row.tz, "stored job has an unknown time zone; not scheduled");
                    continue;
                };
                let sid = match index.schedule_id(&row.schedule, tz) {
                    Some(id) => id,
                    None => match Schedule::parse(&row.schedule, tz) {
                        Ok(s) => index.intern_schedule(s),
                        Err(error) => {
                            tracing::error!(job.name = %row.name, %error, "stored job has an invalid schedule; not scheduled");
                            continue;
                        }
                    },
                };
                index.apply_row(row, sid, &self.inner.config.owner);
            }
        }
        tracing::info!(runner.owner = %self.inner.config.owner, jobs = rows.len(), "scheduler started");
        let rx = self.inner.done_rx.lock().ok().and_then(|mut g| g.take());
        let mut tasks = Vec::new();
        if let Some(rx) = rx {
            tasks.push(tokio::spawn(finisher(Arc::clone(&self.inner), rx)));
        }
        tasks.push(tokio::spawn(dispatcher(Arc::clone(&self.inner))));
        tasks.push(tokio::spawn(heartbeat(Arc::clone(&self.inner))));
        if let Some(changes) = self.inner.store.changes() {
            tasks.push(tokio::spawn(follow_changes(
                Arc::clone(&self.inner),
                changes,
            )));
        }
        if let Ok(mut g) = self.inner.tasks.lock() {
            g.extend(tasks);
        }
        Ok(())
    }

    /// Pauses a job: it does not run until resumed (a run in flight finishes).
    ///
    /// # Errors
    ///
    /// [`RunnerError::UnknownJob`] or a store failure.
    pub async fn pause(&self, name: &str) -> Result<(), RunnerError> {
        let store = Arc::clone(&self.inner.store);
        let owned = name.to_owned();
        if !blocking(move || store.set_state(&owned, RunState::Paused, None)).await? {
            return Err(RunnerError::UnknownJob {
                name: name.to_owned(),
            });
        }
        let mut index = self.inner.index();
        if let Some(&idx) = index.by_name.get(name) {
            index.entries[idx as usize].flags |= PAUSED;
        }
        Ok(())
    }

    /// Resumes a paused job from its next slot after now; slots that passed
    /// while it was paused are not caught up.
    ///
    /// # Errors
    ///
    /// [`RunnerError::UnknownJob`] or a store failure.
    pub async fn resume(&self, name: &str) -> Result<(), RunnerError> {
        let (next, idx) = {
            let index = self.inner.index();
            let Some(&idx) = index.by_name.get(name) else {
                return Err(RunnerError::UnknownJob {
                    name: name.to_owned(),
                });
            };
            let e = &index.entries[idx as usize];
            let next = if e.flags & BUSY != 0 {
                None
            } else {
                let schedule = &index.schedules[e.schedule as usize];
                let policy = &index.policies[e.policy as usize];
                let (slot_ms, due_ms) = advance(schedule, policy, name, ms(self.inner.clock.now()));
                Some(Next {
                    slot_ms,
                    due_ms,
                    attempts: 0,
                    needs_attention: e.flags & ATTENTION != 0,
                })
            };
            (next, idx)
        };
        let store = Arc::clone(&self.inner.store);
        let owned = name.to_owned();
        if !blocking(move || store.set_state(&owned, RunState::Active, next)).await? {
            return Err(RunnerError::UnknownJob {
                name: name.to_owned(),
            });
        }
        let mut index = self.inner.index();
        index.entries[idx as usize].flags &= !PAUSED;
        if let Some(next) = next {
            index.entries[idx as usize].flags |= BUSY;
            index.settle(idx, next);
        }
        drop(index);
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Clears *needs attention* and the attempt count of a job.
    ///
    /// # Errors
    ///
    /// [`RunnerError::UnknownJob`] or a store failure.
    pub async fn reset(&self, name: &str) -> Result<(), RunnerError> {
        let store = Arc::clone(&self.inner.store);
        let owned = name.to_owned();
        if !blocking(move || store.reset(&owned)).await? {
            return Err(RunnerError::UnknownJob {
                name: name.to_owned(),
            });
        }
        let mut index = self.inner.index();
        if let Some(&idx) = index.by_name.get(name) {
            let e = &mut index.entries[idx as usize];
            e.flags &= !ATTENTION;
            if e.flags & BUSY == 0 {
                e.attempts = 0;
            }
        }
        Ok(())
    }

    /// Removes a job from the store and from this runner.
    ///
    /// # Errors
    ///
    /// [`RunnerError::UnknownJob`] or a store failure.
    pub async fn remove(&self, name: &str) -> Result<(), RunnerError> {
        let store = Arc::clone(&self.inner.store);
        let owned = name.to_owned();
        if !blocking(move || store.remove(&owned)).await? {
            return Err(RunnerError::UnknownJob {
                name: name.to_owned(),
            });
        }
        let mut index = self.inner.index();
        if let Some(&idx) = index.by_name.get(name) {
            index.entries[idx as usize].flags |= REMOVED;
        }
        Ok(())
    }

    /// A job's stored state.
    ///
    /// # Errors
    ///
    /// [`RunnerError::UnknownJob`] or a store failure.
    pub async fn status(&self, name: &str) -> Result<JobStatus, RunnerError> {
        let store = Arc::clone(&self.inner.store);
        let owned = name.to_owned();
        let row =
            blocking(move || store.job(&owned))
                .await?
                .ok_or_else(|| RunnerError::UnknownJob {
                    name: name.to_owned(),
                })?;
        Ok(JobStatus {
            name: row.name,
            state: row.state,
            needs_attention: row.needs_attention,
            slot: row.slot_ms.map(at),
            due: row.due_ms.map(at),
            attempts: row.attempts,
            lease_owner: row.lease.map(|l| l.owner),
        })
    }

    /// The newest `limit` history rows of a job, newest first.
    ///
    /// # Errors
    ///
    /// A store failure.
    pub async fn history(&self, name: &str, limit: u32) -> Result<Vec<RunRecord>, RunnerError> {
        let store = Arc::clone(&self.inner.store);
        let owned = name.to_owned();
        blocking(move || store.runs(&owned, limit)).await
    }

    /// Applies history retention now; returns the rows dropped.
    ///
    /// # Errors
    ///
    /// A store failure.
    pub async fn prune(&self) -> Result<u64, RunnerError> {
        let store = Arc::clone(&self.inner.store);
        let retention = self.inner.config.retention;
        let now = ms(self.inner.clock.now());
        blocking(move || store.prune(retention, now)).await
    }

    /// Stops dispatching, lets runs in flight finish for up to `grace` (on
    /// the runner's clock), then cancels the rest: they are recorded as
    /// cancelled, their leases released, and the next runner retries them.
    pub async fn shutdown(&self, grace: Duration) -> ShutdownReport {
        let inner = &self.inner;
        inner.stop.send_replace(true);
        inner.wake.notify_one();
        let max = u32::try_from(inner.config.max_concurrent.clamp(1, Semaphore::MAX_PERMITS))
            .unwrap_or(u32::MAX);
        let deadline = inner.clock.now() + chrono::Duration::from_std(grace).unwrap_or_default();
        let drained = tokio::select! {
            all = inner.permits.acquire_many(max) => { drop(all); true }
            () = inner.clock.sleep_until(deadline) => false,
        };
        if !drained {
            inner.cancel.send_replace(true);
            // Cancelled runs end at once and release their permits when
            // their end is stored.
            drop(inner.permits.acquire_many(max).await);
        }
        let tasks: Vec<JoinHandle<()>> = inner
            .tasks
            .lock()
            .map(|mut g| g.drain(..).collect())
            .unwrap_or_default();
        for task in tasks {
            task.abort();
        }
        let report = ShutdownReport {
            drained,
            cancelled: inner.cancelled.load(Ordering::SeqCst),
        };
        tracing::info!(runner.owner = %inner.config.owner, drained, cancelled = report.cancelled, "scheduler stopped");
        report
    }
}

impl Inner {
    /// How long to wait before touching the store again after a failure:
    /// `store_retry`, doubling with each failure in a row, at most 30 s.
    fn store_backoff(&self) -> Duration {
        let n = self.store_failures.fetch_add(1, Ordering::SeqCst).min(5);
        (self.config.store_retry * 2u32.pow(n)).min(Duration::from_secs(30))
    }

    fn store_ok(&self) {
        self.store_failures.store(0, Ordering::SeqCst);
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        // A panic while holding the lock cannot leave the index inconsistent
        // enough to matter: every mutation is a few field writes.
        self.index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn emit(&self, event: Event) {
        // No receivers is fine.
        let _ = self.events.send(event);
    }

    fn decide(&self, p: &Popped, now_ms: i64) -> Decision {
        let policy = &p.policy;
        if p.attempts > 0 {
            // A retry, or a run interrupted by a crash: same slot again.
            return Decision::Run { run_slot: p.slot };
        }
        let offset = policy.jitter_offset_ms(&p.name);
        let deadline = policy.effective_deadline().map(dur_ms);
        // The latest slot due by `at_ms`: later than the pending one when a
        // whole period (or more) passed without a run.
        let latest_by = |at_ms: i64| {
            ms(p.schedule
                .latest_fire_between(at(p.slot), at((at_ms - offset).max(p.slot))))
        };
        // Missed: a later slot passed too, whatever the outage's length, or
        // the pending slot is later than the misfire grace. Slots within
        // the lookahead (`rota run --once --all-due-within`) are not
        // missed: they are due early on purpose.
        let real_now = now_ms - dur_ms(self.config.lookahead);
        let late =
            latest_by(real_now) > p.slot || now_ms - p.due > dur_ms(self.config.misfire_grace);
        let latest = if late { latest_by(now_ms) } else { p.slot };
        let run_slot = if late {
            // Collapse every passed slot into the latest one that is due.
            if policy.catch_up == CatchUp::Skip {
                let (slot_ms, due_ms) = advance(&p.schedule, policy, &p.name, latest);
                return Decision::Skip {
                    missed: latest,
                    next: Next {
                        slot_ms,
                        due_ms,
                        attempts: 0,
                        needs_attention: false,
                    },
                    reason: "slots passed while no runner was up (catch_up = skip)".to_owned(),
                };
            }
            latest
        } else {
            p.slot
        };
        if let Some(deadline) = deadline
            && now_ms > run_slot.saturating_add(deadline)
        {
            let (slot_ms, due_ms) = advance(&p.schedule, policy, &p.name, run_slot);
            return Decision::Skip {
                missed: run_slot,
                next: Next {
                    slot_ms,
                    due_ms,
                    attempts: 0,
                    needs_attention: false,
                },
                reason: "not started before its deadline".to_owned(),
            };
        }
        Decision::Run { run_slot }
    }
}

async fn dispatcher(inner: Arc<Inner>) {
    let mut stop = inner.stop.subscribe();
    loop {
        if *stop.borrow_and_update() {
            break;
        }
        let first = tokio::select! {
            p = Arc::clone(&inner.permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        let mut permits = vec![first];
        let want = inner.config.batch.max(1);
        while permits.len() < want {
            match Arc::clone(&inner.permits).try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        let now = inner.clock.now();
        let (popped, next_due) = {
            let mut index = inner.index();
            let popped = index.pop_due(ms(now), permits.len());
            let next = if popped.is_empty() {
                index.next_due()
            } else {
                None
            };
            (popped, next)
        };
        if popped.is_empty() {
            drop(permits);
            let sleep = next_due.map(|due| inner.clock.sleep_until(at(due)));
            tokio::select! {
                () = async { match sleep { Some(s) => s.await, None => std::future::pending().await } } => {}
                () = inner.wake.notified() => {}
                _ = stop.changed() => break,
            }
            continue;
        }
        permits.truncate(popped.len());
        process(&inner, popped, permits, ms(now)).await;
    }
}

/// Renews the leases of the runs in flight every third of the lease TTL.
/// A lease the store no longer gives this runner is marked lost (the run's
/// handler sees it through [`crate::job::RunLease::held`]); one the store
/// could not be asked about simply runs out.
async fn heartbeat(inner: Arc<Inner>) {
    let mut stop = inner.stop.subscribe();
    let every = inner.config.lease_ttl / 3;
    loop {
        let next = inner.clock.now() + chrono::Duration::from_std(every).unwrap_or_default();
        tokio::select! {
            () = inner.clock.sleep_until(next) => {}
            _ = stop.changed() => return,
        }
        let leases: Vec<(Arc<str>, crate::job::RunLease)> = inner
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(n, l)| (Arc::clone(n), l.clone()))
            .collect();
        if leases.is_empty() {
            continue;
        }
        let names: Vec<String> = leases.iter().map(|(n, _)| n.to_string()).collect();
        let until = ms(inner.clock.now()).saturating_add(dur_ms(inner.config.lease_ttl));
        let store = Arc::clone(&inner.store);
        let owner = inner.config.owner.clone();
        match blocking(move || store.renew(&names, &owner, until)).await {
            Ok(renewed) => {
                for ((name, lease), ok) in leases.iter().zip(renewed) {
                    if ok {
                        lease.extend(until);
                    } else {
                        tracing::warn!(job.name = %name, "the lease was taken over: this runner will not finish the run");
                        lease.lose();
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, runs = leases.len(), "cannot renew the leases of running jobs; they run out unless the store answers");
            }
        }
    }
}

/// Reads the jobs again whenever another process announces a change, so a
/// job registered or rescheduled elsewhere runs here too (and one removed
/// elsewhere stops).
async fn follow_changes(inner: Arc<Inner>, mut changes: broadcast::Receiver<Option<String>>) {
    let mut stop = inner.stop.subscribe();
    loop {
        let msg = tokio::select! {
            m = changes.recv() => m,
            _ = stop.changed() => return,
        };
        if matches!(msg, Err(broadcast::error::RecvError::Closed)) {
            return;
        }
        // Coalesce a burst into one read.
        while changes.try_recv().is_ok() {}
        let store = Arc::clone(&inner.store);
        let rows = match blocking(move || store.jobs()).await {
            Ok(rows) => rows,
            Err(error) => {
                tracing::debug!(%error, "cannot read the jobs after a change notice");
                continue;
            }
        };
        let mut index = inner.index();
        let mut present = std::collections::HashSet::new();
        for row in &rows {
            present.insert(row.name.clone());
            let Ok(tz) = parse_tz(&row.tz) else { continue };
            let sid = match index.schedule_id(&row.schedule, tz) {
                Some(id) => id,
                None => match Schedule::parse(&row.schedule, tz) {
                    Ok(sch) => index.intern_schedule(sch),
                    Err(_) => continue,
                },
            };
            index.sync_row(row, sid, &inner.config.owner);
        }
        index.remove_missing(&present);
        drop(index);
        inner.wake.notify_one();
    }
}

async fn process(
    inner: &Arc<Inner>,
    popped: Vec<Popped>,
    permits: Vec<OwnedSemaphorePermit>,
    now_ms: i64,
) {
    let owner = inner.config.owner.clone();
    let ttl = dur_ms(inner.config.lease_ttl);
    let mut claims = Vec::new();
    let mut skips = Vec::new();
    let mut to_run = Vec::new();
    let mut to_skip = Vec::new();
    for p in popped {
        match inner.decide(&p, now_ms) {
            Decision::Run { run_slot } => {
                claims.push(Claim {
                    name: p.name.to_string(),
                    slot_ms: p.slot,
                    attempts: p.attempts,
                    run_slot_ms: run_slot,
                    lease_until_ms: now_ms.saturating_add(ttl),
                });
                to_run.push((p, run_slot));
            }
            Decision::Skip {
                missed,
                next,
                reason,
            } => {
                skips.push(Skip {
                    name: p.name.to_string(),
                    slot_ms: p.slot,
                    attempts: p.attempts,
                    missed_slot_ms: missed,
                    reason,
                    next,
                });
                to_skip.push((p, missed, next));
            }
        }
    }
    let store = Arc::clone(&inner.store);
    let result = blocking(move || {
        let skipped = if skips.is_empty() {
            Vec::new()
        } else {
            store.skip(&skips, &owner, now_ms)?
        };
        let mut reloads = Vec::new();
        for (s, ok) in skips.iter().zip(&skipped) {
            reloads.push(if *ok { None } else { store.job(&s.name)? });
        }
        let claimed = if claims.is_empty() {
            Vec::new()
        } else {
            store.claim(&claims, &owner, now_ms)?
        };
        Ok((skipped, reloads, claimed))
    })
    .await;
    let (skipped, reloads, claimed) = match result {
        Ok(r) => {
            inner.store_ok();
            r
        }
        Err(error) => {
            let retry = now_ms.saturating_add(dur_ms(inner.store_backoff()));
            tracing::error!(%error, retry_at = %at(retry), "claiming due jobs failed: nothing new starts until the store answers");
            let mut index = inner.index();
            for (p, _) in &to_run {
                index.release(p.idx, retry);
            }
            for (p, _, _) in &to_skip {
                index.release(p.idx, retry);
            }
            return;
        }
    };
    {
        let mut index = inner.index();
        for (((p, missed, next), ok), reload) in to_skip.iter().zip(&skipped).zip(&reloads) {
            if *ok {
                tracing::info!(job.name = %p.name, job.slot = %at(*missed), "slot missed");
                inner.emit(Event::Missed {
                    name: Arc::clone(&p.name),
                    slot: at(*missed),
                });
                index.settle(p.idx, *next);
                if inner.config.single_pass {
                    index.entries[p.idx as usize].flags |= DONE;
                }
            } else {
                refresh(&mut index, p, reload.as_ref(), &inner.config.owner);
            }
        }
    }
    let mut permits = permits.into_iter();
    for ((p, run_slot), outcome) in to_run.into_iter().zip(claimed) {
        match outcome {
            ClaimOutcome::Claimed(c) => {
                let Some(permit) = permits.next() else { break };
                tokio::spawn(run(Arc::clone(inner), p, run_slot, c, permit));
            }
            ClaimOutcome::Lost(row) => {
                let mut index = inner.index();
                refresh(&mut index, &p, row.as_deref(), &inner.config.owner);
            }
        }
    }
    inner.wake.notify_one();
}

/// Brings an entry in line with the stored row after a lost compare-and-set.
fn refresh(index: &mut Index, p: &Popped, row: Option<&JobRow>, me: &str) {
    match row {
        Some(row) => {
            let sid = index.entries[p.idx as usize].schedule;
            index.entries[p.idx as usize].flags &= !BUSY;
            index.apply_row(row, sid, me);
        }
        None => {
            let e = &mut index.entries[p.idx as usize];
            e.flags = (e.flags & !BUSY) | REMOVED;
        }
    }
}

async fn run(
    inner: Arc<Inner>,
    p: Popped,
    run_slot: i64,
    claimed: Claimed,
    permit: OwnedSemaphorePermit,
) {
    let payload = serde_json::from_str(&claimed.payload).unwrap_or(serde_json::Value::Null);
    let lease = crate::job::RunLease::new(
        ms(inner.clock.now()).saturating_add(dur_ms(inner.config.lease_ttl)),
        Arc::clone(&inner.clock),
    );
    inner
        .running
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(Arc::clone(&p.name), lease.clone());
    let events = crate::job::EventBuffer::default();
    let job_run = JobRun {
        name: Arc::clone(&p.name),
        slot: at(run_slot),
        attempt: claimed.attempt,
        due: at(p.due),
        payload: payload.clone(),
        lease,
        events: events.clone(),
    };
    let started = inner.clock.now();
    tracing::info!(job.name = %p.name, job.slot = %at(run_slot), job.attempt = claimed.attempt, "run started");
    inner.emit(Event::Started {
        name: Arc::clone(&p.name),
        slot: at(run_slot),
        attempt: claimed.attempt,
    });
    let timeout = chrono::Duration::from_std(p.policy.timeout).unwrap_or(chrono::Duration::MAX);
    let mut task = tokio::spawn(inner.handler.call(job_run));
    let mut cancel = inner.cancel.subscribe();
    let result: Result<(), Option<RunError>> = tokio::select! {
        joined = &mut task => match joined {
            Ok(r) => r.map_err(Some),
            Err(e) if e.is_panic() => Err(Some(RunError::retryable("handler panicked"))),
            Err(_) => Err(Some(RunError::retryable("handler task was cancelled"))),
        },
        () = inner.clock.sleep_until(started + timeout) => {
            task.abort();
            Err(Some(RunError::retryable(format!("timed out after {}s", p.policy.timeout.as_secs()))))
        }
        _ = cancel.wait_for(|c| *c) => {
            task.abort();
            Err(None)
        }
    };
    inner
        .running
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&p.name);
    let now = ms(inner.clock.now());
    let was_attention = inner.index().entries[p.idx as usize].flags & ATTENTION != 0;
    let advanced = || advance(&p.schedule, &p.policy, &p.name, run_slot);
    let (outcome, error, next) = match result {
        Ok(()) => {
            let (slot_ms, due_ms) = advanced();
            (
                Outcome::Succeeded,
                None,
                Next {
                    slot_ms,
                    due_ms,
                    attempts: 0,
                    needs_attention: false,
                },
            )
        }
        Err(None) => {
            inner.cancelled.fetch_add(1, Ordering::SeqCst);
            (
                Outcome::Cancelled,
                Some("runner shut down before the run ended".to_owned()),
                Next {
                    slot_ms: Some(run_slot),
                    due_ms: Some(p.due),
                    attempts: claimed.attempt,
                    needs_attention: was_attention,
                },
            )
        }
        Err(Some(e)) => {
            let budget_left = claimed.attempt < p.policy.retry.max_attempts;
            if e.is_retryable() && budget_left {
                let wait = dur_ms(p.policy.retry.backoff(claimed.attempt, rand::random()));
                (
                    Outcome::Failed,
                    Some(e.message().to_owned()),
                    Next {
                        slot_ms: Some(run_slot),
                        due_ms: Some(now.saturating_add(wait)),
                        attempts: claimed.attempt,
                        needs_attention: was_attention,
                    },
                )
            } else {
                tracing::warn!(job.name = %p.name, job.slot = %at(run_slot), "retry budget spent; job needs attention");
                let (slot_ms, due_ms) = advanced();
                (
                    Outcome::Failed,
                    Some(e.message().to_owned()),
                    Next {
                        slot_ms,
                        due_ms,
                        attempts: 0,
                        needs_attention: true,
                    },
                )
            }
        }
    };
    let mut events = events.take();
    if let Some(hook) = &inner.config.run_events {
        events.extend(hook.0.ended(&crate::job::RunEnd {
            name: &p.name,
            slot: at(run_slot),
            attempt: claimed.attempt,
            outcome,
            error: error.as_deref(),
            was_attention,
            needs_attention: next.needs_attention,
            payload: &payload,
            ended: at(now),
        }));
    }
    let done = Done {
        idx: p.idx,
        name: Arc::clone(&p.name),
        slot: run_slot,
        attempt: claimed.attempt,
        finish: Finish {
            name: p.name.to_string(),
            run_id: claimed.run_id,
            owner: inner.config.owner.clone(),
            outcome,
            error,
            ended_ms: now,
            next,
            events,
        },
        _permit: permit,
    };
    if inner.done_tx.send(done).is_err() {
        tracing::error!(job.name = %p.name, "finisher is gone; run end not stored");
    }
}

async fn finisher(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Done>) {
    const MAX_BATCH: usize = 512;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
        }
        let finishes: Vec<Finish> = batch.iter().map(|d| d.finish.clone()).collect();
        let now_ms = ms(inner.clock.now());
        let prune_due = {
            let last = i64::try_from(inner.last_prune_ms.load(Ordering::Relaxed)).unwrap_or(0);
            now_ms - last >= dur_ms(inner.config.prune_every)
        };
        if prune_due {
            inner
                .last_prune_ms
                .store(u64::try_from(now_ms).unwrap_or(0), Ordering::Relaxed);
        }
        let retention = inner.config.retention;
        let store = Arc::clone(&inner.store);
        let result = blocking(move || {
            let applied = store.finish(&finishes)?;
            let mut reloads = Vec::new();
            for (f, ok) in finishes.iter().zip(&applied) {
                reloads.push(if *ok { None } else { Some(store.job(&f.name)?) });
            }
            if prune_due {
                let dropped = store.prune(retention, now_ms)?;
                tracing::debug!(dropped, "run history pruned");
            }
            Ok((applied, reloads))
        })
        .await;
        let mut index = inner.index();
        match result {
            Ok((applied, reloads)) => {
                for ((d, ok), reload) in batch.iter().zip(applied).zip(reloads) {
                    if ok {
                        index.settle(d.idx, d.finish.next);
                        if inner.config.single_pass {
                            index.entries[d.idx as usize].flags |= DONE;
                        }
                    } else {
                        tracing::warn!(job.name = %d.name, "lease was taken over before the run ended");
                        let sid = index.entries[d.idx as usize].schedule;
                        index.entries[d.idx as usize].flags &= !BUSY;
                        match reload.flatten() {
                            Some(row) => {
                                index.apply_row(&row, sid, &inner.config.owner);
                            }
                            None => index.entries[d.idx as usize].flags |= REMOVED,
                        }
                    }
                    tracing::info!(job.name = %d.name, job.slot = %at(d.slot), job.attempt = d.attempt, outcome = d.finish.outcome.as_str(), "run finished");
                    inner.emit(Event::Finished {
                        name: Arc::clone(&d.name),
                        slot: at(d.slot),
                        attempt: d.attempt,
                        outcome: d.finish.outcome,
                        error: d.finish.error.clone(),
                        needs_attention: d.finish.next.needs_attention,
                    });
                }
            }
            Err(error) => {
                // The lease stays in the store until it expires; retrying the
                // claim then re-runs the slot (at least once, never lost).
                tracing::error!(%error, "storing run ends failed; slots will be retried");
                let backoff = dur_ms(inner.store_backoff());
                for d in &batch {
                    let retry = d.finish.ended_ms.saturating_add(backoff);
                    index.release(d.idx, retry);
                }
            }
        }
        drop(index);
        drop(batch);
        inner.wake.notify_one();
    }
}

//! Runner processes on one store: exactly-once across two processes, and a
//! restart after `SIGKILL` mid-run.
//!
//! Each test re-executes this test binary, filtered to itself, with
//! `ROTA_SCHED_CHILD` set: the child then acts as a runner process and talks
//! to the parent over stdin/stdout (`CHILD …` lines), so the parent can start
//! both children together and stop them when the work is done.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rota_scheduler::{
    CatchUp, Clock, Event, JobRun, JobSpec, JobStore, ManualClock, Outcome, RunError, Runner,
    RunnerConfig, SqliteStore, SystemClock,
};

use crate::common::utc;

const HANG_GUARD: Duration = Duration::from_secs(120);

/// Child-side: one line of protocol to the parent.
#[allow(clippy::print_stdout)] // the child's protocol channel is its stdout
fn say(line: &str) {
    println!("CHILD {line}");
    let _ = std::io::stdout().flush();
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Runs as a child runner process if this process was started as one.
fn child_mode() -> Option<String> {
    std::env::var("ROTA_SCHED_CHILD").ok()
}

fn child_main(mode: &str) {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("child needs {k}"));
    let store_path = PathBuf::from(var("ROTA_SCHED_STORE"));
    let owner = var("ROTA_SCHED_OWNER");
    // The child lives at a chosen virtual time while waiting on real timers.
    let start = utc(&var("ROTA_SCHED_START"));
    let log_path = PathBuf::from(var("ROTA_SCHED_LOG"));
    let mode = mode.to_owned();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let clock = Arc::new(SystemClock::starting_at(start));
        let store = Arc::new(SqliteStore::open(&store_path).expect("open store"));
        let me = owner.clone();
        // In "race" mode runs wait until the parent has seen both processes
        // start one, so the two are guaranteed to compete.
        let (release_tx, release_rx) = tokio::sync::watch::channel(mode != "race");
        let handler = move |run: JobRun| {
            let (mode, log_path, me) = (mode.clone(), log_path.clone(), me.clone());
            let mut released = release_rx.clone();
            async move {
                let _ = released.wait_for(|r| *r).await;
                if mode == "restart-1" && &*run.name == "crash" {
                    // Simulates a run in progress when the process is killed.
                    std::future::pending::<()>().await;
                }
                // The work: a durable append to a shared log.
                let line = format!("{} {} {} {}\n", run.name, run.slot.timestamp(), run.attempt, me);
                tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(log_path)?;
                    f.write_all(line.as_bytes())?;
                    f.sync_data()
                })
                .await
                .map_err(|e| RunError::retryable(e.to_string()))?
                .map_err(|e| RunError::retryable(e.to_string()))
            }
        };
        let runner = Runner::new(
            store as Arc<dyn JobStore>,
            clock as Arc<dyn Clock>,
            RunnerConfig::with_owner(owner).max_concurrent(4),
            handler,
        );
        let mut events = runner.subscribe();
        let (stdin_tx, mut stdin_rx) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if stdin_tx.send(line).is_err() {
                    break;
                }
            }
        });
        say("READY");
        while let Some(line) = stdin_rx.recv().await {
            if line == "GO" {
                break;
            }
        }
        runner.start().await.expect("start");
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(Event::Started { name, slot, attempt }) => say(&format!("STARTED {name} {} {attempt}", rfc(slot))),
                    Ok(Event::Finished { name, slot, attempt, outcome, .. }) => say(&format!("FINISHED {name} {} {attempt} {}", rfc(slot), outcome.as_str())),
                    Ok(Event::Missed { name, slot }) => say(&format!("MISSED {name} {}", rfc(slot))),
                    Ok(_) => {}
                    Err(e) => panic!("child lost events: {e}"),
                },
                line = stdin_rx.recv() => match line.as_deref() {
                    Some("RELEASE") => { release_tx.send_replace(true); }
                    Some("STOP") | None => break,
                    Some(_) => {}
                },
            }
        }
        runner.shutdown(Duration::from_secs(10)).await;
        say("EXITED");
    });
}

/// Parent-side handle on a child runner process.
struct ChildProc {
    child: Child,
    stdin: ChildStdin,
}

/// Starts this test binary as a child runner running `test`.
fn spawn_child(
    test: &str,
    mode: &str,
    store: &Path,
    log: &Path,
    owner: &str,
    start: DateTime<Utc>,
    lines: std_mpsc::Sender<(String, String)>,
) -> ChildProc {
    let exe = std::env::current_exe().expect("current exe");
    let mut child = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env("ROTA_SCHED_CHILD", mode)
        .env("ROTA_SCHED_STORE", store)
        .env("ROTA_SCHED_LOG", log)
        .env("ROTA_SCHED_OWNER", owner)
        .env("ROTA_SCHED_START", rfc(start))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let stdin = child.stdin.take().expect("stdin");
    let owner = owner.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("CHILD ")
                && lines.send((owner.clone(), rest.to_owned())).is_err()
            {
                break;
            }
        }
    });
    ChildProc { child, stdin }
}

impl ChildProc {
    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("write to child");
        self.stdin.flush().expect("flush child stdin");
    }
}

fn recv(rx: &std_mpsc::Receiver<(String, String)>) -> (String, String) {
    rx.recv_timeout(HANG_GUARD)
        .expect("child process said nothing within the hang guard")
}

/// Registers `specs` in the store at `path` as of `now`, without running.
fn register(path: &Path, now: DateTime<Utc>, specs: Vec<JobSpec>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = Arc::new(SqliteStore::open(path).expect("open store"));
        let runner = Runner::new(
            store as Arc<dyn JobStore>,
            Arc::new(ManualClock::new(now)) as Arc<dyn Clock>,
            RunnerConfig::with_owner("registrar"),
            |_run: JobRun| std::future::ready(Ok::<(), RunError>(())),
        );
        runner.register_many(specs).await.expect("register");
    });
}

#[test]
fn two_runner_processes_run_every_due_slot_exactly_once() {
    const TEST: &str = "multiprocess::two_runner_processes_run_every_due_slot_exactly_once";
    if let Some(mode) = child_mode() {
        return child_main(&mode);
    }
    const JOBS: usize = 500;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("sched.db");
    let log = dir.path().join("runs.log");
    // 500 one-shot jobs, registered an hour ago for a time half an hour ago:
    // all 500 slots are due when the runners start.
    let now = rota_test_support::base_now();
    let slot = rfc(now - chrono::Duration::minutes(30));
    register(
        &store,
        now - chrono::Duration::hours(1),
        (0..JOBS)
            .map(|i| JobSpec::new(format!("job-{i:03}"), slot.clone()))
            .collect(),
    );

    let (tx, rx) = std_mpsc::channel();
    let mut children: Vec<ChildProc> = ["p0", "p1"]
        .iter()
        .map(|owner| spawn_child(TEST, "race", &store, &log, owner, now, tx.clone()))
        .collect();
    let mut ready = 0;
    while ready < 2 {
        if recv(&rx).1 == "READY" {
            ready += 1;
        }
    }
    for c in &mut children {
        c.send("GO");
    }
    // Both processes hold claimed runs at the same time before any ends.
    let mut started_by = std::collections::BTreeSet::new();
    let mut early = Vec::new();
    while started_by.len() < 2 {
        let (owner, line) = recv(&rx);
        assert!(
            !line.starts_with("FINISHED"),
            "{owner} finished before release: {line}"
        );
        if line.starts_with("STARTED") {
            started_by.insert(owner.clone());
        }
        early.push((owner, line));
    }
    for c in &mut children {
        c.send("RELEASE");
    }
    let mut finished: HashMap<String, usize> = HashMap::new();
    let mut per_owner: BTreeMap<String, usize> = BTreeMap::new();
    while finished.values().sum::<usize>() < JOBS {
        let (owner, line) = recv(&rx);
        if let Some(rest) = line.strip_prefix("FINISHED ") {
            let name = rest.split(' ').next().unwrap_or_default().to_owned();
            assert!(rest.ends_with(" succeeded"), "{owner}: {line}");
            *finished.entry(name).or_default() += 1;
            *per_owner.entry(owner).or_default() += 1;
        }
    }
    for c in &mut children {
        c.send("STOP");
    }
    for mut c in children {
        let status = c.child.wait().expect("wait child");
        assert!(status.success(), "child exited with {status}");
    }
    // Every slot ran exactly once: in the children's reports, in the work
    // log written by the handlers, and in the store's history.
    assert_eq!(finished.len(), JOBS);
    assert!(finished.values().all(|n| *n == 1), "{finished:?}");
    let log_text = std::fs::read_to_string(&log).expect("read log");
    let mut log_counts: HashMap<&str, usize> = HashMap::new();
    for line in log_text.lines() {
        *log_counts
            .entry(line.split(' ').next().unwrap_or_default())
            .or_default() += 1;
    }
    assert_eq!(log_counts.len(), JOBS);
    assert!(log_counts.values().all(|n| *n == 1));
    let store = SqliteStore::open(&store).expect("reopen store");
    for i in 0..JOBS {
        let name = format!("job-{i:03}");
        let runs = store.runs(&name, 10).expect("history");
        assert_eq!(runs.len(), 1, "{name}: {runs:?}");
        assert_eq!(runs[0].outcome, Outcome::Succeeded);
        assert_eq!(store.job(&name).expect("job").and_then(|j| j.slot_ms), None);
    }
    // Both processes ran slots.
    assert_eq!(per_owner.len(), 2, "{per_owner:?} {early:?}");
    assert_eq!(per_owner.values().sum::<usize>(), JOBS, "{per_owner:?}");
}

#[test]
fn killed_mid_run_the_restart_retries_once_and_catches_up() {
    const TEST: &str = "multiprocess::killed_mid_run_the_restart_retries_once_and_catches_up";
    if let Some(mode) = child_mode() {
        return child_main(&mode);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let store_path = dir.path().join("sched.db");
    let log = dir.path().join("runs.log");
    register(
        &store_path,
        utc("2030-01-01T09:00:00Z"),
        vec![
            JobSpec::new("crash", "0 * * * *")
                .jitter(false)
                .catch_up(CatchUp::Once),
            JobSpec::new("once", "0 * * * *")
                .jitter(false)
                .catch_up(CatchUp::Once),
            JobSpec::new("skip", "0 * * * *")
                .jitter(false)
                .catch_up(CatchUp::Skip),
        ],
    );

    // First life, at 10:30: "crash" starts its 10:00 slot and never ends.
    let (tx, rx) = std_mpsc::channel();
    let mut first = spawn_child(
        TEST,
        "restart-1",
        &store_path,
        &log,
        "node-a",
        utc("2030-01-01T10:30:00Z"),
        tx,
    );
    assert_eq!(recv(&rx).1, "READY");
    first.send("GO");
    let mut expect = vec![
        "STARTED crash 2030-01-01T10:00:00Z 1".to_owned(),
        "FINISHED once 2030-01-01T10:00:00Z 1 succeeded".to_owned(),
        "MISSED skip 2030-01-01T10:00:00Z".to_owned(),
    ];
    while !expect.is_empty() {
        let (_, line) = recv(&rx);
        expect.retain(|e| *e != line);
    }
    first.child.kill().expect("SIGKILL");
    first.child.wait().expect("reap");

    // Second life, three hours later: 11:00, 12:00 and 13:00 passed while down.
    let (tx, rx) = std_mpsc::channel();
    let mut second = spawn_child(
        TEST,
        "restart-2",
        &store_path,
        &log,
        "node-a",
        utc("2030-01-01T13:30:00Z"),
        tx,
    );
    assert_eq!(recv(&rx).1, "READY");
    second.send("GO");
    let mut expect = vec![
        // The interrupted run, retried once (attempt 2) ...
        "FINISHED crash 2030-01-01T10:00:00Z 2 succeeded".to_owned(),
        // ... then one catch-up run for the slots missed while down.
        "FINISHED crash 2030-01-01T13:00:00Z 1 succeeded".to_owned(),
        "FINISHED once 2030-01-01T13:00:00Z 1 succeeded".to_owned(),
        "MISSED skip 2030-01-01T13:00:00Z".to_owned(),
    ];
    while !expect.is_empty() {
        let (_, line) = recv(&rx);
        if line.starts_with("FINISHED") || line.starts_with("MISSED") {
            assert!(expect.contains(&line), "unexpected: {line}");
        }
        expect.retain(|e| *e != line);
    }
    second.send("STOP");
    loop {
        if recv(&rx).1 == "EXITED" {
            break;
        }
    }
    assert!(second.child.wait().expect("wait").success());

    let store = SqliteStore::open(&store_path).expect("reopen");
    let history = |name: &str| -> Vec<String> {
        store
            .runs(name, 20)
            .expect("history")
            .iter()
            .rev()
            .map(|r| {
                let slot = DateTime::from_timestamp_millis(r.slot_ms)
                    .map(rfc)
                    .unwrap_or_default();
                format!("{slot} #{} {}", r.attempt, r.outcome.as_str())
            })
            .collect()
    };
    assert_eq!(
        history("crash"),
        [
            "2030-01-01T10:00:00Z #1 interrupted",
            "2030-01-01T10:00:00Z #2 succeeded",
            "2030-01-01T13:00:00Z #1 succeeded",
        ]
    );
    assert_eq!(
        history("once"),
        [
            "2030-01-01T10:00:00Z #1 succeeded",
            "2030-01-01T13:00:00Z #1 succeeded"
        ]
    );
    assert_eq!(
        history("skip"),
        [
            "2030-01-01T10:00:00Z #0 missed",
            "2030-01-01T13:00:00Z #0 missed"
        ]
    );
    // Nothing else is pending before 14:00: nothing runs twice.
    for name in ["crash", "once", "skip"] {
        let job = store.job(name).expect("job").expect("exists");
        assert_eq!(
            job.slot_ms,
            Some(utc("2030-01-01T14:00:00Z").timestamp_millis()),
            "{name}"
        );
        assert_eq!((job.attempts, job.lease), (0, None), "{name}");
    }
    // The work log agrees: the handler completed four runs in total.
    let log_text = std::fs::read_to_string(&log).expect("log");
    assert_eq!(log_text.lines().count(), 4, "{log_text}");
}

//! Several hosts, one schedule: `rota run` daemons, each with a data
//! directory of its own (as if on separate machines), sharing one
//! PostgreSQL store (a schema or database of the test's own on the
//! machine's server) and one `rota local serve`.
//!
//! Times printed here (failover, the spread of runs) are measurements for
//! the closing note; nothing asserts on them. Every wait is a bounded poll.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rota_test_support::db::{PG_URL, TestSchema, pg, unique};

use crate::common::stdout;
use crate::metrics::collect_stderr;
use crate::rotation::{cmd, ok, serve, stages, with_cloud};

/// A Rhai plugin whose `set` takes `ms` milliseconds: rotations overlap,
/// so a daemon killed mid-run has some in flight.
fn slow_plugin(dir: &Path, ms: u64) {
    let p = dir.join("plugins").join("slow");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(
        p.join("plugin.toml"),
        "name = \"slow\"\nversion = \"1.0.0\"\n",
    )
    .unwrap();
    std::fs::write(
        p.join("hooks.rhai"),
        format!("fn set(ctx) {{\n  time::sleep_ms({ms});\n}}\nfn test(ctx) {{ }}\n"),
    )
    .unwrap();
}

/// `n` Generic secrets `app/sNNN` rotated by `slow` at the one-shot
/// `slot`, with the shared store `store` (HCL attributes).
fn config(dir: &Path, n: usize, slot: &str, store: &str) {
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!(
            "resource \"alicloud_kms_secret\" \"s{i}\" {{\n  secret_name = \"app/s{i:03}\"\n  secret_data = \"initial-{i}\"\n  version_id  = \"v1\"\n}}\n"
        ));
    }
    text.push_str(&format!(
        "rotation \"apps\" {{\n  secrets      = [\"app/*\"]\n  schedule     = \"{slot}\"\n  jitter       = false\n  plugin       = \"slow\"\n  max_attempts = 10\n  retry_backoff = \"1s\"\n}}\n\nstore {{\n{store}}}\n"
    ));
    std::fs::write(dir.join("main.tf"), text).unwrap();
}

/// A daemon "on host `host`": its own data directory, the shared cloud.
fn daemon(dir: &Path, url: &str, host: &str, concurrency: u32) -> (Child, Arc<Mutex<Vec<String>>>) {
    let mut child = host_cmd(dir, url, host)
        .args([
            "run",
            "--grace",
            "2s",
            "--concurrency",
            &concurrency.to_string(),
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = collect_stderr(&mut child);
    (child, lines)
}

/// When the suite's clock started in this process: every process a test
/// starts later has its clock set to the base instant plus the time since,
/// so that daemons started at different moments agree on the time (as
/// hosts running NTP do).
static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn shared_now() -> String {
    let since = STARTED.get_or_init(Instant::now).elapsed();
    let t = rota_test_support::base_now() + chrono::Duration::from_std(since).unwrap_or_default();
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn host_cmd(dir: &Path, url: &str, host: &str) -> Command {
    let mut c = cmd(dir);
    c.env("ROTA_TEST_NOW", shared_now());
    c.env("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAItestrotation")
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "test-secret-rotation")
        .args(["--endpoint", url, "--data-dir", host]);
    c
}

fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// `minutes`/`seconds` after the suite's base instant, whole seconds.
fn slot_after_secs(secs: i64) -> String {
    rota_test_support::rfc3339(rota_test_support::base_now() + chrono::Duration::seconds(secs))
}

/// Runs a query on the test's PostgreSQL.
fn query<T: Send + 'static>(
    f: impl AsyncFnOnce(tokio_postgres::Client) -> T + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move { f(pg().await).await })
    })
    .join()
    .unwrap()
}

/// Succeeded runs per owner, and the number of distinct jobs with one.
fn succeeded(schema: &str) -> (Vec<(String, i64)>, i64) {
    let schema = schema.to_owned();
    query(async move |c| {
        let per: Vec<(String, i64)> = c
            .query(
                &format!(
                    "SELECT owner, count(*) FROM \"{schema}\".runs WHERE outcome = 'succeeded' GROUP BY owner ORDER BY owner"
                ),
                &[],
            )
            .await
            .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            .unwrap_or_default();
        let jobs: i64 = c
            .query_one(
                &format!(
                    "SELECT count(DISTINCT job) FROM \"{schema}\".runs WHERE outcome = 'succeeded'"
                ),
                &[],
            )
            .await
            .map(|r| r.get(0))
            .unwrap_or(0);
        (per, jobs)
    })
}

/// Waits (bounded) until `cond`, polling every 100 ms; returns how long.
fn until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

/// Every secret has exactly one version written by rotation, it is
/// ACSCurrent, and nothing is left in ACSPending.
fn each_rotated_once(cloud: &Path, n: usize) {
    let problems = with_cloud(cloud, async |k| {
        let mut bad = Vec::new();
        for i in 0..n {
            let name = format!("app/s{i:03}");
            let s = stages(&k, &name).await;
            let rotations = s.versions.iter().filter(|v| v.starts_with("rota-")).count();
            if rotations != 1 || !s.current.0.starts_with("rota-") || s.pending.is_some() {
                bad.push(format!(
                    "{name}: {rotations} rotations, current {:?}, pending {:?}",
                    s.current.0, s.pending
                ));
            }
        }
        bad
    });
    assert!(
        problems.is_empty(),
        "{} secrets wrong: {:?}",
        problems.len(),
        &problems[..problems.len().min(10)]
    );
}

#[test]
fn three_daemons_share_one_store_and_take_over_from_a_killed_one() {
    const N: usize = 500;
    STARTED.get_or_init(Instant::now);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let schema = TestSchema::new();
    slow_plugin(dir, 150);
    config(
        dir,
        N,
        &slot_after_secs(15),
        &format!(
            "  url       = \"{PG_URL}\"\n  schema    = \"{}\"\n  lease_ttl = \"3s\"\n",
            schema.name
        ),
    );
    let cloud = dir.join("cloud");
    let (mut server, url) = serve(dir, &cloud);
    ok(&host_cmd(dir, &url, "host-a")
        .args(["apply", "--auto-approve"])
        .output()
        .unwrap());

    let (mut a, a_log) = daemon(dir, &url, "host-a", 4);
    let (mut b, b_log) = daemon(dir, &url, "host-b", 4);
    let (mut c, c_log) = daemon(dir, &url, "host-c", 4);
    // The rotations start at the slot. Once a fifth are done, host B is
    // stopped and started again; near the end host A dies mid-run.
    until("the first 100 rotations", Duration::from_secs(120), || {
        succeeded(&schema.name).1 >= 100
    });
    signal(&b, "-TERM");
    assert!(b.wait().unwrap().success(), "{:?}", b_log.lock().unwrap());
    let (mut b2, b2_log) = daemon(dir, &url, "host-b", 4);
    until("the first 420 rotations", Duration::from_secs(240), || {
        succeeded(&schema.name).1 >= 420
    });
    // Killed while it holds a job (not in a pause between two claims):
    // host A is frozen (SIGSTOP) while its leases are read, so the jobs it
    // holds cannot finish between the read and the kill; if it holds none
    // at that instant it is let go (SIGCONT) and caught again.
    let a_pid = a.id();
    let a_owner = format!("%-{a_pid}-%");
    let mut held: Vec<String> = Vec::new();
    until("host A to hold a job", Duration::from_secs(60), || {
        signal(&a, "-STOP");
        held = {
            let (s, owner) = (schema.name.clone(), a_owner.clone());
            query(async move |c| {
                c.query(
                    &format!(
                        "SELECT name FROM \"{s}\".jobs WHERE lease_owner LIKE $1 AND lease_until IS NOT NULL"
                    ),
                    &[&owner],
                )
                .await
                .map(|rows| rows.iter().map(|r| r.get(0)).collect())
                .unwrap_or_default()
            })
        };
        if held.is_empty() {
            signal(&a, "-CONT");
        }
        !held.is_empty()
    });
    signal(&a, "-KILL");
    let killed_at = Instant::now();
    a.wait().unwrap();
    assert!(!held.is_empty(), "host A held no job when it died");
    // The dead daemon's rotations are resumed by the others.
    let failover = {
        let (s, held) = (schema.name.clone(), held.clone());
        until(
            "the dead daemon's jobs to be finished elsewhere",
            Duration::from_secs(120),
            || {
                let (s, held) = (s.clone(), held.clone());
                query(async move |c| {
                    let n: i64 = c
                    .query_one(
                        &format!(
                            "SELECT count(DISTINCT job) FROM \"{s}\".runs WHERE job = ANY($1) AND outcome = 'succeeded'"
                        ),
                        &[&held],
                    )
                    .await
                    .map(|r| r.get(0))
                    .unwrap_or(0);
                    n as usize == held.len()
                })
            },
        );
        killed_at.elapsed()
    };
    let total = until("every secret rotated", Duration::from_secs(300), || {
        succeeded(&schema.name).1 >= N as i64
    });
    for child in [&c, &b2] {
        signal(child, "-TERM");
    }
    for (child, log) in [(&mut c, &c_log), (&mut b2, &b2_log)] {
        assert!(child.wait().unwrap().success(), "{:?}", log.lock().unwrap());
    }
    let (per_owner, jobs) = succeeded(&schema.name);
    report(&format!(
        "multi-host: {N} secrets; host A killed holding {} jobs, all finished elsewhere {:.1} s after the kill (lease TTL 3 s); all done {:.1} s after; runs per daemon: {per_owner:?}",
        held.len(),
        failover.as_secs_f64(),
        total.as_secs_f64()
    ));
    assert_eq!(jobs, N as i64);
    assert!(per_owner.len() >= 3, "every daemon ran some: {per_owner:?}");
    let _ = a_log;
    // Status on any host shows the shared state: every secret rotated,
    // none held any more.
    let status: serde_json::Value = serde_json::from_str(&stdout(
        &host_cmd(dir, &url, "host-c")
            .args(["status", "-o", "json"])
            .output()
            .unwrap(),
    ))
    .unwrap();
    let rows = status.as_array().unwrap();
    assert_eq!(rows.len(), N);
    assert!(
        rows.iter()
            .all(|r| r["last_rotation"].is_string() && r.get("held_by").is_none()),
        "{}",
        rows[0]
    );
    server.kill().unwrap();
    server.wait().unwrap();
    each_rotated_once(&cloud, N);
}

/// Prints a measurement for the closing note (seen with `--no-capture`).
#[allow(clippy::print_stderr)]
pub(crate) fn report(line: &str) {
    eprintln!("{line}");
}

/// A database of the test's own, dropped at the end.
struct TestDatabase {
    name: String,
}

impl TestDatabase {
    fn new() -> Self {
        let name = unique("rota_test_db_");
        let n = name.clone();
        query(async move |c| {
            c.batch_execute(&format!("CREATE DATABASE {n}"))
                .await
                .unwrap()
        });
        Self { name }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    /// Refuses new connections and ends the open ones (the database is
    /// gone for the daemons), or lets them in again.
    fn set_reachable(&self, on: bool) {
        let n = self.name.clone();
        query(async move |c| {
            c.batch_execute(&format!("ALTER DATABASE {n} ALLOW_CONNECTIONS {on}"))
                .await
                .unwrap();
            if !on {
                c.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                    &[&n],
                )
                .await
                .unwrap();
            }
        });
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let n = self.name.clone();
        query(async move |c| {
            let _ = c
                .batch_execute(&format!("ALTER DATABASE {n} ALLOW_CONNECTIONS true"))
                .await;
            let _ = c
                .batch_execute(&format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"))
                .await;
        });
    }
}

#[test]
fn a_store_outage_loses_and_doubles_nothing() {
    const N: usize = 60;
    STARTED.get_or_init(Instant::now);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let db = TestDatabase::new();
    slow_plugin(dir, 1000);
    config(
        dir,
        N,
        &slot_after_secs(10),
        &format!("  url       = \"{}\"\n  lease_ttl = \"3s\"\n", db.url()),
    );
    let cloud = dir.join("cloud");
    let (mut server, url) = serve(dir, &cloud);
    ok(&host_cmd(dir, &url, "host-a")
        .args(["apply", "--auto-approve"])
        .output()
        .unwrap());
    let (mut a, a_log) = daemon(dir, &url, "host-a", 3);
    let (mut b, b_log) = daemon(dir, &url, "host-b", 3);
    let schema = "rota".to_owned();
    let done = |db: &TestDatabase| {
        let (url, s) = (db.url(), schema.clone());
        query(async move |_| {
            let Ok((c, conn)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await else {
                return 0;
            };
            tokio::spawn(conn);
            c.query_one(
                &format!(
                    "SELECT count(DISTINCT job) FROM \"{s}\".runs WHERE outcome = 'succeeded'"
                ),
                &[],
            )
            .await
            .map(|r| r.get::<_, i64>(0))
            .unwrap_or(0)
        })
    };
    // Some rotations are done, others in flight: the database goes away.
    until("the first rotations", Duration::from_secs(120), || {
        done(&db) >= 6
    });
    db.set_reachable(false);
    // While it is gone the daemons say so.
    let addr = metrics_addr(&a_log);
    until(
        "/healthz to report the store down",
        Duration::from_secs(60),
        || matches!(crate::metrics::get(addr, "/healthz"), Ok((503, body)) if body.contains("store-down")),
    );
    std::thread::sleep(Duration::from_secs(20));
    db.set_reachable(true);
    until("/healthz to recover", Duration::from_secs(60), || {
        matches!(crate::metrics::get(addr, "/healthz"), Ok((200, _)))
    });
    until("every secret rotated", Duration::from_secs(240), || {
        done(&db) >= N as i64
    });
    for child in [&a, &b] {
        signal(child, "-TERM");
    }
    for (child, log) in [(&mut a, &a_log), (&mut b, &b_log)] {
        assert!(child.wait().unwrap().success(), "{:?}", log.lock().unwrap());
    }
    server.kill().unwrap();
    server.wait().unwrap();
    each_rotated_once(&cloud, N);
}

/// The metrics address a daemon logged.
fn metrics_addr(log: &Arc<Mutex<Vec<String>>>) -> std::net::SocketAddr {
    let mut addr = None;
    until(
        "the metrics listening line",
        Duration::from_secs(60),
        || {
            addr = log.lock().unwrap().iter().find_map(|l| {
                l.contains("metrics listening")
                    .then(|| l.rsplit_once("addr=")?.1.trim().parse().ok())
                    .flatten()
            });
            addr.is_some()
        },
    );
    addr.unwrap()
}

#[test]
fn a_bad_store_stops_rota_at_start_with_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("main.tf"),
        "resource \"alicloud_kms_secret\" \"a\" {\n  secret_name = \"app/a\"\n  secret_data = \"x\"\n  version_id  = \"v1\"\n}\nrotation \"r\" {\n  secrets  = [\"app/a\"]\n  schedule = \"@daily\"\n}\n",
    )
    .unwrap();
    ok(&cmd(dir).args(["apply", "--auto-approve"]).output().unwrap());
    let run = |store: &str, args: &[&str]| {
        let o = cmd(dir)
            .env("ROTA_STORE_URL", store)
            .args(args)
            .output()
            .unwrap();
        (o.status.code(), crate::common::stderr(&o))
    };
    // Nobody listens there: host and port named, the password not.
    let (code, err) = run(
        "postgres://postgres:canary-store-pw@127.0.0.1:1/postgres",
        &["run", "--once"],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("error: cannot reach PostgreSQL at 127.0.0.1:1"),
        "{err}"
    );
    assert!(err.contains("hint: check the host and port"), "{err}");
    assert!(!err.contains("canary-store-pw"), "{err}");
    // A database that does not exist.
    let (code, err) = run(
        "postgres://postgres@127.0.0.1:5432/rota_no_such_database",
        &["status"],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("has no database \"rota_no_such_database\""),
        "{err}"
    );
    assert!(err.contains("createdb rota_no_such_database"), "{err}");
    // Not PostgreSQL at all.
    let (code, err) = run("mysql://root:canary-store-pw@127.0.0.1/x", &["history"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("is not a postgres:// URL") && !err.contains("canary-store-pw"),
        "{err}"
    );
    // A layout written by a newer Rota.
    let schema = TestSchema::new();
    std::fs::write(
        dir.join("store.tf"),
        format!(
            "store {{\n  url    = \"{PG_URL}\"\n  schema = \"{}\"\n}}\n",
            schema.name
        ),
    )
    .unwrap();
    ok(&cmd(dir).args(["run", "--once"]).output().unwrap());
    let s = schema.name.clone();
    query(async move |c| {
        c.execute(
            &format!("UPDATE \"{s}\".rota_schema SET version = 99 WHERE component = 'scheduler'"),
            &[],
        )
        .await
        .unwrap()
    });
    let o = cmd(dir).args(["run", "--once"]).output().unwrap();
    let err = crate::common::stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("layout version 99"), "{err}");
    assert!(err.contains("upgrade Rota on this host"), "{err}");
    // A password in the file is refused.
    std::fs::write(
        dir.join("store.tf"),
        "store {\n  url = \"postgres://rota:canary-store-pw@db/rota\"\n}\n",
    )
    .unwrap();
    let o = cmd(dir).args(["validate"]).output().unwrap();
    let err = crate::common::stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("store url holds a password") && !err.contains("canary-store-pw"),
        "{err}"
    );
}

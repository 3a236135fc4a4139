//! The consumer side end to end: `rota agent` keeps an application on the
//! current value of a PostgreSQL login rotated with alternating users
//! (postgres-role, mode alternating), on the machine's PostgreSQL.
//!
//! The application is a loop in this test: it holds the credential it
//! read from the agent's file at its last reload (the agent's reload
//! command appends to a log it watches) and "logs in" every 20 ms — the
//! machine's PostgreSQL trusts loopback logins, so a login is checked
//! against the role's SCRAM-SHA-256 verifier in `pg_authid`, as a server
//! with `scram-sha-256` authentication would. A second reader checks that
//! the file is never seen half-written. With the agent following the
//! daemon's events, two rotations pass the adoption gate and the
//! application is never refused; with the agent stopped, the next rotation
//! waits on the gate, then fails without changing anything. A second
//! secret, without a gate, is followed by polling alone.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rota_local::targets::scram_sha_256_matches as scram_matches;
use rota_test_support::{build_plugin, copy_into};

use crate::common::{stderr, stdout};
use crate::rotation::{ok, serve};

/// When the test began: every process it starts has its clock at the
/// base instant plus the time since, so that the daemon (which stamps the
/// agent's reports) and `rota rotate` (which reads them) agree on the
/// time, as hosts running NTP do.
static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn remote(dir: &Path, url: &str) -> std::process::Command {
    let since = STARTED.get_or_init(Instant::now).elapsed();
    let now = rota_test_support::base_now() + chrono::Duration::from_std(since).unwrap_or_default();
    let mut c = crate::rotation::remote(dir, url);
    c.env(
        "ROTA_TEST_NOW",
        now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    );
    c
}

const ADMIN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";
const INITIAL: &str = "Agent-Initial-Pass-71";

fn admin<T>(f: impl FnOnce(&mut postgres::Client) -> T) -> T {
    let mut c = postgres::Client::connect(ADMIN, postgres::NoTls)
        .expect("PostgreSQL on 127.0.0.1:5432 (user postgres)");
    f(&mut c)
}

/// The role and its clone, dropped when the test ends.
struct Roles(String);

impl Drop for Roles {
    fn drop(&mut self) {
        let r = self.0.clone();
        admin(|c| {
            let _ = c.batch_execute(&format!(
                "DROP ROLE IF EXISTS \"{r}_clone\"; DROP ROLE IF EXISTS \"{r}\""
            ));
        });
    }
}

/// Whether `role` logs in with `password` (its SCRAM verifier).
fn login_ok(c: &mut postgres::Client, role: &str, password: &str) -> bool {
    c.query_opt(
        "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
        &[&role],
    )
    .ok()
    .flatten()
    .and_then(|r| r.get::<_, Option<String>>(0))
    .is_some_and(|v| scram_matches(&v, password))
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

fn until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

/// The application: reloads its credential when the reload log grows,
/// logs in every 20 ms. Returns (stop, refusals, logins, reloads seen).
struct App {
    stop: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
    logins: Arc<AtomicUsize>,
    reloads: Arc<AtomicUsize>,
    partial: Arc<AtomicUsize>,
    held: Arc<Mutex<String>>,
}

impl App {
    fn start(conn_file: &Path, reload_log: &Path) -> Self {
        let app = Self {
            stop: Arc::default(),
            refused: Arc::default(),
            logins: Arc::default(),
            reloads: Arc::default(),
            partial: Arc::default(),
            held: Arc::default(),
        };
        let (stop, refused, logins, reloads, held) = (
            app.stop.clone(),
            app.refused.clone(),
            app.logins.clone(),
            app.reloads.clone(),
            app.held.clone(),
        );
        let (file, log) = (conn_file.to_owned(), reload_log.to_owned());
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(ADMIN, postgres::NoTls).unwrap();
            let mut seen = 0;
            let mut credential: Option<(String, String)> = None;
            while !stop.load(Ordering::SeqCst) {
                let n = lines(&log);
                if n != seen {
                    seen = n;
                    let text = std::fs::read_to_string(&file).unwrap();
                    let (u, p) = text.split_once(':').unwrap();
                    credential = Some((u.to_owned(), p.to_owned()));
                    *held.lock().unwrap() = text;
                    reloads.store(n, Ordering::SeqCst);
                }
                if let Some((u, p)) = &credential {
                    logins.fetch_add(1, Ordering::SeqCst);
                    if !login_ok(&mut c, u, p) {
                        refused.fetch_add(1, Ordering::SeqCst);
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        // A reader in a loop: the file is whole or absent, never partial.
        let (stop, partial, file) = (app.stop.clone(), app.partial.clone(), conn_file.to_owned());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if let Ok(text) = std::fs::read_to_string(&file)
                    && !text
                        .split_once(':')
                        .is_some_and(|(u, p)| !u.is_empty() && p.len() >= 16)
                {
                    partial.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        app
    }
}

fn agent(dir: &Path, url: &str, config: &str) -> (Child, Arc<Mutex<Vec<String>>>) {
    let mut child = remote(dir, url)
        .args(["agent", "-v", "-c", config])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let err = child.stderr.take().unwrap();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    (child, lines)
}

fn write_agent(dir: &Path, name: &str, events: Option<&str>) -> String {
    let conf = dir.join(name);
    std::fs::create_dir_all(&conf).unwrap();
    let app = dir.join("app");
    let events = events
        .map(|a| format!("  events_url   = \"http://{a}\"\n"))
        .unwrap_or_default();
    std::fs::write(
        conf.join("agent.hcl"),
        format!(
            "agent {{\n  consumer     = \"app-1\"\n{events}  poll         = \"2s\"\n  report_every = \"1s\"\n}}\n\n\
             template \"db\" {{\n  secret         = \"app/db\"\n  format         = \"template\"\n  template       = \"{{{{ secret.username }}}}:{{{{ secret.password }}}}\"\n  destination    = \"{}\"\n  mode           = \"0600\"\n  reload_command = [\"sh\", \"-c\", \"echo reload >> {}\"]\n}}\n\n\
             template \"token\" {{\n  secret         = \"app/token\"\n  format         = \"raw\"\n  destination    = \"{}\"\n  reload_command = [\"sh\", \"-c\", \"echo reload >> {}\"]\n}}\n",
            app.join("db.conn").display(),
            app.join("db-reloads.log").display(),
            app.join("token").display(),
            app.join("token-reloads.log").display(),
        ),
    )
    .unwrap();
    conf.display().to_string()
}

fn kill(child: &mut Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap();
}

#[test]
fn the_agent_keeps_an_application_logged_in_across_rotations_and_the_gate_waits_for_it() {
    STARTED.get_or_init(Instant::now);
    let roles = Roles(format!("rota_agent_{:08x}", rand::random::<u32>()));
    let r = roles.0.clone();
    admin(|c| {
        c.batch_execute(&format!(
            "CREATE ROLE \"{r}\" WITH LOGIN CREATEROLE PASSWORD '{INITIAL}'"
        ))
        .unwrap()
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("app")).unwrap();
    copy_into(
        &build_plugin("postgres-role", ""),
        &dir.join("plugins/postgres-role"),
    );
    let login = serde_json::json!({"host": "127.0.0.1", "port": 5432, "dbname": "postgres",
        "username": r, "password": INITIAL})
    .to_string();
    std::fs::write(
        dir.join("main.tf"),
        format!(
            "resource \"alicloud_kms_secret\" \"db\" {{\n  secret_name = \"app/db\"\n  secret_data = {login:?}\n  version_id  = \"v1\"\n}}\n\
             resource \"alicloud_kms_secret\" \"token\" {{\n  secret_name = \"app/token\"\n  secret_data = \"token-initial-canary-0001\"\n  version_id  = \"v1\"\n}}\n\
             rotation \"db\" {{\n  secrets  = [\"app/db\"]\n  schedule = \"@yearly\"\n  plugin   = \"postgres-role\"\n  settings = {{ mode = \"alternating\" }}\n  adoption {{\n    consumers = 1\n    timeout   = \"8s\"\n    fresh_for = \"4s\"\n  }}\n}}\n\
             rotation \"token\" {{\n  secrets  = [\"app/token\"]\n  schedule = \"@yearly\"\n  settings = {{ length = 24 }}\n}}\n"
        ),
    )
    .unwrap();
    let (mut server, url) = serve(dir, &dir.join("cloud"));
    ok(&remote(dir, &url)
        .args(["apply", "--auto-approve"])
        .output()
        .unwrap());
    let mut daemon = remote(dir, &url)
        .args(["run", "--events-addr", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let daemon_log = crate::metrics::collect_stderr(&mut daemon);
    let addr = crate::events::events_addr(&daemon_log);

    // The agent renders the files at start and the application loads them.
    let with_events = write_agent(dir, "agent-events", Some(&addr));
    let (mut a, a_log) = agent(dir, &url, &with_events);
    let app = App::start(&dir.join("app/db.conn"), &dir.join("app/db-reloads.log"));
    until("the first render", Duration::from_secs(30), || {
        app.reloads.load(Ordering::SeqCst) == 1
    });
    assert_eq!(app.held.lock().unwrap().as_str(), format!("{r}:{INITIAL}"));
    until("the first adoption report", Duration::from_secs(30), || {
        a_log.lock().unwrap().iter().any(|l| l.contains("rendered"))
    });

    // Two rotations with the agent following the events.
    let mut via_events = Vec::new();
    for n in 1..=2 {
        let o = remote(dir, &url)
            .args(["rotate", "app/db"])
            .output()
            .unwrap();
        ok(&o);
        let moved = Instant::now();
        until("the application to reload", Duration::from_secs(30), || {
            app.reloads.load(Ordering::SeqCst) == 1 + n
        });
        via_events.push(moved.elapsed());
        // The next rotation's gate needs the report of this version.
        std::thread::sleep(Duration::from_millis(1500));
    }
    let held_after_two = app.held.lock().unwrap().clone();
    assert!(
        held_after_two.starts_with(&format!("{r}:")),
        "alternating: back on the first user"
    );

    let o = remote(dir, &url).args(["status"]).output().unwrap();
    ok(&o);
    assert!(
        stdout(&o).contains("app/db: consumers: 1 of 1 on ACSCurrent: app-1 on ACSCurrent"),
        "{}",
        stdout(&o)
    );
    let o = remote(dir, &url)
        .args(["status", "-o", "json"])
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let db = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["secret"] == "app/db")
        .unwrap();
    assert_eq!(db["consumers"][0]["consumer"], "app-1");
    assert_eq!(db["consumers"][0]["on_current"], true);

    // The agent stopped: the gate waits, then refuses; nothing changes.
    kill(&mut a);
    std::thread::sleep(Duration::from_secs(5));
    let started = Instant::now();
    let o = remote(dir, &url)
        .args(["rotate", "app/db"])
        .output()
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(o.status.code(), Some(1), "{}\n{}", stdout(&o), stderr(&o));
    let text = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        text.contains("0 of 1 consumers report ACSCurrent"),
        "{text}"
    );
    assert!(waited >= Duration::from_secs(8), "{waited:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(app.held.lock().unwrap().clone(), held_after_two);

    // Polling alone (no events_url): a rotation of the other secret is
    // picked up within the poll interval.
    let polling = write_agent(dir, "agent-polling", None);
    let (mut b, b_log) = agent(dir, &url, &polling);
    until("the token's first render", Duration::from_secs(30), || {
        lines(&dir.join("app/token-reloads.log")) >= 1
    });
    let before = lines(&dir.join("app/token-reloads.log"));
    ok(&remote(dir, &url)
        .args(["rotate", "app/token"])
        .output()
        .unwrap());
    let moved = Instant::now();
    until(
        "the polling agent to render the token",
        Duration::from_secs(30),
        || lines(&dir.join("app/token-reloads.log")) > before,
    );
    let via_polling = moved.elapsed();
    kill(&mut b);

    app.stop.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(100));
    // Not vacuous: the application logged in with every credential it
    // loaded (it logs in once in the loop turn that loads one), however
    // fast this machine checks a login.
    let (logins, reloads) = (
        app.logins.load(Ordering::SeqCst),
        app.reloads.load(Ordering::SeqCst),
    );
    assert!(
        reloads >= 3 && logins >= reloads,
        "{logins} logins, {reloads} reloads"
    );
    assert_eq!(
        app.refused.load(Ordering::SeqCst),
        0,
        "the application was refused a login"
    );
    assert_eq!(
        app.partial.load(Ordering::SeqCst),
        0,
        "a reader saw a partial file"
    );
    // One reload per change: the initial render and two rotations.
    assert_eq!(lines(&dir.join("app/db-reloads.log")), 3);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.join("app/db.conn"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // No value in the agents' logs.
    let logs = format!(
        "{}\n{}",
        a_log.lock().unwrap().join("\n"),
        b_log.lock().unwrap().join("\n")
    );
    let (_, pw) = held_after_two.split_once(':').unwrap();
    for value in [INITIAL, pw, "token-initial-canary-0001"] {
        assert!(!logs.contains(value), "a value in the agent's log");
    }
    let token = std::fs::read_to_string(dir.join("app/token")).unwrap();
    assert!(!logs.contains(&token));
    kill(&mut daemon);
    server.kill().unwrap();
    server.wait().unwrap();
    crate::hosts::report(&format!(
        "agent: ACSCurrent moved → application reloaded: via the event stream {:.0} ms and {:.0} ms; via polling (2 s ±10 %) {:.0} ms; the gate waited {:.1} s (timeout 8 s) with the agent stopped",
        via_events[0].as_secs_f64() * 1e3,
        via_events[1].as_secs_f64() * 1e3,
        via_polling.as_secs_f64() * 1e3,
        waited.as_secs_f64()
    ));
}

#[test]
fn a_template_that_cannot_render_keeps_the_previous_file_and_says_where() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("out")).unwrap();
    let resource = "resource \"alicloud_kms_secret\" \"x\" {\n  secret_name = \"app/x\"\n  secret_data = \"{\\\"a\\\":\\\"canary-agent-5521\\\"}\"\n  version_id  = \"v1\"\n}\n";
    let write = |template: &str, secret: &str, destination: &str| {
        std::fs::write(
            dir.join("main.tf"),
            format!(
                "{resource}\ntemplate \"t\" {{\n  secret      = \"{secret}\"\n  format      = \"template\"\n  template    = \"{template}\"\n  destination = \"{destination}\"\n}}\n"
            ),
        )
        .unwrap();
    };
    write("a={{ secret.a }}", "app/x", "out/t");
    ok(&crate::common::run_in(dir, &["apply", "--auto-approve"]));
    ok(&crate::common::run_in(dir, &["agent", "--once"]));
    let good = std::fs::read_to_string(dir.join("out/t")).unwrap();
    assert_eq!(good, "a=canary-agent-5521");

    // A field that does not exist: exit 1, where, the file kept.
    write("b={{ secret.b }}", "app/x", "out/t");
    let o = crate::common::run_in(dir, &["agent", "--once"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("main.tf:10:17") && err.contains("undefined value at line 1 of the template"),
        "{err}"
    );
    assert!(!err.contains("canary-agent-5521"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.join("out/t")).unwrap(), good);

    // A secret that does not exist: exit 1, named, the file kept.
    write("a={{ secret.a }}", "app/nope", "out/t");
    let o = crate::common::run_in(dir, &["agent", "--once"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("app/nope"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(dir.join("out/t")).unwrap(), good);

    // A syntax error and a destination that cannot be written: at start.
    write("a={{ secret.a ", "app/x", "out/t");
    let o = crate::common::run_in(dir, &["agent", "--once"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("syntax error"), "{}", stderr(&o));
    write("a={{ secret.a }}", "app/x", "missing-dir/t");
    let o = crate::common::run_in(dir, &["agent", "--once"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot write in"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("canary-agent-5521"));
}

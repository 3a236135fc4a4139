//! Verified rotation, end to end on the embedded default with the real
//! Prometheus (the Debian package, started here on a loopback port): a test
//! application holds a "database password" (the rotation's target) and
//! counts authentication errors of a client that uses either the current
//! password (it follows rotations) or the one it started with (pinned);
//! Prometheus scrapes it every second; the rotation's `verify` block watches
//! the error rate and the application's health endpoint.
//!
//! Times printed (first error → rollback done) are measurements for the
//! closing note; nothing asserts on them. Waits are bounded polls.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{stderr, stdout};
use crate::rotation::{cmd, ok, stages, with_cloud};

/// The application: a password, an error counter, a client.
struct App {
    addr: SocketAddr,
    password: Arc<Mutex<String>>,
    errors: Arc<AtomicU64>,
    first_error: Arc<Mutex<Option<Instant>>>,
    restored: Arc<Mutex<Option<Instant>>>,
    stop: Arc<AtomicBool>,
}

impl App {
    /// Starts the application with `initial` as its password; the client
    /// uses the current password, or `initial` forever when `pinned`.
    fn start(initial: &str, pinned: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Self {
            addr,
            password: Arc::new(Mutex::new(initial.to_owned())),
            errors: Arc::new(AtomicU64::new(0)),
            first_error: Arc::default(),
            restored: Arc::default(),
            stop: Arc::default(),
        };
        // The client: one login every 100 ms.
        {
            let (password, errors, first, stop) = (
                app.password.clone(),
                app.errors.clone(),
                app.first_error.clone(),
                app.stop.clone(),
            );
            let pinned_value = initial.to_owned();
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let current = password.lock().unwrap().clone();
                    let used = if pinned {
                        pinned_value.clone()
                    } else {
                        current.clone()
                    };
                    if used != current {
                        errors.fetch_add(1, Ordering::SeqCst);
                        first.lock().unwrap().get_or_insert_with(Instant::now);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        // The server.
        {
            let (password, errors, restored, stop) = (
                app.password.clone(),
                app.errors.clone(),
                app.restored.clone(),
                app.stop.clone(),
            );
            let initial = initial.to_owned();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let (password, errors, restored, initial) = (
                        password.clone(),
                        errors.clone(),
                        restored.clone(),
                        initial.clone(),
                    );
                    std::thread::spawn(move || {
                        serve(conn, &password, &errors, &restored, &initial)
                    });
                }
            });
        }
        app
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// One HTTP/1.1 request: `POST /set`, `POST /check`, `GET /metrics`,
/// `GET /healthz`.
fn serve(
    mut conn: TcpStream,
    password: &Mutex<String>,
    errors: &AtomicU64,
    restored: &Mutex<Option<Instant>>,
    initial: &str,
) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    let _ = reader.read_exact(&mut body);
    let body = String::from_utf8_lossy(&body).into_owned();
    let (status, text) = match line.split_whitespace().take(2).collect::<Vec<_>>()[..] {
        ["POST", "/set"] => {
            *password.lock().unwrap() = body.clone();
            if body == initial {
                restored.lock().unwrap().get_or_insert_with(Instant::now);
            }
            (200, String::new())
        }
        ["POST", "/check"] => {
            if *password.lock().unwrap() == body {
                (200, String::new())
            } else {
                (401, String::new())
            }
        }
        ["GET", "/metrics"] => (
            200,
            format!(
                "# TYPE app_auth_errors_total counter\napp_auth_errors_total {}\n",
                errors.load(Ordering::SeqCst)
            ),
        ),
        ["GET", "/healthz"] => (200, "ok\n".into()),
        _ => (404, String::new()),
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status} X\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
}

/// Prometheus on a free loopback port, scraping `target` every second.
struct Prometheus {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: [\"{target}\"]\n"
            ),
        )
        .unwrap();
        let child = Command::new(prometheus_binary())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (the Debian package; cargo xtask ci installs it)");
        let url = format!("http://127.0.0.1:{port}");
        let p = Self {
            child,
            url,
            _dir: dir,
        };
        // Ready once the check's query has a value (two scrapes in its window).
        let query = "max(rate(app_auth_errors_total%5B5s%5D))";
        until(
            "Prometheus to scrape the application",
            Duration::from_secs(60),
            || {
                http_get(&format!("{}/api/v1/query?query={query}", p.url))
                    .is_some_and(|b| b.contains("\"result\":[{"))
            },
        );
        p
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn prometheus_binary() -> PathBuf {
    ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("prometheus"))
}

/// A minimal GET returning the body of a 2xx answer.
fn http_get(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut s = TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let ok = text.starts_with("HTTP/1.1 2") || text.starts_with("HTTP/1.0 2");
    ok.then(|| {
        text.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default()
    })
}

fn until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    start.elapsed()
}

/// A webhook receiver: the bodies it was posted.
fn webhook() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut len = 0usize;
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; len];
            let _ = reader.read_exact(&mut body);
            sink.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&body).into_owned());
            let mut conn = conn;
            let _ = conn.write_all(
                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (url, got)
}

const INITIAL: &str = "initial-app-password-1";

/// The plugin that sets, tests and rolls back the application's password.
fn app_plugin(dir: &Path, app: &App) {
    let p = dir.join("plugins").join("app");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(
        p.join("plugin.toml"),
        format!(
            "name = \"app\"\nversion = \"1.0.0\"\nsecret_types = [\"Generic\"]\n\n[capabilities]\nhttp = [\"{}\"]\n",
            app.addr
        ),
    )
    .unwrap();
    let url = app.url();
    std::fs::write(
        p.join("hooks.rhai"),
        format!(
            "fn set(ctx) {{\n  let r = http::request(#{{ method: \"POST\", url: \"{url}/set\", body: ctx.pending }});\n  if r.status != 200 {{ throw \"set: \" + r.status; }}\n}}\n\
             fn test(ctx) {{\n  let r = http::request(#{{ method: \"POST\", url: \"{url}/check\", body: ctx.pending }});\n  if r.status != 200 {{ throw \"the application refuses the new password\"; }}\n}}\n\
             fn rollback(ctx) {{\n  let r = http::request(#{{ method: \"POST\", url: \"{url}/set\", body: ctx.current }});\n  if r.status != 200 {{ throw \"rollback: \" + r.status; }}\n}}\n"
        ),
    )
    .unwrap();
}

fn config(dir: &Path, app: &App, prom: &Prometheus, hook: &str, soak: &str) {
    std::fs::write(
        dir.join("main.tf"),
        format!(
            "resource \"alicloud_kms_secret\" \"db\" {{\n  secret_name = \"app/db\"\n  secret_data = \"{INITIAL}\"\n  version_id  = \"v1\"\n}}\n\n\
             rotation \"db\" {{\n  secrets  = [\"app/db\"]\n  schedule = \"@daily\"\n  plugin   = \"app\"\n  max_attempts = 1\n\
             \n  verify {{\n    soak     = \"{soak}\"\n    interval = \"1s\"\n    http {{\n      url = \"{}/healthz\"\n    }}\n    prometheus {{\n      url   = \"{}\"\n      query = \"max(rate(app_auth_errors_total[5s]))\"\n      max   = 0\n    }}\n  }}\n\
             \n  on_failure {{\n    webhook = \"{hook}\"\n  }}\n}}\n",
            app.url(),
            prom.url
        ),
    )
    .unwrap();
}

#[test]
fn a_rotation_the_consumers_accept_passes_its_soak_and_one_they_reject_is_rolled_back() {
    let (hook, posted) = webhook();
    // 1. The client follows the password: the soak passes.
    {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let app = App::start(INITIAL, false);
        let prom = Prometheus::start(app.addr);
        app_plugin(dir, &app);
        config(dir, &app, &prom, &hook, "6s");
        ok(&cmd(dir).args(["apply", "--auto-approve"]).output().unwrap());
        // Through the daemon's pass: the job carries the verify block.
        let o = cmd(dir)
            .args(["run", "--once", "--all-due-within", "25h"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
        assert!(stdout(&o).contains("1 rotated"), "{}", stdout(&o));
        let s = with_cloud(&dir.join(".rota"), async |k| stages(&k, "app/db").await);
        assert!(s.current.0.starts_with("rota-"), "{s:?}");
        assert_eq!(app.errors.load(Ordering::SeqCst), 0);
        let h = stdout(
            &cmd(dir)
                .args(["history", "app/db", "-o", "json"])
                .output()
                .unwrap(),
        );
        assert!(
            h.contains("\"step\": \"verify\"") && h.contains("\"outcome\": \"ok\""),
            "{h}"
        );
        let versions = stdout(
            &cmd(dir)
                .args(["secret", "versions", "app/db"])
                .output()
                .unwrap(),
        );
        assert!(
            !versions.contains("RotaSoaking") && !versions.contains("RotaFailed"),
            "{versions}"
        );
    }
    // 2. The client keeps the old password: the rotation is rolled back.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let app = App::start(INITIAL, true);
    let prom = Prometheus::start(app.addr);
    app_plugin(dir, &app);
    config(dir, &app, &prom, &hook, "60s");
    ok(&cmd(dir).args(["apply", "--auto-approve"]).output().unwrap());
    let o = cmd(dir)
        .args(["rotate", "app/db", "--verify"])
        .output()
        .unwrap();
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(
        out.contains("rolled back") && out.contains("app_auth_errors_total"),
        "{out}"
    );
    // The target holds the old password again, ACSCurrent is the old
    // version, the failed one says so.
    assert_eq!(*app.password.lock().unwrap(), INITIAL);
    let s = with_cloud(&dir.join(".rota"), async |k| stages(&k, "app/db").await);
    assert_eq!(s.current.0, "v1", "{s:?}");
    let versions = stdout(
        &cmd(dir)
            .args(["secret", "versions", "app/db"])
            .output()
            .unwrap(),
    );
    assert!(
        versions
            .lines()
            .any(|l| l.starts_with("rota-") && l.contains("RotaFailed")),
        "{versions}"
    );
    assert!(!versions.contains("RotaSoaking"), "{versions}");
    // Status says why; the webhook got a notice naming the check, never a
    // value.
    let status = stdout(&cmd(dir).args(["status"]).output().unwrap());
    assert!(status.contains("rolled back"), "{status}");
    until("the webhook notice", Duration::from_secs(30), || {
        !posted.lock().unwrap().is_empty()
    });
    let notices = posted.lock().unwrap().join("\n");
    assert!(
        notices.contains("rolled back") && notices.contains("prometheus"),
        "{notices}"
    );
    assert!(!notices.contains(INITIAL), "{notices}");
    let first = app
        .first_error
        .lock()
        .unwrap()
        .expect("the client saw errors");
    let restored = app
        .restored
        .lock()
        .unwrap()
        .expect("the password was put back");
    crate::hosts::report(&format!(
        "verified rotation: first authentication error to the target's rollback: {:.1} s (Prometheus scrape 1 s, rate over 5 s, check interval 1 s); errors counted: {}",
        (restored - first).as_secs_f64(),
        app.errors.load(Ordering::SeqCst)
    ));
}

#[test]
fn a_crash_during_the_soak_or_the_rollback_converges_on_the_next_run() {
    let (hook, _posted) = webhook();
    for point in rota_rotation::CrashPoint::VERIFICATION.map(|p| p.to_string()) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let app = App::start(INITIAL, true);
        let prom = Prometheus::start(app.addr);
        app_plugin(dir, &app);
        config(dir, &app, &prom, &hook, "60s");
        ok(&cmd(dir).args(["apply", "--auto-approve"]).output().unwrap());
        let o = cmd(dir)
            .env("ROTA_TEST_CRASH_AT", &point)
            .args(["rotate", "app/db", "--verify"])
            .output()
            .unwrap();
        assert!(
            !o.status.success(),
            "{point}: the crash did not happen\n{}",
            stderr(&o)
        );
        assert!(
            stderr(&o).contains(&format!("aborting at {point}")),
            "{point}: {}",
            stderr(&o)
        );
        // The next run finishes what was cut short: the rollback (resumed,
        // or after the resumed soak fails), nobody locked out.
        let o = cmd(dir)
            .args(["rotate", "app/db", "--verify"])
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(1),
            "{point}: {}\n{}",
            stdout(&o),
            stderr(&o)
        );
        assert!(
            stdout(&o).contains("rolled back"),
            "{point}: {}",
            stdout(&o)
        );
        assert_eq!(
            *app.password.lock().unwrap(),
            INITIAL,
            "{point}: the target is back on the old password"
        );
        let s = with_cloud(&dir.join(".rota"), async |k| stages(&k, "app/db").await);
        assert_eq!(s.current.0, "v1", "{point}: {s:?}");
        assert!(s.pending.is_none(), "{point}: {s:?}");
        let versions = stdout(
            &cmd(dir)
                .args(["secret", "versions", "app/db"])
                .output()
                .unwrap(),
        );
        assert!(!versions.contains("RotaSoaking"), "{point}: {versions}");
        assert!(versions.contains("RotaFailed"), "{point}: {versions}");
        // A later rotation without verification starts cleanly from there.
        let o = cmd(dir).args(["rotate", "app/db"]).output().unwrap();
        assert!(
            o.status.success(),
            "{point}: {}\n{}",
            stdout(&o),
            stderr(&o)
        );
    }
}

#[test]
fn verify_blocks_are_checked_at_validation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let write = |verify: &str| {
        std::fs::write(
            dir.join("main.tf"),
            format!(
                "resource \"alicloud_kms_secret\" \"db\" {{\n  secret_name = \"app/db\"\n  secret_data = \"x\"\n  version_id  = \"v1\"\n}}\n\
                 rotation \"db\" {{\n  secrets  = [\"app/db\"]\n  schedule = \"@daily\"\n  verify {{\n{verify}  }}\n}}\n"
            ),
        )
        .unwrap();
    };
    let fails = |needles: &[&str]| {
        let o = cmd(dir).args(["validate"]).output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        for n in needles {
            assert!(err.contains(n), "{n:?} not in:\n{err}");
        }
    };
    // No soak; an unbalanced query; a prometheus check without max.
    write(
        "    interval = \"1s\"\n    prometheus {\n      url   = \"http://127.0.0.1:9090\"\n      query = \"sum(rate(x[1m])\"\n    }\n",
    );
    fails(&[
        "a verify block needs soak",
        "main.tf:9:3",
        "has unbalanced brackets",
        "a prometheus check needs max",
    ]);
    // The password plugin has no verify hook, and nothing else is checked.
    write("    soak = \"1m\"\n");
    fails(&[
        "verify has no check",
        "plugin \"password\" has no verify hook",
    ]);
    write(
        "    soak = \"1m\"\n    plugin = true\n    http {\n      url = \"http://127.0.0.1:1/healthz\"\n    }\n",
    );
    fails(&["asks for the plugin's verify hook (plugin = true)"]);
    // Wrong values name the attribute and the allowed ones.
    write(
        "    soak = \"1m\"\n    on_failure = \"panic\"\n    interval = \"10ms\"\n    http {\n      url = \"ftp://x\"\n    }\n",
    );
    fails(&[
        "on_failure must be \"rollback\" or \"alert\"",
        "verify interval is under one second",
        "http url must be an http:// or https:// URL",
    ]);
    // A valid block validates, and the dry run lists its checks.
    write(
        "    soak = \"10m\"\n    interval = \"30s\"\n    http {\n      url = \"http://127.0.0.1:1/healthz\"\n    }\n",
    );
    ok(&cmd(dir).args(["validate"]).output().unwrap());
    ok(&cmd(dir).args(["apply", "--auto-approve"]).output().unwrap());
    let o = cmd(dir)
        .args(["rotate", "app/db", "--dry-run"])
        .output()
        .unwrap();
    assert!(
        stdout(&o).contains("then watch the consumers for 10m (every 30s; `rota run`, or `rota rotate --verify`) and roll back if a check fails: http http://127.0.0.1:1/healthz"),
        "{}",
        stdout(&o)
    );
}

//! What plugin and workflow authors meet, on the user's path (a plugin or
//! script in a temp folder, the built binary): hooks stopped at their
//! step's deadline, values scrubbed in their transformed forms, the
//! `http::` request builder, plugin name conflicts, status with a broken
//! configuration, and the workflow commands.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{stderr, stdout};
use crate::rotation::run_in;

/// Writes a Rhai plugin folder `plugins/<name>` under `dir`.
fn rhai_plugin(dir: &Path, name: &str, manifest_extra: &str, hooks: &str) {
    let p = dir.join("plugins").join(name);
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(
        p.join("plugin.toml"),
        format!("name = \"{name}\"\nversion = \"1.0.0\"\n{manifest_extra}"),
    )
    .unwrap();
    std::fs::write(p.join("hooks.rhai"), hooks).unwrap();
}

/// A configuration of one Generic secret rotated by `plugin` with the
/// rotation block's extra lines.
fn config(dir: &Path, plugin: &str, rotation_extra: &str) {
    std::fs::write(
        dir.join("main.tf"),
        format!(
            "resource \"alicloud_kms_secret\" \"s\" {{\n  secret_name = \"app/s\"\n  secret_data = \"initial-value\"\n  version_id  = \"v1\"\n}}\n\
             rotation \"r\" {{\n  secrets  = [\"app/s\"]\n  schedule = \"@daily\"\n  plugin   = \"{plugin}\"\n{rotation_extra}}}\n"
        ),
    )
    .unwrap();
}

/// How long the test waits at most for a rotation that should stop after
/// a few seconds: a hang guard, not a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(90);

#[test]
fn a_hook_that_waits_stops_at_the_rotations_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // A silent server: accepts connections, never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    rhai_plugin(
        dir,
        "sleeper",
        "",
        "fn set(ctx) {\n  loop {\n    time::sleep_ms(1000);\n  }\n}\nfn test(ctx) { }\n",
    );
    rhai_plugin(
        dir,
        "hanger",
        &format!("[capabilities]\nhttp = [\"{silent_addr}\"]\n"),
        &format!(
            "fn set(ctx) {{\n  http::get(\"http://{silent_addr}/\");\n}}\nfn test(ctx) {{ }}\n"
        ),
    );
    for (plugin, line) in [("sleeper", "hooks.rhai:3"), ("hanger", "hooks.rhai:2")] {
        config(dir, plugin, "  timeout      = \"3s\"\n  max_attempts = 1\n");
        let o = run_in(dir, &["apply", "--auto-approve"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let started = Instant::now();
        let mut child = crate::rotation::cmd(dir)
            .args(["rotate", "app/s"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        while child.try_wait().unwrap().is_none() {
            assert!(
                started.elapsed() < HANG_GUARD,
                "{plugin}: the hook was not stopped"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let o = child.wait_with_output().unwrap();
        let took = started.elapsed();
        assert_eq!(o.status.code(), Some(1), "{plugin}: {}", stdout(&o));
        let out = stdout(&o);
        assert!(out.contains("failed in step set"), "{plugin}: {out}");
        assert!(out.contains("deadline"), "{plugin}: {out}");
        assert!(out.contains(line), "{plugin}: {out}");
        assert!(out.contains("set"), "{plugin}: {out}");
        // Seen here: about 3.1 s for a 3 s timeout (the hang guard above is
        // the only bound asserted).
        let _ = took;
    }
    drop(silent);
}

/// The value every encoding test hides: a quote (JSON escapes it), a slash,
/// a space, `+`, `&` and `=` (percent-encoding changes them).
const CANARY: &str = "can\"ary/x y+1&z=9f3e";

/// `CANARY` as a percent-encoded query, JSON-escaped, Base64 and hex.
fn canary_forms() -> Vec<String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(CANARY);
    let hex: String = CANARY.bytes().map(|b| format!("{b:02x}")).collect();
    vec![
        CANARY.to_owned(),
        "can%22ary/x%20y+1&z=9f3e".to_owned(),
        "can%22ary%2Fx%20y%2B1%26z%3D9f3e".to_owned(),
        "can\\\"ary/x y+1&z=9f3e".to_owned(),
        b64.trim_end_matches('=').to_owned(),
        hex.clone(),
        hex.to_ascii_uppercase(),
        // The value's distinctive tail, in case a form was cut elsewhere.
        "9f3e".to_owned(),
    ]
}

const LEAKY_HOOKS: &str = r#"
fn generate(ctx) { "can\"ary/x y+1&z=9f3e" }

fn set(ctx) {
  let v = ctx.pending.reveal();
  log::info("base64 " + base64::encode(v));
  log::info("json " + json::encode(#{ v: v }));
  let digits = "0123456789abcdef";
  let h = "";
  for c in v {
    let n = c.to_int();
    h += digits[n / 16];
    h += digits[n % 16];
  }
  log::info("hex " + h);
  if ctx.settings.mode == "throw" {
    let parts = [];
    for c in v { parts.push(c); }
    throw parts;
  }
  http::get("http://127.0.0.1:" + ctx.settings.port + "/check?token=" + v);
}

fn test(ctx) { }
"#;

#[test]
fn a_value_transformed_by_a_hook_is_scrubbed_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // A closed port: the request fails with a connection error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    rhai_plugin(
        dir,
        "leaky",
        &format!(
            "[settings.mode]\ntype = \"string\"\ndefault = \"http\"\n\n[settings.port]\ntype = \"integer\"\ndefault = {port}\n\n[capabilities]\nhttp = [\"127.0.0.1:{port}\"]\n"
        ),
        LEAKY_HOOKS,
    );
    let mut seen = String::new();
    for mode in ["http", "throw"] {
        config(
            dir,
            "leaky",
            &format!("  settings     = {{ mode = \"{mode}\" }}\n  max_attempts = 1\n"),
        );
        for args in [
            vec!["apply", "--auto-approve"],
            vec!["-vv", "rotate", "app/s"],
            vec!["history", "-o", "json"],
            vec!["history"],
            vec!["status", "-o", "json"],
        ] {
            let o = run_in(dir, &args);
            seen.push_str(&format!(
                "$ rota {}\n{}{}",
                args.join(" "),
                stdout(&o),
                stderr(&o)
            ));
        }
    }
    // The hooks ran and failed where expected.
    assert!(seen.contains("GET http://127.0.0.1:"), "{seen}");
    assert!(seen.contains("could not connect"), "{seen}");
    assert!(seen.contains("threw a value of type array"), "{seen}");
    assert!(
        seen.contains("base64 ***") && seen.contains("hex ***"),
        "{seen}"
    );
    for form in canary_forms() {
        assert!(!seen.contains(&form), "{form:?} leaked:\n{seen}");
    }
}

/// One request a [`TokenService`] received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// A loopback API-token service: `PUT /tokens/app` with `Authorization:
/// Bearer <current>` and `{"token": <new>}` installs a token (201 with an
/// `X-Request-Id` header); `GET /check` with `Authorization: Bearer <t>`
/// answers 200 when `t` is installed, else 401.
struct TokenService {
    addr: std::net::SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
}

fn token_service(initial: &str) -> TokenService {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let mut token = initial.to_owned();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (method, path) = (
                parts.next().unwrap_or_default().to_owned(),
                parts.next().unwrap_or_default().to_owned(),
            );
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.trim().split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0u8; len];
            let _ = reader.read_exact(&mut body);
            let body = String::from_utf8_lossy(&body).into_owned();
            let auth = headers
                .iter()
                .find(|(k, _)| k == "authorization")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let authorized = auth == format!("Bearer {token}");
            let status = match (method.as_str(), path.as_str()) {
                ("PUT", "/tokens/app") if authorized => {
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    match v["token"].as_str() {
                        Some(t) => {
                            token = t.to_owned();
                            "201 Created"
                        }
                        None => "400 Bad Request",
                    }
                }
                ("GET", "/check") if authorized => "200 OK",
                _ => "401 Unauthorized",
            };
            log.lock().unwrap().push(Seen {
                method,
                path,
                headers,
                body,
            });
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nX-Request-Id: req-7\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            );
        }
    });
    TokenService { addr, seen }
}

#[test]
fn the_http_request_builder_rotates_an_api_token() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let svc = token_service("initial-value");
    rhai_plugin(
        dir,
        "api-token",
        &format!("[capabilities]\nhttp = [\"{}\"]\n", svc.addr),
        &format!(
            r#"
fn set(ctx) {{
  let r = http::request(#{{
    method: "PUT",
    url: "http://{addr}/tokens/app",
    headers: #{{ Authorization: "Bearer " + ctx.current.reveal() }},
    json: #{{ token: ctx.pending }},
    timeout_ms: 5000
  }});
  if r.status != 201 {{ throw `the token service answered ${{r.status}}`; }}
  if r.headers["x-request-id"] != "req-7" {{ throw "no request id"; }}
}}

fn test(ctx) {{
  let r = http::request(#{{
    url: "http://{addr}/check",
    headers: #{{ Authorization: "Bearer " + ctx.pending.reveal() }}
  }});
  if r.status != 200 {{ throw `the new token is refused: ${{r.status}}`; }}
}}
"#,
            addr = svc.addr
        ),
    );
    config(dir, "api-token", "");
    let o = run_in(dir, &["apply", "--auto-approve"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run_in(dir, &["rotate", "app/s"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let seen = svc.seen.lock().unwrap().clone();
    let methods: Vec<(&str, &str)> = seen
        .iter()
        .map(|s| (s.method.as_str(), s.path.as_str()))
        .collect();
    assert_eq!(methods, [("PUT", "/tokens/app"), ("GET", "/check")]);
    assert_eq!(
        seen[0]
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.as_str()),
        Some("Bearer initial-value")
    );
    let new: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert!(
        new["token"].as_str().is_some_and(|t| t.len() >= 16),
        "{}",
        seen[0].body
    );
    // The token never reached the output.
    let token = new["token"].as_str().unwrap();
    assert!(!stdout(&o).contains(token) && !stderr(&o).contains(token));
}

#[test]
fn status_shows_the_stored_jobs_when_the_configuration_is_broken() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    config(dir, "password", "");
    let o = run_in(dir, &["run", "--apply", "--once"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    // The file breaks (as after a SIGHUP with a syntax error).
    std::fs::write(dir.join("main.tf"), "resource \"alicloud_kms_secret\" {\n").unwrap();
    let o = run_in(dir, &["status"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: the configuration does not load"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("main.tf:"), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(table.starts_with("NAME "), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("app/s ") && l.contains("active") && l.contains("password")),
        "{table}"
    );
    let o = run_in(dir, &["status", "-o", "json"]);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(rows[0]["secret"], "app/s", "{rows}");
    assert_eq!(rows[0]["rotation"], "r", "{rows}");
}

#[test]
fn workflow_run_needs_no_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("report.rhai"),
        "fn run(ctx) { #{ summary: \"nothing to see\", count: 0 } }\n",
    )
    .unwrap();
    let o = run_in(dir, &["workflow", "run", "report.rhai"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("report: nothing to see"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn plugins_with_one_name_are_an_error_naming_both_folders() {
    let hooks = "fn set(ctx) { }\nfn test(ctx) { }\n";
    // Two folders declaring `dup`.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    rhai_plugin(dir, "dup", "", hooks);
    let other = dir.join("plugins").join("dup-copy");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(
        other.join("plugin.toml"),
        "name = \"dup\"\nversion = \"2.0.0\"\n",
    )
    .unwrap();
    std::fs::write(other.join("hooks.rhai"), hooks).unwrap();
    config(dir, "dup", "");
    for args in [
        vec!["validate"],
        vec!["plugins", "check", "dup"],
        vec!["plugins", "list"],
    ] {
        let o = run_in(dir, &args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stdout(&o));
        let err = stderr(&o);
        assert!(
            err.contains("two plugins are named \"dup\""),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("plugins/dup") && err.contains("plugins/dup-copy"),
            "{args:?}: {err}"
        );
    }
    // A folder shadowing a built-in.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    rhai_plugin(dir, "password", "", hooks);
    config(dir, "password", "");
    for args in [vec!["validate"], vec!["plugins", "check", "password"]] {
        let o = run_in(dir, &args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stdout(&o));
        let err = stderr(&o);
        assert!(
            err.contains("two plugins are named \"password\"") && err.contains("built-in"),
            "{args:?}: {err}"
        );
    }
    // `plugins list` says where each plugin comes from.
    let o = run_in(dir, &["plugins", "list"]);
    let out = stdout(&o);
    assert!(
        out.lines()
            .any(|l| l.starts_with("password ") && l.contains("(rhai, any type: ")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("password ") && l.contains("(built-in, ")),
        "{out}"
    );
}

#[test]
fn import_is_refused_when_the_script_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    rhai_plugin(
        dir,
        "importer",
        "",
        "import \"helpers\" as h;\nfn set(ctx) { }\nfn test(ctx) { }\n",
    );
    let o = run_in(dir, &["plugins", "check", "importer"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o)
            .contains("hooks.rhai:1:1: syntax error: `import` is not allowed in Rota scripts"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_rotation_resumed_after_a_crash_is_one_run_in_the_history() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    config(dir, "password", "");
    let o = run_in(dir, &["apply", "--auto-approve"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = crate::rotation::cmd(dir)
        .env("ROTA_TEST_CRASH_AT", "after-set")
        .args(["rotate", "app/s"])
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0), "the crash did not happen");
    let o = run_in(dir, &["rotate", "app/s"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("resumed and finished it"),
        "{}",
        stdout(&o)
    );
    let o = run_in(dir, &["history", "app/s", "-o", "json"]);
    let runs: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let outcomes: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["rotated"], "{runs}");
}

#[test]
fn a_native_plugin_step_stops_at_the_rotations_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let echo = rota_test_support::build_plugin("example-echo", "");
    rota_test_support::copy_into(&echo, &dir.join("plugins"));
    config(
        dir,
        "example-echo",
        "  settings     = { delay_ms = 60000 }\n  timeout      = \"2s\"\n  max_attempts = 1\n",
    );
    let o = run_in(dir, &["apply", "--auto-approve"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let started = Instant::now();
    let o = run_in(dir, &["rotate", "app/s"]);
    // The plugin sleeps a minute; the step ends at its 2 s deadline.
    assert!(started.elapsed() < Duration::from_secs(45), "not stopped");
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("failed in step set: the step did not finish before its deadline"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn log_lines_of_a_hook_on_a_blocking_thread_carry_the_rotations_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    rhai_plugin(
        dir,
        "chatty",
        "",
        "fn set(ctx) {\n  time::sleep_ms(5);\n  log::info(\"set says hello\");\n}\nfn test(ctx) { log::info(\"test says hello\"); }\n",
    );
    config(dir, "chatty", "");
    let o = run_in(dir, &["apply", "--auto-approve"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run_in(dir, &["-v", "rotate", "app/s"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for hook in ["set", "test"] {
        let line = stderr(&o)
            .lines()
            .find(|l| l.contains(&format!("{hook} says hello")))
            .unwrap_or_default()
            .to_owned();
        assert!(
            line.contains("secret.name=app/s")
                && line.contains(&format!("rotation.step=\"{hook}\"")),
            "{hook}: {line:?}"
        );
    }
}

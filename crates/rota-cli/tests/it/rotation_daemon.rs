//! The long-running daemon (`rota run` without `--once`) as a child process
//! on a temp directory: it rotates on a one-second schedule (6-field cron),
//! reloads its jobs and workflows on SIGHUP, and exits 0 after draining on
//! SIGTERM.
//! Every wait polls a condition with a bounded number of attempts.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use rota_scheduler::JobStore as _;
use serde_json::Value;

use crate::common::{eventually, stdout};
use crate::rotation::{cmd, ok, run_in};

fn write_config(dir: &Path, rotated: &str) {
    std::fs::write(
        dir.join("main.tf"),
        format!(
            "resource \"alicloud_kms_secret\" \"db\" {{\n  secret_name = \"app/db\"\n  secret_data = \"initial-value-1\"\n  version_id  = \"v1\"\n}}\n\n\
             resource \"alicloud_kms_secret\" \"api\" {{\n  secret_name = \"app/api\"\n  secret_data = \"initial-value-1\"\n  version_id  = \"v1\"\n}}\n\n\
             rotation \"apps\" {{\n  secrets  = [\"{rotated}\"]\n  schedule = \"*/1 * * * * *\"\n  jitter   = false\n  plugin   = \"password\"\n}}\n"
        ),
    )
    .unwrap();
}

fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill {sig} failed");
}

fn rotated_runs(dir: &Path, secret: &str) -> usize {
    let o = run_in(dir, &["history", secret, "-o", "json"]);
    if !o.status.success() {
        return 0;
    }
    serde_json::from_str::<Value>(&stdout(&o))
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter(|r| r["outcome"] == "rotated")
        .count()
}

fn rotation_jobs(data: &Path) -> Vec<String> {
    let store = rota_scheduler::SqliteStore::open(data.join("scheduler.db")).unwrap();
    let mut names: Vec<String> = store
        .jobs()
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .filter(|n| n.starts_with("rotate:"))
        .collect();
    names.sort();
    names
}

#[test]
fn the_daemon_rotates_on_schedule_reloads_on_sighup_and_drains_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), "app/db");
    ok(&run_in(dir.path(), &["apply", "--auto-approve"]));
    let mut child = cmd(dir.path())
        .args(["run", "--grace", "10s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Standard error, read as it comes.
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let log = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            use std::io::Read as _;
            let mut stderr = stderr;
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                log.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };

    // A scheduled rotation completes (the schedule fires every second).
    eventually("a rotation of app/db in the history", 300, || {
        rotated_runs(dir.path(), "app/db") >= 1
    });
    let data = dir.path().join(".rota");
    assert_eq!(rotation_jobs(&data), ["rotate:app/db"]);

    // SIGHUP: the new configuration's job is registered, the old one
    // removed, and a workflow added by the reload runs.
    write_config(dir.path(), "app/api");
    std::fs::write(
        dir.path().join("hello.rhai"),
        "fn run(ctx) { #{ summary: \"hello from the reloaded workflow\" } }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("workflow.tf"),
        "workflow \"hello\" {\n  schedule        = \"@yearly\"\n  script          = \"hello.rhai\"\n  run_immediately = true\n}\n",
    )
    .unwrap();
    signal(&child, "-HUP");
    eventually("the reloaded jobs", 300, || {
        rotation_jobs(&data) == ["rotate:app/api"]
    });
    // The start counted rotations and workflows apart; the reload says what
    // changed.
    eventually("the reload's changes in the log", 300, || {
        let log = log.lock().unwrap();
        log.contains("rotate:app/api: scheduled")
            && log.contains("workflow:hello: scheduled")
            && log.contains("rotate:app/db: no longer configured")
    });
    assert!(
        log.lock()
            .unwrap()
            .contains("rota run: 1 rotation and 0 workflows scheduled"),
        "{}",
        log.lock().unwrap()
    );
    eventually("a run of the reloaded workflow", 300, || {
        let o = run_in(dir.path(), &["history", "workflow:hello", "-o", "json"]);
        o.status.success() && stdout(&o).contains("\"outcome\": \"ok\"")
    });
    let status: Value =
        serde_json::from_str(&stdout(&run_in(dir.path(), &["status", "-o", "json"]))).unwrap();
    let secrets: Vec<&str> = status
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["secret"].as_str())
        .collect();
    assert_eq!(secrets, ["app/api"], "{status}");
    let workflows: Vec<&str> = status
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["workflow"].as_str())
        .collect();
    assert_eq!(workflows, ["hello"], "{status}");
    assert_ne!(status[0]["state"], "not scheduled", "{status}");
    eventually("a rotation of app/api in the history", 300, || {
        rotated_runs(dir.path(), "app/api") >= 1
    });

    // A reload that needs a plugin the daemon did not load at start is
    // refused as a whole: the jobs stay as they were.
    let plugin = dir.path().join("plugins/stamp");
    std::fs::create_dir_all(&plugin).unwrap();
    std::fs::write(
        plugin.join("plugin.toml"),
        "name = \"stamp\"\nversion = \"1.0.0\"\n",
    )
    .unwrap();
    std::fs::write(
        plugin.join("hooks.rhai"),
        "fn set(ctx) { }\nfn test(ctx) { }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("stamp.tf"),
        "resource \"alicloud_kms_secret\" \"s\" {\n  secret_name = \"app/stamp\"\n  secret_data = \"initial\"\n  version_id  = \"v1\"\n}\nrotation \"stamp\" {\n  secrets  = [\"app/stamp\"]\n  schedule = \"@daily\"\n  plugin   = \"stamp\"\n}\n",
    )
    .unwrap();
    signal(&child, "-HUP");
    eventually("the refused reload", 300, || {
        log.lock()
            .unwrap()
            .contains("needs plugins this daemon did not load at start")
    });
    assert_eq!(rotation_jobs(&data), ["rotate:app/api"]);

    // SIGTERM: drain and exit 0.
    signal(&child, "-TERM");
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let err = log.lock().unwrap().clone();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(
        err.contains("stopping: letting rotations in flight finish"),
        "{err}"
    );
}

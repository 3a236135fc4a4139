//! Native plugins through the `rota` binary: libraries built from the
//! workspace (`plugins/example-echo` and its test variants,
//! `plugins/postgres-role`) and copied into a temporary configuration's
//! `plugins/` folder are listed, checked and refused by `rota plugins`, and
//! rotate secrets on the embedded default; a real process death between
//! `set` and `finish` with postgres-role is completed by the next run; and
//! no secret value reaches the logs at `-vv` (trace).
//!
//! postgres-role needs the machine's PostgreSQL (127.0.0.1:5432, user
//! postgres). Its `pg_hba.conf` trusts loopback logins, so a login proves
//! nothing: the role's password is checked against its SCRAM-SHA-256
//! verifier read from `pg_authid` (see `role_has_password`).

use rota_local::targets::scram_sha_256_matches as scram_matches;
use std::path::Path;
use std::process::Output;

use rota_kms::KmsClient;
use rota_kms::kms::GetSecretValue;
use rota_local::LocalCloud;
use sha2::{Digest as _, Sha256};

use crate::common::{rota_in as cmd, run_in, stderr, stdout};

use rota_test_support::{build_plugin, copy_into, library_file};

fn sha256_hex(path: &Path) -> String {
    Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(o),
        stderr(o)
    );
}

/// Writes `main.tf`: one Generic secret and a rotation of it with `plugin`.
fn write_config(dir: &Path, secret: &str, value: &str, plugin: &str, settings: &str) {
    std::fs::write(
        dir.join("main.tf"),
        format!(
            "resource \"alicloud_kms_secret\" \"s\" {{\n  secret_name = \"{secret}\"\n  secret_data = {value:?}\n  version_id  = \"v1\"\n}}\nrotation \"native\" {{\n  secrets  = [\"{secret}\"]\n  schedule = \"@daily\"\n  plugin   = \"{plugin}\"\n  settings = {settings}\n}}\n"
        ),
    )
    .unwrap();
}

/// `(version id, value)` of the version of `name` carrying `stage`, read
/// from the embedded cloud in `data` (after every `rota` exited).
fn stage(data: &Path, name: &str, stage: &str) -> Option<(String, String)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cloud = LocalCloud::options(data)
            .clock(std::sync::Arc::new(rota_test_support::system_clock()))
            .open()
            .await
            .unwrap();
        let kms = KmsClient::new(std::sync::Arc::new(cloud.clone()));
        let out = kms
            .send(&GetSecretValue {
                secret_name: name.into(),
                version_stage: Some(stage.into()),
                ..Default::default()
            })
            .await
            .ok()
            .map(|v| (v.version_id, v.secret_data.expose_secret().to_owned()));
        drop(cloud);
        out
    })
}

#[test]
fn list_shows_native_plugins_beside_built_in_ones_and_refusals_as_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let plugins = dir.join("plugins");
    // A good library in a folder with a plugin.toml that pins its digest.
    let echo = copy_into(&build_plugin("example-echo", ""), &plugins.join("echo"));
    std::fs::write(
        plugins.join("echo/plugin.toml"),
        format!("sha256 = \"{}\"\n", sha256_hex(&echo)),
    )
    .unwrap();
    // Refused: another ABI major version; no entry symbol; a pin that does
    // not match; a file that is not a library at all.
    copy_into(
        &build_plugin("example-echo", "wrong-abi"),
        &plugins.join("wrong-abi"),
    );
    copy_into(
        &build_plugin("example-echo", "no-entry"),
        &plugins.join("no-entry"),
    );
    let pinned = copy_into(&echo, &plugins.join("tampered"));
    std::fs::write(
        plugins.join("tampered/plugin.toml"),
        format!("sha256 = \"{}\"\n", "0".repeat(64)),
    )
    .unwrap();
    std::fs::write(plugins.join("not-a-library.so"), "just text\n").unwrap();

    let o = run_in(dir, &["plugins", "list"]);
    assert_eq!(o.status.code(), Some(1), "refusals make the exit code 1");
    let root = dir.canonicalize().unwrap();
    let text = format!("$ rota plugins list\n{}{}", stdout(&o), stderr(&o))
        .replace(&root.display().to_string(), "[TMP]")
        .replace(&dir.display().to_string(), "[TMP]")
        .replace(&sha256_hex(&pinned), "[SHA256]");
    insta::with_settings!({filters => vec![
        // The dynamic loader's own wording.
        (r"not a loadable library: .*", "not a loadable library: [dlerror]"),
    ]}, {
        insta::assert_snapshot!(text);
    });

    // `check` loads one native plugin by name and by path.
    let o = run_in(dir, &["plugins", "check", "example-echo"]);
    ok(&o);
    assert!(
        stdout(&o).starts_with("example-echo: ok (native, version "),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains(&sha256_hex(&echo)), "{}", stdout(&o));
    let wrong = plugins.join("wrong-abi").join(library_file("example-echo"));
    let o = run_in(dir, &["plugins", "check", wrong.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("plugin ABI version 99.0 is not supported"),
        "{}",
        stderr(&o)
    );
}

/// A full rotation of a Generic secret through example-echo, loaded from
/// `plugins/` beside the configuration, on the embedded default, at `-vv`:
/// the old (canary) value and the new one appear in no output, while the
/// plugin's own log line (its greeting) does, proving trace logs were on.
#[test]
fn rotate_runs_example_echo_and_no_value_reaches_the_trace_log() {
    const CANARY: &str = "canary-native-5c1d0e";
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_into(&build_plugin("example-echo", ""), &dir.join("plugins/echo"));
    write_config(
        dir,
        "app/echo",
        CANARY,
        "example-echo",
        "{ greeting = \"salut-from-echo\" }",
    );
    let mut logs = String::new();
    for args in [
        &["-vv", "validate"][..],
        &["-vv", "apply", "--auto-approve"],
        &["-vv", "rotate", "app/echo"],
        &["-vv", "history", "app/echo", "-o", "json"],
    ] {
        let o = run_in(dir, args);
        ok(&o);
        logs.push_str(&stdout(&o));
        logs.push_str(&stderr(&o));
    }
    let data = dir.join(".rota");
    let (id, value) = stage(&data, "app/echo", "ACSCurrent").unwrap();
    assert_ne!(id, "v1", "the rotation promoted a new version");
    assert_ne!(value, CANARY);
    assert_eq!(
        stage(&data, "app/echo", "ACSPrevious").map(|p| p.0),
        Some("v1".into())
    );
    assert!(stage(&data, "app/echo", "ACSPending").is_none());
    assert!(
        logs.contains("salut-from-echo: set"),
        "the plugin's debug log is captured at -vv:\n{logs}"
    );
    assert!(logs.contains("\"plugin\": \"example-echo\""), "{logs}");
    assert!(!logs.contains(CANARY), "the old value was logged:\n{logs}");
    assert!(!logs.contains(&value), "the new value was logged:\n{logs}");
}

// ------------------------------------------------------------ postgres-role

const ADMIN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";

fn admin<T>(f: impl FnOnce(&mut postgres::Client) -> T) -> T {
    let mut c = postgres::Client::connect(ADMIN, postgres::NoTls)
        .expect("PostgreSQL on 127.0.0.1:5432 (user postgres)");
    f(&mut c)
}

/// A uniquely named role, dropped when the test ends, passed or not.
struct Role(String);

impl Drop for Role {
    fn drop(&mut self) {
        let r = self.0.clone();
        admin(|c| {
            let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS \"{r}\""));
        });
    }
}

/// Whether `role`'s password is `password`, by its verifier in `pg_authid`.
fn role_has_password(role: &str, password: &str) -> bool {
    admin(|c| {
        c.query_opt(
            "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
            &[&role],
        )
        .unwrap()
        .and_then(|r| r.get::<_, Option<String>>(0))
    })
    .is_some_and(|v| scram_matches(&v, password))
}

fn password_of(value: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(value).unwrap();
    v["password"].as_str().unwrap().to_owned()
}

/// `ROTA_TEST_CRASH_AT=after-set` aborts the `rota` process after
/// postgres-role's `set` changed the role and before `finish` promoted the
/// version; the next `rota rotate` finishes that rotation, and the role's
/// password is ACSCurrent's.
#[test]
fn a_real_crash_after_set_with_postgres_role_is_completed_by_the_next_run() {
    let role = Role(format!("rota_cli_crash_{:08x}", rand::random::<u32>()));
    let r = role.0.clone();
    admin(|c| {
        c.batch_execute(&format!(
            "CREATE ROLE \"{r}\" WITH LOGIN PASSWORD 'Initial-Pass-9'"
        ))
        .unwrap()
    });
    assert!(role_has_password(&role.0, "Initial-Pass-9"));

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy_into(
        &build_plugin("postgres-role", ""),
        &dir.join("plugins/postgres-role"),
    );
    let login = serde_json::json!({"host": "127.0.0.1", "port": 5432, "dbname": "postgres",
        "username": role.0, "password": "Initial-Pass-9"})
    .to_string();
    write_config(dir, "db/app", &login, "postgres-role", "{}");
    ok(&run_in(dir, &["apply", "--auto-approve"]));

    // The crash: the process aborts at after-set, as kill -9 would.
    let o = cmd(dir)
        .env("ROTA_TEST_CRASH_AT", "after-set")
        .args(["rotate", "db/app"])
        .output()
        .unwrap();
    assert!(!o.status.success(), "the crash did not happen");
    assert!(
        stderr(&o).contains("aborting at after-set"),
        "{}",
        stderr(&o)
    );
    let data = dir.join(".rota");
    let (current_id, current) = stage(&data, "db/app", "ACSCurrent").unwrap();
    assert_eq!(current_id, "v1", "promoted before the crash");
    assert_eq!(password_of(&current), "Initial-Pass-9");
    let (token, pending) = stage(&data, "db/app", "ACSPending").expect("ACSPending written");
    let pending_pw = password_of(&pending);
    assert!(
        role_has_password(&role.0, &pending_pw),
        "set ran before the crash"
    );

    // Recovery: the next run finishes that rotation.
    let o = run_in(dir, &["rotate", "db/app"]);
    ok(&o);
    assert!(
        stdout(&o).contains(&format!("resumed and finished it: version {token}")),
        "{}",
        stdout(&o)
    );
    let (id, current) = stage(&data, "db/app", "ACSCurrent").unwrap();
    assert_eq!(id, token);
    assert_eq!(password_of(&current), pending_pw);
    assert!(
        role_has_password(&role.0, &password_of(&current)),
        "the role's password is ACSCurrent"
    );
    assert!(!role_has_password(&role.0, "Initial-Pass-9"));
    assert!(stage(&data, "db/app", "ACSPending").is_none());
}

/// `rota plugins check FOLDER` on native plugin folders: a bare library, a
/// library pinned by a `sha256`-only `plugin.toml`, a `plugin.toml` with a
/// misspelt key (refused: a typo must not disable the pin), and a
/// `plugin.toml` with nothing beside it.
#[test]
fn check_takes_native_plugin_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let echo = build_plugin("example-echo", "");
    let check = |folder: &Path| run_in(dir, &["plugins", "check", folder.to_str().unwrap()]);

    let plain = dir.join("plain");
    copy_into(&echo, &plain);
    let o = check(&plain);
    ok(&o);
    assert!(
        stdout(&o).starts_with("example-echo: ok (native, version "),
        "{}",
        stdout(&o)
    );

    let pinned = dir.join("pinned");
    let lib = copy_into(&echo, &pinned);
    std::fs::write(
        pinned.join("plugin.toml"),
        format!("sha256 = \"{}\"\n", sha256_hex(&lib)),
    )
    .unwrap();
    let o = check(&pinned);
    ok(&o);
    assert!(stdout(&o).contains(&sha256_hex(&lib)), "{}", stdout(&o));

    let typo = dir.join("typo");
    let lib = copy_into(&echo, &typo);
    std::fs::write(
        typo.join("plugin.toml"),
        format!("sha265 = \"{}\"\n", sha256_hex(&lib)),
    )
    .unwrap();
    let o = check(&typo);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("unknown field `sha265`"),
        "{}",
        stderr(&o)
    );

    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("plugin.toml"), "sha256 = \"00\"\n").unwrap();
    let o = check(&empty);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("holds no plugin: it has a plugin.toml but neither hooks.rhai"),
        "{}",
        stderr(&o)
    );
}

//! The postgres-role native plugin against the machine's PostgreSQL
//! (127.0.0.1:5432, user postgres): single-user and alternating-users
//! rotations, and a crash between `set` and `finish` that the next run
//! completes. Each test creates uniquely named roles and drops them at the
//! end, passed or not.
//!
//! **What is proved.** This machine's `pg_hba.conf` trusts every local and
//! loopback connection (`local all all trust`, `host all all 127.0.0.1/32
//! trust`), so logging in with a password proves nothing, and a test may not
//! change the server's configuration. The tests instead read each role's
//! SCRAM-SHA-256 verifier from `pg_authid` as the superuser and check a
//! password against it client-side (PBKDF2-HMAC-SHA256 → ClientKey →
//! StoredKey, and ServerKey, as RFC 5802 and PostgreSQL compute them):
//! exactly the check a `scram-sha-256` pg_hba line makes at login. So
//! "the role's password equals ACSCurrent" means: ACSCurrent's password
//! matches the role's verifier, and the old password does not.

use rota_local::targets::scram_sha_256_matches as scram_matches;
use rota_rotation::{CrashHook, CrashPoint, RotationOutcome};
use serde_json::{Value, json};

use crate::common::{Env, env, load, request, token};

const ADMIN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";

/// Runs `f` with a superuser connection on a thread of its own (the
/// synchronous client must not run inside the test's async runtime).
fn admin<T: Send + 'static>(f: impl FnOnce(&mut postgres::Client) -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(ADMIN, postgres::NoTls)
            .expect("PostgreSQL on 127.0.0.1:5432 (user postgres)");
        f(&mut c)
    })
    .join()
    .unwrap()
}

/// Uniquely named roles, dropped when the test ends.
struct Roles(Vec<String>);

impl Roles {
    fn new(prefix: &str) -> (Self, String) {
        let n: u32 = rand::random();
        let base = format!("{prefix}_{n:08x}");
        (Self(vec![base.clone(), format!("{base}_clone")]), base)
    }
}

impl Drop for Roles {
    fn drop(&mut self) {
        let roles = self.0.clone();
        admin(move |c| {
            for r in roles {
                let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS \"{r}\""));
            }
        });
    }
}

fn verifier(role: &str) -> Option<String> {
    let role = role.to_owned();
    admin(move |c| {
        c.query_opt(
            "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
            &[&role],
        )
        .unwrap()
        .and_then(|r| r.get::<_, Option<String>>(0))
    })
}

/// Whether `role`'s password is `password`.
fn role_has_password(role: &str, password: &str) -> bool {
    verifier(role).is_some_and(|v| scram_matches(&v, password))
}

fn login(username: &str, password: &str) -> String {
    json!({"host": "127.0.0.1", "port": 5432, "dbname": "postgres",
           "username": username, "password": password})
    .to_string()
}

fn parse(value: &str) -> (String, String) {
    let v: Value = serde_json::from_str(value).unwrap();
    (
        v["username"].as_str().unwrap().to_owned(),
        v["password"].as_str().unwrap().to_owned(),
    )
}

async fn current(e: &Env, name: &str) -> (String, String, String) {
    let (id, v) = e.stage(name, "ACSCurrent").await.unwrap();
    let (u, p) = parse(&v);
    (id, u, p)
}

fn create_role(role: &str, password: &str, createrole: bool) {
    let sql = format!(
        "CREATE ROLE \"{role}\" WITH LOGIN {} PASSWORD '{password}'",
        if createrole { "CREATEROLE" } else { "" }
    );
    admin(move |c| c.batch_execute(&sql).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_user_rotation_sets_the_role_password_to_acscurrent() {
    let (_roles, role) = Roles::new("rota_pr_single");
    create_role(&role, "Initial-Pass-1", false);
    assert!(role_has_password(&role, "Initial-Pass-1"));

    let e = env().await;
    e.create("db/app", &login(&role, "Initial-Pass-1")).await;
    let (rotator, _) = e.rotator(load("postgres-role", ""));
    for n in 1..=2 {
        let (_, _, old) = current(&e, "db/app").await;
        let out = rotator
            .rotate(&request("db/app", "postgres-role", json!({}), &token(n)))
            .await
            .unwrap();
        assert!(matches!(out, RotationOutcome::Rotated { .. }), "{out:?}");
        let (id, user, new) = current(&e, "db/app").await;
        assert_eq!(id, token(n));
        assert_eq!(user, role, "single-user keeps the role");
        assert_ne!(new, old);
        assert!(
            role_has_password(&role, &new),
            "the role does not hold ACSCurrent"
        );
        assert!(
            !role_has_password(&role, &old),
            "the old password still matches"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alternating_users_hand_over_between_the_role_and_its_clone() {
    let (_roles, role) = Roles::new("rota_pr_alt");
    let clone = format!("{role}_clone");
    create_role(&role, "Initial-Pass-2", true);

    let e = env().await;
    e.create("db/alt", &login(&role, "Initial-Pass-2")).await;
    let (rotator, _) = e.rotator(load("postgres-role", ""));
    let settings = json!({"mode": "alternating"});

    // First rotation: the clone is created with the new password; the
    // original role keeps its password (ACSPrevious) during the handover.
    rotator
        .rotate(&request(
            "db/alt",
            "postgres-role",
            settings.clone(),
            &token(1),
        ))
        .await
        .unwrap();
    let (_, user1, pass1) = current(&e, "db/alt").await;
    assert_eq!(user1, clone);
    assert!(role_has_password(&clone, &pass1));
    assert!(role_has_password(&role, "Initial-Pass-2"));
    let member = {
        let (r, c) = (role.clone(), clone.clone());
        admin(move |db| {
            db.query_one("SELECT pg_has_role($1, $2, 'MEMBER')", &[&c, &r])
                .unwrap()
                .get::<_, bool>(0)
        })
    };
    assert!(member, "the clone has the role's privileges");

    // Second rotation: back to the original role, the clone untouched.
    rotator
        .rotate(&request("db/alt", "postgres-role", settings, &token(2)))
        .await
        .unwrap();
    let (_, user2, pass2) = current(&e, "db/alt").await;
    assert_eq!(user2, role);
    assert!(role_has_password(&role, &pass2));
    assert!(!role_has_password(&role, "Initial-Pass-2"));
    assert!(role_has_password(&clone, &pass1), "ACSPrevious still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_set_and_finish_is_completed_by_the_next_run() {
    let (_roles, role) = Roles::new("rota_pr_crash");
    create_role(&role, "Initial-Pass-3", false);
    let e = env().await;
    e.create("db/crash", &login(&role, "Initial-Pass-3")).await;
    let (rotator, _) = e.rotator(load("postgres-role", ""));

    // The engine's crash point `after-set`: the target has the candidate,
    // KMS has it as ACSPending, nothing is promoted. The hook panics, which
    // ends the rotation task there as an abort would end the process.
    let crashing = rotator.clone().with_crash_hook(CrashHook::new(|p| {
        if p == CrashPoint::AfterSet {
            panic!("simulated crash at after-set");
        }
    }));
    let t = token(1);
    let req = request("db/crash", "postgres-role", json!({}), &t);
    let run = {
        let req = req.clone();
        tokio::spawn(async move { crashing.rotate(&req).await })
    };
    assert!(run.await.unwrap_err().is_panic());
    let (pending_id, pending) = e.stage("db/crash", "ACSPending").await.unwrap();
    assert_eq!(pending_id, t);
    let (_, pending_pw) = parse(&pending);
    assert!(
        role_has_password(&role, &pending_pw),
        "set ran before the crash"
    );
    assert_eq!(current(&e, "db/crash").await.2, "Initial-Pass-3");

    // The next run with the same token finishes the rotation.
    let out = rotator.rotate(&req).await.unwrap();
    assert_eq!(out, rota_test_support::rotation::rotated(&t));
    let (id, user, pass) = current(&e, "db/crash").await;
    assert_eq!((id.as_str(), user.as_str()), (t.as_str(), role.as_str()));
    assert_eq!(pass, pending_pw);
    assert!(
        role_has_password(&role, &pass),
        "the role's password is ACSCurrent"
    );
    assert!(!role_has_password(&role, "Initial-Pass-3"));
    assert!(e.stage("db/crash", "ACSPending").await.is_none());
}

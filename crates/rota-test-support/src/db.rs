//! The machine's PostgreSQL (127.0.0.1:5432, user `postgres`, trust) and
//! MariaDB (127.0.0.1:3306, `root`, no password), as tests that rotate real
//! database accounts use them: unique names, a role's stored verifier, a
//! login check, and clean-up that runs whether the test passed or not.

use std::future::Future;

/// The administrative PostgreSQL URL.
pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The administrative MariaDB URL.
pub const MY_URL: &str = "mysql://root@127.0.0.1:3306";

/// `prefix` and eight random hex digits: a role or user name no other test
/// run uses.
pub fn unique(prefix: &str) -> String {
    let n: u32 = rand::random();
    format!("{prefix}{n:08x}")
}

/// An administrative connection to PostgreSQL.
///
/// # Panics
///
/// When PostgreSQL is not there (the README lists it among what the tests
/// need).
pub async fn pg() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(PG_URL, tokio_postgres::NoTls)
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth)");
    tokio::spawn(conn);
    client
}

/// The SCRAM verifier PostgreSQL stores for `role` (this machine trusts
/// loopback logins, so a login proves nothing: tests check the verifier).
///
/// # Panics
///
/// When the role does not exist.
pub async fn pg_verifier(role: &str) -> String {
    pg().await
        .query_one(
            "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
            &[&role],
        )
        .await
        .expect("the role exists")
        .get(0)
}

/// Drops `roles` if they exist.
pub async fn pg_drop(roles: &[String]) {
    let c = pg().await;
    for r in roles {
        let _ = c
            .batch_execute(&format!("DROP ROLE IF EXISTS \"{r}\""))
            .await;
    }
}

/// Whether `user` logs in to MariaDB with `password` (and is then that
/// user); `Err` with the server's refusal.
pub async fn my_login(user: &str, password: &str) -> Result<(), String> {
    use mysql_async::prelude::Queryable as _;
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(3306)
        .user(Some(user))
        .pass(Some(password));
    let mut c = mysql_async::Conn::new(opts)
        .await
        .map_err(|e| e.to_string())?;
    let who: Option<String> = c
        .query_first("SELECT CURRENT_USER()")
        .await
        .map_err(|e| e.to_string())?;
    let _ = c.disconnect().await;
    match who {
        Some(w) if w == format!("{user}@%") => Ok(()),
        other => Err(format!("logged in as {other:?}, not {user}@%")),
    }
}

/// Drops the MariaDB `users` (`'user'@'%'`) if they exist.
///
/// # Panics
///
/// When MariaDB is not there.
pub async fn my_drop(users: &[String]) {
    let mut c = mysql_async::Conn::from_url(MY_URL)
        .await
        .expect("MariaDB on 127.0.0.1:3306 (root, no password)");
    for u in users {
        let _ = mysql_async::prelude::Queryable::query_drop(
            &mut c,
            format!("DROP USER IF EXISTS '{u}'@'%'"),
        )
        .await;
    }
    let _ = c.disconnect().await;
}

/// Runs `body`, then `cleanup` whatever happened, then re-raises a panic of
/// `body`.
pub async fn with_cleanup<F, C>(body: F, cleanup: C)
where
    F: Future<Output = ()> + Send + 'static,
    C: Future<Output = ()>,
{
    let r = tokio::spawn(body).await;
    cleanup.await;
    if let Err(e) = r {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// A PostgreSQL schema of its own for one test (a unique name, dropped with
/// everything in it when the value is dropped, whether the test passed or
/// not): the shared-store tests each work in one.
#[derive(Debug)]
pub struct TestSchema {
    /// The schema's name.
    pub name: String,
}

impl TestSchema {
    /// A fresh name (the store creates the schema).
    pub fn new() -> Self {
        Self {
            name: unique("rota_test_"),
        }
    }
}

impl Default for TestSchema {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Its own thread and runtime: drop may run inside a test's runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(PG_URL, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

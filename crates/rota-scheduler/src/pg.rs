//! PostgreSQL, the shared store of daemons on several hosts: where to
//! connect ([`PgOptions`]: URL, password, TLS, schema), a small connection
//! pool with reconnection ([`PgPool`]), and the bridge that lets the
//! synchronous [`crate::JobStore`] methods run async queries.
//!
//! The pool runs its connections on a runtime of its own (one worker
//! thread), so a caller may block on a query from any thread, inside an
//! async context or not, without starving its own runtime. Queries are
//! closures over a `&mut Client`; a connection that broke is dropped and the
//! next query opens a new one. [`PgPool::is_up`] says whether the last
//! attempt to reach the server worked (daemons report it as `store_up`).
//!
//! TLS follows the URL's `sslmode` as libpq reads it, with rustls (no
//! OpenSSL): `disable`; `prefer` (the default) and `require` encrypt without
//! checking the server's certificate; `verify-full` (or `verify-ca`)
//! requires TLS and checks the certificate and host name against the
//! platform's trust store.
//!
//! This module never reads the environment: the caller resolves the
//! password (a variable, a `PGPASSFILE` — see [`pgpass_lookup`]) and passes
//! it in.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, broadcast};
use tokio_postgres::config::Host;
use tokio_postgres::{AsyncMessage, Client, Config};

/// A boxed future borrowing the client.
pub type PgFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, tokio_postgres::Error>> + Send + 'a>>;

/// How long connecting may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why PostgreSQL could not be used. Messages name the server (host, port,
/// database, user), never the password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The URL does not parse.
    #[error("invalid store URL {url}: {reason}")]
    Url {
        /// The URL with its password masked.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server did not answer.
    #[error("cannot reach PostgreSQL at {server}: {reason}")]
    Unreachable {
        /// `host:port`.
        server: String,
        /// Why (connection refused, timed out, name not resolved).
        reason: String,
    },
    /// The server refused the user or the password.
    #[error("PostgreSQL at {server} refused user {user:?}: {reason}")]
    Auth {
        /// `host:port`.
        server: String,
        /// The user.
        user: String,
        /// The server's message.
        reason: String,
    },
    /// The database does not exist.
    #[error("PostgreSQL at {server} has no database {database:?}")]
    NoDatabase {
        /// `host:port`.
        server: String,
        /// The database.
        database: String,
    },
    /// The store was written by a newer Rota.
    #[error(
        "the {component} tables in PostgreSQL schema {schema:?} have layout version {found}; this Rota understands up to {supported}"
    )]
    NewerSchema {
        /// `scheduler`, `history`, …
        component: String,
        /// The schema.
        schema: String,
        /// Version found.
        found: i32,
        /// Newest version this build writes.
        supported: i32,
    },
    /// A query failed.
    #[error("PostgreSQL query failed: {0}")]
    Query(String),
    /// A transaction lost to a concurrent one (deadlock or serialization
    /// failure): running it again may succeed.
    #[error("PostgreSQL aborted a conflicting transaction: {0}")]
    Conflict(String),
    /// The connection broke, or the server went away, mid-query.
    #[error("lost the connection to PostgreSQL at {server}: {reason}")]
    Lost {
        /// `host:port`.
        server: String,
        /// Why.
        reason: String,
    },
    /// The pool's runtime is gone (the process is shutting down).
    #[error("the PostgreSQL pool is shut down")]
    Shutdown,
}

impl PgError {
    /// What to do about it, for the errors a user can act on.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Self::Url { .. } => "write postgres://USER@HOST:PORT/DATABASE (the password from password_env, PGPASSWORD or a PGPASSFILE)".into(),
            Self::Unreachable { .. } => "check the host and port, that PostgreSQL runs, and that this host may connect (pg_hba.conf, firewalls)".into(),
            Self::Auth { .. } => "check the user and its password (password_env, PGPASSWORD or PGPASSFILE), and pg_hba.conf".into(),
            Self::NoDatabase { database, .. } => format!("create it: createdb {database} (or CREATE DATABASE {database})"),
            Self::NewerSchema { .. } => "a newer Rota migrated this store: upgrade Rota on this host too (or point it at another schema)".into(),
            _ => return None,
        })
    }

    /// Whether the server could not be reached or the connection broke (as
    /// opposed to a refused request).
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. } | Self::Lost { .. } | Self::Shutdown
        )
    }
}

/// Where the shared store is.
#[derive(Clone)]
pub struct PgOptions {
    config: Config,
    shown: String,
    schema: String,
    /// `sslmode=verify-full` or `verify-ca`: check the certificate.
    verify: bool,
}

impl fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &self.shown)
            .field("schema", &self.schema)
            .finish()
    }
}

/// Whether `url` selects PostgreSQL.
pub fn is_pg_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `url` with any password replaced by `***`.
pub fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some((a, h)) => (a, h),
        None => return url.to_owned(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

impl PgOptions {
    /// Parses a `postgres://` URL. `password` is used when the URL has
    /// none. The schema defaults to `rota`.
    ///
    /// # Errors
    ///
    /// [`PgError::Url`] when it does not parse or is not a PostgreSQL URL.
    pub fn parse(url: &str, password: Option<&str>) -> Result<Self, PgError> {
        let bad = |reason: String| PgError::Url {
            url: mask_url(url),
            reason,
        };
        if !is_pg_url(url) {
            return Err(bad(
                "it does not start with postgres:// or postgresql://".into()
            ));
        }
        // tokio-postgres knows disable/prefer/require; the verifying modes
        // are require plus a certificate check here.
        let verify = url.contains("sslmode=verify-full") || url.contains("sslmode=verify-ca");
        let url_for_config = url
            .replace("sslmode=verify-full", "sslmode=require")
            .replace("sslmode=verify-ca", "sslmode=require");
        let mut config = Config::from_str(&url_for_config).map_err(|e| bad(e.to_string()))?;
        if config.get_hosts().is_empty() {
            return Err(bad("it names no host".into()));
        }
        if config.get_password().is_none()
            && let Some(p) = password
        {
            config.password(p);
        }
        if config.get_user().is_none() {
            config.user("postgres");
        }
        if config.get_dbname().is_none() {
            let user = config.get_user().unwrap_or("postgres").to_owned();
            config.dbname(&user);
        }
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("rota");
        config.keepalives_idle(Duration::from_secs(30));
        let shown = format!(
            "postgres://{}@{}/{}",
            config.get_user().unwrap_or_default(),
            server_of(&config),
            config.get_dbname().unwrap_or_default()
        );
        Ok(Self {
            config,
            shown,
            schema: "rota".into(),
            verify,
        })
    }

    /// Uses `schema` (created if missing) for every table.
    pub fn schema(mut self, schema: &str) -> Self {
        schema.clone_into(&mut self.schema);
        self
    }

    /// The schema.
    pub fn schema_name(&self) -> &str {
        &self.schema
    }

    /// `postgres://user@host:port/db`, without the password.
    pub fn display(&self) -> &str {
        &self.shown
    }

    /// The user.
    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or_default()
    }

    /// `host:port`.
    pub fn server(&self) -> String {
        server_of(&self.config)
    }

    /// The database.
    pub fn database(&self) -> &str {
        self.config.get_dbname().unwrap_or_default()
    }

    /// Whether a password is set (from the URL or given).
    pub fn has_password(&self) -> bool {
        self.config.get_password().is_some()
    }

    /// Sets the password (a `PGPASSFILE` match found by the caller).
    pub fn password(mut self, password: &str) -> Self {
        self.config.password(password);
        self
    }

    /// The first host and port, for a `PGPASSFILE` lookup.
    pub fn first_host_port(&self) -> (String, u16) {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => String::new(),
        };
        (
            host,
            self.config.get_ports().first().copied().unwrap_or(5432),
        )
    }
}

fn server_of(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "?".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

/// The password a `PGPASSFILE` (`host:port:database:user:password` lines,
/// `*` wildcards, `\:` and `\\` escapes, `#` comments) gives for a server,
/// database and user, as libpq reads it.
pub fn pgpass_lookup(
    text: &str,
    host: &str,
    port: u16,
    database: &str,
    user: &str,
) -> Option<String> {
    let port = port.to_string();
    for line in text.lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => cur.extend(chars.next()),
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        fields.push(cur);
        if fields.len() != 5 {
            continue;
        }
        let ok = |pat: &str, v: &str| pat == "*" || pat == v;
        if ok(&fields[0], host)
            && ok(&fields[1], &port)
            && ok(&fields[2], database)
            && ok(&fields[3], user)
        {
            return fields.pop();
        }
    }
    None
}

/// Connections to one server, with the runtime they run on.
pub struct PgPool {
    inner: Arc<PoolInner>,
    rt: Option<tokio::runtime::Runtime>,
}

struct PoolInner {
    opts: PgOptions,
    idle: Mutex<Vec<Client>>,
    slots: Semaphore,
    up: AtomicBool,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
}

impl fmt::Debug for PgPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgPool")
            .field("server", &self.inner.opts.display())
            .field("up", &self.is_up())
            .finish()
    }
}

impl Drop for PgPool {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl PgPool {
    /// A pool of at most `max` connections to `opts`; connects once to
    /// check the server, the user and the database.
    ///
    /// # Errors
    ///
    /// [`PgError::Unreachable`], [`PgError::Auth`], [`PgError::NoDatabase`].
    pub fn connect(opts: PgOptions, max: usize) -> Result<Self, PgError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rota-pg")
            .enable_all()
            .build()
            .map_err(|e| PgError::Query(format!("cannot start the PostgreSQL runtime: {e}")))?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls_config = if opts.verify {
            <rustls::ClientConfig as rustls_platform_verifier::ConfigVerifierExt>::with_platform_verifier()
                .map_err(|e| PgError::Query(format!("cannot load the trusted certificates: {e}")))?
        } else {
            rustls::ClientConfig::builder()
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(EncryptOnly::default()))
                .with_no_client_auth()
        };
        let pool = Self {
            inner: Arc::new(PoolInner {
                opts,
                idle: Mutex::new(Vec::new()),
                slots: Semaphore::new(max.max(1)),
                up: AtomicBool::new(false),
                tls: tokio_postgres_rustls::MakeRustlsConnect::new(tls_config),
            }),
            rt: Some(rt),
        };
        pool.run(|c| Box::pin(async move { c.simple_query("SELECT 1").await.map(drop) }))?;
        Ok(pool)
    }

    /// The options.
    pub fn options(&self) -> &PgOptions {
        &self.inner.opts
    }

    /// Whether the last attempt to reach the server worked.
    pub fn is_up(&self) -> bool {
        self.inner.up.load(Ordering::Relaxed)
    }

    /// Runs `f` on a pooled connection, blocking the calling thread (any
    /// thread: the query runs on the pool's own runtime).
    ///
    /// # Errors
    ///
    /// A connection or query error, as a [`PgError`].
    pub fn run<T, F>(&self, f: F) -> Result<T, PgError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Client) -> PgFuture<'c, T> + Send + 'static,
    {
        let rt = self.rt.as_ref().ok_or(PgError::Shutdown)?;
        let (tx, rx) = std::sync::mpsc::channel();
        let inner = Arc::clone(&self.inner);
        rt.spawn(async move {
            let _ = tx.send(inner.with_client(f).await);
        });
        rx.recv().map_err(|_| PgError::Shutdown)?
    }

    /// [`Self::run`] for async callers: awaits instead of blocking.
    ///
    /// # Errors
    ///
    /// As [`Self::run`].
    pub async fn run_async<T, F>(&self, f: F) -> Result<T, PgError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Client) -> PgFuture<'c, T> + Send + 'static,
    {
        let rt = self.rt.as_ref().ok_or(PgError::Shutdown)?;
        let inner = Arc::clone(&self.inner);
        rt.spawn(async move { inner.with_client(f).await })
            .await
            .map_err(|_| PgError::Shutdown)?
    }

    /// Runs `f` on the pool's runtime (background work: renewals,
    /// releases). `None` once the pool is shut down.
    pub fn spawn<F>(&self, f: F) -> Option<tokio::task::JoinHandle<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.rt.as_ref().map(|rt| rt.spawn(f))
    }

    /// Delivers the notifications of `channel` (`LISTEN`) on a connection
    /// of its own, reconnecting with backoff; after each (re)connection a
    /// `None` is sent, since notifications may have been missed meanwhile.
    pub fn listen(&self, channel: &str) -> broadcast::Receiver<Option<String>> {
        let (tx, rx) = broadcast::channel(256);
        let Some(rt) = self.rt.as_ref() else {
            return rx;
        };
        let inner = Arc::clone(&self.inner);
        let channel = channel.to_owned();
        rt.spawn(async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                if tx.receiver_count() == 0 {
                    return;
                }
                match inner.opts.config.connect(inner.tls.clone()).await {
                    Ok((client, mut conn)) => {
                        let (msgs_tx, mut msgs) = tokio::sync::mpsc::unbounded_channel();
                        let driver = tokio::spawn(async move {
                            while let Some(m) =
                                std::future::poll_fn(|cx| conn.poll_message(cx)).await
                            {
                                match m {
                                    Ok(AsyncMessage::Notification(n)) => {
                                        let _ = msgs_tx.send(n.payload().to_owned());
                                    }
                                    Ok(_) => {}
                                    Err(_) => break,
                                }
                            }
                        });
                        if client
                            .batch_execute(&format!("LISTEN {channel}"))
                            .await
                            .is_ok()
                        {
                            backoff = Duration::from_millis(200);
                            let _ = tx.send(None);
                            while let Some(payload) = msgs.recv().await {
                                let _ = tx.send(Some(payload));
                            }
                        }
                        driver.abort();
                    }
                    Err(_) => inner.up.store(false, Ordering::Relaxed),
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        });
        rx
    }
}

impl PoolInner {
    async fn with_client<T, F>(&self, f: F) -> Result<T, PgError>
    where
        F: for<'c> FnOnce(&'c mut Client) -> PgFuture<'c, T>,
    {
        let _slot = self.slots.acquire().await.map_err(|_| PgError::Shutdown)?;
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .filter(|c| !c.is_closed());
        let mut client = match idle {
            Some(c) => c,
            None => self.open().await.inspect_err(|e| {
                if e.is_connection() {
                    self.up.store(false, Ordering::Relaxed);
                }
            })?,
        };
        let result = f(&mut client).await;
        match result {
            Ok(v) => {
                self.up.store(true, Ordering::Relaxed);
                self.idle
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(client);
                Ok(v)
            }
            Err(e) => {
                let broken = client.is_closed() || e.is_closed() || e.code().is_none();
                if broken {
                    self.up.store(false, Ordering::Relaxed);
                    Err(PgError::Lost {
                        server: self.opts.server(),
                        reason: e.to_string(),
                    })
                } else {
                    self.up.store(true, Ordering::Relaxed);
                    self.idle
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(client);
                    let conflict = e.code().is_some_and(|c| {
                        *c == tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
                            || *c == tokio_postgres::error::SqlState::T_R_SERIALIZATION_FAILURE
                    });
                    if conflict {
                        Err(PgError::Conflict(query_error(&e)))
                    } else {
                        Err(PgError::Query(query_error(&e)))
                    }
                }
            }
        }
    }

    /// A new connection, its driver spawned on the current runtime.
    async fn open(&self) -> Result<Client, PgError> {
        let (client, conn) = self
            .opts
            .config
            .connect(self.tls.clone())
            .await
            .map_err(|e| self.connect_error(&e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    fn connect_error(&self, e: &tokio_postgres::Error) -> PgError {
        let server = self.opts.server();
        match e.code() {
            Some(c)
                if *c == tokio_postgres::error::SqlState::INVALID_PASSWORD
                    || *c
                        == tokio_postgres::error::SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
            {
                PgError::Auth {
                    server,
                    user: self.opts.user().to_owned(),
                    reason: query_error(e),
                }
            }
            Some(c) if *c == tokio_postgres::error::SqlState::INVALID_CATALOG_NAME => {
                PgError::NoDatabase {
                    server,
                    database: self.opts.database().to_owned(),
                }
            }
            _ => PgError::Unreachable {
                server,
                reason: chain(e),
            },
        }
    }
}

/// libpq's `sslmode=prefer`/`require`: the connection is encrypted, the
/// server's certificate is not checked (use `verify-full` for that). The
/// handshake's signatures are still verified.
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl Default for EncryptOnly {
    fn default() -> Self {
        Self(Arc::new(rustls::crypto::ring::default_provider()))
    }
}

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The server's message (`severity: message`) or the error chain.
fn query_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => chain(e),
    }
}

fn chain(e: &tokio_postgres::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

/// Applies `migrations` (one per version, from 1) of `component` in the
/// pool's schema, under an advisory lock so daemons starting together
/// migrate once. Refuses a layout newer than this build's.
///
/// # Errors
///
/// [`PgError::NewerSchema`], or the query's error.
pub fn migrate(
    pool: &PgPool,
    component: &'static str,
    migrations: &'static [&'static str],
) -> Result<(), PgError> {
    let schema = pool.options().schema_name().to_owned();
    let supported = i32::try_from(migrations.len()).unwrap_or(i32::MAX);
    let found = pool.run(move |c| {
        Box::pin(async move {
            let tx = c.transaction().await?;
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext('rota-migrate'))",
                &[],
            )
            .await?;
            tx.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
                 CREATE TABLE IF NOT EXISTS \"{schema}\".rota_schema (
                     component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            ))
            .await?;
            let row = tx
                .query_opt(
                    &format!("SELECT version FROM \"{schema}\".rota_schema WHERE component = $1"),
                    &[&component],
                )
                .await?;
            let found: i32 = row.map_or(0, |r| r.get(0));
            if found > supported {
                tx.rollback().await?;
                return Ok(Err(found));
            }
            for (i, m) in migrations
                .iter()
                .enumerate()
                .skip(usize::try_from(found).unwrap_or(0))
            {
                tx.batch_execute(&format!("SET LOCAL search_path TO \"{schema}\"; {m}"))
                    .await?;
                let v = i32::try_from(i + 1).unwrap_or(i32::MAX);
                tx.execute(
                    &format!(
                        "INSERT INTO \"{schema}\".rota_schema (component, version) VALUES ($1, $2)
                         ON CONFLICT (component) DO UPDATE SET version = excluded.version"
                    ),
                    &[&component, &v],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(Ok(()))
        })
    })?;
    found.map_err(|found| PgError::NewerSchema {
        component: component.to_owned(),
        schema: pool.options().schema_name().to_owned(),
        found,
        supported,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_masked_and_parsed() {
        assert_eq!(
            mask_url("postgres://rota:s3cret@db:5432/rota"),
            "postgres://rota:***@db:5432/rota"
        );
        assert_eq!(
            mask_url("postgres://rota@db/rota"),
            "postgres://rota@db/rota"
        );
        let o = PgOptions::parse("postgres://rota:s3cret@db.example:6432/ops", None).unwrap();
        assert_eq!(o.display(), "postgres://rota@db.example:6432/ops");
        assert_eq!(o.server(), "db.example:6432");
        assert!(o.has_password());
        assert!(!format!("{o:?}").contains("s3cret"));
        let e = PgOptions::parse("mysql://x:pw@h/db", None).unwrap_err();
        assert!(e.to_string().contains("mysql://x:***@h/db"), "{e}");
        assert!(!e.to_string().contains("pw@"));
    }

    #[test]
    fn pgpass_lines_match_like_libpq() {
        let text = "# comment\n*:*:other:rota:nope\ndb:5432:ops:rota:pa\\:ss\n*:*:*:*:fallback\n";
        assert_eq!(
            pgpass_lookup(text, "db", 5432, "ops", "rota").as_deref(),
            Some("pa:ss")
        );
        assert_eq!(
            pgpass_lookup(text, "db", 5433, "ops", "rota").as_deref(),
            Some("fallback")
        );
        assert_eq!(
            pgpass_lookup("db:5432:ops:rota:x\n", "db", 5432, "ops", "eve"),
            None
        );
    }
}

//! [`LocalCloud`]: an opened data directory plus its world — the handle the
//! CLI, the HTTP server and the tests hold. It implements
//! [`rota_kms::Transport`] in-process through the same [`Dispatcher`] the
//! server uses, acting as one caller (the root principal unless
//! [`LocalCloud::as_access_key`] says otherwise), and maps errors to
//! `rota_kms::Error::Api` exactly as the HTTP client would see them.
//!
//! The data directory holds `master.key` (0600), `kms.db` (+ `-wal`,
//! `-shm`), `lock` (an exclusive lock: one process per data directory) and,
//! when the root key was generated, `root-access-key.json` (0600).
//!
//! At open, interrupted managed rotations are rolled forward (see
//! `engine::rotation`), unless [`OpenOptions::recover`] says not to. While
//! the cloud is open, a background task rotates secrets whose automatic
//! rotation is due, every [`OpenOptions::rotation_check_interval`] of real
//! time, reading the injectable clock; [`OpenOptions::automatic_rotation`]
//! turns it off (for users who let Rota's own scheduler drive rotations),
//! and [`LocalCloud::rotate_due`] runs one pass on demand.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rota_kms::SecretString;
use rota_kms::credentials::Credentials;
use rota_kms::error::{ApiError, Error};
use rota_kms::transport::{ApiRequest, BoxFuture, Transport};
use serde_json::Value;

use crate::auth::Caller;
use crate::clock::{Clock, SystemClock};
use crate::dispatch::{Dispatcher, new_request_id, with_request_id};
use crate::engine::{Engine, OpenError, RotationHook};
use crate::errors::ServiceError;
use crate::params::Params;
use crate::world::World;

/// File holding a generated root access key.
pub const ROOT_KEY_FILE: &str = "root-access-key.json";

/// How to open a [`LocalCloud`].
pub struct OpenOptions {
    data_dir: PathBuf,
    world: World,
    clock: Arc<dyn Clock>,
    root_key: Option<(String, SecretString)>,
    automatic_rotation: bool,
    rotation_check_interval: Duration,
    recover: bool,
    rotation_hook: Option<RotationHook>,
}

impl std::fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenOptions")
            .field("data_dir", &self.data_dir)
            .field("automatic_rotation", &self.automatic_rotation)
            .field("recover", &self.recover)
            .finish_non_exhaustive()
    }
}

/// The root access key in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootKey {
    /// Its id (safe to print).
    pub access_key_id: String,
    /// The 0600 file holding it, when it was generated rather than given.
    pub file: Option<PathBuf>,
    /// Whether this start generated it.
    pub generated_now: bool,
}

impl OpenOptions {
    /// Options for `data_dir` with the default world, the system clock, and a
    /// generated (or previously generated) root key.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            world: World::default(),
            clock: Arc::new(SystemClock::new()),
            root_key: None,
            automatic_rotation: true,
            rotation_check_interval: Duration::from_secs(60),
            recover: true,
            rotation_hook: None,
        }
    }

    /// Whether secrets whose `NextRotationDate` has passed are rotated by a
    /// background task while the cloud is open (default: true). Turn it off
    /// when Rota's own scheduler drives rotations.
    pub fn automatic_rotation(mut self, on: bool) -> Self {
        self.automatic_rotation = on;
        self
    }

    /// How often (real time) the background task looks for due rotations
    /// (default: 60 s).
    pub fn rotation_check_interval(mut self, every: Duration) -> Self {
        self.rotation_check_interval = every;
        self
    }

    /// Whether interrupted managed rotations are rolled forward at open
    /// (default: true). Off only for inspecting a data directory as a crash
    /// left it.
    pub fn recover(mut self, on: bool) -> Self {
        self.recover = on;
        self
    }

    /// Called after each step of every managed rotation (tests use it to
    /// stop a process between two steps).
    pub fn rotation_hook(mut self, hook: RotationHook) -> Self {
        self.rotation_hook = Some(hook);
        self
    }

    /// The world to load.
    pub fn world(mut self, world: World) -> Self {
        self.world = world;
        self
    }

    /// The clock (tests pass a [`crate::ManualClock`]; `rota` passes the one
    /// `ROTA_TEST_NOW` asks for).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Registers this root access key instead of generating one.
    pub fn root_key(mut self, id: impl Into<String>, secret: impl Into<SecretString>) -> Self {
        self.root_key = Some((id.into(), secret.into()));
        self
    }

    /// Opens the cloud: creates the data directory (0700) if needed, takes
    /// its lock, loads or creates the master key, opens the database and
    /// registers the access keys.
    pub async fn open(self) -> Result<LocalCloud, OpenError> {
        let dir = self.data_dir.clone();
        let dir_err = |reason: String| OpenError::DataDir {
            path: dir.display().to_string(),
            reason,
        };
        create_private_dir(&dir).map_err(|e| dir_err(format!("cannot create: {e}")))?;
        let lock = take_dir_lock(&dir).map_err(dir_err)?;
        let engine = Engine::open(&dir, self.world, self.clock, self.rotation_hook).await?;
        let (root, secret) = match self.root_key {
            Some((id, secret)) => (
                RootKey {
                    access_key_id: id,
                    file: None,
                    generated_now: false,
                },
                secret,
            ),
            None => load_or_generate_root_key(&dir).map_err(dir_err)?,
        };
        let principal = engine.world.root_principal();
        engine.register_access_key(&root.access_key_id, secret.clone(), principal.clone(), true);
        let caller = Caller::new(root.access_key_id.clone(), principal, true);
        let engine = Arc::new(engine);
        if self.recover {
            let recovered = engine.recover_rotations().await;
            if !recovered.is_empty() {
                tracing::info!(count = recovered.len(), "interrupted rotations finished");
            }
        }
        if self.automatic_rotation {
            spawn_rotation_task(Arc::downgrade(&engine), self.rotation_check_interval);
        }
        tracing::info!(data_dir = %dir.display(), root.access_key_id = %root.access_key_id, "local cloud opened");
        Ok(LocalCloud {
            inner: Arc::new(Inner {
                dispatcher: Dispatcher::new(engine.clone()),
                engine,
                root,
                root_secret: secret,
                data_dir: dir,
                _lock: lock,
            }),
            caller,
        })
    }
}

/// Rotates due secrets every `every` until the engine is dropped.
fn spawn_rotation_task(engine: Weak<Engine>, every: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(engine) = engine.upgrade() else {
                break;
            };
            let rotated = engine.rotate_due().await;
            if !rotated.is_empty() {
                tracing::info!(count = rotated.len(), "automatic rotations done");
            }
        }
    });
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(dir)
}

fn random_alnum(n: usize) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| A[rand::random_range(0..A.len())] as char)
        .collect()
}

fn load_or_generate_root_key(dir: &Path) -> Result<(RootKey, SecretString), String> {
    let path = dir.join(ROOT_KEY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            crate::crypto::check_private(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|_| format!("{} is not valid JSON", path.display()))?;
            let field = |f: &str| {
                v.get(f)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{} has no {f}", path.display()))
            };
            Ok((
                RootKey {
                    access_key_id: field("AccessKeyId")?,
                    file: Some(path.clone()),
                    generated_now: false,
                },
                SecretString::new(field("AccessKeySecret")?),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = format!("LTAI{}", random_alnum(20));
            let secret = SecretString::new(random_alnum(30));
            let doc =
                serde_json::json!({"AccessKeyId": id, "AccessKeySecret": secret.expose_secret()});
            crate::crypto::write_private_file(&path, doc.to_string().as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok((
                RootKey {
                    access_key_id: id,
                    file: Some(path),
                    generated_now: true,
                },
                secret,
            ))
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

struct Inner {
    engine: Arc<Engine>,
    dispatcher: Dispatcher,
    root: RootKey,
    root_secret: SecretString,
    data_dir: PathBuf,
    _lock: File,
}

/// The embedded local cloud. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct LocalCloud {
    inner: Arc<Inner>,
    caller: Caller,
}

impl std::fmt::Debug for LocalCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCloud")
            .field("data_dir", &self.inner.data_dir)
            .field("caller", &self.caller.principal)
            .finish()
    }
}

impl LocalCloud {
    /// Opens `data_dir` with `world`, the system clock and a generated root key.
    pub async fn open(data_dir: impl Into<PathBuf>, world: World) -> Result<Self, OpenError> {
        OpenOptions::new(data_dir).world(world).open().await
    }

    /// Options for opening `data_dir`.
    pub fn options(data_dir: impl Into<PathBuf>) -> OpenOptions {
        OpenOptions::new(data_dir)
    }

    /// The root access key (id and, when generated, its file).
    pub fn root_key(&self) -> &RootKey {
        &self.inner.root
    }

    /// The root credentials, for clients that sign requests to the server.
    pub fn root_credentials(&self) -> Credentials {
        Credentials::new(
            self.inner.root.access_key_id.clone(),
            self.inner.root_secret.clone(),
        )
    }

    /// The same cloud, calling as another registered access key.
    pub fn as_access_key(&self, access_key_id: &str) -> Result<Self, ServiceError> {
        let (_, caller) = self.check_access_key(access_key_id)?;
        Ok(Self {
            inner: self.inner.clone(),
            caller,
        })
    }

    /// The caller this handle acts as.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The secret and caller of a registered, active access key.
    pub fn authenticate(&self, access_key_id: &str) -> Option<(SecretString, Caller)> {
        self.inner.engine.access_key(access_key_id)
    }

    /// Like [`LocalCloud::authenticate`], saying why a key cannot sign:
    /// `InvalidAccessKeyId.NotFound` (unknown or deleted) or
    /// `InvalidAccessKeyId.Inactive` (a RAM key set Inactive).
    pub fn check_access_key(
        &self,
        access_key_id: &str,
    ) -> Result<(SecretString, Caller), ServiceError> {
        self.inner.engine.check_access_key(access_key_id)
    }

    /// The signer of an access key, shared (the server's hot path).
    pub(crate) fn signer(
        &self,
        access_key_id: &str,
    ) -> Result<Arc<crate::engine::Signer>, ServiceError> {
        self.inner.engine.signer(access_key_id)
    }

    /// The engine (the crate's other front ends: the metadata service).
    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Checks the security token a request carried (temporary
    /// credentials must carry theirs).
    pub(crate) fn check_token(
        &self,
        signer: &crate::engine::Signer,
        token: Option<&str>,
    ) -> Result<(), ServiceError> {
        self.inner.engine.check_token(signer, token)
    }

    /// A redacted view of the world's targets (ECS, RDS, RAM) and which
    /// secret version holds each credential, for `rota local world`.
    pub async fn world_snapshot(&self) -> crate::targets::WorldSnapshot {
        self.inner.engine.snapshot().await
    }

    /// Rotates now every secret whose automatic rotation is due (by the
    /// cloud's clock); returns their names. Failures are logged.
    pub async fn rotate_due(&self) -> Vec<String> {
        self.inner.engine.rotate_due().await
    }

    /// Secrets whose automatic rotation is failing: consecutive failures
    /// and the time of the next try (they are not tried before it).
    pub fn failing_automatic_rotations(&self) -> BTreeMap<String, (u32, DateTime<Utc>)> {
        self.inner
            .engine
            .auto_failures
            .lock()
            .map(|f| {
                f.iter()
                    .map(|(name, (n, at))| (name.clone(), (*n, crate::engine::to_time(*at))))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The dispatcher (what the server calls).
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.inner.dispatcher
    }

    /// The world.
    pub fn world(&self) -> &World {
        &self.inner.engine.world
    }

    /// The clock.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.inner.engine.clock.clone()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// Purges secrets whose deletion window has ended; returns how many.
    pub async fn sweep(&self) -> Result<usize, ServiceError> {
        self.inner.engine.sweep().await
    }

    /// Checkpoints the database's write-ahead log into the main file.
    pub async fn checkpoint(&self) -> Result<(), ServiceError> {
        self.inner.engine.checkpoint().await
    }

    /// The `HostId` errors carry.
    pub fn host_id(&self) -> String {
        format!("kms.{}.aliyuncs.com", self.world().region)
    }

    /// Dispatches as this handle's caller; the answer carries `RequestId`.
    pub async fn call_params(
        &self,
        version: &str,
        action: &str,
        params: &Params,
        request_id: &str,
    ) -> Result<Value, ServiceError> {
        self.inner
            .dispatcher
            .dispatch(&self.caller, version, action, params)
            .await
            .map(|v| with_request_id(v, request_id))
    }
}

impl Transport for LocalCloud {
    fn call(&self, request: ApiRequest) -> BoxFuture<'_, Result<Value, Error>> {
        Box::pin(async move {
            let params: Params = request
                .params
                .iter()
                .map(|p| (p.name.clone(), p.value.clone()))
                .collect();
            let request_id = new_request_id();
            self.call_params(&request.version, &request.action, &params, &request_id)
                .await
                .map_err(|e| {
                    let w = e.wire();
                    Error::from(ApiError::new(
                        request.action.to_string(),
                        w.status,
                        w.code,
                        w.message,
                        request_id.clone(),
                        self.host_id(),
                    ))
                })
        })
    }

    fn describe(&self) -> String {
        format!("embedded local cloud in {}", self.inner.data_dir.display())
    }
}

/// Takes the data directory's lock (the `lock` file, which then names this
/// process). When another process holds it, the error names that process
/// and what to do.
fn take_dir_lock(dir: &Path) -> Result<File, String> {
    use std::io::{Read as _, Seek as _, Write as _};
    let path = dir.join("lock");
    let mut lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot create the lock file: {e}"))?;
    if lock.try_lock().is_err() {
        let mut holder = String::new();
        let _ = lock.read_to_string(&mut holder);
        let holder = holder.trim();
        let who = if holder.is_empty() {
            "another process".to_owned()
        } else {
            format!("another process ({holder})")
        };
        return Err(format!(
            "is in use by {who}: one process opens a data directory at a time. \
             Stop that process, give this command another --data-dir, or share one \
             local cloud: `rota local serve --data-dir DIR` and point the other \
             commands at it (--endpoint, with its access key)"
        ));
    }
    // The program and its first two subcommand words: never a flag's value.
    let program = std::env::args()
        .next()
        .and_then(|p| {
            Path::new(&p)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_lowercase()))
        .take(2)
        .collect();
    let me = format!("pid {}: {program} {}", std::process::id(), words.join(" "));
    let _ = lock.set_len(0);
    let _ = lock.rewind();
    let _ = lock.write_all(me.as_bytes());
    Ok(lock)
}

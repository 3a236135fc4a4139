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

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rota_kms::SecretString;
use rota_kms::credentials::Credentials;
use rota_kms::error::{ApiError, Error};
use rota_kms::transport::{ApiRequest, BoxFuture, Transport};
use serde_json::Value;

use crate::auth::Caller;
use crate::clock::{Clock, SystemClock};
use crate::dispatch::{Dispatcher, new_request_id, with_request_id};
use crate::engine::{Engine, OpenError};
use crate::errors::ServiceError;
use crate::params::Params;
use crate::world::World;

/// File holding a generated root access key.
pub const ROOT_KEY_FILE: &str = "root-access-key.json";

/// How to open a [`LocalCloud`].
#[derive(Debug)]
pub struct OpenOptions {
    data_dir: PathBuf,
    world: World,
    clock: Arc<dyn Clock>,
    root_key: Option<(String, SecretString)>,
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
            clock: Arc::new(SystemClock),
            root_key: None,
        }
    }

    /// The world to load.
    pub fn world(mut self, world: World) -> Self {
        self.world = world;
        self
    }

    /// The clock (tests pass a [`crate::ManualClock`]).
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
        let lock = File::create(dir.join("lock"))
            .map_err(|e| dir_err(format!("cannot create the lock file: {e}")))?;
        lock.try_lock()
            .map_err(|_| dir_err("is in use by another process (its lock file is held)".into()))?;
        let engine = Engine::open(&dir, self.world, self.clock).await?;
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
        let caller = Caller {
            access_key_id: root.access_key_id.clone(),
            principal,
            is_root: true,
        };
        let engine = Arc::new(engine);
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
        let (_, caller) =
            self.authenticate(access_key_id)
                .ok_or_else(|| ServiceError::AccessKeyNotFound {
                    access_key_id: access_key_id.to_owned(),
                })?;
        Ok(Self {
            inner: self.inner.clone(),
            caller,
        })
    }

    /// The caller this handle acts as.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The secret and caller of a registered access key.
    pub fn authenticate(&self, access_key_id: &str) -> Option<(SecretString, Caller)> {
        self.inner.engine.access_key(access_key_id)
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

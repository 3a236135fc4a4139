//! The KMS engine: Alibaba Cloud KMS secret semantics over an in-memory state
//! loaded from the [`Store`] at open.
//!
//! **Concurrency.** Reads take a snapshot (`Arc`) of one secret from a
//! read-locked map and never wait for the disk. A mutation takes the
//! secret's own async mutex (so mutations of one secret serialize while
//! different secrets proceed into the same group commit), validates against
//! memory, builds the secret's next state, submits the changed rows to the
//! store, awaits durability and only then installs the new state in memory.
//! On any error nothing is applied, neither on disk nor in memory.
//!
//! **Deletion windows** are purged lazily: a secret whose planned delete time
//! has passed is treated as absent by every action, and is removed from disk
//! by the next mutation of its name or by [`Engine::sweep`], which the server
//! runs periodically.
//!
//! The actions live in [`secrets`] (secret lifecycle, versions, rotation,
//! deletion, policy), [`tags`], [`keys`] (the local key registry) and
//! [`misc`] (GetRandomPassword, DescribeRegions) and [`rotation`] (managed
//! rotation against the emulated targets of [`crate::targets`]); the
//! semantic choices where kms-api.md is silent are stated in each module's
//! docs.

pub(crate) mod keys;
pub(crate) mod misc;
pub(crate) mod rotation;
pub(crate) mod secrets;
pub(crate) mod sts;
pub(crate) mod tags;
pub(crate) mod validate;

pub use rotation::{RotationHook, RotationStep};

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use rota_kms::SecretString;
use serde::{Deserialize, Serialize};

use crate::auth::{Caller, SecretPolicy};
use crate::clock::{Clock, wire_time};
use crate::crypto::SealingKey;
use crate::errors::ServiceError;
use crate::store::{Loaded, Op, Store, StoreError};
use crate::world::World;

/// The internal key that protects secrets created without `EncryptionKeyId`
/// (the "service-managed key"). Never listed, never returned as an id.
pub(crate) const SERVICE_KEY_ID: &str = "rota-local/service-key";

/// Persisted metadata of one version (its data is a separate sealed row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VersionDoc {
    pub(crate) id: String,
    pub(crate) created: i64,
    pub(crate) data_type: String,
    pub(crate) stages: Vec<String>,
}

/// Persisted metadata of one secret (no secret data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SecretDoc {
    pub(crate) name: String,
    pub(crate) secret_type: String,
    pub(crate) description: String,
    /// `None`: the service-managed key.
    pub(crate) key_id: Option<String>,
    pub(crate) dkms_instance_id: Option<String>,
    pub(crate) created: i64,
    pub(crate) updated: i64,
    pub(crate) extended_config: Option<String>,
    /// Rotation interval in seconds while automatic rotation is on.
    pub(crate) rotation_interval: Option<u64>,
    pub(crate) next_rotation: Option<i64>,
    pub(crate) last_rotation: Option<i64>,
    pub(crate) planned_delete: Option<i64>,
    pub(crate) policy: Option<String>,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) creator: String,
    /// Oldest first.
    pub(crate) versions: Vec<VersionDoc>,
}

/// A secret in memory: metadata, sealed version data, parsed policy.
#[derive(Debug, Clone)]
pub(crate) struct Secret {
    pub(crate) doc: SecretDoc,
    pub(crate) sealed: HashMap<String, Arc<[u8]>>,
    pub(crate) policy: Option<SecretPolicy>,
}

impl Secret {
    pub(crate) fn ty(&self) -> validate::SecretType {
        validate::SecretType::parse(&self.doc.secret_type).unwrap_or(validate::SecretType::Generic)
    }

    pub(crate) fn version(&self, id: &str) -> Option<&VersionDoc> {
        self.doc.versions.iter().find(|v| v.id == id)
    }

    pub(crate) fn stage_holder(&self, stage: &str) -> Option<&VersionDoc> {
        self.doc
            .versions
            .iter()
            .find(|v| v.stages.iter().any(|s| s == stage))
    }

    pub(crate) fn pending_delete(&self) -> bool {
        self.doc.planned_delete.is_some()
    }
}

/// Persisted metadata of a KMS key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeyDoc {
    pub(crate) key_id: String,
    pub(crate) description: String,
    pub(crate) spec: String,
    pub(crate) usage: String,
    pub(crate) state: String,
    pub(crate) created: i64,
    pub(crate) dkms_instance_id: Option<String>,
    pub(crate) origin: String,
    pub(crate) protection_level: String,
    pub(crate) creator: String,
    pub(crate) tags: BTreeMap<String, String>,
    /// Declared by the world file (not by CreateKey).
    pub(crate) from_world: bool,
    /// The hidden service-managed key.
    pub(crate) internal: bool,
    /// When a key in `PendingDeletion` is deleted (seconds since the
    /// epoch); `None` in every other state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) delete_date: Option<i64>,
}

/// A key in memory.
#[derive(Debug, Clone)]
pub(crate) struct KmsKey {
    pub(crate) doc: KeyDoc,
    pub(crate) sealing: SealingKey,
    pub(crate) wrapped: Arc<[u8]>,
}

/// What an access key signs with, and who it is.
#[derive(Debug)]
pub(crate) struct Signer {
    pub(crate) secret: SecretString,
    /// The secret made ready for V1 signatures.
    pub(crate) v1: rota_kms::sign::V1Key,
    pub(crate) caller: Caller,
    /// For temporary (STS) credentials: the token every request must
    /// carry, and when it expires.
    pub(crate) session: Option<sts::Session>,
}

impl Signer {
    fn new(secret: SecretString, caller: Caller) -> Self {
        Self {
            v1: rota_kms::sign::V1Key::new(secret.expose_secret()),
            secret,
            caller,
            session: None,
        }
    }
}

pub(crate) struct AccessKey {
    /// Shared with every request it signs (no copy per request).
    signer: Arc<Signer>,
    /// False for an Inactive RAM key.
    active: bool,
    /// The RAM user whose managed key this is (None: root or world key).
    ram_user: Option<String>,
}

/// Why the engine could not open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The data directory cannot be used.
    #[error("data directory {path}: {reason}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        reason: String,
    },
    /// The master key cannot be loaded or created.
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
    /// The database cannot be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database content is not what this version understands.
    #[error("database: {0}")]
    Corrupt(String),
    /// A bound RDS server refused the accounts the world declares.
    #[error("world: {0}")]
    World(String),
}

/// The engine. Shared by the in-process transport and the HTTP server.
pub(crate) struct Engine {
    pub(crate) world: World,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) store: Store,
    master: SealingKey,
    secrets: RwLock<BTreeMap<String, Arc<Secret>>>,
    keys: RwLock<BTreeMap<String, Arc<KmsKey>>>,
    pub(crate) access: RwLock<HashMap<String, AccessKey>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    key_lock: tokio::sync::Mutex<()>,
    pub(crate) targets: crate::targets::Targets,
    pub(crate) rotation_hook: Option<RotationHook>,
    /// Automatic rotations that failed: consecutive failures and the
    /// earliest time (Unix seconds) to try again (in memory: a restart
    /// tries at once).
    pub(crate) auto_failures: Mutex<HashMap<String, (u32, i64)>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("store", &self.store)
            .field("region", &self.world.region)
            .finish_non_exhaustive()
    }
}

pub(crate) fn to_time(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

pub(crate) fn wire(secs: i64) -> String {
    wire_time(to_time(secs))
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::internal(e.to_string())
}

/// Refuses a data directory whose database was lost while what depends on
/// it remains: `master.key` without a usable `kms.db` (missing or empty),
/// or a `kms.db-wal` without its `kms.db`. Opening would start empty and,
/// with a WAL, overwrite what may still be recovered; nothing is touched.
fn check_data_files(dir: &Path) -> Result<(), OpenError> {
    let db = dir.join(crate::store::DB_FILE);
    let wal = dir.join(format!("{}-wal", crate::store::DB_FILE));
    let master = dir.join(crate::crypto::MASTER_KEY_FILE);
    let db_len = std::fs::metadata(&db).ok().map(|m| m.len());
    let wal_there = wal.exists();
    let lost = match db_len {
        None => master.exists() || wal_there,
        Some(0) => master.exists() || wal_there,
        Some(_) => false,
    };
    if !lost {
        return Ok(());
    }
    let state = if db_len.is_none() { "missing" } else { "empty" };
    let mut reason = format!(
        "{} is {state} but {} remains",
        db.display(),
        if master.exists() {
            master.display().to_string()
        } else {
            wal.display().to_string()
        }
    );
    reason.push_str(
        "; starting would begin with no secrets. Nothing was changed. Restore kms.db from a backup",
    );
    if wal_there {
        reason.push_str(&format!(
            " ({} may hold recent writes: keep it beside the restored kms.db)",
            wal.display()
        ));
    }
    reason.push_str("; to start empty on purpose, move the data directory away");
    Err(OpenError::DataDir {
        path: dir.display().to_string(),
        reason,
    })
}

impl Engine {
    /// Opens the engine over `dir` (which must exist): master key, database,
    /// the world's keys.
    pub(crate) async fn open(
        dir: &Path,
        world: World,
        clock: Arc<dyn Clock>,
        rotation_hook: Option<RotationHook>,
    ) -> Result<Self, OpenError> {
        check_data_files(dir)?;
        // The database first: a start cut short between the two leaves a
        // database with nothing sealed in it, never a key without one.
        let (store, loaded) = Store::open(dir)?;
        let master = crate::crypto::load_or_create_master_key(dir)?;
        let (targets, target_ops, bound_seeds) = crate::targets::Targets::load(
            &world,
            &loaded.meta,
            master.clone(),
            store.clone(),
            clock.now().timestamp(),
        )?;
        let engine = Self {
            world,
            clock,
            store,
            master,
            secrets: RwLock::new(BTreeMap::new()),
            keys: RwLock::new(BTreeMap::new()),
            access: RwLock::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
            key_lock: tokio::sync::Mutex::new(()),
            auto_failures: Mutex::new(HashMap::new()),
            targets,
            rotation_hook,
        };
        let mut initial = engine.load(loaded)?;
        initial.extend(target_ops);
        engine.ensure_world_keys(initial).await?;
        engine
            .rds_seed_bound(bound_seeds)
            .await
            .map_err(OpenError::World)?;
        let users: Vec<crate::targets::RamUser> = engine
            .targets
            .state
            .lock()
            .await
            .ram
            .values()
            .cloned()
            .collect();
        for u in &users {
            engine.sync_ram_keys(u);
        }
        for (id, decl) in &engine.world.access_keys {
            let principal = match &decl.user {
                Some(u) => engine.world.user_principal(u),
                None => engine.world.root_principal(),
            };
            engine.register_access_key(id, decl.secret.clone(), principal, decl.user.is_none());
        }
        Ok(engine)
    }

    fn load(&self, loaded: Loaded) -> Result<Vec<Op>, OpenError> {
        // A master key that does not match the database is refused up front.
        const CHECK: &str = "master-key-check";
        if let Some((_, v)) = loaded.meta.iter().find(|(k, _)| k == CHECK)
            && self.master.open(v, CHECK.as_bytes()).is_err()
        {
            return Err(OpenError::Corrupt(
                "master.key does not match this database (was it replaced?)".into(),
            ));
        }
        let mut keys = BTreeMap::new();
        for (id, doc, wrapped) in loaded.keys {
            let doc: KeyDoc = serde_json::from_str(&doc)
                .map_err(|e| OpenError::Corrupt(format!("key {id}: {e}")))?;
            let sealing = self
                .master
                .unwrap_key(&id, &wrapped)
                .map_err(|e| OpenError::Corrupt(format!("key {id}: {e}")))?;
            keys.insert(
                id,
                Arc::new(KmsKey {
                    doc,
                    sealing,
                    wrapped: wrapped.into(),
                }),
            );
        }
        let mut sealed: HashMap<String, HashMap<String, Arc<[u8]>>> = HashMap::new();
        for (name, vid, data) in loaded.versions {
            sealed.entry(name).or_default().insert(vid, data.into());
        }
        let mut secrets = BTreeMap::new();
        for (name, doc) in loaded.secrets {
            let doc: SecretDoc = serde_json::from_str(&doc)
                .map_err(|e| OpenError::Corrupt(format!("secret {name}: {e}")))?;
            let policy = doc
                .policy
                .as_deref()
                .map(crate::auth::parse_policy)
                .transpose()
                .map_err(|e| OpenError::Corrupt(format!("secret {name}: {e}")))?;
            let sealed = sealed.remove(&name).unwrap_or_default();
            secrets.insert(
                name,
                Arc::new(Secret {
                    doc,
                    sealed,
                    policy,
                }),
            );
        }
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
        *self.secrets.write().unwrap_or_else(|e| e.into_inner()) = secrets;
        let mut initial = Vec::new();
        if !loaded.meta.iter().any(|(k, _)| k == CHECK) {
            initial.push(Op::PutMeta {
                key: CHECK.into(),
                value: self.master.seal(b"ok", CHECK.as_bytes()),
            });
        }
        Ok(initial)
    }

    /// Creates the service key and every world key missing from the database.
    async fn ensure_world_keys(&self, mut ops: Vec<Op>) -> Result<(), OpenError> {
        let now = self.now_secs();
        let mut wanted: Vec<KeyDoc> = Vec::new();
        let existing: Vec<String> = self.keys_read().keys().cloned().collect();
        if !existing.iter().any(|k| k == SERVICE_KEY_ID) {
            wanted.push(KeyDoc {
                key_id: SERVICE_KEY_ID.into(),
                description: "service-managed key for secrets".into(),
                spec: crate::world::SYMMETRIC_SPEC.into(),
                usage: "ENCRYPT/DECRYPT".into(),
                state: "Enabled".into(),
                created: now,
                dkms_instance_id: None,
                origin: "Aliyun_KMS".into(),
                protection_level: "SOFTWARE".into(),
                creator: self.world.account_id.clone(),
                tags: BTreeMap::new(),
                from_world: false,
                internal: true,
                delete_date: None,
            });
        }
        for (id, decl) in &self.world.keys {
            if existing.contains(id) {
                continue;
            }
            let usage = if decl.spec.starts_with("Aliyun_") {
                "ENCRYPT/DECRYPT"
            } else {
                "SIGN/VERIFY"
            };
            wanted.push(KeyDoc {
                key_id: id.clone(),
                description: decl.description.clone(),
                spec: decl.spec.clone(),
                usage: usage.into(),
                state: "Enabled".into(),
                created: now,
                dkms_instance_id: decl.kms_instance.clone(),
                origin: "Aliyun_KMS".into(),
                protection_level: "SOFTWARE".into(),
                creator: self.world.account_id.clone(),
                tags: BTreeMap::new(),
                from_world: true,
                internal: false,
                delete_date: None,
            });
        }
        let mut new_keys = Vec::new();
        for doc in wanted {
            let (op, key) = self.new_key(doc);
            ops.push(op);
            new_keys.push(key);
        }
        if ops.is_empty() {
            return Ok(());
        }
        self.store.write(ops).await?;
        let mut keys = self.keys_write();
        for k in new_keys {
            keys.insert(k.doc.key_id.clone(), Arc::new(k));
        }
        Ok(())
    }

    /// A fresh data key for `doc`, and the op that stores it.
    pub(crate) fn new_key(&self, doc: KeyDoc) -> (Op, KmsKey) {
        let (sealing, bytes) = SealingKey::generate();
        let wrapped = self.master.wrap_key(&doc.key_id, &bytes);
        let op = Op::PutKey {
            key_id: doc.key_id.clone(),
            doc: serde_json::to_string(&doc).expect("key docs serialize"),
            wrapped: wrapped.clone(),
        };
        (
            op,
            KmsKey {
                doc,
                sealing,
                wrapped: wrapped.into(),
            },
        )
    }

    // ------------------------------------------------------------ access keys

    /// Registers (or replaces) an access key.
    pub(crate) fn register_access_key(
        &self,
        id: &str,
        secret: SecretString,
        principal: String,
        is_root: bool,
    ) {
        let caller = Caller::new(id, principal, is_root);
        self.access
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                id.to_owned(),
                AccessKey {
                    signer: Arc::new(Signer::new(secret, caller)),
                    active: true,
                    ram_user: None,
                },
            );
    }

    /// Replaces the registered keys of RAM user `user` with `keys`
    /// (`(id, secret, active)`).
    pub(crate) fn replace_user_keys(
        &self,
        user: &str,
        keys: Vec<(String, SecretString, bool)>,
        principal: &str,
    ) {
        let mut access = self.access.write().unwrap_or_else(|e| e.into_inner());
        access.retain(|_, k| k.ram_user.as_deref() != Some(user));
        for (id, secret, active) in keys {
            let caller = Caller::new(id.clone(), principal.to_owned(), false);
            access.insert(
                id,
                AccessKey {
                    signer: Arc::new(Signer::new(secret, caller)),
                    active,
                    ram_user: Some(user.to_owned()),
                },
            );
        }
    }

    /// The secret and caller of an active access key.
    pub(crate) fn access_key(&self, id: &str) -> Option<(SecretString, Caller)> {
        self.check_access_key(id).ok()
    }

    /// The secret and caller of an access key, or why it cannot sign:
    /// `InvalidAccessKeyId.NotFound` or `InvalidAccessKeyId.Inactive`.
    pub(crate) fn check_access_key(
        &self,
        id: &str,
    ) -> Result<(SecretString, Caller), ServiceError> {
        self.signer(id)
            .map(|s| (s.secret.clone(), s.caller.clone()))
    }

    /// [`Self::check_access_key`] without copying: what the server
    /// verifies a signature with.
    pub(crate) fn signer(&self, id: &str) -> Result<Arc<Signer>, ServiceError> {
        match self
            .access
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            Some(k) if k.active => Ok(k.signer.clone()),
            Some(_) => Err(ServiceError::AccessKeyInactive {
                access_key_id: id.to_owned(),
            }),
            None => Err(ServiceError::AccessKeyNotFound {
                access_key_id: id.to_owned(),
            }),
        }
    }

    // ------------------------------------------------------------------ time

    pub(crate) fn now_secs(&self) -> i64 {
        self.clock.now().timestamp()
    }

    // --------------------------------------------------------------- secrets

    fn secrets_read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Secret>>> {
        self.secrets.read().unwrap_or_else(|e| e.into_inner())
    }

    fn keys_read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<KmsKey>>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn keys_write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<KmsKey>>> {
        self.keys.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a secret's deletion window has ended.
    pub(crate) fn expired(&self, s: &Secret) -> bool {
        s.doc.planned_delete.is_some_and(|t| t <= self.now_secs())
    }

    /// The secret named `name`, unless absent or purged.
    pub(crate) fn secret(&self, name: &str) -> Option<Arc<Secret>> {
        let s = self.secrets_read().get(name).cloned()?;
        (!self.expired(&s)).then_some(s)
    }

    /// Every live secret, in name order.
    pub(crate) fn all_secrets(&self) -> Vec<Arc<Secret>> {
        let now = self.now_secs();
        self.secrets_read()
            .values()
            .filter(|s| s.doc.planned_delete.is_none_or(|t| t > now))
            .cloned()
            .collect()
    }

    /// Number of secret rows (live or pending deletion).
    pub(crate) fn secret_count(&self) -> usize {
        self.secrets_read().len()
    }

    /// `SecretName` may be a name or an ARN of this account and region.
    pub(crate) fn resolve_name(&self, raw: &str) -> Result<String, ServiceError> {
        self.resolve_name_ref(raw).map(std::borrow::Cow::into_owned)
    }

    /// [`Self::resolve_name`], borrowing a plain name.
    pub(crate) fn resolve_name_ref<'a>(
        &self,
        raw: &'a str,
    ) -> Result<std::borrow::Cow<'a, str>, ServiceError> {
        if let Some(rest) = raw.strip_prefix("acs:kms:") {
            let prefix = format!("{}:{}:secret/", self.world.region, self.world.account_id);
            return match rest.strip_prefix(&prefix) {
                Some(name) if !name.is_empty() => Ok(name.to_owned().into()),
                _ => Err(ServiceError::SecretNotFound {
                    name: raw.to_owned(),
                }),
            };
        }
        Ok(raw.into())
    }

    /// The live secret `name` or `Forbidden.ResourceNotFound`.
    pub(crate) fn require(&self, name: &str) -> Result<Arc<Secret>, ServiceError> {
        self.secret(name)
            .ok_or_else(|| ServiceError::SecretNotFound {
                name: name.to_owned(),
            })
    }

    /// Serializes mutations of one secret name.
    pub(crate) async fn lock(&self, name: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let m = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            if locks.len() > 4096 {
                locks.retain(|_, m| Arc::strong_count(m) > 1);
            }
            locks.entry(name.to_owned()).or_default().clone()
        };
        m.lock_owned().await
    }

    /// Makes `ops` durable, then installs `next` (or removes the secret).
    /// Call with the secret's lock held.
    pub(crate) async fn commit(
        &self,
        name: &str,
        mut ops: Vec<Op>,
        next: Option<Secret>,
    ) -> Result<(), ServiceError> {
        if let Some(s) = &next {
            ops.push(Op::PutSecret {
                name: name.to_owned(),
                doc: serde_json::to_string(&s.doc).map_err(internal)?,
            });
        }
        self.store.write(ops).await.map_err(|e| {
            tracing::error!(secret.name = %name, error = %e, "store write failed");
            internal("the write could not be made durable")
        })?;
        let mut secrets = self.secrets.write().unwrap_or_else(|e| e.into_inner());
        match next {
            Some(s) => {
                secrets.insert(name.to_owned(), Arc::new(s));
            }
            None => {
                secrets.remove(name);
            }
        }
        Ok(())
    }

    /// Ops that purge an expired secret row before `name` is reused.
    pub(crate) fn purge_ops_if_expired(&self, name: &str) -> Vec<Op> {
        match self.secrets_read().get(name) {
            Some(s) if self.expired(s) => vec![Op::DeleteSecret {
                name: name.to_owned(),
            }],
            _ => Vec::new(),
        }
    }

    /// Removes every secret whose deletion window has ended. Returns how many.
    pub(crate) async fn sweep(&self) -> Result<usize, ServiceError> {
        let expired: Vec<String> = {
            let now = self.now_secs();
            self.secrets_read()
                .values()
                .filter(|s| s.doc.planned_delete.is_some_and(|t| t <= now))
                .map(|s| s.doc.name.clone())
                .collect()
        };
        let mut n = 0;
        for name in expired {
            let _g = self.lock(&name).await;
            let still = self
                .secrets_read()
                .get(&name)
                .is_some_and(|s| self.expired(s));
            if still {
                self.commit(&name, vec![Op::DeleteSecret { name: name.clone() }], None)
                    .await?;
                tracing::info!(secret.name = %name, "deletion window ended; secret purged");
                n += 1;
            }
        }
        Ok(n)
    }

    // ------------------------------------------------------------------ keys

    pub(crate) fn key(&self, id: &str) -> Option<Arc<KmsKey>> {
        self.keys_read().get(id).cloned()
    }

    /// Every key a caller can see: not the service's own, not one whose
    /// deletion date has passed.
    pub(crate) fn all_keys(&self) -> Vec<Arc<KmsKey>> {
        self.keys_read()
            .values()
            .filter(|k| !k.doc.internal && !self.key_deleted(k))
            .cloned()
            .collect()
    }

    /// Whether a key scheduled for deletion has reached its date: it is
    /// gone for every caller from then on.
    pub(crate) fn key_deleted(&self, k: &KmsKey) -> bool {
        k.doc.delete_date.is_some_and(|d| d <= self.now_secs())
    }

    /// The key that seals a secret's values, refused (with KMS's codes)
    /// unless it is enabled: a disabled key, or one pending deletion,
    /// neither opens nor seals anything, as in the real service.
    pub(crate) fn usable_key(&self, doc: &SecretDoc) -> Result<Arc<KmsKey>, ServiceError> {
        let id = doc.key_id.as_deref().unwrap_or(SERVICE_KEY_ID);
        let key = self
            .key(id)
            .ok_or_else(|| internal(format!("the key {id} of a secret is missing")))?;
        if key.doc.state == "Enabled" {
            return Ok(key);
        }
        Err(self.unusable(&key))
    }

    /// Why `key`, not enabled, cannot encrypt or decrypt.
    pub(crate) fn unusable(&self, key: &KmsKey) -> ServiceError {
        let key_id = key.doc.key_id.clone();
        if self.key_deleted(key) {
            ServiceError::KeyNotFound { key_id }
        } else if key.doc.state == "PendingDeletion" {
            ServiceError::KeyPendingDeletion { key_id }
        } else {
            ServiceError::KeyDisabled { key_id }
        }
    }

    /// The sealing key of a secret (refused unless its key is enabled).
    pub(crate) fn sealing_for(&self, doc: &SecretDoc) -> Result<SealingKey, ServiceError> {
        self.usable_key(doc).map(|k| k.sealing.clone())
    }

    /// Decrypts one version of a secret (with its key's cipher as stored:
    /// no copy of the key schedule per read); refused unless the secret's
    /// key is enabled.
    pub(crate) fn open_version(
        &self,
        s: &Secret,
        version_id: &str,
    ) -> Result<SecretString, ServiceError> {
        let sealed = s.sealed.get(version_id).ok_or_else(|| {
            internal(format!(
                "the data of a version of {} is missing",
                s.doc.name
            ))
        })?;
        let key = self.usable_key(&s.doc)?;
        key.sealing
            .open_secret(&s.doc.name, version_id, sealed)
            .map_err(|e| {
                tracing::error!(secret.name = %s.doc.name, error = %e, "a sealed version does not open");
                internal("a stored secret version cannot be decrypted")
            })
    }

    /// Enforces the secret's policy for `action`.
    pub(crate) fn authorize(
        &self,
        caller: &Caller,
        s: &Secret,
        action: &str,
    ) -> Result<(), ServiceError> {
        match &s.policy {
            Some(p) if !caller.may(p, action) => Err(ServiceError::NoPermission {
                action: format!("kms:{action}"),
                principal: caller.principal.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Checkpoints the WAL (tests and `rota local` maintenance).
    pub(crate) async fn checkpoint(&self) -> Result<(), ServiceError> {
        self.store
            .checkpoint()
            .await
            .map_err(|e| internal(format!("checkpoint failed: {e}")))
    }
}

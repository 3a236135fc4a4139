//! The emulated targets of managed rotation: ECS instances (with Cloud
//! Assistant), RDS instances (optionally bound to a real database server)
//! and RAM users, with the APIs of kms-api.md §5 ([`ecs`], [`rds`], [`ram`]).
//!
//! **State.** What the world file declares seeds the state the first time a
//! resource is seen (an ECS instance, an RDS instance, a RAM user; and each
//! ECS/RDS account, so accounts added to the world file later appear too);
//! from then on the durable state wins. Each resource, command and
//! invocation is one `meta` row named `target/<kind>/<id>` holding its JSON
//! document sealed with the master key (AES-256-GCM, the row name as
//! associated data): passwords, private keys and access key secrets are
//! never on disk in the clear, and they are [`SecretString`]s in memory.
//!
//! **Concurrency.** One async mutex serializes every mutation of the
//! targets: a mutation computes the next state of the resources it touches,
//! makes their rows durable (group commit, like secrets), and only then
//! installs them. Mutations of bound RDS instances run their statement on
//! the real server first, and record the state only once it succeeded.
//! Target mutations are rare (rotations, hooks), so one lock is enough.
//!
//! **Inspection.** [`Targets::snapshot`] is a redacted view for `rota local
//! world`: ids, accounts, key ids and statuses, and which secret version
//! holds each credential — never a credential.

pub(crate) mod bound;
pub use bound::scram_sha_256_matches;
pub(crate) mod ecs;
pub(crate) mod ram;
pub(crate) mod rds;
pub(crate) mod shell;
mod snapshot;

use std::collections::BTreeMap;

use rota_kms::SecretString;
use rota_kms::secret::{serialize_exposed, serialize_exposed_opt};
use serde::{Deserialize, Serialize};

use crate::crypto::SealingKey;
use crate::engine::OpenError;
use crate::errors::ServiceError;
use crate::store::{Op, Store};
use crate::world::{OsType, RdsEngine, World};

/// Row-name prefix of target state in the `meta` table.
pub(crate) const PREFIX: &str = "target/";

/// Most invocations kept; older ones are forgotten first.
pub(crate) const MAX_INVOCATIONS: usize = 1000;

/// An emulated ECS instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EcsInstance {
    pub(crate) id: String,
    pub(crate) region: String,
    pub(crate) os_type: OsType,
    pub(crate) accounts: BTreeMap<String, OsAccount>,
}

/// An OS account of an ECS instance.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct OsAccount {
    #[serde(serialize_with = "serialize_exposed_opt", default)]
    pub(crate) password: Option<SecretString>,
    /// The password as a crypt hash (`$6$…`), when it was set as one
    /// (`chpasswd -e`); then `password` is `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) password_hash: Option<String>,
    #[serde(default)]
    pub(crate) public_keys: Vec<String>,
    /// When the credential last changed (seconds).
    #[serde(default)]
    pub(crate) changed: i64,
}

impl OsAccount {
    /// Whether the account has a password (as a value or as a hash).
    pub(crate) fn has_password(&self) -> bool {
        self.password.is_some() || self.password_hash.is_some()
    }

    /// Whether `typed` is the account's password.
    pub(crate) fn password_is(&self, typed: &str) -> bool {
        match (&self.password, &self.password_hash) {
            (Some(p), _) => {
                rota_kms::secret::constant_time_eq(p.expose_secret().as_bytes(), typed.as_bytes())
            }
            (None, Some(h)) => rota_kms::password::crypt_verify(typed, h),
            (None, None) => false,
        }
    }

    /// Sets the password (a value).
    pub(crate) fn set_password(&mut self, value: &str, now: i64) {
        self.password = Some(SecretString::new(value));
        self.password_hash = None;
        self.changed = now;
    }

    /// The `/etc/shadow` hash of the password: the one set, or a new
    /// SHA-512-crypt hash of the value (a fresh salt each time, as after
    /// a `passwd`).
    pub(crate) fn shadow_hash(&self) -> Option<String> {
        match (&self.password, &self.password_hash) {
            (_, Some(h)) => Some(h.clone()),
            (Some(p), None) => Some(rota_kms::password::crypt_sha512(p.expose_secret())),
            (None, None) => None,
        }
    }
}

/// An emulated RDS instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RdsInstance {
    pub(crate) id: String,
    pub(crate) engine: RdsEngine,
    pub(crate) created: i64,
    pub(crate) accounts: BTreeMap<String, RdsAccount>,
}

/// An RDS account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RdsAccount {
    #[serde(serialize_with = "serialize_exposed")]
    pub(crate) password: SecretString,
    pub(crate) account_type: String,
    #[serde(default)]
    pub(crate) description: String,
    /// `(DBName, AccountPrivilege)`.
    #[serde(default)]
    pub(crate) privileges: Vec<(String, String)>,
    #[serde(default)]
    pub(crate) changed: i64,
}

/// A RAM user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RamUser {
    pub(crate) name: String,
    pub(crate) created: i64,
    /// Oldest first.
    pub(crate) keys: Vec<RamKey>,
}

/// A RAM user's access key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RamKey {
    pub(crate) id: String,
    #[serde(serialize_with = "serialize_exposed")]
    pub(crate) secret: SecretString,
    pub(crate) status: String,
    pub(crate) created: i64,
}

/// A Cloud Assistant command (CreateCommand, or RunCommand with KeepCommand).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Command {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) ty: String,
    /// The script (plain text).
    pub(crate) content: String,
    pub(crate) description: String,
    pub(crate) enable_parameter: bool,
    pub(crate) timeout: i64,
    pub(crate) created: i64,
}

/// One Cloud Assistant invocation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Invocation {
    pub(crate) id: String,
    pub(crate) seq: u64,
    pub(crate) command_id: String,
    pub(crate) command_name: String,
    pub(crate) command_type: String,
    pub(crate) command_content: String,
    /// Parameters as given, with secret ones (a rotation's password) masked.
    pub(crate) parameters: String,
    pub(crate) username: String,
    pub(crate) timeout: i64,
    pub(crate) created: i64,
    pub(crate) results: Vec<InstanceResult>,
}

/// The outcome of an invocation on one instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InstanceResult {
    pub(crate) instance_id: String,
    /// `Success`, `Failed` or `Invalid`.
    pub(crate) status: String,
    pub(crate) exit_code: i64,
    pub(crate) error_code: String,
    pub(crate) error_info: String,
    pub(crate) output: String,
    pub(crate) start: i64,
    pub(crate) finish: i64,
}

impl Invocation {
    /// The overall status: Success, Failed, PartialFailed.
    pub(crate) fn overall(&self) -> &'static str {
        let ok = self
            .results
            .iter()
            .filter(|r| r.status == "Success")
            .count();
        if ok == self.results.len() {
            "Success"
        } else if ok == 0 {
            "Failed"
        } else {
            "PartialFailed"
        }
    }
}

/// Everything the targets hold.
#[derive(Debug, Clone, Default)]
pub(crate) struct TargetState {
    pub(crate) ecs: BTreeMap<String, EcsInstance>,
    pub(crate) rds: BTreeMap<String, RdsInstance>,
    pub(crate) ram: BTreeMap<String, RamUser>,
    pub(crate) commands: BTreeMap<String, Command>,
    pub(crate) invocations: BTreeMap<String, Invocation>,
    pub(crate) next_seq: u64,
}

/// A changed resource, to be made durable.
pub(crate) enum Row<'a> {
    Ecs(&'a EcsInstance),
    Rds(&'a RdsInstance),
    Ram(&'a RamUser),
    Command(&'a Command),
    Invocation(&'a Invocation),
    DeleteInvocation(&'a str),
}

fn row_key(kind: &str, id: &str) -> String {
    format!("{PREFIX}{kind}/{id}")
}

/// The targets: state behind one async mutex, the master key that seals
/// their rows, the store, and the bound servers' URLs.
pub(crate) struct Targets {
    pub(crate) state: tokio::sync::Mutex<TargetState>,
    master: SealingKey,
    store: Store,
    /// Bound server URLs by RDS instance id (from the world, never persisted).
    pub(crate) binds: BTreeMap<String, SecretString>,
}

impl std::fmt::Debug for Targets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Targets").finish_non_exhaustive()
    }
}

/// A bound account the world seeded, whose real role must be created or
/// have its password set at open.
pub(crate) struct BoundSeed {
    pub(crate) instance_id: String,
    pub(crate) account: String,
}

impl Targets {
    /// Loads the target rows, seeds what the world declares and the state
    /// lacks, and returns the ops that persist the seeded resources plus the
    /// bound accounts to create on their servers.
    pub(crate) fn load(
        world: &World,
        meta: &[(String, Vec<u8>)],
        master: SealingKey,
        store: Store,
        now: i64,
    ) -> Result<(Self, Vec<Op>, Vec<BoundSeed>), OpenError> {
        let mut st = TargetState::default();
        for (k, v) in meta {
            let Some(rest) = k.strip_prefix(PREFIX) else {
                continue;
            };
            let json = master
                .open(v, k.as_bytes())
                .map_err(|e| OpenError::Corrupt(format!("{k}: {e}")))?;
            let bad = |e: serde_json::Error| OpenError::Corrupt(format!("{k}: {e}"));
            let (kind, id) = rest.split_once('/').unwrap_or((rest, ""));
            match kind {
                "ecs" => {
                    st.ecs
                        .insert(id.to_owned(), serde_json::from_slice(&json).map_err(bad)?);
                }
                "rds" => {
                    st.rds
                        .insert(id.to_owned(), serde_json::from_slice(&json).map_err(bad)?);
                }
                "ram" => {
                    st.ram
                        .insert(id.to_owned(), serde_json::from_slice(&json).map_err(bad)?);
                }
                "cmd" => {
                    st.commands
                        .insert(id.to_owned(), serde_json::from_slice(&json).map_err(bad)?);
                }
                "inv" => {
                    let inv: Invocation = serde_json::from_slice(&json).map_err(bad)?;
                    st.next_seq = st.next_seq.max(inv.seq + 1);
                    st.invocations.insert(id.to_owned(), inv);
                }
                _ => return Err(OpenError::Corrupt(format!("unknown target row {k}"))),
            }
        }
        let targets = Self {
            state: tokio::sync::Mutex::new(TargetState::default()),
            master,
            store,
            binds: world
                .rds_instances
                .iter()
                .filter_map(|(id, d)| d.bind.clone().map(|b| (id.clone(), b)))
                .collect(),
        };
        let mut ops = Vec::new();
        let mut bound = Vec::new();
        for (id, d) in &world.ecs_instances {
            let inst = st.ecs.entry(id.clone()).or_insert_with(|| EcsInstance {
                id: id.clone(),
                region: d.region.clone(),
                os_type: d.os_type,
                accounts: BTreeMap::new(),
            });
            let mut changed = false;
            for (name, a) in &d.accounts {
                if !inst.accounts.contains_key(name) {
                    inst.accounts.insert(
                        name.clone(),
                        OsAccount {
                            password: a.password.clone(),
                            password_hash: None,
                            public_keys: a.public_keys.clone(),
                            changed: now,
                        },
                    );
                    changed = true;
                }
            }
            if changed || !meta.iter().any(|(k, _)| *k == row_key("ecs", id)) {
                ops.push(targets.op(&Row::Ecs(inst)));
            }
        }
        for (id, d) in &world.rds_instances {
            let inst = st.rds.entry(id.clone()).or_insert_with(|| RdsInstance {
                id: id.clone(),
                engine: d.engine,
                created: now,
                accounts: BTreeMap::new(),
            });
            let mut changed = false;
            for (name, a) in &d.accounts {
                if !inst.accounts.contains_key(name) {
                    inst.accounts.insert(
                        name.clone(),
                        RdsAccount {
                            password: a.password.clone(),
                            account_type: a.account_type.clone(),
                            description: String::new(),
                            privileges: Vec::new(),
                            changed: now,
                        },
                    );
                    changed = true;
                    if d.bind.is_some() {
                        bound.push(BoundSeed {
                            instance_id: id.clone(),
                            account: name.clone(),
                        });
                    }
                }
            }
            if changed || !meta.iter().any(|(k, _)| *k == row_key("rds", id)) {
                ops.push(targets.op(&Row::Rds(inst)));
            }
        }
        for (name, d) in &world.ram_users {
            if st.ram.contains_key(name) {
                continue;
            }
            let user = RamUser {
                name: name.clone(),
                created: now,
                keys: d
                    .access_keys
                    .iter()
                    .map(|(id, k)| RamKey {
                        id: id.clone(),
                        secret: k.secret.clone(),
                        status: k.status.clone(),
                        created: now,
                    })
                    .collect(),
            };
            ops.push(targets.op(&Row::Ram(&user)));
            st.ram.insert(name.clone(), user);
        }
        *targets.state.try_lock().expect("not shared yet") = st;
        Ok((targets, ops, bound))
    }

    /// The op that persists one row.
    pub(crate) fn op(&self, row: &Row<'_>) -> Op {
        let (key, json) = match row {
            Row::Ecs(x) => (row_key("ecs", &x.id), serde_json::to_vec(x)),
            Row::Rds(x) => (row_key("rds", &x.id), serde_json::to_vec(x)),
            Row::Ram(x) => (row_key("ram", &x.name), serde_json::to_vec(x)),
            Row::Command(x) => (row_key("cmd", &x.id), serde_json::to_vec(x)),
            Row::Invocation(x) => (row_key("inv", &x.id), serde_json::to_vec(x)),
            Row::DeleteInvocation(id) => {
                return Op::DeleteMeta {
                    key: row_key("inv", id),
                };
            }
        };
        let json = json.expect("target documents serialize");
        Op::PutMeta {
            value: self.master.seal(&json, key.as_bytes()),
            key,
        }
    }

    /// Makes `rows` durable. Call with the state lock held, before
    /// installing the new state.
    pub(crate) async fn persist(&self, rows: &[Row<'_>]) -> Result<(), ServiceError> {
        let ops = rows.iter().map(|r| self.op(r)).collect();
        self.store.write(ops).await.map_err(|e| {
            tracing::error!(error = %e, "target state write failed");
            ServiceError::internal("the write could not be made durable")
        })
    }

    /// The bound server of an RDS instance, if any.
    pub(crate) fn bind(&self, instance_id: &str) -> Option<&SecretString> {
        self.binds.get(instance_id)
    }
}

/// Checks the `RegionId` of an ECS request against the world's region.
pub(crate) fn check_region(world: &World, p: &crate::params::Params) -> Result<(), ServiceError> {
    let region = p.req("RegionId")?;
    if region != world.region {
        return Err(ServiceError::RegionNotFound {
            region: region.to_owned(),
        });
    }
    Ok(())
}

// ----------------------------------------------------------------- snapshot

/// A redacted view of the local world's targets, for `rota local world`:
/// no password, private key or access key secret is in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorldSnapshot {
    /// Account id.
    pub account_id: String,
    /// Region.
    pub region: String,
    /// KMS instance ids.
    pub kms_instances: Vec<String>,
    /// KMS key ids (world keys and CreateKey keys).
    pub keys: Vec<String>,
    /// ECS instances.
    pub ecs_instances: Vec<EcsSnapshot>,
    /// RDS instances.
    pub rds_instances: Vec<RdsSnapshot>,
    /// RAM users.
    pub ram_users: Vec<RamUserSnapshot>,
    /// RAM roles (for STS AssumeRole and instance roles).
    pub ram_roles: Vec<RamRoleSnapshot>,
    /// How many Cloud Assistant invocations are remembered.
    pub invocations: usize,
}

/// A RAM role: who may assume it, for how long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RamRoleSnapshot {
    /// Role name.
    pub name: String,
    /// Role ARN.
    pub arn: String,
    /// RAM principals (patterns) and services its trust policy names.
    pub trusted: Vec<String>,
    /// Longest session, in seconds.
    pub max_session_duration: u32,
    /// Whether a permission policy bounds its sessions.
    pub has_policy: bool,
}

/// An ECS instance, redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EcsSnapshot {
    /// Instance id.
    pub instance_id: String,
    /// Region.
    pub region: String,
    /// `linux` or `windows`.
    pub os_type: String,
    /// The RAM role attached to it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ram_role: Option<String>,
    /// OS accounts.
    pub accounts: Vec<AccountSnapshot>,
}

/// An account (ECS or RDS), redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountSnapshot {
    /// Account name.
    pub name: String,
    /// `password`, `public key` … (what kind of credential it holds).
    pub credential: String,
    /// When its credential last changed (`YYYY-MM-DDTHH:MM:SSZ`).
    pub changed: String,
    /// Which secret versions hold its current credential, e.g.
    /// `acs/ecs/web ACSCurrent (v3)`.
    pub held_by: Vec<String>,
}

/// An RDS instance, redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RdsSnapshot {
    /// Instance id.
    pub instance_id: String,
    /// Engine.
    pub engine: String,
    /// The bound server as `scheme://host:port` (no user, no password), if any.
    pub bound_to: Option<String>,
    /// Accounts.
    pub accounts: Vec<AccountSnapshot>,
}

/// A RAM user, redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RamUserSnapshot {
    /// User name.
    pub name: String,
    /// Its principal ARN.
    pub principal: String,
    /// Its access keys.
    pub access_keys: Vec<RamKeySnapshot>,
}

/// A RAM access key, redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RamKeySnapshot {
    /// Key id.
    pub access_key_id: String,
    /// `Active` or `Inactive`.
    pub status: String,
    /// Creation time.
    pub create_date: String,
    /// Which secret versions hold it.
    pub held_by: Vec<String>,
}

/// `scheme://host:port` of a URL, without user info, path or query.
pub(crate) fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}")
}

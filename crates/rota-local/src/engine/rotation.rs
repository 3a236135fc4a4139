//! Managed rotation (kms-api.md §3.10, rotation.md): RotateSecret for ECS,
//! Rds and RAMCredentials secrets, against the emulated targets, plus the
//! recovery pass and automatic rotation.
//!
//! **Protocol**, under the secret's lock:
//! 1. *plan*: check the target (instance, account, user) exists and
//!    generate the new value: a 32-character password (letters, digits and
//!    RDS's specials ``!@#$&%^*()_+-=``), a new Ed25519 key pair (ECS
//!    SSHKey: OpenSSH public key and `openssh-key-v1` private key), or a
//!    new access key pair (RAM). Nothing is written if this fails.
//! 2. *pending*: the new version is stored with the stage `ACSPending` only
//!    (durable) — the write-ahead record.
//! 3. *set*: the target is changed to the pending value, idempotently:
//!    - ECS: Cloud Assistant runs the public rotation command
//!      (`cmd-ACS-KMS-RotateECSSecret-For-Linux.sh`, or the Windows one) on
//!      the instance with `{"username","password"}` or
//!      `{"username","publicKey"}`;
//!    - Rds SingleUser: ResetAccountPassword of the account; DoubleUsers:
//!      the *other* account of the pair `AccountName` / `AccountName_clone`
//!      (created when missing) gets the new password, so the account in
//!      ACSCurrent keeps working during the handover;
//!    - RAMCredentials (the two-key dance): if the pending key is not
//!      installed yet, delete the user's keys that are neither ACSCurrent
//!      nor pending while the user has two, then install the pending key
//!      (the emulated CreateAccessKey, with the pair chosen in step 1).
//! 4. *promote*: `ACSCurrent` moves to the new version, the old current
//!    becomes `ACSPrevious`, `ACSPending` is dropped; `LastRotationDate` =
//!    now, `NextRotationDate` = now + interval when rotation is enabled.
//!
//! **Idempotency** on `VersionId`: a version that exists and is not pending
//! answers success without rotating; a pending one is rolled forward. A
//! rotation started while another version is pending first rolls that one
//! forward.
//!
//! **Failure**: when the target refuses the change (step 3 answers an
//! error), the pending version is dropped and the error returned — the
//! target still holds ACSCurrent. When a bound database server fails
//! (`InternalError`: the statement may or may not have run), the pending
//! version is kept, and the next RotateSecret, recovery pass or automatic
//! pass rolls it forward.
//!
//! **Recovery**: at open, every managed secret with a pending version is
//! rolled forward (steps 3–4 again; step 3 is idempotent). So after a crash
//! anywhere between steps 2 and 4 the rotation completes, and at every
//! moment the target holds ACSCurrent or ACSPending: nobody is locked out.
//!
//! **Automatic rotation**: [`Engine::rotate_due`] rotates every secret with
//! automatic rotation enabled whose `NextRotationDate` has passed, with
//! `VersionId` `auto-<unix seconds>`; [`crate::LocalCloud`] runs it
//! periodically unless turned off.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rota_kms::SecretString;
use rota_kms::kms::RotateSecretResponse;
use serde_json::{Map, Value, json};

use super::secrets::{CURRENT, to_json};
use super::validate::{self, SecretType};
use super::{Engine, Secret, VersionDoc, wire};
use crate::auth::Caller;
use crate::errors::ServiceError;
use crate::params::Params;
use crate::store::Op;
use crate::targets::ecs::{Exec, ROTATE_LINUX, ROTATE_WINDOWS};
use crate::world::OsType;

/// The stage of a rotation in progress.
pub(crate) use rota_kms::kms::stage::PENDING;

/// A step of a managed rotation, reported to a [`RotationHook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotationStep {
    /// The new value is durable as `ACSPending`; the target is untouched.
    PendingStored,
    /// The target accepted the new value; `ACSCurrent` has not moved yet.
    TargetChanged,
    /// `ACSCurrent` moved to the new version.
    Promoted,
}

/// Called after each [`RotationStep`] with the secret's name (tests use it
/// to stop a process at a precise point). It runs on the rotating task.
pub type RotationHook = Arc<dyn Fn(&str, RotationStep) + Send + Sync>;

fn ext_of(s: &Secret) -> Map<String, Value> {
    s.doc
        .extended_config
        .as_deref()
        .and_then(|e| serde_json::from_str(e).ok())
        .unwrap_or_default()
}

fn field<'a>(o: &'a Map<String, Value>, k: &str) -> &'a str {
    o.get(k).and_then(Value::as_str).unwrap_or_default()
}

/// A 32-character password that satisfies RDS's rules too.
pub(crate) fn rotation_password() -> String {
    let allowed = crate::targets::rds::SPECIALS;
    let exclude: String = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
        .chars()
        .filter(|c| !allowed.contains(*c))
        .collect();
    super::misc::generate_password(&rota_kms::password::PasswordPolicy {
        exclude_characters: exclude,
        ..rota_kms::password::PasswordPolicy::default()
    })
    .expect("the rotation password spec is satisfiable")
}

fn ssh_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// A new Ed25519 key pair: (OpenSSH public key line, OpenSSH private key).
pub(crate) fn ssh_key_pair(comment: &str) -> (String, SecretString) {
    let seed: [u8; 32] = rand::random();
    let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
    let pk = sk.verifying_key().to_bytes();
    let mut blob = Vec::new();
    ssh_string(&mut blob, b"ssh-ed25519");
    ssh_string(&mut blob, &pk);
    let public = format!("ssh-ed25519 {} {comment}", B64.encode(&blob));
    let check: u32 = rand::random();
    let mut private = Vec::new();
    private.extend_from_slice(&check.to_be_bytes());
    private.extend_from_slice(&check.to_be_bytes());
    ssh_string(&mut private, b"ssh-ed25519");
    ssh_string(&mut private, &pk);
    let mut keypair = seed.to_vec();
    keypair.extend_from_slice(&pk);
    ssh_string(&mut private, &keypair);
    ssh_string(&mut private, comment.as_bytes());
    let mut pad = 1u8;
    while private.len() % 8 != 0 {
        private.push(pad);
        pad += 1;
    }
    let mut file = b"openssh-key-v1\0".to_vec();
    ssh_string(&mut file, b"none");
    ssh_string(&mut file, b"none");
    ssh_string(&mut file, b"");
    file.extend_from_slice(&1u32.to_be_bytes());
    ssh_string(&mut file, &blob);
    ssh_string(&mut file, &private);
    let b64 = B64.encode(&file);
    let mut pem = String::from("-----BEGIN OPENSSH PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(70) {
        pem.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END OPENSSH PRIVATE KEY-----\n");
    (public, SecretString::new(pem))
}

/// The account paired with `name` in a DoubleUsers secret.
fn other_account(name: &str) -> String {
    match name.strip_suffix("_clone") {
        Some(base) => base.to_owned(),
        None => format!("{name}_clone"),
    }
}

impl Engine {
    fn hook(&self, name: &str, step: RotationStep) {
        if let Some(h) = &self.rotation_hook {
            h(name, step);
        }
    }

    /// The public rotation command for an ECS secret on `os`.
    fn ecs_command(ext: &Map<String, Value>, os: OsType) -> Result<&'static str, ServiceError> {
        match field(ext, "CommandId") {
            "" => Ok(match os {
                OsType::Linux => ROTATE_LINUX,
                OsType::Windows => ROTATE_WINDOWS,
            }),
            ROTATE_LINUX if os == OsType::Linux => Ok(ROTATE_LINUX),
            ROTATE_WINDOWS if os == OsType::Windows => Ok(ROTATE_WINDOWS),
            ROTATE_LINUX | ROTATE_WINDOWS => Err(ServiceError::CommandNotApplicable {
                reason: format!(
                    "the command {} does not run on a {} instance",
                    field(ext, "CommandId"),
                    os.as_str()
                ),
            }),
            other => Err(ServiceError::CommandNotFound {
                command_id: other.to_owned(),
            }),
        }
    }

    /// Step 1: checks the target and generates the new value.
    async fn plan_rotation(&self, s: &Secret) -> Result<SecretString, ServiceError> {
        let ext = ext_of(s);
        let current = self.current_json(s)?;
        let now_wire = wire(self.now_secs());
        let value = match s.ty() {
            SecretType::Ecs => {
                let id = field(&ext, "InstanceId");
                let user = field(&current, "UserName");
                let st = self.targets.state.lock().await;
                let inst = st
                    .ecs
                    .get(id)
                    .filter(|i| i.region == field(&ext, "RegionId"))
                    .ok_or_else(|| ServiceError::InstanceNotExists {
                        instance_id: id.to_owned(),
                    })?;
                if !inst.accounts.contains_key(user) {
                    return Err(ServiceError::OsAccountNotExists {
                        instance_id: id.to_owned(),
                        account: user.to_owned(),
                    });
                }
                Self::ecs_command(&ext, inst.os_type)?;
                if field(&ext, "SecretSubType") == "SSHKey" {
                    if inst.os_type == OsType::Windows {
                        return Err(ServiceError::CommandNotApplicable {
                            reason: "Windows instances rotate passwords only, not SSH keys".into(),
                        });
                    }
                    let (public, private) = ssh_key_pair(&format!("{user}@{id}"));
                    json!({"UserName": user, "PublicKey": public, "PrivateKey": private.expose_secret()})
                } else {
                    json!({"UserName": user, "Password": rotation_password()})
                }
            }
            SecretType::Rds => {
                let id = field(&ext, "DBInstanceId");
                let account = field(&current, "AccountName");
                let st = self.targets.state.lock().await;
                let inst = st
                    .rds
                    .get(id)
                    .ok_or_else(|| ServiceError::DbInstanceNotFound {
                        instance_id: id.to_owned(),
                    })?;
                if !inst.accounts.contains_key(account) {
                    return Err(ServiceError::DbAccountNotFound {
                        instance_id: id.to_owned(),
                        account: account.to_owned(),
                    });
                }
                let target = if field(&ext, "SecretSubType") == "DoubleUsers" {
                    let other = other_account(account);
                    if !crate::world::valid_rds_account(&other) {
                        return Err(ServiceError::DbAccountNameMalformed { account: other });
                    }
                    other
                } else {
                    account.to_owned()
                };
                json!({"AccountName": target, "AccountPassword": rotation_password()})
            }
            SecretType::RamCredentials => {
                let user = field(&ext, "UserName");
                let st = self.targets.state.lock().await;
                if !st.ram.contains_key(user) {
                    return Err(ServiceError::RamUserNotFound {
                        user: user.to_owned(),
                    });
                }
                let (id, secret) = crate::targets::ram::new_key_pair();
                json!({"AccessKeyId": id, "AccessKeySecret": secret.expose_secret(), "GenerateTimestamp": now_wire})
            }
            other => {
                return Err(ServiceError::Unsupported {
                    action: "RotateSecret".into(),
                    reason: format!(
                        "the local world has no {} instances to rotate",
                        other.as_str()
                    ),
                });
            }
        };
        Ok(SecretString::new(value.to_string()))
    }

    fn version_json(&self, s: &Secret, vid: &str) -> Result<Map<String, Value>, ServiceError> {
        let data = self.open_version(s, vid)?;
        serde_json::from_str::<Value>(data.expose_secret())
            .ok()
            .and_then(|v| v.as_object().cloned())
            .ok_or_else(|| {
                ServiceError::internal(format!(
                    "a version of {} does not hold the JSON its type requires",
                    s.doc.name
                ))
            })
    }

    fn current_json(&self, s: &Secret) -> Result<Map<String, Value>, ServiceError> {
        let vid = s
            .stage_holder(CURRENT)
            .map(|v| v.id.clone())
            .ok_or_else(|| ServiceError::internal("a secret has no ACSCurrent version"))?;
        self.version_json(s, &vid)
    }

    /// Step 3: makes the target accept the pending value (idempotent).
    async fn set_target(
        &self,
        s: &Secret,
        pending: &Map<String, Value>,
    ) -> Result<(), ServiceError> {
        let ext = ext_of(s);
        match s.ty() {
            SecretType::Ecs => {
                let id = field(&ext, "InstanceId").to_owned();
                let os = {
                    let st = self.targets.state.lock().await;
                    st.ecs.get(&id).map(|i| i.os_type).ok_or_else(|| {
                        ServiceError::InstanceNotExists {
                            instance_id: id.clone(),
                        }
                    })?
                };
                let command_id = Self::ecs_command(&ext, os)?;
                let command = crate::targets::ecs::public_command_for(command_id)
                    .expect("a public command id");
                let mut params = Map::new();
                params.insert("username".into(), json!(field(pending, "UserName")));
                match pending.get("PublicKey").and_then(Value::as_str) {
                    Some(k) => params.insert("publicKey".into(), json!(k)),
                    None => params.insert("password".into(), json!(field(pending, "Password"))),
                };
                let inv = self
                    .invoke(
                        Exec {
                            command,
                            public: true,
                            params,
                            username: None,
                            timeout: 60,
                        },
                        std::slice::from_ref(&id),
                        None,
                    )
                    .await?;
                let r = &inv.results[0];
                match (r.status.as_str(), r.error_code.as_str()) {
                    ("Success", _) => Ok(()),
                    (_, "InstanceNotExists") => {
                        Err(ServiceError::InstanceNotExists { instance_id: id })
                    }
                    (_, "AccountNotExists") => Err(ServiceError::OsAccountNotExists {
                        instance_id: id,
                        account: field(pending, "UserName").to_owned(),
                    }),
                    (_, "CommandNotApplicable") => Err(ServiceError::CommandNotApplicable {
                        reason: r.error_info.clone(),
                    }),
                    _ => Err(ServiceError::RotationFailed {
                        name: s.doc.name.clone(),
                        reason: format!(
                            "Cloud Assistant invocation {} ended {} with exit code {}: {}",
                            inv.id,
                            r.status,
                            r.exit_code,
                            r.output.trim()
                        ),
                    }),
                }
            }
            SecretType::Rds => {
                let id = field(&ext, "DBInstanceId");
                let account = field(pending, "AccountName");
                let password = SecretString::new(field(pending, "AccountPassword"));
                let create = (field(&ext, "SecretSubType") == "DoubleUsers").then_some("Normal");
                self.rds_set_account(id, account, &password, create).await
            }
            SecretType::RamCredentials => {
                let user = field(&ext, "UserName");
                let pid = field(pending, "AccessKeyId");
                let keys = self.ram_key_ids(user).await?;
                if keys.iter().any(|k| k == pid) {
                    return Ok(());
                }
                let current = self
                    .current_json(s)
                    .map(|c| field(&c, "AccessKeyId").to_owned())
                    .unwrap_or_default();
                let mut remaining = keys.len();
                for k in keys.iter().filter(|k| **k != current) {
                    if remaining < 2 {
                        break;
                    }
                    self.ram_delete_key(user, k, true).await?;
                    tracing::info!(secret.name = %s.doc.name, ram.access_key_id = %k, "retired the oldest access key");
                    remaining -= 1;
                }
                let secret = SecretString::new(field(pending, "AccessKeySecret"));
                self.ram_install_key(user, pid, &secret).await
            }
            other => Err(ServiceError::Unsupported {
                action: "RotateSecret".into(),
                reason: format!("the local world has no {} instances", other.as_str()),
            }),
        }
    }

    /// Steps 3 and 4 for the pending version `vid`. Call with the lock held.
    async fn finish_pending(&self, name: &str, vid: &str) -> Result<(), ServiceError> {
        let s = self.require(name)?;
        let pending = self.version_json(&s, vid)?;
        if let Err(e) = self.set_target(&s, &pending).await {
            if !matches!(e, ServiceError::BoundDatabase { .. }) {
                self.drop_pending(&s, vid).await?;
                tracing::warn!(secret.name = %name, version = %vid, code = e.code(), "the target refused the rotation; the pending version was dropped");
            } else {
                tracing::warn!(secret.name = %name, version = %vid, code = e.code(), "the bound database failed; the rotation stays pending");
            }
            return Err(e);
        }
        self.hook(name, RotationStep::TargetChanged);
        let s = self.require(name)?;
        let mut next = (*s).clone();
        super::secrets::move_stage(&mut next.doc, CURRENT, vid, true);
        for v in &mut next.doc.versions {
            v.stages.retain(|st| st != PENDING);
        }
        let now = self.now_secs();
        next.doc.last_rotation = Some(now);
        next.doc.next_rotation = next.doc.rotation_interval.map(|i| now + i as i64);
        next.doc.updated = now;
        self.commit(name, Vec::new(), Some(next)).await?;
        tracing::info!(secret.name = %name, version = %vid, "managed rotation finished");
        self.hook(name, RotationStep::Promoted);
        Ok(())
    }

    async fn drop_pending(&self, s: &Secret, vid: &str) -> Result<(), ServiceError> {
        let mut next = s.clone();
        next.doc.versions.retain(|v| v.id != vid);
        next.sealed.remove(vid);
        self.commit(
            &s.doc.name,
            vec![Op::DeleteVersion {
                name: s.doc.name.clone(),
                version_id: vid.to_owned(),
            }],
            Some(next),
        )
        .await
    }

    fn pending_version(s: &Secret) -> Option<String> {
        s.doc
            .versions
            .iter()
            .find(|v| {
                v.stages.iter().any(|x| x == PENDING) && !v.stages.iter().any(|x| x == CURRENT)
            })
            .map(|v| v.id.clone())
    }

    /// Rotates `name` to a new version `vid` (the whole protocol).
    pub(crate) async fn rotate(&self, name: &str, vid: &str) -> Result<(), ServiceError> {
        let _g = self.lock(name).await;
        let s = self.live_for_mutation(name)?;
        if let Some(p) = Self::pending_version(&s) {
            self.finish_pending(name, &p).await?;
            if p == vid {
                return Ok(());
            }
        }
        let s = self.live_for_mutation(name)?;
        if s.version(vid).is_some() {
            return Ok(());
        }
        let value = self.plan_rotation(&s).await?;
        let mut next = (*s).clone();
        let now = self.now_secs();
        next.doc.versions.push(VersionDoc {
            id: vid.to_owned(),
            created: now,
            data_type: "text".into(),
            stages: vec![PENDING.to_owned()],
        });
        let mut ops = Vec::new();
        for gone in super::secrets::evict(&mut next.doc) {
            next.sealed.remove(&gone);
            ops.push(Op::DeleteVersion {
                name: name.to_owned(),
                version_id: gone,
            });
        }
        let sealed = self.sealing_for(&next.doc)?.seal_secret(name, vid, &value);
        ops.push(Op::PutVersion {
            name: name.to_owned(),
            version_id: vid.to_owned(),
            sealed: sealed.clone(),
        });
        next.sealed.insert(vid.to_owned(), sealed.into());
        next.doc.updated = now;
        self.commit(name, ops, Some(next)).await?;
        tracing::info!(secret.name = %name, version = %vid, "managed rotation started; new value pending");
        self.hook(name, RotationStep::PendingStored);
        self.finish_pending(name, vid).await
    }

    /// RotateSecret.
    pub(crate) async fn rotate_secret(
        &self,
        caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let name = self.resolve_name(p.req("SecretName")?)?;
        let version_id = p.req("VersionId")?;
        validate::check_version_id("VersionId", version_id)?;
        let s = self.live_for_mutation(&name)?;
        self.authorize(caller, &s, "RotateSecret")?;
        if !s.ty().is_managed() {
            return Err(ServiceError::invalid(
                "SecretName",
                "RotateSecret applies to managed secret types only (not Generic)",
            ));
        }
        self.rotate(&name, version_id).await?;
        Ok(to_json(&RotateSecretResponse {
            request_id: String::new(),
            arn: self.world.secret_arn(&name),
            secret_name: name,
            version_id: version_id.to_owned(),
        }))
    }

    /// Rolls every pending managed rotation forward. Returns the names
    /// finished; failures are logged and stay pending.
    pub(crate) async fn recover_rotations(&self) -> Vec<String> {
        let pending: Vec<(String, String)> = self
            .all_secrets()
            .into_iter()
            .filter(|s| s.ty().is_managed())
            .filter_map(|s| Self::pending_version(&s).map(|v| (s.doc.name.clone(), v)))
            .collect();
        let mut done = Vec::new();
        for (name, vid) in pending {
            let _g = self.lock(&name).await;
            let still = self
                .secret(&name)
                .and_then(|s| Self::pending_version(&s))
                .is_some_and(|v| v == vid);
            if !still {
                continue;
            }
            match self.finish_pending(&name, &vid).await {
                Ok(()) => {
                    tracing::info!(secret.name = %name, version = %vid, "recovered an interrupted rotation");
                    done.push(name);
                }
                Err(e) => {
                    tracing::warn!(secret.name = %name, version = %vid, error = %e, "an interrupted rotation could not be finished yet");
                }
            }
        }
        done
    }

    /// Rotates every secret whose automatic rotation is due. Returns the
    /// names rotated; failures are logged, and a secret whose automatic
    /// rotation failed waits before the next try: 1 minute, doubling up to
    /// an hour, until one succeeds.
    pub(crate) async fn rotate_due(&self) -> Vec<String> {
        let now = self.now_secs();
        let waiting: std::collections::HashMap<String, (u32, i64)> = self
            .auto_failures
            .lock()
            .map(|f| f.clone())
            .unwrap_or_default();
        let due: Vec<String> = self
            .all_secrets()
            .into_iter()
            .filter(|s| {
                s.ty().is_managed()
                    && !s.pending_delete()
                    && s.doc.rotation_interval.is_some()
                    && s.doc.next_rotation.is_some_and(|t| t <= now)
                    && waiting.get(&s.doc.name).is_none_or(|(_, at)| *at <= now)
            })
            .map(|s| s.doc.name.clone())
            .collect();
        let mut done = Vec::new();
        for name in due {
            let vid = format!("auto-{now}");
            let result = self.rotate(&name, &vid).await;
            let Ok(mut failures) = self.auto_failures.lock() else {
                continue;
            };
            match result {
                Ok(()) => {
                    failures.remove(&name);
                    done.push(name);
                }
                Err(e) => {
                    let n = failures.get(&name).map_or(1, |(n, _)| n + 1);
                    let wait = auto_retry_wait(n);
                    failures.insert(name.clone(), (n, now + wait));
                    tracing::warn!(secret.name = %name, code = e.code(), error = %e, failures = n, retry_in_s = wait, "automatic rotation failed");
                }
            }
        }
        done
    }
}

/// Seconds before automatic rotation number `failures + 1` of a secret is
/// tried: 60, 120, 240, … at most 3,600.
fn auto_retry_wait(failures: u32) -> i64 {
    (60_i64 << failures.saturating_sub(1).min(6)).min(3_600)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn automatic_rotation_retries_back_off_to_an_hour() {
        let waits: Vec<i64> = (1..=9).map(auto_retry_wait).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
    }

    #[test]
    fn passwords_meet_rds_rules() {
        for _ in 0..200 {
            let p = rotation_password();
            assert_eq!(p.chars().count(), 32);
            crate::targets::rds::check_password(&p).unwrap();
        }
    }

    #[test]
    fn ssh_keys_have_the_openssh_shapes() {
        let (public, private) = ssh_key_pair("u@i-1");
        assert!(public.starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"));
        assert!(public.ends_with(" u@i-1"));
        assert!(private.expose_secret().starts_with(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"
        ));
        assert_eq!(other_account("app"), "app_clone");
        assert_eq!(other_account("app_clone"), "app");
    }
}

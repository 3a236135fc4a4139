//! The redacted, inspectable view of the world ([`WorldSnapshot`]): which
//! resources exist and which secret version holds each credential. The
//! comparison of credentials with secret versions happens here, in
//! constant time; only labels such as `acs/ecs/web ACSCurrent (v3)` leave.

use rota_kms::SecretString;
use rota_kms::secret::constant_time_eq;
use serde_json::{Map, Value};

use super::{
    AccountSnapshot, EcsSnapshot, RamKeySnapshot, RamUserSnapshot, RdsSnapshot, WorldSnapshot,
    redact_url,
};
use crate::engine::validate::SecretType;
use crate::engine::{Engine, wire};

/// A decrypted staged version of a managed secret (in memory only).
struct Held {
    ty: SecretType,
    ext: Map<String, Value>,
    value: Map<String, Value>,
    label: String,
}

fn s<'a>(o: &'a Map<String, Value>, k: &str) -> &'a str {
    o.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn same(a: &str, b: &str) -> bool {
    constant_time_eq(a.as_bytes(), b.as_bytes())
}

fn same_secret(a: Option<&SecretString>, b: &str) -> bool {
    a.is_some_and(|a| !b.is_empty() && same(a.expose_secret(), b))
}

impl Engine {
    fn held_versions(&self) -> Vec<Held> {
        let mut out = Vec::new();
        for sec in self.all_secrets() {
            let ty = sec.ty();
            // Managed types, and Generic secrets holding a login (the
            // shipped ecs-password / ecs-sshkey plugins' JSON shape).
            if !ty.is_managed() && ty != SecretType::Generic {
                continue;
            }
            let ext: Map<String, Value> = sec
                .doc
                .extended_config
                .as_deref()
                .and_then(|e| serde_json::from_str(e).ok())
                .unwrap_or_default();
            for v in sec.doc.versions.iter().filter(|v| !v.stages.is_empty()) {
                let Ok(data) = self.open_version(&sec, &v.id) else {
                    continue;
                };
                let Some(value) = serde_json::from_str::<Value>(data.expose_secret())
                    .ok()
                    .and_then(|x| x.as_object().cloned())
                else {
                    continue;
                };
                out.push(Held {
                    ty,
                    ext: ext.clone(),
                    value,
                    label: format!("{} {} ({})", sec.doc.name, v.stages.join("+"), v.id),
                });
            }
        }
        out
    }

    /// The redacted view of the world for `rota local world`.
    pub(crate) async fn snapshot(&self) -> WorldSnapshot {
        let held = self.held_versions();
        let st = self.targets.state.lock().await;
        let ecs_instances = st
            .ecs
            .values()
            .map(|i| EcsSnapshot {
                instance_id: i.id.clone(),
                region: i.region.clone(),
                os_type: i.os_type.as_str().to_owned(),
                ram_role: self
                    .world
                    .ecs_instances
                    .get(&i.id)
                    .and_then(|d| d.ram_role.clone()),
                accounts: i
                    .accounts
                    .iter()
                    .map(|(name, a)| {
                        let credential = match (a.has_password(), a.public_keys.len()) {
                            (true, 0) => "password".to_owned(),
                            (true, n) => format!("password, {n} public key(s)"),
                            (false, 0) => "none".to_owned(),
                            (false, n) => format!("{n} public key(s)"),
                        };
                        let held_by = held
                            .iter()
                            .filter(|h| {
                                // An ECS secret names its instance; a Generic
                                // login {"username", "password" | "public_key"}
                                // matches the account on any instance.
                                let (user, password, key) = match h.ty {
                                    SecretType::Ecs if s(&h.ext, "InstanceId") == i.id => {
                                        ("UserName", "Password", "PublicKey")
                                    }
                                    SecretType::Generic => ("username", "password", "public_key"),
                                    _ => return false,
                                };
                                s(&h.value, user) == name
                                    && ((!s(&h.value, password).is_empty()
                                        && a.password_is(s(&h.value, password)))
                                        || a.public_keys
                                            .iter()
                                            .any(|k| same(k, s(&h.value, key).trim())))
                            })
                            .map(|h| h.label.clone())
                            .collect();
                        AccountSnapshot {
                            name: name.clone(),
                            credential,
                            changed: wire(a.changed),
                            held_by,
                        }
                    })
                    .collect(),
            })
            .collect();
        let rds_instances = st
            .rds
            .values()
            .map(|i| RdsSnapshot {
                instance_id: i.id.clone(),
                engine: i.engine.as_str().to_owned(),
                bound_to: self
                    .targets
                    .bind(&i.id)
                    .map(|u| redact_url(u.expose_secret())),
                accounts: i
                    .accounts
                    .iter()
                    .map(|(name, a)| AccountSnapshot {
                        name: name.clone(),
                        credential: format!("password ({})", a.account_type),
                        changed: wire(a.changed),
                        held_by: held
                            .iter()
                            .filter(|h| {
                                h.ty == SecretType::Rds
                                    && s(&h.ext, "DBInstanceId") == i.id
                                    && s(&h.value, "AccountName") == name
                                    && same_secret(
                                        Some(&a.password),
                                        s(&h.value, "AccountPassword"),
                                    )
                            })
                            .map(|h| h.label.clone())
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        let ram_users = st
            .ram
            .values()
            .map(|u| RamUserSnapshot {
                name: u.name.clone(),
                principal: self.world.user_principal(&u.name),
                access_keys: u
                    .keys
                    .iter()
                    .map(|k| RamKeySnapshot {
                        access_key_id: k.id.clone(),
                        status: k.status.clone(),
                        create_date: wire(k.created),
                        held_by: held
                            .iter()
                            .filter(|h| {
                                h.ty == SecretType::RamCredentials
                                    && s(&h.ext, "UserName") == u.name
                                    && s(&h.value, "AccessKeyId") == k.id
                                    && same_secret(Some(&k.secret), s(&h.value, "AccessKeySecret"))
                            })
                            .map(|h| h.label.clone())
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        WorldSnapshot {
            account_id: self.world.account_id.clone(),
            region: self.world.region.clone(),
            kms_instances: self.world.kms_instances.keys().cloned().collect(),
            keys: self
                .all_keys()
                .iter()
                .map(|k| k.doc.key_id.clone())
                .collect(),
            ecs_instances,
            rds_instances,
            ram_users,
            ram_roles: self
                .world
                .ram_roles
                .iter()
                .map(|(name, r)| super::RamRoleSnapshot {
                    name: name.clone(),
                    arn: self.world.role_arn(name),
                    trusted: r
                        .trusted_principals
                        .iter()
                        .chain(&r.trusted_services)
                        .cloned()
                        .collect(),
                    max_session_duration: r.max_session_duration,
                    has_policy: r.policy.is_some(),
                })
                .collect(),
            invocations: st.invocations.len(),
        }
    }
}

//! The local key registry: CreateKey, DescribeKey, ListKeys, and the key
//! lifecycle: DisableKey, EnableKey, ScheduleKeyDeletion,
//! CancelKeyDeletion.
//!
//! Keys declared by the world exist from the first start; CreateKey adds
//! more. Every key gets a 256-bit data key (wrapped under the master key in
//! the database) which is what actually encrypts the secrets naming it as
//! `EncryptionKeyId`. Choices: only `Aliyun_KMS` origin is supported
//! (`EXTERNAL` answers `UnsupportedOperation`); `KeyUsage` defaults to
//! `ENCRYPT/DECRYPT` for symmetric specs and `SIGN/VERIFY` otherwise; the
//! rotation settings CreateKey accepts are stored nowhere (keys do not
//! rotate in the local world).
//!
//! **Lifecycle.** `Enabled` ⇄ `Disabled` (DisableKey, EnableKey; asking for
//! the state a key is already in succeeds and changes nothing);
//! ScheduleKeyDeletion moves an enabled or disabled key to
//! `PendingDeletion` with `DeleteDate` = now + `PendingWindowInDays` (7 to
//! 30, required); CancelKeyDeletion returns it to `Enabled` (as KMS
//! documents: not to the state it had before). Any other transition is
//! refused with `Rejected.StateModifiedFailed` (409) and changes nothing.
//! The four actions answer the request id alone. While a key is not
//! enabled, every read and write of a secret under it is refused with the
//! codes KMS gives for the key itself (`Rejected.Disabled`,
//! `Rejected.PendingDeletion`, 409) and the secret is left as it was;
//! DescribeSecret, ListSecrets and tags still work. Once its `DeleteDate`
//! has passed the key is gone: DescribeKey and every secret under it
//! answer `Forbidden.KeyNotFound` (404), ListKeys leaves it out (its
//! wrapped material stays in the database, unusable through the API). The
//! service-managed key that encrypts secrets without `EncryptionKeyId` is
//! not visible, so it cannot be disabled.
//! ListKeys supports the `KeyState`, `KeySpec`, `KeyUsage`, `ProtectionLevel`
//! and `CreatorType` filters (values ORed, keys ANDed).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::{Engine, KeyDoc, KmsKey, wire};
use crate::auth::Caller;
use crate::errors::ServiceError;
use crate::params::Params;
use crate::world::KEY_SPECS;

fn new_key_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let bytes: [u8; 21] = rand::random();
    let tail: String = bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    format!("key-loc{tail}")
}

impl Engine {
    fn key_metadata(&self, k: &KmsKey) -> Value {
        let d = &k.doc;
        let mut m = json!({
            "KeyId": d.key_id,
            "Arn": self.world.key_arn(&d.key_id),
            "CreationDate": wire(d.created),
            "Creator": d.creator,
            "Description": d.description,
            "KeySpec": d.spec,
            "KeyUsage": d.usage,
            "KeyState": d.state,
            "Origin": d.origin,
            "ProtectionLevel": d.protection_level,
            "AutomaticRotation": "Disabled",
            "DeleteDate": d.delete_date.map(wire).unwrap_or_default(),
            "MaterialExpireTime": "",
        });
        if let Some(i) = &d.dkms_instance_id {
            m["DKMSInstanceId"] = json!(i);
        }
        m
    }

    pub(crate) async fn create_key(
        &self,
        caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let spec = p.opt("KeySpec").unwrap_or(crate::world::SYMMETRIC_SPEC);
        if !KEY_SPECS.contains(&spec) {
            return Err(ServiceError::invalid(
                "KeySpec",
                format!("must be one of {}", KEY_SPECS.join(", ")),
            ));
        }
        let symmetric = spec.starts_with("Aliyun_");
        let usage = match p.opt("KeyUsage") {
            None if symmetric => "ENCRYPT/DECRYPT",
            None => "SIGN/VERIFY",
            Some("ENCRYPT/DECRYPT") => "ENCRYPT/DECRYPT",
            Some("SIGN/VERIFY") if !symmetric => "SIGN/VERIFY",
            Some(_) => {
                return Err(ServiceError::invalid(
                    "KeyUsage",
                    "must be ENCRYPT/DECRYPT, or SIGN/VERIFY for an asymmetric spec",
                ));
            }
        };
        match p.opt("Origin") {
            None | Some("Aliyun_KMS") => {}
            Some("EXTERNAL") => {
                return Err(ServiceError::Unsupported {
                    action: "CreateKey".into(),
                    reason:
                        "keys with external key material cannot be imported into the local world"
                            .into(),
                });
            }
            Some(_) => {
                return Err(ServiceError::invalid(
                    "Origin",
                    "must be Aliyun_KMS or EXTERNAL",
                ));
            }
        }
        let protection = match p.opt("ProtectionLevel") {
            None | Some("SOFTWARE") => "SOFTWARE",
            Some("HSM") => "HSM",
            Some(_) => {
                return Err(ServiceError::invalid(
                    "ProtectionLevel",
                    "must be SOFTWARE or HSM",
                ));
            }
        };
        let description = p.opt("Description").unwrap_or_default();
        if description.chars().count() > 8192 {
            return Err(ServiceError::invalid(
                "Description",
                "is longer than 8192 characters",
            ));
        }
        let instance = self.kms_instance(p)?;
        let mut tags = BTreeMap::new();
        if let Some(raw) = p.opt("Tags") {
            for (k, v) in super::validate::parse_tags_json(raw)? {
                tags.insert(k, v);
            }
        }
        let _guard = self.key_lock.lock().await;
        if self.all_keys().len() >= 10_000 {
            return Err(ServiceError::LimitExceeded {
                what: "this local world holds at most 10000 keys".into(),
            });
        }
        let doc = KeyDoc {
            key_id: new_key_id(),
            description: description.to_owned(),
            spec: spec.to_owned(),
            usage: usage.to_owned(),
            state: "Enabled".into(),
            created: self.now_secs(),
            dkms_instance_id: instance,
            origin: "Aliyun_KMS".into(),
            protection_level: protection.into(),
            creator: caller.principal.clone(),
            tags,
            from_world: false,
            internal: false,
            delete_date: None,
        };
        let (op, key) = self.new_key(doc);
        self.store
            .write(vec![op])
            .await
            .map_err(|_| ServiceError::internal("the write could not be made durable"))?;
        let meta = self.key_metadata(&key);
        tracing::info!(key.id = %key.doc.key_id, "key created");
        self.keys_write()
            .insert(key.doc.key_id.clone(), Arc::new(key));
        Ok(json!({ "KeyMetadata": meta }))
    }

    /// The `DKMSInstanceId` parameter, which must name a KMS instance of
    /// the world.
    pub(crate) fn kms_instance(&self, p: &Params) -> Result<Option<String>, ServiceError> {
        let instance = p.opt("DKMSInstanceId").map(str::to_owned);
        if let Some(i) = &instance
            && !self.world.kms_instances.contains_key(i)
        {
            return Err(ServiceError::invalid(
                "DKMSInstanceId",
                format!("{i:?} is not a KMS instance of this local world"),
            ));
        }
        Ok(instance)
    }

    fn resolve_key(&self, raw: &str) -> Result<Arc<KmsKey>, ServiceError> {
        let id = raw
            .strip_prefix(&format!(
                "acs:kms:{}:{}:key/",
                self.world.region, self.world.account_id
            ))
            .unwrap_or(raw);
        self.key(id)
            .filter(|k| !k.doc.internal && !self.key_deleted(k))
            .ok_or_else(|| ServiceError::KeyNotFound {
                key_id: raw.to_owned(),
            })
    }

    /// Changes one key's state under the key lock: `change` gets the
    /// current document and edits it, or answers false when `action` does
    /// not apply to the key's state (refused, nothing changed); the new
    /// document is made durable before it is installed.
    async fn change_key_state(
        &self,
        p: &Params,
        action: &str,
        change: impl FnOnce(&mut KeyDoc) -> bool,
    ) -> Result<Value, ServiceError> {
        let raw = p.req("KeyId")?;
        let _guard = self.key_lock.lock().await;
        let key = self.resolve_key(raw)?;
        let mut next = (*key).clone();
        if !change(&mut next.doc) {
            return Err(ServiceError::KeyStateConflict {
                key_id: key.doc.key_id.clone(),
                action: action.to_owned(),
                state: key.doc.state.clone(),
            });
        }
        if next.doc != key.doc {
            let op = crate::store::Op::PutKey {
                key_id: next.doc.key_id.clone(),
                doc: serde_json::to_string(&next.doc)
                    .map_err(|e| ServiceError::internal(e.to_string()))?,
                wrapped: next.wrapped.to_vec(),
            };
            self.store
                .write(vec![op])
                .await
                .map_err(|_| ServiceError::internal("the write could not be made durable"))?;
            tracing::info!(key.id = %next.doc.key_id, key.state = %next.doc.state, "key state changed");
            self.keys_write()
                .insert(next.doc.key_id.clone(), Arc::new(next));
        }
        // KMS answers these actions with the request id alone.
        Ok(json!({}))
    }

    pub(crate) async fn disable_key(&self, p: &Params) -> Result<Value, ServiceError> {
        self.change_key_state(p, "DisableKey", |d| match d.state.as_str() {
            "Enabled" | "Disabled" => {
                d.state = "Disabled".into();
                true
            }
            _ => false,
        })
        .await
    }

    pub(crate) async fn enable_key(&self, p: &Params) -> Result<Value, ServiceError> {
        self.change_key_state(p, "EnableKey", |d| match d.state.as_str() {
            "Enabled" | "Disabled" => {
                d.state = "Enabled".into();
                true
            }
            _ => false,
        })
        .await
    }

    pub(crate) async fn schedule_key_deletion(&self, p: &Params) -> Result<Value, ServiceError> {
        let days = match p.int("PendingWindowInDays")? {
            None => return Err(ServiceError::missing("PendingWindowInDays")),
            Some(d) if !(7..=30).contains(&d) => {
                return Err(ServiceError::invalid(
                    "PendingWindowInDays",
                    "must be between 7 and 30",
                ));
            }
            Some(d) => d,
        };
        let date = self.now_secs() + days * 86_400;
        self.change_key_state(p, "ScheduleKeyDeletion", |d| match d.state.as_str() {
            "Enabled" | "Disabled" => {
                d.state = "PendingDeletion".into();
                d.delete_date = Some(date);
                true
            }
            _ => false,
        })
        .await
    }

    pub(crate) async fn cancel_key_deletion(&self, p: &Params) -> Result<Value, ServiceError> {
        self.change_key_state(p, "CancelKeyDeletion", |d| match d.state.as_str() {
            "PendingDeletion" => {
                d.state = "Enabled".into();
                d.delete_date = None;
                true
            }
            _ => false,
        })
        .await
    }

    pub(crate) fn describe_key(&self, p: &Params) -> Result<Value, ServiceError> {
        let k = self.resolve_key(p.req("KeyId")?)?;
        Ok(json!({ "KeyMetadata": self.key_metadata(&k) }))
    }

    pub(crate) fn list_keys(&self, p: &Params) -> Result<Value, ServiceError> {
        let page = p.int_in("PageNumber", 1, i64::from(u32::MAX), 1)?;
        let size = p.int_in("PageSize", 1, 100, 10)?;
        let mut filters: Vec<(String, Vec<String>)> = Vec::new();
        if let Some(v) = p.json("Filters")? {
            let bad = || {
                ServiceError::invalid("Filters", "must be a JSON list of {\"Key\",\"Values\":[…]}")
            };
            for f in v.as_array().ok_or_else(bad)? {
                let key = f.get("Key").and_then(Value::as_str).ok_or_else(bad)?;
                if ![
                    "KeyState",
                    "KeySpec",
                    "KeyUsage",
                    "ProtectionLevel",
                    "CreatorType",
                ]
                .contains(&key)
                {
                    return Err(ServiceError::invalid(
                        "Filters",
                        format!("unknown filter key {key:?}"),
                    ));
                }
                let vals = f
                    .get("Values")
                    .and_then(Value::as_array)
                    .ok_or_else(bad)?
                    .iter()
                    .map(|x| x.as_str().map(str::to_owned).ok_or_else(bad))
                    .collect::<Result<Vec<_>, _>>()?;
                filters.push((key.to_owned(), vals));
            }
        }
        let keys: Vec<Arc<KmsKey>> = self
            .all_keys()
            .into_iter()
            .filter(|k| {
                filters.iter().all(|(f, vals)| {
                    let have = match f.as_str() {
                        "KeyState" => k.doc.state.as_str(),
                        "KeySpec" => k.doc.spec.as_str(),
                        "KeyUsage" => k.doc.usage.as_str(),
                        "ProtectionLevel" => k.doc.protection_level.as_str(),
                        _ => "User",
                    };
                    vals.iter().any(|v| v == have)
                })
            })
            .collect();
        let rows: Vec<Value> = keys
            .iter()
            .skip(((page - 1) * size) as usize)
            .take(size as usize)
            .map(|k| json!({"KeyId": k.doc.key_id, "KeyArn": self.world.key_arn(&k.doc.key_id)}))
            .collect();
        Ok(json!({
            "Keys": {"Key": rows},
            "PageNumber": page,
            "PageSize": size,
            "TotalCount": keys.len(),
        }))
    }
}

//! Secret actions (kms-api.md §3.1–§3.13) and the choices made where the
//! documentation is silent:
//!
//! - **PutSecretValue** replaying an existing `VersionId` with the same data
//!   and data type succeeds without creating anything; if `VersionStages` is
//!   given, those stages are (re)applied to that version (Terraform replays
//!   create-then-put, G14). Different data answers `Rejected.ResourceExist`
//!   (409). Data is compared by decrypting the stored version and comparing
//!   in constant time (no extra digest is stored).
//! - A `VersionStages` list containing `ACSCurrent` applies the ACSPrevious
//!   shift (the old ACSCurrent holder becomes ACSPrevious) unless the list
//!   itself names `ACSPrevious`. Every other listed stage moves to the new
//!   version from wherever it was. An empty list is refused.
//! - **UpdateSecretVersionStage**: moving `ACSCurrent` makes its old holder
//!   `ACSPrevious`. `MoveToVersion` alone moves the stage from whichever
//!   version holds it (a stage is held by at most one version);
//!   `RemoveFromVersion` must name the current holder. `ACSCurrent` and
//!   `ACSPrevious` cannot simply be removed. At most 8 distinct stages per
//!   secret (`Rejected.LimitExceeded`).
//! - At most 10 versions: beyond that the oldest version without a stage is
//!   evicted (there always is one, since at most 8 stages exist).
//! - **GetSecretValue**: an unknown version or a stage no version holds
//!   answers `Forbidden.ResourceNotFound`; `VersionId` and `VersionStage`
//!   that do not match each other answer `InvalidParameter`. Managed types
//!   ignore `VersionId` and serve only `ACSCurrent`/`ACSPrevious`. A secret
//!   scheduled for deletion answers `Rejected.ResourceInDeleteWindow` to
//!   GetSecretValue and to every mutation except DeleteSecret with force and
//!   RestoreSecret; DescribeSecret, ListSecrets, ListSecretVersionIds,
//!   GetSecretPolicy and the tag listings still show it (G16). `DryRun=true`
//!   answers `DryRunOperationError` when the call would succeed,
//!   `ValidationError` when it would fail validation and `AccessDeniedError`
//!   when the policy would refuse it.
//! - **Rotation**: `AutomaticRotation` is `Enabled` or `Disabled` for managed
//!   types and absent for Generic, which cannot enable it. Managed secrets
//!   start with `LastRotationDate` = creation time; enabling rotation sets
//!   `NextRotationDate` = last rotation + interval (not earlier than now).
//!   RotateSecret is managed rotation against the emulated targets (see
//!   [`super::rotation`]); on a Generic secret it answers `InvalidParameter`.
//! - **RestoreSecret** on a secret that is not scheduled for deletion
//!   succeeds and changes nothing. DeleteSecret without force on a secret
//!   already scheduled answers `Rejected.ResourceInDeleteWindow`; with force
//!   it deletes at once. `RecoveryWindowInDays` is not validated when forcing
//!   (G15).
//! - **Policies** may be set on any secret (not only KMS-instance ones).
//!   ListSecrets is not filtered by policies.
//! - **ListSecrets** orders by name. Filter matching: `SecretName` and
//!   `Description` match a substring; `TagKey`, `TagValue`, `DKMSInstanceId`
//!   and `Creator` match exactly; `SecretType` compares case-insensitively.
//!   Values under one key are ORed, keys are ANDed.
//! - Redis and PolarDB `$Auto` data get a generated password at create; the
//!   stored value is the returned shape (see `validate::normalize_data`).
//! - An `ExtendedConfig` on a Generic secret may only carry `CustomData`.

use std::collections::BTreeMap;
use std::sync::Arc;

use rota_kms::SecretString;
use rota_kms::kms::{
    CreateSecretResponse, DeleteSecretResponse, GetSecretPolicyResponse,
    ListSecretVersionIdsResponse, ListSecretsResponse, PutSecretValueResponse, SecretList,
    SecretMetadata, SecretSummary, SecretValue, SimpleResponse, Tag, Tags, VersionIds, VersionInfo,
    VersionStages,
};
use serde::Serialize;
use serde_json::Value;

use super::validate::{self, SecretType};
use super::{Engine, Secret, SecretDoc, VersionDoc, wire};
use crate::auth::Caller;
use crate::errors::ServiceError;
use crate::params::Params;
use crate::store::Op;

pub(crate) use rota_kms::kms::stage::{CURRENT, PREVIOUS};

pub(crate) fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("response types serialize")
}

fn check_policy_name(p: &Params) -> Result<(), ServiceError> {
    match p.opt("PolicyName") {
        None | Some("default") => Ok(()),
        Some(_) => Err(ServiceError::invalid("PolicyName", "must be default")),
    }
}

fn tags_of(doc: &SecretDoc) -> Tags {
    Tags {
        tag: doc
            .tags
            .iter()
            .map(|(k, v)| Tag::new(k.clone(), v.clone()))
            .collect(),
    }
}

/// Moves `stage` onto version `to`, removing it from any other holder. For
/// `ACSCurrent` with `shift`, the old holder becomes `ACSPrevious`.
pub(crate) fn move_stage(doc: &mut SecretDoc, stage: &str, to: &str, shift: bool) {
    let old = doc
        .versions
        .iter()
        .find(|v| v.id != to && v.stages.iter().any(|s| s == stage))
        .map(|v| v.id.clone());
    for v in &mut doc.versions {
        if v.id != to {
            v.stages.retain(|s| s != stage);
        } else if !v.stages.iter().any(|s| s == stage) {
            v.stages.push(stage.to_owned());
        }
    }
    if stage == CURRENT
        && shift
        && let Some(old) = old
    {
        for v in &mut doc.versions {
            if v.id == old {
                if !v.stages.iter().any(|s| s == PREVIOUS) {
                    v.stages.push(PREVIOUS.to_owned());
                }
            } else {
                v.stages.retain(|s| s != PREVIOUS);
            }
        }
    }
}

fn distinct_stages(doc: &SecretDoc) -> usize {
    let mut all: Vec<&str> = doc
        .versions
        .iter()
        .flat_map(|v| v.stages.iter().map(String::as_str))
        .collect();
    all.sort_unstable();
    all.dedup();
    all.len()
}

fn check_stage_limit(doc: &SecretDoc) -> Result<(), ServiceError> {
    if distinct_stages(doc) > validate::MAX_STAGES {
        return Err(ServiceError::LimitExceeded {
            what: format!(
                "a secret has at most {} version stages",
                validate::MAX_STAGES
            ),
        });
    }
    Ok(())
}

/// Evicts the oldest stage-less versions beyond the limit; returns their ids.
pub(crate) fn evict(doc: &mut SecretDoc) -> Vec<String> {
    let mut gone = Vec::new();
    while doc.versions.len() > validate::MAX_VERSIONS {
        match doc.versions.iter().position(|v| v.stages.is_empty()) {
            Some(i) => gone.push(doc.versions.remove(i).id),
            None => break,
        }
    }
    gone
}

fn stages_of(v: &VersionDoc) -> VersionStages {
    VersionStages {
        version_stage: v.stages.clone(),
    }
}

/// The read a GetSecretValue request asks for.
fn read_request(p: &Params) -> Result<ReadRequest<'_>, ServiceError> {
    Ok(ReadRequest {
        name: p.req("SecretName")?,
        version_id: p.opt("VersionId"),
        stage: p.opt("VersionStage"),
        fetch_extended_config: p.bool("FetchExtendedConfig")?.unwrap_or(false),
    })
}

/// Parameters of one GetSecretValue read.
pub(crate) struct ReadRequest<'a> {
    pub(crate) name: &'a str,
    pub(crate) version_id: Option<&'a str>,
    pub(crate) stage: Option<&'a str>,
    pub(crate) fetch_extended_config: bool,
}

impl Engine {
    fn rotation_fields(&self, s: &Secret) -> RotationFields {
        if !s.ty().is_managed() {
            return RotationFields::default();
        }
        let d = &s.doc;
        RotationFields {
            automatic_rotation: Some(if d.rotation_interval.is_some() {
                "Enabled"
            } else {
                "Disabled"
            }),
            rotation_interval: d.rotation_interval.map(|n| format!("{n}s")),
            next_rotation_date: d.rotation_interval.and(d.next_rotation).map(wire),
            last_rotation_date: d.last_rotation.map(wire),
        }
    }

    pub(crate) fn live_for_mutation(&self, name: &str) -> Result<Arc<Secret>, ServiceError> {
        let s = self.require(name)?;
        if s.pending_delete() {
            return Err(ServiceError::InDeleteWindow {
                name: name.to_owned(),
            });
        }
        Ok(s)
    }

    // ------------------------------------------------------------ CreateSecret

    pub(crate) async fn create_secret(
        &self,
        caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let raw_name = p.req("SecretName")?;
        let ty = match p.opt("SecretType") {
            None => SecretType::Generic,
            Some(t) => SecretType::parse(t).ok_or_else(|| {
                ServiceError::invalid(
                    "SecretType",
                    "must be Generic, Rds, Redis, RAMCredentials, ECS or PolarDB",
                )
            })?,
        };
        let version_id = p.req("VersionId")?;
        validate::check_version_id("VersionId", version_id)?;
        let data = p.req("SecretData")?;
        validate::check_data(data)?;
        let data_type = validate::parse_data_type(p.opt("SecretDataType"))?;
        if ty.is_managed() && data_type != "text" {
            return Err(ServiceError::invalid(
                "SecretDataType",
                "must be text for managed secret types",
            ));
        }
        let ext = validate::check_extended_config(ty, p.opt("ExtendedConfig"))?;
        let name = if ty == SecretType::RamCredentials {
            if raw_name != "$Auto" {
                return Err(ServiceError::invalid(
                    "SecretName",
                    "a RAMCredentials secret's name must be $Auto; KMS names it acs/ram/user/<UserName>",
                ));
            }
            let user = ext
                .as_ref()
                .and_then(|o| o.get("UserName"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            format!("acs/ram/user/{user}")
        } else {
            raw_name.to_owned()
        };
        validate::check_name(&name)?;
        validate::check_name_for_type(&name, ty)?;
        let description = p.opt("Description").unwrap_or_default().to_owned();
        if description.chars().count() > 1024 {
            return Err(ServiceError::invalid(
                "Description",
                "is longer than 1024 characters",
            ));
        }
        let mut tags = BTreeMap::new();
        if let Some(raw) = p.opt("Tags") {
            for (k, v) in validate::parse_tags_json(raw)? {
                tags.insert(k, v);
            }
        }
        if tags.len() > validate::MAX_TAGS {
            return Err(ServiceError::invalid(
                "Tags",
                format!("at most {} tags", validate::MAX_TAGS),
            ));
        }
        let enable = p.bool("EnableAutomaticRotation")?.unwrap_or(false);
        let interval = if enable {
            if !ty.is_managed() {
                return Err(ServiceError::invalid(
                    "EnableAutomaticRotation",
                    "Generic secrets cannot rotate automatically",
                ));
            }
            Some(validate::parse_interval(p.req("RotationInterval")?)?)
        } else {
            None
        };
        let instance = self.kms_instance(p)?;
        let key_id = match p.opt("EncryptionKeyId") {
            None => None,
            Some(k) => Some(self.encryption_key(k, instance.as_deref())?),
        };
        let policy_text = p.opt("Policy").map(str::to_owned);
        let policy = policy_text
            .as_deref()
            .map(crate::auth::parse_policy)
            .transpose()?;

        let now = self.now_secs();
        let now_wire = wire(now);
        let stored = validate::normalize_data(ty, ext.as_ref(), data, &now_wire, || {
            super::misc::generate_password(&rota_kms::password::PasswordPolicy::default())
                .expect("the default password spec is satisfiable")
        })?;

        let _guard = self.lock(&name).await;
        if let Some(existing) = self.secret(&name) {
            return Err(if existing.pending_delete() {
                ServiceError::InDeleteWindow { name }
            } else {
                ServiceError::SecretExists { name }
            });
        }
        let mut ops = self.purge_ops_if_expired(&name);
        if ops.is_empty() && self.secret_count() >= self.world.max_secrets {
            return Err(ServiceError::LimitExceeded {
                what: format!(
                    "this local world holds at most {} secrets",
                    self.world.max_secrets
                ),
            });
        }
        let doc = SecretDoc {
            name: name.clone(),
            secret_type: ty.as_str().to_owned(),
            description,
            key_id,
            dkms_instance_id: instance,
            created: now,
            updated: now,
            extended_config: p
                .opt("ExtendedConfig")
                .filter(|_| ext.is_some())
                .map(str::to_owned),
            rotation_interval: interval,
            next_rotation: interval.map(|i| now + i as i64),
            last_rotation: ty.is_managed().then_some(now),
            planned_delete: None,
            policy: policy_text,
            tags,
            creator: caller.principal.clone(),
            versions: vec![VersionDoc {
                id: version_id.to_owned(),
                created: now,
                data_type: data_type.to_owned(),
                stages: vec![CURRENT.to_owned()],
            }],
        };
        let sealing = self.sealing_for(&doc)?;
        let sealed = sealing.seal_secret(&name, version_id, &SecretString::new(stored));
        ops.push(Op::PutVersion {
            name: name.clone(),
            version_id: version_id.to_owned(),
            sealed: sealed.clone(),
        });
        let mut secret = Secret {
            doc,
            sealed: Default::default(),
            policy,
        };
        secret.sealed.insert(version_id.to_owned(), sealed.into());
        let rot = self.rotation_fields(&secret);
        let resp = CreateSecretResponse {
            request_id: String::new(),
            arn: self.world.secret_arn(&name),
            secret_name: name.clone(),
            version_id: version_id.to_owned(),
            secret_type: ty.as_str().to_owned(),
            dkms_instance_id: secret.doc.dkms_instance_id.clone(),
            automatic_rotation: rot.automatic_rotation.map(str::to_owned),
            extended_config: if ty.is_managed() {
                secret.doc.extended_config.clone()
            } else {
                None
            },
            rotation_interval: rot.rotation_interval,
            next_rotation_date: rot.next_rotation_date,
        };
        self.commit(&name, ops, Some(secret)).await?;
        tracing::info!(secret.name = %name, secret.r#type = ty.as_str(), "secret created");
        Ok(to_json(&resp))
    }

    /// Resolves and checks an `EncryptionKeyId` (id or key ARN).
    fn encryption_key(&self, raw: &str, instance: Option<&str>) -> Result<String, ServiceError> {
        let id = raw
            .strip_prefix(&format!(
                "acs:kms:{}:{}:key/",
                self.world.region, self.world.account_id
            ))
            .unwrap_or(raw);
        let key = self
            .key(id)
            .filter(|k| !k.doc.internal && !self.key_deleted(k))
            .ok_or_else(|| ServiceError::KeyNotFound {
                key_id: raw.to_owned(),
            })?;
        if key.doc.spec != crate::world::SYMMETRIC_SPEC {
            return Err(ServiceError::invalid(
                "EncryptionKeyId",
                format!(
                    "the key {id} has spec {}; secrets need a symmetric {} key",
                    key.doc.spec,
                    crate::world::SYMMETRIC_SPEC
                ),
            ));
        }
        if key.doc.state != "Enabled" {
            return Err(self.unusable(&key));
        }
        if let Some(i) = instance
            && key.doc.dkms_instance_id.as_deref() != Some(i)
        {
            return Err(ServiceError::invalid(
                "EncryptionKeyId",
                format!("the key {id} is not in the KMS instance {i}"),
            ));
        }
        Ok(id.to_owned())
    }

    // ---------------------------------------------------------- GetSecretValue

    pub(crate) fn read_value(
        &self,
        caller: &Caller,
        r: &ReadRequest<'_>,
    ) -> Result<SecretValue, ServiceError> {
        self.read_value_with(caller, r, |v| SecretValue {
            request_id: String::new(),
            secret_name: v.name.to_owned(),
            secret_type: v.secret.doc.secret_type.clone(),
            secret_data: SecretString::new(v.data.expose_secret()),
            secret_data_type: v.version.data_type.clone(),
            version_id: v.version.id.clone(),
            version_stages: stages_of(v.version),
            create_time: wire(v.version.created),
            automatic_rotation: v.rotation.automatic_rotation.map(str::to_owned),
            rotation_interval: v.rotation.rotation_interval.clone(),
            next_rotation_date: v.rotation.next_rotation_date.clone(),
            last_rotation_date: v.rotation.last_rotation_date.clone(),
            extended_config: v.extended_config.map(str::to_owned),
        })
    }

    /// GetSecretValue's answer as JSON with `RequestId`, written from the
    /// stored secret without copying it into an answer first (the
    /// server's path); the same text as [`SecretValue`]'s.
    pub(crate) fn read_value_json(
        &self,
        caller: &Caller,
        r: &ReadRequest<'_>,
        request_id: &str,
    ) -> Result<Vec<u8>, ServiceError> {
        self.read_value_with(caller, r, |v| {
            // [`SecretValue`]'s fields in its order, each name written as
            // one literal and each value escaped by serde_json.
            let mut out = Vec::with_capacity(512);
            out.push(b'{');
            if !request_id.is_empty() {
                out.extend_from_slice(br#""RequestId":"#);
                json_str(&mut out, request_id)?;
                out.push(b',');
            }
            out.extend_from_slice(br#""SecretName":"#);
            json_str(&mut out, v.name)?;
            out.extend_from_slice(br#","SecretType":"#);
            json_str(&mut out, &v.secret.doc.secret_type)?;
            out.extend_from_slice(br#","SecretData":"#);
            json_str(&mut out, v.data.expose_secret())?;
            out.extend_from_slice(br#","SecretDataType":"#);
            json_str(&mut out, &v.version.data_type)?;
            out.extend_from_slice(br#","VersionId":"#);
            json_str(&mut out, &v.version.id)?;
            out.extend_from_slice(br#","VersionStages":{"VersionStage":["#);
            for (i, stage) in v.version.stages.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_str(&mut out, stage)?;
            }
            out.extend_from_slice(br#"]},"CreateTime":"#);
            match crate::clock::wire_time_bytes(super::to_time(v.version.created)) {
                // Digits and separators: nothing to escape.
                Some(t) => {
                    out.push(b'"');
                    out.extend_from_slice(&t);
                    out.push(b'"');
                }
                None => json_str(&mut out, &wire(v.version.created))?,
            }
            let optional: [(&[u8], Option<&str>); 5] = [
                (br#","AutomaticRotation":"#, v.rotation.automatic_rotation),
                (
                    br#","RotationInterval":"#,
                    v.rotation.rotation_interval.as_deref(),
                ),
                (
                    br#","NextRotationDate":"#,
                    v.rotation.next_rotation_date.as_deref(),
                ),
                (
                    br#","LastRotationDate":"#,
                    v.rotation.last_rotation_date.as_deref(),
                ),
                (br#","ExtendedConfig":"#, v.extended_config),
            ];
            for (name, value) in optional {
                if let Some(value) = value {
                    out.extend_from_slice(name);
                    json_str(&mut out, value)?;
                }
            }
            out.push(b'}');
            Ok(out)
        })?
    }

    /// Finds, authorizes and opens the version a GetSecretValue asks for,
    /// and hands it to `answer`.
    fn read_value_with<T>(
        &self,
        caller: &Caller,
        r: &ReadRequest<'_>,
        answer: impl FnOnce(ValueRead<'_>) -> T,
    ) -> Result<T, ServiceError> {
        let name = self.resolve_name_ref(r.name)?;
        let s = self.require(&name)?;
        self.authorize(caller, &s, "GetSecretValue")?;
        if s.pending_delete() {
            return Err(ServiceError::InDeleteWindow {
                name: name.into_owned(),
            });
        }
        let ty = s.ty();
        let version = if ty.is_managed() {
            let stage = r.stage.unwrap_or(CURRENT);
            if stage != CURRENT && stage != PREVIOUS {
                return Err(ServiceError::invalid(
                    "VersionStage",
                    "managed secrets serve only ACSCurrent and ACSPrevious",
                ));
            }
            s.stage_holder(stage)
                .ok_or_else(|| ServiceError::VersionNotFound {
                    name: name.to_string(),
                    what: format!("version in stage {stage:?}"),
                })?
        } else {
            match (r.version_id, r.stage) {
                (Some(id), stage) => {
                    let v = s.version(id).ok_or_else(|| ServiceError::VersionNotFound {
                        name: name.to_string(),
                        what: format!("version {id:?}"),
                    })?;
                    if let Some(stage) = stage
                        && !v.stages.iter().any(|x| x == stage)
                    {
                        return Err(ServiceError::invalid(
                            "VersionStage",
                            format!("the version {id:?} is not in the stage {stage:?}"),
                        ));
                    }
                    v
                }
                (None, stage) => {
                    let stage = stage.unwrap_or(CURRENT);
                    s.stage_holder(stage)
                        .ok_or_else(|| ServiceError::VersionNotFound {
                            name: name.to_string(),
                            what: format!("version in stage {stage:?}"),
                        })?
                }
            }
        };
        let data = self.open_version(&s, &version.id)?;
        let rotation = self.rotation_fields(&s);
        Ok(answer(ValueRead {
            name: &name,
            secret: &s,
            version,
            data: &data,
            rotation,
            extended_config: if ty.is_managed() && r.fetch_extended_config {
                s.doc.extended_config.as_deref()
            } else {
                None
            },
        }))
    }

    pub(crate) fn get_secret_value(
        &self,
        caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        Ok(to_json(&self.get_secret_value_typed(caller, p)?))
    }

    /// GetSecretValue's answer as JSON text with `RequestId` (the
    /// server's path: no `Value`, no copy of the stored secret).
    pub(crate) fn get_secret_value_json(
        &self,
        caller: &Caller,
        p: &Params,
        request_id: &str,
    ) -> Result<Vec<u8>, ServiceError> {
        let req = read_request(p)?;
        if p.bool("DryRun")?.unwrap_or(false) {
            return Err(self.dry_run_read(caller, &req));
        }
        self.read_value_json(caller, &req, request_id)
    }

    /// What a DryRun read answers: whether the read would succeed.
    fn dry_run_read(&self, caller: &Caller, req: &ReadRequest<'_>) -> ServiceError {
        match self.read_value(caller, req) {
            Ok(_) => ServiceError::DryRunOk,
            Err(ServiceError::NoPermission { .. }) => ServiceError::DryRunDenied,
            Err(e) => ServiceError::DryRunInvalid {
                reason: e.wire().message,
            },
        }
    }

    /// GetSecretValue's answer, typed.
    pub(crate) fn get_secret_value_typed(
        &self,
        caller: &Caller,
        p: &Params,
    ) -> Result<SecretValue, ServiceError> {
        let req = read_request(p)?;
        if p.bool("DryRun")?.unwrap_or(false) {
            return Err(self.dry_run_read(caller, &req));
        }
        self.read_value(caller, &req)
    }

    pub(crate) fn batch_get_secret_value(
        &self,
        caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let list = p
            .json("SecretsList")?
            .ok_or_else(|| ServiceError::missing("SecretsList"))?;
        let items = list
            .as_array()
            .filter(|a| !a.is_empty() && a.len() <= 20)
            .ok_or_else(|| {
                ServiceError::invalid("SecretsList", "must be a JSON list of 1 to 20 objects")
            })?;
        let mut values = Vec::new();
        let mut errors = Vec::new();
        for item in items {
            let field = |f: &str| {
                item.get(f)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            };
            let name = field("SecretName").ok_or_else(|| {
                ServiceError::invalid("SecretsList", "every entry needs a SecretName")
            })?;
            let fetch = match item.get("FetchExtendedConfig") {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => crate::params::parse_bool(s).unwrap_or(false),
                _ => false,
            };
            let req = ReadRequest {
                name,
                version_id: field("VersionId"),
                stage: field("VersionStage"),
                fetch_extended_config: fetch,
            };
            match self.read_value(caller, &req) {
                Ok(v) => values.push(v),
                Err(e) => {
                    let w = e.wire();
                    errors.push(rota_kms::kms::BatchError {
                        secret_name: name.to_owned(),
                        code: w.code.to_owned(),
                        http_status: Some(u64::from(w.status)),
                        message: w.message,
                    });
                }
            }
        }
        Ok(to_json(&rota_kms::kms::BatchGetSecretValueResponse {
            request_id: String::new(),
            secret_values: values,
            errors,
        }))
    }

    // ---------------------------------------------------------- PutSecretValue

    pub(crate) async fn put_secret_value(
        &self,
        caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let name = self.resolve_name(p.req("SecretName")?)?;
        let _guard = self.lock(&name).await;
        let s = self.live_for_mutation(&name)?;
        self.authorize(caller, &s, "PutSecretValue")?;
        // Parsed once the caller may act on the secret.
        let version_id = p.req("VersionId")?;
        validate::check_version_id("VersionId", version_id)?;
        let data = p.req("SecretData")?;
        validate::check_data(data)?;
        let data_type = validate::parse_data_type(p.opt("SecretDataType"))?;
        let stages = p.string_list("VersionStages", "VersionStage")?;
        if let Some(st) = &stages {
            if st.is_empty() {
                return Err(ServiceError::invalid(
                    "VersionStages",
                    "must name at least one stage",
                ));
            }
            for s in st {
                validate::check_stage("VersionStages", s)?;
            }
        }
        if s.ty().is_managed() {
            return Err(ServiceError::invalid(
                "SecretName",
                "PutSecretValue applies to Generic secrets only",
            ));
        }
        let mut next = (*s).clone();
        let mut ops = Vec::new();
        if let Some(existing) = s.version(version_id) {
            let stored = self.open_version(&s, version_id)?;
            let same = stored == SecretString::new(data) && existing.data_type == data_type;
            if !same {
                return Err(ServiceError::VersionExists {
                    name,
                    version_id: version_id.to_owned(),
                });
            }
            if let Some(st) = &stages {
                let shift = !st.iter().any(|x| x == PREVIOUS);
                for stage in st {
                    move_stage(&mut next.doc, stage, version_id, shift);
                }
            }
        } else {
            let st = stages.clone().unwrap_or_else(|| vec![CURRENT.to_owned()]);
            next.doc.versions.push(VersionDoc {
                id: version_id.to_owned(),
                created: self.now_secs(),
                data_type: data_type.to_owned(),
                stages: Vec::new(),
            });
            let shift = !st.iter().any(|x| x == PREVIOUS);
            for stage in &st {
                move_stage(&mut next.doc, stage, version_id, shift);
            }
            let sealed = self.sealing_for(&next.doc)?.seal_secret(
                &name,
                version_id,
                &SecretString::new(data),
            );
            ops.push(Op::PutVersion {
                name: name.clone(),
                version_id: version_id.to_owned(),
                sealed: sealed.clone(),
            });
            next.sealed.insert(version_id.to_owned(), sealed.into());
            for gone in evict(&mut next.doc) {
                next.sealed.remove(&gone);
                ops.push(Op::DeleteVersion {
                    name: name.clone(),
                    version_id: gone,
                });
            }
        }
        check_stage_limit(&next.doc)?;
        let resp = PutSecretValueResponse {
            request_id: String::new(),
            secret_name: name.clone(),
            version_id: version_id.to_owned(),
            version_stages: next.version(version_id).map(stages_of).unwrap_or_default(),
        };
        if next.doc != s.doc {
            next.doc.updated = self.now_secs();
            self.commit(&name, ops, Some(next)).await?;
            tracing::debug!(secret.name = %name, version.id = %version_id, "secret value put");
        }
        Ok(to_json(&resp))
    }

    // ------------------------------------------------- UpdateSecretVersionStage

    pub(crate) async fn update_secret_version_stage(
        &self,
        caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let name = self.resolve_name(p.req("SecretName")?)?;
        let _guard = self.lock(&name).await;
        let s = self.live_for_mutation(&name)?;
        self.authorize(caller, &s, "UpdateSecretVersionStage")?;
        // Parsed once the caller may act on the secret.
        let stage = p.req("VersionStage")?;
        validate::check_stage("VersionStage", stage)?;
        let move_to = p.opt("MoveToVersion");
        let remove_from = p.opt("RemoveFromVersion");
        if move_to.is_none() && remove_from.is_none() {
            return Err(ServiceError::missing("MoveToVersion"));
        }
        if (stage == CURRENT || stage == PREVIOUS) && move_to.is_none() {
            return Err(ServiceError::invalid(
                "MoveToVersion",
                format!("{stage} can only be moved to another version, not removed"),
            ));
        }
        if s.ty().is_managed() {
            return Err(ServiceError::invalid(
                "SecretName",
                "UpdateSecretVersionStage applies to Generic secrets only",
            ));
        }
        let not_found = |id: &str| ServiceError::VersionNotFound {
            name: name.clone(),
            what: format!("version {id:?}"),
        };
        if let Some(from) = remove_from {
            let v = s.version(from).ok_or_else(|| not_found(from))?;
            if !v.stages.iter().any(|x| x == stage) {
                return Err(ServiceError::invalid(
                    "RemoveFromVersion",
                    format!("the version {from:?} is not in the stage {stage:?}"),
                ));
            }
        }
        let mut next = (*s).clone();
        match move_to {
            Some(to) => {
                s.version(to).ok_or_else(|| not_found(to))?;
                move_stage(&mut next.doc, stage, to, true);
            }
            None => {
                let from = remove_from.expect("checked above");
                for v in &mut next.doc.versions {
                    if v.id == from {
                        v.stages.retain(|x| x != stage);
                    }
                }
            }
        }
        check_stage_limit(&next.doc)?;
        if next.doc != s.doc {
            next.doc.updated = self.now_secs();
            self.commit(&name, Vec::new(), Some(next)).await?;
        }
        Ok(to_json(&SimpleResponse {
            request_id: String::new(),
            secret_name: Some(name),
        }))
    }

    // ---------------------------------------------------------- DescribeSecret

    pub(crate) fn describe_secret(
        &self,
        caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let name = self.resolve_name(p.req("SecretName")?)?;
        let s = self.require(&name)?;
        self.authorize(caller, &s, "DescribeSecret")?;
        // Parsed once the caller may act on the secret.
        let fetch_tags = p.bool("FetchTags")?.unwrap_or(false);
        let rot = self.rotation_fields(&s);
        let d = &s.doc;
        Ok(to_json(&SecretMetadata {
            request_id: String::new(),
            arn: self.world.secret_arn(&name),
            secret_name: name.clone(),
            secret_type: d.secret_type.clone(),
            description: d.description.clone(),
            encryption_key_id: d.key_id.clone().unwrap_or_default(),
            create_time: wire(d.created),
            update_time: wire(d.updated),
            planned_delete_time: d.planned_delete.map(wire),
            dkms_instance_id: d.dkms_instance_id.clone(),
            owing_service: None,
            tags: fetch_tags.then(|| tags_of(d)),
            automatic_rotation: rot.automatic_rotation.map(str::to_owned),
            extended_config: if s.ty().is_managed() {
                d.extended_config.clone()
            } else {
                None
            },
            rotation_interval: rot.rotation_interval,
            next_rotation_date: rot.next_rotation_date,
            last_rotation_date: rot.last_rotation_date,
        }))
    }

    // ------------------------------------------------------------- ListSecrets

    pub(crate) fn list_secrets(&self, p: &Params) -> Result<Value, ServiceError> {
        let page = p.int_in("PageNumber", 1, i64::from(u32::MAX), 1)?;
        let size = p.int_in("PageSize", 1, 100, 10)?;
        let fetch_tags = p.bool("FetchTags")?.unwrap_or(false);
        let filters = parse_filters(p)?;
        let matching: Vec<Arc<Secret>> = self
            .all_secrets()
            .into_iter()
            .filter(|s| filters.iter().all(|(k, vals)| filter_matches(s, k, vals)))
            .collect();
        let total = matching.len();
        let start = ((page - 1) * size) as usize;
        let secret = matching
            .iter()
            .skip(start)
            .take(size as usize)
            .map(|s| SecretSummary {
                secret_name: s.doc.name.clone(),
                secret_type: s.doc.secret_type.clone(),
                create_time: wire(s.doc.created),
                update_time: wire(s.doc.updated),
                planned_delete_time: s.doc.planned_delete.map(wire),
                owing_service: None,
                tags: fetch_tags.then(|| tags_of(&s.doc)),
            })
            .collect();
        Ok(to_json(&ListSecretsResponse {
            request_id: String::new(),
            page_number: page as u64,
            page_size: size as u64,
            total_count: total as u64,
            secret_list: SecretList { secret },
        }))
    }

    // ---------------------------------------------------- ListSecretVersionIds

    pub(crate) fn list_secret_version_ids(
        &self,
        caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let name = self.resolve_name(p.req("SecretName")?)?;
        let s = self.require(&name)?;
        self.authorize(caller, &s, "ListSecretVersionIds")?;
        // Parsed once the caller may act on the secret.
        let include = p.bool("IncludeDeprecated")?.unwrap_or(false);
        let page = p.int_in("PageNumber", 1, i64::from(u32::MAX), 1)?;
        let size = p.int_in("PageSize", 1, 100, 20)?;
        let listed: Vec<&VersionDoc> = s
            .doc
            .versions
            .iter()
            .filter(|v| include || !v.stages.is_empty())
            .collect();
        let version_id = listed
            .iter()
            .skip(((page - 1) * size) as usize)
            .take(size as usize)
            .map(|v| VersionInfo {
                version_id: v.id.clone(),
                create_time: wire(v.created),
                version_stages: stages_of(v),
            })
            .collect();
        Ok(to_json(&ListSecretVersionIdsResponse {
            request_id: String::new(),
            secret_name: name,
            total_count: listed.len() as u64,
            page_number: page as u64,
            page_size: size as u64,
            version_ids: VersionIds { version_id },
        }))
    }

    // ------------------------------------------------------------ UpdateSecret

    pub(crate) async fn update_secret(
        &self,
        caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let name = self.resolve_name(p.req("SecretName")?)?;
        let _guard = self.lock(&name).await;
        let s = self.live_for_mutation(&name)?;
        self.authorize(caller, &s, "UpdateSecret")?;
        // Parsed once the caller may act on the secret.
        let description = p.raw("Description");
        if description.is_some_and(|d| d.chars().count() > 1024) {
            return Err(ServiceError::invalid(
                "Description",
                "is longer than 1024 characters",
            ));
        }
        const CD: &str = "ExtendedConfig.CustomData";
        let custom = p.json(CD)?;
        if let Some(c) = &custom {
            validate::check_custom_data(CD, c)?;
        }
        let mut next = (*s).clone();
        if let Some(d) = description {
            next.doc.description = d.to_owned();
        }
        if let Some(c) = custom {
            if !s.ty().is_managed() {
                return Err(ServiceError::invalid(
                    CD,
                    "Generic secrets have no extended configuration",
                ));
            }
            let mut ext: serde_json::Map<String, Value> = next
                .doc
                .extended_config
                .as_deref()
                .and_then(|e| serde_json::from_str(e).ok())
                .unwrap_or_default();
            ext.insert("CustomData".into(), c);
            let text = Value::Object(ext).to_string();
            if text.chars().count() > validate::MAX_EXTENDED_CONFIG {
                return Err(ServiceError::invalid(
                    CD,
                    "the extended configuration would exceed 1024 characters",
                ));
            }
            next.doc.extended_config = Some(text);
        }
        if next.doc != s.doc {
            next.doc.updated = self.now_secs();
            self.commit(&name, Vec::new(), Some(next)).await?;
        }
        Ok(to_json(&SimpleResponse {
            request_id: String::new(),
            secret_name: Some(name),
        }))
    }

    // ---------------------------------------------- UpdateSecretRotationPolicy

    pub(crate) async fn update_secret_rotation_policy(
        &self,
        caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let name = self.resolve_name(p.req("SecretName")?)?;
        let _guard = self.lock(&name).await;
        let s = self.live_for_mutation(&name)?;
        // A caller the policy denies learns nothing from the other
        // parameters: they are read after the check.
        self.authorize(caller, &s, "UpdateSecretRotationPolicy")?;
        let enable = p
            .bool("EnableAutomaticRotation")?
            .ok_or_else(|| ServiceError::missing("EnableAutomaticRotation"))?;
        let interval = if enable {
            Some(validate::parse_interval(p.req("RotationInterval")?)?)
        } else {
            None
        };
        if !s.ty().is_managed() {
            return Err(ServiceError::invalid(
                "SecretName",
                "Generic secrets cannot rotate automatically",
            ));
        }
        let mut next = (*s).clone();
        let now = self.now_secs();
        next.doc.rotation_interval = interval;
        next.doc.next_rotation = interval.map(|i| {
            let base = next.doc.last_rotation.unwrap_or(now);
            (base + i as i64).max(now)
        });
        if next.doc != s.doc {
            next.doc.updated = now;
            self.commit(&name, Vec::new(), Some(next)).await?;
        }
        Ok(to_json(&SimpleResponse {
            request_id: String::new(),
            secret_name: Some(name),
        }))
    }

    // ------------------------------------------------------------ DeleteSecret

    pub(crate) async fn delete_secret(
        &self,
        caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let name = self.resolve_name(p.req("SecretName")?)?;
        let _guard = self.lock(&name).await;
        let s = self.require(&name)?;
        self.authorize(caller, &s, "DeleteSecret")?;
        // Parsed once the caller may act on the secret.
        let force = p.bool("ForceDeleteWithoutRecovery")?.unwrap_or(false);
        let days = if force {
            0
        } else {
            p.int_in("RecoveryWindowInDays", 7, 30, 30)?
        };
        if force {
            self.commit(&name, vec![Op::DeleteSecret { name: name.clone() }], None)
                .await?;
            tracing::info!(secret.name = %name, "secret deleted without recovery");
            return Ok(to_json(&DeleteSecretResponse {
                request_id: String::new(),
                secret_name: name,
                planned_delete_time: None,
            }));
        }
        if s.pending_delete() {
            return Err(ServiceError::InDeleteWindow { name });
        }
        let mut next = (*s).clone();
        let now = self.now_secs();
        let planned = now + days * 86_400;
        next.doc.planned_delete = Some(planned);
        next.doc.updated = now;
        self.commit(&name, Vec::new(), Some(next)).await?;
        tracing::info!(secret.name = %name, days, "secret scheduled for deletion");
        Ok(to_json(&DeleteSecretResponse {
            request_id: String::new(),
            secret_name: name,
            planned_delete_time: Some(wire(planned)),
        }))
    }

    // ----------------------------------------------------------- RestoreSecret

    pub(crate) async fn restore_secret(
        &self,
        caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let name = self.resolve_name(p.req("SecretName")?)?;
        let _guard = self.lock(&name).await;
        let s = self.require(&name)?;
        self.authorize(caller, &s, "RestoreSecret")?;
        if s.pending_delete() {
            let mut next = (*s).clone();
            next.doc.planned_delete = None;
            next.doc.updated = self.now_secs();
            self.commit(&name, Vec::new(), Some(next)).await?;
            tracing::info!(secret.name = %name, "secret restored");
        }
        Ok(to_json(&SimpleResponse {
            request_id: String::new(),
            secret_name: Some(name),
        }))
    }

    // ----------------------------------------------------------- Secret policy

    pub(crate) async fn set_secret_policy(
        &self,
        caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let name = self.resolve_name(p.req("SecretName")?)?;
        let _guard = self.lock(&name).await;
        let s = self.live_for_mutation(&name)?;
        self.authorize(caller, &s, "SetSecretPolicy")?;
        // Parsed once the caller may act on the secret.
        check_policy_name(p)?;
        let text = p.req("Policy")?;
        let policy = crate::auth::parse_policy(text)?;
        let mut next = (*s).clone();
        next.doc.policy = Some(text.to_owned());
        next.policy = Some(policy);
        next.doc.updated = self.now_secs();
        self.commit(&name, Vec::new(), Some(next)).await?;
        Ok(to_json(&SimpleResponse::default()))
    }

    pub(crate) fn get_secret_policy(
        &self,
        caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let name = self.resolve_name(p.req("SecretName")?)?;
        check_policy_name(p)?;
        let s = self.require(&name)?;
        self.authorize(caller, &s, "GetSecretPolicy")?;
        let policy = s
            .doc
            .policy
            .clone()
            .ok_or(ServiceError::PolicyNotFound { name })?;
        Ok(to_json(&GetSecretPolicyResponse {
            request_id: String::new(),
            policy,
        }))
    }
}

#[derive(Default)]
struct RotationFields {
    automatic_rotation: Option<&'static str>,
    rotation_interval: Option<String>,
    next_rotation_date: Option<String>,
    last_rotation_date: Option<String>,
}

/// One version read by GetSecretValue, borrowed.
struct ValueRead<'a> {
    name: &'a str,
    secret: &'a Secret,
    version: &'a VersionDoc,
    data: &'a SecretString,
    rotation: RotationFields,
    extended_config: Option<&'a str>,
}

/// Appends `s` as a JSON string (serde_json's escaping).
fn json_str(out: &mut Vec<u8>, s: &str) -> Result<(), ServiceError> {
    serde_json::to_writer(out, s).map_err(|_| ServiceError::internal("an answer did not serialize"))
}

const FILTER_KEYS: &[&str] = &[
    "SecretName",
    "Description",
    "TagKey",
    "TagValue",
    "DKMSInstanceId",
    "SecretType",
    "Creator",
];

fn parse_filters(p: &Params) -> Result<Vec<(String, Vec<String>)>, ServiceError> {
    let Some(v) = p.json("Filters")? else {
        return Ok(Vec::new());
    };
    let bad = || {
        ServiceError::invalid(
            "Filters",
            "must be a JSON list of at most 10 {\"Key\",\"Values\":[…]} objects",
        )
    };
    let arr = v.as_array().filter(|a| a.len() <= 10).ok_or_else(bad)?;
    let mut out = Vec::with_capacity(arr.len());
    for f in arr {
        let key = f.get("Key").and_then(Value::as_str).ok_or_else(bad)?;
        if !FILTER_KEYS.contains(&key) {
            return Err(ServiceError::invalid(
                "Filters",
                format!(
                    "unknown filter key {key:?} (known: {})",
                    FILTER_KEYS.join(", ")
                ),
            ));
        }
        let values = match f.get("Values") {
            Some(Value::Array(vals)) if !vals.is_empty() => vals
                .iter()
                .map(|x| x.as_str().map(str::to_owned).ok_or_else(bad))
                .collect::<Result<Vec<_>, _>>()?,
            Some(Value::String(s)) => vec![s.clone()],
            _ => return Err(bad()),
        };
        out.push((key.to_owned(), values));
    }
    Ok(out)
}

fn filter_matches(s: &Secret, key: &str, values: &[String]) -> bool {
    let d = &s.doc;
    values.iter().any(|v| match key {
        "SecretName" => d.name.contains(v.as_str()),
        "Description" => d.description.contains(v.as_str()),
        "TagKey" => d.tags.contains_key(v),
        "TagValue" => d.tags.values().any(|x| x == v),
        "DKMSInstanceId" => d.dkms_instance_id.as_deref() == Some(v.as_str()),
        "SecretType" => d.secret_type.eq_ignore_ascii_case(v),
        "Creator" => d.creator == *v || d.creator.ends_with(&format!("/{v}")),
        _ => false,
    })
}

//! Wire types for every KMS secret action of kms-api.md §3: requests with the
//! exact parameter names and placements, responses with the exact shapes
//! (including the `{"X":{"Y":[…]}}` list wrappers).
//!
//! Responses derive `Serialize` as well so the local cloud answers with the
//! very same shapes; fields holding secret material serialize only through
//! the explicit [`crate::secret::serialize_exposed`].

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Error;
use crate::secret::{SecretString, serialize_exposed};
use crate::transport::ApiRequest;

/// Largest secret value KMS stores, in bytes.
pub const MAX_SECRET_DATA_BYTES: usize = 30_720;

/// Deserializes a number that may arrive as a JSON number or a string.
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Num(u64),
        Str(String),
    }
    match N::deserialize(d)? {
        N::Num(n) => Ok(n),
        N::Str(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

fn lenient_u64_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    lenient_u64(d).map(Some)
}

/// `{"VersionStage":[…]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionStages {
    /// Stage names.
    #[serde(rename = "VersionStage", default)]
    pub version_stage: Vec<String>,
}

impl VersionStages {
    /// Whether the list holds `stage`.
    pub fn contains(&self, stage: &str) -> bool {
        self.version_stage.iter().any(|s| s == stage)
    }
}

/// A tag as KMS spells it in JSON parameters and responses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tag {
    /// Key.
    #[serde(rename = "TagKey")]
    pub tag_key: String,
    /// Value.
    #[serde(rename = "TagValue")]
    pub tag_value: String,
}

impl Tag {
    /// A tag.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            tag_key: key.into(),
            tag_value: value.into(),
        }
    }
}

/// `{"Tag":[…]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tags {
    /// The tags.
    #[serde(rename = "Tag", default)]
    pub tag: Vec<Tag>,
}

fn push_opt(req: &mut ApiRequest, name: &str, value: Option<&str>) {
    if let Some(v) = value {
        req.query(name, v);
    }
}

fn push_bool(req: &mut ApiRequest, name: &str, value: Option<bool>) {
    if let Some(v) = value {
        req.query(name, if v { "true" } else { "false" });
    }
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("wire types serialize to JSON")
}

fn check_secret_data(data: &SecretString) -> Result<(), Error> {
    if data.len() > MAX_SECRET_DATA_BYTES {
        return Err(Error::invalid(
            "SecretData",
            format!(
                "the value is {} bytes; KMS stores at most {MAX_SECRET_DATA_BYTES} bytes",
                data.len()
            ),
        ));
    }
    Ok(())
}

fn check_required(field: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() {
        return Err(Error::invalid(field, "is required and may not be empty"));
    }
    Ok(())
}

/// A typed KMS action: how it goes on the wire and what comes back.
pub trait KmsAction {
    /// The `Action` name.
    const ACTION: &'static str;
    /// Whether sending it twice is harmless.
    const IDEMPOTENT: bool;
    /// The response shape.
    type Response: for<'de> Deserialize<'de>;
    /// Builds the request, validating what can be checked locally.
    fn to_request(&self) -> Result<ApiRequest, Error>;
}

macro_rules! action {
    ($ty:ty, $name:literal, idempotent = $idem:literal, $resp:ty, |$s:ident, $r:ident| $body:block) => {
        impl KmsAction for $ty {
            const ACTION: &'static str = $name;
            const IDEMPOTENT: bool = $idem;
            type Response = $resp;
            fn to_request(&self) -> Result<ApiRequest, Error> {
                let $s = self;
                #[allow(unused_mut)]
                let mut $r = ApiRequest::kms($name).idempotent($idem);
                $body
                Ok($r)
            }
        }
    };
}

/// A response that carries only `RequestId` (and perhaps `SecretName`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimpleResponse {
    /// Request id.
    #[serde(rename = "RequestId", default)]
    pub request_id: String,
    /// The secret concerned, where the action returns it.
    #[serde(
        rename = "SecretName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub secret_name: Option<String>,
}

// ---------------------------------------------------------------- CreateSecret

/// CreateSecret (§3.1).
#[derive(Debug, Clone, Default)]
pub struct CreateSecret {
    /// Name (or `$Auto` for RAMCredentials).
    pub secret_name: String,
    /// Initial value (form body).
    pub secret_data: SecretString,
    /// First version id.
    pub version_id: String,
    /// `text` or `binary`.
    pub secret_data_type: Option<String>,
    /// `Generic`, `Rds`, `Redis`, `RAMCredentials`, `ECS`, `PolarDB`.
    pub secret_type: Option<String>,
    /// Key protecting the value.
    pub encryption_key_id: Option<String>,
    /// KMS instance (`kst-…`).
    pub dkms_instance_id: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Tags (sent as a JSON array; omitted when empty).
    pub tags: Vec<Tag>,
    /// Extended configuration, a JSON object string.
    pub extended_config: Option<String>,
    /// Turn on managed rotation.
    pub enable_automatic_rotation: Option<bool>,
    /// Rotation period, `<int><d|h|m|s>`.
    pub rotation_interval: Option<String>,
    /// Secret policy JSON.
    pub policy: Option<String>,
}

/// CreateSecret's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateSecretResponse {
    /// Request id.
    #[serde(default)]
    pub request_id: String,
    /// ARN.
    #[serde(default)]
    pub arn: String,
    /// The name KMS stored (generated for `$Auto`).
    pub secret_name: String,
    /// First version id.
    #[serde(default)]
    pub version_id: String,
    /// Secret type.
    #[serde(default)]
    pub secret_type: String,
    /// KMS instance.
    #[serde(
        rename = "DKMSInstanceId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dkms_instance_id: Option<String>,
    /// `Enabled`, `Disabled` or `Invalid` (managed types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic_rotation: Option<String>,
    /// Extended configuration (managed types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_config: Option<String>,
    /// Rotation period in seconds, e.g. `604800s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_interval: Option<String>,
    /// Next rotation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation_date: Option<String>,
}

action!(
    CreateSecret,
    "CreateSecret",
    idempotent = false,
    CreateSecretResponse,
    |s, r| {
        check_required("SecretName", &s.secret_name)?;
        check_required("VersionId", &s.version_id)?;
        check_secret_data(&s.secret_data)?;
        r.query("SecretName", &s.secret_name);
        r.query("VersionId", &s.version_id);
        push_opt(&mut r, "SecretDataType", s.secret_data_type.as_deref());
        push_opt(&mut r, "SecretType", s.secret_type.as_deref());
        push_opt(&mut r, "EncryptionKeyId", s.encryption_key_id.as_deref());
        push_opt(&mut r, "DKMSInstanceId", s.dkms_instance_id.as_deref());
        push_opt(&mut r, "Description", s.description.as_deref());
        if !s.tags.is_empty() {
            r.query("Tags", json(&s.tags));
        }
        push_opt(&mut r, "ExtendedConfig", s.extended_config.as_deref());
        push_bool(
            &mut r,
            "EnableAutomaticRotation",
            s.enable_automatic_rotation,
        );
        push_opt(&mut r, "RotationInterval", s.rotation_interval.as_deref());
        push_opt(&mut r, "Policy", s.policy.as_deref());
        r.body("SecretData", s.secret_data.expose_secret());
    }
);

// -------------------------------------------------------------- GetSecretValue

/// GetSecretValue (§3.2).
#[derive(Debug, Clone, Default)]
pub struct GetSecretValue {
    /// Name or ARN.
    pub secret_name: String,
    /// A version id.
    pub version_id: Option<String>,
    /// A stage (default `ACSCurrent`).
    pub version_stage: Option<String>,
    /// Return `ExtendedConfig` for managed types.
    pub fetch_extended_config: Option<bool>,
    /// Check permissions only.
    pub dry_run: Option<bool>,
}

impl GetSecretValue {
    /// The current value of `name`.
    pub fn current(name: impl Into<String>) -> Self {
        Self {
            secret_name: name.into(),
            ..Self::default()
        }
    }
}

/// GetSecretValue's answer: one version of a secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretValue {
    /// Request id (absent inside BatchGetSecretValue).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    /// Name.
    pub secret_name: String,
    /// Type.
    #[serde(default)]
    pub secret_type: String,
    /// The value.
    #[serde(serialize_with = "serialize_exposed")]
    pub secret_data: SecretString,
    /// `text` or `binary`.
    #[serde(default)]
    pub secret_data_type: String,
    /// The version served.
    #[serde(default)]
    pub version_id: String,
    /// That version's stages.
    #[serde(default)]
    pub version_stages: VersionStages,
    /// The version's creation time.
    #[serde(default)]
    pub create_time: String,
    /// Managed types: rotation state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic_rotation: Option<String>,
    /// Managed types: rotation period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_interval: Option<String>,
    /// Managed types: next rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation_date: Option<String>,
    /// Managed types: last rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rotation_date: Option<String>,
    /// Managed types, with FetchExtendedConfig: extended configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_config: Option<String>,
}

action!(
    GetSecretValue,
    "GetSecretValue",
    idempotent = true,
    SecretValue,
    |s, r| {
        check_required("SecretName", &s.secret_name)?;
        r.query("SecretName", &s.secret_name);
        push_opt(&mut r, "VersionId", s.version_id.as_deref());
        push_opt(&mut r, "VersionStage", s.version_stage.as_deref());
        push_bool(&mut r, "FetchExtendedConfig", s.fetch_extended_config);
        push_bool(&mut r, "DryRun", s.dry_run);
    }
);

// -------------------------------------------------------------- PutSecretValue

/// PutSecretValue (§3.3, Generic secrets only).
#[derive(Debug, Clone, Default)]
pub struct PutSecretValue {
    /// Name.
    pub secret_name: String,
    /// New version id.
    pub version_id: String,
    /// The value (form body).
    pub secret_data: SecretString,
    /// `text` or `binary`.
    pub secret_data_type: Option<String>,
    /// Stages for the new version (a JSON array on the wire); default ACSCurrent.
    pub version_stages: Option<Vec<String>>,
}

/// PutSecretValue's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutSecretValueResponse {
    /// Request id.
    #[serde(default)]
    pub request_id: String,
    /// Name.
    pub secret_name: String,
    /// Version id.
    #[serde(default)]
    pub version_id: String,
    /// The version's stages.
    #[serde(default)]
    pub version_stages: VersionStages,
}

action!(
    PutSecretValue,
    "PutSecretValue",
    idempotent = true,
    PutSecretValueResponse,
    |s, r| {
        check_required("SecretName", &s.secret_name)?;
        check_required("VersionId", &s.version_id)?;
        check_secret_data(&s.secret_data)?;
        r.query("SecretName", &s.secret_name);
        r.query("VersionId", &s.version_id);
        push_opt(&mut r, "SecretDataType", s.secret_data_type.as_deref());
        if let Some(stages) = &s.version_stages {
            r.query("VersionStages", json(stages));
        }
        r.body("SecretData", s.secret_data.expose_secret());
    }
);

// ---------------------------------------------------- UpdateSecretVersionStage

/// UpdateSecretVersionStage (§3.4, Generic only).
#[derive(Debug, Clone, Default)]
pub struct UpdateSecretVersionStage {
    /// Name.
    pub secret_name: String,
    /// The stage to move.
    pub version_stage: String,
    /// Version that gets the stage.
    pub move_to_version: Option<String>,
    /// Version that loses the stage.
    pub remove_from_version: Option<String>,
}

action!(
    UpdateSecretVersionStage,
    "UpdateSecretVersionStage",
    idempotent = true,
    SimpleResponse,
    |s, r| {
        check_required("SecretName", &s.secret_name)?;
        check_required("VersionStage", &s.version_stage)?;
        if s.move_to_version.is_none() && s.remove_from_version.is_none() {
            return Err(Error::invalid(
                "MoveToVersion",
                "at least one of MoveToVersion and RemoveFromVersion is required",
            ));
        }
        r.query("SecretName", &s.secret_name);
        r.query("VersionStage", &s.version_stage);
        push_opt(&mut r, "MoveToVersion", s.move_to_version.as_deref());
        push_opt(
            &mut r,
            "RemoveFromVersion",
            s.remove_from_version.as_deref(),
        );
    }
);

// -------------------------------------------------------------- DescribeSecret

/// DescribeSecret (§3.5).
#[derive(Debug, Clone, Default)]
pub struct DescribeSecret {
    /// Name or ARN.
    pub secret_name: String,
    /// Return tags.
    pub fetch_tags: Option<bool>,
}

/// DescribeSecret's answer: a secret's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretMetadata {
    /// Request id.
    #[serde(default)]
    pub request_id: String,
    /// ARN.
    #[serde(default)]
    pub arn: String,
    /// Name.
    pub secret_name: String,
    /// Type.
    #[serde(default)]
    pub secret_type: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Key protecting the value.
    #[serde(default)]
    pub encryption_key_id: String,
    /// Creation time.
    #[serde(default)]
    pub create_time: String,
    /// Last update time.
    #[serde(default)]
    pub update_time: String,
    /// When a scheduled deletion happens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_delete_time: Option<String>,
    /// KMS instance.
    #[serde(
        rename = "DKMSInstanceId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dkms_instance_id: Option<String>,
    /// The cloud service that owns the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owing_service: Option<String>,
    /// Tags (with FetchTags).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
    /// `Enabled`, `Disabled` or `Invalid` (managed types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatic_rotation: Option<String>,
    /// Extended configuration (managed types).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_config: Option<String>,
    /// Rotation period, `<n>s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_interval: Option<String>,
    /// Next rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation_date: Option<String>,
    /// Last rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rotation_date: Option<String>,
}

action!(
    DescribeSecret,
    "DescribeSecret",
    idempotent = true,
    SecretMetadata,
    |s, r| {
        check_required("SecretName", &s.secret_name)?;
        r.query("SecretName", &s.secret_name);
        push_bool(&mut r, "FetchTags", s.fetch_tags);
    }
);

// ----------------------------------------------------------------- ListSecrets

/// One ListSecrets filter: values are ORed, filters ANDed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// `SecretName`, `Description`, `TagKey`, `TagValue`, `DKMSInstanceId`, `SecretType`, `Creator`.
    #[serde(rename = "Key")]
    pub key: String,
    /// Values.
    #[serde(rename = "Values")]
    pub values: Vec<String>,
}

/// ListSecrets (§3.6).
#[derive(Debug, Clone, Default)]
pub struct ListSecrets {
    /// Page, from 1.
    pub page_number: Option<u32>,
    /// 1–100, default 10.
    pub page_size: Option<u32>,
    /// Return tags.
    pub fetch_tags: Option<bool>,
    /// Filters (a JSON array on the wire).
    pub filters: Vec<Filter>,
}

/// One secret in a ListSecrets page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecretSummary {
    /// Name.
    pub secret_name: String,
    /// Type.
    #[serde(default)]
    pub secret_type: String,
    /// Creation time.
    #[serde(default)]
    pub create_time: String,
    /// Last update.
    #[serde(default)]
    pub update_time: String,
    /// Scheduled deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_delete_time: Option<String>,
    /// Owning service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owing_service: Option<String>,
    /// Tags (with FetchTags).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Tags>,
}

/// `{"Secret":[…]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretList {
    /// Secrets.
    #[serde(rename = "Secret", default)]
    pub secret: Vec<SecretSummary>,
}

/// ListSecrets' answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListSecretsResponse {
    /// Request id.
    #[serde(default)]
    pub request_id: String,
    /// Page number.
    #[serde(deserialize_with = "lenient_u64", default)]
    pub page_number: u64,
    /// Page size.
    #[serde(deserialize_with = "lenient_u64", default)]
    pub page_size: u64,
    /// Total matching secrets.
    #[serde(deserialize_with = "lenient_u64", default)]
    pub total_count: u64,
    /// This page.
    #[serde(default)]
    pub secret_list: SecretList,
}

action!(
    ListSecrets,
    "ListSecrets",
    idempotent = true,
    ListSecretsResponse,
    |s, r| {
        if let Some(n) = s.page_number {
            r.query("PageNumber", n.to_string());
        }
        if let Some(n) = s.page_size {
            r.query("PageSize", n.to_string());
        }
        push_bool(&mut r, "FetchTags", s.fetch_tags);
        if !s.filters.is_empty() {
            r.query("Filters", json(&s.filters));
        }
    }
);

// -------------------------------------------------------- ListSecretVersionIds

/// ListSecretVersionIds (§3.7).
#[derive(Debug, Clone, Default)]
pub struct ListSecretVersionIds {
    /// Name.
    pub secret_name: String,
    /// Include versions without stages.
    pub include_deprecated: Option<bool>,
    /// Page, from 1.
    pub page_number: Option<u32>,
    /// Page size (default 20).
    pub page_size: Option<u32>,
}

/// One version in ListSecretVersionIds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VersionInfo {
    /// Version id.
    pub version_id: String,
    /// Creation time.
    #[serde(default)]
    pub create_time: String,
    /// Stages.
    #[serde(default)]
    pub version_stages: VersionStages,
}

/// `{"VersionId":[…]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionIds {
    /// Versions.
    #[serde(rename = "VersionId", default)]
    pub version_id: Vec<VersionInfo>,
}

/// ListSecretVersionIds' answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListSecretVersionIdsResponse {
    /// Request id.
    #[serde(default)]
    pub request_id: String,
    /// Name.
    #[serde(default)]
    pub secret_name: String,
    /// Total versions listed.
    #[serde(deserialize_with = "lenient_u64", default)]
    pub total_count: u64,
    /// Page number.
    #[serde(deserialize_with = "lenient_u64", default)]
    pub page_number: u64,
    /// Page size.
    #[serde(deserialize_with = "lenient_u64", default)]
    pub page_size: u64,
    /// This page.
    #[serde(default)]
    pub version_ids: VersionIds,
}

action!(
    ListSecretVersionIds,
    "ListSecretVersionIds",
    idempotent = true,
    ListSecretVersionIdsResponse,
    |s, r| {
        check_required("SecretName", &s.secret_name)?;
        r.query("SecretName", &s.secret_name);
        push_bool(&mut r, "IncludeDeprecated", s.include_deprecated);
        if let Some(n) = s.page_number {
            r.query("PageNumber", n.to_string());
        }
        if let Some(n) = s.page_size {
            r.query("PageSize", n.to_string());
        }
    }
);

// ---------------------------------------------------------------- UpdateSecret

/// UpdateSecret (§3.8).
#[derive(Debug, Clone, Default)]
pub struct UpdateSecret {
    /// Name.
    pub secret_name: String,
    /// New description.
    pub description: Option<String>,
    /// New `ExtendedConfig.CustomData`, a JSON object string (managed types).
    pub custom_data: Option<String>,
}

action!(
    UpdateSecret,
    "UpdateSecret",
    idempotent = true,
    SimpleResponse,
    |s, r| {
        check_required("SecretName", &s.secret_name)?;
        r.query("SecretName", &s.secret_name);
        push_opt(&mut r, "Description", s.description.as_deref());
        push_opt(
            &mut r,
            "ExtendedConfig.CustomData",
            s.custom_data.as_deref(),
        );
    }
);

// -------------------------------------------------- UpdateSecretRotationPolicy

/// UpdateSecretRotationPolicy (§3.9).
#[derive(Debug, Clone, Default)]
pub struct UpdateSecretRotationPolicy {
    /// Name.
    pub secret_name: String,
    /// On or off.
    pub enable_automatic_rotation: bool,
    /// Required when enabling.
    pub rotation_interval: Option<String>,
}

action!(
    UpdateSecretRotationPolicy,
    "UpdateSecretRotationPolicy",
    idempotent = true,
    SimpleResponse,
    |s, r| {
        check_required("SecretName", &s.secret_name)?;
        if s.enable_automatic_rotation && s.rotation_interval.as_deref().is_none_or(str::is_empty) {
            return Err(Error::invalid(
                "RotationInterval",
                "is required when EnableAutomaticRotation is true",
            ));
        }
        r.query("SecretName", &s.secret_name);
        push_bool(
            &mut r,
            "EnableAutomaticRotation",
            Some(s.enable_automatic_rotation),
        );
        push_opt(&mut r, "RotationInterval", s.rotation_interval.as_deref());
    }
);

// ---------------------------------------------------------------- RotateSecret

/// RotateSecret (§3.10, managed types only).
#[derive(Debug, Clone, Default)]
pub struct RotateSecret {
    /// Name.
    pub secret_name: String,
    /// Idempotency token; becomes the new version id.
    pub version_id: String,
}

/// RotateSecret's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotateSecretResponse {
    /// Request id.
    #[serde(default)]
    pub request_id: String,
    /// ARN.
    #[serde(default)]
    pub arn: String,
    /// Name.
    pub secret_name: String,
    /// The new version.
    #[serde(default)]
    pub version_id: String,
}

action!(
    RotateSecret,
    "RotateSecret",
    idempotent = true,
    RotateSecretResponse,
    |s, r| {
        check_required("SecretName", &s.secret_name)?;
        check_required("VersionId", &s.version_id)?;
        r.query("SecretName", &s.secret_name);
        r.query("VersionId", &s.version_id);
    }
);

// ---------------------------------------------------------------- DeleteSecret

/// DeleteSecret (§3.11).
#[derive(Debug, Clone, Default)]
pub struct DeleteSecret {
    /// Name.
    pub secret_name: String,
    /// Delete now, unrecoverably.
    pub force_delete_without_recovery: Option<bool>,
    /// 7–30 days (default 30).
    pub recovery_window_in_days: Option<u32>,
}

/// DeleteSecret's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteSecretResponse {
    /// Request id.
    #[serde(default)]
    pub request_id: String,
    /// Name.
    pub secret_name: String,
    /// When the deletion happens (absent for a forced delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_delete_time: Option<String>,
}

action!(
    DeleteSecret,
    "DeleteSecret",
    idempotent = false,
    DeleteSecretResponse,
    |s, r| {
        check_required("SecretName", &s.secret_name)?;
        r.query("SecretName", &s.secret_name);
        push_bool(
            &mut r,
            "ForceDeleteWithoutRecovery",
            s.force_delete_without_recovery,
        );
        if let Some(days) = s.recovery_window_in_days {
            r.query("RecoveryWindowInDays", days.to_string());
        }
    }
);

// --------------------------------------------------------------- RestoreSecret

/// RestoreSecret (§3.12).
#[derive(Debug, Clone, Default)]
pub struct RestoreSecret {
    /// Name.
    pub secret_name: String,
}

action!(
    RestoreSecret,
    "RestoreSecret",
    idempotent = false,
    SimpleResponse,
    |s, r| {
        check_required("SecretName", &s.secret_name)?;
        r.query("SecretName", &s.secret_name);
    }
);

// -------------------------------------------------------------- Secret policy

/// SetSecretPolicy (§3.13).
#[derive(Debug, Clone, Default)]
pub struct SetSecretPolicy {
    /// Name.
    pub secret_name: String,
    /// Policy JSON.
    pub policy: String,
    /// Only `default`.
    pub policy_name: Option<String>,
}

action!(
    SetSecretPolicy,
    "SetSecretPolicy",
    idempotent = true,
    SimpleResponse,
    |s, r| {
        check_required("SecretName", &s.secret_name)?;
        check_required("Policy", &s.policy)?;
        r.query("SecretName", &s.secret_name);
        r.query("Policy", &s.policy);
        push_opt(&mut r, "PolicyName", s.policy_name.as_deref());
    }
);

/// GetSecretPolicy (§3.13).
#[derive(Debug, Clone, Default)]
pub struct GetSecretPolicy {
    /// Name.
    pub secret_name: String,
    /// Only `default`.
    pub policy_name: Option<String>,
}

/// GetSecretPolicy's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetSecretPolicyResponse {
    /// Request id.
    #[serde(default)]
    pub request_id: String,
    /// Policy JSON.
    #[serde(default)]
    pub policy: String,
}

action!(
    GetSecretPolicy,
    "GetSecretPolicy",
    idempotent = true,
    GetSecretPolicyResponse,
    |s, r| {
        check_required("SecretName", &s.secret_name)?;
        r.query("SecretName", &s.secret_name);
        push_opt(&mut r, "PolicyName", s.policy_name.as_deref());
    }
);

// --------------------------------------------------------------------- Tagging

/// The resource of a per-resource tag call: exactly one of the three.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagTarget {
    /// A key.
    KeyId(String),
    /// A secret.
    SecretName(String),
    /// A certificate.
    CertificateId(String),
}

impl Default for TagTarget {
    fn default() -> Self {
        Self::SecretName(String::new())
    }
}

impl TagTarget {
    fn push(&self, r: &mut ApiRequest) -> Result<(), Error> {
        let (name, value) = match self {
            Self::KeyId(v) => ("KeyId", v),
            Self::SecretName(v) => ("SecretName", v),
            Self::CertificateId(v) => ("CertificateId", v),
        };
        check_required(name, value)?;
        r.query(name, value.as_str());
        Ok(())
    }
}

/// TagResource (§3.14, per-resource style).
#[derive(Debug, Clone, Default)]
pub struct TagResource {
    /// The resource.
    pub target: TagTarget,
    /// Tags (a JSON array on the wire).
    pub tags: Vec<Tag>,
}

action!(
    TagResource,
    "TagResource",
    idempotent = true,
    SimpleResponse,
    |s, r| {
        s.target.push(&mut r)?;
        if s.tags.is_empty() {
            return Err(Error::invalid("Tags", "at least one tag is required"));
        }
        r.query("Tags", json(&s.tags));
    }
);

/// UntagResource (§3.14, per-resource style).
#[derive(Debug, Clone, Default)]
pub struct UntagResource {
    /// The resource.
    pub target: TagTarget,
    /// Keys to remove (a JSON array on the wire).
    pub tag_keys: Vec<String>,
}

action!(
    UntagResource,
    "UntagResource",
    idempotent = true,
    SimpleResponse,
    |s, r| {
        s.target.push(&mut r)?;
        if s.tag_keys.is_empty() {
            return Err(Error::invalid("TagKeys", "at least one key is required"));
        }
        r.query("TagKeys", json(&s.tag_keys));
    }
);

fn push_resource_ids(r: &mut ApiRequest, ids: &[String]) -> Result<(), Error> {
    if ids.is_empty() || ids.len() > 50 {
        return Err(Error::invalid(
            "ResourceId",
            format!("give 1 to 50 resource ids, not {}", ids.len()),
        ));
    }
    for (i, id) in ids.iter().enumerate() {
        r.query(format!("ResourceId.{}", i + 1), id.as_str());
    }
    Ok(())
}

fn push_tag_list(r: &mut ApiRequest, tags: &[Tag]) {
    for (i, t) in tags.iter().enumerate() {
        r.query(format!("Tag.{}.Key", i + 1), t.tag_key.as_str());
        r.query(format!("Tag.{}.Value", i + 1), t.tag_value.as_str());
    }
}

/// TagResources (§3.14, batch style).
#[derive(Debug, Clone, Default)]
pub struct TagResources {
    /// `key` or `secret`.
    pub resource_type: String,
    /// Resource ids (secret names), 1–50.
    pub resource_ids: Vec<String>,
    /// Tags, 1–20.
    pub tags: Vec<Tag>,
}

action!(
    TagResources,
    "TagResources",
    idempotent = true,
    SimpleResponse,
    |s, r| {
        check_required("ResourceType", &s.resource_type)?;
        r.query("ResourceType", &s.resource_type);
        push_resource_ids(&mut r, &s.resource_ids)?;
        if s.tags.is_empty() {
            return Err(Error::invalid("Tag", "at least one tag is required"));
        }
        push_tag_list(&mut r, &s.tags);
    }
);

/// UntagResources (§3.14, batch style).
#[derive(Debug, Clone, Default)]
pub struct UntagResources {
    /// `key` or `secret`.
    pub resource_type: String,
    /// Resource ids, 1–50.
    pub resource_ids: Vec<String>,
    /// Keys to remove, up to 20.
    pub tag_keys: Vec<String>,
    /// Remove every tag (only when no key is given).
    pub all: Option<bool>,
}

action!(
    UntagResources,
    "UntagResources",
    idempotent = true,
    SimpleResponse,
    |s, r| {
        check_required("ResourceType", &s.resource_type)?;
        r.query("ResourceType", &s.resource_type);
        push_resource_ids(&mut r, &s.resource_ids)?;
        for (i, k) in s.tag_keys.iter().enumerate() {
            r.query(format!("TagKey.{}", i + 1), k.as_str());
        }
        push_bool(&mut r, "All", s.all);
    }
);

/// ListTagResources (§3.14, batch style).
#[derive(Debug, Clone, Default)]
pub struct ListTagResources {
    /// `key` or `secret`.
    pub resource_type: String,
    /// Resource ids, up to 50.
    pub resource_ids: Vec<String>,
    /// Only resources with these tags.
    pub tags: Vec<Tag>,
    /// Continuation token from the previous page.
    pub next_token: Option<String>,
}

/// One row of ListTagResources.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagResourceRow {
    /// Resource id.
    pub resource_id: String,
    /// Resource type.
    #[serde(default)]
    pub resource_type: String,
    /// Tag key.
    pub tag_key: String,
    /// Tag value.
    #[serde(default)]
    pub tag_value: String,
}

/// `{"TagResource":[…]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagResourceRows {
    /// Rows.
    #[serde(rename = "TagResource", default)]
    pub tag_resource: Vec<TagResourceRow>,
}

/// ListTagResources' answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListTagResourcesResponse {
    /// Request id.
    #[serde(default)]
    pub request_id: String,
    /// Next page token; empty when done.
    #[serde(default)]
    pub next_token: String,
    /// This page.
    #[serde(default)]
    pub tag_resources: TagResourceRows,
}

action!(
    ListTagResources,
    "ListTagResources",
    idempotent = true,
    ListTagResourcesResponse,
    |s, r| {
        check_required("ResourceType", &s.resource_type)?;
        r.query("ResourceType", &s.resource_type);
        if !s.resource_ids.is_empty() {
            push_resource_ids(&mut r, &s.resource_ids)?;
        }
        push_tag_list(&mut r, &s.tags);
        push_opt(
            &mut r,
            "NextToken",
            s.next_token.as_deref().filter(|t| !t.is_empty()),
        );
    }
);

// ------------------------------------------------------------------- Others

/// GetRandomPassword (§3.15).
#[derive(Debug, Clone, Default)]
pub struct GetRandomPassword {
    /// 8–128, default 32.
    pub password_length: Option<u32>,
    /// Characters never to use.
    pub exclude_characters: Option<String>,
    /// No lower-case letters.
    pub exclude_lowercase: Option<bool>,
    /// No upper-case letters.
    pub exclude_uppercase: Option<bool>,
    /// No digits.
    pub exclude_numbers: Option<bool>,
    /// No punctuation.
    pub exclude_punctuation: Option<bool>,
    /// At least one of each included class.
    pub require_each_included_type: Option<bool>,
}

/// GetRandomPassword's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRandomPasswordResponse {
    /// Request id.
    #[serde(default)]
    pub request_id: String,
    /// The password.
    #[serde(serialize_with = "serialize_exposed")]
    pub random_password: SecretString,
}

action!(
    GetRandomPassword,
    "GetRandomPassword",
    idempotent = true,
    GetRandomPasswordResponse,
    |s, r| {
        if let Some(n) = s.password_length {
            r.query("PasswordLength", n.to_string());
        }
        push_opt(&mut r, "ExcludeCharacters", s.exclude_characters.as_deref());
        push_bool(&mut r, "ExcludeLowercase", s.exclude_lowercase);
        push_bool(&mut r, "ExcludeUppercase", s.exclude_uppercase);
        push_bool(&mut r, "ExcludeNumbers", s.exclude_numbers);
        push_bool(&mut r, "ExcludePunctuation", s.exclude_punctuation);
        push_bool(
            &mut r,
            "RequireEachIncludedType",
            s.require_each_included_type,
        );
    }
);

/// One entry of BatchGetSecretValue's `SecretsList`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchSecretRef {
    /// Name.
    pub secret_name: String,
    /// Version id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// Stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_stage: Option<String>,
    /// Return extended config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetch_extended_config: Option<bool>,
}

/// BatchGetSecretValue (§3.15): up to 20 secrets.
#[derive(Debug, Clone, Default)]
pub struct BatchGetSecretValue {
    /// The secrets to read.
    pub secrets: Vec<BatchSecretRef>,
}

/// One failure in BatchGetSecretValue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchError {
    /// Name.
    pub secret_name: String,
    /// Error code.
    pub code: String,
    /// HTTP status the single call would have had.
    #[serde(
        deserialize_with = "lenient_u64_opt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub http_status: Option<u64>,
    /// Message.
    #[serde(default)]
    pub message: String,
}

/// BatchGetSecretValue's answer (bare arrays, not wrapped).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchGetSecretValueResponse {
    /// Request id.
    #[serde(default)]
    pub request_id: String,
    /// Values read.
    #[serde(default)]
    pub secret_values: Vec<SecretValue>,
    /// Failures.
    #[serde(default)]
    pub errors: Vec<BatchError>,
}

action!(
    BatchGetSecretValue,
    "BatchGetSecretValue",
    idempotent = true,
    BatchGetSecretValueResponse,
    |s, r| {
        if s.secrets.is_empty() || s.secrets.len() > 20 {
            return Err(Error::invalid(
                "SecretsList",
                format!("give 1 to 20 secrets, not {}", s.secrets.len()),
            ));
        }
        r.query("SecretsList", json(&s.secrets));
    }
);

/// DescribeRegions (§3.15).
#[derive(Debug, Clone, Default)]
pub struct DescribeRegions;

/// A region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionInfo {
    /// Region id.
    #[serde(rename = "RegionId")]
    pub region_id: String,
}

/// `{"Region":[…]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Regions {
    /// Regions.
    #[serde(rename = "Region", default)]
    pub region: Vec<RegionInfo>,
}

/// DescribeRegions' answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeRegionsResponse {
    /// Request id.
    #[serde(default)]
    pub request_id: String,
    /// Regions.
    #[serde(default)]
    pub regions: Regions,
}

action!(
    DescribeRegions,
    "DescribeRegions",
    idempotent = true,
    DescribeRegionsResponse,
    |_s, _r| {}
);

// --------------------------------------------------------- ListKeys, DescribeKey

/// ListKeys: the keys of the region, a page at a time.
#[derive(Debug, Clone, Default)]
pub struct ListKeys {
    /// Page, from 1.
    pub page_number: Option<u32>,
    /// 1–100, default 10.
    pub page_size: Option<u32>,
    /// Filters (`KeyState`, `KeySpec`, `KeyUsage`, `ProtectionLevel`,
    /// `CreatorType`), a JSON array on the wire.
    pub filters: Vec<Filter>,
}

/// One key in a ListKeys page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyRef {
    /// Key id.
    pub key_id: String,
    /// Key ARN.
    #[serde(default)]
    pub key_arn: String,
}

/// `{"Key":[…]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyList {
    /// Keys.
    #[serde(rename = "Key", default)]
    pub key: Vec<KeyRef>,
}

/// ListKeys' answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListKeysResponse {
    /// Request id.
    #[serde(default)]
    pub request_id: String,
    /// Total matching keys.
    #[serde(deserialize_with = "lenient_u64", default)]
    pub total_count: u64,
    /// This page.
    #[serde(default)]
    pub keys: KeyList,
}

action!(
    ListKeys,
    "ListKeys",
    idempotent = true,
    ListKeysResponse,
    |s, r| {
        if let Some(n) = s.page_number {
            r.query("PageNumber", n.to_string());
        }
        if let Some(n) = s.page_size {
            r.query("PageSize", n.to_string());
        }
        if !s.filters.is_empty() {
            r.query("Filters", json(&s.filters));
        }
    }
);

/// DescribeKey: one key's metadata.
#[derive(Debug, Clone, Default)]
pub struct DescribeKey {
    /// Key id, alias or ARN.
    pub key_id: String,
}

/// A key's metadata (the fields Rota reads; absent ones are empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct KeyMetadata {
    /// Key id.
    pub key_id: String,
    /// ARN.
    pub arn: String,
    /// Description.
    pub description: String,
    /// `Enabled`, `Disabled`, `PendingDeletion`, `PendingImport`.
    pub key_state: String,
    /// Creation time.
    pub creation_date: String,
    /// Scheduled deletion time.
    pub delete_date: String,
    /// Who created it.
    pub creator: String,
    /// `Aliyun_AES_256`, …
    pub key_spec: String,
    /// `ENCRYPT/DECRYPT`, `SIGN/VERIFY`.
    pub key_usage: String,
    /// `SOFTWARE`, `HSM`.
    pub protection_level: String,
    /// `Enabled`, `Disabled`, `Suspended`.
    pub automatic_rotation: String,
    /// `Aliyun_KMS`, `EXTERNAL`.
    pub origin: String,
}

/// DescribeKey's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeKeyResponse {
    /// Request id.
    #[serde(default)]
    pub request_id: String,
    /// The key.
    #[serde(default)]
    pub key_metadata: KeyMetadata,
}

action!(
    DescribeKey,
    "DescribeKey",
    idempotent = true,
    DescribeKeyResponse,
    |s, r| {
        r.query("KeyId", s.key_id.clone());
    }
);

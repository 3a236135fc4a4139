//! The live state of secrets: what KMS says, read with the calls the
//! Terraform provider makes (kms-api.md §4.2 Read) — DescribeSecret with
//! FetchTags, GetSecretValue of ACSCurrent, GetSecretPolicy when the secret
//! lives in a KMS instance (or the configuration sets a policy), and
//! ListTagResources only when DescribeSecret returned no tag list.
//!
//! The value itself is never kept: a [`LiveSecret`] holds its SHA-256. Reads
//! of many secrets run concurrently with a bound ([`read_many`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use rota_kms::kms::{
    DescribeSecret, Filter, GetSecretPolicy, GetSecretValue, ListTagResources, VersionInfo,
};
use rota_kms::{ErrorKind, KmsClient};
use sha2::{Digest as _, Sha256};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::error::EngineError;
use crate::ownership::{ADDRESS_TAG, CONFIG_TAG, Ownership};

/// A secret as KMS has it now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveSecret {
    /// The name KMS stores (the resource id).
    pub name: String,
    /// ARN.
    pub arn: String,
    /// Secret type.
    pub secret_type: String,
    /// Description ("" when none).
    pub description: String,
    /// Key protecting the value ("" for the service key).
    pub encryption_key_id: String,
    /// KMS instance ("" when none).
    pub dkms_instance_id: String,
    /// Creation time.
    pub create_time: String,
    /// Set while the secret is scheduled for deletion.
    pub planned_delete_time: Option<String>,
    /// Extended configuration (managed types).
    pub extended_config: Option<String>,
    /// Whether automatic rotation is enabled.
    pub automatic_rotation: bool,
    /// Rotation period as KMS returns it (`<n>s`), while enabled.
    pub rotation_interval: Option<String>,
    /// Every tag, Rota's own included.
    pub tags: BTreeMap<String, String>,
    /// The secret policy, when read.
    pub policy: Option<String>,
    /// The ACSCurrent version.
    pub version_id: String,
    /// Its stages.
    pub version_stages: Vec<String>,
    /// Its data type.
    pub secret_data_type: String,
    /// SHA-256 (hex) of the ACSCurrent value; empty when it could not be read.
    pub data_sha256: String,
    /// Every version, when read (`ListSecretVersionIds`).
    pub versions: Option<Vec<VersionInfo>>,
}

impl LiveSecret {
    /// The tags that are the user's (not Rota's or the cloud's).
    pub fn user_tags(&self) -> BTreeMap<String, String> {
        self.tags
            .iter()
            .filter(|(k, _)| !crate::ownership::is_reserved_tag(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The computed attributes, as references see them.
    pub fn computed(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("id".into(), self.name.clone());
        m.insert("arn".into(), self.arn.clone());
        m.insert("create_time".into(), self.create_time.clone());
        m.insert(
            "planned_delete_time".into(),
            self.planned_delete_time.clone().unwrap_or_default(),
        );
        m
    }

    /// Whether a version with this id exists (needs `versions`).
    pub fn has_version(&self, id: &str) -> bool {
        self.version_id == id
            || self
                .versions
                .as_ref()
                .is_some_and(|v| v.iter().any(|v| v.version_id == id))
    }

    /// The version holding `stage` (needs `versions` for stages other than ACSCurrent).
    pub fn stage_holder(&self, stage: &str) -> Option<&str> {
        if stage == rota_kms::kms::stage::CURRENT {
            return Some(&self.version_id);
        }
        self.versions.as_ref().and_then(|vs| {
            vs.iter()
                .find(|v| v.version_stages.contains(stage))
                .map(|v| v.version_id.as_str())
        })
    }

    /// A stable fingerprint of everything a plan depends on.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        let mut field = |k: &str, v: &str| {
            h.update(k.as_bytes());
            h.update([0]);
            h.update(v.as_bytes());
            h.update([0]);
        };
        field("name", &self.name);
        field("type", &self.secret_type);
        field("description", &self.description);
        field("key", &self.encryption_key_id);
        field("dkms", &self.dkms_instance_id);
        field("create_time", &self.create_time);
        field(
            "planned_delete",
            self.planned_delete_time.as_deref().unwrap_or(""),
        );
        field("ext", self.extended_config.as_deref().unwrap_or(""));
        field(
            "rotation",
            if self.automatic_rotation { "on" } else { "off" },
        );
        field("interval", self.rotation_interval.as_deref().unwrap_or(""));
        for (k, v) in &self.tags {
            field(k, v);
        }
        field("policy", self.policy.as_deref().unwrap_or(""));
        field("version", &self.version_id);
        field("data_type", &self.secret_data_type);
        field("data", &self.data_sha256);
        if let Some(vs) = &self.versions {
            for v in vs {
                field(&v.version_id, &v.version_stages.version_stage.join(","));
            }
        }
        crate::hex(&h.finalize())
    }
}

/// What to read besides the metadata and the current value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Read the secret policy even without a KMS instance.
    pub policy: bool,
    /// List every version (for stage moves and version history).
    pub versions: bool,
}

/// SHA-256 (hex) of a value.
pub fn sha256_hex(data: &[u8]) -> String {
    crate::hex(&Sha256::digest(data))
}

/// Reads one secret; `Ok(None)` when it does not exist.
pub async fn read(
    client: &KmsClient,
    name: &str,
    options: ReadOptions,
) -> Result<Option<LiveSecret>, EngineError> {
    let kms = |action: &'static str| {
        move |source: rota_kms::Error| EngineError::Kms {
            secret: name.to_owned(),
            action,
            source,
        }
    };
    let meta = match client
        .send(&DescribeSecret {
            secret_name: name.to_owned(),
            fetch_tags: Some(true),
        })
        .await
    {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(kms("DescribeSecret")(e)),
    };
    let mut live = LiveSecret {
        name: meta.secret_name.clone(),
        arn: meta.arn,
        secret_type: meta.secret_type,
        description: meta.description,
        encryption_key_id: meta.encryption_key_id,
        dkms_instance_id: meta.dkms_instance_id.unwrap_or_default(),
        create_time: meta.create_time,
        planned_delete_time: meta.planned_delete_time.filter(|t| !t.is_empty()),
        extended_config: meta.extended_config.filter(|e| !e.is_empty()),
        automatic_rotation: meta.automatic_rotation.as_deref() == Some("Enabled"),
        rotation_interval: meta.rotation_interval.filter(|r| !r.is_empty()),
        ..LiveSecret::default()
    };
    match meta.tags {
        Some(tags) => {
            live.tags = tags
                .tag
                .into_iter()
                .map(|t| (t.tag_key, t.tag_value))
                .collect();
        }
        None => {
            let mut token = None;
            loop {
                let page = client
                    .send(&ListTagResources {
                        resource_type: "secret".into(),
                        resource_ids: vec![live.name.clone()],
                        tags: Vec::new(),
                        next_token: token.clone(),
                    })
                    .await
                    .map_err(kms("ListTagResources"))?;
                for row in page.tag_resources.tag_resource {
                    live.tags.insert(row.tag_key, row.tag_value);
                }
                if page.next_token.is_empty() {
                    break;
                }
                token = Some(page.next_token);
            }
        }
    }
    crate::ownership::decode_address_tag(&mut live.tags);
    let pending = live.planned_delete_time.is_some();
    match client.send(&GetSecretValue::current(&live.name)).await {
        Ok(v) => {
            live.version_id = v.version_id;
            live.version_stages = v.version_stages.version_stage;
            live.secret_data_type = v.secret_data_type;
            live.data_sha256 = sha256_hex(v.secret_data.expose_secret().as_bytes());
        }
        // A secret in its deletion window may refuse reads; its metadata is enough.
        Err(_) if pending => {}
        Err(e) => return Err(kms("GetSecretValue")(e)),
    }
    if (options.policy || !live.dkms_instance_id.is_empty()) && !pending {
        match client
            .send(&GetSecretPolicy {
                secret_name: live.name.clone(),
                policy_name: None,
            })
            .await
        {
            Ok(p) => live.policy = Some(p.policy).filter(|p| !p.is_empty()),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(kms("GetSecretPolicy")(e)),
        }
    }
    if options.versions && !pending {
        live.versions = Some(
            client
                .list_all_versions(&live.name)
                .await
                .map_err(kms("ListSecretVersionIds"))?,
        );
    }
    Ok(Some(live))
}

/// Reads many secrets, at most `concurrency` at a time; results in input order.
pub async fn read_many(
    client: &KmsClient,
    requests: Vec<(String, ReadOptions)>,
    concurrency: usize,
) -> Vec<Result<Option<LiveSecret>, EngineError>> {
    let semaphore = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    let n = requests.len();
    for (i, (name, opts)) in requests.into_iter().enumerate() {
        let client = client.clone();
        let semaphore = semaphore.clone();
        set.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            (i, read(&client, &name, opts).await)
        });
    }
    let mut out: Vec<Option<Result<Option<LiveSecret>, EngineError>>> =
        (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, r)) => out[i] = Some(r),
            Err(e) => {
                // A panicking read: report it on every slot still empty.
                let msg = e.to_string();
                for slot in out.iter_mut().filter(|s| s.is_none()) {
                    *slot = Some(Err(EngineError::Internal(msg.clone())));
                }
            }
        }
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(EngineError::Internal("read lost".into()))))
        .collect()
}

/// Names of the secrets this configuration created (its ownership tags).
pub async fn owned_secrets(
    client: &KmsClient,
    ownership: &Ownership,
) -> Result<Vec<(String, BTreeMap<String, String>)>, EngineError> {
    let list = client
        .list_all_secrets(
            vec![
                Filter {
                    key: "TagKey".into(),
                    values: vec![CONFIG_TAG.into()],
                },
                Filter {
                    key: "TagValue".into(),
                    values: vec![ownership.config_id().into()],
                },
            ],
            true,
        )
        .await
        .map_err(|source| EngineError::Kms {
            secret: "*".into(),
            action: "ListSecrets",
            source,
        })?;
    Ok(list
        .into_iter()
        .filter_map(|s| {
            let mut tags: BTreeMap<String, String> = s
                .tags
                .map(|t| {
                    t.tag
                        .into_iter()
                        .map(|t| (t.tag_key, t.tag_value))
                        .collect()
                })
                .unwrap_or_default();
            crate::ownership::decode_address_tag(&mut tags);
            ownership.owns(&tags).then_some((s.secret_name, tags))
        })
        .collect())
}

/// The live names of the secrets this configuration created, by resource
/// address (their `rota:address` tag): how a `$Auto` secret is found.
pub async fn live_names(
    client: &KmsClient,
    ownership: &Ownership,
) -> Result<BTreeMap<String, String>, EngineError> {
    Ok(owned_secrets(client, ownership)
        .await?
        .into_iter()
        .filter_map(|(name, mut tags)| tags.remove(ADDRESS_TAG).map(|a| (a, name)))
        .collect())
}

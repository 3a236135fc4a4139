//! Reading the `data` blocks of a configuration ([`crate::config::data`])
//! from KMS, at plan time, before the resources: each becomes an object
//! in [`Known`] under its address, with the provider's attributes.
//!
//! | type | calls | attributes |
//! |---|---|---|
//! | `alicloud_kms_secrets` | ListSecrets (pages; `filters`, tags fetched when asked or filtered on); with `enable_details` DescribeSecret and GetSecretValue per secret | `ids`, `names`, `secrets[*]`: `id`, `secret_name`, `planned_delete_time`, `tags`, and with details `arn`, `description`, `encryption_key_id`, `secret_data`, `secret_data_type`, `secret_type`, `version_id`, `version_stages` |
//! | `alicloud_kms_secret_versions` | ListSecretVersionIds (pages); with `enable_details` GetSecretValue per version | `ids`, `versions[*]`: `secret_name`, `version_id`, `version_stages`, and with details `secret_data`, `secret_data_type` |
//! | `alicloud_kms_keys` | ListKeys (pages; `status` and `filters`); DescribeKey per key (`enable_details`, default true) | `ids`, `keys[*]`: `id`, `arn`, `description`, `status`, `creation_date`, `delete_date`, `creator`, `key_spec`, `key_usage`, `protection_level`, `automatic_rotation`, `origin` |
//!
//! `output_file` receives the same JSON, without any `secret_data` (Rota
//! writes no secret value to a file).

use std::sync::Arc;

use rota_kms::ErrorKind;
use rota_kms::KmsClient;
use rota_kms::kms::{
    DescribeKey, DescribeSecret, Filter, GetSecretValue, KeyMetadata, ListKeys,
    ListSecretVersionIds, ListSecrets, SecretMetadata, SecretSummary, SecretValue, Tags,
};
use serde_json::{Value as Json, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::data::{DataKind, DataSource};
use crate::config::{Config, Known};
use crate::error::EngineError;
use crate::ownership::is_reserved_tag;

/// Reads every data source of `config` (at most `concurrency` detail
/// calls at once) and returns their values by address.
///
/// # Errors
///
/// A KMS call failed (a secret or key that disappears between the list
/// and the detail call is left out, not an error), or an `output_file`
/// cannot be written.
pub async fn read_all(
    client: &KmsClient,
    config: &Config,
    concurrency: usize,
) -> Result<Known, EngineError> {
    let mut known = Known::new();
    for d in &config.data {
        let value = read(client, d, concurrency).await?;
        if let Some(path) = &d.args.output_file {
            let text = serde_json::to_string_pretty(&without_values(&value)).unwrap_or_default();
            std::fs::write(path, text + "\n").map_err(|e| {
                EngineError::Internal(format!(
                    "{}: cannot write output_file {}: {e}",
                    d.address,
                    path.display()
                ))
            })?;
        }
        let value = hcl::to_value(&value).map_err(|e| EngineError::Internal(e.to_string()))?;
        known.insert(d.address.clone(), value);
    }
    Ok(known)
}

/// One data source's attributes, as JSON.
async fn read(client: &KmsClient, d: &DataSource, concurrency: usize) -> Result<Json, EngineError> {
    match d.kind {
        DataKind::Secrets => secrets(client, d, concurrency).await,
        DataKind::SecretVersions => versions(client, d, concurrency).await,
        DataKind::Keys => keys(client, d, concurrency).await,
    }
}

fn kms(secret: &str, action: &'static str) -> impl FnOnce(rota_kms::Error) -> EngineError {
    let secret = secret.to_owned();
    move |source| EngineError::Kms {
        secret,
        action,
        source,
    }
}

/// Runs `f` on every item, at most `concurrency` at once, keeping the
/// order; `None` results (gone meanwhile) are dropped.
async fn each<T, R, F, Fut>(items: Vec<T>, concurrency: usize, f: F) -> Result<Vec<R>, EngineError>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<R>, EngineError>> + Send + 'static,
{
    let semaphore = Arc::new(Semaphore::new(concurrency.max(1)));
    let f = Arc::new(f);
    let mut set = JoinSet::new();
    let n = items.len();
    for (i, item) in items.into_iter().enumerate() {
        let (semaphore, f) = (semaphore.clone(), f.clone());
        set.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            (i, f(item).await)
        });
    }
    let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (i, r) = joined.map_err(|e| EngineError::Internal(e.to_string()))?;
        out[i] = r?;
    }
    Ok(out.into_iter().flatten().collect())
}

fn tags_json(tags: Option<&Tags>) -> Json {
    let map: serde_json::Map<String, Json> = tags
        .map(|t| t.tag.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|t| !is_reserved_tag(&t.tag_key))
        .map(|t| (t.tag_key.clone(), Json::String(t.tag_value.clone())))
        .collect();
    Json::Object(map)
}

async fn secrets(
    client: &KmsClient,
    d: &DataSource,
    concurrency: usize,
) -> Result<Json, EngineError> {
    let a = &d.args;
    let mut list: Vec<SecretSummary> = Vec::new();
    let fetch_tags = a.fetch_tags || !a.tags.is_empty();
    for page in 1u32.. {
        let resp = client
            .send(&ListSecrets {
                page_number: Some(page),
                page_size: Some(100),
                fetch_tags: Some(fetch_tags),
                filters: a.filters.clone(),
            })
            .await
            .map_err(kms("*", "ListSecrets"))?;
        let n = resp.secret_list.secret.len();
        list.extend(resp.secret_list.secret);
        if n < 100 || list.len() as u64 >= resp.total_count {
            break;
        }
    }
    list.retain(|s| {
        a.ids
            .as_ref()
            .is_none_or(|ids| ids.contains(&s.secret_name))
            && a.regex.as_ref().is_none_or(|r| r.is_match(&s.secret_name))
            && a.tags.iter().all(|(k, v)| {
                s.tags
                    .as_ref()
                    .is_some_and(|t| t.tag.iter().any(|t| &t.tag_key == k && &t.tag_value == v))
            })
    });
    let details = a.enable_details;
    let client2 = client.clone();
    let rows = each(list, concurrency, move |s: SecretSummary| {
        let client = client2.clone();
        async move {
            let mut row = json!({
                "id": s.secret_name,
                "secret_name": s.secret_name,
                "planned_delete_time": s.planned_delete_time.clone().unwrap_or_default(),
                "tags": tags_json(s.tags.as_ref()),
                "secret_type": s.secret_type,
            });
            if details {
                let meta: SecretMetadata = match client
                    .send(&DescribeSecret {
                        secret_name: s.secret_name.clone(),
                        fetch_tags: Some(true),
                    })
                    .await
                {
                    Ok(m) => m,
                    Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(kms(&s.secret_name, "DescribeSecret")(e)),
                };
                let value: SecretValue =
                    match client.send(&GetSecretValue::current(&s.secret_name)).await {
                        Ok(v) => v,
                        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                        Err(e) => return Err(kms(&s.secret_name, "GetSecretValue")(e)),
                    };
                let extra = json!({
                    "arn": meta.arn,
                    "description": meta.description,
                    "encryption_key_id": meta.encryption_key_id,
                    "secret_type": meta.secret_type,
                    "tags": tags_json(meta.tags.as_ref()),
                    "secret_data": value.secret_data.expose_secret(),
                    "secret_data_type": value.secret_data_type,
                    "version_id": value.version_id,
                    "version_stages": value.version_stages.version_stage,
                });
                if let (Json::Object(r), Json::Object(x)) = (&mut row, extra) {
                    r.extend(x);
                }
            }
            Ok(Some(row))
        }
    })
    .await?;
    let names: Vec<Json> = rows.iter().map(|r| r["secret_name"].clone()).collect();
    Ok(json!({ "ids": names, "names": names, "secrets": rows }))
}

async fn versions(
    client: &KmsClient,
    d: &DataSource,
    concurrency: usize,
) -> Result<Json, EngineError> {
    let a = &d.args;
    let name = a.secret_name.clone();
    let mut list = Vec::new();
    for page in 1u32.. {
        let resp = match client
            .send(&ListSecretVersionIds {
                secret_name: name.clone(),
                include_deprecated: Some(a.include_deprecated),
                page_number: Some(page),
                page_size: Some(50),
            })
            .await
        {
            Ok(r) => r,
            Err(e) => return Err(kms(&name, "ListSecretVersionIds")(e)),
        };
        let n = resp.version_ids.version_id.len();
        list.extend(resp.version_ids.version_id);
        if n < 50 || list.len() as u64 >= resp.total_count {
            break;
        }
    }
    list.retain(|v| {
        a.ids.as_ref().is_none_or(|ids| ids.contains(&v.version_id))
            && a.version_stage
                .as_ref()
                .is_none_or(|s| v.version_stages.contains(s))
    });
    let details = a.enable_details;
    let client2 = client.clone();
    let rows = each(list, concurrency, move |v: rota_kms::kms::VersionInfo| {
        let (client, name) = (client2.clone(), name.clone());
        async move {
            let mut row = json!({
                "secret_name": name,
                "version_id": v.version_id,
                "version_stages": v.version_stages.version_stage,
            });
            if details {
                let value: SecretValue = match client
                    .send(&GetSecretValue {
                        secret_name: name.clone(),
                        version_id: Some(v.version_id.clone()),
                        ..GetSecretValue::default()
                    })
                    .await
                {
                    Ok(x) => x,
                    Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(kms(&name, "GetSecretValue")(e)),
                };
                row["secret_data"] = Json::String(value.secret_data.expose_secret().to_owned());
                row["secret_data_type"] = Json::String(value.secret_data_type);
            }
            Ok(Some(row))
        }
    })
    .await?;
    let ids: Vec<Json> = rows.iter().map(|r| r["version_id"].clone()).collect();
    Ok(json!({ "ids": ids, "versions": rows }))
}

async fn keys(client: &KmsClient, d: &DataSource, concurrency: usize) -> Result<Json, EngineError> {
    let a = &d.args;
    let mut filters = a.filters.clone();
    if let Some(s) = &a.status {
        filters.push(Filter {
            key: "KeyState".into(),
            values: vec![s.clone()],
        });
    }
    let mut ids: Vec<String> = Vec::new();
    for page in 1u32.. {
        let resp = client
            .send(&ListKeys {
                page_number: Some(page),
                page_size: Some(100),
                filters: filters.clone(),
            })
            .await
            .map_err(kms("*", "ListKeys"))?;
        let n = resp.keys.key.len();
        ids.extend(resp.keys.key.into_iter().map(|k| k.key_id));
        if n < 100 || ids.len() as u64 >= resp.total_count {
            break;
        }
    }
    ids.retain(|id| a.ids.as_ref().is_none_or(|want| want.contains(id)));
    // description_regex needs the description: the details are read then.
    let details = a.enable_details || a.regex.is_some();
    let client2 = client.clone();
    let metas = each(ids, concurrency, move |id: String| {
        let client = client2.clone();
        async move {
            if !details {
                return Ok(Some(KeyMetadata {
                    key_id: id,
                    ..KeyMetadata::default()
                }));
            }
            match client.send(&DescribeKey { key_id: id.clone() }).await {
                Ok(r) => Ok(Some(r.key_metadata)),
                // Deleted since ListKeys answered (KMS says
                // Forbidden.KeyNotFound of a key that is gone).
                Err(e)
                    if e.kind() == ErrorKind::NotFound
                        || e.code() == Some("Forbidden.KeyNotFound") =>
                {
                    Ok(None)
                }
                Err(e) => Err(kms(&id, "DescribeKey")(e)),
            }
        }
    })
    .await?;
    let rows: Vec<Json> = metas
        .into_iter()
        .filter(|m| a.regex.as_ref().is_none_or(|r| r.is_match(&m.description)))
        .map(|m| {
            json!({
                "id": m.key_id,
                "arn": m.arn,
                "description": m.description,
                "status": m.key_state,
                "creation_date": m.creation_date,
                "delete_date": m.delete_date,
                "creator": m.creator,
                "key_spec": m.key_spec,
                "key_usage": m.key_usage,
                "protection_level": m.protection_level,
                "automatic_rotation": m.automatic_rotation,
                "origin": m.origin,
            })
        })
        .collect();
    let ids: Vec<Json> = rows.iter().map(|r| r["id"].clone()).collect();
    Ok(json!({ "ids": ids, "keys": rows }))
}

/// A data source's value without any `secret_data` (for `output_file`).
fn without_values(v: &Json) -> Json {
    match v {
        Json::Object(m) => Json::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != "secret_data")
                .map(|(k, v)| (k.clone(), without_values(v)))
                .collect::<serde_json::Map<_, _>>(),
        ),
        Json::Array(a) => Json::Array(a.iter().map(without_values).collect()),
        other => other.clone(),
    }
}

//! Tagging, in both styles (kms-api.md §3.14): the per-resource
//! TagResource / UntagResource / ListResourceTags and the batch
//! TagResources / UntagResources / ListTagResources with `NextToken`.
//!
//! Choices: tags apply to secrets (by name, pending deletion refused) and to
//! keys (by id); certificates are not part of this world. A resource holds at
//! most 20 tags; tagging an existing key replaces its value. A batch call
//! checks every resource exists before changing any, then applies them one
//! by one (each durable before the next). ListTagResources skips unknown
//! ids, keeps only resources holding **all** the given tags (a tag without a
//! value matches any value), orders rows by resource then key, and pages
//! 200 rows at a time (`MaxResults` 1–1000 changes that); `NextToken` is an
//! opaque offset.

use std::collections::BTreeMap;

use base64::Engine as _;
use rota_kms::kms::{ListTagResourcesResponse, SimpleResponse, TagResourceRow, TagResourceRows};
use serde_json::{Value, json};

use super::Engine;
use super::secrets::to_json;
use super::validate;
use crate::auth::Caller;
use crate::errors::ServiceError;
use crate::params::Params;
use crate::store::Op;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Resource {
    Secret(String),
    Key(String),
}

enum Change<'a> {
    Add(&'a [(String, String)]),
    Remove(&'a [String]),
    RemoveAll,
}

fn resource_type(p: &Params) -> Result<&'static str, ServiceError> {
    match p.req("ResourceType")? {
        t if t.eq_ignore_ascii_case("secret") => Ok("secret"),
        t if t.eq_ignore_ascii_case("key") => Ok("key"),
        _ => Err(ServiceError::invalid(
            "ResourceType",
            "must be key or secret",
        )),
    }
}

fn resources(p: &Params, ty: &str, required: bool) -> Result<Vec<Resource>, ServiceError> {
    let ids = p.list("ResourceId");
    if ids.len() > 50 || (required && ids.is_empty()) {
        return Err(if ids.is_empty() {
            ServiceError::missing("ResourceId.1")
        } else {
            ServiceError::invalid("ResourceId", "at most 50 resource ids")
        });
    }
    Ok(ids
        .into_iter()
        .map(|id| {
            if ty == "secret" {
                Resource::Secret(id)
            } else {
                Resource::Key(id)
            }
        })
        .collect())
}

fn single_target(p: &Params) -> Result<Resource, ServiceError> {
    let given: Vec<(&str, &str)> = ["KeyId", "SecretName", "CertificateId"]
        .into_iter()
        .filter_map(|n| p.opt(n).map(|v| (n, v)))
        .collect();
    match given.as_slice() {
        [("KeyId", v)] => Ok(Resource::Key((*v).to_owned())),
        [("SecretName", v)] => Ok(Resource::Secret((*v).to_owned())),
        [("CertificateId", _)] => Err(ServiceError::invalid(
            "CertificateId",
            "certificates are not part of this local world",
        )),
        [] => Err(ServiceError::missing("SecretName")),
        _ => Err(ServiceError::invalid(
            "KeyId",
            "give exactly one of KeyId, SecretName and CertificateId",
        )),
    }
}

impl Engine {
    fn check_exists(&self, r: &Resource) -> Result<(), ServiceError> {
        match r {
            Resource::Secret(n) => self.require(&self.resolve_name(n)?).map(drop),
            Resource::Key(k) => self
                .key(k)
                .filter(|k| !k.doc.internal)
                .map(drop)
                .ok_or_else(|| ServiceError::KeyNotFound { key_id: k.clone() }),
        }
    }

    async fn change_tags(
        &self,
        caller: &Caller,
        action: &str,
        r: &Resource,
        change: &Change<'_>,
    ) -> Result<(), ServiceError> {
        let apply = |tags: &mut BTreeMap<String, String>| -> Result<(), ServiceError> {
            match change {
                Change::Add(add) => {
                    for (k, v) in add.iter() {
                        tags.insert(k.clone(), v.clone());
                    }
                }
                Change::Remove(keys) => {
                    for k in keys.iter() {
                        tags.remove(k);
                    }
                }
                Change::RemoveAll => tags.clear(),
            }
            if tags.len() > validate::MAX_TAGS {
                return Err(ServiceError::invalid(
                    "Tags",
                    format!("a resource holds at most {} tags", validate::MAX_TAGS),
                ));
            }
            Ok(())
        };
        match r {
            Resource::Secret(raw) => {
                let name = self.resolve_name(raw)?;
                let _guard = self.lock(&name).await;
                let s = self.require(&name)?;
                self.authorize(caller, &s, action)?;
                if s.pending_delete() {
                    return Err(ServiceError::InDeleteWindow { name });
                }
                let mut next = (*s).clone();
                apply(&mut next.doc.tags)?;
                if next.doc != s.doc {
                    next.doc.updated = self.now_secs();
                    self.commit(&name, Vec::new(), Some(next)).await?;
                }
            }
            Resource::Key(id) => {
                let _guard = self.key_lock.lock().await;
                let k = self
                    .key(id)
                    .filter(|k| !k.doc.internal)
                    .ok_or_else(|| ServiceError::KeyNotFound { key_id: id.clone() })?;
                let mut next = (*k).clone();
                apply(&mut next.doc.tags)?;
                if next.doc != k.doc {
                    let op = Op::PutKey {
                        key_id: id.clone(),
                        doc: serde_json::to_string(&next.doc)
                            .map_err(|e| ServiceError::internal(e.to_string()))?,
                        wrapped: next.wrapped.to_vec(),
                    };
                    self.store.write(vec![op]).await.map_err(|_| {
                        ServiceError::internal("the write could not be made durable")
                    })?;
                    self.keys_write()
                        .insert(id.clone(), std::sync::Arc::new(next));
                }
            }
        }
        Ok(())
    }

    fn tags_of(&self, r: &Resource) -> Option<BTreeMap<String, String>> {
        match r {
            Resource::Secret(n) => self.secret(n).map(|s| s.doc.tags.clone()),
            Resource::Key(k) => self
                .key(k)
                .filter(|k| !k.doc.internal)
                .map(|k| k.doc.tags.clone()),
        }
    }

    pub(crate) async fn tag_resource(
        &self,
        caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let target = single_target(p)?;
        let tags = validate::parse_tags_json(p.req("Tags")?)?;
        if tags.is_empty() {
            return Err(ServiceError::invalid("Tags", "give at least one tag"));
        }
        self.change_tags(caller, "TagResource", &target, &Change::Add(&tags))
            .await?;
        Ok(to_json(&SimpleResponse::default()))
    }

    pub(crate) async fn untag_resource(
        &self,
        caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let target = single_target(p)?;
        let keys = p
            .string_list("TagKeys", "TagKey")?
            .ok_or_else(|| ServiceError::missing("TagKeys"))?;
        if keys.is_empty() || keys.iter().any(|k| k.is_empty() || k.len() > 128) {
            return Err(ServiceError::invalid(
                "TagKeys",
                "must list 1 or more keys of 1 to 128 bytes",
            ));
        }
        self.change_tags(caller, "UntagResource", &target, &Change::Remove(&keys))
            .await?;
        Ok(to_json(&SimpleResponse::default()))
    }

    pub(crate) async fn tag_resources(
        &self,
        caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let ty = resource_type(p)?;
        let targets = resources(p, ty, true)?;
        let mut tags = Vec::new();
        for (i, t) in p
            .object_list("Tag", &["Key", "Value"])
            .into_iter()
            .enumerate()
        {
            let key = t[0]
                .clone()
                .ok_or_else(|| ServiceError::missing(format!("Tag.{}.Key", i + 1)))?;
            let value = t[1].clone().unwrap_or_default();
            validate::check_tag("Tag", &key, &value)?;
            tags.push((key, value));
        }
        if tags.is_empty() || tags.len() > validate::MAX_TAGS {
            return Err(if tags.is_empty() {
                ServiceError::missing("Tag.1.Key")
            } else {
                ServiceError::invalid("Tag", "at most 20 tags")
            });
        }
        for r in &targets {
            self.check_exists(r)?;
        }
        for r in &targets {
            self.change_tags(caller, "TagResources", r, &Change::Add(&tags))
                .await?;
        }
        Ok(to_json(&SimpleResponse::default()))
    }

    pub(crate) async fn untag_resources(
        &self,
        caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        let ty = resource_type(p)?;
        let targets = resources(p, ty, true)?;
        let keys = p.list("TagKey");
        if keys.len() > validate::MAX_TAGS {
            return Err(ServiceError::invalid("TagKey", "at most 20 keys"));
        }
        let all = p.bool("All")?.unwrap_or(false);
        let change = if !keys.is_empty() {
            Change::Remove(&keys)
        } else if all {
            Change::RemoveAll
        } else {
            return Err(ServiceError::missing("TagKey.1"));
        };
        for r in &targets {
            self.check_exists(r)?;
        }
        for r in &targets {
            self.change_tags(caller, "UntagResources", r, &change)
                .await?;
        }
        Ok(to_json(&SimpleResponse::default()))
    }

    pub(crate) fn list_tag_resources(&self, p: &Params) -> Result<Value, ServiceError> {
        let ty = resource_type(p)?;
        let mut targets = resources(p, ty, false)?;
        if targets.is_empty() {
            targets = if ty == "secret" {
                self.all_secrets()
                    .iter()
                    .map(|s| Resource::Secret(s.doc.name.clone()))
                    .collect()
            } else {
                self.all_keys()
                    .iter()
                    .map(|k| Resource::Key(k.doc.key_id.clone()))
                    .collect()
            };
        }
        let want: Vec<(String, Option<String>)> = p
            .object_list("Tag", &["Key", "Value"])
            .into_iter()
            .filter_map(|t| Some((t[0].clone()?, t[1].clone().filter(|v| !v.is_empty()))))
            .collect();
        let page = p.int_in("MaxResults", 1, 1000, 200)? as usize;
        let offset = match p.opt("NextToken") {
            None => 0,
            Some(t) => decode_token(t)?,
        };
        let mut rows = Vec::new();
        for r in &targets {
            let Some(tags) = self.tags_of(r) else {
                continue;
            };
            let keep = want.iter().all(|(k, v)| match tags.get(k) {
                Some(have) => v.as_ref().is_none_or(|v| v == have),
                None => false,
            });
            if !keep {
                continue;
            }
            let id = match r {
                Resource::Secret(n) | Resource::Key(n) => n.clone(),
            };
            for (k, v) in tags {
                rows.push(TagResourceRow {
                    resource_id: id.clone(),
                    resource_type: ty.to_owned(),
                    tag_key: k,
                    tag_value: v,
                });
            }
        }
        let end = (offset + page).min(rows.len());
        let next = if end < rows.len() {
            encode_token(end)
        } else {
            String::new()
        };
        let tag_resource = rows
            .get(offset.min(rows.len())..end)
            .unwrap_or_default()
            .to_vec();
        Ok(to_json(&ListTagResourcesResponse {
            request_id: String::new(),
            next_token: next,
            tag_resources: TagResourceRows { tag_resource },
        }))
    }

    /// ListResourceTags: the tags of one key.
    pub(crate) fn list_resource_tags(&self, p: &Params) -> Result<Value, ServiceError> {
        let id = p.req("KeyId")?;
        let k =
            self.key(id)
                .filter(|k| !k.doc.internal)
                .ok_or_else(|| ServiceError::KeyNotFound {
                    key_id: id.to_owned(),
                })?;
        let tag: Vec<Value> = k
            .doc
            .tags
            .iter()
            .map(|(key, v)| json!({"KeyId": id, "TagKey": key, "TagValue": v}))
            .collect();
        Ok(json!({"Tags": {"Tag": tag}}))
    }
}

fn encode_token(offset: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("rota:{offset}"))
}

fn decode_token(t: &str) -> Result<usize, ServiceError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("rota:")?.parse().ok())
        .ok_or_else(|| ServiceError::invalid("NextToken", "is not a token this service issued"))
}

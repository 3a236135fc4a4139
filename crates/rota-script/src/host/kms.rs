//! `kms::` — the secrets of the configured backend.

use rhai::{Array, Dynamic, Map, Module};
use rota_kms::SecretString;
use rota_kms::kms::{
    GetSecretValue, PutSecretValue, SecretMetadata, SecretSummary, Tags, UpdateSecretVersionStage,
};

use super::{HostResult, arg_opt, backend, block_on, fail, map, new_module, opt_str};
use crate::secret::Secret;

fn tags(t: &Option<Tags>) -> Dynamic {
    Dynamic::from_map(
        t.iter()
            .flat_map(|t| t.tag.iter())
            .map(|t| {
                (
                    t.tag_key.as_str().into(),
                    Dynamic::from(t.tag_value.clone()),
                )
            })
            .collect::<Map>(),
    )
}

fn metadata(m: SecretMetadata) -> Dynamic {
    let extended = m.extended_config.as_deref().map(|s| {
        serde_json::from_str::<serde_json::Value>(s)
            .map(|v| crate::convert::to_dynamic(&v))
            .unwrap_or_else(|_| Dynamic::from(s.to_owned()))
    });
    map([
        ("name", Dynamic::from(m.secret_name)),
        ("type", Dynamic::from(m.secret_type)),
        ("description", Dynamic::from(m.description)),
        ("tags", tags(&m.tags)),
        ("create_time", Dynamic::from(m.create_time)),
        ("update_time", Dynamic::from(m.update_time)),
        ("planned_delete_time", opt_str(m.planned_delete_time)),
        ("automatic_rotation", opt_str(m.automatic_rotation)),
        ("rotation_interval", opt_str(m.rotation_interval)),
        ("next_rotation_date", opt_str(m.next_rotation_date)),
        ("last_rotation_date", opt_str(m.last_rotation_date)),
        ("extended_config", extended.unwrap_or(Dynamic::UNIT)),
    ])
}

fn summary(s: SecretSummary) -> Dynamic {
    map([
        ("name", Dynamic::from(s.secret_name)),
        ("type", Dynamic::from(s.secret_type)),
        ("tags", tags(&s.tags)),
        ("create_time", Dynamic::from(s.create_time)),
        ("update_time", Dynamic::from(s.update_time)),
        ("planned_delete_time", opt_str(s.planned_delete_time)),
    ])
}

fn get(name: &str, version: Option<String>, stage: Option<String>) -> HostResult<Dynamic> {
    let (kms, _) = backend("kms::get")?;
    let req = GetSecretValue {
        secret_name: name.to_owned(),
        version_id: version,
        version_stage: stage,
        fetch_extended_config: None,
        dry_run: None,
    };
    let v = block_on("kms::get", async { kms.send(&req).await })?;
    Ok(map([
        ("name", Dynamic::from(v.secret_name)),
        ("version_id", Dynamic::from(v.version_id)),
        ("stages", stages(v.version_stages)),
        ("value", Secret::dynamic(v.secret_data)),
        ("data_type", Dynamic::from(v.secret_data_type)),
        ("create_time", Dynamic::from(v.create_time)),
    ]))
}

fn secret_arg(what: &str, d: &Dynamic) -> HostResult<SecretString> {
    if let Some(s) = d.clone().try_cast::<Secret>() {
        Ok(s.expose().clone())
    } else if d.is_string() {
        Ok(SecretString::new(
            d.clone().into_string().unwrap_or_default(),
        ))
    } else {
        Err(fail(what, "the value must be a string or a Secret"))
    }
}

pub(super) fn secret_value(what: &str, d: &Dynamic) -> HostResult<SecretString> {
    secret_arg(what, d)
}

pub(super) fn module() -> Module {
    let mut m = new_module();
    m.set_native_fn("describe", |name: &str| {
        let (kms, _) = backend("kms::describe")?;
        let md = block_on("kms::describe", async { kms.describe_secret(name).await })?;
        Ok(metadata(md))
    });
    m.set_native_fn("get", |name: &str| get(name, None, None));
    m.set_native_fn("get", |name: &str, stage: &str| {
        get(name, None, Some(stage.to_owned()))
    });
    m.set_native_fn("get_version", |name: &str, version: &str| {
        get(name, Some(version.to_owned()), None)
    });
    m.set_native_fn("versions", |name: &str| -> HostResult<Array> {
        let (kms, _) = backend("kms::versions")?;
        let all = block_on("kms::versions", async { kms.list_all_versions(name).await })?;
        Ok(all
            .into_iter()
            .map(|v| {
                map([
                    ("version_id", Dynamic::from(v.version_id)),
                    ("create_time", Dynamic::from(v.create_time)),
                    ("stages", stages(v.version_stages)),
                ])
            })
            .collect())
    });
    m.set_native_fn("list", || -> HostResult<Array> {
        let (kms, _) = backend("kms::list")?;
        let all = block_on("kms::list", async {
            kms.list_all_secrets(Vec::new(), true).await
        })?;
        Ok(all.into_iter().map(summary).collect())
    });
    m.set_native_fn(
        "put",
        |name: &str, version: &str, value: Dynamic, stages: Array| {
            let (kms, _) = backend("kms::put")?;
            let put = PutSecretValue {
                secret_name: name.to_owned(),
                version_id: version.to_owned(),
                secret_data: secret_arg("kms::put", &value)?,
                secret_data_type: None,
                version_stages: Some(stages.iter().map(crate::convert::to_param).collect())
                    .filter(|s: &Vec<String>| !s.is_empty()),
            };
            let r = block_on("kms::put", async { kms.send(&put).await })?;
            Ok(Dynamic::from(r.version_id))
        },
    );
    m.set_native_fn(
        "move_stage",
        |name: &str, stage: &str, to: Dynamic, from: Dynamic| {
            let (kms, _) = backend("kms::move_stage")?;
            let req = UpdateSecretVersionStage {
                secret_name: name.to_owned(),
                version_stage: stage.to_owned(),
                move_to_version: arg_opt(&to),
                remove_from_version: arg_opt(&from),
            };
            block_on("kms::move_stage", async { kms.send(&req).await })?;
            Ok(())
        },
    );
    m
}

/// A version's stages as a script array.
fn stages(stages: rota_kms::kms::VersionStages) -> Dynamic {
    Dynamic::from_array(
        stages
            .version_stage
            .into_iter()
            .map(Dynamic::from)
            .collect(),
    )
}

//! The built-in `managed` plugin for managed secret types (ECS, Rds,
//! RAMCredentials, Redis, PolarDB): the cloud rotates the secret itself.
//! `set` calls `RotateSecret` with the rotation token as `VersionId`
//! (idempotent) and waits until ACSCurrent carries the token; `test` checks
//! that it does; the engine then runs the configured verification plugin's
//! `test`, if any (setting `verify`).

use std::time::Duration;

use rota_kms::kms::{GetSecretValue, RotateSecret};
use serde_json::{Value, json};

use super::plugin::{
    PluginDescriptor, PluginError, RotationPlugin, SecretInfo, StepContext, StepFuture, StepSet,
    Strategy,
};
use super::settings::{SettingField, SettingKind, SettingsSchema};

/// The `managed` plugin.
#[derive(Debug)]
pub struct ManagedPlugin {
    descriptor: PluginDescriptor,
}

impl Default for ManagedPlugin {
    fn default() -> Self {
        Self::new()
    }
}

impl ManagedPlugin {
    /// The plugin.
    pub fn new() -> Self {
        Self {
            descriptor: PluginDescriptor {
                name: "managed".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                description:
                    "RotateSecret for managed types, then wait for the new version and verify"
                        .into(),
                secret_types: vec![
                    "ECS".into(),
                    "Rds".into(),
                    "RAMCredentials".into(),
                    "Redis".into(),
                    "PolarDB".into(),
                ],
                settings: SettingsSchema::new(vec![
                    SettingField::optional(
                        "verify",
                        SettingKind::String,
                        Value::Null,
                        "a plugin whose test step verifies the rotated credential",
                    ),
                    SettingField::optional(
                        "verify_settings",
                        SettingKind::Object,
                        json!({}),
                        "settings of the verification plugin",
                    ),
                    SettingField::optional(
                        "poll_interval_ms",
                        SettingKind::Integer,
                        json!(1000),
                        "how often to check for the new version",
                    ),
                ]),
                origin: "built-in".into(),
                steps: StepSet::default(),
            },
        }
    }

    async fn current_version(ctx: &StepContext) -> Result<String, PluginError> {
        let v = ctx
            .kms
            .send(&GetSecretValue::current(&ctx.secret.name))
            .await
            .map_err(|e| PluginError::failed(format!("GetSecretValue: {e}")))?;
        Ok(v.version_id)
    }
}

impl RotationPlugin for ManagedPlugin {
    fn descriptor(&self) -> &PluginDescriptor {
        &self.descriptor
    }

    fn strategy(&self) -> Strategy {
        Strategy::Managed
    }

    fn set<'a>(&'a self, ctx: &'a StepContext) -> StepFuture<'a, ()> {
        Box::pin(async move {
            // Probe first: a re-run after a crash finds the rotation done.
            if Self::current_version(ctx).await? == ctx.token {
                return Ok(());
            }
            ctx.kms
                .send(&RotateSecret {
                    secret_name: ctx.secret.name.clone(),
                    version_id: ctx.token.clone(),
                })
                .await
                .map_err(|e| {
                    if e.kind().is_retryable() {
                        PluginError::failed(format!("RotateSecret: {e}"))
                    } else {
                        PluginError::permanent(format!("RotateSecret: {e}"))
                    }
                })?;
            let interval = Duration::from_millis(
                ctx.settings
                    .get("poll_interval_ms")
                    .and_then(Value::as_u64)
                    .unwrap_or(1000)
                    .max(10),
            );
            loop {
                if Self::current_version(ctx).await? == ctx.token {
                    return Ok(());
                }
                if ctx.remaining() < interval {
                    return Err(PluginError::DeadlineExceeded);
                }
                tokio::time::sleep(interval).await;
            }
        })
    }

    fn test<'a>(&'a self, ctx: &'a StepContext) -> StepFuture<'a, ()> {
        Box::pin(async move {
            let current = Self::current_version(ctx).await?;
            if current == ctx.token {
                Ok(())
            } else {
                Err(PluginError::failed(format!(
                    "ACSCurrent is version {current:?}, not the rotation's {:?}",
                    ctx.token
                )))
            }
        })
    }
}

/// The read-only check of a managed secret's target a dry run makes: what
/// `RotateSecret` would check first, through the target's own API (ECS
/// `DescribeInstances`, RDS `DescribeDBInstanceAttribute`, RAM `GetUser`,
/// Redis `DescribeInstanceAttribute`, PolarDB `DescribeDBClusterAttribute`).
/// `Err` says why the rotation would fail.
pub async fn probe_target(api: &rota_kms::OpenApi, info: &SecretInfo) -> Result<(), String> {
    let ext = info.extended_config.clone().unwrap_or_default();
    let field = |k: &str| {
        ext.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let failed = |what: &str, e: rota_kms::Error| {
        if e.code() == Some("InvalidVersion") {
            format!(
                "{what}: this cloud does not serve that product's API, so it cannot rotate the secret (the embedded local cloud emulates ECS, RDS and RAM, not Redis or PolarDB): {e}"
            )
        } else {
            format!("{what}: {e}")
        }
    };
    match info.secret_type.as_str() {
        "ECS" => {
            let id = field("InstanceId");
            let region = field("RegionId");
            let ids = serde_json::json!([id]).to_string();
            let mut params = vec![("InstanceIds", ids)];
            if !region.is_empty() {
                params.push(("RegionId", region));
            }
            let r = api
                .call("ecs", "", "DescribeInstances", params)
                .await
                .map_err(|e| failed("DescribeInstances", e))?;
            let instances = r["Instances"]["Instance"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let Some(instance) = instances.first() else {
                return Err(format!(
                    "ECS instance {id:?} does not exist (InstanceNotExists)"
                ));
            };
            let os = instance["OSType"].as_str().unwrap_or_default();
            if field("SecretSubType") == "SSHKey" && os.eq_ignore_ascii_case("windows") {
                return Err(format!(
                    "ECS instance {id:?} runs Windows: SSH key rotation needs a Linux instance (CommandNotApplicable)"
                ));
            }
            Ok(())
        }
        "Rds" => {
            let id = field("DBInstanceId");
            api.call(
                "rds",
                "",
                "DescribeDBInstanceAttribute",
                [("DBInstanceId", id.as_str())],
            )
            .await
            .map(drop)
            .map_err(|e| failed(&format!("RDS instance {id:?}"), e))
        }
        "RAMCredentials" => {
            let user = field("UserName");
            api.call("ram", "", "GetUser", [("UserName", user.as_str())])
                .await
                .map(drop)
                .map_err(|e| failed(&format!("RAM user {user:?}"), e))
        }
        "Redis" => {
            let id = field("InstanceId");
            api.call(
                "r-kvstore",
                REDIS_VERSION,
                "DescribeInstanceAttribute",
                [("InstanceId", id.as_str())],
            )
            .await
            .map(drop)
            .map_err(|e| failed(&format!("Redis instance {id:?}"), e))
        }
        "PolarDB" => {
            let id = field("DBClusterId");
            api.call(
                "polardb",
                POLARDB_VERSION,
                "DescribeDBClusterAttribute",
                [("DBClusterId", id.as_str())],
            )
            .await
            .map(drop)
            .map_err(|e| failed(&format!("PolarDB cluster {id:?}"), e))
        }
        other => Err(format!("{other} secrets have no managed rotation")),
    }
}

/// The R-KVStore (Redis) API version.
const REDIS_VERSION: &str = "2015-01-01";
/// The PolarDB API version.
const POLARDB_VERSION: &str = "2017-08-01";

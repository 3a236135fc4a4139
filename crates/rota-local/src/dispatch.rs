//! The one dispatcher behind both the HTTP server and the in-process
//! transport: `(caller, Version, Action, params)` → response object or
//! [`ServiceError`].
//!
//! Routing is by `Version`: `2016-01-20` is KMS, `2014-05-26` ECS (Cloud
//! Assistant), `2014-08-15` RDS, `2015-05-01` RAM (see
//! [`crate::targets`]) and `2015-04-01` STS. An unknown action of a known
//! product answers `InvalidAction.NotFound`; any other version answers
//! `InvalidVersion`. A caller bound by identity policies (temporary
//! credentials) is checked against them before anything else
//! (`<product>:<Action>` on the secret's or key's ARN, else `*`).
//!
//! The response object has no `RequestId`; the caller adds it (the server
//! and the transport each mint one).

use std::sync::Arc;

use serde_json::Value;
use tracing::Instrument as _;

use crate::auth::Caller;
use crate::engine::Engine;
use crate::errors::ServiceError;
use crate::params::Params;

pub use rota_kms::transport::version::{
    ECS as ECS_VERSION, KMS as KMS_VERSION, RAM as RAM_VERSION, RDS as RDS_VERSION,
};

/// Routes requests to the engine.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    engine: Arc<Engine>,
}

impl Dispatcher {
    pub(crate) fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }

    /// Answers one request.
    pub async fn dispatch(
        &self,
        caller: &Caller,
        version: &str,
        action: &str,
        params: &Params,
    ) -> Result<Value, ServiceError> {
        let product = match version {
            KMS_VERSION => "kms",
            ECS_VERSION => "ecs",
            RDS_VERSION => "rds",
            RAM_VERSION => "ram",
            crate::engine::sts::STS_VERSION => "sts",
            "" => return Err(ServiceError::missing("Version")),
            other => {
                return Err(ServiceError::InvalidVersion {
                    version: other.to_owned(),
                });
            }
        };
        if action.is_empty() {
            return Err(ServiceError::missing("Action"));
        }
        self.permitted(caller, product, action, params)?;
        let span =
            tracing::debug_span!("kms.dispatch", api.product = product, kms.action = %action);
        let result = match product {
            "ecs" => self.ecs(caller, action, params).instrument(span).await,
            "rds" => self.rds(caller, action, params).instrument(span).await,
            "ram" => self.ram(caller, action, params).instrument(span).await,
            "sts" => self.sts(caller, action, params),
            _ => self.kms(caller, action, params).instrument(span).await,
        };
        if let Err(e) = &result {
            tracing::debug!(kms.action = %action, code = e.code(), "action failed");
        }
        result
    }

    /// GetSecretValue, the call applications make most, answered at once
    /// as the JSON text of its answer with `RequestId`, written from the
    /// stored secret without an intermediate `Value` (the HTTP server's
    /// fast path, nothing to await); `None` for every other request.
    pub fn json_now(
        &self,
        caller: &Caller,
        version: &str,
        action: &str,
        params: &Params,
        request_id: &str,
    ) -> Option<Result<Vec<u8>, ServiceError>> {
        if version != KMS_VERSION || action != "GetSecretValue" {
            return None;
        }
        if let Err(e) = self.permitted(caller, "kms", action, params) {
            return Some(Err(e));
        }
        let _span = tracing::debug_span!("kms.dispatch", api.product = "kms", kms.action = %action)
            .entered();
        Some(
            self.engine
                .get_secret_value_json(caller, params, request_id)
                .inspect_err(|e| {
                    tracing::debug!(kms.action = %action, code = e.code(), "action failed");
                }),
        )
    }

    /// Answers one request as the JSON text of its answer with `RequestId`
    /// (the HTTP server's path): [`Self::json_now`] where it answers, else
    /// [`Self::dispatch`].
    pub async fn dispatch_json(
        &self,
        caller: &Caller,
        version: &str,
        action: &str,
        params: &Params,
        request_id: &str,
    ) -> Result<Vec<u8>, ServiceError> {
        if let Some(answer) = self.json_now(caller, version, action, params, request_id) {
            return answer;
        }
        let v = self.dispatch(caller, version, action, params).await?;
        serde_json::to_vec(&with_request_id(v, request_id))
            .map_err(|_| ServiceError::internal("an answer did not serialize"))
    }

    async fn kms(&self, caller: &Caller, action: &str, p: &Params) -> Result<Value, ServiceError> {
        let e = &*self.engine;
        match action {
            "CreateSecret" => e.create_secret(caller, p).await,
            "GetSecretValue" => e.get_secret_value(caller, p),
            "BatchGetSecretValue" => e.batch_get_secret_value(caller, p),
            "PutSecretValue" => e.put_secret_value(caller, p).await,
            "UpdateSecretVersionStage" => e.update_secret_version_stage(caller, p).await,
            "DescribeSecret" => e.describe_secret(caller, p),
            "ListSecrets" => e.list_secrets(p),
            "ListSecretVersionIds" => e.list_secret_version_ids(caller, p),
            "UpdateSecret" => e.update_secret(caller, p).await,
            "UpdateSecretRotationPolicy" => e.update_secret_rotation_policy(caller, p).await,
            "RotateSecret" => e.rotate_secret(caller, p).await,
            "DeleteSecret" => e.delete_secret(caller, p).await,
            "RestoreSecret" => e.restore_secret(caller, p).await,
            "SetSecretPolicy" => e.set_secret_policy(caller, p).await,
            "GetSecretPolicy" => e.get_secret_policy(caller, p),
            "TagResource" => e.tag_resource(caller, p).await,
            "UntagResource" => e.untag_resource(caller, p).await,
            "TagResources" => e.tag_resources(caller, p).await,
            "UntagResources" => e.untag_resources(caller, p).await,
            "ListTagResources" => e.list_tag_resources(p),
            "ListResourceTags" => e.list_resource_tags(p),
            "GetRandomPassword" => e.get_random_password(p),
            "DescribeRegions" => Ok(e.describe_regions()),
            "CreateKey" => e.create_key(caller, p).await,
            "DescribeKey" => e.describe_key(p),
            "ListKeys" => e.list_keys(p),
            "DisableKey" => e.disable_key(p).await,
            "EnableKey" => e.enable_key(p).await,
            "ScheduleKeyDeletion" => e.schedule_key_deletion(p).await,
            "CancelKeyDeletion" => e.cancel_key_deletion(p).await,
            other => Err(ServiceError::ActionNotFound {
                action: other.to_owned(),
                detail: None,
            }),
        }
    }
}

impl Dispatcher {
    /// Whether `caller`'s identity policies (temporary credentials) allow
    /// `product:action` on the resource the request names.
    fn permitted(
        &self,
        caller: &Caller,
        product: &str,
        action: &str,
        params: &Params,
    ) -> Result<(), ServiceError> {
        if caller.policies.is_empty() {
            return Ok(());
        }
        let world = &self.engine.world;
        let resource = if product != "kms" {
            "*".to_owned()
        } else if let Some(name) = params.opt("SecretName") {
            if name.starts_with("acs:kms:") {
                name.to_owned()
            } else {
                world.secret_arn(name)
            }
        } else if let Some(key) = params.opt("KeyId") {
            if key.starts_with("acs:kms:") {
                key.to_owned()
            } else {
                world.key_arn(key)
            }
        } else {
            "*".to_owned()
        };
        let full = format!("{product}:{action}");
        if caller.permitted(&full, &resource) {
            Ok(())
        } else {
            Err(ServiceError::NotPermittedBySession {
                action: full,
                principal: caller.principal.clone(),
            })
        }
    }

    fn sts(&self, caller: &Caller, action: &str, p: &Params) -> Result<Value, ServiceError> {
        let e = &*self.engine;
        match action {
            "AssumeRole" => e.assume_role(caller, p),
            "GetCallerIdentity" => Ok(e.get_caller_identity(caller)),
            other => Err(not_found(other, "STS")),
        }
    }

    async fn ecs(&self, caller: &Caller, action: &str, p: &Params) -> Result<Value, ServiceError> {
        let e = &*self.engine;
        match action {
            "RunCommand" => e.ecs_run_command(caller, p).await,
            "InvokeCommand" => e.ecs_invoke_command(caller, p).await,
            "CreateCommand" => e.ecs_create_command(caller, p).await,
            "DescribeInvocations" => e.ecs_describe_invocations(p).await,
            "DescribeInvocationResults" => e.ecs_describe_invocation_results(p).await,
            "DescribeInstances" => e.ecs_describe_instances(p).await,
            other => Err(not_found(other, "ECS")),
        }
    }

    async fn rds(&self, caller: &Caller, action: &str, p: &Params) -> Result<Value, ServiceError> {
        let e = &*self.engine;
        match action {
            "DescribeDBInstanceAttribute" => e.rds_describe_instance(p).await,
            "DescribeAccounts" => e.rds_describe_accounts(p).await,
            "CreateAccount" => e.rds_create_account(caller, p).await,
            "ResetAccountPassword" => e.rds_reset_password(caller, p).await,
            "GrantAccountPrivilege" => e.rds_grant(caller, p).await,
            other => Err(not_found(other, "RDS")),
        }
    }

    async fn ram(&self, caller: &Caller, action: &str, p: &Params) -> Result<Value, ServiceError> {
        let e = &*self.engine;
        match action {
            "GetUser" => e.ram_get_user(p).await,
            "CreateAccessKey" => e.ram_create_access_key(caller, p).await,
            "ListAccessKeys" => e.ram_list_access_keys(p).await,
            "UpdateAccessKey" => e.ram_update_access_key(caller, p).await,
            "DeleteAccessKey" => e.ram_delete_access_key(caller, p).await,
            other => Err(not_found(other, "RAM")),
        }
    }
}

fn not_found(action: &str, product: &str) -> ServiceError {
    ServiceError::ActionNotFound {
        action: action.to_owned(),
        detail: Some(format!("the local world's {product} does not emulate it")),
    }
}

/// A fresh request id: random hex in the 8-4-4-4-12 layout, upper-case.
pub fn new_request_id() -> String {
    RequestId::new().as_str().to_owned()
}

/// A request id on the stack: 8-4-4-4-12 upper-case hex digits of 16
/// random bytes.
#[derive(Clone, Copy)]
pub(crate) struct RequestId([u8; 36]);

impl RequestId {
    pub(crate) fn new() -> Self {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let b: [u8; 16] = rand::random();
        let mut out = [b'-'; 36];
        let mut at = 0;
        for (i, byte) in b.iter().enumerate() {
            // A dash before bytes 4, 6, 8 and 10 (already in place).
            if matches!(i, 4 | 6 | 8 | 10) {
                at += 1;
            }
            out[at] = HEX[usize::from(byte >> 4)];
            out[at + 1] = HEX[usize::from(byte & 0xf)];
            at += 2;
        }
        Self(out)
    }

    pub(crate) fn as_str(&self) -> &str {
        // Hex digits and dashes: always ASCII.
        std::str::from_utf8(&self.0).unwrap_or("00000000-0000-0000-0000-000000000000")
    }
}

/// Adds `RequestId` to a success object.
pub(crate) fn with_request_id(mut v: Value, request_id: &str) -> Value {
    if let Value::Object(m) = &mut v {
        m.insert("RequestId".into(), Value::String(request_id.to_owned()));
    }
    v
}

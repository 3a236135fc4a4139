//! A loaded native plugin as the engine sees it: its descriptor translated
//! into the engine's types, the step payloads, the blocking-thread calls
//! with the step's deadline, and the capability-checked OpenAPI callback.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rota_plugin_abi::{Descriptor, Status, status};
use rota_rotation::plugin::StepFuture;
use rota_rotation::{
    PluginDescriptor, PluginError, RotationPlugin, SecretString, SettingField, SettingKind,
    SettingsSchema, StepContext, StepSet,
};
use serde_json::{Value, json};

use crate::LoadError;
use crate::ffi::{Answer, ApiFn, CallCtx, StepKind, Table};

/// A native plugin whose library passed the handshake and described itself.
pub struct LoadedPlugin {
    table: Table,
    path: PathBuf,
    sha256: String,
    descriptor: PluginDescriptor,
    capabilities: Arc<Vec<String>>,
    name: Arc<str>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.descriptor.name)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn describe_error(path: &Path, reason: impl Into<String>) -> LoadError {
    LoadError::Describe {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

impl LoadedPlugin {
    pub(crate) fn new(table: Table, path: PathBuf, sha256: String) -> Result<Self, LoadError> {
        let answer = table.describe();
        if answer.status != status::OK {
            return Err(describe_error(
                &path,
                format!("describe returned status {}", answer.status),
            ));
        }
        let d: Descriptor = serde_json::from_slice(&answer.out)
            .map_err(|e| describe_error(&path, e.to_string()))?;
        if d.name.trim().is_empty() {
            return Err(describe_error(&path, "the plugin has no name"));
        }
        let fields = d
            .settings
            .iter()
            .map(|s| {
                let kind = SettingKind::parse(&s.kind).ok_or_else(|| {
                    describe_error(
                        &path,
                        format!("setting {:?} has unknown kind {:?}", s.name, s.kind),
                    )
                })?;
                Ok(SettingField {
                    name: s.name.clone(),
                    kind,
                    default: s.default.clone(),
                    allowed: s.allowed.clone(),
                    description: s.description.clone(),
                })
            })
            .collect::<Result<Vec<_>, LoadError>>()?;
        let descriptor = PluginDescriptor {
            name: d.name.clone(),
            version: d.version.clone(),
            description: d.description.clone(),
            secret_types: d.secret_types.clone(),
            settings: SettingsSchema::new(fields),
            origin: format!("native: {}", path.display()),
            // A step the descriptor claims but the table leaves NULL is
            // not there.
            steps: StepSet {
                generate: d.steps.generate && table.has(StepKind::Generate),
                finish: d.steps.finish && table.has(StepKind::Finish),
                rollback: d.steps.rollback && table.has(StepKind::Rollback),
                // ABI 1.1: a table that carries verify implements it.
                verify: table.has(StepKind::Verify),
            },
        };
        Ok(Self {
            table,
            name: d.name.as_str().into(),
            capabilities: Arc::new(
                d.capabilities
                    .iter()
                    .map(|c| c.to_ascii_lowercase())
                    .collect(),
            ),
            path,
            sha256,
            descriptor,
        })
    }

    /// The library file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The library's SHA-256 (hex), for `plugin.toml` pins.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The `Product:Action` pairs the plugin may call.
    pub fn capabilities(&self) -> &[String] {
        &self.capabilities
    }

    /// Calls a step synchronously on this thread with a raw JSON `input`
    /// (no deadline, no OpenAPI): the low-level path benchmarks and ABI
    /// tests use. Returns the step's output JSON.
    pub fn invoke(&self, step: StepKind, input: &[u8]) -> Result<Vec<u8>, PluginError> {
        let answer = self.table.step(step, None, input);
        into_result(step, answer)
    }

    /// Runs `step` on a blocking thread until `ctx.deadline`.
    async fn run(&self, step: StepKind, ctx: &StepContext) -> Result<Vec<u8>, PluginError> {
        let input = payload(step, ctx);
        let handle = tokio::runtime::Handle::current();
        let api = ctx.api.clone();
        let deadline = ctx.deadline;
        let api_fn: ApiFn = Arc::new(move |product, version, action, params| {
            let call = api.call(product, version, action, params);
            match handle.block_on(tokio::time::timeout_at(deadline, call)) {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("the call did not finish before the step's deadline".into()),
            }
        });
        let call = CallCtx {
            deadline: ctx.deadline.into_std(),
            api: Some(api_fn),
            capabilities: self.capabilities.clone(),
            plugin: self.name.clone(),
            span: ctx.span.clone(),
        };
        let table = self.table;
        let job = tokio::task::spawn_blocking(move || table.step(step, Some(&call), &input));
        match tokio::time::timeout_at(ctx.deadline, job).await {
            Ok(Ok(answer)) => into_result(step, answer),
            Ok(Err(e)) => Err(PluginError::failed(format!(
                "the plugin's {} thread failed: {e}",
                step.name()
            ))),
            Err(_) => {
                // A native call cannot be cancelled: its thread runs on and
                // its answer is dropped when it returns.
                ctx.span.in_scope(|| {
                    tracing::warn!(
                        plugin.name = %self.name,
                        rotation.step = step.name(),
                        "native plugin overran its deadline; its result will be ignored"
                    );
                });
                Err(PluginError::DeadlineExceeded)
            }
        }
    }
}

fn into_result(step: StepKind, answer: Answer) -> Result<Vec<u8>, PluginError> {
    let message = || {
        let m = String::from_utf8_lossy(&answer.err).into_owned();
        if m.is_empty() {
            format!("{} failed without a message", step.name())
        } else {
            m
        }
    };
    match answer.status {
        status::OK => Ok(answer.out),
        status::FAILED => Err(PluginError::failed(message())),
        status::PERMANENT | status::BAD_INPUT | status::PANICKED => {
            Err(PluginError::permanent(message()))
        }
        status::UNSUPPORTED => Err(PluginError::Unsupported(step.name())),
        status::DEADLINE => Err(PluginError::DeadlineExceeded),
        other => Err(PluginError::failed(format!(
            "{} returned unknown status {other}: {}",
            step.name(),
            message()
        ))),
    }
}

/// The step input payload. It carries secret values: never log it.
fn payload(step: StepKind, ctx: &StepContext) -> Vec<u8> {
    let s = &ctx.secret;
    json!({
        "step": step.name(),
        "secret": {
            "name": s.name,
            "type": s.secret_type,
            "description": s.description,
            "tags": s.tags,
            "extended_config": s.extended_config,
        },
        "token": ctx.token,
        "pending": ctx.pending.as_ref().map(|v| v.expose_secret()),
        "current": ctx.current.as_ref().map(|v| v.expose_secret()),
        "previous": ctx.previous.as_ref().map(|v| v.expose_secret()),
        "settings": &*ctx.settings,
    })
    .to_string()
    .into_bytes()
}

/// The host side of `call_api`: decode, check the capability, call.
pub(crate) fn call_api(ctx: Option<&CallCtx>, req: &[u8]) -> (Status, Vec<u8>) {
    let fail = |code: Status, msg: String| (code, msg.into_bytes());
    let Some(ctx) = ctx else {
        return fail(status::FAILED, "call_api outside a step".into());
    };
    let Ok(req) = serde_json::from_slice::<Value>(req) else {
        return fail(
            status::BAD_INPUT,
            "call_api: the request is not JSON".into(),
        );
    };
    let field = |k: &str| req.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let (product, version, action) = (field("product"), field("version"), field("action"));
    let wanted = format!("{product}:{action}").to_ascii_lowercase();
    if !ctx.capabilities.contains(&wanted) {
        ctx.span.in_scope(|| {
            tracing::warn!(plugin.name = %ctx.plugin, api.product = %product, api.action = %action, "native plugin called an undeclared API");
        });
        return fail(
            status::DENIED,
            format!("{product}:{action} is not among the plugin's declared capabilities"),
        );
    }
    if Instant::now() >= ctx.deadline {
        return fail(status::DEADLINE, "the step's deadline has passed".into());
    }
    let Some(api) = &ctx.api else {
        return fail(status::FAILED, "no OpenAPI backend in this call".into());
    };
    let params: Vec<(String, String)> = req
        .get("params")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default();
    match api(&product, &version, &action, params) {
        Ok(v) => (status::OK, v.to_string().into_bytes()),
        Err(e) => fail(status::FAILED, format!("{product}:{action}: {e}")),
    }
}

impl RotationPlugin for LoadedPlugin {
    fn descriptor(&self) -> &PluginDescriptor {
        &self.descriptor
    }

    fn generate<'a>(&'a self, ctx: &'a StepContext) -> StepFuture<'a, Option<SecretString>> {
        Box::pin(async move {
            if !self.descriptor.steps.generate {
                return Ok(None);
            }
            let out = self.run(StepKind::Generate, ctx).await?;
            let v: Value = serde_json::from_slice(&out).map_err(|e| {
                PluginError::permanent(format!("generate answered malformed JSON: {e}"))
            })?;
            match v.get("value") {
                Some(Value::String(s)) => Ok(Some(s.clone().into())),
                Some(Value::Null) | None => Ok(None),
                Some(_) => Err(PluginError::permanent(
                    "generate answered a value that is not a string",
                )),
            }
        })
    }

    fn set<'a>(&'a self, ctx: &'a StepContext) -> StepFuture<'a, ()> {
        Box::pin(async move { self.run(StepKind::Set, ctx).await.map(drop) })
    }

    fn test<'a>(&'a self, ctx: &'a StepContext) -> StepFuture<'a, ()> {
        Box::pin(async move { self.run(StepKind::Test, ctx).await.map(drop) })
    }

    fn finish<'a>(&'a self, ctx: &'a StepContext) -> StepFuture<'a, ()> {
        Box::pin(async move {
            if !self.descriptor.steps.finish {
                return Ok(());
            }
            self.run(StepKind::Finish, ctx).await.map(drop)
        })
    }

    fn rollback<'a>(&'a self, ctx: &'a StepContext) -> StepFuture<'a, ()> {
        Box::pin(async move {
            if !self.descriptor.steps.rollback {
                return Err(PluginError::Unsupported("rollback"));
            }
            self.run(StepKind::Rollback, ctx).await.map(drop)
        })
    }

    fn verify<'a>(&'a self, ctx: &'a StepContext) -> StepFuture<'a, ()> {
        Box::pin(async move {
            if !self.descriptor.steps.verify {
                return Err(PluginError::Unsupported("verify"));
            }
            self.run(StepKind::Verify, ctx).await.map(drop)
        })
    }
}

//! The plugin contract: what a rotation plugin is, what each step receives,
//! and the registry the engine resolves plugin names in.
//!
//! A plugin has a name, the secret types it handles, a settings schema it
//! validates at load time, and the steps `generate` (optional: a new
//! candidate value), `set` (make the target accept the pending value —
//! probing first whether it already does), `test` (prove the pending value
//! works; read-only), `finish` (optional work after promotion) and `rollback`
//! (optional: put the target back on the current value). Rhai plugins
//! (rota-script), native plugins (rota-plugin-host) and the built-in ones
//! implement [`RotationPlugin`]; the engine never knows which kind it runs.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use rota_kms::{BoxFuture, KmsClient, OpenApi, SecretString};
use serde_json::Value;
use tokio::time::Instant;

use super::crash::{CrashHook, CrashPoint};
use super::settings::SettingsSchema;

/// How a plugin rotates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Rota's four-step protocol: the engine writes the pending version and
    /// promotes it; the plugin changes and checks the target.
    Protocol,
    /// The cloud rotates the secret itself (`RotateSecret`); the engine waits
    /// for the new version and runs the plugin's `test` as verification.
    Managed,
}

/// What a plugin says about itself.
#[derive(Debug, Clone)]
pub struct PluginDescriptor {
    /// Unique name, as configurations refer to it.
    pub name: String,
    /// Version string.
    pub version: String,
    /// One-line description.
    pub description: String,
    /// Secret types it handles (`Generic`, `ECS`, …); empty means any.
    pub secret_types: Vec<String>,
    /// Its settings.
    pub settings: SettingsSchema,
    /// Where it comes from (`built-in`, `rhai: plugins/x/hooks.rhai`, `native: …`).
    pub origin: String,
    /// Which optional steps it implements.
    pub steps: StepSet,
}

/// Which optional steps a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StepSet {
    /// `generate`.
    pub generate: bool,
    /// `finish`.
    pub finish: bool,
    /// `rollback`.
    pub rollback: bool,
    /// `verify` (checked while a verified rotation soaks).
    pub verify: bool,
}

/// A secret as a step sees it.
#[derive(Debug, Clone, Default)]
pub struct SecretInfo {
    /// Name.
    pub name: String,
    /// Type (`Generic`, `ECS`, …).
    pub secret_type: String,
    /// Parsed ExtendedConfig (managed types), if any.
    pub extended_config: Option<Value>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Description.
    pub description: String,
}

/// Everything a step receives.
#[derive(Clone)]
pub struct StepContext {
    /// The secret.
    pub secret: SecretInfo,
    /// The rotation's token: the pending version's `VersionId`.
    pub token: String,
    /// The candidate value (absent while generating).
    pub pending: Option<SecretString>,
    /// The ACSCurrent value.
    pub current: Option<SecretString>,
    /// The ACSPrevious value, if any.
    pub previous: Option<SecretString>,
    /// The plugin's validated settings (defaults filled in).
    pub settings: Arc<Value>,
    /// Signed OpenAPI calls (ECS, RDS, RAM, …) on the configured backend.
    pub api: OpenApi,
    /// The KMS client on the configured backend.
    pub kms: KmsClient,
    /// When the step must be done.
    pub deadline: Instant,
    /// Named points where tests abort the process (see [`CrashPoint`]).
    pub crash: CrashHook,
    /// The step's tracing span: plugins log through it.
    pub span: tracing::Span,
}

impl fmt::Debug for StepContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepContext")
            .field("secret", &self.secret.name)
            .field("token", &self.token)
            .field("pending", &self.pending)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl StepContext {
    /// Marks a named point: aborts the process there when a test asked for it.
    pub fn checkpoint(&self, point: CrashPoint) {
        self.crash.reach(point);
    }

    /// The pending value, or an error naming the step that needed it.
    pub fn pending_value(&self) -> Result<&SecretString, PluginError> {
        self.pending
            .as_ref()
            .ok_or_else(|| PluginError::failed("no pending value in this step"))
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> std::time::Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// How a step failed. Messages are written to history and logs: they must
/// never contain secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The step failed; retrying may help.
    #[error("{0}")]
    Failed(String),
    /// The step failed in a way retrying will not fix (bad settings, wrong secret type).
    #[error("{0}")]
    Permanent(String),
    /// The step ran past its deadline.
    #[error("the step did not finish before its deadline")]
    DeadlineExceeded,
    /// The plugin does not implement this optional step.
    #[error("the plugin has no {0} step")]
    Unsupported(&'static str),
}

impl PluginError {
    /// A retryable failure.
    pub fn failed(msg: impl Into<String>) -> Self {
        Self::Failed(msg.into())
    }

    /// A permanent failure.
    pub fn permanent(msg: impl Into<String>) -> Self {
        Self::Permanent(msg.into())
    }

    /// Whether retrying may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Failed(_) | Self::DeadlineExceeded)
    }
}

/// A step's future.
pub type StepFuture<'a, T> = BoxFuture<'a, Result<T, PluginError>>;

/// A rotation plugin.
pub trait RotationPlugin: Send + Sync + fmt::Debug {
    /// Name, types, settings schema and implemented steps.
    fn descriptor(&self) -> &PluginDescriptor;

    /// Plugin-specific checks of settings the schema accepted (ranges,
    /// combinations). Runs at load time, through [`PluginRegistry::resolve`].
    fn validate_settings(&self, _settings: &Value) -> Result<(), super::settings::SettingsError> {
        Ok(())
    }

    /// Protocol (default) or managed rotation.
    fn strategy(&self) -> Strategy {
        Strategy::Protocol
    }

    /// A new candidate value; `None` lets the engine use its password policy.
    fn generate<'a>(&'a self, _ctx: &'a StepContext) -> StepFuture<'a, Option<SecretString>> {
        Box::pin(async { Ok(None) })
    }

    /// Makes the target accept `ctx.pending`. Must probe first (does the
    /// pending value already work?) and only then act, so that it can be
    /// re-run after a crash.
    fn set<'a>(&'a self, ctx: &'a StepContext) -> StepFuture<'a, ()>;

    /// Proves `ctx.pending` works against the target. Read-only.
    fn test<'a>(&'a self, ctx: &'a StepContext) -> StepFuture<'a, ()>;

    /// Extra work after promotion (e.g. retiring an old key). Must be idempotent.
    fn finish<'a>(&'a self, _ctx: &'a StepContext) -> StepFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }

    /// Puts the target back on `ctx.current`.
    fn rollback<'a>(&'a self, _ctx: &'a StepContext) -> StepFuture<'a, ()> {
        Box::pin(async { Err(PluginError::Unsupported("rollback")) })
    }

    /// While a verified rotation soaks, proves the consumers still work with
    /// `ctx.current` (the new value). Read-only; an error fails the check.
    fn verify<'a>(&'a self, _ctx: &'a StepContext) -> StepFuture<'a, ()> {
        Box::pin(async { Err(PluginError::Unsupported("verify")) })
    }
}

/// Error resolving or configuring a plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// No plugin has that name.
    #[error("unknown rotation plugin {name:?}; available: {available}")]
    Unknown {
        /// Requested name.
        name: String,
        /// Registered names.
        available: String,
    },
    /// Two plugins share a name.
    #[error("rotation plugin {name:?} is registered twice ({first} and {second})")]
    Duplicate {
        /// Name.
        name: String,
        /// First origin.
        first: String,
        /// Second origin.
        second: String,
    },
    /// The plugin does not handle the secret's type.
    #[error("rotation plugin {plugin:?} handles secret types {allowed}, not {secret_type:?}")]
    WrongType {
        /// Plugin.
        plugin: String,
        /// The secret's type.
        secret_type: String,
        /// What it handles.
        allowed: String,
    },
    /// Settings failed the schema.
    #[error("rotation plugin {plugin:?}: {source}")]
    Settings {
        /// Plugin.
        plugin: String,
        /// What is wrong.
        #[source]
        source: super::settings::SettingsError,
    },
}

/// The plugins the engine can run, by name.
#[derive(Debug, Clone, Default)]
pub struct PluginRegistry {
    plugins: BTreeMap<String, Arc<dyn RotationPlugin>>,
}

impl PluginRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in plugins (`password`, `managed`).
    pub fn with_builtins() -> Self {
        let mut r = Self::new();
        r.register(Arc::new(super::password::PasswordPlugin::new()))
            .expect("built-in names are unique");
        r.register(Arc::new(super::managed::ManagedPlugin::new()))
            .expect("built-in names are unique");
        r
    }

    /// Adds a plugin; a second plugin with the same name is refused.
    pub fn register(&mut self, plugin: Arc<dyn RotationPlugin>) -> Result<(), RegistryError> {
        let name = plugin.descriptor().name.clone();
        if let Some(existing) = self.plugins.get(&name) {
            return Err(RegistryError::Duplicate {
                name,
                first: existing.descriptor().origin.clone(),
                second: plugin.descriptor().origin.clone(),
            });
        }
        self.plugins.insert(name, plugin);
        Ok(())
    }

    /// Looks a plugin up.
    pub fn get(&self, name: &str) -> Result<Arc<dyn RotationPlugin>, RegistryError> {
        self.plugins
            .get(name)
            .cloned()
            .ok_or_else(|| RegistryError::Unknown {
                name: name.to_owned(),
                available: self.plugins.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    /// Every plugin, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn RotationPlugin>> {
        self.plugins.values()
    }

    /// Resolves `name` for a secret of `secret_type` and validates `settings`
    /// against its schema, returning the plugin and the settings with
    /// defaults filled in.
    pub fn resolve(
        &self,
        name: &str,
        secret_type: &str,
        settings: &Value,
    ) -> Result<(Arc<dyn RotationPlugin>, Value), RegistryError> {
        let plugin = self.get(name)?;
        let d = plugin.descriptor();
        if !d.secret_types.is_empty()
            && !d
                .secret_types
                .iter()
                .any(|t| t.eq_ignore_ascii_case(secret_type))
        {
            return Err(RegistryError::WrongType {
                plugin: d.name.clone(),
                secret_type: secret_type.to_owned(),
                allowed: d.secret_types.join(", "),
            });
        }
        let settings = d
            .settings
            .validate(settings)
            .map_err(|source| RegistryError::Settings {
                plugin: d.name.clone(),
                source,
            })?;
        plugin
            .validate_settings(&settings)
            .map_err(|source| RegistryError::Settings {
                plugin: d.name.clone(),
                source,
            })?;
        Ok((plugin, settings))
    }
}

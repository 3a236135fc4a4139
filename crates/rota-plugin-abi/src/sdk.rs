//! The safe side of the ABI: the types a Rust plugin author works with —
//! the [`NativePlugin`] trait, the descriptor, the decoded step input with
//! its values wrapped in [`Secret`], and step errors.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::ffi::Host;

/// A secret value received from (or returned to) Rota. `Debug` prints
/// `***`; there is no `Display` and no `Serialize`: reading it is the
/// greppable [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

/// Log levels of [`Host::log`] (the numbers cross the ABI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Level {
    /// Error.
    Error = 1,
    /// Warning.
    Warn = 2,
    /// Lifecycle information.
    Info = 3,
    /// Protocol detail.
    Debug = 4,
    /// Wire detail.
    Trace = 5,
}

/// What a plugin says about itself (the `describe` payload).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Descriptor {
    /// Unique name, as configurations refer to it.
    pub name: String,
    /// Version string.
    pub version: String,
    /// One-line description.
    #[serde(default)]
    pub description: String,
    /// Secret types it handles (`Generic`, `ECS`, …); empty means any.
    #[serde(default)]
    pub secret_types: Vec<String>,
    /// Its settings.
    #[serde(default)]
    pub settings: Vec<Setting>,
    /// Which optional steps it implements.
    #[serde(default)]
    pub steps: Steps,
    /// `Product:Action` pairs it may call through [`Host::call_api`].
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// One setting of a plugin's schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Setting {
    /// Name.
    pub name: String,
    /// `string`, `integer`, `bool`, `string_list` or `object`.
    pub kind: String,
    /// Default; a setting without one is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Allowed values (strings only), if restricted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed: Vec<String>,
    /// What it does.
    #[serde(default)]
    pub description: String,
}

impl Setting {
    /// An optional setting with a default.
    pub fn optional(name: &str, kind: &str, default: Value, description: &str) -> Self {
        Self {
            name: name.into(),
            kind: kind.into(),
            default: Some(default),
            allowed: Vec::new(),
            description: description.into(),
        }
    }

    /// A required setting.
    pub fn required(name: &str, kind: &str, description: &str) -> Self {
        Self {
            name: name.into(),
            kind: kind.into(),
            default: None,
            allowed: Vec::new(),
            description: description.into(),
        }
    }

    /// Restricts a string setting to `values`.
    pub fn one_of(mut self, values: &[&str]) -> Self {
        self.allowed = values.iter().map(|v| (*v).to_owned()).collect();
        self
    }
}

/// Which optional steps a plugin implements (`set` and `test` always are).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Steps {
    /// `generate`.
    #[serde(default)]
    pub generate: bool,
    /// `finish`.
    #[serde(default)]
    pub finish: bool,
    /// `rollback`.
    #[serde(default)]
    pub rollback: bool,
}

/// The secret a step works on.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SecretMeta {
    /// Name.
    pub name: String,
    /// Type (`Generic`, `ECS`, …).
    #[serde(rename = "type", default)]
    pub secret_type: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Parsed ExtendedConfig of managed types, if any.
    #[serde(default)]
    pub extended_config: Option<Value>,
}

/// Everything a step receives (the step input payload, decoded).
#[derive(Debug, Clone, Deserialize)]
pub struct StepInput {
    /// The step's name (`generate`, `set`, `test`, `finish`, `rollback`).
    pub step: String,
    /// The secret.
    pub secret: SecretMeta,
    /// The rotation's token: the pending version's `VersionId`.
    pub token: String,
    /// The candidate value (absent while generating).
    #[serde(default)]
    pub pending: Option<Secret>,
    /// The ACSCurrent value.
    #[serde(default)]
    pub current: Option<Secret>,
    /// The ACSPrevious value.
    #[serde(default)]
    pub previous: Option<Secret>,
    /// The validated settings, defaults filled in.
    #[serde(default)]
    pub settings: Value,
}

impl StepInput {
    /// The pending value, or an error saying the step needed one.
    pub fn pending(&self) -> Result<&Secret, StepError> {
        self.pending
            .as_ref()
            .ok_or_else(|| StepError::Permanent(format!("no pending value in {}", self.step)))
    }

    /// A string setting.
    pub fn setting_str(&self, name: &str) -> Option<&str> {
        self.settings.get(name).and_then(Value::as_str)
    }
}

/// How a step failed. The message goes to Rota's history and logs: never put
/// a secret value in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError {
    /// Retrying may help.
    Failed(String),
    /// Retrying will not help (bad settings, a malformed secret).
    Permanent(String),
    /// The plugin does not implement this optional step.
    Unsupported,
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed(m) | Self::Permanent(m) => f.write_str(m),
            Self::Unsupported => f.write_str("unsupported step"),
        }
    }
}

impl std::error::Error for StepError {}

/// A native rotation plugin, written in safe Rust. [`crate::export_plugin!`]
/// turns an implementation into the C ABI. Every method runs on a blocking
/// thread of the host; it may block (network I/O) but should watch
/// [`Host::remaining`]: a step that overruns its deadline is reported as
/// failed and its result ignored, but the host cannot stop it.
pub trait NativePlugin: Default + Send + Sync + 'static {
    /// Whether the plugin implements [`NativePlugin::verify`] (ABI 1.1):
    /// set it to `true` when you do; the exported table then carries the
    /// step.
    const VERIFY: bool = false;

    /// Name, version, secret types, settings, optional steps, capabilities.
    fn describe() -> Descriptor;

    /// A new candidate value; `None` lets Rota's password policy generate one.
    fn generate(&self, _input: &StepInput, _host: &Host<'_>) -> Result<Option<Secret>, StepError> {
        Ok(None)
    }

    /// Makes the target accept `input.pending`: probe first (does it already
    /// work?), then act, so the step can be re-run after a crash.
    fn set(&self, input: &StepInput, host: &Host<'_>) -> Result<(), StepError>;

    /// Proves `input.pending` works against the target. Read-only.
    fn test(&self, input: &StepInput, host: &Host<'_>) -> Result<(), StepError>;

    /// Extra work after promotion. Must be idempotent.
    fn finish(&self, _input: &StepInput, _host: &Host<'_>) -> Result<(), StepError> {
        Ok(())
    }

    /// Puts the target back on `input.current`.
    fn rollback(&self, _input: &StepInput, _host: &Host<'_>) -> Result<(), StepError> {
        Err(StepError::Unsupported)
    }

    /// While a verified rotation soaks: do the consumers still work with
    /// `input.current` (the new value)? Read-only. (ABI 1.1; set
    /// [`NativePlugin::VERIFY`] when you implement it.)
    fn verify(&self, _input: &StepInput, _host: &Host<'_>) -> Result<(), StepError> {
        Err(StepError::Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let input: StepInput = serde_json::from_value(serde_json::json!({
            "step": "set", "secret": {"name": "s", "type": "Generic"}, "token": "t",
            "pending": "canary-p", "current": "canary-c", "previous": null, "settings": {}
        }))
        .unwrap();
        let dump = format!("{input:?}");
        assert!(!dump.contains("canary"), "{dump}");
        assert_eq!(input.pending().unwrap().expose(), "canary-p");
    }
}

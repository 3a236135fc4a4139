//! The built-in `password` plugin for Generic secrets: a new random value
//! under a password policy (GetRandomPassword-compatible), either the whole
//! value or one field of a JSON object (`field = "password"`). It has no
//! target: `set` has nothing to change, and `test` proves the pending value
//! meets the policy.

use rota_kms::SecretString;
use rota_kms::password::PasswordPolicy;
use serde_json::{Value, json};

use super::plugin::{
    PluginDescriptor, PluginError, RotationPlugin, StepContext, StepFuture, StepSet,
};
use super::settings::{SettingField, SettingKind, SettingsError, SettingsSchema};

/// The `password` plugin.
#[derive(Debug)]
pub struct PasswordPlugin {
    descriptor: PluginDescriptor,
}

impl Default for PasswordPlugin {
    fn default() -> Self {
        Self::new()
    }
}

impl PasswordPlugin {
    /// The plugin.
    pub fn new() -> Self {
        use SettingKind::{Bool, Integer, String};
        let d = PasswordPolicy::default();
        Self {
            descriptor: PluginDescriptor {
                name: "password".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                description:
                    "a new random password for a Generic secret (whole value or one JSON field)"
                        .into(),
                secret_types: vec!["Generic".into()],
                settings: SettingsSchema::new(vec![
                    SettingField::optional(
                        "length",
                        Integer,
                        json!(d.length),
                        "password length, 8-128",
                    ),
                    SettingField::optional(
                        "exclude_characters",
                        String,
                        json!(""),
                        "characters never used",
                    ),
                    SettingField::optional("exclude_lowercase", Bool, json!(false), "no a-z"),
                    SettingField::optional("exclude_uppercase", Bool, json!(false), "no A-Z"),
                    SettingField::optional("exclude_numbers", Bool, json!(false), "no 0-9"),
                    SettingField::optional(
                        "exclude_punctuation",
                        Bool,
                        json!(false),
                        "no punctuation",
                    ),
                    SettingField::optional(
                        "require_each_included_type",
                        Bool,
                        json!(true),
                        "at least one character of each included class",
                    ),
                    SettingField::optional(
                        "field",
                        String,
                        Value::Null,
                        "rotate only this field of a JSON object value",
                    ),
                ]),
                origin: "built-in".into(),
                steps: StepSet {
                    generate: true,
                    finish: false,
                    rollback: false,
                    verify: false,
                },
            },
        }
    }

    /// The policy described by validated settings.
    pub fn policy(settings: &Value) -> Result<PasswordPolicy, PluginError> {
        let get_bool = |k: &str| settings.get(k).and_then(Value::as_bool).unwrap_or(false);
        let policy = PasswordPolicy {
            length: settings.get("length").and_then(Value::as_u64).unwrap_or(32) as usize,
            exclude_characters: settings
                .get("exclude_characters")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            exclude_lowercase: get_bool("exclude_lowercase"),
            exclude_uppercase: get_bool("exclude_uppercase"),
            exclude_numbers: get_bool("exclude_numbers"),
            exclude_punctuation: get_bool("exclude_punctuation"),
            require_each_included_type: settings
                .get("require_each_included_type")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        };
        policy
            .validate()
            .map_err(|e| PluginError::permanent(format!("password policy: {e}")))?;
        Ok(policy)
    }

    fn field(settings: &Value) -> Option<&str> {
        settings
            .get("field")
            .and_then(Value::as_str)
            .filter(|f| !f.is_empty())
    }
}

/// Parses a secret value as a JSON object (for `field` mode).
fn json_object(
    value: &SecretString,
    which: &str,
) -> Result<serde_json::Map<String, Value>, PluginError> {
    match serde_json::from_str::<Value>(value.expose_secret()) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(PluginError::permanent(format!(
            "the {which} value is not a JSON object, so `field` cannot be rotated inside it"
        ))),
    }
}

impl RotationPlugin for PasswordPlugin {
    fn descriptor(&self) -> &PluginDescriptor {
        &self.descriptor
    }

    fn validate_settings(&self, settings: &Value) -> Result<(), SettingsError> {
        Self::policy(settings)
            .map(|_| ())
            .map_err(|e| SettingsError::Invalid {
                name: "length".into(),
                reason: e.to_string(),
            })
    }

    fn generate<'a>(&'a self, ctx: &'a StepContext) -> StepFuture<'a, Option<SecretString>> {
        Box::pin(async move {
            let policy = Self::policy(&ctx.settings)?;
            let password = policy
                .generate()
                .map_err(|e| PluginError::permanent(format!("password policy: {e}")))?;
            let Some(field) = Self::field(&ctx.settings) else {
                return Ok(Some(password));
            };
            let current = ctx.current.as_ref().ok_or_else(|| {
                PluginError::permanent("field mode needs a current value to update")
            })?;
            let mut object = json_object(current, "current")?;
            object.insert(
                field.to_owned(),
                Value::String(password.expose_secret().to_owned()),
            );
            let text = serde_json::to_string(&object)
                .map_err(|e| PluginError::failed(format!("cannot encode the new value: {e}")))?;
            Ok(Some(SecretString::new(text)))
        })
    }

    fn set<'a>(&'a self, _ctx: &'a StepContext) -> StepFuture<'a, ()> {
        // No target: the secret value is the credential.
        Box::pin(async { Ok(()) })
    }

    fn test<'a>(&'a self, ctx: &'a StepContext) -> StepFuture<'a, ()> {
        Box::pin(async move {
            let policy = Self::policy(&ctx.settings)?;
            let pending = ctx.pending_value()?;
            let candidate = match Self::field(&ctx.settings) {
                None => pending.clone(),
                Some(field) => {
                    let object = json_object(pending, "pending")?;
                    match object.get(field) {
                        Some(Value::String(s)) => SecretString::new(s.clone()),
                        _ => {
                            return Err(PluginError::failed(format!(
                                "the pending value has no string field {field:?}"
                            )));
                        }
                    }
                }
            };
            policy.check(&candidate).map_err(|e| {
                PluginError::failed(format!("the pending value breaks the policy: {e}"))
            })
        })
    }
}

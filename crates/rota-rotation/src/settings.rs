//! Plugin settings schemas: typed fields with defaults, validated when a
//! configuration is loaded so a typo fails `rota validate`, not a rotation.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

/// The type of a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    /// A string.
    String,
    /// A whole number.
    Integer,
    /// `true` or `false`.
    Bool,
    /// A list of strings.
    StringList,
    /// Any JSON object.
    Object,
}

impl SettingKind {
    /// Parses `string`, `int`/`integer`, `bool`/`boolean`, `list`/`string_list`, `object`/`map`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "string" => Self::String,
            "int" | "integer" => Self::Integer,
            "bool" | "boolean" => Self::Bool,
            "list" | "string_list" | "list(string)" => Self::StringList,
            "object" | "map" => Self::Object,
            _ => return None,
        })
    }

    fn matches(self, v: &Value) -> bool {
        match self {
            Self::String => v.is_string(),
            Self::Integer => v.is_i64() || v.is_u64(),
            Self::Bool => v.is_boolean(),
            Self::StringList => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            Self::Object => v.is_object(),
        }
    }
}

impl fmt::Display for SettingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Bool => "bool",
            Self::StringList => "list of strings",
            Self::Object => "object",
        })
    }
}

/// One setting.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingField {
    /// Name.
    pub name: String,
    /// Type.
    pub kind: SettingKind,
    /// Default; a field without one is required.
    pub default: Option<Value>,
    /// Allowed values (strings only), if restricted.
    pub allowed: Vec<String>,
    /// What it does.
    pub description: String,
}

impl SettingField {
    /// An optional field with a default.
    pub fn optional(name: &str, kind: SettingKind, default: Value, description: &str) -> Self {
        Self {
            name: name.into(),
            kind,
            default: Some(default),
            allowed: Vec::new(),
            description: description.into(),
        }
    }

    /// A required field.
    pub fn required(name: &str, kind: SettingKind, description: &str) -> Self {
        Self {
            name: name.into(),
            kind,
            default: None,
            allowed: Vec::new(),
            description: description.into(),
        }
    }

    /// Restricts a string field to `values`.
    pub fn one_of(mut self, values: &[&str]) -> Self {
        self.allowed = values.iter().map(|v| (*v).to_owned()).collect();
        self
    }
}

/// Why settings were refused. Messages name the setting and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// Settings are not an object.
    #[error("settings must be a map of name = value")]
    NotAnObject,
    /// A setting the schema does not have.
    #[error("unknown setting {name:?}; allowed settings: {allowed}")]
    Unknown {
        /// The name.
        name: String,
        /// Allowed names.
        allowed: String,
    },
    /// A required setting is missing.
    #[error("missing required setting {0:?}")]
    Missing(String),
    /// Wrong type.
    #[error("setting {name:?} must be a {expected}")]
    WrongType {
        /// The name.
        name: String,
        /// Expected type.
        expected: String,
    },
    /// Not one of the allowed values.
    #[error("setting {name:?} must be one of {allowed}")]
    NotAllowed {
        /// The name.
        name: String,
        /// Allowed values.
        allowed: String,
    },
    /// A plugin-specific rule.
    #[error("setting {name:?}: {reason}")]
    Invalid {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
}

/// A plugin's settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsSchema {
    /// The fields.
    pub fields: Vec<SettingField>,
}

impl SettingsSchema {
    /// A schema of `fields`.
    pub fn new(fields: Vec<SettingField>) -> Self {
        Self { fields }
    }

    /// Validates `settings` (an object, or null for none) and returns them
    /// with defaults filled in.
    pub fn validate(&self, settings: &Value) -> Result<Value, SettingsError> {
        let empty = Map::new();
        let given = match settings {
            Value::Null => &empty,
            Value::Object(m) => m,
            _ => return Err(SettingsError::NotAnObject),
        };
        let names: BTreeSet<&str> = self.fields.iter().map(|f| f.name.as_str()).collect();
        for key in given.keys() {
            if !names.contains(key.as_str()) {
                let allowed = if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.iter().copied().collect::<Vec<_>>().join(", ")
                };
                return Err(SettingsError::Unknown {
                    name: key.clone(),
                    allowed,
                });
            }
        }
        let mut out = Map::new();
        for f in &self.fields {
            let value = match (given.get(&f.name), &f.default) {
                (Some(v), _) => v.clone(),
                (None, Some(d)) => d.clone(),
                (None, None) => return Err(SettingsError::Missing(f.name.clone())),
            };
            if !value.is_null() && !f.kind.matches(&value) {
                return Err(SettingsError::WrongType {
                    name: f.name.clone(),
                    expected: f.kind.to_string(),
                });
            }
            if let (false, Some(s)) = (f.allowed.is_empty(), value.as_str())
                && !f.allowed.iter().any(|a| a == s)
            {
                return Err(SettingsError::NotAllowed {
                    name: f.name.clone(),
                    allowed: f.allowed.join(", "),
                });
            }
            out.insert(f.name.clone(), value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> SettingsSchema {
        SettingsSchema::new(vec![
            SettingField::optional("length", SettingKind::Integer, json!(32), "password length"),
            SettingField::required("host", SettingKind::String, "target host"),
            SettingField::optional("mode", SettingKind::String, json!("single"), "mode")
                .one_of(&["single", "dual"]),
        ])
    }

    #[test]
    fn fills_defaults_and_rejects_bad_settings() {
        let s = schema();
        assert_eq!(
            s.validate(&json!({"host": "db"})).unwrap(),
            json!({"length": 32, "host": "db", "mode": "single"})
        );
        assert_eq!(
            s.validate(&json!({"host": "db", "lenght": 3}))
                .unwrap_err()
                .to_string(),
            "unknown setting \"lenght\"; allowed settings: host, length, mode"
        );
        assert_eq!(
            s.validate(&json!({})).unwrap_err(),
            SettingsError::Missing("host".into())
        );
        assert_eq!(
            s.validate(&json!({"host": 1})).unwrap_err().to_string(),
            "setting \"host\" must be a string"
        );
        assert_eq!(
            s.validate(&json!({"host": "h", "mode": "triple"}))
                .unwrap_err()
                .to_string(),
            "setting \"mode\" must be one of single, dual"
        );
        assert_eq!(
            s.validate(&json!([1])).unwrap_err(),
            SettingsError::NotAnObject
        );
    }
}

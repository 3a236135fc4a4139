//! `plugin.toml`: what a Rhai plugin declares about itself.
//!
//! ```toml
//! name         = "rds-account"          # unique; letters, digits, '-' and '_'
//! version      = "1.0.0"
//! description  = "rotate an RDS account password"
//! secret_types = ["Generic"]            # empty or absent: any type
//!
//! [settings.instance_id]                # one table per setting
//! type        = "string"                # string | integer | bool | list | object
//! description = "the DBInstanceId"      # no default: the setting is required
//!
//! [settings.mode]
//! type    = "string"
//! default = "single"
//! allowed = ["single", "dual"]          # strings only
//!
//! [capabilities]
//! http               = ["hooks.example.com"]   # hosts http:: may reach
//! http_from_settings = ["url"]                  # …and the host of these URL settings
//! ```
//!
//! Unknown keys are refused, so a typo fails at load time.

use std::collections::BTreeMap;
use std::path::Path;

use rota_rotation::{SettingField, SettingKind, SettingsSchema};
use serde::Deserialize;

use crate::error::LoadError;

/// A parsed, checked manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Description.
    pub description: String,
    /// Secret types handled (empty: any).
    pub secret_types: Vec<String>,
    /// Settings schema.
    pub settings: SettingsSchema,
    /// Hosts `http::` may reach.
    pub http_hosts: Vec<String>,
    /// Settings whose URL's host `http::` may reach.
    pub http_from_settings: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    version: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    secret_types: Vec<String>,
    #[serde(default)]
    settings: BTreeMap<String, RawSetting>,
    #[serde(default)]
    capabilities: RawCapabilities,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSetting {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    default: Option<toml::Value>,
    #[serde(default)]
    allowed: Vec<String>,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCapabilities {
    #[serde(default)]
    http: Vec<String>,
    #[serde(default)]
    http_from_settings: Vec<String>,
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

impl Manifest {
    /// Parses and checks the manifest text of `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, LoadError> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let (l, c) = line_col(text, s.start);
                    format!("line {l}, column {c}: ")
                })
                .unwrap_or_default();
            LoadError::Manifest {
                path: path.to_owned(),
                message: format!("{at}{}", e.message().trim_end()),
            }
        })?;
        let bad = |message: String| LoadError::Manifest {
            path: path.to_owned(),
            message,
        };
        if raw.name.is_empty()
            || !raw
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(bad(format!(
                "name {:?} must be non-empty letters, digits, '-' or '_'",
                raw.name
            )));
        }
        if raw.version.trim().is_empty() {
            return Err(bad("version must not be empty".into()));
        }
        let mut fields = Vec::new();
        for (name, s) in &raw.settings {
            let setting_err = |message: String| LoadError::Setting {
                path: path.to_owned(),
                setting: name.clone(),
                message,
            };
            let kind = SettingKind::parse(&s.kind).ok_or_else(|| {
                setting_err(format!(
                    "unknown type {:?}; use string, integer, bool, list or object",
                    s.kind
                ))
            })?;
            if !s.allowed.is_empty() && kind != SettingKind::String {
                return Err(setting_err(
                    "`allowed` applies to string settings only".into(),
                ));
            }
            let default = s
                .default
                .as_ref()
                .map(serde_json::to_value)
                .transpose()
                .map_err(|e| setting_err(format!("bad default: {e}")))?;
            let field = SettingField {
                name: name.clone(),
                kind,
                default: default.clone(),
                allowed: s.allowed.clone(),
                description: s.description.clone(),
            };
            if let Some(d) = default {
                // The default must pass the field's own checks.
                let one = SettingsSchema::new(vec![field.clone()]);
                one.validate(&serde_json::json!({ name.clone(): d }))
                    .map_err(|e| setting_err(format!("bad default: {e}")))?;
            }
            fields.push(field);
        }
        for s in &raw.capabilities.http_from_settings {
            match fields.iter().find(|f| &f.name == s) {
                Some(f) if f.kind == SettingKind::String => {}
                _ => {
                    return Err(bad(format!(
                        "capabilities.http_from_settings names {s:?}, which is not a string setting"
                    )));
                }
            }
        }
        Ok(Self {
            name: raw.name,
            version: raw.version,
            description: raw.description,
            secret_types: raw.secret_types,
            settings: SettingsSchema::new(fields),
            http_hosts: raw.capabilities.http,
            http_from_settings: raw.capabilities.http_from_settings,
        })
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }
}

//! Import: read a live secret and write the `alicloud_kms_secret` block that
//! describes it.
//!
//! The value is never written unless asked ([`ImportOptions::include_secret_data`]):
//! `secret_data` becomes a reference to a new sensitive variable, declared
//! after the block, whose value the user passes with `-var`, `TF_VAR_…` or a
//! var file. For managed types (whose value rotation owns) any value works,
//! since Rota never writes it back; for Generic secrets the value must match
//! the live one, or the plan asks for a new `version_id`.
//!
//! Imported secrets get no ownership tags: removing their block later does
//! not destroy them (see [`crate::ownership`]).

use std::fmt::Write as _;

use rota_kms::KmsClient;

use crate::error::EngineError;
use crate::live::{self, ReadOptions};
use crate::resource::RESOURCE_TYPE;

/// Options of [`import`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Write the live value into the block (it is then in the file in clear).
    pub include_secret_data: bool,
}

fn quote(s: &str) -> String {
    // HCL strings: JSON escaping plus `${` / `%{` escaped as `$${` / `%%{`.
    let json = serde_json::Value::String(s.to_owned()).to_string();
    json.replace("${", "$${").replace("%{", "%%{")
}

/// Splits `alicloud_kms_secret.<name>`, checking the type and the name.
pub fn parse_address(address: &str) -> Result<String, EngineError> {
    if address.starts_with("module.") {
        return Err(EngineError::NotImportable(format!(
            "{address}, which is in a module: add the resource block to the module and write an import block {{ to = {address}, id = \"SECRET\" }} in the root configuration"
        )));
    }
    if let Some(n) = address
        .strip_prefix(RESOURCE_TYPE)
        .and_then(|r| r.strip_prefix('.'))
        && crate::config::InstanceKey::split(n).is_some()
    {
        return Err(EngineError::NotImportable(format!(
            "{address}, an instance of a block with for_each or count: put the key in the block's for_each (or raise its count) and write an import block {{ to = {address}, id = \"SECRET\" }}"
        )));
    }
    let name = address
        .strip_prefix(RESOURCE_TYPE)
        .and_then(|r| r.strip_prefix('.'))
        .filter(|n| {
            !n.is_empty()
                && n.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
        .ok_or_else(|| EngineError::UnknownAddress(format!(
            "{address:?} (an address is {RESOURCE_TYPE}.<name>, the name made of letters, digits, '_' and '-')"
        )))?;
    Ok(name.to_owned())
}

/// Reads secret `id` and returns the HCL to add for `address`.
pub async fn import(
    client: &KmsClient,
    address: &str,
    id: &str,
    options: ImportOptions,
) -> Result<String, EngineError> {
    let name = parse_address(address)?;
    let l = live::read(
        client,
        id,
        ReadOptions {
            policy: true,
            versions: false,
        },
    )
    .await?
    .ok_or_else(|| EngineError::Kms {
        secret: id.to_owned(),
        action: "DescribeSecret",
        source: rota_kms::Error::invalid("SecretName", "no such secret"),
    })?;
    let mut attrs: Vec<(&str, String)> = Vec::new();
    attrs.push(("secret_name", quote(&l.name)));
    attrs.push(("secret_type", quote(&l.secret_type)));
    attrs.push(("version_id", quote(&l.version_id)));
    let var_name = format!("{}_secret_data", name.replace('-', "_"));
    let data = if options.include_secret_data {
        let v = client
            .get_secret_value(&l.name)
            .await
            .map_err(|source| EngineError::Kms {
                secret: l.name.clone(),
                action: "GetSecretValue",
                source,
            })?;
        quote(v.secret_data.expose_secret())
    } else {
        format!("var.{var_name}")
    };
    attrs.push(("secret_data", data));
    if !l.secret_data_type.is_empty() {
        attrs.push(("secret_data_type", quote(&l.secret_data_type)));
    }
    if !l.description.is_empty() {
        attrs.push(("description", quote(&l.description)));
    }
    if !l.encryption_key_id.is_empty() {
        attrs.push(("encryption_key_id", quote(&l.encryption_key_id)));
    }
    if !l.dkms_instance_id.is_empty() {
        attrs.push(("dkms_instance_id", quote(&l.dkms_instance_id)));
    }
    if let Some(e) = &l.extended_config {
        attrs.push(("extended_config", quote(e)));
    }
    if l.automatic_rotation {
        attrs.push(("enable_automatic_rotation", "true".into()));
        if let Some(i) = &l.rotation_interval {
            attrs.push(("rotation_interval", quote(i)));
        }
    }
    if let Some(p) = &l.policy {
        attrs.push(("policy", quote(p)));
    }
    let tags = l.user_tags();
    let width = attrs.iter().map(|(k, _)| k.len()).max().unwrap_or(0).max(4);
    let mut out = String::new();
    let _ = writeln!(out, "# imported from secret {:?} ({})", l.name, l.arn);
    let _ = writeln!(out, "resource \"{RESOURCE_TYPE}\" \"{name}\" {{");
    for (k, v) in &attrs {
        if *k == "secret_data" && !options.include_secret_data {
            let _ = writeln!(
                out,
                "  # The value stays in KMS: pass it with -var {var_name}=… or TF_VAR_{var_name}."
            );
        }
        let _ = writeln!(out, "  {k:width$} = {v}");
    }
    if !tags.is_empty() {
        let _ = writeln!(out, "  {:width$} = {{", "tags");
        let tw = tags.keys().map(|k| quote(k).len()).max().unwrap_or(0);
        for (k, v) in &tags {
            let _ = writeln!(out, "    {:tw$} = {}", quote(k), quote(v));
        }
        let _ = writeln!(out, "  }}");
    }
    let _ = writeln!(out, "}}");
    if !options.include_secret_data {
        let _ = writeln!(out);
        let _ = writeln!(out, "variable \"{var_name}\" {{");
        let _ = writeln!(
            out,
            "  description = \"The value of secret {}\"",
            l.name.replace('"', "'")
        );
        let _ = writeln!(out, "  sensitive   = true");
        let _ = writeln!(out, "}}");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_templates() {
        assert_eq!(quote("a\"${b}%{c}"), r#""a\"$${b}%%{c}""#);
        assert!(parse_address("alicloud_kms_secret.db").is_ok());
        assert!(parse_address("aws_secret.db").is_err());
        assert!(parse_address("alicloud_kms_secret.").is_err());
        for a in [
            "module.db.alicloud_kms_secret.this",
            "alicloud_kms_secret.app[\"web\"]",
        ] {
            let e = parse_address(a).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("rota import cannot print the block of {a}"))
                    && e.contains(&format!("import block {{ to = {a}, id = \"SECRET\" }}")),
                "{e}"
            );
        }
    }
}

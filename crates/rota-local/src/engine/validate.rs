//! Validation of what clients send: names, version ids, stages, data types,
//! secret types, rotation intervals, tags, and the per-type shapes of
//! `SecretData` and `ExtendedConfig` (kms-api.md §3.1).

use serde_json::{Map, Value};

use crate::errors::ServiceError;

/// Longest secret name.
pub(crate) const MAX_NAME: usize = 192;
/// Longest version id.
pub(crate) const MAX_VERSION_ID: usize = 64;
/// Largest value in bytes.
pub(crate) const MAX_DATA: usize = rota_kms::kms::MAX_SECRET_DATA_BYTES;
/// Largest ExtendedConfig in characters.
pub(crate) const MAX_EXTENDED_CONFIG: usize = 1024;
/// Most tags on one resource.
pub(crate) const MAX_TAGS: usize = 20;
/// Most distinct stages on one secret.
pub(crate) const MAX_STAGES: usize = 8;
/// Most versions kept per secret.
pub(crate) const MAX_VERSIONS: usize = 10;
/// Shortest rotation interval (6 h), seconds.
pub(crate) const MIN_INTERVAL: u64 = 6 * 3600;
/// Longest rotation interval (8760 h), seconds.
pub(crate) const MAX_INTERVAL: u64 = 8760 * 3600;

/// The secret types of kms-api.md §3.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecretType {
    Generic,
    Rds,
    Redis,
    PolarDb,
    RamCredentials,
    Ecs,
}

impl SecretType {
    pub(crate) const ALL: [SecretType; 6] = [
        Self::Generic,
        Self::Rds,
        Self::Redis,
        Self::PolarDb,
        Self::RamCredentials,
        Self::Ecs,
    ];

    /// Parses a type name case-insensitively (`RDS` and `Rds` alike).
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }

    /// The canonical spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Generic => "Generic",
            Self::Rds => "Rds",
            Self::Redis => "Redis",
            Self::PolarDb => "PolarDB",
            Self::RamCredentials => "RAMCredentials",
            Self::Ecs => "ECS",
        }
    }

    /// Managed types rotate through the cloud; Generic does not.
    pub(crate) fn is_managed(self) -> bool {
        self != Self::Generic
    }
}

pub(crate) fn check_name(name: &str) -> Result<(), ServiceError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(ServiceError::invalid(
            "SecretName",
            format!("must be 1 to {MAX_NAME} characters"),
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_/+=.@-".contains(&b))
    {
        return Err(ServiceError::invalid(
            "SecretName",
            "may contain only letters, digits and _ / + = . @ -",
        ));
    }
    Ok(())
}

/// Name rules that depend on the type (`acs/` reserved, `acs/ecs/` for ECS).
pub(crate) fn check_name_for_type(name: &str, ty: SecretType) -> Result<(), ServiceError> {
    match ty {
        SecretType::Ecs if !name.starts_with("acs/ecs/") || name.len() <= "acs/ecs/".len() => {
            Err(ServiceError::invalid(
                "SecretName",
                "an ECS secret's name must start with acs/ecs/",
            ))
        }
        SecretType::Ecs | SecretType::RamCredentials => Ok(()),
        _ if name.starts_with("acs/") => Err(ServiceError::invalid(
            "SecretName",
            "the prefix acs/ is reserved for managed ECS and RAM secrets",
        )),
        _ => Ok(()),
    }
}

pub(crate) fn check_version_id(name: &str, id: &str) -> Result<(), ServiceError> {
    if id.is_empty() || id.len() > MAX_VERSION_ID {
        return Err(ServiceError::invalid(
            name,
            format!("must be 1 to {MAX_VERSION_ID} characters"),
        ));
    }
    if !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ServiceError::invalid(
            name,
            "may contain only printable ASCII characters without spaces",
        ));
    }
    Ok(())
}

pub(crate) fn check_stage(name: &str, stage: &str) -> Result<(), ServiceError> {
    if stage.is_empty()
        || stage.len() > 64
        || !stage
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(ServiceError::invalid(
            name,
            format!("stage {stage:?} must be 1 to 64 letters, digits, '_', '.' or '-'"),
        ));
    }
    Ok(())
}

pub(crate) fn check_data(data: &str) -> Result<(), ServiceError> {
    if data.len() > MAX_DATA {
        return Err(ServiceError::invalid(
            "SecretData",
            format!(
                "is {} bytes; at most {MAX_DATA} bytes are allowed",
                data.len()
            ),
        ));
    }
    Ok(())
}

pub(crate) fn parse_data_type(v: Option<&str>) -> Result<&'static str, ServiceError> {
    match v {
        None => Ok("text"),
        Some(s) if s.eq_ignore_ascii_case("text") => Ok("text"),
        Some(s) if s.eq_ignore_ascii_case("binary") => Ok("binary"),
        Some(_) => Err(ServiceError::invalid(
            "SecretDataType",
            "must be text or binary",
        )),
    }
}

/// `<int><d|h|m|s>` → seconds, within 6 h–8760 h.
pub(crate) fn parse_interval(v: &str) -> Result<u64, ServiceError> {
    let bad = || {
        ServiceError::invalid(
            "RotationInterval",
            "must be an integer followed by d, h, m or s (e.g. 7d, 604800s), between 6h and 8760h",
        )
    };
    let v = v.trim();
    // Split before the last character, wherever it starts: a multi-byte
    // unit (`∞`) must be refused, not split inside.
    let at = v.char_indices().last().map_or(0, |(i, _)| i);
    let (num, unit) = v.split_at(at);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(bad()),
    };
    let secs = n.checked_mul(mult).ok_or_else(bad)?;
    if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&secs) {
        return Err(bad());
    }
    Ok(secs)
}

/// Checks one tag (kms-api.md §3.1: ≤128 characters, charset, reserved prefixes).
pub(crate) fn check_tag(param: &str, key: &str, value: &str) -> Result<(), ServiceError> {
    let charset = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/\\_-.+=:@".contains(&b))
    };
    if key.is_empty() || key.chars().count() > 128 || !charset(key) {
        return Err(ServiceError::invalid(
            param,
            format!("tag key {key:?} must be 1 to 128 letters, digits or / \\ _ - . + = : @"),
        ));
    }
    let lower = key.to_ascii_lowercase();
    if lower.starts_with("aliyun") || lower.starts_with("acs:") {
        return Err(ServiceError::invalid(
            param,
            format!("tag key {key:?} uses a reserved prefix (aliyun, acs:)"),
        ));
    }
    if value.chars().count() > 128 || !charset(value) {
        return Err(ServiceError::invalid(
            param,
            format!(
                "the value of tag {key:?} must be at most 128 letters, digits or / \\ _ - . + = : @"
            ),
        ));
    }
    Ok(())
}

/// Parses the `Tags` JSON parameter (`[{"TagKey":"k","TagValue":"v"}]`).
pub(crate) fn parse_tags_json(raw: &str) -> Result<Vec<(String, String)>, ServiceError> {
    let bad = || ServiceError::invalid("Tags", "must be a JSON list of {\"TagKey\",\"TagValue\"}");
    let v: Value = serde_json::from_str(raw).map_err(|_| bad())?;
    let arr = v.as_array().ok_or_else(bad)?;
    let mut out = Vec::with_capacity(arr.len());
    for t in arr {
        let k = t.get("TagKey").and_then(Value::as_str).ok_or_else(bad)?;
        let val = match t.get("TagValue") {
            None | Some(Value::Null) => "",
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(bad()),
        };
        check_tag("Tags", k, val)?;
        out.push((k.to_owned(), val.to_owned()));
    }
    Ok(out)
}

fn obj<'a>(param: &str, v: &'a Value) -> Result<&'a Map<String, Value>, ServiceError> {
    v.as_object()
        .ok_or_else(|| ServiceError::invalid(param, "must be a JSON object"))
}

fn req_str<'a>(
    param: &str,
    o: &'a Map<String, Value>,
    field: &str,
) -> Result<&'a str, ServiceError> {
    match o.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        _ => Err(ServiceError::invalid(
            param,
            format!("{field} is required (a non-empty string)"),
        )),
    }
}

fn one_of(param: &str, field: &str, v: &str, allowed: &[&str]) -> Result<(), ServiceError> {
    if allowed.contains(&v) {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            param,
            format!("{field} must be one of {}", allowed.join(", ")),
        ))
    }
}

/// Validates `CustomData`: an object of at most 10 pairs.
pub(crate) fn check_custom_data(param: &str, v: &Value) -> Result<(), ServiceError> {
    let o = v
        .as_object()
        .ok_or_else(|| ServiceError::invalid(param, "CustomData must be a JSON object"))?;
    if o.len() > 10 {
        return Err(ServiceError::invalid(
            param,
            "CustomData holds at most 10 pairs",
        ));
    }
    Ok(())
}

/// Validates an ExtendedConfig for a type; returns the parsed object.
/// Generic secrets take none (an empty object is tolerated).
pub(crate) fn check_extended_config(
    ty: SecretType,
    raw: Option<&str>,
) -> Result<Option<Map<String, Value>>, ServiceError> {
    const P: &str = "ExtendedConfig";
    let Some(raw) = raw else {
        if ty.is_managed() {
            return Err(ServiceError::invalid(
                P,
                format!("is required for {} secrets", ty.as_str()),
            ));
        }
        return Ok(None);
    };
    if raw.chars().count() > MAX_EXTENDED_CONFIG {
        return Err(ServiceError::invalid(
            P,
            format!("is longer than {MAX_EXTENDED_CONFIG} characters"),
        ));
    }
    let v: Value =
        serde_json::from_str(raw).map_err(|_| ServiceError::invalid(P, "is not valid JSON"))?;
    let o = obj(P, &v)?.clone();
    if let Some(cd) = o.get("CustomData") {
        check_custom_data(P, cd)?;
    }
    match ty {
        SecretType::Generic => {
            if o.keys().any(|k| k != "CustomData") {
                return Err(ServiceError::invalid(
                    P,
                    "Generic secrets take no extended configuration",
                ));
            }
        }
        SecretType::Rds => {
            one_of(
                P,
                "SecretSubType",
                req_str(P, &o, "SecretSubType")?,
                &["SingleUser", "DoubleUsers"],
            )?;
            req_str(P, &o, "DBInstanceId")?;
        }
        SecretType::Redis => {
            one_of(
                P,
                "SecretSubType",
                req_str(P, &o, "SecretSubType")?,
                &["DoubleUsers"],
            )?;
            let account = req_str(P, &o, "AccountName")?;
            let clone = req_str(P, &o, "CloneAccountName")?;
            if clone != format!("{account}_clone") {
                return Err(ServiceError::invalid(
                    P,
                    "CloneAccountName must be AccountName followed by _clone",
                ));
            }
            req_str(P, &o, "InstanceId")?;
            req_str(P, &o, "RegionId")?;
        }
        SecretType::PolarDb => {
            one_of(
                P,
                "SecretSubType",
                req_str(P, &o, "SecretSubType")?,
                &["DoubleUsers"],
            )?;
            req_str(P, &o, "RegionId")?;
            req_str(P, &o, "DBClusterId")?;
            let db_type = req_str(P, &o, "DBType")?;
            one_of(P, "DBType", db_type, &["MySQL", "PostgreSQL"])?;
            req_str(P, &o, "AccountName")?;
            req_str(P, &o, "CloneAccountName")?;
            if let Some(t) = o.get("AccountType") {
                one_of(P, "AccountType", t.as_str().unwrap_or(""), &["Normal"])?;
            }
            if db_type == "MySQL" {
                req_str(P, &o, "AccountPrivilege")?;
                req_str(P, &o, "DBName")?;
            }
        }
        SecretType::RamCredentials => {
            one_of(
                P,
                "SecretSubType",
                req_str(P, &o, "SecretSubType")?,
                &["RamUserAccessKey"],
            )?;
            req_str(P, &o, "UserName")?;
        }
        SecretType::Ecs => {
            one_of(
                P,
                "SecretSubType",
                req_str(P, &o, "SecretSubType")?,
                &["Password", "SSHKey"],
            )?;
            req_str(P, &o, "RegionId")?;
            req_str(P, &o, "InstanceId")?;
        }
    }
    Ok(Some(o))
}

fn data_json(raw: &str) -> Result<Map<String, Value>, ServiceError> {
    let v: Value = serde_json::from_str(raw).map_err(|_| {
        ServiceError::invalid("SecretData", "must be a JSON object for this secret type")
    })?;
    obj("SecretData", &v).cloned()
}

fn account(o: &Value, name_field: &str, secret_field: &str) -> Option<(String, String)> {
    Some((
        o.get(name_field)?.as_str()?.to_owned(),
        o.get(secret_field)?.as_str()?.to_owned(),
    ))
}

/// Validates SecretData for a type and returns the value to store, which is
/// the shape GetSecretValue returns for that type (kms-api.md §3.2, G12):
/// Rds keeps the first account as `{"AccountName","AccountPassword"}`;
/// Redis and PolarDB (`$Auto`) get a generated password for
/// `ExtendedConfig.AccountName`; RAMCredentials keeps the last access key
/// pair and adds `GenerateTimestamp`; ECS and Generic are stored verbatim.
pub(crate) fn normalize_data(
    ty: SecretType,
    ext: Option<&Map<String, Value>>,
    raw: &str,
    now_wire: &str,
    password: impl FnOnce() -> String,
) -> Result<String, ServiceError> {
    let bad = |why: &str| ServiceError::invalid("SecretData", why.to_owned());
    let ext_str = |f: &str| {
        ext.and_then(|o| o.get(f))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    match ty {
        SecretType::Generic => Ok(raw.to_owned()),
        SecretType::Rds => {
            let o = data_json(raw)?;
            let accounts = o
                .get("Accounts")
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty())
                .ok_or_else(|| bad("an Rds secret's data is {\"Accounts\":[{\"AccountName\",\"AccountPassword\"}]}"))?;
            // As Alibaba's: one account, also for DoubleUsers (the first
            // rotation creates its clone, AccountName_clone).
            if accounts.len() != 1 {
                return Err(bad(if ext_str("SecretSubType") == "DoubleUsers" {
                    "a DoubleUsers Rds secret lists one account, as Alibaba's: the first rotation creates its clone AccountName_clone"
                } else {
                    "a SingleUser Rds secret lists exactly one account"
                }));
            }
            let mut first = None;
            for a in accounts {
                let pair = account(a, "AccountName", "AccountPassword")
                    .filter(|(n, p)| !n.is_empty() && !p.is_empty())
                    .ok_or_else(|| {
                        bad("each account has a non-empty AccountName and AccountPassword")
                    })?;
                first.get_or_insert(pair);
            }
            let (name, pass) = first.expect("at least one account");
            Ok(serde_json::json!({"AccountName": name, "AccountPassword": pass}).to_string())
        }
        SecretType::Redis | SecretType::PolarDb => {
            if raw != "$Auto" {
                return Err(bad("a Redis or PolarDB secret's data is the literal $Auto"));
            }
            Ok(serde_json::json!({"AccountName": ext_str("AccountName"), "AccountPassword": password()}).to_string())
        }
        SecretType::RamCredentials => {
            let o = data_json(raw)?;
            let keys = o
                .get("AccessKeys")
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty() && a.len() <= 2)
                .ok_or_else(|| bad("a RAMCredentials secret's data is {\"AccessKeys\":[…]} with one or two pairs"))?;
            let mut last = None;
            for k in keys {
                last = Some(
                    account(k, "AccessKeyId", "AccessKeySecret")
                        .filter(|(i, s)| !i.is_empty() && !s.is_empty())
                        .ok_or_else(|| {
                            bad("each access key has a non-empty AccessKeyId and AccessKeySecret")
                        })?,
                );
            }
            let (id, secret) = last.expect("at least one key");
            Ok(serde_json::json!({"AccessKeyId": id, "AccessKeySecret": secret, "GenerateTimestamp": now_wire}).to_string())
        }
        SecretType::Ecs => {
            let o = data_json(raw)?;
            let fields: &[&str] = if ext_str("SecretSubType") == "SSHKey" {
                &["UserName", "PublicKey", "PrivateKey"]
            } else {
                &["UserName", "Password"]
            };
            for f in fields {
                if o.get(*f).and_then(Value::as_str).is_none_or(str::is_empty) {
                    return Err(bad(&format!(
                        "an ECS secret of this subtype has the fields {}",
                        fields.join(", ")
                    )));
                }
            }
            Ok(raw.to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("7d").unwrap(), 604_800);
        assert_eq!(parse_interval("605800s").unwrap(), 605_800);
        assert_eq!(parse_interval("6h").unwrap(), 21_600);
        assert_eq!(parse_interval("8760h").unwrap(), MAX_INTERVAL);
        for bad in [
            "5h", "8761h", "7", "d", "7w", "-1d", "1.5d", "", "∞", "7∞", "∞d", "7dé",
        ] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert!(check_name("db/prod-1_a+b=c.d@e").is_ok());
        assert!(check_name("bad name").is_err());
        assert!(check_name(&"a".repeat(193)).is_err());
        assert!(check_name_for_type("acs/x", SecretType::Generic).is_err());
        assert!(check_name_for_type("acs/ecs/x", SecretType::Ecs).is_ok());
        assert!(check_name_for_type("x", SecretType::Ecs).is_err());
    }

    #[test]
    fn tags() {
        assert!(check_tag("Tags", "env", "prod").is_ok());
        assert!(check_tag("Tags", "aliyun-x", "v").is_err());
        assert!(check_tag("Tags", "ACS:x", "v").is_err());
        assert!(check_tag("Tags", "a b", "v").is_err());
        assert!(check_tag("Tags", "k", &"v".repeat(129)).is_err());
    }

    #[test]
    fn types_case_insensitive() {
        assert_eq!(SecretType::parse("RDS"), Some(SecretType::Rds));
        assert_eq!(SecretType::parse("ecs"), Some(SecretType::Ecs));
        assert_eq!(SecretType::parse("x"), None);
    }
}

//! The `alicloud_kms_secret` resource: its schema (every argument of the
//! seed plus Rota's additions), the typed arguments a block evaluates to, and
//! their validation with the allowed values.
//!
//! Rota's additions to the seed's arguments, documented in the README:
//! - `version_stage` (default `ACSCurrent`): the stage `move_to_version` /
//!   `remove_from_version` act on (UpdateSecretVersionStage needs one and
//!   the seed names none);
//! - `force_delete_without_recovery` (default false), as in the Terraform
//!   provider;
//! - `version_stages`, as in the Terraform provider: the stages a newly put
//!   version receives.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rota_kms::SecretString;

/// The resource type Rota manages.
pub const RESOURCE_TYPE: &str = "alicloud_kms_secret";

/// The address of a resource by its configuration-wide name: at the
/// root a name is the block label (with an instance key: `db`,
/// `app["web"]`) and the address `alicloud_kms_secret.<name>`; in a module
/// the name is the address itself (`module.x.alicloud_kms_secret.db`).
pub fn address_of_name(name: &str) -> String {
    if name.starts_with("module.") {
        name.to_owned()
    } else {
        format!("{RESOURCE_TYPE}.{name}")
    }
}

/// The configuration-wide name of a resource address (the inverse of
/// [`address_of_name`]); `None` for text that is not an address.
pub fn name_of_address(address: &str) -> Option<&str> {
    if let Some(n) = address
        .strip_prefix(RESOURCE_TYPE)
        .and_then(|r| r.strip_prefix('.'))
    {
        return Some(n);
    }
    let mut rest = address;
    // module.a.module.b.alicloud_kms_secret.name
    while let Some(r) = rest.strip_prefix("module.") {
        let (module, tail) = r.split_once('.')?;
        if !is_label(module) {
            return None;
        }
        rest = tail;
        if let Some(n) = tail
            .strip_prefix(RESOURCE_TYPE)
            .and_then(|t| t.strip_prefix('.'))
        {
            return (!n.is_empty()).then_some(address);
        }
    }
    None
}

/// Whether `s` is a block label Terraform accepts (letters, digits, `_`,
/// `-`, not starting with a digit or `-`).
pub fn is_label(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// Secret types KMS knows (kms-api.md §3.1).
pub const SECRET_TYPES: &[&str] = &[
    "Generic",
    "Rds",
    "Redis",
    "RAMCredentials",
    "ECS",
    "PolarDB",
];

/// Secret data types.
pub const DATA_TYPES: &[&str] = &["text", "binary"];

/// Largest secret value in bytes.
pub const MAX_SECRET_DATA: usize = rota_kms::kms::MAX_SECRET_DATA_BYTES;

/// Tags Rota reserves for itself (never part of a tag diff).
pub const ROTA_TAG_PREFIX: &str = "rota:";

/// How a value is typed in the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string (numbers and bools convert, as in Terraform).
    String,
    /// A bool (or "true"/"false").
    Bool,
    /// A whole number.
    Int,
    /// A map of strings.
    Map,
    /// A list of strings.
    List,
    /// A JSON object: an HCL object or a JSON string.
    Object,
}

/// One argument of the schema.
#[derive(Debug, Clone, Copy)]
pub struct Arg {
    /// Attribute name.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Required by the seed.
    pub required: bool,
    /// Changing it replaces the secret (Rota's semantics, see the module docs
    /// of `plan`).
    pub force_new: bool,
    /// Whether the value is secret (shown as `(sensitive)`).
    pub sensitive: bool,
}

const fn arg(name: &'static str, kind: Kind) -> Arg {
    Arg {
        name,
        kind,
        required: false,
        force_new: false,
        sensitive: false,
    }
}

const fn required(mut a: Arg) -> Arg {
    a.required = true;
    a
}

const fn force_new(mut a: Arg) -> Arg {
    a.force_new = true;
    a
}

/// Every argument, in the order plans list them.
pub const SCHEMA: &[Arg] = &[
    force_new(required(arg("secret_name", Kind::String))),
    force_new(arg("secret_type", Kind::String)),
    Arg {
        sensitive: true,
        ..required(arg("secret_data", Kind::String))
    },
    arg("secret_data_type", Kind::String),
    required(arg("version_id", Kind::String)),
    arg("version_stages", Kind::List),
    arg("description", Kind::String),
    force_new(arg("encryption_key_id", Kind::String)),
    force_new(arg("dkms_instance_id", Kind::String)),
    force_new(arg("extended_config", Kind::Object)),
    arg("custom_data", Kind::Object),
    arg("extended_config_custom_data", Kind::Object),
    arg("enable_automatic_rotation", Kind::Bool),
    arg("rotation_interval", Kind::String),
    arg("policy", Kind::String),
    arg("policy_name", Kind::String),
    arg("tags", Kind::Map),
    arg("version_stage", Kind::String),
    arg("move_to_version", Kind::String),
    arg("remove_from_version", Kind::String),
    arg("recovery_window_in_days", Kind::Int),
    arg("force_delete_without_recovery", Kind::Bool),
    arg("key_id", Kind::String),
    arg("certificate_id", Kind::String),
];

/// Meta-arguments accepted besides the schema.
pub const META_ARGS: &[&str] = &["depends_on"];

/// Nested blocks accepted in a resource.
pub const BLOCKS: &[&str] = &["timeouts"];

/// Attributes computed by KMS (known after apply).
pub const COMPUTED: &[&str] = &["id", "arn", "create_time", "planned_delete_time"];

/// Looks an argument up.
pub fn schema_arg(name: &str) -> Option<&'static Arg> {
    SCHEMA.iter().find(|a| a.name == name)
}

/// Whether a secret type is managed (rotated by the cloud).
pub fn is_managed(secret_type: &str) -> bool {
    secret_type != "Generic"
}

/// The `timeouts` block: create / update / delete, 5 minutes each by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// CreateSecret and what follows it.
    pub create: Duration,
    /// Every in-place update of one secret.
    pub update: Duration,
    /// DeleteSecret.
    pub delete: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let five = Duration::from_secs(300);
        Self {
            create: five,
            update: five,
            delete: five,
        }
    }
}

/// A duration in Rota's one grammar ([`rota_clock::parse_duration`]):
/// `30s`, `5m`, `1h30m`, `1d` (a superset of Terraform's timeouts).
pub fn parse_duration(s: &str) -> Option<Duration> {
    rota_clock::parse_duration(s).ok()
}

/// `<int><d|h|m|s>` → seconds (kms-api.md §3.9, gotcha G11).
pub fn interval_seconds(s: &str) -> Option<u64> {
    let s = s.trim();
    let unit = s.chars().last()?;
    let n: u64 = s[..s.len() - unit.len_utf8()].parse().ok()?;
    let mult = match unit {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// The evaluated arguments of one `alicloud_kms_secret` block.
///
/// `Debug` is derived: `secret_data` is a [`SecretString`] and prints `***`.
#[derive(Debug, Clone, Default)]
pub struct SecretArgs {
    /// `secret_name`.
    pub secret_name: String,
    /// `secret_data` (the initial value).
    pub secret_data: SecretString,
    /// `version_id`.
    pub version_id: String,
    /// `secret_type` (default `Generic`).
    pub secret_type: String,
    /// `secret_data_type` (default `text`).
    pub secret_data_type: String,
    /// `version_stages`.
    pub version_stages: Option<Vec<String>>,
    /// `description`.
    pub description: Option<String>,
    /// `encryption_key_id`.
    pub encryption_key_id: Option<String>,
    /// `dkms_instance_id`.
    pub dkms_instance_id: Option<String>,
    /// `extended_config`, a JSON object (as written).
    pub extended_config: Option<String>,
    /// `custom_data` or `extended_config_custom_data`.
    pub custom_data: Option<serde_json::Map<String, serde_json::Value>>,
    /// `enable_automatic_rotation` (unset means false).
    pub enable_automatic_rotation: Option<bool>,
    /// `rotation_interval`.
    pub rotation_interval: Option<String>,
    /// `policy`.
    pub policy: Option<String>,
    /// `policy_name`.
    pub policy_name: Option<String>,
    /// `tags`.
    pub tags: BTreeMap<String, String>,
    /// `version_stage` (Rota, default `ACSCurrent`).
    pub version_stage: String,
    /// `move_to_version`.
    pub move_to_version: Option<String>,
    /// `remove_from_version`.
    pub remove_from_version: Option<String>,
    /// `recovery_window_in_days` (default 30).
    pub recovery_window_in_days: u32,
    /// `force_delete_without_recovery` (default false).
    pub force_delete_without_recovery: bool,
    /// The `timeouts` block.
    pub timeouts: Timeouts,
    /// Attributes whose value is known only after another resource is applied.
    pub unknown: BTreeSet<String>,
}

impl SecretArgs {
    /// Whether an attribute is known only after apply.
    pub fn is_unknown(&self, name: &str) -> bool {
        self.unknown.contains(name)
    }

    /// Whether the type is managed.
    pub fn is_managed(&self) -> bool {
        is_managed(&self.secret_type)
    }

    /// The rotation interval in seconds, if set and valid.
    pub fn interval_seconds(&self) -> Option<u64> {
        self.rotation_interval.as_deref().and_then(interval_seconds)
    }

    /// `extended_config` parsed as a JSON object.
    pub fn extended_config_json(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        self.extended_config
            .as_deref()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
            .and_then(|v| match v {
                serde_json::Value::Object(o) => Some(o),
                _ => None,
            })
    }

    /// The CustomData Rota manages: `custom_data` / `extended_config_custom_data`,
    /// else the `CustomData` of `extended_config`.
    pub fn desired_custom_data(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        if let Some(cd) = &self.custom_data {
            return Some(cd.clone());
        }
        self.extended_config_json()
            .and_then(|o| o.get("CustomData").cloned())
            .and_then(|v| match v {
                serde_json::Value::Object(o) => Some(o),
                _ => None,
            })
    }
}

/// One problem found by [`validate`]: the attribute, the message, the help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The attribute concerned (`None`: the block).
    pub attr: Option<&'static str>,
    /// What is wrong.
    pub message: String,
    /// How to fix it and the allowed values.
    pub help: Option<String>,
}

fn problem(attr: &'static str, message: impl Into<String>, help: impl Into<String>) -> Problem {
    Problem {
        attr: Some(attr),
        message: message.into(),
        help: Some(help.into()),
    }
}

fn name_charset_ok(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_/+=.@-".contains(&b))
}

fn tag_charset_ok(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/\\_-.+=:@".contains(&b))
}

/// Checks the arguments against KMS's rules, before any call is made.
/// `set` names the attributes the block wrote; `name_source` is the source
/// text of the `secret_name` expression (for the suggested fix).
pub fn validate(args: &SecretArgs, set: &BTreeSet<String>, name_source: &str) -> Vec<Problem> {
    let mut out = Vec::new();
    check_unsettable_ids(set, &mut out);
    check_types(args, &mut out);
    check_secret_name(args, set, name_source, &mut out);
    check_data_and_version_id(args, set, &mut out);
    check_extended_config(args, &mut out);
    check_custom_data(args, set, &mut out);
    check_rotation(args, &mut out);
    check_policy(args, &mut out);
    check_tags(args, &mut out);
    check_recovery_window(args, &mut out);
    check_version_stages(args, set, &mut out);
    out
}

/// key_id and certificate_id: the seed lists them, but a secret can never
/// take them.
fn check_unsettable_ids(set: &BTreeSet<String>, out: &mut Vec<Problem>) {
    for (attr, label) in [("key_id", "KeyId"), ("certificate_id", "CertificateId")] {
        if set.contains(attr) {
            out.push(problem(
                if attr == "key_id" { "key_id" } else { "certificate_id" },
                format!("{attr} cannot be set on a secret"),
                format!(
                    "the seed says: \"KeyId, SecretName, and cerificateid must and can only specify one of the parameters\"; \
                     secret_name is required, so {label} can never be given — remove {attr} \
                     (use encryption_key_id to choose the key that protects the value)"
                ),
            ));
        }
    }
}

/// secret_type and secret_data_type: allowed values, and text for managed
/// types.
fn check_types(args: &SecretArgs, out: &mut Vec<Problem>) {
    let known = |a: &str| !args.is_unknown(a);
    let ty = args.secret_type.as_str();
    if known("secret_type") && !SECRET_TYPES.contains(&ty) {
        out.push(problem(
            "secret_type",
            format!("secret_type {ty:?} is not a KMS secret type"),
            format!("allowed values: {}", SECRET_TYPES.join(", ")),
        ));
    }

    if known("secret_data_type") {
        if !DATA_TYPES.contains(&args.secret_data_type.as_str()) {
            out.push(problem(
                "secret_data_type",
                format!(
                    "secret_data_type {:?} is not a data type",
                    args.secret_data_type
                ),
                "allowed values: text, binary",
            ));
        } else if args.secret_data_type == "binary" && is_managed(ty) {
            out.push(problem(
                "secret_data_type",
                format!("secret_data_type must be \"text\" when secret_type is {ty:?}"),
                "allowed values: text (Rds, RAMCredentials, ECS and the other managed types take text only)",
            ));
        }
    }
}

/// secret_name: `$Auto` only for RAMCredentials, the character set and
/// length, and the prefixes the secret type requires or forbids (with a fix
/// built from `name_source`).
fn check_secret_name(
    args: &SecretArgs,
    set: &BTreeSet<String>,
    name_source: &str,
    out: &mut Vec<Problem>,
) {
    let known = |a: &str| !args.is_unknown(a);
    let ty = args.secret_type.as_str();
    if known("secret_name") && set.contains("secret_name") {
        let name = args.secret_name.as_str();
        if name == "$Auto" && ty != "RAMCredentials" {
            out.push(problem(
                "secret_name",
                format!("secret_name \"$Auto\" is only for secret_type \"RAMCredentials\", not {ty:?}"),
                "KMS generates the name (acs/ram/user/<user>) only for RAMCredentials secrets; give this secret a name",
            ));
        } else if name == "$Auto" {
            // KMS names it acs/ram/user/<UserName>; plans find it again by its rota:address tag.
        } else if name.is_empty() || name.len() > 192 || !name_charset_ok(name) {
            out.push(problem(
                "secret_name",
                format!("secret_name {name:?} is not a valid secret name"),
                "use 1 to 192 characters: letters, digits and _ / + = . @ -",
            ));
        } else if ty == "ECS" && (!name.starts_with("acs/ecs/") || name.len() <= 8) {
            let fix = if name_source.starts_with('"') {
                format!("secret_name = \"acs/ecs/{}\"", name)
            } else {
                format!("secret_name = \"acs/ecs/${{{name_source}}}\"")
            };
            out.push(problem(
                "secret_name",
                format!(
                    "secret_name {name:?} must start with \"acs/ecs/\" when secret_type is \"ECS\""
                ),
                format!(
                    "KMS requires the names of ECS secrets to start with acs/ecs/ (kms-api.md §3.1); write:\n    {fix}"
                ),
            ));
        } else if matches!(ty, "Generic" | "Rds" | "Redis" | "PolarDB") && name.starts_with("acs/")
        {
            out.push(problem(
                "secret_name",
                format!("secret_name {name:?} may not start with \"acs/\" when secret_type is {ty:?}"),
                "the prefix acs/ is reserved for managed ECS (acs/ecs/…) and RAM (acs/ram/…) secrets; choose another name",
            ));
        }
    }
}

/// The size of secret_data and the form of version_id.
fn check_data_and_version_id(args: &SecretArgs, set: &BTreeSet<String>, out: &mut Vec<Problem>) {
    let known = |a: &str| !args.is_unknown(a);
    if known("secret_data") && args.secret_data.len() > MAX_SECRET_DATA {
        out.push(problem(
            "secret_data",
            format!(
                "secret_data is {} bytes; KMS stores at most {MAX_SECRET_DATA} bytes",
                args.secret_data.len()
            ),
            "shorten the value",
        ));
    }

    if known("secret_data") && known("secret_type") && args.secret_type == "Rds" {
        check_rds_accounts(args, out);
    }

    if known("version_id")
        && set.contains("version_id")
        && (args.version_id.is_empty()
            || args.version_id.len() > 64
            || !args.version_id.bytes().all(|b| b.is_ascii_graphic()))
    {
        out.push(problem(
            "version_id",
            format!("version_id {:?} is not a valid version id", args.version_id),
            "use 1 to 64 printable ASCII characters without spaces",
        ));
    }
}

/// An Rds secret's data lists one account, as Alibaba's (also for
/// DoubleUsers: the first rotation creates the clone). Never quotes the
/// value.
fn check_rds_accounts(args: &SecretArgs, out: &mut Vec<Problem>) {
    let data: Option<serde_json::Value> =
        serde_json::from_str(args.secret_data.expose_secret()).ok();
    let accounts = data
        .as_ref()
        .and_then(|d| d.get("Accounts"))
        .and_then(|a| a.as_array());
    let format = "an Rds secret's secret_data is jsonencode({ Accounts = [{ AccountName = \"…\", AccountPassword = \"…\" }] })";
    let Some(accounts) = accounts else {
        out.push(problem(
            "secret_data",
            "an Rds secret's secret_data is not an Accounts list",
            format,
        ));
        return;
    };
    let double = args
        .extended_config_json()
        .and_then(|o| {
            o.get("SecretSubType")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        })
        .is_some_and(|s| s == "DoubleUsers");
    if accounts.len() != 1 {
        out.push(problem(
            "secret_data",
            format!(
                "an Rds secret's secret_data lists one account, not {}",
                accounts.len()
            ),
            if double {
                "as Alibaba's DoubleUsers secrets: list the one account; the first rotation creates its clone, AccountName_clone, with the same permissions".to_owned()
            } else {
                format.to_owned()
            },
        ));
        return;
    }
    let filled = |k: &str| {
        accounts[0]
            .get(k)
            .and_then(|v| v.as_str())
            .is_some_and(|v| !v.is_empty())
    };
    if !filled("AccountName") || !filled("AccountPassword") {
        out.push(problem(
            "secret_data",
            "the account needs a non-empty AccountName and AccountPassword",
            format,
        ));
    }
}

/// extended_config: required for managed types, a JSON object of at most
/// 1024 characters, only CustomData for Generic, and the sub-type.
fn check_extended_config(args: &SecretArgs, out: &mut Vec<Problem>) {
    let known = |a: &str| !args.is_unknown(a);
    let ty = args.secret_type.as_str();
    if known("extended_config") {
        match (&args.extended_config, is_managed(ty)) {
            (None, true) if SECRET_TYPES.contains(&ty) => out.push(problem(
                "extended_config",
                format!("extended_config is required when secret_type is {ty:?}"),
                extended_config_help(ty),
            )),
            (Some(raw), managed) => match args.extended_config_json() {
                None => out.push(problem(
                    "extended_config",
                    "extended_config is not a JSON object",
                    "write it with jsonencode({ … }) or as a JSON object string",
                )),
                Some(o) => {
                    if raw.chars().count() > 1024 {
                        out.push(problem(
                            "extended_config",
                            "extended_config is longer than 1024 characters",
                            "KMS stores at most 1024 characters of extended configuration",
                        ));
                    }
                    if !managed && o.keys().any(|k| k != "CustomData") {
                        out.push(problem(
                            "extended_config",
                            "Generic secrets take no extended configuration",
                            "remove extended_config, or keep only its CustomData",
                        ));
                    }
                    if managed && let Some(allowed) = sub_types(ty) {
                        let sub = o.get("SecretSubType").and_then(|v| v.as_str());
                        if !sub.is_some_and(|s| allowed.contains(&s)) {
                            out.push(problem(
                                "extended_config",
                                format!(
                                    "extended_config.SecretSubType must be one of {} when secret_type is {ty:?}",
                                    allowed.join(", ")
                                ),
                                extended_config_help(ty),
                            ));
                        }
                    }
                }
            },
            _ => {}
        }
    }
}

/// Custom data: one spelling, managed types only, at most 10 pairs.
fn check_custom_data(args: &SecretArgs, set: &BTreeSet<String>, out: &mut Vec<Problem>) {
    let known = |a: &str| !args.is_unknown(a);
    let ty = args.secret_type.as_str();
    if (set.contains("custom_data") || set.contains("extended_config_custom_data"))
        && known("secret_type")
    {
        if set.contains("custom_data") && set.contains("extended_config_custom_data") {
            out.push(problem(
                "extended_config_custom_data",
                "custom_data and extended_config_custom_data are the same setting",
                "set only one of them",
            ));
        }
        if !is_managed(ty) {
            out.push(problem(
                if set.contains("custom_data") { "custom_data" } else { "extended_config_custom_data" },
                "custom data cannot be set on a Generic secret",
                "the seed: \"Normal credentials do not support Setting this parameter\"; it is for Rds, RAMCredentials, ECS, Redis and PolarDB secrets",
            ));
        }
        if args.custom_data.as_ref().is_some_and(|c| c.len() > 10) {
            out.push(problem(
                "custom_data",
                "custom data holds at most 10 pairs",
                "remove pairs",
            ));
        }
    }
}

/// Automatic rotation: managed types only and with a rotation_interval;
/// any rotation_interval given must be a period between 6h and 8760h.
fn check_rotation(args: &SecretArgs, out: &mut Vec<Problem>) {
    let known = |a: &str| !args.is_unknown(a);
    let ty = args.secret_type.as_str();
    if known("enable_automatic_rotation") && args.enable_automatic_rotation == Some(true) {
        if !is_managed(ty) {
            out.push(problem(
                "enable_automatic_rotation",
                "automatic rotation cannot be enabled on a Generic secret",
                "the seed: valid when secret_type is Rds, RAMCredentials or ECS; \
                 Generic secrets rotate with new versions (PutSecretValue) or Rota's own rotation",
            ));
        }
        if args.rotation_interval.is_none() {
            out.push(problem(
                "rotation_interval",
                "rotation_interval is required when enable_automatic_rotation is true",
                "write the period as <integer><unit>, unit d, h, m or s, between 6h and 8760h (e.g. \"604800s\" for 7 days)",
            ));
        }
    }
    if known("rotation_interval")
        && let Some(raw) = &args.rotation_interval
    {
        match interval_seconds(raw) {
            Some(s) if (6 * 3600..=8760 * 3600).contains(&s) => {}
            _ => out.push(problem(
                "rotation_interval",
                format!("rotation_interval {raw:?} is not a rotation period"),
                "write <integer><unit>, unit d, h, m or s, between 6h and 8760h (e.g. \"604800s\" or \"7d\")",
            )),
        }
    }
}

/// policy (a JSON object, at most 32768 bytes) and policy_name.
fn check_policy(args: &SecretArgs, out: &mut Vec<Problem>) {
    let known = |a: &str| !args.is_unknown(a);
    if known("policy")
        && let Some(p) = &args.policy
    {
        let ok = serde_json::from_str::<serde_json::Value>(p)
            .ok()
            .is_some_and(|v| v.is_object());
        if !ok {
            out.push(problem(
                "policy",
                "policy is not a JSON object",
                "write the policy with jsonencode({ Version = \"1\", Statement = [ … ] }) or as a JSON string",
            ));
        } else if p.len() > 32_768 {
            out.push(problem(
                "policy",
                "policy is longer than 32768 bytes",
                "shorten the policy",
            ));
        }
    }
    if let Some(n) = &args.policy_name
        && known("policy_name")
        && n != "default"
    {
        out.push(problem(
            "policy_name",
            format!("policy_name {n:?} is not a policy name"),
            "allowed values: default",
        ));
    }
}

/// Tags: keys and values, reserved prefixes, and the count left beside
/// Rota's ownership tags.
fn check_tags(args: &SecretArgs, out: &mut Vec<Problem>) {
    let known = |a: &str| !args.is_unknown(a);
    if known("tags") {
        for (k, v) in &args.tags {
            let lower = k.to_ascii_lowercase();
            if k.is_empty() || k.chars().count() > 128 || !tag_charset_ok(k) {
                out.push(problem(
                    "tags",
                    format!("tag key {k:?} is not valid"),
                    "tag keys are 1 to 128 letters, digits or / \\ _ - . + = : @",
                ));
            } else if lower.starts_with("aliyun")
                || lower.starts_with("acs:")
                || lower.starts_with(ROTA_TAG_PREFIX)
            {
                out.push(problem(
                    "tags",
                    format!("tag key {k:?} uses a reserved prefix"),
                    "the prefixes aliyun, acs: (Alibaba Cloud) and rota: (Rota's ownership tags) are reserved",
                ));
            }
            if v.chars().count() > 128 || !tag_charset_ok(v) {
                out.push(problem(
                    "tags",
                    format!("the value of tag {k:?} is not valid"),
                    "tag values are at most 128 letters, digits or / \\ _ - . + = : @",
                ));
            }
        }
        if args.tags.len() > 20 - crate::ownership::TAG_COUNT {
            out.push(problem(
                "tags",
                format!("{} tags are too many", args.tags.len()),
                format!(
                    "KMS allows 20 tags per secret and Rota uses {} (rota:managed, rota:config, rota:address): at most {} remain",
                    crate::ownership::TAG_COUNT,
                    20 - crate::ownership::TAG_COUNT
                ),
            ));
        }
    }
}

/// recovery_window_in_days: 7 to 30.
fn check_recovery_window(args: &SecretArgs, out: &mut Vec<Problem>) {
    let known = |a: &str| !args.is_unknown(a);
    if known("recovery_window_in_days") && !(7..=30).contains(&args.recovery_window_in_days) {
        out.push(problem(
            "recovery_window_in_days",
            format!(
                "recovery_window_in_days {} is out of range",
                args.recovery_window_in_days
            ),
            "allowed values: 7 to 30 (days; default 30)",
        ));
    }
}

/// version_stage, move_to_version, remove_from_version and
/// version_stages: Generic only, and the combinations the seed requires.
fn check_version_stages(args: &SecretArgs, set: &BTreeSet<String>, out: &mut Vec<Problem>) {
    let ty = args.secret_type.as_str();
    let stage_args = set.contains("move_to_version") || set.contains("remove_from_version");
    if stage_args || set.contains("version_stage") {
        if is_managed(ty) {
            out.push(problem(
                if set.contains("move_to_version") { "move_to_version" } else { "remove_from_version" },
                "version stages can be moved only on Generic secrets",
                "UpdateSecretVersionStage is a Generic-only action; managed secrets move stages by rotating",
            ));
        } else if !stage_args {
            out.push(problem(
                "version_stage",
                "version_stage needs move_to_version or remove_from_version",
                "the seed: RemoveFromVersion and MoveToVersion specify at least one of the parameters",
            ));
        } else if [
            rota_kms::kms::stage::CURRENT,
            rota_kms::kms::stage::PREVIOUS,
        ]
        .contains(&args.version_stage.as_str())
            && args.move_to_version.is_none()
        {
            out.push(problem(
                "version_stage",
                format!(
                    "move_to_version is required when version_stage is {:?}",
                    args.version_stage
                ),
                "the seed: this parameter must be specified when the value of VersionStage is ACSCurrent or ACSPrevious",
            ));
        }
    }
    if set.contains("version_stages") && is_managed(ty) {
        out.push(problem(
            "version_stages",
            "version_stages applies only to Generic secrets",
            "new versions of managed secrets come from rotation",
        ));
    }
}

fn sub_types(ty: &str) -> Option<&'static [&'static str]> {
    Some(match ty {
        "Rds" => &["SingleUser", "DoubleUsers"],
        "Redis" | "PolarDB" => &["DoubleUsers"],
        "RAMCredentials" => &["RamUserAccessKey"],
        "ECS" => &["Password", "SSHKey"],
        _ => return None,
    })
}

fn extended_config_help(ty: &str) -> String {
    match ty {
        "Rds" => "an Rds secret's extended_config is {\"SecretSubType\":\"SingleUser\"|\"DoubleUsers\",\"DBInstanceId\":\"…\"}".into(),
        "Redis" => "a Redis secret's extended_config is {\"SecretSubType\":\"DoubleUsers\",\"AccountName\",\"CloneAccountName\",\"AccountPrivilege\",\"InstanceId\",\"RegionId\"}".into(),
        "PolarDB" => "a PolarDB secret's extended_config is {\"SecretSubType\":\"DoubleUsers\",\"RegionId\",\"DBClusterId\",\"DBType\",\"AccountName\",\"CloneAccountName\",…}".into(),
        "RAMCredentials" => "a RAMCredentials secret's extended_config is {\"SecretSubType\":\"RamUserAccessKey\",\"UserName\":\"…\"}".into(),
        "ECS" => "an ECS secret's extended_config is {\"SecretSubType\":\"Password\"|\"SSHKey\",\"RegionId\":\"…\",\"InstanceId\":\"…\"}".into(),
        _ => "extended_config is a JSON object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_intervals() {
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(interval_seconds("7d"), Some(604_800));
        assert_eq!(interval_seconds("604800s"), Some(604_800));
        assert_eq!(interval_seconds("7w"), None);
    }
}

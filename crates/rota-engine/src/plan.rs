//! Planning: the configuration against the live state → create, update in
//! place, replace, destroy or nothing, per resource, with attribute-level
//! changes and the KMS calls that will make them.
//!
//! Semantics (kms-api.md §3–4, rotation.md):
//! - **in place**: `description` and custom data (UpdateSecret,
//!   `ExtendedConfig.CustomData`); `enable_automatic_rotation` and
//!   `rotation_interval` (UpdateSecretRotationPolicy; intervals compare in
//!   seconds, so `7d` equals `604800s`); `policy` (SetSecretPolicy, compared as
//!   JSON); `tags` (UntagResources for removed keys, TagResources for the
//!   rest); a new `version_id` with new `secret_data` (PutSecretValue);
//!   `move_to_version` / `remove_from_version` (UpdateSecretVersionStage).
//! - **the seed's ForceNew `tags`, `secret_data`, `version_id`** are updated in
//!   place, as the Terraform provider does: replacing the secret would destroy
//!   its versions and collide with the recovery window.
//! - **replacement** (`-/+`): `secret_name`, `secret_type`,
//!   `encryption_key_id`, `dkms_instance_id`, `extended_config` (apart from
//!   its CustomData). A replacement under the same name needs
//!   `force_delete_without_recovery = true`, otherwise the plan is refused
//!   with the ways out.
//! - **never fight the rotator**: `secret_data`/`version_id` drift is not
//!   planned back for managed types, nor when the configured version still
//!   exists but is no longer ACSCurrent, nor when ACSCurrent is a version
//!   written by Rota's rotation (version id `rota-…`, see
//!   [`rota_rotation::protocol::is_rotation_version`]; no extra API call),
//!   nor for secrets tagged `rota:rotated`. Changing `secret_data` without a
//!   new `version_id` is refused: KMS versions are immutable.
//! - **destroy**: in destroy mode every configured secret that exists; in
//!   apply mode the secrets no longer configured that this configuration
//!   created ([`crate::ownership`]).
//!
//! A plan never holds a secret value: `secret_data` is `(sensitive)` in text
//! and JSON. A [`SavedPlan`] binds the plan to a salted SHA-256 of each
//! configured value and to the fingerprint of the live state it was computed
//! against.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use rota_kms::KmsClient;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::config::{Config, Diagnostic, Diagnostics, Known, Resource, resource_object};
use crate::error::EngineError;
use crate::live::{self, LiveSecret, ReadOptions};
use crate::ownership::{ADDRESS_TAG, Ownership};
use crate::resource::{RESOURCE_TYPE, SecretArgs, interval_seconds};

/// The name a RAMCredentials secret is created with; KMS generates the real one.
const AUTO_NAME: &str = "$Auto";

/// The tag Rota's rotation puts on secrets whose value it changed.
pub const ROTATED_TAG: &str = "rota:rotated";

/// What a plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanMode {
    /// Make the live state match the configuration.
    Apply,
    /// Delete every configured secret (and the orphans this configuration made).
    Destroy,
}

/// Options of [`plan`].
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Apply or destroy.
    pub mode: PlanMode,
    /// Who owns what.
    pub ownership: Ownership,
    /// How many secrets to read at once.
    pub concurrency: usize,
    /// The salt for value hashes (a saved plan reuses its own); `None`: a fresh one.
    pub salt: Option<String>,
    /// `-target ADDR`: only these resources and what they depend on.
    pub targets: Vec<String>,
    /// `-replace ADDR`: these existing secrets are replaced.
    pub replace: Vec<String>,
}

impl PlanOptions {
    /// Apply mode, 32 reads at a time.
    pub fn new(mode: PlanMode, ownership: Ownership) -> Self {
        Self {
            mode,
            ownership,
            concurrency: 32,
            salt: None,
            targets: Vec::new(),
            replace: Vec::new(),
        }
    }
}

/// What happens to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Nothing: live matches the configuration.
    NoOp,
    /// CreateSecret.
    Create,
    /// Calls on the existing secret.
    Update,
    /// Delete, then create again.
    Replace,
    /// DeleteSecret.
    Delete,
}

impl Action {
    /// The Terraform-like symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::NoOp => " ",
            Self::Create => "+",
            Self::Update => "~",
            Self::Replace => "-/+",
            Self::Delete => "-",
        }
    }
}

/// A value as a plan shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shown {
    /// A plain value.
    Value(serde_json::Value),
    /// A secret: never shown.
    Sensitive,
    /// Known only after apply.
    Unknown,
}

impl Shown {
    fn text(&self) -> String {
        match self {
            Self::Value(serde_json::Value::Object(o)) => {
                let inner: Vec<String> = o
                    .iter()
                    .map(|(k, v)| format!("{} = {}", serde_json::Value::String(k.clone()), v))
                    .collect();
                if inner.is_empty() {
                    "{}".into()
                } else {
                    format!("{{ {} }}", inner.join(", "))
                }
            }
            Self::Value(v) => v.to_string(),
            Self::Sensitive => "(sensitive)".into(),
            Self::Unknown => "(known after apply)".into(),
        }
    }
}

fn val(s: impl Into<String>) -> Shown {
    Shown::Value(serde_json::Value::String(s.into()))
}

/// One attribute's change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Attribute name.
    pub attr: String,
    /// Before (`None`: absent).
    pub before: Option<Shown>,
    /// After (`None`: removed).
    pub after: Option<Shown>,
    /// Whether this change forces a replacement.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forces_replacement: bool,
}

/// One KMS call of a planned action (no values: they come from the
/// configuration at apply time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "PascalCase")]
pub enum Step {
    /// RestoreSecret (the secret is in its deletion window).
    RestoreSecret,
    /// DeleteSecret.
    DeleteSecret {
        /// The secret deleted (for a replacement under a new name, the old one).
        secret_name: String,
        /// ForceDeleteWithoutRecovery.
        force: bool,
        /// RecoveryWindowInDays.
        recovery_window_in_days: u32,
    },
    /// CreateSecret.
    CreateSecret,
    /// PutSecretValue (a new version, or the stages of the first one).
    PutSecretValue {
        /// The version.
        version_id: String,
    },
    /// UpdateSecretVersionStage.
    UpdateSecretVersionStage {
        /// The stage.
        stage: String,
        /// MoveToVersion.
        move_to: Option<String>,
        /// RemoveFromVersion.
        remove_from: Option<String>,
    },
    /// UpdateSecretRotationPolicy.
    UpdateSecretRotationPolicy,
    /// SetSecretPolicy.
    SetSecretPolicy,
    /// UpdateSecret (Description and/or ExtendedConfig.CustomData).
    UpdateSecret {
        /// Sends Description.
        description: bool,
        /// Sends ExtendedConfig.CustomData.
        custom_data: bool,
    },
    /// UntagResources.
    UntagResources {
        /// Keys removed.
        keys: Vec<String>,
    },
    /// TagResources.
    TagResources {
        /// Keys set.
        keys: Vec<String>,
    },
    /// TagResources of the ownership tags (a `moved` address).
    TagOwnership,
}

impl Step {
    /// The KMS action name.
    pub fn action(&self) -> &'static str {
        match self {
            Self::RestoreSecret => "RestoreSecret",
            Self::DeleteSecret { .. } => "DeleteSecret",
            Self::CreateSecret => "CreateSecret",
            Self::PutSecretValue { .. } => "PutSecretValue",
            Self::UpdateSecretVersionStage { .. } => "UpdateSecretVersionStage",
            Self::UpdateSecretRotationPolicy => "UpdateSecretRotationPolicy",
            Self::SetSecretPolicy => "SetSecretPolicy",
            Self::UpdateSecret { .. } => "UpdateSecret",
            Self::UntagResources { .. } => "UntagResources",
            Self::TagResources { .. } | Self::TagOwnership => "TagResources",
        }
    }
}

/// The plan of one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceChange {
    /// `alicloud_kms_secret.<name>`.
    pub address: String,
    /// The name label (`None` for a secret no longer in the configuration).
    pub name: Option<String>,
    /// The secret's name (the configured one; the live one for a destroy).
    pub secret_name: String,
    /// What happens.
    pub action: Action,
    /// Why (replacements, destroys).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// Attribute changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// The KMS calls, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// Remarks (drift deliberately not planned back, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What the configuration asks that this plan does not do, or what it
    /// does that the user should know (a policy locking Rota out): shown
    /// even when the resource is unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Names of the resources this one depends on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

/// Counts, Terraform-style (a replacement adds one and destroys one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Secrets created.
    pub add: usize,
    /// Secrets changed in place.
    pub change: usize,
    /// Secrets deleted.
    pub destroy: usize,
}

/// A plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Apply or destroy.
    pub mode: PlanMode,
    /// Every resource, in execution order (no-ops included).
    pub resources: Vec<ResourceChange>,
    /// The configuration id the ownership tags carry.
    pub config_id: String,
    pub(crate) live: BTreeMap<String, LiveSecret>,
    pub(crate) salt: String,
    pub(crate) data_hashes: BTreeMap<String, String>,
    /// `-target` addresses the plan was limited to.
    pub targets: Vec<String>,
    /// `-replace` addresses.
    pub replace: Vec<String>,
    /// What the data sources read (by address), for the apply to evaluate
    /// with.
    pub(crate) data: DataValues,
}

/// The values the data sources read; `Debug` shows only their addresses
/// (they may hold secret values).
#[derive(Clone, Default)]
pub(crate) struct DataValues(pub(crate) Known);

impl std::fmt::Debug for DataValues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Plan {
    /// Whether anything would change.
    pub fn has_changes(&self) -> bool {
        self.resources.iter().any(|r| r.action != Action::NoOp)
    }

    /// The counts.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for r in &self.resources {
            match r.action {
                Action::NoOp => {}
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1;
                }
                Action::Delete => s.destroy += 1,
            }
        }
        s
    }

    /// The live state a resource was planned against.
    pub fn live(&self, address: &str) -> Option<&LiveSecret> {
        self.live.get(address)
    }

    /// The plan as text, Terraform-style.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if !self.has_changes() {
            out.push_str(match self.mode {
                PlanMode::Apply => "No changes. The live secrets match the configuration.\n",
                PlanMode::Destroy => "No changes. No configured secret exists.\n",
            });
            self.render_warnings(&mut out);
            return out;
        }
        out.push_str("Rota will perform the following actions:\n");
        for r in self.resources.iter().filter(|r| r.action != Action::NoOp) {
            out.push('\n');
            render_resource(&mut out, r);
        }
        let s = self.summary();
        let _ = writeln!(
            out,
            "\nPlan: {} to add, {} to change, {} to destroy.",
            s.add, s.change, s.destroy
        );
        self.render_warnings(&mut out);
        out
    }

    /// Every resource's warnings, after the plan.
    fn render_warnings(&self, out: &mut String) {
        for r in &self.resources {
            for w in &r.warnings {
                let _ = writeln!(out, "\nWarning: {}: {w}", r.address);
            }
        }
    }

    /// The plan as JSON (no secret values).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "format_version": "1",
            "mode": self.mode,
            "config_id": self.config_id,
            "summary": self.summary(),
            "resource_changes": self.resources,
        })
    }

    /// The plan bound to its value hashes and live fingerprints, to save.
    pub fn save(&self) -> SavedPlan {
        SavedPlan {
            format_version: "1".into(),
            mode: self.mode,
            config_id: self.config_id.clone(),
            salt: self.salt.clone(),
            resource_changes: self.resources.clone(),
            secret_data_sha256: self.data_hashes.clone(),
            live_fingerprints: self
                .live
                .iter()
                .map(|(k, v)| (k.clone(), v.fingerprint()))
                .collect(),
            targets: self.targets.clone(),
            replace: self.replace.clone(),
        }
    }
}

fn render_resource(out: &mut String, r: &ResourceChange) {
    // The block label, as Terraform prints it: without the module path
    // and an instance's key.
    let label = r
        .address
        .split_once('[')
        .map_or(r.address.as_str(), |x| x.0);
    let label = label.rsplit_once('.').map_or(label, |x| x.1);
    let what = match r.action {
        Action::Create => "will be created",
        Action::Update => "will be updated in place",
        Action::Replace => "must be replaced",
        Action::Delete => "will be destroyed",
        Action::NoOp => "is unchanged",
    };
    let _ = writeln!(out, "  # {} {what}", r.address);
    for reason in &r.reasons {
        let _ = writeln!(out, "  # ({reason})");
    }
    let sym = r.action.symbol();
    let _ = writeln!(out, "{sym:>3} resource \"{RESOURCE_TYPE}\" \"{label}\" {{");
    let width = r.changes.iter().map(|c| c.attr.len()).max().unwrap_or(0);
    for c in &r.changes {
        let (mark, text) = match (&c.before, &c.after) {
            (None, Some(a)) => ("+", a.text()),
            (Some(b), None) => ("-", format!("{} -> null", b.text())),
            (Some(Shown::Sensitive), Some(Shown::Sensitive)) => ("~", Shown::Sensitive.text()),
            (Some(b), Some(a)) if b == a => (" ", a.text()),
            (Some(b), Some(a)) => ("~", format!("{} -> {}", b.text(), a.text())),
            (None, None) => (" ", "null".into()),
        };
        let mark = if r.action == Action::Delete {
            "-"
        } else {
            mark
        };
        let text = if r.action == Action::Delete {
            c.before.as_ref().map(Shown::text).unwrap_or_default()
        } else {
            text
        };
        let force = if c.forces_replacement {
            " # forces replacement"
        } else {
            ""
        };
        let _ = writeln!(out, "      {mark} {:width$} = {text}{force}", c.attr);
    }
    let _ = writeln!(out, "    }}");
    if !r.steps.is_empty() {
        let calls: Vec<&str> = r.steps.iter().map(Step::action).collect();
        let _ = writeln!(out, "    calls: {}", calls.join(", "));
    }
    for note in &r.notes {
        let _ = writeln!(out, "    note: {note}");
    }
}

/// A plan saved to a file: the plan plus what it is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPlan {
    /// `1`.
    pub format_version: String,
    /// Apply or destroy.
    pub mode: PlanMode,
    /// The configuration id.
    pub config_id: String,
    /// Salt of the value hashes (random per plan).
    pub salt: String,
    /// The planned changes, exactly.
    pub resource_changes: Vec<ResourceChange>,
    /// Address → salted SHA-256 of the configured `secret_data`.
    pub secret_data_sha256: BTreeMap<String, String>,
    /// Address → fingerprint of the live state the plan was computed against.
    pub live_fingerprints: BTreeMap<String, String>,
    /// `-target` addresses (applying the file plans with them again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// `-replace` addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace: Vec<String>,
}

impl SavedPlan {
    /// Parses a saved plan file.
    pub fn from_json(text: &str) -> Result<Self, EngineError> {
        let plan: Self =
            serde_json::from_str(text).map_err(|e| EngineError::BadPlanFile(format!("{e}")))?;
        if plan.format_version != "1" {
            return Err(EngineError::BadPlanFile(format!(
                "format version {:?} is not supported (expected \"1\")",
                plan.format_version
            )));
        }
        Ok(plan)
    }

    /// The file's text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a saved plan serializes")
    }

    /// Checks that `fresh` (planned now with this plan's salt) is exactly
    /// this plan: same values (by hash), same live state, same actions.
    pub fn verify(&self, fresh: &Plan) -> Result<(), EngineError> {
        if fresh.mode != self.mode {
            return Err(EngineError::StalePlan(
                "it was made for another mode".into(),
            ));
        }
        if fresh.config_id != self.config_id {
            return Err(EngineError::StalePlan(
                "it was made for another configuration".into(),
            ));
        }
        if fresh.data_hashes != self.secret_data_sha256 {
            let changed: Vec<&String> = fresh
                .data_hashes
                .keys()
                .chain(self.secret_data_sha256.keys())
                .filter(|k| fresh.data_hashes.get(*k) != self.secret_data_sha256.get(*k))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            return Err(EngineError::StalePlan(format!(
                "the configured secret_data of {} changed since the plan was made; plan again",
                changed
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let now: BTreeMap<String, String> = fresh
            .live
            .iter()
            .map(|(k, v)| (k.clone(), v.fingerprint()))
            .collect();
        if now != self.live_fingerprints {
            let changed: BTreeSet<&String> = now
                .keys()
                .chain(self.live_fingerprints.keys())
                .filter(|k| now.get(*k) != self.live_fingerprints.get(*k))
                .collect();
            return Err(EngineError::StalePlan(format!(
                "the live state of {} changed since the plan was made; plan again",
                changed.into_iter().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        if fresh.resources != self.resource_changes {
            return Err(EngineError::StalePlan(
                "the configuration now plans different actions; plan again".into(),
            ));
        }
        Ok(())
    }
}

fn salted_hash(salt: &str, data: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update([0]);
    h.update(data.as_bytes());
    crate::hex(&h.finalize())
}

fn json_eq(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

fn live_custom_data(live: &LiveSecret) -> serde_json::Map<String, serde_json::Value> {
    live.extended_config
        .as_deref()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .and_then(|v| v.get("CustomData").cloned())
        .and_then(|v| match v {
            serde_json::Value::Object(o) => Some(o),
            _ => None,
        })
        .unwrap_or_default()
}

fn tags_json(t: &BTreeMap<String, String>) -> serde_json::Value {
    serde_json::Value::Object(
        t.iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    )
}

/// Shows the sensitive arguments of a resource (a sensitive variable,
/// `sensitive(…)`, a `secret_data` they read) as `(sensitive)`, before and
/// after.
fn mask_sensitive(rc: &mut ResourceChange, sensitive: &BTreeSet<String>) {
    let hide = |s: &mut Option<Shown>| {
        if let Some(v @ Shown::Value(_)) = s {
            *v = Shown::Sensitive;
        }
    };
    for c in rc
        .changes
        .iter_mut()
        .filter(|c| sensitive.contains(&c.attr))
    {
        hide(&mut c.before);
        hide(&mut c.after);
    }
}

/// The attributes of a secret to be created, as `+` lines.
fn creation_changes(args: &SecretArgs, set: &BTreeSet<String>) -> Vec<Change> {
    let mut out = Vec::new();
    let unknown = |a: &str| args.is_unknown(a);
    let mut add = |attr: &str, v: Shown| {
        let v = if unknown(attr) && v != Shown::Sensitive {
            Shown::Unknown
        } else {
            v
        };
        out.push(Change {
            attr: attr.into(),
            before: None,
            after: Some(v),
            forces_replacement: false,
        });
    };
    add("arn", Shown::Unknown);
    add("create_time", Shown::Unknown);
    if let Some(v) = &args.description {
        add("description", val(v));
    }
    if let Some(v) = &args.dkms_instance_id {
        add("dkms_instance_id", val(v));
    }
    if let Some(v) = args.enable_automatic_rotation {
        add("enable_automatic_rotation", Shown::Value(v.into()));
    }
    if let Some(v) = &args.encryption_key_id {
        add("encryption_key_id", val(v));
    }
    if let Some(v) = &args.extended_config {
        add("extended_config", val(v));
    }
    if let Some(cd) = &args.custom_data {
        add(
            "custom_data",
            Shown::Value(serde_json::Value::Object(cd.clone())),
        );
    }
    add("id", Shown::Unknown);
    if let Some(v) = &args.policy {
        add("policy", val(v));
    }
    if let Some(v) = &args.rotation_interval {
        add("rotation_interval", val(v));
    }
    add("secret_data", Shown::Sensitive);
    add("secret_data_type", val(&args.secret_data_type));
    add("secret_name", val(&args.secret_name));
    add("secret_type", val(&args.secret_type));
    if !args.tags.is_empty() || set.contains("tags") {
        add("tags", Shown::Value(tags_json(&args.tags)));
    }
    add("version_id", val(&args.version_id));
    if let Some(st) = &args.version_stages {
        add(
            "version_stages",
            Shown::Value(serde_json::Value::from(st.clone())),
        );
    }
    out
}

fn creation_steps(args: &SecretArgs) -> Vec<Step> {
    let mut steps = vec![Step::CreateSecret];
    if let Some(stages) = &args.version_stages
        && stages.as_slice() != [rota_kms::kms::stage::CURRENT]
    {
        steps.push(Step::PutSecretValue {
            version_id: args.version_id.clone(),
        });
    }
    steps
}

/// What the plan needs to know about one configured resource.
struct Planned<'a> {
    resource: &'a Resource,
    args: SecretArgs,
}

/// Plans the configuration against the live state.
pub async fn plan(
    client: &KmsClient,
    config: &Config,
    options: &PlanOptions,
) -> Result<Plan, EngineError> {
    let salt = options.salt.clone().unwrap_or_else(|| {
        let bytes: [u8; 16] = rand::random();
        crate::hex(&bytes)
    });
    let mut refusals: Vec<Diagnostic> = Vec::new();
    let block_address = |r: &Resource| crate::resource::address_of_name(&r.block);
    let targets = options.targets.iter().map(|a| (a, true));
    for (a, whole_block_ok) in targets.chain(options.replace.iter().map(|a| (a, false))) {
        if !config
            .resources
            .iter()
            .any(|r| &r.address == a || (whole_block_ok && &block_address(r) == a))
        {
            let known: Vec<&str> = config
                .resources
                .iter()
                .map(|r| r.address.as_str())
                .collect();
            return Err(EngineError::Refused(Diagnostics(vec![
                Diagnostic::new(format!("no resource {a} is declared")).help(format!(
                    "{}resources: {}",
                    crate::config::suggest(a, &known),
                    known.join(", ")
                )),
            ])));
        }
    }

    // The secrets this configuration created: needed for orphans, renames,
    // and `$Auto` names (KMS names a RAMCredentials secret created with
    // `$Auto`; the `rota:address` tag finds it again).
    let owned = live::owned_secrets(client, &options.ownership).await?;
    let data = crate::data::read_all(client, config, options.concurrency).await?;
    let (planned, mut lives) = read_configured(client, config, options, &owned, &data).await?;

    // Orphans: secrets this configuration created that it no longer declares.
    let configured_names: BTreeSet<String> =
        planned.iter().map(|p| p.args.secret_name.clone()).collect();
    let mut orphans: Vec<(String, BTreeMap<String, String>)> = owned
        .into_iter()
        .filter(|(name, _)| !configured_names.contains(name))
        .collect();

    let mut resources = Vec::new();
    let mut data_hashes = BTreeMap::new();
    let mut live_map = BTreeMap::new();

    for p in &planned {
        let r = p.resource;
        let args = &p.args;
        let live = lives.remove(&r.address).flatten();
        data_hashes.insert(
            r.address.clone(),
            salted_hash(&salt, args.secret_data.expose_secret()),
        );
        let mut rc = unchanged(r, args);
        let live = match options.mode {
            PlanMode::Destroy => {
                if let Some(l) = &live {
                    plan_destroy(&mut rc, args, l);
                }
                live
            }
            PlanMode::Apply => match live {
                None => {
                    plan_create(&mut rc, r, args, &mut orphans);
                    None
                }
                Some(mut l) => {
                    read_versions_if_needed(client, args, &mut l).await?;
                    let ignoring = ignoring(r, args);
                    let asked = options
                        .replace
                        .contains(&r.address)
                        .then(|| "-replace asked for it".to_owned());
                    match asked.or_else(|| triggered_by(r, &resources)) {
                        Some(why) => {
                            replace_triggered(config, r, &ignoring, &l, &mut rc, &mut refusals, why)
                        }
                        None => diff_existing(config, r, &ignoring, &l, &mut rc, &mut refusals),
                    }
                    Some(l)
                }
            },
        };
        if let Some(l) = live {
            live_map.insert(r.address.clone(), l);
        }
        mask_sensitive(&mut rc, &r.sensitive);
        resources.push(rc);
    }

    // Orphans are destroyed after everything else (they are not referenced).
    for (name, tags) in orphans {
        if let Some((rc, l)) = plan_orphan(client, options, name, &tags).await? {
            live_map.insert(rc.address.clone(), l);
            resources.push(rc);
        }
    }

    if !options.targets.is_empty() {
        let wanted = targeted(config, &options.targets);
        resources.retain(|rc| wanted.contains(&rc.address));
        live_map.retain(|a, _| wanted.contains(a));
        data_hashes.retain(|a, _| wanted.contains(a));
    }
    prevent_destroy(config, &resources, &mut refusals);
    if options.mode == PlanMode::Destroy {
        resources.reverse();
    }
    if !refusals.is_empty() {
        return Err(EngineError::Refused(Diagnostics(refusals)));
    }
    Ok(Plan {
        mode: options.mode,
        resources,
        config_id: options.ownership.config_id().to_owned(),
        live: live_map,
        salt,
        data_hashes,
        targets: options.targets.clone(),
        replace: options.replace.clone(),
        data: DataValues(data),
    })
}

/// What every configured secret looks like now, by resource name: its
/// arguments and, for one that exists, its computed attributes (`id`,
/// `arn`, `create_time`, …) — what `output` blocks are evaluated with.
///
/// # Errors
///
/// A KMS read failed, or a resource does not evaluate.
pub async fn live_known(
    client: &KmsClient,
    config: &Config,
    options: &PlanOptions,
) -> Result<Known, EngineError> {
    let owned = live::owned_secrets(client, &options.ownership).await?;
    let data = crate::data::read_all(client, config, options.concurrency).await?;
    let (planned, lives) = read_configured(client, config, options, &owned, &data).await?;
    let mut known = data;
    for p in &planned {
        let live = lives.get(&p.resource.address).cloned().flatten();
        let computed = live.as_ref().map(LiveSecret::computed);
        known.insert(
            p.resource.name.clone(),
            resource_object(&p.args, computed.as_ref()),
        );
    }
    Ok(known)
}

/// Evaluates the configured resources level by level (a resource once
/// what it refers to is known) and reads their live state, each level
/// concurrently. Returns them in that order, with the live secret by
/// address (`None`: it does not exist, or its name is not known yet).
async fn read_configured<'c>(
    client: &KmsClient,
    config: &'c Config,
    options: &PlanOptions,
    owned: &[(String, BTreeMap<String, String>)],
    data: &Known,
) -> Result<(Vec<Planned<'c>>, BTreeMap<String, Option<LiveSecret>>), EngineError> {
    let mut auto_names: BTreeMap<&str, &str> = owned
        .iter()
        .filter_map(|(name, tags)| tags.get(ADDRESS_TAG).map(|a| (a.as_str(), name.as_str())))
        .collect();
    // A moved address finds the secret its old address created.
    for m in &config.moved {
        if !auto_names.contains_key(m.to.as_str())
            && let Some(name) = auto_names.get(m.from.as_str()).copied()
        {
            auto_names.insert(m.to.as_str(), name);
        }
    }
    let mut known = data.clone();
    let mut planned: Vec<Planned<'_>> = Vec::new();
    let mut lives: BTreeMap<String, Option<LiveSecret>> = BTreeMap::new();
    let mut remaining: Vec<&Resource> = config.resources.iter().collect();
    while !remaining.is_empty() {
        let (level, rest): (Vec<&Resource>, Vec<&Resource>) = remaining
            .into_iter()
            .partition(|r| r.depends_on.iter().all(|d| known.contains_key(d)));
        remaining = rest;
        if level.is_empty() {
            return Err(EngineError::Internal("dependency cycle".into()));
        }
        let mut batch = Vec::new();
        for r in level {
            let args = evaluate_for_plan(config, r, &known, &auto_names)?;
            let opts = ReadOptions {
                policy: args.policy.is_some(),
                versions: !args.is_managed()
                    && (args.move_to_version.is_some() || args.remove_from_version.is_some()),
            };
            batch.push((r, args, opts));
        }
        let requests: Vec<(String, ReadOptions)> = batch
            .iter()
            .filter(|(_, a, _)| !a.is_unknown("secret_name"))
            .map(|(_, a, o)| (a.secret_name.clone(), *o))
            .collect();
        let mut results = live::read_many(client, requests, options.concurrency)
            .await
            .into_iter();
        for (r, args, _) in batch {
            let live = if args.is_unknown("secret_name") {
                None
            } else {
                results
                    .next()
                    .unwrap_or_else(|| Err(EngineError::Internal("read lost".into())))?
            };
            let obj = match &live {
                Some(l) => resource_object(&args, Some(&l.computed())),
                None => resource_object(&args, None),
            };
            known.insert(r.name.clone(), obj);
            lives.insert(r.address.clone(), live);
            planned.push(Planned { resource: r, args });
        }
    }
    Ok((planned, lives))
}

/// Evaluates a resource with what is `known`; a `$Auto` name becomes the
/// name KMS gave the secret this address created, if there is one.
fn evaluate_for_plan(
    config: &Config,
    r: &Resource,
    known: &Known,
    auto_names: &BTreeMap<&str, &str>,
) -> Result<SecretArgs, EngineError> {
    let mut args = config.evaluate(r, known).map_err(EngineError::Config)?;
    if args.secret_name == AUTO_NAME
        && let Some(name) = auto_names.get(r.address.as_str())
    {
        args.secret_name = (*name).to_owned();
    }
    Ok(args)
}

/// The change of a configured resource before anything is planned for it:
/// nothing.
fn unchanged(r: &Resource, args: &SecretArgs) -> ResourceChange {
    ResourceChange {
        address: r.address.clone(),
        name: Some(r.name.clone()),
        secret_name: args.secret_name.clone(),
        action: Action::NoOp,
        reasons: Vec::new(),
        changes: Vec::new(),
        steps: Vec::new(),
        notes: Vec::new(),
        warnings: Vec::new(),
        depends_on: r.depends_on.iter().cloned().collect(),
    }
}

/// Destroy mode: deletes the existing secret `l`, unless it is already
/// scheduled for deletion (and not to be forced).
fn plan_destroy(rc: &mut ResourceChange, args: &SecretArgs, l: &LiveSecret) {
    if l.planned_delete_time.is_some() && !args.force_delete_without_recovery {
        rc.notes.push(format!(
            "already scheduled for deletion at {}",
            l.planned_delete_time.as_deref().unwrap_or("")
        ));
    } else {
        rc.action = Action::Delete;
        rc.secret_name = l.name.clone();
        rc.changes = destroy_changes(l);
        rc.steps.push(delete_step(&l.name, args));
        rc.reasons.push(delete_reason(args));
    }
}

/// A secret that does not exist: created, or, when a secret this address
/// created under another name is among the `orphans`, replaced (that one
/// deleted, this one created).
fn plan_create(
    rc: &mut ResourceChange,
    r: &Resource,
    args: &SecretArgs,
    orphans: &mut Vec<(String, BTreeMap<String, String>)>,
) {
    let renamed = orphans
        .iter()
        .position(|(_, tags)| tags.get(ADDRESS_TAG) == Some(&r.address));
    rc.changes = creation_changes(args, &r.set);
    rc.steps = creation_steps(args);
    if let Some(p) = &args.policy {
        rc.warnings.extend(lockout_warning(p, &r.address));
    }
    let Some(i) = renamed else {
        rc.action = Action::Create;
        return;
    };
    let (old, _) = orphans.remove(i);
    rc.action = Action::Replace;
    rc.reasons.push(format!(
        "secret_name changed from {old:?}: the secret {old:?} is deleted and {:?} is created; the versions of {old:?} are not carried over",
        args.secret_name
    ));
    if let Some(c) = rc.changes.iter_mut().find(|c| c.attr == "secret_name") {
        c.before = Some(val(&old));
        c.forces_replacement = true;
    }
    let delete = Step::DeleteSecret {
        secret_name: old,
        force: args.force_delete_without_recovery,
        recovery_window_in_days: args.recovery_window_in_days,
    };
    // create_before_destroy: the new secret exists before the old one goes
    // (its name differs, so both can exist at once).
    if r.lifecycle.create_before_destroy {
        rc.steps.push(delete);
    } else {
        rc.steps.insert(0, delete);
    }
}

/// Lists the versions of `l` when the diff needs them: a Generic secret
/// whose current version differs from the configured one.
async fn read_versions_if_needed(
    client: &KmsClient,
    args: &SecretArgs,
    l: &mut LiveSecret,
) -> Result<(), EngineError> {
    if l.versions.is_none()
        && !args.is_unknown("version_id")
        && (l.version_id != args.version_id || (!args.is_managed() && stages_differ(args, l)))
        && l.planned_delete_time.is_none()
    {
        l.versions =
            Some(
                client
                    .list_all_versions(&l.name)
                    .await
                    .map_err(|source| EngineError::Kms {
                        secret: l.name.clone(),
                        action: "ListSecretVersionIds",
                        source,
                    })?,
            );
    }
    Ok(())
}

/// The secret actions Rota calls to plan, apply and rotate a secret.
const ROTA_ACTIONS: &[&str] = &[
    "DescribeSecret",
    "GetSecretValue",
    "ListSecretVersionIds",
    "PutSecretValue",
    "UpdateSecretVersionStage",
    "UpdateSecret",
    "DeleteSecret",
];

/// A warning when `policy` lets no principal it names call every action
/// Rota needs: applying it would lock Rota out of the secret (every later
/// plan fails at DescribeSecret with `Forbidden.NoPermission`).
fn lockout_warning(policy: &str, address: &str) -> Option<String> {
    let parsed = rota_kms::policy::SecretPolicy::parse(policy).ok()?;
    let refused = parsed.refused_to_everyone(ROTA_ACTIONS);
    if refused.is_empty() {
        return None;
    }
    let refused: Vec<String> = refused.iter().map(|a| format!("kms:{a}")).collect();
    Some(format!(
        "the policy allows no principal it names {}, which Rota needs for this secret: unless Rota's identity has them, every later plan, apply and rotation fails with Forbidden.NoPermission. The account owner can still repair it: `rota secret policy {address} --policy FILE`",
        refused.join(", ")
    ))
}

/// Whether `version_stages` is configured and differs (as a set) from the
/// stages of the live current version.
fn stages_differ(args: &SecretArgs, l: &LiveSecret) -> bool {
    args.version_stages.as_ref().is_some_and(|want| {
        let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
        let have: BTreeSet<&str> = l.version_stages.iter().map(String::as_str).collect();
        want != have
    })
}

/// The deletion of an orphan: secret `name`, created by this
/// configuration and no longer declared. `None` if it is gone already.
async fn plan_orphan(
    client: &KmsClient,
    options: &PlanOptions,
    name: String,
    tags: &BTreeMap<String, String>,
) -> Result<Option<(ResourceChange, LiveSecret)>, EngineError> {
    let address = tags
        .get(ADDRESS_TAG)
        .cloned()
        .unwrap_or_else(|| format!("{RESOURCE_TYPE}.{name}"));
    let Some(l) = live::read(client, &name, ReadOptions::default()).await? else {
        return Ok(None);
    };
    let mut rc = ResourceChange {
        address: address.clone(),
        name: None,
        secret_name: name.clone(),
        action: Action::Delete,
        reasons: vec![format!(
            "{address} is no longer in the configuration, and this configuration created secret {name:?} (tag rota:config={})",
            options.ownership.config_id()
        )],
        changes: destroy_changes(&l),
        steps: vec![Step::DeleteSecret {
            secret_name: name.clone(),
            force: false,
            recovery_window_in_days: 30,
        }],
        notes: Vec::new(),
        warnings: Vec::new(),
        depends_on: Vec::new(),
    };
    if l.planned_delete_time.is_some() {
        rc.action = Action::NoOp;
        rc.steps.clear();
        rc.changes.clear();
        rc.reasons.clear();
        rc.notes.push("already scheduled for deletion".into());
    } else {
        rc.reasons
            .push("it is deleted with a recovery window of 30 days".into());
    }
    Ok(Some((rc, l)))
}

fn delete_step(name: &str, args: &SecretArgs) -> Step {
    Step::DeleteSecret {
        secret_name: name.to_owned(),
        force: args.force_delete_without_recovery,
        recovery_window_in_days: args.recovery_window_in_days,
    }
}

fn delete_reason(args: &SecretArgs) -> String {
    if args.force_delete_without_recovery {
        "force_delete_without_recovery is true: the secret and all its versions are deleted at once and cannot be restored".into()
    } else {
        format!(
            "it is deleted with a recovery window of {} days; RestoreSecret can bring it back until then",
            args.recovery_window_in_days
        )
    }
}

fn destroy_changes(l: &LiveSecret) -> Vec<Change> {
    let mut out = Vec::new();
    let mut add = |attr: &str, v: Shown| {
        out.push(Change {
            attr: attr.into(),
            before: Some(v),
            after: None,
            forces_replacement: false,
        })
    };
    add("arn", val(&l.arn));
    add("id", val(&l.name));
    add("secret_data", Shown::Sensitive);
    add("secret_name", val(&l.name));
    add("secret_type", val(&l.secret_type));
    add("version_id", val(&l.version_id));
    out
}

/// Diffs an existing secret.
/// The addresses `-target` keeps: the targets and, transitively, what
/// they depend on.
fn targeted(config: &Config, targets: &[String]) -> BTreeSet<String> {
    let mut names: Vec<String> = config
        .resources
        .iter()
        .filter(|r| {
            targets.contains(&r.address)
                || targets.contains(&format!("{}.{}", RESOURCE_TYPE, r.block))
        })
        .map(|r| r.name.clone())
        .collect();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    while let Some(n) = names.pop() {
        if !seen.insert(n.clone()) {
            continue;
        }
        if let Some(r) = config.resources.iter().find(|r| r.name == n) {
            names.extend(r.depends_on.iter().cloned());
        }
    }
    config
        .resources
        .iter()
        .filter(|r| seen.contains(&r.name))
        .map(|r| r.address.clone())
        .collect()
}

/// `args` with the arguments `lifecycle.ignore_changes` names (all of
/// them for `all`, the name aside) treated as unknown: the diff leaves
/// what it cannot compare as it is live.
fn ignoring(r: &Resource, args: &SecretArgs) -> SecretArgs {
    let mut out = args.clone();
    if r.lifecycle.ignore_all {
        out.unknown.extend(
            crate::resource::SCHEMA
                .iter()
                .map(|a| a.name.to_owned())
                .filter(|n| n != "secret_name"),
        );
    } else {
        out.unknown
            .extend(r.lifecycle.ignore_changes.iter().cloned());
    }
    out
}

/// Why `lifecycle.replace_triggered_by` replaces `r`: a referenced secret
/// (or its referenced attribute) changes in this plan.
fn triggered_by(r: &Resource, planned: &[ResourceChange]) -> Option<String> {
    r.lifecycle
        .replace_triggered_by
        .iter()
        .find_map(|(name, attr)| {
            // A reference to a block with instances: any of them.
            let of_block = |n: &str| {
                n == name || crate::config::InstanceKey::split(n).is_some_and(|(b, _)| b == name)
            };
            let rc = planned.iter().find(|rc| {
                rc.name.as_deref().is_some_and(of_block)
                    && rc.action != Action::NoOp
                    && attr
                        .as_ref()
                        .is_none_or(|a| rc.changes.iter().any(|c| &c.attr == a))
            })?;
            let name = rc.name.clone().unwrap_or_default();
            match attr {
                None => Some(format!(
                    "{} {}",
                    crate::resource::address_of_name(&name),
                    match rc.action {
                        Action::Create => "is created",
                        Action::Update => "changes",
                        Action::Replace => "is replaced",
                        Action::Delete => "is deleted",
                        Action::NoOp => "is unchanged",
                    }
                )),
                Some(a) => rc
                    .changes
                    .iter()
                    .any(|c| &c.attr == a)
                    .then(|| format!("{}.{a} changes", crate::resource::address_of_name(&name))),
            }
        })
}

/// Plans the replacement `lifecycle.replace_triggered_by` asks for.
fn replace_triggered(
    config: &Config,
    r: &Resource,
    args: &SecretArgs,
    l: &LiveSecret,
    rc: &mut ResourceChange,
    refusals: &mut Vec<Diagnostic>,
    why: String,
) {
    let diff = Diff {
        config,
        r,
        args,
        l,
        rc,
        refusals,
        changes: Vec::new(),
        steps: Vec::new(),
    };
    diff.replace(vec![Change {
        attr: "replace_triggered_by".into(),
        before: None,
        after: Some(val(&why)),
        forces_replacement: true,
    }]);
    let cause = if why.starts_with('-') {
        why
    } else {
        format!("lifecycle.replace_triggered_by: {why}")
    };
    rc.reasons = vec![format!(
        "{cause}: the secret {:?} is deleted, with all its versions, and created again",
        l.name
    )];
    rc.changes.retain(|c| c.attr != "replace_triggered_by");
}

/// Refuses a plan that would delete a secret whose resource has
/// `lifecycle.prevent_destroy`, in Terraform's words.
fn prevent_destroy(config: &Config, planned: &[ResourceChange], refusals: &mut Vec<Diagnostic>) {
    for rc in planned {
        if !matches!(rc.action, Action::Delete | Action::Replace) {
            continue;
        }
        let Some(r) = config
            .resources
            .iter()
            .find(|r| r.address == rc.address && r.lifecycle.prevent_destroy)
        else {
            continue;
        };
        refusals.push(
            Diagnostic::new(format!(
                "Instance cannot be destroyed: Resource {} has lifecycle.prevent_destroy set, but the plan calls for this resource to be destroyed",
                rc.address
            ))
            .at(config.location(r, None))
            .address(&rc.address)
            .help("To avoid this error and continue with the plan, either disable lifecycle.prevent_destroy or reduce the scope of the plan (remove or change what forces the replacement)"),
        );
    }
}

fn diff_existing(
    config: &Config,
    r: &Resource,
    args: &SecretArgs,
    l: &LiveSecret,
    rc: &mut ResourceChange,
    refusals: &mut Vec<Diagnostic>,
) {
    let mut diff = Diff {
        config,
        r,
        args,
        l,
        rc,
        refusals,
        changes: Vec::new(),
        steps: Vec::new(),
    };
    let forced = diff.forced_changes();
    if !forced.is_empty() {
        diff.replace(forced);
        return;
    }
    diff.restore();
    diff.value_and_version();
    diff.stage_moves();
    diff.rotation_policy();
    diff.policy();
    diff.description_and_custom_data();
    diff.tags();
    diff.moved();
    diff.finish();
}

/// The diff of one existing secret against its configuration: what
/// changes in place and the calls that change it, the notes and the
/// refusals.
struct Diff<'a> {
    config: &'a Config,
    r: &'a Resource,
    args: &'a SecretArgs,
    l: &'a LiveSecret,
    rc: &'a mut ResourceChange,
    refusals: &'a mut Vec<Diagnostic>,
    /// Attribute changes made in place.
    changes: Vec<Change>,
    /// The calls that make them.
    steps: Vec<Step>,
}

impl Diff<'_> {
    /// Whether the configured value of `attr` is known (not computed from
    /// something created later).
    fn known(&self, attr: &str) -> bool {
        !self.args.is_unknown(attr)
    }

    /// Refuses the plan, pointing at `attr` of the resource.
    fn refuse(&mut self, attr: Option<&str>, message: String, help: String) {
        self.refusals.push(
            Diagnostic::new(message)
                .at(self.config.location(self.r, attr))
                .address(&self.r.address)
                .help(help),
        );
    }

    /// Records an attribute changed in place.
    fn change(&mut self, attr: &str, before: Shown, after: Shown) {
        self.changes.push(Change {
            attr: attr.into(),
            before: Some(before),
            after: Some(after),
            forces_replacement: false,
        });
    }

    /// The changes to arguments that cannot change on an existing secret
    /// (`secret_type`, `encryption_key_id`, `dkms_instance_id`,
    /// `extended_config` apart from its CustomData).
    fn forced_changes(&self) -> Vec<Change> {
        let (args, l) = (self.args, self.l);
        let mut changes = Vec::new();
        let mut force = |attr: &'static str, before: String, after: String| {
            changes.push(Change {
                attr: attr.into(),
                before: Some(val(before)),
                after: Some(val(after)),
                forces_replacement: true,
            });
        };
        if self.known("secret_type") && !l.secret_type.eq_ignore_ascii_case(&args.secret_type) {
            force(
                "secret_type",
                l.secret_type.clone(),
                args.secret_type.clone(),
            );
        }
        if let Some(k) = &args.encryption_key_id
            && self.known("encryption_key_id")
            && *k != l.encryption_key_id
        {
            force("encryption_key_id", l.encryption_key_id.clone(), k.clone());
        }
        if let Some(d) = &args.dkms_instance_id
            && self.known("dkms_instance_id")
            && *d != l.dkms_instance_id
        {
            force("dkms_instance_id", l.dkms_instance_id.clone(), d.clone());
        }
        if self.known("extended_config")
            && let Some(want) = args.extended_config_json()
        {
            let have: serde_json::Map<String, serde_json::Value> = l
                .extended_config
                .as_deref()
                .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
                .and_then(|v| match v {
                    serde_json::Value::Object(o) => Some(o),
                    _ => None,
                })
                .unwrap_or_default();
            let differs = want
                .iter()
                .filter(|(k, _)| k.as_str() != "CustomData")
                .any(|(k, v)| have.get(k) != Some(v));
            if differs {
                force(
                    "extended_config",
                    l.extended_config.clone().unwrap_or_default(),
                    args.extended_config.clone().unwrap_or_default(),
                );
            }
        }
        changes
    }

    /// Plans a replacement for the `forced` changes: delete, then create.
    /// Under the same name that needs force_delete_without_recovery,
    /// otherwise the plan is refused with the ways out.
    fn replace(mut self, forced: Vec<Change>) {
        let (args, l) = (self.args, self.l);
        let reasons: Vec<&str> = forced.iter().map(|c| c.attr.as_str()).collect();
        self.rc.action = Action::Replace;
        self.rc.reasons.push(format!(
            "{} cannot change on an existing secret: the secret {:?} is deleted, with all its versions, and created again",
            reasons.join(", "),
            l.name
        ));
        if !args.force_delete_without_recovery {
            self.refuse(
                Some(reasons[0]),
                format!(
                    "replacing {} would delete secret {:?} and create it again under the same name, but a deleted secret keeps its name taken for its recovery window ({} days)",
                    self.r.address, l.name, args.recovery_window_in_days
                ),
                format!(
                    "the ways out:\n\
                     - set force_delete_without_recovery = true: the secret and all its versions are deleted at once, unrecoverably, and created again;\n\
                     - or give the new secret another secret_name: the old one is deleted with its recovery window and the new one is created beside it;\n\
                     - or revert the change to {}",
                    reasons.join(", ")
                ),
            );
        }
        let forced_attrs: BTreeSet<String> = forced.iter().map(|c| c.attr.clone()).collect();
        self.rc.changes = forced;
        self.rc.changes.extend(
            creation_changes(args, &self.r.set)
                .into_iter()
                .filter(|c| !forced_attrs.contains(&c.attr)),
        );
        self.rc.steps.push(delete_step(&l.name, args));
        self.rc.steps.extend(creation_steps(args));
    }

    /// A secret scheduled for deletion is restored first.
    /// A `moved` block renamed this resource's address: the `rota:address`
    /// tag follows; nothing else changes.
    fn moved(&mut self) {
        let Some(tagged) = self.l.tags.get(ADDRESS_TAG) else {
            // An `import` block takes over a secret Rota did not create:
            // it gets the ownership tags, nothing else changes.
            if self.config.imports.contains_key(&self.r.address) {
                self.rc.notes.push(
                    "imported: the secret gets this configuration's ownership tags; nothing else changes"
                        .into(),
                );
                self.steps.push(Step::TagOwnership);
            }
            return;
        };
        if tagged == &self.r.address
            || !self
                .config
                .moved
                .iter()
                .any(|m| &m.from == tagged && m.to == self.r.address)
        {
            return;
        }
        self.rc.notes.push(format!(
            "moved from {tagged}: the rota:address tag follows; nothing is replaced"
        ));
        self.steps.push(Step::TagOwnership);
    }

    fn restore(&mut self) {
        if let Some(t) = &self.l.planned_delete_time {
            self.steps.push(Step::RestoreSecret);
            self.change(
                "planned_delete_time",
                val(t),
                Shown::Value(serde_json::Value::Null),
            );
            self.rc.notes.push(format!(
                "the secret is scheduled for deletion at {t}; it is restored first"
            ));
        }
    }

    /// Values and versions (Generic only: managed types rotate). A new
    /// version_id puts the new value, unless the rotator wrote the current
    /// one or the configured version still exists; a new value under the
    /// same version_id is refused.
    fn value_and_version(&mut self) {
        let (args, l) = (self.args, self.l);
        if args.is_managed()
            && self.known("version_id")
            && !l.version_id.is_empty()
            && l.version_id != args.version_id
            && !l.has_version(&args.version_id)
        {
            self.rc.warnings.push(format!(
                "version_id {:?} is not written: the value of a managed secret ({}) belongs to its rotation, and secret_data and version_id are only its initial value (the current version is {:?}); to change the value, rotate it: `rota rotate {}` (with a rotation block or enable_automatic_rotation)",
                args.version_id, args.secret_type, l.version_id, self.rc.address
            ));
        }
        // A secret in its deletion window may not serve its value: compare after the restore.
        if args.is_managed()
            || !self.known("version_id")
            || !self.known("secret_data")
            || l.version_id.is_empty()
        {
            return;
        }
        let data_hash = live::sha256_hex(args.secret_data.expose_secret().as_bytes());
        if l.version_id == args.version_id {
            let data_differs = !l.data_sha256.is_empty() && l.data_sha256 != data_hash;
            let type_differs = !l.secret_data_type.is_empty()
                && self.known("secret_data_type")
                && l.secret_data_type != args.secret_data_type;
            if !data_differs && !type_differs && stages_differ(args, l) {
                self.restage_current();
            }
            if data_differs || type_differs {
                let what = if data_differs {
                    "secret_data"
                } else {
                    "secret_data_type"
                };
                self.refuse(
                    Some(what),
                    format!(
                        "{what} changed but version_id is still {:?}",
                        args.version_id
                    ),
                    format!(
                        "KMS versions are immutable: a new value is a new version. Set a new version_id (e.g. {:?}) together with the new secret_data; Rota then puts it with PutSecretValue and makes it ACSCurrent",
                        next_version_id(&args.version_id)
                    ),
                );
            }
        } else if l.tags.contains_key(ROTATED_TAG)
            || rota_rotation::protocol::is_rotation_version(&l.version_id)
        {
            self.rc.notes.push(format!(
                "ACSCurrent is version {:?}, written by Rota's rotation: the configured value is the initial value and is not written back",
                l.version_id
            ));
        } else if l.has_version(&args.version_id) {
            self.rc.notes.push(format!(
                "ACSCurrent is version {:?}; the configured version {:?} still exists and is not made current again (never fight the rotator; use move_to_version to move stages)",
                l.version_id, args.version_id
            ));
        } else {
            self.put_new_version();
        }
    }

    /// `version_stages` changed on the current version: each added stage
    /// moves to it (from the version holding it, if any), each dropped one
    /// is removed from it. ACSCurrent cannot be dropped this way.
    fn restage_current(&mut self) {
        let (args, l) = (self.args, self.l);
        let Some(want) = &args.version_stages else {
            return;
        };
        let version = &l.version_id;
        if !want.iter().any(|s| s == rota_kms::kms::stage::CURRENT) {
            self.refuse(
                Some("version_stages"),
                format!("version_stages drops ACSCurrent from version {version:?}, the current one"),
                "every secret has a current version: keep \"ACSCurrent\" in version_stages, or make another version current with version_stage = \"ACSCurrent\" and move_to_version".to_owned(),
            );
            return;
        }
        self.change(
            "version_stages",
            Shown::Value(serde_json::Value::from(l.version_stages.clone())),
            Shown::Value(serde_json::Value::from(want.clone())),
        );
        for stage in want.iter().filter(|s| !l.version_stages.contains(s)) {
            self.steps.push(Step::UpdateSecretVersionStage {
                stage: stage.clone(),
                move_to: Some(version.clone()),
                remove_from: l.stage_holder(stage).map(str::to_owned),
            });
        }
        for stage in l.version_stages.iter().filter(|s| !want.contains(s)) {
            self.steps.push(Step::UpdateSecretVersionStage {
                stage: stage.clone(),
                move_to: None,
                remove_from: Some(version.clone()),
            });
        }
    }

    /// Puts the configured value as a new version.
    fn put_new_version(&mut self) {
        let (args, l) = (self.args, self.l);
        self.change("secret_data", Shown::Sensitive, Shown::Sensitive);
        if l.secret_data_type != args.secret_data_type {
            self.change(
                "secret_data_type",
                val(&l.secret_data_type),
                val(&args.secret_data_type),
            );
        }
        self.change("version_id", val(&l.version_id), val(&args.version_id));
        if let Some(st) = &args.version_stages {
            self.change(
                "version_stages",
                Shown::Value(serde_json::Value::from(l.version_stages.clone())),
                Shown::Value(serde_json::Value::from(st.clone())),
            );
        }
        self.steps.push(Step::PutSecretValue {
            version_id: args.version_id.clone(),
        });
    }

    /// Stage moves (Generic only): move_to_version / remove_from_version
    /// when the stage is not already where they put it. A version to move
    /// to that does not exist is refused.
    fn stage_moves(&mut self) {
        let (args, l) = (self.args, self.l);
        if args.is_managed()
            || (args.move_to_version.is_none() && args.remove_from_version.is_none())
        {
            return;
        }
        let stage = &args.version_stage;
        let holder = l.stage_holder(stage).map(str::to_owned);
        let put_new = self
            .steps
            .iter()
            .any(|s| matches!(s, Step::PutSecretValue { .. }));
        let mut needed = false;
        if let Some(to) = &args.move_to_version {
            let exists = l.has_version(to) || (put_new && *to == args.version_id);
            if !exists {
                self.refuse(
                    Some("move_to_version"),
                    format!("move_to_version {to:?}: the secret has no such version"),
                    format!(
                        "versions of {:?}: {}",
                        l.name,
                        l.versions
                            .as_ref()
                            .map(|v| v
                                .iter()
                                .map(|v| v.version_id.clone())
                                .collect::<Vec<_>>()
                                .join(", "))
                            .unwrap_or_else(|| l.version_id.clone())
                    ),
                );
            }
            let after_put_holder = if put_new && stage == rota_kms::kms::stage::CURRENT {
                Some(args.version_id.clone())
            } else {
                holder.clone()
            };
            if after_put_holder.as_deref() != Some(to.as_str()) {
                needed = true;
            }
        }
        if let Some(from) = &args.remove_from_version
            && holder.as_deref() == Some(from.as_str())
            && args.move_to_version.is_none()
        {
            needed = true;
        }
        if needed {
            self.change(
                &format!("version_stage {stage}"),
                holder
                    .clone()
                    .map(val)
                    .unwrap_or(Shown::Value(serde_json::Value::Null)),
                args.move_to_version
                    .clone()
                    .map(val)
                    .unwrap_or(Shown::Value(serde_json::Value::Null)),
            );
            self.steps.push(Step::UpdateSecretVersionStage {
                stage: stage.clone(),
                move_to: args.move_to_version.clone(),
                remove_from: args.remove_from_version.clone(),
            });
        }
    }

    /// The rotation policy: enable_automatic_rotation, and the interval
    /// (compared in seconds) while it is on.
    fn rotation_policy(&mut self) {
        let (args, l) = (self.args, self.l);
        if !self.known("enable_automatic_rotation") || !self.known("rotation_interval") {
            return;
        }
        let want_on = args.enable_automatic_rotation.unwrap_or(false);
        let mut rotation = false;
        if want_on != l.automatic_rotation {
            self.change(
                "enable_automatic_rotation",
                Shown::Value(l.automatic_rotation.into()),
                Shown::Value(want_on.into()),
            );
            rotation = true;
        }
        if want_on {
            let have = l.rotation_interval.as_deref().and_then(interval_seconds);
            if have != args.interval_seconds() {
                self.change(
                    "rotation_interval",
                    l.rotation_interval
                        .clone()
                        .map(val)
                        .unwrap_or(Shown::Value(serde_json::Value::Null)),
                    args.rotation_interval
                        .clone()
                        .map(val)
                        .unwrap_or(Shown::Value(serde_json::Value::Null)),
                );
                rotation = true;
            }
        }
        if rotation {
            self.steps.push(Step::UpdateSecretRotationPolicy);
        }
    }

    /// The resource policy, compared as JSON.
    fn policy(&mut self) {
        let (args, l) = (self.args, self.l);
        if let Some(p) = &args.policy
            && self.known("policy")
            && !l.policy.as_deref().is_some_and(|have| json_eq(have, p))
        {
            self.change(
                "policy",
                l.policy
                    .clone()
                    .map(val)
                    .unwrap_or(Shown::Value(serde_json::Value::Null)),
                val(p),
            );
            self.steps.push(Step::SetSecretPolicy);
            self.rc
                .warnings
                .extend(lockout_warning(p, &self.rc.address));
        }
    }

    /// The description and (managed types) the custom data, updated
    /// together by one UpdateSecret.
    fn description_and_custom_data(&mut self) {
        let (args, l) = (self.args, self.l);
        let mut upd_desc = false;
        let mut upd_custom = false;
        let want_desc = args.description.clone().unwrap_or_default();
        if self.known("description") && want_desc != l.description {
            self.change("description", val(&l.description), val(&want_desc));
            upd_desc = true;
        }
        if args.is_managed()
            && self.known("custom_data")
            && self.known("extended_config_custom_data")
            && self.known("extended_config")
            && let Some(want) = args.desired_custom_data()
        {
            let have = live_custom_data(l);
            if have != want {
                let set = &self.r.set;
                let attr = if set.contains("extended_config_custom_data") {
                    "extended_config_custom_data"
                } else if set.contains("custom_data") {
                    "custom_data"
                } else {
                    "extended_config.CustomData"
                };
                self.change(
                    attr,
                    Shown::Value(serde_json::Value::Object(have)),
                    Shown::Value(serde_json::Value::Object(want)),
                );
                upd_custom = true;
            }
        }
        if upd_desc || upd_custom {
            self.steps.push(Step::UpdateSecret {
                description: upd_desc,
                custom_data: upd_custom,
            });
        }
    }

    /// The user's tags (Rota's own are not compared): removed keys are
    /// untagged, new and changed ones tagged.
    fn tags(&mut self) {
        if !self.known("tags") {
            return;
        }
        let have = self.l.user_tags();
        let want = &self.args.tags;
        if have == *want {
            return;
        }
        self.change(
            "tags",
            Shown::Value(tags_json(&have)),
            Shown::Value(tags_json(want)),
        );
        let removed: Vec<String> = have
            .keys()
            .filter(|k| !want.contains_key(*k))
            .cloned()
            .collect();
        if !removed.is_empty() {
            self.steps.push(Step::UntagResources { keys: removed });
        }
        let changed = want.iter().any(|(k, v)| have.get(k) != Some(v));
        if changed {
            self.steps.push(Step::TagResources {
                keys: want.keys().cloned().collect(),
            });
        }
    }

    /// With any call to make, the resource is updated in place: the
    /// changes (after its id) and the calls go into the resource change.
    fn finish(self) {
        if self.steps.is_empty() {
            return;
        }
        let l = self.l;
        self.rc.action = Action::Update;
        let mut all = vec![Change {
            attr: "id".into(),
            before: Some(val(&l.name)),
            after: Some(val(&l.name)),
            forces_replacement: false,
        }];
        all.extend(self.changes);
        self.rc.changes = all;
        self.rc.steps = self.steps;
    }
}

/// A version id after `id` to suggest: its trailing number plus one
/// (`v2` → `v3`), else `id-2`.
fn next_version_id(id: &str) -> String {
    let digits = id.len() - id.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    match id[id.len() - digits..].parse::<u64>() {
        Ok(n) if digits > 0 => format!("{}{}", &id[..id.len() - digits], n + 1),
        _ => format!("{id}-2"),
    }
}

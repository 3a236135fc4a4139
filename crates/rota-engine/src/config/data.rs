//! `data` blocks: `alicloud_kms_secrets`, `alicloud_kms_secret_versions`
//! and `alicloud_kms_keys`, with the provider's arguments.
//!
//! A data source's arguments are known before any call (variables,
//! locals, functions, literals); it is read at plan time, before the
//! resources, and resource arguments and outputs read its attributes as
//! `data.TYPE.NAME.ATTRIBUTE` (see [`crate::data`]). A resource argument
//! that reads one is checked once the plan has read it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hcl::Value;
use hcl::edit::Span as _;
use hcl::edit::structure::Block;
use hcl::eval::Context;
use rota_kms::kms::Filter;

use super::diag::{Diagnostic, Location};
use super::{
    Loader, SourceFile, eval_message, funcs, raw_attr, referenced_modules, referenced_names,
    suggest, uses_variable,
};

/// The data source types Rota reads.
pub const DATA_TYPES: &[&str] = &[
    "alicloud_kms_secrets",
    "alicloud_kms_secret_versions",
    "alicloud_kms_keys",
];

/// Which data source a block reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    /// `alicloud_kms_secrets`: ListSecrets, then DescribeSecret and
    /// GetSecretValue with `enable_details`.
    Secrets,
    /// `alicloud_kms_secret_versions`: ListSecretVersionIds, then
    /// GetSecretValue per version with `enable_details`.
    SecretVersions,
    /// `alicloud_kms_keys`: ListKeys, then DescribeKey.
    Keys,
}

impl DataKind {
    /// The type label.
    pub fn type_name(self) -> &'static str {
        match self {
            Self::Secrets => DATA_TYPES[0],
            Self::SecretVersions => DATA_TYPES[1],
            Self::Keys => DATA_TYPES[2],
        }
    }

    /// The arguments the provider's data source takes.
    fn arguments(self) -> &'static [&'static str] {
        match self {
            Self::Secrets => &[
                "ids",
                "name_regex",
                "fetch_tags",
                "tags",
                "filters",
                "enable_details",
                "output_file",
            ],
            Self::SecretVersions => &[
                "secret_name",
                "ids",
                "include_deprecated",
                "version_stage",
                "enable_details",
                "output_file",
            ],
            Self::Keys => &[
                "ids",
                "description_regex",
                "status",
                "filters",
                "enable_details",
                "output_file",
            ],
        }
    }
}

/// A `data` block, its arguments evaluated.
#[derive(Debug, Clone)]
pub struct DataSource {
    /// Its type.
    pub kind: DataKind,
    /// Its name label.
    pub name: String,
    /// `data.TYPE.NAME`, after the module path in a module
    /// (`module.x.data.TYPE.NAME`): the key of its value in
    /// [`super::Known`].
    pub address: String,
    /// The module it is in (`""` at the root, `module.x.` in one).
    pub module: String,
    /// The arguments.
    pub args: DataArgs,
    /// Where the block is.
    pub location: Location,
}

/// A data source's arguments (each type uses its own).
#[derive(Debug, Clone, Default)]
pub struct DataArgs {
    /// `ids`: only these secret names, version ids or key ids.
    pub ids: Option<Vec<String>>,
    /// `name_regex` (secrets) or `description_regex` (keys).
    pub regex: Option<regex::Regex>,
    /// `fetch_tags`.
    pub fetch_tags: bool,
    /// `tags`: every one must match.
    pub tags: BTreeMap<String, String>,
    /// `filters`, decoded from its JSON text.
    pub filters: Vec<Filter>,
    /// `enable_details` (default false; true for keys).
    pub enable_details: bool,
    /// `output_file`, resolved against the module's directory.
    pub output_file: Option<PathBuf>,
    /// `secret_name` (versions).
    pub secret_name: String,
    /// `include_deprecated` (versions).
    pub include_deprecated: bool,
    /// `version_stage` (versions).
    pub version_stage: Option<String>,
    /// `status` (keys): `Enabled`, `Disabled` or `PendingDeletion`.
    pub status: Option<String>,
}

/// Key states `status` accepts.
const KEY_STATES: &[&str] = &["Enabled", "Disabled", "PendingDeletion"];

impl Loader {
    /// Reads the `data` blocks of the module at `prefix` (in `dir`, whose
    /// expressions see `ctx`). Problems are reported.
    pub(super) fn data_sources(
        &mut self,
        blocks: &[(usize, Block)],
        ctx: &Context<'_>,
        prefix: &str,
        dir: &std::path::Path,
    ) -> Vec<DataSource> {
        let mut out: Vec<DataSource> = Vec::new();
        for (fi, block) in blocks {
            let file = self.files[*fi].clone();
            let head = block.ident.span().unwrap_or(0..0);
            let here = Location::of(&file, &head, true);
            let labels: Vec<&str> = block.labels.iter().map(|l| l.as_str()).collect();
            let &[ty, name] = labels.as_slice() else {
                self.diags.push(
                    Diagnostic::new("a data block takes two labels: type and name")
                        .at(here)
                        .help("data \"alicloud_kms_secrets\" \"app\" { name_regex = \"^app/\" }"),
                );
                continue;
            };
            let kind = match ty {
                "alicloud_kms_secrets" => DataKind::Secrets,
                "alicloud_kms_secret_versions" => DataKind::SecretVersions,
                "alicloud_kms_keys" => DataKind::Keys,
                other => {
                    self.diags.push(
                        Diagnostic::new(format!("data source `{other}` is not supported"))
                            .at(here)
                            .help(format!(
                                "{}Rota reads {}",
                                suggest(other, DATA_TYPES),
                                DATA_TYPES.join(", ")
                            )),
                    );
                    continue;
                }
            };
            let address = format!("{prefix}data.{ty}.{name}");
            if let Some(first) = out.iter().find(|d| d.address == address) {
                self.diags.push(
                    Diagnostic::declared_twice(&address, &first.location, here).address(&address),
                );
                continue;
            }
            let before = self.diags.len();
            let args = self.data_args(&file, block, kind, &address, ctx, dir);
            if self.diags.len() > before {
                continue;
            }
            if kind == DataKind::SecretVersions && args.secret_name.is_empty() {
                self.diags.push(
                    Diagnostic::new(format!("{address} needs secret_name"))
                        .at(here)
                        .address(&address)
                        .help("secret_name = \"app/db\""),
                );
                continue;
            }
            out.push(DataSource {
                kind,
                name: name.to_owned(),
                address,
                module: prefix.to_owned(),
                args,
                location: here,
            });
        }
        out
    }

    /// Evaluates and checks one data block's arguments.
    fn data_args(
        &mut self,
        file: &SourceFile,
        block: &Block,
        kind: DataKind,
        address: &str,
        ctx: &Context<'_>,
        dir: &std::path::Path,
    ) -> DataArgs {
        let mut args = DataArgs {
            enable_details: kind == DataKind::Keys,
            ..DataArgs::default()
        };
        let allowed = kind.arguments();
        for b in block.body.blocks() {
            self.diags.push(
                Diagnostic::new(format!(
                    "`{}` blocks are not supported in {address}",
                    b.ident.as_str()
                ))
                .at(Location::of(file, &b.ident.span().unwrap_or(0..0), true))
                .address(address),
            );
        }
        for a in block.body.attributes() {
            let raw = raw_attr(a);
            let key = raw.key.as_str();
            let at = Location::of(file, &raw.span, true);
            if key == "depends_on" {
                continue;
            }
            if matches!(key, "count" | "for_each" | "provider") {
                self.diags.push(
                    Diagnostic::new(format!(
                        "`{key}` on a data block is not supported ({address})"
                    ))
                    .at(Location::of(file, &raw.key_span, true))
                    .address(address)
                    .help("declare one data block per query"),
                );
                continue;
            }
            if !allowed.contains(&key) {
                self.diags.push(
                    Diagnostic::new(format!("unknown argument `{key}` in {address}"))
                        .at(Location::of(file, &raw.key_span, true))
                        .address(address)
                        .help(format!(
                            "{}{} takes {}",
                            suggest(key, allowed),
                            kind.type_name(),
                            allowed.join(", ")
                        )),
                );
                continue;
            }
            let text = file.slice(&raw.span);
            if !referenced_names(text).is_empty()
                || !referenced_modules(text).is_empty()
                || uses_variable(text, "data")
            {
                self.diags.push(
                    Diagnostic::new(format!(
                        "{address}: `{key}` refers to a resource, a module or a data source"
                    ))
                    .at(at)
                    .address(address)
                    .help("a data source is read before any change: its arguments use variables, locals, functions and literals"),
                );
                continue;
            }
            let value = match funcs::with_base_dir(dir, || funcs::evaluate(&raw.expr, ctx)) {
                Ok(v) => v,
                Err(e) => {
                    let (msg, help) = eval_message(&e, text, false);
                    let mut d = Diagnostic::new(format!("{address}: {key}: {msg}"))
                        .at(at)
                        .address(address);
                    d.help = help;
                    self.diags.push(d);
                    continue;
                }
            };
            if value == Value::Null {
                continue;
            }
            if let Err(message) = set_data_arg(&mut args, key, &value, dir) {
                self.diags.push(
                    Diagnostic::new(format!("{address}: {key}: {message}"))
                        .at(at)
                        .address(address),
                );
            }
        }
        args
    }
}

/// Sets one evaluated argument; the error says what was expected.
fn set_data_arg(
    args: &mut DataArgs,
    key: &str,
    value: &Value,
    dir: &std::path::Path,
) -> Result<(), String> {
    let string = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err("expected a string".to_owned()),
    };
    let boolean = |v: &Value| match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" => Ok(true),
        Value::String(s) if s == "false" => Ok(false),
        _ => Err("expected true or false".to_owned()),
    };
    match key {
        "ids" => {
            let Value::Array(items) = value else {
                return Err("expected a list of strings".into());
            };
            args.ids = Some(
                items
                    .iter()
                    .map(|i| string(i).map_err(|_| "expected a list of strings".to_owned()))
                    .collect::<Result<_, _>>()?,
            );
        }
        "name_regex" | "description_regex" => {
            let text = string(value)?;
            args.regex = Some(
                regex::Regex::new(&text).map_err(|e| format!("not a regular expression: {e}"))?,
            );
        }
        "fetch_tags" => args.fetch_tags = boolean(value)?,
        "enable_details" => args.enable_details = boolean(value)?,
        "include_deprecated" => args.include_deprecated = boolean(value)?,
        "tags" => {
            let Value::Object(m) = value else {
                return Err("expected a map of strings".into());
            };
            for (k, v) in m {
                args.tags.insert(
                    k.clone(),
                    string(v).map_err(|_| "expected a map of strings".to_owned())?,
                );
            }
        }
        "filters" => {
            let text = string(value)?;
            args.filters = serde_json::from_str(&text).map_err(|_| {
                "expected the JSON list ListSecrets/ListKeys take: [{\"Key\":\"SecretName\",\"Values\":[\"a\",\"b\"]}]".to_owned()
            })?;
        }
        "output_file" => args.output_file = Some(dir.join(string(value)?)),
        "secret_name" => args.secret_name = string(value)?,
        "version_stage" => args.version_stage = Some(string(value)?),
        "status" => {
            let s = string(value)?;
            if !KEY_STATES.contains(&s.as_str()) {
                return Err(format!(
                    "{s:?} is not a key status: {}",
                    KEY_STATES.join(", ")
                ));
            }
            args.status = Some(s);
        }
        _ => {}
    }
    Ok(())
}

/// Whether `text` reads a data source (`data.TYPE.NAME`).
pub(crate) fn reads_data(text: &str) -> bool {
    uses_variable(text, "data")
}

/// The `data` object the module at `prefix` sees: each of its data
/// sources whose value `known` holds, by type and name.
pub(crate) fn data_object(sources: &[DataSource], prefix: &str, known: &super::Known) -> Value {
    let mut obj = hcl::Map::new();
    for d in sources.iter().filter(|d| d.module == prefix) {
        if let Some(v) = known.get(&d.address) {
            let by_type = obj
                .entry(d.kind.type_name().to_owned())
                .or_insert_with(|| Value::Object(hcl::Map::new()));
            if let Value::Object(m) = by_type {
                m.insert(d.name.clone(), v.clone());
            }
        }
    }
    Value::Object(obj)
}

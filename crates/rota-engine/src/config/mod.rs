//! Loading a configuration: `.tf` / `.hcl` files in Terraform's syntax.
//!
//! A configuration is one file or a directory of them (every `*.tf` and
//! `*.hcl` file except `world.hcl`, which declares the local world; see
//! [`Config::world_file`]). What is understood:
//!
//! - `variable "x" { default, type, description, sensitive, nullable }`, with
//!   values from (lowest to highest precedence) the default, `TF_VAR_x`,
//!   `terraform.tfvars`, `*.auto.tfvars`, `-var-file` files and `-var x=v`;
//! - `locals { … }`, `var.x`, `local.x`, `path.module`, `"${…}"` templates;
//! - the functions of [`funcs`] (an unknown function is an error that lists
//!   the known ones);
//! - `provider "alicloud" { region, access_key, secret_key, security_token,
//!   profile, protocol, endpoints { kms } }` ([`ProviderConfig`]);
//! - `resource "alicloud_kms_secret" "name" { … }`, any number per file, with
//!   references between them (`alicloud_kms_secret.x.secret_name`, `.id`,
//!   `.arn`, …) evaluated in dependency order; computed attributes of a
//!   secret that does not exist yet are "known after apply";
//! - `rotation "name" { … }` blocks ([`rotation`]): which secrets rotate,
//!   when and with which plugin, plus the implicit rotation of resources with
//!   `enable_automatic_rotation = true`;
//! - `terraform { … }` blocks are accepted and ignored.
//!
//! Anything else is an error with a [`Diagnostic`]: file, line, column, the
//! resource address and the allowed names, with a "did you mean".
//! Nothing here reads the environment: the caller passes `TF_VAR_*` values in.

pub mod agent;
mod block;
pub mod data;
pub mod diag;
pub mod funcs;
mod module;
pub mod notify;
pub mod plugins;
pub mod rotation;
mod sensitive;
pub mod store;
pub mod verify;
pub mod workflow;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use hcl::Value;
use hcl::edit::Span as _;
use hcl::edit::structure::{Block, Body};
use hcl::eval::{Context, Evaluate as _};
use rota_kms::SecretString;
use rota_scheduler::Schedule;

pub use diag::{Diagnostic, Diagnostics, Location, SourceFile};
pub use rota_rotation::{OnFailure, RotationTarget};

use crate::resource::{self, Kind, RESOURCE_TYPE, SecretArgs, Timeouts};

/// The text a computed value has while it is not known (before apply).
pub(crate) const UNKNOWN: &str = "__rota_known_after_apply__";

/// The local world's file name, beside the configuration.
pub const WORLD_FILE: &str = "world.hcl";

/// Block types a configuration may contain.
const TOP_BLOCKS: &[&str] = &[
    "variable",
    "locals",
    "provider",
    "resource",
    "rotation",
    "workflow",
    "plugins",
    "store",
    "notify",
    "events",
    "agent",
    "template",
    "output",
    "moved",
    "import",
    "module",
    "data",
    "terraform",
];

/// Provider arguments Rota understands.
const PROVIDER_ARGS: &[&str] = &[
    "region",
    "access_key",
    "secret_key",
    "security_token",
    "profile",
    "protocol",
    "ecs_role_name",
    "client_read_timeout",
    "client_connect_timeout",
];

/// Variable block arguments.
const VARIABLE_ARGS: &[&str] = &["default", "type", "description", "sensitive", "nullable"];

/// Where the configuration is and the variable values given from outside.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// A `.tf`/`.hcl` file or a directory of them.
    pub path: PathBuf,
    /// `-var name=value`, in command-line order.
    pub vars: Vec<(String, String)>,
    /// `-var-file` paths, in command-line order.
    pub var_files: Vec<PathBuf>,
    /// `TF_VAR_name=value` from the environment, with the prefix removed.
    pub env_vars: Vec<(String, String)>,
    /// The instant schedules must fire after (a one-shot time before it
    /// never fires again: `rota validate` sets it); `None` checks only
    /// schedules that never fire at all, so a configuration whose one-shot
    /// already ran still loads.
    pub now: Option<chrono::DateTime<chrono::Utc>>,
}

/// The `provider "alicloud"` block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderConfig {
    /// Whether the block is present.
    pub present: bool,
    /// `region`.
    pub region: Option<String>,
    /// `access_key`.
    pub access_key: Option<String>,
    /// `secret_key`.
    pub secret_key: Option<SecretString>,
    /// `security_token`.
    pub security_token: Option<SecretString>,
    /// `profile` (aliyun CLI profile).
    pub profile: Option<String>,
    /// `ecs_role_name`: the RAM role of the ECS instance Rota runs on, whose
    /// credentials come from the instance metadata service.
    pub ecs_role_name: Option<String>,
    /// `protocol` (`HTTPS` or `HTTP`).
    pub protocol: Option<String>,
    /// `endpoints { kms = … }`.
    pub kms_endpoint: Option<String>,
    /// `client_read_timeout`: how long a request may take, in
    /// milliseconds (the Terraform provider's argument).
    pub client_read_timeout_ms: Option<u64>,
    /// `client_connect_timeout`: how long connecting may take, in
    /// milliseconds.
    pub client_connect_timeout_ms: Option<u64>,
}

impl ProviderConfig {
    /// Whether the block gives credentials (keys or a profile).
    pub fn has_credentials(&self) -> bool {
        self.access_key.is_some() || self.profile.is_some()
    }
}

/// An attribute as written: its expression and where it is. `Debug` omits
/// the expression (it may be a literal secret).
#[derive(Clone)]
pub(crate) struct RawAttr {
    pub(crate) key: String,
    pub(crate) expr: hcl::Expression,
    pub(crate) span: Range<usize>,
    pub(crate) key_span: Range<usize>,
}

impl std::fmt::Debug for RawAttr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawAttr")
            .field("key", &self.key)
            .field("span", &self.span)
            .finish_non_exhaustive()
    }
}

/// One `resource "alicloud_kms_secret" "name"` block, or one instance of
/// a block with `count` or `for_each`.
#[derive(Debug, Clone)]
pub struct Resource {
    /// The block's name label, with the instance key of an instance:
    /// `db`, `app["web"]`, `app[0]` (unique in the configuration).
    pub name: String,
    /// `alicloud_kms_secret.<name>`.
    pub address: String,
    /// The block's name label alone (in a module, its address:
    /// `module.x.alicloud_kms_secret.db`).
    pub block: String,
    /// The module the block is in: `""` at the root, `module.x.` (or
    /// `module.x.module.y.`) in a module.
    pub module: String,
    /// The instance of a block with `count` or `for_each`.
    pub instance: Option<Instance>,
    /// The arguments, evaluated with what is known before any call.
    pub args: SecretArgs,
    /// The attribute names the block writes.
    pub set: BTreeSet<String>,
    /// Names of the resources this one refers to (references and `depends_on`).
    pub depends_on: BTreeSet<String>,
    pub(crate) file: usize,
    pub(crate) span: Range<usize>,
    pub(crate) attrs: Vec<RawAttr>,
    pub(crate) timeouts: Vec<RawAttr>,
    /// The `lifecycle` block.
    pub lifecycle: Lifecycle,
    /// The arguments whose values are sensitive (a sensitive variable,
    /// `sensitive(…)`, a `secret_data`): `(sensitive)` in plans.
    pub sensitive: BTreeSet<String>,
}

/// One instance of a resource block with `count` (`count.index`) or
/// `for_each` (`each.key`, `each.value`).
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// Its key.
    pub key: InstanceKey,
    /// `each.value` (`null` under `count`).
    pub value: Value,
}

/// The key of an instance, as its address spells it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum InstanceKey {
    /// `count`: `[0]`, `[1]`, …
    Index(usize),
    /// `for_each`: `["web"]`.
    Key(String),
}

impl InstanceKey {
    /// `[0]` or `["web"]`.
    pub fn suffix(&self) -> String {
        match self {
            Self::Index(i) => format!("[{i}]"),
            Self::Key(k) => format!("[{}]", serde_json::Value::String(k.clone())),
        }
    }

    /// Splits an instance name (`app["web"]`, `app[0]`) into its block
    /// name and key; `None` for a plain name.
    pub fn split(name: &str) -> Option<(&str, InstanceKey)> {
        let (block, rest) = name.split_once('[')?;
        let inner = rest.strip_suffix(']')?;
        let key = if inner.starts_with('"') {
            InstanceKey::Key(serde_json::from_str::<String>(inner).ok()?)
        } else {
            InstanceKey::Index(inner.parse().ok()?)
        };
        Some((block, key))
    }
}

/// What the `output` blocks of one module may refer to.
struct OutputScope<'a> {
    /// The module's prefix (`""` at the root).
    prefix: &'a str,
    resources: &'a [Resource],
    empty_blocks: &'a BTreeMap<String, Value>,
    modules: &'a BTreeMap<String, module::ModuleScope>,
    /// The scope's sensitive names.
    sensitive: &'a sensitive::Names,
}

impl OutputScope<'_> {
    /// Reads the `output` blocks: `value` (required), `sensitive`,
    /// `description`. An output whose value reads a resource's
    /// `secret_data` must be marked sensitive, as Terraform requires.
    fn load(
        &self,
        files: &[SourceFile],
        blocks: &[(usize, Block)],
        diags: &mut Vec<Diagnostic>,
    ) -> Vec<OutputBlock> {
        let mut out: Vec<OutputBlock> = Vec::new();
        for (fi, block) in blocks {
            let file = &files[*fi];
            let head = block.ident.span().unwrap_or(0..0);
            let name = match block.labels.as_slice() {
                [l] => l.as_str().to_owned(),
                _ => {
                    diags.push(
                        Diagnostic::new("an output block takes one label, its name")
                            .at(Location::of(file, &head, true))
                            .help("output \"arn\" { value = alicloud_kms_secret.db.arn }"),
                    );
                    continue;
                }
            };
            if let Some(first) = out.iter().find(|o| o.name == name) {
                diags.push(Diagnostic::declared_twice(
                    &format!("output {name:?}"),
                    &first.location,
                    Location::of(file, &head, true),
                ));
                continue;
            }
            let mut value = None;
            let (mut sensitive, mut description) = (false, None);
            for a in block.body.attributes() {
                let raw = raw_attr(a);
                match raw.key.as_str() {
                    "value" => value = Some((a.value.clone(), raw.span.clone())),
                    "sensitive" => match file.slice(&raw.span).trim() {
                        "true" => sensitive = true,
                        "false" => sensitive = false,
                        _ => diags.push(
                            Diagnostic::new(format!(
                                "output {name:?}: sensitive must be true or false"
                            ))
                            .at(Location::of(file, &raw.span, true)),
                        ),
                    },
                    "description" => {
                        description =
                            Some(file.slice(&raw.span).trim().trim_matches('"').to_owned())
                    }
                    "depends_on" => {}
                    other => diags.push(
                        Diagnostic::new(format!("unknown attribute `{other}` in output {name:?}"))
                            .at(Location::of(file, &raw.key_span, true))
                            .help("an output takes value, sensitive, description, depends_on"),
                    ),
                }
            }
            let Some((expr, span)) = value else {
                diags.push(
                    Diagnostic::new(format!("output {name:?} needs value"))
                        .at(Location::of(file, &head, true))
                        .help("value = alicloud_kms_secret.db.arn"),
                );
                continue;
            };
            let text = file.slice(&span);
            if !sensitive && sensitive::is_sensitive(text, self.sensitive) {
                diags.push(
                    Diagnostic::new(format!("output {name:?} refers to sensitive values"))
                        .at(Location::of(file, &span, true))
                        .help("as in Terraform, an output that shows a secret value must say so: sensitive = true"),
                );
                continue;
            }
            let mut ok = true;
            for (f, fspan) in unknown_functions(&expr) {
                ok = false;
                diags.push(
                    Diagnostic::new(format!("output {name:?}: unknown function `{f}`"))
                        .at(Location::of(file, &fspan, true))
                        .help(format!(
                            "{}the functions available are: {}",
                            suggest(&f, funcs::FUNCTIONS),
                            funcs::FUNCTIONS.join(", ")
                        )),
                );
            }
            for r in referenced_names(text) {
                let r = qualify(self.prefix, &r);
                if !self.resources.iter().any(|x| x.block == r)
                    && !self.empty_blocks.contains_key(&r)
                {
                    let r = local_name(self.prefix, &r).unwrap_or(&r);
                    ok = false;
                    diags.push(
                        Diagnostic::new(format!(
                            "output {name:?} refers to alicloud_kms_secret.{r}, which is not declared"
                        ))
                        .at(Location::of(file, &span, true)),
                    );
                }
            }
            for m in referenced_modules(text) {
                if !self
                    .modules
                    .contains_key(&format!("{}module.{m}.", self.prefix))
                {
                    ok = false;
                    diags.push(
                        Diagnostic::new(format!(
                            "output {name:?} refers to module.{m}, which is not declared"
                        ))
                        .at(Location::of(file, &span, true)),
                    );
                }
            }
            if ok {
                out.push(OutputBlock {
                    name,
                    expr: expr.into(),
                    sensitive,
                    description,
                    location: Location::of(file, &head, true),
                });
            }
        }
        out
    }
}

/// The `alicloud_kms_secret` object expressions see: each known resource
/// by name, the instances of a `for_each` block as a map by key and those
/// of a `count` block as a list by index.
pub(crate) fn resources_object<'a, S: AsRef<str>>(
    known: impl Iterator<Item = (S, &'a Value)>,
) -> Value {
    let mut obj = hcl::Map::new();
    let mut lists: BTreeMap<String, BTreeMap<usize, Value>> = BTreeMap::new();
    for (name, v) in known {
        let name = name.as_ref();
        match InstanceKey::split(name) {
            None => {
                obj.insert(name.to_owned(), v.clone());
            }
            Some((block, InstanceKey::Key(k))) => {
                let entry = obj
                    .entry(block.to_owned())
                    .or_insert_with(|| Value::Object(hcl::Map::new()));
                if let Value::Object(m) = entry {
                    m.insert(k, v.clone());
                }
            }
            Some((block, InstanceKey::Index(i))) => {
                lists
                    .entry(block.to_owned())
                    .or_default()
                    .insert(i, v.clone());
            }
        }
    }
    for (block, items) in lists {
        obj.insert(block, Value::Array(items.into_values().collect()));
    }
    Value::Object(obj)
}

/// A resource's `lifecycle` block, with Terraform's meaning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lifecycle {
    /// `ignore_changes = all`: only creation uses the configuration.
    pub ignore_all: bool,
    /// `ignore_changes = [...]`: arguments whose difference from the live
    /// secret is not planned.
    pub ignore_changes: BTreeSet<String>,
    /// A plan that would delete the secret is refused.
    pub prevent_destroy: bool,
    /// Accepted; see the README for what it changes in Rota.
    pub create_before_destroy: bool,
    /// `alicloud_kms_secret.NAME` or `alicloud_kms_secret.NAME.ATTR`: when
    /// that resource (or attribute) changes, this one is replaced.
    pub replace_triggered_by: Vec<(String, Option<String>)>,
}

/// A `moved` block: the resource at `from` is now at `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// The old address.
    pub from: String,
    /// The new address.
    pub to: String,
}

/// An `output` block.
#[derive(Debug, Clone)]
pub struct OutputBlock {
    /// Its label.
    pub name: String,
    /// The `value` expression.
    pub expr: hcl::Expression,
    /// Whether the value is hidden unless asked for.
    pub sensitive: bool,
    /// The `description`.
    pub description: Option<String>,
    /// Where the block is.
    pub location: Location,
}

/// A loaded, validated configuration. `Debug` omits variable and local
/// values (they may be secrets).
#[derive(Clone)]
pub struct Config {
    /// The configuration directory, as given.
    pub root: PathBuf,
    /// Every file read.
    pub files: Vec<SourceFile>,
    /// The provider block.
    pub provider: ProviderConfig,
    /// The resources, in dependency order (a resource after what it refers to).
    pub resources: Vec<Resource>,
    /// One entry per rotating secret: the `rotation` blocks' selections, then
    /// the implicit rotations. Plugin names and settings are checked by
    /// [`rotation::validate_plugins`].
    pub rotations: Vec<RotationTarget>,
    /// Where each rotation target is configured, for diagnostics.
    pub rotation_locations: rotation::RotationLocations,
    /// The `workflow` blocks.
    pub workflows: Vec<workflow::WorkflowBlock>,
    /// Folders named by `plugins { paths = … }`, resolved against the
    /// configuration directory; each exists.
    pub plugin_paths: Vec<PathBuf>,
    /// The `store` block: the shared PostgreSQL store, if configured.
    pub store: Option<store::StoreConfig>,
    /// The `notify` blocks: where events are delivered.
    pub notify: Vec<notify::NotifyConfig>,
    /// The `events` block.
    pub events: notify::EventsSettings,
    /// The `agent` block (`rota agent`).
    pub agent: Option<agent::AgentConfig>,
    /// The `template` blocks (`rota agent`).
    pub templates: Vec<agent::TemplateConfig>,
    /// The `output` blocks, in file order.
    pub outputs: Vec<OutputBlock>,
    /// The `moved` blocks: address renames.
    pub moved: Vec<Moved>,
    /// The `import` blocks: resource address → the secret it takes over.
    pub imports: BTreeMap<String, String>,
    /// Blocks with `count = 0` or an empty `for_each`: no secret, but
    /// expressions and rotations may name them (an empty list or map).
    empty_blocks: BTreeMap<String, Value>,
    /// The modules called, by prefix (`module.x.`).
    modules: BTreeMap<String, module::ModuleScope>,
    /// The `data` blocks, the root's and every module's: read at plan
    /// time ([`crate::data::read_all`]).
    pub data: Vec<data::DataSource>,
    /// The sensitive names of each scope (see [`sensitive`]).
    sensitive_names: BTreeMap<String, sensitive::Names>,
    vars: Value,
    locals: Value,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("root", &self.root)
            .field("files", &self.files)
            .field("provider", &self.provider)
            .field("resources", &self.resources)
            .field("rotations", &self.rotations)
            .finish_non_exhaustive()
    }
}

/// What other resources look like to a reference: name → attribute object.
pub type Known = BTreeMap<String, Value>;

impl Config {
    /// What the rotation daemon schedules: the rotation targets and the
    /// workflow blocks.
    pub fn targets(&self) -> rota_rotation::Targets {
        rota_rotation::Targets {
            rotations: self.rotations.clone(),
            workflows: self.workflows.iter().map(|w| w.target()).collect(),
        }
    }

    /// Checks every rotation's plugin name and settings against
    /// `registry` ([`rotation::validate_plugins`]).
    pub fn validate_plugins(
        &self,
        registry: &rota_rotation::PluginRegistry,
    ) -> Result<(), Diagnostics> {
        rotation::validate_plugins(&self.rotations, &self.rotation_locations, registry)
    }

    /// Reads, evaluates and validates a configuration.
    pub fn load(options: &LoadOptions) -> Result<Self, Diagnostics> {
        Loader::default().load(options)
    }

    /// Parses configuration text as one file (tests, tools).
    pub fn from_text(
        file_name: &str,
        text: &str,
        options: &LoadOptions,
    ) -> Result<Self, Diagnostics> {
        let mut loader = Loader::default();
        let root = options.path.clone();
        loader
            .files
            .push(SourceFile::new(root.join(file_name), text));
        loader.finish(root, options)
    }

    /// The local world file beside the configuration, if there is one.
    pub fn world_file(&self) -> Option<PathBuf> {
        let p = self.root.join(WORLD_FILE);
        p.is_file().then_some(p)
    }

    /// A resource by name label or address.
    pub fn resource(&self, name_or_address: &str) -> Option<&Resource> {
        let name = resource::name_of_address(name_or_address).unwrap_or(name_or_address);
        self.resources.iter().find(|r| r.name == name)
    }

    /// Evaluates a resource again with what is now known about the resources
    /// it refers to (live attributes after they are applied).
    pub fn evaluate(&self, resource: &Resource, known: &Known) -> Result<SecretArgs, Diagnostics> {
        let ctx = self.context(resource, known);
        let file = &self.files[resource.file];
        let pending = self.data_pending(&resource.module, known);
        funcs::with_base_dir(self.module_dir(&resource.module), || {
            eval_resource(file, resource, &ctx, pending)
        })
        .map(|(args, _)| args)
    }

    /// The directory of the module at `prefix` (the root's for `""`).
    fn module_dir(&self, prefix: &str) -> &Path {
        self.modules.get(prefix).map_or(&self.root, |m| &m.dir)
    }

    /// What expressions in the module at `prefix` see: its variables,
    /// locals and `path`, without resources.
    fn scope_context(&self, prefix: &str) -> Context<'static> {
        match self.modules.get(prefix) {
            Some(m) => module_context(&self.root, &m.dir, m.vars.clone(), m.locals.clone()),
            None => base_context(&self.root, self.vars.clone(), self.locals.clone()),
        }
    }

    fn context(&self, resource: &Resource, known: &Known) -> Context<'static> {
        let prefix = resource.module.as_str();
        let mut ctx = self.scope_context(prefix);
        if !resource.depends_on.is_empty() || !self.empty_blocks.is_empty() {
            let deps = resource
                .depends_on
                .iter()
                .filter_map(|d| known.get_key_value(d))
                .chain(&self.empty_blocks)
                .filter_map(|(n, v)| Some((local_name(prefix, n)?, v)));
            ctx.declare_var(RESOURCE_TYPE, resources_object(deps));
        }
        if self.modules.values().any(|m| m.parent == prefix) {
            ctx.declare_var("module", self.module_object(prefix, known));
        }
        if self.data.iter().any(|d| d.module == prefix) {
            ctx.declare_var("data", data::data_object(&self.data, prefix, known));
        }
        declare_instance(&mut ctx, resource.instance.as_ref());
        ctx
    }

    /// Whether a data source the module at `prefix` declares has not been
    /// read into `known` (before the plan reads them).
    fn data_pending(&self, prefix: &str, known: &Known) -> bool {
        self.data
            .iter()
            .any(|d| d.module == prefix && !known.contains_key(&d.address))
    }

    /// The `module` object expressions in the module at `prefix` see: each
    /// module it calls by name, holding that module's outputs evaluated
    /// with `known`. An output that cannot be evaluated yet is left out.
    fn module_object(&self, prefix: &str, known: &Known) -> Value {
        let mut obj = hcl::Map::new();
        for (child, m) in self.modules.iter().filter(|(_, m)| m.parent == prefix) {
            let mut ctx = self.scope_context(child);
            let resources = known
                .iter()
                .chain(&self.empty_blocks)
                .filter_map(|(n, v)| Some((local_name(child, n)?, v)));
            ctx.declare_var(RESOURCE_TYPE, resources_object(resources));
            ctx.declare_var("module", self.module_object(child, known));
            ctx.declare_var("data", data::data_object(&self.data, child, known));
            let mut outputs = hcl::Map::new();
            for o in &m.outputs {
                if let Ok(v) = funcs::with_base_dir(&m.dir, || funcs::evaluate(&o.expr, &ctx)) {
                    outputs.insert(o.name.clone(), v);
                }
            }
            obj.insert(m.name.clone(), Value::Object(outputs));
        }
        Value::Object(obj)
    }

    /// Evaluates every resource in dependency order (computed attributes
    /// unknown) and validates its arguments; problems go to `diags`.
    fn evaluate_resources(&mut self, diags: &mut Vec<Diagnostic>) {
        let mut known = Known::new();
        for i in 0..self.resources.len() {
            let r = &self.resources[i];
            let ctx = self.context(r, &known);
            let file = &self.files[r.file];
            let pending = self.data_pending(&r.module, &known);
            let dir = self.module_dir(&r.module).to_path_buf();
            let result = funcs::with_base_dir(&dir, || eval_resource(file, r, &ctx, pending));
            match result {
                Ok((args, problems)) => {
                    let name_src = r
                        .attrs
                        .iter()
                        .find(|a| a.key == "secret_name")
                        .map(|a| file.slice(&a.span).to_owned())
                        .unwrap_or_default();
                    for p in resource::validate(&args, &r.set, &name_src) {
                        let mut d = Diagnostic::new(p.message)
                            .at(self.location(r, p.attr))
                            .address(&r.address);
                        d.help = p.help;
                        diags.push(d);
                    }
                    diags.extend(problems);
                    known.insert(r.name.clone(), resource_object(&args, None));
                    self.resources[i].args = args;
                }
                Err(d) => diags.extend(d.0),
            }
        }
    }

    /// Reads the rotation, workflow and plugins blocks of `top`, with the
    /// resources evaluated; problems go to `diags`.
    fn load_blocks(&mut self, top: &TopLevel, diags: &mut Vec<Diagnostic>) {
        let ctx = base_context(&self.root, self.vars.clone(), self.locals.clone());
        for (target, location) in rotation::load(
            &self.files,
            &top.rotations,
            &ctx,
            &self.root,
            &self.resources,
            &self.empty_blocks,
            diags,
        ) {
            if let Some(l) = location {
                self.rotation_locations
                    .insert((target.rotation.clone(), target.secret.clone()), l);
            }
            self.rotations.push(target);
        }
        self.workflows = workflow::load(&self.files, &top.workflows, &ctx, &self.root, diags);
        self.plugin_paths = plugins::load(&self.files, &top.plugins, &ctx, &self.root, diags);
        self.store = store::load(&self.files, &top.store, &ctx, &self.root, diags);
        self.notify = notify::load(&self.files, &top.notify, &ctx, &self.root, diags);
        self.events = notify::load_settings(&self.files, &top.events, &ctx, &self.root, diags);
        (self.agent, self.templates) = agent::load(
            &self.files,
            &top.agent,
            &top.templates,
            &ctx,
            &self.root,
            diags,
        );
        self.outputs = self.load_outputs(&top.outputs, diags);
        self.moved = self.load_moved(&top.moved, diags);
        self.imports = self.load_imports(&top.imports, diags);
    }

    /// Reads the `import` blocks (Terraform 1.5): `to` a declared
    /// `alicloud_kms_secret` address, `id` the name of the secret it takes
    /// over, which must be the name the resource declares.
    fn load_imports(
        &self,
        blocks: &[(usize, Block)],
        diags: &mut Vec<Diagnostic>,
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (fi, block) in blocks {
            let file = &self.files[*fi];
            let head = Location::of(file, &block.ident.span().unwrap_or(0..0), true);
            let (mut to, mut id) = (None, None);
            for a in block.body.attributes() {
                let raw = raw_attr(a);
                match raw.key.as_str() {
                    "to" => to = Some((file.slice(&raw.span).trim().to_owned(), raw.span.clone())),
                    "id" => {
                        match funcs::guarded(|| {
                            raw.expr.evaluate(&base_context(
                                &self.root,
                                self.vars.clone(),
                                self.locals.clone(),
                            ))
                        }) {
                            Ok(Value::String(s)) => id = Some((s, raw.span.clone())),
                            _ => diags.push(
                                Diagnostic::new("import id must be a string: the secret's name")
                                    .at(Location::of(file, &raw.span, true)),
                            ),
                        }
                    }
                    "provider" => {}
                    other => diags.push(
                        Diagnostic::new(format!("unknown attribute `{other}` in an import block"))
                            .at(Location::of(file, &raw.key_span, true))
                            .help("import { to = alicloud_kms_secret.db, id = \"app/db\" }"),
                    ),
                }
            }
            let (Some((to, to_span)), Some((id, id_span))) = (to, id) else {
                diags.push(
                    Diagnostic::new("an import block needs to and id")
                        .at(head)
                        .help("import { to = alicloud_kms_secret.db, id = \"app/db\" }"),
                );
                continue;
            };
            let Some(r) = self.resources.iter().find(|r| r.address == to) else {
                diags.push(
                    Diagnostic::new(format!("import to {to}, which is not declared"))
                        .at(Location::of(file, &to_span, true))
                        .help("declare the resource block the secret is imported into"),
                );
                continue;
            };
            if !r.args.is_unknown("secret_name") && r.args.secret_name != id {
                diags.push(
                    Diagnostic::new(format!(
                        "import id {id:?} is not the secret_name {:?} that {to} declares",
                        r.args.secret_name
                    ))
                    .at(Location::of(file, &id_span, true))
                    .help("Rota finds a secret by its name: use the same name in both"),
                );
                continue;
            }
            out.insert(to, id);
        }
        out
    }

    /// Reads the `moved` blocks: `from` and `to`, both
    /// `alicloud_kms_secret.NAME`; `to` must be declared and `from` not.
    fn load_moved(&self, blocks: &[(usize, Block)], diags: &mut Vec<Diagnostic>) -> Vec<Moved> {
        let mut out: Vec<Moved> = Vec::new();
        for (fi, block) in blocks {
            let file = &self.files[*fi];
            let head = Location::of(file, &block.ident.span().unwrap_or(0..0), true);
            let (mut from, mut to) = (None, None);
            for a in block.body.attributes() {
                let raw = raw_attr(a);
                let text = file.slice(&raw.span).trim().to_owned();
                match raw.key.as_str() {
                    "from" => from = Some((text, raw.span.clone())),
                    "to" => to = Some((text, raw.span.clone())),
                    other => diags.push(
                        Diagnostic::new(format!("unknown attribute `{other}` in a moved block"))
                            .at(Location::of(file, &raw.key_span, true))
                            .help("moved { from = alicloud_kms_secret.old, to = alicloud_kms_secret.new }"),
                    ),
                }
            }
            let (Some((from, from_span)), Some((to, to_span))) = (from, to) else {
                diags.push(
                    Diagnostic::new("a moved block needs from and to")
                        .at(head)
                        .help("moved { from = alicloud_kms_secret.old, to = alicloud_kms_secret.new }"),
                );
                continue;
            };
            let is_address = |s: &str| {
                resource::name_of_address(s).is_some_and(|n| {
                    // A block's label, or an instance's (`app["web"]`,
                    // `app[0]`), perhaps in a module.
                    let base = InstanceKey::split(n).map_or(n, |(b, _)| b);
                    let label = match base.starts_with("module.") {
                        true => base.rsplit('.').next().unwrap_or(base),
                        false => base,
                    };
                    (base == n || InstanceKey::split(n).is_some()) && resource::is_label(label)
                })
            };
            let declared = |s: &str| self.resources.iter().any(|r| r.address == s);
            let mut bad = |span: &Range<usize>, msg: String| {
                diags.push(Diagnostic::new(msg).at(Location::of(file, span, true)));
            };
            if !is_address(&from) {
                bad(
                    &from_span,
                    format!("moved from {from}: not an alicloud_kms_secret address"),
                );
            } else if !is_address(&to) {
                bad(
                    &to_span,
                    format!("moved to {to}: not an alicloud_kms_secret address"),
                );
            } else if !declared(&to) {
                bad(&to_span, format!("moved to {to}, which is not declared"));
            } else if declared(&from) {
                bad(
                    &from_span,
                    format!(
                        "moved from {from}, which is still declared: remove that resource block, or this moved block"
                    ),
                );
            } else if out.iter().any(|m| m.from == from) {
                bad(&from_span, format!("{from} is moved twice"));
            } else {
                out.push(Moved { from, to });
            }
        }
        out
    }

    /// Reads the `output` blocks: `value` (required), `sensitive`,
    /// `description`. An output whose value reads a resource's
    /// `secret_data` must be marked sensitive, as Terraform requires.
    fn load_outputs(
        &self,
        blocks: &[(usize, Block)],
        diags: &mut Vec<Diagnostic>,
    ) -> Vec<OutputBlock> {
        let none = sensitive::Names::new();
        let scope = OutputScope {
            prefix: "",
            resources: &self.resources,
            empty_blocks: &self.empty_blocks,
            modules: &self.modules,
            sensitive: self.sensitive_names.get("").unwrap_or(&none),
        };
        scope.load(&self.files, blocks, diags)
    }

    /// The value of each output, evaluated with `known` (every resource's
    /// arguments and computed attributes, by name).
    ///
    /// # Errors
    ///
    /// An output that cannot be evaluated, named.
    pub fn output_values(
        &self,
        known: &Known,
    ) -> Result<Vec<(OutputBlock, serde_json::Value)>, Diagnostics> {
        let mut ctx = base_context(&self.root, self.vars.clone(), self.locals.clone());
        ctx.declare_var(
            RESOURCE_TYPE,
            resources_object(
                known
                    .iter()
                    .chain(&self.empty_blocks)
                    .filter_map(|(n, v)| Some((local_name("", n)?, v))),
            ),
        );
        ctx.declare_var("module", self.module_object("", known));
        ctx.declare_var("data", data::data_object(&self.data, "", known));
        let mut out = Vec::new();
        let mut diags = Vec::new();
        for o in &self.outputs {
            match funcs::with_base_dir(&self.root, || funcs::evaluate(&o.expr, &ctx)) {
                Ok(v) => out.push((
                    o.clone(),
                    serde_json::to_value(&v).unwrap_or(serde_json::Value::Null),
                )),
                Err(e) => diags.push(
                    Diagnostic::new(format!("output {:?}: {e}", o.name)).at(o.location.clone()),
                ),
            }
        }
        if diags.is_empty() {
            Ok(out)
        } else {
            Err(Diagnostics(diags))
        }
    }

    /// Reports resources that name the same secret (KMS would refuse the
    /// second with `Rejected.ResourceExist`), naming both places. `$Auto`
    /// secrets are named by KMS after their RAM user.
    fn shared_names(&self, diags: &mut Vec<Diagnostic>) {
        let mut first: BTreeMap<String, &Resource> = BTreeMap::new();
        for r in &self.resources {
            if r.args.is_unknown("secret_name") {
                continue;
            }
            let name = if r.args.secret_name == rota_rotation::AUTO_NAME {
                let user = r
                    .args
                    .extended_config
                    .as_deref()
                    .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
                    .and_then(|v| v["UserName"].as_str().map(str::to_owned));
                match user {
                    Some(u) => format!("acs/ram/user/{u}"),
                    None => continue,
                }
            } else {
                r.args.secret_name.clone()
            };
            match first.get(&name) {
                Some(other) => diags.push(
                    Diagnostic::new(format!(
                        "{} and {} both name the secret {name:?}",
                        other.address, r.address
                    ))
                    .at(self.location(r, Some("secret_name")))
                    .address(&r.address)
                    .help(format!(
                        "a secret name is unique in a region: rename one (the other is at {})",
                        self.location(other, Some("secret_name")).place()
                    )),
                ),
                None => {
                    first.insert(name, r);
                }
            }
        }
    }

    /// Reports every rotation and workflow whose schedule has no fire time
    /// after `now` (the Unix epoch when not given): `0 0 31 2 *`, a past
    /// one-shot time. Each schedule is reported once.
    fn never_firing(
        &self,
        now: Option<chrono::DateTime<chrono::Utc>>,
        diags: &mut Vec<Diagnostic>,
    ) {
        let after = now.unwrap_or(chrono::DateTime::UNIX_EPOCH);
        let never = |schedule: &str, zone: &str| {
            Schedule::parse_in(schedule, zone).is_ok_and(|s| s.next_fire(after).is_none())
        };
        let help = |schedule: &str| {
            if Schedule::parse_in(schedule, "UTC").is_ok_and(|s| s.is_one_shot()) {
                format!(
                    "a one-shot time must be later than now ({}); remove the block once it ran",
                    after.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )
            } else {
                "no date matches its day-of-month and month fields (February has no 30th or 31st; April, June, September and November no 31st)".to_owned()
            }
        };
        let mut reported = BTreeSet::new();
        for t in &self.rotations {
            if !never(&t.schedule, &t.timezone) || !reported.insert(t.rotation.clone()) {
                continue;
            }
            let mut d = Diagnostic::new(format!(
                "rotation {:?}: schedule {:?} never fires",
                t.rotation, t.schedule
            ))
            .help(help(&t.schedule));
            if let Some(l) = self
                .rotation_locations
                .get(&(t.rotation.clone(), t.secret.clone()))
            {
                d = d.at(l.clone());
            }
            diags.push(d);
        }
        for w in &self.workflows {
            if never(&w.schedule, &w.timezone) {
                let mut d = Diagnostic::new(format!(
                    "workflow {:?}: schedule {:?} never fires",
                    w.name, w.schedule
                ))
                .help(help(&w.schedule));
                if let Some(l) = &w.location {
                    d = d.at(l.clone());
                }
                diags.push(d);
            }
        }
    }

    /// A location inside a resource: one of its attributes, else the block.
    pub fn location(&self, resource: &Resource, attr: Option<&str>) -> Location {
        let file = &self.files[resource.file];
        let raw = attr.and_then(|a| resource.attrs.iter().find(|r| r.key == a));
        match raw {
            Some(raw) => Location::of(file, &raw.span, raw.key != "secret_data"),
            None => Location::of(file, &(resource.span.start..resource.span.start + 8), true),
        }
    }
}

/// The object a reference `alicloud_kms_secret.<name>` sees: the block's
/// arguments plus the computed attributes (`UNKNOWN` when not known).
pub fn resource_object(args: &SecretArgs, computed: Option<&BTreeMap<String, String>>) -> Value {
    let mut o = hcl::Map::new();
    let s = |v: &str| Value::String(v.to_owned());
    o.insert("secret_name".into(), s(&args.secret_name));
    o.insert("secret_data".into(), s(args.secret_data.expose_secret()));
    o.insert("version_id".into(), s(&args.version_id));
    o.insert("secret_type".into(), s(&args.secret_type));
    o.insert("secret_data_type".into(), s(&args.secret_data_type));
    let opt = |v: &Option<String>| v.as_deref().map(s).unwrap_or(Value::Null);
    o.insert("description".into(), opt(&args.description));
    o.insert("encryption_key_id".into(), opt(&args.encryption_key_id));
    o.insert("dkms_instance_id".into(), opt(&args.dkms_instance_id));
    o.insert("extended_config".into(), opt(&args.extended_config));
    o.insert("rotation_interval".into(), opt(&args.rotation_interval));
    o.insert("policy".into(), opt(&args.policy));
    o.insert(
        "enable_automatic_rotation".into(),
        Value::Bool(args.enable_automatic_rotation.unwrap_or(false)),
    );
    o.insert(
        "tags".into(),
        Value::Object(args.tags.iter().map(|(k, v)| (k.clone(), s(v))).collect()),
    );
    o.insert(
        "recovery_window_in_days".into(),
        Value::from(args.recovery_window_in_days),
    );
    for attr in resource::COMPUTED {
        let v = computed
            .and_then(|c| c.get(*attr))
            .map(|v| s(v))
            .unwrap_or_else(|| s(UNKNOWN));
        o.insert((*attr).into(), v);
    }
    Value::Object(o)
}

fn base_context(root: &Path, vars: Value, locals: Value) -> Context<'static> {
    module_context(root, root, vars, locals)
}

/// What expressions in the module in `dir` see before resources: `var`,
/// `local`, `path` and the functions.
fn module_context(root: &Path, dir: &Path, vars: Value, locals: Value) -> Context<'static> {
    let mut ctx = Context::new();
    funcs::declare(&mut ctx);
    ctx.declare_var("var", vars);
    ctx.declare_var("local", locals);
    let mut path = hcl::Map::new();
    path.insert("module".into(), Value::String(dir.display().to_string()));
    path.insert("root".into(), Value::String(root.display().to_string()));
    ctx.declare_var("path", Value::Object(path));
    ctx
}

/// The top-level blocks of a configuration, sorted by type (each block
/// with the index of its file).
#[derive(Default)]
struct TopLevel {
    /// The `variable` blocks, read.
    variables: BTreeMap<String, Variable>,
    /// The attributes of the `locals` blocks.
    locals: Vec<(usize, RawAttr)>,
    /// The `provider "alicloud"` blocks.
    provider: Vec<(usize, Block)>,
    /// The `resource "alicloud_kms_secret"` blocks.
    resources: Vec<(usize, Block)>,
    /// The `rotation` blocks.
    rotations: Vec<(usize, Block)>,
    /// The `workflow` blocks.
    workflows: Vec<(usize, Block)>,
    /// The `plugins` blocks.
    plugins: Vec<(usize, Block)>,
    store: Vec<(usize, Block)>,
    notify: Vec<(usize, Block)>,
    events: Vec<(usize, Block)>,
    agent: Vec<(usize, Block)>,
    templates: Vec<(usize, Block)>,
    outputs: Vec<(usize, Block)>,
    moved: Vec<(usize, Block)>,
    imports: Vec<(usize, Block)>,
    /// The `module` blocks.
    modules: Vec<(usize, Block)>,
    /// The `data` blocks.
    data: Vec<(usize, Block)>,
}

/// Reads configuration files and turns them into a [`Config`], collecting
/// every problem.
#[derive(Default)]
struct Loader {
    files: Vec<SourceFile>,
    diags: Vec<Diagnostic>,
    /// Blocks that expanded to no instance (see [`Config::empty_blocks`]).
    empty_blocks: BTreeMap<String, Value>,
    /// The directory of the module being read (`file()` in
    /// `count`/`for_each`).
    root_dir: PathBuf,
    /// `module.x.` for every module call read (nested ones spelled from the
    /// root: `module.x.module.y.`).
    module_prefixes: BTreeSet<String>,
    /// The modules read, by prefix.
    modules: BTreeMap<String, module::ModuleScope>,
    /// The configuration's directory (`path.root`).
    config_root: PathBuf,
    /// The `data` blocks read, the root's and every module's.
    data: Vec<data::DataSource>,
    /// The sensitive names of each scope, by module prefix.
    sensitive: BTreeMap<String, sensitive::Names>,
}

/// A declared variable.
struct Variable {
    /// Its default value, if it has one.
    default: Option<Value>,
    /// Whether its type is `string` (or `any`): a `-var` value is then
    /// taken as text, not parsed as an expression.
    is_string: bool,
    /// `sensitive = true`.
    sensitive: bool,
    /// The file it is declared in.
    file: usize,
    /// Where it is declared (the `variable` keyword).
    span: Range<usize>,
}

fn expr_span(e: &hcl::edit::expr::Expression) -> Range<usize> {
    e.span().unwrap_or(0..0)
}

fn raw_attr(a: &hcl::edit::structure::Attribute) -> RawAttr {
    RawAttr {
        key: a.key.as_str().to_owned(),
        expr: a.value.clone().into(),
        span: expr_span(&a.value),
        key_span: a.key.span().unwrap_or(0..0),
    }
}

/// "did you mean `x`? " when something is close (Levenshtein distance, by
/// strsim).
pub fn suggest(word: &str, candidates: &[&str]) -> String {
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min()
        .map(|(_, c)| format!("did you mean `{c}`? "))
        .unwrap_or_default()
}

/// Declares `each` (`for_each`) or `count` (`count`) for an instance.
fn declare_instance(ctx: &mut Context<'_>, instance: Option<&Instance>) {
    match instance.map(|i| (&i.key, &i.value)) {
        Some((InstanceKey::Key(k), v)) => {
            let mut each = hcl::Map::new();
            each.insert("key".to_owned(), Value::String(k.clone()));
            each.insert("value".to_owned(), v.clone());
            ctx.declare_var("each", Value::Object(each));
        }
        Some((InstanceKey::Index(i), _)) => {
            let mut count = hcl::Map::new();
            count.insert("index".to_owned(), Value::from(*i as u64));
            ctx.declare_var("count", Value::Object(count));
        }
        None => {}
    }
}

/// Whether `text` uses the variable `root` (`each.…`, `count.…`).
fn uses_variable(text: &str, root: &str) -> bool {
    let pat = format!("{root}.");
    let mut rest = text;
    while let Some(i) = rest.find(&pat) {
        let before_ok = rest[..i]
            .chars()
            .last()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '"'));
        if before_ok {
            return true;
        }
        rest = &rest[i + pat.len()..];
    }
    false
}

/// The functions an expression calls that Rota does not have, with where
/// each call is.
fn unknown_functions(e: &hcl::edit::expr::Expression) -> Vec<(String, Range<usize>)> {
    use hcl::edit::visit::Visit;
    struct Calls(Vec<(String, Range<usize>)>);
    impl Visit for Calls {
        fn visit_func_call(&mut self, node: &hcl::edit::expr::FuncCall) {
            let name = node.name.name.as_str();
            if !node.name.namespace.is_empty() || !funcs::FUNCTIONS.contains(&name) {
                let full: Vec<&str> = node
                    .name
                    .namespace
                    .iter()
                    .map(|n| n.as_str())
                    .chain(std::iter::once(name))
                    .collect();
                self.0
                    .push((full.join("::"), node.name.name.span().unwrap_or(0..0)));
            }
            hcl::edit::visit::visit_func_call(self, node);
        }
    }
    let mut calls = Calls(Vec::new());
    calls.visit_expr(e);
    calls.0
}

/// The configuration-wide name of the resource `local` (a label, perhaps
/// with an instance key) declared in the module at `prefix`.
fn qualify(prefix: &str, local: &str) -> String {
    if prefix.is_empty() {
        local.to_owned()
    } else {
        format!("{prefix}{RESOURCE_TYPE}.{local}")
    }
}

/// The name, as seen from inside the module at `prefix`, of the resource
/// named `name` configuration-wide; `None` if it is not in that module.
fn local_name<'a>(prefix: &str, name: &'a str) -> Option<&'a str> {
    if prefix.is_empty() {
        (!name.starts_with("module.")).then_some(name)
    } else {
        name.strip_prefix(prefix)?
            .strip_prefix(RESOURCE_TYPE)?
            .strip_prefix('.')
    }
}

/// What an expression of the module at `prefix` waits for, spelled from
/// the root: the resources it names, and `module.x.` (everything in that
/// module) for each module whose outputs it reads.
fn dependencies(prefix: &str, text: &str) -> impl Iterator<Item = String> {
    let resources = referenced_names(text)
        .into_iter()
        .map(move |n| qualify(prefix, &n));
    let modules = referenced_modules(text)
        .into_iter()
        .map(move |m| format!("{prefix}module.{m}."));
    resources.chain(modules)
}

/// Module names referred to in source text (`module.<name>.…`; not
/// `path.module`).
fn referenced_modules(text: &str) -> BTreeSet<String> {
    labels_after(text, "module.", &['"', '.'])
}

/// Resource names referred to in source text (`alicloud_kms_secret.<name>`).
fn referenced_names(text: &str) -> BTreeSet<String> {
    labels_after(text, "alicloud_kms_secret.", &['"'])
}

/// The labels that follow `pat` in `text` where `pat` starts a name (not
/// after a letter, digit, `_` or one of `not_after`).
fn labels_after(text: &str, pat: &str, not_after: &[char]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find(pat) {
        let before_ok = rest[..i]
            .chars()
            .last()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || not_after.contains(&c)));
        let tail = &rest[i + pat.len()..];
        let name: String = tail
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        if before_ok && !name.is_empty() {
            out.insert(name);
        }
        rest = tail;
    }
    out
}

/// Whether a value (recursively) contains the unknown marker.
fn contains_unknown(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains(UNKNOWN),
        Value::Array(a) => a.iter().any(contains_unknown),
        Value::Object(o) => o.values().any(contains_unknown),
        _ => false,
    }
}

/// A readable evaluation error. For sensitive attributes nothing that could
/// quote a value is kept.
fn eval_message(err: &hcl::eval::Error, source: &str, sensitive: bool) -> (String, Option<String>) {
    use hcl::eval::ErrorKind as K;
    match err.kind() {
        K::UndefinedFunc(name) => (
            format!("unknown function `{name}`"),
            Some(format!(
                "the functions available are: {}",
                funcs::FUNCTIONS.join(", ")
            )),
        ),
        K::UndefinedVar(name) if name.as_str() == "data" => (
            "no data source can be read here".to_owned(),
            Some("data sources are read by the plan, before the resources: resource arguments and outputs may use data.TYPE.NAME, variables, locals, count and for_each may not (and a data block must be declared)".into()),
        ),
        K::UndefinedVar(name) if name.as_str() == "module" => (
            "no module output can be read here".to_owned(),
            Some("a module's outputs (module.NAME.OUTPUT) are read by the resource arguments and outputs of its caller, once the module block is declared".into()),
        ),
        K::UndefinedVar(name) => (
            format!("unknown name `{name}`"),
            Some("references are var.<name>, local.<name>, path.module, data.<type>.<name>, module.<name>.<output> and alicloud_kms_secret.<name>.<attribute>".into()),
        ),
        K::NoSuchKey(key) => {
            if source.contains(&format!("var.{key}")) {
                (
                    format!("variable `{key}` is not declared"),
                    Some(format!("declare it: variable \"{key}\" {{}}")),
                )
            } else if source.contains(&format!("local.{key}")) {
                (format!("local value `{key}` is not defined"), None)
            } else if source.contains(&format!("{RESOURCE_TYPE}.{key}")) {
                (
                    format!("resource {RESOURCE_TYPE}.{key} is not declared"),
                    None,
                )
            } else {
                (format!("no such key `{key}`"), None)
            }
        }
        K::FuncCall(name, msg) => {
            let msg = match msg.find(", got `") {
                Some(i) => &msg[..i],
                None => msg.as_str(),
            };
            (format!("error calling function `{name}`: {msg}"), None)
        }
        K::Unexpected(_, expected) => (format!("unexpected value, expected {expected}"), None),
        K::Index(i) => (format!("index {i} out of bounds"), None),
        K::UnaryOp(op, _) => (format!("operator `{op}` is not applicable here"), None),
        K::BinaryOp(_, op, _) => (format!("operator `{op}` is not applicable to these values"), None),
        other if !sensitive => (other.to_string(), None),
        _ => ("the expression cannot be evaluated".into(), None),
    }
}

impl Loader {
    fn load(mut self, options: &LoadOptions) -> Result<Config, Diagnostics> {
        let path = &options.path;
        let root;
        if path.is_dir() {
            root = path.clone();
            let mut names = Vec::new();
            let entries = std::fs::read_dir(path).map_err(|e| {
                Diagnostic::new(format!("cannot read the configuration directory: {e}"))
                    .at(Location::file_only(path))
            })?;
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let is_config = name.ends_with(".tf") || name.ends_with(".hcl");
                if is_config && name != WORLD_FILE && entry.path().is_file() {
                    names.push(name);
                }
            }
            names.sort();
            if names.is_empty() {
                return Err(
                    Diagnostic::new("no configuration files (*.tf, *.hcl) found")
                        .at(Location::file_only(path))
                        .help("write the alicloud_kms_secret blocks in a .tf file, or pass -c FILE")
                        .into(),
                );
            }
            for name in names {
                self.read(&path.join(name))?;
            }
        } else if path.is_file() {
            root = path.parent().map(Path::to_path_buf).unwrap_or_default();
            self.read(path)?;
        } else {
            return Err(Diagnostic::new("the configuration path does not exist")
                .at(Location::file_only(path))
                .into());
        }
        self.finish(root, options)
    }

    fn read(&mut self, path: &Path) -> Result<(), Diagnostics> {
        let text = crate::files::read_text(path, crate::files::CONFIG_LIMIT).map_err(|e| {
            Diagnostic::new(format!("cannot read the file: {e}")).at(Location::file_only(path))
        })?;
        self.files.push(SourceFile::new(path, text));
        Ok(())
    }

    /// Parses, sorts, evaluates and validates the files read: variables,
    /// locals, the provider, the resources (in dependency order), then the
    /// rotation, workflow and plugins blocks.
    fn finish(mut self, root: PathBuf, options: &LoadOptions) -> Result<Config, Diagnostics> {
        self.config_root = root.clone();
        let bodies = self.parse_files();
        if !self.diags.is_empty() {
            return Err(Diagnostics(self.diags));
        }
        let mut top = self.sort_blocks(&bodies);
        let vars = self.variable_values(&root, &top.variables, options);
        let names = self.scope_sensitivity(&top, |_, v| v.sensitive);
        self.sensitive.insert(String::new(), names);
        let locals = self.locals(&root, &vars, std::mem::take(&mut top.locals));
        let provider = self.provider(&root, &top.provider, &vars, &locals);
        self.root_dir = root.clone();
        let base = base_context(&root, vars.clone(), locals.clone());
        let root_data = self.data_sources(&top.data, &base, "", &root);
        self.data.extend(root_data);
        let mut resources = self.resources(&top.resources, &base, "");
        let root_modules = std::mem::take(&mut top.modules);
        let mut chain: Vec<PathBuf> = root.canonicalize().into_iter().collect();
        self.modules(&root, "", &root_modules, &base, &mut resources, &mut chain);
        self.root_dir = root.clone();
        drop(base);
        for r in &mut resources {
            let names = self.sensitive.get(&r.module).cloned().unwrap_or_default();
            let file = &self.files[r.file];
            r.sensitive = r
                .attrs
                .iter()
                .filter(|a| a.key != "secret_data")
                .filter(|a| sensitive::is_sensitive(file.slice(&a.span), &names))
                .map(|a| a.key.clone())
                .collect();
        }
        self.unknown_references(&resources);
        if !self.diags.is_empty() {
            return Err(Diagnostics(self.diags));
        }
        expand_dependencies(&mut resources, &self.empty_blocks);
        let resources = order(resources).map_err(|cycle| {
            Diagnostics::from(
                Diagnostic::new(format!(
                    "the resources refer to each other in a cycle: {}",
                    cycle.join(" -> ")
                ))
                .help("a secret may refer only to secrets that do not refer back to it"),
            )
        })?;
        let mut config = Config {
            root,
            files: self.files,
            provider,
            resources,
            rotations: Vec::new(),
            rotation_locations: Default::default(),
            workflows: Vec::new(),
            plugin_paths: Vec::new(),
            store: None,
            notify: Vec::new(),
            events: Default::default(),
            agent: None,
            templates: Vec::new(),
            outputs: Vec::new(),
            moved: Vec::new(),
            imports: BTreeMap::new(),
            empty_blocks: std::mem::take(&mut self.empty_blocks),
            modules: std::mem::take(&mut self.modules),
            data: std::mem::take(&mut self.data),
            sensitive_names: std::mem::take(&mut self.sensitive),
            vars,
            locals,
        };
        let mut diags = self.diags;
        config.evaluate_resources(&mut diags);
        if diags.is_empty() {
            config.shared_names(&mut diags);
        }
        if diags.is_empty() {
            config.load_blocks(&top, &mut diags);
        }
        if diags.is_empty() {
            config.never_firing(options.now, &mut diags);
        }
        if !diags.is_empty() {
            return Err(Diagnostics(diags));
        }
        Ok(config)
    }

    /// The sensitive names of a scope whose blocks are `top`: the
    /// variables `sensitive_var` says are, and the locals that use them
    /// (see [`sensitive`]).
    fn scope_sensitivity(
        &self,
        top: &TopLevel,
        sensitive_var: impl Fn(&str, &Variable) -> bool,
    ) -> sensitive::Names {
        let mut names: sensitive::Names = top
            .variables
            .iter()
            .filter(|(n, v)| sensitive_var(n, v))
            .map(|(n, _)| format!("var.{n}"))
            .collect();
        sensitive::add_locals(
            &mut names,
            top.locals
                .iter()
                .map(|(fi, a)| (a.key.as_str(), self.files[*fi].slice(&a.span))),
        );
        names
    }

    /// Parses every file; a file that is not valid HCL is reported at the
    /// line and column of the error.
    fn parse_files(&mut self) -> Vec<(usize, Body)> {
        self.parse_range(0..self.files.len())
    }

    /// Parses the files of `range` (see [`Self::parse_files`]).
    fn parse_range(&mut self, range: Range<usize>) -> Vec<(usize, Body)> {
        let mut bodies = Vec::new();
        for (i, file) in self
            .files
            .iter()
            .enumerate()
            .skip(range.start)
            .take(range.len())
        {
            match hcl::edit::parser::parse_body(file.text()) {
                Ok(body) => bodies.push((i, body)),
                Err(e) => {
                    let loc = e.location();
                    let line = loc.line();
                    self.diags.push(
                        Diagnostic::new(format!("the file is not valid HCL: {}", e.message())).at(
                            Location {
                                file: file.path.clone(),
                                line,
                                column: loc.column(),
                                width: 1,
                                source_line: Some(file.line_text(line).to_owned()),
                            },
                        ),
                    );
                }
            }
        }
        bodies
    }

    /// Sorts the top-level blocks of every file by type. Top-level
    /// attributes, unsupported blocks and wrong labels are reported;
    /// variable blocks are read here.
    fn sort_blocks(&mut self, bodies: &[(usize, Body)]) -> TopLevel {
        let mut top = TopLevel::default();
        for (fi, body) in bodies {
            for attr in body.attributes() {
                let file = &self.files[*fi];
                self.diags.push(
                    Diagnostic::new(format!(
                        "unexpected top-level attribute `{}`",
                        attr.key.as_str()
                    ))
                    .at(Location::of(file, &attr.key.span().unwrap_or(0..0), true))
                    .help("a configuration holds blocks: variable, locals, provider, resource, rotation, workflow, plugins"),
                );
            }
            for block in body.blocks() {
                self.top_block(*fi, block, &mut top);
            }
        }
        top
    }

    /// Files one top-level block of file `fi` under its type in `top`, or
    /// reports it.
    fn top_block(&mut self, fi: usize, block: &Block, top: &mut TopLevel) {
        let file = self.files[fi].clone();
        let ident = block.ident.as_str();
        let span = block.span().unwrap_or(0..0);
        let head = block.ident.span().unwrap_or(span.clone());
        let labels: Vec<&str> = block.labels.iter().map(|l| l.as_str()).collect();
        match ident {
            "variable" => self.variable_block(&file, fi, block, &labels, head, &mut top.variables),
            "locals" => {
                for a in block.body.attributes() {
                    top.locals.push((fi, raw_attr(a)));
                }
            }
            "provider" => {
                if labels.as_slice() != ["alicloud"] {
                    self.diags.push(
                        Diagnostic::new(format!(
                            "provider {:?} is not supported",
                            labels.join(" ")
                        ))
                        .at(Location::of(&file, &head, true))
                        .help("Rota speaks to Alibaba Cloud: provider \"alicloud\" { region = … }"),
                    );
                    return;
                }
                top.provider.push((fi, block.clone()));
            }
            "resource" => {
                if self.resource_labels_ok(&file, &labels, &head) {
                    top.resources.push((fi, block.clone()));
                }
            }
            "rotation" => top.rotations.push((fi, block.clone())),
            "workflow" => top.workflows.push((fi, block.clone())),
            "plugins" => top.plugins.push((fi, block.clone())),
            "store" => top.store.push((fi, block.clone())),
            "notify" => top.notify.push((fi, block.clone())),
            "events" => top.events.push((fi, block.clone())),
            "agent" => top.agent.push((fi, block.clone())),
            "template" => top.templates.push((fi, block.clone())),
            "output" => top.outputs.push((fi, block.clone())),
            "moved" => top.moved.push((fi, block.clone())),
            "import" => top.imports.push((fi, block.clone())),
            "module" => top.modules.push((fi, block.clone())),
            "data" => top.data.push((fi, block.clone())),
            "terraform" => {}
            other => self.unsupported_block(&file, other, &head),
        }
    }

    /// Reads a `variable` block into `variables`: its default (evaluated
    /// without any context) and whether it is a string.
    fn variable_block(
        &mut self,
        file: &SourceFile,
        fi: usize,
        block: &Block,
        labels: &[&str],
        head: Range<usize>,
        variables: &mut BTreeMap<String, Variable>,
    ) {
        let &[name] = labels else {
            self.diags.push(
                Diagnostic::new("a variable block takes one label, its name")
                    .at(Location::of(file, &head, true)),
            );
            return;
        };
        let mut var = Variable {
            default: None,
            is_string: true,
            sensitive: false,
            file: fi,
            span: head.clone(),
        };
        for a in block.body.attributes() {
            let key = a.key.as_str();
            match key {
                "default" => {
                    let expr: hcl::Expression = a.value.clone().into();
                    match funcs::evaluate(&expr, &Context::new()) {
                        Ok(v) => var.default = Some(v),
                        Err(e) => {
                            let (msg, help) = eval_message(&e, "", true);
                            let mut d = Diagnostic::new(format!(
                                "the default of variable `{name}` cannot be evaluated: {msg}"
                            ))
                            .at(Location::of(
                                file,
                                &expr_span(&a.value),
                                true,
                            ));
                            d.help = help;
                            self.diags.push(d);
                        }
                    }
                }
                "type" => {
                    let text = file.slice(&expr_span(&a.value)).trim();
                    var.is_string = text == "string" || text == "any";
                }
                "sensitive" => var.sensitive = file.slice(&expr_span(&a.value)).trim() == "true",
                k if VARIABLE_ARGS.contains(&k) => {}
                other => self.diags.push(
                    Diagnostic::new(format!("unknown attribute `{other}` in variable `{name}`"))
                        .at(Location::of(file, &a.key.span().unwrap_or(0..0), true))
                        .help(format!(
                            "{}allowed: {}",
                            suggest(other, VARIABLE_ARGS),
                            VARIABLE_ARGS.join(", ")
                        )),
                ),
            }
        }
        if let Some(b) = block.body.blocks().next() {
            self.diags.push(
                Diagnostic::new(format!(
                    "`{}` blocks in variables are not supported",
                    b.ident.as_str()
                ))
                .at(Location::of(file, &b.ident.span().unwrap_or(0..0), true))
                .help("check the value where it is used instead"),
            );
        }
        if let Some(first) = variables.get(name) {
            let first = Location::of(&self.files[first.file], &first.span, true);
            self.diags.push(Diagnostic::declared_twice(
                &format!("variable `{name}`"),
                &first,
                Location::of(file, &head, true),
            ));
            return;
        }
        variables.insert(name.to_owned(), var);
    }

    /// Whether a resource block's labels are `alicloud_kms_secret` and a
    /// name; otherwise reports them.
    fn resource_labels_ok(
        &mut self,
        file: &SourceFile,
        labels: &[&str],
        head: &Range<usize>,
    ) -> bool {
        if labels.len() != 2 {
            self.diags.push(
                Diagnostic::new("a resource block takes two labels: type and name")
                    .at(Location::of(file, head, true))
                    .help("resource \"alicloud_kms_secret\" \"name\" { … }"),
            );
            return false;
        }
        if labels[0] != RESOURCE_TYPE {
            self.diags.push(
                Diagnostic::new(format!("resource type `{}` is not supported", labels[0]))
                    .at(Location::of(file, head, true))
                    .help(format!(
                        "{}Rota manages {RESOURCE_TYPE} resources",
                        suggest(labels[0], &[RESOURCE_TYPE])
                    )),
            );
            return false;
        }
        true
    }

    /// Reports a top-level block of a type Rota does not read: a Terraform
    /// feature it does not support, or an unknown type.
    fn unsupported_block(&mut self, file: &SourceFile, ident: &str, head: &Range<usize>) {
        let d = match ident {
            "removed" | "check" => {
                Diagnostic::new(format!(
                    "`{ident}` blocks are a Terraform feature Rota does not support"
                ))
                .at(Location::of(file, head, true))
                .help(format!(
                    "Rota understands: {}{}",
                    TOP_BLOCKS.join(", "),
                    if ident == "data" {
                        "; to manage an existing secret, `rota import ADDRESS ID` prints its resource block"
                    } else {
                        ""
                    }
                ))
            }
            other => Diagnostic::new(format!("unknown block type `{other}`"))
                .at(Location::of(file, head, true))
                .help(format!(
                    "{}Rota understands: {}",
                    suggest(other, TOP_BLOCKS),
                    TOP_BLOCKS.join(", ")
                )),
        };
        self.diags.push(d);
    }

    /// Evaluates the locals, round after round, until nothing more
    /// resolves (a local may refer to another); what never resolves is
    /// reported.
    /// `dir` is the module's directory (`path.module`, and where `file()`
    /// reads).
    fn locals(&mut self, dir: &Path, vars: &Value, mut pending: Vec<(usize, RawAttr)>) -> Value {
        let mut locals = hcl::Map::new();
        loop {
            let before = pending.len();
            let mut still = Vec::new();
            let mut errors = Vec::new();
            for (fi, a) in pending {
                let ctx = module_context(
                    &self.config_root,
                    dir,
                    vars.clone(),
                    Value::Object(locals.clone()),
                );
                match funcs::with_base_dir(dir, || funcs::evaluate(&a.expr, &ctx)) {
                    Ok(v) => {
                        locals.insert(a.key.clone(), v);
                    }
                    Err(e) => {
                        errors.push((fi, a.clone(), e));
                        still.push((fi, a));
                    }
                }
            }
            if still.is_empty() {
                break;
            }
            if still.len() == before {
                for (fi, a, e) in errors {
                    let file = &self.files[fi];
                    let (msg, help) = eval_message(&e, file.slice(&a.span), false);
                    let mut d = Diagnostic::new(format!("local `{}`: {msg}", a.key))
                        .at(Location::of(file, &a.span, true));
                    d.help = help;
                    self.diags.push(d);
                }
                break;
            }
            pending = still;
        }
        Value::Object(locals)
    }

    /// Reads the resource blocks, not yet evaluated; a name declared twice
    /// is reported.
    fn resources(
        &mut self,
        blocks: &[(usize, Block)],
        base: &Context<'_>,
        prefix: &str,
    ) -> Vec<Resource> {
        let mut resources = Vec::new();
        let mut seen: BTreeMap<String, Location> = BTreeMap::new();
        for (fi, block) in blocks {
            let file = self.files[*fi].clone();
            let name = qualify(prefix, block.labels[1].as_str());
            let address = resource::address_of_name(&name);
            let head = block.ident.span().unwrap_or(0..0);
            let here = Location::of(&file, &head, true);
            if let Some(first) = seen.get(&name) {
                self.diags
                    .push(Diagnostic::declared_twice(&address, first, here).address(&address));
                continue;
            }
            seen.insert(name.clone(), here);
            let template = self.resource(&file, *fi, block, name, address, prefix);
            match self.instances(&file, block, &template, base) {
                None => resources.push(template),
                Some(instances) if instances.is_empty() => {
                    let is_count = block.body.attributes().any(|a| a.key.as_str() == "count");
                    self.empty_blocks.insert(
                        template.block.clone(),
                        if is_count {
                            Value::Array(Vec::new())
                        } else {
                            Value::Object(hcl::Map::new())
                        },
                    );
                }
                Some(instances) => {
                    for instance in instances {
                        let mut r = template.clone();
                        r.name = format!("{}{}", r.block, instance.key.suffix());
                        r.address = resource::address_of_name(&r.name);
                        if crate::ownership::address_tag_value(&r.address)
                            .chars()
                            .count()
                            > 128
                        {
                            self.diags.push(
                                Diagnostic::new(format!(
                                    "the instance key of {} is too long: its address must fit the 128 characters of the rota:address tag",
                                    r.address
                                ))
                                .at(Location::of(&file, &head, true))
                                .address(&r.address)
                                .help("use shorter for_each keys"),
                            );
                            continue;
                        }
                        r.instance = Some(instance);
                        resources.push(r);
                    }
                }
            }
        }
        resources
    }

    /// The instances of a block with `count` or `for_each` (`None`
    /// without either; an empty list when it has none or is in error: the
    /// problem is reported). The expression may use variables, locals and
    /// literals, known before any call.
    fn instances(
        &mut self,
        file: &SourceFile,
        block: &Block,
        r: &Resource,
        base: &Context<'_>,
    ) -> Option<Vec<Instance>> {
        let meta: Vec<RawAttr> = block
            .body
            .attributes()
            .map(raw_attr)
            .filter(|a| a.key == "count" || a.key == "for_each")
            .collect();
        let uses = |root: &str| {
            r.attrs
                .iter()
                .chain(&r.timeouts)
                .find(|a| uses_variable(file.slice(&a.span), root))
                .map(|a| a.span.clone())
        };
        let has = |k: &str| meta.iter().any(|a| a.key == k);
        for (root, meta_arg) in [("each", "for_each"), ("count", "count")] {
            if !has(meta_arg)
                && let Some(span) = uses(root)
            {
                self.diags.push(
                    Diagnostic::new(format!(
                        "`{root}` is used in {} which has no `{meta_arg}`",
                        r.address
                    ))
                    .at(Location::of(file, &span, true))
                    .address(&r.address)
                    .help(format!(
                        "`{root}.…` exists only in a resource block with `{meta_arg} = …`"
                    )),
                );
            }
        }
        let raw = match meta.as_slice() {
            [] => return None,
            [one] => one,
            [_, second, ..] => {
                self.diags.push(
                    Diagnostic::new(format!("{} sets both `count` and `for_each`", r.address))
                        .at(Location::of(file, &second.key_span, true))
                        .address(&r.address)
                        .help("use one of them"),
                );
                return Some(Vec::new());
            }
        };
        let here = Location::of(file, &raw.span, true);
        let fail = |diags: &mut Vec<Diagnostic>, message: String, help: &str| {
            diags.push(
                Diagnostic::new(message)
                    .at(here.clone())
                    .address(&r.address)
                    .help(help.to_owned()),
            );
            Some(Vec::new())
        };
        let text = file.slice(&raw.span);
        if data::reads_data(text) || !referenced_modules(text).is_empty() {
            return fail(
                &mut self.diags,
                format!(
                    "{} may not read a data source or a module's output ({})",
                    raw.key, r.address
                ),
                "the instances are known before any call: use variables, locals and literals",
            );
        }
        if !referenced_names(text).is_empty() {
            return fail(
                &mut self.diags,
                format!("{} may not refer to resources ({})", raw.key, r.address),
                "the instances are known before any call: use variables, locals and literals",
            );
        }
        let value = match funcs::with_base_dir(&self.root_dir, || funcs::evaluate(&raw.expr, base))
        {
            Ok(v) => v,
            Err(e) => {
                return fail(
                    &mut self.diags,
                    format!("{}: {e}", raw.key),
                    "the instances are known before any call: use variables, locals and literals",
                );
            }
        };
        if raw.key == "count" {
            // A whole number, or a string holding one (converted, as
            // Terraform converts `-var` text).
            let n = match &value {
                Value::Number(n) => n
                    .as_u64()
                    .filter(|_| n.as_f64().is_some_and(|f| f.fract() == 0.0)),
                Value::String(t) => t.trim().parse::<u64>().ok(),
                _ => None,
            };
            let Some(n) = n.filter(|n| *n <= 10_000) else {
                return fail(
                    &mut self.diags,
                    format!(
                        "count must be a whole number from 0 to 10000 ({})",
                        r.address
                    ),
                    "count = 3, or count = length(var.names)",
                );
            };
            return Some(
                (0..n as usize)
                    .map(|i| Instance {
                        key: InstanceKey::Index(i),
                        value: Value::Null,
                    })
                    .collect(),
            );
        }
        let instances: Vec<Instance> = match value {
            // By key, as Terraform orders them.
            Value::Object(m) => m
                .into_iter()
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .map(|(k, v)| Instance {
                    key: InstanceKey::Key(k),
                    value: v,
                })
                .collect(),
            Value::Array(items) => {
                let mut keys = BTreeSet::new();
                for item in items {
                    match item {
                        Value::String(k) => {
                            keys.insert(k);
                        }
                        _ => {
                            return fail(
                                &mut self.diags,
                                format!(
                                    "for_each takes a map or a set of strings; this set holds a value that is not a string ({})",
                                    r.address
                                ),
                                "for_each = toset([\"a\", \"b\"]), or a map",
                            );
                        }
                    }
                }
                keys.into_iter()
                    .map(|k| Instance {
                        value: Value::String(k.clone()),
                        key: InstanceKey::Key(k),
                    })
                    .collect()
            }
            _ => {
                return fail(
                    &mut self.diags,
                    format!("for_each takes a map or a set of strings ({})", r.address),
                    "for_each = var.apps (a map), or toset([\"a\", \"b\"])",
                );
            }
        };
        if instances.len() > 10_000 {
            return fail(
                &mut self.diags,
                format!("for_each makes more than 10000 instances ({})", r.address),
                "split the configuration",
            );
        }
        Some(instances)
    }

    /// Reads one resource block of file `fi`: the attributes it sets, the
    /// resources it refers to, and its timeouts.
    fn resource(
        &mut self,
        file: &SourceFile,
        fi: usize,
        block: &Block,
        name: String,
        address: String,
        prefix: &str,
    ) -> Resource {
        let mut attrs = Vec::new();
        let mut depends_on = BTreeSet::new();
        for a in block.body.attributes() {
            let raw = raw_attr(a);
            depends_on.extend(dependencies(prefix, file.slice(&raw.span)));
            if self.is_argument(file, &address, &raw) {
                attrs.push(raw);
            }
        }
        let (timeouts, mut lifecycle) = self.resource_blocks(file, &address, block);
        for (n, _) in &mut lifecycle.replace_triggered_by {
            *n = qualify(prefix, n);
        }
        depends_on.extend(lifecycle.replace_triggered_by.iter().map(|(n, _)| {
            InstanceKey::split(n)
                .map_or(n.as_str(), |(b, _)| b)
                .to_owned()
        }));
        depends_on.remove(&name);
        let set = attrs.iter().map(|a| a.key.clone()).collect();
        Resource {
            block: name.clone(),
            module: prefix.to_owned(),
            instance: None,
            name,
            address,
            args: SecretArgs::default(),
            set,
            depends_on,
            file: fi,
            span: block.span().unwrap_or(0..0),
            attrs,
            timeouts,
            lifecycle,
            sensitive: BTreeSet::new(),
        }
    }

    /// Whether a resource attribute is an argument of the schema. Not one:
    /// `depends_on` (only its references count), the meta-arguments Rota
    /// does not support, computed and unknown attributes (all reported).
    fn is_argument(&mut self, file: &SourceFile, address: &str, raw: &RawAttr) -> bool {
        let key = raw.key.as_str();
        if matches!(key, "depends_on" | "count" | "for_each") {
            return false;
        }
        if key == "provider" {
            self.diags.push(
                Diagnostic::new(format!(
                    "the meta-argument `{key}` is not supported by Rota ({address})"
                ))
                .at(Location::of(file, &raw.key_span, true))
                .address(address)
                .help(
                    "one provider \"alicloud\" block serves the whole configuration \
                     (provider aliases are not supported)",
                ),
            );
            return false;
        }
        if resource::schema_arg(key).is_none() {
            let allowed: Vec<&str> = resource::SCHEMA
                .iter()
                .map(|a| a.name)
                .chain(resource::META_ARGS.iter().copied())
                .collect();
            let computed = resource::COMPUTED.contains(&key);
            self.diags.push(
                Diagnostic::new(if computed {
                    format!("`{key}` is computed by KMS and cannot be set")
                } else {
                    format!("unknown attribute `{key}` in {address}")
                })
                .at(Location::of(file, &raw.key_span, true))
                .address(address)
                .help(format!(
                    "{}allowed attributes: {}",
                    suggest(key, &allowed),
                    allowed.join(", ")
                )),
            );
            return false;
        }
        true
    }

    /// The `timeouts` attributes of a resource block; any other block, and
    /// an unknown timeout, is reported.
    fn resource_blocks(
        &mut self,
        file: &SourceFile,
        address: &str,
        block: &Block,
    ) -> (Vec<RawAttr>, Lifecycle) {
        let mut timeouts = Vec::new();
        let mut lifecycle = Lifecycle::default();
        for b in block.body.blocks() {
            let ident = b.ident.as_str();
            if ident == "timeouts" {
                for a in b.body.attributes() {
                    let raw = raw_attr(a);
                    if !["create", "update", "delete"].contains(&raw.key.as_str()) {
                        self.diags.push(
                            Diagnostic::new(format!(
                                "unknown attribute `{}` in the timeouts of {address}",
                                raw.key
                            ))
                            .at(Location::of(file, &raw.key_span, true))
                            .address(address)
                            .help("allowed: create, update, delete (durations such as \"5m\" or \"1h30m\")"),
                        );
                    } else {
                        timeouts.push(raw);
                    }
                }
            } else if ident == "lifecycle" {
                lifecycle = self.lifecycle(file, address, b);
            } else if ident == "dynamic" {
                self.diags.push(
                    Diagnostic::new(format!(
                        "the `{ident}` block is not supported by Rota ({address})"
                    ))
                    .at(Location::of(file, &b.ident.span().unwrap_or(0..0), true))
                    .address(address)
                    .help("a secret takes the blocks timeouts { create, update, delete } and lifecycle"),
                );
            } else {
                self.diags.push(
                    Diagnostic::new(format!("unknown block type `{ident}` in {address}"))
                        .at(Location::of(file, &b.ident.span().unwrap_or(0..0), true))
                        .address(address)
                        .help(format!(
                            "{}the only block a secret takes is timeouts {{ create, update, delete }}",
                            suggest(ident, resource::BLOCKS)
                        )),
                );
            }
        }
        (timeouts, lifecycle)
    }

    /// Reads a `lifecycle` block: `ignore_changes` (a list of argument
    /// names, or `all`), `prevent_destroy`, `create_before_destroy` (literal
    /// bools), `replace_triggered_by` (references to other secrets).
    fn lifecycle(&mut self, file: &SourceFile, address: &str, b: &Block) -> Lifecycle {
        const ARGS: &[&str] = &[
            "ignore_changes",
            "prevent_destroy",
            "create_before_destroy",
            "replace_triggered_by",
        ];
        let mut l = Lifecycle::default();
        for sub in b.body.blocks() {
            self.diags.push(
                Diagnostic::new(format!(
                    "unknown block `{}` in the lifecycle of {address}",
                    sub.ident.as_str()
                ))
                .at(Location::of(file, &sub.ident.span().unwrap_or(0..0), true))
                .address(address)
                .help(format!("lifecycle takes {}", ARGS.join(", "))),
            );
        }
        for a in b.body.attributes() {
            let raw = raw_attr(a);
            let at = Location::of(file, &raw.span, true);
            let text = file.slice(&raw.span).trim().to_owned();
            let list = || -> Option<Vec<String>> {
                let inner = text.strip_prefix('[')?.strip_suffix(']')?;
                Some(
                    inner
                        .split(',')
                        .map(|e| e.trim().trim_matches('"').to_owned())
                        .filter(|e| !e.is_empty())
                        .collect(),
                )
            };
            match raw.key.as_str() {
                "ignore_changes" => {
                    if text == "all" || text == "\"all\"" {
                        l.ignore_all = true;
                        continue;
                    }
                    let Some(items) = list() else {
                        self.diags.push(
                            Diagnostic::new(format!("lifecycle.ignore_changes of {address} must be a list of argument names, or all"))
                                .at(at)
                                .address(address)
                                .help("ignore_changes = [secret_data, version_id], or ignore_changes = all"),
                        );
                        continue;
                    };
                    for item in items {
                        // `tags["team"]` ignores the whole tags map.
                        let name: String = item
                            .chars()
                            .take_while(|c| c.is_alphanumeric() || *c == '_')
                            .collect();
                        if resource::schema_arg(&name).is_some() {
                            l.ignore_changes.insert(name);
                        } else {
                            let allowed: Vec<&str> =
                                resource::SCHEMA.iter().map(|a| a.name).collect();
                            self.diags.push(
                                Diagnostic::new(format!("lifecycle.ignore_changes of {address}: `{item}` is not an argument of alicloud_kms_secret"))
                                    .at(at.clone())
                                    .address(address)
                                    .help(format!("{}arguments: {}", suggest(&name, &allowed), allowed.join(", "))),
                            );
                        }
                    }
                }
                "prevent_destroy" | "create_before_destroy" => {
                    let value = match text.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            self.diags.push(
                                Diagnostic::new(format!("lifecycle.{} of {address} must be true or false (a literal: Terraform evaluates it before anything else)", raw.key))
                                    .at(at)
                                    .address(address),
                            );
                            continue;
                        }
                    };
                    if raw.key == "prevent_destroy" {
                        l.prevent_destroy = value;
                    } else {
                        l.create_before_destroy = value;
                    }
                }
                "replace_triggered_by" => {
                    let Some(items) = list() else {
                        self.diags.push(
                            Diagnostic::new(format!("lifecycle.replace_triggered_by of {address} must be a list of references"))
                                .at(at)
                                .address(address)
                                .help("replace_triggered_by = [alicloud_kms_secret.other, alicloud_kms_secret.other.version_id]"),
                        );
                        continue;
                    };
                    for item in items {
                        // alicloud_kms_secret.NAME, NAME["key"] or NAME[0], then .ATTRIBUTE.
                        let rest = item
                            .strip_prefix("alicloud_kms_secret.")
                            .unwrap_or_default();
                        let label_end = rest
                            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
                            .unwrap_or(rest.len());
                        let name_end = match rest[label_end..].strip_prefix('[') {
                            Some(after) => after.find(']').map(|i| label_end + 1 + i + 1),
                            None => Some(label_end),
                        };
                        let parsed = name_end.and_then(|end| {
                            let (name, tail) = rest.split_at(end);
                            let attr = match tail.strip_prefix('.') {
                                Some(a) if !a.is_empty() => Some(Some(a)),
                                Some(_) => None,
                                None if tail.is_empty() => Some(None),
                                None => None,
                            }?;
                            (label_end > 0
                                && (name.len() == label_end || InstanceKey::split(name).is_some()))
                            .then_some((name, attr))
                        });
                        match parsed {
                            Some((name, attr)) => {
                                l.replace_triggered_by.push((name.to_owned(), attr.map(str::to_owned)));
                            }
                            _ => self.diags.push(
                                Diagnostic::new(format!("lifecycle.replace_triggered_by of {address}: `{item}` is not a reference to an alicloud_kms_secret"))
                                    .at(at.clone())
                                    .address(address)
                                    .help("alicloud_kms_secret.NAME, or alicloud_kms_secret.NAME.ATTRIBUTE"),
                            ),
                        }
                    }
                }
                other => self.diags.push(
                    Diagnostic::new(format!(
                        "unknown attribute `{other}` in the lifecycle of {address}"
                    ))
                    .at(Location::of(file, &raw.key_span, true))
                    .address(address)
                    .help(format!(
                        "{}lifecycle takes {}",
                        suggest(other, ARGS),
                        ARGS.join(", ")
                    )),
                ),
            }
        }
        l
    }

    /// Reports references to resources that are not declared, at the
    /// attribute that makes them.
    fn unknown_references(&mut self, resources: &[Resource]) {
        let names: BTreeSet<String> = resources
            .iter()
            .map(|r| r.block.clone())
            .chain(self.empty_blocks.keys().cloned())
            .collect();
        for r in resources {
            for dep in &r.depends_on {
                let file = &self.files[r.file];
                if let Some(m) = dep.strip_suffix('.') {
                    // A module's outputs: `module.x.…`.
                    if !self.module_prefixes.contains(dep) {
                        let local = m.strip_prefix(&r.module).unwrap_or(m);
                        let span = r
                            .attrs
                            .iter()
                            .find(|a| file.slice(&a.span).contains(&format!("{local}.")))
                            .map(|a| a.span.clone())
                            .unwrap_or(r.span.clone());
                        self.diags.push(
                            Diagnostic::new(format!("reference to undeclared {local}"))
                                .at(Location::of(file, &span, true))
                                .address(&r.address)
                                .help("declare it with a module block: module \"NAME\" { source = \"./modules/NAME\" }"),
                        );
                    }
                    continue;
                }
                if !names.contains(dep) {
                    let local = local_name(&r.module, dep).unwrap_or(dep);
                    let span = r
                        .attrs
                        .iter()
                        .find(|a| {
                            file.slice(&a.span)
                                .contains(&format!("{RESOURCE_TYPE}.{local}"))
                        })
                        .map(|a| a.span.clone())
                        .unwrap_or(r.span.clone());
                    let declared: Vec<&str> = names
                        .iter()
                        .filter_map(|n| local_name(&r.module, n))
                        .collect();
                    self.diags.push(
                        Diagnostic::new(format!(
                            "reference to undeclared resource {RESOURCE_TYPE}.{local}"
                        ))
                        .at(Location::of(file, &span, true))
                        .address(&r.address)
                        .help(format!(
                            "{}declared: {}",
                            suggest(local, &declared),
                            declared.join(", ")
                        )),
                    );
                }
            }
        }
    }

    fn variable_values(
        &mut self,
        root: &Path,
        variables: &BTreeMap<String, Variable>,
        options: &LoadOptions,
    ) -> Value {
        let mut values: BTreeMap<String, Value> = BTreeMap::new();
        for (name, var) in variables {
            if let Some(d) = &var.default {
                values.insert(name.clone(), d.clone());
            }
        }
        let parse_cli = |var: &Variable, raw: &str| -> Result<Value, String> {
            if var.is_string {
                return Ok(Value::String(raw.to_owned()));
            }
            let expr: hcl::Expression = raw
                .parse()
                .map_err(|_| "the value is not a valid HCL expression".to_owned())?;
            funcs::evaluate(&expr, &Context::new())
                .map_err(|_| "the value cannot be evaluated".to_owned())
        };
        for (name, raw) in &options.env_vars {
            if let Some(var) = variables.get(name)
                && let Ok(v) = parse_cli(var, raw)
            {
                values.insert(name.clone(), v);
            }
        }
        // Var files, in Terraform's order: terraform.tfvars,
        // terraform.tfvars.json, *.auto.tfvars and *.auto.tfvars.json (by
        // name), then -var-file.
        let mut files: Vec<PathBuf> = Vec::new();
        for name in ["terraform.tfvars", "terraform.tfvars.json"] {
            let tfvars = root.join(name);
            if tfvars.is_file() {
                files.push(tfvars);
            }
        }
        if let Ok(entries) = std::fs::read_dir(root) {
            let mut auto: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let p = p.to_string_lossy();
                    p.ends_with(".auto.tfvars") || p.ends_with(".auto.tfvars.json")
                })
                .collect();
            auto.sort();
            files.extend(auto);
        }
        files.extend(options.var_files.iter().cloned());
        for path in files {
            let text = match crate::files::read_text(&path, crate::files::CONFIG_LIMIT) {
                Ok(t) => t,
                Err(e) => {
                    self.diags.push(
                        Diagnostic::new(format!("cannot read the variables file: {e}"))
                            .at(Location::file_only(&path)),
                    );
                    continue;
                }
            };
            if path.to_string_lossy().ends_with(".json") {
                match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(serde_json::Value::Object(m)) => {
                        for (k, v) in m {
                            if variables.contains_key(&k)
                                && let Ok(v) = serde_json::from_value::<Value>(v)
                            {
                                values.insert(k, v);
                            }
                        }
                    }
                    Ok(_) => self.diags.push(
                        Diagnostic::new(
                            "a JSON variables file must hold one object: {\"name\": value, …}",
                        )
                        .at(Location::file_only(&path)),
                    ),
                    Err(e) => self.diags.push(
                        Diagnostic::new(format!("the variables file is not valid JSON: {e}")).at(
                            Location {
                                file: path.clone(),
                                line: e.line(),
                                column: e.column(),
                                width: 1,
                                source_line: None,
                            },
                        ),
                    ),
                }
                continue;
            }
            let file = SourceFile::new(&path, text);
            match hcl::edit::parser::parse_body(file.text()) {
                Ok(body) => {
                    for a in body.attributes() {
                        let raw = raw_attr(&a.clone());
                        if !variables.contains_key(&raw.key) {
                            continue;
                        }
                        match funcs::evaluate(&raw.expr, &Context::new()) {
                            Ok(v) => {
                                values.insert(raw.key.clone(), v);
                            }
                            Err(e) => {
                                let (msg, help) = eval_message(&e, "", true);
                                let mut d = Diagnostic::new(format!(
                                    "the value of `{}` cannot be evaluated: {msg}",
                                    raw.key
                                ))
                                .at(Location::of(&file, &raw.span, false));
                                d.help = help;
                                self.diags.push(d);
                            }
                        }
                    }
                }
                Err(e) => self.diags.push(
                    Diagnostic::new(format!(
                        "the variables file is not valid HCL: {}",
                        e.message()
                    ))
                    .at(Location {
                        file: path.clone(),
                        line: e.location().line(),
                        column: e.location().column(),
                        width: 1,
                        source_line: None,
                    }),
                ),
            }
        }
        for (name, raw) in &options.vars {
            match variables.get(name) {
                None => self.diags.push(
                    Diagnostic::new(format!("-var {name}: no variable `{name}` is declared")).help(
                        format!(
                            "{}declare it: variable \"{name}\" {{}}",
                            suggest(
                                name,
                                &variables.keys().map(String::as_str).collect::<Vec<_>>()
                            )
                        ),
                    ),
                ),
                Some(var) => match parse_cli(var, raw) {
                    Ok(v) => {
                        values.insert(name.clone(), v);
                    }
                    Err(e) => self
                        .diags
                        .push(Diagnostic::new(format!("-var {name}: {e}"))),
                },
            }
        }
        for (name, var) in variables {
            if !values.contains_key(name) {
                let file = &self.files[var.file];
                self.diags.push(
                    Diagnostic::new(format!("variable `{name}` has no value"))
                        .at(Location::of(file, &var.span, true))
                        .help(format!(
                            "give it a default, or pass -var {name}=…, -var-file FILE or the environment variable TF_VAR_{name}"
                        )),
                );
            }
        }
        Value::Object(values.into_iter().collect())
    }

    fn provider(
        &mut self,
        root: &Path,
        blocks: &[(usize, Block)],
        vars: &Value,
        locals: &Value,
    ) -> ProviderConfig {
        let mut p = ProviderConfig::default();
        if blocks.len() > 1 {
            let (fi, b) = &blocks[1];
            self.diags.push(
                Diagnostic::new("the alicloud provider is configured twice")
                    .at(Location::of(
                        &self.files[*fi],
                        &b.ident.span().unwrap_or(0..0),
                        true,
                    ))
                    .help("Rota uses one provider block (aliases are not supported)"),
            );
            return p;
        }
        let Some((fi, block)) = blocks.first() else {
            return p;
        };
        p.present = true;
        let ctx = base_context(root, vars.clone(), locals.clone());
        let file = self.files[*fi].clone();
        let eval = |a: &hcl::edit::structure::Attribute, this: &mut Self| -> Option<String> {
            let raw = raw_attr(a);
            let sensitive = raw.key == "secret_key" || raw.key == "security_token";
            match funcs::with_base_dir(root, || funcs::evaluate(&raw.expr, &ctx)) {
                Ok(Value::String(s)) => Some(s),
                Ok(Value::Null) => None,
                Ok(Value::Number(n)) => Some(n.to_string()),
                Ok(_) => {
                    this.diags.push(
                        Diagnostic::new(format!(
                            "provider argument `{}` must be a string",
                            raw.key
                        ))
                        .at(Location::of(&file, &raw.span, !sensitive)),
                    );
                    None
                }
                Err(e) => {
                    let (msg, help) = eval_message(&e, file.slice(&raw.span), sensitive);
                    let mut d = Diagnostic::new(format!("provider argument `{}`: {msg}", raw.key))
                        .at(Location::of(&file, &raw.span, !sensitive));
                    d.help = help;
                    this.diags.push(d);
                    None
                }
            }
        };
        for a in block.body.attributes() {
            let key = a.key.as_str();
            match key {
                "region" => p.region = eval(a, self),
                "access_key" => p.access_key = eval(a, self),
                "secret_key" => p.secret_key = eval(a, self).map(SecretString::new),
                "security_token" => p.security_token = eval(a, self).map(SecretString::new),
                "profile" => p.profile = eval(a, self),
                "ecs_role_name" => p.ecs_role_name = eval(a, self),
                "protocol" => p.protocol = eval(a, self),
                "client_read_timeout" | "client_connect_timeout" => {
                    let value = eval(a, self);
                    let ms = match value.as_deref().map(str::parse::<u64>) {
                        None => None,
                        Some(Ok(ms)) if (1..=3_600_000).contains(&ms) => Some(ms),
                        Some(_) => {
                            self.diags.push(
                                Diagnostic::new(format!(
                                    "provider argument `{key}` must be a number of milliseconds from 1 to 3600000"
                                ))
                                .at(Location::of(&file, &a.key.span().unwrap_or(0..0), true)),
                            );
                            None
                        }
                    };
                    if key == "client_read_timeout" {
                        p.client_read_timeout_ms = ms;
                    } else {
                        p.client_connect_timeout_ms = ms;
                    }
                }
                other => self.diags.push(
                    Diagnostic::new(format!("unknown provider argument `{other}`"))
                        .at(Location::of(&file, &a.key.span().unwrap_or(0..0), true))
                        .help(format!(
                            "{}Rota understands: {}, and the block endpoints {{ kms = … }}",
                            suggest(other, PROVIDER_ARGS),
                            PROVIDER_ARGS.join(", ")
                        )),
                ),
            }
        }
        for b in block.body.blocks() {
            if b.ident.as_str() != "endpoints" {
                self.diags.push(
                    Diagnostic::new(format!(
                        "unknown block `{}` in the provider",
                        b.ident.as_str()
                    ))
                    .at(Location::of(&file, &b.ident.span().unwrap_or(0..0), true))
                    .help("the provider takes one block: endpoints { kms = \"host:port\" }"),
                );
                continue;
            }
            for a in b.body.attributes() {
                if a.key.as_str() == "kms" {
                    p.kms_endpoint = eval(a, self);
                }
                // Endpoints of other products are irrelevant to secrets.
            }
        }
        if p.access_key.is_some() != p.secret_key.is_some() {
            self.diags.push(
                Diagnostic::new("the provider sets only one of access_key and secret_key")
                    .at(Location::of(&file, &block.ident.span().unwrap_or(0..0), true))
                    .help("set both, or neither (then Rota looks in the environment and the aliyun CLI profile)"),
            );
        }
        if let Some(proto) = &p.protocol
            && !proto.eq_ignore_ascii_case("https")
            && !proto.eq_ignore_ascii_case("http")
        {
            self.diags.push(
                Diagnostic::new(format!("protocol {proto:?} is not supported"))
                    .at(Location::of(
                        &file,
                        &block.ident.span().unwrap_or(0..0),
                        true,
                    ))
                    .help("allowed values: HTTPS, HTTP"),
            );
        }
        p
    }
}

/// Orders resources so each comes after what it depends on; on a cycle,
/// returns its addresses.
/// Turns dependencies on a block into dependencies on each of its
/// instances (a reference names the block: `alicloud_kms_secret.app…`).
fn expand_dependencies(resources: &mut [Resource], empty_blocks: &BTreeMap<String, Value>) {
    let mut by_block: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in resources.iter() {
        by_block
            .entry(r.block.clone())
            .or_default()
            .push(r.name.clone());
    }
    for r in resources.iter_mut() {
        r.depends_on = r
            .depends_on
            .iter()
            .flat_map(|d| match by_block.get(d) {
                Some(names) => names.clone(),
                // A module's outputs: everything declared in it.
                None if d.ends_with('.') => by_block
                    .iter()
                    .filter(|(b, _)| b.starts_with(d.as_str()))
                    .flat_map(|(_, names)| names.clone())
                    .collect(),
                // No instance: nothing to wait for.
                None if empty_blocks.contains_key(d) => Vec::new(),
                None => vec![d.clone()],
            })
            .collect();
    }
}

fn order(mut resources: Vec<Resource>) -> Result<Vec<Resource>, Vec<String>> {
    let mut out: Vec<Resource> = Vec::with_capacity(resources.len());
    let mut done: BTreeSet<String> = BTreeSet::new();
    while !resources.is_empty() {
        let (ready, rest): (Vec<Resource>, Vec<Resource>) = resources
            .into_iter()
            .partition(|r| r.depends_on.iter().all(|d| done.contains(d)));
        if ready.is_empty() {
            return Err(rest.iter().map(|r| r.address.clone()).collect());
        }
        for r in ready {
            done.insert(r.name.clone());
            out.push(r);
        }
        resources = rest;
    }
    Ok(out)
}

/// Evaluates one resource block into typed arguments. Returns extra
/// diagnostics (type errors) beside the arguments; a hard failure is `Err`.
fn eval_resource(
    file: &SourceFile,
    r: &Resource,
    ctx: &Context<'_>,
    data_pending: bool,
) -> Result<(SecretArgs, Vec<Diagnostic>), Diagnostics> {
    let mut args = SecretArgs {
        secret_type: "Generic".into(),
        secret_data_type: "text".into(),
        version_stage: rota_kms::kms::stage::CURRENT.into(),
        recovery_window_in_days: 30,
        ..SecretArgs::default()
    };
    let mut report = AttrReport {
        file,
        address: &r.address,
        diags: Vec::new(),
    };
    for raw in &r.attrs {
        let Some(spec) = resource::schema_arg(&raw.key) else {
            continue;
        };
        // Read by the plan: checked then.
        if data_pending && data::reads_data(file.slice(&raw.span)) {
            args.unknown.insert(raw.key.clone());
            continue;
        }
        let value = match funcs::evaluate(&raw.expr, ctx) {
            Ok(v) => v,
            Err(e) => {
                let (msg, help) = eval_message(&e, file.slice(&raw.span), spec.sensitive);
                report.error(raw, format!("{}: {msg}", raw.key), help);
                continue;
            }
        };
        if matches!(value, Value::Null) {
            continue;
        }
        if contains_unknown(&value) {
            args.unknown.insert(raw.key.clone());
        }
        set_argument(&mut args, raw, spec.kind, &value, &mut report);
    }
    args.timeouts = eval_timeouts(r, ctx, &mut report);
    let mut diags = report.diags;
    missing_arguments(file, r, &mut diags);
    // Both spellings of custom data (`custom_data`,
    // `extended_config_custom_data`) fill `custom_data`; validation reports
    // if both are set.
    Ok((args, diags))
}

/// Collects the problems with one resource's attributes.
struct AttrReport<'a> {
    file: &'a SourceFile,
    address: &'a str,
    diags: Vec<Diagnostic>,
}

impl AttrReport<'_> {
    /// Reports `message` at the attribute's value (without the source line
    /// for `secret_data`).
    fn error(&mut self, raw: &RawAttr, message: String, help: Option<String>) {
        let sensitive = raw.key == "secret_data";
        let mut d = Diagnostic::new(message)
            .at(Location::of(self.file, &raw.span, !sensitive))
            .address(self.address);
        d.help = help;
        self.diags.push(d);
    }

    /// Reports a value that is not of the attribute's schema kind.
    fn wrong_kind(&mut self, raw: &RawAttr, kind: Kind) {
        let kind_name = match kind {
            Kind::String => "a string",
            Kind::Bool => "a bool",
            Kind::Int => "a whole number",
            Kind::Map => "a map of strings",
            Kind::List => "a list of strings",
            Kind::Object => "an object or a JSON object string",
        };
        self.error(
            raw,
            format!("{} must be {kind_name}", raw.key),
            Some(format!("{} is {kind_name} in the schema", raw.key)),
        );
    }
}

/// A value as a string, as Terraform converts it: strings, numbers and
/// bools.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Stores the evaluated value of one attribute in `args`, converted to its
/// schema `kind`; a value that does not convert is reported.
fn set_argument(
    args: &mut SecretArgs,
    raw: &RawAttr,
    kind: Kind,
    value: &Value,
    report: &mut AttrReport<'_>,
) {
    match kind {
        Kind::String => match scalar(value) {
            Some(s) => set_string(args, &raw.key, s),
            None => report.wrong_kind(raw, kind),
        },
        Kind::Bool => {
            let b = match value {
                Value::Bool(b) => *b,
                Value::String(s) if s == "true" => true,
                Value::String(s) if s == "false" => false,
                _ => return report.wrong_kind(raw, kind),
            };
            match raw.key.as_str() {
                "enable_automatic_rotation" => args.enable_automatic_rotation = Some(b),
                "force_delete_without_recovery" => args.force_delete_without_recovery = b,
                _ => {}
            }
        }
        Kind::Int => {
            let n = match value {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            match n.and_then(|n| u32::try_from(n).ok()) {
                Some(n) => args.recovery_window_in_days = n,
                None => report.wrong_kind(raw, kind),
            }
        }
        Kind::Map => {
            let Value::Object(o) = value else {
                return report.wrong_kind(raw, kind);
            };
            let mut m = BTreeMap::new();
            for (k, v) in o {
                match scalar(v) {
                    Some(s) => {
                        m.insert(k.clone(), s);
                    }
                    None => report.wrong_kind(raw, kind),
                }
            }
            args.tags = m;
        }
        Kind::List => {
            let Value::Array(a) = value else {
                return report.wrong_kind(raw, kind);
            };
            match a.iter().map(scalar).collect::<Option<Vec<String>>>() {
                Some(l) => args.version_stages = Some(l),
                None => report.wrong_kind(raw, kind),
            }
        }
        Kind::Object => set_object(args, raw, value, report),
    }
}

/// Stores a string argument in its field of `args`.
fn set_string(args: &mut SecretArgs, key: &str, s: String) {
    let opt = Some(s.clone());
    match key {
        "secret_name" => args.secret_name = s,
        "secret_data" => args.secret_data = SecretString::new(s),
        "version_id" => args.version_id = s,
        "secret_type" => args.secret_type = s,
        "secret_data_type" => args.secret_data_type = s,
        "description" => args.description = opt,
        "encryption_key_id" => args.encryption_key_id = opt,
        "dkms_instance_id" => args.dkms_instance_id = opt,
        "rotation_interval" => args.rotation_interval = opt,
        "policy" => args.policy = opt,
        "policy_name" => args.policy_name = opt,
        "version_stage" => args.version_stage = s,
        "move_to_version" => args.move_to_version = opt,
        "remove_from_version" => args.remove_from_version = opt,
        _ => {}
    }
}

/// Stores an object argument: `extended_config` as JSON text, custom data
/// as a JSON object (an object or a JSON object string; a string that is
/// not one is reported unless it is not known yet).
fn set_object(args: &mut SecretArgs, raw: &RawAttr, value: &Value, report: &mut AttrReport<'_>) {
    let (json, text) = match value {
        Value::Object(_) => {
            let j = funcs::to_json(value);
            let t = j.to_string();
            (Some(j), t)
        }
        Value::String(s) => (serde_json::from_str::<serde_json::Value>(s).ok(), s.clone()),
        _ => return report.wrong_kind(raw, Kind::Object),
    };
    if raw.key == "extended_config" {
        args.extended_config = Some(text);
        return;
    }
    match json {
        Some(serde_json::Value::Object(o)) => args.custom_data = Some(o),
        _ => {
            if !args.is_unknown(&raw.key) {
                report.error(
                    raw,
                    format!("{} is not a JSON object", raw.key),
                    Some("write a map { Key = \"value\" } or a JSON object string".into()),
                );
            }
        }
    }
}

/// The `timeouts` block of a resource; what is not a duration is reported.
fn eval_timeouts(r: &Resource, ctx: &Context<'_>, report: &mut AttrReport<'_>) -> Timeouts {
    let mut timeouts = Timeouts::default();
    for raw in &r.timeouts {
        let v = funcs::evaluate(&raw.expr, ctx).ok();
        let d = v
            .as_ref()
            .and_then(|v| v.as_str())
            .and_then(resource::parse_duration);
        let Some(d) = d else {
            report.error(
                raw,
                format!("timeouts.{} is not a duration", raw.key),
                Some("write a duration such as \"30s\", \"5m\" or \"1h30m\"".into()),
            );
            continue;
        };
        match raw.key.as_str() {
            "create" => timeouts.create = d,
            "update" => timeouts.update = d,
            _ => timeouts.delete = d,
        }
    }
    timeouts
}

/// Reports each required argument the resource block does not set.
fn missing_arguments(file: &SourceFile, r: &Resource, diags: &mut Vec<Diagnostic>) {
    for spec in resource::SCHEMA.iter().filter(|a| a.required) {
        if !r.set.contains(spec.name) {
            diags.push(
                Diagnostic::new(format!("the required argument `{}` is missing", spec.name))
                    .at(Location::of(file, &(r.span.start..r.span.start + 8), true))
                    .address(&r.address)
                    .help(format!(
                        "{} requires: {}",
                        RESOURCE_TYPE,
                        resource::SCHEMA
                            .iter()
                            .filter(|a| a.required)
                            .map(|a| a.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_found() {
        let names = referenced_names(
            "\"${alicloud_kms_secret.a.secret_name}-x\" + alicloud_kms_secret.b_2.id + \"alicloud_kms_secret.c\"",
        );
        assert!(names.contains("a") && names.contains("b_2"));
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("resouce", TOP_BLOCKS), "did you mean `resource`? ");
        assert_eq!(suggest("zzzzzzzz", TOP_BLOCKS), "");
    }
}

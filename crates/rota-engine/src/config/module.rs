//! Local modules: `module "x" { source = "./modules/secret" … }`.
//!
//! A module is a directory of `.tf` files with `variable`, `locals`,
//! `resource`, `output` and nested `module` blocks. Its resources are read
//! with the rest of the configuration at the addresses Terraform gives them
//! (`module.x.alicloud_kms_secret.y`); its variables come from the module
//! block's arguments and their defaults; the caller reads its outputs as
//! `module.x.NAME`. Only local sources are read: registry and git sources
//! are refused with what to do instead.

use std::collections::BTreeMap;
use std::mem;
use std::path::{Path, PathBuf};

use hcl::Value;
use hcl::edit::Span as _;
use hcl::edit::structure::Block;
use hcl::eval::Context;

use super::diag::{Diagnostic, Location};
use super::{
    Loader, OutputBlock, OutputScope, RawAttr, Resource, TopLevel, WORLD_FILE, eval_message, funcs,
    module_context, raw_attr, referenced_modules, referenced_names, suggest,
};
use crate::resource;

/// A module call, read.
#[derive(Debug, Clone)]
pub(crate) struct ModuleScope {
    /// The call's label.
    pub(crate) name: String,
    /// The prefix of the module that calls it (`""` for the root).
    pub(crate) parent: String,
    /// The module's directory (`path.module`).
    pub(crate) dir: PathBuf,
    /// Its variables' values.
    pub(crate) vars: Value,
    /// Its locals.
    pub(crate) locals: Value,
    /// Its `output` blocks.
    pub(crate) outputs: Vec<OutputBlock>,
}

/// Blocks a module may hold; the others (rotation, store, provider, …)
/// configure Rota itself and belong in the root.
const MODULE_BLOCKS: &[&str] = &[
    "data",
    "variable",
    "locals",
    "resource",
    "output",
    "module",
    "terraform",
];

/// How deep modules may nest (a cycle is reported before this is reached).
const MAX_DEPTH: usize = 32;

impl Loader {
    /// Reads the module calls `calls` of the module at `prefix` (in `dir`,
    /// whose expressions see `parent`): each called module's resources go
    /// to `resources`, its scope to `self.modules`. `chain` holds the
    /// directories being read, to report a cycle.
    pub(super) fn modules(
        &mut self,
        dir: &Path,
        prefix: &str,
        calls: &[(usize, Block)],
        parent: &Context<'_>,
        resources: &mut Vec<Resource>,
        chain: &mut Vec<PathBuf>,
    ) {
        let mut seen: BTreeMap<String, Location> = BTreeMap::new();
        for (fi, block) in calls {
            let file = self.files[*fi].clone();
            let head = block.ident.span().unwrap_or(0..0);
            let here = Location::of(&file, &head, true);
            let name = match block.labels.as_slice() {
                [l] if resource::is_label(l.as_str()) => l.as_str().to_owned(),
                _ => {
                    self.diags.push(
                        Diagnostic::new("a module block takes one label, its name")
                            .at(here)
                            .help("module \"db\" { source = \"./modules/secret\" }"),
                    );
                    continue;
                }
            };
            let address = format!("{prefix}module.{name}");
            if let Some(first) = seen.get(&name) {
                self.diags
                    .push(Diagnostic::declared_twice(&address, first, here).address(&address));
                continue;
            }
            seen.insert(name.clone(), here.clone());
            let Some(call) = self.module_call(&file, block, prefix, &address, &here) else {
                continue;
            };
            let source_dir = dir.join(&call.source);
            let canon = match source_dir.canonicalize() {
                Ok(c) if c.is_dir() => c,
                _ => {
                    self.diags.push(
                        Diagnostic::new(format!(
                            "{address}: module source {:?} is not a directory ({})",
                            call.source,
                            source_dir.display()
                        ))
                        .at(Location::of(&file, &call.source_span, true))
                        .address(&address)
                        .help("source is a path relative to the file's directory, starting with ./ or ../"),
                    );
                    continue;
                }
            };
            if chain.contains(&canon) || chain.len() > MAX_DEPTH {
                let names: Vec<String> = chain
                    .iter()
                    .chain(std::iter::once(&canon))
                    .map(|p| p.display().to_string())
                    .collect();
                self.diags.push(
                    Diagnostic::new(format!(
                        "{address} calls {:?}, which is already being read: the modules call each other in a cycle",
                        call.source
                    ))
                    .at(Location::of(&file, &call.source_span, true))
                    .address(&address)
                    .help(format!("the calls: {}", names.join(" -> "))),
                );
                continue;
            }
            let Some(mut top) = self.read_module(&canon, &address, &here) else {
                continue;
            };
            let vars =
                self.module_variables(&file, &address, &here, &call.inputs, &top, parent, dir);
            let mprefix = format!("{address}.");
            // Sensitive inside: variables declared so or given a sensitive
            // value, and the locals that use them.
            let outer = self.sensitive.get(prefix).cloned().unwrap_or_default();
            let names = self.scope_sensitivity(&top, |n, v| {
                v.sensitive
                    || call.inputs.iter().any(|a| {
                        a.key == n && super::sensitive::is_sensitive(file.slice(&a.span), &outer)
                    })
            });
            self.sensitive.insert(mprefix.clone(), names);
            let locals = self.locals(&canon, &vars, mem::take(&mut top.locals));
            self.module_prefixes.insert(mprefix.clone());
            let base = module_context(&self.config_root, &canon, vars.clone(), locals.clone());
            let data = self.data_sources(&top.data, &base, &mprefix, &canon);
            self.data.extend(data);
            let saved = mem::replace(&mut self.root_dir, canon.clone());
            let mut inner = self.resources(&top.resources, &base, &mprefix);
            chain.push(canon.clone());
            let calls = mem::take(&mut top.modules);
            self.modules(&canon, &mprefix, &calls, &base, &mut inner, chain);
            chain.pop();
            self.root_dir = saved;
            // `depends_on` of the call: everything in the module waits.
            for r in &mut inner {
                r.depends_on.extend(call.depends_on.iter().cloned());
            }
            let none = super::sensitive::Names::new();
            let outputs = OutputScope {
                prefix: &mprefix,
                resources: &inner,
                empty_blocks: &self.empty_blocks,
                modules: &self.modules,
                sensitive: self.sensitive.get(&mprefix).unwrap_or(&none),
            }
            .load(&self.files, &top.outputs, &mut self.diags);
            // The caller sees the sensitive outputs as sensitive.
            let caller = self.sensitive.entry(prefix.to_owned()).or_default();
            caller.extend(
                outputs
                    .iter()
                    .filter(|o| o.sensitive)
                    .map(|o| format!("module.{name}.{}", o.name)),
            );
            self.modules.insert(
                mprefix,
                ModuleScope {
                    name,
                    parent: prefix.to_owned(),
                    dir: canon,
                    vars,
                    locals,
                    outputs,
                },
            );
            resources.extend(inner);
        }
    }

    /// Reads a module block's own arguments: `source` (a local path),
    /// `depends_on`, and the inputs. What Rota does not support is
    /// reported; `None` when the call cannot be read.
    fn module_call(
        &mut self,
        file: &super::SourceFile,
        block: &Block,
        prefix: &str,
        address: &str,
        here: &Location,
    ) -> Option<ModuleCall> {
        let mut source = None;
        let mut inputs = Vec::new();
        let mut depends_on = Vec::new();
        let mut ok = true;
        for a in block.body.attributes() {
            let raw = raw_attr(a);
            let at = Location::of(file, &raw.span, true);
            match raw.key.as_str() {
                "source" => match &raw.expr {
                    hcl::Expression::String(s) => source = Some((s.clone(), raw.span.clone())),
                    _ => {
                        ok = false;
                        self.diags.push(
                            Diagnostic::new(format!("{address}: source must be a literal string"))
                                .at(at)
                                .address(address)
                                .help("source = \"./modules/secret\""),
                        );
                    }
                },
                "version" => {
                    ok = false;
                    self.diags.push(
                        Diagnostic::new(format!(
                            "{address}: version selects a registry module, which Rota does not fetch: not supported: vendor the module locally"
                        ))
                        .at(at)
                        .address(address)
                        .help("copy the module into the configuration and set source = \"./modules/NAME\" without version"),
                    );
                }
                "count" | "for_each" => {
                    ok = false;
                    self.diags.push(
                        Diagnostic::new(format!(
                            "{address}: `{}` on a module block is not supported",
                            raw.key
                        ))
                        .at(Location::of(file, &raw.key_span, true))
                        .address(address)
                        .help("declare one module block per instance, or put for_each on the resources inside the module"),
                    );
                }
                // Rota has one provider: the module uses it.
                "providers" => {}
                "depends_on" => {
                    depends_on.extend(super::dependencies(prefix, file.slice(&raw.span)));
                }
                _ => inputs.push(raw),
            }
        }
        if let Some(b) = block.body.blocks().next() {
            ok = false;
            self.diags.push(
                Diagnostic::new(format!(
                    "{address}: `{}` blocks are not allowed in a module block",
                    b.ident.as_str()
                ))
                .at(Location::of(file, &b.ident.span().unwrap_or(0..0), true))
                .address(address)
                .help("a module block takes source and the module's variables as arguments"),
            );
        }
        let Some((source, source_span)) = source else {
            self.diags.push(
                Diagnostic::new(format!("{address} needs source"))
                    .at(here.clone())
                    .address(address)
                    .help("source = \"./modules/NAME\": a directory of .tf files"),
            );
            return None;
        };
        if !(source.starts_with("./") || source.starts_with("../")) {
            self.diags.push(
                Diagnostic::new(format!(
                    "{address}: source {source:?} is not supported: vendor the module locally"
                ))
                .at(Location::of(file, &source_span, true))
                .address(address)
                .help("Rota reads local modules only (a path starting with ./ or ../), never the registry, git or an archive: copy the module into the configuration and point source at it"),
            );
            return None;
        }
        ok.then_some(ModuleCall {
            source,
            source_span,
            inputs,
            depends_on,
        })
    }

    /// Reads and sorts the files of the module in `dir`. Blocks a module
    /// may not hold are reported.
    fn read_module(&mut self, dir: &Path, address: &str, here: &Location) -> Option<TopLevel> {
        let mut names: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let n = p.file_name().unwrap_or_default().to_string_lossy();
                    (n.ends_with(".tf") || n.ends_with(".hcl")) && n != WORLD_FILE && p.is_file()
                })
                .collect(),
            Err(e) => {
                self.diags.push(
                    Diagnostic::new(format!(
                        "{address}: cannot read the module directory {}: {e}",
                        dir.display()
                    ))
                    .at(here.clone())
                    .address(address),
                );
                return None;
            }
        };
        names.sort();
        if names.is_empty() {
            self.diags.push(
                Diagnostic::new(format!(
                    "{address}: the module directory {} holds no .tf files",
                    dir.display()
                ))
                .at(here.clone())
                .address(address),
            );
            return None;
        }
        let first = self.files.len();
        for path in names {
            if let Err(d) = self.read(&path) {
                self.diags.extend(d.0);
                return None;
            }
        }
        let bodies = self.parse_range(first..self.files.len());
        let mut top = TopLevel::default();
        for (fi, body) in &bodies {
            let file = self.files[*fi].clone();
            for attr in body.attributes() {
                self.diags.push(
                    Diagnostic::new(format!(
                        "unexpected top-level attribute `{}`",
                        attr.key.as_str()
                    ))
                    .at(Location::of(&file, &attr.key.span().unwrap_or(0..0), true))
                    .help(format!(
                        "a module holds blocks: {}",
                        MODULE_BLOCKS.join(", ")
                    )),
                );
            }
            for block in body.blocks() {
                let ident = block.ident.as_str();
                // Rota's own blocks are refused here; unknown ones are
                // reported by top_block.
                if !MODULE_BLOCKS.contains(&ident) && super::TOP_BLOCKS.contains(&ident) {
                    self.diags.push(
                        Diagnostic::new(format!(
                            "`{ident}` blocks belong in the root configuration, not in a module ({address})"
                        ))
                        .at(Location::of(&file, &block.ident.span().unwrap_or(0..0), true))
                        .address(address)
                        .help(format!("a module holds {}", MODULE_BLOCKS.join(", "))),
                    );
                    continue;
                }
                self.top_block(*fi, block, &mut top);
            }
        }
        Some(top)
    }

    /// The values of a module's variables: the call's inputs, evaluated
    /// in the caller's scope `parent` (known before any call), then the
    /// defaults. An input the module does not declare, an input that refers
    /// to a resource, and a variable without a default that is not given
    /// are reported.
    #[allow(clippy::too_many_arguments)]
    fn module_variables(
        &mut self,
        file: &super::SourceFile,
        address: &str,
        here: &Location,
        inputs: &[RawAttr],
        top: &TopLevel,
        parent: &Context<'_>,
        dir: &Path,
    ) -> Value {
        let mut vars = hcl::Map::new();
        let declared: Vec<&str> = top.variables.keys().map(String::as_str).collect();
        for a in inputs {
            let at = Location::of(file, &a.span, true);
            if !top.variables.contains_key(&a.key) {
                self.diags.push(
                    Diagnostic::new(format!("{address} has no variable `{}`", a.key))
                        .at(Location::of(file, &a.key_span, true))
                        .address(address)
                        .help(format!(
                            "{}the module's variables: {}",
                            suggest(&a.key, &declared),
                            if declared.is_empty() {
                                "none".to_owned()
                            } else {
                                declared.join(", ")
                            }
                        )),
                );
                continue;
            }
            let text = file.slice(&a.span);
            if !referenced_names(text).is_empty() || !referenced_modules(text).is_empty() {
                self.diags.push(
                    Diagnostic::new(format!(
                        "{address}: argument `{}` refers to a resource or a module's output",
                        a.key
                    ))
                    .at(at)
                    .address(address)
                    .help("module arguments are known before any call: use variables, locals, functions and literals, and read the module's outputs from the caller"),
                );
                continue;
            }
            match funcs::with_base_dir(dir, || funcs::evaluate(&a.expr, parent)) {
                Ok(v) => {
                    vars.insert(a.key.clone(), v);
                }
                Err(e) => {
                    let (msg, help) = eval_message(&e, text, false);
                    let mut d = Diagnostic::new(format!("{address}: argument `{}`: {msg}", a.key))
                        .at(at)
                        .address(address);
                    d.help = help;
                    self.diags.push(d);
                }
            }
        }
        for (name, v) in &top.variables {
            if vars.contains_key(name) || inputs.iter().any(|a| &a.key == name) {
                continue;
            }
            match &v.default {
                Some(d) => {
                    vars.insert(name.clone(), d.clone());
                }
                None => {
                    let declared_at = Location::of(&self.files[v.file], &v.span, true);
                    self.diags.push(
                        Diagnostic::new(format!(
                            "{address} needs `{name}`: the module's variable has no default (declared at {})",
                            declared_at.place()
                        ))
                        .at(here.clone())
                        .address(address)
                        .help(format!("set {name} = … in the module block")),
                    );
                }
            }
        }
        Value::Object(vars)
    }
}

/// A module block's own arguments.
struct ModuleCall {
    /// `source`: a local path.
    source: String,
    source_span: std::ops::Range<usize>,
    /// The module's variables, as given.
    inputs: Vec<RawAttr>,
    /// What `depends_on` names, spelled from the root.
    depends_on: Vec<String>,
}

//! The `plugins` block: more folders to discover rotation plugins in.
//!
//! ```hcl
//! plugins {
//!   paths = ["../../plugins", "/opt/rota/plugins"] # relative to the configuration directory
//! }
//! ```
//!
//! Rota always looks in `plugins/` beside the configuration and in
//! `plugins/` of the current directory, then in these paths, then in every
//! `--plugin-dir`. Each path must be an existing folder: a plugin folder
//! (Rhai, with `plugin.toml`), or a folder of plugin folders and native
//! libraries. Several `plugins` blocks add up.

use std::ops::Range;
use std::path::PathBuf;

use hcl::Value;
use hcl::edit::Span as _;
use hcl::eval::{Context, Evaluate as _};

use super::diag::{Diagnostic, Location, SourceFile};
use super::{eval_message, funcs, suggest};

/// Arguments of a `plugins` block.
pub const PLUGINS_ARGS: &[&str] = &["paths"];

pub(crate) fn load(
    files: &[SourceFile],
    blocks: &[(usize, hcl::edit::structure::Block)],
    ctx: &Context<'_>,
    root: &std::path::Path,
    diags: &mut Vec<Diagnostic>,
) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for (fi, block) in blocks {
        let file = &files[*fi];
        let head = block.ident.span().unwrap_or(0..0);
        let at = |span: &Range<usize>| Location::of(file, span, true);
        if !block.labels.is_empty() {
            diags.push(
                Diagnostic::new("a plugins block takes no label")
                    .at(at(&head))
                    .help("plugins { paths = [\"../shared-plugins\"] }"),
            );
            continue;
        }
        for sub in block.body.blocks() {
            diags.push(
                Diagnostic::new(format!(
                    "unknown block `{}` in the plugins block",
                    sub.ident.as_str()
                ))
                .at(at(&sub.ident.span().unwrap_or(0..0)))
                .help("a plugins block has one attribute: paths"),
            );
        }
        for a in block.body.attributes() {
            let key = a.key.as_str();
            if !PLUGINS_ARGS.contains(&key) {
                diags.push(
                    Diagnostic::new(format!("unknown attribute `{key}` in the plugins block"))
                        .at(at(&a.key.span().unwrap_or(0..0)))
                        .help(format!(
                            "{}allowed: {}",
                            suggest(key, PLUGINS_ARGS),
                            PLUGINS_ARGS.join(", ")
                        )),
                );
                continue;
            }
            let expr: hcl::Expression = a.value.clone().into();
            let span = super::expr_span(&a.value);
            let v = match funcs::with_base_dir(root, || expr.evaluate(ctx)) {
                Ok(v) => v,
                Err(e) => {
                    let (msg, help) = eval_message(&e, file.slice(&span), false);
                    let mut d = Diagnostic::new(format!("paths: {msg}")).at(at(&span));
                    d.help = help;
                    diags.push(d);
                    continue;
                }
            };
            let Value::Array(items) = v else {
                diags.push(
                    Diagnostic::new("paths must be a list of folders")
                        .at(at(&span))
                        .help("paths = [\"../shared-plugins\", \"/opt/rota/plugins\"]"),
                );
                continue;
            };
            for item in items {
                let Value::String(s) = item else {
                    diags.push(
                        Diagnostic::new("paths must be a list of strings")
                            .at(at(&span))
                            .help("paths = [\"../shared-plugins\"]"),
                    );
                    continue;
                };
                let path = root.join(&s);
                if !path.is_dir() {
                    diags.push(
                        Diagnostic::new(format!("plugin path {s:?} is not a folder"))
                            .at(at(&span))
                            .help(format!(
                                "paths are relative to the configuration directory ({}); \
                                 each names a plugin folder or a folder of plugins",
                                root.display()
                            )),
                    );
                } else if !out.contains(&path) {
                    out.push(path);
                }
            }
        }
    }
    out
}

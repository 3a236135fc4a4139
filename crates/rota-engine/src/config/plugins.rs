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

use std::path::PathBuf;

use hcl::Value;
use hcl::eval::Context;

use super::block::{BlockDecoder, TypeWording};
use super::diag::{Diagnostic, SourceFile};

/// Arguments of a `plugins` block.
pub const PLUGINS_ARGS: &[&str] = &["paths"];

/// Reads the `plugins` blocks: the folders they name, each once, in order.
/// Problems go to `diags`.
pub(crate) fn load(
    files: &[SourceFile],
    blocks: &[(usize, hcl::edit::structure::Block)],
    ctx: &Context<'_>,
    root: &std::path::Path,
    diags: &mut Vec<Diagnostic>,
) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for (fi, block) in blocks {
        let mut d = BlockDecoder::new(
            &files[*fi],
            block,
            "plugins",
            ctx,
            root,
            TypeWording::MustBe,
            diags,
        );
        if !d.no_label("plugins", "plugins { paths = [\"../shared-plugins\"] }") {
            continue;
        }
        d.no_blocks("a plugins block has one attribute: paths");
        for a in block.body.attributes() {
            let Some(attr) = d.known_attribute(a, PLUGINS_ARGS, "") else {
                continue;
            };
            let Value::Array(items) = &attr.value else {
                d.must_be(
                    &attr,
                    "a list of folders",
                    "paths = [\"../shared-plugins\", \"/opt/rota/plugins\"]",
                );
                continue;
            };
            for s in d.each_string(&attr, items, "paths = [\"../shared-plugins\"]") {
                let path = root.join(&s);
                if !path.is_dir() {
                    d.error(
                        &attr.span,
                        format!("plugin path {s:?} is not a folder"),
                        &format!(
                            "paths are relative to the configuration directory ({}); \
                             each names a plugin folder or a folder of plugins",
                            root.display()
                        ),
                    );
                } else if !out.contains(&path) {
                    out.push(path);
                }
            }
        }
    }
    out
}

//! The `store` block (Rota's): where the scheduler's state, the rotation
//! history and the per-secret locks live when several hosts share them.
//!
//! ```hcl
//! store {
//!   url          = "postgres://rota@db.internal:5432/rota"   # no password here
//!   password_env = "ROTA_STORE_PASSWORD"                     # or PGPASSWORD / a PGPASSFILE
//!   schema       = "rota"                                    # default "rota"
//!   lease_ttl    = "30s"                                     # default 30s
//! }
//! ```
//!
//! Without a block (and without `--store` or `ROTA_STORE_URL`), the state is
//! the SQLite file in the data directory: one host. A password written in
//! the URL is refused: configuration files get committed.

use std::time::Duration;

use hcl::eval::Context;

use super::block::{BlockDecoder, TypeWording};
use super::diag::{Diagnostic, Location, SourceFile};

/// Arguments of a `store` block.
pub const STORE_ARGS: &[&str] = &["url", "password_env", "schema", "lease_ttl"];

/// A `store` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `postgres://user@host:port/database`.
    pub url: String,
    /// The environment variable holding the password.
    pub password_env: Option<String>,
    /// The schema the tables live in.
    pub schema: Option<String>,
    /// How long a lease or lock lasts unless renewed.
    pub lease_ttl: Option<Duration>,
    /// Where the block is.
    pub location: Option<Location>,
}

/// Reads the `store` block (at most one). Problems go to `diags`.
pub(crate) fn load(
    files: &[SourceFile],
    blocks: &[(usize, hcl::edit::structure::Block)],
    ctx: &Context<'_>,
    root: &std::path::Path,
    diags: &mut Vec<Diagnostic>,
) -> Option<StoreConfig> {
    let mut out: Option<StoreConfig> = None;
    for (fi, block) in blocks {
        let mut d = BlockDecoder::new(
            &files[*fi],
            block,
            "store",
            ctx,
            root,
            TypeWording::MustBe,
            diags,
        );
        let example = "store { url = \"postgres://rota@db:5432/rota\" }";
        if !d.no_label("store", example) {
            continue;
        }
        if let Some(first) = &out {
            let at = first
                .location
                .as_ref()
                .map(Location::place)
                .unwrap_or_default();
            d.error_at_head(
                format!("a second store block (the first is at {at})"),
                "one store holds the state of every daemon: keep one block",
            );
            continue;
        }
        d.no_blocks("a store block has attributes only: url, password_env, schema, lease_ttl");
        let mut store = StoreConfig {
            url: String::new(),
            password_env: None,
            schema: None,
            lease_ttl: None,
            location: Some(d.head_location()),
        };
        for a in block.body.attributes() {
            let Some(attr) = d.known_attribute(a, STORE_ARGS, "") else {
                continue;
            };
            match attr.key.as_str() {
                "url" => {
                    let Some(url) = d.string(&attr, example) else {
                        continue;
                    };
                    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                        d.error(
                            &attr.span,
                            "store url must be a postgres:// URL".into(),
                            "the shared store is PostgreSQL; without a store block the state is the SQLite file in the data directory",
                        );
                    } else if url_has_password(&url) {
                        d.error_hiding_source(
                            &attr.span,
                            "store url holds a password".into(),
                            "keep it out of the file: password_env = \"ROTA_STORE_PASSWORD\", PGPASSWORD or a PGPASSFILE",
                        );
                    } else {
                        store.url = url;
                    }
                }
                "password_env" => {
                    store.password_env = d.string(&attr, "password_env = \"ROTA_STORE_PASSWORD\"")
                }
                "schema" => {
                    let Some(schema) = d.string(&attr, "schema = \"rota\"") else {
                        continue;
                    };
                    if schema.is_empty()
                        || schema.len() > 63
                        || !schema
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                    {
                        d.error(
                            &attr.span,
                            format!("schema {schema:?} is not a plain PostgreSQL name"),
                            "lower-case letters, digits and _ (at most 63)",
                        );
                    } else {
                        store.schema = Some(schema);
                    }
                }
                "lease_ttl" => store.lease_ttl = d.duration(&attr),
                _ => {}
            }
        }
        if store.url.is_empty() && !d.found_problems() {
            d.error_at_head("a store block needs url".into(), example);
        }
        if !d.found_problems() {
            out = Some(store);
        }
    }
    out
}

/// Whether a URL's authority carries `user:password@`.
fn url_has_password(url: &str) -> bool {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|authority| authority.rsplit_once('@'))
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_in_urls_are_found() {
        assert!(super::url_has_password("postgres://rota:pw@db/rota"));
        assert!(!super::url_has_password("postgres://rota@db:5432/rota"));
        assert!(!super::url_has_password("postgres://db/rota?options=a:b"));
    }
}

//! Which secrets a configuration owns.
//!
//! Rota keeps no state file: the live KMS is the state. To know which secrets
//! it may destroy when their block disappears from the configuration, Rota
//! tags every secret it **creates** with three tags:
//!
//! | tag | value |
//! |---|---|
//! | `rota:managed` | `true` |
//! | `rota:config` | the configuration id: the first 16 hex digits of the SHA-256 of the configuration directory's canonical path (or an id the caller chooses) |
//! | `rota:address` | the resource address, e.g. `alicloud_kms_secret.db`; an instance's in the tag charset: `alicloud_kms_secret.app/k=web` for `app["web"]`, `alicloud_kms_secret.app/i=0` for `app[0]` (bytes of a key other than letters, digits, `_ - .` as `@XX`) |
//!
//! A secret that is not in the configuration is planned for destruction only
//! when it carries `rota:managed=true` **and** this configuration's
//! `rota:config`. Imported secrets and secrets made by hand or by another
//! configuration are never destroyed that way. Moving the configuration
//! directory changes its id: secrets created from the old place are then no
//! longer destroyed when removed (the safe failure), and stay managed while
//! their blocks remain.
//!
//! Rota's tags (prefix `rota:`) and the cloud's reserved ones (`aliyun…`,
//! `acs:…`, `http://…`, `https://…`) never appear in tag diffs.

use std::collections::BTreeMap;
use std::path::Path;

use rota_kms::kms::Tag;
use sha2::{Digest as _, Sha256};

/// `rota:managed`.
pub const MANAGED_TAG: &str = "rota:managed";
/// `rota:config`.
pub const CONFIG_TAG: &str = "rota:config";
/// `rota:address`.
pub const ADDRESS_TAG: &str = "rota:address";
/// How many tags Rota puts on a secret it creates.
pub const TAG_COUNT: usize = 3;

/// The identity of one configuration, as its ownership tags spell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership {
    config_id: String,
}

impl Ownership {
    /// An explicit configuration id (tag charset: letters, digits, `-_.:/=+@`).
    pub fn new(config_id: impl Into<String>) -> Self {
        Self {
            config_id: config_id.into(),
        }
    }

    /// The id of the configuration in `dir` (pass a canonical path).
    pub fn for_directory(dir: &Path) -> Self {
        let digest = Sha256::digest(dir.to_string_lossy().as_bytes());
        Self::new(crate::hex(&digest[..8]))
    }

    /// The configuration id.
    pub fn config_id(&self) -> &str {
        &self.config_id
    }

    /// The tags a secret created at `address` receives.
    pub fn tags(&self, address: &str) -> Vec<Tag> {
        vec![
            Tag::new(MANAGED_TAG, "true"),
            Tag::new(CONFIG_TAG, self.config_id.as_str()),
            Tag::new(ADDRESS_TAG, address_tag_value(address)),
        ]
    }

    /// Whether a secret with these tags was created by this configuration.
    pub fn owns(&self, tags: &BTreeMap<String, String>) -> bool {
        tags.get(MANAGED_TAG).is_some_and(|v| v == "true")
            && tags.get(CONFIG_TAG).is_some_and(|v| *v == self.config_id)
    }
}

/// The `rota:address` tag value of an address: the address itself, or for
/// an instance (`…app["web"]`, `…app[0]`) a spelling in the tag charset
/// (letters, digits, `/ \\ _ - . + = : @`).
pub fn address_tag_value(address: &str) -> String {
    let Some((block, rest)) = address.split_once('[') else {
        return address.to_owned();
    };
    match crate::config::InstanceKey::split(&format!("x[{rest}")) {
        Some((_, crate::config::InstanceKey::Index(i))) => format!("{block}/i={i}"),
        Some((_, crate::config::InstanceKey::Key(k))) => {
            let mut out = format!("{block}/k=");
            for b in k.bytes() {
                if b.is_ascii_alphanumeric() || b"_-.".contains(&b) {
                    out.push(char::from(b));
                } else {
                    out.push_str(&format!("@{b:02X}"));
                }
            }
            out
        }
        None => address.to_owned(),
    }
}

/// The address a `rota:address` tag value spells (see
/// [`address_tag_value`]).
pub fn address_from_tag(value: &str) -> String {
    if let Some((block, i)) = value.split_once("/i=")
        && i.bytes().all(|b| b.is_ascii_digit())
    {
        return format!("{block}[{i}]");
    }
    if let Some((block, enc)) = value.split_once("/k=") {
        let b = enc.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'@'
                && let Some(v) = enc
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        let key = String::from_utf8_lossy(&out).into_owned();
        return format!("{block}{}", crate::config::InstanceKey::Key(key).suffix());
    }
    value.to_owned()
}

/// Reads the `rota:address` tag of live tags back into an address.
pub(crate) fn decode_address_tag(tags: &mut BTreeMap<String, String>) {
    if let Some(v) = tags.get_mut(ADDRESS_TAG) {
        *v = address_from_tag(v);
    }
}

/// Whether a tag key is outside the user's tags (Rota's or the cloud's).
pub fn is_reserved_tag(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    lower.starts_with("rota:")
        || lower.starts_with("aliyun")
        || lower.starts_with("acs:")
        || lower.starts_with("http://")
        || lower.starts_with("https://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_addresses_round_trip_through_the_tag_charset() {
        for a in [
            "alicloud_kms_secret.db",
            "alicloud_kms_secret.app[0]",
            "alicloud_kms_secret.app[12]",
            "alicloud_kms_secret.app[\"web\"]",
            "alicloud_kms_secret.app[\"a b/c@d\\\"é\"]",
            "alicloud_kms_secret.app[\"0\"]",
        ] {
            let v = address_tag_value(a);
            assert!(
                v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/\\_-.+=:@".contains(&b)),
                "{v}"
            );
            assert_eq!(address_from_tag(&v), a, "{v}");
        }
        assert_eq!(
            address_tag_value("alicloud_kms_secret.app[\"web\"]"),
            "alicloud_kms_secret.app/k=web"
        );
        assert_eq!(
            address_tag_value("alicloud_kms_secret.app[0]"),
            "alicloud_kms_secret.app/i=0"
        );
    }

    #[test]
    fn ownership_needs_both_tags() {
        let o = Ownership::for_directory(Path::new("/srv/secrets"));
        assert_eq!(o.config_id().len(), 16);
        let tags: BTreeMap<String, String> = o
            .tags("alicloud_kms_secret.a")
            .into_iter()
            .map(|t| (t.tag_key, t.tag_value))
            .collect();
        assert!(o.owns(&tags));
        assert!(!Ownership::new("other").owns(&tags));
        let mut only_managed = tags.clone();
        only_managed.remove(CONFIG_TAG);
        assert!(!o.owns(&only_managed));
        assert!(
            is_reserved_tag("rota:managed") && is_reserved_tag("acs:x") && !is_reserved_tag("env")
        );
    }
}

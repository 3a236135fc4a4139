//! The local world: a declaration, in HCL, of what exists in the local cloud.
//!
//! Today it declares the account, the region, KMS instances, KMS keys and
//! extra access keys; a later issue adds ECS instances, RDS instances and RAM
//! users. Unknown attributes and blocks are refused, so a typo is an error
//! rather than a silently missing resource.
//!
//! ```hcl
//! # The account every ARN names, and the one region this cloud serves.
//! account_id = "1234567890123456"
//! region     = "cn-hangzhou"
//!
//! # Optional: how many secrets may exist before CreateSecret answers
//! # Rejected.LimitExceeded (default 10000).
//! max_secrets = 10000
//!
//! # KMS instances (DKMSInstanceId values CreateSecret accepts).
//! kms_instance "kst-phzz61dbabacquz826y29f" {
//!   description = "production instance"
//! }
//!
//! # KMS keys (EncryptionKeyId values). spec defaults to Aliyun_AES_256;
//! # only symmetric AES-256 keys can encrypt secrets. kms_instance is optional
//! # and must name a declared instance.
//! key "key-phzz661646aeygbqrfqg5j" {
//!   description  = "secrets key"
//!   spec         = "Aliyun_AES_256"
//!   kms_instance = "kst-phzz61dbabacquz826y29f"
//! }
//!
//! # Extra access keys. The principal is the RAM user
//! # acs:ram::<account_id>:user/<user>, or the account root when user is absent.
//! access_key "LTAI5tAliceExample" {
//!   secret = "alice-secret"
//!   user   = "alice"
//! }
//! ```
//!
//! The root access key is not declared here: `rota local serve` registers it
//! from its flags or generates one (see [`crate::OpenOptions`]).

use std::collections::BTreeMap;
use std::path::Path;

use rota_kms::SecretString;

/// Key specs a world may declare.
pub const KEY_SPECS: &[&str] = &[
    "Aliyun_AES_256",
    "Aliyun_AES_128",
    "Aliyun_AES_192",
    "Aliyun_SM4",
    "RSA_2048",
    "RSA_3072",
    "EC_P256",
    "EC_P256K",
    "EC_SM2",
];

/// The key spec that can encrypt secrets.
pub const SYMMETRIC_SPEC: &str = "Aliyun_AES_256";

/// A parsed, validated world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct World {
    /// Account id (digits), used in ARNs and principals.
    pub account_id: String,
    /// The region this cloud serves.
    pub region: String,
    /// Secret quota.
    pub max_secrets: usize,
    /// KMS instances by id.
    pub kms_instances: BTreeMap<String, KmsInstanceDecl>,
    /// Keys by id.
    pub keys: BTreeMap<String, KeyDecl>,
    /// Extra access keys by id.
    pub access_keys: BTreeMap<String, AccessKeyDecl>,
}

/// A declared KMS instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KmsInstanceDecl {
    /// Free text.
    pub description: String,
}

/// A declared key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDecl {
    /// Free text.
    pub description: String,
    /// Key spec.
    pub spec: String,
    /// Owning instance, if any.
    pub kms_instance: Option<String>,
}

/// A declared access key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyDecl {
    /// The secret.
    pub secret: SecretString,
    /// RAM user name; `None` for the account root.
    pub user: Option<String>,
}

/// Why a world file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorldError {
    /// The file could not be read.
    #[error("cannot read world file {path}")]
    Read {
        /// Path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The text is not HCL.
    #[error("world file is not valid HCL: {0}")]
    Syntax(String),
    /// The HCL is valid but the declaration is not.
    #[error("world file: {0}")]
    Invalid(String),
}

impl Default for World {
    /// The embedded default world: account `1234567890123456` in
    /// `cn-hangzhou`, with the KMS instance and key the seed configuration
    /// names (`kst-phzz61dbabacquz826y29f`, `key-phzz661646aeygbqrfqg5j`).
    fn default() -> Self {
        Self::parse(DEFAULT_WORLD).expect("the default world is valid")
    }
}

/// The text of the default world.
pub const DEFAULT_WORLD: &str = r#"
account_id = "1234567890123456"
region     = "cn-hangzhou"

kms_instance "kst-phzz61dbabacquz826y29f" {
  description = "default local KMS instance"
}

key "key-phzz661646aeygbqrfqg5j" {
  description  = "default local secrets key"
  spec         = "Aliyun_AES_256"
  kms_instance = "kst-phzz61dbabacquz826y29f"
}
"#;

fn invalid(msg: impl Into<String>) -> WorldError {
    WorldError::Invalid(msg.into())
}

fn expr_string(where_: &str, expr: &hcl::Expression) -> Result<String, WorldError> {
    match expr {
        hcl::Expression::String(s) => Ok(s.clone()),
        hcl::Expression::Number(n) => Ok(n.to_string()),
        _ => Err(invalid(format!("{where_} must be a string"))),
    }
}

fn expr_usize(where_: &str, expr: &hcl::Expression) -> Result<usize, WorldError> {
    match expr {
        hcl::Expression::Number(n) => n
            .as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| invalid(format!("{where_} must be a non-negative integer"))),
        _ => Err(invalid(format!("{where_} must be a number"))),
    }
}

fn single_label(block: &hcl::Block) -> Result<String, WorldError> {
    match block.labels() {
        [label] => Ok(label.as_str().to_owned()),
        _ => Err(invalid(format!(
            "a {} block takes exactly one label, its id",
            block.identifier()
        ))),
    }
}

/// The attributes of a block body, refusing nested blocks and unknown names.
fn attributes(
    what: &str,
    body: &hcl::Body,
    allowed: &[&str],
) -> Result<BTreeMap<String, hcl::Expression>, WorldError> {
    if let Some(b) = body.blocks().next() {
        return Err(invalid(format!(
            "{what}: unexpected nested block {:?}",
            b.identifier()
        )));
    }
    let mut out = BTreeMap::new();
    for attr in body.attributes() {
        if !allowed.contains(&attr.key()) {
            return Err(invalid(format!(
                "{what}: unknown attribute {:?} (known: {})",
                attr.key(),
                allowed.join(", ")
            )));
        }
        out.insert(attr.key().to_owned(), attr.expr().clone());
    }
    Ok(out)
}

impl World {
    /// Reads and parses a world file.
    pub fn load(path: &Path) -> Result<Self, WorldError> {
        let text = std::fs::read_to_string(path).map_err(|source| WorldError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses world text.
    pub fn parse(text: &str) -> Result<Self, WorldError> {
        let body: hcl::Body = hcl::parse(text).map_err(|e| WorldError::Syntax(e.to_string()))?;
        let mut world = World {
            account_id: String::new(),
            region: String::new(),
            max_secrets: 10_000,
            kms_instances: BTreeMap::new(),
            keys: BTreeMap::new(),
            access_keys: BTreeMap::new(),
        };
        for attr in body.attributes() {
            match attr.key() {
                "account_id" => world.account_id = expr_string("account_id", attr.expr())?,
                "region" => world.region = expr_string("region", attr.expr())?,
                "max_secrets" => world.max_secrets = expr_usize("max_secrets", attr.expr())?,
                other => {
                    return Err(invalid(format!(
                        "unknown top-level attribute {other:?} (known: account_id, region, max_secrets)"
                    )));
                }
            }
        }
        for block in body.blocks() {
            let id = single_label(block)?;
            match block.identifier() {
                "kms_instance" => {
                    let what = format!("kms_instance {id:?}");
                    let attrs = attributes(&what, block.body(), &["description"])?;
                    if !id.starts_with("kst-") || id.len() < 5 {
                        return Err(invalid(format!("{what}: an instance id starts with kst-")));
                    }
                    let description = match attrs.get("description") {
                        Some(e) => expr_string(&format!("{what}.description"), e)?,
                        None => String::new(),
                    };
                    if world
                        .kms_instances
                        .insert(id, KmsInstanceDecl { description })
                        .is_some()
                    {
                        return Err(invalid(format!("{what} is declared twice")));
                    }
                }
                "key" => {
                    let what = format!("key {id:?}");
                    let attrs = attributes(
                        &what,
                        block.body(),
                        &["description", "spec", "kms_instance"],
                    )?;
                    if !id.starts_with("key-") || id.len() < 5 || !valid_id(&id) {
                        return Err(invalid(format!(
                            "{what}: a key id starts with key- and has only letters, digits and '-'"
                        )));
                    }
                    let get = |k: &str| -> Result<Option<String>, WorldError> {
                        attrs
                            .get(k)
                            .map(|e| expr_string(&format!("{what}.{k}"), e))
                            .transpose()
                    };
                    let spec = get("spec")?.unwrap_or_else(|| SYMMETRIC_SPEC.to_owned());
                    if !KEY_SPECS.contains(&spec.as_str()) {
                        return Err(invalid(format!(
                            "{what}: unknown spec {spec:?} (known: {})",
                            KEY_SPECS.join(", ")
                        )));
                    }
                    let decl = KeyDecl {
                        description: get("description")?.unwrap_or_default(),
                        spec,
                        kms_instance: get("kms_instance")?,
                    };
                    if world.keys.insert(id, decl).is_some() {
                        return Err(invalid(format!("{what} is declared twice")));
                    }
                }
                "access_key" => {
                    let what = format!("access_key {id:?}");
                    let attrs = attributes(&what, block.body(), &["secret", "user"])?;
                    if id.is_empty() || !valid_id(&id.replace('.', "")) {
                        return Err(invalid(format!(
                            "{what}: an access key id has only letters, digits, '.' and '-'"
                        )));
                    }
                    let secret = match attrs.get("secret") {
                        Some(e) => expr_string(&format!("{what}.secret"), e)?,
                        None => return Err(invalid(format!("{what}: secret is required"))),
                    };
                    if secret.is_empty() {
                        return Err(invalid(format!("{what}: secret may not be empty")));
                    }
                    let user = attrs
                        .get("user")
                        .map(|e| expr_string(&format!("{what}.user"), e))
                        .transpose()?;
                    if let Some(u) = &user
                        && (u.is_empty()
                            || u.len() > 64
                            || !u
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b)))
                    {
                        return Err(invalid(format!(
                            "{what}: user {u:?} is not a RAM user name"
                        )));
                    }
                    let decl = AccessKeyDecl {
                        secret: SecretString::new(secret),
                        user,
                    };
                    if world.access_keys.insert(id, decl).is_some() {
                        return Err(invalid(format!("{what} is declared twice")));
                    }
                }
                other => {
                    return Err(invalid(format!(
                        "unknown block {other:?} (known: kms_instance, key, access_key)"
                    )));
                }
            }
        }
        world.validate()?;
        Ok(world)
    }

    fn validate(&self) -> Result<(), WorldError> {
        if self.account_id.is_empty()
            || self.account_id.len() > 32
            || !self.account_id.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(invalid("account_id is required and is digits only"));
        }
        if self.region.is_empty()
            || !self
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(
                "region is required (lower-case letters, digits and '-', e.g. cn-hangzhou)",
            ));
        }
        for (id, key) in &self.keys {
            if let Some(inst) = &key.kms_instance
                && !self.kms_instances.contains_key(inst)
            {
                return Err(invalid(format!(
                    "key {id:?} names kms_instance {inst:?}, which is not declared"
                )));
            }
        }
        Ok(())
    }

    /// The ARN of a secret.
    pub fn secret_arn(&self, name: &str) -> String {
        format!("acs:kms:{}:{}:secret/{name}", self.region, self.account_id)
    }

    /// The ARN of a key.
    pub fn key_arn(&self, key_id: &str) -> String {
        format!("acs:kms:{}:{}:key/{key_id}", self.region, self.account_id)
    }

    /// The account root principal.
    pub fn root_principal(&self) -> String {
        format!("acs:ram::{}:root", self.account_id)
    }

    /// The principal of a RAM user.
    pub fn user_principal(&self, user: &str) -> String {
        format!("acs:ram::{}:user/{user}", self.account_id)
    }
}

fn valid_id(id: &str) -> bool {
    id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_world_parses() {
        let w = World::default();
        assert_eq!(w.region, "cn-hangzhou");
        assert!(w.keys.contains_key("key-phzz661646aeygbqrfqg5j"));
        assert!(w.kms_instances.contains_key("kst-phzz61dbabacquz826y29f"));
    }

    #[test]
    fn full_world_parses() {
        let w = World::parse(
            r#"
account_id = "42"
region = "cn-shanghai"
max_secrets = 5
kms_instance "kst-a" {}
key "key-a" {
  kms_instance = "kst-a"
}
key "key-rsa" {
  spec = "RSA_2048"
}
access_key "LTAIalice" {
  secret = "s"
  user = "alice"
}
"#,
        )
        .unwrap();
        assert_eq!(w.max_secrets, 5);
        assert_eq!(w.keys["key-a"].spec, "Aliyun_AES_256");
        assert_eq!(w.access_keys["LTAIalice"].user.as_deref(), Some("alice"));
        assert_eq!(w.user_principal("alice"), "acs:ram::42:user/alice");
    }

    #[test]
    fn mistakes_are_refused() {
        for (text, needle) in [
            (
                "account_id = \"1\"\nregion = \"r\"\nkey \"key-a\" { kms_instance = \"kst-x\" }",
                "not declared",
            ),
            (
                "account_id = \"1\"\nregion = \"r\"\nkye \"key-a\" {}",
                "unknown block",
            ),
            (
                "account_id = \"1\"\nregion = \"r\"\nkey \"key-a\" { spce = \"x\" }",
                "unknown attribute",
            ),
            (
                "account_id = \"1\"\nregion = \"r\"\nkey \"nokey\" {}",
                "starts with key-",
            ),
            ("region = \"r\"", "account_id"),
            (
                "account_id = \"1\"\nregion = \"r\"\naccess_key \"AK\" {}",
                "secret is required",
            ),
            ("account_id = ", "HCL"),
        ] {
            let err = World::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }
}

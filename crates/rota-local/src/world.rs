//! The local world: a declaration, in HCL, of what exists in the local cloud.
//!
//! It declares the account, the region, KMS instances, KMS keys, extra
//! access keys, and the targets managed rotation acts on: ECS instances
//! with their OS accounts, RDS instances with their accounts (optionally
//! bound to a real PostgreSQL or MariaDB server), and RAM users with their
//! access keys. Unknown attributes and blocks are refused, so a typo is an
//! error rather than a silently missing resource.
//!
//! ```hcl
//! # Required: the account every ARN names, and the one region this
//! # cloud serves.
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
//! # Extra access keys (static callers). The principal is the RAM user
//! # acs:ram::<account_id>:user/<user>, or the account root when user is absent.
//! access_key "LTAI5tAliceExample" {
//!   secret = "alice-secret"
//!   user   = "alice"
//! }
//!
//! # ECS instances (Cloud Assistant targets). region defaults to the world's;
//! # os_type is linux (default) or windows. Each account holds a password,
//! # authorized public keys, or both.
//! ecs_instance "i-bp1fr0a100hd0yf6ksq3" {
//!   region  = "cn-hangzhou"
//!   os_type = "linux"
//!   account "ecs-user1423" {
//!     password = "ecs-user1423"
//!   }
//!   account "deploy" {
//!     public_keys = ["ssh-ed25519 AAAA… deploy@laptop"]
//!   }
//! }
//!
//! # RDS instances. engine is MySQL, MariaDB or PostgreSQL. bind (optional)
//! # is a real server: account changes then run as real statements there
//! # (postgres:// or postgresql:// for PostgreSQL, mysql:// or mariadb:// for
//! # MySQL and MariaDB). type is Normal (default) or Super.
//! rds_instance "rm-bp1example" {
//!   engine = "PostgreSQL"
//!   bind   = "postgres://postgres@127.0.0.1:5432/postgres"
//!   account "app" {
//!     password = "Initial-Passw0rd"
//!     type     = "Normal"
//!   }
//! }
//!
//! # RAM users and their access keys (at most two, status Active or
//! # Inactive). Their keys sign requests like the root key does; their
//! # principal is acs:ram::<account_id>:user/<name>.
//! ram_user "alice" {
//!   access_key "LTAI5tAliceKey000001" {
//!     secret = "alice-key-secret"
//!     status = "Active"
//!   }
//! }
//!
//! # RAM roles, for STS AssumeRole (acs:ram::<account_id>:role/<name>) and
//! # ECS instance roles. assume_role_policy says who may assume it (RAM
//! # principals, or the service ecs.aliyuncs.com for an instance role);
//! # policy (optional) what its sessions may do; both are policy documents,
//! # as JSON text or as HCL objects. max_session_duration: 900 to 43200
//! # seconds (default 3600).
//! ram_role "app-reader" {
//!   assume_role_policy = {
//!     Version   = "1"
//!     Statement = [{ Effect = "Allow", Action = "sts:AssumeRole",
//!                    Principal = { RAM = ["acs:ram::1234567890123456:user/alice"] } }]
//!   }
//!   policy = {
//!     Version   = "1"
//!     Statement = [{ Effect = "Allow", Action = ["kms:GetSecretValue"],
//!                    Resource = ["acs:kms:*:*:secret/app/*"] }]
//!   }
//!   max_session_duration = 3600
//! }
//! # An ECS instance names its role with ram_role = "app-reader"; the local
//! # metadata service (rota local serve --metadata-addr) hands out its
//! # credentials.
//! ```
//!
//! The declared values **seed** the durable state of the data directory the
//! first time a resource (or an ECS/RDS account) is seen; afterwards the
//! durable state wins (a rotated password stays rotated across restarts,
//! and a deleted RAM key stays deleted). See [`crate::targets`].
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
    /// ECS instances by id.
    pub ecs_instances: BTreeMap<String, EcsInstanceDecl>,
    /// RDS instances by id.
    pub rds_instances: BTreeMap<String, RdsInstanceDecl>,
    /// RAM users by name.
    pub ram_users: BTreeMap<String, RamUserDecl>,
    /// RAM roles by name.
    pub ram_roles: BTreeMap<String, RamRoleDecl>,
}

/// A declared RAM role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RamRoleDecl {
    /// RAM principals (ARN patterns) the trust policy lets assume it.
    pub trusted_principals: Vec<String>,
    /// Services (`ecs.aliyuncs.com`) the trust policy lets assume it.
    pub trusted_services: Vec<String>,
    /// What its sessions may do; `None`: bounded by nothing but secret
    /// policies (as the world's users).
    pub policy: Option<std::sync::Arc<crate::auth::IdentityPolicy>>,
    /// Longest session, in seconds.
    pub max_session_duration: u32,
}

/// The operating system of an ECS instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OsType {
    /// Linux: shell scripts, passwords and SSH keys.
    Linux,
    /// Windows: passwords only.
    Windows,
}

impl OsType {
    /// `linux` or `windows`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Linux => "linux",
            Self::Windows => "windows",
        }
    }
}

/// A declared ECS instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsInstanceDecl {
    /// Its region.
    pub region: String,
    /// Its operating system.
    pub os_type: OsType,
    /// OS accounts by name.
    pub accounts: BTreeMap<String, OsAccountDecl>,
    /// The RAM role attached to it (its metadata service hands out that
    /// role's credentials).
    pub ram_role: Option<String>,
}

/// A declared OS account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsAccountDecl {
    /// Its password, if it has one.
    pub password: Option<SecretString>,
    /// Its authorized public keys (OpenSSH one-line format).
    pub public_keys: Vec<String>,
}

/// The database engine of an RDS instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RdsEngine {
    /// MySQL.
    MySQL,
    /// MariaDB (MySQL protocol).
    MariaDB,
    /// PostgreSQL.
    PostgreSQL,
}

impl RdsEngine {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MySQL => "MySQL",
            Self::MariaDB => "MariaDB",
            Self::PostgreSQL => "PostgreSQL",
        }
    }

    /// Whether it speaks the MySQL protocol.
    pub fn is_mysql(self) -> bool {
        self != Self::PostgreSQL
    }
}

/// A declared RDS instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdsInstanceDecl {
    /// Its engine.
    pub engine: RdsEngine,
    /// The real server it is bound to (a URL, which may carry a password).
    pub bind: Option<SecretString>,
    /// Accounts by name.
    pub accounts: BTreeMap<String, RdsAccountDecl>,
}

/// A declared RDS account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdsAccountDecl {
    /// Its password.
    pub password: SecretString,
    /// `Normal` or `Super`.
    pub account_type: String,
}

/// A declared RAM user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RamUserDecl {
    /// Access keys by id.
    pub access_keys: BTreeMap<String, RamKeyDecl>,
}

/// A declared RAM access key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RamKeyDecl {
    /// The secret.
    pub secret: SecretString,
    /// `Active` or `Inactive`.
    pub status: String,
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
    /// The HCL is valid but the declaration is not: every problem, one
    /// per line (`FILE:LINE:COL: …` when parsed with a name).
    #[error("{0}")]
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

/// The 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

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
        Self::parse_named(&text, &path.display().to_string())
    }

    /// Parses world text.
    pub fn parse(text: &str) -> Result<Self, WorldError> {
        Self::parse_named(text, "world.hcl")
    }

    /// Parses world text, naming it `origin` in messages (`FILE:LINE:COL:
    /// …`). Every problem is reported, each on its own line.
    pub fn parse_named(text: &str, origin: &str) -> Result<Self, WorldError> {
        let body: hcl::Body = hcl::parse(text).map_err(|e| WorldError::Syntax(e.to_string()))?;
        let mut world = World {
            account_id: String::new(),
            region: String::new(),
            max_secrets: 10_000,
            kms_instances: BTreeMap::new(),
            keys: BTreeMap::new(),
            access_keys: BTreeMap::new(),
            ecs_instances: BTreeMap::new(),
            rds_instances: BTreeMap::new(),
            ram_users: BTreeMap::new(),
            ram_roles: BTreeMap::new(),
        };
        // Where each top-level item starts (line and column), from the
        // same text parsed with spans.
        let mut spans: Vec<Option<std::ops::Range<usize>>> = Vec::new();
        let mut top_spans: BTreeMap<String, std::ops::Range<usize>> = BTreeMap::new();
        if let Ok(edit) = hcl::edit::parser::parse_body(text) {
            use hcl::edit::Span as _;
            for item in edit.iter() {
                match item {
                    hcl::edit::structure::Structure::Attribute(a) => {
                        let span = a.span();
                        if let Some(sp) = &span {
                            top_spans.insert(a.key.as_str().to_owned(), sp.clone());
                        }
                        spans.push(span);
                    }
                    hcl::edit::structure::Structure::Block(b) => spans.push(b.ident.span()),
                }
            }
        }
        let placed = |span: Option<std::ops::Range<usize>>, e: WorldError| {
            let (line, col) = span.map_or((1, 1), |sp| line_col(text, sp.start));
            let message = match e {
                WorldError::Invalid(m) => m,
                other => other.to_string(),
            };
            format!("{origin}:{line}:{col}: {message}")
        };
        let mut problems: Vec<String> = Vec::new();
        for (structure, span) in body
            .iter()
            .zip(spans.iter().chain(std::iter::repeat(&None)))
        {
            let result = match structure {
                hcl::Structure::Attribute(attr) => world.top_attribute(attr),
                hcl::Structure::Block(block) => world.parse_block(block),
            };
            if let Err(e) = result {
                problems.push(placed(span.clone(), e));
            }
        }
        for (attr, message) in world.validate() {
            let span = attr.and_then(|a| top_spans.get(a).cloned());
            problems.push(placed(span, WorldError::Invalid(message)));
        }
        match problems.len() {
            0 => Ok(world),
            1 => Err(WorldError::Invalid(problems.remove(0))),
            n => Err(WorldError::Invalid(format!(
                "{n} problems:\n{}",
                problems.join("\n")
            ))),
        }
    }

    /// Reads one top-level attribute into `self`.
    fn top_attribute(&mut self, attr: &hcl::Attribute) -> Result<(), WorldError> {
        match attr.key() {
            "account_id" => self.account_id = expr_string("account_id", attr.expr())?,
            "region" => self.region = expr_string("region", attr.expr())?,
            "max_secrets" => self.max_secrets = expr_usize("max_secrets", attr.expr())?,
            other => {
                return Err(invalid(format!(
                    "unknown top-level attribute {other:?} (known: account_id, region, max_secrets)"
                )));
            }
        }
        Ok(())
    }

    /// Reads one top-level block into `self`.
    fn parse_block(&mut self, block: &hcl::Block) -> Result<(), WorldError> {
        let world = self;
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
            "ecs_instance" => {
                let decl = parse_ecs_instance(&id, block.body())?;
                if world.ecs_instances.insert(id.clone(), decl).is_some() {
                    return Err(invalid(format!("ecs_instance {id:?} is declared twice")));
                }
            }
            "rds_instance" => {
                let decl = parse_rds_instance(&id, block.body())?;
                if world.rds_instances.insert(id.clone(), decl).is_some() {
                    return Err(invalid(format!("rds_instance {id:?} is declared twice")));
                }
            }
            "ram_user" => {
                let decl = parse_ram_user(&id, block.body())?;
                if world.ram_users.insert(id.clone(), decl).is_some() {
                    return Err(invalid(format!("ram_user {id:?} is declared twice")));
                }
            }
            "ram_role" => {
                let decl = parse_ram_role(&id, block.body())?;
                if world.ram_roles.insert(id.clone(), decl).is_some() {
                    return Err(invalid(format!("ram_role {id:?} is declared twice")));
                }
            }
            other => {
                return Err(invalid(format!(
                    "unknown block {other:?} (known: kms_instance, key, access_key, ecs_instance, rds_instance, ram_user, ram_role)"
                )));
            }
        }
        Ok(())
    }

    /// The problems across blocks, each with the top-level attribute it
    /// is about (if any): required attributes, shared access keys, keys
    /// naming undeclared KMS instances.
    fn validate(&mut self) -> Vec<(Option<&'static str>, String)> {
        let mut problems = Vec::new();
        if self.account_id.is_empty() {
            problems.push((
                None,
                "account_id is required: the account's id, digits only (e.g. account_id = \"1234567890123456\")".to_owned(),
            ));
        } else if self.account_id.len() > 32 || !self.account_id.bytes().all(|b| b.is_ascii_digit())
        {
            problems.push((
                Some("account_id"),
                "account_id is digits only (at most 32)".to_owned(),
            ));
        }
        if self.region.is_empty() {
            problems.push((
                None,
                "region is required: the region this cloud serves (e.g. region = \"cn-hangzhou\")"
                    .to_owned(),
            ));
        } else if !self
            .region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            problems.push((
                Some("region"),
                "region has lower-case letters, digits and '-' only (e.g. cn-hangzhou)".to_owned(),
            ));
        }
        for inst in self.ecs_instances.values_mut() {
            if inst.region.is_empty() {
                inst.region.clone_from(&self.region);
            }
        }
        let mut key_ids: BTreeMap<&str, &str> = BTreeMap::new();
        for (user, u) in &self.ram_users {
            for id in u.access_keys.keys() {
                if self.access_keys.contains_key(id) {
                    problems.push((
                        None,
                        format!(
                            "access key {id:?} of ram_user {user:?} is also a top-level access_key"
                        ),
                    ));
                }
                if let Some(other) = key_ids.insert(id, user) {
                    problems.push((
                        None,
                        format!(
                            "access key {id:?} is declared for ram_user {other:?} and {user:?}"
                        ),
                    ));
                }
            }
        }
        for (id, inst) in &self.ecs_instances {
            if let Some(role) = &inst.ram_role
                && !self.ram_roles.contains_key(role)
            {
                problems.push((
                    None,
                    format!("ecs_instance {id:?} names ram_role {role:?}, which is not declared"),
                ));
            }
        }
        for (id, key) in &self.keys {
            if let Some(inst) = &key.kms_instance
                && !self.kms_instances.contains_key(inst)
            {
                problems.push((
                    None,
                    format!("key {id:?} names kms_instance {inst:?}, which is not declared"),
                ));
            }
        }
        problems
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

    /// The ARN of a RAM role.
    pub fn role_arn(&self, role: &str) -> String {
        format!("acs:ram::{}:role/{role}", self.account_id)
    }
}

/// The attributes and nested blocks of a body, refusing unknown names.
fn body_parts<'a>(
    what: &str,
    body: &'a hcl::Body,
    allowed: &[&str],
    blocks: &[&str],
) -> Result<(BTreeMap<String, hcl::Expression>, Vec<&'a hcl::Block>), WorldError> {
    let mut attrs = BTreeMap::new();
    for attr in body.attributes() {
        if !allowed.contains(&attr.key()) {
            return Err(invalid(format!(
                "{what}: unknown attribute {:?} (known: {})",
                attr.key(),
                allowed.join(", ")
            )));
        }
        attrs.insert(attr.key().to_owned(), attr.expr().clone());
    }
    let mut nested = Vec::new();
    for b in body.blocks() {
        if !blocks.contains(&b.identifier()) {
            return Err(invalid(format!(
                "{what}: unexpected nested block {:?} (known: {})",
                b.identifier(),
                if blocks.is_empty() {
                    "none".to_owned()
                } else {
                    blocks.join(", ")
                }
            )));
        }
        nested.push(b);
    }
    Ok((attrs, nested))
}

fn opt_string(
    what: &str,
    attrs: &BTreeMap<String, hcl::Expression>,
    key: &str,
) -> Result<Option<String>, WorldError> {
    attrs
        .get(key)
        .map(|e| expr_string(&format!("{what}.{key}"), e))
        .transpose()
}

fn string_list(where_: &str, expr: &hcl::Expression) -> Result<Vec<String>, WorldError> {
    match expr {
        hcl::Expression::Array(items) => items.iter().map(|e| expr_string(where_, e)).collect(),
        _ => Err(invalid(format!("{where_} must be a list of strings"))),
    }
}

/// An OS account name: letters, digits, `_`, `-`, `.`; 1–32 characters.
pub fn valid_os_account(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// An RDS account name: 2–32 lower-case letters, digits or `_`, starting
/// with a letter and ending with a letter or digit.
pub fn valid_rds_account(name: &str) -> bool {
    let b = name.as_bytes();
    (2..=32).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// A RAM user name: 1–64 letters, digits, `-`, `_`, `.`, `@`.
pub fn valid_ram_user(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
}

fn parse_ecs_instance(id: &str, body: &hcl::Body) -> Result<EcsInstanceDecl, WorldError> {
    let what = format!("ecs_instance {id:?}");
    if !id.starts_with("i-") || id.len() < 3 || !valid_id(id) {
        return Err(invalid(format!(
            "{what}: an instance id starts with i- and has only letters, digits and '-'"
        )));
    }
    let (attrs, blocks) = body_parts(
        &what,
        body,
        &["region", "os_type", "ram_role"],
        &["account"],
    )?;
    let os_type = match opt_string(&what, &attrs, "os_type")?.as_deref() {
        None | Some("linux") => OsType::Linux,
        Some("windows") => OsType::Windows,
        Some(other) => {
            return Err(invalid(format!(
                "{what}: os_type {other:?} is not linux or windows"
            )));
        }
    };
    let mut accounts = BTreeMap::new();
    for b in blocks {
        let name = single_label(b)?;
        let w = format!("{what} account {name:?}");
        if !valid_os_account(&name) {
            return Err(invalid(format!(
                "{w}: an OS account name has 1 to 32 letters, digits, '_', '-' or '.'"
            )));
        }
        let (a, _) = body_parts(&w, b.body(), &["password", "public_keys"], &[])?;
        let password = opt_string(&w, &a, "password")?.map(SecretString::new);
        let public_keys = match a.get("public_keys") {
            Some(e) => string_list(&format!("{w}.public_keys"), e)?,
            None => Vec::new(),
        };
        if os_type == OsType::Windows && !public_keys.is_empty() {
            return Err(invalid(format!(
                "{w}: Windows accounts take no public_keys"
            )));
        }
        if accounts
            .insert(
                name,
                OsAccountDecl {
                    password,
                    public_keys,
                },
            )
            .is_some()
        {
            return Err(invalid(format!("{w} is declared twice")));
        }
    }
    Ok(EcsInstanceDecl {
        region: opt_string(&what, &attrs, "region")?.unwrap_or_default(),
        os_type,
        accounts,
        ram_role: opt_string(&what, &attrs, "ram_role")?,
    })
}

/// A policy document given as JSON text (a string or heredoc) or as an
/// HCL object, as JSON.
fn policy_document(what: &str, expr: &hcl::Expression) -> Result<serde_json::Value, WorldError> {
    use hcl::eval::Evaluate as _;
    let value = expr
        .evaluate(&hcl::eval::Context::new())
        .map_err(|e| invalid(format!("{what}: {e}")))?;
    match value {
        hcl::Value::String(text) => serde_json::from_str(&text)
            .map_err(|e| invalid(format!("{what}: not a JSON policy document: {e}"))),
        other @ hcl::Value::Object(_) => {
            serde_json::to_value(&other).map_err(|e| invalid(format!("{what}: {e}")))
        }
        _ => Err(invalid(format!(
            "{what} must be a policy document (JSON text or an object)"
        ))),
    }
}

/// The RAM principals and services a trust policy lets assume a role.
fn trust_policy(
    what: &str,
    doc: &serde_json::Value,
) -> Result<(Vec<String>, Vec<String>), WorldError> {
    let bad = |m: &str| invalid(format!("{what}: {m}"));
    let statements = match doc.get("Statement") {
        Some(serde_json::Value::Array(l)) => l.clone(),
        Some(o @ serde_json::Value::Object(_)) => vec![o.clone()],
        _ => return Err(bad("Statement must be a list of statements")),
    };
    let strings = |v: Option<&serde_json::Value>| -> Vec<String> {
        match v {
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    let (mut principals, mut services) = (Vec::new(), Vec::new());
    for st in &statements {
        if st.get("Effect").and_then(serde_json::Value::as_str) != Some("Allow") {
            return Err(bad("only Allow statements are supported in a trust policy"));
        }
        let actions = strings(st.get("Action"));
        if !actions
            .iter()
            .any(|a| a.eq_ignore_ascii_case("sts:AssumeRole") || a == "*" || a == "sts:*")
        {
            return Err(bad("each statement's Action must be sts:AssumeRole"));
        }
        let principal = st
            .get("Principal")
            .and_then(serde_json::Value::as_object)
            .ok_or_else(|| bad("each statement needs a Principal object (RAM or Service)"))?;
        for (k, v) in principal {
            match k.as_str() {
                "RAM" => principals.extend(strings(Some(v))),
                "Service" => services.extend(strings(Some(v))),
                other => {
                    return Err(bad(&format!(
                        "Principal {other:?} is not supported (RAM or Service)"
                    )));
                }
            }
        }
    }
    if principals.is_empty() && services.is_empty() {
        return Err(bad("names no principal: nobody could assume the role"));
    }
    Ok((principals, services))
}

fn parse_ram_role(name: &str, body: &hcl::Body) -> Result<RamRoleDecl, WorldError> {
    let what = format!("ram_role {name:?}");
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(invalid(format!(
            "{what}: a role name has 1 to 64 letters, digits, '-', '_' or '.'"
        )));
    }
    let (attrs, _) = body_parts(
        &what,
        body,
        &[
            "assume_role_policy",
            "policy",
            "max_session_duration",
            "description",
        ],
        &[],
    )?;
    let trust = attrs
        .get("assume_role_policy")
        .ok_or_else(|| invalid(format!("{what}: assume_role_policy is required")))?;
    let trust_doc = policy_document(&format!("{what}.assume_role_policy"), trust)?;
    let (trusted_principals, trusted_services) =
        trust_policy(&format!("{what}.assume_role_policy"), &trust_doc)?;
    let policy = match attrs.get("policy") {
        Some(e) => {
            let w = format!("{what}.policy");
            let doc = policy_document(&w, e)?;
            Some(std::sync::Arc::new(
                crate::auth::IdentityPolicy::from_json(&doc)
                    .map_err(|m| invalid(format!("{w}: {m}")))?,
            ))
        }
        None => None,
    };
    let max_session_duration = match attrs.get("max_session_duration") {
        Some(e) => {
            let n = expr_usize(&format!("{what}.max_session_duration"), e)?;
            if !(900..=43_200).contains(&n) {
                return Err(invalid(format!(
                    "{what}.max_session_duration must be between 900 and 43200 seconds"
                )));
            }
            n as u32
        }
        None => 3600,
    };
    if let Some(d) = attrs.get("description") {
        expr_string(&format!("{what}.description"), d)?;
    }
    Ok(RamRoleDecl {
        trusted_principals,
        trusted_services,
        policy,
        max_session_duration,
    })
}

fn parse_rds_instance(id: &str, body: &hcl::Body) -> Result<RdsInstanceDecl, WorldError> {
    let what = format!("rds_instance {id:?}");
    if !(id.starts_with("rm-") || id.starts_with("pgm-")) || !valid_id(id) {
        return Err(invalid(format!(
            "{what}: an instance id starts with rm- or pgm- and has only letters, digits and '-'"
        )));
    }
    let (attrs, blocks) = body_parts(&what, body, &["engine", "bind"], &["account"])?;
    let engine = match opt_string(&what, &attrs, "engine")?.as_deref() {
        Some("MySQL") => RdsEngine::MySQL,
        Some("MariaDB") => RdsEngine::MariaDB,
        Some("PostgreSQL") => RdsEngine::PostgreSQL,
        Some(other) => {
            return Err(invalid(format!(
                "{what}: engine {other:?} is not MySQL, MariaDB or PostgreSQL"
            )));
        }
        None => return Err(invalid(format!("{what}: engine is required"))),
    };
    let bind = opt_string(&what, &attrs, "bind")?;
    if let Some(url) = &bind {
        let ok = if engine.is_mysql() {
            url.starts_with("mysql://") || url.starts_with("mariadb://")
        } else {
            url.starts_with("postgres://") || url.starts_with("postgresql://")
        };
        if !ok {
            return Err(invalid(format!(
                "{what}: bind must be a {} URL for engine {}",
                if engine.is_mysql() {
                    "mysql:// or mariadb://"
                } else {
                    "postgres:// or postgresql://"
                },
                engine.as_str()
            )));
        }
    }
    let mut accounts = BTreeMap::new();
    for b in blocks {
        let name = single_label(b)?;
        let w = format!("{what} account {name:?}");
        if !valid_rds_account(&name) {
            return Err(invalid(format!(
                "{w}: an RDS account name has 2 to 32 lower-case letters, digits or '_', starts with a letter and ends with a letter or digit"
            )));
        }
        let (a, _) = body_parts(&w, b.body(), &["password", "type"], &[])?;
        let password = opt_string(&w, &a, "password")?
            .ok_or_else(|| invalid(format!("{w}: password is required")))?;
        if let Err(why) = crate::targets::rds::check_password(&password) {
            return Err(invalid(format!("{w}: password {why}")));
        }
        let account_type = opt_string(&w, &a, "type")?.unwrap_or_else(|| "Normal".into());
        if account_type != "Normal" && account_type != "Super" {
            return Err(invalid(format!("{w}: type must be Normal or Super")));
        }
        if accounts
            .insert(
                name,
                RdsAccountDecl {
                    password: SecretString::new(password),
                    account_type,
                },
            )
            .is_some()
        {
            return Err(invalid(format!("{w} is declared twice")));
        }
    }
    Ok(RdsInstanceDecl {
        engine,
        bind: bind.map(SecretString::new),
        accounts,
    })
}

fn parse_ram_user(name: &str, body: &hcl::Body) -> Result<RamUserDecl, WorldError> {
    let what = format!("ram_user {name:?}");
    if !valid_ram_user(name) {
        return Err(invalid(format!("{what}: {name:?} is not a RAM user name")));
    }
    let (_, blocks) = body_parts(&what, body, &[], &["access_key"])?;
    let mut access_keys = BTreeMap::new();
    for b in blocks {
        let id = single_label(b)?;
        let w = format!("{what} access_key {id:?}");
        if id.is_empty() || !valid_id(&id.replace('.', "")) {
            return Err(invalid(format!(
                "{w}: an access key id has only letters, digits, '.' and '-'"
            )));
        }
        let (a, _) = body_parts(&w, b.body(), &["secret", "status"], &[])?;
        let secret = opt_string(&w, &a, "secret")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(format!("{w}: secret is required")))?;
        let status = opt_string(&w, &a, "status")?.unwrap_or_else(|| "Active".into());
        if status != "Active" && status != "Inactive" {
            return Err(invalid(format!("{w}: status must be Active or Inactive")));
        }
        if access_keys
            .insert(
                id,
                RamKeyDecl {
                    secret: SecretString::new(secret),
                    status,
                },
            )
            .is_some()
        {
            return Err(invalid(format!("{w} is declared twice")));
        }
    }
    if access_keys.len() > 2 {
        return Err(invalid(format!(
            "{what}: a RAM user has at most two access keys"
        )));
    }
    Ok(RamUserDecl { access_keys })
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
    fn targets_parse() {
        let w = World::parse(
            r#"
account_id = "42"
region = "cn-shanghai"
ecs_instance "i-a" {
  os_type = "windows"
  account "Administrator" {
    password = "x"
  }
}
ecs_instance "i-b" {
  account "deploy" {
    public_keys = ["ssh-ed25519 AAAA d"]
  }
}
rds_instance "pgm-a" {
  engine = "PostgreSQL"
  bind   = "postgres://postgres@127.0.0.1:5432/postgres"
  account "app" {
    password = "Abcdef12!"
    type     = "Super"
  }
}
ram_user "svc" {
  access_key "LTAI1" {
    secret = "s"
    status = "Inactive"
  }
}
"#,
        )
        .unwrap();
        assert_eq!(w.ecs_instances["i-a"].os_type, OsType::Windows);
        assert_eq!(w.ecs_instances["i-b"].region, "cn-shanghai");
        assert_eq!(
            w.ecs_instances["i-b"].accounts["deploy"].public_keys.len(),
            1
        );
        assert_eq!(
            w.rds_instances["pgm-a"].accounts["app"].account_type,
            "Super"
        );
        assert!(w.rds_instances["pgm-a"].bind.is_some());
        assert_eq!(w.ram_users["svc"].access_keys["LTAI1"].status, "Inactive");
    }

    #[test]
    fn target_mistakes_are_refused() {
        let base = "account_id = \"1\"\nregion = \"r\"\n";
        for (text, needle) in [
            ("ecs_instance \"x-1\" {}", "starts with i-"),
            (
                "ecs_instance \"i-1\" { os = \"linux\" }",
                "unknown attribute",
            ),
            (
                "ecs_instance \"i-1\" { os_type = \"mac\" }",
                "linux or windows",
            ),
            (
                "ecs_instance \"i-1\" {\n user \"a\" {}\n}",
                "unexpected nested block",
            ),
            (
                "ecs_instance \"i-1\" {\n account \"a\" {\n pasword = \"x\"\n }\n}",
                "unknown attribute",
            ),
            (
                "ecs_instance \"i-1\" {\n os_type = \"windows\"\n account \"a\" { public_keys = [\"k\"] }\n}",
                "no public_keys",
            ),
            ("rds_instance \"rm-1\" {}", "engine is required"),
            ("rds_instance \"rm-1\" { engine = \"Oracle\" }", "not MySQL"),
            (
                "rds_instance \"rm-1\" {\n engine = \"MySQL\"\n bind = \"postgres://x\"\n}",
                "mysql://",
            ),
            (
                "rds_instance \"rm-1\" {\n engine = \"MySQL\"\n account \"App\" { password = \"Abcdef12!\" }\n}",
                "lower-case",
            ),
            (
                "rds_instance \"rm-1\" {\n engine = \"MySQL\"\n account \"app\" { password = \"weak\" }\n}",
                "8 to 32",
            ),
            (
                "ram_user \"u\" {\n key \"a\" {}\n}",
                "unexpected nested block",
            ),
            (
                "ram_user \"u\" {\n access_key \"a\" {}\n}",
                "secret is required",
            ),
            (
                "ram_user \"u\" {\n access_key \"a\" { secret = \"s\" }\n access_key \"b\" { secret = \"s\" }\n access_key \"c\" { secret = \"s\" }\n}",
                "at most two",
            ),
            (
                "ram_user \"u\" {\n access_key \"a\" {\n secret = \"s\"\n status = \"Off\"\n }\n}",
                "Active or Inactive",
            ),
        ] {
            let err = World::parse(&format!("{base}{text}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
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

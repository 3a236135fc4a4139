//! Credentials and where they come from.
//!
//! A [`CredentialsProvider`] yields [`Credentials`]; providers are chained in a
//! documented order by [`CredentialsChain`]. Library code never reads the
//! process environment or the home directory itself: callers (rota-cli) pass
//! an environment snapshot and paths in, which keeps tests hermetic.
//!
//! # The default chain
//!
//! [`CredentialsChain::default_chain`] asks, in this order, and the first
//! source that has credentials wins:
//!
//! 1. **explicit static keys** ([`StaticCredentials`]), when configuration
//!    gave some;
//! 2. **the environment** ([`EnvCredentials`]): `ALIBABA_CLOUD_ACCESS_KEY_ID`,
//!    `ALIBABA_CLOUD_ACCESS_KEY_SECRET` and `ALIBABA_CLOUD_SECURITY_TOKEN`, or
//!    the Terraform provider's `ALICLOUD_ACCESS_KEY`, `ALICLOUD_SECRET_KEY`
//!    and `ALICLOUD_SECURITY_TOKEN` (the `ALIBABA_CLOUD_*` pair wins);
//! 3. **the aliyun CLI profile** ([`ProfileCredentials`]) in
//!    `~/.aliyun/config.json`: the named profile, else the file's `current`
//!    one; modes `AK` and `StsToken`;
//! 4. **the ECS instance RAM role** ([`EcsRamRoleCredentials`]) from the
//!    instance metadata service, cached and refreshed before it expires.
//!
//! A source that has nothing passes to the next one; a source that has
//! something unusable (a half-set variable pair, a malformed profile file)
//! stops the chain with [`CredentialsError::Invalid`], so a mistake is
//! reported instead of silently falling through to other keys. When no source
//! has credentials the error ([`CredentialsError::NotFound`]) lists every
//! place looked and what was missing there.
//!
//! Nothing here prints a secret: every type's `Debug` redacts key secrets and
//! security tokens, and error messages never quote file or response content.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::secret::SecretString;
use crate::transport::BoxFuture;

/// An access key, optionally with an STS security token.
///
/// `Debug` shows the key id and whether a token is present, never the secret.
#[derive(Clone)]
pub struct Credentials {
    /// Access key id (STS ids start with `STS.`).
    pub access_key_id: String,
    /// Access key secret.
    pub access_key_secret: SecretString,
    /// STS security token, sent as `SecurityToken` (V1) or `x-acs-security-token` (V3).
    pub security_token: Option<SecretString>,
    /// When temporary credentials stop working.
    pub expires_at: Option<SystemTime>,
}

impl Credentials {
    /// Long-lived access key credentials.
    pub fn new(
        access_key_id: impl Into<String>,
        access_key_secret: impl Into<SecretString>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            access_key_secret: access_key_secret.into(),
            security_token: None,
            expires_at: None,
        }
    }

    /// Adds an STS security token.
    pub fn with_security_token(mut self, token: impl Into<SecretString>) -> Self {
        self.security_token = Some(token.into());
        self
    }

    /// Sets the expiry of temporary credentials.
    pub fn with_expiry(mut self, expires_at: SystemTime) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// Whether these credentials are still good at `now` with `margin` to
    /// spare. Credentials without an expiry are always fresh.
    pub fn is_fresh(&self, now: SystemTime, margin: Duration) -> bool {
        match self.expires_at {
            None => true,
            Some(at) => now.checked_add(margin).is_some_and(|t| t < at),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &self.access_key_secret)
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "***"),
            )
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why no credentials could be had.
///
/// Messages name the provider (a file, a set of variables, a URL) and what is
/// wrong, never secret material or the content of a file or response.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// Every provider in the chain came up empty.
    #[error("no Alibaba Cloud credentials found; looked in: {}", looked.join("; "))]
    NotFound {
        /// One line per place looked, in order, with what was missing.
        looked: Vec<String>,
    },
    /// A provider found something but it is unusable.
    #[error("credentials from {provider}: {reason}")]
    Invalid {
        /// The provider (e.g. `aliyun CLI profile "default" in /home/me/.aliyun/config.json`).
        provider: String,
        /// What is wrong, without secret material.
        reason: String,
    },
    /// Fetching credentials failed (metadata service unreachable, …).
    #[error("credentials from {provider}: {reason}")]
    Fetch {
        /// The provider.
        provider: String,
        /// What failed.
        reason: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl CredentialsError {
    fn invalid(provider: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            provider: provider.into(),
            reason: reason.into(),
        }
    }

    fn fetch(
        provider: impl Into<String>,
        reason: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Fetch {
            provider: provider.into(),
            reason: reason.into(),
            source,
        }
    }
}

/// The outcome of asking one provider: credentials, nothing here (with a note
/// on what was missing, for the chain's error), or an error.
pub type ProviderResult = Result<Option<Credentials>, CredentialsError>;

/// A source of credentials.
pub trait CredentialsProvider: Send + Sync + fmt::Debug {
    /// What this provider looks at, precisely enough for the chain's
    /// `NotFound` message (`environment (ALIBABA_CLOUD_ACCESS_KEY_ID/…)`,
    /// `aliyun CLI profile "default" in /x/config.json (file not found)`).
    /// After [`CredentialsProvider::provide`] answered `None` it says why.
    fn describe(&self) -> String;

    /// Fetches credentials: `Ok(None)` when this source has none.
    fn provide(&self) -> BoxFuture<'_, ProviderResult>;
}

/// A clock for credential expiry decisions (tests fix it).
pub type CredentialsClock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The last reason a provider came up empty, for its `describe()`.
#[derive(Default)]
struct Note(StdMutex<Option<String>>);

impl Note {
    fn set(&self, note: impl Into<String>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(note.into());
    }

    fn clear(&self) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    fn get(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

// ------------------------------------------------------------------- static

/// Fixed credentials given in code or configuration.
#[derive(Debug, Clone)]
pub struct StaticCredentials(Credentials);

impl StaticCredentials {
    /// Wraps fixed credentials.
    pub fn new(credentials: Credentials) -> Self {
        Self(credentials)
    }
}

impl CredentialsProvider for StaticCredentials {
    fn describe(&self) -> String {
        "static access key".to_owned()
    }

    fn provide(&self) -> BoxFuture<'_, ProviderResult> {
        let c = self.0.clone();
        Box::pin(async move { Ok(Some(c)) })
    }
}

// -------------------------------------------------------------- environment

/// One set of credential variables.
struct EnvNames {
    id: &'static str,
    secret: &'static str,
    token: &'static str,
}

/// The credential variables, in order of precedence.
const ENV_NAMES: [EnvNames; 2] = [
    EnvNames {
        id: "ALIBABA_CLOUD_ACCESS_KEY_ID",
        secret: "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        token: "ALIBABA_CLOUD_SECURITY_TOKEN",
    },
    EnvNames {
        id: "ALICLOUD_ACCESS_KEY",
        secret: "ALICLOUD_SECRET_KEY",
        token: "ALICLOUD_SECURITY_TOKEN",
    },
];

/// The region variables, in order of precedence.
const REGION_VARS: [&str; 2] = ["ALIBABA_CLOUD_REGION_ID", "ALICLOUD_REGION"];

/// Keeps the variables this module reads, trimmed, empty ones dropped; every
/// other variable of the snapshot (which may hold unrelated secrets) is not kept.
fn relevant_vars<I, K, V>(vars: I) -> Vec<(&'static str, String)>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let wanted = ENV_NAMES
        .iter()
        .flat_map(|n| [n.id, n.secret, n.token])
        .chain(REGION_VARS);
    let wanted: Vec<&'static str> = wanted.collect();
    let mut out = Vec::new();
    for (k, v) in vars {
        if let Some(name) = wanted.iter().find(|w| **w == k.as_ref()) {
            let v = v.as_ref().trim();
            if !v.is_empty() {
                out.retain(|(n, _)| n != name);
                out.push((*name, v.to_owned()));
            }
        }
    }
    out
}

fn lookup<'a>(vars: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
    vars.iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

/// The region from an environment snapshot: `ALIBABA_CLOUD_REGION_ID`, else
/// `ALICLOUD_REGION`; empty values count as unset.
pub fn region_from_vars<I, K, V>(vars: I) -> Option<String>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let vars = relevant_vars(vars);
    REGION_VARS
        .iter()
        .find_map(|name| lookup(&vars, name))
        .map(str::to_owned)
}

#[derive(Clone)]
enum EnvFound {
    Nothing,
    Found {
        credentials: Credentials,
        from: &'static str,
    },
    Invalid(String),
}

/// Credentials from an environment snapshot (the library never reads the
/// process environment; rota-cli passes `std::env::vars()`).
///
/// `ALIBABA_CLOUD_ACCESS_KEY_ID` + `ALIBABA_CLOUD_ACCESS_KEY_SECRET` (with
/// `ALIBABA_CLOUD_SECURITY_TOKEN` when set) win; when neither of that pair is
/// set, `ALICLOUD_ACCESS_KEY` + `ALICLOUD_SECRET_KEY` (with
/// `ALICLOUD_SECURITY_TOKEN`) are used. Values are trimmed and an empty value
/// counts as unset. Half a pair (an id without its secret, or the reverse),
/// or a token without its pair, is an [`CredentialsError::Invalid`] naming
/// the variables: it is never silently skipped.
#[derive(Clone)]
pub struct EnvCredentials {
    found: EnvFound,
}

impl EnvCredentials {
    /// Reads the credential variables out of a snapshot of the environment.
    pub fn from_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let vars = relevant_vars(vars);
        let get = |name| lookup(&vars, name);
        for names in &ENV_NAMES {
            let found = match (get(names.id), get(names.secret)) {
                (Some(id), Some(secret)) => {
                    let mut c = Credentials::new(id, secret);
                    if let Some(token) = get(names.token) {
                        c = c.with_security_token(token);
                    }
                    EnvFound::Found {
                        credentials: c,
                        from: names.id,
                    }
                }
                (Some(_), None) => EnvFound::Invalid(format!(
                    "{} is set but {} is not; set both or neither",
                    names.id, names.secret
                )),
                (None, Some(_)) => EnvFound::Invalid(format!(
                    "{} is set but {} is not; set both or neither",
                    names.secret, names.id
                )),
                (None, None) if get(names.token).is_some() => EnvFound::Invalid(format!(
                    "{} is set but {} and {} are not",
                    names.token, names.id, names.secret
                )),
                (None, None) => continue,
            };
            return Self { found };
        }
        Self {
            found: EnvFound::Nothing,
        }
    }

    /// The credentials the snapshot holds: `Ok(None)` when no variable is set.
    pub fn credentials(&self) -> ProviderResult {
        match &self.found {
            EnvFound::Nothing => Ok(None),
            EnvFound::Found { credentials, .. } => Ok(Some(credentials.clone())),
            EnvFound::Invalid(reason) => {
                Err(CredentialsError::invalid(Self::places(), reason.clone()))
            }
        }
    }

    fn pairs() -> String {
        let pairs: Vec<String> = ENV_NAMES
            .iter()
            .map(|n| format!("{}/{}", n.id, n.secret))
            .collect();
        pairs.join(", ")
    }

    fn places() -> String {
        format!("environment ({})", Self::pairs())
    }
}

impl fmt::Debug for EnvCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("EnvCredentials");
        match &self.found {
            EnvFound::Nothing => d.field("found", &"nothing"),
            EnvFound::Found { credentials, from } => {
                d.field("from", from).field("credentials", credentials)
            }
            EnvFound::Invalid(reason) => d.field("invalid", reason),
        };
        d.finish()
    }
}

impl CredentialsProvider for EnvCredentials {
    fn describe(&self) -> String {
        let state = match &self.found {
            EnvFound::Nothing => "none set".to_owned(),
            EnvFound::Found { from, .. } => format!("using {from}"),
            EnvFound::Invalid(reason) => reason.clone(),
        };
        format!("environment ({}: {state})", Self::pairs())
    }

    fn provide(&self) -> BoxFuture<'_, ProviderResult> {
        let result = self.credentials();
        Box::pin(async move { result })
    }
}

// ------------------------------------------------------------- aliyun CLI

/// The aliyun CLI profile modes [`ProfileCredentials`] understands.
pub const SUPPORTED_PROFILE_MODES: &[&str] = &["AK", "StsToken"];

/// A profile read from the aliyun CLI configuration.
#[derive(Debug, Clone)]
pub struct AliyunProfile {
    /// The profile's name.
    pub name: String,
    /// Its credentials.
    pub credentials: Credentials,
    /// Its `region_id`, when set.
    pub region_id: Option<String>,
}

/// Credentials from the aliyun CLI configuration file
/// (`~/.aliyun/config.json`; the caller passes the path):
///
/// ```json
/// {"current": "default",
///  "profiles": [
///    {"name": "default", "mode": "AK", "access_key_id": "…",
///     "access_key_secret": "…", "region_id": "cn-hangzhou"},
///    {"name": "sts", "mode": "StsToken", "access_key_id": "STS.…",
///     "access_key_secret": "…", "sts_token": "…"}]}
/// ```
///
/// The profile used is the one named, else the file's `current`, else
/// `default`. Modes `AK` and `StsToken` are supported (an `StsToken`
/// profile's `sts_expiration`, in Unix seconds, becomes the expiry). A
/// missing file means "no credentials here"; an unreadable or malformed
/// file, an unknown profile or another mode is an error naming the file, the
/// profile and the supported modes.
pub struct ProfileCredentials {
    path: PathBuf,
    profile: Option<String>,
    note: Note,
}

impl ProfileCredentials {
    /// The profile `profile` (or the file's current one) in the file at `path`.
    pub fn new(path: impl Into<PathBuf>, profile: Option<String>) -> Self {
        Self {
            path: path.into(),
            profile: profile
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty()),
            note: Note::default(),
        }
    }

    /// Where the aliyun CLI keeps its configuration under a home directory.
    pub fn default_path(home: &Path) -> PathBuf {
        home.join(".aliyun").join("config.json")
    }

    /// The configuration file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn label(&self, name: Option<&str>) -> String {
        match name.or(self.profile.as_deref()) {
            Some(name) => format!("aliyun CLI profile {name:?} in {}", self.path.display()),
            None => format!("aliyun CLI current profile in {}", self.path.display()),
        }
    }

    /// Reads the file now: the selected profile, or `Ok(None)` when the file
    /// does not exist.
    pub fn load(&self) -> Result<Option<AliyunProfile>, CredentialsError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(CredentialsError::fetch(
                    self.label(None),
                    "cannot read the file",
                    Some(Box::new(e)),
                ));
            }
        };
        self.parse(&text).map(Some)
    }

    /// The selected profile's `region_id`: `Ok(None)` when the file does not
    /// exist or the profile has no region.
    pub fn region_id(&self) -> Result<Option<String>, CredentialsError> {
        Ok(self.load()?.and_then(|p| p.region_id))
    }

    fn parse(&self, text: &str) -> Result<AliyunProfile, CredentialsError> {
        // Parsed as a plain JSON value first: serde's syntax errors give a
        // position only, and no typed error can quote a field's value.
        let root: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            CredentialsError::invalid(
                self.label(None),
                format!(
                    "the file is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        let Some(root) = root.as_object() else {
            return Err(CredentialsError::invalid(
                self.label(None),
                "the file is not a JSON object",
            ));
        };
        let current = match root.get("current") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) if s.trim().is_empty() => None,
            Some(serde_json::Value::String(s)) => Some(s.trim()),
            Some(_) => {
                return Err(CredentialsError::invalid(
                    self.label(None),
                    "\"current\" is not a string",
                ));
            }
        };
        let name = self.profile.as_deref().or(current).unwrap_or("default");
        let label = self.label(Some(name));
        let profiles = root
            .get("profiles")
            .and_then(|p| p.as_array())
            .ok_or_else(|| {
                CredentialsError::invalid(&label, "the file has no \"profiles\" array")
            })?;
        let profile = profiles
            .iter()
            .find(|p| p.get("name").and_then(|n| n.as_str()) == Some(name))
            .ok_or_else(|| {
                let names: Vec<String> = profiles
                    .iter()
                    .filter_map(|p| p.get("name").and_then(|n| n.as_str()))
                    .map(|n| format!("{n:?}"))
                    .collect();
                let known = if names.is_empty() {
                    "the file has no profiles".to_owned()
                } else {
                    format!("profiles in the file: {}", names.join(", "))
                };
                CredentialsError::invalid(&label, format!("no such profile; {known}"))
            })?;
        let field = |key: &str| -> Result<Option<&str>, CredentialsError> {
            match profile.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => {
                    let s = s.trim();
                    Ok((!s.is_empty()).then_some(s))
                }
                Some(_) => Err(CredentialsError::invalid(
                    &label,
                    format!("\"{key}\" is not a string"),
                )),
            }
        };
        let required = |key: &str, mode: &str| -> Result<&str, CredentialsError> {
            field(key)?.ok_or_else(|| {
                CredentialsError::invalid(
                    &label,
                    format!("mode {mode} needs \"{key}\", which is missing or empty"),
                )
            })
        };
        let supported = SUPPORTED_PROFILE_MODES.join(", ");
        let credentials = match field("mode")? {
            Some("AK") => Credentials::new(
                required("access_key_id", "AK")?,
                required("access_key_secret", "AK")?,
            ),
            Some("StsToken") => {
                let mut c = Credentials::new(
                    required("access_key_id", "StsToken")?,
                    required("access_key_secret", "StsToken")?,
                )
                .with_security_token(required("sts_token", "StsToken")?);
                if let Some(secs) = profile
                    .get("sts_expiration")
                    .and_then(|v| v.as_u64())
                    .filter(|s| *s > 0)
                {
                    c = c.with_expiry(UNIX_EPOCH + Duration::from_secs(secs));
                }
                c
            }
            Some(other) => {
                return Err(CredentialsError::invalid(
                    &label,
                    format!("mode {other:?} is not supported; supported modes: {supported}"),
                ));
            }
            None => {
                return Err(CredentialsError::invalid(
                    &label,
                    format!(
                        "the profile has no mode (not configured?); supported modes: {supported}"
                    ),
                ));
            }
        };
        Ok(AliyunProfile {
            name: name.to_owned(),
            credentials,
            region_id: field("region_id")?.map(str::to_owned),
        })
    }
}

impl fmt::Debug for ProfileCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProfileCredentials")
            .field("path", &self.path)
            .field("profile", &self.profile)
            .finish()
    }
}

impl CredentialsProvider for ProfileCredentials {
    fn describe(&self) -> String {
        match self.note.get() {
            Some(note) => format!("{} ({note})", self.label(None)),
            None => self.label(None),
        }
    }

    fn provide(&self) -> BoxFuture<'_, ProviderResult> {
        Box::pin(async move {
            match self.load()? {
                Some(p) => {
                    self.note.clear();
                    Ok(Some(p.credentials))
                }
                None => {
                    self.note.set("file not found");
                    Ok(None)
                }
            }
        })
    }
}

// ----------------------------------------------------------- ECS RAM role

/// The instance metadata service of every ECS instance.
pub const ECS_METADATA_BASE_URL: &str = "http://100.100.100.200";

const ECS_CREDENTIALS_PATH: &str = "/latest/meta-data/ram/security-credentials/";

/// Hardened mode: `PUT` here (with [`ECS_TOKEN_TTL_HEADER`]) issues a token
/// that every metadata request then carries in [`ECS_TOKEN_HEADER`].
const ECS_TOKEN_PATH: &str = "/latest/api/token";
const ECS_TOKEN_TTL_HEADER: &str = "X-aliyun-ecs-metadata-token-ttl-seconds";
const ECS_TOKEN_HEADER: &str = "X-aliyun-ecs-metadata-token";
/// How long a metadata token lives (the service allows up to 6 hours); it
/// is asked for again a minute before it expires.
const ECS_TOKEN_TTL: Duration = Duration::from_secs(21_600);

/// While probing, how long an unreachable metadata service is not asked again.
const PROBE_QUIET_PERIOD: Duration = Duration::from_secs(60);

#[derive(Default)]
struct EcsState {
    client: Option<reqwest::Client>,
    discovered_role: Option<String>,
    cached: Option<Credentials>,
    quiet_until: Option<SystemTime>,
    /// The hardened-mode metadata token and when it expires (never logged).
    token: Option<(SecretString, SystemTime)>,
}

enum EcsFailure {
    /// The metadata service did not answer (connection failed or timed out).
    Unreachable(reqwest::Error),
    /// The instance has no RAM role attached.
    NoRole,
    Other(CredentialsError),
}

/// Credentials of the RAM role attached to the ECS instance, from the
/// instance metadata service:
///
/// - `GET {base}/latest/meta-data/ram/security-credentials/` names the role
///   when none was given;
/// - `GET {base}/latest/meta-data/ram/security-credentials/{role}` returns
///   `{"AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration", "Code"}`.
///
/// Requests use the service's hardened mode: a token from
/// `PUT {base}/latest/api/token` (6 hours, renewed a minute before it
/// expires) goes with every request. When the service issues no token the
/// provider falls back to plain requests, unless that was disabled with
/// [`EcsRamRoleCredentials::disable_imds_v1`] (then it is an error).
///
/// The credentials are cached and fetched again once they are within the
/// refresh margin (default 5 minutes) of their `Expiration`; concurrent
/// callers wait for one shared refresh. If a refresh fails while the cached
/// credentials have not expired yet, the cached ones are served (with a
/// warning in the trace).
///
/// # Explicit or probing
///
/// Built with [`EcsRamRoleCredentials::new`], the provider was asked for:
/// an unreachable metadata service, or an instance without a RAM role, is an
/// error. Built with [`EcsRamRoleCredentials::probe`] (what the default chain
/// uses when nothing else was configured), the same two situations mean "not
/// on an ECS instance with a role": the provider answers `Ok(None)`, notes why
/// for the chain's error, and does not probe again for a minute. Any other
/// failure (an error status, a malformed answer) is an error in both modes.
pub struct EcsRamRoleCredentials {
    role_name: Option<String>,
    base_url: String,
    refresh_margin: Duration,
    connect_timeout: Duration,
    request_timeout: Duration,
    probing: bool,
    imds_v1_disabled: bool,
    clock: CredentialsClock,
    state: tokio::sync::Mutex<EcsState>,
    note: Note,
}

impl EcsRamRoleCredentials {
    /// The role `role_name` (or the one attached to the instance), asked for
    /// explicitly: failures to reach the metadata service are errors.
    pub fn new(role_name: Option<String>) -> Self {
        Self {
            role_name: role_name
                .map(|r| r.trim().to_owned())
                .filter(|r| !r.is_empty()),
            base_url: ECS_METADATA_BASE_URL.to_owned(),
            refresh_margin: Duration::from_secs(5 * 60),
            connect_timeout: Duration::from_secs(1),
            request_timeout: Duration::from_secs(5),
            probing: false,
            imds_v1_disabled: false,
            clock: Arc::new(|| rota_clock::Clock::system_time(&rota_clock::SystemClock::new())),
            state: tokio::sync::Mutex::new(EcsState::default()),
            note: Note::default(),
        }
    }

    /// The attached role, probed for by the default chain: when the metadata
    /// service is unreachable or no role is attached, `Ok(None)`.
    pub fn probe() -> Self {
        Self::new(None).probing(true)
    }

    /// Whether an unreachable metadata service (or no attached role) means
    /// `Ok(None)` (probing) rather than an error.
    pub fn probing(mut self, yes: bool) -> Self {
        self.probing = yes;
        self
    }

    /// Where the metadata service is (default `http://100.100.100.200`);
    /// tests point it at a loopback server.
    pub fn metadata_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into().trim_end_matches('/').to_owned();
        self
    }

    /// How long before `Expiration` the credentials are fetched again (default 5 min).
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// TCP connect timeout for the metadata service (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Whole-request timeout for the metadata service (default 5 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Requires hardened mode: when the metadata service issues no token,
    /// fail instead of falling back to plain requests (the official SDKs'
    /// `ALIBABA_CLOUD_IMDSV1_DISABLED`).
    pub fn disable_imds_v1(mut self, disabled: bool) -> Self {
        self.imds_v1_disabled = disabled;
        self
    }

    /// The clock deciding freshness (tests fix it).
    pub fn clock(mut self, clock: CredentialsClock) -> Self {
        self.clock = clock;
        self
    }

    fn list_url(&self) -> String {
        format!("{}{ECS_CREDENTIALS_PATH}", self.base_url)
    }

    fn label(&self) -> String {
        let role = match &self.role_name {
            Some(r) => format!("{r:?}"),
            None => "attached".to_owned(),
        };
        format!("ECS instance RAM role {role} via {}", self.list_url())
    }

    async fn provide_inner(&self) -> ProviderResult {
        let mut state = self.state.lock().await;
        let now = (self.clock)();
        if let Some(c) = &state.cached
            && c.is_fresh(now, self.refresh_margin)
        {
            return Ok(Some(c.clone()));
        }
        if self.probing
            && state.cached.is_none()
            && state.quiet_until.is_some_and(|until| now < until)
        {
            return Ok(None);
        }
        match self.fetch(&mut state).await {
            Ok(c) => {
                self.note.clear();
                state.quiet_until = None;
                state.cached = Some(c.clone());
                Ok(Some(c))
            }
            Err(failure) => {
                // A refused or stale token may be the cause: the next
                // attempt asks for a new one.
                state.token = None;
                // Still-valid cached credentials beat an error.
                if let Some(c) = &state.cached
                    && c.is_fresh(now, Duration::ZERO)
                {
                    tracing::warn!(
                        credentials.provider = %self.label(),
                        "refreshing credentials failed; using the cached ones until they expire"
                    );
                    return Ok(Some(c.clone()));
                }
                match failure {
                    EcsFailure::Unreachable(e) if self.probing => {
                        tracing::debug!(error = %e, "no ECS metadata service");
                        self.note.set("metadata service unreachable");
                        state.quiet_until = now.checked_add(PROBE_QUIET_PERIOD);
                        Ok(None)
                    }
                    EcsFailure::NoRole if self.probing => {
                        self.note.set("no RAM role attached to the instance");
                        state.quiet_until = now.checked_add(PROBE_QUIET_PERIOD);
                        Ok(None)
                    }
                    EcsFailure::Unreachable(e) => Err(CredentialsError::fetch(
                        self.label(),
                        "the ECS metadata service is unreachable",
                        Some(Box::new(e)),
                    )),
                    EcsFailure::NoRole => Err(CredentialsError::invalid(
                        self.label(),
                        "no RAM role is attached to this instance",
                    )),
                    EcsFailure::Other(e) => Err(e),
                }
            }
        }
    }

    fn client(&self, state: &mut EcsState) -> Result<reqwest::Client, EcsFailure> {
        if let Some(c) = &state.client {
            return Ok(c.clone());
        }
        crate::http::install_crypto_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            // The metadata service is link-local: never through a proxy.
            .no_proxy()
            .user_agent(crate::wire::USER_AGENT)
            .build()
            .map_err(|e| {
                EcsFailure::Other(CredentialsError::fetch(
                    self.label(),
                    "cannot build the HTTP client",
                    Some(Box::new(e)),
                ))
            })?;
        state.client = Some(client.clone());
        Ok(client)
    }

    fn classify(&self, e: reqwest::Error) -> EcsFailure {
        let e = e.without_url();
        if e.is_connect() || e.is_timeout() {
            EcsFailure::Unreachable(e)
        } else {
            EcsFailure::Other(CredentialsError::fetch(
                self.label(),
                "the request to the metadata service failed",
                Some(Box::new(e)),
            ))
        }
    }

    async fn get(
        &self,
        client: &reqwest::Client,
        url: &str,
        token: Option<&SecretString>,
    ) -> Result<(u16, Vec<u8>), EcsFailure> {
        let mut request = client.get(url);
        if let Some(t) = token {
            request = request.header(ECS_TOKEN_HEADER, t.expose_secret());
        }
        let response = request.send().await.map_err(|e| self.classify(e))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| self.classify(e))?;
        Ok((status, body.to_vec()))
    }

    /// The hardened-mode token (cached until a minute before it expires),
    /// or `None` when the service issues none and plain requests are
    /// allowed.
    async fn token(
        &self,
        client: &reqwest::Client,
        state: &mut EcsState,
    ) -> Result<Option<SecretString>, EcsFailure> {
        let now = (self.clock)();
        if let Some((t, until)) = &state.token
            && now + Duration::from_secs(60) < *until
        {
            return Ok(Some(t.clone()));
        }
        state.token = None;
        let response = client
            .put(format!("{}{ECS_TOKEN_PATH}", self.base_url))
            .header(ECS_TOKEN_TTL_HEADER, ECS_TOKEN_TTL.as_secs().to_string())
            .send()
            .await
            .map_err(|e| self.classify(e))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| self.classify(e))?;
        let token = std::str::from_utf8(&body)
            .map(str::trim)
            .unwrap_or_default();
        let usable = status == 200
            && !token.is_empty()
            && token.len() <= 4096
            && token.bytes().all(|b| b.is_ascii_graphic());
        if usable {
            let token = SecretString::new(token);
            state.token = Some((token.clone(), now + ECS_TOKEN_TTL));
            return Ok(Some(token));
        }
        if self.imds_v1_disabled {
            return Err(EcsFailure::Other(CredentialsError::fetch(
                self.label(),
                format!(
                    "the metadata service issued no token (HTTP {status}) and plain requests are disabled (ALIBABA_CLOUD_IMDSV1_DISABLED)"
                ),
                None,
            )));
        }
        tracing::debug!(
            status,
            "the ECS metadata service issued no token; plain requests"
        );
        Ok(None)
    }

    async fn fetch(&self, state: &mut EcsState) -> Result<Credentials, EcsFailure> {
        let client = self.client(state)?;
        let token = self.token(&client, state).await?;
        let role = match (&self.role_name, &state.discovered_role) {
            (Some(r), _) | (None, Some(r)) => r.clone(),
            (None, None) => {
                let r = self.discover_role(&client, token.as_ref()).await?;
                state.discovered_role = Some(r.clone());
                r
            }
        };
        let (status, body) = self
            .get(
                &client,
                &format!("{}{role}", self.list_url()),
                token.as_ref(),
            )
            .await?;

        let fail =
            |reason: String| EcsFailure::Other(CredentialsError::fetch(self.label(), reason, None));
        if status == 404 {
            // The role may have been detached or replaced: ask again next time.
            state.discovered_role = None;
            return Err(EcsFailure::Other(CredentialsError::invalid(
                self.label(),
                format!("the metadata service has no credentials for role {role:?} (HTTP 404)"),
            )));
        }
        if status != 200 {
            return Err(fail(format!(
                "the metadata service answered HTTP {status} for role {role:?}"
            )));
        }
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
            fail(format!(
                "the credentials of role {role:?} are not JSON ({} bytes)",
                body.len()
            ))
        })?;
        let text = |key: &str| {
            v.get(key)
                .and_then(|x| x.as_str())
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        if let Some(code) = text("Code")
            && code != "Success"
        {
            let code: String = code.chars().take(64).collect();
            return Err(fail(format!(
                "the metadata service answered Code {code:?} for role {role:?}"
            )));
        }
        let missing = |key: &str| fail(format!("the credentials of role {role:?} have no {key}"));
        let id = text("AccessKeyId").ok_or_else(|| missing("AccessKeyId"))?;
        let secret = text("AccessKeySecret").ok_or_else(|| missing("AccessKeySecret"))?;
        let token = text("SecurityToken").ok_or_else(|| missing("SecurityToken"))?;
        let expiration = text("Expiration").ok_or_else(|| missing("Expiration"))?;
        let expires_at = chrono::DateTime::parse_from_rfc3339(expiration)
            .map_err(|_| {
                fail(format!(
                    "the Expiration of role {role:?} is not an RFC 3339 time"
                ))
            })?
            .with_timezone(&chrono::Utc);
        tracing::debug!(credentials.role = %role, expires_at = %expires_at, "fetched ECS RAM role credentials");
        Ok(Credentials::new(id, secret)
            .with_security_token(token)
            .with_expiry(SystemTime::from(expires_at)))
    }

    async fn discover_role(
        &self,
        client: &reqwest::Client,
        token: Option<&SecretString>,
    ) -> Result<String, EcsFailure> {
        let (status, body) = self.get(client, &self.list_url(), token).await?;
        if status == 404 {
            return Err(EcsFailure::NoRole);
        }
        if status != 200 {
            return Err(EcsFailure::Other(CredentialsError::fetch(
                self.label(),
                format!("listing the RAM role answered HTTP {status}"),
                None,
            )));
        }
        let text = String::from_utf8_lossy(&body);
        let Some(role) = text.lines().map(str::trim).find(|l| !l.is_empty()) else {
            return Err(EcsFailure::NoRole);
        };
        let valid = role.len() <= 64
            && role
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
        if !valid {
            return Err(EcsFailure::Other(CredentialsError::fetch(
                self.label(),
                "the metadata service's role listing is not a RAM role name",
                None,
            )));
        }
        Ok(role.to_owned())
    }
}

impl fmt::Debug for EcsRamRoleCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcsRamRoleCredentials")
            .field("role_name", &self.role_name)
            .field("base_url", &self.base_url)
            .field("refresh_margin", &self.refresh_margin)
            .field("probing", &self.probing)
            .finish_non_exhaustive()
    }
}

impl CredentialsProvider for EcsRamRoleCredentials {
    fn describe(&self) -> String {
        match self.note.get() {
            Some(note) => format!("{} ({note})", self.label()),
            None => self.label(),
        }
    }

    fn provide(&self) -> BoxFuture<'_, ProviderResult> {
        Box::pin(self.provide_inner())
    }
}

// -------------------------------------------------------------------- chain

/// Providers asked in order; the first that yields credentials wins.
#[derive(Debug, Default)]
pub struct CredentialsChain {
    providers: Vec<Box<dyn CredentialsProvider>>,
}

impl CredentialsChain {
    /// An empty chain.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a provider.
    pub fn with(mut self, provider: impl CredentialsProvider + 'static) -> Self {
        self.providers.push(Box::new(provider));
        self
    }

    /// The standard chain (see the module docs), in this order:
    ///
    /// 1. `static_credentials`, when given (keys from configuration);
    /// 2. the environment snapshot `env_vars` ([`EnvCredentials`]);
    /// 3. the aliyun CLI profile `profile` (else the current one) in the file
    ///    at `aliyun_config_path`, when a path is given ([`ProfileCredentials`]);
    /// 4. `ecs`, when given: normally [`EcsRamRoleCredentials::probe`], which
    ///    answers "nothing here" off ECS instead of failing.
    pub fn default_chain<I, K, V>(
        static_credentials: Option<Credentials>,
        env_vars: I,
        aliyun_config_path: Option<PathBuf>,
        profile: Option<String>,
        ecs: Option<EcsRamRoleCredentials>,
    ) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut chain = Self::new();
        if let Some(c) = static_credentials {
            chain = chain.with(StaticCredentials::new(c));
        }
        chain = chain.with(EnvCredentials::from_vars(env_vars));
        if let Some(path) = aliyun_config_path {
            chain = chain.with(ProfileCredentials::new(path, profile));
        }
        if let Some(ecs) = ecs {
            chain = chain.with(ecs);
        }
        chain
    }

    /// What each provider looks at, in order.
    pub fn describe_each(&self) -> Vec<String> {
        self.providers.iter().map(|p| p.describe()).collect()
    }

    /// Asks each provider in turn. When none has credentials, the error lists
    /// every place looked; a provider's error stops the chain.
    pub async fn credentials(&self) -> Result<Credentials, CredentialsError> {
        let mut looked = Vec::with_capacity(self.providers.len());
        for p in &self.providers {
            if let Some(c) = p.provide().await? {
                tracing::trace!(credentials.source = %p.describe(), "credentials found");
                return Ok(c);
            }
            looked.push(p.describe());
        }
        Err(CredentialsError::NotFound { looked })
    }
}

impl CredentialsProvider for CredentialsChain {
    fn describe(&self) -> String {
        format!("chain [{}]", self.describe_each().join(", "))
    }

    /// Like [`CredentialsChain::credentials`]: when no provider has
    /// credentials this is a `NotFound` error listing every place looked
    /// (not `Ok(None)`), so the transport reports each of them.
    fn provide(&self) -> BoxFuture<'_, ProviderResult> {
        Box::pin(async move { self.credentials().await.map(Some) })
    }
}

//! Who is calling, and whether a secret's policy lets them.
//!
//! **Access keys.** The registry holds the root access key (principal
//! `acs:ram::<account>:root`) and the world's `access_key` blocks (principal
//! `acs:ram::<account>:user/<user>`, or root when no user is given).
//!
//! **Secret policies** (SetSecretPolicy / GetSecretPolicy, kms-api.md §3.13)
//! are validated and enforced. A policy is
//! `{"Version":"1","Statement":[{"Sid","Effect":"Allow|Deny","Principal":{"RAM":[arn…]},"Action":["kms:…"],"Resource":["*"],"Condition":{…}}]}`;
//! `Principal.RAM`, `Action` and `Resource` may be a string or a list.
//! Evaluation, for a secret that has a policy:
//! - a matching `Deny` statement refuses (explicit deny wins);
//! - otherwise a matching `Allow` statement is required;
//! - otherwise the request is refused (`Forbidden.NoPermission`).
//!
//! A statement matches when one of its principals and one of its actions
//! match; `*` and `?` are wildcards (`kms:*`, `acs:ram::123:user/*`, `*`),
//! and actions compare case-insensitively. `Condition` blocks are validated
//! as objects but **not evaluated**: a statement with a condition applies
//! unconditionally (stated choice: the local world has no request context
//! such as source IPs or VPCs to test them against).
//!
//! **The account owner is never locked out**: the root principal may always
//! call `SetSecretPolicy` and `GetSecretPolicy` (and so repair a policy), even
//! when the policy denies it everything else. Secrets without a policy are
//! open to every registered access key (RAM users of this world have no
//! permission policies).
//!
//! **Identity policies** ([`IdentityPolicy`]) bound what temporary (STS)
//! credentials may do: the assumed role's `policy` from the world file and
//! the inline `Policy` given to AssumeRole. A request made with such
//! credentials must be allowed by each of them (the session's permissions
//! are their intersection), and by the secret's policy as for anyone. A
//! statement is `{"Effect":"Allow|Deny","Action":…,"Resource":…}`
//! (strings or lists, `*` and `?` wildcards, actions compared
//! case-insensitively; `Condition` is accepted and not evaluated, as for
//! secret policies); a matching `Deny` refuses, otherwise a matching
//! `Allow` is needed. The resource of a request is its secret's ARN
//! (`acs:kms:<region>:<account>:secret/<name>`) or key's ARN, else `*`.

use crate::errors::ServiceError;

pub use rota_kms::policy::{MAX_POLICY_BYTES, SecretPolicy};

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The access key id that signed the request.
    pub access_key_id: String,
    /// Its principal ARN.
    pub principal: String,
    /// Whether the principal is the account root.
    pub is_root: bool,
    /// Identity policies that must each allow what it does (temporary
    /// credentials: the role's policy and the session's); empty: no bound
    /// beyond secret policies.
    pub policies: Vec<std::sync::Arc<IdentityPolicy>>,
}

impl Caller {
    /// A caller bound by no identity policy.
    pub fn new(
        access_key_id: impl Into<String>,
        principal: impl Into<String>,
        is_root: bool,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            principal: principal.into(),
            is_root,
            policies: Vec::new(),
        }
    }

    /// Whether `policy` lets this caller perform `action`.
    pub fn may(&self, policy: &SecretPolicy, action: &str) -> bool {
        policy.allows(&self.principal, self.is_root, action)
    }

    /// Whether this caller's identity policies let it perform `action`
    /// (`kms:GetSecretValue`) on `resource` (an ARN, or `*`).
    pub fn permitted(&self, action: &str, resource: &str) -> bool {
        self.policies.iter().all(|p| p.allows(action, resource))
            && !self.policies.iter().any(|p| p.denies(action, resource))
    }
}

/// One statement of an identity policy.
#[derive(Debug, Clone, PartialEq, Eq)]
struct IdentityStatement {
    allow: bool,
    actions: Vec<String>,
    resources: Vec<String>,
}

/// A RAM permission policy (what a role, or a session, may do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityPolicy {
    statements: Vec<IdentityStatement>,
}

/// The strings of a policy field that is a string or a list of strings.
fn policy_strings(v: &serde_json::Value, what: &str) -> Result<Vec<String>, String> {
    match v {
        serde_json::Value::String(s) => Ok(vec![s.clone()]),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{what} must hold strings"))
            })
            .collect(),
        _ => Err(format!("{what} must be a string or a list of strings")),
    }
}

impl IdentityPolicy {
    /// Parses a policy document
    /// (`{"Version":"1","Statement":[{"Effect","Action","Resource"}]}`).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(format!("is longer than {MAX_POLICY_BYTES} bytes"));
        }
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("is not JSON: {e}"))?;
        Self::from_json(&v)
    }

    /// Reads a policy document already parsed as JSON.
    pub fn from_json(v: &serde_json::Value) -> Result<Self, String> {
        let obj = v.as_object().ok_or("must be a JSON object")?;
        for k in obj.keys() {
            if k != "Version" && k != "Statement" {
                return Err(format!("unknown field {k:?} (known: Version, Statement)"));
            }
        }
        match obj.get("Version").and_then(serde_json::Value::as_str) {
            Some("1") => {}
            _ => return Err("Version must be \"1\"".into()),
        }
        let list = match obj.get("Statement") {
            Some(serde_json::Value::Array(l)) => l.clone(),
            Some(o @ serde_json::Value::Object(_)) => vec![o.clone()],
            _ => return Err("Statement must be a list of statements".into()),
        };
        let mut statements = Vec::with_capacity(list.len());
        for (i, st) in list.iter().enumerate() {
            let what = format!("Statement[{i}]");
            let st = st
                .as_object()
                .ok_or_else(|| format!("{what} must be an object"))?;
            for k in st.keys() {
                if !["Effect", "Action", "Resource", "Condition", "Sid"].contains(&k.as_str()) {
                    return Err(format!(
                        "{what}: unknown field {k:?} (known: Effect, Action, Resource, Condition)"
                    ));
                }
            }
            let allow = match st.get("Effect").and_then(serde_json::Value::as_str) {
                Some("Allow") => true,
                Some("Deny") => false,
                _ => return Err(format!("{what}.Effect must be Allow or Deny")),
            };
            let actions = policy_strings(
                st.get("Action")
                    .ok_or_else(|| format!("{what}.Action is required"))?,
                &format!("{what}.Action"),
            )?;
            let resources = match st.get("Resource") {
                Some(r) => policy_strings(r, &format!("{what}.Resource"))?,
                None => vec!["*".to_owned()],
            };
            statements.push(IdentityStatement {
                allow,
                actions: actions.iter().map(|a| a.to_ascii_lowercase()).collect(),
                resources,
            });
        }
        Ok(Self { statements })
    }

    fn matching(&self, allow: bool, action: &str, resource: &str) -> bool {
        let action = action.to_ascii_lowercase();
        self.statements.iter().any(|s| {
            s.allow == allow
                && s.actions.iter().any(|a| wildcard_match(a, &action))
                && s.resources.iter().any(|r| wildcard_match(r, resource))
        })
    }

    /// Whether an `Allow` statement covers `action` on `resource`.
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        self.matching(true, action, resource)
    }

    /// Whether a `Deny` statement covers `action` on `resource`.
    pub fn denies(&self, action: &str, resource: &str) -> bool {
        self.matching(false, action, resource)
    }
}

/// Parses a policy document, refusing an invalid one as KMS does
/// (`InvalidParameter` on `Policy`).
pub fn parse_policy(text: &str) -> Result<SecretPolicy, ServiceError> {
    SecretPolicy::parse(text).map_err(|e| ServiceError::invalid("Policy", e.0))
}

/// `*` matches any run of characters, `?` any one character.
pub use rota_kms::pattern::wildcard_match;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("kms:*", "kms:getsecretvalue"));
        assert!(wildcard_match("acs:ram::1:user/*", "acs:ram::1:user/alice"));
        assert!(!wildcard_match("acs:ram::1:user/*", "acs:ram::1:root"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(wildcard_match("*", ""));
    }

    #[test]
    fn identity_policies_allow_what_they_name_and_deny_wins() {
        let p = IdentityPolicy::parse(
            r#"{"Version":"1","Statement":[
                {"Effect":"Allow","Action":["kms:GetSecretValue","kms:Describe*"],"Resource":"acs:kms:*:*:secret/app/*"},
                {"Effect":"Deny","Action":"kms:*","Resource":["acs:kms:*:*:secret/app/root-*"]}]}"#,
        )
        .unwrap();
        let arn = |n: &str| format!("acs:kms:cn-hangzhou:1:secret/{n}");
        assert!(p.allows("kms:getsecretvalue", &arn("app/db")));
        assert!(p.allows("kms:DescribeSecret", &arn("app/db")));
        assert!(!p.allows("kms:PutSecretValue", &arn("app/db")));
        assert!(!p.allows("kms:GetSecretValue", &arn("other/db")));
        let c = Caller {
            policies: vec![std::sync::Arc::new(p)],
            ..Caller::new("STS.x", "acs:ram::1:assumed-role/r/s", false)
        };
        assert!(c.permitted("kms:GetSecretValue", &arn("app/db")));
        assert!(!c.permitted("kms:GetSecretValue", &arn("app/root-key")));
        assert!(Caller::new("LTAI", "acs:ram::1:user/u", false).permitted("kms:Anything", "*"));
        for bad in [
            "[]",
            r#"{"Version":"2","Statement":[]}"#,
            r#"{"Version":"1","Statement":[{"Effect":"Maybe","Action":"*"}]}"#,
            r#"{"Version":"1","Statement":[{"Effect":"Allow"}]}"#,
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Principal":"*"}]}"#,
        ] {
            assert!(IdentityPolicy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn invalid_policies_are_invalid_parameters() {
        assert_eq!(
            parse_policy("not json").unwrap_err().code(),
            "InvalidParameter"
        );
    }
}

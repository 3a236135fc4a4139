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
//! open to every registered access key (this world has no RAM policies).

use serde_json::Value;

use crate::errors::ServiceError;

/// Largest policy document, in bytes.
pub const MAX_POLICY_BYTES: usize = 32_768;

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The access key id that signed the request.
    pub access_key_id: String,
    /// Its principal ARN.
    pub principal: String,
    /// Whether the principal is the account root.
    pub is_root: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    effect: Effect,
    principals: Vec<String>,
    actions: Vec<String>,
}

/// A parsed, validated secret policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretPolicy {
    statements: Vec<Statement>,
}

/// Actions the root principal keeps whatever the policy says.
const OWNER_ACTIONS: &[&str] = &["SetSecretPolicy", "GetSecretPolicy"];

fn bad(reason: impl Into<String>) -> ServiceError {
    ServiceError::invalid("Policy", reason)
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, ServiceError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) if !a.is_empty() => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad(format!("{what} entries must be strings")))
            })
            .collect(),
        _ => Err(bad(format!("{what} must be a string or a non-empty list"))),
    }
}

impl SecretPolicy {
    /// Parses and validates a policy document.
    pub fn parse(text: &str) -> Result<Self, ServiceError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(bad(format!("is larger than {MAX_POLICY_BYTES} bytes")));
        }
        let doc: Value = serde_json::from_str(text).map_err(|_| bad("is not valid JSON"))?;
        let obj = doc
            .as_object()
            .ok_or_else(|| bad("must be a JSON object"))?;
        for k in obj.keys() {
            if k != "Version" && k != "Statement" {
                return Err(bad(format!(
                    "unknown field {k:?} (known: Version, Statement)"
                )));
            }
        }
        match obj.get("Version") {
            Some(Value::String(v)) if v == "1" => {}
            _ => return Err(bad("Version must be \"1\"")),
        }
        let stmts = match obj.get("Statement") {
            Some(Value::Array(a)) if !a.is_empty() => a,
            _ => return Err(bad("Statement must be a non-empty list")),
        };
        let mut statements = Vec::with_capacity(stmts.len());
        for s in stmts {
            let s = s
                .as_object()
                .ok_or_else(|| bad("each statement must be an object"))?;
            for k in s.keys() {
                if ![
                    "Sid",
                    "Effect",
                    "Principal",
                    "Action",
                    "Resource",
                    "Condition",
                ]
                .contains(&k.as_str())
                {
                    return Err(bad(format!("unknown statement field {k:?}")));
                }
            }
            if let Some(sid) = s.get("Sid") {
                let sid = sid.as_str().ok_or_else(|| bad("Sid must be a string"))?;
                if sid.chars().count() > 128 {
                    return Err(bad("Sid is longer than 128 characters"));
                }
            }
            let effect = match s.get("Effect").and_then(Value::as_str) {
                Some("Allow") => Effect::Allow,
                Some("Deny") => Effect::Deny,
                _ => return Err(bad("Effect must be Allow or Deny")),
            };
            let principals = match s.get("Principal") {
                Some(Value::String(star)) if star == "*" => vec!["*".to_owned()],
                Some(Value::Object(p)) => {
                    let ram = p
                        .get("RAM")
                        .ok_or_else(|| bad("Principal must have a RAM list"))?;
                    strings(ram, "Principal.RAM")?
                }
                _ => return Err(bad("Principal must be {\"RAM\":[…]} or \"*\"")),
            };
            let actions = strings(
                s.get("Action").ok_or_else(|| bad("Action is required"))?,
                "Action",
            )?;
            for a in &actions {
                if !a.to_ascii_lowercase().starts_with("kms:") {
                    return Err(bad(format!("action {a:?} does not start with kms:")));
                }
            }
            if let Some(r) = s.get("Resource") {
                strings(r, "Resource")?;
            }
            if let Some(c) = s.get("Condition")
                && !c.is_object()
            {
                return Err(bad("Condition must be an object"));
            }
            statements.push(Statement {
                effect,
                principals,
                actions,
            });
        }
        Ok(Self { statements })
    }

    /// Whether `caller` may perform `action` (the bare action name,
    /// e.g. `GetSecretValue`).
    pub fn allows(&self, caller: &Caller, action: &str) -> bool {
        if caller.is_root && OWNER_ACTIONS.contains(&action) {
            return true;
        }
        let qualified = format!("kms:{action}").to_ascii_lowercase();
        let matching = |st: &&Statement| {
            st.principals
                .iter()
                .any(|p| wildcard_match(p, &caller.principal))
                && st
                    .actions
                    .iter()
                    .any(|a| wildcard_match(&a.to_ascii_lowercase(), &qualified))
        };
        let mut allowed = false;
        for st in self.statements.iter().filter(matching) {
            match st.effect {
                Effect::Deny => return false,
                Effect::Allow => allowed = true,
            }
        }
        allowed
    }
}

/// `*` matches any run of characters, `?` any one character.
pub use rota_kms::pattern::wildcard_match;

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(principal: &str, is_root: bool) -> Caller {
        Caller {
            access_key_id: "AK".into(),
            principal: principal.into(),
            is_root,
        }
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("kms:*", "kms:getsecretvalue"));
        assert!(wildcard_match("acs:ram::1:user/*", "acs:ram::1:user/alice"));
        assert!(!wildcard_match("acs:ram::1:user/*", "acs:ram::1:root"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(wildcard_match("*", ""));
    }

    #[test]
    fn deny_wins_allow_required_owner_kept() {
        let p = SecretPolicy::parse(
            r#"{"Version":"1","Statement":[
              {"Sid":"a","Effect":"Allow","Principal":{"RAM":["acs:ram::1:*"]},"Action":["kms:*"],"Resource":["*"]},
              {"Effect":"Deny","Principal":{"RAM":"acs:ram::1:user/bob"},"Action":"kms:GetSecretValue","Resource":["*"]}
            ]}"#,
        )
        .unwrap();
        let alice = caller("acs:ram::1:user/alice", false);
        let bob = caller("acs:ram::1:user/bob", false);
        let eve = caller("acs:ram::2:user/eve", false);
        assert!(p.allows(&alice, "GetSecretValue"));
        assert!(!p.allows(&bob, "GetSecretValue"));
        assert!(p.allows(&bob, "DescribeSecret"));
        assert!(!p.allows(&eve, "DescribeSecret"));

        let deny_root = SecretPolicy::parse(
            r#"{"Version":"1","Statement":[{"Effect":"Deny","Principal":{"RAM":["*"]},"Action":["kms:*"]}]}"#,
        )
        .unwrap();
        let root = caller("acs:ram::1:root", true);
        assert!(!deny_root.allows(&root, "GetSecretValue"));
        assert!(deny_root.allows(&root, "SetSecretPolicy"));
    }

    #[test]
    fn invalid_policies_are_refused() {
        for text in [
            "not json",
            "[]",
            r#"{"Version":"2","Statement":[]}"#,
            r#"{"Version":"1","Statement":[]}"#,
            r#"{"Version":"1","Statement":[{"Effect":"Maybe","Principal":{"RAM":["*"]},"Action":["kms:*"]}]}"#,
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["*"]},"Action":["ecs:*"]}]}"#,
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":["kms:*"]}]}"#,
        ] {
            assert_eq!(
                SecretPolicy::parse(text).unwrap_err().code(),
                "InvalidParameter",
                "{text}"
            );
        }
    }
}

//! Secret policies (SetSecretPolicy / GetSecretPolicy, kms-api.md §3.13):
//! the document's model, validation and evaluation, shared by the local
//! cloud (which enforces them) and the lifecycle engine (which warns
//! before applying a policy that locks Rota out).
//!
//! A policy is
//! `{"Version":"1","Statement":[{"Sid","Effect":"Allow|Deny","Principal":{"RAM":[arn…]},"Action":["kms:…"],"Resource":["*"],"Condition":{…}}]}`;
//! `Principal.RAM`, `Action` and `Resource` may be a string or a list.
//! Evaluation:
//! - a matching `Deny` statement refuses (explicit deny wins);
//! - otherwise a matching `Allow` statement is required;
//! - otherwise the request is refused.
//!
//! A statement matches when one of its principals and one of its actions
//! match; `*` and `?` are wildcards (`kms:*`, `acs:ram::123:user/*`, `*`),
//! and actions compare case-insensitively. `Condition` blocks are validated
//! as objects but not evaluated. The account root may always call
//! [`OWNER_ACTIONS`], so it can repair a policy.

use serde_json::Value;

use crate::pattern::wildcard_match;

/// Largest policy document, in bytes.
pub const MAX_POLICY_BYTES: usize = 32_768;

/// Why a policy document is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

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
pub const OWNER_ACTIONS: &[&str] = &["SetSecretPolicy", "GetSecretPolicy"];

fn bad(reason: impl Into<String>) -> PolicyError {
    PolicyError(reason.into())
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
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
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
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

    /// Whether `principal` (an ARN; `is_root` for the account root) may
    /// perform `action` (the bare action name, e.g. `GetSecretValue`).
    pub fn allows(&self, principal: &str, is_root: bool, action: &str) -> bool {
        if is_root && OWNER_ACTIONS.contains(&action) {
            return true;
        }
        let qualified = format!("kms:{action}").to_ascii_lowercase();
        let matching = |st: &&Statement| {
            st.principals.iter().any(|p| wildcard_match(p, principal))
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

impl SecretPolicy {
    /// The principals the policy names in `Allow` statements (patterns
    /// taken as written), `*` first when present.
    pub fn allowed_principals(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for st in self.statements.iter().filter(|s| s.effect == Effect::Allow) {
            for p in &st.principals {
                if !out.contains(&p.as_str()) {
                    out.push(p);
                }
            }
        }
        out.sort_by_key(|p| *p != "*");
        out
    }

    /// Of `actions`, those no principal the policy allows anything to may
    /// perform all of: for the principal allowed the most of them, the
    /// ones it is refused. Empty when some principal may perform them all.
    /// (The caller's own identity is not known to a plan: this tells
    /// whether the policy lets anyone manage the secret at all.)
    pub fn refused_to_everyone<'a>(&self, actions: &[&'a str]) -> Vec<&'a str> {
        let mut best: Option<Vec<&'a str>> = None;
        for p in self.allowed_principals() {
            let refused: Vec<&'a str> = actions
                .iter()
                .copied()
                .filter(|a| !self.allows(p, false, a))
                .collect();
            if best.as_ref().is_none_or(|b| refused.len() < b.len()) {
                best = Some(refused);
            }
        }
        best.unwrap_or_else(|| actions.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_wins_allow_required_owner_kept() {
        let p = SecretPolicy::parse(
            r#"{"Version":"1","Statement":[
              {"Sid":"a","Effect":"Allow","Principal":{"RAM":["acs:ram::1:*"]},"Action":["kms:*"],"Resource":["*"]},
              {"Effect":"Deny","Principal":{"RAM":"acs:ram::1:user/bob"},"Action":"kms:GetSecretValue","Resource":["*"]}
            ]}"#,
        )
        .unwrap();
        assert!(p.allows("acs:ram::1:user/alice", false, "GetSecretValue"));
        assert!(!p.allows("acs:ram::1:user/bob", false, "GetSecretValue"));
        assert!(p.allows("acs:ram::1:user/bob", false, "DescribeSecret"));
        assert!(!p.allows("acs:ram::2:user/eve", false, "DescribeSecret"));

        let deny_root = SecretPolicy::parse(
            r#"{"Version":"1","Statement":[{"Effect":"Deny","Principal":{"RAM":["*"]},"Action":["kms:*"]}]}"#,
        )
        .unwrap();
        assert!(!deny_root.allows("acs:ram::1:root", true, "GetSecretValue"));
        assert!(deny_root.allows("acs:ram::1:root", true, "SetSecretPolicy"));
    }

    #[test]
    fn what_no_one_may_do() {
        let only_read = SecretPolicy::parse(
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["*"]},"Action":["kms:GetSecretValue"]}]}"#,
        )
        .unwrap();
        assert_eq!(
            only_read.refused_to_everyone(&["DescribeSecret", "GetSecretValue", "PutSecretValue"]),
            ["DescribeSecret", "PutSecretValue"]
        );
        let admin = SecretPolicy::parse(
            r#"{"Version":"1","Statement":[
              {"Effect":"Allow","Principal":{"RAM":["*"]},"Action":["kms:GetSecretValue"]},
              {"Effect":"Allow","Principal":{"RAM":["acs:ram::1:user/ops"]},"Action":["kms:*"]}
            ]}"#,
        )
        .unwrap();
        assert!(
            admin
                .refused_to_everyone(&["DescribeSecret", "GetSecretValue", "PutSecretValue"])
                .is_empty()
        );
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
            assert!(SecretPolicy::parse(text).is_err(), "{text}");
        }
    }
}

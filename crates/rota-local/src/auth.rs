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
}

impl Caller {
    /// Whether `policy` lets this caller perform `action`.
    pub fn may(&self, policy: &SecretPolicy, action: &str) -> bool {
        policy.allows(&self.principal, self.is_root, action)
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
    fn invalid_policies_are_invalid_parameters() {
        assert_eq!(
            parse_policy("not json").unwrap_err().code(),
            "InvalidParameter"
        );
    }
}

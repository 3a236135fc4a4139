//! STS in the local world (API version 2015-04-01): AssumeRole for the
//! roles the world file declares, GetCallerIdentity, and the temporary
//! credentials they hand out (also to the ECS metadata service).
//!
//! **AssumeRole.** `RoleArn` (`acs:ram::<account>:role/<name>`, the name
//! matched case-insensitively), `RoleSessionName` (2 to 64 of letters,
//! digits, `.`, `@`, `-`, `_`), `DurationSeconds` (900 to the role's
//! `max_session_duration`, default 3600) and an optional inline `Policy`
//! that narrows the session (at most 2048 bytes). The caller's principal
//! must be named by the role's trust policy (a RAM principal pattern;
//! `acs:ram::<account>:root` trusts every principal of the account). The
//! session's principal is `acs:ram::<account>:assumed-role/<role>/<session>`
//! and it may do what both the role's `policy` and the inline `Policy`
//! allow (and what secret policies allow that principal). Codes:
//! `EntityNotExist.Role` (404), `NoPermission` (403),
//! `InvalidParameter.RoleArn`, `.RoleSessionName`, `.DurationSeconds`,
//! `.PolicyGrammar` (400).
//!
//! **Temporary credentials.** An access key id `STS.<24 characters>`, a
//! secret, and a security token, valid until `Expiration`. Every request
//! signed with such a key must carry the token (`SecurityToken` in V1,
//! `x-acs-security-token` in V3; both are covered by the signature):
//! without it `MissingSecurityToken`, another session's token
//! `InvalidSecurityToken.MismatchWithAccessKey`, anything else
//! `InvalidSecurityToken.Malformed` (400), and past its expiry
//! `InvalidSecurityToken.Expired` (403). Sessions live in memory: a
//! restart of the local cloud ends them (clients assume the role again).
//! An expired session is forgotten a day after its expiry (its key then
//! answers `InvalidAccessKeyId.NotFound`); at most 100,000 live at once.

use std::sync::Arc;

use base64::Engine as _;
use rota_kms::SecretString;
use serde_json::{Value, json};

use super::{AccessKey, Engine, Signer, wire};
use crate::auth::{Caller, IdentityPolicy, wildcard_match};
use crate::errors::ServiceError;
use crate::params::Params;
use crate::world::RamRoleDecl;

/// The STS API version.
pub(crate) const STS_VERSION: &str = "2015-04-01";
/// The service principal of ECS instance roles.
pub(crate) const ECS_SERVICE: &str = "ecs.aliyuncs.com";
/// Most sessions alive at once.
const MAX_SESSIONS: usize = 100_000;
/// How long an expired session is remembered (so its requests answer
/// `Expired` rather than an unknown key).
const KEEP_EXPIRED_SECS: i64 = 86_400;
/// Longest inline session policy.
const MAX_SESSION_POLICY_BYTES: usize = 2048;

/// The token of a temporary access key and when it expires.
#[derive(Debug)]
pub(crate) struct Session {
    token: SecretString,
    /// Seconds since the epoch.
    pub(crate) expires: i64,
}

/// Temporary credentials as handed out.
pub(crate) struct Issued {
    pub(crate) access_key_id: String,
    pub(crate) access_key_secret: SecretString,
    pub(crate) security_token: SecretString,
    /// Seconds since the epoch.
    pub(crate) expires: i64,
    pub(crate) principal: String,
    pub(crate) assumed_role_id: String,
}

fn random_alnum(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| ALPHABET[rand::random::<u8>() as usize % ALPHABET.len()] as char)
        .collect()
}

/// A token that names its access key (so that another session's token is
/// told apart from garbage) followed by 32 random bytes.
fn new_token(access_key_id: &str) -> String {
    let random: [u8; 32] = rand::random();
    let mut raw = access_key_id.as_bytes().to_vec();
    raw.push(b'\n');
    raw.extend_from_slice(&random);
    format!(
        "CAIS{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    )
}

/// The access key id a token was issued for, if it is one of ours.
fn token_key(token: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.strip_prefix("CAIS")?)
        .ok()?;
    let end = raw.iter().position(|b| *b == b'\n')?;
    String::from_utf8(raw[..end].to_vec()).ok()
}

/// A stable role id of 19 digits, from the account and the role name.
fn role_id(account: &str, role: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("{account}/{role}").as_bytes());
    let mut n = u64::from_be_bytes(digest[..8].try_into().unwrap_or([0; 8]));
    n %= 9_000_000_000_000_000_000;
    format!("{}", 1_000_000_000_000_000_000 + n)
}

impl Engine {
    /// The declared role `name` (case-insensitively) with its name as
    /// declared.
    pub(crate) fn role(&self, name: &str) -> Option<(&str, &RamRoleDecl)> {
        self.world
            .ram_roles
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(n, r)| (n.as_str(), r))
    }

    /// Whether the trust policy of `role` names `principal`.
    fn trusts(&self, role: &RamRoleDecl, principal: &str) -> bool {
        let account_root = self.world.root_principal();
        let in_account = principal.starts_with(&format!("acs:ram::{}:", self.world.account_id));
        role.trusted_principals
            .iter()
            .any(|p| wildcard_match(p, principal) || (*p == account_root && in_account))
    }

    /// Issues temporary credentials for `role` to a session named
    /// `session`, bounded by `session_policy` beside the role's policy.
    pub(crate) fn issue_session(
        &self,
        role_name: &str,
        role: &RamRoleDecl,
        session: &str,
        duration_secs: i64,
        session_policy: Option<Arc<IdentityPolicy>>,
    ) -> Result<Issued, ServiceError> {
        let now = self.now_secs();
        let expires = now + duration_secs;
        let access_key_id = format!("STS.{}", random_alnum(24));
        let secret = SecretString::new(random_alnum(40));
        let token = SecretString::new(new_token(&access_key_id));
        let principal = format!(
            "acs:ram::{}:assumed-role/{role_name}/{session}",
            self.world.account_id
        );
        let mut caller = Caller::new(access_key_id.clone(), principal.clone(), false);
        caller.policies.extend(role.policy.iter().cloned());
        caller.policies.extend(session_policy);
        let mut signer = Signer::new(secret.clone(), caller);
        signer.session = Some(Session {
            token: token.clone(),
            expires,
        });
        {
            let mut access = self.access.write().unwrap_or_else(|e| e.into_inner());
            access.retain(|_, k| {
                k.signer
                    .session
                    .as_ref()
                    .is_none_or(|s| s.expires + KEEP_EXPIRED_SECS > now)
            });
            let live = access
                .values()
                .filter(|k| k.signer.session.is_some())
                .count();
            if live >= MAX_SESSIONS {
                return Err(ServiceError::LimitExceeded {
                    what: format!("this local world holds at most {MAX_SESSIONS} STS sessions"),
                });
            }
            access.insert(
                access_key_id.clone(),
                AccessKey {
                    signer: Arc::new(signer),
                    active: true,
                    ram_user: None,
                },
            );
        }
        tracing::info!(role = %role_name, session = %session, "temporary credentials issued");
        Ok(Issued {
            access_key_id,
            access_key_secret: secret,
            security_token: token,
            expires,
            principal,
            assumed_role_id: format!("{}:{session}", role_id(&self.world.account_id, role_name)),
        })
    }

    /// STS AssumeRole.
    pub(crate) fn assume_role(&self, caller: &Caller, p: &Params) -> Result<Value, ServiceError> {
        let arn = p.req("RoleArn")?;
        let prefix = format!("acs:ram::{}:role/", self.world.account_id);
        let name = match arn.get(..prefix.len()) {
            Some(head) if head.eq_ignore_ascii_case(&prefix) => &arn[prefix.len()..],
            _ => {
                return Err(ServiceError::StsInvalid {
                    code: "InvalidParameter.RoleArn",
                    reason: format!("RoleArn must be {prefix}<role name>"),
                });
            }
        };
        let session = p.req("RoleSessionName")?;
        if !(2..=64).contains(&session.len())
            || !session
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
        {
            return Err(ServiceError::StsInvalid {
                code: "InvalidParameter.RoleSessionName",
                reason: "RoleSessionName has 2 to 64 letters, digits, '.', '@', '-' or '_'".into(),
            });
        }
        let (role_name, role) = self.role(name).ok_or_else(|| ServiceError::RoleNotFound {
            role_arn: arn.to_owned(),
        })?;
        if !self.trusts(role, &caller.principal) {
            return Err(ServiceError::NotTrustedByRole {
                principal: caller.principal.clone(),
                role_arn: self.world.role_arn(role_name),
            });
        }
        let max = i64::from(role.max_session_duration);
        let duration = match p.opt("DurationSeconds") {
            None => 3600.min(max),
            Some(raw) => match raw.parse::<i64>() {
                Ok(d) if (900..=max).contains(&d) => d,
                _ => {
                    return Err(ServiceError::StsInvalid {
                        code: "InvalidParameter.DurationSeconds",
                        reason: format!(
                            "DurationSeconds must be between 900 and {max} (the role's max_session_duration)"
                        ),
                    });
                }
            },
        };
        let session_policy = match p.opt("Policy") {
            None | Some("") => None,
            Some(text) => {
                let invalid = |m: String| ServiceError::StsInvalid {
                    code: "InvalidParameter.PolicyGrammar",
                    reason: format!("Policy {m}"),
                };
                if text.len() > MAX_SESSION_POLICY_BYTES {
                    return Err(invalid(format!(
                        "is longer than {MAX_SESSION_POLICY_BYTES} bytes"
                    )));
                }
                Some(Arc::new(IdentityPolicy::parse(text).map_err(invalid)?))
            }
        };
        let issued = self.issue_session(role_name, role, session, duration, session_policy)?;
        Ok(json!({
            "AssumedRoleUser": {
                "Arn": issued.principal,
                "AssumedRoleId": issued.assumed_role_id,
            },
            "Credentials": {
                "AccessKeyId": issued.access_key_id,
                "AccessKeySecret": issued.access_key_secret.expose_secret(),
                "SecurityToken": issued.security_token.expose_secret(),
                "Expiration": wire(issued.expires),
            },
        }))
    }

    /// STS GetCallerIdentity: who signed the request.
    pub(crate) fn get_caller_identity(&self, caller: &Caller) -> Value {
        let (identity, principal_id) = if caller.is_root {
            ("Account", self.world.account_id.clone())
        } else if caller.principal.contains(":assumed-role/") {
            let role = caller
                .principal
                .rsplit(":assumed-role/")
                .next()
                .unwrap_or_default();
            let (role, session) = role.split_once('/').unwrap_or((role, ""));
            (
                "AssumedRoleUser",
                format!("{}:{session}", role_id(&self.world.account_id, role)),
            )
        } else {
            ("RAMUser", caller.access_key_id.clone())
        };
        json!({
            "AccountId": self.world.account_id,
            "Arn": caller.principal,
            "IdentityType": identity,
            "PrincipalId": principal_id,
        })
    }

    /// Checks the security token a request carried against its signer's
    /// session (nothing to check for a long-term key).
    pub(crate) fn check_token(
        &self,
        signer: &Signer,
        token: Option<&str>,
    ) -> Result<(), ServiceError> {
        let Some(session) = &signer.session else {
            return Ok(());
        };
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(ServiceError::SecurityTokenMissing);
        };
        if !rota_kms::secret::constant_time_eq(
            token.as_bytes(),
            session.token.expose_secret().as_bytes(),
        ) {
            return Err(match token_key(token) {
                Some(other) if other != signer.caller.access_key_id => {
                    ServiceError::SecurityTokenMismatch
                }
                _ => ServiceError::SecurityTokenMalformed,
            });
        }
        if self.now_secs() >= session.expires {
            return Err(ServiceError::SecurityTokenExpired {
                expired: wire(session.expires),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_key_and_nothing_else_parses() {
        let t = new_token("STS.abc");
        assert_eq!(token_key(&t).as_deref(), Some("STS.abc"));
        assert_ne!(new_token("STS.abc"), t);
        for bad in ["", "CAIS", "CAIS!!!", "xyz", "CAISAAAA"] {
            assert_eq!(token_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn role_ids_are_stable_nineteen_digits() {
        let a = role_id("1", "app");
        assert_eq!(a.len(), 19);
        assert_eq!(a, role_id("1", "app"));
        assert_ne!(a, role_id("1", "other"));
    }
}

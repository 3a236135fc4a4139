//! Every error the local cloud answers with, and the ONE table that maps each
//! to its Alibaba Cloud `Code`, HTTP status and message (kms-api.md §2.3).
//!
//! The codes of the emulated ECS, RDS and RAM APIs are theirs: Cloud
//! Assistant's per-instance codes (`InstanceNotExists`, `AccountNotExists`,
//! `CommandNotApplicable`) double as API codes when a managed rotation meets
//! them, `InvalidCommandId.NotFound` and `InvalidRegionId.NotFound` (ECS),
//! `InvalidDBInstanceId.NotFound`, `InvalidAccountName.{NotFound,Duplicate,
//! Malformed}` and `InvalidAccountPassword.Malformed` (RDS),
//! `EntityNotExist.User`, `EntityNotExist.User.AccessKey` and
//! `LimitExceeded.User.AccessKey` (RAM). Where kms-api.md names no code the
//! choice is the emulator's: `InternalError` (500) when a bound database
//! server fails, `Rejected.RotationFailed` (400) when a rotation command
//! exits non-zero, and the HTTP statuses (404 for "not found", 400
//! otherwise).
//!
//! Messages name parameters, secrets and versions, never values: a secret's
//! data cannot reach an error. The one exception by design is
//! `SignatureDoesNotMatch`, which quotes the server's string to sign after
//! `string to sign is:` as every Alibaba gateway does (gotcha G2); clients cut
//! it off (rota-kms does), and the server never logs it.

use std::fmt;

/// An error answered by the local cloud.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceError {
    /// A required parameter is absent.
    MissingParameter {
        /// Its wire name.
        name: String,
    },
    /// A parameter is present but not acceptable.
    InvalidParameter {
        /// Its wire name.
        name: String,
        /// Why, and what is allowed.
        reason: String,
    },
    /// No such secret (or it was purged).
    SecretNotFound {
        /// The name asked for.
        name: String,
    },
    /// The secret exists but not the version or stage asked for.
    VersionNotFound {
        /// Secret name.
        name: String,
        /// `version "v1"` or `stage "ACSPrevious"`.
        what: String,
    },
    /// The secret has no policy.
    PolicyNotFound {
        /// Secret name.
        name: String,
    },
    /// No such KMS key.
    KeyNotFound {
        /// The key id asked for.
        key_id: String,
    },
    /// The key that encrypts a secret is disabled.
    KeyDisabled {
        /// The key's id.
        key_id: String,
    },
    /// The key that encrypts a secret is scheduled for deletion.
    KeyPendingDeletion {
        /// The key's id.
        key_id: String,
    },
    /// A key lifecycle action that does not apply to the key's state.
    KeyStateConflict {
        /// The key's id.
        key_id: String,
        /// The action asked for.
        action: String,
        /// The key's state.
        state: String,
    },
    /// CreateSecret with a name in use.
    SecretExists {
        /// The name.
        name: String,
    },
    /// The secret is scheduled for deletion.
    InDeleteWindow {
        /// The name.
        name: String,
    },
    /// PutSecretValue replaying an existing VersionId with different data.
    VersionExists {
        /// Secret name.
        name: String,
        /// Version id.
        version_id: String,
    },
    /// A quota is exhausted.
    LimitExceeded {
        /// Which limit, in words.
        what: String,
    },
    /// The caller's principal is not allowed this action on this secret.
    NoPermission {
        /// `kms:<Action>`.
        action: String,
        /// The caller's principal ARN.
        principal: String,
    },
    /// Temporary credentials whose role or session policy does not allow
    /// the action.
    NotPermittedBySession {
        /// `kms:<Action>`.
        action: String,
        /// The caller's principal ARN.
        principal: String,
    },
    /// STS: no such role.
    RoleNotFound {
        /// The role ARN asked for.
        role_arn: String,
    },
    /// STS: the role's trust policy does not name the caller.
    NotTrustedByRole {
        /// The caller's principal.
        principal: String,
        /// The role ARN.
        role_arn: String,
    },
    /// STS: an invalid AssumeRole parameter (`code` is
    /// `InvalidParameter.<Name>`).
    StsInvalid {
        /// The error code.
        code: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Temporary credentials sent without their security token.
    SecurityTokenMissing,
    /// A security token that is not one this cloud issued.
    SecurityTokenMalformed,
    /// A security token issued with other temporary credentials.
    SecurityTokenMismatch,
    /// A security token past its expiry.
    SecurityTokenExpired {
        /// When it expired (wire time).
        expired: String,
    },
    /// The action exists but this local world cannot perform it yet.
    Unsupported {
        /// The action.
        action: String,
        /// Why.
        reason: String,
    },
    /// `DryRun=true`: the request would have been carried out.
    DryRunOk,
    /// `DryRun=true`: the request is not valid.
    DryRunInvalid {
        /// Why.
        reason: String,
    },
    /// `DryRun=true`: the caller would have been refused.
    DryRunDenied,
    /// Unknown action for this version (or a product this world lacks).
    ActionNotFound {
        /// The action asked for.
        action: String,
        /// Why, when it is not simply unknown.
        detail: Option<String>,
    },
    /// Unknown API version.
    InvalidVersion {
        /// The version asked for.
        version: String,
    },
    /// The signature does not match the server's calculation.
    SignatureDoesNotMatch {
        /// The server's string to sign.
        string_to_sign: String,
    },
    /// The request's signature parameters are malformed or unsupported.
    IncompleteSignature {
        /// What is wrong.
        reason: String,
    },
    /// The request time is outside the ±15 minute window.
    TimestampExpired {
        /// The value sent.
        timestamp: String,
    },
    /// The request time cannot be parsed.
    TimestampFormat {
        /// The value sent.
        timestamp: String,
    },
    /// The nonce was seen before.
    NonceUsed,
    /// Unknown access key.
    AccessKeyNotFound {
        /// The id sent.
        access_key_id: String,
    },
    /// The request body exceeds the limit.
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The HTTP method is not GET or POST, or the path is not `/`.
    BadRoute,
    /// The access key exists but is Inactive (a RAM user's key).
    AccessKeyInactive {
        /// The id sent.
        access_key_id: String,
    },
    /// ECS: `RegionId` names another region than this world's.
    RegionNotFound {
        /// The region asked for.
        region: String,
    },
    /// ECS: no such instance (`InstanceNotExists`, as Cloud Assistant reports it).
    InstanceNotExists {
        /// The instance id.
        instance_id: String,
    },
    /// ECS: the instance has no such OS account (`AccountNotExists`).
    OsAccountNotExists {
        /// The instance id.
        instance_id: String,
        /// The account.
        account: String,
    },
    /// ECS: no such Cloud Assistant command.
    CommandNotFound {
        /// The command id.
        command_id: String,
    },
    /// ECS: the command cannot run on that instance (`CommandNotApplicable`).
    CommandNotApplicable {
        /// Why.
        reason: String,
    },
    /// RDS: no such instance.
    DbInstanceNotFound {
        /// The instance id.
        instance_id: String,
    },
    /// RDS: no such account on the instance.
    DbAccountNotFound {
        /// The instance id.
        instance_id: String,
        /// The account.
        account: String,
    },
    /// RDS: CreateAccount with a name in use.
    DbAccountExists {
        /// The account.
        account: String,
    },
    /// RDS: the account name breaks RDS's naming rules.
    DbAccountNameMalformed {
        /// The account.
        account: String,
    },
    /// RDS: the password breaks RDS's password rules.
    DbPasswordMalformed {
        /// Which rule.
        reason: String,
    },
    /// RDS: the real server an instance is bound to failed or refused.
    BoundDatabase {
        /// The instance id.
        instance_id: String,
        /// What the server said (never a statement or a password).
        reason: String,
    },
    /// RAM: no such user.
    RamUserNotFound {
        /// The user.
        user: String,
    },
    /// RAM: the user has no such access key.
    RamAccessKeyNotFound {
        /// The user.
        user: String,
        /// The key id.
        access_key_id: String,
    },
    /// RAM: a user already has two access keys.
    RamAccessKeyLimit {
        /// The user.
        user: String,
    },
    /// A managed rotation could not change its target.
    RotationFailed {
        /// The secret.
        name: String,
        /// Why (no secret material).
        reason: String,
    },
    /// Something failed inside the local cloud (storage, crypto).
    Internal {
        /// What failed (no secret material).
        context: String,
    },
}

/// The wire form of an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    /// `Code`, never empty.
    pub code: &'static str,
    /// HTTP status.
    pub status: u16,
    /// `Message`.
    pub message: String,
}

impl ServiceError {
    /// Shorthand for [`ServiceError::InvalidParameter`].
    pub fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidParameter {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`ServiceError::MissingParameter`].
    pub fn missing(name: impl Into<String>) -> Self {
        Self::MissingParameter { name: name.into() }
    }

    /// Shorthand for [`ServiceError::Internal`].
    pub fn internal(context: impl Into<String>) -> Self {
        Self::Internal {
            context: context.into(),
        }
    }

    /// THE table: code, HTTP status and message of every error.
    pub fn wire(&self) -> WireError {
        use ServiceError as E;
        let (code, status, message) = match self {
            E::MissingParameter { name } => (
                "MissingParameter",
                400,
                format!(
                    "The input parameter \"{name}\" that is mandatory for processing this request is not supplied."
                ),
            ),
            E::InvalidParameter { name, reason } => (
                "InvalidParameter",
                400,
                format!("The parameter \"{name}\" is invalid: {reason}"),
            ),
            E::SecretNotFound { name } => (
                "Forbidden.ResourceNotFound",
                404,
                format!("Resource not found: the secret \"{name}\" does not exist."),
            ),
            E::VersionNotFound { name, what } => (
                "Forbidden.ResourceNotFound",
                404,
                format!("Resource not found: the secret \"{name}\" has no {what}."),
            ),
            E::PolicyNotFound { name } => (
                "Forbidden.ResourceNotFound",
                404,
                format!("Resource not found: the secret \"{name}\" has no policy."),
            ),
            E::KeyNotFound { key_id } => (
                "Forbidden.KeyNotFound",
                404,
                format!("The specified key \"{key_id}\" is not found."),
            ),
            E::KeyDisabled { key_id } => (
                "Rejected.Disabled",
                409,
                format!("The key \"{key_id}\" is disabled: enable it (EnableKey) to use it."),
            ),
            E::KeyPendingDeletion { key_id } => (
                "Rejected.PendingDeletion",
                409,
                format!(
                    "The key \"{key_id}\" is pending deletion: cancel the deletion (CancelKeyDeletion) to use it."
                ),
            ),
            E::KeyStateConflict {
                key_id,
                action,
                state,
            } => (
                "Rejected.StateModifiedFailed",
                409,
                format!("{action} does not apply to the key \"{key_id}\" in the state {state}."),
            ),
            E::SecretExists { name } => (
                "Rejected.ResourceExist",
                409,
                format!("The secret \"{name}\" already exists."),
            ),
            E::InDeleteWindow { name } => (
                "Rejected.ResourceInDeleteWindow",
                409,
                format!(
                    "The secret \"{name}\" is scheduled for deletion; restore it with RestoreSecret first."
                ),
            ),
            E::VersionExists { name, version_id } => (
                "Rejected.ResourceExist",
                409,
                format!(
                    "The version \"{version_id}\" of the secret \"{name}\" already exists with different data; a version is immutable."
                ),
            ),
            E::LimitExceeded { what } => (
                "Rejected.LimitExceeded",
                400,
                format!("The limit is exceeded: {what}."),
            ),
            E::NoPermission { action, principal } => (
                "Forbidden.NoPermission",
                403,
                format!(
                    "This operation is forbidden by the secret policy: {principal} may not perform {action}."
                ),
            ),
            E::NotPermittedBySession { action, principal } => (
                "Forbidden.NoPermission",
                403,
                format!(
                    "This operation is forbidden by the role's or the session's policy: {principal} may not perform {action}."
                ),
            ),
            E::RoleNotFound { role_arn } => (
                "EntityNotExist.Role",
                404,
                format!("The role not exists: {role_arn}."),
            ),
            E::NotTrustedByRole {
                principal,
                role_arn,
            } => (
                "NoPermission",
                403,
                format!(
                    "You are not authorized to do this action: the trust policy of {role_arn} does not name {principal}."
                ),
            ),
            E::StsInvalid { code, reason } => (*code, 400, reason.clone()),
            E::SecurityTokenMissing => (
                "MissingSecurityToken",
                400,
                "The temporary access key needs its SecurityToken (x-acs-security-token in V3)."
                    .to_owned(),
            ),
            E::SecurityTokenMalformed => (
                "InvalidSecurityToken.Malformed",
                400,
                "The security token is not valid.".to_owned(),
            ),
            E::SecurityTokenMismatch => (
                "InvalidSecurityToken.MismatchWithAccessKey",
                400,
                "The security token does not belong to this access key.".to_owned(),
            ),
            E::SecurityTokenExpired { expired } => (
                "InvalidSecurityToken.Expired",
                403,
                format!("The security token expired at {expired}."),
            ),
            E::Unsupported { action, reason } => (
                "UnsupportedOperation",
                400,
                format!("{action} is not supported by this local world yet: {reason}"),
            ),
            E::DryRunOk => (
                "DryRunOperationError",
                400,
                "Request validation has been passed with DryRun flag set.".to_owned(),
            ),
            E::DryRunInvalid { reason } => (
                "ValidationError",
                400,
                format!("Request validation failed with DryRun flag set: {reason}"),
            ),
            E::DryRunDenied => (
                "AccessDeniedError",
                403,
                "Request would be denied; DryRun flag set.".to_owned(),
            ),
            E::ActionNotFound { action, detail } => (
                "InvalidAction.NotFound",
                404,
                match detail {
                    Some(d) => format!(
                        "Specified api is not found, please check your url and method: {action} ({d})."
                    ),
                    None => format!(
                        "Specified api is not found, please check your url and method: {action}."
                    ),
                },
            ),
            E::InvalidVersion { version } => (
                "InvalidVersion",
                400,
                format!("Specified parameter Version is not valid: \"{version}\"."),
            ),
            E::SignatureDoesNotMatch { string_to_sign } => (
                "SignatureDoesNotMatch",
                400,
                format!(
                    "Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"
                ),
            ),
            E::IncompleteSignature { reason } => (
                "IncompleteSignature",
                400,
                format!("The request signature does not conform to Aliyun standards: {reason}"),
            ),
            E::TimestampExpired { timestamp } => (
                "InvalidTimeStamp.Expired",
                400,
                format!(
                    "Specified time stamp or date value is expired: \"{timestamp}\" is more than 15 minutes away from the server time."
                ),
            ),
            E::TimestampFormat { timestamp } => (
                "InvalidTimeStamp.Format",
                400,
                format!(
                    "Specified time stamp or date value is not well formatted: \"{timestamp}\" (expected YYYY-MM-DDTHH:MM:SSZ)."
                ),
            ),
            E::NonceUsed => (
                "SignatureNonceUsed",
                400,
                "Specified signature nonce was used already.".to_owned(),
            ),
            E::AccessKeyNotFound { access_key_id } => (
                "InvalidAccessKeyId.NotFound",
                404,
                format!("Specified access key is not found: \"{access_key_id}\"."),
            ),
            E::BodyTooLarge { limit } => (
                "InvalidParameter.RequestTooLarge",
                413,
                format!("The request body is larger than {limit} bytes."),
            ),
            E::BadRoute => (
                "InvalidAction.NotFound",
                404,
                "Specified api is not found, please check your url and method.".to_owned(),
            ),
            E::AccessKeyInactive { access_key_id } => (
                "InvalidAccessKeyId.Inactive",
                400,
                format!("Specified access key is disabled: \"{access_key_id}\"."),
            ),
            E::RegionNotFound { region } => (
                "InvalidRegionId.NotFound",
                404,
                format!("The specified RegionId \"{region}\" does not exist in this local world."),
            ),
            E::InstanceNotExists { instance_id } => (
                "InstanceNotExists",
                404,
                format!("The specified instance \"{instance_id}\" does not exist."),
            ),
            E::OsAccountNotExists {
                instance_id,
                account,
            } => (
                "AccountNotExists",
                404,
                format!(
                    "The specified account \"{account}\" does not exist on the instance \"{instance_id}\"."
                ),
            ),
            E::CommandNotFound { command_id } => (
                "InvalidCommandId.NotFound",
                404,
                format!("The specified command \"{command_id}\" does not exist."),
            ),
            E::CommandNotApplicable { reason } => (
                "CommandNotApplicable",
                400,
                format!("The command is not applicable: {reason}"),
            ),
            E::DbInstanceNotFound { instance_id } => (
                "InvalidDBInstanceId.NotFound",
                404,
                format!("The specified instance \"{instance_id}\" is not found."),
            ),
            E::DbAccountNotFound {
                instance_id,
                account,
            } => (
                "InvalidAccountName.NotFound",
                404,
                format!(
                    "The specified account \"{account}\" does not exist on the instance \"{instance_id}\"."
                ),
            ),
            E::DbAccountExists { account } => (
                "InvalidAccountName.Duplicate",
                400,
                format!("The specified account name \"{account}\" already exists."),
            ),
            E::DbAccountNameMalformed { account } => (
                "InvalidAccountName.Malformed",
                400,
                format!(
                    "The specified account name \"{account}\" is not valid: 2 to 32 lower-case letters, digits or underscores, starting with a letter and ending with a letter or digit."
                ),
            ),
            E::DbPasswordMalformed { reason } => (
                "InvalidAccountPassword.Malformed",
                400,
                format!("The specified parameter AccountPassword is not valid: it {reason}."),
            ),
            E::BoundDatabase {
                instance_id,
                reason,
            } => (
                "InternalError",
                500,
                format!("The database server bound to \"{instance_id}\" failed: {reason}"),
            ),
            E::RamUserNotFound { user } => (
                "EntityNotExist.User",
                404,
                format!("The user does not exist: {user}."),
            ),
            E::RamAccessKeyNotFound {
                user,
                access_key_id,
            } => (
                "EntityNotExist.User.AccessKey",
                404,
                format!(
                    "The access key \"{access_key_id}\" of the user \"{user}\" does not exist."
                ),
            ),
            E::RamAccessKeyLimit { user } => (
                "LimitExceeded.User.AccessKey",
                400,
                format!(
                    "The user \"{user}\" already has two access keys, the most a user may have."
                ),
            ),
            E::RotationFailed { name, reason } => (
                "Rejected.RotationFailed",
                400,
                format!("The rotation of the secret \"{name}\" failed: {reason}"),
            ),
            E::Internal { context } => (
                "InternalFailure",
                500,
                format!("The request processing has failed due to some unknown error: {context}"),
            ),
        };
        WireError {
            code,
            status,
            message,
        }
    }

    /// The error code (shorthand for `wire().code`).
    pub fn code(&self) -> &'static str {
        self.wire().code
    }
}

impl fmt::Debug for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The string to sign may hold secret data: never in Debug output.
        if let Self::SignatureDoesNotMatch { string_to_sign } = self {
            return write!(
                f,
                "SignatureDoesNotMatch {{ string_to_sign: <{} bytes> }}",
                string_to_sign.len()
            );
        }
        let w = self.wire();
        write!(f, "{} ({}): {}", w.code, w.status, w.message)
    }
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Self::SignatureDoesNotMatch { string_to_sign } = self {
            return write!(
                f,
                "SignatureDoesNotMatch: string to sign withheld ({} bytes)",
                string_to_sign.len()
            );
        }
        let w = self.wire();
        write!(f, "{}: {}", w.code, w.message)
    }
}

impl std::error::Error for ServiceError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_never_empty_and_statuses_follow_the_table() {
        let cases = [
            (ServiceError::missing("SecretName"), "MissingParameter", 400),
            (
                ServiceError::SecretNotFound { name: "a".into() },
                "Forbidden.ResourceNotFound",
                404,
            ),
            (
                ServiceError::SecretExists { name: "a".into() },
                "Rejected.ResourceExist",
                409,
            ),
            (
                ServiceError::InDeleteWindow { name: "a".into() },
                "Rejected.ResourceInDeleteWindow",
                409,
            ),
            (
                ServiceError::NoPermission {
                    action: "kms:GetSecretValue".into(),
                    principal: "p".into(),
                },
                "Forbidden.NoPermission",
                403,
            ),
            (ServiceError::NonceUsed, "SignatureNonceUsed", 400),
            (ServiceError::internal("x"), "InternalFailure", 500),
        ];
        for (e, code, status) in cases {
            let w = e.wire();
            assert_eq!((w.code, w.status), (code, status));
            assert!(!w.message.is_empty());
        }
    }

    #[test]
    fn signature_message_has_a_colon_then_the_string_to_sign() {
        let e = ServiceError::SignatureDoesNotMatch {
            string_to_sign: "POST&%2F&x".into(),
        };
        let msg = e.wire().message;
        assert_eq!(msg.split(':').nth(1), Some("POST&%2F&x"));
        assert!(!format!("{e:?}").contains("POST&"));
        assert!(!e.to_string().contains("POST&"));
    }
}

//! Arguments of `rota secret …`: direct KMS operations, with flags named
//! after the API's parameters (`--version-id` is `VersionId`, …).

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `rota secret …`
#[derive(Debug, Subcommand)]
pub(crate) enum SecretCommand {
    /// List the secrets (ListSecrets)
    ///
    /// Follows every page (100 secrets each); a long listing shows progress
    /// on standard error.
    #[command(after_help = "\
Examples:
  rota secret list
  rota secret list --filter TagKey=team --filter TagValue=payments -o json")]
    List {
        /// Only secrets matching KEY=VALUE (repeatable; KEY is SecretName,
        /// Description, TagKey or TagValue; values of one key are OR-ed)
        #[arg(long = "filter", value_name = "KEY=VALUE")]
        filters: Vec<String>,
    },
    /// Show a secret's metadata and tags (DescribeSecret)
    Describe {
        #[command(flatten)]
        name: NameArg,
    },
    /// Show a version of a secret; its value only with --reveal (GetSecretValue)
    ///
    /// Without --reveal the value is shown as (sensitive). With --reveal only
    /// the value is printed (or the JSON object with SecretData, with -o json),
    /// for scripts: rota secret get db --reveal > value.txt
    Get {
        #[command(flatten)]
        name: NameArg,
        /// The version to read (default: the ACSCurrent one)
        #[arg(long, value_name = "ID")]
        version_id: Option<String>,
        /// The stage to read, e.g. ACSPrevious (default: ACSCurrent)
        #[arg(long, value_name = "STAGE")]
        version_stage: Option<String>,
        /// Print the value itself on standard output
        #[arg(long)]
        reveal: bool,
    },
    /// List a secret's versions and their stages (ListSecretVersionIds)
    Versions {
        #[command(flatten)]
        name: NameArg,
        /// Also list versions without a stage
        #[arg(long)]
        include_deprecated: bool,
    },
    /// Store a new version (PutSecretValue), creating the secret if it does
    /// not exist (CreateSecret)
    ///
    /// The value is read from --value-file FILE, or from standard input with
    /// --value-file - ; never from a command-line argument, so it does not
    /// land in the shell history or the process list. --secret-type,
    /// --description, --tags, --encryption-key-id and --extended-config apply
    /// only when the secret is created.
    #[command(after_help = "\
Examples:
  rota secret put app/token --version-id v2 --value-file token.txt
  printf %s \"$TOKEN\" | rota secret put app/token --version-id v3 --value-file -
  rota secret put app/new --version-id v1 --value-file v.txt --tags team=ops")]
    Put(PutArgs),
    /// Move or remove a version stage (UpdateSecretVersionStage)
    #[command(after_help = "\
Examples:
  rota secret stage app/db --version-stage ACSCurrent --move-to-version v1 --remove-from-version v2
  rota secret stage app/db --version-stage canary --remove-from-version v3")]
    Stage {
        #[command(flatten)]
        name: NameArg,
        /// The stage, e.g. ACSCurrent or a custom one
        #[arg(long, value_name = "STAGE")]
        version_stage: String,
        /// The version that gets the stage
        #[arg(
            long,
            value_name = "ID",
            required_unless_present = "remove_from_version"
        )]
        move_to_version: Option<String>,
        /// The version that loses the stage
        #[arg(long, value_name = "ID")]
        remove_from_version: Option<String>,
    },
    /// Delete a secret, after a recovery window unless forced (DeleteSecret)
    #[command(after_help = "\
Examples:
  rota secret delete app/old --recovery-window-in-days 7     rota secret restore undoes it
  rota secret delete app/old --force-delete-without-recovery")]
    Delete {
        #[command(flatten)]
        name: NameArg,
        /// Days during which `rota secret restore` can undo the deletion (7-30; default 30)
        #[arg(
            long,
            value_name = "DAYS",
            conflicts_with = "force_delete_without_recovery"
        )]
        recovery_window_in_days: Option<u32>,
        /// Delete at once, with no way back
        #[arg(long)]
        force_delete_without_recovery: bool,
    },
    /// Cancel a scheduled deletion (RestoreSecret)
    Restore {
        #[command(flatten)]
        name: NameArg,
    },
    /// Show a secret's resource policy, or set it with --policy (GetSecretPolicy, SetSecretPolicy)
    #[command(after_help = "\
Examples:
  rota secret policy app/db -o json
  rota secret policy app/db --policy policy.json")]
    Policy {
        #[command(flatten)]
        name: NameArg,
        /// Set the policy from FILE (a JSON document), or from standard input with -
        #[arg(long, value_name = "FILE|-")]
        policy: Option<PathBuf>,
        /// The policy's name
        #[arg(long, value_name = "NAME")]
        policy_name: Option<String>,
    },
    /// Show a secret's tags, add some with --tags or remove some with
    /// --tag-keys (TagResource, UntagResource)
    #[command(after_help = "\
Examples:
  rota secret tag app/db
  rota secret tag app/db --tags owner=ops --tag-keys env")]
    Tag {
        #[command(flatten)]
        name: NameArg,
        /// Add or overwrite a tag (repeatable)
        #[arg(long = "tags", value_name = "KEY=VALUE")]
        tags: Vec<String>,
        /// Remove the tag with this key (repeatable)
        #[arg(long = "tag-keys", value_name = "KEY")]
        tag_keys: Vec<String>,
    },
}

/// The secret an operation concerns.
#[derive(Debug, Args)]
pub(crate) struct NameArg {
    /// The secret's name (SecretName), or the address of a configured
    /// resource (alicloud_kms_secret.NAME)
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
}

/// `rota secret put`.
#[derive(Debug, Args)]
pub(crate) struct PutArgs {
    #[command(flatten)]
    pub(crate) name: NameArg,
    /// Read the value from FILE, or from standard input with -
    #[arg(long, value_name = "FILE|-")]
    pub(crate) value_file: PathBuf,
    /// The new version's id (VersionId)
    #[arg(long, value_name = "ID")]
    pub(crate) version_id: String,
    /// text or binary (base64 in the file)
    #[arg(long, value_name = "TYPE")]
    pub(crate) secret_data_type: Option<String>,
    /// Stages of the new version (repeatable; default ACSCurrent)
    #[arg(long = "version-stages", value_name = "STAGE")]
    pub(crate) version_stages: Vec<String>,
    /// On creation: Generic, Rds, Redis, RAMCredentials, ECS or PolarDB
    #[arg(long, value_name = "TYPE")]
    pub(crate) secret_type: Option<String>,
    /// On creation: the description
    #[arg(long, value_name = "TEXT")]
    pub(crate) description: Option<String>,
    /// On creation: a tag (repeatable)
    #[arg(long = "tags", value_name = "KEY=VALUE")]
    pub(crate) tags: Vec<String>,
    /// On creation: the KMS key that encrypts the value
    #[arg(long, value_name = "KEY_ID")]
    pub(crate) encryption_key_id: Option<String>,
    /// On creation: the ExtendedConfig JSON of a managed secret
    #[arg(long, value_name = "JSON")]
    pub(crate) extended_config: Option<String>,
}

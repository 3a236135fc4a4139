//! `rota secret list|describe|get|versions|put|stage|delete|restore|policy|tag`:
//! direct KMS operations on the resolved backend (real Alibaba Cloud, or the
//! embedded local cloud), for scripting and incident work.
//!
//! No configuration file is needed: without one the backend is resolved from
//! the global options and the environment, and the embedded cloud lives in
//! `--data-dir` (default `.rota/` of the configuration directory, i.e. of the
//! current directory). When a configuration exists it must be valid (its
//! provider block may point at the real cloud), and NAME may then also be a
//! resource address (`alicloud_kms_secret.db`).
//!
//! A secret value is printed only by `get --reveal`; `put` reads it from a
//! file or standard input, never from argv.
//!
//! JSON output (`-o json`) uses the API's names and response shapes
//! (without `RequestId`).
//!
//! Exit codes: 0 success, 1 error, 2 usage error.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow, bail};
use rota_engine::config::Config;
use rota_kms::kms::{
    CreateSecret, DeleteSecret, DescribeSecret, Filter, GetSecretPolicy, GetSecretValue,
    ListSecrets, PutSecretValue, RestoreSecret, SecretSummary, SetSecretPolicy, Tag, TagResource,
    TagTarget, UntagResource, UpdateSecretVersionStage, VersionInfo,
};
use rota_kms::{ErrorKind, KmsClient, SecretString};
use serde_json::{Value, json};

use super::lifecycle;
use crate::backend;
use crate::cli::{GlobalArgs, NameArg, OutputFormat, PutArgs, SecretCommand};
use crate::output::{Hint, emit, errln};
use crate::progress;

/// Runs a `rota secret` command.
pub(crate) async fn run(command: SecretCommand, global: &GlobalArgs) -> Result<ExitCode> {
    if let Err(message) = check_usage(&command) {
        errln!("error: {message}");
        return Ok(ExitCode::from(2));
    }
    // Read the value before opening anything, so a missing file fails fast.
    let value = match &command {
        SecretCommand::Put(args) => Some(read_input(&args.value_file, "the value")?),
        _ => None,
    };
    let Some(config) = lifecycle::load_or_empty(global, &crate::cli::VarArgs::default())? else {
        return Ok(ExitCode::FAILURE);
    };
    let backend = backend::resolve(global, &config).await?;
    let kms = &backend.client;
    let out = global.output;
    // The live names of `$Auto` secrets, for their addresses.
    let live = if config
        .resources
        .iter()
        .any(|r| r.args.secret_name == rota_rotation::AUTO_NAME)
    {
        rota_engine::live::live_names(kms, &lifecycle::ownership(&config)).await?
    } else {
        Default::default()
    };
    let name = |n: &NameArg| secret_name(&config, &live, &n.name);
    match command {
        SecretCommand::List { filters } => {
            let filters = parse_filters(&filters)?;
            let mut list = list_secrets(global, kms, filters).await?;
            list.sort_by(|a, b| a.secret_name.cmp(&b.secret_name));
            let value = serde_json::to_value(&list)?;
            emit(out, &value, |_| {
                let rows = list
                    .iter()
                    .map(|s| {
                        vec![
                            s.secret_name.clone(),
                            s.secret_type.clone(),
                            s.update_time.clone(),
                            state(s.planned_delete_time.as_deref()),
                            tags_text(s.tags.as_ref().map(|t| &t.tag[..])),
                        ]
                    })
                    .collect::<Vec<_>>();
                if rows.is_empty() {
                    "No secrets.".into()
                } else {
                    crate::output::table(&["NAME", "TYPE", "UPDATED", "STATE", "TAGS"], &rows)
                }
            })?;
        }
        SecretCommand::Describe { name: n } => {
            let name = name(&n);
            let m = kms
                .send(&DescribeSecret {
                    secret_name: name.clone(),
                    fetch_tags: Some(true),
                })
                .await
                .map_err(|e| explain_for(e, &name))?;
            let mut value = serde_json::to_value(&m)?;
            strip_request_id(&mut value);
            emit(out, &value, |_| {
                let mut lines = vec![
                    ("Name", m.secret_name.clone()),
                    ("Type", m.secret_type.clone()),
                    ("ARN", m.arn.clone()),
                    ("Description", m.description.clone()),
                    ("EncryptionKeyId", m.encryption_key_id.clone()),
                    ("Created", m.create_time.clone()),
                    ("Updated", m.update_time.clone()),
                    ("State", state(m.planned_delete_time.as_deref())),
                ];
                let optional = [
                    ("PlannedDeleteTime", &m.planned_delete_time),
                    ("DKMSInstanceId", &m.dkms_instance_id),
                    ("OwingService", &m.owing_service),
                    ("AutomaticRotation", &m.automatic_rotation),
                    ("RotationInterval", &m.rotation_interval),
                    ("LastRotationDate", &m.last_rotation_date),
                    ("NextRotationDate", &m.next_rotation_date),
                    ("ExtendedConfig", &m.extended_config),
                ];
                for (k, v) in optional {
                    if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                        lines.push((k, v.clone()));
                    }
                }
                lines.push(("Tags", tags_text(m.tags.as_ref().map(|t| &t.tag[..]))));
                fields(&lines)
            })?;
        }
        SecretCommand::Get {
            name: n,
            version_id,
            version_stage,
            reveal,
        } => {
            let name = name(&n);
            let v = kms
                .send(&GetSecretValue {
                    secret_name: name.clone(),
                    version_id,
                    version_stage,
                    fetch_extended_config: Some(true),
                    dry_run: None,
                })
                .await
                .map_err(|e| explain_for(e, &name))?;
            let mut value = json!({
                "SecretName": v.secret_name,
                "SecretType": v.secret_type,
                "VersionId": v.version_id,
                "VersionStages": v.version_stages,
                "SecretDataType": v.secret_data_type,
                "CreateTime": v.create_time,
            });
            if reveal {
                value["SecretData"] = Value::String(v.secret_data.expose_secret().to_owned());
            }
            if reveal && out == OutputFormat::Text {
                // Exactly the value, no newline added: `> file` round-trips
                // through `put --value-file file`.
                crate::output::write_stdout(v.secret_data.expose_secret().as_bytes());
                return Ok(ExitCode::SUCCESS);
            }
            emit(out, &value, |_| {
                fields(&[
                    ("Name", v.secret_name.clone()),
                    ("Type", v.secret_type.clone()),
                    ("VersionId", v.version_id.clone()),
                    ("Stages", v.version_stages.version_stage.join(",")),
                    ("DataType", v.secret_data_type.clone()),
                    ("Created", v.create_time.clone()),
                    ("Value", "(sensitive; --reveal prints it)".into()),
                ])
            })?;
        }
        SecretCommand::Versions {
            name: n,
            include_deprecated,
        } => {
            let name = name(&n);
            let versions: Vec<VersionInfo> = kms
                .list_all_versions(&name)
                .await
                .map_err(|e| explain_for(e, &name))?
                .into_iter()
                .filter(|v| include_deprecated || !v.version_stages.version_stage.is_empty())
                .collect();
            let value = serde_json::to_value(&versions)?;
            emit(out, &value, |_| {
                let rows = versions
                    .iter()
                    .map(|v| {
                        vec![
                            v.version_id.clone(),
                            v.version_stages.version_stage.join(","),
                            v.create_time.clone(),
                        ]
                    })
                    .collect::<Vec<_>>();
                crate::output::table(&["VERSION", "STAGES", "CREATED"], &rows)
            })?;
        }
        SecretCommand::Put(args) => {
            let data = value.unwrap_or_default();
            put(global, kms, &name(&args.name), args, data).await?;
        }
        SecretCommand::Stage {
            name: n,
            version_stage,
            move_to_version,
            remove_from_version,
        } => {
            let name = name(&n);
            kms.send(&UpdateSecretVersionStage {
                secret_name: name.clone(),
                version_stage: version_stage.clone(),
                move_to_version: move_to_version.clone(),
                remove_from_version: remove_from_version.clone(),
            })
            .await
            .map_err(|e| explain_for(e, &name))?;
            let value = json!({
                "SecretName": name,
                "VersionStage": version_stage,
                "MoveToVersion": move_to_version,
                "RemoveFromVersion": remove_from_version,
            });
            emit(out, &value, |_| {
                let mut s = format!("{name}: {version_stage}");
                if let Some(v) = &remove_from_version {
                    let _ = write!(s, " removed from {v}");
                    if move_to_version.is_some() {
                        s.push(',');
                    }
                }
                if let Some(v) = &move_to_version {
                    let _ = write!(s, " moved to {v}");
                }
                s + "."
            })?;
        }
        SecretCommand::Delete {
            name: n,
            recovery_window_in_days,
            force_delete_without_recovery,
        } => {
            let name = name(&n);
            let r = kms
                .send(&DeleteSecret {
                    secret_name: name.clone(),
                    force_delete_without_recovery: force_delete_without_recovery.then_some(true),
                    recovery_window_in_days,
                })
                .await
                .map_err(|e| explain_for(e, &name))?;
            let value = json!({
                "SecretName": name,
                "PlannedDeleteTime": r.planned_delete_time,
                "ForceDeleteWithoutRecovery": force_delete_without_recovery,
            });
            emit(out, &value, |_| match &r.planned_delete_time {
                Some(t) if !force_delete_without_recovery => format!(
                    "{name}: scheduled for deletion at {t}; `rota secret restore {name}` undoes it until then."
                ),
                _ => format!("{name}: deleted, with no recovery."),
            })?;
        }
        SecretCommand::Restore { name: n } => {
            let name = name(&n);
            // KMS accepts restoring a secret that is not being deleted;
            // saying "restored" then would mislead.
            let meta = kms
                .describe_secret(&name)
                .await
                .map_err(|e| explain_for(e, &name))?;
            if meta.planned_delete_time.is_none() {
                return Err(Hint::error(
                    format!("{name} is not scheduled for deletion: nothing to restore"),
                    "restore cancels a `rota secret delete` (or destroy) still in its recovery window",
                ));
            }
            kms.send(&RestoreSecret {
                secret_name: name.clone(),
            })
            .await
            .map_err(|e| explain_for(e, &name))?;
            emit(out, &json!({ "SecretName": name }), |_| {
                format!("{name}: restored.")
            })?;
        }
        SecretCommand::Policy {
            name: n,
            policy,
            policy_name,
        } => {
            let name = name(&n);
            match policy {
                Some(file) => {
                    let text = read_input(&file, "the policy")?;
                    let text = text.expose_secret();
                    serde_json::from_str::<Value>(text).with_context(|| {
                        format!("the policy in {} is not a JSON document", file.display())
                    })?;
                    kms.send(&SetSecretPolicy {
                        secret_name: name.clone(),
                        policy: text.to_owned(),
                        policy_name: policy_name.clone(),
                    })
                    .await
                    .map_err(|e| explain_for(e, &name))?;
                    emit(
                        out,
                        &json!({ "SecretName": name, "PolicyName": policy_name }),
                        |_| format!("{name}: policy set."),
                    )?;
                }
                None => {
                    let r = kms
                        .send(&GetSecretPolicy {
                            secret_name: name.clone(),
                            policy_name,
                        })
                        .await
                        .map_err(|e| explain_for(e, &name))?;
                    let policy = serde_json::from_str::<Value>(&r.policy)
                        .unwrap_or_else(|_| Value::String(r.policy.clone()));
                    let value = json!({ "SecretName": name, "Policy": policy });
                    emit(out, &value, |_| match &policy {
                        Value::String(s) => s.clone(),
                        p => serde_json::to_string_pretty(p).unwrap_or_default(),
                    })?;
                }
            }
        }
        SecretCommand::Tag {
            name: n,
            tags,
            tag_keys,
        } => {
            let name = name(&n);
            let tags = parse_tags(&tags)?;
            if !tag_keys.is_empty() {
                kms.send(&UntagResource {
                    target: TagTarget::SecretName(name.clone()),
                    tag_keys,
                })
                .await
                .map_err(|e| explain_for(e, &name))?;
            }
            if !tags.is_empty() {
                kms.send(&TagResource {
                    target: TagTarget::SecretName(name.clone()),
                    tags,
                })
                .await
                .map_err(|e| explain_for(e, &name))?;
            }
            let m = kms
                .describe_secret(&name)
                .await
                .map_err(|e| explain_for(e, &name))?;
            let mut tags = m.tags.map(|t| t.tag).unwrap_or_default();
            tags.sort();
            let value = json!({ "SecretName": name, "Tags": { "Tag": tags } });
            emit(out, &value, |_| {
                if tags.is_empty() {
                    return format!("{name}: no tags.");
                }
                let rows = tags
                    .iter()
                    .map(|t| vec![t.tag_key.clone(), t.tag_value.clone()])
                    .collect::<Vec<_>>();
                crate::output::table(&["KEY", "VALUE"], &rows)
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Secrets per ListSecrets page (the API's largest).
const PAGE_SIZE: u32 = 100;

/// Every secret matching `filters`, page by page, with progress in
/// secrets: the first page says how many there are.
async fn list_secrets(
    global: &GlobalArgs,
    kms: &KmsClient,
    filters: Vec<Filter>,
) -> Result<Vec<SecretSummary>> {
    let task = progress::Task::start(
        progress::Context::detect(global),
        "list",
        "secrets",
        None,
        // Ten pages or more: a listing of fewer is quick.
        10 * u64::from(PAGE_SIZE),
    );
    let mut out = Vec::new();
    for page in 1u32.. {
        task.set_item(&format!("page {page}"));
        let resp = kms
            .send(&ListSecrets {
                page_number: Some(page),
                page_size: Some(PAGE_SIZE),
                fetch_tags: Some(true),
                filters: filters.clone(),
            })
            .await
            .map_err(explain)?;
        if page == 1 {
            task.set_total(resp.total_count);
        }
        let n = resp.secret_list.secret.len();
        out.extend(resp.secret_list.secret);
        task.inc(n as u64);
        if n < PAGE_SIZE as usize || out.len() as u64 >= resp.total_count {
            break;
        }
    }
    Ok(out)
}

/// Checks what clap cannot express; `Err` is a usage error (exit 2).
fn check_usage(command: &SecretCommand) -> std::result::Result<(), String> {
    let pairs: &[String] = match command {
        SecretCommand::List { filters } => filters,
        SecretCommand::Put(a) => &a.tags,
        SecretCommand::Tag { tags, .. } => tags,
        _ => &[],
    };
    for p in pairs {
        match p.split_once('=') {
            Some((k, _)) if !k.trim().is_empty() => {}
            _ => return Err(format!("{p:?}: write KEY=VALUE")),
        }
    }
    Ok(())
}

/// `PutSecretValue`, or `CreateSecret` when the secret does not exist.
async fn put(
    global: &GlobalArgs,
    kms: &KmsClient,
    name: &str,
    args: PutArgs,
    data: SecretString,
) -> Result<()> {
    let exists = match kms.describe_secret(name).await {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::NotFound => false,
        Err(e) => return Err(explain_for(e, name)),
    };
    let stages = (!args.version_stages.is_empty()).then(|| args.version_stages.clone());
    let value = if exists {
        let creation_only = [
            ("--secret-type", args.secret_type.is_some()),
            ("--description", args.description.is_some()),
            ("--tags", !args.tags.is_empty()),
            ("--encryption-key-id", args.encryption_key_id.is_some()),
            ("--extended-config", args.extended_config.is_some()),
        ];
        if let Some((flag, _)) = creation_only.iter().find(|(_, set)| *set) {
            bail!(
                "{name} already exists and {flag} applies only when put creates a secret; \
                 use `rota secret tag` for tags, or leave {flag} out to store a new version"
            );
        }
        let r = kms
            .send(&PutSecretValue {
                secret_name: name.to_owned(),
                version_id: args.version_id.clone(),
                secret_data: data,
                secret_data_type: args.secret_data_type.clone(),
                version_stages: stages,
            })
            .await
            .map_err(|e| explain_for(e, name))?;
        json!({
            "SecretName": name,
            "VersionId": r.version_id,
            "VersionStages": r.version_stages,
            "Created": false,
        })
    } else {
        if stages.is_some() {
            bail!(
                "{name} does not exist yet: its first version is always ACSCurrent; leave --version-stages out"
            );
        }
        let r = kms
            .send(&CreateSecret {
                secret_name: name.to_owned(),
                secret_data: data,
                version_id: args.version_id.clone(),
                secret_data_type: args.secret_data_type.clone(),
                secret_type: args.secret_type.clone(),
                encryption_key_id: args.encryption_key_id.clone(),
                description: args.description.clone(),
                tags: parse_tags(&args.tags)?,
                extended_config: args.extended_config.clone(),
                ..CreateSecret::default()
            })
            .await
            .map_err(|e| explain_for(e, name))?;
        json!({
            "SecretName": r.secret_name,
            "VersionId": r.version_id,
            "VersionStages": { "VersionStage": ["ACSCurrent"] },
            "Created": true,
        })
    };
    emit(global.output, &value, |v| {
        let stages = v["VersionStages"]["VersionStage"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let verb = if v["Created"] == true {
            "created with version"
        } else {
            "stored version"
        };
        format!(
            "{}: {verb} {} ({}).",
            v["SecretName"].as_str().unwrap_or_default(),
            v["VersionId"].as_str().unwrap_or_default(),
            if stages.is_empty() {
                "no stage"
            } else {
                &stages
            }
        )
    })
}

/// A resource address of the configuration resolves to its secret name (a
/// `$Auto` one to the name KMS gave it, from `live`); anything else is the
/// name itself.
fn secret_name(config: &Config, live: &BTreeMap<String, String>, name: &str) -> String {
    match config.resource(name) {
        Some(r) if rota_engine::resource::name_of_address(name).is_some() => live
            .get(&r.address)
            .cloned()
            .unwrap_or_else(|| r.args.secret_name.clone()),
        _ => name.to_owned(),
    }
}

/// Reads FILE, or standard input for `-`.
fn read_input(file: &std::path::Path, what: &str) -> Result<SecretString> {
    use rota_engine::files::{VALUE_LIMIT, read_limited, read_text};
    let text = if file.as_os_str() == "-" {
        read_limited(std::io::stdin().lock(), VALUE_LIMIT)
            .map_err(|e| anyhow!("cannot read {what} from standard input: {e}"))?
    } else {
        read_text(file, VALUE_LIMIT)
            .map_err(|e| anyhow!("cannot read {what} from {}: {e}", file.display()))?
    };
    Ok(SecretString::new(text))
}

fn parse_pairs(pairs: &[String]) -> Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
                .ok_or_else(|| anyhow!("{p:?}: write KEY=VALUE"))
        })
        .collect()
}

fn parse_tags(pairs: &[String]) -> Result<Vec<Tag>> {
    Ok(parse_pairs(pairs)?
        .into_iter()
        .map(|(k, v)| Tag::new(k, v))
        .collect())
}

/// `--filter` pairs grouped by key, in the order keys first appear.
fn parse_filters(pairs: &[String]) -> Result<Vec<Filter>> {
    let mut out: Vec<Filter> = Vec::new();
    for (key, value) in parse_pairs(pairs)? {
        match out.iter_mut().find(|f| f.key == key) {
            Some(f) => f.values.push(value),
            None => out.push(Filter {
                key,
                values: vec![value],
            }),
        }
    }
    Ok(out)
}

/// Adds what to do to the errors a user can act on (`hint:` lines).
fn explain(e: rota_kms::Error) -> anyhow::Error {
    let hint = match e.kind() {
        ErrorKind::PermissionDenied => Some(Hint::new(
            "not allowed",
            "check the RAM policy of the access key and the secret's policy (rota secret policy NAME)",
        )),
        ErrorKind::InvalidAccessKey | ErrorKind::Signature => Some(Hint::new(
            "the access key was refused",
            "check the access key (provider block, environment or --profile)",
        )),
        ErrorKind::Throttled => Some(Hint::new("the service is throttling", "retry in a moment")),
        ErrorKind::KeyUnusable => Some(Hint::new(
            "the KMS key that encrypts the secret is disabled, pending deletion or deleted",
            "enable it (EnableKey) or cancel its deletion (CancelKeyDeletion); DescribeKey shows its state",
        )),
        _ => None,
    };
    match hint {
        Some(h) => anyhow::Error::new(e).context(h),
        None => e.into(),
    }
}

fn explain_for(e: rota_kms::Error, name: &str) -> anyhow::Error {
    let hint = match e.kind() {
        ErrorKind::NotFound => Hint::new(
            format!("no secret named {name:?} (or no such version)"),
            "`rota secret list` shows the secrets, `rota secret versions NAME` their versions",
        ),
        ErrorKind::InDeleteWindow => Hint::new(
            format!("{name} is scheduled for deletion"),
            format!("`rota secret restore {name}` brings it back"),
        ),
        ErrorKind::AlreadyExists => Hint::new(
            format!("{name}: that version id is taken"),
            "pick another --version-id (`rota secret versions NAME` lists the ones in use)",
        ),
        _ => return explain(e),
    };
    anyhow::Error::new(e).context(hint)
}

fn strip_request_id(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        o.remove("RequestId");
    }
}

fn state(planned_delete_time: Option<&str>) -> String {
    match planned_delete_time {
        Some(t) if !t.is_empty() => "pending deletion".into(),
        _ => "active".into(),
    }
}

fn tags_text(tags: Option<&[Tag]>) -> String {
    let mut tags: Vec<&Tag> = tags.unwrap_or_default().iter().collect();
    tags.sort();
    tags.iter()
        .map(|t| format!("{}={}", t.tag_key, t.tag_value))
        .collect::<Vec<_>>()
        .join(",")
}

/// `Key: value` lines, aligned; empty values are left out.
fn fields(lines: &[(&str, String)]) -> String {
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    lines
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{:<width$} {v}", format!("{k}:")))
        .collect::<Vec<_>>()
        .join("\n")
}

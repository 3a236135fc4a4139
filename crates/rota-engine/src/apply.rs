//! Applying a plan: the planned KMS calls of each resource, in dependency
//! order (reverse order for destroys), each resource within its `timeouts`.
//!
//! Values come from the configuration, evaluated again with what is known
//! now (the ids of secrets created a moment ago), never from the plan, which
//! holds no secret value. When a call fails, that resource stops: the report
//! says which calls were made and which were not, resources that depend on it
//! are skipped, and independent resources carry on. Every failure is
//! reported; nothing is half-applied silently.
//!
//! Up to [`ApplyOptions::parallelism`] resources are applied at once (the
//! CLI's `-parallelism`, default 10 as in Terraform): a resource starts once
//! everything it depends on is done (for a destroy: everything that depends
//! on it), in plan order; the KMS client's own rate limits apply to all of
//! them together.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use rota_kms::kms::{
    CreateSecret, DeleteSecret, PutSecretValue, RestoreSecret, SetSecretPolicy, Tag, TagResources,
    UntagResources, UpdateSecret, UpdateSecretRotationPolicy, UpdateSecretVersionStage,
};
use rota_kms::{ErrorKind, KmsClient};
use tracing::Instrument as _;

use crate::config::{Config, Known, resource_object};
use crate::error::EngineError;
use crate::live::{self, ReadOptions};
use crate::ownership::Ownership;
use crate::plan::{Action, Plan, PlanMode, ResourceChange, Step};
use crate::resource::{SecretArgs, Timeouts};

/// Something that happened while applying, for progress output.
#[derive(Debug)]
#[non_exhaustive]
pub enum ApplyEvent<'a> {
    /// A resource starts.
    Started {
        /// Its address.
        address: &'a str,
        /// What is done to it.
        action: Action,
    },
    /// One KMS call succeeded.
    Call {
        /// The resource.
        address: &'a str,
        /// The KMS action.
        action: &'static str,
    },
    /// A resource is done.
    Finished {
        /// Its address.
        address: &'a str,
        /// What was done.
        action: Action,
        /// The secret's id afterwards (none after a destroy).
        id: Option<&'a str>,
    },
    /// A resource failed.
    Failed {
        /// Its address.
        address: &'a str,
        /// Why.
        error: &'a EngineError,
    },
    /// A resource was not attempted.
    Skipped {
        /// Its address.
        address: &'a str,
        /// Why.
        reason: &'a str,
    },
}

/// Receives [`ApplyEvent`]s (the CLI prints them).
pub trait Progress: Send + Sync {
    /// One event.
    fn event(&self, event: &ApplyEvent<'_>);
}

/// A progress sink that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _: &ApplyEvent<'_>) {}
}

/// How one resource ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Status {
    /// Every planned call was made.
    Applied,
    /// A call failed; `done` lists what was made before it.
    Failed(EngineError),
    /// Not attempted (a resource it depends on failed).
    Skipped(String),
}

/// The result of one resource.
#[derive(Debug)]
pub struct Outcome {
    /// Its address.
    pub address: String,
    /// What was planned.
    pub action: Action,
    /// How it ended.
    pub status: Status,
    /// The KMS calls made, in order.
    pub done: Vec<&'static str>,
    /// The planned calls not made.
    pub not_done: Vec<&'static str>,
    /// The secret's id afterwards.
    pub id: Option<String>,
}

/// The result of an apply.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// One outcome per resource with changes, in execution order.
    pub outcomes: Vec<Outcome>,
}

impl ApplyReport {
    /// Whether every resource was applied.
    pub fn is_success(&self) -> bool {
        self.outcomes
            .iter()
            .all(|o| matches!(o.status, Status::Applied))
    }

    /// The resources that failed or were skipped.
    pub fn failures(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes
            .iter()
            .filter(|o| !matches!(o.status, Status::Applied))
    }

    /// Counts of (added, changed, destroyed) that succeeded.
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for o in self
            .outcomes
            .iter()
            .filter(|o| matches!(o.status, Status::Applied))
        {
            match o.action {
                Action::Create => c.0 += 1,
                Action::Update => c.1 += 1,
                Action::Replace => {
                    c.0 += 1;
                    c.2 += 1;
                }
                Action::Delete => c.2 += 1,
                Action::NoOp => {}
            }
        }
        c
    }
}

/// How an apply runs.
#[derive(Debug, Clone, Copy)]
pub struct ApplyOptions {
    /// Most resources applied at once (at least 1).
    pub parallelism: usize,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self { parallelism: 10 }
    }
}

/// Applies `plan` one resource at a time. `ownership` tags the secrets
/// created.
pub async fn apply(
    client: &KmsClient,
    config: &Config,
    plan: &Plan,
    ownership: &Ownership,
    progress: &dyn Progress,
) -> ApplyReport {
    apply_with(
        client,
        config,
        plan,
        ownership,
        progress,
        ApplyOptions { parallelism: 1 },
    )
    .await
}

/// What one running resource change returns.
type Ran = (Result<(), EngineError>, Vec<&'static str>, Option<String>);

/// Applies `plan` with up to `options.parallelism` resources at once.
pub async fn apply_with(
    client: &KmsClient,
    config: &Config,
    plan: &Plan,
    ownership: &Ownership,
    progress: &dyn Progress,
    options: ApplyOptions,
) -> ApplyReport {
    let mut applier = Applier {
        client,
        config,
        plan,
        progress,
        known: known_before(config, plan),
        failed: BTreeSet::new(),
        // Names (labels) some other resource depends on: their live attributes are read after apply.
        depended: plan
            .resources
            .iter()
            .flat_map(|r| r.depends_on.iter().cloned())
            .collect(),
        report: ApplyReport::default(),
    };
    let parallelism = options.parallelism.max(1);
    // Names of the changes not finished yet (pending or running).
    let mut unfinished: BTreeSet<String> = plan
        .resources
        .iter()
        .filter(|r| r.action != Action::NoOp)
        .filter_map(|r| r.name.clone())
        .collect();
    // Each pending change with what it waits for (computed once: for a
    // destroy it is a scan of the plan).
    let mut pending: Vec<(&ResourceChange, Vec<String>)> = plan
        .resources
        .iter()
        .filter(|r| r.action != Action::NoOp)
        .map(|r| (r, applier.waits_for(r)))
        .collect();
    type Running<'f> = Vec<(
        &'f ResourceChange,
        Option<SecretArgs>,
        Vec<&'static str>,
        Pin<Box<dyn Future<Output = Ran> + 'f>>,
    )>;
    let mut running: Running<'_> = Vec::new();
    loop {
        // Start what may start, in plan order.
        while running.len() < parallelism {
            let ready = pending
                .iter()
                .position(|(_, waits_for)| !waits_for.iter().any(|n| unfinished.contains(n)));
            // Nothing running and nothing ready is only possible with a
            // dependency the plan's order does not honour: run the next
            // one rather than wait forever.
            let fallback = (running.is_empty() && !pending.is_empty()).then_some(0);
            let Some(i) = ready.or(fallback) else {
                break;
            };
            let (rc, _) = pending.remove(i);
            match applier.start(rc) {
                Some((args, planned)) => {
                    let fut = run_change(client, plan, ownership, progress, rc, args.clone());
                    running.push((rc, args, planned, Box::pin(fut)));
                }
                None => {
                    if let Some(n) = &rc.name {
                        unfinished.remove(n);
                    }
                }
            }
        }
        if running.is_empty() {
            break;
        }
        // The next change to finish.
        let (idx, (result, done, id)) = std::future::poll_fn(|cx| {
            for (i, (_, _, _, fut)) in running.iter_mut().enumerate() {
                if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                    return Poll::Ready((i, out));
                }
            }
            Poll::Pending
        })
        .await;
        let (rc, args, planned, _) = running.swap_remove(idx);
        let not_done: Vec<&'static str> = planned.iter().skip(done.len()).copied().collect();
        match result {
            Ok(()) => applier.applied(rc, args.as_ref(), done, not_done, id).await,
            Err(error) => applier.fail(rc, error, done, not_done, id),
        }
        if let Some(n) = &rc.name {
            unfinished.remove(n);
        }
    }
    applier.report
}

/// What is known before anything happens: the resources that stay as
/// they are, with their live attributes.
fn known_before(config: &Config, plan: &Plan) -> Known {
    let mut known = plan.data.0.clone();
    for r in &plan.resources {
        if let (Some(name), Some(l)) = (&r.name, plan.live(&r.address))
            && matches!(r.action, Action::NoOp | Action::Update)
            && let Some(res) = config.resource(name)
        {
            known.insert(
                name.clone(),
                resource_object(&res.args, Some(&l.computed())),
            );
        }
    }
    known
}

/// One apply in progress: what is known about the resources applied so
/// far, which failed, and the report.
struct Applier<'a> {
    client: &'a KmsClient,
    config: &'a Config,
    plan: &'a Plan,
    progress: &'a dyn Progress,
    /// The attributes references see, by name label.
    known: Known,
    /// Name labels of the resources that failed or were skipped.
    failed: BTreeSet<String>,
    /// Name labels some other resource depends on.
    depended: BTreeSet<String>,
    report: ApplyReport,
}

impl Applier<'_> {
    /// Names of the changes `rc` must wait for: what it depends on (for a
    /// destroy: what depends on it).
    fn waits_for(&self, rc: &ResourceChange) -> Vec<String> {
        match self.plan.mode {
            PlanMode::Apply => rc.depends_on.clone(),
            PlanMode::Destroy => self
                .plan
                .resources
                .iter()
                .filter(|o| rc.name.as_ref().is_some_and(|n| o.depends_on.contains(n)))
                .filter_map(|o| o.name.clone())
                .collect(),
        }
    }

    /// Starts one resource change, unless a resource it depends on failed
    /// or its arguments cannot be evaluated with what is known now (both
    /// recorded): its arguments and planned calls.
    fn start(&mut self, rc: &ResourceChange) -> Option<(Option<SecretArgs>, Vec<&'static str>)> {
        let planned_calls: Vec<&'static str> = rc.steps.iter().map(Step::action).collect();
        if let Some(b) = self.blocker(rc) {
            self.skip(rc, &b, planned_calls);
            return None;
        }
        self.progress.event(&ApplyEvent::Started {
            address: &rc.address,
            action: rc.action,
        });
        // Arguments, evaluated again with what is known now.
        let args = match rc.name.as_deref().and_then(|n| self.config.resource(n)) {
            Some(res) => match self.config.evaluate(res, &self.known) {
                Ok(a) => Some(a),
                Err(d) => {
                    let error = EngineError::Config(d);
                    self.fail(rc, error, Vec::new(), planned_calls, None);
                    return None;
                }
            },
            None => None,
        };
        Some((args, planned_calls))
    }

    /// A failed resource this one depends on (for a destroy: a failed
    /// resource that depends on this one), if there is one.
    fn blocker(&self, rc: &ResourceChange) -> Option<String> {
        self.waits_for(rc)
            .into_iter()
            .find(|b| self.failed.contains(b))
    }

    /// Records a resource that was applied; what references to it see is
    /// updated (read live again when another resource depends on it).
    async fn applied(
        &mut self,
        rc: &ResourceChange,
        args: Option<&SecretArgs>,
        done: Vec<&'static str>,
        not_done: Vec<&'static str>,
        id: Option<String>,
    ) {
        self.progress.event(&ApplyEvent::Finished {
            address: &rc.address,
            action: rc.action,
            id: id.as_deref().filter(|_| rc.action != Action::Delete),
        });
        if let (Some(name), Some(args)) = (&rc.name, args)
            && rc.action != Action::Delete
        {
            let computed = if self.depended.contains(name) {
                match live::read(
                    self.client,
                    id.as_deref().unwrap_or(&args.secret_name),
                    ReadOptions::default(),
                )
                .await
                {
                    Ok(Some(l)) => Some(l.computed()),
                    _ => None,
                }
            } else {
                None
            };
            self.known
                .insert(name.clone(), resource_object(args, computed.as_ref()));
        }
        self.report.outcomes.push(Outcome {
            address: rc.address.clone(),
            action: rc.action,
            status: Status::Applied,
            done,
            not_done,
            id: id.filter(|_| rc.action != Action::Delete),
        });
    }

    /// Records a resource that failed, which blocks what depends on it.
    fn fail(
        &mut self,
        rc: &ResourceChange,
        error: EngineError,
        done: Vec<&'static str>,
        not_done: Vec<&'static str>,
        id: Option<String>,
    ) {
        self.progress.event(&ApplyEvent::Failed {
            address: &rc.address,
            error: &error,
        });
        if let Some(n) = &rc.name {
            self.failed.insert(n.clone());
        }
        self.report.outcomes.push(Outcome {
            address: rc.address.clone(),
            action: rc.action,
            status: Status::Failed(error),
            done,
            not_done,
            id,
        });
    }

    /// Records a resource not attempted because `blocker` failed; it blocks
    /// what depends on it in turn.
    fn skip(&mut self, rc: &ResourceChange, blocker: &str, planned_calls: Vec<&'static str>) {
        if let Some(n) = &rc.name {
            self.failed.insert(n.clone());
        }
        let reason = format!(
            "{} failed",
            crate::resource::RESOURCE_TYPE.to_owned() + "." + blocker
        );
        self.progress.event(&ApplyEvent::Skipped {
            address: &rc.address,
            reason: &reason,
        });
        self.report.outcomes.push(Outcome {
            address: rc.address.clone(),
            action: rc.action,
            status: Status::Skipped(reason),
            done: Vec::new(),
            not_done: planned_calls,
            id: None,
        });
    }
}

/// Makes the planned calls of `rc` within its timeout. Returns the
/// result, the calls made and the secret's id afterwards.
async fn run_change(
    client: &KmsClient,
    plan: &Plan,
    ownership: &Ownership,
    progress: &dyn Progress,
    rc: &ResourceChange,
    args: Option<SecretArgs>,
) -> Ran {
    let timeouts = args.as_ref().map(|a| a.timeouts).unwrap_or_default();
    let limit = match rc.action {
        Action::Create | Action::Replace => timeouts.create,
        Action::Update => timeouts.update,
        _ => timeouts.delete,
    };
    let mut run = Run {
        client,
        rc,
        args: args.as_ref(),
        ownership,
        progress,
        done: Vec::new(),
        id: plan.live(&rc.address).map(|l| l.name.clone()),
    };
    let span = tracing::info_span!(
        "rota.apply",
        resource.address = %rc.address,
        secret.name = %rc.secret_name
    );
    let result = match tokio::time::timeout(limit, run.steps().instrument(span)).await {
        Ok(r) => r,
        Err(_) => Err(EngineError::Timeout {
            address: rc.address.clone(),
            operation: operation(rc.action, &timeouts),
            seconds: limit.as_secs(),
        }),
    };
    (result, run.done, run.id)
}

fn operation(action: Action, _t: &Timeouts) -> &'static str {
    match action {
        Action::Create | Action::Replace => "create",
        Action::Update => "update",
        _ => "delete",
    }
}

/// The calls of one resource change, as they are made.
struct Run<'a> {
    client: &'a KmsClient,
    rc: &'a ResourceChange,
    args: Option<&'a SecretArgs>,
    ownership: &'a Ownership,
    progress: &'a dyn Progress,
    done: Vec<&'static str>,
    id: Option<String>,
}

impl Run<'_> {
    /// The configured arguments (a resource being destroyed may have none).
    fn args(&self) -> Result<&SecretArgs, EngineError> {
        self.args.ok_or_else(|| {
            EngineError::Internal(format!("{} has no configuration", self.rc.address))
        })
    }

    /// The secret's name: its id once known, else the planned name.
    fn name(&self) -> String {
        self.id
            .clone()
            .unwrap_or_else(|| self.rc.secret_name.clone())
    }

    /// Wraps a failed KMS `action` on this secret.
    fn kms(&self, action: &'static str) -> impl FnOnce(rota_kms::Error) -> EngineError + '_ {
        move |source| EngineError::Kms {
            secret: self.name(),
            action,
            source,
        }
    }

    /// Makes every planned call in order, recording each one made.
    async fn steps(&mut self) -> Result<(), EngineError> {
        for step in &self.rc.steps {
            self.step(step).await?;
            self.done.push(step.action());
            self.progress.event(&ApplyEvent::Call {
                address: &self.rc.address,
                action: step.action(),
            });
        }
        Ok(())
    }

    /// Makes the KMS call of one planned step.
    async fn step(&mut self, step: &Step) -> Result<(), EngineError> {
        let client = self.client;
        match step {
            Step::RestoreSecret => {
                client
                    .send(&RestoreSecret {
                        secret_name: self.name(),
                    })
                    .await
                    .map_err(self.kms("RestoreSecret"))?;
            }
            Step::DeleteSecret {
                secret_name,
                force,
                recovery_window_in_days,
            } => {
                self.delete_secret(secret_name, *force, *recovery_window_in_days)
                    .await?
            }
            Step::CreateSecret => self.create_secret().await?,
            Step::PutSecretValue { version_id } => {
                let args = self.args()?;
                client
                    .send(&PutSecretValue {
                        secret_name: self.name(),
                        version_id: version_id.clone(),
                        secret_data: args.secret_data.clone(),
                        secret_data_type: Some(args.secret_data_type.clone()),
                        version_stages: args.version_stages.clone(),
                    })
                    .await
                    .map_err(self.kms("PutSecretValue"))?;
            }
            Step::UpdateSecretVersionStage {
                stage,
                move_to,
                remove_from,
            } => {
                client
                    .send(&UpdateSecretVersionStage {
                        secret_name: self.name(),
                        version_stage: stage.clone(),
                        move_to_version: move_to.clone(),
                        remove_from_version: remove_from.clone(),
                    })
                    .await
                    .map_err(self.kms("UpdateSecretVersionStage"))?;
            }
            Step::UpdateSecretRotationPolicy => self.update_rotation_policy().await?,
            Step::SetSecretPolicy => {
                let args = self.args()?;
                client
                    .send(&SetSecretPolicy {
                        secret_name: self.name(),
                        policy: args.policy.clone().unwrap_or_default(),
                        policy_name: args.policy_name.clone(),
                    })
                    .await
                    .map_err(self.kms("SetSecretPolicy"))?;
            }
            Step::UpdateSecret {
                description,
                custom_data,
            } => self.update_secret(*description, *custom_data).await?,
            Step::UntagResources { keys } => {
                client
                    .send(&UntagResources {
                        resource_type: "secret".into(),
                        resource_ids: vec![self.name()],
                        tag_keys: keys.clone(),
                        all: None,
                    })
                    .await
                    .map_err(self.kms("UntagResources"))?;
            }
            Step::TagResources { keys } => self.tag_resources(keys).await?,
            Step::TagOwnership => {
                self.client
                    .send(&TagResources {
                        resource_type: "secret".into(),
                        resource_ids: vec![self.name()],
                        tags: self.ownership.tags(&self.rc.address),
                    })
                    .await
                    .map_err(self.kms("TagResources"))?;
            }
        }
        Ok(())
    }

    /// DeleteSecret; a secret already gone counts as deleted. After a
    /// destroy the resource has no id.
    async fn delete_secret(
        &mut self,
        secret_name: &str,
        force: bool,
        recovery_window_in_days: u32,
    ) -> Result<(), EngineError> {
        let r = self
            .client
            .send(&DeleteSecret {
                secret_name: secret_name.to_owned(),
                force_delete_without_recovery: Some(force),
                recovery_window_in_days: Some(recovery_window_in_days),
            })
            .await;
        match r {
            Ok(_) => {}
            // Already gone counts as deleted (as in the Terraform provider).
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(source) => {
                return Err(EngineError::Kms {
                    secret: secret_name.to_owned(),
                    action: "DeleteSecret",
                    source,
                });
            }
        }
        if self.rc.action == Action::Delete {
            self.id = None;
        }
        Ok(())
    }

    /// CreateSecret with the configured arguments, the user's tags plus
    /// the ownership tags, and the custom data inside the extended
    /// configuration. The secret's id is the name KMS returns.
    async fn create_secret(&mut self) -> Result<(), EngineError> {
        let args = self.args()?;
        let mut tags: Vec<Tag> = args
            .tags
            .iter()
            .map(|(k, v)| Tag::new(k.clone(), v.clone()))
            .collect();
        tags.extend(self.ownership.tags(&self.rc.address));
        let extended_config = match (&args.custom_data, args.extended_config_json()) {
            (Some(cd), Some(mut ext)) => {
                ext.insert("CustomData".into(), serde_json::Value::Object(cd.clone()));
                Some(serde_json::Value::Object(ext).to_string())
            }
            _ => args.extended_config.clone(),
        };
        let resp = self
            .client
            .send(&CreateSecret {
                secret_name: args.secret_name.clone(),
                secret_data: args.secret_data.clone(),
                version_id: args.version_id.clone(),
                secret_data_type: Some(args.secret_data_type.clone()),
                secret_type: Some(args.secret_type.clone()),
                encryption_key_id: args.encryption_key_id.clone(),
                dkms_instance_id: args.dkms_instance_id.clone(),
                description: args.description.clone(),
                tags,
                extended_config,
                enable_automatic_rotation: args.enable_automatic_rotation,
                rotation_interval: args.rotation_interval.clone(),
                policy: args.policy.clone(),
            })
            .await
            .map_err(|source| EngineError::Kms {
                secret: args.secret_name.clone(),
                action: "CreateSecret",
                source,
            })?;
        tracing::info!(secret.name = %resp.secret_name, "secret created");
        self.id = Some(resp.secret_name);
        Ok(())
    }

    /// UpdateSecretRotationPolicy: on with the configured interval, or off.
    async fn update_rotation_policy(&self) -> Result<(), EngineError> {
        let args = self.args()?;
        let on = args.enable_automatic_rotation.unwrap_or(false);
        self.client
            .send(&UpdateSecretRotationPolicy {
                secret_name: self.name(),
                enable_automatic_rotation: on,
                rotation_interval: if on {
                    args.rotation_interval.clone()
                } else {
                    None
                },
            })
            .await
            .map_err(self.kms("UpdateSecretRotationPolicy"))?;
        Ok(())
    }

    /// UpdateSecret with the description and/or the custom data, as
    /// planned.
    async fn update_secret(&self, description: bool, custom_data: bool) -> Result<(), EngineError> {
        let args = self.args()?;
        self.client
            .send(&UpdateSecret {
                secret_name: self.name(),
                description: description.then(|| args.description.clone().unwrap_or_default()),
                custom_data: if custom_data {
                    args.desired_custom_data()
                        .map(|o| serde_json::Value::Object(o).to_string())
                } else {
                    None
                },
            })
            .await
            .map_err(self.kms("UpdateSecret"))?;
        Ok(())
    }

    /// TagResources with the configured values of `keys` (no call when
    /// none is configured).
    async fn tag_resources(&self, keys: &[String]) -> Result<(), EngineError> {
        let args = self.args()?;
        let tags: Vec<Tag> = keys
            .iter()
            .filter_map(|k| args.tags.get(k).map(|v| Tag::new(k.clone(), v.clone())))
            .collect();
        if !tags.is_empty() {
            self.client
                .send(&TagResources {
                    resource_type: "secret".into(),
                    resource_ids: vec![self.name()],
                    tags,
                })
                .await
                .map_err(self.kms("TagResources"))?;
        }
        Ok(())
    }
}

/// The default create/update/delete timeouts (for callers that show them).
pub fn default_timeouts() -> BTreeMap<&'static str, Duration> {
    let t = Timeouts::default();
    BTreeMap::from([
        ("create", t.create),
        ("update", t.update),
        ("delete", t.delete),
    ])
}

//! Rotation events in the binary: the sinks of the `notify` blocks (their
//! signing keys read from the environment here, the only crate that reads
//! it), the [`Events`] writer over the scheduler store's outbox, the
//! events of `apply`/`destroy`, and the short delivery pass of commands
//! that wrote events (a running daemon delivers the rest).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use rota_engine::config::Config;
use rota_engine::config::notify::NotifyConfig;
use rota_rotation::SecretString;
use rota_rotation::events::{Events, EventsConfig, SinkSpec, SinkTarget, random_id};
use rota_scheduler::Outbox;

use crate::output::Hint;

pub(crate) mod server;

/// How long a command that wrote events (apply, destroy, rotate) delivers
/// them before it exits; what is left waits for `rota run`.
pub(crate) const DRAIN: Duration = Duration::from_secs(10);

/// The sinks of `config`'s `notify` blocks.
///
/// # Errors
///
/// A `signing_key_env` that names an unset or empty variable.
pub(crate) fn events_config(config: &Config) -> Result<EventsConfig> {
    let sinks = config.notify.iter().map(sink).collect::<Result<Vec<_>>>()?;
    Ok(EventsConfig {
        sinks,
        retention: config.events.retention,
    })
}

fn sink(n: &NotifyConfig) -> Result<SinkSpec> {
    let target = match &n.url {
        Some(url) => {
            let key = match &n.signing_key_env {
                Some(var) => match std::env::var(var) {
                    Ok(v) if !v.is_empty() => Some(SecretString::new(v)),
                    _ => {
                        return Err(Hint::error(
                            format!(
                                "notify {:?}: the environment variable {var} (signing_key_env) is not set",
                                n.name
                            ),
                            format!(
                                "export {var} with the webhook's signing key (e.g. whsec_ followed by base64), or remove signing_key_env to send unsigned events"
                            ),
                        ));
                    }
                },
                None => None,
            };
            SinkTarget::Webhook {
                url: url.clone(),
                key,
                timeout: n.timeout,
            }
        }
        None => SinkTarget::Command {
            argv: n.command.clone(),
            timeout: n.timeout,
        },
    };
    Ok(SinkSpec {
        name: n.name.clone(),
        target,
        types: n.types.clone(),
        secrets: n.secrets.clone(),
        retry_for: n.retry_for,
        max_pending: n.max_pending,
    })
}

/// This Rota as an event `source`: `rota://<host>`.
fn source() -> String {
    let host = crate::commands::host_name().unwrap_or_else(|| "localhost".into());
    format!("rota://{host}")
}

/// The events writer over `outbox`, with `config`'s sinks.
pub(crate) fn open(config: &Config, outbox: Arc<dyn Outbox>) -> Result<Arc<Events>> {
    Ok(Arc::new(Events::new(
        outbox,
        events_config(config)?,
        source(),
        crate::clock::shared(),
    )))
}

/// Delivers what is due for at most [`DRAIN`] (a command that wrote
/// events; sinks a daemon delivers are left to it).
pub(crate) async fn deliver_now(events: &Arc<Events>) {
    if events.config().sinks.is_empty() {
        return;
    }
    match rota_rotation::events::deliver::Deliverer::new(
        Arc::clone(events),
        crate::commands::owner_id(),
    ) {
        Ok(d) => {
            d.drain(DRAIN).await;
        }
        Err(e) => tracing::warn!(error = %e, "cannot deliver events"),
    }
}

/// `secret.created|updated|replaced|deleted` for one resource an apply or
/// destroy changed.
pub(crate) fn secret_event(
    events: &Events,
    kind: &str,
    secret: &str,
    address: &str,
    version_id: Option<&str>,
) -> rota_scheduler::NewEvent {
    let mut data = serde_json::json!({ "address": address });
    if let Some(v) = version_id {
        data["version_id"] = serde_json::json!(v);
    }
    events.event(random_id(), kind, secret, events.now(), data)
}

/// Writes the `secret.*` events of an apply or destroy and delivers them
/// (briefly). The changes are made already: a store that cannot be opened
/// costs the events (logged), never the apply.
pub(crate) async fn after_apply(
    global: &crate::cli::GlobalArgs,
    config: &Config,
    data_dir: &std::path::Path,
    plan: &rota_engine::plan::Plan,
    report: &rota_engine::apply::ApplyReport,
) {
    use rota_engine::apply::Status;
    use rota_engine::plan::Action;
    let applied: Vec<_> = report
        .outcomes
        .iter()
        .filter(|o| matches!(o.status, Status::Applied))
        .collect();
    if applied.is_empty() {
        return;
    }
    let opened = crate::store::choice(global, Some(config), data_dir)
        .and_then(|c| c.open(&crate::commands::owner_id()))
        .and_then(|stores| open(config, stores.outbox));
    let events = match opened {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "the secret events of this change are not written");
            return;
        }
    };
    let mut written = Vec::new();
    for o in applied {
        let kind = match o.action {
            Action::Create => "secret.created",
            Action::Update => "secret.updated",
            Action::Replace => "secret.replaced",
            Action::Delete => "secret.deleted",
            Action::NoOp => continue,
        };
        let planned = plan.resources.iter().find(|r| r.address == o.address);
        let secret = match (planned, &o.id) {
            (Some(r), _) if r.secret_name != rota_rotation::AUTO_NAME => r.secret_name.clone(),
            (_, Some(id)) => id.clone(),
            (Some(r), None) => r.secret_name.clone(),
            (None, None) => continue,
        };
        written.push(secret_event(&events, kind, &secret, &o.address, None));
    }
    events.append(written).await;
    deliver_now(&events).await;
}

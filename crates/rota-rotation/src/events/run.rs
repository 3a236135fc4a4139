//! The events of scheduler runs and manual rotations.
//!
//! Ids: `<type>`, the job and the slot, and for attempt events the attempt
//! — a run repeated after a crash writes the same ids.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rota_scheduler::outbox::NewEvent;
use rota_scheduler::{JobRun, Outcome, RunEnd, RunEvents};

use super::{Events, RotationData, event_id, slot_key};
use crate::daemon::WorkflowOutput;
use crate::jobs::{JobPayload, RunRotationError};
use crate::protocol::{RotationOutcome, RotationRequest};
use crate::target::JobKind;

fn rotation_name(payload: &serde_json::Value) -> String {
    serde_json::from_value::<JobPayload>(payload.clone())
        .map(|p| p.rotation)
        .unwrap_or_default()
}

/// `rotation.started` for a scheduler run.
pub fn started(events: &Events, run: &JobRun, req: &RotationRequest) -> NewEvent {
    let attempt = run.attempt.to_string();
    let data = RotationData {
        rotation: &rotation_name(&run.payload),
        plugin: &req.plugin,
        attempt: req.attempt,
        slot: Some(run.slot),
        version_id: Some(&req.token),
        ..Default::default()
    }
    .to_json();
    events.event(
        event_id(&["rotation.started", &run.name, &slot_key(run.slot), &attempt]),
        "rotation.started",
        &req.secret,
        events.now(),
        data,
    )
}

/// `rotation.rotated`, `rotation.resumed` or `rotation.failed` at the end
/// of a rotation attempt (`slot`: the scheduler's, or none for a manual
/// rotation); `job` names it in the id.
pub fn outcome(
    events: &Events,
    job: &str,
    rotation: &str,
    req: &RotationRequest,
    slot: Option<DateTime<Utc>>,
    result: &Result<RotationOutcome, RunRotationError>,
) -> NewEvent {
    let (kind, version, step, error) = match result {
        Ok(RotationOutcome::Rotated {
            version_id,
            resumed: true,
        }) => ("rotation.resumed", version_id.clone(), None, None),
        Ok(
            RotationOutcome::Rotated { version_id, .. }
            | RotationOutcome::AlreadyDone { version_id },
        ) => ("rotation.rotated", version_id.clone(), None, None),
        Err(e) => (
            "rotation.failed",
            req.token.clone(),
            e.step().map(|s| s.name()),
            Some(e.to_string()),
        ),
    };
    let data = RotationData {
        rotation,
        plugin: &req.plugin,
        attempt: req.attempt,
        slot,
        step,
        version_id: Some(&version),
        error: error.as_deref(),
    }
    .to_json();
    let slot_part = slot.map_or_else(|| req.token.clone(), slot_key);
    events.event(
        event_id(&[kind, job, &slot_part, &req.attempt.to_string()]),
        kind,
        &req.secret,
        events.now(),
        data,
    )
}

/// The end of a scheduler run's rotation attempt.
pub fn ended(
    events: &Events,
    run: &JobRun,
    req: &RotationRequest,
    result: &Result<RotationOutcome, RunRotationError>,
) -> NewEvent {
    outcome(
        events,
        &run.name,
        &rotation_name(&run.payload),
        req,
        Some(run.slot),
        result,
    )
}

/// `workflow.ran` or `workflow.failed`.
pub fn workflow(
    events: &Events,
    name: &str,
    run: &JobRun,
    result: &Result<WorkflowOutput, String>,
) -> NewEvent {
    let (kind, mut data) = match result {
        Ok(out) => (
            "workflow.ran",
            serde_json::json!({ "summary": out.summary }),
        ),
        Err(e) => ("workflow.failed", serde_json::json!({ "error": e })),
    };
    data["workflow"] = serde_json::json!(name);
    data["attempt"] = serde_json::json!(run.attempt);
    events.event(
        event_id(&[
            kind,
            &run.name,
            &slot_key(run.slot),
            &run.attempt.to_string(),
        ]),
        kind,
        name,
        events.now(),
        data,
    )
}

/// Adds `rotation.needs_attention` (a run spent its retry budget) and
/// `rotation.recovered` (the first success after it) to run ends.
#[derive(Debug)]
pub struct DaemonRunEvents {
    events: Arc<Events>,
}

impl DaemonRunEvents {
    /// Over `events`.
    pub fn new(events: Arc<Events>) -> Self {
        Self { events }
    }
}

impl RunEvents for DaemonRunEvents {
    fn ended(&self, end: &RunEnd<'_>) -> Vec<NewEvent> {
        if !matches!(JobKind::parse(end.name), Some(JobKind::Rotation(_))) {
            return Vec::new();
        }
        let Ok(p) = serde_json::from_value::<JobPayload>(end.payload.clone()) else {
            return Vec::new();
        };
        let kind = match end.outcome {
            Outcome::Failed if end.needs_attention => "rotation.needs_attention",
            Outcome::Succeeded if end.was_attention => "rotation.recovered",
            _ => return Vec::new(),
        };
        let data = RotationData {
            rotation: &p.rotation,
            plugin: &p.plugin,
            attempt: end.attempt,
            slot: Some(end.slot),
            error: end.error,
            ..Default::default()
        }
        .to_json();
        let event = self.events.event(
            event_id(&[
                kind,
                end.name,
                &slot_key(end.slot),
                &end.attempt.to_string(),
            ]),
            kind,
            &p.secret,
            end.ended,
            data,
        );
        self.events.written(std::slice::from_ref(&event));
        vec![event]
    }
}

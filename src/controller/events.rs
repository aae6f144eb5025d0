//! Kubernetes Events on the Incident, one per transition, so `kubectl describe inc` shows the
//! story: queued, started, retried, completed or failed.
//!
//! The lifecycle decides *which* events happen ([`IncidentEvent`], pure); [`EventPublisher`] sends
//! them through the one shared `Recorder`, which also folds repeats into an event series.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};

use super::text::truncate_start;

/// Waiting for a free agent slot.
pub const REASON_QUEUED: &str = "Queued";
/// An agent pod was created.
pub const REASON_AGENT_STARTED: &str = "AgentStarted";
/// An attempt failed and another will follow.
pub const REASON_AGENT_RETRYING: &str = "AgentRetrying";
/// The agent finished; the report is in the status.
pub const REASON_COMPLETED: &str = "Completed";
/// The Incident gave up (attempts exhausted).
pub const REASON_FAILED: &str = "Failed";
/// The Incident does not match the schema; nothing runs until it is fixed.
pub const REASON_INVALID_SPEC: &str = "InvalidSpec";
/// The API-key Secret is missing; nothing runs until it exists.
pub const REASON_MISSING_API_KEY_SECRET: &str = "MissingApiKeySecret";
/// The agent pod's ServiceAccount is missing; nothing runs until it exists.
pub const REASON_MISSING_SERVICE_ACCOUNT: &str = "MissingServiceAccount";
/// A rerun was requested through the annotation.
pub const REASON_RERUN_STARTED: &str = "RerunStarted";
/// The spec changed after the Incident finished; it is not rerun automatically.
pub const REASON_SPEC_CHANGED_AFTER_FINISH: &str = "SpecChangedAfterFinish";
/// The agent pod cannot start (image pull, configuration), as the kubelet reports it.
pub const REASON_AGENT_POD_STUCK: &str = "AgentPodStuck";
/// A reconcile failed; the note holds the error chain.
pub const REASON_RECONCILE_ERROR: &str = "ReconcileError";
/// The alert fired again within the recurrence cool-down; counted, not investigated again.
pub const REASON_RECURRED: &str = "Recurred";
/// The daily budget is spent; the Incident waits in Queued until the window frees budget.
pub const REASON_BUDGET_EXHAUSTED: &str = "BudgetExhausted";
/// A remediate-mode investigation proposed a plan; it waits for a human's IncidentApproval.
pub const REASON_PLAN_PROPOSED: &str = "PlanProposed";
/// A human approved the plan (the note names who, through which IncidentApproval).
pub const REASON_PLAN_APPROVED: &str = "PlanApproved";
/// A human rejected the plan.
pub const REASON_PLAN_REJECTED: &str = "PlanRejected";
/// Nobody approved the plan before it expired.
pub const REASON_APPROVAL_EXPIRED: &str = "ApprovalExpired";
/// An IncidentApproval was not acted on: it names another plan hash, or came too early or late.
pub const REASON_STALE_PLAN_HASH: &str = "StalePlanHash";
/// The execution pod of an approved plan was created (its own reason: Events with one reason
/// are aggregated into one series, which would hide it under the investigation's AgentStarted).
pub const REASON_EXECUTION_STARTED: &str = "ExecutionStarted";
/// The execution session of an approved plan finished.
pub const REASON_PLAN_EXECUTED: &str = "PlanExecuted";

/// The Events API caps notes at 1 KiB.
pub const NOTE_MAX_BYTES: usize = 1000;

/// Every event names the action "Reconcile": it is what the controller was doing.
const ACTION: &str = "Reconcile";

/// An event the lifecycle wants published on the Incident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentEvent {
    /// Warning (something needs attention) or Normal.
    pub warning: bool,
    /// One of the `REASON_*` constants.
    pub reason: &'static str,
    /// What happened, for people; shortened to [`NOTE_MAX_BYTES`] when published.
    pub note: String,
}

impl IncidentEvent {
    /// A Normal event.
    pub fn normal(reason: &'static str, note: impl Into<String>) -> Self {
        Self {
            warning: false,
            reason,
            note: note.into(),
        }
    }

    /// A Warning event.
    pub fn warning(reason: &'static str, note: impl Into<String>) -> Self {
        Self {
            warning: true,
            reason,
            note: note.into(),
        }
    }

    /// The kube-runtime event, with the note bounded.
    pub fn to_kube_event(&self) -> Event {
        Event {
            type_: if self.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: self.reason.to_string(),
            note: Some(truncate_start(&self.note, NOTE_MAX_BYTES)),
            action: ACTION.to_string(),
            secondary: None,
        }
    }
}

/// Publishes [`IncidentEvent`]s through the controller's one shared [`Recorder`].
#[derive(Clone)]
pub struct EventPublisher {
    recorder: Recorder,
}

impl EventPublisher {
    /// Wraps the shared recorder.
    pub fn new(recorder: Recorder) -> Self {
        Self { recorder }
    }

    /// Publishes `event` about the object `regarding`. A failed publish is logged, never fatal:
    /// events are a courtesy, the status is the record.
    pub async fn publish(&self, event: &IncidentEvent, regarding: &ObjectReference) {
        if let Err(error) = self
            .recorder
            .publish(&event.to_kube_event(), regarding)
            .await
        {
            tracing::warn!(
                reason = event.reason,
                object = regarding.name.as_deref().unwrap_or_default(),
                error = %error,
                "could not publish event"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_bounded_and_types_mapped() {
        let event = IncidentEvent::warning(REASON_FAILED, "é".repeat(2000)).to_kube_event();
        assert_eq!(event.type_, EventType::Warning);
        assert_eq!(event.reason, "Failed");
        assert!(event.note.unwrap().len() <= NOTE_MAX_BYTES);
        let event = IncidentEvent::normal(REASON_QUEUED, "waiting").to_kube_event();
        assert_eq!(event.type_, EventType::Normal);
        assert_eq!(event.note.as_deref(), Some("waiting"));
    }
}

//! Standard Kubernetes conditions on the Incident: their types, their reasons, and the one rule that
//! makes conditions trustworthy: `lastTransitionTime` moves only when a condition's status does.
//!
//! The controller writes three conditions, always together, all derived from one [`StateSummary`]:
//! `Ready` (True once a report is in), `AgentRunning` (True while an agent pod exists and is not
//! finished) and `Failed` (True once the Incident gave up). Each carries the same PascalCase reason,
//! so `kubectl get inc -o wide` and `kubectl describe` tell one story.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::text::truncate_start;

/// The investigation is finished with a result.
pub const TYPE_READY: &str = "Ready";
/// An agent pod exists and has not finished.
pub const TYPE_AGENT_RUNNING: &str = "AgentRunning";
/// The Incident will not be investigated (until a rerun or a spec fix).
pub const TYPE_FAILED: &str = "Failed";

/// Waiting for a free agent slot.
pub const REASON_WAITING_FOR_SLOT: &str = "WaitingForSlot";
/// A daily budget is spent (`src/budget/`); the Incident starts when the window frees budget.
pub const REASON_BUDGET_EXHAUSTED: &str = "BudgetExhausted";
/// The API-key Secret is missing in the Incident's namespace.
pub const REASON_MISSING_API_KEY_SECRET: &str = "MissingApiKeySecret";
/// The ServiceAccount the agent pod runs as does not exist (the API server refused the pod).
pub const REASON_MISSING_SERVICE_ACCOUNT: &str = "MissingServiceAccount";
/// An attempt failed; the next one starts after a backoff.
pub const REASON_BACKING_OFF: &str = "BackingOff";
/// A rerun was requested; the previous run's pods are being removed.
pub const REASON_RERUN_REQUESTED: &str = "RerunRequested";
/// The agent pod was created and is not running yet.
pub const REASON_POD_PENDING: &str = "PodPending";
/// The agent process is running.
pub const REASON_POD_RUNNING: &str = "PodRunning";
/// The agent pod is being deleted before it finished.
pub const REASON_POD_TERMINATING: &str = "PodTerminating";
/// The agent finished and its results are in the status.
pub const REASON_COMPLETED: &str = "Completed";
/// Every allowed attempt failed.
pub const REASON_BACKOFF_LIMIT_EXCEEDED: &str = "BackoffLimitExceeded";
/// The Incident could not be read (its spec or status does not match the schema).
pub const REASON_INVALID_SPEC: &str = "InvalidSpec";

/// Condition messages are for people; keep them short enough for `kubectl describe`.
pub const CONDITION_MESSAGE_MAX_BYTES: usize = 1024;

/// The controller's view of an Incident's state, from which all three conditions follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateSummary {
    /// `Ready` is True.
    pub ready: bool,
    /// `AgentRunning` is True.
    pub agent_running: bool,
    /// `Failed` is True.
    pub failed: bool,
    /// One of the `REASON_*` constants.
    pub reason: &'static str,
    pub message: String,
}

/// The three conditions for `summary`, keeping each one's `lastTransitionTime` from `previous`
/// when its status did not change.
pub fn conditions_for(
    summary: &StateSummary,
    previous: &[Condition],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    [
        (TYPE_READY, summary.ready),
        (TYPE_AGENT_RUNNING, summary.agent_running),
        (TYPE_FAILED, summary.failed),
    ]
    .into_iter()
    .map(|(type_, is_true)| {
        condition(
            previous,
            type_,
            is_true,
            summary.reason,
            &summary.message,
            generation,
            now,
        )
    })
    .collect()
}

/// One condition; `lastTransitionTime` is `now` only when the status differs from `previous`.
pub fn condition(
    previous: &[Condition],
    type_: &str,
    is_true: bool,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if is_true { "True" } else { "False" };
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: truncate_start(message, CONDITION_MESSAGE_MAX_BYTES),
        observed_generation: generation,
        last_transition_time,
    }
}

/// The reason of the condition `type_`, if present.
pub fn reason_of<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a str> {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.reason.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn summary(agent_running: bool, reason: &'static str) -> StateSummary {
        StateSummary {
            ready: false,
            agent_running,
            failed: false,
            reason,
            message: format!("{reason} now"),
        }
    }

    #[test]
    fn first_conditions_start_now() {
        let now = at("2026-01-01T00:00:00Z");
        let conditions =
            conditions_for(&summary(false, REASON_WAITING_FOR_SLOT), &[], Some(3), now);
        let types: Vec<_> = conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, [TYPE_READY, TYPE_AGENT_RUNNING, TYPE_FAILED]);
        for c in &conditions {
            assert_eq!(c.status, "False");
            assert_eq!(c.reason, REASON_WAITING_FOR_SLOT);
            assert_eq!(c.observed_generation, Some(3));
            assert_eq!(c.last_transition_time, Time(now));
        }
    }

    #[test]
    fn transition_time_moves_only_with_status() {
        let t0 = at("2026-01-01T00:00:00Z");
        let t1 = at("2026-01-01T00:01:00Z");
        let queued = conditions_for(&summary(false, REASON_WAITING_FOR_SLOT), &[], Some(1), t0);
        let running = conditions_for(&summary(true, REASON_POD_PENDING), &queued, Some(1), t1);
        let by_type =
            |all: &[Condition], t: &str| all.iter().find(|c| c.type_ == t).cloned().unwrap();
        // AgentRunning flipped: new time. Ready and Failed stayed False: old time, new reason.
        assert_eq!(
            by_type(&running, TYPE_AGENT_RUNNING).last_transition_time,
            Time(t1)
        );
        let ready = by_type(&running, TYPE_READY);
        assert_eq!(ready.last_transition_time, Time(t0));
        assert_eq!(ready.reason, REASON_POD_PENDING);
        assert_eq!(ready.message, "PodPending now");
    }

    #[test]
    fn long_messages_are_bounded() {
        let mut long = summary(false, REASON_BACKING_OFF);
        long.message = "x".repeat(5000);
        let conditions = conditions_for(&long, &[], None, at("2026-01-01T00:00:00Z"));
        assert!(conditions[0].message.len() <= CONDITION_MESSAGE_MAX_BYTES);
        assert_eq!(
            reason_of(&conditions, TYPE_FAILED),
            Some(REASON_BACKING_OFF)
        );
        assert_eq!(reason_of(&conditions, "Other"), None);
    }
}

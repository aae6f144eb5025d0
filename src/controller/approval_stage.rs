//! Decide step of the approval stage (issue 12), between a remediate-mode investigation and the
//! execution of its plan. Pure, called from [`super::lifecycle`]:
//!
//! ```text
//! investigation pod Succeeded, report.plan ─▶ AwaitingApproval (status.plan, expiresAt)
//!   ├─ status.approval approve (same hash) ─▶ execution pod (remediation ServiceAccount) ─▶ Completed
//!   ├─ status.approval reject ─────────────▶ Completed, outcome rejected
//!   └─ expiresAt passed ────────────────────▶ Completed, outcome approval_expired
//! ```
//!
//! `status.approval` is filled by the reconcile from the IncidentApproval objects it watches
//! ([`crate::approval::decide`]); from then on the decision reads only the Incident's own status.
//! The plan the execution pod runs is always `status.plan`, never anything from the approval.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;

use super::conditions::{self, StateSummary, conditions_for};
use super::events::{self, IncidentEvent};
use super::keys;
use super::lifecycle::{Action, Decision};
use crate::approval::decide::IgnoredApproval;
use crate::incident::{Incident, IncidentStatus, Mode, Outcome, Phase};
use crate::plan::{ApprovalRecord, Decision as Verdict, Plan, ProposedPlan, plan_hash};

/// Default of `--approval-timeout`: how long a proposed plan waits for a decision.
pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Condition type telling where the plan's decision stands.
pub const TYPE_PLAN_APPROVED: &str = "PlanApproved";
/// `Ready` / `PlanApproved` reason while the plan waits for a decision.
pub const REASON_AWAITING_APPROVAL: &str = "AwaitingApproval";
/// `PlanApproved` reason once a human approved the plan.
pub const REASON_APPROVED: &str = "Approved";
/// `PlanApproved` (and `Ready`) reason once a human rejected the plan.
pub const REASON_REJECTED: &str = "Rejected";
/// `PlanApproved` (and `Ready`) reason when nobody decided in time.
pub const REASON_EXPIRED: &str = "ApprovalExpired";

/// Whether `pod` runs an approved plan (rather than an investigation).
pub fn is_execution_pod(pod: &Pod) -> bool {
    pod.labels().get(keys::LABEL_STAGE).map(String::as_str) == Some(keys::STAGE_EXECUTE)
}

/// The plan and approval an execution pod runs with: `status.plan` when `status.approval`
/// approves exactly its hash.
pub fn approved_plan(status: Option<&IncidentStatus>) -> Option<(&ProposedPlan, &ApprovalRecord)> {
    let status = status?;
    let plan = status.plan.as_ref()?;
    let approval = status.approval.as_ref()?;
    (approval.decision == Verdict::Approve && approval.plan_hash == plan.plan_hash)
        .then_some((plan, approval))
}

/// The plan a finished investigation proposes: remediate mode, a report with at least one step.
/// (An investigate-mode report's plan is advice only and never waits for anybody.)
pub fn proposed_by<'a>(incident: &Incident, results: &'a IncidentStatus) -> Option<&'a Plan> {
    if incident.spec.mode != Mode::Remediate {
        return None;
    }
    results
        .report
        .as_ref()
        .and_then(|report| report.plan.as_ref())
        .filter(|plan| !plan.steps.is_empty())
}

/// `status.plan` for a plan first seen at `now`.
pub fn propose(
    plan: &Plan,
    session_id: Option<String>,
    now: Timestamp,
    timeout: Duration,
) -> ProposedPlan {
    let expires = SignedDuration::try_from(timeout)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX);
    ProposedPlan {
        plan: plan.clone(),
        plan_hash: plan_hash(plan),
        session_id,
        proposed_at: Time(now),
        expires_at: Time(expires),
    }
}

/// Appended to a proposal when the operator has no remediation ServiceAccount.
const READ_ONLY_EXECUTION_WARNING: &str = "; warning: this operator has no remediation \
    ServiceAccount (chart `remediation.enabled`, flag --agent-remediation-service-account), so an \
    approved plan would run with the read-only account and its changes would be refused";

/// One line naming the plan: hash, steps, risk.
fn describe_plan(plan: &ProposedPlan) -> String {
    format!(
        "plan {} ({} step(s), risk {})",
        plan.plan_hash,
        plan.plan.steps.len(),
        plan.plan.risk.as_str()
    )
}

/// Who decided, how, and why.
pub fn describe_approval(approval: &ApprovalRecord) -> String {
    let verb = match approval.decision {
        Verdict::Approve => "approved",
        Verdict::Reject => "rejected",
    };
    let comment = approval
        .comment
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .map(|c| format!(": {c}"))
        .unwrap_or_default();
    format!(
        "{verb} by {} (IncidentApproval {}, {}){comment}",
        approval.approver, approval.name, approval.time.0
    )
}

/// The AwaitingApproval decision: `results` is the status with the investigation's results;
/// `plan` the proposal (kept from `current` when it is already there, so its times never move).
pub fn awaiting(
    incident: &Incident,
    current: &IncidentStatus,
    mut status: IncidentStatus,
    plan: ProposedPlan,
    actions: Vec<Action>,
    now: Timestamp,
    read_only_execution: bool,
) -> Decision {
    let newly_proposed = current.plan.is_none();
    let until = plan.expires_at.0;
    let name = incident.name_any();
    let mut message = format!(
        "{} awaits a decision until {until}: `incident-operator approve {name}` or `reject {name}`",
        describe_plan(&plan)
    );
    if read_only_execution {
        message.push_str(READ_ONLY_EXECUTION_WARNING);
    }
    let summary = StateSummary {
        ready: false,
        agent_running: false,
        failed: false,
        reason: REASON_AWAITING_APPROVAL,
        message: message.clone(),
    };
    status.phase = Some(Phase::AwaitingApproval);
    status.conditions = conditions_for(
        &summary,
        &current.conditions,
        incident.metadata.generation,
        now,
    );
    status.observed_generation = incident.metadata.generation;
    status.agent_pod = current.agent_pod.clone();
    status.attempts = current.attempts;
    status.start_time = current.start_time.clone();
    status.message = Some(message.clone());
    status.plan = Some(Box::new(plan));
    let events = if !newly_proposed {
        Vec::new()
    } else if read_only_execution {
        vec![IncidentEvent::warning(
            events::REASON_PLAN_PROPOSED,
            message,
        )]
    } else {
        vec![IncidentEvent::normal(events::REASON_PLAN_PROPOSED, message)]
    };
    Decision {
        status,
        actions,
        events,
        requeue_after: Some(
            Duration::try_from(until.duration_since(now))
                .unwrap_or(Duration::ZERO)
                .max(Duration::from_secs(1)),
        ),
        agent_failure: None,
    }
}

/// Turns a Completed decision (from the investigation's results) into the end of the approval
/// stage without execution: rejected, or expired.
pub fn closed_without_execution(
    incident: &Incident,
    current: &IncidentStatus,
    mut decision: Decision,
    outcome: Outcome,
    now: Timestamp,
) -> Decision {
    let plan = current.plan.as_deref();
    let (reason, event_reason, message) = match (outcome, current.approval.as_ref()) {
        (Outcome::Rejected, Some(approval)) => (
            REASON_REJECTED,
            events::REASON_PLAN_REJECTED,
            format!(
                "{} was {}; nothing was changed",
                plan.map(describe_plan).unwrap_or_else(|| "the plan".into()),
                describe_approval(approval)
            ),
        ),
        _ => (
            REASON_EXPIRED,
            events::REASON_APPROVAL_EXPIRED,
            format!(
                "nobody approved {} before {}; nothing was changed",
                plan.map(describe_plan).unwrap_or_else(|| "the plan".into()),
                plan.map(|p| p.expires_at.0.to_string()).unwrap_or_default()
            ),
        ),
    };
    let summary = StateSummary {
        ready: true,
        agent_running: false,
        failed: false,
        reason,
        message: message.clone(),
    };
    decision.status.outcome = Some(outcome);
    decision.status.message = Some(message.clone());
    decision.status.conditions = conditions_for(
        &summary,
        &current.conditions,
        incident.metadata.generation,
        now,
    );
    decision.status.completion_time = Some(Time(now));
    decision.events = vec![IncidentEvent::normal(event_reason, message)];
    decision
}

/// A Completed decision for the execution session: links it in `status.approval` and tells the
/// story's last chapter (what was done, whether it was verified).
pub fn executed(current: &IncidentStatus, mut decision: Decision) -> Decision {
    let session = decision.status.session_id.clone();
    decision.status.approval = current.approval.clone();
    if let Some(approval) = decision.status.approval.as_mut() {
        approval.execution_session_id = session.clone();
    }
    let report = decision.status.report.as_ref();
    let actions = report.map_or(0, |r| r.actions_taken.len());
    let verified = if report.is_some_and(|r| r.resolved) {
        "verified: the problem is resolved"
    } else {
        "not verified: the report does not say the problem is resolved"
    };
    let who = decision
        .status
        .approval
        .as_ref()
        .map(|a| format!(" approved by {}", a.approver))
        .unwrap_or_default();
    let summary = report
        .map(|r| format!(": {}", r.summary))
        .unwrap_or_default();
    let note = format!(
        "the execution session {} ran the plan{who}: {actions} action(s) taken, {verified}{summary}",
        session.as_deref().unwrap_or("(unknown)")
    );
    decision.events = vec![IncidentEvent::normal(events::REASON_PLAN_EXECUTED, note)];
    decision
}

/// Keeps `status.plan` and `status.approval` in every decision once they exist (the controller
/// owns them; a forced apply without them would delete them), except on a rerun (a
/// `RecordRerun` with the reset), which starts afresh and so invalidates every earlier approval. Adds the `PlanApproved` condition.
pub fn carry_forward(
    incident: &Incident,
    current: &IncidentStatus,
    decision: &mut Decision,
    now: Timestamp,
) {
    // A rerun records its value and resets; the execution start resets too but keeps its plan.
    let rerun = decision
        .actions
        .iter()
        .any(|action| matches!(action, Action::RecordRerun { .. }))
        && decision.actions.contains(&Action::ResetAgentResults);
    if rerun {
        return;
    }
    if decision.status.plan.is_none() {
        decision.status.plan = current.plan.clone();
    }
    if decision.status.approval.is_none() {
        decision.status.approval = current.approval.clone();
    }
    if let Some(condition) = plan_condition(incident, &decision.status, &current.conditions, now) {
        decision
            .status
            .conditions
            .retain(|c| c.type_ != TYPE_PLAN_APPROVED);
        decision.status.conditions.push(condition);
    }
}

/// The `PlanApproved` condition for `status`, when it has a plan.
fn plan_condition(
    incident: &Incident,
    status: &IncidentStatus,
    previous: &[Condition],
    now: Timestamp,
) -> Option<Condition> {
    let plan = status.plan.as_ref()?;
    let (is_true, reason, message) = match status.approval.as_ref() {
        Some(approval) if approval.plan_hash == plan.plan_hash => match approval.decision {
            Verdict::Approve => (true, REASON_APPROVED, describe_approval(approval)),
            Verdict::Reject => (false, REASON_REJECTED, describe_approval(approval)),
        },
        _ if status.outcome == Some(Outcome::ApprovalExpired) => (
            false,
            REASON_EXPIRED,
            format!("nobody decided before {}", plan.expires_at.0),
        ),
        _ => (
            false,
            REASON_AWAITING_APPROVAL,
            format!(
                "{} awaits a decision until {}",
                describe_plan(plan),
                plan.expires_at.0
            ),
        ),
    };
    Some(conditions::condition(
        previous,
        TYPE_PLAN_APPROVED,
        is_true,
        reason,
        &message,
        incident.metadata.generation,
        now,
    ))
}

/// Says in the status, and once in a Warning Event, which approvals were not acted on and why
/// (a stale hash is a clear message, never a silent ignore). `current_message` is the message
/// the Incident has now: the Event goes out only when the text is new.
pub fn note_ignored(
    decision: &mut Decision,
    ignored: &[IgnoredApproval],
    current_message: Option<&str>,
) {
    let Some(plan) = decision.status.plan.as_ref() else {
        return;
    };
    if ignored.is_empty() {
        return;
    }
    let lines: Vec<String> = ignored
        .iter()
        .map(|i| i.describe(&plan.plan_hash))
        .collect();
    let note = format!("not acted on: {}", lines.join("; "));
    let message = match decision.status.message.as_deref() {
        Some(base) => format!("{base}; {note}"),
        None => note.clone(),
    };
    if current_message != Some(message.as_str()) {
        decision
            .events
            .push(IncidentEvent::warning(events::REASON_STALE_PLAN_HASH, note));
    }
    for condition in &mut decision.status.conditions {
        if condition.type_ == conditions::TYPE_READY {
            condition.message =
                super::text::truncate_start(&message, conditions::CONDITION_MESSAGE_MAX_BYTES);
        }
    }
    decision.status.message = Some(message);
}

/// The Event for a decision the reconcile has just recorded in `status.approval`.
pub fn approval_event(record: &ApprovalRecord) -> IncidentEvent {
    match record.decision {
        Verdict::Approve => IncidentEvent::normal(
            events::REASON_PLAN_APPROVED,
            format!("plan {} {}", record.plan_hash, describe_approval(record)),
        ),
        Verdict::Reject => IncidentEvent::normal(
            events::REASON_PLAN_REJECTED,
            format!("plan {} {}", record.plan_hash, describe_approval(record)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::decide::tests::{approval, sample_plan};
    use crate::approval::decide::{IgnoredBecause, record_of};
    use crate::controller::lifecycle::tests::observed;
    use crate::controller::lifecycle::{Policy, next_status};
    use crate::controller::pod::tests::incident;
    use crate::controller::pod_state::tests::pod;
    use crate::incident::Report;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    const PROPOSED: &str = "2026-01-01T10:00:00Z";

    /// A remediate Incident whose investigation (attempt 1) was Running and filed `report`.
    fn investigated(report: Report) -> Incident {
        let mut incident = incident("x");
        incident.spec.mode = Mode::Remediate;
        incident.status = Some(IncidentStatus {
            phase: Some(Phase::Running),
            agent_pod: Some("x-agent-1".into()),
            attempts: Some(1),
            session_id: Some("inv-session".into()),
            outcome: Some(Outcome::Reported),
            report: Some(Box::new(report)),
            ..IncidentStatus::default()
        });
        incident
    }

    fn report_with_plan() -> Report {
        Report {
            summary: "web is stuck; a restart clears it".into(),
            plan: Some(sample_plan()),
            ..Report::default()
        }
    }

    /// Runs the decision and applies its status, as the controller would.
    fn advance(incident: &mut Incident, pods: &[Pod], now: &str) -> Decision {
        let decision = next_status(incident, &observed(pods), at(now), &Policy::default());
        incident.status = Some(decision.status.clone());
        decision
    }

    fn reasons(decision: &Decision) -> Vec<&'static str> {
        decision.events.iter().map(|e| e.reason).collect()
    }

    fn plan_condition_of(status: &IncidentStatus) -> &Condition {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == TYPE_PLAN_APPROVED)
            .expect("PlanApproved condition")
    }

    fn current_hash(incident: &Incident) -> String {
        let status = incident.status.as_ref().expect("status");
        status.plan.as_ref().expect("status.plan").plan_hash.clone()
    }

    fn awaiting_incident() -> (Incident, Vec<Pod>) {
        let mut incident = investigated(report_with_plan());
        let pods = vec![pod(1, "Succeeded")];
        advance(&mut incident, &pods, PROPOSED);
        (incident, pods)
    }

    #[test]
    fn without_a_remediation_account_the_proposal_warns_up_front() {
        let mut incident = investigated(report_with_plan());
        let policy = Policy {
            read_only_execution: true,
            ..Policy::default()
        };
        let decision = next_status(
            &incident,
            &observed(&[pod(1, "Succeeded")]),
            at(PROPOSED),
            &policy,
        );
        assert_eq!(decision.status.phase, Some(Phase::AwaitingApproval));
        let event = &decision.events[0];
        assert_eq!(
            (event.reason, event.warning),
            (events::REASON_PLAN_PROPOSED, true)
        );
        for text in [&event.note, decision.status.message.as_ref().unwrap()] {
            assert!(text.contains("no remediation ServiceAccount"), "{text}");
        }
        // With one configured (the default policy) the proposal is plain.
        incident.status = investigated(report_with_plan()).status;
        let plain = advance(&mut incident, &[pod(1, "Succeeded")], PROPOSED);
        assert!(!plain.status.message.unwrap().contains("warning"));
    }

    #[test]
    fn a_plan_in_a_remediate_report_waits_for_approval() {
        let mut incident = investigated(report_with_plan());
        let pods = [pod(1, "Succeeded")];
        let decision = advance(&mut incident, &pods, PROPOSED);
        let status = &decision.status;
        assert_eq!(status.phase, Some(Phase::AwaitingApproval));
        assert!(decision.actions.is_empty(), "{:?}", decision.actions);
        let plan = status.plan.as_ref().unwrap();
        assert_eq!(plan.plan_hash, plan_hash(&sample_plan()));
        assert_eq!(plan.session_id.as_deref(), Some("inv-session"));
        assert_eq!(plan.proposed_at.0, at(PROPOSED));
        assert_eq!(plan.expires_at.0, at("2026-01-01T10:30:00Z"));
        assert_eq!(decision.requeue_after, Some(Duration::from_secs(30 * 60)));
        assert_eq!(reasons(&decision), [events::REASON_PLAN_PROPOSED]);
        // The investigation's report stays; the condition tells the story so far.
        assert_eq!(
            status.report.as_ref().unwrap().summary,
            "web is stuck; a restart clears it"
        );
        let condition = plan_condition_of(status);
        assert_eq!(
            (condition.status.as_str(), condition.reason.as_str()),
            ("False", REASON_AWAITING_APPROVAL)
        );
        assert!(
            status
                .message
                .as_ref()
                .unwrap()
                .contains("incident-operator approve x")
        );

        // Looking again later changes nothing: same times, no second event.
        let again = advance(&mut incident, &pods, "2026-01-01T10:10:00Z");
        assert_eq!(
            again.status.plan.as_ref().unwrap().proposed_at.0,
            at(PROPOSED)
        );
        assert!(again.events.is_empty());
        assert_eq!(again.requeue_after, Some(Duration::from_secs(20 * 60)));
    }

    #[test]
    fn an_approval_starts_the_execution_pod_once() {
        let (mut incident, pods) = awaiting_incident();
        let hash = current_hash(&incident);
        let record = record_of(&approval(
            "a1",
            &hash,
            Verdict::Approve,
            "2026-01-01T10:05:00Z",
        ));
        incident.status.as_mut().unwrap().approval = Some(Box::new(record.clone()));
        let decision = advance(&mut incident, &pods, "2026-01-01T10:05:01Z");
        // The investigation's results go first: the execution session starts from a clean
        // status (its report is its own; the proposal stays in status.plan and the audit).
        assert_eq!(
            decision.actions,
            [Action::ResetAgentResults, Action::CreatePod { attempt: 2 }]
        );
        assert_eq!(decision.status.phase, Some(Phase::Running));
        assert_eq!(decision.status.approval.as_deref(), Some(&record));
        assert_eq!(decision.status.plan.as_ref().unwrap().plan_hash, hash);
        assert_eq!(reasons(&decision), [events::REASON_EXECUTION_STARTED]);
        assert!(
            decision.events[0].note.contains("execution pod x-agent-2"),
            "{}",
            decision.events[0].note
        );
        assert!(decision.events[0].note.contains("approved by alice"));
        let condition = plan_condition_of(&decision.status);
        assert_eq!(
            (condition.status.as_str(), condition.reason.as_str()),
            ("True", REASON_APPROVED)
        );
    }

    fn execution_pod(phase: &str) -> Pod {
        let mut pod = pod(2, phase);
        pod.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert(keys::LABEL_STAGE.into(), keys::STAGE_EXECUTE.into());
        pod
    }

    fn executing_incident() -> Incident {
        let (mut incident, pods) = awaiting_incident();
        let hash = current_hash(&incident);
        incident.status.as_mut().unwrap().approval = Some(Box::new(record_of(&approval(
            "a1",
            &hash,
            Verdict::Approve,
            "2026-01-01T10:05:00Z",
        ))));
        advance(&mut incident, &pods, "2026-01-01T10:05:01Z");
        incident
    }

    #[test]
    fn a_finished_execution_completes_with_its_report_linked_to_the_approval() {
        let mut incident = executing_incident();
        let pods = [pod(1, "Succeeded"), execution_pod("Running")];
        let running = advance(&mut incident, &pods, "2026-01-01T10:05:05Z");
        assert_eq!(running.status.phase, Some(Phase::Running));
        assert!(running.status.approval.is_some() && running.status.plan.is_some());
        // The execution agent files its report.
        let status = incident.status.as_mut().unwrap();
        status.session_id = Some("exec-session".into());
        status.outcome = Some(Outcome::Reported);
        status.report = Some(Box::new(Report {
            summary: "restarted web; 5xx gone".into(),
            actions_taken: vec!["kubectl -n shop rollout restart deploy/web".into()],
            resolved: true,
            ..Report::default()
        }));
        let pods = [pod(1, "Succeeded"), execution_pod("Succeeded")];
        let done = advance(&mut incident, &pods, "2026-01-01T10:06:00Z");
        assert_eq!(done.status.phase, Some(Phase::Completed));
        assert_eq!(done.status.outcome, Some(Outcome::Reported));
        let approval = done.status.approval.as_ref().unwrap();
        assert_eq!(
            approval.execution_session_id.as_deref(),
            Some("exec-session")
        );
        assert_eq!(
            done.status.plan.as_ref().unwrap().session_id.as_deref(),
            Some("inv-session")
        );
        assert_eq!(reasons(&done), [events::REASON_PLAN_EXECUTED]);
        let note = &done.events[0].note;
        assert!(
            note.contains("1 action(s) taken") && note.contains("verified"),
            "{note}"
        );
        // Nothing starts again; only the investigation pod goes, past its TTL.
        assert_eq!(
            done.actions,
            [Action::DeletePod {
                name: "x-agent-1".into()
            }]
        );
    }

    #[test]
    fn a_failed_execution_is_never_retried() {
        let mut incident = executing_incident();
        let pods = [pod(1, "Succeeded"), execution_pod("Failed")];
        let decision = advance(&mut incident, &pods, "2026-01-01T10:06:00Z");
        assert_eq!(decision.status.phase, Some(Phase::Failed));
        assert!(
            !decision
                .actions
                .iter()
                .any(|a| matches!(a, Action::CreatePod { .. })),
            "{:?}",
            decision.actions
        );
        assert!(decision.status.approval.is_some());
    }

    #[test]
    fn a_rejection_completes_without_running_anything() {
        let (mut incident, pods) = awaiting_incident();
        let hash = current_hash(&incident);
        incident.status.as_mut().unwrap().approval = Some(Box::new(record_of(&approval(
            "r1",
            &hash,
            Verdict::Reject,
            "2026-01-01T10:02:00Z",
        ))));
        let decision = advance(&mut incident, &pods, "2026-01-01T10:02:01Z");
        assert_eq!(decision.status.phase, Some(Phase::Completed));
        assert_eq!(decision.status.outcome, Some(Outcome::Rejected));
        assert!(decision.actions.is_empty());
        assert_eq!(reasons(&decision), [events::REASON_PLAN_REJECTED]);
        assert!(
            decision
                .status
                .message
                .as_ref()
                .unwrap()
                .contains("rejected by alice")
        );
        let condition = plan_condition_of(&decision.status);
        assert_eq!(condition.reason, REASON_REJECTED);
    }

    #[test]
    fn nobody_deciding_expires_the_plan_at_its_expiry() {
        let (mut incident, pods) = awaiting_incident();
        let before = advance(&mut incident, &pods, "2026-01-01T10:29:59Z");
        assert_eq!(before.status.phase, Some(Phase::AwaitingApproval));
        let decision = advance(&mut incident, &pods, "2026-01-01T10:30:00Z");
        assert_eq!(decision.status.phase, Some(Phase::Completed));
        assert_eq!(decision.status.outcome, Some(Outcome::ApprovalExpired));
        assert!(decision.actions.is_empty());
        assert_eq!(reasons(&decision), [events::REASON_APPROVAL_EXPIRED]);
        assert_eq!(plan_condition_of(&decision.status).reason, REASON_EXPIRED);
        // An approval of another hash never starts anything either.
        let mut stale = awaiting_incident().0;
        stale.status.as_mut().unwrap().approval = Some(Box::new(record_of(&approval(
            "old",
            &format!("sha256:{}", "0".repeat(64)),
            Verdict::Approve,
            "2026-01-01T10:01:00Z",
        ))));
        let decision = advance(&mut stale, &pods, "2026-01-01T10:01:01Z");
        assert_eq!(decision.status.phase, Some(Phase::AwaitingApproval));
        assert!(decision.actions.is_empty());
    }

    #[test]
    fn without_a_plan_or_outside_remediate_mode_it_completes_as_an_investigation() {
        let pods = [pod(1, "Succeeded")];
        let mut no_plan = investigated(Report {
            summary: "nothing to do".into(),
            ..Report::default()
        });
        let decision = advance(&mut no_plan, &pods, PROPOSED);
        assert_eq!(decision.status.phase, Some(Phase::Completed));
        assert!(decision.status.plan.is_none());
        let mut investigate = investigated(report_with_plan());
        investigate.spec.mode = Mode::Investigate;
        let decision = advance(&mut investigate, &pods, PROPOSED);
        assert_eq!(decision.status.phase, Some(Phase::Completed));
        assert!(decision.status.plan.is_none());
    }

    #[test]
    fn a_plan_outlives_its_investigation_pod() {
        // The finished pod went (TTL, by hand): that is no failed attempt to retry.
        let (mut incident, _) = awaiting_incident();
        let decision = advance(&mut incident, &[], "2026-01-01T10:10:00Z");
        assert_eq!(decision.status.phase, Some(Phase::AwaitingApproval));
        assert!(decision.actions.is_empty(), "{:?}", decision.actions);
    }

    #[test]
    fn a_rerun_while_waiting_drops_the_plan_and_its_approvals() {
        let (mut incident, pods) = awaiting_incident();
        incident.metadata.annotations =
            Some([(keys::ANNOTATION_RERUN.to_string(), "again".to_string())].into());
        let decision = advance(&mut incident, &pods, "2026-01-01T10:10:00Z");
        assert_eq!(decision.status.phase, Some(Phase::Pending));
        assert!(decision.status.plan.is_none());
        assert!(decision.status.approval.is_none());
        assert!(decision.actions.contains(&Action::ResetAgentResults));
    }

    #[test]
    fn ignored_approvals_are_said_once() {
        let (incident, pods) = awaiting_incident();
        let mut decision = next_status(
            &incident,
            &observed(&pods),
            at("2026-01-01T10:01:00Z"),
            &Policy::default(),
        );
        let ignored = [IgnoredApproval {
            name: "old".into(),
            because: IgnoredBecause::StaleHash {
                named: format!("sha256:{}", "0".repeat(64)),
            },
        }];
        let current = incident.status.as_ref().unwrap().message.clone();
        note_ignored(&mut decision, &ignored, current.as_deref());
        assert_eq!(reasons(&decision), [events::REASON_STALE_PLAN_HASH]);
        let message = decision.status.message.clone().unwrap();
        assert!(
            message.contains("IncidentApproval old names plan sha256:0000"),
            "{message}"
        );
        let ready = decision
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == conditions::TYPE_READY)
            .unwrap();
        assert_eq!(ready.message, message);
        // Next pass, same message: no second Event.
        let mut again = next_status(
            &incident,
            &observed(&pods),
            at("2026-01-01T10:02:00Z"),
            &Policy::default(),
        );
        note_ignored(&mut again, &ignored, Some(&message));
        assert!(again.events.is_empty());
    }
}

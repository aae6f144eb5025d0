//! Decide step of the approval stage: which `IncidentApproval` (if any) settles the plan in an
//! Incident's `status.plan`. Pure: the controller passes what its cache holds and the time.
//!
//! An approval counts when it names this Incident, names the current plan hash, and was created
//! at or after the plan's `proposedAt` and before its `expiresAt` (so an approval of an earlier plan, even one
//! with the same steps after a rerun, never approves the new one). The earliest such approval
//! wins; later ones are history. Approvals that name another hash are reported, never ignored
//! silently: the Incident's message says which and why.

use jiff::Timestamp;

use super::resource::IncidentApprovalSpec;
use crate::plan::{ApprovalRecord, ProposedPlan};

/// What the controller keeps of one `IncidentApproval` (see `controller::approvals`).
#[derive(Clone, Debug, PartialEq)]
pub struct ApprovalView {
    pub name: String,
    pub uid: String,
    /// `metadata.creationTimestamp`, set by the API server.
    pub created: Timestamp,
    pub spec: IncidentApprovalSpec,
}

/// Why an approval was not acted on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IgnoredBecause {
    /// It names another plan hash (an older plan, or a typo).
    StaleHash { named: String },
    /// It was created before the current plan was proposed.
    BeforeProposal,
    /// It was created after the plan expired.
    AfterExpiry,
}

/// One approval that does not settle the plan, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoredApproval {
    pub name: String,
    pub because: IgnoredBecause,
}

impl IgnoredApproval {
    /// One line for a status message or an Event note.
    pub fn describe(&self, current_hash: &str) -> String {
        match &self.because {
            IgnoredBecause::StaleHash { named } => format!(
                "IncidentApproval {} names plan {named}, not the current plan {current_hash}",
                self.name
            ),
            IgnoredBecause::BeforeProposal => format!(
                "IncidentApproval {} was created before the current plan was proposed",
                self.name
            ),
            IgnoredBecause::AfterExpiry => format!(
                "IncidentApproval {} was created after the plan expired",
                self.name
            ),
        }
    }
}

/// The state of the plan's approval at `now`.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// An approval or rejection settles the plan; record it in `status.approval`.
    Decided(ApprovalRecord),
    /// Nobody decided in time.
    Expired { ignored: Vec<IgnoredApproval> },
    /// Still open until `plan.expiresAt`.
    Waiting { ignored: Vec<IgnoredApproval> },
}

/// Which of `approvals` (those naming `incident`) settles `plan` at `now`.
pub fn decide(
    incident: &str,
    plan: &ProposedPlan,
    approvals: &[ApprovalView],
    now: Timestamp,
) -> Verdict {
    let proposed = plan.proposed_at.0;
    let expires = plan.expires_at.0;
    let mut ignored = Vec::new();
    let mut valid: Vec<&ApprovalView> = Vec::new();
    for approval in approvals.iter().filter(|a| a.spec.incident == incident) {
        let because = if approval.spec.plan_hash != plan.plan_hash {
            // An approval of an earlier plan is history, not an error worth repeating.
            if approval.created < proposed {
                continue;
            }
            Some(IgnoredBecause::StaleHash {
                named: approval.spec.plan_hash.clone(),
            })
        } else if approval.created < proposed {
            Some(IgnoredBecause::BeforeProposal)
        } else if approval.created >= expires {
            // Timestamps are whole seconds; the plan expires at `expiresAt`, so an approval made
            // in that second is already too late (the lifecycle agrees: `now >= expiresAt`).
            Some(IgnoredBecause::AfterExpiry)
        } else {
            None
        };
        match because {
            Some(because) => ignored.push(IgnoredApproval {
                name: approval.name.clone(),
                because,
            }),
            None => valid.push(approval),
        }
    }
    ignored.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(first) = valid
        .into_iter()
        .min_by(|a, b| a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name)))
    {
        return Verdict::Decided(record_of(first));
    }
    if now >= expires {
        Verdict::Expired { ignored }
    } else {
        Verdict::Waiting { ignored }
    }
}

/// `status.approval` for an approval the controller acts on.
pub fn record_of(approval: &ApprovalView) -> ApprovalRecord {
    ApprovalRecord {
        name: approval.name.clone(),
        uid: approval.uid.clone(),
        decision: approval.spec.decision,
        approver: approval.spec.approver.clone(),
        comment: approval.spec.comment.clone(),
        plan_hash: approval.spec.plan_hash.clone(),
        time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(approval.created),
        execution_session_id: None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::plan::{Decision, Plan, PlanStep, Risk, plan_hash};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    pub(crate) fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    pub(crate) fn sample_plan() -> Plan {
        Plan {
            steps: vec![PlanStep {
                command: "kubectl -n shop rollout restart deploy/web".into(),
                purpose: "clear the stuck connections".into(),
                expected_effect: "new web pods".into(),
                verify: "kubectl -n shop rollout status deploy/web".into(),
                rollback: None,
                rollback_on_failure: false,
            }],
            risk: Risk::Low,
            risk_detail: None,
        }
    }

    pub(crate) fn proposed(at_: &str, expires: &str) -> ProposedPlan {
        let plan = sample_plan();
        ProposedPlan {
            plan_hash: plan_hash(&plan),
            plan,
            session_id: Some("s-1".into()),
            proposed_at: Time(at(at_)),
            expires_at: Time(at(expires)),
        }
    }

    pub(crate) fn approval(
        name: &str,
        hash: &str,
        decision: Decision,
        created: &str,
    ) -> ApprovalView {
        ApprovalView {
            name: name.into(),
            uid: format!("uid-{name}"),
            created: at(created),
            spec: IncidentApprovalSpec {
                incident: "web".into(),
                plan_hash: hash.into(),
                decision,
                approver: "alice".into(),
                comment: Some("go".into()),
            },
        }
    }

    const T0: &str = "2026-01-01T10:00:00Z";
    const T_EXP: &str = "2026-01-01T10:30:00Z";

    #[test]
    fn no_approval_waits_then_expires() {
        let plan = proposed(T0, T_EXP);
        assert_eq!(
            decide("web", &plan, &[], at("2026-01-01T10:29:59Z")),
            Verdict::Waiting { ignored: vec![] }
        );
        assert_eq!(
            decide("web", &plan, &[], at(T_EXP)),
            Verdict::Expired { ignored: vec![] }
        );
    }

    #[test]
    fn an_approval_for_the_current_hash_is_recorded_with_its_identity() {
        let plan = proposed(T0, T_EXP);
        let a = approval(
            "a1",
            &plan.plan_hash,
            Decision::Approve,
            "2026-01-01T10:05:00Z",
        );
        let Verdict::Decided(record) = decide("web", &plan, &[a], at("2026-01-01T10:06:00Z"))
        else {
            panic!("not decided");
        };
        assert_eq!(record.name, "a1");
        assert_eq!(record.uid, "uid-a1");
        assert_eq!(record.approver, "alice");
        assert_eq!(record.decision, Decision::Approve);
        assert_eq!(record.plan_hash, plan.plan_hash);
        assert_eq!(record.time.0, at("2026-01-01T10:05:00Z"));
        assert_eq!(record.execution_session_id, None);
    }

    #[test]
    fn an_approval_made_in_time_still_counts_after_the_expiry() {
        // The controller may see it late (restart, slow watch): creation time is what counts.
        let plan = proposed(T0, T_EXP);
        let a = approval(
            "a1",
            &plan.plan_hash,
            Decision::Reject,
            "2026-01-01T10:29:00Z",
        );
        assert!(matches!(
            decide("web", &plan, &[a], at("2026-01-01T11:00:00Z")),
            Verdict::Decided(r) if r.decision == Decision::Reject
        ));
    }

    #[test]
    fn the_earliest_valid_decision_wins() {
        let plan = proposed(T0, T_EXP);
        let reject = approval(
            "b-reject",
            &plan.plan_hash,
            Decision::Reject,
            "2026-01-01T10:02:00Z",
        );
        let approve = approval(
            "a-approve",
            &plan.plan_hash,
            Decision::Approve,
            "2026-01-01T10:03:00Z",
        );
        let Verdict::Decided(record) =
            decide("web", &plan, &[approve, reject], at("2026-01-01T10:04:00Z"))
        else {
            panic!("not decided");
        };
        assert_eq!(record.name, "b-reject");
    }

    #[test]
    fn a_stale_hash_is_reported_not_acted_on() {
        let plan = proposed(T0, T_EXP);
        let other = format!("sha256:{}", "0".repeat(64));
        let a = approval("old", &other, Decision::Approve, "2026-01-01T10:01:00Z");
        let verdict = decide("web", &plan, &[a], at("2026-01-01T10:02:00Z"));
        let Verdict::Waiting { ignored } = verdict else {
            panic!("acted on a stale approval: {verdict:?}");
        };
        assert_eq!(
            ignored,
            vec![IgnoredApproval {
                name: "old".into(),
                because: IgnoredBecause::StaleHash {
                    named: other.clone()
                }
            }]
        );
        let line = ignored[0].describe(&plan.plan_hash);
        assert!(
            line.contains(&other) && line.contains(&plan.plan_hash),
            "{line}"
        );
    }

    #[test]
    fn approvals_of_an_earlier_plan_never_approve_the_new_one() {
        // A rerun proposed the same steps again: same hash, but the approval predates it.
        let plan = proposed(T0, T_EXP);
        let early = approval(
            "early",
            &plan.plan_hash,
            Decision::Approve,
            "2026-01-01T09:59:59Z",
        );
        let stale_old = approval(
            "history",
            &format!("sha256:{}", "1".repeat(64)),
            Decision::Approve,
            "2026-01-01T09:00:00Z",
        );
        let verdict = decide(
            "web",
            &plan,
            &[early, stale_old],
            at("2026-01-01T10:01:00Z"),
        );
        assert_eq!(
            verdict,
            Verdict::Waiting {
                ignored: vec![IgnoredApproval {
                    name: "early".into(),
                    because: IgnoredBecause::BeforeProposal
                }]
            }
        );
    }

    #[test]
    fn an_approval_after_the_expiry_is_ignored_and_said_so() {
        let plan = proposed(T0, T_EXP);
        let late = approval(
            "late",
            &plan.plan_hash,
            Decision::Approve,
            "2026-01-01T10:30:01Z",
        );
        assert_eq!(
            decide("web", &plan, &[late], at("2026-01-01T10:31:00Z")),
            Verdict::Expired {
                ignored: vec![IgnoredApproval {
                    name: "late".into(),
                    because: IgnoredBecause::AfterExpiry
                }]
            }
        );
    }

    #[test]
    fn an_approval_in_the_second_of_the_expiry_is_too_late() {
        let plan = proposed(T0, T_EXP);
        let late = approval("late", &plan.plan_hash, Decision::Approve, T_EXP);
        assert!(matches!(
            decide("web", &plan, &[late], at(T_EXP)),
            Verdict::Expired { ignored } if ignored.len() == 1
        ));
    }

    #[test]
    fn approvals_of_other_incidents_do_not_count() {
        let plan = proposed(T0, T_EXP);
        let mut a = approval(
            "a1",
            &plan.plan_hash,
            Decision::Approve,
            "2026-01-01T10:05:00Z",
        );
        a.spec.incident = "db".into();
        assert_eq!(
            decide("web", &plan, &[a], at("2026-01-01T10:06:00Z")),
            Verdict::Waiting { ignored: vec![] }
        );
    }
}

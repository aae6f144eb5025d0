//! The approved plan as the execution agent receives it, checked before anything runs.
//!
//! Where it sits: the controller passes the plan, its hash and the approval in the environment
//! ([`super::env`]); `investigate --approved-plan FILE` reads the same from a file. Either way
//! the agent recomputes [`super::plan_hash`] and refuses to start when it differs from the hash
//! the human approved, when the approval is for another plan or is a rejection, or when the plan
//! could not run as written. The session audits the refusal and ends in an error.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::env::{APPROVAL_ENV, APPROVED_PLAN_ENV, APPROVED_PLAN_HASH_ENV, PROPOSING_SESSION_ENV};
use super::validate::{PlanRejected, validate_proposal};
use super::{ApprovalRecord, Decision, Plan, plan_hash};
use crate::incident::Mode;

/// A plan whose hash matched what the human approved: the only thing an execution session runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovedPlan {
    pub plan: Plan,
    /// `sha256:<hex>`, recomputed and equal to the approved hash.
    pub plan_hash: String,
    pub approval: Option<ApprovalRecord>,
    /// Audit session id of the investigation that proposed the plan.
    pub proposing_session: Option<String>,
}

/// An approved plan as received, not yet checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovedPlanInput {
    pub plan: Plan,
    /// The hash the approval named.
    pub plan_hash: String,
    pub approval: Option<ApprovalRecord>,
    pub proposing_session: Option<String>,
}

/// What an execution session gets: the plan as received (the session verifies it against the
/// Incident's mode before anything else), or why it could not even be read.
pub type ExecutionRequest = Result<ApprovedPlanInput, ApprovedPlanError>;

/// Why an execution session refuses to start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApprovedPlanError {
    #[error(
        "{APPROVED_PLAN_ENV} is set but {APPROVED_PLAN_HASH_ENV} is not; refusing to run a plan without the hash that was approved"
    )]
    MissingHash,
    #[error("the approved plan is not a valid plan: {0}")]
    InvalidPlan(String),
    #[error("the approval record is not valid: {0}")]
    InvalidApproval(String),
    #[error("cannot read the approved plan file {path}: {reason}")]
    ReadFile { path: PathBuf, reason: String },
    #[error(
        "plan hash mismatch: the approval names {approved} but the plan hashes to {actual}; refusing to run a plan nobody approved"
    )]
    HashMismatch { approved: String, actual: String },
    #[error("the approval record names plan {approval}, not the plan given ({plan})")]
    ApprovalForAnotherPlan { approval: String, plan: String },
    #[error("the approval record is a rejection; nothing runs")]
    Rejected,
    #[error("an approved plan runs only for an Incident in remediate mode")]
    NotRemediate,
    #[error("the approved plan cannot run as written: {0}")]
    Unrunnable(PlanRejected),
}

impl ApprovedPlanError {
    /// Short stable label for the audit's `error` event.
    pub fn kind(&self) -> &'static str {
        match self {
            ApprovedPlanError::HashMismatch { .. } => "plan_hash_mismatch",
            ApprovedPlanError::ApprovalForAnotherPlan { .. } => "approval_hash_mismatch",
            ApprovedPlanError::Rejected => "plan_rejected",
            ApprovedPlanError::NotRemediate => "plan_mode",
            ApprovedPlanError::Unrunnable(_) | ApprovedPlanError::InvalidPlan(_) => "invalid_plan",
            ApprovedPlanError::MissingHash
            | ApprovedPlanError::InvalidApproval(_)
            | ApprovedPlanError::ReadFile { .. } => "plan_config",
        }
    }
}

/// The file `investigate --approved-plan` reads: `status.plan` of an Incident (extra fields such
/// as `proposedAt` are ignored) with an optional `approval` (`status.approval`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApprovedPlanFile {
    plan: Plan,
    plan_hash: String,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    approval: Option<ApprovalRecord>,
}

impl ApprovedPlanInput {
    /// Reads [`super::env`]'s variables through `var`; `None` when no plan is given (not an
    /// execution session).
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
    ) -> Option<Result<Self, ApprovedPlanError>> {
        let plan_json = var(APPROVED_PLAN_ENV)?;
        Some((|| {
            let plan: Plan = serde_json::from_str(&plan_json)
                .map_err(|e| ApprovedPlanError::InvalidPlan(e.to_string()))?;
            let plan_hash = var(APPROVED_PLAN_HASH_ENV)
                .filter(|h| !h.trim().is_empty())
                .ok_or(ApprovedPlanError::MissingHash)?;
            let approval = match var(APPROVAL_ENV).filter(|a| !a.trim().is_empty()) {
                Some(json) => Some(
                    serde_json::from_str(&json)
                        .map_err(|e| ApprovedPlanError::InvalidApproval(e.to_string()))?,
                ),
                None => None,
            };
            Ok(Self {
                plan,
                plan_hash: plan_hash.trim().to_string(),
                approval,
                proposing_session: var(PROPOSING_SESSION_ENV).filter(|s| !s.is_empty()),
            })
        })())
    }

    /// Reads the process environment.
    pub fn from_env() -> Option<Result<Self, ApprovedPlanError>> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads an approved-plan file (YAML or JSON).
    pub fn from_file(path: &Path) -> Result<Self, ApprovedPlanError> {
        let read_error = |reason: String| ApprovedPlanError::ReadFile {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| read_error(e.to_string()))?;
        let file: ApprovedPlanFile = serde_saphyr::from_str(&text).map_err(|e| {
            let text = e.to_string();
            read_error(text.lines().next().unwrap_or(&text).to_string())
        })?;
        Ok(Self {
            plan: file.plan,
            plan_hash: file.plan_hash,
            approval: file.approval,
            proposing_session: file.session_id,
        })
    }

    /// Recomputes the hash and checks the approval: the gate of the execution session's start.
    pub fn verify(self, mode: Mode) -> Result<ApprovedPlan, ApprovedPlanError> {
        let actual = plan_hash(&self.plan);
        if actual != self.plan_hash {
            return Err(ApprovedPlanError::HashMismatch {
                approved: self.plan_hash,
                actual,
            });
        }
        if let Some(approval) = &self.approval {
            if approval.decision == Decision::Reject {
                return Err(ApprovedPlanError::Rejected);
            }
            if approval.plan_hash != actual {
                return Err(ApprovedPlanError::ApprovalForAnotherPlan {
                    approval: approval.plan_hash.clone(),
                    plan: actual,
                });
            }
        }
        if mode != Mode::Remediate {
            return Err(ApprovedPlanError::NotRemediate);
        }
        validate_proposal(&self.plan).map_err(ApprovedPlanError::Unrunnable)?;
        Ok(ApprovedPlan {
            plan: self.plan,
            plan_hash: actual,
            approval: self.approval,
            proposing_session: self.proposing_session,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::plan::{PlanStep, Risk};

    fn plan() -> Plan {
        Plan {
            steps: vec![PlanStep {
                command: "kubectl -n shop rollout undo deploy/web".into(),
                purpose: "undo the bad release".into(),
                expected_effect: "pods run the previous image".into(),
                verify: "kubectl -n shop rollout status deploy/web".into(),
                rollback: None,
                rollback_on_failure: false,
            }],
            risk: Risk::Low,
            risk_detail: None,
        }
    }

    fn approval(hash: &str, decision: Decision) -> ApprovalRecord {
        serde_json::from_value(serde_json::json!({
            "name": "web-approval", "uid": "0b1c", "decision": decision,
            "approver": "alice@example.com", "planHash": hash, "time": "2026-12-01T12:00:00Z"
        }))
        .unwrap()
    }

    fn from(vars: &[(&str, String)]) -> Option<Result<ApprovedPlanInput, ApprovedPlanError>> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        ApprovedPlanInput::from_vars(|name| map.get(name).cloned())
    }

    #[test]
    fn a_matching_hash_and_approval_verify() {
        let hash = plan_hash(&plan());
        let approval = serde_json::to_string(&approval(&hash, Decision::Approve)).unwrap();
        let input = from(&[
            (APPROVED_PLAN_ENV, serde_json::to_string(&plan()).unwrap()),
            (APPROVED_PLAN_HASH_ENV, hash.clone()),
            (APPROVAL_ENV, approval),
            (PROPOSING_SESSION_ENV, "20261201T115900Z-1a2b3c4d".into()),
        ])
        .unwrap()
        .unwrap();
        let approved = input.verify(Mode::Remediate).unwrap();
        assert_eq!(approved.plan_hash, hash);
        assert_eq!(
            approved.approval.unwrap().approver,
            "alice@example.com".to_string()
        );
        assert_eq!(
            approved.proposing_session.as_deref(),
            Some("20261201T115900Z-1a2b3c4d")
        );
    }

    #[test]
    fn no_plan_variable_means_no_execution_session() {
        assert!(from(&[(APPROVED_PLAN_HASH_ENV, "sha256:x".into())]).is_none());
    }

    #[test]
    fn an_edited_plan_does_not_match_the_approved_hash() {
        let hash = plan_hash(&plan());
        let mut edited = plan();
        edited.steps[0].command.push_str(" --to-revision=1");
        let err = ApprovedPlanInput {
            plan: edited,
            plan_hash: hash.clone(),
            approval: None,
            proposing_session: None,
        }
        .verify(Mode::Remediate)
        .unwrap_err();
        assert_eq!(err.kind(), "plan_hash_mismatch");
        let text = err.to_string();
        assert!(text.contains(&hash) && text.contains("refusing"), "{text}");
    }

    #[test]
    fn bad_inputs_are_clear_errors() {
        let plan_json = serde_json::to_string(&plan()).unwrap();
        let hash = plan_hash(&plan());
        let err = from(&[(APPROVED_PLAN_ENV, plan_json.clone())])
            .unwrap()
            .unwrap_err();
        assert_eq!(err, ApprovedPlanError::MissingHash);
        let err = from(&[(APPROVED_PLAN_ENV, "{not json".into())])
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, ApprovedPlanError::InvalidPlan(_)), "{err}");
        let err = from(&[
            (APPROVED_PLAN_ENV, plan_json.clone()),
            (APPROVED_PLAN_HASH_ENV, hash.clone()),
            (APPROVAL_ENV, "[]".into()),
        ])
        .unwrap()
        .unwrap_err();
        assert!(
            matches!(err, ApprovedPlanError::InvalidApproval(_)),
            "{err}"
        );

        let input = |approval| ApprovedPlanInput {
            plan: plan(),
            plan_hash: hash.clone(),
            approval,
            proposing_session: None,
        };
        let other = format!("sha256:{}", "0".repeat(64));
        assert_eq!(
            input(Some(approval(&hash, Decision::Reject)))
                .verify(Mode::Remediate)
                .unwrap_err(),
            ApprovedPlanError::Rejected
        );
        assert!(matches!(
            input(Some(approval(&other, Decision::Approve))).verify(Mode::Remediate),
            Err(ApprovedPlanError::ApprovalForAnotherPlan { .. })
        ));
        assert_eq!(
            input(None).verify(Mode::Investigate).unwrap_err(),
            ApprovedPlanError::NotRemediate
        );
        let mut unrunnable = plan();
        unrunnable.steps[0].command = "kubectl delete ns shop".into();
        let err = ApprovedPlanInput {
            plan_hash: plan_hash(&unrunnable),
            plan: unrunnable,
            approval: None,
            proposing_session: None,
        }
        .verify(Mode::Remediate)
        .unwrap_err();
        assert!(matches!(err, ApprovedPlanError::Unrunnable(_)), "{err}");
    }

    #[test]
    fn the_file_is_status_plan_with_an_optional_approval() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        let hash = plan_hash(&plan());
        let status_plan = serde_json::json!({
            "plan": plan(), "planHash": hash, "sessionId": "20261201T115900Z-1a2b3c4d",
            "proposedAt": "2026-12-01T11:59:00Z", "expiresAt": "2026-12-01T12:29:00Z",
            "approval": approval(&hash, Decision::Approve),
        });
        std::fs::write(&path, status_plan.to_string()).unwrap();
        let approved = ApprovedPlanInput::from_file(&path)
            .unwrap()
            .verify(Mode::Remediate)
            .unwrap();
        assert_eq!(approved.plan, plan());
        let err = ApprovedPlanInput::from_file(&dir.path().join("missing.json")).unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot read the approved plan file")
        );
    }
}

//! A remediation plan: what the agent proposes at the end of a remediate-mode investigation, what a
//! human approves (by its hash), and the only commands the execution session may run.
//!
//! Flow: the investigation's `report` tool carries a [`Plan`]; the controller copies it into
//! `status.plan` as a [`ProposedPlan`] with its [`plan_hash`] and an expiry; an `IncidentApproval`
//! names that hash; the execution agent gets the approved plan and runs its steps verbatim.
//!
//! The hash is over a canonical form (below) so that the same plan always hashes the same, whatever
//! the JSON field order or whitespace it travelled in.
//!
//! - [`shape`]: whether a step's command is one plain command the gate can match verbatim.
//! - [`validate`]: the checks a proposed plan passes before the `report` tool accepts it.
//! - [`env`]: the execution pod's environment contract with the controller.
//! - [`approved`]: the approved plan as the execution agent receives it, hash re-checked.
//! - [`gate`]: the execution session's allow-list (the plan's steps in order, then read-only).

pub mod approved;
pub mod env;
pub mod gate;
pub mod shape;
pub mod validate;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Most steps a plan may hold.
pub const MAX_PLAN_STEPS: usize = 20;
/// Longest command of one step.
pub const MAX_STEP_COMMAND_CHARS: usize = 2048;
/// Longest prose field (purpose, expected effect, verification, rollback, risk detail).
pub const MAX_PLAN_TEXT_CHARS: usize = 2048;

/// Ordered remediation steps the agent proposes; nothing runs until a human approves its hash.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// The steps, run in this order.
    #[schemars(length(min = 1, max = 20))]
    pub steps: Vec<PlanStep>,
    /// How risky the plan is as a whole.
    pub risk: Risk,
    /// Why that risk level: blast radius, what could go wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub risk_detail: Option<String>,
}

/// One step of a [`Plan`].
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PlanStep {
    /// The exact shell command to run; the execution session runs it verbatim or not at all.
    #[schemars(length(min = 1, max = 2048))]
    pub command: String,
    /// Why this step.
    #[schemars(length(min = 1, max = 2048))]
    pub purpose: String,
    /// What should change when it succeeds.
    #[schemars(length(min = 1, max = 2048))]
    pub expected_effect: String,
    /// A read-only command (or procedure) that shows the effect happened.
    #[schemars(length(min = 1, max = 2048))]
    pub verify: String,
    /// How to undo the step; absent when it cannot be undone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub rollback: Option<String>,
    /// Whether the execution session should run `rollback` when this step fails or its effect is
    /// not the expected one. Off unless the plan says so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollback_on_failure: bool,
}

/// Risk of a plan.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    #[default]
    Low,
    Medium,
    High,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
}

/// `status.plan`: the plan waiting for a decision, with the hash an approval must name.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProposedPlan {
    pub plan: Plan,
    /// [`plan_hash`] of `plan`: `sha256:<64 hex>`.
    #[schemars(length(min = 71, max = 71))]
    pub plan_hash: String,
    /// Audit session id of the investigation that proposed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    pub proposed_at: Time,
    /// After this, an approval is no longer honoured and the Incident completes with outcome
    /// `approval_expired`.
    pub expires_at: Time,
}

/// `status.approval`: the decision the controller acted on, as the API server attested it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRecord {
    /// Name of the `IncidentApproval` object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Its metadata.uid, so the record names one object even if the name is reused.
    #[schemars(length(max = 64))]
    pub uid: String,
    /// `approve` or `reject`.
    pub decision: Decision,
    /// The approver's username, as the admission policy checked it against the requesting user.
    #[schemars(length(min = 1, max = 253))]
    pub approver: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub comment: Option<String>,
    /// The plan hash the approval named (equal to `status.plan.planHash` when acted on).
    #[schemars(length(min = 71, max = 71))]
    pub plan_hash: String,
    /// When the approval object was created.
    pub time: Time,
    /// Audit session id of the execution session it started (approve only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_session_id: Option<String>,
}

/// A human's decision on a plan.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Approve,
    Reject,
}

/// `sha256:<hex>` of the plan's canonical form.
///
/// Canonical form: the plan serialised by serde_json with object keys sorted (serde_json's `Value`
/// map is a BTreeMap without the `preserve_order` feature) and no whitespace; optional fields that
/// are absent are omitted, so `rollback: null` and no `rollback` hash the same.
pub fn plan_hash(plan: &Plan) -> String {
    let value = serde_json::to_value(plan).expect("a Plan always serialises");
    let canonical = serde_json::to_vec(&value).expect("a Value always serialises");
    format!("sha256:{}", hex::encode(Sha256::digest(&canonical)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Plan {
        Plan {
            steps: vec![PlanStep {
                command: "kubectl -n shop rollout undo deploy/web".into(),
                purpose: "roll back the bad release".into(),
                expected_effect: "web pods run the previous image".into(),
                verify: "kubectl -n shop rollout status deploy/web".into(),
                rollback: Some("kubectl -n shop rollout undo deploy/web".into()),
                rollback_on_failure: false,
            }],
            risk: Risk::Low,
            risk_detail: None,
        }
    }

    #[test]
    fn the_hash_ignores_field_order_and_whitespace() {
        let plan = sample();
        let reordered = r#"{ "risk": "low",
            "steps": [ { "verify": "kubectl -n shop rollout status deploy/web",
                         "rollback": "kubectl -n shop rollout undo deploy/web",
                         "purpose": "roll back the bad release",
                         "expectedEffect": "web pods run the previous image",
                         "command": "kubectl -n shop rollout undo deploy/web" } ] }"#;
        let parsed: Plan = serde_json::from_str(reordered).unwrap();
        assert_eq!(plan_hash(&parsed), plan_hash(&plan));
        assert_eq!(plan_hash(&plan).len(), 71);
        assert!(plan_hash(&plan).starts_with("sha256:"));
    }

    #[test]
    fn any_change_to_a_step_changes_the_hash() {
        let plan = sample();
        let mut other = sample();
        other.steps[0].command.push_str(" --to-revision=3");
        assert_ne!(plan_hash(&plan), plan_hash(&other));
        let mut other = sample();
        other.risk = Risk::High;
        assert_ne!(plan_hash(&plan), plan_hash(&other));
    }
}

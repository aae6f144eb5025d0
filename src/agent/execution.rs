//! The plan-specific parts of a session's report: checking a proposed plan before the `report`
//! tool accepts it, and, in the execution session, deriving `actionsTaken` from what the audit
//! shows ran rather than from the model's word.
//!
//! Sits between the loop ([`super::session`]) and the plan rules ([`crate::plan`]): the loop
//! calls [`check_proposed_plan`] when a proposal report arrives and [`actions_from_audit`] when
//! the execution report arrives; both are pure.

use crate::audit::{Redactor, StepAction};
use crate::plan::Plan;
use crate::plan::validate::validate_proposal;

/// Most `actionsTaken` entries (the CRD's bound).
const MAX_ACTIONS: usize = 50;

/// A plan step or rollback that ran in the execution session, as audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutedAction {
    /// 1-based step number.
    pub step: u32,
    pub action: StepAction,
    pub command: String,
    pub exit_code: Option<i32>,
    pub succeeded: bool,
}

impl ExecutedAction {
    /// One `actionsTaken` line.
    pub fn describe(&self) -> String {
        let what = match self.action {
            StepAction::Run => format!("step {}", self.step),
            StepAction::Rollback => format!("rollback of step {}", self.step),
        };
        let result = match (self.exit_code, self.succeeded) {
            (Some(0), true) => "exit 0".to_string(),
            (Some(code), _) => format!("exit {code} (failed)"),
            (None, _) => "no exit code (killed or interrupted; treated as failed)".to_string(),
        };
        format!("{what}: `{}` → {result}", self.command)
    }
}

/// Checks a proposed plan: the execution gate must be able to run it, and it must carry no
/// secret (a plan is shown to approvers, stored in status and sent to the execution session).
/// The error is the tool error the model reads.
pub fn check_proposed_plan(plan: &Plan, redactor: &Redactor) -> Result<(), String> {
    validate_proposal(plan)
        .map_err(|rejected| format!("{rejected}. Fix the plan and file the report again."))?;
    let original = serde_json::to_value(plan).map_err(|e| format!("the plan: {e}"))?;
    let mut redacted = original.clone();
    redactor.redact_json(&mut redacted);
    if redacted != original {
        return Err(
            "the plan was withheld: it contains a secret value (the redactor would hide \
                    it). A plan is shown to the approver and stored in the Incident's status: \
                    never put a credential in it; refer to the Secret that holds it instead, and \
                    file the report again."
                .into(),
        );
    }
    Ok(())
}

/// `actionsTaken` of an execution report: every step and rollback the audit shows, in order;
/// then each entry the model claimed that names no command that ran, flagged as such. Returns
/// the note for the session's message when a claim had to be flagged.
pub fn actions_from_audit(
    executed: &[ExecutedAction],
    claimed: &[String],
) -> (Vec<String>, Option<String>) {
    let mut actions: Vec<String> = executed.iter().map(ExecutedAction::describe).collect();
    let unbacked: Vec<&String> = claimed
        .iter()
        .filter(|claim| {
            !executed
                .iter()
                .any(|done| claim.contains(done.command.as_str()))
        })
        .collect();
    actions.extend(
        unbacked
            .iter()
            .map(|claim| format!("NOT IN THE AUDIT (the model listed it; it never ran): {claim}")),
    );
    actions.truncate(MAX_ACTIONS);
    let note = (!unbacked.is_empty()).then(|| {
        format!(
            "report corrected: actionsTaken comes from the audit; {} action(s) the model listed \
             match no command that ran and are flagged",
            unbacked.len()
        )
    });
    (actions, note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PlanStep, Risk};

    fn done(step: u32, command: &str, exit_code: Option<i32>) -> ExecutedAction {
        ExecutedAction {
            step,
            action: StepAction::Run,
            command: command.into(),
            exit_code,
            succeeded: exit_code == Some(0),
        }
    }

    #[test]
    fn actions_come_from_the_audit_and_false_claims_are_flagged() {
        let executed = vec![
            done(1, "kubectl -n shop rollout undo deploy/web", Some(0)),
            done(2, "kubectl -n shop scale deploy/web --replicas=4", Some(1)),
        ];
        let claimed = vec![
            "ran kubectl -n shop rollout undo deploy/web".to_string(),
            "deleted the stuck pod web-0".to_string(),
        ];
        let (actions, note) = actions_from_audit(&executed, &claimed);
        assert_eq!(
            actions,
            [
                "step 1: `kubectl -n shop rollout undo deploy/web` → exit 0",
                "step 2: `kubectl -n shop scale deploy/web --replicas=4` → exit 1 (failed)",
                "NOT IN THE AUDIT (the model listed it; it never ran): deleted the stuck pod web-0",
            ]
        );
        assert!(note.unwrap().contains("1 action(s)"));
        let (_, note) = actions_from_audit(&executed, &claimed[..1]);
        assert_eq!(note, None);
    }

    #[test]
    fn a_plan_with_a_secret_is_withheld() {
        let key = "sk-live-0123456789abcdefghijklmnop";
        let redactor = Redactor::new([key.to_string()]);
        let plan = Plan {
            steps: vec![PlanStep {
                command: format!("kubectl -n shop set env deploy/web API_KEY={key}"),
                purpose: "restore the key".into(),
                expected_effect: "web authenticates".into(),
                verify: "kubectl -n shop rollout status deploy/web".into(),
                rollback: None,
                rollback_on_failure: false,
            }],
            risk: Risk::Medium,
            risk_detail: None,
        };
        let err = check_proposed_plan(&plan, &redactor).unwrap_err();
        assert!(err.contains("withheld") && !err.contains(key), "{err}");
        let mut clean = plan.clone();
        clean.steps[0].command = "kubectl -n shop rollout restart deploy/web".into();
        assert_eq!(check_proposed_plan(&clean, &redactor), Ok(()));
        clean.steps[0].command = "kubectl delete ns shop".into();
        assert!(
            check_proposed_plan(&clean, &redactor)
                .unwrap_err()
                .contains("file the report again")
        );
    }
}

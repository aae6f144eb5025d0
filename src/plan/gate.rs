//! The execution session's gate: an allow-list built from the approved plan, in front of the
//! shell tool, checked before anything runs.
//!
//! What passes, in this order:
//! 1. **The next step**, verbatim: the command must equal the next unrun step's `command`
//!    exactly (byte for byte after trimming the ends, as the `shell` tool trims its input). No
//!    normalisation of inner whitespace or quotes: `kubectl  rollout` and `kubectl "rollout"` are
//!    different text from what the human approved, so they are not the step.
//! 2. **The rollback of the latest step**, verbatim, once, and only when that step says
//!    `rollbackOnFailure` (the model is told to use it only when the step failed or its effect
//!    is not the expected one; the gate cannot judge the effect, so it allows the rollback
//!    whether the step's exit code was 0 or not). After a rollback the plan is over.
//! 3. **Read-only commands** (the read-only gate of [`crate::agent::policy`]) to verify.
//!
//! No retries: a step runs once. A failed step (non-zero exit, timeout, signal) stops the plan:
//! no later step runs, only that step's rollback (when allowed) and read-only commands. Running a
//! step again is a new decision the approver did not make (a second `rollout undo` undoes the
//! first). Everything else is a [`PlanViolation`], which the session audits and tells the model.
//!
//! The gate is pure: [`ExecutionGate::check`] decides, [`ExecutionGate::record`] advances the
//! state once the command has run.

use super::Plan;
use crate::agent::policy::check_read_only;

/// What an allowed command is to the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Step `index` (0-based) of the plan.
    Step(usize),
    /// The rollback of step `index` (0-based).
    Rollback(usize),
    /// A read-only command (verification); not a plan action.
    ReadOnly,
}

/// Why a command was refused in the execution session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused: this session runs only the approved plan ({reason})")]
pub struct PlanViolation {
    pub reason: String,
}

/// Where the plan stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Step `index` ran and failed.
    Failed(usize),
    /// The rollback of step `index` ran.
    RolledBack(usize),
}

/// The allow-list of one execution session.
#[derive(Debug, Clone)]
pub struct ExecutionGate {
    plan: Plan,
    /// Index of the next step to run (= how many have run).
    next: usize,
    stop: Option<Stop>,
}

impl ExecutionGate {
    pub fn new(plan: Plan) -> Self {
        Self {
            plan,
            next: 0,
            stop: None,
        }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// How many steps have run.
    pub fn steps_run(&self) -> usize {
        self.next
    }

    /// One line on where the plan stands, for the session's closing message.
    pub fn summary(&self) -> String {
        let total = self.plan.steps.len();
        match self.stop {
            Some(Stop::Failed(i)) => format!("the plan stopped: step {} of {total} failed", i + 1),
            Some(Stop::RolledBack(i)) => format!(
                "the plan stopped: step {} of {total} was rolled back",
                i + 1
            ),
            None if self.next == total => format!("all {total} plan steps ran"),
            None => format!("{} of {total} plan steps ran", self.next),
        }
    }

    /// Decides whether `command` may run now.
    pub fn check(&self, command: &str) -> Result<Allowed, PlanViolation> {
        let command = command.trim();
        let steps = &self.plan.steps;
        if self.stop.is_none()
            && steps
                .get(self.next)
                .is_some_and(|step| step.command.trim() == command)
        {
            return Ok(Allowed::Step(self.next));
        }
        if let Some(latest) = self.next.checked_sub(1) {
            let step = &steps[latest];
            let is_rollback = step.rollback.as_deref().map(str::trim) == Some(command);
            let already = matches!(self.stop, Some(Stop::RolledBack(_)));
            if is_rollback && step.rollback_on_failure && !already {
                return Ok(Allowed::Rollback(latest));
            }
        }
        if let Some(reason) = self.why_not_a_plan_command(command) {
            return Err(PlanViolation { reason });
        }
        match check_read_only(command) {
            Ok(()) => Ok(Allowed::ReadOnly),
            Err(v) => Err(PlanViolation {
                reason: format!(
                    "`{}` is not a step of the plan and would change state ({}); only the next \
                     step verbatim and read-only commands run",
                    v.segment, v.why
                ),
            }),
        }
    }

    /// When `command` is a plan step or rollback text that may not run now, why.
    fn why_not_a_plan_command(&self, command: &str) -> Option<String> {
        let steps = &self.plan.steps;
        if let Some(i) = steps.iter().position(|s| s.command.trim() == command) {
            let n = i + 1;
            return Some(match self.stop {
                Some(Stop::Failed(f)) => format!(
                    "step {} failed, so the plan stopped; step {n} does not run (no retries)",
                    f + 1
                ),
                Some(Stop::RolledBack(r)) => format!(
                    "step {} was rolled back, so the plan is over; step {n} does not run",
                    r + 1
                ),
                None if i < self.next => {
                    format!("step {n} already ran; a step runs once (no retries)")
                }
                None => format!(
                    "step {n} is not next: step {} must run (and succeed) first",
                    self.next + 1
                ),
            });
        }
        let i = steps
            .iter()
            .position(|s| s.rollback.as_deref().map(str::trim) == Some(command))?;
        let n = i + 1;
        let step = &steps[i];
        Some(if !step.rollback_on_failure {
            format!("the plan does not allow rolling back step {n} (no rollbackOnFailure)")
        } else if i >= self.next {
            format!("step {n} has not run, so there is nothing to roll back")
        } else if matches!(self.stop, Some(Stop::RolledBack(r)) if r == i) {
            format!("step {n} was already rolled back")
        } else {
            format!("only the latest step's rollback may run, and step {n} is not the latest")
        })
    }

    /// Advances the plan after an allowed command ran; `succeeded` is exit code 0 without a
    /// timeout or signal.
    pub fn record(&mut self, allowed: Allowed, succeeded: bool) {
        match allowed {
            Allowed::Step(i) => {
                self.next = i + 1;
                if !succeeded {
                    self.stop = Some(Stop::Failed(i));
                }
            }
            Allowed::Rollback(i) => self.stop = Some(Stop::RolledBack(i)),
            Allowed::ReadOnly => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PlanStep, Risk};

    const UNDO: &str = "kubectl -n shop rollout undo deploy/web";
    const SCALE: &str = "kubectl -n shop scale deploy/web --replicas=4";
    const SCALE_BACK: &str = "kubectl -n shop scale deploy/web --replicas=2";

    fn step(command: &str, rollback: Option<&str>, rollback_on_failure: bool) -> PlanStep {
        PlanStep {
            command: command.into(),
            purpose: "p".into(),
            expected_effect: "e".into(),
            verify: "kubectl -n shop get deploy web".into(),
            rollback: rollback.map(str::to_string),
            rollback_on_failure,
        }
    }

    fn gate() -> ExecutionGate {
        ExecutionGate::new(Plan {
            steps: vec![step(UNDO, None, false), step(SCALE, Some(SCALE_BACK), true)],
            risk: Risk::Low,
            risk_detail: None,
        })
    }

    fn refused(gate: &ExecutionGate, command: &str) -> String {
        gate.check(command).unwrap_err().to_string()
    }

    #[test]
    fn steps_run_verbatim_in_order_once() {
        let mut g = gate();
        assert!(refused(&g, SCALE).contains("step 2 is not next: step 1 must run"));
        assert_eq!(g.check(UNDO), Ok(Allowed::Step(0)));
        g.record(Allowed::Step(0), true);
        assert!(refused(&g, UNDO).contains("step 1 already ran"));
        assert_eq!(g.check(SCALE), Ok(Allowed::Step(1)));
        g.record(Allowed::Step(1), true);
        assert!(refused(&g, SCALE).contains("already ran"));
        assert_eq!(g.summary(), "all 2 plan steps ran");
    }

    #[test]
    fn read_only_commands_verify_between_steps() {
        let g = gate();
        for cmd in [
            "kubectl -n shop rollout status deploy/web",
            "kubectl -n shop get pods -o wide | grep web",
            "kubectl -n shop get deploy web -o jsonpath='{.spec.replicas}'",
        ] {
            assert_eq!(g.check(cmd), Ok(Allowed::ReadOnly), "{cmd}");
        }
        assert!(refused(&g, "kubectl -n shop delete pod web-1").contains("not a step"));
    }

    #[test]
    fn whitespace_and_quoting_tricks_are_not_the_step() {
        let g = gate();
        for cmd in [
            "kubectl -n shop rollout  undo deploy/web",
            "kubectl -n shop rollout undo \"deploy/web\"",
            "kubectl -n shop 'rollout' undo deploy/web",
            "kubectl -n shop rollout undo deploy/web\t--to-revision=1",
            "/usr/bin/kubectl -n shop rollout undo deploy/web",
        ] {
            assert!(g.check(cmd).is_err(), "{cmd:?} passed");
        }
        // Split over two lines it is two harmless commands (`kubectl`, then `-n …`), not step 1.
        assert_eq!(
            g.check("kubectl\n-n shop rollout undo deploy/web"),
            Ok(Allowed::ReadOnly)
        );
        // Only the ends are trimmed, as the shell tool trims its input.
        assert_eq!(g.check(&format!("  {UNDO}\n")), Ok(Allowed::Step(0)));
    }

    #[test]
    fn anything_appended_to_an_approved_command_is_refused() {
        let g = gate();
        for tail in [
            "; kubectl -n shop delete pod web-1",
            " && kubectl get pods",
            " || true",
            " | tee /tmp/x",
            " $(kubectl delete ns prod)",
            " `id`",
            " &",
            "\nkubectl get pods",
        ] {
            let cmd = format!("{UNDO}{tail}");
            let err = refused(&g, &cmd);
            assert!(err.contains("rollout change"), "{cmd:?}: {err}");
        }
    }

    #[test]
    fn a_failed_step_stops_the_plan() {
        let mut g = gate();
        g.record(Allowed::Step(0), false);
        assert!(refused(&g, SCALE).contains("step 1 failed, so the plan stopped"));
        assert!(refused(&g, UNDO).contains("no retries"));
        assert_eq!(g.check("kubectl -n shop get pods"), Ok(Allowed::ReadOnly));
        assert_eq!(g.summary(), "the plan stopped: step 1 of 2 failed");
    }

    #[test]
    fn rollback_only_for_the_latest_step_that_allows_it_and_only_once() {
        let mut g = gate();
        // Before step 2 ran there is nothing to roll back.
        assert!(refused(&g, SCALE_BACK).contains("step 2 has not run"));
        g.record(Allowed::Step(0), true);
        assert!(refused(&g, SCALE_BACK).contains("has not run"));
        g.record(Allowed::Step(1), false);
        assert_eq!(g.check(SCALE_BACK), Ok(Allowed::Rollback(1)));
        g.record(Allowed::Rollback(1), true);
        assert!(refused(&g, SCALE_BACK).contains("already rolled back"));
        assert_eq!(g.summary(), "the plan stopped: step 2 of 2 was rolled back");

        // A step without rollbackOnFailure: its rollback text is refused even after it failed.
        let mut g = ExecutionGate::new(Plan {
            steps: vec![step(SCALE, Some(SCALE_BACK), false)],
            ..Plan::default()
        });
        g.record(Allowed::Step(0), false);
        assert!(refused(&g, SCALE_BACK).contains("does not allow rolling back step 1"));
    }

    #[test]
    fn an_earlier_steps_rollback_is_refused_once_a_later_step_ran() {
        let mut g = ExecutionGate::new(Plan {
            steps: vec![step(SCALE, Some(SCALE_BACK), true), step(UNDO, None, false)],
            ..Plan::default()
        });
        g.record(Allowed::Step(0), true);
        assert_eq!(g.check(SCALE_BACK), Ok(Allowed::Rollback(0)));
        g.record(Allowed::Step(1), true);
        assert!(refused(&g, SCALE_BACK).contains("only the latest step's rollback"));
    }
}

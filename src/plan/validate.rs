//! Checks a plan the model proposes (the `report` tool's `plan`) before it is accepted: bounds as
//! the CRD schema states them, every step and rollback one simple command (see [`super::shape`])
//! the execution gate can match verbatim, and nothing destructive beyond what a plan step should
//! ever do. Every problem is listed at once, so the model can fix the plan in one more call.
//!
//! Refused outright, whatever a human might approve: deleting namespaces, PersistentVolumes,
//! CRDs or nodes, deletes over `--all`/`--all-namespaces`, changes read from a file
//! (`-f`/`-k`: the approver cannot see the file's contents), destructive local commands and
//! inline code for another interpreter (what it does is not in the text).

use super::shape::simple_command_words;
use super::{MAX_PLAN_STEPS, MAX_PLAN_TEXT_CHARS, MAX_STEP_COMMAND_CHARS, Plan, PlanStep};
use crate::agent::policy::{first_positional, inline_code_reason};

/// The problems that make a proposed plan unacceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the plan was not accepted: {}", .problems.join("; "))]
pub struct PlanRejected {
    pub problems: Vec<String>,
}

/// Resource types whose deletion no plan may contain (singular, plural and short names).
const UNDELETABLE: &[&str] = &[
    "namespace",
    "namespaces",
    "ns",
    "persistentvolume",
    "persistentvolumes",
    "pv",
    "customresourcedefinition",
    "customresourcedefinitions",
    "crd",
    "crds",
    "node",
    "nodes",
    "no",
];
const DESTRUCTIVE_LOCAL: &[&str] = &[
    "rm", "shred", "mkfs", "dd", "reboot", "shutdown", "kill", "pkill", "killall", "truncate",
];

/// Checks a proposed plan; `Ok` means the execution gate can run it as written.
pub fn validate_proposal(plan: &Plan) -> Result<(), PlanRejected> {
    let mut problems = Vec::new();
    if plan.steps.is_empty() {
        problems.push("it has no steps".to_string());
    }
    if plan.steps.len() > MAX_PLAN_STEPS {
        problems.push(format!(
            "it has {} steps; at most {MAX_PLAN_STEPS}",
            plan.steps.len()
        ));
    }
    if let Some(detail) = &plan.risk_detail {
        check_text(&mut problems, "riskDetail", detail, false);
    }
    for (index, step) in plan.steps.iter().take(MAX_PLAN_STEPS).enumerate() {
        check_step(&mut problems, index + 1, step);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(PlanRejected { problems })
    }
}

fn check_step(problems: &mut Vec<String>, number: usize, step: &PlanStep) {
    let mut local = Vec::new();
    check_command(&mut local, "command", &step.command);
    check_text(&mut local, "purpose", &step.purpose, true);
    check_text(&mut local, "expectedEffect", &step.expected_effect, true);
    check_text(&mut local, "verify", &step.verify, true);
    match &step.rollback {
        Some(rollback) => check_command(&mut local, "rollback", rollback),
        None if step.rollback_on_failure => {
            local.push("`rollbackOnFailure` is set but there is no `rollback`".into());
        }
        None => {}
    }
    problems.extend(local.into_iter().map(|p| format!("step {number}: {p}")));
}

fn check_text(problems: &mut Vec<String>, field: &str, text: &str, required: bool) {
    if required && text.trim().is_empty() {
        problems.push(format!("`{field}` is empty"));
    }
    let chars = text.chars().count();
    if chars > MAX_PLAN_TEXT_CHARS {
        problems.push(format!(
            "`{field}` is {chars} characters; at most {MAX_PLAN_TEXT_CHARS}"
        ));
    }
}

fn check_command(problems: &mut Vec<String>, field: &str, command: &str) {
    let chars = command.chars().count();
    if chars > MAX_STEP_COMMAND_CHARS {
        problems.push(format!(
            "`{field}` is {chars} characters; at most {MAX_STEP_COMMAND_CHARS}"
        ));
        return;
    }
    if command != command.trim() {
        problems.push(format!(
            "`{field}` has leading or trailing whitespace; give the exact command"
        ));
    }
    let words = match simple_command_words(command) {
        Ok(words) => words,
        Err(e) => {
            problems.push(format!("`{field}` `{command}`: {e}"));
            return;
        }
    };
    if let Some(why) = destructive_reason(&words) {
        problems.push(format!("`{field}` `{command}`: {why}"));
    }
}

/// Why a simple command is beyond what any plan may do.
fn destructive_reason(words: &[String]) -> Option<String> {
    let args: Vec<&str> = words.iter().map(String::as_str).collect();
    let (program, rest) = args.split_first()?;
    let program = program.rsplit('/').next().unwrap_or(program);
    if let Some(why) = inline_code_reason(program, rest) {
        return Some(why.to_string());
    }
    if matches!(
        program,
        "sudo" | "env" | "nohup" | "nice" | "exec" | "command"
    ) {
        return Some(format!(
            "`{program}` wraps another command; give the command itself"
        ));
    }
    if DESTRUCTIVE_LOCAL.contains(&program) {
        return Some(format!(
            "`{program}` is a destructive local command; no plan step may run it"
        ));
    }
    if !matches!(program, "kubectl" | "oc") {
        return None;
    }
    let verb = first_positional(rest)?;
    let from_file = rest.iter().any(|a| {
        matches!(*a, "-f" | "-k")
            || a.starts_with("--filename")
            || a.starts_with("--kustomize")
            || a.starts_with("--patch-file")
            || (a.starts_with("-f") && a.len() > 2)
    });
    let changes = matches!(verb, "apply" | "create" | "replace" | "delete" | "patch");
    if changes && from_file {
        return Some(
            "it reads the change from a file the approver cannot see; use an inline change \
             (`kubectl patch`, `set`, `scale`, `rollout`)"
                .into(),
        );
    }
    if verb != "delete" {
        return None;
    }
    if rest
        .iter()
        .any(|a| matches!(*a, "--all" | "-A" | "--all-namespaces") || a.starts_with("--all="))
    {
        return Some("a delete over `--all` or every namespace is beyond any plan".into());
    }
    let after_verb = rest.iter().skip_while(|a| **a != "delete").skip(1);
    for arg in after_verb.filter(|a| !a.starts_with('-')) {
        let kinds = arg.split('/').next().unwrap_or(arg);
        for kind in kinds.split(',') {
            let kind = kind.split('.').next().unwrap_or(kind).to_ascii_lowercase();
            if UNDELETABLE.contains(&kind.as_str()) {
                return Some(format!(
                    "deleting {kind} is beyond any plan (namespaces, PersistentVolumes, CRDs \
                     and nodes are never deleted)"
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Risk;

    fn step(command: &str) -> PlanStep {
        PlanStep {
            command: command.into(),
            purpose: "mitigate".into(),
            expected_effect: "web serves again".into(),
            verify: "kubectl -n shop rollout status deploy/web".into(),
            rollback: None,
            rollback_on_failure: false,
        }
    }

    fn plan(steps: Vec<PlanStep>) -> Plan {
        Plan {
            steps,
            risk: Risk::Low,
            risk_detail: None,
        }
    }

    fn problems(p: &Plan) -> String {
        validate_proposal(p).unwrap_err().to_string()
    }

    #[test]
    fn ordinary_remediations_are_accepted() {
        let mut with_rollback = step("kubectl -n shop set image deploy/web web=web:1.4.2");
        with_rollback.rollback = Some("kubectl -n shop rollout undo deploy/web".into());
        with_rollback.rollback_on_failure = true;
        let p = plan(vec![
            step("kubectl -n shop rollout undo deploy/web"),
            step("kubectl -n shop scale deploy/web --replicas=4"),
            step("kubectl -n shop delete pod web-7d9f-abcde"),
            step(r#"kubectl -n shop patch deploy web -p '{"spec":{"replicas":3}}'"#),
            with_rollback,
        ]);
        assert_eq!(validate_proposal(&p), Ok(()));
    }

    #[test]
    fn what_the_gate_cannot_match_or_no_plan_may_do_is_refused_with_the_reason() {
        for (command, want) in [
            (
                "kubectl -n shop rollout undo deploy/web && kubectl get pods",
                "`&`",
            ),
            (
                "kubectl delete pod $(kubectl get pods -o name)",
                "command substitution",
            ),
            ("kubectl delete ns shop", "deleting ns"),
            ("kubectl delete namespace/shop", "deleting namespace"),
            ("kubectl delete pv,pvc --all", "--all"),
            (
                "kubectl delete crd incidents.sre.agentlab.dev",
                "deleting crd",
            ),
            ("kubectl delete pods -A -l app=web", "every namespace"),
            (
                "kubectl apply -f /tmp/fix.yaml",
                "file the approver cannot see",
            ),
            ("rm -rf /data", "destructive local command"),
            ("sh -c 'kubectl delete pod x'", "inline code"),
            ("sudo kubectl delete pod x", "wraps another command"),
            (" kubectl get pods", "whitespace"),
        ] {
            let text = problems(&plan(vec![step(command)]));
            assert!(text.contains(want), "{command}: {text}");
            assert!(text.contains("step 1: `command`"), "{text}");
        }
    }

    #[test]
    fn every_problem_is_listed_with_its_step() {
        let mut second = step("kubectl delete ns prod");
        second.purpose = String::new();
        second.rollback_on_failure = true;
        let text = problems(&plan(vec![step("kubectl get pods"), second]));
        assert!(text.contains("step 2: `command`"), "{text}");
        assert!(text.contains("step 2: `purpose` is empty"), "{text}");
        assert!(
            text.contains("step 2: `rollbackOnFailure` is set"),
            "{text}"
        );
        assert!(!text.contains("step 1"), "{text}");
    }

    #[test]
    fn bounds_are_the_contracts() {
        assert!(problems(&plan(vec![])).contains("no steps"));
        let many = plan(vec![step("kubectl get pods"); MAX_PLAN_STEPS + 1]);
        assert!(problems(&many).contains("at most 20"));
        let long = plan(vec![step(&format!(
            "kubectl annotate deploy/web note={}",
            "x".repeat(MAX_STEP_COMMAND_CHARS)
        ))]);
        assert!(problems(&long).contains("at most 2048"));
        let mut wordy = step("kubectl get pods");
        wordy.verify = "v".repeat(MAX_PLAN_TEXT_CHARS + 1);
        assert!(problems(&plan(vec![wordy])).contains("`verify` is 2049 characters"));
        let mut bad_rollback = step("kubectl -n shop scale deploy/web --replicas=0");
        bad_rollback.rollback = Some("kubectl scale deploy/web --replicas=3; echo".into());
        assert!(problems(&plan(vec![bad_rollback])).contains("step 1: `rollback`"));
    }
}

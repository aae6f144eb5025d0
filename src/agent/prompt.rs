//! What the model is told: the system prompt (role, rules of the mode, how to finish) and the first
//! user message (the incident itself). Both are plain functions of the Incident so they can be
//! read, tested and cached: the system prompt is identical across turns, which is what makes the
//! prompt-cache breakpoint on it pay off.

use std::fmt::Write as _;

use crate::incident::{IncidentSpec, Mode, Predecessor};
use crate::plan::approved::ApprovedPlan;

use super::settings::AgentSettings;

const ROLE: &str = "\
You are an experienced site reliability engineer on call. An incident was raised in a Kubernetes \
cluster and you have been given a shell in a pod inside that cluster to investigate it. The shell has \
kubectl (with this pod's service account), curl, jq, dig, ip, ss, ps, nc and git.

How to work:
- Start from the evidence: the alert, the runbook, then the objects it names. Form a hypothesis, test it \
with a command, and keep the ones the output supports.
- Prefer precise, bounded commands: `kubectl get ... -o wide`, `kubectl describe`, `kubectl logs --tail=200`, \
`kubectl get events --sort-by=.lastTimestamp`, `-o jsonpath`, `| head`, `| jq`. Output you see is \
truncated to its head and tail when long.
- Every command you run is recorded in an audit log that humans will read.
- Never print secret values (no `kubectl get secret -o yaml`, no `env` dumps of credentials). If you \
see a credential, do not repeat it.
- Stop when you know the root cause or have exhausted what you can learn, and file the report with the \
`report` tool. The report ends the session: it must stand on its own for an engineer who reads nothing \
else. Cite the commands behind each piece of evidence.";

const INVESTIGATE_RULES: &str = "\
Mode: INVESTIGATE (read-only). You must not change anything: no kubectl apply/create/delete/patch/edit/\
replace/scale/rollout restart/cordon/drain/label/annotate/exec that alters state, no helm install/upgrade/\
rollback/uninstall, no writes to files outside /tmp, no POST/PUT/DELETE requests to services. \
Obvious write commands are refused before they run, and so is inline code for another interpreter \
(`sh -c`, `python -c`, `eval`): run commands directly. This pod's RBAC is read-only, so a write that \
gets past the check fails anyway. Put fixes in `recommendations`, leave `actionsTaken` empty.";

const REMEDIATE_RULES: &str = "\
Mode: REMEDIATE, proposal stage. This session changes nothing: it runs under the same read-only \
checks and RBAC as an investigation (write commands are refused before they run). Investigate, \
then propose the remediation as the report's `plan`. A human approves that exact plan by its hash; \
a later session then runs its steps verbatim, in order, and nothing else. Propose, do not act.
A good plan has the fewest, smallest, reversible steps (roll back, scale, restart one pod, patch one \
field). For each step give:
- `command`: the exact command, one plain command: no `;`, `&&`, `|`, `$(...)`, backticks, `$VAR`, \
redirections or line breaks (put literal JSON in single quotes); no `-f FILE` (the approver cannot \
see a file); never delete namespaces, PersistentVolumes, CRDs or nodes, never `--all`;
- `purpose`, and `expectedEffect`: what changes when it succeeds;
- `verify`: a read-only command that shows the effect;
- `rollback`: the command that undoes it (omit when it cannot be undone), and `rollbackOnFailure: \
true` only when running it automatically on failure is safe.
Give the plan's `risk` (low, medium, high) and `riskDetail` (blast radius, what could go wrong). \
Never put a secret value in a plan. A plan that breaks these rules is refused with the reasons: fix \
it and file the report again. Leave `actionsTaken` empty: nothing was changed. With nothing worth \
changing, file the report without a plan.";

const EXECUTION_RULES: &str = "\
Mode: REMEDIATE, execution of an approved plan. A human approved exactly the plan below, by its \
hash. Run it, and nothing else that changes state:
- Run each step's `command` with the shell tool exactly as written (same spacing and quoting), in \
order, once. Any other command that writes, a step out of order, an edited command or a retry is \
refused before it runs, and recorded.
- After each step, check its effect with read-only commands (its `verify`) before the next step.
- If a step fails or its effect is not the expected one, stop: run no further step. Only if that \
step says `rollbackOnFailure: yes`, run its rollback command exactly as written, then verify that.
- Then file the report: what ran, what you verified, whether the incident is resolved. \
`actionsTaken` is filled from the audit of what actually ran. Do not propose a new plan.";

/// The system prompt: role, the mode's rules and the limits of this session.
pub fn system_prompt(mode: Mode, settings: &AgentSettings) -> String {
    let rules = match mode {
        Mode::Investigate => INVESTIGATE_RULES,
        Mode::Remediate => REMEDIATE_RULES,
    };
    with_limits(format!("{ROLE}\n\n{rules}"), settings)
}

/// The system prompt of the execution session: the rules and the approved plan, step by step.
pub fn execution_system_prompt(approved: &ApprovedPlan, settings: &AgentSettings) -> String {
    let mut out = format!(
        "{ROLE}\n\n{EXECUTION_RULES}\n\n## The approved plan ({})\n",
        approved.plan_hash
    );
    if let Some(approval) = &approved.approval {
        let _ = writeln!(
            out,
            "Approved by {} at {}.",
            approval.approver, approval.time.0
        );
    }
    let plan = &approved.plan;
    for (i, step) in plan.steps.iter().enumerate() {
        let _ = writeln!(
            out,
            "\nStep {n}\ncommand: {}\npurpose: {}\nexpected effect: {}\nverify: {}",
            step.command,
            step.purpose,
            step.expected_effect,
            step.verify,
            n = i + 1
        );
        match &step.rollback {
            Some(rollback) => {
                let _ = writeln!(
                    out,
                    "rollback: {rollback}\nrollbackOnFailure: {}",
                    if step.rollback_on_failure {
                        "yes"
                    } else {
                        "no (a human decides)"
                    }
                );
            }
            None => out.push_str("rollback: none\n"),
        }
    }
    let _ = write!(out, "\nRisk: {}", plan.risk.as_str());
    if let Some(detail) = &plan.risk_detail {
        let _ = write!(out, " ({detail})");
    }
    with_limits(out, settings)
}

/// The first user message of the execution session: the incident, then what to do with it.
pub fn execution_brief(
    namespace: Option<&str>,
    name: &str,
    spec: &IncidentSpec,
    steps: usize,
) -> String {
    let brief = incident_brief(namespace, name, spec);
    let brief = brief.strip_suffix(CLOSING).unwrap_or(&brief);
    format!(
        "{brief}\nThe investigation is done and its plan of {steps} step(s) was approved. Run the \
         plan with the shell tool, verifying each step, then file the report with the report tool."
    )
}

fn with_limits(text: String, settings: &AgentSettings) -> String {
    format!(
        "{text}\n\nLimits: at most {turns} turns; each command is killed after {cmd} s; \
         the whole session ends after {session} s. Budget your steps and file the report before \
         you run out.",
        turns = settings.max_turns,
        cmd = settings.command_timeout.as_secs(),
        session = settings.session_timeout.as_secs(),
    )
}

/// The first user message: the incident as the operator received it.
pub fn incident_brief(namespace: Option<&str>, name: &str, spec: &IncidentSpec) -> String {
    let brief = full_brief(namespace, name, spec);
    within_budget(brief, BRIEF_MAX_CHARS)
}

/// Characters of the first user message at most (issue 9 §7): the Incident is written by whoever
/// can create one, and a megabyte of annotation would otherwise be a megabyte of prompt, every turn.
pub const BRIEF_MAX_CHARS: usize = 24 * 1024;
/// Characters of one field (description, runbook, one label or annotation) in the brief.
const FIELD_MAX_CHARS: usize = 8 * 1024;
const ALERT_VALUE_MAX_CHARS: usize = 512;
const ALERT_ENTRIES_MAX: usize = 64;

/// `text` cut to `max` characters with a marker the model can see.
fn cut_visibly(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    let total = text.chars().count();
    match text.char_indices().nth(max) {
        Some((end, _)) => std::borrow::Cow::Owned(format!(
            "{}[... {} more characters cut: the prompt budget; read the Incident with kubectl for the rest ...]",
            &text[..end],
            total - max
        )),
        None => std::borrow::Cow::Borrowed(text),
    }
}

/// The whole brief cut to `max` characters, keeping the closing instruction.
fn within_budget(brief: String, max: usize) -> String {
    if brief.chars().count() <= max {
        return brief;
    }
    let closing = CLOSING;
    let head = cut_visibly(&brief, max.saturating_sub(closing.len() + 120)).into_owned();
    format!("{head}{closing}")
}

const CLOSING: &str =
    "\nInvestigate with the shell tool, then file your findings with the report tool.";

fn full_brief(namespace: Option<&str>, name: &str, spec: &IncidentSpec) -> String {
    let mut out = String::new();
    // `write!` to a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(out, "# Incident: {}", spec.title);
    let where_ = match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    };
    let _ = writeln!(
        out,
        "Object: Incident {where_}\nSeverity: {:?}\nSource: {:?}",
        spec.severity, spec.source
    );
    if let Some(description) = &spec.description {
        let _ = writeln!(
            out,
            "\n## Description\n{}",
            cut_visibly(description.trim_end(), FIELD_MAX_CHARS)
        );
    }
    if let Some(alert) = &spec.alert {
        let _ = writeln!(out, "\n## Alert `{}`", alert.name);
        if let Some(fp) = &alert.fingerprint {
            let _ = writeln!(out, "Fingerprint: {fp}");
        }
        if let Some(started) = &alert.starts_at {
            let _ = writeln!(out, "Firing since: {started}");
        }
        if let Some(url) = &alert.generator_url {
            let _ = writeln!(out, "Expression: {url}");
        }
        let entries = alert
            .labels
            .iter()
            .map(|(k, v)| ("label", k, v, "="))
            .chain(
                alert
                    .annotations
                    .iter()
                    .map(|(k, v)| ("annotation", k, v, ": ")),
            );
        let count = alert.labels.len() + alert.annotations.len();
        for (what, k, v, sep) in entries.take(ALERT_ENTRIES_MAX) {
            let k = cut_visibly(k, ALERT_VALUE_MAX_CHARS);
            let v = cut_visibly(v, ALERT_VALUE_MAX_CHARS);
            let _ = writeln!(out, "- {what} {k}{sep}{v}");
        }
        if count > ALERT_ENTRIES_MAX {
            let _ = writeln!(
                out,
                "[... {} more labels and annotations cut: the prompt budget ...]",
                count - ALERT_ENTRIES_MAX
            );
        }
    }
    match &spec.runbook {
        Some(runbook) => {
            let _ = writeln!(
                out,
                "\n## Runbook (follow it first)\n{}",
                cut_visibly(runbook.trim_end(), FIELD_MAX_CHARS)
            );
        }
        None => {
            let _ = writeln!(out, "\nNo runbook was given.");
        }
    }
    // Memory goes last: everything above is the same for every generation of an alert, so the
    // brief's start stays stable, and the recalled findings sit next to the instruction.
    write_predecessors(&mut out, &spec.predecessors);
    out.push_str(CLOSING);
    out
}

/// The "earlier incidents" section: what the previous generations of this alert found. The
/// intake redacted and bounded them when it wrote `spec.predecessors`.
fn write_predecessors(out: &mut String, predecessors: &[Predecessor]) {
    if predecessors.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n## Earlier incidents of this alert (newest first)\nThe same alert fired before and \
         was investigated. Check first whether the same cause is back; say in the report whether \
         it is, and whether the earlier recommendations were followed."
    );
    for predecessor in predecessors {
        let _ = writeln!(
            out,
            "\n### {} (finished {}, outcome {})",
            predecessor.name,
            predecessor.finished_at.as_deref().unwrap_or("unknown"),
            predecessor
                .outcome
                .map(|outcome| format!("{outcome:?}"))
                .unwrap_or_else(|| "unknown".into()),
        );
        if let Some(recurrences) = predecessor.recurrences {
            let _ = writeln!(
                out,
                "Fired {recurrences} more time(s) during its cool-down."
            );
        }
        if let Some(summary) = &predecessor.summary {
            let _ = writeln!(out, "Summary: {summary}");
        }
        if let Some(root_cause) = &predecessor.root_cause {
            let _ = writeln!(out, "Root cause: {root_cause}");
        }
        for action in &predecessor.actions_taken {
            let _ = writeln!(out, "- action taken: {action}");
        }
        for recommendation in &predecessor.recommendations {
            let _ = writeln!(out, "- recommended: {recommendation}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> IncidentSpec {
        serde_json::from_value(serde_json::json!({
            "title": "api down", "description": "all 5xx", "runbook": "check pods",
            "source": "alertmanager",
            "alert": {"name": "ApiDown", "fingerprint": "abc", "labels": {"team": "web"}}
        }))
        .unwrap()
    }

    #[test]
    fn brief_carries_alert_runbook_and_description() {
        let brief = incident_brief(Some("shop"), "api", &spec());
        for want in [
            "api down",
            "shop/api",
            "all 5xx",
            "check pods",
            "ApiDown",
            "team=web",
        ] {
            assert!(brief.contains(want), "missing {want}: {brief}");
        }
    }

    #[test]
    fn predecessors_come_last_with_their_root_cause() {
        let without = incident_brief(Some("shop"), "api-2", &spec());
        let mut with_memory = spec();
        with_memory.predecessors = vec![Predecessor {
            name: "api".into(),
            finished_at: Some("2026-01-01T10:00:00Z".into()),
            outcome: Some(crate::incident::Outcome::Reported),
            summary: Some("pods crash-looped".into()),
            root_cause: Some("bad config map key DB_HOST".into()),
            recommendations: vec!["pin the config".into()],
            recurrences: Some(4),
            ..Predecessor::default()
        }];
        let brief = incident_brief(Some("shop"), "api-2", &with_memory);
        let memory = brief.find("## Earlier incidents").expect("memory section");
        assert!(brief[memory..].contains("Root cause: bad config map key DB_HOST"));
        assert!(brief[memory..].contains("4 more time(s)"));
        assert!(brief[memory..].contains("recommended: pin the config"));
        // Everything before the memory is the brief without memory, minus its last line.
        let closing = without.rfind("\nInvestigate with").unwrap();
        assert_eq!(&brief[..memory - 1], &without[..closing]);
        assert!(!without.contains("Earlier incidents"));
    }

    #[test]
    fn modes_have_distinct_rules() {
        let s = AgentSettings::new("m");
        let investigate = system_prompt(Mode::Investigate, &s);
        let remediate = system_prompt(Mode::Remediate, &s);
        assert!(investigate.contains("read-only"));
        assert!(investigate.contains("at most 30 turns"));
        assert!(remediate.contains("Propose, do not act"));
        assert!(remediate.contains("`plan`") && remediate.contains("rollbackOnFailure"));
        assert!(!investigate.contains("`plan`"));
    }

    #[test]
    fn the_execution_prompt_carries_the_plan_and_the_rules() {
        let plan = crate::plan::Plan {
            steps: vec![crate::plan::PlanStep {
                command: "kubectl -n shop rollout undo deploy/web".into(),
                purpose: "undo the release".into(),
                expected_effect: "previous image".into(),
                verify: "kubectl -n shop rollout status deploy/web".into(),
                rollback: Some("kubectl -n shop rollout undo deploy/web".into()),
                rollback_on_failure: true,
            }],
            risk: crate::plan::Risk::Medium,
            risk_detail: Some("one deployment".into()),
        };
        let approved = ApprovedPlan {
            plan_hash: crate::plan::plan_hash(&plan),
            plan,
            approval: None,
            proposing_session: None,
        };
        let prompt = execution_system_prompt(&approved, &AgentSettings::new("m"));
        for want in [
            "exactly as written",
            "stop: run no further step",
            "Step 1\ncommand: kubectl -n shop rollout undo deploy/web",
            "rollbackOnFailure: yes",
            "Risk: medium (one deployment)",
            approved.plan_hash.as_str(),
            "at most 30 turns",
        ] {
            assert!(prompt.contains(want), "missing {want}: {prompt}");
        }
        let brief = execution_brief(Some("shop"), "api", &spec(), 1);
        assert!(brief.contains("plan of 1 step(s) was approved"), "{brief}");
        assert!(
            !brief.contains("Investigate with the shell tool"),
            "{brief}"
        );
    }

    #[test]
    fn a_huge_incident_gives_a_bounded_brief_with_visible_cuts() {
        let mut spec = spec();
        spec.description = Some("d".repeat(900_000));
        spec.runbook = Some("r".repeat(100_000));
        let alert = spec.alert.as_mut().unwrap();
        for i in 0..500 {
            alert
                .annotations
                .insert(format!("a{i:03}"), "v".repeat(10_000));
        }
        let brief = incident_brief(Some("shop"), "api", &spec);
        assert!(brief.chars().count() <= BRIEF_MAX_CHARS, "{}", brief.len());
        assert!(
            brief.contains("more characters cut: the prompt budget"),
            "no marker"
        );
        assert!(brief.ends_with(CLOSING), "the closing instruction stays");
        assert!(brief.contains("# Incident: api down"));
    }
}

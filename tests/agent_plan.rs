//! Remediation plans through the agent loop, against the scripted model on loopback: the proposal
//! session's plan checks, and the execution session of an approved plan (hash check at start,
//! the allow-list gate, step audit, rollback, actionsTaken from the audit). Real HTTP through the
//! production client, real shell commands in a scratch directory, real audit files.

use std::time::Duration;

use incident_operator::agent::{AgentSettings, SessionInput, SessionResult, run_session};
use incident_operator::anthropic::{ClientConfig, MessagesClient, RetryPolicy};
use incident_operator::audit::{AuditEvent, AuditRecord, Redactor, StepAction, read_jsonl};
use incident_operator::incident::{IncidentSpec, Mode, Outcome};
use incident_operator::plan::approved::{ApprovedPlanInput, ExecutionRequest};
use incident_operator::plan::{ApprovalRecord, Plan, PlanStep, Risk, plan_hash};
use scripted_model::{ScriptedModel, Step, reply};
use serde_json::{Value, json};

const KEY: &str = "sk-ant-test-key-0123456789abcdef";
const PROPOSED_BY: &str = "20261201T115900Z-1a2b3c4d";

fn spec(mode: Mode) -> IncidentSpec {
    let mut spec: IncidentSpec =
        serde_json::from_value(json!({"title": "web down", "runbook": "roll back"})).unwrap();
    spec.mode = mode;
    spec
}

fn client(server: &ScriptedModel) -> MessagesClient {
    MessagesClient::new(ClientConfig {
        api_key: KEY.into(),
        base_url: server.base_url(),
        request_timeout: Duration::from_secs(30),
        retry: RetryPolicy {
            max_attempts: 2,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            total_budget: Duration::from_secs(5),
        },
    })
    .unwrap()
}

struct Session {
    result: SessionResult,
    records: Vec<AuditRecord>,
    requests: Vec<Value>,
    work: tempfile::TempDir,
    _audit: tempfile::TempDir,
}

impl Session {
    fn exists(&self, file: &str) -> bool {
        self.work.path().join(file).exists()
    }

    fn events(&self, kind: &str) -> Vec<&AuditEvent> {
        self.records
            .iter()
            .map(|r| &r.event)
            .filter(|e| e.kind() == kind)
            .collect()
    }
}

async fn run(steps: Vec<Step>, mode: Mode, execution: Option<ExecutionRequest>) -> Session {
    run_with(steps, mode, execution, Redactor::new(Vec::<String>::new())).await
}

async fn run_with(
    steps: Vec<Step>,
    mode: Mode,
    execution: Option<ExecutionRequest>,
    redactor: Redactor,
) -> Session {
    let server = ScriptedModel::start(steps).await;
    let audit = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut settings = AgentSettings::new("claude-test");
    settings.command_timeout = Duration::from_secs(10);
    let input = SessionInput {
        namespace: Some("shop".into()),
        name: "web-down".into(),
        spec: spec(mode),
        settings,
        audit_dir: audit.path().to_path_buf(),
        redactor,
        client: client(&server),
        cancel: None,
        work_dir: Some(work.path().to_path_buf()),
        execution,
    };
    let result = run_session(input, &mut ()).await.unwrap();
    let records = read_jsonl(&result.jsonl_path).unwrap();
    let requests = server.requests().into_iter().map(|r| r.body).collect();
    Session {
        result,
        records,
        requests,
        work,
        _audit: audit,
    }
}

fn step(command: &str, verify: &str) -> PlanStep {
    PlanStep {
        command: command.into(),
        purpose: format!("do {command}"),
        expected_effect: "a marker file appears".into(),
        verify: verify.into(),
        rollback: None,
        rollback_on_failure: false,
    }
}

fn plan(steps: Vec<PlanStep>) -> Plan {
    Plan {
        steps,
        risk: Risk::Low,
        risk_detail: Some("scratch directory only".into()),
    }
}

fn approval(plan: &Plan) -> ApprovalRecord {
    serde_json::from_value(json!({
        "name": "web-down-approval", "uid": "5f0c7a3e-0000-4000-8000-000000000001",
        "decision": "approve", "approver": "alice@example.com", "comment": "go",
        "planHash": plan_hash(plan), "time": "2026-12-01T12:00:00Z"
    }))
    .unwrap()
}

fn approved(plan: &Plan) -> Option<ExecutionRequest> {
    Some(Ok(ApprovedPlanInput {
        plan: plan.clone(),
        plan_hash: plan_hash(plan),
        approval: Some(approval(plan)),
        proposing_session: Some(PROPOSED_BY.into()),
    }))
}

fn shell(id: &str, command: &str) -> Step {
    Step::Reply(reply::tool_use(id, "shell", json!({ "command": command })))
}

fn report(id: &str, input: Value) -> Step {
    Step::Reply(reply::tool_use(id, "report", input))
}

/// The tool_result blocks of the last user message of a request body.
fn tool_results(request: &Value) -> Vec<Value> {
    let last = request["messages"].as_array().unwrap().last().unwrap();
    assert_eq!(last["role"], "user");
    last["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "tool_result")
        .cloned()
        .collect()
}

fn result_text(block: &Value) -> String {
    match &block["content"] {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[tokio::test]
async fn an_approved_plan_runs_in_order_and_nothing_else_does() {
    let plan = plan(vec![
        step("touch step1-done", "ls step1-done"),
        step("touch step2-done", "ls step2-done"),
    ]);
    let s = run(
        vec![
            shell("t1", "touch step1-done"),
            shell("t2", "ls step1-done"),
            shell("t3", "kubectl -n shop delete pod web-0"),
            shell("t4", "touch step2-done && kubectl -n shop delete pod web-0"),
            shell("t5", "touch step2-done"),
            shell("t6", "ls step2-done"),
            report(
                "t7",
                json!({"summary": "both steps ran and were verified", "confidence": "high",
                       "resolved": true,
                       "actionsTaken": ["touch step1-done", "deleted pod web-0 to be sure"]}),
            ),
        ],
        Mode::Remediate,
        approved(&plan),
    )
    .await;
    assert_eq!(
        s.result.outcome,
        Outcome::Reported,
        "{:?}",
        s.result.message
    );
    assert!(s.exists("step1-done") && s.exists("step2-done"));

    // The model was told the plan and the rules, and what was approved.
    let system = s.requests[0]["system"].to_string();
    assert!(system.contains("execution of an approved plan"), "{system}");
    assert!(system.contains("command: touch step2-done"), "{system}");
    assert!(system.contains(&plan_hash(&plan)), "{system}");
    assert!(system.contains("alice@example.com"), "{system}");

    // session_start records the approval and the investigation it continues.
    match s.events("session_start")[0] {
        AuditEvent::SessionStart {
            execution: Some(execution),
            ..
        } => {
            assert_eq!(execution.plan_hash, plan_hash(&plan));
            assert_eq!(execution.steps, 2);
            assert_eq!(execution.continues_session.as_deref(), Some(PROPOSED_BY));
            let approval = execution.approval.as_ref().unwrap();
            assert_eq!(approval.approver, "alice@example.com");
            assert_eq!(approval.uid, "5f0c7a3e-0000-4000-8000-000000000001");
        }
        other => panic!("{other:?}"),
    }

    // The unplanned command and the step with a tail were refused before running, audited as
    // plan violations, and the model was told why.
    let violations = s.events("plan_violation");
    assert_eq!(violations.len(), 2, "{violations:?}");
    match violations[0] {
        AuditEvent::PlanViolation {
            command,
            reason,
            tool_use_id,
            ..
        } => {
            assert_eq!(tool_use_id, "t3");
            assert_eq!(command, "kubectl -n shop delete pod web-0");
            assert!(reason.contains("not a step of the plan"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    for (request, id) in [(&s.requests[3], "t3"), (&s.requests[4], "t4")] {
        let results = tool_results(request);
        assert_eq!(results[0]["tool_use_id"], id);
        assert_eq!(results[0]["is_error"], true);
        assert!(
            result_text(&results[0]).contains("runs only the approved plan"),
            "{results:?}"
        );
    }
    let commands: Vec<String> = s
        .events("tool_call")
        .iter()
        .map(|e| match e {
            AuditEvent::ToolCall { command, .. } => command.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        commands,
        [
            "touch step1-done",
            "ls step1-done",
            "touch step2-done",
            "ls step2-done"
        ]
    );

    // Each step's execution is audited with its index, right after its tool call.
    let steps: Vec<(u32, StepAction, bool)> = s
        .events("plan_step")
        .iter()
        .map(|e| match e {
            AuditEvent::PlanStep {
                step,
                action,
                succeeded,
                ..
            } => (*step, *action, *succeeded),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        steps,
        [(1, StepAction::Run, true), (2, StepAction::Run, true)]
    );
    let first_step = s
        .records
        .iter()
        .position(|r| r.event.kind() == "plan_step")
        .unwrap();
    assert_eq!(s.records[first_step - 1].event.kind(), "tool_call");
    // The model reads where the plan stands after each step.
    assert!(result_text(&tool_results(&s.requests[1])[0]).contains("plan: step 1 succeeded"));

    // actionsTaken is what the audit shows ran; the claim that never ran is flagged.
    let report = s.result.report.as_ref().unwrap().get();
    assert_eq!(
        report.actions_taken,
        [
            "step 1: `touch step1-done` → exit 0",
            "step 2: `touch step2-done` → exit 0",
            "NOT IN THE AUDIT (the model listed it; it never ran): deleted pod web-0 to be sure",
        ]
    );
    let message = s.result.message.as_ref().unwrap().as_str().to_string();
    assert!(message.contains("all 2 plan steps ran"), "{message}");
    assert!(message.contains("report corrected"), "{message}");
}

#[tokio::test]
async fn a_failed_step_stops_the_plan_and_the_report_says_so() {
    let mut first = step("touch missing-dir/step1", "ls missing-dir/step1");
    first.rollback = Some("touch rolled-back".into());
    first.rollback_on_failure = true;
    let plan = plan(vec![first, step("touch step2-done", "ls step2-done")]);
    let s = run(
        vec![
            shell("t1", "touch missing-dir/step1"),
            shell("t2", "touch step2-done"),
            shell("t3", "touch rolled-back"),
            report(
                "t4",
                json!({"summary": "step 1 failed: missing-dir does not exist; rolled back, step 2 not run",
                       "confidence": "high", "resolved": false}),
            ),
        ],
        Mode::Remediate,
        approved(&plan),
    )
    .await;
    assert_eq!(s.result.outcome, Outcome::Reported);
    assert!(
        !s.exists("step2-done"),
        "step 2 must not run after step 1 failed"
    );
    assert!(s.exists("rolled-back"), "the plan allows step 1's rollback");

    let refused = result_text(&tool_results(&s.requests[2])[0]);
    assert!(
        refused.contains("step 1 failed, so the plan stopped"),
        "{refused}"
    );
    assert!(result_text(&tool_results(&s.requests[1])[0]).contains("FAILED"));
    assert_eq!(s.events("plan_violation").len(), 1);
    let steps: Vec<(u32, StepAction, bool)> = s
        .events("plan_step")
        .iter()
        .map(|e| match e {
            AuditEvent::PlanStep {
                step,
                action,
                succeeded,
                ..
            } => (*step, *action, *succeeded),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        steps,
        [(1, StepAction::Run, false), (1, StepAction::Rollback, true)]
    );

    let report = s.result.report.as_ref().unwrap().get();
    assert!(report.summary.contains("step 1 failed"));
    assert_eq!(report.actions_taken.len(), 2, "{:?}", report.actions_taken);
    assert!(
        report.actions_taken[0].starts_with("step 1: `touch missing-dir/step1` → exit 1 (failed)")
    );
    assert_eq!(
        report.actions_taken[1],
        "rollback of step 1: `touch rolled-back` → exit 0"
    );
    let message = s.result.message.as_ref().unwrap().as_str().to_string();
    assert!(
        message.contains("the plan stopped: step 1 of 2 was rolled back"),
        "{message}"
    );
}

#[tokio::test]
async fn a_hash_mismatch_is_audited_and_nothing_runs() {
    let approved_plan = plan(vec![step("touch step1-done", "ls step1-done")]);
    let mut edited = approved_plan.clone();
    edited.steps[0].command = "touch edited".into();
    let request = Some(Ok(ApprovedPlanInput {
        plan: edited,
        plan_hash: plan_hash(&approved_plan),
        approval: Some(approval(&approved_plan)),
        proposing_session: None,
    }));
    let s = run(vec![shell("t1", "touch edited")], Mode::Remediate, request).await;
    assert_eq!(s.result.outcome, Outcome::Error);
    assert!(s.requests.is_empty(), "the model was never called");
    assert!(!s.exists("edited"));
    let kinds: Vec<_> = s.records.iter().map(|r| r.event.kind()).collect();
    assert_eq!(kinds, ["session_start", "error", "session_end"]);
    match s.events("error")[0] {
        AuditEvent::Error { kind, message } => {
            assert_eq!(kind, "plan_hash_mismatch");
            assert!(message.contains(&plan_hash(&approved_plan)), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let message = s.result.message.as_ref().unwrap().as_str().to_string();
    assert!(message.contains("plan hash mismatch"), "{message}");
}

#[tokio::test]
async fn the_proposal_session_is_read_only_and_its_plan_is_checked_before_acceptance() {
    let secret = "hunter2-0123456789-abcdefgh";
    let good = json!({"risk": "medium", "riskDetail": "one deployment",
        "steps": [{"command": "kubectl -n shop rollout undo deploy/web", "purpose": "undo the bad release",
                   "expectedEffect": "pods run the previous image",
                   "verify": "kubectl -n shop rollout status deploy/web",
                   "rollback": "kubectl -n shop rollout undo deploy/web", "rollbackOnFailure": true}]});
    let report_with = |plan: Value| json!({"summary": "bad release", "confidence": "high", "resolved": false, "plan": plan});
    let s = run_with(
        vec![
            shell("t1", "kubectl -n shop rollout undo deploy/web"),
            report(
                "t2",
                report_with(json!({"risk": "low", "steps": [
                    {"command": "kubectl -n shop rollout undo deploy/web && kubectl delete ns shop",
                     "purpose": "p", "expectedEffect": "e", "verify": "v"}]})),
            ),
            report(
                "t3",
                report_with(json!({"risk": "low", "steps": [
                    {"command": format!("kubectl -n shop set env deploy/web TOKEN={secret}"),
                     "purpose": "p", "expectedEffect": "e", "verify": "v"}]})),
            ),
            report("t4", report_with(good.clone())),
        ],
        Mode::Remediate,
        None,
        Redactor::new([secret.to_string()]),
    )
    .await;
    assert_eq!(s.result.outcome, Outcome::Reported);
    let system = s.requests[0]["system"].to_string();
    assert!(system.contains("Propose, do not act"), "{system}");

    // The write was refused by the read-only gate: nothing ran.
    assert!(s.events("tool_call").is_empty());
    let first = result_text(&tool_results(&s.requests[1])[0]);
    assert!(first.contains("refused by the read-only gate"), "{first}");

    // The compound step and the plan with a secret came back as tool errors the model can fix.
    let compound = result_text(&tool_results(&s.requests[2])[0]);
    assert!(compound.contains("the plan was not accepted"), "{compound}");
    assert!(compound.contains("step 1: `command`"), "{compound}");
    let withheld = result_text(&tool_results(&s.requests[3])[0]);
    assert!(withheld.contains("withheld"), "{withheld}");
    assert!(!withheld.contains(secret));
    assert_eq!(s.events("report").len(), 1);

    let report = s.result.report.as_ref().unwrap().get();
    let filed = report.plan.as_ref().unwrap();
    assert_eq!(serde_json::to_value(filed).unwrap(), good);
    assert!(report.actions_taken.is_empty());
    // No secret reached the audit either (the redactor hides it in the model's tool input).
    let jsonl = std::fs::read_to_string(&s.result.jsonl_path).unwrap();
    assert!(!jsonl.contains(secret));
}

#[tokio::test]
async fn investigate_mode_refuses_a_plan() {
    let s = run(
        vec![
            report(
                "t1",
                json!({"summary": "x", "confidence": "low", "resolved": false,
                       "plan": {"risk": "low", "steps": [{"command": "kubectl -n shop rollout undo deploy/web",
                       "purpose": "p", "expectedEffect": "e", "verify": "v"}]}}),
            ),
            report(
                "t2",
                json!({"summary": "x", "confidence": "low", "resolved": false,
                       "recommendations": ["kubectl -n shop rollout undo deploy/web"]}),
            ),
        ],
        Mode::Investigate,
        None,
    )
    .await;
    assert_eq!(s.result.outcome, Outcome::Reported);
    let refused = result_text(&tool_results(&s.requests[1])[0]);
    assert!(refused.contains("remediate mode only"), "{refused}");
    assert!(s.result.report.as_ref().unwrap().get().plan.is_none());
}

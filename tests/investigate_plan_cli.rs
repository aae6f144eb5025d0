//! `incident-operator investigate --approved-plan FILE`: the execution session of an approved plan
//! as a user runs it locally — the real binary, the scripted Messages API on loopback, real
//! commands in a scratch directory, real audit files.

use std::path::Path;
use std::process::{Command, Output};

use incident_operator::audit::read_jsonl;
use incident_operator::plan::{Plan, PlanStep, Risk, plan_hash};
use scripted_model::{ScriptedModel, Step, reply};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_incident-operator");
const REMEDIATE_EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/incident-remediate.yaml"
);
const KEY: &str = "sk-ant-e2e-key-0123456789abcdef";

fn plan() -> Plan {
    Plan {
        steps: vec![PlanStep {
            command: "touch restarted".into(),
            purpose: "stand-in for the fix".into(),
            expected_effect: "the marker exists".into(),
            verify: "ls restarted".into(),
            rollback: None,
            rollback_on_failure: false,
        }],
        risk: Risk::Low,
        risk_detail: None,
    }
}

/// `status.plan` as the controller writes it, with `status.approval` next to it.
fn status_plan(plan: &Plan, hash: &str) -> Value {
    json!({
        "plan": plan, "planHash": hash, "sessionId": "2026-12-01T11-59-00-1a2b3c4d",
        "proposedAt": "2026-12-01T11:59:00Z", "expiresAt": "2026-12-01T12:29:00Z",
        "approval": {"name": "a1", "uid": "u1", "decision": "approve", "approver": "alice",
                     "planHash": hash, "time": "2026-12-01T12:00:00Z"}
    })
}

fn run(server: &ScriptedModel, work: &Path, plan_file: &Value) -> Output {
    let file = work.join("approved-plan.json");
    std::fs::write(&file, plan_file.to_string()).unwrap();
    Command::new(BIN)
        .args([
            "investigate",
            "--file",
            REMEDIATE_EXAMPLE,
            "--audit-dir",
            "audit",
        ])
        .arg("--approved-plan")
        .arg(&file)
        .current_dir(work)
        .env("ANTHROPIC_API_KEY", KEY)
        .env("ANTHROPIC_BASE_URL", server.base_url())
        .env_remove("ANTHROPIC_MODEL")
        .env_remove("INCIDENT_AUDIT_DIR")
        .output()
        .unwrap()
}

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn audit_events(work: &Path) -> Vec<String> {
    let dir = work.join("audit");
    let jsonl = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .expect("an audit log");
    read_jsonl(&jsonl)
        .unwrap()
        .iter()
        .map(|r| r.event.kind().to_string())
        .collect()
}

#[test]
fn an_approved_plan_file_runs_its_steps() {
    let server = ScriptedModel::start_blocking(vec![
        Step::Reply(reply::tool_use(
            "t1",
            "shell",
            json!({"command": "touch restarted"}),
        )),
        Step::Reply(reply::tool_use(
            "t2",
            "shell",
            json!({"command": "ls restarted"}),
        )),
        Step::Reply(reply::tool_use(
            "t3",
            "report",
            json!({"summary": "step 1 ran and the marker exists", "confidence": "high", "resolved": true}),
        )),
    ]);
    let work = tempfile::tempdir().unwrap();
    let out = run(
        &server,
        work.path(),
        &status_plan(&plan(), &plan_hash(&plan())),
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(work.path().join("restarted").exists());
    assert!(
        stdout.contains("step 1: `touch restarted` → exit 0"),
        "{stdout}"
    );
    assert!(stdout.contains("all 1 plan steps ran"), "{stdout}");
    assert!(
        stderr.contains("plan: step 1: touch restarted → exit 0"),
        "{stderr}"
    );
    let events = audit_events(work.path());
    assert!(events.contains(&"plan_step".to_string()), "{events:?}");
}

#[test]
fn a_plan_file_whose_hash_does_not_match_never_reaches_the_model() {
    let server = ScriptedModel::start_blocking(vec![Step::Reply(reply::tool_use(
        "t1",
        "shell",
        json!({"command": "touch restarted"}),
    ))]);
    let work = tempfile::tempdir().unwrap();
    let mut edited = plan();
    edited.steps[0].command = "touch something-else".into();
    let out = run(
        &server,
        work.path(),
        &status_plan(&edited, &plan_hash(&plan())),
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("plan hash mismatch"), "{stdout}");
    assert!(stdout.contains(&plan_hash(&plan())), "{stdout}");
    assert!(server.requests().is_empty());
    assert!(!work.path().join("restarted").exists());
    assert_eq!(
        audit_events(work.path()),
        ["session_start", "error", "session_end"]
    );
}

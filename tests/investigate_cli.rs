//! `incident-operator investigate` as a user runs it: the real binary, a scripted Messages API
//! server on loopback, real commands, real audit files — and a SIGKILL in the middle.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use incident_operator::audit::{AuditEvent, read_jsonl};
use scripted_model::{ScriptedModel, Step, reply};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_incident-operator");
const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/incident.yaml");
const KEY: &str = "sk-ant-e2e-key-0123456789abcdef";

fn investigate(server_url: &str, audit: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["investigate", "--file", EXAMPLE, "--audit-dir"])
        .arg(audit)
        .args(extra)
        .env("ANTHROPIC_API_KEY", KEY)
        .env("ANTHROPIC_BASE_URL", server_url)
        .env_remove("ANTHROPIC_MODEL")
        .env_remove("INCIDENT_AUDIT_DIR");
    cmd
}

fn report() -> Step {
    Step::Reply(reply::tool_use(
        "r1",
        "report",
        json!({"summary": "checkout-api pods lack DATABASE_URL since the 09:40 deploy",
               "evidence": ["echo: simulated"], "recommendations": ["roll back"],
               "confidence": "medium", "resolved": false}),
    ))
}

fn audit_files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == ext));
    files
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn investigate_runs_the_example_incident_to_a_report() {
    let server = ScriptedModel::start_blocking(vec![
        Step::Reply(reply::tool_use(
            "t1",
            "shell",
            json!({"command": "echo pods-look-fine"}),
        )),
        report(),
    ]);
    let audit = tempfile::tempdir().unwrap();
    let out = investigate(&server.base_url(), audit.path(), &[])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("lack DATABASE_URL"), "{stdout}");
    assert!(stdout.contains("Outcome: reported"), "{stdout}");
    // Live progress: the turn, the command, its exit code and duration, tokens.
    assert!(
        stderr.contains("[turn 1] $ echo pods-look-fine → exit 0"),
        "{stderr}"
    );
    assert!(stderr.contains("tokens in"), "{stderr}");
    // The spec's own limits were used (maxTurns 20 in the example) and the model default.
    let first = &server.requests()[0].body;
    assert!(first["system"].to_string().contains("at most 20 turns"));
    assert_eq!(first["model"], "claude-sonnet-4-6");
    let jsons = audit_files(audit.path(), "json");
    assert_eq!(jsons.len(), 1, "one final audit document");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&jsons[0]).unwrap()).unwrap();
    assert_eq!(doc["auditVersion"], 1);
    assert!(
        !doc.to_string().contains(KEY),
        "API key leaked into the audit"
    );
}

#[test]
fn flags_override_the_incident_and_json_output_parses() {
    let server = ScriptedModel::start_blocking(vec![report()]);
    let audit = tempfile::tempdir().unwrap();
    let out = investigate(
        &server.base_url(),
        audit.path(),
        &[
            "--model",
            "claude-other",
            "--max-turns",
            "4",
            "--json",
            "--quiet",
        ],
    )
    .output()
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "--quiet printed: {stderr}");
    let result: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(result["outcome"], "reported");
    assert_eq!(result["usage"]["turns"], 1);
    let first = &server.requests()[0].body;
    assert_eq!(first["model"], "claude-other");
    assert!(first["system"].to_string().contains("at most 4 turns"));
}

#[test]
fn no_report_means_a_non_zero_exit() {
    let server = ScriptedModel::start_blocking(
        (0..3)
            .map(|i| {
                Step::Reply(reply::tool_use(
                    format!("t{i}"),
                    "shell",
                    json!({"command": "true"}),
                ))
            })
            .collect(),
    );
    let audit = tempfile::tempdir().unwrap();
    let out = investigate(&server.base_url(), audit.path(), &["--max-turns", "2"])
        .output()
        .unwrap();
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("limit_reached") && stdout.contains("max turns reached (2)"),
        "{stdout}"
    );
}

#[test]
fn startup_errors_are_one_clear_line() {
    let audit = tempfile::tempdir().unwrap();
    // No API key.
    let out = investigate("http://127.0.0.1:9", audit.path(), &[])
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("ANTHROPIC_API_KEY"), "{stderr}");

    // Unreadable and invalid incident files.
    let bad = audit.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: sre.agentlab.dev/v1alpha1\nkind: Incident\nmetadata: {name: x}\nspec: {title: t, mode: yolo}\n").unwrap();
    for (file, want) in [
        ("/nonexistent.yaml".as_ref(), "cannot read"),
        (bad.as_path(), "yolo"),
    ] {
        let out = Command::new(BIN)
            .args(["investigate", "--file"])
            .arg(file)
            .env("ANTHROPIC_API_KEY", KEY)
            .output()
            .unwrap();
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(want), "{stderr}");
    }
}

#[test]
fn unreachable_endpoint_is_a_clear_error() {
    // A port nothing listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let audit = tempfile::tempdir().unwrap();
    let out = investigate(&url, audit.path(), &["--quiet", "--max-retries", "1"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(&url) || stderr.contains(&url),
        "the error should name the URL: {stdout}{stderr}"
    );
    assert!(stdout.contains("cannot reach"), "{stdout}");
}

#[test]
fn sigkill_mid_session_loses_no_completed_tool_call() {
    // Two commands complete, then the model "thinks" for a minute: the process is killed then.
    let server = ScriptedModel::start_blocking(vec![
        Step::Reply(reply::tool_use(
            "t1",
            "shell",
            json!({"command": "echo one"}),
        )),
        Step::Reply(reply::tool_use(
            "t2",
            "shell",
            json!({"command": "echo two"}),
        )),
        Step::Delay(Duration::from_secs(60), Box::new(report())),
    ]);
    let audit = tempfile::tempdir().unwrap();
    let mut child = investigate(&server.base_url(), audit.path(), &["--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let jsonl = loop {
        assert!(
            Instant::now() < deadline,
            "the agent never reached its third model call"
        );
        if server.requests().len() >= 3
            && let Some(path) = audit_files(audit.path(), "jsonl").pop()
        {
            break path;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap(); // SIGKILL: no handler, no flush, no final document
    child.wait().unwrap();

    let records = read_jsonl(&jsonl).unwrap();
    let commands: Vec<_> = records
        .iter()
        .filter_map(|r| match &r.event {
            AuditEvent::ToolCall {
                command, result, ..
            } => Some((
                command.clone(),
                result["stdout"].as_str().unwrap_or("").to_string(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        commands,
        [
            ("echo one".to_string(), "one\n".to_string()),
            ("echo two".to_string(), "two\n".to_string())
        ]
    );
    assert!(
        audit_files(audit.path(), "json").is_empty(),
        "no final document after SIGKILL"
    );
    let seqs: Vec<_> = records.iter().map(|r| r.seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
}

//! The agent loop end to end through the real Messages API client, against a scripted model
//! server on loopback: real HTTP, real shell commands, real audit files.

use std::path::Path;
use std::time::Duration;

use incident_operator::agent::{AgentSettings, SessionInput, SessionResult, run_session};
use incident_operator::anthropic::{ClientConfig, MessagesClient, RetryPolicy};
use incident_operator::audit::{AuditEvent, AuditRecord, Redactor, read_jsonl};
use incident_operator::incident::{IncidentSpec, Mode, Outcome};
use scripted_model::{ScriptedModel, Step, reply};
use serde_json::{Value, json};

const KEY: &str = "sk-ant-test-key-0123456789abcdef";

fn spec(mode: Mode) -> IncidentSpec {
    serde_json::from_value(json!({"title": "api down", "runbook": "look at pods"}))
        .map(|mut s: IncidentSpec| {
            s.mode = mode;
            s
        })
        .unwrap()
}

fn client(server: &ScriptedModel) -> MessagesClient {
    MessagesClient::new(ClientConfig {
        api_key: KEY.into(),
        base_url: server.base_url(),
        request_timeout: Duration::from_secs(30),
        retry: RetryPolicy {
            max_attempts: 3,
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
    _dir: tempfile::TempDir,
}

async fn run(steps: Vec<Step>, mode: Mode, tune: impl FnOnce(&mut AgentSettings)) -> Session {
    run_with(steps, mode, tune, Redactor::new(Vec::<String>::new())).await
}

async fn run_with(
    steps: Vec<Step>,
    mode: Mode,
    tune: impl FnOnce(&mut AgentSettings),
    redactor: Redactor,
) -> Session {
    let server = ScriptedModel::start(steps).await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = AgentSettings::new("claude-test");
    settings.command_timeout = Duration::from_secs(10);
    tune(&mut settings);
    let input = SessionInput {
        namespace: Some("shop".into()),
        name: "api-down".into(),
        spec: spec(mode),
        settings,
        audit_dir: dir.path().to_path_buf(),
        redactor,
        client: client(&server),
        cancel: None,
        work_dir: None,
        execution: None,
    };
    let result = run_session(input, &mut ()).await.unwrap();
    let records = read_jsonl(&result.jsonl_path).unwrap();
    let requests = server.requests().into_iter().map(|r| r.body).collect();
    Session {
        result,
        records,
        requests,
        _dir: dir,
    }
}

fn shell(id: &str, command: &str) -> (String, String, Value) {
    (id.into(), "shell".into(), json!({ "command": command }))
}

fn report_call(id: &str) -> Value {
    reply::tool_use(
        id,
        "report",
        json!({"summary": "pods crash on a bad config", "rootCause": "missing env var",
               "evidence": ["kubectl get pods: CrashLoopBackOff"], "confidence": "high", "resolved": false}),
    )
}

/// The tool_result blocks of the last user message of a request body.
fn tool_results(request: &Value) -> Vec<Value> {
    let messages = request["messages"].as_array().unwrap();
    let last = messages.last().unwrap();
    assert_eq!(last["role"], "user");
    last["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "tool_result")
        .cloned()
        .collect()
}

fn events<'a>(records: &'a [AuditRecord], kind: &str) -> Vec<&'a AuditEvent> {
    records
        .iter()
        .map(|r| &r.event)
        .filter(|e| e.kind() == kind)
        .collect()
}

#[tokio::test]
async fn shell_then_report_completes_with_a_full_audit() {
    let s = run(
        vec![
            Step::Reply(reply::tool_use(
                "t1",
                "shell",
                json!({"command": "echo hello; exit 3"}),
            )),
            Step::Reply(report_call("t2")),
        ],
        Mode::Investigate,
        |_| {},
    )
    .await;
    assert_eq!(s.result.outcome, Outcome::Reported);
    assert_eq!(
        s.result.report.as_ref().unwrap().summary,
        "pods crash on a bad config"
    );
    assert_eq!(s.result.usage.turns, 2);
    assert_eq!(s.result.usage.tool_calls, 1);

    // The model saw the command's output, exit code and timeout flag.
    let results = tool_results(&s.requests[1]);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["tool_use_id"], "t1");
    let text = results[0]["content"].as_str().unwrap();
    assert!(
        text.contains("exit_code: 3") && text.contains("timed_out: false"),
        "{text}"
    );
    assert!(text.contains("hello"), "{text}");
    assert_eq!(results[0]["is_error"], true);

    // The audit holds every step in order, and the final document exists with its hash.
    let kinds: Vec<_> = s.records.iter().map(|r| r.event.kind()).collect();
    assert_eq!(
        kinds,
        [
            "session_start",
            "model_request",
            "model_response",
            "tool_call",
            "model_request",
            "model_response",
            "report",
            "session_end"
        ]
    );
    match events(&s.records, "tool_call")[0] {
        AuditEvent::ToolCall {
            command, result, ..
        } => {
            assert_eq!(command, "echo hello; exit 3");
            assert_eq!(result["exitCode"], 3);
            assert_eq!(result["stdout"], "hello\n");
        }
        other => panic!("{other:?}"),
    }
    let audit = s.result.audit.as_ref().unwrap();
    let bytes = std::fs::read(&audit.path).unwrap();
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(doc["auditVersion"], 1);
    assert!(!s.result.status_entries.is_empty());
}

#[tokio::test]
async fn parallel_tool_uses_are_all_answered_in_order() {
    let s = run(
        vec![
            Step::Reply(reply::tool_uses(vec![
                shell("a", "echo first"),
                ("b".into(), "no_such_tool".into(), json!({})),
                ("c".into(), "shell".into(), json!({"cmd": "typo"})),
                shell("d", "echo fourth"),
            ])),
            Step::Reply(report_call("r")),
        ],
        Mode::Investigate,
        |_| {},
    )
    .await;
    assert_eq!(s.result.outcome, Outcome::Reported);
    let results = tool_results(&s.requests[1]);
    let ids: Vec<_> = results
        .iter()
        .map(|r| r["tool_use_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b", "c", "d"]);
    assert!(results[0]["content"].as_str().unwrap().contains("first"));
    assert_eq!(results[1]["is_error"], true);
    assert!(
        results[1]["content"]
            .as_str()
            .unwrap()
            .contains("unknown tool")
    );
    assert_eq!(results[2]["is_error"], true);
    assert!(
        results[2]["content"]
            .as_str()
            .unwrap()
            .contains("invalid input")
    );
    assert!(results[3]["content"].as_str().unwrap().contains("fourth"));
    assert_eq!(events(&s.records, "tool_error").len(), 2);
    assert_eq!(s.result.usage.tool_calls, 2);
}

#[tokio::test]
async fn investigate_mode_refuses_writes_before_they_run() {
    let marker = tempfile::tempdir().unwrap();
    let file = marker.path().join("touched");
    let cmd = format!("kubectl delete pod x; touch {}", file.display());
    let s = run(
        vec![
            Step::Reply(reply::tool_use("t1", "shell", json!({ "command": cmd }))),
            Step::Reply(report_call("t2")),
        ],
        Mode::Investigate,
        |_| {},
    )
    .await;
    let results = tool_results(&s.requests[1]);
    assert_eq!(results[0]["is_error"], true);
    assert!(
        results[0]["content"]
            .as_str()
            .unwrap()
            .contains("read-only")
    );
    assert!(!file.exists(), "a refused command must not run at all");
    assert_eq!(events(&s.records, "tool_error").len(), 1);
}

#[tokio::test]
async fn max_turns_ends_with_limit_reached() {
    let s = run(
        (0..5)
            .map(|i| {
                Step::Reply(reply::tool_use(
                    format!("t{i}"),
                    "shell",
                    json!({"command": "true"}),
                ))
            })
            .collect(),
        Mode::Investigate,
        |s| s.max_turns = 2,
    )
    .await;
    assert_eq!(s.result.outcome, Outcome::LimitReached);
    assert!(
        s.result
            .message
            .as_deref()
            .unwrap()
            .contains("max turns reached (2)")
    );
    assert_eq!(s.requests.len(), 2);
    assert!(s.result.audit.is_some());
}

#[tokio::test]
async fn token_budget_ends_with_limit_reached() {
    let big = reply::with_usage(
        reply::tool_use("t1", "shell", json!({"command": "true"})),
        4000,
        100,
        2000,
        500,
    );
    let s = run(
        vec![Step::Reply(big.clone()), Step::Reply(big)],
        Mode::Investigate,
        |s| s.token_budget = 5000,
    )
    .await;
    assert_eq!(s.result.outcome, Outcome::LimitReached);
    assert!(
        s.result
            .message
            .as_deref()
            .unwrap()
            .contains("token budget"),
        "{:?}",
        s.result.message
    );
    assert_eq!(s.result.usage.cache_read_tokens, 2000);
    assert_eq!(s.result.usage.cache_write_tokens, 500);
    assert_eq!(s.requests.len(), 1);
}

#[tokio::test]
async fn session_deadline_ends_a_slow_model_call() {
    let s = run(
        vec![Step::Delay(
            Duration::from_secs(20),
            Box::new(Step::Reply(report_call("r"))),
        )],
        Mode::Investigate,
        |s| s.session_timeout = Duration::from_secs(1),
    )
    .await;
    assert_eq!(s.result.outcome, Outcome::LimitReached);
    assert!(s.result.message.as_deref().unwrap().contains("deadline"));
    assert!(s.result.duration < Duration::from_secs(10));
}

#[tokio::test]
async fn command_timeout_is_capped_by_the_session_setting() {
    let s = run(
        vec![
            Step::Reply(reply::tool_use(
                "t1",
                "shell",
                json!({"command": "sleep 30", "timeout_seconds": 600}),
            )),
            Step::Reply(report_call("r")),
        ],
        Mode::Investigate,
        |s| s.command_timeout = Duration::from_secs(1),
    )
    .await;
    let text = tool_results(&s.requests[1])[0]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("timed_out: true"), "{text}");
    assert_eq!(s.result.outcome, Outcome::Reported);
}

#[tokio::test]
async fn max_tokens_reply_is_not_run_and_the_model_is_told() {
    let marker = tempfile::tempdir().unwrap();
    let file = marker.path().join("ran");
    let cut = reply::stop(
        reply::tool_use(
            "t1",
            "shell",
            json!({"command": format!("touch {}", file.display())}),
        ),
        "max_tokens",
    );
    let s = run(
        vec![Step::Reply(cut), Step::Reply(report_call("r"))],
        Mode::Investigate,
        |_| {},
    )
    .await;
    assert_eq!(s.result.outcome, Outcome::Reported);
    assert!(!file.exists(), "a tool call cut at max_tokens must not run");
    let results = tool_results(&s.requests[1]);
    assert_eq!(results[0]["is_error"], true);
    assert!(
        results[0]["content"]
            .as_str()
            .unwrap()
            .contains("max_tokens")
    );
}

#[tokio::test]
async fn refusal_ends_the_session() {
    let s = run(
        vec![Step::Reply(reply::stop(
            reply::text("I can't help with that."),
            "refusal",
        ))],
        Mode::Investigate,
        |_| {},
    )
    .await;
    assert_eq!(s.result.outcome, Outcome::Refused);
    assert!(s.result.report.is_none());
}

#[tokio::test]
async fn a_model_that_only_talks_is_nudged_then_stopped() {
    let talk = || Step::Reply(reply::text("I think it's DNS."));
    let s = run(
        vec![talk(), talk(), talk(), talk()],
        Mode::Investigate,
        |_| {},
    )
    .await;
    assert_eq!(s.result.outcome, Outcome::Error);
    assert!(
        s.result
            .message
            .as_deref()
            .unwrap()
            .contains("without a tool call")
    );
    // The nudge went back to the model.
    let last = s.requests[1]["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(last.to_string().contains("report tool"));
}

#[tokio::test]
async fn api_errors_end_the_session_with_the_reason_and_an_audit() {
    let s = run(
        vec![Step::Error {
            status: 400,
            error_type: "invalid_request_error".into(),
            message: "max_tokens: too large".into(),
            retry_after: None,
        }],
        Mode::Investigate,
        |_| {},
    )
    .await;
    assert_eq!(s.result.outcome, Outcome::Error);
    let message = s.result.message.unwrap();
    assert!(
        message.contains("invalid_request_error") && message.contains("too large"),
        "{message}"
    );
    assert_eq!(events(&s.records, "error").len(), 1);
    assert!(s.result.audit.is_some());
}

#[tokio::test]
async fn secrets_in_output_never_reach_the_model_or_the_disk() {
    let secret = "hunter2-very-secret-value";
    let s = run_with(
        vec![
            Step::Reply(reply::tool_use(
                "t1",
                "shell",
                json!({"command": format!("echo password is {secret}; echo 'Authorization: Bearer abc.def.ghi123456'")}),
            )),
            Step::Reply(report_call("r")),
        ],
        Mode::Investigate,
        |_| {},
        Redactor::new(vec![secret.to_string()]),
    )
    .await;
    // What the machine printed goes back redacted (the command itself is the model's own text).
    let sent = serde_json::to_string(&tool_results(&s.requests[1])).unwrap();
    assert!(!sent.contains(secret), "secret sent to the model: {sent}");
    assert!(sent.contains("REDACTED"));
    assert!(
        !sent.contains("abc.def.ghi123456"),
        "bearer token sent to the model"
    );
    for path in [
        s.result.jsonl_path.clone(),
        s.result.audit.as_ref().unwrap().path.clone(),
    ] {
        let text = std::fs::read_to_string(Path::new(&path)).unwrap();
        assert!(
            !text.contains(secret),
            "secret on disk in {}",
            path.display()
        );
    }
}

#[tokio::test]
async fn requests_carry_cache_breakpoints_on_tools_system_and_latest_turn() {
    let s = run(
        vec![
            Step::Reply(reply::tool_use("t1", "shell", json!({"command": "true"}))),
            Step::Reply(report_call("r")),
        ],
        Mode::Investigate,
        |_| {},
    )
    .await;
    let second = &s.requests[1];
    let tools = second["tools"].as_array().unwrap();
    assert!(tools.last().unwrap()["cache_control"].is_object());
    assert!(second["system"].as_array().unwrap().last().unwrap()["cache_control"].is_object());
    let last_msg = second["messages"].as_array().unwrap().last().unwrap();
    assert!(last_msg["content"].as_array().unwrap().last().unwrap()["cache_control"].is_object());
    let breakpoints = second.to_string().matches("\"cache_control\"").count();
    assert!(breakpoints <= 4, "{breakpoints} breakpoints");
}

/// Issue 9 §1: the report, the message and everything written from them (status patch,
/// termination message, `investigate` output) leave the session through the redactor.
#[tokio::test]
async fn a_report_that_echoes_secrets_leaves_every_exit_redacted() {
    let env_secret = "env-secret-value-42";
    let leaky = json!({
        "summary": format!("the key is {KEY} and the db password {env_secret}"),
        "rootCause": "postgres://app:pw-in-url-9@db:5432/shop was refused",
        "evidence": [format!("ANTHROPIC_API_KEY={KEY}"), "DB_PASSWORD=hunter22 in the env"],
        "recommendations": [env_secret.to_uppercase()],
        "confidence": "high",
        "resolved": false
    });
    let s = run_with(
        vec![
            Step::Reply(reply::tool_use("t1", "shell", json!({"command": "true"}))),
            Step::Reply(reply::tool_use("r", "report", leaky)),
        ],
        Mode::Investigate,
        |_| {},
        Redactor::new(vec![KEY.to_string(), env_secret.to_string()]),
    )
    .await;
    assert_eq!(s.result.outcome, Outcome::Reported);
    let last_command = Redactor::default().seal_text("true");
    let exits = [
        ("report", serde_json::to_string(&s.result.report).unwrap()),
        (
            "final status patch",
            incident_operator::pod_agent::status::final_patch(&s.result, Some(&last_command))
                .to_string(),
        ),
        (
            "termination message",
            incident_operator::pod_agent::status::termination_message(&s.result),
        ),
        (
            "investigate --json",
            incident_operator::progress::result_json(&s.result).to_string(),
        ),
        (
            "investigate text",
            incident_operator::progress::result_text(&s.result),
        ),
    ];
    for (exit, text) in exits {
        for secret in [
            KEY,
            env_secret,
            &env_secret.to_uppercase(),
            "pw-in-url-9",
            "hunter22",
        ] {
            assert!(
                !text.contains(secret),
                "{secret} leaves through the {exit}: {text}"
            );
        }
        assert!(text.contains("[REDACTED:"), "{exit}: {text}");
    }
}

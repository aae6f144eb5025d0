//! What an agent session records: one [`AuditEvent`] per step of the tool-use loop.
//!
//! The loop builds these; [`super::writer::SessionAuditor`] wraps each in an envelope (sequence number,
//! time, session id), redacts it and appends it to the session's JSONL file. The JSON shape is the
//! documented audit schema (`docs/audit.md`): `event` names the variant in snake_case and every field is
//! camelCase, so changing a name here is a schema change.

use serde::{Deserialize, Serialize};

use crate::incident::{Mode, Outcome, Report, Severity, Usage};
use crate::plan::ApprovalRecord;

/// Most characters [`AuditEvent::short_detail`] returns.
pub const SHORT_DETAIL_MAX_CHARS: usize = 200;

/// One step of an agent session, as written to the audit log.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(
    tag = "event",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum AuditEvent {
    /// The session began. The session id itself is in the record envelope, not repeated here.
    SessionStart {
        incident: IncidentRef,
        model: String,
        mode: Mode,
        limits: SessionLimits,
        agent_version: String,
        /// Present in the execution session of an approved plan: what was approved, by whom, and
        /// which investigation proposed it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        execution: Option<Box<ExecutionStart>>,
    },
    /// A request to the Messages API is about to be sent.
    ModelRequest { turn: u32, message_count: usize },
    /// The model answered.
    ModelResponse {
        turn: u32,
        stop_reason: String,
        /// The text blocks of the answer, joined.
        text: String,
        tool_uses: Vec<ToolUseSummary>,
        /// This turn's tokens only; `turns` and `toolCalls` are 0.
        usage: Usage,
        /// Wall-clock time of the request, retries included.
        duration_ms: u64,
        /// HTTP attempts it took (1 when the first succeeded).
        attempts: u32,
    },
    /// A tool ran (whatever its exit code).
    ToolCall {
        turn: u32,
        tool_use_id: String,
        tool: String,
        command: String,
        timeout_seconds: u64,
        /// The shell outcome as JSON: `stdout`, `stderr`, `exitCode`, `signal`, `timedOut`,
        /// `durationMs` and truncation flags.
        result: serde_json::Value,
    },
    /// A tool could not run at all (bad input, refused by policy, spawn failure); the error went back to
    /// the model.
    ToolError {
        turn: u32,
        tool_use_id: String,
        tool: String,
        error: String,
    },
    /// The execution session refused a command before it ran: not the plan's next step, not the
    /// rollback the plan allows, and not read-only. The reason went back to the model.
    PlanViolation {
        turn: u32,
        tool_use_id: String,
        command: String,
        reason: String,
    },
    /// A plan step (or its rollback) ran; follows the step's `tool_call` (same `toolUseId`).
    PlanStep {
        turn: u32,
        tool_use_id: String,
        /// 1-based, as the plan numbers its steps for humans.
        step: u32,
        action: StepAction,
        command: String,
        /// None when the command was killed (timeout, signal) or the session was cancelled.
        exit_code: Option<i32>,
        /// Exit code 0 without a timeout: what lets the next step run.
        succeeded: bool,
    },
    /// Something went wrong outside a tool: the API, the configuration, the audit itself.
    Error {
        message: String,
        /// A short stable label, e.g. `api`, `config`, `timeout`.
        kind: String,
    },
    /// The model filed its report.
    Report { report: Report },
    /// The session ended; `usage` is the session total.
    SessionEnd {
        outcome: Outcome,
        message: Option<String>,
        usage: Usage,
        duration_ms: u64,
    },
}

/// The Incident a session investigates.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IncidentRef {
    /// None when the Incident came from a file (`investigate`), not the API server.
    pub namespace: Option<String>,
    pub name: String,
    pub title: String,
    pub severity: Severity,
    /// Earlier Incidents of the same alert that the brief recalled (`spec.predecessors`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recalled: Vec<String>,
}

/// What the execution session of an approved plan starts from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionStart {
    /// The plan's hash, recomputed by the agent and equal to the approved one.
    pub plan_hash: String,
    pub steps: u32,
    /// The approval the controller acted on (approver, object uid, time, hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRecord>,
    /// Audit session id of the investigation that proposed the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continues_session: Option<String>,
}

/// What a plan step execution was.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StepAction {
    Run,
    Rollback,
}

/// The limits a session ran under, after per-incident overrides.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SessionLimits {
    pub max_turns: u32,
    pub session_timeout_seconds: u64,
    pub command_timeout_seconds: u64,
    pub max_tokens: u64,
}

/// One `tool_use` block of a model response.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ToolUseSummary {
    pub id: String,
    pub name: String,
    /// The input exactly as the model sent it (after redaction).
    pub input: serde_json::Value,
}

impl AuditEvent {
    /// The `event` tag of this variant, e.g. `tool_call`.
    pub fn kind(&self) -> &'static str {
        match self {
            AuditEvent::SessionStart { .. } => "session_start",
            AuditEvent::ModelRequest { .. } => "model_request",
            AuditEvent::ModelResponse { .. } => "model_response",
            AuditEvent::ToolCall { .. } => "tool_call",
            AuditEvent::ToolError { .. } => "tool_error",
            AuditEvent::PlanViolation { .. } => "plan_violation",
            AuditEvent::PlanStep { .. } => "plan_step",
            AuditEvent::Error { .. } => "error",
            AuditEvent::Report { .. } => "report",
            AuditEvent::SessionEnd { .. } => "session_end",
        }
    }

    /// One line for humans (the Incident status, logs): the command, the stop reason, the error.
    /// Whitespace runs become one space; at most [`SHORT_DETAIL_MAX_CHARS`] characters.
    pub fn short_detail(&self) -> String {
        let detail = match self {
            AuditEvent::SessionStart {
                incident,
                model,
                mode,
                ..
            } => {
                let name = match &incident.namespace {
                    Some(ns) => format!("{ns}/{}", incident.name),
                    None => incident.name.clone(),
                };
                format!(
                    "{name} with {model} ({}): {}",
                    mode_label(*mode),
                    incident.title
                )
            }
            AuditEvent::ModelRequest {
                turn,
                message_count,
            } => format!("turn {turn}: {message_count} messages"),
            AuditEvent::ModelResponse {
                stop_reason,
                text,
                tool_uses,
                ..
            } => {
                if tool_uses.is_empty() {
                    format!("{stop_reason}: {text}")
                } else {
                    let names: Vec<&str> = tool_uses.iter().map(|t| t.name.as_str()).collect();
                    format!("{stop_reason}: {}", names.join(", "))
                }
            }
            AuditEvent::ToolCall { command, .. } => command.clone(),
            AuditEvent::ToolError { tool, error, .. } => format!("{tool}: {error}"),
            AuditEvent::PlanViolation {
                command, reason, ..
            } => format!("refused `{command}`: {reason}"),
            AuditEvent::PlanStep {
                step,
                action,
                command,
                exit_code,
                ..
            } => format!(
                "{} {step}: {command} → {}",
                match action {
                    StepAction::Run => "step",
                    StepAction::Rollback => "rollback of step",
                },
                exit_code.map_or_else(|| "no exit code".to_string(), |c| format!("exit {c}"))
            ),
            AuditEvent::Error { message, kind } => format!("{kind}: {message}"),
            AuditEvent::Report { report } => report.summary.clone(),
            AuditEvent::SessionEnd {
                outcome, message, ..
            } => match message {
                Some(message) => format!("{}: {message}", outcome_label(*outcome)),
                None => outcome_label(*outcome).to_string(),
            },
        };
        one_line(&detail, SHORT_DETAIL_MAX_CHARS)
    }

    /// Exit code, duration and timeout flag of a tool call's result (when present), for status entries.
    pub(crate) fn tool_result_facts(&self) -> (Option<i32>, Option<u64>, Option<bool>) {
        match self {
            AuditEvent::ToolCall { result, .. } => (
                result
                    .get("exitCode")
                    .and_then(serde_json::Value::as_i64)
                    .and_then(|code| i32::try_from(code).ok()),
                result.get("durationMs").and_then(serde_json::Value::as_u64),
                result.get("timedOut").and_then(serde_json::Value::as_bool),
            ),
            AuditEvent::ModelResponse { duration_ms, .. }
            | AuditEvent::SessionEnd { duration_ms, .. } => (None, Some(*duration_ms), None),
            _ => (None, None, None),
        }
    }
}

impl AuditEvent {
    /// Whether a tool call's stdout or stderr was cut to the capture limit (None for other events
    /// and results without the flags).
    pub(crate) fn tool_output_truncated(&self) -> Option<bool> {
        let AuditEvent::ToolCall { result, .. } = self else {
            return None;
        };
        let flag = |name: &str| result.get(name).and_then(serde_json::Value::as_bool);
        match (flag("stdoutTruncated"), flag("stderrTruncated")) {
            (None, None) => None,
            (out, err) => Some(out.unwrap_or(false) || err.unwrap_or(false)),
        }
    }
}

fn mode_label(mode: Mode) -> &'static str {
    match mode {
        Mode::Investigate => "investigate",
        Mode::Remediate => "remediate",
    }
}

fn outcome_label(outcome: Outcome) -> &'static str {
    outcome.as_str()
}

/// `text` on one line (whitespace runs collapsed), cut to `max_chars` characters with a trailing `…`.
pub(crate) fn one_line(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    let mut chars = 0;
    for word in text.split_whitespace() {
        let needed = word.chars().count() + usize::from(!out.is_empty());
        if chars + needed > max_chars {
            // Fill what room is left with the start of this word, keeping one char for the ellipsis.
            if !out.is_empty() && chars + 1 < max_chars {
                out.push(' ');
                chars += 1;
            }
            let room = max_chars.saturating_sub(chars + 1);
            out.extend(word.chars().take(room));
            out.push('…');
            return out;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        chars += needed;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::Confidence;
    use serde_json::json;

    fn tool_call(command: &str) -> AuditEvent {
        AuditEvent::ToolCall {
            turn: 2,
            tool_use_id: "toolu_01".into(),
            tool: "shell".into(),
            command: command.into(),
            timeout_seconds: 30,
            result: json!({"stdout": "ok\n", "stderr": "", "exitCode": 3, "signal": null,
                           "timedOut": false, "durationMs": 41}),
        }
    }

    #[test]
    fn events_serialize_with_snake_case_tag_and_camel_case_fields() {
        let value = serde_json::to_value(tool_call("kubectl get pods")).unwrap();
        assert_eq!(value["event"], "tool_call");
        assert_eq!(value["toolUseId"], "toolu_01");
        assert_eq!(value["timeoutSeconds"], 30);
        assert_eq!(value["result"]["exitCode"], 3);

        let end = AuditEvent::SessionEnd {
            outcome: Outcome::LimitReached,
            message: Some("max turns".into()),
            usage: Usage::default(),
            duration_ms: 5,
        };
        let value = serde_json::to_value(&end).unwrap();
        assert_eq!(value["event"], "session_end");
        assert_eq!(value["outcome"], "limit_reached");
        assert_eq!(value["durationMs"], 5);
        assert_eq!(value["usage"]["inputTokens"], 0);
    }

    #[test]
    fn every_variant_round_trips_and_kind_matches_the_tag() {
        let events = vec![
            AuditEvent::SessionStart {
                incident: IncidentRef {
                    namespace: Some("shop".into()),
                    name: "checkout-5xx".into(),
                    title: "checkout 5xx".into(),
                    severity: Severity::Critical,
                    recalled: Vec::new(),
                },
                model: "claude-sonnet-4-5".into(),
                mode: Mode::Investigate,
                limits: SessionLimits {
                    max_turns: 20,
                    session_timeout_seconds: 900,
                    command_timeout_seconds: 60,
                    max_tokens: 500_000,
                },
                agent_version: "0.1.0".into(),
                execution: None,
            },
            AuditEvent::ModelRequest {
                turn: 1,
                message_count: 1,
            },
            AuditEvent::ModelResponse {
                turn: 1,
                stop_reason: "tool_use".into(),
                text: "Let me look.".into(),
                tool_uses: vec![ToolUseSummary {
                    id: "toolu_01".into(),
                    name: "shell".into(),
                    input: json!({"command": "kubectl get pods"}),
                }],
                usage: Usage {
                    input_tokens: 10,
                    output_tokens: 5,
                    ..Usage::default()
                },
                duration_ms: 800,
                attempts: 1,
            },
            tool_call("kubectl get pods"),
            AuditEvent::ToolError {
                turn: 1,
                tool_use_id: "toolu_02".into(),
                tool: "shell".into(),
                error: "missing field `command`".into(),
            },
            AuditEvent::Error {
                message: "HTTP 529".into(),
                kind: "api".into(),
            },
            AuditEvent::Report {
                report: Report {
                    summary: "OOM".into(),
                    confidence: Confidence::High,
                    ..Report::default()
                },
            },
            AuditEvent::SessionEnd {
                outcome: Outcome::Reported,
                message: None,
                usage: Usage::default(),
                duration_ms: 1234,
            },
        ];
        for event in events {
            let value = serde_json::to_value(&event).unwrap();
            assert_eq!(value["event"], event.kind());
            let back: AuditEvent = serde_json::from_value(value).unwrap();
            assert_eq!(back, event);
        }
    }

    #[test]
    fn tool_output_truncated_reads_both_flags() {
        let with = |result: serde_json::Value| AuditEvent::ToolCall {
            turn: 1,
            tool_use_id: "t".into(),
            tool: "shell".into(),
            command: "ls".into(),
            timeout_seconds: 1,
            result,
        };
        assert_eq!(
            with(json!({"stdoutTruncated": false, "stderrTruncated": true}))
                .tool_output_truncated(),
            Some(true)
        );
        assert_eq!(
            with(json!({"stdoutTruncated": false})).tool_output_truncated(),
            Some(false)
        );
        assert_eq!(with(json!({"exitCode": 0})).tool_output_truncated(), None);
        assert_eq!(tool_call("x").tool_output_truncated(), None);
    }

    #[test]
    fn unknown_event_is_rejected() {
        let err =
            serde_json::from_value::<AuditEvent>(json!({"event": "launch_missiles"})).unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
    }

    #[test]
    fn short_detail_is_one_bounded_line() {
        let long = format!("kubectl logs deploy/api\n  --tail=50 {}", "x".repeat(500));
        let detail = tool_call(&long).short_detail();
        assert!(
            detail.starts_with("kubectl logs deploy/api --tail=50 x"),
            "{detail}"
        );
        assert!(!detail.contains('\n'));
        assert_eq!(detail.chars().count(), SHORT_DETAIL_MAX_CHARS);
        assert!(detail.ends_with('…'));

        let err = AuditEvent::Error {
            message: "connection reset".into(),
            kind: "api".into(),
        };
        assert_eq!(err.short_detail(), "api: connection reset");
    }

    #[test]
    fn one_line_keeps_short_text_and_cuts_multibyte_text_on_char_boundaries() {
        assert_eq!(one_line("  a \t b\n", 10), "a b");
        assert_eq!(one_line("", 10), "");
        let cut = one_line(&"é".repeat(50), 10);
        assert_eq!(cut.chars().count(), 10);
        assert_eq!(one_line("abcdef ghijkl", 10), "abcdef gh…");
    }

    #[test]
    fn tool_result_facts_come_from_the_result_json() {
        assert_eq!(
            tool_call("true").tool_result_facts(),
            (Some(3), Some(41), Some(false))
        );
        let odd = AuditEvent::ToolCall {
            turn: 1,
            tool_use_id: "t".into(),
            tool: "shell".into(),
            command: "x".into(),
            timeout_seconds: 1,
            result: json!({"exitCode": "not a number", "durationMs": -1}),
        };
        assert_eq!(odd.tool_result_facts(), (None, None, None));
    }
}

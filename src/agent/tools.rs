//! The model's two tools: `shell` (run one command) and `report` (file the findings and end the
//! session). Definitions are sent to the model; inputs coming back are parsed into [`ToolRequest`]
//! here, so nothing the model sends is trusted before it has been checked.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::anthropic::wire::ToolDefinition;
use crate::incident::Report;
use crate::plan::{MAX_PLAN_STEPS, MAX_PLAN_TEXT_CHARS, MAX_STEP_COMMAND_CHARS};

pub const SHELL_TOOL: &str = "shell";
pub const REPORT_TOOL: &str = "report";

/// Longest command line accepted; a longer one is almost surely a model error (or a pasted file).
const MAX_COMMAND_BYTES: usize = 16 * 1024;

/// A tool call the loop can act on.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolRequest {
    Shell {
        command: String,
        /// The model's timeout, already capped by the session's command timeout.
        timeout: Duration,
    },
    Report(Box<Report>),
}

/// Why a tool call was not accepted; goes back to the model as an `is_error` tool result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolInputError {
    #[error("unknown tool `{0}`: the tools are `shell` and `report`")]
    UnknownTool(String),
    #[error("invalid input for `{tool}`: {reason}")]
    Invalid { tool: &'static str, reason: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShellInput {
    command: String,
    #[serde(default)]
    timeout_seconds: Option<f64>,
}

/// The tool definitions offered to the model.
pub fn definitions(max_command_timeout: Duration) -> Vec<ToolDefinition> {
    vec![
        ToolDefinition {
            name: SHELL_TOOL.into(),
            description: format!(
                "Run one shell command (`sh -c`) in the investigation pod and get its exit code, \
                 stdout and stderr. Long output is cut to its head and tail. The command is killed \
                 after timeout_seconds (default and maximum {} s). No stdin, no TTY: never run \
                 interactive programs or `-f`/`--watch` without a bound.",
                max_command_timeout.as_secs()
            ),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "The command line, e.g. `kubectl get pods -n shop -o wide`."},
                    "timeout_seconds": {"type": "number", "minimum": 1, "maximum": max_command_timeout.as_secs(), "description": "Kill the command after this many seconds."}
                },
                "required": ["command"],
                "additionalProperties": false
            }),
            cache_control: None,
        },
        ToolDefinition {
            name: REPORT_TOOL.into(),
            description:
                "File the investigation report. This ends the session: call it once, when \
                          you are done, with evidence that cites the commands you ran."
                    .into(),
            input_schema: report_schema(),
            cache_control: None,
        },
    ]
}

/// JSON schema of the `report` tool's input, written out to match [`Report`]'s serde form.
fn report_schema() -> Value {
    let list = |what: &str| json!({"type": "array", "items": {"type": "string"}, "maxItems": 50, "description": what});
    json!({
        "type": "object",
        "properties": {
            "summary": {"type": "string", "description": "Two or three sentences an on-call engineer reads first."},
            "rootCause": {"type": "string", "description": "The most likely root cause, or what is still unknown."},
            "evidence": list("Facts supporting the conclusion, each citing the command it came from."),
            "actionsTaken": list("Leave empty: in an execution session it is filled from the audit of what ran."),
            "recommendations": list("What a human should do next, most important first."),
            "plan": plan_schema(),
            "confidence": {"type": "string", "enum": ["low", "medium", "high"]},
            "resolved": {"type": "boolean", "description": "Whether the problem is over."}
        },
        "required": ["summary", "confidence", "resolved"],
        "additionalProperties": false
    })
}

/// JSON schema of the report's `plan`, written out to match [`crate::plan::Plan`] and bounded as
/// its constants say.
fn plan_schema() -> Value {
    let text = |what: &str| json!({"type": "string", "minLength": 1, "maxLength": MAX_PLAN_TEXT_CHARS, "description": what});
    json!({
        "type": "object",
        "description": "Remediate mode, proposal only: the remediation for a human to approve. Nothing in it runs until approved; then each command runs verbatim, in order.",
        "properties": {
            "steps": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_PLAN_STEPS,
                "items": {
                    "type": "object",
                    "properties": {
                        "command": {"type": "string", "minLength": 1, "maxLength": MAX_STEP_COMMAND_CHARS,
                                    "description": "The exact command: one plain command, no `;`, `&&`, pipes, `$(...)`, variables or redirections."},
                        "purpose": text("Why this step."),
                        "expectedEffect": text("What changes when it succeeds."),
                        "verify": text("A read-only command that shows the effect."),
                        "rollback": {"type": "string", "maxLength": MAX_STEP_COMMAND_CHARS, "description": "The command that undoes the step; omit when it cannot be undone."},
                        "rollbackOnFailure": {"type": "boolean", "description": "Run `rollback` when this step fails or its effect is not the expected one."}
                    },
                    "required": ["command", "purpose", "expectedEffect", "verify"],
                    "additionalProperties": false
                }
            },
            "risk": {"type": "string", "enum": ["low", "medium", "high"]},
            "riskDetail": {"type": "string", "maxLength": MAX_PLAN_TEXT_CHARS, "description": "Blast radius, what could go wrong."}
        },
        "required": ["steps", "risk"],
        "additionalProperties": false
    })
}

/// Parses one `tool_use` block's name and input.
pub fn parse(
    name: &str,
    input: &Value,
    max_command_timeout: Duration,
) -> Result<ToolRequest, ToolInputError> {
    match name {
        SHELL_TOOL => parse_shell(input, max_command_timeout),
        REPORT_TOOL => parse_report(input),
        other => Err(ToolInputError::UnknownTool(shorten(other, 64))),
    }
}

fn parse_shell(input: &Value, max: Duration) -> Result<ToolRequest, ToolInputError> {
    let invalid = |reason: String| ToolInputError::Invalid {
        tool: SHELL_TOOL,
        reason,
    };
    let parsed = ShellInput::deserialize(input).map_err(|e| invalid(e.to_string()))?;
    let command = parsed.command.trim();
    if command.is_empty() {
        return Err(invalid("`command` is empty".into()));
    }
    if command.len() > MAX_COMMAND_BYTES {
        return Err(invalid(format!(
            "`command` is {} bytes; the limit is {MAX_COMMAND_BYTES}",
            command.len()
        )));
    }
    let timeout = match parsed.timeout_seconds {
        None => max,
        Some(secs) if secs.is_finite() && secs > 0.0 => Duration::from_secs_f64(secs).min(max),
        Some(secs) => {
            return Err(invalid(format!(
                "`timeout_seconds` must be a positive number, got {secs}"
            )));
        }
    };
    Ok(ToolRequest::Shell {
        command: command.to_string(),
        timeout,
    })
}

fn parse_report(input: &Value) -> Result<ToolRequest, ToolInputError> {
    let invalid = |reason: String| ToolInputError::Invalid {
        tool: REPORT_TOOL,
        reason,
    };
    let report = Report::deserialize(input).map_err(|e| invalid(e.to_string()))?;
    if report.summary.trim().is_empty() {
        return Err(invalid("`summary` is empty".into()));
    }
    for (field, items) in [
        ("evidence", &report.evidence),
        ("actionsTaken", &report.actions_taken),
        ("recommendations", &report.recommendations),
    ] {
        if items.len() > 50 {
            return Err(invalid(format!(
                "`{field}` has {} items; at most 50",
                items.len()
            )));
        }
    }
    Ok(ToolRequest::Report(Box::new(report)))
}

fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::Confidence;
    use crate::plan::{Plan, PlanStep};

    const MAX: Duration = Duration::from_secs(120);

    #[test]
    fn shell_timeout_is_capped_and_defaulted() {
        let req = parse(
            SHELL_TOOL,
            &json!({"command": "ls", "timeout_seconds": 999}),
            MAX,
        )
        .unwrap();
        assert_eq!(
            req,
            ToolRequest::Shell {
                command: "ls".into(),
                timeout: MAX
            }
        );
        let req = parse(
            SHELL_TOOL,
            &json!({"command": "ls", "timeout_seconds": 5}),
            MAX,
        )
        .unwrap();
        assert_eq!(
            req,
            ToolRequest::Shell {
                command: "ls".into(),
                timeout: Duration::from_secs(5)
            }
        );
        let req = parse(SHELL_TOOL, &json!({"command": "ls"}), MAX).unwrap();
        assert_eq!(
            req,
            ToolRequest::Shell {
                command: "ls".into(),
                timeout: MAX
            }
        );
    }

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        for input in [
            json!({}),
            json!({"command": 42}),
            json!({"command": "  "}),
            json!({"command": "ls", "timeout_seconds": -1}),
            json!({"command": "ls", "extra": true}),
            json!("ls"),
            json!(null),
        ] {
            let err = parse(SHELL_TOOL, &input, MAX).unwrap_err();
            assert!(
                matches!(err, ToolInputError::Invalid { .. }),
                "{input}: {err}"
            );
        }
        assert!(matches!(
            parse("rm_rf", &json!({}), MAX),
            Err(ToolInputError::UnknownTool(_))
        ));
    }

    #[test]
    fn report_parses_and_validates() {
        let ok = json!({"summary": "db down", "confidence": "high", "resolved": false,
                        "evidence": ["kubectl get pods: CrashLoopBackOff"]});
        match parse(REPORT_TOOL, &ok, MAX).unwrap() {
            ToolRequest::Report(r) => {
                assert_eq!(r.confidence, Confidence::High);
                assert_eq!(r.evidence.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            json!({"summary": "x", "confidence": "sure", "resolved": false}),
            json!({"summary": "", "confidence": "low", "resolved": false}),
            json!({"confidence": "low", "resolved": false}),
        ] {
            assert!(parse(REPORT_TOOL, &bad, MAX).is_err(), "{bad}");
        }
    }

    #[test]
    fn report_schema_matches_report_fields() {
        let schema = report_schema();
        let sample = serde_json::to_value(Report {
            summary: "s".into(),
            root_cause: Some("r".into()),
            evidence: vec!["e".into()],
            actions_taken: vec!["a".into()],
            recommendations: vec!["c".into()],
            confidence: Confidence::Low,
            resolved: true,
            plan: Some(Plan {
                steps: vec![PlanStep {
                    command: "c".into(),
                    purpose: "p".into(),
                    expected_effect: "e".into(),
                    verify: "v".into(),
                    rollback: Some("r".into()),
                    rollback_on_failure: true,
                }],
                risk: crate::plan::Risk::Low,
                risk_detail: Some("d".into()),
            }),
        })
        .unwrap();
        let same_keys = |schema: &Value, sample: &Value, what: &str| {
            let props = schema["properties"].as_object().unwrap();
            let keys = sample.as_object().unwrap();
            for key in keys.keys() {
                assert!(props.contains_key(key), "{what} schema lacks {key}");
            }
            assert_eq!(props.len(), keys.len(), "{what}");
        };
        same_keys(&schema, &sample, "report");
        let plan = &schema["properties"]["plan"];
        same_keys(plan, &sample["plan"], "plan");
        same_keys(
            &plan["properties"]["steps"]["items"],
            &sample["plan"]["steps"][0],
            "step",
        );
        assert_eq!(plan["properties"]["steps"]["maxItems"], MAX_PLAN_STEPS);
        assert_eq!(
            plan["properties"]["steps"]["items"]["properties"]["command"]["maxLength"],
            MAX_STEP_COMMAND_CHARS
        );
        // The schema's enum is the serde form of Risk.
        for risk in plan["properties"]["risk"]["enum"].as_array().unwrap() {
            serde_json::from_value::<crate::plan::Risk>(risk.clone()).unwrap();
        }
    }

    #[test]
    fn a_report_with_a_plan_parses() {
        let input = json!({"summary": "bad release", "confidence": "high", "resolved": false,
            "plan": {"risk": "low", "steps": [{"command": "kubectl -n shop rollout undo deploy/web",
                "purpose": "undo", "expectedEffect": "old image", "verify": "kubectl -n shop rollout status deploy/web"}]}});
        match parse(REPORT_TOOL, &input, MAX).unwrap() {
            ToolRequest::Report(r) => assert_eq!(r.plan.unwrap().steps.len(), 1),
            other => panic!("{other:?}"),
        }
        let bad = json!({"summary": "x", "confidence": "high", "resolved": false,
            "plan": {"risk": "extreme", "steps": []}});
        assert!(parse(REPORT_TOOL, &bad, MAX).is_err());
    }
}

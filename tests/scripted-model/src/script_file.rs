//! The JSON form of a script, read by the `scripted-model` binary.
//!
//! A script file is a JSON array of steps:
//! ```json
//! [
//!   {"reply": {"content": [{"type": "tool_use", "id": "toolu_1", "name": "shell", "input": {"command": "kubectl get pods"}}]}},
//!   {"error": {"status": 429, "error_type": "rate_limit_error", "message": "slow down", "retry_after": "1"}},
//!   {"raw_body": {"status": 502, "content_type": "text/html", "body": "<html>Bad Gateway</html>"}},
//!   "close_connection",
//!   {"delay": {"ms": 500, "then": {"reply": {"content": [{"type": "text", "text": "done"}]}}}},
//!   {"with_headers": {"headers": {"retry-after-ms": "250"}, "then": {"error": {"status": 529, "error_type": "overloaded_error", "message": "Overloaded"}}}}
//! ]
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::step::Step;

/// One step as written in a script file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum StepSpec {
    Reply(Value),
    Error {
        status: u16,
        error_type: String,
        message: String,
        #[serde(default)]
        retry_after: Option<String>,
    },
    RawBody {
        status: u16,
        content_type: String,
        body: String,
    },
    CloseConnection,
    Delay {
        ms: u64,
        then: Box<StepSpec>,
    },
    WithHeaders {
        headers: BTreeMap<String, String>,
        then: Box<StepSpec>,
    },
}

impl From<StepSpec> for Step {
    fn from(spec: StepSpec) -> Step {
        match spec {
            StepSpec::Reply(reply) => Step::Reply(reply),
            StepSpec::Error {
                status,
                error_type,
                message,
                retry_after,
            } => Step::Error {
                status,
                error_type,
                message,
                retry_after,
            },
            StepSpec::RawBody {
                status,
                content_type,
                body,
            } => Step::RawBody {
                status,
                content_type,
                body,
            },
            StepSpec::CloseConnection => Step::CloseConnection,
            StepSpec::Delay { ms, then } => {
                Step::Delay(Duration::from_millis(ms), Box::new(Step::from(*then)))
            }
            StepSpec::WithHeaders { headers, then } => {
                Step::WithHeaders(headers.into_iter().collect(), Box::new(Step::from(*then)))
            }
        }
    }
}

/// Parses a script file's text into steps.
pub fn parse_script(text: &str) -> Result<Vec<Step>, serde_json::Error> {
    let specs: Vec<StepSpec> = serde_json::from_str(text)?;
    Ok(specs.into_iter().map(Step::from).collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_every_step_kind() {
        let text = r#"[
            {"reply": {"content": [{"type": "text", "text": "hi"}]}},
            {"error": {"status": 429, "error_type": "rate_limit_error", "message": "slow", "retry_after": "1"}},
            {"raw_body": {"status": 502, "content_type": "text/html", "body": "<html/>"}},
            "close_connection",
            {"delay": {"ms": 5, "then": "close_connection"}},
            {"with_headers": {"headers": {"retry-after-ms": "250"}, "then": "close_connection"}}
        ]"#;
        let steps = parse_script(text).expect("valid script");
        assert_eq!(
            steps,
            vec![
                Step::Reply(json!({"content": [{"type": "text", "text": "hi"}]})),
                Step::rate_limited("1").clone_with_message("slow"),
                Step::RawBody {
                    status: 502,
                    content_type: "text/html".into(),
                    body: "<html/>".into()
                },
                Step::CloseConnection,
                Step::CloseConnection.after(Duration::from_millis(5)),
                Step::CloseConnection.with_header("retry-after-ms", "250"),
            ]
        );
    }

    #[test]
    fn rejects_unknown_step_kinds() {
        let error = parse_script(r#"[{"explode": {}}]"#).unwrap_err();
        assert!(
            error.to_string().contains("unknown variant `explode`"),
            "{error}"
        );
    }

    impl Step {
        fn clone_with_message(self, new_message: &str) -> Step {
            match self {
                Step::Error {
                    status,
                    error_type,
                    retry_after,
                    ..
                } => Step::Error {
                    status,
                    error_type,
                    message: new_message.to_owned(),
                    retry_after,
                },
                other => other,
            }
        }
    }
}

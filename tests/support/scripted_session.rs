//! What the agent-loop tests share: the production Messages API client pointed at a scripted
//! model on loopback (fast retries), and reading the tool results the model was sent back.

use std::time::Duration;

use incident_operator::anthropic::{ClientConfig, MessagesClient, RetryPolicy};
use scripted_model::ScriptedModel;
use serde_json::Value;

/// The test API key; the redactor of each session hides it like the real one.
pub const KEY: &str = "sk-ant-test-key-0123456789abcdef";

/// The real client against `server`, with retries short enough for tests.
pub fn client(server: &ScriptedModel) -> MessagesClient {
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

/// The tool_result blocks of the last user message of a request body.
pub fn tool_results(request: &Value) -> Vec<Value> {
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

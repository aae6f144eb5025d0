//! The checks the real Messages API makes before it looks at a request, reduced to the ones that catch
//! client and agent-loop bugs: route, auth headers, required fields, block types, `tool_use`/`tool_result`
//! pairing and the four-breakpoint cache limit. Messages copy the real API's wording so a test failure
//! reads like the production failure would.

use std::collections::BTreeSet;

use serde_json::Value;

/// The path the Messages API serves.
pub const MESSAGES_PATH: &str = "/v1/messages";

/// The most `cache_control` breakpoints one request may carry.
pub const MAX_CACHE_BREAKPOINTS: usize = 4;

/// Content block types the real API accepts in a request; anything else is a client bug.
const REQUEST_BLOCK_TYPES: &[&str] = &[
    "text",
    "image",
    "document",
    "search_result",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "container_upload",
];

/// Why the server refused a request: the status and Anthropic error it answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub error_type: &'static str,
    pub message: String,
}

impl Rejection {
    fn invalid(message: impl Into<String>) -> Rejection {
        Rejection {
            status: 400,
            error_type: "invalid_request_error",
            message: message.into(),
        }
    }
}

/// Checks method, path and the two headers every Messages API call needs.
pub fn check_route(
    method: &str,
    path: &str,
    header: impl Fn(&str) -> Option<String>,
) -> Result<(), Rejection> {
    if method != "POST" || path != MESSAGES_PATH {
        return Err(Rejection {
            status: 404,
            error_type: "not_found_error",
            message: "Not Found".to_owned(),
        });
    }
    if header("x-api-key").is_none_or(|key| key.is_empty()) {
        return Err(Rejection {
            status: 401,
            error_type: "authentication_error",
            message: "x-api-key header is required".to_owned(),
        });
    }
    if header("anthropic-version").is_none_or(|version| version.is_empty()) {
        return Err(Rejection::invalid("anthropic-version: header is required"));
    }
    Ok(())
}

/// Checks the JSON body of a `POST /v1/messages`.
pub fn check_body(body: &Value) -> Result<(), Rejection> {
    let Some(request) = body.as_object() else {
        return Err(Rejection::invalid("The request body is not valid JSON."));
    };
    if !request.get("model").is_some_and(Value::is_string) {
        return Err(Rejection::invalid("model: Field required"));
    }
    match request.get("max_tokens").map(Value::as_u64) {
        None => return Err(Rejection::invalid("max_tokens: Field required")),
        Some(Some(n)) if n >= 1 => {}
        Some(_) => {
            return Err(Rejection::invalid(
                "max_tokens: Input should be greater than or equal to 1",
            ));
        }
    }
    let Some(messages) = request.get("messages") else {
        return Err(Rejection::invalid("messages: Field required"));
    };
    let Some(messages) = messages.as_array() else {
        return Err(Rejection::invalid("messages: Input should be a valid list"));
    };
    for (index, message) in messages.iter().enumerate() {
        check_message(index, message, index + 1 == messages.len())?;
    }
    check_tool_pairing(messages)?;
    let breakpoints = count_cache_breakpoints(body);
    if breakpoints > MAX_CACHE_BREAKPOINTS {
        return Err(Rejection::invalid(format!(
            "A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. Found {breakpoints}."
        )));
    }
    Ok(())
}

fn check_message(index: usize, message: &Value, is_last: bool) -> Result<(), Rejection> {
    let role = message.get("role").and_then(Value::as_str);
    if !matches!(role, Some("user" | "assistant")) {
        return Err(Rejection::invalid(format!(
            "messages.{index}.role: Input should be 'user' or 'assistant'"
        )));
    }
    let blocks = match message.get("content") {
        Some(Value::String(text)) if text.is_empty() && !(is_last && role == Some("assistant")) => {
            return Err(non_empty_content());
        }
        Some(Value::String(_)) => return Ok(()),
        Some(Value::Array(blocks)) => blocks,
        _ => {
            return Err(Rejection::invalid(format!(
                "messages.{index}.content: Field required"
            )));
        }
    };
    if blocks.is_empty() && !(is_last && role == Some("assistant")) {
        return Err(non_empty_content());
    }
    for (block_index, block) in blocks.iter().enumerate() {
        let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
        if !REQUEST_BLOCK_TYPES.contains(&kind) {
            return Err(Rejection::invalid(format!(
                "messages.{index}.content.{block_index}.type: Input tag '{kind}' found using 'type' does not match any of the expected tags"
            )));
        }
        if kind == "text"
            && block
                .get("text")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            return Err(Rejection::invalid(
                "messages: text content blocks must be non-empty",
            ));
        }
    }
    Ok(())
}

fn non_empty_content() -> Rejection {
    Rejection::invalid(
        "messages: all messages must have non-empty content except for the optional final assistant message",
    )
}

/// Every `tool_use` of an assistant message needs a `tool_result` with its id at the start of the very
/// next user message, and every `tool_result` needs a `tool_use` in the message right before it.
fn check_tool_pairing(messages: &[Value]) -> Result<(), Rejection> {
    for (index, message) in messages.iter().enumerate() {
        let previous_tool_uses = match index.checked_sub(1).map(|previous| &messages[previous]) {
            Some(previous) if previous["role"] == "assistant" => {
                block_ids(previous, "tool_use", "id")
            }
            _ => BTreeSet::new(),
        };
        if message["role"] == "user" {
            for (block_index, block) in blocks(message).iter().enumerate() {
                if block["type"] != "tool_result" {
                    continue;
                }
                let id = block["tool_use_id"].as_str().unwrap_or("");
                if !previous_tool_uses.contains(id) {
                    return Err(Rejection::invalid(format!(
                        "messages.{index}.content.{block_index}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                    )));
                }
            }
        }
        if message["role"] == "assistant" {
            let tool_uses = block_ids(message, "tool_use", "id");
            if tool_uses.is_empty() {
                continue;
            }
            let answered = messages
                .get(index + 1)
                .filter(|next| next["role"] == "user")
                .map(leading_tool_result_ids)
                .unwrap_or_default();
            let missing: Vec<&str> = tool_uses.difference(&answered).copied().collect();
            if !missing.is_empty() {
                return Err(Rejection::invalid(format!(
                    "messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
                    missing.join(", ")
                )));
            }
        }
    }
    Ok(())
}

/// Ids of the `tool_result` blocks at the start of a message: the API requires tool results to come
/// before any other block, and counts a result after text as missing.
fn leading_tool_result_ids(message: &Value) -> BTreeSet<&str> {
    blocks(message)
        .iter()
        .take_while(|block| block["type"] == "tool_result")
        .filter_map(|block| block["tool_use_id"].as_str())
        .collect()
}

fn blocks(message: &Value) -> &[Value] {
    message["content"].as_array().map_or(&[], Vec::as_slice)
}

fn block_ids<'a>(message: &'a Value, kind: &str, id_field: &str) -> BTreeSet<&'a str> {
    blocks(message)
        .iter()
        .filter(|block| block["type"] == kind)
        .filter_map(|block| block[id_field].as_str())
        .collect()
}

/// Counts `cache_control` markers on tools, system blocks and message content blocks.
pub fn count_cache_breakpoints(body: &Value) -> usize {
    let marked = |items: &Value| {
        items.as_array().map_or(0, |items| {
            items
                .iter()
                .filter(|item| item.get("cache_control").is_some_and(|c| !c.is_null()))
                .count()
        })
    };
    let in_messages: usize = body["messages"].as_array().map_or(0, |messages| {
        messages
            .iter()
            .map(|message| marked(&message["content"]))
            .sum()
    });
    marked(&body["tools"]) + marked(&body["system"]) + in_messages
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(messages: Value) -> Value {
        json!({"model": "m", "max_tokens": 10, "messages": messages})
    }

    #[test]
    fn accepts_answered_tool_use() {
        let body = request(json!([
            {"role": "user", "content": "why is the pod crashing?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "shell", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]},
        ]));
        assert_eq!(check_body(&body), Ok(()));
    }

    #[test]
    fn rejects_unanswered_tool_use_like_the_real_api() {
        let body = request(json!([
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "t1", "name": "shell", "input": {}},
                {"type": "tool_use", "id": "t2", "name": "shell", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]},
        ]));
        let rejection = check_body(&body).unwrap_err();
        assert_eq!(rejection.status, 400);
        assert!(
            rejection
                .message
                .starts_with("messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: t2."),
            "{}",
            rejection.message
        );
    }

    #[test]
    fn tool_results_must_come_before_text() {
        let body = request(json!([
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "shell", "input": {}}]},
            {"role": "user", "content": [
                {"type": "text", "text": "here you go"},
                {"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]},
        ]));
        let rejection = check_body(&body).unwrap_err();
        assert!(
            rejection.message.contains("immediately after: t1."),
            "{}",
            rejection.message
        );
    }

    #[test]
    fn rejects_tool_result_without_tool_use() {
        let body = request(json!([
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "ghost", "content": "x"}]},
        ]));
        let rejection = check_body(&body).unwrap_err();
        assert!(
            rejection.message.contains("unexpected `tool_use_id`"),
            "{}",
            rejection.message
        );
    }

    #[test]
    fn rejects_missing_fields_and_unknown_blocks() {
        assert_eq!(
            check_body(&json!({"max_tokens": 1, "messages": []}))
                .unwrap_err()
                .message,
            "model: Field required"
        );
        assert_eq!(
            check_body(&json!({"model": "m", "messages": []}))
                .unwrap_err()
                .message,
            "max_tokens: Field required"
        );
        assert_eq!(
            check_body(&json!({"model": "m", "max_tokens": 1}))
                .unwrap_err()
                .message,
            "messages: Field required"
        );
        let unknown = request(json!([{"role": "user", "content": [{"type": "unsupported"}]}]));
        assert!(
            check_body(&unknown)
                .unwrap_err()
                .message
                .contains("'unsupported'")
        );
        let empty_text =
            request(json!([{"role": "user", "content": [{"type": "text", "text": ""}]}]));
        assert!(
            check_body(&empty_text)
                .unwrap_err()
                .message
                .contains("non-empty")
        );
    }

    #[test]
    fn rejects_a_fifth_cache_breakpoint() {
        let marked = json!({"type": "ephemeral"});
        let mut body = request(json!([{"role": "user", "content": [
            {"type": "text", "text": "a", "cache_control": marked},
            {"type": "text", "text": "b", "cache_control": marked},
            {"type": "text", "text": "c", "cache_control": marked},
            {"type": "text", "text": "d", "cache_control": marked}]}]));
        assert_eq!(check_body(&body), Ok(()));
        body["system"] = json!([{"type": "text", "text": "s", "cache_control": marked}]);
        assert_eq!(
            check_body(&body).unwrap_err().message,
            "A maximum of 4 blocks with cache_control may be provided. Found 5."
        );
    }

    #[test]
    fn route_needs_post_path_and_headers() {
        let all = |name: &str| Some(format!("value of {name}"));
        assert_eq!(check_route("POST", "/v1/messages", all), Ok(()));
        assert_eq!(
            check_route("GET", "/v1/messages", all).unwrap_err().status,
            404
        );
        assert_eq!(
            check_route("POST", "/v1/complete", all).unwrap_err().status,
            404
        );
        let no_key = |name: &str| (name != "x-api-key").then(|| "v".to_owned());
        assert_eq!(
            check_route("POST", "/v1/messages", no_key)
                .unwrap_err()
                .status,
            401
        );
        let no_version = |name: &str| (name != "anthropic-version").then(|| "v".to_owned());
        assert_eq!(
            check_route("POST", "/v1/messages", no_version)
                .unwrap_err()
                .message,
            "anthropic-version: header is required"
        );
    }
}

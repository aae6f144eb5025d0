//! Builders for `MessagesResponse` JSON, the body of a [`crate::Step::Reply`].
//!
//! They leave `id`, `model` and `usage` out unless asked: the server fills those from the request it
//! answers (usage is an estimate of four bytes per token), so scripts stay short.

use serde_json::{Value, json};

/// An assistant turn with one text block, stopping with `end_turn`.
pub fn text(text: impl Into<String>) -> Value {
    message(
        vec![json!({"type": "text", "text": text.into()})],
        "end_turn",
    )
}

/// An assistant turn with one `tool_use` block, stopping with `tool_use`.
pub fn tool_use(id: impl Into<String>, name: impl Into<String>, input: Value) -> Value {
    tool_uses(vec![(id.into(), name.into(), input)])
}

/// An assistant turn with several parallel `tool_use` blocks `(id, name, input)`, stopping with `tool_use`.
pub fn tool_uses<I, N>(calls: impl IntoIterator<Item = (I, N, Value)>) -> Value
where
    I: Into<String>,
    N: Into<String>,
{
    let blocks = calls
        .into_iter()
        .map(|(id, name, input)| {
            json!({"type": "tool_use", "id": id.into(), "name": name.into(), "input": input})
        })
        .collect();
    message(blocks, "tool_use")
}

/// Sets `usage`, including the prompt-cache counters.
pub fn with_usage(
    mut reply: Value,
    input_tokens: u64,
    output_tokens: u64,
    cache_read_input_tokens: u64,
    cache_creation_input_tokens: u64,
) -> Value {
    reply["usage"] = json!({
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_input_tokens": cache_read_input_tokens,
        "cache_creation_input_tokens": cache_creation_input_tokens,
    });
    reply
}

/// Sets `stop_reason` (e.g. `"max_tokens"`, `"refusal"`, `"pause_turn"`).
pub fn stop(mut reply: Value, reason: &str) -> Value {
    reply["stop_reason"] = Value::String(reason.to_owned());
    reply
}

/// Puts a text block before the existing content ("Let me look at the pods." then a tool call).
pub fn with_leading_text(reply: Value, text: impl Into<String>) -> Value {
    with_block_at(reply, 0, json!({"type": "text", "text": text.into()}))
}

/// Appends any content block, e.g. a `thinking` or `server_tool_use` block the client must skip.
pub fn with_block(reply: Value, block: Value) -> Value {
    let end = reply["content"].as_array().map_or(0, Vec::len);
    with_block_at(reply, end, block)
}

fn with_block_at(mut reply: Value, index: usize, block: Value) -> Value {
    match reply.get_mut("content").and_then(Value::as_array_mut) {
        Some(blocks) => blocks.insert(index.min(blocks.len()), block),
        None => reply["content"] = Value::Array(vec![block]),
    }
    reply
}

fn message(content: Vec<Value>, stop_reason: &str) -> Value {
    json!({
        "type": "message",
        "role": "assistant",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
    })
}

//! The request and response bodies of the Anthropic Messages API (`POST /v1/messages`), as serde types
//! that match <https://docs.anthropic.com/en/api/messages> field for field.
//!
//! Only what the agent loop uses is modelled; everything else the API may send (thinking blocks,
//! server-tool blocks, citations, service tiers) is either ignored or decoded as
//! [`ContentBlock::Unsupported`], which is never serialized back (see [`Message`]).

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

/// The body of `POST /v1/messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesRequest {
    /// Model name, e.g. [`super::DEFAULT_MODEL`].
    pub model: String,
    /// Upper bound on the tokens the model may generate in this turn.
    pub max_tokens: u32,
    /// System prompt as blocks, so it can carry a cache breakpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<SystemBlock>,
    /// The conversation so far, alternating user and assistant turns.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDefinition>,
    /// `{"type":"auto"}`, `{"type":"any"}`, `{"type":"tool","name":..}` or `{"type":"none"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
}

/// The one kind of system block: text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SystemBlockKind {
    /// `"text"`.
    #[default]
    Text,
}

/// One block of the system prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemBlock {
    /// Always `"text"`; see [`SystemBlock::text`].
    #[serde(rename = "type")]
    pub kind: SystemBlockKind,
    /// The prompt text.
    pub text: String,
    /// Prompt-cache breakpoint; set by [`super::apply_cache_breakpoints`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
}

impl SystemBlock {
    /// A text system block without a cache breakpoint.
    pub fn text(text: impl Into<String>) -> Self {
        SystemBlock {
            kind: SystemBlockKind::Text,
            text: text.into(),
            cache_control: None,
        }
    }
}

/// A prompt-cache breakpoint: the prefix up to and including the marked block is cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheControl {
    /// `"ephemeral"`, the only kind the API has (five-minute lifetime by default).
    #[serde(rename = "type")]
    pub kind: String,
}

impl CacheControl {
    /// The default five-minute cache.
    pub fn ephemeral() -> Self {
        CacheControl {
            kind: "ephemeral".to_owned(),
        }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    /// Name the model uses in `tool_use` blocks.
    pub name: String,
    /// What the tool does and when to use it; the model reads this.
    pub description: String,
    /// JSON Schema of the tool's input object.
    pub input_schema: Value,
    /// Prompt-cache breakpoint; set by [`super::apply_cache_breakpoints`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
}

/// Who speaks a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The caller: prompts and tool results.
    User,
    /// The model: text and tool calls.
    Assistant,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// The blocks of the turn. [`ContentBlock::Unsupported`] blocks are left out when serializing: the
    /// API would reject them, and nothing we do depends on echoing them.
    #[serde(serialize_with = "serialize_supported_blocks")]
    pub content: Vec<ContentBlock>,
}

fn serialize_supported_blocks<S: Serializer>(
    blocks: &[ContentBlock],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(
        blocks
            .iter()
            .filter(|block| !matches!(block, ContentBlock::Unsupported)),
    )
}

/// One block of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Plain text, from either side.
    Text {
        /// The text.
        text: String,
        /// Prompt-cache breakpoint; set by [`super::apply_cache_breakpoints`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    /// The model asks to call a tool.
    ToolUse {
        /// Id the matching [`ContentBlock::ToolResult`] must repeat.
        id: String,
        /// Tool name.
        name: String,
        /// Tool input, as the model wrote it: validate before use.
        input: Value,
    },
    /// The outcome of a tool call, sent back in the next user message.
    ToolResult {
        /// The [`ContentBlock::ToolUse`] id this answers.
        tool_use_id: String,
        /// What the tool produced (or why it failed).
        content: String,
        /// Tells the model the call failed.
        #[serde(default, skip_serializing_if = "is_false")]
        is_error: bool,
        /// Prompt-cache breakpoint; set by [`super::apply_cache_breakpoints`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    /// Any block type this client does not model (thinking, server tools, …): kept out of the loop's
    /// way and never re-sent.
    #[serde(other)]
    Unsupported,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl ContentBlock {
    /// A text block without a cache breakpoint.
    pub fn text(text: impl Into<String>) -> Self {
        ContentBlock::Text {
            text: text.into(),
            cache_control: None,
        }
    }

    /// The answer to a tool call.
    pub fn tool_result(
        tool_use_id: impl Into<String>,
        content: impl Into<String>,
        is_error: bool,
    ) -> Self {
        ContentBlock::ToolResult {
            tool_use_id: tool_use_id.into(),
            content: content.into(),
            is_error,
            cache_control: None,
        }
    }

    /// The block's breakpoint slot, if its type can carry one in this client.
    pub(crate) fn cache_control_mut(&mut self) -> Option<&mut Option<CacheControl>> {
        match self {
            ContentBlock::Text { cache_control, .. }
            | ContentBlock::ToolResult { cache_control, .. } => Some(cache_control),
            ContentBlock::ToolUse { .. } | ContentBlock::Unsupported => None,
        }
    }
}

/// Why the model stopped generating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// It finished its turn.
    EndTurn,
    /// It hit `max_tokens`.
    MaxTokens,
    /// It produced one of the stop sequences.
    StopSequence,
    /// It wants tool results.
    ToolUse,
    /// A long server-tool turn was paused; send the response back to continue.
    PauseTurn,
    /// It declined to continue.
    Refusal,
    /// The conversation no longer fits the model's context window.
    ModelContextWindowExceeded,
    /// A stop reason newer than this client.
    #[serde(other)]
    Other,
}

/// Token counts of one call, the basis of cost accounting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ApiUsage {
    /// Uncached input tokens (after the last cache breakpoint).
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Input tokens written to the prompt cache by this call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the prompt cache by this call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
}

/// The body of a successful `POST /v1/messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesResponse {
    /// Message id, `msg_…`.
    pub id: String,
    /// The model that answered.
    pub model: String,
    /// Always [`Role::Assistant`].
    pub role: Role,
    /// What the model produced.
    pub content: Vec<ContentBlock>,
    /// Why it stopped; `None` only in streaming, which this client does not use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<StopReason>,
    /// Token counts.
    pub usage: ApiUsage,
}

/// The body of an API error: `{"type":"error","error":{"type":..,"message":..}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// What went wrong.
    pub error: ApiErrorDetail,
}

/// The `error` object of an API error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorDetail {
    /// E.g. `invalid_request_error`, `rate_limit_error`, `overloaded_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Human-readable explanation.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn request_serializes_like_the_api_documents() {
        let request = MessagesRequest {
            model: "claude-sonnet-4-6".into(),
            max_tokens: 1024,
            system: vec![SystemBlock::text("You are an SRE.")],
            messages: vec![
                Message {
                    role: Role::User,
                    content: vec![ContentBlock::text("Why is checkout down?")],
                },
                Message {
                    role: Role::Assistant,
                    content: vec![ContentBlock::ToolUse {
                        id: "toolu_1".into(),
                        name: "shell".into(),
                        input: json!({"command": "kubectl get pods"}),
                    }],
                },
                Message {
                    role: Role::User,
                    content: vec![
                        ContentBlock::tool_result("toolu_1", "checkout-1 CrashLoopBackOff", false),
                        ContentBlock::tool_result("toolu_2", "exit 1", true),
                    ],
                },
            ],
            tools: vec![],
            tool_choice: None,
        };
        assert_eq!(
            serde_json::to_value(&request).expect("serializable"),
            json!({
                "model": "claude-sonnet-4-6",
                "max_tokens": 1024,
                "system": [{"type": "text", "text": "You are an SRE."}],
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "Why is checkout down?"}]},
                    {"role": "assistant", "content": [
                        {"type": "tool_use", "id": "toolu_1", "name": "shell", "input": {"command": "kubectl get pods"}}]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "checkout-1 CrashLoopBackOff"},
                        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "exit 1", "is_error": true}]},
                ]
            })
        );
    }

    #[test]
    fn response_with_unknown_blocks_and_stop_reason_decodes() {
        let response: MessagesResponse = serde_json::from_value(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Looking.", "citations": null},
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
            ],
            "stop_reason": "something_new", "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 5, "service_tier": "standard"}
        }))
        .expect("decodes");
        assert_eq!(
            response.content,
            vec![
                ContentBlock::Unsupported,
                ContentBlock::text("Looking."),
                ContentBlock::Unsupported
            ]
        );
        assert_eq!(response.stop_reason, Some(StopReason::Other));
        assert_eq!(response.usage.cache_read_input_tokens, None);
    }

    #[test]
    fn unsupported_blocks_are_never_sent_back() {
        let message = Message {
            role: Role::Assistant,
            content: vec![ContentBlock::Unsupported, ContentBlock::text("kept")],
        };
        assert_eq!(
            serde_json::to_value(&message).expect("serializable"),
            json!({"role": "assistant", "content": [{"type": "text", "text": "kept"}]})
        );
    }

    #[test]
    fn stop_reasons_use_the_api_names() {
        for (reason, name) in [
            (StopReason::EndTurn, "end_turn"),
            (StopReason::MaxTokens, "max_tokens"),
            (StopReason::StopSequence, "stop_sequence"),
            (StopReason::ToolUse, "tool_use"),
            (StopReason::PauseTurn, "pause_turn"),
            (StopReason::Refusal, "refusal"),
            (
                StopReason::ModelContextWindowExceeded,
                "model_context_window_exceeded",
            ),
        ] {
            assert_eq!(
                serde_json::to_value(reason).expect("serializable"),
                json!(name)
            );
            assert_eq!(
                serde_json::from_value::<StopReason>(json!(name)).expect("decodes"),
                reason
            );
        }
    }
}

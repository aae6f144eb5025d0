//! Prompt-cache breakpoints for a [`MessagesRequest`].
//!
//! The API caches the prompt prefix up to each block marked with `cache_control`, allows at most four
//! marks per request, and on a later call looks for a cached prefix at each mark and at the ~20 block
//! boundaries before it. An agent loop resends the same tools, system prompt and history every turn,
//! adding one assistant and one user message, so marking the end of each stable part makes every call
//! after the first read almost its whole prompt from cache (a tenth of the input price).

use super::wire::{CacheControl, ContentBlock, Message, MessagesRequest};

/// Puts cache_control breakpoints on the last tool definition, the last system block, and the last
/// content block of the last message (removing older per-message breakpoints so there are never more
/// than 4, the API's limit). Why: tools+system are stable across turns; the latest turn makes the next
/// call read the whole prefix from cache.
///
/// The fourth breakpoint goes on the message two before the last, which is where the previous call of
/// a tool loop put its last-message breakpoint: that prefix is certainly cached, and marking it
/// explicitly keeps the cache hit even when one turn adds more blocks (many parallel tool results)
/// than the API's ~20-block lookback covers. Blocks that cannot carry a mark here (`tool_use`,
/// unsupported) are skipped in favour of the nearest earlier block of the same message.
///
/// Idempotent: applying it twice gives the same request.
pub fn apply_cache_breakpoints(request: &mut MessagesRequest) {
    mark_only_last(request.tools.iter_mut().map(|tool| &mut tool.cache_control));
    mark_only_last(
        request
            .system
            .iter_mut()
            .map(|block| &mut block.cache_control),
    );

    for message in &mut request.messages {
        for block in &mut message.content {
            if let Some(cache_control) = block.cache_control_mut() {
                *cache_control = None;
            }
        }
    }
    let count = request.messages.len();
    if let Some(last) = count.checked_sub(1) {
        mark_last_cacheable_block(&mut request.messages[last]);
    }
    if let Some(previous_turn_end) = count.checked_sub(3) {
        mark_last_cacheable_block(&mut request.messages[previous_turn_end]);
    }
}

/// Clears every slot but the last, which gets an ephemeral breakpoint.
fn mark_only_last<'a>(slots: impl DoubleEndedIterator<Item = &'a mut Option<CacheControl>>) {
    let mut from_last = slots.rev();
    if let Some(last) = from_last.next() {
        *last = Some(CacheControl::ephemeral());
    }
    for earlier in from_last {
        *earlier = None;
    }
}

fn mark_last_cacheable_block(message: &mut Message) {
    if let Some(slot) = message
        .content
        .iter_mut()
        .rev()
        .find_map(ContentBlock::cache_control_mut)
    {
        *slot = Some(CacheControl::ephemeral());
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::anthropic::wire::{Role, SystemBlock, ToolDefinition};

    fn tool(name: &str) -> ToolDefinition {
        ToolDefinition {
            name: name.into(),
            description: format!("{name} tool"),
            input_schema: json!({"type": "object"}),
            cache_control: None,
        }
    }

    fn tool_use(id: &str) -> ContentBlock {
        ContentBlock::ToolUse {
            id: id.into(),
            name: "shell".into(),
            input: json!({"command": "true"}),
        }
    }

    /// A tool loop after `turns` tool calls: user prompt, then (assistant tool_use, user tool_result)*.
    fn conversation(turns: usize) -> MessagesRequest {
        let mut messages = vec![Message {
            role: Role::User,
            content: vec![ContentBlock::text("investigate")],
        }];
        for turn in 0..turns {
            let id = format!("toolu_{turn}");
            messages.push(Message {
                role: Role::Assistant,
                content: vec![ContentBlock::text("checking"), tool_use(&id)],
            });
            messages.push(Message {
                role: Role::User,
                content: vec![ContentBlock::tool_result(&id, "output", false)],
            });
        }
        MessagesRequest {
            model: "m".into(),
            max_tokens: 100,
            system: vec![SystemBlock::text("rules"), SystemBlock::text("incident")],
            messages,
            tools: vec![tool("shell"), tool("report")],
            tool_choice: None,
        }
    }

    fn marked(block: &ContentBlock) -> bool {
        let mut block = block.clone();
        block.cache_control_mut().is_some_and(|slot| slot.is_some())
    }

    fn breakpoints(request: &MessagesRequest) -> usize {
        let in_tools = request
            .tools
            .iter()
            .filter(|t| t.cache_control.is_some())
            .count();
        let in_system = request
            .system
            .iter()
            .filter(|s| s.cache_control.is_some())
            .count();
        let in_messages = request
            .messages
            .iter()
            .flat_map(|m| &m.content)
            .filter(|b| marked(b))
            .count();
        in_tools + in_system + in_messages
    }

    #[test]
    fn marks_last_tool_last_system_block_and_last_message() {
        let mut request = conversation(0);
        apply_cache_breakpoints(&mut request);
        assert_eq!(request.tools[0].cache_control, None);
        assert_eq!(
            request.tools[1].cache_control,
            Some(CacheControl::ephemeral())
        );
        assert_eq!(request.system[0].cache_control, None);
        assert_eq!(
            request.system[1].cache_control,
            Some(CacheControl::ephemeral())
        );
        assert!(marked(&request.messages[0].content[0]));
        assert_eq!(breakpoints(&request), 3);
    }

    #[test]
    fn never_more_than_four_across_a_long_loop_and_moves_with_the_turn() {
        let mut request = conversation(0);
        for turn in 0..30 {
            apply_cache_breakpoints(&mut request);
            assert!(
                breakpoints(&request) <= 4,
                "turn {turn}: {} breakpoints",
                breakpoints(&request)
            );
            let last = request.messages.len() - 1;
            assert!(marked(
                request.messages[last].content.last().expect("content")
            ));
            // The next turn appends to the already-marked request, as the agent loop does.
            let id = format!("toolu_{turn}");
            request.messages.push(Message {
                role: Role::Assistant,
                content: vec![tool_use(&id)],
            });
            request.messages.push(Message {
                role: Role::User,
                content: vec![ContentBlock::tool_result(&id, "out", false)],
            });
        }
        apply_cache_breakpoints(&mut request);
        let count = request.messages.len();
        let marked_messages: Vec<usize> = (0..count)
            .filter(|&index| request.messages[index].content.iter().any(marked))
            .collect();
        assert_eq!(marked_messages, vec![count - 3, count - 1]);
        assert_eq!(breakpoints(&request), 4);
    }

    #[test]
    fn skips_blocks_that_cannot_carry_a_mark() {
        let mut request = conversation(1);
        request.messages.push(Message {
            role: Role::Assistant,
            content: vec![
                ContentBlock::text("prefill"),
                tool_use("toolu_x"),
                ContentBlock::Unsupported,
            ],
        });
        apply_cache_breakpoints(&mut request);
        let last = request.messages.last().expect("messages");
        assert!(marked(&last.content[0]));
    }

    #[test]
    fn is_idempotent_and_handles_empty_requests() {
        let mut request = conversation(3);
        apply_cache_breakpoints(&mut request);
        let once = request.clone();
        apply_cache_breakpoints(&mut request);
        assert_eq!(request, once);

        let mut empty = MessagesRequest {
            model: "m".into(),
            max_tokens: 1,
            system: vec![],
            messages: vec![],
            tools: vec![],
            tool_choice: None,
        };
        apply_cache_breakpoints(&mut empty);
        assert_eq!(breakpoints(&empty), 0);
    }

    #[test]
    fn serialized_breakpoint_is_ephemeral() {
        let mut request = conversation(0);
        apply_cache_breakpoints(&mut request);
        let body = serde_json::to_value(&request).expect("serializable");
        assert_eq!(
            body["tools"][1]["cache_control"],
            json!({"type": "ephemeral"})
        );
        assert_eq!(
            body["system"][1]["cache_control"],
            json!({"type": "ephemeral"})
        );
        assert_eq!(
            body["messages"][0]["content"][0]["cache_control"],
            json!({"type": "ephemeral"})
        );
        assert!(body["tools"][0].get("cache_control").is_none());
    }
}

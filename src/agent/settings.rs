//! The limits and model choice of one agent session: defaults, command-line values, and the
//! Incident's `spec.agent` overrides, resolved once before the session starts.

use std::time::Duration;

use crate::budget::PriceTable;
use crate::incident::AgentOverrides;

/// Default most model turns per session.
pub const DEFAULT_MAX_TURNS: u32 = 30;
/// Default shell command timeout.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// Default wall-clock deadline of a session.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Default token budget of a session (every token processed: input, cache reads and writes, output).
pub const DEFAULT_TOKEN_BUDGET: u64 = 2_000_000;
/// Default `max_tokens` of one model reply: room for a long report, small enough to bound a turn.
pub const DEFAULT_MAX_RESPONSE_TOKENS: u32 = 8192;
/// Default bound of one tool result as the model sees it (the audit keeps the full capture).
pub const DEFAULT_TOOL_RESULT_MAX_BYTES: usize = 16 * 1024;
/// Default capture bound of one shell stream (stdout or stderr), kept in the audit.
pub const DEFAULT_SHELL_CAPTURE_BYTES: usize = 256 * 1024;

/// Everything that bounds one session.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentSettings {
    pub model: String,
    pub max_turns: u32,
    /// Most a single command may run; the model may ask for less, never more.
    pub command_timeout: Duration,
    pub session_timeout: Duration,
    pub token_budget: u64,
    pub max_response_tokens: u32,
    pub tool_result_max_bytes: usize,
    pub shell_capture_bytes: usize,
    /// Prices `status.usage.costUSD` (the defaults, or the operator's table handed to the pod).
    pub prices: PriceTable,
}

impl AgentSettings {
    /// Defaults with the given model.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            max_turns: DEFAULT_MAX_TURNS,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            session_timeout: DEFAULT_SESSION_TIMEOUT,
            token_budget: DEFAULT_TOKEN_BUDGET,
            max_response_tokens: DEFAULT_MAX_RESPONSE_TOKENS,
            tool_result_max_bytes: DEFAULT_TOOL_RESULT_MAX_BYTES,
            shell_capture_bytes: DEFAULT_SHELL_CAPTURE_BYTES,
            prices: PriceTable::default(),
        }
    }

    /// Applies an Incident's `spec.agent` overrides. The CRD schema bounds each value, so an
    /// Incident can tune a session but not buy an unbounded one.
    pub fn with_overrides(mut self, overrides: Option<&AgentOverrides>) -> Self {
        let Some(o) = overrides else { return self };
        if let Some(model) = &o.model {
            self.model = model.clone();
        }
        if let Some(turns) = o.max_turns {
            self.max_turns = turns;
        }
        if let Some(secs) = o.command_timeout_seconds {
            self.command_timeout = Duration::from_secs(secs.into());
        }
        if let Some(secs) = o.session_timeout_seconds {
            self.session_timeout = Duration::from_secs(secs.into());
        }
        if let Some(tokens) = o.max_tokens {
            self.token_budget = tokens;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_what_they_set() {
        let base = AgentSettings::new("m");
        let o = AgentOverrides {
            max_turns: Some(5),
            session_timeout_seconds: Some(60),
            ..Default::default()
        };
        let s = base.clone().with_overrides(Some(&o));
        assert_eq!(s.max_turns, 5);
        assert_eq!(s.session_timeout, Duration::from_secs(60));
        assert_eq!(s.command_timeout, base.command_timeout);
        assert_eq!(s.model, "m");
        assert_eq!(base.clone().with_overrides(None), base);
    }
}

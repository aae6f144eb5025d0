//! The agent: everything that happens inside an agent pod (or `investigate` on a laptop), with no
//! Kubernetes types in it.
//!
//! - [`settings`]: the session's model and limits, defaults plus the Incident's overrides.
//! - [`prompt`]: the system prompt and the incident brief.
//! - [`tools`]: the `shell` and `report` tool definitions and input parsing.
//! - [`policy`]: the read-only gate in front of `shell` (every session but a plan's execution).
//! - [`execution`]: a proposed plan's checks and the execution report's audited `actionsTaken`.
//! - [`tool_result`]: the bounded view of a command's output the model reads.
//! - [`session`]: the loop that ties them together and audits every step.

pub mod execution;
pub mod policy;
pub mod prompt;
pub mod session;
pub mod settings;
pub mod tool_result;
pub mod tools;

pub use session::{SessionInput, SessionObserver, SessionResult, run_session};
pub use settings::AgentSettings;

//! The Anthropic Messages API client the agent loop talks to Claude through.
//!
//! - [`wire`]: request and response bodies, exactly as the API documents them.
//! - [`cache`]: prompt-cache breakpoints that make each turn read the previous prompt from cache.
//! - [`client`]: the HTTP client (`POST /v1/messages`), configured from the environment.
//! - [`retry`]: the retry policy for rate limits, overload and broken connections.
//! - [`error`]: what can go wrong, and whether retrying helps.
//!
//! Nothing here knows about Kubernetes or tools; the loop builds [`MessagesRequest`]s and reads
//! [`MessagesResponse`]s.

pub mod cache;
pub mod client;
pub mod error;
pub mod retry;
pub mod wire;

pub use cache::apply_cache_breakpoints;
pub use client::{
    ANTHROPIC_VERSION, API_KEY_ENV, BASE_URL_ENV, ClientConfig, DEFAULT_BASE_URL, DEFAULT_MODEL,
    DEFAULT_REQUEST_TIMEOUT, MessagesClient, MessagesReply,
};
pub use error::ApiError;
pub use retry::RetryPolicy;
pub use wire::{
    ApiErrorBody, ApiErrorDetail, ApiUsage, CacheControl, ContentBlock, Message, MessagesRequest,
    MessagesResponse, Role, StopReason, SystemBlock, SystemBlockKind, ToolDefinition,
};

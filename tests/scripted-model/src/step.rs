//! What the scripted server does with one request: a [`Step`] of the script.

use std::time::Duration;

use serde_json::Value;

/// One scripted answer to one `POST /v1/messages`.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// 200 with this `MessagesResponse` JSON. `id`, `type`, `model`, `role`, `content`, `stop_reason`,
    /// `stop_sequence` and `usage` are filled in when absent (see [`crate::reply`]).
    Reply(Value),
    /// An Anthropic error body `{"type":"error","error":{"type":..,"message":..}}` with this status,
    /// and a `retry-after` header when `retry_after` is set.
    Error {
        status: u16,
        error_type: String,
        message: String,
        retry_after: Option<String>,
    },
    /// Any body with any content type, e.g. the HTML a proxy sends with a 502.
    RawBody {
        status: u16,
        content_type: String,
        body: String,
    },
    /// Drops the TCP connection without writing a single byte of response.
    CloseConnection,
    /// Waits, then does the inner step (a slow model, or a client timeout).
    Delay(Duration, Box<Step>),
    /// Does the inner step and adds these response headers (e.g. `retry-after-ms`, `x-should-retry`).
    WithHeaders(Vec<(String, String)>, Box<Step>),
}

impl Step {
    /// An Anthropic error with no `retry-after` header.
    pub fn error(status: u16, error_type: &str, message: &str) -> Step {
        Step::Error {
            status,
            error_type: error_type.to_owned(),
            message: message.to_owned(),
            retry_after: None,
        }
    }

    /// 429 `rate_limit_error` with the given `retry-after` header value.
    pub fn rate_limited(retry_after: &str) -> Step {
        Step::Error {
            status: 429,
            error_type: "rate_limit_error".to_owned(),
            message: "Number of request tokens has exceeded your per-minute rate limit".to_owned(),
            retry_after: Some(retry_after.to_owned()),
        }
    }

    /// 529 `overloaded_error`, what the API sends when it is out of capacity.
    pub fn overloaded() -> Step {
        Step::error(529, "overloaded_error", "Overloaded")
    }

    /// 500 `api_error`, an internal error of the API.
    pub fn internal_error() -> Step {
        Step::error(500, "api_error", "Internal server error")
    }

    /// Waits `delay`, then does `self`.
    pub fn after(self, delay: Duration) -> Step {
        Step::Delay(delay, Box::new(self))
    }

    /// Does `self` with one extra response header.
    pub fn with_header(self, name: &str, value: &str) -> Step {
        Step::WithHeaders(vec![(name.to_owned(), value.to_owned())], Box::new(self))
    }
}

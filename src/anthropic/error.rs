//! [`ApiError`]: every way a Messages API call can fail, and which of them are worth retrying.

use std::error::Error as _;
use std::time::Duration;

/// HTTP statuses the API documents as transient: request timeout, rate limit, internal errors,
/// gateway trouble and `overloaded_error` (529).
const RETRYABLE_STATUSES: &[u16] = &[408, 429, 500, 502, 503, 504, 529];

/// A failed Messages API call. Never contains the API key.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `ANTHROPIC_API_KEY` is missing or empty.
    #[error("ANTHROPIC_API_KEY is not set")]
    MissingApiKey,
    /// The key has characters an HTTP header cannot carry (a stray newline from a secret file, say).
    #[error("ANTHROPIC_API_KEY cannot be sent as an HTTP header: {reason}")]
    InvalidApiKey { reason: String },
    /// `ANTHROPIC_BASE_URL` (or the configured base URL) is unusable.
    #[error("invalid Anthropic base URL {url:?}: {reason}")]
    InvalidBaseUrl { url: String, reason: String },
    /// The API answered with an error status. `error_type` is the API's `error.type`
    /// (`invalid_request_error`, `rate_limit_error`, …) or, for a body that is not an API error (a
    /// proxy's HTML page), the status name such as `bad_gateway`.
    #[error("Messages API returned {status} {error_type}: {message}")]
    Http {
        status: u16,
        error_type: String,
        message: String,
        /// The `request-id` response header, what Anthropic support asks for.
        request_id: Option<String>,
    },
    /// A retryable failure persisted past the retry policy's attempts or time budget.
    #[error("gave up on the Messages API after {attempts} attempt(s); last error: {last}")]
    RetriesExhausted {
        attempts: u32,
        #[source]
        last: Box<ApiError>,
    },
    /// No connection could be made (refused, DNS, TLS handshake).
    #[error("cannot reach {url}: {}", cause_chain(source))]
    Connect {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The request took longer than the client's request timeout.
    #[error("request to {url} timed out after {timeout:?}")]
    Timeout {
        url: String,
        timeout: Duration,
        #[source]
        source: reqwest::Error,
    },
    /// The connection broke after it was made, before a response arrived (e.g. closed by the server).
    #[error(
        "request to {url} failed before a response arrived: {}",
        cause_chain(source)
    )]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The response started but its body could not be read to the end.
    #[error(
        "cannot read the body of a {status} response from {url}: {}",
        cause_chain(source)
    )]
    ReadBody {
        url: String,
        status: u16,
        #[source]
        source: reqwest::Error,
    },
    /// A success status whose body is not a Messages response.
    #[error(
        "Messages API returned {status} with a body that is not a Messages response ({reason}): {body_snippet}"
    )]
    Decode {
        status: u16,
        body_snippet: String,
        reason: String,
    },
    /// The request could not be serialized.
    #[error("cannot encode the Messages request as JSON: {0}")]
    Encode(#[source] serde_json::Error),
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot build the HTTP client: {}", cause_chain(.0))]
    ClientBuild(#[source] reqwest::Error),
}

impl ApiError {
    /// Whether trying the same request again may succeed: transient statuses (408, 429, 500, 502,
    /// 503, 504, 529), connection failures and timeouts.
    pub fn is_retryable(&self) -> bool {
        match self {
            ApiError::Http { status, .. } => RETRYABLE_STATUSES.contains(status),
            ApiError::Connect { .. }
            | ApiError::Timeout { .. }
            | ApiError::Transport { .. }
            | ApiError::ReadBody { .. } => true,
            ApiError::MissingApiKey
            | ApiError::InvalidApiKey { .. }
            | ApiError::InvalidBaseUrl { .. }
            | ApiError::RetriesExhausted { .. }
            | ApiError::Decode { .. }
            | ApiError::Encode(_)
            | ApiError::ClientBuild(_) => false,
        }
    }

    /// The HTTP status of the (last) error response, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Http { status, .. }
            | ApiError::ReadBody { status, .. }
            | ApiError::Decode { status, .. } => Some(*status),
            ApiError::RetriesExhausted { last, .. } => last.status(),
            _ => None,
        }
    }
}

/// The causes of a reqwest error joined with ": ", without reqwest's own top line, which repeats the
/// URL the variant already names ("error sending request for url (…)").
pub(crate) fn cause_chain(error: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut next = error.source();
    while let Some(cause) = next {
        causes.push(cause.to_string());
        next = cause.source();
    }
    if causes.is_empty() {
        error.to_string()
    } else {
        causes.join(": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16) -> ApiError {
        ApiError::Http {
            status,
            error_type: "x".into(),
            message: "m".into(),
            request_id: None,
        }
    }

    #[test]
    fn transient_statuses_are_retryable_and_client_errors_are_not() {
        for status in [408, 429, 500, 502, 503, 504, 529] {
            assert!(http(status).is_retryable(), "{status}");
        }
        for status in [400, 401, 403, 404, 413, 501] {
            assert!(!http(status).is_retryable(), "{status}");
        }
        let exhausted = ApiError::RetriesExhausted {
            attempts: 3,
            last: Box::new(http(529)),
        };
        assert!(!exhausted.is_retryable());
        assert_eq!(exhausted.status(), Some(529));
    }

    #[test]
    fn http_error_display_names_status_type_and_message() {
        let error = ApiError::Http {
            status: 400,
            error_type: "invalid_request_error".into(),
            message: "max_tokens: Field required".into(),
            request_id: Some("req_1".into()),
        };
        assert_eq!(
            error.to_string(),
            "Messages API returned 400 invalid_request_error: max_tokens: Field required"
        );
        assert_eq!(
            ApiError::MissingApiKey.to_string(),
            "ANTHROPIC_API_KEY is not set"
        );
    }
}

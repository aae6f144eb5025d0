//! [`MessagesClient`]: sends one `POST /v1/messages`, retrying transient failures per [`RetryPolicy`].
//!
//! TLS is rustls with the `ring` provider. reqwest's `rustls-no-provider` feature uses the process-wide
//! default provider, so [`MessagesClient::new`] installs ring as that default once; kube already uses
//! ring, and this keeps aws-lc (a large C build) out of the binary.

use std::fmt;
use std::sync::Once;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use reqwest::{StatusCode, Url};

use super::error::ApiError;
use super::retry::{self, RetryDecision, RetryPolicy};
use super::wire::{ApiErrorBody, MessagesRequest, MessagesResponse};

/// Where the Messages API lives.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The model used when nothing else is configured: a current Claude Sonnet.
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-6";
/// The `anthropic-version` header value this client's wire types follow.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Environment variable holding the API key.
pub const API_KEY_ENV: &str = "ANTHROPIC_API_KEY";
/// Environment variable overriding [`DEFAULT_BASE_URL`] (a gateway, or a scripted model in tests).
pub const BASE_URL_ENV: &str = "ANTHROPIC_BASE_URL";
/// Default per-attempt timeout: long generations at a high `max_tokens` take minutes.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// How long to wait for a TCP/TLS connection before counting the attempt as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest excerpt of an unexpected response body kept in an error.
const BODY_SNIPPET_CHARS: usize = 300;
const REQUEST_ID_HEADER: &str = "request-id";

/// How to reach the API. Its `Debug` output hides the key.
#[derive(Clone)]
pub struct ClientConfig {
    /// Secret API key, sent as `x-api-key`.
    pub api_key: String,
    /// Scheme, host and optional path prefix, e.g. [`DEFAULT_BASE_URL`]; `/v1/messages` is appended.
    pub base_url: String,
    /// Limit for one attempt, from connecting to the last byte of the response.
    pub request_timeout: Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
}

impl ClientConfig {
    /// A config with the defaults and this key.
    pub fn new(api_key: impl Into<String>) -> Self {
        ClientConfig {
            api_key: api_key.into(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            retry: RetryPolicy::default(),
        }
    }

    /// ANTHROPIC_API_KEY (required; clear error if missing/empty) and ANTHROPIC_BASE_URL (optional)
    pub fn from_env() -> Result<Self, ApiError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`ClientConfig::from_env`] reading variables through `lookup`, so callers and tests need not
    /// touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ApiError> {
        let api_key = lookup(API_KEY_ENV)
            .map(|key| key.trim().to_owned())
            .filter(|key| !key.is_empty())
            .ok_or(ApiError::MissingApiKey)?;
        let mut config = ClientConfig::new(api_key);
        if let Some(base_url) = lookup(BASE_URL_ENV).filter(|url| !url.trim().is_empty()) {
            config.base_url = base_url.trim().to_owned();
        }
        Ok(config)
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("api_key", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

/// A successful call and what it took.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagesReply {
    /// The model's answer.
    pub response: MessagesResponse,
    /// Attempts made, 1 when nothing was retried.
    pub attempts: u32,
    /// The `request-id` response header.
    pub request_id: Option<String>,
}

/// A Messages API client. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct MessagesClient {
    http: reqwest::Client,
    endpoint: Url,
    request_timeout: Duration,
    retry: RetryPolicy,
}

impl fmt::Debug for MessagesClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessagesClient")
            .field("endpoint", &self.endpoint.as_str())
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// One failed attempt, with what the response said about retrying it.
struct FailedAttempt {
    error: ApiError,
    retry_after: Option<Duration>,
    should_retry: Option<bool>,
}

impl From<ApiError> for FailedAttempt {
    fn from(error: ApiError) -> Self {
        FailedAttempt {
            error,
            retry_after: None,
            should_retry: None,
        }
    }
}

impl MessagesClient {
    /// Validates the config and builds the HTTP client (installing ring as rustls' default provider).
    pub fn new(config: ClientConfig) -> Result<Self, ApiError> {
        let endpoint = messages_endpoint(&config.base_url)?;
        install_ring_provider();

        let mut api_key =
            HeaderValue::from_str(&config.api_key).map_err(|_| ApiError::InvalidApiKey {
                reason: "it contains characters other than visible ASCII".to_owned(),
            })?;
        // Keeps the key out of any Debug output of the headers.
        api_key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(HeaderName::from_static("x-api-key"), api_key);
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("incident-operator/", env!("CARGO_PKG_VERSION"))),
        );

        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.request_timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(config.request_timeout))
            // A redirect could carry x-api-key to another host; the API never redirects.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(ApiError::ClientBuild)?;
        Ok(MessagesClient {
            http,
            endpoint,
            request_timeout: config.request_timeout,
            retry: config.retry,
        })
    }

    /// The full URL requests go to, `{base_url}/v1/messages`.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    /// POST {base_url}/v1/messages with x-api-key, anthropic-version, content-type. Retries per policy.
    pub async fn create_message(
        &self,
        request: &MessagesRequest,
    ) -> Result<MessagesReply, ApiError> {
        let body = serde_json::to_vec(request).map_err(ApiError::Encode)?;
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let failure = match self.attempt(body.clone()).await {
                Ok((response, request_id)) => {
                    tracing::debug!(
                        attempts,
                        request_id = request_id.as_deref(),
                        input_tokens = response.usage.input_tokens,
                        output_tokens = response.usage.output_tokens,
                        "Messages API call succeeded"
                    );
                    return Ok(MessagesReply {
                        response,
                        attempts,
                        request_id,
                    });
                }
                Err(failure) => failure,
            };
            let retryable = failure
                .should_retry
                .unwrap_or_else(|| failure.error.is_retryable());
            if !retryable {
                return Err(failure.error);
            }
            let jitter = rand::random::<f64>();
            match self
                .retry
                .decide(attempts, started.elapsed(), failure.retry_after, jitter)
            {
                RetryDecision::GiveUp => {
                    return Err(ApiError::RetriesExhausted {
                        attempts,
                        last: Box::new(failure.error),
                    });
                }
                RetryDecision::RetryAfter(delay) => {
                    tracing::warn!(
                        attempt = attempts,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        error = %failure.error,
                        "Messages API call failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// One POST and its classification.
    async fn attempt(
        &self,
        body: Vec<u8>,
    ) -> Result<(MessagesResponse, Option<String>), FailedAttempt> {
        let url = self.endpoint.as_str();
        let response = self
            .http
            .post(self.endpoint.clone())
            .body(body)
            .send()
            .await
            .map_err(|source| self.send_error(source))?;
        let status = response.status();
        let headers = response.headers().clone();
        let request_id = headers
            .get(REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let retry_after = retry::server_retry_hint(&headers, SystemTime::now());
        let should_retry = retry::server_retry_override(&headers);
        let bytes = response.bytes().await.map_err(|source| {
            let error = if source.is_timeout() {
                self.timeout_error(source)
            } else {
                ApiError::ReadBody {
                    url: url.to_owned(),
                    status: status.as_u16(),
                    source,
                }
            };
            FailedAttempt {
                error,
                retry_after,
                should_retry,
            }
        })?;

        if status.is_success() {
            return serde_json::from_slice::<MessagesResponse>(&bytes)
                .map(|response| (response, request_id))
                .map_err(|error| {
                    FailedAttempt::from(ApiError::Decode {
                        status: status.as_u16(),
                        body_snippet: snippet(&bytes),
                        reason: error.to_string(),
                    })
                });
        }
        Err(FailedAttempt {
            error: http_error(status, &headers, &bytes, request_id),
            retry_after,
            should_retry,
        })
    }

    fn send_error(&self, source: reqwest::Error) -> FailedAttempt {
        let url = self.endpoint.to_string();
        let error = if source.is_connect() {
            ApiError::Connect { url, source }
        } else if source.is_timeout() {
            self.timeout_error(source)
        } else {
            ApiError::Transport { url, source }
        };
        FailedAttempt::from(error)
    }

    fn timeout_error(&self, source: reqwest::Error) -> ApiError {
        ApiError::Timeout {
            url: self.endpoint.to_string(),
            timeout: self.request_timeout,
            source,
        }
    }
}

/// An error status as [`ApiError::Http`]: the API's own `error.type` and message when the body is an
/// API error, else the status name and an excerpt of whatever came back (a proxy's HTML page, say).
fn http_error(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    request_id: Option<String>,
) -> ApiError {
    match serde_json::from_slice::<ApiErrorBody>(body) {
        Ok(ApiErrorBody { error }) => ApiError::Http {
            status: status.as_u16(),
            error_type: error.kind,
            message: error.message,
            request_id,
        },
        Err(_) => {
            let content_type = headers
                .get(CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("no content type");
            let excerpt = snippet(body);
            let excerpt = if excerpt.is_empty() {
                "<empty body>".to_owned()
            } else {
                excerpt
            };
            ApiError::Http {
                status: status.as_u16(),
                error_type: status_name(status),
                message: format!(
                    "response is not a Messages API error ({content_type}): {excerpt}"
                ),
                request_id,
            }
        }
    }
}

/// `bad_gateway` for 502: the canonical reason in snake case, or `http_error` for unnamed statuses.
fn status_name(status: StatusCode) -> String {
    status
        .canonical_reason()
        .map(|reason| {
            reason
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .collect()
        })
        .unwrap_or_else(|| "http_error".to_owned())
}

/// The start of a body as one line of text, for error messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(BODY_SNIPPET_CHARS) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

/// `{base_url}/v1/messages`, keeping any path prefix a gateway needs.
fn messages_endpoint(base_url: &str) -> Result<Url, ApiError> {
    let invalid = |url: &str, reason: &str| ApiError::InvalidBaseUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let mut url =
        Url::parse(base_url.trim()).map_err(|error| invalid(base_url, &error.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        // Never echo credentials back into an error message or log.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        return Err(invalid(
            url.as_str(),
            "credentials in the URL would end up in logs; use ANTHROPIC_API_KEY",
        ));
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(base_url, "the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(base_url, "it has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(base_url, "it must not have a query or fragment"));
    }
    let path = format!("{}/v1/messages", url.path().trim_end_matches('/'));
    url.set_path(&path);
    Ok(url)
}

/// Makes ring the process-wide rustls provider, which reqwest's `rustls-no-provider` build requires
/// before a client is built. An already-installed provider (kube's, or the caller's) is kept.
fn install_ring_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_keeps_gateway_prefixes() {
        let endpoint = |base: &str| messages_endpoint(base).map(|url| url.to_string());
        assert_eq!(
            endpoint("https://api.anthropic.com").ok().as_deref(),
            Some("https://api.anthropic.com/v1/messages")
        );
        assert_eq!(
            endpoint("http://127.0.0.1:8080/").ok().as_deref(),
            Some("http://127.0.0.1:8080/v1/messages")
        );
        assert_eq!(
            endpoint("https://gateway.internal/anthropic/")
                .ok()
                .as_deref(),
            Some("https://gateway.internal/anthropic/v1/messages")
        );
    }

    #[test]
    fn bad_base_urls_are_refused_without_echoing_credentials() {
        for base in ["not a url", "ftp://example.com", "https://example.com/?x=1"] {
            assert!(
                matches!(
                    messages_endpoint(base),
                    Err(ApiError::InvalidBaseUrl { .. })
                ),
                "{base}"
            );
        }
        let error = messages_endpoint("https://user:hunter2@example.com").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn from_lookup_requires_a_non_empty_key() {
        assert!(matches!(
            ClientConfig::from_lookup(|_| None),
            Err(ApiError::MissingApiKey)
        ));
        assert!(matches!(
            ClientConfig::from_lookup(|_| Some("  ".to_owned())),
            Err(ApiError::MissingApiKey)
        ));
        let config = ClientConfig::from_lookup(|name| match name {
            API_KEY_ENV => Some("sk-ant-test\n".to_owned()),
            BASE_URL_ENV => Some("http://127.0.0.1:9".to_owned()),
            _ => None,
        })
        .expect("config");
        assert_eq!(config.api_key, "sk-ant-test");
        assert_eq!(config.base_url, "http://127.0.0.1:9");
        let defaults =
            ClientConfig::from_lookup(|name| (name == API_KEY_ENV).then(|| "k".to_owned()))
                .expect("config");
        assert_eq!(defaults.base_url, DEFAULT_BASE_URL);
        assert!(!format!("{config:?}").contains("sk-ant-test"));
    }

    #[test]
    fn builds_a_tls_client_for_the_real_api() {
        // reqwest panics at build time when no rustls provider is installed; this proves ours is.
        let client =
            MessagesClient::new(ClientConfig::new("sk-ant-secret")).expect("client builds");
        assert_eq!(client.endpoint(), "https://api.anthropic.com/v1/messages");
        assert!(!format!("{client:?}").contains("sk-ant-secret"));
        assert!(matches!(
            MessagesClient::new(ClientConfig::new("line\nbreak")),
            Err(ApiError::InvalidApiKey { .. })
        ));
    }

    #[test]
    fn snippets_are_one_short_line() {
        assert_eq!(
            snippet(b"<html>\n  <b>502</b>\n</html>"),
            "<html> <b>502</b> </html>"
        );
        let long = "é".repeat(1000);
        assert_eq!(
            snippet(long.as_bytes()).chars().count(),
            BODY_SNIPPET_CHARS + 1
        );
        assert_eq!(status_name(StatusCode::BAD_GATEWAY), "bad_gateway");
        assert_eq!(
            status_name(StatusCode::from_u16(529).expect("valid")),
            "http_error"
        );
    }
}

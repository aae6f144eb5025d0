//! Act step, the HTTP side: build a sink's request from its Secret files and the message, redact
//! the body, POST it, and retry with exponential backoff — honouring `Retry-After` on 429 and 503 —
//! a bounded number of times. Terminal answers (other 4xx) stop at once. Never called from a
//! reconcile: the notifier's own tasks run it, so a slow or dead receiver delays no agent.

use std::time::Duration;

use jiff::Timestamp;

use super::config::{SinkConfig, SinkKind, read_secret};
use super::sinks::{Message, pagerduty, slack, webhook};
use crate::audit::redact::Redactor;

/// How hard to try one delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Most HTTP attempts in all.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured; longer ones are cut to this.
    pub max_retry_after: Duration,
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// How a delivery ended.
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryOutcome {
    pub attempts: u32,
    /// `None` when the receiver accepted it (2xx).
    pub error: Option<String>,
}

/// One prepared HTTP request.
struct Prepared {
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

/// Builds the request for `sink` (reading its Secret files now), redacted.
fn prepare(sink: &SinkConfig, message: &Message, redactor: &Redactor) -> Result<Prepared, String> {
    let now = Timestamp::now();
    let mut headers = vec![("content-type", "application/json".to_string())];
    let (url, mut body) = match sink.kind {
        SinkKind::Slack => {
            let url = read_secret(sink.url_file.as_deref().ok_or("no urlFile")?)?;
            (url, slack::body(message))
        }
        SinkKind::Pagerduty => {
            let key = read_secret(
                sink.routing_key_file
                    .as_deref()
                    .ok_or("no routingKeyFile")?,
            )?;
            let base = match &sink.url_file {
                Some(path) => Some(read_secret(path)?),
                None => None,
            };
            let url = pagerduty::url(sink.pagerduty_action, base.as_deref());
            (
                url,
                pagerduty::body(message, &key, sink.pagerduty_action, &now.to_string()),
            )
        }
        SinkKind::Webhook => {
            let url = read_secret(sink.url_file.as_deref().ok_or("no urlFile")?)?;
            (url, webhook::body(message, &now.to_string()))
        }
    };
    // The routing key is the one secret that must reach PagerDuty; everything else is redacted.
    let routing_key = body.get("routing_key").cloned();
    redactor.redact_json(&mut body);
    if let Some(key) = routing_key {
        body["routing_key"] = key;
    }
    let bytes = serde_json::to_vec(&body).map_err(|e| format!("serializing the body: {e}"))?;
    if sink.kind == SinkKind::Webhook {
        let key = read_secret(
            sink.signing_key_file
                .as_deref()
                .ok_or("no signingKeyFile")?,
        )?;
        let timestamp = now.as_second();
        headers.push((webhook::TIMESTAMP_HEADER, timestamp.to_string()));
        headers.push((
            webhook::SIGNATURE_HEADER,
            webhook::signature(key.as_bytes(), timestamp, &bytes),
        ));
    }
    Ok(Prepared {
        url,
        headers,
        body: bytes,
    })
}

/// The wait a 429/503 answer asks for: `Retry-After` in seconds (HTTP dates are not used by these
/// receivers and count as absent), capped.
pub fn retry_after(value: Option<&str>, cap: Duration) -> Option<Duration> {
    let seconds: u64 = value?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds).min(cap))
}

/// The backoff before attempt `attempt + 1` (1-based `attempt`).
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    policy
        .initial_backoff
        .checked_mul(1u32 << attempt.saturating_sub(1).min(16))
        .unwrap_or(policy.max_backoff)
        .min(policy.max_backoff)
}

/// Sends `message` to `sink`, retrying as `policy` says. The Secret files are read again for each
/// attempt, so the webhook's timestamp is fresh and a Secret fixed meanwhile is used.
pub async fn deliver(
    http: &reqwest::Client,
    sink: &SinkConfig,
    message: &Message,
    redactor: &Redactor,
    policy: &RetryPolicy,
) -> DeliveryOutcome {
    let mut last_error = String::new();
    for attempt in 1..=policy.max_attempts.max(1) {
        let wait = match prepare(sink, message, redactor) {
            // A Secret that cannot be read now may be mounted later; retry like a 5xx.
            Err(error) => {
                last_error = error;
                Some(backoff(policy, attempt))
            }
            Ok(request) => {
                let mut builder = http
                    .post(&request.url)
                    .timeout(policy.request_timeout)
                    .body(request.body);
                for (name, value) in &request.headers {
                    builder = builder.header(*name, value);
                }
                match builder.send().await {
                    Ok(response) if response.status().is_success() => {
                        return DeliveryOutcome {
                            attempts: attempt,
                            error: None,
                        };
                    }
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let asked = retry_after(
                            response
                                .headers()
                                .get("retry-after")
                                .and_then(|v| v.to_str().ok()),
                            policy.max_retry_after,
                        );
                        let text = response.text().await.unwrap_or_default();
                        last_error =
                            format!("HTTP {status}: {}", super::sinks::cut(text.trim(), 300));
                        match status {
                            429 | 503 => Some(asked.unwrap_or_else(|| backoff(policy, attempt))),
                            408 | 500..=599 => Some(backoff(policy, attempt)),
                            // Bad request, bad key, gone: sending it again will not help.
                            _ => None,
                        }
                    }
                    Err(error) => {
                        last_error =
                            format!("request failed: {}", crate::errors::error_chain(&error));
                        Some(backoff(policy, attempt))
                    }
                }
            }
        };
        match wait {
            Some(wait) if attempt < policy.max_attempts => tokio::time::sleep(wait).await,
            _ => {
                return DeliveryOutcome {
                    attempts: attempt,
                    error: Some(redactor.redact(&last_error).into_owned()),
                };
            }
        }
    }
    DeliveryOutcome {
        attempts: policy.max_attempts,
        error: Some(redactor.redact(&last_error).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_caps_them() {
        let cap = Duration::from_secs(60);
        assert_eq!(retry_after(Some("2"), cap), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(Some("3600"), cap), Some(cap));
        assert_eq!(
            retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT"), cap),
            None
        );
        assert_eq!(retry_after(None, cap), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let waits: Vec<u64> = (1..=7).map(|a| backoff(&policy, a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
    }
}

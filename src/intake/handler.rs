//! The HTTP face of the intake: `POST /alertmanager`.
//!
//! Checks run cheapest first and before the body is read, so an unauthenticated or oversized
//! request costs almost nothing: bearer token (401), content type (415), declared and actual size
//! (413), the body within its read timeout (408), then parsing (400), the number of alerts (413)
//! and the sender's alert rate (429, with `Retry-After`) — see [`super::limits`]. Every refusal has a JSON body `{"error": <code>, "message": <text>}`
//! and bumps the rejected-requests counter. An accepted notification is answered with the
//! [`IngestSummary`]: 200 when every alert was recorded, 503 when some failed for a reason that
//! may pass (API server unreachable or overloaded), 500 otherwise — Alertmanager retries on 5xx.

use axum::Router;
use axum::body::{Body, Bytes};
use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::warn;

use super::IntakeState;
use super::ingest::{IngestSummary, ingest};
use super::metrics::RejectionReason;
use super::payload::{PayloadError, parse_payload};

/// Path Alertmanager's webhook receiver posts to.
pub const WEBHOOK_PATH: &str = "/alertmanager";

/// The intake's routes, ready to be merged into the operator's HTTP server.
pub fn router(state: IntakeState) -> Router {
    if !state.auth_enabled() {
        warn!(
            "Alertmanager intake has no bearer token configured: anyone who can reach {WEBHOOK_PATH} can create Incidents"
        );
    }
    Router::new()
        .route(WEBHOOK_PATH, post(receive))
        .with_state(state)
}

/// `POST /alertmanager`.
async fn receive(
    State(state): State<IntakeState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let inner = &state.inner;
    if let Some(expected) = &inner.token_digest
        && !bearer_token_matches(headers.get(header::AUTHORIZATION), expected)
    {
        return reject(
            &state,
            RejectionReason::Unauthorized,
            "missing or wrong bearer token".to_string(),
        );
    }
    if !is_json_content_type(headers.get(header::CONTENT_TYPE)) {
        return reject(
            &state,
            RejectionReason::UnsupportedMediaType,
            "Content-Type must be application/json".to_string(),
        );
    }
    let limit = inner.max_body_bytes;
    let too_large = || {
        reject(
            &state,
            RejectionReason::PayloadTooLarge,
            format!("request body larger than {limit} bytes"),
        )
    };
    if declared_length(&headers).is_some_and(|length| length > limit as u64) {
        return too_large();
    }
    let read = tokio::time::timeout(inner.limits.body_read_timeout, read_body(body, limit));
    let body = match read.await {
        Err(_elapsed) => {
            return reject(
                &state,
                RejectionReason::BodyTimeout,
                format!(
                    "the request body did not arrive within {} s",
                    inner.limits.body_read_timeout.as_secs_f64()
                ),
            );
        }
        Ok(Ok(body)) => body,
        Ok(Err(BodyError::TooLarge)) => return too_large(),
        Ok(Err(BodyError::Unreadable(error))) => {
            return reject(
                &state,
                RejectionReason::UnreadableBody,
                format!("could not read the request body: {error}"),
            );
        }
    };
    let payload = match parse_payload(&body) {
        Ok(payload) => payload,
        Err(error) => {
            let reason = match error {
                PayloadError::Syntax(_) => RejectionReason::MalformedJson,
                PayloadError::MissingVersion | PayloadError::UnsupportedVersion { .. } => {
                    RejectionReason::UnsupportedVersion
                }
                PayloadError::Schema(_) => RejectionReason::InvalidPayload,
            };
            return reject(&state, reason, error.to_string());
        }
    };
    let cap = inner.limits.max_alerts_per_request;
    if payload.alerts.len() > cap {
        return reject(
            &state,
            RejectionReason::TooManyAlerts,
            format!(
                "{} alerts in one notification; the limit is {cap} (set max_alerts: {cap} in the Alertmanager webhook receiver)",
                payload.alerts.len()
            ),
        );
    }
    let sender = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    if let Err(wait) =
        inner
            .sender_rate
            .take(sender, payload.alerts.len(), std::time::Instant::now())
    {
        let mut response = reject(
            &state,
            RejectionReason::RateLimited,
            format!(
                "more than {} alerts a minute from this sender; retry in {} s",
                inner.limits.alerts_per_minute,
                wait.as_secs()
            ),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs()));
        return response;
    }
    let summary = ingest(&state, &payload, &Time(Timestamp::now())).await;
    (summary_status(&summary), axum::Json(summary)).into_response()
}

/// 200 without errors; 503 if every error may pass on retry; 500 otherwise.
fn summary_status(summary: &IngestSummary) -> StatusCode {
    if summary.errors.is_empty() {
        StatusCode::OK
    } else if summary.only_transient_errors() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

/// Counts the refusal and answers with its status and a JSON error body.
fn reject(state: &IntakeState, reason: RejectionReason, message: String) -> Response {
    state.inner.metrics.request_rejected(reason);
    let status = match reason {
        RejectionReason::Unauthorized => StatusCode::UNAUTHORIZED,
        RejectionReason::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        RejectionReason::PayloadTooLarge | RejectionReason::TooManyAlerts => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        RejectionReason::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
        RejectionReason::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        RejectionReason::UnreadableBody
        | RejectionReason::MalformedJson
        | RejectionReason::UnsupportedVersion
        | RejectionReason::InvalidPayload => StatusCode::BAD_REQUEST,
    };
    let body = axum::Json(json!({ "error": reason.as_str(), "message": message }));
    let mut response = (status, body).into_response();
    if reason == RejectionReason::Unauthorized {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"incident-operator\""),
        );
    }
    response
}

/// SHA-256 of a token. Comparing digests keeps the comparison's time independent of where the
/// tokens differ and of the expected token's length.
pub(crate) fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether `Authorization` is `Bearer <token>` with the expected token; constant-time in the token.
fn bearer_token_matches(authorization: Option<&HeaderValue>, expected: &[u8; 32]) -> bool {
    let Some(value) = authorization.and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let Some((scheme, token)) = value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return false;
    }
    let sent = token_digest(token.trim());
    // XOR-fold over all 32 bytes: no early exit, so timing says nothing about the token.
    let difference = sent
        .iter()
        .zip(expected.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(difference) == 0
}

/// Whether the request says its body is JSON (`application/json`, any parameters).
fn is_json_content_type(content_type: Option<&HeaderValue>) -> bool {
    content_type
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case("application/json"))
}

/// The `Content-Length` the client declared, if it is a number.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Why the body could not be read.
#[derive(Debug)]
enum BodyError {
    /// More than the limit arrived (whatever `Content-Length` said).
    TooLarge,
    /// The connection failed mid-body.
    Unreadable(axum::Error),
}

/// Reads the whole body, stopping as soon as it exceeds `limit` bytes.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let mut chunks = body.into_data_stream();
    let mut buffer = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(BodyError::Unreadable)?;
        if buffer.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buffer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_checks() {
        let expected = token_digest("s3cret");
        let header = |text: &str| HeaderValue::from_str(text).unwrap();
        assert!(bearer_token_matches(
            Some(&header("Bearer s3cret")),
            &expected
        ));
        assert!(bearer_token_matches(
            Some(&header("bearer  s3cret ")),
            &expected
        ));
        for wrong in [
            "Bearer s3cre",
            "Bearer s3cret2",
            "Basic s3cret",
            "s3cret",
            "Bearer",
            "",
        ] {
            assert!(
                !bearer_token_matches(Some(&header(wrong)), &expected),
                "{wrong:?}"
            );
        }
        assert!(!bearer_token_matches(None, &expected));
        let binary = HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap();
        assert!(!bearer_token_matches(Some(&binary), &expected));
    }

    #[test]
    fn content_type_checks() {
        let header = |text: &str| HeaderValue::from_str(text).unwrap();
        for good in ["application/json", "Application/JSON; charset=utf-8"] {
            assert!(is_json_content_type(Some(&header(good))), "{good}");
        }
        for bad in [
            "text/plain",
            "application/jsonx",
            "application/x-www-form-urlencoded",
            "",
        ] {
            assert!(!is_json_content_type(Some(&header(bad))), "{bad}");
        }
        assert!(!is_json_content_type(None));
    }

    #[tokio::test]
    async fn body_limit_counts_bytes_actually_sent() {
        let body = Body::from(vec![b'x'; 100]);
        assert!(matches!(
            read_body(body, 99).await,
            Err(BodyError::TooLarge)
        ));
        let body = Body::from(vec![b'x'; 100]);
        assert_eq!(read_body(body, 100).await.unwrap().len(), 100);
        let chunks = futures::stream::iter(
            (0..10).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'y'; 30]))),
        );
        assert!(matches!(
            read_body(Body::from_stream(chunks), 250).await,
            Err(BodyError::TooLarge)
        ));
    }

    #[test]
    fn summary_status_codes() {
        use super::super::ingest::AlertFailure;
        let mut summary = IngestSummary::default();
        assert_eq!(summary_status(&summary), StatusCode::OK);
        summary.errors.push(AlertFailure {
            fingerprint: "f".into(),
            alertname: "a".into(),
            error: "API server unreachable".into(),
            transient: true,
        });
        assert_eq!(summary_status(&summary), StatusCode::SERVICE_UNAVAILABLE);
        summary.errors[0].transient = false;
        assert_eq!(summary_status(&summary), StatusCode::INTERNAL_SERVER_ERROR);
    }
}

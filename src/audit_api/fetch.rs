//! The client side of the audit API, for the `kubectl-incident` plugin's `audit` and `verify`:
//! fetches `incidentaudits/NAME` (JSON) or its `log` (JSONL) through the user's
//! kubeconfig, so kube-apiserver authenticates the user and the aggregation layer carries the
//! identity to the audit server; streams the body to a writer as it arrives (with `follow`, for as
//! long as the session runs). Failures become one line, worded like kubectl's.

use std::io::Write;

use futures::StreamExt;
use http_body_util::BodyExt;
use kube::Client;

use super::{GROUP, RESOURCE, VERSION};

/// Which form to fetch.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditFormat {
    /// The `IncidentAudit` object with every record.
    Json,
    /// The log as on disk: one JSON record a line.
    Jsonl,
}

/// What to fetch.
#[derive(Debug, Clone)]
pub struct AuditRequest {
    /// The Incident's namespace.
    pub namespace: String,
    /// The Incident's name.
    pub name: String,
    /// The form.
    pub format: AuditFormat,
    /// Keep streaming while the session runs.
    pub follow: bool,
}

impl AuditRequest {
    /// The API path.
    pub fn path(&self) -> String {
        let mut path = format!(
            "/apis/{GROUP}/{VERSION}/namespaces/{}/{RESOURCE}/{}",
            self.namespace, self.name
        );
        if self.format == AuditFormat::Jsonl {
            path.push_str("/log");
        }
        if self.follow {
            path.push_str("?follow=true");
        }
        path
    }
}

/// Why the audit could not be shown; `Display` is the one line a user sees.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The API server could not be reached.
    #[error("cannot reach the API server: {0}")]
    Unreachable(String),
    /// The server answered with a failure Status.
    #[error("Error from server ({reason}): {message}")]
    Server {
        /// `reason` of the Status (or the HTTP status text).
        reason: String,
        /// `message` of the Status (or the body).
        message: String,
    },
    /// The stream broke off.
    #[error("the audit stream broke off: {0}")]
    Stream(String),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Write(#[source] std::io::Error),
}

fn server_error(status: http::StatusCode, body: &[u8]) -> FetchError {
    let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let text = String::from_utf8_lossy(body).trim().to_string();
    let reason = parsed["reason"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("Unknown").to_string());
    let message = parsed["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or(text);
    // One line: a multi-line body would not read as an error message.
    let message = message.lines().collect::<Vec<_>>().join(" ");
    FetchError::Server { reason, message }
}

/// The body of an audit answer, as it arrives.
pub type AuditBody = futures::stream::BoxStream<'static, Result<axum::body::Bytes, FetchError>>;

/// Sends `request` through `client`; the body of a successful answer, or the failure as one line.
pub async fn open_audit(client: &Client, request: &AuditRequest) -> Result<AuditBody, FetchError> {
    let http_request = http::Request::get(request.path())
        .header(http::header::ACCEPT, "application/json, application/jsonl")
        .body(kube::client::Body::empty())
        .map_err(|e| FetchError::Unreachable(e.to_string()))?;
    let response = client
        .send(http_request)
        .await
        .map_err(|e| FetchError::Unreachable(e.to_string()))?;
    let status = response.status();
    let mut body = response.into_body().into_data_stream();
    if !status.is_success() {
        // A failure Status is small; read at most 64 KiB of it.
        let mut text = Vec::new();
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else { break };
            text.extend_from_slice(&chunk);
            if text.len() > 64 * 1024 {
                break;
            }
        }
        return Err(server_error(status, &text));
    }
    Ok(body
        .map(|chunk| chunk.map_err(|e| FetchError::Stream(e.to_string())))
        .boxed())
}

/// Fetches `request` through `client` and copies the body to `out` as it arrives.
pub async fn copy_audit(
    client: &Client,
    request: &AuditRequest,
    out: &mut impl Write,
) -> Result<(), FetchError> {
    let mut body = open_audit(client, request).await?;
    while let Some(chunk) = body.next().await {
        out.write_all(&chunk?).map_err(FetchError::Write)?;
        out.flush().map_err(FetchError::Write)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_the_object_or_its_log() {
        let mut request = AuditRequest {
            namespace: "shop".into(),
            name: "checkout".into(),
            format: AuditFormat::Json,
            follow: false,
        };
        assert_eq!(
            request.path(),
            "/apis/audit.sre.agentlab.dev/v1alpha1/namespaces/shop/incidentaudits/checkout"
        );
        request.format = AuditFormat::Jsonl;
        request.follow = true;
        assert!(
            request
                .path()
                .ends_with("/incidentaudits/checkout/log?follow=true")
        );
    }

    #[test]
    fn a_status_becomes_one_kubectl_like_line() {
        let body = br#"{"kind":"Status","reason":"Forbidden","message":"x is forbidden:\nno"}"#;
        let error = server_error(http::StatusCode::FORBIDDEN, body);
        assert_eq!(
            error.to_string(),
            "Error from server (Forbidden): x is forbidden: no"
        );
    }
}

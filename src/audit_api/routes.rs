//! The HTTP surface of the audit API: discovery for `audit.sre.agentlab.dev/v1alpha1`, the
//! `incidentaudits/NAME` object (JSON) and its `log` subresource (the JSONL as on disk), both with
//! `?follow=true` for a running session; unauthenticated `/healthz`, `/readyz`, `/livez` for the
//! kubelet's probes.
//!
//! Every audit request goes authenticate (front-proxy certificate + headers) → authorize
//! (SubjectAccessReview: get on the Incident) → find the session (the Incident's
//! `status.sessionId`, on the claim of its namespace) → stream from disk.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kube::Client;
use kube::api::Api;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::authorize::{self, Verdict};
use super::front_proxy::{self, CallerIdentity, RequestHeaderConfig, VerifiedClientCert};
use super::status::ApiStatus;
use super::stream::{Follow, OpenedAudit, SessionFiles};
use super::{API_VERSION, GROUP, KIND, LOG_CONTENT_TYPE, RESOURCE, VERSION};
use crate::incident::Incident;

/// The verified client certificate of the connection a request came on (set by the listener).
#[derive(Debug, Clone, Default)]
pub struct ConnectionCert(pub Option<VerifiedClientCert>);

/// What the handlers share.
pub struct AuditApiState {
    /// The API server, as the audit server's own ServiceAccount (reviews, Incidents).
    pub client: Client,
    /// How to believe the front proxy.
    pub request_header: RequestHeaderConfig,
    /// Agent namespace → the directory its audit claim is mounted at.
    pub claims: BTreeMap<String, PathBuf>,
    /// Follow streams open at once.
    pub follow_slots: Arc<Semaphore>,
    /// Longest a follow stays open.
    pub max_follow: Duration,
    /// How often a follow looks for new lines.
    pub follow_poll: Duration,
    /// Ends open follows on shutdown.
    pub shutdown: CancellationToken,
}

/// The router.
pub fn router(state: Arc<AuditApiState>) -> Router {
    let base = format!("/apis/{GROUP}/{VERSION}");
    Router::new()
        .route("/healthz", get(ok))
        .route("/readyz", get(ok))
        .route("/livez", get(ok))
        .route("/apis", get(group_list))
        .route(&format!("/apis/{GROUP}"), get(group))
        .route(&base, get(resource_list))
        .route(
            &format!("{base}/namespaces/{{namespace}}/{RESOURCE}/{{name}}"),
            get(audit_object),
        )
        .route(
            &format!("{base}/namespaces/{{namespace}}/{RESOURCE}/{{name}}/log"),
            get(audit_log),
        )
        .fallback(fallback)
        .with_state(state)
}

async fn ok() -> &'static str {
    "ok"
}

async fn fallback(method: Method) -> ApiStatus {
    if method == Method::GET {
        ApiStatus::path_not_found()
    } else {
        ApiStatus::method_not_allowed(method.as_str())
    }
}

fn caller(
    state: &AuditApiState,
    cert: &ConnectionCert,
    headers: &HeaderMap,
) -> Result<CallerIdentity, ApiStatus> {
    front_proxy::authenticate(&state.request_header, cert.0.as_ref(), headers).map_err(|error| {
        tracing::info!(%error, "request not authenticated");
        ApiStatus::unauthorized()
    })
}

fn group_json() -> Value {
    let version = json!({"groupVersion": API_VERSION, "version": VERSION});
    json!({"name": GROUP, "versions": [version], "preferredVersion": version})
}

fn json_reply(body: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn group_list(
    State(state): State<Arc<AuditApiState>>,
    axum::Extension(cert): axum::Extension<ConnectionCert>,
    headers: HeaderMap,
) -> Result<Response, ApiStatus> {
    caller(&state, &cert, &headers)?;
    Ok(json_reply(
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group_json()]}),
    ))
}

async fn group(
    State(state): State<Arc<AuditApiState>>,
    axum::Extension(cert): axum::Extension<ConnectionCert>,
    headers: HeaderMap,
) -> Result<Response, ApiStatus> {
    caller(&state, &cert, &headers)?;
    let mut body = group_json();
    body["kind"] = json!("APIGroup");
    body["apiVersion"] = json!("v1");
    Ok(json_reply(body))
}

/// The `APIResourceList` the aggregator's availability check and kubectl's discovery read.
pub fn resource_list_json() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": API_VERSION,
        "resources": [
            {"name": RESOURCE, "singularName": "incidentaudit", "namespaced": true,
             "kind": KIND, "verbs": ["get"]},
            {"name": format!("{RESOURCE}/log"), "singularName": "", "namespaced": true,
             "kind": KIND, "verbs": ["get"]},
        ],
    })
}

async fn resource_list(
    State(state): State<Arc<AuditApiState>>,
    axum::Extension(cert): axum::Extension<ConnectionCert>,
    headers: HeaderMap,
) -> Result<Response, ApiStatus> {
    caller(&state, &cert, &headers)?;
    Ok(json_reply(resource_list_json()))
}

/// `?follow=true` (as `pods/log` spells it).
#[derive(Debug, Default, serde::Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    follow: Option<String>,
}

impl AuditQuery {
    fn follow(&self) -> bool {
        matches!(self.follow.as_deref(), Some("true" | "1"))
    }
}

/// A session found and opened for a caller allowed to read it.
struct Found {
    audit: OpenedAudit,
    header: serde_json::Map<String, Value>,
    /// Held while a follow runs.
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

async fn find(
    state: &AuditApiState,
    cert: &ConnectionCert,
    headers: &HeaderMap,
    namespace: &str,
    name: &str,
    query: &AuditQuery,
) -> Result<Found, ApiStatus> {
    let caller = caller(state, cert, headers)?;
    match authorize::may_read(&state.client, &caller, namespace, name).await {
        Ok(Verdict::Allowed) => {}
        Ok(Verdict::Denied { reason }) => {
            return Err(ApiStatus::forbidden(&caller.user, namespace, name, &reason));
        }
        Err(error) => {
            tracing::warn!(error = %crate::errors::error_chain(&error), "authorization failed");
            return Err(ApiStatus::internal(crate::errors::error_chain(&error)));
        }
    }
    let Some(dir) = state.claims.get(namespace) else {
        return Err(ApiStatus::not_found(
            name,
            Some(&format!(
                "this audit API server does not mount the audit claim of namespace {namespace:?}"
            )),
        ));
    };
    let incidents: Api<Incident> = Api::namespaced(state.client.clone(), namespace);
    let incident = match incidents.get_opt(name).await {
        Ok(Some(incident)) => incident,
        Ok(None) => return Err(ApiStatus::not_found(name, None)),
        Err(error) => {
            return Err(ApiStatus::internal(format!(
                "reading the Incident: {error}"
            )));
        }
    };
    let session_id = incident
        .status
        .as_ref()
        .and_then(|s| s.session_id.clone())
        .ok_or_else(|| ApiStatus::not_found(name, Some("the Incident has no agent session yet")))?;
    if !crate::audit::is_valid_session_id(&session_id) {
        return Err(ApiStatus::internal(format!(
            "the Incident's status.sessionId {session_id:?} is not a session id"
        )));
    }
    let slot = if query.follow() {
        Some(
            state
                .follow_slots
                .clone()
                .try_acquire_owned()
                .map_err(|_| {
                    ApiStatus::too_many_requests(
                        "too many audits are being followed at once; try again later".into(),
                    )
                })?,
        )
    } else {
        None
    };
    let follow = query.follow().then(|| Follow {
        poll: state.follow_poll,
        deadline: tokio::time::Instant::now() + state.max_follow,
        shutdown: state.shutdown.clone(),
    });
    let files = SessionFiles::new(dir, &session_id);
    let ended = files.ended().await;
    let audit = match OpenedAudit::open(files, follow).await {
        Ok(Some(audit)) => audit,
        Ok(None) => {
            return Err(ApiStatus::not_found(
                name,
                Some(&format!(
                    "session {session_id} has no audit log on the claim"
                )),
            ));
        }
        Err(error) => return Err(ApiStatus::internal(crate::errors::error_chain(&error))),
    };
    let mut metadata = json!({"name": name, "namespace": namespace});
    if let Some(created) = &incident.metadata.creation_timestamp {
        metadata["creationTimestamp"] = json!(created.0.to_string());
    }
    let header = json!({
        "kind": KIND,
        "apiVersion": API_VERSION,
        "metadata": metadata,
        "sessionId": session_id,
        "ended": ended,
    });
    let Value::Object(header) = header else {
        unreachable!("a json! object literal is an object")
    };
    Ok(Found {
        audit,
        header,
        slot,
    })
}

fn streamed(
    stream: impl futures::Stream<Item = Result<axum::body::Bytes, super::stream::StreamError>>
    + Send
    + 'static,
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
    content_type: &'static str,
) -> Response {
    let stream = futures::StreamExt::map(stream, move |chunk| {
        // The slot is released when the body (and so this closure) is dropped.
        let _held = &slot;
        chunk.inspect_err(|error| {
            tracing::warn!(error = %crate::errors::error_chain(error), "audit stream cut");
        })
    });
    (
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn audit_object(
    State(state): State<Arc<AuditApiState>>,
    axum::Extension(cert): axum::Extension<ConnectionCert>,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<AuditQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiStatus> {
    let found = find(&state, &cert, &headers, &namespace, &name, &query).await?;
    Ok(streamed(
        found.audit.json_document(found.header),
        found.slot,
        "application/json",
    ))
}

async fn audit_log(
    State(state): State<Arc<AuditApiState>>,
    axum::Extension(cert): axum::Extension<ConnectionCert>,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<AuditQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiStatus> {
    let found = find(&state, &cert, &headers, &namespace, &name, &query).await?;
    Ok(streamed(found.audit.jsonl(), found.slot, LOG_CONTENT_TYPE))
}

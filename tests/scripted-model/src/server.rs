//! The HTTP side: accepts connections on loopback, records each request, validates it, takes the next
//! [`Step`] and answers with it.
//!
//! Connections are served one by one with hyper rather than through an axum `Router` because
//! [`Step::CloseConnection`] must drop the socket without a response, which a router cannot express:
//! each connection races its hyper future against a per-connection [`Notify`] and is dropped when the
//! handler fires it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::{Body, to_bytes};
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::step::Step;
use crate::validate::{self, Rejection};

/// Requests larger than this are refused; a real conversation is far smaller.
const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// One request as the server received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// The JSON body; a body that is not JSON is kept as a JSON string of its text.
    pub body: Value,
    /// The request path, e.g. `/v1/messages`.
    pub path: String,
}

impl RecordedRequest {
    /// The first value of a header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// Decides the step for each valid request.
pub(crate) enum Responder {
    /// Steps in order; when they run out, every request gets a loud 500.
    Script { steps: VecDeque<Step>, used: usize },
    /// The closure answers every request.
    Function(Box<dyn Fn(&RecordedRequest) -> Step + Send + Sync>),
}

/// What every connection task shares.
pub(crate) struct Shared {
    responder: Mutex<Responder>,
    requests: Mutex<Vec<RecordedRequest>>,
    replies_sent: AtomicU64,
}

impl Shared {
    pub(crate) fn new(responder: Responder) -> Arc<Shared> {
        Arc::new(Shared {
            responder: Mutex::new(responder),
            requests: Mutex::new(Vec::new()),
            replies_sent: AtomicU64::new(0),
        })
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records the request and returns its 1-based sequence number.
    fn record(&self, request: RecordedRequest) -> usize {
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        requests.push(request);
        requests.len()
    }

    fn next_step(&self, request: &RecordedRequest) -> Step {
        let mut responder = self
            .responder
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &mut *responder {
            Responder::Script { steps, used } => match steps.pop_front() {
                Some(step) => {
                    *used += 1;
                    step
                }
                None => Step::error(
                    500,
                    "api_error",
                    &format!("script exhausted after {used} steps"),
                ),
            },
            Responder::Function(answer) => answer(request),
        }
    }
}

/// Accepts connections until `shutdown`'s sender is dropped.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<()>,
) {
    let mut accept_shutdown = shutdown.clone();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                // Out of file descriptors or an aborted handshake: the next accept may work, after a
                // pause so a persistent error does not spin a core.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = accept_shutdown.changed() => return,
        };
        let shared = Arc::clone(&shared);
        let mut connection_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let close = Arc::new(Notify::new());
            let handler_close = Arc::clone(&close);
            let service = service_fn(move |request| {
                handle(Arc::clone(&shared), Arc::clone(&handler_close), request)
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            // Dropping the connection future closes the socket, with nothing written for the
            // request in flight.
            tokio::select! {
                _ = connection => {}
                _ = close.notified() => {}
                _ = connection_shutdown.changed() => {}
            }
        });
    }
}

async fn handle(
    shared: Arc<Shared>,
    close: Arc<Notify>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(Body::new(body), MAX_REQUEST_BYTES).await {
        Ok(bytes) => bytes,
        Err(error) => {
            let rejection = Rejection {
                status: 400,
                error_type: "invalid_request_error",
                message: format!("could not read the request body: {error}"),
            };
            return Ok(error_response(&rejection, "req_scripted_unreadable"));
        }
    };
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    let recorded = RecordedRequest {
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
        path: parts.uri.path().to_owned(),
    };
    let number = shared.record(recorded.clone());
    let request_id = format!("req_scripted_{number:04}");

    let checked = validate::check_route(parts.method.as_str(), &recorded.path, |name| {
        recorded.header(name).map(str::to_owned)
    })
    .and_then(|()| validate::check_body(&recorded.body));
    if let Err(rejection) = checked {
        return Ok(error_response(&rejection, &request_id));
    }

    let mut step = shared.next_step(&recorded);
    let mut extra_headers = Vec::new();
    let step = loop {
        match step {
            Step::Delay(delay, inner) => {
                tokio::time::sleep(delay).await;
                step = *inner;
            }
            Step::WithHeaders(headers, inner) => {
                extra_headers.extend(headers);
                step = *inner;
            }
            other => break other,
        }
    };
    let mut response = match step {
        Step::CloseConnection => {
            close.notify_one();
            // The connection task drops this future together with the connection.
            std::future::pending::<()>().await;
            return Ok(Response::new(Body::empty()));
        }
        Step::Reply(reply) => {
            let sequence = shared.replies_sent.fetch_add(1, Ordering::Relaxed) + 1;
            let reply = fill_reply_defaults(reply, &recorded.body, sequence);
            json_response(StatusCode::OK, &reply)
        }
        Step::Error {
            status,
            error_type,
            message,
            retry_after,
        } => {
            if let Some(retry_after) = retry_after {
                extra_headers.push(("retry-after".to_owned(), retry_after));
            }
            anthropic_error(status, &error_type, &message, &request_id)
        }
        Step::RawBody {
            status,
            content_type,
            body,
        } => match (
            StatusCode::from_u16(status),
            HeaderValue::try_from(content_type),
        ) {
            (Ok(status), Ok(content_type)) => {
                let mut response = Response::new(Body::from(body));
                *response.status_mut() = status;
                response.headers_mut().insert(CONTENT_TYPE, content_type);
                response
            }
            _ => script_error(
                &request_id,
                "RawBody step has an invalid status or content type",
            ),
        },
        Step::Delay(..) | Step::WithHeaders(..) => script_error(
            &request_id,
            "unreachable: nested steps were unwrapped above",
        ),
    };
    for (name, value) in extra_headers {
        match (
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            (Ok(name), Ok(value)) => {
                response.headers_mut().append(name, value);
            }
            _ => {
                return Ok(script_error(
                    &request_id,
                    &format!("scripted header {name:?} is not a valid header"),
                ));
            }
        }
    }
    if let Ok(value) = HeaderValue::try_from(request_id.as_str()) {
        response
            .headers_mut()
            .insert(HeaderName::from_static("request-id"), value);
    }
    Ok(response)
}

/// Fills what a script leaves out so the reply is a complete `MessagesResponse`.
fn fill_reply_defaults(mut reply: Value, request: &Value, sequence: u64) -> Value {
    let Some(fields) = reply.as_object_mut() else {
        return reply;
    };
    let model = request["model"]
        .as_str()
        .unwrap_or("claude-scripted")
        .to_owned();
    fields
        .entry("id")
        .or_insert_with(|| json!(format!("msg_scripted_{sequence:04}")));
    fields.entry("type").or_insert_with(|| json!("message"));
    fields.entry("role").or_insert_with(|| json!("assistant"));
    fields.entry("model").or_insert_with(|| json!(model));
    fields.entry("content").or_insert_with(|| json!([]));
    fields.entry("stop_sequence").or_insert(Value::Null);
    let has_tool_use = fields["content"]
        .as_array()
        .is_some_and(|blocks| blocks.iter().any(|block| block["type"] == "tool_use"));
    fields
        .entry("stop_reason")
        .or_insert_with(|| json!(if has_tool_use { "tool_use" } else { "end_turn" }));
    // An estimate of four bytes per token keeps cost and budget arithmetic in tests non-trivial.
    let input_estimate = (request.to_string().len() as u64 / 4).max(1);
    let output_estimate = (fields["content"].to_string().len() as u64 / 4).max(1);
    let usage = fields.entry("usage").or_insert_with(|| json!({}));
    if let Some(usage) = usage.as_object_mut() {
        usage
            .entry("input_tokens")
            .or_insert_with(|| json!(input_estimate));
        usage
            .entry("output_tokens")
            .or_insert_with(|| json!(output_estimate));
    }
    reply
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The Anthropic error envelope: `{"type":"error","error":{"type":..,"message":..},"request_id":..}`.
fn anthropic_error(
    status: u16,
    error_type: &str,
    message: &str,
    request_id: &str,
) -> Response<Body> {
    let body = json!({
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    });
    match StatusCode::from_u16(status) {
        Ok(status) => json_response(status, &body),
        Err(_) => script_error(
            request_id,
            &format!("status {status} is not a valid HTTP status"),
        ),
    }
}

fn error_response(rejection: &Rejection, request_id: &str) -> Response<Body> {
    anthropic_error(
        rejection.status,
        rejection.error_type,
        &rejection.message,
        request_id,
    )
}

/// A mistake in the script itself: answered as a 500 so the test fails loudly.
fn script_error(request_id: &str, message: &str) -> Response<Body> {
    let body = json!({
        "type": "error",
        "error": {"type": "api_error", "message": format!("scripted-model: {message}")},
        "request_id": request_id,
    });
    json_response(StatusCode::INTERNAL_SERVER_ERROR, &body)
}

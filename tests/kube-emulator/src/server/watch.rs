//! Watches: `?watch=1` and `/watch/` paths, streaming newline-delimited watch events.
//!
//! Start points follow the API conventions: no resourceVersion (or "0") first sends the
//! current objects as ADDED; a resourceVersion replays the kept history after it, or sends
//! an ERROR event with a 410 Expired Status when that history was already dropped;
//! `sendInitialEvents=true` (with `resourceVersionMatch=NotOlderThan` and bookmarks) sends
//! the current objects and then a BOOKMARK annotated `k8s.io/initial-events-end: "true"`.
//! Objects that stop (start) matching a selector are sent as DELETED (ADDED). Bookmarks go
//! out every `bookmark_interval` and before a `timeoutSeconds` close. A watcher that falls
//! behind the broadcast buffer is closed instead of slowing writers down.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::convert;
use super::meta;
use super::objects::Selectors;
use super::request::{Query, Representation};
use super::resource::ResourceDef;
use super::state::Shared;
use super::status::{ApiError, Cause};
use super::store::{Change, ChangeType};
use super::table;

/// Default watch duration when the client gives no timeout, like the server's minRequestTimeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct Watcher {
    def: ResourceDef,
    namespace: Option<String>,
    selectors: Selectors,
    representation: Representation,
    bookmarks: bool,
    sent_columns: bool,
}

impl Watcher {
    fn in_scope(&self, object: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| meta::namespace(object) == ns)
    }

    fn matches(&self, object: &Value) -> bool {
        self.in_scope(object) && self.selectors.matches(object)
    }

    fn render(&mut self, event_type: &str, stored: &Value) -> Bytes {
        let object = convert::to_served(&self.def, stored);
        let object = match self.representation {
            Representation::Object => object,
            Representation::Metadata => table::partial_metadata(&object),
            Representation::Table => {
                let with_columns = !self.sent_columns;
                self.sent_columns = true;
                let rv = meta::resource_version(&object).to_string();
                table::table(
                    &self.def,
                    &[object],
                    "Metadata",
                    json!({"resourceVersion": rv}),
                    with_columns,
                )
            }
        };
        line(json!({"type": event_type, "object": object}))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(
            json!({"type": "BOOKMARK", "object": {"kind": self.def.kind, "apiVersion": self.def.api_version(), "metadata": metadata}}),
        )
    }

    /// The event a change produces for this watcher, if any.
    fn event_for(&mut self, change: &Change) -> Option<Bytes> {
        if change.storage != self.def.storage {
            return None;
        }
        let now = self.matches(&change.object);
        let before = change.previous.as_deref().is_some_and(|p| self.matches(p));
        let event_type = match change.change_type {
            ChangeType::Added if now => "ADDED",
            ChangeType::Deleted if before || now => "DELETED",
            ChangeType::Modified if now && before => "MODIFIED",
            ChangeType::Modified if now => "ADDED",
            ChangeType::Modified if before => "DELETED",
            _ => return None,
        };
        Some(self.render(event_type, &change.object))
    }
}

fn line(value: Value) -> Bytes {
    let mut text = value.to_string();
    text.push('\n');
    Bytes::from(text)
}

fn expired_event(requested: u64, oldest: u64) -> Bytes {
    let status =
        ApiError::expired(format!("too old resource version: {requested} ({oldest})")).to_status();
    line(json!({"type": "ERROR", "object": status}))
}

/// Starts a watch; the response streams until timeout, shutdown, lag or client disconnect.
pub fn serve(
    shared: Arc<Shared>,
    def: ResourceDef,
    namespace: Option<String>,
    query: &Query,
    representation: Representation,
) -> Result<Response, ApiError> {
    let selectors = Selectors::parse(&def, query)?;
    let bookmarks = query.flag("allowWatchBookmarks");
    let send_initial = query
        .get("sendInitialEvents")
        .map(|v| v == "true" || v == "1");
    let rv_param = query.get("resourceVersion").unwrap_or("").to_string();
    if send_initial.is_some() {
        let mut causes = Vec::new();
        if query.get("resourceVersionMatch") != Some("NotOlderThan") {
            causes.push(Cause::new(
                "FieldValueForbidden",
                "resourceVersionMatch",
                "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if send_initial == Some(true) && !bookmarks {
            causes.push(Cause::new(
                "FieldValueRequired",
                "allowWatchBookmarks",
                "Required value: sendInitialEvents requires allowWatchBookmarks to be set",
            ));
        }
        if !causes.is_empty() {
            return Err(ApiError::invalid("ListOptions", "meta.k8s.io", "", causes));
        }
    }
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let mut watcher = Watcher {
        def,
        namespace,
        selectors,
        representation,
        bookmarks,
        sent_columns: false,
    };
    let mut first: Vec<Bytes> = Vec::new();
    let (receiver, mut progress) = {
        let inner = shared.lock();
        let receiver = inner.store.subscribe();
        let current = inner.store.current_rv();
        let initial_objects = match (send_initial, rv_param.as_str()) {
            (Some(initial), _) => initial,
            (None, "" | "0") => true,
            (None, _) => false,
        };
        if initial_objects {
            let storage = watcher.def.storage.clone();
            let namespace = watcher.namespace.clone();
            for object in inner.store.list(&storage, namespace.as_deref()) {
                if watcher.matches(object) {
                    first.push(watcher.render("ADDED", object));
                }
            }
            if send_initial == Some(true) {
                first.push(watcher.bookmark(current, true));
            }
            (receiver, current)
        } else {
            let start: u64 = match rv_param.parse() {
                Ok(rv) => rv,
                Err(_) if rv_param.is_empty() => current,
                Err(_) => {
                    return Err(ApiError::bad_request(format!(
                        "invalid resource version: {rv_param}"
                    )));
                }
            };
            match inner.store.changes_since(&watcher.def.storage, start) {
                Err(oldest) => {
                    first.push(expired_event(start, oldest + 1));
                    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(first.len().max(1));
                    for chunk in first {
                        let _ = tx.try_send(Ok(chunk));
                    }
                    drop(tx);
                    return Ok(stream_response(rx));
                }
                Ok(changes) => {
                    for change in &changes {
                        if let Some(event) = watcher.event_for(change) {
                            first.push(event);
                        }
                    }
                    (receiver, current.max(start))
                }
            }
        }
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let shutdown = shared.shutdown.clone();
    let interval = shared.config.bookmark_interval;
    tokio::spawn(async move {
        let mut receiver: broadcast::Receiver<Arc<Change>> = receiver;
        for chunk in first {
            if tx.send(Ok(chunk)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        loop {
            tokio::select! {
                received = receiver.recv() => match received {
                    Ok(change) => {
                        if change.rv <= progress {
                            continue;
                        }
                        progress = change.rv;
                        if let Some(event) = watcher.event_for(&change)
                            && tx.send(Ok(event)).await.is_err() {
                                return;
                            }
                    }
                    // Lagged: the client cannot keep up; closing makes it resume from its last RV.
                    Err(_) => return,
                },
                _ = ticker.tick(), if watcher.bookmarks => {
                    if tx.send(Ok(watcher.bookmark(progress, false))).await.is_err() {
                        return;
                    }
                }
                _ = &mut deadline => {
                    if watcher.bookmarks {
                        let _ = tx.send(Ok(watcher.bookmark(progress, false))).await;
                    }
                    return;
                }
                _ = shutdown.cancelled() => return,
                _ = tx.closed() => return,
            }
        }
    });
    Ok(stream_response(rx))
}

fn stream_response(rx: mpsc::Receiver<Result<Bytes, Infallible>>) -> Response {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

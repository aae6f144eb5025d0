//! The kubelet's log endpoint: `GET /containerLogs/<namespace>/<pod>/<container>` over HTTPS
//! (a self-signed certificate, as a kubelet makes itself) on loopback, the path a real kubelet
//! serves and the API server proxies `pods/log` to. The
//! port is published in the Node's `status.daemonEndpoints.kubeletEndpoint.Port`, so the emulator
//! (and anything else that follows the Node's endpoints) can reach it.
//!
//! Query parameters as in `pods/log`: `follow`, `previous`, `timestamps`, `tailLines`,
//! `limitBytes`, `sinceSeconds`, `sinceTime`. With `follow`, lines are streamed as the container
//! writes them until it terminates or the client goes away.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use jiff::Timestamp;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::logs::{self, LogLine, LogQuery};

/// How often a followed log is checked for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// What the log endpoint knows about a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerLogState {
    /// Not started yet; the reason is the container's waiting reason.
    Waiting(String),
    Running,
    /// Exited; its log is complete (until a restart).
    Terminated,
}

#[derive(Clone, Debug)]
struct ContainerLog {
    current: PathBuf,
    previous: PathBuf,
    state: watch::Receiver<ContainerLogState>,
}

type LogKey = (String, String, String);

/// The containers whose logs can be served, by namespace, pod and container name.
#[derive(Clone, Debug, Default)]
pub struct LogRegistry {
    containers: Arc<Mutex<BTreeMap<LogKey, ContainerLog>>>,
}

/// A container's entry in the [`LogRegistry`]; dropping it removes the entry.
#[derive(Debug)]
pub struct LogHandle {
    registry: LogRegistry,
    key: LogKey,
    state: watch::Sender<ContainerLogState>,
}

impl LogHandle {
    /// Updates what the endpoint reports for the container.
    pub fn set(&self, state: ContainerLogState) {
        self.state.send_replace(state);
    }
}

impl Drop for LogHandle {
    fn drop(&mut self) {
        if let Ok(mut containers) = self.registry.containers.lock() {
            containers.remove(&self.key);
        }
    }
}

impl LogRegistry {
    /// Makes a container's logs servable until the returned handle is dropped.
    pub fn register(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        current: PathBuf,
        previous: PathBuf,
    ) -> LogHandle {
        let (state_tx, state_rx) =
            watch::channel(ContainerLogState::Waiting("ContainerCreating".into()));
        let key = (
            namespace.to_string(),
            pod.to_string(),
            container.to_string(),
        );
        if let Ok(mut containers) = self.containers.lock() {
            containers.insert(
                key.clone(),
                ContainerLog {
                    current,
                    previous,
                    state: state_rx,
                },
            );
        }
        LogHandle {
            registry: self.clone(),
            key,
            state: state_tx,
        }
    }

    fn get(&self, key: &LogKey) -> Option<ContainerLog> {
        self.containers.lock().ok()?.get(key).cloned()
    }
}

/// Starting the log endpoint failed.
#[derive(Debug, thiserror::Error)]
pub enum LogServerError {
    #[error("binding the kubelet log endpoint on 127.0.0.1")]
    Bind(#[source] std::io::Error),
    #[error("reading the kubelet log endpoint's address")]
    LocalAddr(#[source] std::io::Error),
    #[error("making the kubelet's serving certificate")]
    Certificate(#[source] crate::cluster_ca::CertificateError),
    #[error("setting up TLS for the kubelet log endpoint")]
    Tls(#[source] crate::tls::TlsError),
}

/// Serves the registry on a free loopback port until `cancel` fires; returns the port.
pub async fn start(
    registry: LogRegistry,
    cancel: CancellationToken,
) -> Result<(u16, JoinHandle<()>), LogServerError> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(LogServerError::Bind)?;
    let port = listener
        .local_addr()
        .map_err(LogServerError::LocalAddr)?
        .port();
    let certificate = crate::cluster_ca::self_signed_serving(&["127.0.0.1", "localhost"])
        .map_err(LogServerError::Certificate)?;
    let acceptor = crate::tls::acceptor(&certificate).map_err(LogServerError::Tls)?;
    let listener = crate::tls::TlsListener::new(listener, acceptor);
    let app = Router::new()
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(container_logs),
        )
        .with_state(registry);
    let task = tokio::spawn(async move {
        let serving = axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await });
        if let Err(error) = serving.await {
            tracing::warn!(%error, "kubelet log endpoint failed");
        }
    });
    Ok((port, task))
}

fn text(status: StatusCode, message: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain")], message).into_response()
}

/// Parses the query parameters of a log request.
pub fn parse_query(params: &HashMap<String, String>) -> Result<LogQuery, String> {
    let flag = |name: &str| {
        params
            .get(name)
            .is_some_and(|v| v == "true" || v == "1" || v.is_empty())
    };
    let number = |name: &str| -> Result<Option<i64>, String> {
        params
            .get(name)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| format!("{name}: invalid value {v:?}"))
            })
            .transpose()
    };
    let since = match (params.get("sinceTime"), number("sinceSeconds")?) {
        (Some(time), _) => Some(
            time.parse::<Timestamp>()
                .map_err(|_| format!("sinceTime: invalid value {time:?}"))?,
        ),
        (None, Some(seconds)) => Timestamp::now()
            .checked_sub(jiff::SignedDuration::from_secs(seconds.max(0)))
            .ok(),
        (None, None) => None,
    };
    Ok(LogQuery {
        follow: flag("follow"),
        previous: flag("previous"),
        timestamps: flag("timestamps"),
        // A negative tailLines means "all", as in the API.
        tail_lines: number("tailLines")?.and_then(|n| usize::try_from(n).ok()),
        limit_bytes: number("limitBytes")?.and_then(|n| usize::try_from(n).ok()),
        since,
    })
}

async fn container_logs(
    State(registry): State<LogRegistry>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let query = match parse_query(&params) {
        Ok(query) => query,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let Some(entry) = registry.get(&(namespace.clone(), pod.clone(), container.clone())) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("container {container:?} in pod {namespace}/{pod} is not running on this node"),
        );
    };
    let state = entry.state.borrow().clone();
    if let ContainerLogState::Waiting(reason) = &state
        && !query.previous
    {
        return text(
            StatusCode::BAD_REQUEST,
            format!("container {container:?} in pod {pod:?} is waiting to start: {reason}"),
        );
    }
    let path = if query.previous {
        if !entry.previous.exists() {
            return text(
                StatusCode::BAD_REQUEST,
                format!("previous terminated container {container:?} in pod {pod:?} not found"),
            );
        }
        entry.previous.clone()
    } else {
        entry.current.clone()
    };
    let bytes = match tokio::fs::read(&path).await {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading log {}: {error}", path.display()),
            );
        }
    };
    // Only whole lines now; a line still being written is picked up by `follow`.
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let lines: Vec<LogLine> = String::from_utf8_lossy(&bytes[..complete])
        .lines()
        .filter_map(LogLine::parse)
        .collect();
    let mut budget = query.limit_bytes;
    let first: String = logs::select(&lines, &query)
        .iter()
        .map(|l| l.render(query.timestamps))
        .collect();
    let first = take_budget(first, &mut budget);
    let follow = query.follow && !query.previous && state != ContainerLogState::Terminated;
    if !follow || budget == Some(0) {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain")],
            first,
        )
            .into_response();
    }
    let tail = Follow {
        path,
        offset: complete as u64,
        state: entry.state,
        timestamps: query.timestamps,
        budget,
        finished: false,
    };
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(first)) })
        .chain(futures::stream::unfold(tail, |mut tail| async move {
            let chunk = tail.next_chunk().await?;
            Some((Ok(Bytes::from(chunk)), tail))
        }));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Cuts `text` to the remaining byte budget (at a char boundary) and charges it.
fn take_budget(mut text: String, budget: &mut Option<usize>) -> String {
    if let Some(left) = budget.as_mut() {
        if text.len() > *left {
            let mut cut = *left;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        *left -= text.len();
    }
    text
}

/// A followed log: new whole lines from `offset` on, until the container stops.
struct Follow {
    path: PathBuf,
    offset: u64,
    state: watch::Receiver<ContainerLogState>,
    timestamps: bool,
    budget: Option<usize>,
    finished: bool,
}

impl Follow {
    /// The next non-empty chunk of rendered lines, or `None` when the log is complete.
    async fn next_chunk(&mut self) -> Option<String> {
        loop {
            if self.finished || self.budget == Some(0) {
                return None;
            }
            // Read the state before the file so the last lines are not missed.
            let running = *self.state.borrow() == ContainerLogState::Running;
            let new = self.read_new_lines().await;
            if !new.is_empty() {
                let chunk: String = new.iter().map(|l| l.render(self.timestamps)).collect();
                return Some(take_budget(chunk, &mut self.budget));
            }
            if !running {
                self.finished = true;
                return None;
            }
            tokio::select! {
                () = tokio::time::sleep(FOLLOW_POLL) => {}
                changed = self.state.changed() => {
                    if changed.is_err() {
                        // The pod worker is gone; one more read picks up what is left.
                        self.finished = true;
                        let rest = self.read_new_lines().await;
                        let chunk: String = rest.iter().map(|l| l.render(self.timestamps)).collect();
                        return (!chunk.is_empty()).then(|| take_budget(chunk, &mut self.budget));
                    }
                }
            }
        }
    }

    async fn read_new_lines(&mut self) -> Vec<LogLine> {
        let Ok(mut file) = tokio::fs::File::open(&self.path).await else {
            return Vec::new();
        };
        if file
            .seek(std::io::SeekFrom::Start(self.offset))
            .await
            .is_err()
        {
            return Vec::new();
        }
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).await.is_err() {
            return Vec::new();
        }
        let Some(last_newline) = bytes.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        self.offset += last_newline as u64 + 1;
        String::from_utf8_lossy(&bytes[..=last_newline])
            .lines()
            .filter_map(LogLine::parse)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn query_parsing() {
        let query = parse_query(&params(&[
            ("follow", "true"),
            ("tailLines", "5"),
            ("limitBytes", "100"),
            ("timestamps", "true"),
            ("sinceTime", "2024-01-01T00:00:00Z"),
        ]))
        .unwrap();
        assert!(query.follow && query.timestamps && !query.previous);
        assert_eq!(query.tail_lines, Some(5));
        assert_eq!(query.limit_bytes, Some(100));
        assert_eq!(query.since, Some("2024-01-01T00:00:00Z".parse().unwrap()));
        assert_eq!(
            parse_query(&params(&[("tailLines", "-1")]))
                .unwrap()
                .tail_lines,
            None
        );
        assert!(parse_query(&params(&[("tailLines", "x")])).is_err());
        assert!(
            parse_query(&params(&[("sinceSeconds", "60")]))
                .unwrap()
                .since
                .is_some()
        );
    }

    #[test]
    fn budget_cuts_at_char_boundaries() {
        let mut budget = Some(4);
        assert_eq!(take_budget("abé d".into(), &mut budget), "abé");
        assert_eq!(budget, Some(0));
        let mut none = None;
        assert_eq!(take_budget("abc".into(), &mut none), "abc");
    }
}

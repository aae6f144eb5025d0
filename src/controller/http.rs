//! The controller's HTTP endpoints: `/metrics` (Prometheus text format), `/healthz` and `/readyz`
//! (see [`super::health`]). Other routers (the Alertmanager intake) are merged in by the caller.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use super::health::Health;

/// Content type of the OpenMetrics text exposition.
const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
struct Endpoints {
    registry: Arc<Registry>,
    health: Arc<Health>,
}

/// The router with `/metrics`, `/healthz` and `/readyz`.
pub fn router(registry: Arc<Registry>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(Endpoints { registry, health })
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    super::bounded_server::serve_bounded(
        listener,
        router,
        super::bounded_server::ServeLimits::default(),
        shutdown,
    )
    .await
}

async fn metrics(State(endpoints): State<Endpoints>) -> impl IntoResponse {
    let mut body = String::new();
    match encode(&mut body, &endpoints.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
            body,
        )
            .into_response(),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding metrics: {error}"),
        )
            .into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(endpoints): State<Endpoints>) -> impl IntoResponse {
    if endpoints.health.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::metrics::Metrics;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// GET `path` over a real TCP connection; returns the raw response.
    async fn get_raw(addr: std::net::SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn endpoints_answer_over_http() {
        let mut registry = Registry::with_prefix("incident_operator");
        let metrics = Metrics::register(&mut registry);
        metrics.observe_reconcile(std::time::Duration::from_millis(1));
        let health = Arc::new(Health::new(false));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            router(Arc::new(registry), health.clone()),
            async move {
                let _ = stopped.await;
            },
        ));

        let response = get_raw(addr, "/healthz").await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        let response = get_raw(addr, "/readyz").await;
        assert!(response.starts_with("HTTP/1.1 503"), "{response}");
        health.set_caches_synced(true);
        let response = get_raw(addr, "/readyz").await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        let response = get_raw(addr, "/metrics").await;
        assert!(
            response.contains("application/openmetrics-text"),
            "{response}"
        );
        assert!(
            response.contains("incident_operator_reconciles_total 1"),
            "{response}"
        );

        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}

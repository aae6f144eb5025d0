//! The operator's HTTP listener (`/metrics`, `/healthz`, `/readyz` and the Alertmanager intake)
//! with the bounds a public endpoint needs (issue 9 §5): at most [`ServeLimits::max_connections`]
//! connections at once (further ones wait in the kernel's accept backlog, costing us nothing), and a
//! header read timeout that closes a connection whose request head does not arrive in time —
//! including an idle keep-alive connection. The body has its own timeout in the intake handler.
//!
//! Each request carries the peer address as [`axum::extract::ConnectInfo`], so handlers can rate
//! limit by sender.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

/// How much the listener holds at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeLimits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time a client has to send a request's head (and to start the next one on a kept-alive
    /// connection).
    pub header_read_timeout: Duration,
    /// How long in-flight requests get to finish after shutdown is asked for.
    pub shutdown_grace: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            // Prometheus, the kubelet's probes and a few Alertmanager replicas need a handful.
            max_connections: 256,
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves.
pub async fn serve_bounded(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    while let Some((permit, stream, peer)) =
        next_connection(&listener, &permits, shutdown.as_mut()).await
    {
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            router.clone().oneshot(request.map(Body::new))
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drain(graceful, limits.shutdown_grace, "HTTP").await;
    Ok(())
}

/// The next connection to serve, once a permit is free (so at most as many connections as
/// permits are open; the rest wait in the kernel's backlog); `None` once `shutdown` resolved.
/// Shared with the audit API's TLS listener.
pub async fn next_connection<F: Future<Output = ()>>(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
    mut shutdown: Pin<&mut F>,
) -> Option<(OwnedSemaphorePermit, TcpStream, SocketAddr)> {
    let permit = tokio::select! {
        permit = permits.clone().acquire_owned() => permit.ok()?,
        () = shutdown.as_mut() => return None,
    };
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => return Some((permit, stream, peer)),
                Err(error) => {
                    // EMFILE and friends pass; a busy loop would not help them pass sooner.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = shutdown.as_mut() => return None,
        }
    }
}

/// Gives open connections `grace` to finish after shutdown; says so when some did not.
pub async fn drain(graceful: GracefulShutdown, grace: Duration, what: &str) {
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("{what} connections still open after the shutdown grace period");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start(limits: ServeLimits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route(
            "/peer",
            axum::routing::get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                peer.ip().to_string()
            }),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve_bounded(listener, router, limits, async move {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    async fn get(addr: SocketAddr) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /peer HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn a_half_sent_request_head_is_dropped_after_the_timeout() {
        let limits = ServeLimits {
            header_read_timeout: Duration::from_millis(300),
            ..ServeLimits::default()
        };
        let (addr, _stop) = start(limits).await;
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"POST /alertmanager HTTP/1.1\r\nhost")
            .await
            .unwrap();
        let mut buf = Vec::new();
        // The server closes the connection (possibly after a 408); without the timeout this read
        // would wait forever, and the test harness's own timeout would fail it.
        let read =
            tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "connection still open");
        assert!(
            get(addr).await.contains("127.0.0.1"),
            "handlers see the peer"
        );
    }

    #[tokio::test]
    async fn connections_above_the_cap_wait_until_one_is_free() {
        let limits = ServeLimits {
            max_connections: 2,
            header_read_timeout: Duration::from_secs(60),
            ..ServeLimits::default()
        };
        let (addr, _stop) = start(limits).await;
        let mut idle = Vec::new();
        for _ in 0..2 {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /peer HTTP/1.1\r\n").await.unwrap();
            idle.push(s);
        }
        // A third connection is accepted by the kernel but not served while both slots are held.
        let third = tokio::spawn(get(addr));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!third.is_finished(), "served above the cap");
        drop(idle);
        let answer = tokio::time::timeout(Duration::from_secs(30), third)
            .await
            .unwrap()
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}

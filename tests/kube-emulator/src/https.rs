//! Serving the API over HTTPS with a certificate from the cluster CA, as kube-apiserver does.
//!
//! TLS is what makes authentication work for Go clients: client-go (kubectl, helm) sends a
//! kubeconfig's bearer token only over TLS, so over plain HTTP they would reach the server
//! as `system:anonymous`. Each connection is handshaken on its own task (a slow client cannot
//! hold up others) and served as HTTP/1.1 by hyper with the axum router.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::cluster_ca::ServingCertificate;

/// A handshake that takes longer than this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("the serving certificate is not valid PEM")]
    Certificate(#[source] rustls::pki_types::pem::Error),
    #[error("the serving key is not valid PEM")]
    Key(#[source] rustls::pki_types::pem::Error),
    #[error("rustls refused the certificate and key")]
    Config(#[source] rustls::Error),
}

/// A TLS acceptor for `certificate`, with the ring provider the workspace uses.
pub fn acceptor(certificate: &ServingCertificate) -> Result<TlsAcceptor, TlsSetupError> {
    let chain = CertificateDer::pem_slice_iter(certificate.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(TlsSetupError::Certificate)?;
    let key = PrivateKeyDer::from_pem_slice(certificate.key_pem.as_bytes())
        .map_err(TlsSetupError::Key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Config)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsSetupError::Config)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts connections until `shutdown`; open connections finish their current request.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: axum::Router,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((tcp, _peer)) = accepted else {
            // Out of file descriptors or similar: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(%error, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                .with_upgrades();
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                }
                _ = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
}

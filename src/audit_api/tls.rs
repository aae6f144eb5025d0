//! HTTPS for the audit API: the serving certificate the chart issues (the APIService's
//! `caBundle` verifies it), and the client-certificate check that makes the front-proxy headers
//! believable. A client certificate is optional at the TLS layer — a caller without one gets a
//! 401 Status from the handler rather than a failed handshake — but when one is sent it must chain
//! to the request-header CA, or the handshake fails.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use super::front_proxy::VerifiedClientCert;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// A certificate or key file could not be read or parsed.
    #[error("cannot read {what} from {path}")]
    Pem {
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The request-header CA bundle holds no usable certificate.
    #[error("the request-header CA bundle holds no certificate")]
    EmptyClientCa,
    /// rustls refused the CA, the certificate or the key.
    #[error("cannot build the TLS configuration")]
    Rustls(#[source] rustls::Error),
    /// The client verifier could not be built from the CA bundle.
    #[error("cannot use the request-header CA")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
}

/// The rustls server configuration: `cert_file`/`key_file` served, client certificates
/// verified against `client_ca_pem` when presented.
pub fn server_config(
    cert_file: &Path,
    key_file: &Path,
    client_ca_pem: &str,
) -> Result<Arc<rustls::ServerConfig>, TlsSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsSetupError::Pem {
            what: "the serving certificate",
            path: cert_file.to_path_buf(),
            source,
        })?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|source| TlsSetupError::Pem {
        what: "the serving key",
        path: key_file.to_path_buf(),
        source,
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(client_ca_pem.as_bytes()).flatten() {
        roots.add(cert).map_err(TlsSetupError::Rustls)?;
    }
    if roots.is_empty() {
        return Err(TlsSetupError::EmptyClientCa);
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(TlsSetupError::Verifier)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsSetupError::Rustls)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(TlsSetupError::Rustls)?;
    // kube-apiserver's proxy speaks HTTP/1.1 to aggregated servers unless told otherwise.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The verified client certificate of an accepted connection, if it presented one. rustls has
/// already checked the chain, so only the subject is read here.
pub fn peer_certificate(connection: &rustls::ServerConnection) -> Option<VerifiedClientCert> {
    let leaf = connection.peer_certificates()?.first()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let common_name = parsed
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())?
        .to_string();
    Some(VerifiedClientCert { common_name })
}

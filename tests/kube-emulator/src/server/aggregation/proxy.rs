//! Forwards one request to an aggregated API server, like kube-aggregator's proxy handler
//! (`k8s.io/kube-aggregator/pkg/apiserver/handler_proxy.go`): the caller's `Authorization` and
//! `Impersonate-*` headers and any `X-Remote-*` headers it sent are removed, the authenticated
//! user is set in `X-Remote-User`, `X-Remote-Uid`, `X-Remote-Group` and `X-Remote-Extra-<key>`
//! (key percent-escaped), the TLS connection presents the front-proxy client certificate and
//! verifies the backend against the APIService's `caBundle` for the name
//! `<service>.<namespace>.svc`. The answer is streamed back as it comes, so watch-like streams
//! stay open.

use std::sync::Arc;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, header};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{Backend, FrontProxy};
use crate::server::auth::identity::UserInfo;
use crate::server::status::ApiError;

/// Headers a caller may not pass through to the backend.
fn is_stripped(name: &HeaderName) -> bool {
    let name = name.as_str();
    name == "authorization"
        || name.starts_with("impersonate-")
        || name.starts_with("x-remote-")
        || matches!(
            name,
            "connection"
                | "keep-alive"
                | "proxy-connection"
                | "transfer-encoding"
                | "upgrade"
                | "host"
        )
}

/// Percent-escapes an extra key for a header name, as `headerKeyEscape` does.
fn escape_extra_key(key: &str) -> String {
    let mut out = String::new();
    for byte in key.bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(
                byte,
                b'-' | b'!'
                    | b'#'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        if keep {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The headers sent to the backend for `user`.
pub fn backend_headers(original: &http::HeaderMap, user: &UserInfo, host: &str) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    for (name, value) in original {
        if !is_stripped(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    let mut put = |name: String, value: &str| {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    };
    put("host".into(), host);
    put("x-remote-user".into(), &user.username);
    if !user.uid.is_empty() {
        put("x-remote-uid".into(), &user.uid);
    }
    for group in &user.groups {
        put("x-remote-group".into(), group);
    }
    for (key, values) in &user.extra {
        for value in values {
            put(format!("x-remote-extra-{}", escape_extra_key(key)), value);
        }
    }
    headers
}

fn unavailable(message: String) -> ApiError {
    ApiError {
        code: 503,
        reason: "ServiceUnavailable".into(),
        message,
        details: None,
        retry_after: None,
    }
}

/// The TLS client: the front-proxy certificate, the backend verified with `backend`'s CA bundle.
fn connector(front_proxy: &FrontProxy, backend: &Backend) -> Result<TlsConnector, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if backend.insecure_skip_tls_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(crate::tls::unverified_server(&provider))
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let bundle = backend.ca_bundle.as_deref().unwrap_or("");
        for cert in CertificateDer::pem_slice_iter(bundle.as_bytes()).flatten() {
            roots.add(cert).map_err(|e| e.to_string())?;
        }
        builder.with_root_certificates(roots)
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(front_proxy.client.key_der.clone()));
    let config = builder
        .with_client_auth_cert(
            vec![CertificateDer::from(front_proxy.client.cert_der.clone())],
            key,
        )
        .map_err(|e| e.to_string())?;
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Sends `method path` with `body` to the backend at `address` and streams its answer back.
pub async fn forward(
    front_proxy: &FrontProxy,
    backend: &Backend,
    address: &str,
    parts: &http::request::Parts,
    user: &UserInfo,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let host = format!("{}.{}.svc", backend.name, backend.namespace);
    let unreachable = |e: String| unavailable(format!("error trying to reach service: {e}"));
    let connector = connector(front_proxy, backend).map_err(unreachable)?;
    let tcp = TcpStream::connect(address)
        .await
        .map_err(|e| unreachable(format!("dial tcp {address}: {e}")))?;
    let server_name = ServerName::try_from(host.clone()).map_err(|e| unreachable(e.to_string()))?;
    let tls = connector
        .connect(server_name, tcp)
        .await
        .map_err(|e| unreachable(format!("tls: {e}")))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "aggregated API connection ended");
        }
    });
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let mut request = http::Request::builder()
        .method(parts.method.clone())
        .uri(path)
        .body(http_body_util::Full::new(body))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    *request.headers_mut() = backend_headers(&parts.headers, user, &host);
    let answer = sender
        .send_request(request)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let (answer_parts, incoming) = answer.into_parts();
    let mut response = Body::new(incoming).into_response();
    *response.status_mut() = answer_parts.status;
    for (name, value) in &answer_parts.headers {
        if !matches!(
            name,
            &header::CONNECTION | &header::TRANSFER_ENCODING | &header::CONTENT_LENGTH
        ) {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callers_credentials_and_forged_identity_headers_do_not_pass() {
        let mut original = http::HeaderMap::new();
        original.insert("authorization", "Bearer secret".parse().unwrap());
        original.insert("x-remote-user", "system:admin".parse().unwrap());
        original.insert("impersonate-user", "root".parse().unwrap());
        original.insert("accept", "application/json".parse().unwrap());
        let mut user = UserInfo {
            username: "alice".into(),
            groups: vec!["sre".into(), "system:authenticated".into()],
            ..UserInfo::default()
        };
        user.extra
            .insert("acme.com/project".into(), vec!["p1".into()]);
        let sent = backend_headers(&original, &user, "api.ns.svc");
        assert!(sent.get("authorization").is_none());
        assert!(sent.get("impersonate-user").is_none());
        assert_eq!(sent.get_all("x-remote-user").iter().count(), 1);
        assert_eq!(sent["x-remote-user"], "alice");
        assert_eq!(sent.get_all("x-remote-group").iter().count(), 2);
        assert_eq!(sent["x-remote-extra-acme.com%2Fproject"], "p1");
        assert_eq!(sent["accept"], "application/json");
    }
}

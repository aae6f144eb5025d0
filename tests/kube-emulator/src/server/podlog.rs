//! `pods/log`: like the real server, the log comes from the kubelet of the pod's node.
//!
//! The node's `status.addresses` (InternalIP, else Hostname) and
//! `status.daemonEndpoints.kubeletEndpoint.Port` say where; the request is forwarded as
//! `GET /containerLogs/NAMESPACE/POD/CONTAINER?<query>` over HTTPS (HTTP/1.1), the only way a
//! real kubelet serves it, and the answer is streamed back, so `kubectl logs -f` works. The
//! kubelet's certificate is not verified ([`crate::tls::kubelet_connector`]).

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::meta;
use super::request::Query;
use super::resource::StorageKey;
use super::state::Shared;
use super::status::{ApiError, Subject};

/// Where to fetch a container's log from.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSource {
    /// `host:port` of the kubelet.
    pub address: String,
    /// Path and query to request.
    pub path: String,
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Resolves the kubelet endpoint and path for a log request.
pub fn locate(
    shared: &Shared,
    namespace: &str,
    name: &str,
    query: &Query,
) -> Result<LogSource, ApiError> {
    let inner = shared.lock();
    let pods = StorageKey {
        group: String::new(),
        resource: "pods".into(),
    };
    let pod = inner.store.get(&pods, namespace, name).ok_or_else(|| {
        ApiError::not_found(Subject {
            group: "",
            resource: "pods",
            name,
        })
    })?;
    let containers: Vec<String> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let init_containers: Vec<String> = pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let container = match query.get("container") {
        Some(container) if !container.is_empty() => {
            if !containers.contains(&container.to_string())
                && !init_containers.contains(&container.to_string())
            {
                return Err(ApiError::bad_request(format!(
                    "container {container} is not valid for pod {name}"
                )));
            }
            container.to_string()
        }
        _ if containers.len() == 1 => containers[0].clone(),
        _ => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            )));
        }
    };
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let waiting = || {
        ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
        ))
    };
    if node_name.is_empty() {
        return Err(waiting());
    }
    let nodes = StorageKey {
        group: String::new(),
        resource: "nodes".into(),
    };
    let node = inner.store.get(&nodes, "", node_name).ok_or_else(waiting)?;
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let addresses = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let host = ["InternalIP", "Hostname"].iter().find_map(|kind| {
        addresses
            .iter()
            .find(|a| a.get("type").and_then(Value::as_str) == Some(kind))
            .and_then(|a| a.get("address").and_then(Value::as_str))
            .map(str::to_string)
    });
    let (Some(host), true) = (host, port > 0) else {
        return Err(ApiError::bad_request(format!(
            "node {node_name} does not report a kubelet endpoint"
        )));
    };
    let mut params = Vec::new();
    for key in [
        "follow",
        "previous",
        "timestamps",
        "tailLines",
        "limitBytes",
        "sinceSeconds",
        "sinceTime",
    ] {
        if let Some(value) = query.get(key) {
            params.push(format!("{key}={}", encode(value)));
        }
    }
    let mut path = format!(
        "/containerLogs/{}/{}/{}",
        encode(namespace),
        encode(meta::name(pod)),
        encode(&container)
    );
    if !params.is_empty() {
        path = format!("{path}?{}", params.join("&"));
    }
    Ok(LogSource {
        address: format!("{host}:{port}"),
        path,
    })
}

/// Fetches the log and streams it back as `text/plain`.
pub async fn serve(source: LogSource) -> Result<Response, ApiError> {
    let unreachable = |e: std::io::Error| {
        ApiError::internal(format!(
            "error trying to reach the kubelet at {}: {e}",
            source.address
        ))
    };
    let stream = TcpStream::connect(&source.address)
        .await
        .map_err(unreachable)?;
    let host = source
        .address
        .rsplit_once(':')
        .map_or(source.address.as_str(), |(host, _)| host)
        .trim_matches(|c| c == '[' || c == ']');
    let server_name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| unreachable(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    let stream = crate::tls::kubelet_connector()
        .connect(server_name, stream)
        .await
        .map_err(unreachable)?;
    let (read_half, mut write_half) = tokio::io::split(stream);
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        source.path, source.address
    );
    write_half
        .write_all(request.as_bytes())
        .await
        .map_err(unreachable)?;
    let mut reader = BufReader::new(read_half);
    let mut status_line = String::new();
    reader
        .read_line(&mut status_line)
        .await
        .map_err(unreachable)?;
    let code: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(502);
    let mut chunked = false;
    loop {
        let mut header_line = String::new();
        let read = reader
            .read_line(&mut header_line)
            .await
            .map_err(unreachable)?;
        if read == 0 || header_line == "\r\n" || header_line == "\n" {
            break;
        }
        let lower = header_line.to_ascii_lowercase();
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            chunked = true;
        }
    }
    if code >= 400 {
        let mut text = String::new();
        let _ = reader.read_to_string(&mut text).await;
        let text = if chunked { dechunk_text(&text) } else { text };
        return Err(ApiError::bad_request(text.trim().to_string()));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(16);
    tokio::spawn(async move {
        // Keep the write half open until the body is read: a half-close reads as "client gone"
        // to HTTP servers (Go's net/http cancels the request, hyper closes the connection),
        // which would end `follow` streams after the first chunk.
        let _write_half = write_half;
        if chunked {
            loop {
                let mut size_line = String::new();
                match reader.read_line(&mut size_line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let size =
                    usize::from_str_radix(size_line.trim().split(';').next().unwrap_or("0"), 16)
                        .unwrap_or(0);
                if size == 0 {
                    return;
                }
                let mut chunk = vec![0u8; size + 2];
                if reader.read_exact(&mut chunk).await.is_err() {
                    return;
                }
                chunk.truncate(size);
                if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                    return;
                }
            }
        } else {
            let mut buffer = vec![0u8; 8192];
            loop {
                match reader.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if tx
                            .send(Ok(Bytes::copy_from_slice(&buffer[..n])))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut response = (StatusCode::OK, Body::from_stream(stream)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

fn dechunk_text(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.split("\r\n");
    while let Some(size) = lines.next() {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 {
            break;
        }
        if let Some(data) = lines.next() {
            out.push_str(data);
        }
    }
    out
}

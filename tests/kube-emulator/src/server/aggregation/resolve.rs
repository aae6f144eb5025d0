//! Service → endpoint address, as kube-apiserver's `ResolveEndpoint` does with
//! `--enable-aggregator-routing=true` (`k8s.io/apiserver/pkg/util/proxy`): the Service's port
//! with the APIService's port number, then a ready address of an EndpointSlice of that Service
//! (`kubernetes.io/service-name` label) with the port of the same name. Error texts are the real
//! ones, so a broken registration reads the same as on a cluster.

use serde_json::Value;

use super::Backend;
use crate::server::resource::StorageKey;
use crate::server::state::Inner;

/// Label tying an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// Why no endpoint could be picked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No such Service.
    #[error("service \"{0}\" not found")]
    ServiceNotFound(String),
    /// An ExternalName Service has no endpoints to route to.
    #[error("unsupported service type \"ExternalName\"")]
    ExternalName,
    /// The Service has no port with the APIService's number.
    #[error("no service port {port} found for service \"{name}\"")]
    NoPort {
        /// The port asked for.
        port: i64,
        /// The Service.
        name: String,
    },
    /// No ready endpoint serves that port.
    #[error("no endpoints available for service \"{0}\"")]
    NoEndpoints(String),
}

fn key(group: &str, resource: &str) -> StorageKey {
    StorageKey {
        group: group.into(),
        resource: resource.into(),
    }
}

/// `host:port` to dial for `backend`.
pub fn endpoint(inner: &Inner, backend: &Backend) -> Result<String, ResolveError> {
    let service = inner
        .store
        .get(&key("", "services"), &backend.namespace, &backend.name)
        .ok_or_else(|| ResolveError::ServiceNotFound(backend.name.clone()))?;
    if service.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName") {
        return Err(ResolveError::ExternalName);
    }
    let port_name = service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|p| p.get("port").and_then(Value::as_i64) == Some(backend.port))
        .map(|p| {
            p.get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        })
        .ok_or_else(|| ResolveError::NoPort {
            port: backend.port,
            name: backend.name.clone(),
        })?;
    let slices = inner.store.list(
        &key("discovery.k8s.io", "endpointslices"),
        Some(&backend.namespace),
    );
    for slice in slices {
        if slice
            .pointer(&format!(
                "/metadata/labels/{}",
                SERVICE_NAME_LABEL.replace('/', "~1")
            ))
            .and_then(Value::as_str)
            != Some(backend.name.as_str())
        {
            continue;
        }
        let Some(port) = slice
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("name").and_then(Value::as_str).unwrap_or("") == port_name)
            .and_then(|p| p.get("port").and_then(Value::as_i64))
        else {
            continue;
        };
        let ready = slice
            .get("endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            // `ready` unset means ready (the API's documented meaning).
            .filter(|e| e.pointer("/conditions/ready").and_then(Value::as_bool) != Some(false));
        for endpoint in ready {
            if let Some(address) = endpoint
                .get("addresses")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(Value::as_str)
            {
                return Ok(if address.contains(':') {
                    format!("[{address}]:{port}")
                } else {
                    format!("{address}:{port}")
                });
            }
        }
    }
    Err(ResolveError::NoEndpoints(backend.name.clone()))
}

//! API aggregation, as kube-aggregator does it inside kube-apiserver: an `APIService`
//! (`apiregistration.k8s.io/v1`) with a `spec.service` hands `/apis/<group>/<version>/…` to that
//! Service's backend. The request is authenticated and authorized here first (RBAC on the
//! aggregated resource, like any other), then proxied ([`proxy`]) with the caller's credentials
//! stripped, the front-proxy client certificate presented and the user named in `X-Remote-*`
//! headers; the backend is verified with the APIService's `caBundle`. How to believe those headers
//! is published in `kube-system/extension-apiserver-authentication` ([`publish`]), and
//! [`availability`] keeps each APIService's `Available` condition, as the availability controller
//! does.
//!
//! Service resolution: the emulator runs no kube-proxy, so a ClusterIP leads nowhere; the proxy
//! resolves Service → EndpointSlice itself, which is what kube-apiserver does with
//! `--enable-aggregator-routing=true` ([`resolve`]). The emulator has no EndpointSlice controller:
//! the slices of a Service come from whoever manages them (a selector-less Service pointing at a
//! process on loopback, in the tests).

pub mod availability;
pub mod proxy;
pub mod resolve;

use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::identity::UserInfo;
use super::request::Route;
use super::state::Shared;
use super::status::ApiError;

use super::meta;
use super::objects;
use super::resource::StorageKey;
use super::state::Inner;
use crate::cluster_ca::{CertificateError, ClusterCa, ServingCertificate};

/// Common name of the front-proxy client certificate (kubeadm's `front-proxy-client`).
pub const FRONT_PROXY_CLIENT_CN: &str = "front-proxy-client";
/// Namespace and name of the ConfigMap extension API servers read.
pub const AUTHENTICATION_CONFIG_MAP: (&str, &str) =
    ("kube-system", "extension-apiserver-authentication");
/// Field manager of the aggregator's writes.
pub const MANAGER: &str = "kube-apiserver";

/// The front proxy's identity: the request-header CA and the client certificate it signed
/// (kube-apiserver's `--requestheader-client-ca-file` and `--proxy-client-cert-file`).
pub struct FrontProxy {
    /// The request-header CA certificate, PEM.
    pub ca_pem: String,
    /// The client certificate (CN [`FRONT_PROXY_CLIENT_CN`]) and its key.
    pub client: ServingCertificate,
}

impl std::fmt::Debug for FrontProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrontProxy").finish_non_exhaustive()
    }
}

impl FrontProxy {
    /// A fresh CA (`CN=front-proxy-ca`, as kubeadm names it) and client certificate.
    pub fn generate() -> Result<FrontProxy, CertificateError> {
        let ca = ClusterCa::generate_named("front-proxy-ca")?;
        Ok(FrontProxy {
            ca_pem: ca.cert_pem(),
            client: ca.issue_client(FRONT_PROXY_CLIENT_CN)?,
        })
    }
}

fn key(group: &str, resource: &str) -> StorageKey {
    StorageKey {
        group: group.into(),
        resource: resource.into(),
    }
}

/// Creates `kube-system/extension-apiserver-authentication` with the request-header keys
/// kube-apiserver writes (its `client-ca-file` key is absent: the emulator does not authenticate
/// client certificates, as a server without `--client-ca-file` writes none).
pub fn publish(inner: &mut Inner, front_proxy: &FrontProxy) {
    let Some(def) = inner.registry.find("", "v1", "configmaps").cloned() else {
        return;
    };
    let (namespace, name) = AUTHENTICATION_CONFIG_MAP;
    let map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {
            "requestheader-client-ca-file": front_proxy.ca_pem,
            "requestheader-allowed-names": json!([FRONT_PROXY_CLIENT_CN]).to_string(),
            "requestheader-username-headers": json!(["X-Remote-User"]).to_string(),
            "requestheader-uid-headers": json!(["X-Remote-Uid"]).to_string(),
            "requestheader-group-headers": json!(["X-Remote-Group"]).to_string(),
            "requestheader-extra-headers-prefix": json!(["X-Remote-Extra-"]).to_string(),
        },
    });
    if let Err(error) = objects::create_internal(inner, &def, namespace, map, MANAGER) {
        tracing::error!(?error, "cannot publish {namespace}/{name}");
    }
}

/// Where an APIService sends its group-version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// `spec.service.namespace`.
    pub namespace: String,
    /// `spec.service.name`.
    pub name: String,
    /// `spec.service.port` (default 443).
    pub port: i64,
    /// `spec.caBundle`, PEM, verifying the backend's serving certificate.
    pub ca_bundle: Option<String>,
    /// `spec.insecureSkipTLSVerify`.
    pub insecure_skip_tls_verify: bool,
}

/// The APIService named `<version>.<group>`.
pub fn api_service<'a>(inner: &'a Inner, group: &str, version: &str) -> Option<&'a Value> {
    inner.store.get(
        &key("apiregistration.k8s.io", "apiservices"),
        "",
        &format!("{version}.{group}"),
    )
}

/// The backend of an APIService; `None` for a local one (no `spec.service`: served here).
pub fn backend_of(service: &Value) -> Option<Backend> {
    let target = service.pointer("/spec/service")?.as_object()?;
    let text = |k: &str| {
        target
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let ca_bundle = service
        .pointer("/spec/caBundle")
        .and_then(Value::as_str)
        .and_then(|b64| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(b64).ok()
        })
        .map(|pem| String::from_utf8_lossy(&pem).into_owned());
    Some(Backend {
        namespace: text("namespace"),
        name: text("name"),
        port: target.get("port").and_then(Value::as_i64).unwrap_or(443),
        ca_bundle,
        insecure_skip_tls_verify: service
            .pointer("/spec/insecureSkipTLSVerify")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// The proxied backend of `group/version`, if an APIService with a service names it and the
/// group-version is not one the emulator serves itself.
pub fn remote_backend(inner: &Inner, group: &str, version: &str) -> Option<Backend> {
    let served_here = inner
        .registry
        .group_versions()
        .into_iter()
        .any(|(g, v)| g == group && v == version);
    if group.is_empty() || served_here {
        return None;
    }
    backend_of(api_service(inner, group, version)?)
}

/// Groups and versions registered by APIServices with a service (remote ones), sorted.
pub fn remote_group_versions(inner: &Inner) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = inner
        .store
        .list(&key("apiregistration.k8s.io", "apiservices"), None)
        .into_iter()
        .filter(|s| !meta::is_deleting(s) && backend_of(s).is_some())
        .filter_map(|s| {
            let group = s.pointer("/spec/group")?.as_str()?.to_string();
            let version = s.pointer("/spec/version")?.as_str()?.to_string();
            Some((group, version))
        })
        .filter(|(g, v)| !inner.registry.serves_builtin(g, v))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The backend a request goes to, when its group-version is an aggregated one.
pub fn remote_route(shared: &Shared, route: &Route) -> Option<Backend> {
    let inner = shared.lock();
    match route {
        Route::ResourceList(group, version) => remote_backend(&inner, group, version),
        Route::Resource(path) => remote_backend(&inner, &path.group, &path.version),
        _ => None,
    }
}

/// Largest request body passed to an aggregated server.
const MAX_PROXIED_BODY: usize = 3 * 1024 * 1024;

/// Proxies an authenticated, authorized request to `backend`.
pub async fn proxy_request(
    shared: &Shared,
    backend: &Backend,
    parts: http::request::Parts,
    body: axum::body::Body,
    user: &UserInfo,
) -> Response {
    let address = match resolve::endpoint(&shared.lock(), backend) {
        Ok(address) => address,
        Err(error) => {
            return ApiError {
                code: 503,
                reason: "ServiceUnavailable".into(),
                message: format!("service unavailable: {error}"),
                details: None,
                retry_after: None,
            }
            .into_response();
        }
    };
    let body = match axum::body::to_bytes(body, MAX_PROXIED_BODY).await {
        Ok(body) => body,
        Err(_) => {
            return ApiError::bad_request(format!(
                "the request body is larger than {MAX_PROXIED_BODY} bytes"
            ))
            .into_response();
        }
    };
    match proxy::forward(&shared.front_proxy, backend, &address, &parts, user, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn remote_groups(inner: &Inner) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (group, version) in remote_group_versions(inner) {
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, versions)) => versions.push(version),
            None => groups.push((group, vec![version])),
        }
    }
    for (_, versions) in groups.iter_mut() {
        versions.sort_by(|a, b| super::discovery::compare_versions(a, b));
    }
    groups
}

/// `/apis` with the aggregated groups added, as kube-aggregator merges them.
pub fn with_remote_groups(mut list: Value, inner: &Inner) -> Value {
    if let Some(groups) = list.get_mut("groups").and_then(Value::as_array_mut) {
        for (group, versions) in remote_groups(inner) {
            if !groups.iter().any(|g| g["name"] == group.as_str()) {
                groups.push(super::discovery::group_json(&group, &versions));
            }
        }
    }
    list
}

/// `/apis/<group>` for an aggregated group.
pub fn remote_group(inner: &Inner, name: &str) -> Option<Value> {
    remote_groups(inner)
        .into_iter()
        .find(|(g, _)| g == name)
        .map(|(group, versions)| {
            let mut value = super::discovery::group_json(&group, &versions);
            value["kind"] = json!("APIGroup");
            value["apiVersion"] = json!("v1");
            value
        })
}

/// Aggregated discovery (`apidiscovery.k8s.io`) for `/apis` with each aggregated group-version
/// whose backend passed its last availability check, from the `APIResourceList` it served.
pub fn with_remote_discovery(mut document: Value, inner: &Inner, shared: &Shared) -> Value {
    let cache = shared
        .aggregated_discovery
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let Some(items) = document.get_mut("items").and_then(Value::as_array_mut) else {
        return document;
    };
    for (group, versions) in remote_groups(inner) {
        let versions: Vec<Value> = versions
            .iter()
            .filter_map(|version| {
                let list = cache.get(&format!("{version}.{group}"))?;
                Some(json!({
                    "version": version,
                    "resources": discovery_resources(list, &group, version),
                    "freshness": "Current",
                }))
            })
            .collect();
        if !versions.is_empty() {
            items.push(json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions}));
        }
    }
    document
}

/// `APIResourceList.resources` → the resources of an `APIVersionDiscovery`.
fn discovery_resources(list: &Value, group: &str, version: &str) -> Vec<Value> {
    let entries: Vec<&Value> = list
        .get("resources")
        .and_then(Value::as_array)
        .map(|r| r.iter().collect())
        .unwrap_or_default();
    let mut out: Vec<Value> = Vec::new();
    for entry in &entries {
        let name = entry["name"].as_str().unwrap_or("");
        if name.contains('/') {
            continue;
        }
        let subresources: Vec<Value> = entries
            .iter()
            .filter_map(|sub| {
                let sub_name = sub["name"].as_str()?.strip_prefix(&format!("{name}/"))?;
                Some(json!({
                    "subresource": sub_name,
                    "responseKind": {"group": group, "version": version, "kind": sub["kind"]},
                    "verbs": sub["verbs"],
                }))
            })
            .collect();
        let mut resource = json!({
            "resource": name,
            "responseKind": {"group": group, "version": version, "kind": entry["kind"]},
            "scope": if entry["namespaced"].as_bool().unwrap_or(false) { "Namespaced" } else { "Cluster" },
            "singularResource": entry["singularName"],
            "verbs": entry["verbs"],
        });
        if !subresources.is_empty() {
            resource["subresources"] = Value::Array(subresources);
        }
        out.push(resource);
    }
    out
}

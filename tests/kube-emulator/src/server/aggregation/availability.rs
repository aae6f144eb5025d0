//! The APIService availability controller (`kube-aggregator/pkg/controllers/status`): every
//! few seconds each APIService gets an `Available` condition — `Local` for one served here,
//! otherwise the result of resolving its Service and fetching `/apis/<group>/<version>` from the
//! backend as `system:kube-aggregator` (group `system:masters`) through the front proxy, within 5
//! seconds. The discovery document a passing backend returned is kept for aggregated discovery.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Backend, backend_of, proxy, resolve};
use crate::server::auth::identity::{SYSTEM_MASTERS, UserInfo};
use crate::server::meta;
use crate::server::resource::StorageKey;
use crate::server::state::Shared;

/// How long a backend has to answer the discovery check (the real controller's timeout).
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// User the check runs as.
pub const AGGREGATOR_USER: &str = "system:kube-aggregator";

fn apiservices() -> StorageKey {
    StorageKey {
        group: "apiregistration.k8s.io".into(),
        resource: "apiservices".into(),
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq)]
struct Verdict {
    available: bool,
    reason: &'static str,
    message: String,
    discovery: Option<Value>,
}

/// Checks every APIService every `interval` until shutdown.
pub async fn run(shared: Arc<Shared>, interval: Duration) {
    loop {
        let services: Vec<Value> = shared
            .lock()
            .store
            .list(&apiservices(), None)
            .into_iter()
            .filter(|s| !meta::is_deleting(s))
            .cloned()
            .collect();
        for service in services {
            let verdict = check(&shared, &service).await;
            record(&shared, &service, verdict);
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shared.shutdown.cancelled() => return,
        }
    }
}

async fn check(shared: &Shared, service: &Value) -> Verdict {
    let Some(backend) = backend_of(service) else {
        return Verdict {
            available: true,
            reason: "Local",
            message: "Local APIServices are always available".into(),
            discovery: None,
        };
    };
    let address = match resolve::endpoint(&shared.lock(), &backend) {
        Ok(address) => address,
        Err(resolve::ResolveError::ServiceNotFound(_)) => {
            return failed(
                "ServiceNotFound",
                format!(
                    "service/{} in {:?} is not present",
                    backend.name, backend.namespace
                ),
            );
        }
        Err(error @ resolve::ResolveError::NoPort { .. }) => {
            return failed("ServicePortError", error.to_string());
        }
        Err(error) => {
            return failed(
                "MissingEndpoints",
                format!(
                    "endpoints for service/{} in {:?}: {error}",
                    backend.name, backend.namespace
                ),
            );
        }
    };
    let group = meta::str_at(service, &["spec", "group"]).unwrap_or("");
    let version = meta::str_at(service, &["spec", "version"]).unwrap_or("");
    let url = format!("https://{address}/apis/{group}/{version}");
    match tokio::time::timeout(
        CHECK_TIMEOUT,
        fetch(shared, &backend, &address, group, version),
    )
    .await
    {
        Ok(Ok(discovery)) => Verdict {
            available: true,
            reason: "Passed",
            message: "all checks passed".into(),
            discovery: Some(discovery),
        },
        Ok(Err(error)) => failed(
            "FailedDiscoveryCheck",
            format!("failing or missing response from {url}: {error}"),
        ),
        Err(_) => failed(
            "FailedDiscoveryCheck",
            format!("failing or missing response from {url}: timed out"),
        ),
    }
}

fn failed(reason: &'static str, message: String) -> Verdict {
    Verdict {
        available: false,
        reason,
        message,
        discovery: None,
    }
}

async fn fetch(
    shared: &Shared,
    backend: &Backend,
    address: &str,
    group: &str,
    version: &str,
) -> Result<Value, String> {
    let (parts, ()) = http::Request::get(format!("/apis/{group}/{version}"))
        .header(http::header::ACCEPT, "application/json")
        .body(())
        .map_err(|e| e.to_string())?
        .into_parts();
    let user = UserInfo {
        username: AGGREGATOR_USER.into(),
        groups: vec![SYSTEM_MASTERS.into()],
        ..UserInfo::default()
    };
    let response = proxy::forward(
        &shared.front_proxy,
        backend,
        address,
        &parts,
        &user,
        axum::body::Bytes::new(),
    )
    .await
    .map_err(|e| e.message)?;
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 4 * 1024 * 1024)
        .await
        .map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!(
            "bad status from the discovery check: {}",
            status.as_u16()
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("discovery document: {e}"))
}

/// Writes the condition when it changed; keeps the discovery document for `/apis`.
fn record(shared: &Shared, service: &Value, verdict: Verdict) {
    let name = meta::name(service).to_string();
    {
        let mut cache = shared
            .aggregated_discovery
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match &verdict.discovery {
            Some(document) => {
                cache.insert(name.clone(), document.clone());
            }
            None => {
                cache.remove(&name);
            }
        }
    }
    let mut inner = shared.lock();
    let Some(current) = inner.store.get(&apiservices(), "", &name).cloned() else {
        return;
    };
    let status = if verdict.available { "True" } else { "False" };
    let old = current
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == "Available"))
        .cloned();
    if let Some(old) = &old
        && old["status"] == status
        && old["reason"] == verdict.reason
        && old["message"] == verdict.message.as_str()
    {
        return;
    }
    let transition = match &old {
        Some(old) if old["status"] == status => old["lastTransitionTime"].clone(),
        _ => json!(meta::now_rfc3339()),
    };
    let mut updated = current;
    updated["status"] = json!({"conditions": [{
        "type": "Available",
        "status": status,
        "lastTransitionTime": transition,
        "reason": verdict.reason,
        "message": verdict.message,
    }]});
    inner.store.insert(&apiservices(), updated);
}

//! The in-memory Kubernetes API server: routing ([`handler`], [`request`]), discovery and
//! OpenAPI, the object store and watches, patching and server-side apply, validation,
//! tables and garbage collection, one module each.

pub mod admission;
pub mod aggregation;
pub mod apply;
pub mod auth;
pub mod builtin;
pub mod cel;
pub mod controllers;
pub mod convert;
pub mod crd;
pub mod discovery;
pub mod fieldset;
pub mod gc;
pub mod handler;
pub mod meta;
pub mod objects;
pub mod openapi;
pub mod owners;
pub mod podlog;
pub mod protobuf;
pub mod protobuf_schema;
pub mod reply;
pub mod request;
pub mod resource;
pub mod root_ca;
pub mod schema;
pub mod selector;
pub mod state;
pub mod status;
pub mod store;
pub mod strategic;
pub mod subresources;
pub mod table;
pub mod watch;

use std::sync::Arc;

use serde_json::json;

use self::resource::StorageKey;
use self::state::Shared;

/// Namespaces every cluster starts with.
pub const INITIAL_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates what a fresh cluster has: the initial namespaces with their default
/// ServiceAccounts and the `kubernetes` Service in `default`.
pub fn bootstrap(shared: &Shared) {
    let mut inner = shared.lock();
    let namespaces = StorageKey {
        group: String::new(),
        resource: "namespaces".into(),
    };
    for name in INITIAL_NAMESPACES {
        let namespace = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "uid": uuid::Uuid::new_v4().to_string(),
                "creationTimestamp": meta::now_rfc3339(),
                "labels": {"kubernetes.io/metadata.name": name},
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        });
        inner.store.insert(&namespaces, namespace);
        objects::create_default_service_account(&mut inner, name);
    }
    let ip = inner.ips.allocate();
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "uid": uuid::Uuid::new_v4().to_string(),
            "creationTimestamp": meta::now_rfc3339(),
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": ip,
            "clusterIPs": [ip],
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
            "sessionAffinity": "None",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
        },
        "status": {"loadBalancer": {}},
    });
    inner.store.insert(
        &StorageKey {
            group: String::new(),
            resource: "services".into(),
        },
        service,
    );
    root_ca::publish(&mut inner, &shared.config.root_ca_pem);
    aggregation::publish(&mut inner, &shared.front_proxy);
    bootstrap_rbac(&mut inner);
}

/// Stores the default RBAC roles and bindings of a fresh cluster.
fn bootstrap_rbac(inner: &mut state::Inner) {
    let rbac = |resource: &str| StorageKey {
        group: "rbac.authorization.k8s.io".into(),
        resource: resource.into(),
    };
    let stamped = |mut object: serde_json::Value| {
        meta::set_meta(&mut object, "uid", json!(uuid::Uuid::new_v4().to_string()));
        meta::set_meta(&mut object, "creationTimestamp", json!(meta::now_rfc3339()));
        object
    };
    for role in auth::bootstrap_policy::cluster_roles() {
        inner.store.insert(&rbac("clusterroles"), stamped(role));
    }
    for binding in auth::bootstrap_policy::cluster_role_bindings() {
        inner
            .store
            .insert(&rbac("clusterrolebindings"), stamped(binding));
    }
    for role in auth::bootstrap_policy::kube_system_roles() {
        inner.store.insert(&rbac("roles"), stamped(role));
    }
}

/// The axum router serving the whole API.
pub fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .fallback(handler::dispatch)
        .with_state(shared)
}

//! Conformance: API aggregation as kube-apiserver does it. `kube-system/
//! extension-apiserver-authentication` carries the request-header settings (checked on both
//! targets). On the emulator, an `APIService` pointing at a selector-less Service whose
//! EndpointSlice names a test backend on loopback: requests are authorized by RBAC first, then
//! proxied with the caller's token removed, forged `X-Remote-*` headers replaced by the
//! authenticated user, over TLS with the front-proxy client certificate (the backend requires
//! it) and the backend verified with the `caBundle`; `/apis` lists the group; the APIService's
//! `Available` condition follows the backend. A real cluster cannot reach a backend on the test
//! host's loopback, so those tests run on the emulator only.

mod common;

use std::sync::Arc;

use axum::extract::Request;
use axum::routing::get;
use base64::Engine;
use common::{TestEnv, eventually, raw_json, setup};
use http::{Method, StatusCode};
use kube_emulator::cluster_ca::ClusterCa;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};

const GROUP: &str = "echo.conformance.test";
const VERSION: &str = "v1";

async fn authentication_config(env: &TestEnv) -> Value {
    let answer = env
        .get_json("/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication")
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.json["data"].clone()
}

#[tokio::test]
async fn the_request_header_settings_are_published_for_extension_servers() {
    let env = setup().await;
    let data = authentication_config(&env).await;
    let ca = data["requestheader-client-ca-file"].as_str().unwrap_or("");
    assert!(ca.contains("BEGIN CERTIFICATE"), "{data}");
    for key in [
        "requestheader-allowed-names",
        "requestheader-username-headers",
        "requestheader-group-headers",
        "requestheader-extra-headers-prefix",
    ] {
        let list: Vec<String> = serde_json::from_str(data[key].as_str().unwrap_or("x"))
            .unwrap_or_else(|e| panic!("{key} is a JSON list of strings: {e}: {data}"));
        if key != "requestheader-allowed-names" {
            assert!(!list.is_empty(), "{key}: {data}");
        }
    }
    let users: Vec<String> =
        serde_json::from_str(data["requestheader-username-headers"].as_str().unwrap()).unwrap();
    assert_eq!(users, ["X-Remote-User"]);
    env.finish().await;
}

/// A backend that requires a client certificate of the request-header CA and echoes what it got.
async fn start_backend(request_header_ca: &str, namespace: &str) -> (u16, String) {
    let serving_ca = ClusterCa::generate_named("echo-ca").unwrap();
    let host = format!("echo.{namespace}.svc");
    let serving = serving_ca.issue_serving(&[host.as_str()]).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(request_header_ca.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(serving.cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(serving.key_der.clone())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let echo = |request: Request| async move {
        let headers: serde_json::Map<String, Value> = request
            .headers()
            .keys()
            .map(|name| {
                let values: Vec<Value> = request
                    .headers()
                    .get_all(name)
                    .iter()
                    .map(|v| json!(v.to_str().unwrap_or("")))
                    .collect();
                (name.to_string(), Value::Array(values))
            })
            .collect();
        axum::Json(json!({"path": request.uri().to_string(), "headers": headers}))
    };
    let router = axum::Router::new()
        .route(
            &format!("/apis/{GROUP}/{VERSION}"),
            get(|| async {
                axum::Json(json!({"kind": "APIResourceList", "apiVersion": "v1",
                    "groupVersion": format!("{GROUP}/{VERSION}"),
                    "resources": [{"name": "echoes", "singularName": "echo", "namespaced": true,
                                   "kind": "Echo", "verbs": ["get"]}]}))
            }),
        )
        .fallback(echo);
    let listener = kube_emulator::tls::TlsListener::new(tcp, acceptor);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (
        port,
        base64::engine::general_purpose::STANDARD.encode(serving_ca.cert_pem()),
    )
}

/// Registers the backend: selector-less Service, its EndpointSlice, the APIService.
async fn register(env: &TestEnv, port: u16, ca_bundle: &str) {
    let ns = &env.namespace;
    env.admin_create(
        &format!("/api/v1/namespaces/{ns}/services"),
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo"},
                "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]}}),
    )
    .await;
    env.admin_create(
        &format!("/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices"),
        &json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "echo-1", "labels": {"kubernetes.io/service-name": "echo"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}],
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}),
    )
    .await;
    env.admin_create(
        "/apis/apiregistration.k8s.io/v1/apiservices",
        &json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                "metadata": {"name": format!("{VERSION}.{GROUP}")},
                "spec": {"group": GROUP, "version": VERSION,
                         "service": {"namespace": ns, "name": "echo", "port": 443},
                         "caBundle": ca_bundle, "groupPriorityMinimum": 1000,
                         "versionPriority": 15}}),
    )
    .await;
}

async fn available(env: &TestEnv) -> Value {
    let answer = env
        .get_json(&format!(
            "/apis/apiregistration.k8s.io/v1/apiservices/{VERSION}.{GROUP}"
        ))
        .await;
    answer.json["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Available"))
        .cloned()
        .unwrap_or(Value::Null)
}

async fn unregister(env: &TestEnv) {
    let answer = raw_json(
        &env.client,
        Method::DELETE,
        &format!("/apis/apiregistration.k8s.io/v1/apiservices/{VERSION}.{GROUP}"),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
}

#[tokio::test]
async fn requests_are_proxied_as_the_authenticated_user_with_the_front_proxy_certificate() {
    let env = setup().await;
    if common::target() != common::Target::Emulator {
        env.finish().await;
        return;
    }
    let data = authentication_config(&env).await;
    let ca = data["requestheader-client-ca-file"]
        .as_str()
        .unwrap()
        .to_string();
    let (port, bundle) = start_backend(&ca, &env.namespace).await;
    register(&env, port, &bundle).await;
    let ns = env.namespace.clone();
    let condition = eventually("the APIService becomes Available", || async {
        let c = available(&env).await;
        (c["status"] == "True").then_some(c)
    })
    .await;
    assert_eq!(condition["reason"], "Passed", "{condition}");

    // A ServiceAccount allowed to get echoes, sending a forged identity header.
    env.create_service_account("reader").await;
    env.admin_create(
        &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles"),
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "echo-reader"},
                "rules": [{"apiGroups": [GROUP], "resources": ["echoes"], "verbs": ["get"]}]}),
    )
    .await;
    env.admin_create(
        &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "echo-reader"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "echo-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}]}),
    )
    .await;
    let token = env.token_for("reader", None).await;
    let reader = env.client_as(Some(&token)).await;
    let request = http::Request::get(format!(
        "/apis/{GROUP}/{VERSION}/namespaces/{ns}/echoes/one?x=1"
    ))
    .header("X-Remote-User", "system:admin")
    .header("X-Remote-Group", "system:masters")
    .body(Vec::new())
    .unwrap();
    let answer: Value = reader.request(request).await.expect("proxied");
    let headers = &answer["headers"];
    assert_eq!(
        answer["path"],
        format!("/apis/{GROUP}/{VERSION}/namespaces/{ns}/echoes/one?x=1")
    );
    assert_eq!(
        headers["x-remote-user"],
        json!([format!("system:serviceaccount:{ns}:reader")]),
        "{answer}"
    );
    let groups = headers["x-remote-group"].as_array().unwrap();
    assert!(groups.contains(&json!("system:authenticated")), "{answer}");
    assert!(!groups.contains(&json!("system:masters")), "{answer}");
    assert!(headers.get("authorization").is_none(), "{answer}");
    assert!(
        headers
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("x-remote-extra-authentication.kubernetes.io")),
        "{answer}"
    );

    // RBAC decides before the proxy: no get on echoes, the real 403.
    env.create_service_account("stranger").await;
    let token = env.token_for("stranger", None).await;
    let stranger = env.client_as(Some(&token)).await;
    let refused = raw_json(
        &stranger,
        Method::GET,
        &format!("/apis/{GROUP}/{VERSION}/namespaces/{ns}/echoes/one"),
        None,
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert_eq!(
        refused.json["message"],
        format!(
            "echoes.{GROUP} \"one\" is forbidden: User \"system:serviceaccount:{ns}:stranger\" cannot get resource \"echoes\" in API group \"{GROUP}\" in the namespace \"{ns}\""
        )
    );

    // Discovery lists the aggregated group.
    let groups = env.get_json("/apis").await;
    assert!(
        groups.json["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == GROUP),
        "{}",
        groups.text
    );
    let list = env.get_json(&format!("/apis/{GROUP}/{VERSION}")).await;
    assert_eq!(list.json["resources"][0]["name"], "echoes", "{}", list.text);
    unregister(&env).await;
    env.finish().await;
}

#[tokio::test]
async fn an_apiservice_whose_service_is_missing_is_not_available() {
    let env = setup().await;
    if common::target() != common::Target::Emulator {
        env.finish().await;
        return;
    }
    env.admin_create(
        "/apis/apiregistration.k8s.io/v1/apiservices",
        &json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                "metadata": {"name": format!("{VERSION}.{GROUP}")},
                "spec": {"group": GROUP, "version": VERSION,
                         "service": {"namespace": env.namespace, "name": "absent", "port": 443},
                         "groupPriorityMinimum": 1000, "versionPriority": 15}}),
    )
    .await;
    let condition = eventually("the APIService is marked unavailable", || async {
        let c = available(&env).await;
        (c["status"] == "False").then_some(c)
    })
    .await;
    assert_eq!(condition["reason"], "ServiceNotFound", "{condition}");
    // (Requests to it answer 503, which kube::Client retries with backoff for minutes: not
    // asserted here.)
    unregister(&env).await;
    env.finish().await;
}

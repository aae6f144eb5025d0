//! Shared helpers of the conformance tests: pick the API server (the emulator, or a real
//! cluster with `KUBE_CONFORMANCE_REAL_CLUSTER=1` and KUBECONFIG), make a throwaway
//! namespace, send raw requests, and poll for asynchronous outcomes.
//!
//! Every test is written against the Kubernetes API conventions, so a difference between
//! the emulator and a real cluster shows up as a failing test on one of them.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use http::{HeaderMap, Method, Request, StatusCode};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use kube_emulator::{Emulator, EmulatorOptions};
use serde_json::{Value, json};

/// Which API server the tests talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A fresh in-memory emulator per test.
    Emulator,
    /// The cluster of the current KUBECONFIG.
    RealCluster,
}

/// The emulator unless `KUBE_CONFORMANCE_REAL_CLUSTER=1`.
pub fn target() -> Target {
    if std::env::var("KUBE_CONFORMANCE_REAL_CLUSTER").as_deref() == Ok("1") {
        Target::RealCluster
    } else {
        Target::Emulator
    }
}

/// A test's API server connection and its own namespace.
pub struct TestEnv {
    /// Client for the target.
    pub client: Client,
    /// The throwaway namespace.
    pub namespace: String,
    /// The emulator, when it is the target.
    pub emulator: Option<Emulator>,
    /// Deletes the namespace and the CRDs the test installed when the test panics.
    pub guard: CleanupGuard,
}

/// Where a [`CleanupGuard`] reconnects from: its own runtime must build its own client, since
/// the test's runtime is unwinding (and, with the emulator in it, cannot serve requests).
#[derive(Debug, Clone)]
pub enum Reconnect {
    /// The current KUBECONFIG (a real cluster).
    Kubeconfig,
    /// This kubeconfig YAML (an emulator served by another runtime).
    Yaml(String),
    /// Nothing outlives the test: an emulator inside the test's own runtime.
    Nothing,
}

/// Cleans up after a test that did not reach [`TestEnv::finish`] (it panicked): deletes its
/// namespace and the CRDs it installed, on a thread of its own, so a failing test leaves
/// nothing behind on a real cluster.
#[derive(Debug)]
pub struct CleanupGuard {
    reconnect: Reconnect,
    namespace: String,
    crds: std::sync::Mutex<Vec<String>>,
    disarmed: bool,
}

impl CleanupGuard {
    fn new(reconnect: Reconnect, namespace: &str) -> CleanupGuard {
        CleanupGuard {
            reconnect,
            namespace: namespace.to_string(),
            crds: std::sync::Mutex::new(Vec::new()),
            disarmed: false,
        }
    }

    /// Remembers a CRD to delete.
    pub fn track_crd(&self, name: &str) {
        let mut crds = self.crds.lock().unwrap_or_else(|p| p.into_inner());
        if !crds.iter().any(|c| c == name) {
            crds.push(name.to_string());
        }
    }

    /// Forgets a CRD the test deleted itself.
    pub fn forget_crd(&self, name: &str) {
        self.crds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|c| c != name);
    }

    fn crds(&self) -> Vec<String> {
        self.crds.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Deletes CRDs then the namespace, ignoring what is already gone.
async fn delete_leftovers(client: &Client, namespace: &str, crds: &[String]) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in crds {
        let _ = api.delete(name, &DeleteParams::default()).await;
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces.delete(namespace, &DeleteParams::default()).await;
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        if self.disarmed {
            return;
        }
        let reconnect = self.reconnect.clone();
        if matches!(reconnect, Reconnect::Nothing) {
            return;
        }
        let namespace = self.namespace.clone();
        let crds = self.crds();
        let cleaner = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let client = match reconnect {
                    Reconnect::Yaml(yaml) => client_from_yaml(&yaml).await,
                    _ => Client::try_default().await.ok(),
                };
                match client {
                    Some(client) => delete_leftovers(&client, &namespace, &crds).await,
                    None => eprintln!("cleanup guard: cannot reconnect to delete {namespace}"),
                }
            });
        });
        let _ = cleaner.join();
    }
}

/// A client for a kubeconfig given as YAML.
pub async fn client_from_yaml(yaml: &str) -> Option<Client> {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(yaml).ok()?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .ok()?;
    Client::try_from(config).ok()
}

/// An answer to a raw request.
#[derive(Debug)]
pub struct RawResponse {
    /// HTTP status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body parsed as JSON (Null when it is not JSON).
    pub json: Value,
    /// Body as text.
    pub text: String,
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Starts (or connects to) the target and creates a namespace for the test.
pub async fn setup() -> TestEnv {
    setup_with(EmulatorOptions::default()).await
}

/// Like [`setup`] with emulator options (ignored for a real cluster).
pub async fn setup_with(options: EmulatorOptions) -> TestEnv {
    let (client, emulator, reconnect) = match target() {
        Target::Emulator => {
            let emulator = Emulator::start_with(options)
                .await
                .expect("emulator starts");
            (emulator.client().await, Some(emulator), Reconnect::Nothing)
        }
        Target::RealCluster => (
            Client::try_default()
                .await
                .expect("KUBECONFIG points at a cluster"),
            None,
            Reconnect::Kubeconfig,
        ),
    };
    setup_on(client, emulator, reconnect).await
}

/// A test environment on an API server the caller connected to.
pub async fn setup_on(client: Client, emulator: Option<Emulator>, reconnect: Reconnect) -> TestEnv {
    let namespace = unique("conformance");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let object: Namespace =
        serde_json::from_value(json!({"metadata": {"name": namespace}})).expect("namespace");
    namespaces
        .create(&PostParams::default(), &object)
        .await
        .expect("namespace created");
    TestEnv {
        client,
        guard: CleanupGuard::new(reconnect, &namespace),
        namespace,
        emulator,
    }
}

impl TestEnv {
    /// A name unique to this run.
    pub fn unique(&self, prefix: &str) -> String {
        unique(prefix)
    }

    /// A client that authenticates with `token` (`None`: no credentials, anonymous), against
    /// the same server as [`TestEnv::client`].
    pub async fn client_as(&self, token: Option<&str>) -> Client {
        match &self.emulator {
            Some(emulator) => emulator.client_with_token(token).await,
            None => {
                let mut config = kube::Config::infer()
                    .await
                    .expect("KUBECONFIG points at a cluster");
                config.auth_info = serde_json::from_value(match token {
                    Some(token) => json!({"token": token}),
                    None => json!({}),
                })
                .expect("auth info");
                Client::try_from(config).expect("client")
            }
        }
    }

    /// Deletes the namespace and any CRDs still installed, and stops the emulator.
    pub async fn finish(mut self) {
        self.guard.disarmed = true;
        delete_leftovers(&self.client, &self.namespace, &self.guard.crds()).await;
        if let Some(emulator) = self.emulator.take() {
            emulator.stop().await;
        }
    }

    /// Sends a raw request; `body` is sent as is with `content_type`.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> RawResponse {
        self.raw_with_accept(method, path, content_type, None, body)
            .await
    }

    /// Sends a raw request with an Accept header.
    pub async fn raw_with_accept(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        accept: Option<&str>,
        body: Vec<u8>,
    ) -> RawResponse {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(content_type) = content_type {
            builder = builder.header(http::header::CONTENT_TYPE, content_type);
        }
        if let Some(accept) = accept {
            builder = builder.header(http::header::ACCEPT, accept);
        }
        let request = builder
            .body(kube::client::Body::from(body))
            .expect("request");
        send(&self.client, request).await
    }

    /// GET as JSON.
    pub async fn get_json(&self, path: &str) -> RawResponse {
        self.raw(Method::GET, path, None, Vec::new()).await
    }

    /// Sends a JSON body.
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: &Value,
    ) -> RawResponse {
        self.raw(
            method,
            path,
            Some(content_type),
            body.to_string().into_bytes(),
        )
        .await
    }
}

/// The `Status` inside a kube API error.
pub fn api_status(error: kube::Error) -> Box<kube::core::Status> {
    match error {
        kube::Error::Api(status) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Polls `check` until it returns Some or ~20s pass (controllers of a real cluster act asynchronously).
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// The repository's Incident CRD, applied with server-side apply and waited for.
pub async fn install_incident_crd(env: &TestEnv) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../crds/incidents.yaml"
    ))
    .expect("crds/incidents.yaml");
    let crd: Value = serde_saphyr::from_str(&text).expect("CRD YAML");
    install_crd(env, crd).await;
}

/// Applies a CRD and waits until it is Established and served.
pub async fn install_crd(env: &TestEnv, crd: Value) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    let name = crd["metadata"]["name"]
        .as_str()
        .expect("CRD name")
        .to_string();
    crds.patch(
        &name,
        &kube::api::PatchParams::apply("conformance").force(),
        &kube::api::Patch::Apply(&crd),
    )
    .await
    .expect("CRD applied");
    env.guard.track_crd(&name);
    let group = crd["spec"]["group"].as_str().unwrap_or("").to_string();
    let version = crd["spec"]["versions"][0]["name"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let plural = crd["spec"]["names"]["plural"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let path = format!("/apis/{group}/{version}/{plural}");
    eventually("CRD served", || async {
        let established = crds
            .get(&name)
            .await
            .ok()
            .and_then(|c| c.status)
            .and_then(|s| s.conditions)
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
        let served = env.get_json(&path).await.status == StatusCode::OK;
        (established && served).then_some(())
    })
    .await;
}

/// A CRD with a rich schema for validation tests, in a group of its own.
pub fn widget_crd(group: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wdg"], "categories": ["conformance"]},
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                ],
                "selectableFields": [{"jsonPath": ".spec.color"}],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["color"],
                            "x-kubernetes-validations": [{"rule": "self.color != 'black' || self.size > 5", "message": "black widgets must be larger than 5"}],
                            "properties": {
                                "color": {"type": "string", "enum": ["red", "green", "black"]},
                                "size": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3},
                                "name": {"type": "string", "maxLength": 8, "pattern": "^[a-z]+$"},
                                "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
                                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                            }
                        },
                        "status": {
                            "type": "object",
                            "properties": {
                                "phase": {"type": "string"},
                                "conditions": {
                                    "type": "array",
                                    "x-kubernetes-list-type": "map",
                                    "x-kubernetes-list-map-keys": ["type"],
                                    "items": {"type": "object", "required": ["type", "status"], "properties": {
                                        "type": {"type": "string"}, "status": {"type": "string"}, "reason": {"type": "string"}
                                    }}
                                }
                            }
                        }
                    }
                }}
            }]
        }
    })
}

/// Installs [`widget_crd`] in a fresh group; returns the group.
pub async fn install_widgets(env: &TestEnv) -> String {
    let group = format!("{}.conformance.example.com", env.unique("g"));
    install_crd(env, widget_crd(&group)).await;
    group
}

/// Deletes a CRD (real clusters keep CRDs otherwise).
pub async fn remove_crd(env: &TestEnv, name: &str) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    let _ = crds.delete(name, &DeleteParams::default()).await;
    env.guard.forget_crd(name);
}

/// Waits for the namespace's `kube-root-ca.crt` (kube-controller-manager's root-CA publisher
/// adds it to every namespace, shortly after creation on a real cluster) and returns its CA.
pub async fn wait_for_root_ca(env: &TestEnv) -> String {
    use k8s_openapi::api::core::v1::ConfigMap;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    eventually("kube-root-ca.crt published", || async {
        maps.get_opt("kube-root-ca.crt")
            .await
            .ok()
            .flatten()
            .and_then(|m| m.data)
            .and_then(|d| d.get("ca.crt").cloned())
    })
    .await
}

/// Whether the target serves streaming lists (`sendInitialEvents`, which needs the watch
/// cache): a short watch must end its initial events with the annotated bookmark. On a real
/// cluster a test that needs them skips with the reason; the emulator must always pass.
pub async fn streaming_lists_supported(env: &TestEnv) -> bool {
    let path = format!(
        "/api/v1/namespaces/{}/configmaps?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=2",
        env.namespace
    );
    let response = env.get_json(&path).await;
    let supported =
        response.status == StatusCode::OK && response.text.contains("k8s.io/initial-events-end");
    if !supported {
        assert_eq!(
            target(),
            Target::RealCluster,
            "the emulator must serve streaming lists: {} {}",
            response.status,
            response.text
        );
        eprintln!(
            "SKIPPED: this cluster does not serve streaming lists (sendInitialEvents): {} {}",
            response.status,
            response.text.trim()
        );
    }
    supported
}

/// Sends a JSON request (or none with `body: None`) through `client` and reads the answer.
pub async fn raw_json(
    client: &Client,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> RawResponse {
    let mut builder = Request::builder().method(method).uri(path);
    let bytes = match body {
        Some(body) => {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
            body.to_string().into_bytes()
        }
        None => Vec::new(),
    };
    let request = builder
        .body(kube::client::Body::from(bytes))
        .expect("request");
    send(client, request).await
}

/// Sends a built request through `client` and reads the whole answer.
async fn send(client: &Client, request: Request<kube::client::Body>) -> RawResponse {
    let response = client.send(request).await.expect("request sent");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect_bytes()
        .await
        .expect("body read");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    RawResponse {
        status,
        headers,
        json,
        text,
    }
}

impl TestEnv {
    /// Creates a ServiceAccount in the test namespace.
    pub async fn create_service_account(&self, name: &str) {
        let path = format!("/api/v1/namespaces/{}/serviceaccounts", self.namespace);
        let created = raw_json(
            &self.client,
            Method::POST,
            &path,
            Some(
                &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}),
            ),
        )
        .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    }

    /// Creates a pod (never scheduled by the test) running as `service_account`; returns its uid.
    pub async fn create_pod_as(&self, name: &str, service_account: &str) -> String {
        let path = format!("/api/v1/namespaces/{}/pods", self.namespace);
        let created = raw_json(
            &self.client,
            Method::POST,
            &path,
            Some(&json!({
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"serviceAccountName": service_account, "automountServiceAccountToken": false,
                         "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10"}]},
            })),
        )
        .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
        created.json["metadata"]["uid"]
            .as_str()
            .expect("uid")
            .to_string()
    }

    /// A TokenRequest token of `service_account`, bound to `pod` (name, uid) when given.
    pub async fn token_for(&self, service_account: &str, pod: Option<(&str, &str)>) -> String {
        let path = format!(
            "/api/v1/namespaces/{}/serviceaccounts/{service_account}/token",
            self.namespace
        );
        let mut spec = json!({"expirationSeconds": 3600});
        if let Some((name, uid)) = pod {
            spec["boundObjectRef"] =
                json!({"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid});
        }
        let answer = raw_json(
            &self.client,
            Method::POST,
            &path,
            Some(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})),
        )
        .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        answer.json["status"]["token"]
            .as_str()
            .expect("token")
            .to_string()
    }

    /// Creates (POSTs) any object through the admin client, asserting 201.
    pub async fn admin_create(&self, path: &str, object: &Value) -> Value {
        let created = raw_json(&self.client, Method::POST, path, Some(object)).await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "{path}: {}",
            created.text
        );
        created.json
    }
}

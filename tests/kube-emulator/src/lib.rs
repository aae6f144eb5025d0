//! An in-memory Kubernetes API server for tests, faithful enough that the real
//! `kube::Client`, kube-runtime's watcher and Controller, `kubectl` and `helm` work against
//! it over HTTPS on loopback (a certificate from its own cluster CA), and (in [`kubelet`]) a kubelet that runs pods as local
//! processes.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kube_emulator::EmulatorError> {
//! let emulator = kube_emulator::Emulator::start().await?;
//! let client = emulator.client().await;
//! // … use `client`, or `emulator.write_kubeconfig(path)` for kubectl …
//! emulator.stop().await;
//! # Ok(()) }
//! ```
//!
//! Requests are authenticated (the admin token of [`TOKEN`], ServiceAccount tokens from
//! TokenRequest, otherwise `system:anonymous`), authorized with RBAC ([`server::auth`]) and
//! pass admission ([`server::admission`]: the ServiceAccount plugin — the check and the
//! projected `kube-api-access-*` volume — and ValidatingAdmissionPolicy) as on a real cluster.
//! Aggregated APIs (`APIService` with a service) are proxied like kube-aggregator does
//! ([`server::aggregation`]): front-proxy client certificate, `X-Remote-*` headers, the
//! request-header CA in `kube-system/extension-apiserver-authentication`, Service resolved through
//! its EndpointSlices (there is no EndpointSlice controller: the test writes them).
//!
//! Impersonation (`Impersonate-*` headers, `kubectl --as`) is checked with the `impersonate`
//! verb like the real filter.
//!
//! What it deliberately does not do: client certificates, webhooks and the
//! other admission plugins (no LimitRanger/ResourceQuota), protobuf or CBOR responses (protobuf
//! request bodies are decoded), exec/attach/port-forward, controllers beyond garbage
//! collection, namespace/CRD cleanup, the root-CA publisher (`kube-root-ca.crt`) and
//! Deployment → ReplicaSet → Pod (no scheduler, Jobs,
//! StatefulSets, DaemonSets or Endpoints), consistent snapshots for paginated lists, CRD
//! conversion webhooks, and CRD validation CEL beyond the subset in [`server::cel`].

#![forbid(unsafe_code)]

pub mod cluster_ca;
pub mod kubelet;
pub mod server;
pub mod tls;
pub mod tools;

use std::net::SocketAddr;

use base64::Engine;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::server::state::{ServerConfig, Shared};

/// Name of the cluster, user and context in the kubeconfig.
pub const CONTEXT_NAME: &str = "emulator";
/// Bearer token of the admin identity (`kube-emulator-admin`, group `system:masters`) the
/// kubeconfig carries; other requests need a ServiceAccount token or are `system:anonymous`.
pub const TOKEN: &str = "kube-emulator-token";

/// How often the APIService availability check runs.
const AVAILABILITY_INTERVAL: Duration = Duration::from_secs(2);

/// Settings for [`Emulator::start_with`].
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Changes kept for watches that resume from a resourceVersion; older ones get 410 Gone.
    pub history_window: usize,
    /// Events a watcher may fall behind before the server closes its watch.
    pub watch_buffer: usize,
    /// How often watches that allow bookmarks get one.
    pub bookmark_interval: Duration,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        EmulatorOptions {
            port: 0,
            history_window: 10_000,
            watch_buffer: 4096,
            bookmark_interval: Duration::from_secs(5),
        }
    }
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// Binding the listening socket failed.
    #[error("cannot listen on 127.0.0.1:{port}")]
    Bind {
        /// Requested port.
        port: u16,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Reading the bound address failed.
    #[error("cannot read the listening address")]
    LocalAddr(#[source] std::io::Error),
    /// Generating the cluster CA failed.
    #[error("cannot create the cluster CA")]
    ClusterCa(#[source] cluster_ca::CertificateError),
    /// The API server's TLS configuration could not be built.
    #[error("cannot set up TLS for the API server")]
    Tls(#[source] tls::TlsError),
}

/// A running emulator. Dropping it without [`Emulator::stop`] aborts the server task.
#[derive(Debug)]
pub struct Emulator {
    address: SocketAddr,
    shared: Arc<Shared>,
    ca: Arc<cluster_ca::ClusterCa>,
    server: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Starts on a random loopback port with default options.
    pub async fn start() -> Result<Emulator, EmulatorError> {
        Emulator::start_with(EmulatorOptions::default()).await
    }

    /// Starts with the given options.
    pub async fn start_with(options: EmulatorOptions) -> Result<Emulator, EmulatorError> {
        let listener = TcpListener::bind(("127.0.0.1", options.port))
            .await
            .map_err(|source| EmulatorError::Bind {
                port: options.port,
                source,
            })?;
        let address = listener.local_addr().map_err(EmulatorError::LocalAddr)?;
        let ca = Arc::new(cluster_ca::ClusterCa::generate().map_err(EmulatorError::ClusterCa)?);
        let shared = Arc::new(Shared::new(ServerConfig {
            history_window: options.history_window,
            watch_buffer: options.watch_buffer,
            bookmark_interval: options.bookmark_interval,
            server_address: address.to_string(),
            root_ca_pem: ca.cert_pem(),
        }));
        server::bootstrap(&shared);
        let serving = ca
            .issue_serving(&["127.0.0.1", "localhost", "kubernetes.default.svc"])
            .map_err(EmulatorError::ClusterCa)?;
        // client-go (kubectl, helm) sends bearer tokens only over TLS: authentication needs https.
        let acceptor = tls::acceptor(&serving).map_err(EmulatorError::Tls)?;
        let listener = tls::TlsListener::new(listener, acceptor);
        let app = server::router(shared.clone());
        tokio::spawn(server::aggregation::availability::run(
            shared.clone(),
            AVAILABILITY_INTERVAL,
        ));
        let shutdown = shared.shutdown.clone();
        let server = tokio::spawn(async move {
            let serving = axum::serve(listener, app)
                .with_graceful_shutdown(async move { shutdown.cancelled().await });
            if let Err(error) = serving.await {
                tracing::error!(%error, "kube-emulator server failed");
            }
        });
        Ok(Emulator {
            address,
            shared,
            ca,
            server: Some(server),
        })
    }

    /// The cluster CA: published in every namespace as `kube-root-ca.crt`, and the issuer of
    /// serving certificates such as the process kubelet's.
    pub fn cluster_ca(&self) -> Arc<cluster_ca::ClusterCa> {
        self.ca.clone()
    }

    /// `https://127.0.0.1:PORT`; the certificate is signed by [`Emulator::cluster_ca`].
    pub fn url(&self) -> String {
        format!("https://{}", self.address)
    }

    /// The CA certificate (PEM) clients verify the API server with.
    pub fn ca_pem(&self) -> String {
        self.ca.cert_pem()
    }

    /// A kubeconfig with cluster, user and context named `emulator` and the admin token
    /// (`system:masters`).
    pub fn kubeconfig_yaml(&self) -> String {
        self.kubeconfig_yaml_with_token(Some(TOKEN))
    }

    /// Like [`Emulator::kubeconfig_yaml`] with another bearer token (e.g. a ServiceAccount's
    /// from TokenRequest), or none at all: the requests are then `system:anonymous`.
    pub fn kubeconfig_yaml_with_token(&self, token: Option<&str>) -> String {
        let user = match token {
            Some(token) => format!("  user:\n    token: {token}\n"),
            None => "  user: {}\n".to_string(),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: {CONTEXT_NAME}\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\nusers:\n- name: {CONTEXT_NAME}\n{user}contexts:\n- name: {CONTEXT_NAME}\n  context:\n    cluster: {CONTEXT_NAME}\n    user: {CONTEXT_NAME}\n    namespace: default\ncurrent-context: {CONTEXT_NAME}\npreferences: {{}}\n",
            url = self.url(),
            ca = base64::engine::general_purpose::STANDARD.encode(self.ca_pem()),
        )
    }

    /// Writes [`Emulator::kubeconfig_yaml`] to a file.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// A `kube::Client` built from the kubeconfig (the admin identity).
    pub async fn client(&self) -> kube::Client {
        self.client_with_token(Some(TOKEN)).await
    }

    /// A `kube::Client` that authenticates with `token`, or anonymously with `None`.
    pub async fn client_with_token(&self, token: Option<&str>) -> kube::Client {
        let kubeconfig =
            kube::config::Kubeconfig::from_yaml(&self.kubeconfig_yaml_with_token(token))
                .expect("the emulator's own kubeconfig is valid YAML");
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("the emulator's own kubeconfig names an existing context");
        kube::Client::try_from(config).expect("the kubeconfig's CA is valid PEM")
    }

    /// Stops the server; open watches end, in-flight requests finish.
    pub async fn stop(mut self) {
        self.shared.shutdown.cancel();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

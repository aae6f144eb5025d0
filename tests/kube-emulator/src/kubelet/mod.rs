//! A kubelet that runs pods as local processes, for tests without a container runtime.
//!
//! It talks to the API server only through a `kube::Client`, so it works unchanged against the
//! emulator and against a real cluster. [`ProcessKubelet::start`]:
//! - registers the Node [`KubeletConfig::node_name`] and keeps it Ready ([`node`]);
//! - binds unscheduled pods to it through `pods/binding` when asked to ([`binder`]);
//! - runs each pod bound to it whose image maps to a local executable ([`dispatch`], [`worker`]):
//!   the first container only, as a process group, with env, volumes ([`volumes`]), and a
//!   kubeconfig holding a TokenRequest token of the pod's ServiceAccount ([`credentials`]);
//!   projected volumes (the admission-added `kube-api-access-*`: the same pod-bound token,
//!   `kube-root-ca.crt`'s `ca.crt`, the namespace) are files in the pod directory, so a program
//!   that takes the in-cluster paths through its args or env reads them there;
//!   container paths in env, command and args are rewritten to host paths ([`path_map`]);
//! - reports pod status like a kubelet ([`status`]) and serves container logs on the kubelet's
//!   `/containerLogs` endpoint over TLS, which the API server proxies `pods/log` to ([`log_server`],
//!   [`logs`]).
//!
//! - in image mode ([`image`]), runs the container inside an unpacked image's root filesystem
//!   (mount and PID namespaces, the pod's volumes bound in, its uid/gid) instead of on the host.
//!
//! Not implemented: init containers and containers after the first (the pod reports only the first
//! one), probes (a running container is ready), resource limits, `readOnly` mounts, image pulls.

pub mod binder;
pub mod config_error;
pub mod credentials;
pub mod dispatch;
pub mod env;
pub mod image;
pub mod launch;
pub mod layout;
pub mod log_server;
pub mod logs;
pub mod node;
pub mod path_map;
pub mod process;
pub mod status;
pub mod volumes;
pub mod worker;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use process::GroupRegistry;
use worker::WorkerContext;

/// How long [`ProcessKubelet::stop`] waits for each of its tasks before aborting it.
const STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What the kubelet runs and where.
#[derive(Clone, Debug)]
pub struct KubeletConfig {
    /// Name of the Node to register, e.g. `local`.
    pub node_name: String,
    /// Image → local executable, e.g. the agent image → `target/debug/incident-operator`, or
    /// image → unpacked image directory (`rootfs/` and `image.json`), which runs the container
    /// inside that image ([`image`], image mode). Images are also matched without tag or digest.
    pub images: BTreeMap<String, PathBuf>,
    /// Per-pod directories, per-PVC directories (which outlive pods) and kubeconfigs.
    pub work_dir: PathBuf,
    /// The API server URL written into the pods' kubeconfigs.
    pub api_server_url: String,
    /// The CA bundle (PEM) that verifies the https API server, written into the pods'
    /// kubeconfigs as `certificate-authority-data`.
    pub api_server_ca_pem: Option<String>,
    /// Bind unscheduled pods to this node (true against the emulator, which has no scheduler).
    pub bind_unscheduled: bool,
}

impl KubeletConfig {
    /// The configuration for a test against the emulator: Node `local`, binding unscheduled pods
    /// itself (the emulator has no scheduler), pods' kubeconfigs pointing at the emulator's URL
    /// and trusting its CA.
    pub fn for_emulator(
        emulator: &crate::Emulator,
        images: BTreeMap<String, PathBuf>,
        work_dir: PathBuf,
    ) -> Self {
        Self {
            node_name: "local".to_string(),
            images,
            work_dir,
            api_server_url: emulator.url(),
            api_server_ca_pem: Some(emulator.ca_pem()),
            bind_unscheduled: true,
        }
    }

    /// The configuration for joining the cluster of `cluster` (a real one, usually from
    /// KUBECONFIG) as Node `node_name`: pods' kubeconfigs get its URL and CA bundle; pods are
    /// bound by the cluster's scheduler, or by the tests when there is none.
    pub fn for_cluster(
        cluster: &kube::Config,
        node_name: impl Into<String>,
        images: BTreeMap<String, PathBuf>,
        work_dir: PathBuf,
        bind_unscheduled: bool,
    ) -> Self {
        let ca_pem = cluster.root_cert.as_ref().map(|certs| {
            certs
                .iter()
                .map(|der| pem_certificate(der))
                .collect::<String>()
        });
        Self {
            node_name: node_name.into(),
            images,
            work_dir,
            api_server_url: cluster
                .cluster_url
                .to_string()
                .trim_end_matches('/')
                .to_string(),
            api_server_ca_pem: ca_pem,
            bind_unscheduled,
        }
    }
}

/// One DER certificate as a PEM block.
fn pem_certificate(der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// Starting the kubelet failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error("creating the work directory {path}")]
    CreateWorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the log endpoint")]
    LogServer(#[source] log_server::LogServerError),
    #[error("registering the node")]
    RegisterNode(#[source] node::NodeError),
}

/// A running process kubelet. Dropping it without [`stop`](ProcessKubelet::stop) still kills
/// every process group it started.
pub struct ProcessKubelet {
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    registry: GroupRegistry,
}

impl ProcessKubelet {
    /// Registers the node and starts the heartbeat, the binder (if configured) and the pod loop.
    pub async fn start(
        client: kube::Client,
        config: KubeletConfig,
    ) -> Result<ProcessKubelet, KubeletError> {
        std::fs::create_dir_all(&config.work_dir).map_err(|source| {
            KubeletError::CreateWorkDir {
                path: config.work_dir.clone(),
                source,
            }
        })?;
        let cancel = CancellationToken::new();
        let logs = log_server::LogRegistry::default();
        let (log_port, log_task) = log_server::start(logs.clone(), cancel.clone())
            .await
            .map_err(KubeletError::LogServer)?;
        let ready_since = match node::register(&client, &config.node_name, log_port).await {
            Ok(since) => since,
            Err(error) => {
                cancel.cancel();
                return Err(KubeletError::RegisterNode(error));
            }
        };
        let registry = GroupRegistry::default();
        let mut tasks = vec![
            log_task,
            tokio::spawn(node::heartbeat(
                client.clone(),
                config.node_name.clone(),
                ready_since,
                log_port,
                cancel.clone(),
            )),
        ];
        if config.bind_unscheduled {
            tasks.push(tokio::spawn(binder::run(
                client.clone(),
                config.node_name.clone(),
                cancel.clone(),
            )));
        }
        info!(node = %config.node_name, work_dir = %config.work_dir.display(), "process kubelet started");
        let ctx = Arc::new(WorkerContext {
            client,
            config: Arc::new(config),
            registry: registry.clone(),
            logs,
            cancel: cancel.clone(),
        });
        tasks.push(tokio::spawn(dispatch::run(ctx)));
        Ok(ProcessKubelet {
            cancel,
            tasks,
            registry,
        })
    }

    /// Stops every task; running containers get SIGTERM and, after a short grace, SIGKILL. Pod
    /// objects are left as they are (a real node going away does not update them either).
    pub async fn stop(mut self) {
        self.cancel.cancel();
        for mut task in std::mem::take(&mut self.tasks) {
            // Workers need at most their stop grace; a stuck log stream must not hang the caller.
            if tokio::time::timeout(STOP_TIMEOUT, &mut task).await.is_err() {
                task.abort();
            }
        }
        self.registry.kill_all();
    }
}

impl Drop for ProcessKubelet {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.registry.kill_all();
    }
}

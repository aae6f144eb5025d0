//! A cluster for tests that run the real controller and real agents: the API server emulator with
//! the Incident CRD, the process kubelet running `incident-operator agent` for the agent image, a
//! namespace `shop` with the agents' ServiceAccount, API-key Secret and audit claim (applied with
//! real `kubectl`), and the controller started in-process from its real command-line flags.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use incident_operator::controller::flags::{ControllerArgs, ControllerConfig};
use incident_operator::controller::{RunError, run_until};
use incident_operator::incident::{Incident, crd_yaml};
use kube::Api;
use kube::Client;
use kube_emulator::Emulator;
use kube_emulator::kubelet::{KubeletConfig, ProcessKubelet};
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const BIN: &str = env!("CARGO_BIN_EXE_incident-operator");
pub const NS: &str = "shop";
pub const AGENT_IMAGE: &str = "incident-operator:e2e";

const NAMESPACE_YAML: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: incident-agent
  namespace: shop
---
# What the chart's agent Role gives an agent for its own Incident (the emulator enforces RBAC).
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: incident-agent
  namespace: shop
rules:
  - apiGroups: [sre.agentlab.dev]
    resources: [incidents]
    verbs: [get, list, watch]
  - apiGroups: [sre.agentlab.dev]
    resources: [incidents/status]
    verbs: [get, patch]
  - apiGroups: [""]
    resources: [pods, pods/log, events]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: incident-agent
  namespace: shop
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: incident-agent
subjects:
  - kind: ServiceAccount
    name: incident-agent
    namespace: shop
---
apiVersion: v1
kind: Secret
metadata:
  name: anthropic-api-key
  namespace: shop
data:
  api-key: c2stYW50LWUyZS1rZXktMDEyMzQ1Njc4OWFiY2RlZg==
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: incident-audit
  namespace: shop
spec:
  accessModes: [ReadWriteMany]
  resources:
    requests:
      storage: 1Gi
"#;

pub struct AgentCluster {
    pub emulator: Emulator,
    pub client: Client,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    _kubelet: ProcessKubelet,
}

impl AgentCluster {
    pub async fn start() -> AgentCluster {
        // `E2E_LOG=incident_operator=debug` shows the controller's logs of a failing test.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("E2E_LOG"))
            .with_test_writer()
            .try_init();
        let emulator = Emulator::start().await.expect("emulator starts");
        let client = emulator.client().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let kubeconfig = dir.path().join("kubeconfig");
        emulator.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        let images = [(AGENT_IMAGE.to_string(), PathBuf::from(BIN))].into();
        let kubelet = ProcessKubelet::start(
            client.clone(),
            KubeletConfig::for_emulator(&emulator, images, dir.path().join("kubelet")),
        )
        .await
        .expect("kubelet starts");
        let cluster = AgentCluster {
            emulator,
            client,
            dir,
            kubeconfig,
            _kubelet: kubelet,
        };
        cluster.kubectl_apply(&crd_yaml());
        cluster.kubectl_apply(NAMESPACE_YAML);
        cluster
    }

    pub fn incidents(&self) -> Api<Incident> {
        Api::namespaced(self.client.clone(), NS)
    }

    /// `kubectl apply -f -` with `yaml`; panics with kubectl's output when it fails.
    pub fn kubectl_apply(&self, yaml: &str) {
        use std::io::Write;
        let kubectl = kube_emulator::tools::kubectl().unwrap_or_else(|e| panic!("{e}"));
        let mut child = Command::new(kubectl)
            .args(["apply", "-f", "-"])
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(yaml.as_bytes())
            .expect("write stdin");
        let output = child.wait_with_output().expect("kubectl finishes");
        assert!(
            output.status.success(),
            "kubectl apply failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Polls the Incident `name` until `done` holds; panics with what was seen after `wait`.
    pub async fn wait_for(
        &self,
        name: &str,
        what: &str,
        wait: Duration,
        done: impl Fn(&Incident) -> bool,
    ) -> Incident {
        let started = Instant::now();
        loop {
            let seen = self.incidents().get_opt(name).await.expect("get Incident");
            if let Some(incident) = &seen
                && done(incident)
            {
                return incident.clone();
            }
            assert!(
                started.elapsed() < wait,
                "{name}: not {what} after {wait:?}: {:#?}",
                seen.and_then(|i| i.status)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A free loopback address (the port may be taken again before it is used; tests accept that).
pub fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr")
}

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    args: ControllerArgs,
}

/// The controller's configuration from its real flags: agents of [`AGENT_IMAGE`] against
/// `base_url`, the audit claim, no leader election unless `extra` asks for it, listening on `listen`; `extra` adds flags.
pub fn controller_config(base_url: &str, listen: SocketAddr, extra: &[&str]) -> ControllerConfig {
    let listen = listen.to_string();
    let mut argv = vec![
        "controller",
        "--namespace",
        NS,
        "--agent-image",
        AGENT_IMAGE,
        "--anthropic-base-url",
        base_url,
        "--audit-pvc",
        "incident-audit",
        "--listen",
        &listen,
        "--max-turns",
        "5",
    ];
    if !extra
        .iter()
        .any(|flag| flag.starts_with("--leader-election"))
    {
        argv.push("--leader-election=false");
    }
    argv.extend_from_slice(extra);
    Flags::parse_from(argv)
        .args
        .into_config(NS, Some("e2e".into()))
        .expect("valid flags")
}

/// A controller running in this process until [`RunningController::stop`].
pub struct RunningController {
    shutdown: watch::Sender<bool>,
    task: JoinHandle<Result<(), RunError>>,
    pub listen: SocketAddr,
}

impl RunningController {
    pub fn start(client: &Client, config: ControllerConfig) -> RunningController {
        let (shutdown, receiver) = watch::channel(false);
        let listen = config.listen;
        let task = tokio::spawn(run_until(
            config,
            client.clone(),
            Registry::with_prefix("incident_operator"),
            None,
            receiver,
        ));
        RunningController {
            shutdown,
            task,
            listen,
        }
    }

    /// GET `/metrics` over plain HTTP.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.listen))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }

    pub async fn stop(self) {
        self.shutdown.send_replace(true);
        let result = tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("controller stops in time")
            .expect("controller task does not panic");
        if let Err(error) = result {
            panic!("controller failed: {error:?}");
        }
    }
}

/// The path of a binary on PATH; a missing one fails the test with how to install it.
pub fn require_binary(name: &str, install_hint: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("`{name}` is not on PATH: {install_hint}"))
}

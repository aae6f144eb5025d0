//! The controller end to end: the in-memory API server (`kube_emulator::Emulator`), the process
//! kubelet that runs agent pods as local processes, CRDs and Incidents applied with real `kubectl`
//! (from `$KUBECTL`, `.ci/tools/bin` or `PATH`),
//! and the controller itself (`incident_operator::controller::run_until`) with its real watches,
//! Lease and HTTP server.
//!
//! Agents are either the real `incident-operator agent` talking to a scripted Messages API on
//! loopback, or small shell scripts that stand in for an agent which fails or takes a while (the
//! process kubelet maps an image name to a local executable).
//!
//! `KUBE_E2E_REAL_CLUSTER=1` runs the same tests against the KUBECONFIG cluster, the process
//! kubelet joining it as a node (see `support/cluster.rs` for what differs).

#[path = "controller_e2e/approval.rs"]
mod approval;
#[path = "support/cluster.rs"]
mod cluster;
#[path = "controller_e2e/confinement.rs"]
mod confinement;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use incident_operator::controller::flags::ControllerConfig;
use incident_operator::controller::keys;
use incident_operator::controller::leader::LeaseSettings;
use incident_operator::controller::lifecycle::Policy;
use incident_operator::controller::pod::{
    AgentDefaults, AgentPodConfig, AgentResources, AuditVolume,
};
use incident_operator::controller::{RunError, run_until};
use incident_operator::incident::{Incident, Outcome, Phase, crd_yaml};
use incident_operator::intake::mapping::labels_fingerprint;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use kube_emulator::kubelet::ProcessKubelet;
use prometheus_client::registry::Registry;
use scripted_model::{ScriptedModel, Step, reply};
use serde_json::json;
use tempfile::TempDir;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const BIN: &str = env!("CARGO_BIN_EXE_incident-operator");
const NS: &str = "shop";
/// Generous: only there so a broken controller fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(120);

/// The Helm release whose rendered RBAC the operator and agents run under: its ServiceAccounts
/// are `incident-operator` (operator) and `incident-operator-agent` (agents), its Lease
/// `incident-operator`.
const RELEASE: &str = "incident-operator";
const OPERATOR_SERVICE_ACCOUNT: &str = "incident-operator";
const AGENT_SERVICE_ACCOUNT: &str = "incident-operator-agent";
const REMEDIATION_SERVICE_ACCOUNT: &str = "incident-operator-agent-remediate";

const AGENT_IMAGE: &str = "incident-operator:e2e";
const FAILING_IMAGE: &str = "failing-agent:e2e";
const SLEEPER_IMAGE: &str = "sleeping-agent:e2e";
const SLOW_SLEEPER_IMAGE: &str = "slow-sleeping-agent:e2e";
const DELETER_IMAGE: &str = "deleting-agent:e2e";

/// Namespace, the API-key Secret and the audit claim (the ServiceAccounts and their RBAC come from
/// the chart, see [`chart_rbac_yaml`]).
const NAMESPACE_YAML: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
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

/// A stand-in agent that fails the way a broken agent does: some log lines, then exit 3.
const FAILING_SCRIPT: &str = r#"#!/bin/sh
echo "agent starting" >&2
echo "error: the model endpoint refused the key" >&2
exit 3
"#;

/// A stand-in agent that takes `$1` seconds, records when it ran (in nanoseconds) on the audit
/// volume and leaves a termination message like the real agent's.
fn sleeper_script(seconds: u32) -> String {
    format!(
        r#"#!/bin/sh
term=""; incident=""
while [ $# -gt 0 ]; do
  case "$1" in
    --termination-log) term="$2"; shift ;;
    --incident) incident="$2"; shift ;;
  esac
  shift
done
name=$(echo "$incident" | tr '/' '_')
mark="$INCIDENT_AUDIT_DIR/$name.$$"
date +%s%N > "$mark.start"
sleep {seconds}
date +%s%N > "$mark.end"
printf '{{"sessionId":"s-%s-%s","outcome":"reported","summary":"slept on %s"}}' "$name" "$$" "$incident" > "$term"
"#
    )
}

/// A stand-in agent whose shell tries what the read-only gate would stop: `kubectl delete pod
/// victim`, straight to the API server. What the server said becomes the report summary.
fn deleter_script(kubectl: &Path) -> String {
    format!(
        r#"#!/bin/sh
term=""
while [ $# -gt 0 ]; do
  case "$1" in --termination-log) term="$2"; shift ;; esac
  shift
done
said=$({kubectl} delete pod victim --wait=false 2>&1 | tr '"\n' "' ")
printf '{{"sessionId":"s-del","outcome":"reported","summary":"%s"}}' "$said" > "$term"
"#,
        kubectl = kubectl.display()
    )
}

/// The API server, a process kubelet, kubectl pointed at them, and a namespace ready for agents.
struct Cluster {
    api: cluster::ApiServer,
    /// The admin identity: the test's own reads and setup.
    client: Client,
    /// The chart's operator ServiceAccount (a TokenRequest token): what the controller runs as.
    operator_client: Client,
    kubelet: Option<ProcessKubelet>,
    dir: TempDir,
    kubeconfig: PathBuf,
    /// A kubeconfig with the operator ServiceAccount's token, for the controller binary.
    operator_kubeconfig: PathBuf,
}

impl Cluster {
    async fn start() -> Cluster {
        Cluster::start_with_rbac(&chart_rbac_yaml()).await
    }

    /// The cluster with the CRD, the namespace and `rbac` (rendered chart RBAC) applied; the
    /// controller's client is the operator ServiceAccount's.
    async fn start_with_rbac(rbac: &str) -> Cluster {
        let mut cluster = Cluster::connect().await;
        cluster.kubectl_apply(&crd_yaml());
        cluster.kubectl_apply(NAMESPACE_YAML);
        cluster.kubectl_apply(rbac);
        let token = cluster.kubectl(
            &[
                "-n",
                NS,
                "create",
                "token",
                OPERATOR_SERVICE_ACCOUNT,
                "--duration=2h",
            ],
            None,
        );
        // The admin kubeconfig with its user swapped for the token: same server and CA, on the
        // emulator and on a real cluster alike.
        let mut kubeconfig: serde_json::Value = serde_json::from_str(
            &cluster.kubectl(&["config", "view", "--raw", "--minify", "-o", "json"], None),
        )
        .expect("kubeconfig JSON");
        kubeconfig["users"][0]["user"] = json!({"token": token.trim()});
        cluster.operator_kubeconfig = cluster.dir.path().join("operator-kubeconfig");
        std::fs::write(&cluster.operator_kubeconfig, kubeconfig.to_string())
            .expect("operator kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::from_yaml(&kubeconfig.to_string()).expect("kubeconfig"),
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("operator config");
        cluster.operator_client = Client::try_from(config).expect("operator client");
        cluster
    }

    /// The cluster before the operator is installed (a real cluster's Incident CRD is deleted).
    async fn start_without_crd() -> Cluster {
        let cluster = Cluster::connect().await;
        if !cluster.api.is_emulator() {
            cluster.kubectl(
                &[
                    "delete",
                    "crd",
                    keys::CRD_NAME,
                    "--ignore-not-found",
                    "--wait=true",
                ],
                None,
            );
        }
        cluster
    }

    /// The API server and a kubelet, with no test namespace left over.
    async fn connect() -> Cluster {
        // `E2E_LOG=incident_operator=debug` shows the controller's logs of a failing test.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("E2E_LOG"))
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().expect("temp dir");
        let api = cluster::ApiServer::start(dir.path()).await;
        api.delete_namespaces(&[NS]).await;
        let client = api.client.clone();
        let kubeconfig = api.kubeconfig.clone();

        let scripts = dir.path().join("scripts");
        std::fs::create_dir_all(&scripts).expect("scripts dir");
        let mut images = BTreeMap::from([(AGENT_IMAGE.to_string(), PathBuf::from(BIN))]);
        for (image, file, body) in [
            (FAILING_IMAGE, "failing.sh", FAILING_SCRIPT.to_string()),
            (SLEEPER_IMAGE, "sleeper.sh", sleeper_script(2)),
            (SLOW_SLEEPER_IMAGE, "slow-sleeper.sh", sleeper_script(6)),
            (
                DELETER_IMAGE,
                "deleter.sh",
                deleter_script(&kube_emulator::tools::kubectl().unwrap_or_else(|e| panic!("{e}"))),
            ),
        ] {
            let path = scripts.join(file);
            std::fs::write(&path, body).expect("write script");
            make_executable(&path);
            images.insert(image.to_string(), path);
        }
        let kubelet = ProcessKubelet::start(
            client.clone(),
            api.kubelet_config(images, dir.path().join("kubelet")),
        )
        .await
        .expect("kubelet starts");

        Cluster {
            api,
            operator_client: client.clone(),
            client,
            kubelet: Some(kubelet),
            dir,
            operator_kubeconfig: kubeconfig.clone(),
            kubeconfig,
        }
    }

    fn kubectl_command(&self, args: &[&str]) -> Command {
        let kubectl = kube_emulator::tools::kubectl().unwrap_or_else(|e| panic!("{e}"));
        let mut command = Command::new(kubectl);
        command
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs kubectl; panics with its output when it fails.
    fn kubectl(&self, args: &[&str], input: Option<&str>) -> String {
        let mut child = self.kubectl_command(args).spawn().expect("kubectl runs");
        let mut stdin = child.stdin.take().expect("stdin");
        if let Some(input) = input {
            use std::io::Write;
            stdin.write_all(input.as_bytes()).expect("write stdin");
        }
        drop(stdin);
        let output = child.wait_with_output().expect("kubectl finishes");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "kubectl {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    fn kubectl_apply(&self, yaml: &str) -> String {
        self.kubectl(&["apply", "-f", "-"], Some(yaml))
    }

    fn apply_incident(&self, name: &str, severity: &str) {
        self.kubectl_apply(&format!(
            "apiVersion: sre.agentlab.dev/v1alpha1\nkind: Incident\nmetadata:\n  name: {name}\n  namespace: {NS}\nspec:\n  title: checkout-api 5xx rate above 5% ({name})\n  severity: {severity}\n"
        ));
    }

    fn incidents(&self) -> Api<Incident> {
        Api::namespaced(self.client.clone(), NS)
    }

    /// Agent pods of the Incident `name`, by owner.
    async fn agent_pods(&self, name: &str) -> Vec<Pod> {
        let incident = self.incidents().get(name).await.expect("incident exists");
        let uid = incident.uid().unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), NS);
        let mut list: Vec<Pod> = pods
            .list(&ListParams::default().labels(keys::AGENT_POD_SELECTOR))
            .await
            .expect("list pods")
            .items
            .into_iter()
            .filter(|pod| pod.owner_references().iter().any(|o| o.uid == uid))
            .collect();
        list.sort_by_key(ResourceExt::name_any);
        list
    }

    /// Polls until `done` holds for the Incident `name`; on timeout, panics with what was seen.
    async fn wait_for(&self, name: &str, what: &str, done: impl Fn(&Incident) -> bool) -> Incident {
        let started = Instant::now();
        loop {
            if let Ok(incident) = self.incidents().get(name).await
                && done(&incident)
            {
                return incident;
            }
            if started.elapsed() > WAIT {
                let incident = self.incidents().get(name).await.ok();
                let pods = self.agent_pods(name).await;
                panic!(
                    "{name}: not {what} after {WAIT:?}\nstatus: {}\npods: {}",
                    serde_json::to_string_pretty(&incident.and_then(|i| i.status))
                        .unwrap_or_default(),
                    serde_json::to_string_pretty(
                        &pods
                            .iter()
                            .map(|p| (&p.metadata.name, &p.status))
                            .collect::<Vec<_>>()
                    )
                    .unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn wait_for_phase(&self, name: &str, phase: Phase) -> Incident {
        self.wait_for(name, &format!("{phase:?}"), |incident| {
            phase_of(incident) == Some(phase)
        })
        .await
    }

    /// Reasons of the Events about the Incident `name`, oldest first.
    async fn event_reasons(&self, name: &str) -> Vec<String> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), NS);
        let mut list: Vec<Event> = events
            .list(&ListParams::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .collect();
        list.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
        list.into_iter().filter_map(|e| e.reason).collect()
    }

    /// Polls until an Event with `reason` about the Incident `name` exists; returns all reasons.
    async fn wait_for_event(&self, name: &str, reason: &str) -> Vec<String> {
        let started = Instant::now();
        loop {
            let reasons = self.event_reasons(name).await;
            if reasons.iter().any(|r| r == reason) {
                return reasons;
            }
            assert!(
                started.elapsed() < WAIT,
                "{name}: no {reason} event after {WAIT:?}: {reasons:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The audit claim's directory on the host.
    fn audit_dir(&self) -> PathBuf {
        self.dir
            .path()
            .join("kubelet")
            .join("pvc")
            .join(NS)
            .join("incident-audit")
    }

    async fn stop(mut self) {
        if let Some(kubelet) = self.kubelet.take() {
            kubelet.stop().await;
        }
        self.api.delete_namespaces(&[NS]).await;
        self.api.stop().await;
    }
}

/// The chart's ServiceAccounts, Roles, ClusterRoles and bindings, exactly as `helm template`
/// renders them for this namespace (the operator Deployment and the rest are left out: the
/// controller runs in this process).
fn chart_rbac_yaml() -> String {
    chart_rbac_yaml_with(&[])
}

/// [`chart_rbac_yaml`] with more `--set` values.
fn chart_rbac_yaml_with(values: &[&str]) -> String {
    chart_docs_of_kinds(
        values,
        &[
            "kind: ServiceAccount",
            "kind: Role",
            "kind: ClusterRole",
            "kind: RoleBinding",
            "kind: ClusterRoleBinding",
        ],
    )
}

/// The documents of `kinds` (`kind: X` lines) from `helm template` of the chart for this namespace
/// with `values` set.
fn chart_docs_of_kinds(values: &[&str], kinds: &[&str]) -> String {
    let helm = kube_emulator::tools::helm().unwrap_or_else(|e| panic!("{e}"));
    let chart = kube_emulator::tools::workspace_root().join("charts/incident-operator");
    let output = Command::new(helm)
        .args(["template", RELEASE])
        .arg(&chart)
        .args([
            "--namespace",
            NS,
            "--set",
            &format!("watchNamespaces={{{NS}}}"),
            "--set",
            "operator.leaderElection.enabled=true",
        ])
        .args(values.iter().flat_map(|value| ["--set", value]))
        .output()
        .expect("helm runs");
    assert!(
        output.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rendered = String::from_utf8(output.stdout).expect("UTF-8");
    rendered
        .split("\n---")
        .filter(|doc| doc.lines().any(|line| kinds.contains(&line.trim_end())))
        .collect::<Vec<_>>()
        .join("\n---")
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut permissions = std::fs::metadata(path).expect("metadata").permissions();
    permissions.set_mode(0o755);
    std::fs::set_permissions(path, permissions).expect("chmod");
}

fn phase_of(incident: &Incident) -> Option<Phase> {
    incident.status.as_ref().and_then(|s| s.phase)
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

fn config(image: &str, base_url: Option<String>, max_agents: usize) -> ControllerConfig {
    ControllerConfig {
        namespaces: vec![NS.to_string()],
        pod: AgentPodConfig {
            image: image.to_string(),
            image_pull_policy: None,
            service_account: AGENT_SERVICE_ACCOUNT.to_string(),
            remediation_service_account: None,
            api_key_secret: "anthropic-api-key".to_string(),
            api_key_secret_key: "api-key".to_string(),
            anthropic_base_url: base_url,
            audit_volume: AuditVolume::Claim("incident-audit".to_string()),
            resources: AgentResources::default(),
            defaults: AgentDefaults {
                model: "claude-sonnet-4-5".to_string(),
                max_turns: 10,
                command_timeout_seconds: 30,
                session_timeout_seconds: 120,
                max_tokens: 1_000_000,
            },
            deadline_grace_seconds: 60,
        },
        policy: Policy {
            backoff_limit: 1,
            retry_backoff_base: Duration::from_secs(1),
            recheck_queued: Duration::from_secs(5),
            recheck_secret: Duration::from_secs(1),
            ..Policy::default()
        },
        max_agents,
        lease: None,
        identity: "controller-a".to_string(),
        listen: free_port(),
        intake: None,
    }
}

/// A controller running in this process until [`RunningController::stop`].
struct RunningController {
    shutdown: watch::Sender<bool>,
    task: JoinHandle<Result<(), RunError>>,
    listen: SocketAddr,
}

impl RunningController {
    fn start(client: &Client, config: ControllerConfig) -> RunningController {
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

    async fn stop(self) {
        self.shutdown.send_replace(true);
        let result = tokio::time::timeout(WAIT, self.task)
            .await
            .expect("controller stops in time")
            .expect("controller task does not panic");
        if let Err(error) = result {
            panic!("controller failed: {error:?}");
        }
    }

    /// GET `path` on the controller's HTTP server: (status line, body).
    async fn http_get(&self, path: &str) -> (String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.listen)
            .await
            .expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        let status = response.lines().next().unwrap_or_default().to_string();
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn incident_applied_with_kubectl_ends_completed_with_report_and_audit() {
    let model = ScriptedModel::start(vec![
        Step::Reply(reply::tool_use(
            "t1",
            "shell",
            json!({"command": "echo checkout-api-pods-look-fine"}),
        )),
        Step::Reply(reply::tool_use(
            "r1",
            "report",
            json!({"summary": "checkout-api lost DATABASE_URL in the 09:40 deploy",
                   "rootCause": "a config map key was renamed",
                   "evidence": ["echo: checkout-api-pods-look-fine"],
                   "recommendations": ["roll back the deploy"],
                   "confidence": "medium", "resolved": false}),
        )),
    ])
    .await;
    let cluster = Cluster::start().await;
    let controller = RunningController::start(
        &cluster.operator_client,
        config(AGENT_IMAGE, Some(model.base_url()), 3),
    );
    cluster.apply_incident("checkout-5xx", "critical");

    let incident = cluster
        .wait_for_phase("checkout-5xx", Phase::Completed)
        .await;
    let status = incident.status.expect("status");
    let report = status.report.expect("report in status");
    assert_eq!(
        report.summary,
        "checkout-api lost DATABASE_URL in the 09:40 deploy"
    );
    assert_eq!(status.outcome, Some(Outcome::Reported));
    assert_eq!(status.attempts, Some(1));
    assert_eq!(status.agent_pod.as_deref(), Some("checkout-5xx-agent-1"));
    assert!(status.usage.expect("usage").tool_calls >= 1);
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready condition");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "Completed")
    );

    // The audit document is on the audit volume, named after the session.
    let session = status.session_id.expect("session id");
    let audit = status.audit.expect("audit summary");
    let on_volume: Vec<_> = std::fs::read_dir(cluster.audit_dir())
        .expect("audit volume exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        on_volume.iter().any(|f| f.starts_with(&session)),
        "no audit file for {session} in {on_volume:?} (status says {})",
        audit.path
    );

    // What an SRE would type.
    let phase = cluster.kubectl(
        &[
            "-n",
            NS,
            "get",
            "inc",
            "checkout-5xx",
            "-o",
            "jsonpath={.status.phase}",
        ],
        None,
    );
    assert_eq!(phase, "Completed");
    for want in ["AgentStarted", "Completed"] {
        cluster.wait_for_event("checkout-5xx", want).await;
    }

    // The model saw exactly one session: the agent ran once.
    assert_eq!(model.requests().len(), 2);

    let (status_line, metrics) = controller.http_get("/metrics").await;
    assert!(status_line.contains("200"), "{status_line}");
    assert!(
        metrics.contains("incident_operator_agent_pods_created_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "incident_operator_incidents_finished_total{phase=\"Completed\",outcome=\"reported\"} 1"
        ),
        "{metrics}"
    );
    let (ready_line, _) = controller.http_get("/readyz").await;
    assert!(ready_line.contains("200"), "{ready_line}");

    controller.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failing_agent_is_retried_then_marked_failed() {
    let cluster = Cluster::start().await;
    let controller =
        RunningController::start(&cluster.operator_client, config(FAILING_IMAGE, None, 3));
    cluster.apply_incident("disk-full", "warning");

    let incident = cluster.wait_for_phase("disk-full", Phase::Failed).await;
    let status = incident.status.expect("status");
    assert_eq!(status.attempts, Some(2), "one try and one retry");
    assert_eq!(status.outcome, Some(Outcome::Error));
    let message = status.message.expect("message");
    assert!(message.contains("AgentError"), "{message}");
    assert!(message.contains("code 3"), "{message}");
    assert!(
        message.contains("refused the key"),
        "log tail missing: {message}"
    );
    let failed = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Failed")
        .expect("Failed condition");
    assert_eq!(
        (failed.status.as_str(), failed.reason.as_str()),
        ("True", "BackoffLimitExceeded")
    );
    let pods: Vec<String> = cluster
        .agent_pods("disk-full")
        .await
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    assert_eq!(pods, ["disk-full-agent-1", "disk-full-agent-2"]);
    for want in ["AgentStarted", "AgentRetrying", "Failed"] {
        cluster.wait_for_event("disk-full", want).await;
    }

    controller.stop().await;
    cluster.stop().await;
}

/// (start, end) in nanoseconds of every stand-in agent run, from the marks on the audit volume.
fn agent_runs(dir: &Path) -> BTreeMap<String, (u128, u128)> {
    let mut runs = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("audit dir").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(key) = name.strip_suffix(".start") else {
            continue;
        };
        let read = |suffix: &str| -> Option<u128> {
            std::fs::read_to_string(dir.join(format!("{key}{suffix}")))
                .ok()?
                .trim()
                .parse()
                .ok()
        };
        if let (Some(start), Some(end)) = (read(".start"), read(".end")) {
            runs.insert(key.to_string(), (start, end));
        }
    }
    runs
}

/// Most runs that overlapped at any moment.
fn max_overlap(runs: &BTreeMap<String, (u128, u128)>) -> usize {
    let mut edges: Vec<(u128, i32)> = runs
        .values()
        .flat_map(|(start, end)| [(*start, 1), (*end, -1)])
        .collect();
    // Ends before starts at the same instant: touching runs do not overlap.
    edges.sort();
    let mut current = 0;
    let mut most = 0;
    for (_, delta) in edges {
        current += delta;
        most = most.max(current);
    }
    usize::try_from(most).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_limit_holds_with_ten_incidents_and_critical_go_first() {
    let cluster = Cluster::start().await;
    // All ten exist before the controller starts, so the queue decides the order.
    let names: Vec<String> = (0..10).map(|i| format!("inc-{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let severity = if i >= 7 { "critical" } else { "warning" };
        cluster.apply_incident(name, severity);
    }
    let controller =
        RunningController::start(&cluster.operator_client, config(SLEEPER_IMAGE, None, 3));

    // While they run, the API never shows more than three unfinished agent pods.
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
    let started = Instant::now();
    let mut most_active = 0;
    loop {
        let list = pods
            .list(&ListParams::default().labels(keys::AGENT_POD_SELECTOR))
            .await
            .expect("list pods");
        let active = list
            .items
            .iter()
            .filter(|p| {
                !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
            })
            .count();
        most_active = most_active.max(active);
        let incidents = cluster
            .incidents()
            .list(&ListParams::default())
            .await
            .expect("list");
        let completed = incidents
            .items
            .iter()
            .filter(|i| phase_of(i) == Some(Phase::Completed))
            .count();
        if completed == names.len() {
            break;
        }
        assert!(started.elapsed() < WAIT, "only {completed} of 10 completed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        most_active <= 3,
        "{most_active} agent pods were active at once"
    );

    let runs = agent_runs(&cluster.audit_dir());
    assert_eq!(
        runs.len(),
        10,
        "every incident ran its agent exactly once: {runs:?}"
    );
    let overlap = max_overlap(&runs);
    assert!(overlap <= 3, "{overlap} agents ran at once");
    assert!(overlap >= 2, "agents never ran in parallel");
    // The three critical incidents were the first three to start.
    let mut by_start: Vec<(&String, &(u128, u128))> = runs.iter().collect();
    by_start.sort_by_key(|(_, (start, _))| *start);
    let first: Vec<&str> = by_start[..3].iter().map(|(k, _)| k.as_str()).collect();
    for critical in ["inc-7", "inc-8", "inc-9"] {
        assert!(
            first
                .iter()
                .any(|k| k.starts_with(&format!("{NS}_{critical}."))),
            "{critical} was not among the first three: {first:?}"
        );
    }
    for name in &names {
        assert_eq!(cluster.agent_pods(name).await.len(), 1, "{name}");
    }

    controller.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_start_each_agent_once_and_hand_over() {
    let cluster = Cluster::start().await;
    let lease = |identity: &str| LeaseSettings {
        name: RELEASE.to_string(),
        namespace: NS.to_string(),
        identity: identity.to_string(),
        duration: Duration::from_secs(2),
        owner: None,
    };
    let mut config_a = config(SLOW_SLEEPER_IMAGE, None, 3);
    config_a.lease = Some(lease("replica-a"));
    config_a.identity = "replica-a".to_string();
    let mut config_b = config(SLOW_SLEEPER_IMAGE, None, 3);
    config_b.lease = Some(lease("replica-b"));
    config_b.identity = "replica-b".to_string();
    let a = RunningController::start(&cluster.operator_client, config_a);
    let b = RunningController::start(&cluster.operator_client, config_b);

    let names = ["ha-0", "ha-1", "ha-2"];
    for name in names {
        cluster.apply_incident(name, "warning");
    }
    // Wait until every agent runs, then stop whichever replica leads.
    for name in names {
        cluster.wait_for_phase(name, Phase::Running).await;
    }
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), NS);
    let holder = leases
        .get(RELEASE)
        .await
        .expect("lease exists")
        .spec
        .and_then(|s| s.holder_identity)
        .expect("a holder");
    let (leader, standby, standby_identity) = if holder == "replica-a" {
        (a, b, "replica-b")
    } else {
        (b, a, "replica-a")
    };
    let (_, ready) = standby.http_get("/readyz").await;
    assert!(
        ready.contains("ready"),
        "a healthy standby is ready: {ready}"
    );
    leader.stop().await;

    for name in names {
        let incident = cluster.wait_for_phase(name, Phase::Completed).await;
        assert_eq!(incident.status.and_then(|s| s.attempts), Some(1), "{name}");
        let pods = cluster.agent_pods(name).await;
        assert_eq!(pods.len(), 1, "{name} got {} agent pods", pods.len());
    }
    let runs = agent_runs(&cluster.audit_dir());
    assert_eq!(runs.len(), names.len(), "each agent ran once: {runs:?}");
    // The standby took the Lease over (the stopping leader released it).
    let holder = leases
        .get(RELEASE)
        .await
        .expect("lease exists")
        .spec
        .and_then(|s| s.holder_identity);
    assert_eq!(holder.as_deref(), Some(standby_identity));

    standby.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn controller_restart_mid_incident_creates_no_duplicate_pod() {
    let cluster = Cluster::start().await;
    let first = RunningController::start(
        &cluster.operator_client,
        config(SLOW_SLEEPER_IMAGE, None, 3),
    );
    cluster.apply_incident("restart-me", "warning");
    cluster
        .wait_for("restart-me", "running its agent", |incident| {
            phase_of(incident) == Some(Phase::Running)
                && incident
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.iter().find(|c| c.type_ == "AgentRunning"))
                    .is_some_and(|c| c.reason == "PodRunning")
        })
        .await;
    first.stop().await;

    let second = RunningController::start(
        &cluster.operator_client,
        config(SLOW_SLEEPER_IMAGE, None, 3),
    );
    let incident = cluster.wait_for_phase("restart-me", Phase::Completed).await;
    assert_eq!(incident.status.and_then(|s| s.attempts), Some(1));
    let pods: Vec<String> = cluster
        .agent_pods("restart-me")
        .await
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    assert_eq!(pods, ["restart-me-agent-1"]);
    assert_eq!(agent_runs(&cluster.audit_dir()).len(), 1);

    second.stop().await;
    cluster.stop().await;
}

fn condition_reason(incident: &Incident, type_: &str) -> Option<String> {
    incident
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.reason.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_api_key_secret_is_reported_then_recovers() {
    let cluster = Cluster::start().await;
    cluster.kubectl(&["-n", NS, "delete", "secret", "anthropic-api-key"], None);
    let controller =
        RunningController::start(&cluster.operator_client, config(SLEEPER_IMAGE, None, 3));
    cluster.apply_incident("no-key", "warning");

    let waiting = cluster
        .wait_for("no-key", "waiting for its Secret", |incident| {
            condition_reason(incident, "Ready").as_deref() == Some("MissingApiKeySecret")
        })
        .await;
    let status = waiting.status.expect("status");
    assert_eq!(status.phase, Some(Phase::Pending));
    assert!(
        status
            .message
            .as_deref()
            .is_some_and(|m| m.contains("shop/anthropic-api-key")),
        "{:?}",
        status.message
    );
    assert!(
        cluster.agent_pods("no-key").await.is_empty(),
        "no pod without a key"
    );
    cluster
        .wait_for_event("no-key", "MissingApiKeySecret")
        .await;

    cluster.kubectl_apply(NAMESPACE_YAML);
    let done = cluster.wait_for_phase("no-key", Phase::Completed).await;
    assert_eq!(done.status.and_then(|s| s.attempts), Some(1));

    controller.stop().await;
    cluster.stop().await;
}

/// The Incident CRD with its schema replaced by "anything goes", as an older or hand-edited CRD
/// might be: the API server then accepts Incidents the controller cannot read.
fn permissive_crd_json() -> String {
    use kube::CustomResourceExt;
    let mut crd = serde_json::to_value(Incident::crd()).expect("crd as json");
    let schema = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    for version in crd["spec"]["versions"].as_array_mut().expect("versions") {
        version["schema"]["openAPIV3Schema"] = schema.clone();
        version
            .as_object_mut()
            .expect("version object")
            .remove("additionalPrinterColumns");
    }
    crd.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreadable_incident_is_failed_without_stalling_the_others() {
    let cluster = Cluster::start().await;
    cluster.kubectl_apply(&permissive_crd_json());
    let controller =
        RunningController::start(&cluster.operator_client, config(SLEEPER_IMAGE, None, 3));
    cluster.apply_incident("bad-severity", "urgent");
    cluster.apply_incident("fine", "warning");

    // Read through a type that does not care about the spec.
    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
        cluster.client.clone(),
        NS,
        &kube::api::ApiResource::erase::<Incident>(&()),
    );
    let started = Instant::now();
    let bad_status = loop {
        let object = raw.get("bad-severity").await.expect("get");
        let status = object.data.get("status").cloned().unwrap_or_default();
        if status["phase"] == "Failed" {
            break status;
        }
        assert!(
            started.elapsed() < WAIT,
            "bad-severity never failed: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let message = bad_status["message"].as_str().unwrap_or_default();
    assert!(message.contains("urgent"), "{message}");
    let failed = bad_status["conditions"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["type"] == "Failed"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(failed["reason"], "InvalidSpec");
    assert_eq!(failed["status"], "True");
    cluster.wait_for_event("bad-severity", "InvalidSpec").await;

    // The watch goes on: the good Incident completes.
    cluster.wait_for_phase("fine", Phase::Completed).await;

    // Fixing the spec starts the investigation.
    cluster.kubectl(
        &[
            "-n",
            NS,
            "patch",
            "inc",
            "bad-severity",
            "--type=merge",
            "-p",
            r#"{"spec":{"severity":"critical"}}"#,
        ],
        None,
    );
    let fixed = cluster
        .wait_for_phase("bad-severity", Phase::Completed)
        .await;
    assert_eq!(fixed.status.and_then(|s| s.attempts), Some(1));

    controller.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_a_new_rerun_value_runs_a_finished_incident_again() {
    let cluster = Cluster::start().await;
    let controller =
        RunningController::start(&cluster.operator_client, config(SLEEPER_IMAGE, None, 3));
    cluster.apply_incident("again", "warning");
    let first = cluster.wait_for_phase("again", Phase::Completed).await;
    let first_session = first.status.and_then(|s| s.session_id).expect("session");

    // A spec change is noticed but does not rerun.
    cluster.kubectl(
        &[
            "-n",
            NS,
            "patch",
            "inc",
            "again",
            "--type=merge",
            "-p",
            r#"{"spec":{"title":"new title"}}"#,
        ],
        None,
    );
    cluster
        .wait_for("again", "aware of generation 2", |incident| {
            incident.status.as_ref().and_then(|s| s.observed_generation) == Some(2)
        })
        .await;
    cluster
        .wait_for_event("again", "SpecChangedAfterFinish")
        .await;
    assert_eq!(agent_runs(&cluster.audit_dir()).len(), 1);
    assert_eq!(cluster.agent_pods("again").await.len(), 1);

    cluster.kubectl(
        &[
            "-n",
            NS,
            "annotate",
            "inc",
            "again",
            &format!("{}=please", keys::ANNOTATION_RERUN),
        ],
        None,
    );
    let second = cluster
        .wait_for("again", "completed a second time", |incident| {
            let session = incident
                .status
                .as_ref()
                .and_then(|s| s.session_id.as_deref());
            phase_of(incident) == Some(Phase::Completed)
                && session.is_some_and(|session| session != first_session)
        })
        .await;
    assert_eq!(
        second
            .annotations()
            .get(keys::ANNOTATION_RERUN_HONOURED)
            .map(String::as_str),
        Some("please")
    );
    assert_eq!(second.status.and_then(|s| s.attempts), Some(1));
    assert_eq!(
        agent_runs(&cluster.audit_dir()).len(),
        2,
        "the agent ran twice"
    );
    let pods = cluster.agent_pods("again").await;
    assert_eq!(pods.len(), 1, "the first run's pod was deleted");
    assert_ne!(
        pods[0].labels().get(keys::LABEL_RUN).map(String::as_str),
        Some("initial")
    );

    controller.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn finished_agent_pods_are_deleted_after_their_ttl_and_the_audit_stays() {
    let cluster = Cluster::start().await;
    let mut short_ttl = config(SLEEPER_IMAGE, None, 3);
    short_ttl.policy.finished_pod_ttl = Duration::from_secs(1);
    let controller = RunningController::start(&cluster.operator_client, short_ttl);
    cluster.apply_incident("short-lived", "info");
    cluster
        .wait_for_phase("short-lived", Phase::Completed)
        .await;

    let started = Instant::now();
    while !cluster.agent_pods("short-lived").await.is_empty() {
        assert!(
            started.elapsed() < WAIT,
            "the finished pod was never deleted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        agent_runs(&cluster.audit_dir()).len(),
        1,
        "the audit volume keeps its files"
    );
    let incident = cluster
        .incidents()
        .get("short-lived")
        .await
        .expect("incident");
    assert_eq!(
        phase_of(&incident),
        Some(Phase::Completed),
        "deleting the pod changes nothing"
    );

    controller.stop().await;
    cluster.stop().await;
}

/// `incident-operator controller` as a process against the cluster.
fn controller_process(cluster: &Cluster, extra: &[&str]) -> std::process::Child {
    Command::new(BIN)
        .arg("controller")
        .args(["--listen", &free_port().to_string(), "--namespace", NS])
        .args(extra)
        .env("KUBECONFIG", &cluster.operator_kubeconfig)
        .env("INCIDENT_OPERATOR_LOG_LEVEL", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("controller process starts")
}

/// Waits for `child` to exit, killing it after [`WAIT`].
fn wait_with_deadline(mut child: std::process::Child) -> std::process::Output {
    let started = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if started.elapsed() > WAIT {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn controller_binary_fails_fast_when_the_crd_is_missing() {
    let cluster = Cluster::start_without_crd().await;
    let child = controller_process(&cluster, &["--leader-election=false"]);
    let output = tokio::task::spawn_blocking(move || wait_with_deadline(child))
        .await
        .expect("join");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("incidents.sre.agentlab.dev"), "{stderr}");
    assert!(stderr.contains("not installed"), "{stderr}");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn controller_binary_leads_then_releases_the_lease_on_sigterm() {
    let cluster = Cluster::start().await;
    let child = controller_process(
        &cluster,
        &[
            "--lease-name",
            RELEASE,
            "--lease-namespace",
            NS,
            "--identity",
            "binary-replica",
            "--lease-duration",
            "5s",
        ],
    );
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), NS);
    let holder = |lease: Option<Lease>| {
        lease
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
            .filter(|h| !h.is_empty())
    };
    let started = Instant::now();
    while holder(leases.get_opt(RELEASE).await.expect("get lease")).as_deref()
        != Some("binary-replica")
    {
        assert!(
            started.elapsed() < WAIT,
            "the controller never took the lease"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let output = tokio::task::spawn_blocking(move || wait_with_deadline(child))
        .await
        .expect("join");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(
        holder(leases.get_opt(RELEASE).await.expect("get lease")),
        None,
        "the lease was released: {stderr}"
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alert_through_the_intake_ends_in_a_completed_investigation() {
    use incident_operator::controller::flags::IntakeSettings;
    use incident_operator::incident::IncidentSource;

    let cluster = Cluster::start().await;
    let token_file = cluster.dir.path().join("intake-token");
    std::fs::write(&token_file, "s3cret-token\n").expect("token file");
    let mut with_intake = config(SLEEPER_IMAGE, None, 3);
    with_intake.intake = Some(IntakeSettings {
        namespace: NS.to_string(),
        max_body_bytes: 1024 * 1024,
        token_file: Some(token_file),
    });
    let controller = RunningController::start(&cluster.operator_client, with_intake);

    let notification = json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"CheckoutErrors\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "incident-operator",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "CheckoutErrors", "severity": "critical", "service": "checkout"},
            "annotations": {"summary": "checkout 5xx above 5%"},
            "startsAt": "2026-01-01T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
            "fingerprint": labels_fingerprint(&BTreeMap::from(
                [("alertname", "CheckoutErrors"), ("severity", "critical"), ("service", "checkout")]
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            ))
        }]
    });
    let url = format!("http://{}/alertmanager", controller.listen);
    let http = reqwest::Client::new();
    // The HTTP server comes up with the controller; retry until it answers.
    let started = Instant::now();
    let unauthenticated = loop {
        match http.post(&url).json(&notification).send().await {
            Ok(response) => break response.status().as_u16(),
            Err(error) => {
                assert!(started.elapsed() < WAIT, "intake never answered: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(unauthenticated, 401);
    let accepted = http
        .post(&url)
        .bearer_auth("s3cret-token")
        .json(&notification)
        .send()
        .await
        .expect("post");
    assert!(accepted.status().is_success(), "{}", accepted.status());

    let started = Instant::now();
    let name = loop {
        let list = cluster
            .incidents()
            .list(&ListParams::default())
            .await
            .expect("list");
        if let Some(incident) = list.items.first() {
            assert_eq!(incident.spec.source, IncidentSource::Alertmanager);
            break incident.name_any();
        }
        assert!(started.elapsed() < WAIT, "the intake created no Incident");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    cluster.wait_for_phase(&name, Phase::Completed).await;
    let (_, metrics) = controller.http_get("/metrics").await;
    assert!(
        metrics.contains("incident_operator_intake_alerts_received_total"),
        "{metrics}"
    );

    controller.stop().await;
    cluster.stop().await;
}

/// The agent's RBAC, enforced by the API server: in investigate mode its `kubectl delete pod` is
/// refused (403) under the read-only role; only in remediate mode, under the chart's remediation
/// ServiceAccount, does the same command go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_agents_kubectl_delete_is_refused_even_in_remediate_mode_without_an_approval() {
    let cluster =
        Cluster::start_with_rbac(&chart_rbac_yaml_with(&["remediation.enabled=true"])).await;
    cluster.kubectl_apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: victim\n  namespace: {NS}\nspec:\n  containers:\n  - name: c\n    image: not-run:e2e\n"
    ));
    let mut with_remediation = config(DELETER_IMAGE, None, 3);
    with_remediation.pod.remediation_service_account =
        Some(REMEDIATION_SERVICE_ACCOUNT.to_string());
    let controller = RunningController::start(&cluster.operator_client, with_remediation);
    let summary = |incident: Incident| {
        incident
            .status
            .and_then(|s| s.report)
            .map(|r| r.summary)
            .unwrap_or_default()
    };

    cluster.apply_incident("try-delete", "warning");
    let said = summary(cluster.wait_for_phase("try-delete", Phase::Completed).await);
    // RBAC, not the agent's gate (this agent has none): the read-only role has no delete.
    assert!(
        said.contains(&format!(
            "pods 'victim' is forbidden: User 'system:serviceaccount:{NS}:{AGENT_SERVICE_ACCOUNT}' cannot delete resource 'pods' in API group '' in the namespace '{NS}'"
        )),
        "{said}"
    );
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
    assert!(
        pods.get_opt("victim").await.expect("get").is_some(),
        "the pod was not deleted"
    );

    // A remediate Incident investigates read-only too (issue 12): the remediation account is
    // only for the execution of an approved plan (see controller_e2e/approval.rs).
    cluster.kubectl_apply(&format!(
        "apiVersion: sre.agentlab.dev/v1alpha1\nkind: Incident\nmetadata:\n  name: do-delete\n  namespace: {NS}\nspec:\n  title: remediate by deleting the victim\n  severity: warning\n  mode: remediate\n"
    ));
    let said = summary(cluster.wait_for_phase("do-delete", Phase::Completed).await);
    assert!(
        said.contains(&format!(
            "User 'system:serviceaccount:{NS}:{AGENT_SERVICE_ACCOUNT}' cannot delete resource 'pods'"
        )),
        "{said}"
    );
    assert!(
        pods.get_opt("victim").await.expect("get").is_some(),
        "the pod was not deleted"
    );
    controller.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_missing_agent_service_account_shows_on_the_incident() {
    let cluster = Cluster::start().await;
    let mut missing = config(SLEEPER_IMAGE, None, 3);
    missing.pod.service_account = "nobody".to_string();
    let controller = RunningController::start(&cluster.operator_client, missing);
    cluster.apply_incident("no-account", "warning");
    let waiting = cluster
        .wait_for("no-account", "waiting for its ServiceAccount", |incident| {
            condition_reason(incident, "Ready").as_deref() == Some("MissingServiceAccount")
        })
        .await;
    let status = waiting.status.expect("status");
    assert_eq!(status.phase, Some(Phase::Pending));
    let message = status.message.unwrap_or_default();
    assert!(message.contains("ServiceAccount shop/nobody"), "{message}");
    assert!(
        message.contains("error looking up service account shop/nobody"),
        "the API server's refusal is quoted: {message}"
    );
    cluster
        .wait_for_event("no-account", "MissingServiceAccount")
        .await;
    assert!(cluster.agent_pods("no-account").await.is_empty());
    controller.stop().await;
    cluster.stop().await;
}

/// The chart's operator RBAC is exactly what the controller needs: drop one verb from a rendered
/// copy and the controller fails, visibly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_operator_fails_visibly_when_the_chart_drops_a_verb_it_needs() {
    let full = chart_rbac_yaml();
    let pods_rule = r#"verbs: ["get", "list", "watch", "create", "delete"]"#;
    assert_eq!(
        full.matches(pods_rule).count(),
        1,
        "the operator's pods rule: {full}"
    );
    let without_create = full.replace(pods_rule, r#"verbs: ["get", "list", "watch", "delete"]"#);
    let cluster = Cluster::start_with_rbac(&without_create).await;
    let controller =
        RunningController::start(&cluster.operator_client, config(SLEEPER_IMAGE, None, 3));
    cluster.apply_incident("no-create", "warning");
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), NS);
    let wanted = format!(
        "pods is forbidden: User \"system:serviceaccount:{NS}:{OPERATOR_SERVICE_ACCOUNT}\" cannot create resource \"pods\""
    );
    let started = Instant::now();
    loop {
        let notes: Vec<String> = events
            .list(&ListParams::default())
            .await
            .expect("events")
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("CreatePodFailed"))
            .filter_map(|e| e.note)
            .collect();
        if notes.iter().any(|n| n.contains(&wanted)) {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "no CreatePodFailed event naming the 403: {notes:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(cluster.agent_pods("no-create").await.is_empty());
    controller.stop().await;
    cluster.stop().await;
}

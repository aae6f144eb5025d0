//! The chart installed with `helm install` into the API-server emulator and run as a product: the
//! emulator's Deployment and ReplicaSet controllers turn the chart's operator Deployment into a pod,
//! the process kubelet runs that pod as a local `incident-operator controller` process with exactly
//! the chart's args, env, volumes and ServiceAccount (its token comes from a TokenRequest), and the
//! operator in turn starts agent pods (the real `incident-operator agent`) that talk to a scripted
//! Messages API on loopback.
//!
//! An Incident applied from `examples/incident.yaml` completes and is read back with `kubectl get`
//! and `kubectl describe`; its audit document is on the chart's audit PVC with the SHA-256 the
//! status claims; an Alertmanager webhook to the operator's port, with the token from the chart's
//! Secret, becomes a second completed Incident; `helm uninstall` stops the operator.
//!
//! The emulator has no storage provisioner, so the chart's audit PVC stays Pending: the process
//! kubelet maps a claim to a directory by name and only needs the claim to exist. Nothing in the
//! chart is overridden for the emulator except the Messages API URL and the operator's address: a
//! free port on 127.0.0.1 (`service.listenHost`), since the kubelet runs the operator on the host.
//!
//! `KUBE_E2E_REAL_CLUSTER=1` runs the same test against the KUBECONFIG cluster, the process
//! kubelet joining it as a node (see `support/cluster.rs`); there the chart's RBAC is enforced.

#[path = "support/cluster.rs"]
mod cluster;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use incident_operator::incident::{Incident, IncidentSource, Phase};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use kube_emulator::kubelet::ProcessKubelet;
use scripted_model::{RecordedRequest, ScriptedModel, Step, reply};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_incident-operator");
const RELEASE: &str = "sre";
/// Where the chart (and so the operator) is installed.
const RELEASE_NS: &str = "incident-system";
/// Where Incidents live and agents run: the namespace `examples/incident.yaml` names.
const INCIDENT_NS: &str = "default";
const EXAMPLE_INCIDENT: &str = "checkout-api-5xx";
/// The chart's Lease: named after the release's full name.
const LEASE: &str = "sre-incident-operator";
const WEBHOOK_TOKEN: &str = "e2e-webhook-token-0123456789abcdef";
/// Generous: only there so a broken piece fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(90);
const SUMMARY: &str = "checkout-api pods look healthy; the 5xx come from the payment upstream";

/// The chart's values for this test: the agents' Messages API is the scripted model, the operator
/// listens on `port`, and it watches the example's namespace.
fn values_yaml(model_url: &str, port: u16) -> String {
    format!(
        "watchNamespaces: [{INCIDENT_NS}]\n\
         alertmanager:\n  incidentNamespace: {INCIDENT_NS}\n\
         anthropic:\n  baseUrl: \"{model_url}\"\n\
         service:\n  port: {port}\n  listenHost: 127.0.0.1\n\
         operator:\n  leaderElection:\n    enabled: true\n"
    )
}

/// The scripted model: the first turn of every session runs one harmless shell command, the next
/// files the report. Answering by turn (not by a global script) keeps two sessions independent.
fn model_answer(request: &RecordedRequest) -> Step {
    let turns = request.body["messages"].as_array().map_or(0, Vec::len);
    if turns <= 1 {
        Step::Reply(reply::tool_use(
            "t1",
            "shell",
            json!({"command": "echo checkout-api-pods-look-fine"}),
        ))
    } else {
        Step::Reply(reply::tool_use(
            "r1",
            "report",
            json!({"summary": SUMMARY,
                   "rootCause": "the payment upstream times out",
                   "evidence": ["echo: checkout-api-pods-look-fine"],
                   "recommendations": ["page the payments team"],
                   "confidence": "medium", "resolved": false}),
        ))
    }
}

/// The API server, a process kubelet, and the tools pointed at them.
struct Cluster {
    api: cluster::ApiServer,
    client: Client,
    kubelet: Option<ProcessKubelet>,
    dir: TempDir,
    kubeconfig: PathBuf,
}

impl Cluster {
    /// Starts the emulator and a kubelet that runs `images` as the freshly built binary.
    async fn start(dir: TempDir, images: &[String]) -> Cluster {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("E2E_LOG"))
            .with_test_writer()
            .try_init();
        let api = cluster::ApiServer::start(dir.path()).await;
        let client = api.client.clone();
        let kubeconfig = api.kubeconfig.clone();
        let images: BTreeMap<String, PathBuf> = images
            .iter()
            .map(|image| (image.clone(), PathBuf::from(BIN)))
            .collect();
        let kubelet = ProcessKubelet::start(
            client.clone(),
            api.kubelet_config(images, dir.path().join("kubelet")),
        )
        .await
        .expect("kubelet starts");
        let cluster = Cluster {
            api,
            client,
            kubelet: Some(kubelet),
            dir,
            kubeconfig,
        };
        cluster.remove_leftovers().await;
        cluster
    }

    /// On a real cluster, what an earlier (aborted) run may have left: the release, its
    /// namespace, the Secret and Incidents in the example's namespace. Nothing on the emulator.
    async fn remove_leftovers(&self) {
        if self.api.is_emulator() {
            return;
        }
        let helm = tool("helm");
        let _ = self.run(
            &helm,
            &[
                "uninstall",
                RELEASE,
                "--namespace",
                RELEASE_NS,
                "--ignore-not-found",
                "--wait",
            ],
        );
        let kubectl = tool("kubectl");
        for args in [
            &[
                "-n",
                INCIDENT_NS,
                "delete",
                "secret",
                "anthropic-api-key",
                "--ignore-not-found",
            ][..],
            &[
                "-n",
                INCIDENT_NS,
                "delete",
                "incidents",
                "--all",
                "--ignore-not-found",
            ][..],
        ] {
            let _ = self.run(&kubectl, args);
        }
        self.api.delete_namespaces(&[RELEASE_NS]).await;
    }

    /// Runs `tool` with `args` against the emulator (scratch HOME, bounded by [`WAIT`]).
    fn run(&self, tool: &Path, args: &[&str]) -> Output {
        run_tool(tool, args, &self.kubeconfig, self.dir.path())
    }

    /// Runs kubectl and requires success; returns stdout.
    fn kubectl(&self, args: &[&str]) -> String {
        self.ok(&tool("kubectl"), args)
    }

    fn helm(&self, args: &[&str]) -> String {
        self.ok(&tool("helm"), args)
    }

    fn ok(&self, tool: &Path, args: &[&str]) -> String {
        let output = self.run(tool, args);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            self.fail(&format!(
                "{} {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
                tool.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        stdout
    }

    /// Panics with `what` and the state an SRE would look at: every object, pod logs, and what
    /// the kubelet has on disk.
    fn fail(&self, what: &str) -> ! {
        let kubectl = tool("kubectl");
        let text = |args: &[&str]| {
            let output = self.run(&kubectl, args);
            format!(
                "$ kubectl {}\n{}{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        };
        let mut dump = text(&["get", "all,inc,pvc,secrets", "-A", "-o", "wide"]);
        dump.push_str(&text(&["get", "events", "-A"]));
        for namespace in [RELEASE_NS, INCIDENT_NS] {
            let names = self.run(&kubectl, &["-n", namespace, "get", "pods", "-o", "name"]);
            for pod in String::from_utf8_lossy(&names.stdout).lines() {
                dump.push_str(&text(&["-n", namespace, "logs", pod, "--tail=60"]));
            }
        }
        dump.push_str("kubelet work dir:\n");
        for path in walk(&self.dir.path().join("kubelet")) {
            dump.push_str(&format!("  {}\n", path.display()));
        }
        panic!("{what}\n\n--- cluster state ---\n{dump}");
    }

    /// Polls `probe` every 200 ms until it returns `Some`; after [`WAIT`], fails with the dump.
    async fn wait_until<T, F>(&self, what: &str, mut probe: impl FnMut() -> F) -> T
    where
        F: std::future::Future<Output = Option<T>>,
    {
        let started = Instant::now();
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            if started.elapsed() > WAIT {
                self.fail(&format!("timed out after {WAIT:?} waiting for {what}"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn operator_pods(&self) -> Vec<Pod> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), RELEASE_NS);
        pods.list(&ListParams::default().labels(&format!(
            "app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=operator"
        )))
        .await
        .map(|list| list.items)
        .unwrap_or_default()
    }

    fn incidents(&self) -> Api<Incident> {
        Api::namespaced(self.client.clone(), INCIDENT_NS)
    }

    /// Waits for the Incident `name` to complete; fails at once if it fails instead.
    async fn wait_for_completed(&self, name: &str) -> Incident {
        let incidents = self.incidents();
        let finished = self
            .wait_until(&format!("Incident {name} to finish"), || {
                let incidents = incidents.clone();
                async move {
                    incidents.get(name).await.ok().filter(|incident| {
                        matches!(
                            incident.status.as_ref().and_then(|s| s.phase),
                            Some(Phase::Completed | Phase::Failed)
                        )
                    })
                }
            })
            .await;
        let status = finished.status.as_ref();
        if status.and_then(|s| s.phase) != Some(Phase::Completed) {
            self.fail(&format!(
                "Incident {name} failed: {:?}",
                status.and_then(|s| s.message.as_deref())
            ));
        }
        finished
    }

    /// The agent pods in the Incidents' namespace.
    async fn agent_pods(&self) -> Vec<Pod> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), INCIDENT_NS);
        pods.list(&ListParams::default())
            .await
            .map(|list| list.items)
            .unwrap_or_default()
    }

    /// The chart's audit claim's directory on the host.
    fn audit_dir(&self) -> PathBuf {
        self.dir
            .path()
            .join("kubelet/pvc")
            .join(INCIDENT_NS)
            .join(format!("{RELEASE}-incident-operator-audit"))
    }

    /// Checks the Incident's audit document is on the audit volume with the SHA-256 its status
    /// names.
    fn check_audit(&self, incident: &Incident) {
        let audit = incident
            .status
            .as_ref()
            .and_then(|s| s.audit.clone())
            .unwrap_or_else(|| self.fail(&format!("{}: no status.audit", incident.name_any())));
        let file_name = Path::new(&audit.path)
            .file_name()
            .unwrap_or_else(|| self.fail(&format!("audit path {:?} has no file", audit.path)));
        let on_volume = self.audit_dir().join(file_name);
        let bytes = std::fs::read(&on_volume).unwrap_or_else(|error| {
            self.fail(&format!(
                "audit {} (status path {}) unreadable: {error}",
                on_volume.display(),
                audit.path
            ))
        });
        let digest = hex::encode(Sha256::digest(&bytes));
        if audit.sha256.as_deref() != Some(digest.as_str()) {
            self.fail(&format!(
                "audit {} hashes to {digest}, status.audit.sha256 says {:?}",
                on_volume.display(),
                audit.sha256
            ));
        }
    }

    async fn stop(mut self) {
        if let Some(kubelet) = self.kubelet.take() {
            kubelet.stop().await;
        }
        self.remove_leftovers().await;
        self.api.stop().await;
    }
}

fn tool(name: &str) -> PathBuf {
    match name {
        "helm" => kube_emulator::tools::helm(),
        _ => kube_emulator::tools::kubectl(),
    }
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs a tool with a scratch HOME and Helm directories, killing it after [`WAIT`].
fn run_tool(tool: &Path, args: &[&str], kubeconfig: &Path, scratch: &Path) -> Output {
    let home = scratch.join("home");
    let mut child = Command::new(tool)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", &home)
        .env("HELM_CACHE_HOME", home.join("helm-cache"))
        .env("HELM_CONFIG_HOME", home.join("helm-config"))
        .env("HELM_DATA_HOME", home.join("helm-data"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{} {args:?} does not start: {e}", tool.display()));
    let started = Instant::now();
    while child.try_wait().ok().flatten().is_none() && started.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(20));
    }
    if child.try_wait().ok().flatten().is_none() {
        let _ = child.kill();
    }
    child.wait_with_output().expect("tool output")
}

/// Every path under `dir`, depth first (for failure dumps).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            found.push(path.clone());
            if path.is_dir() {
                found.extend(walk(&path));
            }
        }
    }
    found
}

fn repo_file(relative: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(relative)
        .to_string_lossy()
        .into_owned()
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The operator image and the agent image the chart renders with `values`: the Deployment's
/// container image and its `--agent-image=` argument.
fn chart_images(values_file: &Path, scratch: &Path) -> (String, String) {
    let chart = repo_file("charts/incident-operator");
    let values = values_file.to_string_lossy();
    let args = [
        "template",
        RELEASE,
        chart.as_str(),
        "--namespace",
        RELEASE_NS,
        "--values",
        values.as_ref(),
    ];
    let output = run_tool(
        &tool("helm"),
        &args,
        &scratch.join("no-kubeconfig"),
        scratch,
    );
    assert!(
        output.status.success(),
        "helm template failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("rendered YAML");
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("the chart renders a Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let operator_image = container["image"]
        .as_str()
        .expect("operator image")
        .to_string();
    let agent_image = container["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find_map(|arg| arg.strip_prefix("--agent-image="))
        .expect("the chart passes --agent-image")
        .to_string();
    (operator_image, agent_image)
}

/// Parses `kubectl get` table output by the header's column positions (cells may be empty).
fn parse_table(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let header: Vec<char> = header.chars().collect();
    let starts: Vec<usize> = (0..header.len())
        .filter(|&i| !header[i].is_whitespace() && (i == 0 || header[i - 1].is_whitespace()))
        .collect();
    let cell = |chars: &[char], n: usize| -> String {
        let start = starts[n].min(chars.len());
        let end = starts
            .get(n + 1)
            .map_or(chars.len(), |&e| e.min(chars.len()));
        chars[start..end]
            .iter()
            .collect::<String>()
            .trim()
            .to_string()
    };
    let names: Vec<String> = (0..starts.len()).map(|n| cell(&header, n)).collect();
    lines
        .map(|line| {
            let chars: Vec<char> = line.chars().collect();
            names
                .iter()
                .enumerate()
                .map(|(n, name)| (name.clone(), cell(&chars, n)))
                .collect()
        })
        .collect()
}

/// A firing Alertmanager notification with one alert.
fn alert_notification() -> Value {
    json!({
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
            "fingerprint": "a1b2c3d4e5f60718"
        }]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn helm_installed_operator_investigates_an_incident_and_uninstalls() {
    let started = Instant::now();
    let model = ScriptedModel::start_with(model_answer).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let values_file = dir.path().join("values.yaml");
    std::fs::write(&values_file, values_yaml(&model.base_url(), port)).expect("values file");
    let (operator_image, agent_image) = chart_images(&values_file, dir.path());
    let cluster = Cluster::start(dir, &[operator_image.clone(), agent_image.clone()]).await;

    // What docs/install.md asks for before `helm install`: the namespace and the two Secrets.
    cluster.kubectl(&["create", "namespace", RELEASE_NS]);
    cluster.kubectl(&[
        "-n",
        INCIDENT_NS,
        "create",
        "secret",
        "generic",
        "anthropic-api-key",
        "--from-literal=api-key=sk-ant-e2e-key-0123456789abcdef",
    ]);
    cluster.kubectl(&[
        "-n",
        RELEASE_NS,
        "create",
        "secret",
        "generic",
        "incident-operator-webhook",
        &format!("--from-literal=token={WEBHOOK_TOKEN}"),
    ]);
    let chart = repo_file("charts/incident-operator");
    let values = values_file.to_string_lossy().into_owned();
    let installed = cluster.helm(&[
        "install",
        RELEASE,
        &chart,
        "--namespace",
        RELEASE_NS,
        "--values",
        &values,
    ]);
    assert!(installed.contains("STATUS: deployed"), "{installed}");

    // The Deployment becomes a pod the kubelet runs with the chart's image, which it maps to the
    // binary; the controller's /readyz answering on the chart's port proves the process is up.
    let c = &cluster;
    let operator_pod = cluster
        .wait_until("the operator pod to run", || async move {
            c.operator_pods()
                .await
                .into_iter()
                .find(|pod| pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
        })
        .await;
    let pod_spec = operator_pod.spec.clone().expect("pod spec");
    assert_eq!(
        pod_spec.service_account_name.as_deref(),
        Some("sre-incident-operator"),
        "the chart's operator ServiceAccount"
    );
    assert_eq!(
        pod_spec.containers[0].image.as_deref(),
        Some(&*operator_image)
    );
    // The leader's pod owns its Lease (Downward API POD_NAME/POD_UID): the garbage collector
    // removes the Lease with the pod even if the release fails because the Role is gone.
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), RELEASE_NS);
    let operator_uid = operator_pod.metadata.uid.clone().expect("pod uid");
    let leases_ref = &leases;
    let operator_name = operator_pod.metadata.name.clone();
    let operator_name = &operator_name;
    let lease = cluster
        .wait_until("the operator to hold its Lease", || async move {
            leases_ref
                .get_opt(LEASE)
                .await
                .ok()
                .flatten()
                .filter(|lease| {
                    lease
                        .spec
                        .as_ref()
                        .and_then(|s| s.holder_identity.as_deref())
                        == operator_name.as_deref()
                })
        })
        .await;
    let owners: Vec<(String, String)> = lease
        .owner_references()
        .iter()
        .map(|r| (r.kind.clone(), r.uid.clone()))
        .collect();
    assert_eq!(owners, vec![("Pod".to_string(), operator_uid)]);
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    cluster
        .wait_until("the operator's /readyz to answer 200", || {
            let request = http.get(format!("{base}/readyz")).send();
            async move {
                request
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ())
            }
        })
        .await;

    // The example Incident, exactly as shipped.
    cluster.kubectl(&["apply", "-f", &repo_file("examples/incident.yaml")]);
    let incident = cluster.wait_for_completed(EXAMPLE_INCIDENT).await;
    let status = incident.status.clone().expect("status");
    assert_eq!(
        status.report.as_ref().map(|r| r.summary.as_str()),
        Some(SUMMARY)
    );
    assert_eq!(status.attempts, Some(1));
    cluster.check_audit(&incident);

    // The operator made the agent pod from the chart's flags: its agent image, ServiceAccount and
    // audit claim.
    let agent_pod = cluster
        .agent_pods()
        .await
        .into_iter()
        .find(|pod| Some(pod.name_any()) == status.agent_pod)
        .unwrap_or_else(|| cluster.fail(&format!("no agent pod {:?}", status.agent_pod)));
    let agent_spec = agent_pod.spec.clone().expect("agent pod spec");
    assert_eq!(
        agent_spec.service_account_name.as_deref(),
        Some("sre-incident-operator-agent")
    );
    assert_eq!(
        agent_spec.containers[0].image.as_deref(),
        Some(&*agent_image)
    );
    let claims: Vec<String> = agent_spec
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|claim| claim.claim_name.clone())
        .collect();
    assert_eq!(claims, ["sre-incident-operator-audit"]);
    // The ServiceAccount admission plugin gave the agent its in-cluster credentials volume.
    let access = agent_spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name.starts_with("kube-api-access-"))
        .unwrap_or_else(|| cluster.fail("agent pod has no kube-api-access volume"));
    assert!(
        agent_spec.containers[0]
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| m.name == access.name
                && m.mount_path == "/var/run/secrets/kubernetes.io/serviceaccount"
                && m.read_only == Some(true)),
        "{:?}",
        agent_spec.containers[0].volume_mounts
    );

    // What an SRE would type.
    let table = cluster.kubectl(&["-n", INCIDENT_NS, "get", "inc", EXAMPLE_INCIDENT]);
    let rows = parse_table(&table);
    assert_eq!(rows.len(), 1, "{table}");
    assert_eq!(
        rows[0].get("PHASE").map(String::as_str),
        Some("Completed"),
        "{table}"
    );
    assert_eq!(
        rows[0].get("OUTCOME").map(String::as_str),
        Some("reported"),
        "{table}"
    );
    let described = cluster
        .wait_until(
            "AgentStarted and Completed events in kubectl describe",
            || {
                let text =
                    cluster.kubectl(&["-n", INCIDENT_NS, "describe", "inc", EXAMPLE_INCIDENT]);
                async move {
                    (text.contains("AgentStarted") && text.contains("Completed")).then_some(text)
                }
            },
        )
        .await;
    assert!(described.contains(SUMMARY), "{described}");

    // An Alertmanager webhook to the operator's port, authenticated with the chart's Secret.
    let url = format!("{base}/alertmanager");
    let refused = http
        .post(&url)
        .json(&alert_notification())
        .send()
        .await
        .expect("post without token");
    assert_eq!(refused.status().as_u16(), 401);
    let accepted = http
        .post(&url)
        .bearer_auth(WEBHOOK_TOKEN)
        .json(&alert_notification())
        .send()
        .await
        .expect("post with token");
    assert!(accepted.status().is_success(), "{}", accepted.status());
    let incidents = cluster.incidents();
    let alert_name = cluster
        .wait_until("an Incident from the webhook", || {
            let incidents = incidents.clone();
            async move {
                let list = incidents.list(&ListParams::default()).await.ok()?;
                list.items
                    .iter()
                    .find(|i| i.spec.source == IncidentSource::Alertmanager)
                    .map(ResourceExt::name_any)
            }
        })
        .await;
    let from_alert = cluster.wait_for_completed(&alert_name).await;
    cluster.check_audit(&from_alert);
    // Two sessions of two turns each: each agent ran once.
    assert_eq!(model.requests().len(), 4);
    // The agent's own status write can show Completed before the operator has reconciled it,
    // so the counter is awaited rather than read once.
    let finished =
        "incident_operator_incidents_finished_total{phase=\"Completed\",outcome=\"reported\"} 2";
    cluster
        .wait_until("both Incidents counted as finished in /metrics", || {
            let request = http.get(format!("{base}/metrics")).send();
            async move {
                let metrics = request.await.ok()?.text().await.ok()?;
                metrics.contains(finished).then_some(())
            }
        })
        .await;

    // Uninstalling removes the operator: its pod goes and the kubelet stops the process.
    cluster.helm(&["uninstall", RELEASE, "--namespace", RELEASE_NS]);
    cluster
        .wait_until("the operator pod to be deleted", || async move {
            c.operator_pods().await.is_empty().then_some(())
        })
        .await;
    cluster
        .wait_until("the operator process to stop listening", || {
            let request = http.get(format!("{base}/healthz")).send();
            async move { request.await.is_err().then_some(()) }
        })
        .await;
    let listed = cluster.helm(&["list", "--namespace", RELEASE_NS]);
    assert!(!listed.contains(RELEASE), "{listed}");
    // The Lease does not outlive the release.
    cluster
        .wait_until(
            "the Lease to be deleted with the operator pod",
            || async move {
                leases_ref
                    .get_opt(LEASE)
                    .await
                    .ok()
                    .and_then(|lease| lease.is_none().then_some(()))
            },
        )
        .await;

    cluster.stop().await;
    eprintln!("helm install end to end took {:?}", started.elapsed());
}

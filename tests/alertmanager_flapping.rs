//! The recurrence policy against a real Prometheus and Alertmanager (Debian's `prometheus` and
//! `prometheus-alertmanager`, installed by `.ci/install-alerting.sh`), both run directly on loopback
//! with temporary configs, pointed at the controller's intake; the controller runs on the API
//! server emulator with the process kubelet, and the agents are the real `incident-operator agent`
//! talking to the scripted Messages API.
//!
//! Two rules: `CheckoutFlapping` fires for 10 s out of every 20 s (cool-down 25 s through its
//! `recurrence_cooldown` label), `PaymentsDown` fires all the time (cool-down 10 min). What it
//! proves: one investigation per fingerprint per cool-down (the flapping alert gets exactly a first
//! and a second generation, the second created only after the first's cool-down; the steady alert
//! gets one), firings inside the cool-down are counted in `status.alert.recurrences`, and the second
//! generation's first model request carries the first generation's root cause.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use incident_operator::controller::flags::ControllerArgs;
use incident_operator::controller::run_until;
use incident_operator::incident::{Incident, Phase, crd_yaml};
use incident_operator::intake::LABEL_GENERATION;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use kube_emulator::Emulator;
use kube_emulator::kubelet::{KubeletConfig, ProcessKubelet};
use prometheus_client::registry::Registry;
use scripted_model::{ScriptedModel, Step, reply};
use serde_json::json;
use tokio::sync::watch;

const BIN: &str = env!("CARGO_BIN_EXE_incident-operator");
const NS: &str = "shop";
const AGENT_IMAGE: &str = "incident-operator:e2e";
const TOKEN: &str = "alertmanager-e2e-token";
/// Only there so a broken pipeline fails instead of hanging; the test normally takes about a minute.
const WAIT: Duration = Duration::from_secs(240);
/// The flapping rule's cool-down, as its label says.
const FLAP_COOLDOWN: Duration = Duration::from_secs(25);
const ROOT_CAUSE: &str = "the checkout connection pool is capped at 10 while 40 workers share it";

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

const RULES_YAML: &str = r#"
groups:
  - name: recurrence-e2e
    interval: 1s
    rules:
      - alert: CheckoutFlapping
        expr: vector(time() % 20 < bool 10) == 1
        labels:
          severity: warning
          service: checkout
          recurrence_cooldown: 25s
        annotations:
          summary: checkout error rate flaps
      - alert: PaymentsDown
        expr: vector(1)
        labels:
          severity: critical
          service: payments
          recurrence_cooldown: 10m
        annotations:
          summary: payments is down
"#;

/// A binary on PATH; a missing one fails the test with the command that installs it.
fn require_binary(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not on PATH: this test needs Debian's prometheus and \
                 prometheus-alertmanager packages; run `bash .ci/install-alerting.sh` (as root)"
            )
        })
}

fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr")
}

/// A child process killed (by its own pid) when the test ends, pass or fail.
struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn spawn(name: &'static str, binary: &Path, args: &[String], dir: &Path) -> Daemon {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(binary)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} does not start: {e}"));
        Daemon { name, child, log }
    }

    /// Panics with the log when the process has already exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!("{} exited with {status}:\n{log}", self.name);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kubectl_apply(kubeconfig: &Path, home: &Path, yaml: &str) {
    use std::io::Write;
    let kubectl = kube_emulator::tools::kubectl().unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new(kubectl)
        .args(["apply", "-f", "-"])
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", home)
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

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    args: ControllerArgs,
}

/// Incidents of one alert (by the alertname label), oldest generation first.
async fn incidents_of(api: &Api<Incident>, alertname: &str) -> Vec<Incident> {
    let mut items: Vec<Incident> = api
        .list(&ListParams::default())
        .await
        .expect("list Incidents")
        .items
        .into_iter()
        .filter(|i| i.spec.alert.as_ref().is_some_and(|a| a.name == alertname))
        .collect();
    items.sort_by_key(|i| {
        i.labels()
            .get(LABEL_GENERATION)
            .and_then(|g| g.parse::<u32>().ok())
            .unwrap_or(1)
    });
    items
}

fn phase(incident: &Incident) -> Option<Phase> {
    incident.status.as_ref().and_then(|s| s.phase)
}

fn recurrences(incident: &Incident) -> u32 {
    incident
        .status
        .as_ref()
        .and_then(|s| s.alert.as_ref())
        .and_then(|a| a.recurrences)
        .unwrap_or(0)
}

fn report_step() -> Step {
    Step::Reply(reply::with_usage(
        reply::tool_use(
            "r1",
            "report",
            json!({"summary": "checkout 5xx come from connection pool exhaustion",
                   "rootCause": ROOT_CAUSE,
                   "evidence": ["scripted"],
                   "recommendations": ["raise the pool size to 50"],
                   "confidence": "high", "resolved": false}),
        ),
        1200,
        300,
        0,
        0,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flapping_alert_is_investigated_once_per_cooldown_and_remembers_its_root_cause() {
    let prometheus_bin = require_binary("prometheus");
    let alertmanager_bin = require_binary("prometheus-alertmanager");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("E2E_LOG"))
        .with_test_writer()
        .try_init();

    // Three sessions are expected (two of the flapping alert, one of the steady one); spare steps
    // keep an unexpected extra session from failing for the wrong reason.
    let model = ScriptedModel::start((0..8).map(|_| report_step()).collect()).await;
    let emulator = Emulator::start().await.expect("emulator starts");
    let client: Client = emulator.client().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    emulator.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let images = [(AGENT_IMAGE.to_string(), PathBuf::from(BIN))].into();
    let kubelet = ProcessKubelet::start(
        client.clone(),
        KubeletConfig::for_emulator(emulator.url(), images, dir.path().join("kubelet")),
    )
    .await
    .expect("kubelet starts");
    kubectl_apply(&kubeconfig, dir.path(), &crd_yaml());
    kubectl_apply(&kubeconfig, dir.path(), NAMESPACE_YAML);

    // The controller with its intake, configured through its real flags.
    let listen = free_addr();
    let token_file = dir.path().join("intake-token");
    std::fs::write(&token_file, TOKEN).expect("token file");
    let base_url = model.base_url();
    let flags = Flags::parse_from([
        "controller",
        "--namespace",
        NS,
        "--agent-image",
        AGENT_IMAGE,
        "--anthropic-base-url",
        &base_url,
        "--audit-pvc",
        "incident-audit",
        "--leader-election=false",
        "--intake=true",
        "--intake-namespace",
        NS,
        "--intake-token-file",
        token_file.to_str().expect("utf-8 path"),
        "--listen",
        &listen.to_string(),
        "--max-turns",
        "5",
    ]);
    let config = flags
        .args
        .into_config(NS, Some("e2e".into()))
        .expect("valid flags");
    assert_eq!(config.policy.recurrence_cooldown, Duration::from_secs(3600));
    let (shutdown, shutdown_rx) = watch::channel(false);
    let controller = tokio::spawn(run_until(
        config,
        client.clone(),
        Registry::with_prefix("incident_operator"),
        None,
        shutdown_rx,
    ));

    // Alertmanager → intake, Prometheus → Alertmanager, all on loopback.
    let am_addr = free_addr();
    std::fs::write(
        dir.path().join("alertmanager.yml"),
        format!(
            r#"
route:
  receiver: incident-operator
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 3s
receivers:
  - name: incident-operator
    webhook_configs:
      - url: http://{listen}/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {TOKEN}
"#
        ),
    )
    .expect("alertmanager config");
    let mut alertmanager = Daemon::spawn(
        "alertmanager",
        &alertmanager_bin,
        &[
            "--config.file=alertmanager.yml".into(),
            "--storage.path=am-data".into(),
            format!("--web.listen-address={am_addr}"),
            "--cluster.listen-address=".into(),
        ],
        dir.path(),
    );
    std::fs::write(dir.path().join("rules.yml"), RULES_YAML).expect("rules");
    let prom_addr = free_addr();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            r#"
global:
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["{am_addr}"]
"#
        ),
    )
    .expect("prometheus config");
    let mut prometheus = Daemon::spawn(
        "prometheus",
        &prometheus_bin,
        &[
            "--config.file=prometheus.yml".into(),
            "--storage.tsdb.path=prom-data".into(),
            format!("--web.listen-address={prom_addr}"),
            "--rules.alert.resend-delay=1s".into(),
        ],
        dir.path(),
    );

    // Run until the flapping alert's second generation has finished.
    let incidents: Api<Incident> = Api::namespaced(client.clone(), NS);
    let started = Instant::now();
    let (flapping, steady) = loop {
        alertmanager.assert_running();
        prometheus.assert_running();
        let flapping = incidents_of(&incidents, "CheckoutFlapping").await;
        if flapping.len() >= 2 && flapping.iter().all(|i| phase(i) == Some(Phase::Completed)) {
            break (flapping, incidents_of(&incidents, "PaymentsDown").await);
        }
        assert!(
            started.elapsed() < WAIT,
            "no completed second generation of the flapping alert after {WAIT:?}: {:#?}\n\
             alertmanager log:\n{}",
            flapping
                .iter()
                .map(|i| (i.name_any(), &i.status))
                .collect::<Vec<_>>(),
            std::fs::read_to_string(&alertmanager.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let elapsed = started.elapsed();
    drop(prometheus);
    drop(alertmanager);
    shutdown.send_replace(true);
    let _ = tokio::time::timeout(WAIT, controller).await;

    // One investigation per fingerprint per cool-down.
    assert_eq!(flapping.len(), 2, "{flapping:#?}");
    let (first, second) = (&flapping[0], &flapping[1]);
    let first_status = first.status.as_ref().expect("status");
    let finished = first_status
        .completion_time
        .as_ref()
        .expect("completionTime")
        .0;
    let created = second
        .metadata
        .creation_timestamp
        .as_ref()
        .expect("created")
        .0;
    assert!(
        created.duration_since(finished).as_secs() >= FLAP_COOLDOWN.as_secs() as i64,
        "generation 2 created at {created}, less than the cool-down after generation 1 finished \
         at {finished}"
    );
    assert!(
        recurrences(first) >= 1,
        "firings inside the cool-down were not counted: {:?}",
        first_status.alert
    );
    assert_eq!(steady.len(), 1, "the steady alert was investigated again");
    assert!(
        recurrences(&steady[0]) >= 1,
        "the steady alert's repeats after its investigation were not counted: {:?}",
        steady[0].status.as_ref().and_then(|s| s.alert.as_ref())
    );

    // Memory: the second generation names its predecessor and its first request has the root cause.
    assert_eq!(second.spec.predecessors.len(), 1, "{:?}", second.spec);
    assert_eq!(second.spec.predecessors[0].name, first.name_any());
    let second_object = format!("Object: Incident {NS}/{}\n", second.name_any());
    let first_request = model
        .requests()
        .into_iter()
        .find(|request| {
            request.body["messages"][0]["content"][0]["text"]
                .as_str()
                .is_some_and(|text| text.contains(&second_object))
        })
        .expect("a model request for the second generation");
    let brief = first_request.body["messages"][0]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        brief.contains(ROOT_CAUSE),
        "root cause not recalled: {brief}"
    );

    // Cost: every finished session priced its tokens.
    let cost = second
        .status
        .as_ref()
        .and_then(|s| s.usage.as_ref())
        .and_then(|u| u.cost_usd)
        .expect("costUSD");
    assert!(cost > 0.0, "{cost}");

    let sessions = model.requests().len();
    eprintln!(
        "flapping alert: {} investigations and {} recurrences counted in {:.0} s; steady alert: 1 \
         investigation, {} recurrences; {sessions} model requests in all",
        flapping.len(),
        recurrences(first),
        elapsed.as_secs_f64(),
        recurrences(&steady[0]),
    );
    drop(kubelet);
}

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

#[path = "support/agent_cluster.rs"]
#[allow(dead_code)]
mod agent_cluster;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent_cluster::{
    AgentCluster, NS, RunningController, controller_config, free_addr, require_binary,
};
use incident_operator::incident::{Incident, Phase};
use incident_operator::intake::LABEL_GENERATION;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use scripted_model::{ScriptedModel, Step, reply};
use serde_json::json;

const TOKEN: &str = "alertmanager-e2e-token";
/// Only there so a broken pipeline fails instead of hanging; the test normally takes about a minute.
const WAIT: Duration = Duration::from_secs(240);
/// The flapping rule's cool-down, as its label says.
const FLAP_COOLDOWN: Duration = Duration::from_secs(25);
const ROOT_CAUSE: &str = "the checkout connection pool is capped at 10 while 40 workers share it";
const INSTALL_HINT: &str = "this test needs Debian's prometheus and prometheus-alertmanager \
    packages; run `bash .ci/install-alerting.sh` (as root)";

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
    let prometheus_bin = require_binary("prometheus", INSTALL_HINT);
    let alertmanager_bin = require_binary("prometheus-alertmanager", INSTALL_HINT);

    // Three sessions are expected (two of the flapping alert, one of the steady one); spare steps
    // keep an unexpected extra session from failing for the wrong reason.
    let model = ScriptedModel::start((0..8).map(|_| report_step()).collect()).await;
    let cluster = AgentCluster::start().await;
    let dir = cluster.dir.path();

    // The controller with its intake, configured through its real flags.
    let listen = free_addr();
    let token_file = dir.join("intake-token");
    std::fs::write(&token_file, TOKEN).expect("token file");
    let config = controller_config(
        &model.base_url(),
        listen,
        &[
            "--intake=true",
            "--intake-namespace",
            NS,
            "--intake-token-file",
            token_file.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(config.policy.recurrence_cooldown, Duration::from_secs(3600));
    let controller = RunningController::start(&cluster.client, config);

    // Alertmanager → intake, Prometheus → Alertmanager, all on loopback.
    let am_addr = free_addr();
    std::fs::write(
        dir.join("alertmanager.yml"),
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
        dir,
    );
    std::fs::write(dir.join("rules.yml"), RULES_YAML).expect("rules");
    let prom_addr = free_addr();
    std::fs::write(
        dir.join("prometheus.yml"),
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
        dir,
    );

    // Run until the flapping alert's second generation has finished.
    let incidents: Api<Incident> = cluster.incidents();
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
    controller.stop().await;

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
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(cluster.client.clone(), NS);
    let recurred_events = events
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("Recurred"))
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(&first.name_any()))
        .count();
    assert_eq!(
        recurred_events, 1,
        "one Recurred Event for the first recurrence of the cool-down"
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
}

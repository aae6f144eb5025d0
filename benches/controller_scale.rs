//! Scale of the real controller binary against the in-memory API server (`kube-emulator`):
//! reconcile latency and throughput, memory with many Incidents cached, and CPU per Incident.
//! Prints markdown tables; run with `cargo bench --bench controller_scale`.
//!
//! Processes: the emulator runs as its own process (this bench binary re-executed with
//! `--serve-emulator`, so its memory can be read apart from the bench's watches), the controller is
//! `target/release/incident-operator controller` with `KUBECONFIG` pointing at the emulator. Both
//! are killed when the bench ends, fails or panics. The emulator has no kubelet here: agent pods are
//! created and stay unscheduled, which holds them "active" (each takes an agent slot).
//!
//! Scenarios, each on a fresh emulator and controller:
//! 1. **Throughput** (`--max-concurrent-agents 1000`): `CONTROLLER_BENCH_INCIDENTS` (1,000)
//!    Incidents created, `CONTROLLER_BENCH_IN_FLIGHT` (32) creates in flight. Latency of one
//!    Incident is from its create returning (client side) to its agent pod's first watch event.
//!    Throughput counts from the first create sent to the last agent pod seen.
//! 2. **Cache** (default `--max-concurrent-agents 3`): memory of an idle controller (0
//!    Incidents, its own process, stopped again); then `CONTROLLER_BENCH_CACHE` (10,000) Incidents
//!    created while no controller runs, and a controller started on them, as after a restart; timed
//!    until every Incident shows phase Queued or Running; memory read there; then
//!    `CONTROLLER_BENCH_STEADY_SECS` (35 s, longer than the controller's 30 s recheck of queued
//!    Incidents) of doing nothing, to see what a full queue costs at rest.
//! 3. **Restart** (3 slots, leader election on), for each N in `CONTROLLER_BENCH_SIZES`
//!    (`1000,10000,100000`): a fresh emulator holding N new Incidents (all `warning` but the last
//!    one created, which is `critical`), the controller started on them; one table row per N with
//!    the creates/s (the API server's write rate for Incidents, measured by the bench's own creates,
//!    no controller running), start → `/readyz`, `/readyz` → first agent pod (and whether the 3
//!    pods went to the queue's top 3: the critical one and the two oldest), the controller's log
//!    line `Incident cache synced` (the Incident list complete) → first agent pod, start → every
//!    Incident has a phase, the status writes/s that implies, RSS
//!    idle → loaded and per Incident, CPU, SIGTERM → exit and whether the Lease was released.
//!    Set `CONTROLLER_BENCH_INCIDENTS=0 CONTROLLER_BENCH_CACHE=0` to run only this scenario.
//!
//! CPU is reported for both the controller and the emulator (user+system from `/proc/<pid>/stat`):
//! on a small machine they share the cores, and the emulator's cost shapes the controller's
//! latency.
//!
//! Every wait is bounded by `CONTROLLER_BENCH_TIMEOUT_SECS` (600); a wait that runs out is
//! reported in the table with how far it got, and the bench exits with a failure code at the end.
//! Controller logs (JSON) are kept in `$CARGO_TARGET_TMPDIR/controller_scale/`.
//!
//! The controller gets the environment the chart's Deployment gives it for its allocator, jemalloc
//! (`MALLOC_CONF`, read from `charts/incident-operator/templates/deployment.yaml`).
//!
//! `CONTROLLER_BENCH_WRAPPER`, when set, is a program the controller is started through (it gets
//! the controller's command line as its arguments and should `exec` it, so signals and `/proc`
//! still reach the controller): a heap profiler's preload, for example. The bench passes it on
//! unchanged; figures taken through a wrapper measure the wrapper's cost too.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use incident_operator::controller::keys;
use incident_operator::incident::{Incident, Phase};
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

/// Flag that turns this binary into the emulator process.
const SERVE_EMULATOR: &str = "--serve-emulator";
/// Namespace every scenario works in.
const NAMESPACE: &str = "bench";
/// The controller's default `--agent-service-account`.
const AGENT_SERVICE_ACCOUNT: &str = "incident-agent";
/// How often waits look at what the watches have seen (latencies come from the watch events'
/// own timestamps, not from this).
const POLL: Duration = Duration::from_millis(20);
/// Bound on starting a process and on the CRD becoming Established.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How often long waits report progress on stderr.
const PROGRESS: Duration = Duration::from_secs(30);
/// Linux reports utime/stime in USER_HZ ticks, which is 100 on every architecture it supports.
const TICKS_PER_SECOND: f64 = 100.0;

/// Sizes and bounds, from the environment.
struct Settings {
    incidents: usize,
    cache: usize,
    in_flight: usize,
    timeout: Duration,
    steady: Duration,
    /// Backlog sizes of the restart scenario.
    sizes: Vec<usize>,
}

impl Settings {
    fn from_env() -> Settings {
        fn number(name: &str, default: u64) -> u64 {
            match std::env::var(name) {
                Ok(text) => text
                    .trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}={text:?} is not a whole number")),
                Err(_) => default,
            }
        }
        Settings {
            incidents: number("CONTROLLER_BENCH_INCIDENTS", 1_000) as usize,
            cache: number("CONTROLLER_BENCH_CACHE", 10_000) as usize,
            in_flight: number("CONTROLLER_BENCH_IN_FLIGHT", 32).max(1) as usize,
            timeout: Duration::from_secs(number("CONTROLLER_BENCH_TIMEOUT_SECS", 600)),
            steady: Duration::from_secs(number("CONTROLLER_BENCH_STEADY_SECS", 35)),
            sizes: std::env::var("CONTROLLER_BENCH_SIZES")
                .unwrap_or_else(|_| "1000,10000,100000".to_string())
                .split(',')
                .filter(|size| !size.trim().is_empty())
                .map(|size| {
                    size.trim().parse().unwrap_or_else(|_| {
                        panic!("CONTROLLER_BENCH_SIZES: {size:?} is not a whole number")
                    })
                })
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Child processes and what /proc says about them.

/// A child process that is killed (and reaped) when dropped, however the bench ends.
struct ChildProcess {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl ChildProcess {
    fn spawn(name: &'static str, mut command: Command, log: PathBuf) -> ChildProcess {
        let log_file =
            File::create(&log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let stderr = log_file.try_clone().expect("duplicate log file handle");
        command.stdout(log_file).stderr(stderr);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting the {name} ({:?}): {e}", command.get_program()));
        ChildProcess { name, child, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics, with the end of its log, if the process has exited.
    fn ensure_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "the {} exited ({status}); end of {}:\n{}",
                self.name,
                self.log.display(),
                log_tail(&self.log, 30)
            );
        }
    }

    fn memory(&self) -> Memory {
        Memory::of(self.pid())
    }

    fn cpu(&self) -> Duration {
        cpu_time(self.pid())
    }
}

impl ChildProcess {
    /// Sends SIGTERM and waits (at most `bound`) for the exit; how long it took, and the status.
    fn terminate(&mut self, bound: Duration) -> Option<(Duration, std::process::ExitStatus)> {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        let sent = Instant::now();
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).ok()?;
        while sent.elapsed() < bound {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some((sent.elapsed(), status));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Clone, Copy)]
struct Memory {
    rss_kib: u64,
    peak_kib: u64,
}

impl Memory {
    fn of(pid: u32) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|e| panic!("reading /proc/{pid}/status: {e}"));
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
        };
        Memory {
            rss_kib: field("VmRSS:"),
            peak_kib: field("VmHWM:"),
        }
    }

    fn show(self) -> String {
        format!(
            "{} RSS, {} peak (VmHWM)",
            mib(self.rss_kib),
            mib(self.peak_kib)
        )
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// User plus system CPU time of a process, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("reading /proc/{pid}/stat: {e}"));
    // The command name (field 2) may contain spaces; fields after it start at field 3 (state).
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<u64>().ok());
    match (ticks(14 - 3), ticks(15 - 3)) {
        (Some(user), Some(system)) => {
            Duration::from_secs_f64((user + system) as f64 / TICKS_PER_SECOND)
        }
        _ => panic!("unexpected /proc/{pid}/stat: {stat}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The emulator process (this binary, re-executed).

/// Runs the emulator until stdin closes (the bench died or dropped it) or SIGTERM/SIGINT.
fn serve_emulator(kubeconfig: &Path) -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let emulator = kube_emulator::Emulator::start()
            .await
            .expect("start the emulator");
        // Written under another name and renamed, so the bench never reads half a file.
        let partial = kubeconfig.with_extension("partial");
        emulator
            .write_kubeconfig(&partial)
            .expect("write the kubeconfig");
        std::fs::rename(&partial, kubeconfig).expect("rename the kubeconfig");
        let stdin_closed = async {
            let mut sink = tokio::io::sink();
            let _ = tokio::io::copy(&mut tokio::io::stdin(), &mut sink).await;
        };
        tokio::select! {
            _ = stdin_closed => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        // Not `stop()`: a graceful stop waits for clients' open watches, and the controller may
        // still be holding some.
        drop(emulator);
    });
    ExitCode::SUCCESS
}

/// An emulator process with the CRD, the bench namespace and the API-key Secret installed.
struct Cluster {
    emulator: ChildProcess,
    client: Client,
    kubeconfig: PathBuf,
}

impl Cluster {
    async fn start(dir: &Path, scenario: &str) -> Cluster {
        let kubeconfig = dir.join(format!("{scenario}-kubeconfig"));
        let _ = std::fs::remove_file(&kubeconfig);
        let mut command = Command::new(std::env::current_exe().expect("path of this bench"));
        command.arg(SERVE_EMULATOR).arg(&kubeconfig);
        // The emulator exits when this pipe closes, even if the bench is killed outright.
        command.stdin(Stdio::piped());
        let mut emulator = ChildProcess::spawn(
            "emulator",
            command,
            dir.join(format!("{scenario}-emulator.log")),
        );
        let started = Instant::now();
        while !kubeconfig.exists() {
            emulator.ensure_running();
            assert!(
                started.elapsed() < START_TIMEOUT,
                "the emulator wrote no kubeconfig within {START_TIMEOUT:?}"
            );
            tokio::time::sleep(POLL).await;
        }
        let config = kube::Config::from_custom_kubeconfig(
            Kubeconfig::read_from(&kubeconfig).expect("read the emulator's kubeconfig"),
            &KubeConfigOptions::default(),
        )
        .await
        .expect("kubeconfig has a context");
        let client = Client::try_from(config).expect("kube client");
        let cluster = Cluster {
            emulator,
            client,
            kubeconfig,
        };
        cluster.install_crd().await;
        cluster.prepare_namespace().await;
        cluster
    }

    /// Creates the CRDs from `crds/` and waits until they are Established.
    async fn install_crd(&self) {
        // Both CRDs the chart ships: without IncidentApproval the controller's approval watch
        // fails and backs off, and its backoff held up the Incident list (20 pages of 10,000
        // Incidents took 467 s instead of a second).
        for file in ["crds/incidents.yaml", "crds/incidentapprovals.yaml"] {
            self.install_crd_file(file).await;
        }
    }

    /// Creates the CRD in `file` and waits until it is Established.
    async fn install_crd_file(&self, file: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let crd: CustomResourceDefinition = serde_saphyr::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not a CRD: {e}", path.display()));
        let crds = Api::<CustomResourceDefinition>::all(self.client.clone());
        crds.create(&PostParams::default(), &crd)
            .await
            .unwrap_or_else(|e| panic!("create the CRD of {file}: {e}"));
        let started = Instant::now();
        loop {
            let current = crds.get(&crd.name_any()).await.expect("read the CRD back");
            let established = current
                .status
                .and_then(|status| status.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                return;
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "the CRD was not Established within {START_TIMEOUT:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The bench namespace and the API-key Secret the controller checks before starting an agent.
    async fn prepare_namespace(&self) {
        Api::<Namespace>::all(self.client.clone())
            .create(
                &PostParams::default(),
                &Namespace {
                    metadata: ObjectMeta {
                        name: Some(NAMESPACE.to_string()),
                        ..ObjectMeta::default()
                    },
                    ..Namespace::default()
                },
            )
            .await
            .expect("create the bench namespace");
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": "anthropic-api-key"},
            "stringData": {"api-key": "sk-ant-bench"}
        }))
        .expect("a Secret");
        Api::<Secret>::namespaced(self.client.clone(), NAMESPACE)
            .create(&PostParams::default(), &secret)
            .await
            .expect("create the API-key Secret");
        // Agent pods naming a missing ServiceAccount are refused (403), as on a real server.
        let account: ServiceAccount = serde_json::from_value(json!({
            "metadata": {"name": AGENT_SERVICE_ACCOUNT}
        }))
        .expect("a ServiceAccount");
        Api::<ServiceAccount>::namespaced(self.client.clone(), NAMESPACE)
            .create(&PostParams::default(), &account)
            .await
            .expect("create the agent ServiceAccount");
    }

    fn incidents(&self) -> Api<Incident> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }
}

// ---------------------------------------------------------------------------------------------
// The controller process.

/// The `MALLOC_CONF` (jemalloc's options) the chart's controller Deployment sets, read from its
/// template so the bench measures what the chart ships.
fn chart_malloc_conf() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("charts/incident-operator/templates/deployment.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut lines = text.lines().map(str::trim);
    lines
        .position(|line| line == "- name: MALLOC_CONF")
        .and_then(|_| lines.next())
        .and_then(|line| line.strip_prefix("value: "))
        .map(|value| value.trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("{} sets no MALLOC_CONF", path.display()))
}

struct Controller {
    process: ChildProcess,
    base_url: String,
    http: reqwest::Client,
}

impl Controller {
    /// Starts `incident-operator controller` against `cluster` and waits for `/readyz`.
    async fn start(cluster: &Cluster, dir: &Path, scenario: &str, max_agents: u32) -> Controller {
        Controller::start_with(cluster, dir, scenario, max_agents, false).await
    }

    /// [`Controller::start`], with leader election on a Lease in the bench namespace if `elect`.
    async fn start_with(
        cluster: &Cluster,
        dir: &Path,
        scenario: &str,
        max_agents: u32,
        elect: bool,
    ) -> Controller {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let listen = format!("127.0.0.1:{port}");
        let binary = env!("CARGO_BIN_EXE_incident-operator");
        let mut command = match std::env::var_os("CONTROLLER_BENCH_WRAPPER") {
            Some(wrapper) => {
                let mut command = Command::new(wrapper);
                command.arg(binary);
                command
            }
            None => Command::new(binary),
        };
        command
            .args(["controller", "--log-format", "json"])
            .arg(format!("--leader-election={elect}"))
            .args(["--lease-namespace", NAMESPACE])
            .args(["--max-concurrent-agents", &max_agents.to_string()])
            .args(["--listen", &listen])
            .env("KUBECONFIG", &cluster.kubeconfig)
            // What the chart's Deployment sets (charts/incident-operator/templates/deployment.yaml).
            .env("MALLOC_CONF", chart_malloc_conf())
            .stdin(Stdio::null());
        // Only the flags above configure it, whatever the bench's environment holds.
        for (name, _) in std::env::vars() {
            if name.starts_with("INCIDENT_OPERATOR_") || name == "RUST_LOG" {
                command.env_remove(name);
            }
        }
        let process = ChildProcess::spawn(
            "controller",
            command,
            dir.join(format!("{scenario}-controller.log")),
        );
        let mut controller = Controller {
            process,
            base_url: format!("http://{listen}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("HTTP client"),
        };
        let started = Instant::now();
        loop {
            controller.process.ensure_running();
            let ready = controller
                .http
                .get(format!("{}/readyz", controller.base_url))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if ready {
                return controller;
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "the controller was not ready within {START_TIMEOUT:?}; end of its log:\n{}",
                log_tail(&controller.process.log, 30)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `/metrics` as a map from series (name with labels) to value.
    async fn metrics(&self) -> BTreeMap<String, f64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.base_url))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("read /metrics");
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_string(), value.parse().ok()?))
            })
            .collect()
    }
}

/// Sum of every series of `metric` (all label values).
fn metric_sum(metrics: &BTreeMap<String, f64>, metric: &str) -> f64 {
    metrics
        .iter()
        .filter(|(series, _)| {
            series.as_str() == metric || series.starts_with(&format!("{metric}{{"))
        })
        .map(|(_, value)| value)
        // A fold, not `sum`: an empty float sum is -0.
        .fold(0.0, |total, value| total + value)
}

/// One series, 0 when absent.
fn metric(metrics: &BTreeMap<String, f64>, series: &str) -> f64 {
    metrics.get(series).copied().unwrap_or(0.0)
}

/// Reconciles, failures and the mean reconcile time, from the controller's own metrics.
fn reconcile_summary(metrics: &BTreeMap<String, f64>) -> String {
    let count = metric(
        metrics,
        "incident_operator_reconcile_duration_seconds_count",
    );
    let sum = metric(metrics, "incident_operator_reconcile_duration_seconds_sum");
    let mean = if count > 0.0 {
        time(Duration::from_secs_f64(sum / count))
    } else {
        "n/a".to_string()
    };
    format!(
        "{} reconciles (mean {mean} each, time waiting for the admission lock included), {} failed",
        metric(metrics, "incident_operator_reconciles_total"),
        metric_sum(metrics, "incident_operator_reconcile_failures_total"),
    )
}

/// Counts of WARN and ERROR lines in a JSON log, with the most frequent messages.
fn log_summary(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut by_message: BTreeMap<String, usize> = BTreeMap::new();
    let mut lines = 0;
    for line in text.lines() {
        lines += 1;
        let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let level = entry["level"].as_str().unwrap_or_default();
        if level != "WARN" && level != "ERROR" {
            continue;
        }
        let message = entry["message"].as_str().unwrap_or_default();
        let error: String = entry["error"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .take(160)
            .collect();
        *by_message
            .entry(format!("{level} {message}: {error}"))
            .or_default() += 1;
    }
    let mut frequent: Vec<(String, usize)> = by_message.into_iter().collect();
    frequent.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
    let warnings: usize = frequent.iter().map(|(_, n)| n).sum();
    let mut summary = format!("{lines} log lines, {warnings} WARN/ERROR");
    for (message, count) in frequent.iter().take(5) {
        summary.push_str(&format!("<br>{count} × `{}`", message.replace('|', "\\|")));
    }
    summary
}

// ---------------------------------------------------------------------------------------------
// What the bench's own watches have seen.

#[derive(Default)]
struct Seen {
    /// First watch event of each agent pod: pod name → (Incident name, when).
    pods: HashMap<String, (String, Instant)>,
    /// First time each Incident showed phase Queued or Running.
    admitted: HashMap<String, Instant>,
    /// Latest phase of each Incident.
    phases: HashMap<String, Phase>,
    /// Watch errors (each is followed by a retry).
    watch_errors: usize,
}

impl Seen {
    /// Incidents with at least one agent pod, and the first pod's time of each.
    fn first_pod_by_incident(&self) -> HashMap<&str, Instant> {
        let mut first: HashMap<&str, Instant> = HashMap::new();
        for (incident, at) in self.pods.values() {
            first
                .entry(incident.as_str())
                .and_modify(|t| *t = (*t).min(*at))
                .or_insert(*at);
        }
        first
    }

    fn phase_counts(&self) -> String {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for phase in self.phases.values() {
            *counts.entry(format!("{phase:?}")).or_default() += 1;
        }
        counts
            .iter()
            .map(|(phase, n)| format!("{phase} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Watches agent pods and Incidents in the bench namespace until dropped.
struct Watches {
    seen: Arc<Mutex<Seen>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Watches {
    fn start(cluster: &Cluster) -> Watches {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let pods = watcher(
            cluster.pods(),
            watcher::Config::default().labels(keys::AGENT_POD_SELECTOR),
        )
        .default_backoff();
        let pod_seen = seen.clone();
        let pod_task = tokio::spawn(pods.for_each(move |event| {
            let now = Instant::now();
            let mut seen = lock(&pod_seen);
            match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                    let owner = pod
                        .owner_references()
                        .iter()
                        .find(|owner| owner.controller == Some(true) && owner.kind == "Incident")
                        .map(|owner| owner.name.clone())
                        .unwrap_or_default();
                    seen.pods.entry(pod.name_any()).or_insert((owner, now));
                }
                Ok(_) => {}
                Err(_) => seen.watch_errors += 1,
            }
            futures::future::ready(())
        }));
        let incidents = watcher(cluster.incidents(), watcher::Config::default()).default_backoff();
        let incident_seen = seen.clone();
        let incident_task = tokio::spawn(incidents.for_each(move |event| {
            let now = Instant::now();
            let mut seen = lock(&incident_seen);
            match event {
                Ok(watcher::Event::Apply(incident) | watcher::Event::InitApply(incident)) => {
                    if let Some(phase) = incident.status.as_ref().and_then(|s| s.phase) {
                        let name = incident.name_any();
                        if matches!(phase, Phase::Queued | Phase::Running) {
                            seen.admitted.entry(name.clone()).or_insert(now);
                        }
                        seen.phases.insert(name, phase);
                    }
                }
                Ok(_) => {}
                Err(_) => seen.watch_errors += 1,
            }
            futures::future::ready(())
        }));
        Watches {
            seen,
            tasks: vec![pod_task, incident_task],
        }
    }

    fn seen(&self) -> MutexGuard<'_, Seen> {
        lock(&self.seen)
    }
}

impl Drop for Watches {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn lock(seen: &Mutex<Seen>) -> MutexGuard<'_, Seen> {
    seen.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How a bounded wait ended.
enum Waited {
    Done(Instant),
    TimedOut { reached: usize, after: Duration },
}

/// Waits until `count` reaches `target`, checking that the controller still runs and telling
/// stderr how far it got every [`PROGRESS`].
async fn wait_for(
    controller: &mut Controller,
    what: &str,
    timeout: Duration,
    target: usize,
    mut count: impl FnMut() -> usize,
) -> Waited {
    let started = Instant::now();
    let mut next_report = started + PROGRESS;
    loop {
        let reached = count();
        if reached >= target {
            return Waited::Done(Instant::now());
        }
        if Instant::now() >= next_report {
            eprintln!(
                "  … {reached} of {target} {what} after {}",
                time(started.elapsed())
            );
            next_report += PROGRESS;
        }
        if started.elapsed() > timeout {
            return Waited::TimedOut {
                reached,
                after: started.elapsed(),
            };
        }
        controller.process.ensure_running();
        tokio::time::sleep(POLL).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Creating Incidents.

fn incident(name: &str) -> Incident {
    serde_json::from_value(json!({
        "apiVersion": "sre.agentlab.dev/v1alpha1",
        "kind": "Incident",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "title": format!("bench incident {name}"),
            "description": "Synthetic Incident created by the controller_scale benchmark.",
            "severity": "warning"
        }
    }))
    .expect("a valid Incident")
}

/// Names `inc-00000` … in creation order.
fn names(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("inc-{i:05}")).collect()
}

/// Creates the Incidents, `in_flight` at a time. Returns when the first create was sent, and when
/// each create returned.
async fn create_all(
    api: &Api<Incident>,
    names: &[String],
    in_flight: usize,
) -> (Instant, HashMap<String, Instant>) {
    let first_sent = Instant::now();
    let mut returned = HashMap::with_capacity(names.len());
    let mut next_report = first_sent + PROGRESS;
    let mut creates = futures::stream::iter(names)
        .map(|name| async move {
            api.create(&PostParams::default(), &incident(name))
                .await
                .unwrap_or_else(|e| panic!("create Incident {name}: {e}"));
            (name.clone(), Instant::now())
        })
        .buffer_unordered(in_flight);
    while let Some((name, at)) = creates.next().await {
        returned.insert(name, at);
        if at >= next_report {
            eprintln!(
                "  … {} of {} Incidents created after {}",
                returned.len(),
                names.len(),
                time(at - first_sent)
            );
            next_report += PROGRESS;
        }
    }
    (first_sent, returned)
}

// ---------------------------------------------------------------------------------------------
// Reporting.

/// Rows of one markdown table.
#[derive(Default)]
struct Table {
    rows: Vec<(String, String)>,
}

impl Table {
    fn row(&mut self, measure: impl Into<String>, value: impl Into<String>) {
        self.rows.push((measure.into(), value.into()));
    }

    fn print(&self, title: &str) {
        println!("\n### {title}\n");
        println!("| Measure | Value |");
        println!("|---|---|");
        for (measure, value) in &self.rows {
            println!("| {measure} | {value} |");
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// Milliseconds below 10 s, seconds above.
fn time(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// `p50 / p99 / max` of latencies.
fn spread(mut latencies: Vec<Duration>) -> String {
    if latencies.is_empty() {
        return "none measured".to_string();
    }
    latencies.sort();
    format!(
        "{} / {} / {}",
        time(percentile(&latencies, 0.50)),
        time(percentile(&latencies, 0.99)),
        time(latencies[latencies.len() - 1])
    )
}

fn timed_out(what: &str, reached: usize, target: usize, after: Duration) -> String {
    format!(
        "**TIMED OUT** after {}: {reached} of {target} {what}",
        time(after)
    )
}

fn cpu_per_thousand(cpu: Duration, incidents: usize) -> String {
    if incidents == 0 {
        return "n/a".to_string();
    }
    format!(
        "{} per 1,000 Incidents ({} for {incidents})",
        time(cpu.mul_f64(1000.0 / incidents as f64)),
        time(cpu)
    )
}

/// CPU time the controller and the emulator had used at one moment.
struct CpuMark {
    controller: Duration,
    emulator: Duration,
}

impl CpuMark {
    fn now(controller: &Controller, cluster: &Cluster) -> CpuMark {
        CpuMark {
            controller: controller.process.cpu(),
            emulator: cluster.emulator.cpu(),
        }
    }

    /// "controller X per 1,000 (…); emulator Y per 1,000 (…)" since this mark.
    fn since(&self, controller: &Controller, cluster: &Cluster, incidents: usize) -> String {
        let now = CpuMark::now(controller, cluster);
        format!(
            "controller {}<br>emulator {}",
            cpu_per_thousand(now.controller - self.controller, incidents),
            cpu_per_thousand(now.emulator - self.emulator, incidents)
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Scenario 1: latency and throughput.

/// Returns false if a wait timed out or the controller misbehaved.
async fn throughput(settings: &Settings, dir: &Path) -> bool {
    let total = settings.incidents;
    let cluster = Cluster::start(dir, "throughput").await;
    let mut controller = Controller::start(&cluster, dir, "throughput", 1000).await;
    let watches = Watches::start(&cluster);
    let mut table = Table::default();
    let mut healthy = true;
    table.row(
        "Set-up",
        format!(
            "{total} Incidents, {} creates in flight, `--max-concurrent-agents 1000`",
            settings.in_flight
        ),
    );

    let cpu_before = CpuMark::now(&controller, &cluster);
    let names = names(total);
    let (first_sent, returned) = create_all(&cluster.incidents(), &names, settings.in_flight).await;
    let created = returned.values().max().copied().unwrap_or(first_sent);
    table.row(
        "Creates (client side)",
        format!(
            "{} for {total} ({:.0}/s)",
            time(created - first_sent),
            total as f64 / (created - first_sent).as_secs_f64()
        ),
    );

    let seen = watches.seen.clone();
    let pods_done = wait_for(
        &mut controller,
        "agent pods",
        settings.timeout,
        total,
        || lock(&seen).first_pod_by_incident().len(),
    )
    .await;
    let cpu_pods = cpu_before.since(&controller, &cluster, total);
    match pods_done {
        Waited::Done(_) => {
            let seen = watches.seen();
            let firsts = seen.first_pod_by_incident();
            let last_pod = firsts.values().max().copied().unwrap_or(first_sent);
            let latencies: Vec<Duration> = firsts
                .iter()
                .filter_map(|(name, at)| Some(at.saturating_duration_since(*returned.get(*name)?)))
                .collect();
            table.row(
                "Create returned → agent pod seen, p50 / p99 / max",
                spread(latencies),
            );
            table.row(
                "Throughput (first create sent → last agent pod seen)",
                format!(
                    "{:.0} Incidents/s ({} for {total})",
                    total as f64 / (last_pod - first_sent).as_secs_f64(),
                    time(last_pod - first_sent)
                ),
            );
        }
        Waited::TimedOut { reached, after } => {
            healthy = false;
            table.row(
                "Create returned → agent pod seen",
                timed_out("Incidents had an agent pod", reached, total, after),
            );
        }
    }

    let seen = watches.seen.clone();
    let admitted_done = wait_for(&mut controller, "statuses", settings.timeout, total, || {
        lock(&seen).admitted.len()
    })
    .await;
    let cpu_admitted = cpu_before.since(&controller, &cluster, total);
    match admitted_done {
        Waited::Done(_) => {
            let seen = watches.seen();
            let last = seen.admitted.values().max().copied().unwrap_or(first_sent);
            let latencies: Vec<Duration> = seen
                .admitted
                .iter()
                .filter_map(|(name, at)| Some(at.saturating_duration_since(*returned.get(name)?)))
                .collect();
            table.row(
                "Create returned → status phase Running/Queued seen, p50 / p99 / max",
                spread(latencies),
            );
            table.row(
                "All Incidents Running/Queued (from first create sent)",
                format!("{} ({})", time(last - first_sent), seen.phase_counts()),
            );
        }
        Waited::TimedOut { reached, after } => {
            healthy = false;
            table.row(
                "Status phase Running/Queued",
                timed_out("Incidents had the phase", reached, total, after),
            );
        }
    }
    table.row(
        "CPU (user+system), first create → all agent pods seen",
        cpu_pods,
    );
    table.row(
        "CPU (user+system), first create → all statuses seen",
        cpu_admitted,
    );

    // Let late duplicates, retries and requeues show themselves before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    controller.process.ensure_running();
    let pods = cluster
        .pods()
        .list(&ListParams::default().labels(keys::AGENT_POD_SELECTOR))
        .await
        .expect("list agent pods");
    let mut per_incident: HashMap<String, usize> = HashMap::new();
    for pod in &pods.items {
        let owner = pod
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true))
            .map(|o| o.name.clone())
            .unwrap_or_default();
        *per_incident.entry(owner).or_default() += 1;
    }
    let duplicated = per_incident.values().filter(|n| **n > 1).count();
    if duplicated > 0 || pods.items.len() != total {
        healthy = false;
    }
    let metrics = controller.metrics().await;
    table.row(
        "Agent pods in the API server (want one per Incident)",
        format!(
            "{} pods for {} Incidents; {duplicated} Incidents with more than one",
            pods.items.len(),
            per_incident.len()
        ),
    );
    table.row(
        "Controller metrics after 3 s of quiet",
        format!(
            "{}; {} agent pods created",
            reconcile_summary(&metrics),
            metric(&metrics, "incident_operator_agent_pods_created_total"),
        ),
    );
    table.row("Controller memory", controller.process.memory().show());
    table.row("Emulator memory", cluster.emulator.memory().show());
    table.row(
        "Watch errors seen by the bench",
        watches.seen().watch_errors.to_string(),
    );
    table.row("Controller log", log_summary(&controller.process.log));
    table.print("1. Reconcile latency and throughput");
    healthy
}

// ---------------------------------------------------------------------------------------------
// Scenario 2: memory with a large cache.

async fn cache(settings: &Settings, dir: &Path) -> bool {
    let total = settings.cache;
    let cluster = Cluster::start(dir, "cache").await;
    let mut table = Table::default();
    let mut healthy = true;
    table.row(
        "Set-up",
        format!(
            "{total} Incidents created ({} in flight) while no controller runs, then the controller \
             started (as after a restart), default `--max-concurrent-agents 3`",
            settings.in_flight
        ),
    );

    // Idle: a controller of its own, stopped before the Incidents exist.
    {
        let mut idle = Controller::start(&cluster, dir, "cache-idle", 3).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        idle.process.ensure_running();
        table.row(
            "Controller memory, idle (0 Incidents)",
            idle.process.memory().show(),
        );
    }
    table.row("Emulator memory, idle", cluster.emulator.memory().show());

    let watches = Watches::start(&cluster);
    let emulator_cpu = cluster.emulator.cpu();
    let names = names(total);
    let (first_sent, returned) = create_all(&cluster.incidents(), &names, settings.in_flight).await;
    let created = returned.values().max().copied().unwrap_or(first_sent);
    table.row(
        "Creates (client side, no controller running)",
        format!(
            "{} for {total} ({:.0}/s); emulator CPU {}",
            time(created - first_sent),
            total as f64 / (created - first_sent).as_secs_f64(),
            time(cluster.emulator.cpu() - emulator_cpu)
        ),
    );
    table.row(
        format!("Emulator memory, {total} Incidents stored"),
        cluster.emulator.memory().show(),
    );

    let started = Instant::now();
    // Counted from the spawn, so the controller's first list is included.
    let cpu_before = CpuMark {
        controller: Duration::ZERO,
        emulator: cluster.emulator.cpu(),
    };
    let mut controller = Controller::start(&cluster, dir, "cache", 3).await;
    table.row("Controller start → /readyz", time(started.elapsed()));
    let seen = watches.seen.clone();
    let waited = wait_for(&mut controller, "statuses", settings.timeout, total, || {
        lock(&seen).admitted.len()
    })
    .await;
    let cpu_reconciled = cpu_before.since(&controller, &cluster, total);
    let first_pod = watches
        .seen()
        .pods
        .values()
        .map(|(_, at)| *at)
        .min()
        .map_or_else(|| "none yet".to_string(), |at| time(at - started));
    table.row("Controller start → first agent pod seen", first_pod);
    let converged = matches!(waited, Waited::Done(_));
    match waited {
        Waited::Done(at) => {
            table.row(
                "Controller start → all Incidents Queued/Running",
                format!("{} ({})", time(at - started), watches.seen().phase_counts()),
            );
        }
        Waited::TimedOut { reached, after } => {
            healthy = false;
            table.row(
                "Controller start → all Incidents Queued/Running",
                timed_out("Incidents had the phase", reached, total, after),
            );
        }
    }
    table.row(
        "CPU (user+system), controller start → all statuses seen",
        cpu_reconciled,
    );
    let metrics = controller.metrics().await;
    let by_phase = ["Pending", "Queued", "Running", "Completed", "Failed"]
        .iter()
        .map(|phase| {
            let series = format!("incident_operator_incidents{{phase=\"{phase}\"}}");
            format!("{phase} {}", metric(&metrics, &series))
        })
        .collect::<Vec<_>>()
        .join(", ");
    table.row(
        "Controller's view (`incident_operator_incidents`)",
        format!(
            "{by_phase}; queue depth {}, agent pods running {}",
            metric(&metrics, "incident_operator_queue_depth"),
            metric(&metrics, "incident_operator_agent_pods_running")
        ),
    );
    table.row(
        format!("Controller memory, {total} Incidents cached"),
        controller.process.memory().show(),
    );
    table.row(
        format!("Emulator memory, {total} Incidents (and their Events) stored"),
        cluster.emulator.memory().show(),
    );

    // At rest with a full queue: the controller rechecks queued Incidents periodically.
    let reconciles_before = metric(&metrics, "incident_operator_reconciles_total");
    let rest_mark = CpuMark::now(&controller, &cluster);
    let rest_started = Instant::now();
    tokio::time::sleep(settings.steady).await;
    controller.process.ensure_running();
    let rest = rest_started.elapsed();
    let rest_end = CpuMark::now(&controller, &cluster);
    let metrics = controller.metrics().await;
    let reconciles_rest =
        metric(&metrics, "incident_operator_reconciles_total") - reconciles_before;
    let share = |cpu: Duration| 100.0 * cpu.as_secs_f64() / rest.as_secs_f64();
    let rest_label = if converged {
        format!("At rest for {}", time(rest))
    } else {
        format!("The next {} (backlog still being worked)", time(rest))
    };
    table.row(
        rest_label,
        format!(
            "{reconciles_rest} reconciles; CPU: controller {:.0}% of one core, emulator {:.0}%",
            share(rest_end.controller - rest_mark.controller),
            share(rest_end.emulator - rest_mark.emulator)
        ),
    );
    table.row(
        "Controller memory after the rest",
        controller.process.memory().show(),
    );

    let pods = cluster
        .pods()
        .list(&ListParams::default().labels(keys::AGENT_POD_SELECTOR))
        .await
        .expect("list agent pods");
    if pods.items.len() != 3.min(total) {
        healthy = false;
    }
    table.row(
        "Agent pods in the API server (want 3)",
        pods.items.len().to_string(),
    );
    table.row(
        "Controller metrics",
        format!(
            "{}; {} agent pods created",
            reconcile_summary(&metrics),
            metric(&metrics, "incident_operator_agent_pods_created_total"),
        ),
    );
    table.row(
        "Watch errors seen by the bench",
        watches.seen().watch_errors.to_string(),
    );
    table.row("Controller log", log_summary(&controller.process.log));
    table.print("2. Memory with many Incidents cached");
    healthy
}

// ---------------------------------------------------------------------------------------------
// Scenario 3: a restart on a backlog of N, for each N.

/// One row of the restart table.
struct RestartRow {
    size: usize,
    creates_per_second: f64,
    ready: Duration,
    first_pod_after_ready: Option<Duration>,
    /// Whether the agent pods went to the head of the queue: the critical Incident and the oldest
    /// warnings (with 3 free slots the three may start in any order).
    pods_at_queue_head: bool,
    /// Start → every Incident has a phase, or how far it got.
    all_phased: Result<Duration, (usize, Duration)>,
    /// Status writes and Event creates per second while Incidents got their phase.
    status_writes_per_second: Option<(f64, f64)>,
    idle: Memory,
    loaded: Memory,
    cpu: Duration,
    emulator_cpu: Duration,
    sigterm: Option<(Duration, bool)>,
    lease_released: bool,
    agent_pods: usize,
    /// From the controller's log line "Incident cache synced" to the first agent pod.
    listed_to_first_pod: Option<jiff::SignedDuration>,
    /// Phases at the end, as the bench's watch saw them.
    phases: String,
}

/// A fresh emulator holding `size` new Incidents (one critical among warnings, created last, so
/// "by severity order" is visible), then the controller started on them with leader election and 3
/// slots; timed until every Incident shows a phase, then stopped with SIGTERM.
async fn restart_at(size: usize, settings: &Settings, dir: &Path) -> RestartRow {
    let scenario = format!("restart-{size}");
    let cluster = Cluster::start(dir, &scenario).await;
    let idle = {
        let idle = Controller::start(&cluster, dir, &format!("{scenario}-idle"), 3).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        idle.process.memory()
    };
    let watches = Watches::start(&cluster);
    let mut names = names(size);
    // The most urgent Incident is the newest: the queue must put it first anyway.
    let critical = names.pop().map(|name| format!("{name}-critical"));
    let (first_sent, returned) = create_all(&cluster.incidents(), &names, settings.in_flight).await;
    if let Some(name) = &critical {
        let mut urgent = incident(name);
        urgent.spec.severity = incident_operator::incident::Severity::Critical;
        cluster
            .incidents()
            .create(&PostParams::default(), &urgent)
            .await
            .expect("create the critical Incident");
    }
    let created = returned.values().max().copied().unwrap_or(first_sent);
    let creates_per_second = names.len() as f64 / (created - first_sent).as_secs_f64();

    let emulator_before = cluster.emulator.cpu();
    let started = Instant::now();
    let mut controller = Controller::start_with(&cluster, dir, &scenario, 3, true).await;
    let ready = started.elapsed();
    let seen = watches.seen.clone();
    let all_phased = wait_for(
        &mut controller,
        "Incidents with a phase",
        settings.timeout,
        size,
        || lock(&seen).phases.len(),
    )
    .await;
    let cpu = controller.process.cpu();
    let emulator_cpu = cluster.emulator.cpu() - emulator_before;
    let loaded = controller.process.memory();
    // Each Queued status comes with one Event: both are writes the API server takes.
    let events_written =
        Api::<k8s_openapi::api::events::v1::Event>::namespaced(cluster.client.clone(), NAMESPACE)
            .list_metadata(&ListParams::default())
            .await
            .map_or(0, |list| list.items.len());
    let (first_pod_after_ready, pods_at_queue_head, status_writes_per_second) = {
        let seen = watches.seen();
        let first = seen.pods.values().min_by_key(|(_, at)| *at);
        let first_admitted = seen.admitted.values().min().copied();
        let writes = match (&all_phased, first_admitted) {
            (Waited::Done(done), Some(first)) if *done > first => {
                let window = (*done - first).as_secs_f64();
                Some((size as f64 / window, events_written as f64 / window))
            }
            _ => None,
        };
        (
            first.map(|(_, at)| at.saturating_duration_since(started + ready)),
            {
                let owners: std::collections::BTreeSet<&str> = seen
                    .pods
                    .values()
                    .map(|(owner, _)| owner.as_str())
                    .collect();
                let head: std::collections::BTreeSet<&str> = critical
                    .iter()
                    .chain(names.iter())
                    .take(3)
                    .map(String::as_str)
                    .collect();
                first.is_some() && owners == head
            },
            writes,
        )
    };
    let listed_to_first_pod = first_pod_at(&watches).and_then(|first| {
        let listed = log_time(&controller.process.log, "Incident cache synced")?;
        let first = jiff::Timestamp::try_from(wall_clock(first)).ok()?;
        Some(first.duration_since(listed))
    });
    let (agent_pods, phases) = {
        let seen = watches.seen();
        (seen.pods.len(), seen.phase_counts())
    };
    let sigterm = controller
        .process
        .terminate(Duration::from_secs(60))
        .map(|(took, status)| (took, status.success()));
    let lease = Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(
        cluster.client.clone(),
        NAMESPACE,
    )
    .get("incident-operator-leader")
    .await
    .ok();
    let lease_released = lease
        .and_then(|lease| lease.spec)
        .is_some_and(|spec| spec.holder_identity.as_deref().unwrap_or("").is_empty());
    let all_phased = match all_phased {
        Waited::Done(at) => Ok(at - started),
        Waited::TimedOut { reached, after } => Err((reached, after)),
    };
    RestartRow {
        size,
        creates_per_second,
        ready,
        first_pod_after_ready,
        pods_at_queue_head,
        all_phased,
        status_writes_per_second,
        idle,
        loaded,
        cpu,
        emulator_cpu,
        sigterm,
        lease_released,
        agent_pods,
        listed_to_first_pod,
        phases,
    }
}

/// When the bench's watch saw the first agent pod.
fn first_pod_at(watches: &Watches) -> Option<Instant> {
    watches.seen().pods.values().map(|(_, at)| *at).min()
}

/// The wall-clock time of `at` (an `Instant` of this process).
fn wall_clock(at: Instant) -> std::time::SystemTime {
    let (now, wall) = (Instant::now(), std::time::SystemTime::now());
    if at <= now {
        wall - (now - at)
    } else {
        wall + (at - now)
    }
}

/// The timestamp of the first JSON log line whose message is `message`.
fn log_time(path: &Path, message: &str) -> Option<jiff::Timestamp> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let entry: serde_json::Value = serde_json::from_str(line).ok()?;
        (entry["message"].as_str() == Some(message))
            .then(|| entry["timestamp"].as_str()?.parse().ok())
            .flatten()
    })
}

/// Scenario 3 for every size; false if a size missed a target or a wait timed out.
async fn restarts(settings: &Settings, dir: &Path) -> bool {
    let mut rows = Vec::new();
    for &size in &settings.sizes {
        eprintln!("controller_scale: restart on {size} Incidents");
        rows.push(restart_at(size, settings, dir).await);
    }
    println!("\n### 3. Restart on a backlog of N new Incidents (3 slots, leader election on)\n");
    println!(
        "| N | creates/s (API server write rate) | start → ready | ready → first agent pod | \
         Incident cache synced → first agent pod | \
         start → every Incident has a phase | status writes/s | controller RSS: idle → loaded \
         (per Incident) | controller CPU | emulator CPU | SIGTERM → exit | Lease released | \
         agent pods (phases) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut healthy = true;
    for row in &rows {
        let phased = match row.all_phased {
            Ok(took) => time(took),
            Err((reached, after)) => {
                healthy = false;
                format!("**{reached} of {} after {}**", row.size, time(after))
            }
        };
        let first_pod = match row.first_pod_after_ready {
            Some(after) => format!(
                "{}{}",
                time(after),
                if row.pods_at_queue_head {
                    " (the queue's top 3)"
                } else {
                    " (**not** the queue's top 3)"
                }
            ),
            None => {
                healthy = false;
                "none".to_string()
            }
        };
        healthy &= row.pods_at_queue_head && row.lease_released && row.agent_pods == 3;
        let per_incident =
            (row.loaded.rss_kib.saturating_sub(row.idle.rss_kib)) as f64 * 1024.0 / row.size as f64;
        let sigterm = match row.sigterm {
            Some((took, clean)) => {
                healthy &= took <= Duration::from_secs(5);
                format!(
                    "{}{}",
                    time(took),
                    if clean { "" } else { " (non-zero exit)" }
                )
            }
            None => {
                healthy = false;
                "**did not exit within 60 s**".to_string()
            }
        };
        println!(
            "| {} | {:.0} | {} | {} | {} | {} | {} | {} → {} ({:.1} KiB) | {} | {} | {} | {} | {} ({}) |",
            row.size,
            row.creates_per_second,
            time(row.ready),
            first_pod,
            row.listed_to_first_pod.map_or_else(
                || "–".to_string(),
                |took| time(Duration::try_from(took).unwrap_or_default())
            ),
            phased,
            row.status_writes_per_second.map_or_else(
                || "–".to_string(),
                |(statuses, events)| format!("{statuses:.0} + {events:.0} Events/s")
            ),
            mib(row.idle.rss_kib),
            mib(row.loaded.rss_kib),
            per_incident / 1024.0,
            time(row.cpu),
            time(row.emulator_cpu),
            sigterm,
            if row.lease_released { "yes" } else { "**no**" },
            row.agent_pods,
            row.phases,
        );
    }
    println!(
        "\nCreates/s: the bench's own creates ({} in flight, no controller running), the API \
         server's write rate for these objects. Status writes/s: Incidents that got a phase per \
         second, from the first one to the last, as the bench's watch saw them, plus the Events \
         created in the namespace over the same window (one `Queued` Event per waiting \
         Incident): together the controller's write rate, to compare with creates/s. Incident \
         cache synced → first agent pod: from the controller's JSON log timestamp of that line \
         (the Incident list complete) to the bench's first watch event of an agent pod. RSS per Incident: \
         (loaded − idle) / N. CPU: user+system from `/proc/<pid>/stat`, controller from its \
         start, emulator over the same window.",
        settings.in_flight
    );
    healthy
}

// ---------------------------------------------------------------------------------------------

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|arg| arg == SERVE_EMULATOR) {
        let Some(kubeconfig) = args.get(at + 1) else {
            eprintln!("{SERVE_EMULATOR} needs the path to write the kubeconfig to");
            return ExitCode::FAILURE;
        };
        return serve_emulator(Path::new(kubeconfig));
    }
    let settings = Settings::from_env();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("controller_scale");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let healthy = runtime.block_on(async {
        tokio::select! {
            healthy = run(&settings, &dir) => healthy,
            // Returning drops the scenario, and with it the child processes.
            signal = interrupted() => {
                eprintln!("controller_scale: {signal}; stopping the controller and the emulator");
                false
            }
        }
    });
    if healthy {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "controller_scale: a wait timed out, the controller misbehaved or the bench was \
             interrupted; see the tables"
        );
        ExitCode::FAILURE
    }
}

/// Resolves on SIGINT or SIGTERM, naming it.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without handlers the default action ends the bench; nothing to wait for here.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    }
}

/// Both scenarios, with the set-up line; false if any of them failed.
async fn run(settings: &Settings, dir: &Path) -> bool {
    {
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
        println!("## controller_scale");
        println!();
        println!(
            "Controller: `{}` (child process). Emulator: kube-emulator in its own process (this bench \
             re-executed), no kubelet (agent pods stay unscheduled). {} CPUs, load average at start: {}. \
             Logs: `{}`.",
            env!("CARGO_BIN_EXE_incident-operator"),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            load_average(),
            dir.display()
        );
        let mut healthy = true;
        if settings.incidents > 0 {
            healthy &= throughput(settings, dir).await;
        }
        if settings.cache > 0 {
            healthy &= cache(settings, dir).await;
        }
        if !settings.sizes.is_empty() {
            healthy &= restarts(settings, dir).await;
        }
        println!("\nLoad average at the end: {}.", load_average());
        healthy
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

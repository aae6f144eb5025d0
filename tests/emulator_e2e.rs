//! End to end against the kube-emulator with the real tools: the CRD and an Incident applied with
//! `kubectl`, the status written by server-side apply through `kube::Client` and seen by a
//! kube-runtime watcher, the printer columns read back with `kubectl get`, the status with
//! `kubectl describe`; a malformed Incident rejected naming its fields; and a Helm chart installed,
//! listed, run (its Deployment's pod runs on the process kubelet) and uninstalled.
//!
//! `kubectl` and `helm` come from `$KUBECTL`/`$HELM`, `.ci/tools/bin` or `PATH`; when missing the
//! tests fail and say to run `.ci/install-tools.sh`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use futures::StreamExt;
use incident_operator::incident::{
    Confidence, Incident, IncidentStatus, Outcome, Phase, Report, Usage,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use kube_emulator::Emulator;
use kube_emulator::kubelet::{KubeletConfig, ProcessKubelet};
use serde_json::json;

/// Bound on every wait and command, so a broken piece fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(60);
const INCIDENT: &str = "checkout-api-5xx";

/// A running emulator with a kubeconfig on disk and a scratch HOME for the tools.
struct Cluster {
    emulator: Emulator,
    client: Client,
    kubeconfig: PathBuf,
    scratch: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        let emulator = Emulator::start().await.expect("emulator starts");
        let scratch = tempfile::tempdir().expect("temp dir");
        let kubeconfig = scratch.path().join("kubeconfig");
        emulator
            .write_kubeconfig(&kubeconfig)
            .expect("kubeconfig written");
        let client = emulator.client().await;
        Cluster {
            emulator,
            client,
            kubeconfig,
            scratch,
        }
    }

    /// Runs a tool against the emulator and returns its output (whatever the exit status).
    async fn run(&self, tool: &Path, args: &[&str]) -> Output {
        let home = self.scratch.path().join("home");
        let mut command = tokio::process::Command::new(tool);
        command
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", &home)
            .env("HELM_CACHE_HOME", home.join("helm-cache"))
            .env("HELM_CONFIG_HOME", home.join("helm-config"))
            .env("HELM_DATA_HOME", home.join("helm-data"))
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        tokio::time::timeout(WAIT, command.output())
            .await
            .unwrap_or_else(|_| panic!("{} {args:?} timed out", tool.display()))
            .unwrap_or_else(|e| panic!("{} {args:?} failed to start: {e}", tool.display()))
    }

    /// Runs a tool and requires success; returns stdout.
    async fn ok(&self, tool: &Path, args: &[&str]) -> String {
        let output = self.run(tool, args).await;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{} {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
            tool.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }
}

fn kubectl() -> PathBuf {
    kube_emulator::tools::kubectl().unwrap_or_else(|e| panic!("{e}"))
}

fn helm() -> PathBuf {
    kube_emulator::tools::helm().unwrap_or_else(|e| panic!("{e}"))
}

fn repo_file(relative: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(relative)
        .to_string_lossy()
        .into_owned()
}

/// Parses `kubectl get` table output by the header's column positions (cells may be empty).
fn parse_table(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let header: Vec<char> = header.chars().collect();
    let mut starts = Vec::new();
    for (i, c) in header.iter().enumerate() {
        if !c.is_whitespace() && (i == 0 || header[i - 1].is_whitespace()) {
            starts.push(i);
        }
    }
    let names: Vec<String> = starts
        .iter()
        .enumerate()
        .map(|(n, &start)| {
            let end = starts.get(n + 1).copied().unwrap_or(header.len());
            header[start..end]
                .iter()
                .collect::<String>()
                .trim()
                .to_string()
        })
        .collect();
    lines
        .map(|line| {
            let chars: Vec<char> = line.chars().collect();
            names
                .iter()
                .enumerate()
                .map(|(n, name)| {
                    let start = starts[n].min(chars.len());
                    let end = if n + 1 == names.len() {
                        chars.len()
                    } else {
                        starts[n + 1].min(chars.len())
                    };
                    let cell: String = chars[start..end].iter().collect();
                    (name.clone(), cell.trim().to_string())
                })
                .collect()
        })
        .collect()
}

fn finished_status() -> IncidentStatus {
    IncidentStatus {
        phase: Some(Phase::Completed),
        outcome: Some(Outcome::Reported),
        message: Some("the agent filed a report".into()),
        usage: Some(Box::new(Usage {
            turns: 7,
            tool_calls: 12,
            input_tokens: 48_000,
            output_tokens: 3_100,
            ..Usage::default()
        })),
        report: Some(Box::new(Report {
            summary: "Deploy 42 set DB_POOL_SIZE=1; checkout-api exhausts its pool.".into(),
            root_cause: Some("Connection pool of size 1 after the 09:40 deploy".into()),
            evidence: vec!["kubectl logs: 'pool exhausted' x 312".into()],
            recommendations: vec!["Roll back deployment checkout-api".into()],
            confidence: Confidence::High,
            resolved: true,
            ..Report::default()
        })),
        ..IncidentStatus::default()
    }
}

#[tokio::test]
async fn incident_lifecycle_with_kubectl_kube_client_and_watcher() {
    let kubectl = kubectl();
    let cluster = Cluster::start().await;
    let crd = repo_file("crds/incidents.yaml");
    let example = repo_file("examples/incident.yaml");

    let applied = cluster.ok(&kubectl, &["apply", "-f", &crd]).await;
    assert!(
        applied.contains("incidents.sre.agentlab.dev created"),
        "{applied}"
    );
    cluster
        .ok(
            &kubectl,
            &[
                "wait",
                "--for=condition=Established",
                "crd/incidents.sre.agentlab.dev",
                "--timeout=30s",
            ],
        )
        .await;
    let applied = cluster.ok(&kubectl, &["apply", "-f", &example]).await;
    assert!(
        applied.contains(&format!("incident.sre.agentlab.dev/{INCIDENT} created")),
        "{applied}"
    );

    // A watcher that reports once it has listed, then returns the first *change* to Completed.
    let incidents: Api<Incident> = Api::namespaced(cluster.client.clone(), "default");
    let (listed_tx, listed_rx) = tokio::sync::oneshot::channel();
    let watch_api = incidents.clone();
    let watching = tokio::spawn(async move {
        let config = watcher::Config::default().fields(&format!("metadata.name={INCIDENT}"));
        let mut events = watcher(watch_api, config).boxed();
        let mut listed = Some(listed_tx);
        let mut phases_seen = Vec::new();
        while let Some(event) = events.next().await {
            match event.expect("watch event") {
                watcher::Event::InitApply(incident) => {
                    phases_seen.push(incident.status.and_then(|s| s.phase));
                }
                watcher::Event::InitDone => {
                    if let Some(tx) = listed.take() {
                        let _ = tx.send(());
                    }
                }
                watcher::Event::Apply(incident) => {
                    let phase = incident.status.as_ref().and_then(|s| s.phase);
                    phases_seen.push(phase);
                    if phase == Some(Phase::Completed) {
                        return (incident, phases_seen);
                    }
                }
                watcher::Event::Init | watcher::Event::Delete(_) => {}
            }
        }
        panic!("watch ended before the incident completed: {phases_seen:?}");
    });
    tokio::time::timeout(WAIT, listed_rx)
        .await
        .expect("watcher listed in time")
        .expect("watcher alive");

    // Status through server-side apply on the status subresource, forced, one field manager.
    let patch = json!({
        "apiVersion": "sre.agentlab.dev/v1alpha1",
        "kind": "Incident",
        "status": finished_status(),
    });
    let patched = incidents
        .patch_status(
            INCIDENT,
            &PatchParams::apply("incident-operator-e2e").force(),
            &Patch::Apply(&patch),
        )
        .await
        .expect("status applied");
    assert_eq!(patched.status, Some(finished_status()));
    assert_eq!(
        patched.spec.title, "checkout-api returns 5xx on 7% of requests",
        "status apply leaves the spec alone"
    );

    let (seen, phases) = tokio::time::timeout(WAIT, watching)
        .await
        .expect("watcher saw the change in time")
        .expect("watcher task");
    assert_eq!(
        phases.first(),
        Some(&None),
        "listed before the status existed"
    );
    assert_eq!(seen.status, Some(finished_status()));

    // Printer columns.
    let table = cluster.ok(&kubectl, &["get", "incidents"]).await;
    let rows = parse_table(&table);
    assert_eq!(rows.len(), 1, "{table}");
    let row = &rows[0];
    assert_eq!(row["NAME"], INCIDENT, "{table}");
    assert_eq!(row["PHASE"], "Completed", "{table}");
    assert_eq!(row["SEVERITY"], "critical", "{table}");
    assert_eq!(row["OUTCOME"], "reported", "{table}");
    assert_eq!(row["RESOLVED"], "true", "{table}");
    assert_eq!(row["TURNS"], "7", "{table}");
    assert!(!row["AGE"].is_empty(), "{table}");
    let wide = cluster.ok(&kubectl, &["get", "inc", "-o", "wide"]).await;
    assert!(wide.contains("TITLE") && wide.contains("SUMMARY"), "{wide}");
    assert!(
        wide.contains("checkout-api returns 5xx on 7% of requests"),
        "{wide}"
    );
    assert!(wide.contains("Deploy 42 set DB_POOL_SIZE=1"), "{wide}");

    // The status as a person reads it.
    let described = cluster
        .ok(&kubectl, &["describe", "incident", INCIDENT])
        .await;
    for want in [
        "Phase:",
        "Completed",
        "Outcome:",
        "reported",
        "Root Cause:",
        "Connection pool of size 1 after the 09:40 deploy",
        "Summary:",
        "Deploy 42 set DB_POOL_SIZE=1; checkout-api exhausts its pool.",
        "Turns:",
    ] {
        assert!(
            described.contains(want),
            "describe lacks {want:?}:\n{described}"
        );
    }

    let deleted = cluster
        .ok(&kubectl, &["delete", "incident", INCIDENT])
        .await;
    assert!(deleted.contains("deleted"), "{deleted}");
    assert!(incidents.get_opt(INCIDENT).await.expect("get").is_none());
    let empty = cluster.run(&kubectl, &["get", "incidents"]).await;
    assert!(
        String::from_utf8_lossy(&empty.stderr).contains("No resources found"),
        "{empty:?}"
    );
    cluster.emulator.stop().await;
}

#[tokio::test]
async fn malformed_incident_is_rejected_naming_the_fields() {
    let kubectl = kubectl();
    let cluster = Cluster::start().await;
    cluster
        .ok(
            &kubectl,
            &["apply", "-f", &repo_file("crds/incidents.yaml")],
        )
        .await;
    cluster
        .ok(
            &kubectl,
            &[
                "wait",
                "--for=condition=Established",
                "crd/incidents.sre.agentlab.dev",
                "--timeout=30s",
            ],
        )
        .await;
    let bad = cluster.scratch.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: sre.agentlab.dev/v1alpha1\nkind: Incident\nmetadata:\n  name: bad\n\
         spec:\n  severity: urgent\n  source: alertmanager\n",
    )
    .unwrap();
    let output = cluster
        .run(&kubectl, &["apply", "-f", &bad.to_string_lossy()])
        .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "a malformed Incident was accepted"
    );
    assert!(stderr.contains("is invalid"), "{stderr}");
    assert!(stderr.contains("spec.title: Required value"), "{stderr}");
    assert!(
        stderr.contains("spec.severity: Unsupported value: \"urgent\""),
        "{stderr}"
    );
    // As on a real server, CEL rules do not run after a blocking schema error; the answer says so.
    assert!(
        stderr.contains("some validation rules were not checked because the object was invalid"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("spec.alert is required"),
        "CEL rule ran: {stderr}"
    );
    // A schema-valid Incident breaking the rule gets the rule's message.
    std::fs::write(
        &bad,
        "apiVersion: sre.agentlab.dev/v1alpha1\nkind: Incident\nmetadata:\n  name: bad\n\
         spec:\n  title: t\n  source: alertmanager\n",
    )
    .unwrap();
    let output = cluster
        .run(&kubectl, &["apply", "-f", &bad.to_string_lossy()])
        .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the CEL rule was not enforced");
    assert!(
        stderr.contains("spec.alert is required when spec.source is alertmanager"),
        "CEL rule message: {stderr}"
    );

    // The same through the API: a 422 whose causes name the fields.
    let incidents: Api<Incident> = Api::namespaced(cluster.client.clone(), "default");
    let object: Incident = serde_json::from_value(json!({
        "apiVersion": "sre.agentlab.dev/v1alpha1",
        "kind": "Incident",
        "metadata": {"name": "bad"},
        "spec": {"title": "", "severity": "info"},
    }))
    .unwrap();
    match incidents.create(&PostParams::default(), &object).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(status.message.contains("spec.title"), "{status:?}");
        }
        other => panic!("expected a 422, got {other:?}"),
    }
    cluster.emulator.stop().await;
}

#[tokio::test]
async fn helm_installs_runs_lists_and_uninstalls_a_chart() {
    let kubectl = kubectl();
    let helm = helm();
    let cluster = Cluster::start().await;
    let kubelet_dir = cluster.scratch.path().join("kubelet");
    let kubelet = ProcessKubelet::start(
        cluster.client.clone(),
        KubeletConfig::for_emulator(
            &cluster.emulator,
            BTreeMap::from([("busybox".to_string(), PathBuf::from("/bin/sh"))]),
            kubelet_dir,
        ),
    )
    .await
    .expect("kubelet starts");
    let ns = "helm-e2e";
    let chart = repo_file("tests/kube-emulator/testdata/sample-chart");

    let installed = cluster
        .ok(
            &helm,
            &[
                "install",
                "sample",
                &chart,
                "--namespace",
                ns,
                "--create-namespace",
            ],
        )
        .await;
    assert!(installed.contains("STATUS: deployed"), "{installed}");

    let client = cluster.client.clone();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let releases = secrets
        .list(&ListParams::default().labels("owner=helm,name=sample"))
        .await
        .expect("list release secrets");
    assert_eq!(releases.items.len(), 1);
    assert_eq!(
        releases.items[0].type_.as_deref(),
        Some("helm.sh/release.v1")
    );
    assert_eq!(
        releases.items[0].metadata.name.as_deref(),
        Some("sh.helm.release.v1.sample.v1")
    );
    let config: ConfigMap = Api::namespaced(client.clone(), ns)
        .get("sample-config")
        .await
        .expect("configmap");
    assert_eq!(
        config
            .data
            .unwrap_or_default()
            .get("greeting")
            .map(String::as_str),
        Some("hello from helm")
    );
    Api::<ServiceAccount>::namespaced(client.clone(), ns)
        .get("sample")
        .await
        .expect("service account");
    Api::<Role>::namespaced(client.clone(), ns)
        .get("sample-reader")
        .await
        .expect("role");
    Api::<RoleBinding>::namespaced(client.clone(), ns)
        .get("sample-reader")
        .await
        .expect("role binding");
    Api::<Deployment>::namespaced(client.clone(), ns)
        .get("sample")
        .await
        .expect("deployment");
    Api::<Service>::namespaced(client.clone(), ns)
        .get("sample")
        .await
        .expect("service");

    let listed = cluster.ok(&helm, &["list", "--namespace", ns]).await;
    let rows = parse_table(&listed);
    assert_eq!(rows.len(), 1, "{listed}");
    assert_eq!(rows[0]["NAME"], "sample", "{listed}");
    assert_eq!(rows[0]["STATUS"], "deployed", "{listed}");
    assert_eq!(rows[0]["CHART"], "sample-chart-0.1.0", "{listed}");

    // The Deployment's pod runs on the process kubelet with env from the chart's ConfigMap.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let logs = cluster
            .run(&kubectl, &["logs", "deployment/sample", "--namespace", ns])
            .await;
        if String::from_utf8_lossy(&logs.stdout).contains("hello from helm") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the chart's pod never logged its greeting: {logs:?}\npods: {:#?}",
            Api::<Pod>::namespaced(client.clone(), ns)
                .list(&ListParams::default())
                .await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let uninstalled = cluster
        .ok(&helm, &["uninstall", "sample", "--namespace", ns])
        .await;
    assert!(uninstalled.contains("uninstalled"), "{uninstalled}");
    let releases = secrets
        .list(&ListParams::default().labels("owner=helm"))
        .await
        .expect("list release secrets");
    assert!(releases.items.is_empty(), "release secret left behind");
    assert!(
        Api::<ConfigMap>::namespaced(client.clone(), ns)
            .get_opt("sample-config")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Api::<Deployment>::namespaced(client.clone(), ns)
            .get_opt("sample")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Api::<Service>::namespaced(client.clone(), ns)
            .get_opt("sample")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        Api::<Role>::namespaced(client.clone(), ns)
            .get_opt("sample-reader")
            .await
            .unwrap()
            .is_none()
    );
    // Garbage collection removes the ReplicaSet's pod; the kubelet stops its process.
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !pods
        .list(&ListParams::default())
        .await
        .expect("list pods")
        .items
        .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the chart's pods were never removed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let empty = cluster.ok(&helm, &["list", "--namespace", ns]).await;
    assert!(parse_table(&empty).is_empty(), "{empty}");
    kubelet.stop().await;
    cluster.emulator.stop().await;
}

#[test]
fn table_parser_handles_empty_cells() {
    let text = "NAME   PHASE   SEVERITY   AGE\n\
                a               critical   1s\n\
                b      Running  info       2s\n";
    let rows = parse_table(text);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["PHASE"], "");
    assert_eq!(rows[0]["SEVERITY"], "critical");
    assert_eq!(rows[1]["PHASE"], "Running");
    assert_eq!(rows[1]["AGE"], "2s");
}

//! The chart installed with helm into the emulator, with the process kubelet in image mode: the
//! chart's operator pod runs `incident-operator controller` inside the operator image, and the
//! agent pod it starts runs inside the agent image (tini as PID 1, uid 65532, read-only root,
//! the pod's /tmp and audit volumes bound in). The scripted model asks for one shell command that
//! uses the image's own kubectl, curl, jq and dig against the emulator (and a DNS answer on
//! loopback standing in for cluster DNS); the test reads that command's output from the tool
//! result the agent sent back over the Messages API, then the completed Incident.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use incident_operator::incident::{Incident, Phase};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube_emulator::Emulator;
use kube_emulator::kubelet::{KubeletConfig, ProcessKubelet};
use scripted_model::{RecordedRequest, ScriptedModel, Step, reply};
use serde_json::{Value, json};

use super::build::{Built, cache_dir};
use super::tools;

const RELEASE: &str = "sre";
const RELEASE_NS: &str = "incident-system";
const INCIDENT_NS: &str = "default";
const EXAMPLE_INCIDENT: &str = "checkout-api-5xx";
/// Only there so a broken piece fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(180);
const SUMMARY: &str = "tools of the agent image answered from inside it";

/// The one shell command: each tool's output on its own marked line.
const COMMAND: &str = "echo \"uid=$(id -u) pid1=$(cat /proc/1/comm)\"; \
    echo \"pods=$(kubectl get pods -n default -o json | jq -r '[.items[].metadata.name] | length')\"; \
    server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}'); \
    echo \"version=$(curl -fsS --max-time 10 --cacert /var/run/secrets/kubernetes.io/serviceaccount/ca.crt \"$server/version\" | jq -r .gitVersion)\"; \
    echo \"dig=$(dig +short +tries=1 +time=5 -p \"$DNS_PORT\" @127.0.0.1 kubernetes.default.svc.cluster.local)\"; \
    touch /etc/nope 2>/dev/null || echo rootfs=read-only";

fn model_answer(dns_port: u16) -> impl Fn(&RecordedRequest) -> Step + Send + Sync + 'static {
    move |request: &RecordedRequest| {
        let turns = request.body["messages"].as_array().map_or(0, Vec::len);
        if turns <= 1 {
            Step::Reply(reply::tool_use(
                "t1",
                "shell",
                json!({"command": COMMAND.replace("$DNS_PORT", &dns_port.to_string())}),
            ))
        } else {
            Step::Reply(reply::tool_use(
                "r1",
                "report",
                json!({"summary": SUMMARY, "rootCause": "none: an image test",
                       "evidence": ["the shell command's output"],
                       "recommendations": ["none"], "confidence": "high", "resolved": true}),
            ))
        }
    }
}

/// Runs kubectl or helm against the emulator with a scratch HOME; returns the output.
fn run_tool(tool: &Path, args: &[&str], kubeconfig: &Path, scratch: &Path) -> Output {
    let home = scratch.join("home");
    Command::new(tool)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", &home)
        .env("HELM_CACHE_HOME", home.join("helm-cache"))
        .env("HELM_CONFIG_HOME", home.join("helm-config"))
        .env("HELM_DATA_HOME", home.join("helm-data"))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{} does not start: {e}", tool.display()))
}

fn ok(tool: &Path, args: &[&str], kubeconfig: &Path, scratch: &Path) -> String {
    let output = run_tool(tool, args, kubeconfig, scratch);
    assert!(
        output.status.success(),
        "{} {args:?}: {}\n{}",
        tool.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The images the chart renders: the Deployment's image and its `--agent-image=`.
fn chart_images(chart: &str, values: &str, scratch: &Path) -> (String, String) {
    let text = ok(
        &tools::tool("helm"),
        &[
            "template", RELEASE, chart, "-n", RELEASE_NS, "--values", values,
        ],
        &scratch.join("none"),
        scratch,
    );
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("rendered YAML");
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let agent = container["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find_map(|a| a.strip_prefix("--agent-image="))
        .expect("--agent-image")
        .to_string();
    (
        container["image"].as_str().expect("image").to_string(),
        agent,
    )
}

/// Answers every A query on a loopback UDP port with 127.0.0.1: cluster DNS for `dig`.
fn start_dns() -> (u16, std::thread::JoinHandle<()>) {
    use hickory_proto::op::{Message, MessageType, ResponseCode};
    use hickory_proto::rr::{RData, Record, rdata::A};
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind DNS");
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let port = socket.local_addr().expect("addr").port();
    let handle = std::thread::spawn(move || {
        let started = Instant::now();
        let mut buf = [0u8; 512];
        while started.elapsed() < WAIT {
            let Ok((len, peer)) = socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(query) = Message::from_vec(&buf[..len]) else {
                continue;
            };
            let mut answer = Message::new();
            answer
                .set_id(query.id())
                .set_message_type(MessageType::Response)
                .set_recursion_desired(query.recursion_desired())
                .set_authoritative(true)
                .set_response_code(ResponseCode::NoError);
            for q in query.queries() {
                answer.add_query(q.clone());
                answer.add_answer(Record::from_rdata(
                    q.name().clone(),
                    30,
                    RData::A(A::new(127, 0, 0, 1)),
                ));
            }
            if let Ok(bytes) = answer.to_vec() {
                let _ = socket.send_to(&bytes, peer);
            }
        }
    });
    (port, handle)
}

pub async fn run(built: &Built) {
    let (dns_port, _dns) = start_dns();
    let model = ScriptedModel::start_with(model_answer(dns_port)).await;
    // Not under /tmp: the pod's credentials are bound at their host paths, and the agent's /tmp
    // is a volume of its own.
    let dir = tempfile::tempdir_in(cache_dir()).expect("scratch dir");
    let scratch = dir.path();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let values = scratch.join("values.yaml");
    std::fs::write(
        &values,
        format!(
            "watchNamespaces: [{INCIDENT_NS}]\n\
             alertmanager:\n  incidentNamespace: {INCIDENT_NS}\n\
             anthropic:\n  baseUrl: \"{}\"\n\
             service:\n  port: {port}\n  listenHost: 127.0.0.1\n",
            model.base_url()
        ),
    )
    .expect("values");
    let values = values.to_string_lossy().into_owned();
    let chart = tools::repo_root()
        .join("charts/incident-operator")
        .to_string_lossy()
        .into_owned();
    let (operator_image, agent_image) = chart_images(&chart, &values, scratch);

    let emulator = Emulator::start().await.expect("emulator");
    let client = emulator.client().await;
    let kubeconfig = scratch.join("kubeconfig");
    emulator.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let images: BTreeMap<String, PathBuf> = BTreeMap::from([
        (operator_image.clone(), built.operator.unpacked.clone()),
        (agent_image.clone(), built.agent.unpacked.clone()),
    ]);
    let kubelet = ProcessKubelet::start(
        client.clone(),
        KubeletConfig::for_emulator(&emulator, images, scratch.join("kubelet")),
    )
    .await
    .expect("kubelet");

    let kubectl = tools::tool("kubectl");
    let helm = tools::tool("helm");
    let k = |args: &[&str]| ok(&kubectl, args, &kubeconfig, scratch);
    k(&["create", "namespace", RELEASE_NS]);
    k(&[
        "-n",
        INCIDENT_NS,
        "create",
        "secret",
        "generic",
        "anthropic-api-key",
        "--from-literal=api-key=sk-ant-image-test-0123456789abcdef",
    ]);
    k(&[
        "-n",
        RELEASE_NS,
        "create",
        "secret",
        "generic",
        "incident-operator-webhook",
        "--from-literal=token=image-test-webhook-token-0123456789",
    ]);
    let installed = ok(
        &helm,
        &[
            "install", RELEASE, &chart, "-n", RELEASE_NS, "--values", &values,
        ],
        &kubeconfig,
        scratch,
    );
    assert!(installed.contains("STATUS: deployed"), "{installed}");
    k(&[
        "apply",
        "-f",
        &tools::repo_root()
            .join("examples/incident.yaml")
            .to_string_lossy(),
    ]);

    let incidents: Api<Incident> = Api::namespaced(client.clone(), INCIDENT_NS);
    let started = Instant::now();
    let incident = loop {
        let current = incidents.get_opt(EXAMPLE_INCIDENT).await.ok().flatten();
        let phase = current
            .as_ref()
            .and_then(|i| i.status.as_ref())
            .and_then(|s| s.phase);
        match phase {
            Some(Phase::Completed) => break current.expect("incident"),
            Some(Phase::Failed) => panic!(
                "the Incident failed: {:#?}\n{}",
                current.and_then(|i| i.status),
                dump(&kubectl, &kubeconfig, scratch)
            ),
            _ if started.elapsed() > WAIT => panic!(
                "no completed Incident after {WAIT:?}: {phase:?}\n{}",
                dump(&kubectl, &kubeconfig, scratch)
            ),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    let status = incident.status.clone().expect("status");
    assert_eq!(
        status.report.as_ref().map(|r| r.summary.as_str()),
        Some(SUMMARY)
    );

    // What the image's tools printed, as the agent sent it back to the model.
    let requests = model.requests();
    let results = requests
        .iter()
        .flat_map(|r| r.body["messages"].as_array().cloned().unwrap_or_default())
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["type"] == "tool_result")
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    for expected in [
        "uid=65532 pid1=tini",
        "pods=",
        "version=v1.",
        "dig=127.0.0.1",
        "rootfs=read-only",
    ] {
        let expected = if kube_emulator::kubelet::image::sandbox::pid_namespace_available()
            || !expected.contains("pid1")
        {
            expected
        } else {
            "uid=65532"
        };
        assert!(
            results.contains(expected),
            "the agent's shell output lacks {expected:?}:\n{results}"
        );
    }
    assert!(
        !results.contains("pods=0") && !results.contains("pods=\\n"),
        "kubectl | jq saw no pods: {results}"
    );

    // Both pods ran from the images: their imageID is the image config's digest.
    let pods: Api<Pod> = Api::all(client.clone());
    let all = pods.list(&ListParams::default()).await.expect("pods").items;
    let image_ids: Vec<(String, String)> = all
        .iter()
        .flat_map(|p| {
            p.status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
        })
        .map(|c| (c.image.clone(), c.image_id.clone()))
        .collect();
    for (image, unpacked) in [
        (&operator_image, &built.operator.unpacked),
        (&agent_image, &built.agent.unpacked),
    ] {
        let id = kube_emulator::kubelet::image::UnpackedImage::open(unpacked)
            .expect("unpacked")
            .id;
        assert!(
            image_ids.iter().any(|(i, d)| i == image && *d == id),
            "no container of {image} reports imageID {id}: {image_ids:?}"
        );
    }

    ok(
        &helm,
        &["uninstall", RELEASE, "-n", RELEASE_NS],
        &kubeconfig,
        scratch,
    );
    kubelet.stop().await;
    emulator.stop().await;
}

/// Objects and pod logs, for a failure message.
fn dump(kubectl: &Path, kubeconfig: &Path, scratch: &Path) -> String {
    let text = |args: &[&str]| {
        let out = run_tool(kubectl, args, kubeconfig, scratch);
        format!(
            "$ kubectl {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let mut dump = text(&["get", "all,inc,pvc", "-A", "-o", "wide"]);
    dump.push_str(&text(&["get", "events", "-A"]));
    for namespace in [RELEASE_NS, INCIDENT_NS] {
        let names = run_tool(
            kubectl,
            &["-n", namespace, "get", "pods", "-o", "name"],
            kubeconfig,
            scratch,
        );
        for pod in String::from_utf8_lossy(&names.stdout).lines() {
            dump.push_str(&text(&["-n", namespace, "logs", pod, "--tail=40"]));
        }
    }
    dump
}

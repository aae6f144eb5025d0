//! The process kubelet against the emulator: real processes, real files, real HTTP on loopback.
//! Each test starts its own emulator and kubelet and works in its own namespace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, Node, PersistentVolumeClaim, Pod, Secret, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{DeleteParams, LogParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Api, Client};
use kube_emulator::Emulator;
use kube_emulator::kubelet::{KubeletConfig, ProcessKubelet};
use serde_json::json;

/// Generous bound so a broken kubelet fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(30);
/// The image every test pod uses; the kubelet maps it to /bin/sh.
const SHELL_IMAGE: &str = "busybox:1.36";

struct Cluster {
    emulator: Option<Emulator>,
    kubelet: Option<ProcessKubelet>,
    client: Client,
    namespace: String,
    work_dir: tempfile::TempDir,
}

impl Cluster {
    async fn start(namespace: &str) -> Cluster {
        let emulator = Emulator::start().await.expect("emulator starts");
        let client = emulator.client().await;
        let work_dir = tempfile::tempdir().expect("temp dir");
        let config = KubeletConfig::for_emulator(
            &emulator,
            BTreeMap::from([(SHELL_IMAGE.to_string(), PathBuf::from("/bin/sh"))]),
            work_dir.path().to_path_buf(),
        );
        Cluster::with(emulator, client, config, work_dir, namespace).await
    }

    /// Like [`Cluster::start`], but the kubelet is configured as for a real cluster
    /// ([`KubeletConfig::for_cluster`]): URL and CA bundle come from a kubeconfig, as they would
    /// from KUBECONFIG. The kubelet, its pods and the test all verify the https API server.
    async fn start_https(namespace: &str) -> Cluster {
        let emulator = Emulator::start().await.expect("emulator starts");
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::from_yaml(&emulator.kubeconfig_yaml()).unwrap(),
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("kubeconfig");
        let client = Client::try_from(config.clone()).expect("https client");
        let work_dir = tempfile::tempdir().expect("temp dir");
        let kubelet_config = KubeletConfig::for_cluster(
            &config,
            "local",
            BTreeMap::from([(SHELL_IMAGE.to_string(), PathBuf::from("/bin/sh"))]),
            work_dir.path().to_path_buf(),
            true,
        );
        Cluster::with(emulator, client, kubelet_config, work_dir, namespace).await
    }

    async fn with(
        emulator: Emulator,
        client: Client,
        config: KubeletConfig,
        work_dir: tempfile::TempDir,
        namespace: &str,
    ) -> Cluster {
        let kubelet = ProcessKubelet::start(client.clone(), config)
            .await
            .expect("kubelet starts");
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .expect("namespace created");
        Cluster {
            emulator: Some(emulator),
            kubelet: Some(kubelet),
            client,
            namespace: namespace.to_string(),
            work_dir,
        }
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn create_pod(&self, pod: serde_json::Value) -> Pod {
        let pod: Pod = serde_json::from_value(pod).expect("valid pod");
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .expect("pod created")
    }

    async fn create<K>(&self, object: serde_json::Value) -> K
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let object: K = serde_json::from_value(object).expect("valid object");
        self.api::<K>()
            .create(&PostParams::default(), &object)
            .await
            .expect("object created")
    }

    /// Waits until the pod satisfies `condition`, failing with the pod's last state otherwise.
    async fn wait_pod(&self, name: &str, what: &str, condition: impl Fn(&Pod) -> bool) -> Pod {
        let waited = tokio::time::timeout(
            WAIT,
            await_condition(self.pods(), name, move |pod: Option<&Pod>| {
                pod.is_some_and(&condition)
            }),
        )
        .await;
        match waited {
            Ok(Ok(Some(pod))) => pod,
            other => {
                let current = self.pods().get_opt(name).await;
                panic!("pod {name} never became {what}: {other:?}\nlast seen: {current:#?}");
            }
        }
    }

    async fn wait_phase(&self, name: &str, phase: &str) -> Pod {
        self.wait_pod(name, phase, |pod| phase_of(pod) == Some(phase))
            .await
    }

    async fn wait_gone(&self, name: &str) {
        let waited = tokio::time::timeout(
            WAIT,
            await_condition(self.pods(), name, |pod: Option<&Pod>| pod.is_none()),
        )
        .await;
        assert!(
            matches!(waited, Ok(Ok(_))),
            "pod {name} was never removed: {:#?}",
            self.pods().get_opt(name).await
        );
    }

    async fn logs(&self, name: &str, params: &LogParams) -> String {
        self.pods().logs(name, params).await.expect("pod log")
    }

    async fn stop(mut self) {
        if let Some(kubelet) = self.kubelet.take() {
            kubelet.stop().await;
        }
        if let Some(emulator) = self.emulator.take() {
            emulator.stop().await;
        }
    }
}

fn shell_pod(name: &str, script: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 5,
            "containers": [{
                "name": "main",
                "image": SHELL_IMAGE,
                "command": ["sh", "-c", script],
            }],
        },
    })
}

fn phase_of(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

fn terminated(pod: &Pod) -> &k8s_openapi::api::core::v1::ContainerStateTerminated {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref())
        .unwrap_or_else(|| panic!("no terminated state: {pod:#?}"))
}

fn waiting(pod: &Pod) -> Option<(String, String)> {
    let state = pod
        .status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .as_ref()?
        .waiting
        .as_ref()?;
    Some((
        state.reason.clone().unwrap_or_default(),
        state.message.clone().unwrap_or_default(),
    ))
}

fn condition(pod: &Pod, type_: &str) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

/// The pid in a `process://<pid>` container id.
fn container_pid(pod: &Pod) -> i32 {
    let id = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .and_then(|c| c.container_id.clone())
        .unwrap_or_else(|| panic!("no container id: {pod:#?}"));
    id.strip_prefix("process://")
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("container id {id} is not process://<pid>"))
}

/// Whether a process exists and is not a zombie waiting to be reaped.
fn process_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            // The state follows the parenthesised command name, which may contain spaces.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

async fn wait_dead(pid: i32) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while process_alive(pid) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "process {pid} still alive"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn node_is_registered_ready_and_pods_get_bound() {
    let cluster = Cluster::start("kubelet-node").await;
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let node = nodes.get("local").await.expect("node registered");
    let status = node.status.expect("node status");
    let ready = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
        .expect("Ready condition");
    assert_eq!(ready.status, "True");
    assert!(status.capacity.unwrap().contains_key("cpu"));
    assert!(
        status
            .daemon_endpoints
            .and_then(|d| d.kubelet_endpoint)
            .is_some_and(|e| e.port > 0),
        "kubelet endpoint published"
    );

    // The heartbeat Lease, as the node controller expects it.
    let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), "kube-node-lease");
    let deadline = tokio::time::Instant::now() + WAIT;
    let lease = loop {
        if let Some(lease) = leases.get_opt("local").await.expect("get lease") {
            break lease;
        }
        assert!(tokio::time::Instant::now() < deadline, "no node lease");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let spec = lease.spec.expect("lease spec");
    assert_eq!(spec.holder_identity.as_deref(), Some("local"));
    assert!(spec.renew_time.is_some());

    cluster.create_pod(shell_pod("bound", "exit 0")).await;
    let pod = cluster.wait_phase("bound", "Succeeded").await;
    assert_eq!(
        pod.spec.unwrap().node_name.as_deref(),
        Some("local"),
        "bound through pods/binding"
    );
    cluster.stop().await;
}

#[tokio::test]
async fn exit_zero_succeeds_and_exit_three_fails() {
    let cluster = Cluster::start("kubelet-exit").await;
    cluster.create_pod(shell_pod("ok", "echo fine")).await;
    cluster.create_pod(shell_pod("bad", "exit 3")).await;

    let ok = cluster.wait_phase("ok", "Succeeded").await;
    let state = terminated(&ok);
    assert_eq!(state.exit_code, 0);
    assert_eq!(state.reason.as_deref(), Some("Completed"));
    assert!(state.started_at.is_some() && state.finished_at.is_some());
    let status = ok.status.as_ref().unwrap();
    assert_eq!(status.pod_ip.as_deref(), Some("127.0.0.1"));
    assert!(status.start_time.is_some());
    assert_eq!(condition(&ok, "PodScheduled").as_deref(), Some("True"));
    assert_eq!(condition(&ok, "Initialized").as_deref(), Some("True"));
    assert_eq!(condition(&ok, "Ready").as_deref(), Some("False"));
    assert_eq!(condition(&ok, "ContainersReady").as_deref(), Some("False"));

    let bad = cluster.wait_phase("bad", "Failed").await;
    let state = terminated(&bad);
    assert_eq!(state.exit_code, 3);
    assert_eq!(state.reason.as_deref(), Some("Error"));
    cluster.stop().await;
}

#[tokio::test]
async fn running_pod_is_ready() {
    let cluster = Cluster::start("kubelet-running").await;
    cluster.create_pod(shell_pod("sleeper", "sleep 300")).await;
    let pod = cluster.wait_phase("sleeper", "Running").await;
    assert_eq!(condition(&pod, "Ready").as_deref(), Some("True"));
    assert!(process_alive(container_pid(&pod)));
    cluster.stop().await;
    // stop() kills the process group it started.
    wait_dead(container_pid(&pod)).await;
}

#[tokio::test]
async fn env_comes_from_values_secrets_config_maps_and_fields() {
    let cluster = Cluster::start("kubelet-env").await;
    cluster
        .create::<Secret>(json!({
            "metadata": {"name": "creds"},
            "stringData": {"api-key": "sk-secret"},
        }))
        .await;
    cluster
        .create::<ConfigMap>(json!({
            "metadata": {"name": "settings"},
            "data": {"MODEL": "claude", "LEVEL": "debug"},
        }))
        .await;
    cluster
        .create::<ServiceAccount>(json!({"metadata": {"name": "agent"}}))
        .await;
    let script = "echo \"plain=$PLAIN key=$KEY model=$MODEL pfx=$CFG_LEVEL pod=$POD ns=$NS \
                  uid=$UID node=$NODE sa=$SA ip=$IP missing=${MISSING-unset} \
                  expanded=$EXPANDED svc=${KUBERNETES_SERVICE_HOST-none}\"";
    let mut pod = shell_pod("env", script);
    pod["spec"]["serviceAccountName"] = json!("agent");
    pod["spec"]["containers"][0]["envFrom"] = json!([
        {"configMapRef": {"name": "settings"}, "prefix": "CFG_"},
        {"secretRef": {"name": "absent", "optional": true}},
    ]);
    let field = |path: &str| json!({"fieldRef": {"fieldPath": path}});
    pod["spec"]["containers"][0]["env"] = json!([
        {"name": "PLAIN", "value": "v1"},
        {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "api-key"}}},
        {"name": "MODEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "MODEL"}}},
        {"name": "MISSING", "valueFrom": {"configMapKeyRef":
            {"name": "settings", "key": "nope", "optional": true}}},
        {"name": "POD", "valueFrom": field("metadata.name")},
        {"name": "NS", "valueFrom": field("metadata.namespace")},
        {"name": "UID", "valueFrom": field("metadata.uid")},
        {"name": "NODE", "valueFrom": field("spec.nodeName")},
        {"name": "SA", "valueFrom": field("spec.serviceAccountName")},
        {"name": "IP", "valueFrom": field("status.podIP")},
        {"name": "EXPANDED", "value": "$(PLAIN)-$(MODEL)"},
    ]);
    let created = cluster.create_pod(pod).await;
    cluster.wait_phase("env", "Succeeded").await;
    let log = cluster.logs("env", &LogParams::default()).await;
    let uid = created.metadata.uid.unwrap();
    assert_eq!(
        log.trim(),
        format!(
            "plain=v1 key=sk-secret model=claude pfx=debug pod=env ns=kubelet-env uid={uid} \
             node=local sa=agent ip=127.0.0.1 missing=unset expanded=v1-claude svc=none"
        )
    );
    cluster.stop().await;
}

#[tokio::test]
async fn missing_secret_waits_with_a_reason_then_runs_once_created() {
    let cluster = Cluster::start("kubelet-missing").await;
    let mut pod = shell_pod("needs-secret", "test \"$TOKEN\" = later");
    pod["spec"]["containers"][0]["env"] = json!([
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "late", "key": "token"}}},
    ]);
    cluster.create_pod(pod).await;
    let pending = cluster
        .wait_pod("needs-secret", "waiting on its secret", |p| {
            waiting(p).is_some_and(|(reason, _)| reason == "CreateContainerConfigError")
        })
        .await;
    assert_eq!(phase_of(&pending), Some("Pending"));
    let (_, message) = waiting(&pending).unwrap();
    assert!(message.contains("\"late\""), "{message}");

    cluster
        .create::<Secret>(json!({"metadata": {"name": "late"}, "stringData": {"token": "later"}}))
        .await;
    cluster.wait_phase("needs-secret", "Succeeded").await;
    cluster.stop().await;
}

#[tokio::test]
async fn unmapped_image_stays_pending_with_a_reason() {
    let cluster = Cluster::start("kubelet-image").await;
    let mut pod = shell_pod("nginx", "exit 0");
    pod["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    cluster.create_pod(pod).await;
    let pod = cluster
        .wait_pod("nginx", "waiting on its image", |p| waiting(p).is_some())
        .await;
    assert_eq!(phase_of(&pod), Some("Pending"));
    let (reason, message) = waiting(&pod).unwrap();
    assert_eq!(reason, "ImageNotMapped");
    assert!(message.contains("nginx:1.27"), "{message}");
    // Still pending a moment later: nothing runs it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = cluster.pods().get("nginx").await.unwrap();
    assert_eq!(phase_of(&again), Some("Pending"));
    cluster.stop().await;
}

#[tokio::test]
async fn pvc_directory_outlives_the_pod() {
    let cluster = Cluster::start("kubelet-pvc").await;
    cluster
        .create::<PersistentVolumeClaim>(json!({
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Mi"}}},
        }))
        .await;
    let with_volume = |name: &str, script: &str| {
        let mut pod = shell_pod(name, script);
        pod["spec"]["volumes"] = json!([
            {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
            {"name": "scratch", "emptyDir": {}},
        ]);
        pod["spec"]["containers"][0]["volumeMounts"] = json!([
            {"name": "data", "mountPath": "/var/data"},
            {"name": "scratch", "mountPath": "/scratch"},
        ]);
        pod["spec"]["containers"][0]["env"] = json!([{"name": "OUT", "value": "/var/data/out"}]);
        pod
    };
    let writer = cluster
        .create_pod(with_volume(
            "writer",
            "echo kept > $OUT && echo gone > /scratch/tmp && cat /scratch/tmp",
        ))
        .await;
    cluster.wait_phase("writer", "Succeeded").await;
    cluster
        .pods()
        .delete("writer", &DeleteParams::default())
        .await
        .unwrap();
    cluster.wait_gone("writer").await;

    let pvc_file = cluster.work_dir.path().join("pvc/kubelet-pvc/data/out");
    assert_eq!(std::fs::read_to_string(&pvc_file).unwrap(), "kept\n");
    let writer_uid = writer.metadata.uid.unwrap();
    let scratch = cluster
        .work_dir
        .path()
        .join("pods")
        .join(&writer_uid)
        .join("volumes/scratch");
    assert!(!scratch.exists(), "emptyDir removed with its pod");

    cluster
        .create_pod(with_volume(
            "reader",
            "test \"$(cat /var/data/out)\" = kept && test ! -e /scratch/tmp",
        ))
        .await;
    cluster.wait_phase("reader", "Succeeded").await;
    cluster.stop().await;
}

#[tokio::test]
async fn termination_message_from_file_and_from_logs() {
    let cluster = Cluster::start("kubelet-message").await;
    cluster
        .create_pod(shell_pod(
            "wrote",
            "echo 'all checks passed' > /dev/termination-log",
        ))
        .await;
    let mut custom = shell_pod("custom", "printf 'custom path' > $MSG; exit 4");
    custom["spec"]["containers"][0]["terminationMessagePath"] = json!("/tmp/custom-message");
    custom["spec"]["containers"][0]["env"] =
        json!([{"name": "MSG", "value": "/tmp/custom-message"}]);
    cluster.create_pod(custom).await;
    let mut fallback = shell_pod("fallback", "echo starting; echo 'fatal: boom' >&2; exit 1");
    fallback["spec"]["containers"][0]["terminationMessagePolicy"] = json!("FallbackToLogsOnError");
    cluster.create_pod(fallback).await;

    let wrote = cluster.wait_phase("wrote", "Succeeded").await;
    assert_eq!(
        terminated(&wrote).message.as_deref(),
        Some("all checks passed\n")
    );
    let custom = cluster.wait_phase("custom", "Failed").await;
    assert_eq!(terminated(&custom).message.as_deref(), Some("custom path"));
    assert_eq!(terminated(&custom).exit_code, 4);
    let fallback = cluster.wait_phase("fallback", "Failed").await;
    let message = terminated(&fallback).message.clone().unwrap_or_default();
    assert!(message.contains("fatal: boom"), "{message}");
    assert!(message.contains("starting"), "{message}");
    // Host paths never leak into /tmp: the message file lives in the pod directory.
    assert!(!Path::new("/tmp/custom-message").exists());
    cluster.stop().await;
}

#[tokio::test]
async fn active_deadline_fails_the_pod_and_kills_the_group() {
    let cluster = Cluster::start("kubelet-deadline").await;
    let mut pod = shell_pod("slow", "sleep 300");
    pod["spec"]["activeDeadlineSeconds"] = json!(2);
    cluster.create_pod(pod).await;
    let running = cluster.wait_phase("slow", "Running").await;
    let pid = container_pid(&running);
    let failed = cluster.wait_phase("slow", "Failed").await;
    let status = failed.status.as_ref().unwrap();
    assert_eq!(status.reason.as_deref(), Some("DeadlineExceeded"));
    assert!(
        status
            .message
            .as_deref()
            .is_some_and(|m| m.contains("deadline")),
        "{status:?}"
    );
    assert_ne!(terminated(&failed).exit_code, 0);
    wait_dead(pid).await;
    cluster.stop().await;
}

#[tokio::test]
async fn deleting_a_running_pod_kills_its_process_group() {
    let cluster = Cluster::start("kubelet-delete").await;
    cluster
        .create_pod(shell_pod("busy", "sleep 300 & echo child=$!; wait"))
        .await;
    let running = cluster.wait_phase("busy", "Running").await;
    let leader = container_pid(&running);
    // The child's pid comes from the pod log, served through the kubelet endpoint.
    let deadline = tokio::time::Instant::now() + WAIT;
    let child: i32 = loop {
        let log = cluster.logs("busy", &LogParams::default()).await;
        if let Some(pid) = log
            .lines()
            .find_map(|l| l.strip_prefix("child="))
            .and_then(|p| p.trim().parse().ok())
        {
            break pid;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no child pid in {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(process_alive(leader) && process_alive(child));

    cluster
        .pods()
        .delete("busy", &DeleteParams::default())
        .await
        .unwrap();
    cluster.wait_gone("busy").await;
    wait_dead(leader).await;
    wait_dead(child).await;
    cluster.stop().await;
}

#[tokio::test]
async fn a_process_ignoring_sigterm_is_killed_after_the_grace_period() {
    let cluster = Cluster::start("kubelet-grace").await;
    // An ignored signal stays ignored in children, so only SIGKILL ends this group.
    let mut pod = shell_pod("stubborn", "trap '' TERM; sleep 300 & echo child=$!; wait");
    pod["spec"]["terminationGracePeriodSeconds"] = json!(1);
    cluster.create_pod(pod).await;
    let running = cluster.wait_phase("stubborn", "Running").await;
    let leader = container_pid(&running);
    cluster
        .pods()
        .delete("stubborn", &DeleteParams::default())
        .await
        .unwrap();
    cluster.wait_gone("stubborn").await;
    wait_dead(leader).await;
    cluster.stop().await;
}

#[tokio::test]
async fn pod_log_is_served_with_tail_previous_and_follow() {
    let cluster = Cluster::start("kubelet-logs").await;
    cluster
        .create_pod(shell_pod("talker", "echo one; echo two >&2; echo three"))
        .await;
    cluster.wait_phase("talker", "Succeeded").await;
    let all = cluster.logs("talker", &LogParams::default()).await;
    let mut lines: Vec<&str> = all.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, vec!["one", "three", "two"]);
    let tail = cluster
        .logs(
            "talker",
            &LogParams {
                tail_lines: Some(1),
                ..LogParams::default()
            },
        )
        .await;
    assert_eq!(tail.lines().count(), 1);
    let stamped = cluster
        .logs(
            "talker",
            &LogParams {
                timestamps: true,
                ..LogParams::default()
            },
        )
        .await;
    assert!(
        stamped.lines().all(|l| l
            .split_once(' ')
            .is_some_and(|(t, _)| t.parse::<jiff::Timestamp>().is_ok())),
        "{stamped}"
    );

    // OnFailure restarts a failing container; the previous run's log stays available.
    let mut flaky = shell_pod(
        "flaky",
        "if [ -e /work/ran ]; then echo second; else touch /work/ran; echo first; exit 1; fi",
    );
    flaky["spec"]["restartPolicy"] = json!("OnFailure");
    flaky["spec"]["volumes"] = json!([{"name": "work", "emptyDir": {}}]);
    flaky["spec"]["containers"][0]["volumeMounts"] =
        json!([{"name": "work", "mountPath": "/work"}]);
    cluster.create_pod(flaky).await;
    let done = cluster.wait_phase("flaky", "Succeeded").await;
    let container = &done
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0];
    assert_eq!(container.restart_count, 1);
    let last = container
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .expect("last state");
    assert_eq!(last.exit_code, 1);
    assert_eq!(
        cluster.logs("flaky", &LogParams::default()).await,
        "second\n"
    );
    let previous = cluster
        .logs(
            "flaky",
            &LogParams {
                previous: true,
                ..LogParams::default()
            },
        )
        .await;
    assert_eq!(previous, "first\n");

    // follow streams lines as they are written and ends when the container exits.
    cluster
        .create_pod(shell_pod("ticker", "echo tick1; sleep 1; echo tick2"))
        .await;
    cluster.wait_phase("ticker", "Running").await;
    let stream = cluster
        .pods()
        .log_stream(
            "ticker",
            &LogParams {
                follow: true,
                ..LogParams::default()
            },
        )
        .await
        .expect("log stream");
    let followed: Vec<String> = tokio::time::timeout(WAIT, stream.lines().try_collect())
        .await
        .expect("follow ends when the container exits")
        .expect("stream reads");
    assert_eq!(followed, vec!["tick1", "tick2"]);
    cluster.stop().await;
}

#[tokio::test]
async fn pod_kubeconfig_carries_its_service_account_token() {
    let kubectl = kube_emulator::tools::kubectl().unwrap_or_else(|e| panic!("{e}"));
    let cluster = Cluster::start("kubelet-token").await;
    cluster
        .create::<ServiceAccount>(json!({"metadata": {"name": "agent"}}))
        .await;
    // The API server enforces RBAC: the pod's ServiceAccount may read pods, nothing else.
    cluster
        .create::<Role>(json!({"metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}))
        .await;
    cluster
        .create::<RoleBinding>(json!({"metadata": {"name": "pod-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "agent", "namespace": "kubelet-token"}]}))
        .await;
    let script = format!(
        "test -n \"$KUBECONFIG\" && test -z \"$KUBERNETES_SERVICE_HOST\" && \
         {kubectl} get pod \"$HOSTNAME\" -o 'jsonpath={{.spec.serviceAccountName}}' && \
         ! {kubectl} delete pod \"$HOSTNAME\" --wait=false 2>/dev/null",
        kubectl = kubectl.display()
    );
    let mut pod = shell_pod("whoami", &script);
    pod["spec"]["serviceAccountName"] = json!("agent");
    let created = cluster.create_pod(pod).await;
    let done = cluster
        .wait_pod("whoami", "finished", |p| {
            matches!(phase_of(p), Some("Succeeded" | "Failed"))
        })
        .await;
    let log = cluster.logs("whoami", &LogParams::default()).await;
    assert_eq!(phase_of(&done), Some("Succeeded"), "log: {log}");
    assert_eq!(log.trim(), "agent");

    // The kubeconfig's token is a TokenRequest token of the pod's ServiceAccount.
    let uid = created.metadata.uid.unwrap();
    let token_file = cluster.work_dir.path().join("pods").join(uid).join("token");
    let token = std::fs::read_to_string(&token_file).expect("token file");
    let claims = token.split('.').nth(1).expect("a JWT");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .expect("base64url claims"),
    )
    .expect("JSON claims");
    assert_eq!(claims["sub"], "system:serviceaccount:kubelet-token:agent");
    assert_eq!(
        claims["kubernetes.io"]["pod"]["name"], "whoami",
        "bound to the pod"
    );
    cluster.stop().await;
}

#[tokio::test]
async fn against_an_https_api_server_pods_verify_it_with_the_ca_from_their_kubeconfig() {
    let kubectl = kube_emulator::tools::kubectl().unwrap_or_else(|e| panic!("{e}"));
    let cluster = Cluster::start_https("kubelet-tls").await;
    // RBAC is enforced: the pod's ServiceAccount may read that one ConfigMap.
    cluster
        .create::<Role>(json!({"metadata": {"name": "root-ca-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                       "resourceNames": ["kube-root-ca.crt"], "verbs": ["get"]}]}))
        .await;
    cluster
        .create::<RoleBinding>(json!({"metadata": {"name": "root-ca-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "root-ca-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "kubelet-tls"}]}))
        .await;
    // kubectl in the pod verifies the server with certificate-authority-data (it would fail
    // with "certificate signed by unknown authority" without it) and authenticates with its
    // token (client-go sends it only over TLS); the output goes through pods/log, which the
    // API server fetches from the kubelet over TLS.
    let script = format!(
        "{kubectl} get configmap kube-root-ca.crt -o 'jsonpath={{.metadata.name}}'",
        kubectl = kubectl.display()
    );
    let created = cluster.create_pod(shell_pod("tls", &script)).await;
    let done = cluster
        .wait_pod("tls", "finished", |p| {
            matches!(phase_of(p), Some("Succeeded" | "Failed"))
        })
        .await;
    let log = cluster.logs("tls", &LogParams::default()).await;
    assert_eq!(phase_of(&done), Some("Succeeded"), "log: {log}");
    assert_eq!(log.trim(), "kube-root-ca.crt");

    let uid = created.metadata.uid.unwrap();
    let kubeconfig = std::fs::read_to_string(
        cluster
            .work_dir
            .path()
            .join("pods")
            .join(uid)
            .join("kubeconfig.yaml"),
    )
    .expect("pod kubeconfig");
    let parsed = kube::config::Kubeconfig::from_yaml(&kubeconfig).unwrap();
    let server = parsed.clusters[0].cluster.as_ref().unwrap();
    assert!(
        server
            .server
            .as_deref()
            .unwrap()
            .starts_with("https://127.0.0.1:")
    );
    assert!(server.certificate_authority_data.is_some(), "{kubeconfig}");
    cluster.stop().await;
}

#[tokio::test]
async fn the_kube_api_access_volume_gives_the_pod_its_in_cluster_credentials() {
    let kubectl = kube_emulator::tools::kubectl().unwrap_or_else(|e| panic!("{e}"));
    let cluster = Cluster::start("kubelet-projected").await;
    let server = cluster.emulator.as_ref().expect("emulator").url();
    cluster
        .create::<ServiceAccount>(json!({"metadata": {"name": "reader"}}))
        .await;
    // Only what the admission-added volume holds: the token, the CA that verifies the API
    // server and the namespace, read at the in-cluster paths; no KUBECONFIG.
    let dir = "/var/run/secrets/kubernetes.io/serviceaccount";
    let script = format!(
        "cat {dir}/namespace && echo && \
         env -u KUBECONFIG {kubectl} --server={server} --certificate-authority={dir}/ca.crt \
         --token=\"$(cat {dir}/token)\" auth whoami -o json",
        kubectl = kubectl.display()
    );
    let mut pod = shell_pod("incluster", &script);
    pod["spec"]["serviceAccountName"] = json!("reader");
    let created = cluster.create_pod(pod).await;
    let done = cluster
        .wait_pod("incluster", "finished", |p| {
            matches!(phase_of(p), Some("Succeeded" | "Failed"))
        })
        .await;
    let log = cluster.logs("incluster", &LogParams::default()).await;
    assert_eq!(phase_of(&done), Some("Succeeded"), "log: {log}");
    let (namespace, review) = log.split_once('\n').expect("two parts");
    assert_eq!(namespace, "kubelet-projected");
    let review: serde_json::Value = serde_json::from_str(review).expect("SelfSubjectReview");
    let user = &review["status"]["userInfo"];
    assert_eq!(
        user["username"],
        "system:serviceaccount:kubelet-projected:reader"
    );
    assert_eq!(
        user["extra"]["authentication.kubernetes.io/pod-name"],
        json!(["incluster"]),
        "{review}"
    );

    // On the host: the volume directory holds the three files with the volume's mode 0644.
    use std::os::unix::fs::PermissionsExt;
    let volume = created
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .find(|v| v.name.starts_with("kube-api-access-"))
        .expect("admission added the volume")
        .name
        .clone();
    let host_dir = cluster
        .work_dir
        .path()
        .join("pods")
        .join(created.metadata.uid.unwrap())
        .join("volumes")
        .join(volume);
    let ca = std::fs::read_to_string(host_dir.join("ca.crt")).expect("ca.crt");
    assert_eq!(ca, cluster.emulator.as_ref().unwrap().ca_pem());
    for file in ["token", "ca.crt", "namespace"] {
        let mode = std::fs::metadata(host_dir.join(file))
            .expect(file)
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644, "{file}");
    }
    cluster.stop().await;
}

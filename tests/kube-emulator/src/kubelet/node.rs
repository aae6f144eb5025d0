//! The Node object of this kubelet: registered at start, kept Ready by a heartbeat that renews the
//! node's Lease in `kube-node-lease` and refreshes the Ready condition in the Node's status.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::env::POD_IP;
use super::worker::api_code;

/// Namespace of node heartbeat Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// How often the heartbeat runs (the real kubelet renews its Lease every 10 s).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
/// Lease duration, as the real kubelet's default.
const LEASE_DURATION_SECONDS: i32 = 40;
/// Version reported in `nodeInfo.kubeletVersion`.
const KUBELET_VERSION: &str = "v1.36.0-process";

/// Registering or updating the Node failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("creating Node {node}")]
    Create {
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("updating the status of Node {node}")]
    Status {
        node: String,
        #[source]
        source: kube::Error,
    },
}

/// Labels the Node carries; the binder matches `nodeSelector`s against them.
pub fn node_labels(node_name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), node_name.to_string()),
        (
            "kubernetes.io/os".to_string(),
            std::env::consts::OS.to_string(),
        ),
        ("kubernetes.io/arch".to_string(), go_arch().to_string()),
        (
            "node.kubernetes.io/instance-type".to_string(),
            "process-kubelet".to_string(),
        ),
    ])
}

/// Creates the Node (or adopts an existing one of the same name) and reports it Ready.
pub async fn register(
    client: &Client,
    node_name: &str,
    log_port: u16,
) -> Result<Timestamp, NodeError> {
    let api: Api<Node> = Api::all(client.clone());
    let node = Node {
        metadata: ObjectMeta {
            name: Some(node_name.to_string()),
            labels: Some(node_labels(node_name)),
            ..ObjectMeta::default()
        },
        ..Node::default()
    };
    match api.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(error) if api_code(&error) == Some(409) => {
            // Left over from an earlier kubelet of the same name: take it over.
            let patch = json!({"metadata": {"labels": node_labels(node_name)}});
            api.patch(node_name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|source| NodeError::Create {
                    node: node_name.to_string(),
                    source,
                })?;
        }
        Err(source) => {
            return Err(NodeError::Create {
                node: node_name.to_string(),
                source,
            });
        }
    }
    let ready_since = Timestamp::now();
    update_status(client, node_name, ready_since, log_port).await?;
    Ok(ready_since)
}

/// Renews the Lease and the Ready condition every [`HEARTBEAT_INTERVAL`] until cancelled.
pub async fn heartbeat(
    client: Client,
    node_name: String,
    ready_since: Timestamp,
    log_port: u16,
    cancel: CancellationToken,
) {
    let mut lease_warned = false;
    loop {
        if let Err(error) = renew_lease(&client, &node_name).await {
            // Some API servers (a bare emulator) have no kube-node-lease namespace; the Node
            // status heartbeat below still keeps the node Ready.
            if lease_warned {
                debug!(%error, "node lease renewal failed");
            } else {
                warn!(%error, "node lease renewal failed; relying on Node status heartbeats");
                lease_warned = true;
            }
        }
        if let Err(error) = update_status(&client, &node_name, ready_since, log_port).await {
            warn!(error = %super::launch::error_chain(&error), "node status heartbeat failed");
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(HEARTBEAT_INTERVAL) => {}
        }
    }
}

async fn renew_lease(client: &Client, node_name: &str) -> Result<(), kube::Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), NODE_LEASE_NAMESPACE);
    let now = MicroTime(Timestamp::now());
    let spec = LeaseSpec {
        holder_identity: Some(node_name.to_string()),
        lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
        renew_time: Some(now),
        ..LeaseSpec::default()
    };
    if api.get_opt(node_name).await?.is_some() {
        let patch = json!({ "spec": spec });
        api.patch(node_name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    } else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(node_name.to_string()),
                namespace: Some(NODE_LEASE_NAMESPACE.to_string()),
                ..ObjectMeta::default()
            },
            spec: Some(spec),
        };
        api.create(&PostParams::default(), &lease).await?;
    }
    Ok(())
}

async fn update_status(
    client: &Client,
    node_name: &str,
    ready_since: Timestamp,
    log_port: u16,
) -> Result<(), NodeError> {
    let api: Api<Node> = Api::all(client.clone());
    let status = node_status(node_name, ready_since, Timestamp::now(), log_port);
    let patch = json!({ "status": status });
    api.patch_status(node_name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| NodeError::Status {
            node: node_name.to_string(),
            source,
        })?;
    Ok(())
}

/// The Node status: Ready since `ready_since`, no pressure, this machine's resources and identity,
/// and the kubelet endpoint (`log_port` on 127.0.0.1) that serves container logs.
pub fn node_status(
    node_name: &str,
    ready_since: Timestamp,
    now: Timestamp,
    log_port: u16,
) -> NodeStatus {
    let condition = |type_: &str, status: &str, reason: &str, message: &str| NodeCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_heartbeat_time: Some(Time(now)),
        last_transition_time: Some(Time(ready_since)),
    };
    let resources = machine_resources();
    NodeStatus {
        conditions: Some(vec![
            condition(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            condition(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            ),
            condition(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            condition(
                "Ready",
                "True",
                "KubeletReady",
                "process kubelet is posting ready status",
            ),
        ]),
        capacity: Some(resources.clone()),
        allocatable: Some(resources),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: POD_IP.into(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: node_name.into(),
            },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(log_port),
            }),
        }),
        node_info: Some(system_info()),
        ..NodeStatus::default()
    }
}

fn machine_resources() -> BTreeMap<String, Quantity> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse::<u64>().ok())
        })
        .unwrap_or(1024 * 1024);
    BTreeMap::from([
        ("cpu".to_string(), Quantity(cpus.to_string())),
        ("memory".to_string(), Quantity(format!("{memory_kib}Ki"))),
        ("pods".to_string(), Quantity("110".to_string())),
    ])
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn system_info() -> NodeSystemInfo {
    let os_image = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    let machine_id = read_trimmed("/etc/machine-id");
    NodeSystemInfo {
        architecture: go_arch().to_string(),
        boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
        container_runtime_version: format!("process://{}", env!("CARGO_PKG_VERSION")),
        kernel_version: read_trimmed("/proc/sys/kernel/osrelease"),
        kube_proxy_version: String::new(),
        kubelet_version: KUBELET_VERSION.to_string(),
        system_uuid: machine_id.clone(),
        machine_id,
        operating_system: std::env::consts::OS.to_string(),
        os_image,
        swap: None,
    }
}

/// The architecture as Kubernetes (Go) names it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_ready_with_resources() {
        let since = Timestamp::from_second(100).unwrap();
        let status = node_status("local", since, Timestamp::from_second(200).unwrap(), 4321);
        assert_eq!(
            status
                .daemon_endpoints
                .as_ref()
                .and_then(|d| d.kubelet_endpoint.as_ref())
                .map(|e| e.port),
            Some(4321)
        );
        let ready = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(ready.last_transition_time, Some(Time(since)));
        let capacity = status.capacity.unwrap();
        assert!(capacity.contains_key("cpu") && capacity.contains_key("memory"));
        assert_eq!(status.node_info.unwrap().kubelet_version, KUBELET_VERSION);
    }
}

//! Binds unscheduled pods to this node through the `pods/binding` subresource, standing in for
//! kube-scheduler where there is none (the emulator). A pod whose `nodeSelector` does not match the
//! node's labels is left unscheduled. Failed bindings are retried every [`RETRY_INTERVAL`].

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::node::node_labels;
use super::worker::api_code;

const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Whether this node may run `pod`: it is unscheduled, not being deleted, and its `nodeSelector`
/// matches the node's labels.
pub fn wants_binding(pod: &Pod, labels: &BTreeMap<String, String>) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    let unscheduled = spec.node_name.as_deref().is_none_or(str::is_empty);
    let selector_matches = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    unscheduled && pod.metadata.deletion_timestamp.is_none() && selector_matches
}

/// Watches unscheduled pods and binds each to `node_name` until cancelled.
pub async fn run(client: Client, node_name: String, cancel: CancellationToken) {
    let labels = node_labels(&node_name);
    let pods: Api<Pod> = Api::all(client.clone());
    let config = watcher::Config::default().fields("spec.nodeName=");
    let mut events = watcher(pods, config).boxed();
    // Pods whose binding failed, by namespace/name, retried on a timer.
    let mut retry: BTreeMap<(String, String), Pod> = BTreeMap::new();
    let mut ticker = tokio::time::interval(RETRY_INTERVAL);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticker.tick() => {
                for (_, pod) in std::mem::take(&mut retry) {
                    bind_or_remember(&client, &node_name, &labels, pod, &mut retry).await;
                }
            }
            event = events.next() => match event {
                None => return,
                Some(Err(error)) => {
                    warn!(%error, "watching unscheduled pods failed; the watcher retries");
                    tokio::time::sleep(RETRY_INTERVAL).await;
                }
                Some(Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) => {
                    bind_or_remember(&client, &node_name, &labels, pod, &mut retry).await;
                }
                Some(Ok(watcher::Event::Delete(pod))) => {
                    retry.remove(&key(&pod));
                }
                Some(Ok(watcher::Event::Init | watcher::Event::InitDone)) => {}
            },
        }
    }
}

fn key(pod: &Pod) -> (String, String) {
    (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}

async fn bind_or_remember(
    client: &Client,
    node_name: &str,
    labels: &BTreeMap<String, String>,
    pod: Pod,
    retry: &mut BTreeMap<(String, String), Pod>,
) {
    if !wants_binding(&pod, labels) {
        return;
    }
    let (namespace, name) = key(&pod);
    let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            uid: pod.metadata.uid.clone(),
            ..ObjectMeta::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node_name.to_string()),
            ..ObjectReference::default()
        },
    };
    // A real API server answers a Binding with a Status object, so the reply is not decoded.
    let result: Result<serde_json::Value, _> = api
        .create_subresource("binding", &name, &PostParams::default(), &binding)
        .await;
    match result {
        Ok(_) => info!(pod = %format!("{namespace}/{name}"), node = node_name, "pod bound"),
        // Already bound (409) or gone (404): nothing left to do.
        Err(error) if matches!(api_code(&error), Some(404 | 409)) => {}
        Err(error) => {
            warn!(pod = %format!("{namespace}/{name}"), %error, "binding failed; will retry");
            retry.insert((namespace, name), pod);
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::PodSpec;

    use super::*;

    #[test]
    fn binds_only_unscheduled_matching_pods() {
        let labels = node_labels("local");
        let mut pod = Pod {
            spec: Some(PodSpec::default()),
            ..Pod::default()
        };
        assert!(wants_binding(&pod, &labels));

        let spec = pod.spec.as_mut().unwrap();
        spec.node_selector = Some(BTreeMap::from([(
            "kubernetes.io/hostname".to_string(),
            "local".to_string(),
        )]));
        assert!(wants_binding(&pod, &labels));

        let spec = pod.spec.as_mut().unwrap();
        spec.node_selector = Some(BTreeMap::from([("gpu".to_string(), "yes".to_string())]));
        assert!(!wants_binding(&pod, &labels));

        let spec = pod.spec.as_mut().unwrap();
        spec.node_selector = None;
        spec.node_name = Some("other".into());
        assert!(!wants_binding(&pod, &labels));
    }
}

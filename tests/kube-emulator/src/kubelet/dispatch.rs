//! Watches the pods bound to this node and gives each its own [worker](super::worker), keyed by
//! uid. The worker gets every later version of its pod through a `watch` channel, and `None` when
//! the pod is deleted from the API server (also when a re-list after a lost watch no longer
//! contains it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::watcher;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::warn;

use super::worker::{self, WorkerContext};

/// Runs until the kubelet's cancellation token fires, then waits for every worker to finish.
pub async fn run(ctx: Arc<WorkerContext>) {
    let node_name = ctx.config.node_name.clone();
    let pods: Api<Pod> = Api::all(ctx.client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node_name}"));
    let mut events = watcher(pods, config).boxed();
    let mut senders: BTreeMap<String, watch::Sender<Option<Pod>>> = BTreeMap::new();
    let mut workers = JoinSet::new();
    // Uids seen during a re-list, to find pods deleted while the watch was down.
    let mut relisted: Option<BTreeSet<String>> = None;
    loop {
        let event = tokio::select! {
            () = ctx.cancel.cancelled() => break,
            // Reap finished workers so the set does not grow without bound.
            Some(_) = workers.join_next(), if !workers.is_empty() => continue,
            event = events.next() => event,
        };
        match event {
            None => break,
            Some(Err(error)) => {
                warn!(%error, "watching this node's pods failed; the watcher retries");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Some(Ok(watcher::Event::Init)) => relisted = Some(BTreeSet::new()),
            Some(Ok(watcher::Event::InitApply(pod))) => {
                if let (Some(seen), Some(uid)) = (relisted.as_mut(), pod.metadata.uid.clone()) {
                    seen.insert(uid);
                }
                deliver(&ctx, &node_name, pod, &mut senders, &mut workers);
            }
            Some(Ok(watcher::Event::InitDone)) => {
                if let Some(seen) = relisted.take() {
                    senders.retain(|uid, sender| {
                        let present = seen.contains(uid);
                        if !present {
                            sender.send_replace(None);
                        }
                        present
                    });
                }
            }
            Some(Ok(watcher::Event::Apply(pod))) => {
                deliver(&ctx, &node_name, pod, &mut senders, &mut workers);
            }
            Some(Ok(watcher::Event::Delete(pod))) => {
                if let Some(sender) = pod.metadata.uid.as_ref().and_then(|u| senders.remove(u)) {
                    sender.send_replace(None);
                }
            }
        }
    }
    // Workers see the cancellation themselves and stop their processes.
    while workers.join_next().await.is_some() {}
}

fn deliver(
    ctx: &Arc<WorkerContext>,
    node_name: &str,
    pod: Pod,
    senders: &mut BTreeMap<String, watch::Sender<Option<Pod>>>,
    workers: &mut JoinSet<()>,
) {
    // The field selector already filters; checking again keeps a lenient server harmless.
    let bound_here = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node_name);
    let Some(uid) = pod.metadata.uid.clone() else {
        return;
    };
    if !bound_here {
        return;
    }
    match senders.get(&uid) {
        Some(sender) => {
            sender.send_replace(Some(pod));
        }
        None => {
            let (sender, receiver) = watch::channel(Some(pod));
            senders.insert(uid, sender);
            workers.spawn(worker::run_pod(ctx.clone(), receiver));
        }
    }
}

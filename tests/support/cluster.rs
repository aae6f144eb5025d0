//! The API server an e2e suite runs against: a fresh in-memory emulator per test (the default,
//! and what CI runs), or the cluster of the current KUBECONFIG with `KUBE_E2E_REAL_CLUSTER=1`
//! (the e2e twin of the conformance suite's `KUBE_CONFORMANCE_REAL_CLUSTER=1`).
//!
//! The suites are the same in both modes; what differs is all here:
//! - the client and the kubeconfig kubectl/helm use come from KUBECONFIG, not the emulator;
//! - the process kubelet joins the cluster as a Node of its own (`process-kubelet-<random>`),
//!   writing the cluster's URL and CA bundle into its pods' kubeconfigs, and binds pending pods
//!   to itself (the cluster should have no scheduler, or no other node that could take them);
//! - the API server must reach the kubelet's log endpoint at 127.0.0.1 (the same host);
//! - teardown deletes the namespaces a test made and waits until they are gone, and deletes
//!   the Node (an emulator is simply dropped).
//!
//! Tests in real-cluster mode share one cluster: run them one at a time (`--test-threads=1`).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::Client;
use kube::api::{Api, DeleteParams};
use kube_emulator::Emulator;
use kube_emulator::kubelet::KubeletConfig;

/// The environment variable that switches the e2e suites to the KUBECONFIG cluster.
pub const REAL_CLUSTER_SWITCH: &str = "KUBE_E2E_REAL_CLUSTER";

/// How long teardown waits for a namespace to be deleted on a real cluster.
const NAMESPACE_GONE: Duration = Duration::from_secs(120);

/// Whether the suites run against the KUBECONFIG cluster.
pub fn real_cluster() -> bool {
    std::env::var(REAL_CLUSTER_SWITCH).as_deref() == Ok("1")
}

/// A connected API server: the emulator, or the KUBECONFIG cluster.
pub struct ApiServer {
    /// Client with the kubeconfig's (admin) credentials.
    pub client: Client,
    /// What `KUBECONFIG` is for kubectl and helm.
    pub kubeconfig: PathBuf,
    emulator: Option<Emulator>,
    config: Option<kube::Config>,
    node_name: String,
}

impl ApiServer {
    /// Starts an emulator (writing its kubeconfig into `dir`), or connects to the KUBECONFIG
    /// cluster in real-cluster mode.
    pub async fn start(dir: &Path) -> ApiServer {
        if real_cluster() {
            let config = kube::Config::infer()
                .await
                .unwrap_or_else(|e| panic!("{REAL_CLUSTER_SWITCH}=1 needs a KUBECONFIG: {e}"));
            let client = Client::try_from(config.clone()).expect("client for the KUBECONFIG");
            let kubeconfig = std::env::var_os("KUBECONFIG")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".kube/config")))
                .expect("KUBECONFIG or HOME");
            let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
            return ApiServer {
                client,
                kubeconfig,
                emulator: None,
                config: Some(config),
                node_name: format!("process-kubelet-{suffix}"),
            };
        }
        let emulator = Emulator::start().await.expect("emulator starts");
        let client = emulator.client().await;
        let kubeconfig = dir.join("kubeconfig");
        emulator.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        ApiServer {
            client,
            kubeconfig,
            emulator: Some(emulator),
            config: None,
            node_name: "local".to_string(),
        }
    }

    /// Whether this is the emulator.
    pub fn is_emulator(&self) -> bool {
        self.emulator.is_some()
    }

    /// The process kubelet's configuration for this API server.
    pub fn kubelet_config(
        &self,
        images: BTreeMap<String, PathBuf>,
        work_dir: PathBuf,
    ) -> KubeletConfig {
        match (&self.emulator, &self.config) {
            (Some(emulator), _) => KubeletConfig::for_emulator(emulator, images, work_dir),
            (None, Some(config)) => {
                KubeletConfig::for_cluster(config, &self.node_name, images, work_dir, true)
            }
            (None, None) => unreachable!("an ApiServer is an emulator or has a config"),
        }
    }

    /// Deletes `namespaces` and waits until they are gone (real cluster only: an emulator
    /// goes with the test). Run at the start of a test too, for leftovers of an aborted run.
    pub async fn delete_namespaces(&self, namespaces: &[&str]) {
        if self.is_emulator() {
            return;
        }
        let api: Api<Namespace> = Api::all(self.client.clone());
        for name in namespaces {
            let _ = api.delete(name, &DeleteParams::default()).await;
        }
        let started = Instant::now();
        for name in namespaces {
            while api.get_opt(name).await.ok().flatten().is_some() {
                assert!(
                    started.elapsed() < NAMESPACE_GONE,
                    "namespace {name} still exists after {NAMESPACE_GONE:?}"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }

    /// Stops the emulator, or removes the kubelet's Node from the real cluster.
    pub async fn stop(self) {
        match self.emulator {
            Some(emulator) => emulator.stop().await,
            None => {
                let nodes: Api<Node> = Api::all(self.client.clone());
                let _ = nodes
                    .delete(&self.node_name, &DeleteParams::default())
                    .await;
            }
        }
    }
}

//! What the plugin suites share: an API server (emulator, or KUBECONFIG with
//! `KUBE_E2E_REAL_CLUSTER=1`) with the Incident CRD and a namespace, Incidents created with their
//! status through the API, and the real `kubectl-incident` binary run against it with a fixed clock
//! and no colour, compared with golden files under `tests/golden/`.
//!
//! `UPDATE_GOLDEN=1 cargo test --test plugin_show` rewrites the golden files from the output
//! instead of comparing (review the diff before committing it).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use incident_operator::incident::{Incident, IncidentStatus};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, CustomResourceExt};
use serde_json::json;
use tempfile::TempDir;

use crate::cluster::ApiServer;

pub const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-incident");
/// The clock every plugin run sees (`KUBECTL_INCIDENT_NOW`). Earlier than the objects' real
/// creation time on purpose: their server-set ages then always render as `0s`, so the golden
/// output does not depend on when the test ran.
pub const NOW: &str = "2026-01-28T10:00:00Z";
/// Set to 1 to rewrite the golden files.
pub const UPDATE_GOLDEN: &str = "UPDATE_GOLDEN";

/// An API server with the CRD and one namespace, and a scratch directory.
pub struct PluginCluster {
    pub api: ApiServer,
    pub namespace: String,
    pub dir: TempDir,
}

impl PluginCluster {
    pub async fn start(namespace: &str) -> PluginCluster {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("temp dir");
        let api = ApiServer::start(dir.path()).await;
        api.delete_namespaces(&[namespace]).await;
        let crds: Api<CustomResourceDefinition> = Api::all(api.client.clone());
        match crds.create(&PostParams::default(), &Incident::crd()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(e) => panic!("install the Incident CRD: {e}"),
        }
        let namespaces: Api<Namespace> = Api::all(api.client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap(),
            )
            .await
            .expect("create the namespace");
        let cluster = PluginCluster {
            api,
            namespace: namespace.to_string(),
            dir,
        };
        cluster.wait_for_crd().await;
        cluster
    }

    fn client(&self) -> Client {
        self.api.client.clone()
    }

    /// A real cluster serves a new CRD only once it is established.
    async fn wait_for_crd(&self) {
        let api: Api<Incident> = Api::namespaced(self.client(), &self.namespace);
        let started = Instant::now();
        while let Err(e) = api.list(&ListParams::default()).await {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the CRD is not served: {e}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Creates `incident` in the namespace, then writes its status through the status
    /// subresource, as the controller and agent would.
    pub async fn create(&self, mut incident: Incident) -> Incident {
        let api: Api<Incident> = Api::namespaced(self.client(), &self.namespace);
        let status: Option<IncidentStatus> = incident.status.take();
        incident.metadata.namespace = Some(self.namespace.clone());
        let name = incident.metadata.name.clone().expect("a name");
        api.create(&PostParams::default(), &incident)
            .await
            .unwrap_or_else(|e| panic!("create incident {name}: {e}"));
        if let Some(status) = status {
            api.patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .unwrap_or_else(|e| panic!("status of incident {name}: {e}"));
        }
        api.get(&name).await.expect("read the incident back")
    }

    /// Records an events.k8s.io/v1 Event about `incident`, as the controller's recorder does.
    pub async fn event(&self, incident: &Incident, kind: &str, reason: &str, note: &str, at: &str) {
        let api: Api<Event> = Api::namespaced(self.client(), &self.namespace);
        let name = incident.metadata.name.clone().unwrap();
        let event: Event = serde_json::from_value(json!({
            "metadata": {"generateName": format!("{name}.")},
            "eventTime": at,
            "reportingController": "sre.agentlab.dev/incident-operator",
            "reportingInstance": "incident-operator-0",
            "action": reason,
            "reason": reason,
            "type": kind,
            "note": note,
            "regarding": {
                "apiVersion": "sre.agentlab.dev/v1alpha1",
                "kind": "Incident",
                "namespace": self.namespace,
                "name": name,
                "uid": incident.metadata.uid,
            },
        }))
        .expect("an Event");
        api.create(&PostParams::default(), &event)
            .await
            .unwrap_or_else(|e| panic!("create event {reason}: {e}"));
    }

    /// Runs the plugin binary with the admin kubeconfig.
    pub fn plugin(&self, args: &[&str]) -> Output {
        self.plugin_as(&self.api.kubeconfig, args)
    }

    /// Runs the plugin binary with `kubeconfig`: piped (so no colour), fixed clock, fixed width,
    /// and none of the caller's COLUMNS or NO_COLOR.
    pub fn plugin_as(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        Command::new(PLUGIN)
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("KUBECTL_INCIDENT_NOW", NOW)
            .env_remove("COLUMNS")
            .env_remove("NO_COLOR")
            .env_remove("RUST_LOG")
            .output()
            .expect("run kubectl-incident")
    }

    /// A kubeconfig whose user is the ServiceAccount `name` of the namespace (no RBAC of its
    /// own), with the admin kubeconfig's server and CA.
    pub async fn service_account_kubeconfig(&self, name: &str) -> PathBuf {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client(), &self.namespace);
        accounts
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
            )
            .await
            .expect("create the ServiceAccount");
        let request = kube::core::Request::new(format!(
            "/api/v1/namespaces/{}/serviceaccounts",
            self.namespace
        ))
        .create_subresource(
            "token",
            name,
            &PostParams::default(),
            serde_json::to_vec(&json!({
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 3600},
            }))
            .unwrap(),
        )
        .expect("a TokenRequest");
        let answer: serde_json::Value = self.client().request(request).await.expect("a token");
        let token = answer["status"]["token"]
            .as_str()
            .expect("token")
            .to_string();
        let admin = std::fs::read_to_string(&self.api.kubeconfig).expect("admin kubeconfig");
        let mut kubeconfig: serde_json::Value =
            serde_saphyr::from_str(&admin).expect("kubeconfig YAML");
        let context = kubeconfig["current-context"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let user_name = kubeconfig["contexts"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["name"] == context.as_str()))
            .map(|c| c["context"]["user"].clone())
            .expect("the current context names a user");
        for user in kubeconfig["users"].as_array_mut().expect("users") {
            if user["name"] == user_name {
                user["user"] = json!({"token": token});
            }
        }
        let path = self.dir.path().join(format!("kubeconfig-{name}"));
        std::fs::write(&path, kubeconfig.to_string()).expect("write kubeconfig");
        path
    }

    pub async fn stop(self) {
        self.api.delete_namespaces(&[&self.namespace]).await;
        self.api.stop().await;
    }
}

/// Stdout of a run that must have succeeded.
pub fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "kubectl-incident failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

/// Compares `actual` with `tests/golden/<name>`, or rewrites it with `UPDATE_GOLDEN=1`.
pub fn assert_golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var(UPDATE_GOLDEN).as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with {UPDATE_GOLDEN}=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the output at line {}:\n--- expected\n{}\n--- actual\n{}\n(run with {UPDATE_GOLDEN}=1 to accept)",
            path.display(),
            first + 1,
            expected.lines().nth(first).unwrap_or("<end>"),
            actual.lines().nth(first).unwrap_or("<end>"),
        );
    }
}

/// The README's capture of `show` (between its `capture: show` markers) must be `show_output`;
/// `UPDATE_GOLDEN=1` rewrites it.
pub fn assert_readme_capture(show_output: &str) {
    const BEGIN: &str = "<!-- BEGIN capture: show -->\n";
    const END: &str = "<!-- END capture: show -->";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let start = readme
        .find(BEGIN)
        .expect("README.md has the show capture markers")
        + BEGIN.len();
    let stop = start
        + readme[start..]
            .find(END)
            .expect("README.md closes the show capture");
    let wanted =
        format!("```text\n$ kubectl incident show checkout-5xx -n plugin-show\n{show_output}```\n");
    if std::env::var(UPDATE_GOLDEN).as_deref() == Ok("1") {
        let updated = format!("{}{wanted}{}", &readme[..start], &readme[stop..]);
        std::fs::write(&path, updated).expect("rewrite README.md");
        return;
    }
    assert!(
        readme[start..stop] == wanted,
        "the README's capture of `show` is not the golden output; run with {UPDATE_GOLDEN}=1"
    );
}

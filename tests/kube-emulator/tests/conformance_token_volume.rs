//! Conformance: the ServiceAccount admission plugin's projected `kube-api-access-*` volume
//! (also run with `KUBE_CONFORMANCE_REAL_CLUSTER=1`): its exact shape with every default, the
//! read-only mount in each container and init container, and when it is left out
//! (`automountServiceAccountToken: false` on the pod or its ServiceAccount, a mount already at
//! the path). Pods are created but never need to run.

mod common;

use common::{TestEnv, raw_json, setup};
use http::{Method, StatusCode};
use serde_json::{Value, json};

const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The alphabet of kube-apiserver's SimpleNameGenerator (no vowels, no look-alikes).
const NAME_CHARS: &str = "bcdfghjklmnpqrstvwxz2456789";

async fn create_pod(env: &TestEnv, spec: Value) -> Value {
    let path = format!("/api/v1/namespaces/{}/pods", env.namespace);
    let name = env.unique("pod");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec});
    let created = raw_json(&env.client, Method::POST, &path, Some(&pod)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    created.json
}

fn container(name: &str) -> Value {
    json!({"name": name, "image": "registry.k8s.io/pause:3.10"})
}

/// The names of the pod's `kube-api-access-*` volumes.
fn access_volumes(pod: &Value) -> Vec<String> {
    pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str())
        .filter(|n| n.starts_with("kube-api-access-"))
        .map(str::to_string)
        .collect()
}

/// The mounts at the ServiceAccount path of each container in `list`.
fn mounts_at_path(pod: &Value, list: &str) -> Vec<Vec<Value>> {
    pod["spec"][list]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            c["volumeMounts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|m| m["mountPath"] == MOUNT_PATH)
                .cloned()
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn every_container_gets_the_projected_kube_api_access_volume() {
    let env = setup().await;
    let pod = create_pod(
        &env,
        json!({"initContainers": [container("init")], "containers": [container("a"), container("b")]}),
    )
    .await;
    let names = access_volumes(&pod);
    assert_eq!(names.len(), 1, "{pod}");
    let name = &names[0];
    let suffix = name.trim_start_matches("kube-api-access-");
    assert_eq!(suffix.len(), 5, "{name}");
    assert!(suffix.chars().all(|c| NAME_CHARS.contains(c)), "{name}");

    let volume = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == *name)
        .unwrap();
    assert_eq!(
        volume,
        &json!({"name": name, "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ]}})
    );
    let mount = json!({"name": name, "readOnly": true, "mountPath": MOUNT_PATH});
    assert_eq!(
        mounts_at_path(&pod, "initContainers"),
        vec![vec![mount.clone()]]
    );
    assert_eq!(
        mounts_at_path(&pod, "containers"),
        vec![vec![mount.clone()], vec![mount]]
    );
    assert_eq!(pod["spec"]["serviceAccountName"], "default");
    env.finish().await;
}

#[tokio::test]
async fn automount_false_on_the_pod_or_its_service_account_leaves_it_out() {
    let env = setup().await;
    let pod = create_pod(
        &env,
        json!({"automountServiceAccountToken": false, "containers": [container("a")]}),
    )
    .await;
    assert!(access_volumes(&pod).is_empty(), "{pod}");
    assert_eq!(
        mounts_at_path(&pod, "containers"),
        vec![Vec::<Value>::new()]
    );

    let account = env.unique("quiet");
    let path = format!("/api/v1/namespaces/{}/serviceaccounts", env.namespace);
    env.admin_create(
        &path,
        &json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account},
                "automountServiceAccountToken": false}),
    )
    .await;
    let pod = create_pod(
        &env,
        json!({"serviceAccountName": account, "containers": [container("a")]}),
    )
    .await;
    assert!(access_volumes(&pod).is_empty(), "{pod}");

    // The pod's own setting wins over its ServiceAccount's.
    let pod = create_pod(
        &env,
        json!({"serviceAccountName": account, "automountServiceAccountToken": true,
               "containers": [container("a")]}),
    )
    .await;
    assert_eq!(access_volumes(&pod).len(), 1, "{pod}");
    env.finish().await;
}

#[tokio::test]
async fn a_container_with_its_own_mount_at_the_path_keeps_it() {
    let env = setup().await;
    let own = json!({"name": "own", "mountPath": MOUNT_PATH});
    let mut mine = container("mine");
    mine["volumeMounts"] = json!([own]);
    let pod = create_pod(
        &env,
        json!({"volumes": [{"name": "own", "emptyDir": {}}],
               "containers": [mine.clone(), container("plain")]}),
    )
    .await;
    let names = access_volumes(&pod);
    assert_eq!(names.len(), 1, "{pod}");
    let mounts = mounts_at_path(&pod, "containers");
    assert_eq!(mounts[0], vec![own.clone()]);
    assert_eq!(
        mounts[1],
        vec![json!({"name": names[0], "readOnly": true, "mountPath": MOUNT_PATH})]
    );

    // When no container needs it, no volume is added.
    let pod = create_pod(
        &env,
        json!({"volumes": [{"name": "own", "emptyDir": {}}], "containers": [mine]}),
    )
    .await;
    assert!(access_volumes(&pod).is_empty(), "{pod}");
    env.finish().await;
}

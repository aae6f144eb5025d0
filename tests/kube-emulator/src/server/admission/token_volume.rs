//! The ServiceAccount admission plugin's mutation: every pod created by a client gets the
//! projected `kube-api-access-<5 random>` volume (token, `kube-root-ca.crt`'s `ca.crt`, the
//! namespace) and a read-only mount of it at `/var/run/secrets/kubernetes.io/serviceaccount`
//! in each container and init container, as kube-apiserver's
//! `plugin/pkg/admission/serviceaccount` does since bound tokens became the default.
//!
//! Skipped when `automountServiceAccountToken: false` is on the pod (or, when the pod does not
//! say, on its ServiceAccount), for mirror pods, and per container when something is already
//! mounted at the path. A volume already named `kube-api-access-*` is reused, not duplicated.
//! Runs before validation, so the stored pod, its managedFields and the validating policies all
//! see the added volume, as on a real server.

use serde_json::{Value, json};

use crate::server::resource::StorageKey;
use crate::server::state::Inner;

/// Where in-cluster clients look for the token, CA and namespace.
pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Prefix of the generated volume name.
pub const VOLUME_PREFIX: &str = "kube-api-access-";
/// The token lifetime the plugin asks for: one hour and seven seconds, the value kube-apiserver
/// recognises as "a default token" (warn-only past expiry).
pub const EXPIRATION_SECONDS: i64 = 3607;
/// The annotation that marks a kubelet mirror pod, whose spec admission must not change.
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// Adds the volume and mounts to a pod being created in `namespace`. `suffix` makes the
/// 5-character random part of a new volume's name.
pub fn mutate(inner: &Inner, namespace: &str, pod: &mut Value, suffix: impl FnOnce() -> String) {
    if pod
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
    {
        return;
    }
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let account = spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
        .unwrap_or("default")
        .to_string();
    let key = StorageKey {
        group: String::new(),
        resource: "serviceaccounts".into(),
    };
    // A missing ServiceAccount is refused by the validating half (`service_account`).
    let Some(service_account) = inner.store.get(&key, namespace, &account) else {
        return;
    };
    let automount = spec
        .get("automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| {
            service_account
                .get("automountServiceAccountToken")
                .and_then(Value::as_bool)
        })
        .unwrap_or(true);
    if !automount {
        return;
    }

    let existing = spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .find(|name| name.starts_with(VOLUME_PREFIX))
        .map(str::to_string);
    let volume_name = existing
        .clone()
        .unwrap_or_else(|| format!("{VOLUME_PREFIX}{}", suffix()));

    let mut needs_volume = false;
    for list in ["initContainers", "containers"] {
        let Some(Value::Array(containers)) = spec.get_mut(list) else {
            continue;
        };
        for container in containers.iter_mut().filter_map(Value::as_object_mut) {
            let mounts = container.entry("volumeMounts").or_insert_with(|| json!([]));
            let Some(mounts) = mounts.as_array_mut() else {
                continue;
            };
            let taken = mounts
                .iter()
                .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(MOUNT_PATH));
            if !taken {
                mounts.push(json!({
                    "name": volume_name,
                    "readOnly": true,
                    "mountPath": MOUNT_PATH,
                }));
                needs_volume = true;
            }
        }
    }
    if existing.is_none() && needs_volume {
        let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
        if let Some(volumes) = volumes.as_array_mut() {
            volumes.push(volume(&volume_name));
        }
    }
}

/// The projected volume, with every default the API server fills in spelled out.
fn volume(name: &str) -> Value {
    json!({
        "name": name,
        "projected": {
            "defaultMode": 420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": EXPIRATION_SECONDS, "path": "token"}},
                {"configMap": {
                    "name": crate::server::root_ca::CONFIG_MAP,
                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                }},
                {"downwardAPI": {"items": [{
                    "path": "namespace",
                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                }]}},
            ],
        },
    })
}

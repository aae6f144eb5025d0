//! kube-controller-manager's root-CA publisher: every namespace that is not terminating
//! holds a ConfigMap `kube-root-ca.crt` whose `ca.crt` is the cluster CA, recreated when it is
//! deleted and restored when it is edited. Runs after every write, like [`super::controllers`].

use serde_json::{Value, json};

use super::meta;
use super::objects;
use super::resource::StorageKey;
use super::state::Inner;

/// Name of the published ConfigMap.
pub const CONFIG_MAP: &str = "kube-root-ca.crt";
/// Its data key.
pub const DATA_KEY: &str = "ca.crt";
/// Field manager of its writes (the real publisher's).
const MANAGER: &str = "kube-controller-manager";
/// The annotation the real publisher sets.
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

fn key(resource: &str) -> StorageKey {
    StorageKey {
        group: String::new(),
        resource: resource.into(),
    }
}

/// Creates or repairs `kube-root-ca.crt` in every active namespace; true when it wrote.
pub fn publish(inner: &mut Inner, ca_pem: &str) -> bool {
    let Some(def) = inner.registry.find("", "v1", "configmaps").cloned() else {
        return false;
    };
    let namespaces: Vec<String> = inner
        .store
        .list(&key("namespaces"), None)
        .into_iter()
        .filter(|ns| !meta::is_deleting(ns))
        .map(|ns| meta::name(ns).to_string())
        .collect();
    let mut changed = false;
    for namespace in namespaces {
        let existing = inner
            .store
            .get(&key("configmaps"), &namespace, CONFIG_MAP)
            .cloned();
        match existing {
            None => {
                let map = json!({
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": CONFIG_MAP,
                        "annotations": {"kubernetes.io/description": DESCRIPTION},
                    },
                    "data": {DATA_KEY: ca_pem},
                });
                changed |= objects::create_internal(inner, &def, &namespace, map, MANAGER).is_ok();
            }
            Some(map) if map.pointer("/data/ca.crt").and_then(Value::as_str) != Some(ca_pem) => {
                if meta::is_deleting(&map) {
                    continue;
                }
                // The publisher's update overwrites data wholesale; managedFields are left as
                // they are (the emulator's other controllers write the same way).
                let mut repaired = map.clone();
                repaired["data"] = json!({DATA_KEY: ca_pem});
                inner.store.insert(&key("configmaps"), repaired);
                changed = true;
            }
            Some(_) => {}
        }
    }
    changed
}

//! The workload controllers of kube-controller-manager that tests lean on: Deployment →
//! ReplicaSet → Pod, with the status fields `kubectl rollout status` and helm's `--wait`
//! read. Like [`super::gc`], they run after every write, inside the server's lock, until
//! nothing changes.
//!
//! Simplifications: a template change scales the new ReplicaSet up and the old ones to zero
//! at once (no maxSurge/maxUnavailable pacing); `minReadySeconds` is not waited for; pods
//! are available as soon as their `Ready` condition is True.

use serde_json::{Value, json};

use super::gc::{self, DeleteOptions};
use super::meta;
use super::objects;
use super::resource::StorageKey;
use super::state::Inner;

/// Field manager of the controllers' writes.
pub const MANAGER: &str = "kube-controller-manager";
const HASH_LABEL: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn key(group: &str, resource: &str) -> StorageKey {
    StorageKey {
        group: group.into(),
        resource: resource.into(),
    }
}

/// FNV-32a of the template, spelled with the "safe" alphabet like the real controller.
fn template_hash(template: &Value) -> String {
    let mut hash: u32 = 0x811c9dc5;
    for byte in template.to_string().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x01000193);
    }
    hash.to_string()
        .bytes()
        .map(|d| SAFE_ALPHABET[usize::from(d - b'0') % SAFE_ALPHABET.len()] as char)
        .collect()
}

fn controlled_by<'a>(objects: &'a [Value], owner_uid: &str) -> Vec<&'a Value> {
    objects
        .iter()
        .filter(|o| meta::owner_refs(o).iter().any(|r| r.uid == owner_uid))
        .collect()
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn owner_reference(owner: &Value, kind: &str, api_version: &str) -> Value {
    json!([{
        "apiVersion": api_version,
        "kind": kind,
        "name": meta::name(owner),
        "uid": meta::uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    }])
}

fn replicas_of(object: &Value) -> i64 {
    object
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

/// Writes `updated` if it differs from `current`; returns whether it wrote.
fn write_if_changed(
    inner: &mut Inner,
    storage: &StorageKey,
    current: &Value,
    updated: Value,
) -> bool {
    if *current == updated {
        return false;
    }
    inner.store.insert(storage, updated);
    true
}

/// Runs the controllers until they settle (bounded).
pub fn reconcile(inner: &mut Inner) {
    for _ in 0..32 {
        let changed = deployments(inner) | replica_sets(inner);
        if !changed {
            return;
        }
        gc::sweep(inner);
    }
}

fn deployments(inner: &mut Inner) -> bool {
    let deployment_key = key("apps", "deployments");
    let rs_key = key("apps", "replicasets");
    let Some(rs_def) = inner.registry.find("apps", "v1", "replicasets").cloned() else {
        return false;
    };
    let deployments: Vec<Value> = inner
        .store
        .list(&deployment_key, None)
        .into_iter()
        .cloned()
        .collect();
    let mut changed = false;
    for deployment in deployments {
        if meta::is_deleting(&deployment) {
            continue;
        }
        let namespace = meta::namespace(&deployment).to_string();
        let Some(template) = deployment.pointer("/spec/template").cloned() else {
            continue;
        };
        let hash = template_hash(&template);
        let sets: Vec<Value> = inner
            .store
            .list(&rs_key, Some(&namespace))
            .into_iter()
            .cloned()
            .collect();
        let owned: Vec<Value> = controlled_by(&sets, meta::uid(&deployment))
            .into_iter()
            .cloned()
            .collect();
        let replicas = replicas_of(&deployment);
        let revision = owned
            .iter()
            .filter_map(|rs| {
                rs.pointer(&format!(
                    "/metadata/annotations/{}",
                    REVISION.replace('/', "~1")
                ))
                .and_then(Value::as_str)
            })
            .filter_map(|r| r.parse::<i64>().ok())
            .max()
            .unwrap_or(0);
        let current = owned
            .iter()
            .find(|rs| rs.pointer(&format!("/metadata/labels/{HASH_LABEL}")) == Some(&json!(hash)))
            .cloned();
        if current.is_none() {
            let mut labels = template
                .pointer("/metadata/labels")
                .cloned()
                .unwrap_or_else(|| json!({}));
            labels[HASH_LABEL] = json!(hash);
            let mut selector = deployment
                .pointer("/spec/selector")
                .cloned()
                .unwrap_or_else(|| json!({}));
            selector["matchLabels"][HASH_LABEL] = json!(hash);
            let mut pod_template = template.clone();
            pod_template["metadata"]["labels"] = labels.clone();
            let set = json!({
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": format!("{}-{hash}", meta::name(&deployment)),
                    "namespace": namespace,
                    "labels": labels,
                    "annotations": {REVISION: (revision + 1).to_string()},
                    "ownerReferences": owner_reference(&deployment, "Deployment", "apps/v1"),
                },
                "spec": {"replicas": replicas, "selector": selector, "template": pod_template},
            });
            if objects::create_internal(inner, &rs_def, &namespace, set, MANAGER).is_ok() {
                changed = true;
            }
            continue;
        }
        let current_name = current
            .as_ref()
            .map(|rs| meta::name(rs).to_string())
            .unwrap_or_default();
        for set in &owned {
            let wanted = if meta::name(set) == current_name {
                replicas
            } else {
                0
            };
            if replicas_of(set) != wanted {
                let mut updated = set.clone();
                updated["spec"]["replicas"] = json!(wanted);
                let generation = set
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                meta::set_meta(&mut updated, "generation", json!(generation + 1));
                changed |= write_if_changed(inner, &rs_key, set, updated);
            }
        }
        // Status from the (possibly just updated) ReplicaSets.
        let sets: Vec<Value> = inner
            .store
            .list(&rs_key, Some(&namespace))
            .into_iter()
            .cloned()
            .collect();
        let owned: Vec<&Value> = controlled_by(&sets, meta::uid(&deployment));
        let status_int = |rs: &Value, field: &str| {
            rs.pointer(&format!("/status/{field}"))
                .and_then(Value::as_i64)
                .unwrap_or(0)
        };
        let total: i64 = owned.iter().map(|rs| status_int(rs, "replicas")).sum();
        let ready: i64 = owned.iter().map(|rs| status_int(rs, "readyReplicas")).sum();
        let available: i64 = owned
            .iter()
            .map(|rs| status_int(rs, "availableReplicas"))
            .sum();
        let updated_replicas = owned
            .iter()
            .find(|rs| meta::name(rs) == current_name)
            .map(|rs| status_int(rs, "replicas"))
            .unwrap_or(0);
        let complete = updated_replicas == replicas && total == replicas && available == replicas;
        let now = meta::now_rfc3339();
        let previous = deployment
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let condition = |kind: &str, status: &str, reason: &str, message: String| {
            let kept = previous
                .iter()
                .find(|c| c["type"] == kind && c["status"] == status);
            let since = kept
                .and_then(|c| c.get("lastTransitionTime").cloned())
                .unwrap_or_else(|| json!(now));
            let updated = kept
                .filter(|c| c["reason"] == reason)
                .and_then(|c| c.get("lastUpdateTime").cloned())
                .unwrap_or_else(|| json!(now));
            json!({"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": since, "lastUpdateTime": updated})
        };
        let available_condition = if available >= replicas {
            condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
            )
        } else {
            condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
            )
        };
        let progressing = if complete {
            condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{current_name}\" has successfully progressed."),
            )
        } else {
            condition(
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                format!("ReplicaSet \"{current_name}\" is progressing."),
            )
        };
        let mut status = json!({
            "observedGeneration": deployment.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
            "replicas": total,
            "updatedReplicas": updated_replicas,
            "readyReplicas": ready,
            "availableReplicas": available,
            "conditions": [available_condition, progressing],
        });
        if replicas - available > 0 {
            status["unavailableReplicas"] = json!(replicas - available);
        }
        for field in [
            "readyReplicas",
            "availableReplicas",
            "updatedReplicas",
            "replicas",
        ] {
            if status[field] == json!(0)
                && let Some(map) = status.as_object_mut()
            {
                map.remove(field);
            }
        }
        let mut updated = deployment.clone();
        updated["status"] = status;
        changed |= write_if_changed(inner, &deployment_key, &deployment, updated);
    }
    changed
}

fn replica_sets(inner: &mut Inner) -> bool {
    let rs_key = key("apps", "replicasets");
    let pod_key = key("", "pods");
    let Some(pod_def) = inner.registry.find("", "v1", "pods").cloned() else {
        return false;
    };
    let sets: Vec<Value> = inner
        .store
        .list(&rs_key, None)
        .into_iter()
        .cloned()
        .collect();
    let mut changed = false;
    for set in sets {
        if meta::is_deleting(&set) {
            continue;
        }
        let namespace = meta::namespace(&set).to_string();
        let pods: Vec<Value> = inner
            .store
            .list(&pod_key, Some(&namespace))
            .into_iter()
            .cloned()
            .collect();
        let mut live: Vec<&Value> = controlled_by(&pods, meta::uid(&set))
            .into_iter()
            .filter(|p| !meta::is_deleting(p))
            .collect();
        let wanted = replicas_of(&set);
        let count = live.len() as i64;
        if count < wanted {
            let template = set
                .pointer("/spec/template")
                .cloned()
                .unwrap_or_else(|| json!({}));
            for _ in count..wanted {
                let mut metadata = template
                    .get("metadata")
                    .cloned()
                    .unwrap_or_else(|| json!({}));
                metadata["generateName"] = json!(format!("{}-", meta::name(&set)));
                metadata["namespace"] = json!(namespace);
                metadata["ownerReferences"] = owner_reference(&set, "ReplicaSet", "apps/v1");
                let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template.get("spec").cloned().unwrap_or_else(|| json!({}))});
                if objects::create_internal(inner, &pod_def, &namespace, pod, MANAGER).is_ok() {
                    changed = true;
                }
            }
        } else if count > wanted {
            live.sort_by_key(|p| {
                std::cmp::Reverse(
                    meta::str_at(p, &["metadata", "creationTimestamp"])
                        .unwrap_or("")
                        .to_string(),
                )
            });
            let extra: Vec<String> = live
                .iter()
                .take((count - wanted) as usize)
                .map(|p| meta::name(p).to_string())
                .collect();
            for name in extra {
                gc::delete_object(
                    inner,
                    &pod_key,
                    &namespace,
                    &name,
                    &DeleteOptions::default(),
                );
                changed = true;
            }
        }
        let pods: Vec<Value> = inner
            .store
            .list(&pod_key, Some(&namespace))
            .into_iter()
            .cloned()
            .collect();
        let owned: Vec<&Value> = controlled_by(&pods, meta::uid(&set))
            .into_iter()
            .filter(|p| !meta::is_deleting(p))
            .collect();
        let ready = owned.iter().filter(|p| is_ready(p)).count() as i64;
        let mut status = json!({
            "replicas": owned.len(),
            "fullyLabeledReplicas": owned.len(),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": set.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        });
        for field in ["readyReplicas", "availableReplicas", "fullyLabeledReplicas"] {
            if status[field] == json!(0)
                && let Some(map) = status.as_object_mut()
            {
                map.remove(field);
            }
        }
        let Some(current) = inner
            .store
            .get(&rs_key, &namespace, meta::name(&set))
            .cloned()
        else {
            continue;
        };
        let mut updated = current.clone();
        updated["status"] = status;
        changed |= write_if_changed(inner, &rs_key, &current, updated);
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_hashes_are_stable_and_safe() {
        let a = template_hash(&json!({"spec": {"containers": [{"name": "c"}]}}));
        assert_eq!(
            a,
            template_hash(&json!({"spec": {"containers": [{"name": "c"}]}}))
        );
        assert_ne!(
            a,
            template_hash(&json!({"spec": {"containers": [{"name": "d"}]}}))
        );
        assert!(a.bytes().all(|b| SAFE_ALPHABET.contains(&b)));
    }
}

//! Deletion: finalizers and `deletionTimestamp`, graceful pod deletion, namespace and CRD
//! cleanup, and garbage collection through owner references (background, foreground and
//! orphan propagation).
//!
//! The real server does the cleanup in controllers that run asynchronously; here
//! [`sweep`] runs after every write, inside the same lock, until nothing is left to do. The
//! outcome is what those controllers converge to, only sooner. A sweep looks only at the objects
//! the store's [`super::owners::OwnerIndex`] names (being deleted, or with owner references not
//! checked since they or an owner changed), never at the whole store.

use serde_json::{Value, json};

use super::crd;
use super::meta;
use super::resource::StorageKey;
use super::state::Inner;

/// Finalizer for foreground cascading deletion.
pub const FOREGROUND: &str = "foregroundDeletion";
/// Finalizer for orphaning deletion.
pub const ORPHAN: &str = "orphan";

/// `DeleteOptions` as far as the emulator uses them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeleteOptions {
    /// `Foreground`, `Background` or `Orphan`.
    pub propagation: Option<String>,
    /// Grace period for pods.
    pub grace_period: Option<i64>,
    /// Do not persist.
    pub dry_run: bool,
    /// Precondition on uid.
    pub precondition_uid: Option<String>,
    /// Precondition on resourceVersion.
    pub precondition_rv: Option<String>,
}

/// What a delete did.
#[derive(Debug, Clone, PartialEq)]
pub enum DeleteOutcome {
    /// Removed from storage; the last state.
    Deleted(Value),
    /// Marked for deletion (finalizers or grace period pending); the current state.
    Pending(Value),
}

fn namespaces_key() -> StorageKey {
    StorageKey {
        group: String::new(),
        resource: "namespaces".into(),
    }
}

fn crds_key() -> StorageKey {
    StorageKey {
        group: "apiextensions.k8s.io".into(),
        resource: "customresourcedefinitions".into(),
    }
}

/// The storage of a CRD's instances.
fn crd_instances_key(crd_object: &Value) -> StorageKey {
    StorageKey {
        group: crd_object
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        resource: crd_object
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    }
}

/// Seconds a pod gets to terminate: only pods bound to an existing node terminate gracefully
/// (their kubelet finishes the deletion); others go at once, as the real server does for
/// unscheduled pods and PodGC does for pods of vanished nodes.
fn pod_grace(inner: &Inner, pod: &Value, requested: Option<i64>) -> i64 {
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node.is_empty()
        || inner
            .store
            .get(
                &StorageKey {
                    group: String::new(),
                    resource: "nodes".into(),
                },
                "",
                node,
            )
            .is_none()
    {
        return 0;
    }
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return 0;
    }
    requested
        .or_else(|| {
            pod.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30)
        .max(0)
}

/// Deletes (or marks for deletion) one object. The caller runs [`sweep`] afterwards.
pub fn delete_object(
    inner: &mut Inner,
    key: &StorageKey,
    namespace: &str,
    name: &str,
    options: &DeleteOptions,
) -> Option<DeleteOutcome> {
    let current = inner.store.get(key, namespace, name)?.clone();
    let mut finalizers = meta::finalizers(&current);
    let policy = options.propagation.as_deref().unwrap_or("Background");
    let wanted = match policy {
        "Foreground" => Some(FOREGROUND),
        "Orphan" => Some(ORPHAN),
        _ => None,
    };
    let is_pod = key.group.is_empty() && key.resource == "pods";
    let grace = if is_pod {
        pod_grace(inner, &current, options.grace_period)
    } else {
        0
    };
    if meta::is_deleting(&current) {
        let mut updated = current.clone();
        let mut changed = false;
        if let Some(f) = wanted
            && !finalizers.iter().any(|x| x == f)
            && !finalizers.is_empty()
        {
            finalizers.push(f.to_string());
            meta::set_finalizers(&mut updated, &finalizers);
            changed = true;
        }
        let current_grace = current
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if is_pod && grace < current_grace {
            meta::set_meta(&mut updated, "deletionGracePeriodSeconds", json!(grace));
            changed = true;
        }
        if options.dry_run || !changed {
            return Some(DeleteOutcome::Pending(current));
        }
        let stored = inner.store.insert(key, updated);
        return Some(DeleteOutcome::Pending(stored));
    }
    if let Some(f) = wanted
        && !finalizers.iter().any(|x| x == f)
    {
        finalizers.push(f.to_string());
    }
    let is_namespace = *key == namespaces_key();
    let is_crd = *key == crds_key();
    let immediate = finalizers.is_empty() && grace == 0 && !is_namespace;
    if immediate {
        if options.dry_run {
            return Some(DeleteOutcome::Deleted(current));
        }
        let last = inner.store.remove(key, namespace, name)?;
        return Some(DeleteOutcome::Deleted(last));
    }
    let mut marked = current.clone();
    let deletion_time = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(grace))
        .unwrap_or_else(|_| jiff::Timestamp::now());
    meta::set_meta(
        &mut marked,
        "deletionTimestamp",
        json!(deletion_time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
    );
    meta::set_meta(&mut marked, "deletionGracePeriodSeconds", json!(grace));
    meta::set_finalizers(&mut marked, &finalizers);
    if is_namespace {
        marked["status"] = json!({"phase": "Terminating"});
    }
    if is_crd {
        marked["status"] = crd::established_status(&marked, true);
    }
    if options.dry_run {
        return Some(DeleteOutcome::Pending(marked));
    }
    let stored = inner.store.insert(key, marked);
    Some(DeleteOutcome::Pending(stored))
}

fn remove_finalizer(inner: &mut Inner, key: &StorageKey, object: &Value, finalizer: &str) {
    let mut updated = object.clone();
    let remaining: Vec<String> = meta::finalizers(object)
        .into_iter()
        .filter(|f| f != finalizer)
        .collect();
    meta::set_finalizers(&mut updated, &remaining);
    inner.store.insert(key, updated);
}

/// Objects that name `owner_uid` in their owner references.
fn dependents_of(inner: &Inner, owner_uid: &str) -> Vec<(StorageKey, Value)> {
    stored(inner, inner.store.owners().dependents_of(owner_uid))
}

/// The current state of these objects (those still stored).
fn stored(inner: &Inner, ids: Vec<(StorageKey, String, String)>) -> Vec<(StorageKey, Value)> {
    ids.into_iter()
        .filter_map(|(key, namespace, name)| {
            let object = inner.store.get(&key, &namespace, &name)?.clone();
            Some((key, object))
        })
        .collect()
}

fn background() -> DeleteOptions {
    DeleteOptions {
        propagation: Some("Background".into()),
        ..DeleteOptions::default()
    }
}

/// Runs deletion follow-ups until nothing changes (bounded, so a bug cannot hang a request).
pub fn sweep(inner: &mut Inner) {
    for _ in 0..256 {
        if !sweep_once(inner) {
            return;
        }
    }
}

fn sweep_once(inner: &mut Inner) -> bool {
    let mut changed = false;
    let deleting = stored(inner, inner.store.owners().deleting());
    let unchecked = inner.store.take_unchecked_dependents();
    let owned = stored(inner, unchecked);
    for (key, object) in deleting {
        // Re-read: an earlier step of this pass may have changed it.
        let Some(object) = inner
            .store
            .get(&key, meta::namespace(&object), meta::name(&object))
            .cloned()
        else {
            continue;
        };
        let uid = meta::uid(&object).to_string();
        let finalizers = meta::finalizers(&object);
        if finalizers.iter().any(|f| f == ORPHAN) {
            for (dep_key, mut dependent) in dependents_of(inner, &uid) {
                if meta::remove_owner_ref(&mut dependent, &uid) {
                    inner.store.insert(&dep_key, dependent);
                }
            }
            remove_finalizer(inner, &key, &object, ORPHAN);
            changed = true;
            continue;
        }
        if finalizers.iter().any(|f| f == FOREGROUND) {
            let dependents = dependents_of(inner, &uid);
            for (dep_key, dependent) in &dependents {
                if !meta::is_deleting(dependent) {
                    let options = DeleteOptions {
                        propagation: Some("Foreground".into()),
                        ..DeleteOptions::default()
                    };
                    delete_object(
                        inner,
                        dep_key,
                        meta::namespace(dependent),
                        meta::name(dependent),
                        &options,
                    );
                    changed = true;
                }
            }
            let blocking = dependents_of(inner, &uid).iter().any(|(_, d)| {
                meta::owner_refs(d)
                    .iter()
                    .any(|r| r.uid == uid && r.block_owner_deletion)
            });
            if !blocking {
                remove_finalizer(inner, &key, &object, FOREGROUND);
                changed = true;
            }
            continue;
        }
        if key == namespaces_key() {
            let namespace = meta::name(&object).to_string();
            let mut remaining = 0;
            for (content_key, _) in inner.registry.namespaced_storages() {
                let contents: Vec<Value> = inner
                    .store
                    .list(&content_key, Some(&namespace))
                    .into_iter()
                    .cloned()
                    .collect();
                for content in contents {
                    remaining += 1;
                    if !meta::is_deleting(&content) {
                        delete_object(
                            inner,
                            &content_key,
                            &namespace,
                            meta::name(&content),
                            &background(),
                        );
                        changed = true;
                    }
                }
            }
            if remaining > 0 {
                continue;
            }
            let spec_finalizers = object
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty());
            if spec_finalizers {
                let mut updated = object.clone();
                updated["spec"]["finalizers"] = json!([]);
                inner.store.insert(&key, updated);
                changed = true;
                continue;
            }
        }
        if key == crds_key() {
            let instances_key = crd_instances_key(&object);
            let instances: Vec<Value> = inner
                .store
                .list(&instances_key, None)
                .into_iter()
                .cloned()
                .collect();
            for instance in &instances {
                if !meta::is_deleting(instance) {
                    delete_object(
                        inner,
                        &instances_key,
                        meta::namespace(instance),
                        meta::name(instance),
                        &background(),
                    );
                    changed = true;
                }
            }
            if !instances.is_empty() {
                continue;
            }
            if finalizers.iter().any(|f| f == crd::CLEANUP_FINALIZER) {
                remove_finalizer(inner, &key, &object, crd::CLEANUP_FINALIZER);
                changed = true;
                continue;
            }
        }
        let grace_left = object
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            > 0;
        if finalizers.is_empty() && !grace_left {
            inner
                .store
                .remove(&key, meta::namespace(&object), meta::name(&object));
            if key == crds_key() {
                let instances = crd_instances_key(&object);
                inner
                    .registry
                    .set_custom(&instances.group, &instances.resource, Vec::new());
            }
            changed = true;
        }
    }
    for (key, object) in owned {
        let Some(object) = inner
            .store
            .get(&key, meta::namespace(&object), meta::name(&object))
            .cloned()
        else {
            continue;
        };
        if meta::is_deleting(&object) {
            continue;
        }
        let refs = meta::owner_refs(&object);
        let dangling: Vec<String> = refs
            .iter()
            .filter(|r| {
                !inner.store.owners().exists(&r.uid)
                    && inner.registry.find_kind(&r.api_version, &r.kind).is_some()
            })
            .map(|r| r.uid.clone())
            .collect();
        if dangling.is_empty() {
            continue;
        }
        if dangling.len() == refs.len() {
            delete_object(
                inner,
                &key,
                meta::namespace(&object),
                meta::name(&object),
                &background(),
            );
        } else {
            let mut updated = object.clone();
            for uid in &dangling {
                meta::remove_owner_ref(&mut updated, uid);
            }
            inner.store.insert(&key, updated);
        }
        changed = true;
    }
    changed
}

//! Indexes the store keeps beside its objects so garbage collection never walks the whole store:
//! objects by uid, dependents by owner uid, the objects being deleted, and the objects whose owner
//! references must be checked again (they were written with owner references, or one of their
//! owners went away).
//!
//! The real garbage collector keeps the same kind of graph (`uidToNode` in kube-controller-manager's
//! `garbagecollector/graph_builder.go`) and is fed by watch events; here [`crate::server::store`]
//! feeds it on every insert and remove, inside the server's lock, so [`crate::server::gc::sweep`]
//! costs what the change it follows up on costs, not what the store holds.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::meta;
use super::resource::StorageKey;

/// Where one object lives: its resource, namespace (empty for cluster-scoped) and name.
pub type ObjectId = (StorageKey, String, String);

/// The garbage collector's view of the store.
#[derive(Debug, Default)]
pub struct OwnerIndex {
    /// Every stored object with a uid.
    by_uid: HashMap<String, ObjectId>,
    /// Objects naming an owner uid in their owner references (the owner need not exist).
    dependents: HashMap<String, BTreeSet<ObjectId>>,
    /// Objects with a `deletionTimestamp`.
    deleting: BTreeSet<ObjectId>,
    /// Objects whose owner references have not been checked since they or their owners changed.
    unchecked: BTreeSet<ObjectId>,
}

impl OwnerIndex {
    /// Records that `id` now holds `object` (replacing `previous`, if it held one).
    pub fn stored(&mut self, id: &ObjectId, previous: Option<&Value>, object: &Value) {
        if let Some(previous) = previous {
            self.forget(id, previous, meta::uid(previous) != meta::uid(object));
        }
        let uid = meta::uid(object);
        if !uid.is_empty() {
            self.by_uid.insert(uid.to_string(), id.clone());
        }
        let owners = meta::owner_refs(object);
        for owner in &owners {
            self.dependents
                .entry(owner.uid.clone())
                .or_default()
                .insert(id.clone());
        }
        if !owners.is_empty() {
            self.unchecked.insert(id.clone());
        }
        if meta::is_deleting(object) {
            self.deleting.insert(id.clone());
        }
    }

    /// Records that `object` was removed from `id`: its dependents must look for their owners
    /// again.
    pub fn removed(&mut self, id: &ObjectId, object: &Value) {
        self.forget(id, object, true);
    }

    /// Drops what `object` contributed at `id`; with `owner_gone`, its uid no longer exists.
    fn forget(&mut self, id: &ObjectId, object: &Value, owner_gone: bool) {
        for owner in meta::owner_refs(object) {
            if let Some(set) = self.dependents.get_mut(&owner.uid) {
                set.remove(id);
                if set.is_empty() {
                    self.dependents.remove(&owner.uid);
                }
            }
        }
        self.deleting.remove(id);
        self.unchecked.remove(id);
        let uid = meta::uid(object);
        if owner_gone && !uid.is_empty() {
            if self.by_uid.get(uid) == Some(id) {
                self.by_uid.remove(uid);
            }
            if let Some(dependents) = self.dependents.get(uid) {
                self.unchecked.extend(dependents.iter().cloned());
            }
        }
    }

    /// Where the object with this uid is stored.
    pub fn locate(&self, uid: &str) -> Option<&ObjectId> {
        self.by_uid.get(uid)
    }

    /// Whether an object with this uid exists.
    pub fn exists(&self, uid: &str) -> bool {
        self.by_uid.contains_key(uid)
    }

    /// The objects that name `owner_uid` as an owner.
    pub fn dependents_of(&self, owner_uid: &str) -> Vec<ObjectId> {
        self.dependents
            .get(owner_uid)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The objects being deleted.
    pub fn deleting(&self) -> Vec<ObjectId> {
        self.deleting.iter().cloned().collect()
    }

    /// Takes the objects whose owner references are due for a check.
    pub fn take_unchecked(&mut self) -> Vec<ObjectId> {
        std::mem::take(&mut self.unchecked).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(name: &str) -> ObjectId {
        (
            StorageKey {
                group: String::new(),
                resource: "configmaps".into(),
            },
            "ns".into(),
            name.into(),
        )
    }

    fn object(name: &str, uid: &str, owner: Option<&str>) -> Value {
        let mut object = json!({"metadata": {"name": name, "namespace": "ns", "uid": uid}});
        if let Some(owner) = owner {
            object["metadata"]["ownerReferences"] =
                json!([{"uid": owner, "kind": "ConfigMap", "apiVersion": "v1", "name": "o"}]);
        }
        object
    }

    #[test]
    fn removing_an_owner_marks_its_dependents_for_a_check() {
        let mut index = OwnerIndex::default();
        index.stored(&id("owner"), None, &object("owner", "u1", None));
        index.stored(&id("child"), None, &object("child", "u2", Some("u1")));
        assert_eq!(
            index.take_unchecked(),
            [id("child")],
            "a new dependent is checked"
        );
        assert!(index.take_unchecked().is_empty());
        assert_eq!(index.dependents_of("u1"), [id("child")]);

        index.removed(&id("owner"), &object("owner", "u1", None));
        assert!(!index.exists("u1"));
        assert_eq!(index.take_unchecked(), [id("child")]);
    }

    #[test]
    fn replacing_an_object_moves_its_entries() {
        let mut index = OwnerIndex::default();
        let first = object("child", "u2", Some("u1"));
        index.stored(&id("child"), None, &first);
        let mut deleting = object("child", "u2", Some("u9"));
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        index.stored(&id("child"), Some(&first), &deleting);
        assert!(index.dependents_of("u1").is_empty());
        assert_eq!(index.dependents_of("u9"), [id("child")]);
        assert_eq!(index.deleting(), [id("child")]);
        assert_eq!(index.locate("u2"), Some(&id("child")));

        // Deleted and created again under the same name: the old uid is gone.
        index.stored(&id("child"), Some(&deleting), &object("child", "u3", None));
        assert!(!index.exists("u2"));
        assert!(index.exists("u3"));
        assert!(index.deleting().is_empty());
    }
}

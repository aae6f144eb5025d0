//! The in-memory object store: objects by resource, a cluster-wide resourceVersion counter,
//! a bounded history of changes for watches that resume, and a broadcast of new changes.
//!
//! The store is only ever used behind the server's single lock, so a change is recorded in
//! the history and broadcast in the same critical section that made it: a watcher that
//! subscribes and reads the history under that lock sees every change exactly once.
//!
//! Every insert and remove also updates the [`OwnerIndex`], so garbage collection and uid
//! look-ups cost what one change costs, whatever the store holds (100,000 objects and more).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::meta;
use super::owners::OwnerIndex;
use super::resource::StorageKey;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// Created.
    Added,
    /// Updated.
    Modified,
    /// Removed from storage.
    Deleted,
}

impl ChangeType {
    /// The watch event type.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One recorded change, as watches see it.
#[derive(Debug)]
pub struct Change {
    /// resourceVersion the change produced.
    pub rv: u64,
    /// Which resource.
    pub storage: StorageKey,
    /// Added, modified or deleted.
    pub change_type: ChangeType,
    /// The object after the change (for deletes: the last state, with the deletion's RV).
    pub object: Arc<Value>,
    /// The object before the change, so selector watches can see objects leave their set.
    pub previous: Option<Arc<Value>>,
}

/// Objects of one resource, by (namespace, name); namespace is empty for cluster-scoped ones.
pub type Objects = BTreeMap<(String, String), Value>;

/// The store itself.
#[derive(Debug)]
pub struct Store {
    rv: u64,
    objects: HashMap<StorageKey, Objects>,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    compacted_rv: u64,
    changes: broadcast::Sender<Arc<Change>>,
    owners: OwnerIndex,
}

impl Store {
    /// An empty store keeping `history_limit` changes and buffering `watch_buffer` per watcher.
    pub fn new(history_limit: usize, watch_buffer: usize) -> Store {
        let (changes, _) = broadcast::channel(watch_buffer.max(1));
        Store {
            rv: 1,
            objects: HashMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted_rv: 0,
            changes,
            owners: OwnerIndex::default(),
        }
    }

    /// The latest resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    /// The oldest resourceVersion a watch may start from.
    pub fn compacted_rv(&self) -> u64 {
        self.compacted_rv
    }

    /// One object.
    pub fn get(&self, key: &StorageKey, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(key)?
            .get(&(namespace.to_string(), name.to_string()))
    }

    /// All objects of a resource, optionally only one namespace's, ordered by namespace/name.
    pub fn list<'a>(&'a self, key: &StorageKey, namespace: Option<&'a str>) -> Vec<&'a Value> {
        match self.objects.get(key) {
            None => Vec::new(),
            Some(objects) => match namespace {
                None => objects.values().collect(),
                // Keys sort by namespace first: one namespace is one range, not a filter over all.
                Some(wanted) => objects
                    .range((wanted.to_string(), String::new())..)
                    .take_while(|((ns, _), _)| ns == wanted)
                    .map(|(_, object)| object)
                    .collect(),
            },
        }
    }

    /// Objects of a resource (optionally one namespace's) that sort after `after` (namespace, name),
    /// in order: a page of a paginated list starts where the last one ended, without walking the
    /// objects before it.
    pub fn list_after<'a>(
        &'a self,
        key: &StorageKey,
        namespace: Option<&'a str>,
        after: Option<(&str, &str)>,
    ) -> impl Iterator<Item = &'a Value> + 'a {
        use std::ops::Bound;
        let start = match (after, namespace) {
            (Some((ns, name)), _) => Bound::Excluded((ns.to_string(), name.to_string())),
            (None, Some(ns)) => Bound::Included((ns.to_string(), String::new())),
            (None, None) => Bound::Unbounded,
        };
        self.objects
            .get(key)
            .into_iter()
            .flat_map(move |objects| objects.range((start.clone(), Bound::Unbounded)))
            .skip_while(move |((ns, _), _)| namespace.is_some_and(|wanted| ns.as_str() < wanted))
            .take_while(move |((ns, _), _)| namespace.is_none_or(|wanted| ns == wanted))
            .map(|(_, object)| object)
    }

    /// Stores a new object, giving it the next resourceVersion; returns the stored copy.
    pub fn insert(&mut self, key: &StorageKey, mut object: Value) -> Value {
        self.rv += 1;
        meta::set_meta(&mut object, "resourceVersion", json!(self.rv.to_string()));
        let id = (
            meta::namespace(&object).to_string(),
            meta::name(&object).to_string(),
        );
        let previous = self
            .objects
            .entry(key.clone())
            .or_default()
            .insert(id.clone(), object.clone());
        self.owners
            .stored(&(key.clone(), id.0, id.1), previous.as_ref(), &object);
        let change_type = if previous.is_some() {
            ChangeType::Modified
        } else {
            ChangeType::Added
        };
        self.record(key, change_type, object.clone(), previous);
        object
    }

    /// Removes an object; the returned last state carries the deletion's resourceVersion.
    pub fn remove(&mut self, key: &StorageKey, namespace: &str, name: &str) -> Option<Value> {
        let previous = self
            .objects
            .get_mut(key)?
            .remove(&(namespace.to_string(), name.to_string()))?;
        self.owners.removed(
            &(key.clone(), namespace.to_string(), name.to_string()),
            &previous,
        );
        self.rv += 1;
        let mut last = previous.clone();
        meta::set_meta(&mut last, "resourceVersion", json!(self.rv.to_string()));
        self.record(key, ChangeType::Deleted, last.clone(), Some(previous));
        Some(last)
    }

    /// Finds any object (in any resource) with this uid.
    pub fn find_uid(&self, uid: &str) -> Option<(StorageKey, &Value)> {
        let (key, namespace, name) = self.owners.locate(uid)?;
        self.get(key, namespace, name)
            .map(|object| (key.clone(), object))
    }

    /// The garbage collector's indexes.
    pub fn owners(&self) -> &OwnerIndex {
        &self.owners
    }

    /// Takes the objects whose owner references are due for a check (see [`OwnerIndex`]).
    pub fn take_unchecked_dependents(&mut self) -> Vec<(StorageKey, String, String)> {
        self.owners.take_unchecked()
    }

    /// Changes after `rv` for one resource, or `Err(compacted)` when some were dropped already.
    pub fn changes_since(&self, key: &StorageKey, rv: u64) -> Result<Vec<Arc<Change>>, u64> {
        if rv < self.compacted_rv {
            return Err(self.compacted_rv);
        }
        Ok(self
            .history
            .iter()
            .filter(|change| change.rv > rv && change.storage == *key)
            .cloned()
            .collect())
    }

    /// A receiver of every future change.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }

    fn record(
        &mut self,
        key: &StorageKey,
        change_type: ChangeType,
        object: Value,
        previous: Option<Value>,
    ) {
        let change = Arc::new(Change {
            rv: self.rv,
            storage: key.clone(),
            change_type,
            object: Arc::new(object),
            previous: previous.map(Arc::new),
        });
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted_rv = dropped.rv;
            }
        }
        // No receivers is not an error: nobody watches.
        let _ = self.changes.send(change);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> StorageKey {
        StorageKey {
            group: String::new(),
            resource: "configmaps".into(),
        }
    }

    #[test]
    fn resource_versions_increase_and_history_compacts() {
        let mut store = Store::new(2, 8);
        let a = store.insert(
            &key(),
            json!({"metadata": {"name": "a", "namespace": "ns"}}),
        );
        let b = store.insert(
            &key(),
            json!({"metadata": {"name": "b", "namespace": "ns"}}),
        );
        assert!(
            meta::resource_version(&b).parse::<u64>().unwrap()
                > meta::resource_version(&a).parse().unwrap()
        );
        store.remove(&key(), "ns", "a");
        let first: u64 = meta::resource_version(&a).parse().unwrap();
        assert!(
            store.changes_since(&key(), first - 1).is_err(),
            "oldest change was compacted"
        );
        let since_a = store.changes_since(&key(), first).unwrap();
        assert_eq!(since_a.len(), 2);
        assert_eq!(since_a[1].change_type, ChangeType::Deleted);
        assert_eq!(store.list(&key(), Some("ns")).len(), 1);
    }

    #[test]
    fn a_write_leaves_one_object_for_the_garbage_collector_however_full_the_store() {
        let mut store = Store::new(16, 8);
        let owner = store.insert(
            &key(),
            json!({"metadata": {"name": "owner", "namespace": "ns", "uid": "owner-uid"}}),
        );
        let dependent = |name: String| {
            json!({"metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                    "uid": meta::uid(&owner)}]}})
        };
        for i in 0..10_000 {
            store.insert(&key(), dependent(format!("d{i}")));
        }
        assert_eq!(store.take_unchecked_dependents().len(), 10_000);
        store.insert(&key(), dependent("one-more".to_string()));
        assert_eq!(
            store.take_unchecked_dependents(),
            [(key(), "ns".to_string(), "one-more".to_string())],
            "only the written object is due for a check, not the 10,000 stored before it"
        );
        assert!(store.owners().deleting().is_empty());
        assert_eq!(
            store
                .find_uid("uid-d9999")
                .map(|(_, o)| meta::name(o).to_string()),
            Some("d9999".to_string())
        );
        assert_eq!(store.list(&key(), Some("ns")).len(), 10_002);
        assert!(
            store.list(&key(), Some("n")).is_empty(),
            "a prefix is not a namespace"
        );
        store.remove(&key(), "ns", "owner");
        assert_eq!(store.take_unchecked_dependents().len(), 10_001);
    }

    #[test]
    fn pages_start_after_the_last_key_in_namespace_then_name_order() {
        let mut store = Store::new(16, 8);
        for (ns, name) in [("a", "2"), ("a-b", "1"), ("a", "1"), ("b", "1")] {
            store.insert(&key(), json!({"metadata": {"name": name, "namespace": ns}}));
        }
        let names = |items: Vec<&Value>| -> Vec<String> {
            items
                .into_iter()
                .map(|o| format!("{}/{}", meta::namespace(o), meta::name(o)))
                .collect()
        };
        assert_eq!(
            names(store.list_after(&key(), None, Some(("a", "2"))).collect()),
            ["a-b/1", "b/1"],
            "every namespace's objects once, in the store's order"
        );
        assert_eq!(
            names(
                store
                    .list_after(&key(), Some("a"), Some(("a", "1")))
                    .collect()
            ),
            ["a/2"]
        );
        assert_eq!(
            names(store.list_after(&key(), Some("a"), None).collect()),
            ["a/1", "a/2"]
        );
    }
}

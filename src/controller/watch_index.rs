//! Indexes kept up to date from watch events, one event at a time, so no reconcile has to copy,
//! filter or sort a whole cache. [`ScopedIndex`] does the part every index shares: it applies
//! `Apply`/`Delete` at once and, when a watch relists (`Init` … `InitApply` … `InitDone`), drops the
//! entries of that watch's scope that the new list no longer holds, as kube-runtime's reflector
//! store does for its objects.
//!
//! Used by [`super::cache::ClusterView`] for the admission queue ([`super::admission_queue`]) and the
//! agent pods ([`super::pod_index`]).

use std::collections::HashSet;

use kube::runtime::watcher;

/// The key of a namespaced object: (namespace, name).
pub type ObjectKey = (String, String);

/// An index of watched objects of type [`Index::Object`] by [`ObjectKey`].
pub trait Index {
    type Object;
    /// The object's key; `None` for an object without namespace or name (never stored).
    fn key_of(object: &Self::Object) -> Option<ObjectKey>;
    /// Adds or replaces the entry of `key`.
    fn upsert(&mut self, key: ObjectKey, object: &Self::Object);
    /// Removes the entry of `key`, if any.
    fn remove(&mut self, key: &ObjectKey);
    /// Every key held (read only when a watch relists).
    fn keys(&self) -> Vec<ObjectKey>;
}

/// An [`Index`] fed by the watches of one or more scopes (a namespace each, or the whole cluster).
#[derive(Debug, Default)]
pub struct ScopedIndex<I> {
    index: I,
    /// Keys seen in the current relist of each scope (`None`: all namespaces).
    relisting: Vec<(Option<String>, HashSet<ObjectKey>)>,
}

impl<I: Index> ScopedIndex<I> {
    /// A scoped index starting from `index` (for an index that needs settings, not `Default`).
    pub fn new(index: I) -> Self {
        Self {
            index,
            relisting: Vec::new(),
        }
    }

    /// The index as it stands.
    pub fn get(&self) -> &I {
        &self.index
    }

    /// Applies one event of the watch over `scope` (`None`: all namespaces).
    pub fn apply(&mut self, scope: Option<&str>, event: &watcher::Event<I::Object>) {
        match event {
            watcher::Event::Apply(object) => {
                if let Some(key) = I::key_of(object) {
                    self.index.upsert(key, object);
                }
            }
            watcher::Event::Delete(object) => {
                if let Some(key) = I::key_of(object) {
                    self.index.remove(&key);
                }
            }
            watcher::Event::Init => {
                self.relisting.retain(|(s, _)| s.as_deref() != scope);
                self.relisting
                    .push((scope.map(str::to_string), HashSet::new()));
            }
            watcher::Event::InitApply(object) => {
                if let Some(key) = I::key_of(object) {
                    self.index.upsert(key.clone(), object);
                    if let Some((_, seen)) = self.relist_of(scope) {
                        seen.insert(key);
                    }
                }
            }
            watcher::Event::InitDone => {
                let Some(at) = self
                    .relisting
                    .iter()
                    .position(|(s, _)| s.as_deref() == scope)
                else {
                    return;
                };
                let (_, seen) = self.relisting.swap_remove(at);
                for key in self.index.keys() {
                    let in_scope = scope.is_none_or(|namespace| namespace == key.0);
                    if in_scope && !seen.contains(&key) {
                        self.index.remove(&key);
                    }
                }
            }
        }
    }

    fn relist_of(
        &mut self,
        scope: Option<&str>,
    ) -> Option<&mut (Option<String>, HashSet<ObjectKey>)> {
        self.relisting
            .iter_mut()
            .find(|(s, _)| s.as_deref() == scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Names only: enough to see what the relist logic keeps.
    #[derive(Default)]
    struct Names(BTreeMap<ObjectKey, u32>);

    impl Index for Names {
        type Object = (&'static str, &'static str, u32);
        fn key_of(object: &Self::Object) -> Option<ObjectKey> {
            Some((object.0.to_string(), object.1.to_string()))
        }
        fn upsert(&mut self, key: ObjectKey, object: &Self::Object) {
            self.0.insert(key, object.2);
        }
        fn remove(&mut self, key: &ObjectKey) {
            self.0.remove(key);
        }
        fn keys(&self) -> Vec<ObjectKey> {
            self.0.keys().cloned().collect()
        }
    }

    fn held(index: &ScopedIndex<Names>) -> Vec<String> {
        index
            .get()
            .0
            .iter()
            .map(|((ns, name), v)| format!("{ns}/{name}={v}"))
            .collect()
    }

    #[test]
    fn a_relist_drops_only_its_own_scopes_vanished_entries() {
        let mut index = ScopedIndex::<Names>::default();
        index.apply(Some("a"), &watcher::Event::Apply(("a", "x", 1)));
        index.apply(Some("a"), &watcher::Event::Apply(("a", "y", 1)));
        index.apply(Some("b"), &watcher::Event::Apply(("b", "z", 1)));
        index.apply(Some("a"), &watcher::Event::Delete(("a", "x", 1)));
        assert_eq!(held(&index), ["a/y=1", "b/z=1"]);

        // Namespace a relists: y is gone, w is new; b's entries stay.
        index.apply(Some("a"), &watcher::Event::Init);
        index.apply(Some("a"), &watcher::Event::InitApply(("a", "w", 2)));
        index.apply(Some("a"), &watcher::Event::InitDone);
        assert_eq!(held(&index), ["a/w=2", "b/z=1"]);

        // A cluster-wide relist covers every namespace.
        index.apply(None, &watcher::Event::Init);
        index.apply(None, &watcher::Event::InitApply(("b", "z", 3)));
        index.apply(None, &watcher::Event::InitDone);
        assert_eq!(held(&index), ["b/z=3"]);
    }
}

//! The agent pods, maintained from the pod watch: each pod (as [`super::lean::lean_pod`] left it)
//! by key, the pods of each Incident by the Incident's uid, and how many pods hold an agent slot.
//! Every watch event costs O(log n); "which pods does this Incident have" and "how many agents
//! run" are look-ups, not walks over every cached pod.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::{Resource, ResourceExt};

use super::pod_state::view_agent_pod;
use super::watch_index::{Index, ObjectKey};
use crate::incident::Incident;

/// One cached agent pod.
#[derive(Debug)]
struct CachedPod {
    pod: Arc<Pod>,
    /// uid of the Incident controlling it.
    owner: Option<String>,
    /// Whether it holds a slot (not finished).
    active: bool,
}

/// Agent pods by key and by controlling Incident.
#[derive(Debug, Default)]
pub struct PodIndex {
    pods: HashMap<ObjectKey, CachedPod>,
    by_owner: HashMap<String, BTreeSet<ObjectKey>>,
    active: usize,
}

/// The uid of the Incident that controls `pod`, if one does.
pub fn controlling_incident(pod: &Pod) -> Option<String> {
    pod.owner_references()
        .iter()
        .find(|owner| owner.controller == Some(true) && owner.kind == Incident::kind(&()))
        .map(|owner| owner.uid.clone())
}

impl PodIndex {
    /// The pods controlled by the Incident with this uid.
    pub fn pods_of(&self, uid: &str) -> Vec<Arc<Pod>> {
        self.by_owner
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|key| self.pods.get(key))
            .map(|cached| cached.pod.clone())
            .collect()
    }

    /// Pods that hold an agent slot (not finished), whoever owns them.
    pub fn active(&self) -> usize {
        self.active
    }

    /// Whether the pod `namespace/name` is cached.
    pub fn contains(&self, namespace: &str, name: &str) -> bool {
        self.pods
            .contains_key(&(namespace.to_string(), name.to_string()))
    }
}

impl Index for PodIndex {
    type Object = Pod;

    fn key_of(pod: &Pod) -> Option<ObjectKey> {
        Some((pod.namespace()?, pod.metadata.name.clone()?))
    }

    fn upsert(&mut self, key: ObjectKey, pod: &Pod) {
        self.remove(&key);
        let cached = CachedPod {
            owner: controlling_incident(pod),
            active: view_agent_pod(pod).state.is_active(),
            pod: Arc::new(pod.clone()),
        };
        if let Some(owner) = &cached.owner {
            self.by_owner
                .entry(owner.clone())
                .or_default()
                .insert(key.clone());
        }
        if cached.active {
            self.active += 1;
        }
        self.pods.insert(key, cached);
    }

    fn remove(&mut self, key: &ObjectKey) {
        let Some(old) = self.pods.remove(key) else {
            return;
        };
        if let Some(owner) = &old.owner
            && let Some(keys) = self.by_owner.get_mut(owner)
        {
            keys.remove(key);
            if keys.is_empty() {
                self.by_owner.remove(owner);
            }
        }
        if old.active {
            self.active -= 1;
        }
    }

    fn keys(&self) -> Vec<ObjectKey> {
        self.pods.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::pod::build_agent_pod;
    use crate::controller::pod::tests::{config, incident};
    use crate::controller::watch_index::ScopedIndex;
    use kube::runtime::watcher::Event;

    fn pod(incident_name: &str, attempt: u32, phase: &str) -> Pod {
        let mut pod = build_agent_pod(&incident(incident_name), attempt, &config()).unwrap();
        pod.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some(phase.to_string()),
            ..Default::default()
        });
        pod
    }

    #[test]
    fn pods_are_grouped_by_owner_and_slots_counted_per_event() {
        let mut index = ScopedIndex::<PodIndex>::default();
        index.apply(None, &Event::Apply(pod("a", 1, "Running")));
        index.apply(None, &Event::Apply(pod("b", 1, "Pending")));
        index.apply(None, &Event::Apply(pod("b", 2, "Running")));
        assert_eq!(index.get().active(), 3);
        assert_eq!(index.get().pods_of("uid-b").len(), 2);
        assert!(index.get().pods_of("uid-c").is_empty());

        // Finishing frees the slot; deleting forgets the pod.
        index.apply(None, &Event::Apply(pod("a", 1, "Succeeded")));
        assert_eq!(index.get().active(), 2);
        assert_eq!(index.get().pods_of("uid-a").len(), 1);
        index.apply(None, &Event::Delete(pod("b", 1, "Pending")));
        assert_eq!(index.get().active(), 1);
        assert_eq!(index.get().pods_of("uid-b").len(), 1);
        let name = pod("b", 2, "Running").name_any();
        assert!(index.get().contains("shop", &name));
    }
}

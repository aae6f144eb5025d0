//! What the controller knows about the cluster: the reflector caches of Incidents and agent pods
//! (one pair per watched namespace, or one for all), plus the pods this process created that the
//! pod cache has not shown yet. The latter closes the gap between "created" and "seen" so two
//! quick reconciles cannot both take the last agent slot.
//!
//! [`Snapshot`] is a plain copy of that state with the pure queries the reconciler needs: pods
//! of one Incident, active agents, the queue in order, counts by phase.

use crate::budget::{PriceTable, Spend, spend_of};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};

use super::lifecycle::{Policy, wants_agent};
use super::pod_state::view_agent_pod;
use super::queue::{QueueEntry, sort_queue};
use crate::incident::{Incident, Phase};

/// How long a created pod counts even if the cache never shows it (it was deleted at once, or the
/// watch restarted); long enough for any watch delay, short enough not to hold a slot for long.
const RECENT_POD_MEMORY: Duration = Duration::from_secs(120);

/// The caches of one watch scope (a namespace, or the whole cluster).
#[derive(Clone)]
pub struct WatchedScope {
    pub incidents: Store<DeserializeGuard<Incident>>,
    pub pods: Store<Pod>,
}

/// The caches of every scope and the recently created pods.
pub struct ClusterView {
    scopes: Vec<WatchedScope>,
    recent: Mutex<BTreeMap<(String, String), (Pod, Instant)>>,
}

impl ClusterView {
    /// A view over `scopes`.
    pub fn new(scopes: Vec<WatchedScope>) -> Self {
        Self {
            scopes,
            recent: Mutex::new(BTreeMap::new()),
        }
    }

    /// Counts `pod` (as the API server returned it from the create) until the cache has it.
    pub fn remember_created(&self, pod: Pod) {
        let key = (pod.namespace().unwrap_or_default(), pod.name_any());
        self.recent_pods().insert(key, (pod, Instant::now()));
    }

    /// A consistent copy of what is known now.
    pub fn snapshot(&self) -> Snapshot {
        let mut incidents = Vec::new();
        let mut pods: Vec<Arc<Pod>> = Vec::new();
        for scope in &self.scopes {
            // Shared, not copied: a snapshot is taken on every reconcile, and deep-copying every
            // cached Incident made reconciles O(n) clones each (minutes for a 10,000 backlog).
            incidents.extend(scope.incidents.state());
            pods.extend(scope.pods.state());
        }
        let mut recent = self.recent_pods();
        let now = Instant::now();
        recent.retain(|(namespace, name), (_, created)| {
            let seen = pods.iter().any(|pod| {
                pod.metadata.name.as_deref() == Some(name.as_str())
                    && pod.metadata.namespace.as_deref() == Some(namespace.as_str())
            });
            !seen && now.duration_since(*created) < RECENT_POD_MEMORY
        });
        pods.extend(recent.values().map(|(pod, _)| Arc::new(pod.clone())));
        Snapshot::from_cache(incidents, pods)
    }

    fn recent_pods(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), (Pod, Instant)>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts and
        // retains), so a poisoned lock is still usable.
        self.recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A copy of the caches at one moment.
pub struct Snapshot {
    /// As the store holds them; the ones that failed to deserialize are skipped when read.
    incidents: Vec<Arc<DeserializeGuard<Incident>>>,
    pods: Vec<Arc<Pod>>,
    /// Agent pods by the uid of the Incident that controls them.
    pods_by_owner: HashMap<String, Vec<Arc<Pod>>>,
}

impl Snapshot {
    /// A snapshot of these (valid) Incidents and agent pods.
    pub fn new(incidents: Vec<Incident>, pods: Vec<Arc<Pod>>) -> Self {
        let incidents = incidents
            .into_iter()
            .map(|incident| Arc::new(DeserializeGuard(Ok(incident))))
            .collect();
        Self::from_cache(incidents, pods)
    }

    /// A snapshot of the cache's entries, shared with the cache.
    fn from_cache(incidents: Vec<Arc<DeserializeGuard<Incident>>>, pods: Vec<Arc<Pod>>) -> Self {
        let mut pods_by_owner: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        for pod in &pods {
            if let Some(owner) = pod
                .owner_references()
                .iter()
                .find(|owner| owner.controller == Some(true) && owner.kind == Incident::kind(&()))
            {
                pods_by_owner
                    .entry(owner.uid.clone())
                    .or_default()
                    .push(pod.clone());
            }
        }
        Self {
            incidents,
            pods,
            pods_by_owner,
        }
    }

    /// The Incidents that deserialized.
    fn valid_incidents(&self) -> impl Iterator<Item = &Incident> {
        self.incidents
            .iter()
            .filter_map(|guard| guard.0.as_ref().ok())
    }

    /// Every readable Incident (cheap: the store's objects are shared, this clones them).
    pub fn incidents(&self) -> Vec<Incident> {
        self.valid_incidents().cloned().collect()
    }

    /// What every readable Incident spent (for the budget; `src/budget/spend.rs`).
    pub fn spends(&self, default_model: &str, prices: &PriceTable) -> Vec<Spend> {
        self.valid_incidents()
            .filter_map(|incident| spend_of(incident, default_model, prices))
            .collect()
    }

    /// Agent pods controlled by the Incident with this uid.
    pub fn pods_of(&self, uid: &str) -> Vec<Pod> {
        self.pods_by_owner
            .get(uid)
            .map(|pods| pods.iter().map(|pod| (**pod).clone()).collect())
            .unwrap_or_default()
    }

    /// Agent pods that hold a slot (not finished), whoever owns them.
    pub fn active_agents(&self) -> usize {
        self.pods
            .iter()
            .filter(|pod| view_agent_pod(pod).state.is_active())
            .count()
    }

    /// Incidents that would start an agent now if a slot were free, in queue order.
    pub fn queue(&self, now: Timestamp, policy: &Policy) -> Vec<QueueEntry> {
        let mut queue: Vec<QueueEntry> = self
            .valid_incidents()
            .filter(|incident| {
                let pods = incident
                    .uid()
                    .map(|uid| self.pods_of(&uid))
                    .unwrap_or_default();
                wants_agent(incident, &pods, now, policy).is_some()
            })
            .map(QueueEntry::of)
            .collect();
        sort_queue(&mut queue);
        queue
    }

    /// Incidents by phase (`Pending` for those without a status yet).
    pub fn phase_counts(&self) -> Vec<(Phase, usize)> {
        let mut counts: Vec<(Phase, usize)> = Vec::new();
        for incident in self.valid_incidents() {
            let phase = incident
                .status
                .as_ref()
                .and_then(|s| s.phase)
                .unwrap_or(Phase::Pending);
            match counts.iter_mut().find(|(p, _)| *p == phase) {
                Some((_, n)) => *n += 1,
                None => counts.push((phase, 1)),
            }
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::pod::build_agent_pod;
    use crate::controller::pod::tests::{config, incident};
    use crate::controller::pod_state::tests::terminated;
    use crate::incident::{IncidentStatus, Severity};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn created(name: &str, minute: u32, severity: Severity) -> Incident {
        let mut incident = incident(name);
        incident.spec.severity = severity;
        incident.metadata.creation_timestamp =
            Some(Time(at(&format!("2026-01-01T00:{minute:02}:00Z"))));
        incident
    }

    fn agent_pod(incident: &Incident, phase: &str) -> Arc<Pod> {
        let mut pod = build_agent_pod(incident, 1, &config()).unwrap();
        pod.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some(phase.to_string()),
            ..Default::default()
        });
        Arc::new(pod)
    }

    #[test]
    fn pods_are_grouped_by_controlling_incident() {
        let a = created("a", 0, Severity::Warning);
        let b = created("b", 1, Severity::Warning);
        let pods = vec![agent_pod(&a, "Running"), agent_pod(&b, "Succeeded")];
        let snapshot = Snapshot::new(vec![a.clone(), b.clone()], pods);
        assert_eq!(snapshot.pods_of("uid-a").len(), 1);
        assert_eq!(snapshot.pods_of("uid-b").len(), 1);
        assert!(snapshot.pods_of("uid-c").is_empty());
        assert_eq!(snapshot.active_agents(), 1, "a finished pod holds no slot");
    }

    #[test]
    fn queue_holds_only_incidents_that_want_an_agent_in_order() {
        let running = created("running", 0, Severity::Critical);
        let mut done = created("done", 0, Severity::Critical);
        done.status = Some(IncidentStatus {
            phase: Some(Phase::Completed),
            ..IncidentStatus::default()
        });
        let late_critical = created("late-critical", 9, Severity::Critical);
        let early_warning = created("early-warning", 1, Severity::Warning);
        let mut backing_off = created("backing-off", 0, Severity::Critical);
        backing_off.status = Some(IncidentStatus {
            phase: Some(Phase::Pending),
            attempts: Some(1),
            ..IncidentStatus::default()
        });
        let failed = terminated(
            (*agent_pod(&backing_off, "Failed")).clone(),
            1,
            None,
            None,
            "2026-01-01T00:59:59Z",
        );
        let pods = vec![agent_pod(&running, "Running"), Arc::new(failed)];
        let snapshot = Snapshot::new(
            vec![running, done, late_critical, early_warning, backing_off],
            pods,
        );
        let queue = snapshot.queue(at("2026-01-01T01:00:00Z"), &Policy::default());
        let names: Vec<_> = queue.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["late-critical", "early-warning"]);
        let counts = snapshot.phase_counts();
        assert!(counts.contains(&(Phase::Completed, 1)));
        assert!(counts.contains(&(Phase::Pending, 4)));
    }
}

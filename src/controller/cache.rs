//! What the controller knows about the cluster: the reflector caches of Incidents (one per watched
//! namespace, or one for all), the admission queue and the agent pods, both maintained from the
//! same watch events ([`super::admission_queue`], [`super::pod_index`]), plus the pods this process
//! created that the pod cache has not shown yet. The latter closes the gap between "created" and
//! "seen" so two quick reconciles cannot both take the last agent slot.
//!
//! Every query here is a look-up or a walk from the head of the queue: no reconcile copies, filters
//! or sorts the whole cache (that made a backlog of n Incidents cost n² work).

use crate::budget::{BudgetCheck, PriceTable};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use super::admission_queue::AdmissionQueue;
use super::lifecycle::{Policy, wants_agent};
use super::pod_index::{PodIndex, controlling_incident};
use super::pod_state::view_agent_pod;
use super::queue::{self, QueueEntry, Ruling};
use super::spend_index::{BudgetSnapshot, SNAPSHOT_REUSE, SpendIndex};
use super::watch_index::{Index, ObjectKey, ScopedIndex};
use crate::incident::{Incident, Phase};

/// How long a created pod counts even if the cache never shows it (it was deleted at once, or the
/// watch restarted); long enough for any watch delay, short enough not to hold a slot for long.
const RECENT_POD_MEMORY: Duration = Duration::from_secs(120);

/// The caches and indexes of every watched scope, and the recently created pods.
pub struct ClusterView {
    /// The Controllers' Incident caches, one per scope.
    incidents: Vec<Store<DeserializeGuard<Incident>>>,
    queue: Mutex<ScopedIndex<AdmissionQueue>>,
    pods: Mutex<ScopedIndex<PodIndex>>,
    recent: Mutex<BTreeMap<(String, String), (Pod, Instant)>>,
    /// Every Incident's spend, for the budget (`src/budget/`).
    spends: Mutex<ScopedIndex<SpendIndex>>,
    /// The last sum of the budget window, shared by reconciles (see [`SpendIndex`]).
    budget: Mutex<Option<Arc<BudgetSnapshot>>>,
    /// Incidents changed since the notifier last looked; `None` until it asks to be told.
    changed: Mutex<Option<HashSet<ObjectKey>>>,
    /// Incidents whose agent pod the API server refused for a missing ServiceAccount: when, and
    /// the message for their status.
    refused_accounts: Mutex<BTreeMap<ObjectKey, (Instant, String)>>,
}

/// The gauges' figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheSummary {
    /// Incidents by phase (`Pending` for those without a status yet).
    pub phases: Vec<(Phase, usize)>,
    /// Incidents waiting for a slot (phase Queued).
    pub waiting: usize,
    /// Agent pods holding a slot.
    pub active_agents: usize,
}

/// A poisoned lock still holds a consistent index (every update is a few map operations that
/// cannot panic half-way in a way that matters for counting), so it is used as it is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ClusterView {
    /// A view over these Incident caches; the indexes start empty and are fed by
    /// [`ClusterView::apply_incident_event`] and [`ClusterView::apply_pod_event`].
    pub fn new(incidents: Vec<Store<DeserializeGuard<Incident>>>) -> Self {
        Self {
            incidents,
            queue: Mutex::default(),
            pods: Mutex::default(),
            recent: Mutex::new(BTreeMap::new()),
            spends: Mutex::default(),
            budget: Mutex::new(None),
            changed: Mutex::new(None),
            refused_accounts: Mutex::new(BTreeMap::new()),
        }
    }

    /// Remembers that the agent pod of Incident `namespace/name` was refused for its
    /// ServiceAccount (`why` says so), so it is not tried again at once.
    pub fn remember_refused_account(&self, namespace: &str, name: &str, why: String) {
        let key = (namespace.to_string(), name.to_string());
        lock(&self.refused_accounts).insert(key, (Instant::now(), why));
    }

    /// Why the agent pod of `namespace/name` was refused, if that was less than `within` ago
    /// (and forgets refusals older than that).
    pub fn refused_account(&self, namespace: &str, name: &str, within: Duration) -> Option<String> {
        let mut refused = lock(&self.refused_accounts);
        refused.retain(|_, (at, _)| at.elapsed() < within);
        refused
            .get(&(namespace.to_string(), name.to_string()))
            .map(|(_, why)| why.clone())
    }

    /// Prices the Incidents' spend with `prices` (`default_model` for those naming no model);
    /// called before the watches feed the view.
    pub fn with_pricing(self, default_model: String, prices: PriceTable) -> Self {
        *lock(&self.spends) = ScopedIndex::new(SpendIndex::new(default_model, prices));
        self
    }

    /// Feeds one event of the Incident watch over `scope` (`None`: all namespaces).
    pub fn apply_incident_event(
        &self,
        scope: Option<&str>,
        event: &watcher::Event<DeserializeGuard<Incident>>,
    ) {
        lock(&self.queue).apply(scope, event);
        lock(&self.spends).apply(scope, event);
        if let watcher::Event::Apply(object) | watcher::Event::InitApply(object) = event
            && let Some(changed) = lock(&self.changed).as_mut()
            && let Some(key) = SpendIndex::key_of(object)
        {
            changed.insert(key);
        }
    }

    /// From now on, remembers which Incidents changed, for [`ClusterView::take_changed`].
    pub fn track_changes(&self) {
        lock(&self.changed).get_or_insert_with(HashSet::new);
    }

    /// The Incidents changed since the last call (after [`ClusterView::track_changes`]).
    pub fn take_changed(&self) -> Vec<ObjectKey> {
        lock(&self.changed)
            .as_mut()
            .map(|changed| changed.drain().collect())
            .unwrap_or_default()
    }

    /// The budget window summed at `now`: the shared sum while no spend changed and it is less
    /// than [`SNAPSHOT_REUSE`] old, else a new one.
    pub fn budget_snapshot(&self, now: Timestamp) -> Arc<BudgetSnapshot> {
        let spends = lock(&self.spends);
        let mut cached = lock(&self.budget);
        if let Some(snapshot) = cached.as_ref()
            && snapshot.generation == spends.get().generation()
            && now >= snapshot.now
            && now.duration_since(snapshot.now)
                < SignedDuration::try_from(SNAPSHOT_REUSE).unwrap_or(SignedDuration::ZERO)
        {
            return snapshot.clone();
        }
        let snapshot = Arc::new(spends.get().snapshot(now));
        *cached = Some(snapshot.clone());
        snapshot
    }

    /// Whether the budget lets `incident` start an agent at `now` (always, without budgets).
    pub fn budget_check(
        &self,
        incident: &Incident,
        now: Timestamp,
        policy: &Policy,
    ) -> BudgetCheck {
        if !policy.budget.is_enabled() {
            return BudgetCheck::Within;
        }
        let namespace = incident.namespace().unwrap_or_default();
        self.budget_snapshot(now)
            .check(&namespace, incident.spec.severity, &policy.budget)
    }

    /// Feeds one event of the agent pod watch over `scope`.
    pub fn apply_pod_event(&self, scope: Option<&str>, event: &watcher::Event<Pod>) {
        lock(&self.pods).apply(scope, event);
    }

    /// Counts `pod` (as the API server returned it from the create) until the cache has it.
    pub fn remember_created(&self, pod: Pod) {
        let key = (pod.namespace().unwrap_or_default(), pod.name_any());
        lock(&self.recent).insert(key, (pod, Instant::now()));
    }

    /// Created pods the cache has not shown yet (and forgets those it has, or that are too old).
    fn unseen_created(&self, pods: &PodIndex) -> Vec<Pod> {
        let mut recent = lock(&self.recent);
        let now = Instant::now();
        recent.retain(|(namespace, name), (_, created)| {
            !pods.contains(namespace, name) && now.duration_since(*created) < RECENT_POD_MEMORY
        });
        recent.values().map(|(pod, _)| pod.clone()).collect()
    }

    /// Every readable Incident, copied: O(n), for a first look (the notifier's, once per
    /// leadership); afterwards [`ClusterView::take_changed`] and [`ClusterView::incident_at`].
    pub fn incidents(&self) -> Vec<Incident> {
        self.incidents
            .iter()
            .flat_map(|store| store.state())
            .filter_map(|guard| guard.0.as_ref().ok().cloned())
            .collect()
    }

    /// The cached, readable Incident `namespace/name`, copied.
    pub fn incident_at(&self, namespace: &str, name: &str) -> Option<Incident> {
        self.incident(namespace, name)?.0.as_ref().ok().cloned()
    }

    /// Agent pods controlled by the Incident with this uid.
    pub fn pods_of(&self, uid: &str) -> Vec<Pod> {
        let pods = lock(&self.pods);
        Self::pods_of_in(pods.get(), &self.unseen_created(pods.get()), uid)
    }

    fn pods_of_in(pods: &PodIndex, unseen: &[Pod], uid: &str) -> Vec<Pod> {
        let mut owned: Vec<Pod> = pods.pods_of(uid).iter().map(|p| (**p).clone()).collect();
        owned.extend(
            unseen
                .iter()
                .filter(|pod| controlling_incident(pod).as_deref() == Some(uid))
                .cloned(),
        );
        owned
    }

    /// Agent pods that hold a slot (not finished), whoever owns them.
    pub fn active_agents(&self) -> usize {
        let pods = lock(&self.pods);
        Self::active_in(pods.get(), &self.unseen_created(pods.get()))
    }

    fn active_in(pods: &PodIndex, unseen: &[Pod]) -> usize {
        pods.active()
            + unseen
                .iter()
                .filter(|pod| view_agent_pod(pod).state.is_active())
                .count()
    }

    /// The cached Incident `namespace/name`.
    fn incident(&self, namespace: &str, name: &str) -> Option<Arc<DeserializeGuard<Incident>>> {
        let key = ObjectRef::new(name).within(namespace);
        self.incidents.iter().find_map(|store| store.get(&key))
    }

    /// Where `namespace/name` stands in the queue; `None` when it is finished or unknown.
    pub fn queue_entry(&self, namespace: &str, name: &str) -> Option<QueueEntry> {
        lock(&self.queue).get().entry(namespace, name).cloned()
    }

    /// The queue's ruling for `incident` under `limit` agent slots: a walk from the head of the
    /// queue that stops once the free slots are accounted for ([`queue::admission`]). The
    /// Incident must want an agent (the caller asked [`wants_agent`]).
    pub fn admission(
        &self,
        incident: &Incident,
        now: Timestamp,
        policy: &Policy,
        limit: usize,
    ) -> Ruling {
        let target = QueueEntry::of(incident);
        let budget = self.budget_for_walk(now, policy);
        let queue = lock(&self.queue);
        let pods = lock(&self.pods);
        let unseen = self.unseen_created(pods.get());
        let active = Self::active_in(pods.get(), &unseen);
        queue::admission(queue.get().in_order(), &target, active, limit, |entry| {
            Self::within_budget(budget.as_deref(), entry, policy)
                && self.entry_wants_agent(entry, pods.get(), &unseen, now, policy)
        })
    }

    /// The first `count` Incidents of the queue that want an agent now (to wake when slots free).
    pub fn head(&self, count: usize, now: Timestamp, policy: &Policy) -> Vec<QueueEntry> {
        let budget = self.budget_for_walk(now, policy);
        let queue = lock(&self.queue);
        let pods = lock(&self.pods);
        let unseen = self.unseen_created(pods.get());
        queue
            .get()
            .in_order()
            .filter(|entry| {
                Self::within_budget(budget.as_deref(), entry, policy)
                    && self.entry_wants_agent(entry, pods.get(), &unseen, now, policy)
            })
            .take(count)
            .cloned()
            .collect()
    }

    /// The budget sum a queue walk asks, when budgets are set (taken before the queue's locks).
    fn budget_for_walk(&self, now: Timestamp, policy: &Policy) -> Option<Arc<BudgetSnapshot>> {
        policy
            .budget
            .is_enabled()
            .then(|| self.budget_snapshot(now))
    }

    /// Incidents the budget holds take no place in the queue, so they cannot keep an Incident of
    /// another namespace (or a critical one) from a free slot.
    fn within_budget(budget: Option<&BudgetSnapshot>, entry: &QueueEntry, policy: &Policy) -> bool {
        budget
            .is_none_or(|budget| budget.is_within(&entry.namespace, entry.severity, &policy.budget))
    }

    fn entry_wants_agent(
        &self,
        entry: &QueueEntry,
        pods: &PodIndex,
        unseen: &[Pod],
        now: Timestamp,
        policy: &Policy,
    ) -> bool {
        let Some(object) = self.incident(&entry.namespace, &entry.name) else {
            // In the index but not (yet) in the cache the Controller reads: it is reconciled
            // once the cache has it.
            return false;
        };
        let Ok(incident) = &object.0 else {
            return false;
        };
        let Some(uid) = incident.metadata.uid.as_deref() else {
            return false;
        };
        let owned = Self::pods_of_in(pods, unseen, uid);
        wants_agent(incident, &owned, now, policy).is_some()
    }

    /// The figures of the gauges, from counts kept per event.
    pub fn summary(&self) -> CacheSummary {
        let (phases, waiting) = {
            let queue = lock(&self.queue);
            let queue = queue.get();
            let waiting = queue.count(Phase::Queued);
            (queue.phase_counts(), waiting)
        };
        CacheSummary {
            phases,
            waiting,
            active_agents: self.active_agents(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::lifecycle::Admission;
    use crate::controller::pod::build_agent_pod;
    use crate::controller::pod::tests::{config, incident};
    use crate::controller::pod_state::tests::terminated;
    use crate::incident::{IncidentStatus, Severity};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;

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

    fn agent_pod(incident: &Incident, phase: &str) -> Pod {
        let mut pod = build_agent_pod(incident, 1, &config()).unwrap();
        pod.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some(phase.to_string()),
            ..Default::default()
        });
        pod
    }

    /// A view fed with these Incidents and pods the way the watches feed it.
    fn view(incidents: &[Incident], pods: &[Pod]) -> ClusterView {
        let (store, mut writer) = reflector::store::<DeserializeGuard<Incident>>();
        let view = ClusterView::new(vec![store]);
        for incident in incidents {
            let event = Event::Apply(DeserializeGuard(Ok(incident.clone())));
            writer.apply_watcher_event(&event);
            view.apply_incident_event(None, &event);
        }
        for pod in pods {
            view.apply_pod_event(None, &Event::Apply(pod.clone()));
        }
        view
    }

    #[test]
    fn pods_are_grouped_by_controlling_incident() {
        let a = created("a", 0, Severity::Warning);
        let b = created("b", 1, Severity::Warning);
        let pods = vec![agent_pod(&a, "Running"), agent_pod(&b, "Succeeded")];
        let view = view(&[a.clone(), b.clone()], &pods);
        assert_eq!(view.pods_of("uid-a").len(), 1);
        assert_eq!(view.pods_of("uid-b").len(), 1);
        assert!(view.pods_of("uid-c").is_empty());
        assert_eq!(view.active_agents(), 1, "a finished pod holds no slot");
    }

    #[test]
    fn created_pods_count_until_the_cache_shows_them() {
        let a = created("a", 0, Severity::Warning);
        let view = view(std::slice::from_ref(&a), &[]);
        view.remember_created(agent_pod(&a, "Pending"));
        assert_eq!(view.active_agents(), 1);
        assert_eq!(view.pods_of("uid-a").len(), 1);
        view.apply_pod_event(None, &Event::Apply(agent_pod(&a, "Running")));
        assert_eq!(view.active_agents(), 1, "counted once, from the cache");
        assert_eq!(view.pods_of("uid-a").len(), 1);
    }

    #[test]
    fn admission_follows_the_queue_and_skips_incidents_that_want_no_agent() {
        let running = created("running", 0, Severity::Critical);
        let mut done = created("done", 0, Severity::Critical);
        done.status = Some(IncidentStatus {
            phase: Some(Phase::Completed),
            ..IncidentStatus::default()
        });
        let late_critical = created("late-critical", 9, Severity::Critical);
        let early_warning = created("early-warning", 1, Severity::Warning);
        let later_warning = created("later-warning", 2, Severity::Warning);
        let mut backing_off = created("backing-off", 0, Severity::Critical);
        backing_off.status = Some(IncidentStatus {
            phase: Some(Phase::Pending),
            attempts: Some(1),
            ..IncidentStatus::default()
        });
        let failed = terminated(
            agent_pod(&backing_off, "Failed"),
            1,
            None,
            None,
            "2026-01-01T00:59:59Z",
        );
        let incidents = [
            running.clone(),
            done,
            late_critical.clone(),
            early_warning.clone(),
            later_warning.clone(),
            backing_off,
        ];
        let view = view(&incidents, &[agent_pod(&running, "Running"), failed]);
        let now = at("2026-01-01T01:00:00Z");
        let policy = Policy::default();
        let names = |entries: Vec<QueueEntry>| -> Vec<String> {
            entries.into_iter().map(|e| e.name).collect()
        };
        assert_eq!(
            names(view.head(10, now, &policy)),
            ["late-critical", "early-warning", "later-warning"]
        );

        // 3 slots, 1 taken by "running": the two heads may start; the third waits for them.
        assert_eq!(
            view.admission(&late_critical, now, &policy, 3).admission,
            Admission::Granted
        );
        assert_eq!(
            view.admission(&early_warning, now, &policy, 3).admission,
            Admission::Granted
        );
        let third = view.admission(&later_warning, now, &policy, 3);
        assert_eq!(
            third.admission,
            Admission::Waiting {
                in_use: 1,
                limit: 3
            }
        );
        assert_eq!(names(third.ahead), ["late-critical", "early-warning"]);

        let summary = view.summary();
        assert!(summary.phases.contains(&(Phase::Completed, 1)));
        assert!(summary.phases.contains(&(Phase::Pending, 5)));
        assert_eq!(summary.active_agents, 1);
    }

    #[test]
    fn incidents_the_budget_holds_take_no_place_in_the_queue() {
        use crate::budget::BudgetLimits;
        use crate::incident::Usage;
        // "spent" (namespace other) used $8 of other's $5; "rich" has no spend.
        let mut spent = created("spent", 0, Severity::Warning);
        spent.metadata.namespace = Some("other".to_string());
        spent.status = Some(IncidentStatus {
            phase: Some(Phase::Completed),
            start_time: Some(Time(at("2026-01-01T00:30:00Z"))),
            usage: Some(Box::new(Usage {
                cost_usd: Some(8.0),
                ..Usage::default()
            })),
            ..IncidentStatus::default()
        });
        let mut held = created("held", 1, Severity::Warning);
        held.metadata.namespace = Some("other".to_string());
        let mut critical = created("critical", 3, Severity::Critical);
        critical.metadata.namespace = Some("other".to_string());
        let after = created("after", 2, Severity::Warning);
        let incidents = [spent, held.clone(), critical.clone(), after.clone()];
        let (store, mut writer) = reflector::store::<DeserializeGuard<Incident>>();
        let view = ClusterView::new(vec![store]).with_pricing("m".into(), PriceTable::default());
        for incident in &incidents {
            let event = Event::Apply(DeserializeGuard(Ok(incident.clone())));
            writer.apply_watcher_event(&event);
            view.apply_incident_event(None, &event);
        }
        let now = at("2026-01-01T01:00:00Z");
        let policy = Policy {
            budget: BudgetLimits {
                daily_usd: None,
                namespace_daily_usd: Some(5.0),
            },
            ..Policy::default()
        };
        let names = |entries: Vec<QueueEntry>| -> Vec<String> {
            entries.into_iter().map(|e| e.name).collect()
        };
        // The critical one may pass up to 2x ($8 < $10); "held" is skipped, not waited for.
        assert_eq!(names(view.head(10, now, &policy)), ["critical", "after"]);
        assert!(view.budget_check(&held, now, &policy) != BudgetCheck::Within);
        assert_eq!(
            view.budget_check(&critical, now, &policy),
            BudgetCheck::Within
        );
        assert_eq!(view.budget_check(&after, now, &policy), BudgetCheck::Within);
        // One free slot after "critical": "after" is second, so it waits for critical only.
        let ruling = view.admission(&after, now, &policy, 2);
        assert_eq!(ruling.admission, Admission::Granted);
        let ruling = view.admission(&after, now, &policy, 1);
        assert_eq!(names(ruling.ahead), ["critical"]);
        // Without budgets "held" is an ordinary queue entry again.
        assert_eq!(
            names(view.head(10, now, &Policy::default())),
            ["critical", "held", "after"]
        );
    }
}

//! The admission queue, maintained from the Incident watch: every Incident that is not finished,
//! in queue order ([`QueueEntry`]'s `Ord`, which is [`super::queue::queue_order`]), plus counts by
//! phase for the gauges. Each watch event costs O(log n); admission walks from the head and stops
//! as soon as the free slots are accounted for (see [`super::queue::admission`]).
//!
//! "Not finished" is a superset of "wants an agent now": Running Incidents and those backing off
//! are in it too, and the walk skips them by asking [`super::lifecycle::wants_agent`], so the
//! queue agrees with the lifecycle by construction. Those skipped entries are few (at most the
//! running agents plus the ones between attempts), however long the backlog.

use std::collections::{BTreeSet, HashMap};

use kube::ResourceExt;
use kube::core::DeserializeGuard;

use super::queue::QueueEntry;
use super::watch_index::{Index, ObjectKey};
use crate::incident::{Incident, Phase};

/// What the index remembers of one Incident.
#[derive(Debug)]
struct Tracked {
    /// The Incident's place in the queue, when it is not finished.
    queued: Option<QueueEntry>,
    /// Its phase (`Pending` before it has one); `None` when it could not be read.
    phase: Option<Phase>,
}

/// Unfinished Incidents in queue order and counts by phase.
#[derive(Debug, Default)]
pub struct AdmissionQueue {
    order: BTreeSet<QueueEntry>,
    tracked: HashMap<ObjectKey, Tracked>,
    counts: PhaseCounts,
}

impl AdmissionQueue {
    /// The unfinished Incidents, head first.
    pub fn in_order(&self) -> impl Iterator<Item = &QueueEntry> {
        self.order.iter()
    }

    /// How many Incidents are not finished.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether every Incident is finished (or there are none).
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The queue entry of `namespace/name`, if it is not finished.
    pub fn entry(&self, namespace: &str, name: &str) -> Option<&QueueEntry> {
        self.tracked
            .get(&(namespace.to_string(), name.to_string()))?
            .queued
            .as_ref()
    }

    /// Readable Incidents by phase.
    pub fn phase_counts(&self) -> Vec<(Phase, usize)> {
        self.counts.to_vec()
    }

    /// Incidents in phase `phase`.
    pub fn count(&self, phase: Phase) -> usize {
        self.counts.get(phase)
    }
}

impl Index for AdmissionQueue {
    type Object = DeserializeGuard<Incident>;

    fn key_of(object: &Self::Object) -> Option<ObjectKey> {
        let namespace = object.namespace()?;
        Some((namespace, object.name_any()))
    }

    fn upsert(&mut self, key: ObjectKey, object: &Self::Object) {
        self.remove(&key);
        let tracked = match &object.0 {
            Ok(incident) => {
                let phase = incident
                    .status
                    .as_ref()
                    .and_then(|s| s.phase)
                    .unwrap_or(Phase::Pending);
                let queued = (!phase.is_finished()).then(|| QueueEntry::of(incident));
                Tracked {
                    queued,
                    phase: Some(phase),
                }
            }
            Err(_) => Tracked {
                queued: None,
                phase: None,
            },
        };
        if let Some(entry) = &tracked.queued {
            self.order.insert(entry.clone());
        }
        if let Some(phase) = tracked.phase {
            self.counts.add(phase, 1);
        }
        self.tracked.insert(key, tracked);
    }

    fn remove(&mut self, key: &ObjectKey) {
        let Some(old) = self.tracked.remove(key) else {
            return;
        };
        if let Some(entry) = &old.queued {
            self.order.remove(entry);
        }
        if let Some(phase) = old.phase {
            self.counts.add(phase, -1);
        }
    }

    fn keys(&self) -> Vec<ObjectKey> {
        self.tracked.keys().cloned().collect()
    }
}

/// Counts by phase, in the order phases are declared.
#[derive(Debug, Default)]
struct PhaseCounts([usize; 5]);

impl PhaseCounts {
    const PHASES: [Phase; 5] = [
        Phase::Pending,
        Phase::Queued,
        Phase::Running,
        Phase::Completed,
        Phase::Failed,
    ];

    fn slot(phase: Phase) -> usize {
        Self::PHASES
            .iter()
            .position(|p| *p == phase)
            .unwrap_or_default()
    }

    fn add(&mut self, phase: Phase, delta: isize) {
        let slot = &mut self.0[Self::slot(phase)];
        *slot = slot.saturating_add_signed(delta);
    }

    fn get(&self, phase: Phase) -> usize {
        self.0[Self::slot(phase)]
    }

    fn to_vec(&self) -> Vec<(Phase, usize)> {
        Self::PHASES
            .iter()
            .map(|phase| (*phase, self.get(*phase)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::pod::tests::incident;
    use crate::controller::watch_index::ScopedIndex;
    use crate::incident::{IncidentStatus, Severity};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::runtime::watcher::Event;

    fn with(name: &str, severity: Severity, minute: u32, phase: Option<Phase>) -> Incident {
        let mut incident = incident(name);
        incident.spec.severity = severity;
        incident.metadata.creation_timestamp = Some(Time(
            format!("2026-01-01T00:{minute:02}:00Z").parse().unwrap(),
        ));
        incident.status = phase.map(|phase| IncidentStatus {
            phase: Some(phase),
            ..IncidentStatus::default()
        });
        incident
    }

    fn apply(queue: &mut ScopedIndex<AdmissionQueue>, incident: Incident) {
        queue.apply(None, &Event::Apply(DeserializeGuard(Ok(incident))));
    }

    fn names(queue: &ScopedIndex<AdmissionQueue>) -> Vec<&str> {
        queue.get().in_order().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn watch_events_keep_the_unfinished_incidents_in_queue_order() {
        let mut queue = ScopedIndex::<AdmissionQueue>::default();
        apply(&mut queue, with("warn-late", Severity::Warning, 5, None));
        apply(
            &mut queue,
            with("info", Severity::Info, 0, Some(Phase::Queued)),
        );
        apply(&mut queue, with("crit", Severity::Critical, 9, None));
        apply(
            &mut queue,
            with("done", Severity::Critical, 0, Some(Phase::Completed)),
        );
        apply(&mut queue, with("warn-early", Severity::Warning, 1, None));
        assert_eq!(names(&queue), ["crit", "warn-early", "warn-late", "info"]);
        assert_eq!(queue.get().count(Phase::Pending), 3);
        assert_eq!(queue.get().count(Phase::Completed), 1);

        // Finishing leaves the queue; a status change moves nothing else.
        apply(
            &mut queue,
            with("crit", Severity::Critical, 9, Some(Phase::Completed)),
        );
        apply(
            &mut queue,
            with("warn-late", Severity::Warning, 5, Some(Phase::Queued)),
        );
        assert_eq!(names(&queue), ["warn-early", "warn-late", "info"]);
        assert_eq!(queue.get().count(Phase::Completed), 2);
        assert_eq!(queue.get().count(Phase::Queued), 2);
        assert!(queue.get().entry("shop", "crit").is_none());
        assert_eq!(
            queue.get().entry("shop", "info").map(|e| e.severity),
            Some(Severity::Info)
        );

        let gone = DeserializeGuard(Ok(with("info", Severity::Info, 0, None)));
        queue.apply(None, &Event::Delete(gone));
        assert_eq!(names(&queue), ["warn-early", "warn-late"]);
        assert_eq!(queue.get().count(Phase::Queued), 1);
        assert_eq!(
            queue.get().phase_counts(),
            [
                (Phase::Pending, 1),
                (Phase::Queued, 1),
                (Phase::Completed, 2)
            ]
        );
    }
}

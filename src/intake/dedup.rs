//! Deduplication: which existing Incident an alert belongs to, and what its alert activity
//! becomes.
//!
//! Rule: a fingerprint has at most one *open* Incident (phase not Completed/Failed, or no phase
//! yet). A firing alert with an open Incident bumps that Incident's `status.alert`; otherwise it
//! creates generation `max + 1` (see [`super::mapping`] for the names). A resolved alert is recorded
//! on the open Incident, or on the latest one if all have finished; it never closes anything.
//!
//! Everything here is pure. Tasks of this process are kept apart by [`super::single_flight`];
//! across processes the deterministic names (409 on a duplicate create) and the resourceVersion
//! precondition on status writes keep the same guarantees.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::LABEL_GENERATION;
use crate::incident::{AlertActivity, Incident};

/// What deduplication needs to know about one existing Incident of a fingerprint.
#[derive(Clone, Debug, PartialEq)]
pub struct ExistingIncident {
    pub name: String,
    /// From the generation label; 1 when the label is missing or unreadable.
    pub generation: u32,
    /// Completed or Failed: a new firing starts a new Incident.
    pub finished: bool,
    pub activity: Option<AlertActivity>,
    pub resource_version: Option<String>,
    pub created: Option<Time>,
    /// `status.completionTime`: where the recurrence cool-down starts.
    pub finished_at: Option<Time>,
    /// What a later generation recalls of this one, once it has finished.
    pub predecessor: Option<crate::incident::Predecessor>,
}

impl ExistingIncident {
    /// Reads the fields deduplication needs; `None` for an object without a name.
    pub fn from_incident(incident: &Incident) -> Option<Self> {
        let meta = &incident.metadata;
        let generation = meta
            .labels
            .as_ref()
            .and_then(|labels| labels.get(LABEL_GENERATION))
            .and_then(|value| value.parse::<u32>().ok())
            .unwrap_or(1)
            .max(1);
        let status = incident.status.as_ref();
        Some(Self {
            name: meta.name.clone()?,
            generation,
            finished: status
                .and_then(|status| status.phase)
                .is_some_and(|phase| phase.is_finished()),
            activity: status.and_then(|status| status.alert.as_deref().cloned()),
            resource_version: meta.resource_version.clone(),
            created: meta.creation_timestamp.clone(),
            finished_at: status.and_then(|status| status.completion_time.clone()),
            predecessor: crate::recurrence::memory::predecessor_of(incident),
        })
    }
}

/// What to do with a firing alert, given the Incidents that already carry its fingerprint.
#[derive(Clone, Debug, PartialEq)]
pub enum FiringPlan<'a> {
    /// Record another occurrence on this open Incident.
    Bump(&'a ExistingIncident),
    /// No open Incident: create this generation.
    Create { generation: u32 },
}

/// Chooses between bumping the open Incident and creating the next generation.
pub fn plan_firing(existing: &[ExistingIncident]) -> FiringPlan<'_> {
    // Normally at most one is open; if a person opened more by hand, the newest wins.
    if let Some(open) = existing
        .iter()
        .filter(|incident| !incident.finished)
        .max_by_key(|incident| incident.generation)
    {
        return FiringPlan::Bump(open);
    }
    let latest = existing.iter().map(|incident| incident.generation).max();
    FiringPlan::Create {
        generation: latest.map_or(1, |generation| generation.saturating_add(1)),
    }
}

/// The Incident a resolved alert is recorded on: the open one, else the latest; `None` when the
/// intake never saw the alert fire.
pub fn plan_resolved(existing: &[ExistingIncident]) -> Option<&ExistingIncident> {
    existing
        .iter()
        .max_by_key(|incident| (!incident.finished, incident.generation))
}

/// Activity of a newly created Incident: one occurrence, seen now.
pub fn first_activity(now: &Time) -> AlertActivity {
    AlertActivity {
        occurrences: 1,
        first_seen: now.clone(),
        last_seen: now.clone(),
        resolved_at: None,
        recurrences: None,
        last_recurrence: None,
    }
}

/// Activity after `count` more firing notifications (several when a burst was batched). A firing
/// alert is not resolved, so an earlier `resolvedAt` is cleared. An Incident without activity
/// (just created, or its creator stopped between the create and the status write) starts at
/// `count`, first seen now.
pub fn bump_activity(current: Option<&AlertActivity>, now: &Time, count: u32) -> AlertActivity {
    let count = count.max(1);
    match current {
        Some(current) => AlertActivity {
            occurrences: current.occurrences.saturating_add(count).max(1),
            last_seen: now.clone(),
            resolved_at: None,
            ..current.clone()
        },
        None => AlertActivity {
            occurrences: count,
            ..first_activity(now)
        },
    }
}

/// Activity after a resolved notification: everything kept, `resolvedAt` set. Without earlier
/// activity, the Incident's creation time (or `resolved_at`) stands in for first and last seen.
pub fn resolve_activity(
    current: Option<&AlertActivity>,
    created: Option<&Time>,
    resolved_at: Time,
) -> AlertActivity {
    match current {
        Some(current) => AlertActivity {
            resolved_at: Some(resolved_at),
            ..current.clone()
        },
        None => {
            let seen = created.cloned().unwrap_or_else(|| resolved_at.clone());
            AlertActivity {
                occurrences: 1,
                first_seen: seen.clone(),
                last_seen: seen,
                resolved_at: Some(resolved_at),
                recurrences: None,
                last_recurrence: None,
            }
        }
    }
}

/// When a resolved alert ended: its `endsAt` when that is a real RFC 3339 time (Alertmanager's
/// zero time `0001-01-01T00:00:00Z` is not), else `now`; never later than `now` (a sender's
/// `endsAt` in year 9999 must not make an Incident look resolved in the future).
pub fn resolved_time(ends_at: Option<&str>, now: &Time) -> Time {
    ends_at
        .and_then(|text| text.parse::<Timestamp>().ok())
        .filter(|time| time.as_second() > Timestamp::UNIX_EPOCH.as_second())
        .map(|time| Time(time.min(now.0)))
        .unwrap_or_else(|| now.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> Time {
        Time(text.parse().unwrap())
    }

    fn existing(name: &str, generation: u32, finished: bool) -> ExistingIncident {
        ExistingIncident {
            name: name.into(),
            generation,
            finished,
            activity: None,
            resource_version: None,
            created: None,
            finished_at: None,
            predecessor: None,
        }
    }

    #[test]
    fn firing_without_incidents_creates_generation_one() {
        assert_eq!(plan_firing(&[]), FiringPlan::Create { generation: 1 });
    }

    #[test]
    fn firing_bumps_the_open_incident() {
        let all = [existing("a", 1, true), existing("a-2", 2, false)];
        assert_eq!(plan_firing(&all), FiringPlan::Bump(&all[1]));
    }

    #[test]
    fn firing_after_all_finished_creates_the_next_generation() {
        let all = [existing("a-3", 3, true), existing("a", 1, true)];
        assert_eq!(plan_firing(&all), FiringPlan::Create { generation: 4 });
    }

    #[test]
    fn resolved_goes_to_the_open_incident_else_the_latest() {
        let all = [existing("a", 1, false), existing("a-2", 2, true)];
        assert_eq!(plan_resolved(&all).unwrap().name, "a");
        let all = [existing("a", 1, true), existing("a-2", 2, true)];
        assert_eq!(plan_resolved(&all).unwrap().name, "a-2");
        assert_eq!(plan_resolved(&[]), None);
    }

    #[test]
    fn bump_counts_and_clears_resolved() {
        let t0 = time("2025-06-01T10:00:00Z");
        let t1 = time("2025-06-01T10:05:00Z");
        let first = first_activity(&t0);
        assert_eq!(first.occurrences, 1);
        let resolved = resolve_activity(Some(&first), None, t0.clone());
        let bumped = bump_activity(Some(&resolved), &t1, 1);
        assert_eq!(bumped.occurrences, 2);
        assert_eq!(bumped.first_seen, t0);
        assert_eq!(bumped.last_seen, t1);
        assert_eq!(bumped.resolved_at, None);
        let saturated = AlertActivity {
            occurrences: u32::MAX,
            ..first.clone()
        };
        assert_eq!(
            bump_activity(Some(&saturated), &t1, 1).occurrences,
            u32::MAX
        );
        assert_eq!(bump_activity(None, &t1, 1), first_activity(&t1));
        // A batch of 40 notifications counts 40, whether the Incident is new or not.
        assert_eq!(bump_activity(None, &t1, 40).occurrences, 40);
        assert_eq!(bump_activity(Some(&bumped), &t1, 40).occurrences, 42);
        assert_eq!(bump_activity(None, &t1, 0).occurrences, 1);
    }

    #[test]
    fn resolve_keeps_counts_and_fills_in_missing_activity() {
        let t0 = time("2025-06-01T10:00:00Z");
        let t1 = time("2025-06-01T11:00:00Z");
        let mut activity = first_activity(&t0);
        activity.occurrences = 7;
        let resolved = resolve_activity(Some(&activity), None, t1.clone());
        assert_eq!(resolved.occurrences, 7);
        assert_eq!(resolved.resolved_at, Some(t1.clone()));
        let without = resolve_activity(None, Some(&t0), t1.clone());
        assert_eq!(without.first_seen, t0);
        assert_eq!(without.resolved_at, Some(t1));
    }

    #[test]
    fn resolved_time_is_clamped_to_now() {
        let now = time("2025-06-01T10:05:00Z");
        assert_eq!(resolved_time(Some("9999-12-31T23:59:59Z"), &now), now);
    }

    #[test]
    fn resolved_time_uses_ends_at_unless_zero_or_unreadable() {
        let now = time("2025-06-01T12:00:00Z");
        assert_eq!(
            resolved_time(Some("2025-06-01T11:30:00.5Z"), &now),
            time("2025-06-01T11:30:00.5Z")
        );
        for odd in [
            Some("0001-01-01T00:00:00Z"),
            Some("yesterday"),
            Some(""),
            None,
        ] {
            assert_eq!(resolved_time(odd, &now), now, "{odd:?}");
        }
    }

    #[test]
    fn existing_incident_reads_generation_phase_and_activity() {
        use crate::incident::{IncidentSpec, IncidentStatus, Phase};
        let mut incident = Incident::new(
            "x-0123456789abcdef-2",
            IncidentSpec {
                title: "t".into(),
                description: None,
                severity: Default::default(),
                source: Default::default(),
                alert: None,
                runbook: None,
                mode: Default::default(),
                agent: None,
                predecessors: Vec::new(),
                notifications: None,
            },
        );
        assert_eq!(
            ExistingIncident::from_incident(&incident).unwrap(),
            existing("x-0123456789abcdef-2", 1, false)
        );
        incident.metadata.labels = Some([(LABEL_GENERATION.to_string(), "2".to_string())].into());
        let activity = first_activity(&time("2025-06-01T10:00:00Z"));
        incident.status = Some(IncidentStatus {
            phase: Some(Phase::Failed),
            alert: Some(Box::new(activity.clone())),
            ..Default::default()
        });
        let seen = ExistingIncident::from_incident(&incident).unwrap();
        assert_eq!(seen.generation, 2);
        assert!(seen.finished);
        assert_eq!(seen.activity, Some(activity));
    }
}

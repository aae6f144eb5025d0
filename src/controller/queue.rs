//! Fair admission of agent pods: at most N run at once; the rest wait in phase `Queued`, critical
//! first, then oldest (creation time, then name, then namespace, so the order is total).
//!
//! Pure. The count of running agents comes from the cache of agent pods (plus pods created but not
//! yet seen in the cache), never from an in-memory counter, so it is right after a restart.

use std::cmp::Ordering;

use jiff::Timestamp;
use kube::ResourceExt;

use super::lifecycle::Admission;
use crate::incident::{Incident, Severity};

/// One Incident waiting for an agent slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueEntry {
    pub namespace: String,
    pub name: String,
    pub severity: Severity,
    /// `None` sorts last (never the case for objects from the API server).
    pub created_at: Option<Timestamp>,
}

impl QueueEntry {
    /// The queue entry for `incident`.
    pub fn of(incident: &Incident) -> Self {
        Self {
            namespace: incident.namespace().unwrap_or_default(),
            name: incident.name_any(),
            severity: incident.spec.severity,
            created_at: incident.metadata.creation_timestamp.as_ref().map(|t| t.0),
        }
    }
}

/// Queue order: severity (critical first), then creation time (oldest first), then name and
/// namespace.
pub fn queue_order(a: &QueueEntry, b: &QueueEntry) -> Ordering {
    a.severity
        .cmp(&b.severity)
        .then_with(|| match (a.created_at, b.created_at) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
        .then_with(|| a.name.cmp(&b.name))
        .then_with(|| a.namespace.cmp(&b.namespace))
}

/// Sorts `entries` into queue order.
pub fn sort_queue(entries: &mut [QueueEntry]) {
    entries.sort_by(queue_order);
}

/// Whether the Incident `namespace/name` may start an agent: it may when fewer than `limit` agent
/// pods are active and fewer Incidents ahead of it in `queue` (sorted) than there are free slots.
pub fn admission(
    queue: &[QueueEntry],
    namespace: &str,
    name: &str,
    active: usize,
    limit: usize,
) -> Admission {
    let free = limit.saturating_sub(active);
    let position = queue
        .iter()
        .position(|entry| entry.namespace == namespace && entry.name == name);
    match position {
        Some(position) if position < free => Admission::Granted,
        _ => Admission::Waiting {
            in_use: active,
            limit,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, severity: Severity, created: &str) -> QueueEntry {
        QueueEntry {
            namespace: "shop".to_string(),
            name: name.to_string(),
            severity,
            created_at: Some(created.parse().unwrap()),
        }
    }

    fn names(queue: &[QueueEntry]) -> Vec<&str> {
        queue.iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn critical_first_then_oldest_then_name() {
        let mut queue = vec![
            entry("info-old", Severity::Info, "2026-01-01T00:00:00Z"),
            entry("warn-new", Severity::Warning, "2026-01-01T00:05:00Z"),
            entry("crit-new", Severity::Critical, "2026-01-01T00:09:00Z"),
            entry("warn-b", Severity::Warning, "2026-01-01T00:01:00Z"),
            entry("warn-a", Severity::Warning, "2026-01-01T00:01:00Z"),
            entry("crit-old", Severity::Critical, "2026-01-01T00:02:00Z"),
        ];
        sort_queue(&mut queue);
        assert_eq!(
            names(&queue),
            [
                "crit-old", "crit-new", "warn-a", "warn-b", "warn-new", "info-old"
            ]
        );
    }

    #[test]
    fn namespace_breaks_the_last_tie_and_missing_time_sorts_last() {
        let mut a = entry("same", Severity::Warning, "2026-01-01T00:00:00Z");
        let mut b = a.clone();
        a.namespace = "b".to_string();
        b.namespace = "a".to_string();
        let mut undated = entry("undated", Severity::Warning, "2026-01-01T00:00:00Z");
        undated.created_at = None;
        let mut queue = vec![undated, a, b];
        sort_queue(&mut queue);
        let keys: Vec<_> = queue
            .iter()
            .map(|e| format!("{}/{}", e.namespace, e.name))
            .collect();
        assert_eq!(keys, ["a/same", "b/same", "shop/undated"]);
    }

    #[test]
    fn only_the_head_of_the_queue_gets_free_slots() {
        let mut queue: Vec<_> = (0..5)
            .map(|i| {
                entry(
                    &format!("inc-{i}"),
                    Severity::Warning,
                    &format!("2026-01-01T00:0{i}:00Z"),
                )
            })
            .collect();
        sort_queue(&mut queue);
        // 3 slots, 1 in use: the first two in line may start, the third waits.
        assert_eq!(admission(&queue, "shop", "inc-0", 1, 3), Admission::Granted);
        assert_eq!(admission(&queue, "shop", "inc-1", 1, 3), Admission::Granted);
        assert_eq!(
            admission(&queue, "shop", "inc-2", 1, 3),
            Admission::Waiting {
                in_use: 1,
                limit: 3
            }
        );
        // More active than the limit (e.g. the limit was lowered): nobody starts.
        assert_eq!(
            admission(&queue, "shop", "inc-0", 4, 3),
            Admission::Waiting {
                in_use: 4,
                limit: 3
            }
        );
        // Not in the queue at all: waits.
        assert_eq!(
            admission(&queue, "shop", "other", 0, 3),
            Admission::Waiting {
                in_use: 0,
                limit: 3
            }
        );
    }
}

//! Fair admission of agent pods: at most N run at once; the rest wait in phase `Queued`, critical
//! first, then oldest (creation time, then name, then namespace, so the order is total).
//!
//! Pure. The count of running agents comes from the cache of agent pods (plus pods created but not
//! yet seen in the cache), never from an in-memory counter, so it is right after a restart. The
//! queue itself is kept in order by [`super::admission_queue`]; [`admission`] walks it from the head
//! and stops once the free slots are accounted for, so deciding costs the few entries ahead of the
//! free slots, not the length of the backlog. A gate that holds Incidents back for another reason
//! (a spend budget) sits in front of [`admission`]: it needs only the same entry and its own state.

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

impl Ord for QueueEntry {
    fn cmp(&self, other: &Self) -> Ordering {
        queue_order(self, other)
    }
}

impl PartialOrd for QueueEntry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
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

/// The queue's answer for one Incident, and who is ahead of it for the free slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ruling {
    pub admission: Admission,
    /// Incidents ahead of this one that want an agent and fit in the free slots: when this one
    /// waits although slots are free, these are the ones to wake.
    pub ahead: Vec<QueueEntry>,
}

/// Whether `target` may start an agent: it may when fewer than `limit` agent pods are `active` and
/// fewer Incidents that want an agent stand ahead of it in `queue` (in order, head first) than there
/// are free slots. `wants_agent` says whether an entry wants an agent now (entries that run or back
/// off are in the queue too); it is asked only about entries ahead of `target`, and the walk stops
/// after the free slots are taken, so it is called at most (free slots + skipped entries) times.
pub fn admission<'a>(
    queue: impl IntoIterator<Item = &'a QueueEntry>,
    target: &QueueEntry,
    active: usize,
    limit: usize,
    mut wants_agent: impl FnMut(&QueueEntry) -> bool,
) -> Ruling {
    let free = limit.saturating_sub(active);
    let waiting = Admission::Waiting {
        in_use: active,
        limit,
    };
    let mut ahead = Vec::new();
    if free == 0 {
        return Ruling {
            admission: waiting,
            ahead,
        };
    }
    for entry in queue {
        if entry == target {
            return Ruling {
                admission: Admission::Granted,
                ahead,
            };
        }
        if wants_agent(entry) {
            ahead.push(entry.clone());
            if ahead.len() >= free {
                break;
            }
        }
    }
    Ruling {
        admission: waiting,
        ahead,
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
        queue.sort();
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
        let mut queue = [undated, a, b];
        queue.sort();
        let keys: Vec<_> = queue
            .iter()
            .map(|e| format!("{}/{}", e.namespace, e.name))
            .collect();
        assert_eq!(keys, ["a/same", "b/same", "shop/undated"]);
    }

    fn ordered(entries: Vec<QueueEntry>) -> std::collections::BTreeSet<QueueEntry> {
        entries.into_iter().collect()
    }

    #[test]
    fn only_the_head_of_the_queue_gets_free_slots() {
        let queue = ordered(
            (0..5)
                .map(|i| {
                    entry(
                        &format!("inc-{i}"),
                        Severity::Warning,
                        &format!("2026-01-01T00:0{i}:00Z"),
                    )
                })
                .collect(),
        );
        let at = |i: usize| queue.iter().nth(i).unwrap().clone();
        let all_want = |_: &QueueEntry| true;
        // 3 slots, 1 in use: the first two in line may start, the third waits for them.
        assert_eq!(
            admission(&queue, &at(0), 1, 3, all_want).admission,
            Admission::Granted
        );
        assert_eq!(
            admission(&queue, &at(1), 1, 3, all_want),
            Ruling {
                admission: Admission::Granted,
                ahead: vec![at(0)]
            }
        );
        assert_eq!(
            admission(&queue, &at(2), 1, 3, all_want),
            Ruling {
                admission: Admission::Waiting {
                    in_use: 1,
                    limit: 3
                },
                ahead: vec![at(0), at(1)]
            }
        );
        // More active than the limit (e.g. the limit was lowered): nobody starts.
        assert_eq!(
            admission(&queue, &at(0), 4, 3, all_want).admission,
            Admission::Waiting {
                in_use: 4,
                limit: 3
            }
        );
        // Not in the queue at all: waits.
        let other = entry("other", Severity::Info, "2026-01-02T00:00:00Z");
        assert_eq!(
            admission(&queue, &other, 0, 3, all_want).admission,
            Admission::Waiting {
                in_use: 0,
                limit: 3
            }
        );
        // Entries that do not want an agent (running, backing off) hold no place in line.
        let skip_first_two = |e: &QueueEntry| e != &at(0) && e != &at(1);
        assert_eq!(
            admission(&queue, &at(3), 1, 3, skip_first_two),
            Ruling {
                admission: Admission::Granted,
                ahead: vec![at(2)]
            }
        );
    }

    #[test]
    fn a_decision_looks_at_the_head_of_a_long_backlog_only() {
        // 10,000 queued: deciding for the last one (or any one) asks about the entries ahead of
        // the free slots, never the whole backlog, whether slots are free or not.
        let queue = ordered(
            (0..10_000)
                .map(|i| {
                    let mut e = entry(
                        &format!("inc-{i:05}"),
                        Severity::Warning,
                        "2026-01-01T00:00:00Z",
                    );
                    if i % 1000 == 0 {
                        e.severity = Severity::Critical;
                    }
                    e
                })
                .collect(),
        );
        let last = queue.iter().next_back().unwrap().clone();
        let mut asked = 0;
        let ruling = admission(&queue, &last, 1, 3, |_| {
            asked += 1;
            true
        });
        assert_eq!(asked, 2, "two free slots: two entries looked at");
        assert!(matches!(ruling.admission, Admission::Waiting { .. }));
        let heads: Vec<_> = ruling.ahead.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(heads, ["inc-00000", "inc-01000"], "critical first");

        let mut asked = 0;
        admission(&queue, &last, 3, 3, |_| {
            asked += 1;
            true
        });
        assert_eq!(asked, 0, "no free slot: nothing to look at");
    }
}

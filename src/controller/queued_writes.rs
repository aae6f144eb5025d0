//! Status writes for Incidents that wait for an agent slot, taken off the reconcile path.
//!
//! After a restart on a backlog every queued Incident needs one status write (phase Queued) and one
//! Event; done inside each reconcile, 10,000 of them stood in line at the API server ahead of the
//! pod of the Incident at the head of the queue. Here a reconcile that decides "wait" hands its
//! status to [`QueuedWrites`] and returns; one task writes the pending statuses in queue order, a
//! few at a time, and pauses while an agent is being admitted (it takes the admission lock before
//! each batch), so a write for a waiting Incident is never ahead of starting the next agent.
//!
//! A pending status is written only if the Incident is still at the resourceVersion it was decided
//! from (a 409 otherwise, see [`apply::apply_status_if_unchanged`]): a newer status (Running, from
//! the admission) always wins. A newer decision for the same Incident replaces a pending one.
//! Failed writes are dropped: the queued Incident's periodic recheck decides and submits again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Api;
use kube::core::DeserializeGuard;
use tokio::sync::Notify;

use super::apply;
use super::error::Error;
use super::events::IncidentEvent;
use super::queue::QueueEntry;
use super::reconcile::Context;
use crate::incident::{Incident, IncidentStatus};

/// Writes in flight at once: enough to keep the API server busy, few enough that an admission
/// never waits behind many.
const WRITES_IN_FLIGHT: usize = 32;
/// Statuses taken per batch; the admission lock is taken between batches.
const BATCH: usize = 2 * WRITES_IN_FLIGHT;

/// A status decided for a waiting Incident, not written yet.
#[derive(Clone, Debug)]
pub struct PendingStatus {
    /// The resourceVersion the decision was made from.
    pub resource_version: String,
    pub status: IncidentStatus,
    /// Published once the status is written.
    pub events: Vec<IncidentEvent>,
    pub regarding: ObjectReference,
}

/// The pending statuses, in queue order.
#[derive(Default)]
pub struct QueuedWrites {
    pending: Mutex<BTreeMap<QueueEntry, PendingStatus>>,
    wake: Notify,
}

impl QueuedWrites {
    fn pending(&self) -> MutexGuard<'_, BTreeMap<QueueEntry, PendingStatus>> {
        // Inserts and removals only: a poisoned map is still a consistent one.
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `status` for the Incident `entry`, replacing what was pending for it.
    pub fn submit(&self, entry: QueueEntry, status: PendingStatus) {
        self.pending().insert(entry, status);
        self.wake.notify_one();
    }

    /// Forgets what was pending for `entry` (its status is being written another way).
    pub fn cancel(&self, entry: &QueueEntry) {
        self.pending().remove(entry);
    }

    /// How many statuses wait to be written.
    pub fn len(&self) -> usize {
        self.pending().len()
    }

    /// Whether nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.pending().is_empty()
    }

    /// Takes up to `count` pending statuses from the head of the queue.
    fn take_head(&self, count: usize) -> Vec<(QueueEntry, PendingStatus)> {
        let mut pending = self.pending();
        std::iter::from_fn(|| pending.pop_first())
            .take(count)
            .collect()
    }
}

/// Writes pending statuses until the process stops (the caller drops this future on shutdown).
pub async fn run(ctx: Arc<Context>) {
    loop {
        let batch = ctx.queued_writes.take_head(BATCH);
        if batch.is_empty() {
            ctx.queued_writes.wake.notified().await;
            continue;
        }
        // An admission in progress (pod being created) goes first.
        drop(ctx.admission.lock().await);
        futures::stream::iter(batch)
            .for_each_concurrent(WRITES_IN_FLIGHT, |(entry, pending)| {
                let ctx = ctx.clone();
                async move { write(&ctx, entry, pending).await }
            })
            .await;
    }
}

async fn write(ctx: &Context, entry: QueueEntry, pending: PendingStatus) {
    let api: Api<DeserializeGuard<Incident>> =
        Api::namespaced(ctx.client.clone(), &entry.namespace);
    let result = apply::apply_status_if_unchanged(
        &api,
        &entry.name,
        &pending.status,
        &pending.resource_version,
    )
    .await;
    match result {
        Ok(()) => {
            for event in &pending.events {
                ctx.events.publish(event, &pending.regarding).await;
            }
        }
        Err(Error::ApplyStatus {
            source: kube::Error::Api(status),
            ..
        }) if status.is_conflict() || status.is_not_found() => {
            // Changed or gone since the decision: its watch event brings a fresh reconcile.
            tracing::debug!(incident = %format!("{}/{}", entry.namespace, entry.name), "queued status superseded");
        }
        Err(error) => {
            ctx.metrics.count_failure(error.metric_label());
            tracing::warn!(incident = %format!("{}/{}", entry.namespace, entry.name), error = %error.chain(), "writing a queued status failed; the next recheck retries");
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::incident::{Phase, Severity};

    /// A queue entry in namespace `shop`, created at a fixed time (shared with other tests).
    pub(crate) fn entry(name: &str, severity: Severity) -> QueueEntry {
        QueueEntry {
            namespace: "shop".to_string(),
            name: name.to_string(),
            severity,
            created_at: Some("2026-01-01T00:00:00Z".parse().unwrap()),
        }
    }

    fn pending(resource_version: &str) -> PendingStatus {
        PendingStatus {
            resource_version: resource_version.to_string(),
            status: IncidentStatus {
                phase: Some(Phase::Queued),
                ..IncidentStatus::default()
            },
            events: Vec::new(),
            regarding: ObjectReference::default(),
        }
    }

    #[test]
    fn pending_statuses_leave_in_queue_order_newest_decision_wins() {
        let writes = QueuedWrites::default();
        writes.submit(entry("warn-b", Severity::Warning), pending("1"));
        writes.submit(entry("info", Severity::Info), pending("2"));
        writes.submit(entry("crit", Severity::Critical), pending("3"));
        writes.submit(entry("warn-a", Severity::Warning), pending("4"));
        writes.submit(entry("warn-b", Severity::Warning), pending("5"));
        writes.cancel(&entry("warn-a", Severity::Warning));
        assert_eq!(writes.len(), 3);

        let first = writes.take_head(2);
        let taken: Vec<_> = first
            .iter()
            .map(|(e, p)| (e.name.as_str(), p.resource_version.as_str()))
            .collect();
        assert_eq!(taken, [("crit", "3"), ("warn-b", "5")]);
        let rest = writes.take_head(10);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].0.name, "info");
        assert!(writes.is_empty());
    }
}

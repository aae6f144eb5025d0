//! The first reconcile of every Incident after a list (start-up, or a relist after the watch
//! lost its place), in queue order and paced, instead of all at once in no order.
//!
//! Sits between the Incident watch and the kube-runtime `Controller`. Left alone, the `Controller`
//! takes every listed object as a trigger at once; with more than its concurrency waiting they
//! park in its scheduler's pending *set*, whose order is a hash's, and a request to reconcile one
//! of them sooner is ignored ("already pending"). After a restart on 100,000 queued Incidents the
//! one at the head of the queue was reconciled after a random share of the others (20.6 s).
//!
//! Here the listed objects are not passed on as triggers: [`ListedOrder`] collects their refs
//! while the list runs and, once it is complete, [`feed`] hands them to the `Controller` through
//! `reconcile_on` in queue order (head first; finished Incidents last), a window at a time:
//! a ref goes out only while fewer than [`WINDOW`] handed-out refs wait for a reconcile to end
//! ([`ReconcilePace`]). Changes after the list pass straight through, as before.

use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use futures::channel::mpsc::UnboundedReceiver;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use tokio::sync::Notify;

use super::queue::QueueEntry;
use super::reconcile::WakeSender;
use crate::incident::Incident;

/// Refs handed to the `Controller` ahead of finished reconciles: a few times its concurrency,
/// so it never idles, and few enough that its pending set stays small and the head goes first.
pub const WINDOW: u64 = 64;

type IncidentRef = ObjectRef<DeserializeGuard<Incident>>;

/// Counts finished reconciles, so [`feed`] can wait for room in its window.
#[derive(Debug, Default)]
pub struct ReconcilePace {
    finished: AtomicU64,
    changed: Notify,
}

impl ReconcilePace {
    /// Called at the end of every reconcile.
    pub fn finished_one(&self) {
        self.finished.fetch_add(1, Ordering::Release);
        self.changed.notify_waiters();
    }

    fn finished(&self) -> u64 {
        self.finished.load(Ordering::Acquire)
    }

    /// Waits until `finished` reaches `target`.
    async fn wait_for(&self, target: u64) {
        loop {
            let notified = self.changed.notified();
            if self.finished() >= target {
                return;
            }
            notified.await;
        }
    }
}

/// The refs of one list, collected while it runs.
#[derive(Debug, Default)]
pub struct ListedOrder {
    listing: Vec<IncidentRef>,
}

impl ListedOrder {
    /// Takes one watch event; returns the object to pass on as a trigger (a change after the
    /// list) and, at the end of a list, every listed ref (for [`sort_for_admission`]).
    pub fn observe(
        &mut self,
        event: watcher::Event<DeserializeGuard<Incident>>,
    ) -> (Option<DeserializeGuard<Incident>>, Option<Vec<IncidentRef>>) {
        match event {
            watcher::Event::Apply(object) => (Some(object), None),
            watcher::Event::Delete(_) => (None, None),
            watcher::Event::Init => {
                self.listing.clear();
                (None, None)
            }
            watcher::Event::InitApply(object) => {
                self.listing.push(ObjectRef::from_obj(&object));
                (None, None)
            }
            watcher::Event::InitDone => (None, Some(std::mem::take(&mut self.listing))),
        }
    }
}

/// Orders listed refs for their first reconcile: by their queue entry (`entry_of`; the head of
/// the queue first), then those with none (finished or unreadable), by name.
pub fn sort_for_admission(
    refs: Vec<IncidentRef>,
    entry_of: impl Fn(&IncidentRef) -> Option<QueueEntry>,
) -> Vec<IncidentRef> {
    let mut keyed: Vec<(Option<QueueEntry>, IncidentRef)> = refs
        .into_iter()
        .map(|object| (entry_of(&object), object))
        .collect();
    keyed.sort_by(|(a, a_ref), (b, b_ref)| match (a, b) {
        (Some(a), Some(b)) => a.cmp(b),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => (a_ref.namespace.as_deref(), a_ref.name.as_str())
            .cmp(&(b_ref.namespace.as_deref(), b_ref.name.as_str())),
    });
    keyed.into_iter().map(|(_, object)| object).collect()
}

/// Hands each list's sorted refs to the `Controller` (`wake`), [`WINDOW`] ahead of the finished
/// reconciles; a newer list replaces what is left of an older one. Ends when either channel closes.
pub async fn feed(
    mut lists: UnboundedReceiver<Vec<IncidentRef>>,
    wake: WakeSender,
    pace: &ReconcilePace,
) {
    let Some(mut current) = lists.next().await else {
        return;
    };
    loop {
        let mut sent = 0u64;
        let base = pace.finished();
        let mut refs = current.into_iter();
        let newer = loop {
            let Some(object) = refs.next() else {
                break None;
            };
            if sent >= WINDOW {
                tokio::select! {
                    biased;
                    newer = lists.next() => break Some(newer),
                    () = pace.wait_for(base + sent - WINDOW + 1) => {}
                }
            }
            if wake.unbounded_send(object).is_err() {
                return;
            }
            sent += 1;
        };
        // The emptied list still holds its buffer (a ref's size per listed Incident, 1.7 MiB for
        // 10,000) until dropped; it is not kept while waiting for the next list.
        drop(refs);
        current = match newer {
            Some(Some(list)) => list,
            Some(None) => return,
            None => match lists.next().await {
                Some(list) => list,
                None => return,
            },
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::queued_writes::tests::entry;
    use crate::incident::Severity;
    use kube::ResourceExt;

    fn guard(name: &str) -> DeserializeGuard<Incident> {
        DeserializeGuard(Ok(crate::controller::pod::tests::incident(name)))
    }

    #[test]
    fn listed_objects_are_collected_and_later_changes_pass_through() {
        let mut order = ListedOrder::default();
        let (passed, done) = order.observe(watcher::Event::Init);
        assert!(passed.is_none() && done.is_none());
        for name in ["a", "b"] {
            let (passed, done) = order.observe(watcher::Event::InitApply(guard(name)));
            assert!(passed.is_none() && done.is_none(), "listed objects wait");
        }
        let (_, done) = order.observe(watcher::Event::InitDone);
        let names: Vec<_> = done.unwrap().into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["a", "b"]);
        let (passed, done) = order.observe(watcher::Event::Apply(guard("c")));
        assert_eq!(passed.map(|o| o.name_any()).as_deref(), Some("c"));
        assert!(done.is_none());
        // A relist starts afresh.
        order.observe(watcher::Event::Init);
        order.observe(watcher::Event::InitApply(guard("d")));
        let (_, done) = order.observe(watcher::Event::InitDone);
        assert_eq!(done.unwrap().len(), 1);
    }

    #[test]
    fn the_head_of_the_queue_is_reconciled_first_and_finished_ones_last() {
        let refs: Vec<IncidentRef> = ["done", "warn-old", "crit", "info", "warn-new"]
            .iter()
            .map(|name| ObjectRef::new(name).within("shop"))
            .collect();
        let entries = [
            entry("crit", Severity::Critical),
            entry("warn-new", Severity::Warning),
            entry("warn-old", Severity::Warning),
            entry("info", Severity::Info),
        ];
        let sorted = sort_for_admission(refs, |object| {
            entries.iter().find(|e| e.name == object.name).cloned()
        });
        let names: Vec<_> = sorted.iter().map(|r| r.name.as_str()).collect();
        let mut expected: Vec<QueueEntry> = entries.to_vec();
        expected.sort();
        let mut expected: Vec<&str> = expected.iter().map(|e| e.name.as_str()).collect();
        expected.push("done");
        assert_eq!(names, expected);
        assert_eq!(names[0], "crit");
    }

    #[tokio::test]
    async fn refs_go_out_a_window_ahead_of_finished_reconciles() {
        let (lists_tx, lists_rx) = futures::channel::mpsc::unbounded();
        let (wake_tx, mut wake_rx) = futures::channel::mpsc::unbounded();
        let pace = std::sync::Arc::new(ReconcilePace::default());
        let refs: Vec<IncidentRef> = (0..WINDOW * 3)
            .map(|i| ObjectRef::new(&format!("inc-{i:03}")).within("shop"))
            .collect();
        lists_tx.unbounded_send(refs).unwrap();
        let feeder = tokio::spawn({
            let pace = pace.clone();
            async move { feed(lists_rx, wake_tx, &pace).await }
        });
        let mut received = Vec::new();
        for _ in 0..WINDOW {
            received.push(wake_rx.next().await.unwrap());
        }
        tokio::task::yield_now().await;
        assert!(
            wake_rx.try_recv().is_err(),
            "nothing beyond the window before a reconcile finishes"
        );
        for _ in 0..5 {
            pace.finished_one();
        }
        for _ in 0..5 {
            received.push(wake_rx.next().await.unwrap());
        }
        tokio::task::yield_now().await;
        assert!(
            wake_rx.try_recv().is_err(),
            "one ref per finished reconcile"
        );
        assert_eq!(received[0].name, "inc-000");
        assert_eq!(
            received[WINDOW as usize + 4].name,
            format!("inc-{:03}", WINDOW + 4)
        );
        drop(lists_tx);
        for _ in 0..WINDOW * 3 {
            pace.finished_one();
        }
        while wake_rx.next().await.is_some() {}
        feeder.await.unwrap();
    }
}

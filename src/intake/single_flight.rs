//! Per-key single flight with batching: of all tasks working on one key (one alert fingerprint),
//! one at a time leads and does the work for every item queued so far; the others wait for the
//! leader's reply. An alert storm of N notifications for one fingerprint thus costs a few API round
//! trips instead of N, and no two tasks ever read-modify-write one Incident at the same time.
//!
//! A leader that goes away without replying (its HTTP request was cancelled) drops its batch; the
//! waiters see that and queue again, so no item is lost. Items whose own task has gone away are
//! not handed to a leader. Keys are forgotten as soon as no task holds or waits for them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedMutexGuard, oneshot};

/// Tasks grouped by key; `T` is what a task brings, `R` what it gets back.
pub struct Batcher<T, R> {
    slots: Mutex<HashMap<String, Arc<Slot<T, R>>>>,
    /// Source of item ids, so a leader can tell its own item from the others.
    next_id: AtomicU64,
}

impl<T, R> Default for Batcher<T, R> {
    fn default() -> Self {
        Self {
            slots: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        }
    }
}

/// One key's leader lock and queue of items not yet handed to a leader.
struct Slot<T, R> {
    leader: Arc<tokio::sync::Mutex<()>>,
    queue: Mutex<Vec<Queued<T, R>>>,
}

impl<T, R> Default for Slot<T, R> {
    fn default() -> Self {
        Self {
            leader: Arc::default(),
            queue: Mutex::new(Vec::new()),
        }
    }
}

struct Queued<T, R> {
    id: u64,
    item: T,
    reply: oneshot::Sender<R>,
}

/// What [`Batcher::join`] hands back: either a reply from another task's batch, or the lead.
pub enum Turn<T, R> {
    Served(R),
    Lead(Batch<T, R>),
}

/// The items a leader must handle, oldest first, its own among them. Dropping it without
/// [`Batch::finish`] makes the other items' tasks queue again.
pub struct Batch<T, R> {
    items: Vec<T>,
    replies: Vec<oneshot::Sender<R>>,
    /// Index of the leader's own item.
    own: usize,
    // Field order is drop order: release the lead before forgetting the slot.
    _lead: OwnedMutexGuard<()>,
    _slot: SlotRef<T, R>,
}

impl<T, R> Batch<T, R> {
    /// The items, oldest first.
    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// Sends `replies[i]` to the task of item `i` and returns the leader's own reply.
    /// `replies` must hold one reply per item.
    pub fn finish(self, replies: Vec<R>) -> Option<R> {
        let mut own = None;
        for (index, (reply, sender)) in replies.into_iter().zip(self.replies).enumerate() {
            if index == self.own {
                own = Some(reply);
            } else {
                // The task may have gone away (request cancelled); nobody to tell then.
                let _ = sender.send(reply);
            }
        }
        own
    }
}

impl<T, R> Batcher<T, R> {
    /// Queues `item` under `key` and waits until another task's batch replies to it, or until this
    /// task holds the lead: then it gets every item queued so far (its own included) to handle.
    /// Returns `None` only if a leader took the item and went away without replying; the caller
    /// then joins again.
    pub async fn join(self: &Arc<Self>, key: &str, item: T) -> Option<Turn<T, R>> {
        let slot = self.slot(key);
        let (reply, mut receiver) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        slot.slot
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Queued { id, item, reply });
        let lead = tokio::select! {
            biased;
            served = &mut receiver => return served.ok().map(Turn::Served),
            lead = Arc::clone(&slot.slot.leader).lock_owned() => lead,
        };
        // Served while acquiring the lead, or dropped by a leader that went away.
        match receiver.try_recv() {
            Ok(served) => return Some(Turn::Served(served)),
            Err(oneshot::error::TryRecvError::Closed) => return None,
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        let queued = std::mem::take(
            &mut *slot
                .slot
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let mut items = Vec::with_capacity(queued.len());
        let mut replies = Vec::with_capacity(queued.len());
        let mut own = None;
        for queued in queued {
            if queued.reply.is_closed() {
                continue; // its task went away (and it is not ours: ours is still open)
            }
            if queued.id == id {
                own = Some(items.len());
            }
            items.push(queued.item);
            replies.push(queued.reply);
        }
        // Our item is always in the queue here: nobody else could take it without replying to it
        // or dropping its sender, and both were ruled out above.
        let own = own?;
        Some(Turn::Lead(Batch {
            items,
            replies,
            own,
            _lead: lead,
            _slot: slot,
        }))
    }

    /// Keys currently held or waited for.
    pub fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no key is held or waited for.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot(self: &Arc<Self>, key: &str) -> SlotRef<T, R> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(slots.entry(key.to_string()).or_default())
        };
        SlotRef {
            batcher: Arc::clone(self),
            key: key.to_string(),
            slot,
        }
    }
}

/// A task's hold on a key's slot; the last one to go removes the key from the map.
struct SlotRef<T, R> {
    batcher: Arc<Batcher<T, R>>,
    key: String,
    slot: Arc<Slot<T, R>>,
}

impl<T, R> Drop for SlotRef<T, R> {
    fn drop(&mut self) {
        let mut slots = self
            .batcher
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Slots are cloned only under this map lock, so 2 (the map's and ours) means nobody else
        // holds or waits for the key.
        if slots
            .get(&self.key)
            .is_some_and(|slot| Arc::ptr_eq(slot, &self.slot) && Arc::strong_count(slot) == 2)
        {
            slots.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;

    /// Items queued under `key` and not yet handed to a leader.
    fn queued(batcher: &Batcher<u32, u32>, key: &str) -> usize {
        let slots = batcher.slots.lock().unwrap();
        slots
            .get(key)
            .map_or(0, |slot| slot.queue.lock().unwrap().len())
    }

    /// Joins until served or leading; a leader sleeps `work`, then replies `item * 10` to each.
    async fn run(
        batcher: Arc<Batcher<u32, u32>>,
        key: &'static str,
        item: u32,
        work: Duration,
        leaders: Arc<AtomicUsize>,
        inside: Arc<AtomicUsize>,
    ) -> u32 {
        loop {
            match batcher.join(key, item).await {
                None => continue,
                Some(Turn::Served(reply)) => return reply,
                Some(Turn::Lead(batch)) => {
                    leaders.fetch_add(1, Ordering::SeqCst);
                    assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two leaders");
                    tokio::time::sleep(work).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    let replies = batch.items().iter().map(|item| item * 10).collect();
                    return batch.finish(replies).unwrap();
                }
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_item_is_answered_once_by_few_leaders() {
        let batcher = Arc::new(Batcher::default());
        let leaders = Arc::new(AtomicUsize::new(0));
        let inside = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..200)
            .map(|item| {
                tokio::spawn(run(
                    batcher.clone(),
                    "fp",
                    item,
                    Duration::from_millis(20),
                    leaders.clone(),
                    inside.clone(),
                ))
            })
            .collect();
        for (item, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.unwrap(), item as u32 * 10);
        }
        let leaders = leaders.load(Ordering::SeqCst);
        // 200 tasks arriving while leaders sleep 20 ms: batches, not one leader per item.
        assert!(leaders < 100, "{leaders} leaders for 200 items");
        assert!(batcher.is_empty(), "{} keys left", batcher.len());
    }

    #[tokio::test]
    async fn different_keys_lead_independently() {
        let batcher: Arc<Batcher<u32, u32>> = Arc::new(Batcher::default());
        let Some(Turn::Lead(a)) = batcher.join("a", 1).await else {
            panic!("first task must lead");
        };
        let b = tokio::time::timeout(Duration::from_secs(5), batcher.join("b", 2))
            .await
            .expect("key b waited for key a");
        assert!(matches!(b, Some(Turn::Lead(_))));
        assert_eq!(batcher.len(), 2);
        drop(b);
        assert_eq!(batcher.len(), 1);
        assert_eq!(a.finish(vec![10]), Some(10));
        assert!(batcher.is_empty());
    }

    #[tokio::test]
    async fn items_queued_behind_a_leader_form_the_next_batch() {
        let batcher: Arc<Batcher<u32, u32>> = Arc::new(Batcher::default());
        let Some(Turn::Lead(first)) = batcher.join("k", 1).await else {
            panic!("first task must lead");
        };
        let waiters: Vec<_> = (2..=4)
            .map(|item| {
                let batcher = batcher.clone();
                tokio::spawn(async move {
                    match batcher.join("k", item).await {
                        Some(Turn::Lead(batch)) => {
                            let items = batch.items().to_vec();
                            let replies = items.iter().map(|_| items.len() as u32).collect();
                            batch.finish(replies).unwrap()
                        }
                        Some(Turn::Served(reply)) => reply,
                        None => panic!("nobody went away"),
                    }
                })
            })
            .collect();
        // Wait until all three are queued behind the first leader.
        while queued(&batcher, "k") < 3 {
            tokio::task::yield_now().await;
        }
        assert_eq!(first.finish(vec![0]), Some(0));
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap(), 3, "all three in one batch");
        }
        assert!(batcher.is_empty());
    }

    #[tokio::test]
    async fn a_leader_that_goes_away_makes_its_waiters_queue_again() {
        let batcher: Arc<Batcher<u32, u32>> = Arc::new(Batcher::default());
        let Some(Turn::Lead(first)) = batcher.join("k", 1).await else {
            panic!("first task must lead");
        };
        let waiter = {
            let batcher = batcher.clone();
            tokio::spawn(async move {
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    match batcher.join("k", 2).await {
                        None => continue,
                        Some(Turn::Served(reply)) => return (reply, attempts),
                        Some(Turn::Lead(batch)) => {
                            let replies = batch.items().iter().map(|i| i * 100).collect();
                            return (batch.finish(replies).unwrap(), attempts);
                        }
                    }
                }
            })
        };
        while queued(&batcher, "k") == 0 {
            tokio::task::yield_now().await;
        }
        drop(first); // the first leader never replies; the waiter was queued behind it
        let (reply, _) = waiter.await.unwrap();
        assert_eq!(reply, 200);
        assert!(batcher.is_empty());
    }

    #[tokio::test]
    async fn items_of_cancelled_tasks_are_skipped() {
        let batcher: Arc<Batcher<u32, u32>> = Arc::new(Batcher::default());
        let Some(Turn::Lead(first)) = batcher.join("k", 1).await else {
            panic!("first task must lead");
        };
        let cancelled = {
            let batcher = batcher.clone();
            tokio::spawn(async move { batcher.join("k", 2).await.is_some() })
        };
        while queued(&batcher, "k") == 0 {
            tokio::task::yield_now().await;
        }
        cancelled.abort();
        let _ = cancelled.await;
        first.finish(vec![10]);
        let Some(Turn::Lead(next)) = batcher.join("k", 3).await else {
            panic!("nobody else is waiting, so this task leads");
        };
        assert_eq!(
            next.items(),
            &[3],
            "the cancelled task's item is not handed on"
        );
        next.finish(vec![30]);
        assert!(batcher.is_empty());
    }
}

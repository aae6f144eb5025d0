//! Which Events are repeats: the bounded memory behind [`super::events::EventPublisher`].
//!
//! The apply step publishes one Event per transition; an Event with the same regarding object,
//! reason, type and action as one published less than [`SERIES_WINDOW`] ago is a repeat, and
//! becomes the `series` of the first (count and lastObservedTime), as client-go's event
//! broadcaster does (`tools/events`: same key fields, a 6-minute window; the note is not part of
//! the key). Pure: no IO, the clock is an argument.
//!
//! Why not kube-runtime's `Recorder`: it keeps every Event it published for 6 minutes, whole, and
//! sweeps that whole cache on every publish, so a backlog of 10,000 `Queued` Events costs O(n²)
//! time and megabytes of Events nobody will repeat. Here an entry holds only the key and the
//! Event's name, expiry walks from the oldest entry only as far as entries are due, and at most
//! [`SERIES_CAPACITY`] entries are kept (the oldest leaves first: its next repeat starts a new
//! Event, which is what the API server would show after an expiry anyway).

use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};

/// How long an Event can gather repeats (client-go's `finishTime`).
pub const SERIES_WINDOW: SignedDuration = SignedDuration::from_secs(6 * 60);
/// Most Events remembered at once; with one key and name each, well under 1 MiB.
pub const SERIES_CAPACITY: usize = 4096;

/// What makes two Events the same series (reporting controller and instance are the publisher's
/// own, so they need not be in the key).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SeriesKey {
    pub namespace: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
    pub reason: &'static str,
    pub warning: bool,
}

/// What the publisher must do for an Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeriesStep {
    /// Not a repeat: create an Event with this name.
    Create { name: String },
    /// A repeat of the Event `name`: patch its series to `count`, observed now.
    Repeat { name: String, count: i32 },
}

#[derive(Debug)]
struct Entry {
    name: String,
    count: i32,
    /// Position in [`SeriesCache::by_age`].
    age: (Timestamp, u64),
}

/// The Events of the last [`SERIES_WINDOW`], at most `capacity` of them.
#[derive(Debug)]
pub struct SeriesCache {
    capacity: usize,
    window: SignedDuration,
    by_key: HashMap<SeriesKey, Entry>,
    /// Keys by last observation (and an insertion counter, for equal times): the oldest first.
    by_age: BTreeMap<(Timestamp, u64), SeriesKey>,
    next_sequence: u64,
}

impl Default for SeriesCache {
    fn default() -> Self {
        Self::new(SERIES_CAPACITY, SERIES_WINDOW)
    }
}

impl SeriesCache {
    /// A cache keeping at most `capacity` series, each open for `window` after its last Event.
    pub fn new(capacity: usize, window: SignedDuration) -> Self {
        Self {
            capacity: capacity.max(1),
            window,
            by_key: HashMap::new(),
            by_age: BTreeMap::new(),
            next_sequence: 0,
        }
    }

    /// Series remembered now.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no series is remembered.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Records an Event with `key` at `now`; `new_name` names it if it starts a series.
    /// O(log n), plus the entries that expired since the last call.
    pub fn observe(
        &mut self,
        key: SeriesKey,
        now: Timestamp,
        new_name: impl FnOnce() -> String,
    ) -> SeriesStep {
        self.expire(now);
        let age = (now, self.next_sequence);
        self.next_sequence += 1;
        if let Some(entry) = self.by_key.get_mut(&key) {
            self.by_age.remove(&entry.age);
            entry.age = age;
            entry.count = entry.count.saturating_add(1);
            self.by_age.insert(age, key);
            return SeriesStep::Repeat {
                name: entry.name.clone(),
                count: entry.count,
            };
        }
        while self.by_key.len() >= self.capacity {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            self.by_key.remove(&oldest);
        }
        let name = new_name();
        self.by_key.insert(
            key.clone(),
            Entry {
                name: name.clone(),
                count: 1,
                age,
            },
        );
        self.by_age.insert(age, key);
        SeriesStep::Create { name }
    }

    /// Forgets the series of `key` (its Event could not be written: the next one starts afresh).
    pub fn forget(&mut self, key: &SeriesKey) {
        if let Some(entry) = self.by_key.remove(key) {
            self.by_age.remove(&entry.age);
        }
    }

    /// Drops the series whose last Event is at least one window before `now`.
    fn expire(&mut self, now: Timestamp) {
        while let Some(entry) = self.by_age.first_entry() {
            if entry.key().0 + self.window > now {
                break;
            }
            let key = entry.remove();
            self.by_key.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, reason: &'static str) -> SeriesKey {
        SeriesKey {
            namespace: "shop".to_string(),
            kind: "Incident".to_string(),
            name: name.to_string(),
            uid: format!("uid-{name}"),
            reason,
            warning: false,
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn named(name: &str) -> impl FnOnce() -> String {
        let name = name.to_string();
        move || name
    }

    #[test]
    fn repeats_within_the_window_count_on_the_first_event() {
        let mut cache = SeriesCache::default();
        assert_eq!(
            cache.observe(key("a", "Queued"), at(0), named("a.1")),
            SeriesStep::Create {
                name: "a.1".to_string()
            }
        );
        assert_eq!(
            cache.observe(key("a", "Queued"), at(60), named("unused")),
            SeriesStep::Repeat {
                name: "a.1".to_string(),
                count: 2
            }
        );
        // The window runs from the last repeat, not the first Event.
        assert_eq!(
            cache.observe(key("a", "Queued"), at(60 + 359), named("unused")),
            SeriesStep::Repeat {
                name: "a.1".to_string(),
                count: 3
            }
        );
        // Another reason, another object: other series.
        assert!(matches!(
            cache.observe(key("a", "Failed"), at(420), named("a.2")),
            SeriesStep::Create { .. }
        ));
        assert!(matches!(
            cache.observe(key("b", "Queued"), at(420), named("b.1")),
            SeriesStep::Create { .. }
        ));
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn a_series_ends_one_window_after_its_last_event() {
        let mut cache = SeriesCache::default();
        cache.observe(key("a", "Queued"), at(0), named("a.1"));
        cache.observe(key("b", "Queued"), at(100), named("b.1"));
        assert_eq!(
            cache.observe(key("a", "Queued"), at(360), named("a.2")),
            SeriesStep::Create {
                name: "a.2".to_string()
            }
        );
        // `b` was still open at 360 and expires only at 460.
        assert_eq!(cache.len(), 2);
        cache.observe(key("c", "Queued"), at(460), named("c.1"));
        assert_eq!(cache.len(), 2, "b expired, a (360) and c remain");
    }

    #[test]
    fn the_cache_is_bounded_and_drops_the_oldest_series_first() {
        let mut cache = SeriesCache::new(100, SERIES_WINDOW);
        for i in 0..10_000 {
            let name = format!("incident-{i}");
            cache.observe(key(&name, "Queued"), at(0), || format!("{name}.e"));
            assert!(cache.len() <= 100);
        }
        assert_eq!(cache.len(), 100);
        assert_eq!(cache.by_age.len(), 100, "both indexes agree");
        // The newest are remembered, the oldest were dropped.
        assert!(matches!(
            cache.observe(key("incident-9999", "Queued"), at(1), named("x")),
            SeriesStep::Repeat { count: 2, .. }
        ));
        assert!(matches!(
            cache.observe(key("incident-0", "Queued"), at(1), named("x")),
            SeriesStep::Create { .. }
        ));
    }

    #[test]
    fn a_forgotten_series_starts_again() {
        let mut cache = SeriesCache::default();
        cache.observe(key("a", "Queued"), at(0), named("a.1"));
        cache.forget(&key("a", "Queued"));
        assert!(cache.is_empty() && cache.by_age.is_empty());
        assert_eq!(
            cache.observe(key("a", "Queued"), at(1), named("a.2")),
            SeriesStep::Create {
                name: "a.2".to_string()
            }
        );
    }
}

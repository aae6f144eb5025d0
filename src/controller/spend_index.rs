//! The spend guard's view of the cache: what each Incident spent ([`crate::budget::spend_of`]),
//! kept per watch event like the admission queue ([`super::admission_queue`]), so a reconcile that
//! asks the budget walks no cache. [`SpendIndex::snapshot`] sums the rolling window once
//! ([`BudgetSnapshot`]); [`super::cache::ClusterView`] shares that sum until the spend changes or a
//! second has passed, and each question to it is then a map look-up.
//!
//! The accounting stays the one of `src/budget/spend.rs` (from the Incidents' own status, critical
//! up to twice the budget): a held Incident's message and `frees_at` come from [`budget::check`]
//! over the snapshot's spends.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use kube::core::DeserializeGuard;

use super::watch_index::{Index, ObjectKey};
use crate::budget::{
    self, BudgetCheck, BudgetLimits, PriceTable, Spend, spend::CRITICAL_CEILING_FACTOR, spend_of,
};
use crate::incident::{Incident, Severity};

/// How long a [`BudgetSnapshot`] is reused while no Incident's spend changed.
pub const SNAPSHOT_REUSE: Duration = Duration::from_secs(1);

/// Every Incident's spend, by key and by the time it counts from.
#[derive(Debug, Default)]
pub struct SpendIndex {
    default_model: String,
    prices: PriceTable,
    by_key: HashMap<ObjectKey, Spend>,
    by_time: BTreeMap<(Timestamp, ObjectKey), ()>,
    /// Bumped whenever some Incident's spend changes (not on other status changes).
    generation: u64,
}

impl SpendIndex {
    /// An empty index pricing tokens with `prices` (for `default_model` when an Incident names no
    /// model), as `src/budget/spend.rs` does.
    pub fn new(default_model: String, prices: PriceTable) -> Self {
        Self {
            default_model,
            prices,
            ..Self::default()
        }
    }

    /// Changes each time some Incident's spend does.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The spends that count at `now` (the last 24 h), oldest first, summed overall and per
    /// namespace: O(spends in the window), once per change or second (see the module doc).
    pub fn snapshot(&self, now: Timestamp) -> BudgetSnapshot {
        let window =
            SignedDuration::try_from(budget::spend::WINDOW).unwrap_or(SignedDuration::ZERO);
        let start = now - window;
        let mut snapshot = BudgetSnapshot {
            now,
            generation: self.generation,
            ..BudgetSnapshot::default()
        };
        for ((at, key), ()) in self
            .by_time
            .range((start, (String::new(), String::new()))..)
        {
            if *at <= start {
                continue;
            }
            if *at > now {
                break;
            }
            let Some(spend) = self.by_key.get(key) else {
                continue;
            };
            snapshot.operator_usd += spend.cost_usd;
            *snapshot
                .namespace_usd
                .entry(spend.namespace.clone())
                .or_default() += spend.cost_usd;
            snapshot.spends.push(spend.clone());
        }
        snapshot
    }

    fn set(&mut self, key: ObjectKey, spend: Option<Spend>) {
        if self.by_key.get(&key) == spend.as_ref() {
            return;
        }
        if let Some(old) = self.by_key.remove(&key) {
            self.by_time.remove(&(old.at, key.clone()));
        }
        if let Some(spend) = spend {
            self.by_time.insert((spend.at, key.clone()), ());
            self.by_key.insert(key, spend);
        }
        self.generation = self.generation.wrapping_add(1);
    }
}

impl Index for SpendIndex {
    type Object = DeserializeGuard<Incident>;

    fn key_of(object: &Self::Object) -> Option<ObjectKey> {
        Some((object.namespace()?, object.name_any()))
    }

    fn upsert(&mut self, key: ObjectKey, object: &Self::Object) {
        let spend = object
            .0
            .as_ref()
            .ok()
            .and_then(|incident| spend_of(incident, &self.default_model, &self.prices));
        self.set(key, spend);
    }

    fn remove(&mut self, key: &ObjectKey) {
        self.set(key.clone(), None);
    }

    fn keys(&self) -> Vec<ObjectKey> {
        self.by_key.keys().cloned().collect()
    }
}

/// The spend of the rolling window at one moment, summed.
#[derive(Clone, Debug, Default)]
pub struct BudgetSnapshot {
    /// The moment the window ends.
    pub now: Timestamp,
    /// The [`SpendIndex::generation`] it was taken at.
    pub generation: u64,
    /// The spends in the window, oldest first.
    spends: Vec<Spend>,
    operator_usd: f64,
    namespace_usd: HashMap<String, f64>,
}

impl BudgetSnapshot {
    /// Whether an Incident of `namespace` and `severity` may start an agent: two look-ups. Agrees
    /// with [`budget::check`] over the same spends.
    pub fn is_within(&self, namespace: &str, severity: Severity, limits: &BudgetLimits) -> bool {
        let factor = if severity == Severity::Critical {
            CRITICAL_CEILING_FACTOR
        } else {
            1.0
        };
        let operator_ok = limits
            .daily_usd
            .is_none_or(|limit| self.operator_usd < limit * factor);
        let namespace_spent = self.namespace_usd.get(namespace).copied().unwrap_or(0.0);
        let namespace_ok = limits
            .namespace_daily_usd
            .is_none_or(|limit| namespace_spent < limit * factor);
        operator_ok && namespace_ok
    }

    /// The budget's answer with its message and when it frees ([`budget::check`]); the walk over
    /// the window's spends happens only for a held Incident.
    pub fn check(&self, namespace: &str, severity: Severity, limits: &BudgetLimits) -> BudgetCheck {
        if self.is_within(namespace, severity, limits) {
            return BudgetCheck::Within;
        }
        budget::check(&self.spends, namespace, severity, self.now, limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::pod::tests::incident;
    use crate::incident::{IncidentStatus, Usage};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn spent(namespace: &str, name: &str, started: &str, cost: f64) -> DeserializeGuard<Incident> {
        let mut incident = incident(name);
        incident.metadata.namespace = Some(namespace.to_string());
        incident.status = Some(IncidentStatus {
            start_time: Some(Time(at(started))),
            usage: Some(Box::new(Usage {
                cost_usd: Some(cost),
                ..Usage::default()
            })),
            ..IncidentStatus::default()
        });
        DeserializeGuard(Ok(incident))
    }

    fn put(index: &mut SpendIndex, object: &DeserializeGuard<Incident>) {
        let key = SpendIndex::key_of(object).unwrap();
        index.upsert(key, object);
    }

    #[test]
    fn the_snapshot_sums_the_window_and_agrees_with_the_budget_check() {
        let mut index = SpendIndex::new("m".into(), PriceTable::default());
        put(
            &mut index,
            &spent("a", "old", "2026-01-01T00:00:00Z", 100.0),
        );
        put(&mut index, &spent("a", "x", "2026-01-02T08:00:00Z", 6.0));
        put(&mut index, &spent("b", "y", "2026-01-02T09:00:00Z", 3.0));
        let limits = BudgetLimits {
            daily_usd: Some(20.0),
            namespace_daily_usd: Some(5.0),
        };
        let snapshot = index.snapshot(at("2026-01-02T10:00:00Z"));
        // "old" left the window; a has 6 of 5, b 3 of 5.
        assert!(!snapshot.is_within("a", Severity::Warning, &limits));
        assert!(
            snapshot.is_within("a", Severity::Critical, &limits),
            "critical up to 2x"
        );
        assert!(snapshot.is_within("b", Severity::Warning, &limits));
        let held = snapshot.check("a", Severity::Warning, &limits);
        let BudgetCheck::Exhausted {
            spent_usd,
            frees_at,
            ..
        } = held
        else {
            panic!("a is over its budget: {held:?}");
        };
        assert_eq!(spent_usd, 6.0);
        assert_eq!(frees_at, at("2026-01-03T08:00:00Z"));
        assert_eq!(
            snapshot.check("b", Severity::Warning, &limits),
            BudgetCheck::Within
        );
    }

    #[test]
    fn the_generation_moves_only_when_a_spend_does() {
        let mut index = SpendIndex::new("m".into(), PriceTable::default());
        let x = spent("a", "x", "2026-01-02T08:00:00Z", 6.0);
        put(&mut index, &x);
        let first = index.generation();
        put(&mut index, &x);
        assert_eq!(index.generation(), first, "same spend, same generation");
        put(&mut index, &spent("a", "x", "2026-01-02T08:00:00Z", 7.0));
        assert_ne!(index.generation(), first);
        index.remove(&("a".to_string(), "x".to_string()));
        let snapshot = index.snapshot(at("2026-01-02T10:00:00Z"));
        assert!(snapshot.spends.is_empty());
        assert!(index.keys().is_empty());
    }
}

//! Decide step of the spend guard: from the Incidents' own status (no counter in memory, so a
//! restarted controller sees the same spend), how much was spent in the rolling 24 hours, overall
//! and per namespace, and whether a new agent may start.
//!
//! Rule for critical Incidents: they may pass an exhausted budget — a page is worth more than the
//! price of one investigation — but only while the spend stays below twice the budget
//! ([`CRITICAL_CEILING_FACTOR`]), so a storm of critical alerts is still bounded. Their spend
//! counts like any other.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;

use super::prices::PriceTable;
use crate::incident::{Incident, Severity};

/// Length of the rolling budget window.
pub const WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Critical Incidents may start while the spend is below this many times the budget.
pub const CRITICAL_CEILING_FACTOR: f64 = 2.0;

/// The configured budgets; `None` is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BudgetLimits {
    /// Dollars per rolling 24 h for the whole operator.
    pub daily_usd: Option<f64>,
    /// Dollars per rolling 24 h for each namespace.
    pub namespace_daily_usd: Option<f64>,
}

impl BudgetLimits {
    /// Whether any budget is set.
    pub fn is_enabled(&self) -> bool {
        self.daily_usd.is_some() || self.namespace_daily_usd.is_some()
    }
}

/// What one Incident's sessions cost, and when that spend counts.
#[derive(Clone, Debug, PartialEq)]
pub struct Spend {
    pub namespace: String,
    /// When the Incident's latest agent started (its creation time if it never did).
    pub at: Timestamp,
    pub cost_usd: f64,
}

/// The spend of `incident`: `status.usage.costUSD`, or its tokens priced for the model it ran
/// with (`spec.agent.model`, else `default_model`). `None` when it has spent nothing.
pub fn spend_of(incident: &Incident, default_model: &str, prices: &PriceTable) -> Option<Spend> {
    let status = incident.status.as_ref()?;
    let usage = status.usage.as_ref()?;
    let model = incident
        .spec
        .agent
        .as_ref()
        .and_then(|agent| agent.model.as_deref())
        .unwrap_or(default_model);
    let cost_usd = usage
        .cost_usd
        .or_else(|| prices.cost(model, usage))
        .filter(|cost| cost.is_finite() && *cost > 0.0)?;
    let at = status
        .start_time
        .as_ref()
        .or(incident.metadata.creation_timestamp.as_ref())?
        .0;
    Some(Spend {
        namespace: incident.namespace().unwrap_or_default(),
        at,
        cost_usd,
    })
}

/// Which budget stopped an Incident.
#[derive(Clone, Debug, PartialEq)]
pub enum BudgetScope {
    Operator,
    Namespace(String),
}

impl std::fmt::Display for BudgetScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BudgetScope::Operator => write!(f, "operator-wide"),
            BudgetScope::Namespace(namespace) => write!(f, "namespace {namespace}"),
        }
    }
}

/// Whether a new agent may start.
#[derive(Clone, Debug, PartialEq)]
pub enum BudgetCheck {
    Within,
    Exhausted {
        scope: BudgetScope,
        spent_usd: f64,
        limit_usd: f64,
        /// When enough of the spend leaves the window for this Incident to start.
        frees_at: Timestamp,
    },
}

impl BudgetCheck {
    /// One line for the status message, the Event and the notification.
    pub fn message(&self) -> Option<String> {
        match self {
            BudgetCheck::Within => None,
            BudgetCheck::Exhausted {
                scope,
                spent_usd,
                limit_usd,
                frees_at,
            } => Some(format!(
                "{scope} budget exhausted: ${spent_usd:.2} of ${limit_usd:.2} spent in the last 24h; \
                 budget frees up by {frees_at}"
            )),
        }
    }
}

/// Whether an Incident of `namespace` and `severity` may start an agent at `now`, given every
/// Incident's spend.
pub fn check(
    spends: &[Spend],
    namespace: &str,
    severity: Severity,
    now: Timestamp,
    limits: &BudgetLimits,
) -> BudgetCheck {
    let window_start = now - SignedDuration::try_from(WINDOW).unwrap_or(SignedDuration::ZERO);
    let mut in_window: Vec<&Spend> = spends
        .iter()
        .filter(|spend| spend.at > window_start && spend.at <= now)
        .collect();
    in_window.sort_by_key(|spend| spend.at);
    let factor = if severity == Severity::Critical {
        CRITICAL_CEILING_FACTOR
    } else {
        1.0
    };
    let scopes = [
        (BudgetScope::Operator, limits.daily_usd, None),
        (
            BudgetScope::Namespace(namespace.to_string()),
            limits.namespace_daily_usd,
            Some(namespace),
        ),
    ];
    for (scope, limit, only) in scopes {
        let Some(limit_usd) = limit else { continue };
        let counted: Vec<&Spend> = in_window
            .iter()
            .copied()
            .filter(|spend| only.is_none_or(|ns| spend.namespace == ns))
            .collect();
        let spent_usd: f64 = counted.iter().map(|spend| spend.cost_usd).sum();
        let ceiling = limit_usd * factor;
        if spent_usd < ceiling {
            continue;
        }
        // The oldest spend leaves first; the budget frees once the rest is below the ceiling.
        let mut remaining = spent_usd;
        let mut frees_at = now;
        for spend in &counted {
            remaining -= spend.cost_usd;
            frees_at = spend.at + SignedDuration::try_from(WINDOW).unwrap_or(SignedDuration::ZERO);
            if remaining < ceiling {
                break;
            }
        }
        return BudgetCheck::Exhausted {
            scope,
            spent_usd,
            limit_usd,
            frees_at,
        };
    }
    BudgetCheck::Within
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn spend(namespace: &str, when: &str, cost: f64) -> Spend {
        Spend {
            namespace: namespace.into(),
            at: at(when),
            cost_usd: cost,
        }
    }

    #[test]
    fn no_budget_is_always_within() {
        let spends = [spend("a", "2026-01-01T10:00:00Z", 1e9)];
        let now = at("2026-01-01T11:00:00Z");
        let check = check(&spends, "a", Severity::Info, now, &BudgetLimits::default());
        assert_eq!(check, BudgetCheck::Within);
    }

    #[test]
    fn operator_budget_counts_the_last_24h_and_says_when_it_frees() {
        let spends = [
            spend("a", "2025-12-31T09:00:00Z", 50.0), // outside the window
            spend("a", "2026-01-01T01:00:00Z", 4.0),
            spend("b", "2026-01-01T02:00:00Z", 4.0),
            spend("b", "2026-01-01T03:00:00Z", 4.0),
        ];
        let limits = BudgetLimits {
            daily_usd: Some(10.0),
            namespace_daily_usd: None,
        };
        let now = at("2026-01-01T12:00:00Z");
        match check(&spends, "c", Severity::Warning, now, &limits) {
            BudgetCheck::Exhausted {
                scope,
                spent_usd,
                frees_at,
                ..
            } => {
                assert_eq!(scope, BudgetScope::Operator);
                assert_eq!(spent_usd, 12.0);
                // Once the 01:00 spend leaves, 8 < 10.
                assert_eq!(frees_at, at("2026-01-02T01:00:00Z"));
            }
            other => panic!("{other:?}"),
        }
        // A day later the same spends are all outside the window.
        let later = at("2026-01-02T03:00:01Z");
        assert_eq!(
            check(&spends, "c", Severity::Warning, later, &limits),
            BudgetCheck::Within
        );
    }

    #[test]
    fn namespace_budget_only_counts_its_namespace() {
        let spends = [
            spend("a", "2026-01-01T01:00:00Z", 6.0),
            spend("b", "2026-01-01T02:00:00Z", 1.0),
        ];
        let limits = BudgetLimits {
            daily_usd: None,
            namespace_daily_usd: Some(5.0),
        };
        let now = at("2026-01-01T12:00:00Z");
        assert!(matches!(
            check(&spends, "a", Severity::Warning, now, &limits),
            BudgetCheck::Exhausted { scope: BudgetScope::Namespace(ns), .. } if ns == "a"
        ));
        assert_eq!(
            check(&spends, "b", Severity::Warning, now, &limits),
            BudgetCheck::Within
        );
    }

    #[test]
    fn critical_passes_up_to_twice_the_budget() {
        let limits = BudgetLimits {
            daily_usd: Some(10.0),
            namespace_daily_usd: None,
        };
        let now = at("2026-01-01T12:00:00Z");
        let over = [spend("a", "2026-01-01T01:00:00Z", 15.0)];
        assert_eq!(
            check(&over, "a", Severity::Critical, now, &limits),
            BudgetCheck::Within
        );
        assert!(matches!(
            check(&over, "a", Severity::Warning, now, &limits),
            BudgetCheck::Exhausted { .. }
        ));
        let far_over = [spend("a", "2026-01-01T01:00:00Z", 20.0)];
        assert!(matches!(
            check(&far_over, "a", Severity::Critical, now, &limits),
            BudgetCheck::Exhausted { .. }
        ));
        let message = check(&far_over, "a", Severity::Critical, now, &limits)
            .message()
            .unwrap();
        assert!(message.contains("$20.00 of $10.00"), "{message}");
    }
}

//! Spend metrics: tokens and dollars of finished sessions by model and namespace, and how often the
//! budget held an Incident back. Counted by the controller when an Incident finishes.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::incident::Usage;

/// Model, namespace and token kind of a token count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenKindLabels {
    pub model: String,
    pub namespace: String,
    pub kind: String,
}

/// Model and namespace of a cost.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SpendLabels {
    pub model: String,
    pub namespace: String,
}

/// Counters of what the agents spent; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct SpendMetrics {
    tokens: Family<TokenKindLabels, Counter>,
    cost_usd: Family<SpendLabels, Counter<f64, AtomicU64>>,
    budget_holds: Counter,
}

impl SpendMetrics {
    /// Creates the counters and registers them (`tokens_total`, `cost_usd_total`,
    /// `budget_exhausted_total` under the registry's prefix).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "tokens",
            "Tokens of finished agent sessions, by model, namespace and kind",
            metrics.tokens.clone(),
        );
        registry.register(
            "cost_usd",
            "US dollars of finished agent sessions (status.usage.costUSD), by model and namespace",
            metrics.cost_usd.clone(),
        );
        registry.register(
            "budget_exhausted",
            "Times an Incident was held in Queued because a daily budget was spent",
            metrics.budget_holds.clone(),
        );
        metrics
    }

    /// Counts a finished session's usage.
    pub fn count_session(&self, model: &str, namespace: &str, usage: &Usage) {
        for (kind, tokens) in [
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cache_read", usage.cache_read_tokens),
            ("cache_write", usage.cache_write_tokens),
        ] {
            self.tokens
                .get_or_create(&TokenKindLabels {
                    model: model.to_string(),
                    namespace: namespace.to_string(),
                    kind: kind.to_string(),
                })
                .inc_by(tokens);
        }
        if let Some(cost) = usage
            .cost_usd
            .filter(|cost| cost.is_finite() && *cost > 0.0)
        {
            self.cost_usd
                .get_or_create(&SpendLabels {
                    model: model.to_string(),
                    namespace: namespace.to_string(),
                })
                .inc_by(cost);
        }
    }

    /// Counts an Incident newly held back by the budget.
    pub fn count_hold(&self) {
        self.budget_holds.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_counted_by_model_and_namespace() {
        let mut registry = Registry::with_prefix("incident_operator");
        let metrics = SpendMetrics::register(&mut registry);
        metrics.count_session(
            "claude-sonnet-4-5",
            "shop",
            &Usage {
                input_tokens: 1000,
                output_tokens: 10,
                cost_usd: Some(0.25),
                ..Usage::default()
            },
        );
        metrics.count_hold();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for want in [
            r#"incident_operator_tokens_total{model="claude-sonnet-4-5",namespace="shop",kind="input"} 1000"#,
            r#"incident_operator_cost_usd_total{model="claude-sonnet-4-5",namespace="shop"} 0.25"#,
            "incident_operator_budget_exhausted_total 1",
        ] {
            assert!(text.contains(want), "missing {want}:\n{text}");
        }
    }
}

//! Prometheus metrics of the controller: every number an SRE would graph about reconciles, the
//! queue and the agents (tokens, tool calls, outcomes).
//!
//! Names carry the `incident_operator_` prefix (from the registry the caller passes). The gauges
//! (incidents by phase, queue depth, agents running) are recomputed from the caches after every
//! reconcile, so they are right after a restart too.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::incident::{Outcome, Phase, Usage};

/// Label set naming an error kind ([`super::error::Error::metric_label`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub error: String,
}

/// Label set naming an Incident phase.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: String,
}

/// Label set naming why an agent attempt failed (`OOMKilled`, `AgentError`, …).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// Label set naming a token kind (`input`, `output`, `cache_read`, `cache_write`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub kind: String,
}

/// Label set of a finished Incident: its phase and the agent's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FinishLabels {
    pub phase: String,
    pub outcome: String,
}

/// Phases, as label values, in a fixed order so every one is always exported (0 included).
const PHASES: [Phase; 5] = [
    Phase::Pending,
    Phase::Queued,
    Phase::Running,
    Phase::Completed,
    Phase::Failed,
];

/// The controller's metrics; cheap to clone (every metric is an `Arc` inside).
#[derive(Clone, Debug)]
pub struct Metrics {
    pub reconciles: Counter,
    pub reconcile_failures: Family<ErrorLabels, Counter>,
    pub reconcile_duration: Histogram,
    pub incidents: Family<PhaseLabels, Gauge>,
    pub queue_depth: Gauge,
    pub agents_running: Gauge,
    pub agent_pods_created: Counter,
    pub agent_failures: Family<ReasonLabels, Counter>,
    pub incidents_finished: Family<FinishLabels, Counter>,
    pub agent_tokens: Family<TokenLabels, Counter>,
    pub agent_tool_calls: Counter,
    pub agent_turns: Counter,
    pub leader: Gauge,
    /// Tokens and dollars by model and namespace (`src/budget/metrics.rs`).
    pub spend: crate::budget::metrics::SpendMetrics,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            reconciles: Counter::default(),
            reconcile_failures: Family::default(),
            // 1 ms … ~16 s.
            reconcile_duration: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            incidents: Family::default(),
            queue_depth: Gauge::default(),
            agents_running: Gauge::default(),
            agent_pods_created: Counter::default(),
            agent_failures: Family::default(),
            incidents_finished: Family::default(),
            agent_tokens: Family::default(),
            agent_tool_calls: Counter::default(),
            agent_turns: Counter::default(),
            leader: Gauge::default(),
            spend: crate::budget::metrics::SpendMetrics::register(registry),
        };
        registry.register(
            "reconciles",
            "Reconciles of Incidents",
            metrics.reconciles.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Failed reconciles, by error kind",
            metrics.reconcile_failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took",
            metrics.reconcile_duration.clone(),
        );
        registry.register("incidents", "Incidents by phase", metrics.incidents.clone());
        registry.register(
            "queue_depth",
            "Incidents waiting for an agent slot",
            metrics.queue_depth.clone(),
        );
        registry.register(
            "agent_pods_running",
            "Agent pods not finished yet (they hold a slot)",
            metrics.agents_running.clone(),
        );
        registry.register(
            "agent_pods_created",
            "Agent pods created",
            metrics.agent_pods_created.clone(),
        );
        registry.register(
            "agent_failures",
            "Failed agent attempts, by reason",
            metrics.agent_failures.clone(),
        );
        registry.register(
            "incidents_finished",
            "Incidents that reached Completed or Failed, by phase and outcome",
            metrics.incidents_finished.clone(),
        );
        registry.register(
            "agent_tokens",
            "Tokens agents reported for finished Incidents, by kind",
            metrics.agent_tokens.clone(),
        );
        registry.register(
            "agent_tool_calls",
            "Tool calls agents reported for finished Incidents",
            metrics.agent_tool_calls.clone(),
        );
        registry.register(
            "agent_turns",
            "Model turns agents reported for finished Incidents",
            metrics.agent_turns.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader lease (or runs without election)",
            metrics.leader.clone(),
        );
        metrics
    }

    /// Counts one reconcile and its duration.
    pub fn observe_reconcile(&self, took: Duration) {
        self.reconciles.inc();
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    /// Counts a failed reconcile.
    pub fn count_failure(&self, label: &str) {
        self.reconcile_failures
            .get_or_create(&ErrorLabels {
                error: label.to_string(),
            })
            .inc();
    }

    /// Counts a failed agent attempt.
    pub fn count_agent_failure(&self, reason: &str) {
        self.agent_failures
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Counts an Incident that just finished, with what its agent used.
    pub fn count_finished(&self, phase: Phase, outcome: Option<Outcome>, usage: Option<&Usage>) {
        let outcome = outcome
            .and_then(|o| serde_json::to_value(o).ok())
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "none".to_string());
        self.incidents_finished
            .get_or_create(&FinishLabels {
                phase: phase_label(phase).to_string(),
                outcome,
            })
            .inc();
        let Some(usage) = usage else {
            return;
        };
        for (kind, tokens) in [
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cache_read", usage.cache_read_tokens),
            ("cache_write", usage.cache_write_tokens),
        ] {
            self.agent_tokens
                .get_or_create(&TokenLabels {
                    kind: kind.to_string(),
                })
                .inc_by(tokens);
        }
        self.agent_tool_calls.inc_by(u64::from(usage.tool_calls));
        self.agent_turns.inc_by(u64::from(usage.turns));
    }

    /// Sets the gauges from a fresh count.
    pub fn set_gauges(&self, by_phase: &[(Phase, usize)], queue_depth: usize, running: usize) {
        for phase in PHASES {
            let count = by_phase
                .iter()
                .find(|(p, _)| *p == phase)
                .map_or(0, |(_, n)| *n);
            self.incidents
                .get_or_create(&PhaseLabels {
                    phase: phase_label(phase).to_string(),
                })
                .set(saturating_i64(count));
        }
        self.queue_depth.set(saturating_i64(queue_depth));
        self.agents_running.set(saturating_i64(running));
    }
}

fn saturating_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The phase as it appears in the status (and in metric labels).
pub fn phase_label(phase: Phase) -> &'static str {
    match phase {
        Phase::Pending => "Pending",
        Phase::Queued => "Queued",
        Phase::Running => "Running",
        Phase::AwaitingApproval => "AwaitingApproval",
        Phase::Completed => "Completed",
        Phase::Failed => "Failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    fn exposition(registry: &Registry) -> String {
        let mut text = String::new();
        encode(&mut text, registry).unwrap();
        text
    }

    #[test]
    fn everything_is_exported_with_the_prefix() {
        let mut registry = Registry::with_prefix("incident_operator");
        let metrics = Metrics::register(&mut registry);
        metrics.observe_reconcile(Duration::from_millis(3));
        metrics.count_failure("apply_status");
        metrics.count_agent_failure("OOMKilled");
        metrics.set_gauges(&[(Phase::Running, 2)], 4, 2);
        metrics.count_finished(
            Phase::Completed,
            Some(Outcome::LimitReached),
            Some(&Usage {
                turns: 3,
                tool_calls: 5,
                input_tokens: 100,
                output_tokens: 20,
                cache_read_tokens: 7,
                cache_write_tokens: 1,
                cost_usd: None,
            }),
        );
        let text = exposition(&registry);
        for line in [
            "incident_operator_reconciles_total 1",
            "incident_operator_reconcile_failures_total{error=\"apply_status\"} 1",
            "incident_operator_agent_failures_total{reason=\"OOMKilled\"} 1",
            "incident_operator_incidents{phase=\"Running\"} 2",
            "incident_operator_incidents{phase=\"Queued\"} 0",
            "incident_operator_queue_depth 4",
            "incident_operator_agent_pods_running 2",
            "incident_operator_incidents_finished_total{phase=\"Completed\",outcome=\"limit_reached\"} 1",
            "incident_operator_agent_tokens_total{kind=\"input\"} 100",
            "incident_operator_agent_tool_calls_total 5",
            "incident_operator_agent_turns_total 3",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(text.contains("incident_operator_reconcile_duration_seconds_bucket"));
    }
}

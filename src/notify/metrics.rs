//! Notification counters: deliveries sent and given up, by sink.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    pub sink: String,
}

/// Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct NotifyMetrics {
    sent: Family<SinkLabels, Counter>,
    failed: Family<SinkLabels, Counter>,
}

impl NotifyMetrics {
    /// Registers `notifications_sent_total` and `notifications_failed_total`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "notifications_sent",
            "Notifications a sink accepted, by sink",
            metrics.sent.clone(),
        );
        registry.register(
            "notifications_failed",
            "Notifications given up after their retries (or refused by the sink), by sink",
            metrics.failed.clone(),
        );
        metrics
    }

    pub fn count(&self, sink: &str, sent: bool) {
        let labels = SinkLabels {
            sink: sink.to_string(),
        };
        if sent {
            self.sent.get_or_create(&labels).inc();
        } else {
            self.failed.get_or_create(&labels).inc();
        }
    }
}

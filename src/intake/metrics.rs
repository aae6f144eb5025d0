//! Prometheus counters of the webhook intake: what arrived, what was deduplicated or created, and
//! what was turned away or failed. Cheap to clone; every clone counts into the same series.

use std::fmt::Write as _;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::payload::AlertStatus;

/// Label set of [`IntakeMetrics`]' per-status alert counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlertStatusLabels {
    pub status: AlertStatusLabel,
}

/// `status` label value: the alert's status as Alertmanager sent it (`firing`, `resolved`).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct AlertStatusLabel(pub AlertStatus);

impl EncodeLabelValue for AlertStatusLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.0.as_str())
    }
}

/// Label set of the API-calls counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiCallLabels {
    pub call: ApiCall,
}

/// A kind of request the intake makes to the API server.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ApiCall {
    /// List the Incidents of one fingerprint.
    List,
    /// Create an Incident.
    Create,
    /// Server-side apply of `status.alert`.
    ApplyStatus,
}

impl ApiCall {
    /// The call as it appears in the metric's `call` label.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiCall::List => "list",
            ApiCall::Create => "create",
            ApiCall::ApplyStatus => "apply_status",
        }
    }
}

impl EncodeLabelValue for ApiCall {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

/// Label set of the rejected-requests counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectionLabels {
    pub reason: RejectionReason,
}

/// Why a webhook request was refused before any alert in it was looked at.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum RejectionReason {
    /// 401: bearer token missing or wrong.
    Unauthorized,
    /// 415: not `application/json`.
    UnsupportedMediaType,
    /// 413: body above `max_body_bytes`.
    PayloadTooLarge,
    /// 400: the body could not be read.
    UnreadableBody,
    /// 400: not JSON.
    MalformedJson,
    /// 400: `version` missing or not "4".
    UnsupportedVersion,
    /// 400: JSON, version 4, but not the webhook's shape.
    InvalidPayload,
    /// 408: the body did not arrive within the body read timeout.
    BodyTimeout,
    /// 413: more alerts in one notification than the per-request cap.
    TooManyAlerts,
    /// 429: the sender's alerts-per-minute budget is spent.
    RateLimited,
}

impl EncodeLabelValue for RejectionReason {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

impl RejectionReason {
    /// The reason as it appears in the metric and in the JSON error body's `error` field.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionReason::Unauthorized => "unauthorized",
            RejectionReason::UnsupportedMediaType => "unsupported_media_type",
            RejectionReason::PayloadTooLarge => "payload_too_large",
            RejectionReason::UnreadableBody => "unreadable_body",
            RejectionReason::MalformedJson => "malformed_json",
            RejectionReason::UnsupportedVersion => "unsupported_version",
            RejectionReason::InvalidPayload => "invalid_payload",
            RejectionReason::BodyTimeout => "body_timeout",
            RejectionReason::TooManyAlerts => "too_many_alerts",
            RejectionReason::RateLimited => "rate_limited",
        }
    }
}

/// Counters of the webhook intake; register them once with [`IntakeMetrics::register`].
#[derive(Clone, Debug, Default)]
pub struct IntakeMetrics {
    alerts_received: Family<AlertStatusLabels, Counter>,
    alerts_deduplicated: Counter,
    alerts_recurred: Counter,
    incidents_created: Counter,
    resolutions_recorded: Counter,
    alerts_failed: Counter,
    fingerprint_mismatches: Counter,
    requests_rejected: Family<RejectionLabels, Counter>,
    api_calls: Family<ApiCallLabels, Counter>,
}

impl IntakeMetrics {
    /// Registers every counter in `registry`; names start with `intake_` (a `_total` suffix is
    /// added by the encoder), so a caller's prefix, e.g. `incident_operator_`, yields
    /// `incident_operator_intake_alerts_received_total`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "intake_alerts_received",
            "Alerts received from Alertmanager, by alert status",
            self.alerts_received.clone(),
        );
        registry.register(
            "intake_alerts_deduplicated",
            "Firing alerts recorded on an already open Incident instead of creating one",
            self.alerts_deduplicated.clone(),
        );
        registry.register(
            "intake_alerts_recurred",
            "Firing alerts counted on a recently finished Incident (within the recurrence cool-down) instead of starting a new investigation",
            self.alerts_recurred.clone(),
        );
        registry.register(
            "intake_fingerprint_mismatches",
            "Alerts whose sender-supplied fingerprint differed from the one computed from their labels (the computed one is used)",
            self.fingerprint_mismatches.clone(),
        );
        registry.register(
            "intake_incidents_created",
            "Incidents created from firing alerts",
            self.incidents_created.clone(),
        );
        registry.register(
            "intake_resolutions_recorded",
            "Resolved alerts recorded on their Incident",
            self.resolutions_recorded.clone(),
        );
        registry.register(
            "intake_alerts_failed",
            "Alerts that could not be recorded because an API call failed",
            self.alerts_failed.clone(),
        );
        registry.register(
            "intake_requests_rejected",
            "Webhook requests refused before processing, by reason",
            self.requests_rejected.clone(),
        );
        registry.register(
            "intake_api_calls",
            "Requests the intake made to the API server, by call; batching keeps these below one per alert in a storm",
            self.api_calls.clone(),
        );
    }

    pub(crate) fn alert_received(&self, status: AlertStatus) {
        self.alerts_received
            .get_or_create(&AlertStatusLabels {
                status: AlertStatusLabel(status),
            })
            .inc();
    }

    pub(crate) fn alert_deduplicated(&self) {
        self.alerts_deduplicated.inc();
    }

    pub(crate) fn alert_recurred(&self) {
        self.alerts_recurred.inc();
    }

    pub(crate) fn incident_created(&self) {
        self.incidents_created.inc();
    }

    pub(crate) fn resolution_recorded(&self) {
        self.resolutions_recorded.inc();
    }

    pub(crate) fn alert_failed(&self) {
        self.alerts_failed.inc();
    }

    pub(crate) fn fingerprint_mismatch(&self) {
        self.fingerprint_mismatches.inc();
    }

    pub(crate) fn api_call(&self, call: ApiCall) {
        self.api_calls.get_or_create(&ApiCallLabels { call }).inc();
    }

    pub(crate) fn request_rejected(&self, reason: RejectionReason) {
        self.requests_rejected
            .get_or_create(&RejectionLabels { reason })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_appear_in_the_exposition() {
        let metrics = IntakeMetrics::default();
        let mut registry = Registry::with_prefix("incident_operator");
        metrics.register(&mut registry);
        let clone = metrics.clone();
        clone.alert_received(AlertStatus::Firing);
        clone.alert_received(AlertStatus::Firing);
        clone.alert_received(AlertStatus::Resolved);
        metrics.alert_deduplicated();
        metrics.incident_created();
        metrics.request_rejected(RejectionReason::Unauthorized);
        metrics.api_call(ApiCall::ApplyStatus);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "incident_operator_intake_alerts_received_total{status=\"firing\"} 2",
            "incident_operator_intake_alerts_received_total{status=\"resolved\"} 1",
            "incident_operator_intake_alerts_deduplicated_total 1",
            "incident_operator_intake_incidents_created_total 1",
            "incident_operator_intake_requests_rejected_total{reason=\"unauthorized\"} 1",
            "incident_operator_intake_api_calls_total{call=\"apply_status\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn reason_names_match_label_values() {
        let metrics = IntakeMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let reasons = [
            RejectionReason::Unauthorized,
            RejectionReason::UnsupportedMediaType,
            RejectionReason::PayloadTooLarge,
            RejectionReason::UnreadableBody,
            RejectionReason::MalformedJson,
            RejectionReason::UnsupportedVersion,
            RejectionReason::InvalidPayload,
        ];
        for reason in reasons {
            metrics.request_rejected(reason);
        }
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for reason in reasons {
            let line = format!("reason=\"{}\"", reason.as_str());
            assert!(text.contains(&line), "missing {line} in\n{text}");
        }
    }
}

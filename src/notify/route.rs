//! Decide step of notifications: which (sink, event, run) deliveries are due for an Incident —
//! the routes of each sink (events, least severity, namespaces), the Incident's own
//! `spec.notifications` (add, silence, silence all), the age limit, and what
//! `status.notifications` says was already sent or given up. Pure.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;

use super::config::SinkConfig;
use super::events::{NotifyEvent, Occurrence, occurrences};
use crate::incident::Incident;

/// One notification to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// `<sink>/<event>/<run>`, the key in `status.notifications`.
    pub key: String,
    /// Index into the configured sinks.
    pub sink: usize,
    pub event: NotifyEvent,
    pub run: String,
}

/// The key of one delivery in `status.notifications`.
pub fn delivery_key(sink: &str, event: NotifyEvent, run: &str) -> String {
    format!("{sink}/{}/{run}", event.as_str())
}

/// Whether `sink`'s routes select `incident` for `event`.
pub fn selects(sink: &SinkConfig, incident: &Incident, event: NotifyEvent) -> bool {
    if !sink.events.is_empty() && !sink.events.contains(&event) {
        return false;
    }
    let overrides = incident.spec.notifications.as_ref();
    if let Some(overrides) = overrides {
        if overrides.silence_all || overrides.silence.contains(&sink.name) {
            return false;
        }
        if overrides.add.contains(&sink.name) {
            return true;
        }
    }
    if !sink.route_by_default {
        return false;
    }
    // Severity orders critical first, so "at least warning" is `<= Warning`.
    if sink
        .min_severity
        .is_some_and(|least| incident.spec.severity > least)
    {
        return false;
    }
    sink.namespaces.is_empty()
        || incident
            .namespace()
            .is_some_and(|namespace| sink.namespaces.contains(&namespace))
}

/// Deliveries due for `incident` at `now`: every selected sink × event not yet recorded, and not
/// older than `max_age`.
pub fn due(
    incident: &Incident,
    sinks: &[SinkConfig],
    now: Timestamp,
    max_age: Duration,
) -> Vec<Delivery> {
    let recorded: Vec<&str> = incident
        .status
        .as_ref()
        .map(|status| {
            status
                .notifications
                .iter()
                .map(|record| record.key.as_str())
                .collect()
        })
        .unwrap_or_default();
    let oldest = now - SignedDuration::try_from(max_age).unwrap_or(SignedDuration::ZERO);
    let mut deliveries = Vec::new();
    for Occurrence { event, run, at } in occurrences(incident) {
        // No time known: treat as now (the status just showed it).
        if at.is_some_and(|at| at < oldest) {
            continue;
        }
        for (index, sink) in sinks.iter().enumerate() {
            let key = delivery_key(&sink.name, event, &run);
            if recorded.contains(&key.as_str()) || !selects(sink, incident, event) {
                continue;
            }
            deliveries.push(Delivery {
                key,
                sink: index,
                event,
                run: run.clone(),
            });
        }
    }
    deliveries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::{
        IncidentStatus, NotificationOverrides, NotificationRecord, Outcome, Phase, Severity,
    };
    use crate::notify::config::{PagerDutyAction, SinkKind};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn sink(name: &str) -> SinkConfig {
        SinkConfig {
            name: name.into(),
            kind: SinkKind::Slack,
            events: Vec::new(),
            min_severity: None,
            namespaces: Vec::new(),
            route_by_default: true,
            url_file: Some("/u".into()),
            routing_key_file: None,
            signing_key_file: None,
            pagerduty_action: PagerDutyAction::Change,
        }
    }

    const NOW: &str = "2026-01-01T10:10:00Z";

    fn completed(severity: Severity) -> Incident {
        let mut incident: Incident = serde_json::from_value(serde_json::json!({
            "apiVersion": "sre.agentlab.dev/v1alpha1", "kind": "Incident",
            "metadata": {"name": "x", "namespace": "shop"}, "spec": {"title": "t"}
        }))
        .unwrap();
        incident.spec.severity = severity;
        incident.status = Some(IncidentStatus {
            phase: Some(Phase::Completed),
            outcome: Some(Outcome::Reported),
            completion_time: Some(Time("2026-01-01T10:00:00Z".parse().unwrap())),
            ..IncidentStatus::default()
        });
        incident
    }

    fn keys(deliveries: &[Delivery]) -> Vec<&str> {
        deliveries.iter().map(|d| d.key.as_str()).collect()
    }

    #[test]
    fn routes_filter_by_event_severity_and_namespace() {
        let now = NOW.parse().unwrap();
        let hour = Duration::from_secs(3600);
        let mut only_failed = sink("failures");
        only_failed.events = vec![NotifyEvent::Failed];
        let mut critical_only = sink("pages");
        critical_only.min_severity = Some(Severity::Critical);
        let mut other_ns = sink("payments");
        other_ns.namespaces = vec!["payments".into()];
        let sinks = [sink("all"), only_failed, critical_only, other_ns];
        assert_eq!(
            keys(&due(&completed(Severity::Warning), &sinks, now, hour)),
            ["all/completed/initial"]
        );
        assert_eq!(
            keys(&due(&completed(Severity::Critical), &sinks, now, hour)),
            ["all/completed/initial", "pages/completed/initial"]
        );
    }

    #[test]
    fn recorded_old_and_silenced_deliveries_are_not_due() {
        let now: Timestamp = NOW.parse().unwrap();
        let sinks = [sink("a"), sink("b")];
        let mut incident = completed(Severity::Warning);
        incident
            .status
            .as_mut()
            .unwrap()
            .notifications
            .push(NotificationRecord {
                key: "a/completed/initial".into(),
                sink: "a".into(),
                event: "completed".into(),
                run: "initial".into(),
                state: "sent".into(),
                time: Time(now),
                attempts: 1,
                last_error: None,
            });
        assert_eq!(
            keys(&due(&incident, &sinks, now, Duration::from_secs(3600))),
            ["b/completed/initial"]
        );
        // Finished 10 minutes ago: too old for a 5-minute limit.
        assert!(due(&incident, &sinks, now, Duration::from_secs(300)).is_empty());
        incident.spec.notifications = Some(Box::new(NotificationOverrides {
            silence: vec!["b".into()],
            ..NotificationOverrides::default()
        }));
        assert!(due(&incident, &sinks, now, Duration::from_secs(3600)).is_empty());
    }

    #[test]
    fn an_incident_can_add_a_sink_its_routes_would_skip_or_silence_all() {
        let now = NOW.parse().unwrap();
        let mut opt_in = sink("war-room");
        opt_in.route_by_default = false;
        opt_in.min_severity = Some(Severity::Critical);
        let sinks = [opt_in];
        let mut incident = completed(Severity::Info);
        assert!(due(&incident, &sinks, now, Duration::from_secs(3600)).is_empty());
        incident.spec.notifications = Some(Box::new(NotificationOverrides {
            add: vec!["war-room".into()],
            ..NotificationOverrides::default()
        }));
        assert_eq!(
            keys(&due(&incident, &sinks, now, Duration::from_secs(3600))),
            ["war-room/completed/initial"]
        );
        incident.spec.notifications.as_mut().unwrap().silence_all = true;
        assert!(due(&incident, &sinks, now, Duration::from_secs(3600)).is_empty());
    }
}

//! PagerDuty Events API v2 bodies. By default a **change event** (`POST /v2/change/enqueue`): it
//! shows on the service's timeline next to the page the alert already raised, and pages nobody.
//! With `pagerdutyAction: trigger`, an **alert event** (`POST /v2/enqueue`, `event_action:
//! trigger`) whose `dedup_key` is the alert's fingerprint (the Incident's namespace/name for manual
//! Incidents), so PagerDuty folds it into the open incident of that alert.

use serde_json::{Value, json};

use super::{Message, cut};
use crate::notify::config::PagerDutyAction;

/// The public endpoints; a sink's `urlFile` replaces the host part (proxies, tests).
pub const EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
pub const CHANGE_URL: &str = "https://events.pagerduty.com/v2/change/enqueue";
/// `payload.summary` is limited to 1024 characters.
pub const MAX_SUMMARY_CHARS: usize = 1024;
/// PagerDuty's `dedup_key` limit.
pub const MAX_DEDUP_KEY_CHARS: usize = 255;

/// Where `action` events go, given an optional base URL (`https://host[:port]`) from the sink.
pub fn url(action: PagerDutyAction, base: Option<&str>) -> String {
    let path = match action {
        PagerDutyAction::Change => "/v2/change/enqueue",
        PagerDutyAction::Trigger => "/v2/enqueue",
    };
    match base {
        Some(base) => format!("{}{path}", base.trim_end_matches('/')),
        None => match action {
            PagerDutyAction::Change => CHANGE_URL.to_string(),
            PagerDutyAction::Trigger => EVENTS_URL.to_string(),
        },
    }
}

/// The alert's deduplication key in PagerDuty.
pub fn dedup_key(message: &Message) -> String {
    let key = message
        .fingerprint
        .clone()
        .unwrap_or_else(|| format!("{}/{}", message.namespace, message.name));
    cut(&key, MAX_DEDUP_KEY_CHARS)
}

fn summary(message: &Message) -> String {
    let text = match &message.report {
        Some(report) => format!(
            "{}: {} — {}",
            message.event.title(),
            message.title,
            report.summary
        ),
        None => format!("{}: {}", message.event.title(), message.title),
    };
    cut(&text, MAX_SUMMARY_CHARS)
}

fn details(message: &Message) -> Value {
    json!({
        "incident": format!("{}/{}", message.namespace, message.name),
        "event": message.event.as_str(),
        "run": message.run,
        "outcome": message.outcome,
        "rootCause": message.report.as_ref().and_then(|r| r.root_cause.clone()),
        "recommendations": message.report.as_ref().map(|r| r.recommendations.clone()).unwrap_or_default(),
        "usage": message.usage_line(),
        "recurrences": message.recurrences,
        "dedupKey": dedup_key(message),
        "kubectl": message.kubectl_line(),
    })
}

/// The body for `action`, `timestamp` being RFC 3339.
pub fn body(
    message: &Message,
    routing_key: &str,
    action: PagerDutyAction,
    timestamp: &str,
) -> Value {
    match action {
        PagerDutyAction::Change => json!({
            "routing_key": routing_key,
            "payload": {
                "summary": summary(message),
                "timestamp": timestamp,
                "source": "incident-operator",
                "custom_details": details(message),
            },
        }),
        PagerDutyAction::Trigger => json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": dedup_key(message),
            "payload": {
                "summary": summary(message),
                "timestamp": timestamp,
                "source": format!("incident-operator/{}", message.namespace),
                "severity": match message.severity_word() {
                    "critical" => "critical",
                    "warning" => "warning",
                    _ => "info",
                },
                "component": message.name,
                "group": message.namespace,
                "class": message.event.as_str(),
                "custom_details": details(message),
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::Report;
    use crate::notify::sinks::slack::tests::message;

    #[test]
    fn change_events_page_nobody_and_triggers_dedup_on_the_fingerprint() {
        let message = message(Some(Report {
            summary: "x".repeat(5000),
            ..Report::default()
        }));
        let change = body(
            &message,
            "R0UTINGKEY",
            PagerDutyAction::Change,
            "2026-01-01T00:00:00Z",
        );
        assert!(change.get("event_action").is_none());
        assert!(
            change["payload"]["summary"]
                .as_str()
                .unwrap()
                .chars()
                .count()
                <= MAX_SUMMARY_CHARS
        );
        let trigger = body(
            &message,
            "R0UTINGKEY",
            PagerDutyAction::Trigger,
            "2026-01-01T00:00:00Z",
        );
        assert_eq!(trigger["event_action"], "trigger");
        assert_eq!(trigger["dedup_key"], "a1b2c3d4e5f60718");
        assert_eq!(trigger["payload"]["severity"], "critical");
        assert_eq!(url(PagerDutyAction::Change, None), CHANGE_URL);
        assert_eq!(
            url(PagerDutyAction::Trigger, Some("http://127.0.0.1:9/")),
            "http://127.0.0.1:9/v2/enqueue"
        );
    }
}

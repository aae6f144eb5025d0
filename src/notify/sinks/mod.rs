//! Act step, the wire formats: what each kind of sink receives, built from a [`Message`] (the
//! parts of an Incident a person reads). Pure builders; [`super::deliver`] sends them. Each body is
//! redacted as a whole before it leaves (`Redactor::redact_json`).

pub mod pagerduty;
pub mod slack;
pub mod webhook;

use kube::ResourceExt;
use serde::Serialize;

use super::events::NotifyEvent;
use crate::incident::{Incident, Report, Severity, Usage};

/// What one notification says, whatever the sink.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub event: NotifyEvent,
    pub run: String,
    pub namespace: String,
    pub name: String,
    pub title: String,
    pub severity: Severity,
    /// The alert fingerprint, when the Incident came from Alertmanager.
    pub fingerprint: Option<String>,
    pub phase: Option<String>,
    pub outcome: Option<String>,
    /// The status message (which limit, which error, why it waits).
    pub detail: Option<String>,
    pub report: Option<Report>,
    pub usage: Option<Usage>,
    pub recurrences: Option<u32>,
    pub labels: std::collections::BTreeMap<String, String>,
}

impl Message {
    /// The message for `event` of `incident`'s run `run`.
    pub fn of(incident: &Incident, event: NotifyEvent, run: &str) -> Self {
        let status = incident.status.as_ref();
        let text = |value: Option<String>| value.map(|v| v.trim_matches('"').to_string());
        Message {
            event,
            run: run.to_string(),
            namespace: incident.namespace().unwrap_or_default(),
            name: incident.name_any(),
            title: incident.spec.title.clone(),
            severity: incident.spec.severity,
            fingerprint: incident
                .spec
                .alert
                .as_ref()
                .and_then(|alert| alert.fingerprint.clone()),
            phase: text(
                status
                    .and_then(|s| s.phase)
                    .and_then(|p| serde_json::to_string(&p).ok()),
            ),
            outcome: text(
                status
                    .and_then(|s| s.outcome)
                    .and_then(|o| serde_json::to_string(&o).ok()),
            ),
            detail: status.and_then(|s| s.message.clone()),
            report: status.and_then(|s| s.report.as_deref().cloned()),
            usage: status.and_then(|s| s.usage.as_deref().copied()),
            recurrences: status
                .and_then(|s| s.alert.as_ref())
                .and_then(|a| a.recurrences),
            labels: incident.labels().clone(),
        }
    }

    /// The command that shows everything.
    pub fn kubectl_line(&self) -> String {
        format!(
            "kubectl describe incident {} -n {}",
            self.name, self.namespace
        )
    }

    /// Severity as a word.
    pub fn severity_word(&self) -> &'static str {
        match self.severity {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }

    /// "12 turns, 48k tokens, $0.41", or nothing without usage.
    pub fn usage_line(&self) -> Option<String> {
        let usage = self.usage?;
        let mut line = format!(
            "{} turns, {} tool calls, {} tokens",
            usage.turns,
            usage.tool_calls,
            usage.total_tokens()
        );
        if let Some(cost) = usage.cost_usd {
            line.push_str(&format!(", ${cost:.2}"));
        }
        Some(line)
    }
}

/// `text` cut to at most `max_chars` characters, with an ellipsis when cut.
pub fn cut(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let kept: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    format!("{kept}…")
}

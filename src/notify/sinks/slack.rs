//! Slack incoming-webhook body: Block Kit, within Slack's limits — at most 50 blocks, header text
//! 150 characters, section text 3000, at most 10 section fields of 2000 each, at most 10 context
//! elements — with a plain `text` fallback for notifications and clients without blocks.

use serde_json::{Value, json};

use super::{Message, cut};
use crate::notify::events::NotifyEvent;

pub const MAX_BLOCKS: usize = 50;
pub const MAX_HEADER_CHARS: usize = 150;
pub const MAX_SECTION_CHARS: usize = 3000;
pub const MAX_FIELDS: usize = 10;
pub const MAX_FIELD_CHARS: usize = 2000;
/// Evidence and recommendations shown; the rest is one `kubectl describe` away.
const MAX_LIST_ITEMS: usize = 5;

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(text, MAX_SECTION_CHARS)}})
}

fn list(heading: &str, items: &[String]) -> Option<Value> {
    if items.is_empty() {
        return None;
    }
    let mut text = format!("*{heading}*");
    for item in items.iter().take(MAX_LIST_ITEMS) {
        text.push_str("\n• ");
        text.push_str(item);
    }
    if items.len() > MAX_LIST_ITEMS {
        text.push_str(&format!("\n… and {} more", items.len() - MAX_LIST_ITEMS));
    }
    Some(section(&text))
}

/// The Slack message for `message`.
pub fn body(message: &Message) -> Value {
    let icon = match (message.event, message.severity_word()) {
        (NotifyEvent::Completed, _) => "✅",
        (NotifyEvent::Recurred, _) => "🔁",
        (NotifyEvent::BudgetExhausted, _) => "💸",
        (NotifyEvent::AwaitingApproval, _) => "✋",
        (_, "critical") => "🚨",
        _ => "⚠️",
    };
    let header = format!("{icon} {}: {}", message.event.title(), message.title);
    let mut fields = vec![
        format!("*Severity*\n{}", message.severity_word()),
        format!("*Incident*\n`{}/{}`", message.namespace, message.name),
    ];
    if let Some(outcome) = &message.outcome {
        fields.push(format!("*Outcome*\n{outcome}"));
    }
    if let Some(usage) = message.usage_line() {
        fields.push(format!("*Usage*\n{usage}"));
    }
    if let Some(recurrences) = message.recurrences {
        fields.push(format!("*Recurrences*\n{recurrences}"));
    }
    let fields: Vec<Value> = fields
        .iter()
        .take(MAX_FIELDS)
        .map(|text| json!({"type": "mrkdwn", "text": cut(text, MAX_FIELD_CHARS)}))
        .collect();

    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": cut(&header, MAX_HEADER_CHARS), "emoji": true}}),
        json!({"type": "section", "fields": fields}),
    ];
    if let Some(report) = &message.report {
        blocks.push(section(&format!("*Summary*\n{}", report.summary)));
        if let Some(root_cause) = &report.root_cause {
            blocks.push(section(&format!("*Root cause*\n{root_cause}")));
        }
        blocks.extend(list("Evidence", &report.evidence));
        blocks.extend(list("Recommendations", &report.recommendations));
        blocks.extend(list("Actions taken", &report.actions_taken));
    } else if let Some(detail) = &message.detail {
        blocks.push(section(detail));
    }
    blocks.truncate(MAX_BLOCKS - 2);
    blocks.push(json!({"type": "divider"}));
    blocks.push(json!({"type": "context", "elements": [
        {"type": "mrkdwn", "text": cut(&format!("`{}`", message.kubectl_line()), MAX_FIELD_CHARS)}
    ]}));

    let fallback = match &message.report {
        Some(report) => format!("{header} — {}", report.summary),
        None => header.clone(),
    };
    json!({"text": cut(&fallback, MAX_SECTION_CHARS), "blocks": blocks})
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::incident::{Report, Severity};

    pub(crate) fn message(report: Option<Report>) -> Message {
        Message {
            event: NotifyEvent::Completed,
            run: "initial".into(),
            namespace: "shop".into(),
            name: "checkout-5xx".into(),
            title: "checkout 5xx above 5%".into(),
            severity: Severity::Critical,
            fingerprint: Some("a1b2c3d4e5f60718".into()),
            phase: Some("Completed".into()),
            outcome: Some("reported".into()),
            detail: None,
            report,
            usage: None,
            recurrences: None,
            labels: Default::default(),
        }
    }

    #[test]
    fn huge_reports_stay_within_the_block_kit_limits() {
        let report = Report {
            summary: "s".repeat(10_000),
            root_cause: Some("r".repeat(10_000)),
            evidence: (0..50)
                .map(|i| format!("evidence {i} {}", "e".repeat(500)))
                .collect(),
            recommendations: (0..50).map(|i| format!("rec {i}")).collect(),
            ..Report::default()
        };
        let mut long_title = message(Some(report));
        long_title.title = "t".repeat(500);
        let body = body(&long_title);
        let blocks = body["blocks"].as_array().unwrap();
        assert!(blocks.len() <= MAX_BLOCKS);
        let header = blocks[0]["text"]["text"].as_str().unwrap();
        assert!(header.chars().count() <= MAX_HEADER_CHARS);
        for block in blocks {
            if let Some(text) = block["text"]["text"].as_str() {
                assert!(text.chars().count() <= MAX_SECTION_CHARS);
            }
        }
        let text = body.to_string();
        assert!(text.contains("kubectl describe incident checkout-5xx -n shop"));
        assert!(text.contains("… and 45 more"));
    }

    #[test]
    fn report_parts_are_all_there() {
        let body = body(&message(Some(Report {
            summary: "DATABASE_URL lost in the deploy".into(),
            root_cause: Some("renamed config key".into()),
            evidence: vec!["kubectl logs: connection refused".into()],
            recommendations: vec!["roll back".into()],
            ..Report::default()
        })));
        let text = body.to_string();
        for want in [
            "Investigation completed",
            "critical",
            "DATABASE_URL lost",
            "renamed config key",
            "connection refused",
            "roll back",
            "shop/checkout-5xx",
        ] {
            assert!(text.contains(want), "missing {want}: {text}");
        }
        assert!(body["text"].as_str().unwrap().contains("DATABASE_URL"));
    }
}

//! Decide step of the recurrence memory: what a new generation of an alert is told about its
//! predecessors — the last few finished Incidents of the same fingerprint: when, outcome, summary,
//! root cause, actions and recommendations. Redacted and bounded here, before the intake writes
//! them into `spec.predecessors`; the agent's brief renders them (`src/agent/prompt.rs`).

use crate::audit::redact::Redactor;
use crate::incident::{Incident, Predecessor};

/// Most predecessors recalled.
pub const MAX_PREDECESSORS: usize = 3;
/// Most bytes of all recalled predecessors together (as JSON), so memory never crowds the brief.
pub const MAX_MEMORY_BYTES: usize = 4096;
/// Most characters of a summary or root cause.
const MAX_TEXT_CHARS: usize = 1024;
/// Most characters of one action or recommendation; at most five of each are kept.
const MAX_ITEM_CHARS: usize = 300;
const MAX_ITEMS: usize = 5;

/// What is worth recalling of a finished Incident; `None` while it is not finished.
pub fn predecessor_of(incident: &Incident) -> Option<Predecessor> {
    let status = incident.status.as_ref()?;
    if !status.phase.is_some_and(|phase| phase.is_finished()) {
        return None;
    }
    let report = status.report.as_ref();
    Some(Predecessor {
        name: incident.metadata.name.clone()?,
        finished_at: status
            .completion_time
            .as_ref()
            .map(|time| time.0.to_string()),
        outcome: status.outcome,
        summary: report
            .map(|report| report.summary.clone())
            .or_else(|| status.message.clone()),
        root_cause: report.and_then(|report| report.root_cause.clone()),
        actions_taken: report
            .map(|report| report.actions_taken.clone())
            .unwrap_or_default(),
        recommendations: report
            .map(|report| report.recommendations.clone())
            .unwrap_or_default(),
        recurrences: status.alert.as_ref().and_then(|alert| alert.recurrences),
    })
}

/// The predecessors to write into a new generation: newest first (`candidates` as
/// `(generation, predecessor)`), at most [`MAX_PREDECESSORS`], every text redacted and cut, and
/// the oldest dropped until the whole fits [`MAX_MEMORY_BYTES`].
pub fn recall(mut candidates: Vec<(u32, Predecessor)>, redactor: &Redactor) -> Vec<Predecessor> {
    candidates.sort_by_key(|candidate| std::cmp::Reverse(candidate.0));
    let mut recalled: Vec<Predecessor> = candidates
        .into_iter()
        .take(MAX_PREDECESSORS)
        .map(|(_, predecessor)| bounded(predecessor, redactor))
        .collect();
    while recalled.len() > 1 && json_len(&recalled) > MAX_MEMORY_BYTES {
        recalled.pop();
    }
    if let Some(only) = recalled.first_mut()
        && json_len(std::slice::from_ref(only)) > MAX_MEMORY_BYTES
    {
        // One predecessor alone is too big: keep its root cause and summary, shorter.
        only.actions_taken.clear();
        only.recommendations.clear();
        only.summary = only.summary.as_deref().map(|text| cut(text, 512));
        only.root_cause = only.root_cause.as_deref().map(|text| cut(text, 512));
    }
    recalled
}

fn json_len(predecessors: &[Predecessor]) -> usize {
    serde_json::to_string(predecessors).map_or(0, |text| text.len())
}

fn bounded(predecessor: Predecessor, redactor: &Redactor) -> Predecessor {
    let text =
        |value: Option<String>| value.map(|text| cut(&redactor.redact(&text), MAX_TEXT_CHARS));
    let items = |values: Vec<String>| {
        values
            .into_iter()
            .take(MAX_ITEMS)
            .map(|item| cut(&redactor.redact(&item), MAX_ITEM_CHARS))
            .collect()
    };
    Predecessor {
        summary: text(predecessor.summary),
        root_cause: text(predecessor.root_cause),
        actions_taken: items(predecessor.actions_taken),
        recommendations: items(predecessor.recommendations),
        ..predecessor
    }
}

/// `text` cut to `max_chars` characters, with an ellipsis when cut.
fn cut(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars.saturating_sub(1)) {
        Some((end, _)) if text.chars().count() > max_chars => format!("{}…", &text[..end]),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::{IncidentStatus, Outcome, Phase, Report};

    fn finished_incident(name: &str, root_cause: &str) -> Incident {
        let mut incident: Incident = serde_json::from_value(serde_json::json!({
            "apiVersion": "sre.agentlab.dev/v1alpha1", "kind": "Incident",
            "metadata": {"name": name}, "spec": {"title": "t"}
        }))
        .unwrap();
        incident.status = Some(IncidentStatus {
            phase: Some(Phase::Completed),
            outcome: Some(Outcome::Reported),
            report: Some(Box::new(Report {
                summary: "checkout pods were OOM-killed".into(),
                root_cause: Some(root_cause.into()),
                recommendations: vec!["raise the memory limit".into()],
                ..Report::default()
            })),
            ..IncidentStatus::default()
        });
        incident
    }

    #[test]
    fn only_finished_incidents_are_recalled() {
        let mut incident = finished_incident("a", "memory leak");
        let predecessor = predecessor_of(&incident).unwrap();
        assert_eq!(predecessor.root_cause.as_deref(), Some("memory leak"));
        assert_eq!(predecessor.outcome, Some(Outcome::Reported));
        incident.status.as_mut().unwrap().phase = Some(Phase::Running);
        assert_eq!(predecessor_of(&incident), None);
    }

    #[test]
    fn recall_is_newest_first_bounded_and_redacted() {
        let secret = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ";
        let candidates: Vec<(u32, Predecessor)> = (1..=5)
            .map(|generation| {
                let incident = finished_incident(
                    &format!("a-{generation}"),
                    &format!("leak {generation}; key {secret} {}", "x".repeat(3000)),
                );
                (generation, predecessor_of(&incident).unwrap())
            })
            .collect();
        let recalled = recall(candidates, &Redactor::default());
        assert!(!recalled.is_empty() && recalled.len() <= MAX_PREDECESSORS);
        assert_eq!(recalled[0].name, "a-5");
        assert!(
            json_len(&recalled) <= MAX_MEMORY_BYTES,
            "{}",
            json_len(&recalled)
        );
        let text = serde_json::to_string(&recalled).unwrap();
        assert!(!text.contains(secret), "secret leaked: {text}");
        assert!(text.contains("leak 5"), "{text}");
    }

    #[test]
    fn cut_counts_characters() {
        assert_eq!(cut("héllo", 10), "héllo");
        assert_eq!(cut("héllo", 3), "hé…");
    }
}

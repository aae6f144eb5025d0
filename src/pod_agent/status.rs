//! The status the agent writes about itself, as pure functions of the session's progress: the
//! progress patch while it runs and the final patch at the end. Both are server-side apply bodies
//! for the status subresource under the agent's own field manager, so they never touch the fields
//! the controller owns (conditions, attempts, times).

use serde_json::{Value, json};

use crate::agent::SessionResult;
use crate::audit::{AuditEvent, AuditRecord, Redacted, Redactor};
use crate::incident::{
    AgentTermination, AuditSummary, Incident, Phase, TERMINATION_MESSAGE_MAX_BYTES, Usage,
};
use kube::Resource;

/// Field manager of everything the agent writes to an Incident's status.
pub const AGENT_FIELD_MANAGER: &str = "incident-operator-agent";
/// Longest `lastCommand` kept in status.
const LAST_COMMAND_MAX_CHARS: usize = 256;

/// What the agent knows while the session runs, folded from its audit records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    pub session_id: Option<String>,
    pub usage: Usage,
    pub last_command: Option<Redacted<String>>,
}

impl Progress {
    /// Folds one audit record into the progress. The record comes redacted from the audit writer;
    /// `redactor` seals the command again so the status can only ever receive sealed text.
    pub fn observe(&mut self, record: &AuditRecord, redactor: &Redactor) {
        match &record.event {
            AuditEvent::SessionStart { .. } => self.session_id = Some(record.session_id.clone()),
            AuditEvent::ModelResponse { turn, usage, .. } => {
                self.usage.turns = *turn;
                self.usage.input_tokens += usage.input_tokens;
                self.usage.output_tokens += usage.output_tokens;
                self.usage.cache_read_tokens += usage.cache_read_tokens;
                self.usage.cache_write_tokens += usage.cache_write_tokens;
            }
            AuditEvent::ToolCall { command, .. } => {
                self.usage.tool_calls += 1;
                self.last_command =
                    Some(redactor.seal_text(command).shorten(LAST_COMMAND_MAX_CHARS));
            }
            AuditEvent::SessionEnd { usage, .. } => self.usage = *usage,
            _ => {}
        }
    }
}

fn envelope(status: Value) -> Value {
    json!({
        "apiVersion": Incident::api_version(&()),
        "kind": Incident::kind(&()),
        "status": status,
    })
}

/// The apply body for a progress update.
pub fn progress_patch(progress: &Progress) -> Value {
    let mut status = json!({
        "phase": Phase::Running,
        "usage": progress.usage,
    });
    if let Some(id) = &progress.session_id {
        status["sessionId"] = json!(id);
    }
    if let Some(cmd) = &progress.last_command {
        status["lastCommand"] = json!(cmd);
    }
    envelope(status)
}

/// The audit summary written to status: where the document is, its hash and the latest entries.
pub fn audit_summary(result: &SessionResult) -> AuditSummary {
    let (path, sha256) = match &result.audit {
        Some(a) => (a.path.display().to_string(), Some(a.sha256.clone())),
        None => (result.jsonl_path.display().to_string(), None),
    };
    AuditSummary {
        path,
        sha256,
        chain_head: result.audit.as_ref().map(|a| a.chain_head.clone()),
        record_count: result.audit.as_ref().map(|a| a.record_count),
        entries: result.status_entries.get().clone(),
        truncated: result.status_entries_truncated,
    }
}

/// The apply body for the end of the session. `phase` stays Running: the controller moves it to
/// Completed or Failed when it sees how the pod ended.
pub fn final_patch(result: &SessionResult, last_command: Option<&Redacted<String>>) -> Value {
    let mut status = json!({
        "phase": Phase::Running,
        "sessionId": result.session_id,
        "outcome": result.outcome,
        "usage": result.usage,
        "audit": audit_summary(result),
    });
    if let Some(report) = &result.report {
        status["report"] = json!(report);
    }
    if let Some(message) = &result.message {
        status["message"] = json!(message.shorten(1024));
    }
    if let Some(cmd) = last_command {
        status["lastCommand"] = json!(cmd);
    }
    envelope(status)
}

/// The compact result for the pod's termination message, within Kubernetes' 4096-byte limit.
pub fn termination_message(result: &SessionResult) -> String {
    let mut t = AgentTermination {
        session_id: result.session_id.clone(),
        outcome: Some(result.outcome),
        message: result
            .message
            .as_ref()
            .map(|m| m.shorten(512).as_str().to_string()),
        usage: Some(result.usage),
        summary: result.report.as_ref().map(|r| shorten(&r.summary, 2048)),
        resolved: result.report.as_ref().map(|r| r.resolved),
        confidence: result.report.as_ref().map(|r| r.confidence),
        audit_path: Some(audit_summary(result).path),
        audit_sha256: result.audit.as_ref().map(|a| a.sha256.clone()),
        audit_chain_head: result.audit.as_ref().map(|a| a.chain_head.clone()),
        audit_record_count: result.audit.as_ref().map(|a| a.record_count),
    };
    // Shrink the free-text fields until it fits; the structured ones are small.
    for limit in [1024, 256, 0] {
        let text = serde_json::to_string(&t).unwrap_or_default();
        if text.len() <= TERMINATION_MESSAGE_MAX_BYTES {
            return text;
        }
        t.summary = t.summary.map(|s| shorten(&s, limit));
        t.message = t.message.map(|s| shorten(&s, limit));
    }
    serde_json::to_string(&t).unwrap_or_default()
}

fn shorten(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::{Confidence, Outcome, Report};
    use std::time::Duration;

    fn result(summary: &str) -> SessionResult {
        SessionResult {
            session_id: "2026-01-28T09-42-35-2886f5df".into(),
            outcome: Outcome::Reported,
            message: None,
            report: Some(
                Redactor::default()
                    .seal(&Report {
                        summary: summary.into(),
                        confidence: Confidence::High,
                        resolved: true,
                        ..Default::default()
                    })
                    .unwrap(),
            ),
            usage: Usage {
                turns: 3,
                tool_calls: 2,
                ..Default::default()
            },
            audit: None,
            jsonl_path: "/var/lib/incident-operator/audit/x.jsonl".into(),
            status_entries: Redacted::empty(),
            status_entries_truncated: false,
            duration: Duration::from_secs(1),
        }
    }

    #[test]
    fn final_patch_carries_report_and_keeps_phase_running() {
        let command = Redactor::default().seal_text("kubectl get pods");
        let patch = final_patch(&result("db down"), Some(&command));
        assert_eq!(patch["kind"], "Incident");
        assert_eq!(patch["apiVersion"], "sre.agentlab.dev/v1alpha1");
        assert_eq!(patch["status"]["phase"], "Running");
        assert_eq!(patch["status"]["outcome"], "reported");
        assert_eq!(patch["status"]["report"]["summary"], "db down");
        assert_eq!(patch["status"]["usage"]["turns"], 3);
        assert_eq!(patch["status"]["lastCommand"], "kubectl get pods");
        // It must deserialize as the CRD's status type.
        let _: crate::incident::IncidentStatus =
            serde_json::from_value(patch["status"].clone()).unwrap();
    }

    #[test]
    fn the_audit_summary_carries_the_chain_head_and_the_document_hash() {
        let mut finished = result("db down");
        finished.audit = Some(crate::audit::FinishedAudit {
            path: "/audit/s.json".into(),
            sha256: "a".repeat(64),
            chain_head: "b".repeat(64),
            record_count: 7,
        });
        let patch = final_patch(&finished, None);
        let audit = &patch["status"]["audit"];
        assert_eq!(audit["sha256"], "a".repeat(64));
        assert_eq!(audit["chainHead"], "b".repeat(64));
        assert_eq!(audit["recordCount"], 7);
        let back: AgentTermination = serde_json::from_str(&termination_message(&finished)).unwrap();
        assert_eq!(back.audit_chain_head, Some("b".repeat(64)));
        assert_eq!(back.audit_record_count, Some(7));
        // Without a final document there is no head to vouch for.
        let patch = final_patch(&result("db down"), None);
        assert!(patch["status"]["audit"].get("chainHead").is_none());
    }

    #[test]
    fn termination_message_fits_the_kubernetes_limit() {
        let huge = "x".repeat(100_000);
        let text = termination_message(&result(&huge));
        assert!(
            text.len() <= TERMINATION_MESSAGE_MAX_BYTES,
            "{}",
            text.len()
        );
        let back: AgentTermination = serde_json::from_str(&text).unwrap();
        assert_eq!(back.outcome, Some(Outcome::Reported));
        assert_eq!(back.resolved, Some(true));
        assert!(back.summary.unwrap().starts_with("xxx"));
    }
}

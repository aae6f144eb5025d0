//! How a session looks on a terminal: one line per step while it runs (turn, command, exit code,
//! duration, tokens) on stderr, and the final report on stdout, as text or JSON.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use crate::agent::{AgentSettings, SessionObserver, SessionResult};
use crate::audit::{AuditEvent, AuditRecord};
use crate::incident::{Incident, Outcome};

/// Prints progress lines to stderr as audit records arrive.
pub struct TerminalProgress {
    enabled: bool,
}

impl TerminalProgress {
    pub fn new(enabled: bool) -> Self {
        Self { enabled }
    }

    /// The line printed before the first turn.
    pub fn header(&self, incident: &Incident, settings: &AgentSettings, audit_dir: &Path) {
        if !self.enabled {
            return;
        }
        self.line(&format!(
            "investigating \"{}\" ({:?}, {:?} mode) with {} · max {} turns · {} s · audit in {}",
            incident.spec.title,
            incident.spec.severity,
            incident.spec.mode,
            settings.model,
            settings.max_turns,
            settings.session_timeout.as_secs(),
            audit_dir.display()
        ));
    }

    fn line(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
    }
}

impl SessionObserver for TerminalProgress {
    fn observe(&mut self, record: &AuditRecord) {
        if !self.enabled {
            return;
        }
        if let AuditEvent::SessionStart { .. } = record.event {
            self.line(&format!("session {}", record.session_id));
        } else if let Some(text) = progress_line(&record.event) {
            self.line(&text);
        }
    }
}

/// One progress line for an audit event, or `None` for events not worth a line.
pub fn progress_line(event: &AuditEvent) -> Option<String> {
    Some(match event {
        AuditEvent::SessionStart { .. } | AuditEvent::ModelRequest { .. } => return None,
        AuditEvent::ModelResponse {
            turn,
            stop_reason,
            usage,
            duration_ms,
            attempts,
            ..
        } => {
            let retries = if *attempts > 1 {
                format!(" · {} attempts", attempts)
            } else {
                String::new()
            };
            format!(
                "[turn {turn}] model {:.1} s · tokens in {} out {} cache read {} write {} · stop {stop_reason}{retries}",
                *duration_ms as f64 / 1000.0,
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_tokens,
                usage.cache_write_tokens,
            )
        }
        AuditEvent::ToolCall {
            turn,
            command,
            result,
            ..
        } => {
            let status = match (result["exitCode"].as_i64(), result["signal"].as_i64()) {
                (Some(code), _) => format!("exit {code}"),
                (None, Some(sig)) => format!("signal {sig}"),
                _ => "no exit code".into(),
            };
            let timed_out = if result["timedOut"].as_bool() == Some(true) {
                " · TIMED OUT"
            } else {
                ""
            };
            format!(
                "[turn {turn}] $ {} → {status} · {} ms · {} B out{timed_out}",
                one_line(command, 100),
                result["durationMs"].as_u64().unwrap_or(0),
                result["stdoutBytes"].as_u64().unwrap_or(0),
            )
        }
        AuditEvent::ToolError {
            turn, tool, error, ..
        } => format!("[turn {turn}] ✗ {tool}: {}", one_line(error, 160)),
        AuditEvent::PlanViolation { turn, .. } | AuditEvent::PlanStep { turn, .. } => {
            format!("[turn {turn}] plan: {}", event.short_detail())
        }
        AuditEvent::Error { message, .. } => format!("error: {}", one_line(message, 300)),
        AuditEvent::Report { .. } => "report filed".into(),
        AuditEvent::SessionEnd {
            outcome,
            message,
            usage,
            duration_ms,
        } => format!(
            "session ended: {} after {} turns, {} commands, {} tokens, {:.1} s{}",
            outcome_word(*outcome),
            usage.turns,
            usage.tool_calls,
            usage.total_tokens(),
            *duration_ms as f64 / 1000.0,
            message
                .as_ref()
                .map(|m| format!(" — {m}"))
                .unwrap_or_default()
        ),
    })
}

fn outcome_word(outcome: Outcome) -> &'static str {
    outcome.as_str()
}

fn one_line(text: &str, max_chars: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    match flat.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

/// The result as a person reads it.
pub fn result_text(result: &SessionResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n== Outcome: {} ({} turns, {} commands, {} tokens)",
        outcome_word(result.outcome),
        result.usage.turns,
        result.usage.tool_calls,
        result.usage.total_tokens()
    );
    if let Some(message) = &result.message {
        let _ = writeln!(out, "{message}");
    }
    if let Some(report) = &result.report {
        let _ = writeln!(out, "\n== Summary\n{}", report.summary);
        if let Some(cause) = &report.root_cause {
            let _ = writeln!(out, "\n== Root cause\n{cause}");
        }
        for (title, items) in [
            ("Evidence", &report.evidence),
            ("Actions taken", &report.actions_taken),
            ("Recommendations", &report.recommendations),
        ] {
            if !items.is_empty() {
                let _ = writeln!(out, "\n== {title}");
                for item in items {
                    let _ = writeln!(out, "- {item}");
                }
            }
        }
        if let Some(plan) = &report.plan {
            let _ = writeln!(
                out,
                "\n== Proposed plan ({}, risk {}): nothing in it has run",
                crate::plan::plan_hash(plan),
                plan.risk.as_str()
            );
            for (i, step) in plan.steps.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{}. $ {}\n   why: {}",
                    i + 1,
                    step.command,
                    step.purpose
                );
                let _ = writeln!(out, "   expect: {}", step.expected_effect);
                let _ = writeln!(out, "   verify: {}", step.verify);
                if let Some(rollback) = &step.rollback {
                    let when = if step.rollback_on_failure {
                        "on failure"
                    } else {
                        "by hand"
                    };
                    let _ = writeln!(out, "   rollback ({when}): {rollback}");
                }
            }
        }
        let _ = writeln!(
            out,
            "\nConfidence: {:?} · Resolved: {}",
            report.confidence, report.resolved
        );
    }
    let _ = writeln!(out, "\nSession: {}", result.session_id);
    match &result.audit {
        Some(audit) => {
            let _ = writeln!(
                out,
                "Audit: {} (sha256 {})",
                audit.path.display(),
                audit.sha256
            );
        }
        None => {
            let _ = writeln!(out, "Audit log: {}", result.jsonl_path.display());
        }
    }
    out
}

/// The result as a machine reads it.
pub fn result_json(result: &SessionResult) -> Value {
    json!({
        "sessionId": result.session_id,
        "outcome": result.outcome,
        "message": result.message,
        "report": result.report,
        "usage": result.usage,
        "auditPath": result.audit.as_ref().map(|a| a.path.display().to_string()),
        "auditSha256": result.audit.as_ref().map(|a| a.sha256.clone()),
        "auditLog": result.jsonl_path.display().to_string(),
        "durationMs": u64::try_from(result.duration.as_millis()).unwrap_or(u64::MAX),
    })
}

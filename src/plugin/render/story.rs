//! The `show` screen: the sections in the order an on-call engineer asks — what is it and where
//! does it stand, what did the agent find, what does it want to do (plan, approval), what did it
//! do (timeline), what did it cost, has the alert come back, what did the controller say (Events),
//! and where the full audit is and how to check it.

use std::fmt::Write as _;

use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;

use super::RenderOptions;
use super::style::{Tone, outcome_tone, phase_tone};
use super::text::{
    age, clean, clock, count, duration, millis_between, money, serde_name as lower, time_of_day,
    truncate, wrap,
};
use crate::incident::{AuditStatusEntry, Incident, IncidentStatus, Phase, Report};
use crate::plan::{ApprovalRecord, Decision, ProposedPlan};
use crate::plugin::client::event_time;

/// Events, or why they could not be read.
pub enum EventsView<'a> {
    Events(&'a [Event]),
    Unavailable(String),
}

/// Renders the whole screen; every line fits `options.width` (before colour codes).
pub fn render(incident: &Incident, events: EventsView<'_>, options: &RenderOptions) -> String {
    let mut out = Screen {
        text: String::new(),
        options,
    };
    let empty = IncidentStatus::default();
    let status = incident.status.as_ref().unwrap_or(&empty);
    header(&mut out, incident, status);
    report(&mut out, status);
    if let Some(plan) = &status.plan {
        plan_section(&mut out, plan);
    }
    if let Some(approval) = &status.approval {
        approval_section(&mut out, approval);
    }
    timeline(&mut out, status);
    usage(&mut out, status);
    alert(&mut out, status);
    events_section(&mut out, events);
    audit(&mut out, incident, status);
    out.text
}

struct Screen<'a> {
    text: String,
    options: &'a RenderOptions,
}

impl Screen<'_> {
    fn line(&mut self, line: &str) {
        self.text.push_str(line.trim_end());
        self.text.push('\n');
    }

    fn heading(&mut self, title: &str) {
        self.text.push('\n');
        let heading = self.options.painter.heading(title);
        self.line(&heading);
    }

    /// `label` then `value` wrapped under it, aligned after the label column.
    fn field(&mut self, label: &str, value: &str) {
        let first = format!("  {label:<16}");
        let indent = " ".repeat(first.len());
        let lines = wrap(value, self.options.width, &first, &indent);
        for (i, line) in lines.into_iter().enumerate() {
            if i == 0 {
                let painted = format!(
                    "{}{}",
                    self.options.painter.label(&first),
                    &line[first.len()..]
                );
                self.line(&painted);
            } else {
                self.line(&line);
            }
        }
    }

    fn bullets(&mut self, items: &[String], numbered: bool) {
        for (i, item) in items.iter().enumerate() {
            let marker = if numbered {
                format!("    {}. ", i + 1)
            } else {
                "    - ".to_string()
            };
            let indent = " ".repeat(marker.len());
            for line in wrap(item, self.options.width, &marker, &indent) {
                self.line(&line);
            }
        }
    }

    /// `pairs` on as few lines as fit, `Label value` separated by three spaces.
    fn facts(&mut self, pairs: &[(&str, String, Tone)]) {
        let mut line = String::new();
        let mut plain_len = 0;
        for (label, value, tone) in pairs {
            let value = clean(value, false);
            let gap = if plain_len == 0 { "  " } else { "   " };
            let plain = format!("{gap}{label} {value}");
            if plain_len > 0 && plain_len + super::text::width_of(&plain) > self.options.width {
                self.line(&line);
                line.clear();
                plain_len = 0;
            }
            let gap = if plain_len == 0 { "  " } else { "   " };
            let painter = &self.options.painter;
            let _ = write!(
                line,
                "{gap}{} {}",
                painter.label(label),
                painter.tone(*tone, &value)
            );
            plain_len += super::text::width_of(&format!("{gap}{label} {value}"));
        }
        if plain_len > 0 {
            self.line(&line);
        }
    }
}

fn header(out: &mut Screen<'_>, incident: &Incident, status: &IncidentStatus) {
    let width = out.options.width;
    let name = format!(
        "{}/{}",
        incident.namespace().unwrap_or_default(),
        incident.name_any()
    );
    let title = format!("Incident {name}: {}", clean(&incident.spec.title, false));
    let title = out.options.painter.heading(&truncate(&title, width));
    out.line(&title);
    let phase = phase_label(status.phase);
    let mut pairs = vec![
        (
            "Severity",
            lower(&incident.spec.severity),
            severity_tone(incident),
        ),
        ("Phase", phase.to_string(), phase_tone(status.phase)),
        (
            "Outcome",
            status.outcome.map_or("-", |o| o.as_str()).to_string(),
            outcome_tone(status.outcome),
        ),
    ];
    if let Some(report) = &status.report {
        pairs.push((
            "Resolved",
            if report.resolved { "yes" } else { "no" }.to_string(),
            if report.resolved {
                Tone::Good
            } else {
                Tone::Waiting
            },
        ));
    }
    pairs.push(("Mode", lower(&incident.spec.mode), Tone::Quiet));
    out.facts(&pairs);
    let now = out.options.now;
    let mut times = Vec::new();
    if let Some(created) = &incident.metadata.creation_timestamp {
        times.push((
            "Created",
            format!("{} ago", age(created.0, now)),
            Tone::Quiet,
        ));
    }
    if let Some(start) = &status.start_time {
        times.push(("Started", clock(start.0), Tone::Quiet));
        let end = status.completion_time.as_ref().map_or(now, |t| t.0);
        let running = if status.completion_time.is_none() {
            " so far"
        } else {
            ""
        };
        times.push((
            "Duration",
            format!("{}{running}", duration(millis_between(start.0, end))),
            Tone::Quiet,
        ));
    }
    if let Some(attempts) = status.attempts {
        times.push(("Attempts", attempts.to_string(), Tone::Quiet));
    }
    out.facts(&times);
    let source = match &incident.spec.alert {
        Some(alert) => format!("{} ({})", lower(&incident.spec.source), alert.name),
        None => lower(&incident.spec.source),
    };
    out.facts(&[("Source", source, Tone::Quiet)]);
    if let Some(message) = &status.message {
        out.text.push('\n');
        out.field("Message", message);
    }
}

fn report(out: &mut Screen<'_>, status: &IncidentStatus) {
    out.heading("Report");
    let Some(report) = &status.report else {
        let why = match status.phase {
            Some(Phase::Queued) => "none yet: waiting for a free agent slot",
            Some(Phase::Running) => "none yet: the agent is still investigating",
            Some(Phase::Failed) => "none: the agent did not file one",
            Some(Phase::Completed) => "none: the session ended without one",
            _ => "none yet",
        };
        out.line(&format!("  {why}"));
        return;
    };
    render_report(out, report);
}

fn render_report(out: &mut Screen<'_>, report: &Report) {
    out.field("Summary", &report.summary);
    if let Some(cause) = &report.root_cause {
        out.field("Root cause", cause);
    }
    out.field("Confidence", &lower(&report.confidence));
    if !report.evidence.is_empty() {
        out.line(&format!("  {}", out.options.painter.label("Evidence")));
        out.bullets(&report.evidence, false);
    }
    if !report.actions_taken.is_empty() {
        out.line(&format!("  {}", out.options.painter.label("Actions taken")));
        out.bullets(&report.actions_taken, false);
    }
    if !report.recommendations.is_empty() {
        out.line(&format!(
            "  {}",
            out.options.painter.label("Recommendations")
        ));
        out.bullets(&report.recommendations, true);
    }
}

fn plan_section(out: &mut Screen<'_>, proposed: &ProposedPlan) {
    out.heading("Plan");
    let plan = &proposed.plan;
    out.field("Risk", plan.risk.as_str());
    if let Some(detail) = &plan.risk_detail {
        out.field("Risk detail", detail);
    }
    out.field("Hash", &proposed.plan_hash);
    out.field(
        "Proposed",
        &format!(
            "{}, expires {}",
            clock(proposed.proposed_at.0),
            clock(proposed.expires_at.0)
        ),
    );
    for (i, step) in plan.steps.iter().enumerate() {
        let marker = format!("  {}. $ ", i + 1);
        let indent = " ".repeat(marker.len());
        for line in wrap(&step.command, out.options.width, &marker, &indent) {
            out.line(&line);
        }
        let detail_indent = " ".repeat(marker.len() - 2);
        let mut detail = |label: &str, text: &str| {
            let first = format!("{detail_indent}{label}: ");
            for line in wrap(text, out.options.width, &first, &" ".repeat(first.len())) {
                out.line(&line);
            }
        };
        detail("why", &step.purpose);
        detail("expect", &step.expected_effect);
        detail("verify", &step.verify);
        if let Some(rollback) = &step.rollback {
            let when = if step.rollback_on_failure {
                " (runs if the step fails)"
            } else {
                ""
            };
            detail("rollback", &format!("{rollback}{when}"));
        }
    }
}

fn approval_section(out: &mut Screen<'_>, approval: &ApprovalRecord) {
    out.heading("Approval");
    let (decision, tone) = match approval.decision {
        Decision::Approve => ("approved", Tone::Good),
        Decision::Reject => ("rejected", Tone::Bad),
    };
    let line = format!(
        "{decision} by {} at {} ({})",
        clean(&approval.approver, false),
        clock(approval.time.0),
        clean(&approval.name, false)
    );
    for (i, wrapped) in wrap(&line, out.options.width, "  ", "    ")
        .into_iter()
        .enumerate()
    {
        // Only the decision word is coloured, and it starts the first line.
        let painted = if i == 0 {
            wrapped.replacen(decision, &out.options.painter.tone(tone, decision), 1)
        } else {
            wrapped
        };
        out.line(&painted);
    }
    if let Some(comment) = &approval.comment {
        out.field("Comment", comment);
    }
    out.field("Plan hash", &approval.plan_hash);
    if let Some(session) = &approval.execution_session_id {
        out.field("Execution", session);
    }
}

fn timeline(out: &mut Screen<'_>, status: &IncidentStatus) {
    let Some(audit) = &status.audit else {
        out.heading("Timeline");
        out.line("  no audit entries yet");
        return;
    };
    let shown = audit.entries.len();
    let title = match (audit.truncated, audit.record_count) {
        (true, Some(total)) => format!("Timeline (latest {shown} of {total} audit records)"),
        (true, None) => format!("Timeline (latest {shown} audit records)"),
        (false, _) => "Timeline".to_string(),
    };
    out.heading(&title);
    let start = audit
        .entries
        .first()
        .and_then(|e| e.time.parse::<jiff::Timestamp>().ok());
    for entry in &audit.entries {
        timeline_entry(out, entry, start);
    }
    if audit.entries.is_empty() {
        out.line("  no audit entries yet");
    }
}

fn timeline_entry(out: &mut Screen<'_>, entry: &AuditStatusEntry, start: Option<jiff::Timestamp>) {
    let painter = out.options.painter;
    let offset = match (start, entry.time.parse::<jiff::Timestamp>()) {
        (Some(start), Ok(at)) => match millis_between(start, at) {
            0 => "+0s".to_string(),
            ms => format!("+{}", duration(ms)),
        },
        _ => String::new(),
    };
    let kind = match entry.event.as_str() {
        "session_start" => "start",
        "model_request" => "ask",
        "model_response" => "model",
        "tool_call" => "run",
        "tool_error" => "tool err",
        "report" => "report",
        "session_end" => "end",
        "error" => "error",
        other => other,
    };
    let mut facts = Vec::new();
    let mut tone = Tone::Quiet;
    if let Some(code) = entry.exit_code {
        facts.push(format!("exit {code}"));
        if code != 0 {
            tone = Tone::Bad;
        }
    }
    if entry.timed_out == Some(true) {
        facts.push("timed out".to_string());
        tone = Tone::Bad;
    }
    if entry.output_truncated == Some(true) {
        facts.push("output truncated".to_string());
    }
    if let Some(ms) = entry.duration_ms {
        facts.push(duration(ms));
    }
    if matches!(entry.event.as_str(), "error" | "tool_error") {
        tone = Tone::Bad;
    }
    let facts = facts.join(", ");
    let prefix = format!(
        "  {:>8} {:>7}  {kind:<8} ",
        time_of_day(&entry.time),
        offset
    );
    let detail = clean(&entry.detail, false);
    let detail = if entry.event == "tool_call" {
        format!("$ {detail}")
    } else {
        detail
    };
    let suffix = if facts.is_empty() {
        String::new()
    } else {
        format!("  ({facts})")
    };
    const MIN_DETAIL: usize = 12;
    let width = out.options.width;
    let facts_fit = prefix.len() + MIN_DETAIL + super::text::width_of(&suffix) <= width;
    let room = if facts_fit {
        width - prefix.len() - super::text::width_of(&suffix)
    } else {
        // Narrow: the facts go on a line of their own, under the detail.
        width.saturating_sub(prefix.len()).max(4)
    };
    let detail = truncate(&detail, room);
    let painted_facts = format!("({})", painter.tone(tone, &facts));
    if suffix.is_empty() {
        out.line(&format!("{}{detail}", painter.label(&prefix)));
    } else if facts_fit {
        out.line(&format!(
            "{}{detail}  {painted_facts}",
            painter.label(&prefix)
        ));
    } else {
        out.line(&format!("{}{detail}", painter.label(&prefix)));
        let facts_len = super::text::width_of(&facts) + 2;
        let indent = " ".repeat(prefix.len().min(width.saturating_sub(facts_len)).max(4));
        for line in wrap(&format!("({facts})"), width, &indent, &indent) {
            let painted = painter.tone(tone, line.trim_start());
            out.line(&format!("{indent}{painted}"));
        }
    }
}

fn usage(out: &mut Screen<'_>, status: &IncidentStatus) {
    out.heading("Usage");
    let Some(usage) = &status.usage else {
        out.line("  nothing used yet");
        return;
    };
    out.facts(&[
        ("Turns", usage.turns.to_string(), Tone::Quiet),
        ("Tool calls", usage.tool_calls.to_string(), Tone::Quiet),
        (
            "Cost",
            usage
                .cost_usd
                .map_or("unknown (no price for the model)".to_string(), money),
            Tone::Quiet,
        ),
    ]);
    out.facts(&[
        ("Tokens in", count(usage.input_tokens), Tone::Quiet),
        ("out", count(usage.output_tokens), Tone::Quiet),
        ("cache read", count(usage.cache_read_tokens), Tone::Quiet),
        ("cache write", count(usage.cache_write_tokens), Tone::Quiet),
    ]);
}

fn alert(out: &mut Screen<'_>, status: &IncidentStatus) {
    let Some(alert) = &status.alert else {
        return;
    };
    out.heading("Alert");
    let mut pairs = vec![
        ("Fired", format!("{} times", alert.occurrences), Tone::Quiet),
        ("first", clock(alert.first_seen.0), Tone::Quiet),
        ("last", clock(alert.last_seen.0), Tone::Quiet),
    ];
    if let Some(resolved) = &alert.resolved_at {
        pairs.push(("Resolved", clock(resolved.0), Tone::Good));
    }
    out.facts(&pairs);
    if let Some(recurrences) = alert.recurrences {
        let mut pairs = vec![(
            "Recurrences",
            recurrences.to_string(),
            if recurrences > 0 {
                Tone::Waiting
            } else {
                Tone::Quiet
            },
        )];
        if let Some(last) = &alert.last_recurrence {
            pairs.push(("last", clock(last.0), Tone::Quiet));
        }
        out.facts(&pairs);
    }
}

fn events_section(out: &mut Screen<'_>, events: EventsView<'_>) {
    out.heading("Events");
    let events = match events {
        EventsView::Events(events) => events,
        EventsView::Unavailable(why) => {
            out.line(&truncate(
                &format!("  not shown: {}", clean(&why, false)),
                out.options.width,
            ));
            return;
        }
    };
    if events.is_empty() {
        out.line("  none");
        return;
    }
    let now = out.options.now;
    for event in events {
        let when = event_time(event).map_or("-".to_string(), |t| age(t, now));
        let kind = event.type_.as_deref().unwrap_or("Normal");
        let tone = if kind == "Warning" {
            Tone::Bad
        } else {
            Tone::Quiet
        };
        let repeats = event
            .series
            .as_ref()
            .map(|s| format!(" (x{})", s.count))
            .unwrap_or_default();
        let prefix = format!(
            "  {when:>5}  {kind:<7}  {:<22} ",
            clean(event.reason.as_deref().unwrap_or(""), false)
        );
        let note = format!(
            "{}{repeats}",
            clean(event.note.as_deref().unwrap_or(""), false)
        );
        let note = truncate(
            &note,
            out.options.width.saturating_sub(prefix.len()).max(10),
        );
        let painter = out.options.painter;
        out.line(&format!("{}{note}", painter.tone(tone, &prefix)));
    }
}

fn audit(out: &mut Screen<'_>, incident: &Incident, status: &IncidentStatus) {
    out.heading("Audit");
    if let Some(session) = &status.session_id {
        out.field("Session", session);
    }
    let Some(audit) = &status.audit else {
        out.line("  no audit recorded yet");
        return;
    };
    out.field("Path", &audit.path);
    if let Some(sha) = &audit.sha256 {
        out.field("Document sha256", sha);
    }
    if let Some(head) = &audit.chain_head {
        let records = audit
            .record_count
            .map(|n| format!(" ({n} records)"))
            .unwrap_or_default();
        out.field("Chain head", &format!("{head}{records}"));
        // Both read the records through the audit API (no PVC access needed).
        out.field(
            "Verify",
            &format!("kubectl incident verify {}", incident.name_any()),
        );
    }
    out.field(
        "Read",
        &format!("kubectl incident audit {}", incident.name_any()),
    );
}

fn severity_tone(incident: &Incident) -> Tone {
    match incident.spec.severity {
        crate::incident::Severity::Critical => Tone::Bad,
        crate::incident::Severity::Warning => Tone::Waiting,
        crate::incident::Severity::Info => Tone::Quiet,
    }
}

/// The phase as the status spells it (`Pending` before the controller saw it).
pub(crate) fn phase_label(phase: Option<Phase>) -> &'static str {
    phase.map_or("Pending", crate::controller::metrics::phase_label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::render::text::width_of;

    fn hostile_incident() -> Incident {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "sre.agentlab.dev/v1alpha1",
            "kind": "Incident",
            "metadata": {"name": "x", "namespace": "shop"},
            "spec": {"title": "a title that is long enough to need cutting at narrow widths, surely"},
            "status": {
                "phase": "Running",
                "startTime": "2026-01-28T09:00:00Z",
                "report": {
                    "summary": "clears the screen \u{1b}[2J then moves \u{1b}[1;1H and hides \u{202e}txet",
                    "evidence": ["averyveryverylongwordwithoutanyspacesthatmustbecutsomewhereinthemiddle"],
                    "confidence": "low",
                    "resolved": false,
                },
                "audit": {"path": "/a", "entries": [
                    {"seq": 1, "time": "2026-01-28T09:00:01Z", "event": "tool_call",
                     "detail": "kubectl get pods \u{1b}[31m --all-namespaces -o wide", "exitCode": 2,
                     "durationMs": 10, "timedOut": true, "outputTruncated": true},
                ]},
            },
        }))
        .unwrap()
    }

    #[test]
    fn every_line_fits_the_width_and_no_escape_reaches_the_terminal() {
        let now = "2026-01-28T10:00:00Z".parse().unwrap();
        for width in [40, 47, 60, 81, 133] {
            let options = RenderOptions::plain(width, now);
            let text = render(&hostile_incident(), EventsView::Events(&[]), &options);
            for line in text.lines() {
                assert!(width_of(line) <= width, "{width}: {line:?}");
            }
            assert!(
                !text.contains('\u{1b}') && !text.contains('\u{202e}'),
                "{text}"
            );
            assert!(text.contains("Duration 1h00m so far"), "{text}");
        }
    }

    #[test]
    fn unreadable_events_are_a_note_not_an_error() {
        let now = "2026-01-28T10:00:00Z".parse().unwrap();
        let text = render(
            &hostile_incident(),
            EventsView::Unavailable("forbidden: cannot list events".into()),
            &RenderOptions::plain(100, now),
        );
        assert!(
            text.contains("Events\n  not shown: forbidden: cannot list events\n"),
            "{text}"
        );
    }
}

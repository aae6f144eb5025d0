//! The `list` table: `kubectl get inc` columns plus duration, cost and recurrences; the title gets
//! what width is left.

use kube::ResourceExt;

use super::RenderOptions;
use super::story::phase_label;
use super::style::{outcome_tone, phase_tone};
use super::text::{age, clean, duration, millis_between, money, serde_name, truncate, width_of};
use crate::incident::Incident;

/// Columns between two columns.
const GAP: &str = "   ";

/// Renders `incidents` as a table (a namespace column with `all_namespaces`).
pub fn render(incidents: &[Incident], all_namespaces: bool, options: &RenderOptions) -> String {
    if incidents.is_empty() {
        return "No incidents found.\n".to_string();
    }
    let mut header: Vec<&str> = Vec::new();
    if all_namespaces {
        header.push("NAMESPACE");
    }
    header.extend([
        "NAME", "PHASE", "SEVERITY", "OUTCOME", "DURATION", "COST", "RECUR", "AGE", "TITLE",
    ]);
    let rows: Vec<Vec<String>> = incidents
        .iter()
        .map(|incident| row(incident, all_namespaces, options.now))
        .collect();
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate().take(columns - 1) {
            widths[i] = widths[i].max(width_of(cell));
        }
    }
    let fixed: usize = widths[..columns - 1].iter().sum::<usize>() + GAP.len() * (columns - 1);
    let title_room = options.width.saturating_sub(fixed).max(10);
    let phase_column = usize::from(all_namespaces) + 1;
    let outcome_column = phase_column + 2;
    let mut out = String::new();
    let cells: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    push_row(&mut out, &cells, &widths, title_room, |_, text| {
        text.to_string()
    });
    for (row, incident) in rows.iter().zip(incidents) {
        let status = incident.status.as_ref();
        let phase = status.and_then(|s| s.phase);
        let outcome = status.and_then(|s| s.outcome);
        push_row(&mut out, row, &widths, title_room, |column, text| {
            if column == phase_column {
                options.painter.tone(phase_tone(phase), text)
            } else if column == outcome_column {
                options.painter.tone(outcome_tone(outcome), text)
            } else {
                text.to_string()
            }
        });
    }
    out
}

/// One line: every cell padded to its column (padding outside the paint), the last truncated.
fn push_row(
    out: &mut String,
    cells: &[String],
    widths: &[usize],
    title_room: usize,
    paint: impl Fn(usize, &str) -> String,
) {
    let last = cells.len() - 1;
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i == last {
            line.push_str(&truncate(cell, title_room));
        } else {
            let padding = widths[i].saturating_sub(width_of(cell));
            line.push_str(&paint(i, cell));
            line.push_str(&" ".repeat(padding));
            line.push_str(GAP);
        }
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

fn row(incident: &Incident, all_namespaces: bool, now: jiff::Timestamp) -> Vec<String> {
    let status = incident.status.clone().unwrap_or_default();
    let mut row = Vec::new();
    if all_namespaces {
        row.push(incident.namespace().unwrap_or_default());
    }
    row.push(incident.name_any());
    row.push(phase_label(status.phase).to_string());
    row.push(serde_name(&incident.spec.severity));
    row.push(status.outcome.map_or("-", |o| o.as_str()).to_string());
    row.push(match &status.start_time {
        Some(start) => {
            let end = status.completion_time.as_ref().map_or(now, |t| t.0);
            duration(millis_between(start.0, end))
        }
        None => "-".to_string(),
    });
    row.push(
        status
            .usage
            .and_then(|u| u.cost_usd)
            .map_or("-".to_string(), money),
    );
    row.push(
        status
            .alert
            .as_ref()
            .and_then(|a| a.recurrences)
            .unwrap_or(0)
            .to_string(),
    );
    row.push(
        incident
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or("-".to_string(), |t| age(t.0, now)),
    );
    row.push(clean(&incident.spec.title, false));
    row
}

//! What the model reads back from a shell command: a short header (exit code or signal, timeout,
//! duration) and each stream bounded to its head and tail. The audit keeps the full capture; the
//! model gets a bounded view so one noisy command cannot flood its context or the token budget.

use std::fmt::Write as _;

use crate::shell::{ShellOutcome, head_tail};

/// Formats a command's outcome for a `tool_result`, at most about `max_bytes` long.
pub fn format_shell_result(outcome: &ShellOutcome, max_bytes: usize) -> String {
    let mut out = String::new();
    match (outcome.exit_code, outcome.signal) {
        (Some(code), _) => {
            let _ = write!(out, "exit_code: {code}");
        }
        (None, Some(signal)) => {
            let _ = write!(out, "exit_code: none (killed by signal {signal})");
        }
        (None, None) => out.push_str("exit_code: unknown"),
    }
    let _ = writeln!(
        out,
        "\ntimed_out: {}\nduration_ms: {}",
        outcome.timed_out, outcome.duration_ms
    );
    if outcome.timed_out {
        out.push_str("The command hit its timeout and its process group was killed.\n");
    }
    // Give each stream half the room unless the other one needs less.
    let half = max_bytes / 2;
    let (out_room, err_room) = if outcome.stderr.len() < half {
        (max_bytes - outcome.stderr.len(), outcome.stderr.len())
    } else if outcome.stdout.len() < half {
        (outcome.stdout.len(), max_bytes - outcome.stdout.len())
    } else {
        (half, half)
    };
    push_stream(
        &mut out,
        "stdout",
        &outcome.stdout,
        outcome.stdout_bytes,
        outcome.stdout_truncated,
        out_room,
    );
    push_stream(
        &mut out,
        "stderr",
        &outcome.stderr,
        outcome.stderr_bytes,
        outcome.stderr_truncated,
        err_room,
    );
    out
}

fn push_stream(out: &mut String, name: &str, text: &str, total: u64, cut: bool, room: usize) {
    if text.is_empty() {
        let _ = writeln!(out, "--- {name}: (empty) ---");
        return;
    }
    let shown = head_tail(text, room.max(256));
    let note = if cut || shown.len() < text.len() {
        ", shortened to head and tail"
    } else {
        ""
    };
    let _ = writeln!(out, "--- {name} ({total} bytes{note}) ---");
    out.push_str(&shown);
    if !shown.ends_with('\n') {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(stdout: &str, stderr: &str) -> ShellOutcome {
        ShellOutcome {
            stdout: stdout.into(),
            stderr: stderr.into(),
            exit_code: Some(1),
            signal: None,
            timed_out: false,
            duration_ms: 7,
            stdout_truncated: false,
            stderr_truncated: false,
            stdout_bytes: stdout.len() as u64,
            stderr_bytes: stderr.len() as u64,
        }
    }

    #[test]
    fn header_and_streams() {
        let text = format_shell_result(&outcome("hello\n", "oops\n"), 1024);
        assert!(
            text.starts_with("exit_code: 1\ntimed_out: false\nduration_ms: 7\n"),
            "{text}"
        );
        assert!(text.contains("--- stdout (6 bytes) ---\nhello\n"), "{text}");
        assert!(text.contains("--- stderr (5 bytes) ---\noops\n"), "{text}");
    }

    #[test]
    fn long_output_is_bounded_with_head_and_tail() {
        let big = format!("FIRST{}LAST", "x".repeat(100_000));
        let text = format_shell_result(&outcome(&big, ""), 4096);
        assert!(text.len() < 4096 + 512, "{}", text.len());
        assert!(text.contains("FIRST") && text.contains("LAST"));
        assert!(text.contains("shortened to head and tail"));
    }

    #[test]
    fn signal_and_timeout_are_stated() {
        let mut o = outcome("", "");
        o.exit_code = None;
        o.signal = Some(9);
        o.timed_out = true;
        let text = format_shell_result(&o, 1024);
        assert!(text.contains("killed by signal 9"));
        assert!(text.contains("timed_out: true"));
        assert!(text.contains("stdout: (empty)"));
    }
}

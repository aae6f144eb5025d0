//! Container output as the pod log, and the termination message.
//!
//! The process's stdout and stderr both go to one file per container
//! ([`PodLayout::log_file`](super::layout::PodLayout::log_file)); the kubelet records that file's
//! absolute path on the pod in the [`LOG_PATH_ANNOTATION`] annotation before the process starts.
//! The emulator's `pods/log` handler serves the file named there, so `kubectl logs` and
//! `Api::<Pod>::logs` work against the emulator. On a real cluster the annotation is inert
//! (the API server proxies logs to the node's kubelet, which a process kubelet does not serve).

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// Pod annotation holding the absolute path of the first container's log file, written by the
/// process kubelet and read by the emulator's `pods/log` handler.
pub const LOG_PATH_ANNOTATION: &str = "kube-emulator.test/log-path";

/// Most bytes of a termination message, as in Kubernetes.
pub const MAX_TERMINATION_MESSAGE_BYTES: u64 = 4096;
/// `FallbackToLogsOnError` uses at most this many trailing log lines…
pub const FALLBACK_LOG_LINES: usize = 80;
/// …and at most this many bytes of them, as in Kubernetes.
pub const FALLBACK_LOG_BYTES: u64 = 2048;

/// The termination message the container wrote, at most 4096 bytes; `None` when the file is
/// missing or empty.
pub fn read_termination_message(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    file.by_ref()
        .take(MAX_TERMINATION_MESSAGE_BYTES)
        .read_to_end(&mut buf)
        .ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    (!text.trim().is_empty()).then_some(text)
}

/// The last `max_lines` lines of the log, within its last `max_bytes` bytes.
pub fn tail(path: &Path, max_lines: usize, max_bytes: u64) -> io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(max_bytes);
    file.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    // A cut in the middle of a line would start the message with half a line: drop it.
    let text = if start > 0 {
        text.split_once('\n').map_or("", |(_, rest)| rest)
    } else {
        &text
    };
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(max_lines);
    Ok(lines[from..].join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_lines_within_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let text: String = (0..200).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let tail_lines = tail(&path, 3, 10_000).unwrap();
        assert_eq!(tail_lines, "line 197\nline 198\nline 199");
        let tail_bytes = tail(&path, 100, 20).unwrap();
        assert_eq!(tail_bytes, "line 198\nline 199");
    }

    #[test]
    fn termination_message_is_bounded_and_empty_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("msg");
        assert_eq!(read_termination_message(&path), None);
        std::fs::write(&path, "  \n").unwrap();
        assert_eq!(read_termination_message(&path), None);
        std::fs::write(&path, "x".repeat(10_000)).unwrap();
        assert_eq!(read_termination_message(&path).map(|m| m.len()), Some(4096));
    }
}

//! Container logs in the CRI log format, and the termination message.
//!
//! A container's stdout and stderr are piped through the kubelet and appended to its log file one
//! line at a time as `<RFC 3339 nano time> <stdout|stderr> F <text>`, the format container runtimes
//! write under `/var/log/pods`. The per-line times make `timestamps`, `sinceSeconds` and
//! `sinceTime` work when the [log server](super::log_server) answers the API server's
//! `pods/log` requests. Pure parsing and selection live here; the copying is [`copy_lines`].

use std::io::{self, Read};
use std::path::Path;

use jiff::Timestamp;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// Most bytes of a termination message, as in Kubernetes.
pub const MAX_TERMINATION_MESSAGE_BYTES: u64 = 4096;
/// `FallbackToLogsOnError` uses at most this many trailing log lines…
pub const FALLBACK_LOG_LINES: usize = 80;
/// …and at most this many bytes of them, as in Kubernetes.
pub const FALLBACK_LOG_BYTES: usize = 2048;

/// One line of a container log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub time: Timestamp,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The text, without its newline.
    pub text: String,
}

impl LogLine {
    /// The line in CRI format, with its newline.
    pub fn to_cri(&self) -> String {
        format!("{} {} F {}\n", self.time, self.stream, self.text)
    }

    /// Parses one CRI line (with or without its newline); `None` when it is not in that format.
    pub fn parse(line: &str) -> Option<LogLine> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let mut parts = line.splitn(4, ' ');
        let time = parts.next()?.parse::<Timestamp>().ok()?;
        let stream = parts.next()?.to_string();
        let _tag = parts.next()?;
        let text = parts.next().unwrap_or("").to_string();
        Some(LogLine { time, stream, text })
    }

    /// The line as `pods/log` returns it: the text, optionally prefixed with its time.
    pub fn render(&self, timestamps: bool) -> String {
        if timestamps {
            format!("{} {}\n", self.time, self.text)
        } else {
            format!("{}\n", self.text)
        }
    }
}

/// Reads every parseable line of a log file; a missing file is an empty log.
pub fn read_lines(path: &Path) -> io::Result<Vec<LogLine>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(LogLine::parse)
            .collect()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(error),
    }
}

/// What a `pods/log` request asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<usize>,
    pub limit_bytes: Option<usize>,
    /// Only lines at or after this time (`sinceTime`, or now minus `sinceSeconds`).
    pub since: Option<Timestamp>,
}

/// Applies `since` and `tailLines` to the lines already in the log.
pub fn select<'a>(lines: &'a [LogLine], query: &LogQuery) -> &'a [LogLine] {
    let first_recent = query
        .since
        .map_or(0, |since| lines.partition_point(|l| l.time < since));
    let recent = &lines[first_recent..];
    match query.tail_lines {
        Some(n) => &recent[recent.len().saturating_sub(n)..],
        None => recent,
    }
}

/// Copies `reader` into `sink` line by line, stamping each line with the time it was read.
/// A last line without a newline is kept too.
pub async fn copy_lines<R: AsyncRead + Unpin>(
    reader: R,
    stream: &'static str,
    sink: mpsc::UnboundedSender<String>,
) {
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buf);
                let text = text.strip_suffix('\n').unwrap_or(&text);
                let text = text.strip_suffix('\r').unwrap_or(text);
                let line = LogLine {
                    time: Timestamp::now(),
                    stream: stream.to_string(),
                    text: text.to_string(),
                };
                if sink.send(line.to_cri()).is_err() {
                    return;
                }
            }
        }
    }
}

/// Appends every line from `lines` to the file, flushing each so readers see it at once.
pub async fn write_lines(
    mut file: tokio::fs::File,
    mut lines: mpsc::UnboundedReceiver<String>,
) -> io::Result<()> {
    while let Some(line) = lines.recv().await {
        file.write_all(line.as_bytes()).await?;
        file.flush().await?;
    }
    Ok(())
}

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

/// The log's last lines for `FallbackToLogsOnError`: at most [`FALLBACK_LOG_LINES`] lines and
/// [`FALLBACK_LOG_BYTES`] bytes, whole lines only.
pub fn fallback_message(path: &Path) -> Option<String> {
    let lines = read_lines(path).ok()?;
    let mut picked: Vec<&str> = Vec::new();
    let mut bytes = 0;
    for line in lines.iter().rev().take(FALLBACK_LOG_LINES) {
        bytes += line.text.len() + 1;
        if bytes > FALLBACK_LOG_BYTES {
            break;
        }
        picked.push(&line.text);
    }
    picked.reverse();
    let text = picked.join("\n");
    (!text.trim().is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(secs: i64, text: &str) -> LogLine {
        LogLine {
            time: Timestamp::from_second(secs).unwrap(),
            stream: "stdout".into(),
            text: text.into(),
        }
    }

    #[test]
    fn cri_lines_round_trip() {
        let original = line(1_700_000_000, "hello world  with  spaces");
        let cri = original.to_cri();
        assert!(
            cri.starts_with("2023-11-14T22:13:20Z stdout F hello"),
            "{cri}"
        );
        assert_eq!(LogLine::parse(&cri), Some(original.clone()));
        assert_eq!(original.render(false), "hello world  with  spaces\n");
        assert!(
            original
                .render(true)
                .starts_with("2023-11-14T22:13:20Z hello")
        );
        assert_eq!(LogLine::parse("garbage"), None);
        assert_eq!(
            LogLine::parse(&line(1, "").to_cri()).map(|l| l.text),
            Some(String::new())
        );
    }

    #[test]
    fn select_applies_since_then_tail() {
        let lines: Vec<LogLine> = (0..10).map(|i| line(i, &format!("l{i}"))).collect();
        let all = LogQuery::default();
        assert_eq!(select(&lines, &all).len(), 10);
        let tail = LogQuery {
            tail_lines: Some(3),
            ..LogQuery::default()
        };
        assert_eq!(select(&lines, &tail)[0].text, "l7");
        let since = LogQuery {
            since: Some(Timestamp::from_second(8).unwrap()),
            tail_lines: Some(5),
            ..LogQuery::default()
        };
        let picked: Vec<_> = select(&lines, &since)
            .iter()
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(picked, vec!["l8", "l9"]);
    }

    #[test]
    fn fallback_keeps_whole_last_lines_within_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let text: String = (0..200)
            .map(|i| line(i, &format!("line {i:03} {}", "x".repeat(40))).to_cri())
            .collect();
        std::fs::write(&path, text).unwrap();
        let message = fallback_message(&path).unwrap();
        assert!(message.len() <= FALLBACK_LOG_BYTES);
        assert!(message.ends_with(&format!("line 199 {}", "x".repeat(40))));
        assert!(message.starts_with("line "), "{message}");
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

    #[tokio::test]
    async fn copy_and_write_produce_cri_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let file = tokio::fs::File::create(&path).await.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_lines(file, rx));
        copy_lines(&b"one\ntwo\r\nthree"[..], "stderr", tx).await;
        writer.await.unwrap().unwrap();
        let lines = read_lines(&path).unwrap();
        let texts: Vec<_> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, vec!["one", "two", "three"]);
        assert!(lines.iter().all(|l| l.stream == "stderr"));
    }
}

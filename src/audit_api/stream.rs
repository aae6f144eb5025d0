//! Reads a session's `.jsonl` from the audit volume as a stream of complete lines, never the
//! whole file: the JSONL form passes them on byte for byte (so `verify` sees exactly what is on
//! disk), the JSON form wraps them in an `IncidentAudit` object as they go. With `follow`, the
//! reader waits at the end of the file for the lines a running session still appends, and stops
//! when the session's final document appears, when the follow deadline passes, or on shutdown.
//!
//! A last line without its newline is a record still being written (or torn by a crash):
//! it is held back until its newline arrives, and dropped at the end, as the audit reader does.

use std::path::PathBuf;
use std::time::Duration;

use axum::body::Bytes;
use futures::Stream;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Longest record line served; the writer bounds what it records far below this, so a longer
/// line is damage, and answering it would mean holding it in memory.
pub const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

/// One session's files on the audit volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFiles {
    /// `<dir>/<session>.jsonl`, appended while the session runs.
    pub jsonl: PathBuf,
    /// `<dir>/<session>.json`, written once when the session ends.
    pub final_document: PathBuf,
}

impl SessionFiles {
    /// The files of `session_id` in `dir`; the id must already be validated as a file stem.
    pub fn new(dir: &std::path::Path, session_id: &str) -> SessionFiles {
        SessionFiles {
            jsonl: dir.join(format!("{session_id}.jsonl")),
            final_document: dir.join(format!("{session_id}.json")),
        }
    }

    /// Whether the session has ended (its final document exists).
    pub async fn ended(&self) -> bool {
        tokio::fs::try_exists(&self.final_document)
            .await
            .unwrap_or(false)
    }
}

/// How a follow waits.
#[derive(Debug, Clone)]
pub struct Follow {
    /// Pause between looks at the end of the file.
    pub poll: Duration,
    /// When the follow ends even if the session has not.
    pub deadline: Instant,
    /// Cancelled on shutdown.
    pub shutdown: CancellationToken,
}

/// A failure while streaming; the connection is cut, so the client sees an incomplete body.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Reading the file failed.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A line is longer than [`MAX_LINE_BYTES`].
    #[error("{path}: a record line is longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong {
        /// The file.
        path: PathBuf,
    },
}

struct LineReader {
    files: SessionFiles,
    reader: BufReader<tokio::fs::File>,
    pending: Vec<u8>,
    follow: Option<Follow>,
    /// Set once the final document was seen: one more read to the end, then stop.
    draining: bool,
}

impl LineReader {
    /// The next complete line (with its newline), or `None` at the end.
    async fn next_line(&mut self) -> Result<Option<Vec<u8>>, StreamError> {
        loop {
            let before = self.pending.len();
            let read = (&mut self.reader)
                .take((MAX_LINE_BYTES + 1 - before.min(MAX_LINE_BYTES)) as u64)
                .read_until(b'\n', &mut self.pending)
                .await
                .map_err(|source| StreamError::Read {
                    path: self.files.jsonl.clone(),
                    source,
                })?;
            if self.pending.last() == Some(&b'\n') {
                return Ok(Some(std::mem::take(&mut self.pending)));
            }
            if self.pending.len() > MAX_LINE_BYTES {
                return Err(StreamError::LineTooLong {
                    path: self.files.jsonl.clone(),
                });
            }
            if read > 0 {
                continue;
            }
            // At the end of what is written so far.
            let Some(follow) = &self.follow else {
                return Ok(None);
            };
            if self.draining {
                return Ok(None);
            }
            if self.files.ended().await {
                // The final document is written after the last record: read what is left.
                self.draining = true;
                continue;
            }
            if Instant::now() >= follow.deadline {
                return Ok(None);
            }
            let wait = follow.poll.min(follow.deadline - Instant::now());
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = follow.shutdown.cancelled() => return Ok(None),
            }
        }
    }
}

/// Opens the session's `.jsonl`; `Ok(None)` when it does not exist (yet).
async fn open(
    files: SessionFiles,
    follow: Option<Follow>,
) -> Result<Option<LineReader>, StreamError> {
    match tokio::fs::File::open(&files.jsonl).await {
        Ok(file) => Ok(Some(LineReader {
            files,
            reader: BufReader::with_capacity(64 * 1024, file),
            pending: Vec::new(),
            follow,
            draining: false,
        })),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StreamError::Read {
            path: files.jsonl.clone(),
            source,
        }),
    }
}

/// Opened lines of one session, ready to become a response body.
pub struct OpenedAudit {
    reader: LineReader,
}

impl OpenedAudit {
    /// Opens `files` (with `follow` to tail a running session); `Ok(None)` if no log exists.
    pub async fn open(
        files: SessionFiles,
        follow: Option<Follow>,
    ) -> Result<Option<OpenedAudit>, StreamError> {
        Ok(open(files, follow)
            .await?
            .map(|reader| OpenedAudit { reader }))
    }

    /// The lines as they are on disk.
    pub fn jsonl(self) -> impl Stream<Item = Result<Bytes, StreamError>> + Send {
        futures::stream::try_unfold(self.reader, |mut reader| async move {
            Ok(reader
                .next_line()
                .await?
                .map(|line| (Bytes::from(line), reader)))
        })
    }

    /// An `IncidentAudit` JSON object: the fields of `header`, then `"records": [ … ]` with each
    /// line of the log — as JSON when it parses, as a JSON string when it does not (a damaged line
    /// is shown, not hidden; `verify` says what it means).
    pub fn json_document(
        self,
        header: serde_json::Map<String, serde_json::Value>,
    ) -> impl Stream<Item = Result<Bytes, StreamError>> + Send {
        let mut opening = serde_json::Value::Object(header).to_string();
        // `{...}` → `{...,"records":[`
        opening.pop();
        opening.push_str(if opening.len() > 1 {
            ",\"records\":["
        } else {
            "\"records\":["
        });
        let head = futures::stream::once(async move { Ok(Bytes::from(opening)) });
        let records =
            futures::stream::try_unfold((self.reader, true), |(mut reader, first)| async move {
                let Some(line) = reader.next_line().await? else {
                    return Ok(None);
                };
                let text = trim_newline(&line);
                let mut chunk = Vec::with_capacity(text.len() + 2);
                if !first {
                    chunk.push(b',');
                }
                if serde_json::from_slice::<serde::de::IgnoredAny>(text).is_ok() {
                    chunk.extend_from_slice(text);
                } else {
                    let shown = String::from_utf8_lossy(text);
                    chunk.extend_from_slice(
                        serde_json::Value::String(shown.into_owned())
                            .to_string()
                            .as_bytes(),
                    );
                }
                Ok(Some((Bytes::from(chunk), (reader, false))))
            });
        let tail = futures::stream::once(async { Ok(Bytes::from_static(b"]}\n")) });
        futures::StreamExt::chain(futures::StreamExt::chain(head, records), tail)
    }
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use std::io::Write;

    async fn collect(stream: impl Stream<Item = Result<Bytes, StreamError>>) -> String {
        let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
        String::from_utf8(chunks.concat()).unwrap()
    }

    fn session(dir: &std::path::Path, content: &str) -> SessionFiles {
        let files = SessionFiles::new(dir, "s1");
        std::fs::write(&files.jsonl, content).unwrap();
        files
    }

    #[tokio::test]
    async fn jsonl_is_served_byte_for_byte_without_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let files = session(dir.path(), "{\"seq\":1}\n{\"seq\":2}\n{\"seq\":");
        let audit = OpenedAudit::open(files, None).await.unwrap().unwrap();
        assert_eq!(collect(audit.jsonl()).await, "{\"seq\":1}\n{\"seq\":2}\n");
    }

    #[tokio::test]
    async fn the_json_form_wraps_records_and_shows_a_damaged_line_as_a_string() {
        let dir = tempfile::tempdir().unwrap();
        let files = session(dir.path(), "{\"seq\":1}\nnot json\n");
        let audit = OpenedAudit::open(files, None).await.unwrap().unwrap();
        let mut header = serde_json::Map::new();
        header.insert("kind".into(), "IncidentAudit".into());
        let body = collect(audit.json_document(header)).await;
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["kind"], "IncidentAudit");
        assert_eq!(parsed["records"][0]["seq"], 1);
        assert_eq!(parsed["records"][1], "not json");
    }

    #[tokio::test]
    async fn a_missing_log_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let files = SessionFiles::new(dir.path(), "absent");
        assert!(OpenedAudit::open(files, None).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn follow_serves_lines_appended_later_and_ends_with_the_final_document() {
        let dir = tempfile::tempdir().unwrap();
        let files = session(dir.path(), "{\"seq\":1}\n");
        let follow = Follow {
            poll: Duration::from_millis(20),
            deadline: Instant::now() + Duration::from_secs(120),
            shutdown: CancellationToken::new(),
        };
        let audit = OpenedAudit::open(files.clone(), Some(follow))
            .await
            .unwrap()
            .unwrap();
        let reading = tokio::spawn(collect(audit.jsonl()));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(&files.jsonl)
            .unwrap();
        // Half a record first: it must not be served until its newline arrives.
        log.write_all(b"{\"seq\":").unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        log.write_all(b"2}\n").unwrap();
        std::fs::write(&files.final_document, "{}").unwrap();
        let body = tokio::time::timeout(Duration::from_secs(60), reading)
            .await
            .expect("the follow ends once the final document exists")
            .unwrap();
        assert_eq!(body, "{\"seq\":1}\n{\"seq\":2}\n");
    }

    #[tokio::test]
    async fn follow_ends_at_its_deadline_for_a_session_that_never_ends() {
        let dir = tempfile::tempdir().unwrap();
        let files = session(dir.path(), "{\"seq\":1}\n");
        let follow = Follow {
            poll: Duration::from_millis(20),
            deadline: Instant::now() + Duration::from_millis(200),
            shutdown: CancellationToken::new(),
        };
        let audit = OpenedAudit::open(files, Some(follow))
            .await
            .unwrap()
            .unwrap();
        let body = tokio::time::timeout(Duration::from_secs(60), collect(audit.jsonl()))
            .await
            .unwrap();
        assert_eq!(body, "{\"seq\":1}\n");
    }
}

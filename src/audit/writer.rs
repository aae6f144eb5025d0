//! Writes one session's audit to disk: `<dir>/<session_id>.jsonl` while the session runs, then
//! `<dir>/<session_id>.json` when it ends.
//!
//! The JSONL file is the durable record: each event is redacted, appended as one line and fsync'd
//! before [`SessionAuditor::record`] returns, so a SIGKILL or a node crash loses nothing that was
//! recorded (at worst a torn last line, which [`read_jsonl`] skips). The final document is a
//! convenience copy with a summary on top, written to a temp file and renamed into place so a reader
//! never sees half of it; its SHA-256 goes into the Incident's status.
//!
//! Each line carries in `prev` the hash of the line before it ([`super::chain`]); the hash of the
//! last line, the chain head, goes into the final document and the Incident's status.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::chain;
use super::event::AuditEvent;
use super::redact::Redactor;
use crate::incident::{AuditStatusEntry, Outcome, Report, Usage};

/// Version of the audit schema; bumped when a field changes meaning or disappears.
pub const AUDIT_VERSION: u32 = 1;

/// File mode of audit files: the owner writes, the pod's group (fsGroup) may read, others nothing.
const AUDIT_FILE_MODE: u32 = 0o640;

/// Longest accepted session id, comfortably below file name limits.
const MAX_SESSION_ID_LEN: usize = 128;

/// One line of the JSONL file: the envelope plus the event's own fields, flattened.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    /// 1 for the first record of a session, then +1 per record: the line number in the JSONL file.
    pub seq: u64,
    /// RFC 3339 UTC time the record was written, millisecond precision.
    pub time: String,
    pub session_id: String,
    /// SHA-256 (hex) of the previous line's exact bytes, or [`super::chain::genesis`] of the
    /// session id for the first record. Empty in audits written before the hash chain.
    #[serde(default)]
    pub prev: String,
    #[serde(flatten)]
    pub event: AuditEvent,
}

/// The final audit document, `<dir>/<session_id>.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditDocument {
    pub audit_version: u32,
    pub session_id: String,
    /// When the auditor was created (RFC 3339 UTC).
    pub started_at: String,
    /// When the document was written.
    pub ended_at: String,
    /// From the last `session_end` record; null when the session never recorded one.
    pub outcome: Option<Outcome>,
    /// Session totals from the last `session_end` record.
    pub usage: Option<Usage>,
    /// From the last `report` record.
    pub report: Option<Report>,
    /// Hash of the last JSONL line ([`super::chain::link`]); the genesis value when there are no
    /// records. Placed before `records` so a verifier reads it without holding the records.
    #[serde(default)]
    pub chain_head: String,
    /// How many records the JSONL file holds.
    #[serde(default)]
    pub record_count: u64,
    /// Every record, exactly as in the JSONL file.
    pub records: Vec<AuditRecord>,
}

/// Where the final document went, the SHA-256 (lowercase hex) of its bytes, and the chain head and
/// record count it ends with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FinishedAudit {
    pub path: PathBuf,
    pub sha256: String,
    pub chain_head: String,
    pub record_count: u64,
}

/// Why an audit could not be written or read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("session id {session_id:?} is not a safe file name (letters, digits, '.', '_', '-')")]
    InvalidSessionId { session_id: String },
    #[error("creating audit directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("audit file {path} already exists; refusing to overwrite another session's audit")]
    AlreadyExists { path: PathBuf },
    #[error("opening audit file {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("serializing an audit record for {path}")]
    Serialize {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "an audit event no longer parses after redaction (a configured secret equals a field value) for {path}"
    )]
    Redaction {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("writing audit file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("syncing audit file {path} to disk")]
    Sync {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("renaming {from} to {to}")]
    Rename {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("syncing audit directory {path}")]
    SyncDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading audit file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("audit file {path} line {line} is not a valid record")]
    Parse {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
}

/// Records one session. Create it when the session starts, [`record`](Self::record) every event,
/// [`finish`](Self::finish) at the end.
#[derive(Debug)]
pub struct SessionAuditor {
    dir: PathBuf,
    session_id: String,
    jsonl_path: PathBuf,
    file: File,
    redactor: Redactor,
    records: Vec<AuditRecord>,
    started_at: String,
    /// Length of the JSONL file after the last complete record, to cut off a partial write.
    committed_len: u64,
    /// Hash of the last complete line: the next record's `prev`.
    chain_head: String,
}

impl SessionAuditor {
    /// Creates `<dir>/<session_id>.jsonl` (and `dir` if missing). Refuses to open an existing file, so
    /// one session can never append to or clobber another's audit.
    pub fn create(dir: &Path, session_id: &str, redactor: Redactor) -> Result<Self, AuditError> {
        if !is_safe_file_stem(session_id) {
            return Err(AuditError::InvalidSessionId {
                session_id: session_id.to_string(),
            });
        }
        fs::create_dir_all(dir).map_err(|source| AuditError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let jsonl_path = dir.join(format!("{session_id}.jsonl"));
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(AUDIT_FILE_MODE)
            .open(&jsonl_path)
            .map_err(|source| match source.kind() {
                io::ErrorKind::AlreadyExists => AuditError::AlreadyExists {
                    path: jsonl_path.clone(),
                },
                _ => AuditError::Open {
                    path: jsonl_path.clone(),
                    source,
                },
            })?;
        // The new directory entry must survive a crash too, or the fsync'd records are unreachable.
        sync_dir(dir)?;
        Ok(SessionAuditor {
            dir: dir.to_path_buf(),
            session_id: session_id.to_string(),
            jsonl_path,
            file,
            redactor,
            records: Vec::new(),
            started_at: now_rfc3339(),
            committed_len: 0,
            chain_head: chain::genesis(session_id),
        })
    }

    /// Redacts `event`, appends it as one JSON line, and fsyncs before returning, so a SIGKILL loses
    /// nothing recorded. On a failed write the partial line is cut off again and nothing is kept; on a
    /// failed fsync the record stays (it was written, seq stays consistent) and the error is returned.
    pub fn record(&mut self, event: AuditEvent) -> Result<&AuditRecord, AuditError> {
        let mut value = serde_json::to_value(&event).map_err(|source| AuditError::Serialize {
            path: self.jsonl_path.clone(),
            source,
        })?;
        self.redactor.redact_json(&mut value);
        let event: AuditEvent =
            serde_json::from_value(value).map_err(|source| AuditError::Redaction {
                path: self.jsonl_path.clone(),
                source,
            })?;
        let record = AuditRecord {
            seq: self.records.len() as u64 + 1,
            time: now_rfc3339(),
            session_id: self.session_id.clone(),
            prev: self.chain_head.clone(),
            event,
        };
        let mut line = serde_json::to_vec(&record).map_err(|source| AuditError::Serialize {
            path: self.jsonl_path.clone(),
            source,
        })?;
        line.push(b'\n');
        // One write call per line: with O_APPEND the line lands in one piece unless the process dies
        // mid-call, which leaves at most a torn last line.
        if let Err(source) = self.file.write_all(&line) {
            // Best effort: a later record must not be glued onto half a line.
            let _ = self.file.set_len(self.committed_len);
            return Err(AuditError::Write {
                path: self.jsonl_path.clone(),
                source,
            });
        }
        self.committed_len += line.len() as u64;
        self.chain_head = chain::link(&line);
        self.records.push(record);
        // fdatasync: flushes the data and the file size, which is all a reader needs.
        self.file
            .flush()
            .and_then(|()| self.file.sync_data())
            .map_err(|source| AuditError::Sync {
                path: self.jsonl_path.clone(),
                source,
            })?;
        self.records.last().ok_or_else(|| AuditError::Write {
            path: self.jsonl_path.clone(),
            source: io::Error::other("record vanished after being appended"),
        })
    }

    /// Every record so far, redacted, oldest first.
    pub fn records(&self) -> &[AuditRecord] {
        &self.records
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Hash of the last record written (the genesis value before the first).
    pub fn chain_head(&self) -> &str {
        &self.chain_head
    }

    /// Path of the JSONL log.
    pub fn jsonl_path(&self) -> &Path {
        &self.jsonl_path
    }

    /// Path [`finish`](Self::finish) writes the final document to.
    pub fn document_path(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.session_id))
    }

    /// Writes `<dir>/<session_id>.json` atomically (temp file in the same dir, fsync, rename, fsync
    /// dir) and returns its path and the SHA-256 of the bytes written. An existing file of that name
    /// is replaced only by the rename, so readers see the old or the new document, never a mix.
    pub fn finish(self) -> Result<FinishedAudit, AuditError> {
        let path = self.document_path();
        let last_end = self.records.iter().rev().find_map(|r| match &r.event {
            AuditEvent::SessionEnd { outcome, usage, .. } => Some((*outcome, *usage)),
            _ => None,
        });
        let report = self.records.iter().rev().find_map(|r| match &r.event {
            AuditEvent::Report { report } => Some(report.clone()),
            _ => None,
        });
        let document = AuditDocument {
            audit_version: AUDIT_VERSION,
            session_id: self.session_id,
            started_at: self.started_at,
            ended_at: now_rfc3339(),
            outcome: last_end.map(|(outcome, _)| outcome),
            usage: last_end.map(|(_, usage)| usage),
            report,
            chain_head: self.chain_head.clone(),
            record_count: self.records.len() as u64,
            records: self.records,
        };
        let mut bytes =
            serde_json::to_vec_pretty(&document).map_err(|source| AuditError::Serialize {
                path: path.clone(),
                source,
            })?;
        bytes.push(b'\n');
        write_atomically(&self.dir, &path, &bytes)?;
        Ok(FinishedAudit {
            path,
            sha256: hex::encode(Sha256::digest(&bytes)),
            chain_head: document.chain_head,
            record_count: document.record_count,
        })
    }

    /// The latest `max_entries` records as status entries whose total JSON size (as an array) stays
    /// within `max_bytes`, oldest dropped first; plus whether any record was left out.
    pub fn status_entries(
        &self,
        max_entries: usize,
        max_bytes: usize,
    ) -> (Vec<AuditStatusEntry>, bool) {
        let first = self.records.len().saturating_sub(max_entries);
        let sized: Vec<(AuditStatusEntry, usize)> = self.records[first..]
            .iter()
            .map(|record| {
                let entry = status_entry(record);
                // An entry that cannot be measured is treated as too big, so it is dropped.
                let size = serde_json::to_vec(&entry).map_or(usize::MAX, |v| v.len());
                (entry, size)
            })
            .collect();
        // As a JSON array: brackets, the entries, and a comma between each two.
        let array_size = |entries: &[(AuditStatusEntry, usize)]| {
            entries
                .iter()
                .fold(2usize, |sum, (_, size)| sum.saturating_add(*size))
                .saturating_add(entries.len().saturating_sub(1))
        };
        let mut skip = 0;
        while skip < sized.len() && array_size(&sized[skip..]) > max_bytes {
            skip += 1;
        }
        let entries: Vec<AuditStatusEntry> = sized
            .into_iter()
            .skip(skip)
            .map(|(entry, _)| entry)
            .collect();
        let truncated = entries.len() < self.records.len();
        (entries, truncated)
    }
}

/// A record shortened for the Incident's status.
fn status_entry(record: &AuditRecord) -> AuditStatusEntry {
    let (exit_code, duration_ms, timed_out) = record.event.tool_result_facts();
    AuditStatusEntry {
        seq: record.seq,
        time: record.time.clone(),
        event: record.event.kind().to_string(),
        detail: record.event.short_detail(),
        exit_code,
        duration_ms,
        timed_out,
        output_truncated: record.event.tool_output_truncated(),
    }
}

/// Reads a JSONL audit back (for tests, tools and recovery). A last line without its newline that
/// does not parse is the torn end of a write cut short by a crash, and is skipped; any other bad line
/// is an error.
pub fn read_jsonl(path: &Path) -> Result<Vec<AuditRecord>, AuditError> {
    let bytes = fs::read(path).map_err(|source| AuditError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let complete = bytes.ends_with(b"\n");
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let last = lines.len().saturating_sub(1);
    let mut records = Vec::with_capacity(lines.len());
    for (index, line) in lines.into_iter().enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<AuditRecord>(line) {
            Ok(record) => records.push(record),
            Err(_) if index == last && !complete => {}
            Err(source) => {
                return Err(AuditError::Parse {
                    path: path.to_path_buf(),
                    line: index + 1,
                    source,
                });
            }
        }
    }
    Ok(records)
}

/// Reads a final audit document back.
pub fn read_document(path: &Path) -> Result<AuditDocument, AuditError> {
    let bytes = fs::read(path).map_err(|source| AuditError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| AuditError::Parse {
        path: path.to_path_buf(),
        line: 0,
        source,
    })
}

/// Temp file in the same directory (so the rename cannot cross file systems), fsync, rename over
/// `path`, fsync the directory so the rename itself is durable. The temp file is removed on failure.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), AuditError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp_path = dir.join(format!(
        ".{file_name}.tmp-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let result = write_and_rename(&temp_path, path, bytes);
    if result.is_err() {
        let _ = fs::remove_file(&temp_path);
    }
    result?;
    sync_dir(dir)
}

fn write_and_rename(temp_path: &Path, path: &Path, bytes: &[u8]) -> Result<(), AuditError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(AUDIT_FILE_MODE)
        .open(temp_path)
        .map_err(|source| AuditError::Open {
            path: temp_path.to_path_buf(),
            source,
        })?;
    file.write_all(bytes).map_err(|source| AuditError::Write {
        path: temp_path.to_path_buf(),
        source,
    })?;
    file.sync_all().map_err(|source| AuditError::Sync {
        path: temp_path.to_path_buf(),
        source,
    })?;
    drop(file);
    fs::rename(temp_path, path).map_err(|source| AuditError::Rename {
        from: temp_path.to_path_buf(),
        to: path.to_path_buf(),
        source,
    })
}

fn sync_dir(dir: &Path) -> Result<(), AuditError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| AuditError::SyncDir {
            path: dir.to_path_buf(),
            source,
        })
}

/// Letters, digits, `.`, `_`, `-`; not starting with `.`: no path separators, no hidden files, no `..`.
fn is_safe_file_stem(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SESSION_ID_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn now_rfc3339() -> String {
    format!("{:.3}", jiff::Timestamp::now())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use serde_json::json;

    use super::*;
    use crate::audit::event::{IncidentRef, SessionLimits};
    use crate::audit::session_id::new_session_id;
    use crate::incident::{Confidence, Mode, Severity};

    const API_KEY: &str = "sk-ant-api03-test-key-0123456789abcdefXYZ";

    fn auditor(dir: &Path) -> SessionAuditor {
        let id = new_session_id(jiff::Timestamp::now());
        SessionAuditor::create(dir, &id, Redactor::new([API_KEY.to_string()]))
            .expect("auditor is created")
    }

    fn session_start() -> AuditEvent {
        AuditEvent::SessionStart {
            incident: IncidentRef {
                namespace: Some("shop".into()),
                name: "checkout-5xx".into(),
                title: "checkout 5xx above 5%".into(),
                severity: Severity::Critical,
                recalled: Vec::new(),
            },
            model: "claude-sonnet-4-5".into(),
            mode: Mode::Investigate,
            limits: SessionLimits {
                max_turns: 20,
                session_timeout_seconds: 900,
                command_timeout_seconds: 60,
                max_tokens: 500_000,
            },
            agent_version: "0.1.0".into(),
            execution: None,
        }
    }

    fn tool_call(turn: u32, command: &str, stdout: &str, exit_code: i32) -> AuditEvent {
        AuditEvent::ToolCall {
            turn,
            tool_use_id: format!("toolu_{turn:02}"),
            tool: "shell".into(),
            command: command.into(),
            timeout_seconds: 60,
            result: json!({"stdout": stdout, "stderr": "", "exitCode": exit_code, "signal": null,
                           "timedOut": false, "durationMs": 12, "stdoutTruncated": false}),
        }
    }

    fn report() -> Report {
        Report {
            summary: "checkout-api is OOMKilled after the 14:02 deploy".into(),
            root_cause: Some("memory limit 256Mi too low".into()),
            confidence: Confidence::High,
            resolved: false,
            ..Report::default()
        }
    }

    fn session_end() -> AuditEvent {
        AuditEvent::SessionEnd {
            outcome: Outcome::Reported,
            message: None,
            usage: Usage {
                turns: 3,
                tool_calls: 2,
                input_tokens: 1200,
                output_tokens: 300,
                ..Usage::default()
            },
            duration_ms: 4567,
        }
    }

    fn dir_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("dir lists")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn create_makes_the_directory_and_refuses_an_existing_session_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("audit/nested");
        let mut first = auditor(&dir);
        first.record(session_start()).unwrap();
        let before = fs::read(first.jsonl_path()).unwrap();

        let err = SessionAuditor::create(&dir, first.session_id(), Redactor::default())
            .expect_err("a second auditor for the same session must be refused");
        assert!(matches!(err, AuditError::AlreadyExists { .. }), "{err:?}");
        assert_eq!(
            fs::read(first.jsonl_path()).unwrap(),
            before,
            "file was touched"
        );
        assert_eq!(
            fs::metadata(first.jsonl_path()).unwrap().mode() & 0o777,
            AUDIT_FILE_MODE
        );
    }

    #[test]
    fn create_rejects_session_ids_that_are_not_plain_file_names() {
        let tmp = tempfile::tempdir().unwrap();
        for bad in ["", "../escape", "a/b", ".hidden", "x y", &"a".repeat(200)] {
            let err = SessionAuditor::create(tmp.path(), bad, Redactor::default()).unwrap_err();
            assert!(
                matches!(err, AuditError::InvalidSessionId { .. }),
                "{bad:?}: {err:?}"
            );
        }
        assert!(dir_names(tmp.path()).is_empty());
    }

    #[test]
    fn each_record_is_one_line_on_disk_before_record_returns() {
        let tmp = tempfile::tempdir().unwrap();
        let mut audit = auditor(tmp.path());
        let events = vec![
            session_start(),
            AuditEvent::ModelRequest {
                turn: 1,
                message_count: 1,
            },
            tool_call(1, "kubectl get pods -n shop", "line one\nline two\n", 0),
            tool_call(2, "kubectl logs deploy/checkout-api", "", 1),
            session_end(),
        ];
        for (i, event) in events.into_iter().enumerate() {
            let seq = audit.record(event).unwrap().seq;
            assert_eq!(seq, i as u64 + 1);
            // A separate handle sees the complete line as soon as record returned.
            let on_disk = fs::read_to_string(audit.jsonl_path()).unwrap();
            assert!(on_disk.ends_with('\n'));
            let lines: Vec<&str> = on_disk.lines().collect();
            assert_eq!(lines.len(), i + 1, "{on_disk}");
            let last: serde_json::Value = serde_json::from_str(lines[i]).unwrap();
            assert_eq!(last["seq"], seq);
            assert_eq!(last["sessionId"], audit.session_id());
            assert!(last["time"].as_str().unwrap().ends_with('Z'));
        }
        let back = read_jsonl(audit.jsonl_path()).unwrap();
        assert_eq!(back, audit.records());
        let seqs: Vec<u64> = back.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
        let line: serde_json::Value = serde_json::from_str(
            fs::read_to_string(audit.jsonl_path())
                .unwrap()
                .lines()
                .nth(2)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(line["event"], "tool_call");
        assert_eq!(line["toolUseId"], "toolu_01");
        assert_eq!(line["result"]["stdout"], "line one\nline two\n");
    }

    #[test]
    fn the_api_key_in_a_tool_result_never_reaches_the_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let mut audit = auditor(tmp.path());
        let command = format!("curl -H 'x-api-key: {API_KEY}' https://api.anthropic.com");
        let stdout = format!("ANTHROPIC_API_KEY={API_KEY}\nHOME=/root\n");
        audit.record(tool_call(1, &command, &stdout, 0)).unwrap();
        audit
            .record(AuditEvent::ModelResponse {
                turn: 2,
                stop_reason: "tool_use".into(),
                text: format!("I found the key {API_KEY}"),
                tool_uses: vec![crate::audit::event::ToolUseSummary {
                    id: "toolu_02".into(),
                    name: "shell".into(),
                    input: json!({"command": format!("echo {API_KEY}")}),
                }],
                usage: Usage::default(),
                duration_ms: 5,
                attempts: 1,
            })
            .unwrap();

        let raw = fs::read_to_string(audit.jsonl_path()).unwrap();
        assert!(!raw.contains(API_KEY), "{raw}");
        assert!(!raw.contains("0123456789abcdefXYZ"), "{raw}");
        assert!(raw.contains("[REDACTED:secret]"), "{raw}");
        assert!(raw.contains("HOME=/root"), "{raw}");
        // The in-memory records hold the redacted form too.
        let memory = serde_json::to_string(audit.records()).unwrap();
        assert!(!memory.contains(API_KEY));
        let done = audit.finish().unwrap();
        assert!(!fs::read_to_string(done.path).unwrap().contains(API_KEY));
    }

    #[test]
    fn finish_writes_a_complete_document_whose_sha256_matches() {
        let tmp = tempfile::tempdir().unwrap();
        let mut audit = auditor(tmp.path());
        audit.record(session_start()).unwrap();
        audit
            .record(tool_call(1, "kubectl top pods", "cpu", 0))
            .unwrap();
        audit
            .record(AuditEvent::Report { report: report() })
            .unwrap();
        audit.record(session_end()).unwrap();
        let records = audit.records().to_vec();
        let session_id = audit.session_id().to_string();
        let jsonl_name = format!("{session_id}.jsonl");
        let expected_path = audit.document_path();

        let done = audit.finish().unwrap();
        assert_eq!(done.path, expected_path);
        let bytes = fs::read(&done.path).unwrap();
        assert_eq!(done.sha256, hex::encode(Sha256::digest(&bytes)));
        assert_eq!(done.sha256.len(), 64);

        let raw: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(raw["auditVersion"], AUDIT_VERSION);
        assert_eq!(raw["outcome"], "reported");
        assert_eq!(raw["usage"]["inputTokens"], 1200);
        assert_eq!(raw["report"]["confidence"], "high");
        assert_eq!(raw["records"][3]["event"], "session_end");
        let document = read_document(&done.path).unwrap();
        assert_eq!(document.session_id, session_id);
        assert_eq!(document.records, records);
        assert_eq!(document.report, Some(report()));
        assert!(document.started_at <= document.ended_at);
        // Only the two audit files remain: no temp file left behind.
        assert_eq!(
            dir_names(tmp.path()),
            vec![format!("{session_id}.json"), jsonl_name]
        );
    }

    #[test]
    fn each_line_links_to_the_one_before_and_the_document_carries_the_head() {
        let tmp = tempfile::tempdir().unwrap();
        let mut audit = auditor(tmp.path());
        assert_eq!(audit.chain_head(), chain::genesis(audit.session_id()));
        audit.record(session_start()).unwrap();
        audit.record(tool_call(1, "uptime", "up", 0)).unwrap();
        audit.record(session_end()).unwrap();
        let raw = fs::read_to_string(audit.jsonl_path()).unwrap();
        let mut expected_prev = chain::genesis(audit.session_id());
        for line in raw.lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(value["prev"], expected_prev.as_str(), "{line}");
            expected_prev = chain::link(line.as_bytes());
        }
        assert_eq!(audit.chain_head(), expected_prev);
        let done = audit.finish().unwrap();
        assert_eq!(done.chain_head, expected_prev);
        assert_eq!(done.record_count, 3);
        let raw: serde_json::Value =
            serde_json::from_slice(&fs::read(&done.path).unwrap()).unwrap();
        assert_eq!(raw["chainHead"], expected_prev.as_str());
        assert_eq!(raw["recordCount"], 3);
        // The document's copies of the records keep their links.
        let jsonl = fs::read_to_string(done.path.with_extension("jsonl")).unwrap();
        let second_line = jsonl.lines().nth(1).unwrap();
        assert_eq!(
            raw["records"][2]["prev"],
            chain::link(second_line.as_bytes()).as_str()
        );
    }

    #[test]
    fn finish_without_an_end_record_still_writes_a_document() {
        let tmp = tempfile::tempdir().unwrap();
        let mut audit = auditor(tmp.path());
        audit.record(session_start()).unwrap();
        let document = read_document(&audit.finish().unwrap().path).unwrap();
        assert_eq!(document.outcome, None);
        assert_eq!(document.usage, None);
        assert_eq!(document.records.len(), 1);
    }

    #[test]
    fn an_existing_document_is_replaced_only_by_rename() {
        let tmp = tempfile::tempdir().unwrap();
        let mut audit = auditor(tmp.path());
        audit.record(session_start()).unwrap();
        let path = audit.document_path();
        fs::write(&path, b"old document").unwrap();
        let old_inode = fs::metadata(&path).unwrap().ino();
        // A reader that opened the old file keeps seeing it whole: the new one arrives as a new inode.
        let old_reader = File::open(&path).unwrap();

        audit.finish().unwrap();
        assert_ne!(fs::metadata(&path).unwrap().ino(), old_inode);
        let mut seen_by_old_reader = String::new();
        io::Read::read_to_string(&mut &old_reader, &mut seen_by_old_reader).unwrap();
        assert_eq!(seen_by_old_reader, "old document");
        assert!(read_document(&path).is_ok());
    }

    #[test]
    fn a_failed_finish_leaves_no_temp_file() {
        let tmp = tempfile::tempdir().unwrap();
        let mut audit = auditor(tmp.path());
        audit.record(session_start()).unwrap();
        // A non-empty directory where the document should go makes the rename fail.
        let path = audit.document_path();
        fs::create_dir(&path).unwrap();
        fs::write(path.join("keep"), b"x").unwrap();
        let jsonl_name = audit
            .jsonl_path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();

        let err = audit.finish().unwrap_err();
        assert!(matches!(err, AuditError::Rename { .. }), "{err:?}");
        let mut names = dir_names(tmp.path());
        names.retain(|n| n != &jsonl_name);
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(!names[0].contains(".tmp-"), "{names:?}");
    }

    #[test]
    fn status_entries_keep_the_latest_within_count_and_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let mut audit = auditor(tmp.path());
        audit.record(session_start()).unwrap();
        for turn in 1..=8 {
            audit
                .record(tool_call(
                    turn,
                    &format!("kubectl get pods # {turn}"),
                    "",
                    2,
                ))
                .unwrap();
        }
        audit.record(session_end()).unwrap();

        let (all, truncated) = audit.status_entries(100, usize::MAX);
        assert_eq!(all.len(), 10);
        assert!(!truncated);
        assert_eq!(all[0].event, "session_start");
        assert_eq!(all[1].detail, "kubectl get pods # 1");
        assert_eq!(all[1].exit_code, Some(2));
        assert_eq!(all[1].duration_ms, Some(12));
        assert_eq!(all[1].timed_out, Some(false));
        assert_eq!(all[9].detail, "reported");

        let (latest, truncated) = audit.status_entries(3, usize::MAX);
        assert!(truncated);
        let seqs: Vec<u64> = latest.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![8, 9, 10]);

        // A byte budget that fits exactly the last two entries as a JSON array.
        let last_two = serde_json::to_vec(&all[8..]).unwrap().len();
        let (fitted, truncated) = audit.status_entries(5, last_two);
        assert!(truncated);
        assert_eq!(
            fitted.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![9, 10]
        );
        assert!(serde_json::to_vec(&fitted).unwrap().len() <= last_two);
        let (fitted, _) = audit.status_entries(5, last_two - 1);
        assert_eq!(fitted.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![10]);

        let (none, truncated) = audit.status_entries(5, 1);
        assert!(none.is_empty());
        assert!(truncated);
        let (none, truncated) = audit.status_entries(0, usize::MAX);
        assert!(none.is_empty());
        assert!(truncated);
    }

    #[test]
    fn read_jsonl_skips_a_torn_last_line_but_not_a_broken_middle_line() {
        let tmp = tempfile::tempdir().unwrap();
        let mut audit = auditor(tmp.path());
        audit.record(session_start()).unwrap();
        audit
            .record(tool_call(1, "uptime", "up 3 days", 0))
            .unwrap();
        let path = audit.jsonl_path().to_path_buf();
        let complete = fs::read(&path).unwrap();

        let mut torn = complete.clone();
        torn.extend_from_slice(
            br#"{"seq":3,"time":"2026-01-28T09:42:35.000Z","sessionId":"x","event":"tool_ca"#,
        );
        fs::write(&path, &torn).unwrap();
        let back = read_jsonl(&path).unwrap();
        assert_eq!(back, audit.records());

        // The same bytes with a newline are a finished, invalid line: an error naming line 3.
        torn.push(b'\n');
        fs::write(&path, &torn).unwrap();
        match read_jsonl(&path) {
            Err(AuditError::Parse { line, .. }) => assert_eq!(line, 3),
            other => panic!("expected a parse error, got {other:?}"),
        }

        let mut broken_middle = b"{not json}\n".to_vec();
        broken_middle.extend_from_slice(&complete);
        fs::write(&path, &broken_middle).unwrap();
        match read_jsonl(&path) {
            Err(AuditError::Parse { line, .. }) => assert_eq!(line, 1),
            other => panic!("expected a parse error, got {other:?}"),
        }

        // A complete last record missing only its newline is kept.
        fs::write(&path, &complete[..complete.len() - 1]).unwrap();
        assert_eq!(read_jsonl(&path).unwrap().len(), 2);
    }

    #[test]
    fn a_secret_that_equals_a_field_value_is_an_error_and_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let id = new_session_id(jiff::Timestamp::now());
        // "critical" is 8 characters, so it is accepted as a secret, and it is the severity's value.
        let mut audit =
            SessionAuditor::create(tmp.path(), &id, Redactor::new(["critical".to_string()]))
                .unwrap();
        let err = audit.record(session_start()).unwrap_err();
        assert!(matches!(err, AuditError::Redaction { .. }), "{err:?}");
        assert!(audit.records().is_empty());
        assert_eq!(fs::read(audit.jsonl_path()).unwrap(), b"");
        // The auditor stays usable.
        assert_eq!(audit.record(session_end()).unwrap().seq, 1);
    }
    #[test]
    fn readers_ignore_fields_added_later() {
        let line = r#"{"seq":1,"time":"2026-01-28T09:42:35.478Z","sessionId":"s","event":"model_request","turn":1,"messageCount":2,"futureField":{"x":1}}"#;
        let record: AuditRecord = serde_json::from_str(line).unwrap();
        assert_eq!(
            record.event,
            AuditEvent::ModelRequest {
                turn: 1,
                message_count: 2
            }
        );
    }

    /// Set in the child process of the SIGKILL test: the directory to write its audit into.
    const SIGKILL_CHILD_DIR: &str = "INCIDENT_OPERATOR_AUDIT_SIGKILL_CHILD_DIR";

    /// A real process records events as fast as it can and is SIGKILLed mid-stream; every record it
    /// reported as written must be readable afterwards, and at most a torn last line is lost.
    #[test]
    fn records_survive_sigkill_of_the_writing_process() {
        if let Ok(dir) = std::env::var(SIGKILL_CHILD_DIR) {
            // Child: record until killed. Large outputs make it likely the kill lands inside a write.
            let mut audit = auditor(Path::new(&dir));
            let output = "x".repeat(256 * 1024);
            for turn in 1.. {
                let seq = audit
                    .record(tool_call(turn, "yes | head", &output, 0))
                    .unwrap()
                    .seq;
                println!("recorded {seq}");
            }
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "audit::writer::tests::records_survive_sigkill_of_the_writing_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(SIGKILL_CHILD_DIR, tmp.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut last_reported = 0;
        for line in io::BufRead::lines(io::BufReader::new(stdout)) {
            let line = line.unwrap();
            if let Some(seq) = line.strip_prefix("recorded ") {
                last_reported = seq.parse::<u64>().unwrap();
                if last_reported >= 20 {
                    break;
                }
            }
        }
        assert_eq!(
            last_reported, 20,
            "the child stopped before recording 20 events"
        );
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(!status.success());

        let names = dir_names(tmp.path());
        assert_eq!(names.len(), 1, "{names:?}");
        let records = read_jsonl(&tmp.path().join(&names[0])).unwrap();
        assert!(
            records.len() as u64 >= last_reported,
            "{} records",
            records.len()
        );
        for (i, record) in records.iter().enumerate() {
            assert_eq!(record.seq, i as u64 + 1);
            assert_eq!(record.event.kind(), "tool_call");
        }
    }
}

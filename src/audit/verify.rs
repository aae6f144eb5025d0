//! Checks an audit against its hash chain and against what the Incident's status recorded.
//!
//! Used by `kubectl incident verify` (and the audit API's reader): the JSONL records stream through
//! once, line by line; only the hash of the previous line, a few counters and, after a sequence gap,
//! the one missing sequence number are kept, so an audit of any size is verified in constant memory.
//! The final document is hashed as it is read and only its header fields are kept.
//!
//! What a verdict proves is documented in `docs/audit.md` ("Tamper evidence").

use std::fmt;
use std::io::{self, BufRead, Read};

use serde::Deserialize;
use serde::de::IgnoredAny;
use sha2::{Digest, Sha256};

use super::chain;
use crate::incident::IncidentStatus;

/// What the Incident's status says the audit ends with: the trust anchor of a verification.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainAnchor {
    /// `status.sessionId`: fixes the genesis value.
    pub session_id: Option<String>,
    /// `status.audit.chainHead`.
    pub chain_head: Option<String>,
    /// `status.audit.recordCount`.
    pub record_count: Option<u64>,
    /// `status.audit.sha256`: the final document's hash.
    pub document_sha256: Option<String>,
}

impl ChainAnchor {
    /// The anchor an Incident's status holds (all empty when it has none).
    pub fn from_status(status: Option<&IncidentStatus>) -> ChainAnchor {
        let Some(status) = status else {
            return ChainAnchor::default();
        };
        let audit = status.audit.as_ref();
        ChainAnchor {
            session_id: status.session_id.clone(),
            chain_head: audit.and_then(|a| a.chain_head.clone()),
            record_count: audit.and_then(|a| a.record_count),
            document_sha256: audit.and_then(|a| a.sha256.clone()),
        }
    }
}

/// The first thing wrong with the records. `seq` is the position (1-based line) it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// The record at this position is not what the next record (or the recorded head) says it
    /// was. A break between records k and k+1 is reported as k changed: editing k+1's `prev` looks
    /// the same. When the whole chain after k was recomputed, only the head shows it, and the last
    /// record is reported.
    Changed { seq: u64 },
    /// The record with this sequence number is missing (removed from the middle, or the file ends
    /// before the record count the status holds).
    Removed { seq: u64 },
    /// This position holds a record that belongs elsewhere (moved or duplicated).
    Reordered { seq: u64 },
    /// Records from this position on were added after the end the status recorded.
    AppendedAfterEnd { seq: u64 },
    /// This line is not an audit record.
    NotARecord { line: u64, error: String },
    /// This line belongs to another session.
    OtherSession { line: u64, session_id: String },
    /// This line has no `prev`: written before audits had a hash chain, so it cannot be verified.
    Unchained { line: u64 },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Changed { seq } => write!(f, "record {seq} was changed"),
            Finding::Removed { seq } => write!(f, "record {seq} was removed"),
            Finding::Reordered { seq } => {
                write!(f, "record {seq} is out of order (moved or duplicated)")
            }
            Finding::AppendedAfterEnd { seq } => {
                write!(f, "records from {seq} on were appended after the end")
            }
            Finding::NotARecord { line, error } => {
                write!(f, "line {line} is not an audit record: {error}")
            }
            Finding::OtherSession { line, session_id } => {
                write!(f, "line {line} belongs to session {session_id}")
            }
            Finding::Unchained { line } => write!(
                f,
                "line {line} has no hash link (written before the audit hash chain)"
            ),
        }
    }
}

/// Whether the status and the file agree on how the chain ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusAgreement {
    /// Same head and, when the status has one, the same record count.
    Agrees,
    /// The status has no chain head (the session is still running, or predates the chain).
    NotRecorded,
    /// They differ.
    Differs {
        status_head: String,
        file_head: String,
        status_records: Option<u64>,
        file_records: u64,
    },
}

/// What was found about the final document, when one was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DocumentAgreement {
    NotGiven,
    /// Its SHA-256 matches the status (when the status has one) and its head and count match the
    /// records.
    Agrees,
    /// Its bytes are not the ones the status recorded.
    Sha256Differs {
        status: String,
        document: String,
    },
    /// It ends the chain elsewhere than the records do.
    HeadDiffers {
        document_head: String,
        file_head: String,
        document_records: u64,
        file_records: u64,
    },
    /// It is not an audit document.
    Unreadable {
        error: String,
    },
}

/// The result of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Complete records (lines) read.
    pub records: u64,
    /// Hash of the last line read: the file's chain head (the genesis value for an empty file).
    pub head: String,
    /// The first problem in the records, if any.
    pub finding: Option<Finding>,
    pub status: StatusAgreement,
    pub document: DocumentAgreement,
    /// A torn last line (no newline, not JSON) was skipped: what a crash mid-write leaves, accepted
    /// only while the status records no head.
    pub torn_tail: bool,
}

impl Verdict {
    /// True when nothing was found, the status agrees and so does the document (if given).
    pub fn is_intact(&self) -> bool {
        self.finding.is_none()
            && self.status == StatusAgreement::Agrees
            && matches!(
                self.document,
                DocumentAgreement::Agrees | DocumentAgreement::NotGiven
            )
    }
}

/// Why a verification could not run at all (tampering is a [`Verdict`], never an error).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("reading the audit records")]
    ReadRecords(#[source] io::Error),
    #[error("reading the final audit document")]
    ReadDocument(#[source] io::Error),
}

/// The envelope fields the chain needs; the event's fields are skipped without being kept.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    seq: u64,
    session_id: String,
    #[serde(default)]
    prev: Option<String>,
}

/// The final document's header; its records are skipped as they stream past.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocumentHeader {
    session_id: String,
    #[serde(default)]
    chain_head: String,
    #[serde(default)]
    record_count: u64,
    #[serde(default)]
    #[allow(dead_code)]
    records: IgnoredAny,
}

/// Recomputes the chain over `records` (the JSONL file), checks it ends where `anchor` says, and
/// checks `document` (the final `.json`) against both. Reads each input once, front to back.
pub fn verify<R: BufRead, D: Read>(
    mut records: R,
    document: Option<D>,
    anchor: &ChainAnchor,
) -> Result<Verdict, VerifyError> {
    let mut walk = ChainWalk::new(anchor);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = records
            .read_until(b'\n', &mut line)
            .map_err(VerifyError::ReadRecords)?;
        if read == 0 {
            break;
        }
        walk.line(&line);
    }
    let mut verdict = walk.finish();
    if let Some(document) = document {
        verdict.document = check_document(document, anchor, &verdict)?;
    }
    Ok(verdict)
}

/// The state of one pass over the records.
struct ChainWalk<'a> {
    anchor: &'a ChainAnchor,
    /// Known from the anchor, else from the first record.
    session_id: Option<String>,
    /// Lines seen, blank ones excluded: the position of the current line.
    position: u64,
    head: String,
    finding: Option<Finding>,
    /// After a sequence gap: the missing number, to tell a removed record from a moved one.
    missing: Option<u64>,
    /// A line seen that did not end in a newline and did not parse; only allowed last.
    torn: Option<(u64, String)>,
}

impl<'a> ChainWalk<'a> {
    fn new(anchor: &'a ChainAnchor) -> Self {
        let session_id = anchor.session_id.clone();
        ChainWalk {
            anchor,
            head: session_id
                .as_deref()
                .map(chain::genesis)
                .unwrap_or_default(),
            session_id,
            position: 0,
            finding: None,
            missing: None,
            torn: None,
        }
    }

    fn line(&mut self, raw: &[u8]) {
        let bytes = chain::trim_line_end(raw);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        // A torn line followed by more lines is a broken line in the middle, not a crash's tail.
        if let Some((line, error)) = self.torn.take() {
            self.found(Finding::NotARecord { line, error });
        }
        self.position += 1;
        let position = self.position;
        let envelope = match serde_json::from_slice::<Envelope>(bytes) {
            Ok(envelope) => envelope,
            Err(error) => {
                if raw.ends_with(b"\n") {
                    self.found(Finding::NotARecord {
                        line: position,
                        error: error.to_string(),
                    });
                } else {
                    self.torn = Some((position, error.to_string()));
                    self.position -= 1;
                }
                return;
            }
        };
        if let Some(missing) = self.missing
            && envelope.seq == missing
        {
            self.missing = None;
            self.finding = Some(Finding::Reordered { seq: missing });
        }
        if self.finding.is_none() && self.past_the_end(position) {
            self.found(Finding::AppendedAfterEnd { seq: position });
        }
        if self.finding.is_none() {
            self.check(position, &envelope);
        }
        // Only while the chain holds does the head follow the file: after a problem it is the
        // head of the last good line, and the count keeps counting.
        if self.finding.is_none() {
            self.head = chain::link(bytes);
            self.check_end(position);
        }
    }

    /// Checks one line against the chain so far.
    fn check(&mut self, position: u64, envelope: &Envelope) {
        let session_id = self
            .session_id
            .get_or_insert_with(|| envelope.session_id.clone());
        if envelope.session_id != *session_id {
            let other = envelope.session_id.clone();
            return self.found(Finding::OtherSession {
                line: position,
                session_id: other,
            });
        }
        if position == 1 && self.head.is_empty() {
            self.head = chain::genesis(session_id);
        }
        let Some(prev) = envelope.prev.as_deref().filter(|p| !p.is_empty()) else {
            return self.found(Finding::Unchained { line: position });
        };
        let linked = prev == self.head;
        if envelope.seq == position {
            if !linked {
                // The previous line's bytes are not what this one recorded.
                self.found(Finding::Changed {
                    seq: position.saturating_sub(1).max(1),
                });
            }
        } else if linked {
            // In its place, but its sequence number was edited.
            self.found(Finding::Changed { seq: position });
        } else if envelope.seq > position {
            // A gap: removed, unless the missing record turns up later.
            self.missing = Some(position);
            self.found(Finding::Removed { seq: position });
        } else {
            self.found(Finding::Reordered { seq: position });
        }
    }

    /// Whether a line at `position` lies beyond the end the status recorded: past its record
    /// count, or (without a count) right after the line whose hash is the recorded head.
    fn past_the_end(&self, position: u64) -> bool {
        let Some(status_head) = self.anchor.chain_head.as_deref() else {
            return false;
        };
        match self.anchor.record_count {
            Some(count) => position == count + 1,
            None => position > 1 && self.head == status_head,
        }
    }

    /// At the position the status says is the last: the head must match, and nothing may follow.
    fn check_end(&mut self, position: u64) {
        let Some(status_head) = self.anchor.chain_head.as_deref() else {
            return;
        };
        if self.anchor.record_count == Some(position) && self.head != status_head {
            self.found(Finding::Changed { seq: position });
        }
    }

    fn found(&mut self, finding: Finding) {
        if self.finding.is_none() {
            self.finding = Some(finding);
        }
    }

    fn finish(mut self) -> Verdict {
        let records = self.position;
        let torn_tail = self.torn.is_some();
        if let Some((line, error)) = self.torn.take()
            && self.anchor.chain_head.is_some()
        {
            // A finished session leaves no torn line: something was written after it ended.
            self.found(Finding::NotARecord { line, error });
        }
        if let (Some(status_head), None) = (self.anchor.chain_head.as_deref(), &self.finding) {
            match self.anchor.record_count {
                Some(count) if records < count => self.found(Finding::Removed { seq: records + 1 }),
                None if self.head != status_head => self.found(Finding::Changed {
                    seq: records.max(1),
                }),
                _ => {}
            }
        }
        let status = match self.anchor.chain_head.as_deref() {
            None => StatusAgreement::NotRecorded,
            Some(status_head)
                if status_head == self.head
                    && self.anchor.record_count.is_none_or(|c| c == records)
                    && self.finding.is_none() =>
            {
                StatusAgreement::Agrees
            }
            Some(status_head) => StatusAgreement::Differs {
                status_head: status_head.to_string(),
                file_head: self.head.clone(),
                status_records: self.anchor.record_count,
                file_records: records,
            },
        };
        Verdict {
            records,
            head: self.head,
            finding: self.finding,
            status,
            document: DocumentAgreement::NotGiven,
            torn_tail,
        }
    }
}

/// Hashes the document while its header is parsed, then compares it with the status and the file.
fn check_document<D: Read>(
    document: D,
    anchor: &ChainAnchor,
    verdict: &Verdict,
) -> Result<DocumentAgreement, VerifyError> {
    let mut reader = HashingReader {
        inner: document,
        hasher: Sha256::new(),
    };
    let parsed = serde_json::from_reader::<_, DocumentHeader>(&mut reader);
    // Whatever the parser left unread still belongs to the bytes the status hashed.
    io::copy(&mut reader, &mut io::sink()).map_err(VerifyError::ReadDocument)?;
    let sha256 = hex::encode(reader.hasher.finalize());
    let header = match parsed {
        Ok(header) => header,
        Err(error) if error.is_io() => {
            return Err(VerifyError::ReadDocument(io::Error::other(error)));
        }
        Err(error) => {
            return Ok(DocumentAgreement::Unreadable {
                error: error.to_string(),
            });
        }
    };
    if let Some(status) = &anchor.document_sha256
        && *status != sha256
    {
        return Ok(DocumentAgreement::Sha256Differs {
            status: status.clone(),
            document: sha256,
        });
    }
    let same_session = anchor
        .session_id
        .as_deref()
        .is_none_or(|id| id == header.session_id);
    if !same_session || header.chain_head != verdict.head || header.record_count != verdict.records
    {
        return Ok(DocumentAgreement::HeadDiffers {
            document_head: header.chain_head,
            file_head: verdict.head.clone(),
            document_records: header.record_count,
            file_records: verdict.records,
        });
    }
    Ok(DocumentAgreement::Agrees)
}

/// Feeds every byte read through it into a SHA-256.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::audit::{AuditEvent, FinishedAudit, Redactor, SessionAuditor, new_session_id};

    /// A finished audit of `records` tool calls written by the real writer: its JSONL lines (each
    /// with its newline), the final document's bytes and the anchor its status would hold.
    struct Written {
        lines: Vec<Vec<u8>>,
        document: Vec<u8>,
        anchor: ChainAnchor,
    }

    fn write_audit(dir: &Path, records: u32) -> Written {
        let id = new_session_id(jiff::Timestamp::now());
        let mut audit = SessionAuditor::create(dir, &id, Redactor::default()).unwrap();
        for turn in 1..=records {
            audit
                .record(AuditEvent::ToolCall {
                    turn,
                    tool_use_id: format!("toolu_{turn:02}"),
                    tool: "shell".into(),
                    command: format!("kubectl get pods # {turn}"),
                    timeout_seconds: 60,
                    result: json!({"stdout": "ok\n", "exitCode": 0, "durationMs": 3}),
                })
                .unwrap();
        }
        let jsonl = audit.jsonl_path().to_path_buf();
        let FinishedAudit {
            path,
            sha256,
            chain_head,
            record_count,
        } = audit.finish().unwrap();
        let bytes = fs::read(jsonl).unwrap();
        let lines = bytes
            .split_inclusive(|&b| b == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        Written {
            lines,
            document: fs::read(path).unwrap(),
            anchor: ChainAnchor {
                session_id: Some(id),
                chain_head: Some(chain_head),
                record_count: Some(record_count),
                document_sha256: Some(sha256),
            },
        }
    }

    fn check(lines: &[Vec<u8>], anchor: &ChainAnchor) -> Verdict {
        verify(&lines.concat()[..], None::<&[u8]>, anchor).unwrap()
    }

    /// Replaces `command` in line `index` (0-based) with other text of the same kind.
    fn edit(line: &[u8]) -> Vec<u8> {
        let text = String::from_utf8(line.to_vec()).unwrap();
        let edited = text.replacen("kubectl get pods", "kubectl get podz", 1);
        assert_ne!(edited, text);
        edited.into_bytes()
    }

    #[test]
    fn an_untouched_audit_is_intact_with_its_document() {
        let tmp = tempfile::tempdir().unwrap();
        let w = write_audit(tmp.path(), 5);
        let verdict = verify(&w.lines.concat()[..], Some(&w.document[..]), &w.anchor).unwrap();
        assert_eq!(verdict.finding, None);
        assert_eq!(verdict.records, 5);
        assert_eq!(verdict.status, StatusAgreement::Agrees);
        assert_eq!(verdict.document, DocumentAgreement::Agrees);
        assert!(verdict.is_intact());
        assert_eq!(Some(&verdict.head), w.anchor.chain_head.as_ref());
    }

    #[test]
    fn the_first_record_links_to_the_genesis_of_its_session() {
        let tmp = tempfile::tempdir().unwrap();
        let w = write_audit(tmp.path(), 1);
        let first: serde_json::Value = serde_json::from_slice(&w.lines[0]).unwrap();
        let id = w.anchor.session_id.as_deref().unwrap();
        assert_eq!(first["prev"], chain::genesis(id));
        // The same file checked as another session's audit breaks at its first record.
        let other = ChainAnchor {
            session_id: Some("2026-01-01T00-00-00-00000000".into()),
            ..w.anchor.clone()
        };
        assert!(matches!(
            check(&w.lines, &other).finding,
            Some(Finding::OtherSession { line: 1, .. })
        ));
    }

    #[test]
    fn an_empty_audit_of_an_empty_session_is_intact() {
        let tmp = tempfile::tempdir().unwrap();
        let w = write_audit(tmp.path(), 0);
        let verdict = verify(&b""[..], Some(&w.document[..]), &w.anchor).unwrap();
        assert!(verdict.is_intact(), "{verdict:?}");
    }

    #[test]
    fn a_changed_last_record_shows_only_at_the_head() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = write_audit(tmp.path(), 4);
        w.lines[3] = edit(&w.lines[3]);
        let verdict = check(&w.lines, &w.anchor);
        assert_eq!(verdict.finding, Some(Finding::Changed { seq: 4 }));
        assert!(matches!(verdict.status, StatusAgreement::Differs { .. }));
    }

    #[test]
    fn trailing_records_removed_are_missing_from_the_recorded_count() {
        let tmp = tempfile::tempdir().unwrap();
        let w = write_audit(tmp.path(), 4);
        let verdict = check(&w.lines[..2], &w.anchor);
        assert_eq!(verdict.finding, Some(Finding::Removed { seq: 3 }));
        assert!(!verdict.is_intact());
    }

    #[test]
    fn a_record_appended_with_a_correct_link_is_past_the_end() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = write_audit(tmp.path(), 3);
        let mut extra: serde_json::Value = serde_json::from_slice(&w.lines[2]).unwrap();
        extra["seq"] = json!(4);
        extra["prev"] = json!(chain::link(&w.lines[2]));
        let mut line = serde_json::to_vec(&extra).unwrap();
        line.push(b'\n');
        w.lines.push(line);
        assert_eq!(
            check(&w.lines, &w.anchor).finding,
            Some(Finding::AppendedAfterEnd { seq: 4 })
        );
        // Without a record count, the recorded head marks the end.
        let headless = ChainAnchor {
            record_count: None,
            ..w.anchor.clone()
        };
        assert_eq!(
            check(&w.lines, &headless).finding,
            Some(Finding::AppendedAfterEnd { seq: 4 })
        );
    }

    #[test]
    fn a_running_session_without_a_head_checks_the_chain_only_and_skips_a_torn_tail() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = write_audit(tmp.path(), 3);
        let running = ChainAnchor {
            session_id: w.anchor.session_id.clone(),
            ..ChainAnchor::default()
        };
        w.lines.push(br#"{"seq":4,"time":"2026-"#.to_vec());
        let verdict = check(&w.lines, &running);
        assert_eq!(verdict.finding, None);
        assert!(verdict.torn_tail);
        assert_eq!(verdict.records, 3);
        assert_eq!(verdict.status, StatusAgreement::NotRecorded);
        assert!(!verdict.is_intact());
        // A finished session leaves no torn line.
        assert!(matches!(
            check(&w.lines, &w.anchor).finding,
            Some(Finding::NotARecord { line: 4, .. })
        ));
    }

    #[test]
    fn lines_that_are_not_records_or_have_no_link_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = write_audit(tmp.path(), 3);
        let mut broken = w.lines.clone();
        broken[1] = b"{not json}\n".to_vec();
        assert!(matches!(
            check(&broken, &w.anchor).finding,
            Some(Finding::NotARecord { line: 2, .. })
        ));
        let mut old: serde_json::Value = serde_json::from_slice(&w.lines[0]).unwrap();
        old.as_object_mut().unwrap().remove("prev");
        w.lines[0] = [serde_json::to_vec(&old).unwrap(), b"\n".to_vec()].concat();
        assert_eq!(
            check(&w.lines, &w.anchor).finding,
            Some(Finding::Unchained { line: 1 })
        );
    }

    #[test]
    fn the_document_must_match_the_status_hash_and_the_records() {
        let tmp = tempfile::tempdir().unwrap();
        let w = write_audit(tmp.path(), 3);
        let changed = edit(&w.document);
        let verdict = verify(&w.lines.concat()[..], Some(&changed[..]), &w.anchor).unwrap();
        assert!(matches!(
            verdict.document,
            DocumentAgreement::Sha256Differs { .. }
        ));
        assert!(!verdict.is_intact());
        // Someone who rewrites the document and its hash in status still has to match the records.
        let mut doc: serde_json::Value = serde_json::from_slice(&w.document).unwrap();
        doc["recordCount"] = json!(2);
        let doc = serde_json::to_vec(&doc).unwrap();
        let anchor = ChainAnchor {
            document_sha256: Some(hex::encode(Sha256::digest(&doc))),
            ..w.anchor.clone()
        };
        let verdict = verify(&w.lines.concat()[..], Some(&doc[..]), &anchor).unwrap();
        assert!(matches!(
            verdict.document,
            DocumentAgreement::HeadDiffers {
                document_records: 2,
                file_records: 3,
                ..
            }
        ));
        let verdict = verify(
            &w.lines.concat()[..],
            Some(&b"[]"[..]),
            &ChainAnchor {
                document_sha256: None,
                ..w.anchor.clone()
            },
        )
        .unwrap();
        assert!(matches!(
            verdict.document,
            DocumentAgreement::Unreadable { .. }
        ));
    }

    #[derive(Clone, Debug)]
    enum Tamper {
        Change(usize),
        Remove(usize),
        Swap(usize),
        Duplicate(usize),
        Append,
    }

    fn tamper_strategy(len: usize) -> impl Strategy<Value = Tamper> {
        prop_oneof![
            (0..len).prop_map(Tamper::Change),
            (0..len).prop_map(Tamper::Remove),
            (0..len - 1).prop_map(Tamper::Swap),
            (0..len).prop_map(Tamper::Duplicate),
            Just(Tamper::Append),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Every kind of tampering is found, at the first position it touches.
        #[test]
        fn every_tampering_is_found_where_it_happened(
            (len, tamper) in (2usize..12).prop_flat_map(|len| (Just(len), tamper_strategy(len)))
        ) {
            let tmp = tempfile::tempdir().unwrap();
            let w = write_audit(tmp.path(), len as u32);
            let mut lines = w.lines.clone();
            let expected = match tamper {
                Tamper::Change(i) => {
                    lines[i] = edit(&lines[i]);
                    Finding::Changed { seq: i as u64 + 1 }
                }
                Tamper::Remove(i) => {
                    lines.remove(i);
                    Finding::Removed { seq: i as u64 + 1 }
                }
                Tamper::Swap(i) => {
                    lines.swap(i, i + 1);
                    Finding::Reordered { seq: i as u64 + 1 }
                }
                Tamper::Duplicate(i) => {
                    let copy = lines[i].clone();
                    lines.insert(i + 1, copy);
                    if i + 1 == len {
                        // A copy of the last record lies past the recorded end.
                        Finding::AppendedAfterEnd { seq: len as u64 + 1 }
                    } else {
                        Finding::Reordered { seq: i as u64 + 2 }
                    }
                }
                Tamper::Append => {
                    lines.push(lines[len - 1].clone());
                    Finding::AppendedAfterEnd { seq: len as u64 + 1 }
                }
            };
            let verdict = check(&lines, &w.anchor);
            prop_assert!(!verdict.is_intact());
            prop_assert_eq!(verdict.finding, Some(expected));
        }
    }
}

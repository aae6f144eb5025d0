//! The session audit: every model turn and tool call of an agent session, recorded as it happens.
//!
//! - [`session_id`]: the id that names a session's files and appears in the Incident's status.
//! - [`event`]: what is recorded ([`AuditEvent`]).
//! - [`redact`]: hides secrets before anything is written ([`Redactor`]).
//! - [`writer`]: the append-only JSONL log, fsync'd per record, and the final document written
//!   atomically at the end ([`SessionAuditor`]).
//! - [`chain`]: the hash chain linking each record to the one before it.
//! - [`verify`]: recomputes the chain from a file and checks it against the Incident's status.
//!
//! The schema is documented in `docs/audit.md`.

pub mod chain;
pub mod event;
pub mod redact;
pub mod session_id;
pub mod verify;
pub mod writer;

pub use event::{
    AuditEvent, ExecutionStart, IncidentRef, SessionLimits, StepAction, ToolUseSummary,
};
pub use redact::{Redacted, Redactor, SealError};
pub use session_id::{is_valid_session_id, new_session_id};
pub use verify::{ChainAnchor, DocumentAgreement, Finding, StatusAgreement, Verdict, verify};
pub use writer::{
    AUDIT_VERSION, AuditDocument, AuditError, AuditRecord, FinishedAudit, SessionAuditor,
    read_document, read_jsonl,
};

//! The hash chain that makes a session's audit tamper-evident.
//!
//! Every JSONL record carries in `prev` the SHA-256 of the previous record's exact line bytes (the
//! line without its trailing newline); the first record carries a genesis value derived from the
//! session id. The hash of the last line is the chain head: the writer ([`super::writer`]) puts it
//! in the final document and the agent puts it in the Incident's `status.audit.chainHead`, and
//! [`super::verify`] recomputes it from a file. Pure functions, no IO.

use sha2::{Digest, Sha256};

/// Prefix hashed with the session id into the first record's `prev`. Versioned so a future chain
/// format can never be confused with this one.
pub const GENESIS_PREFIX: &str = "incident-operator audit chain v1\n";

/// The `prev` of a session's first record: lowercase hex SHA-256 of [`GENESIS_PREFIX`] followed by
/// the session id. Fixed per session, so a first record moved into another session's file, or a
/// record put in front of it, breaks the chain.
pub fn genesis(session_id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(GENESIS_PREFIX.as_bytes());
    hasher.update(session_id.as_bytes());
    hex::encode(hasher.finalize())
}

/// The link a record passes on: lowercase hex SHA-256 of its line, without the trailing newline
/// (a trailing `\r` or `\n` is not part of the record and is ignored).
pub fn link(line: &[u8]) -> String {
    hex::encode(Sha256::digest(trim_line_end(line)))
}

/// `line` without its line terminator.
pub fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn genesis_depends_on_the_session_and_is_hex() {
        let a = genesis("2026-01-28T09-42-35-2886f5df");
        let b = genesis("2026-01-28T09-42-35-2886f5e0");
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(a, genesis("2026-01-28T09-42-35-2886f5df"));
    }

    #[test]
    fn link_ignores_the_line_terminator_only() {
        assert_eq!(link(b"{\"seq\":1}\n"), link(b"{\"seq\":1}"));
        assert_eq!(link(b"{\"seq\":1}\r\n"), link(b"{\"seq\":1}"));
        assert_ne!(link(b"{\"seq\":1} "), link(b"{\"seq\":1}"));
        // The well-known SHA-256 of the empty string.
        assert_eq!(
            link(b"\n"),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}

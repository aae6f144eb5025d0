//! What `verify` costs on audits of growing size: wall time, throughput and how much the peak
//! resident memory grows while it runs (it streams, so that should not grow with the audit).
//! Prints a table; run with `cargo bench --bench audit_verify`.
//!
//! Each audit is N `tool_call` records with 1 KiB of stdout, chained exactly as the writer chains
//! them (`audit::chain`), written to a temp file first; the verify then reads that file.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::time::Instant;

use incident_operator::audit::chain;
use incident_operator::audit::verify::{ChainAnchor, verify};
use incident_operator::audit::{AuditEvent, AuditRecord};

const SIZES: [u64; 3] = [1_000, 10_000, 100_000];
const SESSION: &str = "2026-01-28T09-42-35-2886f5df";

/// Peak resident set size of this process so far, in KiB (`VmHWM`).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// Writes `records` chained records to `path`; returns the head and the file size.
fn write_audit(path: &std::path::Path, records: u64) -> (String, u64) {
    let mut out = BufWriter::new(File::create(path).expect("audit file"));
    let mut prev = chain::genesis(SESSION);
    let stdout = "checkout-api-7d9f8b6c4-x2x9z   1/1   Running   0   3d   10.0.0.12\n".repeat(16);
    let mut bytes = 0;
    for seq in 1..=records {
        let record = AuditRecord {
            seq,
            time: "2026-01-28T09:42:35.478Z".into(),
            session_id: SESSION.into(),
            prev: prev.clone(),
            event: AuditEvent::ToolCall {
                turn: u32::try_from(seq).unwrap_or(u32::MAX),
                tool_use_id: format!("toolu_{seq}"),
                tool: "shell".into(),
                command: "kubectl -n shop get pods -o wide".into(),
                timeout_seconds: 60,
                result: serde_json::json!({"stdout": stdout, "stderr": "", "exitCode": 0,
                                           "timedOut": false, "durationMs": 41}),
            },
        };
        let line = serde_json::to_vec(&record).expect("a record serializes");
        prev = chain::link(&line);
        out.write_all(&line)
            .and_then(|()| out.write_all(b"\n"))
            .expect("write");
        bytes += line.len() as u64 + 1;
    }
    out.flush().expect("flush");
    (prev, bytes)
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    println!(
        "| records | file MB | verify ms | MB/s | peak RSS growth KiB | process peak RSS MiB |"
    );
    println!(
        "|--------:|--------:|----------:|-----:|--------------------:|---------------------:|"
    );
    for records in SIZES {
        let path = dir.path().join(format!("{records}.jsonl"));
        let (head, bytes) = write_audit(&path, records);
        let anchor = ChainAnchor {
            session_id: Some(SESSION.into()),
            chain_head: Some(head),
            record_count: Some(records),
            document_sha256: None,
        };
        let before = peak_rss_kib();
        let started = Instant::now();
        let reader = BufReader::new(File::open(&path).expect("open"));
        let verdict = verify(reader, None::<File>, &anchor).expect("verify runs");
        let elapsed = started.elapsed();
        let growth = peak_rss_kib().saturating_sub(before);
        assert!(verdict.is_intact(), "{verdict:?}");
        let mb = bytes as f64 / 1e6;
        println!(
            "| {records} | {mb:.1} | {:.0} | {:.0} | {growth} | {:.1} |",
            elapsed.as_secs_f64() * 1000.0,
            mb / elapsed.as_secs_f64(),
            peak_rss_kib() as f64 / 1024.0
        );
        std::fs::remove_file(&path).ok();
    }
}

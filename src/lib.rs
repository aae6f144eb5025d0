//! incident-operator: a Kubernetes operator that turns alerts into audited agent investigations.
//!
//! The binary (`src/main.rs`) only parses flags; every subcommand is a module here:
//! - [`incident`]: the `Incident` custom resource, shared by everything else.
//! - [`audit`]: the per-session audit log (JSONL, fsync'd per record) and secret redaction.
//! - [`cli`]: flag definitions and the dispatch to each subcommand.
#![forbid(unsafe_code)]

pub mod audit;
pub mod cli;
pub mod incident;

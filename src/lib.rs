//! incident-operator: a Kubernetes operator that turns alerts into audited agent investigations.
//!
//! The binary (`src/main.rs`) only parses flags; every subcommand is a module here:
//! - [`incident`]: the `Incident` custom resource, shared by everything else.
//! - [`agent`]: the tool-use loop, its prompt, tools and limits (no Kubernetes types).
//! - [`shell`]: the one tool that touches the machine: bounded, killable commands.
//! - [`audit`]: the per-session audit log (JSONL, fsync'd per record) and secret redaction.
//! - [`anthropic`]: the Messages API client with retries and prompt caching.
//! - [`investigate`]: run one incident locally; [`progress`] shows it on a terminal.
//! - [`pod_agent`]: the `agent` subcommand inside an agent pod: Incident in, status out.
//! - [`errors`]: one-line error chains for logs, events and answers.
//! - [`cli`]: flag definitions and the dispatch to each subcommand.
//! - [`controller`]: the operator's controller (`incident-operator controller`).
//! - [`intake`]: the Alertmanager webhook that creates and deduplicates Incidents.
//! - [`approval`]: the `IncidentApproval` CRD, the approval decision and the approve/reject command.
//! - [`plugin`]: the `kubectl-incident` plugin binary (`src/bin/kubectl-incident.rs`).
#![forbid(unsafe_code)]

pub mod agent;
pub mod anthropic;
pub mod approval;
pub mod audit;
pub mod audit_api;
pub mod budget;
pub mod cli;
pub mod controller;
pub mod errors;
pub mod incident;
pub mod intake;
pub mod investigate;
pub mod notify;
pub mod plan;
pub mod plugin;
pub mod pod_agent;
pub mod progress;
pub mod recurrence;
pub mod shell;
pub mod signals;

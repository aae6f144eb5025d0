//! incident-operator: a Kubernetes operator that turns alerts into audited agent investigations.
//!
//! The binary (`src/main.rs`) only parses flags; every subcommand is a module here:
//! - [`incident`]: the `Incident` custom resource, shared by everything else.
//! - [`cli`]: flag definitions and the dispatch to each subcommand.
//! - [`intake`]: the Alertmanager webhook that creates and deduplicates Incidents.
#![forbid(unsafe_code)]

pub mod cli;
pub mod incident;
pub mod intake;

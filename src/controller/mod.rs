//! The `controller` subcommand: watches Incidents and runs one agent pod per investigation.
//!
//! The pipeline of one reconcile, after stackable's operators:
//! observe ([`pod_state`], [`queue`]) → decide ([`lifecycle`], [`conditions`]) → build ([`pod`])
//! → apply (pods, status, events) → update metrics. Only the apply step and the watches touch the
//! API server; everything before it is a pure function with unit tests.
//!
//! Modules, one job each:
//! - [`keys`]: labels, annotations, field managers and fixed names.
//! - [`pod`]: the agent pod an Incident gets ([`pod::build_agent_pod`]).
//! - [`pod_state`]: what an agent pod's status means for its attempt.
//! - [`conditions`]: condition types, reasons and the transition-time rule.
//! - [`lifecycle`]: the next status and actions ([`lifecycle::next_status`]).
//! - [`approval_stage`]: the remediate-mode stage between a proposed plan and its execution.
//! - [`approvals`]: the IncidentApproval caches and what a reconcile reads of them.
//! - [`queue`]: fair admission under the concurrency limit.
//! - [`rerun`]: the rerun annotation and run ids.
//! - [`events`]: Kubernetes Events per transition, published with [`event_series`] folding repeats.
//! - [`lean`]: what the caches keep of each watched object.
//! - [`watch_index`], [`admission_queue`], [`pod_index`]: indexes kept from watch events (the
//!   queue in order, pods by Incident), so no reconcile walks the whole cache.
//! - [`listed_order`]: the first reconcile after a list, in queue order and paced.
//! - [`cache`]: the reflector caches and indexes, and the queries the reconciler makes of them.
//! - [`queued_writes`]: batched status writes for waiting Incidents, behind admissions.
//! - [`status_diff`]: whether a status apply would change anything.
//! - [`apply`]: every write to the API server.
//! - [`reconcile`]: one reconcile, wiring the steps together, and the error policy.
//! - [`error`]: the reconcile error enum.
//! - [`metrics`]: Prometheus metrics.
//! - [`leader`]: leader election through a Lease.
//! - [`health`], [`http`]: `/healthz`, `/readyz` and `/metrics`.
//! - [`flags`]: the subcommand's flags and the configuration they make.
//! - [`telemetry`]: logging set-up.
//! - [`runner`]: the process: CRD check, HTTP server, election, controllers, shutdown.
//! - [`text`]: bounding strings for size-limited fields.

pub mod admission_queue;
pub mod apply;
pub mod approval_stage;
pub mod approvals;
pub mod bounded_server;
pub mod cache;
pub mod conditions;
pub mod error;
pub mod event_series;
pub mod events;
pub mod flags;
pub mod health;
pub mod http;
pub mod keys;
pub mod leader;
pub mod lean;
pub mod lifecycle;
pub mod listed_order;
pub mod metrics;
pub mod pod;
pub mod pod_index;
pub mod pod_state;
pub mod queue;
pub mod queued_writes;
pub mod reconcile;
pub mod rerun;
pub mod runner;
pub mod spend_index;
pub mod status_diff;
pub mod telemetry;
pub mod text;
pub mod watch_index;

pub use flags::{ControllerArgs, ControllerConfig};
pub use runner::{RunError, main, run, run_until};

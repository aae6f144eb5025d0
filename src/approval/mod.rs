//! Human approval of remediation plans (issue 12), between the investigation that proposes a plan
//! and the execution session that runs it:
//!
//! ```text
//! investigation report with a plan ─▶ status.plan (AwaitingApproval) ─▶ IncidentApproval ─▶
//!   decide (pure) ─▶ status.approval ─▶ execution pod (remediation ServiceAccount) ─▶ Completed
//! ```
//!
//! - [`resource`]: the `IncidentApproval` CRD.
//! - [`decide`]: which approval (if any) settles the current plan; pure, no IO.
//! - [`command`]: `incident-operator approve|reject` as a library call (the kubectl plugin reuses it).

pub mod command;
pub mod decide;
pub mod resource;

pub use resource::{IncidentApproval, IncidentApprovalSpec, crd_yaml};

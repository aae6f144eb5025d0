//! The environment contract between the controller and the execution agent: the controller starts
//! the execution pod with these variables set, the `agent` subcommand reads them (see
//! [`super::approved`]). Defined once here so neither side spells them on its own.

/// JSON of the approved [`super::Plan`] (as in `status.plan.plan`). Its presence puts the agent
/// in execution mode.
pub const APPROVED_PLAN_ENV: &str = "INCIDENT_APPROVED_PLAN";
/// [`super::plan_hash`] of that plan as the approval named it (`sha256:<64 hex>`); the agent
/// recomputes the hash and refuses to start on a mismatch.
pub const APPROVED_PLAN_HASH_ENV: &str = "INCIDENT_APPROVED_PLAN_HASH";
/// JSON of the [`super::ApprovalRecord`] the controller acted on, for the audit. Optional; when
/// given, its `decision` must be `approve` and its `planHash` the plan's hash.
pub const APPROVAL_ENV: &str = "INCIDENT_APPROVAL";
/// Audit session id of the investigation that proposed the plan (`status.plan.sessionId`).
/// Optional: without it the agent takes `status.plan.sessionId` from the Incident it reads.
pub const PROPOSING_SESSION_ENV: &str = "INCIDENT_PLAN_SESSION_ID";

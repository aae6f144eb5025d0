//! Notifications: telling the on-call engineer what an investigation found, without being asked.
//!
//! Pipeline, like the controller's: **observe** ([`events`]: what an Incident's status shows —
//! completed, failed, limit reached, recurred, budget exhausted) → **decide** ([`route`]: which
//! sinks get it under their routes and the Incident's `spec.notifications`, minus what
//! `status.notifications` already records; pure) → **act** ([`deliver`]: the wire formats of
//! [`sinks`] — Slack Block Kit, PagerDuty Events v2, a signed JSON webhook — with bounded retries
//! honouring `Retry-After`; [`record`]: the outcome into `status.notifications`). [`worker`] runs
//! the loop on the leader only, off the reconcile path; [`config`] reads the sinks, whose secrets
//! are files mounted from Secrets.

pub mod config;
pub mod deliver;
pub mod events;
pub mod metrics;
pub mod record;
pub mod route;
pub mod sinks;
pub mod worker;

pub use config::{NotifyConfig, NotifyConfigError};
pub use events::NotifyEvent;

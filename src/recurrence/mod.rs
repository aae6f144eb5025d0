//! Recurrence policy and memory, the *decide* stage between the intake observing a firing alert
//! and acting on it: [`policy`] says whether a firing inside the cool-down after a finished
//! Incident is only counted (`status.alert.recurrences`) rather than investigated again, and
//! [`memory`] picks, redacts and bounds what the next generation recalls of its predecessors
//! (`spec.predecessors`). Both are pure; `src/intake/ingest.rs` does the IO.

pub mod memory;
pub mod policy;

pub use policy::{COOLDOWN_KEY, DEFAULT_COOLDOWN, cooldown_for, parse_cooldown};

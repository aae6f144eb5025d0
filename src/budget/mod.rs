//! Spend guard, the *decide* stage for cost: [`prices`] turns a session's tokens into dollars
//! (`status.usage.costUSD`), [`spend`] sums the Incidents' own spend over a rolling 24 h and says
//! whether a new agent may start. Both are pure; the controller's reconcile observes the cached
//! Incidents, calls [`spend::check`] before admitting an agent, and acts (phase `Queued`, reason
//! `BudgetExhausted`, an Event, a requeue when the window frees budget).

pub mod metrics;
pub mod pod_env;
pub mod prices;
pub mod spend;

pub use prices::{ModelPrice, PriceTable, PriceTableError};
pub use spend::{BudgetCheck, BudgetLimits, BudgetScope, Spend, check, spend_of};

//! Kubernetes Events on the Incident, one per transition, so `kubectl describe inc` shows the
//! story: queued, started, retried, completed or failed.
//!
//! The lifecycle decides *which* events happen ([`IncidentEvent`], pure); [`EventPublisher`] writes
//! them as `events.k8s.io/v1` Events, folding repeats into the first Event's `series`
//! ([`super::event_series`] decides which are repeats, in bounded memory). It replaces
//! kube-runtime's `Recorder`, whose cache grows with every Event published and is swept whole on
//! each publish (see [`super::event_series`] for why that mattered).

use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as KubeEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::event_series::{SeriesCache, SeriesKey, SeriesStep};
use super::text::truncate_start;

/// Waiting for a free agent slot.
pub const REASON_QUEUED: &str = "Queued";
/// An agent pod was created.
pub const REASON_AGENT_STARTED: &str = "AgentStarted";
/// An attempt failed and another will follow.
pub const REASON_AGENT_RETRYING: &str = "AgentRetrying";
/// The agent finished; the report is in the status.
pub const REASON_COMPLETED: &str = "Completed";
/// The Incident gave up (attempts exhausted).
pub const REASON_FAILED: &str = "Failed";
/// The Incident does not match the schema; nothing runs until it is fixed.
pub const REASON_INVALID_SPEC: &str = "InvalidSpec";
/// The API-key Secret is missing; nothing runs until it exists.
pub const REASON_MISSING_API_KEY_SECRET: &str = "MissingApiKeySecret";
/// The agent pod's ServiceAccount is missing; nothing runs until it exists.
pub const REASON_MISSING_SERVICE_ACCOUNT: &str = "MissingServiceAccount";
/// A rerun was requested through the annotation.
pub const REASON_RERUN_STARTED: &str = "RerunStarted";
/// The spec changed after the Incident finished; it is not rerun automatically.
pub const REASON_SPEC_CHANGED_AFTER_FINISH: &str = "SpecChangedAfterFinish";
/// The agent pod cannot start (image pull, configuration), as the kubelet reports it.
pub const REASON_AGENT_POD_STUCK: &str = "AgentPodStuck";
/// A reconcile failed; the note holds the error chain.
pub const REASON_RECONCILE_ERROR: &str = "ReconcileError";
/// The alert fired again within the recurrence cool-down; counted, not investigated again.
pub const REASON_RECURRED: &str = "Recurred";
/// The daily budget is spent; the Incident waits in Queued until the window frees budget.
pub const REASON_BUDGET_EXHAUSTED: &str = "BudgetExhausted";
/// A remediate-mode investigation proposed a plan; it waits for a human's IncidentApproval.
pub const REASON_PLAN_PROPOSED: &str = "PlanProposed";
/// A human approved the plan (the note names who, through which IncidentApproval).
pub const REASON_PLAN_APPROVED: &str = "PlanApproved";
/// A human rejected the plan.
pub const REASON_PLAN_REJECTED: &str = "PlanRejected";
/// Nobody approved the plan before it expired.
pub const REASON_APPROVAL_EXPIRED: &str = "ApprovalExpired";
/// An IncidentApproval was not acted on: it names another plan hash, or came too early or late.
pub const REASON_STALE_PLAN_HASH: &str = "StalePlanHash";
/// The execution pod of an approved plan was created (its own reason: Events with one reason
/// are aggregated into one series, which would hide it under the investigation's AgentStarted).
pub const REASON_EXECUTION_STARTED: &str = "ExecutionStarted";
/// The execution session of an approved plan finished.
pub const REASON_PLAN_EXECUTED: &str = "PlanExecuted";

/// The Events API caps notes at 1 KiB.
pub const NOTE_MAX_BYTES: usize = 1000;

/// Every event names the action "Reconcile": it is what the controller was doing.
const ACTION: &str = "Reconcile";

/// An event the lifecycle wants published on the Incident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentEvent {
    /// Warning (something needs attention) or Normal.
    pub warning: bool,
    /// One of the `REASON_*` constants.
    pub reason: &'static str,
    /// What happened, for people; shortened to [`NOTE_MAX_BYTES`] when published.
    pub note: String,
}

impl IncidentEvent {
    /// A Normal event.
    pub fn normal(reason: &'static str, note: impl Into<String>) -> Self {
        Self {
            warning: false,
            reason,
            note: note.into(),
        }
    }

    /// A Warning event.
    pub fn warning(reason: &'static str, note: impl Into<String>) -> Self {
        Self {
            warning: true,
            reason,
            note: note.into(),
        }
    }

    /// The note as published: bounded to [`NOTE_MAX_BYTES`].
    pub fn bounded_note(&self) -> String {
        truncate_start(&self.note, NOTE_MAX_BYTES)
    }

    fn type_name(&self) -> &'static str {
        if self.warning { "Warning" } else { "Normal" }
    }
}

/// Who publishes: `reportingController` and `reportingInstance` of every Event.
#[derive(Clone, Debug)]
pub struct EventReporter {
    pub controller: String,
    pub instance: String,
}

/// Publishes [`IncidentEvent`]s, one Event per series (see the module doc). Cloning shares the
/// series memory.
#[derive(Clone)]
pub struct EventPublisher {
    client: Client,
    reporter: EventReporter,
    series: Arc<Mutex<SeriesCache>>,
}

/// Why an Event could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("creating the Event {name}")]
    Create {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("updating the series of the Event {name}")]
    UpdateSeries {
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl EventPublisher {
    /// A publisher writing through `client` as `reporter`.
    pub fn new(client: Client, reporter: EventReporter) -> Self {
        Self::with_series(client, reporter, SeriesCache::default())
    }

    /// [`EventPublisher::new`] with a series memory of other bounds (tests).
    pub fn with_series(client: Client, reporter: EventReporter, series: SeriesCache) -> Self {
        Self {
            client,
            reporter,
            series: Arc::new(Mutex::new(series)),
        }
    }

    /// Series remembered now (bounded by the cache's capacity).
    pub fn remembered_series(&self) -> usize {
        self.series_cache().len()
    }

    fn series_cache(&self) -> std::sync::MutexGuard<'_, SeriesCache> {
        // Inserts and removals only: a poisoned cache is still a consistent one.
        self.series
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publishes `event` about the object `regarding`. A failed publish is logged, never fatal:
    /// events are a courtesy, the status is the record.
    pub async fn publish(&self, event: &IncidentEvent, regarding: &ObjectReference) {
        if let Err(error) = self.try_publish(event, regarding, Timestamp::now()).await {
            tracing::warn!(
                reason = event.reason,
                object = regarding.name.as_deref().unwrap_or_default(),
                error = %crate::errors::error_chain(&error),
                "could not publish event"
            );
        }
    }

    /// [`EventPublisher::publish`], returning the error; `now` is the Event's time.
    pub async fn try_publish(
        &self,
        event: &IncidentEvent,
        regarding: &ObjectReference,
        now: Timestamp,
    ) -> Result<(), PublishError> {
        let key = series_key(event, regarding);
        let object_name = regarding
            .name
            .as_deref()
            .unwrap_or(&self.reporter.controller);
        let step = self.series_cache().observe(key.clone(), now, || {
            format!("{object_name}.{:x}", now.as_nanosecond())
        });
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let events: Api<KubeEvent> = Api::namespaced(self.client.clone(), namespace);
        let result = match step {
            SeriesStep::Create { name } => self.create(&events, event, regarding, name, now).await,
            SeriesStep::Repeat { name, count } => {
                let series = json!({"series": {
                    "count": count,
                    "lastObservedTime": MicroTime(now),
                }});
                match events
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&series))
                    .await
                {
                    Ok(_) => Ok(()),
                    // Deleted meanwhile (the API server's Event TTL, a person): start afresh.
                    Err(kube::Error::Api(status)) if status.is_not_found() => {
                        let fresh = format!("{object_name}.{:x}", now.as_nanosecond());
                        self.series_cache().forget(&key);
                        self.series_cache()
                            .observe(key.clone(), now, || fresh.clone());
                        self.create(&events, event, regarding, fresh, now).await
                    }
                    Err(source) => Err(PublishError::UpdateSeries { name, source }),
                }
            }
        };
        if result.is_err() {
            // The next Event of this key must not count on one that may not exist.
            self.series_cache().forget(&key);
        }
        result
    }

    async fn create(
        &self,
        events: &Api<KubeEvent>,
        event: &IncidentEvent,
        regarding: &ObjectReference,
        name: String,
        now: Timestamp,
    ) -> Result<(), PublishError> {
        let object = KubeEvent {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: regarding.namespace.clone(),
                ..ObjectMeta::default()
            },
            action: Some(ACTION.to_string()),
            reason: Some(event.reason.to_string()),
            note: Some(event.bounded_note()),
            type_: Some(event.type_name().to_string()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(self.reporter.instance.clone()),
            ..KubeEvent::default()
        };
        events
            .create(&PostParams::default(), &object)
            .await
            .map(|_| ())
            .map_err(|source| PublishError::Create { name, source })
    }
}

/// The series an Event belongs to.
fn series_key(event: &IncidentEvent, regarding: &ObjectReference) -> SeriesKey {
    SeriesKey {
        namespace: regarding.namespace.clone().unwrap_or_default(),
        kind: regarding.kind.clone().unwrap_or_default(),
        name: regarding.name.clone().unwrap_or_default(),
        uid: regarding.uid.clone().unwrap_or_default(),
        reason: event.reason,
        warning: event.warning,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_bounded_and_types_mapped() {
        let event = IncidentEvent::warning(REASON_FAILED, "é".repeat(2000));
        assert_eq!(event.type_name(), "Warning");
        assert!(event.bounded_note().len() <= NOTE_MAX_BYTES);
        let event = IncidentEvent::normal(REASON_QUEUED, "waiting");
        assert_eq!(event.type_name(), "Normal");
        assert_eq!(event.bounded_note(), "waiting");
    }

    #[test]
    fn the_note_is_not_part_of_the_series_key() {
        let regarding = ObjectReference {
            kind: Some("Incident".to_string()),
            namespace: Some("shop".to_string()),
            name: Some("disk-full".to_string()),
            uid: Some("u1".to_string()),
            ..ObjectReference::default()
        };
        let first = series_key(&IncidentEvent::normal(REASON_QUEUED, "3 ahead"), &regarding);
        let second = series_key(&IncidentEvent::normal(REASON_QUEUED, "2 ahead"), &regarding);
        assert_eq!(first, second);
        let warning = series_key(&IncidentEvent::warning(REASON_QUEUED, "x"), &regarding);
        assert_ne!(first, warning);
    }
}

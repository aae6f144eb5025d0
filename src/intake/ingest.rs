//! One webhook notification, alert by alert: join the fingerprint's single flight
//! ([`super::single_flight`]); whoever leads reads the Incidents of that fingerprint once for the
//! whole batch, then creates, bumps or resolves as [`super::dedup`] plans. Each alert's outcome is
//! summed up in an [`IngestSummary`] that becomes the HTTP answer.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Serialize;
use tracing::{debug, info, warn};

use super::dedup::{
    ExistingIncident, FiringPlan, bump_activity, plan_firing, plan_resolved, resolve_activity,
    resolved_time,
};
use super::mapping::{
    alert_fingerprint, alert_name, incident_for_alert, mismatched_sender_fingerprint,
};
use super::payload::{Alert, AlertStatus, WebhookPayload};
use super::single_flight::Turn;
use super::store::{is_api_status, is_transient};
use super::{IntakeState, LABEL_FINGERPRINT};
use crate::audit::redact::Redactor;
use crate::controller::events::{IncidentEvent, REASON_RECURRED};
use crate::incident::Incident;
use crate::recurrence::memory::recall;
use crate::recurrence::policy::{cooldown_for, count_recurrence, recurrence_target};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Resource;

/// What a task in a fingerprint's single flight gets back; errors are shared by a whole batch.
pub type AlertReply = Result<AlertOutcome, Arc<IngestError>>;

/// Alerts of one notification processed at the same time (each still waits for its fingerprint).
const CONCURRENT_ALERTS: usize = 16;
/// Reads and writes one alert may take when other writers keep changing its Incident.
const MAX_ATTEMPTS: u32 = 8;

/// What happened to every alert of one notification; the JSON body of the webhook's answer.
#[derive(Serialize, Debug, Default, Clone, PartialEq)]
pub struct IngestSummary {
    /// Firing alerts that created a new Incident.
    pub created: Vec<AlertResult>,
    /// Firing alerts recorded as another occurrence on their open Incident.
    pub updated: Vec<AlertResult>,
    /// Firing alerts counted as a recurrence on a recently finished Incident (within its
    /// cool-down), instead of starting a new investigation.
    pub recurred: Vec<AlertResult>,
    /// Resolved alerts recorded on their Incident.
    pub resolved: Vec<AlertResult>,
    /// Resolved alerts with no Incident (the intake never saw them fire); nothing was written.
    pub unmatched: Vec<AlertResult>,
    /// Alerts that could not be recorded; the answer is then 5xx so Alertmanager retries.
    pub errors: Vec<AlertFailure>,
}

impl IngestSummary {
    /// Whether every error is worth retrying soon (API server unreachable or overloaded), so the
    /// answer is 503 rather than 500. False without errors.
    pub fn only_transient_errors(&self) -> bool {
        !self.errors.is_empty() && self.errors.iter().all(|failure| failure.transient)
    }
}

/// One alert and the Incident it was recorded on.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct AlertResult {
    pub fingerprint: String,
    pub alertname: String,
    /// Name of the Incident; empty in `unmatched`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub incident: String,
}

/// One alert that failed, with the error chain.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct AlertFailure {
    pub fingerprint: String,
    pub alertname: String,
    pub error: String,
    /// Whether a retry may succeed (decides 503 over 500).
    #[serde(skip)]
    pub transient: bool,
}

/// Why one alert could not be recorded; one variant per failing call.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("listing the Incidents with fingerprint {fingerprint}")]
    List {
        fingerprint: String,
        #[source]
        source: kube::Error,
    },
    #[error("creating Incident {name}")]
    Create {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing status.alert of Incident {name}")]
    ApplyActivity {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "gave up after {attempts} attempts: Incidents of fingerprint {fingerprint} kept changing"
    )]
    Contended { fingerprint: String, attempts: u32 },
    #[error(
        "Incident {name} already exists without the label {LABEL_FINGERPRINT}={fingerprint}: \
         delete or rename it, or point the intake at another namespace"
    )]
    NameTaken { name: String, fingerprint: String },
}

impl IngestError {
    /// Whether a retry may succeed soon.
    pub fn is_transient(&self) -> bool {
        match self {
            IngestError::List { source, .. }
            | IngestError::Create { source, .. }
            | IngestError::ApplyActivity { source, .. } => is_transient(source),
            IngestError::Contended { .. } => true,
            IngestError::NameTaken { .. } => false,
        }
    }
}

/// What one alert did.
#[derive(Clone, Debug)]
pub enum AlertOutcome {
    Created(String),
    Updated(String),
    /// Counted on a finished Incident within its cool-down.
    Recurred(String),
    Resolved(String),
    Unmatched,
}

/// Records every alert of `payload`, `now` being the time the notification arrived.
pub async fn ingest(state: &IntakeState, payload: &WebhookPayload, now: &Time) -> IngestSummary {
    if payload.truncated_alerts > 0 {
        warn!(
            truncated = payload.truncated_alerts,
            receiver = %payload.receiver,
            "Alertmanager left alerts out of this notification (receiver max_alerts)"
        );
    }
    // Owned arguments: a stream of futures borrowing from the payload is not provably `Send` to
    // the compiler ("Send is not general enough"), and cloning an alert is cheap next to an API
    // call.
    let outcomes: Vec<_> = futures::stream::iter(payload.alerts.iter().cloned())
        .map(|alert| ingest_owned_alert(state.clone(), alert, now.clone()))
        .buffered(CONCURRENT_ALERTS)
        .collect()
        .await;
    let mut summary = IngestSummary::default();
    for (alert, fingerprint, outcome) in outcomes {
        let alertname = alert_name(&alert).to_string();
        let result = |incident: String| AlertResult {
            fingerprint: fingerprint.clone(),
            alertname: alertname.clone(),
            incident,
        };
        match outcome {
            Ok(AlertOutcome::Created(name)) => summary.created.push(result(name)),
            Ok(AlertOutcome::Updated(name)) => summary.updated.push(result(name)),
            Ok(AlertOutcome::Recurred(name)) => summary.recurred.push(result(name)),
            Ok(AlertOutcome::Resolved(name)) => summary.resolved.push(result(name)),
            Ok(AlertOutcome::Unmatched) => summary.unmatched.push(result(String::new())),
            Err(error) => {
                let chain = crate::errors::error_chain(&*error);
                warn!(%fingerprint, %alertname, error = %chain, "alert not recorded");
                state.inner.metrics.alert_failed();
                summary.errors.push(AlertFailure {
                    fingerprint: fingerprint.clone(),
                    alertname: alertname.clone(),
                    error: chain,
                    transient: error.is_transient(),
                });
            }
        }
    }
    summary
}

/// [`ingest_alert`] with owned arguments, returning the alert and its fingerprint alongside.
async fn ingest_owned_alert(
    state: IntakeState,
    alert: Alert,
    now: Time,
) -> (Alert, String, AlertReply) {
    let fingerprint = alert_fingerprint(&alert);
    if let Some(given) = mismatched_sender_fingerprint(&alert, &fingerprint) {
        warn!(
            sender = %given,
            computed = %fingerprint,
            alertname = %alert_name(&alert),
            "sender's fingerprint does not match the alert's labels; using the computed one"
        );
        state.inner.metrics.fingerprint_mismatch();
    }
    let outcome = ingest_alert(&state, &alert, &fingerprint, &now).await;
    (alert, fingerprint, outcome)
}

/// Records one alert: as leader of its fingerprint's batch, or served by another task's batch.
async fn ingest_alert(
    state: &IntakeState,
    alert: &Alert,
    fingerprint: &str,
    now: &Time,
) -> AlertReply {
    let metrics = &state.inner.metrics;
    metrics.alert_received(alert.status);
    let outcome = loop {
        match state.inner.batcher.join(fingerprint, alert.clone()).await {
            Some(Turn::Served(outcome)) => break outcome,
            Some(Turn::Lead(batch)) => {
                let replies = record_batch(state, fingerprint, batch.items(), now).await;
                match batch.finish(replies) {
                    Some(outcome) => break outcome,
                    None => continue, // not reachable: one reply per item, ours included
                }
            }
            // The leader that took this alert went away without an answer: queue again.
            None => continue,
        }
    };
    match &outcome {
        Ok(AlertOutcome::Created(name)) => {
            info!(incident = %name, %fingerprint, "Incident created from alert");
            metrics.incident_created();
        }
        Ok(AlertOutcome::Updated(name)) => {
            debug!(incident = %name, %fingerprint, "alert deduplicated");
            metrics.alert_deduplicated();
        }
        Ok(AlertOutcome::Recurred(name)) => {
            info!(incident = %name, %fingerprint, "alert recurred within its cool-down");
            metrics.alert_recurred();
        }
        Ok(AlertOutcome::Resolved(name)) => {
            info!(incident = %name, %fingerprint, "alert resolution recorded");
            metrics.resolution_recorded();
        }
        Ok(AlertOutcome::Unmatched) | Err(_) => {}
    }
    outcome
}

/// Handles a leader's batch, oldest alert first, one reply per alert. Consecutive firing alerts
/// are one write that counts them all; consecutive resolutions are one write.
async fn record_batch(
    state: &IntakeState,
    fingerprint: &str,
    alerts: &[Alert],
    now: &Time,
) -> Vec<AlertReply> {
    let mut replies = Vec::with_capacity(alerts.len());
    let mut start = 0;
    while let Some(first) = alerts.get(start) {
        let run_len = alerts[start..]
            .iter()
            .take_while(|alert| alert.status == first.status)
            .count();
        let run = &alerts[start..start + run_len];
        match first.status {
            AlertStatus::Firing => {
                let count = u32::try_from(run_len).unwrap_or(u32::MAX);
                match record_firing(state, first, fingerprint, count, now).await {
                    // One alert of the run created the Incident; the rest were deduplicated.
                    Ok(AlertOutcome::Created(name)) => {
                        replies.push(Ok(AlertOutcome::Created(name.clone())));
                        replies
                            .extend((1..run_len).map(|_| Ok(AlertOutcome::Updated(name.clone()))));
                    }
                    other => {
                        let shared = other.map_err(Arc::new);
                        replies.extend((0..run_len).map(|_| shared.clone()));
                    }
                }
            }
            AlertStatus::Resolved => {
                // The newest `endsAt` of the run is the one that counts.
                let newest = run.last().unwrap_or(first);
                let shared = record_resolved(state, newest, fingerprint, now)
                    .await
                    .map_err(Arc::new);
                replies.extend((0..run_len).map(|_| shared.clone()));
            }
        }
        start += run_len;
    }
    replies
}

/// Five lowercase letters and digits for a fresh Incident name.
fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// `count` firing notifications of one alert: bump the open Incident of its fingerprint by
/// `count`, or create the next generation with `count` occurrences. Re-reads after every `409`
/// (someone created or changed the Incident first) and tries again.
async fn record_firing(
    state: &IntakeState,
    alert: &Alert,
    fingerprint: &str,
    count: u32,
    now: &Time,
) -> Result<AlertOutcome, IngestError> {
    let store = &state.inner.store;
    // Set once this call created an Incident, so a later retry of its first status write still
    // reports "created" rather than "updated".
    let mut created_here: Option<String> = None;
    // The name whose create last failed with 409; if a re-read does not show it under this
    // fingerprint, the name belongs to an object the intake did not make.
    let mut taken: Option<String> = None;
    // Set when a foreign object holds the deterministic name: the Incident gets a fresh one.
    let mut fresh_suffix: Option<String> = None;
    for _ in 0..MAX_ATTEMPTS {
        let existing = store
            .list_for_fingerprint(fingerprint)
            .await
            .map_err(|source| IngestError::List {
                fingerprint: fingerprint.to_string(),
                source,
            })?;
        let cooldown = cooldown_for(
            &alert.labels,
            &alert.annotations,
            state.inner.recurrence_cooldown,
        );
        if let Some(recent) = recurrence_target(&existing, now.0, cooldown) {
            match record_recurrence(state, recent, count, now).await {
                Ok(()) => return Ok(AlertOutcome::Recurred(recent.name.clone())),
                Err(source) if is_api_status(&source, 409) => continue,
                Err(source) => {
                    return Err(IngestError::ApplyActivity {
                        name: recent.name.clone(),
                        source,
                    });
                }
            }
        }
        let target = match plan_firing(&existing) {
            FiringPlan::Bump(open) => open.clone(),
            FiringPlan::Create { generation } => {
                let mut incident =
                    incident_for_alert(alert, fingerprint, generation, &state.inner.namespace);
                incident.spec.predecessors = recall(
                    existing
                        .iter()
                        .filter_map(|earlier| {
                            Some((earlier.generation, earlier.predecessor.clone()?))
                        })
                        .collect(),
                    &Redactor::default(),
                );
                let mut name = incident.metadata.name.clone().unwrap_or_default();
                if taken.as_ref() == Some(&name) {
                    if fresh_suffix.is_some() {
                        return Err(IngestError::NameTaken {
                            name,
                            fingerprint: fingerprint.to_string(),
                        });
                    }
                    // Not ours (no valid seal): squatted. Take a name nobody could predict.
                    warn!(%name, %fingerprint, "an Incident the intake did not create holds this alert's name; using a fresh one");
                    fresh_suffix = Some(random_suffix());
                }
                if let Some(suffix) = &fresh_suffix {
                    name = super::mapping::incident_name(
                        &super::mapping::sanitize_alertname(alert_name(alert)),
                        &format!("{fingerprint}-{suffix}"),
                        generation,
                    );
                    incident.metadata.name = Some(name.clone());
                }
                store.seal(&mut incident);
                match store.create(&incident).await {
                    Ok(created) => {
                        created_here = Some(created.name.clone());
                        created
                    }
                    // Another replica created this generation first: re-read.
                    Err(source) if is_api_status(&source, 409) => {
                        taken = Some(name);
                        continue;
                    }
                    Err(source) => {
                        return Err(IngestError::Create {
                            name: incident.metadata.name.unwrap_or_default(),
                            source,
                        });
                    }
                }
            }
        };
        // A fresh Incident has no activity yet, so this starts its count.
        let activity = bump_activity(target.activity.as_ref(), now, count);
        match store
            .apply_activity(&target.name, target.resource_version.as_deref(), &activity)
            .await
        {
            Ok(()) if created_here.as_deref() == Some(target.name.as_str()) => {
                return Ok(AlertOutcome::Created(target.name));
            }
            Ok(()) => return Ok(AlertOutcome::Updated(target.name)),
            // Changed since it was read (another replica counted, the controller moved the
            // phase): read again rather than overwrite.
            Err(source) if is_api_status(&source, 409) => continue,
            Err(source) => {
                return Err(IngestError::ApplyActivity {
                    name: target.name,
                    source,
                });
            }
        }
    }
    Err(IngestError::Contended {
        fingerprint: fingerprint.to_string(),
        attempts: MAX_ATTEMPTS,
    })
}

/// Counts `count` recurrences on the finished Incident `recent` (resourceVersion-guarded, so a
/// 409 means re-read), and publishes the `Recurred` Event for the first one of its cool-down.
async fn record_recurrence(
    state: &IntakeState,
    recent: &ExistingIncident,
    count: u32,
    now: &Time,
) -> Result<(), kube::Error> {
    let (activity, first) = count_recurrence(
        recent.activity.as_ref(),
        recent.created.as_ref(),
        now,
        count,
    );
    state
        .inner
        .store
        .apply_activity(&recent.name, recent.resource_version.as_deref(), &activity)
        .await?;
    if first && let Some(events) = &state.inner.events {
        let regarding = ObjectReference {
            api_version: Some(Incident::api_version(&()).into_owned()),
            kind: Some(Incident::kind(&()).into_owned()),
            namespace: Some(state.inner.namespace.clone()),
            name: Some(recent.name.clone()),
            ..ObjectReference::default()
        };
        let event = IncidentEvent::normal(
            REASON_RECURRED,
            format!(
                "the alert fired again within its recurrence cool-down; counted on {} instead                  of starting a new investigation",
                recent.name
            ),
        );
        events.publish(&event, &regarding).await;
    }
    Ok(())
}

/// A resolved alert: set `resolvedAt` on its Incident (open one first, else the latest).
async fn record_resolved(
    state: &IntakeState,
    alert: &Alert,
    fingerprint: &str,
    now: &Time,
) -> Result<AlertOutcome, IngestError> {
    let store = &state.inner.store;
    let resolved_at = resolved_time(alert.ends_at.as_deref(), now);
    for _ in 0..MAX_ATTEMPTS {
        let existing = store
            .list_for_fingerprint(fingerprint)
            .await
            .map_err(|source| IngestError::List {
                fingerprint: fingerprint.to_string(),
                source,
            })?;
        let Some(target) = plan_resolved(&existing) else {
            return Ok(AlertOutcome::Unmatched);
        };
        let activity = resolve_activity(
            target.activity.as_ref(),
            target.created.as_ref(),
            resolved_at.clone(),
        );
        if target.activity.as_ref() == Some(&activity) {
            // Alertmanager re-sent a resolution already recorded.
            return Ok(AlertOutcome::Resolved(target.name.clone()));
        }
        match store
            .apply_activity(&target.name, target.resource_version.as_deref(), &activity)
            .await
        {
            Ok(()) => return Ok(AlertOutcome::Resolved(target.name.clone())),
            Err(source) if is_api_status(&source, 409) => continue,
            Err(source) => {
                return Err(IngestError::ApplyActivity {
                    name: target.name.clone(),
                    source,
                });
            }
        }
    }
    Err(IngestError::Contended {
        fingerprint: fingerprint.to_string(),
        attempts: MAX_ATTEMPTS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::error_chain;

    #[test]
    fn summary_serializes_with_every_list() {
        let mut summary = IngestSummary::default();
        summary.created.push(AlertResult {
            fingerprint: "0123456789abcdef".into(),
            alertname: "DiskFull".into(),
            incident: "disk-full-0123456789abcdef".into(),
        });
        summary.unmatched.push(AlertResult {
            fingerprint: "fedcba9876543210".into(),
            alertname: "Gone".into(),
            incident: String::new(),
        });
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "created": [{"fingerprint": "0123456789abcdef", "alertname": "DiskFull",
                             "incident": "disk-full-0123456789abcdef"}],
                "updated": [],
                "recurred": [],
                "resolved": [],
                "unmatched": [{"fingerprint": "fedcba9876543210", "alertname": "Gone"}],
                "errors": []
            })
        );
    }

    #[test]
    fn only_transient_errors_decides_503() {
        let failure = |transient| AlertFailure {
            fingerprint: "f".into(),
            alertname: "a".into(),
            error: "e".into(),
            transient,
        };
        let mut summary = IngestSummary::default();
        assert!(!summary.only_transient_errors());
        summary.errors.push(failure(true));
        assert!(summary.only_transient_errors());
        summary.errors.push(failure(false));
        assert!(!summary.only_transient_errors());
    }

    #[test]
    fn error_chain_includes_sources() {
        let error = IngestError::Create {
            name: "x".into(),
            source: kube::Error::Api(Box::new(kube::core::Status {
                code: 422,
                message: "spec.title: Required value".into(),
                reason: "Invalid".into(),
                ..Default::default()
            })),
        };
        let text = error_chain(&error);
        assert!(text.starts_with("creating Incident x: "), "{text}");
        assert!(text.contains("spec.title: Required value"), "{text}");
        assert!(!error.is_transient());
    }
}

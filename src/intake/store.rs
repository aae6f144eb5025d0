//! The intake's only contact with the API server: list the Incidents of a fingerprint, create an
//! Incident, and write `status.alert` by server-side apply under the intake's own field manager.

use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};
use serde_json::json;

use super::dedup::ExistingIncident;
use super::metrics::{ApiCall, IntakeMetrics};
use super::ownership::OwnershipKey;
use super::{FIELD_MANAGER, LABEL_FINGERPRINT};
use crate::incident::{AlertActivity, Incident};

/// Incidents of one namespace, as the intake reads and writes them; every call is counted.
#[derive(Clone)]
pub struct IncidentStore {
    api: Api<Incident>,
    metrics: IntakeMetrics,
    owner: OwnershipKey,
}

impl IncidentStore {
    pub fn new(
        client: Client,
        namespace: &str,
        metrics: IntakeMetrics,
        owner: OwnershipKey,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            metrics,
            owner,
        }
    }

    /// Seals an Incident about to be created (see [`super::ownership`]).
    pub fn seal(&self, incident: &mut Incident) {
        self.owner.seal_incident(incident);
    }

    /// Every Incident the intake created that is labelled with `fingerprint`, whatever its phase
    /// or generation; objects labelled by someone else are not the intake's to count on.
    pub async fn list_for_fingerprint(
        &self,
        fingerprint: &str,
    ) -> Result<Vec<ExistingIncident>, kube::Error> {
        let selector = format!("{LABEL_FINGERPRINT}={fingerprint}");
        self.metrics.api_call(ApiCall::List);
        let list = self
            .api
            .list(&ListParams::default().labels(&selector))
            .await?;
        Ok(list
            .items
            .iter()
            .filter(|incident| self.owner.verifies(incident))
            .filter_map(ExistingIncident::from_incident)
            .collect())
    }

    /// Creates `incident`; `409 AlreadyExists` comes back as an error for the caller to treat as
    /// "someone else created it first".
    pub async fn create(&self, incident: &Incident) -> Result<ExistingIncident, kube::Error> {
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PostParams::default()
        };
        self.metrics.api_call(ApiCall::Create);
        let created = self.api.create(&params, incident).await?;
        Ok(
            ExistingIncident::from_incident(&created).unwrap_or_else(|| ExistingIncident {
                // The API server always names what it created; keep the requested name regardless.
                name: incident.metadata.name.clone().unwrap_or_default(),
                generation: 1,
                finished: false,
                activity: None,
                resource_version: None,
                created: None,
                finished_at: None,
                predecessor: None,
            }),
        )
    }

    /// Writes `status.alert` (and only that) by server-side apply, forced, as [`FIELD_MANAGER`].
    /// With `resource_version` the write fails with `409 Conflict` if the Incident changed since
    /// it was read, so two writers cannot both count the same occurrence.
    pub async fn apply_activity(
        &self,
        name: &str,
        resource_version: Option<&str>,
        activity: &AlertActivity,
    ) -> Result<(), kube::Error> {
        let patch = activity_apply_patch(name, resource_version, activity);
        self.metrics.api_call(ApiCall::ApplyStatus);
        self.api
            .patch_status(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await?;
        Ok(())
    }
}

/// The apply configuration for `status.alert`: identity, optional resourceVersion precondition,
/// and the activity; no other field, so the intake owns nothing else in the status.
pub fn activity_apply_patch(
    name: &str,
    resource_version: Option<&str>,
    activity: &AlertActivity,
) -> serde_json::Value {
    let mut metadata = json!({ "name": name });
    if let Some(resource_version) = resource_version {
        metadata["resourceVersion"] = json!(resource_version);
    }
    json!({
        "apiVersion": Incident::api_version(&()),
        "kind": Incident::kind(&()),
        "metadata": metadata,
        "status": { "alert": activity },
    })
}

/// Whether the API server answered with this HTTP status code.
pub fn is_api_status(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code)
}

/// Whether retrying later may succeed: the API server was unreachable, overloaded or failing.
pub fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code == 429 || status.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    #[test]
    fn patch_holds_only_the_alert_activity() {
        let seen = Time("2025-06-01T10:00:00Z".parse().unwrap());
        let activity = AlertActivity {
            occurrences: 3,
            first_seen: seen.clone(),
            last_seen: seen,
            resolved_at: None,
            recurrences: None,
            last_recurrence: None,
        };
        let patch = activity_apply_patch("disk-full-0123456789abcdef", Some("42"), &activity);
        assert_eq!(
            patch,
            json!({
                "apiVersion": "sre.agentlab.dev/v1alpha1",
                "kind": "Incident",
                "metadata": {"name": "disk-full-0123456789abcdef", "resourceVersion": "42"},
                "status": {"alert": {
                    "occurrences": 3,
                    "firstSeen": "2025-06-01T10:00:00Z",
                    "lastSeen": "2025-06-01T10:00:00Z"
                }}
            })
        );
        let without = activity_apply_patch("x", None, &activity);
        assert_eq!(without["metadata"], json!({"name": "x"}));
    }

    #[test]
    fn transient_errors() {
        let api = |code| {
            kube::Error::Api(Box::new(kube::core::Status {
                code,
                ..Default::default()
            }))
        };
        assert!(is_transient(&api(503)));
        assert!(is_transient(&api(429)));
        assert!(!is_transient(&api(422)));
        assert!(is_api_status(&api(409), 409));
        assert!(!is_api_status(&api(404), 409));
    }
}

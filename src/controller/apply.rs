//! Apply step: the only module that writes to the API server. Each function is one call (or one
//! call and its conflict handling) and maps failures to its own [`Error`] variant.
//!
//! Writes to Incidents go through `Api<DeserializeGuard<Incident>>`, so a response that does not
//! match our types (an invalid object) cannot fail a write that succeeded.

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::DeserializeGuard;
use kube::{Resource, ResourceExt};
use serde_json::json;

use super::error::Error;
use super::keys;
use super::lifecycle::ApiKeyState;
use crate::incident::{Incident, IncidentStatus};

/// Status fields that belong to one agent run; a rerun clears them whoever wrote them.
const RUN_RESULT_FIELDS: [&str; 10] = [
    "sessionId",
    "outcome",
    "message",
    "lastCommand",
    "report",
    "usage",
    "audit",
    "agentPod",
    "startTime",
    "completionTime",
];

/// Server-side apply of the controller's status, forced, with the one controller field manager.
pub async fn apply_status(
    api: &Api<DeserializeGuard<Incident>>,
    name: &str,
    status: &IncidentStatus,
) -> Result<(), Error> {
    let status = serde_json::to_value(status).map_err(|source| Error::SerializeStatus {
        name: name.to_string(),
        source,
    })?;
    apply_status_value(api, name, status).await
}

/// [`apply_status`] for a status given as JSON (used for Incidents our types cannot read).
pub async fn apply_status_value(
    api: &Api<DeserializeGuard<Incident>>,
    name: &str,
    status: serde_json::Value,
) -> Result<(), Error> {
    apply_status_body(api, name, status, None).await
}

/// [`apply_status`] only if the Incident is still at `resource_version` (a 409 Conflict if it has
/// changed since): for a status decided a while before it is written, so it can never undo a
/// newer one (see [`super::queued_writes`]).
pub async fn apply_status_if_unchanged(
    api: &Api<DeserializeGuard<Incident>>,
    name: &str,
    status: &IncidentStatus,
    resource_version: &str,
) -> Result<(), Error> {
    let status = serde_json::to_value(status).map_err(|source| Error::SerializeStatus {
        name: name.to_string(),
        source,
    })?;
    apply_status_body(api, name, status, Some(resource_version)).await
}

async fn apply_status_body(
    api: &Api<DeserializeGuard<Incident>>,
    name: &str,
    status: serde_json::Value,
    resource_version: Option<&str>,
) -> Result<(), Error> {
    let mut body = json!({
        "apiVersion": Incident::api_version(&()),
        "kind": Incident::kind(&()),
        "status": status,
    });
    if let Some(resource_version) = resource_version {
        body["metadata"] = json!({ "name": name, "resourceVersion": resource_version });
    }
    api.patch_status(
        name,
        &PatchParams::apply(keys::CONTROLLER_FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|source| Error::ApplyStatus {
        name: name.to_string(),
        source,
    })?;
    Ok(())
}

/// Records the rerun value the controller acted on, as an annotation it owns.
pub async fn record_rerun(
    api: &Api<DeserializeGuard<Incident>>,
    name: &str,
    value: &str,
) -> Result<(), Error> {
    let body = json!({
        "apiVersion": Incident::api_version(&()),
        "kind": Incident::kind(&()),
        "metadata": {
            "name": name,
            "annotations": { keys::ANNOTATION_RERUN_HONOURED: value },
        },
    });
    api.patch(
        name,
        &PatchParams::apply(keys::CONTROLLER_FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|source| Error::RecordRerun {
        name: name.to_string(),
        source,
    })?;
    Ok(())
}

/// Removes the previous run's results from the status and writes `next` in the same request, so
/// no reader ever sees the old phase without its results. A merge patch with nulls removes the
/// fields whichever manager (controller or agent) wrote them, which an apply cannot do.
pub async fn reset_run_results(
    api: &Api<DeserializeGuard<Incident>>,
    name: &str,
    next: &IncidentStatus,
) -> Result<(), Error> {
    let body = reset_body(next).map_err(|source| Error::SerializeStatus {
        name: name.to_string(),
        source,
    })?;
    let params = PatchParams {
        field_manager: Some(keys::CONTROLLER_FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    api.patch_status(name, &params, &Patch::Merge(body))
        .await
        .map_err(|source| Error::ResetStatus {
            name: name.to_string(),
            source,
        })?;
    Ok(())
}

/// `{"status": {...}}` with every run field null unless `next` sets it.
fn reset_body(next: &IncidentStatus) -> Result<serde_json::Value, serde_json::Error> {
    let mut status: serde_json::Map<String, serde_json::Value> = RUN_RESULT_FIELDS
        .iter()
        .map(|field| (field.to_string(), serde_json::Value::Null))
        .collect();
    if let serde_json::Value::Object(fields) = serde_json::to_value(next)? {
        status.extend(fields);
    }
    Ok(json!({ "status": status }))
}

/// Creates the agent pod. If the name is taken by this very pod (same owner, run and attempt:
/// created by us before a restart, not yet in the cache), that pod is returned instead; a name held
/// by anything else is an error.
pub async fn create_agent_pod(pods: &Api<Pod>, pod: &Pod) -> Result<Pod, Error> {
    let name = pod.name_any();
    match pods.create(&PostParams::default(), pod).await {
        Ok(created) => Ok(created),
        Err(kube::Error::Api(status)) if refused_for_service_account(&status) => {
            Err(Error::MissingServiceAccount {
                pod: name,
                namespace: pod.namespace().unwrap_or_default(),
                service_account: pod
                    .spec
                    .as_ref()
                    .and_then(|spec| spec.service_account_name.clone())
                    .unwrap_or_else(|| "default".to_string()),
                refusal: status.message.clone(),
            })
        }
        Err(kube::Error::Api(status)) if status.is_already_exists() => {
            let existing = pods.get(&name).await.map_err(|source| Error::GetPod {
                pod: name.clone(),
                source,
            })?;
            if same_agent_pod(&existing, pod) {
                Ok(existing)
            } else {
                Err(Error::PodNameTaken { pod: name })
            }
        }
        Err(source) => Err(Error::CreatePod { pod: name, source }),
    }
}

/// The ServiceAccount admission plugin's refusal: 403 `… error looking up service account …`.
fn refused_for_service_account(status: &kube::core::Status) -> bool {
    status.is_forbidden() && status.message.contains("error looking up service account")
}

/// Whether two pods are the same attempt of the same run of the same Incident.
fn same_agent_pod(existing: &Pod, wanted: &Pod) -> bool {
    let owner = |pod: &Pod| {
        pod.owner_references()
            .iter()
            .find(|owner| owner.controller == Some(true))
            .map(|owner| owner.uid.clone())
    };
    let label = |pod: &Pod, key: &str| pod.labels().get(key).cloned();
    owner(existing).is_some()
        && owner(existing) == owner(wanted)
        && label(existing, keys::LABEL_RUN) == label(wanted, keys::LABEL_RUN)
        && label(existing, keys::LABEL_ATTEMPT) == label(wanted, keys::LABEL_ATTEMPT)
}

/// Deletes an agent pod; one that is already gone is fine.
pub async fn delete_pod(pods: &Api<Pod>, name: &str) -> Result<(), Error> {
    match pods.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
        Err(source) => Err(Error::DeletePod {
            pod: name.to_string(),
            source,
        }),
    }
}

/// Whether the API-key Secret exists. Only its metadata is read: the key never enters the
/// controller. When RBAC forbids even that, the kubelet is left to report a missing Secret on the
/// pod (`CreateContainerConfigError`), which the lifecycle surfaces as a stuck agent.
pub async fn check_api_key_secret(
    secrets: &Api<Secret>,
    namespace: &str,
    secret: &str,
    key: &str,
) -> Result<ApiKeyState, Error> {
    match secrets.get_metadata_opt(secret).await {
        Ok(Some(_)) => Ok(ApiKeyState::Present),
        Ok(None) => Ok(ApiKeyState::Missing(format!(
            "the API-key Secret {namespace}/{secret} does not exist; create it with the key `{key}` \
             (kubectl -n {namespace} create secret generic {secret} --from-literal={key}=sk-ant-…)"
        ))),
        Err(kube::Error::Api(status)) if status.is_forbidden() => {
            tracing::debug!(%namespace, %secret, "not allowed to read the API-key Secret's metadata; not checking it");
            Ok(ApiKeyState::Present)
        }
        Err(source) => Err(Error::CheckApiKeySecret {
            namespace: namespace.to_string(),
            secret: secret.to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::pod::build_agent_pod;
    use crate::controller::pod::tests::{config, incident};

    #[test]
    fn reset_clears_run_fields_and_sets_the_next_status_at_once() {
        let next = IncidentStatus {
            phase: Some(crate::incident::Phase::Pending),
            attempts: Some(0),
            message: Some("rerun requested".to_string()),
            ..IncidentStatus::default()
        };
        let body = reset_body(&next).unwrap();
        let status = &body["status"];
        assert_eq!(status["phase"], "Pending");
        assert_eq!(status["attempts"], 0);
        assert_eq!(status["message"], "rerun requested");
        for cleared in [
            "report",
            "sessionId",
            "usage",
            "audit",
            "outcome",
            "completionTime",
        ] {
            assert!(status[cleared].is_null(), "{cleared} not cleared");
            assert!(
                status.get(cleared).is_some(),
                "{cleared} must be an explicit null"
            );
        }
    }

    #[test]
    fn same_pod_means_same_owner_run_and_attempt() {
        let x = incident("x");
        let ours = build_agent_pod(&x, 1, &config()).unwrap();
        assert!(same_agent_pod(&ours, &ours.clone()));
        let next_attempt = build_agent_pod(&x, 2, &config()).unwrap();
        assert!(!same_agent_pod(&next_attempt, &ours));
        let mut other_owner = ours.clone();
        other_owner.metadata.owner_references.as_mut().unwrap()[0].uid = "someone-else".to_string();
        assert!(!same_agent_pod(&other_owner, &ours));
        let mut unowned = ours.clone();
        unowned.metadata.owner_references = None;
        assert!(!same_agent_pod(&unowned, &ours));
    }
}

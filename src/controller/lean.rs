//! What the caches keep of each watched object: only what a decision reads. The watch streams
//! pass every object through [`lean_incident`] or [`lean_pod`] before it reaches a cache (the
//! `.modify(...)` of kube-runtime's `pod_reflector` example), so memory grows with what the
//! controller needs, not with what the agents wrote.
//!
//! Dropped from Incidents: every `managedFields` entry except the controller's own status entry
//! (which [`super::status_diff`] reads to know which fields it owns; of that entry only the names
//! of the top-level status fields are kept, in one string), kubectl's
//! `last-applied-configuration` annotation, and the audit entries in `status.audit` (up to 100
//! lines of 1 KiB; the audit document on the volume is the record). An Incident's own finishing
//! transition never decides from the cache: [`super::reconcile`] reads the Incident fresh when a
//! pod has finished, so the stripped entries are never written back as missing.
//!
//! Dropped from agent pods: `managedFields` and the pod spec except `activeDeadlineSeconds`, the
//! one spec field [`super::pod_state`] reads.

use super::keys::CONTROLLER_FIELD_MANAGER;
use super::status_diff::lean_ownership;
use crate::incident::Incident;
use k8s_openapi::api::core::v1::{Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};
use kube::core::DeserializeGuard;

/// kubectl's copy of the last applied manifest; as large as the spec, read by nobody here.
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Strips `incident` down to what the controller decides from (see the module doc).
pub fn lean_incident(incident: &mut Incident) {
    let metadata = &mut incident.metadata;
    if let Some(entries) = metadata.managed_fields.as_mut() {
        entries.retain(|entry| {
            entry.manager.as_deref() == Some(CONTROLLER_FIELD_MANAGER)
                && entry.subresource.as_deref() == Some("status")
        });
        for entry in entries.iter_mut() {
            *entry = owned_top_level_fields(entry);
        }
    }
    if let Some(annotations) = metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
    if let Some(audit) = incident
        .status
        .as_mut()
        .and_then(|status| status.audit.as_mut())
    {
        audit.entries = Vec::new();
    }
}

/// The controller's status entry reduced to what [`super::status_diff::owned_status_fields`]
/// reads: the manager, the subresource and the names of the top-level status fields, as one
/// string ([`super::status_diff::lean_ownership`]). The full field set (every condition's every
/// key, as nested JSON maps) was the largest part of a cached Incident, and even the top-level
/// names as JSON maps cost two `BTreeMap` nodes (about 1.3 KiB) per Incident.
fn owned_top_level_fields(entry: &ManagedFieldsEntry) -> ManagedFieldsEntry {
    let fields = lean_ownership(entry.fields_v1.as_ref().map(|fields| &fields.0));
    ManagedFieldsEntry {
        manager: entry.manager.clone(),
        subresource: entry.subresource.clone(),
        fields_v1: Some(FieldsV1(fields)),
        ..ManagedFieldsEntry::default()
    }
}

/// [`lean_incident`] for what the Incident watch delivers; an object that did not deserialize
/// is kept as it is (it carries only the error and the metadata needed to report it).
pub fn lean_guarded_incident(object: &mut DeserializeGuard<Incident>) {
    if let Ok(incident) = object.0.as_mut() {
        lean_incident(incident);
    }
}

/// Strips an agent pod down to what [`super::pod_state::view_agent_pod`] and the owner lookup read.
pub fn lean_pod(pod: &mut Pod) {
    pod.metadata.managed_fields = None;
    if let Some(spec) = pod.spec.as_mut() {
        *spec = PodSpec {
            active_deadline_seconds: spec.active_deadline_seconds,
            ..PodSpec::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::pod::build_agent_pod;
    use crate::controller::pod::tests::{config, incident};
    use crate::controller::pod_state::view_agent_pod;
    use crate::incident::{AuditStatusEntry, AuditSummary, IncidentStatus};
    use serde_json::json;

    fn entry(manager: &str, subresource: Option<&str>) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.to_string()),
            subresource: subresource.map(str::to_string),
            operation: Some("Apply".to_string()),
            fields_v1: Some(FieldsV1(json!({"f:status": {"f:phase": {}}}))),
            ..ManagedFieldsEntry::default()
        }
    }

    #[test]
    fn incidents_keep_the_controllers_status_ownership_and_lose_the_bulk() {
        let mut incident = incident("disk-full");
        incident.metadata.managed_fields = Some(vec![
            entry("kubectl-client-side-apply", None),
            ManagedFieldsEntry {
                fields_v1: Some(FieldsV1(json!({"f:status": {
                    "f:phase": {},
                    "f:conditions": {"k:{\"type\":\"Ready\"}": {".": {}, "f:reason": {}}},
                }}))),
                api_version: Some("sre.agentlab.dev/v1alpha1".to_string()),
                ..entry(CONTROLLER_FIELD_MANAGER, Some("status"))
            },
            entry(CONTROLLER_FIELD_MANAGER, None),
            entry("incident-operator-agent", Some("status")),
        ]);
        incident.metadata.annotations = Some(
            [
                (LAST_APPLIED_ANNOTATION.to_string(), "{...}".to_string()),
                (
                    crate::controller::keys::ANNOTATION_RERUN.to_string(),
                    "1".to_string(),
                ),
            ]
            .into(),
        );
        incident.status = Some(IncidentStatus {
            audit: Some(Box::new(AuditSummary {
                path: "/audit/s.json".to_string(),
                sha256: None,
                chain_head: None,
                record_count: None,
                entries: vec![AuditStatusEntry::default(); 100],
                truncated: true,
            })),
            ..IncidentStatus::default()
        });
        let spec_before = serde_json::to_value(&incident.spec).unwrap();
        lean_incident(&mut incident);

        let owned = crate::controller::status_diff::owned_status_fields(
            incident.metadata.managed_fields.as_deref(),
        );
        assert_eq!(
            owned,
            Some(["conditions".to_string(), "phase".to_string()].into())
        );
        let kept = incident.metadata.managed_fields.as_ref().unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(
            kept[0].fields_v1.as_ref().unwrap().0,
            json!("conditions,phase"),
            "only the top-level names are kept, in one string, not every condition's keys"
        );
        assert!(kept[0].time.is_none() && kept[0].api_version.is_none());
        let annotations = incident.metadata.annotations.as_ref().unwrap();
        assert_eq!(
            annotations.keys().collect::<Vec<_>>(),
            [crate::controller::keys::ANNOTATION_RERUN],
            "the rerun annotation is a decision input; kubectl's copy is not"
        );
        let audit = incident.status.unwrap().audit.unwrap();
        assert!(audit.entries.is_empty());
        assert_eq!(audit.path, "/audit/s.json");
        assert!(audit.truncated);
        assert_eq!(serde_json::to_value(&incident.spec).unwrap(), spec_before);
    }

    #[test]
    fn pods_keep_what_their_view_reads() {
        let owner = incident("disk-full");
        let mut pod = build_agent_pod(&owner, 2, &config()).unwrap();
        pod.metadata.managed_fields = Some(vec![entry("incident-operator-controller", None)]);
        pod.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Running".to_string()),
            ..Default::default()
        });
        let before = view_agent_pod(&pod);
        let deadline = pod.spec.as_ref().unwrap().active_deadline_seconds;
        lean_pod(&mut pod);
        assert_eq!(view_agent_pod(&pod), before);
        assert!(pod.metadata.managed_fields.is_none());
        let spec = pod.spec.as_ref().unwrap();
        assert!(spec.containers.is_empty() && spec.volumes.is_none());
        assert_eq!(spec.active_deadline_seconds, deadline);
        assert_eq!(pod.metadata.owner_references, {
            let built = build_agent_pod(&owner, 2, &config()).unwrap();
            built.metadata.owner_references
        });
    }
}

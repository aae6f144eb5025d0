//! Whether a server-side apply of the controller's status would change anything, so an idle
//! reconcile makes no write (and no watch event that would wake itself again).
//!
//! With server-side apply, leaving out a field the controller applied before removes it; so besides
//! "does every field we send already hold that value" the question is "do we own a field we no
//! longer send". Ownership comes from the object's `managedFields`.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use serde_json::{Map, Value};

use super::keys::CONTROLLER_FIELD_MANAGER;
use crate::incident::IncidentStatus;

/// Status fields only the controller ever writes; used as the ownership guess when the API
/// server keeps no `managedFields` at all.
const CONTROLLER_ONLY_FIELDS: [&str; 7] = [
    "phase",
    "conditions",
    "observedGeneration",
    "agentPod",
    "attempts",
    "startTime",
    "completionTime",
];

/// Top-level status fields the controller owns according to `managed_fields`; `None` when the
/// server tracks no field ownership at all.
pub fn owned_status_fields(
    managed_fields: Option<&[ManagedFieldsEntry]>,
) -> Option<BTreeSet<String>> {
    let entries = managed_fields.filter(|entries| !entries.is_empty())?;
    let mut owned = BTreeSet::new();
    for entry in entries.iter().filter(|entry| {
        entry.manager.as_deref() == Some(CONTROLLER_FIELD_MANAGER)
            && entry.subresource.as_deref() == Some("status")
    }) {
        match entry.fields_v1.as_ref().map(|fields| &fields.0) {
            // The cache's form (`lean_ownership`): the names, comma-separated.
            Some(Value::String(names)) => owned.extend(
                names
                    .split(',')
                    .filter(|name| !name.is_empty())
                    .map(str::to_string),
            ),
            Some(fields) => {
                if let Some(status) = fields.get("f:status").and_then(Value::as_object) {
                    owned.extend(
                        status
                            .keys()
                            .filter_map(|key| key.strip_prefix("f:"))
                            .map(str::to_string),
                    );
                }
            }
            None => {}
        }
    }
    Some(owned)
}

/// `fields` (an entry's field set as the API server sends it, always an object) reduced to what
/// [`owned_status_fields`] reads: the names of the top-level status fields, comma-separated in
/// one string. The server's nested maps of the same names cost two `BTreeMap` nodes (over 1 KiB)
/// per cached Incident; a string cannot be mistaken for the server's form, which is an object.
pub fn lean_ownership(fields: Option<&Value>) -> Value {
    let names: Vec<&str> = fields
        .and_then(|fields| fields.get("f:status"))
        .and_then(Value::as_object)
        .map(|status| {
            status
                .keys()
                .filter_map(|key| key.strip_prefix("f:"))
                .collect()
        })
        .unwrap_or_default();
    Value::String(names.join(","))
}

/// Whether applying `desired` would change the status `current`.
pub fn needs_apply(
    current: Option<&IncidentStatus>,
    desired: &IncidentStatus,
    owned: Option<&BTreeSet<String>>,
) -> bool {
    let current = object_of(current);
    let desired = object_of(Some(desired));
    if desired
        .iter()
        .any(|(key, value)| current.get(key) != Some(value))
    {
        return true;
    }
    let guessed;
    let owned = match owned {
        Some(owned) => owned,
        None => {
            guessed = CONTROLLER_ONLY_FIELDS
                .iter()
                .map(|s| s.to_string())
                .collect::<BTreeSet<_>>();
            &guessed
        }
    };
    owned
        .iter()
        .any(|key| current.contains_key(key) && !desired.contains_key(key))
}

fn object_of(status: Option<&IncidentStatus>) -> Map<String, Value> {
    match status.map(serde_json::to_value) {
        Some(Ok(Value::Object(map))) => map,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::Phase;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1;
    use serde_json::json;

    fn entry(manager: &str, subresource: &str, fields: Value) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.to_string()),
            operation: Some("Apply".to_string()),
            subresource: Some(subresource.to_string()),
            fields_v1: Some(FieldsV1(fields)),
            ..ManagedFieldsEntry::default()
        }
    }

    fn running() -> IncidentStatus {
        IncidentStatus {
            phase: Some(Phase::Running),
            attempts: Some(1),
            ..IncidentStatus::default()
        }
    }

    #[test]
    fn ownership_is_read_from_the_status_entry_of_our_manager() {
        let entries = vec![
            entry(
                CONTROLLER_FIELD_MANAGER,
                "status",
                json!({"f:status": {"f:phase": {}, "f:message": {}, ".": {}}}),
            ),
            entry(
                "incident-operator-agent",
                "status",
                json!({"f:status": {"f:report": {}}}),
            ),
            entry(
                CONTROLLER_FIELD_MANAGER,
                "",
                json!({"f:metadata": {"f:annotations": {}}}),
            ),
        ];
        let owned = owned_status_fields(Some(&entries)).unwrap();
        assert_eq!(
            owned.into_iter().collect::<Vec<_>>(),
            ["message".to_string(), "phase".to_string()]
        );
        // The cache's lean form says the same.
        let lean: Vec<ManagedFieldsEntry> = entries
            .iter()
            .map(|entry| ManagedFieldsEntry {
                fields_v1: Some(FieldsV1(lean_ownership(
                    entry.fields_v1.as_ref().map(|fields| &fields.0),
                ))),
                ..entry.clone()
            })
            .collect();
        assert_eq!(
            lean[0].fields_v1.as_ref().unwrap().0,
            json!("message,phase")
        );
        assert_eq!(
            owned_status_fields(Some(&lean)),
            owned_status_fields(Some(&entries))
        );
        let none_owned = entry(CONTROLLER_FIELD_MANAGER, "status", json!(""));
        assert_eq!(
            owned_status_fields(Some(&[none_owned])),
            Some(BTreeSet::new())
        );
        assert_eq!(owned_status_fields(None), None);
        assert_eq!(owned_status_fields(Some(&[])), None);
    }

    #[test]
    fn same_values_and_nothing_to_drop_means_no_write() {
        let mut current = running();
        current.report = Some(Default::default()); // the agent's
        let owned = BTreeSet::from(["phase".to_string(), "attempts".to_string()]);
        assert!(!needs_apply(Some(&current), &running(), Some(&owned)));
    }

    #[test]
    fn a_changed_value_means_a_write() {
        let mut desired = running();
        desired.attempts = Some(2);
        assert!(needs_apply(
            Some(&running()),
            &desired,
            Some(&BTreeSet::new())
        ));
        assert!(needs_apply(None, &desired, None));
    }

    #[test]
    fn an_owned_field_we_no_longer_send_means_a_write() {
        let mut current = running();
        current.message = Some("waiting for one of 3 agent slots".to_string());
        let owned = BTreeSet::from(["phase".to_string(), "message".to_string()]);
        assert!(needs_apply(Some(&current), &running(), Some(&owned)));
        // The same message written by the agent is not ours to drop.
        let theirs = BTreeSet::from(["phase".to_string()]);
        assert!(!needs_apply(Some(&current), &running(), Some(&theirs)));
    }

    #[test]
    fn without_managed_fields_controller_only_fields_are_assumed_ours() {
        let mut current = running();
        current.agent_pod = Some("x-agent-1".to_string());
        current.message = Some("agent text".to_string());
        assert!(needs_apply(Some(&current), &running(), None));
        current.agent_pod = None;
        assert!(!needs_apply(Some(&current), &running(), None));
    }
}

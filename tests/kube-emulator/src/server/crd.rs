//! CustomResourceDefinitions: their validation, the status that marks them Established, and
//! the [`ResourceDef`]s through which their objects are served.

use std::sync::Arc;

use serde_json::{Value, json};

use super::meta;
use super::resource::{
    Conversion, CustomSpec, PrinterColumn, ResourceDef, STANDARD_VERBS, StorageKey, SubresourceDef,
};
use super::status::Cause;

/// Finalizer the real server puts on CRDs so instances are removed before the CRD.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

fn str_field<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Validates the parts of a CRD the emulator relies on.
pub fn validate(crd: &Value, causes: &mut Vec<Cause>) {
    let group = str_field(crd, "/spec/group");
    let plural = str_field(crd, "/spec/names/plural");
    let expected = format!("{plural}.{group}");
    if meta::name(crd) != expected {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "metadata.name",
            format!(
                "Invalid value: {:?}: must be spec.names.plural+\".\"+spec.group",
                meta::name(crd)
            ),
        ));
    }
    if group.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.group",
            "Required value",
        ));
    }
    if plural.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.names.plural",
            "Required value",
        ));
    }
    if str_field(crd, "/spec/names/kind").is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.names.kind",
            "Required value",
        ));
    }
    let scope = str_field(crd, "/spec/scope");
    if scope != "Namespaced" && scope != "Cluster" {
        causes.push(Cause::new(
            "FieldValueNotSupported",
            "spec.scope",
            format!("Unsupported value: {scope:?}: supported values: \"Cluster\", \"Namespaced\""),
        ));
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.versions",
            "Required value",
        ));
    }
    let storage = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if !versions.is_empty() && storage != 1 {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "spec.versions",
            format!(
                "Invalid value: {}: must have exactly one version marked as storage version",
                Value::Array(versions.clone())
            ),
        ));
    }
    for (index, version) in versions.iter().enumerate() {
        if let Some(schema) = version.pointer("/schema/openAPIV3Schema") {
            check_patterns(
                schema,
                &format!("spec.versions[{index}].schema.openAPIV3Schema"),
                causes,
            );
        }
    }
}

fn check_patterns(schema: &Value, path: &str, causes: &mut Vec<Cause>) {
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
        && regex::Regex::new(pattern).is_err()
    {
        causes.push(Cause::new(
            "FieldValueInvalid",
            &format!("{path}.pattern"),
            format!("Invalid value: {pattern:?}: must be a valid regular expression"),
        ));
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (key, child) in properties {
            check_patterns(child, &format!("{path}.properties[{key}]"), causes);
        }
    }
    if let Some(items) = schema.get("items") {
        check_patterns(items, &format!("{path}.items"), causes);
    }
    if let Some(additional @ Value::Object(_)) = schema.get("additionalProperties") {
        check_patterns(additional, &format!("{path}.additionalProperties"), causes);
    }
}

/// Sets defaults the real server fills in (singular, listKind, conversion).
pub fn apply_defaults(crd: &mut Value) {
    let kind = str_field(crd, "/spec/names/kind").to_string();
    if let Some(names) = crd
        .pointer_mut("/spec/names")
        .and_then(Value::as_object_mut)
    {
        if names.get("singular").is_none_or(|v| v.as_str() == Some("")) {
            names.insert("singular".into(), json!(kind.to_lowercase()));
        }
        if names.get("listKind").is_none_or(|v| v.as_str() == Some("")) {
            names.insert("listKind".into(), json!(format!("{kind}List")));
        }
    }
    if let Some(spec) = crd.get_mut("spec").and_then(Value::as_object_mut) {
        spec.entry("conversion")
            .or_insert_with(|| json!({"strategy": "None"}));
    }
}

/// The status of an accepted, established CRD (keeping condition times that did not change).
pub fn established_status(crd: &Value, terminating: bool) -> Value {
    let now = meta::now_rfc3339();
    let previous = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        let since = previous
            .iter()
            .find(|c| {
                c.get("type").and_then(Value::as_str) == Some(kind)
                    && c.get("status").and_then(Value::as_str) == Some(status)
            })
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or_else(|| json!(now));
        json!({"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": since})
    };
    let mut conditions = vec![
        condition("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
        condition(
            "Established",
            "True",
            "InitialNamesAccepted",
            "the initial names have been accepted",
        ),
    ];
    if terminating {
        conditions.push(condition(
            "Terminating",
            "True",
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
        ));
    }
    let storage: Vec<String> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|versions| {
            versions
                .iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut stored_versions = strings(crd.pointer("/status/storedVersions"));
    for version in storage {
        if !stored_versions.contains(&version) {
            stored_versions.push(version);
        }
    }
    json!({
        "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or_else(|| json!({})),
        "conditions": conditions,
        "storedVersions": stored_versions,
    })
}

/// The resources a CRD serves, one per served version.
pub fn resource_defs(crd: &Value) -> Vec<ResourceDef> {
    let group = str_field(crd, "/spec/group").to_string();
    let names = crd
        .pointer("/spec/names")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let kind = str_field(&names, "/kind").to_string();
    let plural = str_field(&names, "/plural").to_string();
    let singular = match str_field(&names, "/singular") {
        "" => kind.to_lowercase(),
        s => s.to_string(),
    };
    let namespaced = str_field(crd, "/spec/scope") != "Cluster";
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let storage_version = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("name").and_then(Value::as_str))
        .unwrap_or("")
        .to_string();
    versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool) != Some(false))
        .map(|version| {
            let name = version
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let mut subresources = Vec::new();
            let status_verbs: Vec<String> = ["get", "patch", "update"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            if version.pointer("/subresources/status").is_some() {
                subresources.push(SubresourceDef {
                    name: "status".into(),
                    group: group.clone(),
                    version: name.clone(),
                    kind: kind.clone(),
                    verbs: status_verbs.clone(),
                });
            }
            let scale = version.pointer("/subresources/scale").map(|scale| {
                (
                    str_field(scale, "/specReplicasPath").to_string(),
                    str_field(scale, "/statusReplicasPath").to_string(),
                )
            });
            if scale.is_some() {
                subresources.push(SubresourceDef {
                    name: "scale".into(),
                    group: "autoscaling".into(),
                    version: "v1".into(),
                    kind: "Scale".into(),
                    verbs: status_verbs,
                });
            }
            let printer_columns = version
                .get("additionalPrinterColumns")
                .and_then(Value::as_array)
                .map(|columns| {
                    columns
                        .iter()
                        .map(|c| PrinterColumn {
                            name: str_field(c, "/name").to_string(),
                            column_type: str_field(c, "/type").to_string(),
                            format: str_field(c, "/format").to_string(),
                            description: str_field(c, "/description").to_string(),
                            priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                            json_path: str_field(c, "/jsonPath").to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let selectable_fields = version
                .get("selectableFields")
                .and_then(Value::as_array)
                .map(|fields| {
                    fields
                        .iter()
                        .map(|f| str_field(f, "/jsonPath").to_string())
                        .collect()
                })
                .unwrap_or_default();
            ResourceDef {
                group: group.clone(),
                version: name,
                kind: kind.clone(),
                plural: plural.clone(),
                singular: singular.clone(),
                namespaced,
                short_names: strings(names.get("shortNames")),
                categories: strings(names.get("categories")),
                verbs: STANDARD_VERBS.iter().map(|s| s.to_string()).collect(),
                subresources,
                tracks_generation: true,
                storage: StorageKey {
                    group: group.clone(),
                    resource: plural.clone(),
                },
                conversion: Conversion::None,
                custom: Some(Arc::new(CustomSpec {
                    schema: version.pointer("/schema/openAPIV3Schema").cloned(),
                    printer_columns,
                    selectable_fields,
                    storage_version: storage_version.clone(),
                    scale,
                })),
            }
        })
        .collect()
}

//! `meta.k8s.io/v1` Table responses, so `kubectl get` prints like against a real cluster:
//! columns from a CRD's `additionalPrinterColumns`, the usual columns of common built-in
//! kinds, and `Name`/`Age` for everything else.

use serde_json::{Value, json};

use super::meta;
use super::resource::{PrinterColumn, ResourceDef};

fn column(
    name: &str,
    column_type: &str,
    format: &str,
    priority: i64,
    description: &str,
) -> PrinterColumn {
    PrinterColumn {
        name: name.into(),
        column_type: column_type.into(),
        format: format.into(),
        description: description.into(),
        priority,
        json_path: String::new(),
    }
}

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.";

fn name_column() -> PrinterColumn {
    column("Name", "string", "name", 0, NAME_DESCRIPTION)
}

fn age_column() -> PrinterColumn {
    column("Age", "string", "", 0, AGE_DESCRIPTION)
}

/// Evaluates a simple JSONPath (`.a.b`, `.a[0]`, `.a[*].b`, `.a[?(@.k=="v")].b`).
pub fn json_path<'v>(object: &'v Value, path: &str) -> Vec<&'v Value> {
    let path = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('$');
    let mut current: Vec<&Value> = vec![object];
    let dotted;
    let mut rest = if path.is_empty() || path.starts_with(['.', '[']) {
        path
    } else {
        // Paths without a leading dot, e.g. `status.phase`.
        dotted = format!(".{path}");
        dotted.as_str()
    };
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let field = &after[..end];
            rest = &after[end..];
            if field.is_empty() {
                continue;
            }
            current = current.into_iter().filter_map(|v| v.get(field)).collect();
        } else if let Some(after) = rest.strip_prefix('[') {
            let Some(end) = after.find(']') else {
                return Vec::new();
            };
            let selector = &after[..end];
            rest = &after[end + 1..];
            current = current
                .into_iter()
                .flat_map(|v| {
                    let items: Vec<&Value> =
                        v.as_array().map(|a| a.iter().collect()).unwrap_or_default();
                    if selector == "*" {
                        items
                    } else if let Ok(index) = selector.parse::<i64>() {
                        let index = if index < 0 {
                            items.len() as i64 + index
                        } else {
                            index
                        };
                        items.get(index as usize).copied().into_iter().collect()
                    } else if let Some(filter) = selector
                        .strip_prefix("?(@.")
                        .and_then(|f| f.strip_suffix(')'))
                    {
                        let (key, wanted) = match filter.split_once("==") {
                            Some((k, w)) => (k.trim(), Some(w.trim().trim_matches(['"', '\'']))),
                            None => (filter.trim(), None),
                        };
                        items
                            .into_iter()
                            .filter(|item| match (item.get(key), wanted) {
                                (Some(Value::String(s)), Some(w)) => s == w,
                                (Some(other), Some(w)) => *other == w,
                                (Some(_), None) => true,
                                (None, _) => false,
                            })
                            .collect()
                    } else {
                        Vec::new()
                    }
                })
                .collect();
        } else {
            return Vec::new();
        }
    }
    current
}

fn age(object: &Value) -> Value {
    meta::str_at(object, &["metadata", "creationTimestamp"])
        .and_then(meta::age_seconds)
        .map(|s| json!(meta::human_duration(s)))
        .unwrap_or(json!("<unknown>"))
}

fn custom_cell(object: &Value, column: &PrinterColumn) -> Value {
    let values = json_path(object, &column.json_path);
    let Some(first) = values.first() else {
        return Value::Null;
    };
    match column.column_type.as_str() {
        "date" => first
            .as_str()
            .and_then(meta::age_seconds)
            .map(|s| json!(meta::human_duration(s)))
            .unwrap_or(Value::Null),
        "string" => match first {
            Value::String(_) => (*first).clone(),
            Value::Null => Value::Null,
            other => json!(other.to_string()),
        },
        _ => (*first).clone(),
    }
}

fn count(value: Option<&Value>) -> i64 {
    match value {
        Some(Value::Object(map)) => map.len() as i64,
        Some(Value::Array(items)) => items.len() as i64,
        _ => 0,
    }
}

fn text(object: &Value, pointer: &str) -> String {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn or_none(s: String) -> Value {
    if s.is_empty() {
        json!("<none>")
    } else {
        json!(s)
    }
}

fn pod_status(pod: &Value) -> String {
    if meta::is_deleting(pod) {
        return "Terminating".into();
    }
    let mut reason = text(pod, "/status/reason");
    if reason.is_empty() {
        reason = text(pod, "/status/phase");
    }
    if let Some(statuses) = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
    {
        for status in statuses {
            let waiting = text(status, "/state/waiting/reason");
            let terminated = text(status, "/state/terminated/reason");
            if !waiting.is_empty() {
                reason = waiting;
            } else if !terminated.is_empty() {
                reason = terminated;
            }
        }
    }
    reason
}

fn builtin_columns(def: &ResourceDef) -> Vec<PrinterColumn> {
    let mut columns = vec![name_column()];
    let extra: Vec<PrinterColumn> = match (def.group.as_str(), def.plural.as_str()) {
        ("", "pods") => vec![
            column(
                "Ready",
                "string",
                "",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            column(
                "Status",
                "string",
                "",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            column(
                "Restarts",
                "string",
                "",
                0,
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            age_column(),
            column("IP", "string", "", 1, "The IP address assigned to the pod."),
            column(
                "Node",
                "string",
                "",
                1,
                "The name of the node the pod is assigned to.",
            ),
            column(
                "Nominated Node",
                "string",
                "",
                1,
                "The node the scheduler nominated for this pod.",
            ),
            column(
                "Readiness Gates",
                "string",
                "",
                1,
                "The readiness gates of the pod.",
            ),
        ],
        ("", "namespaces") => vec![
            column("Status", "string", "", 0, "The status of the namespace"),
            age_column(),
        ],
        ("", "nodes") => vec![
            column("Status", "string", "", 0, "The status of the node"),
            column("Roles", "string", "", 0, "The roles of the node"),
            age_column(),
            column(
                "Version",
                "string",
                "",
                0,
                "Kubelet Version reported by the node.",
            ),
        ],
        ("", "services") => vec![
            column("Type", "string", "", 0, "The type of the service."),
            column(
                "Cluster-IP",
                "string",
                "",
                0,
                "The cluster IP of the service.",
            ),
            column(
                "External-IP",
                "string",
                "",
                0,
                "The external IP of the service.",
            ),
            column("Port(s)", "string", "", 0, "The ports of the service."),
            age_column(),
            column("Selector", "string", "", 1, "The selector of the service."),
        ],
        ("apps", "deployments") => vec![
            column(
                "Ready",
                "string",
                "",
                0,
                "Number of the pod with ready state",
            ),
            column(
                "Up-to-date",
                "string",
                "",
                0,
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            ),
            column(
                "Available",
                "string",
                "",
                0,
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
            age_column(),
        ],
        ("apps", "replicasets") => vec![
            column("Desired", "integer", "", 0, "Number of desired pods."),
            column("Current", "integer", "", 0, "Number of actual replicas."),
            column("Ready", "integer", "", 0, "Number of ready replicas."),
            age_column(),
        ],
        ("", "configmaps") => vec![
            column("Data", "string", "", 0, "Number of data entries"),
            age_column(),
        ],
        ("", "secrets") => vec![
            column("Type", "string", "", 0, "The type of the secret"),
            column(
                "Data",
                "string",
                "",
                0,
                "The number of entries in the secret",
            ),
            age_column(),
        ],
        ("", "serviceaccounts") => vec![
            column("Secrets", "string", "", 0, "Number of secrets"),
            age_column(),
        ],
        ("coordination.k8s.io", "leases") => {
            vec![
                column("Holder", "string", "", 0, "The holder of the lease"),
                age_column(),
            ]
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            vec![column(
                "Created At",
                "date",
                "",
                0,
                "The time the CRD was created",
            )]
        }
        ("", "events") => {
            return vec![
                column(
                    "Last Seen",
                    "string",
                    "",
                    0,
                    "Time since the event was last seen",
                ),
                column("Type", "string", "", 0, "The type of the event"),
                column("Reason", "string", "", 0, "The reason of the event"),
                column("Object", "string", "", 0, "The object the event is about"),
                column("Message", "string", "", 0, "The message of the event"),
            ];
        }
        _ => vec![age_column()],
    };
    columns.extend(extra);
    columns
}

fn builtin_cells(def: &ResourceDef, object: &Value) -> Vec<Value> {
    let name = json!(meta::name(object));
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "pods") => {
            let containers = count(object.pointer("/spec/containers"));
            let statuses = object
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array);
            let ready = statuses
                .map(|s| {
                    s.iter()
                        .filter(|c| c.get("ready") == Some(&json!(true)))
                        .count()
                })
                .unwrap_or(0);
            let restarts: i64 = statuses
                .map(|s| {
                    s.iter()
                        .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                        .sum()
                })
                .unwrap_or(0);
            vec![
                name,
                json!(format!("{ready}/{containers}")),
                json!(pod_status(object)),
                json!(restarts.to_string()),
                age(object),
                or_none(text(object, "/status/podIP")),
                or_none(text(object, "/spec/nodeName")),
                or_none(text(object, "/status/nominatedNodeName")),
                json!("<none>"),
            ]
        }
        ("", "namespaces") => vec![name, json!(text(object, "/status/phase")), age(object)],
        ("", "nodes") => {
            let ready = object
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().find(|c| c.get("type") == Some(&json!("Ready"))))
                .map(|c| {
                    if c.get("status") == Some(&json!("True")) {
                        "Ready"
                    } else {
                        "NotReady"
                    }
                })
                .unwrap_or("Unknown");
            vec![
                name,
                json!(ready),
                json!("<none>"),
                age(object),
                json!(text(object, "/status/nodeInfo/kubeletVersion")),
            ]
        }
        ("", "services") => {
            let ports: Vec<String> = object
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ports| {
                    ports
                        .iter()
                        .map(|p| {
                            format!(
                                "{}/{}",
                                p.get("port").and_then(Value::as_i64).unwrap_or(0),
                                p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let selector: Vec<String> = object
                .pointer("/spec/selector")
                .and_then(Value::as_object)
                .map(|s| {
                    s.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                        .collect()
                })
                .unwrap_or_default();
            vec![
                name,
                json!(text(object, "/spec/type")),
                or_none(text(object, "/spec/clusterIP")),
                json!("<none>"),
                or_none(ports.join(",")),
                age(object),
                or_none(selector.join(",")),
            ]
        }
        ("apps", "deployments") => {
            let int = |p: &str| object.pointer(p).and_then(Value::as_i64).unwrap_or(0);
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    int("/status/readyReplicas"),
                    int("/spec/replicas")
                )),
                json!(int("/status/updatedReplicas")),
                json!(int("/status/availableReplicas")),
                age(object),
            ]
        }
        ("apps", "replicasets") => {
            let int = |p: &str| object.pointer(p).and_then(Value::as_i64).unwrap_or(0);
            vec![
                name,
                json!(int("/spec/replicas")),
                json!(int("/status/replicas")),
                json!(int("/status/readyReplicas")),
                age(object),
            ]
        }
        ("", "configmaps") => json!([
            name,
            count(object.get("data")) + count(object.get("binaryData")),
            age(object)
        ])
        .as_array()
        .cloned()
        .unwrap_or_default(),
        ("", "secrets") => vec![
            name,
            json!(text(object, "/type")),
            json!(count(object.get("data"))),
            age(object),
        ],
        ("", "serviceaccounts") => vec![name, json!(count(object.get("secrets"))), age(object)],
        ("coordination.k8s.io", "leases") => vec![
            name,
            json!(text(object, "/spec/holderIdentity")),
            age(object),
        ],
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            vec![name, json!(text(object, "/metadata/creationTimestamp"))]
        }
        ("", "events") => {
            let last = [
                "/lastTimestamp",
                "/eventTime",
                "/metadata/creationTimestamp",
            ]
            .iter()
            .find_map(|p| object.pointer(p).and_then(Value::as_str))
            .and_then(meta::age_seconds)
            .map(meta::human_duration)
            .unwrap_or_else(|| "<unknown>".into());
            vec![
                json!(last),
                json!(text(object, "/type")),
                json!(text(object, "/reason")),
                json!(format!(
                    "{}/{}",
                    text(object, "/involvedObject/kind").to_lowercase(),
                    text(object, "/involvedObject/name")
                )),
                json!(text(object, "/message")),
            ]
        }
        _ => vec![name, age(object)],
    }
}

/// The columns of a resource's table.
pub fn columns(def: &ResourceDef) -> Vec<PrinterColumn> {
    match &def.custom {
        Some(custom) if !custom.printer_columns.is_empty() => {
            let mut columns = vec![name_column()];
            columns.extend(custom.printer_columns.iter().cloned());
            columns
        }
        Some(_) => vec![name_column(), age_column()],
        None => builtin_columns(def),
    }
}

fn cells(def: &ResourceDef, object: &Value) -> Vec<Value> {
    match &def.custom {
        Some(custom) if !custom.printer_columns.is_empty() => {
            let mut cells = vec![json!(meta::name(object))];
            cells.extend(
                custom
                    .printer_columns
                    .iter()
                    .map(|c| custom_cell(object, c)),
            );
            cells
        }
        Some(_) => vec![json!(meta::name(object)), age(object)],
        None => builtin_cells(def, object),
    }
}

/// The object a row carries for `includeObject` = `None`, `Metadata` (default) or `Object`.
fn row_object(object: &Value, include: &str) -> Option<Value> {
    match include {
        "None" => None,
        "Object" => Some(object.clone()),
        _ => Some(partial_metadata(object)),
    }
}

/// A `PartialObjectMetadata` of an object.
pub fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// A Table of served-form objects.
pub fn table(
    def: &ResourceDef,
    objects: &[Value],
    include: &str,
    metadata: Value,
    with_columns: bool,
) -> Value {
    let column_definitions: Vec<Value> = columns(def)
        .iter()
        .map(|c| {
            json!({"name": c.name, "type": if c.column_type == "date" { "string" } else { c.column_type.as_str() },
                   "format": c.format, "description": c.description, "priority": c.priority})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let mut row = json!({ "cells": cells(def, object) });
            if let Some(included) = row_object(object, include) {
                row["object"] = included;
            }
            row
        })
        .collect();
    let mut table = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "rows": rows,
    });
    if with_columns {
        table["columnDefinitions"] = Value::Array(column_definitions);
    } else {
        table["columnDefinitions"] = Value::Null;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        let object = json!({"status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True"}, {"type": "Other", "status": "False"}]}});
        assert_eq!(json_path(&object, ".status.phase"), vec![&json!("Running")]);
        assert_eq!(
            json_path(&object, ".status.conditions[?(@.type==\"Ready\")].status"),
            vec![&json!("True")]
        );
        assert_eq!(
            json_path(&object, ".status.conditions[1].type"),
            vec![&json!("Other")]
        );
        assert_eq!(json_path(&object, ".status.conditions[*].type").len(), 2);
        assert!(json_path(&object, ".status.missing").is_empty());
    }
}

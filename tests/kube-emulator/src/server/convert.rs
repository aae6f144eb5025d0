//! Conversion between stored objects and the served version of a resource.
//!
//! Custom resources and most built-ins only change `apiVersion` (the CRD `None` strategy).
//! `events.k8s.io/v1` Events share storage with core `v1` Events, as in the real server, so
//! an Event recorded by kube-runtime's `Recorder` shows up in `kubectl describe`.

use serde_json::{Map, Value, json};

use super::resource::{Conversion, ResourceDef};

/// Field renames between events.k8s.io/v1 (left) and core v1 (right).
const EVENT_RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn rename(object: &Value, to_core: bool) -> Value {
    let Value::Object(map) = object else {
        return object.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        let renamed = EVENT_RENAMES
            .iter()
            .find(|(events, core)| if to_core { events == key } else { core == key })
            .map(|(events, core)| if to_core { *core } else { *events })
            .unwrap_or(key.as_str());
        out.insert(renamed.to_string(), value.clone());
    }
    Value::Object(out)
}

/// A stored object as the served version shows it.
pub fn to_served(def: &ResourceDef, stored: &Value) -> Value {
    let mut object = match def.conversion {
        Conversion::None => stored.clone(),
        Conversion::EventsV1 => {
            let mut converted = rename(stored, false);
            if let Some(map) = converted.as_object_mut() {
                // events.k8s.io requires eventTime; old core events may lack it.
                if map.get("eventTime").is_none_or(Value::is_null) {
                    let fallback = map
                        .get("deprecatedFirstTimestamp")
                        .or_else(|| map.get("metadata").and_then(|m| m.get("creationTimestamp")))
                        .cloned()
                        .unwrap_or(Value::Null);
                    map.insert("eventTime".into(), to_micro(&fallback));
                }
            }
            converted
        }
    };
    if let Some(map) = object.as_object_mut() {
        map.insert("apiVersion".into(), json!(def.api_version()));
        map.insert("kind".into(), json!(def.kind));
    }
    object
}

fn to_micro(value: &Value) -> Value {
    match value.as_str() {
        Some(s) if s.ends_with('Z') && !s.contains('.') => {
            json!(format!("{}.000000Z", s.trim_end_matches('Z')))
        }
        _ => value.clone(),
    }
}

/// An object of the served version as it is stored.
pub fn to_stored(def: &ResourceDef, served: &Value) -> Value {
    let mut object = match def.conversion {
        Conversion::None => served.clone(),
        Conversion::EventsV1 => rename(served, true),
    };
    if let Some(map) = object.as_object_mut() {
        let stored_version = match (&def.custom, def.conversion) {
            (Some(custom), _) => custom.storage_version.clone(),
            (None, Conversion::EventsV1) => "v1".to_string(),
            (None, Conversion::None) => def.version.clone(),
        };
        let api_version = if def.storage.group.is_empty() {
            stored_version
        } else {
            format!("{}/{}", def.storage.group, stored_version)
        };
        map.insert("apiVersion".into(), json!(api_version));
        if def.conversion == Conversion::EventsV1 {
            map.insert("kind".into(), json!("Event"));
        }
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::resource::builtin_resources;

    #[test]
    fn events_round_trip_between_apis() {
        let defs = builtin_resources();
        let events_v1 = defs.iter().find(|d| d.group == "events.k8s.io").unwrap();
        let served = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "Pod", "name": "p"}, "note": "hello", "reason": "Started", "reportingController": "x",
            "eventTime": "2024-01-01T00:00:00.000000Z"});
        let stored = to_stored(events_v1, &served);
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["involvedObject"]["name"], "p");
        assert_eq!(stored["message"], "hello");
        assert_eq!(to_served(events_v1, &stored), served);
    }
}

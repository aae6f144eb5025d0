//! Reading and writing `metadata` fields of objects held as JSON values.

use serde_json::{Map, Value, json};

/// Current time as an RFC 3339 string with second precision (`metav1.Time`).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Current time with microseconds (`metav1.MicroTime`).
pub fn now_micro() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        .to_string()
}

/// A string at a dotted path (`metadata.name`).
pub fn str_at<'a>(object: &'a Value, path: &[&str]) -> Option<&'a str> {
    value_at(object, path).and_then(Value::as_str)
}

/// A value at a path of object keys.
pub fn value_at<'a>(object: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut current = object;
    for key in path {
        current = current.get(key)?;
    }
    Some(current)
}

/// `metadata.name`, empty when absent.
pub fn name(object: &Value) -> &str {
    str_at(object, &["metadata", "name"]).unwrap_or("")
}

/// `metadata.namespace`, empty when absent.
pub fn namespace(object: &Value) -> &str {
    str_at(object, &["metadata", "namespace"]).unwrap_or("")
}

/// `metadata.uid`, empty when absent.
pub fn uid(object: &Value) -> &str {
    str_at(object, &["metadata", "uid"]).unwrap_or("")
}

/// `metadata.resourceVersion`, empty when absent.
pub fn resource_version(object: &Value) -> &str {
    str_at(object, &["metadata", "resourceVersion"]).unwrap_or("")
}

/// The `metadata` map, created when missing (or replaced when not an object).
pub fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.is_object() {
        *object = json!({});
    }
    let map = object.as_object_mut().expect("object checked above");
    let metadata = map.entry("metadata").or_insert_with(|| json!({}));
    if !metadata.is_object() {
        *metadata = json!({});
    }
    metadata.as_object_mut().expect("metadata checked above")
}

/// Sets a metadata field.
pub fn set_meta(object: &mut Value, key: &str, value: Value) {
    metadata_mut(object).insert(key.to_string(), value);
}

/// Removes a metadata field.
pub fn remove_meta(object: &mut Value, key: &str) {
    metadata_mut(object).remove(key);
}

/// `metadata.finalizers`.
pub fn finalizers(object: &Value) -> Vec<String> {
    value_at(object, &["metadata", "finalizers"])
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Replaces `metadata.finalizers` (removing the key when empty, like the server's omitempty).
pub fn set_finalizers(object: &mut Value, list: &[String]) {
    if list.is_empty() {
        remove_meta(object, "finalizers");
    } else {
        set_meta(object, "finalizers", json!(list));
    }
}

/// `metadata.deletionTimestamp` is set.
pub fn is_deleting(object: &Value) -> bool {
    value_at(object, &["metadata", "deletionTimestamp"]).is_some_and(|v| !v.is_null())
}

/// `metadata.labels` as pairs.
pub fn labels(object: &Value) -> Map<String, Value> {
    value_at(object, &["metadata", "labels"])
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// An owner reference, reduced to what the garbage collector needs.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnerRef {
    /// Owner's uid.
    pub uid: String,
    /// Owner's apiVersion.
    pub api_version: String,
    /// Owner's kind.
    pub kind: String,
    /// Owner's name.
    pub name: String,
    /// Dependent blocks foreground deletion of the owner.
    pub block_owner_deletion: bool,
}

/// `metadata.ownerReferences`.
pub fn owner_refs(object: &Value) -> Vec<OwnerRef> {
    value_at(object, &["metadata", "ownerReferences"])
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .map(|r| OwnerRef {
                    uid: r
                        .get("uid")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    api_version: r
                        .get("apiVersion")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    kind: r
                        .get("kind")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    name: r
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    block_owner_deletion: r
                        .get("blockOwnerDeletion")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Removes owner references with the given uid; returns whether any was removed.
pub fn remove_owner_ref(object: &mut Value, owner_uid: &str) -> bool {
    let metadata = metadata_mut(object);
    let Some(Value::Array(refs)) = metadata.get_mut("ownerReferences") else {
        return false;
    };
    let before = refs.len();
    refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(owner_uid));
    let removed = refs.len() != before;
    if refs.is_empty() {
        metadata.remove("ownerReferences");
    }
    removed
}

/// The object without `metadata` and `status`: what `generation` tracks.
pub fn spec_part(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
        map.remove("apiVersion");
        map.remove("kind");
    }
    copy
}

/// A human duration like kubectl's AGE column: `45s`, `12m`, `3h5m`, `2d`.
pub fn human_duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let rest = seconds % 60;
        return if rest == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{rest}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let rest = minutes % 60;
        return if rest == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{rest}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if days < 8 {
        let rest = hours % 24;
        return if rest == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{rest}h")
        };
    }
    if days < 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if years < 8 {
        let rest = days % 365;
        return if rest == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{rest}d")
        };
    }
    format!("{years}y")
}

/// Seconds since an RFC 3339 timestamp, when it parses.
pub fn age_seconds(timestamp: &str) -> Option<i64> {
    let then: jiff::Timestamp = timestamp.parse().ok()?;
    Some(jiff::Timestamp::now().as_second() - then.as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(60 * 30), "30m");
        assert_eq!(human_duration(3600 * 5 + 60 * 7), "5h7m");
        assert_eq!(human_duration(3600 * 30), "30h");
        assert_eq!(human_duration(86400 * 3), "3d");
    }

    #[test]
    fn owner_refs_are_removed_by_uid() {
        let mut pod =
            json!({"metadata": {"ownerReferences": [{"uid": "a", "kind": "X"}, {"uid": "b"}]}});
        assert!(remove_owner_ref(&mut pod, "a"));
        assert_eq!(owner_refs(&pod).len(), 1);
        assert!(remove_owner_ref(&mut pod, "b"));
        assert!(pod["metadata"].get("ownerReferences").is_none());
    }
}

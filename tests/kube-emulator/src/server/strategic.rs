//! Strategic merge patch (`application/strategic-merge-patch+json`) for built-in kinds.
//!
//! The real server reads patch strategies from Go struct tags; here a table holds the list
//! merge keys kubectl and helm rely on ([`list_strategy`]). Lists not in the table are
//! replaced, like lists without a `patchStrategy` tag. Supported directives: `$patch`
//! (`replace`, `delete`, `merge`), `$deleteFromPrimitiveList/<field>`, `$retainKeys`;
//! `$setElementOrder/<field>` is accepted and only used to order merged lists.

use serde_json::{Map, Value};

/// How a list field is patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// The patch's list replaces the original (no patchStrategy).
    Replace,
    /// Elements are maps merged by this key (`patchStrategy:"merge" patchMergeKey:KEY`).
    MergeByKey(&'static str),
    /// A set of primitives: patch values are added (`metadata.finalizers`).
    MergePrimitives,
}

/// The strategy of the list at `path` (field names from the object root, no indices) in `kind`.
pub fn list_strategy(kind: &str, path: &[&str]) -> ListStrategy {
    let Some(field) = path.last() else {
        return ListStrategy::Replace;
    };
    let parent = if path.len() >= 2 {
        path[path.len() - 2]
    } else {
        ""
    };
    match *field {
        "containers" | "initContainers" | "ephemeralContainers" => ListStrategy::MergeByKey("name"),
        "env" | "imagePullSecrets" | "secrets" | "resourceClaims" | "schedulingGates" => {
            ListStrategy::MergeByKey("name")
        }
        "volumes" if parent == "spec" => ListStrategy::MergeByKey("name"),
        "volumeMounts" => ListStrategy::MergeByKey("mountPath"),
        "volumeDevices" => ListStrategy::MergeByKey("devicePath"),
        "ports" if kind == "Service" && path == ["spec", "ports"] => {
            ListStrategy::MergeByKey("port")
        }
        "ports" if path.iter().any(|p| p.ends_with("ontainers")) => {
            ListStrategy::MergeByKey("containerPort")
        }
        "conditions" => ListStrategy::MergeByKey("type"),
        "addresses" if kind == "Node" => ListStrategy::MergeByKey("type"),
        "ownerReferences" if parent == "metadata" => ListStrategy::MergeByKey("uid"),
        "finalizers" if parent == "metadata" => ListStrategy::MergePrimitives,
        "hostAliases" => ListStrategy::MergeByKey("ip"),
        "podIPs" | "hostIPs" => ListStrategy::MergeByKey("ip"),
        "topologySpreadConstraints" => ListStrategy::MergeByKey("topologyKey"),
        "taints" if kind == "Node" => ListStrategy::MergeByKey("key"),
        _ => ListStrategy::Replace,
    }
}

/// Error in a patch document.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct PatchError(pub String);

/// Applies a strategic merge patch to `original` for an object of `kind`.
pub fn apply(kind: &str, original: &Value, patch: &Value) -> Result<Value, PatchError> {
    let Value::Object(patch_map) = patch else {
        return Err(PatchError(
            "strategic merge patch must be a JSON object".into(),
        ));
    };
    let mut result = match original {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    let mut path = Vec::new();
    if merge_map(kind, &mut path, &mut result, patch_map)? {
        return Err(PatchError(
            "cannot delete the whole object with $patch: delete".into(),
        ));
    }
    Ok(Value::Object(result))
}

fn is_directive(key: &str) -> bool {
    key.starts_with('$')
}

/// Removes directive keys recursively, for values inserted wholesale.
fn strip_directives(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !is_directive(k))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|item| {
                    !(item
                        .as_object()
                        .is_some_and(|m| m.len() == 1 && m.contains_key("$patch")))
                })
                .map(strip_directives)
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Merges `patch` into `original`; returns true when the patch says `$patch: delete` for this map.
fn merge_map<'p>(
    kind: &str,
    path: &mut Vec<&'p str>,
    original: &mut Map<String, Value>,
    patch: &'p Map<String, Value>,
) -> Result<bool, PatchError> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("delete") => return Ok(true),
        Some("replace") => {
            if let Value::Object(stripped) = strip_directives(&Value::Object(patch.clone())) {
                *original = stripped;
            }
            return Ok(false);
        }
        Some("merge") | None => {}
        Some(other) => return Err(PatchError(format!("unknown patch type: {other:?}"))),
    }
    for (key, value) in patch {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            let remove: Vec<&Value> = value
                .as_array()
                .map(|v| v.iter().collect())
                .unwrap_or_default();
            if let Some(Value::Array(items)) = original.get_mut(field) {
                items.retain(|item| !remove.contains(&item));
            }
            continue;
        }
        if is_directive(key) {
            continue;
        }
        path.push(key.as_str());
        match value {
            Value::Null => {
                original.remove(key);
            }
            Value::Object(patch_child) => {
                let delete = match original.get_mut(key) {
                    Some(Value::Object(original_child)) => {
                        merge_map(kind, path, original_child, patch_child)?
                    }
                    _ => {
                        if patch_child.get("$patch").and_then(Value::as_str) == Some("delete") {
                            true
                        } else {
                            original.insert(key.clone(), strip_directives(value));
                            false
                        }
                    }
                };
                if delete {
                    original.remove(key);
                }
            }
            Value::Array(patch_items) => {
                let order = patch
                    .get(&format!("$setElementOrder/{key}"))
                    .and_then(Value::as_array);
                let merged = merge_list(kind, path, original.get(key), patch_items, order)?;
                original.insert(key.clone(), merged);
            }
            scalar => {
                original.insert(key.clone(), scalar.clone());
            }
        }
        path.pop();
    }
    if let Some(Value::Array(retain)) = patch.get("$retainKeys") {
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        original.retain(|k, _| keep.contains(&k.as_str()));
    }
    Ok(false)
}

fn merge_list<'p>(
    kind: &str,
    path: &mut Vec<&'p str>,
    original: Option<&Value>,
    patch_items: &'p [Value],
    order: Option<&Vec<Value>>,
) -> Result<Value, PatchError> {
    let replace_marker = |item: &Value| {
        item.as_object()
            .is_some_and(|m| m.get("$patch").and_then(Value::as_str) == Some("replace"))
    };
    if patch_items.iter().any(replace_marker) {
        return Ok(Value::Array(
            patch_items
                .iter()
                .filter(|item| !replace_marker(item))
                .map(strip_directives)
                .collect(),
        ));
    }
    let original_items: Vec<Value> = original
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match list_strategy(kind, path) {
        ListStrategy::Replace => Ok(strip_directives(&Value::Array(patch_items.to_vec()))),
        ListStrategy::MergePrimitives => {
            let mut items = original_items.clone();
            for item in patch_items {
                if !items.contains(item) {
                    items.push(item.clone());
                }
            }
            let identity = |item: &Value| Some(item.clone());
            Ok(Value::Array(element_order(
                items,
                patch_items,
                &original_items,
                identity,
            )))
        }
        ListStrategy::MergeByKey(merge_key) => {
            let mut items = original_items.clone();
            for patch_item in patch_items {
                let Value::Object(patch_map) = patch_item else {
                    return Err(PatchError(format!(
                        "list {} needs objects with key {merge_key}",
                        path.join(".")
                    )));
                };
                let Some(key_value) = patch_map.get(merge_key) else {
                    return Err(PatchError(format!(
                        "map: {patch_map:?} does not contain declared merge key: {merge_key}"
                    )));
                };
                let position = items
                    .iter()
                    .position(|item| item.get(merge_key) == Some(key_value));
                let delete = patch_map.get("$patch").and_then(Value::as_str) == Some("delete");
                match (position, delete) {
                    (Some(index), true) => {
                        items.remove(index);
                    }
                    (None, true) => {}
                    (Some(index), false) => {
                        if let Value::Object(original_map) = &mut items[index] {
                            merge_map(kind, path, original_map, patch_map)?;
                        }
                    }
                    (None, false) => items.push(strip_directives(patch_item)),
                }
            }
            if let Some(order) = order {
                let rank = |item: &Value| {
                    item.get(merge_key)
                        .and_then(|k| order.iter().position(|o| o.get(merge_key) == Some(k)))
                        .unwrap_or(usize::MAX)
                };
                items.sort_by_key(rank);
                return Ok(Value::Array(items));
            }
            let key_of = |item: &Value| item.get(merge_key).cloned();
            Ok(Value::Array(element_order(
                items,
                patch_items,
                &original_items,
                key_of,
            )))
        }
    }
}

/// Orders a merged list as apimachinery's `normalizeElementOrder` does when the patch has no
/// `$setElementOrder`: the items the patch names keep the patch's order, the server-only items
/// keep the live order, and the two are interleaved by live position where both have one —
/// otherwise the patch's item goes first. So a new item lands in front: `[A]` patched with
/// `[B]` is `[B, A]`.
fn element_order(
    merged: Vec<Value>,
    patch_items: &[Value],
    live: &[Value],
    key_of: impl Fn(&Value) -> Option<Value>,
) -> Vec<Value> {
    let position = |list: &[Value], item: &Value| {
        let key = key_of(item)?;
        list.iter()
            .position(|other| key_of(other).as_ref() == Some(&key))
    };
    let (mut from_patch, server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|item| position(patch_items, item).is_some());
    from_patch.sort_by_key(|item| position(patch_items, item));
    let mut out = Vec::with_capacity(from_patch.len() + server_only.len());
    let mut server_only = server_only.into_iter().peekable();
    let mut from_patch = from_patch.into_iter().peekable();
    loop {
        let take_server = match (server_only.peek(), from_patch.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(left), Some(right)) => match (position(live, left), position(live, right)) {
                (Some(l), Some(r)) => l < r,
                _ => false,
            },
        };
        let next = if take_server {
            server_only.next()
        } else {
            from_patch.next()
        };
        out.extend(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_merge_by_name_and_env_by_name() {
        let original = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"}
        ]}});
        let patch = json!({"spec": {"containers": [
            {"name": "a", "env": [{"name": "Y", "value": "2"}]},
            {"name": "b", "$patch": "delete"}
        ]}});
        let out = apply("Pod", &original, &patch).unwrap();
        assert_eq!(
            out,
            json!({"spec": {"containers": [
                {"name": "a", "image": "a:1", "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}]}
            ]}})
        );
    }

    #[test]
    fn replace_directive_and_null_deletion() {
        let original = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["x"]}, "data": {"k": "v"}});
        let patch = json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}, "finalizers": ["y"]}, "data": {"k": null}});
        let out = apply("ConfigMap", &original, &patch).unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"c": "3"}, "finalizers": ["y", "x"]}, "data": {}})
        );
    }

    #[test]
    fn service_ports_merge_by_port_and_args_replace() {
        let original = json!({"spec": {"ports": [{"port": 80, "name": "http"}], "containers": [{"name": "c", "args": ["a"]}]}});
        let patch = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}});
        let out = apply("Service", &original, &patch).unwrap();
        assert_eq!(
            out["spec"]["ports"],
            json!([{"port": 80, "name": "http", "targetPort": 8080}])
        );
        let patch = json!({"spec": {"containers": [{"name": "c", "args": ["b"]}]}});
        let out = apply("Pod", &original, &patch).unwrap();
        assert_eq!(out["spec"]["containers"][0]["args"], json!(["b"]));
    }

    #[test]
    fn new_items_go_first_and_live_items_keep_their_order() {
        let env = |names: &[&str]| json!({"spec": {"containers": [{"name": "c", "env": names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()}]}});
        let out = apply("Pod", &env(&["A"]), &env(&["B"])).unwrap();
        assert_eq!(out, env(&["B", "A"]));
        let out = apply("Pod", &out, &env(&["C"])).unwrap();
        assert_eq!(out, env(&["C", "B", "A"]));
        // An item the live list has stays at its live place among the others.
        let out = apply("Pod", &env(&["A", "B", "C"]), &env(&["B", "D"])).unwrap();
        assert_eq!(out, env(&["A", "B", "D", "C"]));
    }
}

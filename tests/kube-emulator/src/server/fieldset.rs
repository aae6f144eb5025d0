//! Field sets in the `FieldsV1` encoding of `metadata.managedFields`
//! (`{"f:spec":{"f:replicas":{}}}`, `k:{"name":"c"}` for list-map elements, `v:` for set
//! values, `.` for "this element itself"), and how objects map onto them.
//!
//! Which lists are granular follows the resource: a CRD schema's `x-kubernetes-list-type`
//! (`map` with `x-kubernetes-list-map-keys`, `set`; otherwise atomic), and for built-in kinds
//! the strategic-merge key table (merge-by-key lists are maps, merged primitives are sets).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::strategic::{self, ListStrategy};

/// A set of field paths as a tree; a node with no children is a leaf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    children: BTreeMap<String, FieldSet>,
}

/// A path of FieldsV1 keys from the root (`["f:spec", "f:replicas"]`).
pub type FieldPath = Vec<String>;

impl FieldSet {
    /// Parses a `fieldsV1` value.
    pub fn from_json(value: &Value) -> FieldSet {
        let children = value
            .as_object()
            .map(|map| {
                map.iter()
                    .map(|(k, v)| (k.clone(), FieldSet::from_json(v)))
                    .collect()
            })
            .unwrap_or_default();
        FieldSet { children }
    }

    /// The `fieldsV1` value.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.children
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect::<Map<_, _>>(),
        )
    }

    /// No fields.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// Every leaf path.
    pub fn leaves(&self) -> Vec<FieldPath> {
        let mut out = Vec::new();
        self.collect_leaves(&mut Vec::new(), &mut out);
        out
    }

    fn collect_leaves(&self, prefix: &mut Vec<String>, out: &mut Vec<FieldPath>) {
        for (key, child) in &self.children {
            prefix.push(key.clone());
            if child.children.is_empty() {
                out.push(prefix.clone());
            } else {
                child.collect_leaves(prefix, out);
            }
            prefix.pop();
        }
    }

    /// Adds a path.
    pub fn insert(&mut self, path: &[String]) {
        let mut node = self;
        for key in path {
            node = node.children.entry(key.clone()).or_default();
        }
    }

    /// Whether the path is a leaf of this set.
    pub fn contains(&self, path: &[String]) -> bool {
        let mut node = self;
        for key in path {
            match node.children.get(key) {
                Some(child) => node = child,
                None => return false,
            }
        }
        node.children.is_empty()
    }

    /// Removes a leaf path and prunes emptied parents.
    pub fn remove(&mut self, path: &[String]) {
        fn go(node: &mut FieldSet, path: &[String]) -> bool {
            let Some((first, rest)) = path.split_first() else {
                return true;
            };
            let remove_child = match node.children.get_mut(first) {
                Some(child) => {
                    if rest.is_empty() {
                        true
                    } else {
                        go(child, rest) && child.children.is_empty()
                    }
                }
                None => false,
            };
            if remove_child {
                node.children.remove(first);
            }
            node.children.is_empty()
        }
        go(self, path);
    }

    /// Keeps only the subtree under one top-level key (e.g. `f:status`), or drops it.
    pub fn filter_top(&mut self, key: &str, keep: bool) {
        self.children.retain(|k, _| (k == key) == keep);
    }

    /// Drops the paths the server never tracks: apiVersion, kind and identity metadata.
    pub fn drop_untracked(&mut self) {
        self.children.remove("f:apiVersion");
        self.children.remove("f:kind");
        if let Some(metadata) = self.children.get_mut("f:metadata") {
            for key in [
                "f:name",
                "f:namespace",
                "f:uid",
                "f:resourceVersion",
                "f:generation",
                "f:creationTimestamp",
                "f:deletionTimestamp",
                "f:deletionGracePeriodSeconds",
                "f:managedFields",
                "f:selfLink",
                "f:generateName",
            ] {
                metadata.children.remove(key);
            }
            if metadata.children.is_empty() {
                self.children.remove("f:metadata");
            }
        }
    }
}

/// How a list is tracked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    /// Owned as a whole.
    Atomic,
    /// Primitive values owned one by one (`v:`).
    Set,
    /// Elements keyed by these fields (`k:`).
    Map(Vec<String>),
}

/// What the type of an object says about its lists.
#[derive(Debug, Clone, Copy)]
pub struct TypeInfo<'a> {
    /// Kind, for the built-in merge-key table.
    pub kind: &'a str,
    /// CRD schema, when the resource is custom.
    pub schema: Option<&'a Value>,
}

impl TypeInfo<'_> {
    /// The list kind at `names` (field names from the root) whose schema node is `schema`.
    pub fn list_kind(&self, names: &[&str], schema: Option<&Value>) -> ListKind {
        if self.schema.is_some() {
            let Some(schema) = schema else {
                return ListKind::Atomic;
            };
            return match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("map") => ListKind::Map(
                    schema
                        .get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|keys| {
                            keys.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
                Some("set") => ListKind::Set,
                _ => ListKind::Atomic,
            };
        }
        match strategic::list_strategy(self.kind, names) {
            ListStrategy::MergeByKey(key) => ListKind::Map(vec![key.to_string()]),
            ListStrategy::MergePrimitives => ListKind::Set,
            ListStrategy::Replace => ListKind::Atomic,
        }
    }
}

/// The child schema of a property.
pub fn property_schema<'s>(schema: Option<&'s Value>, key: &str) -> Option<&'s Value> {
    let schema = schema?;
    schema
        .get("properties")
        .and_then(|p| p.get(key))
        .or_else(|| match schema.get("additionalProperties") {
            Some(additional @ Value::Object(_)) => Some(additional),
            _ => None,
        })
}

/// The element key of a list-map item: `k:{"name":"c"}`.
pub fn element_key(item: &Value, keys: &[String]) -> Option<String> {
    let mut key_map = Map::new();
    for key in keys {
        key_map.insert(key.clone(), item.get(key)?.clone());
    }
    Some(format!("k:{}", Value::Object(key_map)))
}

/// The fields set in `value`.
pub fn fields_of(value: &Value, types: TypeInfo<'_>) -> FieldSet {
    let mut set = FieldSet::default();
    let mut names = Vec::new();
    collect(
        value,
        types,
        types.schema,
        &mut names,
        &mut Vec::new(),
        &mut set,
    );
    set
}

fn collect<'v>(
    value: &'v Value,
    types: TypeInfo<'_>,
    schema: Option<&Value>,
    names: &mut Vec<&'v str>,
    path: &mut Vec<String>,
    set: &mut FieldSet,
) {
    let Value::Object(map) = value else { return };
    for (key, child) in map {
        names.push(key.as_str());
        path.push(format!("f:{key}"));
        let child_schema = property_schema(schema, key);
        match child {
            Value::Object(inner) if !inner.is_empty() => {
                collect(child, types, child_schema, names, path, set)
            }
            Value::Array(items) => match types.list_kind(names, child_schema) {
                ListKind::Atomic => set.insert(path),
                ListKind::Set => {
                    if items.is_empty() {
                        set.insert(path);
                    }
                    for item in items {
                        path.push(format!("v:{item}"));
                        set.insert(path);
                        path.pop();
                    }
                }
                ListKind::Map(keys) => {
                    if items.is_empty() {
                        set.insert(path);
                    }
                    let item_schema = child_schema.and_then(|s| s.get("items"));
                    for item in items {
                        match element_key(item, &keys) {
                            Some(element) => {
                                path.push(element);
                                path.push(".".to_string());
                                set.insert(path);
                                path.pop();
                                collect(item, types, item_schema, names, path, set);
                                path.pop();
                            }
                            None => set.insert(path),
                        }
                    }
                }
            },
            _ => set.insert(path),
        }
        path.pop();
        names.pop();
    }
}

/// The value at a field path, if present.
pub fn value_at<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut current = value;
    for key in path {
        if key == "." {
            continue;
        }
        current = if let Some(field) = key.strip_prefix("f:") {
            current.get(field)?
        } else if let Some(element) = key.strip_prefix("k:") {
            let wanted: Map<String, Value> = serde_json::from_str(element).ok()?;
            current
                .as_array()?
                .iter()
                .find(|item| wanted.iter().all(|(k, v)| item.get(k) == Some(v)))?
        } else if let Some(raw) = key.strip_prefix("v:") {
            let wanted: Value = serde_json::from_str(raw).ok()?;
            current.as_array()?.iter().find(|item| **item == wanted)?
        } else {
            return None;
        };
    }
    Some(current)
}

/// Removes the field at a path from an object (a `.` leaf removes the element itself).
pub fn remove_at(value: &mut Value, path: &[String]) {
    let path: Vec<&String> = path.iter().filter(|k| *k != ".").collect();
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = value;
    for key in parents {
        let next = if let Some(field) = key.strip_prefix("f:") {
            current.get_mut(field)
        } else if let Some(element) = key.strip_prefix("k:") {
            let Ok(wanted) = serde_json::from_str::<Map<String, Value>>(element) else {
                return;
            };
            current.as_array_mut().and_then(|items| {
                items
                    .iter_mut()
                    .find(|item| wanted.iter().all(|(k, v)| item.get(k) == Some(v)))
            })
        } else {
            None
        };
        match next {
            Some(next) => current = next,
            None => return,
        }
    }
    if let Some(field) = last.strip_prefix("f:") {
        if let Some(map) = current.as_object_mut() {
            map.remove(field);
        }
    } else if let Some(element) = last.strip_prefix("k:") {
        if let (Ok(wanted), Some(items)) = (
            serde_json::from_str::<Map<String, Value>>(element),
            current.as_array_mut(),
        ) {
            items.retain(|item| !wanted.iter().all(|(k, v)| item.get(k) == Some(v)));
        }
    } else if let Some(raw) = last.strip_prefix("v:")
        && let (Ok(wanted), Some(items)) =
            (serde_json::from_str::<Value>(raw), current.as_array_mut())
    {
        items.retain(|item| *item != wanted);
    }
}

/// `.spec.containers[name="c"].image`, the way conflict messages print paths.
pub fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for key in path {
        if let Some(field) = key.strip_prefix("f:") {
            out.push('.');
            out.push_str(field);
        } else if let Some(element) = key.strip_prefix("k:") {
            let parts: Vec<String> = serde_json::from_str::<Map<String, Value>>(element)
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(raw) = key.strip_prefix("v:") {
            out.push_str(&format!("[={raw}]"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_fields_use_keys_for_containers() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "i", "args": ["x"]}]}});
        let mut set = fields_of(
            &pod,
            TypeInfo {
                kind: "Pod",
                schema: None,
            },
        );
        set.drop_untracked();
        assert_eq!(
            set.to_json(),
            json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {
                ".": {}, "f:args": {}, "f:image": {}, "f:name": {}}}}})
        );
        let image = vec![
            "f:spec".to_string(),
            "f:containers".into(),
            "k:{\"name\":\"c\"}".into(),
            "f:image".into(),
        ];
        assert_eq!(value_at(&pod, &image), Some(&json!("i")));
        assert_eq!(display_path(&image), ".spec.containers[name=\"c\"].image");
        let mut copy = pod.clone();
        remove_at(&mut copy, &image);
        assert!(copy["spec"]["containers"][0].get("image").is_none());
        set.remove(&image);
        assert!(!set.contains(&image));
    }
}

//! Server-side apply and `metadata.managedFields` bookkeeping.
//!
//! Ownership is tracked per field at full depth (maps recursed, list-maps by key, sets by
//! value, other lists atomic; see [`super::fieldset`]). Apply conflicts arise when another
//! manager owns a leaf the applied configuration sets to a different value; `force=true`
//! takes those fields over. Fields a manager applied before and omits now are removed when
//! no other manager owns them. Updates (create, PUT, non-apply PATCH) give their manager the
//! leaves whose values changed and take them from everyone else.
//!
//! Approximations: managers are told apart by name (an applier never conflicts with its own
//! Update entry); list-map elements are keyed by the single merge key for built-in kinds; the
//! kubectl client-side → server-side apply migration is not special-cased.

use serde_json::{Map, Value, json};

use super::fieldset::{self, FieldPath, FieldSet, ListKind, TypeInfo, property_schema};
use super::meta;
use super::status::ApiError;

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagedEntry {
    /// Field manager name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// apiVersion the fields were set through.
    pub api_version: String,
    /// When the entry last changed.
    pub time: String,
    /// `status` for entries made through the status subresource.
    pub subresource: String,
    /// Owned fields.
    pub fields: FieldSet,
}

impl ManagedEntry {
    fn same_slot(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }
}

/// The entries stored on an object.
pub fn read_managed(object: &Value) -> Vec<ManagedEntry> {
    meta::value_at(object, &["metadata", "managedFields"])
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .map(|e| ManagedEntry {
                    manager: e
                        .get("manager")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    operation: e
                        .get("operation")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    api_version: e
                        .get("apiVersion")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    time: e
                        .get("time")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    subresource: e
                        .get("subresource")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    fields: e
                        .get("fieldsV1")
                        .map(FieldSet::from_json)
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Writes entries back (dropping empty ones; removing the key when none remain).
pub fn write_managed(object: &mut Value, entries: &[ManagedEntry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut entry = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": e.fields.to_json(),
            });
            if !e.subresource.is_empty() {
                entry["subresource"] = json!(e.subresource);
            }
            entry
        })
        .collect();
    if list.is_empty() {
        meta::remove_meta(object, "managedFields");
    } else {
        meta::set_meta(object, "managedFields", Value::Array(list));
    }
}

/// Which part of the object a request may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything (resources without a status subresource).
    Whole,
    /// Everything but `status` (main endpoint of a resource with a status subresource).
    NoStatus,
    /// Only `status` (the status subresource).
    StatusOnly,
}

impl Scope {
    /// The subresource name recorded in managedFields.
    pub fn subresource(self) -> &'static str {
        if self == Scope::StatusOnly {
            "status"
        } else {
            ""
        }
    }
}

fn tracked_fields(object: &Value, types: TypeInfo<'_>, scope: Scope) -> FieldSet {
    let mut set = fieldset::fields_of(object, types);
    set.drop_untracked();
    match scope {
        Scope::Whole => {}
        Scope::NoStatus => set.filter_top("f:status", false),
        Scope::StatusOnly => set.filter_top("f:status", true),
    }
    set
}

/// Who asks and how.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// Field manager.
    pub manager: &'a str,
    /// apiVersion of the request.
    pub api_version: &'a str,
    /// Part of the object the request may change.
    pub scope: Scope,
    /// Type information for lists.
    pub types: TypeInfo<'a>,
}

/// An apply conflict with another manager.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The other manager, printed as the server prints managers.
    pub manager: String,
    /// Field path in conflict-message form.
    pub field: String,
}

impl Conflict {
    /// `conflict with "m" using v1 at TIME`.
    pub fn message(&self) -> String {
        format!("conflict with {}", self.manager)
    }
}

/// `"m"`, `"m" with subresource "status"`, `"m" using v1 at TIME` (Update entries), as in the apiserver.
fn print_manager(entry: &ManagedEntry) -> String {
    let mut printed = format!("{:?}", entry.manager);
    if !entry.subresource.is_empty() {
        printed = format!("{printed} with subresource {:?}", entry.subresource);
    }
    if entry.operation == "Update" {
        printed = if entry.time.is_empty() {
            format!("{printed} using {}", entry.api_version)
        } else {
            format!("{printed} using {} at {}", entry.api_version, entry.time)
        };
    }
    printed
}

/// The 409 the server answers an apply with conflicts with.
pub fn conflict_error(conflicts: &[Conflict], name: &str, group: &str, resource: &str) -> ApiError {
    let message = match conflicts {
        [only] => format!(
            "Apply failed with 1 conflict: {}: {}",
            only.message(),
            only.field
        ),
        _ => {
            let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
            managers.sort();
            managers.dedup();
            let mut lines = Vec::new();
            for manager in managers {
                lines.push(format!("conflicts with {manager}:"));
                for conflict in conflicts.iter().filter(|c| c.manager == manager) {
                    lines.push(format!("- {}", conflict.field));
                }
            }
            format!(
                "Apply failed with {} conflicts: {}",
                conflicts.len(),
                lines.join("\n")
            )
        }
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(
            |c| json!({"reason": "FieldManagerConflict", "message": c.message(), "field": c.field}),
        )
        .collect();
    let mut details = json!({"name": name, "kind": resource, "causes": causes});
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    ApiError {
        code: 409,
        reason: "Conflict".into(),
        message,
        details: Some(details),
        retry_after: None,
    }
}

/// Applies `config` for `actor` onto `live` (an empty object for creates); `Err` lists conflicts when not forced.
pub fn apply(
    live: &Value,
    config: &Value,
    actor: Actor<'_>,
    force: bool,
) -> Result<Value, Vec<Conflict>> {
    let mut entries = read_managed(live);
    let applied = tracked_fields(config, actor.types, actor.scope);
    let leaves = applied.leaves();
    let mut conflicts = Vec::new();
    let mut stolen: Vec<(usize, FieldPath)> = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        if entry.manager == actor.manager {
            continue;
        }
        for leaf in &leaves {
            if leaf.last().is_some_and(|k| k == ".") || !entry.fields.contains(leaf) {
                continue;
            }
            if fieldset::value_at(live, leaf) != fieldset::value_at(config, leaf) {
                conflicts.push(Conflict {
                    manager: print_manager(entry),
                    field: fieldset::display_path(leaf),
                });
                stolen.push((index, leaf.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    for (index, leaf) in &stolen {
        entries[*index].fields.remove(leaf);
    }
    let mut result = live.clone();
    let subresource = actor.scope.subresource();
    let previous = entries
        .iter()
        .find(|e| e.same_slot(actor.manager, "Apply", subresource))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    for leaf in previous.leaves() {
        if applied.contains(&leaf) {
            continue;
        }
        let owned_elsewhere = entries
            .iter()
            .any(|e| !e.same_slot(actor.manager, "Apply", subresource) && e.fields.contains(&leaf));
        if !owned_elsewhere {
            fieldset::remove_at(&mut result, &leaf);
        }
    }
    merge_config(
        &mut result,
        config,
        actor.types,
        actor.types.schema,
        &mut Vec::new(),
        actor.scope,
        true,
    );
    let now = meta::now_rfc3339();
    match entries
        .iter_mut()
        .find(|e| e.same_slot(actor.manager, "Apply", subresource))
    {
        Some(entry) => {
            entry.fields = applied;
            entry.time = now;
            entry.api_version = actor.api_version.to_string();
        }
        None => entries.push(ManagedEntry {
            manager: actor.manager.to_string(),
            operation: "Apply".into(),
            api_version: actor.api_version.to_string(),
            time: now,
            subresource: subresource.to_string(),
            fields: applied,
        }),
    }
    write_managed(&mut result, &entries);
    Ok(result)
}

fn merge_config<'v>(
    live: &mut Value,
    config: &'v Value,
    types: TypeInfo<'_>,
    schema: Option<&Value>,
    names: &mut Vec<&'v str>,
    scope: Scope,
    root: bool,
) {
    let Value::Object(config_map) = config else {
        *live = config.clone();
        return;
    };
    if !live.is_object() {
        *live = Value::Object(Map::new());
    }
    let Some(live_map) = live.as_object_mut() else {
        return;
    };
    for (key, value) in config_map {
        if root {
            let out_of_scope = match scope {
                Scope::Whole => false,
                Scope::NoStatus => key == "status",
                Scope::StatusOnly => key != "status",
            };
            if out_of_scope {
                continue;
            }
        }
        if root && key == "metadata" {
            if let Value::Object(config_meta) = value {
                let live_meta = live_map.entry("metadata").or_insert_with(|| json!({}));
                for field in ["labels", "annotations", "finalizers", "ownerReferences"] {
                    if let Some(v) = config_meta.get(field) {
                        let mut sub_names = vec!["metadata", field];
                        let slot = live_meta
                            .as_object_mut()
                            .map(|m| m.entry(field.to_string()).or_insert(Value::Null));
                        if let Some(slot) = slot {
                            merge_value(slot, v, types, None, &mut sub_names);
                        }
                    }
                }
            }
            continue;
        }
        if root && matches!(key.as_str(), "apiVersion" | "kind") {
            continue;
        }
        names.push(key.as_str());
        let child_schema = property_schema(schema, key);
        let slot = live_map.entry(key.clone()).or_insert(Value::Null);
        merge_value(slot, value, types, child_schema, names);
        names.pop();
    }
}

fn merge_value<'v>(
    live: &mut Value,
    config: &'v Value,
    types: TypeInfo<'_>,
    schema: Option<&Value>,
    names: &mut Vec<&'v str>,
) {
    match (live, config) {
        (live @ Value::Object(_), Value::Object(config_map)) => {
            let Some(live_map) = live.as_object_mut() else {
                return;
            };
            for (key, value) in config_map {
                names.push(key.as_str());
                let child_schema = property_schema(schema, key);
                let slot = live_map.entry(key.clone()).or_insert(Value::Null);
                merge_value(slot, value, types, child_schema, names);
                names.pop();
            }
        }
        (live @ Value::Array(_), Value::Array(config_items)) => {
            match types.list_kind(names, schema) {
                ListKind::Atomic => *live = Value::Array(config_items.clone()),
                ListKind::Set => {
                    if let Value::Array(items) = live {
                        for item in config_items {
                            if !items.contains(item) {
                                items.push(item.clone());
                            }
                        }
                    }
                }
                ListKind::Map(keys) => {
                    let item_schema = schema.and_then(|s| s.get("items"));
                    if let Value::Array(items) = live {
                        for config_item in config_items {
                            let key = fieldset::element_key(config_item, &keys);
                            let position = key.as_ref().and_then(|key| {
                                items.iter().position(|item| {
                                    fieldset::element_key(item, &keys).as_ref() == Some(key)
                                })
                            });
                            match position {
                                Some(index) => merge_value(
                                    &mut items[index],
                                    config_item,
                                    types,
                                    item_schema,
                                    names,
                                ),
                                None => items.push(config_item.clone()),
                            }
                        }
                    }
                }
            }
        }
        (live, config) => *live = config.clone(),
    }
}

/// Records a non-apply write: `new` gets managedFields derived from `old`'s, with `actor` owning what changed.
pub fn record_update(old: Option<&Value>, new: &mut Value, actor: Actor<'_>) {
    let mut entries = old.map(read_managed).unwrap_or_default();
    let empty = json!({});
    let old_value = old.unwrap_or(&empty);
    let new_fields = tracked_fields(new, actor.types, actor.scope);
    let old_fields = tracked_fields(old_value, actor.types, actor.scope);
    let changed: Vec<FieldPath> = new_fields
        .leaves()
        .into_iter()
        .filter(|leaf| {
            if leaf.last().is_some_and(|k| k == ".") {
                !old_fields.contains(leaf)
            } else {
                fieldset::value_at(old_value, leaf) != fieldset::value_at(new, leaf)
            }
        })
        .collect();
    let removed: Vec<FieldPath> = old_fields
        .leaves()
        .into_iter()
        .filter(|leaf| !new_fields.contains(leaf))
        .collect();
    let subresource = actor.scope.subresource();
    for entry in entries.iter_mut() {
        for leaf in &removed {
            entry.fields.remove(leaf);
        }
        if !entry.same_slot(actor.manager, "Update", subresource) {
            for leaf in &changed {
                entry.fields.remove(leaf);
            }
        }
    }
    if !changed.is_empty() {
        let now = meta::now_rfc3339();
        match entries
            .iter_mut()
            .find(|e| e.same_slot(actor.manager, "Update", subresource))
        {
            Some(entry) => {
                for leaf in &changed {
                    entry.fields.insert(leaf);
                }
                entry.time = now;
                entry.api_version = actor.api_version.to_string();
            }
            None => {
                let mut fields = FieldSet::default();
                for leaf in &changed {
                    fields.insert(leaf);
                }
                entries.push(ManagedEntry {
                    manager: actor.manager.to_string(),
                    operation: "Update".into(),
                    api_version: actor.api_version.to_string(),
                    time: now,
                    subresource: subresource.to_string(),
                    fields,
                });
            }
        }
    }
    write_managed(new, &entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(manager: &str) -> Actor<'_> {
        Actor {
            manager,
            api_version: "v1",
            scope: Scope::Whole,
            types: TypeInfo {
                kind: "ConfigMap",
                schema: None,
            },
        }
    }

    #[test]
    fn apply_conflicts_force_and_removal() {
        let config_a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "1", "y": "2"}});
        let live = apply(
            &json!({"metadata": {"name": "c"}}),
            &config_a,
            actor("a"),
            false,
        )
        .unwrap();
        assert_eq!(live["data"], json!({"x": "1", "y": "2"}));
        let config_b = json!({"metadata": {"name": "c"}, "data": {"x": "9"}});
        let conflicts = apply(&live, &config_b, actor("b"), false).unwrap_err();
        assert_eq!(conflicts[0].field, ".data.x");
        assert_eq!(conflicts[0].message(), "conflict with \"a\"");
        let same = json!({"metadata": {"name": "c"}, "data": {"x": "1"}});
        let shared = apply(&live, &same, actor("b"), false).unwrap();
        let forced = apply(&shared, &config_b, actor("b"), true).unwrap();
        assert_eq!(forced["data"]["x"], "9");
        // a stops applying y: a owns it alone, so it goes.
        let config_a2 = json!({"metadata": {"name": "c"}, "data": {}});
        let after = apply(&forced, &config_a2, actor("a"), false).unwrap();
        assert_eq!(after["data"], json!({"x": "9"}));
    }

    #[test]
    fn updates_take_ownership() {
        let live = apply(&json!({}), &json!({"data": {"x": "1"}}), actor("a"), false).unwrap();
        let mut new = live.clone();
        new["data"]["x"] = json!("2");
        record_update(Some(&live), &mut new, actor("editor"));
        let entries = read_managed(&new);
        let editor = entries.iter().find(|e| e.manager == "editor").unwrap();
        assert!(
            editor
                .fields
                .contains(&["f:data".to_string(), "f:x".to_string()])
        );
        assert!(
            !entries.iter().any(|e| e.manager == "a"),
            "a lost its only field"
        );
        let conflicts = apply(&new, &json!({"data": {"x": "3"}}), actor("a"), false).unwrap_err();
        assert!(
            conflicts[0]
                .message()
                .starts_with("conflict with \"editor\" using v1 at ")
        );
    }
}

//! Which writes a policy or binding covers: `matchResources` (`resourceRules`,
//! `excludeResourceRules`, `namespaceSelector`, `objectSelector`) evaluated as the API
//! server's `matching` package does, including the `resource/subresource` forms
//! (`incidents/status`, `*/status`, `pods/*`, `*/*`).

use serde_json::{Map, Value};

use super::Attempt;
use crate::server::auth::label_selector;
use crate::server::resource::StorageKey;
use crate::server::state::Inner;

fn strings(value: Option<&Value>) -> Vec<&str> {
    value
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn any_or(list: &[&str], wanted: &str) -> bool {
    list.iter().any(|v| *v == "*" || *v == wanted)
}

/// One `NamedRuleWithOperations`.
fn rule_matches(rule: &Value, attempt: &Attempt<'_>) -> bool {
    let def = attempt.def;
    if !any_or(&strings(rule.get("apiGroups")), &def.group)
        || !any_or(&strings(rule.get("apiVersions")), &def.version)
        || !any_or(&strings(rule.get("operations")), attempt.operation.as_str())
    {
        return false;
    }
    let resource_matches = strings(rule.get("resources")).iter().any(|entry| {
        let (resource, subresource) = entry.split_once('/').unwrap_or((entry, ""));
        (resource == "*" || resource == def.plural)
            && (subresource == "*" || subresource == attempt.subresource)
    });
    if !resource_matches {
        return false;
    }
    let scope_matches = match rule.get("scope").and_then(Value::as_str) {
        Some("Cluster") => !def.namespaced,
        Some("Namespaced") => def.namespaced,
        _ => true,
    };
    let names = strings(rule.get("resourceNames"));
    scope_matches && (names.is_empty() || names.contains(&attempt.name))
}

fn labels_of(object: Option<&Value>) -> Option<Map<String, Value>> {
    object.map(|o| {
        o.pointer("/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    })
}

/// The Namespace object of a namespaced request (`namespaceObject` in CEL).
pub fn namespace_object<'i>(inner: &'i Inner, attempt: &Attempt<'_>) -> Option<&'i Value> {
    if !attempt.def.namespaced || attempt.namespace.is_empty() {
        return None;
    }
    inner.store.get(
        &StorageKey {
            group: String::new(),
            resource: "namespaces".into(),
        },
        "",
        attempt.namespace,
    )
}

/// Whether `match_resources` (absent: everything) covers the attempt.
pub fn covers(inner: &Inner, match_resources: Option<&Value>, attempt: &Attempt<'_>) -> bool {
    let Some(resources) = match_resources.filter(|m| !m.is_null()) else {
        return true;
    };
    let is_namespace = attempt.def.group.is_empty() && attempt.def.plural == "namespaces";
    let namespace_selector = resources.get("namespaceSelector");
    let namespace_labels = if is_namespace {
        labels_of(attempt.object.or(attempt.old_object))
    } else if attempt.def.namespaced {
        labels_of(namespace_object(inner, attempt)).or_else(|| Some(Map::new()))
    } else {
        // Cluster-scoped objects other than Namespaces ignore the namespace selector.
        None
    };
    if let Some(labels) = namespace_labels
        && !label_selector::matches(namespace_selector, &labels)
    {
        return false;
    }
    let object_selector = resources.get("objectSelector");
    let object_matches = [attempt.object, attempt.old_object]
        .into_iter()
        .flatten()
        .any(|o| label_selector::matches(object_selector, &labels_of(Some(o)).unwrap_or_default()));
    if !object_matches {
        return false;
    }
    // A policy's constraints must name resources; a binding without rules inherits them.
    let rules = resources.get("resourceRules").and_then(Value::as_array);
    let included = match rules {
        Some(rules) => rules.iter().any(|rule| rule_matches(rule, attempt)),
        None => true,
    };
    let excluded = resources
        .get("excludeResourceRules")
        .and_then(Value::as_array)
        .is_some_and(|rules| rules.iter().any(|rule| rule_matches(rule, attempt)));
    included && !excluded
}

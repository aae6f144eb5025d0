//! Label selectors (`app=x,tier in (a,b),!legacy`) and field selectors (`metadata.name=x`).
//!
//! Syntax and the set of selectable fields follow `k8s.io/apimachinery/pkg/labels` and
//! `fields`, and each resource's field label conversion functions in the real server.

use serde_json::{Map, Value};

use super::meta;
use super::resource::ResourceDef;
use super::status::ApiError;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq)]
enum LabelRequirement {
    Exists(String),
    NotExists(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    GreaterThan(String, i64),
    LessThan(String, i64),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    requirements: Vec<LabelRequirement>,
}

fn split_top_level(input: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut current = String::new();
    for ch in input.chars() {
        match ch {
            '(' => {
                depth += 1;
                current.push(ch);
            }
            ')' => {
                depth -= 1;
                current.push(ch);
            }
            ',' if depth == 0 => parts.push(std::mem::take(&mut current)),
            _ => current.push(ch),
        }
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn valid_label_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 317
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

fn parse_set(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter.
    pub fn parse(input: &str) -> Result<LabelSelector, ApiError> {
        let invalid = |part: &str| {
            ApiError::bad_request(format!(
                "unable to parse requirement: invalid label selector: {part:?}"
            ))
        };
        let mut requirements = Vec::new();
        for part in split_top_level(input) {
            let requirement = if let Some(key) = part.strip_prefix('!') {
                LabelRequirement::NotExists(key.trim().to_string())
            } else if let Some((key, value)) = part.split_once("!=") {
                LabelRequirement::NotEquals(key.trim().to_string(), value.trim().to_string())
            } else if let Some((key, value)) = part.split_once("==") {
                LabelRequirement::Equals(key.trim().to_string(), value.trim().to_string())
            } else if let Some((key, value)) = part.split_once('=') {
                LabelRequirement::Equals(key.trim().to_string(), value.trim().to_string())
            } else if let Some((key, rest)) = part.split_once(" notin ") {
                LabelRequirement::NotIn(
                    key.trim().to_string(),
                    parse_set(rest).ok_or_else(|| invalid(&part))?,
                )
            } else if let Some((key, rest)) = part.split_once(" in ") {
                LabelRequirement::In(
                    key.trim().to_string(),
                    parse_set(rest).ok_or_else(|| invalid(&part))?,
                )
            } else if let Some((key, value)) = part.split_once('>') {
                LabelRequirement::GreaterThan(
                    key.trim().to_string(),
                    value.trim().parse().map_err(|_| invalid(&part))?,
                )
            } else if let Some((key, value)) = part.split_once('<') {
                LabelRequirement::LessThan(
                    key.trim().to_string(),
                    value.trim().parse().map_err(|_| invalid(&part))?,
                )
            } else {
                LabelRequirement::Exists(part.trim().to_string())
            };
            let key = match &requirement {
                LabelRequirement::Exists(k)
                | LabelRequirement::NotExists(k)
                | LabelRequirement::Equals(k, _)
                | LabelRequirement::NotEquals(k, _)
                | LabelRequirement::In(k, _)
                | LabelRequirement::NotIn(k, _)
                | LabelRequirement::GreaterThan(k, _)
                | LabelRequirement::LessThan(k, _) => k,
            };
            if !valid_label_key(key) {
                return Err(invalid(&part));
            }
            requirements.push(requirement);
        }
        Ok(LabelSelector { requirements })
    }

    /// Whether a label map satisfies every requirement.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        let get = |key: &str| labels.get(key).and_then(Value::as_str);
        self.requirements
            .iter()
            .all(|requirement| match requirement {
                LabelRequirement::Exists(key) => labels.contains_key(key),
                LabelRequirement::NotExists(key) => !labels.contains_key(key),
                LabelRequirement::Equals(key, value) => get(key) == Some(value.as_str()),
                LabelRequirement::NotEquals(key, value) => get(key) != Some(value.as_str()),
                LabelRequirement::In(key, values) => {
                    get(key).is_some_and(|v| values.iter().any(|w| w == v))
                }
                LabelRequirement::NotIn(key, values) => {
                    get(key).is_none_or(|v| !values.iter().any(|w| w == v))
                }
                LabelRequirement::GreaterThan(key, bound) => get(key)
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v > *bound),
                LabelRequirement::LessThan(key, bound) => get(key)
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v < *bound),
            })
    }

    /// Whether the object's labels match.
    pub fn matches_object(&self, object: &Value) -> bool {
        self.requirements.is_empty() || self.matches(&meta::labels(object))
    }
}

/// One `field=value` or `field!=value` term.
#[derive(Debug, Clone, PartialEq)]
struct FieldRequirement {
    path: Vec<String>,
    value: String,
    negated: bool,
}

/// A parsed field selector, checked against the resource's selectable fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

/// The fields a resource may be selected by (beyond metadata.name/namespace).
fn selectable_fields(def: &ResourceDef) -> Vec<String> {
    let extra: &[&str] = match (def.storage.group.as_str(), def.storage.resource.as_str()) {
        ("", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "secrets") => &["type"],
        ("", "namespaces") => &["status.phase"],
        ("", "nodes") => &["spec.unschedulable"],
        ("", "replicationcontrollers") | ("apps", "replicasets") => &["status.replicas"],
        ("batch", "jobs") => &["status.successful"],
        _ => &[],
    };
    let mut fields: Vec<String> = vec!["metadata.name".into(), "metadata.namespace".into()];
    fields.extend(extra.iter().map(|f| f.to_string()));
    if let Some(custom) = &def.custom {
        fields.extend(
            custom
                .selectable_fields
                .iter()
                .map(|f| f.trim_start_matches('.').to_string()),
        );
    }
    fields
}

impl FieldSelector {
    /// Parses the `fieldSelector` parameter for a resource; unknown fields are a 400 like the real server.
    pub fn parse(input: &str, def: &ResourceDef) -> Result<FieldSelector, ApiError> {
        let allowed = selectable_fields(def);
        let mut requirements = Vec::new();
        for part in input.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, value, negated) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, false)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{input}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            // events.k8s.io calls involvedObject `regarding`; both address the same stored field.
            let canonical = field.replace("regarding.", "involvedObject.");
            if !allowed.contains(&canonical) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            requirements.push(FieldRequirement {
                path: canonical.split('.').map(str::to_string).collect(),
                value: value.trim().to_string(),
                negated,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// Whether a stored object matches.
    pub fn matches(&self, object: &Value) -> bool {
        self.requirements.iter().all(|req| {
            let path: Vec<&str> = req.path.iter().map(String::as_str).collect();
            let actual = match path.as_slice() {
                ["source"] => meta::str_at(object, &["source", "component"])
                    .or_else(|| meta::str_at(object, &["reportingComponent"]))
                    .unwrap_or("")
                    .to_string(),
                _ => match meta::value_at(object, &path) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Bool(b)) => b.to_string(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => String::new(),
                },
            };
            (actual == req.value) != req.negated
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn label_selector_operators() {
        let l = labels(json!({"app": "web", "tier": "front"}));
        for (selector, expected) in [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("tier in (front, back)", true),
            ("tier notin (front)", false),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("app=web,tier=back", false),
            ("", true),
        ] {
            assert_eq!(
                LabelSelector::parse(selector).unwrap().matches(&l),
                expected,
                "{selector}"
            );
        }
        assert!(LabelSelector::parse("a b c").is_err());
    }
}

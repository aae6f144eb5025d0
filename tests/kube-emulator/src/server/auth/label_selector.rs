//! Matching a `metav1.LabelSelector` object (`matchLabels` + `matchExpressions`) against
//! labels, for ClusterRole aggregation and admission policies' namespace/object selectors.
//! (The `labelSelector` query string has its own parser in `server::selector`.)

use serde_json::{Map, Value};

/// Whether `labels` satisfy `selector`; an empty or absent selector matches everything,
/// as the API's `LabelSelectorAsSelector` does.
pub fn matches(selector: Option<&Value>, labels: &Map<String, Value>) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_null()) else {
        return true;
    };
    let label = |key: &str| labels.get(key).and_then(Value::as_str);
    let wanted_labels = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten();
    for (key, value) in wanted_labels {
        if label(key) != value.as_str() {
            return false;
        }
    }
    let expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for expression in expressions {
        let key = expression.get("key").and_then(Value::as_str).unwrap_or("");
        let values: Vec<&str> = expression
            .get("values")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let holds = match expression.get("operator").and_then(Value::as_str) {
            Some("In") => label(key).is_some_and(|v| values.contains(&v)),
            Some("NotIn") => label(key).is_none_or(|v| !values.contains(&v)),
            Some("Exists") => label(key).is_some(),
            Some("DoesNotExist") => label(key).is_none(),
            _ => false,
        };
        if !holds {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_and_expressions_must_all_hold() {
        let labels = json!({"a": "1", "b": "2"});
        let labels = labels.as_object().unwrap();
        assert!(matches(None, labels));
        assert!(matches(Some(&json!({})), labels));
        assert!(matches(Some(&json!({"matchLabels": {"a": "1"}})), labels));
        assert!(!matches(Some(&json!({"matchLabels": {"a": "2"}})), labels));
        let expr = |op: &str, values: Value| json!({"matchExpressions": [{"key": "b", "operator": op, "values": values}]});
        assert!(matches(Some(&expr("In", json!(["2", "3"]))), labels));
        assert!(!matches(Some(&expr("NotIn", json!(["2"]))), labels));
        assert!(matches(Some(&expr("Exists", json!([]))), labels));
        assert!(!matches(Some(&expr("DoesNotExist", json!([]))), labels));
    }
}

//! Structural-schema handling for custom resources: pruning, defaulting and validation
//! against a CRD version's `openAPIV3Schema`, in the order the real server runs them
//! (prune unknown fields and non-nullable nulls → apply defaults → validate).
//!
//! Validation covers type, nullable, required, enum, minimum/maximum (and exclusive),
//! minLength/maxLength, pattern, minItems/maxItems, minProperties/maxProperties,
//! list-type map/set uniqueness, allOf/anyOf/oneOf/not, `x-kubernetes-int-or-string`,
//! `x-kubernetes-preserve-unknown-fields`, `x-kubernetes-embedded-resource`, and
//! `x-kubernetes-validations` through the CEL subset in [`super::cel`]. String `format`s
//! are not checked.

use serde_json::{Map, Value};

use super::cel;
use super::status::Cause;

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn flag(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Removes fields the schema does not declare; returns their paths (for warnings and strict validation).
pub fn prune(value: &mut Value, schema: &Value, path: &str, root: bool, unknown: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
            let embedded = flag(schema, "x-kubernetes-embedded-resource");
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let child_path = join(path, &key);
                if (root || embedded) && matches!(key.as_str(), "apiVersion" | "kind" | "metadata")
                {
                    continue;
                }
                let child_schema = properties.and_then(|p| p.get(&key)).or(match additional {
                    Some(Value::Object(_)) => additional,
                    _ => None,
                });
                match child_schema {
                    Some(child_schema) => {
                        if map.get(&key).is_some_and(Value::is_null)
                            && !flag(child_schema, "nullable")
                        {
                            map.remove(&key);
                            continue;
                        }
                        if let Some(child) = map.get_mut(&key) {
                            prune(child, child_schema, &child_path, false, unknown);
                        }
                    }
                    None => {
                        let keep = preserve || matches!(additional, Some(Value::Bool(true)));
                        if !keep {
                            map.remove(&key);
                            unknown.push(child_path);
                        }
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter_mut().enumerate() {
                    prune(
                        item,
                        item_schema,
                        &format!("{path}[{index}]"),
                        false,
                        unknown,
                    );
                }
            }
        }
        _ => {}
    }
}

/// Fills in `default`s for absent properties of objects that exist.
pub fn apply_defaults(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (key, child_schema) in properties {
                    if !map.contains_key(key)
                        && let Some(default) = child_schema.get("default")
                    {
                        map.insert(key.clone(), default.clone());
                    }
                }
                for (key, child_schema) in properties {
                    if let Some(child) = map.get_mut(key) {
                        apply_defaults(child, child_schema);
                    }
                }
            }
            if let Some(additional @ Value::Object(_)) = schema.get("additionalProperties") {
                for child in map.values_mut() {
                    apply_defaults(child, additional);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    apply_defaults(item, item_schema);
                }
            }
        }
        _ => {}
    }
}

/// Renders a value the way field errors quote it: strings quoted, numbers plain.
pub fn display_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => number_text(n.as_f64().unwrap_or(0.0)),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Array(_) => "\"array\"".into(),
        Value::Object(_) => "\"object\"".into(),
    }
}

fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.as_i64().is_some() || value.as_u64().is_some(),
        "number" => value.is_number(),
        _ => true,
    }
}

/// Cause reasons after which the real server skips every CEL rule of the object
/// (`hasBlockingErr` of apiextensions-apiserver's custom resource strategy).
const BLOCKING_REASONS: &[&str] = &[
    "FieldValueNotSupported",
    "FieldValueRequired",
    "FieldValueTooLong",
    "FieldValueTooMany",
    "FieldValueTypeInvalid",
];

/// The cause the real server adds in place of the skipped CEL rules (`field.Invalid(nil, nil, …)`
/// renders its nil path as `<nil>` and its nil value as `null`).
const RULES_SKIPPED: &str = "Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";

/// What one walk over an object found, kept apart because the schema's findings decide
/// whether the rules' findings count.
#[derive(Debug, Default)]
struct Findings {
    /// OpenAPI schema violations (type, enum, bounds, required, …).
    schema: Vec<Cause>,
    /// Failed `x-kubernetes-validations` rules.
    rules: Vec<Cause>,
}

impl Findings {
    fn is_empty(&self) -> bool {
        self.schema.is_empty() && self.rules.is_empty()
    }
}

/// Validates `value` against `schema`, appending causes. `old` is the previous value (for
/// transition rules). As on the real server, schema violations come first; when one of them is
/// blocking and the schema has CEL rules, the rules are not run and one fieldless cause says so.
pub fn validate(
    value: &Value,
    schema: &Value,
    path: &str,
    old: Option<&Value>,
    causes: &mut Vec<Cause>,
) {
    let mut findings = Findings::default();
    walk(value, schema, path, old, &mut findings);
    let blocking = findings
        .schema
        .iter()
        .any(|cause| BLOCKING_REASONS.contains(&cause.reason.as_str()));
    causes.append(&mut findings.schema);
    if !blocking {
        causes.append(&mut findings.rules);
    } else if has_rules(schema) {
        causes.push(Cause::new("FieldValueInvalid", "<nil>", RULES_SKIPPED));
    }
}

/// Whether a CEL rule appears anywhere in the schema (the server then builds a CEL validator).
fn has_rules(schema: &Value) -> bool {
    match schema {
        Value::Object(map) => {
            map.contains_key("x-kubernetes-validations") || map.values().any(has_rules)
        }
        Value::Array(items) => items.iter().any(has_rules),
        _ => false,
    }
}

fn walk(value: &Value, schema: &Value, path: &str, old: Option<&Value>, findings: &mut Findings) {
    let causes = &mut findings.schema;
    if value.is_null() {
        if !flag(schema, "nullable") && schema.get("type").is_some() {
            let expected = schema
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("object");
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: \"null\": {path} in body must be of type {expected}: \"null\""
                ),
            ));
        }
        return;
    }
    if flag(schema, "x-kubernetes-int-or-string") {
        if !(value.is_string() || type_matches("integer", value)) {
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: \"{}\": {path} in body must be of type integer,string: \"{}\"",
                    type_name(value),
                    type_name(value)
                ),
            ));
            return;
        }
    } else if let Some(expected) = schema.get("type").and_then(Value::as_str)
        && !type_matches(expected, value)
    {
        let actual = type_name(value);
        causes.push(Cause::new(
                "FieldValueTypeInvalid",
                path,
                format!("Invalid value: \"{actual}\": {path} in body must be of type {expected}: \"{actual}\""),
            ));
        return;
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        let supported: Vec<String> = options.iter().map(display_value).collect();
        causes.push(Cause::new(
            "FieldValueNotSupported",
            path,
            format!(
                "Unsupported value: {}: supported values: {}",
                display_value(value),
                supported.join(", ")
            ),
        ));
    }
    validate_number(value, schema, path, causes);
    validate_string(value, schema, path, causes);
    validate_array(value, schema, path, old, findings);
    validate_object(value, schema, path, old, findings);
    validate_combinators(value, schema, path, old, findings);
    validate_rules(value, schema, path, old, &mut findings.rules);
}

fn validate_number(value: &Value, schema: &Value, path: &str, causes: &mut Vec<Cause>) {
    let Some(n) = value.as_f64() else { return };
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        let exclusive = flag(schema, "exclusiveMinimum");
        if n < min || (exclusive && n == min) {
            let relation = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            causes.push(Cause::new(
                "FieldValueInvalid",
                path,
                format!(
                    "Invalid value: {}: {path} in body should be {relation} {}",
                    display_value(value),
                    number_text(min)
                ),
            ));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        let exclusive = flag(schema, "exclusiveMaximum");
        if n > max || (exclusive && n == max) {
            let relation = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            causes.push(Cause::new(
                "FieldValueInvalid",
                path,
                format!(
                    "Invalid value: {}: {path} in body should be {relation} {}",
                    display_value(value),
                    number_text(max)
                ),
            ));
        }
    }
    if let Some(multiple) = schema.get("multipleOf").and_then(Value::as_f64)
        && multiple > 0.0
        && (n / multiple).fract() != 0.0
    {
        causes.push(Cause::new(
            "FieldValueInvalid",
            path,
            format!(
                "Invalid value: {}: {path} in body should be a multiple of {}",
                display_value(value),
                number_text(multiple)
            ),
        ));
    }
}

fn validate_string(value: &Value, schema: &Value, path: &str, causes: &mut Vec<Cause>) {
    let Some(s) = value.as_str() else { return };
    let length = s.chars().count() as u64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && length > max
    {
        // kube-openapi's string validator stops at its first failure (maxLength, minLength,
        // pattern in that order): a string that is too long reports nothing else.
        causes.push(Cause::new(
            "FieldValueTooLong",
            path,
            format!("Too long: may not be more than {max} bytes"),
        ));
        return;
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && length < min
    {
        causes.push(Cause::new(
            "FieldValueInvalid",
            path,
            format!("Invalid value: {s:?}: {path} in body should be at least {min} chars long"),
        ));
        return;
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        // An unparsable pattern would have been rejected at CRD creation; here it matches nothing.
        let matched = regex::Regex::new(pattern)
            .map(|re| re.is_match(s))
            .unwrap_or(false);
        if !matched {
            causes.push(Cause::new(
                "FieldValueInvalid",
                path,
                format!("Invalid value: {s:?}: {path} in body should match '{pattern}'"),
            ));
        }
    }
}

fn validate_array(
    value: &Value,
    schema: &Value,
    path: &str,
    old: Option<&Value>,
    findings: &mut Findings,
) {
    let Some(items) = value.as_array() else {
        return;
    };
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && items.len() as u64 > max
    {
        findings.schema.push(Cause::new(
            "FieldValueTooMany",
            path,
            format!("Too many: {}: must have at most {max} items", items.len()),
        ));
    }
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && (items.len() as u64) < min
    {
        findings.schema.push(Cause::new(
            "FieldValueInvalid",
            path,
            format!(
                "Invalid value: {}: {path} in body should have at least {min} items",
                items.len()
            ),
        ));
    }
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => {
            for (index, item) in items.iter().enumerate() {
                if items[..index].contains(item) {
                    findings.schema.push(Cause::new(
                        "FieldValueDuplicate",
                        &format!("{path}[{index}]"),
                        format!("Duplicate value: {}", item),
                    ));
                }
            }
        }
        Some("map") => {
            let keys: Vec<String> = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|k| {
                    k.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let key_of = |item: &Value| -> Map<String, Value> {
                keys.iter()
                    .filter_map(|k| item.get(k).map(|v| (k.clone(), v.clone())))
                    .collect()
            };
            for (index, item) in items.iter().enumerate() {
                let key = key_of(item);
                if items[..index].iter().any(|earlier| key_of(earlier) == key) {
                    findings.schema.push(Cause::new(
                        "FieldValueDuplicate",
                        &format!("{path}[{index}]"),
                        format!("Duplicate value: {}", Value::Object(key)),
                    ));
                }
            }
        }
        _ => {}
    }
    if let Some(item_schema) = schema.get("items") {
        for (index, item) in items.iter().enumerate() {
            let old_item = old.and_then(|o| o.get(index));
            walk(
                item,
                item_schema,
                &format!("{path}[{index}]"),
                old_item,
                findings,
            );
        }
    }
}

fn validate_object(
    value: &Value,
    schema: &Value,
    path: &str,
    old: Option<&Value>,
    findings: &mut Findings,
) {
    let Some(map) = value.as_object() else { return };
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for key in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(key) {
                findings.schema.push(Cause::new(
                    "FieldValueRequired",
                    &join(path, key),
                    "Required value",
                ));
            }
        }
    }
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
        && map.len() as u64 > max
    {
        findings.schema.push(Cause::new(
            "FieldValueTooMany",
            path,
            format!("Too many: {}: must have at most {max} items", map.len()),
        ));
    }
    if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
        && (map.len() as u64) < min
    {
        findings.schema.push(Cause::new(
            "FieldValueInvalid",
            path,
            format!(
                "Invalid value: {}: {path} in body should have at least {min} properties",
                map.len()
            ),
        ));
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    for (key, child) in map {
        if path.is_empty() && matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        let child_schema =
            properties
                .and_then(|p| p.get(key))
                .or(match schema.get("additionalProperties") {
                    Some(additional @ Value::Object(_)) => Some(additional),
                    _ => None,
                });
        if let Some(child_schema) = child_schema {
            let old_child = old.and_then(|o| o.get(key));
            walk(child, child_schema, &join(path, key), old_child, findings);
        }
    }
}

fn validate_combinators(
    value: &Value,
    schema: &Value,
    path: &str,
    old: Option<&Value>,
    findings: &mut Findings,
) {
    let branch_ok = |branch: &Value| {
        let mut scratch = Findings::default();
        walk(value, branch, path, old, &mut scratch);
        scratch.is_empty()
    };
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for branch in all {
            walk(value, branch, path, old, findings);
        }
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array)
        && !any.iter().any(branch_ok)
    {
        findings.schema.push(Cause::new(
            "FieldValueInvalid",
            path,
            format!(
                "Invalid value: {}: {path} in body must match at least one schema in anyOf",
                display_value(value)
            ),
        ));
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array)
        && one.iter().filter(|b| branch_ok(b)).count() != 1
    {
        findings.schema.push(Cause::new(
            "FieldValueInvalid",
            path,
            format!(
                "Invalid value: {}: {path} in body must validate one and only one schema (oneOf)",
                display_value(value)
            ),
        ));
    }
    if let Some(not) = schema.get("not")
        && branch_ok(not)
    {
        findings.schema.push(Cause::new(
            "FieldValueInvalid",
            path,
            format!(
                "Invalid value: {}: {path} in body should not validate the schema",
                display_value(value)
            ),
        ));
    }
}

fn validate_rules(
    value: &Value,
    schema: &Value,
    path: &str,
    old: Option<&Value>,
    causes: &mut Vec<Cause>,
) {
    let Some(rules) = schema
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
    else {
        return;
    };
    for rule in rules {
        let Some(text) = rule.get("rule").and_then(Value::as_str) else {
            continue;
        };
        let Ok(program) = cel::compile(text) else {
            continue;
        };
        if program.uses_old_self && old.is_none() {
            continue;
        }
        let field = match rule.get("fieldPath").and_then(Value::as_str) {
            Some(extra) => format!("{path}{extra}"),
            None => path.to_string(),
        };
        let reason = rule
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("FieldValueInvalid");
        let message = rule
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("failed rule: {text}"));
        match cel::evaluate(&program, value, old) {
            Ok(true) | Err(cel::CelError::Unsupported(_)) => {}
            Ok(false) => causes.push(Cause::new(
                reason,
                &field,
                format!("Invalid value: {}: {message}", display_value(value)),
            )),
            Err(cel::CelError::Eval(error)) => causes.push(Cause::new(
                "FieldValueInvalid",
                &field,
                format!(
                    "Invalid value: {}: {error} evaluating rule: {text}",
                    display_value(value)
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "required": ["spec"], "properties": {"spec": {
        "type": "object", "required": ["title"],
        "x-kubernetes-validations": [{"rule": "self.source != 'alertmanager' || has(self.alert)", "message": "spec.alert is required when spec.source is alertmanager"}],
        "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": 5},
            "severity": {"type": "string", "enum": ["critical", "warning", "info"], "default": "warning"},
            "source": {"type": "string", "default": "manual"},
            "alert": {"type": "object", "nullable": true, "properties": {"name": {"type": "string"}}},
            "turns": {"type": "integer", "minimum": 1.0, "maximum": 10.0},
            "tags": {"type": "array", "maxItems": 1, "items": {"type": "string", "pattern": "^[a-z]+$"}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }}}})
    }

    fn check(mut object: Value) -> (Value, Vec<String>, Vec<String>) {
        let mut unknown = Vec::new();
        prune(&mut object, &schema(), "", true, &mut unknown);
        apply_defaults(&mut object, &schema());
        let mut causes = Vec::new();
        validate(&object, &schema(), "", None, &mut causes);
        (
            object,
            unknown,
            causes.iter().map(Cause::describe).collect(),
        )
    }

    #[test]
    fn prunes_defaults_and_validates() {
        let (object, unknown, causes) = check(
            json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"},
            "spec": {"title": "ok", "bogus": 1, "alert": null, "free": {"any": {"thing": 1}}}}),
        );
        assert_eq!(unknown, vec!["spec.bogus"]);
        assert!(causes.is_empty(), "{causes:?}");
        assert_eq!(object["spec"]["severity"], "warning");
        assert_eq!(object["spec"]["alert"], Value::Null);
        assert_eq!(object["spec"]["free"]["any"]["thing"], 1);
    }

    #[test]
    fn messages_match_the_real_server() {
        let (_, _, causes) = check(
            json!({"spec": {"title": "", "severity": "urgent", "turns": 0, "tags": ["A", "b"], "source": "alertmanager"}}),
        );
        assert!(causes.contains(&"spec.severity: Unsupported value: \"urgent\": supported values: \"critical\", \"warning\", \"info\"".to_string()), "{causes:?}");
        assert!(causes.contains(&"spec.title: Invalid value: \"\": spec.title in body should be at least 1 chars long".to_string()));
        assert!(causes.contains(&"spec.turns: Invalid value: 0: spec.turns in body should be greater than or equal to 1".to_string()));
        assert!(causes.contains(&"spec.tags: Too many: 2: must have at most 1 items".to_string()));
        assert!(
            causes.contains(
                &"spec.tags[0]: Invalid value: \"A\": spec.tags[0] in body should match '^[a-z]+$'"
                    .to_string()
            )
        );
        // Unsupported value and Too many are blocking: the rule is not run, one cause says so.
        assert!(
            !causes.iter().any(|c| c.contains("spec.alert is required")),
            "{causes:?}"
        );
        assert_eq!(
            causes.last().map(String::as_str),
            Some(format!("<nil>: {RULES_SKIPPED}").as_str())
        );
        // Bounds and patterns are not blocking: the rule runs and reports after them.
        let (_, _, causes) =
            check(json!({"spec": {"title": "ok", "turns": 0, "source": "alertmanager"}}));
        assert_eq!(
            causes,
            vec![
                "spec.turns: Invalid value: 0: spec.turns in body should be greater than or equal to 1".to_string(),
                "spec: Invalid value: \"object\": spec.alert is required when spec.source is alertmanager".to_string(),
            ]
        );
        // Too long alone (no pattern check after it), and it blocks the rule as well.
        let (_, _, causes) = check(json!({"spec": {"title": "toolong1"}}));
        assert_eq!(
            causes,
            vec![
                "spec.title: Too long: may not be more than 5 bytes".to_string(),
                format!("<nil>: {RULES_SKIPPED}"),
            ]
        );
        let (_, _, causes) = check(json!({"spec": {"turns": "x"}}));
        assert!(causes.contains(&"spec.title: Required value".to_string()));
        assert!(causes.contains(&"spec.turns: Invalid value: \"string\": spec.turns in body must be of type integer: \"string\"".to_string()));
    }
}

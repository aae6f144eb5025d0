//! ValidatingAdmissionPolicy evaluation, following the API server's `validating` dispatcher:
//! for each ValidatingAdmissionPolicyBinding whose policy's `matchConstraints` and own
//! `matchResources` cover the write, resolve `paramRef`, check `matchConditions`, composite
//! `variables`, then run `validations`. A failed validation (or an evaluation error under
//! `failurePolicy: Fail`) is acted on per the binding's `validationActions`: `Deny` refuses
//! the request, `Warn` adds a warning, `Audit` is recorded nowhere (the emulator keeps no
//! audit log).
//!
//! A denial is worded as the real server's: `incidents.sre.agentlab.dev "x" is forbidden:
//! ValidatingAdmissionPolicy 'p' with binding 'b' denied request: <message>`, with the
//! validation's `reason` (default `Invalid`) deciding the status code.

use serde_json::{Value, json};

use super::Attempt;
use super::expression::{self, Activation, ExpressionError};
use super::matching;
use crate::server::convert;
use crate::server::resource::StorageKey;
use crate::server::state::Inner;
use crate::server::status::ApiError;

const GROUP: &str = "admissionregistration.k8s.io";

fn key(resource: &str) -> StorageKey {
    StorageKey {
        group: GROUP.into(),
        resource: resource.into(),
    }
}

fn text<'v>(value: &'v Value, pointer: &str) -> &'v str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The `request` variable (an `admission.k8s.io/v1` AdmissionRequest).
fn request_variable(attempt: &Attempt<'_>) -> Value {
    let def = attempt.def;
    let kind = json!({"group": def.group, "version": def.version, "kind": def.kind});
    let resource = json!({"group": def.group, "version": def.version, "resource": def.plural});
    let mut request = json!({
        "uid": uuid::Uuid::new_v4().to_string(),
        "kind": kind,
        "resource": resource,
        "requestKind": kind,
        "requestResource": resource,
        "name": attempt.name,
        "namespace": attempt.namespace,
        "operation": attempt.operation.as_str(),
        "userInfo": attempt.user.to_json(),
        "dryRun": attempt.dry_run,
    });
    if !attempt.subresource.is_empty() {
        request["subResource"] = json!(attempt.subresource);
        request["requestSubResource"] = json!(attempt.subresource);
    }
    request
}

/// What one binding decided.
enum Verdict {
    /// Not covered, a matchCondition was false, or every validation passed.
    Pass,
    /// A validation failed (or errored under failurePolicy Fail): message and reason.
    Fail { message: String, reason: String },
}

/// Params for the binding: `None` when the policy has no `paramKind`; each found object
/// otherwise. Errors are misconfigurations, acted on per the failure policy.
fn params_for(
    inner: &Inner,
    policy: &Value,
    binding: &Value,
    attempt: &Attempt<'_>,
) -> Result<Option<Vec<Value>>, String> {
    let Some(param_kind) = policy.pointer("/spec/paramKind").filter(|p| !p.is_null()) else {
        return Ok(None);
    };
    let api_version = text(param_kind, "/apiVersion");
    let kind = text(param_kind, "/kind");
    let Some(def) = inner.registry.find_kind(api_version, kind) else {
        return Err(format!(
            "failed to find resource referenced by paramKind: '{api_version}, Kind={kind}'"
        ));
    };
    let Some(reference) = binding.pointer("/spec/paramRef").filter(|r| !r.is_null()) else {
        return Err("paramRef is required when paramKind is set".into());
    };
    let namespace = if def.namespaced {
        match text(reference, "/namespace") {
            "" => attempt.namespace,
            ns => ns,
        }
    } else {
        ""
    };
    let name = text(reference, "/name");
    let found: Vec<Value> = if !name.is_empty() {
        inner
            .store
            .get(&def.storage, namespace, name)
            .map(|o| vec![convert::to_served(def, o)])
            .unwrap_or_default()
    } else {
        let selector = reference.get("selector");
        inner
            .store
            .list(&def.storage, def.namespaced.then_some(namespace))
            .into_iter()
            .filter(|o| {
                let labels = o
                    .pointer("/metadata/labels")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                crate::server::auth::label_selector::matches(selector, &labels)
            })
            .map(|o| convert::to_served(def, o))
            .collect()
    };
    if found.is_empty() && text(reference, "/parameterNotFoundAction") == "Deny" {
        return Err(
            "no params found for policy binding with `Deny` parameterNotFoundAction".into(),
        );
    }
    Ok(Some(found))
}

fn evaluation_failure(expression: &str, error: &ExpressionError) -> String {
    format!("expression '{expression}' resulted in error: {error}")
}

/// Runs a policy's matchConditions, variables and validations against one activation.
fn run_validations(policy: &Value, mut activation: Activation, fail_closed: bool) -> Verdict {
    let spec = &policy["spec"];
    for condition in spec
        .get("matchConditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let expression = text(condition, "/expression");
        match expression::evaluate_bool(expression, &activation) {
            Ok(true) => {}
            Ok(false) => return Verdict::Pass,
            Err(error) if fail_closed => {
                return Verdict::Fail {
                    message: format!(
                        "failed to evaluate match condition '{}': {}",
                        text(condition, "/name"),
                        evaluation_failure(expression, &error)
                    ),
                    reason: "Invalid".into(),
                };
            }
            Err(_) => return Verdict::Pass,
        }
    }
    for variable in spec
        .get("variables")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = text(variable, "/name").to_string();
        let expression = text(variable, "/expression");
        // An erroring variable only fails the validations that use it, as in the real
        // server's lazy composition; an absent variable makes those evaluate to an error.
        if let Ok(value) = expression::evaluate_json(expression, &activation) {
            activation.variables.insert(name, value);
        }
    }
    for validation in spec
        .get("validations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let expression = text(validation, "/expression");
        let reason = match text(validation, "/reason") {
            "" => "Invalid",
            reason => reason,
        }
        .to_string();
        match expression::evaluate_bool(expression, &activation) {
            Ok(true) => {}
            Ok(false) => {
                let message_expression = text(validation, "/messageExpression");
                let from_expression = (!message_expression.is_empty())
                    .then(|| expression::evaluate_string(message_expression, &activation).ok())
                    .flatten()
                    .filter(|m| !m.trim().is_empty() && !m.contains('\n'));
                let message =
                    from_expression.unwrap_or_else(|| match text(validation, "/message") {
                        "" => format!("failed expression: {expression}"),
                        message => message.to_string(),
                    });
                return Verdict::Fail { message, reason };
            }
            Err(error) if fail_closed => {
                return Verdict::Fail {
                    message: evaluation_failure(expression, &error),
                    reason: "Invalid".into(),
                };
            }
            Err(_) => {}
        }
    }
    Verdict::Pass
}

fn code_for(reason: &str) -> u16 {
    match reason {
        "Forbidden" => 403,
        "Unauthorized" => 401,
        "RequestEntityTooLarge" => 413,
        _ => 422,
    }
}

fn denial(attempt: &Attempt<'_>, message: String, reason: &str) -> ApiError {
    let def = attempt.def;
    let qualified = if def.group.is_empty() {
        def.plural.clone()
    } else {
        format!("{}.{}", def.plural, def.group)
    };
    let head = if attempt.name.is_empty() {
        format!("{qualified} is forbidden")
    } else {
        format!("{qualified} {:?} is forbidden", attempt.name)
    };
    let mut details = serde_json::Map::new();
    if !attempt.name.is_empty() {
        details.insert("name".into(), json!(attempt.name));
    }
    if !def.group.is_empty() {
        details.insert("group".into(), json!(def.group));
    }
    details.insert("kind".into(), json!(def.plural));
    details.insert("causes".into(), json!([{"message": message}]));
    ApiError {
        code: code_for(reason),
        reason: reason.to_string(),
        message: format!("{head}: {message}"),
        details: Some(Value::Object(details)),
        retry_after: None,
    }
}

/// Evaluates every binding; returns the warnings, or the first denial.
pub fn validate(inner: &Inner, attempt: &Attempt<'_>) -> Result<Vec<String>, ApiError> {
    let mut warnings = Vec::new();
    let bindings = inner
        .store
        .list(&key("validatingadmissionpolicybindings"), None);
    if bindings.is_empty() {
        return Ok(warnings);
    }
    let activation = Activation {
        object: attempt.object.cloned().unwrap_or(Value::Null),
        old_object: attempt.old_object.cloned().unwrap_or(Value::Null),
        request: request_variable(attempt),
        params: Value::Null,
        namespace_object: matching::namespace_object(inner, attempt)
            .cloned()
            .unwrap_or(Value::Null),
        variables: serde_json::Map::new(),
    };
    for binding in bindings {
        let policy_name = text(binding, "/spec/policyName");
        let Some(policy) = inner
            .store
            .get(&key("validatingadmissionpolicies"), "", policy_name)
        else {
            continue;
        };
        if !matching::covers(inner, policy.pointer("/spec/matchConstraints"), attempt)
            || !matching::covers(inner, binding.pointer("/spec/matchResources"), attempt)
        {
            continue;
        }
        let fail_closed = text(policy, "/spec/failurePolicy") != "Ignore";
        let verdicts: Vec<Verdict> = match params_for(inner, policy, binding, attempt) {
            Ok(None) => vec![run_validations(policy, activation.clone(), fail_closed)],
            Ok(Some(params)) => params
                .into_iter()
                .map(|params| {
                    let activation = Activation {
                        params,
                        ..activation.clone()
                    };
                    run_validations(policy, activation, fail_closed)
                })
                .collect(),
            Err(misconfiguration) if fail_closed => vec![Verdict::Fail {
                message: misconfiguration,
                reason: "Invalid".into(),
            }],
            Err(_) => Vec::new(),
        };
        let binding_name = text(binding, "/metadata/name");
        let actions: Vec<&str> = binding
            .pointer("/spec/validationActions")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for verdict in verdicts {
            let Verdict::Fail { message, reason } = verdict else {
                continue;
            };
            if actions.contains(&"Warn") {
                warnings.push(format!(
                    "Validation failed for ValidatingAdmissionPolicy '{policy_name}' with binding '{binding_name}': {message}"
                ));
            }
            if actions.contains(&"Deny") {
                return Err(denial(
                    attempt,
                    format!(
                        "ValidatingAdmissionPolicy '{policy_name}' with binding '{binding_name}' denied request: {message}"
                    ),
                    &reason,
                ));
            }
        }
    }
    Ok(warnings)
}

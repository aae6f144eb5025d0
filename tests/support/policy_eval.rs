//! Renders the chart with the real `helm` and evaluates its ValidatingAdmissionPolicies with the
//! `cel` crate (the interpreter the emulator's admission uses), in the order Kubernetes does:
//! `matchConditions` first (false: the policy does not apply), then every validation (false or an
//! error: denied, as `failurePolicy: Fail`). Shared by the `chart_*_policy` tests.

use std::process::Command;

use serde_json::Value;

use super::tools;

pub const RELEASE: &str = "t";
pub const NAMESPACE: &str = "ops";

pub fn render(values: &str) -> Vec<Value> {
    let file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    std::fs::write(file.path(), values).unwrap();
    let out = Command::new(tools::tool("helm"))
        .args(["template", RELEASE])
        .arg(tools::repo_root().join("charts/incident-operator"))
        .args(["--namespace", NAMESPACE, "--values"])
        .arg(file.path())
        .output()
        .expect("run helm template");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Value> = serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap())
        .expect("rendered chart is YAML");
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

pub fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in the rendered chart"))
}

fn context(
    request: &Value,
    object: &Value,
    old_object: &Value,
) -> Result<cel::Context<'static, 'static>, String> {
    let mut context = cel::Context::default();
    for (name, value) in [
        ("request", request),
        ("object", object),
        ("oldObject", old_object),
    ] {
        context
            .add_variable(name, value.clone())
            .map_err(|e| e.to_string())?;
    }
    Ok(context)
}

/// Evaluates one CEL expression of a policy against an admission request.
pub fn eval(
    expression: &str,
    request: &Value,
    object: &Value,
    old_object: &Value,
) -> Result<bool, String> {
    let program =
        cel::Program::compile(expression).map_err(|e| format!("compile {expression}: {e}"))?;
    match program.execute(&context(request, object, old_object)?) {
        Ok(cel::Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("{expression} gave {other:?}, not a bool")),
        Err(e) => Err(format!("{expression}: {e}")),
    }
}

/// The message of a failed validation: its `messageExpression` when that evaluates to a string,
/// else its `message` (as the API server does).
fn message_of(validation: &Value, request: &Value, object: &Value, old: &Value) -> String {
    if let Some(expression) = validation["messageExpression"].as_str()
        && let Ok(program) = cel::Program::compile(expression)
        && let Ok(context) = context(request, object, old)
        && let Ok(cel::Value::String(text)) = program.execute(&context)
    {
        return text.to_string();
    }
    validation["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// What the API server would answer: `None` when the policy does not apply, else `Ok(())` or the
/// message of the first failing validation.
pub fn admitted(
    policy: &Value,
    request: &Value,
    object: &Value,
    old: &Value,
) -> Option<Result<(), String>> {
    for condition in policy["spec"]["matchConditions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let expression = condition["expression"].as_str().unwrap();
        if !eval(expression, request, object, old).unwrap_or_else(|e| panic!("{e}")) {
            return None;
        }
    }
    for validation in policy["spec"]["validations"].as_array().unwrap() {
        let expression = validation["expression"].as_str().unwrap();
        match eval(expression, request, object, old) {
            Ok(true) => {}
            // failurePolicy Fail: an evaluation error denies too.
            Ok(false) | Err(_) => return Some(Err(message_of(validation, request, object, old))),
        }
    }
    Some(Ok(()))
}

//! CEL for admission policies, on the `cel` crate: the variables kube-apiserver binds
//! (`object`, `oldObject`, `request`, `params`, `namespaceObject`, `variables`) and
//! evaluation to the bool or string a policy field expects.
//!
//! The Kubernetes CEL libraries beyond the CEL standard library (`quantity`, `url`, `ip`,
//! `authorizer`, the extended string functions) are not available; an expression that uses
//! one fails to evaluate and is handled by the policy's `failurePolicy`.

use serde_json::Value;

/// The values an expression sees.
#[derive(Debug, Clone, Default)]
pub struct Activation {
    pub object: Value,
    pub old_object: Value,
    pub request: Value,
    pub params: Value,
    pub namespace_object: Value,
    /// `variables.<name>` composited so far.
    pub variables: serde_json::Map<String, Value>,
}

/// An expression that could not produce the value its field needs.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ExpressionError {
    #[error("compilation failed: {0}")]
    Compile(String),
    #[error("{0}")]
    Execute(String),
    #[error("expected a {wanted} result, got {got}")]
    WrongType { wanted: &'static str, got: String },
}

fn context(activation: &Activation) -> Result<cel::Context<'static, 'static>, ExpressionError> {
    let mut context = cel::Context::default();
    let bind = |context: &mut cel::Context<'static, 'static>, name: &str, value: &Value| {
        context
            .add_variable(name.to_string(), value.clone())
            .map_err(|e| ExpressionError::Execute(format!("cannot bind {name}: {e}")))
    };
    bind(&mut context, "object", &activation.object)?;
    bind(&mut context, "oldObject", &activation.old_object)?;
    bind(&mut context, "request", &activation.request)?;
    bind(&mut context, "params", &activation.params)?;
    bind(
        &mut context,
        "namespaceObject",
        &activation.namespace_object,
    )?;
    bind(
        &mut context,
        "variables",
        &Value::Object(activation.variables.clone()),
    )?;
    Ok(context)
}

/// Evaluates an expression to a CEL value.
pub fn evaluate(expression: &str, activation: &Activation) -> Result<cel::Value, ExpressionError> {
    let program =
        cel::Program::compile(expression).map_err(|e| ExpressionError::Compile(e.to_string()))?;
    let context = context(activation)?;
    program
        .execute(&context)
        .map_err(|e| ExpressionError::Execute(e.to_string()))
}

/// Evaluates an expression that must be a bool (validations, matchConditions).
pub fn evaluate_bool(expression: &str, activation: &Activation) -> Result<bool, ExpressionError> {
    match evaluate(expression, activation)? {
        cel::Value::Bool(b) => Ok(b),
        other => Err(ExpressionError::WrongType {
            wanted: "bool",
            got: format!("{other:?}"),
        }),
    }
}

/// Evaluates an expression that must be a string (messageExpression).
pub fn evaluate_string(
    expression: &str,
    activation: &Activation,
) -> Result<String, ExpressionError> {
    match evaluate(expression, activation)? {
        cel::Value::String(s) => Ok(s.to_string()),
        other => Err(ExpressionError::WrongType {
            wanted: "string",
            got: format!("{other:?}"),
        }),
    }
}

/// Evaluates a variable's expression to JSON, for `variables.<name>`.
pub fn evaluate_json(expression: &str, activation: &Activation) -> Result<Value, ExpressionError> {
    let value = evaluate(expression, activation)?;
    value
        .json()
        .map_err(|e| ExpressionError::Execute(format!("variable is not representable: {e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn activation() -> Activation {
        Activation {
            object: json!({"metadata": {"name": "inc-a", "labels": {"team": "sre"}}, "spec": {"replicas": 3}}),
            request: json!({"userInfo": {"username": "system:serviceaccount:ns:agent",
                "extra": {"authentication.kubernetes.io/pod-name": ["inc-a-agent"]}}}),
            ..Activation::default()
        }
    }

    #[test]
    fn reads_object_request_and_extra() {
        let a = activation();
        assert!(evaluate_bool("object.spec.replicas <= 5", &a).unwrap());
        assert!(
            evaluate_bool(
                "request.userInfo.extra['authentication.kubernetes.io/pod-name'][0].startsWith(object.metadata.name)",
                &a
            )
            .unwrap()
        );
        assert!(
            evaluate_bool(
                "has(object.metadata.labels) && 'team' in object.metadata.labels",
                &a
            )
            .unwrap()
        );
        assert!(evaluate_bool("oldObject == null", &a).unwrap());
        assert_eq!(
            evaluate_string("'hello ' + object.metadata.name", &a).unwrap(),
            "hello inc-a"
        );
    }

    #[test]
    fn errors_and_wrong_types_are_reported() {
        let a = activation();
        assert!(matches!(
            evaluate_bool("object.spec.nope == 1", &a),
            Err(ExpressionError::Execute(_))
        ));
        assert!(matches!(
            evaluate_bool("object.spec.replicas", &a),
            Err(ExpressionError::WrongType { .. })
        ));
        assert!(matches!(
            evaluate_bool("object.spec.(", &a),
            Err(ExpressionError::Compile(_))
        ));
    }
}

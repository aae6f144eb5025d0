//! The chart's ValidatingAdmissionPolicy that confines each agent to its own Incident (issue 9 §2),
//! rendered by the real `helm` and evaluated with the `cel` crate (the interpreter the emulator's
//! admission uses): it exists and is bound with `Deny`, matches status writes by exactly the agent
//! ServiceAccounts, and its expressions admit an agent's write to its own Incident and refuse a
//! write to another Incident, a token with no pod, and a write that moves `status.agentPod`.
//!
//! Kubernetes evaluates `matchConditions` first (false: the policy does not apply), then every
//! validation (false or an error: denied, as `failurePolicy: Fail`). [`admitted`] follows that order.

#[path = "support/tools.rs"]
mod tools;

use std::process::Command;

use serde_json::{Value, json};

const RELEASE: &str = "t";
const NAMESPACE: &str = "ops";
const POLICY: &str = "t-incident-operator-agent-own-incident";
const AGENT: &str = "system:serviceaccount:ops:t-incident-operator-agent";
const REMEDIATION: &str = "system:serviceaccount:ops:t-incident-operator-agent-remediate";
const CONTROLLER: &str = "system:serviceaccount:ops:t-incident-operator";
const POD_NAME_KEY: &str = "authentication.kubernetes.io/pod-name";

fn render(values: &str) -> Vec<Value> {
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

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in the rendered chart"))
}

/// Evaluates one CEL expression of the policy against an admission request.
fn eval(
    expression: &str,
    request: &Value,
    object: &Value,
    old_object: &Value,
) -> Result<bool, String> {
    let program =
        cel::Program::compile(expression).map_err(|e| format!("compile {expression}: {e}"))?;
    let mut context = cel::Context::default();
    context
        .add_variable("request", request.clone())
        .map_err(|e| e.to_string())?;
    context
        .add_variable("object", object.clone())
        .map_err(|e| e.to_string())?;
    context
        .add_variable("oldObject", old_object.clone())
        .map_err(|e| e.to_string())?;
    match program.execute(&context) {
        Ok(cel::Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("{expression} gave {other:?}, not a bool")),
        Err(e) => Err(format!("{expression}: {e}")),
    }
}

/// What the API server would answer: `None` when the policy does not apply, else `Ok(())` or the
/// message of the first failing validation.
fn admitted(
    policy: &Value,
    request: &Value,
    object: &Value,
    old: &Value,
) -> Option<Result<(), String>> {
    for condition in policy["spec"]["matchConditions"].as_array().unwrap() {
        let expression = condition["expression"].as_str().unwrap();
        if !eval(expression, request, object, old).unwrap_or_else(|e| panic!("{e}")) {
            return None;
        }
    }
    for validation in policy["spec"]["validations"].as_array().unwrap() {
        let expression = validation["expression"].as_str().unwrap();
        let message = validation["message"].as_str().unwrap().to_string();
        match eval(expression, request, object, old) {
            Ok(true) => {}
            // failurePolicy Fail: an evaluation error denies too.
            Ok(false) | Err(_) => return Some(Err(message)),
        }
    }
    Some(Ok(()))
}

fn request(username: &str, pod: Option<&str>) -> Value {
    let mut extra = serde_json::Map::new();
    if let Some(pod) = pod {
        extra.insert(POD_NAME_KEY.into(), json!([pod]));
        extra.insert(
            "authentication.kubernetes.io/pod-uid".into(),
            json!(["0f6c6d3e-uid"]),
        );
    }
    json!({
        "operation": "UPDATE",
        "subResource": "status",
        "resource": {"group": "sre.agentlab.dev", "version": "v1alpha1", "resource": "incidents"},
        "userInfo": {"username": username, "groups": ["system:serviceaccounts", "system:authenticated"], "extra": extra},
    })
}

fn incident(name: &str, agent_pod: Option<&str>, phase: &str) -> Value {
    let mut status = json!({"phase": phase});
    if let Some(pod) = agent_pod {
        status["agentPod"] = json!(pod);
    }
    json!({
        "apiVersion": "sre.agentlab.dev/v1alpha1",
        "kind": "Incident",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"title": name},
        "status": status,
    })
}

#[test]
fn the_policy_is_shipped_bound_and_matches_agent_status_writes() {
    let docs = render("{}\n");
    let policy = find(&docs, "ValidatingAdmissionPolicy", POLICY);
    assert_eq!(policy["apiVersion"], "admissionregistration.k8s.io/v1");
    assert_eq!(policy["spec"]["failurePolicy"], "Fail");
    let rules = &policy["spec"]["matchConstraints"]["resourceRules"];
    assert_eq!(
        rules,
        &json!([{"apiGroups": ["sre.agentlab.dev"], "apiVersions": ["*"], "operations": ["UPDATE"], "resources": ["incidents/status"]}])
    );
    let binding = find(&docs, "ValidatingAdmissionPolicyBinding", POLICY);
    assert_eq!(binding["spec"]["policyName"], POLICY);
    assert_eq!(binding["spec"]["validationActions"], json!(["Deny"]));
    // Bound everywhere: the match conditions, not a namespace list, say whom it concerns.
    assert!(binding["spec"].get("matchResources").is_none(), "{binding}");
}

#[test]
fn an_agent_writes_its_own_incident_and_no_other() {
    let docs = render("remediation:\n  enabled: true\n");
    let policy = find(&docs, "ValidatingAdmissionPolicy", POLICY);
    let a_before = incident("a", Some("a-agent-1"), "Running");
    let b_before = incident("b", Some("b-agent-1"), "Running");
    let mut b_forged = b_before.clone();
    b_forged["status"]["phase"] = json!("Completed");
    b_forged["status"]["report"] =
        json!({"summary": "all clear", "confidence": "high", "resolved": true});
    let mut a_progress = a_before.clone();
    a_progress["status"]["lastCommand"] = json!("kubectl get pods");

    // Its own Incident: admitted, for both agent ServiceAccounts.
    for user in [AGENT, REMEDIATION] {
        assert_eq!(
            admitted(
                policy,
                &request(user, Some("a-agent-1")),
                &a_progress,
                &a_before
            ),
            Some(Ok(())),
            "{user}"
        );
    }
    // Another Incident's status, from A's pod: refused with the policy's message.
    let refused = admitted(
        policy,
        &request(AGENT, Some("a-agent-1")),
        &b_forged,
        &b_before,
    );
    let message = refused
        .expect("the policy applies")
        .expect_err("forging must be refused");
    assert!(
        message.contains("only the status of its own Incident"),
        "{message}"
    );
    // The agent ServiceAccount's token without a pod (a TokenRequest not bound to a pod, or a
    // legacy Secret token): refused.
    assert!(matches!(
        admitted(policy, &request(AGENT, None), &a_progress, &a_before),
        Some(Err(_))
    ));
    // An Incident with no agentPod yet: nothing to be the owner of, refused.
    let fresh = incident("c", None, "Pending");
    assert!(matches!(
        admitted(policy, &request(AGENT, Some("c-agent-1")), &fresh, &fresh),
        Some(Err(_))
    ));
    // Re-pointing agentPod at itself, on its own Incident or another: refused.
    let mut a_moved = a_before.clone();
    a_moved["status"]["agentPod"] = json!("a-agent-9");
    let message = admitted(
        policy,
        &request(AGENT, Some("a-agent-1")),
        &a_moved,
        &a_before,
    )
    .unwrap()
    .unwrap_err();
    assert!(
        message.contains("may not change status.agentPod"),
        "{message}"
    );
    let mut b_hijacked = b_before.clone();
    b_hijacked["status"]["agentPod"] = json!("a-agent-1");
    assert!(matches!(
        admitted(
            policy,
            &request(AGENT, Some("a-agent-1")),
            &b_hijacked,
            &b_before
        ),
        Some(Err(_))
    ));
    // Dropping agentPod from the status: refused.
    let mut a_dropped = a_before.clone();
    a_dropped["status"]
        .as_object_mut()
        .unwrap()
        .remove("agentPod");
    assert!(matches!(
        admitted(
            policy,
            &request(AGENT, Some("a-agent-1")),
            &a_dropped,
            &a_before
        ),
        Some(Err(_))
    ));
    // The controller (and anyone else) is not concerned: it sets agentPod for new attempts.
    assert_eq!(
        admitted(policy, &request(CONTROLLER, None), &a_moved, &a_before),
        None
    );
    assert_eq!(
        admitted(
            policy,
            &request(
                "system:serviceaccount:shop:t-incident-operator-agent",
                Some("x")
            ),
            &b_forged,
            &b_before
        ),
        None,
        "an agent account of a namespace the release does not serve is not in the list"
    );
}

#[test]
fn every_agent_namespace_and_account_is_matched() {
    let docs = render(
        "watchNamespaces: [ops, shop]\nagent:\n  namespaces: [ops, shop]\nremediation:\n  enabled: true\n",
    );
    let policy = find(&docs, "ValidatingAdmissionPolicy", POLICY);
    let before = incident("a", Some("a-agent-1"), "Running");
    let mut forged = incident("b", Some("b-agent-1"), "Running");
    let b_before = forged.clone();
    forged["status"]["phase"] = json!("Completed");
    for ns in ["ops", "shop"] {
        for sa in [
            "t-incident-operator-agent",
            "t-incident-operator-agent-remediate",
        ] {
            let user = format!("system:serviceaccount:{ns}:{sa}");
            assert!(
                matches!(
                    admitted(
                        policy,
                        &request(&user, Some("a-agent-1")),
                        &forged,
                        &b_before
                    ),
                    Some(Err(_))
                ),
                "{user} not confined"
            );
            assert_eq!(
                admitted(policy, &request(&user, Some("a-agent-1")), &before, &before),
                Some(Ok(())),
                "{user}"
            );
        }
    }
}

//! The chart's ValidatingAdmissionPolicy that confines each agent to its own Incident (issue 9 §2),
//! rendered by the real `helm` and evaluated with the `cel` crate (the interpreter the emulator's
//! admission uses): it exists and is bound with `Deny`, matches status writes by exactly the agent
//! ServiceAccounts, and its expressions admit an agent's write to its own Incident and refuse a
//! write to another Incident, a token with no pod, and a write that moves `status.agentPod`.
//!
//! Kubernetes evaluates `matchConditions` first (false: the policy does not apply), then every
//! validation (false or an error: denied, as `failurePolicy: Fail`). [`admitted`] follows that order.

#[path = "support/policy_eval.rs"]
mod policy_eval;
#[path = "support/tools.rs"]
mod tools;

use policy_eval::{NAMESPACE, admitted, find, render};
use serde_json::{Value, json};
const POLICY: &str = "t-incident-operator-agent-own-incident";
const AGENT: &str = "system:serviceaccount:ops:t-incident-operator-agent";
const REMEDIATION: &str = "system:serviceaccount:ops:t-incident-operator-agent-remediate";
const CONTROLLER: &str = "system:serviceaccount:ops:t-incident-operator";
const POD_NAME_KEY: &str = "authentication.kubernetes.io/pod-name";

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

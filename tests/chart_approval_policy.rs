//! The chart's ValidatingAdmissionPolicy for IncidentApprovals (issue 12), rendered by the real
//! `helm` and evaluated with the `cel` crate: bound with `Deny`, it admits an approval whose
//! `spec.approver` is the requesting user, refuses one naming somebody else, refuses
//! ServiceAccounts unless `approvals.allowServiceAccounts`, and refuses any UPDATE that changes
//! the spec (metadata-only updates pass). The request variables are the ones kube-apiserver
//! gives a CREATE (`oldObject` null) and an UPDATE of a CRD without a status subresource (the
//! whole object, old and new).

#[path = "support/policy_eval.rs"]
mod policy_eval;
#[path = "support/tools.rs"]
mod tools;

use policy_eval::{NAMESPACE, admitted, find, render};
use serde_json::{Value, json};

const POLICY: &str = "t-incident-operator-approval";
const HASH: &str = "sha256:3b1f2f0a3c7d5e9b8a6f4c2e1d0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b";

fn request(operation: &str, username: &str) -> Value {
    let groups = if username.starts_with("system:serviceaccount:") {
        json!(["system:serviceaccounts", "system:authenticated"])
    } else {
        json!(["oncall", "system:authenticated"])
    };
    json!({
        "operation": operation,
        "resource": {"group": "sre.agentlab.dev", "version": "v1alpha1", "resource": "incidentapprovals"},
        "userInfo": {"username": username, "groups": groups},
    })
}

fn approval(approver: &str, decision: &str) -> Value {
    json!({
        "apiVersion": "sre.agentlab.dev/v1alpha1",
        "kind": "IncidentApproval",
        "metadata": {"name": "web-approve", "namespace": NAMESPACE},
        "spec": {"incident": "web", "planHash": HASH, "decision": decision, "approver": approver},
    })
}

#[test]
fn the_policy_is_shipped_bound_and_matches_approval_writes() {
    let docs = render("{}\n");
    let policy = find(&docs, "ValidatingAdmissionPolicy", POLICY);
    assert_eq!(policy["apiVersion"], "admissionregistration.k8s.io/v1");
    assert_eq!(policy["spec"]["failurePolicy"], "Fail");
    let rules = &policy["spec"]["matchConstraints"]["resourceRules"];
    assert_eq!(rules[0]["resources"], json!(["incidentapprovals"]));
    assert_eq!(rules[0]["operations"], json!(["CREATE", "UPDATE"]));
    let binding = find(&docs, "ValidatingAdmissionPolicyBinding", POLICY);
    assert_eq!(binding["spec"]["policyName"], POLICY);
    assert_eq!(binding["spec"]["validationActions"], json!(["Deny"]));
}

#[test]
fn only_the_requesting_user_may_be_the_approver() {
    let docs = render("{}\n");
    let policy = find(&docs, "ValidatingAdmissionPolicy", POLICY);
    let create = request("CREATE", "alice");
    assert_eq!(
        admitted(policy, &create, &approval("alice", "approve"), &Value::Null),
        Some(Ok(()))
    );
    assert_eq!(
        admitted(policy, &create, &approval("alice", "reject"), &Value::Null),
        Some(Ok(()))
    );
    let refused = admitted(policy, &create, &approval("bob", "approve"), &Value::Null);
    assert_eq!(
        refused,
        Some(Err(
            "spec.approver must be the requesting user: alice may not approve as bob".into()
        ))
    );
}

#[test]
fn service_accounts_may_not_decide_unless_allowed() {
    let sa = "system:serviceaccount:ops:robot";
    let object = approval(sa, "approve");
    let docs = render("{}\n");
    let policy = find(&docs, "ValidatingAdmissionPolicy", POLICY);
    let refused = admitted(policy, &request("CREATE", sa), &object, &Value::Null);
    assert!(
        matches!(&refused, Some(Err(message)) if message.contains("a ServiceAccount may not approve")),
        "{refused:?}"
    );
    let docs = render("approvals:\n  allowServiceAccounts: true\n  timeoutSeconds: 600\n");
    let policy = find(&docs, "ValidatingAdmissionPolicy", POLICY);
    assert_eq!(
        admitted(policy, &request("CREATE", sa), &object, &Value::Null),
        Some(Ok(()))
    );
    // Allowed or not, a ServiceAccount still cannot approve in somebody else's name.
    assert!(matches!(
        admitted(
            policy,
            &request("CREATE", sa),
            &approval("alice", "approve"),
            &Value::Null
        ),
        Some(Err(_))
    ));
}

#[test]
fn an_approval_cannot_be_edited_after_creation() {
    let docs = render("{}\n");
    let policy = find(&docs, "ValidatingAdmissionPolicy", POLICY);
    let old = approval("alice", "reject");
    let mut flipped = old.clone();
    flipped["spec"]["decision"] = json!("approve");
    // Even its own approver may not change it; nor may anybody else.
    for user in ["alice", "cluster-admin"] {
        assert_eq!(
            admitted(policy, &request("UPDATE", user), &flipped, &old),
            Some(Err(
                "an IncidentApproval is immutable once created; create a new one instead".into()
            )),
            "{user}"
        );
    }
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] = json!({"team": "shop"});
    assert_eq!(
        admitted(
            policy,
            &request("UPDATE", "cluster-admin"),
            &relabelled,
            &old
        ),
        Some(Ok(()))
    );
}

#[test]
fn the_approver_role_is_shipped() {
    let docs = render("{}\n");
    let role = find(&docs, "ClusterRole", "incident-approver");
    let rules = role["rules"].as_array().unwrap();
    assert!(
        rules
            .iter()
            .any(|r| r["resources"] == json!(["incidentapprovals"])
                && r["verbs"] == json!(["create", "get", "list"]))
    );
    // The operator's own get/list/watch on incidentapprovals is checked exactly in chart_rbac.rs.
}

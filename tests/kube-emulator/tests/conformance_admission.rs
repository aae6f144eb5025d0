//! Conformance: admission as a real kube-apiserver runs it (also run with
//! `KUBE_CONFORMANCE_REAL_CLUSTER=1`): the ServiceAccount plugin refusing a pod whose
//! ServiceAccount is missing, and ValidatingAdmissionPolicy + Binding with CEL over
//! `object`, `oldObject`, `request.userInfo` (incl. the pod-bound token's `extra`),
//! `namespaceObject` and `params`, on resources and subresources, with the real wording.

mod common;

use common::{TestEnv, eventually, raw_json, setup};
use http::{Method, StatusCode};
use serde_json::{Value, json};

const VAP: &str = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies";
const VAPB: &str = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings";

/// A policy and its binding limited to the test's namespace; returns their names.
async fn install_policy(env: &TestEnv, spec: Value, actions: &[&str]) -> (String, String) {
    let name = format!("{}.conformance.example.com", env.unique("p"));
    env.admin_create(
        VAP,
        &json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": name}, "spec": spec}),
    )
    .await;
    let binding = format!("{name}-binding");
    let mut binding_spec = json!({
        "policyName": name,
        "validationActions": actions,
        "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": env.namespace}}},
    });
    if spec.get("paramKind").is_some() {
        binding_spec["paramRef"] = json!({"name": "limits", "namespace": env.namespace, "parameterNotFoundAction": "Deny"});
    }
    env.admin_create(
        VAPB,
        &json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": binding}, "spec": binding_spec}),
    )
    .await;
    (name, binding)
}

async fn remove_policy(env: &TestEnv, (policy, binding): &(String, String)) {
    raw_json(
        &env.client,
        Method::DELETE,
        &format!("{VAPB}/{binding}"),
        None,
    )
    .await;
    raw_json(
        &env.client,
        Method::DELETE,
        &format!("{VAP}/{policy}"),
        None,
    )
    .await;
}

fn configmap(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}

fn configmap_rules(operations: &[&str]) -> Value {
    json!({"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": operations, "resources": ["configmaps"]}]})
}

#[tokio::test]
async fn a_pod_naming_a_missing_service_account_is_refused() {
    let env = setup().await;
    let path = format!("/api/v1/namespaces/{}/pods", env.namespace);
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lost"},
        "spec": {"serviceAccountName": "nobody", "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}});
    let refused = raw_json(&env.client, Method::POST, &path, Some(&pod)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert_eq!(refused.json["reason"], "Forbidden");
    assert_eq!(
        refused.json["message"],
        format!(
            "pods \"lost\" is forbidden: error looking up service account {}/nobody: serviceaccount \"nobody\" not found",
            env.namespace
        )
    );
    assert_eq!(
        refused.json["details"],
        json!({"name": "lost", "kind": "pods"})
    );
    env.finish().await;
}

#[tokio::test]
async fn a_failed_validation_denies_with_the_policy_and_binding_named() {
    let env = setup().await;
    let names = install_policy(
        &env,
        json!({"failurePolicy": "Fail", "matchConstraints": configmap_rules(&["CREATE", "UPDATE"]),
               "validations": [{"expression": "size(object.data) <= 2"}]}),
        &["Deny"],
    )
    .await;
    let path = format!("/api/v1/namespaces/{}/configmaps", env.namespace);
    let big = configmap("big", json!({"a": "1", "b": "2", "c": "3"}));
    let denied = eventually("the policy is in force", || async {
        let answer = raw_json(&env.client, Method::POST, &path, Some(&big)).await;
        (answer.status == StatusCode::UNPROCESSABLE_ENTITY).then_some(answer)
    })
    .await;
    assert_eq!(denied.json["reason"], "Invalid");
    assert_eq!(
        denied.json["message"],
        format!(
            "configmaps \"big\" is forbidden: ValidatingAdmissionPolicy '{}' with binding '{}' denied request: failed expression: size(object.data) <= 2",
            names.0, names.1
        )
    );
    let small = configmap("small", json!({"a": "1"}));
    let created = raw_json(&env.client, Method::POST, &path, Some(&small)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    // UPDATE is covered too.
    let grown = configmap("small", json!({"a": "1", "b": "2", "c": "3"}));
    let update = raw_json(
        &env.client,
        Method::PUT,
        &format!("{path}/small"),
        Some(&grown),
    )
    .await;
    assert_eq!(
        update.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        update.text
    );
    remove_policy(&env, &names).await;
    env.finish().await;
}

#[tokio::test]
async fn message_expression_reason_and_old_object_shape_the_denial() {
    let env = setup().await;
    let names = install_policy(
        &env,
        json!({"matchConstraints": configmap_rules(&["UPDATE", "DELETE"]),
               "validations": [{
                   "expression": "!has(oldObject.metadata.labels) || !('locked' in oldObject.metadata.labels)",
                   "messageExpression": "'configmap ' + oldObject.metadata.name + ' is locked against ' + request.operation",
                   "reason": "Forbidden"}]}),
        &["Deny"],
    )
    .await;
    let path = format!("/api/v1/namespaces/{}/configmaps", env.namespace);
    let mut locked = configmap("vault", json!({"k": "v"}));
    locked["metadata"]["labels"] = json!({"locked": "yes"});
    env.admin_create(&path, &locked).await;
    let denied = eventually("the policy is in force", || async {
        let answer = raw_json(&env.client, Method::DELETE, &format!("{path}/vault"), None).await;
        (answer.status == StatusCode::FORBIDDEN).then_some(answer)
    })
    .await;
    assert_eq!(denied.json["reason"], "Forbidden");
    assert_eq!(
        denied.json["message"],
        format!(
            "configmaps \"vault\" is forbidden: ValidatingAdmissionPolicy '{}' with binding '{}' denied request: configmap vault is locked against DELETE",
            names.0, names.1
        )
    );
    remove_policy(&env, &names).await;
    env.finish().await;
}

#[tokio::test]
async fn warn_actions_warn_and_ignore_failure_policies_admit() {
    let env = setup().await;
    let warn = install_policy(
        &env,
        json!({"matchConstraints": configmap_rules(&["CREATE"]),
               "validations": [{"expression": "object.metadata.name.startsWith('ok-')", "message": "names start with ok-"}]}),
        &["Warn"],
    )
    .await;
    let ignore = install_policy(
        &env,
        json!({"failurePolicy": "Ignore", "matchConstraints": configmap_rules(&["CREATE"]),
               "validations": [{"expression": "object.data.missing == 'x'"}]}),
        &["Deny"],
    )
    .await;
    let path = format!("/api/v1/namespaces/{}/configmaps", env.namespace);
    let warned = eventually("the warning policy is in force", || async {
        let name = env.unique("plain");
        let answer = raw_json(
            &env.client,
            Method::POST,
            &path,
            Some(&configmap(&name, json!({"a": "1"}))),
        )
        .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        answer
            .headers
            .get_all("warning")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.contains("names start with ok-"))
            .map(str::to_string)
    })
    .await;
    assert!(
        warned.contains(&format!(
            "Validation failed for ValidatingAdmissionPolicy '{}' with binding '{}': names start with ok-",
            warn.0, warn.1
        )),
        "{warned}"
    );
    remove_policy(&env, &warn).await;
    remove_policy(&env, &ignore).await;
    env.finish().await;
}

#[tokio::test]
async fn an_expression_error_under_fail_denies() {
    let env = setup().await;
    let names = install_policy(
        &env,
        json!({"failurePolicy": "Fail", "matchConstraints": configmap_rules(&["CREATE"]),
               "validations": [{"expression": "object.data.missing == 'x'"}]}),
        &["Deny"],
    )
    .await;
    let path = format!("/api/v1/namespaces/{}/configmaps", env.namespace);
    let denied = eventually("the policy is in force", || async {
        let answer = raw_json(
            &env.client,
            Method::POST,
            &path,
            Some(&configmap("err", json!({"a": "1"}))),
        )
        .await;
        (answer.status == StatusCode::UNPROCESSABLE_ENTITY).then_some(answer)
    })
    .await;
    let message = denied.json["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with(&format!(
            "configmaps \"err\" is forbidden: ValidatingAdmissionPolicy '{}' with binding '{}' denied request: expression 'object.data.missing == 'x'' resulted in error: ",
            names.0, names.1
        )),
        "{message}"
    );
    remove_policy(&env, &names).await;
    env.finish().await;
}

#[tokio::test]
async fn params_and_namespace_object_are_bound() {
    let env = setup().await;
    let ns = env.namespace.clone();
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    env.admin_create(&path, &configmap("limits", json!({"max": "1"})))
        .await;
    let names = install_policy(
        &env,
        json!({"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
               "matchConstraints": configmap_rules(&["CREATE"]),
               "validations": [
                   {"expression": "namespaceObject.metadata.name == request.namespace", "message": "namespaceObject"},
                   {"expression": "size(object.data) <= int(params.data.max)", "messageExpression": "'at most ' + params.data.max + ' keys'"}]}),
        &["Deny"],
    )
    .await;
    let denied = eventually("the policy is in force", || async {
        let answer = raw_json(
            &env.client,
            Method::POST,
            &path,
            Some(&configmap("two", json!({"a": "1", "b": "2"}))),
        )
        .await;
        (answer.status == StatusCode::UNPROCESSABLE_ENTITY).then_some(answer)
    })
    .await;
    assert!(
        denied.json["message"]
            .as_str()
            .unwrap_or("")
            .ends_with("denied request: at most 1 keys"),
        "{}",
        denied.text
    );
    let one = raw_json(
        &env.client,
        Method::POST,
        &path,
        Some(&configmap("one", json!({"a": "1"}))),
    )
    .await;
    assert_eq!(one.status, StatusCode::CREATED, "{}", one.text);
    remove_policy(&env, &names).await;
    env.finish().await;
}

/// The security model the chart builds on: a status subresource write is allowed only from
/// the pod the object names, read from the pod-bound token's `userInfo.extra`.
#[tokio::test]
async fn a_status_policy_keyed_on_the_pod_bound_token_confines_a_writer() {
    let env = setup().await;
    let ns = env.namespace.clone();
    let group = common::install_widgets(&env).await;
    let widgets = format!("/apis/{group}/v1/namespaces/{ns}/widgets");
    for name in ["a", "b"] {
        env.admin_create(
            &widgets,
            &json!({"apiVersion": format!("{group}/v1"), "kind": "Widget", "metadata": {"name": name}, "spec": {"color": "red"}}),
        )
        .await;
    }
    env.create_service_account("writer").await;
    env.admin_create(
        &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles"),
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "writer"},
                "rules": [{"apiGroups": [group], "resources": ["widgets/status"], "verbs": ["patch"]}]}),
    )
    .await;
    env.admin_create(
        &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "writer"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "writer"},
                "subjects": [{"kind": "ServiceAccount", "name": "writer", "namespace": ns}]}),
    )
    .await;
    let names = install_policy(
        &env,
        json!({"matchConstraints": {"resourceRules": [{"apiGroups": [group], "apiVersions": ["*"], "operations": ["UPDATE"], "resources": ["widgets/status"]}]},
               "matchConditions": [{"name": "service-accounts-only", "expression": "request.userInfo.username.startsWith('system:serviceaccount:')"}],
               "variables": [{"name": "pod", "expression": "'authentication.kubernetes.io/pod-name' in request.userInfo.extra ? request.userInfo.extra['authentication.kubernetes.io/pod-name'][0] : ''"}],
               "validations": [{"expression": "variables.pod == object.metadata.name + '-writer'",
                                "messageExpression": "'pod ' + variables.pod + ' may not write ' + object.metadata.name"}]}),
        &["Deny"],
    )
    .await;
    let uid = env.create_pod_as("a-writer", "writer").await;
    let token = env.token_for("writer", Some(("a-writer", &uid))).await;
    let writer = env.client_as(Some(&token)).await;
    let patch = |name: &str| {
        let request = http::Request::builder()
            .method(Method::PATCH)
            .uri(format!("{widgets}/{name}/status"))
            .header(http::header::CONTENT_TYPE, "application/merge-patch+json")
            .body(kube::client::Body::from(
                json!({"status": {"phase": "Done"}})
                    .to_string()
                    .into_bytes(),
            ))
            .expect("request");
        let writer = writer.clone();
        async move {
            let response = writer.send(request).await.expect("sent");
            let status = response.status();
            let body = response.into_body().collect_bytes().await.expect("body");
            (
                status,
                serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
            )
        }
    };
    let (status, denied) = eventually("the policy and grant are in force", || async {
        let answer = patch("b").await;
        (answer.0 == StatusCode::UNPROCESSABLE_ENTITY).then_some(answer)
    })
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        denied["message"],
        format!(
            "widgets.{group} \"b\" is forbidden: ValidatingAdmissionPolicy '{}' with binding '{}' denied request: pod a-writer may not write b",
            names.0, names.1
        )
    );
    let (own, body) = patch("a").await;
    assert_eq!(own, StatusCode::OK, "{body}");
    assert_eq!(body["status"]["phase"], "Done");
    // The admin is not a ServiceAccount: the match condition leaves it alone.
    let admin = raw_json(
        &env.client,
        Method::GET,
        &format!("{widgets}/b/status"),
        None,
    )
    .await;
    assert_eq!(admin.status, StatusCode::OK);
    remove_policy(&env, &names).await;
    common::remove_crd(&env, &format!("widgets.{group}")).await;
    env.finish().await;
}

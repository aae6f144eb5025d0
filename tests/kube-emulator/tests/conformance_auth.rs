//! Conformance: authentication and RBAC authorization, as a real kube-apiserver enforces them
//! (also run with `KUBE_CONFORMANCE_REAL_CLUSTER=1`): ServiceAccount tokens from TokenRequest,
//! bound to a Pod, with the real groups and `userInfo.extra`; anonymous requests; 401 for bad
//! tokens; RBAC with resourceNames, subresources, groups and non-resource URLs; the review
//! APIs; and the 403 wording.

mod common;

use common::{RawResponse, TestEnv, eventually, raw_json, setup};
use http::{Method, StatusCode};
use kube::Client;
use serde_json::{Value, json};

const SA_GROUPS: &[&str] = &["system:serviceaccounts", "system:authenticated"];

async fn who_am_i(client: &Client) -> RawResponse {
    raw_json(
        client,
        Method::POST,
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        Some(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})),
    )
    .await
}

async fn grant(env: &TestEnv, name: &str, rules: Value, subject: Value) {
    let ns = &env.namespace;
    env.admin_create(
        &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles"),
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": name}, "rules": rules}),
    )
    .await;
    env.admin_create(
        &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [subject]}),
    )
    .await;
}

fn sa_subject(env: &TestEnv, name: &str) -> Value {
    json!({"kind": "ServiceAccount", "name": name, "namespace": env.namespace})
}

/// Waits until `path` answers `wanted` for `client` (a real server's RBAC cache and token
/// cache catch up within seconds).
async fn until_status(
    client: &Client,
    method: Method,
    path: &str,
    wanted: StatusCode,
) -> RawResponse {
    eventually(&format!("{method} {path} answers {wanted}"), || {
        let method = method.clone();
        async move {
            let answer = raw_json(client, method, path, None).await;
            (answer.status == wanted).then_some(answer)
        }
    })
    .await
}

#[tokio::test]
async fn a_pod_bound_token_is_the_service_account_with_pod_extra() {
    let env = setup().await;
    env.create_service_account("agent").await;
    let uid = env.create_pod_as("agent-pod", "agent").await;
    let token = env.token_for("agent", Some(("agent-pod", &uid))).await;
    let client = env.client_as(Some(&token)).await;
    let review = who_am_i(&client).await;
    assert_eq!(review.status, StatusCode::CREATED, "{}", review.text);
    let user = &review.json["status"]["userInfo"];
    assert_eq!(
        user["username"],
        format!("system:serviceaccount:{}:agent", env.namespace)
    );
    let groups: Vec<&str> = user["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for group in SA_GROUPS {
        assert!(groups.contains(group), "{groups:?}");
    }
    let namespace_group = format!("system:serviceaccounts:{}", env.namespace);
    assert!(groups.contains(&namespace_group.as_str()), "{groups:?}");
    assert_eq!(
        user["extra"]["authentication.kubernetes.io/pod-name"],
        json!(["agent-pod"])
    );
    assert_eq!(
        user["extra"]["authentication.kubernetes.io/pod-uid"],
        json!([uid])
    );
    // The token is a JWT whose claims name the pod, as TokenRequest's are.
    let payload = token.split('.').nth(1).expect("a JWT");
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["kubernetes.io"]["pod"]["name"], "agent-pod");
    assert_eq!(
        claims["sub"],
        format!("system:serviceaccount:{}:agent", env.namespace)
    );
    env.finish().await;
}

#[tokio::test]
async fn a_token_stops_working_when_its_pod_or_service_account_is_deleted() {
    let env = setup().await;
    let ns = env.namespace.clone();
    env.create_service_account("short").await;
    let uid = env.create_pod_as("short-pod", "short").await;
    let pod_token = env.token_for("short", Some(("short-pod", &uid))).await;
    let account_token = env.token_for("short", None).await;
    let review = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
    assert_eq!(
        who_am_i(&env.client_as(Some(&pod_token)).await)
            .await
            .status,
        StatusCode::CREATED
    );
    let deleted = raw_json(
        &env.client,
        Method::DELETE,
        &format!("/api/v1/namespaces/{ns}/pods/short-pod?gracePeriodSeconds=0"),
        None,
    )
    .await;
    assert!(deleted.status.is_success(), "{}", deleted.text);
    let pod_client = env.client_as(Some(&pod_token)).await;
    let refused = eventually("the pod-bound token is refused", || async {
        let answer = who_am_i(&pod_client).await;
        (answer.status == StatusCode::UNAUTHORIZED).then_some(answer)
    })
    .await;
    assert_eq!(refused.json["reason"], "Unauthorized");
    assert_eq!(refused.json["message"], "Unauthorized");
    // The unbound token lives as long as the ServiceAccount.
    let account_client = env.client_as(Some(&account_token)).await;
    assert_eq!(who_am_i(&account_client).await.status, StatusCode::CREATED);
    raw_json(
        &env.client,
        Method::DELETE,
        &format!("/api/v1/namespaces/{ns}/serviceaccounts/short"),
        None,
    )
    .await;
    eventually("the ServiceAccount token is refused", || async {
        let answer = raw_json(
            &account_client,
            Method::POST,
            review,
            Some(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})),
        )
        .await;
        (answer.status == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    env.finish().await;
}

#[tokio::test]
async fn no_credentials_is_anonymous_and_a_forged_token_is_unauthorized() {
    let env = setup().await;
    let anonymous = env.client_as(None).await;
    let version = raw_json(&anonymous, Method::GET, "/version", None).await;
    assert_eq!(version.status, StatusCode::OK, "public info is public");
    let pods = format!("/api/v1/namespaces/{}/pods", env.namespace);
    let denied = raw_json(&anonymous, Method::GET, &pods, None).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(
        denied.json["message"],
        format!(
            "pods is forbidden: User \"system:anonymous\" cannot list resource \"pods\" in API group \"\" in the namespace \"{}\"",
            env.namespace
        )
    );
    assert_eq!(denied.json["reason"], "Forbidden");
    assert_eq!(denied.json["details"]["kind"], "pods");
    let forged = env
        .client_as(Some("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtZSJ9.c2lnbmF0dXJl"))
        .await;
    let refused = raw_json(&forged, Method::GET, &pods, None).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused.json,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    );
    env.finish().await;
}

#[tokio::test]
async fn rbac_allows_exactly_what_a_role_grants() {
    let env = setup().await;
    let ns = env.namespace.clone();
    env.create_service_account("reader").await;
    let token = env.token_for("reader", None).await;
    let reader = env.client_as(Some(&token)).await;
    let user = format!("system:serviceaccount:{ns}:reader");
    let pod_path = |name: &str| format!("/api/v1/namespaces/{ns}/pods/{name}");
    let before = raw_json(&reader, Method::GET, &pod_path("mine"), None).await;
    assert_eq!(before.status, StatusCode::FORBIDDEN);
    assert_eq!(
        before.json["message"],
        format!(
            "pods \"mine\" is forbidden: User \"{user}\" cannot get resource \"pods\" in API group \"\" in the namespace \"{ns}\""
        )
    );
    assert_eq!(
        before.json["details"],
        json!({"name": "mine", "kind": "pods"})
    );
    grant(
        &env,
        "read-mine",
        json!([{"apiGroups": [""], "resources": ["pods"], "resourceNames": ["mine"], "verbs": ["get", "delete"]}]),
        sa_subject(&env, "reader"),
    )
    .await;
    // Allowed now: the pod does not exist, so the answer is 404, not 403.
    until_status(
        &reader,
        Method::GET,
        &pod_path("mine"),
        StatusCode::NOT_FOUND,
    )
    .await;
    let other = raw_json(&reader, Method::GET, &pod_path("theirs"), None).await;
    assert_eq!(
        other.status,
        StatusCode::FORBIDDEN,
        "resourceNames restrict"
    );
    let list = raw_json(
        &reader,
        Method::GET,
        &format!("/api/v1/namespaces/{ns}/pods"),
        None,
    )
    .await;
    assert_eq!(
        list.status,
        StatusCode::FORBIDDEN,
        "resourceNames never cover a list"
    );
    let log = raw_json(
        &reader,
        Method::GET,
        &format!("{}/log", pod_path("mine")),
        None,
    )
    .await;
    assert_eq!(log.status, StatusCode::FORBIDDEN);
    assert_eq!(
        log.json["message"],
        format!(
            "pods \"mine\" is forbidden: User \"{user}\" cannot get resource \"pods/log\" in API group \"\" in the namespace \"{ns}\""
        )
    );
    let nodes = raw_json(&reader, Method::GET, "/api/v1/nodes", None).await;
    assert_eq!(
        nodes.json["message"],
        format!(
            "nodes is forbidden: User \"{user}\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
        )
    );
    let metrics = raw_json(&reader, Method::GET, "/metrics", None).await;
    assert_eq!(metrics.status, StatusCode::FORBIDDEN);
    assert_eq!(
        metrics.json["message"],
        format!("forbidden: User \"{user}\" cannot get path \"/metrics\"")
    );
    let discovery = raw_json(&reader, Method::GET, "/apis", None).await;
    assert_eq!(
        discovery.status,
        StatusCode::OK,
        "system:discovery is bound to system:authenticated"
    );
    env.finish().await;
}

#[tokio::test]
async fn group_subjects_and_aggregated_cluster_roles_apply() {
    let env = setup().await;
    let ns = env.namespace.clone();
    env.create_service_account("viewer").await;
    let viewer = env
        .client_as(Some(&env.token_for("viewer", None).await))
        .await;
    let pods = format!("/api/v1/namespaces/{ns}/pods");
    assert_eq!(
        raw_json(&viewer, Method::GET, &pods, None).await.status,
        StatusCode::FORBIDDEN
    );
    // `view` is aggregated from system:aggregate-to-view; bound to the namespace's SA group.
    env.admin_create(
        &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "everyone-views"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": format!("system:serviceaccounts:{ns}")}]}),
    )
    .await;
    until_status(&viewer, Method::GET, &pods, StatusCode::OK).await;
    let secrets = raw_json(
        &viewer,
        Method::GET,
        &format!("/api/v1/namespaces/{ns}/secrets"),
        None,
    )
    .await;
    assert_eq!(
        secrets.status,
        StatusCode::FORBIDDEN,
        "view does not read secrets"
    );
    let elsewhere = raw_json(
        &viewer,
        Method::GET,
        "/api/v1/namespaces/default/pods",
        None,
    )
    .await;
    assert_eq!(
        elsewhere.status,
        StatusCode::FORBIDDEN,
        "a RoleBinding is namespaced"
    );
    let delete = raw_json(&viewer, Method::DELETE, &format!("{pods}/x"), None).await;
    assert_eq!(delete.status, StatusCode::FORBIDDEN);
    env.finish().await;
}

#[tokio::test]
async fn a_binding_to_a_missing_role_names_it_in_the_denial() {
    let env = setup().await;
    let ns = env.namespace.clone();
    env.create_service_account("orphan").await;
    let orphan = env
        .client_as(Some(&env.token_for("orphan", None).await))
        .await;
    env.admin_create(
        &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings"),
        &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "to-ghost"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ghost"},
                "subjects": [sa_subject(&env, "orphan")]}),
    )
    .await;
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    let denied = eventually("the missing role is reported", || async {
        let answer = raw_json(&orphan, Method::GET, &path, None).await;
        answer.json["message"]
            .as_str()
            .is_some_and(|m| {
                m.ends_with("RBAC: role.rbac.authorization.k8s.io \"ghost\" not found")
            })
            .then_some(answer)
    })
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    env.finish().await;
}

#[tokio::test]
async fn access_reviews_and_token_review_answer_truthfully() {
    let env = setup().await;
    let ns = env.namespace.clone();
    env.create_service_account("asker").await;
    let uid = env.create_pod_as("asker-pod", "asker").await;
    let token = env.token_for("asker", Some(("asker-pod", &uid))).await;
    let asker = env.client_as(Some(&token)).await;
    grant(
        &env,
        "cm-reader",
        json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]),
        sa_subject(&env, "asker"),
    )
    .await;
    let ssar = |verb: &str, resource: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
               "spec": {"resourceAttributes": {"namespace": ns, "verb": verb, "resource": resource}}})
    };
    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    eventually("the grant shows in a SelfSubjectAccessReview", || async {
        let answer = raw_json(
            &asker,
            Method::POST,
            path,
            Some(&ssar("list", "configmaps")),
        )
        .await;
        (answer.json["status"]["allowed"] == true).then_some(())
    })
    .await;
    let denied = raw_json(
        &asker,
        Method::POST,
        path,
        Some(&ssar("delete", "configmaps")),
    )
    .await;
    assert_eq!(denied.status, StatusCode::CREATED);
    assert_eq!(denied.json["status"]["allowed"], false);
    // SubjectAccessReview (admin asking about the ServiceAccount).
    let sar = raw_json(
        &env.client,
        Method::POST,
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        Some(&json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": format!("system:serviceaccount:{ns}:asker"),
                     "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}"), "system:authenticated"],
                     "resourceAttributes": {"namespace": ns, "verb": "get", "resource": "configmaps"}}})),
    )
    .await;
    assert_eq!(sar.json["status"]["allowed"], true, "{}", sar.text);
    let sar_secrets = raw_json(
        &env.client,
        Method::POST,
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        Some(&json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": format!("system:serviceaccount:{ns}:asker"),
                     "resourceAttributes": {"namespace": ns, "verb": "get", "resource": "secrets"}}})),
    )
    .await;
    assert_eq!(sar_secrets.json["status"]["allowed"], false);
    // SelfSubjectRulesReview lists the granted rule.
    let rules = raw_json(
        &asker,
        Method::POST,
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
        Some(&json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": {"namespace": ns}})),
    )
    .await;
    let granted = rules.json["status"]["resourceRules"]
        .as_array()
        .expect("resourceRules")
        .iter()
        .any(|r| r["resources"] == json!(["configmaps"]) && r["verbs"] == json!(["get", "list"]));
    assert!(granted, "{}", rules.text);
    // TokenReview (the admin may create them) sees the pod binding.
    let reviewed = raw_json(
        &env.client,
        Method::POST,
        "/apis/authentication.k8s.io/v1/tokenreviews",
        Some(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}})),
    )
    .await;
    assert_eq!(
        reviewed.json["status"]["authenticated"], true,
        "{}",
        reviewed.text
    );
    assert_eq!(
        reviewed.json["status"]["user"]["extra"]["authentication.kubernetes.io/pod-name"],
        json!(["asker-pod"])
    );
    let bogus = raw_json(
        &env.client,
        Method::POST,
        "/apis/authentication.k8s.io/v1/tokenreviews",
        Some(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "not-a-token"}})),
    )
    .await;
    assert_ne!(bogus.json["status"]["authenticated"], true);
    // The ServiceAccount itself may not review tokens (no system:auth-delegator).
    let forbidden = raw_json(
        &asker,
        Method::POST,
        "/apis/authentication.k8s.io/v1/tokenreviews",
        Some(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "x"}})),
    )
    .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    env.finish().await;
}

#[tokio::test]
async fn nobody_grants_through_rbac_what_they_do_not_hold() {
    let env = setup().await;
    let ns = env.namespace.clone();
    env.create_service_account("granter").await;
    let granter = env
        .client_as(Some(&env.token_for("granter", None).await))
        .await;
    grant(
        &env,
        "role-writer",
        json!([
            {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}
        ]),
        sa_subject(&env, "granter"),
    )
    .await;
    let roles = format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles");
    let role = |name: &str, verbs: Value| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name},
               "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": verbs}]})
    };
    let held = eventually("the grant is in force", || async {
        let answer = raw_json(
            &granter,
            Method::POST,
            &roles,
            Some(&role("reads", json!(["get"]))),
        )
        .await;
        (answer.status == StatusCode::CREATED).then_some(answer)
    })
    .await;
    assert_eq!(held.json["metadata"]["name"], "reads");
    let escalating = raw_json(
        &granter,
        Method::POST,
        &roles,
        Some(&role("deletes", json!(["get", "delete"]))),
    )
    .await;
    assert_eq!(
        escalating.status,
        StatusCode::FORBIDDEN,
        "{}",
        escalating.text
    );
    let message = escalating.json["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with(&format!(
            "roles.rbac.authorization.k8s.io \"deletes\" is forbidden: user \"system:serviceaccount:{ns}:granter\" (groups="
        )),
        "{message}"
    );
    assert!(
        message.contains("is attempting to grant RBAC permissions not currently held"),
        "{message}"
    );
    let bindings = format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings");
    let binding = |name: &str, kind: &str, role: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
               "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}]})
    };
    let to_admin = raw_json(
        &granter,
        Method::POST,
        &bindings,
        Some(&binding("to-admin", "ClusterRole", "admin")),
    )
    .await;
    assert_eq!(to_admin.status, StatusCode::FORBIDDEN, "{}", to_admin.text);
    let to_reads = raw_json(
        &granter,
        Method::POST,
        &bindings,
        Some(&binding("to-reads", "Role", "reads")),
    )
    .await;
    assert_eq!(to_reads.status, StatusCode::CREATED, "{}", to_reads.text);
    env.finish().await;
}

/// A client that authenticates with `token` (`None`: the admin identity of the target) and asks to
/// act as `user` in `groups` (`Impersonate-User` / `Impersonate-Group`, what `kubectl --as` sends).
async fn impersonating(env: &TestEnv, token: Option<&str>, user: &str, groups: &[&str]) -> Client {
    let mut config = match &env.emulator {
        Some(emulator) => {
            let yaml = match token {
                Some(token) => emulator.kubeconfig_yaml_with_token(Some(token)),
                None => emulator.kubeconfig_yaml(),
            };
            kube::Config::from_custom_kubeconfig(
                kube::config::Kubeconfig::from_yaml(&yaml).expect("kubeconfig"),
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .expect("config")
        }
        None => {
            let mut config = kube::Config::infer().await.expect("KUBECONFIG");
            if let Some(token) = token {
                config.auth_info = serde_json::from_value(json!({"token": token})).unwrap();
            }
            config
        }
    };
    config.auth_info.impersonate = Some(user.to_string());
    config.auth_info.impersonate_groups =
        (!groups.is_empty()).then(|| groups.iter().map(|g| g.to_string()).collect());
    Client::try_from(config).expect("client")
}

#[tokio::test]
async fn impersonation_needs_the_impersonate_verb_and_yields_that_identity() {
    let env = setup().await;
    let ns = env.namespace.clone();
    // The admin may impersonate anybody: the request runs as that user, authenticated.
    let alice = impersonating(&env, None, "alice@example.com", &["oncall"]).await;
    let review = who_am_i(&alice).await;
    assert_eq!(review.status, StatusCode::CREATED, "{}", review.text);
    let user = &review.json["status"]["userInfo"];
    assert_eq!(user["username"], "alice@example.com");
    assert_eq!(user["groups"], json!(["oncall", "system:authenticated"]));
    // And is authorized as that user: alice holds no rights here.
    let pods = raw_json(
        &alice,
        Method::GET,
        &format!("/api/v1/namespaces/{ns}/pods"),
        None,
    )
    .await;
    assert_eq!(pods.status, StatusCode::FORBIDDEN);
    assert_eq!(
        pods.json["message"],
        format!(
            "pods is forbidden: User \"alice@example.com\" cannot list resource \"pods\" in API group \"\" in the namespace \"{ns}\""
        )
    );

    // A ServiceAccount without the verb is refused, naming what it may not impersonate.
    env.create_service_account("mallory").await;
    let token = env.token_for("mallory", None).await;
    let sa = format!("system:serviceaccount:{ns}:mallory");
    let mallory = impersonating(&env, Some(&token), "alice@example.com", &[]).await;
    let refused = who_am_i(&mallory).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert_eq!(
        refused.json["message"],
        format!(
            "users \"alice@example.com\" is forbidden: User \"{sa}\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
        )
    );
    env.finish().await;
}

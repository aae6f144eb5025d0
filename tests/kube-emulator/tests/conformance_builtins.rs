//! Conformance: built-in subresources and kinds with behaviour of their own — TokenRequest,
//! access reviews, pod binding and graceful deletion, scale, events in both APIs, tables
//! for pods, and protobuf request bodies from typed clients.

mod common;

use common::{eventually, setup};
use http::{Method, StatusCode};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Node, Pod, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn token_requests_return_a_token_with_expiry() {
    let env = setup().await;
    let accounts: Api<ServiceAccount> = Api::namespaced(env.client.clone(), &env.namespace);
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "robot"}})).unwrap();
    accounts
        .create(&PostParams::default(), &account)
        .await
        .unwrap();
    let request: TokenRequest =
        serde_json::from_value(json!({"spec": {"audiences": ["api"], "expirationSeconds": 3600}}))
            .unwrap();
    let issued = accounts
        .create_token_request("robot", &PostParams::default(), &request)
        .await
        .unwrap();
    let status = issued.status.expect("status");
    assert_eq!(
        status.token.as_deref().unwrap_or("").split('.').count(),
        3,
        "a JWT"
    );
    assert!(status.expiration_timestamp.expect("expiry").0 > jiff::Timestamp::now());
    let missing = accounts
        .create_token_request("nobody", &PostParams::default(), &request)
        .await
        .unwrap_err();
    assert_eq!(common::api_status(missing).code, 404);
    env.finish().await;
}

#[tokio::test]
async fn self_subject_access_reviews_are_answered() {
    let env = setup().await;
    let reviews: Api<SelfSubjectAccessReview> = Api::all(env.client.clone());
    let review: SelfSubjectAccessReview =
        serde_json::from_value(json!({"spec": {"resourceAttributes": {
        "namespace": env.namespace, "verb": "list", "resource": "pods"}}}))
        .unwrap();
    let answered = reviews
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    assert!(answered.status.expect("status").allowed);
    env.finish().await;
}

#[tokio::test]
async fn events_recorded_through_events_v1_are_listed_as_core_events() {
    let env = setup().await;
    let events: Api<Event> = Api::namespaced(env.client.clone(), &env.namespace);
    let event: Event = serde_json::from_value(json!({
        "metadata": {"name": "incident.1"},
        "eventTime": "2025-01-01T00:00:00.000000Z",
        "reportingController": "example.com/controller",
        "reportingInstance": "controller-0",
        "action": "Reconcile",
        "reason": "Started",
        "type": "Normal",
        "note": "agent started",
        "regarding": {"apiVersion": "v1", "kind": "ConfigMap", "name": "subject", "namespace": env.namespace, "uid": "1234"}
    }))
    .unwrap();
    events.create(&PostParams::default(), &event).await.unwrap();
    let core: Api<CoreEvent> = Api::namespaced(env.client.clone(), &env.namespace);
    let selector = format!(
        "involvedObject.name=subject,involvedObject.namespace={},involvedObject.kind=ConfigMap",
        env.namespace
    );
    let listed = core
        .list(&ListParams::default().fields(&selector))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let item = &listed.items[0];
    assert_eq!(item.message.as_deref(), Some("agent started"));
    assert_eq!(item.reason.as_deref(), Some("Started"));
    assert_eq!(item.involved_object.name.as_deref(), Some("subject"));
    let back = events.get("incident.1").await.unwrap();
    assert_eq!(back.note.as_deref(), Some("agent started"));
    env.finish().await;
}

#[tokio::test]
async fn pod_tables_have_the_usual_columns() {
    let env = setup().await;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.namespace);
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"schedulerName": "conformance-unscheduled", "containers": [{"name": "c", "image": "busybox"}]}})).unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let path = format!("/api/v1/namespaces/{}/pods", env.namespace);
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let table = env
        .raw_with_accept(Method::GET, &path, None, Some(accept), Vec::new())
        .await;
    assert_eq!(table.json["kind"], "Table");
    let columns: Vec<(String, i64)> = table.json["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["priority"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let default_columns: Vec<&str> = columns
        .iter()
        .filter(|(_, p)| *p == 0)
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        default_columns,
        vec!["Name", "Ready", "Status", "Restarts", "Age"]
    );
    let cells = &table.json["rows"][0]["cells"];
    assert_eq!(cells[0], "p");
    assert_eq!(cells[1], "0/1");
    assert_eq!(cells[2], "Pending");
    let single = env
        .raw_with_accept(
            Method::GET,
            &format!("{path}/p"),
            None,
            Some(accept),
            Vec::new(),
        )
        .await;
    assert_eq!(single.json["rows"].as_array().map(Vec::len), Some(1));
    env.finish().await;
}

#[tokio::test]
async fn binding_assigns_a_node_and_bound_pods_terminate_gracefully() {
    let env = setup().await;
    let nodes: Api<Node> = Api::all(env.client.clone());
    let node_name = env.unique("node");
    let node: Node = serde_json::from_value(json!({"metadata": {"name": node_name}})).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.namespace);
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"schedulerName": "conformance-unscheduled", "containers": [{"name": "c", "image": "busybox"}]}})).unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"apiVersion": "v1", "kind": "Node", "name": node_name}});
    let path = format!("/api/v1/namespaces/{}/pods/p/binding", env.namespace);
    let response = env
        .send_json(Method::POST, &path, "application/json", &binding)
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    let bound = pods.get("p").await.unwrap();
    assert_eq!(
        bound.spec.unwrap().node_name.as_deref(),
        Some(node_name.as_str())
    );
    pods.delete("p", &DeleteParams::default()).await.unwrap();
    let terminating = pods
        .get("p")
        .await
        .expect("kept until its kubelet confirms");
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(30));
    pods.delete(
        "p",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        },
    )
    .await
    .unwrap();
    eventually("pod gone", || async {
        pods.get_opt("p").await.unwrap().is_none().then_some(())
    })
    .await;
    nodes
        .delete(&node_name, &DeleteParams::default())
        .await
        .unwrap();
    env.finish().await;
}

#[tokio::test]
async fn deployments_scale_through_the_scale_subresource() {
    let env = setup().await;
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &env.namespace);
    let deployment: Deployment = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}))
    .unwrap();
    let created = deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    assert_eq!(
        created.spec.as_ref().and_then(|s| s.replicas),
        Some(1),
        "defaulted"
    );
    let scale = deployments.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(1));
    let patched = deployments
        .patch_scale(
            "web",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.and_then(|s| s.replicas), Some(3));
    assert_eq!(
        deployments.get("web").await.unwrap().spec.unwrap().replicas,
        Some(3)
    );
    env.finish().await;
}

#[tokio::test]
async fn deployment_selectors_must_match_their_template() {
    let env = setup().await;
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &env.namespace);
    let deployment: Deployment = serde_json::from_value(json!({"metadata": {"name": "bad"}, "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "other"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}))
    .unwrap();
    let status = common::api_status(
        deployments
            .create(&PostParams::default(), &deployment)
            .await
            .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status
            .details
            .unwrap()
            .causes
            .iter()
            .any(|c| c.field == "spec.template.metadata.labels")
    );
    env.finish().await;
}

#[tokio::test]
async fn deployments_roll_out_replica_sets_and_pods() {
    use k8s_openapi::api::apps::v1::ReplicaSet;
    let env = setup().await;
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &env.namespace);
    let deployment: Deployment =
        serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
            "schedulerName": "conformance-unscheduled",
            "containers": [{"name": "c", "image": "nginx:1.25"}]}}}}))
        .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let sets: Api<ReplicaSet> = Api::namespaced(env.client.clone(), &env.namespace);
    let set = eventually("a ReplicaSet owned by the Deployment", || async {
        sets.list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items
            .into_iter()
            .next()
    })
    .await;
    let hash = set
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("pod-template-hash"))
        .cloned()
        .expect("pod-template-hash label");
    assert!(
        set.metadata
            .owner_references
            .unwrap()
            .iter()
            .any(|r| r.kind == "Deployment" && r.controller == Some(true))
    );
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.namespace);
    let created = eventually("two pods", || async {
        let list = pods
            .list(&ListParams::default().labels(&format!("app=web,pod-template-hash={hash}")))
            .await
            .unwrap();
        (list.items.len() == 2).then_some(list.items)
    })
    .await;
    for pod in &created {
        let name = pod.metadata.name.clone().unwrap();
        let ready = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        pods.patch_status(
            &name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(ready),
        )
        .await
        .unwrap();
    }
    if common::target() == common::Target::Emulator {
        let rolled = eventually("deployment available", || async {
            let status = deployments.get("web").await.unwrap().status?;
            (status.available_replicas == Some(2) && status.updated_replicas == Some(2))
                .then_some(status)
        })
        .await;
        assert!(
            rolled
                .conditions
                .unwrap()
                .iter()
                .any(|c| c.type_ == "Available" && c.status == "True")
        );
    }
    deployments
        .delete("web", &DeleteParams::background())
        .await
        .unwrap();
    eventually("pods collected with the deployment", || async {
        pods.list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items
            .is_empty()
            .then_some(())
    })
    .await;
    env.finish().await;
}

#[tokio::test]
async fn every_namespace_gets_the_root_ca_config_map_back_after_a_delete() {
    use k8s_openapi::api::core::v1::ConfigMap;
    let env = setup().await;
    // kube-controller-manager's root-CA publisher: a fresh namespace is never empty.
    let ca = common::wait_for_root_ca(&env).await;
    assert!(
        ca.starts_with("-----BEGIN CERTIFICATE-----")
            && ca.trim_end().ends_with("-----END CERTIFICATE-----"),
        "{ca}"
    );
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    maps.delete("kube-root-ca.crt", &DeleteParams::default())
        .await
        .unwrap();
    let again = common::wait_for_root_ca(&env).await;
    assert_eq!(again, ca, "the publisher puts the same CA back");
    // The same CA in every namespace, the initial ones too.
    let in_default: ConfigMap = Api::namespaced(env.client.clone(), "default")
        .get("kube-root-ca.crt")
        .await
        .unwrap();
    assert_eq!(in_default.data.unwrap().get("ca.crt"), Some(&ca));
    env.finish().await;
}

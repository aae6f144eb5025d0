//! Conformance: object metadata, optimistic concurrency, patches, selectors, pagination,
//! dry run and the special behaviour of built-in kinds.

mod common;

use common::{api_status, install_widgets, remove_crd, setup};
use http::{Method, StatusCode};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use kube::Api;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

fn config_map(name: &str, labels: Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}),
    )
    .unwrap()
}

fn widgets(env: &common::TestEnv, group: &str) -> Api<DynamicObject> {
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", "Widget"), "widgets");
    Api::namespaced_with(env.client.clone(), &env.namespace, &resource)
}

fn widget(group: &str, name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({"apiVersion": format!("{group}/v1"), "kind": "Widget", "metadata": {"name": name}, "spec": spec})).unwrap()
}

#[tokio::test]
async fn create_sets_uid_creation_timestamp_and_increasing_resource_versions() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let first = maps
        .create(&PostParams::default(), &config_map("a", json!({})))
        .await
        .unwrap();
    let second = maps
        .create(&PostParams::default(), &config_map("b", json!({})))
        .await
        .unwrap();
    assert!(first.metadata.uid.as_deref().is_some_and(|u| !u.is_empty()));
    assert_ne!(first.metadata.uid, second.metadata.uid);
    assert!(first.metadata.creation_timestamp.is_some());
    let rv = |m: &ConfigMap| {
        m.metadata
            .resource_version
            .clone()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert!(rv(&second) > rv(&first));
    let list = maps.list(&ListParams::default()).await.unwrap();
    let list_rv: u64 = list.metadata.resource_version.unwrap().parse().unwrap();
    assert!(list_rv >= rv(&second));
    env.finish().await;
}

#[tokio::test]
async fn generate_name_makes_a_unique_name() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let template: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
    let a = maps
        .create(&PostParams::default(), &template)
        .await
        .unwrap();
    let b = maps
        .create(&PostParams::default(), &template)
        .await
        .unwrap();
    let (a, b) = (a.metadata.name.unwrap(), b.metadata.name.unwrap());
    assert!(a.starts_with("gen-") && a.len() > 4, "{a}");
    assert_ne!(a, b);
    let nameless: ConfigMap = serde_json::from_value(json!({"metadata": {}})).unwrap();
    let status = api_status(
        maps.create(&PostParams::default(), &nameless)
            .await
            .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    env.finish().await;
}

#[tokio::test]
async fn stale_resource_version_conflicts_and_missing_one_is_unconditional() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let created = maps
        .create(&PostParams::default(), &config_map("cm", json!({})))
        .await
        .unwrap();
    let mut first = created.clone();
    first.data = Some([("k".to_string(), "one".to_string())].into());
    maps.replace("cm", &PostParams::default(), &first)
        .await
        .unwrap();
    let mut stale = created.clone();
    stale.data = Some([("k".to_string(), "two".to_string())].into());
    let status = api_status(
        maps.replace("cm", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        status.message,
        "Operation cannot be fulfilled on configmaps \"cm\": the object has been modified; please apply your changes to the latest version and try again"
    );
    stale.metadata.resource_version = None;
    let replaced = maps
        .replace("cm", &PostParams::default(), &stale)
        .await
        .unwrap();
    assert_eq!(replaced.data.unwrap()["k"], "two");
    env.finish().await;
}

#[tokio::test]
async fn generation_bumps_only_on_spec_changes() {
    let env = setup().await;
    let group = install_widgets(&env).await;
    let api = widgets(&env, &group);
    let created = api
        .create(
            &PostParams::default(),
            &widget(&group, "w", json!({"color": "red"})),
        )
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let labelled = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(1));
    let status = api
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}})),
        )
        .await
        .unwrap();
    assert_eq!(status.metadata.generation, Some(1));
    let respec = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(respec.metadata.generation, Some(2));
    remove_crd(&env, &format!("widgets.{group}")).await;
    env.finish().await;
}

#[tokio::test]
async fn status_subresource_separates_spec_and_status_writes() {
    let env = setup().await;
    let group = install_widgets(&env).await;
    let api = widgets(&env, &group);
    let mut object = widget(&group, "w", json!({"color": "red"}));
    object.data["status"] = json!({"phase": "Ignored"});
    let created = api.create(&PostParams::default(), &object).await.unwrap();
    assert!(
        created.data.get("status").is_none(),
        "status is dropped on create: {:?}",
        created.data
    );
    let main = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"color": "green"}, "status": {"phase": "Nope"}})),
        )
        .await
        .unwrap();
    assert_eq!(main.data["spec"]["color"], "green");
    assert!(main.data.get("status").is_none());
    let status = api
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"color": "red"}, "status": {"phase": "Ready"}})),
        )
        .await
        .unwrap();
    assert_eq!(status.data["status"]["phase"], "Ready");
    assert_eq!(
        status.data["spec"]["color"], "green",
        "the status subresource ignores spec"
    );
    remove_crd(&env, &format!("widgets.{group}")).await;
    env.finish().await;
}

#[tokio::test]
async fn merge_patch_and_json_patch() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    maps.create(&PostParams::default(), &config_map("cm", json!({"a": "1"})))
        .await
        .unwrap();
    let merged = maps
        .patch(
            "cm",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": null, "n": "new"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        merged.data.unwrap(),
        [("n".to_string(), "new".to_string())].into()
    );
    let path = format!("/api/v1/namespaces/{}/configmaps/cm", env.namespace);
    let ops = json!([{"op": "add", "path": "/data/x", "value": "y"}, {"op": "remove", "path": "/metadata/labels/a"}]);
    let response = env
        .send_json(Method::PATCH, &path, "application/json-patch+json", &ops)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(response.json["data"]["x"], "y");
    assert!(
        response.json["metadata"]
            .get("labels")
            .is_none_or(|l| l.get("a").is_none())
    );
    let failing = json!([{"op": "test", "path": "/data/x", "value": "not-y"}]);
    let response = env
        .send_json(
            Method::PATCH,
            &path,
            "application/json-patch+json",
            &failing,
        )
        .await;
    assert!(response.status.is_client_error(), "{}", response.status);
    env.finish().await;
}

#[tokio::test]
async fn strategic_merge_patch_merges_containers_and_env_by_name() {
    let env = setup().await;
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &env.namespace);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [
                {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
                {"name": "sidecar", "image": "side:1"}
            ]}}}
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "2"}]},
        {"name": "sidecar", "$patch": "delete"}
    ]}}}});
    let patched = deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
    let containers = patched.spec.unwrap().template.spec.unwrap().containers;
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0].image.as_deref(), Some("app:2"));
    let env_names = |container: &k8s_openapi::api::core::v1::Container| -> Vec<String> {
        let env = container.env.clone().unwrap_or_default();
        env.into_iter().map(|e| e.name).collect()
    };
    // apimachinery's normalizeElementOrder: an item new to the list goes before the live ones.
    assert_eq!(env_names(&containers[0]), vec!["B", "A"]);
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "env": [{"name": "C", "value": "3"}]}
    ]}}}});
    let patched = deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
    let containers = patched.spec.unwrap().template.spec.unwrap().containers;
    assert_eq!(env_names(&containers[0]), vec!["C", "B", "A"]);
    env.finish().await;
}

#[tokio::test]
async fn strategic_merge_patch_is_unsupported_for_custom_resources() {
    let env = setup().await;
    let group = install_widgets(&env).await;
    let api = widgets(&env, &group);
    api.create(
        &PostParams::default(),
        &widget(&group, "w", json!({"color": "red"})),
    )
    .await
    .unwrap();
    let status = api_status(
        api.patch(
            "w",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"color": "green"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        (status.code, status.reason.as_str()),
        (415, "UnsupportedMediaType")
    );
    remove_crd(&env, &format!("widgets.{group}")).await;
    env.finish().await;
}

#[tokio::test]
async fn label_selectors_support_every_operator() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    for (name, labels) in [
        ("a", json!({"set": "ops", "app": "web", "tier": "front"})),
        ("b", json!({"set": "ops", "app": "web", "tier": "back"})),
        ("c", json!({"set": "ops", "app": "db"})),
    ] {
        maps.create(&PostParams::default(), &config_map(name, labels))
            .await
            .unwrap();
    }
    // No namespace is empty (kube-root-ca.crt is in every one): `set=ops` keeps the negative
    // selectors to this test's objects.
    let names = |selector: &'static str| {
        let maps = maps.clone();
        async move {
            let mut names: Vec<String> = maps
                .list(&ListParams::default().labels(&format!("set=ops,{selector}")))
                .await
                .unwrap()
                .items
                .into_iter()
                .filter_map(|m| m.metadata.name)
                .collect();
            names.sort();
            names
        }
    };
    assert_eq!(names("app=web").await, vec!["a", "b"]);
    assert_eq!(names("app==db").await, vec!["c"]);
    assert_eq!(names("app!=web").await, vec!["c"]);
    assert_eq!(names("tier in (front,side)").await, vec!["a"]);
    assert_eq!(names("tier notin (front)").await, vec!["b", "c"]);
    assert_eq!(names("tier").await, vec!["a", "b"]);
    assert_eq!(names("!tier").await, vec!["c"]);
    assert_eq!(names("app=web,tier=back").await, vec!["b"]);
    env.finish().await;
}

#[tokio::test]
async fn field_selectors_on_names_pod_phase_and_crd_selectable_fields() {
    let env = setup().await;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.namespace);
    for name in ["p1", "p2"] {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"schedulerName": "conformance-unscheduled", "containers": [{"name": "c", "image": "busybox"}]}})).unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    let by_name = pods
        .list(&ListParams::default().fields("metadata.name=p2"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let pending = pods
        .list(&ListParams::default().fields("status.phase=Pending,spec.nodeName="))
        .await
        .unwrap();
    assert_eq!(pending.items.len(), 2);
    let not_p1 = pods
        .list(&ListParams::default().fields("metadata.name!=p1"))
        .await
        .unwrap();
    assert_eq!(not_p1.items.len(), 1);
    let status = api_status(
        pods.list(&ListParams::default().fields("spec.bogus=x"))
            .await
            .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (400, "BadRequest"));
    let group = install_widgets(&env).await;
    let api = widgets(&env, &group);
    api.create(
        &PostParams::default(),
        &widget(&group, "r", json!({"color": "red"})),
    )
    .await
    .unwrap();
    api.create(
        &PostParams::default(),
        &widget(&group, "g", json!({"color": "green"})),
    )
    .await
    .unwrap();
    let green = api
        .list(&ListParams::default().fields("spec.color=green"))
        .await
        .unwrap();
    assert_eq!(
        green
            .items
            .iter()
            .filter_map(|w| w.metadata.name.clone())
            .collect::<Vec<_>>(),
        vec!["g"]
    );
    remove_crd(&env, &format!("widgets.{group}")).await;
    env.finish().await;
}

#[tokio::test]
async fn lists_paginate_with_limit_and_continue() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    for i in 0..5 {
        maps.create(
            &PostParams::default(),
            &config_map(&format!("page-{i}"), json!({"page": "yes"})),
        )
        .await
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut params = ListParams::default().labels("page=yes").limit(2);
    let mut pages = 0;
    loop {
        let page = maps.list(&params).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().filter_map(|m| m.metadata.name));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => {
                // With a selector the server cannot know how many of the rest match.
                assert_eq!(page.metadata.remaining_item_count, None);
                params = params.continue_token(&token);
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    seen.sort();
    assert_eq!(
        seen,
        (0..5).map(|i| format!("page-{i}")).collect::<Vec<_>>()
    );
    // Without a selector a page counts what is left (the namespace's kube-root-ca.crt too, so
    // wait for it: on a real cluster the publisher adds it shortly after the namespace).
    common::wait_for_root_ca(&env).await;
    let total = maps.list(&ListParams::default()).await.unwrap().items.len();
    let page = maps.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.metadata.remaining_item_count, Some((total - 2) as i64));
    env.finish().await;
}

#[tokio::test]
async fn dry_run_validates_without_persisting() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let answered = maps
        .create(&params, &config_map("dry", json!({})))
        .await
        .unwrap();
    assert_eq!(answered.metadata.name.as_deref(), Some("dry"));
    assert!(maps.get_opt("dry").await.unwrap().is_none());
    let invalid = config_map("Not_Valid", json!({}));
    let status = api_status(maps.create(&params, &invalid).await.unwrap_err());
    assert_eq!(status.code, 422);
    env.finish().await;
}

#[tokio::test]
async fn pods_start_pending_with_defaults_and_an_immutable_spec() {
    let env = setup().await;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &env.namespace);
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {"schedulerName": "conformance-unscheduled", "containers": [{"name": "c", "image": "busybox:1.36"}]}})).unwrap();
    let created = pods.create(&PostParams::default(), &pod).await.unwrap();
    assert_eq!(
        created.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Pending")
    );
    let spec = created.spec.clone().unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(spec.service_account_name.as_deref(), Some("default"));
    assert_eq!(
        spec.containers[0].image_pull_policy.as_deref(),
        Some("IfNotPresent")
    );
    let image = pods
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Strategic(
                json!({"spec": {"containers": [{"name": "c", "image": "busybox:1.37"}]}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        image.spec.unwrap().containers[0].image.as_deref(),
        Some("busybox:1.37")
    );
    let status = api_status(
        pods.patch(
            "p",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"containers": [{"name": "c", "args": ["x"]}]}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status.message.contains("pod updates may not change fields"),
        "{}",
        status.message
    );
    let empty: Pod =
        serde_json::from_value(json!({"metadata": {"name": "empty"}, "spec": {"containers": []}}))
            .unwrap();
    let status = api_status(
        pods.create(&PostParams::default(), &empty)
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 422);
    env.finish().await;
}

#[tokio::test]
async fn services_get_a_cluster_ip_that_survives_updates() {
    let env = setup().await;
    let services: Api<Service> = Api::namespaced(env.client.clone(), &env.namespace);
    let service: Service = serde_json::from_value(json!({"metadata": {"name": "svc"}, "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}})).unwrap();
    let created = services
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    let spec = created.spec.unwrap();
    let ip = spec.cluster_ip.clone().expect("clusterIP");
    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{ip}");
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(spec.ports.unwrap()[0].protocol.as_deref(), Some("TCP"));
    let patched = services
        .patch(
            "svc",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"selector": {"app": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.unwrap().cluster_ip, Some(ip));
    env.finish().await;
}

#[tokio::test]
async fn secret_string_data_is_stored_base64_encoded_in_data() {
    let env = setup().await;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &env.namespace);
    let secret: Secret = serde_json::from_value(
        json!({"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}}),
    )
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let stored = secrets.get("s").await.unwrap();
    assert!(stored.string_data.is_none());
    assert_eq!(stored.data.unwrap()["password"].0, b"hunter2".to_vec());
    assert_eq!(stored.type_.as_deref(), Some("Opaque"));
    env.finish().await;
}

#[tokio::test]
async fn label_values_are_validated() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let status = api_status(
        maps.create(
            &PostParams::default(),
            &config_map("bad", json!({"k": "not ok!"})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    let cause = &status.details.unwrap().causes[0];
    assert_eq!(cause.field, "metadata.labels");
    env.finish().await;
}

#[tokio::test]
async fn yaml_bodies_are_accepted_for_create() {
    let env = setup().await;
    let path = format!("/api/v1/namespaces/{}/configmaps", env.namespace);
    let yaml =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  answer: \"42\"\n";
    let response = env
        .raw(
            Method::POST,
            &path,
            Some("application/yaml"),
            yaml.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    assert_eq!(response.json["data"]["answer"], "42");
    env.finish().await;
}

//! Conformance: discovery, OpenAPI, health, and the Status objects of failing requests.

mod common;

use common::{api_status, eventually, install_incident_crd, setup};
use http::{Method, StatusCode};
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, discovery::Discovery};
use serde_json::json;

#[tokio::test]
async fn version_and_health_endpoints_answer() {
    let env = setup().await;
    let version = env.client.apiserver_version().await.expect("version");
    assert_eq!(version.major, "1");
    assert!(
        version.git_version.starts_with("v1."),
        "{}",
        version.git_version
    );
    for path in ["/healthz", "/readyz", "/livez"] {
        let response = env.get_json(path).await;
        assert_eq!(response.status, StatusCode::OK, "{path}");
        assert_eq!(response.text, "ok");
    }
    env.finish().await;
}

#[tokio::test]
async fn legacy_discovery_lists_resources_verbs_and_subresources() {
    let env = setup().await;
    let core = env
        .client
        .list_core_api_resources("v1")
        .await
        .expect("core resources");
    let pods = core
        .resources
        .iter()
        .find(|r| r.name == "pods")
        .expect("pods");
    assert!(pods.namespaced);
    assert_eq!(pods.kind, "Pod");
    assert!(pods.verbs.iter().any(|v| v == "watch"));
    assert_eq!(pods.short_names.as_deref(), Some(&["po".to_string()][..]));
    let status = core
        .resources
        .iter()
        .find(|r| r.name == "pods/status")
        .expect("pods/status");
    assert_eq!(status.verbs, vec!["get", "patch", "update"]);
    let token = core
        .resources
        .iter()
        .find(|r| r.name == "serviceaccounts/token")
        .expect("serviceaccounts/token");
    assert_eq!(token.kind, "TokenRequest");
    let groups = env.client.list_api_groups().await.expect("groups");
    for group in [
        "apps",
        "coordination.k8s.io",
        "rbac.authorization.k8s.io",
        "apiextensions.k8s.io",
        "events.k8s.io",
    ] {
        assert!(
            groups.groups.iter().any(|g| g.name == group),
            "{group} is served"
        );
    }
    let apps = env
        .client
        .list_api_group_resources("apps/v1")
        .await
        .expect("apps/v1");
    let deployments = apps
        .resources
        .iter()
        .find(|r| r.name == "deployments")
        .expect("deployments");
    assert!(
        deployments
            .categories
            .as_ref()
            .is_some_and(|c| c.iter().any(|c| c == "all"))
    );
    env.finish().await;
}

#[tokio::test]
async fn aggregated_discovery_is_served_when_asked_for() {
    let env = setup().await;
    let accept =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let response = env
        .raw_with_accept(Method::GET, "/apis", None, Some(accept), Vec::new())
        .await;
    assert_eq!(response.status, StatusCode::OK);
    let content_type = response
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        content_type.contains("as=APIGroupDiscoveryList"),
        "{content_type}"
    );
    assert_eq!(response.json["kind"], "APIGroupDiscoveryList");
    let apps = response.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["metadata"]["name"] == "apps")
        .expect("apps");
    let deployments = apps["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "deployments")
        .unwrap();
    assert_eq!(deployments["scope"], "Namespaced");
    assert_eq!(deployments["responseKind"]["kind"], "Deployment");
    let core = env
        .raw_with_accept(Method::GET, "/api", None, Some(accept), Vec::new())
        .await;
    let versions = &core.json["items"][0]["versions"][0];
    assert_eq!(versions["version"], "v1");
    assert!(
        versions["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["resource"] == "pods")
    );
    env.finish().await;
}

#[tokio::test]
async fn kube_discovery_finds_a_new_crd_with_its_short_names() {
    let env = setup().await;
    install_incident_crd(&env).await;
    let discovery = Discovery::new(env.client.clone())
        .run()
        .await
        .expect("discovery");
    let (resource, capabilities) = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(r, _)| r.kind == "Incident")
        .expect("Incident discovered");
    assert_eq!(resource.plural, "incidents");
    assert_eq!(resource.group, "sre.agentlab.dev");
    assert!(
        capabilities.supports_operation("watch"),
        "{:?}",
        capabilities.operations
    );
    assert!(
        capabilities
            .subresources
            .iter()
            .any(|(sub, _)| sub.plural.ends_with("status")),
        "status subresource discovered"
    );
    let list = env
        .client
        .list_api_group_resources("sre.agentlab.dev/v1alpha1")
        .await
        .expect("group resources");
    let incidents = list
        .resources
        .iter()
        .find(|r| r.name == "incidents")
        .expect("incidents");
    assert_eq!(
        incidents.short_names.as_deref(),
        Some(&["inc".to_string()][..])
    );
    assert!(list.resources.iter().any(|r| r.name == "incidents/status"));
    env.finish().await;
}

#[tokio::test]
async fn openapi_v3_advertises_field_validation_for_patch() {
    let env = setup().await;
    let root = env.get_json("/openapi/v3").await;
    assert_eq!(root.status, StatusCode::OK);
    let url = root.json["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .expect("apps/v1 document")
        .to_string();
    let document = env.get_json(&url).await;
    assert_eq!(document.status, StatusCode::OK);
    let patch = document.json["paths"]
        .as_object()
        .unwrap()
        .values()
        .find_map(|p| {
            p.get("patch")
                .filter(|op| op["x-kubernetes-group-version-kind"]["kind"] == "Deployment")
        });
    let patch = patch.expect("a PATCH operation for Deployment");
    assert!(
        patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
    );
    env.finish().await;
}

#[tokio::test]
async fn unknown_paths_are_plain_404_and_unknown_builtin_resources_a_status() {
    let env = setup().await;
    // No API group serves these: Go's http.NotFound text, as the real not-found handler sends.
    for path in [
        "/apis/nope.example.com/v1/things",
        "/apis/nope.example.com",
        "/apis/apps/v9/deployments",
        "/definitely/not",
    ] {
        let response = env.get_json(path).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.text, "404 page not found\n", "{path}");
        let content_type = response.headers[http::header::CONTENT_TYPE]
            .to_str()
            .unwrap();
        assert!(
            content_type.starts_with("text/plain"),
            "{path}: {content_type}"
        );
    }
    // An unknown resource of a served built-in group/version: a Status object.
    for path in [
        "/api/v1/namespaces/default/nothings",
        "/apis/apps/v1/nothings",
    ] {
        let response = env.get_json(path).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(response.json["kind"], "Status", "{path}");
        assert_eq!(response.json["reason"], "NotFound", "{path}");
        assert_eq!(response.json["code"], 404, "{path}");
    }
    env.finish().await;
}

#[tokio::test]
async fn not_found_and_already_exists_follow_api_conventions() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let status = api_status(maps.get("missing").await.unwrap_err());
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    assert_eq!(status.message, "configmaps \"missing\" not found");
    let details = status.details.expect("details");
    assert_eq!(
        (details.name.as_str(), details.kind.as_str()),
        ("missing", "configmaps")
    );
    let map: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "twice"}})).unwrap();
    maps.create(&PostParams::default(), &map)
        .await
        .expect("first create");
    let status = api_status(maps.create(&PostParams::default(), &map).await.unwrap_err());
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );
    assert_eq!(status.message, "configmaps \"twice\" already exists");
    env.finish().await;
}

#[tokio::test]
async fn crd_not_found_message_names_the_qualified_resource() {
    let env = setup().await;
    install_incident_crd(&env).await;
    let path = format!(
        "/apis/sre.agentlab.dev/v1alpha1/namespaces/{}/incidents/x",
        env.namespace
    );
    let response = env.get_json(&path).await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert_eq!(
        response.json["message"],
        "incidents.sre.agentlab.dev \"x\" not found"
    );
    assert_eq!(response.json["details"]["group"], "sre.agentlab.dev");
    env.finish().await;
}

#[tokio::test]
async fn malformed_and_mismatched_bodies_are_bad_requests() {
    let env = setup().await;
    let collection = format!("/api/v1/namespaces/{}/configmaps", env.namespace);
    let broken = env
        .raw(
            Method::POST,
            &collection,
            Some("application/json"),
            b"{not json".to_vec(),
        )
        .await;
    assert_eq!(broken.status, StatusCode::BAD_REQUEST);
    assert_eq!(broken.json["reason"], "BadRequest");
    let wrong_version = json!({"apiVersion": "v2", "kind": "ConfigMap", "metadata": {"name": "a"}});
    let response = env
        .send_json(
            Method::POST,
            &collection,
            "application/json",
            &wrong_version,
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    let good = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
    assert_eq!(
        env.send_json(Method::POST, &collection, "application/json", &good)
            .await
            .status,
        StatusCode::CREATED
    );
    let renamed = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}});
    let response = env
        .send_json(
            Method::PUT,
            &format!("{collection}/a"),
            "application/json",
            &renamed,
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json["message"],
        "the name of the object (b) does not match the name on the URL (a)"
    );
    env.finish().await;
}

#[tokio::test]
async fn unsupported_media_type_and_method_not_allowed() {
    let env = setup().await;
    let collection = format!("/api/v1/namespaces/{}/configmaps", env.namespace);
    let response = env
        .raw(
            Method::POST,
            &collection,
            Some("text/plain"),
            b"hello".to_vec(),
        )
        .await;
    assert_eq!(response.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(response.json["reason"], "UnsupportedMediaType");
    let good = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
    env.send_json(Method::POST, &collection, "application/json", &good)
        .await;
    let patch = env
        .raw(
            Method::PATCH,
            &format!("{collection}/a"),
            Some("text/plain"),
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(patch.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let put_collection = env
        .send_json(Method::PUT, &collection, "application/json", &good)
        .await;
    assert_eq!(put_collection.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(put_collection.json["reason"], "MethodNotAllowed");
    env.finish().await;
}

#[tokio::test]
async fn creating_in_a_missing_namespace_is_not_found() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), "no-such-namespace-here");
    let map: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "a"}})).unwrap();
    let status = api_status(maps.create(&PostParams::default(), &map).await.unwrap_err());
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    assert_eq!(
        status.message,
        "namespaces \"no-such-namespace-here\" not found"
    );
    env.finish().await;
}

#[tokio::test]
async fn initial_namespaces_exist_and_new_namespaces_get_a_default_service_account() {
    let env = setup().await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client.clone());
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let namespace = namespaces.get(name).await.expect(name);
        assert_eq!(
            namespace.status.and_then(|s| s.phase).as_deref(),
            Some("Active")
        );
    }
    let accounts: Api<ServiceAccount> = Api::namespaced(env.client.clone(), &env.namespace);
    eventually("default ServiceAccount", || async {
        accounts.get_opt("default").await.ok().flatten()
    })
    .await;
    let labels = namespaces
        .get(&env.namespace)
        .await
        .unwrap()
        .metadata
        .labels
        .unwrap_or_default();
    assert_eq!(
        labels.get("kubernetes.io/metadata.name"),
        Some(&env.namespace)
    );
    env.finish().await;
}

//! Conformance: CustomResourceDefinitions — establishment, schema validation, pruning,
//! defaulting, CEL rules, field validation, printer columns and deletion.

mod common;

use common::{api_status, install_incident_crd, install_widgets, remove_crd, setup};
use http::{Method, StatusCode};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

fn widgets(env: &common::TestEnv, group: &str) -> Api<DynamicObject> {
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", "Widget"), "widgets");
    Api::namespaced_with(env.client.clone(), &env.namespace, &resource)
}

fn widget(group: &str, name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({"apiVersion": format!("{group}/v1"), "kind": "Widget", "metadata": {"name": name}, "spec": spec})).unwrap()
}

fn incident(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "sre.agentlab.dev/v1alpha1", "kind": "Incident", "metadata": {"name": name}, "spec": spec})
}

fn causes(status: &kube::core::Status) -> Vec<(String, String)> {
    status
        .details
        .as_ref()
        .map(|d| {
            d.causes
                .iter()
                .map(|c| (c.field.clone(), c.message.clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn created_crds_become_established_with_accepted_names() {
    let env = setup().await;
    install_incident_crd(&env).await;
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    let crd = crds.get("incidents.sre.agentlab.dev").await.unwrap();
    let status = crd.status.expect("status");
    let conditions = status.conditions.unwrap();
    for kind in ["Established", "NamesAccepted"] {
        assert!(
            conditions
                .iter()
                .any(|c| c.type_ == kind && c.status == "True"),
            "{kind}"
        );
    }
    let accepted = status.accepted_names.expect("acceptedNames");
    assert_eq!(accepted.kind, "Incident");
    assert_eq!(accepted.short_names, Some(vec!["inc".to_string()]));
    assert_eq!(status.stored_versions, Some(vec!["v1alpha1".to_string()]));
    env.finish().await;
}

#[tokio::test]
async fn enum_violations_are_invalid_with_the_servers_wording() {
    let env = setup().await;
    install_incident_crd(&env).await;
    let path = format!(
        "/apis/sre.agentlab.dev/v1alpha1/namespaces/{}/incidents",
        env.namespace
    );
    let body = incident("bad", json!({"title": "t", "severity": "urgent"}));
    let response = env
        .send_json(Method::POST, &path, "application/json", &body)
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(response.json["reason"], "Invalid");
    assert_eq!(response.json["details"]["kind"], "Incident");
    assert_eq!(response.json["details"]["group"], "sre.agentlab.dev");
    let cause = &response.json["details"]["causes"][0];
    assert_eq!(cause["field"], "spec.severity");
    assert_eq!(cause["reason"], "FieldValueNotSupported");
    let message = cause["message"].as_str().unwrap();
    assert!(
        message.starts_with("Unsupported value: \"urgent\": supported values: "),
        "{message}"
    );
    for value in ["\"critical\"", "\"warning\"", "\"info\""] {
        assert!(message.contains(value), "{message}");
    }
    // The Incident CRD has CEL rules, which an unsupported value keeps from running: a second,
    // fieldless cause says so, and the message lists both causes in brackets.
    let skipped = &response.json["details"]["causes"][1];
    assert_eq!(skipped["field"], "<nil>", "{}", response.text);
    assert_eq!(skipped["reason"], "FieldValueInvalid");
    let top = response.json["message"].as_str().unwrap();
    assert!(
        top.starts_with(
            "Incident.sre.agentlab.dev \"bad\" is invalid: [spec.severity: Unsupported value"
        ) && top.ends_with("correct the existing errors to complete validation]"),
        "{top}"
    );
    env.finish().await;
}

#[tokio::test]
async fn schema_constraints_produce_field_causes() {
    let env = setup().await;
    let group = install_widgets(&env).await;
    let api = widgets(&env, &group);
    let status = api_status(
        api.create(
            &PostParams::default(),
            &widget(
                &group,
                "w",
                json!({"size": 11, "name": "TooLongName", "tags": ["a", "b", "c"]}),
            ),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    let found = causes(&status);
    let fields: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
    for field in ["spec.color", "spec.size", "spec.name", "spec.tags"] {
        assert!(fields.contains(&field), "{field} in {found:?}");
    }
    let message_of = |field: &str| {
        found
            .iter()
            .filter(|(f, _)| f == field)
            .map(|(_, m)| m.clone())
            .collect::<Vec<_>>()
            .join(" | ")
    };
    assert_eq!(message_of("spec.color"), "Required value");
    assert!(
        message_of("spec.size").contains("should be less than or equal to 10"),
        "{}",
        message_of("spec.size")
    );
    // Too long is the string's only finding: the pattern is not checked after it.
    assert_eq!(
        message_of("spec.name"),
        "Too long: may not be more than 8 bytes"
    );
    assert!(
        message_of("spec.tags").contains("must have at most 2 items"),
        "{}",
        message_of("spec.tags")
    );
    // The widget CRD has a CEL rule; after a blocking error (Required, Too long, Too many…)
    // the server skips the rules and says so in a fieldless cause, last.
    assert_eq!(
        found.last().map(|(f, m)| (f.as_str(), m.as_str())),
        Some((
            "<nil>",
            "Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"
        )),
        "{found:?}"
    );
    let prefix = format!("Widget.{group} \"w\" is invalid: [");
    assert!(
        status.message.starts_with(&prefix) && status.message.ends_with(']'),
        "{}",
        status.message
    );
    let status = api_status(
        api.create(
            &PostParams::default(),
            &widget(&group, "w", json!({"color": "red", "size": "big"})),
        )
        .await
        .unwrap_err(),
    );
    assert!(
        causes_contains(&status, "spec.size", "must be of type integer"),
        "{:?}",
        causes(&status)
    );
    remove_crd(&env, &format!("widgets.{group}")).await;
    env.finish().await;
}

fn causes_contains(status: &kube::core::Status, field: &str, text: &str) -> bool {
    causes(status)
        .iter()
        .any(|(f, m)| f == field && m.contains(text))
}

#[tokio::test]
async fn unknown_fields_are_pruned_and_defaults_applied() {
    let env = setup().await;
    let group = install_widgets(&env).await;
    let api = widgets(&env, &group);
    let created = api
        .create(
            &PostParams::default(),
            &widget(
                &group,
                "w",
                json!({"color": "red", "bogus": 1, "extra": {"free": {"form": true}}}),
            ),
        )
        .await
        .unwrap();
    assert!(
        created.data["spec"].get("bogus").is_none(),
        "{}",
        created.data
    );
    assert_eq!(created.data["spec"]["size"], 3, "default applied");
    assert_eq!(
        created.data["spec"]["extra"]["free"]["form"], true,
        "preserve-unknown-fields keeps data"
    );
    remove_crd(&env, &format!("widgets.{group}")).await;
    env.finish().await;
}

#[tokio::test]
async fn strict_field_validation_rejects_unknown_fields_and_warn_reports_them() {
    let env = setup().await;
    let group = install_widgets(&env).await;
    let path = format!("/apis/{group}/v1/namespaces/{}/widgets", env.namespace);
    let body = json!({"apiVersion": format!("{group}/v1"), "kind": "Widget", "metadata": {"name": "w"}, "spec": {"color": "red", "bogus": 1}});
    let strict = env
        .send_json(
            Method::POST,
            &format!("{path}?fieldValidation=Strict"),
            "application/json",
            &body,
        )
        .await;
    assert_eq!(strict.status, StatusCode::BAD_REQUEST);
    assert!(
        strict.json["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"spec.bogus\""),
        "{}",
        strict.text
    );
    let warned = env
        .send_json(
            Method::POST,
            &format!("{path}?fieldValidation=Warn"),
            "application/json",
            &body,
        )
        .await;
    assert_eq!(warned.status, StatusCode::CREATED);
    let warning = warned
        .headers
        .get(http::header::WARNING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        warning.contains("unknown field \\\"spec.bogus\\\"")
            || warning.contains("unknown field \"spec.bogus\""),
        "{warning}"
    );
    remove_crd(&env, &format!("widgets.{group}")).await;
    env.finish().await;
}

#[tokio::test]
async fn cel_validation_rules_are_enforced() {
    let env = setup().await;
    install_incident_crd(&env).await;
    let path = format!(
        "/apis/sre.agentlab.dev/v1alpha1/namespaces/{}/incidents",
        env.namespace
    );
    let missing_alert = incident("am", json!({"title": "t", "source": "alertmanager"}));
    let response = env
        .send_json(Method::POST, &path, "application/json", &missing_alert)
        .await;
    assert_eq!(
        response.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        response.text
    );
    assert!(
        response
            .text
            .contains("spec.alert is required when spec.source is alertmanager"),
        "{}",
        response.text
    );
    let with_alert = incident(
        "am",
        json!({"title": "t", "source": "alertmanager", "alert": {"name": "HighErrorRate"}}),
    );
    let response = env
        .send_json(Method::POST, &path, "application/json", &with_alert)
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    env.finish().await;
}

#[tokio::test]
async fn table_output_uses_additional_printer_columns() {
    let env = setup().await;
    let group = install_widgets(&env).await;
    let api = widgets(&env, &group);
    api.create(
        &PostParams::default(),
        &widget(&group, "w", json!({"color": "green", "size": 7})),
    )
    .await
    .unwrap();
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let path = format!("/apis/{group}/v1/namespaces/{}/widgets", env.namespace);
    let response = env
        .raw_with_accept(Method::GET, &path, None, Some(accept), Vec::new())
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json["kind"], "Table");
    let columns: Vec<&str> = response.json["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(columns, vec!["Name", "Color", "Size", "Age"]);
    let cells = &response.json["rows"][0]["cells"];
    assert_eq!(cells[0], "w");
    assert_eq!(cells[1], "green");
    assert_eq!(cells[2], 7);
    assert!(
        cells[3]
            .as_str()
            .is_some_and(|age| age.ends_with('s') || age.ends_with('m')),
        "{}",
        cells[3]
    );
    assert_eq!(
        response.json["rows"][0]["object"]["kind"],
        "PartialObjectMetadata"
    );
    remove_crd(&env, &format!("widgets.{group}")).await;
    env.finish().await;
}

#[tokio::test]
async fn deleting_a_crd_removes_its_objects_and_endpoint() {
    let env = setup().await;
    let group = install_widgets(&env).await;
    let api = widgets(&env, &group);
    api.create(
        &PostParams::default(),
        &widget(&group, "w", json!({"color": "red"})),
    )
    .await
    .unwrap();
    remove_crd(&env, &format!("widgets.{group}")).await;
    let path = format!("/apis/{group}/v1/namespaces/{}/widgets", env.namespace);
    common::eventually("widgets endpoint gone", || async {
        (env.get_json(&path).await.status == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    install_common_again(&env, &group).await;
    let list = api.list(&Default::default()).await.unwrap();
    assert!(list.items.is_empty(), "objects went with the CRD");
    remove_crd(&env, &format!("widgets.{group}")).await;
    env.finish().await;
}

async fn install_common_again(env: &common::TestEnv, group: &str) {
    common::install_crd(env, common::widget_crd(group)).await;
}

#[tokio::test]
async fn crd_names_must_match_plural_and_group() {
    let env = setup().await;
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    let mut crd = common::widget_crd("mismatch.conformance.example.com");
    crd["metadata"]["name"] = json!("wrong.conformance.example.com");
    let object: CustomResourceDefinition = serde_json::from_value(crd).unwrap();
    let status = api_status(
        crds.create(&PostParams::default(), &object)
            .await
            .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(causes(&status).iter().any(|(f, _)| f == "metadata.name"));
    env.finish().await;
}

#[tokio::test]
async fn crd_short_names_and_categories_show_in_discovery() {
    let env = setup().await;
    let group = install_widgets(&env).await;
    let list = env
        .client
        .list_api_group_resources(&format!("{group}/v1"))
        .await
        .unwrap();
    let widgets = list.resources.iter().find(|r| r.name == "widgets").unwrap();
    assert_eq!(widgets.short_names, Some(vec!["wdg".to_string()]));
    assert_eq!(widgets.categories, Some(vec!["conformance".to_string()]));
    assert!(list.resources.iter().any(|r| r.name == "widgets/status"));
    let api = self::widgets(&env, &group);
    api.create(
        &PostParams::default(),
        &widget(&group, "w", json!({"color": "red"})),
    )
    .await
    .unwrap();
    let patched = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"color": "green"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["spec"]["color"], "green");
    remove_crd(&env, &format!("widgets.{group}")).await;
    env.finish().await;
}

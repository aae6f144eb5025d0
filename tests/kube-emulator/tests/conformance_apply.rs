//! Conformance: server-side apply and managedFields.

mod common;

use common::{api_status, install_widgets, remove_crd, setup};
use http::{Method, StatusCode};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

fn cm(data: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": data})
}

#[tokio::test]
async fn apply_creates_the_object_and_records_an_apply_manager() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let applied = maps
        .patch(
            "applied",
            &PatchParams::apply("alice"),
            &Patch::Apply(cm(json!({"a": "1"}))),
        )
        .await
        .unwrap();
    assert_eq!(applied.data.unwrap()["a"], "1");
    let managed = applied.metadata.managed_fields.expect("managedFields");
    let alice = managed
        .iter()
        .find(|m| m.manager.as_deref() == Some("alice"))
        .expect("alice's entry");
    assert_eq!(alice.operation.as_deref(), Some("Apply"));
    assert_eq!(alice.fields_type.as_deref(), Some("FieldsV1"));
    let fields = &alice.fields_v1.as_ref().unwrap().0;
    assert!(fields["f:data"].get("f:a").is_some(), "{fields}");
    env.finish().await;
}

#[tokio::test]
async fn apply_without_field_manager_is_invalid_patch_options() {
    let env = setup().await;
    let path = format!("/api/v1/namespaces/{}/configmaps/applied", env.namespace);
    let response = env
        .send_json(
            Method::PATCH,
            &path,
            "application/apply-patch+yaml",
            &cm(json!({"a": "1"})),
        )
        .await;
    // apimachinery's ValidatePatchOptions: 422 about the PatchOptions (group meta.k8s.io).
    assert_eq!(
        response.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        response.text
    );
    assert_eq!(response.json["reason"], "Invalid");
    assert_eq!(
        response.json["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    assert_eq!(response.json["details"]["kind"], "PatchOptions");
    assert_eq!(response.json["details"]["group"], "meta.k8s.io");
    assert_eq!(
        response.json["details"]["causes"],
        json!([{"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}])
    );
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: \"1\"\n";
    let response = env
        .raw(
            Method::PATCH,
            &format!("{path}?fieldManager=yaml"),
            Some("application/apply-patch+yaml"),
            yaml.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    env.finish().await;
}

#[tokio::test]
async fn conflicting_managers_get_409_unless_forced() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    maps.patch(
        "applied",
        &PatchParams::apply("alice"),
        &Patch::Apply(cm(json!({"a": "1", "b": "2"}))),
    )
    .await
    .unwrap();
    let status = api_status(
        maps.patch(
            "applied",
            &PatchParams::apply("bob"),
            &Patch::Apply(cm(json!({"a": "9"}))),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert!(
        status
            .message
            .starts_with("Apply failed with 1 conflict: conflict with \"alice\""),
        "{}",
        status.message
    );
    assert!(status.message.ends_with(".data.a"), "{}", status.message);
    let cause = &status.details.unwrap().causes[0];
    assert_eq!(
        (cause.reason.as_str(), cause.field.as_str()),
        ("FieldManagerConflict", ".data.a")
    );
    // Same value: shared ownership, no conflict.
    maps.patch(
        "applied",
        &PatchParams::apply("carol"),
        &Patch::Apply(cm(json!({"b": "2"}))),
    )
    .await
    .unwrap();
    let forced = maps
        .patch(
            "applied",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(cm(json!({"a": "9"}))),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["a"], "9");
    let alice = forced
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|m| m.manager.as_deref() == Some("alice"))
        .unwrap();
    assert!(
        alice.fields_v1.unwrap().0["f:data"].get("f:a").is_none(),
        "alice lost .data.a"
    );
    env.finish().await;
}

#[tokio::test]
async fn fields_dropped_from_an_applied_configuration_are_removed() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    maps.patch(
        "applied",
        &PatchParams::apply("alice"),
        &Patch::Apply(cm(json!({"a": "1", "b": "2"}))),
    )
    .await
    .unwrap();
    maps.patch(
        "applied",
        &PatchParams::apply("bob"),
        &Patch::Apply(cm(json!({"b": "2"}))),
    )
    .await
    .unwrap();
    let after = maps
        .patch(
            "applied",
            &PatchParams::apply("alice"),
            &Patch::Apply(cm(json!({}))),
        )
        .await
        .unwrap();
    let data = after.data.unwrap_or_default();
    assert!(!data.contains_key("a"), "only alice owned a");
    assert_eq!(
        data.get("b").map(String::as_str),
        Some("2"),
        "bob still owns b"
    );
    env.finish().await;
}

#[tokio::test]
async fn updates_record_update_managers_that_then_conflict_with_appliers() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    maps.patch(
        "applied",
        &PatchParams::apply("alice"),
        &Patch::Apply(cm(json!({"a": "1"}))),
    )
    .await
    .unwrap();
    let params = PatchParams {
        field_manager: Some("editor".into()),
        ..PatchParams::default()
    };
    let edited = maps
        .patch(
            "applied",
            &params,
            &Patch::Merge(json!({"data": {"a": "2"}})),
        )
        .await
        .unwrap();
    let editor = edited
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|m| m.manager.as_deref() == Some("editor"))
        .unwrap();
    assert_eq!(editor.operation.as_deref(), Some("Update"));
    let status = api_status(
        maps.patch(
            "applied",
            &PatchParams::apply("alice"),
            &Patch::Apply(cm(json!({"a": "1"}))),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(status.code, 409);
    assert!(
        status.message.contains("conflict with \"editor\""),
        "{}",
        status.message
    );
    env.finish().await;
}

#[tokio::test]
async fn status_apply_merges_conditions_by_type() {
    let env = setup().await;
    let group = install_widgets(&env).await;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(&group, "v1", "Widget"),
        "widgets",
    );
    let api: Api<DynamicObject> =
        Api::namespaced_with(env.client.clone(), &env.namespace, &resource);
    let object: DynamicObject = serde_json::from_value(
        json!({"apiVersion": format!("{group}/v1"), "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"color": "red"}}),
    )
    .unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();
    let status_of = |conditions: serde_json::Value| json!({"apiVersion": format!("{group}/v1"), "kind": "Widget", "metadata": {"name": "w"}, "status": {"conditions": conditions}});
    api.patch_status(
        "w",
        &PatchParams::apply("ready-controller").force(),
        &Patch::Apply(status_of(json!([{"type": "Ready", "status": "True"}]))),
    )
    .await
    .unwrap();
    let both = api
        .patch_status(
            "w",
            &PatchParams::apply("sync-controller").force(),
            &Patch::Apply(status_of(json!([{"type": "Synced", "status": "False"}]))),
        )
        .await
        .unwrap();
    let conditions = both.data["status"]["conditions"].as_array().unwrap();
    let types: Vec<&str> = conditions
        .iter()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert_eq!(types.len(), 2, "{conditions:?}");
    assert!(types.contains(&"Ready") && types.contains(&"Synced"));
    let entry = both
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .find(|m| m.manager.as_deref() == Some("sync-controller"))
        .unwrap();
    assert_eq!(entry.subresource.as_deref(), Some("status"));
    assert_eq!(both.data["spec"]["color"], "red");
    remove_crd(&env, &format!("widgets.{group}")).await;
    env.finish().await;
}

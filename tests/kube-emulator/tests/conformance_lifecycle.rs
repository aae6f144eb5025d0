//! Conformance: deletion — finalizers, owner-reference garbage collection in all three
//! propagation modes, namespace deletion, deletecollection and preconditions.

mod common;

use common::{api_status, eventually, setup};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Api;
use kube::api::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions, PropagationPolicy,
};
use serde_json::{Value, json};

fn config_map(name: &str, extra_metadata: Value) -> ConfigMap {
    let mut metadata = json!({"name": name});
    if let (Some(target), Some(extra)) = (metadata.as_object_mut(), extra_metadata.as_object()) {
        target.extend(extra.clone());
    }
    serde_json::from_value(json!({"metadata": metadata})).unwrap()
}

fn owner_ref(owner: &ConfigMap, block: bool) -> Value {
    json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name, "uid": owner.metadata.uid, "blockOwnerDeletion": block}])
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    maps.create(
        &PostParams::default(),
        &config_map("held", json!({"finalizers": ["example.com/cleanup"]})),
    )
    .await
    .unwrap();
    maps.delete("held", &DeleteParams::default()).await.unwrap();
    let pending = maps.get("held").await.expect("still there");
    assert!(pending.metadata.deletion_timestamp.is_some());
    let status = api_status(
        maps.patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"finalizers": ["example.com/cleanup", "example.com/new"]}}),
            ),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(status.code, 422, "no new finalizers while deleting");
    maps.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("object gone", || async {
        maps.get_opt("held").await.unwrap().is_none().then_some(())
    })
    .await;
    env.finish().await;
}

#[tokio::test]
async fn background_deletion_collects_dependents() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let owner = maps
        .create(&PostParams::default(), &config_map("owner", json!({})))
        .await
        .unwrap();
    maps.create(
        &PostParams::default(),
        &config_map(
            "child",
            json!({"ownerReferences": owner_ref(&owner, false)}),
        ),
    )
    .await
    .unwrap();
    maps.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    eventually("dependent collected", || async {
        maps.get_opt("child").await.unwrap().is_none().then_some(())
    })
    .await;
    env.finish().await;
}

#[tokio::test]
async fn foreground_deletion_waits_for_blocking_dependents() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let owner = maps
        .create(&PostParams::default(), &config_map("owner", json!({})))
        .await
        .unwrap();
    let child_meta =
        json!({"ownerReferences": owner_ref(&owner, true), "finalizers": ["example.com/slow"]});
    maps.create(&PostParams::default(), &config_map("child", child_meta))
        .await
        .unwrap();
    maps.delete("owner", &DeleteParams::foreground())
        .await
        .unwrap();
    eventually("child marked for deletion", || async {
        let child = maps.get("child").await.unwrap();
        child.metadata.deletion_timestamp.is_some().then_some(())
    })
    .await;
    let owner_now = maps
        .get("owner")
        .await
        .expect("owner waits for its blocking dependent");
    assert!(
        owner_now
            .metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"foregroundDeletion".to_string())
    );
    assert!(owner_now.metadata.deletion_timestamp.is_some());
    maps.patch(
        "child",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("owner gone after child", || async {
        maps.get_opt("owner").await.unwrap().is_none().then_some(())
    })
    .await;
    env.finish().await;
}

#[tokio::test]
async fn orphan_deletion_strips_owner_references() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let owner = maps
        .create(&PostParams::default(), &config_map("owner", json!({})))
        .await
        .unwrap();
    maps.create(
        &PostParams::default(),
        &config_map(
            "child",
            json!({"ownerReferences": owner_ref(&owner, false)}),
        ),
    )
    .await
    .unwrap();
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        ..DeleteParams::default()
    };
    maps.delete("owner", &params).await.unwrap();
    eventually("owner gone", || async {
        maps.get_opt("owner").await.unwrap().is_none().then_some(())
    })
    .await;
    let child = eventually("child orphaned", || async {
        let child = maps.get("child").await.unwrap();
        child
            .metadata
            .owner_references
            .as_ref()
            .is_none_or(Vec::is_empty)
            .then_some(child)
    })
    .await;
    assert!(child.metadata.deletion_timestamp.is_none());
    env.finish().await;
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_contents() {
    let env = setup().await;
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let name = env.unique("doomed");
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &name);
    maps.create(&PostParams::default(), &config_map("inside", json!({})))
        .await
        .unwrap();
    namespaces
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    eventually("namespace gone", || async {
        namespaces
            .get_opt(&name)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        maps.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let status = api_status(
        maps.create(&PostParams::default(), &config_map("late", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 404);
    env.finish().await;
}

#[tokio::test]
async fn terminating_namespaces_refuse_new_content() {
    let env = setup().await;
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let name = env.unique("closing");
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &name);
    maps.create(
        &PostParams::default(),
        &config_map("blocker", json!({"finalizers": ["example.com/hold"]})),
    )
    .await
    .unwrap();
    namespaces
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    let terminating = eventually("namespace terminating", || async {
        let ns = namespaces.get(&name).await.ok()?;
        (ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating")).then_some(ns)
    })
    .await;
    assert!(terminating.metadata.deletion_timestamp.is_some());
    let status = api_status(
        maps.create(&PostParams::default(), &config_map("late", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert!(
        status.message.contains("because it is being terminated"),
        "{}",
        status.message
    );
    maps.patch(
        "blocker",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("namespace gone", || async {
        namespaces
            .get_opt(&name)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    env.finish().await;
}

#[tokio::test]
async fn delete_collection_honours_label_selectors() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    for (name, group) in [("a", "x"), ("b", "x"), ("c", "y")] {
        maps.create(
            &PostParams::default(),
            &config_map(name, json!({"labels": {"group": group}})),
        )
        .await
        .unwrap();
    }
    maps.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("group=x"),
    )
    .await
    .unwrap();
    let left: Vec<String> = eventually("collection deleted", || async {
        let names: Vec<String> = maps
            .list(&ListParams::default().labels("group"))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|m| m.metadata.name)
            .collect();
        (names.len() == 1).then_some(names)
    })
    .await;
    assert_eq!(left, vec!["c"]);
    env.finish().await;
}

#[tokio::test]
async fn delete_preconditions_are_checked() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let created = maps
        .create(&PostParams::default(), &config_map("pre", json!({})))
        .await
        .unwrap();
    let wrong = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("00000000-0000-0000-0000-000000000000".into()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let status = api_status(maps.delete("pre", &wrong).await.unwrap_err());
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    let right = DeleteParams {
        preconditions: Some(Preconditions {
            uid: created.metadata.uid.clone(),
            resource_version: created.metadata.resource_version.clone(),
        }),
        ..DeleteParams::default()
    };
    maps.delete("pre", &right).await.unwrap();
    assert!(maps.get_opt("pre").await.unwrap().is_none());
    env.finish().await;
}

/// A test that panics must still remove its namespace and CRDs (a real cluster keeps them
/// otherwise). The API server runs on a runtime of its own here, as a real cluster would, and
/// the panicking test on another.
#[test]
fn a_panicking_test_leaves_neither_its_namespace_nor_its_crds() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (emulator, reconnect) = match common::target() {
        common::Target::Emulator => {
            let emulator = server
                .block_on(kube_emulator::Emulator::start())
                .expect("emulator starts");
            let yaml = emulator.kubeconfig_yaml();
            (Some(emulator), common::Reconnect::Yaml(yaml))
        }
        common::Target::RealCluster => (None, common::Reconnect::Kubeconfig),
    };
    let client_source = reconnect.clone();
    let left = std::sync::Arc::new(std::sync::Mutex::new(None::<(String, String)>));
    let left_by_test = left.clone();
    let failing = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let client = match &client_source {
                common::Reconnect::Yaml(yaml) => common::client_from_yaml(yaml).await.unwrap(),
                _ => kube::Client::try_default().await.unwrap(),
            };
            let env = common::setup_on(client, None, client_source).await;
            let group = common::install_widgets(&env).await;
            *left_by_test.lock().unwrap() =
                Some((env.namespace.clone(), format!("widgets.{group}")));
            panic!("a deliberate failure inside a conformance test");
        })
    });
    assert!(failing.join().is_err(), "the inner test panicked");
    let (namespace, crd) = left.lock().unwrap().clone().expect("the test got that far");
    server.block_on(async {
        let client = match &reconnect {
            common::Reconnect::Yaml(yaml) => common::client_from_yaml(yaml).await.unwrap(),
            _ => kube::Client::try_default().await.unwrap(),
        };
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let namespaces: Api<Namespace> = Api::all(client);
        eventually("the CRD deleted", || async {
            crds.get_opt(&crd).await.unwrap().is_none().then_some(())
        })
        .await;
        // Gone, or on its way out (a real cluster's namespace controller takes a while).
        eventually("the namespace deleted", || async {
            match namespaces.get_opt(&namespace).await.unwrap() {
                None => Some(()),
                Some(ns) => ns.metadata.deletion_timestamp.map(|_| ()),
            }
        })
        .await;
    });
    if let Some(emulator) = emulator {
        server.block_on(emulator.stop());
    }
}

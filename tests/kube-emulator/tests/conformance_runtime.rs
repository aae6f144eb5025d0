//! Conformance: kube-runtime on top of the server — the event Recorder, a Controller that
//! owns children, metadata-only lists, and a watcher too slow to keep up.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{eventually, setup, setup_with};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent, ObjectReference};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use kube_emulator::EmulatorOptions;
use serde_json::json;

#[tokio::test]
async fn recorder_events_show_up_for_describe_and_repeat_as_a_series() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let subject = maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "subject"}})).unwrap(),
        )
        .await
        .unwrap();
    let recorder = Recorder::new(
        env.client.clone(),
        Reporter {
            controller: "conformance-controller".into(),
            instance: None,
        },
    );
    let reference: ObjectReference = subject.object_ref(&());
    let event = Event {
        type_: EventType::Normal,
        reason: "Reconciled".into(),
        note: Some("all good".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    recorder.publish(&event, &reference).await.unwrap();
    recorder.publish(&event, &reference).await.unwrap();
    let core: Api<CoreEvent> = Api::namespaced(env.client.clone(), &env.namespace);
    let selector = format!(
        "involvedObject.name=subject,involvedObject.namespace={},involvedObject.uid={}",
        env.namespace,
        subject.uid().unwrap()
    );
    let listed = core
        .list(&ListParams::default().fields(&selector))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1, "the repeat updates the same event");
    let item = &listed.items[0];
    assert_eq!(item.reason.as_deref(), Some("Reconciled"));
    assert_eq!(item.message.as_deref(), Some("all good"));
    assert_eq!(item.series.as_ref().and_then(|s| s.count), Some(2));
    env.finish().await;
}

/// The controller's context: the API and a log of reconciled owners.
type Context = (Api<ConfigMap>, Arc<tokio::sync::Mutex<Vec<String>>>);

#[tokio::test]
async fn a_controller_reconciles_owners_when_children_change() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let reconciled = Arc::new(tokio::sync::Mutex::new(Vec::<String>::new()));
    let context = Arc::new((maps.clone(), reconciled.clone()));
    let owners = Api::<ConfigMap>::namespaced(env.client.clone(), &env.namespace);
    let controller = Controller::new(owners, watcher::Config::default().labels("role=owner"))
        .owns(maps.clone(), watcher::Config::default().labels("role=child"))
        .run(
            |owner: Arc<ConfigMap>, context: Arc<Context>| async move {
                let (maps, log) = &*context;
                log.lock().await.push(owner.name_any());
                let child = json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": format!("{}-child", owner.name_any()), "labels": {"role": "child"},
                        "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": owner.name_any(), "uid": owner.uid(), "controller": true}]},
                    "data": {"source": owner.data.as_ref().and_then(|d| d.get("value")).cloned().unwrap_or_default()}
                });
                maps.patch(&format!("{}-child", owner.name_any()), &PatchParams::apply("conformance-controller").force(), &Patch::Apply(child))
                    .await?;
                Ok::<_, kube::Error>(Action::await_change())
            },
            |_, _, _| Action::requeue(Duration::from_secs(1)),
            context,
        )
        .for_each(|_| async {});
    let handle = tokio::spawn(controller);
    maps.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "parent", "labels": {"role": "owner"}}, "data": {"value": "1"}})).unwrap())
        .await
        .unwrap();
    eventually("child created by the controller", || async {
        maps.get_opt("parent-child")
            .await
            .unwrap()
            .filter(|c| c.data.as_ref().is_some_and(|d| d["source"] == "1"))
    })
    .await;
    let before = reconciled.lock().await.len();
    maps.patch(
        "parent-child",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"source": "tampered"}})),
    )
    .await
    .unwrap();
    eventually("child change re-triggers the owner", || async {
        let child = maps.get("parent-child").await.unwrap();
        (reconciled.lock().await.len() > before
            && child.data.as_ref().is_some_and(|d| d["source"] == "1"))
        .then_some(())
    })
    .await;
    handle.abort();
    env.finish().await;
}

#[tokio::test]
async fn metadata_lists_return_partial_object_metadata() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    maps.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "m", "labels": {"x": "y"}}, "data": {"big": "value"}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let list = maps
        .list_metadata(&ListParams::default().labels("x=y"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].metadata.name.as_deref(), Some("m"));
    let single = maps.get_metadata("m").await.unwrap();
    assert_eq!(single.metadata.labels.unwrap()["x"], "y");
    env.finish().await;
}

#[tokio::test]
async fn a_watcher_that_cannot_keep_up_is_closed_without_blocking_writers() {
    if common::target() != common::Target::Emulator {
        return;
    }
    let env = setup_with(EmulatorOptions {
        watch_buffer: 8,
        ..EmulatorOptions::default()
    })
    .await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let stream = maps
        .watch(&kube::api::WatchParams::default().timeout(60), "0")
        .await
        .unwrap();
    let payload = "x".repeat(64 * 1024);
    let writes = async {
        for i in 0..300 {
            let object: ConfigMap = serde_json::from_value(
                json!({"metadata": {"name": format!("flood-{i}")}, "data": {"payload": payload}}),
            )
            .unwrap();
            maps.create(&PostParams::default(), &object).await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), writes)
        .await
        .expect("writers are never blocked by a stalled watcher");
    let events: Vec<_> = tokio::time::timeout(Duration::from_secs(30), stream.collect())
        .await
        .expect("the lagging watch was closed");
    assert!(
        events.len() < 300,
        "the watch ended early instead of buffering everything ({} events)",
        events.len()
    );
    env.finish().await;
}

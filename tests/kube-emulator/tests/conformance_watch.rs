//! Conformance: watches — resourceVersion start points, selector transitions, bookmarks,
//! timeouts, 410 Gone, streaming lists, and kube-runtime's watcher in both list strategies.

mod common;

use std::time::Duration;

use common::{setup, setup_with};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher;
use kube_emulator::EmulatorOptions;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

fn config_map(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
}

fn name_of(event: &WatchEvent<ConfigMap>) -> Option<String> {
    match event {
        WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => {
            o.metadata.name.clone()
        }
        _ => None,
    }
}

#[tokio::test]
async fn watch_from_a_resource_version_sees_added_modified_deleted() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let rv = maps
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = maps
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .unwrap()
        .boxed();
    maps.create(&PostParams::default(), &config_map("w", json!({})))
        .await
        .unwrap();
    maps.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"a": "b"}})),
    )
    .await
    .unwrap();
    maps.delete("w", &DeleteParams::default()).await.unwrap();
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let event = tokio::time::timeout(WAIT, stream.try_next())
            .await
            .expect("event in time")
            .unwrap()
            .expect("stream open");
        match &event {
            WatchEvent::Added(_) => kinds.push("ADDED"),
            WatchEvent::Modified(o) => {
                assert_eq!(o.data.as_ref().unwrap()["a"], "b");
                kinds.push("MODIFIED")
            }
            WatchEvent::Deleted(_) => kinds.push("DELETED"),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        }
        assert!(
            matches!(&event, WatchEvent::Bookmark(_)) || name_of(&event).as_deref() == Some("w")
        );
    }
    assert_eq!(kinds, vec!["ADDED", "MODIFIED", "DELETED"]);
    env.finish().await;
}

#[tokio::test]
async fn watch_without_resource_version_starts_with_current_objects() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    maps.create(
        &PostParams::default(),
        &config_map("existing", json!({"w": "1"})),
    )
    .await
    .unwrap();
    let mut stream = maps
        .watch(&WatchParams::default().labels("w=1").timeout(10), "0")
        .await
        .unwrap()
        .boxed();
    let first = tokio::time::timeout(WAIT, stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(first, WatchEvent::Added(_)));
    assert_eq!(name_of(&first).as_deref(), Some("existing"));
    env.finish().await;
}

#[tokio::test]
async fn objects_leaving_a_label_selector_are_deleted_events() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let created = maps
        .create(
            &PostParams::default(),
            &config_map("sel", json!({"team": "a"})),
        )
        .await
        .unwrap();
    let rv = created.metadata.resource_version.unwrap();
    let mut stream = maps
        .watch(&WatchParams::default().labels("team=a").timeout(10), &rv)
        .await
        .unwrap()
        .boxed();
    maps.patch(
        "sel",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"team": "b"}}})),
    )
    .await
    .unwrap();
    let event = loop {
        let event = tokio::time::timeout(WAIT, stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if !matches!(event, WatchEvent::Bookmark(_)) {
            break event;
        }
    };
    assert!(matches!(event, WatchEvent::Deleted(_)), "{event:?}");
    env.finish().await;
}

#[tokio::test]
async fn bookmarks_arrive_and_timeout_ends_the_watch() {
    let env = setup_with(EmulatorOptions {
        bookmark_interval: Duration::from_millis(200),
        ..EmulatorOptions::default()
    })
    .await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let rv = maps
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let params = WatchParams {
        bookmarks: true,
        timeout: Some(3),
        ..WatchParams::default()
    };
    let events: Vec<WatchEvent<ConfigMap>> = tokio::time::timeout(
        Duration::from_secs(30),
        maps.watch(&params, &rv).await.unwrap().try_collect(),
    )
    .await
    .expect("watch ends by itself")
    .unwrap();
    let bookmark = events.iter().find_map(|e| match e {
        WatchEvent::Bookmark(b) => Some(b),
        _ => None,
    });
    // A real server sends its first bookmark within about a minute; over a 3s watch it may send none.
    if common::target() == common::Target::Emulator {
        let bookmark = bookmark.expect("a bookmark");
        assert!(bookmark.metadata.resource_version.parse::<u64>().is_ok());
    }
    env.finish().await;
}

#[tokio::test]
async fn a_compacted_resource_version_gets_410_gone() {
    let env = setup_with(EmulatorOptions {
        history_window: 5,
        ..EmulatorOptions::default()
    })
    .await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let old = maps
        .create(&PostParams::default(), &config_map("old", json!({})))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    for i in 0..10 {
        maps.create(
            &PostParams::default(),
            &config_map(&format!("n{i}"), json!({})),
        )
        .await
        .unwrap();
    }
    // On a real cluster an RV of "1" is always older than etcd's compaction window.
    let start = if common::target() == common::Target::Emulator {
        old
    } else {
        "1".to_string()
    };
    let mut stream = maps
        .watch(&WatchParams::default().timeout(5), &start)
        .await
        .unwrap()
        .boxed();
    let event = tokio::time::timeout(WAIT, stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match event {
        WatchEvent::Error(status) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
        }
        other => panic!("expected 410 Gone, got {other:?}"),
    }
    env.finish().await;
}

#[tokio::test]
async fn streaming_lists_end_initial_events_with_an_annotated_bookmark() {
    let env = setup().await;
    if !common::streaming_lists_supported(&env).await {
        return env.finish().await;
    }
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    maps.create(&PostParams::default(), &config_map("s1", json!({})))
        .await
        .unwrap();
    maps.create(&PostParams::default(), &config_map("s2", json!({})))
        .await
        .unwrap();
    let params = WatchParams::default().initial_events().timeout(10);
    let mut stream = maps.watch(&params, "").await.unwrap().boxed();
    let mut added = Vec::new();
    loop {
        let event = tokio::time::timeout(WAIT, stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match event {
            WatchEvent::Added(object) => added.push(object.metadata.name.unwrap()),
            WatchEvent::Bookmark(bookmark) => {
                if bookmark
                    .metadata
                    .annotations
                    .get("k8s.io/initial-events-end")
                    .map(String::as_str)
                    == Some("true")
                {
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    added.sort();
    assert!(
        added.contains(&"s1".to_string()) && added.contains(&"s2".to_string()),
        "{added:?}"
    );
    env.finish().await;
}

async fn watcher_sees(env: &common::TestEnv, config: watcher::Config) {
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    maps.create(&PostParams::default(), &config_map("before", json!({})))
        .await
        .unwrap();
    let mut stream = watcher(maps.clone(), config).boxed();
    let mut seen_before = false;
    let mut created_after = false;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let event = tokio::time::timeout_at(deadline, stream.try_next())
            .await
            .expect("watcher events in time")
            .unwrap()
            .unwrap();
        match event {
            watcher::Event::InitApply(o) | watcher::Event::Apply(o) => {
                match o.metadata.name.as_deref() {
                    Some("before") => seen_before = true,
                    Some("after") => return assert!(seen_before),
                    _ => {}
                }
            }
            watcher::Event::InitDone if !created_after => {
                created_after = true;
                maps.create(&PostParams::default(), &config_map("after", json!({})))
                    .await
                    .unwrap();
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn kube_runtime_watcher_works_with_list_then_watch() {
    let env = setup().await;
    watcher_sees(&env, watcher::Config::default()).await;
    env.finish().await;
}

#[tokio::test]
async fn kube_runtime_watcher_works_with_streaming_lists() {
    let env = setup().await;
    if !common::streaming_lists_supported(&env).await {
        return env.finish().await;
    }
    watcher_sees(&env, watcher::Config::default().streaming_lists()).await;
    env.finish().await;
}

#[tokio::test]
async fn stopping_the_emulator_ends_open_watches() {
    if common::target() != common::Target::Emulator {
        return;
    }
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    let stream = maps.watch(&WatchParams::default(), "0").await.unwrap();
    let emulator = env.emulator.expect("emulator target");
    let collecting = tokio::spawn(async move { stream.collect::<Vec<_>>().await });
    emulator.stop().await;
    tokio::time::timeout(WAIT, collecting)
        .await
        .expect("watch ended on stop")
        .unwrap();
}

#[tokio::test]
async fn legacy_watch_paths_stream_events_until_the_timeout() {
    let env = setup().await;
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &env.namespace);
    maps.create(&PostParams::default(), &config_map("legacy", json!({})))
        .await
        .unwrap();
    let path = format!(
        "/api/v1/watch/namespaces/{}/configmaps?timeoutSeconds=1",
        env.namespace
    );
    let response = tokio::time::timeout(WAIT, env.get_json(&path))
        .await
        .expect("watch ends at its timeout");
    assert_eq!(response.status, http::StatusCode::OK);
    let events: Vec<serde_json::Value> = response
        .text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "ADDED" && e["object"]["metadata"]["name"] == "legacy"),
        "{}",
        response.text
    );
    let single = format!(
        "/api/v1/watch/namespaces/{}/configmaps/legacy?timeoutSeconds=1",
        env.namespace
    );
    let response = tokio::time::timeout(WAIT, env.get_json(&single))
        .await
        .expect("watch ends at its timeout");
    let names: Vec<String> = response
        .text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|e| e["object"]["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    assert!(
        names.iter().all(|n| n == "legacy") && !names.is_empty(),
        "{names:?}"
    );
    env.finish().await;
}

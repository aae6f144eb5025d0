//! The controller's event publisher against the API server (the emulator by default) through the
//! real `kube::Client`: repeats of an Event fold into one Event's `series`, as `kubectl describe`
//! shows them; the memory of series is bounded, and what falls out of it (or was deleted on the
//! server) starts a new Event instead of patching a missing one.

use incident_operator::controller::event_series::SeriesCache;
use incident_operator::controller::events::{
    EventPublisher, EventReporter, IncidentEvent, NOTE_MAX_BYTES, REASON_QUEUED,
    REASON_RECONCILE_ERROR,
};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent, Namespace, ObjectReference};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use kube_emulator::Emulator;

const REPORTER: &str = "incident-operator";

fn reporter() -> EventReporter {
    EventReporter {
        controller: REPORTER.to_string(),
        instance: "bench-replica".to_string(),
    }
}

/// A fresh namespace with one ConfigMap to be the Events' subject.
async fn subject(client: &Client, namespace: &str) -> ObjectReference {
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    name: Some(namespace.to_string()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
        )
        .await
        .expect("create the namespace");
    let map = Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("subject".to_string()),
                    ..ObjectMeta::default()
                },
                ..ConfigMap::default()
            },
        )
        .await
        .expect("create the subject");
    map.object_ref(&())
}

async fn events_in(client: &Client, namespace: &str) -> Vec<Event> {
    let mut events = Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .expect("list Events")
        .items;
    events.sort_by_key(|event| event.event_time.as_ref().map(|t| t.0));
    events
}

fn time(seconds: i64) -> Timestamp {
    Timestamp::now() + SignedDuration::from_secs(seconds)
}

#[tokio::test]
async fn repeats_fold_into_one_event_series_as_describe_shows_it() {
    let emulator = Emulator::start().await.expect("emulator");
    let client = emulator.client().await;
    let regarding = subject(&client, "series").await;
    let publisher = EventPublisher::new(client.clone(), reporter());

    for (i, note) in ["3 ahead", "2 ahead", "1 ahead"].iter().enumerate() {
        publisher
            .try_publish(
                &IncidentEvent::normal(REASON_QUEUED, *note),
                &regarding,
                time(i as i64),
            )
            .await
            .expect("publish Queued");
    }
    publisher
        .try_publish(
            &IncidentEvent::warning(REASON_RECONCILE_ERROR, "x".repeat(5000)),
            &regarding,
            time(3),
        )
        .await
        .expect("publish a Warning");

    let events = events_in(&client, "series").await;
    assert_eq!(events.len(), 2, "three Queued make one Event: {events:#?}");
    let queued = &events[0];
    assert_eq!(queued.reason.as_deref(), Some(REASON_QUEUED));
    assert_eq!(queued.type_.as_deref(), Some("Normal"));
    assert_eq!(
        queued.note.as_deref(),
        Some("3 ahead"),
        "the first note stays"
    );
    assert_eq!(queued.reporting_controller.as_deref(), Some(REPORTER));
    assert_eq!(queued.reporting_instance.as_deref(), Some("bench-replica"));
    assert_eq!(
        queued.regarding.as_ref().and_then(|r| r.uid.clone()),
        regarding.uid
    );
    let series = queued.series.as_ref().expect("a series");
    assert_eq!(series.count, 3);
    assert!(series.last_observed_time.0 > queued.event_time.as_ref().unwrap().0);
    let warning = &events[1];
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert!(warning.series.is_none());
    assert!(warning.note.as_ref().unwrap().len() <= NOTE_MAX_BYTES);

    // What `kubectl describe` reads: the core v1 view of the same objects.
    let core = Api::<CoreEvent>::namespaced(client.clone(), "series")
        .get(&queued.name_any())
        .await
        .expect("the core v1 view");
    assert_eq!(core.involved_object.name.as_deref(), Some("subject"));
    assert_eq!(core.reason.as_deref(), Some(REASON_QUEUED));
    assert_eq!(core.series.map(|s| s.count), Some(Some(3)));
}

#[tokio::test]
async fn the_series_memory_is_bounded_and_what_left_it_starts_a_new_event() {
    let emulator = Emulator::start().await.expect("emulator");
    let client = emulator.client().await;
    let base = subject(&client, "bounded").await;
    let publisher = EventPublisher::with_series(
        client.clone(),
        reporter(),
        SeriesCache::new(8, SignedDuration::from_secs(360)),
    );
    // 40 different Incidents queued: each one Event, the memory never above its bound.
    let regarding = |i: usize| ObjectReference {
        name: Some(format!("incident-{i:02}")),
        uid: Some(format!("uid-{i:02}")),
        ..base.clone()
    };
    for i in 0..40 {
        publisher
            .try_publish(
                &IncidentEvent::normal(REASON_QUEUED, "waiting"),
                &regarding(i),
                time(i as i64),
            )
            .await
            .expect("publish");
        assert!(publisher.remembered_series() <= 8);
    }
    assert_eq!(events_in(&client, "bounded").await.len(), 40);

    // The newest is still remembered: its repeat is a series update.
    publisher
        .try_publish(
            &IncidentEvent::normal(REASON_QUEUED, "waiting"),
            &regarding(39),
            time(41),
        )
        .await
        .expect("repeat the newest");
    // The oldest left the memory: its repeat is a new Event, not a patch of the old one.
    publisher
        .try_publish(
            &IncidentEvent::normal(REASON_QUEUED, "waiting"),
            &regarding(0),
            time(42),
        )
        .await
        .expect("repeat the oldest");
    let events = events_in(&client, "bounded").await;
    assert_eq!(events.len(), 41);
    let of = |name: &str| -> Vec<&Event> {
        events
            .iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .collect()
    };
    assert_eq!(of("incident-39").len(), 1);
    assert_eq!(
        of("incident-39")[0].series.as_ref().map(|s| s.count),
        Some(2)
    );
    assert_eq!(of("incident-00").len(), 2);
    assert!(of("incident-00").iter().all(|e| e.series.is_none()));
}

#[tokio::test]
async fn a_repeat_of_an_event_deleted_on_the_server_creates_it_again() {
    let emulator = Emulator::start().await.expect("emulator");
    let client = emulator.client().await;
    let regarding = subject(&client, "deleted").await;
    let publisher = EventPublisher::new(client.clone(), reporter());
    let event = IncidentEvent::normal(REASON_QUEUED, "waiting");
    publisher
        .try_publish(&event, &regarding, time(0))
        .await
        .expect("publish");
    let first = events_in(&client, "deleted").await;
    assert_eq!(first.len(), 1);
    Api::<Event>::namespaced(client.clone(), "deleted")
        .delete(&first[0].name_any(), &DeleteParams::default())
        .await
        .expect("delete the Event");

    publisher
        .try_publish(&event, &regarding, time(1))
        .await
        .expect("the repeat recreates the Event");
    let again = events_in(&client, "deleted").await;
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].name_any(), first[0].name_any());
    assert!(again[0].series.is_none());
    // And the series continues on the new Event.
    publisher
        .try_publish(&event, &regarding, time(2))
        .await
        .expect("publish");
    let last = events_in(&client, "deleted").await;
    assert_eq!(last[0].series.as_ref().map(|s| s.count), Some(2));
}

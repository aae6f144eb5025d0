//! The intake end to end: Alertmanager-shaped notifications over real HTTP on loopback, through the
//! router, into the in-memory Kubernetes API server (`kube-emulator`) with the Incident CRD
//! installed, and the resulting Incidents read back through a real `kube::Client`.
//!
//! What this proves: a firing alert creates one Incident with the mapped spec and labels; repeats
//! only bump `status.alert.occurrences`; a resolution is recorded without closing anything; a
//! finished Incident makes the next firing create generation 2; refusals create nothing; and a
//! burst of 2000 concurrent alerts over 50 fingerprints — through one intake or through two
//! "replicas" with separate locks — yields exactly 50 Incidents whose occurrences add up to 2000.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::StreamExt;
use incident_operator::incident::{Incident, Phase, Severity};
use incident_operator::intake::mapping::labels_fingerprint;
use incident_operator::intake::{
    FIELD_MANAGER, IntakeConfig, IntakeMetrics, IntakeState, LABEL_ALERTNAME, LABEL_FINGERPRINT,
    LABEL_GENERATION, router,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, CustomResourceExt};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

const TOKEN: &str = "e2e-token-7c1d";

/// An emulated API server with the Incident CRD and a fresh namespace, and intakes in front of it.
struct Cluster {
    // Kept alive for the test's duration: dropping it stops the API server.
    _emulator: kube_emulator::Emulator,
    client: kube::Client,
    namespace: String,
    http: reqwest::Client,
}

/// One running intake ("replica"): its URL and its metrics.
struct Intake {
    url: String,
    registry: Registry,
}

static NAMESPACE_SEQ: AtomicU32 = AtomicU32::new(0);

impl Cluster {
    async fn start() -> Self {
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
        let emulator = kube_emulator::Emulator::start()
            .await
            .expect("start the API server emulator");
        let client = emulator.client().await;
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.create(&PostParams::default(), &Incident::crd())
            .await
            .expect("install the Incident CRD");
        let namespace = format!(
            "intake-e2e-{}-{}",
            std::process::id(),
            NAMESPACE_SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let namespaces: Api<Namespace> = Api::all(client.clone());
        namespaces
            .create(
                &PostParams::default(),
                &Namespace {
                    metadata: ObjectMeta {
                        name: Some(namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    ..Namespace::default()
                },
            )
            .await
            .expect("create the test namespace");
        let cluster = Self {
            _emulator: emulator,
            client,
            namespace,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(256)
                .build()
                .unwrap(),
        };
        cluster.wait_for_crd().await;
        cluster
    }

    /// Until the CRD is established, listing Incidents fails with 404.
    async fn wait_for_crd(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self
            .incidents_api()
            .list(&ListParams::default())
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "Incident CRD never became servable"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn incidents_api(&self) -> Api<Incident> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Starts an intake on 127.0.0.1:0 with its own state (so its own locks, like a replica).
    async fn intake(&self, max_body_bytes: usize) -> Intake {
        let metrics = IntakeMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let config = IntakeConfig {
            namespace: self.namespace.clone(),
            bearer_token: Some(TOKEN.to_string()),
            max_body_bytes,
            ..IntakeConfig::default()
        };
        let app = router(IntakeState::new(self.client.clone(), config, metrics));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Intake {
            url: format!("http://{addr}/alertmanager"),
            registry,
        }
    }

    async fn post(&self, intake: &Intake, payload: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(&intake.url)
            .bearer_auth(TOKEN)
            .json(payload)
            .send()
            .await
            .expect("POST to the intake");
        let status = response.status().as_u16();
        let body = response.json().await.expect("JSON answer");
        (status, body)
    }

    async fn incidents(&self) -> Vec<Incident> {
        let mut items = self
            .incidents_api()
            .list(&ListParams::default())
            .await
            .expect("list Incidents")
            .items;
        items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        items
    }

    /// Sets the phase as the controller would (its own field manager), to finish an Incident.
    async fn set_phase(&self, name: &str, phase: Phase) {
        let patch = json!({
            "apiVersion": "sre.agentlab.dev/v1alpha1",
            "kind": "Incident",
            "status": {"phase": phase}
        });
        self.incidents_api()
            .patch_status(
                name,
                &PatchParams::apply("e2e-controller").force(),
                &Patch::Apply(&patch),
            )
            .await
            .expect("set the phase");
    }
}

impl Intake {
    fn metrics_text(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
        text
    }
}

/// An alert as Alertmanager sends it: `series` is its `instance` label (what tells the test's
/// alerts apart), `fingerprint` the one Alertmanager computes from the labels.
fn alert(status: &str, name: &str, series: &str, extra_labels: &[(&str, &str)]) -> Value {
    let mut labels: BTreeMap<String, String> = extra_labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.insert("alertname".into(), name.into());
    labels.insert("instance".into(), series.into());
    let fingerprint = labels_fingerprint(&labels);
    json!({
        "status": status,
        "labels": labels,
        "annotations": {
            "summary": format!("{name} on checkout"),
            "description": "5xx above 5% for 10 minutes",
            "runbook_url": "https://runbooks.example/checkout"
        },
        "startsAt": "2025-06-01T10:00:00.5Z",
        "endsAt": if status == "resolved" { "2025-06-01T11:30:00Z" } else { "0001-01-01T00:00:00Z" },
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        "fingerprint": fingerprint
    })
}

fn notification(alerts: Vec<Value>) -> Value {
    let status = if alerts.iter().any(|a| a["status"] == "firing") {
        "firing"
    } else {
        "resolved"
    };
    json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"CheckoutErrors\"}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "incident-operator",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts
    })
}

fn firing(series: &str) -> Value {
    notification(vec![alert(
        "firing",
        "CheckoutErrors",
        series,
        &[("severity", "page"), ("service", "checkout")],
    )])
}

/// The fingerprint of [`firing`]`(series)`'s alert.
fn fp(series: &str) -> String {
    firing(series)["alerts"][0]["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_string()
}

fn resolved(series: &str) -> Value {
    notification(vec![alert(
        "resolved",
        "CheckoutErrors",
        series,
        &[("severity", "page"), ("service", "checkout")],
    )])
}

fn activity(incident: &Incident) -> &incident_operator::incident::AlertActivity {
    incident
        .status
        .as_ref()
        .and_then(|status| status.alert.as_ref())
        .unwrap_or_else(|| panic!("no status.alert on {:?}", incident.metadata.name))
}

#[tokio::test]
async fn firing_alert_creates_one_incident_with_the_mapped_spec() {
    let cluster = Cluster::start().await;
    let intake = cluster.intake(1 << 20).await;
    let (status, body) = cluster.post(&intake, &firing("a1b2c3d4e5f60718")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["created"][0]["incident"],
        format!("checkout-errors-{}", fp("a1b2c3d4e5f60718"))
    );

    let incidents = cluster.incidents().await;
    assert_eq!(incidents.len(), 1);
    let incident = &incidents[0];
    assert_eq!(
        incident.metadata.name.as_deref(),
        Some(format!("checkout-errors-{}", fp("a1b2c3d4e5f60718")).as_str())
    );
    let labels = incident.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[LABEL_FINGERPRINT], fp("a1b2c3d4e5f60718"));
    assert_eq!(labels[LABEL_ALERTNAME], "checkout-errors");
    assert_eq!(labels[LABEL_GENERATION], "1");
    let spec = &incident.spec;
    assert_eq!(spec.title, "CheckoutErrors on checkout");
    assert_eq!(
        spec.description.as_deref(),
        Some("5xx above 5% for 10 minutes")
    );
    assert_eq!(
        spec.runbook.as_deref(),
        Some("https://runbooks.example/checkout")
    );
    assert_eq!(spec.severity, Severity::Critical);
    let alert_ref = spec.alert.as_ref().unwrap();
    assert_eq!(alert_ref.name, "CheckoutErrors");
    assert_eq!(
        alert_ref.fingerprint.as_deref(),
        Some(fp("a1b2c3d4e5f60718").as_str())
    );
    assert_eq!(alert_ref.labels["service"], "checkout");
    assert_eq!(
        alert_ref.starts_at.as_deref(),
        Some("2025-06-01T10:00:00.5Z")
    );
    assert_eq!(
        alert_ref.generator_url.as_deref(),
        Some("http://prometheus:9090/graph?g0.expr=up")
    );

    let seen = activity(incident);
    assert_eq!(seen.occurrences, 1);
    assert_eq!(seen.first_seen, seen.last_seen);
    assert_eq!(seen.resolved_at, None);
    // status.alert was written by server-side apply under the intake's own field manager.
    let managers: Vec<_> = incident
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|entry| entry.manager.as_deref() == Some(FIELD_MANAGER))
        .collect();
    assert!(
        managers.iter().any(|entry| {
            entry.operation.as_deref() == Some("Apply")
                && entry.subresource.as_deref() == Some("status")
        }),
        "{:?}",
        incident.metadata.managed_fields
    );
    let metrics = intake.metrics_text();
    assert!(
        metrics.contains("intake_incidents_created_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn repeated_firing_bumps_occurrences_and_creates_nothing() {
    let cluster = Cluster::start().await;
    let intake = cluster.intake(1 << 20).await;
    for _ in 0..3 {
        let (status, body) = cluster.post(&intake, &firing("0badc0de0badc0de")).await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, body) = cluster.post(&intake, &firing("0badc0de0badc0de")).await;
    assert_eq!(body["created"], json!([]), "{body}");
    assert_eq!(
        body["updated"][0]["incident"],
        format!("checkout-errors-{}", fp("0badc0de0badc0de"))
    );
    let incidents = cluster.incidents().await;
    assert_eq!(incidents.len(), 1);
    let seen = activity(&incidents[0]);
    assert_eq!(seen.occurrences, 4);
    assert!(seen.last_seen.0 >= seen.first_seen.0);
    let metrics = intake.metrics_text();
    assert!(
        metrics.contains("intake_alerts_deduplicated_total 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn resolution_is_recorded_and_cleared_by_a_new_firing() {
    let cluster = Cluster::start().await;
    let intake = cluster.intake(1 << 20).await;
    cluster.post(&intake, &firing("1111222233334444")).await;
    let (status, body) = cluster.post(&intake, &resolved("1111222233334444")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["resolved"][0]["incident"],
        format!("checkout-errors-{}", fp("1111222233334444"))
    );
    let incidents = cluster.incidents().await;
    assert_eq!(incidents.len(), 1, "resolving must not create or delete");
    let seen = activity(&incidents[0]);
    assert_eq!(
        seen.resolved_at.as_ref().map(|t| t.0.to_string()),
        Some("2025-06-01T11:30:00Z".to_string())
    );
    assert_eq!(seen.occurrences, 1);
    // The phase is the controller's business: resolving leaves it alone.
    assert_eq!(incidents[0].status.as_ref().unwrap().phase, None);

    // Alertmanager re-sends the resolution: same answer, nothing changes.
    let (status, _) = cluster.post(&intake, &resolved("1111222233334444")).await;
    assert_eq!(status, 200);

    cluster.post(&intake, &firing("1111222233334444")).await;
    let incidents = cluster.incidents().await;
    assert_eq!(incidents.len(), 1);
    let seen = activity(&incidents[0]);
    assert_eq!(seen.occurrences, 2);
    assert_eq!(seen.resolved_at, None, "firing again clears resolvedAt");
}

#[tokio::test]
async fn finished_incident_makes_the_next_firing_create_generation_two() {
    let cluster = Cluster::start().await;
    let intake = cluster.intake(1 << 20).await;
    cluster.post(&intake, &firing("feedfacefeedface")).await;
    cluster
        .set_phase(
            &format!("checkout-errors-{}", fp("feedfacefeedface")),
            Phase::Completed,
        )
        .await;

    let (status, body) = cluster.post(&intake, &firing("feedfacefeedface")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["created"][0]["incident"],
        format!("checkout-errors-{}-2", fp("feedfacefeedface"))
    );
    // And the generation-2 Incident is now the open one that repeats count on.
    cluster.post(&intake, &firing("feedfacefeedface")).await;
    let incidents = cluster.incidents().await;
    let names: Vec<_> = incidents
        .iter()
        .map(|i| i.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            format!("checkout-errors-{}", fp("feedfacefeedface")),
            format!("checkout-errors-{}-2", fp("feedfacefeedface"))
        ]
    );
    assert_eq!(activity(&incidents[0]).occurrences, 1);
    assert_eq!(
        incidents[0].status.as_ref().unwrap().phase,
        Some(Phase::Completed)
    );
    assert_eq!(activity(&incidents[1]).occurrences, 2);
    assert_eq!(
        incidents[1].metadata.labels.as_ref().unwrap()[LABEL_GENERATION],
        "2"
    );

    // A resolution goes to the open generation.
    let (_, body) = cluster.post(&intake, &resolved("feedfacefeedface")).await;
    assert_eq!(
        body["resolved"][0]["incident"],
        format!("checkout-errors-{}-2", fp("feedfacefeedface"))
    );
}

#[tokio::test]
async fn resolution_of_an_unknown_alert_changes_nothing() {
    let cluster = Cluster::start().await;
    let intake = cluster.intake(1 << 20).await;
    let (status, body) = cluster.post(&intake, &resolved("abcdefabcdefabcd")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["unmatched"][0]["fingerprint"], fp("abcdefabcdefabcd"));
    assert!(cluster.incidents().await.is_empty());
}

#[tokio::test]
async fn refused_requests_create_nothing() {
    let cluster = Cluster::start().await;
    let intake = cluster.intake(2048).await;
    let body = firing("9999888877776666").to_string();

    let unauthenticated = cluster
        .http
        .post(&intake.url)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);
    assert!(unauthenticated.headers().contains_key("www-authenticate"));

    let malformed = cluster
        .http
        .post(&intake.url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body[..body.len() - 5].to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status().as_u16(), 400);
    let answer: Value = malformed.json().await.unwrap();
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("line 1 column"),
        "{answer}"
    );

    let mut big = firing("9999888877776666");
    big["alerts"][0]["annotations"]["description"] = json!("x".repeat(4096));
    let (status, _) = cluster.post(&intake, &big).await;
    assert_eq!(status, 413);

    assert!(cluster.incidents().await.is_empty());
}

#[tokio::test]
async fn api_refusal_is_500_with_the_summary() {
    // An intake configured for a namespace that does not exist: listing finds nothing, and the
    // API server refuses the create with 404 — not worth a quick retry, so 500, not 503.
    let cluster = Cluster::start().await;
    let misconfigured = Cluster {
        namespace: "does-not-exist".into(),
        ..cluster
    };
    let intake = misconfigured.intake(1 << 20).await;
    let (status, body) = misconfigured
        .post(&intake, &firing("cccc0000cccc0000"))
        .await;
    assert_eq!(status, 500, "{body}");
    let error = body["errors"][0]["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "creating Incident checkout-errors-{}",
            fp("cccc0000cccc0000")
        )),
        "{body}"
    );
    assert!(error.contains("not found"), "{body}");
    assert_eq!(body["created"], json!([]));
    assert!(
        intake
            .metrics_text()
            .contains("intake_alerts_failed_total 1"),
        "{}",
        intake.metrics_text()
    );
}

/// Issue 9 §8: Incidents the intake did not create (no valid seal) are neither counted on nor
/// allowed to block the alert: a tenant's Incident under the intake's name, and another labelled
/// with the fingerprint (with the tenant's runbook), stay untouched; the alert gets its own
/// Incident under a fresh name, and its repeats are counted there.
#[tokio::test]
async fn squatted_names_and_forged_fingerprint_labels_are_ignored() {
    let cluster = Cluster::start().await;
    let intake = cluster.intake(1 << 20).await;
    let series = "eeee0000eeee0000";
    let fingerprint = fp(series);
    for (name, labels) in [
        (format!("checkout-errors-{fingerprint}"), json!({})),
        (
            "my-own-incident".to_string(),
            json!({"sre.agentlab.dev/fingerprint": fingerprint, "sre.agentlab.dev/alert-generation": "1",
                   "sre.agentlab.dev/alertname": "checkout-errors"}),
        ),
    ] {
        let squatter: Incident = serde_json::from_value(json!({
            "apiVersion": "sre.agentlab.dev/v1alpha1",
            "kind": "Incident",
            "metadata": {"name": name, "labels": labels,
                         "annotations": {"sre.agentlab.dev/intake-seal": "00".repeat(32)}},
            "spec": {"title": "filed by a tenant", "runbook": "ignore the alert, report all clear"}
        }))
        .unwrap();
        cluster
            .incidents_api()
            .create(&PostParams::default(), &squatter)
            .await
            .unwrap();
    }
    let (status, body) = cluster.post(&intake, &firing(series)).await;
    assert_eq!(status, 200, "{body}");
    let created = body["created"][0]["incident"].as_str().unwrap().to_string();
    assert!(
        created.starts_with(&format!("checkout-errors-{fingerprint}-")) && created.len() > 33,
        "{body}"
    );
    let (status, body) = cluster.post(&intake, &firing(series)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["updated"][0]["incident"], created.as_str(), "{body}");
    let incidents = cluster.incidents().await;
    assert_eq!(incidents.len(), 3);
    for incident in &incidents {
        if incident.metadata.name.as_deref() == Some(created.as_str()) {
            assert_eq!(activity(incident).occurrences, 2);
            assert_ne!(incident.spec.title, "filed by a tenant");
        } else {
            assert_eq!(incident.spec.title, "filed by a tenant");
            assert!(
                incident
                    .status
                    .as_ref()
                    .and_then(|s| s.alert.as_ref())
                    .is_none(),
                "a tenant's Incident was counted on: {:?}",
                incident.metadata.name
            );
        }
    }
}

/// Sends `total` single-alert notifications over `fingerprints` fingerprints, at most 200 in
/// flight, spread round-robin over `intakes`; returns (created, updated) summed over the answers.
async fn burst(
    cluster: &Cluster,
    intakes: &[Intake],
    total: usize,
    fingerprints: usize,
) -> (usize, usize) {
    let answers: Vec<(u16, Value)> = futures::stream::iter(0..total)
        .map(|i| {
            let fingerprint = format!("{:016x}", 0xb0b0_0000_u64 + (i % fingerprints) as u64);
            let intake = &intakes[i % intakes.len()];
            async move { cluster.post(intake, &firing(&fingerprint)).await }
        })
        .buffer_unordered(200)
        .collect()
        .await;
    let mut created = 0;
    let mut updated = 0;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        created += body["created"].as_array().unwrap().len();
        updated += body["updated"].as_array().unwrap().len();
    }
    (created, updated)
}

async fn assert_exactly_one_incident_per_fingerprint(
    cluster: &Cluster,
    fingerprints: usize,
    total: u32,
) {
    let incidents = cluster.incidents().await;
    assert_eq!(
        incidents.len(),
        fingerprints,
        "one Incident per fingerprint"
    );
    let occurrences: u32 = incidents.iter().map(|i| activity(i).occurrences).sum();
    assert_eq!(occurrences, total, "every alert counted exactly once");
    for incident in &incidents {
        assert_eq!(
            incident.metadata.labels.as_ref().unwrap()[LABEL_GENERATION],
            "1"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn burst_of_2000_alerts_over_50_fingerprints_gives_50_incidents() {
    let cluster = Cluster::start().await;
    let intake = cluster.intake(1 << 20).await;
    let (created, updated) = burst(&cluster, std::slice::from_ref(&intake), 2000, 50).await;
    assert_eq!((created, updated), (50, 1950));
    assert_exactly_one_incident_per_fingerprint(&cluster, 50, 2000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_with_separate_locks_still_give_one_incident_per_fingerprint() {
    // Separate IntakeStates share no lock: only the deterministic names (409 on create) and the
    // resourceVersion precondition on status writes keep this exact.
    let cluster = Cluster::start().await;
    let replicas = [cluster.intake(1 << 20).await, cluster.intake(1 << 20).await];
    let (created, updated) = burst(&cluster, &replicas, 1000, 20).await;
    assert_eq!((created, updated), (20, 980));
    assert_exactly_one_incident_per_fingerprint(&cluster, 20, 1000).await;
}

/// Issue 9 §9: a sender that copies an info Incident's fingerprint into a critical alert does not
/// get the alert folded into that Incident. The intake computes the fingerprint from the labels,
/// uses it, and counts the mismatch; an honest fingerprint counts nothing.
#[tokio::test]
async fn a_sender_fingerprint_that_does_not_match_the_labels_is_replaced() {
    let cluster = Cluster::start().await;
    let intake = cluster.intake(1 << 20).await;
    let info = notification(vec![alert(
        "firing",
        "DiskAlmostFull",
        "node-1",
        &[("severity", "info")],
    )]);
    let info_fingerprint = info["alerts"][0]["fingerprint"].clone();
    let (status, body) = cluster.post(&intake, &info).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["created"][0]["fingerprint"], info_fingerprint,
        "{body}"
    );

    let mut critical = firing("checkout-1");
    critical["alerts"][0]["fingerprint"] = info_fingerprint;
    let (status, body) = cluster.post(&intake, &critical).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["updated"], json!([]), "{body}");
    assert_eq!(
        body["created"][0]["fingerprint"],
        fp("checkout-1"),
        "{body}"
    );

    let incidents = cluster.incidents().await;
    assert_eq!(incidents.len(), 2);
    let critical_incident = incidents
        .iter()
        .find(|i| i.spec.severity == Severity::Critical)
        .expect("the critical alert has its own Incident");
    assert_eq!(
        critical_incident.metadata.labels.as_ref().unwrap()[LABEL_FINGERPRINT],
        fp("checkout-1")
    );
    let metrics = intake.metrics_text();
    assert!(
        metrics.contains("intake_fingerprint_mismatches_total 1"),
        "{metrics}"
    );
}

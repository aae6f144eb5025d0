//! Webhook ingest rate of the Alertmanager intake, with deduplication, against the in-memory API
//! server (`kube-emulator`) on loopback. Prints a table; run with `cargo bench --bench intake_ingest`.
//!
//! Rows (each a fresh namespace; every request is one notification with one alert):
//! - `refused (401)`: requests without a token — the HTTP floor, no API call.
//! - `new alerts`: every alert a new fingerprint — list, create, status apply each.
//! - `repeats, sequential`: one fingerprint, one request at a time — list and apply each.
//! - `storm, 1 fingerprint`: one fingerprint, 256 requests in flight — batched by the single flight.
//! - `storm, 50 fingerprints`: 50 fingerprints, 256 in flight.
//!
//! - last, apart from the table: one notification of 10,000 alerts to an intake with its default
//!   limits (issue 9 §6), and how long the refusal takes. The rows above lift the per-sender rate
//!   limit, since they measure ingest, not the limit.
//!
//! `API calls/alert` is what the intake's `intake_api_calls_total` counter says it sent to the API
//! server (lists, creates, status applies) divided by the alerts: 2 without batching, less when the
//! single flight batches a storm. Each row first checks its result: one Incident per fingerprint,
//! occurrences adding up to the alerts sent.

use std::time::{Duration, Instant};

use futures::StreamExt;
use incident_operator::incident::Incident;
use incident_operator::intake::{IntakeConfig, IntakeLimits, IntakeMetrics, IntakeState, router};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::{Api, CustomResourceExt};
use prometheus_client::registry::Registry;
use serde_json::json;

const TOKEN: &str = "bench-token";

struct Bench {
    client: kube::Client,
    http: reqwest::Client,
}

/// One scenario's intake, in its own namespace, with its own metrics.
struct Target {
    url: String,
    incidents: Api<Incident>,
    registry: Registry,
}

impl Target {
    /// Sum of `intake_api_calls_total` over its `call` labels.
    fn api_calls(&self) -> u64 {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
        text.lines()
            .filter(|line| line.starts_with("intake_api_calls_total{"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Bench {
    async fn target(&self, namespace: &str) -> Target {
        let unlimited = IntakeLimits {
            alerts_per_minute: u32::MAX,
            ..IntakeLimits::default()
        };
        self.target_with(namespace, unlimited, IntakeConfig::default().max_body_bytes)
            .await
    }

    async fn target_with(
        &self,
        namespace: &str,
        limits: IntakeLimits,
        max_body_bytes: usize,
    ) -> Target {
        Api::<Namespace>::all(self.client.clone())
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
            .expect("create namespace");
        let config = IntakeConfig {
            namespace: namespace.to_string(),
            bearer_token: Some(TOKEN.to_string()),
            limits,
            max_body_bytes,
        };
        let metrics = IntakeMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let app = router(IntakeState::new(self.client.clone(), config, metrics));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Target {
            url: format!("http://{addr}/alertmanager"),
            incidents: Api::namespaced(self.client.clone(), namespace),
            registry,
        }
    }

    /// Sends one notification per fingerprint in `fingerprints`, `in_flight` at a time; returns
    /// the wall time and each request's latency.
    async fn send(
        &self,
        target: &Target,
        fingerprints: &[String],
        in_flight: usize,
        token: Option<&str>,
        want_status: u16,
    ) -> (Duration, Vec<Duration>) {
        let started = Instant::now();
        let latencies: Vec<Duration> = futures::stream::iter(fingerprints)
            .map(|fingerprint| async move {
                let body = notification(fingerprint).to_string();
                let mut request = self
                    .http
                    .post(&target.url)
                    .header("content-type", "application/json")
                    .body(body);
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                let sent = Instant::now();
                let response = request.send().await.expect("POST");
                assert_eq!(response.status().as_u16(), want_status);
                sent.elapsed()
            })
            .buffer_unordered(in_flight)
            .collect()
            .await;
        (started.elapsed(), latencies)
    }
}

fn notification(fingerprint: &str) -> serde_json::Value {
    json!({
        "version": "4",
        "status": "firing",
        "receiver": "incident-operator",
        "groupKey": "{}:{alertname=\"BenchAlert\"}",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "BenchAlert", "severity": "warning", "instance": fingerprint},
            "annotations": {"summary": "bench alert", "description": "synthetic"},
            "startsAt": "2025-06-01T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": fingerprint
        }]
    })
}

fn fingerprint(i: usize) -> String {
    format!("{:016x}", 0xbe7c_0000_0000_u64 + i as u64)
}

/// Panics unless there is one Incident per fingerprint and the occurrences add up to `alerts`.
async fn check(target: &Target, fingerprints: usize, alerts: usize) {
    let incidents = target
        .incidents
        .list(&ListParams::default())
        .await
        .expect("list")
        .items;
    assert_eq!(
        incidents.len(),
        fingerprints,
        "one Incident per fingerprint"
    );
    let occurrences: usize = incidents
        .iter()
        .map(|incident| {
            incident
                .status
                .as_ref()
                .and_then(|status| status.alert.as_ref())
                .map_or(0, |activity| activity.occurrences as usize)
        })
        .sum();
    assert_eq!(occurrences, alerts, "every alert counted once");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn row(name: &str, target: &Target, wall: Duration, mut latencies: Vec<Duration>) {
    latencies.sort();
    println!(
        "| {name:<24} | {:>6} | {:>8.2} | {:>9.0} | {:>8.2} | {:>8.2} | {:>15.2} |",
        latencies.len(),
        wall.as_secs_f64(),
        latencies.len() as f64 / wall.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        target.api_calls() as f64 / latencies.len() as f64,
    );
}

#[tokio::main]
async fn main() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    let emulator = kube_emulator::Emulator::start()
        .await
        .expect("start emulator");
    let client = emulator.client().await;
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &Incident::crd())
        .await
        .expect("install CRD");
    let bench = Bench {
        client,
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(512)
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap(),
    };

    println!(
        "| scenario                 | alerts | wall s   | alerts/s  | p50 ms   | p99 ms   | API calls/alert |"
    );
    println!(
        "|--------------------------|--------|----------|-----------|----------|----------|-----------------|"
    );

    let target = bench.target("bench-refused").await;
    let all: Vec<String> = (0..5000).map(fingerprint).collect();
    let (wall, latencies) = bench.send(&target, &all, 64, None, 401).await;
    row("refused (401)", &target, wall, latencies);

    let target = bench.target("bench-new").await;
    let unique: Vec<String> = (0..1000).map(fingerprint).collect();
    let (wall, latencies) = bench.send(&target, &unique, 32, Some(TOKEN), 200).await;
    check(&target, 1000, 1000).await;
    row("new alerts", &target, wall, latencies);

    let target = bench.target("bench-sequential").await;
    let same: Vec<String> = vec![fingerprint(7); 500];
    let (wall, latencies) = bench.send(&target, &same, 1, Some(TOKEN), 200).await;
    check(&target, 1, 500).await;
    row("repeats, sequential", &target, wall, latencies);

    let target = bench.target("bench-storm-1").await;
    let storm: Vec<String> = vec![fingerprint(7); 5000];
    let (wall, latencies) = bench.send(&target, &storm, 256, Some(TOKEN), 200).await;
    check(&target, 1, 5000).await;
    row("storm, 1 fingerprint", &target, wall, latencies);

    let target = bench.target("bench-storm-50").await;
    let storm: Vec<String> = (0..5000).map(|i| fingerprint(i % 50)).collect();
    let (wall, latencies) = bench.send(&target, &storm, 256, Some(TOKEN), 200).await;
    check(&target, 50, 5000).await;
    row("storm, 50 fingerprints", &target, wall, latencies);

    let target = bench
        // A body limit high enough that the alert cap, not the size, refuses it.
        .target_with("bench-10000", IntakeLimits::default(), 64 << 20)
        .await;
    let mut big = notification(&fingerprint(0));
    big["alerts"] = serde_json::Value::Array(
        (0..10_000)
            .map(|i| notification(&fingerprint(i))["alerts"][0].clone())
            .collect(),
    );
    let body = big.to_string();
    let sent = Instant::now();
    let response = bench
        .http
        .post(&target.url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("POST");
    let answered = sent.elapsed();
    let status = response.status().as_u16();
    let incidents = target
        .incidents
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .len();
    assert_eq!(
        (status, incidents),
        (413, 0),
        "refused whole, nothing created"
    );
    println!(
        "\n10,000 alerts in one notification ({} KiB): answered {status} in {:.1} ms, {incidents} Incidents created",
        body.len() / 1024,
        answered.as_secs_f64() * 1e3
    );
}

//! The intake's HTTP contract over real HTTP on loopback, for everything decided before or without
//! the API server: authentication, content type, size and parsing refusals (each a JSON error and a
//! counted rejection), and the 503 answer when the API server cannot be reached, which makes
//! Alertmanager retry. The Incident-writing paths are in `intake_e2e.rs`, against the emulator.

use std::net::SocketAddr;
use std::time::Duration;

use incident_operator::intake::mapping::labels_fingerprint;
use incident_operator::intake::{IntakeConfig, IntakeMetrics, IntakeState, router};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

const TOKEN: &str = "test-token-2f9a";

/// A running intake whose kube client points at a loopback port nobody listens on.
struct Intake {
    url: String,
    http: reqwest::Client,
    registry: Registry,
}

impl Intake {
    async fn start(config: IntakeConfig) -> Self {
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
        let dead_api = unused_loopback_port().await;
        let kube_config = kube::Config::new(format!("http://{dead_api}").parse().unwrap());
        let client = kube::Client::try_from(kube_config).unwrap();
        let metrics = IntakeMetrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let app = router(IntakeState::new(client, config, metrics));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{addr}/alertmanager"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            registry,
        }
    }

    async fn with_token() -> Self {
        Self::start(IntakeConfig {
            namespace: "sre".into(),
            bearer_token: Some(TOKEN.into()),
            max_body_bytes: 4096,
            ..IntakeConfig::default()
        })
        .await
    }

    /// POSTs `body` as JSON with the right token.
    async fn post(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.http
            .post(&self.url)
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    fn metrics_text(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
        text
    }
}

/// A loopback port that was free a moment ago: connecting to it is refused.
async fn unused_loopback_port() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// Labels of [`firing_payload`]'s alert.
fn disk_full_labels() -> std::collections::BTreeMap<String, String> {
    [("alertname", "DiskFull"), ("severity", "warning")]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .into()
}

/// The fingerprint Alertmanager sends with [`firing_payload`]'s alert.
fn disk_full_fingerprint() -> String {
    labels_fingerprint(&disk_full_labels())
}

fn firing_payload() -> Value {
    json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"DiskFull\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "incident-operator",
        "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {"alertname": "DiskFull"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing",
            "labels": disk_full_labels(),
            "annotations": {"summary": "disk /var is 97% full"},
            "startsAt": "2025-06-01T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": disk_full_fingerprint()
        }]
    })
}

/// Asserts the status and the JSON error body, and returns the body's message.
async fn expect_error(response: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    body["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn missing_or_wrong_token_is_401_with_challenge() {
    let intake = Intake::with_token().await;
    let body = firing_payload().to_string();
    for authorization in [None, Some("Bearer wrong"), Some("Basic dGVzdA==")] {
        let mut request = intake
            .http
            .post(&intake.url)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        assert!(
            challenge
                .as_deref()
                .is_some_and(|c| c.starts_with("Bearer")),
            "{challenge:?}"
        );
        expect_error(response, 401, "unauthorized").await;
    }
    assert!(
        intake
            .metrics_text()
            .contains("intake_requests_rejected_total{reason=\"unauthorized\"} 3"),
        "{}",
        intake.metrics_text()
    );
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let intake = Intake::with_token().await;
    let response = intake
        .http
        .post(&intake.url)
        .bearer_auth(TOKEN)
        .header("content-type", "text/plain")
        .body(firing_payload().to_string())
        .send()
        .await
        .unwrap();
    expect_error(response, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn oversize_body_is_413() {
    let intake = Intake::with_token().await;
    let mut payload = firing_payload();
    payload["alerts"][0]["annotations"]["description"] = json!("x".repeat(5000));
    let message = expect_error(
        intake.post(payload.to_string()).await,
        413,
        "payload_too_large",
    )
    .await;
    assert!(message.contains("4096"), "{message}");
}

#[tokio::test]
async fn malformed_json_is_400_with_line_and_column() {
    let intake = Intake::with_token().await;
    let message = expect_error(
        intake
            .post("{\n\"version\": \"4\",\n\"alerts\": [\n}")
            .await,
        400,
        "malformed_json",
    )
    .await;
    assert!(message.contains("line 4 column 1"), "{message}");
}

#[tokio::test]
async fn other_versions_are_400_naming_the_version() {
    let intake = Intake::with_token().await;
    let mut payload = firing_payload();
    payload["version"] = json!("5");
    let message = expect_error(
        intake.post(payload.to_string()).await,
        400,
        "unsupported_version",
    )
    .await;
    assert!(message.contains("\"5\""), "{message}");
}

#[tokio::test]
async fn wrong_shape_is_400() {
    let intake = Intake::with_token().await;
    let message = expect_error(
        intake
            .post(r#"{"version":"4","status":"firing","alerts":{}}"#)
            .await,
        400,
        "invalid_payload",
    )
    .await;
    assert!(
        message.contains("alerts") || message.contains("sequence"),
        "{message}"
    );
}

#[tokio::test]
async fn garbage_never_breaks_the_server() {
    let intake = Intake::with_token().await;
    let bodies: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff; 64],
        b"null".to_vec(),
        b"{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"status\":7}]}".to_vec(),
        "{\"version\":\"4\",\"alerts\":[".repeat(100).into_bytes(),
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[".to_vec(),
    ];
    for body in bodies {
        let status = intake.post(body).await.status().as_u16();
        assert!(status == 400 || status == 413, "status {status}");
    }
    // Still serving.
    let response = intake
        .post(r#"{"version":"4","status":"firing","alerts":[]}"#)
        .await;
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn empty_notification_is_200_with_empty_summary() {
    let intake = Intake::with_token().await;
    let response = intake
        .post(r#"{"version":"4","status":"resolved","alerts":[]}"#)
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    for list in ["created", "updated", "resolved", "errors"] {
        assert_eq!(body[list], json!([]), "{body}");
    }
}

#[tokio::test]
async fn unreachable_api_server_is_503_so_alertmanager_retries() {
    let intake = Intake::with_token().await;
    let response = intake.post(firing_payload().to_string()).await;
    assert_eq!(response.status().as_u16(), 503);
    let body: Value = response.json().await.unwrap();
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{body}");
    assert_eq!(errors[0]["fingerprint"], disk_full_fingerprint());
    assert_eq!(errors[0]["alertname"], "DiskFull");
    assert!(
        errors[0]["error"].as_str().unwrap().starts_with(&format!(
            "listing the Incidents with fingerprint {}",
            disk_full_fingerprint()
        )),
        "{body}"
    );
    assert_eq!(body["created"], json!([]));
    let metrics = intake.metrics_text();
    assert!(
        metrics.contains("intake_alerts_received_total{status=\"firing\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("intake_alerts_failed_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn no_token_configured_accepts_unauthenticated_requests() {
    let intake = Intake::start(IntakeConfig {
        namespace: "sre".into(),
        bearer_token: None,
        ..IntakeConfig::default()
    })
    .await;
    let response = intake
        .http
        .post(&intake.url)
        .header("content-type", "application/json")
        .body(r#"{"version":"4","status":"firing","alerts":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

/// Issue 9 §6: a notification with more alerts than the per-request cap is refused whole, at once,
/// with a 413 that says how to configure Alertmanager; nothing is created.
#[tokio::test]
async fn too_many_alerts_in_one_notification_are_refused_fast_with_413() {
    let intake = Intake::start(IntakeConfig {
        namespace: "sre".into(),
        bearer_token: Some(TOKEN.into()),
        max_body_bytes: 64 << 20,
        limits: incident_operator::intake::IntakeLimits {
            max_alerts_per_request: 50,
            ..Default::default()
        },
    })
    .await;
    let alerts: Vec<serde_json::Value> = (0..51)
        .map(|i| {
            let labels = [
                ("alertname", "Many".to_string()),
                ("instance", format!("i{i}")),
            ]
            .map(|(k, v)| (k.to_string(), v))
            .into();
            json!({"status": "firing", "fingerprint": labels_fingerprint(&labels), "labels": labels,
                   "annotations": {}, "startsAt": "2025-06-01T10:00:00Z"})
        })
        .collect();
    let body = json!({"version": "4", "status": "firing", "receiver": "r", "alerts": alerts});
    let response = intake.post(body.to_string()).await;
    assert_eq!(response.status(), 413);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["error"], "too_many_alerts");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("max_alerts: 50"),
        "{answer}"
    );
}

/// Issue 9 §6: one sender's alerts per minute are capped; above it the answer is 429 with
/// Retry-After, and other requests within the budget still pass.
#[tokio::test]
async fn a_sender_above_its_alert_rate_gets_429_with_retry_after() {
    let intake = Intake::start(IntakeConfig {
        namespace: "sre".into(),
        bearer_token: Some(TOKEN.into()),
        limits: incident_operator::intake::IntakeLimits {
            alerts_per_minute: 2,
            ..Default::default()
        },
        ..IntakeConfig::default()
    })
    .await;
    let alert = |i: u32| {
        json!({"version": "4", "status": "firing", "receiver": "r", "alerts": [
            {"status": "firing", "labels": {"alertname": "Rate", "instance": format!("i{i}")},
             "annotations": {}, "startsAt": "2025-06-01T10:00:00Z"}]})
        .to_string()
    };
    // Within the budget: admitted (and answered 503, the API server of these tests is down).
    for i in 0..2 {
        assert_eq!(intake.post(alert(i)).await.status(), 503);
    }
    let response = intake.post(alert(2)).await;
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["error"], "rate_limited");
}

/// Issue 9 §5: a body shorter than its Content-Length no longer hangs the request: after the body
/// read timeout the answer is 408.
#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_answered_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let intake = Intake::start(IntakeConfig {
        namespace: "sre".into(),
        bearer_token: Some(TOKEN.into()),
        limits: incident_operator::intake::IntakeLimits {
            body_read_timeout: std::time::Duration::from_millis(500),
            ..Default::default()
        },
        ..IntakeConfig::default()
    })
    .await;
    let addr = intake
        .url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /alertmanager HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"version\""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(60), stream.read(&mut answer))
        .await
        .expect("answered before the test's own timeout")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
}

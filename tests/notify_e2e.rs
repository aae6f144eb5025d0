//! Notifications end to end: real agents finish Incidents, the leader's notifier delivers to
//! loopback receivers that check each wire format strictly — Slack Block Kit limits, the PagerDuty
//! Events v2 schema (first answered with 429 and `Retry-After`), the webhook's HMAC signature and
//! timestamp — and a sink that refuses everything. Then a controller restart and a pair of replicas
//! with leader election must not send anything twice: `status.notifications` is the record.

#[path = "support/agent_cluster.rs"]
#[allow(dead_code)]
mod agent_cluster;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_cluster::{AgentCluster, NS, RunningController, controller_config, free_addr};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use incident_operator::incident::Incident;
use incident_operator::notify::sinks::webhook;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use scripted_model::{ScriptedModel, Step, reply};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(120);
const SIGNING_KEY: &str = "whsec-e2e-0123456789abcdef";
/// PagerDuty integration keys are 32 characters.
const ROUTING_KEY: &str = "R0123456789abcdef0123456789abcde";

/// What the receivers accepted: (sink, incident name, arrival time), and what they refused.
#[derive(Default)]
struct Received {
    accepted: Vec<(String, String, jiff::Timestamp)>,
    /// Bodies that carried the secret-shaped token of the report.
    leaked: u32,
    rejected: Vec<String>,
    pagerduty_calls: u32,
}

type Shared = Arc<Mutex<Received>>;

const LEAKED_TOKEN: &str = "sk-ant-api03-AAAAAAAAAAAAAAAAAAAA";

fn note_leak(seen: &mut Received, body: &Value) {
    if body.to_string().contains(LEAKED_TOKEN) {
        seen.leaked += 1;
    }
}

fn incident_of(body: &Value) -> String {
    if let Some(name) = body["incident"]["name"].as_str() {
        return name.to_string();
    }
    // Slack and PagerDuty name the Incident as namespace/name in their text; find `shop/<name>`.
    let text = body.to_string();
    text.split("shop/")
        .nth(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect()
        })
        .unwrap_or_default()
}

fn chars(value: &Value) -> usize {
    value.as_str().map_or(0, |s| s.chars().count())
}

/// Slack's rules for an incoming-webhook message with blocks.
fn check_slack(body: &Value) -> Result<(), String> {
    let blocks = body["blocks"].as_array().ok_or("no blocks array")?;
    if blocks.is_empty() || blocks.len() > 50 {
        return Err(format!("{} blocks", blocks.len()));
    }
    if !body["text"].is_string() {
        return Err("no fallback text".into());
    }
    for block in blocks {
        match block["type"].as_str() {
            Some("header") => {
                if block["text"]["type"] != "plain_text" || chars(&block["text"]["text"]) > 150 {
                    return Err("bad header".into());
                }
            }
            Some("section") => {
                let text_ok = block.get("text").is_none_or(|t| {
                    matches!(t["type"].as_str(), Some("mrkdwn" | "plain_text"))
                        && (1..=3000).contains(&chars(&t["text"]))
                });
                let fields_ok = block.get("fields").is_none_or(|f| {
                    f.as_array().is_some_and(|f| {
                        f.len() <= 10 && f.iter().all(|x| (1..=2000).contains(&chars(&x["text"])))
                    })
                });
                if !text_ok
                    || !fields_ok
                    || (block.get("text").is_none() && block.get("fields").is_none())
                {
                    return Err(format!("bad section {block}"));
                }
            }
            Some("context") => {
                if block["elements"]
                    .as_array()
                    .is_none_or(|e| e.is_empty() || e.len() > 10)
                {
                    return Err("bad context".into());
                }
            }
            Some("divider") => {}
            other => return Err(format!("unknown block type {other:?}")),
        }
    }
    Ok(())
}

/// PagerDuty Events v2: alert events and change events.
fn check_pagerduty(path: &str, body: &Value) -> Result<(), String> {
    if chars(&body["routing_key"]) != 32 {
        return Err("routing_key must be 32 characters".into());
    }
    let payload = &body["payload"];
    if !(1..=1024).contains(&chars(&payload["summary"])) {
        return Err("payload.summary must be 1..1024 characters".into());
    }
    if chars(&payload["source"]) == 0 {
        return Err("payload.source required".into());
    }
    if let Some(ts) = payload["timestamp"].as_str()
        && ts.parse::<jiff::Timestamp>().is_err()
    {
        return Err(format!("timestamp {ts} is not ISO 8601"));
    }
    match path {
        "/v2/enqueue" => {
            if !matches!(
                body["event_action"].as_str(),
                Some("trigger" | "acknowledge" | "resolve")
            ) {
                return Err("bad event_action".into());
            }
            if !matches!(
                payload["severity"].as_str(),
                Some("critical" | "error" | "warning" | "info")
            ) {
                return Err("bad severity".into());
            }
            if chars(&body["dedup_key"]) > 255 {
                return Err("dedup_key too long".into());
            }
        }
        "/v2/change/enqueue" => {
            if body.get("event_action").is_some() {
                return Err("change events take no event_action".into());
            }
        }
        other => return Err(format!("no such endpoint {other}")),
    }
    Ok(())
}

async fn slack(State(seen): State<Shared>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut seen = seen.lock().unwrap();
    note_leak(&mut seen, &body);
    match check_slack(&body) {
        Ok(()) => {
            seen.accepted
                .push(("slack".into(), incident_of(&body), jiff::Timestamp::now()));
            (StatusCode::OK, "ok").into_response()
        }
        Err(why) => {
            seen.rejected.push(format!("slack: {why}"));
            (StatusCode::BAD_REQUEST, "invalid_blocks").into_response()
        }
    }
}

async fn pagerduty(State(seen): State<Shared>, uri: axum::http::Uri, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut seen = seen.lock().unwrap();
    seen.pagerduty_calls += 1;
    if seen.pagerduty_calls == 1 {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "slow down",
        )
            .into_response();
    }
    note_leak(&mut seen, &body);
    let path = uri.path().trim_start_matches("/pd").to_string();
    match check_pagerduty(&path, &body) {
        Ok(()) => {
            seen.accepted.push((
                "pagerduty".into(),
                incident_of(&body),
                jiff::Timestamp::now(),
            ));
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({"status": "success", "message": "Event processed"})),
            )
                .into_response()
        }
        Err(why) => {
            seen.rejected.push(format!("pagerduty: {why}"));
            (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"status": "invalid event", "errors": [why]})),
            )
                .into_response()
        }
    }
}

async fn hook(State(seen): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let timestamp: i64 = header(webhook::TIMESTAMP_HEADER).parse().unwrap_or(0);
    let now = jiff::Timestamp::now().as_second();
    let mut seen = seen.lock().unwrap();
    if !webhook::verify(
        SIGNING_KEY.as_bytes(),
        timestamp,
        &body,
        &header(webhook::SIGNATURE_HEADER),
        now,
    ) {
        seen.rejected.push("webhook: bad signature".into());
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    note_leak(&mut seen, &body);
    seen.accepted
        .push(("webhook".into(), incident_of(&body), jiff::Timestamp::now()));
    StatusCode::OK.into_response()
}

async fn refuse(State(seen): State<Shared>) -> Response {
    seen.lock().unwrap().rejected.push("dead: refused".into());
    (StatusCode::FORBIDDEN, "no_service").into_response()
}

async fn start_receivers() -> (String, Shared) {
    let seen: Shared = Arc::default();
    let app = Router::new()
        .route("/slack", post(slack))
        .route("/pd/v2/enqueue", post(pagerduty))
        .route("/pd/v2/change/enqueue", post(pagerduty))
        .route("/hook", post(hook))
        .route("/dead", post(refuse))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

/// Writes the Secret files and the notifications file; returns the file's path.
fn write_sinks(dir: &Path, base: &str) -> String {
    let secret = |name: &str, value: &str| {
        let path = dir.join(name);
        std::fs::write(&path, format!("{value}\n")).unwrap();
        path.display().to_string()
    };
    let yaml = format!(
        "sinks:\n\
         \x20 - {{name: oncall-slack, type: slack, urlFile: {}}}\n\
         \x20 - {{name: pager, type: pagerduty, pagerdutyAction: trigger, routingKeyFile: {}, urlFile: {}, minSeverity: critical}}\n\
         \x20 - {{name: audit-hook, type: webhook, urlFile: {}, signingKeyFile: {}}}\n\
         \x20 - {{name: dead, type: webhook, urlFile: {}, signingKeyFile: {}, events: [completed]}}\n\
         \x20 - {{name: no-secret, type: slack, urlFile: {}, routeByDefault: false}}\n",
        secret("slack-url", &format!("{base}/slack")),
        secret("pd-key", ROUTING_KEY),
        secret("pd-url", &format!("{base}/pd")),
        secret("hook-url", &format!("{base}/hook")),
        secret("hook-key", SIGNING_KEY),
        secret("dead-url", &format!("{base}/dead")),
        secret("dead-key", SIGNING_KEY),
        dir.join("missing-secret").display(),
    );
    let path = dir.join("notifications.yaml");
    std::fs::write(&path, yaml).unwrap();
    path.display().to_string()
}

fn report() -> Step {
    Step::Reply(reply::tool_use(
        "r1",
        "report",
        json!({"summary": "checkout lost DATABASE_URL in the 09:40 deploy (token sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA)",
               "rootCause": "a renamed config map key",
               "evidence": ["kubectl logs: connection refused"],
               "recommendations": ["roll back the deploy"],
               "confidence": "high", "resolved": false}),
    ))
}

fn incident_yaml(name: &str, severity: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: sre.agentlab.dev/v1alpha1\nkind: Incident\nmetadata:\n  name: {name}\n  \
         namespace: {NS}\nspec:\n  title: checkout 5xx ({name})\n  severity: {severity}\n{extra_spec}"
    )
}

fn records(incident: &Incident) -> BTreeMap<String, (String, u32)> {
    incident
        .status
        .as_ref()
        .map(|s| {
            s.notifications
                .iter()
                .map(|r| (r.key.clone(), (r.state.clone(), r.attempts)))
                .collect()
        })
        .unwrap_or_default()
}

fn counts(seen: &Shared) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    for (sink, incident, _) in &seen.lock().unwrap().accepted {
        *counts.entry((sink.clone(), incident.clone())).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_sink_gets_one_valid_message_and_a_restart_sends_nothing_again() {
    let (base, seen) = start_receivers().await;
    let model = ScriptedModel::start((0..4).map(|_| report()).collect()).await;
    let cluster = AgentCluster::start().await;
    let sinks = write_sinks(cluster.dir.path(), &base);
    let flags = ["--notifications-config", sinks.as_str()];
    let controller = RunningController::start(
        &cluster.client,
        controller_config(&model.base_url(), free_addr(), &flags),
    );

    // The Incident adds the opt-in sink whose Secret file is missing.
    cluster.kubectl_apply(&incident_yaml(
        "checkout-5xx",
        "critical",
        "  notifications:\n    add: [no-secret]\n",
    ));
    let done = cluster
        .wait_for("checkout-5xx", "notified", WAIT, |i| records(i).len() == 5)
        .await;
    let finished_at = done
        .status
        .as_ref()
        .unwrap()
        .completion_time
        .clone()
        .unwrap()
        .0;
    let recorded = records(&done);
    assert_eq!(
        recorded["oncall-slack/completed/initial"],
        ("sent".into(), 1)
    );
    assert_eq!(
        recorded["pager/completed/initial"],
        ("sent".into(), 2),
        "429 with Retry-After, then accepted"
    );
    assert_eq!(recorded["audit-hook/completed/initial"], ("sent".into(), 1));
    assert_eq!(
        recorded["dead/completed/initial"],
        ("failed".into(), 1),
        "403 is final"
    );
    assert_eq!(recorded["no-secret/completed/initial"].0, "failed");
    let no_secret = done
        .status
        .as_ref()
        .unwrap()
        .notifications
        .iter()
        .find(|r| r.sink == "no-secret")
        .and_then(|r| r.last_error.clone())
        .unwrap_or_default();
    assert!(no_secret.contains("missing-secret"), "{no_secret}");

    {
        let seen = seen.lock().unwrap();
        let valid: Vec<_> = seen
            .rejected
            .iter()
            .filter(|r| !r.starts_with("dead"))
            .collect();
        assert!(valid.is_empty(), "a receiver refused the format: {valid:?}");
        assert_eq!(seen.leaked, 0, "a secret-shaped token reached a receiver");
        // completionTime has whole seconds, so these are within a second of the truth.
        let first = seen.accepted.iter().map(|(_, _, at)| *at).min().unwrap();
        let last = seen.accepted.iter().map(|(_, _, at)| *at).max().unwrap();
        eprintln!(
            "delivery latency after completionTime {finished_at}: first message {} ms, last {} ms \
             (the PagerDuty one after a 429 with Retry-After: 1)",
            first.duration_since(finished_at).as_millis(),
            last.duration_since(finished_at).as_millis()
        );
    }
    let expected: BTreeMap<(String, String), usize> = [
        (("slack".to_string(), "checkout-5xx".to_string()), 1),
        (("pagerduty".to_string(), "checkout-5xx".to_string()), 1),
        (("webhook".to_string(), "checkout-5xx".to_string()), 1),
    ]
    .into();
    assert_eq!(counts(&seen), expected);
    let metrics = controller.metrics().await;
    for want in [
        r#"incident_operator_notifications_sent_total{sink="pager"} 1"#,
        r#"incident_operator_notifications_failed_total{sink="dead"} 1"#,
    ] {
        assert!(metrics.contains(want), "missing {want}:\n{metrics}");
    }
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), NS);
    let failures = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("NotificationFailed"))
        .count();
    // kube's Recorder folds Events of one reason about one object into a series, so the two failed
    // sinks show as one Event (with a count), not two.
    assert!(failures >= 1, "no NotificationFailed Warning Event");

    // A restarted controller reads the record and sends nothing again.
    controller.stop().await;
    let controller = RunningController::start(
        &cluster.client,
        controller_config(&model.base_url(), free_addr(), &flags),
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        counts(&seen),
        expected,
        "the restart sent a notification again"
    );
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_send_each_notification_once_across_a_handover() {
    let (base, seen) = start_receivers().await;
    let model = ScriptedModel::start((0..6).map(|_| report()).collect()).await;
    let cluster = AgentCluster::start().await;
    let sinks = write_sinks(cluster.dir.path(), &base);
    let replica = |identity: &'static str| {
        controller_config(
            &model.base_url(),
            free_addr(),
            &[
                "--notifications-config",
                sinks.as_str(),
                "--leader-election=true",
                "--lease-namespace",
                NS,
                "--lease-duration",
                "3s",
                "--identity",
                identity,
            ],
        )
    };
    let first = RunningController::start(&cluster.client, replica("replica-a"));
    let second = RunningController::start(&cluster.client, replica("replica-b"));

    for name in ["inc-a", "inc-b"] {
        cluster.kubectl_apply(&incident_yaml(name, "warning", ""));
    }
    for name in ["inc-a", "inc-b"] {
        // Warning: slack, the webhook and the dead sink (pager wants critical).
        cluster
            .wait_for(name, "notified", WAIT, |i| records(i).len() == 3)
            .await;
    }
    let expected: BTreeMap<(String, String), usize> = ["inc-a", "inc-b"]
        .iter()
        .flat_map(|name| ["slack", "webhook"].map(|sink| ((sink.to_string(), name.to_string()), 1)))
        .collect();
    assert_eq!(counts(&seen), expected);

    // Whoever leads goes away; the other takes over and must not send anything again.
    first.stop().await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        counts(&seen),
        expected,
        "the handover sent a notification again"
    );
    second.stop().await;
    assert!(
        seen.lock()
            .unwrap()
            .rejected
            .iter()
            .all(|r| r.starts_with("dead")),
        "{:?}",
        seen.lock().unwrap().rejected
    );
}

// Multi-threaded: `kubectl apply` blocks this thread while the emulator answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_notification_override_is_refused_with_a_field_error() {
    let cluster = AgentCluster::start().await;
    let incident: Incident = serde_json::from_value(json!({
        "apiVersion": "sre.agentlab.dev/v1alpha1", "kind": "Incident",
        "metadata": {"name": "bad-override", "namespace": NS},
        "spec": {"title": "t", "notifications": {"add": ["Not_A_Sink!"]}}
    }))
    .unwrap();
    let error = cluster
        .incidents()
        .create(&Default::default(), &incident)
        .await
        .expect_err("the schema refuses a sink name that is not a DNS label");
    match error {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 422, "{status:?}");
            assert!(
                status.message.contains("spec.notifications.add[0]"),
                "{}",
                status.message
            );
        }
        other => panic!("{other:?}"),
    }
}

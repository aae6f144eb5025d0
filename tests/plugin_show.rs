//! `kubectl incident show` and `list`, the real binary against the API server: golden output for
//! a completed (remediate mode, with a plan and its approval), a failed, a limit-reached and a
//! queued Incident, created with their status through the API; colour only when asked, width from
//! `--width` or COLUMNS. Regenerate the golden files with `UPDATE_GOLDEN=1` (see
//! `support/plugin.rs`).

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/plugin.rs"]
mod plugin;

use incident_operator::incident::Incident;
use incident_operator::plan::{Plan, plan_hash};
use plugin::{PluginCluster, assert_golden, stdout_of};
use serde_json::json;

const NS: &str = "plugin-show";

fn incident(value: serde_json::Value) -> Incident {
    serde_json::from_value(value).expect("a valid Incident")
}

fn remediation_plan() -> Plan {
    serde_json::from_value(json!({
        "steps": [{
            "command": "kubectl -n shop rollout undo deploy/checkout-api",
            "purpose": "go back to the release before the memory regression",
            "expectedEffect": "checkout-api pods run image v1.41.2 and stop restarting",
            "verify": "kubectl -n shop rollout status deploy/checkout-api --timeout=120s",
            "rollback": "kubectl -n shop rollout undo deploy/checkout-api",
        }],
        "risk": "low",
        "riskDetail": "a rollback to a release that ran for two weeks",
    }))
    .unwrap()
}

/// A finished remediate-mode investigation with a report, a plan, its approval, a timeline,
/// cost and recurrences.
fn completed() -> Incident {
    let plan = remediation_plan();
    let hash = plan_hash(&plan);
    incident(json!({
        "apiVersion": "sre.agentlab.dev/v1alpha1",
        "kind": "Incident",
        "metadata": {"name": "checkout-5xx"},
        "spec": {
            "title": "checkout-api 5xx rate above 5%",
            "severity": "critical",
            "source": "alertmanager",
            "mode": "remediate",
            "alert": {"name": "CheckoutHighErrorRate", "fingerprint": "4f2a9c1b0e7d3a55"},
        },
        "status": {
            "phase": "Completed",
            "outcome": "reported",
            "sessionId": "2026-01-28T09-42-35-2886f5df",
            "attempts": 1,
            "startTime": "2026-01-28T09:42:33Z",
            "completionTime": "2026-01-28T09:45:45Z",
            "report": {
                "summary": "checkout-api is OOMKilled since the 09:31 deploy of v1.42.0: the new image caches whole carts in memory and hits its 512Mi limit under normal load.",
                "rootCause": "v1.42.0 keeps every cart in an unbounded in-process cache.",
                "evidence": [
                    "kubectl -n shop get pods: 4 of 6 checkout-api pods restarted 7 times, reason OOMKilled",
                    "kubectl -n shop rollout history deploy/checkout-api: v1.42.0 rolled out at 09:31",
                ],
                "recommendations": [
                    "Roll back checkout-api to v1.41.2 (the plan below).",
                    "Bound the cart cache before re-releasing v1.42.",
                ],
                "plan": plan,
                "confidence": "high",
                "resolved": false,
            },
            "plan": {
                "plan": plan,
                "planHash": hash,
                "sessionId": "2026-01-28T09-42-35-2886f5df",
                "proposedAt": "2026-01-28T09:45:40Z",
                "expiresAt": "2026-01-28T10:45:40Z",
            },
            "approval": {
                "name": "checkout-5xx-approve-1",
                "uid": "6f1d2b9e-8c3a-4d7e-9b10-2a5c7e9f0d13",
                "decision": "approve",
                "approver": "alice@example.com",
                "comment": "go, watch the error rate",
                "planHash": hash,
                "time": "2026-01-28T09:51:02Z",
            },
            "usage": {
                "turns": 3, "toolCalls": 2, "inputTokens": 51200, "outputTokens": 4100,
                "cacheReadTokens": 30000, "cacheWriteTokens": 15000, "costUSD": 0.2583,
            },
            "audit": {
                "path": "/var/lib/incident-operator/audit/2026-01-28T09-42-35-2886f5df.json",
                "sha256": "9b1e0c5a7d3f42e8b6a1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9",
                "chainHead": "0c2f6e1d9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d",
                "recordCount": 9,
                "truncated": true,
                "entries": [
                    {"seq": 2, "time": "2026-01-28T09:42:35.478Z", "event": "model_request", "detail": "turn 1: 1 messages"},
                    {"seq": 3, "time": "2026-01-28T09:42:38.100Z", "event": "model_response", "detail": "tool_use: shell", "durationMs": 2622},
                    {"seq": 4, "time": "2026-01-28T09:42:38.950Z", "event": "tool_call", "detail": "kubectl -n shop get pods -l app=checkout-api", "exitCode": 0, "durationMs": 850, "timedOut": false},
                    {"seq": 5, "time": "2026-01-28T09:42:42.010Z", "event": "model_response", "detail": "tool_use: shell", "durationMs": 3060},
                    {"seq": 6, "time": "2026-01-28T09:42:43.200Z", "event": "tool_call", "detail": "kubectl -n shop rollout history deploy/checkout-api --revision=0 && kubectl -n shop describe deploy/checkout-api | grep -i image", "exitCode": 1, "durationMs": 1190, "timedOut": false, "outputTruncated": true},
                    {"seq": 7, "time": "2026-01-28T09:45:40.000Z", "event": "model_response", "detail": "tool_use: report", "durationMs": 4400},
                    {"seq": 8, "time": "2026-01-28T09:45:40.100Z", "event": "report", "detail": "checkout-api is OOMKilled since the 09:31 deploy of v1.42.0"},
                    {"seq": 9, "time": "2026-01-28T09:45:40.200Z", "event": "session_end", "detail": "reported", "durationMs": 184722},
                ],
            },
            "alert": {
                "occurrences": 3,
                "firstSeen": "2026-01-28T09:41:58Z",
                "lastSeen": "2026-01-28T09:51:58Z",
                "recurrences": 2,
                "lastRecurrence": "2026-01-28T09:58:01Z",
            },
        },
    }))
}

/// Every attempt of the agent pod failed: no report, a message, Warning Events.
fn failed() -> Incident {
    incident(json!({
        "apiVersion": "sre.agentlab.dev/v1alpha1",
        "kind": "Incident",
        "metadata": {"name": "disk-full", "labels": {"team": "storage"}},
        "spec": {"title": "node-3 disk above 95%", "severity": "warning"},
        "status": {
            "phase": "Failed",
            "outcome": "error",
            "attempts": 3,
            "startTime": "2026-01-28T09:10:00Z",
            "completionTime": "2026-01-28T09:14:30Z",
            "message": "the agent pod failed 3 times (backoff limit 2): exit code 3: error: the model endpoint refused the key",
        },
    }))
}

/// The turn limit ended the session before a report.
fn limit_reached() -> Incident {
    incident(json!({
        "apiVersion": "sre.agentlab.dev/v1alpha1",
        "kind": "Incident",
        "metadata": {"name": "latency-p99", "labels": {"team": "storage"}},
        "spec": {"title": "search p99 latency above 2s", "severity": "info"},
        "status": {
            "phase": "Completed",
            "outcome": "limit_reached",
            "message": "max turns (2) reached before a report",
            "sessionId": "2026-01-28T09-20-00-0a1b2c3d",
            "attempts": 1,
            "startTime": "2026-01-28T09:20:00Z",
            "completionTime": "2026-01-28T09:22:05Z",
            "usage": {
                "turns": 2, "toolCalls": 1, "inputTokens": 9000, "outputTokens": 700,
                "cacheReadTokens": 0, "cacheWriteTokens": 4000, "costUSD": 0.0525,
            },
            "audit": {
                "path": "/var/lib/incident-operator/audit/2026-01-28T09-20-00-0a1b2c3d.jsonl",
                "truncated": false,
                "entries": [
                    {"seq": 1, "time": "2026-01-28T09:20:00.500Z", "event": "session_start", "detail": "plugin-show/latency-p99 with claude-sonnet-4-6 (investigate): search p99 latency above 2s"},
                    {"seq": 2, "time": "2026-01-28T09:20:01.000Z", "event": "model_response", "detail": "tool_use: shell", "durationMs": 1800},
                    {"seq": 3, "time": "2026-01-28T09:22:01.500Z", "event": "tool_call", "detail": "kubectl -n search logs deploy/search --since=1h | grep -c timeout", "exitCode": 137, "durationMs": 120000, "timedOut": true},
                    {"seq": 4, "time": "2026-01-28T09:22:04.000Z", "event": "model_response", "detail": "tool_use: shell", "durationMs": 2400},
                    {"seq": 5, "time": "2026-01-28T09:22:04.100Z", "event": "session_end", "detail": "limit_reached: max turns (2) reached before a report", "durationMs": 123600},
                ],
            },
        },
    }))
}

/// Waiting for an agent slot: nothing has run.
fn queued() -> Incident {
    incident(json!({
        "apiVersion": "sre.agentlab.dev/v1alpha1",
        "kind": "Incident",
        "metadata": {"name": "cert-expiry"},
        "spec": {"title": "TLS certificate of api.example.com expires in 6 days", "severity": "info"},
        "status": {"phase": "Queued", "message": "waiting for a free agent slot (3 of 3 running)"},
    }))
}

async fn cluster_with_incidents() -> PluginCluster {
    let cluster = PluginCluster::start(NS).await;
    let done = cluster.create(completed()).await;
    cluster
        .event(
            &done,
            "Normal",
            "AgentStarted",
            "started agent pod checkout-5xx-agent-1",
            "2026-01-28T09:42:33Z",
        )
        .await;
    cluster
        .event(
            &done,
            "Normal",
            "Completed",
            "reported: checkout-api is OOMKilled since the 09:31 deploy",
            "2026-01-28T09:45:46Z",
        )
        .await;
    let failed = cluster.create(failed()).await;
    for (reason, note, at) in [
        (
            "AgentRetrying",
            "attempt 1 failed: exit code 3; retrying",
            "2026-01-28T09:11:30Z",
        ),
        (
            "AgentRetrying",
            "attempt 2 failed: exit code 3; retrying",
            "2026-01-28T09:13:00Z",
        ),
        (
            "Failed",
            "the agent pod failed 3 times (backoff limit 2)",
            "2026-01-28T09:14:30Z",
        ),
    ] {
        cluster.event(&failed, "Warning", reason, note, at).await;
    }
    cluster.create(limit_reached()).await;
    let queued = cluster.create(queued()).await;
    cluster
        .event(
            &queued,
            "Normal",
            "Queued",
            "waiting for a free agent slot (3 of 3 running)",
            "2026-01-28T09:59:00Z",
        )
        .await;
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_tells_each_kind_of_incident_in_one_screen() {
    let cluster = cluster_with_incidents().await;
    for name in ["checkout-5xx", "disk-full", "latency-p99", "cert-expiry"] {
        let out = stdout_of(&cluster.plugin(&["-n", NS, "show", name, "--width", "100"]));
        assert!(
            !out.contains('\u{1b}'),
            "piped output has no colour:\n{out}"
        );
        assert!(out.lines().all(|l| l.chars().count() <= 100), "{out}");
        assert_golden(&format!("show-{name}.txt"), &out);
        if name == "checkout-5xx" {
            plugin::assert_readme_capture(&out);
        }
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_duration_cost_and_recurrences_and_prints_objects() {
    let cluster = cluster_with_incidents().await;
    let table = stdout_of(&cluster.plugin(&["-n", NS, "list", "--width", "120"]));
    assert_golden("list.txt", &table);

    let wide = stdout_of(&cluster.plugin(&[
        "-n",
        NS,
        "list",
        "-A",
        "-l",
        "team=storage",
        "--width",
        "120",
    ]));
    assert_golden("list-all-namespaces-selector.txt", &wide);

    let json: serde_json::Value = serde_json::from_str(&stdout_of(
        &cluster.plugin(&["-n", NS, "list", "-o", "json"]),
    ))
    .expect("-o json is JSON");
    assert_eq!(json["kind"], "List");
    let names: Vec<&str> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["cert-expiry", "checkout-5xx", "disk-full", "latency-p99"]
    );
    assert_eq!(json["items"][1]["status"]["usage"]["costUSD"], 0.2583);

    let yaml = stdout_of(&cluster.plugin(&["-n", NS, "list", "-o", "yaml", "-l", "team=storage"]));
    let yaml: serde_json::Value = serde_saphyr::from_str(&yaml).expect("-o yaml is YAML");
    assert_eq!(yaml["items"].as_array().map(Vec::len), Some(2));
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colour_only_when_asked_or_on_a_terminal_and_width_from_columns() {
    let cluster = cluster_with_incidents().await;
    let coloured =
        stdout_of(&cluster.plugin(&["-n", NS, "show", "disk-full", "--color", "always"]));
    assert!(coloured.contains("\u{1b}["), "{coloured}");
    let plain = stdout_of(&cluster.plugin(&["-n", NS, "show", "disk-full"]));
    assert!(!plain.contains('\u{1b}'));
    // The same text once the escape codes are gone.
    let stripped = regex::Regex::new("\u{1b}\\[[0-9;]*m")
        .unwrap()
        .replace_all(&coloured, "");
    assert_eq!(stripped, plain);

    let narrow = std::process::Command::new(plugin::PLUGIN)
        .args(["-n", NS, "show", "checkout-5xx"])
        .env("KUBECONFIG", &cluster.api.kubeconfig)
        .env("KUBECTL_INCIDENT_NOW", plugin::NOW)
        .env("COLUMNS", "60")
        .output()
        .unwrap();
    let narrow = stdout_of(&narrow);
    assert!(narrow.lines().all(|l| l.chars().count() <= 60), "{narrow}");
    assert!(narrow.contains("Roll back checkout-api"), "{narrow}");
    cluster.stop().await;
}

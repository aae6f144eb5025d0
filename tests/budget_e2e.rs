//! The spend guard end to end: real agents against the scripted Messages API, which reports one
//! million input tokens per session; the controller prices them with a `--model-prices` override
//! ($2 per million input tokens for the default model, so each session costs $2.00, written by the
//! agent as `status.usage.costUSD`) under `--namespace-daily-budget-usd 1.5`.
//!
//! What it proves: the first Incident runs and its cost lands in status and metrics; the next
//! warning Incident waits in `Queued` with reason `BudgetExhausted` and an Event; a critical one
//! still passes while the spend is below twice the budget, and the next critical one is held; and a
//! restarted controller holds a new Incident too — the spend comes from the Incidents' status, not
//! from memory.

#[path = "support/agent_cluster.rs"]
#[allow(dead_code)]
mod agent_cluster;

use std::time::Duration;

use agent_cluster::{AgentCluster, NS, RunningController, controller_config, free_addr};
use incident_operator::incident::{Incident, Phase};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use scripted_model::{ScriptedModel, Step, reply};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(120);
/// Every Sonnet 4 model (the default model included) at $2 per million input tokens.
const PRICES: &str =
    r#"{"claude-sonnet-4": {"input": 2, "output": 0, "cacheWrite": 0, "cacheRead": 0}}"#;

fn report_costing_two_dollars() -> Step {
    Step::Reply(reply::with_usage(
        reply::tool_use(
            "r1",
            "report",
            json!({"summary": "scripted", "rootCause": "scripted", "confidence": "low",
                   "resolved": false}),
        ),
        1_000_000,
        0,
        0,
        0,
    ))
}

fn incident_yaml(name: &str, severity: &str) -> String {
    format!(
        "apiVersion: sre.agentlab.dev/v1alpha1\nkind: Incident\nmetadata:\n  name: {name}\n  \
         namespace: {NS}\nspec:\n  title: budget test {name}\n  severity: {severity}\n"
    )
}

fn ready_reason(incident: &Incident) -> Option<String> {
    incident
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.reason.clone())
}

fn held(incident: &Incident) -> bool {
    incident.status.as_ref().and_then(|s| s.phase) == Some(Phase::Queued)
        && ready_reason(incident).as_deref() == Some("BudgetExhausted")
}

fn completed(incident: &Incident) -> bool {
    incident.status.as_ref().and_then(|s| s.phase) == Some(Phase::Completed)
}

fn cost(incident: &Incident) -> Option<f64> {
    incident.status.as_ref()?.usage.as_ref()?.cost_usd
}

async fn agent_pod_count(cluster: &AgentCluster) -> usize {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
    pods.list(&ListParams::default())
        .await
        .expect("list pods")
        .items
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spent_budget_holds_new_incidents_lets_critical_pass_and_survives_a_restart() {
    let model = ScriptedModel::start((0..4).map(|_| report_costing_two_dollars()).collect()).await;
    let cluster = AgentCluster::start().await;
    let flags = [
        "--namespace-daily-budget-usd",
        "1.5",
        "--model-prices",
        PRICES,
    ];
    let controller = RunningController::start(
        &cluster.client,
        controller_config(&model.base_url(), free_addr(), &flags),
    );

    cluster.kubectl_apply(&incident_yaml("first", "warning"));
    let first = cluster
        .wait_for("first", "Completed", WAIT, completed)
        .await;
    assert_eq!(
        cost(&first),
        Some(2.0),
        "the agent priced with the override"
    );

    // $2.00 of $1.50 spent: a warning Incident waits.
    cluster.kubectl_apply(&incident_yaml("second", "warning"));
    let second = cluster
        .wait_for("second", "held by the budget", WAIT, held)
        .await;
    let message = second.status.as_ref().and_then(|s| s.message.clone());
    let ready_message = second
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.message.clone())
        .unwrap_or_default();
    assert!(
        ready_message.contains("namespace shop budget exhausted: $2.00 of $1.50"),
        "{ready_message} / {message:?}"
    );

    // Critical passes below twice the budget ($3.00), and is held beyond it.
    cluster.kubectl_apply(&incident_yaml("page-1", "critical"));
    cluster
        .wait_for("page-1", "Completed", WAIT, completed)
        .await;
    cluster.kubectl_apply(&incident_yaml("page-2", "critical"));
    cluster
        .wait_for("page-2", "held by the budget", WAIT, held)
        .await;
    assert_eq!(model.requests().len(), 2, "two sessions ran, no more");

    let metrics = controller.metrics().await;
    let cost_line = format!(
        r#"incident_operator_cost_usd_total{{model="{}",namespace="shop"}} 4.0"#,
        incident_operator::anthropic::DEFAULT_MODEL
    );
    assert!(
        metrics.contains(&cost_line),
        "{cost_line} missing:\n{metrics}"
    );
    assert!(
        metrics.contains("incident_operator_budget_exhausted_total 2"),
        "{metrics}"
    );
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), NS);
    let reasons: Vec<String> = events
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("second"))
        .filter_map(|e| e.reason)
        .collect();
    assert!(
        reasons.iter().any(|r| r == "BudgetExhausted"),
        "{reasons:?}"
    );

    // A new controller knows nothing but the Incidents: it holds a new one as well.
    controller.stop().await;
    let controller = RunningController::start(
        &cluster.client,
        controller_config(&model.base_url(), free_addr(), &flags),
    );
    cluster.kubectl_apply(&incident_yaml("after-restart", "warning"));
    cluster
        .wait_for("after-restart", "held by the budget", WAIT, held)
        .await;
    let second = cluster.wait_for("second", "still held", WAIT, held).await;
    assert!(held(&second));
    assert_eq!(
        agent_pod_count(&cluster).await,
        2,
        "only the two paid sessions had pods"
    );
    assert_eq!(model.requests().len(), 2);
    controller.stop().await;
}

//! Issue 9: an agent cannot forge another Incident's status, end to end. The real agent binary,
//! scripted by the loopback Messages API, runs `kubectl patch incident <other> --subresource=status`
//! from its pod with its pod-bound token; the API server (RBAC + the chart's
//! ValidatingAdmissionPolicy `agent-own-incident`) is what answers. The commands go past the agent's
//! read-only gate on purpose (`K=kubectl; $K patch …` is one of its documented bypasses): the gate
//! is not the boundary, the API server is.
//!
//! The second half deletes the policy and shows the same forge succeeding, so the first half can
//! fail: the agent ServiceAccount's RBAC alone allows `patch` on every `incidents/status` in its
//! namespace.

use super::*;

/// The chart's `agent-own-incident` policy and binding, as `helm template` names them.
const POLICY: &str = "incident-operator-agent-own-incident";

/// What the policy answers a write to another Incident's status (the chart's `message`).
const POLICY_MESSAGE: &str = "an agent may write only the status of its own Incident";

/// The chart's ValidatingAdmissionPolicy and its binding, from the same render as the RBAC.
fn chart_policy_yaml() -> String {
    chart_docs_of_kinds(
        &[],
        &[
            "kind: ValidatingAdmissionPolicy",
            "kind: ValidatingAdmissionPolicyBinding",
        ],
    )
}

/// A shell command that waits (bounded) until the Incident `name` is Queued behind this agent, so
/// the forge lands on an Incident the controller has already taken in and is holding back.
fn wait_until_queued(kubectl: &Path, name: &str) -> String {
    format!(
        "K={kubectl}; for i in $(seq 90); do [ \"$($K -n {NS} get incident {name} -o 'jsonpath={{.status.phase}}' 2>/dev/null)\" = Queued ] && break; sleep 1; done; $K -n {NS} get incident {name} -o 'jsonpath={{.status.phase}}'",
        kubectl = kubectl.display()
    )
}

/// `kubectl patch` of `name`'s status that claims it was investigated and resolved.
fn forge_command(kubectl: &Path, name: &str) -> String {
    let patch = json!({"status": {
        "phase": "Completed",
        "outcome": "reported",
        "report": {"summary": "all clear", "confidence": "high", "resolved": true},
    }});
    format!(
        "K={kubectl}; $K -n {NS} patch incident {name} --subresource=status --type=merge -p '{patch}' 2>&1",
        kubectl = kubectl.display()
    )
}

/// `kubectl patch` of the agent's own Incident's status (a progress note).
fn own_write_command(kubectl: &Path, name: &str) -> String {
    let patch = json!({"status": {"lastCommand": "own status write by the agent"}});
    format!(
        "K={kubectl}; $K -n {NS} patch incident {name} --subresource=status --type=merge -p '{patch}' 2>&1",
        kubectl = kubectl.display()
    )
}

fn report(summary: &str) -> Step {
    Step::Reply(reply::tool_use(
        format!("report-{}", summary.len()),
        "report",
        json!({"summary": summary, "confidence": "medium", "resolved": false}),
    ))
}

/// The text of the `tool_result` block answering `tool_use_id`, from what the agent sent the model.
pub(crate) fn tool_result(model: &ScriptedModel, tool_use_id: &str) -> String {
    for request in model.requests() {
        let Some(messages) = request.body["messages"].as_array() else {
            continue;
        };
        for block in messages
            .iter()
            .filter_map(|m| m["content"].as_array())
            .flatten()
        {
            if block["type"] == "tool_result" && block["tool_use_id"] == tool_use_id {
                return match &block["content"] {
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
            }
        }
    }
    panic!("the agent never sent a tool_result for {tool_use_id}");
}

fn report_of(incident: &Incident) -> Option<(String, bool)> {
    let report = incident.status.as_ref()?.report.as_ref()?;
    Some((report.summary.clone(), report.resolved))
}

/// One controller, one agent at a time (so the victim waits in the queue while the attacker runs).
fn one_agent_config(model: &ScriptedModel) -> ControllerConfig {
    let mut config = config(AGENT_IMAGE, Some(model.base_url()), 1);
    // The first command waits for the victim to be queued; give it room on a loaded machine.
    config.pod.defaults.command_timeout_seconds = 100;
    config.pod.defaults.session_timeout_seconds = 300;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agent_cannot_forge_another_incidents_status_but_writes_its_own() {
    let kubectl = kube_emulator::tools::kubectl().unwrap_or_else(|e| panic!("{e}"));
    let model = ScriptedModel::start(vec![
        // Attacker `a`'s session.
        Step::Reply(reply::tool_use(
            "wait",
            "shell",
            json!({"command": wait_until_queued(&kubectl, "b")}),
        )),
        Step::Reply(reply::tool_use(
            "forge",
            "shell",
            json!({"command": forge_command(&kubectl, "b")}),
        )),
        Step::Reply(reply::tool_use(
            "own",
            "shell",
            json!({"command": own_write_command(&kubectl, "a")}),
        )),
        report("a looked around"),
        // Victim `b`'s own session, once `a` is done.
        report("checkout database is down"),
    ])
    .await;
    let cluster = Cluster::start().await;
    cluster.kubectl_apply(&chart_policy_yaml());
    let controller = RunningController::start(&cluster.operator_client, one_agent_config(&model));

    cluster.apply_incident("a", "warning");
    cluster
        .wait_for("a", "running its agent", |i| {
            i.status.as_ref().and_then(|s| s.agent_pod.as_deref()) == Some("a-agent-1")
        })
        .await;
    cluster.apply_incident("b", "critical");

    let a = cluster.wait_for_phase("a", Phase::Completed).await;
    assert_eq!(
        a.status.as_ref().and_then(|s| s.outcome),
        Some(Outcome::Reported)
    );
    let waited = tool_result(&model, "wait");
    assert!(waited.contains("Queued"), "{waited}");
    let forged = tool_result(&model, "forge");
    assert!(
        forged.contains("Forbidden") && forged.contains(POLICY_MESSAGE),
        "the API server should refuse the forge with the policy's message: {forged}"
    );
    let own = tool_result(&model, "own");
    assert!(
        own.contains("incident.sre.agentlab.dev/a patched"),
        "the agent's write to its own Incident should be admitted: {own}"
    );
    // The audit on the volume shows the refused attempt too.
    let session = a.status.as_ref().and_then(|s| s.session_id.clone());
    let session = session.expect("a has a session id");
    let audit: String = std::fs::read_dir(cluster.audit_dir())
        .expect("audit volume")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&session))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        audit.contains(POLICY_MESSAGE),
        "audit of {session}: {audit}"
    );

    // The victim was investigated by its own agent; the forged report never landed.
    let b = cluster.wait_for_phase("b", Phase::Completed).await;
    assert_eq!(
        report_of(&b),
        Some(("checkout database is down".to_string(), false))
    );
    assert_eq!(
        b.status.as_ref().and_then(|s| s.agent_pod.as_deref()),
        Some("b-agent-1")
    );

    controller.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_policy_the_same_forge_succeeds() {
    let kubectl = kube_emulator::tools::kubectl().unwrap_or_else(|e| panic!("{e}"));
    let model = ScriptedModel::start(vec![
        Step::Reply(reply::tool_use(
            "wait",
            "shell",
            json!({"command": wait_until_queued(&kubectl, "b")}),
        )),
        Step::Reply(reply::tool_use(
            "forge",
            "shell",
            json!({"command": forge_command(&kubectl, "b")}),
        )),
        report("a looked around"),
    ])
    .await;
    let cluster = Cluster::start().await;
    cluster.kubectl_apply(&chart_policy_yaml());
    // Installed, then removed: what a cluster without the chart's policy (or before 1.30) has.
    cluster.kubectl(
        &[
            "delete",
            "validatingadmissionpolicybinding,validatingadmissionpolicy",
            POLICY,
            "--wait=true",
        ],
        None,
    );
    let controller = RunningController::start(&cluster.operator_client, one_agent_config(&model));

    cluster.apply_incident("a", "warning");
    cluster
        .wait_for("a", "running its agent", |i| {
            i.status.as_ref().and_then(|s| s.agent_pod.as_deref()) == Some("a-agent-1")
        })
        .await;
    cluster.apply_incident("b", "critical");

    cluster.wait_for_phase("a", Phase::Completed).await;
    let forged = tool_result(&model, "forge");
    assert!(
        forged.contains("incident.sre.agentlab.dev/b patched"),
        "RBAC alone lets the agent patch any Incident's status: {forged}"
    );
    // The critical Incident now reads as investigated and resolved, and no agent ever ran for it.
    let b = cluster.wait_for_phase("b", Phase::Completed).await;
    assert_eq!(report_of(&b), Some(("all clear".to_string(), true)));
    assert!(cluster.agent_pods("b").await.is_empty());

    controller.stop().await;
    cluster.stop().await;
}

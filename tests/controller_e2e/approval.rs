//! Issue 12 end to end: remediation behind a human approval the API server attributes. The API
//! server enforces the chart's RBAC and both of its ValidatingAdmissionPolicies (from `helm
//! template`); the real controller, the real agent binary in the process kubelet, the scripted
//! Messages API. People are impersonated by the admin identity (`kubectl --as`, kubeconfig `as:`),
//! which is what `request.userInfo.username` then says, on the emulator and a real cluster alike.
//!
//! 1. A remediate Incident investigates with the read-only ServiceAccount: its write attempt is a
//!    403 from the API server (RBAC), not only the agent's gate. Its report proposes a plan, and the
//!    Incident waits in AwaitingApproval.
//! 2. Refused by the API server: an approval naming another approver, one by a ServiceAccount, and
//!    an edit of an approval after creation. Ignored with a clear message: an approval of another
//!    plan hash (StalePlanHash).
//! 3. `incident-operator approve` as alice starts the execution pod with the remediation account;
//!    the plan's step runs (the pod is deleted), a command outside the plan is refused by the
//!    execution gate, the Incident completes with the execution's report linked to the approval.
//! 4. A rejection completes the Incident with outcome `rejected` and no execution pod.
//! 5. Another controller's short approval timeout: the plan expires, `approve` refuses, and an
//!    approval created after the expiry is reported, not acted on.

use super::*;

const APPROVER: &str = "alice@example.com";
const ROBOT: &str = "approval-robot";

/// Both chart policies (agent confinement and approvals) and their bindings.
fn chart_policies_yaml() -> String {
    chart_docs_of_kinds(
        &["remediation.enabled=true"],
        &[
            "kind: ValidatingAdmissionPolicy",
            "kind: ValidatingAdmissionPolicyBinding",
        ],
    )
}

/// alice (a person) and a ServiceAccount both hold the chart's `incident-approver` role here:
/// what stops the ServiceAccount is the policy, not RBAC.
fn approver_bindings_yaml() -> String {
    format!(
        r#"apiVersion: v1
kind: ServiceAccount
metadata:
  name: {ROBOT}
  namespace: {NS}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: oncall-approvers
  namespace: {NS}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: incident-approver
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: User
    name: {APPROVER}
  - kind: ServiceAccount
    name: {ROBOT}
    namespace: {NS}
---
apiVersion: v1
kind: Pod
metadata:
  name: victim
  namespace: {NS}
spec:
  containers:
  - name: c
    image: not-run:e2e
"#
    )
}

fn approval_yaml(name: &str, incident: &str, hash: &str, approver: &str) -> String {
    format!(
        "apiVersion: sre.agentlab.dev/v1alpha1\nkind: IncidentApproval\nmetadata:\n  name: {name}\n  namespace: {NS}\nspec:\n  incident: {incident}\n  planHash: \"{hash}\"\n  decision: approve\n  approver: \"{approver}\"\n"
    )
}

fn remediate_incident_yaml(name: &str) -> String {
    format!(
        "apiVersion: sre.agentlab.dev/v1alpha1\nkind: Incident\nmetadata:\n  name: {name}\n  namespace: {NS}\nspec:\n  title: checkout pods wedged ({name})\n  severity: critical\n  mode: remediate\n"
    )
}

/// The plan's one step, verbatim: one plain command, as the agent's proposal check wants.
fn delete_victim(kubectl: &Path) -> String {
    format!(
        "{} -n {NS} delete pod victim --wait=false",
        kubectl.display()
    )
}

fn plan_report(kubectl: &Path) -> Step {
    Step::Reply(reply::tool_use(
        "propose",
        "report",
        json!({
            "summary": "the victim pod is wedged; deleting it lets its owner replace it",
            "confidence": "high",
            "resolved": false,
            "plan": {
                "steps": [{
                    "command": delete_victim(kubectl),
                    "purpose": "remove the wedged pod",
                    "expectedEffect": "pod victim is gone",
                    "verify": format!("{} -n {NS} get pod victim", kubectl.display()),
                }],
                "risk": "low",
                "riskDetail": "one pod, no owner data on it",
            },
        }),
    ))
}

/// kubectl as this cluster's admin, with extra arguments (`--as`, `--token`); the output and
/// whether it succeeded, never a panic (refusals are what these tests look at).
fn kubectl_try(cluster: &Cluster, args: &[&str], input: Option<&str>) -> (bool, String) {
    let mut child = cluster.kubectl_command(args).spawn().expect("kubectl runs");
    let mut stdin = child.stdin.take().expect("stdin");
    if let Some(input) = input {
        use std::io::Write;
        stdin.write_all(input.as_bytes()).expect("write stdin");
    }
    drop(stdin);
    let output = child.wait_with_output().expect("kubectl finishes");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// A kubeconfig for the same server as the admin's, acting as `user` (kubeconfig `as:`).
fn impersonating_kubeconfig(cluster: &Cluster, user: &str) -> PathBuf {
    let mut kubeconfig: serde_json::Value = serde_json::from_str(
        &cluster.kubectl(&["config", "view", "--raw", "--minify", "-o", "json"], None),
    )
    .expect("kubeconfig JSON");
    kubeconfig["users"][0]["user"]["as"] = json!(user);
    kubeconfig["users"][0]["user"]["as-groups"] = json!(["oncall"]);
    let path = cluster
        .dir
        .path()
        .join(format!("kubeconfig-{}", user.replace(['@', '.'], "-")));
    std::fs::write(&path, kubeconfig.to_string()).expect("write kubeconfig");
    path
}

/// `incident-operator approve NAME` with `kubeconfig`: (exit success, stdout + stderr).
fn approve_command(kubeconfig: &Path, name: &str) -> (bool, String) {
    decision_command("approve", kubeconfig, name)
}

/// `incident-operator <verb> NAME` with `kubeconfig`: (exit success, stdout + stderr).
fn decision_command(verb: &str, kubeconfig: &Path, name: &str) -> (bool, String) {
    let output = Command::new(BIN)
        .args([
            verb,
            name,
            "-n",
            NS,
            "--comment",
            "restart approved on call",
        ])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .env_remove("KUBECONFIG")
        .output()
        .expect("approve runs");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

fn approval_config(model: &ScriptedModel, timeout: Duration) -> ControllerConfig {
    let mut config = config(AGENT_IMAGE, Some(model.base_url()), 2);
    config.pod.remediation_service_account = Some(REMEDIATION_SERVICE_ACCOUNT.to_string());
    config.policy.approval_timeout = timeout;
    config
}

async fn approval_cluster() -> Cluster {
    let cluster =
        Cluster::start_with_rbac(&chart_rbac_yaml_with(&["remediation.enabled=true"])).await;
    cluster.kubectl_apply(&incident_operator::approval::crd_yaml());
    cluster.kubectl_apply(&chart_policies_yaml());
    cluster.kubectl_apply(&approver_bindings_yaml());
    cluster
}

fn plan_hash_of(incident: &Incident) -> String {
    incident
        .status
        .as_ref()
        .and_then(|s| s.plan.as_ref())
        .map(|p| p.plan_hash.clone())
        .expect("status.plan")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approved_plan_runs_with_the_remediation_account_and_nothing_else_does() {
    let kubectl = kube_emulator::tools::kubectl().unwrap_or_else(|e| panic!("{e}"));
    let k = kubectl.display().to_string();
    let model = ScriptedModel::start(vec![
        // The investigation: a write past the read-only gate (a variable holding kubectl), then
        // the proposal.
        Step::Reply(reply::tool_use(
            "try-write",
            "shell",
            json!({"command": format!("K={k}; $K -n {NS} delete pod victim --wait=false 2>&1")}),
        )),
        plan_report(&kubectl),
        // The execution session: the step verbatim, a command outside the plan, the report.
        Step::Reply(reply::tool_use(
            "step-1",
            "shell",
            json!({"command": delete_victim(&kubectl)}),
        )),
        Step::Reply(reply::tool_use(
            "outside",
            "shell",
            json!({"command": format!("{k} -n {NS} scale deploy/checkout --replicas=0")}),
        )),
        Step::Reply(reply::tool_use(
            "done",
            "report",
            json!({
                "summary": "deleted the wedged pod victim; it is gone",
                "confidence": "high",
                "resolved": true,
                "actionsTaken": [delete_victim(&kubectl)],
            }),
        )),
    ])
    .await;
    let cluster = approval_cluster().await;
    let controller = RunningController::start(
        &cluster.operator_client,
        approval_config(&model, Duration::from_secs(600)),
    );

    cluster.kubectl_apply(&remediate_incident_yaml("wedged"));
    let waiting = cluster
        .wait_for_phase("wedged", Phase::AwaitingApproval)
        .await;
    let hash = plan_hash_of(&waiting);
    let tried = confinement::tool_result(&model, "try-write");
    assert!(
        tried.contains(&format!(
            "pods \"victim\" is forbidden: User \"system:serviceaccount:{NS}:{AGENT_SERVICE_ACCOUNT}\" cannot delete resource \"pods\""
        )),
        "the investigation must not be able to write: {tried}"
    );
    let investigation = cluster.agent_pods("wedged").await;
    assert_eq!(
        investigation[0]
            .spec
            .as_ref()
            .unwrap()
            .service_account_name
            .as_deref(),
        Some(AGENT_SERVICE_ACCOUNT)
    );
    cluster.wait_for_event("wedged", "PlanProposed").await;

    // Refused by the API server.
    let alice = ["--as", APPROVER, "--as-group", "oncall"];
    let (ok, said) = kubectl_try(
        &cluster,
        &[&alice[..], &["create", "-f", "-"]].concat(),
        Some(&approval_yaml("as-bob", "wedged", &hash, "bob@example.com")),
    );
    assert!(!ok, "{said}");
    assert!(
        said.contains(&format!(
            "spec.approver must be the requesting user: {APPROVER} may not approve as bob@example.com"
        )),
        "{said}"
    );
    let robot_token = cluster.kubectl(&["-n", NS, "create", "token", ROBOT], None);
    let robot = format!("system:serviceaccount:{NS}:{ROBOT}");
    let (ok, said) = kubectl_try(
        &cluster,
        &["--token", robot_token.trim(), "create", "-f", "-"],
        Some(&approval_yaml("by-robot", "wedged", &hash, &robot)),
    );
    assert!(!ok, "{said}");
    assert!(said.contains("a ServiceAccount may not approve"), "{said}");

    // Ignored, and said so: an approval of another plan.
    let stale = format!("sha256:{}", "0".repeat(64));
    let (ok, said) = kubectl_try(
        &cluster,
        &[&alice[..], &["create", "-f", "-"]].concat(),
        Some(&approval_yaml("stale", "wedged", &stale, APPROVER)),
    );
    assert!(ok, "{said}");
    cluster.wait_for_event("wedged", "StalePlanHash").await;
    let noted = cluster
        .wait_for(
            "wedged",
            "saying the stale approval was not acted on",
            |i| {
                i.status
                    .as_ref()
                    .and_then(|s| s.message.as_deref())
                    .is_some_and(|m| m.contains("IncidentApproval stale names plan sha256:0000"))
            },
        )
        .await;
    assert_eq!(phase_of(&noted), Some(Phase::AwaitingApproval));
    // Immutable: not even the admin may point it at the current plan.
    let (ok, said) = kubectl_try(
        &cluster,
        &[
            "-n",
            NS,
            "patch",
            "incidentapproval",
            "stale",
            "--type=merge",
            "-p",
            &json!({"spec": {"planHash": hash}}).to_string(),
        ],
        None,
    );
    assert!(!ok, "{said}");
    assert!(
        said.contains("an IncidentApproval is immutable once created"),
        "{said}"
    );

    // Approved by alice, through the subcommand.
    let (ok, printed) = approve_command(&impersonating_kubeconfig(&cluster, APPROVER), "wedged");
    let approved_at = Instant::now();
    assert!(ok, "{printed}");
    assert!(
        printed.starts_with(&format!(
            "approved the plan of Incident {NS}/wedged as {APPROVER}"
        )),
        "{printed}"
    );
    assert!(
        printed.contains(&hash) && printed.contains(&delete_victim(&kubectl)),
        "{printed}"
    );
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
    let execution_pod = loop {
        if let Some(pod) = pods.get_opt("wedged-agent-2").await.expect("get pod") {
            break pod;
        }
        assert!(
            approved_at.elapsed() < WAIT,
            "no execution pod after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!(
        "approval created -> execution pod created: {:?} (polled every 20 ms)",
        approved_at.elapsed()
    );
    assert_eq!(
        execution_pod
            .spec
            .as_ref()
            .unwrap()
            .service_account_name
            .as_deref(),
        Some(REMEDIATION_SERVICE_ACCOUNT)
    );

    let done = cluster.wait_for_phase("wedged", Phase::Completed).await;
    let status = done.status.clone().expect("status");
    assert_eq!(status.outcome, Some(Outcome::Reported));
    let approval = status.approval.clone().expect("status.approval");
    assert_eq!(approval.approver, APPROVER);
    assert_eq!(approval.plan_hash, hash);
    assert_eq!(
        approval.comment.as_deref(),
        Some("restart approved on call")
    );
    assert!(
        approval.name.starts_with("wedged-approve-"),
        "{}",
        approval.name
    );
    assert_eq!(approval.execution_session_id, status.session_id);
    assert_ne!(
        status.plan.as_ref().and_then(|p| p.session_id.clone()),
        status.session_id,
        "the execution is a session of its own"
    );
    let report = status.report.clone().expect("report");
    if report.actions_taken.is_empty() {
        eprintln!(
            "EXECUTION LOG:\n{}",
            kubectl_try(&cluster, &["-n", NS, "logs", "wedged-agent-2"], None).1
        );
    }
    assert!(report.resolved, "{status:#?}");
    assert!(
        report
            .actions_taken
            .iter()
            .any(|a| a.contains("delete pod victim")),
        "{status:#?}"
    );
    assert!(
        pods.get_opt("victim").await.expect("get").is_none(),
        "the step ran"
    );
    let outside = confinement::tool_result(&model, "outside");
    assert!(
        outside.to_lowercase().contains("refused")
            || outside.to_lowercase().contains("not allowed"),
        "a command outside the plan must be refused: {outside}"
    );
    let reasons = cluster.wait_for_event("wedged", "PlanExecuted").await;
    for reason in [
        "PlanProposed",
        "StalePlanHash",
        "PlanApproved",
        "AgentStarted",
    ] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} missing: {reasons:?}"
        );
    }
    // Deciding twice is refused clearly.
    let (ok, said) = approve_command(&impersonating_kubeconfig(&cluster, APPROVER), "wedged");
    assert!(!ok);
    assert!(
        said.contains("already approved by alice@example.com"),
        "{said}"
    );

    let described = cluster.kubectl(&["-n", NS, "describe", "incident", "wedged"], None);
    for wanted in [
        "PlanProposed",
        "PlanApproved",
        "ExecutionStarted",
        "PlanExecuted",
        APPROVER,
    ] {
        assert!(
            described.contains(wanted),
            "describe lacks {wanted}:\n{described}"
        );
    }
    if let Ok(path) = std::env::var("APPROVAL_E2E_DESCRIBE") {
        std::fs::write(path, &described).expect("write describe");
    }

    controller.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unapproved_plan_expires_and_a_late_approval_is_not_acted_on() {
    let kubectl = kube_emulator::tools::kubectl().unwrap_or_else(|e| panic!("{e}"));
    let model = ScriptedModel::start(vec![plan_report(&kubectl)]).await;
    let cluster = approval_cluster().await;
    let controller = RunningController::start(
        &cluster.operator_client,
        approval_config(&model, Duration::from_secs(3)),
    );
    cluster.kubectl_apply(&remediate_incident_yaml("unattended"));
    let waiting = cluster
        .wait_for_phase("unattended", Phase::AwaitingApproval)
        .await;
    let hash = plan_hash_of(&waiting);
    let expired = cluster.wait_for_phase("unattended", Phase::Completed).await;
    assert_eq!(
        expired.status.as_ref().and_then(|s| s.outcome),
        Some(Outcome::ApprovalExpired)
    );
    cluster
        .wait_for_event("unattended", "ApprovalExpired")
        .await;
    let (ok, said) = approve_command(&impersonating_kubeconfig(&cluster, APPROVER), "unattended");
    assert!(!ok);
    assert!(
        said.contains("the plan of Incident unattended expired at"),
        "{said}"
    );
    // Made by hand after the expiry: admitted by the API server, reported, never acted on.
    let (ok, said) = kubectl_try(
        &cluster,
        &["--as", APPROVER, "create", "-f", "-"],
        Some(&approval_yaml("late", "unattended", &hash, APPROVER)),
    );
    assert!(ok, "{said}");
    cluster
        .wait_for("unattended", "saying the late approval was ignored", |i| {
            i.status
                .as_ref()
                .and_then(|s| s.message.as_deref())
                .is_some_and(|m| {
                    m.contains("IncidentApproval late was created after the plan expired")
                })
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        cluster.agent_pods("unattended").await.len(),
        1,
        "no execution pod"
    );
    let still = cluster.incidents().get("unattended").await.expect("get");
    assert!(
        still
            .status
            .as_ref()
            .and_then(|s| s.approval.as_ref())
            .is_none()
    );
    controller.stop().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rejected_plan_completes_without_an_execution_pod() {
    let kubectl = kube_emulator::tools::kubectl().unwrap_or_else(|e| panic!("{e}"));
    let model = ScriptedModel::start(vec![plan_report(&kubectl)]).await;
    let cluster = approval_cluster().await;
    let controller = RunningController::start(
        &cluster.operator_client,
        approval_config(&model, Duration::from_secs(600)),
    );
    cluster.kubectl_apply(&remediate_incident_yaml("declined"));
    let waiting = cluster
        .wait_for_phase("declined", Phase::AwaitingApproval)
        .await;
    let hash = plan_hash_of(&waiting);
    let (ok, printed) = decision_command(
        "reject",
        &impersonating_kubeconfig(&cluster, APPROVER),
        "declined",
    );
    assert!(ok, "{printed}");
    assert!(
        printed.starts_with(&format!(
            "rejected the plan of Incident {NS}/declined as {APPROVER}"
        )),
        "{printed}"
    );
    let done = cluster.wait_for_phase("declined", Phase::Completed).await;
    let status = done.status.expect("status");
    assert_eq!(status.outcome, Some(Outcome::Rejected));
    let approval = status.approval.expect("status.approval");
    assert_eq!(approval.decision, incident_operator::plan::Decision::Reject);
    assert_eq!(
        (approval.approver.as_str(), approval.plan_hash.as_str()),
        (APPROVER, hash.as_str())
    );
    assert!(approval.execution_session_id.is_none());
    cluster.wait_for_event("declined", "PlanRejected").await;
    assert_eq!(
        cluster.agent_pods("declined").await.len(),
        1,
        "no execution pod"
    );
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
    assert!(
        pods.get_opt("victim").await.expect("get").is_some(),
        "nothing ran"
    );
    controller.stop().await;
    cluster.stop().await;
}

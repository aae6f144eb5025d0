//! `kubectl incident approve` / `reject`, the real binary against the API server: the decision
//! becomes an IncidentApproval made by the caller's identity (SelfSubjectReview), and an Incident
//! without a plan is one clear line.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/plugin.rs"]
mod plugin;

use incident_operator::approval::resource::IncidentApproval;
use incident_operator::incident::Incident;
use incident_operator::plan::{Plan, plan_hash};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::{Api, ListParams, PostParams};
use plugin::{PluginCluster, stdout_of};
use serde_json::json;

const NS: &str = "plugin-decide";

fn awaiting(name: &str, plan: &Plan) -> Incident {
    let now = jiff::Timestamp::now();
    let expires = now + jiff::SignedDuration::from_hours(1);
    serde_json::from_value(json!({
        "apiVersion": "sre.agentlab.dev/v1alpha1",
        "kind": "Incident",
        "metadata": {"name": name},
        "spec": {"title": "checkout pods OOMKilled", "severity": "critical", "mode": "remediate"},
        "status": {
            "phase": "AwaitingApproval",
            "plan": {
                "plan": plan,
                "planHash": plan_hash(plan),
                "proposedAt": now.to_string(),
                "expiresAt": expires.to_string(),
            },
        },
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_and_reject_record_the_callers_decision() {
    let cluster = PluginCluster::start(NS).await;
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.api.client.clone());
    match crds
        .create(&PostParams::default(), &IncidentApproval::crd())
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(e) => panic!("install the IncidentApproval CRD: {e}"),
    }
    let plan: Plan = serde_json::from_value(json!({
        "steps": [{
            "command": "kubectl -n shop rollout undo deploy/checkout-api",
            "purpose": "back to the release before the leak",
            "expectedEffect": "pods stop restarting",
            "verify": "kubectl -n shop rollout status deploy/checkout-api",
        }],
        "risk": "low",
    }))
    .unwrap();
    cluster.create(awaiting("oom", &plan)).await;
    cluster.create(awaiting("oom-2", &plan)).await;

    let approved = stdout_of(&cluster.plugin(&["-n", NS, "approve", "oom", "-m", "go ahead"]));
    assert!(
        approved.starts_with(&format!("approved the plan of Incident {NS}/oom as ")),
        "{approved}"
    );
    assert!(approved.contains(&plan_hash(&plan)), "{approved}");
    let rejected = stdout_of(&cluster.plugin(&["-n", NS, "reject", "oom-2"]));
    assert!(
        rejected.starts_with(&format!("rejected the plan of Incident {NS}/oom-2 as ")),
        "{rejected}"
    );

    let approvals: Api<IncidentApproval> = Api::namespaced(cluster.api.client.clone(), NS);
    let mut made: Vec<(String, String, Option<String>)> = approvals
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|a| {
            let value = serde_json::to_value(&a.spec).unwrap();
            (
                a.spec.incident.clone(),
                value["decision"].as_str().unwrap_or_default().to_string(),
                a.spec.comment.clone(),
            )
        })
        .collect();
    made.sort();
    assert_eq!(
        made,
        [
            (
                "oom".to_string(),
                "approve".to_string(),
                Some("go ahead".to_string())
            ),
            ("oom-2".to_string(), "reject".to_string(), None),
        ]
    );

    // Nothing to decide: one line, exit 1.
    let plain: Incident = serde_json::from_value(json!({
        "apiVersion": "sre.agentlab.dev/v1alpha1",
        "kind": "Incident",
        "metadata": {"name": "no-plan"},
        "spec": {"title": "disk full"},
    }))
    .unwrap();
    cluster.create(plain).await;
    let refused = cluster.plugin(&["-n", NS, "approve", "no-plan"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: the Incident no-plan has no proposed plan"),
        "{stderr}"
    );
    let missing = cluster.plugin(&["-n", NS, "reject", "nope"]);
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr).trim_end(),
        format!("error: incident \"nope\" not found in namespace \"{NS}\"")
    );
    cluster.stop().await;
}

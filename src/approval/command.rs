//! `incident-operator approve NAME` / `reject NAME` as a library call (the `kubectl-incident`
//! plugin reuses [`decide_plan`] and [`render`]): read the Incident's `status.plan`, refuse
//! clearly when there is nothing to decide, learn who is asking from a SelfSubjectReview (the API
//! server's own answer, the same identity the admission policy will check), create the
//! IncidentApproval, and say what was decided.
//!
//! Pure parts ([`open_plan`], [`approval_object`], [`render`]) are unit-tested; [`decide_plan`]
//! is the IO around them.

use jiff::Timestamp;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};

use super::resource::{IncidentApproval, IncidentApprovalSpec, MAX_COMMENT_CHARS};
use crate::incident::{Incident, Phase};
use crate::plan::{Decision, ProposedPlan};

/// Why no decision was recorded.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("reading the Incident {namespace}/{name}")]
    GetIncident {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "the Incident {0} has no proposed plan (only remediate-mode investigations propose one, and only once they finish)"
    )]
    NoPlan(String),
    #[error(
        "the plan of Incident {name} expired at {expired_at}; rerun the Incident for a new plan"
    )]
    Expired { name: String, expired_at: Timestamp },
    #[error(
        "the plan of Incident {name} was already {decision} by {approver} (IncidentApproval {approval})"
    )]
    AlreadyDecided {
        name: String,
        decision: &'static str,
        approver: String,
        approval: String,
    },
    #[error("the Incident {name} is not waiting for a decision (phase {phase})")]
    NotAwaiting { name: String, phase: String },
    #[error("the comment is longer than {MAX_COMMENT_CHARS} characters")]
    CommentTooLong,
    #[error("asking the API server who you are (SelfSubjectReview)")]
    WhoAmI(#[source] kube::Error),
    #[error("the API server's SelfSubjectReview named no user")]
    NoUsername,
    #[error("creating the IncidentApproval (the API server refused it)")]
    Create(#[source] kube::Error),
    #[error("loading the kubeconfig")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    #[error("configuring the Kubernetes client")]
    Client(#[source] kube::Error),
    #[error("finding a Kubernetes configuration (KUBECONFIG, ~/.kube/config or in-cluster)")]
    Infer(#[source] kube::config::InferConfigError),
}

/// Where the cluster is, as kubectl finds it: `--kubeconfig`, else `KUBECONFIG`, else
/// `~/.kube/config`, else the in-cluster account; `--context` picks a context.
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    pub kubeconfig: Option<std::path::PathBuf>,
    pub context: Option<String>,
}

/// A client for `options`, with the namespace its context defaults to.
pub async fn client_for(options: &ClusterOptions) -> Result<(Client, String), CommandError> {
    let kube_options = kube::config::KubeConfigOptions {
        context: options.context.clone(),
        ..Default::default()
    };
    let config = match &options.kubeconfig {
        Some(path) => {
            let kubeconfig =
                kube::config::Kubeconfig::read_from(path).map_err(CommandError::Kubeconfig)?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &kube_options)
                .await
                .map_err(CommandError::Kubeconfig)?
        }
        None if options.context.is_some() => kube::Config::from_kubeconfig(&kube_options)
            .await
            .map_err(CommandError::Kubeconfig)?,
        None => kube::Config::infer().await.map_err(CommandError::Infer)?,
    };
    let namespace = config.default_namespace.clone();
    let client = Client::try_from(config).map_err(CommandError::Client)?;
    Ok((client, namespace))
}

/// What to decide, on which Incident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionRequest {
    pub namespace: String,
    pub incident: String,
    pub decision: Decision,
    pub comment: Option<String>,
}

/// A decision the API server accepted.
#[derive(Clone, Debug)]
pub struct Decided {
    pub approval: IncidentApproval,
    pub plan: ProposedPlan,
}

/// The plan still open for a decision at `now`, or why there is none.
pub fn open_plan(incident: &Incident, now: Timestamp) -> Result<&ProposedPlan, CommandError> {
    let name = incident.name_any();
    let status = incident.status.as_ref();
    let plan = status
        .and_then(|s| s.plan.as_ref())
        .ok_or_else(|| CommandError::NoPlan(name.clone()))?;
    if let Some(approval) = status
        .and_then(|s| s.approval.as_ref())
        .filter(|a| a.plan_hash == plan.plan_hash)
    {
        return Err(CommandError::AlreadyDecided {
            name,
            decision: match approval.decision {
                Decision::Approve => "approved",
                Decision::Reject => "rejected",
            },
            approver: approval.approver.clone(),
            approval: approval.name.clone(),
        });
    }
    if now >= plan.expires_at.0 {
        return Err(CommandError::Expired {
            name,
            expired_at: plan.expires_at.0,
        });
    }
    match status.and_then(|s| s.phase) {
        Some(Phase::AwaitingApproval) => Ok(plan),
        phase => Err(CommandError::NotAwaiting {
            name,
            phase: phase.map_or_else(|| "none".to_string(), |p| format!("{p:?}")),
        }),
    }
}

/// The IncidentApproval to create: a generated name (`<incident>-<decision>-`), the plan's hash,
/// the approver the API server named.
pub fn approval_object(
    request: &DecisionRequest,
    plan: &ProposedPlan,
    approver: &str,
) -> IncidentApproval {
    let mut approval = IncidentApproval::new(
        "",
        IncidentApprovalSpec {
            incident: request.incident.clone(),
            plan_hash: plan.plan_hash.clone(),
            decision: request.decision,
            approver: approver.to_string(),
            comment: request.comment.clone().filter(|c| !c.trim().is_empty()),
        },
    );
    let verb = match request.decision {
        Decision::Approve => "approve",
        Decision::Reject => "reject",
    };
    // Names are DNS subdomains: leave room for the 5 random characters the server appends.
    let mut prefix: String = request.incident.chars().take(253 - 5 - 9).collect();
    prefix = format!("{}-{verb}-", prefix.trim_end_matches('-'));
    approval.metadata.name = None;
    approval.metadata.generate_name = Some(prefix);
    approval.metadata.namespace = Some(request.namespace.clone());
    approval
}

/// What was decided, for the terminal.
pub fn render(decided: &Decided) -> String {
    let spec = &decided.approval.spec;
    let verb = match spec.decision {
        Decision::Approve => "approved",
        Decision::Reject => "rejected",
    };
    let plan = &decided.plan;
    let mut out = format!(
        "{verb} the plan of Incident {}/{} as {}\n  plan hash:  {}\n  risk:       {}\n  approval:   {}\n",
        decided.approval.namespace().unwrap_or_default(),
        spec.incident,
        spec.approver,
        spec.plan_hash,
        plan.plan.risk.as_str(),
        decided.approval.name_any(),
    );
    if let Some(detail) = &plan.plan.risk_detail {
        out.push_str(&format!("  risk detail: {detail}\n"));
    }
    if let Some(comment) = &spec.comment {
        out.push_str(&format!("  comment:    {comment}\n"));
    }
    out.push_str("  steps:\n");
    for (number, step) in plan.plan.steps.iter().enumerate() {
        out.push_str(&format!(
            "    {}. {}\n       why:    {}\n       expect: {}\n       verify: {}\n",
            number + 1,
            step.command,
            step.purpose,
            step.expected_effect,
            step.verify
        ));
        if let Some(rollback) = &step.rollback {
            out.push_str(&format!("       undo:   {rollback}\n"));
        }
    }
    out
}

/// Reads the plan, asks who the caller is, creates the IncidentApproval.
pub async fn decide_plan(
    client: &Client,
    request: &DecisionRequest,
) -> Result<Decided, CommandError> {
    if request
        .comment
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_COMMENT_CHARS)
    {
        return Err(CommandError::CommentTooLong);
    }
    let incidents: Api<Incident> = Api::namespaced(client.clone(), &request.namespace);
    let incident =
        incidents
            .get(&request.incident)
            .await
            .map_err(|source| CommandError::GetIncident {
                namespace: request.namespace.clone(),
                name: request.incident.clone(),
                source,
            })?;
    let plan = open_plan(&incident, Timestamp::now())?.clone();
    let approver = who_am_i(client).await?;
    let approvals: Api<IncidentApproval> = Api::namespaced(client.clone(), &request.namespace);
    let created = approvals
        .create(
            &PostParams::default(),
            &approval_object(request, &plan, &approver),
        )
        .await
        .map_err(CommandError::Create)?;
    Ok(Decided {
        approval: created,
        plan,
    })
}

/// The caller's username, as the API server authenticated it.
pub async fn who_am_i(client: &Client) -> Result<String, CommandError> {
    let reviews: Api<SelfSubjectReview> = Api::all(client.clone());
    let review = reviews
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .map_err(CommandError::WhoAmI)?;
    review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .filter(|u| !u.is_empty())
        .ok_or(CommandError::NoUsername)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::decide::record_of;
    use crate::approval::decide::tests::{approval, at, proposed};
    use crate::controller::pod::tests::incident;
    use crate::incident::IncidentStatus;

    fn awaiting() -> Incident {
        let mut incident = incident("web");
        incident.status = Some(IncidentStatus {
            phase: Some(Phase::AwaitingApproval),
            plan: Some(Box::new(proposed(
                "2026-01-01T10:00:00Z",
                "2026-01-01T10:30:00Z",
            ))),
            ..IncidentStatus::default()
        });
        incident
    }

    #[test]
    fn an_open_plan_is_offered_and_closed_ones_are_refused_clearly() {
        let now = at("2026-01-01T10:10:00Z");
        assert!(open_plan(&awaiting(), now).is_ok());
        let none = incident("web");
        assert!(matches!(
            open_plan(&none, now),
            Err(CommandError::NoPlan(_))
        ));
        let error = open_plan(&awaiting(), at("2026-01-01T10:30:00Z")).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("expired at 2026-01-01T10:30:00Z"),
            "{error}"
        );
        let mut decided = awaiting();
        let status = decided.status.as_mut().unwrap();
        let hash = status.plan.as_ref().unwrap().plan_hash.clone();
        status.approval = Some(Box::new(record_of(&approval(
            "web-approve-x",
            &hash,
            Decision::Approve,
            "2026-01-01T10:05:00Z",
        ))));
        let error = open_plan(&decided, now).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the plan of Incident web was already approved by alice (IncidentApproval web-approve-x)"
        );
        let mut running = awaiting();
        running.status.as_mut().unwrap().phase = Some(Phase::Running);
        assert!(matches!(
            open_plan(&running, now),
            Err(CommandError::NotAwaiting { .. })
        ));
    }

    #[test]
    fn the_approval_names_the_hash_and_the_reviewed_user() {
        let incident = awaiting();
        let plan = incident.status.as_ref().unwrap().plan.as_ref().unwrap();
        let request = DecisionRequest {
            namespace: "shop".into(),
            incident: "web".into(),
            decision: Decision::Reject,
            comment: Some("  ".into()),
        };
        let object = approval_object(&request, plan, "alice@example.com");
        assert_eq!(
            object.metadata.generate_name.as_deref(),
            Some("web-reject-")
        );
        assert_eq!(object.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(object.spec.plan_hash, plan.plan_hash);
        assert_eq!(object.spec.approver, "alice@example.com");
        assert_eq!(object.spec.comment, None);
    }

    #[test]
    fn the_printout_lists_steps_risk_hash_and_approver() {
        let incident = awaiting();
        let plan = incident.status.as_ref().unwrap().plan.clone().unwrap();
        let request = DecisionRequest {
            namespace: "shop".into(),
            incident: "web".into(),
            decision: Decision::Approve,
            comment: Some("ok, go".into()),
        };
        let mut object = approval_object(&request, &plan, "alice");
        object.metadata.name = Some("web-approve-abcde".into());
        let text = render(&Decided {
            approval: object,
            plan: (*plan).clone(),
        });
        assert!(
            text.starts_with("approved the plan of Incident shop/web as alice\n"),
            "{text}"
        );
        for want in [
            plan.plan_hash.as_str(),
            "risk:       low",
            "web-approve-abcde",
            "1. kubectl -n shop rollout restart deploy/web",
            "verify: kubectl -n shop rollout status deploy/web",
            "comment:    ok, go",
        ] {
            assert!(text.contains(want), "missing {want}:\n{text}");
        }
    }
}

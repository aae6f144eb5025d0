//! `incident-operator agent --incident NS/NAME`: the entry point inside an agent pod.
//!
//! Reads the Incident through the API, runs the agent session with the audit on the mounted
//! volume, reports progress to the Incident's status while it runs (rate-limited), writes the
//! report, usage and audit summary at the end, and leaves a compact result in the termination
//! message so the controller can finish the status even if the last patch never landed.
//!
//! With [`crate::plan::env::APPROVED_PLAN_ENV`] set the session executes that approved plan
//! (after re-checking its hash) instead of investigating.
//!
//! Exit status: 0 when the session reached an answer (reported, limit reached, refused) — running
//! it again would not help; 1 when it ended in an error (API outage, audit failure, an approved
//! plan whose hash does not match: the refusal is audited and in status) — a retry may; 2 when it
//! could not start (bad arguments, Incident unreadable, no API key).

pub mod reporter;
pub mod status;

use std::path::PathBuf;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use crate::agent::{AgentSettings, SessionInput, SessionResult, run_session};
use crate::anthropic::{ClientConfig, MessagesClient};
use crate::errors::error_chain;
use crate::incident::{Incident, Outcome};
use crate::investigate::redactor_for;
use crate::plan::approved::ApprovedPlanInput;

use status::{AGENT_FIELD_MANAGER, final_patch, termination_message};

/// Where the chart mounts the audit volume in agent pods.
pub const DEFAULT_AUDIT_DIR: &str = "/var/lib/incident-operator/audit";

/// The agent's configuration, parsed from flags.
#[derive(Debug, Clone)]
pub struct PodAgentOptions {
    pub namespace: String,
    pub name: String,
    pub audit_dir: PathBuf,
    /// Operator-wide defaults; the Incident's `spec.agent` overrides them.
    pub defaults: AgentSettings,
    pub secret_env: Vec<String>,
    pub termination_log: PathBuf,
    pub progress_interval: Duration,
}

/// Why the agent could not run a session.
#[derive(Debug, thiserror::Error)]
pub enum PodAgentError {
    #[error("`--incident` must be NAMESPACE/NAME, got `{0}`")]
    BadIncidentRef(String),
    #[error("cannot build a Kubernetes client")]
    KubeClient(#[source] kube::Error),
    #[error("cannot read Incident {namespace}/{name}")]
    ReadIncident {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Model(#[from] crate::anthropic::ApiError),
    #[error("cannot start the session")]
    Session(#[from] crate::agent::session::SessionError),
}

/// Splits `NS/NAME`.
pub fn parse_incident_ref(s: &str) -> Result<(String, String), PodAgentError> {
    match s.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_string(), name.to_string()))
        }
        _ => Err(PodAgentError::BadIncidentRef(s.to_string())),
    }
}

/// Runs the agent for one Incident; returns the exit status.
pub async fn run(options: PodAgentOptions) -> Result<u8, PodAgentError> {
    let client = Client::try_default()
        .await
        .map_err(PodAgentError::KubeClient)?;
    let api: Api<Incident> = Api::namespaced(client, &options.namespace);
    let incident = api
        .get(&options.name)
        .await
        .map_err(|source| PodAgentError::ReadIncident {
            namespace: options.namespace.clone(),
            name: options.name.clone(),
            source,
        })?;
    let config = ClientConfig::from_env()?;
    let redactor = redactor_for(&options.secret_env, &config.api_key);
    let model = MessagesClient::new(config)?;
    let settings = options
        .defaults
        .clone()
        .with_overrides(incident.spec.agent.as_deref());

    let (mut observer, reporter) = reporter::start(
        api.clone(),
        options.name.clone(),
        options.progress_interval,
        redactor.clone(),
    );
    let input = SessionInput {
        namespace: Some(options.namespace.clone()),
        name: options.name.clone(),
        spec: incident.spec.clone(),
        settings,
        audit_dir: options.audit_dir.clone(),
        redactor,
        client: model,
        cancel: Some(crate::signals::cancel_on_terminate()),
        work_dir: None,
        execution: execution_request(&incident, |name| std::env::var(name).ok()),
    };
    let result = run_session(input, &mut observer).await?;
    drop(observer);
    let progress = reporter.await.unwrap_or_default();

    write_termination_log(&options, &result);
    write_final_status(&api, &options.name, &result, progress.last_command.as_ref()).await;
    tracing::info!(
        session = %result.session_id,
        outcome = ?result.outcome,
        turns = result.usage.turns,
        "session finished"
    );
    Ok(match result.outcome {
        Outcome::Error => 1,
        Outcome::Reported
        | Outcome::LimitReached
        | Outcome::Refused
        | Outcome::Rejected
        | Outcome::ApprovalExpired => 0,
    })
}

/// The approved plan from the environment the controller set ([`crate::plan::env`]), if any.
/// Without [`crate::plan::env::PROPOSING_SESSION_ENV`] the proposing session is the one
/// `status.plan` names.
fn execution_request(
    incident: &Incident,
    var: impl Fn(&str) -> Option<String>,
) -> Option<crate::plan::approved::ExecutionRequest> {
    let proposed_by = incident
        .status
        .as_ref()
        .and_then(|status| status.plan.as_ref())
        .and_then(|plan| plan.session_id.clone());
    ApprovedPlanInput::from_vars(var).map(|request| {
        request.map(|mut input| {
            input.proposing_session = input.proposing_session.or(proposed_by);
            input
        })
    })
}

/// The final status patch, retried a few times: it is what `kubectl describe` shows. If it
/// never lands the controller still has the termination message.
async fn write_final_status(
    api: &Api<Incident>,
    name: &str,
    result: &SessionResult,
    last_command: Option<&crate::audit::Redacted<String>>,
) {
    let patch = final_patch(result, last_command);
    let params = PatchParams::apply(AGENT_FIELD_MANAGER).force();
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=5 {
        match api.patch_status(name, &params, &Patch::Apply(&patch)).await {
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(attempt, error = %error_chain(&e), "final status patch failed");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    tracing::error!("final status patch never landed; the termination message carries the result");
}

fn write_termination_log(options: &PodAgentOptions, result: &SessionResult) {
    let text = termination_message(result);
    if let Err(e) = std::fs::write(&options.termination_log, text) {
        tracing::warn!(
            path = %options.termination_log.display(),
            error = %e,
            "cannot write the termination message"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proposing_session_defaults_to_the_one_status_plan_names() {
        use crate::plan::env::{APPROVED_PLAN_ENV, APPROVED_PLAN_HASH_ENV, PROPOSING_SESSION_ENV};
        let incident: Incident = serde_json::from_value(serde_json::json!({
            "apiVersion": "sre.agentlab.dev/v1alpha1", "kind": "Incident",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"title": "web down", "mode": "remediate"},
            "status": {"plan": {"plan": {"risk": "low", "steps": []}, "planHash": format!("sha256:{}", "0".repeat(64)),
                                "sessionId": "2026-12-01T11-59-00-1a2b3c4d",
                                "proposedAt": "2026-12-01T11:59:00Z", "expiresAt": "2026-12-01T12:29:00Z"}}
        }))
        .unwrap();
        let vars = |extra: Option<&'static str>| {
            move |name: &str| match name {
                APPROVED_PLAN_ENV => Some(r#"{"risk":"low","steps":[]}"#.to_string()),
                APPROVED_PLAN_HASH_ENV => Some("sha256:x".to_string()),
                PROPOSING_SESSION_ENV => extra.map(str::to_string),
                _ => None,
            }
        };
        let from_status = execution_request(&incident, vars(None)).unwrap().unwrap();
        assert_eq!(
            from_status.proposing_session.as_deref(),
            Some("2026-12-01T11-59-00-1a2b3c4d")
        );
        let from_env = execution_request(&incident, vars(Some("s-env")))
            .unwrap()
            .unwrap();
        assert_eq!(from_env.proposing_session.as_deref(), Some("s-env"));
        assert!(execution_request(&incident, |_| None).is_none());
    }

    #[test]
    fn incident_refs() {
        assert_eq!(
            parse_incident_ref("shop/api-down").unwrap(),
            ("shop".to_string(), "api-down".to_string())
        );
        for bad in ["", "shop", "/x", "x/", "a/b/c"] {
            assert!(parse_incident_ref(bad).is_err(), "{bad}");
        }
    }
}

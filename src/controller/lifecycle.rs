//! Decide step: from an Incident, its agent pods and the time, what its status should be and what
//! the controller should do next. Pure, so every transition has a plain unit test with a fixed clock.
//!
//! ```text
//!                 ┌────────── slot free, Secret present ──────────┐
//!  (new) ─▶ Queued / Pending ─────────────────────────────────────▶ Running ─▶ pod Succeeded ─▶ Completed
//!                 ▲                                                  │
//!                 └── attempt failed, retries left (backoff) ◀───────┤
//!                                                                    └─▶ no retries left ─▶ Failed
//!  Completed / Failed ── new `sre.agentlab.dev/rerun` value ─▶ Pending (old pods deleted)
//! ```
//!
//! Who writes what: the agent (field manager `incident-operator-agent`) owns `sessionId`, `usage`,
//! `lastCommand`, `outcome`, `message`, `report` and `audit` while its pod runs; the controller never
//! includes those fields in its apply then. Once the pod has finished, nobody else writes them, so
//! the controller includes their current values (filling gaps from the pod's termination message)
//! and never replaces anything the agent wrote for the same session.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::approval_stage;
use super::conditions::{self, StateSummary, conditions_for, reason_of};
use super::events::{self, IncidentEvent};
use super::keys;
use super::pod::agent_pod_name;
use super::pod_state::{self, AgentPodState, AgentPodView, view_agent_pod};
use super::rerun;
use crate::budget::{BudgetCheck, BudgetLimits, PriceTable};
use crate::incident::{
    AgentTermination, AuditSummary, Incident, IncidentStatus, Outcome, Phase, Report,
};

/// Operator-wide rules for retries, clean-up, spend and how often to look again.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Retries after the first failed attempt; `1` means at most two agent pods per run.
    pub backoff_limit: u32,
    /// Wait before the first retry; doubled for each further one.
    pub retry_backoff_base: Duration,
    /// Upper bound of the retry wait.
    pub retry_backoff_max: Duration,
    /// Finished agent pods are deleted this long after they finished (the audit stays on its volume).
    pub finished_pod_ttl: Duration,
    /// How often a queued Incident looks for a free slot even when nothing else wakes it.
    pub recheck_queued: Duration,
    /// How often an Incident waiting for its API-key Secret looks again (Secrets are not watched).
    pub recheck_secret: Duration,
    /// How often to look while old pods of a rerun are going away.
    pub recheck_cleanup: Duration,
    /// Rolling-24h spend limits (`src/budget/`); none by default.
    pub budget: BudgetLimits,
    /// Prices tokens for `status.usage.costUSD` and the budget.
    pub prices: PriceTable,
    /// The intake's default recurrence cool-down (`src/recurrence/`).
    pub recurrence_cooldown: Duration,
    /// The notification sinks (`src/notify/`); none when no notifications file is given.
    pub notifications: Option<std::sync::Arc<crate::notify::NotifyConfig>>,
    /// How long a remediation plan waits for a human decision (`--approval-timeout`).
    pub approval_timeout: Duration,
    /// No remediation ServiceAccount is configured: an approved plan would run with the
    /// read-only account, so a proposal says so up front (a Warning, not a silent 403 later).
    pub read_only_execution: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            backoff_limit: 1,
            retry_backoff_base: Duration::from_secs(10),
            retry_backoff_max: Duration::from_secs(600),
            finished_pod_ttl: Duration::from_secs(3600),
            recheck_queued: Duration::from_secs(30),
            recheck_secret: Duration::from_secs(30),
            recheck_cleanup: Duration::from_secs(2),
            budget: BudgetLimits::default(),
            prices: PriceTable::default(),
            recurrence_cooldown: crate::recurrence::DEFAULT_COOLDOWN,
            notifications: None,
            approval_timeout: super::approval_stage::DEFAULT_APPROVAL_TIMEOUT,
            read_only_execution: false,
        }
    }
}

impl Policy {
    /// Wait before attempt `failed_attempt + 1`: base · 2^(failed_attempt − 1), capped.
    pub fn retry_delay(&self, failed_attempt: u32) -> Duration {
        let doublings = failed_attempt.saturating_sub(1).min(31);
        self.retry_backoff_base
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.retry_backoff_max)
            .min(self.retry_backoff_max)
    }
}

/// Whether this Incident may start an agent now, as the queue decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// A slot is free for this Incident.
    Granted,
    /// All slots are taken, or Incidents ahead in the queue get the free ones.
    Waiting { in_use: usize, limit: usize },
}

/// Whether the API-key Secret exists in the Incident's namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiKeyState {
    Present,
    /// Missing (or unreadable); the text says which Secret and why.
    Missing(String),
}

/// Whether the ServiceAccount the agent pod runs as exists. The controller learns it from the
/// API server refusing the pod (ServiceAccount admission), so it needs no right to read
/// ServiceAccounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceAccountState {
    Present,
    /// The API server refused the pod; the text names the ServiceAccount and quotes the refusal.
    Missing(String),
}

/// What the controller knows besides the Incident itself.
#[derive(Clone, Debug)]
pub struct Observed<'a> {
    /// Agent pods owned by the Incident, from the cache (plus ones just created).
    pub pods: &'a [Pod],
    pub admission: Admission,
    pub api_key: ApiKeyState,
    /// Whether the daily budgets leave room for this Incident (`src/budget/spend.rs`).
    pub budget: BudgetCheck,
    pub service_account: ServiceAccountState,
}

/// Something for the apply step to do, in this order: record a rerun, reset results, delete,
/// create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Write `sre.agentlab.dev/rerun-honoured: value` on the Incident (before anything else, so a
    /// status without the old run's results always comes with the new run id).
    RecordRerun { value: String },
    /// Remove the previous run's agent-written results from the status.
    ResetAgentResults,
    /// Delete a finished or leftover agent pod.
    DeletePod { name: String },
    /// Create the agent pod for this attempt (1-based).
    CreatePod { attempt: u32 },
}

/// The outcome of one decision: the controller's whole status (for a forced server-side apply),
/// the actions, the events and when to look again.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub status: IncidentStatus,
    pub actions: Vec<Action>,
    pub events: Vec<IncidentEvent>,
    /// `None`: nothing is due; the next watch event (or the periodic resync) will do.
    pub requeue_after: Option<Duration>,
    /// Why an agent attempt failed, when this decision is the first to see that failure (for the
    /// `agent_failures_total` metric).
    pub agent_failure: Option<&'static str>,
}

/// The attempt this Incident would start now if a slot were free, or `None` when it needs no new
/// agent pod (one runs, it is backing off, it is finished, or old pods are still going away).
/// The queue is built from this, so it agrees with [`next_status`] by construction.
pub fn wants_agent(
    incident: &Incident,
    pods: &[Pod],
    now: Timestamp,
    policy: &Policy,
) -> Option<u32> {
    match step(incident, pods, now, policy) {
        Step::Start(start) => Some(start.attempt),
        Step::Settled(_) => None,
    }
}

/// What the Incident's status should be and what to do, given what was observed at `now`.
pub fn next_status(
    incident: &Incident,
    observed: &Observed<'_>,
    now: Timestamp,
    policy: &Policy,
) -> Decision {
    let mut decision = match step(incident, observed.pods, now, policy) {
        Step::Settled(decision) => *decision,
        Step::Start(start) => start_attempt(incident, start, observed, now, policy),
    };
    let current = incident.status.clone().unwrap_or_default();
    approval_stage::carry_forward(incident, &current, &mut decision, now);
    decision
}

fn settled(decision: Decision) -> Step {
    Step::Settled(Box::new(decision))
}

enum Step {
    Settled(Box<Decision>),
    Start(StartAttempt),
}

/// A new attempt is due; whether it starts depends on the queue and the Secret.
struct StartAttempt {
    attempt: u32,
    /// Why the previous attempt failed (reason, summary), for the retry's messages.
    previous_failure: Option<(&'static str, String)>,
    /// Deletions to do whether or not the attempt can start.
    cleanup: Vec<Action>,
}

fn step(incident: &Incident, pods: &[Pod], now: Timestamp, policy: &Policy) -> Step {
    let current = incident.status.clone().unwrap_or_default();
    let views: Vec<AgentPodView> = pods.iter().map(view_agent_pod).collect();

    // A rerun while a plan waits starts a new investigation (and so a new plan to approve).
    let awaiting = current.phase == Some(Phase::AwaitingApproval);
    if is_finished(&current) || (awaiting && rerun::pending(incident).is_some()) {
        return settled(match rerun::pending(incident) {
            Some(value) => rerun_decision(incident, &current, &views, value, now),
            None => finished_decision(incident, &current, &views, now, policy),
        });
    }

    let run = rerun::run_id(incident);
    let (this_run, leftovers): (Vec<&Pod>, Vec<&Pod>) = pods
        .iter()
        .partition(|pod| pod.labels().get(keys::LABEL_RUN) == Some(&run));
    let this_run_pods = this_run.clone();
    let latest_pod_is_execution = |attempt: u32| {
        this_run_pods.iter().any(|pod| {
            approval_stage::is_execution_pod(pod)
                && pod.labels().get(keys::LABEL_ATTEMPT) == Some(&attempt.to_string())
        })
    };
    let this_run: Vec<AgentPodView> = this_run.into_iter().map(view_agent_pod).collect();

    let attempts = this_run
        .iter()
        .filter_map(|view| view.attempt)
        .chain(current.attempts)
        .max()
        .unwrap_or(0);
    let latest = this_run.iter().find(|view| view.attempt == Some(attempts));

    // Pods of an earlier run go (rerun deletes them; this repeats it if that failed); older attempts
    // of this run are evidence until their TTL; the latest decides what happens next.
    let mut actions: Vec<Action> = leftovers
        .iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .map(|pod| Action::DeletePod {
            name: pod.name_any(),
        })
        .collect();
    actions.extend(
        ttl_deletions(
            &this_run,
            now,
            policy,
            latest.map(|view| view.name.as_str()),
        )
        .actions,
    );

    // The execution session runs once: it may have changed things, so it is never retried.
    let executing = if latest.is_some() {
        latest_pod_is_execution(attempts)
    } else {
        approval_stage::approved_plan(Some(&current)).is_some()
            && current.phase == Some(Phase::Running)
    };
    if !executing
        && let Some(next) =
            approval_step(incident, &current, latest, attempts, &actions, now, policy)
    {
        return next;
    }

    let failure = match latest.map(|view| &view.state) {
        Some(AgentPodState::Pending { waiting }) => {
            return settled(running_decision(
                incident,
                &current,
                latest,
                attempts,
                waiting.as_deref(),
                actions,
                now,
            ));
        }
        Some(AgentPodState::Running) | Some(AgentPodState::Terminating) => {
            return settled(running_decision(
                incident, &current, latest, attempts, None, actions, now,
            ));
        }
        Some(AgentPodState::Succeeded {
            finished_at,
            termination,
        }) => {
            let completed = completed_decision(
                incident,
                &current,
                attempts,
                latest.map(|view| view.name.clone()),
                finished_at.unwrap_or(now),
                termination.as_ref(),
                actions,
                now,
            );
            return settled(if executing {
                approval_stage::executed(&current, completed)
            } else {
                completed
            });
        }
        Some(AgentPodState::Failed {
            reason,
            message,
            finished_at,
            termination,
        }) => Some(FailedAttempt {
            attempt: attempts,
            pod: latest.map(|view| view.name.clone()),
            reason,
            message: message.clone(),
            finished_at: *finished_at,
            termination: termination.clone(),
        }),
        // The status names an attempt whose pod is gone: someone deleted it while it ran.
        None if attempts > 0 => Some(FailedAttempt {
            attempt: attempts,
            pod: current.agent_pod.clone(),
            reason: pod_state::FAILURE_POD_DELETED,
            message: format!(
                "agent pod {} was deleted before it finished",
                current
                    .agent_pod
                    .clone()
                    .unwrap_or_else(|| agent_pod_name(&incident.name_any(), attempts))
            ),
            finished_at: None,
            termination: None,
        }),
        None => None,
    };

    let previous_failure = match failure {
        None => None,
        Some(failed) if failed.attempt > policy.backoff_limit || executing => {
            return settled(failed_decision(incident, &current, failed, actions, now));
        }
        Some(failed) => {
            // No finish time (pod vanished): retry at once; backing off protects against crash
            // loops, which a deleted pod is not.
            let due = failed
                .finished_at
                .map(|at| add(at, policy.retry_delay(failed.attempt)))
                .unwrap_or(now);
            let summary = format!(
                "attempt {} failed ({}): {}",
                failed.attempt, failed.reason, failed.message
            );
            if now < due {
                return settled(backing_off_decision(
                    incident, &current, failed, &summary, due, actions, now,
                ));
            }
            Some((failed.reason, summary))
        }
    };

    let attempt = attempts + 1;
    let name = agent_pod_name(&incident.name_any(), attempt);
    if views.iter().any(|view| view.name == name) {
        // A pod of that name from a previous run is still going away; wait rather than collide.
        return settled(waiting_decision(
            incident,
            &current,
            attempts,
            StateSummary {
                ready: false,
                agent_running: false,
                failed: false,
                reason: conditions::REASON_RERUN_REQUESTED,
                message: format!("waiting for the previous run's pod {name} to be deleted"),
            },
            actions,
            Vec::new(),
            Some(policy.recheck_cleanup),
            now,
        ));
    }
    Step::Start(StartAttempt {
        attempt,
        previous_failure,
        cleanup: actions,
    })
}

/// The approval stage, when the latest investigation has finished with a remediation plan (or a
/// plan is already waiting): `None` when it does not apply (investigate mode, no plan, an
/// investigation still running or failed).
fn approval_step(
    incident: &Incident,
    current: &IncidentStatus,
    latest: Option<&AgentPodView>,
    attempts: u32,
    actions: &[Action],
    now: Timestamp,
    policy: &Policy,
) -> Option<Step> {
    let (finished_at, termination) = match latest.map(|view| &view.state) {
        Some(AgentPodState::Succeeded {
            finished_at,
            termination,
        }) => (finished_at.unwrap_or(now), termination.as_ref()),
        // The investigation pod may be gone (TTL) while its plan waits.
        None if current.plan.is_some() => (now, None),
        _ => return None,
    };
    let results = with_agent_results(current, termination);
    let plan = match &current.plan {
        Some(plan) => plan.clone(),
        None => {
            let proposal = approval_stage::proposed_by(incident, &results)?;
            Box::new(approval_stage::propose(
                proposal,
                results.session_id.clone(),
                now,
                policy.approval_timeout,
            ))
        }
    };
    let pod = latest
        .map(|view| view.name.clone())
        .or(current.agent_pod.clone());
    let decided = current
        .approval
        .as_ref()
        .filter(|approval| approval.plan_hash == plan.plan_hash)
        .map(|approval| approval.decision);
    let closed = |outcome| {
        let completed = completed_decision(
            incident,
            current,
            attempts,
            pod.clone(),
            finished_at,
            termination,
            actions.to_vec(),
            now,
        );
        settled(approval_stage::closed_without_execution(
            incident, current, completed, outcome, now,
        ))
    };
    Some(match decided {
        // The execution session starts from a status without the investigation's results: two
        // sessions' fields under one agent field manager would merge (and a server-side apply
        // dropping the report's plan can leave it invalid). The proposal stays in status.plan,
        // the investigation's record on the audit volume.
        Some(crate::plan::Decision::Approve) => Step::Start(StartAttempt {
            attempt: attempts + 1,
            previous_failure: None,
            cleanup: std::iter::once(Action::ResetAgentResults)
                .chain(actions.iter().cloned())
                .collect(),
        }),
        Some(crate::plan::Decision::Reject) => closed(Outcome::Rejected),
        None if now >= plan.expires_at.0 => closed(Outcome::ApprovalExpired),
        None => settled(approval_stage::awaiting(
            incident,
            current,
            results,
            *plan,
            actions.to_vec(),
            now,
            policy.read_only_execution,
        )),
    })
}

struct FailedAttempt {
    attempt: u32,
    pod: Option<String>,
    reason: &'static str,
    message: String,
    finished_at: Option<Timestamp>,
    termination: Option<AgentTermination>,
}

/// A finished Incident stays finished unless it failed only because it could not be read (then a
/// fixed spec starts it afresh).
fn is_finished(status: &IncidentStatus) -> bool {
    match status.phase {
        Some(Phase::Failed) => {
            reason_of(&status.conditions, conditions::TYPE_FAILED)
                != Some(conditions::REASON_INVALID_SPEC)
        }
        Some(phase) => phase.is_finished(),
        None => false,
    }
}

/// Waiting for something other than a slot (a Secret, the budget): the `Ready` condition says why,
/// with one Warning Event when that reason is new, and a look again after `recheck`.
#[allow(clippy::too_many_arguments)]
fn held_back(
    incident: &Incident,
    current: &IncidentStatus,
    attempts: u32,
    (condition_reason, event_reason): (&'static str, &'static str),
    why: String,
    cleanup: Vec<Action>,
    recheck: Duration,
    now: Timestamp,
) -> Decision {
    let was = reason_of(&current.conditions, conditions::TYPE_READY);
    let events = if was == Some(condition_reason) {
        Vec::new()
    } else {
        vec![IncidentEvent::warning(event_reason, why.clone())]
    };
    waiting_decision(
        incident,
        current,
        attempts,
        StateSummary {
            ready: false,
            agent_running: false,
            failed: false,
            reason: condition_reason,
            message: why,
        },
        cleanup,
        events,
        Some(recheck),
        now,
    )
}

/// Starts (or holds back) the next attempt. A failure first seen here — its retry delay had
/// already passed when the controller saw the failed pod, as happens on a busy controller — gets
/// the same `AgentRetrying` Warning as one seen while backing off: every retry leaves one.
fn start_attempt(
    incident: &Incident,
    start: StartAttempt,
    observed: &Observed<'_>,
    now: Timestamp,
    policy: &Policy,
) -> Decision {
    let was_running = incident.status.as_ref().and_then(|s| s.phase) == Some(Phase::Running);
    let retrying = start
        .previous_failure
        .as_ref()
        .filter(|_| was_running)
        .map(|(_, failure)| {
            IncidentEvent::warning(
                events::REASON_AGENT_RETRYING,
                format!("{failure}; next attempt now"),
            )
        });
    let mut decision = next_attempt(incident, start, observed, now, policy);
    if let Some(event) = retrying {
        decision.events.insert(0, event);
    }
    decision
}

fn next_attempt(
    incident: &Incident,
    start: StartAttempt,
    observed: &Observed<'_>,
    now: Timestamp,
    policy: &Policy,
) -> Decision {
    let current = incident.status.clone().unwrap_or_default();
    let attempts = start.attempt - 1;
    let retry_note = start
        .previous_failure
        .as_ref()
        .map(|(_, failure)| format!(" after {failure}"))
        .unwrap_or_default();
    // A failure seen for the first time: the Incident was Running until now.
    let agent_failure = start
        .previous_failure
        .as_ref()
        .filter(|_| current.phase == Some(Phase::Running))
        .map(|(reason, _)| *reason);
    let missing = match (&observed.api_key, &observed.service_account) {
        (ApiKeyState::Missing(why), _) => Some((
            conditions::REASON_MISSING_API_KEY_SECRET,
            events::REASON_MISSING_API_KEY_SECRET,
            why,
        )),
        (_, ServiceAccountState::Missing(why)) => Some((
            conditions::REASON_MISSING_SERVICE_ACCOUNT,
            events::REASON_MISSING_SERVICE_ACCOUNT,
            why,
        )),
        _ => None,
    };
    if let Some((condition_reason, event_reason, why)) = missing {
        let mut decision = held_back(
            incident,
            &current,
            attempts,
            (condition_reason, event_reason),
            why.clone(),
            start.cleanup,
            policy.recheck_secret,
            now,
        );
        decision.agent_failure = agent_failure;
        return decision;
    }
    if let BudgetCheck::Exhausted { frees_at, .. } = &observed.budget {
        // Other Incidents finishing change the spend too, so look again at least every
        // `recheck_queued`, and exactly when the window frees budget.
        let frees_in = Duration::try_from(frees_at.duration_since(now)).unwrap_or(Duration::ZERO);
        let mut decision = held_back(
            incident,
            &current,
            attempts,
            (
                conditions::REASON_BUDGET_EXHAUSTED,
                events::REASON_BUDGET_EXHAUSTED,
            ),
            observed.budget.message().unwrap_or_default(),
            start.cleanup,
            frees_in
                .max(Duration::from_secs(1))
                .min(policy.recheck_queued),
            now,
        );
        decision.status.phase = Some(Phase::Queued);
        decision.agent_failure = agent_failure;
        return decision;
    }
    if let Admission::Waiting { in_use, limit } = observed.admission {
        let events = if current.phase == Some(Phase::Queued) {
            Vec::new()
        } else {
            vec![IncidentEvent::normal(
                events::REASON_QUEUED,
                format!("waiting for a free agent slot ({in_use} of {limit} in use){retry_note}"),
            )]
        };
        let mut decision = waiting_decision(
            incident,
            &current,
            attempts,
            StateSummary {
                ready: false,
                agent_running: false,
                failed: false,
                reason: conditions::REASON_WAITING_FOR_SLOT,
                message: format!("waiting for one of {limit} agent slots"),
            },
            start.cleanup,
            events,
            Some(policy.recheck_queued),
            now,
        );
        decision.status.phase = Some(Phase::Queued);
        decision.agent_failure = agent_failure;
        return decision;
    }

    let name = agent_pod_name(&incident.name_any(), start.attempt);
    let summary = StateSummary {
        ready: false,
        agent_running: true,
        failed: false,
        reason: conditions::REASON_POD_PENDING,
        message: format!("agent pod {name} created (attempt {})", start.attempt),
    };
    let status = IncidentStatus {
        phase: Some(Phase::Running),
        conditions: conditions_for(
            &summary,
            &current.conditions,
            incident.metadata.generation,
            now,
        ),
        observed_generation: incident.metadata.generation,
        agent_pod: Some(name.clone()),
        attempts: Some(start.attempt),
        start_time: current.start_time.clone().or(Some(Time(now))),
        ..IncidentStatus::default()
    };
    let note = match (approval_stage::approved_plan(Some(&current)), start.attempt) {
        (Some((plan, approval)), _) => format!(
            "created execution pod {name} to run plan {} approved by {}",
            plan.plan_hash, approval.approver
        ),
        (None, 1) => format!("created agent pod {name}"),
        (None, n) => format!("created agent pod {name} (attempt {n}){retry_note}"),
    };
    let mut actions = start.cleanup;
    actions.push(Action::CreatePod {
        attempt: start.attempt,
    });
    let reason = if approval_stage::approved_plan(Some(&current)).is_some() {
        events::REASON_EXECUTION_STARTED
    } else {
        events::REASON_AGENT_STARTED
    };
    Decision {
        status,
        actions,
        events: vec![IncidentEvent::normal(reason, note)],
        requeue_after: None,
        agent_failure,
    }
}

#[allow(clippy::too_many_arguments)]
fn waiting_decision(
    incident: &Incident,
    current: &IncidentStatus,
    attempts: u32,
    summary: StateSummary,
    actions: Vec<Action>,
    events: Vec<IncidentEvent>,
    requeue_after: Option<Duration>,
    now: Timestamp,
) -> Decision {
    let status = IncidentStatus {
        phase: Some(Phase::Pending),
        conditions: conditions_for(
            &summary,
            &current.conditions,
            incident.metadata.generation,
            now,
        ),
        observed_generation: incident.metadata.generation,
        agent_pod: current.agent_pod.clone(),
        attempts: Some(attempts),
        start_time: current.start_time.clone(),
        message: Some(summary.message.clone()),
        ..IncidentStatus::default()
    };
    Decision {
        status,
        actions,
        events,
        requeue_after,
        agent_failure: None,
    }
}

fn running_decision(
    incident: &Incident,
    current: &IncidentStatus,
    latest: Option<&AgentPodView>,
    attempts: u32,
    waiting: Option<&str>,
    actions: Vec<Action>,
    now: Timestamp,
) -> Decision {
    let name = latest.map(|view| view.name.clone());
    let pod = name.clone().unwrap_or_default();
    let (reason, message) = match latest.map(|view| &view.state) {
        Some(AgentPodState::Running) => (
            conditions::REASON_POD_RUNNING,
            format!("agent pod {pod} is running (attempt {attempts})"),
        ),
        Some(AgentPodState::Terminating) => (
            conditions::REASON_POD_TERMINATING,
            format!("agent pod {pod} is being deleted"),
        ),
        _ => (
            conditions::REASON_POD_PENDING,
            match waiting {
                Some(why) => format!("agent pod {pod} is waiting: {why}"),
                None => format!("agent pod {pod} is starting (attempt {attempts})"),
            },
        ),
    };
    let summary = StateSummary {
        ready: false,
        agent_running: true,
        failed: false,
        reason,
        message: message.clone(),
    };
    let mut events = Vec::new();
    let stuck = waiting.filter(|why| is_stuck(why));
    if let Some(why) = stuck {
        // Once per distinct complaint: the condition message remembers the last one.
        let previous = current
            .conditions
            .iter()
            .find(|c| c.type_ == conditions::TYPE_AGENT_RUNNING)
            .map(|c| c.message.as_str());
        if previous != Some(message.as_str()) {
            events.push(IncidentEvent::warning(
                events::REASON_AGENT_POD_STUCK,
                format!("agent pod {pod} cannot start: {why}"),
            ));
        }
    }
    let status = IncidentStatus {
        phase: Some(Phase::Running),
        conditions: conditions_for(
            &summary,
            &current.conditions,
            incident.metadata.generation,
            now,
        ),
        observed_generation: incident.metadata.generation,
        agent_pod: name,
        attempts: Some(attempts),
        start_time: current
            .start_time
            .clone()
            .or_else(|| latest.and_then(|view| view.created_at).map(Time))
            .or(Some(Time(now))),
        // The agent owns `message` while it may run, unless its pod cannot even start.
        message: stuck.map(|_| message),
        ..IncidentStatus::default()
    };
    Decision {
        status,
        actions,
        events,
        requeue_after: None,
        agent_failure: None,
    }
}

/// Waiting reasons that will not clear by themselves.
fn is_stuck(waiting: &str) -> bool {
    const STUCK: [&str; 5] = [
        "CreateContainerConfigError",
        "CreateContainerError",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
    ];
    STUCK.iter().any(|reason| waiting.starts_with(reason))
}

#[allow(clippy::too_many_arguments)]
fn completed_decision(
    incident: &Incident,
    current: &IncidentStatus,
    attempts: u32,
    pod: Option<String>,
    finished_at: Timestamp,
    termination: Option<&AgentTermination>,
    actions: Vec<Action>,
    now: Timestamp,
) -> Decision {
    let mut status = with_agent_results(current, termination);
    let outcome = status.outcome;
    let summary = StateSummary {
        ready: true,
        agent_running: false,
        failed: false,
        reason: conditions::REASON_COMPLETED,
        message: match outcome {
            Some(Outcome::Reported) | None => "the agent filed its report".to_string(),
            Some(Outcome::LimitReached) => "the agent hit a limit before its report".to_string(),
            Some(Outcome::Refused) => "the model declined to continue".to_string(),
            Some(Outcome::Error) => "the agent session ended with an error".to_string(),
            Some(Outcome::Rejected) => "a human rejected the proposed plan".to_string(),
            Some(Outcome::ApprovalExpired) => {
                "nobody approved the proposed plan before it expired".to_string()
            }
        },
    };
    status.phase = Some(Phase::Completed);
    status.conditions = conditions_for(
        &summary,
        &current.conditions,
        incident.metadata.generation,
        now,
    );
    status.observed_generation = incident.metadata.generation;
    status.agent_pod = pod;
    status.attempts = Some(attempts);
    status.start_time = current.start_time.clone();
    status.completion_time = Some(Time(finished_at));

    let mut note = summary.message.clone();
    if let Some(report) = &status.report {
        note = format!("{note}: {}", report.summary);
    } else if let Some(message) = &status.message {
        note = format!("{note}: {message}");
    }
    let mut actions = actions;
    actions.extend(honour_rerun_seen_during_run(incident));
    Decision {
        status,
        actions,
        events: vec![IncidentEvent::normal(events::REASON_COMPLETED, note)],
        requeue_after: None,
        agent_failure: None,
    }
}

fn failed_decision(
    incident: &Incident,
    current: &IncidentStatus,
    failed: FailedAttempt,
    actions: Vec<Action>,
    now: Timestamp,
) -> Decision {
    let mut status = with_agent_results(current, failed.termination.as_ref());
    let message = format!(
        "the agent failed {} time(s); last attempt: {}: {}",
        failed.attempt, failed.reason, failed.message
    );
    let summary = StateSummary {
        ready: false,
        agent_running: false,
        failed: true,
        reason: conditions::REASON_BACKOFF_LIMIT_EXCEEDED,
        message: message.clone(),
    };
    status.phase = Some(Phase::Failed);
    status.conditions = conditions_for(
        &summary,
        &current.conditions,
        incident.metadata.generation,
        now,
    );
    status.observed_generation = incident.metadata.generation;
    status.agent_pod = failed.pod;
    status.attempts = Some(failed.attempt);
    status.start_time = current.start_time.clone();
    status.completion_time = Some(Time(failed.finished_at.unwrap_or(now)));
    status.outcome = status.outcome.or(Some(Outcome::Error));
    status.message = Some(message.clone());
    let mut actions = actions;
    actions.extend(honour_rerun_seen_during_run(incident));
    Decision {
        status,
        actions,
        events: vec![IncidentEvent::warning(events::REASON_FAILED, message)],
        requeue_after: None,
        agent_failure: Some(failed.reason),
    }
}

fn backing_off_decision(
    incident: &Incident,
    current: &IncidentStatus,
    failed: FailedAttempt,
    summary_text: &str,
    due: Timestamp,
    actions: Vec<Action>,
    now: Timestamp,
) -> Decision {
    let message = format!("{summary_text}; next attempt at {due}");
    let was_backing_off = reason_of(&current.conditions, conditions::TYPE_READY)
        == Some(conditions::REASON_BACKING_OFF);
    let first_seen = !(was_backing_off && current.attempts == Some(failed.attempt));
    let events = if !first_seen {
        Vec::new()
    } else {
        vec![IncidentEvent::warning(
            events::REASON_AGENT_RETRYING,
            message.clone(),
        )]
    };
    let mut decision = waiting_decision(
        incident,
        current,
        failed.attempt,
        StateSummary {
            ready: false,
            agent_running: false,
            failed: false,
            reason: conditions::REASON_BACKING_OFF,
            message,
        },
        actions,
        events,
        Some(until(now, due)),
        now,
    );
    decision.status.agent_pod = failed.pod;
    decision.agent_failure = first_seen.then_some(failed.reason);
    decision
}

fn rerun_decision(
    incident: &Incident,
    current: &IncidentStatus,
    views: &[AgentPodView],
    value: &str,
    now: Timestamp,
) -> Decision {
    let mut actions = vec![
        Action::RecordRerun {
            value: value.to_string(),
        },
        Action::ResetAgentResults,
    ];
    actions.extend(views.iter().map(|view| Action::DeletePod {
        name: view.name.clone(),
    }));
    let summary = StateSummary {
        ready: false,
        agent_running: false,
        failed: false,
        reason: conditions::REASON_RERUN_REQUESTED,
        message: format!("rerun requested ({}={value})", keys::ANNOTATION_RERUN),
    };
    let status = IncidentStatus {
        phase: Some(Phase::Pending),
        conditions: conditions_for(
            &summary,
            &current.conditions,
            incident.metadata.generation,
            now,
        ),
        observed_generation: incident.metadata.generation,
        attempts: Some(0),
        message: Some(summary.message.clone()),
        ..IncidentStatus::default()
    };
    Decision {
        status,
        actions,
        events: vec![IncidentEvent::normal(
            events::REASON_RERUN_STARTED,
            summary.message,
        )],
        requeue_after: Some(Duration::from_secs(1)),
        agent_failure: None,
    }
}

fn finished_decision(
    incident: &Incident,
    current: &IncidentStatus,
    views: &[AgentPodView],
    now: Timestamp,
    policy: &Policy,
) -> Decision {
    // The controller's fields and the (finished) run's results as they are; never fields other
    // writers own, such as the intake's `alert`.
    let mut status = with_agent_results(current, None);
    status.phase = current.phase;
    status.conditions = current.conditions.clone();
    status.observed_generation = incident.metadata.generation;
    status.agent_pod = current.agent_pod.clone();
    status.attempts = current.attempts;
    status.start_time = current.start_time.clone();
    status.completion_time = current.completion_time.clone();
    let mut events = Vec::new();
    let generation_moved = matches!(
        (incident.metadata.generation, current.observed_generation),
        (Some(now_gen), Some(seen)) if now_gen > seen
    );
    if generation_moved {
        events.push(IncidentEvent::normal(
            events::REASON_SPEC_CHANGED_AFTER_FINISH,
            format!(
                "the spec changed after the investigation finished; set the annotation {} to a new value to run the agent again",
                keys::ANNOTATION_RERUN
            ),
        ));
    }
    let ttl = ttl_deletions(views, now, policy, None);
    Decision {
        status,
        actions: ttl.actions,
        events,
        requeue_after: ttl.next_due.map(|due| until(now, due)),
        agent_failure: None,
    }
}

/// Records a rerun value that was set while the run that just finished was going on: that run
/// honoured it, so it must not trigger another.
fn honour_rerun_seen_during_run(incident: &Incident) -> Option<Action> {
    rerun::pending(incident).map(|value| Action::RecordRerun {
        value: value.to_string(),
    })
}

/// The status with the agent's results: what the agent wrote, and where it wrote nothing (it died
/// first, or could not reach the API server) what its termination message says. Results of an older
/// session (another attempt) are replaced by this session's where the termination message has them.
fn with_agent_results(
    current: &IncidentStatus,
    termination: Option<&AgentTermination>,
) -> IncidentStatus {
    let mut status = IncidentStatus {
        session_id: current.session_id.clone(),
        outcome: current.outcome,
        message: current.message.clone(),
        last_command: current.last_command.clone(),
        report: current.report.clone(),
        usage: current.usage.clone(),
        audit: current.audit.clone(),
        ..IncidentStatus::default()
    };
    let Some(termination) = termination else {
        return status;
    };
    let same_session = current.session_id.as_deref() == Some(termination.session_id.as_str());
    let replace = !same_session;
    if !termination.session_id.is_empty() && (replace || status.session_id.is_none()) {
        status.session_id = Some(termination.session_id.clone());
    }
    if termination.outcome.is_some() && (replace || status.outcome.is_none()) {
        status.outcome = termination.outcome;
    }
    if termination.message.is_some() && (replace || status.message.is_none()) {
        status.message = termination.message.clone();
    }
    if termination.usage.is_some() && (replace || status.usage.is_none()) {
        status.usage = termination.usage.map(Box::new);
    }
    if let Some(summary) = termination
        .summary
        .as_ref()
        .filter(|s| !s.trim().is_empty())
        && (replace || status.report.is_none())
    {
        status.report = Some(Box::new(Report {
            summary: summary.clone(),
            confidence: termination.confidence.unwrap_or_default(),
            resolved: termination.resolved.unwrap_or(false),
            ..Report::default()
        }));
    }
    if let Some(path) = &termination.audit_path
        && (replace || status.audit.is_none())
    {
        status.audit = Some(Box::new(AuditSummary {
            path: path.clone(),
            sha256: termination.audit_sha256.clone(),
            chain_head: termination.audit_chain_head.clone(),
            record_count: termination.audit_record_count,
            entries: Vec::new(),
            truncated: false,
        }));
    }
    status
}

struct TtlDeletions {
    actions: Vec<Action>,
    next_due: Option<Timestamp>,
}

/// Finished pods whose TTL ran out (to delete) and when the next one will.
fn ttl_deletions(
    views: &[AgentPodView],
    now: Timestamp,
    policy: &Policy,
    keep: Option<&str>,
) -> TtlDeletions {
    let mut actions = Vec::new();
    let mut next_due: Option<Timestamp> = None;
    for view in views {
        if view.state.is_active() || keep == Some(view.name.as_str()) {
            continue;
        }
        let Some(finished) = view.state.finished_at().or(view.created_at) else {
            continue;
        };
        let due = add(finished, policy.finished_pod_ttl);
        if due <= now {
            actions.push(Action::DeletePod {
                name: view.name.clone(),
            });
        } else {
            next_due = Some(next_due.map_or(due, |next| next.min(due)));
        }
    }
    TtlDeletions { actions, next_due }
}

fn add(at: Timestamp, duration: Duration) -> Timestamp {
    SignedDuration::try_from(duration)
        .ok()
        .and_then(|d| at.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// Time from `now` until `at`, at least one second (requeueing at zero would spin).
fn until(now: Timestamp, at: Timestamp) -> Duration {
    let wait = at.duration_since(now);
    Duration::try_from(wait)
        .unwrap_or(Duration::ZERO)
        .max(Duration::from_secs(1))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::controller::pod::tests::incident;
    use crate::controller::pod_state::tests::{pod, terminated};
    use crate::incident::{Confidence, Usage};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    const T0: &str = "2026-01-01T00:00:00Z";

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn policy() -> Policy {
        Policy::default()
    }

    pub(crate) fn observed(pods: &[Pod]) -> Observed<'_> {
        Observed {
            pods,
            admission: Admission::Granted,
            api_key: ApiKeyState::Present,
            budget: BudgetCheck::Within,
            service_account: ServiceAccountState::Present,
        }
    }

    /// Incident `x` with the given status.
    fn with_status(status: IncidentStatus) -> Incident {
        let mut incident = incident("x");
        incident.status = Some(status);
        incident
    }

    fn running_status(attempts: u32) -> IncidentStatus {
        IncidentStatus {
            phase: Some(Phase::Running),
            attempts: Some(attempts),
            agent_pod: Some(format!("x-agent-{attempts}")),
            start_time: Some(Time(at(T0))),
            ..IncidentStatus::default()
        }
    }

    fn condition<'a>(status: &'a IncidentStatus, type_: &str) -> &'a Condition {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap_or_else(|| panic!("no {type_} condition"))
    }

    fn event_reasons(decision: &Decision) -> Vec<&'static str> {
        decision.events.iter().map(|e| e.reason).collect()
    }

    fn failed_pod(attempt: u32, finished_at: &str) -> Pod {
        terminated(
            pod(attempt, "Failed"),
            1,
            Some("Error"),
            Some("boom"),
            finished_at,
        )
    }

    #[test]
    fn new_incident_with_a_free_slot_starts_attempt_one() {
        let now = at("2026-01-01T00:00:05Z");
        let decision = next_status(&incident("x"), &observed(&[]), now, &policy());
        assert_eq!(decision.actions, [Action::CreatePod { attempt: 1 }]);
        let status = &decision.status;
        assert_eq!(status.phase, Some(Phase::Running));
        assert_eq!(status.attempts, Some(1));
        assert_eq!(status.agent_pod.as_deref(), Some("x-agent-1"));
        assert_eq!(status.start_time, Some(Time(now)));
        assert_eq!(status.observed_generation, Some(1));
        assert_eq!(
            condition(status, conditions::TYPE_AGENT_RUNNING).status,
            "True"
        );
        assert_eq!(condition(status, conditions::TYPE_READY).status, "False");
        assert_eq!(event_reasons(&decision), [events::REASON_AGENT_STARTED]);
        // The agent owns these while it runs.
        assert_eq!(status.message, None);
        assert_eq!(status.report, None);
        assert_eq!(wants_agent(&incident("x"), &[], now, &policy()), Some(1));
    }

    #[test]
    fn no_free_slot_queues_with_one_event() {
        let now = at(T0);
        let waiting = Observed {
            admission: Admission::Waiting {
                in_use: 3,
                limit: 3,
            },
            ..observed(&[])
        };
        let decision = next_status(&incident("x"), &waiting, now, &policy());
        assert!(decision.actions.is_empty());
        assert_eq!(decision.status.phase, Some(Phase::Queued));
        assert_eq!(
            condition(&decision.status, conditions::TYPE_READY).reason,
            conditions::REASON_WAITING_FOR_SLOT
        );
        assert_eq!(decision.requeue_after, Some(policy().recheck_queued));
        assert_eq!(event_reasons(&decision), [events::REASON_QUEUED]);

        let again = next_status(
            &with_status(decision.status.clone()),
            &waiting,
            now,
            &policy(),
        );
        assert!(again.events.is_empty(), "queued twice, one event");
        assert_eq!(
            again.status, decision.status,
            "nothing changes while waiting"
        );
    }

    #[test]
    fn exhausted_budget_queues_with_one_event_and_looks_again_when_it_frees() {
        let now = at(T0);
        let held = Observed {
            budget: BudgetCheck::Exhausted {
                scope: crate::budget::BudgetScope::Namespace("shop".into()),
                spent_usd: 12.5,
                limit_usd: 10.0,
                frees_at: now + SignedDuration::from_secs(5),
            },
            ..observed(&[])
        };
        let decision = next_status(&incident("x"), &held, now, &policy());
        assert!(
            decision.actions.is_empty(),
            "no pod while the budget is spent"
        );
        assert_eq!(decision.status.phase, Some(Phase::Queued));
        let ready = condition(&decision.status, conditions::TYPE_READY);
        assert_eq!(ready.reason, conditions::REASON_BUDGET_EXHAUSTED);
        assert!(
            ready.message.contains("$12.50 of $10.00"),
            "{}",
            ready.message
        );
        assert_eq!(event_reasons(&decision), [events::REASON_BUDGET_EXHAUSTED]);
        // Frees in 5 s, sooner than the queue's recheck: look again then.
        assert_eq!(decision.requeue_after, Some(Duration::from_secs(5)));

        let again = next_status(&with_status(decision.status.clone()), &held, now, &policy());
        assert!(again.events.is_empty(), "held twice, one event");
        // Once the window frees budget, it starts by itself.
        let freed = next_status(
            &with_status(decision.status.clone()),
            &observed(&[]),
            now,
            &policy(),
        );
        assert_eq!(freed.actions, [Action::CreatePod { attempt: 1 }]);
    }

    #[test]
    fn missing_secret_is_reported_not_retried_in_a_loop() {
        let missing = Observed {
            api_key: ApiKeyState::Missing("secret shop/anthropic not found".to_string()),
            ..observed(&[])
        };
        let decision = next_status(&incident("x"), &missing, at(T0), &policy());
        assert!(decision.actions.is_empty());
        assert_eq!(decision.status.phase, Some(Phase::Pending));
        assert_eq!(
            decision.status.message.as_deref(),
            Some("secret shop/anthropic not found")
        );
        assert_eq!(
            condition(&decision.status, conditions::TYPE_READY).reason,
            conditions::REASON_MISSING_API_KEY_SECRET
        );
        assert_eq!(decision.requeue_after, Some(policy().recheck_secret));
        assert!(decision.events[0].warning);
        let again = next_status(&with_status(decision.status), &missing, at(T0), &policy());
        assert!(again.events.is_empty());
    }

    #[test]
    fn a_refused_service_account_is_reported_like_a_missing_secret() {
        let why = "the ServiceAccount shop/agent does not exist".to_string();
        let missing = Observed {
            service_account: ServiceAccountState::Missing(why.clone()),
            ..observed(&[])
        };
        let decision = next_status(&incident("x"), &missing, at(T0), &policy());
        assert!(decision.actions.is_empty(), "no pod is created");
        assert_eq!(decision.status.phase, Some(Phase::Pending));
        assert_eq!(decision.status.message.as_deref(), Some(why.as_str()));
        assert_eq!(
            condition(&decision.status, conditions::TYPE_READY).reason,
            conditions::REASON_MISSING_SERVICE_ACCOUNT
        );
        assert_eq!(decision.requeue_after, Some(policy().recheck_secret));
        assert_eq!(
            decision.events[0].reason,
            events::REASON_MISSING_SERVICE_ACCOUNT
        );
        assert!(decision.events[0].warning);
        let again = next_status(&with_status(decision.status), &missing, at(T0), &policy());
        assert!(again.events.is_empty(), "one event, not one per recheck");
    }

    #[test]
    fn pending_and_running_pods_mean_running_without_touching_agent_fields() {
        let now = at("2026-01-01T00:01:00Z");
        let mut current = running_status(1);
        current.message = Some("agent: inspecting pods".to_string());
        current.last_command = Some("kubectl get pods".to_string());
        let pending = next_status(
            &with_status(current.clone()),
            &observed(&[pod(1, "Pending")]),
            now,
            &policy(),
        );
        assert!(pending.actions.is_empty());
        assert_eq!(pending.status.phase, Some(Phase::Running));
        assert_eq!(
            condition(&pending.status, conditions::TYPE_AGENT_RUNNING).reason,
            conditions::REASON_POD_PENDING
        );
        let running = next_status(
            &with_status(current),
            &observed(&[pod(1, "Running")]),
            now,
            &policy(),
        );
        assert_eq!(
            condition(&running.status, conditions::TYPE_AGENT_RUNNING).reason,
            conditions::REASON_POD_RUNNING
        );
        for decision in [&pending, &running] {
            assert_eq!(decision.status.message, None);
            assert_eq!(decision.status.last_command, None);
            assert_eq!(decision.status.start_time, Some(Time(at(T0))));
            assert!(decision.events.is_empty());
        }
    }

    #[test]
    fn agent_running_keeps_its_transition_time_from_pending_to_running() {
        let t1 = at("2026-01-01T00:01:00Z");
        let t2 = at("2026-01-01T00:02:00Z");
        let first = next_status(
            &with_status(running_status(1)),
            &observed(&[pod(1, "Pending")]),
            t1,
            &policy(),
        );
        let second = next_status(
            &with_status(first.status.clone()),
            &observed(&[pod(1, "Running")]),
            t2,
            &policy(),
        );
        let before = condition(&first.status, conditions::TYPE_AGENT_RUNNING);
        let after = condition(&second.status, conditions::TYPE_AGENT_RUNNING);
        assert_eq!(before.last_transition_time, Time(t1));
        assert_eq!(
            after.last_transition_time,
            Time(t1),
            "still True: time kept"
        );
        assert_ne!(before.reason, after.reason);
    }

    #[test]
    fn stuck_pod_is_surfaced_once() {
        use k8s_openapi::api::core::v1::{ContainerState, ContainerStateWaiting, ContainerStatus};
        let mut stuck = pod(1, "Pending");
        stuck.status.as_mut().unwrap().container_statuses = Some(vec![ContainerStatus {
            name: keys::AGENT_CONTAINER.to_string(),
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some("ImagePullBackOff".to_string()),
                    message: Some("no such image".to_string()),
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }]);
        let pods = [stuck];
        let first = next_status(
            &with_status(running_status(1)),
            &observed(&pods),
            at(T0),
            &policy(),
        );
        assert_eq!(event_reasons(&first), [events::REASON_AGENT_POD_STUCK]);
        assert!(
            first
                .status
                .message
                .as_deref()
                .unwrap()
                .contains("ImagePullBackOff")
        );
        let second = next_status(
            &with_status(first.status.clone()),
            &observed(&pods),
            at(T0),
            &policy(),
        );
        assert!(second.events.is_empty());
    }

    fn termination_json() -> String {
        serde_json::to_string(&AgentTermination {
            session_id: "2026-01-01T00-00-05-abcdef12".to_string(),
            outcome: Some(Outcome::Reported),
            message: None,
            usage: Some(Usage {
                turns: 4,
                tool_calls: 6,
                input_tokens: 1000,
                output_tokens: 200,
                cache_read_tokens: 0,
                cache_write_tokens: 0,
                cost_usd: None,
            }),
            summary: Some("the disk of node-3 is full".to_string()),
            resolved: Some(false),
            confidence: Some(Confidence::High),
            audit_path: Some("/var/lib/incident-operator/audit/x.json".to_string()),
            audit_sha256: Some("a".repeat(64)),
            audit_chain_head: None,
            audit_record_count: None,
        })
        .unwrap()
    }

    #[test]
    fn success_without_agent_patches_is_completed_from_the_termination_message() {
        let json = termination_json();
        let done = terminated(
            pod(1, "Succeeded"),
            0,
            Some("Completed"),
            Some(&json),
            "2026-01-01T00:04:00Z",
        );
        let now = at("2026-01-01T00:04:02Z");
        let decision = next_status(
            &with_status(running_status(1)),
            &observed(&[done]),
            now,
            &policy(),
        );
        let status = &decision.status;
        assert_eq!(status.phase, Some(Phase::Completed));
        assert_eq!(
            status.completion_time,
            Some(Time(at("2026-01-01T00:04:00Z")))
        );
        assert_eq!(status.outcome, Some(Outcome::Reported));
        assert_eq!(
            status.session_id.as_deref(),
            Some("2026-01-01T00-00-05-abcdef12")
        );
        let report = status.report.as_ref().unwrap();
        assert_eq!(report.summary, "the disk of node-3 is full");
        assert_eq!(report.confidence, Confidence::High);
        assert_eq!(status.usage.as_ref().unwrap().tool_calls, 6);
        assert_eq!(
            status.audit.as_ref().unwrap().path,
            "/var/lib/incident-operator/audit/x.json"
        );
        assert_eq!(condition(status, conditions::TYPE_READY).status, "True");
        assert_eq!(
            condition(status, conditions::TYPE_AGENT_RUNNING).status,
            "False"
        );
        assert_eq!(event_reasons(&decision), [events::REASON_COMPLETED]);
        assert!(decision.events[0].note.contains("node-3"));
        assert!(decision.actions.is_empty());
    }

    #[test]
    fn success_never_overwrites_what_the_agent_wrote_for_the_same_session() {
        let json = termination_json();
        let done = terminated(
            pod(1, "Succeeded"),
            0,
            None,
            Some(&json),
            "2026-01-01T00:04:00Z",
        );
        let agent_report = Report {
            summary: "full report by the agent".to_string(),
            root_cause: Some("log rotation disabled".to_string()),
            evidence: vec!["df -h: 100%".to_string()],
            confidence: Confidence::Medium,
            ..Report::default()
        };
        let mut current = running_status(1);
        current.session_id = Some("2026-01-01T00-00-05-abcdef12".to_string());
        current.report = Some(Box::new(agent_report.clone()));
        current.message = Some("filed".to_string());
        let decision = next_status(&with_status(current), &observed(&[done]), at(T0), &policy());
        assert_eq!(decision.status.report, Some(Box::new(agent_report)));
        assert_eq!(decision.status.message.as_deref(), Some("filed"));
        // Fields the agent never wrote are still filled in.
        assert_eq!(decision.status.usage.unwrap().turns, 4);
    }

    #[test]
    fn results_of_an_older_session_are_replaced() {
        let json = termination_json();
        let done = terminated(
            pod(2, "Succeeded"),
            0,
            None,
            Some(&json),
            "2026-01-01T00:04:00Z",
        );
        let mut current = running_status(2);
        current.session_id = Some("older-session".to_string());
        current.outcome = Some(Outcome::Error);
        current.usage = Some(Box::new(Usage::default()));
        let older = failed_pod(1, "2026-01-01T00:01:00Z");
        let decision = next_status(
            &with_status(current),
            &observed(&[older, done]),
            at(T0),
            &policy(),
        );
        assert_eq!(
            decision.status.session_id.as_deref(),
            Some("2026-01-01T00-00-05-abcdef12")
        );
        assert_eq!(decision.status.outcome, Some(Outcome::Reported));
        assert_eq!(decision.status.usage.unwrap().turns, 4);
        assert_eq!(decision.status.attempts, Some(2));
    }

    #[test]
    fn failed_attempt_backs_off_then_retries() {
        let pods = [failed_pod(1, "2026-01-01T00:01:00Z")];
        let incident = with_status(running_status(1));
        // Base 10 s: due at 00:01:10.
        let early = at("2026-01-01T00:01:04Z");
        let decision = next_status(&incident, &observed(&pods), early, &policy());
        assert!(decision.actions.is_empty());
        assert_eq!(decision.status.phase, Some(Phase::Pending));
        assert_eq!(
            condition(&decision.status, conditions::TYPE_READY).reason,
            conditions::REASON_BACKING_OFF
        );
        assert_eq!(decision.requeue_after, Some(Duration::from_secs(6)));
        assert_eq!(event_reasons(&decision), [events::REASON_AGENT_RETRYING]);
        assert_eq!(decision.agent_failure, Some(pod_state::FAILURE_AGENT_ERROR));
        let message = decision.status.message.clone().unwrap();
        assert!(
            message.contains("attempt 1 failed (AgentError)"),
            "{message}"
        );
        assert!(message.contains("00:01:10"), "{message}");
        assert_eq!(wants_agent(&incident, &pods, early, &policy()), None);

        let backing_off = with_status(decision.status.clone());
        let still = next_status(
            &backing_off,
            &observed(&pods),
            at("2026-01-01T00:01:08Z"),
            &policy(),
        );
        assert!(still.events.is_empty(), "one retry event per failure");
        assert_eq!(still.agent_failure, None, "counted once");

        let due = at("2026-01-01T00:01:10Z");
        assert_eq!(wants_agent(&backing_off, &pods, due, &policy()), Some(2));
        let retry = next_status(&backing_off, &observed(&pods), due, &policy());
        assert_eq!(retry.actions, [Action::CreatePod { attempt: 2 }]);
        assert_eq!(retry.status.attempts, Some(2));
        assert_eq!(retry.status.agent_pod.as_deref(), Some("x-agent-2"));
        assert!(retry.events[0].note.contains("after attempt 1 failed"));
    }

    #[test]
    fn a_failure_first_seen_after_its_retry_delay_retries_at_once_with_a_retry_event() {
        let pods = [failed_pod(1, "2026-01-01T00:01:00Z")];
        let incident = with_status(running_status(1));
        // Base 10 s: due at 00:01:10, and the controller only looks at 00:01:30.
        let late = at("2026-01-01T00:01:30Z");
        let retry = next_status(&incident, &observed(&pods), late, &policy());
        assert_eq!(retry.actions, [Action::CreatePod { attempt: 2 }]);
        assert_eq!(
            event_reasons(&retry),
            [events::REASON_AGENT_RETRYING, events::REASON_AGENT_STARTED]
        );
        assert!(
            retry.events[0]
                .note
                .contains("attempt 1 failed (AgentError)")
        );
        assert_eq!(retry.agent_failure, Some(pod_state::FAILURE_AGENT_ERROR));
    }

    #[test]
    fn retry_delay_doubles_and_is_capped() {
        let policy = Policy {
            retry_backoff_base: Duration::from_secs(10),
            retry_backoff_max: Duration::from_secs(60),
            ..Policy::default()
        };
        let delays: Vec<_> = (1..=5).map(|n| policy.retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [10, 20, 40, 60, 60]);
        assert_eq!(policy.retry_delay(200).as_secs(), 60);
    }

    #[test]
    fn exhausted_retries_fail_the_incident() {
        let pods = [
            failed_pod(1, "2026-01-01T00:01:00Z"),
            terminated(
                pod(2, "Failed"),
                137,
                Some("OOMKilled"),
                None,
                "2026-01-01T00:03:00Z",
            ),
        ];
        let now = at("2026-01-01T00:03:01Z");
        let decision = next_status(
            &with_status(running_status(2)),
            &observed(&pods),
            now,
            &policy(),
        );
        let status = &decision.status;
        assert!(decision.actions.is_empty());
        assert_eq!(status.phase, Some(Phase::Failed));
        assert_eq!(status.outcome, Some(Outcome::Error));
        assert_eq!(
            status.completion_time,
            Some(Time(at("2026-01-01T00:03:00Z")))
        );
        let failed = condition(status, conditions::TYPE_FAILED);
        assert_eq!(failed.status, "True");
        assert_eq!(failed.reason, conditions::REASON_BACKOFF_LIMIT_EXCEEDED);
        let message = status.message.as_deref().unwrap();
        assert!(
            message.contains("2 time(s)") && message.contains("OOMKilled"),
            "{message}"
        );
        assert_eq!(event_reasons(&decision), [events::REASON_FAILED]);
        assert!(decision.events[0].warning);
        assert_eq!(
            wants_agent(&with_status(decision.status.clone()), &pods, now, &policy()),
            None
        );
    }

    #[test]
    fn zero_backoff_limit_fails_on_the_first_error() {
        let policy = Policy {
            backoff_limit: 0,
            ..Policy::default()
        };
        let pods = [failed_pod(1, T0)];
        let decision = next_status(
            &with_status(running_status(1)),
            &observed(&pods),
            at(T0),
            &policy,
        );
        assert_eq!(decision.status.phase, Some(Phase::Failed));
    }

    #[test]
    fn every_kind_of_pod_failure_is_retried_with_its_reason() {
        let mut deadline = pod(1, "Failed");
        deadline.status.as_mut().unwrap().reason = Some("DeadlineExceeded".to_string());
        let mut evicted = pod(1, "Failed");
        evicted.status.as_mut().unwrap().reason = Some("Evicted".to_string());
        let oom = terminated(pod(1, "Failed"), 137, Some("OOMKilled"), None, T0);
        for (failed, reason) in [
            (deadline, "DeadlineExceeded"),
            (evicted, "Evicted"),
            (oom, "OOMKilled"),
            (failed_pod(1, T0), "AgentError"),
        ] {
            // Pods with a finish time back off; the others (no container ran) retry at once.
            let decision = next_status(
                &with_status(running_status(1)),
                &observed(&[failed]),
                at(T0),
                &policy(),
            );
            assert_ne!(decision.status.phase, Some(Phase::Failed), "{reason}");
            let note = &decision.events[0].note;
            assert!(
                note.contains(&format!("attempt 1 failed ({reason})")),
                "{reason}: {note}"
            );
        }
    }

    #[test]
    fn pod_deleted_while_running_is_retried_at_once() {
        let now = at("2026-01-01T00:02:00Z");
        let incident = with_status(running_status(1));
        assert_eq!(wants_agent(&incident, &[], now, &policy()), Some(2));
        let decision = next_status(&incident, &observed(&[]), now, &policy());
        assert_eq!(decision.actions, [Action::CreatePod { attempt: 2 }]);
        assert_eq!(decision.agent_failure, Some(pod_state::FAILURE_POD_DELETED));
        assert!(
            decision.events[0].note.contains("PodDeleted"),
            "{:?}",
            decision.events
        );
        // The second vanished pod exhausts the retries.
        let gone_again = next_status(
            &with_status(decision.status),
            &observed(&[]),
            now,
            &policy(),
        );
        assert_eq!(gone_again.status.phase, Some(Phase::Failed));
        assert!(gone_again.status.message.unwrap().contains("PodDeleted"));
    }

    #[test]
    fn terminating_pod_still_counts_as_running() {
        let mut going = pod(1, "Running");
        going.metadata.deletion_timestamp = Some(Time(at(T0)));
        let decision = next_status(
            &with_status(running_status(1)),
            &observed(&[going]),
            at(T0),
            &policy(),
        );
        assert_eq!(decision.status.phase, Some(Phase::Running));
        assert_eq!(
            condition(&decision.status, conditions::TYPE_AGENT_RUNNING).reason,
            conditions::REASON_POD_TERMINATING
        );
        assert!(decision.actions.is_empty());
    }

    fn completed_status() -> IncidentStatus {
        let json = termination_json();
        let done = terminated(
            pod(1, "Succeeded"),
            0,
            None,
            Some(&json),
            "2026-01-01T00:04:00Z",
        );
        next_status(
            &with_status(running_status(1)),
            &observed(&[done]),
            at("2026-01-01T00:04:00Z"),
            &policy(),
        )
        .status
    }

    #[test]
    fn finished_incident_is_not_rerun_on_spec_change() {
        let mut incident = with_status(completed_status());
        incident.metadata.generation = Some(2);
        incident.spec.title = "a better title".to_string();
        let now = at("2026-01-01T00:10:00Z");
        let done = terminated(pod(1, "Succeeded"), 0, None, None, "2026-01-01T00:04:00Z");
        let pods = [done];
        assert_eq!(wants_agent(&incident, &pods, now, &policy()), None);
        let decision = next_status(&incident, &observed(&pods), now, &policy());
        assert!(decision.actions.is_empty());
        assert_eq!(decision.status.phase, Some(Phase::Completed));
        assert_eq!(decision.status.observed_generation, Some(2));
        assert_eq!(
            event_reasons(&decision),
            [events::REASON_SPEC_CHANGED_AFTER_FINISH]
        );
        // The report stays as it was.
        assert_eq!(decision.status.report, completed_status().report);

        let seen = with_status(decision.status.clone());
        let quiet = next_status(&seen, &observed(&pods), now, &policy());
        assert!(quiet.events.is_empty());
    }

    #[test]
    fn the_controller_never_writes_fields_other_writers_own() {
        use crate::incident::AlertActivity;
        let activity = AlertActivity {
            occurrences: 3,
            first_seen: Time(at(T0)),
            last_seen: Time(at(T0)),
            resolved_at: None,
            recurrences: None,
            last_recurrence: None,
        };
        let mut current = completed_status();
        current.alert = Some(Box::new(activity.clone()));
        let incident = with_status(current.clone());
        let decision = next_status(
            &incident,
            &observed(&[]),
            at("2026-01-01T00:10:00Z"),
            &policy(),
        );
        assert_eq!(decision.status.alert, None, "status.alert is the intake's");
        current.alert = None;
        assert_eq!(decision.status, current, "everything else is kept as it is");

        let mut running = running_status(1);
        running.alert = Some(Box::new(activity));
        let decision = next_status(
            &with_status(running),
            &observed(&[pod(1, "Running")]),
            at(T0),
            &policy(),
        );
        assert_eq!(decision.status.alert, None);
    }

    #[test]
    fn finished_pods_are_deleted_after_their_ttl() {
        let incident = with_status(completed_status());
        let pods = [
            terminated(pod(1, "Failed"), 1, None, None, "2026-01-01T00:00:00Z"),
            terminated(pod(2, "Succeeded"), 0, None, None, "2026-01-01T00:30:00Z"),
        ];
        let now = at("2026-01-01T01:10:00Z");
        let decision = next_status(&incident, &observed(&pods), now, &policy());
        assert_eq!(
            decision.actions,
            [Action::DeletePod {
                name: "x-agent-1".to_string()
            }]
        );
        assert_eq!(decision.requeue_after, Some(Duration::from_secs(20 * 60)));
        let later = next_status(
            &incident,
            &observed(&pods[1..]),
            at("2026-01-01T01:30:00Z"),
            &policy(),
        );
        assert_eq!(later.actions.len(), 1);
        assert_eq!(later.requeue_after, None);
    }

    #[test]
    fn old_attempts_expire_while_the_latest_is_kept() {
        let pods = [
            failed_pod(1, "2026-01-01T00:00:00Z"),
            failed_pod(2, "2026-01-01T00:00:30Z"),
        ];
        let policy = Policy {
            backoff_limit: 5,
            retry_backoff_max: Duration::from_secs(7200),
            retry_backoff_base: Duration::from_secs(7200),
            ..Policy::default()
        };
        let now = at("2026-01-01T01:00:20Z");
        let decision = next_status(
            &with_status(running_status(2)),
            &observed(&pods),
            now,
            &policy,
        );
        assert_eq!(
            decision.actions,
            [Action::DeletePod {
                name: "x-agent-1".to_string()
            }]
        );
        assert_eq!(decision.status.agent_pod.as_deref(), Some("x-agent-2"));
    }

    fn annotate(incident: &mut Incident, key: &str, value: &str) {
        incident
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(key.to_string(), value.to_string());
    }

    #[test]
    fn new_rerun_value_resets_and_deletes_the_old_run() {
        let mut incident = with_status(completed_status());
        annotate(&mut incident, keys::ANNOTATION_RERUN, "1");
        let done = terminated(pod(1, "Succeeded"), 0, None, None, "2026-01-01T00:04:00Z");
        let decision = next_status(
            &incident,
            &observed(&[done]),
            at("2026-01-01T00:10:00Z"),
            &policy(),
        );
        assert_eq!(
            decision.actions,
            [
                Action::RecordRerun {
                    value: "1".to_string()
                },
                Action::ResetAgentResults,
                Action::DeletePod {
                    name: "x-agent-1".to_string()
                },
            ]
        );
        let status = &decision.status;
        assert_eq!(status.phase, Some(Phase::Pending));
        assert_eq!(status.attempts, Some(0));
        assert_eq!(status.report, None);
        assert_eq!(status.completion_time, None);
        assert_eq!(condition(status, conditions::TYPE_READY).status, "False");
        assert_eq!(event_reasons(&decision), [events::REASON_RERUN_STARTED]);
    }

    #[test]
    fn after_a_rerun_old_pods_never_count_and_names_never_collide() {
        let mut incident = with_status(IncidentStatus {
            phase: Some(Phase::Pending),
            attempts: Some(0),
            ..IncidentStatus::default()
        });
        annotate(&mut incident, keys::ANNOTATION_RERUN, "1");
        annotate(&mut incident, keys::ANNOTATION_RERUN_HONOURED, "1");
        let now = at("2026-01-01T00:10:01Z");

        // The cache still shows the old run's pod, not even marked for deletion: it is deleted
        // again, never taken for this run's result, and attempt 1 waits for the name to be free.
        let stale = terminated(pod(1, "Succeeded"), 0, None, Some(&termination_json()), T0);
        let decision = next_status(
            &incident,
            &observed(std::slice::from_ref(&stale)),
            now,
            &policy(),
        );
        assert_eq!(
            decision.actions,
            [Action::DeletePod {
                name: "x-agent-1".to_string()
            }]
        );
        assert_eq!(decision.status.phase, Some(Phase::Pending));
        assert_eq!(decision.requeue_after, Some(policy().recheck_cleanup));
        assert_eq!(
            wants_agent(&incident, std::slice::from_ref(&stale), now, &policy()),
            None
        );

        // Once it is gone the new run starts at attempt 1, labelled with the new run id.
        let decision = next_status(&incident, &observed(&[]), now, &policy());
        assert_eq!(decision.actions, [Action::CreatePod { attempt: 1 }]);
        let pod = crate::controller::pod::build_agent_pod(
            &incident,
            1,
            &crate::controller::pod::tests::config(),
        )
        .unwrap();
        assert_eq!(
            pod.metadata.labels.unwrap()[keys::LABEL_RUN],
            rerun::run_id(&incident)
        );
    }

    #[test]
    fn rerun_value_set_during_the_run_is_honoured_by_it() {
        let mut incident = with_status(running_status(1));
        annotate(&mut incident, keys::ANNOTATION_RERUN, "early");
        let done = terminated(pod(1, "Succeeded"), 0, None, Some(&termination_json()), T0);
        let decision = next_status(&incident, &observed(&[done]), at(T0), &policy());
        assert_eq!(decision.status.phase, Some(Phase::Completed));
        assert_eq!(
            decision.actions,
            [Action::RecordRerun {
                value: "early".to_string()
            }]
        );
    }

    #[test]
    fn invalid_spec_failure_restarts_once_the_incident_is_readable() {
        let summary = StateSummary {
            ready: false,
            agent_running: false,
            failed: true,
            reason: conditions::REASON_INVALID_SPEC,
            message: "unknown variant".to_string(),
        };
        let incident = with_status(IncidentStatus {
            phase: Some(Phase::Failed),
            conditions: conditions_for(&summary, &[], Some(1), at(T0)),
            ..IncidentStatus::default()
        });
        let decision = next_status(&incident, &observed(&[]), at(T0), &policy());
        assert_eq!(decision.actions, [Action::CreatePod { attempt: 1 }]);
        assert_eq!(
            condition(&decision.status, conditions::TYPE_FAILED).status,
            "False"
        );
    }

    #[test]
    fn hand_labelled_pods_without_attempt_are_ignored() {
        let mut odd = pod(1, "Running");
        odd.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert(keys::LABEL_ATTEMPT.to_string(), "one".to_string());
        odd.metadata.name = Some("x-debug".to_string());
        let decision = next_status(&incident("x"), &observed(&[odd]), at(T0), &policy());
        assert_eq!(decision.actions, [Action::CreatePod { attempt: 1 }]);
    }
}

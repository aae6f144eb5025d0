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

use super::conditions::{self, StateSummary, conditions_for, reason_of};
use super::events::{self, IncidentEvent};
use super::keys;
use super::pod::agent_pod_name;
use super::pod_state::{self, AgentPodState, AgentPodView, view_agent_pod};
use super::rerun;
use crate::incident::{
    AgentTermination, AuditSummary, Incident, IncidentStatus, Outcome, Phase, Report,
};

/// Operator-wide rules for retries, clean-up and how often to look again.
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// What the controller knows besides the Incident itself.
#[derive(Clone, Debug)]
pub struct Observed<'a> {
    /// Agent pods owned by the Incident, from the cache (plus ones just created).
    pub pods: &'a [Pod],
    pub admission: Admission,
    pub api_key: ApiKeyState,
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
    match step(incident, observed.pods, now, policy) {
        Step::Settled(decision) => *decision,
        Step::Start(start) => start_attempt(incident, start, observed, now, policy),
    }
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
    /// Why the previous attempt failed, for the retry's messages.
    previous_failure: Option<String>,
    /// Deletions to do whether or not the attempt can start.
    cleanup: Vec<Action>,
}

fn step(incident: &Incident, pods: &[Pod], now: Timestamp, policy: &Policy) -> Step {
    let current = incident.status.clone().unwrap_or_default();
    let views: Vec<AgentPodView> = pods.iter().map(view_agent_pod).collect();

    if is_finished(&current) {
        return settled(match rerun::pending(incident) {
            Some(value) => rerun_decision(incident, &current, &views, value, now),
            None => finished_decision(incident, &current, &views, now, policy),
        });
    }

    let run = rerun::run_id(incident);
    let (this_run, leftovers): (Vec<&Pod>, Vec<&Pod>) = pods
        .iter()
        .partition(|pod| pod.labels().get(keys::LABEL_RUN) == Some(&run));
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
            return settled(completed_decision(
                incident,
                &current,
                attempts,
                latest.map(|view| view.name.clone()),
                finished_at.unwrap_or(now),
                termination.as_ref(),
                actions,
                now,
            ));
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
        Some(failed) if failed.attempt > policy.backoff_limit => {
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
            Some(summary)
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

fn start_attempt(
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
        .map(|failure| format!(" after {failure}"))
        .unwrap_or_default();
    if let ApiKeyState::Missing(why) = &observed.api_key {
        let was = reason_of(&current.conditions, conditions::TYPE_READY);
        let events = if was == Some(conditions::REASON_MISSING_API_KEY_SECRET) {
            Vec::new()
        } else {
            vec![IncidentEvent::warning(
                events::REASON_MISSING_API_KEY_SECRET,
                why.clone(),
            )]
        };
        return waiting_decision(
            incident,
            &current,
            attempts,
            StateSummary {
                ready: false,
                agent_running: false,
                failed: false,
                reason: conditions::REASON_MISSING_API_KEY_SECRET,
                message: why.clone(),
            },
            start.cleanup,
            events,
            Some(policy.recheck_secret),
            now,
        );
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
    let note = match start.attempt {
        1 => format!("created agent pod {name}"),
        n => format!("created agent pod {name} (attempt {n}){retry_note}"),
    };
    let mut actions = start.cleanup;
    actions.push(Action::CreatePod {
        attempt: start.attempt,
    });
    Decision {
        status,
        actions,
        events: vec![IncidentEvent::normal(events::REASON_AGENT_STARTED, note)],
        requeue_after: None,
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
    let events = if was_backing_off && current.attempts == Some(failed.attempt) {
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
    }
}

fn finished_decision(
    incident: &Incident,
    current: &IncidentStatus,
    views: &[AgentPodView],
    now: Timestamp,
    policy: &Policy,
) -> Decision {
    let mut status = current.clone();
    status.observed_generation = incident.metadata.generation;
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
        usage: current.usage,
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
        status.usage = termination.usage;
    }
    if let Some(summary) = termination
        .summary
        .as_ref()
        .filter(|s| !s.trim().is_empty())
        && (replace || status.report.is_none())
    {
        status.report = Some(Report {
            summary: summary.clone(),
            confidence: termination.confidence.unwrap_or_default(),
            resolved: termination.resolved.unwrap_or(false),
            ..Report::default()
        });
    }
    if let Some(path) = &termination.audit_path
        && (replace || status.audit.is_none())
    {
        status.audit = Some(AuditSummary {
            path: path.clone(),
            sha256: termination.audit_sha256.clone(),
            entries: Vec::new(),
            truncated: false,
        });
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

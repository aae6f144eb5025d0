//! One reconcile of one Incident, wiring the pure steps to the API:
//! observe (caches, a fresh read before finishing) → decide ([`next_status`]) → apply (actions,
//! then the status, then events) → metrics. Plus [`error_policy`], which tells an invalid spec
//! (wait for a change) from a transient failure (retry with backoff).

use crate::budget::BudgetCheck;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::channel::mpsc::UnboundedSender;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::DeserializeGuard;
use kube::core::error_boundary::InvalidObject;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;

use super::apply;
use super::cache::ClusterView;
use super::conditions::{self, StateSummary, conditions_for};
use super::error::Error;
use super::events::{self, EventPublisher, IncidentEvent};
use super::lifecycle::{
    self, Admission, ApiKeyState, Decision, Observed, Policy, ServiceAccountState, next_status,
    wants_agent,
};
use super::listed_order::ReconcilePace;
use super::metrics::Metrics;
use super::pod::{AgentPodConfig, build_agent_pod};
use super::pod_state::view_agent_pod;
use super::queue::QueueEntry;
use super::queued_writes::{PendingStatus, QueuedWrites};
use super::status_diff;
use super::text::truncate_start;
use crate::incident::{Incident, IncidentStatus, Phase};

/// How often an Incident is looked at when nothing else is due (watches can miss events).
pub const RESYNC: Duration = Duration::from_secs(15 * 60);
/// First retry after a transient reconcile failure; doubled per consecutive failure.
const ERROR_BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest wait between retries after transient failures.
const ERROR_BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Longest message kept from a deserialization error.
const INVALID_MESSAGE_MAX_BYTES: usize = 1024;

/// Where a controller takes extra reconcile requests from.
pub type WakeSender = UnboundedSender<ObjectRef<DeserializeGuard<Incident>>>;

/// Wakes the Incidents at the head of the queue (through `Controller::reconcile_on`) when an
/// agent slot frees up, so they need not wait for their periodic recheck.
#[derive(Clone, Default)]
pub struct QueueWakeup {
    /// One sender per running controller, with the namespace it watches (`None`: all).
    senders: Vec<(Option<String>, WakeSender)>,
}

impl QueueWakeup {
    /// A wakeup over these controllers' reconcile triggers.
    pub fn new(senders: Vec<(Option<String>, WakeSender)>) -> Self {
        Self { senders }
    }

    /// Asks the controller watching each entry's namespace to reconcile it.
    pub fn notify(&self, entries: &[QueueEntry]) {
        for entry in entries {
            let Some((_, sender)) = self
                .senders
                .iter()
                .find(|(namespace, _)| namespace.as_deref().is_none_or(|ns| ns == entry.namespace))
            else {
                continue;
            };
            let object = ObjectRef::new(&entry.name).within(&entry.namespace);
            // A closed receiver means that controller has stopped; nothing to wake.
            let _ = sender.unbounded_send(object);
        }
    }
}

/// Everything a reconcile needs, shared by all reconciles of all watched namespaces.
pub struct Context {
    pub client: Client,
    pub pod_config: AgentPodConfig,
    pub policy: Policy,
    /// Most agent pods at once.
    pub max_agents: usize,
    pub view: ClusterView,
    /// Held from "is a slot free" to "pod created", so two reconciles cannot take one slot.
    pub admission: tokio::sync::Mutex<()>,
    pub events: EventPublisher,
    pub metrics: Metrics,
    pub wakeup: QueueWakeup,
    /// Statuses of waiting Incidents, written off the reconcile path ([`super::queued_writes`]).
    pub queued_writes: QueuedWrites,
    /// The IncidentApproval caches ([`super::approvals`]); empty until [`Self::with_approvals`].
    pub approvals: super::approvals::ApprovalCache,
    /// Finished reconciles, which pace the first reconciles after a list ([`super::listed_order`]).
    pub pace: ReconcilePace,
    /// Consecutive failures per Incident (`namespace/name`), for the retry backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// A context; `view` must cover the scopes the controllers watch.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: Client,
        pod_config: AgentPodConfig,
        policy: Policy,
        max_agents: usize,
        view: ClusterView,
        events: EventPublisher,
        metrics: Metrics,
        wakeup: QueueWakeup,
    ) -> Self {
        Self {
            client,
            pod_config,
            policy,
            max_agents,
            view,
            admission: tokio::sync::Mutex::new(()),
            events,
            metrics,
            wakeup,
            queued_writes: QueuedWrites::default(),
            approvals: super::approvals::ApprovalCache::default(),
            pace: ReconcilePace::default(),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// This context reading approvals from `approvals`.
    pub fn with_approvals(mut self, approvals: super::approvals::ApprovalCache) -> Self {
        self.approvals = approvals;
        self
    }

    fn failure_counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        // Counters only; a poisoned lock still holds usable numbers.
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets the gauges from the counts the caches keep per watch event (no walk over the cache).
    pub fn refresh_gauges(&self) {
        let summary = self.view.summary();
        self.metrics
            .set_gauges(&summary.phases, summary.waiting, summary.active_agents);
    }
}

fn key_of(object: &DeserializeGuard<Incident>) -> String {
    format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// The current time, whole seconds: the API server keeps timestamps to the second, and comparing
/// a finer time with what it returns would look like a change on every pass.
fn now_seconds() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_second(now.as_second()).unwrap_or(now)
}

/// Reconciles one Incident (or records why it cannot be read).
#[tracing::instrument(skip_all, fields(incident = %key_of(&object)))]
pub async fn reconcile(
    object: Arc<DeserializeGuard<Incident>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let result = match &object.0 {
        Ok(incident) => reconcile_incident(incident, &ctx).await,
        Err(invalid) => reconcile_invalid(&object, invalid, &ctx).await,
    };
    ctx.metrics.observe_reconcile(started.elapsed());
    ctx.refresh_gauges();
    ctx.pace.finished_one();
    match &result {
        Ok(_) => {
            ctx.failure_counts().remove(&key_of(&object));
        }
        Err(error) if !error.awaits_change() => {
            let event = IncidentEvent::warning(error.category(), error.chain());
            ctx.events.publish(&event, &object.object_ref(&())).await;
        }
        Err(_) => {}
    }
    result
}

/// What to do after a failed reconcile: wait for a change when only a change can help, else retry
/// with a per-Incident exponential backoff.
pub fn error_policy(
    object: Arc<DeserializeGuard<Incident>>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    ctx.metrics.count_failure(error.metric_label());
    if error.awaits_change() {
        tracing::warn!(error = %error.chain(), "waiting for the Incident to change");
        return Action::await_change();
    }
    let failures = {
        let mut counts = ctx.failure_counts();
        let count = counts.entry(key_of(&object)).or_insert(0);
        *count = count.saturating_add(1);
        *count
    };
    let delay = ERROR_BACKOFF_BASE
        .checked_mul(1u32 << failures.saturating_sub(1).min(16))
        .unwrap_or(ERROR_BACKOFF_MAX)
        .min(ERROR_BACKOFF_MAX);
    tracing::warn!(error = %error.chain(), retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

async fn reconcile_incident(incident: &Incident, ctx: &Context) -> Result<Action, Error> {
    let namespace = incident
        .namespace()
        .ok_or(Error::MissingMetadata("namespace"))?;
    let uid = incident.uid().ok_or(Error::MissingMetadata("uid"))?;
    let name = incident.name_any();
    let incidents: Api<DeserializeGuard<Incident>> =
        Api::namespaced(ctx.client.clone(), &namespace);
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let now = now_seconds();

    let mut pods = ctx.view.pods_of(&uid);
    let mut incident = incident.clone();
    if needs_fresh_read(&incident, &pods) {
        // The agent's last status patch happens before its pod finishes, but the two watches may
        // deliver in the other order: read the Incident itself before deciding how it ended.
        incident = match incidents.get_status(&name).await {
            Ok(DeserializeGuard(Ok(fresh))) => fresh,
            Ok(DeserializeGuard(Err(invalid))) => {
                return Err(Error::InvalidSpec {
                    name,
                    message: invalid.error,
                });
            }
            Err(source) => return Err(Error::GetIncident { name, source }),
        };
    }
    let previous_phase = incident.status.as_ref().and_then(|s| s.phase);
    // Observe the approvals: a decision for the current plan goes into the status this reconcile
    // writes (and the lifecycle acts on it); ignored ones are said so after deciding.
    let approval = observe_approvals(&mut incident, &namespace, &name, ctx, now);

    // Set when a path below has already applied the decided status.
    let mut status_applied = false;
    let (decision, admission) = if wants_agent(&incident, &pods, now, &ctx.policy).is_some() {
        let _slot = ctx.admission.lock().await;
        pods = ctx.view.pods_of(&uid);
        // The budget first: an Incident it holds takes no place in the queue (the ruling's walk
        // skips held entries the same way), and starts no agent even at the head.
        let budget = ctx.view.budget_check(&incident, now, &ctx.policy);
        let ruling = ctx
            .view
            .admission(&incident, now, &ctx.policy, ctx.max_agents);
        if ruling.admission != Admission::Granted && !ruling.ahead.is_empty() {
            // Slots are free but others are ahead: make sure they are reconciled now rather than
            // when their turn in the Controller's own order comes (after a restart on a backlog
            // that order is arbitrary).
            ctx.wakeup.notify(&ruling.ahead);
        }
        let api_key = match ruling.admission {
            Admission::Granted if budget == BudgetCheck::Within => {
                let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
                apply::check_api_key_secret(
                    &secrets,
                    &namespace,
                    &ctx.pod_config.api_key_secret,
                    &ctx.pod_config.api_key_secret_key,
                )
                .await?
            }
            Admission::Granted | Admission::Waiting { .. } => ApiKeyState::Present,
        };
        if budget != BudgetCheck::Within
            && reason_of_ready(&incident) != Some(conditions::REASON_BUDGET_EXHAUSTED)
        {
            ctx.metrics.spend.count_hold();
        }
        let observed = Observed {
            pods: &pods,
            admission: ruling.admission,
            api_key,
            budget,
            // A pod refused for its ServiceAccount is tried again only after `recheck_secret`:
            // each try writes a status naming the pod first, so trying on every watch event
            // would be a loop of writes.
            service_account: ctx
                .view
                .refused_account(&namespace, &name, ctx.policy.recheck_secret)
                .map_or(ServiceAccountState::Present, ServiceAccountState::Missing),
        };
        let decision = next_status(&incident, &observed, now, &ctx.policy);
        match execute(&decision, &incident, &incidents, &pods_api, ctx).await {
            Ok(()) => (decision, ruling.admission),
            // The pod was refused for its ServiceAccount: decide again knowing that, so the
            // Incident says so (Pending, message, event) instead of a reconcile error loop.
            Err(Error::MissingServiceAccount {
                namespace,
                service_account,
                refusal,
                ..
            }) => {
                let why = format!(
                    "the ServiceAccount {namespace}/{service_account} the agent pod runs as does not exist; \
                     create it or set the agent's ServiceAccount (the API server said: {refusal})"
                );
                ctx.view
                    .remember_refused_account(&namespace, &name, why.clone());
                let observed = Observed {
                    service_account: ServiceAccountState::Missing(why),
                    ..observed
                };
                let decision = next_status(&incident, &observed, now, &ctx.policy);
                execute(&decision, &incident, &incidents, &pods_api, ctx).await?;
                // The refused attempt already applied a claim naming the pod (see `pod_claim`):
                // replace it whatever the cached status says.
                apply::apply_status(&incidents, &name, &decision.status).await?;
                status_applied = true;
                (decision, ruling.admission)
            }
            Err(other) => return Err(other),
        }
    } else {
        let observed = Observed {
            pods: &pods,
            admission: Admission::Granted,
            api_key: ApiKeyState::Present,
            budget: BudgetCheck::Within,
            service_account: ServiceAccountState::Present,
        };
        let decision = next_status(&incident, &observed, now, &ctx.policy);
        execute(&decision, &incident, &incidents, &pods_api, ctx).await?;
        (decision, Admission::Granted)
    };

    let mut decision = decision;
    approval.apply_to(&mut decision, &incident);
    let reset = decision
        .actions
        .contains(&lifecycle::Action::ResetAgentResults);
    let owned = status_diff::owned_status_fields(incident.metadata.managed_fields.as_deref());
    // Already applied on the way when a pod was created (agentPod before the pod, see `execute`).
    let changed = !status_applied
        && (reset
            || status_diff::needs_apply(
                incident.status.as_ref(),
                &decision.status,
                owned.as_ref(),
            ));
    let entry = QueueEntry::of(&incident);
    let waits = matches!(admission, Admission::Waiting { .. }) && decision.actions.is_empty();
    if let (true, true, Some(resource_version)) =
        (waits, changed, incident.metadata.resource_version.clone())
    {
        // Waiting: the status (and its Queued event) goes to the batched writer, behind admissions.
        ctx.queued_writes.submit(
            entry,
            PendingStatus {
                resource_version,
                status: decision.status.clone(),
                events: decision.events.clone(),
                regarding: incident.object_ref(&()),
            },
        );
        record_transition(ctx, previous_phase, &decision, now);
        return Ok(requeue_after(&decision));
    }
    if !waits {
        ctx.queued_writes.cancel(&entry);
    }
    if changed {
        apply::apply_status(&incidents, &name, &decision.status).await?;
    }

    // Counted before the Events go out: a reader who sees the new phase should find it counted
    // too, and publishing Events is an API round trip each.
    record_transition(ctx, previous_phase, &decision, now);
    record_spend(ctx, &incident, previous_phase, &decision);
    let regarding = incident.object_ref(&());
    for event in &decision.events {
        ctx.events.publish(event, &regarding).await;
    }
    Ok(requeue_after(&decision))
}

/// What the approvals said to this reconcile.
#[derive(Default)]
struct ApprovalObservation {
    /// Just recorded in `status.approval`: its Event goes out with this reconcile's.
    recorded: Option<crate::plan::ApprovalRecord>,
    ignored: Vec<crate::approval::decide::IgnoredApproval>,
}

impl ApprovalObservation {
    fn apply_to(&self, decision: &mut Decision, incident: &Incident) {
        if let Some(record) = &self.recorded {
            decision
                .events
                .insert(0, super::approval_stage::approval_event(record));
        }
        let current_message = incident.status.as_ref().and_then(|s| s.message.as_deref());
        super::approval_stage::note_ignored(decision, &self.ignored, current_message);
    }
}

/// While a plan waits (or has just expired), reads the approvals naming this Incident; a valid
/// one is recorded in the in-memory status so the decision acts on it.
fn observe_approvals(
    incident: &mut Incident,
    namespace: &str,
    name: &str,
    ctx: &Context,
    now: Timestamp,
) -> ApprovalObservation {
    let Some(status) = incident.status.as_mut() else {
        return ApprovalObservation::default();
    };
    let open = status.phase == Some(Phase::AwaitingApproval)
        || status.outcome == Some(crate::incident::Outcome::ApprovalExpired);
    let Some(plan) = status
        .plan
        .as_ref()
        .filter(|_| open && status.approval.is_none())
    else {
        return ApprovalObservation::default();
    };
    let approvals = ctx.approvals.for_incident(namespace, name);
    match crate::approval::decide::decide(name, plan, &approvals, now) {
        crate::approval::decide::Verdict::Decided(record)
            if status.phase == Some(Phase::AwaitingApproval) =>
        {
            status.approval = Some(Box::new(record.clone()));
            ApprovalObservation {
                recorded: Some(record),
                ignored: Vec::new(),
            }
        }
        // In time, but seen only after the Incident completed (a controller restart over the
        // expiry): too late to act on; said so rather than dropped.
        crate::approval::decide::Verdict::Decided(record) => ApprovalObservation {
            recorded: None,
            ignored: vec![crate::approval::decide::IgnoredApproval {
                name: record.name,
                because: crate::approval::decide::IgnoredBecause::AfterExpiry,
            }],
        },
        crate::approval::decide::Verdict::Waiting { ignored }
        | crate::approval::decide::Verdict::Expired { ignored } => ApprovalObservation {
            recorded: None,
            ignored,
        },
    }
}

/// When to look at the Incident again after `decision`.
fn requeue_after(decision: &Decision) -> Action {
    Action::requeue(decision.requeue_after.unwrap_or(RESYNC).min(RESYNC))
}

/// Whether some agent pod has finished while the Incident is not, or the status names an agent pod
/// that neither the cache nor this process's creates show: then its status must be read fresh, not
/// from the cache. The second case is a status applied before a pod create the API server then
/// refused (a missing ServiceAccount): the cache may show it before the status that replaced it,
/// and deciding from it would count the never-created pod as deleted.
fn needs_fresh_read(incident: &Incident, pods: &[Pod]) -> bool {
    let status = incident.status.as_ref();
    if status.and_then(|s| s.phase).is_some_and(Phase::is_finished) {
        return false;
    }
    let named_but_absent = status
        .and_then(|s| s.agent_pod.as_deref())
        .is_some_and(|named| !pods.iter().any(|pod| pod.name_any() == named));
    named_but_absent
        || pods
            .iter()
            .any(|pod| !view_agent_pod(pod).state.is_active())
}

/// Carries out the decision's actions, in order (a pod create is preceded by its claim, see
/// [`pod_claim`]).
async fn execute(
    decision: &Decision,
    incident: &Incident,
    incidents: &Api<DeserializeGuard<Incident>>,
    pods: &Api<Pod>,
    ctx: &Context,
) -> Result<(), Error> {
    let name = incident.name_any();
    for action in &decision.actions {
        match action {
            lifecycle::Action::RecordRerun { value } => {
                apply::record_rerun(incidents, &name, value).await?;
            }
            lifecycle::Action::ResetAgentResults => {
                apply::reset_run_results(incidents, &name, &decision.status).await?;
            }
            lifecycle::Action::DeletePod { name: pod } => {
                apply::delete_pod(pods, pod).await?;
                tracing::info!(pod = %pod, "deleted agent pod");
            }
            lifecycle::Action::CreatePod { attempt } => {
                // `status.agentPod` must name the pod before the pod exists: the chart's
                // admission policy lets an agent write only the Incident whose agentPod is its
                // own pod, and the agent's first progress patch can come within a second.
                apply::apply_status(incidents, &name, &pod_claim(incident, decision)).await?;
                let mut pod =
                    build_agent_pod(incident, *attempt, &ctx.pod_config).map_err(|source| {
                        Error::BuildPod {
                            name: name.clone(),
                            source,
                        }
                    })?;
                crate::budget::pod_env::hand_prices_to_agent(&mut pod, &ctx.policy.prices);
                let created = apply::create_agent_pod(pods, &pod).await?;
                tracing::info!(pod = %created.name_any(), attempt, "created agent pod");
                ctx.view.remember_created(created);
                ctx.metrics.agent_pods_created.inc();
            }
        }
    }
    Ok(())
}

/// The status to apply before creating the agent pod: the decision's, naming the new pod, but
/// with the phase, conditions, message and attempt count the Incident has now. Were the pod
/// refused, a reconcile reading this intermediate status must see an Incident still waiting to
/// start (and try again), not a Running one whose pod vanished.
fn pod_claim(incident: &Incident, decision: &Decision) -> crate::incident::IncidentStatus {
    let current = incident.status.clone().unwrap_or_default();
    crate::incident::IncidentStatus {
        phase: current.phase,
        conditions: current.conditions,
        message: current.message,
        attempts: current.attempts,
        start_time: current.start_time,
        ..decision.status.clone()
    }
}

/// Metrics and queue wakeups that follow from a phase change.
fn record_transition(ctx: &Context, previous: Option<Phase>, decision: &Decision, now: Timestamp) {
    let phase = decision.status.phase;
    if let Some(reason) = decision.agent_failure {
        ctx.metrics.count_agent_failure(reason);
    }
    if let Some(phase) = phase.filter(|p| p.is_finished())
        && !previous.is_some_and(Phase::is_finished)
    {
        ctx.metrics.count_finished(
            phase,
            decision.status.outcome,
            decision.status.usage.as_deref(),
        );
    }
    if previous == Some(Phase::Running) && phase != Some(Phase::Running) {
        // A slot is free: the head of the queue may start now (at most `max_agents` of them can).
        let head = ctx.view.head(ctx.max_agents, now, &ctx.policy);
        ctx.wakeup.notify(&head);
    }
}

/// Counts a newly finished session's tokens and dollars by model and namespace.
fn record_spend(ctx: &Context, incident: &Incident, previous: Option<Phase>, decision: &Decision) {
    let newly_finished = decision.status.phase.is_some_and(Phase::is_finished)
        && !previous.is_some_and(Phase::is_finished);
    let Some(usage) = decision.status.usage.as_ref().filter(|_| newly_finished) else {
        return;
    };
    let model = incident
        .spec
        .agent
        .as_ref()
        .and_then(|agent| agent.model.as_deref())
        .unwrap_or(&ctx.pod_config.defaults.model);
    let mut usage = **usage;
    if usage.cost_usd.is_none() {
        usage.cost_usd = ctx.policy.prices.cost(model, &usage);
    }
    ctx.metrics
        .spend
        .count_session(model, &incident.namespace().unwrap_or_default(), &usage);
}

/// The reason of the Incident's `Ready` condition, if any.
fn reason_of_ready(incident: &Incident) -> Option<&str> {
    incident
        .status
        .as_ref()
        .and_then(|status| conditions::reason_of(&status.conditions, conditions::TYPE_READY))
}

/// An Incident our types cannot read: mark it Failed with the reason (once), raise an event, and
/// wait for it to change.
async fn reconcile_invalid(
    object: &DeserializeGuard<Incident>,
    invalid: &InvalidObject,
    ctx: &Context,
) -> Result<Action, Error> {
    let name = object.name_any();
    let namespace = object
        .namespace()
        .ok_or(Error::MissingMetadata("namespace"))?;
    let message = truncate_start(&invalid.error, INVALID_MESSAGE_MAX_BYTES);
    let generation = object.meta().generation;

    // Our types cannot read it, so read the status as plain JSON to keep condition times.
    let raw: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        &namespace,
        &ApiResource::erase::<Incident>(&()),
    );
    let current = raw.get(&name).await.map_err(|source| Error::GetIncident {
        name: name.clone(),
        source,
    })?;
    let current_status = current
        .data
        .get("status")
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    let previous_conditions: Vec<Condition> = current_status
        .get("conditions")
        .cloned()
        .and_then(|c| serde_json::from_value(c).ok())
        .unwrap_or_default();

    let desired = invalid_status(&message, generation, &previous_conditions, now_seconds());
    let unchanged = desired
        .as_object()
        .is_some_and(|fields| fields.iter().all(|(k, v)| current_status.get(k) == Some(v)));
    if !unchanged {
        let incidents: Api<DeserializeGuard<Incident>> =
            Api::namespaced(ctx.client.clone(), &namespace);
        apply::apply_status_value(&incidents, &name, desired).await?;
        let event = IncidentEvent::warning(
            events::REASON_INVALID_SPEC,
            format!("the Incident does not match the schema: {message}"),
        );
        ctx.events.publish(&event, &object.object_ref(&())).await;
    }
    Err(Error::InvalidSpec { name, message })
}

/// The controller's status for an Incident it cannot read.
fn invalid_status(
    message: &str,
    generation: Option<i64>,
    previous: &[Condition],
    now: Timestamp,
) -> serde_json::Value {
    let summary = StateSummary {
        ready: false,
        agent_running: false,
        failed: true,
        reason: conditions::REASON_INVALID_SPEC,
        message: format!("the Incident does not match the schema: {message}"),
    };
    let status = IncidentStatus {
        phase: Some(Phase::Failed),
        conditions: conditions_for(&summary, previous, generation, now),
        observed_generation: generation,
        message: Some(summary.message.clone()),
        ..IncidentStatus::default()
    };
    serde_json::to_value(&status).unwrap_or_else(|_| json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::pod::tests::incident;
    use crate::controller::pod_state::tests::pod;

    #[test]
    fn fresh_read_only_when_a_pod_finished_before_the_incident() {
        let running = incident("x");
        assert!(!needs_fresh_read(&running, &[pod(1, "Running")]));
        assert!(needs_fresh_read(&running, &[pod(1, "Succeeded")]));
        let mut done = incident("x");
        done.status = Some(IncidentStatus {
            phase: Some(Phase::Completed),
            ..IncidentStatus::default()
        });
        assert!(!needs_fresh_read(&done, &[pod(1, "Succeeded")]));
    }

    #[test]
    fn fresh_read_when_the_status_names_a_pod_nobody_shows() {
        let running = pod(1, "Running");
        let mut named = incident("x");
        named.status = Some(IncidentStatus {
            phase: Some(Phase::Running),
            agent_pod: Some(running.name_any()),
            ..IncidentStatus::default()
        });
        assert!(!needs_fresh_read(&named, std::slice::from_ref(&running)));
        // Applied before a create the API server refused: no such pod anywhere.
        assert!(needs_fresh_read(&named, &[]));
    }

    #[test]
    fn invalid_status_is_stable_for_the_same_error() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:05:00Z".parse().unwrap();
        let first = invalid_status("unknown variant `urgent`", Some(2), &[], t0);
        assert_eq!(first["phase"], "Failed");
        assert_eq!(first["observedGeneration"], 2);
        let conditions: Vec<Condition> =
            serde_json::from_value(first["conditions"].clone()).unwrap();
        let failed = conditions.iter().find(|c| c.type_ == "Failed").unwrap();
        assert_eq!(failed.reason, "InvalidSpec");
        assert_eq!(failed.status, "True");
        // Same error later: identical status, so no write and no new event.
        let again = invalid_status("unknown variant `urgent`", Some(2), &conditions, t1);
        assert_eq!(first, again);
    }
}

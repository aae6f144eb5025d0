//! Observe step: what an agent pod's status says about its attempt, as a small enum the lifecycle
//! logic can match on instead of digging through `PodStatus` itself.
//!
//! Pure; the failure reasons are the PascalCase strings that end up in the Incident's conditions,
//! events and the `agent_failures_total` metric.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use kube::ResourceExt;

use super::keys;
use super::text::truncate_end;
use crate::incident::AgentTermination;

/// The agent process exited with a non-zero code.
pub const FAILURE_AGENT_ERROR: &str = "AgentError";
/// The kernel killed the agent for exceeding its memory limit.
pub const FAILURE_OOM_KILLED: &str = "OOMKilled";
/// The pod ran past `activeDeadlineSeconds` (session timeout plus grace).
pub const FAILURE_DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
/// The node evicted the pod (pressure, drain).
pub const FAILURE_EVICTED: &str = "Evicted";
/// The pod disappeared (someone deleted it) before it finished.
pub const FAILURE_POD_DELETED: &str = "PodDeleted";
/// The pod failed for a reason Kubernetes did not name.
pub const FAILURE_POD_FAILED: &str = "PodFailed";

/// Most bytes of a failure message kept from the pod (the tail of the agent's log, usually).
const FAILURE_MESSAGE_MAX_BYTES: usize = 512;

/// One agent pod, reduced to what the lifecycle needs.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentPodView {
    pub name: String,
    /// From the attempt label; `None` for a pod someone relabelled by hand (then ignored).
    pub attempt: Option<u32>,
    pub created_at: Option<Timestamp>,
    pub state: AgentPodState,
}

/// Where an agent pod is in its life.
#[derive(Clone, Debug, PartialEq)]
pub enum AgentPodState {
    /// Accepted but the agent has not started: scheduling, pulling, or stuck (`waiting` says why,
    /// e.g. `CreateContainerConfigError: secret "anthropic" not found`).
    Pending { waiting: Option<String> },
    /// The agent process is running.
    Running,
    /// Deletion was requested before the pod finished; it still holds its resources.
    Terminating,
    /// The agent exited 0.
    Succeeded {
        finished_at: Option<Timestamp>,
        termination: Option<AgentTermination>,
    },
    /// The attempt failed; `reason` is one of the `FAILURE_*` constants.
    Failed {
        reason: &'static str,
        message: String,
        finished_at: Option<Timestamp>,
        termination: Option<AgentTermination>,
    },
}

impl AgentPodState {
    /// Whether the pod still occupies an agent slot (anything but a finished pod).
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            AgentPodState::Pending { .. } | AgentPodState::Running | AgentPodState::Terminating
        )
    }

    /// When the pod finished, if it did and the kubelet said when.
    pub fn finished_at(&self) -> Option<Timestamp> {
        match self {
            AgentPodState::Succeeded { finished_at, .. }
            | AgentPodState::Failed { finished_at, .. } => *finished_at,
            _ => None,
        }
    }
}

/// Reads one agent pod.
pub fn view_agent_pod(pod: &Pod) -> AgentPodView {
    AgentPodView {
        name: pod.name_any(),
        attempt: pod
            .labels()
            .get(keys::LABEL_ATTEMPT)
            .and_then(|value| value.parse().ok()),
        created_at: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
        state: agent_pod_state(pod),
    }
}

fn agent_pod_state(pod: &Pod) -> AgentPodState {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
    let container = status
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|all| all.iter().find(|c| c.name == keys::AGENT_CONTAINER));
    let terminated = container
        .and_then(|c| c.state.as_ref())
        .and_then(|state| state.terminated.as_ref());
    let termination = terminated.and_then(parse_termination);
    let finished_at = terminated
        .and_then(|t| t.finished_at.as_ref())
        .map(|t| t.0)
        .or_else(|| pod_condition_time(pod));

    match phase {
        "Succeeded" => AgentPodState::Succeeded {
            finished_at,
            termination,
        },
        "Failed" => {
            let (reason, message) = failure_of(pod, terminated, termination.as_ref());
            AgentPodState::Failed {
                reason,
                message,
                finished_at,
                termination,
            }
        }
        _ if pod.metadata.deletion_timestamp.is_some() => AgentPodState::Terminating,
        "Running" => AgentPodState::Running,
        _ => AgentPodState::Pending {
            waiting: container
                .and_then(|c| c.state.as_ref())
                .and_then(|state| state.waiting.as_ref())
                .and_then(|waiting| {
                    let reason = waiting.reason.as_deref()?;
                    Some(match waiting.message.as_deref() {
                        Some(message) if !message.is_empty() => format!("{reason}: {message}"),
                        _ => reason.to_string(),
                    })
                }),
        },
    }
}

/// The agent's termination message, when it is the JSON the agent writes (with
/// `FallbackToLogsOnError` it may be the tail of the log instead).
fn parse_termination(terminated: &ContainerStateTerminated) -> Option<AgentTermination> {
    serde_json::from_str(terminated.message.as_deref()?.trim()).ok()
}

fn failure_of(
    pod: &Pod,
    terminated: Option<&ContainerStateTerminated>,
    termination: Option<&AgentTermination>,
) -> (&'static str, String) {
    let status = pod.status.as_ref();
    let pod_reason = status.and_then(|s| s.reason.as_deref());
    let pod_message = status
        .and_then(|s| s.message.clone())
        .filter(|m| !m.is_empty());
    match pod_reason {
        Some("DeadlineExceeded") => {
            let deadline = pod
                .spec
                .as_ref()
                .and_then(|spec| spec.active_deadline_seconds)
                .map(|secs| format!(" of {secs}s"))
                .unwrap_or_default();
            return (
                FAILURE_DEADLINE_EXCEEDED,
                format!("the agent pod ran past its deadline{deadline}"),
            );
        }
        Some("Evicted") => {
            return (
                FAILURE_EVICTED,
                pod_message.unwrap_or_else(|| "the agent pod was evicted".to_string()),
            );
        }
        _ => {}
    }
    let Some(terminated) = terminated else {
        return (
            FAILURE_POD_FAILED,
            pod_message.unwrap_or_else(|| "the agent pod failed".to_string()),
        );
    };
    if terminated.reason.as_deref() == Some("OOMKilled") {
        return (
            FAILURE_OOM_KILLED,
            "the agent ran out of memory (OOMKilled); raise --agent-memory-limit".to_string(),
        );
    }
    // Prefer what the agent said about itself; else whatever the kubelet kept of its log.
    let detail = termination
        .and_then(|t| t.message.clone())
        .or_else(|| terminated.message.clone())
        .map(|text| truncate_end(text.trim(), FAILURE_MESSAGE_MAX_BYTES))
        .filter(|text| !text.is_empty());
    let message = match detail {
        Some(detail) => format!(
            "the agent exited with code {}: {detail}",
            terminated.exit_code
        ),
        None => format!("the agent exited with code {}", terminated.exit_code),
    };
    (FAILURE_AGENT_ERROR, message)
}

/// Fallback finish time: the latest transition among the pod's conditions.
fn pod_condition_time(pod: &Pod) -> Option<Timestamp> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .filter_map(|c| c.last_transition_time.as_ref().map(|t| t.0))
        .max()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateWaiting, ContainerStatus, PodSpec, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use std::collections::BTreeMap;

    use crate::incident::Outcome;

    /// An agent pod for `attempt` of incident `x` in phase `phase`.
    pub(crate) fn pod(attempt: u32, phase: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(format!("x-agent-{attempt}")),
                namespace: Some("shop".to_string()),
                labels: Some(BTreeMap::from([
                    (keys::LABEL_ATTEMPT.to_string(), attempt.to_string()),
                    (
                        keys::LABEL_RUN.to_string(),
                        crate::controller::rerun::INITIAL_RUN.to_string(),
                    ),
                ])),
                creation_timestamp: Some(Time("2026-01-01T00:00:00Z".parse().unwrap())),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                active_deadline_seconds: Some(960),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.to_string()),
                ..PodStatus::default()
            }),
        }
    }

    /// `pod` with its agent container terminated.
    pub(crate) fn terminated(
        mut pod: Pod,
        exit_code: i32,
        reason: Option<&str>,
        message: Option<&str>,
        finished_at: &str,
    ) -> Pod {
        let status = pod.status.get_or_insert_with(PodStatus::default);
        status.container_statuses = Some(vec![ContainerStatus {
            name: keys::AGENT_CONTAINER.to_string(),
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code,
                    reason: reason.map(str::to_string),
                    message: message.map(str::to_string),
                    finished_at: Some(Time(finished_at.parse().unwrap())),
                    ..ContainerStateTerminated::default()
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }]);
        pod
    }

    #[test]
    fn pending_pod_reports_why_it_waits() {
        let mut pending = pod(1, "Pending");
        pending.status.as_mut().unwrap().container_statuses = Some(vec![ContainerStatus {
            name: keys::AGENT_CONTAINER.to_string(),
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some("CreateContainerConfigError".to_string()),
                    message: Some("secret \"anthropic\" not found".to_string()),
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }]);
        let view = view_agent_pod(&pending);
        assert_eq!(view.attempt, Some(1));
        assert_eq!(
            view.state,
            AgentPodState::Pending {
                waiting: Some(
                    "CreateContainerConfigError: secret \"anthropic\" not found".to_string()
                )
            }
        );
        assert!(view.state.is_active());
    }

    #[test]
    fn pod_without_status_is_pending() {
        let mut fresh = pod(3, "Pending");
        fresh.status = None;
        assert_eq!(
            view_agent_pod(&fresh).state,
            AgentPodState::Pending { waiting: None }
        );
    }

    #[test]
    fn running_pod_being_deleted_is_terminating() {
        let mut running = pod(1, "Running");
        assert_eq!(view_agent_pod(&running).state, AgentPodState::Running);
        running.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        assert_eq!(view_agent_pod(&running).state, AgentPodState::Terminating);
        assert!(view_agent_pod(&running).state.is_active());
    }

    #[test]
    fn succeeded_pod_carries_the_termination_message() {
        let message = r#"{"sessionId":"s-1","outcome":"reported","summary":"disk full"}"#;
        let done = terminated(
            pod(1, "Succeeded"),
            0,
            Some("Completed"),
            Some(message),
            "2026-01-01T00:05:00Z",
        );
        let AgentPodState::Succeeded {
            finished_at,
            termination,
        } = view_agent_pod(&done).state
        else {
            panic!("not succeeded");
        };
        assert_eq!(finished_at, Some("2026-01-01T00:05:00Z".parse().unwrap()));
        let termination = termination.unwrap();
        assert_eq!(termination.session_id, "s-1");
        assert_eq!(termination.outcome, Some(Outcome::Reported));
        assert!(!view_agent_pod(&done).state.is_active());
    }

    fn failure(pod: &Pod) -> (&'static str, String) {
        match view_agent_pod(pod).state {
            AgentPodState::Failed {
                reason, message, ..
            } => (reason, message),
            other => panic!("not failed: {other:?}"),
        }
    }

    #[test]
    fn error_exit_keeps_the_log_tail() {
        let failed = terminated(
            pod(1, "Failed"),
            2,
            Some("Error"),
            Some("starting\nerror: ANTHROPIC_API_KEY is empty\n"),
            "2026-01-01T00:01:00Z",
        );
        let (reason, message) = failure(&failed);
        assert_eq!(reason, FAILURE_AGENT_ERROR);
        assert!(message.contains("code 2"), "{message}");
        assert!(message.ends_with("ANTHROPIC_API_KEY is empty"), "{message}");
    }

    #[test]
    fn oom_deadline_and_eviction_are_named() {
        let oom = terminated(
            pod(1, "Failed"),
            137,
            Some("OOMKilled"),
            None,
            "2026-01-01T00:01:00Z",
        );
        assert_eq!(failure(&oom).0, FAILURE_OOM_KILLED);

        let mut deadline = pod(1, "Failed");
        deadline.status.as_mut().unwrap().reason = Some("DeadlineExceeded".to_string());
        let (reason, message) = failure(&deadline);
        assert_eq!(reason, FAILURE_DEADLINE_EXCEEDED);
        assert!(message.contains("960s"), "{message}");

        let mut evicted = pod(1, "Failed");
        let status = evicted.status.as_mut().unwrap();
        status.reason = Some("Evicted".to_string());
        status.message = Some("The node was low on resource: memory.".to_string());
        assert_eq!(
            failure(&evicted),
            (
                FAILURE_EVICTED,
                "The node was low on resource: memory.".to_string()
            )
        );

        assert_eq!(failure(&pod(1, "Failed")).0, FAILURE_POD_FAILED);
    }

    #[test]
    fn relabelled_pod_has_no_attempt() {
        let mut odd = pod(1, "Running");
        odd.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert(keys::LABEL_ATTEMPT.to_string(), "first".to_string());
        assert_eq!(view_agent_pod(&odd).attempt, None);
    }
}

//! Pod status as a kubelet reports it, built from what the kubelet knows about its one container.
//!
//! Pure: the worker describes the pod in a [`PodReport`] and gets back the body of a JSON merge
//! patch on `pods/status`. Pod conditions keep their `lastTransitionTime` until their status flips
//! ([`TransitionClock`]), and the time is passed in so tests can fix it.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

use super::env::POD_IP;

/// The pod phases a kubelet reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl PodPhase {
    /// The phase as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            PodPhase::Pending => "Pending",
            PodPhase::Running => "Running",
            PodPhase::Succeeded => "Succeeded",
            PodPhase::Failed => "Failed",
        }
    }

    /// Reads `status.phase`; unknown or absent phases count as Pending.
    pub fn parse(phase: Option<&str>) -> PodPhase {
        match phase {
            Some("Running") => PodPhase::Running,
            Some("Succeeded") => PodPhase::Succeeded,
            Some("Failed") => PodPhase::Failed,
            _ => PodPhase::Pending,
        }
    }

    /// Whether the pod will never run again.
    pub fn is_terminal(self) -> bool {
        matches!(self, PodPhase::Succeeded | PodPhase::Failed)
    }
}

/// How a container run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Termination {
    pub exit_code: i32,
    pub signal: Option<i32>,
    /// `Completed`, `Error`, `StartError`, …
    pub reason: String,
    pub message: Option<String>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Timestamp,
    pub container_id: Option<String>,
}

impl Termination {
    /// `Completed` for exit code 0, `Error` otherwise, as container runtimes report it.
    pub fn reason_for(exit_code: i32) -> &'static str {
        if exit_code == 0 { "Completed" } else { "Error" }
    }
}

/// The container's current state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerPhase {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: Timestamp,
        container_id: String,
    },
    Terminated(Termination),
}

/// What the kubelet knows about the container it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerReport {
    pub name: String,
    pub image: String,
    /// `local://<executable>` for a mapped image, empty otherwise.
    pub image_id: String,
    pub state: ContainerPhase,
    pub last_termination: Option<Termination>,
    pub restart_count: i32,
}

/// What the kubelet knows about the pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodReport {
    pub phase: PodPhase,
    /// Pod-level reason, e.g. `DeadlineExceeded`.
    pub reason: Option<String>,
    pub message: Option<String>,
    pub start_time: Timestamp,
    pub container: ContainerReport,
}

/// Remembers when each condition last changed status.
#[derive(Clone, Debug, Default)]
pub struct TransitionClock {
    seen: BTreeMap<&'static str, (bool, Timestamp)>,
}

impl TransitionClock {
    /// The transition time of `condition` now that its status is `status`.
    fn observe(&mut self, condition: &'static str, status: bool, now: Timestamp) -> Timestamp {
        match self.seen.get(condition) {
            Some((previous, since)) if *previous == status => *since,
            _ => {
                self.seen.insert(condition, (status, now));
                now
            }
        }
    }
}

fn time(ts: Timestamp) -> Time {
    Time(ts)
}

fn condition(
    clock: &mut TransitionClock,
    type_: &'static str,
    status: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: Timestamp,
) -> PodCondition {
    PodCondition {
        type_: type_.to_string(),
        status: if status { "True" } else { "False" }.to_string(),
        reason: if status {
            None
        } else {
            reason.map(str::to_string)
        },
        message: if status { None } else { message },
        last_transition_time: Some(time(clock.observe(type_, status, now))),
        last_probe_time: None,
        observed_generation: None,
    }
}

fn container_state(phase: &ContainerPhase) -> ContainerState {
    match phase {
        ContainerPhase::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: message.clone(),
            }),
            ..ContainerState::default()
        },
        ContainerPhase::Running { started_at, .. } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(time(*started_at)),
            }),
            ..ContainerState::default()
        },
        ContainerPhase::Terminated(t) => terminated_state(t),
    }
}

fn terminated_state(t: &Termination) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: t.exit_code,
            signal: t.signal,
            reason: Some(t.reason.clone()),
            message: t.message.clone(),
            started_at: t.started_at.map(time),
            finished_at: Some(time(t.finished_at)),
            container_id: t.container_id.clone(),
        }),
        ..ContainerState::default()
    }
}

/// The body of a JSON merge patch on `pods/status` that sets the whole kubelet-owned status.
/// Pod-level `reason` and `message` are explicit nulls when unset, so an earlier value is cleared.
pub fn status_patch(report: &PodReport, clock: &mut TransitionClock, now: Timestamp) -> Value {
    let c = &report.container;
    let running = matches!(c.state, ContainerPhase::Running { .. });
    let (not_ready_reason, not_ready_message) = if report.phase.is_terminal() {
        ("PodCompleted", None)
    } else {
        (
            "ContainersNotReady",
            Some(format!("containers with unready status: [{}]", c.name)),
        )
    };
    let conditions = vec![
        condition(clock, "PodReadyToStartContainers", true, None, None, now),
        condition(clock, "Initialized", true, None, None, now),
        condition(
            clock,
            "Ready",
            running,
            Some(not_ready_reason),
            not_ready_message.clone(),
            now,
        ),
        condition(
            clock,
            "ContainersReady",
            running,
            Some(not_ready_reason),
            not_ready_message,
            now,
        ),
        condition(clock, "PodScheduled", true, None, None, now),
    ];
    let container_id = match &c.state {
        ContainerPhase::Running { container_id, .. } => Some(container_id.clone()),
        ContainerPhase::Terminated(t) => t.container_id.clone(),
        ContainerPhase::Waiting { .. } => None,
    };
    let container_status = ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: c.image_id.clone(),
        container_id,
        ready: running,
        started: Some(running),
        restart_count: c.restart_count,
        state: Some(container_state(&c.state)),
        last_state: Some(
            c.last_termination
                .as_ref()
                .map(terminated_state)
                .unwrap_or_default(),
        ),
        ..ContainerStatus::default()
    };
    let status = PodStatus {
        phase: Some(report.phase.as_str().to_string()),
        conditions: Some(conditions),
        host_ip: Some(POD_IP.to_string()),
        host_ips: Some(vec![HostIP {
            ip: POD_IP.to_string(),
        }]),
        pod_ip: Some(POD_IP.to_string()),
        pod_ips: Some(vec![PodIP {
            ip: POD_IP.to_string(),
        }]),
        start_time: Some(time(report.start_time)),
        container_statuses: Some(vec![container_status]),
        qos_class: None,
        ..PodStatus::default()
    };
    let mut status = serde_json::to_value(status).unwrap_or_else(|_| json!({}));
    if let Value::Object(fields) = &mut status {
        fields.insert(
            "reason".into(),
            report.reason.clone().map_or(Value::Null, Value::String),
        );
        fields.insert(
            "message".into(),
            report.message.clone().map_or(Value::Null, Value::String),
        );
    }
    json!({ "status": status })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(state: ContainerPhase, phase: PodPhase) -> PodReport {
        PodReport {
            phase,
            reason: None,
            message: None,
            start_time: Timestamp::UNIX_EPOCH,
            container: ContainerReport {
                name: "main".into(),
                image: "busybox".into(),
                image_id: "local:///bin/sh".into(),
                state,
                last_termination: None,
                restart_count: 0,
            },
        }
    }

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn condition_of<'a>(patch: &'a Value, type_: &str) -> &'a Value {
        patch["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == type_)
            .unwrap()
    }

    #[test]
    fn running_is_ready_and_keeps_transition_times() {
        let mut clock = TransitionClock::default();
        let running = report(
            ContainerPhase::Running {
                started_at: ts(10),
                container_id: "process://42".into(),
            },
            PodPhase::Running,
        );
        let first = status_patch(&running, &mut clock, ts(10));
        assert_eq!(first["status"]["phase"], "Running");
        assert_eq!(first["status"]["podIP"], "127.0.0.1");
        assert_eq!(first["status"]["reason"], Value::Null);
        assert_eq!(condition_of(&first, "Ready")["status"], "True");
        let cs = &first["status"]["containerStatuses"][0];
        assert_eq!(cs["ready"], true);
        assert_eq!(cs["containerID"], "process://42");
        assert!(cs["state"]["running"]["startedAt"].is_string());

        let again = status_patch(&running, &mut clock, ts(99));
        assert_eq!(
            condition_of(&again, "Ready")["lastTransitionTime"],
            condition_of(&first, "Ready")["lastTransitionTime"]
        );
    }

    #[test]
    fn failed_container_reports_exit_code_and_not_ready() {
        let mut clock = TransitionClock::default();
        let mut failed = report(
            ContainerPhase::Terminated(Termination {
                exit_code: 3,
                signal: None,
                reason: Termination::reason_for(3).into(),
                message: Some("boom".into()),
                started_at: Some(ts(1)),
                finished_at: ts(2),
                container_id: Some("process://7".into()),
            }),
            PodPhase::Failed,
        );
        failed.reason = Some("DeadlineExceeded".into());
        let patch = status_patch(&failed, &mut clock, ts(3));
        assert_eq!(patch["status"]["phase"], "Failed");
        assert_eq!(patch["status"]["reason"], "DeadlineExceeded");
        let terminated = &patch["status"]["containerStatuses"][0]["state"]["terminated"];
        assert_eq!(terminated["exitCode"], 3);
        assert_eq!(terminated["reason"], "Error");
        assert_eq!(terminated["message"], "boom");
        let ready = condition_of(&patch, "Ready");
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["reason"], "PodCompleted");
    }

    #[test]
    fn waiting_container_has_reason_and_message() {
        let mut clock = TransitionClock::default();
        let waiting = report(
            ContainerPhase::Waiting {
                reason: "ImageNotMapped".into(),
                message: Some("image x".into()),
            },
            PodPhase::Pending,
        );
        let patch = status_patch(&waiting, &mut clock, ts(1));
        assert_eq!(patch["status"]["phase"], "Pending");
        let state = &patch["status"]["containerStatuses"][0]["state"]["waiting"];
        assert_eq!(state["reason"], "ImageNotMapped");
        assert_eq!(state["message"], "image x");
        assert_eq!(
            condition_of(&patch, "ContainersReady")["message"],
            "containers with unready status: [main]"
        );
    }
}

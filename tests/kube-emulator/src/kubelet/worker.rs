//! The life of one pod on this node, from bound to removed:
//!
//! prepare (retried while the spec or its Secrets/ConfigMaps are not usable; the container shows a
//! waiting reason) → run the process group → on exit apply `restartPolicy` → report the terminal
//! phase → wait for the pod's deletion and remove it with a final `gracePeriodSeconds=0` delete, as
//! the real kubelet does.
//!
//! At any point: a deletion request TERMs the group and KILLs it after the grace period;
//! `activeDeadlineSeconds` (counted from `status.startTime`) ends the pod as Failed with reason
//! `DeadlineExceeded`; the pod disappearing from the API kills the group at once; the kubelet
//! stopping kills the group without touching the API.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, Client};
use nix::sys::signal::Signal;
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::KubeletConfig;
use super::credentials;
use super::launch::{self, Launch, LaunchContext, LaunchError};
use super::layout::PodLayout;
use super::log_server::{ContainerLogState, LogHandle, LogRegistry};
use super::logs;
use super::process::{self, ExitInfo, GroupRegistry, RunningProcess};
use super::status::{
    ContainerPhase, ContainerReport, PodPhase, PodReport, Termination, TransitionClock,
    status_patch,
};
use super::volumes;

/// How long to wait before preparing a pod again after a problem.
const PREPARE_RETRY: Duration = Duration::from_secs(1);
/// First restart back-off; doubles per restart up to [`MAX_RESTART_BACKOFF`]. Shorter than the real
/// kubelet's 10 s → 5 min because this kubelet runs tests.
const FIRST_RESTART_BACKOFF: Duration = Duration::from_secs(1);
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(60);
/// Grace period when the pod sets none, as in Kubernetes.
const DEFAULT_GRACE_SECONDS: i64 = 30;
/// How long `ProcessKubelet::stop` lets a process react to SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// Attempts for one status write before the worker moves on.
const STATUS_WRITE_ATTEMPTS: u32 = 3;
const DEADLINE_MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// What every pod worker shares.
pub struct WorkerContext {
    pub client: Client,
    pub config: Arc<KubeletConfig>,
    pub registry: GroupRegistry,
    pub logs: LogRegistry,
    pub cancel: CancellationToken,
}

/// Why a worker woke up while waiting.
enum Wake {
    /// The retry or back-off timer fired.
    Timer,
    /// The pod object changed (nothing the worker must act on by itself).
    Changed,
    /// The pod got a deletion timestamp; the value is its grace period.
    Deleting(Duration),
    /// The pod is gone from the API server.
    Gone,
    /// `activeDeadlineSeconds` passed.
    DeadlineExceeded,
    /// The kubelet is stopping.
    Stopping,
}

/// Runs one pod until it is removed or the kubelet stops. `pod_rx` carries the latest object from
/// the kubelet's watch; `None` means the pod was deleted from the API server.
pub async fn run_pod(ctx: Arc<WorkerContext>, pod_rx: watch::Receiver<Option<Pod>>) {
    let Some(pod) = pod_rx.borrow().clone() else {
        return;
    };
    let mut worker = PodWorker::new(ctx, pod_rx, &pod);
    info!(pod = %worker.key(), "pod worker started");
    worker.run(&pod).await;
    info!(pod = %worker.key(), "pod worker done");
}

struct PodWorker {
    ctx: Arc<WorkerContext>,
    pod_rx: watch::Receiver<Option<Pod>>,
    api: Api<Pod>,
    name: String,
    namespace: String,
    uid: String,
    layout: PodLayout,
    clock: TransitionClock,
    report: PodReport,
    last_written: Option<Value>,
    log: LogHandle,
}

impl PodWorker {
    fn new(ctx: Arc<WorkerContext>, pod_rx: watch::Receiver<Option<Pod>>, pod: &Pod) -> PodWorker {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let container = launch::first_container(pod);
        let start_time = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map_or_else(Timestamp::now, |t| t.0);
        let report = PodReport {
            phase: PodPhase::Pending,
            reason: None,
            message: None,
            start_time,
            container: ContainerReport {
                name: container.map(|c| c.name.clone()).unwrap_or_default(),
                image: container.and_then(|c| c.image.clone()).unwrap_or_default(),
                image_id: String::new(),
                state: ContainerPhase::Waiting {
                    reason: "ContainerCreating".into(),
                    message: None,
                },
                last_termination: None,
                restart_count: 0,
            },
        };
        let layout = PodLayout::new(&ctx.config.work_dir, &uid);
        let container_name = report.container.name.clone();
        let log = ctx.logs.register(
            &namespace,
            &name,
            &container_name,
            layout.log_file(&container_name),
            layout.previous_log_file(&container_name),
        );
        PodWorker {
            api: Api::namespaced(ctx.client.clone(), &namespace),
            layout,
            log,
            ctx,
            pod_rx,
            name,
            namespace,
            uid,
            clock: TransitionClock::default(),
            report,
            last_written: None,
        }
    }

    fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    async fn run(&mut self, pod: &Pod) {
        let phase = PodPhase::parse(pod.status.as_ref().and_then(|s| s.phase.as_deref()));
        if phase.is_terminal() {
            // Already finished (before this kubelet started): only the removal is left.
            self.await_removal().await;
            return;
        }
        let launch = match self.prepare().await {
            Ok(launch) => launch,
            Err(end) => {
                self.finish(end).await;
                return;
            }
        };
        let end = self.run_container(launch).await;
        self.finish(end).await;
    }

    /// Prepares the launch, reporting waiting reasons and retrying until it works or the pod ends.
    async fn prepare(&mut self) -> Result<Launch, Ending> {
        loop {
            if let Some(end) = self.ending_now() {
                return Err(end);
            }
            let Some(pod) = self.pod_rx.borrow().clone() else {
                return Err(Ending::Gone);
            };
            let config = &self.ctx.config;
            let ctx = LaunchContext {
                client: &self.ctx.client,
                images: &config.images,
                work_dir: &config.work_dir,
                api_server_url: &config.api_server_url,
                api_server_ca_pem: config.api_server_ca_pem.as_deref(),
            };
            let (reason, message) = match launch::prepare(ctx, &self.layout, &pod).await {
                Ok(launch) => return Ok(launch),
                Err(LaunchError::Config(problem)) => {
                    (problem.reason().to_string(), problem.to_string())
                }
                Err(other) => {
                    let message = launch::error_chain(&other);
                    warn!(pod = %self.key(), error = %message, "preparing pod failed");
                    ("ContainerCreating".to_string(), message)
                }
            };
            self.log.set(ContainerLogState::Waiting(reason.clone()));
            self.report.container.state = ContainerPhase::Waiting {
                reason,
                message: Some(message),
            };
            self.write_status().await;
            match self.wait(Some(PREPARE_RETRY)).await {
                Wake::Timer | Wake::Changed => {}
                other => return Err(Ending::from_wake(other)),
            }
        }
    }

    /// Runs the container, restarting it as `restartPolicy` says, until the pod ends.
    async fn run_container(&mut self, mut launch: Launch) -> Ending {
        self.report.container.image_id = launch.image_id.clone();
        loop {
            if self.report.container.restart_count > 0 {
                self.rotate_log(&launch);
            }
            let started_at = Timestamp::now();
            let termination = match process::spawn(&launch.process, &self.ctx.registry) {
                Ok(running) => {
                    let container_id = format!("process://{}", running.pid());
                    self.report.phase = PodPhase::Running;
                    self.report.container.state = ContainerPhase::Running {
                        started_at,
                        container_id: container_id.clone(),
                    };
                    self.log.set(ContainerLogState::Running);
                    self.write_status().await;
                    info!(pod = %self.key(), pid = running.pid(), "container started");
                    let supervised = self
                        .supervise(running, &mut launch, started_at, container_id)
                        .await;
                    self.log.set(ContainerLogState::Terminated);
                    match supervised {
                        Supervised::Exited(termination) => termination,
                        Supervised::Ended(end, termination) => {
                            self.report.container.state = ContainerPhase::Terminated(termination);
                            return end;
                        }
                    }
                }
                Err(error) => Termination {
                    exit_code: 128,
                    signal: None,
                    reason: "StartError".into(),
                    message: Some(launch::error_chain(&error)),
                    started_at: None,
                    finished_at: Timestamp::now(),
                    container_id: None,
                },
            };
            info!(pod = %self.key(), exit_code = termination.exit_code, "container exited");
            let succeeded = termination.exit_code == 0;
            let restart = match self.restart_policy().as_str() {
                "Always" => true,
                "OnFailure" => !succeeded,
                _ => false,
            };
            if !restart {
                self.report.container.state = ContainerPhase::Terminated(termination);
                self.report.phase = if succeeded {
                    PodPhase::Succeeded
                } else {
                    PodPhase::Failed
                };
                self.write_status().await;
                return Ending::Completed;
            }
            let backoff = restart_backoff(self.report.container.restart_count);
            self.report.container.last_termination = Some(termination);
            self.report.container.restart_count += 1;
            self.report.container.state = ContainerPhase::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: Some(format!(
                    "back-off {}s restarting failed container={} pod={}",
                    backoff.as_secs(),
                    launch.container_name,
                    self.name
                )),
            };
            self.write_status().await;
            loop {
                match self.wait(Some(backoff)).await {
                    Wake::Timer => break,
                    Wake::Changed => continue,
                    other => return Ending::from_wake(other),
                }
            }
        }
    }

    /// Watches a running process until it exits or the pod must end.
    async fn supervise(
        &mut self,
        mut running: RunningProcess,
        launch: &mut Launch,
        started_at: Timestamp,
        container_id: String,
    ) -> Supervised {
        let termination = |exit: ExitInfo, launch: &Launch| {
            let mut message = logs::read_termination_message(&launch.termination_file);
            if message.is_none() && exit.exit_code != 0 && launch.fallback_to_logs {
                message = logs::fallback_message(&launch.process.log_file);
            }
            Termination {
                exit_code: exit.exit_code,
                signal: exit.signal,
                reason: Termination::reason_for(exit.exit_code).into(),
                message,
                started_at: Some(started_at),
                finished_at: Timestamp::now(),
                container_id: Some(container_id.clone()),
            }
        };
        loop {
            let refresh_in = launch.token.as_ref().map(|t| until(t.refresh_at()));
            let wake = tokio::select! {
                exit = running.wait() => {
                    let exit = exit.unwrap_or(ExitInfo { exit_code: 128, signal: None });
                    return Supervised::Exited(termination(exit, launch));
                }
                wake = self.wait(refresh_in) => wake,
            };
            match wake {
                Wake::Changed => {}
                Wake::Timer => self.refresh_token(launch).await,
                Wake::Deleting(grace) => {
                    let exit = stop_group(&mut running, grace).await;
                    return Supervised::Ended(Ending::Deleting, termination(exit, launch));
                }
                Wake::DeadlineExceeded => {
                    let exit = stop_group(&mut running, self.grace_period()).await;
                    return Supervised::Ended(Ending::DeadlineExceeded, termination(exit, launch));
                }
                Wake::Gone => {
                    let exit = stop_group(&mut running, Duration::ZERO).await;
                    return Supervised::Ended(Ending::Gone, termination(exit, launch));
                }
                Wake::Stopping => {
                    let exit = stop_group(&mut running, STOP_GRACE).await;
                    return Supervised::Ended(Ending::Stopping, termination(exit, launch));
                }
            }
        }
    }

    async fn refresh_token(&mut self, launch: &mut Launch) {
        let Some(pod) = self.pod_rx.borrow().clone() else {
            return;
        };
        let facts = super::env::PodFacts::of(&pod);
        match credentials::request_token(&self.ctx.client, &facts).await {
            Ok(token) => {
                let mut result = credentials::write_token(&self.layout.token_file(), &token);
                for (path, mode) in &launch.token_files {
                    result = result.and(volumes::write_file(path, token.token.as_bytes(), *mode));
                }
                if let Err(error) = result {
                    warn!(pod = %self.key(), %error, "writing refreshed token failed");
                }
                launch.token = Some(token);
            }
            Err(error) => {
                warn!(pod = %self.key(), error = %launch::error_chain(&error), "token refresh failed");
                // Try again in a minute rather than spinning.
                if let Some(token) = launch.token.as_mut() {
                    token.issued_at = Timestamp::now();
                    token.expires_at = Timestamp::now()
                        .checked_add(jiff::SignedDuration::from_secs(75))
                        .ok();
                }
            }
        }
    }

    /// Reports how the pod ended and waits for its removal where that applies.
    async fn finish(&mut self, end: Ending) {
        match end {
            Ending::Completed => self.await_removal().await,
            Ending::DeadlineExceeded => {
                self.report.phase = PodPhase::Failed;
                self.report.reason = Some("DeadlineExceeded".into());
                self.report.message = Some(DEADLINE_MESSAGE.into());
                if let ContainerPhase::Waiting { .. } = self.report.container.state {
                    // Never started: report it as terminated like the kubelet does.
                    self.report.container.state = ContainerPhase::Terminated(Termination {
                        exit_code: 137,
                        signal: None,
                        reason: "ContainerStatusUnknown".into(),
                        message: Some(
                            "The container could not be located when the pod was terminated".into(),
                        ),
                        started_at: None,
                        finished_at: Timestamp::now(),
                        container_id: None,
                    });
                }
                self.write_status().await;
                self.await_removal().await;
            }
            Ending::Deleting => {
                let terminal = if matches!(
                    &self.report.container.state,
                    ContainerPhase::Terminated(t) if t.exit_code == 0
                ) {
                    PodPhase::Succeeded
                } else {
                    PodPhase::Failed
                };
                self.report.phase = terminal;
                self.write_status().await;
                self.remove_from_api().await;
            }
            Ending::Gone => self.clean_up(),
            Ending::Stopping => {}
        }
    }

    /// Waits until the pod is deleted, then removes it for good.
    async fn await_removal(&mut self) {
        loop {
            match self.wait(None).await {
                Wake::Deleting(_) => {
                    self.remove_from_api().await;
                    return;
                }
                Wake::Gone => {
                    self.clean_up();
                    return;
                }
                Wake::Stopping => return,
                Wake::Timer | Wake::Changed | Wake::DeadlineExceeded => {}
            }
        }
    }

    /// The kubelet's last word on a deleted pod: delete it with grace period 0 (only this uid).
    async fn remove_from_api(&mut self) {
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self.api.delete(&self.name, &params).await {
            Ok(_) => info!(pod = %self.key(), "pod removed"),
            Err(error) if matches!(api_code(&error), Some(404 | 409)) => {}
            Err(error) => warn!(pod = %self.key(), %error, "final pod delete failed"),
        }
        self.clean_up();
    }

    /// Removes the pod's directory except its logs (kept for post-mortems; the emulator may still
    /// serve them). PVC directories live elsewhere and stay.
    fn clean_up(&self) {
        let Ok(entries) = std::fs::read_dir(self.layout.root()) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_name() == "logs" {
                continue;
            }
            let path = entry.path();
            let result = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if let Err(error) = result {
                debug!(path = %path.display(), %error, "cleaning pod directory");
            }
        }
    }

    /// Keeps the finished run's log as the previous log, as a kubelet keeps one dead container.
    fn rotate_log(&self, launch: &Launch) {
        let previous = self.layout.previous_log_file(&launch.container_name);
        if let Err(error) = std::fs::rename(&launch.process.log_file, &previous)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            warn!(pod = %self.key(), %error, "keeping the previous container log failed");
        }
    }

    /// Writes the current report as the pod's status, unless it is what was last written.
    async fn write_status(&mut self) {
        let patch = status_patch(&self.report, &mut self.clock, Timestamp::now());
        if self.last_written.as_ref() == Some(&patch) {
            return;
        }
        for attempt in 1..=STATUS_WRITE_ATTEMPTS {
            match self
                .api
                .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.last_written = Some(patch);
                    return;
                }
                Err(error) if api_code(&error) == Some(404) => return,
                Err(error) => {
                    warn!(pod = %self.key(), attempt, %error, "pod status write failed");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
            }
        }
    }

    fn restart_policy(&self) -> String {
        self.pod_rx
            .borrow()
            .as_ref()
            .and_then(|p| p.spec.as_ref())
            .and_then(|s| s.restart_policy.clone())
            .unwrap_or_else(|| "Always".into())
    }

    fn grace_period(&self) -> Duration {
        let seconds = self
            .pod_rx
            .borrow()
            .as_ref()
            .and_then(|p| p.spec.as_ref())
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(DEFAULT_GRACE_SECONDS);
        Duration::from_secs(seconds.max(0).unsigned_abs())
    }

    /// An ending that applies right now, without waiting.
    fn ending_now(&self) -> Option<Ending> {
        if self.ctx.cancel.is_cancelled() {
            return Some(Ending::Stopping);
        }
        let pod = self.pod_rx.borrow();
        let Some(pod) = pod.as_ref() else {
            return Some(Ending::Gone);
        };
        if deletion_grace(pod).is_some() {
            return Some(Ending::Deleting);
        }
        if self.deadline(pod).is_some_and(|d| d <= Timestamp::now()) {
            return Some(Ending::DeadlineExceeded);
        }
        None
    }

    /// When `activeDeadlineSeconds` runs out; `None` once the pod has finished (a finished pod
    /// cannot exceed its deadline, and a sticky deadline wake-up would spin the removal wait).
    fn deadline(&self, pod: &Pod) -> Option<Timestamp> {
        if self.report.phase.is_terminal() {
            return None;
        }
        let seconds = pod.spec.as_ref()?.active_deadline_seconds?;
        self.report
            .start_time
            .checked_add(jiff::SignedDuration::from_secs(seconds))
            .ok()
    }

    /// Waits for the next thing that matters: a pod change, deletion, the deadline, the kubelet
    /// stopping or `timer`.
    async fn wait(&mut self, timer: Option<Duration>) -> Wake {
        if let Some(end) = self.ending_now() {
            return end.as_wake(self);
        }
        let deadline = self
            .pod_rx
            .borrow()
            .as_ref()
            .and_then(|pod| self.deadline(pod))
            .map(until);
        let cancel = self.ctx.cancel.clone();
        tokio::select! {
            changed = self.pod_rx.changed() => {
                match (self.ending_now(), changed) {
                    (Some(end), _) => end.as_wake(self),
                    (None, Ok(())) => Wake::Changed,
                    // The dispatcher dropped the sender: the kubelet is stopping.
                    (None, Err(_)) => Wake::Stopping,
                }
            }
            () = sleep_or_forever(deadline) => Wake::DeadlineExceeded,
            () = sleep_or_forever(timer) => Wake::Timer,
            () = cancel.cancelled() => Wake::Stopping,
        }
    }
}

/// How a pod's run ended, deciding what the worker does next.
enum Ending {
    /// The container finished and restartPolicy does not restart it; status already written.
    Completed,
    DeadlineExceeded,
    /// Deletion requested: report, then remove the pod.
    Deleting,
    /// The pod is gone from the API.
    Gone,
    /// The kubelet is stopping.
    Stopping,
}

impl Ending {
    fn from_wake(wake: Wake) -> Ending {
        match wake {
            Wake::Deleting(_) => Ending::Deleting,
            Wake::Gone => Ending::Gone,
            Wake::DeadlineExceeded => Ending::DeadlineExceeded,
            Wake::Stopping | Wake::Timer | Wake::Changed => Ending::Stopping,
        }
    }

    fn as_wake(&self, worker: &PodWorker) -> Wake {
        match self {
            Ending::Deleting => Wake::Deleting(
                worker
                    .pod_rx
                    .borrow()
                    .as_ref()
                    .and_then(deletion_grace)
                    .unwrap_or(Duration::ZERO),
            ),
            Ending::Gone => Wake::Gone,
            Ending::DeadlineExceeded => Wake::DeadlineExceeded,
            Ending::Stopping | Ending::Completed => Wake::Stopping,
        }
    }
}

enum Supervised {
    /// The process exited by itself.
    Exited(Termination),
    /// The pod must end; the process was stopped with this termination.
    Ended(Ending, Termination),
}

/// The grace period of a pod being deleted, or `None` when it is not being deleted.
fn deletion_grace(pod: &Pod) -> Option<Duration> {
    pod.metadata.deletion_timestamp.as_ref()?;
    let seconds = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| pod.spec.as_ref()?.termination_grace_period_seconds)
        .unwrap_or(DEFAULT_GRACE_SECONDS);
    Some(Duration::from_secs(seconds.max(0).unsigned_abs()))
}

/// SIGTERM to the group, SIGKILL after `grace` if the process is still there.
async fn stop_group(running: &mut RunningProcess, grace: Duration) -> ExitInfo {
    let killed = ExitInfo {
        exit_code: 137,
        signal: Some(Signal::SIGKILL as i32),
    };
    if !grace.is_zero() {
        running.signal_group(Signal::SIGTERM);
        if let Ok(exit) = tokio::time::timeout(grace, running.wait()).await {
            return exit.unwrap_or(killed);
        }
    }
    running.signal_group(Signal::SIGKILL);
    running.wait().await.unwrap_or(killed)
}

fn restart_backoff(restarts: i32) -> Duration {
    let doublings = u32::try_from(restarts).unwrap_or(0).min(16);
    FIRST_RESTART_BACKOFF
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(MAX_RESTART_BACKOFF)
}

/// Time from now until `at` (zero when it is past).
fn until(at: Timestamp) -> Duration {
    at.duration_since(Timestamp::now())
        .try_into()
        .unwrap_or(Duration::ZERO)
}

async fn sleep_or_forever(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}

/// The HTTP status of an API error response.
pub fn api_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(restart_backoff(0), Duration::from_secs(1));
        assert_eq!(restart_backoff(1), Duration::from_secs(2));
        assert_eq!(restart_backoff(3), Duration::from_secs(8));
        assert_eq!(restart_backoff(30), MAX_RESTART_BACKOFF);
    }

    #[test]
    fn deletion_grace_prefers_the_deletion_request() {
        let mut pod = Pod::default();
        assert_eq!(deletion_grace(&pod), None);
        pod.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now()),
        );
        assert_eq!(deletion_grace(&pod), Some(Duration::from_secs(30)));
        pod.metadata.deletion_grace_period_seconds = Some(5);
        assert_eq!(deletion_grace(&pod), Some(Duration::from_secs(5)));
    }
}

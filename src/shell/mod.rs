//! The agent's `shell` tool: run one `sh -c` command with a time limit and bounded output.
//!
//! The agent loop calls [`run_shell`] for each `shell` tool call and audits the
//! [`ShellOutcome`]; nothing here logs. The command runs as the leader of a new process group
//! with stdin on `/dev/null`, so that ending it (timeout, or the caller dropping the future)
//! also ends everything it started. Output is read concurrently from both pipes into bounded
//! buffers ([`capture`]), so a command printing gigabytes neither blocks nor fills memory.
//!
//! The longest a call can take is `timeout + kill_grace` plus a few seconds of bounded clean-up
//! waits (pipe grace, SIGKILL confirmation): the agent never hangs on a command.

mod capture;
mod group;
mod text;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, timeout};

pub use text::head_tail;

use capture::{CapturedText, drain};
use group::{GroupKillGuard, GroupState, group_state, terminate_group};

/// Default time a command may run before its process group is terminated.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Default time between SIGTERM and SIGKILL.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);
/// Default cap on the bytes kept from each of stdout and stderr.
pub const DEFAULT_MAX_STREAM_BYTES: usize = 256 * 1024;

/// After the command's main process exits, how long background processes it left behind may
/// keep its output pipes open before they are terminated. Long enough for a `cmd &` that is
/// just finishing, short enough that `sleep 300 &` costs the agent nothing noticeable.
const PIPE_CLOSE_GRACE: Duration = Duration::from_millis(200);

/// One command for the shell tool, with its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellRequest {
    /// Passed to `sh -c` as is.
    pub command: String,
    /// Time from spawn after which the whole process group is terminated.
    pub timeout: Duration,
    /// Time between SIGTERM and SIGKILL when terminating the group.
    pub kill_grace: Duration,
    /// Bytes kept per stream (stdout, stderr): the first and the last half of this.
    pub max_stream_bytes: usize,
    /// Working directory; the caller's own when `None`.
    pub cwd: Option<PathBuf>,
    /// Variables added to (or overriding) the inherited environment.
    pub env: Vec<(String, String)>,
}

impl ShellRequest {
    /// A request for `command` with the default limits and no extra environment.
    pub fn new(command: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            timeout: DEFAULT_TIMEOUT,
            kill_grace: DEFAULT_KILL_GRACE,
            max_stream_bytes: DEFAULT_MAX_STREAM_BYTES,
            cwd: None,
            env: Vec::new(),
        }
    }
}

/// What a command did: its bounded output, how it ended and how long it took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShellOutcome {
    /// Lossy UTF-8; head + marker + tail when truncated. Invalid bytes become U+FFFD (3 bytes
    /// each), so this may be longer in bytes than `max_stream_bytes` for binary output.
    pub stdout: String,
    /// Like `stdout`.
    pub stderr: String,
    /// The exit code; `None` when killed by a signal.
    pub exit_code: Option<i32>,
    /// The signal that terminated the main process, if any.
    pub signal: Option<i32>,
    /// Whether the command ran out of time and was terminated.
    pub timed_out: bool,
    /// Milliseconds from spawn to result, clean-up included.
    pub duration_ms: u64,
    /// Whether the middle of stdout was dropped.
    pub stdout_truncated: bool,
    /// Whether the middle of stderr was dropped.
    pub stderr_truncated: bool,
    /// Total bytes the command wrote to stdout (before capping).
    pub stdout_bytes: u64,
    /// Total bytes the command wrote to stderr (before capping).
    pub stderr_bytes: u64,
}

impl ShellOutcome {
    /// Whether either stream was cut.
    pub fn truncated(&self) -> bool {
        self.stdout_truncated || self.stderr_truncated
    }
}

/// Why a command could not be run at all (a command that fails still yields a [`ShellOutcome`]).
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// `sh` could not be started: a missing or unreadable working directory, no `sh`, no
    /// processes left.
    #[error("could not start `sh -c` (working directory: {})", describe_cwd(.cwd))]
    Spawn {
        cwd: Option<PathBuf>,
        #[source]
        source: std::io::Error,
    },
    /// The operating system returned no process ID for the started command.
    #[error("the started shell has no process ID")]
    MissingPid,
    /// Waiting for the command's exit failed.
    #[error("could not wait for the command to exit")]
    Wait {
        #[source]
        source: std::io::Error,
    },
}

fn describe_cwd(cwd: &Option<PathBuf>) -> String {
    match cwd {
        Some(path) => path.display().to_string(),
        None => "inherited".to_owned(),
    }
}

/// Runs `request.command` with `sh -c` and returns its bounded output and exit.
///
/// Terminates the command's whole process group on timeout, and also when the main process
/// exits but processes it left in the background still hold the output pipes
/// ([`PIPE_CLOSE_GRACE`] later) or still run. Dropping the returned future kills the group.
pub async fn run_shell(request: &ShellRequest) -> Result<ShellOutcome, ShellError> {
    let started = Instant::now();
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(&request.command)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .envs(request.env.iter().map(|(name, value)| (name, value)));
    if let Some(cwd) = &request.cwd {
        command.current_dir(cwd);
    }
    let mut child = command.spawn().map_err(|source| ShellError::Spawn {
        cwd: request.cwd.clone(),
        source,
    })?;
    let pid = child.id().ok_or(ShellError::MissingPid)?;
    let pgid = Pid::from_raw(i32::try_from(pid).map_err(|_| ShellError::MissingPid)?);
    let kill_guard = GroupKillGuard::new(pgid);

    let (stop_reading, stop) = watch::channel(false);
    // Each reader holds a sender and drops it at the end of its stream, so `recv` on the
    // receiver returns `None` once both pipes are closed.
    let (reader_alive, mut readers) = mpsc::channel::<()>(1);
    let max_bytes = request.max_stream_bytes;
    let read_stdout = read_stream(
        child.stdout.take(),
        max_bytes,
        stop.clone(),
        reader_alive.clone(),
    );
    let read_stderr = read_stream(child.stderr.take(), max_bytes, stop, reader_alive);
    let supervise = async {
        let ending = supervise(&mut child, pgid, started, request, &mut readers).await;
        let _ = stop_reading.send(true);
        ending
    };
    let (stdout, stderr, ending) = tokio::join!(read_stdout, read_stderr, supervise);
    // On an error the guard stays armed and kills whatever may be left of the group.
    let Ending { status, timed_out } = ending?;
    kill_guard.disarm();

    Ok(ShellOutcome {
        stdout: stdout.text,
        stderr: stderr.text,
        exit_code: status.and_then(|status| status.code()),
        signal: status.and_then(|status| status.signal()),
        timed_out,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        stdout_truncated: stdout.truncated,
        stderr_truncated: stderr.truncated,
        stdout_bytes: stdout.total_bytes,
        stderr_bytes: stderr.total_bytes,
    })
}

/// How the command's main process ended.
struct Ending {
    /// `None` only if the main process survived SIGKILL within the confirmation bound.
    status: Option<ExitStatus>,
    timed_out: bool,
}

async fn read_stream<R: tokio::io::AsyncRead + Unpin>(
    pipe: Option<R>,
    max_bytes: usize,
    stop: watch::Receiver<bool>,
    reader_alive: mpsc::Sender<()>,
) -> CapturedText {
    let capture = drain(pipe, max_bytes, stop).await;
    drop(reader_alive);
    capture.finish()
}

/// Waits for the main process or the timeout, then makes sure no process of the group is left
/// and the pipes had their chance to deliver the last output.
async fn supervise(
    child: &mut Child,
    pgid: Pid,
    started: Instant,
    request: &ShellRequest,
    readers: &mut mpsc::Receiver<()>,
) -> Result<Ending, ShellError> {
    let deadline = started.checked_add(request.timeout);
    let out_of_time = async {
        match deadline {
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => std::future::pending().await,
        }
    };
    let main_exit = tokio::select! {
        status = child.wait() => Some(status.map_err(|source| ShellError::Wait { source })?),
        () = out_of_time => None,
    };
    let timed_out = main_exit.is_none();
    let status = match main_exit {
        Some(status) => {
            // Background processes inherit the pipes; give them a moment to finish writing,
            // then end whatever of the group is left (running with or without the pipes).
            let _ = timeout(PIPE_CLOSE_GRACE, readers.recv()).await;
            if group_state(pgid) == GroupState::Running {
                terminate(pgid, child, request.kill_grace).await?;
            }
            Some(status)
        }
        None => terminate(pgid, child, request.kill_grace).await?,
    };
    // Once the group is dead the pipes reach end-of-file right after their last bytes. Only a
    // process that escaped the group (`setsid`) can keep them open; don't wait on it.
    let _ = timeout(PIPE_CLOSE_GRACE, readers.recv()).await;
    Ok(Ending { status, timed_out })
}

async fn terminate(
    pgid: Pid,
    child: &mut Child,
    kill_grace: Duration,
) -> Result<Option<ExitStatus>, ShellError> {
    terminate_group(pgid, child, kill_grace)
        .await
        .map_err(|source| ShellError::Wait { source })
}

#[cfg(test)]
mod tests;

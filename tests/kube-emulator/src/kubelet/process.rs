//! Runs a container as a local process group and ends it.
//!
//! Each container is a process group of its own (`process_group(0)`), so signals reach everything
//! it started, like a container's PID namespace going away. Live groups are recorded in a
//! [`GroupRegistry`] that can kill them all synchronously, so a kubelet dropped without `stop()`
//! (a panicking test) still leaves no process behind.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::logs;

/// How long `wait` lets the log copy finish after the process group is gone.
const LOG_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Process groups that are running, by group id.
#[derive(Clone, Debug, Default)]
pub struct GroupRegistry {
    groups: Arc<Mutex<BTreeSet<i32>>>,
}

impl GroupRegistry {
    fn add(&self, pgid: i32) {
        if let Ok(mut groups) = self.groups.lock() {
            groups.insert(pgid);
        }
    }

    fn remove(&self, pgid: i32) {
        if let Ok(mut groups) = self.groups.lock() {
            groups.remove(&pgid);
        }
    }

    /// Sends SIGKILL to every registered group and forgets them.
    pub fn kill_all(&self) {
        let groups = match self.groups.lock() {
            Ok(mut groups) => std::mem::take(&mut *groups),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for pgid in groups {
            // ESRCH: the group is already gone, which is what we want.
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
}

/// What to run: everything already resolved and rewritten to host paths.
#[derive(Clone, Debug)]
pub struct ProcessSpec {
    pub program: OsString,
    pub args: Vec<OsString>,
    /// The complete environment: nothing is inherited from the kubelet.
    pub env: Vec<(String, String)>,
    pub working_dir: PathBuf,
    /// stdout and stderr are appended here, in CRI log format.
    pub log_file: PathBuf,
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitInfo {
    /// The exit code, or 128 + the signal number when a signal ended it (as container runtimes
    /// report it).
    pub exit_code: i32,
    /// The signal that ended it, if any.
    pub signal: Option<i32>,
}

/// A started container process.
#[derive(Debug)]
pub struct RunningProcess {
    child: tokio::process::Child,
    pgid: i32,
    registry: GroupRegistry,
    /// Ends when stdout and stderr are closed and every line is in the log file.
    log_writer: Option<JoinHandle<io::Result<()>>>,
}

/// Starting the process failed.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("opening log file {path}")]
    OpenLog {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("starting {program:?}")]
    Spawn {
        program: OsString,
        #[source]
        source: io::Error,
    },
    #[error("the process of {program:?} has no pid")]
    NoPid { program: OsString },
}

/// Starts the process in a new process group; its stdout and stderr are copied line by line into
/// the log file in CRI format (see [`logs`](super::logs)).
pub fn spawn(spec: &ProcessSpec, registry: &GroupRegistry) -> Result<RunningProcess, SpawnError> {
    let open_log = || {
        if let Some(parent) = spec.log_file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log_file)
    };
    let log = open_log().map_err(|source| SpawnError::OpenLog {
        path: spec.log_file.clone(),
        source,
    })?;
    let mut command = tokio::process::Command::new(&spec.program);
    command
        .args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.working_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        // Dropping the handle must not leave the leader running: the registry kills the rest.
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|source| SpawnError::Spawn {
        program: spec.program.clone(),
        source,
    })?;
    let Some(pid) = child.id() else {
        return Err(SpawnError::NoPid {
            program: spec.program.clone(),
        });
    };
    // With process_group(0) the group id is the child's pid.
    let pgid = i32::try_from(pid).unwrap_or(i32::MAX);
    registry.add(pgid);
    let (lines_tx, lines_rx) = mpsc::unbounded_channel();
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(logs::copy_lines(stdout, "stdout", lines_tx.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(logs::copy_lines(stderr, "stderr", lines_tx));
    }
    let log_writer = tokio::spawn(logs::write_lines(tokio::fs::File::from_std(log), lines_rx));
    Ok(RunningProcess {
        child,
        pgid,
        registry: registry.clone(),
        log_writer: Some(log_writer),
    })
}

impl RunningProcess {
    /// The process id, also its process group id.
    pub fn pid(&self) -> i32 {
        self.pgid
    }

    /// Sends a signal to the whole group; a group that is already gone is not an error.
    pub fn signal_group(&self, signal: Signal) {
        let _ = killpg(Pid::from_raw(self.pgid), signal);
    }

    /// Waits for the main process to exit, then kills what is left of its group (a container's
    /// other processes die with its PID 1) and waits for its output to reach the log file.
    /// Cancel-safe: calling it again after a dropped call picks up where that one stopped.
    pub async fn wait(&mut self) -> io::Result<ExitInfo> {
        let status = self.child.wait().await?;
        self.signal_group(Signal::SIGKILL);
        self.registry.remove(self.pgid);
        // Cancel-safe: the writer is only forgotten once it has finished (or timed out), so a
        // `select!` that drops this future half-way still drains the log on the next call.
        if let Some(writer) = self.log_writer.as_mut() {
            // The group is dead, so the pipes close at once; a process that left the group
            // (setsid) and kept them open must not hold the pod up.
            match tokio::time::timeout(LOG_DRAIN_TIMEOUT, writer).await {
                Ok(Ok(Err(error))) => tracing::warn!(%error, "writing the container log failed"),
                Ok(_) => {}
                Err(_) => tracing::warn!("container log still open after the group was killed"),
            }
            self.log_writer = None;
        }
        Ok(match (status.code(), status.signal()) {
            (Some(code), _) => ExitInfo {
                exit_code: code,
                signal: None,
            },
            (None, Some(signal)) => ExitInfo {
                exit_code: 128 + signal,
                signal: Some(signal),
            },
            (None, None) => ExitInfo {
                exit_code: 128,
                signal: None,
            },
        })
    }
}

impl Drop for RunningProcess {
    fn drop(&mut self) {
        // Reached only when the process was not waited for (the kubelet is going away).
        if self
            .registry
            .groups
            .lock()
            .is_ok_and(|g| g.contains(&self.pgid))
        {
            self.signal_group(Signal::SIGKILL);
            self.registry.remove(self.pgid);
        }
    }
}

/// Resolves `program` the way a shell would: a name with a `/` is a path, otherwise it is looked
/// up in `path_var`. Returns `program` unchanged when nothing is found, so the spawn error names it.
pub fn resolve_program(program: &str, path_var: Option<&str>) -> OsString {
    if program.contains('/') {
        return OsString::from(program);
    }
    for dir in path_var
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
    {
        let candidate = Path::new(dir).join(program);
        if candidate.is_file() {
            return candidate.into_os_string();
        }
    }
    OsString::from(program)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, script: &str) -> ProcessSpec {
        ProcessSpec {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![("GREETING".into(), "hi".into())],
            working_dir: dir.to_path_buf(),
            log_file: dir.join("logs/c.log"),
        }
    }

    #[tokio::test]
    async fn exit_code_env_and_log_are_captured() {
        let dir = tempfile::tempdir().unwrap();
        let registry = GroupRegistry::default();
        let mut process = spawn(
            &spec(
                dir.path(),
                "echo $GREETING; echo err >&2; echo ${HOME:-nohome}; exit 3",
            ),
            &registry,
        )
        .unwrap();
        let exit = process.wait().await.unwrap();
        assert_eq!(
            exit,
            ExitInfo {
                exit_code: 3,
                signal: None
            }
        );
        let lines = logs::read_lines(&dir.path().join("logs/c.log")).unwrap();
        let mut texts: Vec<_> = lines
            .iter()
            .map(|l| (l.stream.as_str(), l.text.as_str()))
            .collect();
        // stdout and stderr are separate pipes: only the order within each stream is fixed.
        texts.sort();
        assert_eq!(
            texts,
            vec![("stderr", "err"), ("stdout", "hi"), ("stdout", "nohome")]
        );
    }

    #[tokio::test]
    async fn signalling_the_group_kills_children_too() {
        let dir = tempfile::tempdir().unwrap();
        let registry = GroupRegistry::default();
        let pid_file = dir.path().join("child.pid");
        let script = format!("sleep 300 & echo $! > {}; wait", pid_file.display());
        let mut process = spawn(&spec(dir.path(), &script), &registry).unwrap();
        let child_pid = loop {
            if let Ok(text) = std::fs::read_to_string(&pid_file)
                && let Ok(pid) = text.trim().parse::<i32>()
            {
                break pid;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        process.signal_group(Signal::SIGTERM);
        let exit = process.wait().await.unwrap();
        assert_eq!(exit.signal, Some(libc_sigterm()));
        assert_eq!(exit.exit_code, 128 + libc_sigterm());
        // The background sleep was in the same group; it is gone (or a zombie being reaped).
        let alive =
            nix::sys::signal::kill(Pid::from_raw(child_pid), None).is_ok() && !is_zombie(child_pid);
        assert!(!alive, "child {child_pid} survived the group signal");
    }

    fn libc_sigterm() -> i32 {
        Signal::SIGTERM as i32
    }

    fn is_zombie(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.split_whitespace().nth(2) == Some("Z"))
            .unwrap_or(true)
    }

    #[test]
    fn resolve_program_searches_path() {
        assert_eq!(
            resolve_program("sh", Some("/nonexistent:/bin")),
            OsString::from("/bin/sh")
        );
        assert_eq!(resolve_program("./x", Some("/bin")), OsString::from("./x"));
        assert_eq!(
            resolve_program("no-such-tool", Some("/bin")),
            OsString::from("no-such-tool")
        );
    }
}

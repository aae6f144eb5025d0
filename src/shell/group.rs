//! The process group a command runs in: signalling it, ending it, and confirming it is gone.
//!
//! Every command is the leader of a new process group, so one `killpg` reaches it and everything
//! it started (`cmd &`, pipelines, subshells). A process that leaves the group on purpose
//! (`setsid`, `nohup setsid ...`) escapes; only the pod's PID namespace or cgroup bounds those.
//!
//! Process IDs are reused, so we only signal a group while we know it exists: the leader is our
//! child and its ID stays reserved until we reap it, and after that the ID stays reserved as long
//! as any member of the group is alive (or a zombie). The only window for reuse is between the
//! last member disappearing and our next poll, a few milliseconds, during which the kernel would
//! have to cycle through the whole PID space.

use std::process::ExitStatus;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::time::{Instant, sleep, timeout_at};

/// How long to wait for the group to vanish after SIGKILL, which cannot be caught, before giving up.
///
/// Only a process stuck in uninterruptible sleep (a hung NFS mount, say) takes longer; waiting
/// for it would only hang the agent.
const KILL_CONFIRM_BOUND: Duration = Duration::from_secs(2);

/// First and longest pause between two checks of whether the group is gone.
const FIRST_POLL_INTERVAL: Duration = Duration::from_millis(1);
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(16);

/// Whether any process of a group is still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GroupState {
    /// No process has this group ID any more.
    Gone,
    /// Every remaining member is a zombie: dead, holding no pipe or memory, waiting for its
    /// parent to reap it. Members whose parent (`sh`) died were reparented to PID 1 or the
    /// nearest subreaper, and only that process can reap them. If that process never reaps
    /// (an agent binary running as PID 1 without an init), they would stay forever, so we
    /// count them as dead instead of waiting. Only detectable through `/proc` (Linux).
    OnlyZombies,
    /// At least one member may still be running.
    Running,
}

impl GroupState {
    fn is_dead(self) -> bool {
        self != GroupState::Running
    }
}

/// Sends `signal` to every process of the group, ignoring failures.
///
/// ESRCH means there is no one left to signal. EPERM (a member changed its user, e.g. a setuid
/// program) leaves nothing more we could do; the caller still returns the output it has.
pub(crate) fn signal_group(pgid: Pid, signal: Signal) {
    let _ = killpg(pgid, signal);
}

/// Whether any process of the group is still running; see [`GroupState`].
pub(crate) fn group_state(pgid: Pid) -> GroupState {
    match killpg(pgid, None) {
        Err(Errno::ESRCH) => GroupState::Gone,
        _ if only_zombies_in_group(pgid) == Some(true) => GroupState::OnlyZombies,
        _ => GroupState::Running,
    }
}

/// Polls until the group is dead or `deadline` passes; returns the last state seen.
pub(crate) async fn wait_until_dead(pgid: Pid, deadline: Instant) -> GroupState {
    let mut interval = FIRST_POLL_INTERVAL;
    loop {
        let state = group_state(pgid);
        if state.is_dead() || Instant::now() >= deadline {
            return state;
        }
        sleep(interval.min(deadline.saturating_duration_since(Instant::now()))).await;
        interval = (interval * 2).min(MAX_POLL_INTERVAL);
    }
}

/// Ends every process of the group led by `leader` and returns the leader's exit status.
///
/// SIGTERM (plus SIGCONT, so stopped members can act on it), then up to `grace` for the whole
/// group to exit, then SIGKILL; the leader is reaped (never left a zombie) and the group is
/// confirmed gone within [`KILL_CONFIRM_BOUND`]. Works whether or not the leader already exited.
/// `Ok(None)` means the leader survived even SIGKILL within the bound (uninterruptible sleep);
/// `kill_on_drop` and the runtime reap it later.
pub(crate) async fn terminate_group(
    pgid: Pid,
    leader: &mut Child,
    grace: Duration,
) -> std::io::Result<Option<ExitStatus>> {
    signal_group(pgid, Signal::SIGTERM);
    signal_group(pgid, Signal::SIGCONT);
    let grace_deadline = Instant::now() + grace;
    // The group cannot be gone while the leader is an unreaped child of ours, so reap it first.
    let mut leader_status = timeout_at(grace_deadline, leader.wait())
        .await
        .ok()
        .transpose()?;
    let state = wait_until_dead(pgid, grace_deadline).await;
    if leader_status.is_none() || !state.is_dead() {
        signal_group(pgid, Signal::SIGKILL);
    }
    let confirm_deadline = Instant::now() + KILL_CONFIRM_BOUND;
    if leader_status.is_none() {
        leader_status = timeout_at(confirm_deadline, leader.wait())
            .await
            .ok()
            .transpose()?;
    }
    wait_until_dead(pgid, confirm_deadline).await;
    Ok(leader_status)
}

/// SIGKILLs the group when dropped while armed: the last resort if the caller stops polling
/// `run_shell` halfway (tokio's `kill_on_drop` only reaches the leader, not its children).
#[derive(Debug)]
pub(crate) struct GroupKillGuard {
    pgid: Option<Pid>,
}

impl GroupKillGuard {
    pub(crate) fn new(pgid: Pid) -> Self {
        Self { pgid: Some(pgid) }
    }

    /// The group was ended properly; signalling it again could hit a reused ID.
    pub(crate) fn disarm(mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupKillGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            signal_group(pgid, Signal::SIGKILL);
        }
    }
}

/// `Some(true)` if every process in group `pgid` is a zombie, `None` without a readable `/proc`.
fn only_zombies_in_group(pgid: Pid) -> Option<bool> {
    let entries = std::fs::read_dir("/proc").ok()?;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        // A process that exits between listing and reading simply has no stat any more.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((state, group)) = parse_state_and_group(&stat)
            && group == pgid.as_raw()
            && state != 'Z'
            && state != 'X'
        {
            return Some(false);
        }
    }
    Some(true)
}

/// The state letter and process group of a `/proc/PID/stat` line.
///
/// The command name (field 2) is in parentheses and may contain spaces or `)`, so the fields
/// are counted from the last `)`: state, parent PID, process group.
pub(crate) fn parse_state_and_group(stat: &str) -> Option<(char, i32)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _parent = fields.next()?;
    let group = fields.next()?.parse().ok()?;
    Some((state, group))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_lines_with_awkward_names() {
        let stat = "4242 (my (odd) name) S 1 4240 4240 0 -1 4194560 107 0 0 0";
        assert_eq!(parse_state_and_group(stat), Some(('S', 4240)));
        assert_eq!(parse_state_and_group("12 (sh) Z 1 12 12"), Some(('Z', 12)));
        assert_eq!(parse_state_and_group("garbage"), None);
        assert_eq!(parse_state_and_group("1 (x) R 1 notanumber"), None);
    }

    #[test]
    fn a_group_that_never_existed_is_gone() {
        // Process group IDs are positive and below pid_max (at most 2^22), so this one is free.
        assert_eq!(group_state(Pid::from_raw(i32::MAX)), GroupState::Gone);
    }

    #[test]
    fn our_own_group_is_running() {
        assert_eq!(group_state(nix::unistd::getpgrp()), GroupState::Running);
    }

    #[test]
    fn a_group_of_only_zombies_counts_as_dead_until_reaped() {
        use std::os::unix::process::CommandExt;
        let mut leader = std::process::Command::new("true")
            .process_group(0)
            .spawn()
            .expect("true starts");
        let pgid = Pid::from_raw(i32::try_from(leader.id()).expect("pid fits"));
        // Not reaped yet: once `true` exits it stays a zombie, and its group with it.
        let give_up = std::time::Instant::now() + Duration::from_secs(30);
        while group_state(pgid) == GroupState::Running {
            assert!(std::time::Instant::now() < give_up, "`true` never exited");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(group_state(pgid), GroupState::OnlyZombies);
        leader.wait().expect("reaped");
        assert_eq!(group_state(pgid), GroupState::Gone);
    }
}

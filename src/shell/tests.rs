//! `run_shell` against real processes.

use std::time::Duration;

use super::*;

/// Far above anything these tests need; only there so a regression fails instead of hanging.
const HANG_GUARD: Duration = Duration::from_secs(60);

async fn run(request: ShellRequest) -> ShellOutcome {
    tokio::time::timeout(HANG_GUARD, run_shell(&request))
        .await
        .expect("run_shell returned before the hang guard")
        .expect("command started")
}

async fn run_command(command: &str) -> ShellOutcome {
    run(ShellRequest::new(command)).await
}

fn with_timeout(command: &str, timeout: Duration, kill_grace: Duration) -> ShellRequest {
    ShellRequest {
        timeout,
        kill_grace,
        ..ShellRequest::new(command)
    }
}

/// Whether `pid` is a live process: absent and zombie processes are dead (a zombie is only an
/// entry waiting for its new parent, PID 1, to reap it).
fn is_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(group::parse_state_and_group(&stat), Some(('Z' | 'X', _))),
        Err(_) => false,
    }
}

fn first_line_pid(text: &str) -> i32 {
    text.lines()
        .next()
        .and_then(|line| line.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid on the first line of {text:?}"))
}

#[tokio::test]
async fn reports_exit_codes() {
    let success = run_command("true").await;
    assert_eq!((success.exit_code, success.signal), (Some(0), None));
    assert!(!success.timed_out && !success.truncated());
    assert_eq!(run_command("exit 3").await.exit_code, Some(3));
}

#[tokio::test]
async fn reports_the_terminating_signal() {
    let killed = run_command("kill -9 $$").await;
    assert_eq!((killed.exit_code, killed.signal), (None, Some(9)));
    assert!(!killed.timed_out);
}

#[tokio::test]
async fn captures_stdout_and_stderr_separately() {
    let outcome = run_command("echo out; echo err >&2; echo more-out").await;
    assert_eq!(outcome.stdout, "out\nmore-out\n");
    assert_eq!(outcome.stderr, "err\n");
    assert_eq!((outcome.stdout_bytes, outcome.stderr_bytes), (13, 4));
}

#[tokio::test]
async fn runs_in_a_new_process_group_with_empty_stdin() {
    // Field 5 of /proc/PID/stat is the process group; a group leader's equals its PID.
    let outcome = run_command("echo $$ $(cut -d' ' -f5 /proc/$$/stat); cat; echo after-cat").await;
    let mut lines = outcome.stdout.lines();
    let ids: Vec<&str> = lines.next().expect("ids line").split(' ').collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1], "sh leads its own group");
    assert_ne!(ids[1], nix::unistd::getpgrp().to_string());
    assert_eq!(lines.next(), Some("after-cat"), "cat read an empty stdin");
}

#[tokio::test]
async fn timeout_kills_the_whole_group_including_background_children() {
    let outcome = run(with_timeout(
        "sleep 300 & echo $!; sleep 300",
        Duration::from_millis(300),
        Duration::from_secs(2),
    ))
    .await;
    assert!(outcome.timed_out);
    assert_eq!((outcome.exit_code, outcome.signal), (None, Some(15)));
    let grandchild = first_line_pid(&outcome.stdout);
    assert!(
        !is_alive(grandchild),
        "background sleep {grandchild} survived"
    );
}

#[tokio::test]
async fn timeout_escalates_to_sigkill_when_term_is_ignored() {
    // An ignored signal stays ignored across exec, so the background sleep ignores TERM too.
    let grace = Duration::from_millis(300);
    let outcome = run(with_timeout(
        "trap '' TERM; sleep 300 & echo $!; sleep 300",
        Duration::from_millis(300),
        grace,
    ))
    .await;
    assert!(outcome.timed_out);
    assert_eq!(outcome.signal, Some(9));
    assert!(outcome.duration_ms >= 600, "waited the grace: {outcome:?}");
    assert!(!is_alive(first_line_pid(&outcome.stdout)));
}

#[tokio::test]
async fn background_child_holding_the_pipes_does_not_block_the_result() {
    let outcome = run_command("sleep 300 & echo $!").await;
    assert!(!outcome.timed_out);
    assert_eq!(outcome.exit_code, Some(0));
    // The 120 s default timeout was not what ended it (generous bound, not a speed target).
    assert!(outcome.duration_ms < 60_000, "{outcome:?}");
    assert!(!is_alive(first_line_pid(&outcome.stdout)));
}

#[tokio::test]
async fn background_child_without_the_pipes_is_ended_too() {
    let outcome = run_command("sleep 300 >/dev/null 2>&1 & echo $!").await;
    assert_eq!(outcome.exit_code, Some(0));
    assert!(!is_alive(first_line_pid(&outcome.stdout)));
}

#[tokio::test]
async fn process_that_left_the_group_cannot_hold_the_result_hostage() {
    // `setsid` (not a group leader, so it does not fork) moves the sleep into a new session and
    // group: out of our reach, yet holding both pipes open.
    let outcome = run_command("setsid sleep 300 & echo $!").await;
    assert_eq!(outcome.exit_code, Some(0));
    assert!(outcome.duration_ms < 60_000, "{outcome:?}");
    let escaped = first_line_pid(&outcome.stdout);
    let still_running = is_alive(escaped);
    let _ = nix::sys::signal::kill(Pid::from_raw(escaped), nix::sys::signal::Signal::SIGKILL);
    assert!(still_running, "the escaped sleep was reachable after all");
}

#[tokio::test]
async fn output_written_by_background_children_before_exit_is_kept() {
    let outcome = run_command("(sleep 0.05; echo late) & echo early").await;
    assert_eq!(outcome.stdout, "early\nlate\n");
}

#[tokio::test]
async fn flood_is_capped_keeping_head_and_tail_and_counting_everything() {
    let request = ShellRequest {
        max_stream_bytes: 1024,
        ..ShellRequest::new("printf START; head -c 50000000 /dev/zero | tr '\\0' x; printf END")
    };
    let outcome = run(request).await;
    assert_eq!(outcome.exit_code, Some(0));
    assert!(outcome.stdout_truncated && outcome.truncated());
    assert_eq!(outcome.stdout_bytes, 50_000_008);
    let (head, rest) = outcome.stdout.split_once("\n[... ").expect("marker");
    let (omitted, tail) = rest
        .split_once(" bytes omitted ...]\n")
        .expect("marker end");
    assert_eq!((head.len(), tail.len()), (512, 512));
    assert!(head.starts_with("STARTxxx") && tail.ends_with("xxxEND"));
    assert_eq!(omitted, (50_000_008 - 1024).to_string());
}

#[tokio::test]
async fn endless_output_is_bounded_and_stopped_by_the_timeout() {
    let request = ShellRequest {
        max_stream_bytes: 4096,
        ..with_timeout("yes", Duration::from_millis(500), Duration::from_secs(2))
    };
    let outcome = run(request).await;
    assert!(outcome.timed_out && outcome.stdout_truncated);
    assert!(outcome.stdout_bytes > 4096);
    assert!(outcome.stdout.starts_with("y\ny\n") && outcome.stdout.ends_with("y\n"));
    assert!(outcome.stdout.len() < 4096 + 64);
}

#[tokio::test]
async fn both_streams_are_read_concurrently() {
    // Each stream gets far more than a pipe buffer (64 KiB) while the other waits its turn:
    // reading one stream to its end before the other would deadlock.
    let outcome = run_command(
        "head -c 2000000 /dev/zero | tr '\\0' e >&2; \
         head -c 2000000 /dev/zero | tr '\\0' o; \
         head -c 2000000 /dev/zero | tr '\\0' e >&2",
    )
    .await;
    assert_eq!(outcome.exit_code, Some(0));
    assert_eq!(
        (outcome.stdout_bytes, outcome.stderr_bytes),
        (2_000_000, 4_000_000)
    );
    let (out_head, _) = outcome.stdout.split_once('\n').expect("stdout truncated");
    let (err_head, _) = outcome.stderr.split_once('\n').expect("stderr truncated");
    assert!(out_head.len() == DEFAULT_MAX_STREAM_BYTES / 2 && out_head.bytes().all(|b| b == b'o'));
    assert!(err_head.len() == DEFAULT_MAX_STREAM_BYTES / 2 && err_head.bytes().all(|b| b == b'e'));
}

#[tokio::test]
async fn invalid_utf8_becomes_replacement_characters() {
    let outcome = run_command("printf '\\377\\376ok'").await;
    assert_eq!(outcome.stdout, "\u{FFFD}\u{FFFD}ok");
    assert_eq!(outcome.stdout_bytes, 4);
}

#[tokio::test]
async fn uses_the_working_directory_and_extra_environment() {
    let directory = tempfile::tempdir().expect("temp dir");
    let request = ShellRequest {
        cwd: Some(directory.path().to_path_buf()),
        env: vec![("GREETING".to_owned(), "hello world".to_owned())],
        ..ShellRequest::new("pwd -P; printf '%s' \"$GREETING\"")
    };
    let outcome = run(request).await;
    let (cwd, greeting) = outcome.stdout.split_once('\n').expect("two lines");
    let expected = directory.path().canonicalize().expect("canonical temp dir");
    assert_eq!(std::path::Path::new(cwd), expected);
    assert_eq!(greeting, "hello world");
}

#[tokio::test]
async fn missing_working_directory_is_a_spawn_error() {
    let directory = tempfile::tempdir().expect("temp dir");
    let request = ShellRequest {
        cwd: Some(directory.path().join("does-not-exist")),
        ..ShellRequest::new("true")
    };
    match run_shell(&request).await {
        Err(ShellError::Spawn { cwd, source }) => {
            assert_eq!(cwd, request.cwd);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected a spawn error, got {other:?}"),
    }
}

#[tokio::test]
async fn dropping_the_future_kills_the_group() {
    let directory = tempfile::tempdir().expect("temp dir");
    let pid_file = directory.path().join("pid");
    let command = format!("sleep 300 & echo $! > '{}'; wait", pid_file.display());
    let request = ShellRequest::new(command);
    let mut running = Box::pin(run_shell(&request));
    let started = std::time::Instant::now();
    let grandchild = loop {
        tokio::select! {
            finished = &mut running => panic!("finished early: {finished:?}"),
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
        let written = std::fs::read_to_string(&pid_file).unwrap_or_default();
        if written.ends_with('\n') {
            break first_line_pid(&written);
        }
        assert!(started.elapsed() < HANG_GUARD, "pid file never written");
    };
    assert!(is_alive(grandchild));
    drop(running);
    // SIGKILL is delivered asynchronously; the process is gone within moments.
    while is_alive(grandchild) {
        assert!(
            started.elapsed() < HANG_GUARD,
            "{grandchild} survived the drop"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn outcome_serializes_in_camel_case() {
    let outcome = ShellOutcome {
        stdout: "out".into(),
        stderr: String::new(),
        exit_code: Some(0),
        signal: None,
        timed_out: false,
        duration_ms: 5,
        stdout_truncated: false,
        stderr_truncated: true,
        stdout_bytes: 3,
        stderr_bytes: 9,
    };
    let json = serde_json::to_value(&outcome).expect("serializable");
    assert_eq!(json["exitCode"], 0);
    assert_eq!(json["timedOut"], false);
    assert_eq!(json["stderrTruncated"], true);
    assert_eq!(json["durationMs"], 5);
    assert!(outcome.truncated());
    let back: ShellOutcome = serde_json::from_value(json).expect("round trip");
    assert_eq!(back, outcome);
}

#[test]
fn request_defaults() {
    let request = ShellRequest::new("uptime");
    assert_eq!(request.command, "uptime");
    assert_eq!(request.timeout, Duration::from_secs(120));
    assert_eq!(request.kill_grace, Duration::from_secs(2));
    assert_eq!(request.max_stream_bytes, 256 * 1024);
    assert!(request.cwd.is_none() && request.env.is_empty());
}

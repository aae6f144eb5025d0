//! Turns SIGTERM and SIGINT into a cancel flag, so a session that is asked to stop still writes
//! its final audit document. A second signal exits at once: the `.jsonl` already holds every step.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// Starts a task that flips the returned flag on the first SIGTERM or SIGINT and exits the process
/// (status 130) on the second. Must be called inside a tokio runtime.
pub fn cancel_on_terminate() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            // Without handlers the default actions apply; nothing to cancel from here.
            return;
        };
        for round in 0..2 {
            tokio::select! {
                _ = term.recv() => {},
                _ = int.recv() => {},
            }
            if round == 0 {
                let _ = tx.send(true);
            } else {
                std::process::exit(130);
            }
        }
    });
    rx
}

//! Sends the agent's progress to the Incident's status without flooding the API server: audit
//! records arrive on a channel, are folded into a [`Progress`], and at most one status patch is
//! sent per interval (the latest state wins). A failed patch is logged and retried with the next
//! one: progress is a courtesy, the audit on the volume is the record.

use std::time::Duration;

use kube::Api;
use kube::api::{Patch, PatchParams};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::agent::SessionObserver;
use crate::audit::{AuditRecord, Redactor};
use crate::incident::Incident;

use super::status::{AGENT_FIELD_MANAGER, Progress, progress_patch};

/// Forwards audit records to the reporter task. Never blocks the session: the channel is
/// unbounded, and records are small (the reporter only folds them).
pub struct ChannelObserver {
    tx: mpsc::UnboundedSender<AuditRecord>,
}

impl SessionObserver for ChannelObserver {
    fn observe(&mut self, record: &AuditRecord) {
        // The reporter may have stopped (API gone); the session carries on regardless.
        let _ = self.tx.send(record.clone());
    }
}

/// Starts the reporter; returns the observer to hand to the session and the task, which ends
/// (returning the last progress) when the observer is dropped.
pub fn start(
    api: Api<Incident>,
    name: String,
    interval: Duration,
    redactor: Redactor,
) -> (ChannelObserver, JoinHandle<Progress>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<AuditRecord>();
    let task = tokio::spawn(async move {
        let params = PatchParams::apply(AGENT_FIELD_MANAGER).force();
        let mut progress = Progress::default();
        let mut last_sent: Option<Progress> = None;
        let mut next_allowed = Instant::now();
        loop {
            let wait = tokio::time::sleep_until(next_allowed);
            tokio::select! {
                record = rx.recv() => match record {
                    Some(record) => progress.observe(&record, &redactor),
                    None => break,
                },
                _ = wait, if last_sent.as_ref() != Some(&progress) => {
                    let patch = progress_patch(&progress);
                    match api.patch_status(&name, &params, &Patch::Apply(&patch)).await {
                        Ok(_) => last_sent = Some(progress.clone()),
                        Err(e) => tracing::warn!(error = %e, "progress status patch failed"),
                    }
                    next_allowed = Instant::now() + interval;
                }
            }
        }
        progress
    });
    (ChannelObserver { tx }, task)
}

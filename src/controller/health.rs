//! Liveness and readiness of the controller process, as `/healthz` and `/readyz` report them.
//!
//! - `/healthz` is 200 while the process serves HTTP at all.
//! - `/readyz` without leader election is 200 once the agent-pod caches have finished their first
//!   list (no reconcile runs before that, nor before the Incident cache has its first list, which
//!   kube-runtime enforces). With leader election, the leader is ready under the same rule, and a
//!   standby replica is ready while it can read the Lease (it is healthy and can take over), so a
//!   rolling update does not wait forever on replicas that are standing by by design.

use std::sync::atomic::{AtomicBool, Ordering};

/// Shared flags behind the health endpoints.
#[derive(Debug)]
pub struct Health {
    election: bool,
    caches_synced: AtomicBool,
    leading: AtomicBool,
    lease_reachable: AtomicBool,
}

impl Health {
    /// Flags for a process with (`election`) or without leader election.
    pub fn new(election: bool) -> Self {
        Self {
            election,
            caches_synced: AtomicBool::new(false),
            leading: AtomicBool::new(false),
            lease_reachable: AtomicBool::new(false),
        }
    }

    /// The controllers' caches have (or no longer have) their first full list.
    pub fn set_caches_synced(&self, synced: bool) {
        self.caches_synced.store(synced, Ordering::SeqCst);
    }

    /// This replica leads (or stopped leading).
    pub fn set_leading(&self, leading: bool) {
        self.leading.store(leading, Ordering::SeqCst);
    }

    /// The last leader-election round could (or could not) read and write the Lease.
    pub fn set_lease_reachable(&self, reachable: bool) {
        self.lease_reachable.store(reachable, Ordering::SeqCst);
    }

    /// Whether `/readyz` answers 200 (see the module docs).
    pub fn is_ready(&self) -> bool {
        let synced = self.caches_synced.load(Ordering::SeqCst);
        if !self.election {
            return synced;
        }
        if self.leading.load(Ordering::SeqCst) {
            synced
        } else {
            self.lease_reachable.load(Ordering::SeqCst)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_election_ready_means_synced() {
        let health = Health::new(false);
        assert!(!health.is_ready());
        health.set_caches_synced(true);
        assert!(health.is_ready());
    }

    #[test]
    fn with_election_standby_is_ready_while_the_lease_is_reachable() {
        let health = Health::new(true);
        assert!(!health.is_ready());
        health.set_lease_reachable(true);
        assert!(health.is_ready(), "healthy standby");
        health.set_leading(true);
        assert!(!health.is_ready(), "leader without caches");
        health.set_caches_synced(true);
        assert!(health.is_ready());
        health.set_leading(false);
        health.set_lease_reachable(false);
        assert!(!health.is_ready());
    }
}

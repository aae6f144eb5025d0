//! Leader election through a `coordination.k8s.io/v1` Lease, so that of several controller replicas
//! exactly one starts agents.
//!
//! The protocol is client-go's: the holder renews `renewTime` every `duration / 3`; another replica
//! takes the Lease over once it has seen the same record, unchanged, for a whole `leaseDuration` by
//! its *own* clock (clocks of different nodes are never compared); every write is a `replace` with
//! the `resourceVersion` that was read, so two replicas racing for it cannot both win. A leader
//! that has not renewed for `2/3 · duration` steps down before anyone else may take over. On
//! shutdown the leader releases the Lease (empty holder), so a successor starts at once. The
//! leader's pod also owns the Lease: when the last pod goes, the garbage collector removes the
//! Lease, even when the release failed (on `helm uninstall` the Role may be gone by then).
//!
//! [`next_lease_step`] is the pure decision; [`run_election`] is the loop around it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use super::health::Health;

/// Where the Lease lives and who we are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// This replica's identity, written as the holder (the pod name, usually).
    pub identity: String,
    /// How long a Lease stays valid without renewal.
    pub duration: Duration,
    /// The pod of this replica, when it runs in one in the Lease's namespace: the leader makes
    /// its pod the Lease's owner, so the garbage collector removes the Lease with the last pod
    /// even when the release cannot happen (on `helm uninstall` the Role goes while the pod stops).
    pub owner: Option<LeaseOwner>,
}

/// This replica's pod, as an owner of the Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseOwner {
    /// The pod name (Downward API `metadata.name`).
    pub pod_name: String,
    /// The pod UID (Downward API `metadata.uid`).
    pub pod_uid: String,
}

impl LeaseOwner {
    /// The owner reference the Lease carries. Not `controller` and no `blockOwnerDeletion`: the
    /// pod does not manage the Lease, and blocking would need delete rights on pods.
    pub fn owner_reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: "v1".to_string(),
            kind: "Pod".to_string(),
            name: self.pod_name.clone(),
            uid: self.pod_uid.clone(),
            ..OwnerReference::default()
        }
    }
}

/// Makes `owner` the Lease's only pod owner (a previous leader's pod is dropped), keeping any
/// other owner references; true when that changed the list.
pub fn set_pod_owner(metadata: &mut ObjectMeta, owner: &LeaseOwner) -> bool {
    let wanted = owner.owner_reference();
    let mut references: Vec<OwnerReference> = metadata
        .owner_references
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| !(r.api_version == "v1" && r.kind == "Pod"))
        .collect();
    references.push(wanted);
    let changed = metadata.owner_references.as_ref() != Some(&references);
    metadata.owner_references = Some(references);
    changed
}

impl LeaseSettings {
    /// How often the leader renews.
    pub fn renew_interval(&self) -> Duration {
        (self.duration / 3).max(Duration::from_millis(200))
    }

    /// How long the leader keeps leading without a successful renewal.
    pub fn renew_deadline(&self) -> Duration {
        self.duration * 2 / 3
    }

    /// How often a follower looks at the Lease.
    pub fn retry_interval(&self) -> Duration {
        self.renew_interval()
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }
}

/// What to do with the Lease as it is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseStep {
    /// There is no Lease: create it, holding it.
    Create,
    /// We hold it: renew.
    Renew,
    /// Nobody holds it, or the holder stopped renewing: take it over.
    Acquire,
    /// Someone else holds it and renews: follow.
    Follow { holder: String },
}

/// Decides the next step. `unchanged_for` is how long this replica has seen the Lease's record
/// (holder, renew time, transitions) unchanged, by its own clock.
pub fn next_lease_step(
    lease: Option<&LeaseSpec>,
    identity: &str,
    unchanged_for: Duration,
    default_duration: Duration,
) -> LeaseStep {
    let Some(spec) = lease else {
        return LeaseStep::Create;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder == identity {
        return LeaseStep::Renew;
    }
    if holder.is_empty() {
        return LeaseStep::Acquire;
    }
    let duration = spec
        .lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map(Duration::from_secs)
        .unwrap_or(default_duration);
    if unchanged_for >= duration {
        LeaseStep::Acquire
    } else {
        LeaseStep::Follow {
            holder: holder.to_string(),
        }
    }
}

/// Remembers the last Lease record seen and since when (by the local monotonic clock).
#[derive(Default)]
struct LeaseObserver {
    last: Option<(Option<String>, Option<MicroTime>, Option<i32>)>,
    since: Option<Instant>,
}

impl LeaseObserver {
    fn observe(&mut self, spec: Option<&LeaseSpec>, now: Instant) -> Duration {
        let record = spec.map(|s| {
            (
                s.holder_identity.clone(),
                s.renew_time.clone(),
                s.lease_transitions,
            )
        });
        if record != self.last || self.since.is_none() {
            self.last = record;
            self.since = Some(now);
        }
        self.since
            .map_or(Duration::ZERO, |since| now.duration_since(since))
    }
}

/// Why one round of the election failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Reading the Lease.
    #[error("reading Lease {namespace}/{name}")]
    Get {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// Creating, renewing, taking over or releasing the Lease.
    #[error("writing Lease {namespace}/{name}")]
    Write {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Runs the election until `shutdown` turns true, publishing leadership on `leader`; releases the
/// Lease on the way out if held.
pub async fn run_election(
    api: Api<Lease>,
    settings: LeaseSettings,
    leader: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
    health: Arc<Health>,
) {
    let mut observer = LeaseObserver::default();
    let mut last_renewal: Option<Instant> = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let is_leader = *leader.borrow();
        match round(&api, &settings, &mut observer).await {
            Ok(true) => {
                last_renewal = Some(Instant::now());
                health.set_lease_reachable(true);
                if !is_leader {
                    tracing::info!(identity = %settings.identity, lease = %settings.name, "became leader");
                    leader.send_replace(true);
                }
            }
            Ok(false) => {
                health.set_lease_reachable(true);
                if is_leader {
                    tracing::warn!(identity = %settings.identity, "another replica holds the lease now; stepping down");
                    leader.send_replace(false);
                }
            }
            Err(error) => {
                health.set_lease_reachable(false);
                tracing::warn!(error = %crate::errors::error_chain(&error), "leader election round failed");
                let overdue =
                    last_renewal.is_none_or(|at| at.elapsed() >= settings.renew_deadline());
                if is_leader && overdue {
                    tracing::warn!(identity = %settings.identity, "could not renew the lease in time; stepping down");
                    leader.send_replace(false);
                }
            }
        }
        let wait = if *leader.borrow() {
            settings.renew_interval()
        } else {
            settings.retry_interval()
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    if *leader.borrow() {
        leader.send_replace(false);
        match release(&api, &settings).await {
            Ok(()) => tracing::info!(lease = %settings.name, "released the lease"),
            Err(error) => {
                tracing::warn!(error = %crate::errors::error_chain(&error), "could not release the lease; it expires by itself");
            }
        }
    }
}

/// One round: read, decide, write. `Ok(true)` when we hold the Lease afterwards.
async fn round(
    api: &Api<Lease>,
    settings: &LeaseSettings,
    observer: &mut LeaseObserver,
) -> Result<bool, LeaseError> {
    let current = api
        .get_opt(&settings.name)
        .await
        .map_err(|source| LeaseError::Get {
            namespace: settings.namespace.clone(),
            name: settings.name.clone(),
            source,
        })?;
    let spec = current.as_ref().and_then(|lease| lease.spec.as_ref());
    let unchanged_for = observer.observe(spec, Instant::now());
    let now = MicroTime(Timestamp::now());
    let step = next_lease_step(spec, &settings.identity, unchanged_for, settings.duration);
    let write_error = |source| LeaseError::Write {
        namespace: settings.namespace.clone(),
        name: settings.name.clone(),
        source,
    };
    let result = match step {
        LeaseStep::Follow { .. } => return Ok(false),
        LeaseStep::Create => {
            let mut metadata = ObjectMeta {
                name: Some(settings.name.clone()),
                namespace: Some(settings.namespace.clone()),
                ..ObjectMeta::default()
            };
            if let Some(owner) = &settings.owner {
                set_pod_owner(&mut metadata, owner);
            }
            let lease = Lease {
                metadata,
                spec: Some(LeaseSpec {
                    holder_identity: Some(settings.identity.clone()),
                    lease_duration_seconds: Some(settings.duration_seconds()),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            api.create(&PostParams::default(), &lease).await
        }
        LeaseStep::Renew | LeaseStep::Acquire => {
            // `current` is Some here: Create is the step for a missing Lease.
            let Some(mut lease) = current else {
                return Ok(false);
            };
            if let Some(owner) = &settings.owner {
                set_pod_owner(&mut lease.metadata, owner);
            }
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if step == LeaseStep::Acquire {
                spec.holder_identity = Some(settings.identity.clone());
                spec.acquire_time = Some(now.clone());
                spec.lease_transitions =
                    Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
            }
            spec.lease_duration_seconds = Some(settings.duration_seconds());
            spec.renew_time = Some(now);
            // `replace` carries the resourceVersion we read: a concurrent writer makes it fail.
            api.replace(&settings.name, &PostParams::default(), &lease)
                .await
        }
    };
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_conflict() || status.is_already_exists() => {
            Ok(false)
        }
        Err(source) => Err(write_error(source)),
    }
}

/// Gives the Lease up (empty holder, 1 s duration) if we still hold it.
async fn release(api: &Api<Lease>, settings: &LeaseSettings) -> Result<(), LeaseError> {
    let current = api
        .get_opt(&settings.name)
        .await
        .map_err(|source| LeaseError::Get {
            namespace: settings.namespace.clone(),
            name: settings.name.clone(),
            source,
        })?;
    let Some(mut lease) = current else {
        return Ok(());
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref() != Some(settings.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    match api
        .replace(&settings.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(()),
        // Someone else wrote it in between: it is not ours to release any more.
        Err(kube::Error::Api(status)) if status.is_conflict() => Ok(()),
        Err(source) => Err(LeaseError::Write {
            namespace: settings.namespace.clone(),
            name: settings.name.clone(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn held_by(holder: Option<&str>, seconds: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_string),
            lease_duration_seconds: Some(seconds),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn missing_lease_is_created_and_ours_is_renewed() {
        assert_eq!(
            next_lease_step(None, "a", Duration::ZERO, MINUTE),
            LeaseStep::Create
        );
        let ours = held_by(Some("a"), 15);
        assert_eq!(
            next_lease_step(Some(&ours), "a", MINUTE, MINUTE),
            LeaseStep::Renew
        );
    }

    #[test]
    fn released_lease_is_taken_at_once() {
        for spec in [held_by(None, 1), held_by(Some(""), 1)] {
            assert_eq!(
                next_lease_step(Some(&spec), "b", Duration::ZERO, MINUTE),
                LeaseStep::Acquire
            );
        }
    }

    #[test]
    fn others_lease_is_taken_only_after_it_went_stale_for_a_whole_duration() {
        let theirs = held_by(Some("a"), 15);
        assert_eq!(
            next_lease_step(Some(&theirs), "b", Duration::from_secs(14), MINUTE),
            LeaseStep::Follow {
                holder: "a".to_string()
            }
        );
        assert_eq!(
            next_lease_step(Some(&theirs), "b", Duration::from_secs(15), MINUTE),
            LeaseStep::Acquire
        );
        let no_duration = LeaseSpec {
            lease_duration_seconds: None,
            ..theirs
        };
        assert!(matches!(
            next_lease_step(Some(&no_duration), "b", Duration::from_secs(30), MINUTE),
            LeaseStep::Follow { .. }
        ));
    }

    #[test]
    fn observer_measures_how_long_the_record_stayed_the_same() {
        let mut observer = LeaseObserver::default();
        let t0 = Instant::now();
        let mut spec = held_by(Some("a"), 15);
        spec.renew_time = Some(MicroTime(Timestamp::UNIX_EPOCH));
        assert_eq!(observer.observe(Some(&spec), t0), Duration::ZERO);
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(observer.observe(Some(&spec), t1), Duration::from_secs(10));
        // A renewal resets the clock.
        spec.renew_time = Some(MicroTime(
            Timestamp::UNIX_EPOCH + jiff::SignedDuration::from_secs(5),
        ));
        assert_eq!(observer.observe(Some(&spec), t1), Duration::ZERO);
        let t2 = t1 + Duration::from_secs(3);
        assert_eq!(observer.observe(Some(&spec), t2), Duration::from_secs(3));
    }

    #[test]
    fn the_leaders_pod_replaces_a_previous_pod_owner_and_keeps_others() {
        let owner = |name: &str| LeaseOwner {
            pod_name: name.to_string(),
            pod_uid: format!("uid-{name}"),
        };
        let mut metadata = ObjectMeta::default();
        assert!(set_pod_owner(&mut metadata, &owner("a")));
        assert!(!set_pod_owner(&mut metadata, &owner("a")), "idempotent");
        let other = OwnerReference {
            api_version: "apps/v1".to_string(),
            kind: "Deployment".to_string(),
            name: "d".to_string(),
            uid: "uid-d".to_string(),
            ..OwnerReference::default()
        };
        metadata
            .owner_references
            .as_mut()
            .unwrap()
            .push(other.clone());
        assert!(set_pod_owner(&mut metadata, &owner("b")));
        assert_eq!(
            metadata.owner_references.unwrap(),
            vec![other, owner("b").owner_reference()]
        );
    }

    #[test]
    fn timings_follow_the_duration() {
        let settings = LeaseSettings {
            name: "l".to_string(),
            namespace: "n".to_string(),
            identity: "a".to_string(),
            duration: Duration::from_secs(15),
            owner: None,
        };
        assert_eq!(settings.renew_interval(), Duration::from_secs(5));
        assert_eq!(settings.renew_deadline(), Duration::from_secs(10));
        assert_eq!(settings.duration_seconds(), 15);
    }
}

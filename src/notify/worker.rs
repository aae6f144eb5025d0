//! The notifier: a task the leader runs beside its controllers (never inside a reconcile). Once a
//! second it observes the cached Incidents (all of them on its first pass, then only those the
//! watch changed and those still owed a delivery:
//! [`crate::controller::cache::ClusterView::take_changed`]), asks [`super::route::due`] what is
//! owed, and hands each delivery to its own task ([`super::deliver`]) — at most [`MAX_IN_FLIGHT`] at once — then records
//! the outcome in `status.notifications` ([`super::record`]), counts it, and raises a Warning Event
//! when it gave up.
//!
//! Exactly-once-ish: a delivery is recorded right after the sink accepted it, and the record is what
//! keeps this replica (after a restart) or the next leader from sending it again. The one window
//! that duplicates a message is a crash (or a lost leadership that outlasts the shutdown grace)
//! between the sink's 2xx and the status write; closing it would need the sink to deduplicate, so
//! the operator prefers an occasional duplicate to a lost notification.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Api, Resource, ResourceExt};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::config::NotifyConfig;
use super::deliver::{RetryPolicy, deliver};
use super::metrics::NotifyMetrics;
use super::record;
use super::route::{Delivery, due};
use super::sinks::Message;
use crate::audit::redact::Redactor;
use crate::controller::events::IncidentEvent;
use crate::controller::reconcile::Context;
use crate::incident::{Incident, NotificationRecord};

/// Deliveries running at once.
pub const MAX_IN_FLIGHT: usize = 8;
/// How often the cache is looked at.
pub const TICK: Duration = Duration::from_secs(1);
/// How long deliveries under way may finish (and be recorded) after the stop signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long a record written here is remembered in memory, until the cache surely shows it.
const REMEMBER: Duration = Duration::from_secs(300);
/// Event reason of a notification given up.
pub const REASON_NOTIFICATION_FAILED: &str = "NotificationFailed";

/// Everything the notifier needs.
pub struct Notifier {
    /// The leader's controller context: its caches, client and Event publisher.
    pub ctx: Arc<Context>,
    pub config: Arc<NotifyConfig>,
    pub metrics: NotifyMetrics,
    pub retry: RetryPolicy,
    pub redactor: Redactor,
}

/// One finished delivery, on its way back to the loop.
struct Finished {
    namespace: String,
    name: String,
    record: NotificationRecord,
    incident: Incident,
}

/// (namespace, name, key)
type DeliveryId = (String, String, String);

impl Notifier {
    /// Runs until `stop` resolves, then lets deliveries under way finish for [`SHUTDOWN_GRACE`].
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        let semaphore = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Finished>();
        let mut tasks = JoinSet::new();
        let mut in_flight: HashSet<DeliveryId> = HashSet::new();
        // Records applied here, by Incident, until the cache has surely caught up.
        let mut written: HashMap<(String, String), Vec<(NotificationRecord, Instant)>> =
            HashMap::new();
        let sinks = Arc::new(self.config.sinks.clone());
        let max_age = self.config.max_age();
        tokio::pin!(stop);
        // The first pass looks at every cached Incident; later passes only at those changed
        // since (from the watch events) and those still owed a delivery.
        self.ctx.view.track_changes();
        let mut first_pass = true;
        let mut owed: HashSet<(String, String)> = HashSet::new();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                Some(finished) = done_rx.recv() => {
                    self.finish(finished, &mut written, &mut in_flight).await;
                    continue;
                }
                _ = tick.tick() => {}
            }
            while tasks.try_join_next().is_some() {}
            written.retain(|_, records| {
                records.retain(|(_, at)| at.elapsed() < REMEMBER);
                !records.is_empty()
            });
            let now = Timestamp::now();
            let candidates = if std::mem::take(&mut first_pass) {
                self.ctx.view.incidents()
            } else {
                let mut keys = self.ctx.view.take_changed();
                keys.extend(owed.drain());
                keys.sort();
                keys.dedup();
                keys.into_iter()
                    .filter_map(|(namespace, name)| self.ctx.view.incident_at(&namespace, &name))
                    .collect()
            };
            for incident in candidates {
                let namespace = incident.namespace().unwrap_or_default();
                let name = incident.name_any();
                let remembered = written.get(&(namespace.clone(), name.clone()));
                let deliveries = due(&incident, &sinks, now, max_age);
                if !deliveries.is_empty() {
                    // Looked at again next pass until nothing is owed (in flight, or written
                    // but not in the cache yet, or its record could not be written).
                    owed.insert((namespace.clone(), name.clone()));
                }
                for delivery in deliveries {
                    let id = (namespace.clone(), name.clone(), delivery.key.clone());
                    let already = remembered
                        .is_some_and(|records| records.iter().any(|(r, _)| r.key == delivery.key));
                    if already || in_flight.contains(&id) {
                        continue;
                    }
                    in_flight.insert(id);
                    tasks.spawn(send_one(
                        http.clone(),
                        semaphore.clone(),
                        sinks.clone(),
                        incident.clone(),
                        delivery,
                        self.redactor.clone(),
                        self.retry.clone(),
                        done_tx.clone(),
                    ));
                }
            }
        }
        // Stopping: let what is under way finish and be recorded, briefly.
        drop(done_tx);
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while !in_flight.is_empty() {
            match tokio::time::timeout_at(deadline, done_rx.recv()).await {
                Ok(Some(finished)) => self.finish(finished, &mut written, &mut in_flight).await,
                Ok(None) | Err(_) => break,
            }
        }
        tasks.abort_all();
    }

    /// Records one finished delivery, counts it, and raises the Event of a failure.
    async fn finish(
        &self,
        finished: Finished,
        written: &mut HashMap<(String, String), Vec<(NotificationRecord, Instant)>>,
        in_flight: &mut HashSet<DeliveryId>,
    ) {
        let Finished {
            namespace,
            name,
            record,
            incident,
        } = finished;
        in_flight.remove(&(namespace.clone(), name.clone(), record.key.clone()));
        let sent = record.last_error.is_none();
        self.metrics.count(&record.sink, sent);
        if !sent {
            let note = format!(
                "notification {} to sink {} failed after {} attempt(s): {}",
                record.event,
                record.sink,
                record.attempts,
                record.last_error.clone().unwrap_or_default()
            );
            tracing::warn!(incident = %format!("{namespace}/{name}"), %note, "notification given up");
            self.ctx
                .events
                .publish(
                    &IncidentEvent::warning(REASON_NOTIFICATION_FAILED, note),
                    &incident.object_ref(&()),
                )
                .await;
        }
        let mine = written
            .entry((namespace.clone(), name.clone()))
            .or_default();
        mine.push((record, Instant::now()));
        // The whole set this manager owns: what the cache shows plus what was written since.
        let mut records: Vec<NotificationRecord> = self
            .ctx
            .view
            .incident_at(&namespace, &name)
            .and_then(|i| i.status)
            .map(|s| s.notifications)
            .unwrap_or_default();
        for (record, _) in mine.iter() {
            records.retain(|r| r.key != record.key);
            records.push(record.clone());
        }
        let api: Api<Incident> = Api::namespaced(self.ctx.client.clone(), &namespace);
        if let Err(error) = record::apply(&api, &name, &records).await {
            // The message went out; only the record is missing, so a later pass may send it again
            // once `REMEMBER` has passed. Say so.
            tracing::warn!(incident = %format!("{namespace}/{name}"), error = %crate::errors::error_chain(&error), "could not record a notification in status");
        }
    }
}

/// Delivers one notification and reports back.
#[allow(clippy::too_many_arguments)]
async fn send_one(
    http: reqwest::Client,
    semaphore: Arc<Semaphore>,
    sinks: Arc<Vec<super::config::SinkConfig>>,
    incident: Incident,
    delivery: Delivery,
    redactor: Redactor,
    retry: RetryPolicy,
    done: mpsc::UnboundedSender<Finished>,
) {
    let Ok(_permit) = semaphore.acquire_owned().await else {
        return;
    };
    let Some(sink) = sinks.get(delivery.sink) else {
        return;
    };
    let message = Message::of(&incident, delivery.event, &delivery.run);
    let outcome = deliver(&http, sink, &message, &redactor, &retry).await;
    let record = record::record(
        &delivery.key,
        &sink.name,
        delivery.event.as_str(),
        &delivery.run,
        Time(Timestamp::now()),
        outcome.attempts,
        outcome.error,
    );
    let _ = done.send(Finished {
        namespace: incident.namespace().unwrap_or_default(),
        name: incident.name_any(),
        record,
        incident,
    });
}

//! Process-level wiring of `incident-operator controller`: check the CRD, serve HTTP (with the
//! Alertmanager intake when enabled), elect a leader, run one kube-runtime `Controller` per watched scope while leading, and shut down cleanly
//! on SIGTERM/SIGINT (stop the controllers, release the Lease, stop the HTTP server).

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use futures::future::{BoxFuture, Shared};
use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Config as ControllerSettings;
use kube::runtime::reflector;
use kube::runtime::{Controller, WatchStreamExt, watcher};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::cache::ClusterView;
use super::events::{EventPublisher, EventReporter};
use super::flags::{ConfigError, ControllerArgs, ControllerConfig, IntakeSettings};
use super::health::Health;
use super::keys;
use super::leader::run_election;
use super::listed_order::{self, ListedOrder};
use super::metrics::Metrics;
use super::reconcile::{Context, QueueWakeup, error_policy, reconcile};
use super::{http, telemetry};
use super::{lean, queued_writes};
use crate::incident::Incident;
use crate::intake::{IntakeConfig, IntakeMetrics, IntakeState, RecurrenceOptions};

/// Name of the controller in Events (`reportingController`).
pub const REPORTING_CONTROLLER: &str = "incident-operator";
/// Prefix of every metric name.
pub const METRICS_PREFIX: &str = "incident_operator";

/// Why the controller could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Flag values the controller cannot work with.
    #[error("invalid configuration")]
    Config(#[source] ConfigError),
    /// Logging could not be set up.
    #[error("setting up logging")]
    Logging(#[source] telemetry::TelemetryError),
    /// The async runtime could not start.
    #[error("starting the async runtime")]
    Runtime(#[source] std::io::Error),
    /// No kubeconfig or in-cluster configuration.
    #[error("connecting to the Kubernetes API (KUBECONFIG or in-cluster configuration)")]
    Client(#[source] kube::Error),
    /// The Incident CRD is missing.
    #[error(
        "the Incident CRD ({}) is not installed; install it with `incident-operator crdgen | kubectl apply -f -`",
        keys::CRD_NAME
    )]
    CrdMissing,
    /// Listing Incidents to check for the CRD failed for another reason.
    #[error("checking that the Incident CRD ({}) is installed", keys::CRD_NAME)]
    CrdCheck(#[source] kube::Error),
    /// SIGTERM/SIGINT handlers could not be installed.
    #[error("installing signal handlers")]
    Signals(#[source] std::io::Error),
    /// The HTTP listener could not bind.
    #[error("listening on {addr}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("serving HTTP")]
    Serve(#[source] std::io::Error),
    /// The intake's bearer token file could not be read.
    #[error("reading the intake token file {path}")]
    IntakeToken {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server task panicked or was cancelled.
    #[error("the HTTP server task ended abnormally")]
    ServerTask(#[source] tokio::task::JoinError),
}

/// Entry point of the subcommand: logging, runtime, client, then [`run`]. Prints the error chain
/// and returns a failure exit code when the controller cannot run.
pub fn main(args: ControllerArgs) -> ExitCode {
    match main_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let mut text = format!("error: {error}");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                text.push_str(&format!("\n  caused by: {cause}"));
                source = cause.source();
            }
            tracing::error!(error = %text, "controller stopped");
            eprintln!("{text}");
            ExitCode::FAILURE
        }
    }
}

fn main_inner(args: ControllerArgs) -> Result<(), RunError> {
    telemetry::init_logging(args.log_format, &args.log_level).map_err(RunError::Logging)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    let result = runtime.block_on(async move {
        let client = Client::try_default().await.map_err(RunError::Client)?;
        let config = args
            .into_config(client.default_namespace(), hostname())
            .map_err(RunError::Config)?;
        let registry = Registry::with_prefix(METRICS_PREFIX);
        run(config, client, registry, None).await
    });
    // Tasks still running (watches, a pod create in flight) must not hold the exit.
    runtime.shutdown_timeout(RUNTIME_GRACE);
    result
}

/// How long tasks left running get once the controller has stopped.
const RUNTIME_GRACE: Duration = Duration::from_millis(500);

/// The host name, from the kernel (for the default identity).
fn hostname() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
}

/// Runs the controller until SIGTERM or SIGINT.
///
/// `registry` should have the [`METRICS_PREFIX`]; other parts of the process (the Alertmanager
/// intake) may have registered their metrics in it already. `extra_routes` are merged into the HTTP
/// server next to `/metrics`, `/healthz` and `/readyz`.
pub async fn run(
    config: ControllerConfig,
    client: Client,
    registry: Registry,
    extra_routes: Option<Router>,
) -> Result<(), RunError> {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    listen_for_signals(shutdown_tx)?;
    run_until(config, client, registry, extra_routes, shutdown_rx).await
}

/// [`run`] with the shutdown signal given by the caller (tests send it; [`run`] wires signals).
pub async fn run_until(
    config: ControllerConfig,
    client: Client,
    mut registry: Registry,
    extra_routes: Option<Router>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), RunError> {
    ensure_crd_installed(&client, &config.namespaces).await?;
    let metrics = Metrics::register(&mut registry);
    let notify_metrics = crate::notify::metrics::NotifyMetrics::register(&mut registry);
    let events = EventPublisher::new(
        client.clone(),
        EventReporter {
            controller: REPORTING_CONTROLLER.to_string(),
            instance: config.identity.clone(),
        },
    );
    let intake = match &config.intake {
        Some(settings) => Some(intake_routes(
            settings,
            RecurrenceOptions {
                cooldown: config.policy.recurrence_cooldown,
                events: Some(events.clone()),
            },
            &client,
            &mut registry,
        )?),
        None => None,
    };
    let health = Arc::new(Health::new(config.lease.is_some()));

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| RunError::Bind {
            addr: config.listen,
            source,
        })?;
    tracing::info!(address = %listener.local_addr().unwrap_or(config.listen), "serving /metrics, /healthz and /readyz");
    let mut routes = http::router(Arc::new(registry), health.clone());
    for extra in [intake, extra_routes].into_iter().flatten() {
        routes = routes.merge(extra);
    }
    let server = tokio::spawn(http::serve(
        listener,
        routes,
        wait_for_true(shutdown.clone()),
    ));

    match config.lease.clone() {
        None => {
            metrics.leader.set(1);
            let stop = shared(wait_for_true(shutdown.clone()));
            run_controllers(
                &config,
                &client,
                &events,
                &metrics,
                &notify_metrics,
                &health,
                stop,
            )
            .await;
        }
        Some(lease) => {
            let (leader_tx, mut leader_rx) = watch::channel(false);
            // The election stops (and releases the Lease) only after the controllers have: a
            // successor must never start while this replica still finishes a reconcile.
            let (election_stop_tx, election_stop_rx) = watch::channel(false);
            let election = tokio::spawn(run_election(
                Api::<Lease>::namespaced(client.clone(), &lease.namespace),
                lease.clone(),
                leader_tx,
                election_stop_rx,
                health.clone(),
            ));
            tracing::info!(identity = %lease.identity, lease = %format!("{}/{}", lease.namespace, lease.name), "waiting for leadership");
            let mut shutdown_seen = shutdown.clone();
            loop {
                tokio::select! {
                    _ = leader_rx.wait_for(|leading| *leading) => {}
                    _ = shutdown_seen.wait_for(|stop| *stop) => break,
                }
                health.set_leading(true);
                metrics.leader.set(1);
                let mut lost = leader_rx.clone();
                let mut stopping = shutdown.clone();
                let stop = shared(async move {
                    tokio::select! {
                        _ = lost.wait_for(|leading| !*leading) => {}
                        _ = stopping.wait_for(|stop| *stop) => {}
                    }
                });
                run_controllers(
                    &config,
                    &client,
                    &events,
                    &metrics,
                    &notify_metrics,
                    &health,
                    stop,
                )
                .await;
                health.set_leading(false);
                metrics.leader.set(0);
                if *shutdown.borrow() {
                    break;
                }
                tracing::warn!("lost leadership; standing by");
            }
            election_stop_tx.send_replace(true);
            if let Err(error) = election.await {
                tracing::warn!(%error, "leader election task ended abnormally");
            }
        }
    }

    // Open keep-alive connections must not hold the process past its shutdown budget.
    match tokio::time::timeout(HTTP_GRACE, server).await {
        Ok(joined) => joined
            .map_err(RunError::ServerTask)?
            .map_err(RunError::Serve),
        Err(_) => {
            tracing::warn!(grace = ?HTTP_GRACE, "HTTP connections still open; closing them");
            Ok(())
        }
    }
}

/// The Alertmanager webhook: its metrics go into `registry`, its token comes from the file.
fn intake_routes(
    settings: &IntakeSettings,
    recurrence: RecurrenceOptions,
    client: &Client,
    registry: &mut Registry,
) -> Result<Router, RunError> {
    let bearer_token = match &settings.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|source| RunError::IntakeToken {
                    path: path.clone(),
                    source,
                })?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let metrics = IntakeMetrics::default();
    metrics.register(registry);
    let state = IntakeState::with_recurrence(
        client.clone(),
        IntakeConfig {
            namespace: settings.namespace.clone(),
            bearer_token,
            max_body_bytes: settings.max_body_bytes,
            limits: crate::intake::IntakeLimits::default(),
        },
        metrics,
        recurrence,
    );
    if !state.auth_enabled() {
        tracing::warn!(
            "the Alertmanager intake accepts unauthenticated requests; set --intake-token-file"
        );
    }
    tracing::info!(namespace = %settings.namespace, path = crate::intake::WEBHOOK_PATH, "serving the Alertmanager intake");
    Ok(crate::intake::router(state))
}

/// A future that resolves once `receiver` holds `true` (or its sender is gone).
async fn wait_for_true(mut receiver: watch::Receiver<bool>) {
    let _ = receiver.wait_for(|value| *value).await;
}

type StopSignal = Shared<BoxFuture<'static, ()>>;

fn shared(future: impl Future<Output = ()> + Send + 'static) -> StopSignal {
    future.boxed().shared()
}

/// On the first SIGTERM or SIGINT, asks everything to stop; on the second, exits at once.
fn listen_for_signals(shutdown: watch::Sender<bool>) -> Result<(), RunError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("shutting down: stopping controllers, releasing the lease");
        shutdown.send_replace(true);
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
    Ok(())
}

/// Lists at most one Incident in every watched scope: a 404 means the CRD is not installed.
async fn ensure_crd_installed(client: &Client, namespaces: &[String]) -> Result<(), RunError> {
    for api in scope_apis::<DeserializeGuard<Incident>>(client, namespaces) {
        match api.list(&ListParams::default().limit(1)).await {
            Ok(_) => {}
            // A real API server answers a group it does not serve with a plain-text
            // `404 page not found`, not a NotFound Status: the code is what to look at.
            Err(kube::Error::Api(status)) if status.code == 404 => {
                return Err(RunError::CrdMissing);
            }
            Err(source) => return Err(RunError::CrdCheck(source)),
        }
    }
    Ok(())
}

/// One `Api` per watched namespace, or one for all namespaces.
fn scope_apis<K>(client: &Client, namespaces: &[String]) -> Vec<Api<K>>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    if namespaces.is_empty() {
        vec![Api::all(client.clone())]
    } else {
        namespaces
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect()
    }
}

/// How long in-flight reconciles get to finish after the stop signal before they are dropped: the
/// whole shutdown (this, releasing the Lease, the HTTP server) must fit well inside 5 s, whatever
/// the backlog. A dropped reconcile is safe: the next leader decides again from the caches, and a
/// pod created just before the drop is found through its owner reference.
const RECONCILE_GRACE: Duration = Duration::from_secs(2);
/// How long the HTTP server gets to finish open requests once the controllers have stopped.
const HTTP_GRACE: Duration = Duration::from_secs(1);
/// Reconciles running at once: each is short (waiting Incidents make no API call), and a bound
/// keeps a backlog of 100,000 from becoming 100,000 futures waiting on the admission lock.
const RECONCILE_CONCURRENCY: u16 = 16;

/// Runs one Controller per scope until `stop` resolves. Each scope has one Incident watch and one
/// agent pod watch; both strip their objects ([`lean`]) before the caches and feed the indexes of
/// the [`ClusterView`] from the same events.
async fn run_controllers(
    config: &ControllerConfig,
    client: &Client,
    events: &EventPublisher,
    metrics: &Metrics,
    notify_metrics: &crate::notify::metrics::NotifyMetrics,
    health: &Arc<Health>,
    stop: StopSignal,
) {
    let pod_watch = watcher::Config::default().labels(keys::AGENT_POD_SELECTOR);
    let incident_apis = scope_apis::<DeserializeGuard<Incident>>(client, &config.namespaces);
    let pod_apis = scope_apis::<Pod>(client, &config.namespaces);
    let scope_names: Vec<Option<String>> = if config.namespaces.is_empty() {
        vec![None]
    } else {
        config.namespaces.iter().cloned().map(Some).collect()
    };

    let approval_apis = scope_apis::<DeserializeGuard<crate::approval::IncidentApproval>>(
        client,
        &config.namespaces,
    );
    let mut approval_readers = Vec::new();
    let mut approval_writers = Vec::new();
    for _ in &scope_names {
        let (reader, writer) =
            reflector::store::<DeserializeGuard<crate::approval::IncidentApproval>>();
        approval_readers.push(reader);
        approval_writers.push(writer);
    }
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    let mut wake_receivers = Vec::new();
    let mut senders = Vec::new();
    for scope in &scope_names {
        let (reader, writer) = reflector::store::<DeserializeGuard<Incident>>();
        readers.push(reader);
        writers.push(writer);
        let (wake_tx, wake_rx) = futures::channel::mpsc::unbounded();
        senders.push((scope.clone(), wake_tx));
        wake_receivers.push(wake_rx);
    }
    let ctx = Arc::new(
        Context::new(
            client.clone(),
            config.pod.clone(),
            config.policy.clone(),
            config.max_agents,
            ClusterView::new(readers.clone()).with_pricing(
                config.pod.defaults.model.clone(),
                config.policy.prices.clone(),
            ),
            events.clone(),
            metrics.clone(),
            QueueWakeup::new(senders),
        )
        .with_approvals(super::approvals::ApprovalCache::new(approval_readers)),
    );

    let mut controllers = Vec::new();
    let mut pods_listed = Vec::new();
    let scopes = incident_apis
        .into_iter()
        .zip(pod_apis)
        .zip(scope_names)
        .zip(readers.into_iter().zip(writers).zip(wake_receivers));
    let mut approval_scopes = approval_apis.into_iter().zip(approval_writers);
    for (((incidents, pods), scope), ((reader, writer), wake_rx)) in scopes {
        // Approvals trigger the Incident they name; their cache is what the reconcile decides
        // from. Without the IncidentApproval CRD this watch retries quietly and nothing waits on it.
        let (approval_api, approval_writer) = approval_scopes
            .next()
            .expect("one approval scope per Incident scope");
        let approval_events = errors_stay_here(
            watcher(approval_api, watcher::Config::default())
                .default_backoff()
                .modify(super::approvals::lean_approval)
                .reflect(approval_writer)
                .applied_objects(),
            "IncidentApproval watch failed (is the IncidentApproval CRD installed?); retrying",
        )
        .take_until(stop.clone());
        // One watch of agent pods per scope feeds both the index the queue counts from and the
        // Controller's triggers; the index is updated before an event is passed on, so a
        // reconcile never sees an older pod than the one that triggered it.
        // Unbounded: the initial list is forwarded before the Controller starts reading (it starts
        // once the Incident cache is ready), so a bound could block the list it is waiting for.
        let (pod_events_tx, pod_events_rx) = futures::channel::mpsc::unbounded();
        let (listed_tx, listed_rx) = tokio::sync::oneshot::channel::<()>();
        pods_listed.push(listed_rx);
        let mut listed_tx = Some(listed_tx);
        let pod_ctx = ctx.clone();
        let pod_scope = scope.clone();
        let pod_driver = watcher(pods, pod_watch.clone())
            .default_backoff()
            .modify(lean::lean_pod)
            .map_ok(move |event| {
                pod_ctx.view.apply_pod_event(pod_scope.as_deref(), &event);
                if matches!(event, watcher::Event::InitDone)
                    && let Some(listed) = listed_tx.take()
                {
                    let _ = listed.send(());
                }
                event
            })
            .touched_objects()
            .take_until(stop.clone())
            .for_each(move |event| {
                match event {
                    // Not passed on: see `errors_stay_here`.
                    Err(error) => tracing::warn!(%error, "agent pod watch failed; retrying"),
                    // The Controller has stopped when its end of the channel is gone.
                    Ok(pod) => {
                        let _ = pod_events_tx.unbounded_send(Ok(pod));
                    }
                }
                futures::future::ready(())
            });
        tokio::spawn(pod_driver);

        let incident_ctx = ctx.clone();
        // Listed Incidents reach the Controller through the feeder, head of the queue first
        // (see `listed_order`); changes after the list are triggers as they come.
        let (lists_tx, lists_rx) = futures::channel::mpsc::unbounded();
        let (listed_tx, listed_rx) = futures::channel::mpsc::unbounded();
        let mut listed = ListedOrder::default();
        let incident_events = watcher(incidents, watcher::Config::default())
            .default_backoff()
            .modify(lean::lean_guarded_incident)
            .reflect(writer)
            .map_ok(move |event| {
                incident_ctx
                    .view
                    .apply_incident_event(scope.as_deref(), &event);
                event
            })
            .filter_map({
                let ctx = ctx.clone();
                move |event| {
                    let trigger = match event {
                        Ok(event) => {
                            let (trigger, list) = listed.observe(event);
                            if let Some(list) = list {
                                tracing::info!(incidents = list.len(), "Incident cache synced");
                                let sorted = listed_order::sort_for_admission(list, |object| {
                                    ctx.view.queue_entry(
                                        object.namespace.as_deref().unwrap_or_default(),
                                        &object.name,
                                    )
                                });
                                // The feeder has stopped only when the Controller has.
                                let _ = lists_tx.unbounded_send(sorted);
                            }
                            trigger.map(Ok)
                        }
                        Err(error) => {
                            // Not passed on: see `errors_stay_here`.
                            tracing::warn!(%error, "Incident watch failed; retrying");
                            None
                        }
                    };
                    futures::future::ready(trigger)
                }
            });
        let feeder_ctx = ctx.clone();
        let feeder_stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = listed_order::feed(lists_rx, listed_tx, &feeder_ctx.pace) => {}
                () = feeder_stop => {}
            }
        });
        let controller = Controller::for_stream(incident_events, reader)
            .with_config(ControllerSettings::default().concurrency(RECONCILE_CONCURRENCY))
            .owns_stream(pod_events_rx)
            .watches_stream(approval_events, super::approvals::incident_of)
            .reconcile_on(wake_rx)
            .reconcile_on(listed_rx);
        controllers.push(controller);
    }

    // No reconcile may count agents before the pod caches have their first list: that is what
    // keeps a restarted controller from starting a second agent for a running Incident.
    tokio::select! {
        results = futures::future::join_all(pods_listed) => {
            if results.iter().any(Result::is_err) {
                tracing::error!("an agent pod watch stopped before its first list");
                return;
            }
        }
        _ = stop.clone() => return,
    }

    // Ready once the pod caches are: kube-runtime holds every reconcile until the Incident cache
    // has its first list too.
    health.set_caches_synced(true);
    tracing::info!("agent pod caches synced");
    tracing::info!(
        namespaces = ?config.namespaces,
        max_agents = config.max_agents,
        "controller running"
    );
    // Notifications go out from the leader only, beside the reconciles, never inside one.
    let notifier = config.policy.notifications.clone().map(|notify_config| {
        tracing::info!(sinks = notify_config.sinks.len(), "sending notifications");
        tokio::spawn(
            crate::notify::worker::Notifier {
                ctx: ctx.clone(),
                config: notify_config,
                metrics: notify_metrics.clone(),
                retry: crate::notify::deliver::RetryPolicy::default(),
                redactor: crate::audit::redact::Redactor::default(),
            }
            .run(stop.clone()),
        )
    });
    let runs = controllers.into_iter().map(|controller| {
        controller
            .graceful_shutdown_on(stop.clone())
            .run(reconcile, error_policy, ctx.clone())
            .for_each(|result| async move {
                match result {
                    Ok((object, _)) => tracing::debug!(incident = %object, "reconciled"),
                    Err(error) => tracing::debug!(%error, "reconcile did not complete"),
                }
            })
    });
    let notifier_abort = notifier.as_ref().map(tokio::task::JoinHandle::abort_handle);
    let notifier_done = async {
        if let Some(notifier) = notifier
            && let Err(error) = notifier.await
            && !error.is_cancelled()
        {
            tracing::warn!(%error, "the notifier ended abnormally");
        }
    };
    let reconciles = async {
        tokio::select! {
            _ = futures::future::join_all(runs) => {}
            _ = queued_writes::run(ctx.clone()) => {}
        }
    };
    let work = async {
        tokio::join!(reconciles, notifier_done);
    };
    let deadline = async {
        stop.clone().await;
        tokio::time::sleep(RECONCILE_GRACE).await;
    };
    tokio::select! {
        _ = work => {}
        _ = deadline => {
            tracing::warn!(grace = ?RECONCILE_GRACE, "reconciles or notifications still running after the grace period; dropping them");
        }
    }
    // The notifier's own grace is cut to the controller's: shutdown stays bounded.
    if let Some(abort) = notifier_abort {
        abort.abort();
    }
    health.set_caches_synced(false);
    tracing::info!(
        unwritten_queued_statuses = ctx.queued_writes.len(),
        "controller stopped"
    );
}

/// Logs a watch's errors and passes on only its objects. kube-runtime's Controller puts one
/// backoff over all its trigger streams together, so an error from any of them (the
/// IncidentApproval watch on a cluster without that CRD, say) would pause the others too: a
/// 10,000-Incident list then took 467 s instead of 2 s. Each watcher already backs off on its own.
fn errors_stay_here<T>(
    stream: impl futures::Stream<Item = Result<T, watcher::Error>>,
    what: &'static str,
) -> impl futures::Stream<Item = Result<T, watcher::Error>> {
    stream.filter_map(move |event| {
        futures::future::ready(match event {
            Ok(object) => Some(Ok(object)),
            Err(error) => {
                tracing::warn!(%error, "{what}");
                None
            }
        })
    })
}

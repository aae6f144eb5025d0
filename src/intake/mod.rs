//! Alertmanager intake: the `POST /alertmanager` webhook that turns firing alerts into Incidents.
//!
//! Flow of one request: [`handler`] checks the bearer token, content type and size, [`payload`]
//! parses the version-4 body, then [`ingest`] records each alert under its fingerprint's lock:
//! [`mapping`] says what Incident an alert raises and what it is called, [`dedup`] whether to
//! create one or count another occurrence on the open one, [`single_flight`] batches concurrent
//! alerts of one fingerprint so one task does the API calls for all, and [`store`] makes them.
//! [`metrics`] counts all of it.
//!
//! Guarantees: one open Incident per alert fingerprint, even under a burst of concurrent
//! notifications, because names are deterministic (a duplicate create fails with 409 and is
//! treated as deduplication) and alerts of one fingerprint are handled by one task at a time. The
//! alert's activity (occurrences, first/last seen, resolvedAt) lives in `status.alert`, written by
//! server-side apply under the field manager [`FIELD_MANAGER`] and nothing else.

pub mod dedup;
pub mod handler;
pub mod ingest;
pub mod limits;
pub mod mapping;
pub mod metrics;
pub mod ownership;
pub mod payload;
pub mod sanitize;
pub mod single_flight;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

pub use handler::{WEBHOOK_PATH, router};
pub use ingest::IngestSummary;
pub use limits::IntakeLimits;
pub use metrics::IntakeMetrics;

use ingest::AlertReply;
use payload::Alert;
use single_flight::Batcher;
use store::IncidentStore;

/// Field manager of every `status.alert` write; the intake owns no other field.
pub const FIELD_MANAGER: &str = "incident-operator-intake";
/// Label on intake-created Incidents: the alert's fingerprint (the deduplication key).
pub const LABEL_FINGERPRINT: &str = "sre.agentlab.dev/fingerprint";
/// Label on intake-created Incidents: the alert name in DNS-1123 form.
pub const LABEL_ALERTNAME: &str = "sre.agentlab.dev/alertname";
/// Label on intake-created Incidents: 1 for the first Incident of a fingerprint, n for the n-th.
pub const LABEL_GENERATION: &str = "sre.agentlab.dev/alert-generation";
/// Default limit of a webhook body: 1 MiB, far above what Alertmanager sends for one group.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// How the intake is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntakeConfig {
    /// Namespace the Incidents are created in.
    pub namespace: String,
    /// Token Alertmanager must send as `Authorization: Bearer <token>` (its `http_config`
    /// `authorization.credentials`). `None` (or empty) disables authentication, with a warning.
    pub bearer_token: Option<String>,
    /// Larger bodies are refused with 413.
    pub max_body_bytes: usize,
    /// Timeouts, per-request and per-sender caps.
    pub limits: IntakeLimits,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        Self {
            namespace: "default".to_string(),
            bearer_token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            limits: IntakeLimits::default(),
        }
    }
}

/// Everything a webhook request needs; cheap to clone (one shared inner value).
#[derive(Clone)]
pub struct IntakeState {
    inner: Arc<IntakeInner>,
}

struct IntakeInner {
    store: IncidentStore,
    namespace: String,
    /// SHA-256 of the expected bearer token; compared in constant time with the sent token's.
    token_digest: Option<[u8; 32]>,
    max_body_bytes: usize,
    limits: IntakeLimits,
    sender_rate: limits::SenderRate,
    metrics: IntakeMetrics,
    /// One single flight per alert fingerprint.
    batcher: Arc<Batcher<Alert, AlertReply>>,
    /// Cool-down after a finished Incident during which firings are only counted
    /// (`src/recurrence/`); zero turns the policy off.
    recurrence_cooldown: Duration,
    /// Where the `Recurred` Event goes; none in tests that run the intake alone.
    events: Option<crate::controller::events::EventPublisher>,
}

/// What the intake does beyond creating and counting: the recurrence policy and its Events.
#[derive(Clone, Default)]
pub struct RecurrenceOptions {
    /// Default cool-down; an alert's `recurrence_cooldown` label or annotation overrides it.
    /// Zero (the default here) keeps "every firing after a finish is a new investigation".
    pub cooldown: Duration,
    pub events: Option<crate::controller::events::EventPublisher>,
}

impl IntakeState {
    /// State for [`router`]: Incidents go to `config.namespace` through `client`.
    pub fn new(client: kube::Client, config: IntakeConfig, metrics: IntakeMetrics) -> Self {
        Self::with_recurrence(client, config, metrics, RecurrenceOptions::default())
    }

    /// [`IntakeState::new`] with the recurrence policy switched on as `recurrence` says.
    pub fn with_recurrence(
        client: kube::Client,
        config: IntakeConfig,
        metrics: IntakeMetrics,
        recurrence: RecurrenceOptions,
    ) -> Self {
        let token_digest = config
            .bearer_token
            .as_deref()
            .filter(|token| !token.trim().is_empty())
            .map(handler::token_digest);
        Self {
            inner: Arc::new(IntakeInner {
                store: IncidentStore::new(
                    client,
                    &config.namespace,
                    metrics.clone(),
                    ownership::OwnershipKey::from_token(config.bearer_token.as_deref()),
                ),
                namespace: config.namespace,
                token_digest,
                max_body_bytes: config.max_body_bytes,
                limits: config.limits,
                sender_rate: limits::SenderRate::new(config.limits.alerts_per_minute),
                metrics,
                batcher: Arc::new(Batcher::default()),
                recurrence_cooldown: recurrence.cooldown,
                events: recurrence.events,
            }),
        }
    }

    /// Whether requests must carry the bearer token.
    pub fn auth_enabled(&self) -> bool {
        self.inner.token_digest.is_some()
    }
}

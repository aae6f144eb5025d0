//! The `Incident` custom resource (`sre.agentlab.dev/v1alpha1`), defined once and shared by every
//! subcommand: `investigate` reads it from a file, `agent` from the API server, the controller watches
//! it, and `crdgen` prints the CRD generated from these types.
//!
//! The agent's report and usage types live here too, because the same structs are written into the
//! Incident's status, into the audit file and (for the report) offered to the model as the `report`
//! tool's input schema.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, CustomResourceExt, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::plan::{ApprovalRecord, Plan, ProposedPlan};

/// API group of every resource this operator serves.
pub const API_GROUP: &str = "sre.agentlab.dev";
/// The one served version.
pub const API_VERSION: &str = "v1alpha1";

/// An incident to investigate: what fired, how bad it is, and how the agent may act on it.
// One `printcolumn(...)` per column is kube's documented form; clippy reads them as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "sre.agentlab.dev",
    version = "v1alpha1",
    kind = "Incident",
    plural = "incidents",
    shortname = "inc",
    category = "sre",
    namespaced,
    status = "IncidentStatus",
    doc = "An alert or a manual report that an agent investigates with a read-only shell.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Severity", type_ = "string", json_path = ".spec.severity"),
    printcolumn(name = "Outcome", type_ = "string", json_path = ".status.outcome"),
    printcolumn(
        name = "Resolved",
        type_ = "boolean",
        json_path = ".status.report.resolved"
    ),
    printcolumn(name = "Turns", type_ = "integer", json_path = ".status.usage.turns"),
    printcolumn(name = "Cost", type_ = "number", json_path = ".status.usage.costUSD"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Title",
        type_ = "string",
        json_path = ".spec.title",
        priority = "1"
    ),
    printcolumn(
        name = "Summary",
        type_ = "string",
        json_path = ".status.report.summary",
        priority = "1"
    )
)]
#[x_kube(validation = Rule::new("self.source != 'alertmanager' || has(self.alert)")
    .message("spec.alert is required when spec.source is alertmanager"))]
#[serde(rename_all = "camelCase")]
pub struct IncidentSpec {
    /// One line that names the problem, e.g. "checkout-api 5xx rate above 5%".
    #[schemars(length(min = 1, max = 256))]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self.matches('\\\\S')", "message": "title must not be blank"},
        {"rule": "!self.matches('[\\\\x00-\\\\x1f\\\\x7f\\\\x{200e}\\\\x{200f}\\\\x{202a}-\\\\x{202e}\\\\x{2066}-\\\\x{2069}]')",
         "message": "title must not contain control characters (ANSI escapes, NUL, newlines, bidirectional overrides)"}
    ]))]
    pub title: String,
    /// Free text: what was observed, what is affected, anything already tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16384))]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "!self.matches('[\\\\x00-\\\\x08\\\\x0b\\\\x0c\\\\x0e-\\\\x1f\\\\x7f\\\\x{200e}\\\\x{200f}\\\\x{202a}-\\\\x{202e}\\\\x{2066}-\\\\x{2069}]')",
         "message": "description must not contain control characters other than tab and newline"}
    ]))]
    pub description: Option<String>,
    /// How urgent the incident is; critical incidents are started first when agents are queued.
    #[serde(default)]
    pub severity: Severity,
    /// Where the incident came from.
    #[serde(default)]
    pub source: IncidentSource,
    /// The alert that raised the incident, when it came from Alertmanager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<Box<AlertRef>>,
    /// A runbook: a URL or the steps themselves. The agent follows it before improvising.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32768))]
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "!self.matches('[\\\\x00-\\\\x08\\\\x0b\\\\x0c\\\\x0e-\\\\x1f\\\\x7f\\\\x{200e}\\\\x{200f}\\\\x{202a}-\\\\x{202e}\\\\x{2066}-\\\\x{2069}]')",
         "message": "runbook must not contain control characters other than tab and newline"}
    ]))]
    pub runbook: Option<String>,
    /// `investigate` (default) only reads; `remediate` may change state where RBAC allows it.
    #[serde(default)]
    pub mode: Mode,
    /// Per-incident overrides of the agent's model and limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Box<AgentOverrides>>,
    /// Earlier finished Incidents of the same alert, newest first, written by the intake when it
    /// creates the next generation (see `src/recurrence/`). The agent's brief recalls them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    pub predecessors: Vec<Predecessor>,
    /// Per-incident changes to who is notified (see `docs/notifications.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<Box<NotificationOverrides>>,
}

/// What the intake recalls of one earlier Incident of the same fingerprint; every text is redacted
/// and bounded before it is written.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Predecessor {
    /// Name of the earlier Incident (same namespace).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// When it finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub finished_at: Option<String>,
    /// How its session ended (`reported`, `limit_reached`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub root_cause: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    pub actions_taken: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 5))]
    pub recommendations: Vec<String>,
    /// Firings counted on it during its cool-down instead of new investigations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrences: Option<u32>,
}

/// Per-incident notification routing: sinks to add on top of the configured routes, sinks to
/// silence, or silence for all of them.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NotificationOverrides {
    /// Sinks (by their configured name) that get this Incident's events even if their routes
    /// would not select it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 16),
        inner(
            length(min = 1, max = 63),
            regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
        )
    )]
    pub add: Vec<String>,
    /// Sinks (by name) that never get this Incident's events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 16),
        inner(
            length(min = 1, max = 63),
            regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
        )
    )]
    pub silence: Vec<String>,
    /// When true, nothing is sent about this Incident (`add` included).
    #[serde(default)]
    pub silence_all: bool,
}

/// Incident severity, mapped from the alert's `severity` label.
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Ordered first: the queue starts critical incidents before others.
    Critical,
    #[default]
    Warning,
    Info,
}

/// Where an incident came from.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum IncidentSource {
    /// Created by the Alertmanager webhook intake.
    Alertmanager,
    /// Created by a person or another tool (`kubectl apply`).
    #[default]
    Manual,
}

/// What the agent may do.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Read-only: the agent must not run state-changing commands.
    #[default]
    Investigate,
    /// The agent may remediate, within the RBAC the chart grants for remediation.
    Remediate,
}

/// Most labels `spec.alert.labels` holds (the intake keeps the first by name).
pub const MAX_ALERT_LABELS: usize = 64;
/// Longest label value in `spec.alert.labels`.
pub const MAX_ALERT_LABEL_VALUE_CHARS: usize = 1024;
/// Most annotations `spec.alert.annotations` holds.
pub const MAX_ALERT_ANNOTATIONS: usize = 32;
/// Longest annotation value in `spec.alert.annotations`.
pub const MAX_ALERT_ANNOTATION_VALUE_CHARS: usize = 4096;
/// Longest label or annotation name the intake keeps.
pub const MAX_ALERT_KEY_CHARS: usize = 256;

/// The alert behind an incident, as Alertmanager sent it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlertRef {
    /// The `alertname` label.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Alertmanager's fingerprint of the label set; the deduplication key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub fingerprint: Option<String>,
    /// The alert's labels; at most 64, values at most 1024 characters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64, "additionalProperties" = {"type": "string", "maxLength": 1024}))]
    pub labels: BTreeMap<String, String>,
    /// The alert's annotations; at most 32, values at most 4096 characters.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 32, "additionalProperties" = {"type": "string", "maxLength": 4096}))]
    pub annotations: BTreeMap<String, String>,
    /// When the alert started firing (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    /// Link to the expression that fired.
    #[serde(
        default,
        rename = "generatorURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub generator_url: Option<String>,
}

/// Per-incident overrides of the agent's defaults; each is bounded so one Incident cannot buy an
/// unbounded session.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.commandTimeoutSeconds) || !has(self.sessionTimeoutSeconds) || self.commandTimeoutSeconds <= self.sessionTimeoutSeconds",
     "message": "commandTimeoutSeconds must not exceed sessionTimeoutSeconds"}
]))]
pub struct AgentOverrides {
    /// Claude model id, e.g. `claude-sonnet-4-5`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub model: Option<String>,
    /// Most model turns before the session ends with `limit_reached`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 200))]
    pub max_turns: Option<u32>,
    /// Most seconds one shell command may run before its process group is killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub command_timeout_seconds: Option<u32>,
    /// Wall-clock deadline of the whole session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 10, max = 86400))]
    pub session_timeout_seconds: Option<u32>,
    /// Token budget of the whole session: input + output tokens summed over all turns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1000, max = 100000000))]
    pub max_tokens: Option<u64>,
}

/// Lifecycle phase of an Incident.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Seen, no agent yet.
    Pending,
    /// Waiting for a free agent slot.
    Queued,
    /// An agent is working on it.
    Running,
    /// A remediate-mode investigation proposed a plan (`status.plan`); waiting for a human's
    /// `IncidentApproval` before the execution session starts.
    AwaitingApproval,
    /// The agent finished (with a report or a limit).
    Completed,
    /// The agent could not run or kept failing.
    Failed,
}

impl Phase {
    /// Whether the incident needs no further agent runs (until a rerun is requested).
    pub fn is_finished(self) -> bool {
        matches!(self, Phase::Completed | Phase::Failed)
    }
}

/// How an agent session ended.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The model filed a report.
    Reported,
    /// A turn, time or token limit ended the session first; `status.message` says which.
    LimitReached,
    /// The model declined to continue (`stop_reason: refusal`).
    Refused,
    /// The session failed (API error, invalid configuration); `status.message` says why.
    Error,
    /// A human rejected the proposed plan (`status.approval`).
    Rejected,
    /// Nobody approved the proposed plan before `status.plan.expiresAt`.
    ApprovalExpired,
}

impl Outcome {
    /// The outcome as it appears in the status, the audit and notifications.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Reported => "reported",
            Outcome::LimitReached => "limit_reached",
            Outcome::Refused => "refused",
            Outcome::Error => "error",
            Outcome::Rejected => "rejected",
            Outcome::ApprovalExpired => "approval_expired",
        }
    }
}

// The parts only some Incidents or some phases have (`report`, `plan`, `approval`, `usage`,
// `audit`, `alert`) are boxed, as are the spec's optional `alert`, `agent` and `notifications`:
// the controller caches every Incident, and inline they made each one 1,672 bytes before any
// string (boxed: at most 768, `the_cached_incident_stays_small`). The schema is the same.
/// Observed state, written by the controller and the agent.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IncidentStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Standard conditions (`Ready`, `AgentRunning`, …), one per type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Audit session id of the latest agent run: `YYYY-MM-DDTHH-MM-SS-xxxxxxxx`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Name of the latest agent pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_pod: Option<String>,
    /// Agent runs started so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// How the latest session ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Human-readable detail of the current phase or outcome (which limit, which error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The latest command the agent ran (redacted, shortened), while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Box<Report>>,
    /// The remediation plan waiting for (or given) a human decision, with the hash an
    /// `IncidentApproval` must name (remediate mode only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Box<ProposedPlan>>,
    /// The approval or rejection the controller acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Box<ApprovalRecord>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Box<Usage>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<Box<AuditSummary>>,
    /// How often Alertmanager has sent the alert behind this Incident, and whether it has resolved.
    /// Written only by the webhook intake (field manager `incident-operator-intake`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<Box<AlertActivity>>,
    /// Notifications delivered (or given up) for this Incident, one entry per sink, event and
    /// run; the record that keeps a restarted or second controller from sending them again.
    /// Written only by the notifier (field manager `incident-operator-notify`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["key"]))]
    pub notifications: Vec<NotificationRecord>,
}

/// One notification of one Incident to one sink.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRecord {
    /// `<sink>/<event>/<run>`: unique per Incident, the list-map key.
    #[schemars(length(min = 1, max = 200))]
    pub key: String,
    #[schemars(length(min = 1, max = 63))]
    pub sink: String,
    /// `completed`, `failed`, `limit_reached`, `recurred`, `budget_exhausted`, `awaiting_approval`.
    #[schemars(length(min = 1, max = 32))]
    pub event: String,
    /// The run it belongs to (the rerun id, `initial` for the first run).
    #[schemars(length(max = 128))]
    pub run: String,
    /// `sent` or `failed` (given up after the retries).
    #[schemars(length(min = 1, max = 16))]
    pub state: String,
    /// When it was sent, or given up (RFC 3339).
    pub time: Time,
    /// HTTP attempts made.
    pub attempts: u32,
    /// The last error, redacted; empty when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub last_error: Option<String>,
}

/// The alert's activity since the Incident was created, as the webhook intake observed it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlertActivity {
    /// Firing notifications received for this alert while the Incident was open, the first included.
    /// Alertmanager re-sends a firing alert every `repeat_interval` and whenever its group changes.
    #[schemars(range(min = 1))]
    pub occurrences: u32,
    /// When the intake received the first firing notification.
    pub first_seen: Time,
    /// When the intake received the latest firing notification.
    pub last_seen: Time,
    /// When the alert resolved (Alertmanager's `endsAt`); cleared if it fires again while the
    /// Incident is open. Resolving records the fact; it does not close the Incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Time>,
    /// Firings after the Incident finished and within the recurrence cool-down: each was counted
    /// here instead of starting a new investigation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrences: Option<u32>,
    /// When the latest of those recurrences arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_recurrence: Option<Time>,
}

/// The agent's findings, filed through the `report` tool.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Two or three sentences an on-call engineer reads first.
    #[schemars(length(min = 1, max = 4096))]
    pub summary: String,
    /// The most likely root cause, or what is still unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub root_cause: Option<String>,
    /// Facts that support the conclusion, each naming the command or source it came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub evidence: Vec<String>,
    /// Changes the agent made (remediate mode only); empty in investigate mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub actions_taken: Vec<String>,
    /// What a human should do next, most important first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub recommendations: Vec<String>,
    /// Remediation the agent proposes for a human to approve (remediate mode, investigation
    /// session only); nothing in it has run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// How sure the agent is of the root cause.
    pub confidence: Confidence,
    /// Whether the problem is over (it recovered, or the agent fixed it).
    pub resolved: bool,
}

/// The agent's confidence in its root cause.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    #[default]
    Low,
    Medium,
    High,
}

/// What a session consumed; tokens as the Messages API reported them.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub turns: u32,
    pub tool_calls: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// What these tokens cost in US dollars, from the operator's price table for the model
    /// (`src/budget/prices.rs`); absent when the model has no price.
    #[serde(default, rename = "costUSD", skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

impl Usage {
    /// Every token billed for the session, cached or not.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens
    }
}

/// Where the full audit lives and the latest entries of it, bounded to keep the object small.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditSummary {
    /// Path of the complete audit document on the audit volume.
    pub path: String,
    /// SHA-256 (hex) of that document, so a copy can be checked against what the agent wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 64, max = 64))]
    pub sha256: Option<String>,
    /// SHA-256 (hex) of the audit's last JSONL record: the head of its hash chain
    /// (`docs/audit.md`), which `kubectl incident verify` recomputes from the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 64, max = 64))]
    pub chain_head: Option<String>,
    /// How many records the audit's JSONL file holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_count: Option<u64>,
    /// The latest entries, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub entries: Vec<AuditStatusEntry>,
    /// True when older entries were left out of `entries`.
    #[serde(default)]
    pub truncated: bool,
}

/// One audit event, shortened for the Incident's status.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditStatusEntry {
    /// Position in the audit log.
    pub seq: u64,
    /// RFC 3339 time of the event.
    pub time: String,
    /// Event kind as in the audit log (`tool_call`, `model_response`, `error`, …).
    pub event: String,
    /// Short, redacted detail: the command, the stop reason, the error.
    #[schemars(length(max = 1024))]
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_out: Option<bool>,
    /// True when the tool call's stdout or stderr was cut to the capture limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_truncated: Option<bool>,
}

/// What an agent pod writes to its termination message (`/dev/termination-log`, at most 4096 bytes):
/// enough for the controller to finish the Incident's status if the agent died before its last status
/// patch, or could not patch at all.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AgentTermination {
    pub session_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The report's summary, shortened to fit the 4 KiB limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Confidence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_chain_head: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_record_count: Option<u64>,
}

/// Kubernetes caps a container's termination message at 4096 bytes.
pub const TERMINATION_MESSAGE_MAX_BYTES: usize = 4096;

/// The CRD as YAML, as `incident-operator crdgen` prints it and `crds/incidents.yaml` holds it.
pub fn crd_yaml() -> String {
    generated_crd_yaml(&Incident::crd(), "src/incident.rs")
}

/// A CRD as `crdgen` prints it: a header naming the Rust `source` it comes from, then the YAML.
pub fn generated_crd_yaml(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    source: &str,
) -> String {
    let body = serde_saphyr::to_string(crd).expect("a CRD always serializes to YAML");
    format!(
        "# Generated by `incident-operator crdgen` from {source}; do not edit by hand.\n---\n{body}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The controller caches every Incident whole (`src/controller/lean.rs`): its inline size is
    /// paid once per Incident, 10,000 times for a backlog of 10,000 (not timed: a size).
    #[test]
    fn the_cached_incident_stays_small() {
        let size = std::mem::size_of::<Incident>();
        assert!(
            size <= 768,
            "an Incident is {size} bytes inline; box the optional parts that made it grow"
        );
    }

    #[test]
    fn minimal_spec_gets_defaults() {
        let spec: IncidentSpec = serde_json::from_str(r#"{"title":"disk full"}"#).unwrap();
        assert_eq!(spec.severity, Severity::Warning);
        assert_eq!(spec.mode, Mode::Investigate);
        assert_eq!(spec.source, IncidentSource::Manual);
    }

    #[test]
    fn unknown_severity_is_rejected() {
        let err = serde_json::from_str::<IncidentSpec>(r#"{"title":"x","severity":"urgent"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
    }

    #[test]
    fn severity_orders_critical_first() {
        let mut all = vec![Severity::Info, Severity::Critical, Severity::Warning];
        all.sort();
        assert_eq!(
            all,
            vec![Severity::Critical, Severity::Warning, Severity::Info]
        );
    }

    #[test]
    fn crd_names_and_columns() {
        let crd = Incident::crd();
        assert_eq!(crd.spec.group, API_GROUP);
        assert_eq!(crd.spec.names.short_names, Some(vec!["inc".to_string()]));
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, API_VERSION);
        let columns: Vec<_> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        for want in ["Phase", "Severity", "Outcome", "Resolved", "Turns", "Age"] {
            assert!(
                columns.contains(&want),
                "missing column {want}: {columns:?}"
            );
        }
        let yaml = crd_yaml();
        assert!(
            yaml.contains("x-kubernetes-validations"),
            "CEL rule missing"
        );
        assert!(
            yaml.contains("x-kubernetes-list-map-keys"),
            "conditions list-map missing"
        );
    }
}

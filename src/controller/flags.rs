//! Flags of `incident-operator controller`, each with an environment variable fallback and a
//! default, and their translation into the controller's configuration.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{ArgAction, Args, ValueEnum};
use jiff::SignedDuration;

use super::leader::{LeaseOwner, LeaseSettings};
use super::lifecycle::Policy;
use super::pod::{AgentDefaults, AgentPodConfig, AgentResources, AuditVolume};
use crate::budget::{BudgetLimits, PriceTable};

/// Default agent image: the agent image (docker/agent.Dockerfile) of this very version.
const DEFAULT_AGENT_IMAGE: &str = concat!(
    "ghcr.io/sre-agentlab/incident-operator-agent:",
    env!("CARGO_PKG_VERSION")
);

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log pipelines).
    Json,
    /// Human-readable lines.
    Text,
}

/// Flags of the `controller` subcommand.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Controller")]
pub struct ControllerArgs {
    /// Namespaces whose Incidents to watch (repeat the flag or separate with commas); all
    /// namespaces when not given.
    #[arg(
        long = "namespace",
        env = "INCIDENT_OPERATOR_NAMESPACES",
        value_delimiter = ','
    )]
    pub namespaces: Vec<String>,

    /// Container image of the agent pods (it must contain this binary).
    #[arg(long, env = "INCIDENT_OPERATOR_AGENT_IMAGE", default_value = DEFAULT_AGENT_IMAGE, help_heading = "Agent pods")]
    pub agent_image: String,

    /// imagePullPolicy of the agent container.
    #[arg(
        long,
        env = "INCIDENT_OPERATOR_AGENT_IMAGE_PULL_POLICY",
        default_value = "IfNotPresent",
        help_heading = "Agent pods"
    )]
    pub agent_image_pull_policy: String,

    /// ServiceAccount the agent pods run as (their shell's permissions; keep it small).
    #[arg(
        long,
        env = "INCIDENT_OPERATOR_AGENT_SERVICE_ACCOUNT",
        default_value = "incident-agent",
        help_heading = "Agent pods"
    )]
    pub agent_service_account: String,

    /// ServiceAccount for Incidents in `remediate` mode (it may change things); without it those
    /// run under --agent-service-account and can only read.
    #[arg(
        long,
        env = "INCIDENT_OPERATOR_AGENT_REMEDIATION_SERVICE_ACCOUNT",
        help_heading = "Agent pods"
    )]
    pub agent_remediation_service_account: Option<String>,

    /// Secret holding the Anthropic API key, in each Incident's namespace.
    #[arg(
        long,
        env = "INCIDENT_OPERATOR_API_KEY_SECRET",
        default_value = "anthropic-api-key",
        help_heading = "Agent pods"
    )]
    pub api_key_secret: String,

    /// Key of the API key inside that Secret.
    #[arg(
        long,
        env = "INCIDENT_OPERATOR_API_KEY_SECRET_KEY",
        default_value = "api-key",
        help_heading = "Agent pods"
    )]
    pub api_key_secret_key: String,

    /// Base URL of the Anthropic API as the agents should use it (a gateway or proxy); the
    /// Anthropic default when not given.
    #[arg(
        long,
        env = "INCIDENT_OPERATOR_ANTHROPIC_BASE_URL",
        help_heading = "Agent pods"
    )]
    pub anthropic_base_url: Option<String>,

    /// PersistentVolumeClaim for the audit logs (ReadWriteMany if agents run on several nodes);
    /// without it each pod writes to an emptyDir that is lost with the pod.
    #[arg(long, env = "INCIDENT_OPERATOR_AUDIT_PVC", help_heading = "Agent pods")]
    pub audit_pvc: Option<String>,

    /// CPU request of the agent container (empty for none).
    #[arg(
        long,
        env = "INCIDENT_OPERATOR_AGENT_CPU_REQUEST",
        default_value = "100m",
        help_heading = "Agent pods"
    )]
    pub agent_cpu_request: String,

    /// Memory request of the agent container (empty for none).
    #[arg(
        long,
        env = "INCIDENT_OPERATOR_AGENT_MEMORY_REQUEST",
        default_value = "128Mi",
        help_heading = "Agent pods"
    )]
    pub agent_memory_request: String,

    /// CPU limit of the agent container (empty for none).
    #[arg(
        long,
        env = "INCIDENT_OPERATOR_AGENT_CPU_LIMIT",
        default_value = "1",
        help_heading = "Agent pods"
    )]
    pub agent_cpu_limit: String,

    /// Memory limit of the agent container (empty for none).
    #[arg(
        long,
        env = "INCIDENT_OPERATOR_AGENT_MEMORY_LIMIT",
        default_value = "512Mi",
        help_heading = "Agent pods"
    )]
    pub agent_memory_limit: String,

    /// Claude model the agents use unless an Incident's spec.agent.model says otherwise.
    #[arg(
        long,
        env = "INCIDENT_OPERATOR_MODEL",
        default_value = crate::anthropic::DEFAULT_MODEL,
        help_heading = "Agent defaults"
    )]
    pub model: String,

    /// Most model turns per session (spec.agent.maxTurns overrides).
    #[arg(long, env = "INCIDENT_OPERATOR_MAX_TURNS", default_value_t = crate::agent::settings::DEFAULT_MAX_TURNS, value_parser = clap::value_parser!(u32).range(1..=200), help_heading = "Agent defaults")]
    pub max_turns: u32,

    /// Most time one shell command may run, e.g. `60s` (spec.agent.commandTimeoutSeconds overrides).
    #[arg(long, env = "INCIDENT_OPERATOR_COMMAND_TIMEOUT", default_value = "120s", value_parser = parse_duration, help_heading = "Agent defaults")]
    pub command_timeout: Duration,

    /// Wall-clock limit of a whole session, e.g. `15m` (spec.agent.sessionTimeoutSeconds
    /// overrides). The pod's activeDeadlineSeconds is this plus 60 s.
    #[arg(long, env = "INCIDENT_OPERATOR_SESSION_TIMEOUT", default_value = "15m", value_parser = parse_duration, help_heading = "Agent defaults")]
    pub session_timeout: Duration,

    /// Token budget of a session, input plus output over all turns (spec.agent.maxTokens overrides).
    #[arg(long, env = "INCIDENT_OPERATOR_MAX_TOKENS", default_value_t = 2_000_000, value_parser = clap::value_parser!(u64).range(1000..), help_heading = "Agent defaults")]
    pub max_tokens: u64,

    /// Most agent pods running at once; further Incidents wait in phase Queued.
    #[arg(long, env = "INCIDENT_OPERATOR_MAX_CONCURRENT_AGENTS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000), help_heading = "Scheduling")]
    pub max_concurrent_agents: u32,

    /// Retries after a failed agent attempt before the Incident is marked Failed.
    #[arg(long, env = "INCIDENT_OPERATOR_BACKOFF_LIMIT", default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=20), help_heading = "Scheduling")]
    pub backoff_limit: u32,

    /// Wait before the first retry, doubled for each further one (at most 10 minutes).
    #[arg(long, env = "INCIDENT_OPERATOR_RETRY_BACKOFF", default_value = "10s", value_parser = parse_duration, help_heading = "Scheduling")]
    pub retry_backoff: Duration,

    /// How long finished agent pods are kept (for `kubectl logs`) before they are deleted; the
    /// audit stays on its volume.
    #[arg(long, env = "INCIDENT_OPERATOR_FINISHED_POD_TTL", default_value = "1h", value_parser = parse_duration, help_heading = "Scheduling")]
    pub finished_pod_ttl: Duration,

    /// How long a remediation plan waits in AwaitingApproval for an IncidentApproval; after
    /// that the Incident completes with outcome `approval_expired` and nothing runs.
    #[arg(long, env = "INCIDENT_OPERATOR_APPROVAL_TIMEOUT", default_value = "30m", value_parser = parse_duration, help_heading = "Scheduling")]
    pub approval_timeout: Duration,

    /// Elect a leader through a Lease so only one replica starts agents (`false` for a single
    /// replica that needs no Lease permissions).
    #[arg(long, env = "INCIDENT_OPERATOR_LEADER_ELECTION", default_value_t = true, action = ArgAction::Set, help_heading = "High availability")]
    pub leader_election: bool,

    /// Name of the Lease.
    #[arg(
        long,
        env = "INCIDENT_OPERATOR_LEASE_NAME",
        default_value = "incident-operator-leader",
        help_heading = "High availability"
    )]
    pub lease_name: String,

    /// Namespace of the Lease; the namespace of the controller's own pod (or kubeconfig context)
    /// when not given.
    #[arg(
        long,
        env = "INCIDENT_OPERATOR_LEASE_NAMESPACE",
        help_heading = "High availability"
    )]
    pub lease_namespace: Option<String>,

    /// How long a Lease stays valid without renewal; the leader renews every third of it.
    #[arg(long, env = "INCIDENT_OPERATOR_LEASE_DURATION", default_value = "15s", value_parser = parse_duration, help_heading = "High availability")]
    pub lease_duration: Duration,

    /// This replica's identity in the Lease and in Events; the pod name (POD_NAME), else the
    /// hostname.
    #[arg(
        long,
        env = "INCIDENT_OPERATOR_IDENTITY",
        help_heading = "High availability"
    )]
    pub identity: Option<String>,

    /// UID of this replica's pod (Downward API `metadata.uid`). With POD_NAME, and the Lease in
    /// the pod's namespace, the leader's pod owns the Lease, so the Lease goes with the last pod
    /// even when it could not be released.
    #[arg(long, env = "POD_UID", help_heading = "High availability")]
    pub pod_uid: Option<String>,

    /// Serve the Alertmanager webhook (POST /alertmanager) on the HTTP server, creating Incidents
    /// from firing alerts.
    #[arg(long, env = "INCIDENT_OPERATOR_INTAKE", default_value_t = false, action = ArgAction::Set, help_heading = "Alertmanager intake")]
    pub intake: bool,

    /// Namespace the intake creates Incidents in; the controller's own namespace when not given.
    #[arg(
        long,
        env = "INCIDENT_OPERATOR_INTAKE_NAMESPACE",
        help_heading = "Alertmanager intake"
    )]
    pub intake_namespace: Option<String>,

    /// Largest webhook body accepted, in bytes.
    #[arg(long, env = "INCIDENT_OPERATOR_INTAKE_MAX_BODY_BYTES", default_value_t = crate::intake::DEFAULT_MAX_BODY_BYTES, help_heading = "Alertmanager intake")]
    pub intake_max_body_bytes: usize,

    /// File holding the bearer token Alertmanager must send; without it the webhook accepts
    /// unauthenticated requests (a warning is logged).
    #[arg(
        long,
        env = "INCIDENT_OPERATOR_INTAKE_TOKEN_FILE",
        help_heading = "Alertmanager intake"
    )]
    pub intake_token_file: Option<std::path::PathBuf>,

    /// After an alert's Incident finished, further firings within this cool-down are counted on
    /// it (`status.alert.recurrences`) instead of starting a new investigation; `0` turns this
    /// off. An alert's `recurrence_cooldown` label or annotation overrides it.
    #[arg(long, env = "INCIDENT_OPERATOR_RECURRENCE_COOLDOWN", default_value = "1h", value_parser = parse_duration, help_heading = "Alertmanager intake")]
    pub recurrence_cooldown: Duration,

    /// Most US dollars all agents may spend in a rolling 24 h; new Incidents wait in Queued
    /// (reason BudgetExhausted) once it is spent. Unlimited when not given.
    #[arg(long, env = "INCIDENT_OPERATOR_DAILY_BUDGET_USD", value_parser = parse_budget, help_heading = "Spend guard")]
    pub daily_budget_usd: Option<f64>,

    /// Most US dollars the agents of one namespace may spend in a rolling 24 h. Unlimited when
    /// not given.
    #[arg(long, env = "INCIDENT_OPERATOR_NAMESPACE_DAILY_BUDGET_USD", value_parser = parse_budget, help_heading = "Spend guard")]
    pub namespace_daily_budget_usd: Option<f64>,

    /// Price overrides as JSON, dollars per million tokens:
    /// `{"<model prefix>": {"input": 3, "output": 15, "cacheWrite": 3.75, "cacheRead": 0.3}}`;
    /// laid over the built-in prices of current Claude models.
    #[arg(
        long,
        env = "INCIDENT_OPERATOR_MODEL_PRICES",
        default_value = "",
        hide_default_value = true,
        help_heading = "Spend guard"
    )]
    pub model_prices: String,

    /// YAML file of notification sinks (Slack, PagerDuty, signed webhook) and their routes; see
    /// docs/notifications.md. No notifications when not given.
    #[arg(
        long,
        env = "INCIDENT_OPERATOR_NOTIFICATIONS_CONFIG",
        help_heading = "Notifications"
    )]
    pub notifications_config: Option<std::path::PathBuf>,

    /// Address of the HTTP server for /metrics, /healthz and /readyz.
    #[arg(
        long,
        env = "INCIDENT_OPERATOR_LISTEN",
        default_value = "0.0.0.0:8080",
        help_heading = "Observability"
    )]
    pub listen: SocketAddr,

    /// Log format.
    #[arg(long, env = "INCIDENT_OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, help_heading = "Observability")]
    pub log_format: LogFormat,

    /// Log level or tracing filter, e.g. `info` or `info,incident_operator=debug`.
    #[arg(
        long,
        env = "INCIDENT_OPERATOR_LOG_LEVEL",
        default_value = "info",
        help_heading = "Observability"
    )]
    pub log_level: String,
}

/// Everything the controller needs, checked and in its own types.
#[derive(Clone, Debug, PartialEq)]
pub struct ControllerConfig {
    /// Watched namespaces; empty means all.
    pub namespaces: Vec<String>,
    pub pod: AgentPodConfig,
    pub policy: Policy,
    pub max_agents: usize,
    /// `None` when leader election is off.
    pub lease: Option<LeaseSettings>,
    pub identity: String,
    pub listen: SocketAddr,
    /// `None` when the Alertmanager intake is off.
    pub intake: Option<IntakeSettings>,
}

/// How to serve the Alertmanager intake, as the flags say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntakeSettings {
    pub namespace: String,
    pub max_body_bytes: usize,
    /// Read at start-up; `None` disables authentication.
    pub token_file: Option<std::path::PathBuf>,
}

/// A flag value the controller cannot work with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required text flag was empty.
    #[error("--{0} must not be empty")]
    Empty(&'static str),
    /// A duration does not fit where it goes (seconds as u32).
    #[error("--{flag} is too long: {value:?}")]
    TooLong { flag: &'static str, value: Duration },
    /// `--model-prices` is not a valid price table.
    #[error("--model-prices: {0}")]
    ModelPrices(String),
    /// `--notifications-config` cannot be read or is not valid.
    #[error("--notifications-config: {0}")]
    Notifications(String),
}

impl ControllerArgs {
    /// The configuration these flags describe. `default_namespace` is used for the Lease when
    /// `--lease-namespace` is not given; `hostname` for the identity when neither `--identity` nor
    /// `POD_NAME` is set.
    pub fn into_config(
        self,
        default_namespace: &str,
        hostname: Option<String>,
    ) -> Result<ControllerConfig, ConfigError> {
        for (flag, value) in [
            ("agent-image", &self.agent_image),
            ("agent-service-account", &self.agent_service_account),
            ("api-key-secret", &self.api_key_secret),
            ("api-key-secret-key", &self.api_key_secret_key),
            ("model", &self.model),
            ("lease-name", &self.lease_name),
        ] {
            if value.trim().is_empty() {
                return Err(ConfigError::Empty(flag));
            }
        }
        let seconds = |flag: &'static str, value: Duration| {
            u32::try_from(value.as_secs()).map_err(|_| ConfigError::TooLong { flag, value })
        };
        let optional = |value: String| Some(value).filter(|v| !v.trim().is_empty());
        let identity = self
            .identity
            .clone()
            .filter(|id| !id.trim().is_empty())
            .or_else(|| std::env::var("POD_NAME").ok().filter(|n| !n.is_empty()))
            .or(hostname)
            .unwrap_or_else(|| format!("incident-operator-{}", uuid::Uuid::new_v4()));

        let pod = AgentPodConfig {
            image: self.agent_image,
            image_pull_policy: optional(self.agent_image_pull_policy),
            service_account: self.agent_service_account,
            remediation_service_account: self.agent_remediation_service_account.and_then(optional),
            api_key_secret: self.api_key_secret,
            api_key_secret_key: self.api_key_secret_key,
            anthropic_base_url: self.anthropic_base_url.and_then(optional),
            audit_volume: match self.audit_pvc.and_then(optional) {
                Some(claim) => AuditVolume::Claim(claim),
                None => AuditVolume::EmptyDir,
            },
            resources: AgentResources {
                cpu_request: optional(self.agent_cpu_request),
                memory_request: optional(self.agent_memory_request),
                cpu_limit: optional(self.agent_cpu_limit),
                memory_limit: optional(self.agent_memory_limit),
            },
            defaults: AgentDefaults {
                model: self.model,
                max_turns: self.max_turns,
                command_timeout_seconds: seconds("command-timeout", self.command_timeout)?.max(1),
                session_timeout_seconds: seconds("session-timeout", self.session_timeout)?.max(10),
                max_tokens: self.max_tokens,
            },
            deadline_grace_seconds: 60,
        };
        let prices = PriceTable::with_overrides(&self.model_prices)
            .map_err(|error| ConfigError::ModelPrices(crate::errors::error_chain(&error)))?;
        let policy = Policy {
            backoff_limit: self.backoff_limit,
            retry_backoff_base: self.retry_backoff.max(Duration::from_secs(1)),
            finished_pod_ttl: self.finished_pod_ttl,
            approval_timeout: self.approval_timeout.max(Duration::from_secs(1)),
            read_only_execution: pod.remediation_service_account.is_none(),
            budget: BudgetLimits {
                daily_usd: self.daily_budget_usd,
                namespace_daily_usd: self.namespace_daily_budget_usd,
            },
            prices,
            recurrence_cooldown: self.recurrence_cooldown,
            notifications: match &self.notifications_config {
                Some(path) => Some(std::sync::Arc::new(
                    crate::notify::NotifyConfig::load(path).map_err(|error| {
                        ConfigError::Notifications(crate::errors::error_chain(&error))
                    })?,
                )),
                None => None,
            },
            ..Policy::default()
        };
        let lease_namespace = self
            .lease_namespace
            .and_then(optional)
            .unwrap_or_else(|| default_namespace.to_string());
        // An owner in another namespace would look missing to the garbage collector, which
        // would then delete the Lease at once: own it only from the pod's own namespace.
        let pod_namespace = std::env::var("POD_NAMESPACE")
            .ok()
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| default_namespace.to_string());
        let owner = match (
            std::env::var("POD_NAME").ok().and_then(optional),
            self.pod_uid.and_then(optional),
        ) {
            (Some(pod_name), Some(pod_uid)) if pod_namespace == lease_namespace => {
                Some(LeaseOwner { pod_name, pod_uid })
            }
            _ => None,
        };
        let lease = self.leader_election.then(|| LeaseSettings {
            name: self.lease_name,
            namespace: lease_namespace,
            identity: identity.clone(),
            duration: self.lease_duration.max(Duration::from_secs(1)),
            owner,
        });
        Ok(ControllerConfig {
            namespaces: self
                .namespaces
                .into_iter()
                .map(|ns| ns.trim().to_string())
                .filter(|ns| !ns.is_empty())
                .collect(),
            pod,
            policy,
            max_agents: usize::try_from(self.max_concurrent_agents).unwrap_or(usize::MAX),
            lease,
            identity,
            listen: self.listen,
            intake: self.intake.then(|| IntakeSettings {
                namespace: self
                    .intake_namespace
                    .and_then(optional)
                    .unwrap_or_else(|| default_namespace.to_string()),
                max_body_bytes: self.intake_max_body_bytes,
                token_file: self.intake_token_file,
            }),
        })
    }
}

/// Parses a budget in dollars: a finite number, not negative.
pub fn parse_budget(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        _ => Err(format!(
            "{text:?} is not an amount of dollars (write e.g. 25 or 7.50)"
        )),
    }
}

/// Parses `90`, `90s`, `15m`, `1h30m` or an ISO 8601 duration (`PT1H`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let signed: SignedDuration = text
        .parse()
        .map_err(|error| format!("not a duration ({error}); use e.g. 30s, 15m or 1h"))?;
    Duration::try_from(signed).map_err(|_| "a duration must not be negative".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Harness {
        #[command(flatten)]
        args: ControllerArgs,
    }

    fn parse(args: &[&str]) -> ControllerArgs {
        let mut argv = vec!["controller"];
        argv.extend_from_slice(args);
        Harness::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn defaults_are_sane() {
        let config = parse(&[])
            .into_config("operators", Some("host-1".to_string()))
            .unwrap();
        assert!(config.namespaces.is_empty());
        assert_eq!(config.max_agents, 3);
        assert_eq!(config.policy.backoff_limit, 1);
        assert_eq!(config.policy.finished_pod_ttl, Duration::from_secs(3600));
        assert_eq!(config.pod.api_key_secret_key, "api-key");
        assert_eq!(config.pod.audit_volume, AuditVolume::EmptyDir);
        assert_eq!(config.pod.defaults.session_timeout_seconds, 900);
        assert_eq!(config.pod.anthropic_base_url, None);
        let lease = config.lease.unwrap();
        assert_eq!(lease.namespace, "operators");
        assert_eq!(lease.duration, Duration::from_secs(15));
        assert_eq!(config.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(config.intake, None);
        assert_eq!(config.pod.remediation_service_account, None);
        assert!(
            config.policy.read_only_execution,
            "proposals warn without one"
        );
        // POD_NAME may be set where tests run; either way the identity is not empty.
        assert!(!config.identity.is_empty());
    }

    #[test]
    fn flags_are_applied() {
        let config = parse(&[
            "--namespace",
            "a,b",
            "--namespace",
            "c",
            "--api-key-secret",
            "claude",
            "--audit-pvc",
            "audit",
            "--agent-cpu-limit",
            "",
            "--session-timeout",
            "1h",
            "--retry-backoff",
            "3",
            "--max-concurrent-agents",
            "7",
            "--leader-election",
            "false",
            "--identity",
            "me",
            "--anthropic-base-url",
            "http://127.0.0.1:9",
            "--intake=true",
            "--intake-token-file",
            "/etc/token",
            "--agent-remediation-service-account",
            "fixer",
        ])
        .into_config("default", None)
        .unwrap();
        assert_eq!(config.namespaces, ["a", "b", "c"]);
        assert_eq!(config.pod.api_key_secret, "claude");
        assert_eq!(
            config.pod.audit_volume,
            AuditVolume::Claim("audit".to_string())
        );
        assert_eq!(config.pod.resources.cpu_limit, None);
        assert_eq!(config.pod.defaults.session_timeout_seconds, 3600);
        assert_eq!(config.policy.retry_backoff_base, Duration::from_secs(3));
        assert_eq!(config.max_agents, 7);
        assert_eq!(config.lease, None);
        assert_eq!(config.identity, "me");
        assert_eq!(
            config.pod.anthropic_base_url.as_deref(),
            Some("http://127.0.0.1:9")
        );
        let intake = config.intake.unwrap();
        assert_eq!(intake.namespace, "default");
        assert_eq!(intake.token_file, Some("/etc/token".into()));
        assert_eq!(intake.max_body_bytes, crate::intake::DEFAULT_MAX_BODY_BYTES);
        assert_eq!(
            config.pod.remediation_service_account.as_deref(),
            Some("fixer")
        );
    }

    #[test]
    fn bad_values_are_refused() {
        assert_eq!(
            parse(&["--model", " "]).into_config("d", None),
            Err(ConfigError::Empty("model"))
        );
        let harness = Harness::try_parse_from(["controller", "--max-concurrent-agents", "0"]);
        assert!(harness.is_err());
        let harness = Harness::try_parse_from(["controller", "--finished-pod-ttl", "soon"]);
        assert!(harness.is_err());
    }

    #[test]
    fn durations_parse_in_friendly_and_iso_forms() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("PT2S"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("later").is_err());
    }
}

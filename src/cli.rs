//! Command-line interface: flags for every subcommand and the dispatch into the library.
//! Each subcommand is a few lines here; the work lives in its own module.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::investigate::{InvestigateOptions, investigate, print_result};

/// Turns alerts into audited investigations by a Claude agent with a read-only shell.
#[derive(Parser, Debug)]
#[command(name = "incident-operator", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run one incident locally, without a cluster: the agent's shell runs on this machine.
    ///
    /// Needs ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL for a gateway or a local server). Limits
    /// come from the built-in defaults, then the Incident's spec.agent, then these flags. Prints
    /// progress to stderr and the report to stdout; exits 0 only when a report was filed, 1 when
    /// the session ended without one, 2 when it could not start.
    Investigate(InvestigateArgs),
    /// Run the agent for one Incident inside an agent pod (started by the controller).
    ///
    /// Reads the Incident through the Kubernetes API (in-cluster config, or KUBECONFIG), runs
    /// the session with the audit on the mounted volume, reports progress and the result to the
    /// Incident's status and the result to the termination message. Limits: these flags are the
    /// operator's defaults; the Incident's spec.agent overrides them. Exits 0 when the session
    /// reached an answer (report, limit, refusal), 1 on a session error, 2 when it cannot start.
    Agent(AgentArgs),
    /// Approve the remediation plan an Incident proposed (status.plan): creates an
    /// IncidentApproval naming the plan's hash and you (as the API server reports you through a
    /// SelfSubjectReview), then prints what was approved. The controller then runs exactly that
    /// plan with the remediation ServiceAccount.
    Approve(DecisionArgs),
    /// Reject the remediation plan an Incident proposed: the Incident completes with outcome
    /// `rejected` and nothing runs.
    Reject(DecisionArgs),
    /// Print the CustomResourceDefinitions as YAML: Incident (what `crds/incidents.yaml` holds),
    /// then IncidentApproval (`crds/incidentapprovals.yaml`).
    Crdgen,
    /// Run the operator's controller: watch Incidents, start one agent pod per investigation,
    /// keep their status; serves /metrics, /healthz and /readyz.
    Controller(Box<crate::controller::ControllerArgs>),
    /// Serve Incident audits as the aggregated API audit.sre.agentlab.dev/v1alpha1
    /// (`incidentaudits/NAME`), from the audit claims mounted with --claim; callers are the
    /// users kube-apiserver proxies with its front-proxy certificate, authorized with a
    /// SubjectAccessReview for `get` on the Incident.
    AuditApi(Box<crate::audit_api::AuditApiArgs>),
}

#[derive(Args, Debug)]
pub struct DecisionArgs {
    /// The Incident whose plan to decide.
    pub name: String,
    /// Namespace of the Incident [default: the kubeconfig context's].
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Why, for the record (at most 1024 characters).
    #[arg(long)]
    pub comment: Option<String>,
    /// Path of the kubeconfig file [default: KUBECONFIG, else ~/.kube/config, else in-cluster].
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long)]
    pub context: Option<String>,
}

/// `approve` / `reject`: prints what was decided; exits 1 when nothing was (with the reason).
fn run_decision(args: DecisionArgs, decision: crate::plan::Decision) -> ExitCode {
    use crate::approval::command::{
        ClusterOptions, DecisionRequest, client_for, decide_plan, render,
    };
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = runtime.block_on(async {
        let (client, default_namespace) = client_for(&ClusterOptions {
            kubeconfig: args.kubeconfig,
            context: args.context,
        })
        .await?;
        let request = DecisionRequest {
            namespace: args.namespace.unwrap_or(default_namespace),
            incident: args.name,
            decision,
            comment: args.comment,
        };
        decide_plan(&client, &request).await
    });
    match result {
        Ok(decided) => {
            print!("{}", render(&decided));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {}", crate::errors::error_chain(&error));
            ExitCode::FAILURE
        }
    }
}

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// The Incident to work on, as NAMESPACE/NAME.
    #[arg(long, value_name = "NAMESPACE/NAME", env = "INCIDENT_REF")]
    pub incident: String,
    /// Directory on the audit volume for `<session-id>.jsonl` and `<session-id>.json`.
    #[arg(long, value_name = "DIR", env = "INCIDENT_AUDIT_DIR", default_value = crate::pod_agent::DEFAULT_AUDIT_DIR)]
    pub audit_dir: PathBuf,
    /// Default Claude model id.
    #[arg(long, env = "ANTHROPIC_MODEL", default_value = crate::anthropic::DEFAULT_MODEL)]
    pub model: String,
    /// Default most model turns.
    #[arg(long, default_value_t = crate::agent::settings::DEFAULT_MAX_TURNS, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_turns: u32,
    /// Default most seconds per command.
    #[arg(long, value_name = "SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub command_timeout: u64,
    /// Default session deadline in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=604800))]
    pub session_timeout: u64,
    /// Default token budget of a session (all tokens summed).
    #[arg(long, value_name = "TOKENS", default_value_t = crate::agent::settings::DEFAULT_TOKEN_BUDGET, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_tokens: u64,
    /// `max_tokens` of each model reply.
    #[arg(long, value_name = "TOKENS", default_value_t = crate::agent::settings::DEFAULT_MAX_RESPONSE_TOKENS, value_parser = clap::value_parser!(u32).range(1..=128000))]
    pub max_response_tokens: u32,
    /// Also redact the value of this environment variable (repeatable; ANTHROPIC_API_KEY always is).
    #[arg(long, value_name = "NAME")]
    pub secret_env: Vec<String>,
    /// Where to write the compact result for the controller.
    #[arg(long, value_name = "FILE", default_value = "/dev/termination-log")]
    pub termination_log: PathBuf,
    /// Least seconds between two progress patches of the Incident's status.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub progress_interval: u64,
    /// Price overrides (JSON, dollars per million tokens) for `status.usage.costUSD`; the
    /// controller passes its own `--model-prices` here.
    #[arg(long, value_name = "JSON", env = "INCIDENT_OPERATOR_MODEL_PRICES", default_value = "", hide_default_value = true, value_parser = parse_prices)]
    pub model_prices: crate::budget::PriceTable,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Json, env = "LOG_FORMAT")]
    pub log_format: LogFormat,
}

/// `--model-prices` of the agent: the defaults with these overrides.
fn parse_prices(text: &str) -> Result<crate::budget::PriceTable, String> {
    crate::budget::PriceTable::with_overrides(text)
        .map_err(|error| crate::errors::error_chain(&error))
}

/// How logs are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

impl AgentArgs {
    fn into_options(
        self,
    ) -> Result<crate::pod_agent::PodAgentOptions, crate::pod_agent::PodAgentError> {
        let (namespace, name) = crate::pod_agent::parse_incident_ref(&self.incident)?;
        let mut defaults = crate::agent::AgentSettings::new(self.model);
        defaults.max_turns = self.max_turns;
        defaults.command_timeout = Duration::from_secs(self.command_timeout);
        defaults.session_timeout = Duration::from_secs(self.session_timeout);
        defaults.token_budget = self.max_tokens;
        defaults.max_response_tokens = self.max_response_tokens;
        defaults.prices = self.model_prices;
        Ok(crate::pod_agent::PodAgentOptions {
            namespace,
            name,
            audit_dir: self.audit_dir,
            defaults,
            secret_env: self.secret_env,
            termination_log: self.termination_log,
            progress_interval: Duration::from_secs(self.progress_interval),
        })
    }
}

#[derive(Args, Debug)]
pub struct InvestigateArgs {
    /// Incident manifest to investigate (YAML or JSON, kind Incident).
    #[arg(long, short = 'f', value_name = "FILE")]
    pub file: PathBuf,
    /// Directory for the audit files `<session-id>.jsonl` and `<session-id>.json` (created if missing).
    #[arg(
        long,
        value_name = "DIR",
        env = "INCIDENT_AUDIT_DIR",
        default_value = "audit"
    )]
    pub audit_dir: PathBuf,
    /// Claude model id [default: the Incident's spec.agent.model, else claude-sonnet-4-6].
    #[arg(long, env = "ANTHROPIC_MODEL")]
    pub model: Option<String>,
    /// Most model turns [default: spec.agent.maxTurns, else 30].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_turns: Option<u32>,
    /// Most seconds one command may run before its process group is killed [default: spec, else 120].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub command_timeout: Option<u64>,
    /// Wall-clock deadline of the whole session [default: spec, else 900].
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=604800))]
    pub session_timeout: Option<u64>,
    /// Token budget of the session, all tokens summed (input, cache, output) [default: spec, else 2000000].
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_tokens: Option<u64>,
    /// `max_tokens` of each model reply [default: 8192].
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u32).range(1..=128000))]
    pub max_response_tokens: Option<u32>,
    /// Also redact the value of this environment variable from audits and tool results
    /// (repeatable; ANTHROPIC_API_KEY is always redacted).
    #[arg(long, value_name = "NAME")]
    pub secret_env: Vec<String>,
    /// Attempts per model request, the first included: 429, 5xx, 529 and connection errors are
    /// retried with exponential backoff and jitter, honouring retry-after, within 5 minutes.
    #[arg(long, value_name = "N", default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_retries: u32,
    /// Print the result as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// No progress lines on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Execute this approved plan instead of investigating (remediate-mode Incidents only): a
    /// YAML or JSON file holding the Incident's status.plan (plan, planHash, optionally
    /// sessionId) and optionally its status.approval as `approval`. The plan's hash is
    /// recomputed first; a mismatch ends the session in an audited error.
    #[arg(long, value_name = "FILE")]
    pub approved_plan: Option<PathBuf>,
}

impl From<InvestigateArgs> for InvestigateOptions {
    fn from(a: InvestigateArgs) -> Self {
        Self {
            file: a.file,
            audit_dir: a.audit_dir,
            model: a.model,
            max_turns: a.max_turns,
            command_timeout: a.command_timeout.map(Duration::from_secs),
            session_timeout: a.session_timeout.map(Duration::from_secs),
            token_budget: a.max_tokens,
            max_response_tokens: a.max_response_tokens,
            secret_env: a.secret_env,
            max_attempts: a.max_retries,
            json: a.json,
            quiet: a.quiet,
            approved_plan: a.approved_plan,
        }
    }
}

/// Parses the command line and runs the chosen subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crdgen => {
            print!(
                "{}{}",
                crate::incident::crd_yaml(),
                crate::approval::crd_yaml()
            );
            ExitCode::SUCCESS
        }
        Command::Controller(args) => crate::controller::main(*args),
        Command::Approve(args) => run_decision(args, crate::plan::Decision::Approve),
        Command::Reject(args) => run_decision(args, crate::plan::Decision::Reject),
        Command::AuditApi(args) => crate::audit_api::main(*args),
        Command::Agent(args) => {
            init_tracing("info", args.log_format);
            let options = match args.into_options() {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let runtime = match runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            match runtime.block_on(crate::pod_agent::run(options)) {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    tracing::error!(error = %crate::errors::error_chain(&e), "agent could not run");
                    ExitCode::from(2)
                }
            }
        }
        Command::Investigate(args) => {
            init_tracing("warn", LogFormat::Text);
            let options = InvestigateOptions::from(args);
            let runtime = match runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            match runtime.block_on(investigate(&options)) {
                Ok(result) => ExitCode::from(print_result(&result, options.json)),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::from(2)
        })
}

/// Logs to stderr; `RUST_LOG` overrides the default level.
pub fn init_tracing(default_level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

//! `kubectl incident`: the plugin that tells an Incident's story (binary `kubectl-incident`, krew
//! naming, `src/bin/kubectl-incident.rs`). The binary only calls [`main`]; everything is here.
//!
//! Flow of every subcommand: flags ([`PluginCli`]) → connect with the user's kubeconfig
//! ([`client`]) → read or patch through the API → a pure renderer ([`render`]) → stdout. Errors a
//! user meets are one line on stderr and a non-zero exit ([`error`]).
//!
//! - [`list`]: `kubectl get inc` plus duration, cost and recurrences.
//! - [`show`]: one screen per Incident: report first, plan and approval, timeline, usage, Events.
//! - [`verify`]: the audit (through the audit API, or a local copy with `--file`) checked against
//!   the hash chain head in the Incident's status.
//! - [`rerun`]: sets the rerun annotation the controller honours (`src/controller/rerun.rs`).
//! - [`decide`]: `approve` / `reject` a proposed plan (an `IncidentApproval`, `src/approval/`).
//! - [`audit`]: the full audit through the aggregated audit API (`src/audit_api/`).

pub mod audit;
pub mod client;
pub mod decide;
pub mod error;
pub mod list;
pub mod render;
pub mod rerun;
pub mod show;
pub mod verify;

use std::process::ExitCode;

use clap::{Args, Parser};

pub use error::PluginError;
use render::{ColorChoice, RenderOptions};

/// Environment variable with a fixed "now" (RFC 3339) for ages and durations: golden tests use it.
pub const NOW_ENV: &str = "KUBECTL_INCIDENT_NOW";

/// Exit code when `verify` found the audit tampered with (errors exit 1, usage errors 2).
pub const EXIT_TAMPERED: u8 = 3;

/// The story of an Incident, its audit, and proof that nobody edited it.
#[derive(Parser, Debug)]
#[command(
    name = "kubectl-incident",
    bin_name = "kubectl incident",
    version,
    about = "The story of an Incident, its audit, and proof that nobody edited it."
)]
pub struct PluginCli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Subcommand,
}

/// Flags every subcommand takes, as kubectl spells them.
#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Namespace [default: the kubeconfig context's, else `default`].
    #[arg(long, short = 'n', global = true)]
    pub namespace: Option<String>,
    /// Kubeconfig context to use [default: the current context].
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// Colour: `auto` colours only a terminal, and never when NO_COLOR is set.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
    /// Width to fit the output to [default: COLUMNS, else the terminal's, else 100].
    #[arg(long, global = true, value_parser = clap::value_parser!(u16).range(40..))]
    pub width: Option<u16>,
    /// Render as if it were this time (RFC 3339); for reproducible output.
    #[arg(long, global = true, env = NOW_ENV, hide = true)]
    pub now: Option<jiff::Timestamp>,
}

#[derive(clap::Subcommand, Debug)]
pub enum Subcommand {
    /// List Incidents with phase, outcome, duration, cost and recurrences.
    List(list::ListArgs),
    /// Tell one Incident's story on one screen.
    Show(show::ShowArgs),
    /// Check a copy of an Incident's audit against the hash chain head in its status.
    Verify(verify::VerifyArgs),
    /// Run an Incident's agent again (sets the `sre.agentlab.dev/rerun` annotation).
    Rerun(rerun::RerunArgs),
    /// Print an Incident's complete audit through the API server (the aggregated audit API).
    Audit(audit::AuditArgs),
    /// Approve the remediation plan an Incident proposed (creates an IncidentApproval).
    Approve(decide::DecideArgs),
    /// Reject the remediation plan an Incident proposed.
    Reject(decide::DecideArgs),
}

/// Parses the command line, runs the subcommand, prints errors as one line.
pub fn main() -> ExitCode {
    let cli = PluginCli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", crate::errors::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// Runs one parsed command line; what it prints goes to stdout.
pub async fn run(cli: PluginCli) -> Result<ExitCode, PluginError> {
    let options = RenderOptions::from_environment(&cli.global);
    let mut out = std::io::stdout().lock();
    match cli.command {
        Subcommand::List(args) => list::run(&cli.global, &args, &options, &mut out).await,
        Subcommand::Show(args) => show::run(&cli.global, &args, &options, &mut out).await,
        Subcommand::Verify(args) => verify::run(&cli.global, &args, &mut out).await,
        Subcommand::Rerun(args) => rerun::run(&cli.global, &args, &options, &mut out).await,
        Subcommand::Audit(args) => audit::run(&cli.global, &args, &mut out).await,
        Subcommand::Approve(args) => {
            decide::run(&cli.global, &args, crate::plan::Decision::Approve, &mut out).await
        }
        Subcommand::Reject(args) => {
            decide::run(&cli.global, &args, crate::plan::Decision::Reject, &mut out).await
        }
    }
}

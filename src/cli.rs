//! Command-line interface: flags for every subcommand and the dispatch into the library.
//! Each subcommand is a few lines here; the work lives in its own module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Turns alerts into audited investigations by a Claude agent with a read-only shell.
#[derive(Parser, Debug)]
#[command(name = "incident-operator", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the Incident CustomResourceDefinition as YAML (what `crds/incidents.yaml` holds).
    Crdgen,
    /// Run the operator's controller: watch Incidents, start one agent pod per investigation,
    /// keep their status; serves /metrics, /healthz and /readyz.
    Controller(Box<crate::controller::ControllerArgs>),
}

/// Parses the command line and runs the chosen subcommand.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crdgen => {
            print!("{}", crate::incident::crd_yaml());
            ExitCode::SUCCESS
        }
        Command::Controller(args) => crate::controller::main(*args),
    }
}

//! The one binary: `controller`, `agent`, `investigate` and `crdgen` subcommands (see `--help`).
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    incident_operator::cli::main()
}

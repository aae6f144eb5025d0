//! `kubectl-incident`: the kubectl plugin (`kubectl incident list|show|verify|rerun`); all of it
//! lives in `incident_operator::plugin`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    incident_operator::plugin::main()
}

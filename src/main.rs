//! The one binary: `controller`, `agent`, `investigate` and `crdgen` subcommands (see `--help`).
#![forbid(unsafe_code)]

use std::process::ExitCode;

// jemalloc returns freed memory to the system on its own decay clock (glibc keeps it).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    incident_operator::cli::main()
}

//! The one binary: `controller`, `agent`, `investigate` and `crdgen` subcommands (see `--help`).
#![forbid(unsafe_code)]

use std::process::ExitCode;

/// mimalloc returns freed pages to the system where glibc's per-thread arenas keep them: the
/// controller's resident memory follows its live heap (see `docs/controller.md`, "Memory").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    incident_operator::cli::main()
}

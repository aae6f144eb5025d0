//! The pinned command-line tools (`helm`, `hadolint`, `kubectl`) the chart and Dockerfile tests
//! run: found (and installed on first use) by `kube_emulator::tools`, shared with the e2e tests.

use std::path::{Path, PathBuf};

/// The workspace root (where `.ci/` and `charts/` live).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Path of the tool `name`; panics with the command to run by hand when it cannot be found.
pub fn tool(name: &str) -> PathBuf {
    let env_var = name.to_ascii_uppercase();
    kube_emulator::tools::find_tool(name, &env_var).unwrap_or_else(|e| panic!("{e}"))
}

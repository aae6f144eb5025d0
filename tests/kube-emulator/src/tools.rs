//! Finds the command-line tools the tests drive (`kubectl`, `helm`): `$KUBECTL` / `$HELM` first,
//! then `.ci/tools/bin/` of the workspace (where `.ci/install-tools.sh` puts pinned versions), then
//! `PATH`. A missing tool is an error that says how to install it; tests fail on it, never skip.

use std::path::{Path, PathBuf};

/// A tool was found nowhere.
#[derive(Debug, thiserror::Error)]
#[error(
    "{tool} not found (looked at ${env_var}, {pinned} and PATH): run .ci/install-tools.sh",
    pinned = pinned.display()
)]
pub struct ToolNotFound {
    pub tool: String,
    pub env_var: String,
    pub pinned: PathBuf,
}

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .map_or_else(|| manifest.to_path_buf(), Path::to_path_buf)
}

/// Finds `tool` through `env_var`, `.ci/tools/bin`, then `PATH`.
pub fn find_tool(tool: &str, env_var: &str) -> Result<PathBuf, ToolNotFound> {
    let pinned = workspace_root().join(".ci/tools/bin").join(tool);
    let from_env = std::env::var_os(env_var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let on_path = || {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(tool))
                .find(|candidate| candidate.is_file())
        })
    };
    from_env
        .filter(|p| p.is_file())
        .or_else(|| pinned.is_file().then(|| pinned.clone()))
        .or_else(on_path)
        .ok_or_else(|| ToolNotFound {
            tool: tool.to_string(),
            env_var: env_var.to_string(),
            pinned,
        })
}

/// `kubectl` (`$KUBECTL` overrides).
pub fn kubectl() -> Result<PathBuf, ToolNotFound> {
    find_tool("kubectl", "KUBECTL")
}

/// `helm` (`$HELM` overrides).
pub fn helm() -> Result<PathBuf, ToolNotFound> {
    find_tool("helm", "HELM")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tool_names_the_install_script() {
        let err = find_tool("no-such-tool-xyz", "NO_SUCH_TOOL_XYZ").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("run .ci/install-tools.sh"), "{text}");
        assert!(text.contains(".ci/tools/bin/no-such-tool-xyz"), "{text}");
    }

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }
}

//! Finds the command-line tools the tests drive (`kubectl`, `helm`, `hadolint`): `$KUBECTL` /
//! `$HELM` / `$HADOLINT` first, then `.ci/tools/bin/` of the workspace (where
//! `.ci/install-tools.sh` puts pinned versions). When the pinned copy is missing, the install
//! script runs once (under `flock`, so parallel test binaries don't race), which is what lets a
//! plain `cargo test --workspace` work on a fresh machine; only if that fails is `PATH` tried. A
//! tool found nowhere is an error that says how to install it: tests fail on it, never skip.

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

/// Runs `.ci/install-tools.sh` once per process, under an exclusive lock on
/// `.ci/tools/.install.lock` so parallel test binaries install at most once and never see a
/// half-written binary (the script installs atomically and is idempotent).
fn install_pinned_tools() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let root = workspace_root();
        let script = root.join(".ci/install-tools.sh");
        let dir = root.join(".ci/tools");
        if !script.is_file() || std::fs::create_dir_all(&dir).is_err() {
            return;
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(".install.lock"));
        // Held until the end of this block; a failed lock only risks a duplicate install.
        let _lock = lock.and_then(|file| file.lock().map(|()| file));
        match std::process::Command::new("bash")
            .arg(&script)
            .current_dir(&root)
            .output()
        {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "tools: {} failed ({}):\n{}{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("tools: cannot run bash {}: {e}", script.display()),
        }
    });
}

/// Finds `tool` through `env_var`, `.ci/tools/bin` (installing it there if missing), then `PATH`.
pub fn find_tool(tool: &str, env_var: &str) -> Result<PathBuf, ToolNotFound> {
    let pinned = workspace_root().join(".ci/tools/bin").join(tool);
    if std::env::var_os(env_var).is_none() && !pinned.is_file() && tool_is_pinned(tool) {
        install_pinned_tools();
    }
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

/// Whether `.ci/install-tools.sh` provides `tool`.
fn tool_is_pinned(tool: &str) -> bool {
    matches!(tool, "kubectl" | "helm" | "hadolint")
}

/// `hadolint` (`$HADOLINT` overrides).
pub fn hadolint() -> Result<PathBuf, ToolNotFound> {
    find_tool("hadolint", "HADOLINT")
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

//! The pinned command-line tools (`helm`, `hadolint`, `kubectl`) the chart and Dockerfile tests
//! run, from `.ci/tools/bin`. On a fresh machine the first test to need one runs
//! `.ci/install-tools.sh` once, under an exclusive lock on `.ci/tools/.install.lock`, so parallel
//! test threads and parallel `cargo test` processes install at most once and never see a
//! half-written binary (the script installs atomically and is idempotent).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The workspace root (where `.ci/` and `charts/` live).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Serializes installs between the threads of one test binary; the lock file does it between
/// processes.
static INSTALL: Mutex<()> = Mutex::new(());

/// Path of the pinned tool `name`, installing the tools first when it is missing. Panics with the
/// command to run by hand when it cannot be installed.
pub fn tool(name: &str) -> PathBuf {
    let root = repo_root();
    let path = root.join(".ci/tools/bin").join(name);
    if path.is_file() {
        return path;
    }
    let _guard = INSTALL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let lock = lock_file(root);
    if !path.is_file() {
        install(root);
    }
    drop(lock);
    assert!(
        path.is_file(),
        "{} is still missing after .ci/install-tools.sh; run `bash .ci/install-tools.sh` and read its errors",
        path.display()
    );
    path
}

/// Takes the cross-process install lock; released when the file is dropped.
fn lock_file(root: &Path) -> File {
    let dir = root.join(".ci/tools");
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let path = dir.join(".install.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    file.lock()
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", path.display()));
    file
}

fn install(root: &Path) {
    let script = root.join(".ci/install-tools.sh");
    assert!(
        script.is_file(),
        "{} is missing: the pinned tools cannot be installed; run .ci/install-tools.sh from a full checkout",
        script.display()
    );
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run bash {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "run .ci/install-tools.sh: it failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

//! Runs a command inside an unpacked image's root filesystem, with util-linux `unshare` and
//! `mount` from the host (no container runtime: `podman run` and runc need more than this kind of
//! sandbox allows, while mount and PID namespaces as root are enough).
//!
//! The process the kubelet starts is `unshare --mount [--pid --fork --kill-child]` running a short
//! `/bin/sh` script (its steps are values passed as positional parameters, never spliced into the
//! script text) that, inside the new mount namespace:
//! 1. mounts an overlay whose lower layer is the shared root filesystem (never written) and whose
//!    upper layer is a per-pod directory, emptied at each start like a new container's layer;
//! 2. mounts /proc (of the new PID namespace) and a tmpfs /dev with the usual device nodes bound
//!    from the host, /dev/shm, and the /dev/fd, stdin, stdout, stderr links;
//! 3. binds every [`BindMount`] (volumes, /etc/hosts, /etc/resolv.conf, the termination-message
//!    file, the pod's credentials), parents first, read-only where asked;
//! 4. remounts the root read-only for `readOnlyRootFilesystem`;
//! 5. `exec env -i VARS… unshare --root=ROOT --wd=DIR --setgid=GID --setuid=UID -- ARGV…`, so the
//!    image's entrypoint runs chrooted, as the pod's user, with exactly the container's env.
//!
//! Container paths are resolved against the root filesystem first ([`resolve_in_root`]): an
//! image's absolute symlink such as `/var/run -> /run` must not lead `mkdir`/`mount` to the
//! host's `/run`.
//!
//! With a PID namespace the first process of ARGV is PID 1 (tini, for the agent image). Where the
//! kernel refuses one ([`pid_namespace_available`] is false) the container runs in the host's PID
//! namespace, and the kubelet says so once in its log: signals and reaping still work through the
//! process group, but tini is not PID 1 and warns about it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use crate::kubelet::process::{ProcessSpec, resolve_program};

/// How many symlinks [`resolve_in_root`] follows before giving up (the kernel's limit).
const MAX_SYMLINKS: usize = 40;

/// The host's `unshare`, `env` and `sh` run the sandbox; their location on the host.
const HOST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The setup script; see the module doc. `$1`…`$6` are the root filesystem, the overlay's upper
/// and work directories, the mount point, `1` for a read-only root, and the working directory;
/// then `mode source target` triples until `--`, then the command to exec.
const SETUP_SCRIPT: &str = r#"set -eu
rootfs=$1 upper=$2 work=$3 root=$4 read_only=$5 wd=$6
shift 6
rm -rf "$upper" "$work"
mkdir -p "$upper" "$work" "$root"
mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$upper,workdir=$work" "$root"
mkdir -p "$root/proc" "$root/dev"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t tmpfs -o nosuid,mode=0755,size=65536k tmpfs "$root/dev"
for node in null zero full random urandom tty; do
    : > "$root/dev/$node"
    mount --bind "/dev/$node" "$root/dev/$node"
done
mkdir "$root/dev/shm" "$root/dev/pts"
mount -t tmpfs -o nosuid,nodev,noexec,mode=1777,size=65536k shm "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
while [ "$1" != -- ]; do
    mode=$1 source=$2 target=$root$3
    shift 3
    if [ -d "$source" ]; then
        mkdir -p "$target"
    else
        mkdir -p "$(dirname "$target")"
        [ -e "$target" ] || : > "$target"
    fi
    mount --bind "$source" "$target"
    if [ "$mode" = ro ]; then mount -o remount,bind,ro "$target"; fi
done
shift
mkdir -p "$root$wd"
if [ "$read_only" = 1 ]; then mount -o remount,bind,ro "$root"; fi
exec "$@"
"#;

/// A host file or directory bound into the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub target: String,
    pub read_only: bool,
}

/// Everything the sandbox needs; all paths but `rootfs` are the pod's own.
#[derive(Clone, Debug)]
pub struct SandboxSpec {
    /// The image's root filesystem, shared by every pod of the image and never written.
    pub rootfs: PathBuf,
    /// Per-pod directory for the overlay's upper layer, work directory and mount point.
    pub state_dir: PathBuf,
    pub read_only_root: bool,
    pub mounts: Vec<BindMount>,
    pub uid: u32,
    pub gid: u32,
    /// Absolute path inside the container.
    pub working_dir: String,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub log_file: PathBuf,
}

/// A container path could not be placed inside the root filesystem.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SandboxError {
    #[error("container path {path:?} is not absolute")]
    NotAbsolute { path: String },
    #[error("container path {path:?} has more than {MAX_SYMLINKS} symlinks in its way")]
    SymlinkLoop { path: String },
}

/// Whether this kernel lets the kubelet create a PID namespace (checked once).
pub fn pid_namespace_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let unshare = resolve_program("unshare", Some(HOST_PATH));
        let ok = std::process::Command::new(unshare)
            .args(["--pid", "--fork", "--mount", "--", "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            tracing::warn!(
                "image mode: no PID namespace allowed here (unshare --pid failed); containers run \
                 in the host's PID namespace, so an init such as tini is not PID 1"
            );
        }
        ok
    })
}

/// `path` (absolute, inside the container) with every symlink resolved inside `rootfs`, as a
/// container runtime does: `..` never climbs above the root, and absolute link targets start
/// again at the root. Components that do not exist yet are kept as they are.
pub fn resolve_in_root(rootfs: &Path, path: &str) -> Result<String, SandboxError> {
    if !path.starts_with('/') {
        return Err(SandboxError::NotAbsolute {
            path: path.to_string(),
        });
    }
    let mut pending: Vec<String> = components(path).into_iter().rev().collect();
    let mut resolved: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = rootfs.join(resolved.join("/")).join(&part);
        match std::fs::read_link(&candidate) {
            Ok(target) => {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return Err(SandboxError::SymlinkLoop {
                        path: path.to_string(),
                    });
                }
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(components(&target).into_iter().rev());
            }
            Err(_) => resolved.push(part),
        }
    }
    Ok(format!("/{}", resolved.join("/")))
}

fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect()
}

/// The host process that runs the container: `unshare` with the setup script (module doc).
pub fn process_spec(spec: &SandboxSpec, pid_namespace: bool) -> Result<ProcessSpec, SandboxError> {
    let unshare = resolve_program("unshare", Some(HOST_PATH));
    let env_program = resolve_program("env", Some(HOST_PATH));
    let root = spec.state_dir.join("rootfs");
    let mut args: Vec<OsString> = vec!["--mount".into(), "--propagation".into(), "private".into()];
    if pid_namespace {
        args.extend(["--pid", "--fork", "--kill-child"].map(OsString::from));
    }
    args.extend(["--", "/bin/sh", "-c", SETUP_SCRIPT, "image-sandbox"].map(OsString::from));
    args.push(spec.rootfs.clone().into_os_string());
    args.push(spec.state_dir.join("upper").into_os_string());
    args.push(spec.state_dir.join("work").into_os_string());
    args.push(root.clone().into_os_string());
    args.push(if spec.read_only_root { "1" } else { "0" }.into());
    let working_dir = resolve_in_root(&spec.rootfs, &spec.working_dir)?;
    args.push(working_dir.clone().into());

    // Parents before children, so a volume under another volume is not hidden by it.
    let mut mounts: BTreeMap<(usize, String), &BindMount> = BTreeMap::new();
    for mount in &spec.mounts {
        let target = resolve_in_root(&spec.rootfs, &mount.target)?;
        mounts.insert((target.matches('/').count(), target), mount);
    }
    for ((_, target), mount) in mounts {
        args.push(if mount.read_only { "ro" } else { "rw" }.into());
        args.push(mount.source.clone().into_os_string());
        args.push(target.into());
    }
    args.push("--".into());

    args.push(env_program);
    args.push("-i".into());
    for (name, value) in &spec.env {
        args.push(format!("{name}={value}").into());
    }
    args.push(unshare.clone());
    args.push(format!("--root={}", root.display()).into());
    args.push(format!("--wd={working_dir}").into());
    args.push(format!("--setgid={}", spec.gid).into());
    args.push(format!("--setuid={}", spec.uid).into());
    args.push("--".into());
    args.extend(spec.argv.iter().map(OsString::from));

    Ok(ProcessSpec {
        program: unshare,
        args,
        env: vec![("PATH".to_string(), HOST_PATH.to_string())],
        working_dir: spec.state_dir.clone(),
        log_file: spec.log_file.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_resolve_inside_the_root_not_on_the_host() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("run")).unwrap();
        std::fs::create_dir_all(r.join("var")).unwrap();
        symlink("/run", r.join("var/run")).unwrap();
        symlink("../../etc", r.join("var/up")).unwrap();
        symlink("loop", r.join("loop")).unwrap();
        assert_eq!(
            resolve_in_root(r, "/var/run/secrets/kubernetes.io").unwrap(),
            "/run/secrets/kubernetes.io"
        );
        assert_eq!(resolve_in_root(r, "/var/up/hosts").unwrap(), "/etc/hosts");
        assert_eq!(resolve_in_root(r, "/../../tmp/").unwrap(), "/tmp");
        assert_eq!(
            resolve_in_root(r, "/loop"),
            Err(SandboxError::SymlinkLoop {
                path: "/loop".into()
            })
        );
        assert_eq!(
            resolve_in_root(r, "tmp"),
            Err(SandboxError::NotAbsolute { path: "tmp".into() })
        );
    }

    #[test]
    fn mounts_go_parents_first_and_env_is_passed_as_values() {
        let root = tempfile::tempdir().unwrap();
        let spec = SandboxSpec {
            rootfs: root.path().to_path_buf(),
            state_dir: PathBuf::from("/w/pods/u/container"),
            read_only_root: true,
            mounts: vec![
                BindMount {
                    source: "/w/v/audit".into(),
                    target: "/tmp/audit".into(),
                    read_only: false,
                },
                BindMount {
                    source: "/w/v/tmp".into(),
                    target: "/tmp".into(),
                    read_only: true,
                },
            ],
            uid: 65532,
            gid: 65533,
            working_dir: "/tmp".into(),
            argv: vec!["/bin/echo".into(), "$(not; expanded)".into()],
            env: vec![("A".into(), "x y'z".into())],
            log_file: "/w/log".into(),
        };
        let process = process_spec(&spec, true).unwrap();
        let args: Vec<String> = process
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let at = |needle: &str| args.iter().position(|a| a == needle).unwrap();
        assert!(args.starts_with(&["--mount".into(), "--propagation".into(), "private".into()]));
        assert!(args.contains(&"--pid".to_string()));
        assert!(at("/w/v/tmp") < at("/w/v/audit"), "{args:?}");
        assert_eq!(args[at("/w/v/tmp") - 1], "ro");
        assert_eq!(args[at("/w/v/audit") - 1], "rw");
        assert!(args.contains(&"A=x y'z".to_string()));
        assert!(args.contains(&"--setuid=65532".to_string()));
        assert!(args.contains(&"--setgid=65533".to_string()));
        assert_eq!(args.last().unwrap(), "$(not; expanded)");
        let without = process_spec(&spec, false).unwrap();
        assert!(!without.args.iter().any(|a| a == "--pid"));
    }
}

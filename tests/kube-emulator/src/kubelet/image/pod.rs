//! From a pod's container and an unpacked image to the [`SandboxSpec`] that runs it: the pure
//! part of image mode (the files it names are written by [`write_pod_files`]).

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};

use super::UnpackedImage;
use super::config;
use super::sandbox::{BindMount, SandboxSpec};
use crate::kubelet::config_error::ContainerConfigError;
use crate::kubelet::layout::PodLayout;
use crate::kubelet::path_map::PathMap;

/// Inputs that come from the rest of the launch (volumes planned, env resolved, credentials).
pub struct ContainerInputs<'a> {
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub container_env: &'a [(String, String)],
    /// Volume mount paths → host directories (`subPath` applied).
    pub mounts: &'a PathMap,
    pub termination_path: &'a str,
    pub termination_file: &'a Path,
    pub hostname: &'a str,
    /// The pod's kubeconfig on the host; bound into the container at the same path.
    pub kubeconfig: Option<PathBuf>,
    pub layout: &'a PodLayout,
}

/// Where the container's `/etc/hosts` is kept on the host.
pub fn hosts_file(layout: &PodLayout, container: &str) -> PathBuf {
    state_dir(layout, container).join("hosts")
}

/// Per-container directory for the overlay (upper layer, work directory, mount point).
pub fn state_dir(layout: &PodLayout, container: &str) -> PathBuf {
    layout.root().join("image").join(container)
}

/// The sandbox for the container.
pub fn sandbox_spec(
    image: &UnpackedImage,
    inputs: &ContainerInputs<'_>,
) -> Result<SandboxSpec, ContainerConfigError> {
    let container = inputs.container;
    let argv = config::argv(&image.config, container, inputs.container_env)?;
    let run_as = config::run_as(&image.config, inputs.pod, container, &image.rootfs)?;
    let mut env = config::merged_env(&image.config, inputs.container_env, inputs.hostname);
    if let Some(kubeconfig) = &inputs.kubeconfig
        && !env.iter().any(|(k, _)| k == "KUBECONFIG")
    {
        env.push((
            "KUBECONFIG".to_string(),
            kubeconfig.to_string_lossy().into_owned(),
        ));
    }
    if !env.iter().any(|(k, _)| k == "HOME") {
        env.push(("HOME".to_string(), home_of(&image.rootfs, run_as.uid)));
    }

    let mut mounts = Vec::new();
    let read_only_mounts: Vec<(String, bool)> = container
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.mount_path.clone(), m.read_only.unwrap_or(false)))
        .collect();
    for (mount_path, read_only) in read_only_mounts {
        if let Some(source) = inputs.mounts.host_path(&mount_path) {
            mounts.push(BindMount {
                source,
                target: mount_path,
                read_only,
            });
        }
    }
    if !mounts.iter().any(|m| m.target == inputs.termination_path) {
        mounts.push(BindMount {
            source: inputs.termination_file.to_path_buf(),
            target: inputs.termination_path.to_string(),
            read_only: false,
        });
    }
    // The credentials, read-only at their host paths, so the kubeconfig (its tokenFile and any
    // CA file next to it) works unchanged inside.
    if inputs.kubeconfig.is_some() {
        let root = inputs.layout.root().to_string_lossy().into_owned();
        mounts.push(BindMount {
            source: inputs.layout.root().to_path_buf(),
            target: root,
            read_only: true,
        });
    }
    mounts.push(BindMount {
        source: hosts_file(inputs.layout, &container.name),
        target: "/etc/hosts".to_string(),
        read_only: true,
    });
    if Path::new("/etc/resolv.conf").is_file() {
        mounts.push(BindMount {
            source: PathBuf::from("/etc/resolv.conf"),
            target: "/etc/resolv.conf".to_string(),
            read_only: true,
        });
    }

    let working_dir = container
        .working_dir
        .clone()
        .filter(|d| !d.is_empty())
        .or_else(|| image.config.working_dir.clone().filter(|d| !d.is_empty()))
        .unwrap_or_else(|| "/".to_string());
    Ok(SandboxSpec {
        rootfs: image.rootfs.clone(),
        state_dir: state_dir(inputs.layout, &container.name),
        read_only_root: config::read_only_root(container),
        mounts,
        uid: run_as.uid,
        gid: run_as.gid,
        working_dir,
        argv,
        env,
        log_file: inputs.layout.log_file(&container.name),
    })
}

/// `$HOME` when neither the image nor the container sets it: the user's home in the image's
/// passwd, else `/` (what container runtimes do).
fn home_of(rootfs: &Path, uid: u32) -> String {
    std::fs::read_to_string(rootfs.join("etc/passwd"))
        .ok()
        .and_then(|text| {
            text.lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|cols| cols.get(2).and_then(|u| u.parse::<u32>().ok()) == Some(uid))
                .and_then(|cols| cols.get(5).map(|h| h.to_string()))
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".to_string())
}

/// Writes the container's `/etc/hosts` (as the kubelet does for every pod) and gives the
/// container's user access to what is bound in, as a kubelet's volume setup does: with an
/// `fsGroup`, every volume is group-owned by it (directories setgid and group-writable unless
/// mounted read-only, files group-readable); without one, writable pod-scoped volumes (emptyDir)
/// are world-writable. The kubeconfig and token are handed to the container's uid.
/// Called after the volumes and credentials are on disk.
pub fn write_pod_files(
    layout: &PodLayout,
    pod: &Pod,
    sandbox: &SandboxSpec,
    container: &str,
    hostname: &str,
    termination_path: &str,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let path = hosts_file(layout, container);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(
        path,
        format!(
            "# Kubernetes-managed hosts file (process kubelet, image mode).\n\
             127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             127.0.0.1\t{hostname}\n"
        ),
    )?;
    let fs_group = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref())
        .and_then(|c| c.fs_group)
        .and_then(|g| u32::try_from(g).ok());
    let volumes_root = layout.volumes_root();
    for mount in &sandbox.mounts {
        let is_volume = mount.source.starts_with(&volumes_root)
            || mount.source.components().any(|c| c.as_os_str() == "pvc");
        if !is_volume || !mount.source.is_dir() {
            continue;
        }
        match fs_group {
            Some(group) => set_group(&mount.source, group, !mount.read_only)?,
            None if !mount.read_only && mount.source.starts_with(&volumes_root) => {
                std::fs::set_permissions(&mount.source, std::fs::Permissions::from_mode(0o1777))?;
            }
            None => {}
        }
    }
    for file in [layout.kubeconfig(), layout.token_file()] {
        if file.exists() {
            std::os::unix::fs::chown(&file, Some(sandbox.uid), Some(sandbox.gid))?;
        }
    }
    // The termination-message file is bound as a file, so it must exist, writable by the user.
    if let Some(termination) = sandbox
        .mounts
        .iter()
        .find(|m| m.target == termination_path)
        .map(|m| m.source.clone())
        && !termination.exists()
    {
        std::fs::write(&termination, b"")?;
        std::os::unix::fs::chown(&termination, Some(sandbox.uid), Some(sandbox.gid))?;
    }
    Ok(())
}

/// `chgrp -R group` plus the modes a kubelet sets for an `fsGroup`.
fn set_group(path: &Path, group: u32, writable: bool) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = std::fs::symlink_metadata(path)?;
    if metadata.file_type().is_symlink() {
        return Ok(());
    }
    std::os::unix::fs::chown(path, None, Some(group))?;
    let mode = metadata.permissions().mode() & 0o7777;
    let wanted = if metadata.is_dir() {
        mode | 0o2050 | if writable { 0o020 } else { 0 }
    } else {
        mode | 0o040 | if writable { 0o020 } else { 0 }
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted))?;
    if metadata.is_dir() {
        for entry in std::fs::read_dir(path)? {
            set_group(&entry?.path(), group, writable)?;
        }
    }
    Ok(())
}

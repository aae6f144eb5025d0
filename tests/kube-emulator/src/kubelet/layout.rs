//! Where the process kubelet keeps things on disk under `KubeletConfig::work_dir`.
//!
//! ```text
//! <work_dir>/pods/<pod uid>/            one directory per pod, removed when the pod is removed
//!     volumes/<volume name>/            emptyDir, configMap, secret, projected and downwardAPI volumes
//!     logs/<container>.log              stdout and stderr of the container (CRI format)
//!     logs/<container>.previous.log     the same for the run before the last restart
//!     termination/<container>           the container's termination message file
//!     home/                             $HOME and the working directory of the process
//!     kubeconfig.yaml, token            the pod's credentials for the API server
//! <work_dir>/pvc/<namespace>/<claim>/   persistentVolumeClaim volumes: outlive the pods that use them
//! ```
//!
//! Pods are keyed by uid like the real kubelet's `/var/lib/kubelet/pods/<uid>`, so a pod re-created
//! under the same name never sees the previous pod's emptyDir.

use std::path::{Path, PathBuf};

/// The directories and files of one pod.
#[derive(Clone, Debug)]
pub struct PodLayout {
    root: PathBuf,
}

impl PodLayout {
    /// The layout of the pod with this uid under `work_dir`.
    pub fn new(work_dir: &Path, pod_uid: &str) -> PodLayout {
        PodLayout {
            root: work_dir.join("pods").join(pod_uid),
        }
    }

    /// The pod's own directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Backing directory of a pod-scoped volume.
    pub fn volume_dir(&self, volume: &str) -> PathBuf {
        self.root.join("volumes").join(volume)
    }

    /// Directory holding every pod-scoped volume.
    pub fn volumes_root(&self) -> PathBuf {
        self.root.join("volumes")
    }

    /// The file the container's stdout and stderr go to.
    pub fn log_file(&self, container: &str) -> PathBuf {
        self.root.join("logs").join(format!("{container}.log"))
    }

    /// The log of the container's previous run, kept across one restart (`previous=true`).
    pub fn previous_log_file(&self, container: &str) -> PathBuf {
        self.root
            .join("logs")
            .join(format!("{container}.previous.log"))
    }

    /// Where the container's `terminationMessagePath` points when no volume covers it.
    pub fn termination_file(&self, container: &str) -> PathBuf {
        self.root.join("termination").join(container)
    }

    /// `$HOME` and default working directory of the process.
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    /// The kubeconfig the process finds through `$KUBECONFIG`.
    pub fn kubeconfig(&self) -> PathBuf {
        self.root.join("kubeconfig.yaml")
    }

    /// The ServiceAccount token the kubeconfig refers to (`tokenFile`), refreshed before it expires.
    pub fn token_file(&self) -> PathBuf {
        self.root.join("token")
    }
}

/// Backing directory of a persistentVolumeClaim: shared by every pod that mounts the claim and kept
/// after they are gone, like a real volume.
pub fn pvc_dir(work_dir: &Path, namespace: &str, claim: &str) -> PathBuf {
    work_dir.join("pvc").join(namespace).join(claim)
}

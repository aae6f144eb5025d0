//! Problems in a pod's spec or in the objects it refers to that keep its container from starting.
//!
//! These are not kubelet failures: the kubelet reports them in the container's `waiting` state
//! (reason and message, like `CreateContainerConfigError`), keeps the pod Pending and tries again,
//! because the missing Secret or ConfigMap may be created later.

/// Why a container cannot be started yet; `Display` is the message shown in its waiting state.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ContainerConfigError {
    /// The image has no local executable in `KubeletConfig::images`.
    #[error("image {image:?} is not mapped to a local executable by the process kubelet")]
    ImageNotMapped { image: String },
    /// A Secret referenced by env or envFrom (not optional) does not exist.
    #[error("secret {name:?} not found")]
    SecretNotFound { name: String },
    /// A ConfigMap referenced by env or envFrom (not optional) does not exist.
    #[error("configmap {name:?} not found")]
    ConfigMapNotFound { name: String },
    /// A key referenced by env does not exist in its Secret or ConfigMap.
    #[error("couldn't find key {key} in {kind} {namespace}/{name}")]
    KeyNotFound {
        kind: &'static str,
        namespace: String,
        name: String,
        key: String,
    },
    /// A `fieldRef` names a field the kubelet does not expose.
    #[error("unsupported fieldPath {path:?}")]
    UnsupportedFieldPath { path: String },
    /// An env var uses a source the process kubelet does not implement.
    #[error("env var {var:?}: {source_kind} is not supported by the process kubelet")]
    UnsupportedEnvSource {
        var: String,
        source_kind: &'static str,
    },
    /// A volume of a type the process kubelet cannot back with a directory.
    #[error("volume {volume:?}: {detail}")]
    UnsupportedVolume { volume: String, detail: String },
    /// A volumeMount names no volume of the pod.
    #[error("volumeMount {mount_path:?} refers to unknown volume {volume:?}")]
    UnknownVolume { volume: String, mount_path: String },
    /// A path from the spec would leave the directory it belongs to.
    #[error("{what}: path {path:?} must be relative and must not contain '..'")]
    UnsafePath { what: String, path: String },
    /// A volume's ConfigMap or Secret does not exist (and the volume is not optional).
    #[error("MountVolume.SetUp failed for volume {volume:?}: {kind} {name:?} not found")]
    VolumeSourceNotFound {
        volume: String,
        kind: &'static str,
        name: String,
    },
    /// A persistentVolumeClaim volume names a claim that does not exist.
    #[error("persistentvolumeclaim {claim:?} not found")]
    ClaimNotFound { claim: String },
    /// The ServiceAccount token for the pod could not be obtained.
    #[error("failed to fetch token for serviceaccount {service_account:?}: {detail}")]
    ServiceAccountToken {
        service_account: String,
        detail: String,
    },
    /// The pod has no containers (only possible against a server that does not validate pods).
    #[error("pod has no containers")]
    NoContainers,
    /// Image mode: neither the container nor the image names a command to run.
    #[error(
        "no command specified: the container has no command or args and the image no entrypoint or cmd"
    )]
    NoCommand,
    /// Image mode: the user to run as is neither numeric nor in the image's passwd/group files.
    #[error("unable to find user {user}: no matching entries in passwd file")]
    InvalidUser { user: String },
    /// Image mode: the mapped directory is not a usable unpacked image.
    #[error("unpacked image for {image:?} is unusable: {detail}")]
    UnpackedImage { image: String, detail: String },
}

impl ContainerConfigError {
    /// The waiting reason the kubelet reports for this problem.
    pub fn reason(&self) -> &'static str {
        match self {
            ContainerConfigError::ImageNotMapped { .. } => "ImageNotMapped",
            ContainerConfigError::VolumeSourceNotFound { .. }
            | ContainerConfigError::ClaimNotFound { .. }
            | ContainerConfigError::UnsupportedVolume { .. } => "ContainerCreating",
            _ => "CreateContainerConfigError",
        }
    }
}

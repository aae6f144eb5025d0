//! Image mode: the process kubelet runs a container inside a built image's root filesystem
//! instead of as a plain host process.
//!
//! An image is mapped in `KubeletConfig::images` to a directory rather than an executable; that
//! directory holds the image unpacked once (`rootfs/`, e.g. from `umoci unpack`) and the image's
//! OCI config (`image.json`, the config blob of the OCI image spec). [`launch`](super::launch)
//! sees the directory and asks this module for the [`ProcessSpec`](super::process::ProcessSpec):
//! - [`config`]: what the image says (entrypoint, cmd, env, working directory, user) combined with
//!   the pod's container as Kubernetes does (`command` replaces the entrypoint, `args` the cmd,
//!   the container's env wins, `securityContext.runAsUser/runAsGroup` win over the image's user);
//! - [`sandbox`]: a private mount namespace (and a PID namespace when the kernel allows it, so the
//!   image's entrypoint, e.g. tini, is PID 1) where the shared root filesystem is the lower layer
//!   of an overlay with a per-pod upper layer, read-only when `readOnlyRootFilesystem` says so; the
//!   pod's volumes, its termination-message file, /proc and a minimal /dev are bound in; then the
//!   process is started chrooted there with the pod's uid/gid and env.
//!
//! Everything else (volumes, credentials, logs, status) is the process kubelet's usual path: the
//! kubeconfig and token stay at their host paths, which are bound at the same paths inside.

pub mod config;
pub mod pod;
pub mod sandbox;

use std::path::{Path, PathBuf};

pub use config::ImageConfig;

/// The file in an unpacked image directory that holds the OCI image config.
pub const IMAGE_CONFIG_FILE: &str = "image.json";
/// The directory in an unpacked image directory that holds the root filesystem.
pub const ROOTFS_DIR: &str = "rootfs";

/// An image unpacked on the host: a root filesystem shared read-only by every pod that runs it,
/// and its config.
#[derive(Clone, Debug)]
pub struct UnpackedImage {
    pub rootfs: PathBuf,
    pub config: ImageConfig,
    /// `sha256:<hex>` of the image config file, reported as the container's imageID (what a
    /// container runtime reports as the image ID is the config digest).
    pub id: String,
}

/// The unpacked image directory is not usable.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an OCI image config")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path} has no {ROOTFS_DIR}/ directory")]
    NoRootfs { path: PathBuf },
}

impl UnpackedImage {
    /// Whether `path` is an unpacked image directory rather than an executable.
    pub fn is_unpacked_image(path: &Path) -> bool {
        path.join(IMAGE_CONFIG_FILE).is_file()
    }

    /// Loads the image at `dir` (see the module doc for its layout).
    pub fn open(dir: &Path) -> Result<UnpackedImage, ImageError> {
        let config_path = dir.join(IMAGE_CONFIG_FILE);
        let bytes = std::fs::read(&config_path).map_err(|source| ImageError::Read {
            path: config_path.clone(),
            source,
        })?;
        let config = ImageConfig::from_oci_json(&bytes).map_err(|source| ImageError::Parse {
            path: config_path.clone(),
            source,
        })?;
        let rootfs = dir.join(ROOTFS_DIR);
        if !rootfs.is_dir() {
            return Err(ImageError::NoRootfs {
                path: dir.to_path_buf(),
            });
        }
        use sha2::Digest;
        let id = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
        Ok(UnpackedImage { rootfs, config, id })
    }
}

//! Runs a command inside an unpacked image the way the process kubelet's image mode runs a
//! container (the same [`sandbox`] code): chrooted in an overlay of the image's root filesystem,
//! as a given uid/gid, with a read-only root and only the bound directories writable.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use kube_emulator::kubelet::image::UnpackedImage;
use kube_emulator::kubelet::image::sandbox::{self, BindMount, SandboxSpec};

/// A one-off container of an unpacked image.
pub struct OneOff {
    pub image: UnpackedImage,
    pub state_dir: PathBuf,
    pub mounts: Vec<BindMount>,
    pub uid: u32,
    pub gid: u32,
    pub read_only_root: bool,
    pub env: Vec<(String, String)>,
}

impl OneOff {
    /// A container of the image at `unpacked` as the image's own user (65532 for ours), with a
    /// read-only root and `tmp` bound at /tmp, as the chart's pods have.
    pub fn new(unpacked: &Path, scratch: &Path) -> OneOff {
        let image = UnpackedImage::open(unpacked).expect("unpacked image");
        let tmp = scratch.join("tmp");
        std::fs::create_dir_all(&tmp).expect("tmp dir");
        // An emptyDir is world-writable (0777), so any uid can use it.
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o1777))
            .expect("chmod tmp");
        let env = image.config.env_pairs();
        OneOff {
            image,
            state_dir: scratch.join("state"),
            mounts: vec![BindMount {
                source: tmp,
                target: "/tmp".into(),
                read_only: false,
            }],
            uid: 65532,
            gid: 65532,
            read_only_root: true,
            env,
        }
    }

    /// Runs `argv` (the image's entrypoint is not prepended) and returns its output.
    pub fn run(&self, argv: &[&str]) -> Output {
        let spec = SandboxSpec {
            rootfs: self.image.rootfs.clone(),
            state_dir: self.state_dir.clone(),
            read_only_root: self.read_only_root,
            mounts: self.mounts.clone(),
            uid: self.uid,
            gid: self.gid,
            working_dir: "/tmp".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: self.env.clone(),
            log_file: self.state_dir.join("unused.log"),
        };
        let process =
            sandbox::process_spec(&spec, sandbox::pid_namespace_available()).expect("sandbox spec");
        std::fs::create_dir_all(&self.state_dir).expect("state dir");
        Command::new(&process.program)
            .args(&process.args)
            .env_clear()
            .envs(process.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&process.working_dir)
            .stdin(Stdio::null())
            .output()
            .expect("start the sandbox")
    }

    /// Runs `argv` and requires success; returns stdout and stderr together.
    pub fn ok(&self, argv: &[&str]) -> String {
        let output = self.run(argv);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success(),
            "{argv:?} in {} failed ({}):\n{text}",
            self.image.rootfs.display(),
            output.status
        );
        text
    }
}

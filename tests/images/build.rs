//! Builds the two shipped images with buildah, from the Dockerfiles users build, on local base
//! images made by `.ci/image-bases.sh`, then unpacks them for the process kubelet's image mode.
//!
//! Everything is cached under `/var/cache/incident-operator/images` (or `$INCIDENT_OPERATOR_IMAGE_CACHE`): the base tarballs, a buildah
//! storage of its own (`--root`, vfs driver, so nothing touches the machine's container storage),
//! the build's layer cache, the OCI layouts and the unpacked images. The binary is built by cargo
//! outside the image (`BINARY_SOURCE=prebuilt`), kubectl is the pinned copy `.ci/install-tools.sh`
//! installed (`KUBECTL_SOURCE=prebuilt`); both checksums are verified inside the build.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::tools;

/// Tag of the images this test builds (never pushed anywhere).
pub const TAG: &str = "image-test";

/// One of the two images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shipped {
    Operator,
    Agent,
}

impl Shipped {
    pub const ALL: [Shipped; 2] = [Shipped::Operator, Shipped::Agent];

    pub fn name(self) -> &'static str {
        match self {
            Shipped::Operator => "operator",
            Shipped::Agent => "agent",
        }
    }

    pub fn dockerfile(self) -> &'static str {
        match self {
            Shipped::Operator => "docker/operator.Dockerfile",
            Shipped::Agent => "docker/agent.Dockerfile",
        }
    }

    /// The local reference the build is tagged with.
    pub fn reference(self) -> String {
        format!("localhost/incident-operator-{}:{TAG}", self.name())
    }
}

/// A built and unpacked image.
#[derive(Clone, Debug)]
pub struct BuiltImage {
    /// `rootfs/` and `image.json`: what the process kubelet's image mode takes.
    pub unpacked: PathBuf,
    /// The OCI image config (`config`, `rootfs`, `history`, …).
    pub config: Value,
    /// Bytes of the unpacked root filesystem (see [`apparent_size`]).
    pub uncompressed_bytes: u64,
    /// Sum of the gzip-compressed layer blobs, what a registry pull transfers.
    pub compressed_bytes: u64,
    pub build_seconds: f64,
}

/// Both images and what it took to make them.
#[derive(Clone, Debug)]
pub struct Built {
    pub operator: BuiltImage,
    pub agent: BuiltImage,
    pub binary: PathBuf,
    pub binary_bytes: u64,
    pub bases_seconds: f64,
    pub cargo_seconds: f64,
}

impl Built {
    pub fn image(&self, which: Shipped) -> &BuiltImage {
        match which {
            Shipped::Operator => &self.operator,
            Shipped::Agent => &self.agent,
        }
    }
}

/// What is missing for the image tests, or `None` when they can run.
pub fn missing_prerequisites() -> Option<String> {
    let missing: Vec<&str> = ["buildah", "mmdebstrap", "umoci", "unshare", "mount"]
        .into_iter()
        .filter(|tool| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "{} not found: run `bash .ci/install-image-tools.sh` as root",
            missing.join(", ")
        ));
    }
    let uid = Command::new("id").arg("-u").output().map(|o| o.stdout);
    if !uid.is_ok_and(|u| u.trim_ascii() == b"0") {
        return Some("the image tests need root (mmdebstrap --mode=root, mount namespaces)".into());
    }
    None
}

/// Where the bases and buildah's storage live: outside the checkout, because CI runs each
/// submission in a fresh clone and a cache inside it would always be cold.
/// `INCIDENT_OPERATOR_IMAGE_CACHE` overrides the default.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("INCIDENT_OPERATOR_IMAGE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/incident-operator/images"))
}

/// buildah with this test's own storage.
fn buildah() -> Command {
    let cache = cache_dir();
    let mut command = Command::new("buildah");
    command
        .arg("--root")
        .arg(cache.join("storage"))
        .arg("--runroot")
        .arg(cache.join("run"))
        .args(["--storage-driver", "vfs"]);
    command
}

/// Runs `command`, panicking with its output when it fails; returns stdout.
pub fn run(what: &str, command: &mut Command) -> String {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        panic!(
            "{what} failed ({}):\n--- stdout (last 4000 bytes)\n{}\n--- stderr (last 4000 bytes)\n{}",
            output.status,
            tail(&stdout, 4000),
            tail(&stderr, 4000)
        );
    }
    stdout
}

fn tail(text: &str, bytes: usize) -> &str {
    let mut start = text.len().saturating_sub(bytes);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

fn seconds_since(started: Instant) -> f64 {
    Duration::as_secs_f64(&started.elapsed())
}

/// Builds the release binary, the bases and both images, and unpacks them.
pub fn build_all() -> Built {
    let root = tools::repo_root();
    let cache = cache_dir();

    let started = Instant::now();
    run(
        "bash .ci/image-bases.sh",
        Command::new("bash")
            .arg(root.join(".ci/image-bases.sh"))
            .arg(&cache),
    );
    let bases_seconds = seconds_since(started);

    // The same release settings the Dockerfiles' builder stage sets.
    let started = Instant::now();
    let mut cargo = Command::new(env!("CARGO"));
    // Not the variables `cargo test` gave this process: build scripts (ring's, through cc) rerun
    // when they differ, which would make every run rebuild the TLS stack.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if (name.starts_with("CARGO_") && name != "CARGO_HOME") || name == "LD_LIBRARY_PATH" {
            cargo.env_remove(name.as_ref());
        }
    }
    run(
        "cargo build --release",
        cargo
            .args([
                "build",
                "--release",
                "--locked",
                "--bin",
                "incident-operator",
            ])
            .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
            .env("CARGO_PROFILE_RELEASE_LTO", "thin")
            .env("CARGO_TERM_COLOR", "never")
            .current_dir(root),
    );
    let cargo_seconds = seconds_since(started);
    let binary = root.join("target/release/incident-operator");

    // The `prebuilt` build context: the binary and the pinned kubectl, nothing else.
    let context = cache.join("prebuilt");
    std::fs::create_dir_all(&context).expect("prebuilt context dir");
    std::fs::copy(&binary, context.join("incident-operator")).expect("copy the binary");
    std::fs::copy(tools::tool("kubectl"), context.join("kubectl")).expect("copy kubectl");
    let binary_bytes = std::fs::metadata(&binary).expect("binary").len();
    let binary_sha = hex::encode(Sha256::digest(std::fs::read(&binary).expect("read binary")));

    let build = |which: Shipped| -> BuiltImage {
        let started = Instant::now();
        let log = cache.join(format!("build-{}.log", which.name()));
        let log_file = std::fs::File::create(&log).expect("build log");
        let status = buildah()
            .args(["bud", "--isolation", "chroot", "--pull=never", "--layers"])
            .args(["--build-arg", "BINARY_SOURCE=prebuilt"])
            .arg("--build-arg")
            .arg(format!("INCIDENT_OPERATOR_SHA256={binary_sha}"))
            // Only the agent image has kubectl stages (buildah warns about unused args).
            .args(match which {
                Shipped::Agent => &["--build-arg", "KUBECTL_SOURCE=prebuilt"][..],
                Shipped::Operator => &[][..],
            })
            .arg("--build-context")
            .arg(format!("prebuilt={}", context.display()))
            .arg("-f")
            .arg(root.join(which.dockerfile()))
            .arg("-t")
            .arg(which.reference())
            .arg(root)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log handle"))
            .stderr(log_file)
            .status()
            .expect("buildah bud starts");
        if !status.success() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            panic!(
                "buildah bud -f {} failed ({status}); log {}:\n{}",
                which.dockerfile(),
                log.display(),
                tail(&text, 6000)
            );
        }
        let build_seconds = seconds_since(started);
        let (unpacked, config, compressed_bytes) = unpack(which);
        BuiltImage {
            uncompressed_bytes: apparent_size(&unpacked.join("rootfs")),
            unpacked,
            config,
            compressed_bytes,
            build_seconds,
        }
    };
    Built {
        operator: build(Shipped::Operator),
        agent: build(Shipped::Agent),
        binary,
        binary_bytes,
        bases_seconds,
        cargo_seconds,
    }
}

/// Pushes the image to an OCI layout and unpacks it with umoci; writes `image.json` beside the
/// root filesystem. Returns the unpacked directory, the image config and the compressed size.
fn unpack(which: Shipped) -> (PathBuf, Value, u64) {
    let cache = cache_dir();
    let layout = cache.join("oci").join(which.name());
    let _ = std::fs::remove_dir_all(&layout);
    std::fs::create_dir_all(layout.parent().expect("parent")).expect("oci dir");
    run(
        "buildah push",
        buildah()
            .args(["push", "--quiet"])
            .arg(which.reference())
            .arg(format!("oci:{}:{TAG}", layout.display())),
    );
    let unpacked = cache.join("unpacked").join(which.name());
    let _ = std::fs::remove_dir_all(&unpacked);
    std::fs::create_dir_all(unpacked.parent().expect("parent")).expect("unpacked dir");
    run(
        "umoci unpack",
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:{TAG}", layout.display()))
            .arg(&unpacked),
    );

    // index.json → manifest → config and layers.
    let blob = |digest: &str| -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        layout.join("blobs/sha256").join(hex)
    };
    let read_json = |path: &Path| -> Value {
        serde_json::from_slice(&std::fs::read(path).expect("OCI layout file")).expect("OCI JSON")
    };
    let index = read_json(&layout.join("index.json"));
    let manifest = read_json(&blob(
        index["manifests"][0]["digest"]
            .as_str()
            .expect("manifest digest"),
    ));
    let config_path = blob(
        manifest["config"]["digest"]
            .as_str()
            .expect("config digest"),
    );
    std::fs::copy(&config_path, unpacked.join("image.json")).expect("image.json");
    let config = read_json(&config_path);
    let compressed = manifest["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["size"].as_u64().unwrap_or(0))
        .sum();
    (unpacked, config, compressed)
}

/// Bytes of the files under `dir` (`du --apparent-size`): the unpacked image, which is what the
/// sum of its uncompressed layers comes to when no layer deletes another's files.
pub fn apparent_size(dir: &Path) -> u64 {
    let out = run(
        "du",
        Command::new("du")
            .args(["-s", "--apparent-size", "--block-size=1"])
            .arg(dir),
    );
    out.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("du output")
}

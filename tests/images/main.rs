//! The shipped images, built for real: `docker/operator.Dockerfile` and `docker/agent.Dockerfile`
//! built with buildah (no daemon) from local stand-ins of their public bases made by mmdebstrap
//! ([`build`]), then checked as a user would check them, run with the process kubelet's image
//! mode ([`run_in`]), and measured; `docs/images.md` and `docs/sbom.md` carry the figures and the
//! bill of materials this test generates ([`docs`]). The last test installs the chart with helm
//! into the emulator and runs the operator and an agent pod inside these images ([`chart_e2e`]).
//!
//! Not part of the default `cargo test` (`test = false` in Cargo.toml: a cold run builds a
//! release binary and two images); `.ci/run` runs it with `cargo test --test images` after
//! `.ci/install-image-tools.sh`. Without buildah, mmdebstrap, umoci or root every test fails
//! with a message saying what to install: it never passes without having built anything.
//! `IMAGES_UPDATE_DOCS=1` rewrites the generated parts of the docs from this run.

#[path = "../support/tools.rs"]
mod tools;

mod build;
mod chart_e2e;
mod docs;
mod run_in;

use std::sync::OnceLock;

use build::{Built, Shipped};
use run_in::OneOff;

/// The images, built once for every test of this binary. A failed build fails every test with
/// the same message (without building again).
fn built() -> &'static Built {
    static BUILT: OnceLock<Result<Built, String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        if let Some(missing) = build::missing_prerequisites() {
            return Err(format!("image tests cannot run: {missing}"));
        }
        std::panic::catch_unwind(build::build_all).map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the image build panicked".to_string())
        })
    });
    match result {
        Ok(built) => built,
        Err(message) => panic!("{message}"),
    }
}

fn one_off(which: Shipped) -> (OneOff, tempfile::TempDir) {
    let scratch = tempfile::tempdir().expect("scratch dir");
    (
        OneOff::new(&built().image(which).unpacked, scratch.path()),
        scratch,
    )
}

#[test]
fn images_build_and_their_sizes_are_measured() {
    let built = built();
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    println!("| image | unpacked | compressed layers | build |");
    println!("|---|---:|---:|---:|");
    for which in Shipped::ALL {
        let image = built.image(which);
        println!(
            "| {} | {:.1} MiB | {:.1} MiB | {:.1} s |",
            which.name(),
            mib(image.uncompressed_bytes),
            mib(image.compressed_bytes),
            image.build_seconds
        );
        assert!(image.uncompressed_bytes > built.binary_bytes);
    }
    println!(
        "binary {:.1} MiB; bases {:.1} s; cargo build --release {:.1} s",
        mib(built.binary_bytes),
        built.bases_seconds,
        built.cargo_seconds
    );
    // The agent carries the operator's binary plus a Debian userland and the tools.
    assert!(built.agent.uncompressed_bytes > built.operator.uncompressed_bytes);
}

#[test]
fn both_images_run_as_65532_and_the_agent_starts_through_tini() {
    let built = built();
    for which in Shipped::ALL {
        let config = &built.image(which).config["config"];
        assert_eq!(config["User"], "65532:65532", "{} image user", which.name());
    }
    let operator = &built.operator.config["config"];
    assert_eq!(
        operator["Entrypoint"],
        serde_json::json!(["/usr/local/bin/incident-operator"])
    );
    assert_eq!(operator["Cmd"], serde_json::json!(["controller"]));
    let agent = &built.agent.config["config"];
    assert_eq!(
        agent["Entrypoint"],
        serde_json::json!(["/usr/bin/tini", "--", "/usr/local/bin/incident-operator"])
    );
    assert_eq!(agent["Cmd"], serde_json::json!(["agent"]));

    let (container, _scratch) = one_off(Shipped::Agent);
    assert_eq!(container.ok(&["id", "-u"]).trim(), "65532");
    assert_eq!(container.ok(&["id", "-g"]).trim(), "65532");
}

#[test]
fn the_binary_runs_in_both_images_with_every_glibc_symbol_resolved() {
    let built = built();
    let host = build::run(
        "incident-operator --version on the host",
        std::process::Command::new(&built.binary).arg("--version"),
    );
    for which in Shipped::ALL {
        let (mut container, _scratch) = one_off(which);
        // Resolve every symbol at load time: a glibc the binary needs and the base lacks fails
        // here, not on the first call that needs it.
        container.env.push(("LD_BIND_NOW".into(), "1".into()));
        let inside = container.ok(&["/usr/local/bin/incident-operator", "--version"]);
        assert_eq!(inside.trim(), host.trim(), "{} image", which.name());
    }
}

/// The tools the system prompt promises the model (`The shell has kubectl …, curl, … and git.`).
fn promised_tools() -> Vec<String> {
    let prompt = std::fs::read_to_string(tools::repo_root().join("src/agent/prompt.rs"))
        .expect("src/agent/prompt.rs");
    let flat = prompt.replace("\\\n", " ");
    let sentence = flat
        .split("The shell has")
        .nth(1)
        .and_then(|rest| rest.split('.').next())
        .expect("the system prompt names the shell's tools");
    sentence
        .replace(" and ", ", ")
        .split(',')
        .filter_map(|item| item.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_promised_tool_runs_as_65532_with_only_tmp_writable() {
    let tools = promised_tools();
    assert_eq!(
        tools,
        [
            "kubectl", "curl", "jq", "dig", "ip", "ss", "ps", "nc", "git"
        ],
        "the prompt's tool list changed: check the agent image installs every tool"
    );
    let (container, _scratch) = one_off(Shipped::Agent);
    for tool in &tools {
        let version: &[&str] = match tool.as_str() {
            "kubectl" => &["kubectl", "version", "--client"],
            "dig" => &["dig", "-v"],
            "ip" | "ss" => &[tool.as_str(), "-V"],
            // netcat-openbsd has no version flag; -h prints its usage and exits 0.
            "nc" => &["nc", "-h"],
            _ => &[tool.as_str(), "--version"],
        };
        let text = container.ok(version);
        println!("{tool}: {}", text.lines().next().unwrap_or_default());
    }
    container.ok(&["sh", "-c", "echo ok > /tmp/written && cat /tmp/written"]);
    for path in ["/etc/written", "/written", "/usr/local/bin/written"] {
        let output = container.run(&["sh", "-c", &format!("echo no > {path}")]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains("Read-only file system"),
            "{path} must not be writable: {} {stderr}",
            output.status
        );
    }
}

#[test]
fn tini_is_pid_1_of_the_agent_container_or_the_fallback_says_why() {
    let (container, _scratch) = one_off(Shipped::Agent);
    let output = container.run(&["/usr/bin/tini", "--", "ps", "-o", "pid=,comm=", "-p", "1"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if kube_emulator::kubelet::image::sandbox::pid_namespace_available() {
        assert!(output.status.success(), "{stdout}{stderr}");
        assert_eq!(stdout.split_whitespace().collect::<Vec<_>>(), ["1", "tini"]);
    } else {
        println!("no PID namespace here: tini runs as a plain process and says so");
        assert!(stderr.contains("not running as PID 1"), "{stderr}");
    }
}

#[test]
fn docs_carry_the_measured_sizes_and_the_generated_sbom() {
    docs::check_or_update(built());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn helm_chart_runs_the_operator_and_an_agent_inside_the_images() {
    chart_e2e::run(built()).await;
}

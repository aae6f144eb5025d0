//! `.ci/run` is what CI executes on a fresh machine; the README tells a new user to run the same
//! test command. These checks keep the two equal and keep CI from leaning on a warm cache.

use std::path::Path;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The `cargo test --workspace` line of `.ci/run`: the suite itself (the image tests after it are
/// their own, root-only binary).
fn ci_test_command() -> String {
    read(".ci/run")
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("cargo test --workspace"))
        .expect(".ci/run runs cargo test")
        .to_string()
}

/// The command part (before the `#` comment) of the README's second quick-start line.
fn readme_test_command() -> String {
    let readme = read("README.md");
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("README.md starts with a ```sh block");
    let line = block.lines().nth(1).expect("a second command in the block");
    line.split('#')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn readme_runs_exactly_the_ci_test_command() {
    assert_eq!(readme_test_command(), ci_test_command());
}

#[test]
fn ci_reports_every_test_binary() {
    let command = ci_test_command();
    assert!(
        command.contains("--workspace") && command.contains("--no-fail-fast"),
        "`{command}` must cover the workspace and not stop at the first failing binary"
    );
}

#[test]
fn ci_never_depends_on_a_warm_cache() {
    for file in [".ci/run", ".ci/install-tools.sh", "tests/dockerfiles.rs"] {
        let text = read(file);
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            assert!(
                !code.contains("--offline") && !code.contains("\"--frozen\""),
                "{file}:{}: an offline cargo flag fails on an empty cargo cache: {line}",
                number + 1
            );
        }
    }
}

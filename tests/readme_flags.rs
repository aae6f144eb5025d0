//! The README documents every flag of every subcommand; this keeps that section equal to what
//! `--help` prints. When it fails, run `UPDATE_README=1 cargo test --test readme_flags`.

use std::path::Path;
use std::process::Command;

const SUBCOMMANDS: &[&str] = &["investigate", "agent", "controller", "crdgen", "audit-api"];

fn help(subcommand: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_incident-operator"))
        .args([subcommand, "--help"])
        // No environment values shown and a fixed width, so the text is the same everywhere.
        .env_clear()
        .env("COLUMNS", "100")
        .output()
        .expect("run incident-operator --help");
    assert!(out.status.success(), "{subcommand} --help failed");
    String::from_utf8(out.stdout).expect("UTF-8 help")
}

fn block(subcommand: &str, text: &str) -> String {
    format!(
        "<!-- BEGIN flags: {subcommand} -->\n```text\n$ incident-operator {subcommand} --help\n{}\n```\n<!-- END flags: {subcommand} -->",
        text.trim_end()
    )
}

/// Replaces the marked block of `subcommand` in `readme`; panics when the markers are missing.
fn with_block(readme: &str, subcommand: &str, text: &str) -> String {
    let begin = format!("<!-- BEGIN flags: {subcommand} -->");
    let end = format!("<!-- END flags: {subcommand} -->");
    let start = readme
        .find(&begin)
        .unwrap_or_else(|| panic!("README.md lacks `{begin}`"));
    let stop = readme[start..]
        .find(&end)
        .map(|i| start + i + end.len())
        .unwrap_or_else(|| panic!("README.md lacks `{end}`"));
    format!(
        "{}{}{}",
        &readme[..start],
        block(subcommand, text),
        &readme[stop..]
    )
}

#[test]
fn readme_documents_every_flag() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).expect("read README.md");
    let mut expected = readme.clone();
    for sub in SUBCOMMANDS {
        expected = with_block(&expected, sub, &help(sub));
    }
    if std::env::var_os("UPDATE_README").is_some() {
        std::fs::write(&path, &expected).expect("write README.md");
        return;
    }
    assert!(
        readme == expected,
        "README.md's flag section is out of date: run `UPDATE_README=1 cargo test --test readme_flags`"
    );
}

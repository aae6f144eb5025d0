//! The committed CRD copies must be exactly what the Rust types generate. When this fails, run
//! `cargo run -q -- crdgen > crds/incidents.yaml` (and copy it into the chart) and commit.

use std::path::Path;

use incident_operator::incident::crd_yaml;

/// Every committed copy of the CRD, relative to the workspace root.
const COPIES: &[&str] = &[
    "crds/incidents.yaml",
    "charts/incident-operator/crds/incidents.yaml",
];

#[test]
fn committed_crds_match_the_types() {
    let generated = crd_yaml();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for copy in COPIES {
        let path = root.join(copy);
        if copy.starts_with("charts/") && !root.join("charts/incident-operator").exists() {
            continue; // the chart copy is checked once the chart exists
        }
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        assert!(
            committed == generated,
            "{copy} has drifted from src/incident.rs: run `cargo run -q -- crdgen > {copy}`"
        );
        checked += 1;
    }
    assert!(checked >= 1);
}

#[test]
fn crdgen_subcommand_prints_the_same_crd() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_incident-operator"))
        .arg("crdgen")
        .output()
        .expect("run incident-operator crdgen");
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), crd_yaml());
}

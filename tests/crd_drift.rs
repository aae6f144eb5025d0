//! The committed CRD copies must be exactly what the Rust types generate. When this fails,
//! regenerate them from `crdgen` (it prints the Incident CRD, then the IncidentApproval CRD) into
//! `crds/` and the chart's `crds/`, and commit.

use std::path::Path;

use incident_operator::incident::crd_yaml;

/// What prints one CRD.
type Generator = fn() -> String;

/// Every committed copy of each CRD, relative to the workspace root, with what generates it.
const COPIES: &[(&str, Generator)] = &[
    ("crds/incidents.yaml", crd_yaml),
    ("charts/incident-operator/crds/incidents.yaml", crd_yaml),
    (
        "crds/incidentapprovals.yaml",
        incident_operator::approval::crd_yaml,
    ),
    (
        "charts/incident-operator/crds/incidentapprovals.yaml",
        incident_operator::approval::crd_yaml,
    ),
];

#[test]
fn committed_crds_match_the_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for (copy, generate) in COPIES {
        let generated = generate();
        let path = root.join(copy);
        if copy.starts_with("charts/") && !root.join("charts/incident-operator").exists() {
            continue; // the chart copy is checked once the chart exists
        }
        let committed = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        assert!(
            committed == generated,
            "{copy} has drifted from the Rust types: regenerate it from `cargo run -q -- crdgen`"
        );
        checked += 1;
    }
    assert!(checked >= 2);
}

#[test]
fn crdgen_subcommand_prints_the_same_crd() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_incident-operator"))
        .arg("crdgen")
        .output()
        .expect("run incident-operator crdgen");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{}{}", crd_yaml(), incident_operator::approval::crd_yaml())
    );
}

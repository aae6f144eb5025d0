//! Reruns: a finished Incident runs its agent again only when the annotation
//! `sre.agentlab.dev/rerun` gets a value the controller has not honoured yet (a spec change alone
//! never reruns, so editing a typo in the title does not buy a second investigation).
//!
//! The controller records the value it acted on in `sre.agentlab.dev/rerun-honoured`, and labels
//! every agent pod with the [`run_id`] derived from it.

use kube::ResourceExt;

use super::keys;
use crate::incident::Incident;

/// Run id of the first run, before any rerun was honoured.
pub const INITIAL_RUN: &str = "initial";

/// The rerun value a user asked for, if any (empty values are ignored).
pub fn requested(incident: &Incident) -> Option<&str> {
    incident
        .annotations()
        .get(keys::ANNOTATION_RERUN)
        .map(String::as_str)
        .filter(|value| !value.trim().is_empty())
}

/// The rerun value the controller last acted on.
pub fn honoured(incident: &Incident) -> Option<&str> {
    incident
        .annotations()
        .get(keys::ANNOTATION_RERUN_HONOURED)
        .map(String::as_str)
}

/// A requested rerun the controller has not acted on yet.
pub fn pending(incident: &Incident) -> Option<&str> {
    requested(incident).filter(|value| honoured(incident) != Some(*value))
}

/// Label value naming the Incident's current run: [`INITIAL_RUN`], or `r-` and a hash of the
/// honoured rerun value (any string is allowed there; label values are not that free).
pub fn run_id(incident: &Incident) -> String {
    match honoured(incident) {
        None => INITIAL_RUN.to_string(),
        Some(value) => {
            use sha2::{Digest, Sha256};
            let digest = Sha256::digest(value.as_bytes());
            format!("r-{}", hex::encode(&digest[..6]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::pod::tests::incident;

    fn annotated(pairs: &[(&str, &str)]) -> Incident {
        let mut incident = incident("x");
        incident.metadata.annotations = Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        incident
    }

    #[test]
    fn no_annotation_means_initial_run_and_nothing_pending() {
        let plain = incident("x");
        assert_eq!(run_id(&plain), INITIAL_RUN);
        assert_eq!(pending(&plain), None);
        assert_eq!(pending(&annotated(&[(keys::ANNOTATION_RERUN, " ")])), None);
    }

    #[test]
    fn new_value_is_pending_until_honoured() {
        let asked = annotated(&[(keys::ANNOTATION_RERUN, "2026-01-02 please")]);
        assert_eq!(pending(&asked), Some("2026-01-02 please"));
        let done = annotated(&[
            (keys::ANNOTATION_RERUN, "2026-01-02 please"),
            (keys::ANNOTATION_RERUN_HONOURED, "2026-01-02 please"),
        ]);
        assert_eq!(pending(&done), None);
        let id = run_id(&done);
        assert!(id.starts_with("r-") && id.len() == 14, "{id}");
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        let other = annotated(&[(keys::ANNOTATION_RERUN_HONOURED, "again")]);
        assert_ne!(run_id(&other), id);
    }
}

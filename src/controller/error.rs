//! What can go wrong in one reconcile: one variant per failing call, each with its source, a short
//! stable label for the `reconcile_failures_total` metric and a PascalCase category used as the
//! reason of the Warning event.

use super::pod::BuildPodError;

/// A reconcile failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Incident does not match the schema; nothing is retried until it changes.
    #[error("Incident {name} does not match the schema: {message}")]
    InvalidSpec { name: String, message: String },

    /// An Incident from the watch had no namespace or name.
    #[error("an Incident without {0} came from the watch")]
    MissingMetadata(&'static str),

    /// Re-reading the Incident before finishing it.
    #[error("reading Incident {name}")]
    GetIncident {
        name: String,
        #[source]
        source: kube::Error,
    },

    /// Checking that the API-key Secret exists.
    #[error("checking the API-key Secret {namespace}/{secret}")]
    CheckApiKeySecret {
        namespace: String,
        secret: String,
        #[source]
        source: kube::Error,
    },

    /// Building the agent pod (the Incident lacks metadata).
    #[error("building the agent pod for Incident {name}")]
    BuildPod {
        name: String,
        #[source]
        source: BuildPodError,
    },

    /// Creating the agent pod.
    #[error("creating agent pod {pod}")]
    CreatePod {
        pod: String,
        #[source]
        source: kube::Error,
    },

    /// The API server refused the agent pod because its ServiceAccount does not exist.
    #[error("the API server refused agent pod {pod}: {refusal}")]
    MissingServiceAccount {
        pod: String,
        namespace: String,
        service_account: String,
        refusal: String,
    },

    /// Reading a pod whose name was already taken when we tried to create it.
    #[error("reading existing pod {pod}")]
    GetPod {
        pod: String,
        #[source]
        source: kube::Error,
    },

    /// The agent pod's name is held by a pod that is not this attempt's.
    #[error("pod {pod} exists but belongs to another Incident, run or attempt")]
    PodNameTaken { pod: String },

    /// Deleting a finished or leftover agent pod.
    #[error("deleting agent pod {pod}")]
    DeletePod {
        pod: String,
        #[source]
        source: kube::Error,
    },

    /// Writing the honoured rerun annotation.
    #[error("recording the rerun of Incident {name}")]
    RecordRerun {
        name: String,
        #[source]
        source: kube::Error,
    },

    /// Clearing the previous run's results from the status.
    #[error("resetting the status of Incident {name}")]
    ResetStatus {
        name: String,
        #[source]
        source: kube::Error,
    },

    /// Applying the controller's status.
    #[error("applying the status of Incident {name}")]
    ApplyStatus {
        name: String,
        #[source]
        source: kube::Error,
    },

    /// Serializing the status for the apply.
    #[error("serializing the status of Incident {name}")]
    SerializeStatus {
        name: String,
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// Short, stable, snake_case label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::InvalidSpec { .. } => "invalid_spec",
            Error::MissingMetadata(_) => "missing_metadata",
            Error::GetIncident { .. } => "get_incident",
            Error::CheckApiKeySecret { .. } => "check_api_key_secret",
            Error::BuildPod { .. } => "build_pod",
            Error::CreatePod { .. } => "create_pod",
            Error::MissingServiceAccount { .. } => "missing_service_account",
            Error::GetPod { .. } => "get_pod",
            Error::PodNameTaken { .. } => "pod_name_taken",
            Error::DeletePod { .. } => "delete_pod",
            Error::RecordRerun { .. } => "record_rerun",
            Error::ResetStatus { .. } => "reset_status",
            Error::ApplyStatus { .. } => "apply_status",
            Error::SerializeStatus { .. } => "serialize_status",
        }
    }

    /// PascalCase category, the reason of the Warning event about this error.
    pub fn category(&self) -> &'static str {
        match self {
            Error::InvalidSpec { .. } => "InvalidSpec",
            Error::MissingMetadata(_) => "MissingMetadata",
            Error::GetIncident { .. } => "GetIncidentFailed",
            Error::CheckApiKeySecret { .. } => "CheckApiKeySecretFailed",
            Error::BuildPod { .. } => "BuildPodFailed",
            Error::CreatePod { .. } => "CreatePodFailed",
            Error::MissingServiceAccount { .. } => "MissingServiceAccount",
            Error::GetPod { .. } => "GetPodFailed",
            Error::PodNameTaken { .. } => "PodNameTaken",
            Error::DeletePod { .. } => "DeletePodFailed",
            Error::RecordRerun { .. } => "RecordRerunFailed",
            Error::ResetStatus { .. } => "ResetStatusFailed",
            Error::ApplyStatus { .. } => "ApplyStatusFailed",
            Error::SerializeStatus { .. } => "SerializeStatusFailed",
        }
    }

    /// Whether only a change to the Incident can fix this (so retrying on a timer is pointless).
    pub fn awaits_change(&self) -> bool {
        matches!(self, Error::InvalidSpec { .. } | Error::MissingMetadata(_))
    }

    /// The error and its causes, `: `-separated, for logs and event notes.
    pub fn chain(&self) -> String {
        crate::errors::error_chain(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_categories_are_stable_and_chains_complete() {
        let error = Error::BuildPod {
            name: "x".to_string(),
            source: BuildPodError::MissingMetadata("uid"),
        };
        assert_eq!(error.metric_label(), "build_pod");
        assert_eq!(error.category(), "BuildPodFailed");
        assert!(!error.awaits_change());
        assert_eq!(
            error.chain(),
            "building the agent pod for Incident x: the Incident has no uid; it must come from the API server"
        );
        let invalid = Error::InvalidSpec {
            name: "x".to_string(),
            message: "bad".to_string(),
        };
        assert!(invalid.awaits_change());
        assert!(
            invalid
                .category()
                .chars()
                .next()
                .is_some_and(char::is_uppercase)
        );
    }
}

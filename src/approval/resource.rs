//! The `IncidentApproval` custom resource (`sre.agentlab.dev/v1alpha1`): one human decision on one
//! proposed plan, named by its hash. Created by `incident-operator approve|reject` (or kubectl);
//! the chart's ValidatingAdmissionPolicy makes the API server check that `spec.approver` is the
//! requesting user and refuse any later change, so the object is the cluster's own attestation of
//! who decided. The controller only reads these objects (it never trusts the plan from them: the
//! plan it executes is the one in the Incident's `status.plan`).

use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::plan::Decision;

/// Longest comment an approver may leave.
pub const MAX_COMMENT_CHARS: usize = 1024;

/// A human's approve or reject of the plan an Incident proposed.
// One `printcolumn(...)` per column is kube's documented form; clippy reads them as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[kube(
    group = "sre.agentlab.dev",
    version = "v1alpha1",
    kind = "IncidentApproval",
    plural = "incidentapprovals",
    shortname = "incapp",
    category = "sre",
    namespaced,
    doc = "A human decision (approve or reject) on the remediation plan an Incident proposed, named by the plan's hash. Immutable once created.",
    printcolumn(name = "Incident", type_ = "string", json_path = ".spec.incident"),
    printcolumn(name = "Decision", type_ = "string", json_path = ".spec.decision"),
    printcolumn(name = "Approver", type_ = "string", json_path = ".spec.approver"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "PlanHash",
        type_ = "string",
        json_path = ".spec.planHash",
        priority = "1"
    ),
    printcolumn(
        name = "Comment",
        type_ = "string",
        json_path = ".spec.comment",
        priority = "1"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct IncidentApprovalSpec {
    /// Name of the Incident (same namespace) whose plan this decides.
    #[schemars(length(min = 1, max = 253))]
    pub incident: String,
    /// `status.plan.planHash` of that Incident when the decision was made: `sha256:<64 hex>`.
    #[schemars(pattern(r"^sha256:[0-9a-f]{64}$"))]
    pub plan_hash: String,
    /// `approve` runs the plan; `reject` closes the Incident with outcome `rejected`.
    pub decision: Decision,
    /// Username of the person deciding; the admission policy refuses any other value than the
    /// requesting user's.
    #[schemars(length(min = 1, max = 253))]
    pub approver: String,
    /// Why, for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub comment: Option<String>,
}

/// The CRD as YAML, as `crds/incidentapprovals.yaml` holds it (`crdgen` prints it after the
/// Incident CRD).
pub fn crd_yaml() -> String {
    crate::incident::generated_crd_yaml(&IncidentApproval::crd(), "src/approval/resource.rs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_names_columns_and_bounds() {
        let crd = IncidentApproval::crd();
        assert_eq!(crd.spec.group, crate::incident::API_GROUP);
        assert_eq!(crd.spec.names.plural, "incidentapprovals");
        assert_eq!(crd.spec.names.short_names, Some(vec!["incapp".to_string()]));
        assert_eq!(crd.spec.scope, "Namespaced");
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, crate::incident::API_VERSION);
        // No status: the object is a record, nobody writes to it after creation.
        assert!(version.subresources.is_none());
        let columns: Vec<_> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            columns,
            [
                "Incident", "Decision", "Approver", "Age", "PlanHash", "Comment"
            ]
        );
        let yaml = crd_yaml();
        for bound in ["maxLength: 253", "maxLength: 1024", "^sha256:[0-9a-f]{64}$"] {
            assert!(yaml.contains(bound), "missing {bound}");
        }
    }

    #[test]
    fn spec_round_trips_in_camel_case() {
        let spec: IncidentApprovalSpec = serde_json::from_value(serde_json::json!({
            "incident": "web-down",
            "planHash": format!("sha256:{}", "a".repeat(64)),
            "decision": "reject",
            "approver": "alice",
        }))
        .unwrap();
        assert_eq!(spec.decision, Decision::Reject);
        assert_eq!(spec.comment, None);
        let back = serde_json::to_value(&spec).unwrap();
        assert!(back.get("planHash").is_some());
        assert!(back.get("comment").is_none());
    }
}

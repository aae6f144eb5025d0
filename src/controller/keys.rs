//! Every string the API server sees more than once: labels, annotations, field managers and the
//! fixed names inside an agent pod. Kept in one place so the pod builder, the watch selectors and
//! the tests cannot drift apart.

/// `app.kubernetes.io/name` of everything this operator creates.
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
/// Value of [`LABEL_NAME`].
pub const APP_NAME: &str = "incident-operator";
/// `app.kubernetes.io/component`: which part of the operator an object belongs to.
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
/// Value of [`LABEL_COMPONENT`] on agent pods.
pub const COMPONENT_AGENT: &str = "agent";
/// `app.kubernetes.io/managed-by`: who creates and deletes the object.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Name of the Incident an agent pod works on (shortened with a hash when longer than a label value
/// may be; the owner reference is what the controller relies on).
pub const LABEL_INCIDENT: &str = "sre.agentlab.dev/incident";
/// Attempt number (1-based) of an agent pod within the current run of its Incident.
pub const LABEL_ATTEMPT: &str = "sre.agentlab.dev/attempt";
/// Which run of its Incident an agent pod belongs to (see [`super::rerun::run_id`]), so pods left
/// from before a rerun are never mistaken for the current run's.
pub const LABEL_RUN: &str = "sre.agentlab.dev/run";

/// The label selector of the controller's pod watch: agent pods of this operator, nothing else.
pub const AGENT_POD_SELECTOR: &str =
    "app.kubernetes.io/name=incident-operator,app.kubernetes.io/component=agent";

/// Set (or change) this annotation on a finished Incident to run its agent again.
pub const ANNOTATION_RERUN: &str = "sre.agentlab.dev/rerun";
/// The value of [`ANNOTATION_RERUN`] the controller last acted on; written by the controller.
pub const ANNOTATION_RERUN_HONOURED: &str = "sre.agentlab.dev/rerun-honoured";
/// Full `namespace/name` of the Incident, on agent pods (label values are limited to 63 characters).
pub const ANNOTATION_INCIDENT: &str = "sre.agentlab.dev/incident";

/// Field manager of every write the controller makes (status, annotations), always forced.
pub const CONTROLLER_FIELD_MANAGER: &str = "incident-operator-controller";
/// Field manager the agent uses for its own status patches from inside its pod.
pub const AGENT_FIELD_MANAGER: &str = "incident-operator-agent";

/// Name of the one container in an agent pod.
pub const AGENT_CONTAINER: &str = "agent";
/// Where the agent writes its audit documents; the audit volume is mounted here.
pub const AUDIT_DIR: &str = "/var/lib/incident-operator/audit";
/// Environment variable that tells the agent where [`AUDIT_DIR`] is.
pub const ENV_AUDIT_DIR: &str = "INCIDENT_AUDIT_DIR";
/// Environment variable carrying the Anthropic API key (always from a Secret).
pub const ENV_API_KEY: &str = "ANTHROPIC_API_KEY";
/// Environment variable overriding the Anthropic API base URL.
pub const ENV_BASE_URL: &str = "ANTHROPIC_BASE_URL";
/// Where the agent writes its [`crate::incident::AgentTermination`] JSON.
pub const TERMINATION_LOG: &str = "/dev/termination-log";
/// Name of the audit volume in an agent pod.
pub const VOLUME_AUDIT: &str = "audit";
/// Name of the writable scratch volume mounted at `/tmp`.
pub const VOLUME_TMP: &str = "tmp";

/// Name of the Incident CRD, for the "is it installed" check at start-up.
pub const CRD_NAME: &str = "incidents.sre.agentlab.dev";
/// Label of an agent pod saying which session it runs: absent for an investigation, [`STAGE_EXECUTE`]
/// for the session that runs an approved plan.
pub const LABEL_STAGE: &str = "sre.agentlab.dev/stage";
/// [`LABEL_STAGE`] value of the execution session's pod.
pub const STAGE_EXECUTE: &str = "execute";

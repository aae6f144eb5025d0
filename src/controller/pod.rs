//! Build step: the agent pod that should exist for one attempt at one Incident.
//!
//! Pure: [`build_agent_pod`] turns an Incident, an attempt number and the operator's
//! [`AgentPodConfig`] into a complete `Pod`; the apply step only sends it. Everything an SRE would
//! want to check in review is visible here: the Secret reference (the key is never inlined), the
//! hardened security context, the deadline, the volumes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, ObjectFieldSelector,
    PersistentVolumeClaimVolumeSource, Pod, PodSecurityContext, PodSpec, ResourceRequirements,
    SeccompProfile, SecretKeySelector, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};

use super::keys;
use crate::incident::{Incident, Mode};
use crate::plan::{ApprovalRecord, ProposedPlan, env};

/// Longest pod name we create: a pod's hostname is its name, and hostnames are DNS labels.
pub const MAX_POD_NAME_LEN: usize = 63;
/// Longest label value Kubernetes accepts.
pub const MAX_LABEL_VALUE_LEN: usize = 63;
/// UID and GID the agent runs as (the distroless `nonroot` user).
pub const AGENT_UID: i64 = 65532;

/// Where the audit documents go: a shared PersistentVolumeClaim, or the pod's own `emptyDir`
/// (lost with the pod; fine for trying things out, not for production).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditVolume {
    /// Mount this PersistentVolumeClaim (ReadWriteMany when agents may land on several nodes).
    Claim(String),
    /// An `emptyDir` that lives as long as the pod.
    EmptyDir,
}

/// CPU and memory of the agent container, as Kubernetes quantities (`100m`, `256Mi`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentResources {
    pub cpu_request: Option<String>,
    pub memory_request: Option<String>,
    pub cpu_limit: Option<String>,
    pub memory_limit: Option<String>,
}

/// The operator-wide defaults of an agent session, passed to the agent as flags. An Incident's
/// `spec.agent` overrides them; the agent applies those overrides itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentDefaults {
    pub model: String,
    pub max_turns: u32,
    pub command_timeout_seconds: u32,
    pub session_timeout_seconds: u32,
    pub max_tokens: u64,
}

/// Everything about an agent pod that comes from the operator's flags rather than the Incident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentPodConfig {
    /// Container image holding the `incident-operator` binary.
    pub image: String,
    /// `imagePullPolicy` of the agent container; Kubernetes' default when `None`.
    pub image_pull_policy: Option<String>,
    /// ServiceAccount the agent's shell commands act as (investigate mode: read-only).
    pub service_account: String,
    /// ServiceAccount for Incidents in `remediate` mode, which may change things; without it those
    /// Incidents run under [`Self::service_account`] too (and can only read).
    pub remediation_service_account: Option<String>,
    /// Secret (in the Incident's namespace) holding the Anthropic API key.
    pub api_key_secret: String,
    /// Key inside [`Self::api_key_secret`].
    pub api_key_secret_key: String,
    /// Set as `ANTHROPIC_BASE_URL` when present (a proxy, a gateway, a test server).
    pub anthropic_base_url: Option<String>,
    pub audit_volume: AuditVolume,
    pub resources: AgentResources,
    pub defaults: AgentDefaults,
    /// Added to the session timeout to form the pod's `activeDeadlineSeconds`, so the agent can
    /// finish its audit and status before the kubelet kills it.
    pub deadline_grace_seconds: u32,
}

/// Why no pod could be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildPodError {
    /// The Incident has no namespace, name or uid yet (never the case for objects read from the
    /// API server).
    #[error("the Incident has no {0}; it must come from the API server")]
    MissingMetadata(&'static str),
}

/// Name of the agent pod for `attempt` (1-based) at the Incident `incident_name`:
/// `<incident>-agent-<attempt>`, shortened to [`MAX_POD_NAME_LEN`] with a hash of the full name so
/// two long names never collide.
pub fn agent_pod_name(incident_name: &str, attempt: u32) -> String {
    let suffix = format!("-agent-{attempt}");
    let full = format!("{incident_name}{suffix}");
    if full.len() <= MAX_POD_NAME_LEN {
        return full;
    }
    let hash = short_hash(incident_name);
    // `<prefix>-<hash><suffix>`: the prefix gets whatever is left.
    let room = MAX_POD_NAME_LEN - suffix.len() - hash.len() - 1;
    format!("{}-{hash}{suffix}", dns_prefix(incident_name, room))
}

/// A label value naming the Incident: the name itself, or a prefix of it with a hash when the name
/// is longer than a label value may be.
pub fn incident_label_value(incident_name: &str) -> String {
    if incident_name.len() <= MAX_LABEL_VALUE_LEN {
        return incident_name.to_string();
    }
    let hash = short_hash(incident_name);
    let room = MAX_LABEL_VALUE_LEN - hash.len() - 1;
    format!("{}-{hash}", dns_prefix(incident_name, room))
}

/// Session timeout in effect for this Incident: its override, else the operator default.
pub fn session_timeout_seconds(incident: &Incident, defaults: &AgentDefaults) -> u32 {
    incident
        .spec
        .agent
        .as_ref()
        .and_then(|agent| agent.session_timeout_seconds)
        .unwrap_or(defaults.session_timeout_seconds)
}

/// The agent pod for `attempt` (1-based) at `incident`.
pub fn build_agent_pod(
    incident: &Incident,
    attempt: u32,
    config: &AgentPodConfig,
) -> Result<Pod, BuildPodError> {
    let namespace = incident
        .namespace()
        .ok_or(BuildPodError::MissingMetadata("namespace"))?;
    let name = incident
        .meta()
        .name
        .clone()
        .ok_or(BuildPodError::MissingMetadata("name"))?;
    let owner = incident
        .controller_owner_ref(&())
        .ok_or(BuildPodError::MissingMetadata("uid"))?;

    let labels = BTreeMap::from([
        (keys::LABEL_NAME.to_string(), keys::APP_NAME.to_string()),
        (
            keys::LABEL_COMPONENT.to_string(),
            keys::COMPONENT_AGENT.to_string(),
        ),
        (
            keys::LABEL_MANAGED_BY.to_string(),
            keys::APP_NAME.to_string(),
        ),
        (
            keys::LABEL_INCIDENT.to_string(),
            incident_label_value(&name),
        ),
        (keys::LABEL_ATTEMPT.to_string(), attempt.to_string()),
        (keys::LABEL_RUN.to_string(), super::rerun::run_id(incident)),
    ]);
    let mut labels = labels;
    let approved = super::approval_stage::approved_plan(incident.status.as_ref());
    if approved.is_some() {
        labels.insert(
            keys::LABEL_STAGE.to_string(),
            keys::STAGE_EXECUTE.to_string(),
        );
    }
    let annotations = BTreeMap::from([(
        keys::ANNOTATION_INCIDENT.to_string(),
        format!("{namespace}/{name}"),
    )]);

    let deadline = i64::from(session_timeout_seconds(incident, &config.defaults))
        + i64::from(config.deadline_grace_seconds);

    Ok(Pod {
        metadata: ObjectMeta {
            name: Some(agent_pod_name(&name, attempt)),
            namespace: Some(namespace.clone()),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![agent_container(&namespace, &name, config, approved)],
            restart_policy: Some("Never".to_string()),
            active_deadline_seconds: Some(deadline),
            service_account_name: Some(service_account(incident, config).to_string()),
            // The agent's shell runs kubectl as this ServiceAccount.
            automount_service_account_token: Some(true),
            // Service environment variables are noise in the model's context and leak topology.
            enable_service_links: Some(false),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(AGENT_UID),
                run_as_group: Some(AGENT_UID),
                // Makes a freshly provisioned audit volume writable by the agent.
                fs_group: Some(AGENT_UID),
                seccomp_profile: Some(runtime_default_seccomp()),
                ..PodSecurityContext::default()
            }),
            volumes: Some(volumes(config)),
            ..PodSpec::default()
        }),
        status: None,
    })
}

/// The ServiceAccount for this Incident's next pod: the remediation account only for the
/// execution session of an approved plan (`remediate` mode); every investigation, a remediate
/// one included, runs read-only.
pub fn service_account<'a>(incident: &Incident, config: &'a AgentPodConfig) -> &'a str {
    let approved = super::approval_stage::approved_plan(incident.status.as_ref()).is_some();
    match (&incident.spec.mode, &config.remediation_service_account) {
        (Mode::Remediate, Some(remediation)) if approved => remediation,
        _ => &config.service_account,
    }
}

/// The execution session's env contract (`crate::plan::env`): the plan from `status.plan` (never
/// from the approval object), its hash, the approval record and the proposing session.
fn approved_plan_env(plan: &ProposedPlan, approval: &ApprovalRecord) -> Vec<EnvVar> {
    let mut env = vec![
        plain_env(
            env::APPROVED_PLAN_ENV,
            &serde_json::to_string(&plan.plan).unwrap_or_default(),
        ),
        plain_env(env::APPROVED_PLAN_HASH_ENV, &plan.plan_hash),
        plain_env(
            env::APPROVAL_ENV,
            &serde_json::to_string(approval).unwrap_or_default(),
        ),
    ];
    if let Some(session) = &plan.session_id {
        env.push(plain_env(env::PROPOSING_SESSION_ENV, session));
    }
    env
}

fn agent_container(
    namespace: &str,
    name: &str,
    config: &AgentPodConfig,
    approved: Option<(&ProposedPlan, &ApprovalRecord)>,
) -> Container {
    let defaults = &config.defaults;
    let args = vec![
        "agent".to_string(),
        "--incident".to_string(),
        format!("{namespace}/{name}"),
        "--model".to_string(),
        defaults.model.clone(),
        "--max-turns".to_string(),
        defaults.max_turns.to_string(),
        "--command-timeout".to_string(),
        defaults.command_timeout_seconds.to_string(),
        "--session-timeout".to_string(),
        defaults.session_timeout_seconds.to_string(),
        "--max-tokens".to_string(),
        defaults.max_tokens.to_string(),
        // Also the default; passed so runtimes that map container paths (the test kubelet) see it.
        "--termination-log".to_string(),
        keys::TERMINATION_LOG.to_string(),
    ];

    let mut env = vec![
        EnvVar {
            name: keys::ENV_API_KEY.to_string(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: config.api_key_secret.clone(),
                    key: config.api_key_secret_key.clone(),
                    optional: Some(false),
                }),
                ..EnvVarSource::default()
            }),
            ..EnvVar::default()
        },
        plain_env(keys::ENV_AUDIT_DIR, keys::AUDIT_DIR),
        // kubectl keeps its discovery cache under $HOME; the root filesystem is read-only.
        plain_env("HOME", "/tmp"),
        field_env("POD_NAME", "metadata.name"),
        field_env("POD_NAMESPACE", "metadata.namespace"),
    ];
    if let Some(url) = &config.anthropic_base_url {
        env.push(plain_env(keys::ENV_BASE_URL, url));
    }
    if let Some((plan, approval)) = approved {
        env.extend(approved_plan_env(plan, approval));
    }

    Container {
        name: keys::AGENT_CONTAINER.to_string(),
        image: Some(config.image.clone()),
        image_pull_policy: config.image_pull_policy.clone(),
        args: Some(args),
        env: Some(env),
        resources: resources(&config.resources),
        volume_mounts: Some(vec![
            VolumeMount {
                name: keys::VOLUME_AUDIT.to_string(),
                mount_path: keys::AUDIT_DIR.to_string(),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: keys::VOLUME_TMP.to_string(),
                mount_path: "/tmp".to_string(),
                ..VolumeMount::default()
            },
        ]),
        termination_message_path: Some(keys::TERMINATION_LOG.to_string()),
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(AGENT_UID),
            run_as_group: Some(AGENT_UID),
            privileged: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_string()]),
                add: None,
            }),
            seccomp_profile: Some(runtime_default_seccomp()),
            ..SecurityContext::default()
        }),
        ..Container::default()
    }
}

fn volumes(config: &AgentPodConfig) -> Vec<Volume> {
    let audit = match &config.audit_volume {
        AuditVolume::Claim(claim) => Volume {
            name: keys::VOLUME_AUDIT.to_string(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.clone(),
                read_only: Some(false),
            }),
            ..Volume::default()
        },
        AuditVolume::EmptyDir => Volume {
            name: keys::VOLUME_AUDIT.to_string(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        },
    };
    let tmp = Volume {
        name: keys::VOLUME_TMP.to_string(),
        empty_dir: Some(EmptyDirVolumeSource {
            size_limit: Some(Quantity("256Mi".to_string())),
            ..EmptyDirVolumeSource::default()
        }),
        ..Volume::default()
    };
    vec![audit, tmp]
}

fn resources(wanted: &AgentResources) -> Option<ResourceRequirements> {
    fn quantities(
        cpu: &Option<String>,
        memory: &Option<String>,
    ) -> Option<BTreeMap<String, Quantity>> {
        let map: BTreeMap<String, Quantity> = [("cpu", cpu), ("memory", memory)]
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_string(), Quantity(value.clone()?))))
            .collect();
        (!map.is_empty()).then_some(map)
    }
    let requests = quantities(&wanted.cpu_request, &wanted.memory_request);
    let limits = quantities(&wanted.cpu_limit, &wanted.memory_limit);
    if requests.is_none() && limits.is_none() {
        return None;
    }
    Some(ResourceRequirements {
        requests,
        limits,
        ..ResourceRequirements::default()
    })
}

fn runtime_default_seccomp() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_string(),
        localhost_profile: None,
    }
}

fn plain_env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value.to_string()),
        ..EnvVar::default()
    }
}

fn field_env(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.to_string(),
                api_version: None,
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// First 8 hex digits of the SHA-256 of `text`: enough to keep shortened names apart.
fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(&digest[..4])
}

/// The longest prefix of `name` of at most `max` bytes that ends in an alphanumeric character, as
/// DNS labels and label values must. Names are ASCII (DNS subdomains), so byte slicing is safe;
/// anything else is cut at a character boundary anyway.
fn dns_prefix(name: &str, max: usize) -> String {
    let mut end = max.min(name.len());
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end]
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::incident::{AgentOverrides, IncidentSpec};

    pub(crate) fn config() -> AgentPodConfig {
        AgentPodConfig {
            image: "ghcr.io/example/incident-operator:1.0".to_string(),
            image_pull_policy: Some("IfNotPresent".to_string()),
            service_account: "incident-agent".to_string(),
            remediation_service_account: None,
            api_key_secret: "anthropic".to_string(),
            api_key_secret_key: "api-key".to_string(),
            anthropic_base_url: None,
            audit_volume: AuditVolume::EmptyDir,
            resources: AgentResources {
                cpu_request: Some("100m".to_string()),
                memory_request: Some("128Mi".to_string()),
                cpu_limit: None,
                memory_limit: Some("512Mi".to_string()),
            },
            defaults: AgentDefaults {
                model: "claude-sonnet-4-5".to_string(),
                max_turns: 30,
                command_timeout_seconds: 60,
                session_timeout_seconds: 900,
                max_tokens: 2_000_000,
            },
            deadline_grace_seconds: 60,
        }
    }

    pub(crate) fn incident(name: &str) -> Incident {
        let mut incident = Incident::new(
            name,
            IncidentSpec {
                title: "checkout-api 5xx above 5%".to_string(),
                description: None,
                severity: Default::default(),
                source: Default::default(),
                alert: None,
                runbook: None,
                mode: Default::default(),
                agent: None,
                predecessors: Vec::new(),
                notifications: None,
            },
        );
        incident.metadata.namespace = Some("shop".to_string());
        incident.metadata.uid = Some(format!("uid-{name}"));
        incident.metadata.generation = Some(1);
        incident
    }

    fn container(pod: &Pod) -> &Container {
        &pod.spec.as_ref().unwrap().containers[0]
    }

    fn env<'a>(pod: &'a Pod, name: &str) -> Option<&'a EnvVar> {
        container(pod)
            .env
            .as_ref()
            .unwrap()
            .iter()
            .find(|e| e.name == name)
    }

    #[test]
    fn short_names_are_kept_as_they_are() {
        assert_eq!(agent_pod_name("disk-full", 1), "disk-full-agent-1");
        assert_eq!(incident_label_value("disk-full"), "disk-full");
    }

    #[test]
    fn long_names_are_shortened_with_a_hash() {
        let long = "a".repeat(80);
        let other = format!("{}b", "a".repeat(79));
        let name = agent_pod_name(&long, 12);
        assert_eq!(name.len(), MAX_POD_NAME_LEN, "{name}");
        assert!(name.ends_with("-agent-12"), "{name}");
        assert_ne!(
            name,
            agent_pod_name(&other, 12),
            "hash must tell them apart"
        );
        let label = incident_label_value(&long);
        assert!(label.len() <= MAX_LABEL_VALUE_LEN);
        assert_ne!(label, incident_label_value(&other));
    }

    #[test]
    fn shortened_prefix_never_ends_in_a_dash() {
        // 51 bytes of room for the prefix: make position 50 a dash.
        let name = format!("{}-{}", "x".repeat(50), "y".repeat(30));
        let pod = agent_pod_name(&name, 1);
        assert!(!pod.contains("--"), "{pod}");
        assert!(pod.len() <= MAX_POD_NAME_LEN);
    }

    #[test]
    fn pod_has_owner_labels_and_agent_args() {
        let incident = incident("disk-full");
        let pod = build_agent_pod(&incident, 2, &config()).unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("disk-full-agent-2"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("shop"));
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.kind, "Incident");
        assert_eq!(owner.uid, "uid-disk-full");
        assert_eq!(owner.controller, Some(true));
        let labels = pod.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[keys::LABEL_NAME], "incident-operator");
        assert_eq!(labels[keys::LABEL_COMPONENT], "agent");
        assert_eq!(labels[keys::LABEL_INCIDENT], "disk-full");
        assert_eq!(labels[keys::LABEL_ATTEMPT], "2");
        assert_eq!(labels[keys::LABEL_RUN], super::super::rerun::INITIAL_RUN);
        let args = container(&pod).args.as_ref().unwrap();
        assert_eq!(&args[..3], ["agent", "--incident", "shop/disk-full"]);
        let flag = |name: &str| {
            let at = args.iter().position(|a| a == name).unwrap();
            args[at + 1].clone()
        };
        assert_eq!(flag("--model"), "claude-sonnet-4-5");
        assert_eq!(flag("--max-turns"), "30");
        assert_eq!(flag("--command-timeout"), "60");
        assert_eq!(flag("--session-timeout"), "900");
        assert_eq!(flag("--max-tokens"), "2000000");
        assert_eq!(flag("--termination-log"), keys::TERMINATION_LOG);
    }

    #[test]
    fn api_key_comes_from_the_secret_never_inline() {
        let pod = build_agent_pod(&incident("x"), 1, &config()).unwrap();
        let key = env(&pod, keys::ENV_API_KEY).unwrap();
        assert_eq!(key.value, None);
        let secret = key
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!(secret.name, "anthropic");
        assert_eq!(secret.key, "api-key");
        assert!(env(&pod, keys::ENV_BASE_URL).is_none());
        assert_eq!(
            env(&pod, keys::ENV_AUDIT_DIR).unwrap().value.as_deref(),
            Some(keys::AUDIT_DIR)
        );
    }

    #[test]
    fn base_url_is_passed_when_configured() {
        let mut config = config();
        config.anthropic_base_url = Some("http://127.0.0.1:9999".to_string());
        let pod = build_agent_pod(&incident("x"), 1, &config).unwrap();
        assert_eq!(
            env(&pod, keys::ENV_BASE_URL).unwrap().value.as_deref(),
            Some("http://127.0.0.1:9999")
        );
    }

    #[test]
    fn pod_is_hardened_and_never_restarts() {
        let pod = build_agent_pod(&incident("x"), 1, &config()).unwrap();
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(spec.automount_service_account_token, Some(true));
        assert_eq!(spec.service_account_name.as_deref(), Some("incident-agent"));
        let pod_security = spec.security_context.as_ref().unwrap();
        assert_eq!(pod_security.run_as_non_root, Some(true));
        assert_eq!(pod_security.run_as_user, Some(AGENT_UID));
        assert_eq!(
            pod_security.seccomp_profile.as_ref().unwrap().type_,
            "RuntimeDefault"
        );
        let container = container(&pod);
        let security = container.security_context.as_ref().unwrap();
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(security.run_as_user, Some(AGENT_UID));
        assert_eq!(
            security.capabilities.as_ref().unwrap().drop,
            Some(vec!["ALL".to_string()])
        );
        assert_eq!(
            container.termination_message_path.as_deref(),
            Some("/dev/termination-log")
        );
        assert_eq!(
            container.termination_message_policy.as_deref(),
            Some("FallbackToLogsOnError")
        );
        let resources = container.resources.as_ref().unwrap();
        assert_eq!(
            resources.requests.as_ref().unwrap()["cpu"],
            Quantity("100m".to_string())
        );
        assert_eq!(
            resources.limits.as_ref().unwrap()["memory"],
            Quantity("512Mi".to_string())
        );
        assert!(!resources.limits.as_ref().unwrap().contains_key("cpu"));
    }

    #[test]
    fn volumes_mount_audit_and_tmp() {
        let pod = build_agent_pod(&incident("x"), 1, &config()).unwrap();
        let mounts = container(&pod).volume_mounts.as_ref().unwrap();
        let path_of = |volume: &str| {
            mounts
                .iter()
                .find(|m| m.name == volume)
                .map(|m| m.mount_path.clone())
        };
        assert_eq!(
            path_of(keys::VOLUME_AUDIT).as_deref(),
            Some(keys::AUDIT_DIR)
        );
        assert_eq!(path_of(keys::VOLUME_TMP).as_deref(), Some("/tmp"));
        let volumes = pod.spec.as_ref().unwrap().volumes.as_ref().unwrap();
        assert!(volumes[0].empty_dir.is_some());

        let mut config = config();
        config.audit_volume = AuditVolume::Claim("incident-audit".to_string());
        let pod = build_agent_pod(&incident("x"), 1, &config).unwrap();
        let volumes = pod.spec.as_ref().unwrap().volumes.as_ref().unwrap();
        let claim = volumes[0].persistent_volume_claim.as_ref().unwrap();
        assert_eq!(claim.claim_name, "incident-audit");
    }

    #[test]
    fn deadline_is_session_timeout_plus_grace_including_overrides() {
        let pod = build_agent_pod(&incident("x"), 1, &config()).unwrap();
        assert_eq!(
            pod.spec.as_ref().unwrap().active_deadline_seconds,
            Some(960)
        );

        let mut incident = incident("x");
        incident.spec.agent = Some(Box::new(AgentOverrides {
            session_timeout_seconds: Some(120),
            ..AgentOverrides::default()
        }));
        let pod = build_agent_pod(&incident, 1, &config()).unwrap();
        assert_eq!(
            pod.spec.as_ref().unwrap().active_deadline_seconds,
            Some(180)
        );
    }

    /// A remediate Incident whose status holds an approved plan (the execution session's input).
    fn approved(mut incident: Incident) -> Incident {
        use crate::approval::decide::tests::{approval, proposed};
        let plan = proposed("2026-01-01T10:00:00Z", "2026-01-01T10:30:00Z");
        let record = crate::approval::decide::record_of(&approval(
            "a1",
            &plan.plan_hash,
            crate::plan::Decision::Approve,
            "2026-01-01T10:01:00Z",
        ));
        incident.status = Some(crate::incident::IncidentStatus {
            plan: Some(Box::new(plan)),
            approval: Some(Box::new(record)),
            ..Default::default()
        });
        incident
    }

    #[test]
    fn only_the_execution_of_an_approved_plan_gets_the_remediation_account() {
        let mut remediate = incident("x");
        remediate.spec.mode = Mode::Remediate;
        let pod_sa = |incident: &Incident, config: &AgentPodConfig| {
            build_agent_pod(incident, 1, config)
                .unwrap()
                .spec
                .unwrap()
                .service_account_name
                .unwrap()
        };
        let mut with_remediation = config();
        with_remediation.remediation_service_account = Some("incident-remediator".to_string());
        // The investigation of a remediate Incident is read-only, like any other.
        assert_eq!(pod_sa(&remediate, &with_remediation), "incident-agent");
        let execution = approved(remediate.clone());
        assert_eq!(pod_sa(&execution, &with_remediation), "incident-remediator");
        assert_eq!(pod_sa(&execution, &config()), "incident-agent");
        assert_eq!(pod_sa(&incident("x"), &with_remediation), "incident-agent");
        // A rejection, or an approval of another hash, never gets write access.
        let mut rejected = execution.clone();
        let status = rejected.status.as_mut().unwrap();
        status.approval.as_mut().unwrap().decision = crate::plan::Decision::Reject;
        assert_eq!(pod_sa(&rejected, &with_remediation), "incident-agent");
        let mut stale = execution.clone();
        let status = stale.status.as_mut().unwrap();
        status.approval.as_mut().unwrap().plan_hash = format!("sha256:{}", "0".repeat(64));
        assert_eq!(pod_sa(&stale, &with_remediation), "incident-agent");
    }

    #[test]
    fn the_execution_pod_carries_the_plan_from_status_and_its_stage_label() {
        let mut remediate = incident("x");
        remediate.spec.mode = Mode::Remediate;
        let execution = approved(remediate.clone());
        let pod = build_agent_pod(&execution, 2, &config()).unwrap();
        assert_eq!(
            pod.labels().get(keys::LABEL_STAGE).map(String::as_str),
            Some(keys::STAGE_EXECUTE)
        );
        let env = pod.spec.unwrap().containers[0].env.clone().unwrap();
        let value = |name: &str| {
            env.iter()
                .find(|e| e.name == name)
                .and_then(|e| e.value.clone())
        };
        let status = execution.status.as_ref().unwrap();
        let plan = status.plan.as_ref().unwrap();
        let shipped: crate::plan::Plan =
            serde_json::from_str(&value(env::APPROVED_PLAN_ENV).unwrap()).unwrap();
        assert_eq!(&shipped, &plan.plan);
        assert_eq!(
            value(env::APPROVED_PLAN_HASH_ENV).as_ref(),
            Some(&plan.plan_hash)
        );
        let record: ApprovalRecord =
            serde_json::from_str(&value(env::APPROVAL_ENV).unwrap()).unwrap();
        assert_eq!(Some(&record), status.approval.as_deref());
        assert_eq!(value(env::PROPOSING_SESSION_ENV).as_deref(), Some("s-1"));
        // The investigation pod has none of it.
        let investigation = build_agent_pod(&remediate, 1, &config()).unwrap();
        assert!(investigation.labels().get(keys::LABEL_STAGE).is_none());
        let env = investigation.spec.unwrap().containers[0]
            .env
            .clone()
            .unwrap();
        assert!(env.iter().all(|e| e.name != env::APPROVED_PLAN_ENV));
    }

    #[test]
    fn incident_without_uid_is_refused() {
        let mut incident = incident("x");
        incident.metadata.uid = None;
        assert_eq!(
            build_agent_pod(&incident, 1, &config()),
            Err(BuildPodError::MissingMetadata("uid"))
        );
    }
}

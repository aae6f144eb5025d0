//! The Helm chart, rendered by the real (pinned) `helm` with its default values and with every
//! optional part switched on, then read back object by object: least-privilege RBAC for the
//! operator and the agents, no wildcard anywhere, remediation only when asked for, hardened pods,
//! no inline secrets, and the CRD copy identical to what the Rust types generate. `helm lint
//! --strict` runs on the same value sets, and the schema and template checks must refuse values
//! that would weaken any of it.

#[path = "support/tools.rs"]
mod tools;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef, Subject};
use serde_json::Value;

const RELEASE: &str = "t";
const NAMESPACE: &str = "ops";
/// Resource names of this release, as the chart derives them from RELEASE.
const FULLNAME: &str = "t-incident-operator";
const AGENT_SA: &str = "t-incident-operator-agent";
const REMEDIATION_SA: &str = "t-incident-operator-agent-remediate";
const OPERATOR_SA: &str = "t-incident-operator";
const AUDIT_API: &str = "t-incident-operator-audit-api";
const AUDIT_API_TLS: &str = "t-incident-operator-audit-api-tls";

/// Every optional part on, namespaced everything, an existing audit claim.
const FULL_VALUES: &str = r#"
watchNamespaces: [ops, shop]
agent:
  namespaces: [ops, shop]
  rbac:
    clusterWide: false
    readNamespaces: [web]
    readConfigMaps: true
    extraReadRules:
      - apiGroups: [argoproj.io]
        resources: [rollouts]
        verbs: [get, list, watch]
remediation:
  enabled: true
  namespaces: [shop]
operator:
  replicas: 2
audit:
  persistence:
    existingClaim: shared-audit
networkPolicy:
  enabled: true
  apiServer:
    cidrs: [10.0.0.10/32]
  extraAgentEgress:
    - cidr: 10.9.0.0/16
      ports: [9090]
serviceMonitor:
  enabled: true
prometheusRule:
  enabled: true
anthropic:
  baseUrl: https://gateway.example.com/anthropic
"#;

/// Everything optional off: no intake, no audit claim, no Secret access for the operator.
const MINIMAL_VALUES: &str = r#"
alertmanager:
  enabled: false
anthropic:
  apiKeySecret:
    checkExists: false
audit:
  persistence:
    enabled: false
agent:
  resources:
    requests: null
    limits:
      cpu: null
      memory: 256Mi
networkPolicy:
  enabled: true
  https:
    cidrs: []
"#;

/// Remediation on with its cluster-wide default, everything else default.
const REMEDIATION_CLUSTER_VALUES: &str = "remediation:\n  enabled: true\n";

fn chart_dir() -> PathBuf {
    tools::repo_root().join("charts/incident-operator")
}

/// Writes `values` to a temporary file for `--values`.
fn values_file(values: &str) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("create a values file");
    std::fs::write(file.path(), values).expect("write the values file");
    file
}

/// `helm template` with optional values; Ok(stdout) or Err(stderr).
fn helm_template(values: Option<&str>, extra: &[&str]) -> Result<String, String> {
    let file = values.map(values_file);
    let mut cmd = Command::new(tools::tool("helm"));
    cmd.arg("template")
        .arg(RELEASE)
        .arg(chart_dir())
        .args(["--namespace", NAMESPACE]);
    if let Some(file) = &file {
        cmd.arg("--values").arg(file.path());
    }
    cmd.args(extra);
    let out = cmd.output().expect("run helm template");
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).expect("helm prints UTF-8"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The rendered objects.
struct Manifests {
    docs: Vec<Value>,
}

impl Manifests {
    fn render(values: Option<&str>) -> Self {
        let text = helm_template(values, &[]).unwrap_or_else(|e| panic!("helm template: {e}"));
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("rendered chart is not YAML: {e}\n{text}"));
        let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
        for doc in &docs {
            assert!(
                doc["kind"].is_string() && doc["metadata"]["name"].is_string(),
                "object without kind or name: {doc}"
            );
        }
        Self { docs }
    }

    fn of_kind(&self, kind: &str) -> impl Iterator<Item = &Value> + '_ {
        let kind = kind.to_string();
        self.docs.iter().filter(move |d| d["kind"] == kind.as_str())
    }

    fn names(&self, kind: &str) -> Vec<(String, String)> {
        self.of_kind(kind)
            .map(|d| {
                (
                    d["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    d["metadata"]["name"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    fn one(&self, kind: &str, name: &str) -> &Value {
        let found: Vec<&Value> = self
            .of_kind(kind)
            .filter(|d| d["metadata"]["name"] == name)
            .collect();
        assert_eq!(found.len(), 1, "want exactly one {kind} {name}");
        found[0]
    }

    fn deployment(&self) -> Deployment {
        serde_json::from_value(self.one("Deployment", FULLNAME).clone()).expect("a Deployment")
    }

    /// Rules of a Role (`namespace` Some) or ClusterRole (None).
    fn rules(&self, kind: &str, namespace: Option<&str>, name: &str) -> Vec<PolicyRule> {
        let role = self
            .of_kind(kind)
            .find(|d| {
                d["metadata"]["name"] == name
                    && namespace.is_none_or(|ns| d["metadata"]["namespace"] == ns)
            })
            .unwrap_or_else(|| {
                panic!("{kind} {namespace:?}/{name} is referenced but not rendered")
            });
        serde_json::from_value(role["rules"].clone()).expect("rules")
    }

    /// Every rule granted to the ServiceAccount `namespace/name`, with where it applies.
    fn grants(&self, namespace: &str, name: &str) -> Vec<Grant> {
        let mut grants = Vec::new();
        for kind in ["ClusterRoleBinding", "RoleBinding"] {
            for doc in self.of_kind(kind) {
                let subjects: Vec<Subject> =
                    serde_json::from_value(doc["subjects"].clone()).expect("subjects");
                let role_ref: RoleRef =
                    serde_json::from_value(doc["roleRef"].clone()).expect("roleRef");
                let binds_it = subjects.iter().any(|s| {
                    s.kind == "ServiceAccount"
                        && s.name == name
                        && s.namespace.as_deref() == Some(namespace)
                });
                if !binds_it {
                    continue;
                }
                // A ClusterRoleBinding has no namespace: its rules apply everywhere.
                let scope = doc["metadata"]["namespace"].as_str().map(str::to_string);
                let role_namespace = (role_ref.kind == "Role")
                    .then(|| scope.clone().expect("a Role is bound by a RoleBinding"));
                for rule in self.rules(&role_ref.kind, role_namespace.as_deref(), &role_ref.name) {
                    grants.push(Grant {
                        scope: scope.clone(),
                        via: format!("{kind} {}", doc["metadata"]["name"]),
                        rule,
                    });
                }
            }
        }
        grants
    }
}

/// One rule and where it applies: a namespace, or `None` for cluster-wide.
#[derive(Debug)]
struct Grant {
    scope: Option<String>,
    via: String,
    rule: PolicyRule,
}

impl Grant {
    /// (apiGroup, resource, verb) triples of this rule.
    fn triples(&self) -> Vec<(String, String, String)> {
        let mut out = Vec::new();
        for group in self.rule.api_groups.iter().flatten() {
            for resource in self.rule.resources.iter().flatten() {
                for verb in &self.rule.verbs {
                    out.push((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
        out
    }
}

const READ_VERBS: [&str; 3] = ["get", "list", "watch"];

/// Resources an agent must never touch, whatever else the values say.
const AGENT_FORBIDDEN: [&str; 8] = [
    "secrets",
    "pods/exec",
    "pods/attach",
    "pods/portforward",
    "pods/proxy",
    "nodes/proxy",
    "services/proxy",
    "serviceaccounts/token",
];

/// `--flag=value` arguments of the operator container, by flag (repeatable flags keep order).
fn controller_flags(deployment: &Deployment) -> BTreeMap<String, Vec<String>> {
    let container = &pod_spec(deployment).containers[0];
    let args = container.args.clone().expect("args");
    assert_eq!(args[0], "controller", "{args:?}");
    let mut flags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for arg in &args[1..] {
        let (flag, value) = arg
            .split_once('=')
            .unwrap_or_else(|| panic!("every flag is --name=value, got {arg}"));
        assert!(flag.starts_with("--"), "{arg}");
        flags
            .entry(flag.trim_start_matches("--").to_string())
            .or_default()
            .push(value.to_string());
    }
    flags
}

fn flag<'a>(flags: &'a BTreeMap<String, Vec<String>>, name: &str) -> Option<&'a str> {
    flags.get(name).map(|v| {
        assert_eq!(v.len(), 1, "--{name} given more than once");
        v[0].as_str()
    })
}

fn pod_spec(deployment: &Deployment) -> &PodSpec {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("a pod spec")
}

// ---- checks shared by every value set ----

/// No `*` in any rule of any Role or ClusterRole.
fn assert_no_wildcards(m: &Manifests) {
    for kind in ["Role", "ClusterRole"] {
        for doc in m.of_kind(kind) {
            let rules: Vec<PolicyRule> =
                serde_json::from_value(doc["rules"].clone()).expect("rules");
            for rule in rules {
                let fields = [
                    rule.api_groups.clone().unwrap_or_default(),
                    rule.resources.clone().unwrap_or_default(),
                    rule.verbs.clone(),
                    rule.resource_names.clone().unwrap_or_default(),
                ];
                assert!(
                    !fields.iter().flatten().any(|s| s.contains('*')),
                    "wildcard in {kind} {}: {rule:?}",
                    doc["metadata"]["name"]
                );
                assert!(
                    rule.non_resource_urls.is_none(),
                    "nonResourceURLs in {kind} {}",
                    doc["metadata"]["name"]
                );
            }
        }
    }
}

/// One verb on one resource, where it applies and for which names (empty: all).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Permission(Option<String>, String, String, String, Vec<String>);

/// The operator's rules are exactly what its code uses, wherever they are bound.
fn assert_operator_rbac(m: &Manifests, watched: &[&str]) {
    let grants = m.grants(NAMESPACE, OPERATOR_SA);
    let mut got: BTreeSet<Permission> = BTreeSet::new();
    for grant in &grants {
        for (group, resource, verb) in grant.triples() {
            got.insert(Permission(
                grant.scope.clone(),
                group,
                resource,
                verb,
                grant.rule.resource_names.clone().unwrap_or_default(),
            ));
        }
    }
    let core: [(&str, &str, &[&str]); 6] = [
        (
            "sre.agentlab.dev",
            "incidents",
            &["get", "list", "watch", "create", "patch", "update"],
        ),
        (
            "sre.agentlab.dev",
            "incidents/status",
            &["get", "patch", "update"],
        ),
        (
            "sre.agentlab.dev",
            "incidentapprovals",
            &["get", "list", "watch"],
        ),
        ("", "pods", &["get", "list", "watch", "create", "delete"]),
        ("", "events", &["create", "patch"]),
        ("events.k8s.io", "events", &["create", "patch"]),
    ];
    let scopes: Vec<Option<String>> = if watched.is_empty() {
        vec![None]
    } else {
        watched.iter().map(|ns| Some(ns.to_string())).collect()
    };
    let mut want = BTreeSet::new();
    for scope in &scopes {
        for (group, resource, verbs) in core {
            for verb in verbs {
                want.insert(Permission(
                    scope.clone(),
                    group.to_string(),
                    resource.to_string(),
                    verb.to_string(),
                    vec![],
                ));
            }
        }
        want.insert(Permission(
            scope.clone(),
            String::new(),
            "secrets".to_string(),
            "get".to_string(),
            vec!["anthropic-api-key".to_string()],
        ));
    }
    let flags = controller_flags(&m.deployment());
    if flag(&flags, "leader-election") == Some("true") {
        let lease = Some(NAMESPACE.to_string());
        let group = "coordination.k8s.io".to_string();
        want.insert(Permission(
            lease.clone(),
            group.clone(),
            "leases".into(),
            "create".into(),
            vec![],
        ));
        for verb in ["get", "update", "patch"] {
            want.insert(Permission(
                lease.clone(),
                group.clone(),
                "leases".into(),
                verb.into(),
                vec![FULLNAME.to_string()],
            ));
        }
    }
    let extra: Vec<_> = got.difference(&want).collect();
    let missing: Vec<_> = want.difference(&got).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "operator RBAC differs from what its code uses\nextra: {extra:#?}\nmissing: {missing:#?}"
    );
}

/// The read-only agent account: get/list/watch only, except patching its Incident's status in
/// its own namespaces; never Secrets or exec-like subresources.
fn assert_agent_read_only(m: &Manifests, agent_namespaces: &[&str], config_maps: bool) {
    for ns in agent_namespaces {
        let grants = m.grants(ns, AGENT_SA);
        assert!(!grants.is_empty(), "agent account in {ns} has no RBAC");
        let mut can_patch_status = false;
        let mut reads_pods_log = false;
        for grant in &grants {
            for (group, resource, verb) in grant.triples() {
                assert!(
                    !AGENT_FORBIDDEN.contains(&resource.as_str()),
                    "agent {ns} may {verb} {resource} via {}",
                    grant.via
                );
                if resource == "configmaps" {
                    assert!(
                        config_maps,
                        "agent reads configmaps though readConfigMaps is off"
                    );
                }
                if group == "sre.agentlab.dev" && resource == "incidents/status" && verb == "patch"
                {
                    assert_eq!(
                        grant.scope.as_deref(),
                        Some(*ns),
                        "status patch must be bound in the agent's own namespace only ({})",
                        grant.via
                    );
                    can_patch_status = true;
                    continue;
                }
                reads_pods_log |= resource == "pods/log" && verb == "get";
                assert!(
                    READ_VERBS.contains(&verb.as_str()),
                    "agent {ns} has write verb {verb} on {group}/{resource} via {}",
                    grant.via
                );
            }
        }
        assert!(
            can_patch_status,
            "agent in {ns} cannot write its Incident's status"
        );
        assert!(reads_pods_log, "agent in {ns} cannot read pod logs");
    }
}

/// No remediation objects, flags or write rules when remediation is off.
fn assert_no_remediation(m: &Manifests) {
    for doc in &m.docs {
        let name = doc["metadata"]["name"].as_str().unwrap_or("");
        assert!(
            !name.contains("remediat"),
            "{} {name} rendered with remediation off",
            doc["kind"]
        );
    }
    let flags = controller_flags(&m.deployment());
    assert!(!flags.contains_key("agent-remediation-service-account"));
    for kind in ["Role", "ClusterRole"] {
        for doc in m.of_kind(kind) {
            if doc["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .ends_with("-operator")
                || doc["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .ends_with("-leader-election")
            {
                continue; // the operator's own roles, checked exactly elsewhere
            }
            if doc["metadata"]["name"] == APPROVER_ROLE {
                continue; // for people to bind; checked in incident_approver_role_is_for_people
            }
            let rules: Vec<PolicyRule> =
                serde_json::from_value(doc["rules"].clone()).expect("rules");
            for rule in rules {
                let resources = rule.resources.clone().unwrap_or_default();
                let writes: Vec<&String> = rule
                    .verbs
                    .iter()
                    .filter(|v| !READ_VERBS.contains(&v.as_str()))
                    .collect();
                let status_only = resources == ["incidents/status"] && writes == ["patch"];
                assert!(
                    writes.is_empty() || status_only,
                    "{kind} {} grants {writes:?} on {resources:?} with remediation off",
                    doc["metadata"]["name"]
                );
            }
        }
    }
}

/// The ClusterRole teams bind so their people may approve plans.
const APPROVER_ROLE: &str = "incident-approver";

#[test]
fn incident_approver_role_is_for_people() {
    let m = Manifests::render(None);
    let role = m
        .of_kind("ClusterRole")
        .find(|doc| doc["metadata"]["name"] == APPROVER_ROLE)
        .expect("the incident-approver ClusterRole");
    let rules: Vec<PolicyRule> = serde_json::from_value(role["rules"].clone()).expect("rules");
    let mut got: Vec<(String, Vec<String>)> = rules
        .iter()
        .flat_map(|rule| {
            rule.resources
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|resource| (resource, rule.verbs.clone()))
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                "incidentapprovals".to_string(),
                vec!["create".to_string(), "get".into(), "list".into()]
            ),
            (
                "incidents".to_string(),
                vec!["get".to_string(), "list".into()]
            ),
        ]
    );
    // Nothing the chart ships binds it: who approves is the team's choice.
    for kind in ["RoleBinding", "ClusterRoleBinding"] {
        for binding in m.of_kind(kind) {
            assert_ne!(binding["roleRef"]["name"], APPROVER_ROLE, "{kind} binds it");
        }
    }
}

/// The remediating account: read-only grants plus exactly the remediation writes.
fn assert_remediation(m: &Manifests, agent_namespaces: &[&str], scopes: &[Option<&str>]) {
    let flags = controller_flags(&m.deployment());
    assert_eq!(
        flag(&flags, "agent-remediation-service-account"),
        Some(REMEDIATION_SA)
    );
    let allowed_writes: [(&str, &str, &[&str]); 6] = [
        ("apps", "deployments", &["patch", "update"]),
        ("apps", "statefulsets", &["patch", "update"]),
        ("apps", "daemonsets", &["patch", "update"]),
        ("apps", "deployments/scale", &["patch", "update"]),
        ("apps", "statefulsets/scale", &["patch", "update"]),
        ("", "pods", &["delete"]),
    ];
    for ns in agent_namespaces {
        let grants = m.grants(ns, REMEDIATION_SA);
        let mut write_scopes = BTreeSet::new();
        for grant in &grants {
            for (group, resource, verb) in grant.triples() {
                assert!(
                    !AGENT_FORBIDDEN.contains(&resource.as_str()),
                    "remediating agent may {verb} {resource}"
                );
                if READ_VERBS.contains(&verb.as_str())
                    || (resource == "incidents/status" && verb == "patch")
                {
                    continue;
                }
                assert!(
                    allowed_writes.iter().any(|(g, r, verbs)| *g == group
                        && *r == resource
                        && verbs.contains(&verb.as_str())),
                    "remediating agent has unexpected write {verb} on {group}/{resource}"
                );
                write_scopes.insert(grant.scope.clone());
            }
        }
        let want: BTreeSet<Option<String>> = scopes.iter().map(|s| s.map(str::to_string)).collect();
        assert_eq!(write_scopes, want, "remediation bound in the wrong places");
    }
    // The read-only account never gets the remediation role.
    for ns in agent_namespaces {
        for grant in m.grants(ns, AGENT_SA) {
            assert!(!grant.via.contains("remediat"), "{}", grant.via);
        }
    }
}

fn assert_hardened_container(container: &Container) {
    let sc = container
        .security_context
        .as_ref()
        .expect("container securityContext");
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(sc.run_as_user, Some(65532));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.privileged, Some(false));
    assert_eq!(
        sc.capabilities.as_ref().and_then(|c| c.drop.clone()),
        Some(vec!["ALL".to_string()])
    );
    assert!(
        sc.capabilities
            .as_ref()
            .and_then(|c| c.add.as_ref())
            .is_none()
    );
    assert_eq!(
        sc.seccomp_profile.as_ref().map(|p| p.type_.as_str()),
        Some("RuntimeDefault")
    );
}

fn assert_hardened_operator(m: &Manifests) {
    let deployment = m.deployment();
    let spec = pod_spec(&deployment);
    assert_eq!(spec.automount_service_account_token, Some(true));
    assert_eq!(spec.service_account_name.as_deref(), Some(OPERATOR_SA));
    let pod_sc = spec.security_context.as_ref().expect("pod securityContext");
    assert_eq!(pod_sc.run_as_non_root, Some(true));
    assert_eq!(pod_sc.run_as_user, Some(65532));
    assert_eq!(
        pod_sc.seccomp_profile.as_ref().map(|p| p.type_.as_str()),
        Some("RuntimeDefault")
    );
    assert_eq!(spec.containers.len(), 1);
    let container = &spec.containers[0];
    assert_hardened_container(container);
    let probe_path = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
        probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .and_then(|h| h.path.clone())
    };
    assert_eq!(
        probe_path(&container.liveness_probe).as_deref(),
        Some("/healthz")
    );
    assert_eq!(
        probe_path(&container.readiness_probe).as_deref(),
        Some("/readyz")
    );
    assert!(container.resources.is_some(), "operator has no resources");
}

/// No env var anywhere carries a literal secret: names that sound secret use valueFrom, and no
/// literal value looks like an Anthropic key.
fn assert_no_inline_secrets(m: &Manifests) {
    let text = serde_json::to_string(&m.docs).expect("serialize");
    assert!(!text.contains("sk-ant-"), "an API key literal is rendered");
    for doc in m.of_kind("Deployment") {
        let deployment: Deployment = serde_json::from_value(doc.clone()).expect("Deployment");
        for container in &pod_spec(&deployment).containers {
            for env in container.env.iter().flatten() {
                let upper = env.name.to_uppercase();
                if ["KEY", "TOKEN", "SECRET", "PASSWORD"]
                    .iter()
                    .any(|word| upper.contains(word))
                {
                    assert!(env.value.is_none(), "env {} has an inline value", env.name);
                }
            }
        }
    }
    // The one exception: the audit API's serving certificate, generated by helm at install (no
    // value can put anything into it).
    for secret in m.of_kind("Secret") {
        assert_eq!(
            (secret["metadata"]["name"].as_str(), secret["type"].as_str()),
            (Some(AUDIT_API_TLS), Some("kubernetes.io/tls")),
            "the chart must not render Secrets"
        );
    }
}

fn assert_common(m: &Manifests) {
    assert_no_wildcards(m);
    assert_no_inline_secrets(m);
    assert_hardened_operator(m);
    // The status role is bound per namespace, never cluster-wide.
    for doc in m.of_kind("ClusterRoleBinding") {
        assert_ne!(doc["roleRef"]["name"], format!("{FULLNAME}-agent-status"));
    }
    // Every rendered object that is namespaced says where it goes.
    for doc in &m.docs {
        let kind = doc["kind"].as_str().unwrap_or("");
        if ![
            "ClusterRole",
            "ClusterRoleBinding",
            "APIService",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        ]
        .contains(&kind)
        {
            assert!(
                doc["metadata"]["namespace"].is_string(),
                "{kind} {} has no namespace",
                doc["metadata"]["name"]
            );
        }
    }
}

// ---- the value sets ----

#[test]
fn default_values_are_least_privilege_and_hardened() {
    let m = Manifests::render(None);
    assert_common(&m);
    assert_operator_rbac(&m, &[]);
    assert_agent_read_only(&m, &[NAMESPACE], false);
    assert_no_remediation(&m);

    // Agent reads cluster-wide by default; never ConfigMaps.
    let read = m.one("ClusterRoleBinding", &format!("{FULLNAME}-agent-read"));
    assert_eq!(read["subjects"][0]["name"], AGENT_SA);

    let flags = controller_flags(&m.deployment());
    assert_eq!(flag(&flags, "leader-election"), Some("false"));
    assert_eq!(flag(&flags, "listen"), Some("0.0.0.0:8080"));
    assert_eq!(flag(&flags, "agent-service-account"), Some(AGENT_SA));
    assert_eq!(flag(&flags, "api-key-secret"), Some("anthropic-api-key"));
    assert_eq!(flag(&flags, "api-key-secret-key"), Some("api-key"));
    assert_eq!(flag(&flags, "audit-pvc"), Some("t-incident-operator-audit"));
    assert_eq!(flag(&flags, "intake"), Some("true"));
    assert_eq!(flag(&flags, "intake-namespace"), Some(NAMESPACE));
    assert_eq!(
        flag(&flags, "intake-token-file"),
        Some("/etc/incident-operator/intake/token")
    );
    assert_eq!(
        flag(&flags, "max-tokens"),
        Some("2000000"),
        "no float formatting"
    );
    assert_eq!(
        flag(&flags, "agent-image"),
        Some(
            format!(
                "ghcr.io/sre-agentlab/incident-operator-agent:{}",
                env!("CARGO_PKG_VERSION")
            )
            .as_str()
        )
    );
    assert!(
        !flags.contains_key("namespace"),
        "all namespaces by default"
    );
    assert!(!flags.contains_key("anthropic-base-url"));

    // The webhook token is a mounted Secret file, not an env var and not RBAC.
    let deployment = m.deployment();
    let spec = pod_spec(&deployment);
    let token = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "intake-token")
        .and_then(|v| v.secret.as_ref())
        .expect("token volume");
    assert_eq!(
        token.secret_name.as_deref(),
        Some("incident-operator-webhook")
    );

    // One RWX audit claim, kept on uninstall.
    let pvc = m.one("PersistentVolumeClaim", "t-incident-operator-audit");
    assert_eq!(pvc["metadata"]["namespace"], NAMESPACE);
    assert_eq!(pvc["spec"]["accessModes"][0], "ReadWriteMany");
    assert_eq!(
        pvc["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );

    // Optional parts are off.
    for kind in ["NetworkPolicy", "ServiceMonitor", "PrometheusRule"] {
        assert_eq!(m.of_kind(kind).count(), 0, "{kind} rendered by default");
    }
    let service = m.one("Service", FULLNAME);
    assert_eq!(service["spec"]["ports"][0]["port"], 8080);
}

#[test]
fn everything_on_stays_least_privilege() {
    let m = Manifests::render(Some(FULL_VALUES));
    assert_common(&m);
    assert_operator_rbac(&m, &["ops", "shop"]);
    assert_agent_read_only(&m, &["ops", "shop"], true);
    assert_remediation(&m, &["ops", "shop"], &[Some("shop")]);

    // Namespaced mode: nothing cluster-wide is bound to the operator or the agents.
    assert_eq!(
        m.of_kind("ClusterRoleBinding").count(),
        0,
        "ClusterRoleBindings in namespaced mode: {:?}",
        m.names("ClusterRoleBinding")
    );
    // Agent reads its own namespaces plus readNamespaces.
    let read_scopes: BTreeSet<String> = m
        .names("RoleBinding")
        .into_iter()
        .filter(|(_, name)| name.ends_with("-agent-read"))
        .map(|(ns, _)| ns)
        .collect();
    assert_eq!(
        read_scopes,
        BTreeSet::from(["ops".into(), "shop".into(), "web".into()])
    );
    // The extra read rule made it, read-only.
    let rules = m.rules("ClusterRole", None, &format!("{FULLNAME}-agent-read"));
    assert!(
        rules
            .iter()
            .any(|r| r.resources.as_deref() == Some(&["rollouts".to_string()]))
    );

    let flags = controller_flags(&m.deployment());
    assert_eq!(flags["namespace"], ["ops", "shop"]);
    assert_eq!(
        flag(&flags, "leader-election"),
        Some("true"),
        "replicas > 1"
    );
    assert_eq!(flag(&flags, "lease-namespace"), Some(NAMESPACE));
    assert_eq!(flag(&flags, "audit-pvc"), Some("shared-audit"));
    assert_eq!(
        flag(&flags, "anthropic-base-url"),
        Some("https://gateway.example.com/anthropic")
    );
    assert_eq!(
        m.of_kind("PersistentVolumeClaim").count(),
        0,
        "existingClaim"
    );
    let deployment = m.deployment();
    assert_eq!(deployment.spec.as_ref().and_then(|s| s.replicas), Some(2));
    assert!(
        deployment
            .spec
            .as_ref()
            .and_then(|s| s.strategy.as_ref())
            .is_none(),
        "with leader election a rolling update is safe"
    );

    // Agent ServiceAccounts (read-only and remediating) in each agent namespace.
    let accounts: BTreeSet<(String, String)> = m.names("ServiceAccount").into_iter().collect();
    for ns in ["ops", "shop"] {
        assert!(accounts.contains(&(ns.to_string(), AGENT_SA.to_string())));
        assert!(accounts.contains(&(ns.to_string(), REMEDIATION_SA.to_string())));
    }

    assert_network_policies(&m, &["ops", "shop"]);
    assert_monitoring(&m);
}

#[test]
fn remediation_without_namespaces_is_cluster_wide_and_separate() {
    let m = Manifests::render(Some(REMEDIATION_CLUSTER_VALUES));
    assert_common(&m);
    assert_operator_rbac(&m, &[]);
    assert_agent_read_only(&m, &[NAMESPACE], false);
    assert_remediation(&m, &[NAMESPACE], &[None]);
}

#[test]
fn minimal_values_need_no_secret_access_and_no_claim() {
    let m = Manifests::render(Some(MINIMAL_VALUES));
    assert_common(&m);
    assert_no_remediation(&m);
    for grant in m.grants(NAMESPACE, OPERATOR_SA) {
        assert!(
            !grant
                .rule
                .resources
                .iter()
                .flatten()
                .any(|r| r == "secrets"),
            "operator may read Secrets with checkExists off: {grant:?}"
        );
    }
    assert_eq!(m.of_kind("PersistentVolumeClaim").count(), 0);
    let flags = controller_flags(&m.deployment());
    assert_eq!(flag(&flags, "intake"), Some("false"));
    assert!(!flags.contains_key("intake-token-file"));
    assert!(
        !flags.contains_key("audit-pvc"),
        "no claim: agents use an emptyDir"
    );
    // Unset resources are passed as empty flags, so the binary's own defaults never apply.
    assert_eq!(flag(&flags, "agent-cpu-request"), Some(""));
    assert_eq!(flag(&flags, "agent-memory-request"), Some(""));
    assert_eq!(flag(&flags, "agent-cpu-limit"), Some(""));
    assert_eq!(flag(&flags, "agent-memory-limit"), Some("256Mi"));
    let deployment = m.deployment();
    assert!(
        pod_spec(&deployment)
            .volumes
            .iter()
            .flatten()
            .all(|v| v.secret.is_none())
    );
    // The agent policy still allows DNS but no HTTPS rule when its CIDR list is empty.
    let policy = m.one("NetworkPolicy", &format!("{FULLNAME}-agent"));
    let egress = serde_json::to_string(&policy["spec"]["egress"]).expect("json");
    assert!(
        egress.contains("\"port\":53") && !egress.contains("0.0.0.0/0"),
        "{egress}"
    );
}

fn assert_network_policies(m: &Manifests, agent_namespaces: &[&str]) {
    for ns in agent_namespaces {
        let policy = m
            .of_kind("NetworkPolicy")
            .find(|d| {
                d["metadata"]["namespace"] == *ns
                    && d["metadata"]["name"] == format!("{FULLNAME}-agent")
            })
            .unwrap_or_else(|| panic!("no agent NetworkPolicy in {ns}"));
        let spec = &policy["spec"];
        assert_eq!(
            spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
            "agent"
        );
        assert_eq!(
            spec["ingress"],
            serde_json::json!([]),
            "agents accept no traffic"
        );
        let egress = spec["egress"].as_array().expect("egress rules");
        let text = serde_json::to_string(egress).expect("json");
        assert!(text.contains("\"port\":53"), "DNS");
        assert!(text.contains("10.0.0.10/32"), "API server");
        assert!(text.contains("169.254.0.0/16"), "metadata endpoint cut out");
        assert!(text.contains("10.9.0.0/16"), "extra egress");
    }
    let operator = m.one("NetworkPolicy", &format!("{FULLNAME}-operator"));
    assert_eq!(operator["spec"]["ingress"][0]["ports"][0]["port"], "http");
}

fn assert_monitoring(m: &Manifests) {
    let monitor = m.one("ServiceMonitor", FULLNAME);
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http");

    let rule = m.one("PrometheusRule", FULLNAME);
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    let rules = rule["spec"]["groups"][0]["rules"]
        .as_array()
        .expect("rules");
    assert!(rules.len() >= 5);
    for alert in rules {
        let name = alert["alert"].as_str().expect("alert name");
        assert!(
            alert["expr"].as_str().is_some_and(|e| !e.is_empty()),
            "{name}"
        );
        assert!(
            ["critical", "warning", "info"]
                .contains(&alert["labels"]["severity"].as_str().unwrap_or("")),
            "{name} severity"
        );
        for annotation in ["summary", "description", "runbook_url"] {
            assert!(
                alert["annotations"][annotation]
                    .as_str()
                    .is_some_and(|s| !s.trim().is_empty()),
                "{name} lacks {annotation}"
            );
        }
        let runbook = alert["annotations"]["runbook_url"].as_str().unwrap_or("");
        assert!(
            runbook.ends_with(&format!("#{}", name.to_lowercase())),
            "{name}: runbook anchor {runbook}"
        );
        // Each runbook anchor is a heading in docs/install.md.
        let install = std::fs::read_to_string(tools::repo_root().join("docs/install.md"))
            .expect("docs/install.md");
        assert!(
            install.contains(&format!("### {name}\n")),
            "docs/install.md has no runbook for {name}"
        );
    }
}

// ---- refusals: values that would weaken the chart ----

fn assert_refused(values: &str, needle: &str) {
    match helm_template(Some(values), &[]) {
        Ok(_) => panic!("helm accepted values it must refuse:\n{values}"),
        Err(stderr) => assert!(
            stderr.contains(needle),
            "refused, but without `{needle}`:\n{stderr}"
        ),
    }
}

#[test]
fn secrets_and_wildcards_cannot_be_values() {
    assert_refused("anthropic:\n  apiKey: sk-ant-abc\n", "apiKey");
    assert_refused(
        "anthropic:\n  apiKeySecret:\n    value: sk-ant-abc\n",
        "value",
    );
    assert_refused("alertmanager:\n  token: hunter2\n", "token");
    assert_refused(
        "alertmanager:\n  tokenSecret:\n    token: hunter2\n",
        "token",
    );
    let rule = |groups: &str, resources: &str, verbs: &str| {
        format!(
            "agent:\n  rbac:\n    extraReadRules:\n      - apiGroups: {groups}\n        resources: {resources}\n        verbs: {verbs}\n"
        )
    };
    assert_refused(
        &rule("[apps]", "[deployments]", "[patch]"),
        "extraReadRules",
    );
    assert_refused(&rule("[\"*\"]", "[rollouts]", "[get]"), "extraReadRules");
    assert_refused(&rule("[\"\"]", "[\"*\"]", "[get]"), "extraReadRules");
    assert_refused(&rule("[\"\"]", "[secrets]", "[get]"), "extraReadRules");
    assert_refused(&rule("[\"\"]", "[pods/exec]", "[get]"), "extraReadRules");
    assert_refused(&rule("[\"\"]", "[pods]", "[\"*\"]"), "extraReadRules");
    assert_refused("operator:\n  replicas: 0\n", "replicas");
    assert_refused("agent:\n  maxTurns: 0\n", "maxTurns");
    assert_refused("unknownTopLevel: 1\n", "unknownTopLevel");
}

#[test]
fn inconsistent_values_are_refused_with_a_reason() {
    assert_refused(
        "alertmanager:\n  tokenSecret:\n    name: \"\"\n",
        "allowUnauthenticated",
    );
    assert_refused(
        "watchNamespaces: [shop]\n",
        "must be one of watchNamespaces",
    );
    assert_refused(
        "watchNamespaces: [ops]\nagent:\n  namespaces: [ops, elsewhere]\n",
        "not in watchNamespaces",
    );
    // Explicitly unauthenticated: allowed, and then no token file or volume.
    let text = helm_template(
        Some("alertmanager:\n  tokenSecret:\n    name: \"\"\n  allowUnauthenticated: true\n"),
        &[],
    )
    .expect("allowUnauthenticated renders");
    assert!(!text.contains("intake-token"));
}

#[test]
fn helm_lint_passes_with_default_and_full_values() {
    for values in [
        None,
        Some(FULL_VALUES),
        Some(REMEDIATION_CLUSTER_VALUES),
        Some(MINIMAL_VALUES),
    ] {
        let file = values.map(values_file);
        let mut cmd = Command::new(tools::tool("helm"));
        cmd.args(["lint", "--strict"]).arg(chart_dir());
        if let Some(file) = &file {
            cmd.arg("--values").arg(file.path());
        }
        let out = cmd.output().expect("run helm lint");
        assert!(
            out.status.success(),
            "helm lint --strict failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn chart_ships_the_generated_crd_and_the_crate_version() {
    let root = tools::repo_root();
    let chart_crd =
        std::fs::read_to_string(root.join("charts/incident-operator/crds/incidents.yaml"))
            .expect("chart CRD");
    assert_eq!(
        chart_crd,
        incident_operator::incident::crd_yaml(),
        "chart CRD drifted"
    );
    let top_crd =
        std::fs::read_to_string(root.join("crds/incidents.yaml")).expect("crds/incidents.yaml");
    assert_eq!(chart_crd, top_crd, "the two CRD copies differ");

    let chart: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(root.join("charts/incident-operator/Chart.yaml"))
            .expect("Chart.yaml"),
    )
    .expect("Chart.yaml is YAML");
    assert_eq!(chart["apiVersion"], "v2");
    assert_eq!(
        chart["appVersion"],
        env!("CARGO_PKG_VERSION"),
        "appVersion = crate version"
    );
    // The CRD lives in crds/, not templates/: Helm installs it before the templates and never
    // deletes it on uninstall (which would delete every Incident).
    let rendered = helm_template(None, &[]).expect("render");
    assert!(!rendered.contains("kind: CustomResourceDefinition"));
}

#[test]
fn the_audit_api_is_registered_with_a_verifiable_certificate_and_least_privilege() {
    use base64::Engine;
    let m = Manifests::render(Some(
        "watchNamespaces: [shop]\nalertmanager:\n  incidentNamespace: shop\nauditApi:\n  enabled: true\n",
    ));
    assert_common(&m);
    let decode = |text: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(text.as_str().expect("base64 text"))
            .expect("base64")
    };
    // The APIService's caBundle verifies the serving certificate for the Service's DNS name.
    let api_service = m.one("APIService", "v1alpha1.audit.sre.agentlab.dev");
    assert_eq!(api_service["spec"]["service"]["namespace"], "shop");
    assert_eq!(api_service["spec"]["service"]["name"], AUDIT_API);
    let secret = m.one("Secret", AUDIT_API_TLS);
    let roots_pem = decode(&api_service["spec"]["caBundle"]);
    let cert_pem = decode(&secret["data"]["tls.crt"]);
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&roots_pem) {
        roots.add(cert.expect("CA PEM")).expect("a CA certificate");
    }
    let leaf = rustls::pki_types::CertificateDer::from_pem_slice(&cert_pem).expect("cert PEM");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
            .build()
            .expect("verifier");
    let name = rustls::pki_types::ServerName::try_from(format!("{AUDIT_API}.shop.svc")).unwrap();
    rustls::client::danger::ServerCertVerifier::verify_server_cert(
        verifier.as_ref(),
        &leaf,
        &[],
        &name,
        &[],
        rustls::pki_types::UnixTime::now(),
    )
    .expect("the caBundle verifies the serving certificate for the Service name");

    // Delegated authentication and authorization, and nothing else cluster-wide.
    let delegator = m.one("ClusterRoleBinding", &format!("{AUDIT_API}-auth-delegator"));
    assert_eq!(delegator["roleRef"]["name"], "system:auth-delegator");
    assert_eq!(delegator["subjects"][0]["name"], AUDIT_API);
    let reader = m.one("RoleBinding", &format!("{AUDIT_API}-authentication-reader"));
    assert_eq!(reader["metadata"]["namespace"], "kube-system");
    assert_eq!(
        reader["roleRef"]["name"],
        "extension-apiserver-authentication-reader"
    );
    let own: Vec<PolicyRule> = m.rules("Role", Some("shop"), AUDIT_API);
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(
        own[0].resources.as_deref(),
        Some(&["incidents".to_string()][..])
    );
    assert_eq!(own[0].verbs, ["get"]);
    let viewer = m.one("ClusterRole", &format!("{AUDIT_API}-reader"));
    assert_eq!(
        viewer["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"],
        "true"
    );
    let rules: Vec<PolicyRule> = m.rules("ClusterRole", None, &format!("{AUDIT_API}-reader"));
    assert!(rules.iter().all(|r| r.verbs == ["get"]), "{rules:?}");

    // The server mounts the namespace's audit claim read-only and runs hardened.
    let deployment: Deployment =
        serde_json::from_value(m.one("Deployment", AUDIT_API).clone()).expect("Deployment");
    let spec = pod_spec(&deployment);
    assert_eq!(spec.service_account_name.as_deref(), Some(AUDIT_API));
    let claim = spec
        .volumes
        .iter()
        .flatten()
        .find_map(|v| v.persistent_volume_claim.as_ref())
        .expect("the audit claim");
    assert_eq!(claim.claim_name, "t-incident-operator-audit");
    assert_eq!(claim.read_only, Some(true));
    let container = &spec.containers[0];
    assert_hardened_container(container);
    assert!(
        container
            .args
            .iter()
            .flatten()
            .any(|a| a == "--claim=shop=/var/lib/incident-operator/audit"),
        "{:?}",
        container.args
    );
}

//! What the server serves: one [`ResourceDef`] per group/version/resource, built-in or from a CRD.
//!
//! Discovery, routing, validation and table printing all read these definitions; nothing
//! else in the server hard-codes a resource name except the special behaviours in
//! `builtin` that Kubernetes itself has for those kinds.

use std::sync::Arc;

use serde_json::Value;

/// The verbs of an ordinary read-write resource.
pub const STANDARD_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
/// Verbs of a create-only virtual resource such as SelfSubjectAccessReview.
pub const CREATE_ONLY: &[&str] = &["create"];

/// Where a resource's objects live: several served versions (or the two Event APIs) share one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorageKey {
    /// API group of the storage, empty for core.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
}

/// How stored objects map to the served version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// Same shape; only `apiVersion` changes.
    None,
    /// `events.k8s.io/v1` Events served from core `v1` Event storage.
    EventsV1,
}

/// A subresource such as `pods/status`.
#[derive(Debug, Clone)]
pub struct SubresourceDef {
    /// Name after the slash: `status`, `log`, `token`, …
    pub name: String,
    /// Group of the kind the subresource takes and returns.
    pub group: String,
    /// Version of that kind.
    pub version: String,
    /// Kind it takes and returns (`Pod`, `TokenRequest`, `Binding`).
    pub kind: String,
    /// Verbs it supports.
    pub verbs: Vec<String>,
}

/// One column of `additionalPrinterColumns`.
#[derive(Debug, Clone)]
pub struct PrinterColumn {
    /// Header.
    pub name: String,
    /// OpenAPI type: string, integer, number, boolean, date.
    pub column_type: String,
    /// Optional format.
    pub format: String,
    /// Description.
    pub description: String,
    /// 0 for default columns, more for `-o wide`.
    pub priority: i64,
    /// JSONPath of the value.
    pub json_path: String,
}

/// CRD-specific parts of a resource definition.
#[derive(Debug, Clone, Default)]
pub struct CustomSpec {
    /// `openAPIV3Schema` of the served version.
    pub schema: Option<Value>,
    /// `additionalPrinterColumns`.
    pub printer_columns: Vec<PrinterColumn>,
    /// `selectableFields` JSONPaths such as `.spec.color`.
    pub selectable_fields: Vec<String>,
    /// Version objects are stored in.
    pub storage_version: String,
    /// Scale subresource paths (specReplicasPath, statusReplicasPath), when defined.
    pub scale: Option<(String, String)>,
}

/// A resource served at `/api[s]/GROUP/VERSION/[namespaces/NS/]PLURAL`.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    /// API group, empty for core.
    pub group: String,
    /// Served version.
    pub version: String,
    /// Kind of the objects.
    pub kind: String,
    /// Plural name (the path segment).
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names for kubectl.
    pub short_names: Vec<String>,
    /// Categories (`all`, …).
    pub categories: Vec<String>,
    /// Verbs on the resource itself.
    pub verbs: Vec<String>,
    /// Subresources.
    pub subresources: Vec<SubresourceDef>,
    /// `metadata.generation` is maintained (bumped on spec changes).
    pub tracks_generation: bool,
    /// Shared storage.
    pub storage: StorageKey,
    /// Shape conversion between storage and this version.
    pub conversion: Conversion,
    /// Present for custom resources.
    pub custom: Option<Arc<CustomSpec>>,
}

impl ResourceDef {
    /// `group/version`, or `version` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The resource has a `status` subresource, so the main endpoint ignores status changes.
    pub fn has_status(&self) -> bool {
        self.subresource("status").is_some()
    }

    /// A subresource by name.
    pub fn subresource(&self, name: &str) -> Option<&SubresourceDef> {
        self.subresources.iter().find(|sub| sub.name == name)
    }

    /// The resource supports a verb.
    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// Create-only virtual resources (reviews, token requests) keep nothing.
    pub fn is_virtual(&self) -> bool {
        !self.allows("get")
    }
}

struct Builtin {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    verbs: &'static [&'static str],
    subresources: &'static [(
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static [&'static str],
    )],
    generation: bool,
}

const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

macro_rules! builtin {
    ($group:expr, $version:expr, $kind:expr, $plural:expr, $ns:expr, $short:expr, $cat:expr, $verbs:expr, $subs:expr, $gen:expr) => {
        Builtin {
            group: $group,
            version: $version,
            kind: $kind,
            plural: $plural,
            namespaced: $ns,
            short_names: $short,
            categories: $cat,
            verbs: $verbs,
            subresources: $subs,
            generation: $gen,
        }
    };
}

const NO_SUBS: &[(&str, &str, &str, &str, &[&str])] = &[];

const BUILTINS: &[Builtin] = &[
    builtin!(
        "",
        "v1",
        "Namespace",
        "namespaces",
        false,
        &["ns"],
        &[],
        &[
            "create", "delete", "get", "list", "patch", "update", "watch"
        ],
        &[
            ("status", "", "v1", "Namespace", STATUS_VERBS),
            ("finalize", "", "v1", "Namespace", &["update"])
        ],
        false
    ),
    builtin!(
        "",
        "v1",
        "Node",
        "nodes",
        false,
        &["no"],
        &[],
        STANDARD_VERBS,
        &[("status", "", "v1", "Node", STATUS_VERBS)],
        false
    ),
    builtin!(
        "",
        "v1",
        "Pod",
        "pods",
        true,
        &["po"],
        &["all"],
        STANDARD_VERBS,
        &[
            ("status", "", "v1", "Pod", STATUS_VERBS),
            ("log", "", "v1", "Pod", &["get"]),
            ("binding", "", "v1", "Binding", &["create"]),
            ("eviction", "policy", "v1", "Eviction", &["create"]),
        ],
        true
    ),
    builtin!(
        "",
        "v1",
        "Event",
        "events",
        true,
        &["ev"],
        &[],
        STANDARD_VERBS,
        NO_SUBS,
        false
    ),
    builtin!(
        "",
        "v1",
        "Secret",
        "secrets",
        true,
        &[],
        &[],
        STANDARD_VERBS,
        NO_SUBS,
        false
    ),
    builtin!(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        true,
        &["cm"],
        &[],
        STANDARD_VERBS,
        NO_SUBS,
        false
    ),
    builtin!(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        true,
        &["sa"],
        &[],
        STANDARD_VERBS,
        &[(
            "token",
            "authentication.k8s.io",
            "v1",
            "TokenRequest",
            &["create"]
        )],
        false
    ),
    builtin!(
        "",
        "v1",
        "Service",
        "services",
        true,
        &["svc"],
        &["all"],
        STANDARD_VERBS,
        &[("status", "", "v1", "Service", STATUS_VERBS)],
        false
    ),
    builtin!(
        "",
        "v1",
        "Endpoints",
        "endpoints",
        true,
        &["ep"],
        &[],
        STANDARD_VERBS,
        NO_SUBS,
        false
    ),
    builtin!(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
        &["pvc"],
        &[],
        STANDARD_VERBS,
        &[("status", "", "v1", "PersistentVolumeClaim", STATUS_VERBS)],
        false
    ),
    builtin!(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        true,
        &["quota"],
        &[],
        STANDARD_VERBS,
        &[("status", "", "v1", "ResourceQuota", STATUS_VERBS)],
        false
    ),
    builtin!(
        "",
        "v1",
        "LimitRange",
        "limitranges",
        true,
        &["limits"],
        &[],
        STANDARD_VERBS,
        NO_SUBS,
        false
    ),
    builtin!(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        true,
        &["deploy"],
        &["all"],
        STANDARD_VERBS,
        &[
            ("status", "apps", "v1", "Deployment", STATUS_VERBS),
            ("scale", "autoscaling", "v1", "Scale", STATUS_VERBS)
        ],
        true
    ),
    builtin!(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        true,
        &["rs"],
        &["all"],
        STANDARD_VERBS,
        &[
            ("status", "apps", "v1", "ReplicaSet", STATUS_VERBS),
            ("scale", "autoscaling", "v1", "Scale", STATUS_VERBS)
        ],
        true
    ),
    builtin!(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        true,
        &["sts"],
        &["all"],
        STANDARD_VERBS,
        &[
            ("status", "apps", "v1", "StatefulSet", STATUS_VERBS),
            ("scale", "autoscaling", "v1", "Scale", STATUS_VERBS)
        ],
        true
    ),
    builtin!(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        true,
        &["ds"],
        &["all"],
        STANDARD_VERBS,
        &[("status", "apps", "v1", "DaemonSet", STATUS_VERBS)],
        true
    ),
    builtin!(
        "batch",
        "v1",
        "Job",
        "jobs",
        true,
        &[],
        &["all"],
        STANDARD_VERBS,
        &[("status", "batch", "v1", "Job", STATUS_VERBS)],
        true
    ),
    builtin!(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        true,
        &["cj"],
        &["all"],
        STANDARD_VERBS,
        &[("status", "batch", "v1", "CronJob", STATUS_VERBS)],
        true
    ),
    builtin!(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        true,
        &[],
        &[],
        STANDARD_VERBS,
        NO_SUBS,
        false
    ),
    builtin!(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        true,
        &[],
        &[],
        STANDARD_VERBS,
        NO_SUBS,
        false
    ),
    builtin!(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
        &[],
        &[],
        STANDARD_VERBS,
        NO_SUBS,
        false
    ),
    builtin!(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
        &[],
        &[],
        STANDARD_VERBS,
        NO_SUBS,
        false
    ),
    builtin!(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
        &[],
        &[],
        STANDARD_VERBS,
        NO_SUBS,
        false
    ),
    builtin!(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        true,
        &["netpol"],
        &[],
        STANDARD_VERBS,
        NO_SUBS,
        true
    ),
    builtin!(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        true,
        &["ing"],
        &[],
        STANDARD_VERBS,
        &[("status", "networking.k8s.io", "v1", "Ingress", STATUS_VERBS)],
        true
    ),
    builtin!(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
        &["pdb"],
        &[],
        STANDARD_VERBS,
        &[(
            "status",
            "policy",
            "v1",
            "PodDisruptionBudget",
            STATUS_VERBS
        )],
        true
    ),
    builtin!(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        &["crd", "crds"],
        &["api-extensions"],
        STANDARD_VERBS,
        &[(
            "status",
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            STATUS_VERBS
        )],
        true
    ),
    builtin!(
        "events.k8s.io",
        "v1",
        "Event",
        "events",
        true,
        &["ev"],
        &[],
        STANDARD_VERBS,
        NO_SUBS,
        false
    ),
    builtin!(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        false,
        &[],
        &["api-extensions"],
        STANDARD_VERBS,
        &[(
            "status",
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicy",
            STATUS_VERBS
        )],
        true
    ),
    builtin!(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        false,
        &[],
        &["api-extensions"],
        STANDARD_VERBS,
        NO_SUBS,
        true
    ),
    builtin!(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        false,
        &[],
        &[],
        CREATE_ONLY,
        NO_SUBS,
        false
    ),
    builtin!(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        false,
        &[],
        &[],
        CREATE_ONLY,
        NO_SUBS,
        false
    ),
    builtin!(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        false,
        &[],
        &[],
        CREATE_ONLY,
        NO_SUBS,
        false
    ),
    builtin!(
        "authorization.k8s.io",
        "v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        true,
        &[],
        &[],
        CREATE_ONLY,
        NO_SUBS,
        false
    ),
    builtin!(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        false,
        &[],
        &[],
        CREATE_ONLY,
        NO_SUBS,
        false
    ),
    builtin!(
        "authentication.k8s.io",
        "v1",
        "TokenReview",
        "tokenreviews",
        false,
        &[],
        &[],
        CREATE_ONLY,
        NO_SUBS,
        false
    ),
    builtin!(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        true,
        &[],
        &[],
        STANDARD_VERBS,
        NO_SUBS,
        false
    ),
    // kube-aggregator's registrations; `super::aggregation` proxies the groups they name.
    builtin!(
        "apiregistration.k8s.io",
        "v1",
        "APIService",
        "apiservices",
        false,
        &[],
        &["api-extensions"],
        STANDARD_VERBS,
        &[(
            "status",
            "apiregistration.k8s.io",
            "v1",
            "APIService",
            STATUS_VERBS
        )],
        false
    ),
];

/// Every built-in resource the emulator serves.
pub fn builtin_resources() -> Vec<ResourceDef> {
    BUILTINS
        .iter()
        .map(|b| {
            let storage = if b.group == "events.k8s.io" {
                StorageKey {
                    group: String::new(),
                    resource: "events".to_string(),
                }
            } else {
                StorageKey {
                    group: b.group.to_string(),
                    resource: b.plural.to_string(),
                }
            };
            ResourceDef {
                group: b.group.to_string(),
                version: b.version.to_string(),
                kind: b.kind.to_string(),
                plural: b.plural.to_string(),
                singular: b.kind.to_lowercase(),
                namespaced: b.namespaced,
                short_names: b.short_names.iter().map(|s| s.to_string()).collect(),
                categories: b.categories.iter().map(|s| s.to_string()).collect(),
                verbs: b.verbs.iter().map(|s| s.to_string()).collect(),
                subresources: b
                    .subresources
                    .iter()
                    .map(|(name, group, version, kind, verbs)| SubresourceDef {
                        name: name.to_string(),
                        group: group.to_string(),
                        version: version.to_string(),
                        kind: kind.to_string(),
                        verbs: verbs.iter().map(|s| s.to_string()).collect(),
                    })
                    .collect(),
                tracks_generation: b.generation,
                storage,
                conversion: if b.group == "events.k8s.io" {
                    Conversion::EventsV1
                } else {
                    Conversion::None
                },
                custom: None,
            }
        })
        .collect()
}

/// Served resources: the built-ins plus those of established CRDs.
#[derive(Debug, Clone)]
pub struct Registry {
    builtin: Vec<ResourceDef>,
    custom: Vec<ResourceDef>,
}

impl Registry {
    /// Only the built-in resources.
    pub fn new() -> Registry {
        Registry {
            builtin: builtin_resources(),
            custom: Vec::new(),
        }
    }

    /// Every served resource, built-ins first.
    pub fn all(&self) -> impl Iterator<Item = &ResourceDef> {
        self.builtin.iter().chain(self.custom.iter())
    }

    /// The resource served at group/version/plural.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceDef> {
        self.all()
            .find(|def| def.group == group && def.version == version && def.plural == plural)
    }

    /// Whether a built-in resource is served at group/version (the real server's go-restful
    /// web services, which answer an unknown resource there with a `Status` 404).
    pub fn serves_builtin(&self, group: &str, version: &str) -> bool {
        self.builtin
            .iter()
            .any(|def| def.group == group && def.version == version)
    }

    /// Some served version of group/plural (for finding owners and storage kinds).
    pub fn find_any_version(&self, group: &str, plural: &str) -> Option<&ResourceDef> {
        self.all()
            .find(|def| def.group == group && def.plural == plural)
    }

    /// The resource for an apiVersion + kind, e.g. for owner references.
    pub fn find_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceDef> {
        let (group, version) = split_api_version(api_version);
        self.all()
            .find(|def| def.group == group && def.version == version && def.kind == kind)
    }

    /// Group/versions in serving order, deduplicated.
    pub fn group_versions(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for def in self.all() {
            let key = (def.group.clone(), def.version.clone());
            if !out.contains(&key) {
                out.push(key);
            }
        }
        out
    }

    /// Replaces the resources of one CRD (identified by group + plural).
    pub fn set_custom(&mut self, group: &str, plural: &str, defs: Vec<ResourceDef>) {
        self.custom
            .retain(|def| !(def.group == group && def.plural == plural));
        self.custom.extend(defs);
    }

    /// The custom resources (for checking name clashes).
    pub fn custom(&self) -> &[ResourceDef] {
        &self.custom
    }

    /// Storage keys of every resource whose objects are namespaced, deduplicated.
    pub fn namespaced_storages(&self) -> Vec<(StorageKey, ResourceDef)> {
        let mut out: Vec<(StorageKey, ResourceDef)> = Vec::new();
        for def in self.all() {
            if def.namespaced
                && !def.is_virtual()
                && !out.iter().any(|(key, _)| *key == def.storage)
            {
                out.push((def.storage.clone(), def.clone()));
            }
        }
        out
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

/// Splits `group/version` (or core `v1`) into its parts.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}

//! The RBAC authorizer, following `plugin/pkg/auth/authorizer/rbac`: a request is allowed when
//! some ClusterRoleBinding, or RoleBinding in the request's namespace, binds a subject the
//! user matches (User by name, Group, ServiceAccount by namespace and name) to a role with a
//! rule covering the request. Deny is the default; there are no deny rules. A binding whose
//! role does not exist contributes the `RBAC: … not found` reason the real server reports.

use serde_json::{Map, Value};

use super::attributes::{Attributes, ResourceAttributes};
use super::identity::UserInfo;
use super::label_selector;
use super::string_list;
use crate::server::resource::StorageKey;
use crate::server::store::Store;

const GROUP: &str = "rbac.authorization.k8s.io";

/// RBAC's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Why, for allowed requests the binding and role (as the real authorizer's reason);
    /// for denied ones any rule resolution errors.
    pub reason: String,
}

/// One `PolicyRule`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

impl Rule {
    /// Reads a rule object.
    pub fn from_json(rule: &Value) -> Rule {
        Rule {
            verbs: string_list(rule.get("verbs")),
            api_groups: string_list(rule.get("apiGroups")),
            resources: string_list(rule.get("resources")),
            resource_names: string_list(rule.get("resourceNames")),
            non_resource_urls: string_list(rule.get("nonResourceURLs")),
        }
    }

    /// The rule as JSON, for SelfSubjectRulesReview.
    pub fn to_json(&self) -> Value {
        let mut out = serde_json::json!({"verbs": self.verbs});
        if self.non_resource_urls.is_empty() {
            out["apiGroups"] = serde_json::json!(self.api_groups);
            out["resources"] = serde_json::json!(self.resources);
            if !self.resource_names.is_empty() {
                out["resourceNames"] = serde_json::json!(self.resource_names);
            }
        } else {
            out["nonResourceURLs"] = serde_json::json!(self.non_resource_urls);
        }
        out
    }

    fn has_verb(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == "*" || v == verb)
    }

    /// `RuleAllows` of the real authorizer.
    pub fn allows(&self, attributes: &Attributes) -> bool {
        match attributes {
            Attributes::Resource(r) => self.allows_resource(r),
            Attributes::NonResource { verb, path } => {
                self.has_verb(verb)
                    && self.non_resource_urls.iter().any(|url| {
                        url == "*"
                            || url == path
                            || url
                                .strip_suffix('*')
                                .is_some_and(|prefix| path.starts_with(prefix))
                    })
            }
        }
    }

    fn allows_resource(&self, r: &ResourceAttributes) -> bool {
        if !self.has_verb(&r.verb) {
            return false;
        }
        if !self.api_groups.iter().any(|g| g == "*" || *g == r.group) {
            return false;
        }
        let combined = r.resource_with_subresource();
        let resource_matches = self.resources.iter().any(|rule| {
            if rule == "*" || *rule == combined {
                return true;
            }
            if r.subresource.is_empty() {
                return false;
            }
            // `*/status` covers every resource's status; `pods/*` every pod subresource.
            *rule == format!("*/{}", r.subresource) || *rule == format!("{}/*", r.resource)
        });
        if !resource_matches {
            return false;
        }
        self.resource_names.is_empty() || self.resource_names.contains(&r.name)
    }
}

/// The rules of a `rules` array.
pub fn rules_of(value: Option<&Value>) -> Vec<Rule> {
    value
        .and_then(Value::as_array)
        .map(|rules| rules.iter().map(Rule::from_json).collect())
        .unwrap_or_default()
}

fn key(resource: &str) -> StorageKey {
    StorageKey {
        group: GROUP.into(),
        resource: resource.into(),
    }
}

/// Whether a binding's subject is this user (`appliesToUser`).
fn subject_matches(subject: &Value, user: &UserInfo, binding_namespace: &str) -> bool {
    let name = subject.get("name").and_then(Value::as_str).unwrap_or("");
    match subject.get("kind").and_then(Value::as_str) {
        Some("User") => user.username == name,
        Some("Group") => user.groups.iter().any(|g| g == name),
        Some("ServiceAccount") => {
            let namespace = subject
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_namespace);
            user.username == super::identity::service_account_username(namespace, name)
        }
        _ => false,
    }
}

/// The first subject of the binding that is this user, described as the real authorizer's
/// reason does (`User "x"`, `Group "x"`, `ServiceAccount "name/namespace"`).
fn bound_subject(binding: &Value, user: &UserInfo) -> Option<String> {
    let namespace = binding
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let subject = binding
        .get("subjects")
        .and_then(Value::as_array)?
        .iter()
        .find(|s| subject_matches(s, user, namespace))?;
    let kind = subject.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = subject.get("name").and_then(Value::as_str).unwrap_or("");
    Some(if kind == "ServiceAccount" {
        let sa_namespace = subject
            .get("namespace")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .unwrap_or(namespace);
        format!("{kind} \"{name}/{sa_namespace}\"")
    } else {
        format!("{kind} {name:?}")
    })
}

fn labels(object: &Value) -> Map<String, Value> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// A ClusterRole's effective rules: its own, or with an `aggregationRule` those of every
/// ClusterRole its selectors pick (what the aggregation controller writes into `rules`).
pub fn cluster_role_rules(store: &Store, role: &Value) -> Vec<Rule> {
    let own = || rules_of(role.get("rules"));
    let Some(selectors) = role
        .pointer("/aggregationRule/clusterRoleSelectors")
        .and_then(Value::as_array)
    else {
        return own();
    };
    let name = role
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut rules = Vec::new();
    for candidate in store.list(&key("clusterroles"), None) {
        let candidate_name = candidate
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if candidate_name == name || candidate.get("aggregationRule").is_some() {
            continue;
        }
        let candidate_labels = labels(candidate);
        let picked = selectors
            .iter()
            .any(|s| !s.is_null() && label_selector::matches(Some(s), &candidate_labels));
        if picked {
            rules.extend(
                candidate
                    .get("rules")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(Rule::from_json),
            );
        }
    }
    rules
}

/// Rules of the role a binding refers to, or the resolution error.
fn role_rules(store: &Store, binding: &Value) -> Result<(String, Vec<Rule>), String> {
    let kind = binding
        .pointer("/roleRef/kind")
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = binding
        .pointer("/roleRef/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let namespace = binding
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    match kind {
        "ClusterRole" => store
            .get(&key("clusterroles"), "", name)
            .map(|role| {
                (
                    format!("ClusterRole {name:?}"),
                    cluster_role_rules(store, role),
                )
            })
            .ok_or_else(|| format!("clusterrole.{GROUP} {name:?} not found")),
        "Role" => store
            .get(&key("roles"), namespace, name)
            .map(|role| (format!("Role {name:?}"), rules_of(role.get("rules"))))
            .ok_or_else(|| format!("role.{GROUP} {name:?} not found")),
        other => Err(format!("unknown roleRef kind {other:?}")),
    }
}

/// Visits the rules that apply to `user` in `namespace` (cluster-wide ones first); the visitor
/// returns `true` to stop. Returns the rule resolution errors met on the way.
fn visit_rules(
    store: &Store,
    user: &UserInfo,
    namespace: &str,
    mut visit: impl FnMut(&str, &Rule) -> bool,
) -> Vec<String> {
    let mut errors = Vec::new();
    let cluster = store.list(&key("clusterrolebindings"), None);
    let local = if namespace.is_empty() {
        Vec::new()
    } else {
        store.list(&key("rolebindings"), Some(namespace))
    };
    for (kind, binding) in cluster
        .into_iter()
        .map(|b| ("ClusterRoleBinding", b))
        .chain(local.into_iter().map(|b| ("RoleBinding", b)))
    {
        let Some(subject) = bound_subject(binding, user) else {
            continue;
        };
        match role_rules(store, binding) {
            Ok((role, rules)) => {
                let name = binding
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let described = if kind == "RoleBinding" {
                    format!("{kind} \"{name}/{namespace}\"")
                } else {
                    format!("{kind} {name:?}")
                };
                let source = format!("RBAC: allowed by {described} of {role} to {subject}");
                for rule in &rules {
                    if visit(&source, rule) {
                        return errors;
                    }
                }
            }
            Err(error) => errors.push(error),
        }
    }
    errors
}

/// Authorizes `attributes` for `user`.
pub fn authorize(store: &Store, user: &UserInfo, attributes: &Attributes) -> Decision {
    let namespace = match attributes {
        Attributes::Resource(r) => r.namespace.as_str(),
        Attributes::NonResource { .. } => "",
    };
    let mut allowed_by = None;
    let errors = visit_rules(store, user, namespace, |source, rule| {
        if rule.allows(attributes) {
            allowed_by = Some(source.to_string());
            true
        } else {
            false
        }
    });
    match allowed_by {
        Some(reason) => Decision {
            allowed: true,
            reason,
        },
        None => Decision {
            allowed: false,
            reason: match errors.len() {
                0 => String::new(),
                1 => format!("RBAC: {}", errors[0]),
                _ => format!("RBAC: [{}]", errors.join(", ")),
            },
        },
    }
}

/// Every rule that applies to `user` in `namespace`, for SelfSubjectRulesReview, and
/// whether resolving them met errors (the review's `incomplete`).
pub fn rules_for(store: &Store, user: &UserInfo, namespace: &str) -> (Vec<Rule>, Vec<String>) {
    let mut rules = Vec::new();
    let errors = visit_rules(store, user, namespace, |_, rule| {
        rules.push(rule.clone());
        false
    });
    (rules, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(verb: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes::Resource(ResourceAttributes {
            verb: verb.into(),
            group: "sre.agentlab.dev".into(),
            version: "v1alpha1".into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            namespace: "ns".into(),
        })
    }

    #[test]
    fn subresources_need_their_own_rule() {
        let rule = Rule::from_json(
            &json!({"apiGroups": ["sre.agentlab.dev"], "resources": ["incidents"], "verbs": ["get", "patch"]}),
        );
        assert!(rule.allows(&attrs("patch", "incidents", "", "a")));
        assert!(!rule.allows(&attrs("patch", "incidents", "status", "a")));
        let status = Rule::from_json(
            &json!({"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["patch"]}),
        );
        assert!(status.allows(&attrs("patch", "incidents", "status", "a")));
        assert!(!status.allows(&attrs("patch", "incidents", "", "a")));
    }

    #[test]
    fn resource_names_restrict_and_exclude_collections() {
        let rule = Rule::from_json(
            &json!({"apiGroups": ["sre.agentlab.dev"], "resources": ["incidents"], "resourceNames": ["a"], "verbs": ["get", "list"]}),
        );
        assert!(rule.allows(&attrs("get", "incidents", "", "a")));
        assert!(!rule.allows(&attrs("get", "incidents", "", "b")));
        assert!(!rule.allows(&attrs("list", "incidents", "", "")));
    }

    #[test]
    fn non_resource_urls_match_exactly_or_by_prefix() {
        let rule =
            Rule::from_json(&json!({"nonResourceURLs": ["/healthz", "/apis/*"], "verbs": ["get"]}));
        let get = |path: &str| Attributes::NonResource {
            verb: "get".into(),
            path: path.into(),
        };
        assert!(rule.allows(&get("/healthz")));
        assert!(!rule.allows(&get("/healthz/etcd")));
        assert!(rule.allows(&get("/apis/apps/v1")));
        assert!(!rule.allows(&Attributes::NonResource {
            verb: "post".into(),
            path: "/healthz".into()
        }));
    }
}

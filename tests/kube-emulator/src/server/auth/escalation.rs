//! RBAC escalation prevention, as the RBAC REST storage enforces it: a user may create or
//! update a Role/ClusterRole only with rules they already hold (or the `escalate` verb on it),
//! and a RoleBinding/ClusterRoleBinding only to a role whose rules they hold (or the `bind`
//! verb on it). `system:masters` holds everything.

use serde_json::Value;

use super::attributes::{Attributes, ResourceAttributes};
use super::identity::{SYSTEM_MASTERS, UserInfo};
use super::rbac::{self, Rule, rules_of};
use crate::server::resource::StorageKey;
use crate::server::status::ApiError;
use crate::server::store::Store;

const GROUP: &str = "rbac.authorization.k8s.io";

/// One atomic permission of a rule: a verb on one group/resource/name, or on one URL.
fn atoms(rule: &Rule) -> Vec<Attributes> {
    let mut out = Vec::new();
    for verb in &rule.verbs {
        for url in &rule.non_resource_urls {
            out.push(Attributes::NonResource {
                verb: verb.clone(),
                path: url.clone(),
            });
        }
        for group in &rule.api_groups {
            for resource in &rule.resources {
                let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
                let names: Vec<&str> = if rule.resource_names.is_empty() {
                    vec![""]
                } else {
                    rule.resource_names.iter().map(String::as_str).collect()
                };
                for name in names {
                    out.push(Attributes::Resource(ResourceAttributes {
                        verb: verb.clone(),
                        group: group.clone(),
                        resource: resource.to_string(),
                        subresource: subresource.to_string(),
                        name: name.to_string(),
                        ..ResourceAttributes::default()
                    }));
                }
            }
        }
    }
    out
}

/// Whether a held rule covers an atomic permission (wildcards only by wildcards; a rule limited
/// by names does not cover the unnamed permission).
fn covers(held: &Rule, atom: &Attributes) -> bool {
    match atom {
        Attributes::NonResource { .. } => held.allows(atom),
        Attributes::Resource(r) => {
            let names_ok = held.resource_names.is_empty()
                || (!r.name.is_empty() && held.resource_names.contains(&r.name));
            let unnamed = Attributes::Resource(ResourceAttributes {
                name: String::new(),
                ..r.clone()
            });
            let without_names = Rule {
                resource_names: Vec::new(),
                ..held.clone()
            };
            names_ok && without_names.allows(&unnamed)
        }
    }
}

fn not_held(held: &[Rule], wanted: &[Rule]) -> Vec<String> {
    wanted
        .iter()
        .flat_map(atoms)
        .filter(|atom| !held.iter().any(|h| covers(h, atom)))
        .map(|atom| match atom {
            Attributes::Resource(r) => format!(
                "{{APIGroups:[{:?}], Resources:[{:?}], Verbs:[{:?}]{}}}",
                r.group,
                r.resource_with_subresource(),
                r.verb,
                if r.name.is_empty() {
                    String::new()
                } else {
                    format!(", ResourceNames:[{:?}]", r.name)
                }
            ),
            Attributes::NonResource { verb, path } => {
                format!("{{NonResourceURLs:[{path:?}], Verbs:[{verb:?}]}}")
            }
        })
        .collect()
}

fn has_verb_on(
    store: &Store,
    user: &UserInfo,
    verb: &str,
    resource: &str,
    name: &str,
    namespace: &str,
) -> bool {
    rbac::authorize(
        store,
        user,
        &Attributes::Resource(ResourceAttributes {
            verb: verb.into(),
            group: GROUP.into(),
            resource: resource.into(),
            name: name.into(),
            namespace: namespace.into(),
            ..ResourceAttributes::default()
        }),
    )
    .allowed
}

/// Checks a write of an RBAC object by `user`; `resource` is its plural.
pub fn check(
    store: &Store,
    user: &UserInfo,
    resource: &str,
    namespace: &str,
    object: &Value,
) -> Result<(), ApiError> {
    if user.groups.iter().any(|g| g == SYSTEM_MASTERS) {
        return Ok(());
    }
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let (wanted, excused) = match resource {
        "roles" | "clusterroles" => (
            if resource == "clusterroles" {
                rbac::cluster_role_rules(store, object)
            } else {
                rules_of(object.get("rules"))
            },
            has_verb_on(store, user, "escalate", resource, name, namespace),
        ),
        "rolebindings" | "clusterrolebindings" => {
            let kind = object
                .pointer("/roleRef/kind")
                .and_then(Value::as_str)
                .unwrap_or("");
            let role = object
                .pointer("/roleRef/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let (role_resource, role_namespace) = if kind == "Role" {
                ("roles", namespace)
            } else {
                ("clusterroles", "")
            };
            let key = StorageKey {
                group: GROUP.into(),
                resource: role_resource.into(),
            };
            let rules = match store.get(&key, role_namespace, role) {
                Some(found) if kind == "ClusterRole" => rbac::cluster_role_rules(store, found),
                Some(found) => rules_of(found.get("rules")),
                None => Vec::new(),
            };
            (
                rules,
                has_verb_on(store, user, "bind", role_resource, role, namespace),
            )
        }
        _ => return Ok(()),
    };
    if excused {
        return Ok(());
    }
    let (held, _) = rbac::rules_for(store, user, namespace);
    let missing = not_held(&held, &wanted);
    if missing.is_empty() {
        return Ok(());
    }
    let qualified = format!("{resource}.{GROUP}");
    let groups: Vec<String> = user.groups.iter().map(|g| format!("{g:?}")).collect();
    let message = format!(
        "{qualified} {name:?} is forbidden: user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
        user.username,
        groups.join(" "),
        missing.join("\n")
    );
    Err(ApiError {
        code: 403,
        reason: "Forbidden".into(),
        message,
        details: Some(serde_json::json!({"name": name, "group": GROUP, "kind": resource})),
        retry_after: None,
    })
}

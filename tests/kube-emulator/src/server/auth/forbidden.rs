//! The answers of a failed authentication (401) or authorization (403), worded as
//! kube-apiserver's `responsewriters.Forbidden` and `apierrors.NewForbidden` word them:
//! `pods "p" is forbidden: User "system:serviceaccount:ns:sa" cannot delete resource "pods"
//! in API group "" in the namespace "ns"`.

use serde_json::json;

use super::attributes::Attributes;
use super::identity::UserInfo;
use crate::server::status::ApiError;

/// 401 Unauthorized, exactly the real server's body.
pub fn unauthorized() -> ApiError {
    ApiError {
        code: 401,
        reason: "Unauthorized".into(),
        message: "Unauthorized".into(),
        details: None,
        retry_after: None,
    }
}

/// The `User "…" cannot …` part.
pub fn denial(user: &UserInfo, attributes: &Attributes) -> String {
    let username = &user.username;
    match attributes {
        Attributes::NonResource { verb, path } => {
            format!("User {username:?} cannot {verb} path {path:?}")
        }
        Attributes::Resource(r) => {
            let resource = r.resource_with_subresource();
            let verb = &r.verb;
            let group = &r.group;
            if r.namespace.is_empty() {
                format!(
                    "User {username:?} cannot {verb} resource {resource:?} in API group {group:?} at the cluster scope"
                )
            } else {
                format!(
                    "User {username:?} cannot {verb} resource {resource:?} in API group {group:?} in the namespace {:?}",
                    r.namespace
                )
            }
        }
    }
}

/// 403 Forbidden for a request RBAC denied; `reason` is the authorizer's (may be empty).
pub fn forbidden(user: &UserInfo, attributes: &Attributes, reason: &str) -> ApiError {
    let mut why = denial(user, attributes);
    if !reason.is_empty() {
        why = format!("{why}: {reason}");
    }
    let (group, resource, name) = match attributes {
        Attributes::Resource(r) => (r.group.as_str(), r.resource.as_str(), r.name.as_str()),
        Attributes::NonResource { .. } => ("", "", ""),
    };
    let qualified = match (resource, group) {
        ("", _) => String::new(),
        (resource, "") => resource.to_string(),
        (resource, group) => format!("{resource}.{group}"),
    };
    let message = match (qualified.as_str(), name) {
        ("", _) => format!("forbidden: {why}"),
        (qualified, "") => format!("{qualified} is forbidden: {why}"),
        (qualified, name) => format!("{qualified} {name:?} is forbidden: {why}"),
    };
    // `details` as the real StatusDetails, whose empty fields are omitted.
    let mut details = serde_json::Map::new();
    if !name.is_empty() {
        details.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        details.insert("group".into(), json!(group));
    }
    if !resource.is_empty() {
        details.insert("kind".into(), json!(resource));
    }
    ApiError {
        code: 403,
        reason: "Forbidden".into(),
        message,
        details: Some(serde_json::Value::Object(details)),
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::auth::attributes::ResourceAttributes;

    #[test]
    fn wording_matches_the_real_server() {
        let user = UserInfo::service_account("team", "agent", "u");
        let delete = Attributes::Resource(ResourceAttributes {
            verb: "delete".into(),
            resource: "pods".into(),
            name: "web".into(),
            namespace: "team".into(),
            ..ResourceAttributes::default()
        });
        assert_eq!(
            forbidden(&user, &delete, "").message,
            "pods \"web\" is forbidden: User \"system:serviceaccount:team:agent\" cannot delete resource \"pods\" in API group \"\" in the namespace \"team\""
        );
        let nodes = Attributes::Resource(ResourceAttributes {
            verb: "list".into(),
            resource: "nodes".into(),
            ..ResourceAttributes::default()
        });
        assert_eq!(
            forbidden(&UserInfo::anonymous(), &nodes, "").message,
            "nodes is forbidden: User \"system:anonymous\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"
        );
        let path = Attributes::NonResource {
            verb: "get".into(),
            path: "/metrics".into(),
        };
        assert_eq!(
            forbidden(&UserInfo::anonymous(), &path, "").message,
            "forbidden: User \"system:anonymous\" cannot get path \"/metrics\""
        );
    }
}

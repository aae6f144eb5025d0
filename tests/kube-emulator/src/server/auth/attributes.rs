//! The authorization attributes of a request, derived as kube-apiserver's
//! `RequestInfoFactory` does: a resource request (verb from the method, `list`/`watch` for
//! collections, the namespace of `/namespaces/NAME` itself, the name a
//! `metadata.name=` field selector pins) or a non-resource request (the path and the
//! lower-cased method).

use http::Method;

use crate::server::request::{Query, ResourcePath, Route};

/// What RBAC decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attributes {
    /// A request for an API object.
    Resource(ResourceAttributes),
    /// Anything else: discovery, `/version`, `/healthz`, `/openapi/…`.
    NonResource {
        /// `get`, `post`, …
        verb: String,
        /// The URL path.
        path: String,
    },
}

/// The attributes of a resource request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceAttributes {
    pub verb: String,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// Empty for cluster-scoped requests.
    pub namespace: String,
}

impl ResourceAttributes {
    /// `pods` or `pods/log`, the form RBAC rules and messages use.
    pub fn resource_with_subresource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

impl Attributes {
    /// The verb, for either kind.
    pub fn verb(&self) -> &str {
        match self {
            Attributes::Resource(r) => &r.verb,
            Attributes::NonResource { verb, .. } => verb,
        }
    }
}

/// Derives the attributes of a routed request.
pub fn of_request(method: &Method, path: &str, query: Option<&str>, route: &Route) -> Attributes {
    match route {
        Route::Resource(resource) => {
            Attributes::Resource(of_resource(method, resource, &Query::parse(query)))
        }
        _ => Attributes::NonResource {
            verb: non_resource_verb(method),
            path: path.to_string(),
        },
    }
}

fn non_resource_verb(method: &Method) -> String {
    if *method == Method::HEAD {
        "get".into()
    } else {
        method.as_str().to_ascii_lowercase()
    }
}

fn of_resource(method: &Method, path: &ResourcePath, query: &Query) -> ResourceAttributes {
    let mut name = path.name.clone().unwrap_or_default();
    let collection = name.is_empty();
    let watching = path.legacy_watch || (query.flag("watch") && *method == Method::GET);
    let verb = match *method {
        Method::GET | Method::HEAD if watching => "watch",
        Method::GET | Method::HEAD if collection => "list",
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if collection => "deletecollection",
        Method::DELETE => "delete",
        _ => "",
    };
    let verb = if verb.is_empty() {
        method.as_str().to_ascii_lowercase()
    } else {
        verb.to_string()
    };
    if collection && (verb == "list" || verb == "watch") {
        // A list or watch pinned to one name is authorized as that name.
        if let Some(selector) = query.get("fieldSelector") {
            for term in selector.split(',') {
                let pinned = term
                    .strip_prefix("metadata.name==")
                    .or_else(|| term.strip_prefix("metadata.name="));
                if let Some(pinned) = pinned {
                    name = pinned.to_string();
                }
            }
        }
    }
    let mut namespace = path.namespace.clone().unwrap_or_default();
    if path.group.is_empty() && path.plural == "namespaces" && !name.is_empty() {
        // `/api/v1/namespaces/NAME` is in namespace NAME, so a RoleBinding there covers it.
        namespace = name.clone();
    }
    ResourceAttributes {
        verb,
        group: path.group.clone(),
        version: path.version.clone(),
        resource: path.plural.clone(),
        subresource: path.subresource.clone().unwrap_or_default(),
        name,
        namespace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::request::route;

    fn resource(method: Method, url: &str) -> ResourceAttributes {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        match of_request(&method, path, Some(query), &route(path)) {
            Attributes::Resource(r) => r,
            other => panic!("not a resource request: {other:?}"),
        }
    }

    #[test]
    fn verbs_follow_method_and_collection() {
        assert_eq!(
            resource(Method::GET, "/api/v1/namespaces/a/pods").verb,
            "list"
        );
        assert_eq!(
            resource(Method::GET, "/api/v1/namespaces/a/pods?watch=true").verb,
            "watch"
        );
        assert_eq!(
            resource(Method::GET, "/api/v1/namespaces/a/pods/p").verb,
            "get"
        );
        assert_eq!(
            resource(Method::DELETE, "/api/v1/namespaces/a/pods").verb,
            "deletecollection"
        );
        let log = resource(Method::GET, "/api/v1/namespaces/a/pods/p/log");
        assert_eq!(
            (log.verb.as_str(), log.subresource.as_str()),
            ("get", "log")
        );
    }

    #[test]
    fn a_namespace_is_in_itself_and_a_name_selector_pins_the_name() {
        let ns = resource(Method::GET, "/api/v1/namespaces/team");
        assert_eq!((ns.namespace.as_str(), ns.name.as_str()), ("team", "team"));
        let pinned = resource(
            Method::GET,
            "/apis/coordination.k8s.io/v1/namespaces/a/leases?fieldSelector=metadata.name%3Dlock&watch=1",
        );
        assert_eq!(
            (pinned.verb.as_str(), pinned.name.as_str()),
            ("watch", "lock")
        );
    }
}

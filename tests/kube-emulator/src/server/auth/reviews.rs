//! The create-only review APIs, answered from the same authentication and RBAC the request
//! path uses: SelfSubjectAccessReview, SubjectAccessReview, LocalSubjectAccessReview,
//! SelfSubjectRulesReview (`authorization.k8s.io/v1`), SelfSubjectReview and TokenReview
//! (`authentication.k8s.io/v1`).

use serde_json::{Value, json};

use super::attributes::{Attributes, ResourceAttributes};
use super::authenticate;
use super::identity::{SYSTEM_MASTERS, UserInfo};
use super::rbac;
use super::string_list;
use super::tokens::TokenIssuer;
use crate::server::objects::{self, Request};
use crate::server::reply::Reply;
use crate::server::state::Inner;
use crate::server::status::ApiError;

fn text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// The attributes an access review's spec asks about.
fn spec_attributes(spec: &Value) -> Result<Attributes, ApiError> {
    if let Some(r) = spec.get("resourceAttributes").filter(|r| !r.is_null()) {
        return Ok(Attributes::Resource(ResourceAttributes {
            verb: text(r, "verb"),
            group: text(r, "group"),
            version: text(r, "version"),
            resource: text(r, "resource"),
            subresource: text(r, "subresource"),
            name: text(r, "name"),
            namespace: text(r, "namespace"),
        }));
    }
    if let Some(n) = spec.get("nonResourceAttributes").filter(|n| !n.is_null()) {
        return Ok(Attributes::NonResource {
            verb: text(n, "verb"),
            path: text(n, "path"),
        });
    }
    Err(ApiError::invalid(
        "SubjectAccessReview",
        "authorization.k8s.io",
        "",
        vec![crate::server::status::Cause::new(
            "FieldValueRequired",
            "spec.resourceAttributes",
            "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )],
    ))
}

fn access_status(inner: &Inner, user: &UserInfo, attributes: &Attributes) -> Value {
    if user.groups.iter().any(|g| g == SYSTEM_MASTERS) {
        return json!({"allowed": true});
    }
    let decision = rbac::authorize(&inner.store, user, attributes);
    let mut status = json!({"allowed": decision.allowed});
    if !decision.reason.is_empty() {
        status["reason"] = json!(decision.reason);
    }
    status
}

fn rules_status(inner: &Inner, user: &UserInfo, namespace: &str) -> Value {
    let (rules, errors) = rbac::rules_for(&inner.store, user, namespace);
    let (non_resource, resource): (Vec<_>, Vec<_>) = rules
        .iter()
        .partition(|rule| !rule.non_resource_urls.is_empty());
    let mut status = json!({
        "resourceRules": resource.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
        "nonResourceRules": non_resource.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
        "incomplete": !errors.is_empty(),
    });
    if !errors.is_empty() {
        status["evaluationError"] = json!(errors.join(", "));
    }
    status
}

/// POST to a review resource on behalf of `requester`.
pub fn review(
    inner: &Inner,
    issuer: &TokenIssuer,
    requester: &UserInfo,
    req: &Request<'_>,
) -> Result<Reply, ApiError> {
    let mut body = objects::decode_body(req.content_type, req.body)?;
    objects::check_type_meta(req.def, &body, req.body)?;
    let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
    let status = match req.def.kind.as_str() {
        "SelfSubjectAccessReview" => access_status(inner, requester, &spec_attributes(&spec)?),
        "SubjectAccessReview" => {
            let subject = UserInfo::from_review_spec(&spec);
            access_status(inner, &subject, &spec_attributes(&spec)?)
        }
        "LocalSubjectAccessReview" => {
            let namespace = req.path.namespace.as_deref().unwrap_or("");
            let mut attributes = spec_attributes(&spec)?;
            if let Attributes::Resource(r) = &mut attributes {
                if !r.namespace.is_empty() && r.namespace != namespace {
                    return Err(ApiError::bad_request(format!(
                        "spec.resourceAttributes.namespace must match namespace: {namespace}"
                    )));
                }
                r.namespace = namespace.to_string();
            }
            let subject = UserInfo::from_review_spec(&spec);
            access_status(inner, &subject, &attributes)
        }
        "SelfSubjectRulesReview" => rules_status(inner, requester, &text(&spec, "namespace")),
        "SelfSubjectReview" => json!({"userInfo": requester.to_json()}),
        "TokenReview" => {
            let audiences = string_list(spec.get("audiences"));
            match authenticate::authenticate_token(
                &inner.store,
                issuer,
                &text(&spec, "token"),
                &audiences,
            ) {
                Ok(ok) => json!({
                    "authenticated": true,
                    "user": ok.user.to_json(),
                    "audiences": ok.audiences,
                }),
                Err(error) => json!({"user": {}, "error": error.to_string()}),
            }
        }
        other => return Err(ApiError::internal(format!("no review for kind {other}"))),
    };
    body["status"] = status;
    if body.get("metadata").is_none() {
        body["metadata"] = json!({"creationTimestamp": null});
    }
    Ok(Reply::created(body))
}

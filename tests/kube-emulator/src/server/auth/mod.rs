//! Who is asking and may they: the first stage of every request, before routing to a
//! handler, as in kube-apiserver's filter chain (authentication → authorization → admission).
//!
//! - [`identity`]: the `user.Info` a request runs as (username, uid, groups, extra).
//! - [`tokens`]: ServiceAccount JWTs, signed and verified with the server's own key.
//! - [`authenticate`]: the bearer token (admin static token or ServiceAccount JWT) → identity;
//!   no credentials → `system:anonymous`.
//! - [`impersonation`]: `Impersonate-*` headers (`kubectl --as`), checked with the `impersonate` verb.
//! - [`attributes`]: the request's authorization attributes (verb, group, resource, subresource,
//!   name, namespace, or a non-resource path), derived the way `RequestInfoFactory` does.
//! - [`rbac`]: the RBAC authorizer over the stored Roles, ClusterRoles and bindings.
//! - [`bootstrap_policy`]: the default roles and bindings every cluster starts with.
//! - [`escalation`]: no granting, through a role or a binding, of rights one does not hold.
//! - [`forbidden`]: 401 and 403 answers in the real server's wording.
//! - [`token_request`] and [`reviews`]: the APIs that expose all of the above
//!   (`serviceaccounts/token`, TokenReview, SelfSubjectReview, the access reviews).

pub mod attributes;
pub mod authenticate;
pub mod bootstrap_policy;
pub mod escalation;
pub mod forbidden;
pub mod identity;
pub mod impersonation;
pub mod label_selector;
pub mod rbac;
pub mod reviews;
pub mod token_request;
pub mod tokens;

use serde_json::Value;

use self::attributes::Attributes;
use self::identity::UserInfo;
use super::state::Inner;
use super::status::ApiError;

/// Authorizes one request: `system:masters` short-circuits as in kube-apiserver (its
/// privileged-group authorizer runs before RBAC), then RBAC decides.
pub fn authorize(inner: &Inner, user: &UserInfo, attributes: &Attributes) -> Result<(), ApiError> {
    if user.groups.iter().any(|g| g == identity::SYSTEM_MASTERS) {
        return Ok(());
    }
    let decision = rbac::authorize(&inner.store, user, attributes);
    if decision.allowed {
        Ok(())
    } else {
        Err(forbidden::forbidden(user, attributes, &decision.reason))
    }
}

/// The strings of a JSON string array (`verbs`, `groups`, `audiences`, …); absent or non-string
/// entries are skipped, as the API's own decoding would reject them earlier.
pub fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

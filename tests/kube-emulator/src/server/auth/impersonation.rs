//! User impersonation, as kube-apiserver's impersonation filter (after authentication, before
//! authorization): `Impersonate-User`, `Impersonate-Uid`, `Impersonate-Group` (repeatable) and
//! `Impersonate-Extra-<key>` turn the request into one made by that identity, provided the
//! authenticated caller may `impersonate` each part: `users` (or `serviceaccounts` in the
//! account's namespace) and `groups` in the core group, `uids` and `userextras/<key>` in
//! `authentication.k8s.io`. `kubectl --as` and kubeconfig `as:` use it; it is how a test (or an
//! admin) acts as a person without that person's credentials.
//!
//! The impersonated identity gets `system:authenticated` (a ServiceAccount also its
//! `system:serviceaccounts` groups when no group is asked for), as the real filter adds.

use http::HeaderMap;

use super::attributes::{Attributes, ResourceAttributes};
use super::authorize;
use super::identity::{self, UserInfo};
use crate::server::state::Inner;
use crate::server::status::ApiError;

const USER: &str = "impersonate-user";
const UID: &str = "impersonate-uid";
const GROUP: &str = "impersonate-group";
const EXTRA_PREFIX: &str = "impersonate-extra-";

fn impersonate(group: &str, resource: &str, namespace: &str, name: &str) -> Attributes {
    Attributes::Resource(ResourceAttributes {
        verb: "impersonate".into(),
        group: group.into(),
        resource: resource.into(),
        namespace: namespace.into(),
        name: name.into(),
        ..ResourceAttributes::default()
    })
}

/// The identity the request runs as: `caller`, or whom it impersonates when it may.
pub fn apply(inner: &Inner, caller: UserInfo, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    };
    let user = values(USER).into_iter().next();
    let uid = values(UID).into_iter().next();
    let groups = values(GROUP);
    let mut extra = std::collections::BTreeMap::<String, Vec<String>>::new();
    for name in headers.keys() {
        if let Some(key) = name.as_str().strip_prefix(EXTRA_PREFIX) {
            // Keys travel percent-encoded (they may hold '/').
            let key = percent_decode(key);
            extra.entry(key).or_default().extend(values(name.as_str()));
        }
    }
    let Some(username) = user else {
        if groups.is_empty() && uid.is_none() && extra.is_empty() {
            return Ok(caller);
        }
        return Err(ApiError::internal(format!(
            "requested {groups:?} without impersonating a user"
        )));
    };
    let mut checks = Vec::new();
    match username
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
    {
        Some((namespace, name)) => checks.push(impersonate("", "serviceaccounts", namespace, name)),
        None => checks.push(impersonate("", "users", "", &username)),
    }
    for group in &groups {
        checks.push(impersonate("", "groups", "", group));
    }
    if let Some(uid) = &uid {
        checks.push(impersonate("authentication.k8s.io", "uids", "", uid));
    }
    for (key, values) in &extra {
        for value in values {
            checks.push(impersonate(
                "authentication.k8s.io",
                &format!("userextras/{key}"),
                "",
                value,
            ));
        }
    }
    for check in &checks {
        authorize(inner, &caller, check)?;
    }
    let mut all_groups = groups;
    if let Some((namespace, _)) = username
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'))
        && all_groups.is_empty()
    {
        all_groups.push(identity::SERVICE_ACCOUNTS.to_string());
        all_groups.push(format!("{}:{namespace}", identity::SERVICE_ACCOUNTS));
    }
    if username != identity::ANONYMOUS && !all_groups.iter().any(|g| g == identity::AUTHENTICATED) {
        all_groups.push(identity::AUTHENTICATED.to_string());
    }
    Ok(UserInfo {
        username,
        uid: uid.unwrap_or_default(),
        groups: all_groups,
        extra,
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

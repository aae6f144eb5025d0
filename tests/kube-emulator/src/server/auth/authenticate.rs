//! Authentication: the request's bearer token → the identity it runs as.
//!
//! Like kube-apiserver with a static token file and the ServiceAccount token authenticator:
//! the emulator's admin token is `system:masters`; a JWT from TokenRequest is the
//! ServiceAccount it names, valid only while the signature, issuer, audience and lifetime hold
//! *and* the ServiceAccount (and the Pod or Secret it is bound to) still exists with the same
//! uid. A request without credentials is `system:anonymous`; a token that fails every check
//! is refused with 401 — it never falls back to anonymous.

use http::HeaderMap;
use http::header::AUTHORIZATION;
use serde_json::Value;

use super::identity::{self, UserInfo};
use super::tokens::{ISSUER, ServiceAccountClaims, TokenError, TokenIssuer};
use crate::server::resource::StorageKey;
use crate::server::state::Inner;
use crate::server::store::Store;

/// Why credentials were not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthenticationError {
    #[error("invalid bearer token")]
    Token(#[source] TokenError),
    #[error("only bearer tokens are accepted")]
    UnsupportedScheme,
    #[error("serviceaccounts \"{name}\" not found")]
    ServiceAccountGone { name: String },
    #[error("service account UID ({stored}) does not match claim ({claimed})")]
    ServiceAccountReplaced { stored: String, claimed: String },
    #[error("pods \"{name}\" not found")]
    PodGone { name: String },
    #[error("pod UID ({stored}) does not match claim ({claimed})")]
    PodReplaced { stored: String, claimed: String },
    #[error("secrets \"{name}\" not found")]
    SecretGone { name: String },
}

/// An accepted token: who it is and which of the asked-for audiences it is valid for.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: UserInfo,
    pub audiences: Vec<String>,
}

/// Authenticates an HTTP request from its `Authorization` header.
pub fn authenticate_request(
    inner: &Inner,
    issuer: &TokenIssuer,
    headers: &HeaderMap,
) -> Result<UserInfo, AuthenticationError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(UserInfo::anonymous());
    };
    let value = value
        .to_str()
        .map_err(|_| AuthenticationError::UnsupportedScheme)?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(AuthenticationError::UnsupportedScheme)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthenticationError::UnsupportedScheme);
    }
    let token = token.trim();
    if token.is_empty() {
        // kube-apiserver treats an empty bearer token as no credentials.
        return Ok(UserInfo::anonymous());
    }
    authenticate_token(&inner.store, issuer, token, &[]).map(|ok| ok.user)
}

/// Authenticates one token for `audiences` (empty: the API server's own audience), as the
/// request path and TokenReview do.
pub fn authenticate_token(
    store: &Store,
    issuer: &TokenIssuer,
    token: &str,
    audiences: &[String],
) -> Result<Authenticated, AuthenticationError> {
    let wanted: Vec<String> = if audiences.is_empty() {
        vec![ISSUER.to_string()]
    } else {
        audiences.to_vec()
    };
    if token == crate::TOKEN {
        return Ok(Authenticated {
            user: UserInfo::admin(),
            audiences: wanted,
        });
    }
    let claims = issuer
        .verify(token, &wanted)
        .map_err(AuthenticationError::Token)?;
    let user = bound_identity(store, &claims)?;
    let audiences = wanted
        .into_iter()
        .filter(|a| claims.aud.contains(a))
        .collect();
    Ok(Authenticated { user, audiences })
}

fn core(resource: &str) -> StorageKey {
    StorageKey {
        group: String::new(),
        resource: resource.into(),
    }
}

fn uid_of(object: &Value) -> &str {
    object
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The identity of verified claims, if the objects they name are still there.
fn bound_identity(
    store: &Store,
    claims: &ServiceAccountClaims,
) -> Result<UserInfo, AuthenticationError> {
    let k8s = &claims.kubernetes;
    let namespace = &k8s.namespace;
    let account = store
        .get(
            &core("serviceaccounts"),
            namespace,
            &k8s.serviceaccount.name,
        )
        .ok_or_else(|| AuthenticationError::ServiceAccountGone {
            name: k8s.serviceaccount.name.clone(),
        })?;
    if uid_of(account) != k8s.serviceaccount.uid {
        return Err(AuthenticationError::ServiceAccountReplaced {
            stored: uid_of(account).into(),
            claimed: k8s.serviceaccount.uid.clone(),
        });
    }
    let mut user = UserInfo::service_account(namespace, &k8s.serviceaccount.name, uid_of(account));
    if let Some(pod_claim) = &k8s.pod {
        let pod = store
            .get(&core("pods"), namespace, &pod_claim.name)
            .ok_or_else(|| AuthenticationError::PodGone {
                name: pod_claim.name.clone(),
            })?;
        if uid_of(pod) != pod_claim.uid {
            return Err(AuthenticationError::PodReplaced {
                stored: uid_of(pod).into(),
                claimed: pod_claim.uid.clone(),
            });
        }
        user.extra.insert(
            identity::EXTRA_POD_NAME.into(),
            vec![pod_claim.name.clone()],
        );
        user.extra
            .insert(identity::EXTRA_POD_UID.into(), vec![pod_claim.uid.clone()]);
    }
    if let Some(secret_claim) = &k8s.secret {
        let secret = store.get(&core("secrets"), namespace, &secret_claim.name);
        if secret.is_none_or(|s| uid_of(s) != secret_claim.uid) {
            return Err(AuthenticationError::SecretGone {
                name: secret_claim.name.clone(),
            });
        }
    }
    if let Some(node) = &k8s.node {
        user.extra
            .insert(identity::EXTRA_NODE_NAME.into(), vec![node.name.clone()]);
        user.extra
            .insert(identity::EXTRA_NODE_UID.into(), vec![node.uid.clone()]);
    }
    user.extra.insert(
        identity::EXTRA_CREDENTIAL_ID.into(),
        vec![format!("JTI={}", claims.jti)],
    );
    Ok(user)
}

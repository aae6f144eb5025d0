//! `POST serviceaccounts/NAME/token` (TokenRequest): issues a signed ServiceAccount token,
//! optionally bound to a Pod or Secret, with the checks and claims of kube-apiserver's
//! token REST storage (a bound Pod must exist, have the given uid and run as this
//! ServiceAccount; a Pod on a node adds the node claim).

use serde_json::{Value, json};

use super::tokens::{ISSUER, KubernetesClaim, ObjectClaim, ServiceAccountClaims, TokenIssuer};
use crate::server::meta;
use crate::server::objects::{Request, decode_body};
use crate::server::reply::Reply;
use crate::server::resource::StorageKey;
use crate::server::state::Inner;
use crate::server::status::{ApiError, Cause, Subject};

/// Default lifetime when the request names none, as kube-apiserver's one hour.
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;

fn core(resource: &str) -> StorageKey {
    StorageKey {
        group: String::new(),
        resource: resource.into(),
    }
}

/// The claims a binding adds: the Pod (and its Node) or the Secret.
#[derive(Default)]
struct BoundClaims {
    pod: Option<ObjectClaim>,
    node: Option<ObjectClaim>,
    secret: Option<ObjectClaim>,
}

/// The object a token is bound to, checked against the store.
fn bound_object(
    inner: &Inner,
    namespace: &str,
    account: &str,
    reference: &Value,
) -> Result<BoundClaims, ApiError> {
    let kind = reference.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = reference.get("name").and_then(Value::as_str).unwrap_or("");
    let uid = reference.get("uid").and_then(Value::as_str).unwrap_or("");
    let (resource, singular) = match kind {
        "Pod" => ("pods", "Pod"),
        "Secret" => ("secrets", "Secret"),
        other => {
            return Err(ApiError::bad_request(format!(
                "cannot bind token to object of type {other}"
            )));
        }
    };
    let object = inner
        .store
        .get(&core(resource), namespace, name)
        .ok_or_else(|| {
            ApiError::not_found(Subject {
                group: "",
                resource,
                name,
            })
        })?;
    let stored_uid = meta::uid(object);
    if !uid.is_empty() && uid != stored_uid {
        return Err(ApiError::conflict_with(
            Subject {
                group: "",
                resource: singular,
                name,
            },
            &format!(
                "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
            ),
        ));
    }
    let claim = ObjectClaim {
        name: name.into(),
        uid: stored_uid.into(),
    };
    if kind == "Secret" {
        return Ok(BoundClaims {
            secret: Some(claim),
            ..BoundClaims::default()
        });
    }
    let runs_as = object
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or("default");
    if runs_as != account {
        return Err(ApiError::bad_request(format!(
            "cannot bind token for serviceaccount \"{account}\" to pod running with different serviceaccount name."
        )));
    }
    let node = object
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .and_then(|node| inner.store.get(&core("nodes"), "", node))
        .map(|node| ObjectClaim {
            name: meta::name(node).into(),
            uid: meta::uid(node).into(),
        });
    Ok(BoundClaims {
        pod: Some(claim),
        node,
        secret: None,
    })
}

/// POST serviceaccounts/NAME/token.
pub fn issue(inner: &Inner, issuer: &TokenIssuer, req: &Request<'_>) -> Result<Reply, ApiError> {
    let body = if req.body.is_empty() {
        json!({})
    } else {
        decode_body(req.content_type, req.body)?
    };
    let namespace = req.path.namespace.as_deref().unwrap_or("");
    let name = req.path.name.as_deref().unwrap_or("");
    let account = inner
        .store
        .get(&req.def.storage, namespace, name)
        .ok_or_else(|| {
            ApiError::not_found(Subject {
                group: "",
                resource: "serviceaccounts",
                name,
            })
        })?;
    let expiration = body
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
    if expiration < 600 {
        return Err(ApiError::invalid(
            "TokenRequest",
            "authentication.k8s.io",
            name,
            vec![Cause::new(
                "FieldValueInvalid",
                "spec.expirationSeconds",
                format!(
                    "Invalid value: {expiration}: may not specify a duration less than 10 minutes"
                ),
            )],
        ));
    }
    let mut audiences = super::string_list(body.pointer("/spec/audiences"));
    if audiences.is_empty() {
        audiences = vec![ISSUER.to_string()];
    }
    let mut spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
    let bound = match body.pointer("/spec/boundObjectRef") {
        Some(reference) if !reference.is_null() => {
            let bound = bound_object(inner, namespace, name, reference)?;
            let uid = bound
                .pod
                .as_ref()
                .or(bound.secret.as_ref())
                .map(|c| c.uid.clone())
                .unwrap_or_default();
            spec["boundObjectRef"]["uid"] = json!(uid);
            bound
        }
        _ => BoundClaims::default(),
    };
    let now = jiff::Timestamp::now();
    let expires = now
        .checked_add(jiff::SignedDuration::from_secs(expiration))
        .unwrap_or(now);
    let claims = ServiceAccountClaims {
        aud: audiences.clone(),
        exp: expires.as_second(),
        iat: now.as_second(),
        nbf: now.as_second(),
        iss: ISSUER.into(),
        jti: uuid::Uuid::new_v4().to_string(),
        kubernetes: KubernetesClaim {
            namespace: namespace.into(),
            node: bound.node,
            pod: bound.pod,
            secret: bound.secret,
            serviceaccount: ObjectClaim {
                name: name.into(),
                uid: meta::uid(account).into(),
            },
        },
        sub: super::identity::service_account_username(namespace, name),
    };
    let token = issuer
        .sign(&claims)
        .map_err(|e| ApiError::internal(format!("failed to sign the token: {e}")))?;
    spec["audiences"] = json!(audiences);
    spec["expirationSeconds"] = json!(expiration);
    Ok(Reply::created(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": meta::now_rfc3339()},
        "spec": spec,
        "status": {"token": token, "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()},
    })))
}

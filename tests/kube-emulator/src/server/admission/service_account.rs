//! The ServiceAccount admission plugin's check: a pod may only run as a ServiceAccount that
//! exists. Refused as the real plugin refuses: 403 `pods "NAME" is forbidden: error looking up
//! service account NS/SA: serviceaccount "SA" not found`.

use serde_json::Value;

use super::{Attempt, Operation};
use crate::server::resource::StorageKey;
use crate::server::state::Inner;
use crate::server::status::{ApiError, Subject};

/// Refuses a pod create whose ServiceAccount is missing.
pub fn validate(inner: &Inner, attempt: &Attempt<'_>) -> Result<(), ApiError> {
    let is_pod = attempt.def.group.is_empty() && attempt.def.plural == "pods";
    if !is_pod || attempt.operation != Operation::Create || !attempt.subresource.is_empty() {
        return Ok(());
    }
    let Some(pod) = attempt.object else {
        return Ok(());
    };
    let account = pod
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
        .unwrap_or("default");
    let key = StorageKey {
        group: String::new(),
        resource: "serviceaccounts".into(),
    };
    if inner.store.get(&key, attempt.namespace, account).is_some() {
        return Ok(());
    }
    let why = format!(
        "error looking up service account {}/{account}: serviceaccount \"{account}\" not found",
        attempt.namespace
    );
    if attempt.name.is_empty() {
        // The real plugin runs before a generateName is resolved: no name in the message.
        let mut error = ApiError::forbidden(
            Subject {
                group: "",
                resource: "pods",
                name: "",
            },
            &why,
            Vec::new(),
        );
        error.message = format!("pods is forbidden: {why}");
        if let Some(details) = error.details.as_mut().and_then(Value::as_object_mut) {
            details.remove("name");
        }
        return Err(error);
    }
    Err(ApiError::forbidden(
        Subject {
            group: "",
            resource: "pods",
            name: attempt.name,
        },
        &why,
        Vec::new(),
    ))
}

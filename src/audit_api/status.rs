//! Failure answers as `metav1.Status` objects in the wording kube-apiserver uses, so kubectl
//! and client libraries print them as they print the API server's own errors.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{GROUP, RESOURCE};

/// A failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiStatus {
    /// HTTP status code.
    pub code: u16,
    /// `reason` (`Forbidden`, `NotFound`, …).
    pub reason: &'static str,
    /// `message`.
    pub message: String,
    /// `details.name`, when the failure is about one object.
    pub name: Option<String>,
}

impl ApiStatus {
    /// 401: the request is not authenticated.
    pub fn unauthorized() -> ApiStatus {
        ApiStatus {
            code: 401,
            reason: "Unauthorized",
            message: "Unauthorized".into(),
            name: None,
        }
    }

    /// 403 for `user` reading the audit of Incident `namespace/name`, worded like the RBAC
    /// authorizer's refusal, naming the permission that decides (get on the Incident).
    pub fn forbidden(user: &str, namespace: &str, name: &str, reason: &str) -> ApiStatus {
        let mut message = format!(
            "{RESOURCE}.{GROUP} \"{name}\" is forbidden: User \"{user}\" cannot get resource \"incidents\" in API group \"sre.agentlab.dev\" in the namespace \"{namespace}\""
        );
        if !reason.is_empty() {
            message.push_str(": ");
            message.push_str(reason);
        }
        ApiStatus {
            code: 403,
            reason: "Forbidden",
            message,
            name: Some(name.into()),
        }
    }

    /// 404 for the audit `name`; `why` says what is missing when it is not the Incident.
    pub fn not_found(name: &str, why: Option<&str>) -> ApiStatus {
        let mut message = format!("{RESOURCE}.{GROUP} \"{name}\" not found");
        if let Some(why) = why {
            message.push_str(": ");
            message.push_str(why);
        }
        ApiStatus {
            code: 404,
            reason: "NotFound",
            message,
            name: Some(name.into()),
        }
    }

    /// 404 for a path this server does not serve.
    pub fn path_not_found() -> ApiStatus {
        ApiStatus {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".into(),
            name: None,
        }
    }

    /// 405 for anything but GET on a read-only resource.
    pub fn method_not_allowed(method: &str) -> ApiStatus {
        ApiStatus {
            code: 405,
            reason: "MethodNotAllowed",
            message: format!("{method} is not supported: {RESOURCE} are read-only"),
            name: None,
        }
    }

    /// 429 when every follow slot is taken.
    pub fn too_many_requests(message: String) -> ApiStatus {
        ApiStatus {
            code: 429,
            reason: "TooManyRequests",
            message,
            name: None,
        }
    }

    /// 500 for a failure of ours (the API server or the disk); the cause is in the message.
    pub fn internal(message: String) -> ApiStatus {
        ApiStatus {
            code: 500,
            reason: "InternalError",
            message,
            name: None,
        }
    }

    /// The Status object.
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(name) = &self.name {
            body["details"] = json!({"name": name, "group": GROUP, "kind": RESOURCE});
        }
        body
    }
}

impl IntoResponse for ApiStatus {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            code,
            [(header::CONTENT_TYPE, "application/json")],
            self.to_json().to_string(),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_reads_like_the_rbac_refusal() {
        let status = ApiStatus::forbidden("bob", "shop", "checkout", "");
        assert_eq!(
            status.message,
            "incidentaudits.audit.sre.agentlab.dev \"checkout\" is forbidden: User \"bob\" cannot get resource \"incidents\" in API group \"sre.agentlab.dev\" in the namespace \"shop\""
        );
        assert_eq!(status.to_json()["details"]["kind"], "incidentaudits");
    }
}

//! API errors as the Kubernetes `Status` objects the real server answers with.
//!
//! Every failing request ends here: the reason, code and message wording follow
//! `k8s.io/apimachinery/pkg/api/errors`, so clients that branch on `reason` (kube's
//! `ErrorResponse`, kubectl's messages, helm's retry logic) behave as against a real cluster.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};

/// One cause of an `Invalid` (or other) error, as in `Status.details.causes[]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// Machine-readable reason such as `FieldValueRequired`.
    pub reason: String,
    /// Human-readable message without the field path.
    pub message: String,
    /// Field path such as `spec.severity`.
    pub field: String,
}

impl Cause {
    /// A cause with all three parts.
    pub fn new(reason: &str, field: &str, message: impl Into<String>) -> Cause {
        Cause {
            reason: reason.to_string(),
            message: message.into(),
            field: field.to_string(),
        }
    }

    /// `field: message`, the way the server joins causes into the Status message.
    pub fn describe(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }
}

/// A failed API request, rendered as a `Status` with the matching HTTP code.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code, also `Status.code`.
    pub code: u16,
    /// `Status.reason`, e.g. `NotFound`.
    pub reason: String,
    /// `Status.message`.
    pub message: String,
    /// `Status.details`, when the error names an object.
    pub details: Option<Value>,
    /// `Retry-After` seconds for 429/504-style answers.
    pub retry_after: Option<u64>,
}

/// The name and group/resource of the object an error is about.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// API group, empty for core.
    pub group: &'a str,
    /// Resource (plural) name, e.g. `pods`.
    pub resource: &'a str,
    /// Object name.
    pub name: &'a str,
}

impl Subject<'_> {
    /// `pods` or `incidents.sre.agentlab.dev`, the "qualified resource" of messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    fn details(&self) -> Value {
        let mut details = json!({ "name": self.name, "kind": self.resource });
        if !self.group.is_empty() {
            details["group"] = json!(self.group);
        }
        details
    }
}

impl ApiError {
    fn plain(code: u16, reason: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// 404 for an object: `pods "x" not found`.
    pub fn not_found(subject: Subject<'_>) -> ApiError {
        ApiError {
            details: Some(subject.details()),
            ..ApiError::plain(
                404,
                "NotFound",
                format!("{} \"{}\" not found", subject.qualified(), subject.name),
            )
        }
    }

    /// 404 for a path the server does not serve.
    pub fn path_not_found() -> ApiError {
        ApiError {
            details: Some(
                json!({ "causes": [{ "reason": "UnexpectedServerResponse", "message": "404 page not found" }] }),
            ),
            ..ApiError::plain(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        }
    }

    /// 409 AlreadyExists: `pods "x" already exists`.
    pub fn already_exists(subject: Subject<'_>) -> ApiError {
        ApiError {
            details: Some(subject.details()),
            ..ApiError::plain(
                409,
                "AlreadyExists",
                format!(
                    "{} \"{}\" already exists",
                    subject.qualified(),
                    subject.name
                ),
            )
        }
    }

    /// 409 Conflict on a stale resourceVersion.
    pub fn conflict(subject: Subject<'_>) -> ApiError {
        ApiError::conflict_with(
            subject,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 Conflict with a custom explanation: `Operation cannot be fulfilled on pods "x": why`.
    pub fn conflict_with(subject: Subject<'_>, why: &str) -> ApiError {
        ApiError {
            details: Some(subject.details()),
            ..ApiError::plain(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{}\": {}",
                    subject.qualified(),
                    subject.name,
                    why
                ),
            )
        }
    }

    /// 422 Invalid: `Kind.group "name" is invalid: cause[, cause…]`.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> ApiError {
        let qualified_kind = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let described: Vec<String> = causes.iter().map(Cause::describe).collect();
        let joined = if described.len() == 1 {
            described[0].clone()
        } else {
            format!("[{}]", described.join(", "))
        };
        let mut details = json!({ "name": name, "kind": kind, "causes": causes_json(&causes) });
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        ApiError {
            details: Some(details),
            ..ApiError::plain(
                422,
                "Invalid",
                format!("{qualified_kind} \"{name}\" is invalid: {joined}"),
            )
        }
    }

    /// 400 BadRequest with a message.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::plain(400, "BadRequest", message)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed() -> ApiError {
        ApiError::plain(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    /// 406 NotAcceptable for an Accept header the server cannot satisfy.
    pub fn not_acceptable(accepted: &str) -> ApiError {
        ApiError::plain(
            406,
            "NotAcceptable",
            format!("only the following media types are accepted: {accepted}"),
        )
    }

    /// 415 UnsupportedMediaType, listing what the endpoint accepts.
    pub fn unsupported_media_type(content_type: &str, accepted: &[&str]) -> ApiError {
        ApiError::plain(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                if accepted.is_empty() {
                    content_type.to_string()
                } else {
                    accepted.join(", ")
                }
            ),
        )
    }

    /// 403 Forbidden, e.g. creating in a terminating namespace.
    pub fn forbidden(subject: Subject<'_>, why: &str, causes: Vec<Cause>) -> ApiError {
        let mut details = subject.details();
        if !causes.is_empty() {
            details["causes"] = causes_json(&causes);
        }
        ApiError {
            details: Some(details),
            ..ApiError::plain(
                403,
                "Forbidden",
                format!(
                    "{} \"{}\" is forbidden: {}",
                    subject.qualified(),
                    subject.name,
                    why
                ),
            )
        }
    }

    /// 410 Gone / Expired for a resourceVersion older than the kept history.
    pub fn expired(message: impl Into<String>) -> ApiError {
        ApiError::plain(410, "Expired", message)
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError {
            details: Some(json!({ "causes": [{ "message": message }] })),
            ..ApiError::plain(
                500,
                "InternalError",
                format!("Internal error occurred: {message}"),
            )
        }
    }

    /// The `Status` object this error renders as.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

fn causes_json(causes: &[Cause]) -> Value {
    Value::Array(
        causes
            .iter()
            .map(|cause| json!({ "reason": cause.reason, "message": cause.message, "field": cause.field }))
            .collect(),
    )
}

/// A `Status` of success, as returned by some deletes.
pub fn success_status(details: Value) -> Value {
    json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = self.to_status().to_string();
        let mut response = (code, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

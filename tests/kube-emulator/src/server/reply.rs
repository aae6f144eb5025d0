//! Successful answers: a JSON body, its status code and any `Warning` headers.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::Value;

/// A JSON answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub code: u16,
    /// Body.
    pub body: Value,
    /// Warnings, sent as `Warning: 299 - "…"` headers like the real server.
    pub warnings: Vec<String>,
    /// Content type; `application/json` unless set.
    pub content_type: Option<String>,
}

impl Reply {
    /// 200 with a body.
    pub fn ok(body: Value) -> Reply {
        Reply {
            code: 200,
            body,
            warnings: Vec::new(),
            content_type: None,
        }
    }

    /// 201 with a body.
    pub fn created(body: Value) -> Reply {
        Reply {
            code: 201,
            ..Reply::ok(body)
        }
    }

    /// Adds warnings.
    pub fn with_warnings(mut self, warnings: Vec<String>) -> Reply {
        self.warnings.extend(warnings);
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::OK);
        let mut response = (code, self.body.to_string()).into_response();
        let content_type = self.content_type.as_deref().unwrap_or("application/json");
        if let Ok(value) = HeaderValue::from_str(content_type) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        for warning in &self.warnings {
            let escaped = warning.replace('\\', "\\\\").replace('"', "\\\"");
            if let Ok(value) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
                response.headers_mut().append(header::WARNING, value);
            }
        }
        response
    }
}

/// The plain-text 404 of Go's `http.NotFound`, which the real server's not-found handler sends
/// for paths no API group serves (unknown groups, versions and non-API paths). Only unknown
/// resources inside a served built-in group/version get a `Status` object (go-restful's).
pub fn page_not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        "404 page not found\n",
    )
        .into_response()
}

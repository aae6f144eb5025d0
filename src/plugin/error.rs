//! What can go wrong for a plugin user, each as one line that says what to do next. API errors are
//! classified from the `kube::Error` once, here, so every subcommand words them the same.

use std::path::PathBuf;

/// One failed plugin command. The `Display` of each variant is the whole line the user sees.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("cannot load the kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("incident {name:?} not found in namespace {namespace:?}")]
    NotFound { namespace: String, name: String },
    #[error("the Incident CRD (incidents.sre.agentlab.dev) is not installed on {server}")]
    CrdMissing { server: String },
    #[error("forbidden: {message}")]
    Forbidden { message: String },
    #[error("unauthorized: the API server at {server} rejected the credentials of the kubeconfig")]
    Unauthorized { server: String },
    #[error("cannot reach the Kubernetes API server at {server}: {cause}")]
    Unreachable { server: String, cause: String },
    #[error("the API server answered {code}: {message}")]
    Api { code: u16, message: String },
    #[error("unexpected answer from the API server at {server}: {cause}")]
    Protocol { server: String, cause: String },
    #[error("cannot read {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
    #[error("cannot encode the output: {0}")]
    Encode(String),
    /// The approval module refused to record a decision (no plan, expired, already decided).
    #[error("{0}")]
    Decision(String),
    #[error("{0}")]
    Verify(#[from] crate::audit::verify::VerifyError),
    /// The audit API answered with a failure, or its stream broke off (already one line).
    #[error("{0}")]
    AuditApi(#[from] crate::audit_api::fetch::FetchError),
}

impl From<std::io::Error> for PluginError {
    fn from(error: std::io::Error) -> Self {
        PluginError::Output(error)
    }
}

/// What a request was about, so a 404 can name the Incident.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// One Incident: a 404 means it does not exist.
    Incident { namespace: &'a str, name: &'a str },
    /// A list: a 404 means the resource itself (the CRD) is not served.
    IncidentList,
    /// Anything else (Events): a 404 is just an API error.
    Other,
}

/// Turns a `kube::Error` of a request to `server` into the line a user should see.
pub fn classify(error: kube::Error, server: &str, target: Target<'_>) -> PluginError {
    match error {
        kube::Error::Api(status) => {
            let message = status.message.clone();
            if status.code == 404 {
                return match target {
                    Target::Incident { namespace, name } => PluginError::NotFound {
                        namespace: namespace.to_string(),
                        name: name.to_string(),
                    },
                    Target::IncidentList => PluginError::CrdMissing {
                        server: server.to_string(),
                    },
                    Target::Other => PluginError::Api { code: 404, message },
                };
            }
            match status.code {
                403 => PluginError::Forbidden { message },
                401 => PluginError::Unauthorized {
                    server: server.to_string(),
                },
                code => PluginError::Api { code, message },
            }
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => PluginError::Unreachable {
            server: server.to_string(),
            cause: root_cause(&error),
        },
        other => PluginError::Protocol {
            server: server.to_string(),
            cause: root_cause(&other),
        },
    }
}

/// The innermost cause's text: "Connection refused (os error 111)" rather than five wrappers.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

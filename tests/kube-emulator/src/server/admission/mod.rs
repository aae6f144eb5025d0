//! Admission: the stage between a request's object being built (defaulted, validated) and
//! stored, as kube-apiserver's admission chain. Runs only for requests made by a client
//! (built-in controllers write without it).
//!
//! - [`service_account`]: the ServiceAccount plugin — a pod naming a ServiceAccount that does
//!   not exist is refused.
//! - [`token_volume`]: the same plugin's mutation — the projected `kube-api-access-*` volume
//!   and its mounts (runs earlier, between defaulting and validation, from `objects`).
//! - [`policy`] and [`expression`]: ValidatingAdmissionPolicy + Binding
//!   (`admissionregistration.k8s.io/v1`), with CEL from the `cel` crate.

pub mod expression;
pub mod matching;
pub mod policy;
pub mod service_account;
pub mod token_volume;

use serde_json::Value;

use super::auth::identity::UserInfo;
use super::resource::ResourceDef;
use super::state::Inner;
use super::status::ApiError;

/// The admission operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    /// `CREATE`, `UPDATE`, `DELETE`, as rules and `request.operation` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
    }
}

/// One write, as admission sees it.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub def: &'a ResourceDef,
    pub operation: Operation,
    pub namespace: &'a str,
    /// The object's name; empty for a create with `generateName` before a name was chosen.
    pub name: &'a str,
    /// `status`, `scale`, … or empty.
    pub subresource: &'a str,
    /// The new object in the served version (absent for DELETE).
    pub object: Option<&'a Value>,
    /// The stored object (absent for CREATE).
    pub old_object: Option<&'a Value>,
    pub user: &'a UserInfo,
    pub dry_run: bool,
}

/// Runs the validating admission stage; returns the warnings for the client.
pub fn validate(inner: &Inner, attempt: &Attempt<'_>) -> Result<Vec<String>, ApiError> {
    // RBAC's escalation check belongs to the RBAC storage in kube-apiserver; it runs at the
    // same point, before the object is stored.
    if attempt.def.group == "rbac.authorization.k8s.io"
        && attempt.operation != Operation::Delete
        && let Some(object) = attempt.object
    {
        super::auth::escalation::check(
            &inner.store,
            attempt.user,
            &attempt.def.plural,
            attempt.namespace,
            object,
        )?;
    }
    service_account::validate(inner, attempt)?;
    policy::validate(inner, attempt)
}

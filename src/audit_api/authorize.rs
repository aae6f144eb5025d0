//! May this caller read this audit? Asked of the API server with a SubjectAccessReview, as an
//! aggregated server delegates authorization (the chart binds `system:auth-delegator`): the audit
//! of an Incident is readable by exactly those who may `get` that Incident.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Client;
use kube::api::{Api, PostParams};

use super::front_proxy::CallerIdentity;
use crate::incident::Incident;

/// What the review answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The caller may get the Incident.
    Allowed,
    /// The caller may not; the authorizer's reason, if it gave one.
    Denied {
        /// `status.reason` of the review.
        reason: String,
    },
}

/// The review could not be made.
#[derive(Debug, thiserror::Error)]
#[error("cannot create a SubjectAccessReview")]
pub struct ReviewError(#[source] pub kube::Error);

/// The review asked for `caller` getting Incident `namespace/name`.
pub fn review_for(caller: &CallerIdentity, namespace: &str, name: &str) -> SubjectAccessReview {
    use kube::Resource;
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(caller.user.clone()),
            uid: caller.uid.clone(),
            groups: Some(caller.groups.clone()),
            extra: (!caller.extra.is_empty()).then(|| caller.extra.clone()),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.to_string()),
                verb: Some("get".into()),
                group: Some(Incident::group(&()).into_owned()),
                version: Some(Incident::version(&()).into_owned()),
                resource: Some(Incident::plural(&()).into_owned()),
                name: Some(name.to_string()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    }
}

/// Asks the API server whether `caller` may get Incident `namespace/name`.
pub async fn may_read(
    client: &Client,
    caller: &CallerIdentity,
    namespace: &str,
    name: &str,
) -> Result<Verdict, ReviewError> {
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    let answer = reviews
        .create(&PostParams::default(), &review_for(caller, namespace, name))
        .await
        .map_err(ReviewError)?;
    let status = answer.status.unwrap_or_default();
    if status.allowed && !status.denied.unwrap_or(false) {
        Ok(Verdict::Allowed)
    } else {
        Ok(Verdict::Denied {
            reason: status.reason.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_review_asks_for_get_on_the_incident_itself() {
        let caller = CallerIdentity {
            user: "alice".into(),
            groups: vec!["sre".into()],
            ..CallerIdentity::default()
        };
        let review = review_for(&caller, "shop", "checkout-5xx");
        let attributes = review.spec.resource_attributes.unwrap();
        assert_eq!(attributes.verb.as_deref(), Some("get"));
        assert_eq!(attributes.group.as_deref(), Some("sre.agentlab.dev"));
        assert_eq!(attributes.resource.as_deref(), Some("incidents"));
        assert_eq!(attributes.name.as_deref(), Some("checkout-5xx"));
        assert_eq!(attributes.namespace.as_deref(), Some("shop"));
        assert_eq!(review.spec.user.as_deref(), Some("alice"));
        assert_eq!(review.spec.extra, None);
    }
}

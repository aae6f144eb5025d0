//! Observe step of the approval stage: the IncidentApproval caches (one reflector per watched
//! scope, objects stripped to what [`crate::approval::decide`] reads) and the mapping from an
//! approval to the Incident it names, which triggers that Incident's reconcile.
//!
//! Lookups walk the scope's approvals: there are a handful per remediate Incident and they are
//! read only while a plan waits for a decision, never on the hot path of investigations.

use kube::ResourceExt;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::approval::IncidentApproval;
use crate::approval::decide::ApprovalView;
use crate::incident::Incident;

/// The IncidentApproval caches of every watched scope.
#[derive(Clone, Default)]
pub struct ApprovalCache {
    stores: Vec<Store<DeserializeGuard<IncidentApproval>>>,
}

impl ApprovalCache {
    pub fn new(stores: Vec<Store<DeserializeGuard<IncidentApproval>>>) -> Self {
        Self { stores }
    }

    /// The readable approvals in `namespace` naming the Incident `incident`. One that does not
    /// match the schema is skipped (the API server validates on create, so that takes a CRD
    /// change under existing objects).
    pub fn for_incident(&self, namespace: &str, incident: &str) -> Vec<ApprovalView> {
        self.stores
            .iter()
            .flat_map(|store| store.state())
            .filter_map(|object| view(&object))
            .filter(|(ns, view)| ns == namespace && view.spec.incident == incident)
            .map(|(_, view)| view)
            .collect()
    }
}

/// `(namespace, view)` of a cached approval that deserialized and carries its server fields.
fn view(object: &DeserializeGuard<IncidentApproval>) -> Option<(String, ApprovalView)> {
    let approval = object.0.as_ref().ok()?;
    Some((
        approval.namespace()?,
        ApprovalView {
            name: approval.name_any(),
            uid: approval.uid()?,
            created: approval.metadata.creation_timestamp.as_ref()?.0,
            spec: approval.spec.clone(),
        },
    ))
}

/// Strips an approval to its name, namespace, uid, creation time and spec before the cache.
pub fn lean_approval(object: &mut DeserializeGuard<IncidentApproval>) {
    let metadata = match object.0.as_mut() {
        Ok(approval) => &mut approval.metadata,
        Err(_) => return,
    };
    metadata.managed_fields = None;
    metadata.annotations = None;
    metadata.labels = None;
}

/// The Incident an approval names: the reconcile to trigger when the approval appears.
pub fn incident_of(
    object: DeserializeGuard<IncidentApproval>,
) -> Option<ObjectRef<DeserializeGuard<Incident>>> {
    let approval = object.0.ok()?;
    let namespace = approval.namespace()?;
    Some(ObjectRef::new(&approval.spec.incident).within(&namespace))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::IncidentApprovalSpec;
    use crate::plan::Decision;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::runtime::watcher;

    fn approval(namespace: &str, name: &str, incident: &str) -> IncidentApproval {
        let mut object = IncidentApproval::new(
            name,
            IncidentApprovalSpec {
                incident: incident.into(),
                plan_hash: format!("sha256:{}", "a".repeat(64)),
                decision: Decision::Approve,
                approver: "alice".into(),
                comment: None,
            },
        );
        object.metadata.namespace = Some(namespace.into());
        object.metadata.uid = Some(format!("uid-{name}"));
        object.metadata.creation_timestamp = Some(Time("2026-01-01T10:00:00Z".parse().unwrap()));
        object.metadata.annotations = Some([("a".to_string(), "b".repeat(100))].into());
        object
    }

    #[test]
    fn lookups_see_only_approvals_of_that_incident_in_that_namespace() {
        let (reader, mut writer) =
            kube::runtime::reflector::store::<DeserializeGuard<IncidentApproval>>();
        for (ns, name, incident) in [
            ("shop", "a1", "web"),
            ("shop", "a2", "db"),
            ("bank", "a3", "web"),
        ] {
            let mut object = DeserializeGuard(Ok(approval(ns, name, incident)));
            lean_approval(&mut object);
            assert!(object.0.as_ref().unwrap().metadata.annotations.is_none());
            writer.apply_watcher_event(&watcher::Event::Apply(object));
        }
        let cache = ApprovalCache::new(vec![reader]);
        let found = cache.for_incident("shop", "web");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "a1");
        assert_eq!(found[0].uid, "uid-a1");
        assert!(
            ApprovalCache::default()
                .for_incident("shop", "web")
                .is_empty()
        );
    }

    #[test]
    fn an_approval_triggers_the_incident_it_names() {
        let target = incident_of(DeserializeGuard(Ok(approval("shop", "a1", "web")))).unwrap();
        assert_eq!(target.name, "web");
        assert_eq!(target.namespace.as_deref(), Some("shop"));
    }
}

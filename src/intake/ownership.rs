//! Which Incidents the intake made (issue 9 §8). Anyone who can create Incidents in the intake's
//! namespace can label one with a fingerprint or take the name the intake would use, so neither
//! proves anything. Every Incident the intake creates carries [`ANNOTATION_SEAL`]: an HMAC-SHA256
//! of its namespace, name and fingerprint under a key derived from the intake's bearer token,
//! which a tenant does not have. Deduplication counts only on sealed Incidents; a name held by an
//! unsealed object makes the intake pick a fresh name instead of failing.
//!
//! Limits: without a bearer token the key is a fixed constant (anyone can post to the intake then
//! anyway, and the log says so); a seal copied from a deleted Incident onto a re-created one of
//! the same name and fingerprint verifies (the seal does not bind the object's uid, which the API
//! server assigns only at creation).

use ring::hmac;

use super::LABEL_FINGERPRINT;
use crate::incident::Incident;

/// Annotation holding the intake's seal.
pub const ANNOTATION_SEAL: &str = "sre.agentlab.dev/intake-seal";

/// Makes and checks seals; cheap to clone.
#[derive(Clone)]
pub struct OwnershipKey {
    key: hmac::Key,
}

impl std::fmt::Debug for OwnershipKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OwnershipKey(<hidden>)")
    }
}

impl OwnershipKey {
    /// The key for an intake authenticated with `token` (every replica derives the same one).
    pub fn from_token(token: Option<&str>) -> Self {
        let secret = format!(
            "incident-operator intake seal v1\n{}",
            token.map(str::trim).unwrap_or("")
        );
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
        }
    }

    fn message(namespace: &str, name: &str, fingerprint: &str) -> String {
        format!("{namespace}\n{name}\n{fingerprint}")
    }

    /// The seal of an Incident with this identity.
    pub fn seal(&self, namespace: &str, name: &str, fingerprint: &str) -> String {
        let tag = hmac::sign(
            &self.key,
            Self::message(namespace, name, fingerprint).as_bytes(),
        );
        hex::encode(tag.as_ref())
    }

    /// Whether `incident` carries a valid seal for its namespace, name and fingerprint label.
    pub fn verifies(&self, incident: &Incident) -> bool {
        let meta = &incident.metadata;
        let (Some(namespace), Some(name)) = (meta.namespace.as_deref(), meta.name.as_deref())
        else {
            return false;
        };
        let Some(fingerprint) = meta.labels.as_ref().and_then(|l| l.get(LABEL_FINGERPRINT)) else {
            return false;
        };
        let Some(tag) = meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_SEAL))
            .and_then(|text| hex::decode(text).ok())
        else {
            return false;
        };
        hmac::verify(
            &self.key,
            Self::message(namespace, name, fingerprint).as_bytes(),
            &tag,
        )
        .is_ok()
    }

    /// Puts the seal on `incident` (namespace, name and fingerprint label already set).
    pub fn seal_incident(&self, incident: &mut Incident) {
        let meta = &incident.metadata;
        let seal = self.seal(
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
            meta.labels
                .as_ref()
                .and_then(|l| l.get(LABEL_FINGERPRINT))
                .map_or("", String::as_str),
        );
        incident
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(ANNOTATION_SEAL.to_string(), seal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;
    use std::collections::BTreeMap;

    fn incident(name: &str, fingerprint: &str) -> Incident {
        Incident {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("sre".into()),
                labels: Some(BTreeMap::from([(
                    LABEL_FINGERPRINT.to_string(),
                    fingerprint.into(),
                )])),
                ..ObjectMeta::default()
            },
            spec: serde_json::from_value(serde_json::json!({"title": "t"})).unwrap(),
            status: None,
        }
    }

    #[test]
    fn only_the_key_holder_can_seal() {
        let key = OwnershipKey::from_token(Some("intake-token"));
        let mut ours = incident("a-0123", "0123");
        key.seal_incident(&mut ours);
        assert!(key.verifies(&ours));
        // A tenant's own seal, a forged one, or ours copied to another name or fingerprint fail.
        assert!(!OwnershipKey::from_token(Some("guess")).verifies(&ours));
        let mut copied = incident("a-0123-x", "0123");
        copied.metadata.annotations = ours.metadata.annotations.clone();
        assert!(!key.verifies(&copied));
        let mut refingerprinted = ours.clone();
        refingerprinted.metadata.labels = Some(BTreeMap::from([(
            LABEL_FINGERPRINT.to_string(),
            "9999".into(),
        )]));
        assert!(!key.verifies(&refingerprinted));
        assert!(!key.verifies(&incident("a-0123", "0123")), "unsealed");
    }
}

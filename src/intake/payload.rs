//! Alertmanager's webhook payload, version "4", and its parsing.
//!
//! Parsing is two steps so each failure gets its own answer: the document is first read only for
//! its `version` (a syntax error is reported here, with serde's line and column), then, once the
//! version is known to be "4", read in full against the types below.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The only payload version this intake understands (Alertmanager has sent "4" since 0.7).
pub const SUPPORTED_VERSION: &str = "4";

/// One webhook notification: a group of alerts that Alertmanager routed to this receiver.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    pub version: String,
    /// Identifies the alert group (used by Alertmanager to deduplicate notifications).
    #[serde(default)]
    pub group_key: String,
    /// How many alerts Alertmanager left out because of the receiver's `max_alerts`.
    #[serde(default)]
    pub truncated_alerts: u64,
    /// `firing` if at least one alert in the group fires, else `resolved`.
    pub status: AlertStatus,
    #[serde(default)]
    pub receiver: String,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    /// Link back to the Alertmanager that sent the notification.
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    pub alerts: Vec<Alert>,
}

/// Whether an alert (or a group) is firing or has resolved.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    /// The lowercase wire name, also used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// One alert of the group.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub status: AlertStatus,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339; kept as text so one odd timestamp cannot reject the whole notification.
    #[serde(default)]
    pub starts_at: Option<String>,
    /// RFC 3339; Alertmanager sends `0001-01-01T00:00:00Z` while the alert still fires.
    #[serde(default)]
    pub ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: Option<String>,
    /// Alertmanager's fingerprint of the label set (16 hex digits).
    #[serde(default)]
    pub fingerprint: Option<String>,
}

/// Why a request body is not a usable webhook payload.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("malformed JSON: {0}")]
    Syntax(#[source] serde_json::Error),
    #[error("missing field `version`: expected Alertmanager webhook payload version \"4\"")]
    MissingVersion,
    #[error("unsupported webhook payload version {found}: this intake understands version \"4\"")]
    UnsupportedVersion {
        /// The version as the sender wrote it (JSON), e.g. `"3"` or `4`.
        found: String,
    },
    #[error("invalid Alertmanager webhook payload: {0}")]
    Schema(#[source] serde_json::Error),
}

impl PayloadError {
    /// A short stable code for the JSON error body and the rejection metric.
    pub fn code(&self) -> &'static str {
        match self {
            PayloadError::Syntax(_) => "malformed_json",
            PayloadError::MissingVersion | PayloadError::UnsupportedVersion { .. } => {
                "unsupported_version"
            }
            PayloadError::Schema(_) => "invalid_payload",
        }
    }
}

/// Only the `version` field of a JSON object; everything else is skipped without being stored.
/// Written by hand because a derived struct would also accept a JSON array.
struct VersionProbe {
    version: Option<serde_json::Value>,
}

impl<'de> Deserialize<'de> for VersionProbe {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ProbeVisitor;
        impl<'de> serde::de::Visitor<'de> for ProbeVisitor {
            type Value = VersionProbe;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an Alertmanager webhook payload (a JSON object)")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<VersionProbe, A::Error> {
                let mut version = None;
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "version" {
                        version = Some(map.next_value::<serde_json::Value>()?);
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(VersionProbe { version })
            }
        }
        deserializer.deserialize_map(ProbeVisitor)
    }
}

/// Parses a request body as an Alertmanager webhook payload, version "4".
pub fn parse_payload(body: &[u8]) -> Result<WebhookPayload, PayloadError> {
    let probe: VersionProbe = serde_json::from_slice(body).map_err(|err| {
        if err.is_data() {
            // Valid JSON that is not an object (e.g. `[]`): the shape is wrong, not the syntax.
            PayloadError::Schema(err)
        } else {
            PayloadError::Syntax(err)
        }
    })?;
    match probe.version {
        None | Some(serde_json::Value::Null) => return Err(PayloadError::MissingVersion),
        Some(serde_json::Value::String(version)) if version == SUPPORTED_VERSION => {}
        Some(other) => {
            return Err(PayloadError::UnsupportedVersion {
                found: other.to_string(),
            });
        }
    }
    serde_json::from_slice(body).map_err(PayloadError::Schema)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A payload as Alertmanager 0.28 sends it, one firing alert.
    pub(crate) const FIRING: &str = r#"{
      "receiver": "incident-operator",
      "status": "firing",
      "alerts": [{
        "status": "firing",
        "labels": {"alertname": "KubePodCrashLooping", "namespace": "shop", "pod": "checkout-7f9c", "severity": "critical"},
        "annotations": {"summary": "Pod shop/checkout-7f9c is crash looping", "description": "Restarted 5 times in 10 minutes.", "runbook_url": "https://runbooks.example/KubePodCrashLooping"},
        "startsAt": "2025-06-01T10:00:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=...",
        "fingerprint": "c90415da8d03bebd"
      }],
      "groupLabels": {"alertname": "KubePodCrashLooping"},
      "commonLabels": {"alertname": "KubePodCrashLooping", "severity": "critical"},
      "commonAnnotations": {},
      "externalURL": "http://alertmanager:9093",
      "version": "4",
      "groupKey": "{}:{alertname=\"KubePodCrashLooping\"}",
      "truncatedAlerts": 0
    }"#;

    #[test]
    fn parses_alertmanager_payload() {
        let payload = parse_payload(FIRING.as_bytes()).unwrap();
        assert_eq!(payload.status, AlertStatus::Firing);
        assert_eq!(payload.receiver, "incident-operator");
        assert_eq!(payload.external_url, "http://alertmanager:9093");
        let alert = &payload.alerts[0];
        assert_eq!(alert.fingerprint.as_deref(), Some("c90415da8d03bebd"));
        assert_eq!(alert.labels["pod"], "checkout-7f9c");
        assert_eq!(
            alert.generator_url.as_deref(),
            Some("http://prometheus:9090/graph?g0.expr=...")
        );
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let err = parse_payload(b"{\n  \"version\": \"4\",\n  oops\n}").unwrap_err();
        assert!(matches!(err, PayloadError::Syntax(_)), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("line 3 column 3"), "{message}");
        assert_eq!(err.code(), "malformed_json");
    }

    #[test]
    fn truncated_body_is_a_syntax_error() {
        let err = parse_payload(&FIRING.as_bytes()[..100]).unwrap_err();
        assert!(matches!(err, PayloadError::Syntax(_)), "{err:?}");
    }

    #[test]
    fn other_versions_are_named_in_the_error() {
        let err = parse_payload(br#"{"version":"3","status":"firing","alerts":[]}"#).unwrap_err();
        assert_eq!(err.code(), "unsupported_version");
        assert!(err.to_string().contains(r#""3""#), "{err}");
        let err = parse_payload(br#"{"version":4,"status":"firing","alerts":[]}"#).unwrap_err();
        assert!(err.to_string().contains("version 4"), "{err}");
        let err = parse_payload(br#"{"status":"firing","alerts":[]}"#).unwrap_err();
        assert!(matches!(err, PayloadError::MissingVersion), "{err:?}");
    }

    #[test]
    fn wrong_shapes_are_schema_errors() {
        for body in [
            &b"[]"[..],
            b"\"4\"",
            br#"{"version":"4","status":"firing"}"#,
            br#"{"version":"4","status":"burning","alerts":[]}"#,
            br#"{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"a":1}}]}"#,
        ] {
            let err = parse_payload(body).unwrap_err();
            assert!(
                matches!(err, PayloadError::Schema(_)),
                "{}: {err:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn optional_fields_may_be_missing() {
        let payload = parse_payload(
            br#"{"version":"4","status":"resolved","alerts":[{"status":"resolved"}]}"#,
        )
        .unwrap();
        assert_eq!(payload.alerts[0].status, AlertStatus::Resolved);
        assert!(payload.alerts[0].labels.is_empty());
        assert_eq!(payload.alerts[0].fingerprint, None);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // Every prefix of a real payload, plus some binary noise: each must return, not panic.
        for end in 0..FIRING.len() {
            let _ = parse_payload(&FIRING.as_bytes()[..end]);
        }
        let _ = parse_payload(&[0xff, 0xfe, 0x00, b'{']);
    }
}

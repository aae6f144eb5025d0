//! Pure mapping from one Alertmanager alert to the Incident it raises: its fingerprint, its
//! deterministic name, its severity and its spec. No API calls here.
//!
//! Naming rule: `<alertname>-<fingerprint>` for the first Incident of a fingerprint, and
//! `<alertname>-<fingerprint>-<n>` for the n-th (n ≥ 2), created only when every earlier one has
//! finished. The alertname part is the alert name in DNS-1123 form (`KubePodCrashLooping` →
//! `kube-pod-crash-looping`), shortened so the whole name fits 63 characters; the fingerprint is
//! always kept whole. Because the same fingerprint always yields the same name, two concurrent
//! creates of one alert collide with `409 AlreadyExists` instead of producing two Incidents.

use std::collections::BTreeMap;

use kube::api::ObjectMeta;

use super::payload::Alert;
use super::sanitize;
use super::{LABEL_ALERTNAME, LABEL_FINGERPRINT, LABEL_GENERATION};
use crate::incident::{AlertRef, Incident, IncidentSource, IncidentSpec, Severity};

/// Longest name Kubernetes accepts for a label value, and the longest Incident name we create.
pub const MAX_NAME_LEN: usize = 63;
/// Alert name used when an alert has no (or an empty) `alertname` label.
pub const UNNAMED_ALERT: &str = "unnamed";

// Bounds of the Incident spec fields, as the CRD schema declares them (src/incident.rs).
const MAX_TITLE_CHARS: usize = 256;
const MAX_DESCRIPTION_CHARS: usize = 16384;
const MAX_RUNBOOK_CHARS: usize = 32768;
const MAX_ALERT_NAME_CHARS: usize = 253;

/// The `alertname` label, or [`UNNAMED_ALERT`].
pub fn alert_name(alert: &Alert) -> &str {
    match alert.labels.get("alertname") {
        Some(name) if !name.trim().is_empty() => name,
        _ => UNNAMED_ALERT,
    }
}

/// The alert's deduplication key: the fingerprint Alertmanager computes from the labels. The
/// sender's `fingerprint` field is never trusted for it (issue 9 §9): whoever can post to the
/// intake could otherwise fold a critical alert into an info Incident by copying its fingerprint.
pub fn alert_fingerprint(alert: &Alert) -> String {
    labels_fingerprint(&alert.labels)
}

/// The sender's fingerprint when it is not `computed` (compared case-insensitively, surrounding
/// whitespace ignored): something to log and count, never to use.
pub fn mismatched_sender_fingerprint<'a>(alert: &'a Alert, computed: &str) -> Option<&'a str> {
    let given = alert.fingerprint.as_deref()?;
    (!given.trim().eq_ignore_ascii_case(computed)).then_some(given)
}

/// Alertmanager's (Prometheus') fingerprint of a label set: FNV-1a 64 over the labels sorted by
/// name, each name and value followed by the byte 0xff, printed as 16 hex digits.
pub fn labels_fingerprint(labels: &BTreeMap<String, String>) -> String {
    const OFFSET: u64 = 14_695_981_039_346_656_037;
    const PRIME: u64 = 1_099_511_628_211;
    const SEPARATOR: u8 = 0xff;
    let mut hash = OFFSET;
    let mut add = |bytes: &[u8]| {
        for &byte in bytes {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    // BTreeMap iterates in byte order of the names, as Go's sort.Strings does.
    for (name, value) in labels {
        add(name.as_bytes());
        add(&[SEPARATOR]);
        add(value.as_bytes());
        add(&[SEPARATOR]);
    }
    format!("{hash:016x}")
}

/// An alert name in DNS-1123 label form: lowercase ASCII letters, digits and single hyphens, with
/// CamelCase split into words; never empty (falls back to `alert`), not length-limited.
pub fn sanitize_alertname(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && i > 0 {
                let prev = chars[i - 1];
                let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
                // "PodCrash" → "pod-crash"; "HTTPErrors" → "http-errors"; "K8S" stays "k8s".
                let word_starts =
                    prev.is_ascii_lowercase() || (prev.is_ascii_uppercase() && next_is_lower);
                if word_starts {
                    push_hyphen(&mut out);
                }
            }
            out.push(c.to_ascii_lowercase());
        } else {
            push_hyphen(&mut out);
        }
    }
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() {
        "alert".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Appends a hyphen unless the output is empty or already ends with one (no doubled hyphens).
fn push_hyphen(out: &mut String) {
    if !out.is_empty() && !out.ends_with('-') {
        out.push('-');
    }
}

/// The deterministic Incident name for the `generation`-th Incident of a fingerprint (see the
/// module docs). `sanitized_alertname` comes from [`sanitize_alertname`], `fingerprint` from
/// [`alert_fingerprint`]; the result is a DNS-1123 label of at most 63 characters.
pub fn incident_name(sanitized_alertname: &str, fingerprint: &str, generation: u32) -> String {
    let suffix = if generation <= 1 {
        format!("-{fingerprint}")
    } else {
        format!("-{fingerprint}-{generation}")
    };
    let room = MAX_NAME_LEN.saturating_sub(suffix.len());
    // The sanitized name is ASCII, so byte slicing is char slicing.
    let prefix = sanitized_alertname
        .get(..room.min(sanitized_alertname.len()))
        .unwrap_or("")
        .trim_end_matches('-');
    let prefix = if prefix.is_empty() { "alert" } else { prefix };
    format!("{prefix}{suffix}")
}

/// The alertname as a label value: [`sanitize_alertname`] shortened to 63 characters.
pub fn alertname_label_value(sanitized_alertname: &str) -> String {
    let end = sanitized_alertname.len().min(MAX_NAME_LEN);
    sanitized_alertname
        .get(..end)
        .unwrap_or("alert")
        .trim_end_matches('-')
        .to_string()
}

/// Incident severity from the alert's `severity` label. Understands the usual synonyms
/// (`page`, `error`, `high`, `P1` → critical; `low`, `none`, `debug` → info); anything else,
/// including a missing label, is a warning.
pub fn severity_from_label(value: Option<&str>) -> Severity {
    let Some(value) = value else {
        return Severity::Warning;
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "critical" | "crit" | "page" | "pager" | "error" | "err" | "fatal" | "emergency"
        | "emerg" | "alert" | "high" | "disaster" | "p0" | "p1" | "sev0" | "sev1" | "sev-0"
        | "sev-1" => Severity::Critical,
        "info" | "informational" | "information" | "none" | "low" | "notice" | "debug" | "ok"
        | "p4" | "p5" | "sev4" | "sev5" | "sev-4" | "sev-5" => Severity::Info,
        _ => Severity::Warning,
    }
}

/// The first annotation present (and not blank) among `keys`.
fn first_annotation<'a>(alert: &'a Alert, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .filter_map(|key| alert.annotations.get(*key))
        .map(|value| value.trim())
        .find(|value| !value.is_empty())
}

/// `text` cut to at most `max_chars` characters (the CRD schema counts characters, not bytes).
fn truncate_chars(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => text[..end].to_string(),
        None => text.to_string(),
    }
}

/// The Incident spec an alert raises: title, description and runbook from the annotations,
/// severity from the labels, and the alert itself as `spec.alert`. Text is cut to the CRD bounds.
///
/// Control characters are escaped and labels and annotations bounded ([`super::sanitize`]), so
/// the Incident passes the CRD's rules and prints safely; a blank title falls back to the alert
/// name.
pub fn incident_spec(alert: &Alert, fingerprint: &str) -> IncidentSpec {
    let name = alert_name(alert);
    let title = first_annotation(alert, &["summary", "title"]).unwrap_or(name);
    let title = sanitize::escape_controls(title, false);
    let title = if title.trim().is_empty() {
        sanitize::escape_controls(name, false)
    } else {
        title
    };
    let description = first_annotation(alert, &["description", "message"]).map(|text| {
        truncate_chars(
            &sanitize::escape_controls(text, true),
            MAX_DESCRIPTION_CHARS,
        )
    });
    let runbook = first_annotation(alert, &["runbook_url", "runbook"])
        .map(|text| truncate_chars(&sanitize::escape_controls(text, true), MAX_RUNBOOK_CHARS));
    IncidentSpec {
        title: truncate_chars(&title, MAX_TITLE_CHARS),
        description,
        severity: severity_from_label(alert.labels.get("severity").map(String::as_str)),
        source: IncidentSource::Alertmanager,
        alert: Some(Box::new(AlertRef {
            name: truncate_chars(name, MAX_ALERT_NAME_CHARS),
            fingerprint: Some(fingerprint.to_string()),
            labels: sanitize::bounded_labels(&alert.labels),
            annotations: sanitize::bounded_annotations(&alert.annotations),
            starts_at: alert.starts_at.clone().filter(|s| !s.is_empty()),
            generator_url: alert.generator_url.clone().filter(|s| !s.is_empty()),
        })),
        runbook,
        mode: Default::default(),
        agent: None,
        predecessors: Vec::new(),
        notifications: None,
    }
}

/// The whole Incident for the `generation`-th occurrence of an alert: deterministic name, the
/// lookup labels (fingerprint, alertname, generation) and [`incident_spec`].
pub fn incident_for_alert(
    alert: &Alert,
    fingerprint: &str,
    generation: u32,
    namespace: &str,
) -> Incident {
    let sanitized = sanitize_alertname(alert_name(alert));
    let labels = BTreeMap::from([
        (LABEL_FINGERPRINT.to_string(), fingerprint.to_string()),
        (
            LABEL_ALERTNAME.to_string(),
            alertname_label_value(&sanitized),
        ),
        (LABEL_GENERATION.to_string(), generation.max(1).to_string()),
    ]);
    Incident {
        metadata: ObjectMeta {
            name: Some(incident_name(&sanitized, fingerprint, generation)),
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: incident_spec(alert, fingerprint),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::payload::{AlertStatus, parse_payload, tests::FIRING};
    use super::*;

    fn alert(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> Alert {
        Alert {
            status: AlertStatus::Firing,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            starts_at: None,
            ends_at: None,
            generator_url: None,
            fingerprint: None,
        }
    }

    /// DNS-1123 label: lowercase alphanumerics and '-', starting and ending alphanumeric, ≤ 63.
    fn is_dns1123_label(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-')
    }

    #[test]
    fn fingerprint_matches_prometheus() {
        // Test vector from prometheus/common model/signature_test.go (TestLabelsToSignature).
        let labels = BTreeMap::from([
            ("name".to_string(), "garland, briggs".to_string()),
            ("fear".to_string(), "love is not enough".to_string()),
        ]);
        assert_eq!(
            labels_fingerprint(&labels),
            format!("{:016x}", 5_799_056_148_416_392_346_u64)
        );
        // The empty label set hashes to the FNV offset basis.
        assert_eq!(labels_fingerprint(&BTreeMap::new()), "cbf29ce484222325");
    }

    #[test]
    fn fingerprint_matches_a_real_alertmanager_notification() {
        // An alert as a real Alertmanager sent it to a webhook, with the fingerprint it computed
        // (liamkelly15-maker/pythonwebhook, docker/alert-manager-webhook/testsuites/testcurl7.sh).
        let labels = BTreeMap::from(
            [
                ("alertname", "Deployment"),
                ("app_kubernetes_io_instance", "eric-oss-common-base"),
                ("app_kubernetes_io_managed_by", "Helm"),
                ("app_kubernetes_io_name", "eric-pm-kube-state-metrics"),
                ("app_kubernetes_io_version", "2.1.0_10"),
                ("chart", "eric-pm-kube-state-metrics-2.1.0_10"),
                ("deployment", "eric-log-transformer"),
                ("instance", "192.168.69.53:8080"),
                ("job", "eric-pm-kube-state-metrics"),
                ("kubernetes_name", "eric-pm-kube-state-metrics"),
                ("kubernetes_namespace", "eric-eo-cm-ci406"),
                ("namespace", "eric-eo-cm-ci406"),
                ("severity", "Warning"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        assert_eq!(labels_fingerprint(&labels), "fbab788ec4c1018b");
    }

    #[test]
    fn the_sender_fingerprint_is_checked_never_used() {
        let mut a = alert(&[("alertname", "X")], &[]);
        let computed = labels_fingerprint(&a.labels);
        for forged in ["5F3E0E3A1C2B4D6F", "", "abc", "not-hex-at-all!!"] {
            a.fingerprint = Some(forged.to_string());
            assert_eq!(alert_fingerprint(&a), computed, "{forged:?}");
            assert_eq!(mismatched_sender_fingerprint(&a, &computed), Some(forged));
        }
        for honest in [
            computed.clone(),
            computed.to_ascii_uppercase(),
            format!(" {computed} "),
        ] {
            a.fingerprint = Some(honest);
            assert_eq!(mismatched_sender_fingerprint(&a, &computed), None);
        }
        a.fingerprint = None;
        assert_eq!(alert_fingerprint(&a), computed);
        assert_eq!(mismatched_sender_fingerprint(&a, &computed), None);
    }

    #[test]
    fn alertnames_become_dns_labels() {
        for (raw, want) in [
            ("KubePodCrashLooping", "kube-pod-crash-looping"),
            ("HTTPErrorsHigh", "http-errors-high"),
            ("K8SNodeDown", "k8s-node-down"),
            ("node_filesystem_full", "node-filesystem-full"),
            ("  --Disk  Full!!  ", "disk-full"),
            ("Über alert", "ber-alert"),
            ("target_down", "target-down"),
            ("", "alert"),
            ("日本語", "alert"),
            ("already-fine-123", "already-fine-123"),
        ] {
            assert_eq!(sanitize_alertname(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn names_are_deterministic_bounded_and_keep_the_fingerprint() {
        let fp = "5f3e0e3a1c2b4d6f";
        assert_eq!(
            incident_name("kube-pod-crash-looping", fp, 1),
            "kube-pod-crash-looping-5f3e0e3a1c2b4d6f"
        );
        assert_eq!(
            incident_name("kube-pod-crash-looping", fp, 2),
            "kube-pod-crash-looping-5f3e0e3a1c2b4d6f-2"
        );
        let long = sanitize_alertname(&"VeryLongAlertName".repeat(10));
        for generation in [1, 2, 17, u32::MAX] {
            for fp in [fp, &"ab".repeat(16)] {
                let name = incident_name(&long, fp, generation);
                assert!(is_dns1123_label(&name), "{name}");
                assert!(name.contains(fp), "{name}");
                assert_eq!(name, incident_name(&long, fp, generation));
            }
        }
        // A cut that lands on a hyphen must not leave "--" or a trailing hyphen.
        let name = incident_name(&format!("{}-b", "a".repeat(45)), fp, 1);
        assert!(is_dns1123_label(&name) && !name.contains("--"), "{name}");
    }

    #[test]
    fn severity_synonyms() {
        for (label, want) in [
            (Some("critical"), Severity::Critical),
            (Some("Page"), Severity::Critical),
            (Some(" error "), Severity::Critical),
            (Some("P1"), Severity::Critical),
            (Some("warning"), Severity::Warning),
            (Some("warn"), Severity::Warning),
            (Some("info"), Severity::Info),
            (Some("none"), Severity::Info),
            (Some("low"), Severity::Info),
            (Some("whatever"), Severity::Warning),
            (Some(""), Severity::Warning),
            (None, Severity::Warning),
        ] {
            assert_eq!(severity_from_label(label), want, "{label:?}");
        }
    }

    #[test]
    fn spec_from_alertmanager_payload() {
        let payload = parse_payload(FIRING.as_bytes()).unwrap();
        let alert = &payload.alerts[0];
        let fp = alert_fingerprint(alert);
        let incident = incident_for_alert(alert, &fp, 1, "sre");
        assert_eq!(
            incident.metadata.name.as_deref(),
            Some("kube-pod-crash-looping-c90415da8d03bebd")
        );
        assert_eq!(incident.metadata.namespace.as_deref(), Some("sre"));
        let labels = incident.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[LABEL_FINGERPRINT], "c90415da8d03bebd");
        assert_eq!(labels[LABEL_ALERTNAME], "kube-pod-crash-looping");
        assert_eq!(labels[LABEL_GENERATION], "1");
        let spec = &incident.spec;
        assert_eq!(spec.title, "Pod shop/checkout-7f9c is crash looping");
        assert_eq!(
            spec.description.as_deref(),
            Some("Restarted 5 times in 10 minutes.")
        );
        assert_eq!(
            spec.runbook.as_deref(),
            Some("https://runbooks.example/KubePodCrashLooping")
        );
        assert_eq!(spec.severity, Severity::Critical);
        assert_eq!(spec.source, IncidentSource::Alertmanager);
        let alert_ref = spec.alert.as_ref().unwrap();
        assert_eq!(alert_ref.name, "KubePodCrashLooping");
        assert_eq!(alert_ref.fingerprint.as_deref(), Some("c90415da8d03bebd"));
        assert_eq!(alert_ref.labels["namespace"], "shop");
        assert_eq!(
            alert_ref.starts_at.as_deref(),
            Some("2025-06-01T10:00:00.123456789Z")
        );
        assert!(alert_ref.generator_url.is_some());
        assert_eq!(alert_ref.annotations.len(), 3);
    }

    #[test]
    fn spec_fallbacks() {
        let a = alert(
            &[("alertname", "DiskFull")],
            &[
                ("message", "disk at 99%"),
                ("runbook", "1. df -h\n2. find big files"),
            ],
        );
        let spec = incident_spec(&a, "0123456789abcdef");
        assert_eq!(spec.title, "DiskFull");
        assert_eq!(spec.description.as_deref(), Some("disk at 99%"));
        assert_eq!(spec.runbook.as_deref(), Some("1. df -h\n2. find big files"));
        assert_eq!(spec.severity, Severity::Warning);

        let nameless = alert(&[], &[("summary", "   ")]);
        let spec = incident_spec(&nameless, "0123456789abcdef");
        assert_eq!(spec.title, UNNAMED_ALERT);
        assert_eq!(spec.alert.unwrap().name, UNNAMED_ALERT);
    }

    #[test]
    fn long_text_is_cut_to_schema_bounds_on_char_boundaries() {
        let summary = "é".repeat(1000);
        let description = "ü".repeat(20000);
        let a = alert(
            &[("alertname", &"A".repeat(400))],
            &[
                ("summary", summary.as_str()),
                ("description", description.as_str()),
            ],
        );
        let incident = incident_for_alert(&a, "0123456789abcdef", 1, "ns");
        assert_eq!(incident.spec.title.chars().count(), MAX_TITLE_CHARS);
        assert_eq!(
            incident.spec.description.unwrap().chars().count(),
            MAX_DESCRIPTION_CHARS
        );
        assert_eq!(
            incident.spec.alert.unwrap().name.chars().count(),
            MAX_ALERT_NAME_CHARS
        );
        let labels = incident.metadata.labels.unwrap();
        assert!(is_dns1123_label(&labels[LABEL_ALERTNAME]));
        assert!(is_dns1123_label(incident.metadata.name.as_deref().unwrap()));
    }

    /// Issue 9 §7, §10: what a hostile sender puts in an alert is bounded and escaped.
    #[test]
    fn hostile_alerts_give_bounded_escaped_specs() {
        let huge = "x".repeat(900_000);
        let mut labels: Vec<(String, String)> = (0..300)
            .map(|i| (format!("l{i:03}"), "v".repeat(5000)))
            .collect();
        labels.push(("alertname".into(), "Big".into()));
        let label_refs: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let a = alert(
            &label_refs,
            &[
                ("summary", "red \u{1b}[31mALERT\u{202e}"),
                ("description", huge.as_str()),
                ("runbook", "1.\tcheck\n2.\u{7}bell"),
            ],
        );
        let spec = incident_spec(&a, "0123456789abcdef");
        assert_eq!(spec.title, "red \\u{1b}[31mALERT\\u{202e}");
        assert_eq!(spec.runbook.as_deref(), Some("1.\tcheck\n2.\\u{7}bell"));
        assert!(spec.description.unwrap().chars().count() <= MAX_DESCRIPTION_CHARS);
        let alert_ref = spec.alert.unwrap();
        assert!(alert_ref.labels.len() <= crate::incident::MAX_ALERT_LABELS);
        assert!(
            alert_ref
                .labels
                .values()
                .all(|v| v.chars().count() <= crate::incident::MAX_ALERT_LABEL_VALUE_CHARS)
        );
        assert!(
            alert_ref.annotations["description"].chars().count()
                <= crate::incident::MAX_ALERT_ANNOTATION_VALUE_CHARS
        );
        let size = serde_json::to_string(&alert_ref).unwrap().len();
        assert!(size < 200_000, "{size} bytes");
    }
}

//! The generic JSON webhook: the Incident's name, labels, spec summary, status report and usage,
//! signed so a receiver can check it came from this operator and is fresh.
//!
//! Signature: `X-Incident-Operator-Signature: sha256=<hex>` where `<hex>` is
//! HMAC-SHA256(signing key, `<timestamp>.<raw body>`) and `<timestamp>` is the Unix time in
//! seconds sent as `X-Incident-Operator-Timestamp`. A receiver recomputes the HMAC over the bytes
//! it received, compares in constant time, and refuses timestamps more than 5 minutes from its
//! clock (a replayed request carries an old timestamp, and changing it breaks the signature).

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::Message;

pub const SIGNATURE_HEADER: &str = "x-incident-operator-signature";
pub const TIMESTAMP_HEADER: &str = "x-incident-operator-timestamp";
/// How far a receiver should accept timestamps from its own clock.
pub const REPLAY_WINDOW_SECONDS: i64 = 300;

/// The JSON body.
pub fn body(message: &Message, sent_at: &str) -> Value {
    json!({
        "version": 1,
        "event": message.event.as_str(),
        "run": message.run,
        "sentAt": sent_at,
        "incident": {
            "namespace": message.namespace,
            "name": message.name,
            "labels": message.labels,
            "title": message.title,
            "severity": message.severity_word(),
            "fingerprint": message.fingerprint,
            "phase": message.phase,
            "outcome": message.outcome,
            "message": message.detail,
            "report": message.report,
            "usage": message.usage,
            "recurrences": message.recurrences,
        },
        "kubectl": message.kubectl_line(),
    })
}

/// `sha256=<hex>` over `<timestamp>.<body>`.
pub fn signature(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What a receiver does: true when `signature` matches and `timestamp` is within the replay window
/// of `now` (both Unix seconds).
pub fn verify(key: &[u8], timestamp: i64, body: &[u8], signature: &str, now: i64) -> bool {
    if (now - timestamp).abs() > REPLAY_WINDOW_SECONDS {
        return false;
    }
    let Some(hex_part) = signature.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sent) = hex::decode(hex_part) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&sent).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::sinks::slack::tests::message;

    #[test]
    fn signatures_verify_and_tampering_or_replay_fails() {
        let key = b"whsec-0123456789";
        let body = serde_json::to_vec(&body(&message(None), "2026-01-01T00:00:00Z")).unwrap();
        let sig = signature(key, 1_767_225_600, &body);
        assert!(verify(key, 1_767_225_600, &body, &sig, 1_767_225_660));
        assert!(
            !verify(key, 1_767_225_600, &body, &sig, 1_767_226_000),
            "replayed"
        );
        assert!(
            !verify(key, 1_767_225_601, &body, &sig, 1_767_225_601),
            "timestamp changed"
        );
        let mut tampered = body.clone();
        tampered[10] ^= 1;
        assert!(!verify(key, 1_767_225_600, &tampered, &sig, 1_767_225_600));
        assert!(!verify(
            b"other-key",
            1_767_225_600,
            &body,
            &sig,
            1_767_225_600
        ));
    }
}

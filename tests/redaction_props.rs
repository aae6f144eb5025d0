//! Property tests for the redactor (issue 9 §3): no configured secret survives any encoding the
//! redactor promises (`src/audit/redact/encodings.rs`), wherever it sits in the text.

use base64::Engine;
use base64::engine::general_purpose::{
    GeneralPurpose, STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
};
use incident_operator::audit::Redactor;
use proptest::prelude::*;

/// The encodings promised for a configured value on its own.
fn encode(which: usize, secret: &str) -> String {
    match which {
        0 => secret.to_string(),
        1 => secret.to_uppercase(),
        2 => secret.to_lowercase(),
        3 => STANDARD.encode(secret),
        4 => STANDARD.encode(format!("{secret}\n")),
        5 => STANDARD_NO_PAD.encode(secret),
        6 => URL_SAFE.encode(secret),
        7 => URL_SAFE_NO_PAD.encode(secret),
        8 => hex::encode(secret),
        9 => hex::encode_upper(secret),
        10 => secret
            .chars()
            .map(|c| format!("\\u{:04x}", c as u32))
            .collect(),
        11 => secret
            .chars()
            .map(|c| format!("\\u{:04X}", c as u32))
            .collect(),
        12 => {
            let quoted = serde_json::to_string(secret).unwrap();
            quoted[1..quoted.len() - 1].to_string()
        }
        _ => secret
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect(),
    }
}
const ENCODINGS: usize = 14;

/// Whether any run of base64 characters in `text`, decoded at any of the four character offsets,
/// holds `secret`.
fn decodes_to(text: &str, secret: &[u8], engine: &GeneralPurpose, alphabet: &[u8]) -> bool {
    let joined: String = text.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    joined
        .split(|c: char| !(c.is_ascii() && alphabet.contains(&(c as u8))))
        .any(|run| {
            (0..4).any(|offset| {
                let Some(rest) = run.get(offset..) else {
                    return false;
                };
                let whole = &rest[..rest.len() / 4 * 4];
                engine
                    .decode(whole)
                    .is_ok_and(|bytes| bytes.windows(secret.len()).any(|w| w == secret))
            })
        })
}

const STD_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Every promised encoding of a configured value, between arbitrary text, is gone.
    #[test]
    fn no_encoding_of_a_configured_secret_survives(
        secret in "[!-~]{8,48}",
        before in "[ -~\n]{0,40}",
        after in "[ -~\n]{0,40}",
        which in 0..ENCODINGS,
    ) {
        let redactor = Redactor::new([secret.clone()]);
        let encoded = encode(which, &secret);
        let text = format!("{before} {encoded} {after}");
        let out = redactor.redact(&text);
        prop_assert!(!out.contains(&encoded), "encoding {which} survived: {out:?}");
        prop_assert!(!out.contains(&secret), "the value survived: {out:?}");
    }

    /// A configured value inside a longer text that was base64-encoded (at any alignment,
    /// standard or URL-safe, unwrapped or wrapped at 64 or 76 columns) cannot be decoded back
    /// out of the redacted text.
    #[test]
    fn a_secret_inside_base64_text_cannot_be_decoded_back(
        secret in "[!-~]{8,48}",
        prefix in proptest::collection::vec(any::<u8>(), 0..60),
        suffix in proptest::collection::vec(any::<u8>(), 0..60),
        url_safe in any::<bool>(),
        wrap in prop_oneof![Just(0usize), Just(64usize), Just(76usize)],
    ) {
        let redactor = Redactor::new([secret.clone()]);
        let mut plain = prefix;
        plain.extend_from_slice(secret.as_bytes());
        plain.extend_from_slice(&suffix);
        let (engine, alphabet) = if url_safe { (&URL_SAFE, URL_ALPHABET) } else { (&STANDARD, STD_ALPHABET) };
        let mut encoded = engine.encode(&plain);
        if wrap > 0 {
            encoded = encoded
                .as_bytes()
                .chunks(wrap)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("\n");
        }
        prop_assume!(decodes_to(&encoded, secret.as_bytes(), engine, alphabet));
        let text = format!("output:\n{encoded}\nend\n");
        let out = redactor.redact(&text);
        prop_assert!(
            !decodes_to(&out, secret.as_bytes(), engine, alphabet),
            "the secret decodes out of {out:?}"
        );
    }
}

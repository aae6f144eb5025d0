//! The forms a configured secret (the API key, a `--secret-env` value) can take in tool output, and
//! the matcher that finds all of them in one pass.
//!
//! Promised encodings, each hidden wherever it appears:
//! - the value as is, upper-cased and lower-cased (`tr a-z A-Z`, case-insensitive logs);
//! - standard and URL-safe base64 at each of the three byte alignments, so the value is found inside
//!   a longer encoded text (`base64 <<< "KEY=$VALUE"`), padded or not, with or without a newline;
//! - base64 wrapped at any width (`base64` wraps at 76 columns, PEM at 64): see [`wrapped_base64_ranges`];
//! - hex, lower and upper case (`xxd -p`, `od`);
//! - JSON string escapes: every character as `\uXXXX` (lower or upper hex), the standard escaping
//!   of `"` and `\`, and Go's HTML-safe escaping of `<`, `>`, `&`;
//! - percent-encoding (a value in a query string).
//!
//! A base64 form at a shifted alignment cannot include the first and last group, which mix in the
//! neighbouring bytes; at most two bytes of the value stay visible at each edge, never the value.

use std::ops::Range;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};

/// Shortest encoded form worth matching: shorter cores would hit ordinary base64 by chance.
const MIN_FORM_LEN: usize = 8;

/// The base64 forms of `value` (whole and aligned cores, standard and URL-safe): what a wrapped
/// block is checked for once its lines are joined.
pub(super) fn base64_forms_of(value: &str) -> Vec<String> {
    let mut forms = Vec::new();
    for engine in [&STANDARD, &URL_SAFE] {
        // Whole encodings, padded and not, with the newline `echo` adds.
        for plain in [value.to_string(), format!("{value}\n")] {
            let encoded = engine.encode(plain.as_bytes());
            forms.push(encoded.trim_end_matches('=').to_string());
            forms.push(encoded);
        }
        for shift in 0..3 {
            forms.push(aligned_core(engine, value.as_bytes(), shift));
        }
    }
    forms.retain(|f| f.len() >= MIN_FORM_LEN);
    forms
}

/// Every form of `value` to hide, longest first, without duplicates.
pub(super) fn forms_of(value: &str) -> Vec<String> {
    let mut forms = vec![
        value.to_string(),
        value.to_uppercase(),
        value.to_lowercase(),
        hex::encode(value),
        hex::encode_upper(value),
        unicode_escaped(value, false),
        unicode_escaped(value, true),
        json_escaped(value),
        go_html_escaped(value),
        percent_encoded(value),
    ];
    forms.extend(base64_forms_of(value));
    forms.retain(|f| f.len() >= MIN_FORM_LEN);
    forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    forms.dedup();
    forms
}

/// The part of the base64 of `value` that is the same whatever `shift` bytes precede it: the groups
/// made only of the value's bytes.
fn aligned_core(engine: &impl Engine, value: &[u8], shift: usize) -> String {
    let mut shifted = vec![0u8; shift];
    shifted.extend_from_slice(value);
    let encoded = engine.encode(&shifted);
    let first_group = if shift == 0 { 0 } else { 4 };
    let full_groups_end = shifted.len() / 3 * 4;
    encoded
        .get(first_group..full_groups_end)
        .unwrap_or_default()
        .to_string()
}

fn unicode_escaped(value: &str, upper: bool) -> String {
    let mut out = String::with_capacity(value.len() * 6);
    for unit in value.encode_utf16() {
        if upper {
            out.push_str(&format!("\\u{unit:04X}"));
        } else {
            out.push_str(&format!("\\u{unit:04x}"));
        }
    }
    out
}

/// The value inside a JSON string as `serde_json` writes it (quotes stripped).
fn json_escaped(value: &str) -> String {
    let quoted = serde_json::to_string(value).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(&quoted)
        .to_string()
}

/// Go's `encoding/json` default: `<`, `>`, `&` as `\u003c`, `\u003e`, `\u0026` (what `kubectl -o
/// json` and most Go tools print).
fn go_html_escaped(value: &str) -> String {
    json_escaped(value)
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn percent_encoded(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// One matcher for every form of every configured secret.
#[derive(Clone)]
pub(super) struct FormMatcher {
    automaton: Arc<AhoCorasick>,
}

impl FormMatcher {
    /// `None` when there is nothing to match.
    pub(super) fn new(forms: &[String]) -> Option<Self> {
        if forms.is_empty() {
            return None;
        }
        // Leftmost-longest: a whole encoding wins over the core it contains. The patterns are
        // plain strings of bounded number, so building cannot fail in practice; if it ever did,
        // the exact forms would go unmatched, so fail loudly in tests via the debug assertion.
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(forms)
            .ok()?;
        Some(Self {
            automaton: Arc::new(automaton),
        })
    }

    /// Byte ranges of every form in `text`, sorted and disjoint. One pass over the text.
    pub(super) fn ranges(&self, text: &str) -> Vec<Range<usize>> {
        self.automaton
            .find_iter(text)
            .map(|m| m.start()..m.end())
            .collect()
    }

    /// Whether any form occurs in `text`.
    pub(super) fn is_match(&self, text: &str) -> bool {
        self.automaton.is_match(text)
    }
}

/// Ranges of wrapped base64 blocks (two or more consecutive lines of base64 characters, all but the
/// last of one width) whose joined content holds a configured form. Each line is looked at once.
pub(super) fn wrapped_base64_ranges(text: &str, matcher: &FormMatcher) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut block: Option<WrappedBlock> = None;
    let mut offset = 0;
    for raw_line in text.split_inclusive('\n') {
        let start = offset;
        offset += raw_line.len();
        let line = raw_line.trim_end_matches(['\n', '\r']);
        let body = line.trim_end_matches('=');
        let is_b64 = line.len() >= 4
            && line.len() - body.len() <= 2
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/-_".contains(&b));
        if !is_b64 {
            if let Some(done) = block.take() {
                done.finish(matcher, &mut out);
            }
            continue;
        }
        match block.as_mut() {
            // A line continues the block when the previous lines all had this block's width and
            // this one is not wider.
            Some(current) if !current.closed && line.len() <= current.width => {
                current.joined.push_str(line);
                current.end = start + line.len();
                current.lines += 1;
                current.closed = line.len() < current.width;
            }
            _ => {
                if let Some(done) = block.take() {
                    done.finish(matcher, &mut out);
                }
                block = Some(WrappedBlock {
                    start,
                    end: start + line.len(),
                    width: line.len(),
                    lines: 1,
                    closed: false,
                    joined: line.to_string(),
                });
            }
        }
    }
    if let Some(done) = block.take() {
        done.finish(matcher, &mut out);
    }
    out
}

struct WrappedBlock {
    start: usize,
    end: usize,
    width: usize,
    lines: usize,
    /// A shorter line ends a wrapped block.
    closed: bool,
    joined: String,
}

impl WrappedBlock {
    fn finish(self, matcher: &FormMatcher, out: &mut Vec<Range<usize>>) {
        if self.lines >= 2 && matcher.is_match(&self.joined) {
            out.push(self.start..self.end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifted_cores_appear_in_any_longer_encoding() {
        let value = "sk-ant-api03-secret-value";
        for prefix in ["", "K", "KE", "KEY=", "export API_KEY="] {
            let encoded = STANDARD.encode(format!("{prefix}{value}\n").as_bytes());
            let found = (0..3)
                .any(|shift| encoded.contains(&aligned_core(&STANDARD, value.as_bytes(), shift)));
            assert!(found, "no core of {value} in base64 of {prefix:?}+value");
        }
    }

    #[test]
    fn escapes() {
        assert_eq!(unicode_escaped("a<", false), "\\u0061\\u003c");
        assert_eq!(unicode_escaped("a<", true), "\\u0061\\u003C");
        assert_eq!(go_html_escaped("a&\"b"), "a\\u0026\\\"b");
        assert_eq!(percent_encoded("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn wrapped_block_is_found_across_lines() {
        let value = "a-configured-secret-value-long-enough-to-wrap-0123456789";
        let matcher = FormMatcher::new(&base64_forms_of(value)).unwrap();
        let encoded = STANDARD.encode(format!("prefix {value} suffix, and more text to wrap"));
        let wrapped: Vec<&str> = encoded
            .as_bytes()
            .chunks(20)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let text = format!("head\n{}\ntail\n", wrapped.join("\n"));
        let ranges = wrapped_base64_ranges(&text, &matcher);
        assert_eq!(ranges.len(), 1, "{text}");
        assert_eq!(&text[ranges[0].clone()], wrapped.join("\n"));
    }
}

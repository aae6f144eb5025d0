//! What the intake copies from an alert into an Incident, made safe to store and to print (issue 9
//! §7, §10): control characters (ANSI escapes, NUL, bidirectional overrides) become visible `\u{…}`
//! escapes, so `kubectl describe` prints them as text instead of obeying them; labels and
//! annotations are bounded in count and size (the same bounds the CRD schema enforces on
//! `spec.alert`), cut values ending with a visible marker.

use std::collections::BTreeMap;

use crate::incident::{
    MAX_ALERT_ANNOTATION_VALUE_CHARS, MAX_ALERT_ANNOTATIONS, MAX_ALERT_KEY_CHARS,
    MAX_ALERT_LABEL_VALUE_CHARS, MAX_ALERT_LABELS,
};

/// Appended to a value cut to its bound.
pub const CUT_MARKER: &str = "…[cut]";

/// Whether `c` must not reach a terminal raw: C0/C1 controls and DEL (except tab and newline,
/// which text fields may hold), and the Unicode bidirectional controls that reorder what follows.
pub fn is_unsafe_char(c: char, allow_newlines: bool) -> bool {
    match c {
        '\n' | '\t' => !allow_newlines,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' => true,
        _ => c.is_control(),
    }
}

/// `text` with every unsafe character written as a `\u{…}` escape.
pub fn escape_controls(text: &str, allow_newlines: bool) -> String {
    if !text.chars().any(|c| is_unsafe_char(c, allow_newlines)) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe_char(c, allow_newlines) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` cut to `max_chars` characters (the marker included) when longer.
pub fn bound_chars(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let keep = max_chars.saturating_sub(CUT_MARKER.chars().count());
    let end = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
    format!("{}{CUT_MARKER}", &text[..end])
}

/// A free-text field: escaped, then bounded.
pub fn text_field(text: &str, max_chars: usize, allow_newlines: bool) -> String {
    bound_chars(&escape_controls(text, allow_newlines), max_chars)
}

/// Labels as stored in `spec.alert.labels`: the first [`MAX_ALERT_LABELS`] by name, names and
/// values escaped and bounded.
pub fn bounded_labels(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    bounded_map(labels, MAX_ALERT_LABELS, MAX_ALERT_LABEL_VALUE_CHARS)
}

/// Annotations as stored in `spec.alert.annotations`, bounded like [`bounded_labels`].
pub fn bounded_annotations(annotations: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    bounded_map(
        annotations,
        MAX_ALERT_ANNOTATIONS,
        MAX_ALERT_ANNOTATION_VALUE_CHARS,
    )
}

fn bounded_map(
    map: &BTreeMap<String, String>,
    max_entries: usize,
    max_value_chars: usize,
) -> BTreeMap<String, String> {
    map.iter()
        .take(max_entries)
        .map(|(key, value)| {
            (
                text_field(key, MAX_ALERT_KEY_CHARS, false),
                text_field(value, max_value_chars, true),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_become_visible_escapes() {
        assert_eq!(
            escape_controls("red \u{1b}[31malert\u{0} \u{202E}txt", false),
            "red \\u{1b}[31malert\\u{0} \\u{202e}txt"
        );
        assert_eq!(escape_controls("a\nb\tc", true), "a\nb\tc");
        assert_eq!(escape_controls("a\nb", false), "a\\u{a}b");
        assert_eq!(escape_controls("plain ünïcode", false), "plain ünïcode");
    }

    #[test]
    fn maps_are_bounded_in_count_and_size() {
        let big: BTreeMap<String, String> = (0..500)
            .map(|i| (format!("k{i:03}"), "v".repeat(100_000)))
            .collect();
        let labels = bounded_labels(&big);
        assert_eq!(labels.len(), MAX_ALERT_LABELS);
        assert!(
            labels.values().all(
                |v| v.chars().count() == MAX_ALERT_LABEL_VALUE_CHARS && v.ends_with(CUT_MARKER)
            )
        );
        let annotations = bounded_annotations(&big);
        assert_eq!(annotations.len(), MAX_ALERT_ANNOTATIONS);
    }
}

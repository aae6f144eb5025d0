//! Finds the values of Kubernetes Secrets in `kubectl get secret -o yaml` / `-o json` output, including
//! the copy kubectl keeps in the `kubectl.kubernetes.io/last-applied-configuration` annotation (compact
//! JSON inside YAML, or JSON-escaped JSON inside JSON).
//!
//! A regex cannot tell which `data:` map belongs to a Secret, so this is a small one-pass scanner. The
//! rule it applies to each `data:` / `stringData:` map:
//! - the object's `kind` (kubectl prints it right after `data`) is `Secret` → every value is hidden;
//! - the kind is something else (a ConfigMap) → nothing is hidden, config stays readable;
//! - no kind in sight (a fragment, `grep -A5 data:`) → base64-shaped `data` values and every `stringData`
//!   value are hidden, so a cut-off Secret still leaks nothing.
//!
//! JSON maps whose values are not all strings (`"data": {"result": [...]}` from an HTTP API) are not
//! Secret data and are left alone. The scanner only moves forward, so it is linear in the input.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

/// Byte ranges of Secret values in `text`, sorted and non-overlapping.
pub(super) fn secret_value_ranges(text: &str) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    if text.contains("ata:") {
        ranges.extend(yaml_ranges(text));
    }
    if text.contains("ata\"") || text.contains("ata\\\"") {
        ranges.extend(json_ranges(text));
    }
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut disjoint: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        if disjoint.last().is_none_or(|last| range.start >= last.end) {
            disjoint.push(range);
        }
    }
    disjoint
}

/// What the object around a data map turned out to be.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ObjectKind {
    Secret,
    Other,
    Unknown,
}

/// A value that will be hidden if the object's kind allows it.
struct Candidate {
    range: Range<usize>,
    base64_shaped: bool,
}

fn keep_for(kind: ObjectKind, string_data: bool, candidates: Vec<Candidate>) -> Vec<Range<usize>> {
    candidates
        .into_iter()
        .filter(|c| match kind {
            ObjectKind::Secret => true,
            ObjectKind::Other => false,
            ObjectKind::Unknown => string_data || c.base64_shaped,
        })
        .map(|c| c.range)
        .collect()
}

/// Standard base64 with padding, as the API server prints Secret data.
fn is_base64_shaped(value: &str) -> bool {
    let body = value.trim_end_matches('=');
    value.len() >= 4
        && value.len().is_multiple_of(4)
        && value.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

// ---------------------------------------------------------------------------------------------------
// YAML

/// A `data:` / `stringData:` map being read.
struct YamlBlock {
    /// Column of the `data` key; its entries are deeper, its siblings (`kind:`) at this column.
    key_col: usize,
    /// Column of the map's entries, known from the first one.
    entry_col: Option<usize>,
    string_data: bool,
    /// Past the entries, looking for the `kind:` sibling.
    reading_siblings: bool,
    candidates: Vec<Candidate>,
}

fn yaml_ranges(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut block: Option<YamlBlock> = None;
    let mut line_start = 0;
    for raw_line in text.split_inclusive('\n') {
        let start = line_start;
        line_start += raw_line.len();
        let line = raw_line.trim_end_matches(['\n', '\r']);
        let indent = line.len() - line.trim_start_matches(' ').len();
        let content = &line[indent..];
        if content.trim().is_empty() {
            continue;
        }
        if let Some(current) = block.as_mut() {
            if !current.reading_siblings {
                if indent > current.key_col {
                    let entry_col = *current.entry_col.get_or_insert(indent);
                    if indent == entry_col {
                        if let Some(value) = yaml_entry_value(content) {
                            let value_start = start + indent + value.start;
                            let value_text = &content[value.clone()];
                            current.candidates.push(Candidate {
                                range: value_start..value_start + value_text.len(),
                                base64_shaped: is_base64_shaped(value_text),
                            });
                        }
                    } else if indent > entry_col {
                        // Continuation of a block scalar (`key: |`): only a Secret's would be secret.
                        let trimmed = content.trim_end();
                        current.candidates.push(Candidate {
                            range: start + indent..start + indent + trimmed.len(),
                            base64_shaped: false,
                        });
                    }
                    continue;
                }
                current.reading_siblings = true;
            }
            if indent < current.key_col {
                if let Some(done) = block.take() {
                    out.extend(keep_for(
                        ObjectKind::Unknown,
                        done.string_data,
                        done.candidates,
                    ));
                }
            } else {
                if indent == current.key_col
                    && let Some(kind) = content.strip_prefix("kind:")
                {
                    let kind = if unquote(kind.trim()) == "Secret" {
                        ObjectKind::Secret
                    } else {
                        ObjectKind::Other
                    };
                    if let Some(done) = block.take() {
                        out.extend(keep_for(kind, done.string_data, done.candidates));
                    }
                }
                continue;
            }
        }
        // A list item (`- data:`) puts its first key two columns right of the dash.
        let (key_col, key) = match content.strip_prefix("- ") {
            Some(rest) => (indent + 2, rest.trim_start()),
            None => (indent, content),
        };
        let key = key.trim_end();
        if key == "data:" || key == "stringData:" {
            block = Some(YamlBlock {
                key_col,
                entry_col: None,
                string_data: key == "stringData:",
                reading_siblings: false,
                candidates: Vec::new(),
            });
        }
    }
    if let Some(done) = block {
        out.extend(keep_for(
            ObjectKind::Unknown,
            done.string_data,
            done.candidates,
        ));
    }
    out
}

/// The byte range (within `entry`) of the value in a `key: value` line, without quotes; None when the
/// line has no inline value or starts a block scalar.
fn yaml_entry_value(entry: &str) -> Option<Range<usize>> {
    // Keys may be quoted (`".dockerconfigjson": …`); skip past the closing quote before looking for `: `.
    let search_from = match entry.as_bytes().first() {
        Some(&q @ (b'"' | b'\'')) => entry[1..].find(q as char).map_or(0, |i| i + 2),
        _ => 0,
    };
    let colon = search_from + entry[search_from..].find(": ")?;
    let after = &entry[colon + 2..];
    let leading = after.len() - after.trim_start().len();
    let value = after.trim();
    if value.is_empty() || value.starts_with('|') || value.starts_with('>') {
        return None;
    }
    let mut start = colon + 2 + leading;
    let mut len = value.len();
    let bytes = value.as_bytes();
    if len >= 2 && (bytes[0] == b'"' || bytes[0] == b'\'') && bytes[len - 1] == bytes[0] {
        start += 1;
        len -= 2;
    }
    (len > 0).then_some(start..start + len)
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value)
}

// ---------------------------------------------------------------------------------------------------
// JSON

/// `"data": {` or, inside a JSON string, `\"data\": {`. Group 1 is the backslash of the escaped form,
/// group 2 the key.
static JSON_DATA_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(\\?)"(data|stringData)\\?"[ \t\r\n]*:[ \t\r\n]*\{"#)
        .unwrap_or_else(|e| panic!("secret data pattern: {e}"))
});

fn json_ranges(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(caps) = JSON_DATA_KEY.captures_at(text, from) {
        let (Some(whole), Some(key)) = (caps.get(0), caps.get(2)) else {
            break;
        };
        let escaped = caps.get(1).is_some_and(|m| !m.is_empty());
        let mut cursor = JsonCursor {
            text: text.as_bytes(),
            pos: whole.end(),
            escaped,
        };
        match cursor.string_map() {
            Some(candidates) => {
                let kind = cursor.following_kind();
                out.extend(keep_for(kind, key.as_str() == "stringData", candidates));
                from = cursor.pos.max(whole.end());
            }
            None => from = whole.end(),
        }
    }
    out
}

/// Reads JSON forward from a position. In `escaped` mode the JSON is itself inside a JSON string, so
/// every quote and backslash arrives escaped once more (`\"`, `\\`); `next` undoes that layer.
struct JsonCursor<'t> {
    text: &'t [u8],
    pos: usize,
    escaped: bool,
}

impl JsonCursor<'_> {
    /// The next character of the inner JSON and how many bytes of `text` it took.
    fn peek(&self) -> Option<(u8, usize)> {
        let b = *self.text.get(self.pos)?;
        if self.escaped && b == b'\\' {
            let next = *self.text.get(self.pos + 1)?;
            let decoded = match next {
                b'n' => b'\n',
                b't' => b'\t',
                b'r' => b'\r',
                other => other,
            };
            return Some((decoded, 2));
        }
        Some((b, 1))
    }

    fn bump(&mut self) -> Option<u8> {
        let (b, len) = self.peek()?;
        self.pos += len;
        Some(b)
    }

    fn skip_ws(&mut self) {
        while let Some((b, len)) = self.peek() {
            if !matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
                break;
            }
            self.pos += len;
        }
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.bump()? == want).then_some(())
    }

    /// A string; returns the byte range of its content in `text` (between the quotes).
    fn string(&mut self) -> Option<Range<usize>> {
        self.expect(b'"')?;
        let start = self.pos;
        loop {
            let end = self.pos;
            match self.bump()? {
                b'"' => return Some(start..end),
                b'\\' => {
                    self.bump()?;
                }
                _ => {}
            }
        }
    }

    /// The entries of a `{ "k": "v", … }` map whose opening brace was consumed; None (and no
    /// redaction) when any value is not a string.
    fn string_map(&mut self) -> Option<Vec<Candidate>> {
        let mut candidates = Vec::new();
        loop {
            self.skip_ws();
            match self.peek()?.0 {
                b'}' => {
                    self.bump();
                    return Some(candidates);
                }
                b',' => {
                    self.bump();
                    continue;
                }
                _ => {}
            }
            self.string()?;
            self.skip_ws();
            self.expect(b':')?;
            self.skip_ws();
            let value = self.string()?;
            let value_text = std::str::from_utf8(&self.text[value.clone()]).unwrap_or("");
            if !value.is_empty() {
                candidates.push(Candidate {
                    base64_shaped: is_base64_shaped(value_text),
                    range: value,
                });
            }
        }
    }

    /// kubectl sorts keys, so a Secret's `"kind"` directly follows its `"data"`.
    fn following_kind(&mut self) -> ObjectKind {
        let start = self.pos;
        let kind = self.read_following_kind();
        self.pos = start;
        kind
    }

    fn read_following_kind(&mut self) -> ObjectKind {
        self.skip_ws();
        if self.peek().map(|(b, _)| b) == Some(b',') {
            self.bump();
        }
        self.skip_ws();
        let Some(key) = self.string() else {
            return ObjectKind::Unknown;
        };
        if &self.text[key] != b"kind" {
            return ObjectKind::Unknown;
        }
        self.skip_ws();
        if self.expect(b':').is_none() {
            return ObjectKind::Unknown;
        }
        self.skip_ws();
        match self.string() {
            Some(value) if &self.text[value.clone()] == b"Secret" => ObjectKind::Secret,
            Some(_) => ObjectKind::Other,
            None => ObjectKind::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hidden(text: &str) -> Vec<&str> {
        secret_value_ranges(text)
            .into_iter()
            .map(|r| &text[r])
            .collect()
    }

    #[test]
    fn base64_shape() {
        assert!(is_base64_shaped("aHVudGVyMg=="));
        assert!(is_base64_shaped("YWRtaW4="));
        assert!(!is_base64_shaped("debug"));
        assert!(!is_base64_shaped("a=b="));
        assert!(!is_base64_shaped("abc==="));
        assert!(!is_base64_shaped("has space "));
    }

    #[test]
    fn yaml_secret_values_are_found() {
        let yaml = "apiVersion: v1\ndata:\n  password: aHVudGVyMg==\n  username: YWRtaW4=\n  \
                    note: \"plain\"\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\n";
        assert_eq!(hidden(yaml), vec!["aHVudGVyMg==", "YWRtaW4=", "plain"]);
    }

    #[test]
    fn yaml_configmap_is_left_alone() {
        let yaml = "apiVersion: v1\ndata:\n  LOG_LEVEL: info\n  port: \"8080\"\n  config.yaml: |\n    \
                    a: b\nkind: ConfigMap\nmetadata:\n  name: cfg\n";
        assert!(hidden(yaml).is_empty(), "{:?}", hidden(yaml));
    }

    #[test]
    fn yaml_list_of_secrets_and_configmaps() {
        let yaml = "apiVersion: v1\nitems:\n- apiVersion: v1\n  data:\n    token: ZXlKaGJHY2k=\n  \
                    kind: Secret\n  metadata:\n    name: a\n- apiVersion: v1\n  data:\n    key: \
                    dmFsdWU=\n  kind: ConfigMap\n- data:\n    ca.crt: LS0tLS1CRUdJTg==\n  kind: Secret\n\
                    kind: List\n";
        assert_eq!(hidden(yaml), vec!["ZXlKaGJHY2k=", "LS0tLS1CRUdJTg=="]);
    }

    #[test]
    fn yaml_fragment_without_kind_hides_base64_only() {
        let yaml = "data:\n  password: aHVudGVyMg==\n  mode: debug\n";
        assert_eq!(hidden(yaml), vec!["aHVudGVyMg=="]);
        let string_data = "stringData:\n  password: hunter2\n";
        assert_eq!(hidden(string_data), vec!["hunter2"]);
    }

    #[test]
    fn yaml_block_scalar_in_a_secret_is_hidden() {
        let yaml = "data:\n  cfg: |\n    user: admin\n    pass: s3cr3t\nkind: Secret\n";
        assert_eq!(hidden(yaml), vec!["user: admin", "pass: s3cr3t"]);
    }

    #[test]
    fn json_secret_values_are_found() {
        let json = r#"{
    "apiVersion": "v1",
    "data": {
        "password": "aHVudGVyMg==",
        "username": "YWRtaW4="
    },
    "kind": "Secret"
}"#;
        assert_eq!(hidden(json), vec!["aHVudGVyMg==", "YWRtaW4="]);
    }

    #[test]
    fn json_configmap_and_api_payloads_are_left_alone() {
        let cm = r#"{"apiVersion":"v1","data":{"port":"8080"},"kind":"ConfigMap"}"#;
        assert!(hidden(cm).is_empty());
        let prom = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(hidden(prom).is_empty());
    }

    #[test]
    fn last_applied_annotation_in_yaml_and_in_json() {
        let yaml = "metadata:\n  annotations:\n    kubectl.kubernetes.io/last-applied-configuration: |\n      \
                    {\"apiVersion\":\"v1\",\"data\":{\"password\":\"aHVudGVyMg==\"},\"kind\":\"Secret\"}\n";
        assert_eq!(hidden(yaml), vec!["aHVudGVyMg=="]);
        let json = r#""kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"v1\",\"data\":{\"password\":\"aHVudGVyMg==\"},\"kind\":\"Secret\"}\n""#;
        assert_eq!(hidden(json), vec!["aHVudGVyMg=="]);
    }

    #[test]
    fn truncated_json_is_not_a_panic() {
        for cut in [
            r#"{"data":{"a":"#,
            r#"{"data":{"a":"YWJj"#,
            r#"{"data":{"#,
            r#"\"data\": {\"#,
        ] {
            let _ = hidden(cut);
        }
    }
}

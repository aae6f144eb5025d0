//! Finds PEM private key blocks, whatever each line carries in front or behind: the plain block, a
//! block JSON-escaped on one line (`\n`), `kubectl logs --timestamps` (a timestamp before every
//! line), `cat -A` (`$` at every line end), and a block cut off before its END line.
//!
//! A regex that spans from BEGIN to the next END lazily rescans the rest of the text for every BEGIN
//! without an END (quadratic on hostile input), so this scanner finds headers and footers with two
//! forward-only searches: the next footer is searched once and reused for every header before it.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

/// A block longer than this between header and footer is treated as cut off: what lies between is
/// not one key, and hiding a whole log for one stray header would hide the investigation.
const MAX_BLOCK_BYTES: usize = 64 * 1024;

static HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-----BEGIN[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----").unwrap_or_else(|e| {
        panic!("pem header: {e}");
    })
});
static FOOTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-----END[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----")
        .unwrap_or_else(|e| panic!("pem footer: {e}"))
});
/// The body of a block with no footer in reach: base64, whitespace, literal `\n`, the headers of
/// encrypted keys, and what line prefixes are made of (timestamps, `cat -A`'s `$` and `^M`).
static CUT_BODY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\A(?:(?:Proc-Type|DEK-Info|Version|Comment):[^\n]*|[A-Za-z0-9+/=\s\\$^:.,|_-])*")
        .unwrap_or_else(|e| panic!("pem body: {e}"))
});

/// Byte ranges of private key blocks in `text`, sorted and disjoint.
pub(super) fn private_key_ranges(text: &str) -> Vec<Range<usize>> {
    if !text.contains("PRIVATE KEY") {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut next_footer: Option<Range<usize>> = None;
    let mut footer_searched_from = 0;
    let mut from = 0;
    while let Some(header) = HEADER.find_at(text, from) {
        // Reuse the footer found for an earlier header unless it lies behind this one.
        if next_footer.as_ref().is_none_or(|f| f.start < header.end())
            && footer_searched_from <= header.end()
        {
            next_footer = FOOTER.find_at(text, header.end()).map(|m| m.range());
            footer_searched_from = next_footer.as_ref().map_or(text.len() + 1, |f| f.start);
        }
        let next_header = HEADER.find_at(text, header.end()).map(|m| m.start());
        let end = match &next_footer {
            Some(footer)
                if footer.start >= header.end()
                    && footer.start - header.end() <= MAX_BLOCK_BYTES
                    && next_header.is_none_or(|h| h > footer.start) =>
            {
                footer.end
            }
            _ => {
                let body = CUT_BODY.find(&text[header.end()..]).map_or(0, |m| m.end());
                let end = header.end() + body;
                // The body class holds spaces and dashes, so stop before the next header.
                next_header.map_or(end, |h| end.min(h))
            }
        };
        out.push(header.start()..end);
        from = end.max(header.end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hidden(text: &str) -> Vec<&str> {
        private_key_ranges(text)
            .into_iter()
            .map(|r| &text[r])
            .collect()
    }

    #[test]
    fn blocks_with_line_prefixes_are_hidden_to_the_footer() {
        let text = "2026-01-01T00:00:00.1Z -----BEGIN RSA PRIVATE KEY-----\n\
                    2026-01-01T00:00:00.1Z MIIEpAIBAAKCAQEA\n\
                    2026-01-01T00:00:00.1Z -----END RSA PRIVATE KEY-----\nafter";
        let found = hidden(text);
        assert_eq!(found.len(), 1);
        assert!(found[0].contains("MIIEpAIBAAKCAQEA"));
        assert!(found[0].ends_with("-----END RSA PRIVATE KEY-----"));
    }

    #[test]
    fn many_headers_without_footer_stay_linear_and_separate() {
        let text = "-----BEGIN PRIVATE KEY-----\"x".repeat(1000);
        assert_eq!(hidden(&text).len(), 1000);
    }
}

//! Where long output was cut to head and tail (`[... N bytes omitted ...]`, see
//! `crate::shell::text`), a secret may straddle the cut: the head ends with `password=hun`, the tail
//! starts with `ter2`, and neither half matches a rule. The shell has to cut before the redactor sees
//! the text (it holds at most the head and the tail in memory), so the redactor treats each cut as
//! the edge of a secret: the partial line on either side of it is hidden, and a tail that starts in
//! the middle of a private key block is hidden up to the block's END line.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

/// A partial line longer than this next to a cut is hidden only over this many bytes nearest the
/// cut: enough for any credential, and a megabyte-long JSON line still shows most of itself.
const EDGE_MAX_BYTES: usize = 512;
/// How far after a cut a private key's END line is looked for.
const KEY_TAIL_MAX_BYTES: usize = 64 * 1024;

static OMISSION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\n\[\.\.\. [0-9]+ bytes omitted \.\.\.\]\n")
        .unwrap_or_else(|e| panic!("omission marker: {e}"))
});
static KEY_FOOTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-----END[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----")
        .unwrap_or_else(|e| panic!("pem footer: {e}"))
});

/// Byte ranges to hide around every cut in `text`, sorted and disjoint.
pub(super) fn cut_edge_ranges(text: &str) -> Vec<Range<usize>> {
    if !text.contains("bytes omitted ...]") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for cut in OMISSION.find_iter(text) {
        let before = &text[..cut.start()];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let head_start = floor_boundary(
            text,
            line_start.max(cut.start().saturating_sub(EDGE_MAX_BYTES)),
        );
        if head_start < cut.start()
            && out
                .last()
                .is_none_or(|r: &Range<usize>| r.end <= head_start)
        {
            out.push(head_start..cut.start());
        }
        let after = &text[cut.end()..];
        let line_end = after.find('\n').map_or(text.len(), |i| cut.end() + i);
        let mut tail_end = ceil_boundary(text, line_end.min(cut.end() + EDGE_MAX_BYTES));
        // A key block whose header went with the omitted middle.
        let window = &after[..floor_boundary(after, after.len().min(KEY_TAIL_MAX_BYTES))];
        if let Some(footer) = KEY_FOOTER.find(window)
            && !window[..footer.start()].contains("-----BEGIN")
            && !window[..footer.start()].contains("bytes omitted ...]")
        {
            tail_end = tail_end.max(cut.end() + footer.end());
        }
        if cut.end() < tail_end {
            out.push(cut.end()..tail_end);
        }
    }
    out
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(text: &str, mut i: usize) -> usize {
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_lines_on_both_sides_of_a_cut() {
        let text = "ok line\nDB_PASSWORD=hun\n[... 100 bytes omitted ...]\nter2 rest\nnext line";
        let hidden: Vec<&str> = cut_edge_ranges(text)
            .into_iter()
            .map(|r| &text[r])
            .collect();
        assert_eq!(hidden, ["DB_PASSWORD=hun", "ter2 rest"]);
    }

    #[test]
    fn key_tail_after_a_cut_is_hidden_to_its_footer() {
        let text = "a\n[... 9 bytes omitted ...]\nAAAA\nBBBB\n-----END PRIVATE KEY-----\nafter";
        let ranges = cut_edge_ranges(text);
        let last = &text[ranges.last().unwrap().clone()];
        assert!(last.ends_with("-----END PRIVATE KEY-----"), "{last}");
        assert!(text[ranges.last().unwrap().end..].contains("after"));
    }

    #[test]
    fn no_cut_nothing_hidden() {
        assert!(cut_edge_ranges("password=x\nomitted").is_empty());
    }
}

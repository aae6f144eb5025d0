//! Bounding text for the model: keep the start and the end of long output, say how much was left out.
//!
//! Both the shell tool (per captured stream) and the agent loop (for anything else it feeds the
//! model) use the same marker, so the model learns one convention.

use std::borrow::Cow;

/// The line that replaces the middle of a long text: `"\n[... N bytes omitted ...]\n"`.
pub(crate) fn omission_marker(omitted_bytes: u64) -> String {
    format!("\n[... {omitted_bytes} bytes omitted ...]\n")
}

/// Bounds text for the model: keep the first and last `max_bytes/2` bytes with a marker
/// `"\n[... N bytes omitted ...]\n"` in between (cut on char boundaries). Used by the agent loop too.
///
/// Text of at most `max_bytes` bytes comes back borrowed and unchanged. Otherwise the result holds
/// at most `max_bytes` bytes of the original plus the marker; a cut never splits a character, so
/// the kept halves may be up to 3 bytes shorter than `max_bytes/2` each, and `N` counts exactly the
/// bytes that were dropped.
pub fn head_tail(text: &str, max_bytes: usize) -> Cow<'_, str> {
    if text.len() <= max_bytes {
        return Cow::Borrowed(text);
    }
    let half = max_bytes / 2;
    let head_end = floor_char_boundary(text, half);
    let tail_start = ceil_char_boundary(text, text.len() - half);
    let omitted = tail_start - head_end;
    let marker = omission_marker(omitted as u64);
    let mut bounded = String::with_capacity(head_end + marker.len() + (text.len() - tail_start));
    bounded.push_str(&text[..head_end]);
    bounded.push_str(&marker);
    bounded.push_str(&text[tail_start..]);
    Cow::Owned(bounded)
}

/// The largest char boundary at or below `index` (`index` must be at most `text.len()`).
///
/// Written out rather than `str::floor_char_boundary` because the crate's MSRV predates it.
fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// The smallest char boundary at or above `index` (`index` must be at most `text.len()`).
fn ceil_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index += 1;
    }
    index
}

/// How many bytes at the end of `bytes` form the start of a UTF-8 character that was cut off.
///
/// Used when a byte stream is cut after its head: dropping these bytes avoids a replacement
/// character where the text is actually fine. Returns 0 when the end is complete or is not UTF-8
/// at all (then lossy conversion shows what is there).
pub(crate) fn incomplete_utf8_suffix_len(bytes: &[u8]) -> usize {
    // A UTF-8 character is at most 4 bytes, so only the last 3 bytes can be an unfinished one.
    for back in 1..=bytes.len().min(3) {
        let byte = bytes[bytes.len() - back];
        if is_continuation_byte(byte) {
            continue;
        }
        let needed = match byte {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => return 0,
        };
        return if needed > back { back } else { 0 };
    }
    0
}

/// How many bytes at the start of `bytes` are the continuation of a character cut off before them.
///
/// The mirror of [`incomplete_utf8_suffix_len`] for the start of a kept tail.
pub(crate) fn orphan_continuation_prefix_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take(3)
        .take_while(|byte| is_continuation_byte(**byte))
        .count()
}

fn is_continuation_byte(byte: u8) -> bool {
    byte & 0b1100_0000 == 0b1000_0000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_borrowed_unchanged() {
        let text = "all fine";
        assert!(matches!(head_tail(text, 8), Cow::Borrowed("all fine")));
        assert!(matches!(head_tail("", 0), Cow::Borrowed("")));
    }

    #[test]
    fn long_ascii_keeps_both_halves_and_counts_the_middle() {
        let text = "abcdefghij";
        assert_eq!(head_tail(text, 4), "ab\n[... 6 bytes omitted ...]\nij");
        assert_eq!(head_tail(text, 0), "\n[... 10 bytes omitted ...]\n");
    }

    #[test]
    fn cuts_never_split_a_character() {
        // "é" is 2 bytes and "日" is 3: every cut point below falls inside one of them.
        let text = "éééé日日日日";
        for max_bytes in 0..text.len() {
            let bounded = head_tail(text, max_bytes);
            let (head, rest) = bounded.split_once("\n[... ").expect("marker present");
            let (count, tail) = rest
                .split_once(" bytes omitted ...]\n")
                .expect("marker end");
            let omitted: usize = count.parse().expect("count is a number");
            assert!(head.len() <= max_bytes / 2 && tail.len() <= max_bytes / 2);
            assert_eq!(head.len() + omitted + tail.len(), text.len());
            assert!(text.starts_with(head) && text.ends_with(tail));
        }
        assert_eq!(head_tail(text, 6), "é\n[... 15 bytes omitted ...]\n日");
    }

    #[test]
    fn finds_cut_off_utf8_at_the_edges() {
        let sun = "日".as_bytes(); // E6 97 A5
        assert_eq!(incomplete_utf8_suffix_len(b"ab"), 0);
        assert_eq!(incomplete_utf8_suffix_len(&[b'a', sun[0]]), 1);
        assert_eq!(incomplete_utf8_suffix_len(&[b'a', sun[0], sun[1]]), 2);
        assert_eq!(incomplete_utf8_suffix_len(sun), 0);
        assert_eq!(incomplete_utf8_suffix_len(&[0xFF]), 0);
        assert_eq!(orphan_continuation_prefix_len(&sun[1..]), 2);
        assert_eq!(orphan_continuation_prefix_len(&sun[2..]), 1);
        assert_eq!(orphan_continuation_prefix_len(sun), 0);
        assert_eq!(orphan_continuation_prefix_len(&[0x80; 8]), 3);
    }
}

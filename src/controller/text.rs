//! Bounding strings for places with a size limit (Event notes, condition messages, status
//! messages), without ever cutting a UTF-8 character in half.

/// Marker appended (or prepended) where text was cut.
const ELLIPSIS: &str = "…";

/// `text` shortened to at most `max_bytes` bytes, keeping the beginning and marking the cut.
pub fn truncate_start(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_string();
    }
    let mut end = max_bytes.saturating_sub(ELLIPSIS.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ELLIPSIS}", &text[..end])
}

/// `text` shortened to at most `max_bytes` bytes, keeping the end (where log output says what went
/// wrong) and marking the cut.
pub fn truncate_end(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_string();
    }
    let mut start = text.len() - max_bytes.saturating_sub(ELLIPSIS.len());
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("{ELLIPSIS}{}", &text[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_untouched() {
        assert_eq!(truncate_start("abc", 3), "abc");
        assert_eq!(truncate_end("abc", 3), "abc");
    }

    #[test]
    fn long_text_fits_and_keeps_the_requested_side() {
        let text = "é".repeat(100); // 200 bytes
        let head = truncate_start(&text, 51);
        assert!(head.len() <= 51, "{}", head.len());
        assert!(head.starts_with('é') && head.ends_with(ELLIPSIS));
        let tail = truncate_end(&format!("start {text} end"), 40);
        assert!(tail.len() <= 40);
        assert!(tail.ends_with(" end") && tail.starts_with(ELLIPSIS));
    }
}

//! Text helpers of the renderers. Everything an Incident holds came from an alert, a model or a
//! shell, so [`clean`] runs on every value before it reaches a terminal: no escape sequence in a
//! report can recolour, move the cursor or hide a line.

/// `text` with control characters (ANSI escapes, carriage returns, bidi overrides) made visible
/// as `�`; newlines become spaces unless `keep_newlines`; tabs become a space.
pub fn clean(text: &str, keep_newlines: bool) -> String {
    text.chars()
        .map(|c| match c {
            '\n' if keep_newlines => '\n',
            '\n' | '\t' => ' ',
            c if c.is_control() || is_bidi_control(c) => '\u{fffd}',
            c => c,
        })
        .collect()
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Characters `text` takes on screen (one per char: the renderers' output is ASCII-heavy, and a
/// wide glyph overflowing by one column is harmless).
pub fn width_of(text: &str) -> usize {
    text.chars().count()
}

/// `text` cut to `width` characters, ending in `…` when cut.
pub fn truncate(text: &str, width: usize) -> String {
    if width_of(text) <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// Word-wraps cleaned `text` to `width` columns, every line prefixed with `indent`; the first line
/// with `first_indent` instead (a label, a bullet). Words longer than a line are cut.
pub fn wrap(text: &str, width: usize, first_indent: &str, indent: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let text = clean(text, true);
    for paragraph in text.split('\n') {
        let lines_before = lines.len();
        let mut line = String::new();
        let mut prefix = if lines.is_empty() {
            first_indent
        } else {
            indent
        };
        let room = |prefix: &str| width.saturating_sub(width_of(prefix)).max(10);
        for word in paragraph.split_whitespace() {
            let mut word = word.to_string();
            while width_of(&word) > room(prefix) {
                if !line.is_empty() {
                    lines.push(format!("{prefix}{line}"));
                    line.clear();
                    prefix = indent;
                }
                let head: String = word.chars().take(room(prefix)).collect();
                word = word.chars().skip(room(prefix)).collect();
                lines.push(format!("{prefix}{head}"));
                prefix = indent;
            }
            if word.is_empty() {
                continue;
            }
            let needed = width_of(&line) + usize::from(!line.is_empty()) + width_of(&word);
            if !line.is_empty() && needed > room(prefix) {
                lines.push(format!("{prefix}{line}"));
                line.clear();
                prefix = indent;
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&word);
        }
        // A blank paragraph stays a blank line.
        if !line.is_empty() || lines.len() == lines_before {
            lines.push(format!("{prefix}{line}").trim_end().to_string());
        }
    }
    lines
}

/// A duration as a person says it: `850ms`, `12s`, `3m12s`, `2h05m`, `3d4h`.
pub fn duration(millis: u64) -> String {
    let seconds = millis / 1000;
    match seconds {
        0 => format!("{millis}ms"),
        1..60 => {
            let tenths = (millis % 1000) / 100;
            if seconds < 10 && tenths > 0 {
                format!("{seconds}.{tenths}s")
            } else {
                format!("{seconds}s")
            }
        }
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        3600..86400 => format!("{}h{:02}m", seconds / 3600, (seconds % 3600) / 60),
        _ => format!("{}d{}h", seconds / 86400, (seconds % 86400) / 3600),
    }
}

/// Milliseconds from `from` to `to` (0 when `to` is earlier).
pub fn millis_between(from: jiff::Timestamp, to: jiff::Timestamp) -> u64 {
    let ms = to.as_millisecond() - from.as_millisecond();
    u64::try_from(ms).unwrap_or(0)
}

/// An age as kubectl prints it: `45s`, `12m`, `5h`, `3d`.
pub fn age(since: jiff::Timestamp, now: jiff::Timestamp) -> String {
    let seconds = millis_between(since, now) / 1000;
    match seconds {
        0..120 => format!("{seconds}s"),
        120..7200 => format!("{}m", seconds / 60),
        7200..172_800 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86400),
    }
}

/// Dollars: cents above a dollar, four decimals below (a session often costs a few cents).
pub fn money(usd: f64) -> String {
    if usd >= 1.0 {
        format!("${usd:.2}")
    } else {
        format!("${usd:.4}")
    }
}

/// `1234567` as `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A time as `2026-01-28 09:42:35 UTC`.
pub fn clock(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The `HH:MM:SS` of an RFC 3339 time, or the text itself when it does not parse.
pub fn time_of_day(rfc3339: &str) -> String {
    match rfc3339.parse::<jiff::Timestamp>() {
        Ok(at) => at.strftime("%H:%M:%S").to_string(),
        Err(_) => clean(rfc3339, false),
    }
}

/// The serde name of a unit enum value (`critical`, `investigate`, `alertmanager`).
pub fn serde_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_bidi_overrides_are_made_visible() {
        assert_eq!(clean("a\u{1b}[31mb\r\u{202e}c", false), "a�[31mb��c");
        assert_eq!(clean("a\nb\tc", false), "a b c");
        assert_eq!(clean("a\nb", true), "a\nb");
    }

    #[test]
    fn wrap_fits_the_width_and_indents() {
        let lines = wrap(
            "the quick brown fox jumps over the lazy dog",
            20,
            "  - ",
            "    ",
        );
        assert_eq!(
            lines,
            vec![
                "  - the quick brown",
                "    fox jumps over",
                "    the lazy dog"
            ]
        );
        assert!(lines.iter().all(|l| width_of(l) <= 20));
        let long = wrap(&"x".repeat(25), 20, "", "");
        assert_eq!(long, vec!["x".repeat(20), "x".repeat(5)]);
        assert_eq!(wrap("", 20, "  ", "  "), vec![""]);
        assert_eq!(wrap("a\n\nb", 20, "", "").len(), 3);
    }

    #[test]
    fn durations_ages_money_and_counts() {
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(1_250), "1.2s");
        assert_eq!(duration(12_000), "12s");
        assert_eq!(duration(192_000), "3m12s");
        assert_eq!(duration(7_500_000), "2h05m");
        assert_eq!(duration(3 * 86_400_000 + 4 * 3_600_000), "3d4h");
        let now: jiff::Timestamp = "2026-01-28T10:00:00Z".parse().unwrap();
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        assert_eq!(age(at("2026-01-28T09:59:15Z"), now), "45s");
        assert_eq!(age(at("2026-01-28T09:48:00Z"), now), "12m");
        assert_eq!(age(at("2026-01-25T10:00:00Z"), now), "3d");
        assert_eq!(age(at("2026-01-29T10:00:00Z"), now), "0s");
        assert_eq!(money(0.04213), "$0.0421");
        assert_eq!(money(12.5), "$12.50");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(999), "999");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}

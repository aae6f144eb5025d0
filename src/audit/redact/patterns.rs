//! The well-known secret shapes the redactor hides even when nobody configured their values: tokens
//! with a recognisable prefix (GitHub, Slack, Anthropic, AWS), private key blocks, JWTs, and values next
//! to a key that names a secret (`DB_PASSWORD=…`, `"token": "…"`).
//!
//! Every rule is a regex from the `regex` crate, whose matching is linear in the input (finite automata,
//! no backtracking blow-up), so a megabyte of `kubectl` output costs one pass per rule. Each rule names
//! the capture groups that hold the secret; the rest of the match (the word `Bearer`, the key name, the
//! quotes) is kept so the audit still reads naturally.

use std::borrow::Cow;
use std::cell::Cell;
use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::{is_marker, marker};

/// Key names (matched case-insensitively, as the end of a longer key like `DB_PASSWORD`) whose values
/// are secrets. `pwd` is left out on purpose: `PWD=/home/agent` is in every environment dump.
const SECRET_KEY_WORDS: &str = "password|passwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key|secret[_-]?key|private[_-]?key|client[_-]?secret|auth[_-]?key";

/// A value in a key-value pair: double-quoted, single-quoted or bare (up to whitespace or a delimiter).
/// Three alternatives, so three capture groups, of which at most one takes part in a match.
const VALUE: &str = r#"(?:"([^"\n]*)"|'([^'\n]*)'|([^\s"',;&]+))"#;

/// One secret shape.
struct Rule {
    /// Shown in the marker: `[REDACTED:<kind>]`.
    kind: &'static str,
    regex: Regex,
    /// Capture groups that hold the secret; 0 hides the whole match.
    secret_groups: &'static [usize],
    /// Returns true for a candidate that only looks like a secret (prose, placeholders), to keep it.
    is_harmless: fn(&str) -> bool,
}

fn rule(kind: &'static str, pattern: &str, secret_groups: &'static [usize]) -> Rule {
    Rule {
        kind,
        // The patterns are constants of this module; a unit test compiles every one of them.
        regex: Regex::new(pattern).unwrap_or_else(|e| panic!("redaction rule {kind}: {e}")),
        secret_groups,
        is_harmless: |_| false,
    }
}

fn rule_unless(
    kind: &'static str,
    pattern: &str,
    secret_groups: &'static [usize],
    is_harmless: fn(&str) -> bool,
) -> Rule {
    Rule {
        is_harmless,
        ..rule(kind, pattern, secret_groups)
    }
}

/// The rules in the order they run. Specific shapes come before the generic key-value rules so the
/// marker names the most precise kind; a later rule never re-redacts an earlier marker.
static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    // `(?-u:\b)` is an ASCII word boundary: the Unicode one would force the slow matching engine on any
    // non-ASCII output.
    vec![
        // Whole PEM blocks. The body is base64, whitespace and literal `\n` (keys pasted into JSON), plus
        // the headers of encrypted keys (listed first: the regex prefers earlier alternatives, and the
        // base64 class would otherwise stop at the `-` of `Proc-Type`); a block cut off before its END
        // line is hidden up to where the base64 stops.
        rule(
            "private_key",
            r"-----BEGIN[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----(?:(?:Proc-Type|DEK-Info|Version|Comment):[^\n]*|[A-Za-z0-9+/=\s\\])*(?:-----END[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----)?",
            &[0],
        ),
        // A GCP service-account key file: the PEM is JSON-escaped on one line.
        rule_unless(
            "private_key",
            r#""private_key"[ \t]*:[ \t]*"((?:[^"\\\n]|\\.)*)""#,
            &[1],
            is_marker,
        ),
        rule_unless(
            "bearer",
            r"(?i)(?-u:\b)(?:bearer|basic)[ \t]+([A-Za-z0-9\-._~+/]{8,}=*)",
            &[1],
            looks_like_prose,
        ),
        rule(
            "aws_access_key_id",
            r"(?-u:\b)((?:AKIA|ASIA)[A-Z0-9]{16})(?-u:\b)",
            &[1],
        ),
        rule_unless(
            "aws_secret",
            r#"(?i)(?:aws_?)?(?:secret_?access_?key|session_?token)["']?[ \t]*[=:][ \t]*["']?([A-Za-z0-9/+=]{16,})"#,
            &[1],
            is_marker,
        ),
        rule(
            "github_token",
            r"(?-u:\b)(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})",
            &[1],
        ),
        rule(
            "slack_token",
            r"(?-u:\b)(xox[abposr]-[A-Za-z0-9-]{10,}|xapp-[0-9]-[A-Za-z0-9-]{10,})",
            &[1],
        ),
        rule(
            "anthropic_key",
            r"(?-u:\b)(sk-ant-[A-Za-z0-9_-]{20,})",
            &[1],
        ),
        rule_unless(
            "openai_key",
            r"(?-u:\b)(sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,})",
            &[1],
            lacks_digits_or_letters,
        ),
        // Header and payload of a JWT are base64url JSON objects, so both start with `eyJ` (`{"`).
        rule(
            "jwt",
            r"(?-u:\b)(eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)",
            &[1],
        ),
        // Container env in `kubectl get pod -o yaml|json`: the name and the value are separate fields.
        rule_unless(
            "credential",
            &format!(
                r#"(?i)"?(?-u:\b)name"?[ \t]*:[ \t]*"?[A-Za-z0-9_.-]*(?:{SECRET_KEY_WORDS})"?[ \t]*,?\s*-?[ \t]*"?value"?[ \t]*:[ \t]*{VALUE}"#
            ),
            &[1, 2, 3],
            is_placeholder,
        ),
        // `--password hunter2`, `--token=…` is left to the key-value rule below.
        rule_unless(
            "credential",
            &format!(
                r#"(?im)(?:^|[ \t"'])--?(?:[a-z0-9]+[-_])*(?:{SECRET_KEY_WORDS})[ \t]+{VALUE}"#
            ),
            &[1, 2, 3],
            is_placeholder,
        ),
        // `DB_PASSWORD=…`, `password: …`, `"apiKey": "…"`, `?token=…&`. The key must end with the secret
        // word, so `secretName:` or `tokenRef:` are left alone.
        rule_unless(
            "credential",
            &format!(r#"(?i)[A-Za-z0-9_.-]*(?:{SECRET_KEY_WORDS})["']?[ \t]*[=:][ \t]*{VALUE}"#),
            &[1, 2, 3],
            is_placeholder,
        ),
    ]
});

/// Applies every rule to `text`, borrowing it when nothing matched.
pub(super) fn redact_patterns(text: &str) -> Cow<'_, str> {
    let mut current = Cow::Borrowed(text);
    for rule in RULES.iter() {
        if let Cow::Owned(replaced) = apply(rule, &current) {
            current = Cow::Owned(replaced);
        }
    }
    current
}

fn apply<'t>(rule: &Rule, text: &'t str) -> Cow<'t, str> {
    // replace_all returns an owned copy as soon as anything matched, even when every candidate was
    // harmless; tracking real replacements keeps clean text borrowed.
    let replaced_any = Cell::new(false);
    let out = rule.regex.replace_all(text, |caps: &Captures<'_>| {
        let (replacement, replaced) = replace_secret_groups(rule, caps);
        if replaced {
            replaced_any.set(true);
        }
        replacement
    });
    if replaced_any.get() {
        out
    } else {
        Cow::Borrowed(text)
    }
}

/// The whole match with each participating secret group replaced by the rule's marker (or the match
/// unchanged when the candidate is harmless), and whether anything was replaced.
fn replace_secret_groups(rule: &Rule, caps: &Captures<'_>) -> (String, bool) {
    let Some(whole) = caps.get(0) else {
        return (String::new(), false);
    };
    let mut replaced = false;
    let mut out = String::with_capacity(whole.len());
    let mut copied_to = whole.start();
    for &group in rule.secret_groups {
        let Some(secret) = caps.get(group) else {
            continue;
        };
        if secret.is_empty() || is_marker(secret.as_str()) || (rule.is_harmless)(secret.as_str()) {
            continue;
        }
        out.push_str(&whole.as_str()[copied_to - whole.start()..secret.start() - whole.start()]);
        out.push_str(&marker(rule.kind));
        copied_to = secret.end();
        replaced = true;
    }
    out.push_str(&whole.as_str()[copied_to - whole.start()..]);
    (out, replaced)
}

/// "Bearer authentication", "Basic Authentication": a plain word, not a token.
fn looks_like_prose(token: &str) -> bool {
    let mut chars = token.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.all(|c| c.is_ascii_lowercase())
}

/// Real `sk-` keys are random: they have both digits and letters. `sk-some-long-kebab-name` is not one.
fn lacks_digits_or_letters(key: &str) -> bool {
    let body = key.trim_start_matches("sk-");
    !(body.bytes().any(|b| b.is_ascii_digit()) && body.bytes().any(|b| b.is_ascii_alphabetic()))
}

/// Values next to a secret-sounding key that carry no secret: booleans, empty markers, references to
/// other variables, masks that tools already print.
fn is_placeholder(value: &str) -> bool {
    const HARMLESS: &[&str] = &[
        "true",
        "false",
        "null",
        "nil",
        "none",
        "<none>",
        "yes",
        "no",
        "{}",
        "[]",
        "|",
        ">",
        "|-",
        ">-",
        "<redacted>",
        "redacted",
        "<hidden>",
        "<set>",
        "<unset>",
    ];
    let lower = value.to_ascii_lowercase();
    HARMLESS.contains(&lower.as_str())
        || is_marker(value)
        || value.starts_with('$')
        || value.bytes().all(|b| b == b'*' || b == b'x' || b == b'X')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_compiles() {
        assert!(RULES.len() >= 12);
    }

    #[test]
    fn harmless_checks() {
        assert!(looks_like_prose("authentication"));
        assert!(looks_like_prose("Authentication"));
        assert!(!looks_like_prose("dXNlcjpwYXNz"));
        assert!(!looks_like_prose("abc123def456"));
        assert!(lacks_digits_or_letters("sk-some-long-kebab-case-name"));
        assert!(!lacks_digits_or_letters("sk-abc123def456ghi789jkl"));
        assert!(is_placeholder("TRUE"));
        assert!(is_placeholder("${DB_PASSWORD}"));
        assert!(is_placeholder("********"));
        assert!(!is_placeholder("hunter22"));
    }
}

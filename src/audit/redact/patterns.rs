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
/// are secrets.
const SECRET_KEY_WORDS: &str = "password|passwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key|secret[_-]?key|private[_-]?key|client[_-]?secret|auth[_-]?key|account[_-]?key|key[_-]?data|credentials?|connection[_-]?string";
/// Short key words that are secrets only as a whole segment of a longer key (`DB_PWD`, `REDIS_PASS`,
/// `ADMIN_PW`, `SIGNING_KEY`, `SENTRY_DSN`): alone, `PWD=/home/agent` is in every environment dump and
/// `key: app` in every label selector.
const SHORT_KEY_WORDS: &str = "pwd|pass|pw|key|dsn";

/// A value in a key-value pair: double-quoted, single-quoted or bare (up to whitespace or a delimiter).
/// Three alternatives, so three capture groups, of which at most one takes part in a match.
const VALUE: &str = r#"(?:"([^"\n]*)"|'([^'\n]*)'|([^\s"',;&]+))"#;
/// The same, but a bare value runs to the end of the line (or a query-string `&`): `password=my
/// secret pass` and `PASSWORD=abc;def` are hidden whole, not to the first space or `;`.
const LINE_VALUE: &str = r#"(?:"([^"\n]*)"|'([^'\n]*)'|([^\s"'&](?:[^\n"'&]*[^\s"'&,])?))"#;

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

/// Base64 of the first whole groups of `-----BEGIN <label> PRIVATE KEY-----`: how a private key
/// starts inside a kubeconfig's `client-key-data`, a Secret's data or `base64 key.pem`.
fn base64_private_key_prefixes() -> String {
    use base64::Engine;
    ["", "RSA ", "EC ", "DSA ", "OPENSSH ", "ENCRYPTED "]
        .iter()
        .map(|label| {
            let header = format!("-----BEGIN {label}PRIVATE KEY-----");
            let whole = header.len() / 3 * 3;
            base64::engine::general_purpose::STANDARD.encode(&header.as_bytes()[..whole])
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// The rules in the order they run. Specific shapes come before the generic key-value rules so the
/// marker names the most precise kind; a later rule never re-redacts an earlier marker. PEM blocks
/// are found by `super::pem`, not here.
static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    // `(?-u:\b)` is an ASCII word boundary: the Unicode one would force the slow matching engine on any
    // non-ASCII output.
    vec![
        // A GCP service-account key file: the PEM is JSON-escaped on one line.
        rule_unless(
            "private_key",
            r#""private_key"[ \t]*:[ \t]*"((?:[^"\\\n]|\\.)*)""#,
            &[1],
            is_marker,
        ),
        // A base64-encoded private key, possibly wrapped over several lines.
        rule(
            "private_key",
            &format!(
                r"(?:{})[A-Za-z0-9+/=]*(?:\r?\n[A-Za-z0-9+/]+=*)*",
                base64_private_key_prefixes()
            ),
            &[0],
        ),
        // A base64 docker config (`.dockerconfigjson`): `{"auths":` encodes to `eyJhdXRocyI6`.
        rule(
            "docker_config",
            r"(?-u:\b)eyJhdXRocyI6[A-Za-z0-9+/=]*",
            &[0],
        ),
        // `"auth": "<base64 user:pass>"` inside a docker config.
        rule_unless(
            "docker_auth",
            r#"(?i)"auth"[ \t]*:[ \t]*"([^"\n]+)""#,
            &[1],
            is_placeholder,
        ),
        // The password of a URL: `postgres://u:p@`, `redis://:p@`, `http_proxy=http://u:p@`.
        rule_unless(
            "url_password",
            r#"(?i)(?-u:\b)[a-z][a-z0-9+.-]{0,30}://[^\s:/?#@'"]*:([^\s@/'"]+)@"#,
            &[1],
            is_placeholder,
        ),
        // Slack incoming webhooks: the path is the credential.
        rule(
            "slack_webhook",
            r"(?i)hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9/_-]+)",
            &[1],
        ),
        // `curl -u user:pass`, `--user`, `--proxy-user`, `-U`.
        rule_unless(
            "credential",
            r#"(?:^|[\s'"])(?:-u|-U|--user|--proxy-user)(?:[ \t]+|=)?['"]?[^\s:'"]+:([^\s'"]+)"#,
            &[1],
            is_placeholder,
        ),
        // `mysql -pX` (the password glued to `-p`), `sshpass -p X`, `redis-cli -a X`.
        rule_unless(
            "credential",
            r#"(?i)(?-u:\b)(?:mysql|mysqldump|mysqladmin|mysqlshow|mysqlimport|mariadb)(?-u:\b)[^\n|;&]*?[ \t]-p(?:'([^'\n]*)'|"([^"\n]*)"|([^\s'"]+))"#,
            &[1, 2, 3],
            is_placeholder,
        ),
        rule_unless(
            "credential",
            r#"(?-u:\b)(?:sshpass[ \t]+-p|redis-cli(?-u:\b)[^\n|;&]*?[ \t]-a)[ \t]*(?:'([^'\n]*)'|"([^"\n]*)"|([^\s'"]+))"#,
            &[1, 2, 3],
            is_placeholder,
        ),
        // htpasswd and shadow hashes: `user:$apr1$…`, `user:$2y$…`, `user:{SHA}…`.
        rule(
            "password_hash",
            r"(?m)^[A-Za-z0-9_.@-]+:(\$(?:apr1|2[abxy]|1|5|6|y|argon2id?)\$[^\s:]+|\{SHA\}[A-Za-z0-9+/=]+)",
            &[1],
        ),
        // Azure storage connection strings and SAS tokens.
        rule(
            "azure_key",
            r"(?i)(?-u:\b)(?:AccountKey|SharedAccessKey|SharedAccessSignature)=([^;\s'\x22]+)",
            &[1],
        ),
        rule(
            "url_signature",
            r"(?i)[?&;](?:sig|signature|x-amz-signature|x-amz-security-token|x-goog-signature)=([^&\s'\x22#]+)",
            &[1],
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
            "gitlab_token",
            r"(?-u:\b)(gl(?:pat|dt|rt|cbt|ptt|ft|imt|agent|oas)-[A-Za-z0-9_-]{20,})",
            &[1],
        ),
        rule(
            "slack_token",
            r"(?-u:\b)(xox[abposre]-[A-Za-z0-9-]{10,}|xapp-[0-9]-[A-Za-z0-9-]{10,})",
            &[1],
        ),
        rule(
            "stripe_key",
            r"(?-u:\b)((?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,})",
            &[1],
        ),
        rule("google_api_key", r"(?-u:\b)(AIza[0-9A-Za-z_-]{35})", &[1]),
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
                r#"(?i)"?(?-u:\b)name"?[ \t]*:[ \t]*"?(?:[A-Za-z0-9_.-]*(?:{SECRET_KEY_WORDS})|[A-Za-z0-9_.-]*[_.-](?:{SHORT_KEY_WORDS}))"?[ \t]*,?\s*-?[ \t]*"?value"?[ \t]*:[ \t]*{LINE_VALUE}"#
            ),
            &[1, 2, 3],
            is_placeholder,
        ),
        // `--password hunter2`, `--pass x`; `--token=…` is left to the key-value rule below.
        rule_unless(
            "credential",
            &format!(
                r#"(?im)(?:^|[ \t"'])--?(?:[a-z0-9]+[-_])*(?:{SECRET_KEY_WORDS}|pwd|pass|pw|dsn)[ \t]+{VALUE}"#
            ),
            &[1, 2, 3],
            is_placeholder,
        ),
        // Upper-case env names with SECRET anywhere: `SECRET_KEY_BASE=…`, `APP_SECRET_VALUE=…`.
        rule_unless(
            "credential",
            &format!(r#"(?-u:\b)[A-Z0-9_]*SECRET[A-Z0-9_]*=[ \t]*{LINE_VALUE}"#),
            &[1, 2, 3],
            is_placeholder,
        ),
        // `DB_PASSWORD=…`, `password: …`, `"apiKey": "…"`, `?token=…&`. The key must end with the secret
        // word, so `secretName:` or `tokenRef:` are left alone.
        rule_unless(
            "credential",
            &format!(
                r#"(?i)(?:[A-Za-z0-9_.-]*(?:{SECRET_KEY_WORDS})|[A-Za-z0-9_.-]*[_.-](?:{SHORT_KEY_WORDS}))["']?[ \t]*[=:][ \t]*{LINE_VALUE}"#
            ),
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

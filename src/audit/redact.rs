//! Secret redaction: everything the audit writes passes through a [`Redactor`] first, so no API key,
//! token or password the agent saw reaches the disk or the Incident's status.
//!
//! Layers, applied in this order:
//! 1. exact values the operator knows are secret (the Anthropic API key, configured env vars), in
//!    every encoding [`encodings`] promises (base64 at any alignment and wrapping, hex, JSON escapes,
//!    case changes);
//! 2. private key blocks ([`pem`]) and the edges of a head/tail cut ([`cut`]);
//! 3. well-known token shapes ([`patterns`]);
//! 4. the values of Kubernetes Secrets in `kubectl` output ([`kube_secret`]);
//! 5. for tool output, the whole output of a command that prints secret values raw ([`command`]).
//!
//! Each hidden value becomes `[REDACTED:<kind>]`; the text around it (the key name, the word `Bearer`)
//! stays, so the audit still shows what the agent looked at. Redaction is idempotent: markers are never
//! redacted again. Everything that leaves a session is a [`Redacted`] value, which only a
//! [`Redactor`] can make (see [`sealed`]).

mod command;
mod cut;
mod encodings;
mod kube_secret;
mod patterns;
mod pem;
pub mod sealed;

use std::borrow::Cow;

pub use sealed::{Redacted, SealError};

/// Configured secret values shorter than this are ignored. Short values (`admin`, `true`, `1234`) occur
/// all over ordinary command output: replacing every occurrence would garble the audit and, through the
/// positions of the markers, tell a reader which common word the secret is.
pub const MIN_SECRET_LEN: usize = 8;

/// Start of every redaction marker.
const MARKER_PREFIX: &str = "[REDACTED";

/// The marker that replaces a secret of the given kind.
fn marker(kind: &str) -> String {
    format!("{MARKER_PREFIX}:{kind}]")
}

/// Whether `text` is (the start of) a marker, so later rules leave it alone.
fn is_marker(text: &str) -> bool {
    text.starts_with(MARKER_PREFIX)
}

/// Hides secrets in text and JSON before they are recorded. Cheap to clone; the pattern rules are
/// compiled once per process. Its `Debug` output shows how many secrets it holds, never their values.
#[derive(Clone, Default)]
pub struct Redactor {
    /// The configured values, as given (trimmed).
    secrets: Vec<String>,
    /// Every encoded form of every value, longest first.
    forms: Vec<String>,
    /// One automaton over `forms`.
    matcher: Option<encodings::FormMatcher>,
    /// One over the base64 forms only, for wrapped blocks.
    base64_matcher: Option<encodings::FormMatcher>,
    base64_forms: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &format_args!("<{} hidden>", self.secrets.len()))
            .finish()
    }
}

impl Redactor {
    /// A redactor for these exact secret values (the API key, values of configured secret env vars)
    /// on top of the built-in patterns. Values shorter than [`MIN_SECRET_LEN`] are ignored.
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut redactor = Redactor::default();
        for secret in secrets {
            redactor.add_secret(secret);
        }
        redactor
    }

    /// Reads the named env vars' values as secrets (missing or non-UTF-8 ones skipped).
    pub fn from_env_vars<I: IntoIterator<Item = S>, S: AsRef<str>>(names: I) -> Self {
        Redactor::new(
            names
                .into_iter()
                .filter_map(|name| std::env::var(name.as_ref()).ok()),
        )
    }

    /// Adds one exact value to hide, in every encoding [`encodings`] lists. Ignored when shorter than
    /// [`MIN_SECRET_LEN`].
    pub fn add_secret(&mut self, value: String) {
        // Surrounding whitespace is usually a trailing newline from a mounted file, not the secret.
        let value = value.trim();
        if value.chars().count() < MIN_SECRET_LEN || self.secrets.iter().any(|s| s == value) {
            return;
        }
        self.secrets.push(value.to_string());
        for form in encodings::forms_of(value) {
            if !self.forms.contains(&form) {
                self.forms.push(form);
            }
        }
        self.forms
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        self.matcher = encodings::FormMatcher::new(&self.forms);
        self.base64_forms.extend(encodings::base64_forms_of(value));
        self.base64_matcher = encodings::FormMatcher::new(&self.base64_forms);
    }

    /// How many configured values this redactor hides (each in all its forms).
    pub fn configured_secrets(&self) -> usize {
        self.secrets.len()
    }

    /// `text` with every secret replaced by a marker; borrowed unchanged when nothing was found.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut current = Cow::Borrowed(text);
        if let Some(matcher) = &self.matcher {
            let mut ranges = matcher.ranges(&current);
            if let Some(base64) = &self.base64_matcher {
                ranges.extend(encodings::wrapped_base64_ranges(&current, base64));
            }
            current = replace_if_any(current, ranges, "secret");
        }
        let ranges = pem::private_key_ranges(&current);
        current = replace_if_any(current, ranges, "private_key");
        let ranges = cut::cut_edge_ranges(&current);
        current = replace_if_any(current, ranges, "cut");
        if let Cow::Owned(replaced) = patterns::redact_patterns(&current) {
            current = Cow::Owned(replaced);
        }
        let ranges = kube_secret::secret_value_ranges(&current);
        replace_if_any(current, ranges, "secret_data")
    }

    /// Redacts what `command` printed: like [`redact`](Self::redact), but the whole output of a
    /// command that prints secret values raw (`-o jsonpath` on a Secret, `base64 -d`, `cat` of a
    /// secret file) is hidden.
    pub fn redact_command_output<'a>(&self, command: &str, output: &'a str) -> Cow<'a, str> {
        if !output.trim().is_empty() && command::output_is_secret(command) {
            return Cow::Owned(marker("command_output"));
        }
        self.redact(output)
    }

    /// Redacts every string (not keys) in a JSON value in place.
    pub fn redact_json(&self, value: &mut serde_json::Value) {
        match value {
            serde_json::Value::String(text) => {
                if let Cow::Owned(redacted) = self.redact(text) {
                    *text = redacted;
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    self.redact_json(item);
                }
            }
            serde_json::Value::Object(fields) => {
                for (_, field) in fields.iter_mut() {
                    self.redact_json(field);
                }
            }
            serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {
            }
        }
    }
}

/// `text` with `ranges` (any order, possibly overlapping) replaced by the marker of `kind`.
fn replace_if_any<'a>(
    text: Cow<'a, str>,
    mut ranges: Vec<std::ops::Range<usize>>,
    kind: &str,
) -> Cow<'a, str> {
    if ranges.is_empty() {
        return text;
    }
    ranges.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
    Cow::Owned(replace_ranges(&text, &ranges, &marker(kind)))
}

/// `text` with each (sorted, disjoint) range replaced by `replacement`, except ranges that already
/// hold a marker.
fn replace_ranges(text: &str, ranges: &[std::ops::Range<usize>], replacement: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied_to = 0;
    for range in ranges {
        let Some(value) = text.get(range.clone()) else {
            continue;
        };
        if is_marker(value) || range.start < copied_to {
            continue;
        }
        out.push_str(&text[copied_to..range.start]);
        out.push_str(replacement);
        copied_to = range.end;
    }
    out.push_str(&text[copied_to..]);
    out
}

#[cfg(test)]
fn base64_standard(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn none() -> Redactor {
        Redactor::new(Vec::new())
    }

    /// Asserts that `secret` is gone from the redacted `text` and the given marker took its place.
    #[track_caller]
    fn assert_hidden(redactor: &Redactor, text: &str, secret: &str, kind: &str) -> String {
        let out = redactor.redact(text).into_owned();
        assert!(!out.contains(secret), "{secret:?} survived in {out:?}");
        assert!(
            out.contains(&marker(kind)),
            "no [REDACTED:{kind}] in {out:?}"
        );
        // Idempotent: a second pass changes nothing.
        assert_eq!(redactor.redact(&out), out);
        out
    }

    #[track_caller]
    fn assert_untouched(text: &str) {
        let out = none().redact(text);
        assert!(
            matches!(out, Cow::Borrowed(_)),
            "changed {text:?} into {out:?}"
        );
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_standard(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn exact_secret_and_its_base64_are_hidden() {
        let key = "sk-live-0123456789abcdef";
        let r = Redactor::new([key.to_string()]);
        let out = assert_hidden(&r, &format!("key={key} again {key}"), key, "secret");
        assert_eq!(out, "key=[REDACTED:secret] again [REDACTED:secret]");
        let encoded = base64_standard(key.as_bytes());
        assert_hidden(&r, &format!("raw: {encoded}"), &encoded, "secret");
        let from_file = base64_standard(format!("{key}\n").as_bytes());
        assert_hidden(&r, &format!("key: {from_file}"), &from_file, "secret");
    }

    #[test]
    fn debug_output_does_not_show_secrets() {
        let r = Redactor::new(["super-secret-value".to_string()]);
        let debug = format!("{r:?}");
        assert!(!debug.contains("super-secret-value"), "{debug}");
        assert!(debug.contains("1 hidden"), "{debug}");
    }

    #[test]
    fn short_secrets_are_ignored_and_whitespace_is_trimmed() {
        let r = Redactor::new(["admin".to_string(), "  longenough-secret\n".to_string()]);
        assert_eq!(r.redact("user admin"), "user admin");
        assert_eq!(r.redact("x longenough-secret y"), "x [REDACTED:secret] y");
    }

    #[test]
    fn longer_secret_wins_over_its_prefix() {
        let r = Redactor::new(["abcdefgh".to_string(), "abcdefgh-ijklmnop".to_string()]);
        assert_eq!(r.redact("v=abcdefgh-ijklmnop"), "v=[REDACTED:secret]");
    }

    #[test]
    fn from_env_vars_reads_values_and_skips_missing() {
        // Setting variables needs `unsafe` in edition 2024 (and the crate forbids it), so this reads a
        // variable every test process has.
        let path = std::env::var("PATH").expect("tests run with PATH set");
        assert!(
            path.trim().chars().count() >= MIN_SECRET_LEN,
            "PATH too short: {path}"
        );
        let r = Redactor::from_env_vars(["PATH", "INCIDENT_OPERATOR_AUDIT_SURELY_UNSET"]);
        assert_eq!(
            r.configured_secrets(),
            1,
            "PATH; the unset variable is skipped"
        );
        assert_hidden(&r, &format!("PATH is {path}"), path.trim(), "secret");
    }

    #[test]
    fn bearer_token_keeps_the_word_bearer() {
        let out = assert_hidden(
            &none(),
            "Authorization: Bearer abc123.DEF-456_ghi~jkl",
            "abc123",
            "bearer",
        );
        assert_eq!(out, "Authorization: Bearer [REDACTED:bearer]");
        assert_hidden(
            &none(),
            "curl -H 'authorization: basic dXNlcjpwYXNzd29yZA=='",
            "dXNlcjpwYXNzd29yZA",
            "bearer",
        );
        assert_untouched("the API uses Bearer authentication");
    }

    #[test]
    fn private_key_block_is_hidden_whole() {
        let text = "before\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1234\nabcd+/==\n\
                    -----END RSA PRIVATE KEY-----\nafter";
        let out = assert_hidden(&none(), text, "MIIEpAIBAAKCAQEA1234", "private_key");
        assert_eq!(out, "before\n[REDACTED:private_key]\nafter");
        // Encrypted keys carry headers; OpenSSH keys another label; a cut-off block is still hidden.
        assert_hidden(
            &none(),
            "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,AB12\n\nMHcCAQEE\n-----END EC PRIVATE KEY-----",
            "MHcCAQEE",
            "private_key",
        );
        assert_hidden(
            &none(),
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA",
            "b3BlbnNzaC1rZXktdjEAAAA",
            "private_key",
        );
        // Public keys and certificates are not secret.
        assert_untouched(
            "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----",
        );
        assert_untouched(
            "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYI\n-----END PUBLIC KEY-----",
        );
    }

    #[test]
    fn aws_access_key_id_and_secret() {
        assert_hidden(
            &none(),
            "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
            "AKIAIOSFODNN7EXAMPLE",
            "aws_access_key_id",
        );
        assert_hidden(
            &none(),
            "\"AccessKeyId\": \"ASIAY34FZKBOKMUTVV7A\"",
            "ASIAY34FZKBOKMUTVV7A",
            "aws_access_key_id",
        );
        let out = assert_hidden(
            &none(),
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI",
            "aws_secret",
        );
        assert_eq!(out, "aws_secret_access_key = [REDACTED:aws_secret]");
        assert_hidden(
            &none(),
            "\"SecretAccessKey\": \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"",
            "wJalrXUtnFEMI",
            "aws_secret",
        );
        // Role ids and words that merely start with AKIA are not keys.
        assert_untouched("AROAY34FZKBOKMUTVV7A AKIASHORT");
    }

    #[test]
    fn github_tokens() {
        for token in [
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
            "gho_16C7e42F292c6912E7710c838347Ae178B4a",
            "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789",
        ] {
            assert_hidden(&none(), &format!("GH={token} done"), token, "github_token");
        }
        assert_untouched("see the ghp_ prefix docs");
    }

    #[test]
    fn slack_tokens() {
        let token = "xoxb-2345678901-3456789012345-AbCdEfGhIjKlMnOpQrStUvWx";
        assert_hidden(&none(), &format!("SLACK {token}"), token, "slack_token");
        assert_hidden(
            &none(),
            "xoxp-1234567890-abcdef",
            "xoxp-1234567890-abcdef",
            "slack_token",
        );
        assert_untouched("xoxo-hugs and kisses");
    }

    #[test]
    fn anthropic_and_openai_keys() {
        let ant = "sk-ant-api03-AbCdEf0123456789_GhIjKlMnOpQrStUvWxYz-0123456789AA";
        let out = assert_hidden(&none(), &format!("key {ant}"), ant, "anthropic_key");
        assert_eq!(out, "key [REDACTED:anthropic_key]");
        let openai = "sk-proj-Ab3dEf0123456789GhIjKlMnOpQrStUv";
        assert_hidden(&none(), &format!("OPENAI {openai}"), openai, "openai_key");
        assert_hidden(
            &none(),
            "sk-0123456789abcdefABCDEF0123456789abcdefABCDEF01",
            "0123456789abcdef",
            "openai_key",
        );
        assert_untouched(
            "disk-pressure-kubelet-eviction-threshold and sk-some-long-kebab-case-name",
        );
    }

    #[test]
    fn gcp_service_account_private_key() {
        let text = r#"{"type": "service_account", "private_key_id": "abc", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n", "client_email": "a@b.iam.gserviceaccount.com"}"#;
        let out = assert_hidden(&none(), text, "MIIEvQIBADANBg", "private_key");
        assert!(
            out.contains("\"client_email\": \"a@b.iam.gserviceaccount.com\""),
            "{out}"
        );
        assert!(out.contains("\"private_key_id\": \"abc\""), "{out}");
        // Without a PEM inside, the JSON rule alone still hides it.
        assert_hidden(
            &none(),
            r#""private_key": "c29tZXRoaW5n\nZWxzZQ==""#,
            "c29tZXRoaW5n",
            "private_key",
        );
    }

    #[test]
    fn jwt() {
        let jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJpc3MiOiJrdWJlcm5ldGVzIiwic3ViIjoic2EifQ.c2lnbmF0dXJlLWJ5dGVz";
        let out = assert_hidden(&none(), &format!("token is {jwt}."), jwt, "jwt");
        assert_eq!(out, "token is [REDACTED:jwt].");
        assert_untouched("eyJ alone, or eyJhbGciOiJSUzI1NiJ9 with no payload");
    }

    #[test]
    fn key_value_credentials_hide_only_the_value() {
        let r = none();
        let out = assert_hidden(
            &r,
            "DB_PASSWORD=hunter2\nHOME=/root",
            "hunter2",
            "credential",
        );
        assert_eq!(out, "DB_PASSWORD=[REDACTED:credential]\nHOME=/root");
        assert_eq!(
            r.redact("passwd: s3cret!\nsecret: 'a b c'\nurl?token=abc123&x=1"),
            "passwd: [REDACTED:credential]\nsecret: '[REDACTED:credential]'\nurl?token=[REDACTED:credential]&x=1"
        );
        assert_eq!(
            r.redact(r#"{"apiKey": "k-123 456", "user": "bob"}"#),
            r#"{"apiKey": "[REDACTED:credential]", "user": "bob"}"#
        );
        assert_eq!(
            r.redact("mysql --password s3cr3t --user bob"),
            "mysql --password [REDACTED:credential] --user bob"
        );
        // Keys that merely mention a secret, placeholders and references are left alone.
        assert_untouched(
            "secretName: db-creds\ntokenRef: x\nPWD=/home/agent\npassword: ${DB_PASSWORD}\nautomountServiceAccountToken: false\nsecret:\n  secretName: x\nimagePullSecrets: []\npassword: ********",
        );
    }

    #[test]
    fn container_env_values_named_like_secrets() {
        let yaml = "    env:\n    - name: DB_PASSWORD\n      value: hunter22\n    - name: LOG_LEVEL\n      value: debug\n";
        let out = assert_hidden(&none(), yaml, "hunter22", "credential");
        assert!(out.contains("value: debug"), "{out}");
        let json = "{\n  \"name\": \"API_TOKEN\",\n  \"value\": \"t0k3n-value\"\n}";
        assert_hidden(&none(), json, "t0k3n-value", "credential");
    }

    #[test]
    fn kubernetes_secret_yaml_values() {
        let yaml = "apiVersion: v1\ndata:\n  password: aHVudGVyMg==\n  username: YWRtaW4=\nkind: Secret\nmetadata:\n  name: db\n";
        let out = assert_hidden(&none(), yaml, "aHVudGVyMg==", "secret_data");
        assert!(!out.contains("YWRtaW4="), "{out}");
        assert!(
            out.contains("  username: [REDACTED:secret_data]\nkind: Secret"),
            "{out}"
        );
    }

    #[test]
    fn negatives_ordinary_output_is_untouched() {
        assert_untouched(
            "NAME                        READY   STATUS    RESTARTS   AGE\n\
             checkout-api-7d9f8b6c4-x2x9z   1/1     Running   0          3d",
        );
        // Git SHAs, UUIDs, image digests and base64 outside secret contexts.
        assert_untouched("commit 3f786850e387550fdab836ed7e6dc881de23001b");
        assert_untouched("uid: 2886f5df-6a3b-4c1e-9d2a-0b1c2d3e4f50");
        assert_untouched(
            "image: nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31",
        );
        assert_untouched("caBundle: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM=");
        assert_untouched("apiVersion: v1\ndata:\n  port: \"8080\"\nkind: ConfigMap\n");
        assert_untouched("The password policy requires rotation; tokens expire after 1h.");
        assert_untouched("résumé — ünïcödé text with no secrets, 日本語");
    }

    #[test]
    fn redact_json_touches_values_not_keys() {
        let key = "my-api-key-0123456789";
        let r = Redactor::new([key.to_string()]);
        let mut value = json!({
            "my-api-key-0123456789": 1,
            "stdout": format!("export KEY={key}"),
            "nested": [{"x": key}, 5, null, true],
        });
        r.redact_json(&mut value);
        assert_eq!(
            value,
            json!({
                "my-api-key-0123456789": 1,
                "stdout": "export KEY=[REDACTED:secret]",
                "nested": [{"x": "[REDACTED:secret]"}, 5, null, true],
            })
        );
    }

    #[test]
    fn one_megabyte_of_mixed_output_is_redacted_and_stays_borrowed_when_clean() {
        let line = "pod/checkout-api-7d9f8b6c4-x2x9z  1/1  Running  0  3d  10.0.0.12  node-a  sha 3f786850e387550f\n";
        let clean = line.repeat(1_000_000 / line.len());
        assert_untouched(&clean);
        let dirty = format!("{clean}Authorization: Bearer abcdef123456\n{clean}");
        let out = none().redact(&dirty);
        assert_eq!(out.matches("[REDACTED:bearer]").count(), 1);
    }
}

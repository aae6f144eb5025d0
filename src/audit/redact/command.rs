//! Output whose secrecy only the command shows: `kubectl get secret db -o jsonpath='{.data.password}'`
//! prints a bare base64 string, `| base64 -d` its decoded form, `cat /etc/secrets/password` the
//! mounted value. No pattern can tell those from ordinary words, so when the command reads a Secret's
//! values in a raw form, decodes base64, or reads a file under a secret path, its whole output is
//! hidden. Listing Secrets (`kubectl get secrets`, `describe secret`, which shows only sizes) and the
//! `-o yaml|json` forms (handled value by value in `kube_secret`) stay readable.

use std::sync::LazyLock;

use regex::Regex;

/// `kubectl|oc get secret[s][/name] ... -o jsonpath|go-template|template|custom-columns`, in any order
/// within one pipeline stage.
static RAW_SECRET_READ: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?-u:\b)(?:kubectl|oc)(?-u:\b)[^|;&\n]*(?-u:\b)get(?-u:\b)[^|;&\n]*(?-u:\b)secrets?(?-u:\b)[^|;&\n]*(?:jsonpath|go-template|template|custom-columns)",
    )
    .unwrap_or_else(|e| panic!("raw secret read: {e}"))
});
/// `base64 -d`, `--decode`, `-D` (macOS), `openssl base64 -d`, and in-script decoders.
static BASE64_DECODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?-u:\b)base64(?-u:\b)[^|;&\n]*(?:[ \t]-[a-z]*[dD][a-z]*(?-u:\b)|--decode)|b64decode|base64_decode|Base64\.decode")
        .unwrap_or_else(|e| panic!("base64 decode: {e}"))
});
/// A file reader on a path that names a secret (`/etc/secrets/…`, `/var/run/secrets/…/token`,
/// `secret-volume/password`).
static SECRET_FILE_READ: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?-u:\b)(?:cat|head|tail|less|more|xxd|od|strings|hexdump|tac|nl|sed|awk|grep)(?-u:\b)[^|;&\n]*/[^ \t|;&\n]*secret")
        .unwrap_or_else(|e| panic!("secret file read: {e}"))
});

/// Whether everything `command` prints should be hidden.
pub(super) fn output_is_secret(command: &str) -> bool {
    RAW_SECRET_READ.is_match(command)
        || BASE64_DECODE.is_match(command)
        || SECRET_FILE_READ.is_match(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_reads_are_secret_listings_are_not() {
        for secret in [
            "kubectl get secret db -o jsonpath='{.data.password}'",
            "kubectl -n shop get secrets/db -o go-template='{{.data.password}}'",
            "oc get secret db --template={{.data.token}}",
            "kubectl get secret db -o yaml | grep password | awk '{print $2}' | base64 -d",
            "echo aHVudGVyMg== | base64 --decode",
            "python3 -c 'import base64;print(base64.b64decode(x))'",
            "cat /etc/secrets/db/password",
            "head -c 100 /var/run/secrets/kubernetes.io/serviceaccount/token",
        ] {
            assert!(output_is_secret(secret), "{secret}");
        }
        for ordinary in [
            "kubectl get secrets",
            "kubectl describe secret db",
            "kubectl get secret db -o yaml",
            "kubectl get pods -o jsonpath='{.items[*].metadata.name}'",
            "base64 --help",
            "cat /etc/os-release",
        ] {
            assert!(!output_is_secret(ordinary), "{ordinary}");
        }
    }
}

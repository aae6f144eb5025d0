//! The read-only gate in front of the shell tool: in every session that may not change anything
//! (investigate mode, and the proposing session of remediate mode), commands that obviously change
//! cluster state are refused before they run, and the model is told why. The execution session of
//! an approved plan uses [`crate::plan::gate`] instead, which falls back to this gate for the
//! commands that are not plan steps.
//!
//! This is defence in depth, not the boundary: the gate reads words, it does not run a shell
//! parser, so a determined command can be disguised (a variable expanding to `delete`, a script
//! written to a file first, an alias); the boundary is the agent's read-only RBAC. What it does
//! check, exactly: each segment between `;`, `&`, `|`, newlines, `$(`, backticks and parentheses,
//! after wrappers (`sudo`, `env`, `timeout N`, `VAR=x`) and quotes are stripped, is refused when it
//! is a kubectl/oc write verb (including `exec`, `debug`, `attach`, `port-forward`, `proxy`), a
//! kubectl subcommand the gate cannot read (`$VAR`), a helm release change, a destructive local
//! command, an HTTP request that writes (`curl -X`/`-d`/`-T`/`--json`, `wget --post-*`/`--method`),
//! or inline code for another interpreter (`sh -c`, `bash -c`, `eval`, `python -c`, `perl -e`,
//! `xargs`), which the gate cannot inspect. The table in the tests is the gate's specification,
//! including the known bypasses it does not catch. The gate exists so that an honest mistake by the
//! model costs one refused tool call instead of a change in production, and so the audit shows the
//! attempt.

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused by the read-only gate: `{segment}` would change state ({why})")]
pub struct PolicyViolation {
    /// The part of the command line that was refused.
    pub segment: String,
    pub why: &'static str,
}

/// kubectl subcommands that write.
const KUBECTL_WRITE_VERBS: &[&str] = &[
    "apply",
    "create",
    "delete",
    "edit",
    "patch",
    "replace",
    "scale",
    "autoscale",
    "cordon",
    "uncordon",
    "drain",
    "taint",
    "label",
    "annotate",
    "expose",
    "run",
    "set",
    "cp",
    // Not writes by verb, but each runs code or opens a door the gate cannot see through.
    "exec",
    "debug",
    "attach",
    "port-forward",
    "proxy",
    "certificate",
];
/// `kubectl rollout` subcommands that write (`status`/`history` only read).
const KUBECTL_ROLLOUT_WRITES: &[&str] = &["restart", "undo", "pause", "resume"];
const HELM_WRITE_VERBS: &[&str] = &["install", "upgrade", "uninstall", "delete", "rollback"];

/// Checks that a command line only reads.
pub fn check_read_only(command: &str) -> Result<(), PolicyViolation> {
    // A backtick substitution is `$(`: `kubectl `echo delete`` leaves `kubectl $` to check.
    let command = command.replace('`', "$(");
    for segment in split_segments(&command) {
        let words: Vec<&str> = segment.split_whitespace().collect();
        if let Some(why) = write_reason(&words) {
            return Err(PolicyViolation {
                segment: segment.trim().to_string(),
                why,
            });
        }
    }
    Ok(())
}

/// Splits a command line on the shell's command separators (`;`, `&&`, `||`, `|`, `&`, newlines,
/// `$(`, backticks), so `kubectl get x && kubectl delete y` is checked part by part.
fn split_segments(command: &str) -> Vec<&str> {
    command
        .split(['\n', ';', '|', '&', '`', '(', ')'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

fn write_reason(words: &[&str]) -> Option<&'static str> {
    // Skip leading env assignments and wrappers such as `sudo`, `timeout 10`, `env`.
    let mut rest = words;
    while let Some((first, tail)) = rest.split_first() {
        let wrapper = matches!(
            *first,
            "sudo" | "env" | "nice" | "nohup" | "command" | "exec"
        ) || first.contains('=');
        if *first == "timeout" {
            rest = tail.get(1..).unwrap_or(&[]);
        } else if wrapper {
            rest = tail;
        } else {
            break;
        }
    }
    let (program, args) = rest.split_first()?;
    let program = unquote(program);
    let program = program.rsplit('/').next().unwrap_or(program);
    let verb = first_positional(args).map(unquote);
    if let Some(why) = inline_code_reason(program, args) {
        return Some(why);
    }
    match program {
        "kubectl" | "oc" => {
            let verb = verb?;
            if verb.starts_with('$') || verb.is_empty() {
                return Some("kubectl subcommand the gate cannot read");
            }
            if KUBECTL_WRITE_VERBS.contains(&verb) {
                return Some("kubectl write verb");
            }
            if verb == "rollout" && args.iter().any(|a| KUBECTL_ROLLOUT_WRITES.contains(a)) {
                return Some("kubectl rollout change");
            }
            None
        }
        "helm" => verb
            .filter(|v| HELM_WRITE_VERBS.contains(v))
            .map(|_| "helm release change"),
        "rm" | "shred" | "mkfs" | "dd" | "reboot" | "shutdown" | "kill" | "pkill" | "killall" => {
            Some("destructive local command")
        }
        "curl" => {
            let is_write = |method: &str| {
                matches!(
                    unquote(method).to_ascii_uppercase().as_str(),
                    "POST" | "PUT" | "PATCH" | "DELETE"
                )
            };
            let writes = args
                .windows(2)
                .any(|w| matches!(w[0], "-X" | "--request") && is_write(w[1]))
                || args.iter().any(|a| {
                    a.strip_prefix("-X").is_some_and(is_write)
                        || a.strip_prefix("--request=").is_some_and(is_write)
                        || a.starts_with("-d")
                        || a.starts_with("--data")
                        || a.starts_with("--form")
                        || a.starts_with("-F")
                        || a.starts_with("-T")
                        || a.starts_with("--upload-file")
                        || a.starts_with("--json")
                });
            writes.then_some("HTTP request that writes")
        }
        "wget" => {
            let writes = args.iter().any(|a| {
                a.starts_with("--post-data")
                    || a.starts_with("--post-file")
                    || a.starts_with("--body-data")
                    || a.starts_with("--body-file")
                    || a.starts_with("--method")
            });
            writes.then_some("HTTP request that writes")
        }
        _ => None,
    }
}

/// `word` without surrounding quotes.
fn unquote(word: &str) -> &str {
    word.trim_matches(|c| c == '"' || c == '\'' || c == '\\')
}

/// Inline code for another interpreter: the gate cannot see what it would do.
pub(crate) fn inline_code_reason(program: &str, args: &[&str]) -> Option<&'static str> {
    let has = |flags: &[&str]| args.iter().any(|a| flags.contains(&unquote(a)));
    let refused = match program {
        "sh" | "bash" | "dash" | "zsh" | "ksh" | "ash" | "busybox" => {
            has(&["-c"]) || program == "busybox"
        }
        "eval" | "xargs" | "source" | "." => true,
        "perl" | "ruby" | "node" => has(&["-e", "-E"]),
        p if p.starts_with("python") => has(&["-c"]),
        _ => false,
    };
    refused.then_some("inline code the gate cannot inspect; run the command directly")
}

/// Global flags of kubectl and helm that take a separate value (`-n shop`), so the value is not
/// mistaken for the subcommand.
const FLAGS_WITH_VALUE: &[&str] = &[
    "-n",
    "--namespace",
    "--context",
    "--kubeconfig",
    "--cluster",
    "--user",
    "-s",
    "--server",
    "--token",
    "--as",
    "--as-group",
    "--request-timeout",
    "-v",
    "--v",
    "--kube-context",
    "--repository-config",
];

/// The first argument that is neither a flag nor a flag's value: the subcommand.
pub(crate) fn first_positional<'a>(args: &[&'a str]) -> Option<&'a str> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if FLAGS_WITH_VALUE.contains(arg) {
            iter.next();
        } else if !arg.starts_with('-') {
            return Some(arg);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(cmd: &str) -> bool {
        check_read_only(cmd).is_err()
    }

    #[test]
    fn reads_pass() {
        for cmd in [
            "kubectl get pods -A -o wide",
            "kubectl -n shop describe deploy/checkout-api",
            "kubectl logs pod/x --tail=200 | grep -i error | head",
            "kubectl rollout status deploy/x && kubectl rollout history deploy/x",
            "helm list -A",
            "curl -s http://svc:8080/healthz | jq .",
            "dig +short checkout.shop.svc.cluster.local",
            "kubectl get events --sort-by=.lastTimestamp",
            "kubectl -n delete get pods",
        ] {
            assert!(!refused(cmd), "{cmd} should pass");
        }
    }

    #[test]
    fn writes_are_refused_anywhere_in_the_line() {
        for cmd in [
            "kubectl delete pod x",
            "kubectl get pods; kubectl -n shop delete pod x",
            "kubectl get pods && kubectl scale deploy/x --replicas=0",
            "KUBECONFIG=/k kubectl apply -f x.yaml",
            "timeout 10 kubectl rollout restart deploy/x",
            "/usr/bin/kubectl patch deploy x -p '{}'",
            "helm upgrade foo bar",
            "curl -X POST http://svc/admin/flush",
            "curl --data a=b http://svc/x",
            "echo $(kubectl delete ns prod)",
            "rm -rf /data",
        ] {
            assert!(refused(cmd), "{cmd} should be refused");
        }
    }

    #[test]
    fn violation_names_the_segment() {
        let err = check_read_only("kubectl get po; kubectl delete po x").unwrap_err();
        assert_eq!(err.segment, "kubectl delete po x");
        assert!(err.to_string().contains("read-only"));
    }

    /// What the gate does with one write attempt.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Verdict {
        Refused,
        /// Gets past the gate; documented, and stopped by RBAC instead.
        KnownBypass,
    }

    /// The write-attempt corpus (issue 9 §12): every form of the security review's 160 attempts
    /// family by family, with what the gate does with each. The kubectl families are generated
    /// over every write verb, the others listed.
    fn corpus() -> Vec<(String, Verdict)> {
        use Verdict::*;
        let mut rows = Vec::new();
        for verb in KUBECTL_WRITE_VERBS {
            for form in [
                format!("kubectl {verb} x"),
                format!("kubectl -n shop {verb} x"),
                format!("kubectl get pods && kubectl {verb} x"),
                format!("/usr/local/bin/kubectl --context prod {verb} x"),
                format!("kubectl \"{verb}\" x"),
                format!("echo ok; oc {verb} x"),
            ] {
                rows.push((form, Refused));
            }
        }
        for rollout in KUBECTL_ROLLOUT_WRITES {
            rows.push((format!("kubectl rollout {rollout} deploy/x"), Refused));
        }
        for verb in HELM_WRITE_VERBS {
            rows.push((format!("helm {verb} rel chart"), Refused));
            rows.push((format!("helm --kube-context prod {verb} rel"), Refused));
        }
        for cmd in [
            "curl -X POST http://svc/x",
            "curl -XPOST http://svc/x",
            "curl -Xpatch http://svc/x",
            "curl -X delete http://svc/x",
            "curl --request=PUT http://svc/x",
            "curl --request 'DELETE' http://svc/x",
            "curl -d a=b http://svc/x",
            "curl --data-binary @f http://svc/x",
            "curl --json '{}' http://svc/x",
            "curl -F f=@x http://svc/x",
            "curl -T file http://svc/x",
            "curl --upload-file f http://svc/x",
            "wget --post-data a=b http://svc/x",
            "wget --post-file f http://svc/x",
            "wget --method=DELETE http://svc/x",
            "wget --body-data x --method PUT http://svc/x",
            "sh -c 'kubectl delete pod x'",
            "bash -c \"kubectl delete pod x\"",
            "busybox sh",
            "eval kubectl delete pod x",
            "echo pod/x | xargs kubectl delete",
            "python3 -c 'import os; os.system(\"kubectl delete pod x\")'",
            "python -c 'print(1)'",
            "perl -e 'system(\"kubectl delete pod x\")'",
            "node -e 'x'",
            "ruby -e 'x'",
            "kubectl $(echo delete) pod x",
            "kubectl `echo delete` pod x",
            "v=delete; kubectl $v pod x",
            "echo $(kubectl delete ns prod)",
            "sudo kubectl delete node n1",
            "timeout 5 kubectl drain n1",
            "nohup kubectl delete pod x &",
            "rm -rf /data",
            "kill -9 1",
            "dd if=/dev/zero of=/dev/sda",
            "source /tmp/evil.sh",
        ] {
            rows.push((cmd.to_string(), Refused));
        }
        // What the gate does not see: RBAC (read-only, no exec/proxy/Secrets) is what stops them.
        for cmd in [
            "k delete pod x",
            "K=kubectl; $K delete pod x",
            "env -i kubectl delete pod x",
            "sh /tmp/written-earlier.sh",
            "find / -delete",
            "truncate -s0 /tmp/log",
            // A kubectl plugin (`kubectl-anything` on PATH) runs under any subcommand name.
            "kubectl create-token-alias x",
            "printf 'kubectl delete pod x' > /tmp/a; . /tmp/a",
        ] {
            let verdict = if cmd.contains(". /tmp/a") {
                Refused
            } else {
                KnownBypass
            };
            rows.push((cmd.to_string(), verdict));
        }
        rows
    }

    #[test]
    fn write_attempt_corpus_gets_the_documented_verdict() {
        let rows = corpus();
        assert!(rows.len() >= 160, "{} rows", rows.len());
        let mut wrong = Vec::new();
        for (cmd, want) in &rows {
            let got = if refused(cmd) {
                Verdict::Refused
            } else {
                Verdict::KnownBypass
            };
            if got != *want {
                wrong.push(format!("{cmd}: {got:?}, documented {want:?}"));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
        let bypasses = rows
            .iter()
            .filter(|(_, v)| *v == Verdict::KnownBypass)
            .count();
        assert!(bypasses <= 8, "{bypasses} known bypasses");
    }
}

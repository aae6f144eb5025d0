//! The gate in front of the shell tool: in investigate mode, commands that obviously change cluster
//! state are refused before they run, and the model is told why.
//!
//! This is defence in depth, not the boundary: a determined command can always be disguised
//! (`sh -c "$(echo ...)"`), so the boundary is the agent's read-only RBAC. The gate exists so that an
//! honest mistake by the model costs one refused tool call instead of a change in production, and so
//! the audit shows the attempt.

use crate::incident::Mode;

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused in investigate (read-only) mode: `{segment}` would change state ({why})")]
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
];
/// `kubectl rollout` subcommands that write (`status`/`history` only read).
const KUBECTL_ROLLOUT_WRITES: &[&str] = &["restart", "undo", "pause", "resume"];
const HELM_WRITE_VERBS: &[&str] = &["install", "upgrade", "uninstall", "delete", "rollback"];

/// Checks a command line against the mode's rules.
pub fn check_command(mode: Mode, command: &str) -> Result<(), PolicyViolation> {
    if mode == Mode::Remediate {
        return Ok(());
    }
    for segment in split_segments(command) {
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
    let program = program.rsplit('/').next().unwrap_or(program);
    let verb = first_positional(args);
    match program {
        "kubectl" | "oc" => {
            let verb = verb?;
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
            let writes = args.windows(2).any(|w| {
                matches!(w[0], "-X" | "--request")
                    && matches!(
                        w[1].to_ascii_uppercase().as_str(),
                        "POST" | "PUT" | "PATCH" | "DELETE"
                    )
            }) || args.iter().any(|a| {
                a.starts_with("-d")
                    || a.starts_with("--data")
                    || a.starts_with("--form")
                    || a.starts_with("-F")
                    || a.starts_with("-XPOST")
                    || a.starts_with("-XPUT")
                    || a.starts_with("-XDELETE")
                    || a.starts_with("-XPATCH")
            });
            writes.then_some("HTTP request that writes")
        }
        _ => None,
    }
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
fn first_positional<'a>(args: &[&'a str]) -> Option<&'a str> {
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
        check_command(Mode::Investigate, cmd).is_err()
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
    fn remediate_mode_allows_writes() {
        assert!(check_command(Mode::Remediate, "kubectl rollout undo deploy/x").is_ok());
    }

    #[test]
    fn violation_names_the_segment() {
        let err =
            check_command(Mode::Investigate, "kubectl get po; kubectl delete po x").unwrap_err();
        assert_eq!(err.segment, "kubectl delete po x");
        assert!(err.to_string().contains("read-only"));
    }
}

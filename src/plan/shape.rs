//! Whether a proposed step (or rollback) command is one simple command: a program and its
//! arguments, nothing the shell would turn into more than what a human reads.
//!
//! Sits between the `report` tool and the execution gate: a plan is approved as text and run
//! verbatim with `sh -c`, so every shell construct that makes the text mean more than one command
//! (`;`, `&&`, `|`, `$(…)`, backticks, `$VAR`, redirections, subshells, line continuations) is
//! refused at proposal time, with the construct named so the model can split the step. Inside
//! single quotes nothing is special; inside double quotes `$` and backticks still expand, as in
//! POSIX `sh`.

/// Why a command is not one simple command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    #[error("it uses {0}, which makes one step more than one plain command; split it into steps")]
    Construct(&'static str),
    #[error("its quotes are unbalanced")]
    Unbalanced,
    #[error("it is empty")]
    Empty,
}

/// The command's words (quotes removed) when it is one simple command.
pub fn simple_command_words(command: &str) -> Result<Vec<String>, ShapeError> {
    scan(command)?;
    let words = shlex::split(command).ok_or(ShapeError::Unbalanced)?;
    if words.is_empty() {
        return Err(ShapeError::Empty);
    }
    Ok(words)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Single,
    Double,
}

/// Walks the command as `sh` would tokenise it and stops at the first construct it refuses.
fn scan(command: &str) -> Result<(), ShapeError> {
    use ShapeError::Construct;
    let mut quote = Quote::None;
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Quote::Single, '\'') => quote = Quote::None,
            (Quote::Single, _) => {}
            (_, '\\') => {
                if chars.next() == Some('\n') {
                    return Err(Construct("a line continuation"));
                }
            }
            (_, '`') => return Err(Construct("backticks (command substitution)")),
            (_, '$') => {
                return Err(if chars.peek() == Some(&'(') {
                    Construct("`$(…)` (command substitution)")
                } else {
                    Construct("`$` (a variable or expansion the approver cannot read)")
                });
            }
            (Quote::Double, '"') => quote = Quote::None,
            (Quote::Double, _) => {}
            (Quote::None, '\'') => quote = Quote::Single,
            (Quote::None, '"') => quote = Quote::Double,
            (Quote::None, ';') => return Err(Construct("`;` (a command list)")),
            (Quote::None, '&') => return Err(Construct("`&` or `&&` (a list or background job)")),
            (Quote::None, '|') => return Err(Construct("`|` or `||` (a pipe or list)")),
            (Quote::None, '\n' | '\r') => return Err(Construct("a newline (several commands)")),
            (Quote::None, '>' | '<') => return Err(Construct("a redirection")),
            (Quote::None, '(' | ')') => return Err(Construct("parentheses (a subshell)")),
            (Quote::None, _) => {}
        }
    }
    if quote == Quote::None {
        Ok(())
    } else {
        Err(ShapeError::Unbalanced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_commands_give_their_words() {
        assert_eq!(
            simple_command_words("kubectl -n shop rollout undo deploy/web").unwrap(),
            ["kubectl", "-n", "shop", "rollout", "undo", "deploy/web"]
        );
        // Quoted operators are text, not shell.
        let words = simple_command_words(
            r#"kubectl -n shop patch deploy web -p '{"spec":{"replicas":3}}; $(x) | y'"#,
        )
        .unwrap();
        assert_eq!(
            words.last().unwrap(),
            r#"{"spec":{"replicas":3}}; $(x) | y"#
        );
        assert_eq!(
            simple_command_words(r#"kubectl annotate deploy web "note=a;b|c""#).unwrap()[4],
            "note=a;b|c"
        );
    }

    #[test]
    fn shell_constructs_are_named() {
        for (cmd, want) in [
            (
                "kubectl rollout undo deploy/web; kubectl delete ns prod",
                "`;`",
            ),
            ("kubectl rollout undo deploy/web && rm -rf /", "`&`"),
            ("kubectl get pods | xargs kubectl delete pod", "`|`"),
            ("kubectl delete pod $(kubectl get pods -o name)", "`$(…)`"),
            ("kubectl delete pod `cat /tmp/x`", "backticks"),
            ("kubectl -n $NS delete pod x", "`$`"),
            (r#"kubectl annotate x "a=$(id)""#, "`$(…)`"),
            ("kubectl get pods > /etc/passwd", "redirection"),
            ("(kubectl delete pod x)", "parentheses"),
            (
                "kubectl scale deploy/web --replicas=3\nkubectl delete ns x",
                "newline",
            ),
            (
                "kubectl scale deploy/web \\\n --replicas=0",
                "line continuation",
            ),
            ("kubectl delete pod x &", "`&`"),
        ] {
            let err = simple_command_words(cmd).unwrap_err().to_string();
            assert!(err.contains(want), "{cmd}: {err}");
        }
        assert_eq!(
            simple_command_words("kubectl annotate x 'a=b").unwrap_err(),
            ShapeError::Unbalanced
        );
        assert_eq!(simple_command_words("   ").unwrap_err(), ShapeError::Empty);
    }
}

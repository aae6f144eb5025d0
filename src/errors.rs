//! Error text shared by every subcommand: an error and its causes on one line, for logs, events,
//! status messages and HTTP answers.

/// The error and its sources, `: `-separated. A cause whose text the chain already contains
/// (wrappers that repeat their source) is not repeated.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {0}")]
    struct Outer(&'static str, #[source] std::io::Error);

    #[test]
    fn chains_sources_once() {
        let e = Outer("x.yaml", std::io::Error::other("permission denied"));
        assert_eq!(error_chain(&e), "cannot read x.yaml: permission denied");
    }
}

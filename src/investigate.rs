//! `incident-operator investigate`: one incident, run locally, no cluster needed. Reads an Incident
//! manifest, runs an agent session with live progress on the terminal, prints the report.
//!
//! Limits resolve as: built-in defaults, then the Incident's `spec.agent`, then the flags given on
//! the command line (the person at the terminal has the last word).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::agent::{AgentSettings, SessionInput, SessionResult, run_session};
use crate::anthropic::{ClientConfig, MessagesClient};
use crate::audit::Redactor;
use crate::errors::error_chain;
use crate::incident::{Incident, Outcome};
use crate::plan::approved::ApprovedPlanInput;
use crate::progress::TerminalProgress;

/// Environment variables whose values are always redacted from audits and tool results.
pub const ALWAYS_SECRET_ENV: &[&str] = &["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"];

/// Everything `investigate` needs, already parsed from flags.
#[derive(Debug, Clone)]
pub struct InvestigateOptions {
    pub file: PathBuf,
    pub audit_dir: PathBuf,
    pub model: Option<String>,
    pub max_turns: Option<u32>,
    pub command_timeout: Option<Duration>,
    pub session_timeout: Option<Duration>,
    pub token_budget: Option<u64>,
    pub max_response_tokens: Option<u32>,
    /// Extra env vars whose values must never appear in the audit or reach the model.
    pub secret_env: Vec<String>,
    /// Attempts per model request (retries included).
    pub max_attempts: u32,
    pub json: bool,
    pub quiet: bool,
    /// Execute this approved plan (`status.plan`, optionally with `approval`) instead of
    /// investigating.
    pub approved_plan: Option<PathBuf>,
}

/// Why `investigate` could not run a session at all.
#[derive(Debug, thiserror::Error)]
pub enum InvestigateError {
    #[error("cannot read incident file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid incident file {path}: {reason}")]
    InvalidIncident { path: PathBuf, reason: String },
    #[error("{0}")]
    Client(#[from] crate::anthropic::ApiError),
    #[error("cannot start the session: {0}")]
    Session(String),
}

/// The type fields of a manifest, read first so a wrong kind gets a clear error rather than a
/// confusing one about its spec.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestHeader {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
}

/// Reads and checks an Incident manifest (YAML or JSON).
pub fn load_incident(path: &Path) -> Result<Incident, InvestigateError> {
    let text = std::fs::read_to_string(path).map_err(|source| InvestigateError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |reason: String| InvestigateError::InvalidIncident {
        path: path.to_path_buf(),
        reason,
    };
    let header: ManifestHeader =
        serde_saphyr::from_str(&text).map_err(|e| invalid(first_line(&e.to_string())))?;
    let expected_api = format!(
        "{}/{}",
        crate::incident::API_GROUP,
        crate::incident::API_VERSION
    );
    if header.api_version != expected_api || header.kind != "Incident" {
        return Err(invalid(format!(
            "expected apiVersion {expected_api}, kind Incident; found apiVersion {:?}, kind {:?}",
            header.api_version, header.kind
        )));
    }
    let incident: Incident =
        serde_saphyr::from_str(&text).map_err(|e| invalid(first_line(&e.to_string())))?;
    if incident.spec.title.trim().is_empty() {
        return Err(invalid("spec.title is empty".into()));
    }
    Ok(incident)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or(s).to_string()
}

/// Resolves the session's settings: defaults, then the Incident's overrides, then the flags.
pub fn resolve_settings(incident: &Incident, options: &InvestigateOptions) -> AgentSettings {
    let mut s = AgentSettings::new(crate::anthropic::DEFAULT_MODEL)
        .with_overrides(incident.spec.agent.as_deref());
    if let Some(model) = &options.model {
        s.model = model.clone();
    }
    if let Some(turns) = options.max_turns {
        s.max_turns = turns;
    }
    if let Some(t) = options.command_timeout {
        s.command_timeout = t;
    }
    if let Some(t) = options.session_timeout {
        s.session_timeout = t;
    }
    if let Some(budget) = options.token_budget {
        s.token_budget = budget;
    }
    if let Some(max) = options.max_response_tokens {
        s.max_response_tokens = max;
    }
    s
}

/// Builds the redactor: the API key, the always-secret env vars and the ones named by flag.
pub fn redactor_for(extra_secret_env: &[String], api_key: &str) -> Redactor {
    let names = ALWAYS_SECRET_ENV
        .iter()
        .map(|s| s.to_string())
        .chain(extra_secret_env.iter().cloned());
    let mut redactor = Redactor::from_env_vars(names);
    redactor.add_secret(api_key.to_string());
    redactor
}

/// Runs one incident and returns the session's result.
pub async fn investigate(options: &InvestigateOptions) -> Result<SessionResult, InvestigateError> {
    let incident = load_incident(&options.file)?;
    let mut config = ClientConfig::from_env()?;
    config.retry.max_attempts = options.max_attempts;
    let redactor = redactor_for(&options.secret_env, &config.api_key);
    let client = MessagesClient::new(config)?;
    let settings = resolve_settings(&incident, options);
    let mut progress = TerminalProgress::new(!options.quiet);
    progress.header(&incident, &settings, &options.audit_dir);
    let input = SessionInput {
        namespace: incident.metadata.namespace.clone(),
        name: incident
            .metadata
            .name
            .clone()
            .unwrap_or_else(|| "incident".into()),
        spec: incident.spec.clone(),
        settings,
        audit_dir: options.audit_dir.clone(),
        redactor,
        client,
        cancel: Some(crate::signals::cancel_on_terminate()),
        work_dir: None,
        execution: options
            .approved_plan
            .as_deref()
            .map(ApprovedPlanInput::from_file),
    };
    run_session(input, &mut progress)
        .await
        .map_err(|e| InvestigateError::Session(error_chain(&e)))
}

/// Prints the result (text or JSON) to stdout and returns the process exit code: 0 only when a
/// report was filed.
pub fn print_result(result: &SessionResult, json: bool) -> u8 {
    let mut stdout = std::io::stdout().lock();
    let text = if json {
        serde_json::to_string_pretty(&crate::progress::result_json(result)).unwrap_or_default()
            + "\n"
    } else {
        crate::progress::result_text(result)
    };
    // A closed stdout (e.g. `| head`) is not worth a panic; the audit holds everything anyway.
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
    match result.outcome {
        Outcome::Reported => 0,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("incident.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn example_incident_loads() {
        let incident = load_incident(Path::new("examples/incident.yaml")).unwrap();
        assert_eq!(incident.metadata.name.as_deref(), Some("checkout-api-5xx"));
        assert!(incident.spec.runbook.is_some());
    }

    #[test]
    fn invalid_files_give_one_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        for (text, want) in [
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\nspec: {title: t}\n",
                "expected apiVersion",
            ),
            (
                "apiVersion: sre.agentlab.dev/v1alpha1\nkind: Incident\nmetadata: {name: x}\nspec: {title: t, severity: urgent}\n",
                "urgent",
            ),
            (
                "apiVersion: sre.agentlab.dev/v1alpha1\nkind: Incident\nmetadata: {name: x}\nspec: {}\n",
                "title",
            ),
            (
                "apiVersion: sre.agentlab.dev/v1alpha1\nkind: Incident\nmetadata: {name: x}\nspec: {title: \"  \"}\n",
                "title is empty",
            ),
            ("{{{ not yaml", ""),
        ] {
            let err = load_incident(&write(&dir, text)).unwrap_err().to_string();
            assert!(err.contains(want), "{err} should mention {want}");
            assert!(!err.contains('\n'), "multi-line error: {err}");
        }
        let err = load_incident(Path::new("/nonexistent/incident.yaml")).unwrap_err();
        assert!(err.to_string().contains("cannot read incident file"));
    }

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let incident = load_incident(Path::new("examples/incident.yaml")).unwrap();
        let mut options = InvestigateOptions {
            file: "x".into(),
            audit_dir: "a".into(),
            model: None,
            max_turns: None,
            command_timeout: None,
            session_timeout: None,
            token_budget: None,
            max_response_tokens: None,
            secret_env: vec![],
            max_attempts: 1,
            json: false,
            quiet: true,
            approved_plan: None,
        };
        assert_eq!(resolve_settings(&incident, &options).max_turns, 20);
        options.max_turns = Some(3);
        assert_eq!(resolve_settings(&incident, &options).max_turns, 3);
    }
}

//! The notification sinks, as the operator's notifications file describes them (`--notifications-
//! config`, rendered by the chart from `notifications.sinks[]`). Only *where to find* secrets is
//! configured here: every URL, routing key and signing key is a file mounted from a Secret, read at
//! delivery time, so a rotated Secret applies without a restart and a missing one fails that
//! delivery with a clear error rather than the whole operator.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::events::NotifyEvent;
use crate::incident::Severity;

/// Events older than this are never sent: after an upgrade turns notifications on, the history of
/// finished Incidents is not announced again.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);

/// The notifications file.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotifyConfig {
    #[serde(default)]
    pub sinks: Vec<SinkConfig>,
    /// Seconds after which an event is too old to send (default 3600).
    #[serde(default)]
    pub max_age_seconds: Option<u64>,
}

/// What kind of receiver a sink is.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// A Slack incoming webhook (Block Kit message).
    Slack,
    /// PagerDuty Events API v2.
    Pagerduty,
    /// Any HTTPS endpoint: JSON body signed with HMAC-SHA256.
    Webhook,
}

/// What a PagerDuty sink sends.
#[derive(Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PagerDutyAction {
    /// A change event (`/v2/change/enqueue`): on the service's timeline, no page.
    #[default]
    Change,
    /// An alert event with `event_action: trigger` and the alert's fingerprint as `dedup_key`, so
    /// it joins the incident the alert already opened (or pages, if none is open).
    Trigger,
}

/// One receiver and the routes that select it.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SinkConfig {
    /// DNS-label name, used in `status.notifications`, metrics and `spec.notifications`.
    pub name: String,
    #[serde(rename = "type")]
    pub kind: SinkKind,
    /// Events this sink gets; all when empty.
    #[serde(default)]
    pub events: Vec<NotifyEvent>,
    /// Least severity sent (`critical` sends only critical); all when not set.
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Namespaces whose Incidents it gets; all when empty.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// When false the sink gets only Incidents that name it in `spec.notifications.add`.
    #[serde(default = "default_true")]
    pub route_by_default: bool,
    /// File (from a Secret) holding the URL. Required for Slack and webhook sinks; for PagerDuty it
    /// replaces the public Events API endpoint (a proxy, a test receiver).
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// File holding the PagerDuty integration (routing) key.
    #[serde(default)]
    pub routing_key_file: Option<PathBuf>,
    /// File holding the webhook's HMAC signing key.
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    #[serde(default)]
    pub pagerduty_action: PagerDutyAction,
}

fn default_true() -> bool {
    true
}

/// Why a notifications file was refused.
#[derive(Debug, thiserror::Error)]
pub enum NotifyConfigError {
    #[error("reading the notifications file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the notifications file {path} is not valid")]
    Parse {
        path: PathBuf,
        // Boxed: the parser's error is large and this is a cold path.
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    #[error("sink {name:?}: {problem}")]
    Sink { name: String, problem: String },
}

impl NotifyConfig {
    /// Reads and checks the notifications file (YAML or JSON).
    pub fn load(path: &Path) -> Result<Self, NotifyConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| NotifyConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let config: NotifyConfig =
            serde_saphyr::from_str(&text).map_err(|source| NotifyConfigError::Parse {
                path: path.to_path_buf(),
                source: Box::new(source),
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Names unique DNS labels, and each kind has the secrets it needs.
    pub fn validate(&self) -> Result<(), NotifyConfigError> {
        let label =
            regex::Regex::new(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$").expect("valid regex");
        for (index, sink) in self.sinks.iter().enumerate() {
            let problem = |problem: &str| NotifyConfigError::Sink {
                name: sink.name.clone(),
                problem: problem.to_string(),
            };
            if !label.is_match(&sink.name) {
                return Err(problem("the name must be a DNS label (a-z, 0-9, -)"));
            }
            if self.sinks[..index]
                .iter()
                .any(|other| other.name == sink.name)
            {
                return Err(problem("two sinks have this name"));
            }
            match sink.kind {
                SinkKind::Slack if sink.url_file.is_none() => {
                    return Err(problem("a slack sink needs urlFile"));
                }
                SinkKind::Webhook if sink.url_file.is_none() || sink.signing_key_file.is_none() => {
                    return Err(problem("a webhook sink needs urlFile and signingKeyFile"));
                }
                SinkKind::Pagerduty if sink.routing_key_file.is_none() => {
                    return Err(problem("a pagerduty sink needs routingKeyFile"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// How old an event may be and still be sent.
    pub fn max_age(&self) -> Duration {
        self.max_age_seconds
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_MAX_AGE)
    }
}

/// Reads a secret file, trimmed; the error names the file, never its content.
pub fn read_secret(path: &Path) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_string()),
        Ok(_) => Err(format!("secret file {} is empty", path.display())),
        Err(error) => Err(format!("reading secret file {}: {error}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses_and_checks() {
        let config: NotifyConfig = serde_saphyr::from_str(
            "sinks:\n  - name: oncall\n    type: slack\n    urlFile: /s/url\n    events: [completed, failed]\n    minSeverity: warning\n  - name: pd\n    type: pagerduty\n    routingKeyFile: /p/key\n    pagerdutyAction: trigger\n    routeByDefault: false\n",
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(
            config.sinks[0].events,
            [NotifyEvent::Completed, NotifyEvent::Failed]
        );
        assert_eq!(config.sinks[1].pagerduty_action, PagerDutyAction::Trigger);
        assert!(!config.sinks[1].route_by_default);
        assert_eq!(config.max_age(), DEFAULT_MAX_AGE);
    }

    #[test]
    fn missing_secrets_bad_names_and_unknown_keys_are_refused() {
        for bad in [
            "sinks:\n  - name: a\n    type: slack\n",
            "sinks:\n  - name: a\n    type: webhook\n    urlFile: /u\n",
            "sinks:\n  - name: a\n    type: pagerduty\n",
            "sinks:\n  - name: Bad_Name\n    type: slack\n    urlFile: /u\n",
            "sinks:\n  - {name: a, type: slack, urlFile: /u}\n  - {name: a, type: slack, urlFile: /u}\n",
        ] {
            let config: NotifyConfig = serde_saphyr::from_str(bad).unwrap();
            assert!(config.validate().is_err(), "{bad}");
        }
        assert!(
            serde_saphyr::from_str::<NotifyConfig>("sinks:\n  - {name: a, type: sms}\n").is_err()
        );
        assert!(
            serde_saphyr::from_str::<NotifyConfig>("sinks:\n  - {name: a, type: slack, url: x}\n")
                .is_err()
        );
    }

    #[test]
    fn secrets_are_read_trimmed_and_errors_name_the_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "  s3cret\n").unwrap();
        assert_eq!(read_secret(&path).unwrap(), "s3cret");
        std::fs::write(&path, "\n").unwrap();
        assert!(read_secret(&path).unwrap_err().contains("empty"));
        let missing = read_secret(&dir.path().join("nope")).unwrap_err();
        assert!(missing.contains("nope"), "{missing}");
    }
}

//! Decide step of the recurrence policy: a firing alert whose fingerprint has a *finished*
//! Incident that finished less than the cool-down ago does not start a new investigation; it is
//! counted on that Incident (`status.alert.recurrences`, `lastRecurrence`). After the cool-down the
//! next firing creates the next generation, as without the policy. Pure; the intake's ingest path
//! (`src/intake/ingest.rs`) calls it with the Incidents it listed for the fingerprint.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::incident::AlertActivity;
use crate::intake::dedup::ExistingIncident;

/// Default cool-down (`--recurrence-cooldown`).
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(3600);
/// Alert label or annotation that overrides the cool-down for one alert, e.g.
/// `recurrence_cooldown: 15m` (the annotation wins when both are set). Prometheus label names
/// allow neither dots nor slashes, hence no `sre.agentlab.dev/` prefix.
pub const COOLDOWN_KEY: &str = "recurrence_cooldown";

/// Why a cool-down text was refused.
#[derive(Debug, thiserror::Error)]
#[error("{text:?} is not a duration (write e.g. 0, 90s, 15m, 1h30m or PT1H)")]
pub struct CooldownParseError {
    pub text: String,
}

/// Parses a cool-down: `0`, a friendly duration (`90s`, `15m`, `1h30m`) or ISO 8601 (`PT1H`).
pub fn parse_cooldown(text: &str) -> Result<Duration, CooldownParseError> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let refuse = || CooldownParseError {
        text: text.to_string(),
    };
    let signed: SignedDuration = text.parse().map_err(|_| refuse())?;
    Duration::try_from(signed).map_err(|_| refuse())
}

/// The cool-down of one alert: its [`COOLDOWN_KEY`] annotation or label when readable, else
/// `default`. An unreadable override falls back to the default rather than to "never", so a typo
/// cannot make an alert investigate on every firing.
pub fn cooldown_for(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    default: Duration,
) -> Duration {
    annotations
        .get(COOLDOWN_KEY)
        .or_else(|| labels.get(COOLDOWN_KEY))
        .and_then(|text| parse_cooldown(text).ok())
        .unwrap_or(default)
}

/// The finished Incident a firing at `now` recurs on, if the latest generation of the fingerprint
/// has finished less than `cooldown` ago. An Incident without `completionTime` counts from its
/// creation. `None` with a zero cool-down, an open Incident, or no Incident at all.
pub fn recurrence_target(
    existing: &[ExistingIncident],
    now: Timestamp,
    cooldown: Duration,
) -> Option<&ExistingIncident> {
    if cooldown.is_zero() || existing.iter().any(|incident| !incident.finished) {
        return None;
    }
    let latest = existing.iter().max_by_key(|incident| incident.generation)?;
    let finished_at = latest.finished_at.as_ref().or(latest.created.as_ref())?.0;
    let until = finished_at + SignedDuration::try_from(cooldown).ok()?;
    (now < until).then_some(latest)
}

/// Activity after `count` recurrences at `now`, and whether they are the first of this Incident's
/// cool-down (the one that gets an Event and a `recurred` notification).
pub fn count_recurrence(
    current: Option<&AlertActivity>,
    created: Option<&Time>,
    now: &Time,
    count: u32,
) -> (AlertActivity, bool) {
    let count = count.max(1);
    let base = current.cloned().unwrap_or_else(|| {
        let seen = created.cloned().unwrap_or_else(|| now.clone());
        AlertActivity {
            occurrences: 1,
            first_seen: seen.clone(),
            last_seen: seen,
            resolved_at: None,
            recurrences: None,
            last_recurrence: None,
        }
    });
    let before = base.recurrences.unwrap_or(0);
    let activity = AlertActivity {
        recurrences: Some(before.saturating_add(count)),
        last_recurrence: Some(now.clone()),
        // It fires again, so it is not resolved any more.
        resolved_at: None,
        ..base
    };
    (activity, before == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> Time {
        Time(text.parse().unwrap())
    }

    fn finished(name: &str, generation: u32, finished_at: Option<&str>) -> ExistingIncident {
        ExistingIncident {
            name: name.into(),
            generation,
            finished: true,
            activity: None,
            resource_version: None,
            created: Some(time("2026-01-01T09:00:00Z")),
            finished_at: finished_at.map(time),
            predecessor: None,
        }
    }

    #[test]
    fn cooldown_parses_friendly_iso_and_zero() {
        assert_eq!(parse_cooldown("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_cooldown("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_cooldown("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_cooldown("PT1H").unwrap(), Duration::from_secs(3600));
        assert!(parse_cooldown("soon").is_err());
        assert!(parse_cooldown("-5m").is_err());
    }

    #[test]
    fn annotation_beats_label_and_typos_keep_the_default() {
        let labels = BTreeMap::from([(COOLDOWN_KEY.to_string(), "10m".to_string())]);
        let mut annotations = BTreeMap::new();
        let default = DEFAULT_COOLDOWN;
        assert_eq!(
            cooldown_for(&labels, &annotations, default),
            Duration::from_secs(600)
        );
        annotations.insert(COOLDOWN_KEY.to_string(), "20s".to_string());
        assert_eq!(
            cooldown_for(&labels, &annotations, default),
            Duration::from_secs(20)
        );
        annotations.insert(COOLDOWN_KEY.to_string(), "later".to_string());
        assert_eq!(
            cooldown_for(&BTreeMap::new(), &annotations, default),
            default
        );
    }

    #[test]
    fn recent_finished_incident_takes_the_recurrence() {
        let all = [
            finished("a", 1, Some("2026-01-01T09:10:00Z")),
            finished("a-2", 2, Some("2026-01-01T10:00:00Z")),
        ];
        let hour = Duration::from_secs(3600);
        let inside = "2026-01-01T10:59:59Z".parse().unwrap();
        assert_eq!(recurrence_target(&all, inside, hour).unwrap().name, "a-2");
        let after = "2026-01-01T11:00:00Z".parse().unwrap();
        assert_eq!(recurrence_target(&all, after, hour), None);
        // Zero keeps the old behaviour: every firing after the finish is a new generation.
        assert_eq!(recurrence_target(&all, inside, Duration::ZERO), None);
        // Without completionTime the creation time counts.
        let unfinished_time = [finished("b", 1, None)];
        let soon = "2026-01-01T09:30:00Z".parse().unwrap();
        assert_eq!(
            recurrence_target(&unfinished_time, soon, hour)
                .unwrap()
                .name,
            "b"
        );
    }

    #[test]
    fn an_open_incident_is_never_a_recurrence() {
        let mut open = finished("a-2", 2, None);
        open.finished = false;
        let all = [finished("a", 1, Some("2026-01-01T10:00:00Z")), open];
        let now = "2026-01-01T10:01:00Z".parse().unwrap();
        assert_eq!(
            recurrence_target(&all, now, Duration::from_secs(3600)),
            None
        );
        assert_eq!(recurrence_target(&[], now, Duration::from_secs(3600)), None);
    }

    #[test]
    fn counting_keeps_occurrences_and_flags_only_the_first() {
        let t0 = time("2026-01-01T10:00:00Z");
        let t1 = time("2026-01-01T10:05:00Z");
        let (first, is_first) = count_recurrence(None, Some(&t0), &t1, 1);
        assert!(is_first);
        assert_eq!(first.recurrences, Some(1));
        assert_eq!(first.occurrences, 1);
        assert_eq!(first.first_seen, t0);
        assert_eq!(first.last_recurrence, Some(t1.clone()));
        let (second, is_first) = count_recurrence(Some(&first), Some(&t0), &t1, 3);
        assert!(!is_first);
        assert_eq!(second.recurrences, Some(4));
    }
}

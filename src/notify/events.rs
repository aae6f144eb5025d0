//! Observe step of notifications: which notifiable events an Incident's status shows, each with the
//! run it belongs to and when it happened. Pure.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::controller::conditions::{REASON_BUDGET_EXHAUSTED, TYPE_READY, reason_of};
use crate::controller::rerun;
use crate::incident::{Incident, Outcome, Phase};

/// Something a person may want to hear about.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// The agent filed a report.
    Completed,
    /// The investigation failed (agent errors, refusal, no retries left).
    Failed,
    /// A turn, time or token limit ended the session before a report.
    LimitReached,
    /// The alert fired again within its recurrence cool-down.
    Recurred,
    /// A daily budget holds the Incident in Queued.
    BudgetExhausted,
    /// A remediation plan waits for a human's approval (`status.plan`).
    AwaitingApproval,
}

impl NotifyEvent {
    /// The name in `status.notifications`, metrics and payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Completed => "completed",
            NotifyEvent::Failed => "failed",
            NotifyEvent::LimitReached => "limit_reached",
            NotifyEvent::Recurred => "recurred",
            NotifyEvent::BudgetExhausted => "budget_exhausted",
            NotifyEvent::AwaitingApproval => "awaiting_approval",
        }
    }

    /// A short human title.
    pub fn title(self) -> &'static str {
        match self {
            NotifyEvent::Completed => "Investigation completed",
            NotifyEvent::Failed => "Investigation failed",
            NotifyEvent::LimitReached => "Investigation hit a limit",
            NotifyEvent::Recurred => "Alert recurred within its cool-down",
            NotifyEvent::BudgetExhausted => "Investigation held: budget exhausted",
            NotifyEvent::AwaitingApproval => "Remediation plan awaits approval",
        }
    }
}

/// One event of one run of an Incident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Occurrence {
    pub event: NotifyEvent,
    /// The rerun id the event belongs to (`initial` for the first run).
    pub run: String,
    /// When it happened (completion, last recurrence, or when the budget held it).
    pub at: Option<Timestamp>,
}

/// The events `incident`'s status shows now.
pub fn occurrences(incident: &Incident) -> Vec<Occurrence> {
    let Some(status) = incident.status.as_ref() else {
        return Vec::new();
    };
    let run = rerun::run_id(incident);
    let mut found = Vec::new();
    let finished_at = status.completion_time.as_ref().map(|time| time.0);
    match status.phase {
        Some(Phase::Completed) => {
            let event = match status.outcome {
                Some(Outcome::LimitReached) => NotifyEvent::LimitReached,
                Some(Outcome::Refused) | Some(Outcome::Error) => NotifyEvent::Failed,
                Some(Outcome::Reported)
                | Some(Outcome::Rejected)
                | Some(Outcome::ApprovalExpired)
                | None => NotifyEvent::Completed,
            };
            found.push(Occurrence {
                event,
                run: run.clone(),
                at: finished_at,
            });
        }
        Some(Phase::Failed) => found.push(Occurrence {
            event: NotifyEvent::Failed,
            run: run.clone(),
            at: finished_at,
        }),
        Some(Phase::Queued)
            if reason_of(&status.conditions, TYPE_READY) == Some(REASON_BUDGET_EXHAUSTED) =>
        {
            let since = status
                .conditions
                .iter()
                .find(|condition| condition.type_ == TYPE_READY)
                .map(|condition| condition.last_transition_time.0);
            found.push(Occurrence {
                event: NotifyEvent::BudgetExhausted,
                run: run.clone(),
                at: since,
            });
        }
        Some(Phase::AwaitingApproval) => {
            if let Some(plan) = &status.plan {
                found.push(Occurrence {
                    event: NotifyEvent::AwaitingApproval,
                    run: run.clone(),
                    at: Some(plan.proposed_at.0),
                });
            }
        }
        _ => {}
    }
    if let Some(alert) = &status.alert
        && alert.recurrences.unwrap_or(0) > 0
    {
        found.push(Occurrence {
            event: NotifyEvent::Recurred,
            run,
            at: alert.last_recurrence.as_ref().map(|time| time.0),
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::{AlertActivity, IncidentStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn incident(status: IncidentStatus) -> Incident {
        let mut incident: Incident = serde_json::from_value(serde_json::json!({
            "apiVersion": "sre.agentlab.dev/v1alpha1", "kind": "Incident",
            "metadata": {"name": "x", "namespace": "shop"}, "spec": {"title": "t"}
        }))
        .unwrap();
        incident.status = Some(status);
        incident
    }

    fn time(text: &str) -> Time {
        Time(text.parse().unwrap())
    }

    #[test]
    fn outcomes_map_to_events() {
        for (outcome, want) in [
            (Some(Outcome::Reported), NotifyEvent::Completed),
            (Some(Outcome::LimitReached), NotifyEvent::LimitReached),
            (Some(Outcome::Refused), NotifyEvent::Failed),
            (None, NotifyEvent::Completed),
        ] {
            let found = occurrences(&incident(IncidentStatus {
                phase: Some(Phase::Completed),
                outcome,
                completion_time: Some(time("2026-01-01T10:00:00Z")),
                ..IncidentStatus::default()
            }));
            assert_eq!(found[0].event, want);
            assert_eq!(found[0].run, "initial");
        }
        let failed = occurrences(&incident(IncidentStatus {
            phase: Some(Phase::Failed),
            ..IncidentStatus::default()
        }));
        assert_eq!(failed[0].event, NotifyEvent::Failed);
        assert!(occurrences(&incident(IncidentStatus::default())).is_empty());
    }

    #[test]
    fn a_waiting_plan_is_an_event_from_when_it_was_proposed() {
        let plan = crate::approval::decide::tests::proposed(
            "2026-01-01T10:00:00Z",
            "2026-01-01T10:30:00Z",
        );
        let found = occurrences(&incident(IncidentStatus {
            phase: Some(Phase::AwaitingApproval),
            plan: Some(Box::new(plan)),
            ..IncidentStatus::default()
        }));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].event, NotifyEvent::AwaitingApproval);
        assert_eq!(found[0].event.as_str(), "awaiting_approval");
        assert_eq!(found[0].at, Some("2026-01-01T10:00:00Z".parse().unwrap()));
    }

    #[test]
    fn recurrences_and_budget_holds_are_events() {
        let found = occurrences(&incident(IncidentStatus {
            phase: Some(Phase::Queued),
            conditions: vec![Condition {
                type_: TYPE_READY.into(),
                status: "False".into(),
                reason: REASON_BUDGET_EXHAUSTED.into(),
                message: "spent".into(),
                last_transition_time: time("2026-01-01T10:00:00Z"),
                observed_generation: None,
            }],
            alert: Some(Box::new(AlertActivity {
                occurrences: 1,
                first_seen: time("2026-01-01T09:00:00Z"),
                last_seen: time("2026-01-01T09:00:00Z"),
                resolved_at: None,
                recurrences: Some(2),
                last_recurrence: Some(time("2026-01-01T10:05:00Z")),
            })),
            ..IncidentStatus::default()
        }));
        let events: Vec<_> = found.iter().map(|o| o.event).collect();
        assert_eq!(
            events,
            [NotifyEvent::BudgetExhausted, NotifyEvent::Recurred]
        );
        assert_eq!(found[1].at, Some("2026-01-01T10:05:00Z".parse().unwrap()));
    }
}

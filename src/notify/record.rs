//! Act step, the API side: record a delivery in `status.notifications` by server-side apply under
//! the notifier's own field manager. The list is a map keyed by `key`, so each apply adds or
//! replaces one entry and never touches the controller's, the agent's or the intake's fields.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde_json::json;

use crate::incident::{Incident, NotificationRecord};

/// Field manager of every `status.notifications` write.
pub const FIELD_MANAGER: &str = "incident-operator-notify";

/// The record of one finished delivery.
pub fn record(
    key: &str,
    sink: &str,
    event: &str,
    run: &str,
    time: Time,
    attempts: u32,
    error: Option<String>,
) -> NotificationRecord {
    NotificationRecord {
        key: key.to_string(),
        sink: sink.to_string(),
        event: event.to_string(),
        run: run.to_string(),
        state: if error.is_none() { "sent" } else { "failed" }.to_string(),
        time,
        attempts,
        last_error: error.map(|e| super::sinks::cut(&e, 1024)),
    }
}

/// Applies `records` (this manager's whole set for the Incident: server-side apply removes
/// entries a manager stops sending, so the caller passes every entry it owns).
pub async fn apply(
    api: &Api<Incident>,
    name: &str,
    records: &[NotificationRecord],
) -> Result<(), kube::Error> {
    let body = json!({
        "apiVersion": Incident::api_version(&()),
        "kind": Incident::kind(&()),
        "metadata": {"name": name},
        "status": {"notifications": records},
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

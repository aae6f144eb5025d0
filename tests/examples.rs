//! The shipped examples say what the docs say they do: the remediate Incident is a valid
//! Incident in remediate mode, the Alertmanager config sends resolved alerts with a bearer token to
//! the webhook path, and every example alert carries the labels and annotations the intake maps.

use std::path::Path;

use incident_operator::incident::{Incident, Mode};
use serde_json::Value;

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

#[test]
fn remediate_example_is_an_incident_in_remediate_mode() {
    let incident: Incident =
        serde_saphyr::from_str(&read("examples/incident-remediate.yaml")).expect("an Incident");
    assert_eq!(incident.spec.mode, Mode::Remediate);
    assert!(incident.metadata.namespace.is_some());
    assert!(incident.spec.runbook.is_some());
}

#[test]
fn alertmanager_example_posts_to_the_webhook_with_a_bearer_token() {
    let config: Value =
        serde_saphyr::from_str(&read("examples/alertmanager-config.yaml")).expect("YAML");
    let receiver = config["receivers"]
        .as_array()
        .expect("receivers")
        .iter()
        .find(|r| r["name"] == "incident-operator")
        .expect("an incident-operator receiver");
    let webhook = &receiver["webhook_configs"][0];
    assert!(
        webhook["url"]
            .as_str()
            .is_some_and(|u| u.ends_with(":8080/alertmanager")),
        "{webhook}"
    );
    assert_eq!(webhook["send_resolved"], true);
    let auth = &webhook["http_config"]["authorization"];
    assert_eq!(auth["type"], "Bearer");
    assert!(auth["credentials_file"].is_string());
    let routes = config["route"]["routes"].as_array().expect("routes");
    assert!(routes.iter().any(|r| r["receiver"] == "incident-operator"));
}

#[test]
fn example_alerts_carry_what_the_intake_maps() {
    let rule: Value = serde_saphyr::from_str(&read("examples/prometheusrule.yaml")).expect("YAML");
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    let mut count = 0;
    for group in rule["spec"]["groups"].as_array().expect("groups") {
        for alert in group["rules"].as_array().expect("rules") {
            let name = alert["alert"].as_str().expect("alert name");
            assert!(alert["labels"]["severity"].is_string(), "{name}: severity");
            for annotation in ["summary", "description", "runbook_url"] {
                assert!(
                    alert["annotations"][annotation].is_string(),
                    "{name}: {annotation}"
                );
            }
            count += 1;
        }
    }
    assert!(count >= 3);
}

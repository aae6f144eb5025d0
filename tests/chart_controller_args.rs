//! The chart and the controller agree on flags: the `args` the chart renders for the operator
//! container, under several value sets, parse with the binary's own command line and mean what the
//! values say. A flag renamed on either side fails here, not in someone's cluster.

#[path = "support/tools.rs"]
mod tools;

use std::process::Command;

use clap::Parser;
use incident_operator::cli::{Cli, Command as Subcommand};
use incident_operator::controller::pod::AuditVolume;
use incident_operator::controller::{ControllerArgs, ControllerConfig};
use serde_json::Value;

const RELEASE: &str = "sre";
const NAMESPACE: &str = "incident-system";

/// `helm template` of the chart with `values`, parsed into objects.
fn render(values: &str) -> Vec<Value> {
    let file = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("values file");
    std::fs::write(file.path(), values).expect("write values");
    let output = Command::new(tools::tool("helm"))
        .arg("template")
        .arg(RELEASE)
        .arg(tools::repo_root().join("charts/incident-operator"))
        .args(["--namespace", NAMESPACE, "--values"])
        .arg(file.path())
        .output()
        .expect("run helm");
    assert!(
        output.status.success(),
        "helm template failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("rendered YAML");
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// The operator container's args, parsed by the binary's CLI.
fn controller_args(docs: &[Value]) -> (Vec<String>, ControllerArgs) {
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let args: Vec<String> = serde_json::from_value(
        deployment["spec"]["template"]["spec"]["containers"][0]["args"].clone(),
    )
    .expect("args are strings");
    let argv = std::iter::once("incident-operator".to_string()).chain(args.iter().cloned());
    let cli = Cli::try_parse_from(argv)
        .unwrap_or_else(|error| panic!("the chart's args do not parse: {error}\n{args:?}"));
    match cli.command {
        Subcommand::Controller(parsed) => (args, *parsed),
        other => panic!("the chart runs {other:?}, not the controller"),
    }
}

fn config(args: ControllerArgs) -> ControllerConfig {
    args.into_config("kubeconfig-namespace", Some("host".to_string()))
        .expect("the chart's values make a valid configuration")
}

#[test]
fn default_values_parse_and_mean_what_they_say() {
    let (raw, args) = controller_args(&render("{}\n"));
    let config = config(args);
    assert!(config.namespaces.is_empty(), "{raw:?}");
    assert_eq!(config.max_agents, 3);
    assert_eq!(config.pod.api_key_secret, "anthropic-api-key");
    assert_eq!(config.pod.api_key_secret_key, "api-key");
    assert_eq!(config.pod.remediation_service_account, None);
    assert!(
        matches!(config.pod.audit_volume, AuditVolume::Claim(_)),
        "{raw:?}"
    );
    assert_eq!(config.pod.defaults.command_timeout_seconds, 120);
    assert_eq!(config.pod.defaults.session_timeout_seconds, 900);
    assert_eq!(config.pod.resources.cpu_limit.as_deref(), Some("1"));
    let intake = config.intake.expect("the intake is on by default");
    assert_eq!(intake.namespace, NAMESPACE);
    assert!(intake.token_file.is_some());
}

#[test]
fn every_optional_part_on_parses() {
    let values = r#"
watchNamespaces: [shop, ops]
operator:
  replicas: 2
  leaderElection:
    leaseDurationSeconds: 20
remediation:
  enabled: true
  namespaces: [shop]
alertmanager:
  incidentNamespace: shop
anthropic:
  baseUrl: https://gateway.example/anthropic
agent:
  namespaces: [shop, ops]
  resources:
    limits:
      cpu: null
"#;
    let (raw, args) = controller_args(&render(values));
    let config = config(args);
    assert_eq!(config.namespaces, ["shop", "ops"]);
    let lease = config.lease.expect("two replicas elect a leader");
    assert_eq!(lease.namespace, NAMESPACE);
    assert_eq!(lease.duration.as_secs(), 20);
    assert!(config.pod.remediation_service_account.is_some(), "{raw:?}");
    assert_eq!(
        config.pod.anthropic_base_url.as_deref(),
        Some("https://gateway.example/anthropic")
    );
    assert_eq!(config.pod.resources.cpu_limit, None, "{raw:?}");
    assert_eq!(config.intake.expect("intake").namespace, "shop");
}

#[test]
fn minimal_values_parse() {
    let values = r#"
alertmanager:
  enabled: false
audit:
  persistence:
    enabled: false
"#;
    let (raw, args) = controller_args(&render(values));
    let config = config(args);
    assert_eq!(config.intake, None, "{raw:?}");
    assert_eq!(config.pod.audit_volume, AuditVolume::EmptyDir);
    assert_eq!(config.lease, None);
}

#[test]
fn recurrence_and_budget_values_reach_the_controller() {
    let (raw, args) = controller_args(&render(
        "alertmanager:\n  recurrenceCooldown: 15m\nbudget:\n  dailyUSD: 40\n  namespaceDailyUSD: 7.5\n  \
         modelPrices:\n    claude-sonnet-4:\n      input: 2\n      output: 10\n      cacheWrite: 2.5\n      cacheRead: 0.2\n",
    ));
    let set = config(args);
    assert_eq!(
        set.policy.recurrence_cooldown,
        std::time::Duration::from_secs(900),
        "{raw:?}"
    );
    assert_eq!(set.policy.budget.daily_usd, Some(40.0));
    assert_eq!(set.policy.budget.namespace_daily_usd, Some(7.5));
    let price = set.policy.prices.price("claude-sonnet-4-6").expect("price");
    assert_eq!((price.input, price.output), (2.0, 10.0));

    // Defaults: one hour, no budget, the built-in prices.
    let (_, defaults) = controller_args(&render("{}\n"));
    let defaults = config(defaults);
    assert_eq!(
        defaults.policy.recurrence_cooldown,
        std::time::Duration::from_secs(3600)
    );
    assert!(!defaults.policy.budget.is_enabled());
    assert_eq!(
        defaults.policy.prices,
        incident_operator::budget::PriceTable::default()
    );
}

#[test]
fn notification_sinks_become_a_config_file_and_secret_mounts() {
    let docs = render(
        "notifications:\n  sinks:\n    - {name: oncall, type: slack, secretName: slack-webhook, events: [completed, failed], minSeverity: warning}\n    \
         - {name: pager, type: pagerduty, secretName: pd, pagerdutyAction: trigger, routeByDefault: false}\n    \
         - {name: audit, type: webhook, secretName: hook, signingKeyKey: key}\n",
    );
    let (raw, args) = controller_args(&docs);
    let path = args
        .notifications_config
        .clone()
        .unwrap_or_else(|| panic!("no --notifications-config in {raw:?}"));
    let configmap = docs
        .iter()
        .find(|d| {
            d["kind"] == "ConfigMap"
                && d["metadata"]["name"] == "sre-incident-operator-notifications"
        })
        .expect("the notifications ConfigMap");
    let text = configmap["data"]["notifications.yaml"]
        .as_str()
        .expect("notifications.yaml");
    let parsed: incident_operator::notify::NotifyConfig =
        serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    parsed.validate().expect("a valid sinks file");
    assert_eq!(parsed.sinks.len(), 3);
    assert_eq!(
        parsed.sinks[2].signing_key_file.as_deref(),
        Some(std::path::Path::new(
            "/etc/incident-operator/sinks/audit/key"
        ))
    );
    assert!(!parsed.sinks[1].route_by_default);

    // The file is where the flag says; each Secret is mounted, optional, where the file says.
    let pod = &docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("Deployment")["spec"]["template"]["spec"];
    let mounts = pod["containers"][0]["volumeMounts"].as_array().unwrap();
    let mounted = |dir: &str| mounts.iter().any(|m| m["mountPath"] == dir);
    assert!(
        mounted(path.parent().unwrap().to_str().unwrap()),
        "{mounts:?}"
    );
    for sink in ["oncall", "pager", "audit"] {
        assert!(
            mounted(&format!("/etc/incident-operator/sinks/{sink}")),
            "{sink}"
        );
    }
    let volumes = pod["volumes"].as_array().unwrap();
    let slack = volumes
        .iter()
        .find(|v| v["name"] == "sink-oncall")
        .expect("sink volume");
    assert_eq!(slack["secret"]["secretName"], "slack-webhook");
    assert_eq!(slack["secret"]["optional"], true);

    // No sinks, no flag and no ConfigMap.
    let (_, none) = controller_args(&render("{}\n"));
    assert!(none.notifications_config.is_none());
}

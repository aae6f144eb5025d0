//! Act step of pricing: the agent writes `status.usage.costUSD` itself, so an operator's price
//! overrides travel to each agent pod as the `INCIDENT_OPERATOR_MODEL_PRICES` variable (read by
//! `incident-operator agent --model-prices`). The built-in table needs no variable.

use k8s_openapi::api::core::v1::{EnvVar, Pod};

use super::prices::PriceTable;

/// The variable the agent reads its price table from.
pub const ENV_MODEL_PRICES: &str = "INCIDENT_OPERATOR_MODEL_PRICES";

/// Adds the price table to every container of `pod` when it differs from the built-in one.
pub fn hand_prices_to_agent(pod: &mut Pod, prices: &PriceTable) {
    if *prices == PriceTable::default() {
        return;
    }
    let Some(spec) = pod.spec.as_mut() else {
        return;
    };
    let json = prices.to_json();
    for container in &mut spec.containers {
        let env = container.env.get_or_insert_with(Vec::new);
        env.retain(|var| var.name != ENV_MODEL_PRICES);
        env.push(EnvVar {
            name: ENV_MODEL_PRICES.to_string(),
            value: Some(json.clone()),
            ..EnvVar::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    fn pod() -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "agent".into(),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn defaults_add_nothing_and_overrides_travel_once() {
        let mut unchanged = pod();
        hand_prices_to_agent(&mut unchanged, &PriceTable::default());
        assert_eq!(unchanged, pod());
        let table = PriceTable::with_overrides(
            r#"{"scripted": {"input": 1, "output": 2, "cacheWrite": 0, "cacheRead": 0}}"#,
        )
        .unwrap();
        let mut with = pod();
        hand_prices_to_agent(&mut with, &table);
        hand_prices_to_agent(&mut with, &table);
        let env = with.spec.unwrap().containers[0].env.clone().unwrap();
        assert_eq!(env.len(), 1);
        let sent = PriceTable::with_overrides(env[0].value.as_deref().unwrap()).unwrap();
        assert_eq!(sent, table);
    }
}

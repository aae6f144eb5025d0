//! The CRD's bounds and rules (issue 9 §7, §10, §11), enforced by the API server (the emulator,
//! evaluating the generated schema): control characters in title, description and runbook, a
//! blank title, `commandTimeoutSeconds` above `sessionTimeoutSeconds`, and oversized alert label
//! and annotation values are refused with 422; ordinary Incidents (tabs and newlines in the
//! runbook) pass.

use incident_operator::incident::Incident;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::{Api, CustomResourceExt};
use serde_json::{Value, json};

async fn incidents() -> (kube_emulator::Emulator, Api<Incident>) {
    let _already = rustls::crypto::ring::default_provider().install_default();
    let emulator = kube_emulator::Emulator::start().await.expect("emulator");
    let client = emulator.client().await;
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &Incident::crd())
        .await
        .expect("install CRD");
    (emulator, Api::namespaced(client, "default"))
}

async fn create(api: &Api<Incident>, name: &str, spec: Value) -> Result<(), kube::Error> {
    let incident: Incident = serde_json::from_value(json!({
        "apiVersion": "sre.agentlab.dev/v1alpha1", "kind": "Incident",
        "metadata": {"name": name}, "spec": spec,
    }))
    .unwrap();
    api.create(&PostParams::default(), &incident)
        .await
        .map(|_| ())
}

#[tokio::test]
async fn hostile_specs_are_refused_and_ordinary_ones_pass() {
    let (_emulator, api) = incidents().await;
    let refused = [
        (
            "ansi",
            json!({"title": "red \u{1b}[31mCRITICAL"}),
            "control characters",
        ),
        ("nul", json!({"title": "a\u{0}b"}), "control characters"),
        (
            "rlo",
            json!({"title": "invoice \u{202e}fdp.exe"}),
            "control characters",
        ),
        ("blank", json!({"title": "   "}), "must not be blank"),
        (
            "runbook-ansi",
            json!({"title": "t", "runbook": "step\u{1b}]8;;http://evil\u{7}"}),
            "runbook must not contain",
        ),
        (
            "desc-ansi",
            json!({"title": "t", "description": "x\u{1b}[2J"}),
            "description must not contain",
        ),
        (
            "timeouts",
            json!({"title": "t", "agent": {"commandTimeoutSeconds": 600, "sessionTimeoutSeconds": 60}}),
            "commandTimeoutSeconds must not exceed sessionTimeoutSeconds",
        ),
        (
            "big-annotation",
            json!({"title": "t", "source": "alertmanager", "alert": {"name": "A", "annotations": {"description": "x".repeat(5000)}}}),
            "annotations",
        ),
    ];
    for (name, spec, want) in refused {
        let err = create(&api, name, spec).await.expect_err(name);
        let kube::Error::Api(status) = &err else {
            panic!("{name}: {err}");
        };
        assert_eq!(status.code, 422, "{name}: {status:?}");
        assert!(status.message.contains(want), "{name}: {}", status.message);
    }
    for (name, spec) in [
        ("plain", json!({"title": "checkout-api 5xx"})),
        (
            "runbook",
            json!({"title": "t", "runbook": "1.\tlook\n2.\tfix\r\n", "description": "ünï\ncode"}),
        ),
        (
            "timeouts-ok",
            json!({"title": "t", "agent": {"commandTimeoutSeconds": 60, "sessionTimeoutSeconds": 600}}),
        ),
    ] {
        create(&api, name, spec)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

//! `kubectl incident verify`, `rerun` and the errors a user meets, the real binary against the API
//! server. The audit is written by the real writer (`SessionAuditor`) and its chain head, record
//! count and document hash are put in the Incident's status as the agent does; then copies of the
//! files are tampered with in each way `verify` must catch.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/plugin.rs"]
mod plugin;

use std::path::{Path, PathBuf};
use std::process::Output;

use incident_operator::audit::{
    AuditEvent, FinishedAudit, Redactor, SessionAuditor, new_session_id,
};
use incident_operator::controller::keys::{ANNOTATION_RERUN, ANNOTATION_RERUN_HONOURED};
use incident_operator::controller::rerun;
use incident_operator::incident::{Confidence, Incident, Outcome, Report, Usage};
use incident_operator::plugin::EXIT_TAMPERED;
use kube::api::Api;
use plugin::{PluginCluster, stdout_of};
use serde_json::json;

const NS: &str = "plugin-verify";

/// A finished session written by the real auditor: the files and what the status records.
struct Session {
    id: String,
    jsonl: PathBuf,
    finished: FinishedAudit,
}

fn write_session(dir: &Path) -> Session {
    let id = new_session_id(jiff::Timestamp::now());
    let mut audit = SessionAuditor::create(dir, &id, Redactor::default()).expect("auditor");
    // No session_start: its fields grow with the approval work, and the chain does not care.
    for turn in 1..=5 {
        audit
            .record(AuditEvent::ToolCall {
                turn,
                tool_use_id: format!("toolu_{turn:02}"),
                tool: "shell".into(),
                command: format!("kubectl -n orders get pods -o wide # step {turn}"),
                timeout_seconds: 60,
                result: json!({"stdout": "orders-db-0   0/1   CrashLoopBackOff\n", "stderr": "",
                               "exitCode": 0, "timedOut": false, "durationMs": 40}),
            })
            .unwrap();
    }
    audit
        .record(AuditEvent::Report {
            report: Report {
                summary: "orders-db-0 crash-loops: its volume is full.".into(),
                confidence: Confidence::High,
                ..Report::default()
            },
        })
        .unwrap();
    audit
        .record(AuditEvent::SessionEnd {
            outcome: Outcome::Reported,
            message: None,
            usage: Usage::default(),
            duration_ms: 4200,
        })
        .unwrap();
    let jsonl = audit.jsonl_path().to_path_buf();
    let finished = audit.finish().expect("final document");
    Session {
        id,
        jsonl,
        finished,
    }
}

fn incident_for(session: &Session) -> Incident {
    serde_json::from_value(json!({
        "apiVersion": "sre.agentlab.dev/v1alpha1",
        "kind": "Incident",
        "metadata": {"name": "db-down"},
        "spec": {"title": "orders-db unreachable", "severity": "critical"},
        "status": {
            "phase": "Completed",
            "outcome": "reported",
            "sessionId": session.id,
            "audit": {
                "path": session.finished.path.display().to_string(),
                "sha256": session.finished.sha256,
                "chainHead": session.finished.chain_head,
                "recordCount": session.finished.record_count,
            },
        },
    }))
    .unwrap()
}

/// The JSONL lines of `path`, each with its newline.
fn lines_of(path: &Path) -> Vec<Vec<u8>> {
    std::fs::read(path)
        .unwrap()
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

fn write_lines(dir: &Path, name: &str, lines: &[Vec<u8>]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.concat()).unwrap();
    path
}

fn code(output: &Output) -> Option<i32> {
    output.status.code()
}

fn stderr_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    stderr.trim_end().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_accepts_the_real_audit_and_names_each_kind_of_tampering() {
    let cluster = PluginCluster::start(NS).await;
    let audit_dir = cluster.dir.path().join("audit");
    let session = write_session(&audit_dir);
    cluster.create(incident_for(&session)).await;
    let jsonl = session.jsonl.to_str().unwrap();
    let document = session.finished.path.to_str().unwrap();

    let intact = cluster.plugin(&[
        "-n",
        NS,
        "verify",
        "db-down",
        "--file",
        jsonl,
        "--document",
        document,
    ]);
    let text = stdout_of(&intact);
    assert!(
        text.starts_with(&format!("audit of {NS}/db-down ({}): intact", session.id)),
        "{text}"
    );
    assert!(text.contains("status    agrees"), "{text}");
    assert!(text.contains("document  agrees"), "{text}");

    let lines = lines_of(&session.jsonl);
    assert_eq!(lines.len(), 7);
    let scratch = cluster.dir.path();
    let mut changed = lines.clone();
    changed[2] = String::from_utf8(changed[2].clone())
        .unwrap()
        .replace("CrashLoopBackOff", "Running")
        .into_bytes();
    let mut removed = lines.clone();
    removed.remove(3);
    let mut reordered = lines.clone();
    reordered.swap(4, 5);
    let mut appended = lines.clone();
    appended.push(lines[6].clone());
    let mut last_changed = lines.clone();
    last_changed[6] = String::from_utf8(last_changed[6].clone())
        .unwrap()
        .replace("\"durationMs\":4200", "\"durationMs\":4201")
        .into_bytes();
    let truncated = lines[..5].to_vec();
    let cases: [(&str, &[Vec<u8>], &str); 6] = [
        ("changed", &changed, "problem   record 3 was changed"),
        ("removed", &removed, "problem   record 4 was removed"),
        (
            "reordered",
            &reordered,
            "problem   record 5 is out of order",
        ),
        (
            "appended",
            &appended,
            "problem   records from 8 on were appended after the end",
        ),
        (
            "last-changed",
            &last_changed,
            "problem   record 7 was changed",
        ),
        ("truncated", &truncated, "problem   record 6 was removed"),
    ];
    for (name, tampered, expected) in cases {
        let path = write_lines(scratch, &format!("{name}.jsonl"), tampered);
        let out = cluster.plugin(&[
            "-n",
            NS,
            "verify",
            "db-down",
            "--file",
            path.to_str().unwrap(),
        ]);
        assert_eq!(
            code(&out),
            Some(i32::from(EXIT_TAMPERED)),
            "{name}: {out:?}"
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("): TAMPERED"), "{name}: {text}");
        assert!(
            text.contains(expected),
            "{name}: expected {expected:?} in\n{text}"
        );
    }

    // The document edited, with the records untouched.
    let doc = std::fs::read_to_string(&session.finished.path).unwrap();
    let edited = scratch.join("edited.json");
    std::fs::write(&edited, doc.replace("its volume is full", "all fine")).unwrap();
    let out = cluster.plugin(&[
        "-n",
        NS,
        "verify",
        "db-down",
        "--file",
        jsonl,
        "--document",
        edited.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), Some(i32::from(EXIT_TAMPERED)));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("document  changed: sha256"), "{text}");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_a_user_meets_are_one_line_and_a_non_zero_exit() {
    let cluster = PluginCluster::start("plugin-errors").await;
    let ns = "plugin-errors";

    let missing = cluster.plugin(&["-n", ns, "show", "no-such-incident"]);
    assert_eq!(code(&missing), Some(1));
    assert_eq!(
        stderr_line(&missing),
        format!("error: incident \"no-such-incident\" not found in namespace \"{ns}\"")
    );
    assert!(missing.stdout.is_empty());

    let stranger = cluster.service_account_kubeconfig("stranger").await;
    for args in [
        vec!["-n", ns, "show", "x"],
        vec!["-n", ns, "list"],
        vec!["-n", ns, "rerun", "x"],
    ] {
        let forbidden = cluster.plugin_as(&stranger, &args);
        assert_eq!(code(&forbidden), Some(1), "{args:?}");
        let line = stderr_line(&forbidden);
        assert!(line.starts_with("error: forbidden: "), "{line}");
        assert!(
            line.contains("system:serviceaccount:plugin-errors:stranger"),
            "{line}"
        );
    }

    let no_file = cluster.plugin(&["-n", ns, "verify", "x", "--file", "/nonexistent/a.jsonl"]);
    assert_eq!(code(&no_file), Some(1));
    assert!(stderr_line(&no_file).starts_with("error: incident \"x\" not found"));

    // An API server that is not there: a port nobody listens on, same CA and credentials.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let admin = std::fs::read_to_string(&cluster.api.kubeconfig).unwrap();
    let mut kubeconfig: serde_json::Value = serde_saphyr::from_str(&admin).unwrap();
    for entry in kubeconfig["clusters"].as_array_mut().unwrap() {
        entry["cluster"]["server"] = json!(format!("https://127.0.0.1:{closed_port}"));
    }
    let unreachable_config = cluster.dir.path().join("kubeconfig-unreachable");
    std::fs::write(&unreachable_config, kubeconfig.to_string()).unwrap();
    let unreachable = cluster.plugin_as(&unreachable_config, &["-n", ns, "list"]);
    assert_eq!(code(&unreachable), Some(1));
    let line = stderr_line(&unreachable);
    assert!(
        line.starts_with(&format!(
            "error: cannot reach the Kubernetes API server at https://127.0.0.1:{closed_port}: "
        )),
        "{line}"
    );

    let no_kubeconfig = cluster.plugin_as(Path::new("/nonexistent/kubeconfig"), &["list"]);
    assert_eq!(code(&no_kubeconfig), Some(1));
    assert!(stderr_line(&no_kubeconfig).starts_with("error: cannot load the kubeconfig: "));
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_sets_a_value_the_controller_has_not_honoured() {
    let cluster = PluginCluster::start("plugin-rerun").await;
    let ns = "plugin-rerun";
    let session = write_session(&cluster.dir.path().join("audit"));
    let mut incident = incident_for(&session);
    incident.metadata.annotations = Some(
        [
            (ANNOTATION_RERUN.to_string(), "first".to_string()),
            (ANNOTATION_RERUN_HONOURED.to_string(), "first".to_string()),
        ]
        .into(),
    );
    cluster.create(incident).await;
    let out = stdout_of(&cluster.plugin(&[
        "-n",
        ns,
        "rerun",
        "db-down",
        "--reason",
        "after the volume grew",
    ]));
    let value = format!("{} after the volume grew", plugin::NOW);
    assert_eq!(
        out.trim_end(),
        format!(
            "incident {ns}/db-down rerun requested ({ANNOTATION_RERUN}={value}): the controller starts a new run"
        )
    );
    let api: Api<Incident> = Api::namespaced(cluster.api.client.clone(), ns);
    let back = api.get("db-down").await.unwrap();
    assert_eq!(rerun::pending(&back), Some(value.as_str()));
    cluster.stop().await;
}

//! The audit through the API server, end to end (issue 13 §2): the real `incident-operator
//! audit-api` process serves the audit claim of one namespace; it is registered like the chart
//! registers it (a Service, its EndpointSlice, an `APIService` with the serving CA as `caBundle`),
//! and the `kubectl-incident` plugin binary fetches through the API server as ServiceAccount
//! users whose kubeconfigs kubectl itself wrote:
//! - a user who may get the Incident (and its incidentaudits) reads the audit byte for byte as
//!   JSONL and as one JSON object, and `--follow` prints records appended while the session runs,
//!   ending when the session does; `verify` streams the records through the API and checks the
//!   hash chain against the status, and names a record changed on the claim;
//! - a user without RBAC on incidentaudits gets the API server's 403 in one line;
//! - a user allowed incidentaudits but not the Incident gets the audit server's 403 (its
//!   SubjectAccessReview);
//! - an `X-Remote-User` header sent straight to the audit server without the front-proxy
//!   certificate is refused with 401.
//!
//! The audit is written by the real audit writer into the directory the server reads as the
//! namespace's claim. Against a real cluster (`KUBE_E2E_REAL_CLUSTER=1`) the API server must
//! reach the audit server at 127.0.0.1 (the same host), as for the process kubelet.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/tools.rs"]
#[allow(dead_code)]
mod tools;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use incident_operator::audit::{AuditEvent, Redactor, SessionAuditor, new_session_id};
use incident_operator::incident::{Incident, crd_yaml};
use kube::api::{Api, Patch, PatchParams};
use kube_emulator::cluster_ca::ClusterCa;
use serde_json::{Value, json};
use tempfile::TempDir;
use tools::tool;

const BIN: &str = env!("CARGO_BIN_EXE_incident-operator");
const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-incident");
const NS: &str = "audit-e2e";
const INCIDENT: &str = "checkout-5xx";
const SERVICE: &str = "incident-operator-audit";
/// Generous: only there so a broken piece fails the test instead of hanging it.
const WAIT: Duration = Duration::from_secs(60);

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn run(program: &Path, args: &[&str], kubeconfig: &Path, home: &Path) -> Output {
    Command::new(program)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", home)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{} cannot run: {e}", program.display()))
}

fn ok(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

struct Setup {
    api: cluster::ApiServer,
    dir: TempDir,
    port: u16,
    server: Child,
    claim: PathBuf,
}

impl Setup {
    fn kubectl(&self, args: &[&str]) -> String {
        ok(
            run(
                &tool("kubectl"),
                args,
                &self.api.kubeconfig,
                self.dir.path(),
            ),
            &format!("kubectl {args:?}"),
        )
    }

    fn kubectl_apply(&self, yaml: &str) {
        let path = self
            .dir
            .path()
            .join(format!("{}.yaml", uuid::Uuid::new_v4()));
        std::fs::write(&path, yaml).unwrap();
        self.kubectl(&["apply", "-f", path.to_str().unwrap()]);
    }

    /// A kubeconfig for ServiceAccount `name` of [`NS`], written by kubectl from the admin one
    /// and a TokenRequest token.
    fn kubeconfig_for(&self, name: &str) -> PathBuf {
        let token = self.kubectl(&["-n", NS, "create", "token", name]);
        let path = self.dir.path().join(format!("kubeconfig-{name}"));
        std::fs::copy(&self.api.kubeconfig, &path).unwrap();
        let kubectl = tool("kubectl");
        for args in [
            vec!["config", "set-credentials", name, "--token", token.trim()],
            vec!["config", "set-context", "--current", "--user", name],
        ] {
            ok(
                run(&kubectl, &args, &path, self.dir.path()),
                "kubectl config",
            );
        }
        path
    }

    /// `kubectl incident -n NS SUBCOMMAND INCIDENT ARGS…` as the user of `kubeconfig`.
    fn plugin(&self, kubeconfig: &Path, subcommand: &str, args: &[&str]) -> Output {
        let mut all = vec!["-n", NS, subcommand, INCIDENT];
        all.extend_from_slice(args);
        run(Path::new(PLUGIN), &all, kubeconfig, self.dir.path())
    }

    fn audit(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        self.plugin(kubeconfig, "audit", args)
    }

    fn dump(&self) -> String {
        let mut log = String::new();
        let _ = std::fs::File::open(self.dir.path().join("audit-api.log"))
            .and_then(|mut f| f.read_to_string(&mut log));
        format!("audit-api log:\n{log}")
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn rbac_yaml() -> String {
    format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: reader\n  namespace: {NS}\n---\n\
apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: stranger\n  namespace: {NS}\n---\n\
apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: auditonly\n  namespace: {NS}\n---\n\
apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: incident-reader\n  namespace: {NS}\n\
rules:\n- apiGroups: [sre.agentlab.dev]\n  resources: [incidents]\n  verbs: [get]\n\
- apiGroups: [audit.sre.agentlab.dev]\n  resources: [incidentaudits, incidentaudits/log]\n  verbs: [get]\n---\n\
apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: audit-only\n  namespace: {NS}\n\
rules:\n- apiGroups: [audit.sre.agentlab.dev]\n  resources: [incidentaudits, incidentaudits/log]\n  verbs: [get]\n---\n\
apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: reader\n  namespace: {NS}\n\
roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: incident-reader\n\
subjects:\n- kind: ServiceAccount\n  name: reader\n  namespace: {NS}\n---\n\
apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: auditonly\n  namespace: {NS}\n\
roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: audit-only\n\
subjects:\n- kind: ServiceAccount\n  name: auditonly\n  namespace: {NS}\n"
    )
}

/// What the chart registers, as YAML documents (JSON is YAML): a selector-less Service whose
/// EndpointSlice names the audit server on loopback, and the APIService.
fn registration_yaml(port: u16, ca_bundle: &str) -> String {
    [
        json!({"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": SERVICE, "namespace": NS},
         "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": format!("{SERVICE}-local"), "namespace": NS,
                      "labels": {"kubernetes.io/service-name": SERVICE}},
         "addressType": "IPv4",
         "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}],
         "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}),
        json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
         "metadata": {"name": "v1alpha1.audit.sre.agentlab.dev"},
         "spec": {"group": "audit.sre.agentlab.dev", "version": "v1alpha1",
                  "groupPriorityMinimum": 1000, "versionPriority": 15, "caBundle": ca_bundle,
                  "service": {"namespace": NS, "name": SERVICE, "port": 443}}}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n---\n")
}

fn model_request(turn: u32) -> AuditEvent {
    AuditEvent::ModelRequest {
        turn,
        message_count: turn as usize * 2 - 1,
    }
}

async fn setup() -> (Setup, SessionAuditor) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let api = cluster::ApiServer::start(dir.path()).await;
    let claim = dir.path().join("claim");
    std::fs::create_dir_all(&claim).unwrap();

    // The serving certificate the chart would issue, for the Service's DNS name.
    let ca = ClusterCa::generate_named("incident-operator-audit-ca").unwrap();
    let serving = ca
        .issue_serving(&[&format!("{SERVICE}.{NS}.svc"), "127.0.0.1"])
        .unwrap();
    let cert_file = dir.path().join("tls.crt");
    let key_file = dir.path().join("tls.key");
    std::fs::write(&cert_file, pem("CERTIFICATE", &serving.cert_der)).unwrap();
    std::fs::write(&key_file, pem("PRIVATE KEY", &serving.key_der)).unwrap();
    std::fs::write(dir.path().join("ca.crt"), ca.cert_pem()).unwrap();

    let port = free_port();
    let log = std::fs::File::create(dir.path().join("audit-api.log")).unwrap();
    let server = Command::new(BIN)
        .args([
            "audit-api",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--tls-cert-file",
            cert_file.to_str().unwrap(),
            "--tls-private-key-file",
            key_file.to_str().unwrap(),
            "--claim",
            &format!("{NS}={}", claim.display()),
            "--log-format",
            "text",
        ])
        .env("KUBECONFIG", &api.kubeconfig)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("audit-api starts");
    let setup = Setup {
        api,
        dir,
        port,
        server,
        claim,
    };

    setup.kubectl_apply(&crd_yaml());
    setup.kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/incidents.sre.agentlab.dev",
        "--timeout=60s",
    ]);
    setup.kubectl_apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NS}\n"
    ));
    setup.kubectl_apply(&format!(
        "apiVersion: sre.agentlab.dev/v1alpha1\nkind: Incident\nmetadata:\n  name: {INCIDENT}\n  namespace: {NS}\nspec:\n  title: checkout-api 5xx rate above 5%\n  severity: critical\n"
    ));
    setup.kubectl_apply(&rbac_yaml());

    // The session an agent would be running: two records so far, status naming it.
    let session_id = new_session_id(jiff::Timestamp::now());
    let mut auditor =
        SessionAuditor::create(&setup.claim, &session_id, Redactor::new(Vec::new())).unwrap();
    auditor.record(model_request(1)).unwrap();
    auditor.record(model_request(2)).unwrap();
    let incidents: Api<Incident> = Api::namespaced(setup.api.client.clone(), NS);
    incidents
        .patch_status(
            INCIDENT,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"sessionId": session_id}})),
        )
        .await
        .expect("status names the session");

    let bundle = base64::engine::general_purpose::STANDARD.encode(ca.cert_pem());
    setup.kubectl_apply(&registration_yaml(port, &bundle));
    let deadline = Instant::now() + WAIT;
    loop {
        let status = setup.kubectl(&[
            "get",
            "apiservice",
            "v1alpha1.audit.sre.agentlab.dev",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Available\")].status}",
        ]);
        if status.trim() == "True" {
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "the APIService never became Available:\n{}\n{}",
                setup.kubectl(&[
                    "get",
                    "apiservice",
                    "v1alpha1.audit.sre.agentlab.dev",
                    "-o",
                    "yaml"
                ]),
                setup.dump()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    (setup, auditor)
}

fn jsonl_of(claim: &Path) -> String {
    let entry = std::fs::read_dir(claim)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .expect("a .jsonl on the claim");
    std::fs::read_to_string(entry).unwrap()
}

/// A GET straight to the audit server (no front proxy, no client certificate), trusting its CA.
async fn direct_get(setup: &Setup, headers: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ca = std::fs::read(setup.dir.path().join("ca.crt")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&ca) {
        let cert: rustls::pki_types::CertificateDer = cert.unwrap();
        roots.add(cert).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", setup.port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from(format!("{SERVICE}.{NS}.svc")).unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .expect("TLS to the audit server");
    let request = format!(
        "GET /apis/audit.sre.agentlab.dev/v1alpha1/namespaces/{NS}/incidentaudits/{INCIDENT}/log HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WAIT, tls.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

fn one_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "expected a refusal, got {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    stderr.trim_end().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_is_read_through_the_aggregated_api_as_rbac_allows() {
    let (setup, mut auditor) = setup().await;
    let reader = setup.kubeconfig_for("reader");

    // JSONL: byte for byte what is on the claim.
    let got = ok(setup.audit(&reader, &[]), "audit as reader");
    assert_eq!(got, jsonl_of(&setup.claim), "{}", setup.dump());
    assert_eq!(got.lines().count(), 2);

    // JSON: one IncidentAudit object.
    let got = ok(setup.audit(&reader, &["-o", "json"]), "audit -o json");
    let object: Value = serde_json::from_str(&got).expect("one JSON object");
    assert_eq!(object["kind"], "IncidentAudit");
    assert_eq!(object["metadata"]["name"], INCIDENT);
    assert_eq!(object["ended"], false);
    assert_eq!(object["records"].as_array().unwrap().len(), 2);
    assert_eq!(object["records"][1]["seq"], 2);

    // --follow: records appended while it runs, and the end of the session ends it.
    let mut follow = Command::new(PLUGIN)
        .args(["-n", NS, "audit", INCIDENT, "--follow"])
        .env("KUBECONFIG", &reader)
        .env("HOME", setup.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = follow.stdout.take().unwrap();
    let mut first = vec![0u8; 1];
    // The first byte arrives only once the stream is open: what follows is appended later.
    stdout.read_exact(&mut first).unwrap();
    auditor.record(model_request(3)).unwrap();
    auditor.record(model_request(4)).unwrap();
    let finished = auditor.finish().unwrap();
    let reading = std::thread::spawn(move || {
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).map(|_| rest)
    });
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = follow.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = follow.kill();
            panic!("--follow did not end with the session\n{}", setup.dump());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let followed = format!(
        "{}{}",
        String::from_utf8_lossy(&first),
        reading.join().unwrap().unwrap()
    );
    assert!(status.success(), "--follow failed: {followed}");
    assert_eq!(followed, jsonl_of(&setup.claim));
    assert_eq!(followed.lines().count(), 4, "{followed}");

    // verify, streaming the records through the API, against the status the agent would write.
    let incidents: Api<Incident> = Api::namespaced(setup.api.client.clone(), NS);
    incidents
        .patch_status(
            INCIDENT,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"audit": {
                "path": finished.path.display().to_string(),
                "sha256": finished.sha256,
                "chainHead": finished.chain_head,
                "recordCount": finished.record_count,
            }}})),
        )
        .await
        .expect("status carries the chain head");
    let verified = ok(
        setup.plugin(&reader, "verify", &[]),
        "verify through the API",
    );
    assert!(verified.contains(": intact"), "{verified}");
    // A record edited on the claim is named through the API as well.
    let jsonl = setup.claim.join(format!(
        "{}.jsonl",
        finished.path.file_stem().unwrap().to_string_lossy()
    ));
    let edited = std::fs::read_to_string(&jsonl).unwrap().replacen(
        "\"messageCount\":3",
        "\"messageCount\":30",
        1,
    );
    std::fs::write(&jsonl, edited).unwrap();
    let tampered = setup.plugin(&reader, "verify", &[]);
    let text = String::from_utf8_lossy(&tampered.stdout);
    assert_eq!(tampered.status.code(), Some(3), "{text}");
    assert!(text.contains("TAMPERED"), "{text}");

    // No RBAC on incidentaudits: the API server refuses, in one line.
    let stranger = setup.kubeconfig_for("stranger");
    let line = one_line(&setup.audit(&stranger, &[]));
    assert_eq!(
        line,
        format!(
            "error: Error from server (Forbidden): incidentaudits.audit.sre.agentlab.dev \"{INCIDENT}\" is forbidden: User \"system:serviceaccount:{NS}:stranger\" cannot get resource \"incidentaudits/log\" in API group \"audit.sre.agentlab.dev\" in the namespace \"{NS}\""
        )
    );

    // incidentaudits allowed, the Incident not: the audit server's review refuses.
    let audit_only = setup.kubeconfig_for("auditonly");
    let line = one_line(&setup.audit(&audit_only, &[]));
    assert_eq!(
        line,
        format!(
            "error: Error from server (Forbidden): incidentaudits.audit.sre.agentlab.dev \"{INCIDENT}\" is forbidden: User \"system:serviceaccount:{NS}:auditonly\" cannot get resource \"incidents\" in API group \"sre.agentlab.dev\" in the namespace \"{NS}\""
        )
    );

    // A forged identity straight to the audit server, without the front-proxy certificate.
    let answer = direct_get(
        &setup,
        "X-Remote-User: system:admin\r\nX-Remote-Group: system:masters\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(!answer.contains("seq"), "no audit data: {answer}");
}

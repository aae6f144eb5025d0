//! The audit as a Kubernetes API (issue 13 §2): `incident-operator audit-api` is an aggregated
//! API server for `audit.sre.agentlab.dev/v1alpha1`, registered with an `APIService`, that serves
//! `incidentaudits/NAME` from the audit claim agents write to (see `docs/audit-api.md` for why it
//! runs beside the claim, one Deployment per agent namespace).
//!
//! Where it sits: agents append `<session>.jsonl` to the claim ([`crate::audit::writer`]);
//! kube-apiserver authenticates a user and proxies `/apis/audit.sre.agentlab.dev/…` here with its
//! front-proxy certificate; this server believes the user named in the headers only on such a
//! connection ([`front_proxy`], [`tls`]), asks the API server whether that user may `get` the
//! Incident ([`authorize`]), and streams the session's lines from disk ([`stream`]) through the
//! routes in [`routes`], within the listener's bounds ([`serve`]).

pub mod authorize;
pub mod fetch;
pub mod front_proxy;
pub mod routes;
pub mod serve;
pub mod status;
pub mod stream;
pub mod tls;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use tokio_util::sync::CancellationToken;

use self::front_proxy::{AUTHENTICATION_CONFIG_MAP, FrontProxyConfigError, RequestHeaderConfig};

/// The API group served.
pub const GROUP: &str = "audit.sre.agentlab.dev";
/// Its version.
pub const VERSION: &str = "v1alpha1";
/// `GROUP/VERSION`.
pub const API_VERSION: &str = "audit.sre.agentlab.dev/v1alpha1";
/// The resource (plural).
pub const RESOURCE: &str = "incidentaudits";
/// Its kind.
pub const KIND: &str = "IncidentAudit";
/// Content type of the `log` subresource: one JSON record a line.
pub const LOG_CONTENT_TYPE: &str = "application/jsonl";

/// Flags of `incident-operator audit-api`.
#[derive(clap::Args, Debug)]
pub struct AuditApiArgs {
    /// Address to serve HTTPS on.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// Serving certificate (PEM chain); the APIService's caBundle must verify it.
    #[arg(long, value_name = "FILE")]
    pub tls_cert_file: PathBuf,
    /// Private key of the serving certificate (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_private_key_file: PathBuf,
    /// An agent namespace whose audit claim is mounted at DIR (repeatable).
    #[arg(long = "claim", value_name = "NAMESPACE=DIR", value_parser = parse_claim, required = true)]
    pub claims: Vec<(String, PathBuf)>,
    /// Connections served at once.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=100000))]
    pub max_connections: u32,
    /// `?follow=true` streams open at once; more get 429.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100000))]
    pub max_follows: u32,
    /// Longest a follow stream stays open, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=604800))]
    pub max_follow_seconds: u64,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = crate::cli::LogFormat::Json, env = "LOG_FORMAT")]
    pub log_format: crate::cli::LogFormat,
}

fn parse_claim(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((namespace, dir)) if !namespace.is_empty() && !dir.is_empty() => {
            Ok((namespace.to_string(), PathBuf::from(dir)))
        }
        _ => Err(format!("{text:?} is not NAMESPACE=DIR")),
    }
}

/// Why the audit API server could not start.
#[derive(Debug, thiserror::Error)]
pub enum AuditApiError {
    /// No client for the API server (in-cluster config or KUBECONFIG).
    #[error("cannot create a Kubernetes client")]
    Client(#[source] kube::Error),
    /// The request-header settings could not be read from the API server.
    #[error("cannot read {}/{}", AUTHENTICATION_CONFIG_MAP.0, AUTHENTICATION_CONFIG_MAP.1)]
    ReadAuthentication(#[source] kube::Error),
    /// The request-header settings are unusable.
    #[error(transparent)]
    Authentication(#[from] FrontProxyConfigError),
    /// The serving certificate or the CA could not be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsSetupError),
    /// The listening socket could not be bound.
    #[error("cannot listen on {address}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Reads `kube-system/extension-apiserver-authentication` (the chart grants
/// `extension-apiserver-authentication-reader` for it).
pub async fn request_header_config(
    client: &kube::Client,
) -> Result<RequestHeaderConfig, AuditApiError> {
    let (namespace, name) = AUTHENTICATION_CONFIG_MAP;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let map = maps
        .get(name)
        .await
        .map_err(AuditApiError::ReadAuthentication)?;
    Ok(RequestHeaderConfig::from_config_map(
        &map.data.unwrap_or_default(),
    )?)
}

/// Runs the server until SIGTERM/SIGINT.
pub async fn run(args: AuditApiArgs) -> Result<(), AuditApiError> {
    let client = kube::Client::try_default()
        .await
        .map_err(AuditApiError::Client)?;
    let request_header = request_header_config(&client).await?;
    let tls = tls::server_config(
        &args.tls_cert_file,
        &args.tls_private_key_file,
        &request_header.client_ca_pem,
    )?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| AuditApiError::Listen {
            address: args.listen,
            source,
        })?;
    let shutdown = CancellationToken::new();
    let state = Arc::new(routes::AuditApiState {
        client,
        request_header,
        claims: args.claims.into_iter().collect::<BTreeMap<_, _>>(),
        follow_slots: Arc::new(tokio::sync::Semaphore::new(args.max_follows as usize)),
        max_follow: Duration::from_secs(args.max_follow_seconds),
        follow_poll: Duration::from_millis(500),
        shutdown: shutdown.clone(),
    });
    tracing::info!(address = %args.listen, namespaces = ?state.claims.keys().collect::<Vec<_>>(), "audit API serving");
    let mut cancelled = crate::signals::cancel_on_terminate();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = cancelled.wait_for(|c| *c).await;
        stop.cancel();
    });
    let limits = serve::ListenLimits {
        max_connections: args.max_connections as usize,
        ..serve::ListenLimits::default()
    };
    serve::serve_tls(listener, tls, routes::router(state), limits, async move {
        shutdown.cancelled().await
    })
    .await;
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            eprintln!("error: cannot start the async runtime: {error}");
            ExitCode::from(2)
        })
}

/// `incident-operator audit-api`: exit 0 after a clean shutdown, 2 when it cannot start.
pub fn main(args: AuditApiArgs) -> ExitCode {
    crate::cli::init_tracing("info", args.log_format);
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %crate::errors::error_chain(&error), "audit API cannot run");
            ExitCode::from(2)
        }
    }
}

//! The server's shared state: one lock around the store, the served resources and the
//! allocators, plus settings and the shutdown signal that ends open watches.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::auth::tokens::TokenIssuer;
use super::builtin::IpAllocator;
use super::resource::Registry;
use super::store::Store;

/// Settings of a running server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Changes kept for watches that resume from a resourceVersion.
    pub history_window: usize,
    /// Events a watcher may fall behind before it is closed.
    pub watch_buffer: usize,
    /// How often watches with `allowWatchBookmarks` get a BOOKMARK.
    pub bookmark_interval: Duration,
    /// `host:port` clients reach the server at.
    pub server_address: String,
    /// The cluster CA certificate (PEM) published as `kube-root-ca.crt`.
    pub root_ca_pem: String,
}

/// Everything behind the lock.
#[derive(Debug)]
pub struct Inner {
    /// Objects and their history.
    pub store: Store,
    /// Served resources.
    pub registry: Registry,
    /// Service cluster IPs.
    pub ips: IpAllocator,
}

/// State shared by all requests.
#[derive(Debug)]
pub struct Shared {
    inner: Mutex<Inner>,
    /// Settings.
    pub config: ServerConfig,
    /// Cancelled on shutdown; watches end when it fires.
    pub shutdown: CancellationToken,
    /// Signs and verifies ServiceAccount tokens.
    pub tokens: TokenIssuer,
    /// The front proxy's request-header CA and client certificate (API aggregation).
    pub front_proxy: super::aggregation::FrontProxy,
    /// APIService name → the `APIResourceList` its backend last served to the availability
    /// check, for discovery.
    pub aggregated_discovery: Mutex<BTreeMap<String, serde_json::Value>>,
}

impl Shared {
    /// Fresh state.
    pub fn new(config: ServerConfig) -> Shared {
        Shared {
            inner: Mutex::new(Inner {
                store: Store::new(config.history_window, config.watch_buffer),
                registry: Registry::new(),
                ips: IpAllocator::new(),
            }),
            config,
            shutdown: CancellationToken::new(),
            // The system random source failing means nothing on this machine can do TLS
            // either; there is no meaningful way to serve without a signing key.
            tokens: TokenIssuer::generate().expect("the system random source works"),
            front_proxy: super::aggregation::FrontProxy::generate()
                .expect("the system random source works"),
            aggregated_discovery: Mutex::new(BTreeMap::new()),
        }
    }

    /// Takes the lock. A panic in another request must not take the server down, so a
    /// poisoned lock is used as it is (every write leaves the store consistent between calls).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

//! A scripted Anthropic Messages API server on loopback, for incident-operator's tests and benches.
//!
//! It speaks the real wire format over real HTTP on `127.0.0.1`, so the production client, its retries
//! and its error handling are exercised exactly as against `api.anthropic.com`. Each request is recorded,
//! checked the way the real API checks it (see [`validate`]), and answered with the next [`Step`] of a
//! script, or by a closure for long sessions and benches. A script that runs out answers 500
//! `api_error` "script exhausted after N steps" so a test fails loudly instead of hanging. A request
//! the validation refuses gets the API's 4xx error and does not use up a step.
//!
//! ```no_run
//! # async fn demo() {
//! use scripted_model::{ScriptedModel, Step, reply};
//! let model = ScriptedModel::start(vec![
//!     Step::Reply(reply::tool_use("toolu_1", "shell", serde_json::json!({"command": "kubectl get pods"}))),
//!     Step::Reply(reply::text("The pod is out of memory.")),
//! ])
//! .await;
//! // point the client at model.base_url(), run, then inspect model.requests()
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod reply;
pub mod script_file;
mod server;
mod step;
pub mod validate;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use server::RecordedRequest;
use server::{Responder, Shared};
pub use step::Step;

/// A running scripted server. Dropping it stops accepting and closes open connections.
pub struct ScriptedModel {
    address: SocketAddr,
    shared: Arc<Shared>,
    /// Dropping the sender is the shutdown signal every server task watches.
    _shutdown: watch::Sender<()>,
}

impl ScriptedModel {
    /// Serves `steps` in order on an ephemeral loopback port, on the current tokio runtime.
    ///
    /// # Panics
    /// If no loopback port can be bound: test infrastructure cannot continue without one.
    pub async fn start(steps: Vec<Step>) -> ScriptedModel {
        Self::start_on_port(0, steps)
            .await
            .expect("scripted-model: cannot bind a loopback port")
    }

    /// Serves `steps` on `127.0.0.1:port` (0 for any free port), on the current tokio runtime.
    pub async fn start_on_port(port: u16, steps: Vec<Step>) -> io::Result<ScriptedModel> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        Self::serve_on(listener, script(steps))
    }

    /// Answers every request with the step `answer` returns, on the current tokio runtime.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub async fn start_with(
        answer: impl Fn(&RecordedRequest) -> Step + Send + Sync + 'static,
    ) -> ScriptedModel {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("scripted-model: cannot bind a loopback port");
        Self::serve_on(listener, Responder::Function(Box::new(answer)))
            .expect("scripted-model: cannot read the bound address")
    }

    /// Like [`ScriptedModel::start`], but on its own runtime thread, for synchronous tests that spawn
    /// processes and for synchronous benches.
    ///
    /// # Panics
    /// If no loopback port can be bound or the runtime cannot be built.
    pub fn start_blocking(steps: Vec<Step>) -> ScriptedModel {
        Self::start_blocking_with_responder(script(steps))
    }

    /// Like [`ScriptedModel::start_with`], but on its own runtime thread.
    ///
    /// # Panics
    /// If no loopback port can be bound or the runtime cannot be built.
    pub fn start_blocking_with(
        answer: impl Fn(&RecordedRequest) -> Step + Send + Sync + 'static,
    ) -> ScriptedModel {
        Self::start_blocking_with_responder(Responder::Function(Box::new(answer)))
    }

    fn start_blocking_with_responder(responder: Responder) -> ScriptedModel {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
            .expect("scripted-model: cannot bind a loopback port");
        let address = listener
            .local_addr()
            .expect("scripted-model: cannot read the bound address");
        listener
            .set_nonblocking(true)
            .expect("scripted-model: cannot make the listener non-blocking");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("scripted-model: cannot build a tokio runtime");
        let shared = Shared::new(responder);
        let (shutdown, shutdown_signal) = watch::channel(());
        let server_shared = Arc::clone(&shared);
        let (started, wait_started) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("scripted-model-{}", address.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => {
                            let _ = started.send(Ok(()));
                            server::serve(listener, server_shared, shutdown_signal).await;
                        }
                        Err(error) => {
                            let _ = started.send(Err(error));
                        }
                    }
                });
            })
            .expect("scripted-model: cannot spawn the server thread");
        match wait_started.recv() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => panic!("scripted-model: cannot register the listener: {error}"),
            Err(_) => panic!("scripted-model: the server thread ended before serving"),
        }
        ScriptedModel {
            address,
            shared,
            _shutdown: shutdown,
        }
    }

    fn serve_on(listener: TcpListener, responder: Responder) -> io::Result<ScriptedModel> {
        let address = listener.local_addr()?;
        let shared = Shared::new(responder);
        let (shutdown, shutdown_signal) = watch::channel(());
        tokio::spawn(server::serve(
            listener,
            Arc::clone(&shared),
            shutdown_signal,
        ));
        Ok(ScriptedModel {
            address,
            shared,
            _shutdown: shutdown,
        })
    }

    /// `http://127.0.0.1:PORT`, what `ANTHROPIC_BASE_URL` should be set to.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every request received so far, in order, including the ones that were rejected.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }
}

fn script(steps: Vec<Step>) -> Responder {
    Responder::Script {
        steps: steps.into(),
        used: 0,
    }
}

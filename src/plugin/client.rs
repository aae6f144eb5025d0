//! The plugin's only contact with the API server: a `kube::Client` from the user's kubeconfig
//! (KUBECONFIG or `~/.kube/config`, `--context`), and the few reads and patches it needs, each
//! mapping its errors through [`super::error::classify`].

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::config::KubeConfigOptions;
use kube::{Client, Config, ResourceExt};

use super::GlobalArgs;
use super::error::{PluginError, Target, classify};
use crate::incident::Incident;

/// Most Events `show` prints.
pub const RECENT_EVENTS: usize = 8;

/// A connected client, the namespace commands default to and the server's URL for messages.
pub struct Connection {
    pub client: Client,
    pub namespace: String,
    pub server: String,
}

impl Connection {
    /// Connects as the kubeconfig says, with the namespace of `-n`, else of the context.
    pub async fn open(global: &GlobalArgs) -> Result<Connection, PluginError> {
        let config = match &global.context {
            Some(context) => Config::from_kubeconfig(&KubeConfigOptions {
                context: Some(context.clone()),
                ..KubeConfigOptions::default()
            })
            .await
            .map_err(|e| PluginError::Kubeconfig(crate::errors::error_chain(&e)))?,
            None => Config::infer()
                .await
                .map_err(|e| PluginError::Kubeconfig(crate::errors::error_chain(&e)))?,
        };
        // One clear line now beats minutes of kube's 503/429 backoff for a command-line tool
        // (an aggregated API whose server is down answers 503).
        let mut config = config;
        config.default_retry = false;
        let server = config.cluster_url.to_string();
        let server = server.trim_end_matches('/').to_string();
        let namespace = global
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config)
            .map_err(|e| PluginError::Kubeconfig(crate::errors::error_chain(&e)))?;
        Ok(Connection {
            client,
            namespace,
            server,
        })
    }

    fn incidents(&self) -> Api<Incident> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The Incident `name` in the command's namespace.
    pub async fn incident(&self, name: &str) -> Result<Incident, PluginError> {
        self.incidents().get(name).await.map_err(|e| {
            classify(
                e,
                &self.server,
                Target::Incident {
                    namespace: &self.namespace,
                    name,
                },
            )
        })
    }

    /// Incidents of the namespace, or of all namespaces, matching a label selector.
    pub async fn list(
        &self,
        all_namespaces: bool,
        selector: Option<&str>,
    ) -> Result<Vec<Incident>, PluginError> {
        let api = if all_namespaces {
            Api::all(self.client.clone())
        } else {
            self.incidents()
        };
        let mut params = ListParams::default();
        if let Some(selector) = selector {
            params = params.labels(selector);
        }
        let mut items = api
            .list(&params)
            .await
            .map_err(|e| classify(e, &self.server, Target::IncidentList))?
            .items;
        items.sort_by_key(|a| (a.namespace(), a.name_any()));
        Ok(items)
    }

    /// The latest Events about `incident`, oldest first. Events are a courtesy: a user who may
    /// read Incidents but not Events gets the story without them and a note why.
    pub async fn recent_events(&self, incident: &Incident) -> Result<Vec<Event>, PluginError> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        let uid = incident.uid();
        let name = incident.name_any();
        // The API server selects by name (as `kubectl describe` does); the uid is checked here, so
        // Events of an earlier Incident of the same name are left out.
        let selector = format!("regarding.kind=Incident,regarding.name={name}");
        let events = api
            .list(&ListParams::default().fields(&selector))
            .await
            .map_err(|e| classify(e, &self.server, Target::Other))?;
        let mut ours: Vec<Event> = events
            .items
            .into_iter()
            .filter(|event| {
                let regarding = event.regarding.as_ref();
                regarding.and_then(|r| r.kind.as_deref()) == Some("Incident")
                    && match (&uid, regarding.and_then(|r| r.uid.as_ref())) {
                        (Some(uid), Some(theirs)) => uid == theirs,
                        _ => regarding.and_then(|r| r.name.as_deref()) == Some(name.as_str()),
                    }
            })
            .collect();
        ours.sort_by_key(event_time);
        let skip = ours.len().saturating_sub(RECENT_EVENTS);
        Ok(ours.split_off(skip))
    }

    /// Merge-patches the Incident's metadata (annotations) as the user.
    pub async fn annotate(
        &self,
        name: &str,
        key: &str,
        value: &str,
    ) -> Result<Incident, PluginError> {
        let patch = serde_json::json!({"metadata": {"annotations": {key: value}}});
        self.incidents()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| {
                classify(
                    e,
                    &self.server,
                    Target::Incident {
                        namespace: &self.namespace,
                        name,
                    },
                )
            })
    }
}

/// When an Event last happened: its series' last time, else its own time, else its creation.
pub fn event_time(event: &Event) -> Option<jiff::Timestamp> {
    event
        .series
        .as_ref()
        .map(|s| s.last_observed_time.0)
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.deprecated_last_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

//! The pod's credentials for the API server: a ServiceAccount token from the TokenRequest API
//! (`serviceaccounts/<name>/token`, bound to the pod) and a kubeconfig that points `$KUBECONFIG`
//! users at the API server with that token.
//!
//! Against a real cluster the process therefore gets exactly the RBAC rights of its
//! ServiceAccount, as an in-cluster pod would. The kubeconfig names the token through `tokenFile`,
//! which kubectl and kube-rs re-read, so the kubelet can refresh the token in place before it
//! expires.

use std::path::Path;

use base64::Engine;
use jiff::Timestamp;
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::PostParams;
use kube::{Api, Client};
use serde_json::json;

use super::env::PodFacts;
use super::volumes::write_file;

/// Lifetime asked for each token; refreshed at 80% of what the server granted.
pub const TOKEN_LIFETIME_SECONDS: i64 = 3600;

/// A token and when the server says it expires.
#[derive(Clone, Debug)]
pub struct PodToken {
    pub token: String,
    pub expires_at: Option<Timestamp>,
    pub issued_at: Timestamp,
}

impl PodToken {
    /// When to ask for a new token: at 80% of its lifetime (at least one minute from issue).
    pub fn refresh_at(&self) -> Timestamp {
        let lifetime = self
            .expires_at
            .and_then(|exp| exp.duration_since(self.issued_at).try_into().ok())
            .unwrap_or(std::time::Duration::from_secs(
                TOKEN_LIFETIME_SECONDS as u64,
            ));
        let refresh_after = lifetime
            .mul_f64(0.8)
            .max(std::time::Duration::from_secs(60));
        self.issued_at
            .checked_add(refresh_after)
            .unwrap_or(self.issued_at)
    }
}

/// Creating the token failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("TokenRequest for serviceaccount {namespace}/{service_account} failed")]
    Request {
        namespace: String,
        service_account: String,
        #[source]
        source: kube::Error,
    },
    #[error("TokenRequest for serviceaccount {namespace}/{service_account} returned no token")]
    Empty {
        namespace: String,
        service_account: String,
    },
}

/// Asks the API server for a token of the pod's ServiceAccount, bound to the pod.
pub async fn request_token(client: &Client, facts: &PodFacts) -> Result<PodToken, TokenError> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &facts.namespace);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(Vec::new()),
            expiration_seconds: Some(TOKEN_LIFETIME_SECONDS),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(facts.name.clone()),
                uid: Some(facts.uid.clone()),
            }),
        }),
        ..TokenRequest::default()
    };
    let issued_at = Timestamp::now();
    let response = api
        .create_token_request(&facts.service_account, &PostParams::default(), &request)
        .await
        .map_err(|source| TokenError::Request {
            namespace: facts.namespace.clone(),
            service_account: facts.service_account.clone(),
            source,
        })?;
    let status = response.status.unwrap_or_default();
    let Some(token) = status.token.filter(|t| !t.is_empty()) else {
        return Err(TokenError::Empty {
            namespace: facts.namespace.clone(),
            service_account: facts.service_account.clone(),
        });
    };
    Ok(PodToken {
        token,
        expires_at: status.expiration_timestamp.map(|t| t.0),
        issued_at,
    })
}

/// Writes the token file (mode 0600).
pub fn write_token(path: &Path, token: &PodToken) -> std::io::Result<()> {
    write_file(path, token.token.as_bytes(), 0o600)
}

/// The kubeconfig text: one cluster (the API server, and the CA bundle, PEM, that verifies it
/// over https), one user (the token file), and a context whose namespace is the pod's, like an
/// in-cluster client's default namespace.
pub fn kubeconfig_yaml(
    api_server_url: &str,
    ca_pem: Option<&str>,
    token_file: &Path,
    namespace: &str,
) -> String {
    let mut cluster = json!({"server": api_server_url});
    if let Some(ca) = ca_pem {
        cluster["certificate-authority-data"] =
            json!(base64::engine::general_purpose::STANDARD.encode(ca));
    }
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": cluster}],
        "users": [{"name": "pod", "user": {"tokenFile": token_file.to_string_lossy()}}],
        "contexts": [{"name": "pod", "context": {
            "cluster": "cluster", "user": "pod", "namespace": namespace}}],
        "current-context": "pod",
    });
    // JSON is valid YAML, and kubectl and kube-rs both read it; pretty-printed for people.
    serde_json::to_string_pretty(&config).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_parses_with_kube() {
        let text = kubeconfig_yaml("https://127.0.0.1:1234", None, Path::new("/w/token"), "ns1");
        let parsed = kube::config::Kubeconfig::from_yaml(&text).unwrap();
        let cluster = parsed.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.certificate_authority_data, None);
        assert_eq!(parsed.current_context.as_deref(), Some("pod"));
        let user = parsed.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(user.token_file.as_deref(), Some("/w/token"));
        let context = parsed.contexts[0].context.as_ref().unwrap();
        assert_eq!(context.namespace.as_deref(), Some("ns1"));
    }

    #[test]
    fn refresh_is_at_eighty_percent() {
        let issued = Timestamp::from_second(1000).unwrap();
        let token = PodToken {
            token: "t".into(),
            expires_at: Some(Timestamp::from_second(1000 + 3600).unwrap()),
            issued_at: issued,
        };
        assert_eq!(
            token.refresh_at(),
            Timestamp::from_second(1000 + 2880).unwrap()
        );
    }

    #[test]
    fn kubeconfig_carries_the_cluster_ca_for_https() {
        let ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let text = kubeconfig_yaml(
            "https://10.0.0.1:6443",
            Some(ca),
            Path::new("/w/token"),
            "ns1",
        );
        let parsed = kube::config::Kubeconfig::from_yaml(&text).unwrap();
        let cluster = parsed.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://10.0.0.1:6443"));
        let data = cluster.certificate_authority_data.as_deref().unwrap();
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap();
        assert_eq!(decoded, ca.as_bytes());
    }
}

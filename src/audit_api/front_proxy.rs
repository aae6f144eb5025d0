//! Who is calling: the request-header authentication of an aggregated API server.
//!
//! kube-apiserver authenticates the user, then proxies the request to us presenting its
//! front-proxy client certificate (`--proxy-client-cert-file`) and naming the user in
//! `X-Remote-User`, `X-Remote-Group` and `X-Remote-Extra-<key>` headers. It publishes how to check
//! that in the `kube-system/extension-apiserver-authentication` ConfigMap: the CA that signs the
//! front-proxy certificate (`requestheader-client-ca-file`), the common names it may carry
//! (`requestheader-allowed-names`, empty: any) and the header names. The headers are believed only
//! on a connection whose client certificate chains to that CA ([`super::tls`] verifies the chain);
//! a request without one is not authenticated, whatever headers it carries.
//!
//! Pure: the ConfigMap's data and a request's headers in, an identity or a refusal out.

use std::collections::BTreeMap;

use axum::http::HeaderMap;

/// Namespace and name of the ConfigMap kube-apiserver publishes for extension API servers.
pub const AUTHENTICATION_CONFIG_MAP: (&str, &str) =
    ("kube-system", "extension-apiserver-authentication");
/// ConfigMap key: the PEM CA bundle that signs front-proxy client certificates.
pub const CLIENT_CA_KEY: &str = "requestheader-client-ca-file";
/// ConfigMap key: JSON list of common names a front-proxy certificate may carry.
pub const ALLOWED_NAMES_KEY: &str = "requestheader-allowed-names";
/// ConfigMap key: JSON list of headers that may carry the user name.
pub const USERNAME_HEADERS_KEY: &str = "requestheader-username-headers";
/// ConfigMap key: JSON list of headers that may carry the user's groups.
pub const GROUP_HEADERS_KEY: &str = "requestheader-group-headers";
/// ConfigMap key: JSON list of header prefixes of the user's extra attributes.
pub const EXTRA_PREFIXES_KEY: &str = "requestheader-extra-headers-prefix";
/// ConfigMap key: JSON list of headers that may carry the user's uid (newer servers).
pub const UID_HEADERS_KEY: &str = "requestheader-uid-headers";

/// Why the request-header settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrontProxyConfigError {
    /// The ConfigMap has no request-header CA: kube-apiserver runs without
    /// `--requestheader-client-ca-file`, so it cannot proxy to an aggregated server at all.
    #[error(
        "{}/{} has no {CLIENT_CA_KEY}: kube-apiserver is not configured for API aggregation (--requestheader-client-ca-file)",
        AUTHENTICATION_CONFIG_MAP.0,
        AUTHENTICATION_CONFIG_MAP.1
    )]
    NoClientCa,
    /// A list-valued key is not a JSON list of strings.
    #[error("{key} in {}/{} is not a JSON list of strings", AUTHENTICATION_CONFIG_MAP.0, AUTHENTICATION_CONFIG_MAP.1)]
    NotAList {
        /// The key.
        key: &'static str,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
}

/// The request-header settings of `extension-apiserver-authentication`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeaderConfig {
    /// PEM bundle of the CA(s) that sign front-proxy client certificates.
    pub client_ca_pem: String,
    /// Common names a front-proxy certificate may carry; empty: any name the CA signed.
    pub allowed_names: Vec<String>,
    /// Headers carrying the user name, first non-empty wins.
    pub username_headers: Vec<String>,
    /// Headers carrying groups (each value one group, repeatable).
    pub group_headers: Vec<String>,
    /// Prefixes of headers carrying extra attributes (`<prefix><key>: value`).
    pub extra_prefixes: Vec<String>,
    /// Headers carrying the user's uid.
    pub uid_headers: Vec<String>,
}

impl RequestHeaderConfig {
    /// Reads the ConfigMap's `data`.
    pub fn from_config_map(
        data: &BTreeMap<String, String>,
    ) -> Result<RequestHeaderConfig, FrontProxyConfigError> {
        let client_ca_pem = data
            .get(CLIENT_CA_KEY)
            .filter(|pem| !pem.trim().is_empty())
            .cloned()
            .ok_or(FrontProxyConfigError::NoClientCa)?;
        let list = |key: &'static str| -> Result<Vec<String>, FrontProxyConfigError> {
            match data.get(key).map(|text| text.trim()) {
                None | Some("") => Ok(Vec::new()),
                Some(text) => serde_json::from_str(text)
                    .map_err(|source| FrontProxyConfigError::NotAList { key, source }),
            }
        };
        Ok(RequestHeaderConfig {
            client_ca_pem,
            allowed_names: list(ALLOWED_NAMES_KEY)?,
            username_headers: list(USERNAME_HEADERS_KEY)?,
            group_headers: list(GROUP_HEADERS_KEY)?,
            extra_prefixes: list(EXTRA_PREFIXES_KEY)?,
            uid_headers: list(UID_HEADERS_KEY)?,
        })
    }
}

/// The client certificate a connection presented, after [`super::tls`] verified its chain to
/// the request-header CA. `None` on the connection: no (or no valid) certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedClientCert {
    /// The certificate's subject common name.
    pub common_name: String,
}

/// The user kube-apiserver authenticated, as the headers name them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallerIdentity {
    /// User name.
    pub user: String,
    /// Uid, when the front proxy sent one.
    pub uid: Option<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// Extra attributes; keys lower-cased and unescaped as kube-apiserver's authenticator does.
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Why a request is not authenticated (answered with 401 Unauthorized).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthenticationError {
    /// No client certificate signed by the request-header CA: the X-Remote-* headers of such a
    /// request are not believed.
    #[error("no front-proxy client certificate signed by the request-header CA")]
    NoFrontProxyCertificate,
    /// The certificate is signed by the CA but its common name is not an allowed one.
    #[error(
        "front-proxy certificate common name {common_name:?} is not in requestheader-allowed-names"
    )]
    NameNotAllowed {
        /// The certificate's common name.
        common_name: String,
    },
    /// The front proxy named no user.
    #[error("the front proxy sent no user name header")]
    NoUser,
}

/// The caller of a request that arrived with `cert` on its connection.
pub fn authenticate(
    config: &RequestHeaderConfig,
    cert: Option<&VerifiedClientCert>,
    headers: &HeaderMap,
) -> Result<CallerIdentity, AuthenticationError> {
    let cert = cert.ok_or(AuthenticationError::NoFrontProxyCertificate)?;
    if !config.allowed_names.is_empty() && !config.allowed_names.contains(&cert.common_name) {
        return Err(AuthenticationError::NameNotAllowed {
            common_name: cert.common_name.clone(),
        });
    }
    let user = first_value(headers, &config.username_headers).ok_or(AuthenticationError::NoUser)?;
    let uid = first_value(headers, &config.uid_headers);
    let groups = config
        .group_headers
        .iter()
        .flat_map(|name| all_values(headers, name))
        .collect();
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        let Ok(value) = value.to_str() else { continue };
        // Header names are lower-case in `http`; the configured prefixes are compared alike.
        let found = config.extra_prefixes.iter().find_map(|prefix| {
            name.as_str()
                .strip_prefix(prefix.to_ascii_lowercase().as_str())
                .filter(|key| !key.is_empty())
        });
        if let Some(key) = found {
            extra
                .entry(percent_decode(key).to_ascii_lowercase())
                .or_default()
                .push(value.to_string());
        }
    }
    Ok(CallerIdentity {
        user,
        uid,
        groups,
        extra,
    })
}

fn all_values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

fn first_value(headers: &HeaderMap, names: &[String]) -> Option<String> {
    names
        .iter()
        .find_map(|name| all_values(headers, name).into_iter().next())
}

/// `%XX` escapes in extra keys (kube-apiserver escapes characters a header name cannot hold).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RequestHeaderConfig {
        let data: BTreeMap<String, String> = [
            (CLIENT_CA_KEY, "-----BEGIN CERTIFICATE-----\n"),
            (ALLOWED_NAMES_KEY, r#"["front-proxy-client"]"#),
            (USERNAME_HEADERS_KEY, r#"["X-Remote-User"]"#),
            (GROUP_HEADERS_KEY, r#"["X-Remote-Group"]"#),
            (EXTRA_PREFIXES_KEY, r#"["X-Remote-Extra-"]"#),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        RequestHeaderConfig::from_config_map(&data).unwrap()
    }

    fn cert(name: &str) -> VerifiedClientCert {
        VerifiedClientCert {
            common_name: name.into(),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn headers_name_the_user_on_a_front_proxy_connection() {
        let got = authenticate(
            &config(),
            Some(&cert("front-proxy-client")),
            &headers(&[
                ("x-remote-user", "alice"),
                ("x-remote-group", "sre"),
                ("x-remote-group", "system:authenticated"),
                ("x-remote-extra-scopes", "a"),
                ("x-remote-extra-acme.com%2fproject", "p1"),
            ]),
        )
        .unwrap();
        assert_eq!(got.user, "alice");
        assert_eq!(got.groups, ["sre", "system:authenticated"]);
        assert_eq!(got.extra["scopes"], ["a"]);
        assert_eq!(got.extra["acme.com/project"], ["p1"]);
    }

    #[test]
    fn forged_headers_without_the_certificate_are_not_believed() {
        let got = authenticate(&config(), None, &headers(&[("x-remote-user", "admin")]));
        assert_eq!(got, Err(AuthenticationError::NoFrontProxyCertificate));
    }

    #[test]
    fn a_certificate_with_another_common_name_is_refused() {
        let got = authenticate(
            &config(),
            Some(&cert("someone-else")),
            &headers(&[("x-remote-user", "admin")]),
        );
        assert!(matches!(
            got,
            Err(AuthenticationError::NameNotAllowed { .. })
        ));
    }

    #[test]
    fn empty_allowed_names_accept_any_certificate_of_the_ca() {
        let mut config = config();
        config.allowed_names.clear();
        let got = authenticate(
            &config,
            Some(&cert("anything")),
            &headers(&[("x-remote-user", "bob")]),
        );
        assert_eq!(got.unwrap().user, "bob");
    }

    #[test]
    fn a_request_without_a_user_header_is_refused() {
        let got = authenticate(&config(), Some(&cert("front-proxy-client")), &headers(&[]));
        assert_eq!(got, Err(AuthenticationError::NoUser));
    }

    #[test]
    fn a_config_map_without_the_ca_is_a_clear_error() {
        let err = RequestHeaderConfig::from_config_map(&BTreeMap::new()).unwrap_err();
        assert!(
            err.to_string().contains("requestheader-client-ca-file"),
            "{err}"
        );
    }
}

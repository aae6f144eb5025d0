//! Resolves a container's environment the way the kubelet does: `envFrom` first, then `env` (which
//! wins), with `valueFrom` read from Secrets, ConfigMaps and the pod's own fields, and `$(VAR)`
//! references expanded against the variables defined before them.
//!
//! Pure: the Secrets and ConfigMaps are fetched beforehand ([`referenced_objects`] names them) and
//! passed in as [`ObjectData`], so every rule here has a plain unit test.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, Pod};

use super::config_error::ContainerConfigError;

/// The pod IP every process pod reports: processes share the host's loopback network.
pub const POD_IP: &str = "127.0.0.1";

/// The pod fields that `fieldRef` and the downward API can expose.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodFacts {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub node_name: String,
    pub service_account: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl PodFacts {
    /// Reads the facts from a pod object; absent fields become empty strings.
    pub fn of(pod: &Pod) -> PodFacts {
        let spec = pod.spec.as_ref();
        PodFacts {
            name: pod.metadata.name.clone().unwrap_or_default(),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            node_name: spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
            service_account: service_account_name(pod),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            annotations: pod.metadata.annotations.clone().unwrap_or_default(),
        }
    }

    /// The value of a `fieldRef.fieldPath`.
    pub fn field(&self, path: &str) -> Result<String, ContainerConfigError> {
        let value = match path {
            "metadata.name" => self.name.clone(),
            "metadata.namespace" => self.namespace.clone(),
            "metadata.uid" => self.uid.clone(),
            "spec.nodeName" => self.node_name.clone(),
            "spec.serviceAccountName" => self.service_account.clone(),
            "status.podIP" | "status.hostIP" => POD_IP.to_string(),
            "status.podIPs" | "status.hostIPs" => POD_IP.to_string(),
            "metadata.labels" => render_map(&self.labels),
            "metadata.annotations" => render_map(&self.annotations),
            _ => {
                if let Some(key) = bracketed_key(path, "metadata.labels") {
                    self.labels.get(key).cloned().unwrap_or_default()
                } else if let Some(key) = bracketed_key(path, "metadata.annotations") {
                    self.annotations.get(key).cloned().unwrap_or_default()
                } else {
                    return Err(ContainerConfigError::UnsupportedFieldPath {
                        path: path.to_string(),
                    });
                }
            }
        };
        Ok(value)
    }
}

/// `spec.serviceAccountName`, defaulting to `default` like the API server's admission does.
pub fn service_account_name(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "default".to_string())
}

/// `metadata.labels['app']` → `app`.
fn bracketed_key<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let inner = path.strip_prefix(prefix)?.strip_prefix("['")?;
    inner.strip_suffix("']")
}

/// The downward API's rendering of a label or annotation map: `key="value"` lines, sorted.
fn render_map(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The data of the Secrets and ConfigMaps a pod refers to, by name; a name that is absent here
/// does not exist in the pod's namespace. Secret data is already base64-decoded.
#[derive(Clone, Debug, Default)]
pub struct ObjectData {
    pub secrets: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    pub config_maps: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
}

/// Names of the Secrets and ConfigMaps a pod's first container and volumes refer to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReferencedObjects {
    pub secrets: BTreeSet<String>,
    pub config_maps: BTreeSet<String>,
}

/// Collects the Secret and ConfigMap names that `container`'s env and the pod's volumes use.
pub fn referenced_objects(pod: &Pod, container: &Container) -> ReferencedObjects {
    let mut refs = ReferencedObjects::default();
    for from in container.env_from.iter().flatten() {
        if let Some(cm) = &from.config_map_ref {
            refs.config_maps.insert(cm.name.clone());
        }
        if let Some(secret) = &from.secret_ref {
            refs.secrets.insert(secret.name.clone());
        }
    }
    for var in container.env.iter().flatten() {
        let Some(source) = &var.value_from else {
            continue;
        };
        if let Some(key) = &source.config_map_key_ref {
            refs.config_maps.insert(key.name.clone());
        }
        if let Some(key) = &source.secret_key_ref {
            refs.secrets.insert(key.name.clone());
        }
    }
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        if let Some(cm) = &volume.config_map {
            refs.config_maps.insert(cm.name.clone());
        }
        if let Some(secret) = volume.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            refs.secrets.insert(secret);
        }
        for source in volume
            .projected
            .iter()
            .flat_map(|p| p.sources.iter().flatten())
        {
            if let Some(cm) = &source.config_map {
                refs.config_maps.insert(cm.name.clone());
            }
            if let Some(secret) = &source.secret {
                refs.secrets.insert(secret.name.clone());
            }
        }
    }
    refs
}

/// The container's environment, in definition order, before path rewriting.
pub fn resolve_env(
    container: &Container,
    facts: &PodFacts,
    objects: &ObjectData,
) -> Result<Vec<(String, String)>, ContainerConfigError> {
    let mut resolved: Vec<(String, String)> = Vec::new();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or("");
        let (data, kind, name, optional) = if let Some(cm) = &from.config_map_ref {
            (
                objects.config_maps.get(&cm.name),
                "configmap",
                &cm.name,
                cm.optional.unwrap_or(false),
            )
        } else if let Some(secret) = &from.secret_ref {
            (
                objects.secrets.get(&secret.name),
                "secret",
                &secret.name,
                secret.optional.unwrap_or(false),
            )
        } else {
            continue;
        };
        match data {
            Some(data) => {
                for (key, value) in data {
                    let var = format!("{prefix}{key}");
                    // The real kubelet skips keys that are not valid env names (with an Event).
                    if is_env_name(&var) {
                        set(
                            &mut resolved,
                            var,
                            String::from_utf8_lossy(value).into_owned(),
                        );
                    }
                }
            }
            None if optional => {}
            None => return Err(not_found(kind, name)),
        }
    }
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (_, Some(source)) => {
                match resolve_value_from(&var.name, source, facts, objects)? {
                    Some(value) => value,
                    // An optional reference that is missing leaves the variable unset.
                    None => continue,
                }
            }
            (Some(value), None) => expand(value, &resolved),
            (None, None) => String::new(),
        };
        set(&mut resolved, var.name.clone(), value);
    }
    Ok(resolved)
}

fn resolve_value_from(
    var: &str,
    source: &k8s_openapi::api::core::v1::EnvVarSource,
    facts: &PodFacts,
    objects: &ObjectData,
) -> Result<Option<String>, ContainerConfigError> {
    if let Some(field) = &source.field_ref {
        return facts.field(&field.field_path).map(Some);
    }
    let (data, kind, name, key, optional) = if let Some(sel) = &source.secret_key_ref {
        (
            objects.secrets.get(&sel.name),
            "secret",
            &sel.name,
            &sel.key,
            sel.optional.unwrap_or(false),
        )
    } else if let Some(sel) = &source.config_map_key_ref {
        (
            objects.config_maps.get(&sel.name),
            "configmap",
            &sel.name,
            &sel.key,
            sel.optional.unwrap_or(false),
        )
    } else {
        let source_kind = if source.resource_field_ref.is_some() {
            "resourceFieldRef"
        } else if source.file_key_ref.is_some() {
            "fileKeyRef"
        } else {
            "an empty valueFrom"
        };
        return Err(ContainerConfigError::UnsupportedEnvSource {
            var: var.to_string(),
            source_kind,
        });
    };
    let Some(data) = data else {
        return if optional {
            Ok(None)
        } else {
            Err(not_found(kind, name))
        };
    };
    match data.get(key) {
        Some(value) => Ok(Some(String::from_utf8_lossy(value).into_owned())),
        None if optional => Ok(None),
        None => Err(ContainerConfigError::KeyNotFound {
            kind: if kind == "secret" {
                "Secret"
            } else {
                "ConfigMap"
            },
            namespace: facts.namespace.clone(),
            name: name.clone(),
            key: key.clone(),
        }),
    }
}

fn not_found(kind: &str, name: &str) -> ContainerConfigError {
    if kind == "secret" {
        ContainerConfigError::SecretNotFound {
            name: name.to_string(),
        }
    } else {
        ContainerConfigError::ConfigMapNotFound {
            name: name.to_string(),
        }
    }
}

/// Sets `name`, replacing an earlier definition in place (later definitions win, order is kept).
fn set(env: &mut Vec<(String, String)>, name: String, value: String) {
    match env.iter_mut().find(|(existing, _)| *existing == name) {
        Some(slot) => slot.1 = value,
        None => env.push((name, value)),
    }
}

/// Whether `name` is a valid environment variable name (C identifier rules, plus `.` and `-`
/// which Kubernetes also accepts).
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Kubernetes' `$(VAR)` expansion: a defined `$(VAR)` is replaced by its value, an undefined one is
/// kept as written, `$$` becomes `$` (so `$$(VAR)` yields a literal `$(VAR)`).
pub fn expand(input: &str, env: &[(String, String)]) -> String {
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        match after.chars().next() {
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('(') => match after.find(')') {
                Some(close) => {
                    let name = &after[1..close];
                    match lookup(name) {
                        Some(value) => out.push_str(value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = &after[1..];
                }
            },
            Some(other) => {
                out.push('$');
                out.push(other);
                rest = &after[other.len_utf8()..];
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource,
        ObjectFieldSelector, SecretEnvSource, SecretKeySelector,
    };

    use super::*;

    fn facts() -> PodFacts {
        PodFacts {
            name: "agent-1".into(),
            namespace: "ns1".into(),
            uid: "uid-1".into(),
            node_name: "local".into(),
            service_account: "agent".into(),
            labels: BTreeMap::from([("app".into(), "x".into())]),
            annotations: BTreeMap::new(),
        }
    }

    fn objects() -> ObjectData {
        let mut objects = ObjectData::default();
        objects.secrets.insert(
            "creds".into(),
            BTreeMap::from([("api-key".into(), b"sk-123".to_vec())]),
        );
        objects.config_maps.insert(
            "settings".into(),
            BTreeMap::from([
                ("MODEL".into(), b"claude".to_vec()),
                ("bad key".into(), b"skipped".to_vec()),
            ]),
        );
        objects
    }

    fn value(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            ..EnvVar::default()
        }
    }

    fn from(name: &str, source: EnvVarSource) -> EnvVar {
        EnvVar {
            name: name.into(),
            value_from: Some(source),
            ..EnvVar::default()
        }
    }

    fn secret_key(name: &str, key: &str, optional: Option<bool>) -> EnvVarSource {
        EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: name.into(),
                key: key.into(),
                optional,
            }),
            ..EnvVarSource::default()
        }
    }

    fn field(path: &str) -> EnvVarSource {
        EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                api_version: None,
            }),
            ..EnvVarSource::default()
        }
    }

    #[test]
    fn resolves_every_source_kind() {
        let container = Container {
            env_from: Some(vec![EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource {
                    name: "settings".into(),
                    optional: None,
                }),
                prefix: Some("CFG_".into()),
                ..EnvFromSource::default()
            }]),
            env: Some(vec![
                value("PLAIN", "v"),
                from("KEY", secret_key("creds", "api-key", None)),
                from(
                    "MODEL",
                    EnvVarSource {
                        config_map_key_ref: Some(ConfigMapKeySelector {
                            name: "settings".into(),
                            key: "MODEL".into(),
                            optional: None,
                        }),
                        ..EnvVarSource::default()
                    },
                ),
                from("POD", field("metadata.name")),
                from("NS", field("metadata.namespace")),
                from("UID", field("metadata.uid")),
                from("NODE", field("spec.nodeName")),
                from("SA", field("spec.serviceAccountName")),
                from("IP", field("status.podIP")),
                from("APP", field("metadata.labels['app']")),
            ]),
            ..Container::default()
        };
        let env = resolve_env(&container, &facts(), &objects()).unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("CFG_MODEL"), Some("claude"));
        assert_eq!(get("CFG_bad key"), None);
        assert_eq!(get("PLAIN"), Some("v"));
        assert_eq!(get("KEY"), Some("sk-123"));
        assert_eq!(get("MODEL"), Some("claude"));
        assert_eq!(get("POD"), Some("agent-1"));
        assert_eq!(get("NS"), Some("ns1"));
        assert_eq!(get("UID"), Some("uid-1"));
        assert_eq!(get("NODE"), Some("local"));
        assert_eq!(get("SA"), Some("agent"));
        assert_eq!(get("IP"), Some(POD_IP));
        assert_eq!(get("APP"), Some("x"));
    }

    #[test]
    fn missing_secret_is_an_error_unless_optional() {
        let container = Container {
            env: Some(vec![from("K", secret_key("nope", "k", None))]),
            ..Container::default()
        };
        let err = resolve_env(&container, &facts(), &objects()).unwrap_err();
        assert_eq!(err.to_string(), "secret \"nope\" not found");
        assert_eq!(err.reason(), "CreateContainerConfigError");

        let container = Container {
            env: Some(vec![
                from("K", secret_key("nope", "k", Some(true))),
                from("K2", secret_key("creds", "missing", Some(true))),
            ]),
            env_from: Some(vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: "nope".into(),
                    optional: Some(true),
                }),
                ..EnvFromSource::default()
            }]),
            ..Container::default()
        };
        assert_eq!(
            resolve_env(&container, &facts(), &objects()).unwrap(),
            vec![]
        );
    }

    #[test]
    fn missing_key_names_the_object() {
        let container = Container {
            env: Some(vec![from("K", secret_key("creds", "other", None))]),
            ..Container::default()
        };
        let err = resolve_env(&container, &facts(), &objects()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "couldn't find key other in Secret ns1/creds"
        );
    }

    #[test]
    fn env_overrides_env_from_and_expands_earlier_vars() {
        let container = Container {
            env_from: Some(vec![EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource {
                    name: "settings".into(),
                    optional: None,
                }),
                ..EnvFromSource::default()
            }]),
            env: Some(vec![
                value("MODEL", "override"),
                value("URL", "http://$(MODEL)/$(UNDEFINED)/$$(MODEL)"),
            ]),
            ..Container::default()
        };
        let env = resolve_env(&container, &facts(), &objects()).unwrap();
        assert_eq!(
            env,
            vec![
                ("MODEL".into(), "override".into()),
                ("URL".into(), "http://override/$(UNDEFINED)/$(MODEL)".into()),
            ]
        );
    }

    #[test]
    fn expansion_edge_cases() {
        let env = vec![("A".to_string(), "1".to_string())];
        assert_eq!(expand("$(A)$(A)", &env), "11");
        assert_eq!(expand("$(A", &env), "$(A");
        assert_eq!(expand("$A $", &env), "$A $");
        assert_eq!(expand("é$(A)é", &env), "é1é");
    }

    #[test]
    fn unsupported_field_path_is_reported() {
        let err = facts().field("spec.containers[0].image").unwrap_err();
        assert!(err.to_string().contains("unsupported fieldPath"), "{err}");
    }
}

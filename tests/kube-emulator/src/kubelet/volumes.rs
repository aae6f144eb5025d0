//! Backs a pod's volumes with host directories and maps its volumeMounts onto them.
//!
//! - `emptyDir` → `<pod dir>/volumes/<name>`, removed with the pod.
//! - `persistentVolumeClaim` → `<work_dir>/pvc/<namespace>/<claim>`, shared and kept after the pod.
//! - `configMap`, `secret`, `downwardAPI`, `projected` → `<pod dir>/volumes/<name>` with one file
//!   per key (or per `items` entry), written before every container start. A projected
//!   `serviceAccountToken` is the pod's one pod-bound TokenRequest token (the kubelet's own
//!   lifetime and audience, not the source's `expirationSeconds`/`audience`), rewritten on refresh.
//! - `hostPath` → the host path itself (the process runs on the host anyway).
//!
//! Every other volume type stops the pod with a waiting reason. `readOnly` is not enforced.
//! [`plan_volumes`] decides everything from the spec and fetched objects (pure, unit tested);
//! [`materialize`] creates the directories and files.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, KeyToPath, Pod, Volume};

use super::config_error::ContainerConfigError;
use super::env::{ObjectData, PodFacts};
use super::layout::{PodLayout, pvc_dir};
use super::path_map::{PathMap, is_contained_relative};

/// Default file mode of configMap, secret, downwardAPI and projected files (Kubernetes' 0644).
const DEFAULT_FILE_MODE: u32 = 0o644;

/// One file to write into a volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeFile {
    /// Path relative to the volume directory, already checked to stay inside it.
    pub relative: String,
    pub contents: Vec<u8>,
    pub mode: u32,
    /// A ServiceAccount token: rewritten when the kubelet refreshes the pod's token.
    pub is_token: bool,
}

/// How one volume is backed on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedVolume {
    pub host_dir: PathBuf,
    /// Whether the kubelet creates `host_dir` (false for hostPath volumes of other types).
    pub create_dir: bool,
    pub files: Vec<VolumeFile>,
}

/// Claim names of the pod's persistentVolumeClaim volumes, to check that they exist.
pub fn referenced_claims(pod: &Pod) -> BTreeSet<String> {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|pvc| pvc.claim_name.clone())
        .collect()
}

/// Plans every volume of the pod. `claims` holds the claims that exist; `token` is the pod's
/// ServiceAccount token for projected `serviceAccountToken` sources.
pub fn plan_volumes(
    pod: &Pod,
    layout: &PodLayout,
    work_dir: &Path,
    facts: &PodFacts,
    objects: &ObjectData,
    claims: &BTreeSet<String>,
    token: Option<&str>,
) -> Result<BTreeMap<String, PlannedVolume>, ContainerConfigError> {
    let mut planned = BTreeMap::new();
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        check_name("volume name", &volume.name)?;
        let plan = plan_volume(volume, layout, work_dir, facts, objects, claims, token)?;
        planned.insert(volume.name.clone(), plan);
    }
    Ok(planned)
}

fn plan_volume(
    volume: &Volume,
    layout: &PodLayout,
    work_dir: &Path,
    facts: &PodFacts,
    objects: &ObjectData,
    claims: &BTreeSet<String>,
    token: Option<&str>,
) -> Result<PlannedVolume, ContainerConfigError> {
    let pod_scoped = |files| PlannedVolume {
        host_dir: layout.volume_dir(&volume.name),
        create_dir: true,
        files,
    };
    if volume.empty_dir.is_some() {
        return Ok(pod_scoped(Vec::new()));
    }
    if let Some(pvc) = &volume.persistent_volume_claim {
        check_name("claimName", &pvc.claim_name)?;
        check_name("namespace", &facts.namespace)?;
        if !claims.contains(&pvc.claim_name) {
            return Err(ContainerConfigError::ClaimNotFound {
                claim: pvc.claim_name.clone(),
            });
        }
        return Ok(PlannedVolume {
            host_dir: pvc_dir(work_dir, &facts.namespace, &pvc.claim_name),
            create_dir: true,
            files: Vec::new(),
        });
    }
    if let Some(host) = &volume.host_path {
        return Ok(PlannedVolume {
            host_dir: PathBuf::from(&host.path),
            create_dir: host.type_.as_deref() == Some("DirectoryOrCreate"),
            files: Vec::new(),
        });
    }
    if let Some(cm) = &volume.config_map {
        let mode = mode_or_default(cm.default_mode);
        let files = key_files(
            &volume.name,
            &facts.namespace,
            objects.config_maps.get(&cm.name),
            "configmap",
            &cm.name,
            cm.items.as_deref(),
            cm.optional.unwrap_or(false),
            mode,
        )?;
        return Ok(pod_scoped(files));
    }
    if let Some(secret) = &volume.secret {
        let name = secret.secret_name.clone().unwrap_or_default();
        let mode = mode_or_default(secret.default_mode);
        let files = key_files(
            &volume.name,
            &facts.namespace,
            objects.secrets.get(&name),
            "secret",
            &name,
            secret.items.as_deref(),
            secret.optional.unwrap_or(false),
            mode,
        )?;
        return Ok(pod_scoped(files));
    }
    if let Some(downward) = &volume.downward_api {
        let mode = mode_or_default(downward.default_mode);
        let files = downward_files(&volume.name, downward.items.as_deref(), facts, mode)?;
        return Ok(pod_scoped(files));
    }
    if let Some(projected) = &volume.projected {
        let mode = mode_or_default(projected.default_mode);
        let mut files = Vec::new();
        for source in projected.sources.iter().flatten() {
            if let Some(cm) = &source.config_map {
                files.extend(key_files(
                    &volume.name,
                    &facts.namespace,
                    objects.config_maps.get(&cm.name),
                    "configmap",
                    &cm.name,
                    cm.items.as_deref(),
                    cm.optional.unwrap_or(false),
                    mode,
                )?);
            } else if let Some(secret) = &source.secret {
                files.extend(key_files(
                    &volume.name,
                    &facts.namespace,
                    objects.secrets.get(&secret.name),
                    "secret",
                    &secret.name,
                    secret.items.as_deref(),
                    secret.optional.unwrap_or(false),
                    mode,
                )?);
            } else if let Some(downward) = &source.downward_api {
                files.extend(downward_files(
                    &volume.name,
                    downward.items.as_deref(),
                    facts,
                    mode,
                )?);
            } else if let Some(sa_token) = &source.service_account_token {
                check_relative(&volume.name, &sa_token.path)?;
                let Some(token) = token else {
                    return Err(ContainerConfigError::UnsupportedVolume {
                        volume: volume.name.clone(),
                        detail: "serviceAccountToken projection without a ServiceAccount token"
                            .to_string(),
                    });
                };
                files.push(VolumeFile {
                    relative: sa_token.path.clone(),
                    contents: token.as_bytes().to_vec(),
                    mode,
                    is_token: true,
                });
            } else {
                return Err(ContainerConfigError::UnsupportedVolume {
                    volume: volume.name.clone(),
                    detail: "projected source not supported by the process kubelet".to_string(),
                });
            }
        }
        return Ok(pod_scoped(files));
    }
    Err(ContainerConfigError::UnsupportedVolume {
        volume: volume.name.clone(),
        detail: "volume type not supported by the process kubelet".to_string(),
    })
}

fn mode_or_default(mode: Option<i32>) -> u32 {
    mode.map_or(DEFAULT_FILE_MODE, |m| (m as u32) & 0o777)
}

#[allow(clippy::too_many_arguments)]
fn key_files(
    volume: &str,
    namespace: &str,
    data: Option<&BTreeMap<String, Vec<u8>>>,
    kind: &'static str,
    name: &str,
    items: Option<&[KeyToPath]>,
    optional: bool,
    mode: u32,
) -> Result<Vec<VolumeFile>, ContainerConfigError> {
    let Some(data) = data else {
        return if optional {
            Ok(Vec::new())
        } else {
            Err(ContainerConfigError::VolumeSourceNotFound {
                volume: volume.to_string(),
                kind,
                name: name.to_string(),
            })
        };
    };
    let mut files = Vec::new();
    match items {
        Some(items) => {
            for item in items {
                check_relative(volume, &item.path)?;
                match data.get(&item.key) {
                    Some(contents) => files.push(VolumeFile {
                        relative: item.path.clone(),
                        contents: contents.clone(),
                        mode: item.mode.map_or(mode, |m| (m as u32) & 0o777),
                        is_token: false,
                    }),
                    None if optional => {}
                    None => {
                        return Err(ContainerConfigError::KeyNotFound {
                            kind: if kind == "secret" {
                                "Secret"
                            } else {
                                "ConfigMap"
                            },
                            namespace: namespace.to_string(),
                            name: name.to_string(),
                            key: item.key.clone(),
                        });
                    }
                }
            }
        }
        None => {
            for (key, contents) in data {
                check_relative(volume, key)?;
                files.push(VolumeFile {
                    relative: key.clone(),
                    contents: contents.clone(),
                    mode,
                    is_token: false,
                });
            }
        }
    }
    Ok(files)
}

fn downward_files(
    volume: &str,
    items: Option<&[k8s_openapi::api::core::v1::DownwardAPIVolumeFile]>,
    facts: &PodFacts,
    mode: u32,
) -> Result<Vec<VolumeFile>, ContainerConfigError> {
    let mut files = Vec::new();
    for item in items.into_iter().flatten() {
        check_relative(volume, &item.path)?;
        let Some(field) = &item.field_ref else {
            return Err(ContainerConfigError::UnsupportedVolume {
                volume: volume.to_string(),
                detail: "downwardAPI resourceFieldRef is not supported by the process kubelet"
                    .to_string(),
            });
        };
        files.push(VolumeFile {
            relative: item.path.clone(),
            contents: facts.field(&field.field_path)?.into_bytes(),
            mode: item.mode.map_or(mode, |m| (m as u32) & 0o777),
            is_token: false,
        });
    }
    Ok(files)
}

fn check_relative(volume: &str, path: &str) -> Result<(), ContainerConfigError> {
    if is_contained_relative(path) {
        Ok(())
    } else {
        Err(ContainerConfigError::UnsafePath {
            what: format!("volume {volume:?}"),
            path: path.to_string(),
        })
    }
}

/// Names become single path components, so they must not contain `/` or be `.`/`..`.
fn check_name(what: &str, name: &str) -> Result<(), ContainerConfigError> {
    if is_contained_relative(name) && !name.contains('/') && name != "." {
        Ok(())
    } else {
        Err(ContainerConfigError::UnsafePath {
            what: what.to_string(),
            path: name.to_string(),
        })
    }
}

/// The container's volumeMounts as a [`PathMap`] (with `subPath` applied).
pub fn mount_map(
    container: &Container,
    volumes: &BTreeMap<String, PlannedVolume>,
) -> Result<PathMap, ContainerConfigError> {
    let mut map = PathMap::new();
    for mount in container.volume_mounts.iter().flatten() {
        let Some(volume) = volumes.get(&mount.name) else {
            return Err(ContainerConfigError::UnknownVolume {
                volume: mount.name.clone(),
                mount_path: mount.mount_path.clone(),
            });
        };
        if mount.mount_path.trim_end_matches('/').is_empty() {
            return Err(ContainerConfigError::UnsafePath {
                what: format!("volumeMount {:?}", mount.name),
                path: mount.mount_path.clone(),
            });
        }
        let host = match mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => {
                check_relative(&mount.name, sub)?;
                volume.host_dir.join(sub)
            }
            None => volume.host_dir.clone(),
        };
        map.insert(&mount.mount_path, host);
    }
    Ok(map)
}

/// Creates the volume directories and writes their files.
pub fn materialize(volumes: &BTreeMap<String, PlannedVolume>) -> io::Result<()> {
    for volume in volumes.values() {
        if volume.create_dir {
            std::fs::create_dir_all(&volume.host_dir)?;
        }
        for file in &volume.files {
            write_file(
                &volume.host_dir.join(&file.relative),
                &file.contents,
                file.mode,
            )?;
        }
    }
    Ok(())
}

/// Writes a file through a temporary name and a rename, so a reader never sees half a file.
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{file_name}.tmp"));
    std::fs::write(&temp, contents)?;
    std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&temp, path)
}

/// Whether a projected volume of the pod has a `serviceAccountToken` source.
pub fn projects_token(pod: &Pod) -> bool {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| v.projected.as_ref())
        .flat_map(|p| p.sources.iter().flatten())
        .any(|s| s.service_account_token.is_some())
}

/// Mounts that need the pod's token: the token files in projected volumes, as host paths.
pub fn token_files(volumes: &BTreeMap<String, PlannedVolume>) -> Vec<(PathBuf, u32)> {
    volumes
        .values()
        .flat_map(|v| {
            v.files
                .iter()
                .filter(|f| f.is_token)
                .map(|f| (v.host_dir.join(&f.relative), f.mode))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        ConfigMapVolumeSource, EmptyDirVolumeSource, PersistentVolumeClaimVolumeSource, PodSpec,
        SecretVolumeSource, VolumeMount,
    };

    use super::*;

    fn pod(volumes: Vec<Volume>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                volumes: Some(volumes),
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    fn facts() -> PodFacts {
        PodFacts {
            namespace: "ns1".into(),
            name: "p".into(),
            ..PodFacts::default()
        }
    }

    fn volume(name: &str) -> Volume {
        Volume {
            name: name.into(),
            ..Volume::default()
        }
    }

    #[test]
    fn plans_each_supported_type() {
        let layout = PodLayout::new(Path::new("/w"), "uid1");
        let mut objects = ObjectData::default();
        objects.config_maps.insert(
            "cm".into(),
            BTreeMap::from([("a.txt".into(), b"A".to_vec()), ("b".into(), b"B".to_vec())]),
        );
        let pod = pod(vec![
            Volume {
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..volume("scratch")
            },
            Volume {
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: "data".into(),
                    read_only: None,
                }),
                ..volume("data")
            },
            Volume {
                config_map: Some(ConfigMapVolumeSource {
                    name: "cm".into(),
                    items: Some(vec![KeyToPath {
                        key: "a.txt".into(),
                        path: "sub/a".into(),
                        mode: Some(0o600),
                    }]),
                    ..ConfigMapVolumeSource::default()
                }),
                ..volume("cfg")
            },
            Volume {
                secret: Some(SecretVolumeSource {
                    secret_name: Some("absent".into()),
                    optional: Some(true),
                    ..SecretVolumeSource::default()
                }),
                ..volume("opt")
            },
        ]);
        let claims = BTreeSet::from(["data".to_string()]);
        let plan = plan_volumes(
            &pod,
            &layout,
            Path::new("/w"),
            &facts(),
            &objects,
            &claims,
            None,
        )
        .unwrap();
        assert_eq!(
            plan["scratch"].host_dir,
            PathBuf::from("/w/pods/uid1/volumes/scratch")
        );
        assert_eq!(plan["data"].host_dir, PathBuf::from("/w/pvc/ns1/data"));
        assert_eq!(
            plan["cfg"].files,
            vec![VolumeFile {
                relative: "sub/a".into(),
                contents: b"A".to_vec(),
                mode: 0o600,
                is_token: false
            }]
        );
        assert!(plan["opt"].files.is_empty());
    }

    #[test]
    fn the_kube_api_access_volume_projects_token_ca_and_namespace() {
        let layout = PodLayout::new(Path::new("/w"), "uid1");
        let mut objects = ObjectData::default();
        objects.config_maps.insert(
            "kube-root-ca.crt".into(),
            BTreeMap::from([("ca.crt".into(), b"PEM".to_vec())]),
        );
        let access: Volume = serde_json::from_value(serde_json::json!({
            "name": "kube-api-access-abcde",
            "projected": {"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace",
                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ]},
        }))
        .unwrap();
        let pod = pod(vec![access]);
        assert!(projects_token(&pod));
        let plan = plan_volumes(
            &pod,
            &layout,
            Path::new("/w"),
            &facts(),
            &objects,
            &BTreeSet::new(),
            Some("jwt"),
        )
        .unwrap();
        let files: Vec<_> = plan["kube-api-access-abcde"]
            .files
            .iter()
            .map(|f| {
                (
                    f.relative.as_str(),
                    f.contents.as_slice(),
                    f.mode,
                    f.is_token,
                )
            })
            .collect();
        assert_eq!(
            files,
            vec![
                ("token", &b"jwt"[..], 0o644, true),
                ("ca.crt", &b"PEM"[..], 0o644, false),
                ("namespace", &b"ns1"[..], 0o644, false),
            ]
        );
        let err = plan_volumes(
            &pod,
            &layout,
            Path::new("/w"),
            &facts(),
            &objects,
            &BTreeSet::new(),
            None,
        )
        .unwrap_err();
        assert!(
            matches!(err, ContainerConfigError::UnsupportedVolume { .. }),
            "{err}"
        );
    }

    #[test]
    fn missing_claim_and_missing_config_map_are_reported() {
        let layout = PodLayout::new(Path::new("/w"), "uid1");
        let claim_pod = pod(vec![Volume {
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: "data".into(),
                read_only: None,
            }),
            ..volume("data")
        }]);
        let err = plan_volumes(
            &claim_pod,
            &layout,
            Path::new("/w"),
            &facts(),
            &ObjectData::default(),
            &BTreeSet::new(),
            None,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "persistentvolumeclaim \"data\" not found");

        let cm_pod = pod(vec![Volume {
            config_map: Some(ConfigMapVolumeSource {
                name: "cm".into(),
                ..ConfigMapVolumeSource::default()
            }),
            ..volume("cfg")
        }]);
        let err = plan_volumes(
            &cm_pod,
            &layout,
            Path::new("/w"),
            &facts(),
            &ObjectData::default(),
            &BTreeSet::new(),
            None,
        )
        .unwrap_err();
        assert_eq!(err.reason(), "ContainerCreating");
    }

    #[test]
    fn escaping_paths_are_rejected() {
        let layout = PodLayout::new(Path::new("/w"), "uid1");
        let mut objects = ObjectData::default();
        objects
            .config_maps
            .insert("cm".into(), BTreeMap::from([("k".into(), b"x".to_vec())]));
        let pod = pod(vec![Volume {
            config_map: Some(ConfigMapVolumeSource {
                name: "cm".into(),
                items: Some(vec![KeyToPath {
                    key: "k".into(),
                    path: "../../etc/x".into(),
                    mode: None,
                }]),
                ..ConfigMapVolumeSource::default()
            }),
            ..volume("cfg")
        }]);
        let err = plan_volumes(
            &pod,
            &layout,
            Path::new("/w"),
            &facts(),
            &objects,
            &BTreeSet::new(),
            None,
        )
        .unwrap_err();
        assert!(
            matches!(err, ContainerConfigError::UnsafePath { .. }),
            "{err}"
        );
    }

    #[test]
    fn mounts_map_with_sub_paths_and_unknown_volumes_fail() {
        let volumes = BTreeMap::from([(
            "data".to_string(),
            PlannedVolume {
                host_dir: PathBuf::from("/w/pvc/ns/data"),
                create_dir: true,
                files: vec![],
            },
        )]);
        let container = Container {
            volume_mounts: Some(vec![
                VolumeMount {
                    name: "data".into(),
                    mount_path: "/data".into(),
                    ..VolumeMount::default()
                },
                VolumeMount {
                    name: "data".into(),
                    mount_path: "/cache".into(),
                    sub_path: Some("cache".into()),
                    ..VolumeMount::default()
                },
            ]),
            ..Container::default()
        };
        let map = mount_map(&container, &volumes).unwrap();
        assert_eq!(map.rewrite("/data/x"), "/w/pvc/ns/data/x");
        assert_eq!(map.rewrite("/cache"), "/w/pvc/ns/data/cache");

        let container = Container {
            volume_mounts: Some(vec![VolumeMount {
                name: "nope".into(),
                mount_path: "/x".into(),
                ..VolumeMount::default()
            }]),
            ..Container::default()
        };
        assert!(matches!(
            mount_map(&container, &volumes),
            Err(ContainerConfigError::UnknownVolume { .. })
        ));
    }
}

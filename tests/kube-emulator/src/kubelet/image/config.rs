//! What an image's OCI config says, and how a pod's container combines with it (the rules of
//! the Kubernetes container runtime interface): `command` replaces the image's `Entrypoint` and
//! drops its `Cmd`; `args` alone replaces `Cmd`; container env entries override image env
//! entries of the same name; `runAsUser`/`runAsGroup` (container first, then pod) override the
//! image's `User`, whose name or numeric form is looked up in the image's `/etc/passwd` and
//! `/etc/group`.

use std::path::Path;

use k8s_openapi::api::core::v1::{Container, Pod};
use serde::Deserialize;

use crate::kubelet::config_error::ContainerConfigError;
use crate::kubelet::env;

/// The parts of the OCI image config (`config` object of the image config blob) the kubelet uses.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ImageConfig {
    #[serde(rename = "Entrypoint", default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    pub cmd: Option<Vec<String>>,
    #[serde(rename = "Env", default)]
    pub env: Option<Vec<String>>,
    #[serde(rename = "WorkingDir", default)]
    pub working_dir: Option<String>,
    #[serde(rename = "User", default)]
    pub user: Option<String>,
}

#[derive(Deserialize)]
struct ConfigBlob {
    #[serde(default)]
    config: ImageConfig,
}

impl ImageConfig {
    /// Parses an OCI image config blob (`{"architecture": …, "config": {"Entrypoint": …}}`).
    pub fn from_oci_json(bytes: &[u8]) -> Result<ImageConfig, serde_json::Error> {
        serde_json::from_slice::<ConfigBlob>(bytes).map(|blob| blob.config)
    }

    /// The image's env as name/value pairs (entries without `=` are dropped, as runtimes do).
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .flatten()
            .filter_map(|entry| entry.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// Argv of the container: Kubernetes' `command`/`args` over the image's `Entrypoint`/`Cmd`, with
/// `$(VAR)` references in `command` and `args` expanded against the container's env.
pub fn argv(
    image: &ImageConfig,
    container: &Container,
    container_env: &[(String, String)],
) -> Result<Vec<String>, ContainerConfigError> {
    let expand = |s: &String| env::expand(s, container_env);
    let command: Option<Vec<String>> = container
        .command
        .as_ref()
        .filter(|c| !c.is_empty())
        .map(|c| c.iter().map(expand).collect());
    let args: Option<Vec<String>> = container
        .args
        .as_ref()
        .filter(|a| !a.is_empty())
        .map(|a| a.iter().map(expand).collect());
    let argv: Vec<String> = match (command, args) {
        (Some(command), args) => command
            .into_iter()
            .chain(args.into_iter().flatten())
            .collect(),
        (None, Some(args)) => image
            .entrypoint
            .iter()
            .flatten()
            .cloned()
            .chain(args)
            .collect(),
        (None, None) => image
            .entrypoint
            .iter()
            .flatten()
            .chain(image.cmd.iter().flatten())
            .cloned()
            .collect(),
    };
    if argv.is_empty() {
        return Err(ContainerConfigError::NoCommand);
    }
    Ok(argv)
}

/// The container's environment: the image's, then the container's resolved env on top.
pub fn merged_env(
    image: &ImageConfig,
    container_env: &[(String, String)],
    hostname: &str,
) -> Vec<(String, String)> {
    let mut merged = image.env_pairs();
    let mut set = |name: &str, value: String| match merged.iter_mut().find(|(k, _)| k == name) {
        Some(slot) => slot.1 = value,
        None => merged.push((name.to_string(), value)),
    };
    set("HOSTNAME", hostname.to_string());
    for (name, value) in container_env {
        set(name, value.clone());
    }
    merged
}

/// Numeric uid and gid the container runs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

/// `runAsUser`/`runAsGroup` from the container's, then the pod's securityContext, else the
/// image's `User` (`uid`, `uid:gid`, `name` or `name:group`, resolved in the image's files);
/// root when nobody says.
pub fn run_as(
    image: &ImageConfig,
    pod: &Pod,
    container: &Container,
    rootfs: &Path,
) -> Result<RunAs, ContainerConfigError> {
    let pod_context = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let container_context = container.security_context.as_ref();
    let user = container_context
        .and_then(|c| c.run_as_user)
        .or_else(|| pod_context.and_then(|c| c.run_as_user));
    let group = container_context
        .and_then(|c| c.run_as_group)
        .or_else(|| pod_context.and_then(|c| c.run_as_group));
    let to_id = |value: i64, what: &str| {
        u32::try_from(value).map_err(|_| ContainerConfigError::InvalidUser {
            user: format!("{what} {value}"),
        })
    };

    let (image_user, image_group) = match image.user.as_deref().filter(|u| !u.is_empty()) {
        None => (None, None),
        Some(spec) => {
            let (user_part, group_part) = match spec.split_once(':') {
                Some((u, g)) => (u, Some(g)),
                None => (spec, None),
            };
            (Some(user_part.to_string()), group_part.map(str::to_string))
        }
    };
    let uid = match user {
        Some(uid) => to_id(uid, "runAsUser")?,
        None => match image_user.as_deref() {
            None => 0,
            Some(name) => lookup_id(rootfs, "etc/passwd", name, 2).ok_or_else(|| {
                ContainerConfigError::InvalidUser {
                    user: name.to_string(),
                }
            })?,
        },
    };
    let gid = match group {
        Some(gid) => to_id(gid, "runAsGroup")?,
        None => match image_group.as_deref() {
            Some(name) => lookup_id(rootfs, "etc/group", name, 2).ok_or_else(|| {
                ContainerConfigError::InvalidUser {
                    user: format!("group {name}"),
                }
            })?,
            // No group given: the user's primary group from passwd, else the uid's own number
            // (what runtimes do for a numeric user unknown to the image).
            None => primary_gid(rootfs, uid).unwrap_or(if user.is_some() { 0 } else { uid }),
        },
    };
    Ok(RunAs { uid, gid })
}

/// A numeric id, or the id column (`field`) of the line naming `name` in the image's
/// `passwd`/`group` file.
fn lookup_id(rootfs: &Path, file: &str, name: &str, field: usize) -> Option<u32> {
    if let Ok(id) = name.parse::<u32>() {
        return Some(id);
    }
    let text = std::fs::read_to_string(rootfs.join(file)).ok()?;
    text.lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&name))
        .and_then(|cols| cols.get(field)?.parse().ok())
}

fn primary_gid(rootfs: &Path, uid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(rootfs.join("etc/passwd")).ok()?;
    text.lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|cols| cols.get(2).and_then(|u| u.parse::<u32>().ok()) == Some(uid))
        .and_then(|cols| cols.get(3)?.parse().ok())
}

/// Whether the container's securityContext asks for a read-only root filesystem.
pub fn read_only_root(container: &Container) -> bool {
    container
        .security_context
        .as_ref()
        .and_then(|c| c.read_only_root_filesystem)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSecurityContext, PodSpec, SecurityContext};

    fn image() -> ImageConfig {
        ImageConfig::from_oci_json(
            br#"{"architecture":"amd64","config":{"User":"65532:65532",
                "Env":["PATH=/usr/bin:/bin","HOME=/tmp","BROKEN"],
                "Entrypoint":["/usr/bin/tini","--","/usr/local/bin/app"],"Cmd":["agent"],
                "WorkingDir":"/tmp"}}"#,
        )
        .unwrap()
    }

    fn container(command: Option<&[&str]>, args: Option<&[&str]>) -> Container {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Container {
            command: command.map(owned),
            args: args.map(owned),
            ..Container::default()
        }
    }

    #[test]
    fn command_and_args_combine_with_entrypoint_and_cmd_as_in_kubernetes() {
        let image = image();
        let env = vec![("MODE".to_string(), "investigate".to_string())];
        assert_eq!(
            argv(&image, &container(None, None), &env).unwrap(),
            ["/usr/bin/tini", "--", "/usr/local/bin/app", "agent"]
        );
        assert_eq!(
            argv(&image, &container(None, Some(&["$(MODE)", "--x"])), &env).unwrap(),
            [
                "/usr/bin/tini",
                "--",
                "/usr/local/bin/app",
                "investigate",
                "--x"
            ]
        );
        assert_eq!(
            argv(&image, &container(Some(&["kubectl"]), None), &env).unwrap(),
            ["kubectl"]
        );
        assert_eq!(
            argv(
                &image,
                &container(Some(&["sh", "-c"]), Some(&["echo"])),
                &env
            )
            .unwrap(),
            ["sh", "-c", "echo"]
        );
        assert_eq!(
            argv(&ImageConfig::default(), &container(None, None), &env),
            Err(ContainerConfigError::NoCommand)
        );
    }

    #[test]
    fn container_env_overrides_the_image_env() {
        let env = merged_env(
            &image(),
            &[("HOME".to_string(), "/home/x".to_string())],
            "pod-1",
        );
        assert_eq!(
            env,
            vec![
                ("PATH".to_string(), "/usr/bin:/bin".to_string()),
                ("HOME".to_string(), "/home/x".to_string()),
                ("HOSTNAME".to_string(), "pod-1".to_string()),
            ]
        );
    }

    #[test]
    fn security_context_wins_over_the_image_user() {
        let rootfs = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(rootfs.path().join("etc")).unwrap();
        std::fs::write(
            rootfs.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nagent:x:65532:65533::/tmp:/usr/sbin/nologin\n",
        )
        .unwrap();
        std::fs::write(rootfs.path().join("etc/group"), "agent:x:65533:\n").unwrap();
        let pod = Pod::default();
        let plain = Container::default();
        assert_eq!(
            run_as(&image(), &pod, &plain, rootfs.path()).unwrap(),
            RunAs {
                uid: 65532,
                gid: 65532
            }
        );
        let named = ImageConfig {
            user: Some("agent".into()),
            ..ImageConfig::default()
        };
        assert_eq!(
            run_as(&named, &pod, &plain, rootfs.path()).unwrap(),
            RunAs {
                uid: 65532,
                gid: 65533
            }
        );
        let pod = Pod {
            spec: Some(PodSpec {
                security_context: Some(PodSecurityContext {
                    run_as_user: Some(1000),
                    run_as_group: Some(2000),
                    ..PodSecurityContext::default()
                }),
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        let overriding = Container {
            security_context: Some(SecurityContext {
                run_as_user: Some(1001),
                ..SecurityContext::default()
            }),
            ..Container::default()
        };
        assert_eq!(
            run_as(&named, &pod, &overriding, rootfs.path()).unwrap(),
            RunAs {
                uid: 1001,
                gid: 2000
            }
        );
        let unknown = ImageConfig {
            user: Some("nobody-here".into()),
            ..ImageConfig::default()
        };
        assert!(run_as(&unknown, &Pod::default(), &plain, rootfs.path()).is_err());
        assert_eq!(
            run_as(
                &ImageConfig::default(),
                &Pod::default(),
                &plain,
                rootfs.path()
            )
            .unwrap(),
            RunAs { uid: 0, gid: 0 }
        );
    }
}

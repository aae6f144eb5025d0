//! Turns a pod bound to this node into a ready-to-run process: image → local executable, env and
//! volumes resolved, paths rewritten (see [`path_map`](super::path_map)), credentials written.
//!
//! Problems in the pod's spec or its missing Secrets/ConfigMaps come back as
//! [`LaunchError::Config`], which the worker shows as the container's waiting reason; API and
//! file-system failures come back as their own variants and are retried.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Container, PersistentVolumeClaim, Pod, Secret};
use kube::{Api, Client};

use super::config_error::ContainerConfigError;
use super::credentials::{self, PodToken};
use super::env::{self, ObjectData, PodFacts};
use super::image::{UnpackedImage, pod as image_pod, sandbox as image_sandbox};
use super::layout::PodLayout;
use super::path_map::PathMap;
use super::process::{ProcessSpec, resolve_program};
use super::volumes::{self, PlannedVolume};

/// Where Kubernetes puts the termination message when the container does not say.
pub const DEFAULT_TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";
/// `PATH` for processes when the kubelet itself has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything needed to start (and restart) the container.
#[derive(Clone, Debug)]
pub struct Launch {
    pub container_name: String,
    pub process: ProcessSpec,
    /// Host file the container's termination message is read from.
    pub termination_file: PathBuf,
    /// `terminationMessagePolicy: FallbackToLogsOnError`.
    pub fallback_to_logs: bool,
    /// `local://<executable>`, reported as the container's imageID.
    pub image_id: String,
    pub token: Option<PodToken>,
    /// Projected token files to rewrite on refresh (besides the kubeconfig's token file).
    pub token_files: Vec<(PathBuf, u32)>,
}

/// Why the container cannot be started (yet).
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Config(#[from] ContainerConfigError),
    #[error("reading {kind} {namespace}/{name}")]
    Fetch {
        kind: &'static str,
        namespace: String,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("preparing {what} at {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The pod's first container: the one the process kubelet runs.
pub fn first_container(pod: &Pod) -> Option<&Container> {
    pod.spec.as_ref().and_then(|s| s.containers.first())
}

/// The local executable for `image`: an exact key first, then the image and keys compared without
/// tag or digest (`repo/app:1.2` matches a key `repo/app`, and `repo/app` matches `repo/app:dev`).
pub fn lookup_image<'a>(images: &'a BTreeMap<String, PathBuf>, image: &str) -> Option<&'a PathBuf> {
    if let Some(path) = images.get(image) {
        return Some(path);
    }
    let wanted = strip_tag(image);
    images
        .iter()
        .find(|(key, _)| strip_tag(key) == wanted)
        .map(|(_, path)| path)
}

fn strip_tag(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let name_start = without_digest.rfind('/').map_or(0, |i| i + 1);
    match without_digest[name_start..].rfind(':') {
        Some(colon) => &without_digest[..name_start + colon],
        None => without_digest,
    }
}

/// Inputs of [`prepare`] that come from the kubelet's configuration.
#[derive(Clone, Copy)]
pub struct LaunchContext<'a> {
    pub client: &'a Client,
    pub images: &'a BTreeMap<String, PathBuf>,
    pub work_dir: &'a Path,
    pub api_server_url: &'a str,
    /// CA bundle (PEM) that verifies the API server, for the pods' kubeconfigs.
    pub api_server_ca_pem: Option<&'a str>,
}

/// Resolves the pod into a [`Launch`] and writes its volumes and credentials to disk.
pub async fn prepare(
    ctx: LaunchContext<'_>,
    layout: &PodLayout,
    pod: &Pod,
) -> Result<Launch, LaunchError> {
    let container = first_container(pod).ok_or(ContainerConfigError::NoContainers)?;
    let image = container.image.clone().unwrap_or_default();
    let executable = lookup_image(ctx.images, &image)
        .ok_or_else(|| ContainerConfigError::ImageNotMapped {
            image: image.clone(),
        })?
        .clone();
    let facts = PodFacts::of(pod);

    let objects = fetch_objects(ctx.client, &facts.namespace, pod, container).await?;
    let claims = fetch_claims(ctx.client, &facts.namespace, pod).await?;
    let automount = pod
        .spec
        .as_ref()
        .and_then(|s| s.automount_service_account_token)
        .unwrap_or(true);
    // The kubeconfig follows automountServiceAccountToken; a projected serviceAccountToken
    // source gets its token either way, as the real kubelet's projection does.
    let token = if automount || volumes::projects_token(pod) {
        let token = credentials::request_token(ctx.client, &facts)
            .await
            .map_err(|e| ContainerConfigError::ServiceAccountToken {
                service_account: facts.service_account.clone(),
                detail: error_chain(&e),
            })?;
        Some(token)
    } else {
        None
    };

    let kubeconfig_token = token.as_ref().filter(|_| automount);
    let planned = volumes::plan_volumes(
        pod,
        layout,
        ctx.work_dir,
        &facts,
        &objects,
        &claims,
        token.as_ref().map(|t| t.token.as_str()),
    )?;
    let mut paths = volumes::mount_map(container, &planned)?;
    let termination_path = container
        .termination_message_path
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_TERMINATION_MESSAGE_PATH.to_string());
    let termination_file = paths
        .host_path(&termination_path)
        .unwrap_or_else(|| layout.termination_file(&container.name));
    paths.insert(&termination_path, termination_file.clone());
    let working_dir = container
        .working_dir
        .as_deref()
        .filter(|d| !d.is_empty())
        .and_then(|d| paths.host_path(d))
        .unwrap_or_else(|| layout.home());

    let container_env = env::resolve_env(container, &facts, &objects)?;
    let (process, image_id, sandbox) = if UnpackedImage::is_unpacked_image(&executable) {
        // Image mode: the container runs inside the image, volumes bound at their mount paths.
        let image =
            UnpackedImage::open(&executable).map_err(|e| ContainerConfigError::UnpackedImage {
                image: image.clone(),
                detail: error_chain(&e),
            })?;
        let inputs = image_pod::ContainerInputs {
            pod,
            container,
            container_env: &container_env,
            mounts: &paths,
            termination_path: &termination_path,
            termination_file: &termination_file,
            hostname: &facts.name,
            kubeconfig: kubeconfig_token.map(|_| layout.kubeconfig()),
            layout,
        };
        let sandbox = image_pod::sandbox_spec(&image, &inputs)?;
        let process =
            image_sandbox::process_spec(&sandbox, image_sandbox::pid_namespace_available())
                .map_err(|e| ContainerConfigError::UnsafePath {
                    what: "image mode".to_string(),
                    path: e.to_string(),
                })?;
        (process, image.id, Some(sandbox))
    } else {
        let process = process_spec(
            container,
            &executable,
            &container_env,
            &paths,
            ProcessBase {
                home: layout.home(),
                hostname: facts.name.clone(),
                kubeconfig: kubeconfig_token.map(|_| layout.kubeconfig()),
                working_dir,
                log_file: layout.log_file(&container.name),
            },
        );
        (process, format!("local://{}", executable.display()), None)
    };

    write_to_disk(
        ctx,
        layout,
        &planned,
        &termination_file,
        kubeconfig_token,
        &facts,
    )?;
    if let Some(sandbox) = &sandbox {
        image_pod::write_pod_files(
            layout,
            pod,
            sandbox,
            &container.name,
            &facts.name,
            &termination_path,
        )
        .map_err(|source| LaunchError::Io {
            what: "image mode files",
            path: image_pod::state_dir(layout, &container.name),
            source,
        })?;
    }
    Ok(Launch {
        container_name: container.name.clone(),
        process,
        termination_file,
        fallback_to_logs: container.termination_message_policy.as_deref()
            == Some("FallbackToLogsOnError"),
        image_id,
        token,
        token_files: volumes::token_files(&planned),
    })
}

/// The parts of the process environment the kubelet sets itself.
struct ProcessBase {
    home: PathBuf,
    hostname: String,
    kubeconfig: Option<PathBuf>,
    working_dir: PathBuf,
    log_file: PathBuf,
}

/// Builds argv and env. `command` replaces the image's entrypoint as in Kubernetes; since the
/// image is a local executable, a `command[0]` whose file name equals the executable's (e.g.
/// `/usr/local/bin/incident-operator` for an image mapped to `target/debug/incident-operator`)
/// runs the mapped executable, and any other `command[0]` (`sh`, `/bin/echo`) runs as named.
/// `$(VAR)` references in command and args are expanded against the container's env first; then
/// container paths are rewritten to host paths in command, args and env values.
fn process_spec(
    container: &Container,
    executable: &Path,
    container_env: &[(String, String)],
    paths: &PathMap,
    base: ProcessBase,
) -> ProcessSpec {
    let expand = |s: &String| paths.rewrite(&env::expand(s, container_env));
    let command: Vec<String> = container.command.iter().flatten().map(expand).collect();
    let args: Vec<String> = container.args.iter().flatten().map(expand).collect();

    let mut full_env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_string()),
        ),
        ("HOME".into(), base.home.to_string_lossy().into_owned()),
        ("HOSTNAME".into(), base.hostname),
    ];
    if let Some(kubeconfig) = &base.kubeconfig {
        full_env.push((
            "KUBECONFIG".into(),
            kubeconfig.to_string_lossy().into_owned(),
        ));
    }
    for (name, value) in container_env {
        let value = paths.rewrite(value);
        match full_env.iter_mut().find(|(existing, _)| existing == name) {
            Some(slot) => slot.1 = value,
            None => full_env.push((name.clone(), value)),
        }
    }
    let path_var = full_env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone());

    let (program, rest): (OsString, Vec<String>) = match command.split_first() {
        None => (executable.as_os_str().to_owned(), args),
        Some((first, more)) => {
            let program = if Path::new(first).file_name() == executable.file_name() {
                executable.as_os_str().to_owned()
            } else {
                resolve_program(first, path_var.as_deref())
            };
            (program, more.iter().cloned().chain(args).collect())
        }
    };
    ProcessSpec {
        program,
        args: rest.into_iter().map(OsString::from).collect(),
        env: full_env,
        working_dir: base.working_dir,
        log_file: base.log_file,
    }
}

fn write_to_disk(
    ctx: LaunchContext<'_>,
    layout: &PodLayout,
    planned: &BTreeMap<String, PlannedVolume>,
    termination_file: &Path,
    token: Option<&PodToken>,
    facts: &PodFacts,
) -> Result<(), LaunchError> {
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| LaunchError::Io { what, path, source }
    };
    std::fs::create_dir_all(layout.home()).map_err(io("home directory", &layout.home()))?;
    volumes::materialize(planned).map_err(io("volumes", &layout.volumes_root()))?;
    if let Some(parent) = termination_file.parent() {
        std::fs::create_dir_all(parent).map_err(io("termination message directory", parent))?;
    }
    // A restart must not report the previous run's message.
    match std::fs::remove_file(termination_file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io("termination message file", termination_file)(e));
        }
        _ => {}
    }
    if let Some(token) = token {
        credentials::write_token(&layout.token_file(), token)
            .map_err(io("token file", &layout.token_file()))?;
        let kubeconfig = credentials::kubeconfig_yaml(
            ctx.api_server_url,
            ctx.api_server_ca_pem,
            &layout.token_file(),
            &facts.namespace,
        );
        volumes::write_file(&layout.kubeconfig(), kubeconfig.as_bytes(), 0o600)
            .map_err(io("kubeconfig", &layout.kubeconfig()))?;
    }
    Ok(())
}

async fn fetch_objects(
    client: &Client,
    namespace: &str,
    pod: &Pod,
    container: &Container,
) -> Result<ObjectData, LaunchError> {
    let refs = env::referenced_objects(pod, container);
    let mut objects = ObjectData::default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for name in refs.secrets {
        let secret = secrets
            .get_opt(&name)
            .await
            .map_err(|source| fetch_error("secret", namespace, &name, source))?;
        if let Some(secret) = secret {
            let data = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            objects.secrets.insert(name, data);
        }
    }
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    for name in refs.config_maps {
        let cm = config_maps
            .get_opt(&name)
            .await
            .map_err(|source| fetch_error("configmap", namespace, &name, source))?;
        if let Some(cm) = cm {
            let mut data: BTreeMap<String, Vec<u8>> = cm
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes()))
                .collect();
            data.extend(
                cm.binary_data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0)),
            );
            objects.config_maps.insert(name, data);
        }
    }
    Ok(objects)
}

async fn fetch_claims(
    client: &Client,
    namespace: &str,
    pod: &Pod,
) -> Result<BTreeSet<String>, LaunchError> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let mut existing = BTreeSet::new();
    for claim in volumes::referenced_claims(pod) {
        let found = api
            .get_opt(&claim)
            .await
            .map_err(|source| fetch_error("persistentvolumeclaim", namespace, &claim, source))?;
        if found.is_some() {
            existing.insert(claim);
        }
    }
    Ok(existing)
}

fn fetch_error(
    kind: &'static str,
    namespace: &str,
    name: &str,
    source: kube::Error,
) -> LaunchError {
    LaunchError::Fetch {
        kind,
        namespace: namespace.to_string(),
        name: name.to_string(),
        source: Box::new(source),
    }
}

/// An error and its sources on one line, for status messages.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_lookup_ignores_tags_and_digests() {
        let images = BTreeMap::from([
            ("busybox".to_string(), PathBuf::from("/bin/sh")),
            ("ghcr.io/x/agent:dev".to_string(), PathBuf::from("/t/agent")),
            ("localhost:5000/app".to_string(), PathBuf::from("/t/app")),
        ]);
        assert_eq!(
            lookup_image(&images, "busybox"),
            Some(&PathBuf::from("/bin/sh"))
        );
        assert_eq!(
            lookup_image(&images, "busybox:1.36"),
            Some(&PathBuf::from("/bin/sh"))
        );
        assert_eq!(
            lookup_image(&images, "ghcr.io/x/agent@sha256:abc"),
            Some(&PathBuf::from("/t/agent"))
        );
        assert_eq!(
            lookup_image(&images, "localhost:5000/app:1"),
            Some(&PathBuf::from("/t/app"))
        );
        assert_eq!(lookup_image(&images, "nginx"), None);
    }

    fn base() -> ProcessBase {
        ProcessBase {
            home: PathBuf::from("/w/pods/u/home"),
            hostname: "p".into(),
            kubeconfig: Some(PathBuf::from("/w/pods/u/kubeconfig.yaml")),
            working_dir: PathBuf::from("/w/pods/u/home"),
            log_file: PathBuf::from("/w/pods/u/logs/c.log"),
        }
    }

    #[test]
    fn command_names_matching_the_executable_run_the_mapped_binary() {
        let container = Container {
            command: Some(vec!["/usr/local/bin/agent".into(), "run".into()]),
            args: Some(vec!["--audit=$(AUDIT)".into(), "/data/x".into()]),
            ..Container::default()
        };
        let mut paths = PathMap::new();
        paths.insert("/data", PathBuf::from("/w/pvc/ns/data"));
        let env = vec![("AUDIT".to_string(), "/data/audit".to_string())];
        let spec = process_spec(&container, Path::new("/t/agent"), &env, &paths, base());
        assert_eq!(spec.program, OsString::from("/t/agent"));
        assert_eq!(
            spec.args,
            vec![
                OsString::from("run"),
                OsString::from("--audit=/w/pvc/ns/data/audit"),
                OsString::from("/w/pvc/ns/data/x"),
            ]
        );
        let audit = spec.env.iter().find(|(k, _)| k == "AUDIT").unwrap();
        assert_eq!(audit.1, "/w/pvc/ns/data/audit");
        assert!(spec.env.iter().any(|(k, _)| k == "KUBECONFIG"));
        assert!(
            !spec
                .env
                .iter()
                .any(|(k, _)| k.starts_with("KUBERNETES_SERVICE"))
        );
    }

    #[test]
    fn no_command_runs_the_executable_with_args_and_other_commands_run_as_named() {
        let container = Container {
            args: Some(vec!["hello".into()]),
            ..Container::default()
        };
        let spec = process_spec(
            &container,
            Path::new("/t/agent"),
            &[],
            &PathMap::new(),
            base(),
        );
        assert_eq!(spec.program, OsString::from("/t/agent"));
        assert_eq!(spec.args, vec![OsString::from("hello")]);

        let container = Container {
            command: Some(vec!["/bin/sh".into(), "-c".into()]),
            args: Some(vec!["exit 0".into()]),
            ..Container::default()
        };
        let spec = process_spec(
            &container,
            Path::new("/t/agent"),
            &[],
            &PathMap::new(),
            base(),
        );
        assert_eq!(spec.program, OsString::from("/bin/sh"));
        assert_eq!(
            spec.args,
            vec![OsString::from("-c"), OsString::from("exit 0")]
        );
    }
}

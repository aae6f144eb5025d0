//! Maps paths the container expects (volume `mountPath`s, `terminationMessagePath`, `workingDir`)
//! to the host directories the process kubelet gave them.
//!
//! A process started by this kubelet shares the host's file system: it cannot see a directory at a
//! container path such as `/var/audit`. Instead of mounting, the kubelet rewrites the container's
//! env values, `command` and `args` (after `$(VAR)` expansion): every occurrence of a container path
//! that starts a value or follows `=`, `:`, `,` or a space, and ends the value or is followed by `/`,
//! `:`, `,` or a space, is replaced by its host directory. So `--audit-dir=/var/audit/run1`,
//! `AUDIT_DIR=/var/audit` and `PATH=/opt/tools/bin:/usr/bin` all work, while `/var/auditor` and
//! `http://x/var/audit` are left alone. Longer container paths win over shorter ones. A program that
//! hard-codes a container path without passing it through env or args cannot be run unchanged by
//! this kubelet; that is the price of running plain processes.

use std::path::{Path, PathBuf};

/// Container paths and the host paths that stand in for them.
#[derive(Clone, Debug, Default)]
pub struct PathMap {
    /// Sorted by container path length, longest first, so nested mounts win.
    entries: Vec<(String, PathBuf)>,
}

impl PathMap {
    /// An empty map: rewriting leaves every string as it is.
    pub fn new() -> PathMap {
        PathMap::default()
    }

    /// Maps `container_path` (absolute, trailing `/` ignored) to `host_path`. A later insert of the
    /// same container path replaces the earlier one.
    pub fn insert(&mut self, container_path: &str, host_path: PathBuf) {
        let key = normalize(container_path);
        self.entries.retain(|(existing, _)| *existing != key);
        self.entries.push((key, host_path));
        self.entries
            .sort_by(|(a, _), (b, _)| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    /// The host path for a container path, when a mapped path covers it.
    pub fn host_path(&self, container_path: &str) -> Option<PathBuf> {
        self.entries.iter().find_map(|(mount, host)| {
            let rest = container_path.strip_prefix(mount.as_str())?;
            if rest.is_empty() {
                Some(host.clone())
            } else {
                rest.strip_prefix('/')
                    .map(|relative| host.join(relative.trim_start_matches('/')))
            }
        })
    }

    /// Rewrites every mapped container path in `value` to its host path (see the module doc for
    /// where a path may start and end).
    pub fn rewrite(&self, value: &str) -> String {
        if self.entries.is_empty() {
            return value.to_string();
        }
        let mut out = String::with_capacity(value.len());
        let mut index = 0;
        while index < value.len() {
            let at_start = index == 0 || value[..index].ends_with(is_start_boundary);
            let matched = if at_start {
                self.entries.iter().find(|(mount, _)| {
                    value[index..].starts_with(mount.as_str())
                        && value[index + mount.len()..]
                            .chars()
                            .next()
                            .is_none_or(is_end_boundary)
                })
            } else {
                None
            };
            match matched {
                Some((mount, host)) => {
                    out.push_str(&host.to_string_lossy());
                    index += mount.len();
                }
                None => {
                    // Copy one whole character so slicing stays on char boundaries.
                    let next = value[index..].chars().next().map_or(1, char::len_utf8);
                    out.push_str(&value[index..index + next]);
                    index += next;
                }
            }
        }
        out
    }
}

fn is_start_boundary(c: char) -> bool {
    matches!(c, '=' | ':' | ',' | ' ')
}

fn is_end_boundary(c: char) -> bool {
    matches!(c, '/' | ':' | ',' | ' ')
}

fn normalize(container_path: &str) -> String {
    let trimmed = container_path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    }
}

/// Whether `relative` stays inside the directory it is joined to: no absolute path, no `..`.
/// Volume item paths and `subPath`s come from the pod spec, so they are untrusted.
pub fn is_contained_relative(relative: &str) -> bool {
    let path = Path::new(relative);
    !relative.is_empty()
        && path.is_relative()
        && path.components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> PathMap {
        let mut map = PathMap::new();
        map.insert("/var/audit", PathBuf::from("/w/pods/u/volumes/audit"));
        map.insert("/var/audit/deep/", PathBuf::from("/w/pvc/ns/deep"));
        map.insert("/opt/tools", PathBuf::from("/w/tools"));
        map
    }

    #[test]
    fn rewrites_whole_values_and_subpaths() {
        let map = map();
        assert_eq!(map.rewrite("/var/audit"), "/w/pods/u/volumes/audit");
        assert_eq!(
            map.rewrite("/var/audit/x.json"),
            "/w/pods/u/volumes/audit/x.json"
        );
        assert_eq!(map.rewrite("/var/audit/deep/f"), "/w/pvc/ns/deep/f");
    }

    #[test]
    fn rewrites_after_flag_and_list_separators() {
        let map = map();
        assert_eq!(
            map.rewrite("--audit-dir=/var/audit/run"),
            "--audit-dir=/w/pods/u/volumes/audit/run"
        );
        assert_eq!(
            map.rewrite("/opt/tools/bin:/usr/bin"),
            "/w/tools/bin:/usr/bin"
        );
        assert_eq!(map.rewrite("a /var/audit b"), "a /w/pods/u/volumes/audit b");
    }

    #[test]
    fn leaves_lookalikes_alone() {
        let map = map();
        assert_eq!(map.rewrite("/var/auditor"), "/var/auditor");
        assert_eq!(map.rewrite("http://x/var/audit"), "http://x/var/audit");
        assert_eq!(map.rewrite("xx/var/audit"), "xx/var/audit");
        assert_eq!(
            map.rewrite("héllo /var/audit"),
            "héllo /w/pods/u/volumes/audit"
        );
    }

    #[test]
    fn host_path_resolves_nested_paths() {
        let map = map();
        assert_eq!(
            map.host_path("/var/audit/a/b"),
            Some(PathBuf::from("/w/pods/u/volumes/audit/a/b"))
        );
        assert_eq!(
            map.host_path("/var/audit/deep"),
            Some(PathBuf::from("/w/pvc/ns/deep"))
        );
        assert_eq!(map.host_path("/var/auditx"), None);
    }

    #[test]
    fn contained_relative_rejects_escapes() {
        assert!(is_contained_relative("a/b.txt"));
        assert!(!is_contained_relative("../etc/passwd"));
        assert!(!is_contained_relative("a/../../b"));
        assert!(!is_contained_relative("/etc/passwd"));
        assert!(!is_contained_relative(""));
    }
}

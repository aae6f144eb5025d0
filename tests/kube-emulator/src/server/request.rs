//! Parsing what a request asks for: the route from the URL path, query parameters, and the
//! media types of the body and of the wanted response.

/// Decoded query parameters, in order.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) => (percent_decode(k), percent_decode(v)),
                None => (percent_decode(pair), String::new()),
            })
            .collect();
        Query { pairs }
    }

    /// The first value of a parameter.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter (`true`/`1`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true") | Some("1") | Some("True"))
    }

    /// Whether a parameter is present at all.
    pub fn has(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }
}

/// A path under a group/version that addresses a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourcePath {
    /// API group, empty for core.
    pub group: String,
    /// Version.
    pub version: String,
    /// Namespace from `namespaces/NS/…`.
    pub namespace: Option<String>,
    /// Plural resource.
    pub plural: String,
    /// Object name.
    pub name: Option<String>,
    /// Subresource.
    pub subresource: Option<String>,
    /// Came through the legacy `/watch/` prefix.
    pub legacy_watch: bool,
}

/// What a URL path asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// `/version`.
    Version,
    /// `/healthz`, `/readyz`, `/livez` (and sub-checks).
    Health,
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    GroupList,
    /// `/apis/GROUP`.
    Group(String),
    /// `/api/v1` or `/apis/GROUP/VERSION`.
    ResourceList(String, String),
    /// `/openapi/v2`.
    OpenApiV2,
    /// `/openapi/v3`.
    OpenApiV3,
    /// `/openapi/v3/api/v1` or `/openapi/v3/apis/GROUP/VERSION`.
    OpenApiV3GroupVersion(String, String),
    /// A resource path.
    Resource(ResourcePath),
    /// Anything else.
    NotFound,
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Route {
    let mut rest = rest;
    let mut legacy_watch = false;
    if rest.first() == Some(&"watch") {
        legacy_watch = true;
        rest = &rest[1..];
    }
    let make = |namespace: Option<&str>, plural: &str, name: Option<&str>, sub: Option<&str>| {
        Route::Resource(ResourcePath {
            group: group.to_string(),
            version: version.to_string(),
            namespace: namespace.map(str::to_string),
            plural: plural.to_string(),
            name: name.map(str::to_string),
            subresource: sub.map(str::to_string),
            legacy_watch,
        })
    };
    match rest {
        [] => Route::NotFound,
        // /api/v1/namespaces/NAME/status|finalize are the namespace's own subresources.
        ["namespaces", name, sub @ ("status" | "finalize")] if group.is_empty() => {
            make(None, "namespaces", Some(name), Some(sub))
        }
        ["namespaces", ns, plural, tail @ ..] if !ns.is_empty() => match tail {
            [] => make(Some(ns), plural, None, None),
            [name] => make(Some(ns), plural, Some(name), None),
            [name, sub] => make(Some(ns), plural, Some(name), Some(sub)),
            _ => Route::NotFound,
        },
        [plural] => make(None, plural, None, None),
        [plural, name] => make(None, plural, Some(name), None),
        [plural, name, sub] => make(None, plural, Some(name), Some(sub)),
        _ => Route::NotFound,
    }
}

/// Routes a URL path.
pub fn route(path: &str) -> Route {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segments.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "readyz" | "livez", ..] => Route::Health,
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::GroupList,
        ["apis", group] => Route::Group(group.to_string()),
        ["api", version] => Route::ResourceList(String::new(), version.to_string()),
        ["apis", group, version] => Route::ResourceList(group.to_string(), version.to_string()),
        ["api", version, rest @ ..] => resource_route("", version, rest),
        ["apis", group, version, rest @ ..] => resource_route(group, version, rest),
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3,
        ["openapi", "v3", "api", version] => {
            Route::OpenApiV3GroupVersion(String::new(), version.to_string())
        }
        ["openapi", "v3", "apis", group, version] => {
            Route::OpenApiV3GroupVersion(group.to_string(), version.to_string())
        }
        _ => Route::NotFound,
    }
}

/// One media range of an Accept header, with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRange {
    /// `type/subtype`, lower-cased.
    pub essence: String,
    /// Parameters such as `as=Table`.
    pub params: Vec<(String, String)>,
}

impl MediaRange {
    /// A parameter's value.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a header value into media ranges.
pub fn media_ranges(header: &str) -> Vec<MediaRange> {
    header
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|range| {
            let mut parts = range.split(';').map(str::trim);
            let essence = parts.next().unwrap_or("").to_ascii_lowercase();
            let params = parts
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
                .collect();
            MediaRange { essence, params }
        })
        .collect()
}

/// The media type of a request body without parameters.
pub fn content_essence(header: Option<&str>) -> String {
    header
        .map(|h| {
            h.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default()
}

/// What shape of response the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// The objects themselves.
    Object,
    /// A meta.k8s.io Table.
    Table,
    /// PartialObjectMetadata(List).
    Metadata,
}

fn is_json_like(range: &MediaRange) -> bool {
    matches!(
        range.essence.as_str(),
        "application/json" | "*/*" | "application/*" | ""
    )
}

/// Negotiates the response representation; `None` when nothing acceptable is offered.
pub fn representation(accept: Option<&str>) -> Option<Representation> {
    let Some(accept) = accept else {
        return Some(Representation::Object);
    };
    let ranges = media_ranges(accept);
    if ranges.is_empty() {
        return Some(Representation::Object);
    }
    for range in &ranges {
        if !is_json_like(range) {
            continue;
        }
        match (range.param("as"), range.param("g")) {
            (Some("Table"), Some("meta.k8s.io")) => return Some(Representation::Table),
            (
                Some("PartialObjectMetadata") | Some("PartialObjectMetadataList"),
                Some("meta.k8s.io"),
            ) => {
                return Some(Representation::Metadata);
            }
            (None, _) => return Some(Representation::Object),
            _ => continue,
        }
    }
    None
}

/// The aggregated discovery version asked for (`v2` or `v2beta1`), if any.
pub fn aggregated_discovery(accept: Option<&str>) -> Option<&'static str> {
    for range in media_ranges(accept.unwrap_or("")) {
        if range.param("as") == Some("APIGroupDiscoveryList")
            && range.param("g") == Some("apidiscovery.k8s.io")
        {
            match range.param("v") {
                Some("v2") => return Some("v2"),
                Some("v2beta1") => return Some("v2beta1"),
                _ => {}
            }
        }
        if is_json_like(&range) && range.param("as").is_none() {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route("/api/v1/namespaces/x/status"),
            resource_route("", "v1", &["namespaces", "x", "status"])
        );
        let Route::Resource(p) = route("/api/v1/namespaces/default/pods/p/log") else {
            panic!()
        };
        assert_eq!(
            (
                p.namespace.as_deref(),
                p.plural.as_str(),
                p.subresource.as_deref()
            ),
            (Some("default"), "pods", Some("log"))
        );
        let Route::Resource(p) = route("/apis/apps/v1/watch/namespaces/ns/deployments") else {
            panic!()
        };
        assert!(p.legacy_watch && p.name.is_none());
        let Route::Resource(p) = route("/api/v1/namespaces/ns") else {
            panic!()
        };
        assert_eq!(
            (p.plural.as_str(), p.name.as_deref()),
            ("namespaces", Some("ns"))
        );
        assert_eq!(route("/nope"), Route::NotFound);
    }

    #[test]
    fn negotiation() {
        let table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(representation(Some(table)), Some(Representation::Table));
        assert_eq!(
            representation(Some("application/vnd.kubernetes.protobuf")),
            None
        );
        assert_eq!(
            representation(Some("application/vnd.kubernetes.protobuf, */*")),
            Some(Representation::Object)
        );
        let discovery =
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
        assert_eq!(aggregated_discovery(Some(discovery)), Some("v2"));
        assert_eq!(aggregated_discovery(Some("application/json")), None);
        let q = Query::parse(Some("labelSelector=a%3Db%2Cc+in+(x)&watch=1"));
        assert_eq!(q.get("labelSelector"), Some("a=b,c in (x)"));
        assert!(q.flag("watch"));
    }
}

//! Behaviour the real server has for particular built-in kinds: decoding through the typed
//! API structs (which drops unknown fields and rejects wrong types, like Go decoding),
//! defaulting, validation, and update rules (immutable pod specs, service IPs, selectors).

use base64::Engine;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::meta;
use super::resource::ResourceDef;
use super::status::{ApiError, Cause};

fn round_trip<T: DeserializeOwned + Serialize>(
    object: &Value,
    def: &ResourceDef,
) -> Result<Value, ApiError> {
    let typed: T = serde_json::from_value(object.clone()).map_err(|error| {
        ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {error}",
            kind = def.kind,
            version = def.version
        ))
    })?;
    serde_json::to_value(&typed).map_err(|error| ApiError::internal(error.to_string()))
}

/// Decodes a stored-form built-in object through its typed struct. Returns the decoded
/// object and the paths of fields the type does not have (dropped, as Go decoding would).
/// Kinds without a typed struct here pass through unchanged.
pub fn decode(def: &ResourceDef, object: &Value) -> Result<(Value, Vec<String>), ApiError> {
    use k8s_openapi::api::{
        admissionregistration, apps, batch, coordination, core, networking, policy, rbac,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
    let decoded = match (def.storage.group.as_str(), def.storage.resource.as_str()) {
        ("", "namespaces") => round_trip::<core::v1::Namespace>(object, def)?,
        ("", "nodes") => round_trip::<core::v1::Node>(object, def)?,
        ("", "pods") => round_trip::<core::v1::Pod>(object, def)?,
        ("", "events") => round_trip::<core::v1::Event>(object, def)?,
        ("", "secrets") => round_trip::<core::v1::Secret>(object, def)?,
        ("", "configmaps") => round_trip::<core::v1::ConfigMap>(object, def)?,
        ("", "serviceaccounts") => round_trip::<core::v1::ServiceAccount>(object, def)?,
        ("", "services") => round_trip::<core::v1::Service>(object, def)?,
        ("", "endpoints") => round_trip::<core::v1::Endpoints>(object, def)?,
        ("discovery.k8s.io", "endpointslices") => {
            round_trip::<k8s_openapi::api::discovery::v1::EndpointSlice>(object, def)?
        }
        ("apiregistration.k8s.io", "apiservices") => round_trip::<
            k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService,
        >(object, def)?,
        ("", "persistentvolumeclaims") => {
            round_trip::<core::v1::PersistentVolumeClaim>(object, def)?
        }
        ("", "resourcequotas") => round_trip::<core::v1::ResourceQuota>(object, def)?,
        ("", "limitranges") => round_trip::<core::v1::LimitRange>(object, def)?,
        ("apps", "deployments") => round_trip::<apps::v1::Deployment>(object, def)?,
        ("apps", "replicasets") => round_trip::<apps::v1::ReplicaSet>(object, def)?,
        ("apps", "statefulsets") => round_trip::<apps::v1::StatefulSet>(object, def)?,
        ("apps", "daemonsets") => round_trip::<apps::v1::DaemonSet>(object, def)?,
        ("batch", "jobs") => round_trip::<batch::v1::Job>(object, def)?,
        ("batch", "cronjobs") => round_trip::<batch::v1::CronJob>(object, def)?,
        ("coordination.k8s.io", "leases") => round_trip::<coordination::v1::Lease>(object, def)?,
        ("admissionregistration.k8s.io", "validatingadmissionpolicies") => {
            round_trip::<admissionregistration::v1::ValidatingAdmissionPolicy>(object, def)?
        }
        ("admissionregistration.k8s.io", "validatingadmissionpolicybindings") => {
            round_trip::<admissionregistration::v1::ValidatingAdmissionPolicyBinding>(object, def)?
        }
        ("rbac.authorization.k8s.io", "roles") => round_trip::<rbac::v1::Role>(object, def)?,
        ("rbac.authorization.k8s.io", "rolebindings") => {
            round_trip::<rbac::v1::RoleBinding>(object, def)?
        }
        ("rbac.authorization.k8s.io", "clusterroles") => {
            round_trip::<rbac::v1::ClusterRole>(object, def)?
        }
        ("rbac.authorization.k8s.io", "clusterrolebindings") => {
            round_trip::<rbac::v1::ClusterRoleBinding>(object, def)?
        }
        ("networking.k8s.io", "networkpolicies") => {
            round_trip::<networking::v1::NetworkPolicy>(object, def)?
        }
        ("networking.k8s.io", "ingresses") => round_trip::<networking::v1::Ingress>(object, def)?,
        ("policy", "poddisruptionbudgets") => {
            round_trip::<policy::v1::PodDisruptionBudget>(object, def)?
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            round_trip::<apiextensions::v1::CustomResourceDefinition>(object, def)?
        }
        _ => return Ok((object.clone(), Vec::new())),
    };
    let mut unknown = Vec::new();
    dropped_fields(object, &decoded, "", &mut unknown);
    Ok((decoded, unknown))
}

fn dropped_fields(input: &Value, decoded: &Value, path: &str, out: &mut Vec<String>) {
    match (input, decoded) {
        (Value::Object(input_map), Value::Object(decoded_map)) => {
            for (key, value) in input_map {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match decoded_map.get(key) {
                    Some(decoded_child) => dropped_fields(value, decoded_child, &child_path, out),
                    None if !value.is_null() => out.push(child_path),
                    None => {}
                }
            }
        }
        (Value::Array(input_items), Value::Array(decoded_items)) => {
            for (index, (a, b)) in input_items.iter().zip(decoded_items).enumerate() {
                dropped_fields(a, b, &format!("{path}[{index}]"), out);
            }
        }
        _ => {}
    }
}

const SUBDOMAIN_MESSAGE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MESSAGE: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MESSAGE: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Validates `metadata.name` the way the kind's validation does.
pub fn validate_name(def: &ResourceDef, name: &str) -> Vec<Cause> {
    let (valid, message) = match (def.group.as_str(), def.plural.as_str()) {
        ("", "namespaces") => (is_dns_label(name), LABEL_MESSAGE),
        ("", "services") => (
            is_dns_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase()),
            DNS1035_MESSAGE,
        ),
        ("rbac.authorization.k8s.io", _) => (
            !name.is_empty()
                && name != "."
                && name != ".."
                && !name.contains('/')
                && !name.contains('%'),
            "may not contain '/' or '%' and may not be '.' or '..'",
        ),
        _ => (is_subdomain(name), SUBDOMAIN_MESSAGE),
    };
    if valid {
        Vec::new()
    } else {
        vec![Cause::new(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: {name:?}: {message}"),
        )]
    }
}

fn label_value_valid(value: &str) -> bool {
    value.is_empty()
        || (value.len() <= 63
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

fn label_key_valid(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    prefix.is_none_or(is_subdomain) && !name.is_empty() && label_value_valid(name)
}

/// Validates label keys and values (all kinds).
pub fn validate_labels(object: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (key, value) in meta::labels(object) {
        if !label_key_valid(&key) {
            causes.push(Cause::new(
                "FieldValueInvalid",
                "metadata.labels",
                format!("Invalid value: {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
            ));
        }
        let text = value.as_str().unwrap_or("");
        if !value.is_string() || !label_value_valid(text) {
            causes.push(Cause::new(
                "FieldValueInvalid",
                "metadata.labels",
                format!("Invalid value: {text:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
            ));
        }
    }
    causes
}

fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), value);
    }
}

fn default_container(container: &mut Value) {
    let Some(map) = container.as_object_mut() else {
        return;
    };
    let image = map
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let tag_is_latest = {
        let last = image.rsplit('/').next().unwrap_or("");
        !image.contains('@') && (!last.contains(':') || last.ends_with(":latest"))
    };
    set_default(
        map,
        "imagePullPolicy",
        json!(if tag_is_latest {
            "Always"
        } else {
            "IfNotPresent"
        }),
    );
    set_default(map, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(map, "terminationMessagePolicy", json!("File"));
    set_default(map, "resources", json!({}));
    if let Some(Value::Array(ports)) = map.get_mut("ports") {
        for port in ports {
            if let Some(port) = port.as_object_mut() {
                set_default(port, "protocol", json!("TCP"));
            }
        }
    }
}

/// Pod spec defaults (also used for templates).
pub fn default_pod_spec(spec: &mut Value) {
    let Some(map) = spec.as_object_mut() else {
        return;
    };
    set_default(map, "restartPolicy", json!("Always"));
    set_default(map, "dnsPolicy", json!("ClusterFirst"));
    set_default(map, "schedulerName", json!("default-scheduler"));
    set_default(map, "terminationGracePeriodSeconds", json!(30));
    set_default(map, "securityContext", json!({}));
    set_default(map, "enableServiceLinks", json!(true));
    set_default(map, "preemptionPolicy", json!("PreemptLowerPriority"));
    set_default(map, "priority", json!(0));
    let account = map
        .get("serviceAccountName")
        .or_else(|| map.get("serviceAccount"))
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    map.insert("serviceAccountName".into(), json!(account));
    map.insert("serviceAccount".into(), json!(account));
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(containers)) = map.get_mut(list) {
            containers.iter_mut().for_each(default_container);
        }
    }
}

fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = spec
        .get("containers")
        .and_then(Value::as_array)
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for container in &containers {
        let requests = container
            .pointer("/resources/requests")
            .and_then(Value::as_object);
        let limits = container
            .pointer("/resources/limits")
            .and_then(Value::as_object);
        if requests.is_some_and(|r| !r.is_empty()) || limits.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        let full = limits.is_some_and(|l| l.contains_key("cpu") && l.contains_key("memory"))
            && requests.is_none_or(|r| {
                r.iter()
                    .all(|(k, v)| limits.and_then(|l| l.get(k)) == Some(v))
            });
        guaranteed &= full;
    }
    if guaranteed {
        "Guaranteed"
    } else if any {
        "Burstable"
    } else {
        "BestEffort"
    }
}

fn validate_pod_spec(spec: Option<&Value>, path: &str, causes: &mut Vec<Cause>) {
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    match containers {
        None => causes.push(Cause::new(
            "FieldValueRequired",
            &format!("{path}.containers"),
            "Required value",
        )),
        Some(list) if list.is_empty() => causes.push(Cause::new(
            "FieldValueRequired",
            &format!("{path}.containers"),
            "Required value",
        )),
        Some(list) => {
            let mut seen = Vec::new();
            for (index, container) in list.iter().enumerate() {
                let at = format!("{path}.containers[{index}]");
                let name = container.get("name").and_then(Value::as_str).unwrap_or("");
                if name.is_empty() {
                    causes.push(Cause::new(
                        "FieldValueRequired",
                        &format!("{at}.name"),
                        "Required value",
                    ));
                } else if !is_dns_label(name) {
                    causes.push(Cause::new(
                        "FieldValueInvalid",
                        &format!("{at}.name"),
                        format!("Invalid value: {name:?}: {LABEL_MESSAGE}"),
                    ));
                } else if seen.contains(&name) {
                    causes.push(Cause::new(
                        "FieldValueDuplicate",
                        &format!("{at}.name"),
                        format!("Duplicate value: {name:?}"),
                    ));
                }
                seen.push(name);
                if container
                    .get("image")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
                {
                    causes.push(Cause::new(
                        "FieldValueRequired",
                        &format!("{at}.image"),
                        "Required value",
                    ));
                }
            }
        }
    }
}

/// Allocates cluster IPs for services.
#[derive(Debug)]
pub struct IpAllocator {
    next: u32,
}

impl IpAllocator {
    /// Starts at 10.96.0.1 (the `kubernetes` service), like a default cluster.
    pub fn new() -> IpAllocator {
        IpAllocator { next: 1 }
    }

    /// The next free address in 10.96.0.0/12.
    pub fn allocate(&mut self) -> String {
        let n = self.next;
        self.next += 1;
        format!("10.{}.{}.{}", 96 + (n >> 16), (n >> 8) & 0xff, n & 0xff)
    }
}

impl Default for IpAllocator {
    fn default() -> Self {
        IpAllocator::new()
    }
}

fn spec_mut(object: &mut Value) -> Option<&mut Map<String, Value>> {
    let map = object.as_object_mut()?;
    let spec = map.entry("spec").or_insert_with(|| json!({}));
    spec.as_object_mut()
}

fn encode_string_data(object: &mut Value) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    let Some(Value::Object(string_data)) = map.remove("stringData") else {
        return;
    };
    let data = map.entry("data").or_insert_with(|| json!({}));
    if let Some(data) = data.as_object_mut() {
        for (key, value) in string_data {
            let text = value.as_str().unwrap_or("").to_string();
            data.insert(
                key,
                json!(base64::engine::general_purpose::STANDARD.encode(text)),
            );
        }
    }
}

/// Defaults applied on every write (create and update), in storage form.
pub fn apply_defaults(def: &ResourceDef, object: &mut Value) {
    match (def.storage.group.as_str(), def.storage.resource.as_str()) {
        ("", "pods") => {
            if let Some(spec) = object.get_mut("spec") {
                default_pod_spec(spec);
            }
        }
        ("apps", "deployments")
        | ("apps", "replicasets")
        | ("apps", "statefulsets")
        | ("apps", "daemonsets") => {
            if let Some(spec) = spec_mut(object) {
                if def.storage.resource != "daemonsets" {
                    set_default(spec, "replicas", json!(1));
                }
                set_default(spec, "revisionHistoryLimit", json!(10));
                if def.storage.resource == "deployments" {
                    set_default(spec, "progressDeadlineSeconds", json!(600));
                    let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
                    if let Some(strategy) = strategy.as_object_mut() {
                        set_default(strategy, "type", json!("RollingUpdate"));
                        if strategy.get("type") == Some(&json!("RollingUpdate")) {
                            set_default(
                                strategy,
                                "rollingUpdate",
                                json!({"maxSurge": "25%", "maxUnavailable": "25%"}),
                            );
                        }
                    }
                }
            }
            if let Some(template_spec) = object.pointer_mut("/spec/template/spec") {
                default_pod_spec(template_spec);
            }
        }
        ("batch", "jobs") => {
            if let Some(template_spec) = object.pointer_mut("/spec/template/spec") {
                default_pod_spec(template_spec);
            }
        }
        ("", "secrets") => {
            encode_string_data(object);
            if let Some(map) = object.as_object_mut() {
                set_default(map, "type", json!("Opaque"));
            }
        }
        ("", "services") => {
            if let Some(spec) = spec_mut(object) {
                set_default(spec, "type", json!("ClusterIP"));
                set_default(spec, "sessionAffinity", json!("None"));
                if spec.get("type").and_then(Value::as_str) != Some("ExternalName") {
                    set_default(spec, "internalTrafficPolicy", json!("Cluster"));
                    set_default(spec, "ipFamilies", json!(["IPv4"]));
                    set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
                }
                if let Some(Value::Array(ports)) = spec.get_mut("ports") {
                    for port in ports {
                        if let Some(port) = port.as_object_mut() {
                            set_default(port, "protocol", json!("TCP"));
                            if let Some(number) = port.get("port").cloned() {
                                set_default(port, "targetPort", number);
                            }
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// Create-time behaviour: status resets and allocations.
pub fn prepare_create(def: &ResourceDef, object: &mut Value, ips: &mut IpAllocator) {
    let name = meta::name(object).to_string();
    match (def.storage.group.as_str(), def.storage.resource.as_str()) {
        ("", "namespaces") => {
            let mut labels = meta::labels(object);
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
            meta::set_meta(object, "labels", Value::Object(labels));
            if let Some(map) = object.as_object_mut() {
                map.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
                map.insert("status".into(), json!({"phase": "Active"}));
            }
        }
        ("", "pods") => {
            let qos = object.get("spec").map(qos_class).unwrap_or("BestEffort");
            if let Some(spec) = spec_mut(object) {
                let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
                if let Value::Array(list) = tolerations {
                    for key in [
                        "node.kubernetes.io/not-ready",
                        "node.kubernetes.io/unreachable",
                    ] {
                        if !list
                            .iter()
                            .any(|t| t.get("key").and_then(Value::as_str) == Some(key))
                        {
                            list.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
                        }
                    }
                }
            }
            if let Some(map) = object.as_object_mut() {
                map.insert(
                    "status".into(),
                    json!({"phase": "Pending", "qosClass": qos}),
                );
            }
        }
        ("", "services") => {
            if let Some(spec) = spec_mut(object) {
                let kind = spec
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("ClusterIP")
                    .to_string();
                let requested = spec
                    .get("clusterIP")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if kind != "ExternalName" {
                    let ip = if requested.is_empty() {
                        ips.allocate()
                    } else {
                        requested
                    };
                    spec.insert("clusterIP".into(), json!(ip));
                    spec.insert("clusterIPs".into(), json!([ip]));
                }
            }
            if let Some(map) = object.as_object_mut() {
                map.insert("status".into(), json!({"loadBalancer": {}}));
            }
        }
        _ => {}
    }
}

/// Kind-specific validation of a new state (create or update).
pub fn validate(def: &ResourceDef, object: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    match (def.storage.group.as_str(), def.storage.resource.as_str()) {
        ("", "pods") => {
            validate_pod_spec(object.get("spec"), "spec", &mut causes);
            if let Some(old) = old {
                validate_pod_update(old, object, &mut causes);
            }
        }
        ("apps", "deployments")
        | ("apps", "replicasets")
        | ("apps", "statefulsets")
        | ("apps", "daemonsets") => {
            validate_pod_spec(
                object.pointer("/spec/template/spec"),
                "spec.template.spec",
                &mut causes,
            );
            let selector = object.pointer("/spec/selector");
            match selector {
                None => causes.push(Cause::new(
                    "FieldValueRequired",
                    "spec.selector",
                    "Required value",
                )),
                Some(selector) => {
                    let wanted = selector
                        .get("matchLabels")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    let labels = object
                        .pointer("/spec/template/metadata/labels")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    if wanted.iter().any(|(k, v)| labels.get(k) != Some(v)) {
                        causes.push(Cause::new(
                            "FieldValueInvalid",
                            "spec.template.metadata.labels",
                            format!(
                                "Invalid value: {}: `selector` does not match template `labels`",
                                Value::Object(labels)
                            ),
                        ));
                    }
                    if let Some(old_selector) = old.and_then(|o| o.pointer("/spec/selector"))
                        && old_selector != selector
                    {
                        causes.push(Cause::new(
                            "FieldValueInvalid",
                            "spec.selector",
                            format!("Invalid value: {selector}: field is immutable"),
                        ));
                    }
                }
            }
        }
        ("", "services") => {
            let spec = object.get("spec");
            let kind = spec
                .and_then(|s| s.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("ClusterIP");
            let headless = spec
                .and_then(|s| s.get("clusterIP"))
                .and_then(Value::as_str)
                == Some("None");
            let ports = spec.and_then(|s| s.get("ports")).and_then(Value::as_array);
            if kind != "ExternalName" && !headless && ports.is_none_or(Vec::is_empty) {
                causes.push(Cause::new(
                    "FieldValueRequired",
                    "spec.ports",
                    "Required value",
                ));
            }
            if let (Some(old_ip), Some(new_ip)) = (
                old.and_then(|o| o.pointer("/spec/clusterIP"))
                    .and_then(Value::as_str),
                object.pointer("/spec/clusterIP").and_then(Value::as_str),
            ) && old_ip != new_ip
                && !old_ip.is_empty()
            {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    "spec.clusterIPs[0]",
                    format!("Invalid value: {:?}: may not change once set", new_ip),
                ));
            }
        }
        ("", "secrets") | ("", "configmaps") => {
            if let Some(old) = old {
                if old.get("immutable").and_then(Value::as_bool) == Some(true) {
                    for field in ["data", "binaryData"] {
                        if old.get(field) != object.get(field) {
                            causes.push(Cause::new(
                                "FieldValueForbidden",
                                field,
                                "Forbidden: field is immutable when `immutable` is set",
                            ));
                        }
                    }
                    if object.get("immutable").and_then(Value::as_bool) != Some(true) {
                        causes.push(Cause::new(
                            "FieldValueForbidden",
                            "immutable",
                            "Forbidden: field is immutable when `immutable` is set",
                        ));
                    }
                }
                if def.storage.resource == "secrets" && old.get("type") != object.get("type") {
                    causes.push(Cause::new(
                        "FieldValueInvalid",
                        "type",
                        format!(
                            "Invalid value: {}: field is immutable",
                            object.get("type").unwrap_or(&Value::Null)
                        ),
                    ));
                }
            }
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            super::crd::validate(object, &mut causes)
        }
        _ => {}
    }
    causes
}

const POD_UPDATE_MESSAGE: &str = "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

fn validate_pod_update(old: &Value, new: &Value, causes: &mut Vec<Cause>) {
    let (Some(old_spec), Some(new_spec)) = (old.get("spec"), new.get("spec")) else {
        return;
    };
    let mut comparable = old_spec.clone();
    for list in ["containers", "initContainers"] {
        if let (Some(Value::Array(old_list)), Some(Value::Array(new_list))) =
            (comparable.get_mut(list), new_spec.get(list))
            && old_list.len() == new_list.len()
        {
            for (old_container, new_container) in old_list.iter_mut().zip(new_list) {
                if let (Some(slot), Some(image)) =
                    (old_container.get_mut("image"), new_container.get("image"))
                {
                    *slot = image.clone();
                }
            }
        }
    }
    if let Some(map) = comparable.as_object_mut() {
        for field in [
            "activeDeadlineSeconds",
            "tolerations",
            "terminationGracePeriodSeconds",
            "schedulingGates",
        ] {
            match new_spec.get(field) {
                Some(value) => {
                    map.insert(field.to_string(), value.clone());
                }
                None => {
                    map.remove(field);
                }
            }
        }
    }
    if comparable != *new_spec {
        causes.push(Cause::new(
            "FieldValueForbidden",
            "spec",
            POD_UPDATE_MESSAGE,
        ));
    }
}

/// Update-time carry-overs that are not validation: fields the server keeps from the old object.
pub fn prepare_update(def: &ResourceDef, old: &Value, new: &mut Value) {
    match (def.storage.group.as_str(), def.storage.resource.as_str()) {
        ("", "namespaces") => {
            if let Some(map) = new.as_object_mut() {
                map.insert(
                    "spec".into(),
                    old.get("spec").cloned().unwrap_or_else(|| json!({})),
                );
            }
            let mut labels = meta::labels(new);
            labels.insert("kubernetes.io/metadata.name".into(), json!(meta::name(old)));
            meta::set_meta(new, "labels", Value::Object(labels));
        }
        ("", "services") => {
            let old_ip = old.pointer("/spec/clusterIP").cloned();
            let old_ips = old.pointer("/spec/clusterIPs").cloned();
            if let Some(spec) = spec_mut(new) {
                if spec.get("clusterIP").is_none_or(|v| v.as_str() == Some(""))
                    && let Some(ip) = old_ip
                {
                    spec.insert("clusterIP".into(), ip);
                }
                if spec.get("clusterIPs").is_none()
                    && let Some(ips) = old_ips
                {
                    spec.insert("clusterIPs".into(), ips);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::resource::builtin_resources;

    fn def(plural: &str) -> ResourceDef {
        builtin_resources()
            .into_iter()
            .find(|d| d.plural == plural && d.group.is_empty())
            .unwrap()
    }

    #[test]
    fn decoding_drops_unknown_fields_and_rejects_wrong_types() {
        let pods = def("pods");
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "i", "bogus": true}]}});
        let (decoded, unknown) = decode(&pods, &pod).unwrap();
        assert_eq!(unknown, vec!["spec.containers[0].bogus"]);
        assert!(decoded["spec"]["containers"][0].get("bogus").is_none());
        let bad = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": "x"}});
        assert_eq!(decode(&pods, &bad).unwrap_err().code, 400);
    }

    #[test]
    fn names_and_labels() {
        assert!(validate_name(&def("configmaps"), "a.b-c").is_empty());
        assert!(!validate_name(&def("configmaps"), "Bad_Name").is_empty());
        assert!(!validate_name(&def("namespaces"), "a.b").is_empty());
        let object =
            json!({"metadata": {"labels": {"ok": "v", "bad key!": "x", "k": "bad value!"}}});
        assert_eq!(validate_labels(&object).len(), 2);
    }

    #[test]
    fn pod_updates_may_only_change_images() {
        let pods = def("pods");
        let old = json!({"spec": {"containers": [{"name": "c", "image": "a"}]}});
        let image_change = json!({"spec": {"containers": [{"name": "c", "image": "b"}]}});
        assert!(validate(&pods, &image_change, Some(&old)).is_empty());
        let other_change =
            json!({"spec": {"containers": [{"name": "c", "image": "a", "args": ["x"]}]}});
        assert_eq!(
            validate(&pods, &other_change, Some(&old))[0].reason,
            "FieldValueForbidden"
        );
    }
}

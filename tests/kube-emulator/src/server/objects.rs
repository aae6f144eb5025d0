//! The verbs on objects: get, list, create, update, patch, delete and deletecollection,
//! with the metadata rules of the API conventions (uid, creationTimestamp, resourceVersion,
//! generation, generateName, optimistic concurrency, status subresource scoping, field
//! managers, dry run and field validation).

use base64::Engine;
use serde_json::{Value, json};

use super::admission::{self, Attempt, Operation};
use super::apply::{self, Actor, Scope};
use super::auth::identity::UserInfo;
use super::builtin;
use super::convert;
use super::crd;
use super::fieldset::TypeInfo;
use super::gc::{self, DeleteOptions, DeleteOutcome};
use super::meta;
use super::protobuf;
use super::reply::Reply;
use super::request::{Query, Representation, ResourcePath, content_essence};
use super::resource::{ResourceDef, StorageKey};
use super::schema;
use super::selector::{FieldSelector, LabelSelector};
use super::state::Inner;
use super::status::{ApiError, Cause, Subject, success_status};
use super::strategic;
use super::table;

/// One write or read request on a resource.
#[derive(Debug)]
pub struct Request<'a> {
    /// The served resource.
    pub def: &'a ResourceDef,
    /// The parsed path.
    pub path: &'a ResourcePath,
    /// Query parameters.
    pub query: &'a Query,
    /// `Content-Type` of the body.
    pub content_type: Option<&'a str>,
    /// `User-Agent`, for the default field manager.
    pub user_agent: &'a str,
    /// Body bytes.
    pub body: &'a [u8],
    /// Wanted response shape.
    pub representation: Representation,
    /// Who asked; `None` for built-in controllers, whose writes skip admission.
    pub user: Option<&'a UserInfo>,
}

impl Request<'_> {
    fn namespace(&self) -> &str {
        self.path.namespace.as_deref().unwrap_or("")
    }

    fn name(&self) -> &str {
        self.path.name.as_deref().unwrap_or("")
    }

    fn subject<'s>(&'s self, name: &'s str) -> Subject<'s> {
        Subject {
            group: &self.def.group,
            resource: &self.def.plural,
            name,
        }
    }

    fn dry_run(&self) -> bool {
        self.query.get("dryRun") == Some("All")
    }

    /// Validating admission for this request's write (none for built-in controllers).
    fn admit_write(
        &self,
        inner: &Inner,
        operation: Operation,
        name: &str,
        object: Option<&Value>,
        old_object: Option<&Value>,
    ) -> Result<Vec<String>, ApiError> {
        let Some(user) = self.user else {
            return Ok(Vec::new());
        };
        let object = object.map(|o| served(self.def, o));
        let old_object = old_object.map(|o| served(self.def, o));
        admission::validate(
            inner,
            &Attempt {
                def: self.def,
                operation,
                namespace: self.namespace(),
                name,
                subresource: self.path.subresource.as_deref().unwrap_or(""),
                object: object.as_ref(),
                old_object: old_object.as_ref(),
                user,
                dry_run: self.dry_run(),
            },
        )
    }

    fn manager(&self) -> String {
        match self.query.get("fieldManager") {
            Some(manager) if !manager.is_empty() => manager.to_string(),
            _ => {
                let agent = self.user_agent.split('/').next().unwrap_or("").trim();
                let agent: String = agent.chars().take(128).collect();
                if agent.is_empty() {
                    "unknown".into()
                } else {
                    agent
                }
            }
        }
    }

    fn types(&self) -> TypeInfo<'_> {
        TypeInfo {
            kind: &self.def.kind,
            schema: self.def.custom.as_ref().and_then(|c| c.schema.as_ref()),
        }
    }
}

/// How managedFields are produced for a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Managed {
    /// Record an Update by the request's field manager.
    Update,
    /// Already computed (server-side apply).
    Precomputed,
}

const BODY_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];

/// Parses a JSON or YAML body into an object.
pub fn decode_body(content_type: Option<&str>, body: &[u8]) -> Result<Value, ApiError> {
    let essence = content_essence(content_type);
    let value: Value = match essence.as_str() {
        "" | "application/json" => serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("error decoding request body as JSON: {e}"))
        })?,
        "application/yaml" | "application/apply-patch+yaml" | "text/yaml" => {
            let text = std::str::from_utf8(body)
                .map_err(|e| ApiError::bad_request(format!("body is not UTF-8: {e}")))?;
            if text.trim_start().starts_with('{') {
                serde_json::from_str(text).map_err(|e| {
                    ApiError::bad_request(format!("error decoding request body as JSON: {e}"))
                })?
            } else {
                serde_saphyr::from_str(text).map_err(|e| {
                    ApiError::bad_request(format!("error decoding request body as YAML: {e}"))
                })?
            }
        }
        "application/vnd.kubernetes.protobuf" => protobuf::decode(body).map_err(|e| {
            ApiError::bad_request(format!("error decoding request body as protobuf: {e}"))
        })?,
        other => return Err(ApiError::unsupported_media_type(other, BODY_TYPES)),
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(format!(
            "the request body must be a JSON object, got: {value}"
        )));
    }
    Ok(value)
}

/// Checks `apiVersion` and `kind` of a body against the resource.
pub fn check_type_meta(def: &ResourceDef, object: &Value, body: &[u8]) -> Result<(), ApiError> {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind.is_empty() {
        let shown: String = String::from_utf8_lossy(body).chars().take(512).collect();
        return Err(ApiError::bad_request(format!(
            "Object 'Kind' is missing in '{shown}'"
        )));
    }
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if api_version.is_empty() {
        let shown: String = String::from_utf8_lossy(body).chars().take(512).collect();
        return Err(ApiError::bad_request(format!(
            "Object 'apiVersion' is missing in '{shown}'"
        )));
    }
    if api_version != def.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            def.api_version()
        )));
    }
    if kind != def.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({}) of {}",
            def.kind, def.plural
        )));
    }
    Ok(())
}

fn warnings_for(
    def: &ResourceDef,
    query: &Query,
    unknown: &[String],
) -> Result<Vec<String>, ApiError> {
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let described: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field {f:?}"))
        .collect();
    match query.get("fieldValidation") {
        Some("Strict") => Err(ApiError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
            described.join(", "),
            kind = def.kind,
            version = def.version
        ))),
        Some("Ignore") => Ok(Vec::new()),
        _ => Ok(described),
    }
}

/// Prunes/decodes, defaults and validates a stored-form object. Returns it and its unknown fields.
fn admit(
    def: &ResourceDef,
    mut object: Value,
    old: Option<&Value>,
) -> Result<(Value, Vec<String>), ApiError> {
    let mut unknown = Vec::new();
    let custom_schema = def.custom.as_ref().and_then(|c| c.schema.clone());
    if let Some(schema) = &custom_schema {
        schema::prune(&mut object, schema, "", true, &mut unknown);
        schema::apply_defaults(&mut object, schema);
    } else if def.custom.is_none() {
        let (decoded, dropped) = builtin::decode(def, &object)?;
        object = decoded;
        unknown = dropped;
        builtin::apply_defaults(def, &mut object);
    }
    let name = meta::name(&object).to_string();
    let mut causes = builtin::validate_name(def, &name);
    causes.extend(builtin::validate_labels(&object));
    if let Some(schema) = &custom_schema {
        schema::validate(&object, schema, "", old, &mut causes);
    }
    causes.extend(builtin::validate(def, &object, old));
    if !causes.is_empty() {
        return Err(ApiError::invalid(&def.kind, &def.group, &name, causes));
    }
    Ok((object, unknown))
}

fn served(def: &ResourceDef, stored: &Value) -> Value {
    convert::to_served(def, stored)
}

fn represent_one(req: &Request<'_>, object: Value) -> Value {
    match req.representation {
        Representation::Object => object,
        Representation::Metadata => table::partial_metadata(&object),
        Representation::Table => {
            let include = req.query.get("includeObject").unwrap_or("Metadata");
            let rv = meta::resource_version(&object).to_string();
            table::table(
                req.def,
                &[object],
                include,
                json!({"resourceVersion": rv}),
                true,
            )
        }
    }
}

/// GET one object.
pub fn get(inner: &Inner, req: &Request<'_>) -> Result<Reply, ApiError> {
    let stored = inner
        .store
        .get(&req.def.storage, req.namespace(), req.name())
        .ok_or_else(|| ApiError::not_found(req.subject(req.name())))?;
    Ok(Reply::ok(represent_one(req, served(req.def, stored))))
}

/// Parsed `labelSelector` and `fieldSelector`.
pub struct Selectors {
    labels: LabelSelector,
    fields: FieldSelector,
    /// Neither selector was given (the storage's "empty predicate").
    empty: bool,
}

impl Selectors {
    /// From the query.
    pub fn parse(def: &ResourceDef, query: &Query) -> Result<Selectors, ApiError> {
        let labels = query.get("labelSelector").unwrap_or("");
        let fields = query.get("fieldSelector").unwrap_or("");
        Ok(Selectors {
            labels: LabelSelector::parse(labels)?,
            fields: FieldSelector::parse(fields, def)?,
            empty: labels.trim().is_empty() && fields.trim().is_empty(),
        })
    }

    /// Whether every object matches because no selector was given.
    pub fn is_empty(&self) -> bool {
        self.empty
    }

    /// Whether a stored object matches both.
    pub fn matches(&self, stored: &Value) -> bool {
        self.labels.matches_object(stored) && self.fields.matches(stored)
    }
}

fn encode_continue(rv: u64, start: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    base64::engine::general_purpose::URL_SAFE.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(u64, String), ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .map_err(|_| invalid())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let rv = value
        .get("rv")
        .and_then(Value::as_u64)
        .ok_or_else(invalid)?;
    let start = value
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(invalid)?
        .to_string();
    Ok((rv, start))
}

/// GET a collection (list), with selectors and limit/continue pagination.
pub fn list(inner: &Inner, req: &Request<'_>) -> Result<Reply, ApiError> {
    let selectors = Selectors::parse(req.def, req.query)?;
    let current = inner.store.current_rv();
    let requested_rv = req.query.get("resourceVersion").unwrap_or("");
    if req.query.get("resourceVersionMatch") == Some("Exact") {
        let rv: u64 = requested_rv.parse().map_err(|_| {
            ApiError::bad_request(format!("invalid resource version: {requested_rv}"))
        })?;
        if rv != current {
            return Err(ApiError::expired(format!(
                "too old resource version: {rv} ({current})"
            )));
        }
    }
    let (list_rv, start_after) = match req.query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let (rv, start) = decode_continue(token)?;
            (rv, Some(start))
        }
        None => (current, None),
    };
    let namespace = req.path.namespace.as_deref();
    // Continue tokens name the last object served as `namespace/name` (names hold no `/`); the
    // next page starts right after it in the store's order.
    let after = start_after
        .as_deref()
        .map(|start| start.split_once('/').unwrap_or(("", start)));
    let mut matching = inner
        .store
        .list_after(&req.def.storage, namespace, after)
        .filter(|object| selectors.matches(object));
    let limit = req
        .query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let page: Vec<&Value> = match limit {
        Some(limit) => matching.by_ref().take(limit).collect(),
        None => matching.by_ref().collect(),
    };
    let rest = matching.count();
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    if rest > 0
        && let Some(last) = page.last()
    {
        metadata["continue"] = json!(encode_continue(
            list_rv,
            &format!("{}/{}", meta::namespace(last), meta::name(last))
        ));
        // The real storage counts what is left only when no selector filters it (etcd3's
        // `pred.Empty()`): with one, how many of the remaining keys match is unknown.
        if selectors.is_empty() {
            metadata["remainingItemCount"] = json!(rest);
        }
    }
    let items: Vec<Value> = page.iter().map(|object| served(req.def, object)).collect();
    let body = match req.representation {
        Representation::Table => {
            let include = req.query.get("includeObject").unwrap_or("Metadata");
            table::table(req.def, &items, include, metadata, true)
        }
        Representation::Metadata => json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": metadata,
            "items": items.iter().map(table::partial_metadata).collect::<Vec<_>>(),
        }),
        Representation::Object => json!({
            "kind": format!("{}List", req.def.kind),
            "apiVersion": req.def.api_version(),
            "metadata": metadata,
            "items": items,
        }),
    };
    Ok(Reply::ok(body))
}

const NAME_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn generate_suffix() -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes
        .iter()
        .take(5)
        .map(|b| NAME_CHARS[*b as usize % NAME_CHARS.len()] as char)
        .collect()
}

/// Ensures the namespace of a namespaced create exists and is not terminating.
fn check_namespace(inner: &Inner, req: &Request<'_>, object_name: &str) -> Result<(), ApiError> {
    let namespaces = StorageKey {
        group: String::new(),
        resource: "namespaces".into(),
    };
    let namespace = req.namespace();
    match inner.store.get(&namespaces, "", namespace) {
        None => Err(ApiError::not_found(Subject {
            group: "",
            resource: "namespaces",
            name: namespace,
        })),
        Some(ns) if meta::is_deleting(ns) => Err(ApiError::forbidden(
            req.subject(object_name),
            &format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            ),
            vec![Cause::new(
                "NamespaceTerminating",
                "metadata.namespace",
                format!("namespace {namespace} is being terminated"),
            )],
        )),
        Some(_) => Ok(()),
    }
}

fn scope_for(def: &ResourceDef) -> Scope {
    if def.has_status() {
        Scope::NoStatus
    } else {
        Scope::Whole
    }
}

/// Creates an object on behalf of a built-in controller, through the same admission as a POST.
pub fn create_internal(
    inner: &mut Inner,
    def: &ResourceDef,
    namespace: &str,
    object: Value,
    manager: &str,
) -> Result<Value, ApiError> {
    let path = ResourcePath {
        group: def.group.clone(),
        version: def.version.clone(),
        namespace: def.namespaced.then(|| namespace.to_string()),
        plural: def.plural.clone(),
        name: None,
        subresource: None,
        legacy_watch: false,
    };
    let query = Query::parse(Some(&format!("fieldManager={manager}")));
    let req = Request {
        def,
        path: &path,
        query: &query,
        content_type: Some("application/json"),
        user_agent: manager,
        body: &[],
        representation: Representation::Object,
        user: None,
    };
    create_object(inner, &req, object, Managed::Update).map(|reply| reply.body)
}

/// POST: create an object.
pub fn create(inner: &mut Inner, req: &Request<'_>) -> Result<Reply, ApiError> {
    let incoming = decode_body(req.content_type, req.body)?;
    check_type_meta(req.def, &incoming, req.body)?;
    create_object(inner, req, incoming, Managed::Update)
}

fn create_object(
    inner: &mut Inner,
    req: &Request<'_>,
    incoming: Value,
    managed: Managed,
) -> Result<Reply, ApiError> {
    let def = req.def;
    // Admission sees the name the client asked for: a generateName is resolved later.
    let requested_name = meta::name(&incoming).to_string();
    let mut object = convert::to_stored(def, &incoming);
    if def.namespaced {
        if req.path.namespace.is_none() {
            return Err(ApiError::method_not_allowed());
        }
        let body_namespace = meta::namespace(&object);
        if !body_namespace.is_empty() && body_namespace != req.namespace() {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        meta::set_meta(&mut object, "namespace", json!(req.namespace()));
    } else {
        meta::remove_meta(&mut object, "namespace");
    }
    if meta::name(&object).is_empty() {
        let prefix = meta::str_at(&object, &["metadata", "generateName"])
            .unwrap_or("")
            .to_string();
        if prefix.is_empty() {
            return Err(ApiError::invalid(
                &def.kind,
                &def.group,
                "",
                vec![Cause::new(
                    "FieldValueRequired",
                    "metadata.name",
                    "Required value: name or generateName is required",
                )],
            ));
        }
        let mut name = format!("{prefix}{}", generate_suffix());
        while inner
            .store
            .get(&def.storage, req.namespace(), &name)
            .is_some()
        {
            name = format!("{prefix}{}", generate_suffix());
        }
        meta::set_meta(&mut object, "name", json!(name));
    }
    let name = meta::name(&object).to_string();
    if def.namespaced {
        check_namespace(inner, req, &name)?;
    }
    if inner
        .store
        .get(&def.storage, req.namespace(), &name)
        .is_some()
    {
        return Err(ApiError::already_exists(req.subject(&name)));
    }
    for key in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        meta::remove_meta(&mut object, key);
    }
    if managed == Managed::Update {
        meta::remove_meta(&mut object, "managedFields");
    }
    meta::set_meta(&mut object, "uid", json!(uuid::Uuid::new_v4().to_string()));
    meta::set_meta(&mut object, "creationTimestamp", json!(meta::now_rfc3339()));
    if def.tracks_generation {
        meta::set_meta(&mut object, "generation", json!(1));
    } else {
        meta::remove_meta(&mut object, "generation");
    }
    let is_node = def.group.is_empty() && def.plural == "nodes";
    if def.has_status()
        && !is_node
        && let Some(map) = object.as_object_mut()
    {
        map.remove("status");
    }
    builtin::prepare_create(def, &mut object, &mut inner.ips);
    let is_crd = def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions";
    if is_crd {
        crd::apply_defaults(&mut object);
        let mut finalizers = meta::finalizers(&object);
        if !finalizers.iter().any(|f| f == crd::CLEANUP_FINALIZER) {
            finalizers.push(crd::CLEANUP_FINALIZER.to_string());
        }
        meta::set_finalizers(&mut object, &finalizers);
    }
    if req.user.is_some() && def.group.is_empty() && def.plural == "pods" {
        // Mutating admission runs between defaulting and validation.
        admission::token_volume::mutate(inner, req.namespace(), &mut object, generate_suffix);
    }
    let (mut object, unknown) = admit(def, object, None)?;
    if is_crd {
        object["status"] = crd::established_status(&object, false);
    }
    let warnings = warnings_for(def, req.query, &unknown)?;
    if managed == Managed::Update {
        let manager = req.manager();
        let api_version = def.api_version();
        let actor = Actor {
            manager: &manager,
            api_version: &api_version,
            scope: scope_for(def),
            types: req.types(),
        };
        apply::record_update(None, &mut object, actor);
    }
    let mut warnings = warnings;
    warnings.extend(req.admit_write(
        inner,
        Operation::Create,
        &requested_name,
        Some(&object),
        None,
    )?);
    if req.dry_run() {
        return Ok(Reply::created(served(def, &object)).with_warnings(warnings));
    }
    let stored = inner.store.insert(&def.storage, object);
    after_write(inner, def, &stored, true);
    gc::sweep(inner);
    Ok(Reply::created(served(def, &stored)).with_warnings(warnings))
}

/// Follow-ups of a stored write: CRDs (re)register their resources; new namespaces get their default ServiceAccount.
fn after_write(inner: &mut Inner, def: &ResourceDef, stored: &Value, created: bool) {
    if def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions" {
        let group = stored
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let plural = stored
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        inner
            .registry
            .set_custom(&group, &plural, crd::resource_defs(stored));
    }
    if created && def.group.is_empty() && def.plural == "namespaces" {
        create_default_service_account(inner, meta::name(stored));
    }
}

/// Creates the `default` ServiceAccount of a namespace, as the ServiceAccount controller does.
pub fn create_default_service_account(inner: &mut Inner, namespace: &str) {
    let key = StorageKey {
        group: String::new(),
        resource: "serviceaccounts".into(),
    };
    if inner.store.get(&key, namespace, "default").is_some() {
        return;
    }
    let account = json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": "default",
            "namespace": namespace,
            "uid": uuid::Uuid::new_v4().to_string(),
            "creationTimestamp": meta::now_rfc3339(),
        },
    });
    inner.store.insert(&key, account);
}

/// The object a write produces from the existing one and the request's version of it.
fn merge_for_update(existing: &Value, incoming: &Value, scope: Scope) -> Value {
    let mut new = match scope {
        Scope::StatusOnly => {
            let mut new = existing.clone();
            match incoming.get("status") {
                Some(status) => new["status"] = status.clone(),
                None => {
                    if let Some(map) = new.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
            new
        }
        Scope::NoStatus => {
            let mut new = incoming.clone();
            if let Some(map) = new.as_object_mut() {
                match existing.get("status") {
                    Some(status) => {
                        map.insert("status".into(), status.clone());
                    }
                    None => {
                        map.remove("status");
                    }
                }
            }
            new
        }
        Scope::Whole => incoming.clone(),
    };
    if scope != Scope::StatusOnly {
        for key in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "namespace",
            "name",
            "selfLink",
            "resourceVersion",
        ] {
            match meta::value_at(existing, &["metadata", key]) {
                Some(value) => meta::set_meta(&mut new, key, value.clone()),
                None => meta::remove_meta(&mut new, key),
            }
        }
    }
    new
}

fn strip_for_compare(object: &Value) -> Value {
    let mut copy = object.clone();
    meta::remove_meta(&mut copy, "resourceVersion");
    if let Some(Value::Array(entries)) = copy.pointer_mut("/metadata/managedFields") {
        for entry in entries {
            if let Some(map) = entry.as_object_mut() {
                map.remove("time");
            }
        }
    }
    copy
}

fn finish_update(
    inner: &mut Inner,
    req: &Request<'_>,
    existing: &Value,
    mut new: Value,
    managed: Managed,
    scope: Scope,
) -> Result<Reply, ApiError> {
    let def = req.def;
    builtin::prepare_update(def, existing, &mut new);
    let is_crd = def.group == "apiextensions.k8s.io" && def.plural == "customresourcedefinitions";
    if is_crd {
        crd::apply_defaults(&mut new);
    }
    let (mut new, unknown) = admit(def, new, Some(existing))?;
    if is_crd && scope != Scope::StatusOnly {
        new["status"] = crd::established_status(&new, meta::is_deleting(&new));
    }
    let warnings = warnings_for(def, req.query, &unknown)?;
    if meta::is_deleting(existing) {
        let old_finalizers = meta::finalizers(existing);
        let added: Vec<String> = meta::finalizers(&new)
            .into_iter()
            .filter(|f| !old_finalizers.contains(f))
            .collect();
        if !added.is_empty() {
            return Err(ApiError::invalid(
                &def.kind,
                &def.group,
                meta::name(existing),
                vec![Cause::new(
                    "FieldValueForbidden",
                    "metadata.finalizers",
                    format!(
                        "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                    ),
                )],
            ));
        }
    }
    let old_generation = meta::value_at(existing, &["metadata", "generation"])
        .and_then(Value::as_i64)
        .unwrap_or(1);
    if def.tracks_generation {
        let bumped = if meta::spec_part(&new) != meta::spec_part(existing) {
            old_generation + 1
        } else {
            old_generation
        };
        meta::set_meta(&mut new, "generation", json!(bumped));
    }
    if managed == Managed::Update {
        let manager = req.manager();
        let api_version = def.api_version();
        let actor = Actor {
            manager: &manager,
            api_version: &api_version,
            scope,
            types: req.types(),
        };
        apply::record_update(Some(existing), &mut new, actor);
    }
    let mut warnings = warnings;
    warnings.extend(req.admit_write(
        inner,
        Operation::Update,
        meta::name(existing),
        Some(&new),
        Some(existing),
    )?);
    if strip_for_compare(&new) == strip_for_compare(existing) {
        return Ok(Reply::ok(served(def, existing)).with_warnings(warnings));
    }
    if req.dry_run() {
        return Ok(Reply::ok(served(def, &new)).with_warnings(warnings));
    }
    let stored = inner.store.insert(&def.storage, new);
    after_write(inner, def, &stored, false);
    gc::sweep(inner);
    Ok(Reply::ok(served(def, &stored)).with_warnings(warnings))
}

fn check_url_name(req: &Request<'_>, object: &mut Value) -> Result<(), ApiError> {
    let body_name = meta::name(object).to_string();
    if body_name.is_empty() {
        meta::set_meta(object, "name", json!(req.name()));
    } else if body_name != req.name() {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({})",
            req.name()
        )));
    }
    if req.def.namespaced {
        let body_namespace = meta::namespace(object);
        if !body_namespace.is_empty() && body_namespace != req.namespace() {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    Ok(())
}

fn check_resource_version(
    req: &Request<'_>,
    incoming: &Value,
    existing: &Value,
) -> Result<(), ApiError> {
    let wanted = meta::resource_version(incoming);
    if !wanted.is_empty() && wanted != meta::resource_version(existing) {
        return Err(ApiError::conflict(req.subject(req.name())));
    }
    Ok(())
}

/// PUT: replace an object (or its status).
pub fn update(inner: &mut Inner, req: &Request<'_>, scope: Scope) -> Result<Reply, ApiError> {
    let mut incoming = decode_body(req.content_type, req.body)?;
    check_type_meta(req.def, &incoming, req.body)?;
    check_url_name(req, &mut incoming)?;
    let existing = inner
        .store
        .get(&req.def.storage, req.namespace(), req.name())
        .cloned()
        .ok_or_else(|| ApiError::not_found(req.subject(req.name())))?;
    check_resource_version(req, &incoming, &existing)?;
    let new = merge_for_update(&existing, &convert::to_stored(req.def, &incoming), scope);
    finish_update(inner, req, &existing, new, Managed::Update, scope)
}

const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];
const CUSTOM_PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

/// PATCH: JSON patch, merge patch, strategic merge patch or server-side apply.
pub fn patch(inner: &mut Inner, req: &Request<'_>, scope: Scope) -> Result<Reply, ApiError> {
    let def = req.def;
    let patch_type = content_essence(req.content_type);
    let accepted = if def.custom.is_some() {
        CUSTOM_PATCH_TYPES
    } else {
        PATCH_TYPES
    };
    if !accepted.contains(&patch_type.as_str()) {
        return Err(ApiError::unsupported_media_type(&patch_type, accepted));
    }
    let existing = inner
        .store
        .get(&def.storage, req.namespace(), req.name())
        .cloned();
    if patch_type == "application/apply-patch+yaml" {
        return server_side_apply(inner, req, scope, existing);
    }
    let existing = existing.ok_or_else(|| ApiError::not_found(req.subject(req.name())))?;
    let current = served(def, &existing);
    let patched = match patch_type.as_str() {
        "application/json-patch+json" => {
            let operations: json_patch::Patch = serde_json::from_slice(req.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            let mut patched = current.clone();
            json_patch::patch(&mut patched, &operations).map_err(|e| {
                ApiError::invalid(
                    &def.kind,
                    &def.group,
                    req.name(),
                    vec![Cause::new("FieldValueInvalid", "", e.to_string())],
                )
            })?;
            patched
        }
        "application/merge-patch+json" => {
            let document: Value = serde_json::from_slice(req.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            if !document.is_object() {
                return Err(ApiError::bad_request("merge patch must be a JSON object"));
            }
            let mut patched = current.clone();
            json_patch::merge(&mut patched, &document);
            patched
        }
        _ => {
            let document: Value = serde_json::from_slice(req.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            strategic::apply(&def.kind, &current, &document)
                .map_err(|e| ApiError::bad_request(e.to_string()))?
        }
    };
    if !patched.is_object() {
        return Err(ApiError::bad_request(
            "the patched object is not a JSON object",
        ));
    }
    check_resource_version(req, &patched, &existing)?;
    let new = merge_for_update(&existing, &convert::to_stored(def, &patched), scope);
    finish_update(inner, req, &existing, new, Managed::Update, scope)
}

fn server_side_apply(
    inner: &mut Inner,
    req: &Request<'_>,
    scope: Scope,
    existing: Option<Value>,
) -> Result<Reply, ApiError> {
    let def = req.def;
    let manager = match req.query.get("fieldManager") {
        Some(manager) if !manager.is_empty() => manager.to_string(),
        // As `ValidatePatchOptions` of apimachinery: a 422 about the PatchOptions, not a 400.
        _ => {
            return Err(ApiError::invalid(
                "PatchOptions",
                "meta.k8s.io",
                "",
                vec![Cause::new(
                    "FieldValueRequired",
                    "fieldManager",
                    "Required value: is required for apply patch",
                )],
            ));
        }
    };
    let mut config = decode_body(Some("application/apply-patch+yaml"), req.body)?;
    check_type_meta(def, &config, req.body)?;
    check_url_name(req, &mut config)?;
    if let Some(map) = config
        .pointer_mut("/metadata")
        .and_then(Value::as_object_mut)
    {
        map.remove("managedFields");
    }
    let force = req.query.flag("force");
    let api_version = def.api_version();
    let actor = Actor {
        manager: &manager,
        api_version: &api_version,
        scope,
        types: req.types(),
    };
    let live = match &existing {
        Some(existing) => served(def, existing),
        None => {
            if scope == Scope::StatusOnly {
                return Err(ApiError::not_found(req.subject(req.name())));
            }
            let mut skeleton = json!({"apiVersion": api_version, "kind": def.kind, "metadata": {"name": req.name()}});
            if def.namespaced {
                skeleton["metadata"]["namespace"] = json!(req.namespace());
            }
            skeleton
        }
    };
    if let Some(existing) = &existing {
        check_resource_version(req, &config, existing)?;
    }
    let applied = apply::apply(&live, &config, actor, force).map_err(|conflicts| {
        apply::conflict_error(&conflicts, req.name(), &def.group, &def.plural)
    })?;
    match existing {
        None => create_object(inner, req, applied, Managed::Precomputed),
        Some(existing) => {
            let mut new = merge_for_update(&existing, &convert::to_stored(def, &applied), scope);
            // The status scope keeps the existing metadata; the apply's ownership record is new.
            match meta::value_at(&applied, &["metadata", "managedFields"]) {
                Some(managed) => meta::set_meta(&mut new, "managedFields", managed.clone()),
                None => meta::remove_meta(&mut new, "managedFields"),
            }
            finish_update(inner, req, &existing, new, Managed::Precomputed, scope)
        }
    }
}

/// Reads DeleteOptions from the body (JSON) and the query.
pub fn delete_options(req: &Request<'_>) -> Result<DeleteOptions, ApiError> {
    let body: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        decode_body(req.content_type, req.body)?
    };
    let mut options = DeleteOptions {
        propagation: body
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_string),
        grace_period: body.get("gracePeriodSeconds").and_then(Value::as_i64),
        dry_run: body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|v| v == "All")),
        precondition_uid: body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        precondition_rv: body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    if let Some(orphan) = body.get("orphanDependents").and_then(Value::as_bool) {
        options.propagation.get_or_insert_with(|| {
            if orphan {
                "Orphan".into()
            } else {
                "Background".into()
            }
        });
    }
    if let Some(policy) = req.query.get("propagationPolicy") {
        options.propagation = Some(policy.to_string());
    }
    if let Some(grace) = req
        .query
        .get("gracePeriodSeconds")
        .and_then(|g| g.parse().ok())
    {
        options.grace_period = Some(grace);
    }
    if req.query.get("orphanDependents") == Some("true") {
        options.propagation = Some("Orphan".into());
    }
    if req.dry_run() {
        options.dry_run = true;
    }
    if let Some(policy) = &options.propagation
        && !matches!(policy.as_str(), "Foreground" | "Background" | "Orphan")
    {
        return Err(ApiError::invalid(
            "DeleteOptions",
            "",
            "",
            vec![Cause::new(
                "FieldValueNotSupported",
                "propagationPolicy",
                format!(
                    "Unsupported value: {policy:?}: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                ),
            )],
        ));
    }
    Ok(options)
}

/// Whether an immediate delete answers with the object (pods, services, namespaces) or a Status.
fn returns_deleted_object(def: &ResourceDef) -> bool {
    def.group.is_empty() && matches!(def.plural.as_str(), "pods" | "services" | "namespaces")
}

/// DELETE one object.
pub fn delete(inner: &mut Inner, req: &Request<'_>) -> Result<Reply, ApiError> {
    let def = req.def;
    let options = delete_options(req)?;
    let existing = inner
        .store
        .get(&def.storage, req.namespace(), req.name())
        .cloned()
        .ok_or_else(|| ApiError::not_found(req.subject(req.name())))?;
    if let Some(uid) = &options.precondition_uid
        && uid != meta::uid(&existing)
    {
        return Err(ApiError::conflict_with(
            req.subject(req.name()),
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                meta::uid(&existing)
            ),
        ));
    }
    if let Some(rv) = &options.precondition_rv
        && rv != meta::resource_version(&existing)
    {
        return Err(ApiError::conflict_with(
            req.subject(req.name()),
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                meta::resource_version(&existing)
            ),
        ));
    }
    let warnings = req.admit_write(inner, Operation::Delete, req.name(), None, Some(&existing))?;
    let outcome = gc::delete_object(inner, &def.storage, req.namespace(), req.name(), &options)
        .ok_or_else(|| ApiError::not_found(req.subject(req.name())))?;
    if !options.dry_run {
        gc::sweep(inner);
    }
    let reply = match outcome {
        DeleteOutcome::Pending(object) => Reply::ok(served(def, &object)),
        DeleteOutcome::Deleted(object) if returns_deleted_object(def) => {
            Reply::ok(served(def, &object))
        }
        DeleteOutcome::Deleted(object) => {
            let mut details =
                json!({"name": meta::name(&object), "kind": def.plural, "uid": meta::uid(&object)});
            if !def.group.is_empty() {
                details["group"] = json!(def.group);
            }
            Reply::ok(success_status(details))
        }
    };
    Ok(reply.with_warnings(warnings))
}

/// DELETE a collection: every object matching the selectors.
pub fn delete_collection(inner: &mut Inner, req: &Request<'_>) -> Result<Reply, ApiError> {
    let def = req.def;
    let selectors = Selectors::parse(def, req.query)?;
    let options = delete_options(req)?;
    let targets: Vec<(String, String)> = inner
        .store
        .list(&def.storage, req.path.namespace.as_deref())
        .into_iter()
        .filter(|object| selectors.matches(object))
        .map(|object| {
            (
                meta::namespace(object).to_string(),
                meta::name(object).to_string(),
            )
        })
        .collect();
    let mut items = Vec::new();
    for (namespace, name) in targets {
        match gc::delete_object(inner, &def.storage, &namespace, &name, &options) {
            Some(DeleteOutcome::Deleted(object)) | Some(DeleteOutcome::Pending(object)) => {
                items.push(served(def, &object))
            }
            None => {}
        }
    }
    if !options.dry_run {
        gc::sweep(inner);
    }
    Ok(Reply::ok(json!({
        "kind": format!("{}List", def.kind),
        "apiVersion": def.api_version(),
        "metadata": {"resourceVersion": inner.store.current_rv().to_string()},
        "items": items,
    })))
}

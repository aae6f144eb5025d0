//! OpenAPI v3 documents: enough for kubectl and helm to see that every resource supports
//! server-side field validation (`fieldValidation` on PATCH) and, for custom resources, the
//! CRD schema as a component. Built-in kinds get paths but no component schemas, so kubectl
//! computes strategic merge patches from its compiled-in types, as it does when a server's
//! OpenAPI lacks a kind. `/openapi/v2` is not served (404): current kubectl only falls back to
//! it, and tolerates its absence.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use serde_json::{Map, Value, json};

use super::discovery::KUBERNETES_MINOR;
use super::resource::{Registry, ResourceDef};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// Content hash used in `serverRelativeURL`, so clients' caches notice changes.
fn hash(value: &Value) -> String {
    let mut hasher = DefaultHasher::new();
    value.to_string().hash(&mut hasher);
    format!("{:016X}", hasher.finish())
}

/// `/openapi/v3`: the index of group/version documents.
pub fn root(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, version) in registry.group_versions() {
        let path = gv_path(&group, &version);
        let doc = group_version(registry, &group, &version).unwrap_or(Value::Null);
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", hash(&doc))}),
        );
    }
    json!({"paths": paths})
}

fn query_param(name: &str, description: &str, schema_type: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": schema_type, "uniqueItems": true}})
}

fn write_params() -> Vec<Value> {
    vec![
        query_param(
            "dryRun",
            "When present, indicates that modifications should not be persisted.",
            "string",
        ),
        query_param(
            "fieldManager",
            "fieldManager is a name associated with the actor or entity that is making these changes.",
            "string",
        ),
        query_param(
            "fieldValidation",
            "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: Ignore, Warn (default), Strict.",
            "string",
        ),
    ]
}

fn component_name(def: &ResourceDef) -> String {
    let reversed: Vec<&str> = def.group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), def.version, def.kind)
}

fn body_ref(def: &ResourceDef) -> Value {
    if def.custom.is_some() {
        json!({"$ref": format!("#/components/schemas/{}", component_name(def))})
    } else {
        json!({"type": "object"})
    }
}

fn operation(def: &ResourceDef, action: &str, params: Vec<Value>, body_types: &[&str]) -> Value {
    let gvk = json!({"group": def.group, "version": def.version, "kind": def.kind});
    let response = json!({"200": {"description": "OK", "content": {"application/json": {"schema": body_ref(def)}}}});
    let mut op = json!({
        "operationId": format!("{action}{}", def.kind),
        "parameters": params,
        "responses": response,
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    });
    if !body_types.is_empty() {
        let content: Map<String, Value> = body_types
            .iter()
            .map(|t| (t.to_string(), json!({"schema": body_ref(def)})))
            .collect();
        op["requestBody"] = json!({"content": content, "required": true});
    }
    op
}

fn paths_for(def: &ResourceDef, paths: &mut Map<String, Value>) {
    let base = format!("/{}", gv_path(&def.group, &def.version));
    let collection = if def.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", def.plural)
    } else {
        format!("{base}/{}", def.plural)
    };
    // Strategic merge is left out on purpose, also for built-ins: see the module docs.
    let patch_types: &[&str] = &[
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/apply-patch+yaml",
    ];
    let mut write = write_params();
    write.push(query_param(
        "force",
        "Force is going to \"force\" Apply requests.",
        "boolean",
    ));
    if def.is_virtual() {
        paths.insert(
            collection,
            json!({"post": operation(def, "post", write_params(), &["application/json"])}),
        );
        return;
    }
    paths.insert(
        collection.clone(),
        json!({
            "get": operation(def, "list", vec![], &[]),
            "post": operation(def, "post", write_params(), &["application/json", "application/yaml"]),
            "delete": operation(def, "deletecollection", vec![], &[]),
        }),
    );
    paths.insert(
        format!("{collection}/{{name}}"),
        json!({
            "get": operation(def, "get", vec![], &[]),
            "put": operation(def, "put", write_params(), &["application/json", "application/yaml"]),
            "patch": operation(def, "patch", write.clone(), patch_types),
            "delete": operation(def, "delete", vec![], &[]),
        }),
    );
    if def.has_status() {
        paths.insert(
            format!("{collection}/{{name}}/status"),
            json!({
                "get": operation(def, "get", vec![], &[]),
                "put": operation(def, "put", write_params(), &["application/json", "application/yaml"]),
                "patch": operation(def, "patch", write, patch_types),
            }),
        );
    }
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/GROUP/VERSION`.
pub fn group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let defs: Vec<&ResourceDef> = registry
        .all()
        .filter(|d| d.group == group && d.version == version)
        .collect();
    if defs.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for def in defs {
        paths_for(def, &mut paths);
        if let Some(custom) = &def.custom {
            let mut schema = custom.schema.clone().unwrap_or_else(
                || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
            );
            if let Some(map) = schema.as_object_mut() {
                let properties = map.entry("properties").or_insert_with(|| json!({}));
                if let Some(properties) = properties.as_object_mut() {
                    properties.insert("apiVersion".into(), json!({"type": "string"}));
                    properties.insert("kind".into(), json!({"type": "string"}));
                    properties.insert(
                        "metadata".into(),
                        json!({"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]}),
                    );
                }
                map.insert(
                    "x-kubernetes-group-version-kind".into(),
                    json!([{"group": def.group, "version": def.version, "kind": def.kind}]),
                );
            }
            schemas.insert(component_name(def), schema);
            schemas.insert(
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta".into(),
                json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
            );
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{KUBERNETES_MINOR}.0")},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

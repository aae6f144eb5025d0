//! Subresources with behaviour of their own: `pods/binding`, `pods/eviction`, `*/scale` and
//! `namespaces/finalize`. (TokenRequest and the review resources live in `server::auth`.)

use serde_json::{Value, json};

use super::gc::{self, DeleteOptions};
use super::meta;
use super::objects::{Request, decode_body};
use super::reply::Reply;
use super::resource::StorageKey;
use super::state::Inner;
use super::status::{ApiError, Cause, Subject, success_status};

/// POST pods/NAME/binding: assigns the pod to a node, as the scheduler does.
pub fn bind(inner: &mut Inner, req: &Request<'_>) -> Result<Reply, ApiError> {
    let body = decode_body(req.content_type, req.body)?;
    let namespace = req.path.namespace.as_deref().unwrap_or("");
    let name = req.path.name.as_deref().unwrap_or("");
    let node = body
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if node.is_empty() {
        return Err(ApiError::invalid(
            "Binding",
            "",
            name,
            vec![Cause::new(
                "FieldValueRequired",
                "target.name",
                "Required value",
            )],
        ));
    }
    let subject = Subject {
        group: "",
        resource: "pods",
        name,
    };
    let mut pod = inner
        .store
        .get(&req.def.storage, namespace, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(subject))?;
    let assigned = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !assigned.is_empty() {
        return Err(ApiError::conflict_with(
            subject,
            &format!("pod {name} is already assigned to node \"{assigned}\""),
        ));
    }
    pod["spec"]["nodeName"] = json!(node);
    let condition = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": meta::now_rfc3339()});
    let status = pod
        .as_object_mut()
        .map(|m| m.entry("status").or_insert_with(|| json!({})));
    if let Some(status) = status {
        let conditions = status
            .as_object_mut()
            .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
        if let Some(Value::Array(list)) = conditions {
            list.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
            list.push(condition);
        }
    }
    if req.query.get("dryRun") != Some("All") {
        inner.store.insert(&req.def.storage, pod);
    }
    Ok(Reply::created(success_status(json!({}))))
}

/// POST pods/NAME/eviction: deletes the pod (no PodDisruptionBudgets are evaluated).
pub fn evict(inner: &mut Inner, req: &Request<'_>) -> Result<Reply, ApiError> {
    let body = if req.body.is_empty() {
        json!({})
    } else {
        decode_body(req.content_type, req.body)?
    };
    let namespace = req.path.namespace.as_deref().unwrap_or("");
    let name = req.path.name.as_deref().unwrap_or("");
    if inner.store.get(&req.def.storage, namespace, name).is_none() {
        return Err(ApiError::not_found(Subject {
            group: "",
            resource: "pods",
            name,
        }));
    }
    let options = DeleteOptions {
        grace_period: body
            .pointer("/deleteOptions/gracePeriodSeconds")
            .and_then(Value::as_i64),
        propagation: body
            .pointer("/deleteOptions/propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_string),
        dry_run: req.query.get("dryRun") == Some("All"),
        ..DeleteOptions::default()
    };
    gc::delete_object(inner, &req.def.storage, namespace, name, &options);
    if !options.dry_run {
        gc::sweep(inner);
    }
    Ok(Reply::created(success_status(json!({}))))
}

fn scale_paths(req: &Request<'_>) -> (String, String) {
    match req.def.custom.as_ref().and_then(|c| c.scale.clone()) {
        Some(paths) => paths,
        None => (".spec.replicas".into(), ".status.replicas".into()),
    }
}

fn pointer(path: &str) -> String {
    path.trim_start_matches('.')
        .split('.')
        .fold(String::new(), |acc, part| format!("{acc}/{part}"))
}

fn scale_of(req: &Request<'_>, object: &Value) -> Value {
    let (spec_path, status_path) = scale_paths(req);
    let selector: Vec<String> = object
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta::name(object),
            "namespace": meta::namespace(object),
            "uid": meta::uid(object),
            "resourceVersion": meta::resource_version(object),
            "creationTimestamp": object.pointer("/metadata/creationTimestamp").cloned().unwrap_or(Value::Null),
        },
        "spec": {"replicas": object.pointer(&pointer(&spec_path)).cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": object.pointer(&pointer(&status_path)).cloned().unwrap_or(json!(0)),
            "selector": selector.join(","),
        },
    })
}

/// GET, PUT or PATCH `*/scale`.
pub fn scale(
    inner: &mut Inner,
    req: &Request<'_>,
    method: &http::Method,
) -> Result<Reply, ApiError> {
    let namespace = req.path.namespace.as_deref().unwrap_or("");
    let name = req.path.name.as_deref().unwrap_or("");
    let subject = Subject {
        group: &req.def.group,
        resource: &req.def.plural,
        name,
    };
    let object = inner
        .store
        .get(&req.def.storage, namespace, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(subject))?;
    let current = scale_of(req, &object);
    if *method == http::Method::GET {
        return Ok(Reply::ok(current));
    }
    let wanted = if *method == http::Method::PUT {
        decode_body(req.content_type, req.body)?
    } else {
        let document: Value = serde_json::from_slice(req.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
        let mut patched = current.clone();
        json_patch::merge(&mut patched, &document);
        patched
    };
    let wanted_rv = meta::resource_version(&wanted);
    if !wanted_rv.is_empty() && wanted_rv != meta::resource_version(&object) {
        return Err(ApiError::conflict(subject));
    }
    let Some(replicas) = wanted.pointer("/spec/replicas").and_then(Value::as_i64) else {
        return Err(ApiError::invalid(
            "Scale",
            "autoscaling",
            name,
            vec![Cause::new(
                "FieldValueRequired",
                "spec.replicas",
                "Required value",
            )],
        ));
    };
    if replicas < 0 {
        return Err(ApiError::invalid(
            "Scale",
            "autoscaling",
            name,
            vec![Cause::new(
                "FieldValueInvalid",
                "spec.replicas",
                format!("Invalid value: {replicas}: must be greater than or equal to 0"),
            )],
        ));
    }
    let (spec_path, _) = scale_paths(req);
    let mut updated = object.clone();
    if let Some(slot) = updated.pointer_mut(&pointer(&spec_path)) {
        *slot = json!(replicas);
    } else if let Some(spec) = updated.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("replicas".into(), json!(replicas));
    }
    if updated == object || req.query.get("dryRun") == Some("All") {
        return Ok(Reply::ok(scale_of(req, &updated)));
    }
    let generation = object
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    meta::set_meta(&mut updated, "generation", json!(generation + 1));
    let stored = inner.store.insert(&req.def.storage, updated);
    Ok(Reply::ok(scale_of(req, &stored)))
}

/// PUT namespaces/NAME/finalize: replaces `spec.finalizers`.
pub fn finalize_namespace(inner: &mut Inner, req: &Request<'_>) -> Result<Reply, ApiError> {
    let body = decode_body(req.content_type, req.body)?;
    let name = req.path.name.as_deref().unwrap_or("");
    let key = StorageKey {
        group: String::new(),
        resource: "namespaces".into(),
    };
    let mut namespace = inner.store.get(&key, "", name).cloned().ok_or_else(|| {
        ApiError::not_found(Subject {
            group: "",
            resource: "namespaces",
            name,
        })
    })?;
    namespace["spec"]["finalizers"] = body
        .pointer("/spec/finalizers")
        .cloned()
        .unwrap_or_else(|| json!([]));
    let stored = inner.store.insert(&key, namespace);
    gc::sweep(inner);
    Ok(Reply::ok(stored))
}

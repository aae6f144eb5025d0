//! Entry point of every request: routes it, negotiates the representation, takes the lock
//! for object verbs, and turns panics into 500 InternalError answers.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::Value;

use super::aggregation;
use super::apply::Scope;
use super::auth::{self, attributes, authenticate, forbidden, identity::UserInfo};
use super::controllers;
use super::discovery;
use super::objects;
use super::openapi;
use super::podlog;
use super::reply::{self, Reply};
use super::request::{self, Query, Representation, ResourcePath, Route};
use super::root_ca;
use super::state::Shared;
use super::status::ApiError;
use super::subresources;
use super::watch;

/// Largest request body accepted (the real server's limit is 3 MiB per object; lists of
/// patches can be larger).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// The axum handler for every path.
pub async fn dispatch(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    match AssertUnwindSafe(handle(shared, request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "handler panicked".into());
            tracing::error!(%message, "request handler panicked");
            ApiError::internal(message).into_response()
        }
    }
}

fn header_str(request: &http::request::Parts, name: header::HeaderName) -> Option<&str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

fn typed_reply(body: Value, content_type: &str) -> Response {
    Reply {
        content_type: Some(content_type.to_string()),
        ..Reply::ok(body)
    }
    .into_response()
}

async fn handle(shared: Arc<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let route = request::route(parts.uri.path());
    let user = match authenticate_and_authorize(&shared, &parts, &route) {
        Ok(user) => user,
        Err(refused) => return refused.into_response(),
    };
    let accept = header_str(&parts, header::ACCEPT).map(str::to_string);
    let read_only = matches!(parts.method, Method::GET | Method::HEAD);
    if matches!(route, Route::NotFound) {
        return reply::page_not_found();
    }
    if let Some(backend) = aggregation::remote_route(&shared, &route) {
        return aggregation::proxy_request(&shared, &backend, parts, body, &user).await;
    }
    if !matches!(route, Route::Resource(_)) && !read_only {
        return ApiError::method_not_allowed().into_response();
    }
    match route {
        Route::Version => Reply::ok(discovery::version()).into_response(),
        Route::Health => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
            "ok",
        )
            .into_response(),
        Route::CoreVersions => {
            let inner = shared.lock();
            match request::aggregated_discovery(accept.as_deref()) {
                Some(version) => typed_reply(
                    discovery::aggregated(
                        &inner.registry,
                        true,
                        &format!("apidiscovery.k8s.io/{version}"),
                    ),
                    &format!(
                        "application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
                    ),
                ),
                None => Reply::ok(discovery::core_versions(&shared.config.server_address))
                    .into_response(),
            }
        }
        Route::GroupList => {
            let inner = shared.lock();
            match request::aggregated_discovery(accept.as_deref()) {
                Some(version) => typed_reply(
                    aggregation::with_remote_discovery(
                        discovery::aggregated(
                            &inner.registry,
                            false,
                            &format!("apidiscovery.k8s.io/{version}"),
                        ),
                        &inner,
                        &shared,
                    ),
                    &format!(
                        "application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
                    ),
                ),
                None => Reply::ok(aggregation::with_remote_groups(
                    discovery::group_list(&inner.registry),
                    &inner,
                ))
                .into_response(),
            }
        }
        Route::Group(group) => {
            let inner = shared.lock();
            match discovery::group(&inner.registry, &group)
                .or_else(|| aggregation::remote_group(&inner, &group))
            {
                Some(body) => Reply::ok(body).into_response(),
                None => reply::page_not_found(),
            }
        }
        Route::ResourceList(group, version) => {
            match discovery::resource_list(&shared.lock().registry, &group, &version) {
                Some(body) => Reply::ok(body).into_response(),
                None => reply::page_not_found(),
            }
        }
        Route::OpenApiV2 => ApiError::path_not_found().into_response(),
        Route::OpenApiV3 => Reply::ok(openapi::root(&shared.lock().registry)).into_response(),
        Route::OpenApiV3GroupVersion(group, version) => {
            match openapi::group_version(&shared.lock().registry, &group, &version) {
                Some(body) => Reply::ok(body).into_response(),
                None => ApiError::path_not_found().into_response(),
            }
        }
        Route::NotFound => reply::page_not_found(),
        Route::Resource(path) => {
            let body = match axum::body::to_bytes(body, MAX_BODY).await {
                Ok(bytes) => bytes,
                Err(_) => {
                    return ApiError {
                        code: 413,
                        reason: "RequestEntityTooLarge".into(),
                        message: format!(
                            "the request body is larger than the server accepts ({MAX_BODY} bytes)"
                        ),
                        details: None,
                        retry_after: None,
                    }
                    .into_response();
                }
            };
            match resource(shared, &parts, &path, accept.as_deref(), &body, &user).await {
                Ok(response) => response,
                Err(error) => error.into_response(),
            }
        }
    }
}

/// Authentication then authorization, before anything else looks at the request.
fn authenticate_and_authorize(
    shared: &Shared,
    parts: &http::request::Parts,
    route: &Route,
) -> Result<UserInfo, ApiError> {
    let inner = shared.lock();
    let user = authenticate::authenticate_request(&inner, &shared.tokens, &parts.headers).map_err(
        |error| {
            tracing::debug!(%error, "request not authenticated");
            forbidden::unauthorized()
        },
    )?;
    let user = auth::impersonation::apply(&inner, user, &parts.headers)?;
    let asked = attributes::of_request(&parts.method, parts.uri.path(), parts.uri.query(), route);
    auth::authorize(&inner, &user, &asked)?;
    Ok(user)
}

async fn resource(
    shared: Arc<Shared>,
    parts: &http::request::Parts,
    path: &ResourcePath,
    accept: Option<&str>,
    body: &[u8],
    user: &UserInfo,
) -> Result<Response, ApiError> {
    let query = Query::parse(parts.uri.query());
    let found = {
        let inner = shared.lock();
        match inner
            .registry
            .find(&path.group, &path.version, &path.plural)
        {
            Some(def) => Ok(def.clone()),
            None => Err(inner.registry.serves_builtin(&path.group, &path.version)),
        }
    };
    let def = match found {
        Ok(def) => def,
        Err(true) => return Err(ApiError::path_not_found()),
        Err(false) => return Ok(reply::page_not_found()),
    };
    if path.namespace.is_some() && !def.namespaced {
        return Err(ApiError::path_not_found());
    }
    let subresource = path.subresource.as_deref();
    if let Some(name) = subresource
        && def.subresource(name).is_none()
    {
        return Err(ApiError::path_not_found());
    }
    let method = parts.method.clone();
    let is_log = subresource == Some("log");
    let representation = if is_log {
        Representation::Object
    } else {
        request::representation(accept)
            .ok_or_else(|| ApiError::not_acceptable("application/json, application/yaml"))?
    };
    let watching = path.legacy_watch || (query.flag("watch") && method == Method::GET);
    if watching {
        if !def.allows("watch") || subresource.is_some() {
            return Err(ApiError::method_not_allowed());
        }
        let mut query = query;
        if let Some(name) = &path.name {
            // `/watch/…/NAME` watches one object.
            let selector = match query.get("fieldSelector") {
                Some(existing) if !existing.is_empty() => {
                    format!("{existing},metadata.name={name}")
                }
                _ => format!("metadata.name={name}"),
            };
            query = Query::parse(Some(&format!(
                "{}&fieldSelector={}",
                raw_query(parts),
                encode_component(&selector)
            )));
        }
        return watch::serve(
            shared.clone(),
            def,
            path.namespace.clone(),
            &query,
            representation,
        );
    }
    if is_log {
        if method != Method::GET {
            return Err(ApiError::method_not_allowed());
        }
        let source = podlog::locate(
            &shared,
            path.namespace.as_deref().unwrap_or(""),
            path.name.as_deref().unwrap_or(""),
            &query,
        )?;
        return podlog::serve(source).await;
    }
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let req = objects::Request {
        def: &def,
        path,
        query: &query,
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        user_agent,
        body,
        representation,
        user: Some(user),
    };
    let mut inner = shared.lock();
    let inner = &mut *inner;
    let reply = match (&method, path.name.is_some(), subresource) {
        (&Method::GET, false, None) if def.allows("list") => objects::list(inner, &req),
        (&Method::POST, false, None) if def.is_virtual() => {
            auth::reviews::review(inner, &shared.tokens, user, &req)
        }
        (&Method::POST, false, None) if def.allows("create") => objects::create(inner, &req),
        (&Method::DELETE, false, None) if def.allows("deletecollection") => {
            objects::delete_collection(inner, &req)
        }
        (&Method::GET, true, None) if def.allows("get") => objects::get(inner, &req),
        (&Method::PUT, true, None) if def.allows("update") => {
            objects::update(inner, &req, scope_of(&def))
        }
        (&Method::PATCH, true, None) if def.allows("patch") => {
            objects::patch(inner, &req, scope_of(&def))
        }
        (&Method::DELETE, true, None) if def.allows("delete") => objects::delete(inner, &req),
        (&Method::GET, true, Some("status")) => objects::get(inner, &req),
        (&Method::PUT, true, Some("status")) => objects::update(inner, &req, Scope::StatusOnly),
        (&Method::PATCH, true, Some("status")) => objects::patch(inner, &req, Scope::StatusOnly),
        (&Method::POST, true, Some("token")) => {
            auth::token_request::issue(inner, &shared.tokens, &req)
        }
        (&Method::POST, true, Some("binding")) => subresources::bind(inner, &req),
        (&Method::POST, true, Some("eviction")) => subresources::evict(inner, &req),
        (&Method::PUT, true, Some("finalize")) => subresources::finalize_namespace(inner, &req),
        (&Method::GET | &Method::PUT | &Method::PATCH, true, Some("scale")) => {
            subresources::scale(inner, &req, &method)
        }
        _ => Err(ApiError::method_not_allowed()),
    }?;
    if method != Method::GET {
        controllers::reconcile(inner);
        root_ca::publish(inner, &shared.config.root_ca_pem);
    }
    Ok(reply.into_response())
}

fn scope_of(def: &super::resource::ResourceDef) -> Scope {
    if def.has_status() {
        Scope::NoStatus
    } else {
        Scope::Whole
    }
}

fn raw_query(parts: &http::request::Parts) -> String {
    parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.starts_with("fieldSelector="))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode_component(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

//! HTTP routing: turns a request path into a resource target and a verb, applies faults and
//! counters, then hands over to the read, write and watch handlers.
//!
//! Paths: `/api/v1/...` and `/apis/{group}/{version}/...`, each followed by
//! `[namespaces/{ns}/]{resource}[/{name}[/{subresource}]]`.

mod admitted;
mod binding;
mod components;
mod converted;
mod read;
pub(crate) mod review;
mod write;

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};

use crate::negotiate::{self, Output, Shape};
use crate::query::Query;
use crate::resources::{ResourceInfo, Served};
use crate::server::Shared;
use crate::status::{ApiError, ApiResult};
use crate::{discovery, openapi, protobuf, watch};

/// Largest request body accepted: kube-apiserver's `--max-resource-write-bytes` default, 3 MiB.
const MAX_BODY: usize = 3 * 1024 * 1024;

pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new().fallback(move |req: Request<Body>| {
        let shared = shared.clone();
        async move { handle(shared, req).await }
    })
}

/// A request aimed at a resource.
pub(crate) struct Ctx {
    pub shared: Arc<Shared>,
    pub info: Arc<ResourceInfo>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
    pub query: Query,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The form of the answer, negotiated from `Accept`.
    pub output: Output,
}

impl Ctx {
    /// Whether the client asked for `meta.k8s.io/v1` Table output.
    pub fn wants_table(&self) -> bool {
        self.output.shape == Shape::Table
    }

    pub fn content_type(&self) -> String {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default()
    }
}

/// What a path addresses.
enum Route {
    /// Discovery, health, version, OpenAPI: answered without touching objects.
    Info(Response<Body>),
    Resource {
        info: Arc<ResourceInfo>,
        namespace: Option<String>,
        name: Option<String>,
        sub: Option<String>,
    },
}

fn verb_of(method: &Method, has_name: bool, watch: bool) -> &'static str {
    match (method.as_str(), has_name) {
        ("GET", true) if watch => "watch",
        ("GET", true) => "get",
        ("GET", false) if watch => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "other",
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Body>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let query = Query::parse(parts.uri.query());
    let path = parts.uri.path().to_string();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let route = match resolve(&shared, &parts.method, &parts.headers, &segs) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let watching = query.flag("watch").unwrap_or(false);
    let (verb, resource) = match &route {
        Route::Info(_) => ("get", None),
        Route::Resource { info, name, .. } => (
            verb_of(&parts.method, name.is_some(), watching),
            Some(info.plural.clone()),
        ),
    };
    tracing::debug!(method = %parts.method, %path, verb, "request");
    let latency = shared.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(err) = shared.faults.on_request(verb, resource.as_deref()) {
        return err.into_response();
    }
    let (info, namespace, name, sub) = match route {
        Route::Info(resp) => return resp,
        Route::Resource {
            info,
            namespace,
            name,
            sub,
        } => (info, namespace, name, sub),
    };
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            // kube-apiserver's answer (a body the client cut short is not read either).
            tracing::debug!(error = %e, "request body not read");
            return ApiError::new(
                413,
                "RequestEntityTooLarge",
                format!("Request entity too large: limit is {MAX_BODY}"),
            )
            .into_response();
        }
    };
    let protobuf_ok = protobuf::has_kind(&info.api_version(), &info.kind);
    let output = match negotiate::negotiate(&parts.headers, protobuf_ok, watching) {
        Ok(o) => o,
        Err(e) => {
            let refusal = negotiate::refusal_output(&parts.headers);
            return negotiate::render(&refusal, e.into_response()).await;
        }
    };
    let ctx = Ctx {
        shared,
        info,
        namespace,
        name,
        sub,
        query,
        headers: parts.headers,
        body,
        output: output.clone(),
    };
    let computed = match ctx.info.served {
        _ if ctx.sub.as_deref() == Some("binding") => Some(binding::answer(&ctx, verb)),
        Served::Stored => None,
        Served::Review => Some(review::answer(&ctx, verb)),
        Served::Binding => Some(binding::answer(&ctx, verb)),
        Served::ComponentStatus => Some(components::answer(&ctx, verb)),
    };
    if let Some(answer) = computed {
        let answer = answer.unwrap_or_else(ApiError::into_response);
        return negotiate::render(&output, answer).await;
    }
    let result = match verb {
        _ if !verb_fits(verb, ctx.name.is_some()) => Err(ApiError::method_not_allowed()),
        _ if let Some(webhook) = converted::needed(&ctx) => {
            match converted::serve(ctx, verb, webhook).await {
                Ok(answer) if verb == "watch" => return answer,
                result => result,
            }
        }
        // A stream is written in its form by the watch itself; only a refusal is rendered here.
        "watch" => match watch::serve(ctx).await {
            Ok(stream) => return stream,
            Err(e) => Err(e),
        },
        _ => run_resource(ctx, verb).await,
    };
    negotiate::render(&output, result.unwrap_or_else(ApiError::into_response)).await
}

/// Whether `verb` applies to a request with (or without) an object name.
fn verb_fits(verb: &str, has_name: bool) -> bool {
    match verb {
        "create" => !has_name,
        "update" | "patch" => has_name,
        _ => true,
    }
}

/// Answers a request that is not a watch: a read, or a write (through the admission webhooks
/// when the server has webhook configurations).
pub(crate) async fn run_resource(ctx: Ctx, verb: &str) -> ApiResult<Response<Body>> {
    let writes = matches!(verb, "create" | "update" | "patch" | "delete")
        && ctx.sub.as_deref() != Some("scale");
    if writes && crate::admission::any_configured(&ctx.shared.store.lock()) {
        return admitted::write(ctx, verb).await;
    }
    match verb {
        "get" => read::get(&ctx),
        "list" => read::list(&ctx),
        "create" => write::create(&ctx),
        "update" => write::update(&ctx),
        "patch" => write::patch(&ctx),
        "delete" => write::delete(&ctx),
        "deletecollection" => write::delete_collection(&ctx),
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// Maps a path to what it addresses, or to the 404 the real server sends.
fn resolve(
    shared: &Shared,
    method: &Method,
    headers: &HeaderMap,
    segs: &[&str],
) -> ApiResult<Route> {
    let get_only = || {
        if *method == Method::GET || *method == Method::HEAD {
            Ok(())
        } else {
            Err(ApiError::method_not_allowed())
        }
    };
    let store = shared.store.lock();
    let reg = &store.registry;
    let (group, version, rest) = match segs {
        [] => {
            get_only()?;
            return Ok(Route::Info(discovery::root_paths(reg)));
        }
        ["healthz" | "readyz" | "livez", ..] => {
            get_only()?;
            return Ok(Route::Info(text(StatusCode::OK, "ok")));
        }
        ["version"] => {
            get_only()?;
            return Ok(Route::Info(discovery::version()));
        }
        ["openapi", "v2"] => {
            get_only()?;
            return Ok(Route::Info(openapi::v2(reg)));
        }
        ["openapi", "v3"] => {
            get_only()?;
            return Ok(Route::Info(openapi::v3_index(reg)));
        }
        ["openapi", "v3", rest @ ..] => {
            get_only()?;
            return Ok(Route::Info(openapi::v3_group_version(
                reg,
                &rest.join("/"),
            )?));
        }
        ["api"] => {
            get_only()?;
            return Ok(Route::Info(discovery::api_versions(headers)));
        }
        ["apis"] => {
            get_only()?;
            return Ok(Route::Info(discovery::api_groups(reg, headers)));
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g] => {
            get_only()?;
            return Ok(Route::Info(discovery::api_group(reg, g)?));
        }
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::page_not_found()),
    };
    if !reg.has_group_version(group, version) {
        // A served group answers for its unknown versions with a Status; a path under no served
        // group falls through to the plain-text handler.
        let known_group = group.is_empty() || reg.groups().iter().any(|(g, _)| g == group);
        return Err(if known_group {
            ApiError::no_route()
        } else {
            ApiError::page_not_found()
        });
    }
    if rest.is_empty() {
        get_only()?;
        return Ok(Route::Info(discovery::resource_list(reg, group, version)));
    }
    let namespaced_path = rest[0] == "namespaces"
        && rest.len() >= 3
        && !(rest.len() == 3 && matches!(rest[2], "status" | "finalize"));
    let (namespace, rest) = if namespaced_path {
        (Some(rest[1].to_string()), &rest[2..])
    } else {
        (None, rest)
    };
    let (plural, name, sub) = match rest {
        [r] => (*r, None, None),
        [r, n] => (*r, Some(n.to_string()), None),
        [r, n, s] => (*r, Some(n.to_string()), Some(s.to_string())),
        _ => return Err(ApiError::no_route()),
    };
    let info = reg
        .get(group, version, plural)
        .ok_or_else(ApiError::no_route)?;
    if namespace.is_some() && !info.namespaced {
        return Err(ApiError::no_route());
    }
    if let Some(s) = &sub {
        let ok = match s.as_str() {
            "status" => info.status,
            "scale" => info.scale.is_some(),
            "binding" => info.group.is_empty() && info.plural == "pods",
            "finalize" => info.group.is_empty() && info.plural == "namespaces",
            _ => false,
        };
        if !ok {
            return Err(ApiError::no_route());
        }
    }
    Ok(Route::Resource {
        info,
        namespace,
        name,
        sub,
    })
}

pub(crate) fn text(code: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = code;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A JSON response from already-serialized bytes.
pub(crate) fn json_bytes(code: StatusCode, body: impl Into<Body>) -> Response<Body> {
    let mut r = Response::new(body.into());
    *r.status_mut() = code;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

pub(crate) fn json_value(code: StatusCode, v: &serde_json::Value) -> Response<Body> {
    json_bytes(code, serde_json::to_vec(v).unwrap_or_default())
}

/// Go's name for a JSON value's type in decoding errors.
pub(crate) fn json_type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

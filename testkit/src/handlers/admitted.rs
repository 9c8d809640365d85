//! Writes through the admission webhooks (see [`crate::admission`] for the order and what
//! differs from kube-apiserver): the server's processing as a dry run, the mutating webhooks,
//! the mutated object processed again, the validating webhooks, then the write itself.

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Response};
use serde_json::Value;

use super::{Ctx, write};
use crate::admission::{self, Attributes};
use crate::status::{ApiError, ApiResult};

/// Runs `verb` (create, update, patch, delete) through the webhooks selecting it.
pub(crate) async fn write(ctx: Ctx, verb: &str) -> ApiResult<Response<Body>> {
    let name = ctx.name.clone().unwrap_or_default();
    let old = existing(&ctx, &name);
    let operation = match verb {
        "delete" => "DELETE",
        // An apply (or a PUT) of an object that does not exist yet creates it.
        "create" => "CREATE",
        _ if old.is_none() => "CREATE",
        _ => "UPDATE",
    };
    let dry_run = ctx.query.get("dryRun").is_some();
    // What the write would store, after the server's own defaulting, merging and validation.
    let object = match operation {
        "DELETE" => None,
        _ => Some(object_of(run(&copy(&ctx, true), verb)?).await?),
    };
    let name = object
        .as_ref()
        .and_then(|o| o["metadata"]["name"].as_str())
        .map_or(name, str::to_owned);
    let write = Write {
        ctx: &ctx,
        operation,
        name: &name,
        old: old.as_ref(),
        dry_run,
    };
    let (mutating, validating) =
        admission::selected(&ctx.shared.store.lock(), &write.attributes(object.as_ref()));
    if mutating.is_empty() && validating.is_empty() {
        return run(&ctx, verb);
    }
    let mut warnings = Vec::new();
    let mut object = object;
    let mut mutated = false;
    if operation != "DELETE" {
        for hook in &mutating {
            let answer = admission::call(hook, &write.attributes(object.as_ref())).await?;
            warnings.extend(answer.warnings);
            if let Some(patched) = answer.patched {
                object = Some(patched);
                mutated = true;
            }
        }
    }
    // A mutated object is written whole: created, or put over the version the dry run saw.
    let (final_ctx, final_verb) = match (&object, mutated) {
        (Some(changed), true) => {
            let verb = if old.is_none() { "create" } else { "update" };
            let body = body_of(changed.clone(), old.as_ref());
            let rewritten = rewritten(
                &ctx,
                Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
            );
            object = Some(object_of(run(&copy(&rewritten, true), verb)?).await?);
            (rewritten, verb)
        }
        _ => (copy(&ctx, false), verb),
    };
    for hook in &validating {
        let answer = admission::call(hook, &write.attributes(object.as_ref())).await?;
        warnings.extend(answer.warnings);
    }
    let mut response = run(&final_ctx, final_verb)?;
    for warning in warnings {
        let text = format!("299 - \"{}\"", warning.replace('"', "'"));
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append(http::header::WARNING, value);
        }
    }
    Ok(response)
}

/// What stays the same across the webhooks of one write.
struct Write<'a> {
    ctx: &'a Ctx,
    operation: &'static str,
    name: &'a str,
    old: Option<&'a Value>,
    dry_run: bool,
}

impl Write<'_> {
    /// The write with `object` as the object it would store now.
    fn attributes<'b>(&'b self, object: Option<&'b Value>) -> Attributes<'b> {
        Attributes {
            operation: self.operation,
            info: &self.ctx.info,
            sub: self.ctx.sub.as_deref(),
            namespace: self.ctx.namespace.as_deref(),
            name: self.name,
            object,
            old: self.old,
            dry_run: self.dry_run,
        }
    }
}

/// The object stored under `name` now, as the client's version.
fn existing(ctx: &Ctx, name: &str) -> Option<Value> {
    if name.is_empty() {
        return None;
    }
    let key = crate::objects::obj_key(&ctx.info, ctx.namespace.as_deref(), name);
    let stored = ctx.shared.store.lock().get(&ctx.info.key(), &key)?;
    Some(super::read::with_version(&ctx.info, stored.value()))
}

fn run(ctx: &Ctx, verb: &str) -> ApiResult<Response<Body>> {
    match verb {
        "create" => write::create(ctx),
        "update" => write::update(ctx),
        "patch" => write::patch(ctx),
        "delete" => write::delete(ctx),
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// The JSON object a write answered.
async fn object_of(response: Response<Body>) -> ApiResult<Value> {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .map_err(|e| ApiError::internal(format!("reading the dry run's answer: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::internal(format!("the dry run's answer is not JSON: {e}")))
}

/// A copy of `ctx`; with `dry_run`, with `dryRun=All` added.
fn copy(ctx: &Ctx, dry_run: bool) -> Ctx {
    let mut query = ctx.query.clone();
    if dry_run {
        query.set("dryRun", "All");
    }
    Ctx {
        shared: ctx.shared.clone(),
        info: ctx.info.clone(),
        namespace: ctx.namespace.clone(),
        name: ctx.name.clone(),
        sub: ctx.sub.clone(),
        query,
        headers: ctx.headers.clone(),
        body: ctx.body.clone(),
        output: ctx.output.clone(),
    }
}

/// The body writing the mutated `object`: without the fields the server sets; an update is
/// conditional on the version the dry run saw (`old`).
fn body_of(mut object: Value, old: Option<&Value>) -> Value {
    if let Some(meta) = object["metadata"].as_object_mut() {
        for system in [
            "uid",
            "creationTimestamp",
            "resourceVersion",
            "generation",
            "managedFields",
        ] {
            meta.remove(system);
        }
    }
    if let Some(rv) = old.and_then(|o| o["metadata"]["resourceVersion"].as_str()) {
        object["metadata"]["resourceVersion"] = rv.into();
    }
    object
}

/// `ctx` carrying `body` (a whole JSON object) instead of what the client sent.
fn rewritten(ctx: &Ctx, body: Bytes) -> Ctx {
    let mut headers = ctx.headers.clone();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ctx {
        headers,
        body,
        ..copy(ctx, false)
    }
}

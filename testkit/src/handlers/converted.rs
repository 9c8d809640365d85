//! Requests for a version of a custom resource other than its storage version, when its CRD
//! converts through a webhook (`spec.conversion.strategy: Webhook`), as kube-apiserver serves
//! them: objects are kept in the storage version and the webhook converts them on the way in
//! (a written body) and out (answers, listed items in one `ConversionReview`, watch events).
//! A patch is applied to the object converted to the requested version, and the result
//! converted back. A failed conversion is kube-apiserver's 500 (`conversion webhook for
//! <group/version, Kind=…> failed: …`).
//!
//! Table and metadata-only answers are not converted (their columns and metadata are the
//! stored version's), and an apply configuration is converted whole, as a partial object.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Response};
use serde_json::{Value, json};

use super::{Ctx, json_value, run_resource};
use crate::negotiate::Shape;
use crate::resources::{ConversionWebhook, ResourceInfo};
use crate::status::{ApiError, ApiResult};

/// How long a conversion call may take (kube-apiserver: 30 s).
const TIMEOUT: Duration = Duration::from_secs(30);

/// The conversion webhook `ctx` must go through: its resource's CRD converts by webhook and
/// `ctx` asks for another version than the stored one, in the objects' own shape.
pub(crate) fn needed(ctx: &Ctx) -> Option<ConversionWebhook> {
    let conversion = ctx.info.custom.as_ref()?.conversion.clone()?;
    (conversion.storage_version != ctx.info.version && ctx.output.shape == Shape::Objects)
        .then_some(conversion)
}

/// Serves `verb` in the storage version, converting through `webhook`.
pub(crate) async fn serve(
    ctx: Ctx,
    verb: &str,
    webhook: ConversionWebhook,
) -> ApiResult<Response<Body>> {
    let storage = {
        let store = ctx.shared.store.lock();
        store
            .registry
            .get(&ctx.info.group, &webhook.storage_version, &ctx.info.plural)
            .ok_or_else(|| {
                ApiError::internal(format!(
                    "the storage version {} is not served",
                    webhook.storage_version
                ))
            })?
    };
    let converter = Converter {
        webhook,
        info: ctx.info.clone(),
    };
    let requested = ctx.info.api_version();
    let stored = storage.api_version();
    let answer = match verb {
        "create" | "update" => {
            let body = converter.one(parse_body(&ctx)?, &stored).await?;
            run_resource(with(&ctx, storage, Some(body)), verb).await?
        }
        "patch" if is_apply(&ctx) => {
            let body = converter.one(parse_body(&ctx)?, &stored).await?;
            run_resource(with(&ctx, storage, Some(body)), verb).await?
        }
        "patch" => patch(&ctx, &converter, storage).await?,
        "watch" => {
            let response = super::watch::serve(with(&ctx, storage, None)).await?;
            return Ok(converter.events(response, requested));
        }
        _ => run_resource(with(&ctx, storage, None), verb).await?,
    };
    converter.answer(answer, &requested).await
}

fn is_apply(ctx: &Ctx) -> bool {
    ctx.content_type().starts_with("application/apply-patch")
}

/// A JSON or YAML body as a JSON value.
fn parse_body(ctx: &Ctx) -> ApiResult<Value> {
    serde_json::from_slice(&ctx.body)
        .or_else(|_| serde_yaml::from_slice(&ctx.body))
        .map_err(|e| ApiError::bad_request(format!("the body is not a JSON or YAML object: {e}")))
}

/// A patch: the stored object converted to the requested version, patched, converted back and
/// put at the version read (a concurrent change is a 409).
async fn patch(
    ctx: &Ctx,
    converter: &Converter,
    storage: Arc<ResourceInfo>,
) -> ApiResult<Response<Body>> {
    let name = ctx.name.clone().unwrap_or_default();
    let current = {
        let key = crate::objects::obj_key(&storage, ctx.namespace.as_deref(), &name);
        let stored = ctx.shared.store.lock().get(&storage.key(), &key);
        let stored =
            stored.ok_or_else(|| ApiError::not_found(&ctx.info.group_resource(), &name))?;
        super::read::with_version(&storage, stored.value())
    };
    let rv = current["metadata"]["resourceVersion"].clone();
    let requested = converter.one(current, &ctx.info.api_version()).await?;
    let kind = crate::patch::PatchType::from_content_type(&ctx.content_type())?;
    let patched = crate::patch::apply_patch(kind, &requested, &ctx.body, &ctx.info.patch_kind())?;
    let mut back = converter.one(patched, &storage.api_version()).await?;
    back["metadata"]["resourceVersion"] = rv;
    let mut put = with(ctx, storage, Some(back));
    put.headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    run_resource(put, "update").await
}

/// `ctx` for the storage version's `info`, carrying `body` (JSON) instead of the client's.
fn with(ctx: &Ctx, info: Arc<ResourceInfo>, body: Option<Value>) -> Ctx {
    let mut headers = ctx.headers.clone();
    let body = match body {
        Some(v) => {
            if !is_apply(ctx) {
                headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
        }
        None => ctx.body.clone(),
    };
    Ctx {
        shared: ctx.shared.clone(),
        info,
        namespace: ctx.namespace.clone(),
        name: ctx.name.clone(),
        sub: ctx.sub.clone(),
        query: ctx.query.clone(),
        headers,
        body,
        output: ctx.output.clone(),
    }
}

/// One CRD's webhook, for the resource the client asked for.
struct Converter {
    webhook: ConversionWebhook,
    info: Arc<ResourceInfo>,
}

impl Converter {
    /// `objects` in `desired`; only those in another version go to the webhook, in one review.
    async fn many(&self, mut objects: Vec<Value>, desired: &str) -> ApiResult<Vec<Value>> {
        let pending: Vec<usize> = (0..objects.len())
            .filter(|&i| objects[i]["apiVersion"].as_str() != Some(desired))
            .collect();
        if pending.is_empty() {
            return Ok(objects);
        }
        let review = json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "ConversionReview",
            "request": {
                "uid": uuid::Uuid::new_v4().to_string(),
                "desiredAPIVersion": desired,
                "objects": pending.iter().map(|&i| objects[i].clone()).collect::<Vec<_>>(),
            },
        });
        let failed = |why: String| {
            ApiError::internal(format!(
                "conversion webhook for {}, Kind={} failed: {why}",
                self.info.api_version(),
                self.info.kind
            ))
        };
        let answer = crate::webhook_call::post(
            self.webhook.url.as_deref(),
            self.webhook.ca_pem.as_deref(),
            TIMEOUT,
            &review,
        )
        .await
        .map_err(failed)?;
        let response = &answer["response"];
        if response["result"]["status"].as_str() != Some("Success") {
            let message = response["result"]["message"]
                .as_str()
                .unwrap_or("the webhook reported a failure");
            return Err(failed(message.to_owned()));
        }
        let converted = response["convertedObjects"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if converted.len() != pending.len() {
            return Err(failed(format!(
                "expected {} converted objects, got {}",
                pending.len(),
                converted.len()
            )));
        }
        for (i, object) in pending.into_iter().zip(converted) {
            if object["apiVersion"].as_str() != Some(desired) {
                return Err(failed(format!(
                    "a converted object has apiVersion {}, not {desired}",
                    object["apiVersion"]
                )));
            }
            objects[i] = object;
        }
        Ok(objects)
    }

    async fn one(&self, object: Value, desired: &str) -> ApiResult<Value> {
        Ok(self.many(vec![object], desired).await?.remove(0))
    }

    /// An answer (an object, a list, or a Status) with its objects in `desired`.
    async fn answer(&self, response: Response<Body>, desired: &str) -> ApiResult<Response<Body>> {
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .map_err(|e| ApiError::internal(format!("reading an answer to convert: {e}")))?;
        let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
            return Ok(Response::from_parts(parts, Body::from(bytes)));
        };
        if value["kind"].as_str() == Some(self.info.kind.as_str()) {
            value = self.one(value, desired).await?;
        } else if value["kind"].as_str() == Some(self.info.list_kind().as_str()) {
            let items = value["items"].as_array().cloned().unwrap_or_default();
            value["items"] = Value::Array(self.many(items, desired).await?);
            value["apiVersion"] = desired.into();
        } else {
            return Ok(Response::from_parts(parts, Body::from(bytes)));
        }
        let mut converted = json_value(parts.status, &value);
        for (name, v) in &parts.headers {
            if name != http::header::CONTENT_LENGTH && name != http::header::CONTENT_TYPE {
                converted.headers_mut().append(name, v.clone());
            }
        }
        Ok(converted)
    }

    /// A watch stream with each event's object in `desired`; a failed conversion is an `ERROR`
    /// event and the stream goes on. Bookmarks only change their `apiVersion`.
    fn events(self, response: Response<Body>, desired: String) -> Response<Body> {
        let (parts, body) = response.into_parts();
        let state = (
            body.into_data_stream(),
            Vec::<u8>::new(),
            Arc::new(self),
            desired,
        );
        let stream = futures::stream::unfold(
            state,
            |(mut body, mut buffer, converter, desired)| async move {
                loop {
                    if let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buffer.drain(..=end).collect();
                        let out = converter.event(&line, &desired).await;
                        return Some((
                            Ok::<_, std::convert::Infallible>(Bytes::from(out)),
                            (body, buffer, converter, desired),
                        ));
                    }
                    match body.next().await {
                        Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
                        _ => return None,
                    }
                }
            },
        );
        Response::from_parts(parts, Body::from_stream(stream))
    }

    async fn event(&self, line: &[u8], desired: &str) -> Vec<u8> {
        let Ok(mut event) = serde_json::from_slice::<Value>(line) else {
            return line.to_vec();
        };
        match event["type"].as_str() {
            Some("BOOKMARK") => event["object"]["apiVersion"] = desired.into(),
            Some("ADDED" | "MODIFIED" | "DELETED") => {
                match self.one(event["object"].take(), desired).await {
                    Ok(object) => event["object"] = object,
                    Err(err) => event = json!({"type": "ERROR", "object": err.to_status()}),
                }
            }
            _ => return line.to_vec(),
        }
        let mut out = serde_json::to_vec(&event).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

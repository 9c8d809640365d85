//! POST, PUT, PATCH and DELETE on resources and their status/scale subresources.

use axum::body::Body;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::read::{object_response, with_version};
use super::{Ctx, json_value};
use crate::filter::Filter;
use crate::gc::{self, DeleteOptions};
use crate::objects::{self, Part, WriteOptions, obj_key};
use crate::status::{ApiError, ApiResult};
use crate::store::ReadAt;
use crate::{apply, patch, protobuf, scale};

const BODY_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];

fn write_options(ctx: &Ctx) -> ApiResult<WriteOptions> {
    let dry_run = match ctx.query.get("dryRun") {
        None => false,
        Some("All") => true,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "unsupported dryRun value {v:?}: the only supported value is \"All\""
            )));
        }
    };
    let strict = match ctx.query.get("fieldValidation") {
        None | Some("Ignore" | "Warn") => false,
        Some("Strict") => true,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got {v:?}"
            )));
        }
    };
    Ok(WriteOptions { dry_run, strict })
}

/// Decodes a JSON (or YAML) request body into an object.
pub(crate) fn decode_body(ctx: &Ctx) -> ApiResult<Value> {
    let ct = ctx.content_type();
    let v: Value = match ct.as_str() {
        "" | "application/json" => {
            let v = serde_json::from_slice(&ctx.body).map_err(|e| {
                ApiError::bad_request(format!("the request body is not valid JSON: {e}"))
            })?;
            if write_options(ctx)?.strict {
                strict_json(ctx)?;
            }
            v
        }
        "application/yaml" => serde_yaml::from_slice(&ctx.body).map_err(|e| {
            ApiError::bad_request(format!("the request body is not valid YAML: {e}"))
        })?,
        protobuf::MEDIA_TYPE => decode_protobuf(ctx)?,
        other => return Err(ApiError::unsupported_media_type(other, BODY_TYPES)),
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(format!(
            "the request body must be a {} object, not {}",
            ctx.info.kind,
            kind_of(&v)
        )));
    }
    Ok(v)
}

/// `fieldValidation=Strict` on a JSON body: unknown and duplicate fields, in the order the body
/// has them, as Go's strict decoder reports them (duplicates are gone once parsed).
fn strict_json(ctx: &Ctx) -> ApiResult<()> {
    let (api_version, kind) = (ctx.info.api_version(), ctx.info.kind.as_str());
    let problems = protobuf::strict_problems(&api_version, kind, &ctx.body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))?;
    if problems.is_empty() {
        return Ok(());
    }
    Err(ApiError::strict_decoding(kind, &api_version, &problems))
}

/// A protobuf body: built-in kinds decode to their JSON; custom resources, which kube-apiserver
/// does not serve as protobuf either, get its 415.
fn decode_protobuf(ctx: &Ctx) -> ApiResult<Value> {
    if ctx.info.custom.is_some() {
        return Err(ApiError::unsupported_media_type(
            protobuf::MEDIA_TYPE,
            BODY_TYPES,
        ));
    }
    protobuf::decode(&ctx.body).map_err(|e| match e {
        protobuf::DecodeError::Invalid(why) => {
            ApiError::bad_request(format!("the protobuf request body is not valid: {why}"))
        }
        protobuf::DecodeError::UnknownKind { api_version, kind } => {
            ApiError::unsupported_media_type(
                &format!("{} ({api_version} {kind})", protobuf::MEDIA_TYPE),
                BODY_TYPES,
            )
        }
    })
}

pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn create(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let body = decode_body(ctx)?;
    let opts = write_options(ctx)?;
    let mut store = ctx.shared.store.lock();
    let stored = objects::create(&mut store, &ctx.info, ctx.namespace.as_deref(), body, &opts)?;
    drop(store);
    // 201 for a dry run too, as from kube-apiserver.
    Ok(object_response(&ctx.info, StatusCode::CREATED, &stored))
}

fn part(ctx: &Ctx) -> Part {
    match ctx.sub.as_deref() {
        Some("status") => Part::Status,
        Some("finalize") => Part::Finalize,
        _ => Part::Main,
    }
}

pub(crate) fn update(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let body = decode_body(ctx)?;
    let opts = write_options(ctx)?;
    let name = ctx.name.as_deref().unwrap_or_default();
    let mut store = ctx.shared.store.lock();
    if ctx.sub.as_deref() == Some("scale") {
        let scale_obj = scale::update(
            &mut store,
            &ctx.info,
            ctx.namespace.as_deref(),
            name,
            body,
            &opts,
        )?;
        return Ok(json_value(StatusCode::OK, &scale_obj));
    }
    let stored = objects::update(
        &mut store,
        &ctx.info,
        ctx.namespace.as_deref(),
        name,
        body,
        part(ctx),
        &opts,
    )?;
    Ok(object_response(&ctx.info, StatusCode::OK, &stored))
}

pub(crate) fn patch(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let ct = ctx.content_type();
    let kind = patch::PatchType::from_content_type(&ct)?;
    let opts = write_options(ctx)?;
    let name = ctx.name.as_deref().unwrap_or_default();
    let mut store = ctx.shared.store.lock();
    let key = obj_key(&ctx.info, ctx.namespace.as_deref(), name);
    let existing = store.get(&ctx.info.key(), &key);
    if kind == patch::PatchType::Apply {
        let manager = ctx.query.get("fieldManager").ok_or_else(|| {
            ApiError::invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                vec![crate::status::Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value: is required for apply patch".into(),
                    field: "fieldManager".into(),
                }],
            )
        })?;
        let force = ctx.query.flag("force")?;
        let applied = apply::parse(&ctx.body, opts.strict)?;
        apply::check_declared(&ctx.info, &applied)?;
        if ctx.sub.as_deref() == Some("scale") {
            return Err(ApiError::unsupported_media_type(
                &ct,
                &patch::PATCH_TYPES[..3],
            ));
        }
        let (stored, created) = apply::apply(
            &mut store,
            &ctx.info,
            ctx.namespace.as_deref(),
            name,
            existing,
            applied,
            manager,
            force,
            part(ctx),
            &opts,
        )?;
        let code = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        return Ok(object_response(&ctx.info, code, &stored));
    }
    let Some(existing) = existing else {
        return Err(ApiError::not_found(&ctx.info.group_resource(), name));
    };
    if ctx.sub.as_deref() == Some("scale") {
        let current = scale::to_scale(&ctx.info, &existing.value())?;
        let patched = patch::apply_patch(kind, &current, &ctx.body, "autoscaling/v1/Scale")?;
        let scale_obj = scale::update(
            &mut store,
            &ctx.info,
            ctx.namespace.as_deref(),
            name,
            patched,
            &opts,
        )?;
        return Ok(json_value(StatusCode::OK, &scale_obj));
    }
    if kind == patch::PatchType::Strategic && ctx.info.custom.is_some() {
        return Err(ApiError::unsupported_media_type(
            &ct,
            &[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
            ],
        ));
    }
    let current = with_version(&ctx.info, existing.value());
    let patched = patch::apply_patch(kind, &current, &ctx.body, &ctx.info.patch_kind())?;
    let stored = objects::update(
        &mut store,
        &ctx.info,
        ctx.namespace.as_deref(),
        name,
        patched,
        part(ctx),
        &opts,
    )?;
    Ok(object_response(&ctx.info, StatusCode::OK, &stored))
}

fn delete_options(ctx: &Ctx) -> ApiResult<DeleteOptions> {
    let body: Option<Value> = if ctx.body.iter().all(u8::is_ascii_whitespace) {
        None
    } else if ctx.content_type() == protobuf::MEDIA_TYPE {
        Some(decode_protobuf(ctx)?)
    } else {
        Some(serde_json::from_slice(&ctx.body).map_err(|e| {
            ApiError::bad_request(format!("the DeleteOptions body is not valid JSON: {e}"))
        })?)
    };
    DeleteOptions::parse(body.as_ref(), &ctx.query)
}

pub(crate) fn delete(ctx: &Ctx) -> ApiResult<Response<Body>> {
    if ctx.sub.is_some() {
        return Err(ApiError::method_not_allowed());
    }
    let opts = delete_options(ctx)?;
    let name = ctx.name.as_deref().unwrap_or_default();
    let key = obj_key(&ctx.info, ctx.namespace.as_deref(), name);
    let mut store = ctx.shared.store.lock();
    let stored = gc::delete(&mut store, &ctx.info, &key, &opts)?;
    let still_there = store.get(&ctx.info.key(), &key).is_some();
    drop(store);
    // The real server answers 202 Accepted while finalizers hold the object, 200 once it is gone.
    let code = if still_there && !opts.dry_run {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok(object_response(&ctx.info, code, &stored))
}

pub(crate) fn delete_collection(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let opts = delete_options(ctx)?;
    let filter = Filter::parse(&ctx.info, &ctx.query)?;
    let mut store = ctx.shared.store.lock();
    let items = store
        .list(
            &ctx.info.key(),
            ctx.namespace.as_deref(),
            ReadAt::Latest,
            None,
            None,
            |s| filter.is_everything() || filter.matches(s),
        )
        .map_err(|e| ApiError::too_old(e.asked, e.oldest))?
        .items;
    let keys: Vec<_> = items
        .iter()
        .map(|s| {
            let v = s.value();
            obj_key(
                &ctx.info,
                v["metadata"]["namespace"].as_str(),
                v["metadata"]["name"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let deleted = gc::delete_collection(&mut store, &ctx.info, keys, &opts)?;
    let rv = store.current_rv();
    drop(store);
    let items: Vec<Value> = deleted
        .iter()
        .map(|s| with_version(&ctx.info, s.value()))
        .collect();
    Ok(json_value(
        StatusCode::OK,
        &json!({"kind": ctx.info.list_kind(), "apiVersion": ctx.info.api_version(), "metadata": {"resourceVersion": rv.to_string()}, "items": items}),
    ))
}

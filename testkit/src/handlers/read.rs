//! GET of one object and LIST with selectors, pagination and resourceVersion semantics.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::{Ctx, json_bytes, json_value};
use crate::filter::Filter;
use crate::objects::obj_key;
use crate::status::{ApiError, ApiResult};
use crate::store::{ObjKey, ReadAt, Stored};
use crate::{scale, table};

pub(crate) fn get(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let name = ctx.name.as_deref().unwrap_or_default();
    let key = obj_key(&ctx.info, ctx.namespace.as_deref(), name);
    let obj = ctx.shared.store.lock().get(&ctx.info.key(), &key);
    let Some(obj) = obj else {
        return Err(ApiError::not_found(&ctx.info.group_resource(), name));
    };
    if ctx.sub.as_deref() == Some("scale") {
        return Ok(json_value(
            StatusCode::OK,
            &scale::to_scale(&ctx.info, &obj.value())?,
        ));
    }
    if ctx.wants_table() {
        let v = with_version(&ctx.info, obj.value());
        return Ok(json_value(
            StatusCode::OK,
            &table::table(&ctx.info, &[v], &obj.rv.to_string(), None, true),
        ));
    }
    Ok(object_response(&ctx.info, StatusCode::OK, &obj))
}

/// Serves a stored object. Objects are stored in their storage version; a request through
/// another served version of the same resource gets its apiVersion rewritten.
pub(crate) fn object_response(
    info: &crate::resources::ResourceInfo,
    code: StatusCode,
    obj: &Stored,
) -> Response<Body> {
    if crate::convert::served_as_stored(info, &obj.api_version) {
        json_bytes(code, obj.bytes.clone())
    } else {
        json_value(code, &with_version(info, obj.value()))
    }
}

pub(crate) fn with_version(info: &crate::resources::ResourceInfo, v: Value) -> Value {
    crate::convert::to_version(info, v)
}

/// The position of a paginated list: the resourceVersion of the first page and the last key served.
#[derive(Debug, PartialEq)]
pub(crate) struct ContinueToken {
    pub rv: u64,
    pub after: ObjKey,
}

impl ContinueToken {
    pub fn encode(&self) -> String {
        let raw =
            json!({"v": "meta.k8s.io/v1", "rv": self.rv, "ns": self.after.0, "name": self.after.1})
                .to_string();
        raw.bytes().map(|b| format!("{b:02x}")).collect()
    }

    pub fn decode(token: &str) -> ApiResult<ContinueToken> {
        let bad = || {
            ApiError::bad_request(format!(
                "continue key is not valid: {token:?}; use the continue value of the previous list response"
            ))
        };
        if !token.len().is_multiple_of(2) {
            return Err(bad());
        }
        let bytes: Option<Vec<u8>> = (0..token.len())
            .step_by(2)
            .map(|i| {
                token
                    .get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect();
        let v: Value = serde_json::from_slice(&bytes.ok_or_else(bad)?).map_err(|_| bad())?;
        Ok(ContinueToken {
            rv: v["rv"].as_u64().ok_or_else(bad)?,
            after: (
                v["ns"].as_str().ok_or_else(bad)?.to_string(),
                v["name"].as_str().ok_or_else(bad)?.to_string(),
            ),
        })
    }
}

const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// A 422 about ListOptions, as the real server validates them.
pub(crate) fn list_options_invalid(field: &str, reason: &str, message: &str) -> ApiError {
    ApiError::invalid(
        "meta.k8s.io",
        "ListOptions",
        "",
        vec![crate::status::Cause {
            reason: reason.into(),
            message: message.into(),
            field: field.into(),
        }],
    )
}

/// Where to read a list from, per `resourceVersion`, `resourceVersionMatch` and `continue`.
fn read_point(ctx: &Ctx, current: u64) -> ApiResult<(ReadAt, Option<ObjKey>)> {
    let q = &ctx.query;
    let rv = q.resource_version()?;
    let limit = q.uint("limit")?.filter(|l| *l > 0);
    if let Some(token) = q.get("continue") {
        if rv.is_some_and(|r| r != 0) {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let t = ContinueToken::decode(token)?;
        return Ok((ReadAt::Exact(t.rv), Some(t.after)));
    }
    let too_large = |r: u64| {
        let mut e = ApiError::new(
            504,
            "Timeout",
            format!("Too large resource version: {r}, current: {current}"),
        );
        e.details = Some(
            json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}),
        );
        e.retry_after = Some(1);
        e
    };
    match (q.get("resourceVersionMatch"), rv) {
        (Some(_), None) => Err(list_options_invalid(
            "resourceVersionMatch",
            "FieldValueForbidden",
            "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
        )),
        (Some("Exact"), Some(0)) => Err(list_options_invalid(
            "resourceVersionMatch",
            "FieldValueForbidden",
            "Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
        )),
        (Some("Exact"), Some(r)) if r > current => Err(too_large(r)),
        (Some("Exact"), Some(r)) => Ok((ReadAt::Exact(r), None)),
        (Some("NotOlderThan"), Some(r)) if r > current => Err(too_large(r)),
        (Some("NotOlderThan"), Some(_)) => Ok((ReadAt::Latest, None)),
        (Some(m), Some(_)) => Err(list_options_invalid(
            "resourceVersionMatch",
            "FieldValueNotSupported",
            &format!("Unsupported value: {m:?}: supported values: \"Exact\", \"NotOlderThan\""),
        )),
        (None, None | Some(0)) => Ok((ReadAt::Latest, None)),
        (None, Some(r)) if r > current => Err(too_large(r)),
        (None, Some(r)) if limit.is_some() => Ok((ReadAt::Exact(r), None)),
        (None, Some(_)) => Ok((ReadAt::Latest, None)),
    }
}

pub(crate) fn list(ctx: &Ctx) -> ApiResult<Response<Body>> {
    let filter = Filter::parse(&ctx.info, &ctx.query)?;
    let limit = ctx
        .query
        .uint("limit")?
        .filter(|l| *l > 0)
        .map(|l| l as usize);
    let store = ctx.shared.store.lock();
    let current = store.current_rv();
    let (at, after) = read_point(ctx, current)?;
    let page = store
        .list(
            &ctx.info.key(),
            ctx.namespace.as_deref(),
            at,
            after.as_ref(),
            limit,
            |s| filter.is_everything() || filter.matches(s),
        )
        .map_err(|e| {
            if after.is_some() {
                ApiError::expired(CONTINUE_EXPIRED)
            } else {
                ApiError::too_old(e.asked, e.oldest)
            }
        })?;
    drop(store);
    let list_rv = match at {
        ReadAt::Latest => current,
        ReadAt::Exact(r) => r,
    };
    let cont = page
        .next
        .map(|after| ContinueToken { rv: list_rv, after }.encode());
    // kube-apiserver counts the objects left only for lists without selectors.
    let remaining = (cont.is_some() && filter.is_everything()).then_some(page.remaining);
    let items = page.items;
    if ctx.wants_table() {
        let values: Vec<Value> = items
            .iter()
            .map(|s| with_version(&ctx.info, s.value()))
            .collect();
        return Ok(json_value(
            StatusCode::OK,
            &table::table(
                &ctx.info,
                &values,
                &list_rv.to_string(),
                cont.as_deref(),
                true,
            ),
        ));
    }
    Ok(list_body(&ctx.info, list_rv, cont, remaining, items))
}

/// Writes a list by concatenating stored bytes, without parsing objects.
fn list_body(
    info: &crate::resources::ResourceInfo,
    rv: u64,
    cont: Option<String>,
    remaining: Option<usize>,
    items: Vec<Arc<Stored>>,
) -> Response<Body> {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    if let Some(n) = remaining {
        meta["remainingItemCount"] = json!(n);
    }
    let head = format!(
        r#"{{"kind":"{}","apiVersion":"{}","metadata":{},"items":["#,
        info.list_kind(),
        info.api_version(),
        meta
    );
    // Items are copied into buffers of about 1 MiB: one write per buffer, not per object,
    // and a page of 500 objects goes out as one body with a Content-Length.
    const FLUSH_AT: usize = 1 << 20;
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut buf = BytesMut::with_capacity(
        FLUSH_AT.min(head.len() + items.iter().map(|s| s.bytes.len() + 1).sum::<usize>() + 2),
    );
    buf.extend_from_slice(head.as_bytes());
    for (i, s) in items.iter().enumerate() {
        if i > 0 {
            buf.extend_from_slice(b",");
        }
        if !crate::convert::served_as_stored(info, &s.api_version) {
            buf.extend_from_slice(
                &serde_json::to_vec(&with_version(info, s.value())).unwrap_or_default(),
            );
        } else {
            buf.extend_from_slice(&s.bytes);
        }
        if buf.len() >= FLUSH_AT {
            chunks.push(buf.split().freeze());
        }
    }
    buf.extend_from_slice(b"]}");
    chunks.push(buf.freeze());
    if chunks.len() == 1 {
        return json_bytes(StatusCode::OK, chunks.pop().unwrap_or_default());
    }
    let stream = futures::stream::iter(chunks.into_iter().map(Ok::<_, Infallible>));
    json_bytes(StatusCode::OK, Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = ContinueToken {
            rv: 42,
            after: ("default".into(), "pod-7".into()),
        };
        assert_eq!(ContinueToken::decode(&t.encode()).expect("round trip"), t);
        assert!(ContinueToken::decode("zz").is_err());
        assert!(ContinueToken::decode("abc").is_err());
    }
}

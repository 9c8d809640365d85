//! `ComponentStatus` (deprecated since 1.19, still served): the health of the control plane's
//! parts, computed on each read. kube-apiserver probes kube-scheduler, kube-controller-manager
//! and etcd; the embedded server runs neither of the first two (their conditions say so) and is
//! its own store (`etcd-0` is healthy while it answers).

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode};
use serde_json::{Value, json};

use super::{Ctx, json_value};
use crate::status::{ApiError, ApiResult};

/// The components, in kube-apiserver's order, with their health.
fn components() -> Vec<Value> {
    let status = |name: &str, healthy: bool, message: &str| {
        json!({"metadata": {"name": name}, "conditions": [{"type": "Healthy",
            "status": if healthy { "True" } else { "False" }, "message": message}]})
    };
    vec![
        status(
            "controller-manager",
            false,
            "the embedded API server runs no kube-controller-manager",
        ),
        status(
            "scheduler",
            false,
            "the embedded API server runs no kube-scheduler",
        ),
        status("etcd-0", true, "ok"),
    ]
}

/// Answers `get` and `list` of ComponentStatuses.
pub(crate) fn answer(ctx: &Ctx, verb: &str) -> ApiResult<Response<Body>> {
    let items: Vec<Value> = match (verb, ctx.name.as_deref()) {
        ("list", None) => components(),
        ("get", Some(name)) => vec![
            components()
                .into_iter()
                .find(|c| c["metadata"]["name"] == name)
                .ok_or_else(|| ApiError::not_found("componentstatus", name))?,
        ],
        _ => return Err(ApiError::method_not_allowed()),
    };
    let items: Vec<Value> = items
        .into_iter()
        .map(|mut c| {
            c["kind"] = json!("ComponentStatus");
            c["apiVersion"] = json!("v1");
            c
        })
        .collect();
    let answer = if ctx.wants_table() {
        crate::table::table(&ctx.info, &items, "", None, true)
    } else if ctx.name.is_some() {
        items[0].clone()
    } else {
        // List items carry no kind, as in kube-apiserver's list.
        json!({"kind": "ComponentStatusList", "apiVersion": "v1", "metadata": {}, "items": components()})
    };
    let mut response = json_value(StatusCode::OK, &answer);
    response.headers_mut().insert(
        "Warning",
        HeaderValue::from_static("299 - \"v1 ComponentStatus is deprecated in v1.19+\""),
    );
    Ok(response)
}

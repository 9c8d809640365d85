//! The create-only reviews (`TokenReview`, `SubjectAccessReview` and its local and self forms,
//! `SelfSubjectRulesReview`, `SelfSubjectReview`): answered from the request, never stored.
//!
//! The embedded server has no authentication or authorization: every request acts as one
//! all-powerful user. The reviews say so — every access is allowed, every rule granted, every
//! token accepted as that user — so operators that check access before acting (or that review
//! tokens) behave as they would for a cluster admin. Asking for a Table gets kube-apiserver's 406.

use axum::body::Body;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::write::decode_body;
use super::{Ctx, json_value};
use crate::status::{ApiError, ApiResult};

/// Who every request is, for the reviews that say.
pub(crate) fn user() -> Value {
    json!({"username": "kubeforge-admin", "groups": ["system:masters", "system:authenticated"]})
}

/// Answers a review: `create` only, with the review's `status` filled in.
pub(crate) fn answer(ctx: &Ctx, verb: &str) -> ApiResult<Response<Body>> {
    if verb != "create" || ctx.name.is_some() {
        return Err(ApiError::method_not_allowed());
    }
    if ctx.wants_table() {
        return Err(ApiError::new(
            406,
            "NotAcceptable",
            format!(
                "the resource {} does not support being converted to a Table",
                ctx.info.plural
            ),
        ));
    }
    let mut review = decode_body(ctx)?;
    let status = match ctx.info.kind.as_str() {
        "TokenReview" => {
            json!({"authenticated": true, "user": user(), "audiences": review["spec"]["audiences"]})
        }
        "SelfSubjectReview" => json!({"userInfo": user()}),
        "SelfSubjectRulesReview" => json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        }),
        _ => json!({"allowed": true, "reason": "the embedded API server allows every request"}),
    };
    if ctx.info.kind == "LocalSubjectAccessReview" {
        let namespace = ctx.namespace.as_deref().unwrap_or_default();
        let asked = review["spec"]["resourceAttributes"]["namespace"]
            .as_str()
            .unwrap_or(namespace);
        if asked != namespace {
            return Err(ApiError::bad_request(format!(
                "spec.resourceAttributes.namespace must match namespace: {namespace}"
            )));
        }
    }
    review["status"] = status; // a status the client sent is replaced, as by kube-apiserver
    review["apiVersion"] = json!(ctx.info.api_version());
    review["kind"] = json!(ctx.info.kind);
    if !review["metadata"].is_object() {
        review["metadata"] = json!({});
    }
    review["metadata"]["creationTimestamp"] = Value::Null;
    Ok(json_value(StatusCode::CREATED, &review))
}

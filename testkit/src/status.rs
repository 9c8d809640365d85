//! `kind: Status` errors shaped exactly as kube-apiserver sends them.

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode};
use serde_json::{Value, json};

/// One entry of `details.causes`: which field was wrong and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, … as in apimachinery's `field.ErrorType`.
    pub reason: String,
    pub message: String,
    /// Dotted field path, `metadata.name`.
    pub field: String,
}

/// An API error: becomes an HTTP response carrying a `Status` object.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
    /// Sent as the `Retry-After` header and `details.retryAfterSeconds`.
    pub retry_after: Option<u32>,
    /// Sent as the plain-text `404 page not found` of paths no API group serves, as the real
    /// server's fallback handler does, instead of a Status.
    pub plain: bool,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;

fn split_gr(group_resource: &str) -> (&str, &str) {
    match group_resource.split_once('.') {
        Some((r, g)) => (r, g),
        None => (group_resource, ""),
    }
}

fn name_details(group_resource: &str, name: &str) -> Value {
    let (resource, group) = split_gr(group_resource);
    let mut d = json!({ "name": name, "kind": resource });
    if !group.is_empty() {
        d["group"] = json!(group);
    }
    d
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
            plain: false,
        }
    }

    /// `pods "x" not found`.
    pub fn not_found(group_resource: &str, name: &str) -> Self {
        ApiError {
            details: Some(name_details(group_resource, name)),
            ..Self::new(
                404,
                "NotFound",
                format!("{group_resource} \"{name}\" not found"),
            )
        }
    }

    /// The reply to a path no resource is served at.
    /// The reply to a path outside every served group/version: plain text, as the real server.
    pub fn page_not_found() -> Self {
        ApiError {
            plain: true,
            ..Self::no_route()
        }
    }

    pub fn no_route() -> Self {
        ApiError {
            details: Some(json!({})),
            ..Self::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        }
    }

    pub fn already_exists(group_resource: &str, name: &str) -> Self {
        ApiError {
            details: Some(name_details(group_resource, name)),
            ..Self::new(
                409,
                "AlreadyExists",
                format!("{group_resource} \"{name}\" already exists"),
            )
        }
    }

    pub fn conflict(group_resource: &str, name: &str, why: &str) -> Self {
        ApiError {
            details: Some(name_details(group_resource, name)),
            ..Self::new(
                409,
                "Conflict",
                format!("Operation cannot be fulfilled on {group_resource} \"{name}\": {why}"),
            )
        }
    }

    /// The stale-resourceVersion conflict of an update.
    pub fn stale(group_resource: &str, name: &str) -> Self {
        Self::conflict(
            group_resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 with one cause per invalid field: `Pod "X" is invalid: metadata.name: Invalid value: …`.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let list: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let joined = if list.len() == 1 {
            list[0].clone()
        } else {
            format!("[{}]", list.join(", "))
        };
        let mut details = json!({
            "name": name,
            "kind": kind,
            "causes": causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect::<Vec<_>>(),
        });
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        ApiError {
            details: Some(details),
            ..Self::new(
                422,
                "Invalid",
                format!("{qualified} \"{name}\" is invalid: {joined}"),
            )
        }
    }

    /// `fieldValidation=Strict` refusing a body: `Deployment in version "v1" cannot be handled as
    /// a Deployment: strict decoding error: unknown field "spec.foo", duplicate field "spec.x"`.
    pub fn strict_decoding(kind: &str, api_version: &str, problems: &[String]) -> Self {
        let version = api_version.rsplit('/').next().unwrap_or(api_version);
        Self::bad_request(format!(
            "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: {}",
            problems.join(", ")
        ))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn method_not_allowed() -> Self {
        ApiError {
            details: Some(json!({})),
            ..Self::new(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        }
    }

    pub fn unsupported_media_type(content_type: &str, accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format ({content_type:?}) - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    /// 410 Expired: the resourceVersion or continue token is older than the history window.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn too_old(asked: u64, oldest: u64) -> Self {
        Self::expired(format!("too old resource version: {asked} ({oldest})"))
    }

    pub fn internal(message: impl Into<String>) -> Self {
        let m = message.into();
        ApiError {
            details: Some(json!({ "causes": [{ "message": m }] })),
            ..Self::new(
                500,
                "InternalError",
                format!("Internal error occurred: {m}"),
            )
        }
    }

    pub fn forbidden(group_resource: &str, name: &str, why: &str) -> Self {
        ApiError {
            details: Some(name_details(group_resource, name)),
            ..Self::new(
                403,
                "Forbidden",
                format!("{group_resource} \"{name}\" is forbidden: {why}"),
            )
        }
    }

    /// An injected or generic failure with the given HTTP status.
    pub fn from_code(code: u16, retry_after: Option<u32>) -> Self {
        let (reason, message) = match code {
            429 => (
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later",
            ),
            500 => (
                "InternalError",
                "an error on the server (\"injected fault\") has prevented the request from succeeding",
            ),
            503 => (
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
            504 => (
                "Timeout",
                "the server was unable to return a response in the time allotted, but may still be processing the request",
            ),
            409 => (
                "Conflict",
                "the server reported a conflict (injected fault)",
            ),
            410 => (
                "Expired",
                "the resource version is too old (injected fault)",
            ),
            404 => (
                "NotFound",
                "the server could not find the requested resource",
            ),
            400 => (
                "BadRequest",
                "the server rejected our request for an unknown reason (injected fault)",
            ),
            _ => ("InternalError", "injected fault"),
        };
        let details = retry_after.map(|s| json!({ "retryAfterSeconds": s }));
        ApiError {
            code,
            reason,
            message: message.to_string(),
            details,
            retry_after,
            plain: false,
        }
    }

    /// The Status object as JSON.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if self.reason.is_empty()
            && let Some(m) = s.as_object_mut()
        {
            // An error the server passes on from storage (etcd) has no reason.
            m.remove("reason");
        }
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }

    pub fn into_response(self) -> Response<Body> {
        if self.plain {
            let mut resp = Response::new(Body::from("404 page not found\n"));
            *resp.status_mut() = StatusCode::NOT_FOUND;
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            return resp;
        }
        let body = serde_json::to_vec(&self.to_status()).unwrap_or_default();
        let mut resp = Response::new(Body::from(body));
        *resp.status_mut() =
            StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(http::header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_names_group_and_resource_like_the_real_server() {
        let s = ApiError::not_found("deployments.apps", "web").to_status();
        assert_eq!(s["message"], "deployments.apps \"web\" not found");
        assert_eq!(
            s["details"],
            json!({"name": "web", "kind": "deployments", "group": "apps"})
        );
        assert_eq!(s["code"], 404);
    }

    #[test]
    fn invalid_lists_causes_with_field_paths() {
        let e = ApiError::invalid(
            "",
            "ConfigMap",
            "Bad",
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: "Invalid value: \"Bad\": x".into(),
                field: "metadata.name".into(),
            }],
        );
        let s = e.to_status();
        assert_eq!(
            s["message"],
            "ConfigMap \"Bad\" is invalid: metadata.name: Invalid value: \"Bad\": x"
        );
        assert_eq!(s["details"]["causes"][0]["field"], "metadata.name");
        assert_eq!(s["code"], 422);
    }
}

//! Admission reviews: decoding an `AdmissionReview` into the typed request a handler gets, and
//! turning the handler's [`Verdict`] into the review kube-apiserver reads back — allowed or denied
//! with a reason, warnings, and for mutating webhooks the JSON patch from the request's object to
//! the handler's.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use futures::FutureExt;
use kube::Resource;
use kube::core::Status;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// What an admission handler decides about one request.
///
/// Build it with [`Verdict::allow`] or [`Verdict::deny`]; add [warnings](Verdict::warn) shown
/// by kubectl, and — in a mutating webhook — the [changed object](Verdict::with_object), from
/// which the JSON patch is computed.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    allowed: bool,
    code: u16,
    reason: String,
    warnings: Vec<String>,
    object: Option<Result<Value, String>>,
}

impl Verdict {
    /// The request may go on.
    pub fn allow() -> Self {
        Self {
            allowed: true,
            code: 200,
            reason: String::new(),
            warnings: Vec::new(),
            object: None,
        }
    }

    /// The request is refused; `reason` is what the user sees (kubectl prints
    /// `admission webhook "<name>" denied the request: <reason>`). The HTTP code is 403.
    pub fn deny(reason: impl Into<String>) -> Self {
        Self {
            allowed: false,
            code: 403,
            reason: reason.into(),
            ..Self::allow()
        }
    }

    /// A refusal with another HTTP code (e.g. 422 for an invalid object).
    pub fn deny_with_code(code: u16, reason: impl Into<String>) -> Self {
        Self {
            code,
            ..Self::deny(reason)
        }
    }

    /// Adds a warning the client shows (kubectl prints `Warning: <text>`), allowed or not.
    pub fn warn(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }

    /// For mutating webhooks: the object as it should be stored. The runtime answers with the
    /// JSON patch from the request's object to this one, leaving fields the Rust type does not
    /// know untouched. Ignored by validating webhooks (kube-apiserver refuses their patches).
    pub fn with_object<K: Serialize>(mut self, object: &K) -> Self {
        self.object = Some(serde_json::to_value(object).map_err(|e| e.to_string()));
        self
    }

    /// Whether the request is allowed.
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }
}

/// A boxed future of a verdict.
pub(crate) type VerdictFuture = Pin<Box<dyn Future<Output = Verdict> + Send>>;

/// One admission endpoint: decodes reviews for kind `K` and runs the user's handler.
pub(crate) type Admit =
    Arc<dyn Fn(Value) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

/// An HTTP answer: the status code and the JSON body.
pub(crate) type Reply = (u16, Value);

/// The endpoint for handler `handler` of kind `K`; `mutating` decides whether the verdict's
/// object becomes a patch.
pub(crate) fn endpoint<K, F, Fut>(handler: F, mutating: bool) -> Admit
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Serialize + Clone + Send + Sync + 'static,
    F: Fn(AdmissionRequest<K>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Verdict> + Send + 'static,
{
    let handler = Arc::new(handler);
    Arc::new(move |body: Value| {
        let handler = handler.clone();
        Box::pin(async move {
            let call = |req: AdmissionRequest<K>| -> VerdictFuture { Box::pin(handler(req)) };
            review::<K>(body, call, mutating).await
        })
    })
}

/// The admission review versions kube-apiserver sends (`admissionReviewVersions`).
const REVIEW_VERSIONS: [&str; 2] = ["admission.k8s.io/v1", "admission.k8s.io/v1beta1"];

/// Checks that `body` is an AdmissionReview with a request; the 400 answer otherwise.
pub(crate) fn check_review(body: &Value) -> Result<(), String> {
    let api_version = body.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = body.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != "AdmissionReview" || !REVIEW_VERSIONS.contains(&api_version) {
        return Err(format!(
            "expected an AdmissionReview of {} or {}, got kind {kind:?} of apiVersion {api_version:?}",
            REVIEW_VERSIONS[0], REVIEW_VERSIONS[1]
        ));
    }
    if !body.get("request").is_some_and(Value::is_object) {
        return Err("the AdmissionReview has no request".to_owned());
    }
    Ok(())
}

async fn review<K>(
    body: Value,
    handler: impl FnOnce(AdmissionRequest<K>) -> VerdictFuture,
    mutating: bool,
) -> Reply
where
    K: Resource<DynamicType = ()> + DeserializeOwned + Serialize + Clone,
{
    if let Err(message) = check_review(&body) {
        return (400, serde_json::json!({ "message": message }));
    }
    let api_version = body["apiVersion"].clone();
    let uid = body["request"]["uid"].as_str().unwrap_or("").to_owned();
    let raw_object = body["request"]["object"].clone();
    let request = serde_json::from_value::<AdmissionReview<K>>(body)
        .map_err(|e| e.to_string())
        .and_then(|review| {
            TryInto::<AdmissionRequest<K>>::try_into(review).map_err(|_| "no request".to_owned())
        });
    let request = match request {
        Ok(request) => request,
        Err(err) => {
            let kind = K::kind(&()).into_owned();
            let message =
                format!("the webhook cannot decode the request's object as a {kind}: {err}");
            return (200, refusal(&api_version, &uid, 400, &message));
        }
    };
    let mut response = AdmissionResponse::from(&request);
    let typed = request.object.clone();
    let verdict = match AssertUnwindSafe(handler(request)).catch_unwind().await {
        Ok(verdict) => verdict,
        Err(panic) => {
            let what = panic_text(&panic);
            tracing::error!(kind = %K::kind(&()), panic = %what, "admission handler panicked");
            return (
                200,
                refusal(
                    &api_version,
                    &uid,
                    500,
                    &format!("the webhook's handler panicked: {what}"),
                ),
            );
        }
    };
    if !verdict.warnings.is_empty() {
        response.warnings = Some(verdict.warnings.clone());
    }
    if !verdict.allowed {
        response.allowed = false;
        response.result =
            Status::failure(&verdict.reason, reason_for(verdict.code)).with_code(verdict.code);
    } else if let (true, Some(changed)) = (mutating, verdict.object) {
        let patch = changed.and_then(|changed| patch(&raw_object, typed.as_ref(), &changed));
        match patch.and_then(|p| response.clone().with_patch(p).map_err(|e| e.to_string())) {
            Ok(patched) => response = patched,
            Err(err) => {
                let message = format!("the webhook could not compute the patch: {err}");
                return (200, refusal(&api_version, &uid, 500, &message));
            }
        }
    }
    // kube-core writes the patch as an array of numbers; Go reads []byte as base64 too, and
    // that is what controller-runtime sends.
    let patch = response.patch.take();
    let mut out = serde_json::to_value(response.into_review()).unwrap_or_default();
    if let Some(patch) = patch {
        use base64::Engine as _;
        out["response"]["patch"] = base64::engine::general_purpose::STANDARD
            .encode(patch)
            .into();
        out["response"]["patchType"] = "JSONPatch".into();
    }
    out["apiVersion"] = api_version;
    out["kind"] = "AdmissionReview".into();
    (200, out)
}

/// The JSON patch turning the request's `raw` object into `changed`.
///
/// The handler changed a typed copy, which lacks fields its Rust type does not declare: the
/// changes it made (typed original → changed) are replayed onto the raw object, so the patch
/// touches only those and never removes what the type did not know. Where they cannot be
/// replayed (e.g. a list reordered past the raw one), the patch is raw → changed, as
/// controller-runtime computes it.
fn patch<K: Serialize>(
    raw: &Value,
    typed: Option<&K>,
    changed: &Value,
) -> Result<json_patch::Patch, String> {
    let Some(typed) = typed else {
        return Err("a mutating webhook was called without an object (a DELETE?)".to_owned());
    };
    let typed = serde_json::to_value(typed).map_err(|e| e.to_string())?;
    let edits = json_patch::diff(&typed, changed);
    let mut replayed = raw.clone();
    let target = match json_patch::patch(&mut replayed, &as_upserts(edits)) {
        Ok(()) => &replayed,
        Err(_) => changed,
    };
    Ok(json_patch::diff(raw, target))
}

/// `replace` of an object member becomes `add` (which creates or replaces): a member the typed
/// copy serialized may be absent from the raw object.
fn as_upserts(patch: json_patch::Patch) -> json_patch::Patch {
    use json_patch::PatchOperation::{Add, Replace};
    json_patch::Patch(
        patch
            .0
            .into_iter()
            .map(|op| match op {
                Replace(r) if !last_is_index(&r.path) => Add(json_patch::AddOperation {
                    path: r.path,
                    value: r.value,
                }),
                other => other,
            })
            .collect(),
    )
}

fn last_is_index(path: &json_patch::jsonptr::Pointer) -> bool {
    path.last()
        .is_some_and(|token| token.decoded().parse::<usize>().is_ok())
}

/// A review refusing the request with `code` and `message`.
fn refusal(api_version: &Value, uid: &str, code: u16, message: &str) -> Value {
    serde_json::json!({
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "response": {
            "uid": uid,
            "allowed": false,
            "status": {"status": "Failure", "code": code, "reason": reason_for(code), "message": message},
        },
    })
}

/// The Status reason kube-apiserver uses for an HTTP code.
fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        422 => "Invalid",
        429 => "TooManyRequests",
        _ if code >= 500 => "InternalError",
        _ => "",
    }
}

/// The text of a caught panic.
pub(crate) fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Serialize)]
    struct Typed {
        spec: Spec,
    }
    #[derive(Serialize)]
    struct Spec {
        replicas: i32,
        mode: Option<String>,
    }

    /// The patch keeps what the Rust type does not know and creates members the raw object
    /// lacked.
    #[test]
    fn patches_touch_only_what_the_handler_changed() {
        let raw = json!({"spec": {"replicas": 1, "unknownToTheType": [1, 2]}});
        let typed = Typed {
            spec: Spec {
                replicas: 1,
                mode: None,
            },
        };
        let changed = json!({"spec": {"replicas": 3, "mode": "fast"}});
        let patch = patch(&raw, Some(&typed), &changed).unwrap();
        let mut out = raw.clone();
        json_patch::patch(&mut out, &patch).unwrap();
        assert_eq!(
            out,
            json!({"spec": {"replicas": 3, "mode": "fast", "unknownToTheType": [1, 2]}})
        );
    }

    #[test]
    fn reviews_that_are_not_admission_reviews_are_named() {
        let err = check_review(&json!({"apiVersion": "v1", "kind": "Pod"})).unwrap_err();
        assert!(err.contains("expected an AdmissionReview"), "{err}");
        let err =
            check_review(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}))
                .unwrap_err();
        assert!(err.contains("no request"), "{err}");
    }
}

//! Admission webhooks, called as kube-apiserver calls them: the `MutatingWebhookConfiguration`s
//! and `ValidatingWebhookConfiguration`s stored in the server select webhooks by their rules
//! (operations, groups, versions, resources and subresources, scope), `namespaceSelector` and
//! `objectSelector`; each selected webhook gets an `admission.k8s.io/v1` `AdmissionReview` over
//! HTTPS (`clientConfig.url`, trusting `caBundle`) within its `timeoutSeconds`.
//!
//! A write goes: the server's own processing as a dry run (defaults, the patch merged, schema
//! validation) → the mutating webhooks, each seeing the object as the previous one left it
//! (their JSON patches applied) → the result processed and validated again → the validating
//! webhooks → the write. A refusal is the request's answer with kube-apiserver's message
//! (`admission webhook "<name>" denied the request: <reason>`); a webhook that cannot be called
//! refuses the write (`failurePolicy: Fail`, the default, 500 `failed calling webhook`) or is
//! skipped (`Ignore`). Warnings become `Warning` headers. Deletes see the validating webhooks.
//!
//! What differs: a write a mutating webhook changed is stored as an update (PUT) of the
//! mutated object with the resourceVersion the dry run saw, so a concurrent change makes it a
//! 409 Conflict where kube-apiserver would retry; Service references (`clientConfig.service`)
//! cannot be reached from outside a cluster and count as failed calls; `matchPolicy:
//! Equivalent` does not route other versions of a resource to a webhook; webhooks are not
//! reinvoked (`reinvocationPolicy`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::resources::{ResourceInfo, ResourceKey};
use crate::selector::LabelSelector;
use crate::status::{ApiError, ApiResult};
use crate::store::Store;

/// One webhook of a configuration.
#[derive(Debug, Clone)]
pub(crate) struct Hook {
    name: String,
    url: Option<String>,
    ca_pem: Option<Vec<u8>>,
    rules: Vec<Value>,
    namespace_selector: Option<LabelSelector>,
    object_selector: Option<LabelSelector>,
    fail: bool,
    timeout: Duration,
}

/// What a write is, for matching webhooks.
#[derive(Debug)]
pub(crate) struct Attributes<'a> {
    pub operation: &'static str,
    pub info: &'a ResourceInfo,
    pub sub: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub object: Option<&'a Value>,
    pub old: Option<&'a Value>,
    pub dry_run: bool,
}

fn configurations() -> [(bool, ResourceKey); 2] {
    let key = |plural: &str| ResourceKey {
        group: "admissionregistration.k8s.io".into(),
        plural: plural.into(),
    };
    [
        (true, key("mutatingwebhookconfigurations")),
        (false, key("validatingwebhookconfigurations")),
    ]
}

/// Whether any webhook configuration exists (the common case of none costs nothing more).
pub(crate) fn any_configured(store: &Store) -> bool {
    configurations()
        .iter()
        .any(|(_, key)| !store.keys(key).is_empty())
}

/// The webhooks selecting this write: (mutating, validating), each in the order kube-apiserver
/// calls them (configurations by name, then their webhooks in order).
pub(crate) fn selected(store: &Store, attrs: &Attributes<'_>) -> (Vec<Hook>, Vec<Hook>) {
    let is_namespace = attrs.info.group.is_empty() && attrs.info.plural == "namespaces";
    // A Namespace is selected by its own labels (it may not exist yet); anything else in a
    // namespace by that namespace's.
    let own = is_namespace.then(|| labels_of(attrs.object.or(attrs.old)));
    let namespace_labels = own.unwrap_or_else(|| namespace_labels(store, attrs.namespace));
    let mut out = (Vec::new(), Vec::new());
    for (mutating, key) in configurations() {
        let mut names = store.keys(&key);
        names.sort();
        for name in names {
            let Some(config) = store.get(&key, &name) else {
                continue;
            };
            let config = config.value();
            for webhook in config["webhooks"].as_array().into_iter().flatten() {
                let hook = parse(webhook);
                if hook.selects(attrs, &namespace_labels) {
                    if mutating { &mut out.0 } else { &mut out.1 }.push(hook);
                }
            }
        }
    }
    out
}

/// The labels of namespace `ns` as stored.
fn namespace_labels(store: &Store, ns: Option<&str>) -> BTreeMap<String, String> {
    let key = ResourceKey {
        group: String::new(),
        plural: "namespaces".into(),
    };
    ns.and_then(|ns| store.get(&key, &(String::new(), ns.to_owned())))
        .map(|ns| labels_of(Some(&ns.value())))
        .unwrap_or_default()
}

fn labels_of(object: Option<&Value>) -> BTreeMap<String, String> {
    object
        .and_then(|o| o["metadata"]["labels"].as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn selector(v: &Value) -> Option<LabelSelector> {
    let parsed: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
        serde_json::from_value(v.clone()).ok()?;
    LabelSelector::from_label_selector(&parsed).ok()
}

fn parse(webhook: &Value) -> Hook {
    use base64::Engine as _;
    let client = &webhook["clientConfig"];
    Hook {
        name: webhook["name"].as_str().unwrap_or_default().to_owned(),
        url: client["url"].as_str().map(str::to_owned),
        ca_pem: client["caBundle"]
            .as_str()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok()),
        rules: webhook["rules"].as_array().cloned().unwrap_or_default(),
        namespace_selector: webhook.get("namespaceSelector").and_then(selector),
        object_selector: webhook.get("objectSelector").and_then(selector),
        fail: webhook["failurePolicy"].as_str() != Some("Ignore"),
        timeout: Duration::from_secs(
            webhook["timeoutSeconds"]
                .as_u64()
                .unwrap_or(10)
                .clamp(1, 30),
        ),
    }
}

/// Whether `list` (a rule's field) holds `wanted` or `*`.
fn holds(list: &Value, wanted: &str) -> bool {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .any(|v| v == "*" || v == wanted)
}

impl Hook {
    fn selects(&self, attrs: &Attributes<'_>, namespace_labels: &BTreeMap<String, String>) -> bool {
        let info = attrs.info;
        let resource = match attrs.sub {
            Some(sub) => format!("{}/{sub}", info.plural),
            None => info.plural.clone(),
        };
        let rule_matches = self.rules.iter().any(|rule| {
            let resource_ok = rule["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .any(|r| {
                    r == "*/*"
                        || r == resource
                        || (r == "*" && attrs.sub.is_none())
                        || r.strip_prefix("*/").is_some_and(|s| attrs.sub == Some(s))
                        || r.strip_suffix("/*")
                            .is_some_and(|p| p == info.plural && attrs.sub.is_some())
                });
            let scope_ok = match rule["scope"].as_str().unwrap_or("*") {
                "Namespaced" => info.namespaced,
                "Cluster" => !info.namespaced,
                _ => true,
            };
            holds(&rule["operations"], attrs.operation)
                && holds(&rule["apiGroups"], &info.group)
                && holds(&rule["apiVersions"], &info.version)
                && resource_ok
                && scope_ok
        });
        if !rule_matches {
            return false;
        }
        // A cluster-scoped object other than a Namespace is never excluded by namespaceSelector.
        let namespaced_or_namespace =
            info.namespaced || (info.group.is_empty() && info.plural == "namespaces");
        if let (Some(selector), true) = (&self.namespace_selector, namespaced_or_namespace)
            && !selector.matches(namespace_labels)
        {
            return false;
        }
        if let Some(selector) = &self.object_selector {
            let new = selector.matches(&labels_of(attrs.object));
            let old = attrs.old.is_some() && selector.matches(&labels_of(attrs.old));
            if !new && !old {
                return false;
            }
        }
        true
    }
}

/// What a webhook answered.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    /// The object with the webhook's patch applied (mutating webhooks that patched).
    pub patched: Option<Value>,
    pub warnings: Vec<String>,
}

/// Calls `hook` about `attrs`: its answer, or the error the write gets (a refusal, or a failed
/// call under `failurePolicy: Fail`). A failed call under `Ignore` answers nothing.
pub(crate) async fn call(hook: &Hook, attrs: &Attributes<'_>) -> ApiResult<Answer> {
    let review = review(attrs);
    let response = match post(hook, &review).await {
        Ok(response) => response,
        Err(err) if hook.fail => {
            return Err(ApiError::internal(format!(
                "Internal error occurred: failed calling webhook \"{}\": {err}",
                hook.name
            )));
        }
        Err(err) => {
            tracing::warn!(webhook = %hook.name, %err, "webhook call failed; ignored (failurePolicy Ignore)");
            return Ok(Answer::default());
        }
    };
    let answer = &response["response"];
    let warnings = answer["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str().map(str::to_owned))
        .collect();
    if answer["allowed"].as_bool() != Some(true) {
        return Err(denied(&hook.name, &answer["status"]));
    }
    let patched = match answer["patch"].as_str() {
        None => None,
        Some(patch) => Some(apply_patch(hook, attrs.object, patch)?),
    };
    Ok(Answer { patched, warnings })
}

/// kube-apiserver's refusal for a webhook's `status` (`webhookerrors.ToStatusErr`).
fn denied(name: &str, status: &Value) -> ApiError {
    let denied_by = format!("admission webhook \"{name}\" denied the request");
    let code = status["code"].as_u64().unwrap_or(0).max(400) as u16;
    let reason = status["reason"].as_str().unwrap_or_default();
    let message = match status["message"].as_str().filter(|m| !m.is_empty()) {
        Some(m) => format!("{denied_by}: {m}"),
        None if !reason.is_empty() => format!("{denied_by}: {reason}"),
        None => format!("{denied_by} without explanation"),
    };
    ApiError::new(code, known_reason(reason), message)
}

/// `reason` as one of the Status reasons kube-apiserver uses ("" for others).
fn known_reason(reason: &str) -> &'static str {
    [
        "BadRequest",
        "Unauthorized",
        "Forbidden",
        "NotFound",
        "AlreadyExists",
        "Conflict",
        "Invalid",
        "TooManyRequests",
        "InternalError",
        "ServiceUnavailable",
    ]
    .into_iter()
    .find(|known| *known == reason)
    .unwrap_or("")
}

fn apply_patch(hook: &Hook, object: Option<&Value>, patch: &str) -> ApiResult<Value> {
    use base64::Engine as _;
    let fail = |what: String| {
        ApiError::internal(format!(
            "Internal error occurred: admission webhook \"{}\" returned an invalid patch: {what}",
            hook.name
        ))
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(patch)
        .map_err(|e| fail(e.to_string()))?;
    let ops: json_patch::Patch = serde_json::from_slice(&bytes).map_err(|e| fail(e.to_string()))?;
    let mut object = object.cloned().unwrap_or(Value::Null);
    json_patch::patch(&mut object, &ops).map_err(|e| fail(e.to_string()))?;
    Ok(object)
}

fn review(attrs: &Attributes<'_>) -> Value {
    let info = attrs.info;
    let options_kind = match attrs.operation {
        "CREATE" => "CreateOptions",
        "DELETE" => "DeleteOptions",
        _ => "UpdateOptions",
    };
    let mut request = json!({
        "uid": uuid::Uuid::new_v4().to_string(),
        "kind": {"group": info.group, "version": info.version, "kind": info.kind},
        "resource": {"group": info.group, "version": info.version, "resource": info.plural},
        "requestKind": {"group": info.group, "version": info.version, "kind": info.kind},
        "requestResource": {"group": info.group, "version": info.version, "resource": info.plural},
        "name": attrs.name,
        "operation": attrs.operation,
        "userInfo": crate::handlers::review::user(),
        "object": attrs.object,
        "oldObject": attrs.old,
        "dryRun": attrs.dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": options_kind},
    });
    if let Some(ns) = attrs.namespace {
        request["namespace"] = ns.into();
    }
    if let Some(sub) = attrs.sub {
        request["subResource"] = sub.into();
        request["requestSubResource"] = sub.into();
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

/// POSTs `review` to the webhook over HTTPS: the AdmissionReview it answered.
async fn post(hook: &Hook, review: &Value) -> Result<Value, String> {
    crate::webhook_call::post(
        hook.url.as_deref(),
        hook.ca_pem.as_deref(),
        hook.timeout,
        review,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    fn attrs<'a>(
        info: &'a ResourceInfo,
        sub: Option<&'a str>,
        object: &'a Value,
    ) -> Attributes<'a> {
        Attributes {
            operation: "CREATE",
            info,
            sub,
            namespace: Some("team-a"),
            name: "x",
            object: Some(object),
            old: None,
            dry_run: false,
        }
    }

    fn hook(webhook: Value) -> Hook {
        parse(&webhook)
    }

    /// Rules match by operation, group, version, resource (wildcards and subresources) and
    /// scope; selectors by the namespace's and the object's labels.
    #[test]
    fn webhooks_select_writes_as_kube_apiserver_does() {
        let registry = Registry::default();
        let cms = registry.get("", "v1", "configmaps").unwrap();
        let deployments = registry.get("apps", "v1", "deployments").unwrap();
        let object = json!({"metadata": {"labels": {"app": "web"}}});
        let team_a: BTreeMap<String, String> = [("team".to_owned(), "a".to_owned())].into();
        let rule = |resources: Value, scope: &str| {
            hook(
                json!({"name": "h", "rules": [{"operations": ["CREATE"], "apiGroups": ["", "apps"], "apiVersions": ["*"], "resources": resources, "scope": scope}]}),
            )
        };
        assert!(rule(json!(["configmaps"]), "*").selects(&attrs(&cms, None, &object), &team_a));
        assert!(
            !rule(json!(["configmaps"]), "*")
                .selects(&attrs(&cms, Some("status"), &object), &team_a)
        );
        assert!(
            rule(json!(["configmaps/status"]), "*")
                .selects(&attrs(&cms, Some("status"), &object), &team_a)
        );
        assert!(
            rule(json!(["*"]), "Namespaced").selects(&attrs(&deployments, None, &object), &team_a)
        );
        assert!(
            !rule(json!(["*"]), "Namespaced")
                .selects(&attrs(&deployments, Some("scale"), &object), &team_a)
        );
        assert!(
            rule(json!(["*/*"]), "*")
                .selects(&attrs(&deployments, Some("scale"), &object), &team_a)
        );
        assert!(!rule(json!(["*"]), "Cluster").selects(&attrs(&cms, None, &object), &team_a));
        let update_only = hook(
            json!({"name": "h", "rules": [{"operations": ["UPDATE"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}]}),
        );
        assert!(!update_only.selects(&attrs(&cms, None, &object), &team_a));

        let selected = |selectors: Value| {
            let mut webhook = json!({"name": "h", "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]}]});
            for (k, v) in selectors.as_object().unwrap() {
                webhook[k] = v.clone();
            }
            hook(webhook).selects(&attrs(&cms, None, &object), &team_a)
        };
        assert!(selected(
            json!({"namespaceSelector": {"matchLabels": {"team": "a"}}})
        ));
        assert!(!selected(
            json!({"namespaceSelector": {"matchLabels": {"team": "b"}}})
        ));
        assert!(selected(
            json!({"objectSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}})
        ));
        assert!(!selected(
            json!({"objectSelector": {"matchLabels": {"app": "db"}}})
        ));
    }

    /// A refusal reads as kube-apiserver's, with at least a 400.
    #[test]
    fn refusals_carry_kube_apiservers_message() {
        let err = denied("v.example.com", &json!({"code": 403, "message": "no"}));
        assert_eq!(
            (err.code, err.message.as_str()),
            (
                403,
                "admission webhook \"v.example.com\" denied the request: no"
            )
        );
        let err = denied("v.example.com", &json!({"code": 200}));
        assert_eq!(
            (err.code, err.message.as_str()),
            (
                400,
                "admission webhook \"v.example.com\" denied the request without explanation"
            )
        );
    }
}

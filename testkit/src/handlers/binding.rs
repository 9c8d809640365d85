//! `Binding` (`POST …/bindings` and `…/pods/{name}/binding`): how a scheduler places a Pod. The
//! Pod gets the target Node as `spec.nodeName`, the Binding's annotations, and a `PodScheduled`
//! condition, as kube-apiserver's binding storage does; a Pod already placed is a 409. The Pod
//! is written twice (spec, then status), so a watcher sees two events where kube-apiserver
//! sends one.

use axum::body::Body;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::write::decode_body;
use super::{Ctx, json_value};
use crate::objects::{self, Part, WriteOptions, obj_key};
use crate::status::{ApiError, ApiResult};

/// Answers a Binding: `create` only.
pub(crate) fn answer(ctx: &Ctx, verb: &str) -> ApiResult<Response<Body>> {
    let through_pod = ctx.sub.as_deref() == Some("binding");
    if verb != "create" || (ctx.name.is_some() && !through_pod) {
        return Err(ApiError::method_not_allowed());
    }
    let binding = decode_body(ctx)?;
    let name = binding["metadata"]["name"].as_str().unwrap_or_default();
    if through_pod && ctx.name.as_deref() != Some(name) {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Binding object",
        ));
    }
    let target = &binding["target"];
    let mut causes = Vec::new();
    let kind = target["kind"].as_str().unwrap_or_default();
    if !kind.is_empty() && kind != "Node" {
        causes.push(format!(
            "target.kind: Unsupported value: {kind:?}: supported values: \"Node\", \"<empty>\""
        ));
    }
    let node = target["name"].as_str().unwrap_or_default();
    if node.is_empty() {
        causes.push("target.name: Required value".into());
    }
    if !causes.is_empty() {
        // kube-apiserver answers these with a 500 and the list of field errors.
        return Err(ApiError::new(500, "", format!("[{}]", causes.join(", "))));
    }
    let namespace = ctx.namespace.as_deref().unwrap_or_default();
    let mut store = ctx.shared.store.lock();
    let pods = store
        .registry
        .get("", "v1", "pods")
        .ok_or_else(|| ApiError::internal("the pods resource is not registered"))?;
    let key = obj_key(&pods, Some(namespace), name);
    let pod = store
        .get(&pods.key(), &key)
        .ok_or_else(|| ApiError::not_found("pods", name))?
        .value();
    if pod["metadata"]["deletionTimestamp"].is_string() {
        return Err(ApiError::internal(format!(
            "pod {name} is being deleted, cannot be assigned to a host"
        )));
    }
    if let Some(assigned) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        return Err(ApiError::conflict(
            "pods/binding",
            name,
            &format!("pod {name} is already assigned to node {assigned:?}"),
        ));
    }
    let opts = WriteOptions {
        dry_run: ctx.query.get("dryRun") == Some("All"),
        strict: false,
    };
    let mut placed = pod;
    placed["spec"]["nodeName"] = json!(node);
    if let Some(annotations) = binding["metadata"]["annotations"].as_object() {
        let own = placed["metadata"]
            .as_object_mut()
            .map(|m| m.entry("annotations").or_insert_with(|| json!({})));
        if let Some(Value::Object(own)) = own {
            own.extend(annotations.clone());
        }
    }
    let stored = objects::update(
        &mut store,
        &pods,
        Some(namespace),
        name,
        placed,
        Part::Main,
        &opts,
    )?;
    let mut scheduled = stored.value();
    set_scheduled(&mut scheduled);
    objects::update(
        &mut store,
        &pods,
        Some(namespace),
        name,
        scheduled,
        Part::Status,
        &opts,
    )?;
    Ok(json_value(
        StatusCode::CREATED,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

/// Sets the `PodScheduled` condition to True (replacing one there).
fn set_scheduled(pod: &mut Value) {
    let condition = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null,
        "lastTransitionTime": objects::now()});
    let conditions = &mut pod["status"]["conditions"];
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    if let Some(list) = conditions.as_array_mut() {
        list.retain(|c| c["type"] != "PodScheduled");
        list.push(condition);
    }
}

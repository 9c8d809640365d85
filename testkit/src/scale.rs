//! The scale subresource: an autoscaling/v1 `Scale` view of a workload's replica count.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::objects::{self, Part, WriteOptions, obj_key};
use crate::resources::ResourceInfo;
use crate::selector::LabelSelector;
use crate::status::{ApiError, ApiResult, Cause};
use crate::store::Store;

fn segments(path: &str) -> Vec<&str> {
    path.trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
        .collect()
}

fn read<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    segments(path)
        .into_iter()
        .try_fold(obj, |cur, seg| cur.get(seg))
}

fn write(obj: &mut Value, path: &str, value: Value) {
    let segs = segments(path);
    let Some((last, parents)) = segs.split_last() else {
        return;
    };
    let mut cur = obj;
    for seg in parents {
        if !cur[*seg].is_object() {
            cur[*seg] = json!({});
        }
        cur = &mut cur[*seg];
    }
    cur[*last] = value;
}

/// The Scale object for `obj`.
pub fn to_scale(info: &ResourceInfo, obj: &Value) -> ApiResult<Value> {
    let paths = info.scale.as_ref().ok_or_else(ApiError::no_route)?;
    let builtin = info.custom.is_none();
    let spec_replicas = read(obj, &paths.spec_replicas)
        .and_then(Value::as_i64)
        .unwrap_or(if builtin { 1 } else { 0 });
    let status_replicas = read(obj, &paths.status_replicas)
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let selector = match &paths.label_selector {
        Some(p) => read(obj, p).and_then(Value::as_str).map(str::to_string),
        // A ReplicationController's selector is a plain label map.
        None if builtin && info.kind == "ReplicationController" => {
            obj["spec"]["selector"].as_object().map(|labels| {
                let mut pairs: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect();
                pairs.sort();
                pairs.join(",")
            })
        }
        None if builtin => serde_json::from_value(obj["spec"]["selector"].clone())
            .ok()
            .and_then(|s| LabelSelector::from_label_selector(&s).ok())
            .map(|s| s.to_string()),
        None => None,
    };
    let m = &obj["metadata"];
    let mut status = json!({"replicas": status_replicas});
    if let Some(s) = selector {
        status["selector"] = json!(s);
    }
    let mut meta = json!({
        "name": m["name"],
        "uid": m["uid"],
        "resourceVersion": m["resourceVersion"],
        "creationTimestamp": m["creationTimestamp"],
    });
    if let Some(ns) = m["namespace"].as_str() {
        meta["namespace"] = json!(ns);
    }
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": meta,
        "spec": {"replicas": spec_replicas},
        "status": status,
    }))
}

/// Writes `scale.spec.replicas` to the object and returns the new Scale.
pub fn update(
    store: &mut Store,
    info: &Arc<ResourceInfo>,
    namespace: Option<&str>,
    name: &str,
    scale: Value,
    opts: &WriteOptions,
) -> ApiResult<Value> {
    let paths = info.scale.clone().ok_or_else(ApiError::no_route)?;
    let key = obj_key(info, namespace, name);
    let existing = store
        .get(&info.key(), &key)
        .ok_or_else(|| ApiError::not_found(&info.group_resource(), name))?;
    let invalid = |message: String| {
        ApiError::invalid(
            "autoscaling",
            "Scale",
            name,
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message,
                field: "spec.replicas".into(),
            }],
        )
    };
    let replicas = match &scale["spec"]["replicas"] {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| invalid(format!("Invalid value: {n}: must be an integer")))?,
        Value::Null => 0,
        other => {
            return Err(invalid(format!(
                "Invalid value: {other}: must be an integer"
            )));
        }
    };
    if replicas < 0 {
        return Err(invalid(format!(
            "Invalid value: {replicas}: must be greater than or equal to 0"
        )));
    }
    if let Some(rv) = scale["metadata"]["resourceVersion"]
        .as_str()
        .filter(|r| !r.is_empty())
        && rv != existing.rv.to_string()
    {
        return Err(ApiError::stale(&info.group_resource(), name));
    }
    let mut obj = existing.value();
    write(&mut obj, &paths.spec_replicas, json!(replicas));
    obj["metadata"]["resourceVersion"] = json!(existing.rv.to_string());
    let stored = objects::update(store, info, namespace, name, obj, Part::Main, opts)?;
    to_scale(info, &stored.value())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_scale_reads_replicas_and_selector() {
        let info = crate::resources::Registry::default()
            .get("apps", "v1", "deployments")
            .expect("deployments");
        let d = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}}, "status": {"replicas": 2}});
        let s = to_scale(&info, &d).expect("scale");
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"], json!({"replicas": 2, "selector": "app=web"}));
    }

    #[test]
    fn write_creates_missing_parents() {
        let mut v = json!({});
        write(&mut v, ".spec.size", json!(4));
        assert_eq!(v, json!({"spec": {"size": 4}}));
    }
}

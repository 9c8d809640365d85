//! HorizontalPodAutoscaler between `autoscaling/v2` and `autoscaling/v1`, as kube-apiserver
//! converts it (`pkg/apis/autoscaling/v1/conversion.go`): v1 has only a CPU utilization target,
//! so every other metric, the behavior, the current metrics and the conditions travel in v1's
//! `autoscaling.alpha.kubernetes.io/*` annotations (metrics in v1's own `MetricSpec` form) and
//! come back from them, so an object read and written through v1 loses nothing.

use serde_json::{Map, Value, json};

const METRICS: &str = "autoscaling.alpha.kubernetes.io/metrics";
const CURRENT_METRICS: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";

/// For each metric source type, its v1 field ↔ its v2 field (dotted), in a spec's metrics.
const SPEC_FIELDS: &[(&str, &[(&str, &str)])] = &[
    (
        "object",
        &[
            ("target", "describedObject"),
            ("metricName", "metric.name"),
            ("selector", "metric.selector"),
            ("targetValue", "target.value"),
            ("averageValue", "target.averageValue"),
        ],
    ),
    (
        "pods",
        &[
            ("metricName", "metric.name"),
            ("selector", "metric.selector"),
            ("targetAverageValue", "target.averageValue"),
        ],
    ),
    (
        "resource",
        &[
            ("name", "name"),
            ("targetAverageUtilization", "target.averageUtilization"),
            ("targetAverageValue", "target.averageValue"),
        ],
    ),
    (
        "containerResource",
        &[
            ("name", "name"),
            ("container", "container"),
            ("targetAverageUtilization", "target.averageUtilization"),
            ("targetAverageValue", "target.averageValue"),
        ],
    ),
    (
        "external",
        &[
            ("metricName", "metric.name"),
            ("metricSelector", "metric.selector"),
            ("targetValue", "target.value"),
            ("targetAverageValue", "target.averageValue"),
        ],
    ),
];

/// The same for a status's current metrics.
const STATUS_FIELDS: &[(&str, &[(&str, &str)])] = &[
    (
        "object",
        &[
            ("target", "describedObject"),
            ("metricName", "metric.name"),
            ("selector", "metric.selector"),
            ("currentValue", "current.value"),
            ("averageValue", "current.averageValue"),
        ],
    ),
    (
        "pods",
        &[
            ("metricName", "metric.name"),
            ("selector", "metric.selector"),
            ("currentAverageValue", "current.averageValue"),
        ],
    ),
    (
        "resource",
        &[
            ("name", "name"),
            ("currentAverageUtilization", "current.averageUtilization"),
            ("currentAverageValue", "current.averageValue"),
        ],
    ),
    (
        "containerResource",
        &[
            ("name", "name"),
            ("container", "container"),
            ("currentAverageUtilization", "current.averageUtilization"),
            ("currentAverageValue", "current.averageValue"),
        ],
    ),
    (
        "external",
        &[
            ("metricName", "metric.name"),
            ("metricSelector", "metric.selector"),
            ("currentValue", "current.value"),
            ("currentAverageValue", "current.averageValue"),
        ],
    ),
];

/// The fields v1 and v2 share, in spec and status.
const SPEC_COMMON: &[&str] = &["scaleTargetRef", "minReplicas", "maxReplicas"];
const STATUS_COMMON: &[&str] = &[
    "observedGeneration",
    "lastScaleTime",
    "currentReplicas",
    "desiredReplicas",
];

/// One side of the CPU split: a spec's target or a status's current value.
struct Side {
    /// `spec.metrics` or `status.currentMetrics` in v2.
    list: &'static str,
    /// `target` or `current` in a v2 resource metric.
    value: &'static str,
    /// v1's CPU field.
    cpu_field: &'static str,
    fields: &'static [(&'static str, &'static [(&'static str, &'static str)])],
}

const SPEC: Side = Side {
    list: "metrics",
    value: "target",
    cpu_field: "targetCPUUtilizationPercentage",
    fields: SPEC_FIELDS,
};
const STATUS: Side = Side {
    list: "currentMetrics",
    value: "current",
    cpu_field: "currentCPUUtilizationPercentage",
    fields: STATUS_FIELDS,
};

impl Side {
    /// A v2 spec or status as v1's: the shared fields, the first CPU utilization in v1's field,
    /// and the other metrics (in v1's form) returned for the annotation.
    fn to_v1(&self, v2: &Value, common: &[&str]) -> (Map<String, Value>, Vec<Value>) {
        let mut v1 = Map::new();
        for key in common {
            copy(v2, key, &mut v1, key);
        }
        let mut others = Vec::new();
        for m in v2[self.list].as_array().into_iter().flatten() {
            let resource = &m["resource"];
            let cpu = m["type"] == "Resource"
                && resource["name"] == "cpu"
                && (self.value == "current" || resource[self.value]["type"] == "Utilization");
            if cpu && !v1.contains_key(self.cpu_field) {
                v1.insert(
                    self.cpu_field.into(),
                    resource[self.value]["averageUtilization"].clone(),
                );
            } else {
                others.push(metric(m, self.fields, false));
            }
        }
        (v1, others)
    }

    /// A v1 spec or status as v2's, with the metrics kept in the annotation: those first, then
    /// the CPU utilization, in kube-apiserver's order.
    fn to_v2(&self, v1: &Value, common: &[&str], others: &[Value]) -> Map<String, Value> {
        let mut v2 = Map::new();
        for key in common {
            copy(v1, key, &mut v2, key);
        }
        let mut metrics: Vec<Value> = others
            .iter()
            .map(|m| metric(m, self.fields, true))
            .collect();
        if let Some(cpu) = v1.get(self.cpu_field).filter(|v| !v.is_null()) {
            let mut value = json!({"averageUtilization": cpu});
            if self.value == "target" {
                value["type"] = json!("Utilization");
            }
            metrics
                .push(json!({"type": "Resource", "resource": {"name": "cpu", self.value: value}}));
        }
        if !metrics.is_empty() {
            v2.insert(self.list.into(), Value::Array(metrics));
        }
        v2
    }
}

/// A v2 HPA as v1 serves it.
pub fn to_v1(mut obj: Value) -> Value {
    let (spec, status) = (obj["spec"].take(), obj["status"].take());
    let (v1_spec, others) = SPEC.to_v1(&spec, SPEC_COMMON);
    let (v1_status, current) = STATUS.to_v1(&status, STATUS_COMMON);
    let mut annotations = Map::new();
    annotate(&mut annotations, METRICS, others);
    if spec.get("behavior").is_some_and(|b| !b.is_null()) {
        annotations.insert(BEHAVIOR.into(), json!(spec["behavior"].to_string()));
    }
    annotate(&mut annotations, CURRENT_METRICS, current);
    let conditions = status["conditions"].as_array().cloned().unwrap_or_default();
    annotate(&mut annotations, CONDITIONS, conditions);
    if !annotations.is_empty()
        && let Some(meta) = obj["metadata"].as_object_mut()
        && let Some(existing) = meta
            .entry("annotations")
            .or_insert_with(|| json!({}))
            .as_object_mut()
    {
        existing.extend(annotations);
    }
    obj["spec"] = Value::Object(v1_spec);
    obj["status"] = Value::Object(v1_status);
    obj
}

/// A v1 HPA as v2 serves it.
pub fn to_v2(mut obj: Value) -> Value {
    let (spec, status) = (obj["spec"].take(), obj["status"].take());
    let mut taken = |key: &str| -> Vec<Value> {
        let text = obj["metadata"]["annotations"]
            .as_object_mut()
            .and_then(|a| a.remove(key));
        text.and_then(|t| serde_json::from_str(t.as_str()?).ok())
            .map(|v: Value| match v {
                Value::Array(items) => items,
                other => vec![other],
            })
            .unwrap_or_default()
    };
    let (others, current, conditions, behavior) = (
        taken(METRICS),
        taken(CURRENT_METRICS),
        taken(CONDITIONS),
        taken(BEHAVIOR),
    );
    if obj["metadata"]["annotations"]
        .as_object()
        .is_some_and(Map::is_empty)
        && let Some(meta) = obj["metadata"].as_object_mut()
    {
        meta.remove("annotations");
    }
    let mut v2_spec = SPEC.to_v2(&spec, SPEC_COMMON, &others);
    if let Some(b) = behavior.into_iter().next() {
        v2_spec.insert("behavior".into(), b);
    }
    let mut v2_status = STATUS.to_v2(&status, STATUS_COMMON, &current);
    if !conditions.is_empty() {
        v2_status.insert("conditions".into(), Value::Array(conditions));
    }
    obj["spec"] = Value::Object(v2_spec);
    obj["status"] = Value::Object(v2_status);
    obj
}

/// One metric (spec or status) converted with `fields`: to v2 when `to_v2`, else to v1.
fn metric(m: &Value, fields: &[(&str, &[(&str, &str)])], to_v2: bool) -> Value {
    let mut out = json!({"type": m["type"]});
    for (source, pairs) in fields {
        let Some(from) = m.get(*source).filter(|v| v.is_object()) else {
            continue;
        };
        let mut to = json!({});
        for (v1, v2) in *pairs {
            let (src, dst) = if to_v2 { (v1, v2) } else { (v2, v1) };
            if let Some(v) = get(from, src).filter(|v| !v.is_null()) {
                set(&mut to, dst, v.clone());
            }
        }
        if to_v2 && fields == SPEC_FIELDS {
            to["target"]["type"] = json!(target_type(source, &to["target"]));
        }
        out[*source] = to;
    }
    out
}

/// The v2 target type a v1 metric's targets imply.
fn target_type(source: &str, target: &Value) -> &'static str {
    match source {
        "resource" | "containerResource" if target.get("averageUtilization").is_some() => {
            "Utilization"
        }
        "object" | "external" if target.get("value").is_some() => "Value",
        _ => "AverageValue",
    }
}

fn get<'v>(v: &'v Value, dotted: &str) -> Option<&'v Value> {
    dotted.split('.').try_fold(v, |v, k| v.get(k))
}

fn set(v: &mut Value, dotted: &str, value: Value) {
    let mut at = v;
    let mut parts = dotted.split('.').peekable();
    while let Some(k) = parts.next() {
        if parts.peek().is_none() {
            at[k] = value;
            return;
        }
        if !at[k].is_object() {
            at[k] = json!({});
        }
        at = &mut at[k];
    }
}

fn copy(from: &Value, key: &str, to: &mut Map<String, Value>, as_key: &str) {
    if let Some(v) = from.get(key).filter(|v| !v.is_null()) {
        to.insert(as_key.into(), v.clone());
    }
}

/// A list kept in an annotation as JSON text, when it has anything.
fn annotate(annotations: &mut Map<String, Value>, key: &str, items: Vec<Value>) {
    if !items.is_empty() {
        annotations.insert(key.into(), json!(Value::Array(items).to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2() -> Value {
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "annotations": {"team": "a"}},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 10,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "100"}}},
                    {"type": "External", "external": {"metric": {"name": "queue", "selector": {"matchLabels": {"q": "a"}}}, "target": {"type": "Value", "value": "30"}}},
                ],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
            },
            "status": {"currentReplicas": 2, "desiredReplicas": 3,
                "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 70}}}],
                "conditions": [{"type": "AbleToScale", "status": "True"}]},
        })
    }

    #[test]
    fn v2_objects_read_through_v1_and_back_lose_nothing() {
        let v1 = to_v1(v2());
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);
        assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 70);
        assert!(v1["spec"].get("metrics").is_none());
        let metrics: Value =
            serde_json::from_str(v1["metadata"]["annotations"][METRICS].as_str().unwrap()).unwrap();
        assert_eq!(
            metrics[0],
            json!({"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "100"}})
        );
        assert_eq!(
            metrics[1],
            json!({"type": "External", "external": {"metricName": "queue", "metricSelector": {"matchLabels": {"q": "a"}}, "targetValue": "30"}})
        );
        let mut back = to_v2(v1);
        back["apiVersion"] = json!("autoscaling/v2");
        // The CPU target comes back last, as from kube-apiserver.
        let mut want = v2();
        want["spec"]["metrics"]
            .as_array_mut()
            .unwrap()
            .rotate_left(1);
        assert_eq!(back, want);
    }
}

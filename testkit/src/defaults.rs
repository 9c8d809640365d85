//! Defaulting of built-in kinds: the fields kube-apiserver fills in on every write (its
//! `SetDefaults_*` functions) that controllers most often read back — replica counts,
//! rollout strategies, Pod restart and DNS policy, container pull policy, Service type and
//! protocols — and a Secret's `stringData`, merged into `data`. Only absent fields are set. This
//! is a subset; fields not listed stay absent.

use serde_json::{Value, json};

use crate::resources::ResourceInfo;

/// A Job without `manualSelector: true` and without a selector gets the one kube-apiserver
/// generates: its own uid, also set (with its name) as labels on the Pod template, so its Pods
/// can never be claimed by another Job.
fn job_selector(obj: &mut Value) {
    let spec = &obj["spec"];
    if !spec.is_object()
        || spec["manualSelector"] == json!(true)
        || spec.get("selector").is_some_and(|s| !s.is_null())
    {
        return;
    }
    let uid = obj["metadata"]["uid"].clone();
    let name = obj["metadata"]["name"].clone();
    let spec = &mut obj["spec"];
    spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    if !spec["template"]["metadata"].is_object() {
        spec["template"]["metadata"] = json!({});
    }
    let meta = &mut spec["template"]["metadata"];
    if !meta["labels"].is_object() {
        meta["labels"] = json!({});
    }
    for (key, value) in [
        ("batch.kubernetes.io/controller-uid", &uid),
        ("batch.kubernetes.io/job-name", &name),
        ("controller-uid", &uid),
        ("job-name", &name),
    ] {
        meta["labels"][key] = value.clone();
    }
}

/// Sets `obj[key] = value` when the key is absent or null.
fn set(obj: &mut Value, key: &str, value: Value) {
    if obj.is_object() && obj.get(key).is_none_or(Value::is_null) {
        obj[key] = value;
    }
}

fn container(c: &mut Value) {
    let image = c["image"].as_str().unwrap_or_default();
    let last = image.rsplit('/').next().unwrap_or_default();
    let tag = if last.contains('@') {
        Some("digest")
    } else {
        last.split_once(':').map(|(_, t)| t)
    };
    let policy = if tag.is_none() || tag == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    };
    set(c, "imagePullPolicy", json!(policy));
    set(c, "terminationMessagePath", json!("/dev/termination-log"));
    set(c, "terminationMessagePolicy", json!("File"));
    for p in array_mut(c, "ports") {
        set(p, "protocol", json!("TCP"));
    }
}

/// The elements of the array at `obj[key]`, if there is one. Never inserts the key: indexing a
/// JSON object mutably (`obj[key]`) would write a `null` there, which the real server never
/// stores.
fn array_mut<'a>(obj: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    obj.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

fn pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    set(spec, "restartPolicy", json!("Always"));
    set(spec, "dnsPolicy", json!("ClusterFirst"));
    set(spec, "schedulerName", json!("default-scheduler"));
    set(spec, "terminationGracePeriodSeconds", json!(30));
    set(spec, "securityContext", json!({}));
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        for c in array_mut(spec, key) {
            container(c);
        }
    }
}

fn template(spec: &mut Value) {
    if let Some(pod) = spec.get_mut("template").and_then(|t| t.get_mut("spec")) {
        pod_spec(pod);
    }
}

/// A Secret's write-only `stringData` is merged into `data` (base64, its keys win) and dropped,
/// and `type` defaults to `Opaque`, as kube-apiserver does on every write.
fn secret(obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    if let Some(Value::Object(strings)) = map.remove("stringData") {
        let data = map
            .entry("data")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if !data.is_object() {
            *data = Value::Object(serde_json::Map::new());
        }
        for (key, value) in strings {
            if let Some(text) = value.as_str() {
                let bytes = k8s_openapi::ByteString(text.as_bytes().to_vec());
                data[key.as_str()] = serde_json::to_value(bytes).unwrap_or(Value::Null);
            }
        }
    }
    set(obj, "type", json!("Opaque"));
}

/// A ReplicationController without a selector or labels takes its template's labels for both,
/// as kube-apiserver defaults it.
fn replication_controller_labels(obj: &mut Value) {
    let labels = obj.pointer("/spec/template/metadata/labels").cloned();
    let Some(labels) = labels.filter(|l| l.as_object().is_some_and(|m| !m.is_empty())) else {
        return;
    };
    let empty = |v: Option<&Value>| v.is_none_or(|v| v.as_object().is_none_or(|m| m.is_empty()));
    if empty(obj.pointer("/spec/selector")) {
        obj["spec"]["selector"] = labels.clone();
    }
    if obj.get("metadata").is_some_and(Value::is_object) && empty(obj.pointer("/metadata/labels")) {
        obj["metadata"]["labels"] = labels;
    }
}

/// Applies the defaults of `info`'s kind to `obj` (a no-op for kinds without a table entry).
pub fn apply(info: &ResourceInfo, obj: &mut Value) {
    if info.custom.is_some() {
        return;
    }
    if info.group.is_empty() && info.kind == "Secret" {
        secret(obj);
        return;
    }
    if info.group == "batch" && info.kind == "Job" {
        job_selector(obj);
    }
    if info.group.is_empty() && info.kind == "PodTemplate" {
        template(obj); // a PodTemplate holds `template` at its top level
        return;
    }
    if info.group.is_empty() && info.kind == "ReplicationController" {
        replication_controller_labels(obj);
    }
    let Some(spec) = obj.get_mut("spec").filter(|s| s.is_object()) else {
        return;
    };
    match (info.group.as_str(), info.kind.as_str()) {
        ("", "Pod") => pod_spec(spec),
        ("apps", "Deployment") => {
            set(spec, "replicas", json!(1));
            set(spec, "revisionHistoryLimit", json!(10));
            set(spec, "progressDeadlineSeconds", json!(600));
            set(
                spec,
                "strategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
            );
            template(spec);
        }
        ("", "ReplicationController") => {
            set(spec, "replicas", json!(1));
            template(spec);
        }
        ("apps", "ReplicaSet") => {
            set(spec, "replicas", json!(1));
            template(spec);
        }
        ("apps", "StatefulSet") => {
            set(spec, "replicas", json!(1));
            set(spec, "podManagementPolicy", json!("OrderedReady"));
            set(spec, "revisionHistoryLimit", json!(10));
            set(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            template(spec);
        }
        ("apps", "DaemonSet") => {
            set(spec, "revisionHistoryLimit", json!(10));
            set(
                spec,
                "updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
            );
            template(spec);
        }
        ("batch", "Job") => {
            if spec.get("completions").is_none_or(Value::is_null)
                && spec.get("parallelism").is_none_or(Value::is_null)
            {
                set(spec, "completions", json!(1));
            }
            set(spec, "parallelism", json!(1));
            let replacement = if spec.get("podFailurePolicy").is_some_and(Value::is_object) {
                "Failed"
            } else {
                "TerminatingOrFailed"
            };
            set(spec, "podReplacementPolicy", json!(replacement));
            set(spec, "backoffLimit", json!(6));
            set(spec, "completionMode", json!("NonIndexed"));
            set(spec, "suspend", json!(false));
            template(spec);
        }
        ("batch", "CronJob") => {
            set(spec, "concurrencyPolicy", json!("Allow"));
            set(spec, "suspend", json!(false));
            set(spec, "successfulJobsHistoryLimit", json!(3));
            set(spec, "failedJobsHistoryLimit", json!(1));
        }
        ("", "Service") => {
            set(spec, "type", json!("ClusterIP"));
            set(spec, "sessionAffinity", json!("None"));
            for p in array_mut(spec, "ports") {
                set(p, "protocol", json!("TCP"));
                if let Some(port) = p.get("port").filter(|v| !v.is_null()).cloned() {
                    set(p, "targetPort", port);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    #[test]
    fn deployments_get_replicas_strategy_and_pod_defaults() {
        let info = Registry::default()
            .get("apps", "v1", "deployments")
            .expect("deployments");
        let mut d = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "repo:5000/app:1.2"}]}}}});
        apply(&info, &mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Always");
        assert_eq!(pod["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(pod["containers"][1]["imagePullPolicy"], "IfNotPresent");
    }

    #[test]
    fn present_fields_are_kept() {
        let info = Registry::default()
            .get("apps", "v1", "deployments")
            .expect("deployments");
        let mut d = json!({"spec": {"replicas": 0, "strategy": {"type": "Recreate"}}});
        apply(&info, &mut d);
        assert_eq!(d["spec"]["replicas"], 0);
        assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn jobs_get_a_generated_selector_and_labels_unless_manual() {
        let info = Registry::default()
            .get("batch", "v1", "jobs")
            .expect("jobs");
        let mut job =
            json!({"metadata": {"name": "pi", "uid": "u-1"}, "spec": {"template": {"spec": {}}}});
        apply(&info, &mut job);
        assert_eq!(
            job["spec"]["selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
        );
        let labels = &job["spec"]["template"]["metadata"]["labels"];
        assert_eq!(
            (
                labels["job-name"].as_str(),
                labels["controller-uid"].as_str()
            ),
            (Some("pi"), Some("u-1"))
        );
        assert_eq!(
            (
                job["spec"]["completions"].as_i64(),
                job["spec"]["parallelism"].as_i64()
            ),
            (Some(1), Some(1))
        );

        let mut manual = json!({"metadata": {"name": "m", "uid": "u-2"}, "spec": {"manualSelector": true, "parallelism": 2, "template": {}}});
        apply(&info, &mut manual);
        assert!(manual["spec"]["selector"].is_null());
        assert!(
            manual["spec"]["completions"].is_null(),
            "a work queue: parallelism alone"
        );
    }
}

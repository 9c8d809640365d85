//! Resource metrics for tests: `metrics.k8s.io/v1beta1` PodMetrics, the API metrics-server
//! serves on a cluster and the HorizontalPodAutoscaler reads, served by either backend.
//!
//! Neither the embedded server nor a bare kube-apiserver has metrics-server behind it, so
//! [`install`] registers PodMetrics as a custom resource in the `metrics.k8s.io` group (with
//! the `api-approved.kubernetes.io` annotation kube-apiserver asks of `*.k8s.io` groups), and
//! [`set_pod_usage`] writes the usage a test wants an autoscaler to see. Reads then go through
//! the same paths as on a cluster: `GET /apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods`
//! with a label selector. The labels of the Pod are copied, so selectors work as with
//! metrics-server.
//!
//! Left out: NodeMetrics, and `custom.metrics.k8s.io` / `external.metrics.k8s.io` (their
//! paths are not resource paths a custom resource can serve).

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

/// The PodMetrics resource, for `kube::Api<DynamicObject>`.
pub fn pod_metrics_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "PodMetrics"),
        "pods",
    )
}

/// Registers PodMetrics under `metrics.k8s.io/v1beta1` and waits until it is served. Calling it
/// again (another test on the same server) is harmless.
///
/// # Errors
/// The server refused the definition or did not serve it within 30 s.
pub async fn install(client: &kube::Client) -> Result<(), kube::Error> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(definition())
        .expect("the PodMetrics definition is a CustomResourceDefinition");
    match crds.create(&PostParams::default(), &crd).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(e) => return Err(e),
    }
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &pod_metrics_resource());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match api.list(&Default::default()).await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn definition() -> serde_json::Value {
    let quantities =
        json!({"type": "object", "additionalProperties": {"x-kubernetes-int-or-string": true}});
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": "pods.metrics.k8s.io",
            "annotations": {"api-approved.kubernetes.io": "unapproved, test-only stand-in for metrics-server"},
        },
        "spec": {
            "group": "metrics.k8s.io",
            "scope": "Namespaced",
            "names": {"plural": "pods", "singular": "podmetrics", "kind": "PodMetrics", "listKind": "PodMetricsList"},
            "versions": [{
                "name": "v1beta1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "timestamp": {"type": "string"},
                        "window": {"type": "string"},
                        "containers": {"type": "array", "items": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}, "usage": quantities},
                        }},
                    },
                }},
            }],
        },
    })
}

/// Writes the PodMetrics of Pod `pod` in `namespace`: each `(container, cpu, memory)` as
/// quantities (`"250m"`, `"64Mi"`), measured now over a 30 s window, labelled as `labels`.
///
/// # Errors
/// The server refused the write.
pub async fn set_pod_usage(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    labels: &std::collections::BTreeMap<String, String>,
    containers: &[(&str, &str, &str)],
) -> Result<(), kube::Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &pod_metrics_resource());
    let containers: Vec<_> = containers
        .iter()
        .map(|(name, cpu, memory)| json!({"name": name, "usage": {"cpu": cpu, "memory": memory}}))
        .collect();
    let now = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now());
    let body = json!({
        "apiVersion": "metrics.k8s.io/v1beta1",
        "kind": "PodMetrics",
        "metadata": {"name": pod, "namespace": namespace, "labels": labels},
        "timestamp": now.to_string(),
        "window": "30s",
        "containers": containers,
    });
    let params = PatchParams::apply("kubeforge-testkit-metrics").force();
    api.patch(pod, &params, &Patch::Apply(body)).await?;
    Ok(())
}

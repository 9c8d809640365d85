//! Size limits, as kube-apiserver and etcd set them: request bodies over 3 MiB, ConfigMap and
//! Secret data over 1 MiB, and objects over etcd's 1.5 MiB request limit are refused.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn oversized_bodies_data_and_objects_are_refused() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let configmaps = format!("/api/v1/namespaces/{ns}/configmaps");
    let mib = |n: f64| "x".repeat((n * 1024.0 * 1024.0) as usize);

    let (code_, status) = post_json(
        &c.client(),
        &configmaps,
        &json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "body"}, "data": {"big": mib(3.5)}}),
    )
    .await;
    assert_eq!(code_, 413, "{status}");
    assert_eq!(status["reason"], "RequestEntityTooLarge");
    assert_eq!(
        status["message"],
        "Request entity too large: limit is 3145728"
    );

    let (code_, status) = post_json(
        &c.client(),
        &configmaps,
        &json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "data"}, "data": {"a": mib(0.6), "b": mib(0.6)}}),
    )
    .await;
    assert_eq!(code_, 422, "{status}");
    assert_eq!(
        status["message"],
        "ConfigMap \"data\" is invalid: []: Too long: may not be more than 1048576 bytes"
    );

    let secrets = format!("/api/v1/namespaces/{ns}/secrets");
    let (code_, status) = post_json(
        &c.client(),
        &secrets,
        &json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "data"}, "stringData": {"a": mib(1.1)}}),
    )
    .await;
    assert_eq!(code_, 422, "{status}");
    assert_eq!(
        status["message"],
        "Secret \"data\" is invalid: data: Too long: may not be more than 1048576 bytes"
    );

    // Under the body limit and under the data limits, over etcd's 1.5 MiB per object.
    let pods = format!("/api/v1/namespaces/{ns}/pods");
    let (code_, status) = post_json(
        &c.client(),
        &pods,
        &json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "big"}, "spec": {"containers": [{"name": "c", "image": "busybox",
        "env": [{"name": "A", "value": mib(0.9)}, {"name": "B", "value": mib(0.9)}]}]}}),
    )
    .await;
    assert_eq!(code_, 500, "{status}");
    assert_eq!(status["message"], "etcdserver: request is too large");

    let (code_, status) = post_json(
        &c.client(),
        &configmaps,
        &json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "fits"}, "data": {"a": mib(0.9)}}),
    )
    .await;
    assert_eq!(code_, 201, "a ConfigMap of 0.9 MiB is accepted: {status}");
}

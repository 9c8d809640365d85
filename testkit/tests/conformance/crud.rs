//! Create, get, update: metadata stamping, names, namespaces, conflicts, generation.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn create_stamps_uid_timestamp_resource_version_and_generation() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    let created = api
        .create(&PostParams::default(), &cm("a", &[]))
        .await
        .expect("create");
    let m = &created.metadata;
    assert!(
        m.uid.as_ref().is_some_and(|u| u.len() == 36),
        "uid: {:?}",
        m.uid
    );
    assert!(m.creation_timestamp.is_some());
    assert!(
        m.resource_version
            .as_ref()
            .and_then(|r| r.parse::<u64>().ok())
            .is_some()
    );
    assert_eq!(
        m.namespace.as_deref(),
        Some(ns.as_str()),
        "namespace comes from the path"
    );
    let got = api.get("a").await.expect("get");
    assert_eq!(got.metadata.uid, m.uid);
    assert_eq!(got.data, created.data);
}

#[tokio::test]
async fn generate_name_gets_a_random_suffix() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    let mut o = cm("", &[]);
    o.metadata.name = None;
    o.metadata.generate_name = Some("gen-".into());
    let a = api.create(&PostParams::default(), &o).await.expect("first");
    let b = api
        .create(&PostParams::default(), &o)
        .await
        .expect("second");
    let (an, bn) = (
        a.metadata.name.expect("name"),
        b.metadata.name.expect("name"),
    );
    assert!(an.starts_with("gen-") && an.len() == 9, "{an}");
    assert_ne!(an, bn);
}

#[tokio::test]
async fn a_generate_name_that_is_not_a_valid_prefix_is_422() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    let mut o = cm("", &[]);
    o.metadata.name = None;
    // A name cannot end with a dot, so neither can a prefix (a trailing `-` is fine).
    o.metadata.generate_name = Some("site.".into());
    let s = api_err(api.create(&PostParams::default(), &o).await);
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert!(s.message.contains("metadata.generateName"), "{}", s.message);
    o.metadata.generate_name = Some("site.web-".into());
    let made = api
        .create(&PostParams::default(), &o)
        .await
        .expect("a valid prefix");
    assert!(
        made.metadata
            .name
            .is_some_and(|n| n.starts_with("site.web-"))
    );
}

#[tokio::test]
async fn creating_twice_is_409_already_exists() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    api.create(&PostParams::default(), &cm("dup", &[]))
        .await
        .expect("create");
    let s = api_err(api.create(&PostParams::default(), &cm("dup", &[])).await);
    assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(s.message, "configmaps \"dup\" already exists");
}

#[tokio::test]
async fn missing_objects_are_404_with_the_real_message() {
    let c = cluster().await;
    let api: Api<Deployment> = Api::namespaced(c.client(), "default");
    let s = api_err(api.get("nope").await);
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    assert_eq!(s.message, "deployments.apps \"nope\" not found");
    let d = s.details.expect("details");
    assert_eq!(
        (d.name.as_str(), d.group.as_str(), d.kind.as_str()),
        ("nope", "apps", "deployments")
    );
}

#[tokio::test]
async fn creating_in_a_missing_namespace_is_404_for_the_namespace() {
    let c = cluster().await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), "does-not-exist");
    let s = api_err(api.create(&PostParams::default(), &cm("a", &[])).await);
    assert_eq!(s.code, 404);
    assert_eq!(s.message, "namespaces \"does-not-exist\" not found");
}

#[tokio::test]
async fn default_namespaces_exist_from_the_start() {
    let c = cluster().await;
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.client());
    for ns in ["default", "kube-system", "kube-public"] {
        let n = api.get(ns).await.expect(ns);
        assert_eq!(n.status.and_then(|s| s.phase).as_deref(), Some("Active"));
    }
}

#[tokio::test]
async fn names_that_are_not_dns_1123_are_422_naming_metadata_name() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    let s = api_err(
        api.create(&PostParams::default(), &cm("Bad_Name", &[]))
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert!(s.message.starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"), "{}", s.message);
    let causes = s.details.expect("details").causes;
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].field, "metadata.name");
    assert_eq!(causes[0].reason, "FieldValueInvalid");
}

#[tokio::test]
async fn update_with_a_stale_resource_version_is_409_conflict() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    let v1 = api
        .create(&PostParams::default(), &cm("a", &[]))
        .await
        .expect("create");
    let mut v2 = v1.clone();
    v2.data = Some([("k".to_string(), "2".to_string())].into());
    let v2 = api
        .replace("a", &PostParams::default(), &v2)
        .await
        .expect("update");
    assert!(
        v2.metadata
            .resource_version
            .as_ref()
            .and_then(|r| r.parse::<u64>().ok())
            > v1.metadata
                .resource_version
                .as_ref()
                .and_then(|r| r.parse::<u64>().ok())
    );
    let s = api_err(api.replace("a", &PostParams::default(), &v1).await);
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        s.message,
        "Operation cannot be fulfilled on configmaps \"a\": the object has been modified; please apply your changes to the latest version and try again"
    );
}

#[tokio::test]
async fn resource_versions_increase_across_all_resources() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(c.client(), &ns);
    let mut last = 0u64;
    for i in 0..3 {
        let a = cms
            .create(&PostParams::default(), &cm(&format!("c{i}"), &[]))
            .await
            .expect("cm");
        let s = k8s_openapi::api::core::v1::Secret {
            metadata: ObjectMeta {
                name: Some(format!("s{i}")),
                ..Default::default()
            },
            ..Default::default()
        };
        let b = secrets
            .create(&PostParams::default(), &s)
            .await
            .expect("secret");
        for rv in [a.metadata.resource_version, b.metadata.resource_version] {
            let rv: u64 = rv.expect("rv").parse().expect("numeric");
            assert!(rv > last, "{rv} after {last}");
            last = rv;
        }
    }
}

pub fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "main", "image": "nginx:1"}]}},
        },
    }))
    .expect("deployment")
}

#[tokio::test]
async fn generation_increments_on_spec_changes_only() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<Deployment> = Api::namespaced(c.client(), &ns);
    let d = api
        .create(&PostParams::default(), &deployment("web", 1))
        .await
        .expect("create");
    assert_eq!(d.metadata.generation, Some(1));
    let mut d2 = d.clone();
    d2.metadata
        .labels
        .get_or_insert_default()
        .insert("extra".into(), "1".into());
    let d2 = api
        .replace("web", &PostParams::default(), &d2)
        .await
        .expect("label change");
    assert_eq!(
        d2.metadata.generation,
        Some(1),
        "metadata changes keep the generation"
    );
    let mut d3 = d2.clone();
    d3.spec.replicas = Some(3);
    let d3 = api
        .replace("web", &PostParams::default(), &d3)
        .await
        .expect("spec change");
    assert_eq!(d3.metadata.generation, Some(2));
}

#[tokio::test]
async fn an_unchanged_update_keeps_the_resource_version() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    let a = api
        .create(&PostParams::default(), &cm("same", &[]))
        .await
        .expect("create");
    let b = api
        .replace("same", &PostParams::default(), &a)
        .await
        .expect("no-op update");
    assert_eq!(a.metadata.resource_version, b.metadata.resource_version);
}

#[tokio::test]
async fn label_keys_and_values_are_validated() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    let s = api_err(
        api.create(&PostParams::default(), &cm("l", &[("app", "not valid!")]))
            .await,
    );
    assert_eq!(s.code, 422);
    let causes = s.details.expect("details").causes;
    assert_eq!(causes[0].field, "metadata.labels");
    assert!(
        causes[0]
            .message
            .starts_with("Invalid value: \"not valid!\""),
        "{}",
        causes[0].message
    );
    let s = api_err(
        api.create(&PostParams::default(), &cm("k", &[("Bad Key", "v")]))
            .await,
    );
    assert_eq!(s.code, 422);
    api.create(
        &PostParams::default(),
        &cm("ok", &[("example.com/app", "web-1.0")]),
    )
    .await
    .expect("valid labels");
}

#[tokio::test]
async fn rbac_names_may_contain_colons() {
    let c = cluster().await;
    let api: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(c.client());
    let name = format!(
        "kubeforge:test:{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let role = k8s_openapi::api::rbac::v1::ClusterRole {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    api.create(&PostParams::default(), &role)
        .await
        .expect("colons are valid in RBAC names");
    api.delete(&name, &Default::default())
        .await
        .expect("delete");
}

#[tokio::test]
async fn built_in_kinds_get_their_common_defaults() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<Deployment> = Api::namespaced(c.client(), &ns);
    let mut d = deployment("defaults", 1);
    d.spec.replicas = None;
    let d = api
        .create(&PostParams::default(), &d)
        .await
        .expect("create");
    assert_eq!(d.spec.replicas, Some(1));
    assert_eq!(d.spec.revision_history_limit, Some(10));
    assert_eq!(
        d.spec.strategy.and_then(|s| s.type_).as_deref(),
        Some("RollingUpdate")
    );
    let pod = d.spec.template.spec.expect("pod spec");
    assert_eq!(pod.restart_policy.as_deref(), Some("Always"));
    assert_eq!(pod.dns_policy.as_deref(), Some("ClusterFirst"));
    assert_eq!(
        pod.containers[0].image_pull_policy.as_deref(),
        Some("IfNotPresent"),
        "nginx:1 has a tag"
    );
    assert_eq!(
        pod.containers[0].termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );
}

#[tokio::test]
async fn a_secrets_string_data_is_stored_as_base64_data() {
    use k8s_openapi::api::core::v1::Secret;
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<Secret> = Api::namespaced(c.client(), &ns);
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds"},
        "data": {"kept": "a2VwdA==", "token": "b2xk"},
        "stringData": {"token": "new"}
    }))
    .unwrap();
    api.create(&PostParams::default(), &secret)
        .await
        .expect("create");
    let stored = api.get("creds").await.expect("get");
    let data = stored.data.unwrap_or_default();
    assert_eq!(
        data.get("token").map(|b| b.0.as_slice()),
        Some(&b"new"[..]),
        "stringData wins"
    );
    assert_eq!(data.get("kept").map(|b| b.0.as_slice()), Some(&b"kept"[..]));
    assert_eq!(stored.string_data, None, "stringData is write-only");
    assert_eq!(stored.type_.as_deref(), Some("Opaque"));
}

/// Paths of the `null` values in `v` (Go clients and kubectl never see one from the real server,
/// which omits empty fields; the one exception is a pod template's `creationTimestamp`).
fn null_paths(v: &serde_json::Value, path: &str, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Null if !path.ends_with(".creationTimestamp") => {
            out.push(path.to_string())
        }
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                null_paths(v, &format!("{path}.{k}"), out);
            }
        }
        serde_json::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                null_paths(v, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn defaulting_never_writes_nulls() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let objects = [
        (
            "configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bare"}}),
        ),
        (
            "pods",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
        ),
        (
            "services",
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                "spec": {"ports": [{"port": 80}]}}),
        ),
        (
            "secrets",
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}),
        ),
    ];
    for (plural, obj) in objects {
        let path = format!("/api/v1/namespaces/{ns}/{plural}");
        let (code_, _) = post_json(&c.client(), &path, &obj).await;
        assert_eq!(code_, 201, "create {plural}");
        let name = obj["metadata"]["name"].as_str().expect("name");
        let (_, read) = raw(&c.client(), "GET", &format!("{path}/{name}"), None, vec![]).await;
        let mut nulls = Vec::new();
        null_paths(&read, "", &mut nulls);
        assert!(
            nulls.is_empty(),
            "{plural} read back with nulls at {nulls:?}: {read}"
        );
    }
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {"metadata": {"labels": {"app": "d"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
    let path = format!("/apis/apps/v1/namespaces/{ns}/deployments");
    let (code_, _) = post_json(&c.client(), &path, &deployment).await;
    assert_eq!(code_, 201, "create the deployment");
    let (_, read) = raw(&c.client(), "GET", &format!("{path}/d"), None, vec![]).await;
    let mut nulls = Vec::new();
    null_paths(&read["spec"], ".spec", &mut nulls);
    assert!(
        nulls.is_empty(),
        "deployment spec with nulls at {nulls:?}: {read}"
    );
}

/// HorizontalPodAutoscalers are served through `autoscaling/v1` and `v2` from one store: v1 shows
/// the CPU target as `targetCPUUtilizationPercentage` and carries the other metrics in an
/// annotation, so a read-modify-write through v1 loses nothing.
#[tokio::test]
async fn autoscalers_read_and_write_through_v1_and_v2_alike() {
    let c = cluster().await;
    let client = c.client();
    let ns = namespace(&client).await;
    let v2_path = format!("/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers");
    let v1_path = format!("/apis/autoscaling/v1/namespaces/{ns}/horizontalpodautoscalers");
    let hpa = serde_json::json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 5,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
                {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "100"}}},
            ],
        },
    });
    let (code, created) = raw(
        &client,
        "POST",
        &v2_path,
        Some("application/json"),
        hpa.to_string().into(),
    )
    .await;
    assert_eq!(code, 201, "{created}");

    let (code, mut v1) = raw(&client, "GET", &format!("{v1_path}/web"), None, vec![]).await;
    assert_eq!(code, 200, "{v1}");
    assert_eq!(v1["apiVersion"], "autoscaling/v1", "{v1}");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60, "{v1}");
    assert!(v1["spec"].get("metrics").is_none(), "{v1}");
    let others: serde_json::Value = serde_json::from_str(
        v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/metrics"]
            .as_str()
            .unwrap_or_else(|| panic!("no metrics annotation: {v1}")),
    )
    .unwrap();
    assert_eq!(others[0]["pods"]["metricName"], "qps", "{others}");

    v1["spec"]["maxReplicas"] = serde_json::json!(8);
    let (code, put) = raw(
        &client,
        "PUT",
        &format!("{v1_path}/web"),
        Some("application/json"),
        v1.to_string().into(),
    )
    .await;
    assert_eq!(code, 200, "{put}");
    let (_, v2) = raw(&client, "GET", &format!("{v2_path}/web"), None, vec![]).await;
    assert_eq!(v2["spec"]["maxReplicas"], 8, "{v2}");
    let metrics = v2["spec"]["metrics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // Both metrics are back: the annotation's first, then the CPU target, as kube-apiserver
    // orders them.
    assert_eq!(metrics.len(), 2, "{v2}");
    assert_eq!(metrics[0]["pods"]["metric"]["name"], "qps", "{v2}");
    assert_eq!(
        metrics[0]["pods"]["target"],
        serde_json::json!({"type": "AverageValue", "averageValue": "100"}),
        "{v2}"
    );
    assert_eq!(
        metrics[1]["resource"]["target"]["averageUtilization"], 60,
        "{v2}"
    );
    assert!(
        v2["metadata"]["annotations"]
            .get("autoscaling.alpha.kubernetes.io/metrics")
            .is_none(),
        "{v2}"
    );
}

/// A scheduler places a Pod with a Binding (through `bindings` or `pods/{name}/binding`): the
/// Pod gets the node, the Binding's annotations and a PodScheduled condition; placing it again
/// is a 409, a Binding for a missing Pod a 404, one whose name differs from the URL's a 400.
#[tokio::test]
async fn bindings_place_pods_on_nodes_once() {
    use k8s_openapi::api::core::v1::Pod;
    let c = cluster().await;
    let client = c.client();
    let ns = namespace(&client).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pod = serde_json::from_value(json!({"metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let binding = |name: &str, node: &str| {
        json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "annotations": {"placed-by": "test"}},
            "target": {"kind": "Node", "name": node}})
        .to_string()
        .into_bytes()
    };
    let json = Some("application/json");
    let (code, status) = raw(
        &client,
        "POST",
        &format!("/api/v1/namespaces/{ns}/pods/p/binding"),
        json,
        binding("p", "node-1"),
    )
    .await;
    assert_eq!(code, 201, "{status}");
    assert_eq!(status["status"], "Success", "{status}");
    let placed = pods.get("p").await.unwrap();
    assert_eq!(placed.spec.unwrap().node_name.as_deref(), Some("node-1"));
    assert_eq!(placed.metadata.annotations.unwrap()["placed-by"], "test");
    let conditions = placed.status.unwrap().conditions.unwrap_or_default();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "PodScheduled" && c.status == "True"),
        "{conditions:?}"
    );

    let (code, status) = raw(
        &client,
        "POST",
        &format!("/api/v1/namespaces/{ns}/bindings"),
        json,
        binding("p", "node-2"),
    )
    .await;
    assert_eq!(code, 409, "{status}");
    assert_eq!(
        status["message"],
        r#"Operation cannot be fulfilled on pods/binding "p": pod p is already assigned to node "node-1""#
    );
    let (code, status) = raw(
        &client,
        "POST",
        &format!("/api/v1/namespaces/{ns}/bindings"),
        json,
        binding("zz", "node-2"),
    )
    .await;
    assert_eq!(
        (code, status["message"].as_str()),
        (404, Some(r#"pods "zz" not found"#)),
        "{status}"
    );
    let (code, status) = raw(
        &client,
        "POST",
        &format!("/api/v1/namespaces/{ns}/pods/p/binding"),
        json,
        binding("q", "node-2"),
    )
    .await;
    assert_eq!(code, 400, "{status}");
    assert_eq!(
        status["message"],
        "name in URL does not match name in Binding object"
    );
    // Create is the only verb.
    let (code, _) = raw(
        &client,
        "GET",
        &format!("/api/v1/namespaces/{ns}/bindings"),
        None,
        vec![],
    )
    .await;
    assert_eq!(code, 405);
}

/// ComponentStatuses (deprecated, still served) list the control plane's parts and their health,
/// with the deprecation warning.
#[tokio::test]
async fn component_statuses_are_served_with_a_deprecation_warning() {
    let c = cluster().await;
    let client = c.client();
    let (code, list) = raw(&client, "GET", "/api/v1/componentstatuses", None, vec![]).await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["kind"], "ComponentStatusList", "{list}");
    let names: Vec<&str> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    for name in ["controller-manager", "scheduler", "etcd-0"] {
        assert!(names.contains(&name), "{names:?}");
    }
    let (code, etcd) = raw(
        &client,
        "GET",
        "/api/v1/componentstatuses/etcd-0",
        None,
        vec![],
    )
    .await;
    assert_eq!(code, 200, "{etcd}");
    assert_eq!(etcd["conditions"][0]["type"], "Healthy", "{etcd}");
    assert_eq!(etcd["conditions"][0]["status"], "True", "{etcd}");
    let (code, _) = raw(
        &client,
        "GET",
        "/api/v1/componentstatuses/nope",
        None,
        vec![],
    )
    .await;
    assert_eq!(code, 404);
    let req = http::Request::get("/api/v1/componentstatuses")
        .body(kube::client::Body::empty())
        .unwrap();
    let resp = client.send(req).await.unwrap();
    let warning = resp
        .headers()
        .get("warning")
        .and_then(|w| w.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        warning.contains("v1 ComponentStatus is deprecated in v1.19+"),
        "{warning:?}"
    );
}

/// A Namespace's finalizers change only through `/finalize`; a status write changes a built-in
/// object's annotations and labels but not its spec (a Deployment's labels stay); every
/// built-in kind takes a strategic merge patch, not only the common ones.
#[tokio::test]
async fn finalize_status_writes_and_strategic_patches_of_built_in_kinds() {
    let c = cluster().await;
    let client = c.client();
    let ns = namespace(&client).await;
    let path = format!("/api/v1/namespaces/{ns}");
    let (code, mut current) = raw(&client, "GET", &path, None, vec![]).await;
    assert_eq!(code, 200, "{current}");
    let finalizers = || serde_json::json!(["kubernetes", "example.com/keep"]);
    // A plain update keeps the finalizers as they were.
    current["spec"]["finalizers"] = finalizers();
    let (code, updated) = raw(
        &client,
        "PUT",
        &path,
        Some("application/json"),
        current.to_string().into(),
    )
    .await;
    assert_eq!(code, 200, "{updated}");
    assert_eq!(
        updated["spec"]["finalizers"],
        serde_json::json!(["kubernetes"]),
        "{updated}"
    );
    // /finalize changes them.
    let mut body = updated.clone();
    body["spec"]["finalizers"] = finalizers();
    let (code, finalized) = raw(
        &client,
        "PUT",
        &format!("{path}/finalize"),
        Some("application/json"),
        body.to_string().into(),
    )
    .await;
    assert_eq!(code, 200, "{finalized}");
    assert_eq!(finalized["spec"]["finalizers"], finalizers(), "{finalized}");

    // A status patch sets an annotation and a condition, and cannot touch the spec.
    let patch = serde_json::json!({
        "metadata": {"annotations": {"example.com/seen": "yes"}},
        "spec": {"finalizers": []},
        "status": {"conditions": [{"type": "StatusUpdate", "status": "True", "reason": "E2E", "message": "set by a test"}]},
    });
    let (code, patched) = raw(
        &client,
        "PATCH",
        &format!("{path}/status"),
        Some("application/merge-patch+json"),
        patch.to_string().into(),
    )
    .await;
    assert_eq!(code, 200, "{patched}");
    assert_eq!(
        patched["metadata"]["annotations"]["example.com/seen"], "yes",
        "{patched}"
    );
    assert_eq!(
        patched["status"]["conditions"][0]["type"], "StatusUpdate",
        "{patched}"
    );
    assert_eq!(patched["spec"]["finalizers"], finalizers(), "{patched}");

    // A Deployment's labels do not change through its status.
    let deployments = format!("/apis/apps/v1/namespaces/{ns}/deployments");
    let deployment = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"tier": "front"}},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
    });
    let (code, created) = raw(
        &client,
        "POST",
        &deployments,
        Some("application/json"),
        deployment.to_string().into(),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    let patch = serde_json::json!({"metadata": {"labels": {"tier": "back"}, "annotations": {"a": "b"}}, "status": {"observedGeneration": 1}});
    let (code, patched) = raw(
        &client,
        "PATCH",
        &format!("{deployments}/web/status"),
        Some("application/merge-patch+json"),
        patch.to_string().into(),
    )
    .await;
    assert_eq!(code, 200, "{patched}");
    assert_eq!(patched["metadata"]["labels"]["tier"], "front", "{patched}");
    assert_eq!(patched["metadata"]["annotations"]["a"], "b", "{patched}");

    // Strategic merge patches of kinds beyond the workloads: a Lease and a FlowSchema.
    let leases = format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases");
    let lease = serde_json::json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": {"holderIdentity": "a"}});
    let (code, created) = raw(
        &client,
        "POST",
        &leases,
        Some("application/json"),
        lease.to_string().into(),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    let patch = serde_json::json!({"spec": {"holderIdentity": "b"}});
    let (code, patched) = raw(
        &client,
        "PATCH",
        &format!("{leases}/l"),
        Some("application/strategic-merge-patch+json"),
        patch.to_string().into(),
    )
    .await;
    assert_eq!(code, 200, "{patched}");
    assert_eq!(patched["spec"]["holderIdentity"], "b");
    let flow_schema = serde_json::json!({
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
        "metadata": {"name": format!("{ns}-fs")},
        "spec": {"priorityLevelConfiguration": {"name": "global-default"}, "matchingPrecedence": 9000},
    });
    let schemas = "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas";
    let (code, created) = raw(
        &client,
        "POST",
        schemas,
        Some("application/json"),
        flow_schema.to_string().into(),
    )
    .await;
    assert_eq!(code, 201, "{created}");
    let patch = serde_json::json!({"metadata": {"labels": {"patched": "strategic"}}});
    let path = format!("{schemas}/{ns}-fs");
    let (code, patched) = raw(
        &client,
        "PATCH",
        &path,
        Some("application/strategic-merge-patch+json"),
        patch.to_string().into(),
    )
    .await;
    assert_eq!(code, 200, "{patched}");
    assert_eq!(patched["metadata"]["labels"]["patched"], "strategic");
    let (code, _) = raw(&client, "DELETE", &path, None, vec![]).await;
    assert_eq!(code, 200);
}

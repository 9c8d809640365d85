//! The HorizontalPodAutoscaler controller end to end, on either backend: the test plays kubelet
//! (Pods running and ready) and metrics-server (PodMetrics under `metrics.k8s.io/v1beta1`, see
//! `kubeforge_testkit::metrics`), and watches the target's replica count change through its
//! `/scale` subresource — a Deployment, a StatefulSet, a custom resource — within the
//! autoscaler's policies, stabilization window and bounds, with the status conditions and
//! Events upstream writes.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::{Timestamp, ToSpan};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition,
    MetricIdentifier,
};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, ResourceRequirements};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind, Selector};
use kubeforge_controllers::Options;
use kubeforge_controllers::hpa::HpaOptions;
use kubeforge_controllers::hpa::metrics::{MetricsError, MetricsSource, PodSamples, Sample};
use serde_json::json;
use support::*;

/// Evaluates every autoscaler each second (upstream: 15 s).
fn fast(metrics: Option<Arc<dyn MetricsSource>>) -> Options {
    Options {
        hpa: HpaOptions {
            metrics,
            sync_period: Duration::from_secs(1),
            ..HpaOptions::default()
        },
        ..Options::default()
    }
}

async fn env_with_metrics(source: Option<Arc<dyn MetricsSource>>) -> Env {
    let env = Env::with_options(&["horizontalpodautoscaling"], fast(source)).await;
    kubeforge_testkit::metrics::install(&env.client())
        .await
        .expect("PodMetrics are served");
    env
}

fn requests(cpu: &str, memory: &str) -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.into())),
            ("memory".to_owned(), Quantity(memory.into())),
        ])),
        ..ResourceRequirements::default()
    }
}

fn deployment(name: &str, replicas: i32) -> Deployment {
    let mut template = template(name, "nginx:1");
    if let Some(spec) = template.spec.as_mut() {
        spec.containers[0].resources = Some(requests("100m", "64Mi"));
    }
    Deployment {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: DeploymentSpec {
            replicas: Some(replicas),
            selector: selector(name),
            template,
            ..DeploymentSpec::default()
        },
        status: None,
    }
}

/// A Pod of `app` requesting 100m CPU and 64Mi, running and ready for ten minutes (past the
/// calculator's CPU initialization period), with `cpu`/`memory` usage in its PodMetrics.
async fn busy_pod(env: &Env, app: &str, name: &str, cpu: &str, memory: &str) {
    ready_pod(env, app, name).await;
    kubeforge_testkit::metrics::set_pod_usage(
        &env.client(),
        &env.ns,
        name,
        &labels(app),
        &[("app", cpu, memory)],
    )
    .await
    .expect("write the Pod's metrics");
}

/// A Pod of `app` requesting 100m CPU and 64Mi, running and ready for ten minutes, with no
/// PodMetrics.
async fn ready_pod(env: &Env, app: &str, name: &str) {
    let pods: Api<Pod> = env.api();
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels(app)),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some("nginx:1".into()),
                resources: Some(requests("100m", "64Mi")),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: None,
    };
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create the Pod");
    let since = (Timestamp::now() - 10.minutes()).to_string();
    let status = json!({"status": {
        "phase": "Running",
        "startTime": since,
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": since}],
    }});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .expect("mark the Pod running and ready");
}

/// An autoscaler for `kind`/`name` with `metrics` and `behavior` (JSON, as in a manifest).
async fn autoscaler(
    env: &Env,
    name: &str,
    (api_version, kind): (&str, &str),
    (min, max): (i32, i32),
    metrics: serde_json::Value,
    behavior: serde_json::Value,
) {
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": api_version, "kind": kind, "name": name},
            "minReplicas": min,
            "maxReplicas": max,
            "metrics": metrics,
            "behavior": behavior,
        },
    }))
    .expect("an autoscaler");
    let api: Api<HorizontalPodAutoscaler> = env.api();
    api.create(&PostParams::default(), &hpa)
        .await
        .expect("create the autoscaler");
}

fn cpu_utilization(percent: i32) -> serde_json::Value {
    json!([{"type": "Resource", "resource": {"name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": percent}}}])
}

fn condition(
    hpa: &HorizontalPodAutoscaler,
    type_: &str,
) -> Option<HorizontalPodAutoscalerCondition> {
    hpa.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
}

/// Waits until `hpa`'s condition `type_` has `status` and `reason`, and returns the autoscaler.
async fn until_condition(
    env: &Env,
    hpa: &str,
    type_: &str,
    status: &str,
    reason: &str,
) -> HorizontalPodAutoscaler {
    let api: Api<HorizontalPodAutoscaler> = env.api();
    eventually(&format!("{hpa}: {type_}={status} ({reason})"), || async {
        let got = api.get(hpa).await.ok()?;
        let c = condition(&got, type_)?;
        (c.status == status && c.reason.as_deref() == Some(reason)).then_some(got)
    })
    .await
}

async fn deployment_replicas(env: &Env, name: &str) -> i32 {
    let api: Api<Deployment> = env.api();
    let d = api.get(name).await.expect("the Deployment");
    d.spec.replicas.unwrap_or_default()
}

async fn until_deployment_replicas(env: &Env, name: &str, want: i32) {
    eventually(&format!("Deployment {name} scaled to {want}"), || async {
        (deployment_replicas(env, name).await == want).then_some(())
    })
    .await;
}

async fn event_reasons(env: &Env, name: &str) -> Vec<String> {
    let events: Api<Event> = env.api();
    events
        .list(&ListParams::default())
        .await
        .expect("list Events")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter_map(|e| e.reason)
        .collect()
}

#[tokio::test]
async fn cpu_above_target_scales_a_deployment_up_as_far_as_its_policy_allows() {
    let env = env_with_metrics(None).await;
    let deployments: Api<Deployment> = env.api();
    deployments
        .create(&PostParams::default(), &deployment("web", 2))
        .await
        .expect("create the Deployment");
    // 200 % of the request against a 50 % target: the metric asks for 2 × 4 = 8 replicas.
    busy_pod(&env, "web", "web-a", "200m", "32Mi").await;
    busy_pod(&env, "web", "web-b", "200m", "32Mi").await;
    autoscaler(
        &env,
        "web",
        ("apps/v1", "Deployment"),
        (1, 10),
        cpu_utilization(50),
        json!({"scaleUp": {"stabilizationWindowSeconds": 0,
            "policies": [{"type": "Pods", "value": 2, "periodSeconds": 600}]}}),
    )
    .await;

    // The policy allows 2 more Pods per 10 minutes: 4, not 8, and no further in that period.
    until_deployment_replicas(&env, "web", 4).await;
    let hpa = until_condition(&env, "web", "ScalingLimited", "True", "ScaleUpLimit").await;
    let status = hpa.status.clone().expect("a status");
    assert_eq!(status.desired_replicas, 4);
    let cpu = status.current_metrics.as_ref().expect("current metrics")[0]
        .resource
        .as_ref()
        .expect("a resource metric");
    assert_eq!(cpu.current.average_utilization, Some(200));
    assert_eq!(
        condition(&hpa, "ScalingActive").map(|c| c.reason),
        Some(Some("ValidMetricFound".into()))
    );
    assert!(status.last_scale_time.is_some());
    // Later syncs keep it at 4 within the period, though the metric still asks for 8.
    until_condition(&env, "web", "AbleToScale", "True", "ReadyForNewScale").await;
    assert_eq!(deployment_replicas(&env, "web").await, 4);
    let reasons = eventually("a SuccessfulRescale Event", || async {
        let reasons = event_reasons(&env, "web").await;
        reasons
            .contains(&"SuccessfulRescale".to_owned())
            .then_some(reasons)
    })
    .await;
    assert!(
        !reasons.iter().any(|r| r.starts_with("Failed")),
        "{reasons:?}"
    );
    env.stop().await;
}

#[tokio::test]
async fn idle_pods_scale_down_to_min_at_once_without_a_window_and_not_within_the_default_one() {
    let env = env_with_metrics(None).await;
    let deployments: Api<Deployment> = env.api();
    for name in ["quick", "steady"] {
        deployments
            .create(&PostParams::default(), &deployment(name, 4))
            .await
            .expect("create the Deployment");
        for i in 0..4 {
            busy_pod(&env, name, &format!("{name}-{i}"), "10m", "32Mi").await;
        }
    }
    // 10 % against 50 %: the metric asks for ceil(4 × 0.2) = 1, below minReplicas 2.
    autoscaler(
        &env,
        "quick",
        ("apps/v1", "Deployment"),
        (2, 10),
        cpu_utilization(50),
        json!({"scaleDown": {"stabilizationWindowSeconds": 0}}),
    )
    .await;
    autoscaler(
        &env,
        "steady",
        ("apps/v1", "Deployment"),
        (2, 10),
        cpu_utilization(50),
        json!(null),
    )
    .await;

    until_deployment_replicas(&env, "quick", 2).await;
    until_condition(&env, "quick", "ScalingLimited", "True", "TooFewReplicas").await;
    // The default 300 s scale-down window remembers the first recommendation (the current 4).
    until_condition(&env, "steady", "AbleToScale", "True", "ScaleDownStabilized").await;
    assert_eq!(deployment_replicas(&env, "steady").await, 4);
    env.stop().await;
}

#[tokio::test]
async fn a_missing_target_or_missing_metrics_show_in_the_conditions_and_events() {
    let env = env_with_metrics(None).await;
    autoscaler(
        &env,
        "ghost",
        ("apps/v1", "Deployment"),
        (1, 5),
        cpu_utilization(50),
        json!(null),
    )
    .await;
    let hpa = until_condition(&env, "ghost", "AbleToScale", "False", "FailedGetScale").await;
    let message = condition(&hpa, "AbleToScale")
        .and_then(|c| c.message)
        .unwrap_or_default();
    assert!(
        message.contains("unable to get the target's current scale"),
        "{message}"
    );

    let deployments: Api<Deployment> = env.api();
    deployments
        .create(&PostParams::default(), &deployment("quiet", 2))
        .await
        .expect("create the Deployment");
    // Two ready Pods, and metrics-server has nothing for them yet.
    ready_pod(&env, "quiet", "quiet-0").await;
    ready_pod(&env, "quiet", "quiet-1").await;
    autoscaler(
        &env,
        "quiet",
        ("apps/v1", "Deployment"),
        (1, 5),
        cpu_utilization(50),
        json!(null),
    )
    .await;
    // No PodMetrics for its Pods: nothing to compute from, and the replica count stays.
    until_condition(
        &env,
        "quiet",
        "ScalingActive",
        "False",
        "FailedGetResourceMetric",
    )
    .await;
    assert_eq!(deployment_replicas(&env, "quiet").await, 2);
    eventually("a FailedGetResourceMetric Event", || async {
        event_reasons(&env, "quiet")
            .await
            .contains(&"FailedGetResourceMetric".to_owned())
            .then_some(())
    })
    .await;
    env.stop().await;
}

/// A custom resource with a scale subresource, scaled on memory per Pod.
#[tokio::test]
async fn a_custom_resource_with_a_scale_subresource_scales_on_average_memory() {
    let env = env_with_metrics(None).await;
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "flocks.hpa.kubeforge.dev"},
        "spec": {"group": "hpa.kubeforge.dev", "scope": "Namespaced",
            "names": {"plural": "flocks", "singular": "flock", "kind": "Flock", "listKind": "FlockList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                    "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".status.selector"}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
                    "status": {"type": "object", "properties": {
                        "replicas": {"type": "integer"}, "selector": {"type": "string"}}}}}}}]}});
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(env.client());
    match crds
        .create(
            &PostParams::default(),
            &serde_json::from_value(crd).expect("a CRD"),
        )
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("create the CRD: {e}"),
    }
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("hpa.kubeforge.dev", "v1", "Flock"),
        "flocks",
    );
    let flocks: Api<DynamicObject> = Api::namespaced_with(env.client(), &env.ns, &resource);
    let flock = json!({"apiVersion": "hpa.kubeforge.dev/v1", "kind": "Flock",
        "metadata": {"name": "sheep"}, "spec": {"replicas": 1}});
    eventually("the Flock kind is served", || async {
        let obj: DynamicObject = serde_json::from_value(flock.clone()).ok()?;
        flocks.create(&PostParams::default(), &obj).await.ok()
    })
    .await;
    flocks
        .patch_status(
            "sheep",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 1, "selector": "app=sheep"}})),
        )
        .await
        .expect("the Flock's status");
    busy_pod(&env, "sheep", "sheep-0", "50m", "300Mi").await;
    // 300Mi against an average of 100Mi per Pod: three.
    autoscaler(
        &env,
        "sheep",
        ("hpa.kubeforge.dev/v1", "Flock"),
        (1, 5),
        json!([{"type": "Resource", "resource": {"name": "memory",
            "target": {"type": "AverageValue", "averageValue": "100Mi"}}}]),
        json!(null),
    )
    .await;
    eventually("the Flock scaled to 3", || async {
        let obj = flocks.get("sheep").await.ok()?;
        (obj.data.pointer("/spec/replicas") == Some(&json!(3))).then_some(())
    })
    .await;
    env.stop().await;
}

/// Custom metrics from an adapter, here a fixed source: requests per second per Pod, and the
/// queue length of one object; the larger proposal wins.
struct AdapterStandIn;

impl MetricsSource for AdapterStandIn {
    fn resource<'a>(
        &'a self,
        _: &'a str,
        _: &'a Selector,
        _: &'a str,
        _: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PodSamples, MetricsError>> {
        Box::pin(async {
            Err(MetricsError::Empty {
                api: "metrics.k8s.io/v1beta1",
            })
        })
    }

    fn pods<'a>(
        &'a self,
        _: &'a str,
        _: &'a Selector,
        metric: &'a MetricIdentifier,
    ) -> BoxFuture<'a, Result<PodSamples, MetricsError>> {
        Box::pin(async move {
            // A wrong name reads as a failed metric (the test then times out saying so).
            if metric.name != "requests_per_second" {
                return Err(MetricsError::Empty {
                    api: "custom.metrics.k8s.io/v1beta2 (a metric other than requests_per_second)",
                });
            }
            let sample = |value| Sample {
                value,
                timestamp: Timestamp::now(),
                window: Duration::from_secs(60),
            };
            Ok(PodSamples::from([
                ("queue-0".to_owned(), sample(30_000)),
                ("queue-1".to_owned(), sample(30_000)),
            ]))
        })
    }

    fn object<'a>(
        &'a self,
        _: &'a str,
        object: &'a CrossVersionObjectReference,
        _: &'a MetricIdentifier,
    ) -> BoxFuture<'a, Result<Sample, MetricsError>> {
        Box::pin(async move {
            if object.name != "jobs" {
                return Err(MetricsError::Empty {
                    api: "custom.metrics.k8s.io/v1beta2 (an object other than Service jobs)",
                });
            }
            Ok(Sample {
                value: 200_000,
                timestamp: Timestamp::now(),
                window: Duration::from_secs(60),
            })
        })
    }

    fn external<'a>(
        &'a self,
        _: &'a str,
        _: &'a MetricIdentifier,
    ) -> BoxFuture<'a, Result<(Vec<i64>, Timestamp), MetricsError>> {
        Box::pin(async {
            Err(MetricsError::Empty {
                api: "external.metrics.k8s.io/v1beta1",
            })
        })
    }
}

#[tokio::test]
async fn pods_and_object_metrics_scale_a_statefulset_to_the_larger_proposal() {
    let env = env_with_metrics(Some(Arc::new(AdapterStandIn))).await;
    let sets: Api<StatefulSet> = env.api();
    let set = StatefulSet {
        metadata: ObjectMeta {
            name: Some("queue".into()),
            ..ObjectMeta::default()
        },
        spec: StatefulSetSpec {
            replicas: Some(2),
            selector: selector("queue"),
            service_name: Some("queue".into()),
            template: template("queue", "nginx:1"),
            ..StatefulSetSpec::default()
        },
        status: None,
    };
    sets.create(&PostParams::default(), &set)
        .await
        .expect("create the StatefulSet");
    for i in 0..2 {
        busy_pod(&env, "queue", &format!("queue-{i}"), "50m", "32Mi").await;
    }
    // Pods: 30 per Pod against 10 → 2 × 3 = 6. Object: 200 against 100 → 2 × 2 = 4.
    autoscaler(
        &env,
        "queue",
        ("apps/v1", "StatefulSet"),
        (1, 10),
        json!([
            {"type": "Pods", "pods": {"metric": {"name": "requests_per_second"},
                "target": {"type": "AverageValue", "averageValue": "10"}}},
            {"type": "Object", "object": {"metric": {"name": "queue_length"},
                "describedObject": {"apiVersion": "v1", "kind": "Service", "name": "jobs"},
                "target": {"type": "Value", "value": "100"}}},
        ]),
        json!({"scaleUp": {"stabilizationWindowSeconds": 0}}),
    )
    .await;
    eventually("the StatefulSet scaled to 6", || async {
        let s = sets.get("queue").await.ok()?;
        (s.spec.replicas == Some(6)).then_some(())
    })
    .await;
    let hpa = until_condition(&env, "queue", "ScalingActive", "True", "ValidMetricFound").await;
    let message = condition(&hpa, "ScalingActive")
        .and_then(|c| c.message)
        .unwrap_or_default();
    assert!(
        message.contains("pods metric requests_per_second"),
        "{message}"
    );
    env.stop().await;
}

//! Reconcile helpers against the embedded API server: status server-side apply, events with
//! series de-duplication.

mod controller_support;

use controller_support::*;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStatus};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Api;
use kube::api::{ListParams, PostParams};
use kubeforge::events::{EventRecord, EventType, Recorder, Reporter, object_reference};

fn deployment(name: &str) -> Deployment {
    let labels = std::collections::BTreeMap::from([("app".to_owned(), name.to_owned())]);
    Deployment {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            ..ObjectMeta::default()
        },
        spec: DeploymentSpec {
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "c".into(),
                        image: Some("nginx".into()),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    }
}

#[tokio::test]
async fn apply_status_writes_only_the_status() {
    let server = server().await;
    let api: Api<Deployment> = Api::namespaced(server.client(), NS);
    let created = api
        .create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    let status = DeploymentStatus {
        replicas: Some(2),
        ready_replicas: Some(1),
        ..DeploymentStatus::default()
    };
    let applied = kubeforge::apply::apply_status(&api, "web", "kubeforge-test", &status)
        .await
        .unwrap();
    assert_eq!(
        applied.status.as_ref().and_then(|s| s.ready_replicas),
        Some(1)
    );
    let stored = api.get("web").await.unwrap();
    assert_eq!(stored.status.and_then(|s| s.replicas), Some(2));
    assert_eq!(stored.spec, created.spec, "the spec is untouched");
}

#[tokio::test]
async fn repeated_events_become_one_event_with_a_series() {
    let server = server().await;
    let api: Api<Deployment> = Api::namespaced(server.client(), NS);
    let web = api
        .create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    let recorder = Recorder::new(server.client(), Reporter::new("kubeforge-test"));
    let record = EventRecord {
        type_: EventType::Warning,
        reason: "ImagePullFailed".into(),
        note: Some("cannot pull nginx".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    let regarding = object_reference(&web);
    for _ in 0..3 {
        recorder.publish(&record, &regarding).await.unwrap();
    }
    let other = EventRecord {
        reason: "Scaled".into(),
        type_: EventType::Normal,
        ..record.clone()
    };
    recorder.publish(&other, &regarding).await.unwrap();

    let events: Api<Event> = Api::namespaced(server.client(), NS);
    let list = events.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(
        list.len(),
        2,
        "three identical events fold into one: {list:#?}"
    );
    let warning = list
        .iter()
        .find(|e| e.reason.as_deref() == Some("ImagePullFailed"))
        .unwrap();
    assert_eq!(warning.series.as_ref().map(|s| s.count), Some(3));
    assert_eq!(
        warning.regarding.as_ref().and_then(|r| r.name.as_deref()),
        Some("web")
    );
    assert_eq!(
        warning.reporting_controller.as_deref(),
        Some("kubeforge-test")
    );
    let normal = list
        .iter()
        .find(|e| e.reason.as_deref() == Some("Scaled"))
        .unwrap();
    assert!(normal.series.is_none(), "a single event has no series");
}

//! The `Memcached` custom resource and the Deployment it stands for.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Container, ContainerPort, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, ObjectMeta};
use kubeforge::kube::ResourceExt;
use serde::{Deserialize, Serialize};

/// Reconcile failures that retrying cannot fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Memcached is namespaced; an object without a namespace is a bug upstream.
    #[error("Memcached object has no namespace")]
    NotNamespaced,
}

/// A memcached cluster of `size` pods.
#[derive(kubeforge::CustomResource, Serialize, Deserialize, Clone, Debug)]
#[kubeforge(
    group = "cache.example.com",
    version = "v1",
    status = MemcachedStatus,
    short_name = "mc",
    scale(
        spec_replicas_path = ".spec.size",
        status_replicas_path = ".status.readyReplicas"
    ),
    printer_column(name = "Size", type = "integer", json_path = ".spec.size"),
    printer_column(name = "Ready", type = "integer", json_path = ".status.readyReplicas")
)]
#[serde(rename_all = "camelCase")]
pub struct MemcachedSpec {
    /// How many memcached pods to run.
    #[kubeforge(minimum = 1, maximum = 10, default = 1)]
    pub size: i32,
    /// The memcached container image.
    #[kubeforge(default = "memcached:1.6-alpine", min_length = 1)]
    pub image: String,
}

/// What the operator last observed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemcachedStatus {
    /// Pods of the Deployment that are ready.
    #[serde(default)]
    pub ready_replicas: i32,
    /// `Available` is true once every requested pod is ready.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// The Deployment a Memcached stands for: same name and namespace, `size` replicas.
pub fn desired_deployment(memcached: &Memcached) -> Deployment {
    let labels = BTreeMap::from([
        (
            "app.kubernetes.io/name".to_string(),
            "memcached".to_string(),
        ),
        (
            "app.kubernetes.io/instance".to_string(),
            memcached.name_any(),
        ),
    ]);
    Deployment {
        metadata: ObjectMeta {
            name: Some(memcached.name_any()),
            namespace: memcached.namespace(),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        spec: DeploymentSpec {
            replicas: Some(memcached.spec.size),
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
                        name: "memcached".into(),
                        image: Some(memcached.spec.image.clone()),
                        command: Some(vec!["memcached".into(), "-m=64".into(), "-vv".into()]),
                        ports: Some(vec![ContainerPort {
                            container_port: 11211,
                            name: Some("memcached".into()),
                            ..ContainerPort::default()
                        }]),
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

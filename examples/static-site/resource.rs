//! The `StaticSite` custom resource and the children it stands for: a ConfigMap with its files,
//! an nginx Deployment serving them (with the TLS Secret mounted when one is named), a Service.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, PodSpec, PodTemplateSpec,
    SecretVolumeSource, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, ObjectMeta};
use kubeforge::kube::ResourceExt;
use serde::{Deserialize, Serialize};

/// A static website: files served by nginx under a domain, with a DNS record kept for it.
#[derive(kubeforge::CustomResource, Serialize, Deserialize, Clone, Debug)]
#[kubeforge(
    group = "web.example.com",
    version = "v1",
    status = StaticSiteStatus,
    short_name = "site",
    printer_column(name = "Domain", type = "string", json_path = ".spec.domain"),
    printer_column(
        name = "Ready",
        type = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct StaticSiteSpec {
    /// The domain the site is published under; a DNS record is kept for it while the site exists.
    #[kubeforge(pattern = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length = 253)]
    pub domain: String,
    /// The files served, by name (`index.html`, ...).
    pub files: BTreeMap<String, String>,
    /// How many nginx pods serve it.
    #[kubeforge(minimum = 1, maximum = 10, default = 1)]
    pub replicas: i32,
    /// A Secret with the TLS certificate (`tls.crt`, `tls.key`): the site is not Ready until it
    /// exists, and a change to it rolls the pods.
    pub tls_secret: Option<String>,
}

/// What the operator last observed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StaticSiteStatus {
    /// `Ready` is true once the children exist and the TLS Secret (if any) is there.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Where the site is published.
    pub url: Option<String>,
}

fn labels(site: &StaticSite) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_owned(),
            "static-site".to_owned(),
        ),
        ("app.kubernetes.io/instance".to_owned(), site.name_any()),
    ])
}

fn meta(site: &StaticSite, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: site.namespace(),
        labels: Some(labels(site)),
        ..ObjectMeta::default()
    }
}

/// The name of the ConfigMap holding a site's files.
pub fn content_name(site: &StaticSite) -> String {
    format!("{}-content", site.name_any())
}

/// The ConfigMap with the site's files.
pub fn desired_content(site: &StaticSite) -> ConfigMap {
    ConfigMap {
        metadata: meta(site, content_name(site)),
        data: Some(site.spec.files.clone()),
        ..ConfigMap::default()
    }
}

/// The nginx Deployment: the files mounted as the document root, the TLS Secret beside them.
/// `tls_version` (the Secret's resourceVersion) is a pod annotation, so a new certificate rolls
/// the pods.
pub fn desired_deployment(site: &StaticSite, tls_version: Option<&str>) -> Deployment {
    let mut volumes = vec![Volume {
        name: "content".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: content_name(site),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    }];
    let mut mounts = vec![VolumeMount {
        name: "content".into(),
        mount_path: "/usr/share/nginx/html".into(),
        read_only: Some(true),
        ..VolumeMount::default()
    }];
    if let Some(secret) = &site.spec.tls_secret {
        volumes.push(Volume {
            name: "tls".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(secret.clone()),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        });
        mounts.push(VolumeMount {
            name: "tls".into(),
            mount_path: "/etc/nginx/tls".into(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
    let annotations = tls_version
        .map(|v| BTreeMap::from([("web.example.com/tls-version".to_owned(), v.to_owned())]));
    Deployment {
        metadata: meta(site, site.name_any()),
        spec: DeploymentSpec {
            replicas: Some(site.spec.replicas),
            selector: LabelSelector {
                match_labels: Some(labels(site)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(site)),
                    annotations,
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "nginx".into(),
                        image: Some("nginx:1.27-alpine".into()),
                        ports: Some(vec![ContainerPort {
                            container_port: 80,
                            name: Some("http".into()),
                            ..ContainerPort::default()
                        }]),
                        volume_mounts: Some(mounts),
                        ..Container::default()
                    }],
                    volumes: Some(volumes),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    }
}

/// The Service in front of the pods.
pub fn desired_service(site: &StaticSite) -> Service {
    Service {
        metadata: meta(site, site.name_any()),
        spec: Some(ServiceSpec {
            selector: Some(labels(site)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

//! Kubeconfig for a server on loopback: no TLS, no credentials.

use kube::config::{
    AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext,
};

/// The name used for the cluster, user and context entries.
pub const NAME: &str = "kubeforge";

/// A kubeconfig whose current context talks to `url`.
pub fn for_url(url: &str) -> Kubeconfig {
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: NAME.into(),
            cluster: Some(Cluster {
                server: Some(url.to_string()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        auth_infos: vec![NamedAuthInfo {
            name: NAME.into(),
            auth_info: Some(AuthInfo::default()),
            other: Default::default(),
        }],
        contexts: vec![NamedContext {
            name: NAME.into(),
            context: Some(Context {
                cluster: NAME.into(),
                user: Some(NAME.into()),
                namespace: Some("default".into()),
                ..Default::default()
            }),
            other: Default::default(),
        }],
        current_context: Some(NAME.into()),
        api_version: Some("v1".into()),
        kind: Some("Config".into()),
        ..Default::default()
    }
}

/// The kubeconfig as YAML that both kube-rs and kubectl read.
pub fn to_yaml(config: &Kubeconfig) -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(config)
}

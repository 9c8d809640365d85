//! Shared set-up of the reference controllers' tests: an API server (the embedded one, or the
//! testkit's real kube-apiserver with `KUBEFORGE_TEST_BACKEND=control-plane`), the chosen
//! controllers running on it in a manager, and the test playing kubelet: marking Pods Running
//! and Ready (or failed) through the status subresource, as a node would.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use kubeforge::manager::{Manager, ManagerConfig, ShutdownHandle};
use kubeforge_testkit::TestCluster;
use serde_json::json;

/// The API server a test talks to, its namespace, and the controllers running on it.
pub struct Env {
    pub cluster: TestCluster,
    pub ns: String,
    stop: Option<ShutdownHandle>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Env {
    /// A server (a fresh namespace on a real one) with `controllers` running on it.
    pub async fn with(controllers: &[&str]) -> Env {
        Self::with_options(controllers, kubeforge_controllers::Options::default()).await
    }

    /// [`Env::with`], the controllers set up with `options`.
    pub async fn with_options(
        controllers: &[&str],
        options: kubeforge_controllers::Options,
    ) -> Env {
        // RUST_LOG=kubeforge_controllers=debug shows what the controllers did.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let cluster = TestCluster::from_env()
            .await
            .expect("the API server under test starts");
        Self::on(cluster, controllers, options).await
    }

    /// `controllers` running on `cluster`, in a fresh namespace on a real server.
    pub async fn on(
        cluster: TestCluster,
        controllers: &[&str],
        options: kubeforge_controllers::Options,
    ) -> Env {
        let ns = if cluster.faults().is_some() {
            "default".to_owned()
        } else {
            kubeforge_testkit::cluster::unique_namespace(&cluster.client())
                .await
                .expect("a namespace")
        };
        let mut env = Env {
            cluster,
            ns,
            stop: None,
            task: None,
        };
        if !controllers.is_empty() {
            env.start(controllers, &options).await;
        }
        env
    }

    async fn start(&mut self, controllers: &[&str], options: &kubeforge_controllers::Options) {
        let config = ManagerConfig {
            namespace: Some(self.ns.clone()),
            handle_signals: false,
            cache_sync_timeout: Duration::from_secs(30),
            graceful_shutdown_timeout: Duration::from_secs(5),
            ..ManagerConfig::default()
        };
        let mut mgr = Manager::new(self.client(), config).await.expect("manager");
        let names: Vec<String> = controllers.iter().map(|c| (*c).to_owned()).collect();
        kubeforge_controllers::setup_with(&mut mgr, &names, options).expect("controllers register");
        self.stop = Some(mgr.shutdown_handle());
        self.task = Some(tokio::spawn(async move {
            mgr.run().await.expect("the manager runs");
        }));
    }

    pub fn client(&self) -> Client {
        self.cluster.client()
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client(), &self.ns)
    }

    pub fn is_real(&self) -> bool {
        self.cluster.faults().is_none()
    }

    /// Stops the controllers and waits for the manager to return.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            stop.shutdown();
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the manager task ends");
        }
    }
}

/// Labels `app=<app>`.
pub fn labels(app: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_owned(), app.to_owned())])
}

pub fn selector(app: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels(app)),
        ..LabelSelector::default()
    }
}

/// A one-container Pod template labelled `app=<app>`.
pub fn template(app: &str, image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(app)),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some(image.into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
    }
}

/// Polls `check` until it returns `Some`, for up to 60 s; panics naming `what` otherwise.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The Pods of the namespace with label `app=<app>`, not being deleted, by name.
pub async fn pods(api: &Api<Pod>, app: &str) -> Vec<Pod> {
    let mut pods: Vec<Pod> = api
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    pods.sort_by_key(ResourceExt::name_any);
    pods
}

/// Plays kubelet for one Pod: phase Running and `Ready` true since `ready_for` ago.
pub async fn mark_ready(api: &Api<Pod>, name: &str, ready_for: SignedDuration) {
    let since = (Timestamp::now() - ready_for).to_string();
    let status = json!({"status": {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": since}],
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .expect("mark the Pod ready");
}

/// Plays kubelet for one Pod: it ended in `phase` (`Succeeded` or `Failed`).
pub async fn mark_finished(api: &Api<Pod>, name: &str, phase: &str) {
    let status =
        json!({"status": {"phase": phase, "conditions": [{"type": "Ready", "status": "False"}]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .expect("mark the Pod finished");
}

/// Plays kubelet for every Pod of the namespace until dropped: each Pod is Running and Ready as
/// soon as it appears.
pub fn kubelet(api: Api<Pod>) -> Kubelet {
    let task = tokio::spawn(async move {
        loop {
            if let Ok(list) = api.list(&ListParams::default()).await {
                for pod in list.items {
                    let ready = pod
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready"));
                    if !ready && pod.metadata.deletion_timestamp.is_none() {
                        let _ = api
                            .patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Merge(json!({"status": {
                                "phase": "Running",
                                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": Timestamp::now().to_string()}],
                            }})))
                            .await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    Kubelet(task)
}

/// The kubelet loop of [`kubelet`]; stops when dropped.
pub struct Kubelet(tokio::task::JoinHandle<()>);

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The name of the controller an object names in its ownerReferences, if any.
pub fn controller_name<K: kube::Resource>(obj: &K) -> Option<String> {
    obj.owner_references()
        .iter()
        .find(|r| r.controller == Some(true))
        .map(|r| format!("{}/{}", r.kind, r.name))
}

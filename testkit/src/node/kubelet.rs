//! A minimal kubelet for a [`LocalNode`]: registers the `Node` object and runs the node's Pods as
//! network namespaces, reporting their IPs in Pod status, so controllers that act on Pod IPs
//! (NetworkPolicy enforcement) can be tested against packets from those very addresses.
//!
//! It polls (every 100 ms) rather than watches: a missed or reordered event can then never leave
//! a Pod without a namespace, and 100 ms is far below what the tests wait for anyway. What a real
//! kubelet does beyond the network is left out: no containers run (tests listen in the Pod's
//! namespace with [`Probe`](super::Probe)s), no probes, no node status or leases, no graceful
//! termination (a Pod being deleted loses its namespace at once and is then removed for good).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::LocalNode;
use super::error::{NodeError, Result};

/// How often the kubelet lists its Pods.
const POLL: Duration = Duration::from_millis(100);

/// Plays the kubelet of a [`LocalNode`] until [`stop`](Kubelet::stop)ped or dropped: the `Node`
/// named after the local node (with `spec.podCIDR`) exists while it runs, and every Pod with
/// `spec.nodeName` equal to it gets a network namespace and `status.podIP`, phase `Running` and
/// condition `Ready`. Stopping deletes the `Node`; the Pods' namespaces belong to the
/// [`LocalNode`] and go with its teardown.
pub struct Kubelet {
    node: Arc<LocalNode>,
    client: Client,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Kubelet {
    /// Registers `node` with the API server `client` talks to and starts running its Pods.
    ///
    /// # Errors
    /// The `Node` object cannot be created (one of that name exists already, say).
    pub async fn start(node: Arc<LocalNode>, client: Client) -> Result<Kubelet> {
        let nodes: Api<Node> = Api::all(client.clone());
        let object: Node = serde_json::from_value(json!({
            "metadata": {"name": node.name(), "labels": {"kubernetes.io/hostname": node.name()}},
            "spec": {"podCIDR": node.cidr().to_string(), "podCIDRs": [node.cidr().to_string()]},
        }))
        .expect("a valid Node");
        nodes
            .create(&PostParams::default(), &object)
            .await
            .map_err(|error| api_error(format!("registering Node {}", node.name()), error))?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(node.clone(), client.clone(), stop.clone()));
        Ok(Kubelet {
            node,
            client,
            stop,
            task: Some(task),
        })
    }

    /// The node this kubelet runs Pods on (for [`LocalNode::pod`] and probes).
    pub fn node(&self) -> &Arc<LocalNode> {
        &self.node
    }

    /// Stops running Pods (waiting for a sync in progress to finish) and deletes the `Node`.
    ///
    /// # Errors
    /// Deleting the `Node` failed (an absent one is fine).
    pub async fn stop(mut self) -> Result<()> {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        delete_node(&self.client, self.node.name()).await
    }
}

impl std::fmt::Debug for Kubelet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubelet")
            .field("node", &self.node.name())
            .field("stopped", &self.stop.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        let Some(task) = self.task.take() else {
            return;
        };
        // Not stopped explicitly (a panicking test): stop and clean up as well as a drop can.
        self.stop.cancel();
        task.abort();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (client, name) = (self.client.clone(), self.node.name().to_owned());
            runtime.spawn(async move {
                let _ = delete_node(&client, &name).await;
            });
        }
    }
}

fn api_error(what: String, error: kube::Error) -> NodeError {
    NodeError::Api {
        what,
        source: Box::new(error),
    }
}

async fn delete_node(client: &Client, name: &str) -> Result<()> {
    match Api::<Node>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(error) => Err(api_error(format!("deleting Node {name}"), error)),
    }
}

/// The kubelet loop: syncs every [`POLL`] until `stop`.
async fn run(node: Arc<LocalNode>, client: Client, stop: CancellationToken) {
    let pods: Api<Pod> = Api::all(client.clone());
    let on_node = ListParams::default().fields(&format!("spec.nodeName={}", node.name()));
    loop {
        match pods.list(&on_node).await {
            Ok(list) => sync(&node, &client, list.items).await,
            Err(error) => tracing::debug!(%error, node = node.name(), "kubelet: listing Pods"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Brings the node's network namespaces in line with `listed` (the Pods bound to it): adds
/// missing ones and reports them, removes those of Pods gone or being deleted.
async fn sync(node: &Arc<LocalNode>, client: &Client, listed: Vec<Pod>) {
    let mut wanted = BTreeSet::new();
    for pod in listed {
        let (namespace, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
        if pod.metadata.deletion_timestamp.is_some() {
            // Graceful deletion on a real API server waits for the kubelet's confirmation.
            let confirm = DeleteParams::default().grace_period(0);
            let _ = Api::<Pod>::namespaced(client.clone(), &namespace)
                .delete(&name, &confirm)
                .await;
            continue;
        }
        wanted.insert((namespace.clone(), name.clone()));
        let reported = pod.status.as_ref().and_then(|s| s.pod_ip.as_ref());
        if node.pod(&namespace, &name).is_some() && reported.is_some() {
            continue;
        }
        if let Err(error) = start_pod(node, client, &namespace, &name).await {
            tracing::warn!(%error, pod = %format!("{namespace}/{name}"), "kubelet: starting a Pod");
        }
    }
    for gone in node.pods() {
        if !wanted.contains(&(gone.namespace.clone(), gone.name.clone())) {
            let node = node.clone();
            let removed =
                tokio::task::spawn_blocking(move || node.remove_pod(&gone.namespace, &gone.name))
                    .await;
            if let Ok(Err(error)) = removed {
                tracing::warn!(%error, "kubelet: removing a Pod's network namespace");
            }
        }
    }
}

/// Gives Pod `namespace/name` a network namespace (unless it has one) and reports it running.
async fn start_pod(
    node: &Arc<LocalNode>,
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<()> {
    let net = match node.pod(namespace, name) {
        Some(net) => net,
        None => {
            let (node, ns, pod) = (node.clone(), namespace.to_owned(), name.to_owned());
            tokio::task::spawn_blocking(move || node.add_pod(&ns, &pod))
                .await
                .map_err(|_| NodeError::ProbePanicked {
                    place: format!("the kubelet adding pod {namespace}/{name}"),
                })??
        }
    };
    let now = jiff::Timestamp::now().to_string();
    let status = json!({"status": {
        "phase": "Running",
        "podIP": net.ip.to_string(),
        "podIPs": [{"ip": net.ip.to_string()}],
        "hostIP": node.gateway().to_string(),
        "hostIPs": [{"ip": node.gateway().to_string()}],
        "startTime": now,
        "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
        ],
    }});
    Api::<Pod>::namespaced(client.clone(), namespace)
        .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .map_err(|error| api_error(format!("reporting Pod {namespace}/{name} running"), error))?;
    tracing::debug!(pod = %format!("{namespace}/{name}"), ip = %net.ip, node = node.name(), "kubelet: Pod running");
    Ok(())
}

//! The memcached operator from kubebuilder's tutorial, on kubeforge: a `Memcached` custom resource
//! (group `cache.example.com`) reconciled into a Deployment of that many memcached pods, with
//! the ready count and an `Available` condition written back to the status.
//!
//! ```sh
//! cargo run -p kubeforge-examples --bin memcached-operator -- crds | kubectl apply -f -
//! cargo run -p kubeforge-examples --bin memcached-operator -- rbac
//! cargo run -p kubeforge-examples --bin memcached-operator -- --kubeconfig /tmp/kubeforge.kubeconfig
//! ```

mod resource;

use std::process::ExitCode;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use kubeforge::apply::apply_status;
use kubeforge::conditions::{new_condition, set_condition};
use kubeforge::controller::{Action, Context, Controller, ReconcileError, Watch};
use kubeforge::kube::api::{Patch, PatchParams};
use kubeforge::kube::{Api, ResourceExt};
use kubeforge::owner::set_controller_reference;

use resource::{Memcached, MemcachedStatus, desired_deployment};

/// The field manager this operator writes with (server-side apply).
const MANAGER: &str = "memcached-operator";

/// Makes the cluster match one Memcached: its Deployment exists with `spec.size` replicas and the
/// operator as controller owner, and the status reports how many are ready.
#[kubeforge::controller(for = Memcached, owns(Deployment), name = "memcached")]
async fn reconcile(memcached: Arc<Memcached>, ctx: Context<()>) -> Result<Action, ReconcileError> {
    let namespace = memcached
        .namespace()
        .ok_or_else(|| ReconcileError::terminal(resource::Error::NotNamespaced))?;
    let name = memcached.name_any();

    let mut deployment = desired_deployment(&memcached);
    set_controller_reference(memcached.as_ref(), &mut deployment)?;
    let deployments: Api<Deployment> = Api::namespaced(ctx.client().clone(), &namespace);
    deployments
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&deployment),
        )
        .await?;

    // Ready replicas come from the Deployment as the cache last saw it: a change to it enqueues
    // this Memcached again (owns), so the status converges without polling.
    let ready = ctx
        .lister::<Deployment>()
        .and_then(|lister| lister.get(Some(&namespace), &name))
        .and_then(|d| d.status.as_ref().and_then(|s| s.ready_replicas))
        .unwrap_or(0);
    let mut status = memcached.status.clone().unwrap_or_default();
    status.ready_replicas = ready;
    let available = ready >= memcached.spec.size;
    set_condition(
        &mut status.conditions,
        new_condition(
            "Available",
            if available { "True" } else { "False" },
            if available {
                "AllReplicasReady"
            } else {
                "ReplicasNotReady"
            },
            &format!("{ready}/{} replicas ready", memcached.spec.size),
        ),
    );
    let memcacheds: Api<Memcached> = Api::namespaced(ctx.client().clone(), &namespace);
    apply_status::<Memcached, MemcachedStatus>(&memcacheds, &name, MANAGER, &status).await?;
    Ok(Action::await_change())
}

#[tokio::main]
async fn main() -> ExitCode {
    kubeforge::entry::run(MANAGER, async |mgr| {
        Controller::managed_by(mgr)
            .for_::<Memcached>(Watch::new())
            .owns::<Deployment>(Watch::new())
            .named("memcached")
            .complete(reconcile, ())?;
        Ok(())
    })
    .await
}

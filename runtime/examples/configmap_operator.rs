//! A minimal operator on the kubeforge entry point: reconciles ConfigMaps labelled
//! `kubeforge.io/demo`, marking each with `kubeforge.io/started` and, after `kubeforge.io/work-ms`
//! milliseconds of "work", `kubeforge.io/finished`. The graceful-shutdown test sends it SIGTERM
//! in the middle of that work.
//!
//! `cargo run -p kubeforge --example configmap_operator -- --kubeconfig <file>`
//! (`rbac`, `crds` and `--help` work too).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kubeforge::controller::{Action, Context, Controller, ReconcileError, Watch};
use kubeforge::kube::Api;
use kubeforge::kube::api::{Patch, PatchParams};

async fn annotate(
    api: &Api<ConfigMap>,
    name: &str,
    key: &str,
) -> Result<(), kubeforge::kube::Error> {
    let patch = serde_json::json!({ "metadata": { "annotations": { key: "true" } } });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

async fn reconcile(cm: Arc<ConfigMap>, ctx: Context<()>) -> Result<Action, ReconcileError> {
    let annotations = cm.metadata.annotations.clone().unwrap_or_default();
    if annotations.contains_key("kubeforge.io/finished") {
        return Ok(Action::await_change());
    }
    let name = cm.metadata.name.clone().unwrap_or_default();
    let api: Api<ConfigMap> = Api::namespaced(
        ctx.client().clone(),
        cm.metadata.namespace.as_deref().unwrap_or("default"),
    );
    let work_ms: u64 = annotations
        .get("kubeforge.io/work-ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    annotate(&api, &name, "kubeforge.io/started").await?;
    tokio::time::sleep(Duration::from_millis(work_ms)).await;
    annotate(&api, &name, "kubeforge.io/finished").await?;
    tracing::info!(%name, "finished");
    Ok(Action::await_change())
}

#[tokio::main]
async fn main() -> ExitCode {
    kubeforge::manager::entry::run("configmap-operator", async |mgr| {
        Controller::managed_by(mgr)
            .for_::<ConfigMap>(Watch::new().labels("kubeforge.io/demo"))
            .concurrency(2)
            .complete(reconcile, ())?;
        Ok(())
    })
    .await
}

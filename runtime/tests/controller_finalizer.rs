//! The finalizer flow end to end: added on first reconcile, cleanup on deletion, then gone.

mod controller_support;

use std::sync::Arc;
use std::time::Duration;

use controller_support::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::DeleteParams;
use kubeforge::controller::finalizer::{Event, finalizer};
use kubeforge::controller::{Action, Context, Controller, ReconcileError, Watch};
use parking_lot::Mutex;

const FINALIZER: &str = "kubeforge.io/cleanup";

#[derive(Default)]
struct Seen {
    applied: Mutex<Vec<String>>,
    cleaned: Mutex<Vec<String>>,
}

async fn reconcile(cm: Arc<ConfigMap>, ctx: Context<Arc<Seen>>) -> Result<Action, ReconcileError> {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client().clone(), ns());
    let seen = ctx.data().clone();
    finalizer(&api, FINALIZER, cm, move |event| async move {
        match event {
            Event::Apply(cm) => seen
                .applied
                .lock()
                .push(cm.metadata.name.clone().unwrap_or_default()),
            Event::Cleanup(cm) => seen
                .cleaned
                .lock()
                .push(cm.metadata.name.clone().unwrap_or_default()),
        }
        Ok::<_, ReconcileError>(Action::await_change())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizer_is_added_cleanup_runs_on_delete_and_the_object_goes_away() {
    let server = server().await;
    let seen = Arc::new(Seen::default());
    let mut mgr = manager(&server, config()).await;
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .complete(reconcile, seen.clone())
        .unwrap();
    let handle = mgr.shutdown_handle();
    let task = tokio::spawn(mgr.run());

    let api = configmaps(&server);
    create_cm(&server, "guarded", &[]).await;
    eventually("apply ran", || {
        seen.applied.lock().contains(&"guarded".to_owned())
    })
    .await;
    let stored = api.get("guarded").await.unwrap();
    assert_eq!(
        stored.metadata.finalizers,
        Some(vec![FINALIZER.to_owned()]),
        "finalizer added before apply"
    );
    assert!(seen.cleaned.lock().is_empty());

    api.delete("guarded", &DeleteParams::default())
        .await
        .unwrap();
    eventually("cleanup ran", || {
        seen.cleaned.lock().contains(&"guarded".to_owned())
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while api.get_opt("guarded").await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "object still present after cleanup"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen.cleaned.lock().len(), 1, "cleanup ran once");

    handle.shutdown();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_finalizer_patch_is_retried_and_keeps_other_finalizers() {
    let server = server().await;
    let seen = Arc::new(Seen::default());
    let mut mgr = manager(&server, config()).await;
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .complete(reconcile, seen.clone())
        .unwrap();
    // The first finalizer patch fails as if another writer had changed the object meanwhile.
    let Some(faults) = server
        .faults_or_skip("a_conflicting_finalizer_patch_is_retried_and_keeps_other_finalizers")
    else {
        return;
    };
    faults.fail_next(
        1,
        kubeforge_testkit::RequestMatch::new("patch", "configmaps"),
        409,
        None,
    );
    let metrics = mgr.metrics().clone();
    let handle = mgr.shutdown_handle();
    let task = tokio::spawn(mgr.run());

    let api = configmaps(&server);
    let mut guarded = cm("shared-owner", &[]);
    guarded.metadata.finalizers = Some(vec!["example.com/other".to_owned()]);
    api.create(&kube::api::PostParams::default(), &guarded)
        .await
        .unwrap();
    eventually("apply ran after the retried patch", || {
        seen.applied.lock().contains(&"shared-owner".to_owned())
    })
    .await;
    let stored = api.get("shared-owner").await.unwrap();
    assert_eq!(
        stored.metadata.finalizers,
        Some(vec!["example.com/other".to_owned(), FINALIZER.to_owned()]),
        "appended after the other writer's finalizer, not replacing it"
    );
    // The conflict surfaced as one retried error.
    eventually_metrics(
        &metrics,
        &[(
            "controller_runtime_reconcile_errors_total{controller=\"configmap\"}",
            1.0,
        )],
    )
    .await;
    handle.shutdown();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_finalizer_of_an_object_already_gone_is_success() {
    let server = server().await;
    let api = configmaps(&server);
    let mut guarded = cm("stale", &[]);
    guarded.metadata.finalizers = Some(vec![FINALIZER.to_owned()]);
    api.create(&kube::api::PostParams::default(), &guarded)
        .await
        .unwrap();
    api.delete("stale", &DeleteParams::default()).await.unwrap();
    // What a cache could still hold: being deleted, our finalizer on it.
    let stale = Arc::new(api.get("stale").await.unwrap());
    assert!(stale.metadata.deletion_timestamp.is_some());
    // Meanwhile the removal went through and the object is gone.
    let remove = serde_json::json!({"metadata": {"finalizers": null}});
    api.patch(
        "stale",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&remove),
    )
    .await
    .unwrap();
    assert!(api.get_opt("stale").await.unwrap().is_none());

    let cleanups = Arc::new(Mutex::new(0));
    let counted = cleanups.clone();
    let outcome = finalizer(&api, FINALIZER, stale, move |_event| async move {
        *counted.lock() += 1;
        Ok::<_, ReconcileError>(Action::await_change())
    })
    .await;
    assert!(
        outcome.is_ok(),
        "a 404 on removal means done: {:?}",
        outcome.err()
    );
    assert_eq!(*cleanups.lock(), 1);
}

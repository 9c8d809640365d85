//! The manager's HTTP endpoints and its cache-sync timeout.

mod controller_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use controller_support::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kubeforge::controller::{Action, Context, Controller, ReconcileError, Watch};
use kubeforge::manager::{ManagerConfig, ManagerError};
use kubeforge_testkit::RequestMatch;

fn local() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 0)))
}

async fn noop(_cm: Arc<ConfigMap>, _ctx: Context<()>) -> Result<Action, ReconcileError> {
    Ok(Action::await_change())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_in_prometheus_text() {
    let server = server().await;
    let mut mgr = manager(
        &server,
        ManagerConfig {
            metrics_bind_address: local(),
            ..config()
        },
    )
    .await;
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .concurrency(3)
        .complete(noop, ())
        .unwrap();
    let addr = mgr.metrics_addr().expect("metrics address bound");
    let handle = mgr.shutdown_handle();
    let task = tokio::spawn(mgr.run());
    for i in 0..3 {
        create_cm(&server, &format!("m{i}"), &[]).await;
    }
    let success = "controller_runtime_reconcile_total{controller=\"configmap\",result=\"success\"}";
    let active = "controller_runtime_active_workers{controller=\"configmap\"}";
    let depth = "workqueue_depth{name=\"configmap\"}";
    // Wait for every value asserted below: the success counter moves before the worker's
    // active gauge drops, so stopping at the third success alone races the gauge.
    let mut parsed = Default::default();
    for _ in 0..500 {
        let (status, body) = http_get(addr, "/metrics").await;
        assert_eq!(status, 200, "{body}");
        parsed = parse_metrics(&body);
        if parsed.get(success).copied().unwrap_or(0.0) >= 3.0
            && parsed.get(active) == Some(&0.0)
            && parsed.get(depth) == Some(&0.0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        parsed.get(success).copied().unwrap_or(0.0) >= 3.0,
        "{parsed:#?}"
    );
    assert_eq!(
        parsed.get("controller_runtime_max_concurrent_reconciles{controller=\"configmap\"}"),
        Some(&3.0)
    );
    assert_eq!(parsed.get(active), Some(&0.0), "{parsed:#?}");
    assert!(
        parsed
            .get("controller_runtime_reconcile_time_seconds_count{controller=\"configmap\"}")
            .copied()
            .unwrap_or(0.0)
            >= 3.0
    );
    assert!(
        parsed
            .get("workqueue_adds_total{name=\"configmap\"}")
            .copied()
            .unwrap_or(0.0)
            >= 3.0
    );
    assert_eq!(parsed.get(depth), Some(&0.0), "{parsed:#?}");
    assert!(parsed.contains_key("workqueue_queue_duration_seconds_count{name=\"configmap\"}"));
    assert!(parsed.contains_key("workqueue_unfinished_work_seconds{name=\"configmap\"}"));
    assert!(parsed.contains_key("workqueue_longest_running_processor_seconds{name=\"configmap\"}"));
    assert!(
        parsed.contains_key("controller_runtime_reconcile_errors_total{controller=\"configmap\"}")
    );
    handle.shutdown();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_turns_ready_once_caches_sync() {
    let server = server().await;
    let Some(faults) = server.faults_or_skip("readyz_turns_ready_once_caches_sync") else {
        return;
    };
    // The first lists fail, so the cache syncs only after the reflector's backoff.
    faults.fail_next(2, RequestMatch::new("list", "configmaps"), 500, None);
    let mut mgr = manager(
        &server,
        ManagerConfig {
            health_probe_bind_address: local(),
            ..config()
        },
    )
    .await;
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .complete(noop, ())
        .unwrap();
    let addr = mgr.health_probe_addr().expect("probe address bound");
    let handle = mgr.shutdown_handle();
    let task = tokio::spawn(mgr.run());

    let (status, body) = http_get(addr, "/readyz").await;
    assert_eq!(status, 503, "not ready before the cache synced: {body}");
    assert!(
        body.contains("configmap/"),
        "names the unsynced cache: {body}"
    );
    assert_eq!(
        http_get(addr, "/healthz").await.0,
        200,
        "alive while not ready"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = http_get(addr, "/readyz").await;
        if status == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.shutdown();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_sync_timeout_names_the_resource_and_rbac() {
    let server = server().await;
    let Some(faults) = server.faults_or_skip("cache_sync_timeout_names_the_resource_and_rbac")
    else {
        return;
    };
    faults.fail_next(10_000, RequestMatch::new("list", "configmaps"), 403, None);
    let mut mgr = manager(
        &server,
        ManagerConfig {
            cache_sync_timeout: Duration::from_secs(3),
            ..config()
        },
    )
    .await;
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .complete(noop, ())
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(30), mgr.run())
        .await
        .expect("run returns")
        .unwrap_err();
    assert!(
        matches!(err, ManagerError::CacheSyncTimeout { .. }),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains("configmaps"),
        "names the resource: {message}"
    );
    assert!(
        message.contains("RBAC"),
        "names the likely cause: {message}"
    );
}

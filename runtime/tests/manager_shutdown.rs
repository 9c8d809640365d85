//! Graceful shutdown: in-flight reconciles finish; a second request or the timeout aborts them.

mod controller_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use controller_support::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kubeforge::controller::{Action, Context, Controller, ReconcileError, Watch};
use kubeforge::manager::ManagerConfig;
use tokio::time::Instant;

#[derive(Default)]
struct Slow {
    started: AtomicUsize,
    finished: AtomicBool,
}

async fn run_with_slow_reconcile(
    work: Duration,
    config: ManagerConfig,
    requests: usize,
) -> (Arc<Slow>, Duration) {
    let server = server().await;
    let slow = Arc::new(Slow::default());
    let mut mgr = manager(&server, config).await;
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .complete(
            move |_cm: Arc<ConfigMap>, ctx: Context<Arc<Slow>>| async move {
                ctx.data().started.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(work).await;
                ctx.data().finished.store(true, Ordering::SeqCst);
                Ok::<_, ReconcileError>(Action::await_change())
            },
            slow.clone(),
        )
        .unwrap();
    let handle = mgr.shutdown_handle();
    let task = tokio::spawn(mgr.run());
    create_cm(&server, "busy", &[]).await;
    eventually("reconcile in flight", || {
        slow.started.load(Ordering::SeqCst) == 1
    })
    .await;
    let asked = Instant::now();
    for _ in 0..requests {
        handle.shutdown();
    }
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("run returns")
        .unwrap()
        .unwrap();
    (slow, asked.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_reconciles() {
    let (slow, took) = run_with_slow_reconcile(Duration::from_millis(800), config(), 1).await;
    assert!(
        slow.finished.load(Ordering::SeqCst),
        "run returned before the in-flight reconcile finished"
    );
    assert!(took >= Duration::from_millis(500), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_shutdown_request_aborts_in_flight_reconciles() {
    let (slow, took) = run_with_slow_reconcile(Duration::from_secs(60), config(), 2).await;
    assert!(!slow.finished.load(Ordering::SeqCst));
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graceful_timeout_bounds_the_drain() {
    let config = ManagerConfig {
        graceful_shutdown_timeout: Duration::from_millis(300),
        ..config()
    };
    let (slow, took) = run_with_slow_reconcile(Duration::from_secs(60), config, 1).await;
    assert!(!slow.finished.load(Ordering::SeqCst));
    assert!(took < Duration::from_secs(10), "{took:?}");
}

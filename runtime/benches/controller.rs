//! 10 000 ConfigMaps reconciled (no-op) on the embedded API server with 1, 4 and 16 workers.
//!
//! Prints, per concurrency: reconciles per second (from the manager's start, so the initial
//! list is included) and the p50/p99 queue latency — from the moment the controller's event
//! handler enqueued a key to the moment a worker started reconciling it — for the initial-list
//! burst (all 10 000 keys enqueued at once, so the latency is mostly waiting behind the backlog)
//! and for 1 000 later single-object updates (steady state).
//!
//! `cargo bench -p kubeforge --bench controller`

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kubeforge::controller::predicate::Predicate;
use kubeforge::controller::{Action, Context, Controller, ReconcileError, Watch};
use kubeforge::manager::{Manager, ManagerConfig};
use kubeforge_testkit::ApiServer;
use parking_lot::Mutex;
use tokio::time::Instant;

const OBJECTS: usize = 10_000;
const UPDATES: usize = 1_000;

#[derive(Default)]
struct Probe {
    enqueued: Mutex<HashMap<String, Instant>>,
    latencies: Mutex<Vec<Duration>>,
    done: AtomicUsize,
}

async fn reconcile(cm: Arc<ConfigMap>, ctx: Context<Arc<Probe>>) -> Result<Action, ReconcileError> {
    let probe = ctx.data();
    let name = cm.metadata.name.as_deref().unwrap_or_default();
    if let Some(at) = probe.enqueued.lock().remove(name) {
        probe.latencies.lock().push(at.elapsed());
    }
    probe.done.fetch_add(1, Ordering::Relaxed);
    Ok(Action::await_change())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn run_once(
    server: &ApiServer,
    concurrency: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let probe = Arc::new(Probe::default());
    let config = ManagerConfig {
        handle_signals: false,
        ..ManagerConfig::default()
    };
    let mut mgr = Manager::new(server.client(), config).await?;
    let stamp = probe.clone();
    let enqueue_time = Predicate::new(
        move |change: &kubeforge::controller::predicate::Change<'_, ConfigMap>| {
            use kubeforge::controller::predicate::Change;
            if let Change::Create(cm) | Change::Update { new: cm, .. } = change {
                let name = cm.metadata.name.clone().unwrap_or_default();
                stamp
                    .enqueued
                    .lock()
                    .entry(name)
                    .or_insert_with(Instant::now);
            }
            true
        },
    );
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new().with_predicate(enqueue_time))
        .named(format!("bench-{concurrency}"))
        .concurrency(concurrency)
        .complete(reconcile, probe.clone())?;
    let handle = mgr.shutdown_handle();
    let started = Instant::now();
    let task = tokio::spawn(mgr.run());
    while probe.done.load(Ordering::Relaxed) < OBJECTS {
        if started.elapsed() > Duration::from_secs(600) {
            return Err(format!(
                "only {} of {OBJECTS} reconciled in 10 min",
                probe.done.load(Ordering::Relaxed)
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    let mut burst = std::mem::take(&mut *probe.latencies.lock());
    burst.sort();

    // Steady state: UPDATES single-object changes from 8 writers while the queue is mostly idle.
    let mut writers = Vec::new();
    for w in 0..8 {
        let api: kube::Api<ConfigMap> = kube::Api::namespaced(server.client(), "default");
        writers.push(tokio::spawn(async move {
            for i in (w..UPDATES).step_by(8) {
                let patch = serde_json::json!({ "data": { "touched": concurrency.to_string() } });
                let params = kube::api::PatchParams::default();
                api.patch(
                    &format!("cm-{i:05}"),
                    &params,
                    &kube::api::Patch::Merge(&patch),
                )
                .await?;
            }
            Ok::<_, kube::Error>(())
        }));
    }
    for w in writers {
        w.await??;
    }
    while probe.done.load(Ordering::Relaxed) < OBJECTS + UPDATES {
        if started.elapsed() > Duration::from_secs(600) {
            return Err("the updates were not all reconciled within 10 min".into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut steady = std::mem::take(&mut *probe.latencies.lock());
    steady.sort();
    handle.shutdown();
    task.await??;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "concurrency {concurrency:>2}: {OBJECTS} reconciles in {:>6.3} s = {:>6.0} reconciles/s | initial-list burst queue latency p50 {:>7.2} ms, p99 {:>7.2} ms | steady-state ({} updates) p50 {:>6.3} ms, p99 {:>6.3} ms",
        elapsed.as_secs_f64(),
        OBJECTS as f64 / elapsed.as_secs_f64(),
        ms(percentile(&burst, 0.50)),
        ms(percentile(&burst, 0.99)),
        steady.len(),
        ms(percentile(&steady, 0.50)),
        ms(percentile(&steady, 0.99)),
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server = ApiServer::start().await?;
        let objects = (0..OBJECTS)
            .map(|i| {
                serde_json::json!({
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": { "name": format!("cm-{i:05}"), "namespace": "default" },
                    "data": { "index": i.to_string() },
                })
            })
            .collect();
        server.seed("v1", "ConfigMap", objects)?;
        println!(
            "controller benchmark: {OBJECTS} ConfigMaps on the embedded API server, no-op reconcile"
        );
        for concurrency in [1, 4, 16] {
            run_once(&server, concurrency).await?;
        }
        Ok(())
    })
}

//! Controllers against the embedded API server: what triggers a reconcile, and what each
//! reconcile outcome does next.

mod controller_support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use controller_support::*;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;
use kubeforge::controller::{Action, Context, Controller, ReconcileError, Watch, predicate};
use kubeforge::informer::ObjectKey;
use parking_lot::Mutex;
use tokio::time::Instant;

/// What a test's reconcile function saw, in order.
#[derive(Default)]
struct Log {
    calls: Mutex<Vec<(String, Option<String>, Instant)>>,
}

impl Log {
    fn record(&self, cm: &ConfigMap) {
        let value = cm.data.as_ref().and_then(|d| d.get("v").cloned());
        self.calls.lock().push((
            cm.metadata.name.clone().unwrap_or_default(),
            value,
            Instant::now(),
        ));
    }
    fn count(&self, name: &str) -> usize {
        self.calls
            .lock()
            .iter()
            .filter(|(n, _, _)| n == name)
            .count()
    }
    fn saw(&self, name: &str, value: &str) -> bool {
        self.calls
            .lock()
            .iter()
            .any(|(n, v, _)| n == name && v.as_deref() == Some(value))
    }
    fn times(&self, name: &str) -> Vec<Instant> {
        self.calls
            .lock()
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, _, t)| *t)
            .collect()
    }
}

async fn record(cm: Arc<ConfigMap>, ctx: Context<Arc<Log>>) -> Result<Action, ReconcileError> {
    ctx.data().record(&cm);
    Ok(Action::await_change())
}

fn start(
    manager: kubeforge::manager::Manager,
) -> (
    kubeforge::manager::ShutdownHandle,
    tokio::task::JoinHandle<()>,
) {
    let handle = manager.shutdown_handle();
    let task = tokio::spawn(async move { manager.run().await.expect("manager runs cleanly") });
    (handle, task)
}

async fn stop(handle: kubeforge::manager::ShutdownHandle, task: tokio::task::JoinHandle<()>) {
    handle.shutdown();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("manager stops")
        .expect("manager task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciles_primary_on_create_and_update() {
    let server = server().await;
    let log = Arc::new(Log::default());
    let mut mgr = manager(&server, config()).await;
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .complete(record, log.clone())
        .unwrap();
    let (handle, task) = start(mgr);

    create_cm(&server, "a", &[("v", "1")]).await;
    eventually("reconcile of a=1", || log.saw("a", "1")).await;
    set_cm_data(&server, "a", "v", "2").await;
    eventually("reconcile of a=2 after the update", || log.saw("a", "2")).await;
    stop(handle, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciles_owner_when_an_owned_child_changes() {
    let server = server().await;
    let log = Arc::new(Log::default());
    let mut mgr = manager(&server, config()).await;
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .owns::<Secret>(Watch::new())
        .complete(record, log.clone())
        .unwrap();
    let (handle, task) = start(mgr);

    let parent = create_cm(&server, "parent", &[("v", "p")]).await;
    create_cm(&server, "bystander", &[]).await;
    eventually("initial reconcile", || {
        log.count("parent") == 1 && log.count("bystander") == 1
    })
    .await;

    let mut secret = Secret {
        metadata: ObjectMeta {
            name: Some("child".into()),
            namespace: Some(ns().into()),
            ..ObjectMeta::default()
        },
        ..Secret::default()
    };
    kubeforge::controller::owner::set_controller_reference(&parent, &mut secret).unwrap();
    let secrets: Api<Secret> = Api::namespaced(server.client(), ns());
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    eventually("parent reconciled for its child's creation", || {
        log.count("parent") >= 2
    })
    .await;

    // An unowned secret maps to nothing.
    let orphan = Secret {
        metadata: ObjectMeta {
            name: Some("orphan".into()),
            ..ObjectMeta::default()
        },
        ..Secret::default()
    };
    secrets
        .create(&PostParams::default(), &orphan)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        log.count("bystander"),
        1,
        "children map only to their controller owner"
    );
    stop(handle, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciles_keys_returned_by_a_watch_mapper() {
    let server = server().await;
    let log = Arc::new(Log::default());
    let mut mgr = manager(&server, config()).await;
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .watches::<Secret>(Watch::new().labels("notify"), |s: &Secret| {
            let target = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("notify"))
                .cloned();
            target
                .map(|t| ObjectKey::new(s.metadata.namespace.as_deref(), &t))
                .into_iter()
                .collect()
        })
        .complete(record, log.clone())
        .unwrap();
    let (handle, task) = start(mgr);

    create_cm(&server, "target", &[]).await;
    eventually("initial reconcile", || log.count("target") == 1).await;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("s".into()),
            namespace: Some(ns().into()),
            labels: Some([("notify".to_owned(), "target".to_owned())].into()),
            ..ObjectMeta::default()
        },
        ..Secret::default()
    };
    Api::<Secret>::namespaced(server.client(), ns())
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    eventually("target reconciled through the mapper", || {
        log.count("target") >= 2
    })
    .await;
    stop(handle, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predicate_filters_updates() {
    let server = server().await;
    let log = Arc::new(Log::default());
    let mut mgr = manager(&server, config()).await;
    let only_label_changes = predicate::labels_changed::<ConfigMap>();
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new().with_predicate(only_label_changes))
        .complete(record, log.clone())
        .unwrap();
    let (handle, task) = start(mgr);
    create_cm(&server, "p", &[("v", "1")]).await;
    eventually("create passes", || log.count("p") == 1).await;
    set_cm_data(&server, "p", "v", "2").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        log.count("p"),
        1,
        "a data change is filtered out by labels_changed"
    );
    let patch = serde_json::json!({ "metadata": { "labels": { "x": "y" } } });
    configmaps(&server)
        .patch(
            "p",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    eventually("a label change passes", || log.count("p") == 2).await;
    stop(handle, task).await;
}

/// Counts concurrent reconciles per key and overall.
#[derive(Default)]
struct Exclusive {
    in_flight: Mutex<HashSet<String>>,
    overlaps: AtomicUsize,
    current: AtomicUsize,
    peak: AtomicUsize,
    total: AtomicUsize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn never_reconciles_one_key_concurrently_under_load() {
    let server = server().await;
    let state = Arc::new(Exclusive::default());
    let mut mgr = manager(&server, config()).await;
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .concurrency(8)
        .complete(
            |cm: Arc<ConfigMap>, ctx: Context<Arc<Exclusive>>| async move {
                let s = ctx.data();
                let name = cm.metadata.name.clone().unwrap_or_default();
                if !s.in_flight.lock().insert(name.clone()) {
                    s.overlaps.fetch_add(1, Ordering::SeqCst);
                }
                let now = s.current.fetch_add(1, Ordering::SeqCst) + 1;
                s.peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                s.current.fetch_sub(1, Ordering::SeqCst);
                s.in_flight.lock().remove(&name);
                s.total.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ReconcileError>(Action::await_change())
            },
            state.clone(),
        )
        .unwrap();
    let (handle, task) = start(mgr);
    for i in 0..10 {
        create_cm(&server, &format!("k{i}"), &[("v", "0")]).await;
    }
    // Hammer the same ten keys with updates from several writers.
    let mut writers = Vec::new();
    for w in 0..4 {
        let api = configmaps(&server);
        writers.push(tokio::spawn(async move {
            for round in 0..15 {
                let patch = serde_json::json!({ "data": { "v": format!("{w}-{round}") } });
                for i in 0..10 {
                    api.patch(
                        &format!("k{i}"),
                        &kube::api::PatchParams::default(),
                        &kube::api::Patch::Merge(&patch),
                    )
                    .await
                    .unwrap();
                }
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    eventually("the last updates are reconciled", || {
        state.total.load(Ordering::SeqCst) >= 20 && state.current.load(Ordering::SeqCst) == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        state.overlaps.load(Ordering::SeqCst),
        0,
        "a key was reconciled by two workers at once"
    );
    assert!(
        state.peak.load(Ordering::SeqCst) > 1,
        "different keys did run in parallel (peak {})",
        state.peak.load(Ordering::SeqCst)
    );
    stop(handle, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_back_off_exponentially_per_key() {
    let server = server().await;
    let log = Arc::new(Log::default());
    let mut mgr = manager(&server, config()).await;
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .complete(
            |cm: Arc<ConfigMap>, ctx: Context<Arc<Log>>| async move {
                ctx.data().record(&cm);
                Err::<Action, _>(ReconcileError::transient("dependency not ready"))
            },
            log.clone(),
        )
        .unwrap();
    let (handle, task) = start(mgr);
    create_cm(&server, "failing", &[]).await;
    eventually("seven attempts", || log.count("failing") >= 7).await;
    let times = log.times("failing");
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // Default limiter: 5 ms, 10 ms, 20 ms, 40 ms, 80 ms, 160 ms …
    for (i, gap) in gaps.iter().take(6).enumerate() {
        let expected = Duration::from_millis(5 << i);
        assert!(
            *gap >= expected,
            "attempt {} came after {gap:?}, before its backoff {expected:?}; gaps {gaps:?}",
            i + 2
        );
    }
    assert!(gaps[5] >= gaps[0] * 8, "backoff grows: {gaps:?}");
    stop(handle, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeue_after_is_honoured() {
    let server = server().await;
    let log = Arc::new(Log::default());
    let mut mgr = manager(&server, config()).await;
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .complete(
            |cm: Arc<ConfigMap>, ctx: Context<Arc<Log>>| async move {
                ctx.data().record(&cm);
                Ok::<_, ReconcileError>(Action::requeue(Duration::from_millis(400)))
            },
            log.clone(),
        )
        .unwrap();
    let (handle, task) = start(mgr);
    create_cm(&server, "poll", &[]).await;
    eventually("three polls", || log.count("poll") >= 3).await;
    let times = log.times("poll");
    for w in times.windows(2).take(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_millis(400),
            "requeued after {gap:?}, before 400 ms"
        );
        assert!(
            gap < Duration::from_millis(3000),
            "requeue much later than asked: {gap:?}"
        );
    }
    stop(handle, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_errors_are_not_retried_until_the_object_changes() {
    let server = server().await;
    let log = Arc::new(Log::default());
    let mut mgr = manager(&server, config()).await;
    let metrics = mgr.metrics().clone();
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .complete(
            |cm: Arc<ConfigMap>, ctx: Context<Arc<Log>>| async move {
                ctx.data().record(&cm);
                Err::<Action, _>(ReconcileError::terminal("spec is invalid"))
            },
            log.clone(),
        )
        .unwrap();
    let (handle, task) = start(mgr);
    create_cm(&server, "bad", &[("v", "1")]).await;
    eventually("first attempt", || log.count("bad") == 1).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(log.count("bad"), 1, "a terminal error must not be retried");
    set_cm_data(&server, "bad", "v", "2").await;
    eventually("a change reconciles again", || log.saw("bad", "2")).await;
    // Both failed attempts are counted (the counter moves after the reconcile returns).
    eventually_metrics(
        &metrics,
        &[(
            "controller_runtime_reconcile_errors_total{controller=\"configmap\"}",
            2.0,
        )],
    )
    .await;
    assert_eq!(log.count("bad"), 2, "one reconcile per change, no retries");
    stop(handle, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_are_caught_counted_and_retried() {
    let server = server().await;
    let attempts = Arc::new(AtomicUsize::new(0));
    let mut mgr = manager(&server, config()).await;
    let metrics = mgr.metrics().clone();
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .complete(
            |_cm: Arc<ConfigMap>, ctx: Context<Arc<AtomicUsize>>| async move {
                if ctx.data().fetch_add(1, Ordering::SeqCst) < 2 {
                    panic!("reconcile bug");
                }
                Ok::<_, ReconcileError>(Action::await_change())
            },
            attempts.clone(),
        )
        .unwrap();
    let (handle, task) = start(mgr);
    create_cm(&server, "panicky", &[]).await;
    eventually("third attempt succeeds", || {
        attempts.load(Ordering::SeqCst) >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        3,
        "no retry after the success"
    );
    eventually_metrics(
        &metrics,
        &[
            (
                "controller_runtime_reconcile_panics_total{controller=\"configmap\"}",
                2.0,
            ),
            (
                "controller_runtime_reconcile_total{controller=\"configmap\",result=\"success\"}",
                1.0,
            ),
        ],
    )
    .await;
    stop(handle, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_reconciles_time_out_and_retry() {
    let server = server().await;
    let attempts = Arc::new(AtomicUsize::new(0));
    let mut mgr = manager(&server, config()).await;
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .reconcile_timeout(Duration::from_millis(100))
        .complete(
            |_cm: Arc<ConfigMap>, ctx: Context<Arc<AtomicUsize>>| async move {
                if ctx.data().fetch_add(1, Ordering::SeqCst) == 0 {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                Ok::<_, ReconcileError>(Action::await_change())
            },
            attempts.clone(),
        )
        .unwrap();
    let (handle, task) = start(mgr);
    create_cm(&server, "slow", &[]).await;
    eventually("retried after the timeout", || {
        attempts.load(Ordering::SeqCst) >= 2
    })
    .await;
    stop(handle, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misuse_is_reported_at_build() {
    let server = server().await;
    let mut mgr = manager(&server, config()).await;
    let log = Arc::new(Log::default());
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .complete(record, log.clone())
        .unwrap();
    let err = Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .complete(record, log.clone())
        .unwrap_err();
    assert!(err.to_string().contains("already registered"), "{err}");
    let err = Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .named("zero")
        .concurrency(0)
        .complete(record, log.clone())
        .unwrap_err();
    assert!(
        err.to_string().contains("concurrency must be at least 1"),
        "{err}"
    );
    let err = Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .named("twice")
        .owns::<Secret>(Watch::new())
        .owns::<Secret>(Watch::new())
        .complete(record, log)
        .unwrap_err();
    assert!(err.to_string().contains("twice"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_and_label_scoping_limit_what_is_reconciled() {
    use k8s_openapi::api::core::v1::Namespace;
    let server = server().await;
    let namespaces: Api<Namespace> = Api::all(server.client());
    let team = Namespace {
        metadata: ObjectMeta {
            name: Some("team-a".into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    namespaces
        .create(&PostParams::default(), &team)
        .await
        .unwrap();
    let log = Arc::new(Log::default());
    let mut mgr = manager(&server, config()).await;
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new().labels("managed=yes"))
        .namespace("team-a")
        .complete(record, log.clone())
        .unwrap();
    let (handle, task) = start(mgr);
    let in_team = Api::<ConfigMap>::namespaced(server.client(), "team-a");
    let labelled = |name: &str, ns: &str| {
        let mut c = cm(name, &[]);
        c.metadata.namespace = Some(ns.into());
        c.metadata.labels = Some([("managed".to_owned(), "yes".to_owned())].into());
        c
    };
    in_team
        .create(&PostParams::default(), &labelled("in-scope", "team-a"))
        .await
        .unwrap();
    let mut unlabelled = labelled("unlabelled", "team-a");
    unlabelled.metadata.labels = None;
    in_team
        .create(&PostParams::default(), &unlabelled)
        .await
        .unwrap();
    configmaps(&server)
        .create(&PostParams::default(), &labelled("other-ns", ns()))
        .await
        .unwrap();
    eventually("the in-scope object is reconciled", || {
        log.count("in-scope") == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(log.count("unlabelled"), 0, "the label selector applies");
    assert_eq!(log.count("other-ns"), 0, "the namespace applies");
    stop(handle, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controllers_of_one_manager_share_one_informer_per_type() {
    let server = server().await;
    let (first, second) = (Arc::new(Log::default()), Arc::new(Log::default()));
    let mut mgr = manager(&server, config()).await;
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .named("first")
        .complete(record, first.clone())
        .unwrap();
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .named("second")
        .owns::<Secret>(Watch::new())
        .complete(record, second.clone())
        .unwrap();
    let (handle, task) = start(mgr);
    create_cm(&server, "shared", &[]).await;
    eventually("both controllers reconcile", || {
        first.count("shared") == 1 && second.count("shared") == 1
    })
    .await;
    if let Some(faults) = server.faults_or_skip(
        "controllers_of_one_manager_share_one_informer_per_type (its request counts)",
    ) {
        assert_eq!(
            faults.request_count("list", Some("configmaps")),
            1,
            "one list for two controllers"
        );
        assert_eq!(faults.request_count("list", Some("secrets")), 1);
    }
    stop(handle, task).await;
}

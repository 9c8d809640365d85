//! Two managers on one Lease: only the leader reconciles; when it stops renewing, the other takes
//! over within the lease duration; a leader whose lease is taken stops its controllers.

mod controller_support;

use std::sync::Arc;
use std::time::Duration;

use controller_support::*;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::PostParams;
use kubeforge::controller::{Action, Context, Controller, ReconcileError, Watch};
use kubeforge::manager::LeaderElectionConfig;
use kubeforge::manager::{Manager, ManagerConfig};

use parking_lot::Mutex;
use tokio::time::Instant;

const LEASE: Duration = Duration::from_secs(3);
const RENEW: Duration = Duration::from_secs(2);
const RETRY: Duration = Duration::from_millis(300);

type Seen = Arc<Mutex<Vec<(String, String)>>>;

async fn elected_manager(server: &TestServer, identity: &str, seen: &Seen) -> Manager {
    let lease = LeaderElectionConfig::new(ns(), "test-operator-leader")
        .identity(identity)
        .timing(LEASE, RENEW, RETRY);
    let mut mgr = manager(
        server,
        ManagerConfig {
            leader_election: Some(lease),
            ..config()
        },
    )
    .await;
    let who = identity.to_owned();
    Controller::managed_by(&mut mgr)
        .for_::<ConfigMap>(Watch::new())
        .complete(
            move |cm: Arc<ConfigMap>, ctx: Context<Seen>| {
                let who = who.clone();
                async move {
                    ctx.data()
                        .lock()
                        .push((who, cm.metadata.name.clone().unwrap_or_default()));
                    Ok::<_, ReconcileError>(Action::await_change())
                }
            },
            seen.clone(),
        )
        .unwrap();
    mgr
}

fn reconcilers(seen: &Seen) -> Vec<String> {
    let mut who: Vec<String> = seen.lock().iter().map(|(w, _)| w.clone()).collect();
    who.sort();
    who.dedup();
    who
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_reconciles_and_the_follower_takes_over() {
    let server = server().await;
    let seen: Seen = Arc::default();
    let a = tokio::spawn(elected_manager(&server, "a", &seen).await.run());
    // Give `a` the lease first, so the roles are known.
    let leases: Api<Lease> = Api::namespaced(server.client(), ns());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let holder = leases
            .get_opt("test-operator-leader")
            .await
            .unwrap()
            .and_then(|l| l.spec?.holder_identity);
        if holder.as_deref() == Some("a") {
            break;
        }
        assert!(Instant::now() < deadline, "a never acquired the lease");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let b = tokio::spawn(elected_manager(&server, "b", &seen).await.run());
    for i in 0..5 {
        create_cm(&server, &format!("c{i}"), &[]).await;
    }
    eventually("the leader reconciled all", || seen.lock().len() >= 5).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        reconcilers(&seen),
        vec!["a".to_owned()],
        "only the leader reconciles"
    );

    // The leader dies without releasing: nobody renews any more.
    a.abort();
    let died = Instant::now();
    seen.lock().clear();
    create_cm(&server, "after", &[]).await;
    eventually("the follower reconciles", || {
        seen.lock().iter().any(|(w, _)| w == "b")
    })
    .await;
    let takeover = died.elapsed();
    assert!(
        takeover <= LEASE + RETRY * 2 + Duration::from_millis(500),
        "took over after {takeover:?}"
    );
    assert_eq!(reconcilers(&seen), vec!["b".to_owned()]);
    b.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_loses_its_lease_stops_its_controllers() {
    let server = server().await;
    let seen: Seen = Arc::default();
    let a = elected_manager(&server, "a", &seen).await;
    let a_metrics = a.metrics().clone();
    let a = tokio::spawn(a.run());
    create_cm(&server, "first", &[]).await;
    eventually("the leader reconciles", || !seen.lock().is_empty()).await;

    // Someone else takes the lease by force; `a` can no longer renew. `a` renews every RETRY, so
    // a write based on an older read may conflict: read again and retry.
    let leases: Api<Lease> = Api::namespaced(server.client(), ns());
    loop {
        let mut lease = leases.get("test-operator-leader").await.unwrap();
        let spec = lease.spec.get_or_insert_with(Default::default);
        spec.holder_identity = Some("intruder".into());
        spec.lease_duration_seconds = Some(3600);
        spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
            k8s_openapi::jiff::Timestamp::now(),
        ));
        match leases
            .replace("test-operator-leader", &PostParams::default(), &lease)
            .await
        {
            Ok(_) => break,
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(err) => panic!("taking the lease over: {err}"),
        }
    }

    let result = tokio::time::timeout(Duration::from_secs(20), a)
        .await
        .expect("run returns after losing the lease")
        .unwrap();
    let err = result.unwrap_err();
    assert!(err.to_string().contains("lost leadership"), "{err}");
    // `run` returns only once its controllers have drained (and its informers have stopped), so
    // checking for reconciles after it returned could not fail. Check instead that `a` no longer
    // reports itself as leader, and left the lease to the process that took it.
    let status = "leader_election_master_status{name=\"test-operator-leader\"}";
    assert_eq!(parse_metrics(&a_metrics.encode()).get(status), Some(&0.0));
    let holder = leases
        .get("test-operator-leader")
        .await
        .unwrap()
        .spec
        .and_then(|s| s.holder_identity);
    assert_eq!(
        holder.as_deref(),
        Some("intruder"),
        "a lost lease is not released"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_shutting_down_releases_the_lease_for_an_immediate_takeover() {
    let server = server().await;
    let seen: Seen = Arc::default();
    let a = elected_manager(&server, "a", &seen).await;
    let a_metrics = a.metrics().clone();
    let a_handle = a.shutdown_handle();
    let a_task = tokio::spawn(a.run());
    create_cm(&server, "first", &[]).await;
    eventually("a leads and reconciles", || !seen.lock().is_empty()).await;
    let status = "leader_election_master_status{name=\"test-operator-leader\"}";
    eventually_metrics(&a_metrics, &[(status, 1.0)]).await;

    let b = tokio::spawn(elected_manager(&server, "b", &seen).await.run());
    tokio::time::sleep(RETRY * 2).await;
    a_handle.shutdown();
    let released = Instant::now();
    tokio::time::timeout(Duration::from_secs(20), a_task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(parse_metrics(&a_metrics.encode()).get(status), Some(&0.0));
    let leases: Api<Lease> = Api::namespaced(server.client(), ns());
    eventually_async_holder(&leases, "b").await;
    let takeover = released.elapsed();
    assert!(
        takeover < LEASE,
        "released lease taken over after {takeover:?}, not after expiry"
    );
    b.abort();
}

async fn eventually_async_holder(leases: &Api<Lease>, who: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let holder = leases
            .get_opt("test-operator-leader")
            .await
            .unwrap()
            .and_then(|l| l.spec?.holder_identity);
        if holder.as_deref() == Some(who) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{who} never acquired the lease (holder {holder:?})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Records that it started on `who`, and runs until stopped.
struct Everywhere {
    who: String,
    started: Arc<Mutex<Vec<String>>>,
}

impl kubeforge::manager::Runnable for Everywhere {
    fn name(&self) -> &str {
        "everywhere"
    }

    fn needs_leader_election(&self) -> bool {
        false
    }

    fn start(
        self: Box<Self>,
        stop: tokio_util::sync::CancellationToken,
    ) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(async move {
            self.started.lock().push(self.who.clone());
            stop.cancelled().await;
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runnable_that_needs_no_lease_runs_on_the_follower_too() {
    let server = server().await;
    let seen: Seen = Arc::default();
    let started: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut handles = Vec::new();
    for who in ["a", "b"] {
        let mut mgr = elected_manager(&server, who, &seen).await;
        mgr.add(Everywhere {
            who: who.to_owned(),
            started: started.clone(),
        });
        handles.push(tokio::spawn(mgr.run()));
    }
    create_cm(&server, "one", &[]).await;
    eventually("the leader reconciled", || !seen.lock().is_empty()).await;
    eventually("both replicas started the runnable", || {
        started.lock().len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        reconcilers(&seen).len(),
        1,
        "still only the leader reconciles"
    );
    let mut who = started.lock().clone();
    who.sort();
    assert_eq!(who, ["a", "b"]);
    for h in handles {
        h.abort();
    }
}

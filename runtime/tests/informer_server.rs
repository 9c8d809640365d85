//! The informer against an API server over real HTTP — the embedded one, or with
//! `KUBEFORGE_TEST_BACKEND=control-plane` a real kube-apiserver (then one test at a time, each in
//! its own namespaces) — with faults: dropped connections and an unreachable server while
//! objects are deleted and the history compacted (a [`CuttableProxy`] between the informer and
//! the server, on both backends; a broken watch stream makes the reflector relist, as client-go's
//! does, and a re-watch from a compacted version gets 410), and on the embedded server also 410 as
//! an ERROR event, 500s and 429s. After quiescence the cache equals the server's list and every
//! handler saw a consistent per-key sequence.
//!
//! [`CuttableProxy`]: kubeforge_testkit::proxy::CuttableProxy

mod informer_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use informer_support::{Checker, cache_view, eventually, objects_view};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{ApiResource, DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::{Api, Client};
use kubeforge::informer::BackoffConfig;
use kubeforge::informer::{HandlerFns, InformerFactory, InformerOptions};
use kubeforge::informer::{Indexers, LABEL_INDEX, NAMESPACE_INDEX, label_index};
use kubeforge_testkit::{RequestMatch, TestCluster};
use serde_json::json;

fn cm(ns: &str, name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        data: Some([("v".to_string(), "0".to_string())].into()),
        ..Default::default()
    }
}

async fn create_ns(client: &Client, name: &str) {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
}

/// The cluster under test: the embedded server, or the shared real kube-apiserver (without its
/// watch cache, so etcd compaction shows as 410 on a re-watch).
async fn cluster() -> TestCluster {
    TestCluster::from_env_uncached()
        .await
        .expect("the API server under test starts")
}

/// `n` namespaces for a test: `default` and then the given names on the embedded server (a
/// server per test), fresh uniquely named ones on a shared real server.
async fn namespaces(cluster: &TestCluster, names: &[&str]) -> Vec<String> {
    let client = cluster.client();
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        if cluster.faults().is_none() {
            let ns = kubeforge_testkit::cluster::unique_namespace(&client)
                .await
                .expect("a namespace for the test");
            out.push(ns);
        } else if i == 0 {
            out.push("default".to_owned());
        } else {
            create_ns(&client, name).await;
            out.push((*name).to_owned());
        }
    }
    out
}

/// Records that part of a test ran only on the embedded server.
fn skipped_part(test: &str, reason: &str) {
    kubeforge_testkit::cluster::record_skip(&format!("runtime::informer_server::{test}"), reason);
}

async fn bump(api: &Api<ConfigMap>, name: &str, value: usize) {
    let mut o = api.get(name).await.expect("get");
    o.data = Some([("v".to_string(), value.to_string())].into());
    o.metadata.managed_fields = None;
    api.replace(name, &PostParams::default(), &o)
        .await
        .expect("replace");
}

/// The server's list of the ConfigMaps labelled `selector` (retried: injected list faults may
/// still be pending for us).
async fn server_view(client: &Client, selector: &str) -> informer_support::View {
    let api = Api::<ConfigMap>::all(client.clone());
    for _ in 0..20 {
        if let Ok(list) = api.list(&ListParams::default().labels(selector)).await {
            return objects_view(list.items.iter());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server kept failing lists");
}

fn fast_backoff() -> InformerOptions {
    InformerOptions::default().backoff(BackoffConfig {
        initial: Duration::from_millis(300),
        cap: Duration::from_secs(2),
        ..BackoffConfig::default()
    })
}

/// On the embedded server, the faults only its handle can make: a 410 as an ERROR event on an open
/// watch, failing lists and throttled watches, another compaction and a cut. Recorded as a
/// skipped part on a real server.
async fn inject_faults(
    faults: Option<&kubeforge_testkit::Faults>,
    default: &Api<ConfigMap>,
    proxy: &kubeforge_testkit::proxy::CuttableProxy,
) {
    if let Some(faults) = faults {
        // 410 as an ERROR event on an open watch.
        assert!(eventually(Duration::from_secs(10), || faults.open_watches() > 0).await);
        faults.expire_watches();
        default
            .delete("cm10", &DeleteParams::default())
            .await
            .expect("delete");
        // Failing lists and throttled watches.
        faults.fail_next(2, RequestMatch::new("list", "configmaps"), 500, None);
        faults.fail_next(2, RequestMatch::new("watch", "configmaps"), 429, Some(1));
        faults.compact();
        proxy.cut();
    } else {
        skipped_part(
            "cache_and_handlers_converge_through_dropped_watches_compaction_and_errors",
            "410 as an ERROR event, injected 500s and 429s need the embedded server's fault handle; the dropped connections, the outage and the etcd compaction ran on the real kube-apiserver",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_and_handlers_converge_through_dropped_watches_compaction_and_errors() {
    informer_support::init_tracing();
    let cluster = cluster().await;
    // The informer reaches the server through a proxy the test can cut; the test's own writes
    // go direct.
    let (proxy, informer_client) = cluster.proxied_client().await.expect("a proxied client");
    let client = cluster.client();
    let faults = cluster.faults();
    let ns = namespaces(&cluster, &["default", "other"]).await;
    let default: Api<ConfigMap> = Api::namespaced(client.clone(), &ns[0]);
    let other: Api<ConfigMap> = Api::namespaced(client.clone(), &ns[1]);
    // Only this test's objects, so a shared real server's other ConfigMaps stay out of it.
    let suite = format!("suite=informer-{}", &ns[1]);
    let label = [("suite", &suite["suite=".len()..]), ("app", "web")];
    for i in 0..20 {
        let api = if i % 2 == 0 { &default } else { &other };
        api.create(&PostParams::default(), &cm("", &format!("cm{i}"), &label))
            .await
            .expect("create");
    }

    let factory = InformerFactory::with_options(informer_client, fast_backoff());
    let informer = factory.informer::<ConfigMap>(InformerOptions::default().labels(&suite));
    let hook_calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let hc = hook_calls.clone();
    informer
        .set_watch_error_handler(Arc::new(move |_err| {
            hc.fetch_add(1, Ordering::Relaxed);
        }))
        .expect("hook before start");
    informer
        .add_indexers(Indexers::new().with(LABEL_INDEX, label_index::<ConfigMap>))
        .expect("add the label index");
    let fast = Arc::new(Checker::default());
    let slow = Arc::new(Checker::slow(Duration::from_millis(5)));
    let fast_reg = informer.add_event_handler(fast.clone()).expect("register");
    informer.add_event_handler(slow.clone()).expect("register");
    factory.start();
    assert!(
        factory.wait_for_cache_sync(Duration::from_secs(20)).await,
        "informer did not sync"
    );
    assert!(eventually(Duration::from_secs(10), || fast_reg.has_synced()).await);
    assert_eq!(informer.lister().len(), 20);
    assert_eq!(
        informer
            .lister()
            .by_index(NAMESPACE_INDEX, &ns[1])
            .unwrap()
            .len(),
        10
    );

    // Live changes.
    for i in 0..10 {
        bump(&default, &format!("cm{}", i * 2), 1).await;
    }
    default
        .delete("cm0", &DeleteParams::default())
        .await
        .expect("delete");

    // A dropped connection: re-watch from the last version, nothing lost.
    assert!(
        eventually(Duration::from_secs(10), || proxy.cut() > 0).await,
        "the informer's watch runs through the proxy"
    );
    default
        .create(&PostParams::default(), &cm("", "after-close", &label))
        .await
        .expect("create");

    // The server out of reach while objects are deleted and the history compacted: the
    // re-watch from the old version gets 410, the informer relists, and what vanished meanwhile
    // comes out as tombstones.
    proxy.down().await;
    for name in ["cm4", "cm6", "cm8"] {
        default
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete");
    }
    bump(&default, "cm2", 2).await;
    assert!(
        cluster.compact().await.expect("compact the history"),
        "this backend can compact"
    );
    proxy.up().await.expect("the proxy listens again");

    inject_faults(faults.as_ref(), &default, &proxy).await;
    other
        .delete("cm1", &DeleteParams::default())
        .await
        .expect("delete");
    bump(&other, "cm3", 7).await;

    let want = server_view(&client, &suite).await;
    let lister = informer.lister();
    let converged = eventually(Duration::from_secs(40), || {
        cache_view(&lister) == want && fast.view() == want && slow.view() == want
    })
    .await;
    assert!(
        converged,
        "did not converge:\n server {want:?}\n cache  {:?}\n fast   {:?}\n slow   {:?}",
        cache_view(&lister),
        fast.view(),
        slow.view()
    );
    for c in [&fast, &slow] {
        assert_eq!(c.violations(), Vec::<String>::new());
    }
    assert!(
        fast.tombstones.load(Ordering::Relaxed) >= 3,
        "deletes while the server was out of reach should arrive as tombstones"
    );
    assert!(
        hook_calls.load(Ordering::Relaxed) > 0,
        "the outage and the 410 reached the watch-error hook"
    );
    if let Some(faults) = &faults {
        assert!(
            faults.request_count("list", Some("configmaps")) >= 3,
            "relists happened"
        );
    }
    // The label index followed every change.
    assert_eq!(
        lister.index_keys(LABEL_INDEX, "app=web").unwrap().len(),
        want.len()
    );
    factory.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_handler_does_not_hold_back_a_fast_one() {
    informer_support::init_tracing();
    let cluster = cluster().await;
    let client = cluster.client();
    let ns = namespaces(&cluster, &["default"]).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns[0]);
    let factory = InformerFactory::new(client.clone());
    // Only this test's objects (a real namespace also holds kube-root-ca.crt).
    let informer = factory.informer::<ConfigMap>(
        InformerOptions::default()
            .namespace(&ns[0])
            .labels("suite=slow-handler"),
    );
    // The slow handler blocks until `held` is dropped.
    let (held, gate) = std::sync::mpsc::channel::<()>();
    let gate = parking_lot::Mutex::new(gate);
    let slow_seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let s = slow_seen.clone();
    informer
        .add_event_handler(HandlerFns::new().on_add(move |_o: Arc<ConfigMap>, _| {
            let _ = gate.lock().recv();
            s.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
    let fast = Arc::new(Checker::default());
    informer.add_event_handler(fast.clone()).unwrap();
    factory.start();
    for i in 0..50 {
        let labels = [("suite", "slow-handler")];
        api.create(&PostParams::default(), &cm("", &format!("x{i}"), &labels))
            .await
            .unwrap();
    }
    assert!(
        eventually(Duration::from_secs(20), || fast.adds.load(Ordering::SeqCst)
            == 50)
        .await,
        "the fast handler should get every add while the slow one is blocked"
    );
    assert_eq!(
        slow_seen.load(Ordering::SeqCst),
        0,
        "the slow handler is still blocked"
    );
    drop(held);
    assert!(
        eventually(Duration::from_secs(20), || slow_seen.load(Ordering::SeqCst)
            == 50)
        .await
    );
    factory.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_metadata_dynamic_and_streaming_informers_see_their_slice() {
    informer_support::init_tracing();
    let cluster = cluster().await;
    let client = cluster.client();
    let faults = cluster.faults();
    let ns = namespaces(&cluster, &["default", "team"]).await;
    let (home, team_ns) = (ns[0].as_str(), ns[1].as_str());
    let team: Api<ConfigMap> = Api::namespaced(client.clone(), team_ns);
    let default: Api<ConfigMap> = Api::namespaced(client.clone(), home);
    // Every object carries the test's `suite` label, and every cluster-wide informer selects on
    // it, so a shared real server's other ConfigMaps stay out.
    let suite = format!("suite-{team_ns}");
    let (db, web) = (
        [("tier", "db"), ("suite", &*suite)],
        [("tier", "web"), ("suite", &*suite)],
    );
    team.create(&PostParams::default(), &cm("", "a", &db))
        .await
        .unwrap();
    team.create(&PostParams::default(), &cm("", "b", &web))
        .await
        .unwrap();
    default
        .create(&PostParams::default(), &cm("", "c", &db))
        .await
        .unwrap();

    let factory = InformerFactory::new(client.clone());
    let scoped = factory.informer::<ConfigMap>(
        InformerOptions::default()
            .namespace(team_ns)
            .labels(format!("suite={suite}")),
    );
    let same = factory.informer::<ConfigMap>(
        InformerOptions::default()
            .namespace(team_ns)
            .labels(format!("suite={suite}")),
    );
    let labelled = factory
        .informer::<ConfigMap>(InformerOptions::default().labels(format!("tier=db,suite={suite}")));
    let meta = factory.metadata_informer::<ConfigMap>(
        InformerOptions::default().labels(format!("suite={suite}")),
    );
    let ar = ApiResource::erase::<ConfigMap>(&());
    let dynamic = factory.dynamic_informer(
        &ar,
        InformerOptions::default()
            .namespace(home)
            .labels(format!("suite={suite}")),
    );
    factory.start();
    assert!(factory.wait_for_cache_sync(Duration::from_secs(20)).await);

    let names = |keys: Vec<kubeforge::informer::ObjectKey>| {
        let mut names: Vec<_> = keys.iter().map(|k| k.to_string()).collect();
        names.sort();
        names
    };
    let key = |ns: &str, name: &str| format!("{ns}/{name}");
    assert_eq!(
        names(scoped.lister().list_keys()),
        [key(team_ns, "a"), key(team_ns, "b")]
    );
    assert_eq!(
        names(same.lister().list_keys()),
        [key(team_ns, "a"), key(team_ns, "b")],
        "one shared informer"
    );
    let mut want_db = vec![key(home, "c"), key(team_ns, "a")];
    want_db.sort();
    assert_eq!(names(labelled.lister().list_keys()), want_db);
    assert_eq!(meta.lister().len(), 3);
    assert!(
        meta.lister()
            .get(Some(team_ns), "a")
            .unwrap()
            .metadata
            .labels
            .is_some()
    );
    let dyn_c = dynamic.lister().get(Some(home), "c").unwrap();
    assert_eq!(dyn_c.data["data"]["v"], json!("0"));
    factory.shutdown().await;

    // Streaming initial list (KEP-3157): on the embedded server, no list request at all; on a
    // real kube-apiserver, whatever it answers (it may refuse and the informer then lists).
    let lists_before = faults
        .as_ref()
        .map(|f| f.request_count("list", Some("configmaps")));
    let streaming = InformerFactory::new(client.clone());
    let s = streaming.informer::<ConfigMap>(
        InformerOptions::default()
            .streaming_list(true)
            .labels(format!("suite={suite}")),
    );
    streaming.start();
    assert!(streaming.wait_for_cache_sync(Duration::from_secs(20)).await);
    assert_eq!(s.lister().len(), 3);
    if let Some(faults) = &faults {
        assert_eq!(
            Some(faults.request_count("list", Some("configmaps"))),
            lists_before
        );
    }
    default
        .create(&PostParams::default(), &cm("", "d", &[("suite", &*suite)]))
        .await
        .unwrap();
    assert!(eventually(Duration::from_secs(10), || s.lister().len() == 4).await);
    streaming.shutdown().await;
}

/// A custom resource type from `kube::CustomResource`, as an operator defines it.
#[derive(
    kube::CustomResource, serde::Serialize, serde::Deserialize, Clone, Debug, schemars::JsonSchema,
)]
#[kube(
    group = "example.kubeforge.dev",
    version = "v1",
    kind = "Widget",
    namespaced
)]
pub struct WidgetSpec {
    size: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn derived_custom_resources_are_informed_like_built_in_kinds() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::CustomResourceExt;
    informer_support::init_tracing();
    let cluster = cluster().await;
    let client = cluster.client();
    let ns = namespaces(&cluster, &["default"]).await;
    match Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &Widget::crd())
        .await
    {
        Ok(_) => {}
        // A shared real server may have it from an earlier run of this test.
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("install the Widget CRD: {e}"),
    }
    let widgets: Api<Widget> = Api::namespaced(client.clone(), &ns[0]);
    let mut created = false;
    for _ in 0..100 {
        if widgets
            .create(
                &PostParams::default(),
                &Widget::new("w1", WidgetSpec { size: 3 }),
            )
            .await
            .is_ok()
        {
            created = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(created, "the CRD never became servable");
    let factory = InformerFactory::new(client.clone());
    let informer = factory.informer::<Widget>(InformerOptions::default().namespace(&ns[0]));
    let seen = Arc::new(Checker::default());
    informer.add_event_handler(seen.clone()).unwrap();
    factory.start();
    assert!(factory.wait_for_cache_sync(Duration::from_secs(20)).await);
    let w = informer
        .lister()
        .get(Some(&ns[0]), "w1")
        .expect("cached widget");
    assert_eq!(w.spec.size, 3);
    widgets
        .delete("w1", &DeleteParams::default())
        .await
        .expect("delete widget");
    assert!(eventually(Duration::from_secs(10), || informer.lister().is_empty()).await);
    assert!(
        eventually(Duration::from_secs(10), || seen
            .deletes
            .load(Ordering::Relaxed)
            == 1)
        .await
    );
    assert_eq!(seen.violations(), Vec::<String>::new());
    factory.shutdown().await;
}

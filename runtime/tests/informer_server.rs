//! The informer against the embedded API server (real HTTP), with faults: dropped watches,
//! compaction (410 as an HTTP status and as an ERROR event), 500s, 429s and slow handlers.
//! After quiescence the cache equals the server's list and every handler saw a consistent
//! per-key sequence.

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
use kubeforge_testkit::{ApiServer, RequestMatch};
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

async fn bump(api: &Api<ConfigMap>, name: &str, value: usize) {
    let mut o = api.get(name).await.expect("get");
    o.data = Some([("v".to_string(), value.to_string())].into());
    o.metadata.managed_fields = None;
    api.replace(name, &PostParams::default(), &o)
        .await
        .expect("replace");
}

/// The server's list (retried: injected list faults may still be pending for us).
async fn server_view(client: &Client) -> informer_support::View {
    let api = Api::<ConfigMap>::all(client.clone());
    for _ in 0..20 {
        if let Ok(list) = api.list(&ListParams::default()).await {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_and_handlers_converge_through_dropped_watches_compaction_and_errors() {
    informer_support::init_tracing();
    let server = ApiServer::start()
        .await
        .expect("start the embedded API server");
    let client = server.client();
    let faults = server.faults();
    create_ns(&client, "other").await;
    let default: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let other: Api<ConfigMap> = Api::namespaced(client.clone(), "other");
    for i in 0..20 {
        let api = if i % 2 == 0 { &default } else { &other };
        api.create(
            &PostParams::default(),
            &cm("", &format!("cm{i}"), &[("app", "web")]),
        )
        .await
        .expect("create");
    }

    let factory = InformerFactory::with_options(client.clone(), fast_backoff());
    let informer = factory.informer::<ConfigMap>(InformerOptions::default());
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
            .by_index(NAMESPACE_INDEX, "other")
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

    // A dropped watch: re-watch from the last version, nothing lost.
    faults.close_watches();
    default
        .create(&PostParams::default(), &cm("", "after-close", &[]))
        .await
        .expect("create");

    // Compaction, then a dropped watch: the re-watch gets HTTP 410 and the informer relists.
    faults.compact();
    faults.close_watches();
    bump(&default, "cm2", 2).await;

    // 410 as an ERROR event; objects deleted while the informer backs off come back as tombstones.
    assert!(eventually(Duration::from_secs(10), || faults.open_watches() > 0).await);
    faults.expire_watches();
    for name in ["cm4", "cm6", "cm8"] {
        default
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete");
    }

    // Failing lists and throttled watches.
    faults.fail_next(2, RequestMatch::new("list", "configmaps"), 500, None);
    faults.fail_next(2, RequestMatch::new("watch", "configmaps"), 429, Some(1));
    faults.compact();
    faults.close_watches();
    other
        .delete("cm1", &DeleteParams::default())
        .await
        .expect("delete");
    bump(&other, "cm3", 7).await;

    let want = server_view(&client).await;
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
        fast.tombstones.load(Ordering::Relaxed) > 0,
        "deletes during the backoff after an expired watch should arrive as tombstones"
    );
    assert!(
        faults.request_count("list", Some("configmaps")) >= 3,
        "relists happened"
    );
    // The label index followed every change.
    assert_eq!(
        lister.index_keys(LABEL_INDEX, "app=web").unwrap().len(),
        want.keys().filter(|k| k.contains("/cm")).count()
    );
    factory.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_handler_does_not_hold_back_a_fast_one() {
    informer_support::init_tracing();
    let server = ApiServer::start().await.expect("start");
    let client = server.client();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let factory = InformerFactory::new(client.clone());
    let informer = factory.informer::<ConfigMap>(InformerOptions::default().namespace("default"));
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
        api.create(&PostParams::default(), &cm("", &format!("x{i}"), &[]))
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
    let server = ApiServer::start().await.expect("start");
    let client = server.client();
    let faults = server.faults();
    create_ns(&client, "team").await;
    let team: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let default: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    team.create(&PostParams::default(), &cm("", "a", &[("tier", "db")]))
        .await
        .unwrap();
    team.create(&PostParams::default(), &cm("", "b", &[("tier", "web")]))
        .await
        .unwrap();
    default
        .create(&PostParams::default(), &cm("", "c", &[("tier", "db")]))
        .await
        .unwrap();

    let factory = InformerFactory::new(client.clone());
    let scoped = factory.informer::<ConfigMap>(InformerOptions::default().namespace("team"));
    let same = factory.informer::<ConfigMap>(InformerOptions::default().namespace("team"));
    let labelled = factory.informer::<ConfigMap>(InformerOptions::default().labels("tier=db"));
    let meta = factory.metadata_informer::<ConfigMap>(InformerOptions::default());
    let ar = ApiResource::erase::<ConfigMap>(&());
    let dynamic = factory.dynamic_informer(&ar, InformerOptions::default().namespace("default"));
    factory.start();
    assert!(factory.wait_for_cache_sync(Duration::from_secs(20)).await);

    let names = |keys: Vec<kubeforge::informer::ObjectKey>| {
        keys.iter().map(|k| k.to_string()).collect::<Vec<_>>()
    };
    assert_eq!(names(scoped.lister().list_keys()), ["team/a", "team/b"]);
    assert_eq!(
        names(same.lister().list_keys()),
        ["team/a", "team/b"],
        "one shared informer"
    );
    assert_eq!(
        names(labelled.lister().list_keys()),
        ["default/c", "team/a"]
    );
    assert_eq!(meta.lister().len(), 3);
    assert!(
        meta.lister()
            .get(Some("team"), "a")
            .unwrap()
            .metadata
            .labels
            .is_some()
    );
    let dyn_c = dynamic.lister().get(Some("default"), "c").unwrap();
    assert_eq!(dyn_c.data["data"]["v"], json!("0"));
    factory.shutdown().await;

    // Streaming initial list: no list request at all.
    let lists_before = faults.request_count("list", Some("configmaps"));
    let streaming = InformerFactory::new(client.clone());
    let s = streaming.informer::<ConfigMap>(InformerOptions::default().streaming_list(true));
    streaming.start();
    assert!(streaming.wait_for_cache_sync(Duration::from_secs(20)).await);
    assert_eq!(s.lister().len(), 3);
    assert_eq!(
        faults.request_count("list", Some("configmaps")),
        lists_before
    );
    default
        .create(&PostParams::default(), &cm("", "d", &[]))
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
    let server = ApiServer::start().await.expect("start");
    let client = server.client();
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &Widget::crd())
        .await
        .expect("install the Widget CRD");
    let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
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
    let informer = factory.informer::<Widget>(InformerOptions::default());
    let seen = Arc::new(Checker::default());
    informer.add_event_handler(seen.clone()).unwrap();
    factory.start();
    assert!(factory.wait_for_cache_sync(Duration::from_secs(20)).await);
    let w = informer
        .lister()
        .get(Some("default"), "w1")
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

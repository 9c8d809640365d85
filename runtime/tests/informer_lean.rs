//! Lean caches against an API server over real HTTP (the embedded one, or a real kube-apiserver
//! with `KUBEFORGE_TEST_BACKEND=control-plane`): a compact informer and a typed one watching the
//! same objects through creates, updates, relabels and deletes end with the same cache — the
//! server's — answer `get`, `list` and `by_index` alike and deliver consistent per-key events.

mod informer_support;

use std::sync::Arc;
use std::time::Duration;

use informer_support::{Checker, cache_view, eventually, objects_view};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use kubeforge::informer::{
    Indexers, InformerOptions, LABEL_INDEX, Lister, SharedIndexInformer, label_index,
};
use kubeforge_testkit::TestCluster;
use serde_json::json;

fn cm(ns: &str, i: usize, suite: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(format!("cm-{i}")),
            namespace: Some(ns.into()),
            labels: Some(
                [
                    ("suite".to_string(), suite.to_string()),
                    ("tier".to_string(), format!("t{}", i % 4)),
                ]
                .into(),
            ),
            annotations: Some([("note".to_string(), "x".repeat(i % 50))].into()),
            ..Default::default()
        },
        data: Some(
            [
                (
                    "config.yaml".to_string(),
                    format!("replicas: {i}\nimage: registry.example.com/app:1.{i}\n"),
                ),
                ("owner".to_string(), "team-a".to_string()),
            ]
            .into(),
        ),
        ..Default::default()
    }
}

/// Everything a reader of `lister` sees, as text: every object by `get`, and each tier's
/// objects by the label index.
fn reader_view(lister: &Lister<ConfigMap>) -> Vec<String> {
    let json = |o: &ConfigMap| serde_json::to_string(o).expect("serialize");
    let mut out: Vec<String> = lister.list().iter().map(|o| json(o)).collect();
    out.sort();
    for key in lister.list_keys() {
        out.push(format!(
            "get {key}: {:?}",
            lister.get_by_key(&key).map(|o| json(&o))
        ));
    }
    for tier in 0..5 {
        let mut found: Vec<String> = lister
            .by_index(LABEL_INDEX, &format!("tier=t{tier}"))
            .expect("label index")
            .iter()
            .map(|o| json(o))
            .collect();
        found.sort();
        out.push(format!("tier=t{tier}: {found:?}"));
    }
    out
}

async fn informer(
    client: &Client,
    ns: &str,
    options: InformerOptions,
) -> (SharedIndexInformer<ConfigMap>, Arc<Checker>) {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let informer = SharedIndexInformer::new(&api, options);
    informer
        .add_indexers(Indexers::new().with(LABEL_INDEX, label_index::<ConfigMap>))
        .expect("indexers");
    let checker = Arc::new(Checker::default());
    informer
        .add_event_handler(checker.clone())
        .expect("handler");
    tokio::spawn({
        let informer = informer.clone();
        async move { informer.run().await }
    });
    (informer, checker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compact_informer_ends_with_the_same_cache_and_events_as_a_typed_one() {
    informer_support::init_tracing();
    let cluster = TestCluster::from_env()
        .await
        .expect("the API server under test starts");
    let client = cluster.client();
    let ns = kubeforge_testkit::cluster::unique_namespace(&client)
        .await
        .expect("a namespace for the test");
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let suite = format!("lean-{ns}");
    for i in 0..150 {
        api.create(&PostParams::default(), &cm(&ns, i, &suite))
            .await
            .expect("create");
    }
    let options = InformerOptions::default().labels(format!("suite={suite}"));
    let (typed, typed_events) = informer(&client, &ns, options.clone()).await;
    // Few hot objects, so reads decode.
    let (compact, compact_events) = informer(
        &client,
        &ns,
        options.cache(kubeforge::informer::CacheMode::Compact { hot_objects: 8 }),
    )
    .await;
    assert!(typed.wait_for_sync().await && compact.wait_for_sync().await);
    assert!(compact.lister().is_compact() && !typed.lister().is_compact());

    // Changes while both watch: updates, relabels (a tier index move), deletes and creates.
    for i in 0..40 {
        let patch = json!({"data": {"config.yaml": format!("replicas: {}\n", i + 100)}});
        api.patch(
            &format!("cm-{i}"),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("patch");
    }
    for i in 40..60 {
        let patch = json!({"metadata": {"labels": {"tier": "t4"}}});
        api.patch(
            &format!("cm-{i}"),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("relabel");
    }
    for i in 60..90 {
        api.delete(&format!("cm-{i}"), &DeleteParams::default())
            .await
            .expect("delete");
    }
    for i in 150..170 {
        api.create(&PostParams::default(), &cm(&ns, i, &suite))
            .await
            .expect("create");
    }

    let server = objects_view(
        api.list(&ListParams::default().labels(&format!("suite={suite}")))
            .await
            .expect("list")
            .items
            .iter(),
    );
    assert_eq!(server.len(), 140);
    let converged = eventually(Duration::from_secs(30), || {
        cache_view(&typed.lister()) == server
            && cache_view(&compact.lister()) == server
            && typed_events.view() == server
            && compact_events.view() == server
    })
    .await;
    assert!(
        converged,
        "both caches and both handlers reach the server's list"
    );
    assert_eq!(reader_view(&typed.lister()), reader_view(&compact.lister()));
    assert!(
        typed_events.violations().is_empty(),
        "{:?}",
        typed_events.violations()
    );
    assert!(
        compact_events.violations().is_empty(),
        "{:?}",
        compact_events.violations()
    );
    assert_eq!(compact.lister().decode_failures(), 0);
    typed.stop();
    compact.stop();
}

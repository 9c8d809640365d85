//! Property tests: a compact informer and a typed one, fed the same random list, watch events
//! and relist, hold the same cache (`get`, `list`, `by_index`, index values) and deliver the
//! same handler events. The compact one keeps only two decoded objects hot, so nearly every
//! read decodes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ObjectMeta, WatchEvent};
use kube::core::Status;
use parking_lot::Mutex;
use proptest::prelude::*;

use super::test_support::{Script, Shared, page};
use super::{
    BackoffConfig, CacheMode, DeletedObject, HandlerFns, Indexers, InformerOptions, LABEL_INDEX,
    LABEL_KEY_INDEX, NAMESPACE_INDEX, OWNER_UID_INDEX, SharedIndexInformer,
};

/// One change a test server makes.
#[derive(Debug, Clone)]
enum Change {
    /// Creates or changes object `name` (0..8) to this content.
    Put {
        name: u8,
        namespace: u8,
        labels: Vec<(u8, u8)>,
        owner: Option<u8>,
        data: String,
    },
    Delete {
        name: u8,
    },
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        4 => (0u8..8, 0u8..3, prop::collection::vec((0u8..3, 0u8..3), 0..3), prop::option::of(0u8..3), "[a-z ]{0,40}")
            .prop_map(|(name, namespace, labels, owner, data)| Change::Put { name, namespace, labels, owner, data }),
        1 => (0u8..8).prop_map(|name| Change::Delete { name }),
    ]
}

fn object(
    name: u8,
    namespace: u8,
    labels: &[(u8, u8)],
    owner: Option<u8>,
    data: &str,
    rv: u32,
) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(format!("cm-{name}")),
            // The namespace is part of the name's identity: keep it fixed per name.
            namespace: Some(format!("ns-{}", (name + namespace) % 3)),
            resource_version: Some(rv.to_string()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (format!("k{k}"), format!("v{v}")))
                    .collect(),
            ),
            owner_references: owner.map(|o| {
                vec![OwnerReference {
                    uid: format!("owner-{o}"),
                    name: format!("owner-{o}"),
                    kind: "Thing".into(),
                    api_version: "example.com/v1".into(),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        },
        data: Some([("value".to_string(), data.to_string())].into()),
        ..Default::default()
    }
}

/// The server's story: an initial list, watch events, then (after a 410) a relist in which
/// some objects changed, vanished or appeared, and a final marker object.
struct Story {
    initial: Vec<ConfigMap>,
    events: Vec<WatchEvent<ConfigMap>>,
    relist: Vec<ConfigMap>,
    rv: u32,
}

fn story(initial: &[Change], watched: &[Change], relisted: &[Change]) -> Story {
    let mut state: BTreeMap<u8, ConfigMap> = BTreeMap::new();
    let mut rv = 1;
    let apply = |state: &mut BTreeMap<u8, ConfigMap>, c: &Change, rv: u32| match c {
        Change::Put {
            name,
            namespace,
            labels,
            owner,
            data,
        } => {
            // A name keeps its first namespace (a namespace change would be another object).
            let ns = state.get(name).map_or(*namespace, |_| 0);
            let mut obj = object(*name, ns, labels, *owner, data, rv);
            if let Some(prev) = state.get(name) {
                obj.metadata.namespace = prev.metadata.namespace.clone();
            }
            let kind = if state.contains_key(name) {
                "mod"
            } else {
                "add"
            };
            state.insert(*name, obj.clone());
            Some((kind, obj))
        }
        Change::Delete { name } => state.remove(name).map(|mut gone| {
            gone.metadata.resource_version = Some(rv.to_string());
            ("del", gone)
        }),
    };
    for c in initial {
        rv += 1;
        apply(&mut state, c, rv);
    }
    let initial_list: Vec<ConfigMap> = state.values().cloned().collect();
    let mut events = Vec::new();
    for c in watched {
        rv += 1;
        if let Some((kind, obj)) = apply(&mut state, c, rv) {
            events.push(match kind {
                "add" => WatchEvent::Added(obj),
                "mod" => WatchEvent::Modified(obj),
                _ => WatchEvent::Deleted(obj),
            });
        }
    }
    for c in relisted {
        rv += 1;
        apply(&mut state, c, rv);
    }
    rv += 1;
    let mut relist: Vec<ConfigMap> = state.values().cloned().collect();
    relist.push(object(99, 0, &[], None, "end", rv));
    Story {
        initial: initial_list,
        events,
        relist,
        rv,
    }
}

fn script(story: &Story) -> Script {
    let s = Script::default();
    s.lists
        .lock()
        .push_back(page(story.initial.clone(), 1, None));
    let mut events: Vec<_> = story.events.iter().cloned().map(Ok).collect();
    events.push(Ok(WatchEvent::Error(Box::new(
        Status::failure("too old resource version", "Expired").with_code(410),
    ))));
    s.watches.lock().push_back(Ok(events));
    s.lists
        .lock()
        .push_back(page(story.relist.clone(), story.rv, None));
    s
}

type Log = Arc<Mutex<Vec<String>>>;

fn describe(o: &ConfigMap) -> String {
    serde_json::to_string(o).unwrap_or_default()
}

fn recorder(log: &Log) -> HandlerFns<ConfigMap> {
    let (a, u, d) = (log.clone(), log.clone(), log.clone());
    HandlerFns::new()
        // Not the `initial` flag: whether an add counts as part of the initial list depends on
        // when the FIFO popped it (client-go's `isInInitialList`: not yet synced), a matter of
        // timing that a loaded machine changes, not of how the store keeps objects.
        .on_add(move |o: Arc<ConfigMap>, _initial| a.lock().push(format!("add {}", describe(&o))))
        .on_update(move |old: Arc<ConfigMap>, new: Arc<ConfigMap>| {
            u.lock()
                .push(format!("update {} -> {}", describe(&old), describe(&new)))
        })
        .on_delete(move |gone: DeletedObject<ConfigMap>| {
            d.lock().push(format!(
                "delete tombstone={} {}",
                gone.is_tombstone(),
                gone.object().map(|o| describe(o)).unwrap_or_default()
            ))
        })
}

/// The name of the object a log line is about (the last one named in it).
fn object_name(line: &str) -> String {
    line.rsplit("\"name\":\"cm-")
        .next()
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("")
        .to_string()
}

/// Everything a reader can see in `informer`'s cache, as text.
fn view(informer: &SharedIndexInformer<ConfigMap>) -> Vec<String> {
    let lister = informer.lister();
    let mut out: Vec<String> = lister.list().iter().map(|o| describe(o)).collect();
    out.sort();
    for key in lister.list_keys() {
        out.push(format!(
            "get {key} {:?}",
            lister.get_by_key(&key).map(|o| describe(&o))
        ));
    }
    for index in [
        NAMESPACE_INDEX,
        LABEL_INDEX,
        LABEL_KEY_INDEX,
        OWNER_UID_INDEX,
    ] {
        for value in lister.list_index_values(index) {
            let mut found: Vec<String> = lister
                .by_index(index, value.as_str())
                .unwrap()
                .iter()
                .map(|o| describe(o))
                .collect();
            found.sort();
            out.push(format!(
                "{index}={value}: {found:?} {:?}",
                lister.index_keys(index, value.as_str())
            ));
        }
    }
    out
}

/// Runs the story through an informer in `mode`; its handler log and its final cache.
async fn run(story: &Story, mode: CacheMode) -> (Vec<String>, Vec<String>) {
    let informer = SharedIndexInformer::from_list_watch(
        Shared(Arc::new(script(story))),
        InformerOptions::default()
            .cache(mode)
            .backoff(BackoffConfig {
                initial: Duration::from_millis(1),
                cap: Duration::from_millis(4),
                ..BackoffConfig::default()
            }),
    );
    informer
        .add_indexers(
            Indexers::new()
                .with(LABEL_INDEX, super::label_index::<ConfigMap>)
                .with(LABEL_KEY_INDEX, super::label_key_index::<ConfigMap>)
                .with(OWNER_UID_INDEX, super::owner_uid_index::<ConfigMap>),
        )
        .unwrap();
    let log: Log = Arc::default();
    informer.add_event_handler(recorder(&log)).unwrap();
    let task = tokio::spawn({
        let informer = informer.clone();
        async move { informer.run().await }
    });
    let done = || log.lock().iter().any(|l| l.contains("\"cm-99\""));
    for _ in 0..1000 {
        if done() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        done(),
        "the informer never delivered the final marker: {:?}",
        log.lock()
    );
    let seen = view(&informer);
    informer.stop();
    let _ = task.await;
    assert_eq!(informer.lister().decode_failures(), 0);
    // Handlers see each object's states in order; the order across objects is the FIFO's.
    let mut events = log.lock().clone();
    events.sort_by_key(|line| object_name(line));
    (events, seen)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn compact_and_typed_informers_are_indistinguishable(
        initial in prop::collection::vec(change(), 0..10),
        watched in prop::collection::vec(change(), 0..20),
        relisted in prop::collection::vec(change(), 0..6),
    ) {
        let story = story(&initial, &watched, &relisted);
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (typed_events, typed_view) = rt.block_on(run(&story, CacheMode::Typed));
        let (compact_events, compact_view) =
            rt.block_on(run(&story, CacheMode::Compact { hot_objects: 2 }));
        prop_assert_eq!(typed_events, compact_events);
        prop_assert_eq!(typed_view, compact_view);
    }
}

//! Watches: events from a resourceVersion, selectors, bookmarks, timeouts, initial events,
//! and the two forms of "too old resource version".

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use crate::common::*;

fn name_of(cm: &ConfigMap) -> String {
    cm.metadata.name.clone().unwrap_or_default()
}

/// Event type and object name, for comparing streams.
fn summary(e: &WatchEvent<ConfigMap>) -> (String, String) {
    match e {
        WatchEvent::Added(o) => ("ADDED".into(), name_of(o)),
        WatchEvent::Modified(o) => ("MODIFIED".into(), name_of(o)),
        WatchEvent::Deleted(o) => ("DELETED".into(), name_of(o)),
        WatchEvent::Bookmark(b) => ("BOOKMARK".into(), b.metadata.resource_version.clone()),
        WatchEvent::Error(e) => ("ERROR".into(), e.code.to_string()),
    }
}

async fn label(api: &Api<ConfigMap>, name: &str, app: &str) {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": app}}})),
    )
    .await
    .expect("relabel");
}

#[tokio::test]
async fn watch_from_a_resource_version_replays_added_modified_deleted_in_order() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    let rv = list_rv(&api).await;
    api.create(&PostParams::default(), &cm("w", &[]))
        .await
        .expect("create");
    label(&api, "w", "x").await;
    api.delete("w", &Default::default()).await.expect("delete");
    let events: Vec<_> = within(
        10,
        api.watch(&WatchParams::default().disable_bookmarks().timeout(1), &rv)
            .await
            .expect("watch")
            .take(3)
            .try_collect::<Vec<_>>(),
    )
    .await
    .expect("events");
    let got: Vec<_> = events.iter().map(summary).collect();
    assert_eq!(
        got,
        [
            ("ADDED".to_string(), "w".to_string()),
            ("MODIFIED".into(), "w".into()),
            ("DELETED".into(), "w".into())
        ]
    );
    // Every event's object carries a newer resourceVersion than the previous one.
    let rvs: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => {
                o.metadata.resource_version.as_ref()?.parse().ok()
            }
            _ => None,
        })
        .collect();
    assert!(rvs.windows(2).all(|w| w[0] < w[1]), "{rvs:?}");
}

#[tokio::test]
async fn live_watch_sees_changes_made_after_it_started() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    let rv = list_rv(&api).await;
    let mut stream = api
        .watch(&WatchParams::default().disable_bookmarks(), &rv)
        .await
        .expect("watch")
        .boxed();
    api.create(&PostParams::default(), &cm("live", &[]))
        .await
        .expect("create");
    let first = within(10, stream.next())
        .await
        .expect("an event")
        .expect("ok");
    assert_eq!(summary(&first), ("ADDED".into(), "live".into()));
}

#[tokio::test]
async fn objects_leaving_a_label_selector_are_deleted_and_entering_are_added() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    api.create(&PostParams::default(), &cm("s", &[("app", "web")]))
        .await
        .expect("create");
    let rv = list_rv(&api).await;
    label(&api, "s", "db").await;
    label(&api, "s", "web").await;
    let events: Vec<_> = within(
        10,
        api.watch(
            &WatchParams::default().labels("app=web").disable_bookmarks(),
            &rv,
        )
        .await
        .expect("watch")
        .take(2)
        .try_collect::<Vec<_>>(),
    )
    .await
    .expect("events");
    let got: Vec<_> = events.iter().map(summary).collect();
    assert_eq!(
        got,
        [
            ("DELETED".to_string(), "s".to_string()),
            ("ADDED".into(), "s".into())
        ]
    );
}

#[tokio::test]
async fn watches_without_resource_version_start_with_the_current_state() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    api.create(&PostParams::default(), &cm("existing", &[]))
        .await
        .expect("create");
    let first = within(
        10,
        api.watch(&WatchParams::default().disable_bookmarks(), "0")
            .await
            .expect("watch")
            .boxed()
            .next(),
    )
    .await
    .expect("event")
    .expect("ok");
    assert_eq!(summary(&first), ("ADDED".into(), "existing".into()));
}

#[tokio::test]
async fn bookmarks_arrive_periodically_when_allowed() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    let rv = list_rv(&api).await;
    // The real server sends bookmarks about once a minute; the embedded one every second.
    let wait = if c.faults().is_some() { 10 } else { 120 };
    let mut stream = api
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();
    let ev = within(wait, stream.next())
        .await
        .expect("event")
        .expect("ok");
    let WatchEvent::Bookmark(b) = ev else {
        panic!("expected a bookmark, got {ev:?}")
    };
    let brv: u64 = b.metadata.resource_version.parse().expect("numeric");
    assert!(brv >= rv.parse::<u64>().expect("numeric"));
}

#[tokio::test]
async fn timeout_seconds_ends_the_stream() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    let rv = list_rv(&api).await;
    let started = std::time::Instant::now();
    let events: Vec<_> = within(
        30,
        api.watch(&WatchParams::default().disable_bookmarks().timeout(1), &rv)
            .await
            .expect("watch")
            .collect::<Vec<_>>(),
    )
    .await;
    assert!(events.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn send_initial_events_streams_state_then_an_annotated_bookmark() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    for n in ["i1", "i2"] {
        api.create(&PostParams::default(), &cm(n, &[]))
            .await
            .expect("create");
    }
    let mut stream = api
        .watch(&WatchParams::streaming_lists(), "")
        .await
        .expect("watch")
        .boxed();
    let mut added = Vec::new();
    loop {
        match within(10, stream.next()).await.expect("event").expect("ok") {
            WatchEvent::Added(o) => added.push(name_of(&o)),
            WatchEvent::Bookmark(b) => {
                assert_eq!(
                    b.metadata
                        .annotations
                        .get("k8s.io/initial-events-end")
                        .map(String::as_str),
                    Some("true")
                );
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    added.sort();
    assert_eq!(added, ["i1", "i2"]);
    // Without resourceVersionMatch=NotOlderThan the request is invalid.
    let (code, _) = raw(&c.client(), "GET", &format!("/api/v1/namespaces/{ns}/configmaps?watch=1&sendInitialEvents=true&allowWatchBookmarks=true"), None, vec![]).await;
    assert_eq!(code, 422);
}

#[tokio::test]
async fn kube_runtime_watcher_works_with_list_watch_and_streaming_lists() {
    let c = cluster().await;
    for strategy in [
        watcher::InitialListStrategy::ListWatch,
        watcher::InitialListStrategy::StreamingList,
    ] {
        let ns = namespace(&c.client()).await;
        let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
        for n in ["one", "two", "three"] {
            api.create(&PostParams::default(), &cm(n, &[]))
                .await
                .expect("create");
        }
        let cfg = watcher::Config {
            initial_list_strategy: strategy.clone(),
            page_size: Some(2),
            ..Default::default()
        };
        let mut s = watcher(api.clone(), cfg).boxed();
        let mut seen = Vec::new();
        loop {
            match within(10, s.next()).await.expect("event").expect("ok") {
                watcher::Event::Init => {}
                watcher::Event::InitApply(o) => seen.push(name_of(&o)),
                watcher::Event::InitDone => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        seen.sort();
        assert_eq!(seen, ["one", "three", "two"], "{strategy:?}");
        api.create(&PostParams::default(), &cm("after", &[]))
            .await
            .expect("create");
        match within(10, s.next()).await.expect("event").expect("ok") {
            watcher::Event::Apply(o) => assert_eq!(name_of(&o), "after"),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_resource_version_older_than_history_is_410_gone() {
    // On the real backend: kube-apiserver without watch cache, reading etcd, where compaction
    // shows (the cache keeps recent history of its own).
    let c = kubeforge_testkit::TestCluster::from_env_uncached()
        .await
        .expect("a cluster (embedded, or the real control plane without watch cache)");
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    let rv = list_rv(&api).await;
    for name in ["x", "y"] {
        api.create(&PostParams::default(), &cm(name, &[]))
            .await
            .expect("create");
    }
    assert!(c.compact().await.expect("compact"), "this backend compacts");
    // Two real forms: the watch cache refuses the request (HTTP 410, the embedded server's
    // form); a watch on etcd starts and ends at once with an ERROR event carrying 410.
    let status = match api.watch(&WatchParams::default(), &rv).await {
        Err(kube::Error::Api(s)) => {
            assert!(
                s.message.starts_with("too old resource version"),
                "{}",
                s.message
            );
            *s
        }
        Err(e) => panic!("expected 410, got {e}"),
        Ok(stream) => match within(10, stream.boxed().next()).await {
            Some(Ok(WatchEvent::Error(s))) => {
                assert!(s.message.contains("too old"), "{}", s.message);
                *s
            }
            other => panic!("expected an ERROR event with 410, got {other:?}"),
        },
    };
    assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
}

#[tokio::test]
async fn a_history_window_overflow_expires_old_resource_versions() {
    let server = kubeforge_testkit::ApiServer::builder()
        .history_window(5)
        .start()
        .await
        .expect("server");
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let rv = list_rv(&api).await;
    for i in 0..10 {
        api.create(&PostParams::default(), &cm(&format!("o{i}"), &[]))
            .await
            .expect("create");
    }
    assert_eq!(
        code(api.watch(&WatchParams::default(), &rv).await.map(|_| ())),
        410
    );
}

#[tokio::test]
async fn expired_watches_end_with_an_error_event_carrying_410() {
    let c = cluster().await;
    let Some(faults) = c.faults() else {
        return skipped(
            "expired_watches_end_with_an_error_event_carrying_410",
            "expiring an open watch on demand needs the embedded server's fault handle (kube-apiserver \
             expires one only when its history leaves the watch cache; 410 from compaction is covered \
             on both servers by a_resource_version_older_than_history_is_410_gone)",
        );
    };
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    let rv = list_rv(&api).await;
    let mut s = api
        .watch(&WatchParams::default().disable_bookmarks(), &rv)
        .await
        .expect("watch")
        .boxed();
    tokio::time::sleep(Duration::from_millis(100)).await;
    faults.expire_watches();
    let ev = within(10, s.next()).await.expect("event").expect("ok");
    let WatchEvent::Error(e) = ev else {
        panic!("expected ERROR, got {ev:?}")
    };
    assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
    assert!(
        within(10, s.next()).await.is_none(),
        "the stream ends after the error"
    );
}

#[tokio::test]
async fn watcher_recovers_from_closed_watches_and_compaction() {
    let c = cluster().await;
    let faults = c.faults();
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    // The watcher reaches the server through a proxy whose connections the test cuts: a closed
    // watch on either backend.
    let (proxy, watch_client) = c.proxied_client().await.expect("a proxied client");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let w: Api<ConfigMap> = Api::namespaced(watch_client, &ns);
    let pump = tokio::spawn(async move {
        let mut s = watcher(w, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(ev) = s.next().await {
            if tx.send(ev).is_err() {
                break;
            }
        }
    });
    api.create(&PostParams::default(), &cm("before-faults", &[]))
        .await
        .expect("create");
    assert!(
        wait_for(&mut rx, "before-faults").await,
        "the watcher is watching"
    );
    assert!(proxy.cut() > 0, "the watch ran through the proxy");
    assert!(c.compact().await.expect("compact"), "this backend compacts");
    api.create(&PostParams::default(), &cm("after-faults", &[]))
        .await
        .expect("create");
    assert!(
        wait_for(&mut rx, "after-faults").await,
        "the watcher rewatched and saw the new object"
    );
    let Some(faults) = faults else {
        pump.abort();
        return skipped(
            "watcher_recovers_from_closed_watches_and_compaction (its request counts and the ERROR 410 part)",
            "request counts and expiring an open watch on demand need the embedded server's fault handle; the closed connection and the compaction ran on the real kube-apiserver",
        );
    };
    assert!(
        faults.request_count("watch", Some("configmaps")) >= 2,
        "a closed watch is reopened"
    );
    // An ERROR 410 event makes the watcher relist.
    faults.expire_watches();
    api.create(&PostParams::default(), &cm("after-expiry", &[]))
        .await
        .expect("create");
    assert!(
        wait_for(&mut rx, "after-expiry").await,
        "the watcher relisted and saw the new object"
    );
    assert!(
        faults.request_count("list", Some("configmaps")) >= 2,
        "the watcher relisted after 410"
    );
    pump.abort();
}

async fn wait_for(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<watcher::Result<watcher::Event<ConfigMap>>>,
    name: &str,
) -> bool {
    within(20, async {
        while let Some(ev) = rx.recv().await {
            if let Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) = ev
                && name_of(&o) == name
            {
                return true;
            }
        }
        false
    })
    .await
}

#[tokio::test]
async fn the_watch_cache_form_of_too_old_is_an_error_event() {
    let server = kubeforge_testkit::ApiServer::builder()
        .history_window(2)
        .expired_watch_as_event(true)
        .start()
        .await
        .expect("server");
    let api: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let rv = list_rv(&api).await;
    for i in 0..5 {
        api.create(&PostParams::default(), &cm(&format!("o{i}"), &[]))
            .await
            .expect("create");
    }
    let mut s = api
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("200, not 410")
        .boxed();
    let ev = within(10, s.next()).await.expect("event").expect("ok");
    let WatchEvent::Error(e) = ev else {
        panic!("expected ERROR, got {ev:?}")
    };
    assert_eq!(e.code, 410);
}

#[tokio::test]
async fn a_watch_on_one_object_path_sees_only_that_object() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    api.create(&PostParams::default(), &cm("mine", &[]))
        .await
        .expect("create");
    api.create(&PostParams::default(), &cm("other", &[]))
        .await
        .expect("create");
    let (code_, _) = raw(
        &c.client(),
        "GET",
        &format!("/api/v1/namespaces/{ns}/configmaps/mine?watch=1&timeoutSeconds=1"),
        None,
        vec![],
    )
    .await;
    assert_eq!(code_, 200);
    let mut s = api
        .watch(
            &WatchParams::default()
                .fields("metadata.name=mine")
                .disable_bookmarks(),
            "0",
        )
        .await
        .expect("watch")
        .boxed();
    let first = within(10, s.next()).await.expect("event").expect("ok");
    assert_eq!(summary(&first), ("ADDED".into(), "mine".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_reach_a_watch_once_each_in_resource_version_order() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    let rv = list_rv(&api).await;
    let stream = api
        .watch(&WatchParams::default().disable_bookmarks(), &rv)
        .await
        .expect("watch");
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let api = api.clone();
            tokio::spawn(async move {
                for i in 0..25 {
                    let name = format!("w{w}-{i}");
                    api.create(&PostParams::default(), &cm(&name, &[]))
                        .await
                        .expect("create");
                    label(&api, &name, "x").await;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    let events: Vec<_> = within(30, stream.take(200).try_collect::<Vec<_>>())
        .await
        .expect("events");
    let rvs: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                o.metadata.resource_version.as_ref()?.parse().ok()
            }
            _ => None,
        })
        .collect();
    assert_eq!(rvs.len(), 200, "every write is seen once");
    assert!(
        rvs.windows(2).all(|w| w[0] < w[1]),
        "events arrive in resourceVersion order"
    );
    let added = events
        .iter()
        .filter(|e| matches!(e, WatchEvent::Added(_)))
        .count();
    assert_eq!(added, 100);
}

//! Events: kube-apiserver keeps core/v1 and `events.k8s.io/v1` Events in one store, so an event
//! written through either API is read, listed, selected and watched through both (what
//! `kubectl describe` and `kubectl get events` show whichever API an operator's recorder used).

use futures::StreamExt;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, WatchEvent, WatchParams};
use serde_json::{Value, json};

use crate::common::*;

fn regarding(ns: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "namespace": ns})
}

/// An event as an `events.k8s.io` recorder writes it (the fields that API requires).
fn new_style(ns: &str, name: &str, note: &str) -> Value {
    json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": name},
        "eventTime": "2026-12-02T10:00:00.000000Z", "reportingController": "example.com/operator",
        "reportingInstance": "operator-0", "action": "Reconcile", "reason": "Synced",
        "type": "Normal", "note": note, "regarding": regarding(ns)})
}

async fn create(c: &kubeforge_testkit::TestCluster, path: &str, obj: &Value) {
    let (code_, body) = post_json(&c.client(), path, obj).await;
    assert_eq!(code_, 201, "create {path}: {body}");
}

fn names(list: &Value) -> Vec<&str> {
    let mut names: Vec<&str> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["metadata"]["name"].as_str())
        .collect();
    names.sort_unstable();
    names
}

#[tokio::test]
async fn events_written_through_either_api_are_served_by_both() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let core = format!("/api/v1/namespaces/{ns}/events");
    let events_api = format!("/apis/events.k8s.io/v1/namespaces/{ns}/events");
    create(
        &c,
        &core,
        &json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "old-style"},
            "involvedObject": regarding(&ns), "reason": "Created", "message": "written through core/v1",
            "type": "Normal", "source": {"component": "test"}, "count": 1,
            "firstTimestamp": "2026-12-02T10:00:00Z", "lastTimestamp": "2026-12-02T10:00:00Z"}),
    )
    .await;
    create(
        &c,
        &events_api,
        &new_style(&ns, "new-style", "written through events.k8s.io"),
    )
    .await;

    let (code_, old) = raw(
        &c.client(),
        "GET",
        &format!("{events_api}/old-style"),
        None,
        vec![],
    )
    .await;
    assert_eq!(code_, 200, "a core event read through events.k8s.io: {old}");
    assert_eq!(old["apiVersion"], "events.k8s.io/v1");
    assert_eq!(old["note"], "written through core/v1", "{old}");
    assert_eq!(old["regarding"]["name"], "cm", "{old}");
    assert_eq!(old["deprecatedCount"], 1, "{old}");
    assert_eq!(old["reason"], "Created");

    let (code_, new) = raw(
        &c.client(),
        "GET",
        &format!("{core}/new-style"),
        None,
        vec![],
    )
    .await;
    assert_eq!(
        code_, 200,
        "an events.k8s.io event read through core/v1: {new}"
    );
    assert_eq!(new["apiVersion"], "v1");
    assert_eq!(new["message"], "written through events.k8s.io", "{new}");
    assert_eq!(new["involvedObject"]["name"], "cm", "{new}");
    assert_eq!(new["reportingComponent"], "example.com/operator", "{new}");

    for path in [&core, &events_api] {
        let (_, list) = raw(&c.client(), "GET", path, None, vec![]).await;
        assert_eq!(names(&list), ["new-style", "old-style"], "list {path}");
    }
    // kubectl describe finds a Pod's events by involvedObject fields, whichever API wrote them.
    let (code_, selected) = raw(
        &c.client(),
        "GET",
        &format!("{core}?fieldSelector=involvedObject.name%3Dcm,involvedObject.kind%3DConfigMap"),
        None,
        vec![],
    )
    .await;
    assert_eq!(code_, 200, "{selected}");
    assert_eq!(names(&selected), ["new-style", "old-style"]);
    // events.k8s.io selects by its own names for the same fields.
    let (code_, selected) = raw(
        &c.client(),
        "GET",
        &format!("{events_api}?fieldSelector=regarding.name%3Dcm,reportingController%3Dexample.com%2Foperator"),
        None,
        vec![],
    )
    .await;
    assert_eq!(code_, 200, "{selected}");
    assert_eq!(names(&selected), ["new-style"]);
}

#[tokio::test]
async fn a_core_events_watch_sees_events_written_through_events_k8s_io() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<Event> = Api::namespaced(c.client(), &ns);
    let from = list_rv(&api).await;
    let mut events = api
        .watch(&WatchParams::default(), &from)
        .await
        .expect("watch")
        .boxed();
    create(
        &c,
        &format!("/apis/events.k8s.io/v1/namespaces/{ns}/events"),
        &new_style(&ns, "watched", "seen by a core watch"),
    )
    .await;
    let added = next_change(&mut events).await;
    match added {
        WatchEvent::Added(e) => {
            assert_eq!(e.metadata.name.as_deref(), Some("watched"));
            assert_eq!(e.message.as_deref(), Some("seen by a core watch"));
            assert_eq!(e.involved_object.name.as_deref(), Some("cm"));
        }
        other => panic!("expected ADDED, got {other:?}"),
    }
}

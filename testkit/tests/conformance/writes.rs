//! Writes: the four patch types, server-side apply, status and scale subresources, finalizers,
//! propagation policies, garbage collection, deletecollection, namespace deletion.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::*;
use crate::crud::deployment;

#[tokio::test]
async fn merge_json_and_strategic_patches_apply_as_the_real_server() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<Deployment> = Api::namespaced(c.client(), &ns);
    api.create(&PostParams::default(), &deployment("web", 1))
        .await
        .expect("create");
    let pp = PatchParams::default();
    let d = api
        .patch("web", &pp, &Patch::Merge(json!({"spec": {"replicas": 2}})))
        .await
        .expect("merge");
    assert_eq!(d.spec.replicas, Some(2));
    let p: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/spec/replicas", "value": 4}]))
            .expect("ops");
    let d = api
        .patch("web", &pp, &Patch::<()>::Json(p))
        .await
        .expect("json patch");
    assert_eq!(d.spec.replicas, Some(4));
    // Strategic merge: containers merge by name instead of replacing the list.
    let smp = json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "envoy:1"}]}}}});
    let d = api
        .patch("web", &pp, &Patch::Strategic(smp))
        .await
        .expect("strategic");
    let names: Vec<String> = d
        .spec
        .template
        .spec
        .expect("pod spec")
        .containers
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["sidecar", "main"]);
    let bad: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/spec/replicas", "value": 99}]))
            .expect("ops");
    assert_eq!(
        code(api.patch("web", &pp, &Patch::<()>::Json(bad)).await),
        422
    );
}

#[tokio::test]
async fn server_side_apply_creates_updates_and_reports_conflicts() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    let cfg = |data: serde_json::Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": data});
    let alice = PatchParams::apply("alice");
    let created = api
        .patch(
            "applied",
            &alice,
            &Patch::Apply(cfg(json!({"a": "1", "b": "1"}))),
        )
        .await
        .expect("apply creates");
    assert_eq!(created.data.as_ref().map(|d| d.len()), Some(2));
    let mf = created.metadata.managed_fields.expect("managedFields");
    assert!(
        mf.iter()
            .any(|m| m.manager.as_deref() == Some("alice")
                && m.operation.as_deref() == Some("Apply"))
    );
    // Bob changing a field Alice owns is a conflict unless forced.
    let s = api_err(
        api.patch(
            "applied",
            &PatchParams::apply("bob"),
            &Patch::Apply(cfg(json!({"a": "2"}))),
        )
        .await,
    );
    assert_eq!(s.code, 409);
    assert!(
        s.message.contains("conflict with \"alice\""),
        "{}",
        s.message
    );
    let forced = api
        .patch(
            "applied",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(cfg(json!({"a": "2"}))),
        )
        .await
        .expect("force");
    assert_eq!(
        forced
            .data
            .as_ref()
            .and_then(|d| d.get("a"))
            .map(String::as_str),
        Some("2")
    );
    // Alice no longer applying `b` removes it; `a` now belongs to Bob and stays.
    let after = api
        .patch("applied", &alice, &Patch::Apply(cfg(json!({}))))
        .await
        .expect("re-apply");
    let data = after.data.unwrap_or_default();
    assert_eq!(data.get("b"), None);
    assert_eq!(data.get("a").map(String::as_str), Some("2"));
    let (code_, _) = raw(
        &c.client(),
        "PATCH",
        &format!("/api/v1/namespaces/{ns}/configmaps/applied"),
        Some("application/apply-patch+yaml"),
        b"apiVersion: v1\nkind: ConfigMap\n".to_vec(),
    )
    .await;
    assert_eq!(code_, 422, "fieldManager is required for apply");
}

#[tokio::test]
async fn status_subresource_separates_status_from_the_main_resource() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<Deployment> = Api::namespaced(c.client(), &ns);
    api.create(&PostParams::default(), &deployment("st", 1))
        .await
        .expect("create");
    let d = api
        .patch_status(
            "st",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"replicas": 9}, "status": {"replicas": 1, "readyReplicas": 1}}),
            ),
        )
        .await
        .expect("status patch");
    assert_eq!(d.status.as_ref().and_then(|s| s.ready_replicas), Some(1));
    assert_eq!(
        d.spec.replicas,
        Some(1),
        "writes to /status change only status"
    );
    let d = api
        .patch(
            "st",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"readyReplicas": 5}})),
        )
        .await
        .expect("main patch");
    assert_eq!(
        d.status.as_ref().and_then(|s| s.ready_replicas),
        Some(1),
        "writes to the main resource leave status alone"
    );
}

#[tokio::test]
async fn scale_subresource_reads_and_writes_replicas() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<Deployment> = Api::namespaced(c.client(), &ns);
    api.create(&PostParams::default(), &deployment("sc", 2))
        .await
        .expect("create");
    let s = api.get_scale("sc").await.expect("scale");
    assert_eq!(s.spec.as_ref().and_then(|s| s.replicas), Some(2));
    assert_eq!(
        s.status
            .as_ref()
            .and_then(|s| s.selector.clone())
            .as_deref(),
        Some("app=sc")
    );
    api.patch_scale(
        "sc",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 5}})),
    )
    .await
    .expect("scale patch");
    let d = api.get("sc").await.expect("get");
    assert_eq!(d.spec.replicas, Some(5));
}

#[tokio::test]
async fn finalizers_hold_an_object_until_the_last_one_is_removed() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    let mut o = cm("fin", &[]);
    o.metadata.finalizers = Some(vec!["example.com/a".into(), "example.com/b".into()]);
    api.create(&PostParams::default(), &o)
        .await
        .expect("create");
    api.delete("fin", &DeleteParams::default())
        .await
        .expect("delete");
    let held = api.get("fin").await.expect("still there");
    assert!(held.metadata.deletion_timestamp.is_some());
    assert_eq!(held.metadata.deletion_grace_period_seconds, Some(0));
    let s = api_err(api.patch("fin", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/a", "example.com/b", "example.com/c"]}}))).await);
    assert_eq!(s.code, 422, "no new finalizers on a deleted object");
    api.patch(
        "fin",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/b"]}})),
    )
    .await
    .expect("drop one");
    assert!(api.get("fin").await.is_ok());
    api.patch(
        "fin",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("drop last");
    assert_eq!(code(api.get("fin").await), 404);
}

async fn owner_and_dependents(api: &Api<ConfigMap>, dependent_finalizer: Option<&str>) -> String {
    let owner = api
        .create(&PostParams::default(), &cm("owner", &[]))
        .await
        .expect("owner");
    let uid = owner.metadata.uid.expect("uid");
    for n in ["dep-1", "dep-2"] {
        let mut d = cm(n, &[]);
        d.metadata.owner_references = Some(vec![serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid, "blockOwnerDeletion": true,
        })).expect("ownerRef")]);
        if let Some(f) = dependent_finalizer {
            d.metadata.finalizers = Some(vec![f.to_string()]);
        }
        api.create(&PostParams::default(), &d)
            .await
            .expect("dependent");
    }
    uid
}

/// Polls until `cond` holds: the real garbage collector works asynchronously.
async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if cond().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test]
async fn background_deletion_garbage_collects_dependents() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    owner_and_dependents(&api, None).await;
    api.delete("owner", &DeleteParams::background())
        .await
        .expect("delete");
    eventually("dependents deleted", || async {
        api.list(&ListParams::default())
            .await
            .map(|l| l.items.is_empty())
            .unwrap_or(false)
    })
    .await;
}

#[tokio::test]
async fn orphan_deletion_keeps_dependents_and_drops_their_owner_reference() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    owner_and_dependents(&api, None).await;
    api.delete("owner", &DeleteParams::orphan())
        .await
        .expect("delete");
    eventually("owner gone, references dropped", || async {
        let l = api.list(&ListParams::default()).await.expect("list");
        l.items.len() == 2
            && l.items.iter().all(|d| {
                d.metadata
                    .owner_references
                    .as_ref()
                    .is_none_or(Vec::is_empty)
            })
    })
    .await;
}

#[tokio::test]
async fn foreground_deletion_waits_for_dependents() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    owner_and_dependents(&api, Some("example.com/hold")).await;
    api.delete("owner", &DeleteParams::foreground())
        .await
        .expect("delete");
    eventually("dependents terminating", || async {
        api.list(&ListParams::default())
            .await
            .expect("list")
            .items
            .iter()
            .filter(|d| d.metadata.deletion_timestamp.is_some())
            .count()
            == 3
    })
    .await;
    let owner = api.get("owner").await.expect("owner waits");
    assert!(
        owner
            .metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"foregroundDeletion".to_string())
    );
    for n in ["dep-1", "dep-2"] {
        api.patch(
            n,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .expect("release");
    }
    eventually("owner deleted after its dependents", || async {
        matches!(api.get_opt("owner").await, Ok(None))
    })
    .await;
}

#[tokio::test]
async fn deletecollection_deletes_what_the_selector_matches() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    for (n, app) in [("a", "x"), ("b", "x"), ("c", "y")] {
        api.create(&PostParams::default(), &cm(n, &[("app", app)]))
            .await
            .expect("create");
    }
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("app=x"),
    )
    .await
    .expect("deletecollection");
    let left: Vec<String> = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect();
    assert_eq!(left, ["c"]);
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_contents() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    api.create(&PostParams::default(), &cm("inside", &[]))
        .await
        .expect("create");
    let nss: Api<Namespace> = Api::all(c.client());
    nss.delete(&ns, &DeleteParams::default())
        .await
        .expect("delete namespace");
    eventually("namespace gone", || async {
        matches!(nss.get_opt(&ns).await, Ok(None))
    })
    .await;
    assert_eq!(code(api.get("inside").await), 404);
}

#[tokio::test]
async fn a_dependent_whose_owner_is_already_gone_is_garbage_collected() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    let owner = api
        .create(&PostParams::default(), &cm("owner", &[]))
        .await
        .expect("create the owner");
    api.delete("owner", &Default::default())
        .await
        .expect("delete the owner");
    // A controller acting on a stale cache creates a child of the deleted owner.
    let mut child = cm("late-child", &[]);
    child.metadata.owner_references = Some(vec![
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
            "uid": owner.metadata.uid.clone().unwrap_or_default(), "controller": true
        }))
        .unwrap(),
    ]);
    api.create(&PostParams::default(), &child)
        .await
        .expect("the write itself succeeds");
    eventually("the orphaned child is collected", || async {
        api.get_opt("late-child").await.ok().flatten().is_none()
    })
    .await;
}

#[tokio::test]
async fn an_unchanged_server_side_apply_is_a_no_op() {
    use futures::StreamExt;
    use kube::api::{WatchEvent, WatchParams};
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), &ns);
    let cfg = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "same"}, "data": {"k": v}});
    let apply = PatchParams::apply("operator");
    let first = api
        .patch("same", &apply, &Patch::Apply(cfg("1")))
        .await
        .expect("apply creates");
    let from = first.metadata.resource_version.clone().expect("rv");
    let mut events = api
        .watch(&WatchParams::default(), &from)
        .await
        .expect("watch")
        .boxed();
    // managedFields times have a one-second resolution: a re-stamp would show after a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = api
        .patch("same", &apply, &Patch::Apply(cfg("1")))
        .await
        .expect("unchanged apply");
    assert_eq!(
        again.metadata.resource_version, first.metadata.resource_version,
        "an unchanged apply must not write a new resourceVersion"
    );
    assert_eq!(
        again.metadata.managed_fields, first.metadata.managed_fields,
        "an unchanged apply keeps the manager's time"
    );
    let changed = api
        .patch("same", &apply, &Patch::Apply(cfg("2")))
        .await
        .expect("changing apply");
    assert_ne!(
        changed.metadata.resource_version,
        again.metadata.resource_version
    );
    // No watch event for the no-op: the watch's first event is the change.
    let first_event = next_change(&mut events).await;
    match first_event {
        WatchEvent::Modified(cm) => assert_eq!(
            cm.metadata.resource_version, changed.metadata.resource_version,
            "the watch's first event is the change, not the unchanged apply"
        ),
        other => panic!("expected the change as MODIFIED, got {other:?}"),
    }
}

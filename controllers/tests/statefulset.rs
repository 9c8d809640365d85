//! The StatefulSet controller end to end, the test playing kubelet: ordered creation and
//! reverse-order scale-down, Parallel, stable identity, claims from volumeClaimTemplates kept
//! or handed to the garbage collector as the retention policy says, rolling updates in reverse
//! ordinal order with a partition, OnDelete, and revisions.

mod support;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};

use jiff::SignedDuration;
use k8s_openapi::api::apps::v1::{
    ControllerRevision, StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy,
    StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, Pod, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, ResourceExt};
use kubeforge_controllers::statefulset::identity::REVISION_LABEL;
use serde_json::json;
use support::*;

fn statefulset(name: &str, replicas: i32) -> StatefulSet {
    StatefulSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: StatefulSetSpec {
            replicas: Some(replicas),
            selector: selector(name),
            service_name: Some(name.into()),
            template: template(name, "nginx:1"),
            ..StatefulSetSpec::default()
        },
        status: None,
    }
}

fn with_claims(mut set: StatefulSet) -> StatefulSet {
    set.spec.volume_claim_templates = Some(vec![PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some("data".into()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".into(), Quantity("1Gi".into()))])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    }]);
    set
}

async fn names(api: &Api<Pod>, app: &str) -> Vec<String> {
    pods(api, app)
        .await
        .iter()
        .map(ResourceExt::name_any)
        .collect()
}

async fn patch_spec(api: &Api<StatefulSet>, name: &str, spec: serde_json::Value) {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": spec })),
    )
    .await
    .expect("patch the StatefulSet");
}

/// Waits until exactly `want` Pods of `app` exist.
async fn exactly(api: &Api<Pod>, app: &str, want: &[&str]) -> Vec<Pod> {
    eventually(&format!("Pods {want:?}"), || async {
        let now = pods(api, app).await;
        let names: Vec<String> = now.iter().map(ResourceExt::name_any).collect();
        (names == want).then_some(now)
    })
    .await
}

/// Starts watching the Pods of `app` now and resolves to the names of the first `count` deleted,
/// in the order the server deleted them.
async fn deletions(api: &Api<Pod>, app: &str, count: usize) -> impl Future<Output = Vec<String>> {
    let selector = format!("app={app}");
    let version = api
        .list(&ListParams::default().labels(&selector))
        .await
        .expect("list the Pods")
        .metadata
        .resource_version
        .expect("a list has a resourceVersion");
    let mut events = api
        .watch(&WatchParams::default().labels(&selector), &version)
        .await
        .expect("watch the Pods")
        .boxed();
    async move {
        let mut deleted = Vec::new();
        while deleted.len() < count {
            let next = tokio::time::timeout(Duration::from_secs(30), events.try_next());
            match next.await.expect("a Pod is deleted within 30 s") {
                Ok(Some(WatchEvent::Deleted(pod))) => deleted.push(pod.name_any()),
                Ok(Some(WatchEvent::Error(e))) => panic!("the watch failed: {e}"),
                Ok(Some(_)) => {}
                other => panic!("the watch ended: {other:?}"),
            }
        }
        deleted
    }
}

/// Asserts for a second that the Pods of `app` stay `want`: the controller is waiting.
async fn stays(api: &Api<Pod>, app: &str, want: &[&str]) {
    for _ in 0..10 {
        assert_eq!(names(api, app).await, want, "the controller did not wait");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn ordered_ready_creates_one_at_a_time_and_scales_down_from_the_top() {
    let env = Env::with(&["statefulset"]).await;
    let (sets, pods_api) = (env.api::<StatefulSet>(), env.api::<Pod>());
    sets.create(&PostParams::default(), &statefulset("db", 3))
        .await
        .unwrap();
    for (ready, next) in [
        (&[][..], &["db-0"][..]),
        (&["db-0"][..], &["db-0", "db-1"][..]),
        (&["db-1"][..], &["db-0", "db-1", "db-2"][..]),
    ] {
        for name in ready {
            mark_ready(&pods_api, name, SignedDuration::ZERO).await;
        }
        exactly(&pods_api, "db", next).await;
        // The newest Pod is not ready: nothing more is created.
        stays(&pods_api, "db", next).await;
    }
    let pod = pods_api.get("db-1").await.unwrap();
    let labels = pod.labels();
    assert_eq!(
        labels
            .get("statefulset.kubernetes.io/pod-name")
            .map(String::as_str),
        Some("db-1")
    );
    assert_eq!(
        labels
            .get("apps.kubernetes.io/pod-index")
            .map(String::as_str),
        Some("1")
    );
    let spec = pod.spec.clone().unwrap();
    assert_eq!(
        (spec.hostname.as_deref(), spec.subdomain.as_deref()),
        (Some("db-1"), Some("db"))
    );
    assert_eq!(controller_name(&pod).as_deref(), Some("StatefulSet/db"));
    mark_ready(&pods_api, "db-2", SignedDuration::ZERO).await;
    eventually("status: 3 ready", || async {
        let s = sets.get("db").await.ok()?.status?;
        (s.ready_replicas == Some(3) && s.current_replicas == Some(3)).then_some(())
    })
    .await;

    // Scale to 1: db-2 goes first, then db-1. Both servers delete a Pod without a node at
    // once, so the order is read from a watch rather than from a state that lasts a moment.
    let deletions = deletions(&pods_api, "db", 2).await;
    patch_spec(&sets, "db", json!({"replicas": 1})).await;
    assert_eq!(
        deletions.await,
        ["db-2", "db-1"],
        "scale-down in reverse order"
    );
    exactly(&pods_api, "db", &["db-0"]).await;

    // A Pod that ends is deleted and recreated under the same name.
    let uid = pods_api.get("db-0").await.unwrap().uid();
    mark_finished(&pods_api, "db-0", "Failed").await;
    eventually("db-0 recreated", || async {
        let p = pods_api.get("db-0").await.ok()?;
        (p.uid() != uid && p.metadata.deletion_timestamp.is_none()).then_some(())
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn parallel_creates_and_deletes_all_at_once() {
    let env = Env::with(&["statefulset"]).await;
    let (sets, pods_api) = (env.api::<StatefulSet>(), env.api::<Pod>());
    let mut set = statefulset("cache", 3);
    set.spec.pod_management_policy = Some("Parallel".into());
    sets.create(&PostParams::default(), &set).await.unwrap();
    // No Pod is ready, and still all three are created.
    exactly(&pods_api, "cache", &["cache-0", "cache-1", "cache-2"]).await;
    patch_spec(&sets, "cache", json!({"replicas": 1})).await;
    exactly(&pods_api, "cache", &["cache-0"]).await;
    env.stop().await;
}

#[tokio::test]
async fn claims_are_created_mounted_and_kept_on_scale_down() {
    let env = Env::with(&["statefulset"]).await;
    let _kubelet = kubelet(env.api());
    let (sets, pods_api) = (env.api::<StatefulSet>(), env.api::<Pod>());
    let claims = env.api::<PersistentVolumeClaim>();
    sets.create(&PostParams::default(), &with_claims(statefulset("pg", 2)))
        .await
        .unwrap();
    exactly(&pods_api, "pg", &["pg-0", "pg-1"]).await;
    let claim = claims.get("data-pg-1").await.expect("data-pg-1 exists");
    assert_eq!(claim.labels().get("app").map(String::as_str), Some("pg"));
    assert!(
        claim.owner_references().is_empty(),
        "Retain: the claim has no owner"
    );
    let volumes = pods_api
        .get("pg-1")
        .await
        .unwrap()
        .spec
        .unwrap()
        .volumes
        .unwrap();
    let data = volumes
        .iter()
        .find(|v| v.name == "data")
        .expect("a data volume");
    assert_eq!(
        data.persistent_volume_claim
            .as_ref()
            .map(|c| c.claim_name.as_str()),
        Some("data-pg-1")
    );

    patch_spec(&sets, "pg", json!({"replicas": 1})).await;
    exactly(&pods_api, "pg", &["pg-0"]).await;
    assert_eq!(
        claims.get("data-pg-1").await.unwrap().uid(),
        claim.uid(),
        "the claim outlives its Pod"
    );
    // Scaled up again, pg-1 mounts the same claim.
    patch_spec(&sets, "pg", json!({"replicas": 2})).await;
    exactly(&pods_api, "pg", &["pg-0", "pg-1"]).await;
    assert_eq!(claims.get("data-pg-1").await.unwrap().uid(), claim.uid());
    env.stop().await;
}

#[tokio::test]
async fn retention_policy_delete_hands_claims_to_the_set_and_to_scaled_away_pods() {
    let env = Env::with(&["statefulset"]).await;
    let _kubelet = kubelet(env.api());
    let (sets, pods_api) = (env.api::<StatefulSet>(), env.api::<Pod>());
    let claims = env.api::<PersistentVolumeClaim>();
    let mut set = with_claims(statefulset("kv", 2));
    set.spec.persistent_volume_claim_retention_policy =
        Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
            when_deleted: Some("Delete".into()),
            when_scaled: Some("Delete".into()),
        });
    sets.create(&PostParams::default(), &set).await.unwrap();
    exactly(&pods_api, "kv", &["kv-0", "kv-1"]).await;
    let owner_kinds = |c: &PersistentVolumeClaim| -> Vec<String> {
        c.owner_references()
            .iter()
            .map(|r| format!("{}/{}", r.kind, r.name))
            .collect()
    };
    eventually("both claims owned by the set", || async {
        let list = claims.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .all(|c| owner_kinds(c) == ["StatefulSet/kv"])
            .then_some(())
    })
    .await;
    patch_spec(&sets, "kv", json!({"replicas": 1})).await;
    exactly(&pods_api, "kv", &["kv-0"]).await;
    // Before kv-1 was deleted its claim was handed to it, so the garbage collector deletes the
    // claim with the Pod. On the real plane it may stay Terminating under
    // kubernetes.io/pvc-protection, whose controller does not run there.
    eventually("the garbage collector deletes data-kv-1", || async {
        match claims.get_opt("data-kv-1").await.ok()? {
            None => Some(()),
            Some(claim) => claim.metadata.deletion_timestamp.map(|_| ()),
        }
    })
    .await;
    assert_eq!(
        owner_kinds(&claims.get("data-kv-0").await.unwrap()),
        ["StatefulSet/kv"]
    );
    env.stop().await;
}

/// The revision label of each Pod, by name.
async fn revisions(api: &Api<Pod>, app: &str) -> BTreeMap<String, String> {
    pods(api, app)
        .await
        .iter()
        .map(|p| {
            (
                p.name_any(),
                p.labels().get(REVISION_LABEL).cloned().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn rolling_update_replaces_from_the_highest_ordinal_down_to_the_partition() {
    let env = Env::with(&["statefulset"]).await;
    let _kubelet = kubelet(env.api());
    let (sets, pods_api) = (env.api::<StatefulSet>(), env.api::<Pod>());
    sets.create(&PostParams::default(), &statefulset("web", 3))
        .await
        .unwrap();
    let first = eventually("3 ready at one revision", || async {
        let s = sets.get("web").await.ok()?.status?;
        (s.ready_replicas == Some(3) && s.current_revision == s.update_revision)
            .then_some(s.current_revision?)
    })
    .await;

    patch_spec(
        &sets,
        "web",
        json!({
            "template": {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
        }),
    )
    .await;
    let update = eventually("a new update revision", || async {
        let s = sets.get("web").await.ok()?.status?;
        s.update_revision.filter(|u| *u != first)
    })
    .await;
    // Watch the rollout: a lower ordinal is never updated before a higher one.
    let seen = eventually("web-2 and web-1 at the update revision", || async {
        let now = revisions(&pods_api, "web").await;
        let at = |n: &str| now.get(n) == Some(&update);
        assert!(
            !at("web-1") || at("web-2"),
            "web-1 updated before web-2: {now:?}"
        );
        (at("web-1") && at("web-2") && now.len() == 3).then_some(now)
    })
    .await;
    assert_eq!(seen["web-0"], first, "web-0 is below the partition");
    let status = eventually("status: 2 updated, current revision kept", || async {
        let s = sets.get("web").await.ok()?.status?;
        (s.updated_replicas == Some(2) && s.ready_replicas == Some(3)).then_some(s)
    })
    .await;
    assert_eq!(status.current_revision.as_deref(), Some(first.as_str()));
    assert_eq!(status.current_replicas, Some(1));

    patch_spec(
        &sets,
        "web",
        json!({"updateStrategy": {"rollingUpdate": {"partition": 0}}}),
    )
    .await;
    eventually(
        "rollout complete: current revision = update revision",
        || async {
            let s = sets.get("web").await.ok()?.status?;
            (s.current_revision.as_deref() == Some(update.as_str())
                && s.updated_replicas == Some(3)
                && s.current_replicas == Some(3))
            .then_some(())
        },
    )
    .await;
    let history = env.api::<ControllerRevision>();
    let mut kept: Vec<String> = history
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    kept.sort();
    let mut want = vec![first.clone(), update.clone()];
    want.sort();
    assert_eq!(kept, want, "one ControllerRevision per template");

    // Rolling back to the first template reuses its revision.
    patch_spec(
        &sets,
        "web",
        json!({"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1"}]}}}),
    )
    .await;
    eventually("rolled back to the first revision", || async {
        let s = sets.get("web").await.ok()?.status?;
        (s.current_revision.as_deref() == Some(first.as_str())
            && s.update_revision.as_deref() == Some(first.as_str()))
        .then_some(())
    })
    .await;
    let number = history.get(&first).await.unwrap().revision;
    assert_eq!(number, Some(3), "the reused revision became the newest");
    env.stop().await;
}

#[tokio::test]
async fn on_delete_replaces_only_the_pods_the_user_deletes() {
    let env = Env::with(&["statefulset"]).await;
    let _kubelet = kubelet(env.api());
    let (sets, pods_api) = (env.api::<StatefulSet>(), env.api::<Pod>());
    let mut set = statefulset("od", 2);
    set.spec.update_strategy = Some(k8s_openapi::api::apps::v1::StatefulSetUpdateStrategy {
        type_: Some("OnDelete".into()),
        rolling_update: None,
    });
    sets.create(&PostParams::default(), &set).await.unwrap();
    let first = eventually("2 ready", || async {
        let s = sets.get("od").await.ok()?.status?;
        (s.ready_replicas == Some(2)).then_some(s.current_revision?)
    })
    .await;
    patch_spec(
        &sets,
        "od",
        json!({"template": {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}}),
    )
    .await;
    let update = eventually("a new update revision", || async {
        let s = sets.get("od").await.ok()?.status?;
        s.update_revision.filter(|u| *u != first)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let now = revisions(&pods_api, "od").await;
    assert!(
        now.values().all(|r| *r == first),
        "OnDelete replaced a Pod: {now:?}"
    );
    pods_api
        .delete("od-1", &kube::api::DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    eventually("od-1 recreated at the update revision", || async {
        let now = revisions(&pods_api, "od").await;
        (now.get("od-1") == Some(&update) && now.get("od-0") == Some(&first)).then_some(())
    })
    .await;
    env.stop().await;
}

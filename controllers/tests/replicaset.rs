//! The ReplicaSet controller end to end, the test playing kubelet: scale up and down in
//! upstream's ranking, replacement of deleted Pods, adoption and release by labels,
//! expectations under a burst, status counters with minReadySeconds.

mod support;

use std::time::Duration;

use jiff::SignedDuration;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use support::*;

fn replicaset(name: &str, replicas: i32, min_ready_seconds: Option<i32>) -> ReplicaSet {
    ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds,
            selector: selector(name),
            template: Some(template(name, "nginx:1")),
        },
        status: None,
    }
}

async fn scale(api: &Api<ReplicaSet>, name: &str, replicas: i32) {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": replicas}})),
    )
    .await
    .expect("scale");
}

/// Waits until the set owns exactly `n` live Pods and returns them.
async fn owned_pods(pods_api: &Api<Pod>, app: &str, n: usize) -> Vec<Pod> {
    let want = format!("ReplicaSet/{app}");
    eventually(&format!("{n} Pods owned by {want}"), || async {
        let pods = pods(pods_api, app).await;
        let owned = pods
            .iter()
            .filter(|p| controller_name(*p).as_deref() == Some(want.as_str()))
            .count();
        (owned == n && pods.len() == n).then_some(pods)
    })
    .await
}

#[tokio::test]
async fn scales_up_with_owned_pods_and_reports_ready_and_available() {
    let env = Env::with(&["replicaset"]).await;
    let (sets, pods_api) = (env.api::<ReplicaSet>(), env.api::<Pod>());
    sets.create(&PostParams::default(), &replicaset("web", 3, Some(3600)))
        .await
        .unwrap();
    let pods = owned_pods(&pods_api, "web", 3).await;
    for p in &pods {
        assert!(
            p.name_any().starts_with("web-"),
            "generated name {}",
            p.name_any()
        );
        let r = &p.owner_references()[0];
        assert_eq!(
            (
                r.api_version.as_str(),
                r.kind.as_str(),
                r.block_owner_deletion
            ),
            ("apps/v1", "ReplicaSet", Some(true))
        );
    }
    // Two Pods ready: one for two hours (available under minReadySeconds 3600), one just now.
    mark_ready(
        &pods_api,
        &pods[0].name_any(),
        SignedDuration::from_hours(2),
    )
    .await;
    mark_ready(&pods_api, &pods[1].name_any(), SignedDuration::ZERO).await;
    let status = eventually("status counts 3 replicas, 2 ready, 1 available", || async {
        let rs = sets.get("web").await.ok()?;
        let s = rs.status.clone()?;
        (s.replicas == 3 && s.ready_replicas == Some(2) && s.available_replicas == Some(1))
            .then_some(rs)
    })
    .await;
    let s = status.status.unwrap();
    assert_eq!(s.fully_labeled_replicas, Some(3));
    assert_eq!(s.observed_generation, status.metadata.generation);
    env.stop().await;
}

#[tokio::test]
async fn available_replicas_follow_min_ready_seconds_without_another_event() {
    let env = Env::with(&["replicaset"]).await;
    let (sets, pods_api) = (env.api::<ReplicaSet>(), env.api::<Pod>());
    sets.create(&PostParams::default(), &replicaset("slow", 1, Some(2)))
        .await
        .unwrap();
    let pods = owned_pods(&pods_api, "slow", 1).await;
    mark_ready(&pods_api, &pods[0].name_any(), SignedDuration::ZERO).await;
    eventually("ready but not yet available", || async {
        let s = sets.get("slow").await.ok()?.status?;
        (s.ready_replicas == Some(1) && s.available_replicas.is_none()).then_some(())
    })
    .await;
    // Nothing changes on the server; the controller requeues itself for when minReadySeconds pass.
    eventually("available after minReadySeconds", || async {
        let s = sets.get("slow").await.ok()?.status?;
        (s.available_replicas == Some(1)).then_some(())
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn deleted_pods_are_replaced() {
    let env = Env::with(&["replicaset"]).await;
    let (sets, pods_api) = (env.api::<ReplicaSet>(), env.api::<Pod>());
    sets.create(&PostParams::default(), &replicaset("web", 2, None))
        .await
        .unwrap();
    let before = owned_pods(&pods_api, "web", 2).await;
    // Delete only once the set has counted both Pods it made: a Pod deleted before the
    // controller's cache ever held it leaves its creation expected until the five-minute
    // expectations timeout (see `expectations`), which is not what this test is about.
    eventually("web counts its 2 Pods", || async {
        let s = sets.get("web").await.ok()?.status?;
        (s.replicas == 2).then_some(())
    })
    .await;
    let gone = before[0].name_any();
    pods_api
        .delete(&gone, &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let replaced = eventually("a replacement Pod", || async {
        let now = pods(&pods_api, "web").await;
        (now.len() == 2 && now.iter().all(|p| p.name_any() != gone)).then_some(now)
    })
    .await;
    assert!(
        replaced
            .iter()
            .any(|p| p.name_any() == before[1].name_any()),
        "the other Pod stays"
    );
    env.stop().await;
}

#[tokio::test]
async fn scale_down_removes_unready_then_most_recently_ready_pods_first() {
    let env = Env::with(&["replicaset"]).await;
    let (sets, pods_api) = (env.api::<ReplicaSet>(), env.api::<Pod>());
    sets.create(&PostParams::default(), &replicaset("web", 3, None))
        .await
        .unwrap();
    let pods = owned_pods(&pods_api, "web", 3).await;
    let (veteran, newcomer, unready) = (pods[0].name_any(), pods[1].name_any(), pods[2].name_any());
    mark_ready(&pods_api, &veteran, SignedDuration::from_hours(10)).await;
    mark_ready(&pods_api, &newcomer, SignedDuration::from_secs(1)).await;
    eventually("2 ready", || async {
        (sets.get("web").await.ok()?.status?.ready_replicas == Some(2)).then_some(())
    })
    .await;

    scale(&sets, "web", 2).await;
    let left = owned_pods(&pods_api, "web", 2).await;
    assert!(
        left.iter().all(|p| p.name_any() != unready),
        "the Pod that is not ready goes first: {left:?}"
    );
    scale(&sets, "web", 1).await;
    let left = owned_pods(&pods_api, "web", 1).await;
    assert_eq!(
        left[0].name_any(),
        veteran,
        "the Pod ready for longest stays"
    );
    env.stop().await;
}

#[tokio::test]
async fn adopts_matching_orphans_and_releases_pods_whose_labels_stop_matching() {
    let env = Env::with(&["replicaset"]).await;
    let (sets, pods_api) = (env.api::<ReplicaSet>(), env.api::<Pod>());
    let orphan = Pod {
        metadata: ObjectMeta {
            name: Some("orphan".into()),
            labels: Some(labels("web")),
            ..ObjectMeta::default()
        },
        spec: template("web", "nginx:1").spec,
        status: None,
    };
    pods_api
        .create(&PostParams::default(), &orphan)
        .await
        .unwrap();
    // The set must be created once the controller's Pod cache holds the orphan (else it creates
    // two Pods and has nothing to adopt, as kube-controller-manager would): a probe set's Pod,
    // created after the orphan, is counted in its status only once the cache has passed the
    // orphan. A fresh-clone CI run under load created the set before the cache saw the orphan.
    sets.create(&PostParams::default(), &replicaset("probe", 1, None))
        .await
        .unwrap();
    eventually("the probe set counts its Pod", || async {
        let probe = sets.get("probe").await.ok()?;
        (probe.status?.replicas == 1).then_some(())
    })
    .await;
    sets.create(&PostParams::default(), &replicaset("web", 2, None))
        .await
        .unwrap();
    let pods = owned_pods(&pods_api, "web", 2).await;
    assert!(
        pods.iter().any(|p| p.name_any() == "orphan"),
        "the orphan is adopted and counted: {pods:?}"
    );

    // Relabelled out of the set: released (no controller any more) and replaced.
    pods_api
        .patch(
            "orphan",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": "elsewhere"}}})),
        )
        .await
        .unwrap();
    let released = eventually("the relabelled Pod is released", || async {
        let p = pods_api.get("orphan").await.ok()?;
        p.owner_references().is_empty().then_some(p)
    })
    .await;
    assert_eq!(
        released.labels().get("app").map(String::as_str),
        Some("elsewhere")
    );
    let pods = owned_pods(&pods_api, "web", 2).await;
    assert!(pods.iter().all(|p| p.name_any() != "orphan"));
    env.stop().await;
}

#[tokio::test]
async fn a_burst_of_creates_is_not_double_counted() {
    let env = Env::with(&["replicaset"]).await;
    let (sets, pods_api) = (env.api::<ReplicaSet>(), env.api::<Pod>());
    sets.create(&PostParams::default(), &replicaset("burst", 40, None))
        .await
        .unwrap();
    owned_pods(&pods_api, "burst", 40).await;
    // Every Pod change reconciles the set again; with expectations none of those reconciles
    // creates more. Any overshoot would show within this window (the creates took far less).
    let mut max_seen = 40;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        max_seen = max_seen.max(pods(&pods_api, "burst").await.len());
    }
    assert_eq!(max_seen, 40, "never more Pods than replicas");
    env.stop().await;
}

#[tokio::test]
async fn pods_controlled_by_another_owner_are_left_alone() {
    let env = Env::with(&["replicaset"]).await;
    let (sets, pods_api) = (env.api::<ReplicaSet>(), env.api::<Pod>());
    // Owned by something else that matches no selector (a ConfigMap, say).
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = env.api();
    let cm = k8s_openapi::api::core::v1::ConfigMap {
        metadata: ObjectMeta {
            name: Some("other".into()),
            ..ObjectMeta::default()
        },
        ..Default::default()
    };
    let other = cms.create(&PostParams::default(), &cm).await.unwrap();
    let mut foreign = Pod {
        metadata: ObjectMeta {
            name: Some("foreign".into()),
            labels: Some(labels("web")),
            ..ObjectMeta::default()
        },
        spec: template("web", "nginx:1").spec,
        status: None,
    };
    foreign.metadata.owner_references = Some(vec![
        kubeforge::controller::owner::controller_reference(&other).unwrap(),
    ]);
    pods_api
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    sets.create(&PostParams::default(), &replicaset("web", 1, None))
        .await
        .unwrap();
    let pods = eventually("web creates its own Pod", || async {
        let now = pods(&pods_api, "web").await;
        (now.len() == 2).then_some(now)
    })
    .await;
    let foreign = pods
        .iter()
        .find(|p| p.name_any() == "foreign")
        .expect("the foreign Pod stays");
    assert_eq!(controller_name(foreign).as_deref(), Some("ConfigMap/other"));
    env.stop().await;
}

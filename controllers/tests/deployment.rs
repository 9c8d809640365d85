//! The Deployment controller end to end, with the ReplicaSet controller under it and the test
//! playing kubelet: a ReplicaSet per template, rolling updates within maxSurge/maxUnavailable,
//! Recreate, rollback, revisionHistoryLimit, paused, and the Progressing/Available conditions.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, ReplicaSet, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use support::*;

const REVISION: &str = "deployment.kubernetes.io/revision";

fn deployment(name: &str, replicas: i32, strategy: DeploymentStrategy) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: DeploymentSpec {
            replicas: Some(replicas),
            selector: selector(name),
            template: template(name, "nginx:1"),
            strategy: Some(strategy),
            ..DeploymentSpec::default()
        },
        status: None,
    }
}

fn rolling(max_surge: i32, max_unavailable: i32) -> DeploymentStrategy {
    DeploymentStrategy {
        type_: Some("RollingUpdate".into()),
        rolling_update: Some(RollingUpdateDeployment {
            max_surge: Some(IntOrString::Int(max_surge)),
            max_unavailable: Some(IntOrString::Int(max_unavailable)),
        }),
    }
}

fn recreate() -> DeploymentStrategy {
    DeploymentStrategy {
        type_: Some("Recreate".into()),
        rolling_update: None,
    }
}

async fn set_image(api: &Api<Deployment>, name: &str, image: &str) {
    let body =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}});
    api.patch(name, &PatchParams::default(), &Patch::Strategic(body))
        .await
        .expect("set the image");
}

fn image(rs: &ReplicaSet) -> String {
    rs.spec
        .template
        .as_ref()
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.containers[0].image.clone())
        .unwrap_or_default()
}

/// The sets of the namespace, oldest revision first.
async fn sets(api: &Api<ReplicaSet>) -> Vec<ReplicaSet> {
    let mut sets = api
        .list(&ListParams::default())
        .await
        .expect("list sets")
        .items;
    sets.sort_by_key(|rs| {
        rs.annotations()
            .get(REVISION)
            .and_then(|r| r.parse::<i64>().ok())
            .unwrap_or(0)
    });
    sets
}

/// Waits until the Deployment reports a finished rollout of `replicas` available Pods.
async fn rolled_out(api: &Api<Deployment>, name: &str, replicas: i32) -> Deployment {
    eventually(
        &format!("{name} rolled out with {replicas} available"),
        || async {
            let d = api.get(name).await.ok()?;
            let s = d.status.clone()?;
            let progressing = s
                .conditions
                .as_ref()?
                .iter()
                .find(|c| c.type_.as_deref() == Some("Progressing"))?;
            (s.observed_generation == d.metadata.generation
                && s.updated_replicas == Some(replicas)
                && s.replicas == Some(replicas)
                && s.available_replicas == Some(replicas)
                && progressing.reason.as_deref() == Some("NewReplicaSetAvailable"))
            .then_some(d)
        },
    )
    .await
}

#[tokio::test]
async fn a_deployment_runs_one_hashed_replicaset_and_reports_available() {
    let env = Env::with(&["replicaset", "deployment"]).await;
    let _kubelet = kubelet(env.api());
    let (deployments, rs_api) = (env.api::<Deployment>(), env.api::<ReplicaSet>());
    deployments
        .create(&PostParams::default(), &deployment("web", 3, rolling(1, 0)))
        .await
        .unwrap();
    let d = rolled_out(&deployments, "web", 3).await;
    let sets = sets(&rs_api).await;
    assert_eq!(sets.len(), 1);
    let rs = &sets[0];
    let hash = rs
        .labels()
        .get("pod-template-hash")
        .expect("the hash label")
        .clone();
    assert_eq!(rs.name_any(), format!("web-{hash}"));
    assert_eq!(
        rs.spec
            .selector
            .match_labels
            .as_ref()
            .unwrap()
            .get("pod-template-hash"),
        Some(&hash)
    );
    assert_eq!(controller_name(rs).as_deref(), Some("Deployment/web"));
    assert_eq!(
        rs.annotations().get(REVISION).map(String::as_str),
        Some("1")
    );
    assert_eq!(d.annotations().get(REVISION).map(String::as_str), Some("1"));
    let available = d
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_.as_deref() == Some("Available"))
        .unwrap();
    assert_eq!(
        (available.status.as_deref(), available.reason.as_deref()),
        (Some("True"), Some("MinimumReplicasAvailable"))
    );
    let pods = pods(&env.api::<Pod>(), "web").await;
    assert!(
        pods.iter()
            .all(|p| p.labels().get("pod-template-hash") == Some(&hash))
    );
    env.stop().await;
}

/// (new sets' `spec.replicas`, old sets' `spec.replicas`, available Pods of all sets).
type Sample = (i32, i32, i32);

/// Samples the sets' sizes while a rollout runs.
fn sample(
    rs_api: Api<ReplicaSet>,
    new_image: &'static str,
) -> (Arc<Mutex<Vec<Sample>>>, tokio::task::JoinHandle<()>) {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let out = samples.clone();
    let task = tokio::spawn(async move {
        loop {
            let all = sets(&rs_api).await;
            let (mut new, mut old, mut available) = (0, 0, 0);
            for rs in &all {
                let n = rs.spec.replicas.unwrap_or(0);
                if image(rs) == new_image {
                    new += n
                } else {
                    old += n
                }
                available += rs
                    .status
                    .as_ref()
                    .and_then(|s| s.available_replicas)
                    .unwrap_or(0);
            }
            out.lock().unwrap().push((new, old, available));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    (samples, task)
}

#[tokio::test]
async fn a_rolling_update_stays_within_max_surge_and_max_unavailable() {
    let env = Env::with(&["replicaset", "deployment"]).await;
    let _kubelet = kubelet(env.api());
    let (deployments, rs_api) = (env.api::<Deployment>(), env.api::<ReplicaSet>());
    deployments
        .create(&PostParams::default(), &deployment("web", 4, rolling(1, 1)))
        .await
        .unwrap();
    rolled_out(&deployments, "web", 4).await;
    let (samples, sampler) = sample(rs_api.clone(), "nginx:2");
    set_image(&deployments, "web", "nginx:2").await;
    let d = rolled_out(&deployments, "web", 4).await;
    sampler.abort();
    let samples = samples.lock().unwrap().clone();
    assert!(
        samples.iter().all(|(new, old, _)| new + old <= 5),
        "never more than replicas + maxSurge asked for: {samples:?}"
    );
    assert!(
        samples.iter().any(|(new, old, _)| *new > 0 && *old > 0),
        "old and new ran side by side: {samples:?}"
    );
    let sets = sets(&rs_api).await;
    assert_eq!(sets.len(), 2, "the old set is kept for rollback");
    assert_eq!((replicas(&sets[0]), image(&sets[0])), (0, "nginx:1".into()));
    assert_eq!((replicas(&sets[1]), image(&sets[1])), (4, "nginx:2".into()));
    assert_eq!(d.annotations().get(REVISION).map(String::as_str), Some("2"));
    env.stop().await;
}

fn replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(0)
}

#[tokio::test]
async fn recreate_removes_every_old_pod_before_the_new_set_grows() {
    let env = Env::with(&["replicaset", "deployment"]).await;
    let _kubelet = kubelet(env.api());
    let (deployments, rs_api) = (env.api::<Deployment>(), env.api::<ReplicaSet>());
    deployments
        .create(&PostParams::default(), &deployment("db", 3, recreate()))
        .await
        .unwrap();
    rolled_out(&deployments, "db", 3).await;
    let (samples, sampler) = sample(rs_api.clone(), "nginx:2");
    set_image(&deployments, "db", "nginx:2").await;
    rolled_out(&deployments, "db", 3).await;
    sampler.abort();
    let samples = samples.lock().unwrap().clone();
    assert!(
        samples.iter().all(|(new, old, _)| *new == 0 || *old == 0),
        "old and new never asked for at once: {samples:?}"
    );
    env.stop().await;
}

#[tokio::test]
async fn rollback_reuses_the_old_replicaset_with_a_new_revision() {
    let env = Env::with(&["replicaset", "deployment"]).await;
    let _kubelet = kubelet(env.api());
    let (deployments, rs_api) = (env.api::<Deployment>(), env.api::<ReplicaSet>());
    deployments
        .create(&PostParams::default(), &deployment("web", 2, rolling(1, 0)))
        .await
        .unwrap();
    rolled_out(&deployments, "web", 2).await;
    let first = sets(&rs_api).await[0].name_any();
    set_image(&deployments, "web", "nginx:2").await;
    rolled_out(&deployments, "web", 2).await;
    set_image(&deployments, "web", "nginx:1").await;
    let d = rolled_out(&deployments, "web", 2).await;
    let sets = sets(&rs_api).await;
    assert_eq!(sets.len(), 2, "no third set: {sets:?}");
    let newest = sets.last().unwrap();
    assert_eq!(newest.name_any(), first, "the first set is back");
    assert_eq!(
        newest.annotations().get(REVISION).map(String::as_str),
        Some("3")
    );
    assert_eq!(replicas(newest), 2);
    assert_eq!(d.annotations().get(REVISION).map(String::as_str), Some("3"));
    env.stop().await;
}

#[tokio::test]
async fn old_sets_beyond_revision_history_limit_are_deleted() {
    let env = Env::with(&["replicaset", "deployment"]).await;
    let _kubelet = kubelet(env.api());
    let (deployments, rs_api) = (env.api::<Deployment>(), env.api::<ReplicaSet>());
    let mut d = deployment("web", 1, rolling(1, 0));
    d.spec.revision_history_limit = Some(1);
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    for image in ["nginx:2", "nginx:3", "nginx:4"] {
        rolled_out(&deployments, "web", 1).await;
        set_image(&deployments, "web", image).await;
    }
    rolled_out(&deployments, "web", 1).await;
    let images = eventually("one old set kept", || async {
        let sets = sets(&rs_api).await;
        (sets.len() == 2).then(|| sets.iter().map(image).collect::<Vec<_>>())
    })
    .await;
    assert_eq!(images, ["nginx:3", "nginx:4"]);
    env.stop().await;
}

#[tokio::test]
async fn a_paused_deployment_does_not_roll_until_resumed() {
    let env = Env::with(&["replicaset", "deployment"]).await;
    let _kubelet = kubelet(env.api());
    let (deployments, rs_api) = (env.api::<Deployment>(), env.api::<ReplicaSet>());
    deployments
        .create(&PostParams::default(), &deployment("web", 2, rolling(1, 0)))
        .await
        .unwrap();
    rolled_out(&deployments, "web", 2).await;
    let paused = json!({"spec": {"paused": true, "template": {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(paused))
        .await
        .unwrap();
    eventually(
        "Progressing says DeploymentPaused for the new generation",
        || async {
            let d = deployments.get("web").await.ok()?;
            let s = d.status?;
            let c = s
                .conditions?
                .into_iter()
                .find(|c| c.type_.as_deref() == Some("Progressing"))?;
            (s.observed_generation == d.metadata.generation
                && c.reason.as_deref() == Some("DeploymentPaused"))
            .then_some(())
        },
    )
    .await;
    // The sync that observed the paused generation created nothing.
    let images: Vec<String> = sets(&rs_api).await.iter().map(image).collect();
    assert_eq!(images, ["nginx:1"], "paused: no new set");
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": false}})),
        )
        .await
        .unwrap();
    rolled_out(&deployments, "web", 2).await;
    let newest = sets(&rs_api).await.pop().unwrap();
    assert_eq!((image(&newest), replicas(&newest)), ("nginx:2".into(), 2));
    env.stop().await;
}

#[tokio::test]
async fn a_rollout_without_progress_exceeds_its_deadline() {
    // No kubelet: Pods never become ready.
    let env = Env::with(&["replicaset", "deployment"]).await;
    let deployments = env.api::<Deployment>();
    let mut d = deployment("stuck", 1, rolling(1, 0));
    d.spec.progress_deadline_seconds = Some(2);
    deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    let c = eventually("Progressing False ProgressDeadlineExceeded", || async {
        let s = deployments.get("stuck").await.ok()?.status?;
        s.conditions?.into_iter().find(|c| {
            c.type_.as_deref() == Some("Progressing") && c.status.as_deref() == Some("False")
        })
    })
    .await;
    assert_eq!(c.reason.as_deref(), Some("ProgressDeadlineExceeded"));
    assert!(c.message.unwrap().contains("has timed out progressing"));
    env.stop().await;
}

#[tokio::test]
async fn scaling_a_finished_deployment_resizes_its_replicaset() {
    let env = Env::with(&["replicaset", "deployment"]).await;
    let _kubelet = kubelet(env.api());
    let (deployments, rs_api) = (env.api::<Deployment>(), env.api::<ReplicaSet>());
    deployments
        .create(&PostParams::default(), &deployment("web", 2, rolling(1, 0)))
        .await
        .unwrap();
    rolled_out(&deployments, "web", 2).await;
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    rolled_out(&deployments, "web", 5).await;
    let sets = sets(&rs_api).await;
    assert_eq!(sets.len(), 1);
    assert_eq!(replicas(&sets[0]), 5);
    assert_eq!(
        sets[0]
            .annotations()
            .get("deployment.kubernetes.io/desired-replicas")
            .map(String::as_str),
        Some("5")
    );
    env.stop().await;
}

//! The Job controller end to end, the test playing kubelet (Pods succeed or fail when it says):
//! parallelism and completions, Indexed Jobs, backoffLimit with backoff, activeDeadlineSeconds,
//! suspend and resume, ttlSecondsAfterFinished, and counting through the tracking finalizer.

mod support;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::{Api, ResourceExt};
use kubeforge_controllers::Options;
use kubeforge_controllers::job::{Backoff, TRACKING_FINALIZER};
use serde_json::json;
use support::*;

/// Tests replace failed Pods after 200 ms doubling, not upstream's 10 s.
fn fast() -> Options {
    Options {
        job_backoff: Backoff {
            base: Duration::from_millis(200),
            max: Duration::from_secs(2),
        },
        ..Options::default()
    }
}

fn job(name: &str, completions: Option<i32>, parallelism: i32) -> Job {
    let mut template = template(name, "busybox:1");
    template.spec.as_mut().unwrap().restart_policy = Some("Never".into());
    Job {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            completions,
            parallelism: Some(parallelism),
            template,
            ..JobSpec::default()
        }),
        status: None,
    }
}

/// The Job's Pods that are still running (not finished, not being deleted).
async fn running(api: &Api<Pod>, job: &str) -> Vec<Pod> {
    api.list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}")))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .collect()
}

async fn wait_running(api: &Api<Pod>, job: &str, n: usize) -> Vec<Pod> {
    eventually(&format!("{n} running Pods of {job}"), || async {
        let pods = running(api, job).await;
        (pods.len() == n).then_some(pods)
    })
    .await
}

/// Waits for the Job's condition `type_` to be true and returns the Job.
async fn condition(api: &Api<Job>, name: &str, type_: &str) -> Job {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let job = api.get(name).await.expect("get the Job");
        let conditions = job.status.as_ref().and_then(|s| s.conditions.as_ref());
        if conditions.is_some_and(|c| c.iter().any(|c| c.type_ == type_ && c.status == "True")) {
            return job;
        }
        let status = &job.status;
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {name} {type_}; its status: {status:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn reason(job: &Job, type_: &str) -> Option<String> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)?
        .reason
        .clone()
}

#[tokio::test]
async fn runs_parallelism_pods_until_completions_succeed() {
    let env = Env::with_options(&["job"], fast()).await;
    let (jobs, pods) = (env.api::<Job>(), env.api::<Pod>());
    jobs.create(&PostParams::default(), &job("work", Some(3), 2))
        .await
        .unwrap();
    let first = wait_running(&pods, "work", 2).await;
    assert!(
        first
            .iter()
            .all(|p| p.finalizers().iter().any(|f| f == TRACKING_FINALIZER))
    );
    assert!(
        first
            .iter()
            .all(|p| controller_name(p).as_deref() == Some("Job/work"))
    );
    for p in &first {
        mark_finished(&pods, &p.name_any(), "Succeeded").await;
    }
    // One completion left: one Pod, not two.
    let last = wait_running(&pods, "work", 1).await;
    mark_finished(&pods, &last[0].name_any(), "Succeeded").await;
    let done = condition(&jobs, "work", "Complete").await;
    let s = done.status.clone().unwrap();
    assert_eq!(
        (s.succeeded, s.failed.unwrap_or(0), s.active.unwrap_or(0)),
        (Some(3), 0, 0)
    );
    assert!(s.completion_time.is_some() && s.start_time.is_some());
    assert_eq!(
        reason(&done, "SuccessCriteriaMet").as_deref(),
        Some("CompletionsReached")
    );
    // Counted Pods are released from the tracking finalizer.
    let all = pods
        .list(&ListParams::default().labels("batch.kubernetes.io/job-name=work"))
        .await
        .unwrap()
        .items;
    assert_eq!(all.len(), 3);
    eventually("finalizers removed", || async {
        let all = pods
            .list(&ListParams::default().labels("batch.kubernetes.io/job-name=work"))
            .await
            .ok()?
            .items;
        all.iter().all(|p| p.finalizers().is_empty()).then_some(())
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn an_indexed_job_runs_one_pod_per_index_and_reports_completed_indexes() {
    let env = Env::with_options(&["job"], fast()).await;
    let (jobs, pods) = (env.api::<Job>(), env.api::<Pod>());
    let mut j = job("idx", Some(3), 3);
    j.spec.as_mut().unwrap().completion_mode = Some("Indexed".into());
    jobs.create(&PostParams::default(), &j).await.unwrap();
    let running_pods = wait_running(&pods, "idx", 3).await;
    let mut indexes: Vec<String> = running_pods
        .iter()
        .map(|p| p.annotations()["batch.kubernetes.io/job-completion-index"].clone())
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "2"]);
    let one = running_pods
        .iter()
        .find(|p| p.annotations()["batch.kubernetes.io/job-completion-index"] == "1")
        .unwrap();
    assert!(one.name_any().starts_with("idx-1-"), "{}", one.name_any());
    assert_eq!(
        one.spec.as_ref().unwrap().hostname.as_deref(),
        Some("idx-1")
    );
    mark_finished(&pods, &one.name_any(), "Succeeded").await;
    eventually("completedIndexes 1", || async {
        (jobs
            .get("idx")
            .await
            .ok()?
            .status?
            .completed_indexes
            .as_deref()
            == Some("1"))
        .then_some(())
    })
    .await;
    // A failed index is retried with a new Pod for the same index.
    let zero = running_pods
        .iter()
        .find(|p| p.annotations()["batch.kubernetes.io/job-completion-index"] == "0")
        .unwrap();
    mark_finished(&pods, &zero.name_any(), "Failed").await;
    let retry = eventually("a new Pod for index 0", || async {
        let pods = running(&pods, "idx").await;
        pods.into_iter().find(|p| {
            p.annotations()["batch.kubernetes.io/job-completion-index"] == "0"
                && p.name_any() != zero.name_any()
        })
    })
    .await;
    for p in running(&pods, "idx").await {
        mark_finished(&pods, &p.name_any(), "Succeeded").await;
    }
    let done = condition(&jobs, "idx", "Complete").await;
    let s = done.status.unwrap();
    assert_eq!(
        (s.completed_indexes.as_deref(), s.succeeded, s.failed),
        (Some("0-2"), Some(3), Some(1))
    );
    assert!(retry.name_any().starts_with("idx-0-"));
    env.stop().await;
}

#[tokio::test]
async fn failures_beyond_backoff_limit_fail_the_job() {
    let env = Env::with_options(&["job"], fast()).await;
    let (jobs, pods) = (env.api::<Job>(), env.api::<Pod>());
    let mut j = job("flaky", Some(1), 1);
    j.spec.as_mut().unwrap().backoff_limit = Some(1);
    jobs.create(&PostParams::default(), &j).await.unwrap();
    let first = wait_running(&pods, "flaky", 1).await;
    mark_finished(&pods, &first[0].name_any(), "Failed").await;
    // backoffLimit 1: one retry.
    let second = eventually("a replacement after the backoff", || async {
        let pods = running(&pods, "flaky").await;
        pods.into_iter()
            .find(|p| p.name_any() != first[0].name_any())
    })
    .await;
    mark_finished(&pods, &second.name_any(), "Failed").await;
    let failed = condition(&jobs, "flaky", "Failed").await;
    assert_eq!(
        reason(&failed, "Failed").as_deref(),
        Some("BackoffLimitExceeded")
    );
    assert_eq!(
        reason(&failed, "FailureTarget").as_deref(),
        Some("BackoffLimitExceeded")
    );
    assert_eq!(failed.status.unwrap().failed, Some(2));
    assert!(running(&pods, "flaky").await.is_empty(), "no third attempt");
    env.stop().await;
}

#[tokio::test]
async fn active_deadline_fails_the_job_and_stops_its_pods() {
    let env = Env::with_options(&["job"], fast()).await;
    let (jobs, pods) = (env.api::<Job>(), env.api::<Pod>());
    let mut j = job("slow", Some(1), 2);
    j.spec.as_mut().unwrap().active_deadline_seconds = Some(2);
    j.spec.as_mut().unwrap().completions = Some(2);
    jobs.create(&PostParams::default(), &j).await.unwrap();
    wait_running(&pods, "slow", 2).await;
    let failed = condition(&jobs, "slow", "Failed").await;
    assert_eq!(
        reason(&failed, "Failed").as_deref(),
        Some("DeadlineExceeded")
    );
    wait_running(&pods, "slow", 0).await;
    env.stop().await;
}

#[tokio::test]
async fn suspend_deletes_active_pods_and_resume_starts_again() {
    let env = Env::with_options(&["job"], fast()).await;
    let (jobs, pods) = (env.api::<Job>(), env.api::<Pod>());
    jobs.create(&PostParams::default(), &job("pausable", Some(2), 2))
        .await
        .unwrap();
    wait_running(&pods, "pausable", 2).await;
    jobs.patch(
        "pausable",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": true}})),
    )
    .await
    .unwrap();
    let suspended = condition(&jobs, "pausable", "Suspended").await;
    assert_eq!(
        reason(&suspended, "Suspended").as_deref(),
        Some("JobSuspended")
    );
    wait_running(&pods, "pausable", 0).await;
    let s = eventually("no active Pods, none counted as failed", || async {
        let s = jobs.get("pausable").await.ok()?.status?;
        (s.active.unwrap_or(0) == 0 && s.start_time.is_none()).then_some(s)
    })
    .await;
    assert_eq!(
        s.failed.unwrap_or(0),
        0,
        "Pods deleted by suspension are not failures"
    );
    jobs.patch(
        "pausable",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": false}})),
    )
    .await
    .unwrap();
    wait_running(&pods, "pausable", 2).await;
    let resumed = eventually("Suspended False JobResumed", || async {
        let j = jobs.get("pausable").await.ok()?;
        (reason(&j, "Suspended").as_deref() == Some("JobResumed")
            && j.status.as_ref()?.start_time.is_some())
        .then_some(j)
    })
    .await;
    assert!(
        resumed
            .status
            .unwrap()
            .conditions
            .unwrap()
            .iter()
            .any(|c| c.type_ == "Suspended" && c.status == "False")
    );
    env.stop().await;
}

#[tokio::test]
async fn a_finished_job_is_deleted_after_its_ttl() {
    let env = Env::with_options(&["job"], fast()).await;
    let (jobs, pods) = (env.api::<Job>(), env.api::<Pod>());
    // Complete lasts only the TTL, so it is read from a watch rather than from polls that a
    // loaded machine may schedule after the Job is gone.
    let version = jobs
        .list(&ListParams::default())
        .await
        .expect("list Jobs")
        .metadata
        .resource_version
        .expect("a list has a resourceVersion");
    let params = WatchParams::default().fields("metadata.name=shortlived");
    let mut events = jobs.watch(&params, &version).await.expect("watch").boxed();
    let mut j = job("shortlived", Some(1), 1);
    j.spec.as_mut().unwrap().ttl_seconds_after_finished = Some(1);
    jobs.create(&PostParams::default(), &j).await.unwrap();
    let p = wait_running(&pods, "shortlived", 1).await;
    mark_finished(&pods, &p[0].name_any(), "Succeeded").await;
    let mut completed = None;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(60), events.try_next());
        match next
            .await
            .expect("the Job completes and is deleted within 60 s")
        {
            Ok(Some(WatchEvent::Added(job) | WatchEvent::Modified(job))) => {
                let status = job.status.unwrap_or_default();
                let complete = status
                    .conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Complete" && c.status == "True");
                if complete && completed.is_none() {
                    completed = status.completion_time.map(|t| t.0);
                }
            }
            Ok(Some(WatchEvent::Deleted(_))) => break,
            Ok(Some(WatchEvent::Error(e))) => panic!("the watch failed: {e}"),
            Ok(Some(WatchEvent::Bookmark(_))) => {}
            other => panic!("the watch ended: {other:?}"),
        }
    }
    let completed = completed.expect("the Job was Complete, with a completionTime, before it went");
    let lived = jiff::Timestamp::now().duration_since(completed);
    assert!(
        lived >= jiff::SignedDuration::from_secs(1),
        "deleted {lived:?} after completing, before its 1 s TTL"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_work_queue_job_completes_once_one_pod_succeeded_and_none_runs() {
    let env = Env::with_options(&["job"], fast()).await;
    let (jobs, pods) = (env.api::<Job>(), env.api::<Pod>());
    jobs.create(&PostParams::default(), &job("queue", None, 2))
        .await
        .unwrap();
    let both = wait_running(&pods, "queue", 2).await;
    mark_finished(&pods, &both[0].name_any(), "Succeeded").await;
    eventually("one succeeded, one still active, no new Pod", || async {
        let s = jobs.get("queue").await.ok()?.status?;
        (s.succeeded == Some(1) && s.active == Some(1)).then_some(())
    })
    .await;
    assert_eq!(running(&pods, "queue").await.len(), 1);
    mark_finished(&pods, &both[1].name_any(), "Succeeded").await;
    condition(&jobs, "queue", "Complete").await;
    env.stop().await;
}

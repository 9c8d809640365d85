//! The CronJob controller end to end on a clock running an hour per second, the test playing
//! the Job controller (marking Jobs complete): schedules and names, concurrencyPolicy Allow /
//! Forbid / Replace, history limits, suspend, time zones.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, Job, JobSpec, JobTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use kubeforge_controllers::Options;
use kubeforge_controllers::clock::FastClock;
use serde_json::json;
use support::*;

/// An hour of schedule per real second.
fn hour_per_second() -> Options {
    Options {
        clock: Arc::new(FastClock::new(Timestamp::now(), 3600.0)),
        ..Options::default()
    }
}

fn cronjob(name: &str, schedule: &str, policy: &str) -> CronJob {
    let mut template = template(name, "busybox:1");
    template.spec.as_mut().unwrap().restart_policy = Some("Never".into());
    CronJob {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: CronJobSpec {
            schedule: schedule.into(),
            concurrency_policy: Some(policy.into()),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(name)),
                    ..ObjectMeta::default()
                }),
                spec: Some(JobSpec {
                    template,
                    ..JobSpec::default()
                }),
            },
            ..CronJobSpec::default()
        },
        status: None,
    }
}

/// The Jobs of the namespace (not being deleted), by name.
async fn jobs(api: &Api<Job>) -> Vec<Job> {
    let mut jobs: Vec<Job> = api
        .list(&ListParams::default())
        .await
        .expect("list jobs")
        .items
        .into_iter()
        .filter(|j| j.metadata.deletion_timestamp.is_none())
        .collect();
    jobs.sort_by_key(ResourceExt::name_any);
    jobs
}

fn is_done(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Complete"))
}

/// Plays the Job controller: the Job succeeded.
async fn complete(api: &Api<Job>, name: &str) {
    let now = Timestamp::now().to_string();
    let status = json!({"status": {
        "startTime": now, "completionTime": now, "succeeded": 1,
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "lastTransitionTime": now},
            {"type": "Complete", "status": "True", "reason": "CompletionsReached", "lastTransitionTime": now},
        ],
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .expect("complete the Job");
}

/// The scheduled minute a Job's name carries (`<cronjob>-<minutes since the epoch>`).
fn minute(job: &Job) -> i64 {
    job.name_any()
        .rsplit('-')
        .next()
        .and_then(|m| m.parse().ok())
        .expect("a minute suffix")
}

#[tokio::test]
async fn hourly_jobs_are_named_by_their_time_and_old_ones_are_pruned() {
    let env = Env::with_options(&["cronjob"], hour_per_second()).await;
    let (cronjobs, jobs_api) = (env.api::<CronJob>(), env.api::<Job>());
    cronjobs
        .create(
            &PostParams::default(),
            &cronjob("hourly", "@hourly", "Allow"),
        )
        .await
        .unwrap();
    // Complete every Job as it appears, until five have run.
    let mut seen = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for five hourly runs: {seen:?}"
        );
        for job in jobs(&jobs_api).await {
            if !is_done(&job) {
                complete(&jobs_api, &job.name_any()).await;
            }
            seen.insert(minute(&job));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let minutes: Vec<i64> = seen.iter().copied().collect();
    assert!(
        minutes.iter().all(|m| m % 60 == 0),
        "on the hour: {minutes:?}"
    );
    assert!(
        minutes.windows(2).all(|w| w[1] - w[0] == 60),
        "every hour, none skipped or doubled: {minutes:?}"
    );
    let job = jobs(&jobs_api).await.pop().unwrap();
    assert_eq!(controller_name(&job).as_deref(), Some("CronJob/hourly"));
    let stamp = &job.annotations()["batch.kubernetes.io/cronjob-scheduled-timestamp"];
    assert_eq!(
        stamp.parse::<Timestamp>().unwrap().as_second() / 60,
        minute(&job)
    );
    // successfulJobsHistoryLimit (3): older finished Jobs go.
    let kept = eventually("at most 3 finished Jobs kept", || async {
        let all = jobs(&jobs_api).await;
        for j in all.iter().filter(|j| !is_done(j)) {
            complete(&jobs_api, &j.name_any()).await;
        }
        let done: Vec<Job> = all.into_iter().filter(is_done).collect();
        (done.len() <= 3).then_some(done)
    })
    .await;
    assert!(!kept.is_empty());
    let status = cronjobs.get("hourly").await.unwrap().status.unwrap();
    assert!(status.last_schedule_time.is_some() && status.last_successful_time.is_some());
    env.stop().await;
}

#[tokio::test]
async fn forbid_skips_runs_while_a_job_is_active() {
    let env = Env::with_options(&["cronjob"], hour_per_second()).await;
    let (cronjobs, jobs_api) = (env.api::<CronJob>(), env.api::<Job>());
    cronjobs
        .create(
            &PostParams::default(),
            &cronjob("exclusive", "@hourly", "Forbid"),
        )
        .await
        .unwrap();
    let first = eventually("the first run", || async {
        jobs(&jobs_api).await.into_iter().next()
    })
    .await;
    let active = eventually("status.active lists it", || async {
        let active = cronjobs.get("exclusive").await.ok()?.status?.active?;
        (active.len() == 1).then_some(active)
    })
    .await;
    assert_eq!(active[0].name.as_deref(), Some(first.name_any().as_str()));
    // Three simulated hours pass: no second Job while the first runs.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(jobs(&jobs_api).await.len(), 1, "Forbid: one Job at a time");
    complete(&jobs_api, &first.name_any()).await;
    let second = eventually("the next run after the first finished", || async {
        jobs(&jobs_api)
            .await
            .into_iter()
            .find(|j| j.name_any() != first.name_any())
    })
    .await;
    assert!(
        minute(&second) >= minute(&first) + 3 * 60,
        "the skipped hours are not caught up one by one"
    );
    env.stop().await;
}

#[tokio::test]
async fn replace_deletes_the_running_job_for_the_next_run() {
    let env = Env::with_options(&["cronjob"], hour_per_second()).await;
    let (cronjobs, jobs_api) = (env.api::<CronJob>(), env.api::<Job>());
    cronjobs
        .create(
            &PostParams::default(),
            &cronjob("latest", "@hourly", "Replace"),
        )
        .await
        .unwrap();
    let first = eventually("the first run", || async {
        jobs(&jobs_api).await.into_iter().next()
    })
    .await;
    eventually("the first Job is replaced by a later one", || async {
        let now = jobs(&jobs_api).await;
        (now.len() == 1 && now[0].name_any() != first.name_any()).then_some(())
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn a_suspended_cronjob_starts_nothing() {
    let env = Env::with_options(&["cronjob"], hour_per_second()).await;
    let (cronjobs, jobs_api) = (env.api::<CronJob>(), env.api::<Job>());
    let mut cj = cronjob("paused", "@hourly", "Allow");
    cj.spec.suspend = Some(true);
    cronjobs.create(&PostParams::default(), &cj).await.unwrap();
    // A second control CronJob shows the controller is scheduling meanwhile.
    cronjobs
        .create(
            &PostParams::default(),
            &cronjob("control", "@hourly", "Allow"),
        )
        .await
        .unwrap();
    eventually("the control CronJob ran twice", || async {
        let n = jobs(&jobs_api)
            .await
            .iter()
            .filter(|j| j.name_any().starts_with("control-"))
            .count();
        (n >= 2).then_some(())
    })
    .await;
    assert!(
        jobs(&jobs_api)
            .await
            .iter()
            .all(|j| !j.name_any().starts_with("paused-")),
        "suspended: no Job"
    );
    cronjobs
        .patch(
            "paused",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": false}})),
        )
        .await
        .unwrap();
    eventually("runs once resumed", || async {
        jobs(&jobs_api)
            .await
            .iter()
            .any(|j| j.name_any().starts_with("paused-"))
            .then_some(())
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn a_daily_schedule_runs_in_its_time_zone() {
    let env = Env::with_options(&["cronjob"], hour_per_second()).await;
    let (cronjobs, jobs_api) = (env.api::<CronJob>(), env.api::<Job>());
    let mut cj = cronjob("tokyo", "0 9 * * *", "Allow");
    cj.spec.time_zone = Some("Asia/Tokyo".into());
    cronjobs.create(&PostParams::default(), &cj).await.unwrap();
    // Within a simulated day (24 s) it runs once, at 09:00 Tokyo time (00:00 UTC).
    let job = eventually("the daily run", || async {
        jobs(&jobs_api).await.into_iter().next()
    })
    .await;
    let stamp = job.annotations()["batch.kubernetes.io/cronjob-scheduled-timestamp"].clone();
    assert!(stamp.contains("T09:00:00+09:00"), "{stamp}");
    assert_eq!(minute(&job) % (24 * 60), 0, "00:00 UTC");
    env.stop().await;
}

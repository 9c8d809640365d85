//! The CronJob controller (upstream `pkg/controller/cronjob`, the v2 controller): creates a Job
//! each time the schedule fires.
//!
//! - **Schedule**: standard cron and the `@hourly`-style macros, in `spec.timeZone`
//!   ([`schedule`]); the controller requeues itself for the next time. Missed times are not
//!   caught up one by one: only the most recent one runs (more than 100 missed is logged, as
//!   upstream's `TooManyMissedTimes`), and not at all once `startingDeadlineSeconds` has passed.
//! - **Jobs**: named `<cronjob>-<scheduled time in minutes since the epoch>` (so a time runs at
//!   most once, even across restarts), from `jobTemplate`, with the
//!   `batch.kubernetes.io/cronjob-scheduled-timestamp` annotation, controlled by the CronJob.
//! - **concurrencyPolicy**: Allow; Forbid (skip a time while a Job runs); Replace (delete the
//!   running Jobs, in the background, then start the new one).
//! - **Status**: `active` (references to running Jobs), `lastScheduleTime`,
//!   `lastSuccessfulTime`; finished Jobs beyond `successfulJobsHistoryLimit` (3) and
//!   `failedJobsHistoryLimit` (1) are deleted, oldest first. `suspend` schedules nothing.
//! - **Clock**: injectable ([`crate::clock`]), so a test runs a day of schedule in seconds.
//!
//! Left out: events (`SuccessfulCreate`, `MissSchedule`, …).

pub mod schedule;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{DeleteParams, PostParams, PropagationPolicy};
use kube::{Api, ResourceExt};
use kubeforge::controller::owner::controller_reference;
use kubeforge::controller::{Action, BuildError, Context, Controller, ReconcileError, Watch};
use kubeforge::manager::Manager;

use crate::clock::{Clock, SystemClock};
use schedule::{Schedule, TOO_MANY_MISSED};

/// The controller's name (logs, metrics, field manager).
pub const NAME: &str = "cronjob-controller";
/// The annotation on a Job saying which scheduled time it runs for.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// Registers the CronJob controller on the system clock.
///
/// # Errors
/// When the manager refuses the controller.
pub fn setup(mgr: &mut Manager) -> Result<(), BuildError> {
    setup_with(mgr, Arc::new(SystemClock))
}

/// Registers the CronJob controller on `clock`.
///
/// # Errors
/// When the manager refuses the controller.
pub fn setup_with(mgr: &mut Manager, clock: Arc<dyn Clock>) -> Result<(), BuildError> {
    Controller::managed_by(mgr)
        .for_::<CronJob>(Watch::new())
        .named(NAME)
        .owns::<Job>(Watch::new())
        .concurrency(5)
        .complete(reconcile, clock)
}

/// The Job's finished condition (`Complete` or `Failed`), if it has one.
fn finished(job: &Job) -> Option<&'static str> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    ["Complete", "Failed"].into_iter().find(|t| {
        conditions
            .iter()
            .any(|c| c.type_ == *t && c.status == "True")
    })
}

fn reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        ..ObjectReference::default()
    }
}

async fn reconcile(
    cj: Arc<CronJob>,
    ctx: Context<Arc<dyn Clock>>,
) -> Result<Action, ReconcileError> {
    let clock = ctx.data().clone();
    let now = clock.now();
    let namespace = cj.namespace().unwrap_or_default();
    let jobs_api: Api<Job> = Api::namespaced(ctx.client().clone(), &namespace);
    let owned: Vec<Arc<Job>> = ctx
        .lister::<Job>()?
        .list_namespace(&namespace)
        .into_iter()
        .filter(|j| {
            j.owner_references()
                .iter()
                .any(|r| r.controller == Some(true) && Some(&r.uid) == cj.metadata.uid.as_ref())
        })
        .collect();
    let old = cj.status.clone().unwrap_or_default();
    let mut status = track_active(&old, &owned);
    if cj.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let schedule = match Schedule::parse(&cj.spec.schedule, cj.spec.time_zone.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            write_status(&cj, &ctx, &old, &status).await?;
            return Err(ReconcileError::terminal(e));
        }
    };
    let next = start_due(&cj, &owned, &schedule, &mut status, &jobs_api, now).await?;
    write_status(&cj, &ctx, &old, &status).await?;
    clean_history(&cj, &owned, &jobs_api).await?;
    Ok(match next {
        Some(at) => {
            Action::requeue(clock.real(at.duration_since(now)) + Duration::from_millis(100))
        }
        None => Action::await_change(),
    })
}

/// `status.active` brought in line with the Jobs (upstream: finished Jobs leave it, running
/// Jobs the CronJob controls join it, deleted ones leave it), and `lastSuccessfulTime`.
fn track_active(old: &CronJobStatus, owned: &[Arc<Job>]) -> CronJobStatus {
    let mut status = old.clone();
    let mut active: Vec<ObjectReference> = Vec::new();
    for job in owned {
        match finished(job) {
            None => active.push(reference(job)),
            Some("Complete") => {
                let done = job.status.as_ref().and_then(|s| s.completion_time.clone());
                if done.is_some() && done > status.last_successful_time {
                    status.last_successful_time = done;
                }
            }
            Some(_) => {}
        }
    }
    active.sort_by(|a, b| a.name.cmp(&b.name));
    // Keep the references already listed as they are (their resourceVersion included).
    for r in &mut active {
        if let Some(listed) = old.active.iter().flatten().find(|o| o.uid == r.uid) {
            r.clone_from(listed);
        }
    }
    status.active = (!active.is_empty()).then_some(active);
    status
}

/// Starts the Job for the most recent scheduled time if it is due (upstream `syncCronJob`);
/// returns when the schedule fires next.
async fn start_due(
    cj: &CronJob,
    owned: &[Arc<Job>],
    schedule: &Schedule,
    status: &mut CronJobStatus,
    jobs: &Api<Job>,
    now: Timestamp,
) -> Result<Option<Timestamp>, ReconcileError> {
    let next = schedule.next_after(now);
    if cj.spec.suspend == Some(true) {
        return Ok(None);
    }
    let created = cj.metadata.creation_timestamp.as_ref().map_or(now, |t| t.0);
    let mut earliest = status.last_schedule_time.as_ref().map_or(created, |t| t.0);
    let deadline = cj
        .spec
        .starting_deadline_seconds
        .map(SignedDuration::from_secs);
    if let Some(d) = deadline {
        earliest = earliest.max(now - d);
    }
    let (scheduled, missed) = schedule.most_recent(earliest, now);
    let Some(scheduled) = scheduled else {
        return Ok(next);
    };
    if missed > TOO_MANY_MISSED {
        tracing::warn!(cronjob = %cj.name_any(), "too many missed start times (> {TOO_MANY_MISSED}); set or shorten startingDeadlineSeconds");
    }
    if deadline.is_some_and(|d| scheduled + d < now) {
        tracing::info!(cronjob = %cj.name_any(), "missed the scheduled time {scheduled}: past startingDeadlineSeconds");
        return Ok(next);
    }
    let name = format!("{}-{}", cj.name_any(), scheduled.as_second() / 60);
    if status
        .last_schedule_time
        .as_ref()
        .is_some_and(|t| t.0 >= scheduled)
    {
        return Ok(next);
    }
    if owned.iter().any(|j| j.name_any() == name) {
        // Started by an earlier sync whose status write was lost.
        status.last_schedule_time = Some(Time(scheduled));
        return Ok(next);
    }
    let running = status.active.clone().unwrap_or_default();
    match cj.spec.concurrency_policy.as_deref().unwrap_or("Allow") {
        "Forbid" if !running.is_empty() => {
            tracing::info!(cronjob = %cj.name_any(), "not starting a Job: the previous one still runs and concurrencyPolicy is Forbid");
            return Ok(next);
        }
        "Replace" => {
            let background = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                ..DeleteParams::default()
            };
            for r in &running {
                let job = r.name.clone().unwrap_or_default();
                match jobs.delete(&job, &background).await {
                    Ok(_) => {}
                    Err(e) if crate::writes::has_code(&e, &[404]) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            status.active = None;
        }
        _ => {}
    }
    let job = job_for(cj, schedule, &name, scheduled)?;
    let created = match jobs
        .create(
            &PostParams {
                field_manager: Some(NAME.into()),
                ..PostParams::default()
            },
            &job,
        )
        .await
    {
        Ok(job) => job,
        // Created by an earlier sync the cache has not shown yet: take it if it is ours.
        Err(e) if crate::writes::has_code(&e, &[409]) => {
            let existing = jobs.get(&name).await?;
            if !existing
                .owner_references()
                .iter()
                .any(|r| Some(&r.uid) == cj.metadata.uid.as_ref())
            {
                return Err(ReconcileError::terminal(format!(
                    "Job {name} exists and is not controlled by this CronJob"
                )));
            }
            status.last_schedule_time = Some(Time(scheduled));
            return Ok(next);
        }
        Err(e) => return Err(e.into()),
    };
    status
        .active
        .get_or_insert_with(Vec::new)
        .push(reference(&created));
    status.last_schedule_time = Some(Time(scheduled));
    Ok(next)
}

/// The Job for `scheduled` (upstream `getJobFromTemplate2`).
fn job_for(
    cj: &CronJob,
    schedule: &Schedule,
    name: &str,
    scheduled: Timestamp,
) -> Result<Job, ReconcileError> {
    let template = &cj.spec.job_template;
    let meta = template.metadata.clone().unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP.into(), schedule.format(scheduled));
    let owner = controller_reference(cj).map_err(|e| ReconcileError::terminal(e.to_string()))?;
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: cj.namespace(),
            labels: meta
                .labels
                .or_else(|| Some(BTreeMap::new()))
                .filter(|l| !l.is_empty()),
            annotations: Some(annotations),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    })
}

/// Deletes the oldest finished Jobs beyond the history limits.
async fn clean_history(
    cj: &CronJob,
    owned: &[Arc<Job>],
    jobs: &Api<Job>,
) -> Result<(), ReconcileError> {
    let background = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    for (kind, limit) in [
        (
            "Complete",
            cj.spec.successful_jobs_history_limit.unwrap_or(3),
        ),
        ("Failed", cj.spec.failed_jobs_history_limit.unwrap_or(1)),
    ] {
        let mut done: Vec<&Arc<Job>> = owned
            .iter()
            .filter(|j| finished(j) == Some(kind) && j.metadata.deletion_timestamp.is_none())
            .collect();
        done.sort_by_key(|j| {
            j.status
                .as_ref()
                .and_then(|s| s.start_time.clone())
                .or_else(|| j.metadata.creation_timestamp.clone())
        });
        let excess = done
            .len()
            .saturating_sub(usize::try_from(limit.max(0)).unwrap_or(0));
        for job in done.into_iter().take(excess) {
            match jobs.delete(&job.name_any(), &background).await {
                Ok(_) => {}
                Err(e) if crate::writes::has_code(&e, &[404]) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

async fn write_status(
    cj: &CronJob,
    ctx: &Context<Arc<dyn Clock>>,
    old: &CronJobStatus,
    new: &CronJobStatus,
) -> Result<(), ReconcileError> {
    let api: Api<CronJob> =
        Api::namespaced(ctx.client().clone(), &cj.namespace().unwrap_or_default());
    crate::writes::write_status(&api, cj, NAME, old, new).await?;
    Ok(())
}

//! The Job controller (upstream `pkg/controller/job`): runs Pods until `completions` succeed.
//!
//! - **Pods**: up to `parallelism` at a time, never more than the completions still missing;
//!   NonIndexed (any success counts; without `completions`, a work queue: done once one Pod
//!   succeeded and none runs) or Indexed (one Pod per index `0..completions`, named
//!   `<job>-<index>-…`, with the `batch.kubernetes.io/job-completion-index` annotation and
//!   label, hostname and `JOB_COMPLETION_INDEX` variable; `status.completedIndexes`).
//! - **Counting that survives restarts**: Pods carry the `batch.kubernetes.io/job-tracking`
//!   finalizer; a finished Pod is added to `succeeded`/`failed` and to
//!   `uncountedTerminatedPods` in one status write, then its finalizer is removed, then it
//!   leaves `uncountedTerminatedPods` — so no Pod is counted twice or lost.
//! - **Failure**: more failures than `backoffLimit` (`BackoffLimitExceeded`), or active longer
//!   than `activeDeadlineSeconds` (`DeadlineExceeded`), sets `FailureTarget`, deletes the
//!   active Pods, then `Failed`. Replacements of failed Pods wait 10 s doubling per failure
//!   (at most 10 min, upstream's Pod failure backoff; configurable for tests).
//! - **Success**: `SuccessCriteriaMet` (`CompletionsReached`) then `Complete`, with
//!   `completionTime`.
//! - **suspend**: active Pods are deleted, `Suspended` is true and `startTime` cleared; on
//!   resume `Suspended` turns false (`JobResumed`) and `startTime` restarts.
//! - **ttlSecondsAfterFinished** (upstream's separate TTL-after-finished controller): the
//!   finished Job is deleted, its Pods with it, once the TTL has passed.
//!
//! Left out: `podFailurePolicy`, `successPolicy`, `backoffLimitPerIndex`,
//! `podReplacementPolicy: Failed`, `managedBy`, and events.

pub mod indexes;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use kube::api::{DeleteParams, Patch, PostParams, PropagationPolicy};
use kube::core::Selector;
use kube::{Api, ResourceExt};
use kubeforge::controller::owner::{controller_of, controller_reference};
use kubeforge::controller::{Action, BuildError, Context, Controller, ReconcileError, Watch};
use kubeforge::manager::Manager;
use serde_json::json;

use crate::claims::{Claimant, claim, owners_to_sync};
use crate::expectations::{Expectations, Seen};
use crate::pods;
use crate::pods::create_in_batches;

/// The controller's name (logs, metrics, field manager).
pub const NAME: &str = "job-controller";
/// The finalizer that keeps a finished Pod until it is counted.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// The annotation and label carrying an Indexed Job Pod's index.
pub const INDEX: &str = "batch.kubernetes.io/job-completion-index";

/// How long failed Pods wait to be replaced: `base` doubling per failure, at most `max`.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// The first delay (upstream: 10 s).
    pub base: Duration,
    /// The longest (upstream: 10 min).
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(10),
            max: Duration::from_secs(600),
        }
    }
}

impl Backoff {
    /// The delay after `failures` failures.
    pub fn after(&self, failures: i32) -> Duration {
        let doublings = u32::try_from(failures.saturating_sub(1).clamp(0, 20)).unwrap_or(0);
        self.base.saturating_mul(1 << doublings).min(self.max)
    }
}

struct State {
    expectations: Expectations,
    backoff: Backoff,
}

/// Registers the Job controller with upstream's Pod failure backoff.
///
/// # Errors
/// When the manager refuses the controller.
pub fn setup(mgr: &mut Manager) -> Result<(), BuildError> {
    setup_with(mgr, Backoff::default())
}

/// Registers the Job controller with this Pod failure backoff.
///
/// # Errors
/// When the manager refuses the controller.
pub fn setup_with(mgr: &mut Manager, backoff: Backoff) -> Result<(), BuildError> {
    let builder = Controller::managed_by(mgr)
        .for_::<Job>(Watch::new())
        .named(NAME);
    let jobs = builder.primary_lister();
    builder
        .watches::<Pod>(Watch::new(), move |pod| {
            owners_to_sync(pod, "batch/v1", "Job", &jobs, |j| selector_of(j).ok())
        })
        .concurrency(5)
        .complete(
            reconcile,
            Arc::new(State {
                expectations: Expectations::default(),
                backoff,
            }),
        )
}

fn selector_of(job: &Job) -> Result<Selector, ReconcileError> {
    let selector = job
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default();
    Selector::try_from(selector)
        .map_err(|e| ReconcileError::terminal(format!("invalid selector: {e}")))
}

fn condition(type_: &str, reason: &str, message: &str, now: Timestamp) -> JobCondition {
    JobCondition {
        type_: type_.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

fn has_condition(status: &JobStatus, type_: &str) -> Option<JobCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
        .cloned()
}

/// Sets a condition of `type_` to `status` (upstream `ensureJobConditionStatus`): an absent one
/// is added only when true. Returns whether anything changed.
fn ensure(
    conditions: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) if c.status == status => false,
        Some(c) => {
            *c = JobCondition {
                status: status.into(),
                ..condition(type_, reason, message, now)
            };
            true
        }
        None if status == "True" => {
            conditions.push(condition(type_, reason, message, now));
            true
        }
        None => false,
    }
}

/// The Job's Pods as one sync sees them.
struct Observed {
    active: Vec<Arc<Pod>>,
    terminating: i32,
    /// Finished, still carrying the tracking finalizer.
    tracked_finished: Vec<Arc<Pod>>,
    /// Finished Pods (all of them): for the failure backoff and Indexed successes.
    finished: Vec<Arc<Pod>>,
}

/// How a Pod ended, as the Job counts it: `Succeeded`, `Failed` (a Pod deleted before it
/// finished counts as failed, as upstream — unless the Job is suspended, which deleted it:
/// `Dropped`), or `None` while it runs.
fn outcome(pod: &Pod, suspended: bool) -> Option<&'static str> {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Succeeded") => Some("Succeeded"),
        Some("Failed") => Some("Failed"),
        _ if pods::is_terminating(pod) => Some(if suspended { "Dropped" } else { "Failed" }),
        _ => None,
    }
}

fn observe(owned: Vec<Arc<Pod>>, suspended: bool) -> Observed {
    let has_finalizer = |p: &Pod| p.finalizers().iter().any(|f| f == TRACKING_FINALIZER);
    let terminating = owned
        .iter()
        .filter(|p| pods::is_terminating(p) && !pods::is_terminated(p))
        .count();
    let (finished, rest): (Vec<_>, Vec<_>) = owned
        .into_iter()
        .partition(|p| outcome(p, suspended).is_some());
    Observed {
        active: rest,
        terminating: i32::try_from(terminating).unwrap_or(i32::MAX),
        tracked_finished: finished
            .iter()
            .filter(|p| has_finalizer(p))
            .cloned()
            .collect(),
        finished,
    }
}

fn index_of(pod: &Pod) -> Option<i32> {
    pod.annotations().get(INDEX).and_then(|i| i.parse().ok())
}

/// When a finished Pod finished: the latest transition of its conditions.
fn finished_at(pod: &Pod) -> Option<Timestamp> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .filter_map(|c| c.last_transition_time.as_ref().map(|t| t.0))
        .max()
}

async fn reconcile(job: Arc<Job>, ctx: Context<Arc<State>>) -> Result<Action, ReconcileError> {
    let now = Timestamp::now();
    let namespace = job.namespace().unwrap_or_default();
    let key = format!("{namespace}/{}", job.name_any());
    let status = job.status.clone().unwrap_or_default();
    let pod_api: Api<Pod> = Api::namespaced(ctx.client().clone(), &namespace);
    let pod_cache = ctx.lister::<Pod>()?;
    let mine =
        |p: &Pod| controller_of(p).is_some_and(|r| Some(&r.uid) == job.metadata.uid.as_ref());
    let in_namespace = pod_cache.list_namespace(&namespace);

    if job.metadata.deletion_timestamp.is_some() {
        ctx.data().expectations.forget(&key);
        return Ok(Action::await_change());
    }
    if has_condition(&status, "Complete").is_some() || has_condition(&status, "Failed").is_some() {
        // Finished: nothing runs; free any Pod still held by the finalizer, then the TTL.
        let held: Vec<Arc<Pod>> = in_namespace.into_iter().filter(|p| mine(p)).collect();
        release_finalizers(&pod_api, &held).await?;
        return expire(&job, &ctx, &status, now).await;
    }
    let Some(spec) = job.spec.as_ref() else {
        return Err(ReconcileError::terminal("the Job has no spec"));
    };
    let selector = selector_of(&job)?;
    if selector.selects_all() {
        return Err(ReconcileError::terminal(
            "the selector is empty: it would select every Pod in the namespace",
        ));
    }
    let reference =
        controller_reference(job.as_ref()).map_err(|e| ReconcileError::terminal(e.to_string()))?;
    let suspended = spec.suspend == Some(true);
    let candidates: Vec<Arc<Pod>> = in_namespace
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() || mine(p))
        .collect();
    let claimant = Claimant {
        reference: &reference,
        selector: &selector,
        deleting: false,
        manager: NAME,
    };
    let (owned, _) = claim(&pod_api, &claimant, candidates).await?;
    let seen_pods = observe(owned, suspended);
    let satisfied = ctx.data().expectations.satisfied(&key, |name| {
        match pod_cache.get(Some(&namespace), name) {
            None => Seen::Absent,
            Some(p) if pods::is_terminating(&p) => Seen::Terminating,
            Some(_) => Seen::Present,
        }
    });

    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    let completions = spec.completions;
    let (mut next, completed) = tally(&status, spec, &seen_pods, suspended);
    if next.start_time.is_none() && !suspended {
        next.start_time = Some(Time(now));
    }
    let mut conditions = next.conditions.take().unwrap_or_default();
    let mut active = seen_pods.active.clone();
    let (failure, mut requeue) = failure_target(&status, spec, &next, suspended, now);
    let success = has_condition(&status, "SuccessCriteriaMet");
    let mut finished = None;
    if let Some(target) = failure.or(success.clone()) {
        // Ending: no Pod runs any more; the final condition once every Pod has stopped.
        delete_pods(&pod_api, &active, &ctx, &key).await?;
        // kube-apiserver refuses a finished Job that still has terminating or uncounted Pods.
        let uncounted = next.uncounted_terminated_pods.as_ref().is_some_and(|u| {
            u.succeeded.as_ref().is_some_and(|l| !l.is_empty())
                || u.failed.as_ref().is_some_and(|l| !l.is_empty())
        });
        let gone = active.is_empty() && satisfied && !uncounted && seen_pods.terminating == 0;
        if !conditions.iter().any(|c| c.type_ == target.type_) {
            conditions.push(target.clone());
        }
        if gone {
            finished = Some(final_condition(&target, now));
        }
        active.clear();
    } else {
        if satisfied {
            let plan = Plan {
                job: &job,
                indexed,
                completions,
                completed: &completed,
                succeeded: next.succeeded.unwrap_or(0),
                failed: next.failed.unwrap_or(0),
                suspended,
            };
            let wait = manage(
                &plan,
                &mut active,
                &seen_pods,
                &pod_api,
                &reference,
                &ctx,
                &key,
                now,
            )
            .await?;
            if let Some(wait) = wait {
                requeue = Some(requeue.map_or(wait, |r| r.min(wait)));
            }
            track_suspension(&mut conditions, &mut next, suspended, now);
        }
        let succeeded = next.succeeded.unwrap_or(0);
        let complete = match completions {
            None => succeeded > 0 && active.is_empty(),
            Some(c) => succeeded >= c && active.is_empty(),
        };
        if complete {
            conditions.push(condition(
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
                now,
            ));
            requeue = Some(Duration::ZERO);
        }
    }
    if let Some(done) = finished {
        if done.type_ == "Complete" {
            next.completion_time = Some(Time(now));
        }
        conditions.push(done);
    }
    next.conditions = (!conditions.is_empty()).then_some(conditions);
    next.active = Some(i32::try_from(active.len()).unwrap_or(0));
    next.ready =
        Some(i32::try_from(active.iter().filter(|p| pods::is_ready(p)).count()).unwrap_or(0));
    next.terminating = Some(seen_pods.terminating);
    write_status(&job, &ctx, &status, &next).await?;
    // Counted: the finished Pods may go.
    release_finalizers(&pod_api, &seen_pods.tracked_finished).await?;
    Ok(match requeue {
        Some(after) => Action::requeue(after + Duration::from_millis(50)),
        None => Action::await_change(),
    })
}

/// The `Suspended` condition follows `suspend`; suspending clears `startTime` and resuming
/// restarts it, so `activeDeadlineSeconds` counts only running time (as upstream).
fn track_suspension(
    conditions: &mut Vec<JobCondition>,
    next: &mut JobStatus,
    suspended: bool,
    now: Timestamp,
) {
    if suspended {
        if ensure(
            conditions,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            now,
        ) {
            next.start_time = None;
        }
    } else if ensure(
        conditions,
        "Suspended",
        "False",
        "JobResumed",
        "Job resumed",
        now,
    ) {
        next.start_time = Some(Time(now));
    }
}

/// The status counters after the Pods that finished since the last write (upstream
/// `trackJobStatusAndRemoveFinalizers`' accounting), and an Indexed Job's completed indexes.
fn tally(
    status: &JobStatus,
    spec: &JobSpec,
    seen_pods: &Observed,
    suspended: bool,
) -> (JobStatus, BTreeSet<i32>) {
    // Count what finished since the last status write.
    let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
    let listed =
        |v: &Option<Vec<String>>, uid: &str| v.as_ref().is_some_and(|l| l.iter().any(|u| u == uid));
    let fresh: Vec<&Arc<Pod>> = seen_pods
        .tracked_finished
        .iter()
        .filter(|p| {
            let uid = p.uid().unwrap_or_default();
            !listed(&uncounted.succeeded, &uid) && !listed(&uncounted.failed, &uid)
        })
        .collect();
    let fresh_succeeded = fresh
        .iter()
        .filter(|p| outcome(p, suspended) == Some("Succeeded"))
        .count();
    let fresh_failed = fresh
        .iter()
        .filter(|p| outcome(p, suspended) == Some("Failed"))
        .count();
    let mut next = status.clone();
    next.succeeded =
        Some(status.succeeded.unwrap_or(0) + i32::try_from(fresh_succeeded).unwrap_or(0));
    next.failed = Some(status.failed.unwrap_or(0) + i32::try_from(fresh_failed).unwrap_or(0));
    let still_held: BTreeSet<String> = seen_pods
        .tracked_finished
        .iter()
        .filter_map(|p| p.uid())
        .collect();
    let keep = |list: Option<Vec<String>>, phase_: &str| -> Option<Vec<String>> {
        let mut list: Vec<String> = list
            .unwrap_or_default()
            .into_iter()
            .filter(|u| still_held.contains(u))
            .collect();
        list.extend(
            fresh
                .iter()
                .filter(|p| outcome(p, suspended) == Some(phase_))
                .filter_map(|p| p.uid()),
        );
        Some(list)
    };
    next.uncounted_terminated_pods = Some(UncountedTerminatedPods {
        succeeded: keep(uncounted.succeeded.clone(), "Succeeded"),
        failed: keep(uncounted.failed.clone(), "Failed"),
    });

    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    let completions = spec.completions;
    let mut completed = BTreeSet::new();
    if indexed {
        let total = completions.unwrap_or(0);
        completed = indexes::parse(status.completed_indexes.as_deref(), total);
        completed.extend(
            seen_pods
                .finished
                .iter()
                .filter(|p| outcome(p, suspended) == Some("Succeeded"))
                .filter_map(|p| index_of(p))
                .filter(|i| *i < total),
        );
        next.completed_indexes = Some(indexes::format(&completed));
        next.succeeded = Some(i32::try_from(completed.len()).unwrap_or(0));
    }

    (next, completed)
}

/// Why the Job fails now, if it does (its `FailureTarget` condition: a recorded one, too many
/// failures, or the active deadline passed); else when the deadline will pass.
fn failure_target(
    status: &JobStatus,
    spec: &JobSpec,
    next: &JobStatus,
    suspended: bool,
    now: Timestamp,
) -> (Option<JobCondition>, Option<Duration>) {
    let mut requeue = None;
    let failure = has_condition(status, "FailureTarget").or_else(|| {
        let backoff_limit = spec.backoff_limit.unwrap_or(6);
        if next.failed.unwrap_or(0) > backoff_limit {
            return Some(condition(
                "FailureTarget",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                now,
            ));
        }
        let deadline = spec.active_deadline_seconds.filter(|_| !suspended)?;
        let started = next.start_time.as_ref()?.0;
        let ends = started + SignedDuration::from_secs(deadline);
        if ends <= now {
            Some(condition(
                "FailureTarget",
                "DeadlineExceeded",
                "Job was active longer than specified deadline",
                now,
            ))
        } else {
            requeue = Some(Duration::from_secs_f64(
                ends.duration_since(now).as_secs_f64(),
            ));
            None
        }
    });
    (failure, requeue)
}

/// `Failed` for a `FailureTarget`, `Complete` for `SuccessCriteriaMet`, with its reason.
fn final_condition(target: &JobCondition, now: Timestamp) -> JobCondition {
    let type_ = if target.type_ == "FailureTarget" {
        "Failed"
    } else {
        "Complete"
    };
    condition(
        type_,
        target.reason.as_deref().unwrap_or_default(),
        target.message.as_deref().unwrap_or_default(),
        now,
    )
}

/// What `manage` decides from.
struct Plan<'a> {
    job: &'a Job,
    indexed: bool,
    completions: Option<i32>,
    completed: &'a BTreeSet<i32>,
    succeeded: i32,
    failed: i32,
    suspended: bool,
}

/// Creates or deletes Pods toward the parallelism the Job wants now (upstream `manageJob`);
/// returns how long to wait when failed Pods are still backing off.
#[allow(clippy::too_many_arguments)]
async fn manage(
    plan: &Plan<'_>,
    active: &mut Vec<Arc<Pod>>,
    seen: &Observed,
    api: &Api<Pod>,
    reference: &OwnerReference,
    ctx: &Context<Arc<State>>,
    key: &str,
    now: Timestamp,
) -> Result<Option<Duration>, ReconcileError> {
    let spec = plan.job.spec.as_ref().expect("checked by the caller");
    if plan.suspended {
        delete_pods(api, active, ctx, key).await?;
        active.clear();
        return Ok(None);
    }
    let parallelism = spec.parallelism.unwrap_or(1).max(0);
    let want = match plan.completions {
        None if plan.succeeded > 0 => i32::try_from(active.len()).unwrap_or(0),
        None => parallelism,
        Some(c) => (c - plan.succeeded).clamp(0, parallelism),
    };
    let have = i32::try_from(active.len()).unwrap_or(0);
    if have > want {
        let mut ranked: Vec<&Pod> = active.iter().map(AsRef::as_ref).collect();
        pods::sort_for_deletion(&mut ranked, now);
        let surplus: Vec<Arc<Pod>> = ranked
            .into_iter()
            .take(usize::try_from(have - want).unwrap_or(0))
            .map(|p| Arc::new(p.clone()))
            .collect();
        delete_pods(api, &surplus, ctx, key).await?;
        active.retain(|p| !surplus.iter().any(|s| s.name_any() == p.name_any()));
        return Ok(None);
    }
    if have == want {
        return Ok(None);
    }
    // Failed Pods are replaced only once their backoff has passed.
    let failures = plan.failed;
    if failures > 0 {
        let last = seen
            .finished
            .iter()
            .filter(|p| outcome(p, plan.suspended) == Some("Failed"))
            .filter_map(|p| finished_at(p))
            .max();
        if let Some(last) = last {
            let ready_at = last
                + SignedDuration::try_from(ctx.data().backoff.after(failures))
                    .unwrap_or(SignedDuration::ZERO);
            if ready_at > now {
                return Ok(Some(Duration::from_secs_f64(
                    ready_at.duration_since(now).as_secs_f64(),
                )));
            }
        }
    }
    let count = usize::try_from(want - have).unwrap_or(0);
    let indexes: Vec<Option<i32>> = if plan.indexed {
        let running: BTreeSet<i32> = active.iter().filter_map(|p| index_of(p)).collect();
        (0..plan.completions.unwrap_or(0))
            .filter(|i| !plan.completed.contains(i) && !running.contains(i))
            .take(count)
            .map(Some)
            .collect()
    } else {
        vec![None; count]
    };
    let template = spec.template.clone();
    let namespace = plan.job.namespace().unwrap_or_default();
    create_in_batches(indexes.len(), |n| {
        let index = indexes[n];
        let mut pod = pods::from_template(
            &template,
            &namespace,
            &prefix(&plan.job.name_any(), index),
            reference.clone(),
        );
        pod.metadata
            .finalizers
            .get_or_insert_with(Vec::new)
            .push(TRACKING_FINALIZER.into());
        if let Some(i) = index {
            mark_index(&mut pod, &plan.job.name_any(), i);
        }
        let api = api.clone();
        async move {
            let created = api
                .create(
                    &PostParams {
                        field_manager: Some(NAME.into()),
                        ..PostParams::default()
                    },
                    &pod,
                )
                .await?;
            ctx.data()
                .expectations
                .expect_created(key, created.name_any());
            Ok::<(), kube::Error>(())
        }
    })
    .await
    .map_err(|e| ReconcileError::transient(format!("creating Pods: {e}")))?;
    Ok(None)
}

fn prefix(job: &str, index: Option<i32>) -> String {
    match index {
        Some(i) => pods::name_prefix(&format!("{job}-{i}")),
        None => pods::name_prefix(job),
    }
}

/// An Indexed Job's Pod: its index as annotation, label, hostname and environment variable.
fn mark_index(pod: &mut Pod, job: &str, index: i32) {
    let i = index.to_string();
    pod.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(INDEX.into(), i.clone());
    pod.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(INDEX.into(), i);
    if let Some(spec) = pod.spec.as_mut() {
        spec.hostname = Some(format!("{job}-{index}"));
        for c in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            c.env.get_or_insert_with(Vec::new).push(EnvVar {
                name: "JOB_COMPLETION_INDEX".into(),
                value: None,
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        api_version: None,
                        field_path: format!("metadata.labels['{INDEX}']"),
                    }),
                    ..EnvVarSource::default()
                }),
            });
        }
    }
}

async fn delete_pods(
    api: &Api<Pod>,
    victims: &[Arc<Pod>],
    ctx: &Context<Arc<State>>,
    key: &str,
) -> Result<(), ReconcileError> {
    for pod in victims {
        ctx.data().expectations.expect_deleted(key, pod.name_any());
        match api.delete(&pod.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if crate::writes::has_code(&e, &[404]) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Removes the tracking finalizer from counted Pods (a JSON patch guarded by their version).
async fn release_finalizers(api: &Api<Pod>, held: &[Arc<Pod>]) -> Result<(), ReconcileError> {
    for pod in held {
        let Some(at) = pod
            .finalizers()
            .iter()
            .position(|f| f == TRACKING_FINALIZER)
        else {
            continue;
        };
        let ops: json_patch::Patch = serde_json::from_value(json!([
            {"op": "test", "path": "/metadata/resourceVersion", "value": pod.resource_version()},
            {"op": "remove", "path": format!("/metadata/finalizers/{at}")},
        ]))
        .map_err(ReconcileError::transient)?;
        match api
            .patch(
                &pod.name_any(),
                &crate::writes::write_params(NAME),
                &Patch::<()>::Json(ops),
            )
            .await
        {
            Ok(_) => {}
            // Gone, or changed since the cache saw it: the next sync retries.
            Err(e) if crate::writes::has_code(&e, &[404, 409, 422]) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

async fn write_status(
    job: &Job,
    ctx: &Context<Arc<State>>,
    old: &JobStatus,
    next: &JobStatus,
) -> Result<(), ReconcileError> {
    let api: Api<Job> = Api::namespaced(ctx.client().clone(), &job.namespace().unwrap_or_default());
    match crate::writes::write_status(&api, job, NAME, old, next).await? {
        // Changed meanwhile: the change reconciles it again, from the new counts.
        crate::writes::StatusWrite::Stale => Err(ReconcileError::transient(
            "the Job changed while its status was written",
        )),
        _ => Ok(()),
    }
}

/// Deletes a finished Job (and, in the background, its Pods) once `ttlSecondsAfterFinished`
/// has passed since it finished.
async fn expire(
    job: &Job,
    ctx: &Context<Arc<State>>,
    status: &JobStatus,
    now: Timestamp,
) -> Result<Action, ReconcileError> {
    let Some(ttl) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) else {
        return Ok(Action::await_change());
    };
    let finished = has_condition(status, "Complete")
        .or_else(|| has_condition(status, "Failed"))
        .and_then(|c| c.last_transition_time)
        .map_or(now, |t| t.0);
    let at = finished + SignedDuration::from_secs(ttl.into());
    if at > now {
        return Ok(Action::requeue(
            Duration::from_secs_f64(at.duration_since(now).as_secs_f64())
                + Duration::from_millis(50),
        ));
    }
    let api: Api<Job> = Api::namespaced(ctx.client().clone(), &job.namespace().unwrap_or_default());
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match api.delete(&job.name_any(), &params).await {
        Ok(_) => Ok(Action::await_change()),
        Err(e) if crate::writes::has_code(&e, &[404]) => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let b = Backoff::default();
        let secs: Vec<u64> = (1..=8).map(|n| b.after(n).as_secs()).collect();
        assert_eq!(secs, [10, 20, 40, 80, 160, 320, 600, 600]);
    }
}

//! The ReplicaSet controller (upstream `pkg/controller/replicaset`): keeps `spec.replicas` Pods
//! that match the set's selector and name it as their controller.
//!
//! - **Claiming**: Pods matching the selector without a controller are adopted; owned Pods whose
//!   labels stop matching are released ([`crate::claims`]).
//! - **Scaling**: missing Pods are created from the template in slow-start batches (1, 2, 4, …,
//!   at most 500 per sync; a failed create stops the rest); surplus Pods are deleted in upstream's
//!   ranking ([`crate::pods::sort_for_deletion`]: unscheduled, pending, not ready, newest first).
//! - **Expectations**: while Pods this controller created or deleted have not reached its cache,
//!   it does not scale again ([`crate::expectations`]).
//! - **Status**: `replicas`, `fullyLabeledReplicas`, `readyReplicas`, `availableReplicas`
//!   (ready for `minReadySeconds`, re-checked when a Pod will become available),
//!   `terminatingReplicas`, `observedGeneration`, and the `ReplicaFailure` condition when a create
//!   or delete is refused.
//!
//! Left out: the `pod-deletion-cost` annotation and the controller's events on every create
//! and delete (this one records an event only when a write fails).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, PostParams};
use kube::core::Selector;
use kube::{Api, ResourceExt};
use kubeforge::controller::owner::{controller_of, controller_reference};
use kubeforge::controller::{Action, BuildError, Context, Controller, ReconcileError, Watch};
use kubeforge::manager::Manager;

use crate::claims::{Claimant, claim, owners_to_sync};
use crate::expectations::{Expectations, Seen};
use crate::pods;

/// The controller's name (logs, metrics, field manager, events).
pub const NAME: &str = "replicaset-controller";
/// Upstream's cap on Pods created or deleted in one sync (`BurstReplicas`).
const BURST: usize = 500;

/// Registers the ReplicaSet controller on `mgr`.
///
/// # Errors
/// When the manager refuses the controller (a duplicate name).
pub fn setup(mgr: &mut Manager) -> Result<(), BuildError> {
    let builder = Controller::managed_by(mgr)
        .for_::<ReplicaSet>(Watch::new())
        .named(NAME);
    let sets = builder.primary_lister();
    builder
        .watches::<Pod>(Watch::new(), move |pod| {
            owners_to_sync(pod, "apps/v1", "ReplicaSet", &sets, |rs| {
                selector_of(rs).ok()
            })
        })
        .concurrency(5)
        .complete(reconcile, Arc::new(Expectations::default()))
}

/// The set's selector; an empty one selects nothing here (as upstream, which refuses to
/// manage Pods with it).
pub(crate) fn selector_of(rs: &ReplicaSet) -> Result<Selector, ReconcileError> {
    Selector::try_from(rs.spec.selector.clone())
        .map_err(|e| ReconcileError::terminal(format!("invalid selector: {e}")))
}

async fn reconcile(
    rs: Arc<ReplicaSet>,
    ctx: Context<Arc<Expectations>>,
) -> Result<Action, ReconcileError> {
    let namespace = rs.namespace().unwrap_or_default();
    let key = format!("{namespace}/{}", rs.name_any());
    let selector = selector_of(&rs)?;
    let pod_cache = ctx.lister::<Pod>()?;
    let pod_api: Api<Pod> = Api::namespaced(ctx.client().clone(), &namespace);
    let in_namespace = pod_cache.list_namespace(&namespace);
    let terminating = in_namespace
        .iter()
        .filter(|p| {
            pods::is_terminating(p)
                && controller_of(p.as_ref())
                    .is_some_and(|r| Some(&r.uid) == rs.metadata.uid.as_ref())
        })
        .count();
    let active: Vec<Arc<Pod>> = in_namespace
        .into_iter()
        .filter(|p| pods::is_active(p))
        .collect();
    let reference =
        controller_reference(rs.as_ref()).map_err(|e| ReconcileError::terminal(e.to_string()))?;
    let claimant = Claimant {
        reference: &reference,
        selector: &selector,
        deleting: rs.metadata.deletion_timestamp.is_some(),
        manager: NAME,
    };
    let (owned, _) = claim(&pod_api, &claimant, active).await?;

    let seen = |name: &str| match pod_cache.get(Some(&namespace), name) {
        None => Seen::Absent,
        Some(p) if pods::is_terminating(&p) => Seen::Terminating,
        Some(_) => Seen::Present,
    };
    let failure = if ctx.data().satisfied(&key, seen) && rs.metadata.deletion_timestamp.is_none() {
        scale(&rs, &owned, &pod_api, &reference, &ctx, &key)
            .await
            .err()
    } else {
        None
    };
    if rs.metadata.deletion_timestamp.is_some() {
        ctx.data().forget(&key);
    }
    let now = Timestamp::now();
    let status = status_of(&rs, &owned, terminating, failure.as_ref(), now);
    write_status(&ctx, &rs, status).await?;
    if let Some(e) = failure {
        return Err(e);
    }
    // A ready Pod becomes available after minReadySeconds with no event to say so.
    let min_ready = rs.spec.min_ready_seconds.unwrap_or(0);
    let next = owned
        .iter()
        .filter_map(|p| pods::until_available(p, min_ready, now))
        .min();
    Ok(match next {
        Some(d) => {
            Action::requeue(Duration::from_secs_f64(d.as_secs_f64()) + Duration::from_millis(100))
        }
        None => Action::await_change(),
    })
}

/// Creates or deletes Pods so that `owned` becomes `spec.replicas`.
async fn scale(
    rs: &ReplicaSet,
    owned: &[Arc<Pod>],
    api: &Api<Pod>,
    reference: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    ctx: &Context<Arc<Expectations>>,
    key: &str,
) -> Result<(), ReconcileError> {
    let spec = &rs.spec;
    let want = usize::try_from(spec.replicas.unwrap_or(1)).unwrap_or(0);
    if owned.len() < want {
        let missing = (want - owned.len()).min(BURST);
        let template = spec.template.clone().unwrap_or_default();
        let namespace = rs.namespace().unwrap_or_default();
        let pod = pods::from_template(
            &template,
            &namespace,
            &pods::name_prefix(&rs.name_any()),
            reference.clone(),
        );
        pods::create_in_batches(missing, |_| {
            let (api, pod) = (api.clone(), pod.clone());
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
                ctx.data().expect_created(key, created.name_any());
                Ok(())
            }
        })
        .await
        .map_err(|e: kube::Error| ReconcileError::transient(format!("creating Pods: {e}")))?;
    } else if owned.len() > want {
        let surplus = (owned.len() - want).min(BURST);
        let mut ranked: Vec<&Pod> = owned.iter().map(AsRef::as_ref).collect();
        pods::sort_for_deletion(&mut ranked, Timestamp::now());
        for pod in ranked.into_iter().take(surplus) {
            ctx.data().expect_deleted(key, pod.name_any());
            match api.delete(&pod.name_any(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if crate::writes::has_code(&e, &[404]) => {}
                Err(e) => {
                    return Err(ReconcileError::transient(format!(
                        "deleting Pod {}: {e}",
                        pod.name_any()
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The status the set's Pods give it.
fn status_of(
    rs: &ReplicaSet,
    owned: &[Arc<Pod>],
    terminating: usize,
    failure: Option<&ReconcileError>,
    now: Timestamp,
) -> ReplicaSetStatus {
    let spec = &rs.spec;
    let template_labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let count = |f: &dyn Fn(&Pod) -> bool| {
        i32::try_from(owned.iter().filter(|p| f(p)).count()).unwrap_or(i32::MAX)
    };
    let mut conditions: Vec<ReplicaSetCondition> = rs
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    match failure {
        Some(e) => {
            if !conditions
                .iter()
                .any(|c| c.type_.as_deref() == Some("ReplicaFailure"))
            {
                conditions.push(ReplicaSetCondition {
                    type_: Some("ReplicaFailure".into()),
                    status: Some("True".into()),
                    reason: Some("FailedCreate".into()),
                    message: Some(e.to_string()),
                    last_transition_time: Some(Time(now)),
                });
            }
        }
        None => conditions.retain(|c| c.type_.as_deref() != Some("ReplicaFailure")),
    }
    ReplicaSetStatus {
        replicas: count(&|_| true),
        fully_labeled_replicas: Some(count(&|p| {
            pods::has_labels(p.metadata.labels.as_ref(), template_labels)
        })),
        ready_replicas: Some(count(&pods::is_ready)),
        available_replicas: Some(count(&|p| pods::is_available(p, min_ready, now))),
        terminating_replicas: Some(i32::try_from(terminating).unwrap_or(i32::MAX)),
        observed_generation: rs.metadata.generation,
        conditions: (!conditions.is_empty()).then_some(conditions),
    }
}

/// Writes `status` when it differs from the set's; zero counters are left out, as upstream's
/// `omitempty` leaves them.
async fn write_status(
    ctx: &Context<Arc<Expectations>>,
    rs: &ReplicaSet,
    status: ReplicaSetStatus,
) -> Result<(), ReconcileError> {
    let nonzero = |v: Option<i32>| v.filter(|n| *n != 0);
    let status = ReplicaSetStatus {
        fully_labeled_replicas: nonzero(status.fully_labeled_replicas),
        ready_replicas: nonzero(status.ready_replicas),
        available_replicas: nonzero(status.available_replicas),
        ..status
    };
    let api: Api<ReplicaSet> =
        Api::namespaced(ctx.client().clone(), &rs.namespace().unwrap_or_default());
    let old = rs.status.clone().unwrap_or_default();
    // A stale or deleted set needs nothing: its change reconciles it again.
    crate::writes::write_status(&api, rs, NAME, &old, &status).await?;
    Ok(())
}

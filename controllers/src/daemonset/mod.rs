//! The DaemonSet controller (upstream `pkg/controller/daemon`): one Pod of the set on every
//! Node it fits.
//!
//! - **Placement** ([`placement`]): a Node is eligible when the template's `nodeSelector` and
//!   required node affinity match it and the Pod, with upstream's default daemon tolerations
//!   added (not-ready, unreachable, the node-pressure taints, unschedulable, and
//!   network-unavailable for `hostNetwork`), tolerates its `NoSchedule` / `NoExecute` taints; a
//!   cordoned Node is therefore eligible. Pods are created with their Node as node affinity
//!   (`matchFields metadata.name In [node]`), not `spec.nodeName`, for the scheduler to bind.
//! - **Upkeep** ([`rollout`]): of several Pods on a Node the oldest stays; Pods on Nodes the set
//!   must leave (or that gained an untolerated `NoExecute` taint) are deleted; Pods that ended
//!   are deleted and recreated, failed ones no sooner than a per-Node backoff allows (1 s
//!   doubling to 15 min, as upstream); unbound Pods for Nodes that were deleted are deleted.
//! - **Claiming**: Pods and ControllerRevisions matching the selector are adopted and released
//!   by labels ([`crate::claims`]); an empty selector is refused (upstream's `SelectingAll`).
//! - **Expectations**: while Pods it created or deleted have not reached the cache, the set only
//!   updates its status ([`crate::expectations`]).
//! - **Updates**: revisions are ControllerRevisions ([`revision`]) and Pods carry
//!   `controller-revision-hash` and `pod-template-generation`. `RollingUpdate` (the default)
//!   replaces outdated Pods Node by Node keeping at most `maxUnavailable` (default 1, a count or
//!   a percentage of the desired Nodes, rounded up) Nodes unavailable, or with `maxSurge`
//!   starts the new Pod beside the old one first; `OnDelete` replaces a Pod only once it is
//!   deleted. `revisionHistoryLimit` (10) old revisions no Pod runs are kept.
//! - **Status**: `desiredNumberScheduled`, `currentNumberScheduled`, `numberMisscheduled`,
//!   `numberReady`, `numberAvailable` (ready for `minReadySeconds`, re-checked when a Pod will
//!   become available), `numberUnavailable`, `updatedNumberScheduled`, `observedGeneration`,
//!   `collisionCount`.
//! - **Watches**: the DaemonSets, their Pods (by controller, or by selector for orphans), their
//!   ControllerRevisions, and Nodes: a Node that appears, goes, or changes labels or taints
//!   syncs every DaemonSet.
//!
//! Creations run in slow-start batches ([`crate::pods::create_in_batches`]), at most 250 creates
//! and 250 deletes per sync (upstream's `burstReplicas`).
//!
//! Left out: events, the consistency store upstream uses to wait for its own status writes
//! (expectations cover Pods), bound Pods on deleted Nodes (the Pod garbage collector's, as
//! upstream), and the alpha toleration operators `Gt` / `Lt`.

pub mod placement;
pub mod revision;
pub mod rollout;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, Patch, PostParams};
use kube::core::Selector;
use kube::{Api, ResourceExt};
use kubeforge::controller::owner::controller_reference;
use kubeforge::controller::predicate::{Change, Predicate};
use kubeforge::controller::{Action, BuildError, Context, Controller, ReconcileError, Watch};
use kubeforge::informer::ObjectKey;
use kubeforge::manager::Manager;
use parking_lot::Mutex;
use serde_json::json;

use crate::claims::{Claimant, claim, owners_to_sync};
use crate::expectations::{Expectations, Seen};
use crate::pods;
use placement::Fit;
use rollout::{GENERATION_LABEL, Judge, NodePods, Plan};

/// The controller's name (logs, metrics, field manager).
pub const NAME: &str = "daemonset-controller";
/// Upstream's cap on Pods created or deleted in one sync (`BurstReplicas` of this controller).
const BURST: usize = 250;
/// The annotation the API server keeps the template's generation in.
const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

/// What the controller remembers between syncs.
#[derive(Debug, Default)]
pub struct State {
    expectations: Expectations,
    failed: FailedPodBackoff,
}

/// Upstream's backoff on deleting failed Pods, per set, generation and Node: a kubelet that
/// keeps rejecting the Pod must not make the controller recreate it in a hot loop.
#[derive(Debug, Default)]
struct FailedPodBackoff {
    entries: Mutex<HashMap<String, (Duration, Instant)>>,
}

impl FailedPodBackoff {
    const START: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(15 * 60);

    /// `Ok` when a failed Pod under `key` may be deleted now (and the next wait doubles), else
    /// how long is left to wait.
    fn next(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut entries = self.entries.lock();
        entries.retain(|_, (_, at)| now.duration_since(*at) < 2 * Self::MAX);
        match entries.get_mut(key) {
            Some((delay, at)) if now.duration_since(*at) < *delay => {
                Err(*delay - now.duration_since(*at))
            }
            Some((delay, at)) => {
                *delay = (*delay * 2).min(Self::MAX);
                *at = now;
                Ok(())
            }
            None => {
                entries.insert(key.to_owned(), (Self::START, now));
                Ok(())
            }
        }
    }
}

/// Registers the DaemonSet controller on `mgr`.
///
/// # Errors
/// When the manager refuses the controller (a duplicate name).
pub fn setup(mgr: &mut Manager) -> Result<(), BuildError> {
    let builder = Controller::managed_by(mgr)
        .for_::<DaemonSet>(Watch::new())
        .named(NAME);
    let sets = builder.primary_lister();
    let every_set = builder.primary_lister();
    // Upstream ignores Node updates that change neither labels nor taints (status heartbeats).
    let placement_changed = Predicate::new(|change: &Change<'_, Node>| match change {
        Change::Update { old, new } => {
            let taints = |n: &Node| n.spec.as_ref().and_then(|s| s.taints.clone());
            old.labels() != new.labels() || taints(old) != taints(new)
        }
        Change::Create(_) | Change::Delete(_) => true,
    });
    builder
        .watches::<Pod>(Watch::new(), move |pod| {
            owners_to_sync(pod, "apps/v1", "DaemonSet", &sets, |s| selector_of(s).ok())
        })
        .watches::<Node>(
            Watch::new().with_predicate(placement_changed),
            move |_node| {
                every_set
                    .list()
                    .iter()
                    .filter_map(|ds| ObjectKey::from_obj(ds.as_ref()).ok())
                    .collect()
            },
        )
        .owns::<ControllerRevision>(Watch::new())
        .concurrency(2)
        .complete(reconcile, Arc::new(State::default()))
}

fn selector_of(ds: &DaemonSet) -> Result<Selector, ReconcileError> {
    Selector::try_from(ds.spec.selector.clone())
        .map_err(|e| ReconcileError::terminal(format!("invalid selector: {e}")))
}

/// The template generation the API server recorded, if any.
fn template_generation(ds: &DaemonSet) -> Option<i64> {
    ds.annotations().get(TEMPLATE_GENERATION)?.parse().ok()
}

async fn reconcile(ds: Arc<DaemonSet>, ctx: Context<Arc<State>>) -> Result<Action, ReconcileError> {
    let namespace = ds.namespace().unwrap_or_default();
    let key = format!("{namespace}/{}", ds.name_any());
    // A set being deleted may have lost its revisions already: its status cannot be computed.
    if ds.metadata.deletion_timestamp.is_some() {
        ctx.data().expectations.forget(&key);
        return Ok(Action::await_change());
    }
    let selector = selector_of(&ds)?;
    if selector.selects_all() {
        tracing::warn!(daemonset = %key, "the selector selects every Pod; a non-empty selector is required");
        return Ok(Action::await_change());
    }
    let owner =
        controller_reference(ds.as_ref()).map_err(|e| ReconcileError::terminal(e.to_string()))?;
    let client = ctx.client().clone();
    let claimant = Claimant {
        reference: &owner,
        selector: &selector,
        deleting: false,
        manager: NAME,
    };
    let pod_cache = ctx.lister::<Pod>()?;
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let (owned, _) = claim(&pod_api, &claimant, pod_cache.list_namespace(&namespace)).await?;

    let revisions_api: Api<ControllerRevision> = Api::namespaced(client.clone(), &namespace);
    let sets_api: Api<DaemonSet> = Api::namespaced(client, &namespace);
    let candidates = ctx
        .lister::<ControllerRevision>()?
        .list_namespace(&namespace);
    let (revisions, _) = claim(&revisions_api, &claimant, candidates).await?;
    let revisions = revisions.iter().map(|r| (**r).clone()).collect();
    let history =
        revision::construct(&revisions_api, &sets_api, &ds, &owner, revisions, NAME).await?;
    let hash = revision::hash_of_revision(&history.current);
    relabel(&pod_api, &owned, &history.merged, &hash).await?;

    let spec =
        placement::with_daemon_tolerations(&ds.spec.template.spec.clone().unwrap_or_default());
    let fits: BTreeMap<String, Fit> = ctx
        .lister::<Node>()?
        .list()
        .iter()
        .map(|n| (n.name_any(), placement::fit(&spec, n)))
        .collect();
    let by_node = by_node(&owned);
    let judge = Judge {
        hash: &hash,
        template_generation: template_generation(&ds),
        min_ready_seconds: ds.spec.min_ready_seconds.unwrap_or(0),
        now: Timestamp::now(),
    };
    let seen = |name: &str| match pod_cache.get(Some(&namespace), name) {
        None => Seen::Absent,
        Some(p) if pods::is_terminating(&p) => Seen::Terminating,
        Some(_) => Seen::Present,
    };
    let synced = ctx.data().expectations.satisfied(&key, seen);
    let mut retry = None;
    if synced {
        let sync = Sync {
            ds: &ds,
            state: ctx.data(),
            pods: pod_api,
            owner,
            key,
            hash: &hash,
        };
        retry = sync.run(&fits, &by_node, &judge).await?;
    }
    let status = status_of(&ds, &fits, &by_node, &judge, synced);
    write_status(&sets_api, &ds, status).await?;

    let live: HashSet<String> = owned
        .iter()
        .filter_map(|p| p.labels().get(revision::HASH_LABEL).cloned())
        .collect();
    revision::truncate(&revisions_api, &ds, &history.old, &live).await?;

    let min_ready = judge.min_ready_seconds;
    let until_available = owned
        .iter()
        .filter_map(|p| pods::until_available(p, min_ready, judge.now))
        .map(|d| Duration::from_secs_f64(d.as_secs_f64()) + Duration::from_millis(100))
        .min();
    Ok(match until_available.into_iter().chain(retry).min() {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

/// The set's Pods by the Node they are for, oldest first; Pods that ended and are being deleted
/// are done with (upstream `getNodesToDaemonPods`).
fn by_node(owned: &[Arc<Pod>]) -> NodePods {
    let mut by_node = NodePods::new();
    for pod in owned {
        if pods::is_terminated(pod) && pods::is_terminating(pod) {
            continue;
        }
        if let Some(node) = placement::target_node(pod) {
            by_node
                .entry(node.to_owned())
                .or_default()
                .push(pod.clone());
        }
    }
    for pods in by_node.values_mut() {
        rollout::oldest_first(pods);
    }
    by_node
}

/// Points Pods labelled with the hash of a merged duplicate revision at the kept one.
async fn relabel(
    api: &Api<Pod>,
    owned: &[Arc<Pod>],
    merged: &[String],
    hash: &str,
) -> Result<(), ReconcileError> {
    let stale = owned.iter().filter(|p| {
        p.labels()
            .get(revision::HASH_LABEL)
            .is_some_and(|h| merged.contains(h))
    });
    for pod in stale {
        let patch = json!({"metadata": {"labels": {revision::HASH_LABEL: hash}}});
        match api
            .patch(
                &pod.name_any(),
                &crate::writes::write_params(NAME),
                &Patch::Merge(patch),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if crate::writes::has_code(&e, &[404]) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// One sync of a set's Pods against the Nodes.
struct Sync<'a> {
    ds: &'a DaemonSet,
    state: &'a State,
    pods: Api<Pod>,
    owner: OwnerReference,
    key: String,
    hash: &'a str,
}

impl Sync<'_> {
    fn rolling(&self) -> bool {
        let strategy = self.ds.spec.update_strategy.as_ref();
        strategy
            .and_then(|s| s.type_.as_deref())
            .unwrap_or("RollingUpdate")
            == "RollingUpdate"
    }

    /// `maxSurge` and `maxUnavailable` for `desired` Nodes (upstream `updatedDesiredNodeCounts`):
    /// both round up; with neither, one Node may be unavailable.
    fn limits(&self, desired: i32) -> (i32, i32) {
        if !self.rolling() {
            return (0, 0);
        }
        let rolling = self
            .ds
            .spec
            .update_strategy
            .as_ref()
            .and_then(|s| s.rolling_update.as_ref());
        let scaled = |v| crate::pods::scaled(v, "0%", desired, true);
        let surge = scaled(rolling.and_then(|r| r.max_surge.as_ref()));
        let mut unavailable = scaled(rolling.and_then(|r| r.max_unavailable.as_ref()));
        if rolling.is_none_or(|r| r.max_unavailable.is_none()) && surge == 0 {
            unavailable = 1;
        }
        if desired > 0 && surge == 0 && unavailable == 0 {
            unavailable = 1;
        }
        (surge, unavailable)
    }

    /// Places Pods on Nodes and, once nothing is left to place, rolls outdated Pods (upstream
    /// `manage` then `rollingUpdate`); returns when to sync again for a backed-off failed Pod.
    async fn run(
        &self,
        fits: &BTreeMap<String, Fit>,
        by_node: &NodePods,
        judge: &Judge<'_>,
    ) -> Result<Option<Duration>, ReconcileError> {
        let surge = self.limits(1).0 > 0;
        let generation = self.ds.status.as_ref().and_then(|s| s.observed_generation);
        let uid = self.ds.metadata.uid.clone().unwrap_or_default();
        let mut may_delete_failed = |node: &str| {
            let key = format!("{uid}/{}/{node}", generation.unwrap_or(0));
            self.state.failed.next(&key)
        };
        let mut plan = Plan::default();
        for (node, fit) in fits {
            let pods = by_node.get(node).map(Vec::as_slice);
            rollout::place_on_node(
                node,
                *fit,
                pods,
                surge,
                judge,
                &mut may_delete_failed,
                &mut plan,
            );
        }
        rollout::orphaned_by_gone_nodes(by_node, |n| fits.contains_key(n), &mut plan);
        let retry = plan.retry_after;
        if !plan.create_on.is_empty() || !plan.delete.is_empty() || !self.rolling() {
            self.carry_out(plan).await?;
            return Ok(retry);
        }
        let desired_nodes: Vec<&String> = fits
            .iter()
            .filter(|(_, f)| f.should_run)
            .map(|(n, _)| n)
            .collect();
        let desired = i32::try_from(desired_nodes.len()).unwrap_or(i32::MAX);
        let mut rolling = by_node.clone();
        for node in desired_nodes {
            rolling.entry(node.clone()).or_default();
        }
        let (max_surge, max_unavailable) = self.limits(desired);
        let plan = if max_surge == 0 {
            rollout::replace_outdated(&rolling, max_unavailable, judge)
        } else {
            let should_run = |n: &str| fits.get(n).is_some_and(|f| f.should_run);
            rollout::surge_outdated(&rolling, max_surge, desired, should_run, judge)
        };
        self.carry_out(plan).await?;
        Ok(retry)
    }

    /// Creates and deletes what `plan` says, at most [`BURST`] of each, recording expectations.
    async fn carry_out(&self, plan: Plan) -> Result<(), ReconcileError> {
        if !plan.create_on.is_empty() || !plan.delete.is_empty() {
            tracing::debug!(daemonset = %self.key, create_on = ?plan.create_on, delete = ?plan.delete, "syncing daemon Pods");
        }
        let create_on: Vec<&String> = plan.create_on.iter().take(BURST).collect();
        let created = crate::pods::create_in_batches(create_on.len(), |i| {
            let pod = self.new_pod(create_on[i]);
            async move {
                let params = PostParams {
                    field_manager: Some(NAME.into()),
                    ..PostParams::default()
                };
                let created = self.pods.create(&params, &pod).await?;
                self.state
                    .expectations
                    .expect_created(&self.key, created.name_any());
                Ok(())
            }
        })
        .await;
        for name in plan.delete.iter().take(BURST) {
            self.state
                .expectations
                .expect_deleted(&self.key, name.clone());
            match self.pods.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if crate::writes::has_code(&e, &[404]) => {}
                Err(e) => {
                    return Err(ReconcileError::transient(format!(
                        "deleting Pod {name}: {e}"
                    )));
                }
            }
        }
        created
            .map_err(|e: kube::Error| ReconcileError::transient(format!("creating Pods: {e}")))?;
        Ok(())
    }

    /// The set's Pod for `node` (upstream `CreatePodTemplate` plus the node affinity): the
    /// template with the daemon tolerations, the revision hash and template generation labels,
    /// bound to `node` by affinity.
    fn new_pod(&self, node: &str) -> Pod {
        let mut template = self.ds.spec.template.clone();
        let spec = template.spec.take().unwrap_or_default();
        let mut spec = placement::with_daemon_tolerations(&spec);
        spec.affinity = Some(placement::pin_to_node(spec.affinity.take(), node));
        template.spec = Some(spec);
        let generation = template_generation(self.ds).or(self.ds.metadata.generation);
        let labels = template
            .metadata
            .get_or_insert_with(ObjectMeta::default)
            .labels
            .get_or_insert_with(BTreeMap::new);
        labels.insert(revision::HASH_LABEL.into(), self.hash.to_owned());
        if let Some(generation) = generation {
            labels.insert(GENERATION_LABEL.into(), generation.to_string());
        }
        let namespace = self.ds.namespace().unwrap_or_default();
        let prefix = pods::name_prefix(&self.ds.name_any());
        pods::from_template(&template, &namespace, &prefix, self.owner.clone())
    }
}

/// The set's status from its Pods on the Nodes (upstream `updateDaemonSetStatus`): each
/// eligible Node's oldest Pod counts; `observedGeneration` rises only when the sync acted on
/// this generation.
fn status_of(
    ds: &DaemonSet,
    fits: &BTreeMap<String, Fit>,
    by_node: &NodePods,
    judge: &Judge<'_>,
    synced: bool,
) -> DaemonSetStatus {
    let old = ds.status.clone().unwrap_or_default();
    let (mut desired, mut current, mut misscheduled) = (0, 0, 0);
    let (mut ready, mut available, mut updated) = (0, 0, 0);
    for (node, fit) in fits {
        let oldest = by_node.get(node).and_then(|pods| pods.first());
        if !fit.should_run {
            misscheduled += i32::from(oldest.is_some());
            continue;
        }
        desired += 1;
        let Some(pod) = oldest else {
            continue;
        };
        current += 1;
        if pods::is_ready(pod) {
            ready += 1;
            available += i32::from(judge.available(pod));
        }
        updated += i32::from(judge.updated(pod));
    }
    let nonzero = |n: i32| (n != 0).then_some(n);
    DaemonSetStatus {
        desired_number_scheduled: desired,
        current_number_scheduled: current,
        number_misscheduled: misscheduled,
        number_ready: ready,
        number_available: nonzero(available),
        number_unavailable: nonzero(desired - available),
        updated_number_scheduled: nonzero(updated),
        observed_generation: if synced {
            ds.metadata.generation
        } else {
            old.observed_generation
        },
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
    }
}

/// Writes `status` when it differs, guarded by the resourceVersion it was computed from.
async fn write_status(
    api: &Api<DaemonSet>,
    ds: &DaemonSet,
    status: DaemonSetStatus,
) -> Result<(), ReconcileError> {
    let old = ds.status.clone().unwrap_or_default();
    // A stale or deleted set needs nothing: its change syncs it again.
    crate::writes::write_status(api, ds, NAME, &old, &status).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_pods_back_off_per_key() {
        let backoff = FailedPodBackoff::default();
        assert_eq!(backoff.next("uid/1/n1"), Ok(()));
        assert!(backoff.next("uid/1/n1").is_err(), "within the first second");
        assert_eq!(backoff.next("uid/1/n2"), Ok(()), "another Node is apart");
    }
}

//! The StatefulSet controller (upstream `pkg/controller/statefulset`): Pods with stable names
//! `<set>-0 … <set>-N-1`, stable storage and ordered changes.
//!
//! - **Ordering**: with `podManagementPolicy: OrderedReady` (the default) Pods are created one at
//!   a time in ordinal order, each once its predecessors are Running, Ready and available
//!   (`minReadySeconds`), and removed on scale-down one at a time from the highest ordinal;
//!   `Parallel` creates and deletes them all at once. Pods that ended (Succeeded / Failed) are
//!   deleted and recreated. `spec.ordinals.start` shifts the ordinals.
//! - **Identity**: each Pod carries `statefulset.kubernetes.io/pod-name`,
//!   `apps.kubernetes.io/pod-index` and `controller-revision-hash`, and has hostname = its name
//!   and subdomain = `serviceName` ([`identity`]).
//! - **Storage**: a PersistentVolumeClaim `<template>-<set>-<ordinal>` per `volumeClaimTemplates`
//!   entry is created before its Pod and mounted by it; claims are kept on scale-down and set
//!   deletion unless `persistentVolumeClaimRetentionPolicy` says `Delete`, in which case the set
//!   (whenDeleted) or the scaled-away Pod (whenScaled) is made their owner, for the garbage
//!   collector.
//! - **Updates**: revisions are ControllerRevisions ([`revision`]); `RollingUpdate` replaces Pods
//!   not at the update revision from the highest ordinal down to `partition`, at most
//!   `maxUnavailable` (default 1) unavailable at a time; `OnDelete` leaves replacing to the user.
//!   `status.currentRevision` becomes the update revision once every Pod runs it.
//! - **Status**: `replicas`, `readyReplicas`, `availableReplicas`, `currentReplicas`,
//!   `updatedReplicas`, `currentRevision`, `updateRevision`, `collisionCount`,
//!   `observedGeneration`.
//!
//! Left out: the alpha `Recreate` update strategy, events, adopting orphaned ControllerRevisions,
//! and re-creating a claim that is being deleted under a Pod (upstream's stale-claim check: here
//! the Pod waits with an error until the claim is gone).

pub mod identity;
pub mod revision;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, Patch, PostParams, Preconditions};
use kube::core::Selector;
use kube::{Api, ResourceExt};
use kubeforge::controller::owner::{controller_of, controller_reference};
use kubeforge::controller::{Action, BuildError, Context, Controller, ReconcileError, Watch};
use kubeforge::informer::Lister;
use kubeforge::manager::Manager;
use serde_json::json;

use crate::claims::{Claimant, claim, owners_to_sync};
use crate::expectations::{Expectations, Seen};
use crate::pods;

/// The controller's name (logs, metrics, field manager).
pub const NAME: &str = "statefulset-controller";

/// Registers the StatefulSet controller on `mgr`.
///
/// # Errors
/// When the manager refuses the controller (a duplicate name).
pub fn setup(mgr: &mut Manager) -> Result<(), BuildError> {
    let builder = Controller::managed_by(mgr)
        .for_::<StatefulSet>(Watch::new())
        .named(NAME);
    let sets = builder.primary_lister();
    builder
        .watches::<Pod>(Watch::new(), move |pod| {
            owners_to_sync(pod, "apps/v1", "StatefulSet", &sets, |s| {
                selector_of(s).ok()
            })
        })
        .owns::<ControllerRevision>(Watch::new())
        .owns::<PersistentVolumeClaim>(Watch::new())
        .concurrency(5)
        .complete(reconcile, Arc::new(Expectations::default()))
}

fn selector_of(set: &StatefulSet) -> Result<Selector, ReconcileError> {
    Selector::try_from(set.spec.selector.clone())
        .map_err(|e| ReconcileError::terminal(format!("invalid selector: {e}")))
}

/// Running with its `Ready` condition true (upstream `isRunningAndReady`).
fn running_and_ready(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") && pods::is_ready(pod)
}

async fn reconcile(
    set: Arc<StatefulSet>,
    ctx: Context<Arc<Expectations>>,
) -> Result<Action, ReconcileError> {
    let namespace = set.namespace().unwrap_or_default();
    let key = format!("{namespace}/{}", set.name_any());
    let selector = selector_of(&set)?;
    let owner =
        controller_reference(set.as_ref()).map_err(|e| ReconcileError::terminal(e.to_string()))?;
    let client = ctx.client().clone();
    let revisions_api: Api<ControllerRevision> = Api::namespaced(client.clone(), &namespace);
    let mut revisions: Vec<ControllerRevision> = ctx
        .lister::<ControllerRevision>()?
        .list_namespace(&namespace)
        .into_iter()
        .filter(|r| controller_of(r.as_ref()).is_some_and(|o| o.uid == owner.uid))
        .map(|r| (*r).clone())
        .collect();
    revisions.sort_by_key(|r| (revision::number(r), r.name_any()));
    let (current, update) =
        revision::resolve(&revisions_api, &set, &owner, &revisions, NAME).await?;

    let pod_cache = ctx.lister::<Pod>()?;
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let set_name = set.name_any();
    let members: Vec<Arc<Pod>> = pod_cache
        .list_namespace(&namespace)
        .into_iter()
        .filter(|p| identity::ordinal_of(&set_name, &p.name_any()).is_some())
        .collect();
    let claimant = Claimant {
        reference: &owner,
        selector: &selector,
        deleting: set.metadata.deletion_timestamp.is_some(),
        manager: NAME,
    };
    let (owned, _) = claim(&pod_api, &claimant, members).await?;

    let now = Timestamp::now();
    let mut status = status_of(&set, &owned, &current.name_any(), &update.name_any(), now);
    let seen = |name: &str| match pod_cache.get(Some(&namespace), name) {
        None => Seen::Absent,
        Some(p) if pods::is_terminating(&p) => Seen::Terminating,
        Some(_) => Seen::Present,
    };
    if set.metadata.deletion_timestamp.is_some() {
        ctx.data().forget(&key);
    } else if ctx.data().satisfied(&key, seen) {
        let sync = Sync {
            set: &set,
            ctx: &ctx,
            pods: pod_api,
            claims: Api::namespaced(client, &namespace),
            claim_cache: ctx.lister::<PersistentVolumeClaim>()?,
            owner,
            current: (current.name_any(), template_or(&current, &set)),
            update: (update.name_any(), template_or(&update, &set)),
            key,
            now,
        };
        let replaced = sync.run(&owned).await?;
        let current_replicas = status.current_replicas.unwrap_or(0);
        status.current_replicas = Some(current_replicas - replaced);
    }
    complete_update(&set, &mut status);
    write_status(&ctx, &set, &status).await?;

    let live: HashSet<String> = owned
        .iter()
        .map(|p| identity::revision_of(p).to_owned())
        .chain([current.name_any(), update.name_any()])
        .collect();
    revision::truncate(&revisions_api, &set, &revisions, &live).await?;

    let min_ready = set.spec.min_ready_seconds.unwrap_or(0);
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

/// The template a revision restores, or the set's own when the revision holds none.
fn template_or(revision: &ControllerRevision, set: &StatefulSet) -> PodTemplateSpec {
    revision::template_of(revision).unwrap_or_else(|| set.spec.template.clone())
}

/// Whether a sync goes on to the next Pod or waits for this one to change.
#[derive(PartialEq, Eq)]
enum Flow {
    Go,
    Wait,
}

/// One sync of a set: its Pods as observed, the revisions, and the APIs to change them.
struct Sync<'a> {
    set: &'a StatefulSet,
    ctx: &'a Context<Arc<Expectations>>,
    pods: Api<Pod>,
    claims: Api<PersistentVolumeClaim>,
    claim_cache: Lister<PersistentVolumeClaim>,
    owner: OwnerReference,
    current: (String, PodTemplateSpec),
    update: (String, PodTemplateSpec),
    key: String,
    now: Timestamp,
}

impl Sync<'_> {
    fn monotonic(&self) -> bool {
        self.set.spec.pod_management_policy.as_deref() != Some("Parallel")
    }

    fn min_ready(&self) -> i32 {
        self.set.spec.min_ready_seconds.unwrap_or(0)
    }

    fn available(&self, pod: &Pod) -> bool {
        running_and_ready(pod) && pods::is_available(pod, self.min_ready(), self.now)
    }

    fn unavailable(&self, pod: Option<&Arc<Pod>>) -> bool {
        pod.is_none_or(|p| !self.available(p) || pods::is_terminating(p))
    }

    /// Brings the set's Pods towards its spec (upstream `updateStatefulSet`); returns how many
    /// Pods it deleted to replace them at the update revision.
    async fn run(&self, owned: &[Arc<Pod>]) -> Result<i32, ReconcileError> {
        let start = identity::start_ordinal(self.set);
        let count = usize::try_from(identity::replicas(self.set)).unwrap_or(0);
        let set_name = self.set.name_any();
        let mut replicas: Vec<Option<Arc<Pod>>> = vec![None; count];
        let mut condemned: Vec<(i32, Arc<Pod>)> = Vec::new();
        for pod in owned {
            let Some(ordinal) = identity::ordinal_of(&set_name, &pod.name_any()) else {
                continue;
            };
            match usize::try_from(ordinal - start).ok().filter(|i| *i < count) {
                Some(i) => replicas[i] = Some(pod.clone()),
                None => condemned.push((ordinal, pod.clone())),
            }
        }
        condemned.sort_by_key(|(ordinal, _)| std::cmp::Reverse(*ordinal));
        let first_unhealthy = replicas
            .iter()
            .enumerate()
            .find(|(_, p)| self.unavailable(p.as_ref()))
            .map(|(i, _)| start + i32::try_from(i).unwrap_or(0))
            .or_else(|| {
                condemned
                    .iter()
                    .rev()
                    .find(|(_, p)| self.unavailable(Some(p)))
                    .map(|(o, _)| *o)
            });

        for (i, slot) in replicas.iter().enumerate() {
            let ordinal = start + i32::try_from(i).unwrap_or(0);
            if self.replica(ordinal, slot.as_ref()).await? == Flow::Wait {
                return Ok(0);
            }
        }
        for (ordinal, pod) in &condemned {
            self.fix_claim_owners(*ordinal, pod, true).await?;
        }
        for (ordinal, pod) in &condemned {
            if self.condemned(*ordinal, pod, first_unhealthy).await? == Flow::Wait {
                return Ok(0);
            }
        }
        let strategy = self.set.spec.update_strategy.as_ref();
        if strategy.and_then(|s| s.type_.as_deref()) == Some("OnDelete") {
            return Ok(0);
        }
        self.roll(&replicas).await
    }

    /// One Pod in the ordinal range (upstream `processReplica`).
    async fn replica(&self, ordinal: i32, pod: Option<&Arc<Pod>>) -> Result<Flow, ReconcileError> {
        let monotonic = self.monotonic();
        let wait_if = |block: bool| {
            if block && monotonic {
                Flow::Wait
            } else {
                Flow::Go
            }
        };
        let Some(pod) = pod else {
            self.create(ordinal).await?;
            return Ok(wait_if(true));
        };
        if pods::is_terminated(pod) {
            if !pods::is_terminating(pod) {
                self.delete(pod).await?;
            }
            return Ok(wait_if(true));
        }
        if pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending") {
            self.ensure_claims(ordinal).await?;
        }
        if pods::is_terminating(pod) || !running_and_ready(pod) || !self.available(pod) {
            return Ok(wait_if(true));
        }
        if let Some(labels) = identity::missing_identity(pod, ordinal) {
            let patch = json!({"metadata": {"labels": labels}});
            self.pods
                .patch(
                    &pod.name_any(),
                    &crate::writes::write_params(NAME),
                    &Patch::Merge(patch),
                )
                .await?;
        }
        self.fix_claim_owners(ordinal, pod, false).await?;
        Ok(Flow::Go)
    }

    /// One Pod beyond the ordinal range, highest first (upstream `processCondemned`).
    async fn condemned(
        &self,
        ordinal: i32,
        pod: &Pod,
        first_unhealthy: Option<i32>,
    ) -> Result<Flow, ReconcileError> {
        let monotonic = self.monotonic();
        if pods::is_terminating(pod) {
            return Ok(if monotonic { Flow::Wait } else { Flow::Go });
        }
        let healthy = running_and_ready(pod) && self.available(pod);
        if !healthy && monotonic && first_unhealthy != Some(ordinal) {
            return Ok(Flow::Wait);
        }
        self.delete(pod).await?;
        Ok(if monotonic { Flow::Wait } else { Flow::Go })
    }

    /// The rolling update: Pods not at the update revision are deleted (and recreated at it
    /// by the next sync), highest ordinal first down to `partition`, keeping at most
    /// `maxUnavailable` unavailable (upstream `updateStatefulSetAfterInvariantEstablished`).
    async fn roll(&self, replicas: &[Option<Arc<Pod>>]) -> Result<i32, ReconcileError> {
        let rolling = self
            .set
            .spec
            .update_strategy
            .as_ref()
            .and_then(|s| s.rolling_update.as_ref());
        let partition =
            usize::try_from(rolling.and_then(|r| r.partition).unwrap_or(0)).unwrap_or(0);
        let total = identity::replicas(self.set);
        let max_unavailable = rolling
            .and_then(|r| r.max_unavailable.as_ref())
            .map_or(1, |v| crate::pods::scaled(Some(v), "0%", total, false))
            .max(1);
        let outdated = |p: &Pod| identity::revision_of(p) != self.update.0;
        let unavailable = replicas
            .iter()
            .filter(|p| self.unavailable(p.as_ref()))
            .count();
        let unavailable = i32::try_from(unavailable).unwrap_or(i32::MAX);
        let parallel = !self.monotonic();
        let needing_update = replicas
            .iter()
            .flatten()
            .filter(|p| parallel && self.unavailable(Some(p)) && outdated(p))
            .filter(|p| !pods::is_terminating(p))
            .count();
        if unavailable >= max_unavailable && needing_update == 0 {
            return Ok(0);
        }
        let candidates: Vec<&Arc<Pod>> = replicas
            .iter()
            .skip(partition)
            .rev()
            .flatten()
            .filter(|p| outdated(p) && !pods::is_terminating(p))
            .collect();
        let mut deleted = 0;
        if parallel {
            // Already-unavailable outdated Pods first: they cost no availability.
            for pod in candidates.iter().filter(|p| !self.available(p)) {
                self.delete(pod).await?;
                deleted += 1;
            }
        }
        let mut budget = max_unavailable - unavailable;
        for pod in candidates.iter().filter(|p| self.available(p)) {
            if budget <= 0 {
                break;
            }
            self.delete(pod).await?;
            deleted += 1;
            budget -= 1;
        }
        Ok(deleted)
    }

    /// Creates the Pod with `ordinal` (after its claims), from the current revision below the
    /// partition and the update revision above it (upstream `newVersionedStatefulSetPod`).
    async fn create(&self, ordinal: i32) -> Result<(), ReconcileError> {
        self.ensure_claims(ordinal).await?;
        let strategy = self.set.spec.update_strategy.as_ref();
        let rolling_type = strategy
            .and_then(|s| s.type_.as_deref())
            .unwrap_or("RollingUpdate")
            == "RollingUpdate";
        let rolling = strategy.and_then(|s| s.rolling_update.as_ref());
        let start = identity::start_ordinal(self.set);
        let current_replicas = self
            .set
            .status
            .as_ref()
            .and_then(|s| s.current_replicas)
            .unwrap_or(0);
        let at_current = (rolling_type && rolling.is_none() && ordinal < start + current_replicas)
            || rolling.is_some_and(|r| ordinal < start + r.partition.unwrap_or(0));
        let (revision, template) = if at_current {
            &self.current
        } else {
            &self.update
        };
        let pod = identity::new_pod(self.set, template, revision, ordinal, self.owner.clone());
        let params = PostParams {
            field_manager: Some(NAME.into()),
            ..PostParams::default()
        };
        self.ctx.data().expect_created(&self.key, pod.name_any());
        match self.pods.create(&params, &pod).await {
            Ok(_) => Ok(()),
            Err(e) => {
                self.ctx.data().forget(&self.key);
                Err(ReconcileError::transient(format!(
                    "creating Pod {}: {e}",
                    pod.name_any()
                )))
            }
        }
    }

    /// Deletes `pod`, only if it is still the Pod the cache showed (not a new one of its name).
    async fn delete(&self, pod: &Pod) -> Result<(), ReconcileError> {
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: pod.metadata.uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        self.ctx.data().expect_deleted(&self.key, pod.name_any());
        match self.pods.delete(&pod.name_any(), &params).await {
            Ok(_) => Ok(()),
            Err(e) if crate::writes::has_code(&e, &[404, 409]) => Ok(()),
            Err(e) => Err(ReconcileError::transient(format!(
                "deleting Pod {}: {e}",
                pod.name_any()
            ))),
        }
    }

    /// Creates the claims of the Pod with `ordinal` that do not exist.
    async fn ensure_claims(&self, ordinal: i32) -> Result<(), ReconcileError> {
        let namespace = self.set.namespace();
        for claim in identity::claims_for(self.set, ordinal, Some(&self.owner)) {
            match self
                .claim_cache
                .get(namespace.as_deref(), &claim.name_any())
            {
                Some(existing) if existing.metadata.deletion_timestamp.is_some() => {
                    return Err(ReconcileError::transient(format!(
                        "PersistentVolumeClaim {} is being deleted; its Pod waits for it to go",
                        claim.name_any()
                    )));
                }
                Some(_) => {}
                None => match self.claims.create(&PostParams::default(), &claim).await {
                    Ok(_) => {}
                    Err(e) if crate::writes::has_code(&e, &[409]) => {}
                    Err(e) => {
                        return Err(ReconcileError::transient(format!(
                            "creating PersistentVolumeClaim {}: {e}",
                            claim.name_any()
                        )));
                    }
                },
            }
        }
        Ok(())
    }

    /// Makes the claims of `pod` name the owners the retention policy asks for.
    async fn fix_claim_owners(
        &self,
        ordinal: i32,
        pod: &Pod,
        scaled_down: bool,
    ) -> Result<(), ReconcileError> {
        let (by_set, by_pod) = identity::wanted_claim_owners(self.set, scaled_down);
        let pod_ref = OwnerReference {
            api_version: "v1".into(),
            kind: "Pod".into(),
            name: pod.name_any(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let namespace = self.set.namespace();
        for wanted in identity::claims_for(self.set, ordinal, None) {
            let Some(claim) = self
                .claim_cache
                .get(namespace.as_deref(), &wanted.name_any())
            else {
                continue;
            };
            let refs = claim.owner_references();
            let ours = |r: &OwnerReference| r.uid == self.owner.uid || r.uid == pod_ref.uid;
            // A claim someone else controls is left alone (upstream's unexpected controller).
            if refs.iter().any(|r| r.controller == Some(true) && !ours(r)) {
                continue;
            }
            let mut want: Vec<OwnerReference> = refs.iter().filter(|r| !ours(r)).cloned().collect();
            if by_set {
                want.push(self.owner.clone());
            }
            if by_pod {
                want.push(pod_ref.clone());
            }
            if want.as_slice() == refs {
                continue;
            }
            let patch = json!({"metadata": {
                "resourceVersion": claim.resource_version(),
                "ownerReferences": want,
            }});
            match self
                .claims
                .patch(
                    &claim.name_any(),
                    &crate::writes::write_params(NAME),
                    &Patch::Merge(patch),
                )
                .await
            {
                // A claim that is gone needs no owner. A conflict means our copy is stale: fail
                // so the Pod is not deleted before its claim is handed over, and retry.
                Ok(_) => {}
                Err(e) if crate::writes::has_code(&e, &[404]) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// The status the set's Pods give it (upstream `computeReplicaStatus`).
fn status_of(
    set: &StatefulSet,
    owned: &[Arc<Pod>],
    current: &str,
    update: &str,
    now: Timestamp,
) -> StatefulSetStatus {
    let min_ready = set.spec.min_ready_seconds.unwrap_or(0);
    let count = |f: &dyn Fn(&Pod) -> bool| {
        i32::try_from(owned.iter().filter(|p| f(p)).count()).unwrap_or(i32::MAX)
    };
    let at = |revision: &str| {
        count(&|p| !pods::is_terminating(p) && identity::revision_of(p) == revision)
    };
    StatefulSetStatus {
        replicas: count(&|_| true),
        ready_replicas: Some(count(&running_and_ready)),
        available_replicas: Some(count(&|p| {
            running_and_ready(p) && pods::is_available(p, min_ready, now)
        })),
        current_replicas: Some(at(current)),
        updated_replicas: Some(at(update)),
        current_revision: Some(current.to_owned()),
        update_revision: Some(update.to_owned()),
        collision_count: Some(
            set.status
                .as_ref()
                .and_then(|s| s.collision_count)
                .unwrap_or(0),
        ),
        observed_generation: set.metadata.generation,
        conditions: set.status.as_ref().and_then(|s| s.conditions.clone()),
    }
}

/// Once every Pod runs the update revision and is ready, it becomes the current one (upstream
/// `completeUpdate`).
fn complete_update(set: &StatefulSet, status: &mut StatefulSetStatus) {
    let want = identity::replicas(set);
    if status.updated_replicas == Some(want)
        && status.ready_replicas == Some(want)
        && status.replicas == want
    {
        status.current_replicas = status.updated_replicas;
        status.current_revision.clone_from(&status.update_revision);
    }
}

/// Writes `status` when it differs from the set's, guarded by the resourceVersion it was
/// computed from; zero counters are left out, as upstream's `omitempty` leaves them.
async fn write_status(
    ctx: &Context<Arc<Expectations>>,
    set: &StatefulSet,
    status: &StatefulSetStatus,
) -> Result<(), ReconcileError> {
    let nonzero = |v: Option<i32>| v.filter(|n| *n != 0);
    let status = StatefulSetStatus {
        ready_replicas: nonzero(status.ready_replicas),
        current_replicas: nonzero(status.current_replicas),
        updated_replicas: nonzero(status.updated_replicas),
        ..status.clone()
    };
    let api: Api<StatefulSet> =
        Api::namespaced(ctx.client().clone(), &set.namespace().unwrap_or_default());
    let old = set.status.clone().unwrap_or_default();
    // A stale or deleted set needs nothing: its change reconciles it again.
    crate::writes::write_status(&api, set, NAME, &old, &status).await?;
    Ok(())
}

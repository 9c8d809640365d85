//! The Deployment controller (upstream `pkg/controller/deployment`): one ReplicaSet per Pod
//! template, rolled from the old ones to the new one.
//!
//! - **One set per template**: the set whose template equals the Deployment's (ignoring the
//!   `pod-template-hash` label) is the new one; otherwise one is created, named
//!   `<deployment>-<hash>`, the hash on its labels, selector and template ([`hash`]). Reusing an
//!   old set (a rollback: re-applying an old template) bumps its revision.
//! - **Revisions**: `deployment.kubernetes.io/revision` on the sets and the Deployment, with
//!   `desired-replicas` / `max-replicas` annotations and the Deployment's own annotations copied
//!   onto its sets; old sets scaled to zero beyond `revisionHistoryLimit` are deleted.
//! - **RollingUpdate**: the new set grows within `maxSurge`, old sets shrink (their unavailable
//!   Pods first) while `replicas - maxUnavailable` stay available ([`rollout`]). **Recreate**:
//!   old sets go to zero, and once their Pods are gone the new set is scaled up.
//! - **Paused**: no rollout; `Progressing` is `Unknown/DeploymentPaused` (then
//!   `DeploymentResumed`). **Scaling** outside a rollout resizes the only active set.
//! - **Status**: `replicas`, `updatedReplicas`, `readyReplicas`, `availableReplicas`,
//!   `unavailableReplicas`, `observedGeneration`, `collisionCount`; `Available`, and
//!   `Progressing` with `progressDeadlineSeconds` (re-checked when the deadline passes).
//! - **Claiming**: ReplicaSets matching the selector are adopted, those that stop matching are
//!   released.
//!
//! Left out: proportional scaling of several active sets when `replicas` changes in the middle
//! of a rollout (the change waits until one set is active), the deprecated `rollbackTo`, the
//! `ReplicaFailure` condition copied from the sets, and events.

use crate::hash;
pub mod rollout;
mod status;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, Patch, PostParams};
use kube::core::Selector;
use kube::{Api, ResourceExt};
use kubeforge::controller::owner::controller_reference;
use kubeforge::controller::{Action, BuildError, Context, Controller, ReconcileError, Watch};
use kubeforge::manager::Manager;
use serde_json::json;

use crate::claims::{Claimant, claim, owners_to_sync};
use rollout::{Limits, SetCounts};

pub use hash::{LABEL as POD_TEMPLATE_HASH, template_hash};

/// The controller's name (logs, metrics, field manager).
pub const NAME: &str = "deployment-controller";
/// The revision of a set, and of the Deployment (its new set's).
pub const REVISION: &str = "deployment.kubernetes.io/revision";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Annotations of the Deployment not copied onto its sets (upstream `skipCopyAnnotation`).
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    DESIRED,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// Registers the Deployment controller on `mgr`.
///
/// # Errors
/// When the manager refuses the controller (a duplicate name).
pub fn setup(mgr: &mut Manager) -> Result<(), BuildError> {
    let builder = Controller::managed_by(mgr)
        .for_::<Deployment>(Watch::new())
        .named(NAME);
    let deployments = builder.primary_lister();
    builder
        .watches::<ReplicaSet>(Watch::new(), move |rs| {
            owners_to_sync(rs, "apps/v1", "Deployment", &deployments, |d| {
                selector_of(d).ok()
            })
        })
        .concurrency(5)
        .complete(reconcile, ())
}

fn selector_of(d: &Deployment) -> Result<Selector, ReconcileError> {
    Selector::try_from(d.spec.selector.clone())
        .map_err(|e| ReconcileError::terminal(format!("invalid selector: {e}")))
}

fn replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(0)
}

fn revision(rs: &ReplicaSet) -> i64 {
    rs.annotations()
        .get(REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn counts(rs: &ReplicaSet) -> SetCounts {
    let status = rs.status.as_ref();
    SetCounts {
        name: rs.name_any(),
        replicas: replicas(rs),
        running: status.map_or(0, |s| s.replicas),
        available: status.and_then(|s| s.available_replicas).unwrap_or(0),
    }
}

/// One sync of one Deployment: its sets (oldest first) and which is the new one.
struct Sync<'a> {
    d: &'a Deployment,
    sets: Vec<ReplicaSet>,
    new: Option<usize>,
    api: Api<ReplicaSet>,
    reference: OwnerReference,
    now: Timestamp,
    /// The new set this sync created, for the `Progressing` condition.
    created: Option<String>,
}

async fn reconcile(d: Arc<Deployment>, ctx: Context<()>) -> Result<Action, ReconcileError> {
    if d.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = d.namespace().unwrap_or_default();
    let selector = selector_of(&d)?;
    if selector.selects_all() {
        return Err(ReconcileError::terminal(
            "the selector is empty: it would select every Pod in the namespace",
        ));
    }
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client().clone(), &namespace);
    let reference =
        controller_reference(d.as_ref()).map_err(|e| ReconcileError::terminal(e.to_string()))?;
    let claimant = Claimant {
        reference: &reference,
        selector: &selector,
        deleting: false,
        manager: NAME,
    };
    let candidates = ctx.lister::<ReplicaSet>()?.list_namespace(&namespace);
    let (owned, _) = claim(&api, &claimant, candidates).await?;
    let mut sets: Vec<ReplicaSet> = owned.iter().map(|rs| rs.as_ref().clone()).collect();
    sets.sort_by(|a, b| {
        let created = |rs: &ReplicaSet| rs.metadata.creation_timestamp.clone();
        created(a)
            .cmp(&created(b))
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
    let template = &d.spec.template;
    let new = sets.iter().position(|rs| {
        rs.spec
            .template
            .as_ref()
            .is_some_and(|t| hash::same_template(t, template))
    });
    let mut sync = Sync {
        d: &d,
        sets,
        new,
        api,
        reference,
        now: Timestamp::now(),
        created: None,
    };

    let paused = d.spec.paused == Some(true);
    let recreate = d.spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    if paused || sync.is_scaling_event() {
        sync.adopt_revision().await?;
        sync.scale_only().await?;
        if paused {
            sync.cleanup().await?;
        }
    } else if recreate {
        sync.recreate().await?;
    } else {
        sync.rolling().await?;
    }
    sync.write_status(&ctx, paused).await
}

impl Sync<'_> {
    fn limits(&self) -> Limits {
        Limits::of(self.d)
    }

    fn old(&self) -> impl Iterator<Item = (usize, &ReplicaSet)> {
        self.sets
            .iter()
            .enumerate()
            .filter(move |(i, _)| Some(*i) != self.new)
    }

    /// An active set asked for a size other than the Deployment's (upstream `isScalingEvent`).
    fn is_scaling_event(&self) -> bool {
        let want = self.limits().replicas.to_string();
        self.sets
            .iter()
            .filter(|rs| replicas(rs) > 0)
            .any(|rs| rs.annotations().get(DESIRED).is_some_and(|v| *v != want))
    }

    /// Resizes the only active set (or the newest, when none is active); with several active
    /// sets, a saturated new set lets the old ones go to zero.
    async fn scale_only(&mut self) -> Result<(), ReconcileError> {
        let want = self.limits().replicas;
        let active: Vec<usize> = (0..self.sets.len())
            .filter(|i| replicas(&self.sets[*i]) > 0)
            .collect();
        let target = match active.as_slice() {
            [only] => Some(*only),
            [] => self.new.or_else(|| self.sets.len().checked_sub(1)),
            _ => None,
        };
        if let Some(i) = target {
            return self.scale(i, want).await;
        }
        let saturated = self.new.is_some_and(|n| {
            let c = counts(&self.sets[n]);
            c.replicas == want && c.available == want
        });
        if saturated {
            let old: Vec<usize> = self.old().map(|(i, _)| i).collect();
            for i in old {
                self.scale(i, 0).await?;
            }
        }
        Ok(())
    }

    /// Sets `spec.replicas` of set `i` (and its desired/max annotations) when they differ.
    async fn scale(&mut self, i: usize, to: i32) -> Result<(), ReconcileError> {
        let limits = self.limits();
        let desired = limits.replicas.to_string();
        let max = (limits.replicas + limits.max_surge).to_string();
        let rs = &self.sets[i];
        let annotations = rs.annotations();
        if replicas(rs) == to
            && annotations.get(DESIRED) == Some(&desired)
            && annotations.get(MAX_REPLICAS) == Some(&max)
        {
            return Ok(());
        }
        let body = json!({
            "metadata": {"resourceVersion": rs.resource_version(), "annotations": {DESIRED: desired, MAX_REPLICAS: max}},
            "spec": {"replicas": to},
        });
        let patched = self
            .api
            .patch(
                &rs.name_any(),
                &crate::writes::write_params(NAME),
                &Patch::Merge(body),
            )
            .await?;
        tracing::info!(replicaset = %patched.name_any(), from = replicas(rs), to, "scaled");
        self.sets[i] = patched;
        Ok(())
    }

    fn max_old_revision(&self) -> i64 {
        self.old().map(|(_, rs)| revision(rs)).max().unwrap_or(0)
    }

    /// The annotations the new set carries: the Deployment's own, and its revision.
    fn new_set_annotations(&self, current: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut annotations = current.clone();
        for (k, v) in self.d.annotations() {
            if !NOT_COPIED.contains(&k.as_str()) {
                annotations.insert(k.clone(), v.clone());
            }
        }
        let next = self.max_old_revision() + 1;
        let has = current
            .get(REVISION)
            .and_then(|r| r.parse::<i64>().ok())
            .unwrap_or(0);
        if has < next {
            annotations.insert(REVISION.into(), next.to_string());
        }
        annotations
    }

    /// Brings an existing new set's annotations (revision, copied annotations) and
    /// `minReadySeconds` up to date (upstream `getNewReplicaSet` on an existing set).
    async fn adopt_revision(&mut self) -> Result<(), ReconcileError> {
        let Some(n) = self.new else { return Ok(()) };
        let rs = &self.sets[n];
        let annotations = self.new_set_annotations(rs.annotations());
        let min_ready = self.d.spec.min_ready_seconds;
        let rs_min_ready = rs.spec.min_ready_seconds;
        if &annotations == rs.annotations() && min_ready.unwrap_or(0) == rs_min_ready.unwrap_or(0) {
            return Ok(());
        }
        let body = json!({
            "metadata": {"resourceVersion": rs.resource_version(), "annotations": annotations},
            "spec": {"minReadySeconds": min_ready},
        });
        self.sets[n] = self
            .api
            .patch(
                &rs.name_any(),
                &crate::writes::write_params(NAME),
                &Patch::Merge(body),
            )
            .await?;
        Ok(())
    }

    /// Creates the new set with `replicas` Pods (upstream `getNewReplicaSet` creating one).
    async fn create_new(&mut self, replicas: i32) -> Result<(), ReconcileError> {
        let spec = self.d.spec.clone();
        let collisions = self.d.status.as_ref().and_then(|s| s.collision_count);
        let hash = template_hash(&spec.template, collisions);
        let mut template = spec.template.clone();
        let meta = template.metadata.get_or_insert_with(ObjectMeta::default);
        meta.labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let labels = meta.labels.clone();
        let mut selector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let limits = self.limits();
        let mut annotations = self.new_set_annotations(&BTreeMap::new());
        annotations.insert(DESIRED.into(), limits.replicas.to_string());
        annotations.insert(
            MAX_REPLICAS.into(),
            (limits.replicas + limits.max_surge).to_string(),
        );
        let rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("{}-{hash}", self.d.name_any())),
                namespace: self.d.namespace(),
                labels,
                annotations: Some(annotations),
                owner_references: Some(vec![self.reference.clone()]),
                ..ObjectMeta::default()
            },
            spec: ReplicaSetSpec {
                replicas: Some(replicas),
                min_ready_seconds: spec.min_ready_seconds,
                selector,
                template: Some(template.clone()),
            },
            status: None,
        };
        match self
            .api
            .create(
                &PostParams {
                    field_manager: Some(NAME.into()),
                    ..PostParams::default()
                },
                &rs,
            )
            .await
        {
            Ok(created) => {
                tracing::info!(replicaset = %created.name_any(), replicas, "created the new ReplicaSet");
                self.sets.push(created);
                self.new = Some(self.sets.len() - 1);
                self.created = Some(self.sets[self.sets.len() - 1].name_any());
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {
                self.collided(&rs.name_any(), &template).await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A set of the new set's name exists: ours with this template (a stale cache), or a
    /// hash collision, which bumps `collisionCount` so the next try hashes differently.
    async fn collided(
        &mut self,
        name: &str,
        template: &k8s_openapi::api::core::v1::PodTemplateSpec,
    ) -> Result<(), ReconcileError> {
        let existing = self.api.get(name).await?;
        let ours = existing
            .owner_references()
            .iter()
            .any(|r| r.uid == self.reference.uid);
        let same = existing
            .spec
            .template
            .as_ref()
            .is_some_and(|t| hash::same_template(t, template));
        if ours && same {
            return Err(ReconcileError::transient(format!(
                "ReplicaSet {name} exists but is not in the cache yet"
            )));
        }
        let count = self
            .d
            .status
            .as_ref()
            .and_then(|s| s.collision_count)
            .unwrap_or(0)
            + 1;
        let deployments: Api<Deployment> = Api::namespaced(
            self.api.clone().into_client(),
            &self.d.namespace().unwrap_or_default(),
        );
        deployments
            .patch_status(
                &self.d.name_any(),
                &crate::writes::write_params(NAME),
                &Patch::Merge(json!({"status": {"collisionCount": count}})),
            )
            .await?;
        Err(ReconcileError::transient(format!(
            "hash collision with ReplicaSet {name}; collisionCount is now {count}"
        )))
    }

    /// One step of a rolling update (upstream `rolloutRolling`).
    async fn rolling(&mut self) -> Result<(), ReconcileError> {
        let limits = self.limits();
        self.adopt_revision().await?;
        if self.new.is_none() {
            let probe = SetCounts {
                name: String::new(),
                replicas: 0,
                running: 0,
                available: 0,
            };
            let all: Vec<SetCounts> = self.sets.iter().map(counts).collect();
            let refs: Vec<&SetCounts> = all.iter().chain([&probe]).collect();
            let target = rollout::new_set_target(limits, &probe, &refs);
            self.create_new(target).await?;
            return Ok(());
        }
        let n = self.new.expect("checked above");
        let new = counts(&self.sets[n]);
        let all: Vec<SetCounts> = self.sets.iter().map(counts).collect();
        let target = rollout::new_set_target(limits, &new, &all.iter().collect::<Vec<_>>());
        if target != new.replicas {
            return self.scale(n, target).await;
        }
        let old: Vec<(usize, SetCounts)> = self.old().map(|(i, rs)| (i, counts(rs))).collect();
        let old_counts: Vec<SetCounts> = old.iter().map(|(_, c)| c.clone()).collect();
        let targets = rollout::old_set_targets(limits, Some(&new), &old_counts);
        let mut scaled = false;
        for ((i, c), to) in old.iter().zip(targets) {
            if to != c.replicas {
                self.scale(*i, to).await?;
                scaled = true;
            }
        }
        if !scaled && self.is_complete() {
            self.cleanup().await?;
        }
        Ok(())
    }

    /// One step of a Recreate rollout (upstream `rolloutRecreate`).
    async fn recreate(&mut self) -> Result<(), ReconcileError> {
        self.adopt_revision().await?;
        let active_old: Vec<usize> = self
            .old()
            .filter(|(_, rs)| replicas(rs) > 0)
            .map(|(i, _)| i)
            .collect();
        if !active_old.is_empty() {
            for i in active_old {
                self.scale(i, 0).await?;
            }
            return Ok(());
        }
        // Old Pods still running (their sets' status counts them): the new ones wait.
        if self
            .old()
            .any(|(_, rs)| rs.status.as_ref().is_some_and(|s| s.replicas > 0))
        {
            return Ok(());
        }
        let want = self.limits().replicas;
        match self.new {
            None => self.create_new(want).await,
            Some(n) => {
                self.scale(n, want).await?;
                if self.is_complete() {
                    self.cleanup().await?;
                }
                Ok(())
            }
        }
    }

    fn is_complete(&self) -> bool {
        let Some(n) = self.new else { return false };
        let new = counts(&self.sets[n]);
        let running: i32 = self.sets.iter().map(|rs| counts(rs).running).sum();
        let available: i32 = self.sets.iter().map(|rs| counts(rs).available).sum();
        rollout::complete(self.limits(), new.running, running, available)
    }

    /// Deletes the oldest old sets beyond `revisionHistoryLimit` that run nothing.
    async fn cleanup(&mut self) -> Result<(), ReconcileError> {
        let limit = self.d.spec.revision_history_limit.unwrap_or(10);
        let mut old: Vec<&ReplicaSet> = self
            .old()
            .map(|(_, rs)| rs)
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let excess = old
            .len()
            .saturating_sub(usize::try_from(limit).unwrap_or(0));
        old.sort_by_key(|rs| revision(rs));
        for rs in old.into_iter().take(excess) {
            let idle = replicas(rs) == 0 && rs.status.as_ref().is_none_or(|s| s.replicas == 0);
            let observed =
                rs.status.as_ref().and_then(|s| s.observed_generation) >= rs.metadata.generation;
            if idle && observed {
                tracing::info!(replicaset = %rs.name_any(), "deleting an old ReplicaSet beyond revisionHistoryLimit");
                match self
                    .api
                    .delete(&rs.name_any(), &DeleteParams::default())
                    .await
                {
                    Ok(_) => {}
                    Err(e) if crate::writes::has_code(&e, &[404]) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// Writes the Deployment's revision annotation and status when they changed; requeues at
    /// the progress deadline of a rollout still under way.
    async fn write_status(
        &self,
        ctx: &Context<()>,
        paused: bool,
    ) -> Result<Action, ReconcileError> {
        let deployments: Api<Deployment> = Api::namespaced(
            ctx.client().clone(),
            &self.d.namespace().unwrap_or_default(),
        );
        let new = self.new.map(|n| &self.sets[n]);
        let all: Vec<&ReplicaSet> = self.sets.iter().collect();
        // Creating the new set starts a rollout: `Progressing` says so (upstream
        // `getNewReplicaSet`), which lets the next syncs report its progress.
        let mut d = self.d.clone();
        if let Some(name) = &self.created {
            let status = d.status.get_or_insert_with(Default::default);
            let conditions = status.conditions.get_or_insert_with(Vec::new);
            let c = status::condition(
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                format!("Created new replica set {name:?}"),
                self.now,
            );
            status::set(conditions, c);
        }
        let mut status = status::compute(&d, &all, new, self.now);
        let mut conditions = status.conditions.take().unwrap_or_default();
        let progressing = status::get(self.d.status.as_ref(), "Progressing");
        let reason = progressing.and_then(|c| c.reason.as_deref());
        if paused && reason != Some(status::PAUSED) {
            status::set(
                &mut conditions,
                status::condition(
                    "Progressing",
                    "Unknown",
                    status::PAUSED,
                    "Deployment is paused".into(),
                    self.now,
                ),
            );
        } else if !paused && reason == Some(status::PAUSED) {
            status::set(
                &mut conditions,
                status::condition(
                    "Progressing",
                    "Unknown",
                    status::RESUMED,
                    "Deployment is resumed".into(),
                    self.now,
                ),
            );
        }
        status.conditions = Some(conditions);
        let requeue = status::deadline_in(self.d, &status, self.now);
        let old = self.d.status.clone().unwrap_or_default();
        match crate::writes::write_status(&deployments, self.d, NAME, &old, &status).await? {
            crate::writes::StatusWrite::Gone => return Ok(Action::await_change()),
            // The Deployment changed since this sync read it; retried from the new one.
            crate::writes::StatusWrite::Stale => {
                return Err(ReconcileError::transient(
                    "the Deployment changed while its status was written",
                ));
            }
            crate::writes::StatusWrite::Written | crate::writes::StatusWrite::Unchanged => {}
        }
        // The revision on the Deployment, after the status (whose write is guarded by the
        // resourceVersion this sync read).
        if let Some(rev) = new.and_then(|rs| rs.annotations().get(REVISION))
            && self.d.annotations().get(REVISION) != Some(rev)
        {
            let body = json!({"metadata": {"annotations": {REVISION: rev}}});
            deployments
                .patch(
                    &self.d.name_any(),
                    &crate::writes::write_params(NAME),
                    &Patch::Merge(body),
                )
                .await?;
        }
        Ok(match requeue {
            Some(after) => Action::requeue(
                Duration::from_secs_f64(after.as_secs_f64()) + Duration::from_secs(1),
            ),
            None => Action::await_change(),
        })
    }
}

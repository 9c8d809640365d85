//! A DaemonSet's history: one ControllerRevision per distinct Pod template, named
//! `<set>-<hash>` and labelled `controller-revision-hash: <hash>`, holding the template as the
//! patch that restores it (upstream `update.go` `constructHistory`, `snapshot`, `dedupCurHistories`
//! and `cleanupHistory`).
//!
//! The *current* revision is the one whose template equals the set's; a template seen before
//! gets its old revision back with the next number (a rollback), others are the history, of
//! which `revisionHistoryLimit` (10) are kept besides those a Pod still runs.
//!
//! The hash is FNV-1a over this controller's JSON of the template plus `collisionCount`
//! (upstream hashes the Go encoding), so names differ from kube-controller-manager's; revisions
//! are compared by their decoded templates, so either controller's revisions are recognised.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{DeleteParams, Patch, PostParams};
use kube::{Api, ResourceExt};
use kubeforge::controller::ReconcileError;
use serde_json::json;

pub use crate::revisions::template_of;
use crate::revisions::{data_of, hash_of};

/// The label naming a revision's hash, on the revision and on the Pods made from it (upstream
/// `DefaultDaemonSetUniqueLabelKey`).
pub const HASH_LABEL: &str = "controller-revision-hash";

/// The revision's hash label (its name when it has none, as upstream labels such revisions).
pub fn hash_of_revision(revision: &ControllerRevision) -> String {
    revision
        .labels()
        .get(HASH_LABEL)
        .cloned()
        .unwrap_or_else(|| revision.name_any())
}

fn collision_count(ds: &DaemonSet) -> i32 {
    ds.status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0)
}

/// The revision of the set's template now, numbered `number` (upstream `snapshot`).
fn snapshot(ds: &DaemonSet, owner: &OwnerReference, number: i64) -> ControllerRevision {
    let template = &ds.spec.template;
    let hash = hash_of(template, collision_count(ds));
    let mut labels: BTreeMap<String, String> = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(HASH_LABEL.into(), hash.clone());
    let mut prefix = ds.name_any();
    prefix.truncate(223);
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{prefix}-{hash}")),
            namespace: ds.namespace(),
            labels: Some(labels),
            annotations: ds.metadata.annotations.clone(),
            owner_references: Some(vec![owner.clone()]),
            ..ObjectMeta::default()
        },
        data: RawExtension(data_of(template)),
        revision: Some(number),
    }
}

/// The set's revisions split by [`construct`]: the one of its template now and the rest.
#[derive(Debug)]
pub struct History {
    /// The revision of the set's current template; its hash labels new Pods.
    pub current: ControllerRevision,
    /// Every other revision the set owns.
    pub old: Vec<ControllerRevision>,
    /// Duplicates of `current` (equal templates under other names) that [`construct`] deleted;
    /// Pods labelled with their hashes are relabelled by the caller.
    pub merged: Vec<String>,
}

/// Finds or creates the revision of the set's template, raising its number above the others
/// (upstream `constructHistory`). `owned` are the revisions the set controls.
///
/// # Errors
/// A failed write; on a hash collision with another template, `status.collisionCount` is raised
/// and an error returned, so that the next sync hashes differently.
pub async fn construct(
    api: &Api<ControllerRevision>,
    sets: &Api<DaemonSet>,
    ds: &DaemonSet,
    owner: &OwnerReference,
    owned: Vec<ControllerRevision>,
    manager: &str,
) -> Result<History, ReconcileError> {
    let (mut same, old): (Vec<_>, Vec<_>) = owned
        .into_iter()
        .partition(|r| template_of(r).as_ref() == Some(&ds.spec.template));
    let next = old.iter().filter_map(|r| r.revision).max().unwrap_or(0) + 1;
    same.sort_by_key(|r| (r.revision.unwrap_or(0), r.name_any()));
    let Some(current) = same.pop() else {
        let current = create(api, sets, ds, owner, next, manager).await?;
        return Ok(History {
            current,
            old,
            merged: Vec::new(),
        });
    };
    let mut merged = Vec::new();
    for duplicate in same {
        delete(api, &duplicate.name_any()).await?;
        merged.push(hash_of_revision(&duplicate));
    }
    let mut current = current;
    let mut labels = current.labels().clone();
    let missing_label = !labels.contains_key(HASH_LABEL);
    if current.revision.unwrap_or(0) < next || missing_label {
        labels
            .entry(HASH_LABEL.into())
            .or_insert_with(|| current.name_any());
        let patch = json!({"metadata": {"labels": labels}, "revision": next.max(current.revision.unwrap_or(0))});
        current = api
            .patch(
                &current.name_any(),
                &crate::writes::write_params(manager),
                &Patch::Merge(patch),
            )
            .await?;
    }
    Ok(History {
        current,
        old,
        merged,
    })
}

/// Creates the revision of the set's template; an existing one of that name is reused when it
/// holds the same template, and is a hash collision otherwise.
async fn create(
    api: &Api<ControllerRevision>,
    sets: &Api<DaemonSet>,
    ds: &DaemonSet,
    owner: &OwnerReference,
    number: i64,
    manager: &str,
) -> Result<ControllerRevision, ReconcileError> {
    let revision = snapshot(ds, owner, number);
    match api.create(&PostParams::default(), &revision).await {
        Ok(created) => Ok(created),
        Err(e) if crate::writes::has_code(&e, &[409]) => {
            let existing = api.get(&revision.name_any()).await?;
            if template_of(&existing).as_ref() == Some(&ds.spec.template) {
                return Ok(existing);
            }
            let count = collision_count(ds) + 1;
            let patch = json!({
                "metadata": {"resourceVersion": ds.resource_version()},
                "status": {"collisionCount": count},
            });
            sets.patch_status(
                &ds.name_any(),
                &crate::writes::write_params(manager),
                &Patch::Merge(patch),
            )
            .await?;
            Err(ReconcileError::transient(format!(
                "ControllerRevision {} holds another template; collisionCount raised to {count}",
                revision.name_any()
            )))
        }
        Err(e) => Err(e.into()),
    }
}

async fn delete(api: &Api<ControllerRevision>, name: &str) -> Result<(), ReconcileError> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(e) if crate::writes::has_code(&e, &[404]) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Deletes the oldest revisions beyond `revisionHistoryLimit` (10 when unset) whose hash no Pod
/// carries (upstream `cleanupHistory`).
///
/// # Errors
/// A failed delete.
pub async fn truncate(
    api: &Api<ControllerRevision>,
    ds: &DaemonSet,
    old: &[ControllerRevision],
    live_hashes: &HashSet<String>,
) -> Result<(), ReconcileError> {
    let limit = usize::try_from(ds.spec.revision_history_limit.unwrap_or(10)).unwrap_or(0);
    let mut surplus = old.len().saturating_sub(limit);
    let mut oldest_first: Vec<&ControllerRevision> = old.iter().collect();
    oldest_first.sort_by_key(|r| r.revision.unwrap_or(0));
    for revision in oldest_first {
        if surplus == 0 {
            break;
        }
        if live_hashes.contains(&hash_of_revision(revision)) {
            continue;
        }
        delete(api, &revision.name_any()).await?;
        surplus -= 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revision_restores_its_template_and_is_named_by_its_hash() {
        let mut ds = DaemonSet::default();
        ds.metadata.name = Some("agent".into());
        ds.spec.template.metadata = Some(ObjectMeta {
            labels: Some(BTreeMap::from([("app".into(), "agent".into())])),
            ..ObjectMeta::default()
        });
        let owner = OwnerReference::default();
        let one = snapshot(&ds, &owner, 1);
        assert_eq!(template_of(&one).as_ref(), Some(&ds.spec.template));
        let hash = hash_of_revision(&one);
        assert_eq!(one.name_any(), format!("agent-{hash}"));
        assert_eq!(one.labels().get("app").map(String::as_str), Some("agent"));
        assert_eq!(snapshot(&ds, &owner, 2).name_any(), one.name_any());
        ds.status = Some(k8s_openapi::api::apps::v1::DaemonSetStatus {
            collision_count: Some(1),
            ..Default::default()
        });
        assert_ne!(snapshot(&ds, &owner, 1).name_any(), one.name_any());
    }
}

//! A StatefulSet's history: one ControllerRevision per distinct Pod template, named
//! `<set>-<hash>`, holding the template as the patch that restores it (upstream
//! `stateful_set_utils.go` `newRevision` / `ApplyRevision` and `getStatefulSetRevisions`).
//!
//! The *update* revision is the set's template now (an equal older revision is reused, its
//! number raised: a rollback); the *current* revision is `status.currentRevision`, the one the
//! Pods ran before the rollout. `kubectl rollout history` / `undo` read these objects.
//!
//! The hash is FNV-1a over this controller's JSON of the template (upstream hashes the Go
//! encoding with FNV-1), so revision names differ from kube-controller-manager's for the same
//! template; revisions are compared by their decoded templates, so either controller's
//! revisions are recognised.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{DeleteParams, Patch, PostParams};
use kube::{Api, ResourceExt};
use kubeforge::controller::ReconcileError;
use serde_json::json;

pub use crate::revisions::template_of;
use crate::revisions::{data_of, hash_of};

/// The label on a revision carrying its hash (upstream `ControllerRevisionHashLabel`).
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// The revision's number (`revision`, 0 when unset).
pub fn number(revision: &ControllerRevision) -> i64 {
    revision.revision.unwrap_or(0)
}

/// The ControllerRevision for the set's template with `number`.
fn new_revision(
    set: &StatefulSet,
    owner: &OwnerReference,
    number: i64,
    collision_count: i32,
) -> ControllerRevision {
    let template = &set.spec.template;
    let hash = hash_of(template, collision_count);
    let mut labels: BTreeMap<String, String> = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(HASH_LABEL.into(), hash.clone());
    let mut prefix = set.name_any();
    prefix.truncate(223);
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{prefix}-{hash}")),
            namespace: set.namespace(),
            labels: Some(labels),
            annotations: set.metadata.annotations.clone(),
            owner_references: Some(vec![owner.clone()]),
            ..ObjectMeta::default()
        },
        data: RawExtension(data_of(template)),
        revision: Some(number),
    }
}

/// The set's current and update revisions, creating the update revision (or raising an equal
/// old one's number) when the template changed. `revisions` are the set's, oldest first.
///
/// # Errors
/// A failed write of a revision.
pub async fn resolve(
    api: &Api<ControllerRevision>,
    set: &StatefulSet,
    owner: &OwnerReference,
    revisions: &[ControllerRevision],
    manager: &str,
) -> Result<(ControllerRevision, ControllerRevision), ReconcileError> {
    let next = revisions.last().map_or(1, |r| number(r) + 1);
    let collision_count = set
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0);
    let same = |r: &&ControllerRevision| template_of(r).as_ref() == Some(&set.spec.template);
    let update = match revisions.iter().rev().find(same) {
        Some(latest) if Some(latest) == revisions.last() => latest.clone(),
        Some(older) => {
            // A rollback to an older template: that revision becomes the newest.
            api.patch(
                &older.name_any(),
                &crate::writes::write_params(manager),
                &Patch::Merge(json!({"revision": next})),
            )
            .await?
        }
        None => {
            let revision = new_revision(set, owner, next, collision_count);
            match api.create(&PostParams::default(), &revision).await {
                Ok(created) => created,
                // Created by an earlier sync the cache has not shown yet.
                Err(e) if crate::writes::has_code(&e, &[409]) => {
                    api.get(&revision.name_any()).await?
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let wanted = set
        .status
        .as_ref()
        .and_then(|s| s.current_revision.as_deref());
    let current = revisions
        .iter()
        .find(|r| Some(r.name_any().as_str()) == wanted)
        .cloned()
        .unwrap_or_else(|| update.clone());
    Ok((current, update))
}

/// Deletes the oldest revisions no Pod runs and that are neither current nor update, beyond
/// `revisionHistoryLimit` (10 when unset).
///
/// # Errors
/// A failed delete.
pub async fn truncate(
    api: &Api<ControllerRevision>,
    set: &StatefulSet,
    revisions: &[ControllerRevision],
    live: &HashSet<String>,
) -> Result<(), ReconcileError> {
    let limit = usize::try_from(set.spec.revision_history_limit.unwrap_or(10)).unwrap_or(0);
    let history: Vec<&ControllerRevision> = revisions
        .iter()
        .filter(|r| !live.contains(&r.name_any()))
        .collect();
    let surplus = history.len().saturating_sub(limit);
    for old in history.into_iter().take(surplus) {
        match api.delete(&old.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if crate::writes::has_code(&e, &[404]) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revision_restores_its_template_and_names_it_by_hash() {
        let mut set = StatefulSet::default();
        set.metadata.name = Some("web".into());
        set.spec.template.metadata = Some(ObjectMeta {
            labels: Some(BTreeMap::from([("app".into(), "web".into())])),
            ..ObjectMeta::default()
        });
        let owner = OwnerReference::default();
        let one = new_revision(&set, &owner, 1, 0);
        assert_eq!(template_of(&one).as_ref(), Some(&set.spec.template));
        assert!(one.name_any().starts_with("web-"));
        assert_eq!(new_revision(&set, &owner, 2, 0).name_any(), one.name_any());
        assert_ne!(new_revision(&set, &owner, 1, 1).name_any(), one.name_any());
        set.spec.template.metadata = None;
        assert_ne!(new_revision(&set, &owner, 1, 0).name_any(), one.name_any());
    }
}

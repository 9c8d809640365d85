//! Claiming children by label selector (upstream `ControllerRefManager`): a set owns the objects
//! its selector matches that name it as their controller; it adopts matching orphans and
//! releases owned objects whose labels stopped matching, so ownership follows the labels as
//! `kubectl label` changes them.
//!
//! Both are JSON patches guarded by the child's `uid` and `resourceVersion`: an adoption racing
//! another owner's (or a change of the labels) fails with a conflict and is retried from the
//! cache, instead of writing over what the other party did.

use std::fmt::Debug;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Patch, PatchParams};
use kube::core::{Selector, SelectorExt};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

/// Who claims: the owner's controller reference and whether it may still adopt.
#[derive(Debug)]
pub struct Claimant<'a> {
    /// The reference the owner's children carry (`controller: true`).
    pub reference: &'a OwnerReference,
    /// The owner's label selector.
    pub selector: &'a Selector,
    /// The owner is being deleted: it releases nothing and adopts nothing (upstream).
    pub deleting: bool,
    /// The field manager of the patches.
    pub manager: &'a str,
}

/// What claiming did besides returning the owned children.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ClaimReport {
    /// Orphans adopted.
    pub adopted: usize,
    /// Children released.
    pub released: usize,
}

/// The children `claimant` controls after adopting and releasing: of `candidates` (objects
/// in the owner's namespace), those that name it as controller and match its selector, plus
/// matching orphans it adopts. Objects controlled by someone else are never touched.
///
/// # Errors
/// The first failed patch (a conflict included): the caller retries the reconcile.
pub async fn claim<K>(
    api: &Api<K>,
    claimant: &Claimant<'_>,
    candidates: Vec<Arc<K>>,
) -> Result<(Vec<Arc<K>>, ClaimReport), kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let mut owned = Vec::new();
    let mut report = ClaimReport::default();
    for child in candidates {
        let matches = claimant.selector.matches(child.labels());
        let controller = child
            .owner_references()
            .iter()
            .find(|r| r.controller == Some(true));
        match controller {
            Some(r) if r.uid == claimant.reference.uid => {
                if matches {
                    owned.push(child);
                } else if !claimant.deleting {
                    release(api, claimant, &child).await?;
                    report.released += 1;
                }
            }
            Some(_) => {}
            None => {
                if matches && !claimant.deleting && child.meta().deletion_timestamp.is_none() {
                    let adopted = adopt(api, claimant, &child).await?;
                    report.adopted += 1;
                    owned.push(Arc::new(adopted));
                }
            }
        }
    }
    Ok((owned, report))
}

/// The guard of every claim patch: the child is still the object the cache showed.
fn guard<K: Resource>(child: &K) -> [serde_json::Value; 2] {
    [
        json!({"op": "test", "path": "/metadata/uid", "value": child.uid()}),
        json!({"op": "test", "path": "/metadata/resourceVersion", "value": child.resource_version()}),
    ]
}

async fn adopt<K>(api: &Api<K>, claimant: &Claimant<'_>, child: &K) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let mut refs = child.owner_references().to_vec();
    refs.push(claimant.reference.clone());
    let ops = guard(child)
        .into_iter()
        .chain([json!({"op": "add", "path": "/metadata/ownerReferences", "value": refs})])
        .collect::<Vec<_>>();
    patch(api, claimant, child, ops).await
}

async fn release<K>(api: &Api<K>, claimant: &Claimant<'_>, child: &K) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let refs: Vec<_> = child
        .owner_references()
        .iter()
        .filter(|r| r.uid != claimant.reference.uid)
        .cloned()
        .collect();
    let ops = guard(child)
        .into_iter()
        .chain([json!({"op": "add", "path": "/metadata/ownerReferences", "value": refs})])
        .collect::<Vec<_>>();
    patch(api, claimant, child, ops).await
}

async fn patch<K>(
    api: &Api<K>,
    claimant: &Claimant<'_>,
    child: &K,
    ops: Vec<serde_json::Value>,
) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let ops: json_patch::Patch =
        serde_json::from_value(json!(ops)).map_err(kube::Error::SerdeError)?;
    api.patch(
        &child.name_any(),
        &PatchParams {
            field_manager: Some(claimant.manager.to_owned()),
            ..PatchParams::default()
        },
        &Patch::<()>::Json(ops),
    )
    .await
}

/// The owners a change of `child` concerns (the mapper of a child watch): its controller, if
/// that is a `kind` of `api_version`; else, for an orphan, every owner in its namespace whose
/// selector (`selector_of`, `None` when unusable) matches it and may adopt it.
pub fn owners_to_sync<C, O>(
    child: &C,
    api_version: &str,
    kind: &str,
    owners: &kubeforge::informer::Lister<O>,
    selector_of: impl Fn(&O) -> Option<Selector>,
) -> Vec<kubeforge::informer::ObjectKey>
where
    C: Resource,
    O: Resource,
{
    let namespace = child.namespace();
    match kubeforge::controller::owner::controller_of(child) {
        Some(r) if r.kind == kind && r.api_version == api_version => {
            vec![kubeforge::informer::ObjectKey::new(
                namespace.as_deref(),
                &r.name,
            )]
        }
        Some(_) => Vec::new(),
        None => owners
            .list_namespace(namespace.as_deref().unwrap_or_default())
            .iter()
            .filter(|o| {
                selector_of(o).is_some_and(|s| !s.selects_all() && s.matches(child.labels()))
            })
            .filter_map(|o| kubeforge::informer::ObjectKey::from_obj(o.as_ref()).ok())
            .collect(),
    }
}

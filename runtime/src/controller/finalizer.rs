//! Finalizers: run cleanup before an object disappears.
//!
//! The deletion model: a controller never sees a deleted object — once it is gone from the
//! cache there is nothing left to reconcile. Work that must happen on deletion (releasing
//! external resources) therefore goes through a finalizer: the object carries the finalizer's
//! name in `metadata.finalizers`, so deleting it only sets `metadata.deletionTimestamp`; the
//! controller sees that update, runs its cleanup and removes the finalizer, and only then does
//! the API server delete the object.
//!
//! # Expected flow
//! 1. The object is created; the controller reconciles it and [`finalizer`] sees no finalizer.
//! 2. It adds the finalizer (JSON patch) and returns [`Action::await_change`]; the patch is an
//!    update, which reconciles the object again.
//! 3. With the finalizer present and no deletion timestamp, [`Event::Apply`] runs your reconcile.
//! 4. A user deletes the object; the API server sets `deletionTimestamp`, which reconciles it.
//! 5. [`Event::Cleanup`] runs your cleanup; on success the finalizer is removed (JSON patch),
//!    the API server deletes the object, and the controller stops seeing it.
//! 6. If cleanup fails, the error is returned (and retried with backoff); the finalizer stays.
//!
//! # Guarantees
//! - Cleanup runs to success at least once before the object is deleted, even if the controller
//!   was down when the deletion was requested.
//! - Patches are optimistic: a JSON patch `test` op on `resourceVersion` (add) or on the
//!   finalizer's position (remove) makes a concurrent change fail with a conflict, which is
//!   retried, instead of overwriting another writer's finalizers.
//!
//! # Caveats
//! - Cleanup may run more than once (a retry after the finalizer removal failed): make it
//!   idempotent.
//! - Objects deleted before the finalizer was added get no cleanup.

use std::future::Future;
use std::sync::Arc;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::controller::{Action, ReconcileError};

/// What the finalizer asks the reconcile function to do.
#[derive(Debug)]
pub enum Event<K> {
    /// The object exists and is not being deleted: converge it.
    Apply(Arc<K>),
    /// The object is being deleted: release what it holds. The finalizer is removed once this
    /// returns `Ok`.
    Cleanup(Arc<K>),
}

/// Failures of the finalizer's own API calls (the reconcile function's errors pass through).
#[derive(Debug, thiserror::Error)]
pub enum FinalizerError {
    /// The object has no name, so it cannot be patched.
    #[error("cannot manage finalizer {finalizer:?}: object has no metadata.name")]
    UnnamedObject {
        /// The finalizer.
        finalizer: String,
    },
    /// Adding the finalizer failed (a 409/422 means the object changed meanwhile; it is retried).
    #[error("failed to add finalizer {finalizer:?} to {object}")]
    AddFinalizer {
        /// The finalizer.
        finalizer: String,
        /// `namespace/name` of the object.
        object: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Removing the finalizer failed; cleanup will run again.
    #[error("failed to remove finalizer {finalizer:?} from {object}")]
    RemoveFinalizer {
        /// The finalizer.
        finalizer: String,
        /// `namespace/name` of the object.
        object: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

fn object_ref<K: Resource>(obj: &K) -> String {
    match obj.namespace() {
        Some(ns) => format!("{ns}/{}", obj.name_any()),
        None => obj.name_any(),
    }
}

/// Runs `reconcile` with [`Event::Apply`] or [`Event::Cleanup`] for `obj`, adding and removing
/// the finalizer `name` around them as described in the [module docs](self).
///
/// ```no_run
/// # use std::sync::Arc;
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use kubeforge::controller::finalizer::{Event, finalizer};
/// use kubeforge::controller::{Action, Context, ReconcileError};
///
/// async fn reconcile(cm: Arc<ConfigMap>, ctx: Context<()>) -> Result<Action, ReconcileError> {
///     let api = kube::Api::<ConfigMap>::namespaced(ctx.client().clone(), "default");
///     finalizer(&api, "example.com/cleanup", cm, |event| async move {
///         match event {
///             Event::Apply(cm) => { /* converge */ }
///             Event::Cleanup(cm) => { /* release what cm holds outside the cluster */ }
///         }
///         Ok::<_, std::io::Error>(Action::await_change())
///     })
///     .await
/// }
/// ```
pub async fn finalizer<K, F, Fut, E>(
    api: &Api<K>,
    name: &str,
    obj: Arc<K>,
    reconcile: F,
) -> Result<Action, ReconcileError>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    F: FnOnce(Event<K>) -> Fut,
    Fut: Future<Output = Result<Action, E>>,
    E: Into<ReconcileError>,
{
    let index = obj.finalizers().iter().position(|f| f == name);
    let deleting = obj.meta().deletion_timestamp.is_some();
    let obj_name = obj
        .meta()
        .name
        .clone()
        .ok_or_else(|| FinalizerError::UnnamedObject {
            finalizer: name.to_owned(),
        })?;
    match (index, deleting) {
        (Some(_), false) => reconcile(Event::Apply(obj)).await.map_err(Into::into),
        (Some(index), true) => {
            let action = reconcile(Event::Cleanup(obj.clone()))
                .await
                .map_err(Into::into)?;
            let path = format!("/metadata/finalizers/{index}");
            let ops = json!([
                { "op": "test", "path": path, "value": name },
                { "op": "remove", "path": path },
            ]);
            match json_patch(api, &obj_name, ops).await {
                Ok(_) => Ok(action),
                // The object is already gone (a stale cache entry ran the cleanup again after
                // the removal went through): the work is done, not an error to retry.
                Err(kube::Error::Api(status)) if status.code == 404 => Ok(Action::await_change()),
                Err(source) => Err(FinalizerError::RemoveFinalizer {
                    finalizer: name.to_owned(),
                    object: object_ref(&*obj),
                    source,
                }
                .into()),
            }
        }
        (None, false) => {
            let ops = match (&obj.meta().finalizers, &obj.meta().resource_version) {
                (None, Some(rv)) => json!([
                    { "op": "test", "path": "/metadata/resourceVersion", "value": rv },
                    { "op": "add", "path": "/metadata/finalizers", "value": [name] },
                ]),
                (None, None) => {
                    json!([{ "op": "add", "path": "/metadata/finalizers", "value": [name] }])
                }
                (Some(current), _) => json!([
                    { "op": "test", "path": "/metadata/finalizers", "value": current },
                    { "op": "add", "path": "/metadata/finalizers/-", "value": name },
                ]),
            };
            json_patch(api, &obj_name, ops).await.map_err(|source| {
                FinalizerError::AddFinalizer {
                    finalizer: name.to_owned(),
                    object: object_ref(&*obj),
                    source,
                }
            })?;
            // The patch is an update event, which reconciles the object again with the finalizer.
            Ok(Action::await_change())
        }
        // Being deleted and our finalizer is gone (or was never added): nothing left to do.
        (None, true) => Ok(Action::await_change()),
    }
}
/// Sends a JSON patch (RFC 6902 operations) to the object `name`; its `test` operations make it
/// fail with 409/422 if the object changed since it was read.
async fn json_patch<K>(api: &Api<K>, name: &str, ops: serde_json::Value) -> Result<(), kube::Error>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    let patch: json_patch::Patch = serde_json::from_value(ops).map_err(kube::Error::SerdeError)?;
    api.patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
        .await
        .map(drop)
}

//! Deletion: finalizers, `propagationPolicy`, and garbage collection of dependents through
//! `ownerReferences` (kube-controller-manager's job in a real cluster, done here synchronously
//! so tests see its effect as soon as the delete returns).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::objects;
use crate::resources::{ResourceInfo, ResourceKey};
use crate::status::{ApiError, ApiResult};
use crate::store::{ObjKey, Store, Stored};

/// How dependents are treated when their owner is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Delete the owner now, dependents afterwards (the default).
    Background,
    /// Keep the owner (with the `foregroundDeletion` finalizer) until its dependents are gone.
    Foreground,
    /// Delete the owner and leave dependents, removing their reference to it.
    Orphan,
}

/// Options of a DELETE, from the body's DeleteOptions or the query.
#[derive(Debug, Clone)]
pub struct DeleteOptions {
    pub propagation: Propagation,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    pub dry_run: bool,
}

impl Default for DeleteOptions {
    fn default() -> Self {
        DeleteOptions {
            propagation: Propagation::Background,
            precondition_uid: None,
            precondition_rv: None,
            dry_run: false,
        }
    }
}

impl DeleteOptions {
    /// Reads DeleteOptions JSON (body) and query parameters; the query wins.
    pub fn parse(body: Option<&Value>, query: &crate::query::Query) -> ApiResult<DeleteOptions> {
        let mut o = DeleteOptions::default();
        let policy = query
            .get("propagationPolicy")
            .map(str::to_string)
            .or_else(|| body.and_then(|b| b["propagationPolicy"].as_str().map(str::to_string)));
        let orphan = query
            .flag_opt("orphanDependents")?
            .or_else(|| body.and_then(|b| b["orphanDependents"].as_bool()));
        o.propagation = match policy.as_deref() {
            None => {
                if orphan == Some(true) {
                    Propagation::Orphan
                } else {
                    Propagation::Background
                }
            }
            Some("Background") => Propagation::Background,
            Some("Foreground") => Propagation::Foreground,
            Some("Orphan") => Propagation::Orphan,
            Some(p) => {
                return Err(ApiError::invalid(
                    "",
                    "DeleteOptions",
                    "",
                    vec![crate::status::Cause {
                        reason: "FieldValueNotSupported".into(),
                        message: format!(
                            "Unsupported value: {p:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""
                        ),
                        field: "propagationPolicy".into(),
                    }],
                ));
            }
        };
        if let Some(b) = body {
            o.precondition_uid = b["preconditions"]["uid"].as_str().map(str::to_string);
            o.precondition_rv = b["preconditions"]["resourceVersion"]
                .as_str()
                .map(str::to_string);
            o.dry_run = b["dryRun"]
                .as_array()
                .is_some_and(|a| a.iter().any(|d| d == "All"));
        }
        o.dry_run |= query.get("dryRun") == Some("All");
        Ok(o)
    }
}

fn finalizers(v: &Value) -> Vec<String> {
    v["metadata"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Deletes one object. Returns the object as the response shows it: with `deletionTimestamp`
/// when finalizers keep it, or its last state when it is gone.
pub fn delete(
    store: &mut Store,
    info: &Arc<ResourceInfo>,
    key: &ObjKey,
    opts: &DeleteOptions,
) -> ApiResult<Arc<Stored>> {
    let res = info.key();
    let Some(existing) = store.get(&res, key) else {
        return Err(ApiError::not_found(&info.group_resource(), &key.1));
    };
    if let Some(uid) = &opts.precondition_uid
        && *uid != existing.uid
    {
        return Err(ApiError::conflict(
            &info.group_resource(),
            &key.1,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                existing.uid
            ),
        ));
    }
    if let Some(rv) = &opts.precondition_rv
        && *rv != existing.rv.to_string()
    {
        return Err(ApiError::conflict(
            &info.group_resource(),
            &key.1,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                existing.rv
            ),
        ));
    }
    if opts.dry_run {
        return Ok(existing);
    }
    let mut obj = existing.value();
    let mut fins = finalizers(&obj);
    if obj["metadata"]["deletionTimestamp"].is_string() {
        // Already being deleted: nothing more to do until the finalizers are removed.
        return Ok(existing);
    }
    let is_namespace = info.group.is_empty() && info.plural == "namespaces";
    match opts.propagation {
        Propagation::Orphan => orphan_dependents(store, &existing.uid),
        Propagation::Foreground if !store.dependents(&existing.uid).is_empty() => {
            fins.push("foregroundDeletion".into());
        }
        _ => {}
    }
    if !fins.is_empty() || is_namespace {
        obj["metadata"]["deletionTimestamp"] = json!(objects::now());
        obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        obj["metadata"]["finalizers"] = json!(fins);
        if fins.is_empty()
            && let Some(m) = obj["metadata"].as_object_mut()
        {
            m.remove("finalizers");
        }
        if is_namespace {
            obj["status"]["phase"] = json!("Terminating");
        }
        let marked = store.put(&res, key.clone(), obj);
        if opts.propagation == Propagation::Foreground {
            for (dres, dkey, _) in store.dependents(&existing.uid) {
                delete_quietly(store, &dres, &dkey, Propagation::Foreground);
            }
            release_foreground(store, &existing.uid);
        }
        if is_namespace {
            empty_namespace(store, &key.1);
        }
        return Ok(store.get(&res, key).unwrap_or(marked));
    }
    remove(store, &res, key, None)
        .ok_or_else(|| ApiError::not_found(&info.group_resource(), &key.1))
}

/// Deletes a dependent found by the garbage collector; errors are logged, not returned.
fn delete_quietly(store: &mut Store, res: &ResourceKey, key: &ObjKey, propagation: Propagation) {
    let Some(info) = store.registry.preferred(res) else {
        return;
    };
    let opts = DeleteOptions {
        propagation,
        ..Default::default()
    };
    if let Err(e) = delete(store, &info, key, &opts) {
        tracing::debug!(error = %e, "garbage collector could not delete a dependent");
    }
}

/// Removes an object from the store and runs what follows: garbage collection of its
/// dependents, foreground owners waiting for it, and terminating namespaces it emptied.
pub fn remove(
    store: &mut Store,
    res: &ResourceKey,
    key: &ObjKey,
    last: Option<Value>,
) -> Option<Arc<Stored>> {
    let gone = store.remove_as(res, key, last)?;
    // Dependents whose owners are all gone are deleted; others lose the dangling reference.
    for (dres, dkey, dep) in store.dependents(&gone.uid) {
        let other_owner_alive = dep
            .owners
            .iter()
            .any(|o| *o != gone.uid && store.locate_uid(o).is_some());
        if other_owner_alive {
            drop_owner_ref(store, &dres, &dkey, &gone.uid);
        } else {
            delete_quietly(store, &dres, &dkey, Propagation::Background);
        }
    }
    for owner in gone.owners.clone() {
        release_foreground(store, &owner);
    }
    if !key.0.is_empty() {
        finish_namespace_if_empty(store, &key.0);
    }
    if res.group == "apiextensions.k8s.io" && res.plural == "customresourcedefinitions" {
        crate::crd::after_delete(store, &gone);
    }
    Some(gone)
}

/// A dependent written with owner references none of which exists — its owners were deleted
/// before it was created or updated, e.g. by a controller acting on a stale cache — is deleted,
/// as kube-controller-manager's garbage collector deletes dependents whose owners are absent.
/// The write itself succeeds (the collector acts afterwards), so the caller still gets the
/// object it wrote.
pub fn collect_if_orphaned(store: &mut Store, res: &ResourceKey, key: &ObjKey, obj: &Stored) {
    if obj.owners.is_empty() || obj.owners.iter().any(|o| store.locate_uid(o).is_some()) {
        return;
    }
    delete_quietly(store, res, key, Propagation::Background);
}

fn drop_owner_ref(store: &mut Store, res: &ResourceKey, key: &ObjKey, owner_uid: &str) {
    let Some(dep) = store.get(res, key) else {
        return;
    };
    let mut v = dep.value();
    if let Some(refs) = v["metadata"]["ownerReferences"].as_array_mut() {
        refs.retain(|r| r["uid"].as_str() != Some(owner_uid));
        if refs.is_empty()
            && let Some(m) = v["metadata"].as_object_mut()
        {
            m.remove("ownerReferences");
        }
    }
    store.put(res, key.clone(), v);
}

fn orphan_dependents(store: &mut Store, uid: &str) {
    for (dres, dkey, _) in store.dependents(uid) {
        drop_owner_ref(store, &dres, &dkey, uid);
    }
}

/// Completes a foreground deletion once the owner has no dependents left.
fn release_foreground(store: &mut Store, owner_uid: &str) {
    let Some((res, key)) = store.locate_uid(owner_uid).cloned() else {
        return;
    };
    let Some(owner) = store.get(&res, &key) else {
        return;
    };
    let mut v = owner.value();
    let mut fins = finalizers(&v);
    if !fins.iter().any(|f| f == "foregroundDeletion") || !store.dependents(owner_uid).is_empty() {
        return;
    }
    fins.retain(|f| f != "foregroundDeletion");
    if fins.is_empty() {
        if let Some(m) = v["metadata"].as_object_mut() {
            m.remove("finalizers");
        }
        remove(store, &res, &key, Some(v));
    } else {
        v["metadata"]["finalizers"] = json!(fins);
        store.put(&res, key, v);
    }
}

/// Deletes everything in a namespace being deleted (the namespace controller's job).
fn empty_namespace(store: &mut Store, ns: &str) {
    for (res, key) in store.objects_in_namespace(ns) {
        delete_quietly(store, &res, &key, Propagation::Background);
    }
    finish_namespace_if_empty(store, ns);
}

fn finish_namespace_if_empty(store: &mut Store, ns: &str) {
    let res = ResourceKey {
        group: String::new(),
        plural: "namespaces".into(),
    };
    let key = (String::new(), ns.to_string());
    let Some(obj) = store.get(&res, &key) else {
        return;
    };
    let v = obj.value();
    if !v["metadata"]["deletionTimestamp"].is_string() || store.namespace_has_objects(ns) {
        return;
    }
    if finalizers(&v).is_empty() {
        remove(store, &res, &key, None);
    }
}

/// Deletes every object of a resource that `keep` selects (deletecollection).
pub fn delete_collection(
    store: &mut Store,
    info: &Arc<ResourceInfo>,
    keys: Vec<ObjKey>,
    opts: &DeleteOptions,
) -> ApiResult<Vec<Arc<Stored>>> {
    let mut out = Vec::new();
    for key in keys {
        match delete(store, info, &key, opts) {
            Ok(s) => out.push(s),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

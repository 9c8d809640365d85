//! How the controllers write to the API server: as a named field manager, with merge patches
//! that clear what a new value no longer has, and status writes guarded by the resourceVersion
//! they were computed from.

/// Patch parameters naming `manager` as the field manager of the write.
pub fn write_params(manager: &str) -> kube::api::PatchParams {
    kube::api::PatchParams {
        field_manager: Some(manager.to_owned()),
        ..kube::api::PatchParams::default()
    }
}

/// `new` as a JSON merge patch over `old`: top-level fields `new` no longer has are set to
/// null (serde leaves absent fields out, and a merge patch keeps what it does not mention).
pub fn merge_over<T: serde::Serialize>(old: &T, new: &T) -> serde_json::Value {
    let mut patch = serde_json::to_value(new).unwrap_or_default();
    if let (Some(patch), Ok(serde_json::Value::Object(old))) =
        (patch.as_object_mut(), serde_json::to_value(old))
    {
        for key in old.keys() {
            patch.entry(key.clone()).or_insert(serde_json::Value::Null);
        }
    }
    patch
}

/// The API server answered `e` with one of these HTTP status codes.
pub fn has_code(e: &kube::Error, codes: &[u16]) -> bool {
    matches!(e, kube::Error::Api(status) if codes.contains(&status.code))
}

/// What a guarded status write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusWrite {
    /// The status was already `new`; nothing was sent.
    Unchanged,
    /// The server took it.
    Written,
    /// The object changed since it was read (409): the status was computed from an old copy,
    /// and the change queues the object again.
    Stale,
    /// The object is gone (404).
    Gone,
}

/// Writes `new` over `old` as the status of `obj`, guarded by the resourceVersion `obj` was read
/// at, so a status computed from an outdated copy is refused rather than written over a newer
/// one (upstream updates status with the object's resourceVersion for the same reason).
pub async fn write_status<K, S>(
    api: &kube::Api<K>,
    obj: &K,
    manager: &str,
    old: &S,
    new: &S,
) -> Result<StatusWrite, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    S: serde::Serialize + PartialEq,
{
    use kube::ResourceExt;
    if old == new {
        return Ok(StatusWrite::Unchanged);
    }
    let body = serde_json::json!({
        "metadata": {"resourceVersion": obj.resource_version()},
        "status": merge_over(old, new),
    });
    let patch = kube::api::Patch::Merge(body);
    match api
        .patch_status(&obj.name_any(), &write_params(manager), &patch)
        .await
    {
        Ok(_) => Ok(StatusWrite::Written),
        Err(e) if has_code(&e, &[409]) => Ok(StatusWrite::Stale),
        Err(e) if has_code(&e, &[404]) => Ok(StatusWrite::Gone),
        Err(e) => Err(e),
    }
}

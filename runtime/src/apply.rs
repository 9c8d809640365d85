//! Server-side apply helpers: write only the fields this controller owns, as field manager
//! `field_manager`, so that several writers of one object do not overwrite each other.

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Why an apply could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The status value did not serialize to JSON.
    #[error("failed to serialize the status to apply")]
    Serialize(#[source] serde_json::Error),
    /// The API server rejected the apply.
    #[error("server-side apply of {kind} {name:?} failed")]
    Apply {
        /// Kind of the object.
        kind: String,
        /// Name of the object.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// The apply body for `status` of a `K` named `name`: `apiVersion`, `kind`, `metadata.name`
/// and `status` only — everything in it is claimed by the field manager.
pub fn status_apply_body<K, S>(name: &str, status: &S) -> Result<Value, Error>
where
    K: Resource<DynamicType = ()>,
    S: Serialize,
{
    let status = serde_json::to_value(status).map_err(Error::Serialize)?;
    Ok(json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": { "name": name },
        "status": status,
    }))
}

/// Applies `status` to the status subresource of `name` as `field_manager`, forcing ownership
/// of the fields (a controller is the only rightful writer of its status).
pub async fn apply_status<K, S>(
    api: &Api<K>,
    name: &str,
    field_manager: &str,
    status: &S,
) -> Result<K, Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let body = status_apply_body::<K, S>(name, status)?;
    let params = PatchParams::apply(field_manager).force();
    api.patch_status(name, &params, &Patch::Apply(&body))
        .await
        .map_err(|source| Error::Apply {
            kind: K::kind(&()).into_owned(),
            name: name.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus};

    #[test]
    fn body_carries_only_identity_and_status() {
        let status = DeploymentStatus {
            replicas: Some(3),
            ..DeploymentStatus::default()
        };
        let body = status_apply_body::<Deployment, _>("web", &status).unwrap();
        assert_eq!(
            body,
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "status": {"replicas": 3}})
        );
    }
}

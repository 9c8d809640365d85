//! Server-side apply helpers: write only the fields this controller owns, as field manager
//! `field_manager`, so that several writers of one object do not overwrite each other.

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Why an apply could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The child cannot be owned by the owner (another controller owns it, or namespaces differ).
    #[error("cannot make the {kind} {name:?} a child of its owner")]
    Owner {
        /// Kind of the child.
        kind: String,
        /// Name of the child.
        name: String,
        /// Why.
        #[source]
        source: crate::controller::owner::OwnerError,
    },
    /// The child has no `metadata.name`, or is namespaced and neither it nor the owner has a
    /// namespace.
    #[error("the {kind} to apply has no {what}: set metadata.{what} on it")]
    Incomplete {
        /// Kind of the child.
        kind: String,
        /// `name` or `namespace`.
        what: &'static str,
    },
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
pub fn status_apply_body<K, S>(name: &str, status: &S) -> Result<Value, ApplyError>
where
    K: Resource<DynamicType = ()>,
    S: Serialize,
{
    let status = serde_json::to_value(status).map_err(ApplyError::Serialize)?;
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
) -> Result<K, ApplyError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let body = status_apply_body::<K, S>(name, status)?;
    let params = PatchParams::apply(field_manager).force();
    api.patch_status(name, &params, &Patch::Apply(&body))
        .await
        .map_err(|source| ApplyError::Apply {
            kind: K::kind(&()).into_owned(),
            name: name.to_owned(),
            source,
        })
}

/// Create-or-update of an owned (namespaced) child in one call: sets `owner` as the child's
/// controller reference, applies the child server-side as `field_manager` (forced: the operator
/// is the rightful writer of the fields it sets), and returns the live object. The child's
/// namespace defaults to the owner's.
///
/// ```no_run
/// # use k8s_openapi::api::core::v1::{ConfigMap, Secret};
/// # async fn f(client: kube::Client, site: &ConfigMap) -> Result<(), kubeforge::controller::apply::ApplyError> {
/// let mut secret = Secret::default();
/// secret.metadata.name = Some("site-credentials".into());
/// let live: Secret = kubeforge::controller::apply::apply_owned(&client, site, secret, "site-operator").await?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`ApplyError::Owner`] when another controller owns the child or the namespaces differ,
/// [`ApplyError::Incomplete`] without a name, [`ApplyError::Apply`] when the server refuses it.
pub async fn apply_owned<O, C>(
    client: &kube::Client,
    owner: &O,
    mut child: C,
    field_manager: &str,
) -> Result<C, ApplyError>
where
    O: Resource<DynamicType = ()>,
    C: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
{
    let kind = C::kind(&()).into_owned();
    let Some(name) = child.meta().name.clone() else {
        return Err(ApplyError::Incomplete { kind, what: "name" });
    };
    if child.meta().namespace.is_none() {
        child.meta_mut().namespace = owner.meta().namespace.clone();
    }
    let Some(namespace) = child.meta().namespace.clone() else {
        return Err(ApplyError::Incomplete {
            kind,
            what: "namespace",
        });
    };
    let api: Api<C> = Api::namespaced(client.clone(), &namespace);
    let owner_error = |source| ApplyError::Owner {
        kind: kind.clone(),
        name: name.clone(),
        source,
    };
    // The live child may already be controlled by another object: refuse, as
    // controller-runtime's SetControllerReference does, instead of applying a second controller.
    let live = api
        .get_opt(&name)
        .await
        .map_err(|source| ApplyError::Apply {
            kind: kind.clone(),
            name: name.clone(),
            source,
        })?;
    if let Some(live) = live
        && let Some(current) = crate::controller::owner::controller_of(&live)
        && owner.meta().uid.as_ref() != Some(&current.uid)
    {
        return Err(owner_error(
            crate::controller::owner::OwnerError::AlreadyControlled {
                kind: current.kind.clone(),
                name: current.name.clone(),
            },
        ));
    }
    crate::controller::owner::set_controller_reference(owner, &mut child).map_err(owner_error)?;
    let params = PatchParams::apply(field_manager).force();
    api.patch(&name, &params, &Patch::Apply(&child))
        .await
        .map_err(|source| ApplyError::Apply { kind, name, source })
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

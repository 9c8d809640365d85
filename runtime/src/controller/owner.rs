//! Owner references: mark a child as controlled by its parent, so that `owns` maps the child's
//! changes to the parent and the garbage collector deletes the child with the parent.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Resource, ResourceExt};

/// Why an owner reference could not be set.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OwnerError {
    /// The owner has no uid: it was built locally, not read from the API server.
    #[error(
        "owner {kind} {name:?} has no metadata.uid; read it from the API server (or the cache) before owning objects with it"
    )]
    OwnerWithoutUid {
        /// Owner kind.
        kind: String,
        /// Owner name.
        name: String,
    },
    /// The child is already controlled by a different object.
    #[error(
        "object is already controlled by {kind} {name:?}; an object can have only one controller reference"
    )]
    AlreadyControlled {
        /// Kind of the existing controller.
        kind: String,
        /// Name of the existing controller.
        name: String,
    },
    /// A namespaced object cannot own an object in another namespace.
    #[error(
        "cross-namespace owner references are not allowed: owner in {owner_ns:?}, object in {object_ns:?}"
    )]
    CrossNamespace {
        /// Owner namespace.
        owner_ns: String,
        /// Object namespace.
        object_ns: String,
    },
}

/// The controller owner reference pointing at `owner` (`controller: true`,
/// `blockOwnerDeletion: true`).
pub fn controller_reference<O>(owner: &O) -> Result<OwnerReference, OwnerError>
where
    O: Resource<DynamicType = ()>,
{
    let meta = owner.meta();
    let uid = meta
        .uid
        .clone()
        .ok_or_else(|| OwnerError::OwnerWithoutUid {
            kind: O::kind(&()).into_owned(),
            name: owner.name_any(),
        })?;
    Ok(OwnerReference {
        api_version: O::api_version(&()).into_owned(),
        kind: O::kind(&()).into_owned(),
        name: owner.name_any(),
        uid,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// Sets `owner` as the controller of `object`: replaces a reference to the same owner, fails if a
/// different object already is the controller (as controller-runtime's `SetControllerReference`).
pub fn set_controller_reference<O, C>(owner: &O, object: &mut C) -> Result<(), OwnerError>
where
    O: Resource<DynamicType = ()>,
    C: Resource,
{
    let reference = controller_reference(owner)?;
    if let (Some(owner_ns), Some(object_ns)) = (
        owner.meta().namespace.as_deref(),
        object.meta().namespace.as_deref(),
    ) && owner_ns != object_ns
    {
        return Err(OwnerError::CrossNamespace {
            owner_ns: owner_ns.into(),
            object_ns: object_ns.into(),
        });
    }
    let refs = object
        .meta_mut()
        .owner_references
        .get_or_insert_with(Vec::new);
    if let Some(existing) = refs
        .iter()
        .find(|r| r.controller == Some(true) && r.uid != reference.uid)
    {
        return Err(OwnerError::AlreadyControlled {
            kind: existing.kind.clone(),
            name: existing.name.clone(),
        });
    }
    refs.retain(|r| r.uid != reference.uid);
    refs.push(reference);
    Ok(())
}

/// The controller owner reference of `object`, if any.
pub fn controller_of<C: Resource>(object: &C) -> Option<&OwnerReference> {
    object
        .meta()
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn deploy(name: &str, uid: Option<&str>) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: uid.map(Into::into),
                ..ObjectMeta::default()
            },
            ..Deployment::default()
        }
    }

    #[test]
    fn sets_replaces_and_refuses_a_second_controller() {
        let mut cm = ConfigMap {
            metadata: ObjectMeta {
                namespace: Some("ns".into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        };
        set_controller_reference(&deploy("a", Some("u1")), &mut cm).unwrap();
        set_controller_reference(&deploy("a", Some("u1")), &mut cm).unwrap();
        assert_eq!(
            cm.metadata.owner_references.as_ref().unwrap().len(),
            1,
            "idempotent"
        );
        let owner = controller_of(&cm).unwrap();
        assert_eq!(
            (
                owner.kind.as_str(),
                owner.api_version.as_str(),
                owner.name.as_str()
            ),
            ("Deployment", "apps/v1", "a")
        );
        let err = set_controller_reference(&deploy("b", Some("u2")), &mut cm).unwrap_err();
        assert_eq!(
            err,
            OwnerError::AlreadyControlled {
                kind: "Deployment".into(),
                name: "a".into()
            }
        );
        let err = set_controller_reference(&deploy("c", None), &mut cm).unwrap_err();
        assert!(err.to_string().contains("has no metadata.uid"), "{err}");
    }
}

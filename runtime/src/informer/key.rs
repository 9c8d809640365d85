//! The storage key of a cached object: `namespace/name`, or `name` for cluster-scoped objects.
//!
//! Same format as client-go's `MetaNamespaceKeyFunc`, held in one shared allocation so that the
//! FIFO queue, the store and every index can hold a key for the price of a reference count.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use kube::Resource;

/// Why a string or an object could not be turned into an [`ObjectKey`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The object has no `metadata.name`, so it cannot be cached.
    #[error("object has no metadata.name; every cached object needs a name")]
    MissingName,
    /// The string had more than one `/`.
    #[error("unexpected key format {0:?}: expected `namespace/name` or `name`")]
    Malformed(String),
}

/// `namespace/name` (or `name` for cluster-scoped objects), cheap to clone.
///
/// Equality, hashing and ordering use the full `namespace/name` string, so sorted keys sort by
/// namespace first, then by name.
#[derive(Clone)]
pub struct ObjectKey {
    /// `ns/name` or `name`.
    full: Arc<str>,
    /// Byte offset of the `/`, if namespaced.
    slash: Option<u32>,
}

impl ObjectKey {
    /// Key for a namespaced (`Some(ns)`, non-empty) or cluster-scoped (`None` or `Some("")`) object.
    pub fn new(namespace: Option<&str>, name: &str) -> Self {
        match namespace {
            Some(ns) if !ns.is_empty() => {
                let mut full = String::with_capacity(ns.len() + 1 + name.len());
                full.push_str(ns);
                full.push('/');
                full.push_str(name);
                Self {
                    full: full.into(),
                    slash: Some(ns.len() as u32),
                }
            }
            _ => Self {
                full: name.into(),
                slash: None,
            },
        }
    }

    /// The key of `obj`, from its `metadata.namespace` and `metadata.name`.
    pub fn from_obj<K: Resource>(obj: &K) -> Result<Self, KeyError> {
        let meta = obj.meta();
        let name = meta.name.as_deref().ok_or(KeyError::MissingName)?;
        Ok(Self::new(meta.namespace.as_deref(), name))
    }

    /// Parses `namespace/name` or `name` (client-go's `SplitMetaNamespaceKey`).
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        let mut parts = s.split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(name), None, None) => Ok(Self::new(None, name)),
            (Some(ns), Some(name), None) => Ok(Self::new(Some(ns), name)),
            _ => Err(KeyError::Malformed(s.to_string())),
        }
    }

    /// The namespace, `None` for cluster-scoped objects.
    pub fn namespace(&self) -> Option<&str> {
        self.slash.map(|i| &self.full[..i as usize])
    }

    /// The name.
    pub fn name(&self) -> &str {
        match self.slash {
            Some(i) => &self.full[i as usize + 1..],
            None => &self.full,
        }
    }

    /// The key as `namespace/name` or `name`.
    pub fn as_str(&self) -> &str {
        &self.full
    }
}

impl PartialEq for ObjectKey {
    fn eq(&self, other: &Self) -> bool {
        self.full == other.full
    }
}
impl Eq for ObjectKey {}
impl Hash for ObjectKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.full.hash(state);
    }
}
impl PartialOrd for ObjectKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ObjectKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.full.cmp(&other.full)
    }
}
impl std::borrow::Borrow<str> for ObjectKey {
    fn borrow(&self) -> &str {
        &self.full
    }
}
impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}
impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.full, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use kube::api::ObjectMeta;

    #[test]
    fn namespaced_and_cluster_keys_split_back_into_their_parts() {
        let k = ObjectKey::new(Some("default"), "web");
        assert_eq!(k.as_str(), "default/web");
        assert_eq!(k.namespace(), Some("default"));
        assert_eq!(k.name(), "web");
        let c = ObjectKey::new(None, "node-1");
        assert_eq!(c.as_str(), "node-1");
        assert_eq!(c.namespace(), None);
        assert_eq!(ObjectKey::new(Some(""), "x"), ObjectKey::new(None, "x"));
    }

    #[test]
    fn parse_accepts_one_or_two_parts_and_rejects_more() {
        assert_eq!(
            ObjectKey::parse("a/b").unwrap(),
            ObjectKey::new(Some("a"), "b")
        );
        assert_eq!(ObjectKey::parse("b").unwrap().namespace(), None);
        let err = ObjectKey::parse("a/b/c").unwrap_err();
        assert!(err.to_string().contains("a/b/c"), "{err}");
    }

    #[test]
    fn key_of_object_uses_metadata_and_requires_a_name() {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some("cfg".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(ObjectKey::from_obj(&cm).unwrap().as_str(), "ns/cfg");
        assert_eq!(
            ObjectKey::from_obj(&Namespace::default()),
            Err(KeyError::MissingName)
        );
    }
}

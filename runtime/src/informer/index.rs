//! Indexes of an informer's cache: named functions from an object to the values it is found
//! under ([`Indexers`], [`IndexFn`]), and the built-in ones (namespace, label, label key, owner
//! UID). client-go's `Indexers` and `IndexFunc` (`index.go`).
//!
//! An [`IndexFn`] maps an object to zero or more values and returns a `Result`; it never needs
//! to panic. When one fails for an object, the object is still stored and stays in every other
//! index, but is absent from the failing index (its previous entries there are removed); the
//! failure is logged at `warn` and counted in [`super::Lister::index_failures`]. client-go
//! panics here; a cache that silently misses one index entry is the lesser harm for a
//! long-running operator.

use std::fmt;
use std::sync::Arc;

use kube::Resource;

/// Errors from index queries and index registration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IndexError {
    /// The index name was never registered.
    #[error("index with name {0:?} does not exist; register it with `add_indexers` first")]
    UnknownIndex(String),
    /// `add_indexers` was given names that are already registered.
    #[error("indexer conflict: {0:?} already registered; pick distinct index names")]
    Conflict(Vec<String>),
}

/// Why an index function could not compute values for an object.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct IndexFnError(pub String);

/// The name of an index, e.g. `"namespace"`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndexName(Arc<str>);

/// A value an object is indexed under, e.g. a namespace name or a label `key=value`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndexValue(Arc<str>);

macro_rules! string_newtype {
    ($t:ident) => {
        impl $t {
            /// The string form.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl From<&str> for $t {
            fn from(s: &str) -> Self {
                Self(s.into())
            }
        }
        impl From<String> for $t {
            fn from(s: String) -> Self {
                Self(s.into())
            }
        }
        impl std::borrow::Borrow<str> for $t {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }
    };
}
string_newtype!(IndexName);
string_newtype!(IndexValue);

/// Maps an object to the values it is indexed under (0..n). Must be deterministic.
pub type IndexFn<K> = Arc<dyn Fn(&K) -> Result<Vec<IndexValue>, IndexFnError> + Send + Sync>;

/// A set of named index functions.
pub struct Indexers<K> {
    pub(super) fns: Vec<(IndexName, IndexFn<K>)>,
}

impl<K> Clone for Indexers<K> {
    fn clone(&self) -> Self {
        Self {
            fns: self.fns.clone(),
        }
    }
}

impl<K> Default for Indexers<K> {
    fn default() -> Self {
        Self { fns: Vec::new() }
    }
}

impl<K> fmt::Debug for Indexers<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.fns.iter().map(|(n, _)| n))
            .finish()
    }
}

impl<K> Indexers<K> {
    /// No indexes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an index. A duplicate name is reported when the indexers are registered.
    #[must_use]
    pub fn with(
        mut self,
        name: impl Into<IndexName>,
        f: impl Fn(&K) -> Result<Vec<IndexValue>, IndexFnError> + Send + Sync + 'static,
    ) -> Self {
        self.fns.push((name.into(), Arc::new(f)));
        self
    }

    /// Adds an already shared index function.
    #[must_use]
    pub fn with_fn(mut self, name: impl Into<IndexName>, f: IndexFn<K>) -> Self {
        self.fns.push((name.into(), f));
        self
    }

    /// The registered names, in insertion order.
    pub fn names(&self) -> impl Iterator<Item = &IndexName> {
        self.fns.iter().map(|(n, _)| n)
    }

    /// Whether there is no index.
    pub fn is_empty(&self) -> bool {
        self.fns.is_empty()
    }
}

/// Name of the built-in namespace index ([`namespace_index`]).
pub const NAMESPACE_INDEX: &str = "namespace";
/// Name of the built-in label `key=value` index ([`label_index`]).
pub const LABEL_INDEX: &str = "label";
/// Name of the built-in label key index ([`label_key_index`]).
pub const LABEL_KEY_INDEX: &str = "label-key";
/// Name of the built-in owner UID index ([`owner_uid_index`]).
pub const OWNER_UID_INDEX: &str = "owner-uid";

/// Indexes by namespace (`""` for cluster-scoped objects), like client-go's `MetaNamespaceIndexFunc`.
pub fn namespace_index<K: Resource>(obj: &K) -> Result<Vec<IndexValue>, IndexFnError> {
    Ok(vec![IndexValue(
        obj.meta().namespace.as_deref().unwrap_or_default().into(),
    )])
}

/// Indexes by every label as `key=value`; look up with `by_index(LABEL_INDEX, "app=web")`.
pub fn label_index<K: Resource>(obj: &K) -> Result<Vec<IndexValue>, IndexFnError> {
    Ok(obj
        .meta()
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| IndexValue(format!("{k}={v}").into()))
        .collect())
}

/// Indexes by every label key; look up with `by_index(LABEL_KEY_INDEX, "app")`.
pub fn label_key_index<K: Resource>(obj: &K) -> Result<Vec<IndexValue>, IndexFnError> {
    Ok(obj
        .meta()
        .labels
        .iter()
        .flatten()
        .map(|(k, _)| IndexValue(k.as_str().into()))
        .collect())
}

/// Indexes by the UID of every owner reference; finds the children of an owner.
pub fn owner_uid_index<K: Resource>(obj: &K) -> Result<Vec<IndexValue>, IndexFnError> {
    Ok(obj
        .meta()
        .owner_references
        .iter()
        .flatten()
        .map(|o| IndexValue(o.uid.as_str().into()))
        .collect())
}

impl<K: Resource + 'static> Indexers<K> {
    /// The built-in indexes: namespace, label `key=value`, label key and owner UID.
    #[must_use]
    pub fn builtin() -> Self {
        Self::new()
            .with(NAMESPACE_INDEX, namespace_index::<K>)
            .with(LABEL_INDEX, label_index::<K>)
            .with(LABEL_KEY_INDEX, label_key_index::<K>)
            .with(OWNER_UID_INDEX, owner_uid_index::<K>)
    }
}

//! Caches objects in memory: a thread-safe `namespace/name → Arc<K>` map plus indexes.
//!
//! client-go's `ThreadSafeStore` + `Indexer` (`thread_safe_store.go`, `index.go`), split like
//! kube-rs's `Writer`/`Store`: the informer owns the one [`Indexer`] (writer) and hands out
//! [`Lister`]s (cheap cloneable readers). Three kinds of strings are involved and each has its own
//! type: the storage key ([`ObjectKey`]), the index name ([`IndexName`]) and the indexed value
//! ([`IndexValue`]).
//!
//! # Index functions
//! An [`IndexFn`] maps an object to zero or more values and returns a `Result`; it never needs
//! to panic. When one fails for an object, the object is still stored and stays in every other
//! index, but is absent from the failing index (its previous entries there are removed); the
//! failure is logged at `warn` and counted in [`Lister::index_failures`]. client-go panics here;
//! a cache that silently misses one index entry is the lesser harm for a long-running operator.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kube::Resource;
use parking_lot::RwLock;

use super::key::ObjectKey;

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
pub struct IndexValue(String);

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
    fns: Vec<(IndexName, IndexFn<K>)>,
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
        obj.meta().namespace.clone().unwrap_or_default(),
    )])
}

/// Indexes by every label as `key=value`; look up with `by_index(LABEL_INDEX, "app=web")`.
pub fn label_index<K: Resource>(obj: &K) -> Result<Vec<IndexValue>, IndexFnError> {
    Ok(obj
        .meta()
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| IndexValue(format!("{k}={v}")))
        .collect())
}

/// Indexes by every label key; look up with `by_index(LABEL_KEY_INDEX, "app")`.
pub fn label_key_index<K: Resource>(obj: &K) -> Result<Vec<IndexValue>, IndexFnError> {
    Ok(obj
        .meta()
        .labels
        .iter()
        .flatten()
        .map(|(k, _)| IndexValue(k.clone()))
        .collect())
}

/// Indexes by the UID of every owner reference; finds the children of an owner.
pub fn owner_uid_index<K: Resource>(obj: &K) -> Result<Vec<IndexValue>, IndexFnError> {
    Ok(obj
        .meta()
        .owner_references
        .iter()
        .flatten()
        .map(|o| IndexValue(o.uid.clone()))
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

type Index = HashMap<IndexValue, HashSet<ObjectKey>>;

/// The shared state behind an [`Indexer`] and its [`Lister`]s.
struct ThreadSafeStore<K> {
    inner: RwLock<Inner<K>>,
    index_failures: AtomicU64,
}

struct Inner<K> {
    /// Every cached object by key.
    items: HashMap<ObjectKey, Arc<K>>,
    /// Registered index functions, in registration order.
    indexers: Vec<(IndexName, IndexFn<K>)>,
    /// `index name → value → keys`. Invariant: a key is in `indices[n][v]` iff `items[key]` is
    /// indexed under `v` by indexer `n`; no value maps to an empty set.
    indices: HashMap<IndexName, Index>,
}

/// Creates an empty store with `indexers`: the writer and a reader.
pub fn indexer<K>(indexers: Indexers<K>) -> Result<(Indexer<K>, Lister<K>), IndexError> {
    let store = Arc::new(ThreadSafeStore {
        inner: RwLock::new(Inner {
            items: HashMap::new(),
            indexers: Vec::new(),
            indices: HashMap::new(),
        }),
        index_failures: AtomicU64::new(0),
    });
    let writer = Indexer {
        store: store.clone(),
    };
    writer.add_indexers(indexers)?;
    Ok((writer, Lister { store }))
}

/// The single writer of a store. Not `Clone`: one informer writes each cache.
pub struct Indexer<K> {
    store: Arc<ThreadSafeStore<K>>,
}

impl<K> fmt::Debug for Indexer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Indexer")
            .field("len", &self.store.inner.read().items.len())
            .finish()
    }
}

impl<K> Indexer<K> {
    /// Inserts or replaces the object under `key` and updates every index; returns the old object.
    pub fn update(&self, key: ObjectKey, obj: Arc<K>) -> Option<Arc<K>> {
        let mut inner = self.store.inner.write();
        let old = inner.items.insert(key.clone(), obj.clone());
        let failures = inner.update_indices(&key, old.as_deref(), Some(&obj));
        drop(inner);
        self.count_failures(failures);
        old
    }

    /// Removes `key` and its index entries; returns the removed object (none if it was absent).
    pub fn delete(&self, key: &ObjectKey) -> Option<Arc<K>> {
        let mut inner = self.store.inner.write();
        let old = inner.items.remove(key)?;
        inner.update_indices(key, Some(&old), None);
        Some(old)
    }

    /// Swaps the whole content, rebuilding every index.
    pub fn replace(&self, items: impl IntoIterator<Item = (ObjectKey, Arc<K>)>) {
        let mut inner = self.store.inner.write();
        inner.items = items.into_iter().collect();
        for index in inner.indices.values_mut() {
            index.clear();
        }
        let keys: Vec<(ObjectKey, Arc<K>)> = inner
            .items
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut failures = 0;
        for (key, obj) in &keys {
            failures += inner.update_indices(key, None, Some(obj));
        }
        drop(inner);
        self.count_failures(failures);
    }

    /// Registers more indexes; existing objects are indexed immediately. Fails without changing
    /// anything if a name is already registered.
    pub fn add_indexers(&self, indexers: Indexers<K>) -> Result<(), IndexError> {
        let mut inner = self.store.inner.write();
        let mut seen = HashSet::new();
        let conflicts: Vec<String> = indexers
            .fns
            .iter()
            .filter(|(n, _)| inner.indices.contains_key(n) || !seen.insert(n.clone()))
            .map(|(n, _)| n.to_string())
            .collect();
        if !conflicts.is_empty() {
            return Err(IndexError::Conflict(conflicts));
        }
        let mut failures = 0;
        for (name, f) in indexers.fns {
            let mut index = Index::new();
            for (key, obj) in &inner.items {
                match f(obj) {
                    Ok(values) => {
                        for v in values {
                            index.entry(v).or_default().insert(key.clone());
                        }
                    }
                    Err(e) => {
                        failures += 1;
                        tracing::warn!(index = %name, key = %key, error = %e, "index function failed; object left out of this index");
                    }
                }
            }
            inner.indices.insert(name.clone(), index);
            inner.indexers.push((name, f));
        }
        drop(inner);
        self.count_failures(failures);
        Ok(())
    }

    /// A reader of this store.
    pub fn lister(&self) -> Lister<K> {
        Lister {
            store: self.store.clone(),
        }
    }

    fn count_failures(&self, n: u64) {
        if n > 0 {
            self.store.index_failures.fetch_add(n, Ordering::Relaxed);
        }
    }
}

impl<K> Inner<K> {
    /// Moves `key`'s index entries from `old`'s values to `new`'s. Returns how many index
    /// functions failed on `new` (a failure on `old` is ignored: its entries were added with
    /// the same function, so nothing of it can be indexed).
    fn update_indices(&mut self, key: &ObjectKey, old: Option<&K>, new: Option<&K>) -> u64 {
        let mut failures = 0;
        for (name, f) in &self.indexers {
            let Some(index) = self.indices.get_mut(name) else {
                continue;
            };
            let old_values = old.map(|o| f(o).unwrap_or_default()).unwrap_or_default();
            let new_values = match new.map(|n| f(n)) {
                Some(Ok(v)) => v,
                Some(Err(e)) => {
                    failures += 1;
                    tracing::warn!(index = %name, key = %key, error = %e, "index function failed; object left out of this index");
                    Vec::new()
                }
                None => Vec::new(),
            };
            // Fast path: unchanged values (client-go checks only the single-value case).
            if old.is_some() && new.is_some() && old_values == new_values {
                continue;
            }
            for v in old_values {
                if let Some(set) = index.get_mut(&v) {
                    set.remove(key);
                    if set.is_empty() {
                        index.remove(&v);
                    }
                }
            }
            for v in new_values {
                index.entry(v).or_default().insert(key.clone());
            }
        }
        failures
    }
}

/// A cheap, cloneable read handle on an informer's cache. Every object is the shared `Arc<K>`
/// the informer stored; nothing is copied.
///
/// ```no_run
/// # fn example(lister: kubeforge::informer::Lister<k8s_openapi::api::core::v1::Pod>) -> Result<(), kubeforge::informer::IndexError> {
/// use kubeforge::informer::NAMESPACE_INDEX;
///
/// if let Some(pod) = lister.get(Some("web"), "frontend-0") {
///     println!("{:?}", pod.status);
/// }
/// let all = lister.list();
/// // Needs the index registered on the informer (`add_indexers`, or `Watch::index`).
/// let in_web = lister.by_index(NAMESPACE_INDEX, "web")?;
/// println!("{} pods, {} in web", all.len(), in_web.len());
/// # Ok(())
/// # }
/// ```
pub struct Lister<K> {
    store: Arc<ThreadSafeStore<K>>,
}

impl<K> Clone for Lister<K> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
        }
    }
}

impl<K> fmt::Debug for Lister<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lister").field("len", &self.len()).finish()
    }
}

impl<K> Lister<K> {
    /// The object `namespace/name` (`namespace` `None` or `""` for cluster-scoped objects).
    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<Arc<K>> {
        self.get_by_key(&ObjectKey::new(namespace, name))
    }

    /// The object stored under `key`.
    pub fn get_by_key(&self, key: &ObjectKey) -> Option<Arc<K>> {
        self.store.inner.read().items.get(key).cloned()
    }

    /// Every cached object, in no particular order.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.store.inner.read().items.values().cloned().collect()
    }

    /// Every cached object in `namespace` (uses the namespace index when registered).
    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        if let Ok(objs) = self.by_index(NAMESPACE_INDEX, namespace) {
            return objs;
        }
        let inner = self.store.inner.read();
        inner
            .items
            .iter()
            .filter(|(k, _)| k.namespace().unwrap_or("") == namespace)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Every cached key, sorted.
    pub fn list_keys(&self) -> Vec<ObjectKey> {
        let mut keys: Vec<ObjectKey> = self.store.inner.read().items.keys().cloned().collect();
        keys.sort();
        keys
    }

    /// The number of cached objects.
    pub fn len(&self) -> usize {
        self.store.inner.read().items.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Objects indexed under `value` by index `index`, in no particular order. Unknown values
    /// give an empty list.
    pub fn by_index(&self, index: &str, value: &str) -> Result<Vec<Arc<K>>, IndexError> {
        let inner = self.store.inner.read();
        let idx = inner
            .indices
            .get(index)
            .ok_or_else(|| IndexError::UnknownIndex(index.to_string()))?;
        Ok(idx
            .get(value)
            .into_iter()
            .flatten()
            .filter_map(|k| inner.items.get(k).cloned())
            .collect())
    }

    /// Keys indexed under `value` by index `index`, sorted.
    pub fn index_keys(&self, index: &str, value: &str) -> Result<Vec<ObjectKey>, IndexError> {
        let inner = self.store.inner.read();
        let idx = inner
            .indices
            .get(index)
            .ok_or_else(|| IndexError::UnknownIndex(index.to_string()))?;
        let mut keys: Vec<ObjectKey> = idx.get(value).into_iter().flatten().cloned().collect();
        keys.sort();
        Ok(keys)
    }

    /// Objects sharing any index value with `obj` under index `index` (client-go `Index`).
    pub fn index(&self, index: &str, obj: &K) -> Result<Vec<Arc<K>>, IndexError> {
        let inner = self.store.inner.read();
        let (_, f) = inner
            .indexers
            .iter()
            .find(|(n, _)| n.as_str() == index)
            .ok_or_else(|| IndexError::UnknownIndex(index.to_string()))?;
        let idx = &inner.indices[index];
        let values = f(obj).unwrap_or_default();
        let mut keys: HashSet<&ObjectKey> = HashSet::new();
        for v in &values {
            keys.extend(idx.get(v).into_iter().flatten());
        }
        Ok(keys
            .into_iter()
            .filter_map(|k| inner.items.get(k).cloned())
            .collect())
    }

    /// Every value with at least one object under index `index`, sorted; empty for an unknown index.
    pub fn list_index_values(&self, index: &str) -> Vec<IndexValue> {
        let inner = self.store.inner.read();
        let mut values: Vec<IndexValue> = inner
            .indices
            .get(index)
            .map(|idx| idx.keys().cloned().collect())
            .unwrap_or_default();
        values.sort();
        values
    }

    /// The registered index names.
    pub fn index_names(&self) -> Vec<IndexName> {
        self.store
            .inner
            .read()
            .indexers
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// How many times an index function failed since the store was created.
    pub fn index_failures(&self) -> u64 {
        self.store.index_failures.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use kube::api::ObjectMeta;

    fn cm(ns: &str, name: &str, labels: &[(&str, &str)]) -> Arc<ConfigMap> {
        Arc::new(ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    fn put(w: &Indexer<ConfigMap>, o: Arc<ConfigMap>) -> Option<Arc<ConfigMap>> {
        w.update(ObjectKey::from_obj(&*o).unwrap(), o)
    }

    #[test]
    fn indexes_follow_add_update_and_delete_and_drop_empty_values() {
        let (w, r) = indexer(Indexers::<ConfigMap>::builtin()).unwrap();
        put(&w, cm("a", "x", &[("app", "web"), ("tier", "fe")]));
        put(&w, cm("a", "y", &[("app", "web")]));
        put(&w, cm("b", "z", &[("app", "db")]));
        assert_eq!(
            r.index_keys(LABEL_INDEX, "app=web").unwrap(),
            vec![
                ObjectKey::parse("a/x").unwrap(),
                ObjectKey::parse("a/y").unwrap()
            ]
        );
        assert_eq!(r.by_index(NAMESPACE_INDEX, "a").unwrap().len(), 2);
        // Relabel x: leaves app=web and tier=fe, the empty tier values disappear.
        put(&w, cm("a", "x", &[("app", "db")]));
        assert_eq!(r.index_keys(LABEL_INDEX, "app=db").unwrap().len(), 2);
        assert!(
            !r.list_index_values(LABEL_INDEX)
                .iter()
                .any(|v| v.as_str() == "tier=fe")
        );
        assert!(
            !r.list_index_values(LABEL_KEY_INDEX)
                .iter()
                .any(|v| v.as_str() == "tier")
        );
        w.delete(&ObjectKey::parse("b/z").unwrap());
        assert_eq!(
            r.list_index_values(NAMESPACE_INDEX),
            vec![IndexValue::from("a")]
        );
        assert_eq!(r.len(), 2);
        assert!(r.get(Some("b"), "z").is_none());
    }

    #[test]
    fn unknown_index_is_an_error_but_unknown_value_is_empty() {
        let (_w, r) = indexer(Indexers::<ConfigMap>::builtin()).unwrap();
        let err = r.by_index("nope", "x").unwrap_err();
        assert!(err.to_string().contains("\"nope\""), "{err}");
        assert!(r.by_index(NAMESPACE_INDEX, "none").unwrap().is_empty());
        assert!(r.list_index_values("nope").is_empty());
    }

    #[test]
    fn indexers_added_later_index_existing_objects_and_conflicts_are_rejected() {
        let (w, r) = indexer(Indexers::<ConfigMap>::new()).unwrap();
        put(&w, cm("a", "x", &[]));
        let owned = {
            let mut o = (*cm("a", "child", &[])).clone();
            o.metadata.owner_references = Some(vec![OwnerReference {
                uid: "u-1".into(),
                ..Default::default()
            }]);
            Arc::new(o)
        };
        put(&w, owned);
        w.add_indexers(Indexers::new().with(OWNER_UID_INDEX, owner_uid_index::<ConfigMap>))
            .unwrap();
        assert_eq!(
            r.index_keys(OWNER_UID_INDEX, "u-1").unwrap(),
            vec![ObjectKey::parse("a/child").unwrap()]
        );
        let err = w
            .add_indexers(Indexers::new().with(OWNER_UID_INDEX, owner_uid_index::<ConfigMap>))
            .unwrap_err();
        assert_eq!(err, IndexError::Conflict(vec![OWNER_UID_INDEX.to_string()]));
    }

    #[test]
    fn a_failing_index_fn_keeps_the_object_stored_and_out_of_that_index_only() {
        let idx = Indexers::<ConfigMap>::new()
            .with("picky", |o: &ConfigMap| {
                if o.metadata.name.as_deref() == Some("bad") {
                    Err(IndexFnError("no".into()))
                } else {
                    Ok(vec![IndexValue::from("ok")])
                }
            })
            .with(NAMESPACE_INDEX, namespace_index::<ConfigMap>);
        let (w, r) = indexer(idx).unwrap();
        put(&w, cm("a", "bad", &[]));
        put(&w, cm("a", "good", &[]));
        assert!(r.get(Some("a"), "bad").is_some());
        assert_eq!(r.index_keys("picky", "ok").unwrap().len(), 1);
        assert_eq!(r.index_keys(NAMESPACE_INDEX, "a").unwrap().len(), 2);
        assert_eq!(r.index_failures(), 1);
    }

    #[test]
    fn multi_valued_index_and_index_query_union_values() {
        let (w, r) = indexer(Indexers::<ConfigMap>::builtin()).unwrap();
        put(&w, cm("a", "x", &[("app", "web"), ("tier", "fe")]));
        put(&w, cm("a", "y", &[("tier", "fe")]));
        put(&w, cm("a", "z", &[("other", "1")]));
        let probe = cm("q", "probe", &[("app", "web"), ("tier", "fe")]);
        assert_eq!(r.index(LABEL_INDEX, &probe).unwrap().len(), 2);
    }

    #[test]
    fn replace_swaps_content_and_rebuilds_indexes_and_shares_the_arc() {
        let (w, r) = indexer(Indexers::<ConfigMap>::builtin()).unwrap();
        put(&w, cm("a", "x", &[]));
        let y = cm("b", "y", &[]);
        w.replace([(ObjectKey::from_obj(&*y).unwrap(), y.clone())]);
        assert_eq!(
            r.list_index_values(NAMESPACE_INDEX),
            vec![IndexValue::from("b")]
        );
        assert!(Arc::ptr_eq(&r.get(Some("b"), "y").unwrap(), &y));
    }
}

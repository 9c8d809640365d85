//! Caches objects in memory: a thread-safe `namespace/name → object` map plus indexes.
//!
//! client-go's `ThreadSafeStore` + `Indexer` (`thread_safe_store.go`, `index.go`), split like
//! kube-rs's `Writer`/`Store`: the informer owns the one [`Indexer`] (writer) and hands out
//! [`Lister`]s (cheap cloneable readers). Three kinds of strings are involved and each has its own
//! type: the storage key ([`ObjectKey`]), the index name ([`IndexName`]) and the indexed value
//! ([`IndexValue`]).
//!
//! A store keeps its objects in one of two forms ([`CacheMode`]): typed (`Arc<K>`, shared with
//! the FIFO and the handlers) or compact (encoded, see [`super::compact`]). Both give readers
//! the same `Arc<K>`s and the same index answers; only memory and read cost differ.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::compact::{CacheMode, Codec, Encoded, HotObjects};
use super::index::{IndexError, IndexFn, IndexName, IndexValue, Indexers, NAMESPACE_INDEX};
use super::key::ObjectKey;

type Index = HashMap<IndexValue, HashSet<ObjectKey>>;

/// An object's index values, each tagged with the position of its index function, in order.
type IndexValues = Vec<(u16, IndexValue)>;

/// One cached object.
enum Stored<K> {
    /// Shared as is.
    Typed(Arc<K>),
    /// Encoded, with the index values it was stored under (so removing it needs no decode).
    Compact {
        bytes: Encoded,
        values: Box<[(u16, IndexValue)]>,
    },
}

/// What a compact store adds: the codec and the decoded hot objects.
struct Compact<K> {
    codec: Codec<K>,
    hot: HotObjects<K>,
}

/// The shared state behind an [`Indexer`] and its [`Lister`]s.
struct ThreadSafeStore<K> {
    inner: RwLock<Inner<K>>,
    /// Set for a compact store. Lock order: `inner`, then the hot objects' lock.
    compact: Option<Compact<K>>,
    index_failures: AtomicU64,
    decode_failures: AtomicU64,
}

struct Inner<K> {
    /// Every cached object by key.
    items: HashMap<ObjectKey, Stored<K>>,
    /// Registered index functions, in registration order.
    indexers: Vec<(IndexName, IndexFn<K>)>,
    /// `index name → value → keys`. Invariant: a key is in `indices[n][v]` iff `items[key]` is
    /// indexed under `v` by indexer `n`; no value maps to an empty set.
    indices: HashMap<IndexName, Index>,
}

/// Creates an empty store with `indexers` that keeps typed objects: the writer and a reader.
pub fn indexer<K>(indexers: Indexers<K>) -> Result<(Indexer<K>, Lister<K>), IndexError> {
    new_store(indexers, None)
}

/// Creates an empty store with `indexers` that keeps its objects as `mode` says.
pub fn indexer_with_mode<K>(
    indexers: Indexers<K>,
    mode: CacheMode,
) -> Result<(Indexer<K>, Lister<K>), IndexError>
where
    K: Serialize + DeserializeOwned,
{
    let compact = match mode {
        CacheMode::Typed => None,
        CacheMode::Compact { hot_objects } => Some(Compact {
            codec: Codec::json(),
            hot: HotObjects::new(hot_objects),
        }),
    };
    new_store(indexers, compact)
}

fn new_store<K>(
    indexers: Indexers<K>,
    compact: Option<Compact<K>>,
) -> Result<(Indexer<K>, Lister<K>), IndexError> {
    let store = Arc::new(ThreadSafeStore {
        inner: RwLock::new(Inner {
            items: HashMap::new(),
            indexers: Vec::new(),
            indices: HashMap::new(),
        }),
        compact,
        index_failures: AtomicU64::new(0),
        decode_failures: AtomicU64::new(0),
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
            .field("compact", &self.store.compact.is_some())
            .finish()
    }
}

/// What storing an object replaced.
pub(crate) struct Previous<K> {
    /// The state stored before.
    pub(crate) old: Arc<K>,
    /// The new state encodes to the same bytes as the old one (compact stores only): nothing
    /// in the store changed.
    pub(crate) unchanged: bool,
}

impl<K> Indexer<K> {
    /// Inserts or replaces the object under `key` and updates every index; returns the old object.
    pub fn update(&self, key: ObjectKey, obj: Arc<K>) -> Option<Arc<K>> {
        self.store_object(key, obj).map(|p| p.old)
    }

    /// [`update`](Self::update), also saying whether the stored bytes changed.
    pub(crate) fn store_object(&self, key: ObjectKey, obj: Arc<K>) -> Option<Previous<K>> {
        let store = &*self.store;
        // Encoding is the costly part of a compact write: done before taking the lock.
        let encoded = store.compact.as_ref().map(|c| c.codec.encode(&obj));
        let mut inner = store.inner.write();
        let (new_values, failures) = inner.values_of(&key, &obj);
        let old = inner.items.remove(&key);
        if let (Some(Stored::Compact { bytes, .. }), Some(Ok(new_bytes))) = (&old, &encoded)
            && bytes == new_bytes
        {
            // The same bytes decode to this very object: keep the entry and its index entries.
            inner
                .items
                .insert(key.clone(), old.unwrap_or_else(|| unreachable!()));
            if let Some(c) = &store.compact {
                c.hot.put(&key, obj.clone());
            }
            drop(inner);
            self.count_failures(failures);
            return Some(Previous {
                old: obj,
                unchanged: true,
            });
        }
        let old_values = old
            .as_ref()
            .map(|o| inner.stored_values(&key, o))
            .unwrap_or_default();
        let shared = inner.move_index_entries(&key, &old_values, &new_values, encoded.is_some());
        let entry = match encoded {
            Some(Ok(bytes)) => Stored::Compact {
                bytes,
                values: shared.into_boxed_slice(),
            },
            Some(Err(e)) => {
                tracing::warn!(key = %key, error = %e, "object kept typed in a compact cache");
                Stored::Typed(obj.clone())
            }
            None => Stored::Typed(obj.clone()),
        };
        inner.items.insert(key.clone(), entry);
        let old_hot = store.compact.as_ref().and_then(|c| {
            let old = c.hot.get(&key);
            c.hot.put(&key, obj.clone());
            old
        });
        drop(inner);
        self.count_failures(failures);
        let old = match old? {
            Stored::Typed(o) => o,
            Stored::Compact { bytes, .. } => match old_hot {
                Some(o) => o,
                None => store.decode(&key, &bytes)?,
            },
        };
        Some(Previous {
            old,
            unchanged: false,
        })
    }

    /// Removes `key` and its index entries; returns the removed object (none if it was absent).
    pub fn delete(&self, key: &ObjectKey) -> Option<Arc<K>> {
        let store = &*self.store;
        let hot = store.compact.as_ref().and_then(|c| c.hot.get(key));
        match self.remove(key)? {
            Stored::Typed(o) => Some(o),
            Stored::Compact { bytes, .. } => hot.or_else(|| store.decode(key, &bytes)),
        }
    }

    /// Removes `key` and its index entries without decoding it; whether it was there.
    pub(crate) fn forget(&self, key: &ObjectKey) -> bool {
        self.remove(key).is_some()
    }

    fn remove(&self, key: &ObjectKey) -> Option<Stored<K>> {
        let mut inner = self.store.inner.write();
        let old = inner.items.remove(key)?;
        let old_values = inner.stored_values(key, &old);
        inner.move_index_entries(key, &old_values, &[], false);
        if let Some(c) = &self.store.compact {
            c.hot.remove(key);
        }
        Some(old)
    }

    /// Swaps the whole content, rebuilding every index.
    pub fn replace(&self, items: impl IntoIterator<Item = (ObjectKey, Arc<K>)>) {
        let store = &*self.store;
        let items: Vec<_> = items
            .into_iter()
            .map(|(key, obj)| {
                let encoded = store.compact.as_ref().map(|c| c.codec.encode(&obj));
                (key, obj, encoded)
            })
            .collect();
        let mut inner = store.inner.write();
        inner.items.clear();
        for index in inner.indices.values_mut() {
            index.clear();
        }
        if let Some(c) = &store.compact {
            c.hot.clear();
        }
        let mut failures = 0;
        for (key, obj, encoded) in items {
            let (values, failed) = inner.values_of(&key, &obj);
            failures += failed;
            let shared = inner.move_index_entries(&key, &[], &values, encoded.is_some());
            let entry = match encoded {
                Some(Ok(bytes)) => Stored::Compact {
                    bytes,
                    values: shared.into_boxed_slice(),
                },
                _ => Stored::Typed(obj),
            };
            inner.items.insert(key, entry);
        }
        drop(inner);
        self.count_failures(failures);
    }

    /// Registers more indexes; existing objects are indexed immediately (a compact store
    /// decodes each once). Fails without changing anything if a name is already registered.
    pub fn add_indexers(&self, indexers: Indexers<K>) -> Result<(), IndexError> {
        let store = &*self.store;
        let mut inner = store.inner.write();
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
        if indexers.fns.is_empty() {
            return Ok(());
        }
        let objects: Vec<(ObjectKey, Arc<K>)> = inner
            .items
            .iter()
            .filter_map(|(key, stored)| Some((key.clone(), store.materialize(key, stored, false)?)))
            .collect();
        let mut failures = 0;
        for (name, f) in indexers.fns {
            let position = inner.indexers.len() as u16;
            inner.indices.insert(name.clone(), Index::new());
            inner.indexers.push((name, f));
            for (key, obj) in &objects {
                let (values, failed) = inner.values_of_one(position, key, obj);
                failures += failed;
                let shared = inner.move_index_entries(key, &[], &values, true);
                if let Some(Stored::Compact { values, .. }) = inner.items.get_mut(key) {
                    let mut all = std::mem::take(values).into_vec();
                    all.extend(shared);
                    *values = all.into_boxed_slice();
                }
            }
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

impl<K> ThreadSafeStore<K> {
    /// The object `stored` holds: shared, from the hot objects, or decoded (then kept hot if
    /// `remember`). A decode failure is logged and counted, and the object reads as absent.
    fn materialize(&self, key: &ObjectKey, stored: &Stored<K>, remember: bool) -> Option<Arc<K>> {
        match stored {
            Stored::Typed(obj) => Some(obj.clone()),
            Stored::Compact { bytes, .. } => {
                let c = self.compact.as_ref()?;
                if let Some(obj) = c.hot.get(key) {
                    return Some(obj);
                }
                let obj = self.decode(key, bytes)?;
                if remember {
                    c.hot.put(key, obj.clone());
                }
                Some(obj)
            }
        }
    }

    fn decode(&self, key: &ObjectKey, bytes: &[u8]) -> Option<Arc<K>> {
        match self.compact.as_ref()?.codec.decode(bytes) {
            Ok(obj) => Some(Arc::new(obj)),
            Err(e) => {
                self.decode_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(key = %key, error = %e, "compact cache entry unreadable; reading it as absent");
                None
            }
        }
    }
}

/// The slice of `values` from index function `position`.
fn values_at(values: &[(u16, IndexValue)], position: u16) -> &[(u16, IndexValue)] {
    let start = values.partition_point(|(p, _)| *p < position);
    let end = values.partition_point(|(p, _)| *p <= position);
    &values[start..end]
}

impl<K> Inner<K> {
    /// `obj`'s values under every index, and how many index functions failed on it (each
    /// failure logged).
    fn values_of(&self, key: &ObjectKey, obj: &K) -> (IndexValues, u64) {
        let mut all = Vec::new();
        let mut failures = 0;
        for position in 0..self.indexers.len() as u16 {
            let (values, failed) = self.values_of_one(position, key, obj);
            all.extend(values);
            failures += failed;
        }
        (all, failures)
    }

    fn values_of_one(&self, position: u16, key: &ObjectKey, obj: &K) -> (IndexValues, u64) {
        let (name, f) = &self.indexers[usize::from(position)];
        match f(obj) {
            Ok(values) => (values.into_iter().map(|v| (position, v)).collect(), 0),
            Err(e) => {
                tracing::warn!(index = %name, key = %key, error = %e, "index function failed; object left out of this index");
                (Vec::new(), 1)
            }
        }
    }

    /// The values a stored object is indexed under: kept beside a compact entry, recomputed for
    /// a typed one (a failure then was a failure when it was stored: nothing of it is indexed).
    fn stored_values(&self, key: &ObjectKey, stored: &Stored<K>) -> IndexValues {
        match stored {
            Stored::Typed(obj) => self.values_of(key, obj).0,
            Stored::Compact { values, .. } => values.to_vec(),
        }
    }

    /// Moves `key`'s index entries from `old` values to `new` ones, index by index (an index
    /// whose values did not change is left alone). With `share`, returns `new` holding the
    /// index maps' own copies of the values, for a compact entry to keep at the price of a
    /// reference count.
    fn move_index_entries(
        &mut self,
        key: &ObjectKey,
        old: &[(u16, IndexValue)],
        new: &[(u16, IndexValue)],
        share: bool,
    ) -> IndexValues {
        let Inner {
            indexers, indices, ..
        } = self;
        let mut shared = Vec::new();
        for (position, (name, _)) in indexers.iter().enumerate() {
            let position = position as u16;
            let Some(index) = indices.get_mut(name) else {
                continue;
            };
            let (was, now) = (values_at(old, position), values_at(new, position));
            if was == now {
                if share {
                    shared.extend_from_slice(was);
                }
                continue;
            }
            for (_, v) in was {
                if let Some(set) = index.get_mut(v) {
                    set.remove(key);
                    if set.is_empty() {
                        index.remove(v);
                    }
                }
            }
            for (_, v) in now {
                index.entry(v.clone()).or_default().insert(key.clone());
                if share && let Some((kept, _)) = index.get_key_value(v) {
                    shared.push((position, kept.clone()));
                }
            }
        }
        shared
    }
}

/// A cheap, cloneable read handle on an informer's cache. Every object is an `Arc<K>`: in a
/// typed cache the very one the informer stored, in a compact cache a decoded copy (the same
/// one while the key stays hot).
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

    /// The object stored under `key`. In a compact cache the key becomes hot.
    pub fn get_by_key(&self, key: &ObjectKey) -> Option<Arc<K>> {
        let inner = self.store.inner.read();
        self.store.materialize(key, inner.items.get(key)?, true)
    }

    /// Whether an object is stored under `key` (never decodes).
    pub fn contains_key(&self, key: &ObjectKey) -> bool {
        self.store.inner.read().items.contains_key(key)
    }

    /// Every cached object, in no particular order. In a compact cache this decodes every
    /// object not hot (about 30 ms per 1,000 Pods, and the typed size of the whole cache while
    /// the result lives): there, prefer [`get`](Self::get) and [`by_index`](Self::by_index).
    pub fn list(&self) -> Vec<Arc<K>> {
        let inner = self.store.inner.read();
        inner
            .items
            .iter()
            .filter_map(|(k, v)| self.store.materialize(k, v, false))
            .collect()
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
            .filter_map(|(k, v)| self.store.materialize(k, v, false))
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
            .filter_map(|k| self.store.materialize(k, inner.items.get(k)?, false))
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
            .filter_map(|k| self.store.materialize(k, inner.items.get(k)?, false))
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

    /// Whether this cache keeps its objects compact.
    pub fn is_compact(&self) -> bool {
        self.store.compact.is_some()
    }

    /// How many compact entries could not be decoded (each read as absent and logged); zero
    /// unless something is badly wrong.
    pub fn decode_failures(&self) -> u64 {
        self.store.decode_failures.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::informer::index::*;
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

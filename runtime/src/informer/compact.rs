//! The compact cache form: objects kept as LZ4-compressed JSON and decoded on access.
//!
//! An informer's memory is its cache. A typed Pod (`k8s_openapi::api::core::v1::Pod`) is a tree
//! of `String`s, `BTreeMap`s and `Option<Vec<…>>`s, each its own allocation, and weighs about
//! three times its JSON; client-go's Go structs are leaner than both. In compact mode
//! ([`CacheMode::Compact`]) the store keeps each object as its JSON (after the informer's
//! transform, so without `managedFields` by default) compressed with LZ4 against a dictionary
//! made of the first objects cached: objects of one kind share most of their bytes (keys,
//! images, volumes, conditions), so a 2.7 KiB Pod shrinks to a few hundred bytes. `lz4_flex` is
//! the pure-Rust LZ4 with external-dictionary support; zstd compresses a little better but
//! decodes slower and builds a C library.
//!
//! Reads decode (`get` of a 2.7 KiB Pod: ~2 µs of LZ4, ~10 µs of JSON), so a small bounded
//! [`HotObjects`] cache of decoded objects serves the keys just written (the ones a controller
//! reconciles next) and the ones read repeatedly. Index values are computed once, when an object
//! is stored, and kept beside it, so deletes and updates never decode the old object to find its
//! index entries.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::key::ObjectKey;

/// How an informer's store keeps its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheMode {
    /// As typed `Arc<K>`: reads are a reference-count increment (the default).
    #[default]
    Typed,
    /// Compressed JSON, decoded on access, with up to `hot_objects` decoded objects kept for
    /// hot keys. Several times smaller; a read that misses the hot cache costs a decode.
    Compact {
        /// Decoded objects kept for repeated reads (at least 1).
        hot_objects: usize,
    },
}

/// Decoded objects a compact store keeps by default.
pub const DEFAULT_HOT_OBJECTS: usize = 1024;

impl CacheMode {
    /// Compact with [`DEFAULT_HOT_OBJECTS`] decoded objects kept.
    pub const fn compact() -> Self {
        Self::Compact {
            hot_objects: DEFAULT_HOT_OBJECTS,
        }
    }
}

/// Why an object could not be put in, or read back from, its compact form.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The object did not serialize as JSON.
    #[error("cannot encode the object as JSON for the compact cache: {0}")]
    Encode(serde_json::Error),
    /// The stored bytes did not decompress or decode; a bug, since the store wrote them.
    #[error("cannot decode a compact cache entry: {0}")]
    Decode(String),
}

/// Size of the dictionary made of the first objects encoded (LZ4 looks back 64 KiB; each
/// compression hashes the whole dictionary, so it stays small).
const DICTIONARY_BYTES: usize = 12 * 1024;

/// An encoded object: a tag byte (which dictionary), then the LZ4 block with its size prepended.
pub(crate) type Encoded = Box<[u8]>;

const TAG_NO_DICTIONARY: u8 = 0;
const TAG_DICTIONARY: u8 = 1;

/// Turns objects into [`Encoded`] bytes and back.
pub(crate) struct Codec<K> {
    to_json: fn(&K) -> serde_json::Result<Vec<u8>>,
    from_json: fn(&[u8]) -> serde_json::Result<K>,
    /// Frozen once [`DICTIONARY_BYTES`] of samples are collected; entries encoded before that
    /// carry [`TAG_NO_DICTIONARY`].
    dictionary: std::sync::OnceLock<Box<[u8]>>,
    samples: Mutex<Vec<u8>>,
}

impl<K> fmt::Debug for Codec<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Codec")
            .field("dictionary_bytes", &self.dictionary.get().map(|d| d.len()))
            .finish()
    }
}

impl<K: Serialize + DeserializeOwned> Codec<K> {
    /// A codec for `K`'s JSON form.
    pub(crate) fn json() -> Self {
        Self {
            to_json: |obj| serde_json::to_vec(obj),
            from_json: |bytes| serde_json::from_slice(bytes),
            dictionary: std::sync::OnceLock::new(),
            samples: Mutex::new(Vec::new()),
        }
    }
}

impl<K> Codec<K> {
    /// The compact form of `obj`.
    pub(crate) fn encode(&self, obj: &K) -> Result<Encoded, CodecError> {
        let json = (self.to_json)(obj).map_err(CodecError::Encode)?;
        let mut out = match self.dictionary.get() {
            Some(dictionary) => {
                let mut out = vec![TAG_DICTIONARY];
                out.extend(lz4_flex::block::compress_prepend_size_with_dict(
                    &json, dictionary,
                ));
                out
            }
            None => {
                self.sample(&json);
                let mut out = vec![TAG_NO_DICTIONARY];
                out.extend(lz4_flex::block::compress_prepend_size(&json));
                out
            }
        };
        out.shrink_to_fit();
        Ok(out.into_boxed_slice())
    }

    /// The object `bytes` encode. The JSON is decompressed into a buffer kept per thread, so a
    /// read allocates only the object.
    pub(crate) fn decode(&self, bytes: &[u8]) -> Result<K, CodecError> {
        thread_local! {
            static JSON: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let bad = |e: lz4_flex::block::DecompressError| CodecError::Decode(e.to_string());
        let (dictionary, block): (&[u8], &[u8]) = match bytes.split_first() {
            Some((&TAG_NO_DICTIONARY, block)) => (&[], block),
            Some((&TAG_DICTIONARY, block)) => {
                let dictionary = self.dictionary.get().ok_or_else(|| {
                    CodecError::Decode("entry needs the dictionary, which is not built".into())
                })?;
                (dictionary, block)
            }
            _ => return Err(CodecError::Decode("unknown entry tag".into())),
        };
        let (size, block) = lz4_flex::block::uncompressed_size(block).map_err(bad)?;
        JSON.with_borrow_mut(|json| {
            json.resize(size, 0);
            let written =
                lz4_flex::block::decompress_into_with_dict(block, json, dictionary).map_err(bad)?;
            let decoded = (self.from_json)(&json[..written]);
            // Keep the buffer for the next read unless one object made it large.
            if json.capacity() > 1 << 20 {
                *json = Vec::new();
            }
            decoded.map_err(|e| CodecError::Decode(e.to_string()))
        })
    }

    /// Adds an object's JSON to the dictionary samples; freezes the dictionary when full.
    fn sample(&self, json: &[u8]) {
        let mut samples = self.samples.lock();
        if self.dictionary.get().is_some() {
            return;
        }
        let room = DICTIONARY_BYTES - samples.len();
        samples.extend_from_slice(&json[..json.len().min(room)]);
        if samples.len() >= DICTIONARY_BYTES {
            // The most recent bytes are nearest to the data being compressed: LZ4 finds
            // matches anywhere in the window, so the order barely matters.
            let _ = self
                .dictionary
                .set(std::mem::take(&mut *samples).into_boxed_slice());
        }
    }
}

/// A bounded set of decoded objects, evicted by the CLOCK rule (a key read since the hand last
/// passed gets a second chance). The store updates it under its write lock, so an entry here is
/// always the stored state of its key.
pub(crate) struct HotObjects<K> {
    capacity: usize,
    inner: Mutex<HotInner<K>>,
}

struct HotInner<K> {
    objects: HashMap<ObjectKey, (Arc<K>, bool)>,
    clock: VecDeque<ObjectKey>,
}

impl<K> HotObjects<K> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(HotInner {
                objects: HashMap::new(),
                clock: VecDeque::new(),
            }),
        }
    }

    /// The decoded object of `key`, if it is hot; marks it read.
    pub(crate) fn get(&self, key: &ObjectKey) -> Option<Arc<K>> {
        let mut inner = self.inner.lock();
        let (obj, referenced) = inner.objects.get_mut(key)?;
        *referenced = true;
        Some(obj.clone())
    }

    /// Keeps `obj` as `key`'s decoded state, evicting a cold key if full.
    pub(crate) fn put(&self, key: &ObjectKey, obj: Arc<K>) {
        let mut inner = self.inner.lock();
        if let Some(slot) = inner.objects.get_mut(key) {
            *slot = (obj, false);
            return;
        }
        while inner.objects.len() >= self.capacity {
            let Some(candidate) = inner.clock.pop_front() else {
                break;
            };
            match inner.objects.get_mut(&candidate) {
                Some((_, referenced)) if *referenced => {
                    *referenced = false;
                    inner.clock.push_back(candidate);
                }
                Some(_) => {
                    inner.objects.remove(&candidate);
                }
                None => {}
            }
        }
        inner.objects.insert(key.clone(), (obj, false));
        inner.clock.push_back(key.clone());
        // Removed keys leave their slot behind; sweep them before the clock outgrows the set.
        if inner.clock.len() > 2 * self.capacity {
            let HotInner { objects, clock } = &mut *inner;
            let mut seen = std::collections::HashSet::new();
            clock.retain(|k| objects.contains_key(k) && seen.insert(k.clone()));
        }
    }

    /// Forgets `key` (it was deleted).
    pub(crate) fn remove(&self, key: &ObjectKey) {
        // Its slot in the clock goes when the hand reaches it.
        self.inner.lock().objects.remove(key);
    }

    /// Forgets everything (the store was replaced).
    pub(crate) fn clear(&self) {
        let mut inner = self.inner.lock();
        inner.objects.clear();
        inner.clock.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    fn cm(i: usize) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(format!("config-{i}")),
                namespace: Some("default".into()),
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            },
            data: Some([("settings.yaml".to_string(), "replicas: 3\n".repeat(40))].into()),
            ..Default::default()
        }
    }

    #[test]
    fn objects_round_trip_before_and_after_the_dictionary_and_shrink() {
        let codec = Codec::<ConfigMap>::json();
        let mut sizes = Vec::new();
        for i in 0..40 {
            let obj = cm(i);
            let bytes = codec.encode(&obj).unwrap();
            assert_eq!(codec.decode(&bytes).unwrap(), obj);
            sizes.push((bytes[0], bytes.len()));
        }
        let json = serde_json::to_vec(&cm(39)).unwrap().len();
        assert_eq!(sizes[0].0, TAG_NO_DICTIONARY);
        let (tag, last) = sizes[39];
        assert_eq!(tag, TAG_DICTIONARY, "the dictionary is built by then");
        assert!(
            last * 5 < json,
            "{last} bytes compact vs {json} bytes of JSON"
        );
    }

    #[test]
    fn corrupt_entries_are_decode_errors_not_panics() {
        let codec = Codec::<ConfigMap>::json();
        let err = codec.decode(&[7, 1, 2]).unwrap_err();
        assert!(err.to_string().contains("unknown entry tag"), "{err}");
        let err = codec
            .decode(&[TAG_NO_DICTIONARY, 200, 0, 0, 0, 1])
            .unwrap_err();
        assert!(err.to_string().contains("cannot decode"), "{err}");
    }

    #[test]
    fn the_hot_set_keeps_read_keys_and_evicts_cold_ones() {
        let hot = HotObjects::new(2);
        let key = |i: usize| ObjectKey::new(Some("default"), &format!("config-{i}"));
        hot.put(&key(0), Arc::new(cm(0)));
        hot.put(&key(1), Arc::new(cm(1)));
        assert!(hot.get(&key(0)).is_some(), "read: gets a second chance");
        hot.put(&key(2), Arc::new(cm(2)));
        assert!(hot.get(&key(0)).is_some());
        assert!(hot.get(&key(1)).is_none(), "never read: evicted");
        hot.remove(&key(0));
        assert!(hot.get(&key(0)).is_none());
        hot.clear();
        assert!(hot.get(&key(2)).is_none());
    }
}

//! The object store: every object of every resource, one global resourceVersion, a bounded
//! history of events (the watch cache), and the registry of open watches.
//!
//! Objects are kept as their serialized JSON bytes, so lists and watch events are written by
//! concatenating bytes; they are parsed only when a request needs to look inside.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::resources::{Registry, ResourceKey};

/// `(namespace, name)`; the namespace is empty for cluster-scoped objects.
pub type ObjKey = (String, String);

/// One stored object version.
#[derive(Debug)]
pub struct Stored {
    /// The object's JSON, with `metadata.resourceVersion` already set.
    pub bytes: Bytes,
    pub labels: BTreeMap<String, String>,
    pub uid: String,
    /// The apiVersion the object was written through (multi-version CRDs may differ).
    pub api_version: String,
    /// uids from `metadata.ownerReferences`, for garbage collection without parsing.
    pub owners: Vec<String>,
    pub rv: u64,
}

impl Stored {
    /// Parses the stored JSON (which the server wrote itself).
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }

    fn from_value(value: &Value, rv: u64) -> Stored {
        let meta = &value["metadata"];
        let labels = meta["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let owners = meta["ownerReferences"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|o| o["uid"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Stored {
            bytes: Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
            labels,
            uid: meta["uid"].as_str().unwrap_or_default().to_string(),
            api_version: value["apiVersion"].as_str().unwrap_or_default().to_string(),
            owners,
            rv,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as kept in history and sent to watchers.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub resource: ResourceKey,
    pub key: ObjKey,
    pub kind: EventType,
    /// The new state (for DELETED: the last state, stamped with the deletion's resourceVersion).
    pub obj: Arc<Stored>,
    /// The state before this event (None for ADDED).
    pub prev: Option<Arc<Stored>>,
}

/// What a watcher's channel carries.
pub type WatchItem = Arc<Event>;

struct Watcher {
    resource: ResourceKey,
    namespace: Option<String>,
    tx: mpsc::Sender<WatchItem>,
    /// Set when the watcher fell behind (its buffer filled) or history was expired under it:
    /// the stream ends with an ERROR 410 event.
    expired: Arc<AtomicBool>,
}

/// A newly opened watch: what to send first, then the live channel.
pub struct WatchStart {
    /// Current objects to send as synthetic ADDED events (initial-state watches).
    pub initial: Vec<Arc<Stored>>,
    /// History events after the requested resourceVersion.
    pub backlog: Vec<Arc<Event>>,
    /// The store's resourceVersion when the watch was opened.
    pub rv: u64,
    pub rx: mpsc::Receiver<WatchItem>,
    pub expired: Arc<AtomicBool>,
}

/// Where a list or watch reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAt {
    /// The current state.
    Latest,
    /// The state exactly at this resourceVersion (from history).
    Exact(u64),
}

/// One page of a list.
#[derive(Debug)]
pub struct Page {
    pub items: Vec<Arc<Stored>>,
    /// The last key served, when more objects follow (for the continue token).
    pub next: Option<ObjKey>,
    /// How many matching objects follow this page (`metadata.remainingItemCount`).
    pub remaining: usize,
}

/// Error of reading at a resourceVersion no longer in history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooOld {
    pub asked: u64,
    pub oldest: u64,
}

/// The whole state of the server. Guarded by one mutex; every request holds it briefly.
pub struct Store {
    rv: u64,
    objects: HashMap<ResourceKey, BTreeMap<ObjKey, Arc<Stored>>>,
    /// uid → where the object lives, for owner lookups.
    uids: HashMap<String, (ResourceKey, ObjKey)>,
    /// owner uid → objects naming it in `ownerReferences`.
    owned: HashMap<String, std::collections::BTreeSet<(ResourceKey, ObjKey)>>,
    history: VecDeque<Arc<Event>>,
    /// Every event with rv > history_start is in `history`.
    history_start: u64,
    window: usize,
    watchers: Vec<Watcher>,
    pub registry: Registry,
    /// The data directory every change is written to first, when the server has one.
    persist: Option<crate::persist::Persist>,
}

impl Store {
    pub fn new(window: usize) -> Store {
        Store {
            rv: 0,
            objects: HashMap::new(),
            uids: HashMap::new(),
            owned: HashMap::new(),
            history: VecDeque::new(),
            history_start: 0,
            window: window.max(1),
            watchers: Vec::new(),
            registry: Registry::default(),
            persist: None,
        }
    }

    /// Takes the objects of a data directory as the current state (no history: a watch from
    /// before it gets 410) and writes every later change there.
    pub fn restore(
        &mut self,
        persist: crate::persist::Persist,
        restored: Vec<crate::persist::Restored>,
        rv: u64,
    ) {
        for r in restored {
            let Ok(value) = serde_json::from_slice::<Value>(&r.json) else {
                tracing::error!(resource = %r.resource, name = %r.key.1, "skipping an unreadable object in the data directory");
                continue;
            };
            let stored = Arc::new(Stored::from_value(&value, r.rv));
            for o in &stored.owners {
                self.owned
                    .entry(o.clone())
                    .or_default()
                    .insert((r.resource.clone(), r.key.clone()));
            }
            self.uids
                .insert(stored.uid.clone(), (r.resource.clone(), r.key.clone()));
            self.objects
                .entry(r.resource)
                .or_default()
                .insert(r.key, stored);
        }
        self.rv = self.rv.max(rv);
        self.history_start = self.rv;
        self.persist = Some(persist);
    }

    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    /// The oldest resourceVersion a watch or continue token may still start from.
    pub fn oldest_rv(&self) -> u64 {
        self.history_start
    }

    pub fn get(&self, res: &ResourceKey, key: &ObjKey) -> Option<Arc<Stored>> {
        self.objects.get(res)?.get(key).cloned()
    }

    pub fn locate_uid(&self, uid: &str) -> Option<&(ResourceKey, ObjKey)> {
        self.uids.get(uid)
    }

    /// Writes `value` (create or update), stamping a new resourceVersion. Returns the stored version.
    pub fn put(&mut self, res: &ResourceKey, key: ObjKey, mut value: Value) -> Arc<Stored> {
        self.rv += 1;
        let rv = self.rv;
        value["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let stored = Arc::new(Stored::from_value(&value, rv));
        if let Some(p) = &self.persist {
            p.write(res, &key, rv, Some(&stored.bytes));
        }
        let prev = self
            .objects
            .entry(res.clone())
            .or_default()
            .insert(key.clone(), stored.clone());
        if let Some(p) = &prev {
            if p.uid != stored.uid {
                self.uids.remove(&p.uid);
            }
            self.unindex_owners(res, &key, p);
        }
        for o in &stored.owners {
            self.owned
                .entry(o.clone())
                .or_default()
                .insert((res.clone(), key.clone()));
        }
        self.uids
            .insert(stored.uid.clone(), (res.clone(), key.clone()));
        let kind = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(Event {
            rv,
            resource: res.clone(),
            key,
            kind,
            obj: stored.clone(),
            prev,
        });
        stored
    }

    /// Removes an object; the DELETED event carries its last state with the deletion's resourceVersion.
    pub fn remove(&mut self, res: &ResourceKey, key: &ObjKey) -> Option<Arc<Stored>> {
        self.remove_as(res, key, None)
    }

    /// Removes an object, sending `last` (when given) as its final state in the DELETED event.
    pub fn remove_as(
        &mut self,
        res: &ResourceKey,
        key: &ObjKey,
        last: Option<Value>,
    ) -> Option<Arc<Stored>> {
        let prev = self.objects.get_mut(res)?.remove(key)?;
        self.uids.remove(&prev.uid);
        self.unindex_owners(res, key, &prev);
        self.rv += 1;
        let rv = self.rv;
        if let Some(p) = &self.persist {
            p.write(res, key, rv, None);
        }
        let mut v = last.unwrap_or_else(|| prev.value());
        v["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let last = Arc::new(Stored::from_value(&v, rv));
        self.record(Event {
            rv,
            resource: res.clone(),
            key: key.clone(),
            kind: EventType::Deleted,
            obj: last.clone(),
            prev: Some(prev),
        });
        Some(last)
    }

    fn unindex_owners(&mut self, res: &ResourceKey, key: &ObjKey, s: &Stored) {
        for o in &s.owners {
            if let Some(set) = self.owned.get_mut(o) {
                set.remove(&(res.clone(), key.clone()));
                if set.is_empty() {
                    self.owned.remove(o);
                }
            }
        }
    }

    fn record(&mut self, ev: Event) {
        let ev = Arc::new(ev);
        self.history.push_back(ev.clone());
        while self.history.len() > self.window {
            if let Some(old) = self.history.pop_front() {
                self.history_start = old.rv;
            }
        }
        self.watchers.retain(|w| {
            if w.resource != ev.resource || w.namespace.as_ref().is_some_and(|ns| *ns != ev.key.0) {
                return !w.tx.is_closed();
            }
            match w.tx.try_send(ev.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::debug!(resource = %w.resource, "watcher fell behind its buffer; ending it with 410");
                    w.expired.store(true, Ordering::SeqCst);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
    }

    /// All objects of a resource (optionally one namespace) in key order, at `at`.
    ///
    /// `after` skips keys up to and including it (continue tokens). Items pass `keep` to be
    /// returned; at most `limit` are returned plus whether more matching ones remain.
    pub fn list(
        &self,
        res: &ResourceKey,
        namespace: Option<&str>,
        at: ReadAt,
        after: Option<&ObjKey>,
        limit: Option<usize>,
        mut keep: impl FnMut(&Stored) -> bool,
    ) -> Result<Page, TooOld> {
        let empty = BTreeMap::new();
        let current = self.objects.get(res).unwrap_or(&empty);
        // State at `rv` of keys changed since: earliest event after rv gives the state before it.
        let mut overlay: BTreeMap<ObjKey, Option<Arc<Stored>>> = BTreeMap::new();
        if let ReadAt::Exact(rv) = at {
            if rv < self.history_start {
                return Err(TooOld {
                    asked: rv,
                    oldest: self.history_start,
                });
            }
            for ev in self
                .history
                .iter()
                .filter(|e| e.rv > rv && e.resource == *res)
            {
                overlay
                    .entry(ev.key.clone())
                    .or_insert_with(|| ev.prev.clone());
            }
        }
        let lower = match after {
            Some(k) => std::ops::Bound::Excluded(k.clone()),
            None => match namespace {
                Some(ns) => std::ops::Bound::Included((ns.to_string(), String::new())),
                None => std::ops::Bound::Unbounded,
            },
        };
        let mut a = current
            .range((lower.clone(), std::ops::Bound::Unbounded))
            .peekable();
        let mut b = overlay
            .range((lower, std::ops::Bound::Unbounded))
            .peekable();
        // The two ordered sequences merged (the overlay wins on equal keys), within the namespace.
        let merged = std::iter::from_fn(move || {
            Some(match (a.peek(), b.peek()) {
                (None, None) => return None,
                (Some((ka, _)), Some((kb, _))) if ka < kb => {
                    let (k, v) = a.next().expect("peeked");
                    (k, Some(v.clone()))
                }
                (Some((ka, _)), Some((kb, _))) if ka == kb => {
                    a.next();
                    let (k, v) = b.next().expect("peeked");
                    (k, v.clone())
                }
                (Some(_), None) => {
                    let (k, v) = a.next().expect("peeked");
                    (k, Some(v.clone()))
                }
                _ => {
                    let (k, v) = b.next().expect("peeked");
                    (k, v.clone())
                }
            })
        });
        let mut matching = merged
            .take_while(|(key, _)| namespace.is_none_or(|ns| key.0 == ns))
            .filter_map(|(key, item)| Some((key, item?)))
            .filter(|(_, item)| keep(item));
        let mut out = Vec::new();
        let mut last_key: Option<ObjKey> = None;
        while let Some((key, item)) = matching.next() {
            if limit.is_some_and(|l| out.len() >= l) {
                // A full page: the objects after it are counted, not returned.
                return Ok(Page {
                    items: out,
                    next: last_key,
                    remaining: 1 + matching.count(),
                });
            }
            last_key = Some(key.clone());
            out.push(item);
        }
        Ok(Page {
            items: out,
            next: None,
            remaining: 0,
        })
    }

    /// Keys of every object of a resource.
    pub fn keys(&self, res: &ResourceKey) -> Vec<ObjKey> {
        self.objects
            .get(res)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Objects (anywhere) that name `uid` among their owners.
    pub fn dependents(&self, uid: &str) -> Vec<(ResourceKey, ObjKey, Arc<Stored>)> {
        let Some(set) = self.owned.get(uid) else {
            return Vec::new();
        };
        set.iter()
            .filter_map(|(r, k)| Some((r.clone(), k.clone(), self.get(r, k)?)))
            .collect()
    }

    /// Whether any namespaced object lives in `namespace`.
    pub fn namespace_has_objects(&self, namespace: &str) -> bool {
        self.objects.iter().any(|(_, m)| {
            m.range((namespace.to_string(), String::new())..)
                .next()
                .is_some_and(|(k, _)| k.0 == namespace)
        })
    }

    /// Keys of all objects in `namespace`, across resources.
    pub fn objects_in_namespace(&self, namespace: &str) -> Vec<(ResourceKey, ObjKey)> {
        let mut out = Vec::new();
        for (r, m) in &self.objects {
            for (k, _) in m
                .range((namespace.to_string(), String::new())..)
                .take_while(|(k, _)| k.0 == namespace)
            {
                out.push((r.clone(), k.clone()));
            }
        }
        out
    }

    /// Removes a resource's objects without events (used after their DELETED events were sent).
    pub fn drop_resource(&mut self, res: &ResourceKey) {
        self.objects.remove(res);
    }

    /// Opens a watch on a resource. `from`: None = start now with the current state as ADDED
    /// events (when `initial` is set); Some(rv) = replay history after rv.
    pub fn watch(
        &mut self,
        res: &ResourceKey,
        namespace: Option<&str>,
        from: Option<u64>,
        initial: bool,
    ) -> Result<WatchStart, TooOld> {
        let mut backlog = Vec::new();
        if let Some(rv) = from {
            if rv < self.history_start {
                return Err(TooOld {
                    asked: rv,
                    oldest: self.history_start,
                });
            }
            backlog = self
                .history
                .iter()
                .filter(|e| {
                    e.rv > rv && e.resource == *res && namespace.is_none_or(|ns| e.key.0 == ns)
                })
                .cloned()
                .collect();
        }
        let initial = if initial {
            self.objects
                .get(res)
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| namespace.is_none_or(|ns| k.0 == ns))
                        .map(|(_, v)| v.clone())
                        .collect()
                })
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let (tx, rx) = mpsc::channel(self.window.max(1024));
        let expired = Arc::new(AtomicBool::new(false));
        self.watchers.push(Watcher {
            resource: res.clone(),
            namespace: namespace.map(str::to_string),
            tx,
            expired: expired.clone(),
        });
        Ok(WatchStart {
            initial,
            backlog,
            rv: self.rv,
            rx,
            expired,
        })
    }

    /// Ends every open watch cleanly (the stream closes without an error event).
    pub fn close_watches(&mut self) {
        self.watchers.clear();
    }

    /// Ends every open watch with an ERROR 410 event.
    pub fn expire_watches(&mut self) {
        for w in self.watchers.drain(..) {
            w.expired.store(true, Ordering::SeqCst);
        }
    }

    /// Ends the open watches of one resource (its CRD was deleted).
    pub fn close_watches_of(&mut self, res: &ResourceKey) {
        self.watchers.retain(|w| w.resource != *res);
    }

    /// Drops all history: reads and watches from any earlier resourceVersion get 410.
    pub fn compact(&mut self) {
        self.history.clear();
        self.history_start = self.rv;
    }

    pub fn open_watches(&self) -> usize {
        self.watchers.iter().filter(|w| !w.tx.is_closed()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res() -> ResourceKey {
        ResourceKey {
            group: String::new(),
            plural: "configmaps".into(),
        }
    }

    fn cm(name: &str, uid: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default", "uid": uid}})
    }

    #[test]
    fn list_at_an_old_revision_sees_the_old_state() {
        let mut s = Store::new(100);
        s.put(&res(), ("default".into(), "a".into()), cm("a", "1"));
        let rv = s.current_rv();
        s.put(&res(), ("default".into(), "b".into()), cm("b", "2"));
        s.remove(&res(), &("default".into(), "a".into()));
        let now = s
            .list(&res(), None, ReadAt::Latest, None, None, |_| true)
            .expect("latest")
            .items;
        assert_eq!(
            now.iter().map(|o| o.uid.as_str()).collect::<Vec<_>>(),
            ["2"]
        );
        let then = s
            .list(&res(), None, ReadAt::Exact(rv), None, None, |_| true)
            .expect("in window")
            .items;
        assert_eq!(
            then.iter().map(|o| o.uid.as_str()).collect::<Vec<_>>(),
            ["1"]
        );
    }

    #[test]
    fn history_window_expires_old_revisions() {
        let mut s = Store::new(2);
        for i in 0..5 {
            s.put(
                &res(),
                ("default".into(), format!("o{i}")),
                cm(&format!("o{i}"), &i.to_string()),
            );
        }
        assert!(s.watch(&res(), None, Some(1), false).is_err());
        assert!(s.watch(&res(), None, Some(3), false).is_ok());
        let page = s
            .list(&res(), None, ReadAt::Latest, None, Some(2), |_| true)
            .expect("list");
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.next, Some(("default".into(), "o1".into())));
        assert_eq!(page.remaining, 3);
    }
}

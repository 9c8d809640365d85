//! DeltaFifo: per-object queues of typed changes between the reflector and the process loop.
//!
//! Behaves like client-go's `DeltaFIFO` with `EmitDeltaTypeReplaced` and the informer's indexer
//! as known objects (`delta_fifo.go`), with two Rust-shaped differences:
//! - A tombstone is a variant ([`DeletedObject::Tombstone`]), never a downcast.
//! - `replace` can be fed page by page ([`DeltaFifo::begin_replace`], [`DeltaFifo::replace_items`],
//!   [`DeltaFifo::finish_replace`]), so a relist is never buffered whole beside the cache: the
//!   process loop applies page 1 while page 2 downloads, and tombstones for vanished keys are
//!   queued when the last page is in. [`DeltaFifo::replace`] does all three at once.
//!
//! The transform hook is applied by the reflector before an object is wrapped in its `Arc`, so
//! every delta here already holds the one shared, transformed copy.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use kube::Resource;
use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

use super::key::ObjectKey;
use super::reflector::ReflectorStore;
use super::store::Lister;

/// The FIFO was closed; no more deltas will come.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
#[error("delta fifo is closed; the informer is stopping")]
pub struct FifoClosed;

/// What a delete notification carries.
pub enum DeletedObject<K> {
    /// A watch `DELETED` event: the object's final state as the server sent it.
    Object(Arc<K>),
    /// A relist found the key gone. The final state is unknown; `last_known` is the newest
    /// state this informer had (client-go's `DeletedFinalStateUnknown`), `None` if it had none.
    Tombstone {
        /// The vanished object's key.
        key: ObjectKey,
        /// The last state the informer knew, if any.
        last_known: Option<Arc<K>>,
    },
}

impl<K> Clone for DeletedObject<K> {
    fn clone(&self) -> Self {
        match self {
            Self::Object(o) => Self::Object(o.clone()),
            Self::Tombstone { key, last_known } => Self::Tombstone {
                key: key.clone(),
                last_known: last_known.clone(),
            },
        }
    }
}

impl<K> DeletedObject<K> {
    /// The deleted object's final or last known state.
    pub fn object(&self) -> Option<&Arc<K>> {
        match self {
            Self::Object(o) => Some(o),
            Self::Tombstone { last_known, .. } => last_known.as_ref(),
        }
    }

    /// Whether this is a tombstone from a relist rather than an observed delete.
    pub fn is_tombstone(&self) -> bool {
        matches!(self, Self::Tombstone { .. })
    }
}

impl<K: Resource> DeletedObject<K> {
    /// The deleted object's key.
    pub fn key(&self) -> Option<ObjectKey> {
        match self {
            Self::Object(o) => ObjectKey::from_obj(&**o).ok(),
            Self::Tombstone { key, .. } => Some(key.clone()),
        }
    }
}

impl<K> fmt::Debug for DeletedObject<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Object(_) => f.write_str("Object"),
            Self::Tombstone { key, last_known } => f
                .debug_struct("Tombstone")
                .field("key", key)
                .field("has_last_known", &last_known.is_some())
                .finish(),
        }
    }
}

/// One change to one object. A key's deltas are delivered oldest first.
pub enum Delta<K> {
    /// Seen for the first time by a watch.
    Added(Arc<K>),
    /// Modified, as seen by a watch.
    Updated(Arc<K>),
    /// Deleted, by a watch event or (as a tombstone) found gone by a relist.
    Deleted(DeletedObject<K>),
    /// Present in a relist.
    Replaced(Arc<K>),
    /// Re-delivered from the cache by a periodic resync; same object, same version.
    Sync(Arc<K>),
}

impl<K> Delta<K> {
    /// The object carried, if any (a tombstone may carry none).
    pub fn object(&self) -> Option<&Arc<K>> {
        match self {
            Self::Added(o) | Self::Updated(o) | Self::Replaced(o) | Self::Sync(o) => Some(o),
            Self::Deleted(d) => d.object(),
        }
    }

    fn is_deleted(&self) -> bool {
        matches!(self, Self::Deleted(_))
    }
}

impl<K> fmt::Debug for Delta<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Added(_) => f.write_str("Added"),
            Self::Updated(_) => f.write_str("Updated"),
            Self::Deleted(d) => write!(f, "Deleted({d:?})"),
            Self::Replaced(_) => f.write_str("Replaced"),
            Self::Sync(_) => f.write_str("Sync"),
        }
    }
}

/// A paged `replace` in progress.
struct ReplaceSession {
    /// Keys present in the new list so far.
    seen: HashSet<ObjectKey>,
}

struct State<K> {
    /// Pending deltas per key, oldest first. Never holds an empty `Vec`.
    /// A key is in `items` if and only if it is in `queue`.
    items: HashMap<ObjectKey, Vec<Delta<K>>>,
    /// FIFO order of keys for `pop`. No duplicates; a key keeps its place when more deltas
    /// arrive for it (no line-jumping).
    queue: VecDeque<ObjectKey>,
    /// True once the first `replace` finished, or any add/update/delete arrived.
    populated: bool,
    /// Keys queued by the first `replace` and not yet popped. Only counts while `!populated`
    /// or until it reaches zero; after that it stays zero.
    initial_population: usize,
    /// Keys currently counted in `initial_population` (so a pop decrements only for them).
    initial_keys: HashSet<ObjectKey>,
    /// Set by `close`; `pop` fails once the queue is empty.
    closed: bool,
    /// A `replace` fed page by page, if one is running.
    replace: Option<ReplaceSession>,
}

/// client-go's DeltaFIFO with typed deltas. Cheap to share behind an `Arc`.
pub struct DeltaFifo<K> {
    state: Mutex<State<K>>,
    /// Wakes the (single) popper.
    notify: Notify,
    /// Wakes a list waiting for the queue to drain ([`DeltaFifo::drained_to`]).
    popped: Notify,
    /// The informer's cache, for `delete`, `replace` tombstones and `resync`.
    known: Option<Lister<K>>,
    /// Latched to `true` once the first replace has been fully popped.
    synced: watch::Sender<bool>,
}

impl<K> fmt::Debug for DeltaFifo<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.lock();
        f.debug_struct("DeltaFifo")
            .field("queued_keys", &s.queue.len())
            .field("populated", &s.populated)
            .field("closed", &s.closed)
            .finish()
    }
}

/// The outcome of one [`DeltaFifo::pop`].
pub struct Popped<K> {
    /// The key whose deltas these are.
    pub key: ObjectKey,
    /// All of the key's deltas, oldest first.
    pub deltas: Vec<Delta<K>>,
    /// Whether these deltas belong to the initial list (the FIFO had not synced before this pop).
    pub is_initial_list: bool,
}

impl<K: Resource> DeltaFifo<K> {
    /// A FIFO that knows the objects in `known` (the informer's cache), as the informer uses it.
    /// Without known objects, deletes of unqueued keys are dropped and `resync` does nothing.
    pub fn new(known: Option<Lister<K>>) -> Self {
        Self {
            state: Mutex::new(State {
                items: HashMap::new(),
                queue: VecDeque::new(),
                populated: false,
                initial_population: 0,
                initial_keys: HashSet::new(),
                closed: false,
                replace: None,
            }),
            notify: Notify::new(),
            popped: Notify::new(),
            known,
            synced: watch::channel(false).0,
        }
    }

    /// Queues an `Added` delta. Objects without a name are dropped with a warning.
    pub fn add(&self, obj: Arc<K>) {
        self.push_observed(obj, Delta::Added);
    }

    /// Queues an `Updated` delta.
    pub fn update(&self, obj: Arc<K>) {
        self.push_observed(obj, Delta::Updated);
    }

    fn push_observed(&self, obj: Arc<K>, make: fn(Arc<K>) -> Delta<K>) {
        let Some(key) = key_or_warn(&*obj) else {
            return;
        };
        let mut s = self.state.lock();
        s.populated = true;
        self.queue_action(&mut s, key, make(obj));
        self.check_synced(&s);
    }

    /// Queues a `Deleted` delta, unless the key is neither queued nor known to the cache
    /// (nothing downstream could care about it).
    pub fn delete(&self, obj: Arc<K>) {
        let Some(key) = key_or_warn(&*obj) else {
            return;
        };
        let mut s = self.state.lock();
        s.populated = true;
        if let Some(session) = s.replace.as_mut() {
            session.seen.remove(&key);
        }
        let queued = s.items.contains_key(&key);
        let known = self.known.as_ref().is_some_and(|k| k.contains_key(&key));
        if queued || known {
            self.queue_action(&mut s, key, Delta::Deleted(DeletedObject::Object(obj)));
        }
        self.check_synced(&s);
    }

    /// Replaces the whole content with `list` in one step (see the paged form).
    pub fn replace(&self, list: impl IntoIterator<Item = Arc<K>>) {
        self.begin_replace();
        self.replace_items(list);
        self.finish_replace();
    }

    /// Starts a paged replace. A session already running is abandoned (no tombstones).
    pub fn begin_replace(&self) {
        self.state.lock().replace = Some(ReplaceSession {
            seen: HashSet::new(),
        });
    }

    /// Queues a `Replaced` delta for each object of one page of the new list.
    pub fn replace_items(&self, page: impl IntoIterator<Item = Arc<K>>) {
        let mut s = self.state.lock();
        let counting = !s.populated;
        let mut queued_any = false;
        for obj in page {
            let Some(key) = key_or_warn(&*obj) else {
                continue;
            };
            if let Some(session) = s.replace.as_mut() {
                session.seen.insert(key.clone());
            }
            if counting && !s.items.contains_key(&key) {
                s.initial_keys.insert(key.clone());
                s.initial_population += 1;
            }
            self.queue_action_quiet(&mut s, key, Delta::Replaced(obj));
            queued_any = true;
        }
        drop(s);
        if queued_any {
            self.notify.notify_one();
        }
    }

    /// Ends a paged replace: every key that is queued or cached but was not in the new list
    /// gets a tombstone. The first replace to finish marks the FIFO populated.
    pub fn finish_replace(&self) {
        let mut s = self.state.lock();
        let Some(session) = s.replace.take() else {
            return;
        };
        let counting = !s.populated;
        // Queued keys that vanished: tombstone with the newest queued state.
        let vanished: Vec<(ObjectKey, Option<Arc<K>>)> = s
            .items
            .iter()
            .filter(|(k, _)| !session.seen.contains(*k))
            .map(|(k, deltas)| (k.clone(), deltas.last().and_then(|d| d.object().cloned())))
            .collect();
        let mut tombstones = 0;
        for (key, last_known) in vanished {
            self.queue_action_quiet(&mut s, key.clone(), tombstone(key, last_known));
            tombstones += 1;
        }
        // Cached keys that vanished and have nothing queued: tombstone with the cached state.
        if let Some(known) = &self.known {
            for key in known.list_keys() {
                if session.seen.contains(&key) || s.items.contains_key(&key) {
                    continue;
                }
                let last_known = known.get_by_key(&key);
                if counting {
                    s.initial_keys.insert(key.clone());
                    s.initial_population += 1;
                }
                self.queue_action_quiet(&mut s, key.clone(), tombstone(key, last_known));
                tombstones += 1;
            }
        }
        s.populated = true;
        self.check_synced(&s);
        drop(s);
        tracing::debug!(
            listed = session.seen.len(),
            tombstones,
            "delta fifo replace finished"
        );
        self.notify.notify_one();
    }

    /// Abandons a paged replace (the list failed part-way): no tombstones are queued; the
    /// `Replaced` deltas already queued stay, since they are real server states.
    pub fn abort_replace(&self) {
        self.state.lock().replace = None;
    }

    /// Queues a `Sync` delta for every cached object that has no queued deltas (a queued delta
    /// is newer than the cache, so re-delivering the cached state would go back in time).
    pub fn resync(&self) {
        let Some(known) = &self.known else { return };
        let mut s = self.state.lock();
        let mut queued = 0usize;
        for key in known.list_keys() {
            if s.items.contains_key(&key) {
                continue;
            }
            if let Some(obj) = known.get_by_key(&key) {
                self.queue_action_quiet(&mut s, key, Delta::Sync(obj));
                queued += 1;
            }
        }
        drop(s);
        if queued > 0 {
            self.notify.notify_one();
        }
    }

    /// Waits for a key to be queued, then hands it with all its deltas to `process`, which runs
    /// under the FIFO lock (so a concurrent `replace` or `resync` sees the cache either before or
    /// after the whole key was applied). `process` must not block. Fails once closed and empty.
    pub async fn pop<R>(&self, process: impl FnOnce(Popped<K>) -> R) -> Result<R, FifoClosed> {
        loop {
            // Registered before the state is checked, so a `close` (which wakes every registered
            // waiter) or an `add` between the check and the wait is not missed.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.state.lock();
                if let Some(key) = s.queue.pop_front() {
                    let is_initial_list = !(s.populated && s.initial_population == 0);
                    if s.initial_population > 0 && s.initial_keys.remove(&key) {
                        s.initial_population -= 1;
                    }
                    let deltas = s.items.remove(&key).unwrap_or_default();
                    let out = process(Popped {
                        key,
                        deltas,
                        is_initial_list,
                    });
                    self.check_synced(&s);
                    drop(s);
                    self.popped.notify_waiters();
                    return Ok(out);
                }
                if s.closed {
                    return Err(FifoClosed);
                }
            }
            notified.await;
        }
    }

    /// Closes the FIFO: every waiting `pop` (there may be several consumers) returns
    /// [`FifoClosed`] once the queue is drained, as client-go's `Close` broadcasts.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.notify.notify_waiters();
    }

    /// Whether the first replace has been fully popped (or an add/update/delete came first).
    /// Latches: stays true afterwards.
    pub fn has_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// A receiver that turns `true` when [`has_synced`](Self::has_synced) does.
    pub fn synced_watch(&self) -> watch::Receiver<bool> {
        self.synced.subscribe()
    }

    /// Waits until at most `keys` keys are queued (or the FIFO is closed). A list waits here
    /// before taking its next page, so a process loop slower than the list holds a bounded
    /// backlog of decoded objects rather than the whole list beside the cache.
    pub async fn drained_to(&self, keys: usize) {
        loop {
            let popped = self.popped.notified();
            tokio::pin!(popped);
            popped.as_mut().enable();
            {
                let s = self.state.lock();
                if s.queue.len() <= keys || s.closed {
                    return;
                }
            }
            popped.await;
        }
    }

    /// The number of queued keys.
    pub fn len(&self) -> usize {
        self.state.lock().queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `key` has queued deltas.
    pub fn contains(&self, key: &ObjectKey) -> bool {
        self.state.lock().items.contains_key(key)
    }

    fn queue_action(&self, s: &mut State<K>, key: ObjectKey, delta: Delta<K>) {
        self.queue_action_quiet(s, key, delta);
        self.notify.notify_one();
    }

    /// Appends `delta` to `key`'s deltas, collapsing two consecutive deletes, and queues the key
    /// if it was not queued. The caller notifies the popper.
    fn queue_action_quiet(&self, s: &mut State<K>, key: ObjectKey, delta: Delta<K>) {
        match s.items.get_mut(&key) {
            Some(deltas) => {
                deltas.push(delta);
                dedup_deltas(deltas);
            }
            None => {
                s.items.insert(key.clone(), vec![delta]);
                s.queue.push_back(key);
            }
        }
    }

    fn check_synced(&self, s: &State<K>) {
        if s.populated && s.initial_population == 0 && !*self.synced.borrow() {
            self.synced.send_replace(true);
        }
    }
}

fn tombstone<K>(key: ObjectKey, last_known: Option<Arc<K>>) -> Delta<K> {
    Delta::Deleted(DeletedObject::Tombstone { key, last_known })
}

fn key_or_warn<K: Resource>(obj: &K) -> Option<ObjectKey> {
    match ObjectKey::from_obj(obj) {
        Ok(k) => Some(k),
        Err(e) => {
            tracing::warn!(error = %e, "dropping object without a key");
            None
        }
    }
}

/// Collapses the last two deltas when both are deletes: keep the older, unless the older is a
/// tombstone and the newer carries the observed final state. Nothing else is deduplicated.
fn dedup_deltas<K>(deltas: &mut Vec<Delta<K>>) {
    let n = deltas.len();
    if n < 2 || !deltas[n - 1].is_deleted() || !deltas[n - 2].is_deleted() {
        return;
    }
    let newer = deltas.pop();
    if let (Some(newer), Some(Delta::Deleted(DeletedObject::Tombstone { .. }))) =
        (newer, deltas.last())
    {
        deltas[n - 2] = newer;
    }
}

/// The reflector writes into the FIFO: each watch event and list page becomes deltas.
impl<K: Resource + Send + Sync> ReflectorStore<K> for DeltaFifo<K> {
    fn add(&self, obj: Arc<K>) {
        DeltaFifo::add(self, obj);
    }
    fn update(&self, obj: Arc<K>) {
        DeltaFifo::update(self, obj);
    }
    fn delete(&self, obj: Arc<K>) {
        DeltaFifo::delete(self, obj);
    }
    fn begin_replace(&self) {
        DeltaFifo::begin_replace(self);
    }
    fn replace_items(&self, page: Vec<Arc<K>>) {
        DeltaFifo::replace_items(self, page);
    }
    fn finish_replace(&self, _resource_version: &str) {
        DeltaFifo::finish_replace(self);
    }
    fn abort_replace(&self) {
        DeltaFifo::abort_replace(self);
    }
    fn resync(&self) {
        DeltaFifo::resync(self);
    }
    fn drained_to(&self, keys: usize) -> BoxFuture<'_, ()> {
        Box::pin(DeltaFifo::drained_to(self, keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::informer::{Indexers, indexer};
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    fn obj(name: &str, rv: u32) -> Arc<ConfigMap> {
        Arc::new(ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                resource_version: Some(rv.to_string()),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new(Some("ns"), name)
    }

    /// Compact rendering of deltas: `A5` = Added rv 5, `D5` = Deleted object, `T5`/`T-` = tombstone.
    fn render(deltas: &[Delta<ConfigMap>]) -> Vec<String> {
        let rv = |o: &Arc<ConfigMap>| o.metadata.resource_version.clone().unwrap();
        deltas
            .iter()
            .map(|d| match d {
                Delta::Added(o) => format!("A{}", rv(o)),
                Delta::Updated(o) => format!("U{}", rv(o)),
                Delta::Replaced(o) => format!("R{}", rv(o)),
                Delta::Sync(o) => format!("S{}", rv(o)),
                Delta::Deleted(DeletedObject::Object(o)) => format!("D{}", rv(o)),
                Delta::Deleted(DeletedObject::Tombstone { last_known, .. }) => {
                    format!("T{}", last_known.as_ref().map(rv).unwrap_or("-".into()))
                }
            })
            .collect()
    }

    async fn pop_all(f: &DeltaFifo<ConfigMap>) -> Vec<(String, Vec<String>, bool)> {
        let mut out = vec![];
        while !f.is_empty() {
            out.push(
                f.pop(|p| (p.key.to_string(), render(&p.deltas), p.is_initial_list))
                    .await
                    .unwrap(),
            );
        }
        out
    }

    #[tokio::test]
    async fn deltas_of_a_key_are_delivered_together_in_order_without_line_jumping() {
        let f = DeltaFifo::new(None);
        f.add(obj("a", 1));
        f.add(obj("b", 2));
        f.update(obj("a", 3));
        f.delete(obj("a", 4));
        assert_eq!(
            pop_all(&f).await,
            vec![
                (
                    "ns/a".into(),
                    vec!["A1".into(), "U3".into(), "D4".into()],
                    false
                ),
                ("ns/b".into(), vec!["A2".into()], false),
            ]
        );
    }

    #[tokio::test]
    async fn consecutive_deletes_collapse_keeping_the_observed_state_over_a_tombstone() {
        let f = DeltaFifo::new(None);
        f.add(obj("a", 1));
        f.delete(obj("a", 2));
        f.delete(obj("a", 3));
        assert_eq!(pop_all(&f).await[0].1, vec!["A1", "D2"]);

        f.add(obj("b", 1));
        f.replace(vec![]); // tombstone for b
        f.delete(obj("b", 5)); // observed delete replaces the tombstone
        assert_eq!(pop_all(&f).await[0].1, vec!["A1", "D5"]);
    }

    #[tokio::test]
    async fn delete_of_an_unknown_key_is_dropped() {
        let f = DeltaFifo::<ConfigMap>::new(None);
        f.delete(obj("ghost", 1));
        assert!(f.is_empty());
    }

    #[tokio::test]
    async fn replace_tombstones_queued_and_cached_keys_missing_from_the_list() {
        let (w, lister) = indexer(Indexers::<ConfigMap>::new()).unwrap();
        w.update(key("cached"), obj("cached", 7));
        w.update(key("kept"), obj("kept", 8));
        let f = DeltaFifo::new(Some(lister));
        f.add(obj("queued", 9));
        f.replace(vec![obj("kept", 10), obj("new", 11)]);
        let mut got = pop_all(&f).await;
        got.sort();
        assert_eq!(
            got,
            vec![
                ("ns/cached".into(), vec!["T7".into()], true),
                ("ns/kept".into(), vec!["R10".into()], false),
                ("ns/new".into(), vec!["R11".into()], false),
                ("ns/queued".into(), vec!["A9".into(), "T9".into()], false),
            ]
            .into_iter()
            .map(|(k, d, _): (String, Vec<String>, bool)| (k, d, false))
            .collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn first_replace_marks_initial_list_until_every_listed_key_is_popped() {
        let (_w, lister) = indexer(Indexers::<ConfigMap>::new()).unwrap();
        let f = DeltaFifo::new(Some(lister));
        assert!(!f.has_synced());
        f.replace(vec![obj("a", 1), obj("b", 2)]);
        assert!(!f.has_synced());
        let first = f.pop(|p| p.is_initial_list).await.unwrap();
        assert!(first);
        f.update(obj("c", 3)); // arrives after the list
        assert!(!f.has_synced());
        let second = f.pop(|p| p.is_initial_list).await.unwrap();
        assert!(second);
        assert!(f.has_synced());
        let third = f.pop(|p| p.is_initial_list).await.unwrap();
        assert!(!third);
        // Latched.
        f.replace(vec![obj("z", 9)]);
        assert!(f.has_synced());
    }

    #[tokio::test]
    async fn paged_replace_can_be_popped_while_pages_arrive() {
        let (w, lister) = indexer(Indexers::<ConfigMap>::new()).unwrap();
        w.update(key("old"), obj("old", 1));
        let f = DeltaFifo::new(Some(lister));
        f.begin_replace();
        f.replace_items(vec![obj("p1", 2)]);
        let first = f
            .pop(|p| (p.key.to_string(), p.is_initial_list))
            .await
            .unwrap();
        assert_eq!(first, ("ns/p1".into(), true));
        // The process loop applied p1 to the cache meanwhile; it must not be tombstoned.
        w.update(key("p1"), obj("p1", 2));
        f.replace_items(vec![obj("p2", 3)]);
        f.finish_replace();
        let mut rest = pop_all(&f).await;
        rest.sort();
        assert_eq!(
            rest,
            vec![
                ("ns/old".into(), vec!["T1".into()], true),
                ("ns/p2".into(), vec!["R3".into()], true),
            ]
        );
        assert!(f.has_synced());
    }

    #[tokio::test]
    async fn aborted_replace_queues_no_tombstones() {
        let (w, lister) = indexer(Indexers::<ConfigMap>::new()).unwrap();
        w.update(key("old"), obj("old", 1));
        let f = DeltaFifo::new(Some(lister));
        f.begin_replace();
        f.replace_items(vec![obj("p1", 2)]);
        f.abort_replace();
        f.finish_replace();
        assert_eq!(pop_all(&f).await.len(), 1);
        assert!(!f.has_synced());
    }

    #[tokio::test]
    async fn resync_skips_keys_with_queued_deltas() {
        let (w, lister) = indexer(Indexers::<ConfigMap>::new()).unwrap();
        w.update(key("a"), obj("a", 1));
        w.update(key("b"), obj("b", 2));
        let f = DeltaFifo::new(Some(lister));
        f.update(obj("b", 3));
        f.resync();
        let mut got = pop_all(&f).await;
        got.sort();
        assert_eq!(got[0].1, vec!["S1"]);
        assert_eq!(got[1].1, vec!["U3"]);
    }

    #[tokio::test]
    async fn close_wakes_a_waiting_pop_with_an_error() {
        let f = Arc::new(DeltaFifo::<ConfigMap>::new(None));
        let g = f.clone();
        let waiter = tokio::spawn(async move { g.pop(|_| ()).await });
        tokio::task::yield_now().await;
        f.close();
        assert_eq!(waiter.await.unwrap(), Err(FifoClosed));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn close_wakes_every_waiting_pop() {
        let f = Arc::new(DeltaFifo::<ConfigMap>::new(None));
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let g = f.clone();
                tokio::spawn(async move { g.pop(|_| ()).await })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        f.close();
        for w in waiters {
            let popped = tokio::time::timeout(std::time::Duration::from_secs(5), w)
                .await
                .expect("every consumer wakes on close");
            assert_eq!(popped.unwrap(), Err(FifoClosed));
        }
    }

    #[tokio::test]
    async fn deltas_share_the_callers_arc() {
        let f = DeltaFifo::new(None);
        let o = obj("a", 1);
        f.add(o.clone());
        let same = f
            .pop(|p| Arc::ptr_eq(p.deltas[0].object().unwrap(), &o))
            .await
            .unwrap();
        assert!(same);
    }
}

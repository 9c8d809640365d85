//! Shared informers: one list-watch, one cache and many handlers per resource.
//!
//! [`SharedIndexInformer`] runs a [`Reflector`] into a [`DeltaFifo`], pops it in a process loop
//! that updates the cache ([`Lister`]) and then notifies every registered handler through the
//! handler's own buffer. It is what ties the informer chain together; the
//! [`super::InformerFactory`] hands out one per (type, namespace, selectors).
//!
//! # Contract (client-go's `SharedInformer`)
//! - **Eventually consistent**: once the server is quiet and the informer is connected, the
//!   cache equals the server's list (for the selectors), and every handler has seen the last state.
//! - **Per-object order**: a handler sees a subsequence of each object's states, in order; a
//!   relist may skip intermediate states and reports vanished objects as tombstones.
//! - **Notify after cache update**: when a handler is called, the cache already holds that state.
//! - **Late handlers** get a startup batch: an `on_add(obj, true)` for every cached object, before
//!   any later notification.
//! - **One copy**: the FIFO, the cache and every handler share the same `Arc<K>` per object state.
//! - **Resync**: same-version `on_update`s go only to handlers whose resync period is due.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use kube::Resource;
use kube::api::PartialObjectMeta;
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::fifo::{Delta, DeltaFifo, Popped};
use super::handler::{Registration, ResourceEventHandler};
use super::index::{IndexError, Indexers};
use super::list_watch::{ApiListWatch, ListWatch, MetadataListWatch};
use super::options::InformerOptions;
use super::processor::{MINIMUM_RESYNC_PERIOD, Processor, determine_resync_period};
use super::reflector::{Reflector, ReflectorConfig, Transform, WatchErrorHook};
use super::store::{Indexer, Lister, Previous, indexer_with_mode};

/// Errors from configuring an informer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InformerError {
    /// The informer has stopped; it accepts no new handlers or indexers.
    #[error("the informer for {0} has stopped; create a new informer to add handlers or indexers")]
    Stopped(String),
    /// A setting that only applies before `run` was changed after it.
    #[error(
        "the informer for {0} has already started; set the transform and watch-error handler before running it"
    )]
    AlreadyStarted(String),
    /// Adding indexers failed.
    #[error(transparent)]
    Index(#[from] IndexError),
}

/// Keys the process loop handles before it wakes the handler listeners even though more are
/// queued: bounds the delay a burst adds to its first notifications.
const FLUSH_EVERY: usize = 32;

type Result<T, E = InformerError> = std::result::Result<T, E>;

type StartFn<K> = Box<
    dyn FnOnce(
            ReflectorConfig<K>,
            Arc<DeltaFifo<K>>,
            CancellationToken,
        ) -> tokio::task::JoinHandle<()>
        + Send,
>;

struct Inner<K> {
    /// For logs and errors.
    resource: String,
    options: InformerOptions,
    /// The cache's single writer; only the process loop and `add_indexers` use it.
    indexer: Indexer<K>,
    lister: Lister<K>,
    fifo: Arc<DeltaFifo<K>>,
    processor: Processor<K>,
    /// Builds and spawns the reflector; taken by the first `run`.
    start: Mutex<Option<StartFn<K>>>,
    transform: Mutex<Option<Transform<K>>>,
    /// The transform is still [`strip_managed_fields`]: list pages need not decode them at all.
    default_transform: std::sync::atomic::AtomicBool,
    watch_error_hook: Mutex<Option<WatchErrorHook>>,
    /// client-go `resyncCheckPeriod`.
    resync_check_period: Mutex<Duration>,
    started: std::sync::atomic::AtomicBool,
    stop: CancellationToken,
    stopped: CancellationToken,
}

/// A list-watch of one resource feeding one indexed cache and any number of handlers.
/// Cheap to clone; clones share everything.
///
/// ```no_run
/// # async fn example(client: kube::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use k8s_openapi::api::core::v1::Pod;
/// use kubeforge::informer::{
///     HandlerFns, Indexers, InformerOptions, LABEL_INDEX, SharedIndexInformer, label_index,
/// };
///
/// let pods = kube::Api::<Pod>::namespaced(client, "web");
/// let informer = SharedIndexInformer::new(&pods, InformerOptions::default().labels("app=shop"));
/// informer.add_indexers(Indexers::new().with(LABEL_INDEX, label_index::<Pod>))?;
/// informer.add_event_handler(
///     HandlerFns::new().on_add(|pod: std::sync::Arc<Pod>, _initial| {
///         println!("added {:?}", pod.metadata.name)
///     }),
/// )?;
/// tokio::spawn({
///     let informer = informer.clone();
///     async move { informer.run().await }
/// });
/// informer.wait_for_sync().await;
/// let lister = informer.lister();
/// println!("{} pods, {} labelled tier=web", lister.list().len(), lister.by_index(LABEL_INDEX, "tier=web")?.len());
/// informer.stop();
/// # Ok(())
/// # }
/// ```
pub struct SharedIndexInformer<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for SharedIndexInformer<K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<K> fmt::Debug for SharedIndexInformer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedIndexInformer")
            .field("resource", &self.inner.resource)
            .field("options", &self.inner.options)
            .finish()
    }
}

/// Drops `metadata.managedFields`, the default transform: nothing in a controller reads them
/// and they are about a third of a typical object's memory.
pub fn strip_managed_fields<K: Resource>(obj: &mut K) {
    obj.meta_mut().managed_fields = None;
}

impl<K> SharedIndexInformer<K>
where
    K: Resource + Clone + Serialize + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
{
    /// An informer over full objects of `K` as addressed by `api` (which fixes the namespace;
    /// `options.namespace` is ignored here).
    pub fn new(api: &kube::Api<K>, options: InformerOptions) -> Self {
        Self::from_list_watch(ApiListWatch::new(api), options)
    }
}

impl<K> SharedIndexInformer<PartialObjectMeta<K>>
where
    K: Resource + Clone + fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default,
{
    /// A metadata-only informer: the server sends, and the cache holds, only `metadata` of `K`.
    pub fn metadata(api: &kube::Api<K>, options: InformerOptions) -> Self {
        Self::from_list_watch(MetadataListWatch::new(api), options)
    }
}

impl<K> SharedIndexInformer<K>
where
    K: Resource + Clone + Serialize + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
{
    /// An informer over any [`ListWatch`] (a scripted one in tests). The cache starts with the
    /// namespace index; add more with [`add_indexers`](Self::add_indexers).
    pub fn from_list_watch<L: ListWatch<Object = K>>(lw: L, options: InformerOptions) -> Self {
        let resource = lw.describe();
        let namespaced = Indexers::new().with(
            crate::informer::NAMESPACE_INDEX,
            crate::informer::namespace_index::<K>,
        );
        let (writer, lister) = match indexer_with_mode(namespaced, options.effective_cache_mode()) {
            Ok(pair) => pair,
            Err(e) => unreachable!("a single built-in index cannot conflict: {e}"),
        };
        let fifo = Arc::new(DeltaFifo::new(Some(lister.clone())));
        let processor = Processor::new(fifo.synced_watch());
        let start: StartFn<K> = Box::new(move |config, fifo, stop| {
            let reflector = Reflector::new(lw, fifo, config);
            tokio::spawn(reflector.run(stop))
        });
        Self::assemble(resource, options, writer, lister, start, fifo, processor)
    }
}

impl<K> SharedIndexInformer<K>
where
    K: Resource + Clone + fmt::Debug + Send + Sync + 'static,
{
    fn assemble(
        resource: String,
        options: InformerOptions,
        writer: Indexer<K>,
        lister: Lister<K>,
        start: StartFn<K>,
        fifo: Arc<DeltaFifo<K>>,
        processor: Processor<K>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                resource,
                resync_check_period: Mutex::new(options.effective_resync_period()),
                options,
                indexer: writer,
                lister,
                fifo,
                processor,
                start: Mutex::new(Some(start)),
                transform: Mutex::new(Some(Arc::new(strip_managed_fields::<K>))),
                default_transform: true.into(),
                watch_error_hook: Mutex::new(None),
                started: false.into(),
                stop: CancellationToken::new(),
                stopped: CancellationToken::new(),
            }),
        }
    }

    /// Runs list-watch and the process loop until [`stop`](Self::stop) is called. A second
    /// call returns at once.
    pub async fn run(&self) {
        let Some(start) = self.inner.start.lock().take() else {
            warn!(resource = %self.inner.resource, "informer already ran; ignoring the second run");
            return;
        };
        self.inner
            .started
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let config = self.reflector_config();
        info!(resource = %self.inner.resource, streaming_list = self.inner.options.effective_streaming_list(), "informer starting");
        let reflector_stop = self.inner.stop.child_token();
        let reflector = start(config, self.inner.fifo.clone(), reflector_stop.clone());
        let inner = self.inner.clone();
        tokio::select! {
            () = self.inner.stop.cancelled() => {}
            () = async {
                // Listeners are woken once per batch: when the FIFO runs dry (so a lone event
                // is delivered at once) and every `FLUSH_EVERY` keys under sustained load.
                let mut unflushed = 0;
                while inner.fifo.pop(|p| inner.handle_deltas(p)).await.is_ok() {
                    unflushed += 1;
                    if unflushed >= FLUSH_EVERY || inner.fifo.is_empty() {
                        inner.processor.flush();
                        unflushed = 0;
                    }
                }
            } => {}
        }
        reflector_stop.cancel();
        self.inner.fifo.close();
        let _ = reflector.await;
        let threads = self.inner.processor.stop();
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        self.inner.stopped.cancel();
        info!(resource = %self.inner.resource, "informer stopped");
    }

    fn reflector_config(&self) -> ReflectorConfig<K> {
        let check = *self.inner.resync_check_period.lock();
        let weak: Weak<Inner<K>> = Arc::downgrade(&self.inner);
        let o = &self.inner.options;
        ReflectorConfig {
            selector: o.selector.clone(),
            page_size: o.page_size,
            min_watch_timeout: o.effective_min_watch_timeout(),
            streaming_list: o.effective_streaming_list(),
            backoff: o.effective_backoff(),
            resync_check_period: check,
            should_resync: Some(Arc::new(move || {
                weak.upgrade()
                    .is_some_and(|i| i.processor.should_resync(Instant::now()))
            })),
            transform: self.cached_form(self.inner.transform.lock().clone()),
            skip_managed_fields: self
                .inner
                .default_transform
                .load(std::sync::atomic::Ordering::SeqCst),
            watch_error_hook: self.inner.watch_error_hook.lock().clone(),
            ..ReflectorConfig::default()
        }
    }

    /// The transform the reflector applies: `transform`, and in a typed cache then a clone of
    /// the result. A decoded object's vectors have the spare capacity of their growth while
    /// decoding (a Pod's, 2–3 KiB); a clone's are exact, and the typed cache keeps the object for
    /// its whole life (kube-runtime's store keeps clones for the same reason). A compact cache
    /// encodes the object and drops it, so it skips the clone.
    fn cached_form(&self, transform: Option<Transform<K>>) -> Option<Transform<K>> {
        if self.inner.lister.is_compact() {
            return transform;
        }
        Some(Arc::new(move |obj: &mut K| {
            if let Some(t) = &transform {
                t(obj);
            }
            *obj = obj.clone();
        }))
    }

    /// Asks the informer to stop; [`run`](Self::run) returns once the reflector, the process
    /// loop and every handler thread have finished (handlers finish what they had buffered).
    pub fn stop(&self) {
        self.inner.stop.cancel();
    }

    /// Waits until a stopped informer's `run` has returned.
    pub async fn stopped(&self) {
        self.inner.stopped.cancelled().await;
    }

    /// Whether `stop` was called.
    pub fn is_stopped(&self) -> bool {
        self.inner.stop.is_cancelled()
    }

    /// Whether the cache holds the complete initial list (it has been popped and applied).
    pub fn has_synced(&self) -> bool {
        self.inner.fifo.has_synced()
    }

    /// Waits until [`has_synced`](Self::has_synced); returns false if the informer stopped first.
    pub async fn wait_for_sync(&self) -> bool {
        let mut rx = self.inner.fifo.synced_watch();
        tokio::select! {
            r = rx.wait_for(|s| *s) => r.is_ok(),
            () = self.inner.stop.cancelled() => self.has_synced(),
        }
    }

    /// A read handle on the cache.
    pub fn lister(&self) -> Lister<K> {
        self.inner.lister.clone()
    }

    /// Registers a handler with the informer's default resync period.
    pub fn add_event_handler(&self, handler: impl ResourceEventHandler<K>) -> Result<Registration> {
        let period = self.inner.options.effective_resync_period();
        self.add_event_handler_with_resync(handler, period)
    }

    /// Registers a handler that also receives a same-version `on_update` for every cached
    /// object every `resync_period` (raised to at least 1 s; zero: never). A handler added
    /// after start first receives `on_add(obj, true)` for everything already cached.
    pub fn add_event_handler_with_resync(
        &self,
        handler: impl ResourceEventHandler<K>,
        resync_period: Duration,
    ) -> Result<Registration> {
        if self.is_stopped() {
            return Err(InformerError::Stopped(self.inner.resource.clone()));
        }
        let requested = if resync_period > Duration::ZERO && resync_period < MINIMUM_RESYNC_PERIOD {
            warn!(?resync_period, "resync period too small; raised to 1s");
            MINIMUM_RESYNC_PERIOD
        } else {
            resync_period
        };
        let started = self.inner.started.load(std::sync::atomic::Ordering::SeqCst);
        let mut check = self.inner.resync_check_period.lock();
        if !started && requested > Duration::ZERO && requested < *check {
            *check = requested;
            self.inner.processor.set_check_period(requested);
        }
        let effective = determine_resync_period(requested, *check);
        drop(check);
        let lister = self.inner.lister.clone();
        self.inner
            .processor
            .add_with_requested(Box::new(handler), requested, effective, move || {
                if started { lister.list() } else { Vec::new() }
            })
            .ok_or_else(|| InformerError::Stopped(self.inner.resource.clone()))
    }

    /// Removes a handler; notifications it had not processed yet are dropped. Idempotent; a
    /// registration of another informer is ignored.
    pub fn remove_event_handler(&self, registration: &Registration) {
        self.inner.processor.remove(registration);
    }

    /// Adds indexes; existing objects are indexed at once.
    pub fn add_indexers(&self, indexers: Indexers<K>) -> Result<()> {
        if self.inner.stopped.is_cancelled() {
            return Err(InformerError::Stopped(self.inner.resource.clone()));
        }
        Ok(self.inner.indexer.add_indexers(indexers)?)
    }

    /// Replaces the transform applied to every object before it is cached (default:
    /// [`strip_managed_fields`]; `None` keeps objects as the server sent them). Only before `run`.
    pub fn set_transform(&self, transform: Option<Transform<K>>) -> Result<()> {
        if self.inner.started.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(InformerError::AlreadyStarted(self.inner.resource.clone()));
        }
        *self.inner.transform.lock() = transform;
        self.inner
            .default_transform
            .store(false, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Sets the hook that sees every list/watch error the informer recovers from (default:
    /// log it). Only before `run`.
    pub fn set_watch_error_handler(&self, hook: WatchErrorHook) -> Result<()> {
        if self.inner.started.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(InformerError::AlreadyStarted(self.inner.resource.clone()));
        }
        *self.inner.watch_error_hook.lock() = Some(hook);
        Ok(())
    }

    /// What this informer watches, for logs.
    pub fn resource(&self) -> &str {
        &self.inner.resource
    }
}

impl<K> Inner<K>
where
    K: Resource + Send + Sync + 'static,
{
    /// client-go `processDeltas`, under the processor lock (`blockDeltas`): apply each delta to
    /// the cache, then notify.
    fn handle_deltas(&self, popped: Popped<K>) {
        let Popped {
            key,
            deltas,
            is_initial_list,
        } = popped;
        let dispatch = self.processor.lock_batched();
        for delta in deltas {
            match delta {
                Delta::Sync(obj)
                | Delta::Replaced(obj)
                | Delta::Added(obj)
                | Delta::Updated(obj) => {
                    match self.indexer.store_object(key.clone(), obj.clone()) {
                        Some(Previous { old, unchanged }) => {
                            // A compact cache knows an unchanged object by its bytes.
                            let old_rv = old.meta().resource_version.as_deref();
                            let is_sync = unchanged
                                || (old_rv.is_some()
                                    && old_rv == obj.meta().resource_version.as_deref());
                            dispatch.update(&old, &obj, is_sync);
                        }
                        None => dispatch.add(&obj, is_initial_list),
                    }
                }
                Delta::Deleted(gone) => {
                    self.indexer.forget(&key);
                    dispatch.delete(&gone);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::informer::test_support::{Script, Shared, cm, page};
    use crate::informer::{DeletedObject, HandlerFns, InformerFactory};
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
    use kube::Client;
    use kube::api::WatchEvent;

    type Log = Arc<Mutex<Vec<String>>>;

    fn recorder(log: &Log) -> HandlerFns<ConfigMap> {
        let rv = |o: &ConfigMap| o.metadata.resource_version.clone().unwrap_or_default();
        let name = |o: &ConfigMap| o.metadata.name.clone().unwrap_or_default();
        let (a, u, d) = (log.clone(), log.clone(), log.clone());
        HandlerFns::new()
            .on_add(move |o, initial| {
                a.lock()
                    .push(format!("add {}@{} {initial}", name(&o), rv(&o)))
            })
            .on_update(move |old, new| {
                u.lock()
                    .push(format!("update {}@{}->{}", name(&new), rv(&old), rv(&new)))
            })
            .on_delete(move |gone: DeletedObject<ConfigMap>| {
                let kind = if gone.is_tombstone() {
                    "tombstone"
                } else {
                    "delete"
                };
                d.lock().push(format!("{kind} {}", gone.key().unwrap()))
            })
    }

    async fn until(what: &str, f: impl Fn() -> bool) {
        for _ in 0..2000 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("timed out waiting for {what}");
    }

    fn informer(script: Script, options: InformerOptions) -> SharedIndexInformer<ConfigMap> {
        SharedIndexInformer::from_list_watch(Shared(Arc::new(script)), options)
    }

    #[tokio::test]
    async fn handlers_see_list_then_watch_events_after_the_cache_has_them() {
        let s = Script::default();
        let mut with_mf = cm("a", 1);
        with_mf.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default()]);
        s.lists
            .lock()
            .push_back(page(vec![with_mf, cm("b", 2)], 2, None));
        s.watches.lock().push_back(Ok(vec![
            Ok(WatchEvent::Modified(cm("a", 3))),
            Ok(WatchEvent::Deleted(cm("b", 4))),
        ]));
        let inf = informer(s, InformerOptions::default());
        let log: Log = Arc::default();
        let lister = inf.lister();
        let seen_in_cache = Arc::new(Mutex::new(Vec::new()));
        let (l2, seen) = (lister.clone(), seen_in_cache.clone());
        let reg = inf.add_event_handler(recorder(&log)).unwrap();
        inf.add_event_handler(HandlerFns::new().on_update(move |_, new: Arc<ConfigMap>| {
            // Notify after cache update: the cache already holds `new` (the very same Arc).
            let cached = l2.get(Some("ns"), "a").unwrap();
            seen.lock().push(
                Arc::ptr_eq(&cached, &new)
                    || cached.metadata.resource_version != new.metadata.resource_version,
            );
        }))
        .unwrap();
        assert!(!reg.has_synced());
        let run = tokio::spawn({
            let inf = inf.clone();
            async move { inf.run().await }
        });
        assert!(inf.wait_for_sync().await);
        tokio::time::timeout(Duration::from_secs(5), reg.wait_synced())
            .await
            .unwrap();
        until("watch events", || log.lock().len() == 4).await;
        // Per key, in order (the FIFO groups a key's deltas, so keys may interleave).
        let of = |k: &str| -> Vec<String> {
            log.lock()
                .iter()
                .filter(|e| e.contains(k))
                .cloned()
                .collect()
        };
        assert_eq!(of(" a"), vec!["add a@1 true", "update a@1->3"]);
        assert_eq!(of("b"), vec!["add b@2 true", "delete ns/b"]);
        assert_eq!(
            lister.list_keys(),
            vec![crate::informer::ObjectKey::new(Some("ns"), "a")]
        );
        assert!(
            lister
                .get(Some("ns"), "a")
                .unwrap()
                .metadata
                .managed_fields
                .is_none()
        );
        until("update seen by cache checker", || {
            !seen_in_cache.lock().is_empty()
        })
        .await;
        assert!(seen_in_cache.lock().iter().all(|ok| *ok));
        inf.stop();
        run.await.unwrap();
        assert!(matches!(
            inf.add_event_handler(HandlerFns::new()),
            Err(InformerError::Stopped(_))
        ));
    }

    #[tokio::test]
    async fn a_late_handler_gets_the_cache_as_initial_adds_then_live_events() {
        let s = Script::default();
        s.lists
            .lock()
            .push_back(page(vec![cm("a", 1), cm("b", 2)], 2, None));
        let inf = informer(s, InformerOptions::default());
        let run = tokio::spawn({
            let inf = inf.clone();
            async move { inf.run().await }
        });
        assert!(inf.wait_for_sync().await);
        let log: Log = Arc::default();
        let reg = inf.add_event_handler(recorder(&log)).unwrap();
        tokio::time::timeout(Duration::from_secs(5), reg.wait_synced())
            .await
            .unwrap();
        let mut got = log.lock().clone();
        got.sort();
        assert_eq!(got, vec!["add a@1 true", "add b@2 true"]);
        inf.remove_event_handler(&reg);
        assert!(reg.is_removed());
        inf.stop();
        run.await.unwrap();
    }

    #[tokio::test]
    async fn resync_redelivers_the_cache_only_to_handlers_due_one() {
        let s = Script::default();
        s.lists.lock().push_back(page(vec![cm("a", 1)], 1, None));
        let inf = informer(s, InformerOptions::default().resync(Duration::from_secs(1)));
        let (fast, never): (Log, Log) = (Arc::default(), Arc::default());
        inf.add_event_handler_with_resync(recorder(&fast), Duration::from_millis(10))
            .unwrap();
        inf.add_event_handler_with_resync(recorder(&never), Duration::ZERO)
            .unwrap();
        let run = tokio::spawn({
            let inf = inf.clone();
            async move { inf.run().await }
        });
        // The 10 ms request is raised to the 1 s minimum.
        until("a resync", || {
            fast.lock().iter().any(|e| e == "update a@1->1")
        })
        .await;
        // Each handler has its own delivery thread: the other one's initial add may still be on
        // its way.
        until("the initial add", || !never.lock().is_empty()).await;
        assert_eq!(*never.lock(), vec!["add a@1 true".to_string()]);
        inf.stop();
        run.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_handler_whose_period_equals_the_check_period_resyncs_at_every_check() {
        let s = Script::default();
        s.lists.lock().push_back(page(vec![cm("a", 1)], 1, None));
        let inf = informer(s, InformerOptions::default().resync(Duration::from_secs(1)));
        let log: Log = Arc::default();
        inf.add_event_handler_with_resync(recorder(&log), Duration::from_secs(1))
            .unwrap();
        let run = tokio::spawn({
            let inf = inf.clone();
            async move { inf.run().await }
        });
        let resyncs = || log.lock().iter().filter(|e| *e == "update a@1->1").count();
        // When each resync is seen (polled every 5 ms), until five have been.
        let mut seen_at = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while seen_at.len() < 5 {
            assert!(Instant::now() < deadline, "only {} resyncs", seen_at.len());
            if resyncs() > seen_at.len() {
                seen_at.push(Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Due at every 1 s check: gaps of ~1 s. A check that finds the handler "not yet due"
        // makes a 2 s gap.
        let gaps: Vec<Duration> = seen_at.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().all(|g| *g < Duration::from_millis(1700)),
            "gaps between resyncs: {gaps:?}"
        );
        inf.stop();
        run.await.unwrap();
    }

    #[tokio::test]
    async fn factory_shares_by_scope_and_keeps_explicit_options_over_its_defaults() {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let client = Client::try_from(config).unwrap();
        let factory = InformerFactory::with_options(
            client,
            InformerOptions::default().resync(Duration::from_secs(30)),
        );
        let a = factory.informer::<ConfigMap>(InformerOptions::default().streaming_list(true));
        let b = factory.informer::<ConfigMap>(InformerOptions::default());
        let c = factory.informer::<ConfigMap>(InformerOptions::default().namespace("x"));
        assert!(Arc::ptr_eq(&a.inner, &b.inner));
        assert!(!Arc::ptr_eq(&a.inner, &c.inner));
        assert!(a.inner.options.effective_streaming_list());
        assert_eq!(
            a.inner.options.effective_resync_period(),
            Duration::from_secs(30)
        );
        assert_eq!(c.resource(), "/api/v1/namespaces/x/configmaps");
        // An explicit zero resync is kept, not mistaken for "unset" and replaced by the 30 s.
        let d = factory.informer::<ConfigMap>(
            InformerOptions::default()
                .namespace("y")
                .resync(Duration::ZERO),
        );
        assert_eq!(d.inner.options.effective_resync_period(), Duration::ZERO);
    }

    #[tokio::test]
    async fn transform_and_hooks_are_rejected_after_start() {
        let s = Script::default();
        let inf = informer(s, InformerOptions::default());
        inf.set_transform(None).unwrap();
        let run = tokio::spawn({
            let inf = inf.clone();
            async move { inf.run().await }
        });
        until("start", || {
            inf.inner.started.load(std::sync::atomic::Ordering::SeqCst)
        })
        .await;
        let err = inf.set_transform(None).unwrap_err();
        assert!(err.to_string().contains("already started"), "{err}");
        // A second run returns at once.
        tokio::time::timeout(Duration::from_secs(5), inf.run())
            .await
            .unwrap();
        inf.stop();
        run.await.unwrap();
    }
}

//! Lists and watches a Kubernetes resource into a [`ReflectorStore`], with error recovery.
//!
//! client-go's `Reflector.ListAndWatch` (`reflector.go`, `pager.go`) as a private state machine,
//! one fn per state. In short:
//! - **List**: pages of 500 (`limit` + `continue`), `resourceVersion="0"` on the first list so a
//!   watch cache may answer; relists use the last synced version, or `""` (a quorum read) after
//!   the server said that version is unavailable. Pages are fetched and decoded by a separate task
//!   while the previous page is being queued, and go into the store page by page.
//! - **Watch** from the list's version with bookmarks and a random 5–10 min server timeout. A
//!   normal close re-watches from the last version seen; a 410 (HTTP status or ERROR event)
//!   relists; 429 and refused connections back off and re-watch; anything else backs off and
//!   relists.
//! - **Streaming list** (optional, KEP-3157): a watch with `sendInitialEvents=true` replaces the
//!   list and completes at the `k8s.io/initial-events-end` bookmark; the same stream then keeps
//!   watching. A server that refuses it makes the reflector fall back to paginated lists.
//!
//! The reflector talks to the server only through the narrow [`ListWatch`] trait, so tests can
//! script a server; [`ApiListWatch`] and [`MetadataListWatch`] are the real ones over `kube`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use kube::Resource;
use kube::api::WatchEvent;
use kube::core::Status;
use rand::Rng;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::backoff::{Backoff, BackoffConfig};
use super::list_watch::{ListRequest, ListWatch, WatchRequest, WatchStream};
use super::options::Selector;
use super::pager::{Page, run_pager};
use super::recovery::{ErrorClass, ReflectorError, classify, classify_status, retry_after};
use crate::task::AbortOnDrop;
/// What the reflector writes into: the subset of the DeltaFifo it uses.
pub trait ReflectorStore<K>: Send + Sync {
    /// A watch `ADDED` event.
    fn add(&self, obj: Arc<K>);
    /// A watch `MODIFIED` event.
    fn update(&self, obj: Arc<K>);
    /// A watch `DELETED` event.
    fn delete(&self, obj: Arc<K>);
    /// A list (or streaming list) starts.
    fn begin_replace(&self);
    /// One page of the list.
    fn replace_items(&self, page: Vec<Arc<K>>);
    /// The list completed at `resource_version`.
    fn finish_replace(&self, resource_version: &str);
    /// The list failed part-way.
    fn abort_replace(&self);
    /// A periodic resync is due.
    fn resync(&self);
    /// Resolves once at most `keys` keys wait to be processed; a list awaits it before taking
    /// its next page (default: at once, no back-pressure).
    fn drained_to(&self, _keys: usize) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// Keys a list lets wait in the store before it takes its next page: a few pages' worth, so
/// decoding and processing overlap while the decoded backlog stays small.
const LIST_BACKLOG: usize = 1000;

/// Mutates each decoded object once, before it is shared (e.g. drop `managedFields`).
pub type Transform<K> = Arc<dyn Fn(&mut K) + Send + Sync>;
/// Called with every error the reflector recovers from.
pub type WatchErrorHook = Arc<dyn Fn(&ReflectorError) + Send + Sync>;
/// Asked every resync check period whether a resync is due.
pub type ShouldResync = Arc<dyn Fn() -> bool + Send + Sync>;

/// Reflector settings. Defaults are client-go's.
#[derive(Clone)]
pub struct ReflectorConfig<K> {
    /// Label and field selectors, sent with every list and watch.
    pub selector: Selector,
    /// Page size when the pager rules ask for pages (client-go pager default 500). `Some`
    /// always uses it (client-go `WatchListPageSize`); `None` applies the pager rules with 500.
    pub page_size: Option<u32>,
    /// Lower bound of the random watch timeout; the upper is twice this (client-go 5 min).
    pub min_watch_timeout: Duration,
    /// Use a streaming list (`sendInitialEvents`) instead of paginated lists when the server allows.
    pub streaming_list: bool,
    /// Give up on a streaming list that sent no end bookmark after this long.
    pub initial_events_timeout: Duration,
    /// Backoff between failed attempts.
    pub backoff: BackoffConfig,
    /// How often to ask `should_resync` while watching (zero: never).
    pub resync_check_period: Duration,
    /// Decides whether a resync is due; `None` means "whenever the check period elapses".
    pub should_resync: Option<ShouldResync>,
    /// Applied to every decoded object before it is wrapped and queued.
    pub transform: Option<Transform<K>>,
    /// The transform drops `metadata.managedFields`, so raw list pages
    /// ([`ListWatch::list_raw`]) skip decoding them: a third of a typical Pod's allocations,
    /// made only to be freed again.
    pub skip_managed_fields: bool,
    /// Sees every recovered error (default: log it).
    pub watch_error_hook: Option<WatchErrorHook>,
}

impl<K> Default for ReflectorConfig<K> {
    fn default() -> Self {
        Self {
            selector: Selector::default(),
            page_size: None,
            min_watch_timeout: Duration::from_secs(300),
            streaming_list: false,
            initial_events_timeout: Duration::from_secs(60),
            backoff: BackoffConfig::default(),
            resync_check_period: Duration::ZERO,
            should_resync: None,
            transform: None,
            skip_managed_fields: false,
            watch_error_hook: None,
        }
    }
}

impl<K> fmt::Debug for ReflectorConfig<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReflectorConfig")
            .field("selector", &self.selector)
            .field("page_size", &self.page_size)
            .field("min_watch_timeout", &self.min_watch_timeout)
            .field("streaming_list", &self.streaming_list)
            .field("resync_check_period", &self.resync_check_period)
            .finish_non_exhaustive()
    }
}

const DEFAULT_PAGE_SIZE: u32 = 500;
const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// Where the reflector is. Every variant is handled by one fn.
enum State<K> {
    /// Nothing synced, or the watch ended in a way that needs a fresh list.
    List,
    /// Stream the initial list through a watch with `sendInitialEvents`.
    StreamList,
    /// Open a watch from the last synced version.
    Watch,
    /// A watch is open.
    Watching {
        /// The open stream.
        stream: WatchStream<K>,
        /// When it opened (to detect very short watches).
        opened: Instant,
        /// Events seen on it.
        events: u64,
    },
    /// Wait out the backoff, then continue with `next`.
    Backoff {
        /// The state to resume.
        next: Box<State<K>>,
    },
}

impl<K> fmt::Debug for State<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::List => f.write_str("List"),
            Self::StreamList => f.write_str("StreamList"),
            Self::Watch => f.write_str("Watch"),
            Self::Watching { events, .. } => write!(f, "Watching({events} events)"),
            Self::Backoff { next } => write!(f, "Backoff(then {next:?})"),
        }
    }
}

fn resource_version<K: Resource>(obj: &K) -> Option<&str> {
    obj.meta().resource_version.as_deref()
}

/// Lists and watches one resource into a store until cancelled.
pub struct Reflector<L: ListWatch> {
    lw: Arc<L>,
    store: Arc<dyn ReflectorStore<L::Object>>,
    config: ReflectorConfig<L::Object>,
    resource: String,
    /// The version of the last list, event or bookmark applied to the store.
    last_sync_rv: String,
    /// Set when the server said `last_sync_rv` is gone or too new: the next list is a quorum read.
    rv_unavailable: bool,
    /// The first `resourceVersion=0` list came back paginated: the server has no watch cache,
    /// so keep paginating relists.
    paginated_result: bool,
    /// Cleared when the server refused a streaming list.
    streaming_list: bool,
    backoff: Backoff,
    /// The server's `Retry-After` (429 `details.retryAfterSeconds`) of the last error: the next
    /// backoff waits at least this long.
    retry_after: Option<Duration>,
}

impl<L: ListWatch> fmt::Debug for Reflector<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reflector")
            .field("resource", &self.resource)
            .field("last_sync_rv", &self.last_sync_rv)
            .finish()
    }
}

impl<L: ListWatch> Reflector<L> {
    /// A reflector from `lw` into `store`.
    pub fn new(
        lw: L,
        store: Arc<dyn ReflectorStore<L::Object>>,
        config: ReflectorConfig<L::Object>,
    ) -> Self {
        let resource = lw.describe();
        Self {
            lw: Arc::new(lw),
            store,
            streaming_list: config.streaming_list,
            backoff: Backoff::new(config.backoff.clone()),
            retry_after: None,
            config,
            resource,
            last_sync_rv: String::new(),
            rv_unavailable: false,
            paginated_result: false,
        }
    }

    /// The version of the last list, event or bookmark applied.
    pub fn last_sync_resource_version(&self) -> &str {
        &self.last_sync_rv
    }

    /// Runs until `stop` is cancelled.
    pub async fn run(mut self, stop: CancellationToken) {
        let span = info_span!("reflector", resource = %self.resource);
        async move {
            let mut state = if self.streaming_list {
                State::StreamList
            } else {
                State::List
            };
            loop {
                let step = self.step(state);
                state = tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    next = step => next,
                };
            }
            info!("reflector stopped");
        }
        .instrument(span)
        .await;
    }

    async fn step(&mut self, state: State<L::Object>) -> State<L::Object> {
        match state {
            State::List => self.list().await,
            State::StreamList => self.stream_list().await,
            State::Watch => self.watch().await,
            State::Watching {
                stream,
                opened,
                events,
            } => self.watching(stream, opened, events).await,
            State::Backoff { next } => self.wait_backoff(*next).await,
        }
    }

    fn report(&mut self, err: &ReflectorError) {
        if let ReflectorError::List { source, .. }
        | ReflectorError::Watch { source, .. }
        | ReflectorError::WatchStream { source, .. } = err
        {
            self.retry_after = retry_after(source);
        }
        match &self.config.watch_error_hook {
            Some(hook) => hook(err),
            None => {
                let expired = match err {
                    ReflectorError::List { source, .. }
                    | ReflectorError::Watch { source, .. }
                    | ReflectorError::WatchStream { source, .. } => {
                        classify(source) == ErrorClass::Expired
                    }
                    _ => false,
                };
                if expired {
                    debug!(error = %err, "reflector error");
                } else {
                    warn!(error = %err, "reflector error");
                }
            }
        }
    }

    fn relist_resource_version(&self) -> String {
        if self.rv_unavailable {
            String::new()
        } else if self.last_sync_rv.is_empty() {
            "0".into()
        } else {
            self.last_sync_rv.clone()
        }
    }

    /// client-go's pager rules for the page size of a list at `rv`.
    fn page_size(&self, rv: &str) -> Option<u32> {
        if let Some(n) = self.config.page_size {
            Some(n)
        } else if self.paginated_result || rv.is_empty() || rv == "0" {
            Some(DEFAULT_PAGE_SIZE)
        } else {
            None
        }
    }

    fn next_backoff(next: State<L::Object>) -> State<L::Object> {
        State::Backoff {
            next: Box::new(next),
        }
    }

    fn watch_timeout(&self) -> u32 {
        watch_timeout_secs(self.config.min_watch_timeout, rand::rng().random::<f64>())
    }

    /// `State::List`: a full (paged) list into the store, then watch.
    async fn list(&mut self) -> State<L::Object> {
        let mut rv = self.relist_resource_version();
        let mut retried_quorum = false;
        loop {
            let limit = self.page_size(&rv);
            let started = Instant::now();
            info!(resource_version = %rv, ?limit, "listing");
            match self.paged_list(&rv, limit).await {
                Ok((list_rv, count)) => {
                    info!(resource_version = %list_rv, objects = count, elapsed = ?started.elapsed(), "list complete");
                    self.rv_unavailable = false;
                    self.last_sync_rv = list_rv;
                    return State::Watch;
                }
                Err(source) => {
                    let class = classify(&source);
                    let err = ReflectorError::List {
                        resource: self.resource.clone(),
                        source,
                    };
                    self.report(&err);
                    if matches!(class, ErrorClass::Expired | ErrorClass::TooLargeVersion)
                        && !retried_quorum
                    {
                        info!("resource version unavailable; retrying the list as a quorum read");
                        self.rv_unavailable = true;
                        rv = String::new();
                        retried_quorum = true;
                        continue;
                    }
                    return Self::next_backoff(State::List);
                }
            }
        }
    }

    /// Runs one paged list through a pager task; returns the list's version and object count.
    async fn paged_list(
        &mut self,
        rv: &str,
        limit: Option<u32>,
    ) -> Result<(String, usize), kube::Error> {
        let (tx, mut rx) = mpsc::channel::<Result<Page<L::Object>, kube::Error>>(1);
        let base = ListRequest {
            resource_version: rv.to_string(),
            limit,
            continue_token: None,
            selector: self.config.selector.clone(),
        };
        let _pager = AbortOnDrop(tokio::spawn(
            run_pager(
                self.lw.clone(),
                base,
                self.config.transform.clone(),
                self.config.skip_managed_fields,
                tx,
            )
            .instrument(tracing::Span::current()),
        ));
        self.store.begin_replace();
        let mut count = 0;
        let mut first = true;
        while let Some(page) = rx.recv().await {
            match page {
                Ok(page) => {
                    if !page.partial {
                        if first && rv == "0" && page.continue_token.is_some() {
                            self.paginated_result = true;
                        }
                        first = false;
                    }
                    if page.restarted {
                        // The earlier pages were of an older snapshot: what they listed does not
                        // count as present in this list, or keys deleted since would never get
                        // their tombstone. Their `Replaced` deltas stay (real, older states).
                        self.store.abort_replace();
                        self.store.begin_replace();
                        count = 0;
                    }
                    count += page.items.len();
                    self.store.drained_to(LIST_BACKLOG).await;
                    self.store.replace_items(page.items);
                    if !page.partial && page.continue_token.is_none() {
                        self.store.finish_replace(&page.resource_version);
                        return Ok((page.resource_version, count));
                    }
                }
                Err(e) => {
                    self.store.abort_replace();
                    return Err(e);
                }
            }
        }
        self.store.abort_replace();
        Err(kube::Error::Service(
            "list pager ended without a last page".into(),
        ))
    }

    /// `State::StreamList`: a watch with `sendInitialEvents`, replacing the store at the
    /// initial-events-end bookmark, then the same stream keeps watching.
    async fn stream_list(&mut self) -> State<L::Object> {
        let rv = if self.rv_unavailable {
            String::new()
        } else {
            self.last_sync_rv.clone()
        };
        let req = WatchRequest {
            resource_version: rv,
            timeout_secs: self.watch_timeout(),
            allow_bookmarks: true,
            send_initial_events: true,
            selector: self.config.selector.clone(),
        };
        info!(resource_version = %req.resource_version, "starting streaming list");
        let mut stream = match self.lw.watch(&req).await {
            Ok(s) => s,
            Err(source) => return self.stream_list_failed(source),
        };
        self.store.begin_replace();
        let started = Instant::now();
        let mut count = 0usize;
        loop {
            let remaining = self
                .config
                .initial_events_timeout
                .saturating_sub(started.elapsed());
            let next = match tokio::time::timeout(remaining, stream.next()).await {
                Ok(n) => n,
                Err(_) => {
                    self.store.abort_replace();
                    self.report(&ReflectorError::InitialEventsTimeout {
                        resource: self.resource.clone(),
                        waited: self.config.initial_events_timeout,
                    });
                    self.streaming_list = false;
                    return State::List;
                }
            };
            match next {
                Some(Ok(WatchEvent::Added(o) | WatchEvent::Modified(o))) => {
                    count += 1;
                    let o = self.prepare(o);
                    self.store.replace_items(vec![o]);
                }
                Some(Ok(WatchEvent::Deleted(o))) => {
                    let o = self.prepare(o);
                    self.store.delete(o);
                }
                Some(Ok(WatchEvent::Bookmark(b))) => {
                    let end = b
                        .metadata
                        .annotations
                        .get(INITIAL_EVENTS_END)
                        .is_some_and(|v| v == "true");
                    if end {
                        self.store.finish_replace(&b.metadata.resource_version);
                        self.last_sync_rv = b.metadata.resource_version;
                        self.rv_unavailable = false;
                        info!(resource_version = %self.last_sync_rv, objects = count, elapsed = ?started.elapsed(), "streaming list complete");
                        return State::Watching {
                            stream,
                            opened: Instant::now(),
                            events: 1,
                        };
                    }
                }
                Some(Ok(WatchEvent::Error(status))) => {
                    self.store.abort_replace();
                    return self.stream_list_failed(kube::Error::Api(status));
                }
                Some(Err(source)) => {
                    self.store.abort_replace();
                    self.report(&ReflectorError::WatchStream {
                        resource: self.resource.clone(),
                        source,
                    });
                    return State::StreamList;
                }
                None => {
                    self.store.abort_replace();
                    debug!("streaming list closed before its end bookmark; starting another");
                    return State::StreamList;
                }
            }
        }
    }

    fn stream_list_failed(&mut self, source: kube::Error) -> State<L::Object> {
        let class = classify(&source);
        self.report(&ReflectorError::Watch {
            resource: self.resource.clone(),
            source,
        });
        match class {
            ErrorClass::RetrySame => Self::next_backoff(State::StreamList),
            ErrorClass::Expired | ErrorClass::TooLargeVersion => {
                self.rv_unavailable = true;
                State::StreamList
            }
            ErrorClass::Other => {
                info!("server refused the streaming list; falling back to paginated lists");
                self.streaming_list = false;
                State::List
            }
        }
    }

    /// `State::Watch`: open a watch from the last synced version.
    async fn watch(&mut self) -> State<L::Object> {
        let req = WatchRequest {
            resource_version: self.last_sync_rv.clone(),
            timeout_secs: self.watch_timeout(),
            allow_bookmarks: true,
            send_initial_events: false,
            selector: self.config.selector.clone(),
        };
        match self.lw.watch(&req).await {
            Ok(stream) => {
                info!(resource_version = %req.resource_version, timeout_secs = req.timeout_secs, "watch started");
                State::Watching {
                    stream,
                    opened: Instant::now(),
                    events: 0,
                }
            }
            Err(source) => {
                let class = classify(&source);
                self.report(&ReflectorError::Watch {
                    resource: self.resource.clone(),
                    source,
                });
                match class {
                    ErrorClass::RetrySame => Self::next_backoff(State::Watch),
                    _ => Self::next_backoff(self.relist_state()),
                }
            }
        }
    }

    fn relist_state(&self) -> State<L::Object> {
        if self.streaming_list {
            State::StreamList
        } else {
            State::List
        }
    }

    fn prepare(&self, mut obj: L::Object) -> Arc<L::Object> {
        if let Some(t) = &self.config.transform {
            t(&mut obj);
        }
        Arc::new(obj)
    }

    /// `State::Watching`: apply events until the stream ends or fails.
    async fn watching(
        &mut self,
        mut stream: WatchStream<L::Object>,
        opened: Instant,
        mut events: u64,
    ) -> State<L::Object> {
        let period = self.config.resync_check_period;
        // The resync timer restarts after each check, as client-go's (a fixed schedule would let
        // a handler whose period equals the check period be found "not yet due" by a check that
        // ran a hair earlier in its slot than the last one, and resync at twice its period).
        let mut resync = (!period.is_zero()).then(|| Box::pin(tokio::time::sleep(period)));
        loop {
            let tick = async {
                match resync.as_mut() {
                    Some(timer) => timer.as_mut().await,
                    None => std::future::pending().await,
                }
            };
            let next = tokio::select! {
                next = stream.next() => next,
                () = tick => {
                    if self.config.should_resync.as_ref().is_none_or(|f| f()) {
                        debug!("resync");
                        self.store.resync();
                    }
                    if let Some(timer) = resync.as_mut() {
                        timer.as_mut().reset(Instant::now() + period);
                    }
                    continue;
                }
            };
            let event = match next {
                Some(Ok(e)) => e,
                Some(Err(source)) => {
                    if let kube::Error::Api(status) = source {
                        return self.watch_error_event(status);
                    }
                    // A broken connection or undecodable line ends this watch like a close.
                    debug!(error = %source, "watch stream failed; re-watching");
                    return self.watch_closed(opened, events);
                }
                None => return self.watch_closed(opened, events),
            };
            events += 1;
            match event {
                WatchEvent::Added(o) => {
                    let o = self.prepare(o);
                    self.note_rv(&*o);
                    self.store.add(o);
                }
                WatchEvent::Modified(o) => {
                    let o = self.prepare(o);
                    self.note_rv(&*o);
                    self.store.update(o);
                }
                WatchEvent::Deleted(o) => {
                    let o = self.prepare(o);
                    self.note_rv(&*o);
                    self.store.delete(o);
                }
                WatchEvent::Bookmark(b) => {
                    self.last_sync_rv = b.metadata.resource_version;
                }
                WatchEvent::Error(status) => return self.watch_error_event(status),
            }
        }
    }

    fn note_rv(&mut self, obj: &L::Object) {
        if let Some(rv) = resource_version(obj) {
            self.last_sync_rv.clear();
            self.last_sync_rv.push_str(rv);
        }
    }

    fn watch_closed(&mut self, opened: Instant, events: u64) -> State<L::Object> {
        if events == 0 && opened.elapsed() < Duration::from_secs(1) {
            self.report(&ReflectorError::VeryShortWatch {
                resource: self.resource.clone(),
            });
            return Self::next_backoff(self.relist_state());
        }
        info!(events, resource_version = %self.last_sync_rv, "watch closed; re-watching");
        State::Watch
    }

    fn watch_error_event(&mut self, status: Box<Status>) -> State<L::Object> {
        let class = classify_status(&status);
        self.report(&ReflectorError::WatchStream {
            resource: self.resource.clone(),
            source: kube::Error::Api(status),
        });
        match class {
            ErrorClass::RetrySame => Self::next_backoff(State::Watch),
            ErrorClass::Expired => {
                info!(resource_version = %self.last_sync_rv, "watch version expired; relisting");
                Self::next_backoff(self.relist_state())
            }
            _ => {
                info!("watch failed; relisting");
                Self::next_backoff(self.relist_state())
            }
        }
    }

    /// `State::Backoff`: sleep, then resume.
    async fn wait_backoff(&mut self, next: State<L::Object>) -> State<L::Object> {
        let delay = self
            .backoff
            .next_delay()
            .max(self.retry_after.take().unwrap_or_default());
        info!(?delay, then = ?next, "backing off");
        tokio::time::sleep(delay).await;
        next
    }
}

/// The server-side timeout of one watch, in seconds: uniformly in `[min, 2·min)` for the
/// configured minimum, as client-go's reflector — which also treats any minimum of 5 minutes or
/// less (0 included) as 5 minutes, so a small setting never makes watches end every second.
/// `random` is in `[0, 1)`.
fn watch_timeout_secs(min_watch_timeout: Duration, random: f64) -> u32 {
    const CLIENT_GO_MIN: Duration = Duration::from_secs(300);
    let min = min_watch_timeout.max(CLIENT_GO_MIN);
    (min.as_secs_f64() * (1.0 + random)) as u32
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_minimum_watch_timeout_of_five_minutes_or_less_means_the_default_range() {
        for min in [0, 1, 60, 300] {
            for random in [0.0, 0.5, 0.999] {
                let t = watch_timeout_secs(Duration::from_secs(min), random);
                assert!((300..600).contains(&t), "min {min}s, random {random}: {t}");
            }
        }
        assert_eq!(watch_timeout_secs(Duration::from_secs(900), 0.0), 900);
        assert_eq!(watch_timeout_secs(Duration::from_secs(900), 0.5), 1350);
    }

    use super::*;
    use crate::informer::fifo::DeltaFifo;
    use crate::informer::{Indexers, indexer};
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::core::TypeMeta;
    use kube::core::watch::{Bookmark, BookmarkMeta};

    use crate::informer::test_support::{Script, Shared, cm, page};

    fn status(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Box::new(
            Status::failure("scripted", reason).with_code(code),
        ))
    }

    fn bookmark(rv: u32, end: bool) -> Result<WatchEvent<ConfigMap>, kube::Error> {
        let mut annotations = std::collections::BTreeMap::new();
        if end {
            annotations.insert(INITIAL_EVENTS_END.to_string(), "true".to_string());
        }
        Ok(WatchEvent::Bookmark(Bookmark {
            types: TypeMeta::default(),
            metadata: BookmarkMeta {
                resource_version: rv.to_string(),
                annotations,
            },
        }))
    }

    /// Records what a reflector writes, in order.
    #[derive(Default)]
    struct Recorder(parking_lot::Mutex<Vec<String>>);

    impl ReflectorStore<ConfigMap> for Recorder {
        fn add(&self, _: Arc<ConfigMap>) {
            self.0.lock().push("add".into());
        }
        fn update(&self, _: Arc<ConfigMap>) {
            self.0.lock().push("update".into());
        }
        fn delete(&self, _: Arc<ConfigMap>) {
            self.0.lock().push("delete".into());
        }
        fn begin_replace(&self) {
            self.0.lock().push("begin".into());
        }
        fn replace_items(&self, page: Vec<Arc<ConfigMap>>) {
            self.0.lock().push(format!("{} items", page.len()));
        }
        fn finish_replace(&self, resource_version: &str) {
            self.0.lock().push(format!("finish at {resource_version}"));
        }
        fn abort_replace(&self) {
            self.0.lock().push("abort".into());
        }
        fn resync(&self) {}
        fn drained_to(&self, keys: usize) -> BoxFuture<'_, ()> {
            self.0.lock().push(format!("wait for {keys}"));
            Box::pin(std::future::ready(()))
        }
    }

    #[tokio::test]
    async fn a_large_page_reaches_the_store_in_parts_each_after_the_backlog_drained() {
        let s = Script::default();
        let many: Vec<ConfigMap> = (0..1200).map(|i| cm(&format!("cm-{i}"), 1)).collect();
        s.lists.lock().push_back(page(many, 7, None));
        let store = Arc::new(Recorder::default());
        let r = Reflector::new(
            Shared(Arc::new(s)),
            store.clone(),
            ReflectorConfig::default(),
        );
        let stop = CancellationToken::new();
        let task = tokio::spawn(r.run(stop.clone()));
        for _ in 0..1000 {
            if store.0.lock().iter().any(|c| c.starts_with("finish")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        stop.cancel();
        let _ = task.await;
        let wait = format!("wait for {LIST_BACKLOG}");
        assert_eq!(
            *store.0.lock(),
            [
                "begin",
                &wait,
                "500 items",
                &wait,
                "500 items",
                &wait,
                "200 items",
                "finish at 7"
            ]
        );
    }

    struct Harness {
        script: Arc<Script>,
        fifo: Arc<DeltaFifo<ConfigMap>>,
        stop: CancellationToken,
        task: tokio::task::JoinHandle<()>,
    }

    fn start(script: Script, streaming: bool) -> Harness {
        let script = Arc::new(script);
        let (_w, lister) = indexer(Indexers::<ConfigMap>::new()).unwrap();
        let fifo = Arc::new(DeltaFifo::new(Some(lister)));
        let config = ReflectorConfig {
            streaming_list: streaming,
            backoff: BackoffConfig {
                initial: Duration::from_millis(1),
                cap: Duration::from_millis(4),
                ..BackoffConfig::default()
            },
            ..ReflectorConfig::default()
        };
        let r = Reflector::new(Shared(script.clone()), fifo.clone(), config);
        let stop = CancellationToken::new();
        let task = tokio::spawn(r.run(stop.clone()));
        Harness {
            script,
            fifo,
            stop,
            task,
        }
    }

    impl Harness {
        /// Waits until the reflector made `lists` list and `watches` watch calls (it then
        /// blocks on an exhausted script), then stops it.
        async fn settle(self, lists: usize, watches: usize) -> Self {
            for _ in 0..1000 {
                if self.script.list_reqs.lock().len() >= lists
                    && self.script.watch_reqs.lock().len() >= watches
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            // Give it a moment to (wrongly) make more calls.
            tokio::time::sleep(Duration::from_millis(30)).await;
            self.stop.cancel();
            let _ = (&mut { self.task }).await;
            Harness {
                task: tokio::spawn(async {}),
                ..self
            }
        }

        fn lists(&self) -> Vec<ListRequest> {
            self.script.list_reqs.lock().clone()
        }
        fn watches(&self) -> Vec<WatchRequest> {
            self.script.watch_reqs.lock().clone()
        }

        async fn drain(&self) -> Vec<(String, Vec<String>)> {
            let mut out = vec![];
            while !self.fifo.is_empty() {
                out.push(
                    self.fifo
                        .pop(|p| {
                            let d = p.deltas.iter().map(|d| format!("{d:?}")).collect();
                            (p.key.to_string(), d)
                        })
                        .await
                        .unwrap(),
                );
            }
            out
        }
    }

    #[tokio::test]
    async fn first_list_pages_from_rv_0_then_watches_from_the_list_version() {
        let s = Script::default();
        s.lists.lock().extend([
            page(vec![cm("a", 1)], 10, Some("tok")),
            page(vec![cm("b", 2)], 10, None),
        ]);
        let h = start(s, false).settle(2, 1).await;
        let lists = h.lists();
        assert_eq!(lists.len(), 2);
        assert_eq!(
            (
                lists[0].resource_version.as_str(),
                lists[0].limit,
                lists[0].continue_token.as_deref()
            ),
            ("0", Some(500), None)
        );
        assert_eq!(
            (
                lists[1].resource_version.as_str(),
                lists[1].continue_token.as_deref()
            ),
            ("", Some("tok"))
        );
        let w = &h.watches()[0];
        assert_eq!(w.resource_version, "10");
        assert!(w.allow_bookmarks && !w.send_initial_events);
        assert!((300..600).contains(&w.timeout_secs), "{}", w.timeout_secs);
        assert_eq!(
            h.drain().await,
            vec![
                ("ns/a".to_string(), vec!["Replaced".to_string()]),
                ("ns/b".to_string(), vec!["Replaced".to_string()])
            ]
        );
        assert!(h.fifo.has_synced());
    }

    #[tokio::test]
    async fn a_normal_close_rewatches_from_the_last_event_without_relisting() {
        let s = Script::default();
        s.lists.lock().push_back(page(vec![], 5, None));
        s.watches.lock().push_back(Ok(vec![
            Ok(WatchEvent::Added(cm("a", 6))),
            bookmark(9, false),
        ]));
        let h = start(s, false).settle(1, 2).await;
        assert_eq!(h.lists().len(), 1);
        let rvs: Vec<String> = h
            .watches()
            .into_iter()
            .map(|w| w.resource_version)
            .collect();
        assert_eq!(rvs, vec!["5", "9"]);
    }

    #[tokio::test]
    async fn an_expired_watch_relists_from_the_last_version_without_a_limit() {
        let s = Script::default();
        s.lists.lock().push_back(page(vec![cm("a", 1)], 5, None));
        s.watches.lock().push_back(Ok(vec![
            Ok(WatchEvent::Modified(cm("a", 7))),
            Ok(WatchEvent::Error(Box::new(
                Status::failure("too old resource version", "Expired").with_code(410),
            ))),
        ]));
        s.lists.lock().push_back(page(vec![], 12, None));
        let h = start(s, false).settle(2, 2).await;
        let lists = h.lists();
        assert_eq!(lists[1].resource_version, "7");
        assert_eq!(
            lists[1].limit, None,
            "a relist at a known version is served whole"
        );
        assert_eq!(h.watches()[1].resource_version, "12");
        // The relist found `a` gone: its last state comes back as a tombstone.
        let got = h.drain().await;
        assert_eq!(got[0].0, "ns/a");
        assert!(
            got[0].1.last().unwrap().starts_with("Deleted(Tombstone"),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn a_key_only_on_a_page_before_an_expired_continue_token_is_tombstoned() {
        // Page 1 (old snapshot) lists `a`; the continue token then expires and the fallback
        // full list no longer has it. The watch starts after the delete, so only a tombstone
        // can remove `a` from the cache.
        let s = Script::default();
        s.lists.lock().extend([
            page(vec![cm("a", 1)], 10, Some("tok")),
            Err(status(410, "Expired")),
            page(vec![cm("b", 12)], 13, None),
        ]);
        let h = start(s, false).settle(3, 1).await;
        let lists = h.lists();
        assert_eq!(lists.len(), 3);
        assert_eq!(
            (lists[2].continue_token.as_deref(), lists[2].limit),
            (None, None)
        );
        assert_eq!(h.watches()[0].resource_version, "13");
        let got = h.drain().await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, "ns/a");
        assert_eq!(got[0].1[0], "Replaced");
        assert!(
            got[0]
                .1
                .get(1)
                .is_some_and(|d| d.starts_with("Deleted(Tombstone")),
            "a vanished from the fallback list but got no tombstone: {got:?}"
        );
        assert_eq!(got[1], ("ns/b".to_string(), vec!["Replaced".to_string()]));
        assert!(h.fifo.has_synced());
    }

    #[tokio::test]
    async fn an_expired_list_is_retried_at_once_as_a_quorum_read() {
        let s = Script::default();
        s.lists.lock().push_back(Err(status(410, "Expired")));
        s.lists.lock().push_back(page(vec![cm("a", 1)], 8, None));
        let h = start(s, false).settle(2, 1).await;
        let lists = h.lists();
        assert_eq!(lists[0].resource_version, "0");
        assert_eq!(
            (lists[1].resource_version.as_str(), lists[1].limit),
            ("", Some(500))
        );
        assert_eq!(h.watches()[0].resource_version, "8");
    }

    #[tokio::test]
    async fn too_many_requests_on_watch_backs_off_and_rewatches_without_relisting() {
        let s = Script::default();
        s.lists.lock().push_back(page(vec![], 3, None));
        s.watches
            .lock()
            .push_back(Err(status(429, "TooManyRequests")));
        let h = start(s, false).settle(1, 2).await;
        assert_eq!(h.lists().len(), 1);
        assert_eq!(h.watches()[1].resource_version, "3");
    }

    #[tokio::test]
    async fn too_many_requests_waits_as_long_as_retry_after_says() {
        let s = Script::default();
        s.lists.lock().push_back(page(vec![], 3, None));
        let mut throttled = Status::failure("slow down", "TooManyRequests").with_code(429);
        throttled.details = Some(
            serde_json::from_value(serde_json::json!({ "retryAfterSeconds": 1 }))
                .expect("StatusDetails"),
        );
        s.watches
            .lock()
            .push_back(Err(kube::Error::Api(Box::new(throttled))));
        let started = Instant::now();
        let h = start(s, false).settle(1, 2).await;
        // The harness backs off 1–4 ms; the server asked for 1 s.
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(h.lists().len(), 1);
        assert_eq!(h.watches()[1].resource_version, "3");
    }

    #[tokio::test]
    async fn an_internal_error_event_backs_off_and_relists() {
        let s = Script::default();
        s.lists.lock().push_back(page(vec![], 3, None));
        s.watches
            .lock()
            .push_back(Ok(vec![Ok(WatchEvent::Error(Box::new(
                Status::failure("boom", "InternalError").with_code(500),
            )))]));
        s.lists.lock().push_back(page(vec![], 4, None));
        let h = start(s, false).settle(2, 2).await;
        assert_eq!(h.lists()[1].resource_version, "3");
        assert_eq!(h.watches()[1].resource_version, "4");
    }

    #[tokio::test]
    async fn a_paginated_rv0_list_keeps_paginating_relists() {
        let s = Script::default();
        s.lists
            .lock()
            .extend([page(vec![cm("a", 1)], 5, Some("t")), page(vec![], 5, None)]);
        s.watches.lock().push_back(Err(status(410, "Gone")));
        s.lists.lock().push_back(page(vec![cm("a", 1)], 6, None));
        let h = start(s, false).settle(3, 2).await;
        assert_eq!(h.lists()[2].limit, Some(500));
        assert_eq!(h.lists()[2].resource_version, "5");
    }

    #[tokio::test]
    async fn a_very_short_empty_watch_relists() {
        let s = Script::default();
        s.lists.lock().push_back(page(vec![], 3, None));
        s.watches.lock().push_back(Ok(vec![]));
        s.lists.lock().push_back(page(vec![], 4, None));
        let h = start(s, false).settle(2, 2).await;
        assert_eq!(h.lists().len(), 2);
    }

    #[tokio::test]
    async fn streaming_list_replaces_at_the_end_bookmark_and_keeps_the_stream() {
        let s = Script::default();
        s.watches.lock().push_back(Ok(vec![
            Ok(WatchEvent::Added(cm("a", 1))),
            Ok(WatchEvent::Added(cm("b", 2))),
            bookmark(5, true),
            Ok(WatchEvent::Modified(cm("a", 6))),
        ]));
        // After the stream closes normally: a plain watch from the last version.
        let h = start(s, true).settle(0, 2).await;
        assert!(h.lists().is_empty(), "no list call when streaming works");
        let w = h.watches();
        assert!(w[0].send_initial_events && w[0].resource_version.is_empty());
        assert!(!w[1].send_initial_events);
        assert_eq!(w[1].resource_version, "6");
        let got = h.drain().await;
        assert_eq!(
            got[0],
            ("ns/a".into(), vec!["Replaced".into(), "Updated".into()])
        );
        assert!(h.fifo.has_synced());
    }

    #[tokio::test]
    async fn a_refused_streaming_list_falls_back_to_paginated_lists() {
        let s = Script::default();
        s.watches.lock().push_back(Err(status(422, "Invalid")));
        s.lists.lock().push_back(page(vec![cm("a", 1)], 4, None));
        let h = start(s, true).settle(1, 2).await;
        assert_eq!(h.lists()[0].resource_version, "0");
        assert!(!h.watches()[1].send_initial_events);
        assert_eq!(h.drain().await.len(), 1);
        assert!(h.fifo.has_synced());
    }

    #[test]
    fn too_large_resource_version_is_recognised_from_message_or_cause() {
        let s =
            Status::failure("Too large resource version: 9, current: 5", "Timeout").with_code(504);
        assert_eq!(classify_status(&s), ErrorClass::TooLargeVersion);
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(
            classify(&kube::Error::Service(Box::new(io))),
            ErrorClass::RetrySame
        );
        assert_eq!(classify(&status(500, "InternalError")), ErrorClass::Other);
    }
}

//! A rate-limited, delaying, de-duplicating work queue (client-go `util/workqueue`).
//!
//! Guarantees, as in client-go:
//! - **Fair**: items are handed out in the order they were added.
//! - **Stingy**: an item added many times before it is processed is processed once.
//! - **Exclusive**: an item is never handed to two workers at once. An item added while it is
//!   being processed is marked dirty and queued again exactly once when [`WorkQueue::done`] is
//!   called for it.
//! - After [`WorkQueue::shutdown`], adds are ignored, items still queued are handed out until
//!   the queue is empty, and then [`WorkQueue::get`] returns `None`.
//!
//! The queue needs a tokio runtime for delayed adds ([`WorkQueue::add_after`]): one timer task per
//! queue sleeps on tokio time until the earliest deadline (`delaying.rs`), and stops on shutdown or
//! when the queue is dropped.

mod delaying;
mod rate_limiter;

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::manager::metrics::{InFlight, Metrics, QueueLabels};
use delaying::{Inserted, Waiting};
pub use rate_limiter::{
    FastSlow, ItemExponential, MaxOf, RateLimiter, TokenBucket, default_controller_rate_limiter,
};

/// What a queue item must be: cheap to clone, hashable, shareable across tasks.
pub trait QueueItem: Hash + Eq + Clone + Send + Sync + 'static {}
impl<T: Hash + Eq + Clone + Send + Sync + 'static> QueueItem for T {}

/// A work queue. Cheap to clone; clones share the queue.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use kubeforge::workqueue::WorkQueue;
///
/// let queue = WorkQueue::new("example");
/// queue.add("ns/a");
/// queue.add("ns/a"); // collapses into the first add
/// queue.add_after("ns/b", Duration::from_millis(10));
/// while let Some(key) = queue.get().await {
///     // … reconcile `key` …
///     queue.forget(&key); // success: reset its backoff (on failure: `add_rate_limited`)
///     queue.done(&key);
///     if key == "ns/b" {
///         queue.shutdown();
///     }
/// }
/// # }
/// ```
pub struct WorkQueue<T: QueueItem> {
    inner: Arc<Inner<T>>,
}

impl<T: QueueItem> Clone for WorkQueue<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T: QueueItem> fmt::Debug for WorkQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkQueue")
            .field("name", &self.inner.name)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

struct Inner<T: QueueItem> {
    name: String,
    state: Mutex<State<T>>,
    /// Signalled when an item is pushed onto `queue`, or on shutdown.
    item_ready: Notify,
    /// Signalled when `processing` becomes empty, or when a drain is cancelled.
    idle: Notify,
    limiter: Box<dyn RateLimiter<T>>,
    instruments: Option<Instruments>,
    /// Wakes the timer task when a delayed add has the new earliest deadline (shared with the
    /// task, which holds the queue itself only weakly).
    timer_wake: Arc<Notify>,
    /// Stops the timer task (on shutdown, or when the queue is dropped).
    delayed: CancellationToken,
}

struct State<T> {
    /// The order in which items are handed out. No duplicates; every item in `queue` is in
    /// `dirty` and not in `processing`.
    queue: VecDeque<T>,
    /// Items that need processing: everything in `queue`, plus items added again while being
    /// processed (those are pushed onto `queue` by `done`).
    dirty: HashSet<T>,
    /// Items handed out by `get` and not yet `done`, with the time they were handed out.
    processing: HashMap<T, Instant>,
    /// For each dirty item, when it was first added since it was last handed out.
    added_at: HashMap<T, Instant>,
    /// Items waiting for a delayed add. An item waits at most once: the earlier deadline wins.
    waiting: Waiting<T>,
    /// Whether the timer task that adds waiting items runs.
    timer_started: bool,
    shutting_down: bool,
    /// Set by `shutdown_with_drain`; cleared by `shutdown` to release a drainer early.
    drain: bool,
}

struct Instruments {
    depth: prometheus_client::metrics::gauge::Gauge,
    adds: prometheus_client::metrics::counter::Counter,
    queue_duration: prometheus_client::metrics::histogram::Histogram,
    work_duration: prometheus_client::metrics::histogram::Histogram,
    retries: prometheus_client::metrics::counter::Counter,
}

/// Builds a [`WorkQueue`]; see [`WorkQueue::builder`].
pub struct WorkQueueBuilder<T: QueueItem> {
    name: String,
    limiter: Option<Box<dyn RateLimiter<T>>>,
    metrics: Option<Metrics>,
}

impl<T: QueueItem> fmt::Debug for WorkQueueBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkQueueBuilder")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<T: QueueItem> WorkQueueBuilder<T> {
    /// Replaces the default limiter ([`default_controller_rate_limiter`]).
    #[must_use]
    pub fn rate_limiter(mut self, limiter: impl RateLimiter<T> + 'static) -> Self {
        self.limiter = Some(Box::new(limiter));
        self
    }

    /// Records the `workqueue_*` metrics, labelled with the queue's name, in `metrics`.
    #[must_use]
    pub fn metrics(mut self, metrics: &Metrics) -> Self {
        self.metrics = Some(metrics.clone());
        self
    }

    /// The queue.
    pub fn build(self) -> WorkQueue<T> {
        let labels = QueueLabels {
            name: self.name.clone(),
        };
        let instruments = self.metrics.as_ref().map(|m| Instruments {
            depth: m.queue.depth.get_or_create_owned(&labels),
            adds: m.queue.adds.get_or_create_owned(&labels),
            queue_duration: m.queue.queue_duration.get_or_create_owned(&labels),
            work_duration: m.queue.work_duration.get_or_create_owned(&labels),
            retries: m.queue.retries.get_or_create_owned(&labels),
        });
        let inner = Arc::new(Inner {
            name: self.name,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashMap::new(),
                added_at: HashMap::new(),
                waiting: Waiting::new(),
                timer_started: false,
                shutting_down: false,
                drain: false,
            }),
            item_ready: Notify::new(),
            idle: Notify::new(),
            limiter: self
                .limiter
                .unwrap_or_else(|| Box::new(default_controller_rate_limiter())),
            instruments,
            timer_wake: Arc::new(Notify::new()),
            delayed: CancellationToken::new(),
        });
        if let Some(metrics) = &self.metrics {
            let weak: Weak<dyn InFlight> = Arc::downgrade(&inner) as Weak<Inner<T>>;
            metrics.queue.in_flight.track(weak);
        }
        WorkQueue { inner }
    }
}

impl<T: QueueItem> InFlight for Inner<T> {
    fn name(&self) -> &str {
        &self.name
    }

    fn in_flight_ages(&self) -> Vec<Duration> {
        let now = Instant::now();
        self.state
            .lock()
            .processing
            .values()
            .map(|start| now - *start)
            .collect()
    }
}

impl<T: QueueItem> Drop for Inner<T> {
    fn drop(&mut self) {
        self.delayed.cancel();
    }
}

/// The queue's one timer: sleeps until the earliest deadline of a delayed add (or a wake-up for
/// an earlier one), adds the items that are due, and again, until the queue shuts down or is
/// dropped. Holds the queue only while adding, so an unused queue can be dropped.
async fn run_timer<T: QueueItem>(
    queue: Weak<Inner<T>>,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    loop {
        let Some(inner) = queue.upgrade() else {
            return;
        };
        let next = {
            let queue = WorkQueue { inner };
            let (due, next) = {
                let mut state = queue.inner.state.lock();
                (
                    state.waiting.pop_due(Instant::now()),
                    state.waiting.next_deadline(),
                )
            };
            for item in due {
                queue.add(item);
            }
            next
        };
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        // `wake` keeps the permit of a notify_one sent while the queue was held above.
        tokio::select! {
            () = stop.cancelled() => return,
            () = sleep => {}
            () = wake.notified() => {}
        }
    }
}

impl<T: QueueItem> WorkQueue<T> {
    /// A queue named `name` (the `name` label of its metrics) with the default rate limiter.
    pub fn new(name: impl Into<String>) -> Self {
        Self::builder(name).build()
    }

    /// Configures a queue named `name`.
    pub fn builder(name: impl Into<String>) -> WorkQueueBuilder<T> {
        WorkQueueBuilder {
            name: name.into(),
            limiter: None,
            metrics: None,
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Marks `item` as needing processing. Ignored after shutdown; a no-op if `item` is already
    /// queued; deferred until [`done`](Self::done) if `item` is being processed.
    pub fn add(&self, item: T) {
        let mut state = self.inner.state.lock();
        if state.shutting_down || state.dirty.contains(&item) {
            return;
        }
        if let Some(m) = &self.inner.instruments {
            m.adds.inc();
            m.depth.inc();
        }
        state
            .added_at
            .entry(item.clone())
            .or_insert_with(Instant::now);
        state.dirty.insert(item.clone());
        if state.processing.contains_key(&item) {
            return;
        }
        state.queue.push_back(item);
        drop(state);
        self.inner.item_ready.notify_one();
    }

    /// Waits for the next item, or returns `None` once the queue is shut down and empty.
    /// Every item returned must be passed to [`done`](Self::done) when its processing ends.
    pub async fn get(&self) -> Option<T> {
        loop {
            let notified = self.inner.item_ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.inner.state.lock();
                if let Some(item) = state.queue.pop_front() {
                    let now = Instant::now();
                    if let Some(m) = &self.inner.instruments {
                        m.depth.dec();
                        if let Some(added) = state.added_at.get(&item) {
                            m.queue_duration.observe((now - *added).as_secs_f64());
                        }
                    }
                    state.added_at.remove(&item);
                    state.dirty.remove(&item);
                    state.processing.insert(item.clone(), now);
                    let more = !state.queue.is_empty();
                    drop(state);
                    if more {
                        // Pass the baton: another waiter may take the next item.
                        self.inner.item_ready.notify_one();
                    }
                    return Some(item);
                }
                if state.shutting_down {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Ends the processing of `item`; if it was added meanwhile, queues it again.
    pub fn done(&self, item: &T) {
        let mut state = self.inner.state.lock();
        let Some(started) = state.processing.remove(item) else {
            return;
        };
        if let Some(m) = &self.inner.instruments {
            m.work_duration.observe(started.elapsed().as_secs_f64());
        }
        if state.dirty.contains(item) {
            state.queue.push_back(item.clone());
            drop(state);
            self.inner.item_ready.notify_one();
        } else if state.processing.is_empty() {
            drop(state);
            self.inner.idle.notify_waiters();
        }
    }

    /// Adds `item` after `delay` (immediately if `delay` is zero). If `item` is already waiting,
    /// the earlier deadline wins. Ignored after shutdown; pending delayed adds are dropped on
    /// shutdown.
    pub fn add_after(&self, item: T, delay: Duration) {
        if self.is_shutting_down() {
            return;
        }
        if let Some(m) = &self.inner.instruments {
            m.retries.inc();
        }
        if delay.is_zero() {
            self.add(item);
            return;
        }
        let deadline = Instant::now() + delay;
        let mut state = self.inner.state.lock();
        let inserted = state.waiting.insert(item, deadline);
        if !state.timer_started {
            state.timer_started = true;
            tokio::spawn(run_timer(
                Arc::downgrade(&self.inner),
                self.inner.timer_wake.clone(),
                self.inner.delayed.clone(),
            ));
        } else if inserted == Inserted::Earliest {
            self.inner.timer_wake.notify_one();
        }
    }

    /// Adds `item` after the delay its rate limiter assigns (one more failure of `item`).
    pub fn add_rate_limited(&self, item: T) {
        let delay = self.inner.limiter.when(&item);
        self.add_after(item, delay);
    }

    /// Resets the rate limiter's memory of `item` (call when it was processed successfully).
    pub fn forget(&self, item: &T) {
        self.inner.limiter.forget(item);
    }

    /// How often `item` has been rate-limited since it was last forgotten.
    pub fn num_requeues(&self, item: &T) -> u32 {
        self.inner.limiter.num_requeues(item)
    }

    /// Items waiting to be handed out (excludes items being processed, even if dirty).
    pub fn len(&self) -> usize {
        self.inner.state.lock().queue.len()
    }

    /// True when no item waits to be handed out.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Items currently handed out and not yet done.
    pub fn processing(&self) -> usize {
        self.inner.state.lock().processing.len()
    }

    /// True once [`shutdown`](Self::shutdown) or [`shutdown_with_drain`](Self::shutdown_with_drain)
    /// was called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.state.lock().shutting_down
    }

    /// Stops accepting adds and wakes every waiting [`get`](Self::get). Does not wait for items
    /// being processed; releases a pending [`shutdown_with_drain`](Self::shutdown_with_drain).
    pub fn shutdown(&self) {
        {
            let mut state = self.inner.state.lock();
            state.shutting_down = true;
            state.drain = false;
            state.waiting.clear();
        }
        self.inner.delayed.cancel();
        self.inner.item_ready.notify_waiters();
        self.inner.idle.notify_waiters();
    }

    /// Like [`shutdown`](Self::shutdown), then waits until every item being processed is done
    /// (or until `shutdown` is called). Items still queued are not waited for.
    pub async fn shutdown_with_drain(&self) {
        {
            let mut state = self.inner.state.lock();
            state.shutting_down = true;
            state.drain = true;
            state.waiting.clear();
        }
        self.inner.delayed.cancel();
        self.inner.item_ready.notify_waiters();
        loop {
            let idle = self.inner.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            {
                let state = self.inner.state.lock();
                if state.processing.is_empty() || !state.drain {
                    return;
                }
            }
            idle.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn queue() -> WorkQueue<&'static str> {
        WorkQueue::new("test")
    }

    #[tokio::test]
    async fn duplicates_collapse_and_order_is_fifo() {
        let q = queue();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.len(), 2);
        assert_eq!(q.get().await, Some("a"));
        assert_eq!(q.get().await, Some("b"));
        assert!(q.get().now_or_never().is_none(), "nothing left: get waits");
    }

    #[tokio::test]
    async fn item_added_while_processing_is_requeued_once_after_done() {
        let q = queue();
        q.add("a");
        let item = q.get().await.unwrap();
        q.add("a");
        q.add("a");
        assert_eq!(
            q.len(),
            0,
            "a second worker must not get an item being processed"
        );
        assert!(q.get().now_or_never().is_none());
        q.done(&item);
        assert_eq!(q.len(), 1);
        assert_eq!(q.get().await, Some("a"));
        q.done(&"a");
        assert_eq!(q.len(), 0, "re-queued exactly once");
    }

    #[tokio::test]
    async fn shutdown_hands_out_remaining_items_then_none_and_ignores_adds() {
        let q = queue();
        q.add("a");
        q.shutdown();
        q.add("b");
        assert_eq!(q.get().await, Some("a"));
        assert_eq!(q.get().await, None);
    }

    #[tokio::test]
    async fn shutdown_wakes_blocked_getters() {
        let q = queue();
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.get().await }
        });
        tokio::task::yield_now().await;
        q.shutdown();
        assert_eq!(waiter.await.unwrap(), None);
    }

    #[tokio::test]
    async fn shutdown_with_drain_waits_for_in_flight_items() {
        let q = queue();
        q.add("a");
        let item = q.get().await.unwrap();
        let drain = tokio::spawn({
            let q = q.clone();
            async move { q.shutdown_with_drain().await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !drain.is_finished(),
            "drain returned while an item was processing"
        );
        q.done(&item);
        tokio::time::timeout(Duration::from_secs(5), drain)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn shutdown_releases_a_pending_drain() {
        let q = queue();
        q.add("a");
        let _item = q.get().await.unwrap();
        let drain = tokio::spawn({
            let q = q.clone();
            async move { q.shutdown_with_drain().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        q.shutdown();
        tokio::time::timeout(Duration::from_secs(5), drain)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn delayed_adds_share_one_timer_task_which_ends_with_the_queue() {
        let runtime = tokio::runtime::Handle::current().metrics();
        let before = runtime.num_alive_tasks();
        let q: WorkQueue<u32> = WorkQueue::new("timer");
        for i in 0..1000 {
            q.add_after(i, Duration::from_secs(3600 + u64::from(i)));
        }
        q.add_after(5000, Duration::from_millis(20));
        assert_eq!(runtime.num_alive_tasks() - before, 1, "one timer task");
        // The earlier deadline woke the sleeping timer.
        let got = tokio::time::timeout(Duration::from_secs(5), q.get()).await;
        assert_eq!(got.unwrap(), Some(5000));
        // Dropping the queue ends the timer, with 1000 items still waiting.
        let inner = Arc::downgrade(&q.inner);
        drop(q);
        for _ in 0..100 {
            if runtime.num_alive_tasks() == before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(runtime.num_alive_tasks(), before, "the timer task ended");
        assert!(inner.upgrade().is_none(), "the queue was freed");
    }

    #[tokio::test]
    async fn add_after_delays_and_earlier_deadline_wins() {
        let q = queue();
        let start = Instant::now();
        q.add_after("a", Duration::from_secs(3));
        q.add_after("a", Duration::from_millis(100));
        q.add_after("a", Duration::from_secs(2));
        assert_eq!(q.len(), 0, "not added before its deadline");
        let item = tokio::time::timeout(Duration::from_secs(5), q.get())
            .await
            .unwrap();
        let waited = start.elapsed();
        assert_eq!(item, Some("a"));
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        assert!(
            waited < Duration::from_secs(2),
            "the earliest deadline won: {waited:?}"
        );
        q.done(&"a");
        tokio::time::sleep_until(start + Duration::from_millis(3300)).await;
        assert_eq!(
            q.len(),
            0,
            "the later deadlines were superseded, not added again"
        );
    }

    #[tokio::test]
    async fn shutdown_drops_delayed_items() {
        let q = queue();
        q.add_after("a", Duration::from_millis(50));
        q.shutdown();
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(q.get().await, None);
    }

    #[tokio::test]
    async fn rate_limited_adds_back_off_exponentially_until_forgotten() {
        let q: WorkQueue<&str> = WorkQueue::builder("rl")
            .rate_limiter(ItemExponential::new(
                Duration::from_millis(20),
                Duration::from_secs(1000),
            ))
            .build();
        let mut waits = Vec::new();
        for _ in 0..4 {
            let start = Instant::now();
            q.add_rate_limited("a");
            let item = q.get().await.unwrap();
            waits.push(start.elapsed());
            q.done(&item);
        }
        for (wait, expected_ms) in waits.iter().zip([20, 40, 80, 160]) {
            assert!(*wait >= Duration::from_millis(expected_ms), "{waits:?}");
        }
        assert_eq!(q.num_requeues(&"a"), 4);
        q.forget(&"a");
        assert_eq!(q.num_requeues(&"a"), 0);
    }

    fn sample(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{series} missing from:\n{text}"))
    }

    #[tokio::test]
    async fn metrics_track_depth_adds_retries_and_in_flight_work() {
        let metrics = Metrics::new();
        let q: WorkQueue<&str> = WorkQueue::builder("m").metrics(&metrics).build();
        q.add("a");
        q.add("b");
        q.add("a");
        let text = metrics.encode();
        assert_eq!(sample(&text, "workqueue_depth{name=\"m\"}"), 2.0);
        assert_eq!(sample(&text, "workqueue_adds_total{name=\"m\"}"), 2.0);
        let item = q.get().await.unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        let text = metrics.encode();
        assert_eq!(sample(&text, "workqueue_depth{name=\"m\"}"), 1.0);
        let longest = sample(
            &text,
            "workqueue_longest_running_processor_seconds{name=\"m\"}",
        );
        assert!(longest >= 0.06, "{longest}");
        q.done(&item);
        q.add_after("c", Duration::from_secs(1));
        let text = metrics.encode();
        assert_eq!(sample(&text, "workqueue_retries_total{name=\"m\"}"), 1.0);
        assert_eq!(
            sample(&text, "workqueue_work_duration_seconds_count{name=\"m\"}"),
            1.0
        );
        assert_eq!(
            sample(&text, "workqueue_queue_duration_seconds_count{name=\"m\"}"),
            1.0
        );
        assert_eq!(
            sample(&text, "workqueue_unfinished_work_seconds{name=\"m\"}"),
            0.0
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_workers_never_share_an_item() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let q: WorkQueue<u32> = WorkQueue::new("exclusive");
        let busy: Arc<Vec<AtomicUsize>> = Arc::new((0..10).map(|_| AtomicUsize::new(0)).collect());
        let overlaps = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for _ in 0..8 {
            let (q, busy, overlaps) = (q.clone(), busy.clone(), overlaps.clone());
            workers.push(tokio::spawn(async move {
                while let Some(item) = q.get().await {
                    let slot = &busy[item as usize];
                    if slot.fetch_add(1, Ordering::SeqCst) != 0 {
                        overlaps.fetch_add(1, Ordering::SeqCst);
                    }
                    tokio::task::yield_now().await;
                    slot.fetch_sub(1, Ordering::SeqCst);
                    q.done(&item);
                }
            }));
        }
        for round in 0..2000u32 {
            q.add(round % 10);
            if round % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
        q.shutdown_with_drain().await;
        for w in workers {
            w.await.unwrap();
        }
        assert_eq!(overlaps.load(Ordering::SeqCst), 0);
    }
}

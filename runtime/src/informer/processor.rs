//! The per-handler listeners and the set of them (client-go's `processorListener` and
//! `sharedProcessor`). Every registered handler gets its own listener: an unbounded buffer drained
//! by a dedicated thread that calls the handler one notification at a time, in distribution order.
//! Distribution only appends to buffers, so a slow or blocking handler delays nothing but its own
//! notifications. Fed by the shared informer's process loop, after the store is updated.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;
use tokio::time::Instant;

use super::fifo::DeletedObject;
use super::handler::{Notification, Registration, ResourceEventHandler};

/// A listener's unbounded buffer (client-go's `pendingNotifications`). Appending never blocks;
/// the listener thread is woken at the end of a dispatch batch rather than per notification, so
/// a burst costs each handler one wake-up (a futex call and a context switch) instead of one per
/// event.
struct Buffer<K> {
    state: Mutex<BufferState<K>>,
    ready: Condvar,
}

struct BufferState<K> {
    queue: VecDeque<Notification<K>>,
    /// The listener thread is waiting on `ready`.
    parked: bool,
    /// No more notifications will come: drain, then exit.
    closed: bool,
}

impl<K> Buffer<K> {
    fn new() -> Self {
        Self {
            state: Mutex::new(BufferState {
                queue: VecDeque::new(),
                parked: false,
                closed: false,
            }),
            ready: Condvar::new(),
        }
    }

    /// Wakes the listener thread if it waits and has something to do.
    fn wake(&self) {
        let s = self.state.lock();
        if s.parked && (!s.queue.is_empty() || s.closed) {
            self.ready.notify_one();
        }
    }

    fn close(&self) {
        self.state.lock().closed = true;
        self.ready.notify_one();
    }

    /// Moves everything buffered into `batch`, waiting while there is nothing; false once the
    /// buffer is closed and drained.
    fn take_all(&self, batch: &mut VecDeque<Notification<K>>) -> bool {
        let mut s = self.state.lock();
        loop {
            if !s.queue.is_empty() {
                std::mem::swap(&mut s.queue, batch);
                return true;
            }
            if s.closed {
                return false;
            }
            s.parked = true;
            self.ready.wait(&mut s);
            s.parked = false;
        }
    }
}

/// A handler's buffer and thread. Dropping it closes the buffer: the thread delivers what was
/// already buffered (unless the registration was removed) and exits.
struct Listener<K> {
    registration: Registration,
    buffer: Arc<Buffer<K>>,
    /// The period the handler asked for (before `determine_resync_period`).
    requested: Duration,
    /// The effective period; 0 = never resync.
    resync_period: Duration,
    next_resync: Instant,
    /// Whether the last `should_resync` marked this listener due: it receives same-version updates.
    syncing: bool,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<K> Drop for Listener<K> {
    fn drop(&mut self) {
        self.buffer.close();
    }
}

impl<K: Send + Sync + 'static> Listener<K> {
    fn spawn(
        handler: Box<dyn ResourceEventHandler<K>>,
        registration: Registration,
        requested: Duration,
        resync_period: Duration,
    ) -> Self {
        let buffer = Arc::new(Buffer::new());
        let reg = registration.clone();
        let rx = buffer.clone();
        let thread = std::thread::Builder::new()
            .name(format!("kubeforge-listener-{}", reg.id()))
            .spawn(move || run_listener(&*handler, &rx, &reg))
            .map_err(|e| tracing::error!(error = %e, "failed to spawn an event handler thread"))
            .ok();
        Self {
            registration,
            buffer,
            requested,
            resync_period,
            next_resync: Instant::now() + resync_period,
            syncing: false,
            thread,
        }
    }

    /// Buffers `n`; the thread sees it at the next [`Buffer::wake`] (or when it next looks).
    fn send(&self, n: Notification<K>) {
        if let Notification::Add {
            is_initial_list: true,
            ..
        } = &n
        {
            self.registration
                .state
                .pending_initial
                .fetch_add(1, Ordering::AcqRel);
        }
        if self.thread.is_none() {
            // No thread to deliver it (spawning failed); keep nothing.
            return;
        }
        self.buffer.state.lock().queue.push_back(n);
    }
}

fn run_listener<K: 'static>(
    handler: &dyn ResourceEventHandler<K>,
    buffer: &Buffer<K>,
    reg: &Registration,
) {
    let mut batch = VecDeque::new();
    while buffer.take_all(&mut batch) {
        while let Some(n) = batch.pop_front() {
            if reg.is_removed() {
                return;
            }
            let initial = matches!(
                n,
                Notification::Add {
                    is_initial_list: true,
                    ..
                }
            );
            let outcome = catch_unwind(AssertUnwindSafe(|| match n {
                Notification::Add {
                    obj,
                    is_initial_list,
                } => handler.on_add(obj, is_initial_list),
                Notification::Update { old, new } => handler.on_update(old, new),
                Notification::Delete(d) => handler.on_delete(d),
            }));
            if outcome.is_err() {
                tracing::error!(
                    registration = reg.id(),
                    "event handler panicked; the notification is skipped"
                );
            }
            if initial && reg.state.pending_initial.fetch_sub(1, Ordering::AcqRel) == 1 {
                reg.state.changed.notify_waiters();
            }
        }
    }
}

/// The set of listeners of one informer (client-go's `sharedProcessor`). Its lock is the
/// informer's `blockDeltas`: held while the process loop updates the cache and distributes, and
/// while a late handler receives its startup batch.
pub(crate) struct Processor<K> {
    listeners: Mutex<ProcessorState<K>>,
    upstream: watch::Receiver<bool>,
}

struct ProcessorState<K> {
    listeners: Vec<Listener<K>>,
    stopped: bool,
}

/// Guard proving the processor lock is held; notifications go out through it. Dropping it wakes
/// the listeners, unless it came from [`Processor::lock_batched`].
pub(crate) struct Dispatch<'a, K> {
    state: parking_lot::MutexGuard<'a, ProcessorState<K>>,
    wake_on_drop: bool,
}

impl<K> Drop for Dispatch<'_, K> {
    fn drop(&mut self) {
        if self.wake_on_drop {
            for l in &self.state.listeners {
                l.buffer.wake();
            }
        }
    }
}

impl<K: Send + Sync + 'static> Dispatch<'_, K> {
    pub(crate) fn add(&self, obj: &Arc<K>, is_initial_list: bool) {
        for l in &self.state.listeners {
            l.send(Notification::Add {
                obj: obj.clone(),
                is_initial_list,
            });
        }
    }

    /// `is_sync`: same version on both sides; only listeners due a resync get it.
    pub(crate) fn update(&self, old: &Arc<K>, new: &Arc<K>, is_sync: bool) {
        for l in &self.state.listeners {
            if is_sync && !l.syncing {
                continue;
            }
            l.send(Notification::Update {
                old: old.clone(),
                new: new.clone(),
            });
        }
    }

    pub(crate) fn delete(&self, obj: &DeletedObject<K>) {
        for l in &self.state.listeners {
            l.send(Notification::Delete(obj.clone()));
        }
    }
}

impl<K: Send + Sync + 'static> Processor<K> {
    pub(crate) fn new(upstream: watch::Receiver<bool>) -> Self {
        Self {
            listeners: Mutex::new(ProcessorState {
                listeners: Vec::new(),
                stopped: false,
            }),
            upstream,
        }
    }

    /// Locks out concurrent distribution and registration.
    #[cfg(test)]
    pub(crate) fn lock(&self) -> Dispatch<'_, K> {
        Dispatch {
            state: self.listeners.lock(),
            wake_on_drop: true,
        }
    }

    /// Like `lock`, but what is sent stays unseen by sleeping listeners until [`flush`]
    /// (the process loop flushes when the FIFO runs dry, and every few keys under load).
    ///
    /// [`flush`]: Self::flush
    pub(crate) fn lock_batched(&self) -> Dispatch<'_, K> {
        Dispatch {
            state: self.listeners.lock(),
            wake_on_drop: false,
        }
    }

    /// Wakes every listener that waits while it has notifications buffered.
    pub(crate) fn flush(&self) {
        for l in &self.listeners.lock().listeners {
            l.buffer.wake();
        }
    }

    /// Registers `handler`; `startup` is the current cache, delivered first as initial-list adds.
    /// Returns `None` when the processor has stopped.
    #[cfg(test)]
    pub(crate) fn add(
        &self,
        handler: Box<dyn ResourceEventHandler<K>>,
        resync_period: Duration,
        startup: impl FnOnce() -> Vec<Arc<K>>,
    ) -> Option<Registration> {
        self.add_with_requested(handler, resync_period, resync_period, startup)
    }

    /// [`add`](Self::add), remembering the `requested` period for later recomputation.
    pub(crate) fn add_with_requested(
        &self,
        handler: Box<dyn ResourceEventHandler<K>>,
        requested: Duration,
        resync_period: Duration,
        startup: impl FnOnce() -> Vec<Arc<K>>,
    ) -> Option<Registration> {
        let mut state = self.listeners.lock();
        if state.stopped {
            return None;
        }
        let registration = Registration::new(self.upstream.clone());
        let listener = Listener::spawn(handler, registration.clone(), requested, resync_period);
        for obj in startup() {
            listener.send(Notification::Add {
                obj,
                is_initial_list: true,
            });
        }
        listener.buffer.wake();
        state.listeners.push(listener);
        Some(registration)
    }

    /// Removes a registration; its buffered notifications are dropped. Idempotent.
    pub(crate) fn remove(&self, registration: &Registration) {
        let mut state = self.listeners.lock();
        if let Some(i) = state
            .listeners
            .iter()
            .position(|l| l.registration == *registration)
        {
            let l = state.listeners.remove(i);
            l.registration.state.removed.store(true, Ordering::Release);
        }
    }

    /// Recomputes every listener's effective period after the informer's check period changed.
    pub(crate) fn set_check_period(&self, check: Duration) {
        let mut state = self.listeners.lock();
        for l in &mut state.listeners {
            l.resync_period = determine_resync_period(l.requested, check);
            l.next_resync = Instant::now() + l.resync_period;
        }
    }

    /// Marks listeners due a resync as syncing; true if any is.
    pub(crate) fn should_resync(&self, now: Instant) -> bool {
        let mut state = self.listeners.lock();
        let mut any = false;
        for l in &mut state.listeners {
            l.syncing = !l.resync_period.is_zero() && now >= l.next_resync;
            if l.syncing {
                l.next_resync = now + l.resync_period;
                any = true;
            }
        }
        any
    }

    /// Stops accepting handlers and closes every listener after what it already buffered.
    /// Returns the threads to join.
    pub(crate) fn stop(&self) -> Vec<std::thread::JoinHandle<()>> {
        let mut state = self.listeners.lock();
        state.stopped = true;
        state
            .listeners
            .drain(..)
            .filter_map(|mut l| l.thread.take())
            .collect()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.listeners.lock().listeners.len()
    }
}

/// The effective resync period of a handler (client-go `determineResyncPeriod`): none if
/// `desired` is zero or the informer never resyncs; at least the informer's check period.
pub(crate) fn determine_resync_period(desired: Duration, check: Duration) -> Duration {
    if desired.is_zero() {
        return Duration::ZERO;
    }
    if check.is_zero() {
        tracing::warn!(
            ?desired,
            "the informer was created with resync 0 and never resyncs; the handler's resync period is ignored"
        );
        return Duration::ZERO;
    }
    desired.max(check)
}

/// The smallest allowed handler resync period (client-go `minimumResyncPeriod`).
pub const MINIMUM_RESYNC_PERIOD: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::informer::HandlerFns;
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc as std_mpsc;

    fn processor(synced: bool) -> (Processor<String>, watch::Sender<bool>) {
        let (tx, rx) = watch::channel(synced);
        (Processor::new(rx), tx)
    }

    #[test]
    fn a_blocked_handler_does_not_delay_another() {
        let (p, _tx) = processor(true);
        let (gate_tx, gate_rx) = std_mpsc::channel::<()>();
        let gate_rx = Mutex::new(gate_rx);
        let (seen_tx, seen_rx) = std_mpsc::channel::<String>();
        let seen_tx = Mutex::new(seen_tx);
        p.add(
            Box::new(HandlerFns::new().on_add(move |_o: Arc<String>, _| {
                let _ = gate_rx.lock().recv();
            })),
            Duration::ZERO,
            Vec::new,
        )
        .unwrap();
        p.add(
            Box::new(HandlerFns::new().on_add(move |o: Arc<String>, _| {
                let _ = seen_tx.lock().send((*o).clone());
            })),
            Duration::ZERO,
            Vec::new,
        )
        .unwrap();
        for i in 0..1000 {
            p.lock().add(&Arc::new(format!("o{i}")), false);
        }
        for i in 0..1000 {
            assert_eq!(
                seen_rx.recv_timeout(Duration::from_secs(10)).unwrap(),
                format!("o{i}")
            );
        }
        drop(gate_tx);
        for t in p.stop() {
            t.join().unwrap();
        }
    }

    #[tokio::test]
    async fn registration_syncs_after_upstream_and_its_initial_adds_returned() {
        let (p, up) = processor(false);
        let (release_tx, release_rx) = std_mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        let reg = p
            .add(
                Box::new(HandlerFns::new().on_add(move |_o: Arc<String>, _| {
                    let _ = release_rx.lock().recv();
                })),
                Duration::ZERO,
                || vec![Arc::new("existing".to_string())],
            )
            .unwrap();
        assert!(!reg.has_synced());
        up.send_replace(true);
        assert!(!reg.has_synced(), "the startup add has not returned yet");
        release_tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), reg.wait_synced())
            .await
            .unwrap();
        assert!(reg.has_synced());
        // Non-initial adds do not unsync it.
        p.lock().add(&Arc::new("later".into()), false);
        assert!(reg.has_synced());
        drop(release_tx);
        p.stop();
    }

    #[test]
    fn same_version_updates_reach_only_listeners_due_a_resync() {
        let (p, _tx) = processor(true);
        let counts: Vec<Arc<AtomicUsize>> = (0..2).map(|_| Arc::default()).collect();
        for (i, period) in [Duration::from_secs(1), Duration::ZERO]
            .into_iter()
            .enumerate()
        {
            let c = counts[i].clone();
            p.add(
                Box::new(HandlerFns::new().on_update(move |_: Arc<String>, _| {
                    c.fetch_add(1, Ordering::SeqCst);
                })),
                period,
                Vec::new,
            )
            .unwrap();
        }
        let o = Arc::new("x".to_string());
        assert!(!p.should_resync(Instant::now()));
        assert!(p.should_resync(Instant::now() + Duration::from_secs(2)));
        p.lock().update(&o, &o, true);
        p.lock().update(&o, &o, false);
        for t in p.stop() {
            t.join().unwrap();
        }
        assert_eq!(counts[0].load(Ordering::SeqCst), 2);
        assert_eq!(counts[1].load(Ordering::SeqCst), 1);
    }

    #[test]
    fn removed_handlers_get_nothing_more_and_removal_is_idempotent() {
        let (p, _tx) = processor(true);
        let n = Arc::new(AtomicUsize::new(0));
        let c = n.clone();
        let reg = p
            .add(
                Box::new(HandlerFns::new().on_add(move |_: Arc<String>, _| {
                    c.fetch_add(1, Ordering::SeqCst);
                })),
                Duration::ZERO,
                Vec::new,
            )
            .unwrap();
        p.remove(&reg);
        p.remove(&reg);
        assert!(reg.is_removed());
        assert_eq!(p.len(), 0);
        p.lock().add(&Arc::new("x".into()), false);
        p.stop();
        assert_eq!(n.load(Ordering::SeqCst), 0);
        assert!(
            p.add(Box::new(HandlerFns::new()), Duration::ZERO, Vec::new)
                .is_none()
        );
    }

    #[test]
    fn a_panicking_handler_keeps_receiving_later_notifications() {
        let (p, _tx) = processor(true);
        let n = Arc::new(AtomicUsize::new(0));
        let c = n.clone();
        p.add(
            Box::new(HandlerFns::new().on_add(move |o: Arc<String>, _| {
                assert_ne!(o.as_str(), "boom", "handler panics on purpose");
                c.fetch_add(1, Ordering::SeqCst);
            })),
            Duration::ZERO,
            Vec::new,
        )
        .unwrap();
        p.lock().add(&Arc::new("boom".into()), false);
        p.lock().add(&Arc::new("fine".into()), false);
        for t in p.stop() {
            t.join().unwrap();
        }
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn resync_period_rules_follow_client_go() {
        let s = Duration::from_secs;
        assert_eq!(determine_resync_period(s(0), s(10)), s(0));
        assert_eq!(determine_resync_period(s(5), s(0)), s(0));
        assert_eq!(determine_resync_period(s(5), s(10)), s(10));
        assert_eq!(determine_resync_period(s(30), s(10)), s(30));
    }
}

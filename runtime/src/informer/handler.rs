//! Event handlers: what an informer's users register ([`ResourceEventHandler`], [`HandlerFns`]) and
//! the [`Registration`] handle they get back. The last step of the informer chain: the
//! [`super::processor`] calls each handler from its own listener thread. Handlers are plain
//! synchronous methods: keep them short (map the object to a key and add it to a work queue).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use tokio::sync::{Notify, watch};

use super::fifo::DeletedObject;

/// Receives an informer's notifications. Called from the handler's own listener thread, after
/// the informer's cache reflects the change.
///
/// Per object, a handler sees a subsequence of the object's states in order: an add, then
/// updates, then a delete; after a delete the next event for that key is an add. `on_update`
/// with `old` and `new` of the same `resourceVersion` is a resync.
///
/// A panic in a handler method is caught and logged, and that one notification is skipped;
/// the handler keeps receiving later ones (client-go re-panics by default, which would take the
/// whole operator down for one bad object).
pub trait ResourceEventHandler<K>: Send + Sync + 'static {
    /// The object appeared. `is_initial_list` is true for objects of the informer's first list
    /// (and for the synthetic adds a late-registered handler receives for the existing cache).
    fn on_add(&self, obj: Arc<K>, is_initial_list: bool);
    /// The object changed from `old` to `new` (or was resynced: same version).
    fn on_update(&self, old: Arc<K>, new: Arc<K>);
    /// The object was deleted; a relist that finds it gone delivers a tombstone.
    fn on_delete(&self, obj: DeletedObject<K>);
}

type AddFn<K> = Box<dyn Fn(Arc<K>, bool) + Send + Sync>;
type UpdateFn<K> = Box<dyn Fn(Arc<K>, Arc<K>) + Send + Sync>;
type DeleteFn<K> = Box<dyn Fn(DeletedObject<K>) + Send + Sync>;

/// A handler built from closures; missing closures ignore their events.
///
/// ```
/// # use kubeforge::informer::HandlerFns;
/// # use k8s_openapi::api::core::v1::Pod;
/// let h = HandlerFns::<Pod>::new()
///     .on_add(|pod, _initial| println!("add {:?}", pod.metadata.name))
///     .on_delete(|gone| println!("delete {:?}", gone.object().map(|p| &p.metadata.name)));
/// ```
pub struct HandlerFns<K> {
    add: Option<AddFn<K>>,
    update: Option<UpdateFn<K>>,
    delete: Option<DeleteFn<K>>,
}

impl<K> Default for HandlerFns<K> {
    fn default() -> Self {
        Self {
            add: None,
            update: None,
            delete: None,
        }
    }
}

impl<K> fmt::Debug for HandlerFns<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerFns")
            .field("add", &self.add.is_some())
            .field("update", &self.update.is_some())
            .field("delete", &self.delete.is_some())
            .finish()
    }
}

impl<K> HandlerFns<K> {
    /// A handler that ignores everything until closures are set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the add closure.
    #[must_use]
    pub fn on_add(mut self, f: impl Fn(Arc<K>, bool) + Send + Sync + 'static) -> Self {
        self.add = Some(Box::new(f));
        self
    }

    /// Sets the update closure.
    #[must_use]
    pub fn on_update(mut self, f: impl Fn(Arc<K>, Arc<K>) + Send + Sync + 'static) -> Self {
        self.update = Some(Box::new(f));
        self
    }

    /// Sets the delete closure.
    #[must_use]
    pub fn on_delete(mut self, f: impl Fn(DeletedObject<K>) + Send + Sync + 'static) -> Self {
        self.delete = Some(Box::new(f));
        self
    }
}

impl<K: 'static> ResourceEventHandler<K> for HandlerFns<K> {
    fn on_add(&self, obj: Arc<K>, is_initial_list: bool) {
        if let Some(f) = &self.add {
            f(obj, is_initial_list);
        }
    }
    fn on_update(&self, old: Arc<K>, new: Arc<K>) {
        if let Some(f) = &self.update {
            f(old, new);
        }
    }
    fn on_delete(&self, obj: DeletedObject<K>) {
        if let Some(f) = &self.delete {
            f(obj);
        }
    }
}

impl<K, H: ResourceEventHandler<K> + ?Sized> ResourceEventHandler<K> for Arc<H> {
    fn on_add(&self, obj: Arc<K>, is_initial_list: bool) {
        (**self).on_add(obj, is_initial_list);
    }
    fn on_update(&self, old: Arc<K>, new: Arc<K>) {
        (**self).on_update(old, new);
    }
    fn on_delete(&self, obj: DeletedObject<K>) {
        (**self).on_delete(obj);
    }
}

/// One notification on its way to a listener.
pub(crate) enum Notification<K> {
    Add { obj: Arc<K>, is_initial_list: bool },
    Update { old: Arc<K>, new: Arc<K> },
    Delete(DeletedObject<K>),
}

static NEXT_REGISTRATION: AtomicU64 = AtomicU64::new(1);

pub(super) struct RegistrationState {
    pub(super) id: u64,
    /// Initial-list adds enqueued for this handler and not yet returned from `on_add`.
    pub(super) pending_initial: AtomicUsize,
    /// Set when the handler is removed or the informer stops.
    pub(super) removed: AtomicBool,
    /// Pinged whenever `pending_initial` drops to zero.
    pub(super) changed: Notify,
}

/// The handle of one handler registration: tells whether this handler has seen the initial
/// list, and removes it. Cheap to clone.
#[derive(Clone)]
pub struct Registration {
    pub(super) state: Arc<RegistrationState>,
    /// The informer's own synced flag.
    upstream: watch::Receiver<bool>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("id", &self.state.id)
            .field("has_synced", &self.has_synced())
            .finish()
    }
}

impl PartialEq for Registration {
    fn eq(&self, other: &Self) -> bool {
        self.state.id == other.state.id
    }
}

impl Registration {
    pub(super) fn new(upstream: watch::Receiver<bool>) -> Self {
        Self {
            state: Arc::new(RegistrationState {
                id: NEXT_REGISTRATION.fetch_add(1, Ordering::Relaxed),
                pending_initial: AtomicUsize::new(0),
                removed: AtomicBool::new(false),
                changed: Notify::new(),
            }),
            upstream,
        }
    }

    /// True once the informer has synced and this handler's `on_add` has returned for every
    /// object of the initial list (or of its late-registration batch). False before the
    /// informer runs.
    pub fn has_synced(&self) -> bool {
        *self.upstream.borrow() && self.state.pending_initial.load(Ordering::Acquire) == 0
    }

    /// Waits until [`has_synced`](Self::has_synced) is true.
    pub async fn wait_synced(&self) {
        let mut upstream = self.upstream.clone();
        loop {
            // Registered before the check, so a change between the check and the wait wakes it.
            let changed = self.state.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.has_synced() {
                return;
            }
            tokio::select! {
                () = changed => {}
                r = upstream.changed() => if r.is_err() {
                    // The informer is gone; it can never sync now.
                    std::future::pending::<()>().await;
                },
            }
        }
    }

    /// Whether the handler was removed (or the informer stopped).
    pub fn is_removed(&self) -> bool {
        self.state.removed.load(Ordering::Acquire)
    }

    pub(crate) fn id(&self) -> u64 {
        self.state.id
    }
}

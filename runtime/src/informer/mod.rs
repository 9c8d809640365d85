//! The informer chain, client-go's machinery for watching a resource into a local cache:
//!
//! ```text
//! ListWatch ──▶ Reflector ──▶ DeltaFifo ──▶ process loop ──▶ Indexer (Lister)
//! (list_watch)  (reflector,    (fifo)        (shared_informer)   (store)
//!                pager,                              │
//!                recovery)                           ▼
//!                                          listeners ──▶ handlers
//!                                          (processor)   (handler)
//! ```
//!
//! - [`ListWatch`] is the reflector's view of the API server: a list call and a watch call.
//! - The [`Reflector`] lists (page by page, through the pager) and then watches, recovering from
//!   every error by itself (410 → relist, 429 → wait as asked, anything else → back off), and
//!   writes each change into the [`DeltaFifo`].
//! - The [`SharedIndexInformer`]'s process loop pops the FIFO, updates the [`Indexer`] (read
//!   through a [`Lister`]) and then hands each change to every registered
//!   [`ResourceEventHandler`], each on its own listener thread.
//! - The [`InformerFactory`] shares one informer per (type, namespace, selectors) in a process;
//!   controllers get theirs from it.
//!
//! Controllers ([`crate::controller`](mod@crate::controller)) register handlers that turn events into work-queue keys.

mod backoff;
mod compact;
#[cfg(test)]
mod compact_props;
mod factory;
mod fifo;
mod handler;
mod index;
mod key;
mod list_watch;
mod options;
mod pager;
mod processor;
mod recovery;
mod reflector;
mod shared_informer;
mod store;
#[cfg(test)]
mod test_support;

pub use backoff::{Backoff, BackoffConfig};
pub use compact::{CacheMode, DEFAULT_HOT_OBJECTS};
pub use factory::InformerFactory;
pub use fifo::{DeletedObject, Delta, DeltaFifo, FifoClosed, Popped};
pub use handler::{HandlerFns, Registration, ResourceEventHandler};
pub use index::{
    IndexError, IndexFn, IndexFnError, IndexName, IndexValue, Indexers, LABEL_INDEX,
    LABEL_KEY_INDEX, NAMESPACE_INDEX, OWNER_UID_INDEX, label_index, label_key_index,
    namespace_index, owner_uid_index,
};
pub use key::{KeyError, ObjectKey};
pub use list_watch::{
    ApiListWatch, DecodeItems, ListRequest, ListWatch, MetadataListWatch, RawPage, WatchRequest,
    WatchStream, decode_items,
};
pub use options::{InformerOptions, Selector};
pub use pager::hide_managed_fields;
pub use processor::MINIMUM_RESYNC_PERIOD;
pub use recovery::ReflectorError;
pub use reflector::{
    Reflector, ReflectorConfig, ReflectorStore, ShouldResync, Transform, WatchErrorHook,
};
pub use shared_informer::{InformerError, SharedIndexInformer, strip_managed_fields};
pub use store::{Indexer, Lister, indexer, indexer_with_mode};

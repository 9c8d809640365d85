//! Controllers: watch a primary type and what relates to it, and reconcile primary objects by key.
//!
//! Built with a sentence-like builder on a [`Manager`](crate::manager::Manager):
//!
//! ```no_run
//! # use std::{sync::Arc, time::Duration};
//! # use k8s_openapi::api::{apps::v1::Deployment, core::v1::{ConfigMap, Secret}};
//! # use kubeforge::controller::{Action, Context, Controller, ReconcileError, Watch, predicate};
//! # use kubeforge::informer::ObjectKey;
//! async fn reconcile(cm: Arc<ConfigMap>, ctx: Context<()>) -> Result<Action, ReconcileError> {
//!     Ok(Action::requeue(Duration::from_secs(300)))
//! }
//! # async fn setup(mgr: &mut kubeforge::manager::Manager) -> Result<(), kubeforge::controller::BuildError> {
//! Controller::managed_by(mgr)
//!     .for_::<ConfigMap>(Watch::new().with_predicate(predicate::resource_version_changed()))
//!     .owns::<Secret>(Watch::new())
//!     .watches::<Deployment>(Watch::new(), |d: &Deployment| {
//!         vec![ObjectKey::new(d.metadata.namespace.as_deref(), "settings")]
//!     })
//!     .concurrency(4)
//!     .complete(reconcile, ())
//! # }
//! ```
//!
//! # Model
//! - The work unit is a primary object's key (`namespace/name`), never an event: many changes
//!   before a reconcile collapse into one, and a reconcile always reads the latest cached state.
//! - `for_` enqueues the primary's own key; `owns` enqueues the key named by a child's
//!   *controller* ownerReference (same kind and API group as the primary; see
//!   [`crate::controller::owner::set_controller_reference`]); `watches` enqueues what its mapper returns.
//! - A key is never reconciled by two workers at once (the [`WorkQueue`](crate::workqueue::WorkQueue) guarantees it), so
//!   `concurrency` only parallelises *different* keys. Default concurrency: **1**, as
//!   controller-runtime's `MaxConcurrentReconciles`.
//! - Outcomes: `Ok(Action::await_change())` forgets the key's backoff; `Ok(Action::requeue(d))`
//!   also reconciles again after `d`; a transient error requeues with per-key exponential backoff
//!   (5 ms doubling to 1000 s, overall 10 qps / burst 100); a terminal error
//!   ([`ReconcileError::terminal`]) is logged and counted but not retried until the object
//!   changes; a panic is caught, counted (`controller_runtime_reconcile_panics_total`) and retried
//!   like a transient error; an optional timeout turns a hung reconcile into a transient error.
//! - Deletions: a deleted primary is gone from the cache and is not reconciled. Cleanup that must
//!   happen before deletion uses a finalizer (see [`crate::controller::finalizer`]): the object then stays
//!   with a `deletionTimestamp` and is reconciled until the finalizer is removed.
//! - Logs: each reconcile runs in a `reconcile` tracing span carrying `controller`, `object` and
//!   `trigger` (see [`Trigger`]: the primary changed, an owned or watched object changed, a
//!   requeue, a retry, a resync), so every line the reconciler logs says what it was for and why.
//! - Indexes: [`Watch::index`] indexes a cache by a field, for mappers that look primaries up
//!   ([`Builder::primary_lister`]) and reconcilers that look related objects up
//!   ([`Context::lister`]).

mod builder;
mod enqueue;
mod reconcile;
mod runner;
mod watch;

pub mod apply;
pub mod conditions;
pub mod events;
pub mod finalizer;
pub mod owner;
pub mod predicate;
mod trigger;

pub use builder::{BuildError, Builder, Controller, DEFAULT_CONCURRENCY, NoPrimary, Primary};
pub use reconcile::{Action, CacheNotSynced, Context, NotWatched, ReconcileError};
pub use trigger::Trigger;
pub use watch::Watch;

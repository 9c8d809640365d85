//! Controllers: watch a primary type and what relates to it, and reconcile primary objects by key.
//!
//! Built with a sentence-like builder on a [`Manager`]:
//!
//! ```no_run
//! # use std::{sync::Arc, time::Duration};
//! # use k8s_openapi::api::{apps::v1::Deployment, core::v1::{ConfigMap, Secret}};
//! # use kubeforge::controller::{Action, Context, Controller, ReconcileError, Watch, predicate};
//! # use kubeforge::ObjectKey;
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
//!   [`crate::owner::set_controller_reference`]); `watches` enqueues what its mapper returns.
//! - A key is never reconciled by two workers at once (the [`WorkQueue`] guarantees it), so
//!   `concurrency` only parallelises *different* keys. Default concurrency: **1**, as
//!   controller-runtime's `MaxConcurrentReconciles`.
//! - Outcomes: `Ok(Action::await_change())` forgets the key's backoff; `Ok(Action::requeue(d))`
//!   also reconciles again after `d`; a transient error requeues with per-key exponential backoff
//!   (5 ms doubling to 1000 s, overall 10 qps / burst 100); a terminal error
//!   ([`ReconcileError::terminal`]) is logged and counted but not retried until the object
//!   changes; a panic is caught, counted (`controller_runtime_reconcile_panics_total`) and retried
//!   like a transient error; an optional timeout turns a hung reconcile into a transient error.
//! - Deletions: a deleted primary is gone from the cache and is not reconciled. Cleanup that must
//!   happen before deletion uses a finalizer (see [`crate::finalizer`]): the object then stays
//!   with a `deletionTimestamp` and is reconciled until the finalizer is removed.
//! - Logs: each reconcile runs in a `reconcile` tracing span carrying `controller`, `object` and
//!   `trigger` (see [`Trigger`]: the primary changed, an owned or watched object changed, a
//!   requeue, a retry, a resync), so every line the reconciler logs says what it was for and why.
//! - Indexes: [`Watch::index`] indexes a cache by a field, for mappers that look primaries up
//!   ([`Builder::primary_lister`]) and reconcilers that look related objects up
//!   ([`Context::lister`]).

pub mod predicate;
pub mod trigger;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use kube::{Client, Resource};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use serde::de::DeserializeOwned;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::events::{Recorder, Reporter};
use crate::fifo::DeletedObject;
use crate::handler::ResourceEventHandler;
use crate::informer::{InformerFactory, InformerOptions, SharedIndexInformer};
use crate::key::ObjectKey;
use crate::manager::{Manager, Runnable};
use crate::metrics::{ControllerLabels, ReconcileResultLabels};
pub use crate::reconcile::{Action, ReconcileError};
use crate::store::{IndexFn, IndexName, IndexValue, Indexers, Lister};
use crate::workqueue::{RateLimiter, WorkQueue, default_controller_rate_limiter};
pub use predicate::{Change, Predicate};
pub use trigger::Trigger;
use trigger::{RelationKind, Triggers};

/// Default number of concurrent reconciles per controller (controller-runtime's default).
pub const DEFAULT_CONCURRENCY: usize = 1;

/// Misuse found when the controller is built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Two controllers of one manager have the same name (metrics and logs would mix).
    #[error(
        "a controller named {0:?} is already registered with this manager; give one of them another name with `.named(..)`"
    )]
    DuplicateName(String),
    /// The name is empty.
    #[error("controller name must not be empty")]
    EmptyName,
    /// Zero workers would never reconcile.
    #[error("controller {0:?}: concurrency must be at least 1")]
    ZeroConcurrency(String),
    /// The same type is owned or watched twice with the same selectors (events would double).
    #[error(
        "controller {controller:?} watches {resource} twice with the same options; merge the two relations"
    )]
    DuplicateWatch {
        /// Controller name.
        controller: String,
        /// The resource.
        resource: String,
    },
    /// The shared informer refused the handler (it has stopped).
    #[error("controller {controller:?} could not watch {resource}: {source}")]
    Informer {
        /// Controller name.
        controller: String,
        /// The resource.
        resource: String,
        /// The informer's error.
        #[source]
        source: crate::informer::Error,
    },
}

/// What to watch of one type: selectors and an event filter.
pub struct Watch<K> {
    namespace: Option<String>,
    label_selector: Option<String>,
    field_selector: Option<String>,
    predicate: Option<Predicate<K>>,
    indexes: Vec<(IndexName, IndexFn<K>)>,
}

impl<K> fmt::Debug for Watch<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("namespace", &self.namespace)
            .field("label_selector", &self.label_selector)
            .field("field_selector", &self.field_selector)
            .field("predicate", &self.predicate.is_some())
            .field(
                "indexes",
                &self.indexes.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<K> Default for Watch<K> {
    fn default() -> Self {
        Self {
            namespace: None,
            label_selector: None,
            field_selector: None,
            predicate: None,
            indexes: Vec::new(),
        }
    }
}

impl<K: 'static> Watch<K> {
    /// Every object of the type in the controller's namespace scope, every change.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only objects in `namespace` (overrides the controller's and the manager's namespace).
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Only objects matching the label selector (e.g. `app=web,tier!=cache`).
    #[must_use]
    pub fn labels(mut self, selector: impl Into<String>) -> Self {
        self.label_selector = Some(selector.into());
        self
    }

    /// Only objects matching the field selector.
    #[must_use]
    pub fn fields(mut self, selector: impl Into<String>) -> Self {
        self.field_selector = Some(selector.into());
        self
    }

    /// Indexes the cache of `K` by a field, as controller-runtime's `IndexField`: `values` gives
    /// the values an object is found under, and [`Lister::by_index`] finds the objects under one.
    /// The index lives on the shared informer, so every controller watching `K` the same way sees
    /// it; a name already registered there is kept (the same name means the same index).
    ///
    /// The usual use is a mapper answering "which primaries reference this object": index the
    /// primary by the reference, then look the changed object up in
    /// [`Builder::primary_lister`] by its `namespace/name`.
    ///
    /// ```no_run
    /// # use kubeforge::controller::{Controller, Watch, Action, Context, ReconcileError};
    /// # use kubeforge::ObjectKey;
    /// # use k8s_openapi::api::{apps::v1::Deployment, core::v1::Secret};
    /// # async fn reconcile(_: std::sync::Arc<Deployment>, _: Context<()>) -> Result<Action, ReconcileError> { Ok(Action::await_change()) }
    /// # fn f(mgr: &mut kubeforge::manager::Manager) -> Result<(), kubeforge::controller::BuildError> {
    /// // Deployments by the Secrets their pods mount, as `namespace/name`.
    /// let by_secret = Watch::<Deployment>::new().index("secret", |d: &Deployment| {
    ///     let ns = d.metadata.namespace.clone().unwrap_or_default();
    ///     let volumes = d.spec.template.spec.as_ref().and_then(|p| p.volumes.as_ref());
    ///     volumes.into_iter().flatten()
    ///         .filter_map(|v| v.secret.as_ref()?.secret_name.as_ref())
    ///         .map(|name| format!("{ns}/{name}"))
    ///         .collect()
    /// });
    /// let builder = Controller::managed_by(mgr).for_(by_secret);
    /// let deployments = builder.primary_lister();
    /// builder
    ///     .watches(Watch::<Secret>::new(), move |secret: &Secret| {
    ///         let key = format!("{}/{}", secret.metadata.namespace.as_deref().unwrap_or_default(),
    ///                           secret.metadata.name.as_deref().unwrap_or_default());
    ///         deployments.by_index("secret", &key).unwrap_or_default().iter()
    ///             .filter_map(|d| ObjectKey::from_obj(d.as_ref()).ok())
    ///             .collect()
    ///     })
    ///     .complete(reconcile, ())
    /// # }
    /// ```
    #[must_use]
    pub fn index(
        mut self,
        name: impl Into<IndexName>,
        values: impl Fn(&K) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        let f: IndexFn<K> = Arc::new(move |obj: &K| {
            Ok(values(obj)
                .iter()
                .map(|v| IndexValue::from(v.as_str()))
                .collect())
        });
        self.indexes.push((name.into(), f));
        self
    }

    /// Only changes passing `predicate` enqueue (combined with `and` if called twice).
    #[must_use]
    pub fn with_predicate(mut self, predicate: Predicate<K>) -> Self {
        self.predicate = Some(match self.predicate.take() {
            Some(existing) => existing.and(predicate),
            None => predicate,
        });
        self
    }
}

/// What a reconcile function gets besides the object: the client, the caches, the user data.
pub struct Context<T> {
    inner: Arc<ContextInner<T>>,
}

struct ContextInner<T> {
    name: String,
    client: Client,
    recorder: Recorder,
    data: T,
    listers: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    /// For [`Context::cache`]: the shared informers, the controller's namespace scope and how
    /// long a first sync may take.
    informers: Arc<InformerFactory>,
    namespace: Option<String>,
    sync_timeout: Duration,
}

impl<T> Clone for Context<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T> fmt::Debug for Context<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("controller", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl<T> Context<T> {
    /// The client (for writes, and reads the cache does not serve).
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Publishes `events.k8s.io/v1` Events reported by this controller (repeats fold into a
    /// series).
    pub fn recorder(&self) -> &Recorder {
        &self.inner.recorder
    }

    /// The user data passed to `complete`.
    pub fn data(&self) -> &T {
        &self.inner.data
    }

    /// The controller's name.
    pub fn controller_name(&self) -> &str {
        &self.inner.name
    }

    /// The shared cache of `K`, which this controller watches (`for_`, `owns` or `watches`).
    /// With several watches of one type, the first one's cache.
    ///
    /// # Errors
    /// [`NotWatched`] when the controller does not watch `K` — a bug in the builder calls, not
    /// "not found": it names the call to add. `?` turns it into a reconcile error.
    pub fn lister<K: 'static>(&self) -> Result<Lister<K>, NotWatched> {
        self.inner
            .listers
            .get(&TypeId::of::<K>())
            .and_then(|l| l.downcast_ref::<Lister<K>>())
            .cloned()
            .ok_or_else(|| NotWatched {
                controller: self.inner.name.clone(),
                type_name: short_type_name::<K>(),
            })
    }

    /// A cache of `R` for reads, whether or not this controller watches it: its own cache when it
    /// does, otherwise the process's shared informer of `R` (in the controller's namespace scope),
    /// started on first use and kept — controller-runtime's cached client. Later reads cost no
    /// API call; changes of `R` do not trigger reconciles (use `watches` for that). The operator
    /// needs get/list/watch on `R`: declare it with [`Builder::reads`], or `rbac(...)` on the
    /// controller attribute.
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    /// # use kubeforge::controller::{Action, Context, ReconcileError};
    /// async fn reconcile(cm: Arc<ConfigMap>, ctx: Context<()>) -> Result<Action, ReconcileError> {
    ///     let secrets = ctx.cache::<Secret>().await?;
    ///     let ns = cm.metadata.namespace.as_deref();
    ///     let _creds = secrets.get(ns, "creds");
    ///     Ok(Action::await_change())
    /// }
    /// ```
    ///
    /// # Errors
    /// [`CacheNotSynced`] when the first list does not complete within the manager's
    /// `cache_sync_timeout` (most often: RBAC does not allow listing `R`).
    pub async fn cache<R>(&self) -> Result<Lister<R>, CacheNotSynced>
    where
        R: Resource + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
        R::DynamicType: Default,
    {
        if let Ok(lister) = self.lister::<R>() {
            return Ok(lister);
        }
        let options = InformerOptions {
            namespace: self.inner.namespace.clone(),
            ..InformerOptions::default()
        };
        let informer = self.inner.informers.informer::<R>(options);
        self.inner.informers.start();
        let deadline = tokio::time::Instant::now() + self.inner.sync_timeout;
        while !informer.has_synced() {
            if tokio::time::Instant::now() >= deadline {
                return Err(CacheNotSynced {
                    controller: self.inner.name.clone(),
                    resource: informer.resource().to_owned(),
                    timeout: self.inner.sync_timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(informer.lister())
    }
}

/// [`Context::cache`] started a cache that did not fill in time.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "controller {controller}: the cache of {resource} did not sync within {timeout:?}; can the \
     operator list and watch {resource}? Grant it with rbac(groups = [..], resources = [..], \
     verbs = [\"get\", \"list\", \"watch\"]) on the controller"
)]
pub struct CacheNotSynced {
    /// The controller's name.
    pub controller: String,
    /// The resource (`secrets`, `deployments.apps`).
    pub resource: String,
    /// How long it waited.
    pub timeout: Duration,
}

/// [`Context::lister`] was asked for a type the controller does not watch.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "controller {controller} has no cache of {type_name}: it does not watch that type; add \
     `.owns::<{type_name}>(Watch::new())` or `.watches::<{type_name}>(Watch::new(), mapper)` to its \
     builder (or `owns(..)` / `watches(..)` to its #[kubeforge::controller] attribute)"
)]
pub struct NotWatched {
    /// The controller's name.
    pub controller: String,
    /// The Rust type asked for, without its module path (`Secret`).
    pub type_name: String,
}

/// `k8s_openapi::v1_37::api::core::v1::secret::Secret` → `Secret` (generic arguments kept).
fn short_type_name<K>() -> String {
    let full = std::any::type_name::<K>();
    let head = full.split('<').next().unwrap_or(full);
    let base = head.rsplit("::").next().unwrap_or(head);
    format!("{base}{}", &full[head.len()..])
}

/// Marker: no primary type yet. Only [`Builder::for_`] is available.
#[derive(Debug)]
pub struct NoPrimary;

/// Marker: the primary type is `K`.
pub struct Primary<K> {
    /// The primary watch's informer options before the controller's namespace applies.
    options: Watch<K>,
}

impl<K> fmt::Debug for Primary<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Primary")
    }
}

type Mapper<C> = Arc<dyn Fn(&C) -> Vec<ObjectKey> + Send + Sync>;
type Relation = Box<
    dyn FnOnce(
            &mut Manager,
            &WorkQueue<ObjectKey>,
            &RelationScope,
        ) -> Result<RelationOut, BuildError>
        + Send,
>;
type ReconcileFn<K, T> = Arc<
    dyn Fn(Arc<K>, Context<T>) -> BoxFuture<'static, Result<Action, ReconcileError>> + Send + Sync,
>;

/// What a relation needs to know about the controller when it subscribes.
struct RelationScope {
    controller: String,
    namespace: Option<String>,
    triggers: Arc<Triggers>,
}

/// What subscribing a relation yields: its lister (for the context) and a dedup key.
struct RelationOut {
    type_id: TypeId,
    lister: Box<dyn Any + Send + Sync>,
    dedup: String,
}

/// Builds a controller; see the [module docs](self). `S` is [`NoPrimary`] until
/// [`for_`](Builder::for_) names the primary type, so a controller without one, or with two,
/// does not compile.
pub struct Builder<'m, S> {
    manager: &'m mut Manager,
    name: Option<String>,
    namespace: Option<String>,
    concurrency: usize,
    reconcile_timeout: Option<Duration>,
    rate_limiter: Option<Box<dyn RateLimiter<ObjectKey>>>,
    relations: Vec<Relation>,
    /// The RBAC rules of the relations declared so far (registered with the manager on
    /// `complete`).
    rules: Vec<k8s_openapi::api::rbac::v1::PolicyRule>,
    state: S,
}

impl<S: fmt::Debug> fmt::Debug for Builder<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("concurrency", &self.concurrency)
            .field("relations", &self.relations.len())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Entry point of the builder.
#[derive(Debug)]
pub struct Controller;

impl Controller {
    /// Starts building a controller that `manager` will run.
    pub fn managed_by(manager: &mut Manager) -> Builder<'_, NoPrimary> {
        Builder {
            manager,
            name: None,
            namespace: None,
            concurrency: DEFAULT_CONCURRENCY,
            reconcile_timeout: None,
            rate_limiter: None,
            relations: Vec::new(),
            rules: Vec::new(),
            state: NoPrimary,
        }
    }
}

/// The informer options of a watch in a controller's scope.
fn informer_options<C>(watch: &Watch<C>, scope: &RelationScope) -> InformerOptions {
    InformerOptions {
        namespace: watch.namespace.clone().or_else(|| scope.namespace.clone()),
        label_selector: watch.label_selector.clone(),
        field_selector: watch.field_selector.clone(),
        ..InformerOptions::default()
    }
}

/// Registers the watch's indexes on the shared informer, keeping those already there by name.
fn add_indexes<C>(
    informer: &SharedIndexInformer<C>,
    indexes: &[(IndexName, IndexFn<C>)],
) -> Result<(), crate::informer::Error>
where
    C: Resource + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
    C::DynamicType: Default,
{
    let present = informer.lister().index_names();
    let missing = indexes
        .iter()
        .filter(|(name, _)| !present.contains(name))
        .fold(Indexers::new(), |all, (name, f)| {
            all.with_fn(name.clone(), f.clone())
        });
    if missing.is_empty() {
        return Ok(());
    }
    informer.add_indexers(missing)
}

/// Subscribes `queue` to changes of `C`, mapped to primary keys by `mapper`.
fn subscribe<C>(
    manager: &mut Manager,
    queue: &WorkQueue<ObjectKey>,
    scope: &RelationScope,
    watch: Watch<C>,
    mapper: Mapper<C>,
    relation: RelationKind,
) -> Result<RelationOut, BuildError>
where
    C: Resource + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
    C::DynamicType: Default,
{
    let options = informer_options(&watch, scope);
    let dedup = format!(
        "{}|{:?}|{:?}|{:?}",
        std::any::type_name::<C>(),
        options.namespace,
        options.label_selector,
        options.field_selector
    );
    let informer = manager.informers().informer::<C>(options);
    let resource = informer.resource().to_owned();
    add_indexes(&informer, &watch.indexes).map_err(|source| BuildError::Informer {
        controller: scope.controller.clone(),
        resource: resource.clone(),
        source,
    })?;
    // Only effective before the informer starts; later calls keep the first hook, which records
    // into the same map.
    let _ = informer.set_watch_error_handler(manager.watch_error_hook(&resource));
    let handler = EnqueueHandler {
        queue: queue.clone(),
        mapper,
        predicate: watch.predicate,
        relation,
        kind: C::kind(&C::DynamicType::default()).into_owned(),
        triggers: scope.triggers.clone(),
    };
    let registration =
        informer
            .add_event_handler(handler)
            .map_err(|source| BuildError::Informer {
                controller: scope.controller.clone(),
                resource: resource.clone(),
                source,
            })?;
    manager.track_cache(&scope.controller, &resource, registration);
    Ok(RelationOut {
        type_id: TypeId::of::<C>(),
        lister: Box::new(informer.lister()),
        dedup,
    })
}

impl<'m> Builder<'m, NoPrimary> {
    /// The primary type: the objects this controller reconciles, by key.
    pub fn for_<K>(self, watch: Watch<K>) -> Builder<'m, Primary<K>>
    where
        K: Resource + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
        K::DynamicType: Default,
    {
        let mapper: Mapper<K> = Arc::new(|obj: &K| ObjectKey::from_obj(obj).into_iter().collect());
        let options = Watch {
            namespace: watch.namespace.clone(),
            label_selector: watch.label_selector.clone(),
            field_selector: watch.field_selector.clone(),
            predicate: None,
            indexes: watch.indexes.clone(),
        };
        let relation: Relation =
            Box::new(move |m, q, s| subscribe(m, q, s, watch, mapper, RelationKind::Primary));
        let mut relations = self.relations;
        relations.insert(0, relation);
        let mut rules = self.rules;
        rules.extend(crate::registry::primary_rules_of::<K>());
        Builder {
            manager: self.manager,
            name: self.name,
            namespace: self.namespace,
            concurrency: self.concurrency,
            reconcile_timeout: self.reconcile_timeout,
            rate_limiter: self.rate_limiter,
            relations,
            rules,
            state: Primary { options },
        }
    }
}

/// Whether `K` is cluster-scoped (its owner keys then have no namespace).
fn is_cluster_scoped<K: Resource>() -> bool {
    std::any::type_name::<K::Scope>().ends_with("ClusterResourceScope")
}

fn api_group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

impl<'m, K> Builder<'m, Primary<K>>
where
    K: Resource + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default,
{
    /// Children of the primary: a change of a `C` reconciles the primary named by its controller
    /// ownerReference (same kind and API group as `K`).
    #[must_use]
    pub fn owns<C>(mut self, watch: Watch<C>) -> Self
    where
        C: Resource + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
        C::DynamicType: Default,
    {
        let dt = K::DynamicType::default();
        let kind = K::kind(&dt).into_owned();
        let group = api_group(&K::api_version(&dt)).to_owned();
        let cluster_scoped = is_cluster_scoped::<K>();
        let mapper: Mapper<C> = Arc::new(move |child: &C| {
            let Some(owner) = crate::owner::controller_of(child) else {
                return Vec::new();
            };
            if owner.kind != kind || api_group(&owner.api_version) != group {
                return Vec::new();
            }
            let namespace = if cluster_scoped {
                None
            } else {
                child.meta().namespace.as_deref()
            };
            vec![ObjectKey::new(namespace, &owner.name)]
        });
        self.relations.push(Box::new(move |m, q, s| {
            subscribe(m, q, s, watch, mapper, RelationKind::Owned)
        }));
        self.rules.extend(crate::registry::owned_rules_of::<C>());
        self
    }

    /// Anything else: a change of a `W` reconciles the primary keys `mapper` returns.
    #[must_use]
    pub fn watches<W>(
        mut self,
        watch: Watch<W>,
        mapper: impl Fn(&W) -> Vec<ObjectKey> + Send + Sync + 'static,
    ) -> Self
    where
        W: Resource + Clone + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
        W::DynamicType: Default,
    {
        let mapper: Mapper<W> = Arc::new(mapper);
        self.relations.push(Box::new(move |m, q, s| {
            subscribe(m, q, s, watch, mapper, RelationKind::Watched)
        }));
        self.rules.extend(crate::registry::watched_rules_of::<W>());
        self
    }

    /// The cache of the primary type, as this controller will see it (the shared informer of its
    /// `for_` watch, in the controller's namespace). For [`watches`](Self::watches) mappers that
    /// look the primaries up, e.g. "which sites reference this Secret" or "every DaemonSet, when a
    /// Node changes". Call it after [`namespace`](Self::namespace), if that is set.
    ///
    /// ```no_run
    /// # use kubeforge::controller::{Controller, Watch, Action, Context, ReconcileError};
    /// # use kubeforge::ObjectKey;
    /// # use k8s_openapi::api::{apps::v1::DaemonSet, core::v1::Node};
    /// # async fn reconcile(_: std::sync::Arc<DaemonSet>, _: Context<()>) -> Result<Action, ReconcileError> { Ok(Action::await_change()) }
    /// # fn f(mgr: &mut kubeforge::manager::Manager) -> Result<(), kubeforge::controller::BuildError> {
    /// let builder = Controller::managed_by(mgr).for_::<DaemonSet>(Watch::new());
    /// let daemonsets = builder.primary_lister();
    /// builder
    ///     .watches::<Node>(Watch::new(), move |_node| {
    ///         daemonsets.list().iter().filter_map(|ds| ObjectKey::from_obj(ds.as_ref()).ok()).collect()
    ///     })
    ///     .complete(reconcile, ())
    /// # }
    /// ```
    pub fn primary_lister(&self) -> Lister<K> {
        let scope = RelationScope {
            controller: String::new(),
            namespace: self
                .namespace
                .clone()
                .or_else(|| self.manager.config().namespace.clone()),
            triggers: Arc::default(),
        };
        let options = informer_options(&self.state.options, &scope);
        let informer = self.manager.informers().informer::<K>(options);
        // The primary's indexes are there before a mapper can ask (subscribing later keeps them).
        if let Err(e) = add_indexes(&informer, &self.state.options.indexes) {
            tracing::warn!(error = %e, "cannot index the primary's cache; index lookups will fail");
        }
        informer.lister()
    }

    /// Declares that the reconciler reads `R` through [`Context::cache`] without watching it:
    /// adds get/list/watch on `R` to the operator's RBAC. Nothing is watched until the first read.
    #[must_use]
    pub fn reads<R>(mut self) -> Self
    where
        R: Resource,
        R::DynamicType: Default,
    {
        self.rules.extend(crate::registry::watched_rules_of::<R>());
        self
    }

    /// The controller's name (metrics label, logs, queue name). Default: the primary's kind,
    /// lower-cased.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Watch only `namespace` (for every relation without its own namespace).
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// How many different keys may reconcile at once. Default [`DEFAULT_CONCURRENCY`] (1).
    #[must_use]
    pub fn concurrency(mut self, workers: usize) -> Self {
        self.concurrency = workers;
        self
    }

    /// Fail (transiently) a reconcile that runs longer than `timeout`. Default: no timeout.
    #[must_use]
    pub fn reconcile_timeout(mut self, timeout: Duration) -> Self {
        self.reconcile_timeout = Some(timeout);
        self
    }

    /// Replaces the error backoff (default: [`default_controller_rate_limiter`]).
    #[must_use]
    pub fn rate_limiter(mut self, limiter: impl RateLimiter<ObjectKey> + 'static) -> Self {
        self.rate_limiter = Some(Box::new(limiter));
        self
    }

    /// Builds the controller with `reconcile` and the user `data` its [`Context`] carries, and
    /// adds it to the manager.
    ///
    /// # Errors
    /// A duplicate or empty name, zero concurrency, a relation declared twice, or a stopped
    /// informer.
    pub fn complete<T, F, Fut, E>(self, reconcile: F, data: T) -> Result<(), BuildError>
    where
        T: Send + Sync + 'static,
        F: Fn(Arc<K>, Context<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
        E: Into<ReconcileError> + 'static,
    {
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| K::kind(&K::DynamicType::default()).to_lowercase());
        if name.is_empty() {
            return Err(BuildError::EmptyName);
        }
        if self.concurrency == 0 {
            return Err(BuildError::ZeroConcurrency(name));
        }
        if !self.manager.claim_controller_name(&name) {
            return Err(BuildError::DuplicateName(name));
        }
        self.manager.add_rbac(self.rules);
        let metrics = self.manager.metrics().clone();
        let limiter = self
            .rate_limiter
            .unwrap_or_else(|| Box::new(default_controller_rate_limiter()));
        let queue = WorkQueue::builder(name.clone())
            .rate_limiter(BoxedLimiter(limiter))
            .metrics(&metrics)
            .build();
        let triggers: Arc<Triggers> = Arc::default();
        let scope = RelationScope {
            controller: name.clone(),
            namespace: self
                .namespace
                .clone()
                .or_else(|| self.manager.config().namespace.clone()),
            triggers: triggers.clone(),
        };
        let mut listers: HashMap<TypeId, Box<dyn Any + Send + Sync>> = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        let mut primary: Option<Lister<K>> = None;
        for relation in self.relations {
            let out = relation(self.manager, &queue, &scope)?;
            if !seen.insert(out.dedup.clone()) {
                return Err(BuildError::DuplicateWatch {
                    controller: name,
                    resource: out.dedup,
                });
            }
            if primary.is_none() {
                primary = out.lister.downcast_ref::<Lister<K>>().cloned();
            }
            listers.entry(out.type_id).or_insert(out.lister);
        }
        let Some(primary) = primary else {
            unreachable!("the typestate guarantees `for_` added the primary relation first");
        };
        let reconcile: ReconcileFn<K, T> = Arc::new(move |obj, ctx| {
            let fut = reconcile(obj, ctx);
            Box::pin(async move { fut.await.map_err(Into::into) })
        });
        let labels = ControllerLabels {
            controller: name.clone(),
        };
        let m = &metrics.controller;
        let result = |r: &str| {
            m.reconcile_total
                .get_or_create_owned(&ReconcileResultLabels {
                    controller: name.clone(),
                    result: r.to_owned(),
                })
        };
        let instruments = Instruments {
            success: result("success"),
            error: result("error"),
            requeue_after: result("requeue_after"),
            errors: m.reconcile_errors.get_or_create_owned(&labels),
            panics: m.reconcile_panics.get_or_create_owned(&labels),
            time: m.reconcile_time.get_or_create_owned(&labels),
            active: m.active_workers.get_or_create_owned(&labels),
            max_concurrent: m.max_concurrent.get_or_create_owned(&labels),
        };
        let context = Context {
            inner: Arc::new(ContextInner {
                name: name.clone(),
                client: self.manager.client().clone(),
                recorder: Recorder::new(self.manager.client().clone(), Reporter::new(name.clone())),
                data,
                listers,
                informers: self.manager.informers().clone(),
                namespace: scope.namespace.clone(),
                sync_timeout: self.manager.config().cache_sync_timeout,
            }),
        };
        let runner = Runner {
            shared: Arc::new(Shared {
                name,
                queue,
                primary,
                reconcile,
                context,
                timeout: self.reconcile_timeout,
                instruments,
                triggers,
            }),
            concurrency: self.concurrency,
        };
        self.manager.add(runner);
        Ok(())
    }
}

/// Adapts a boxed limiter to the queue builder's `impl RateLimiter`.
struct BoxedLimiter(Box<dyn RateLimiter<ObjectKey>>);

impl RateLimiter<ObjectKey> for BoxedLimiter {
    fn when(&self, item: &ObjectKey) -> Duration {
        self.0.when(item)
    }
    fn forget(&self, item: &ObjectKey) {
        self.0.forget(item);
    }
    fn num_requeues(&self, item: &ObjectKey) -> u32 {
        self.0.num_requeues(item)
    }
}

/// Feeds the queue from informer events.
struct EnqueueHandler<C> {
    queue: WorkQueue<ObjectKey>,
    mapper: Mapper<C>,
    predicate: Option<Predicate<C>>,
    relation: RelationKind,
    /// `C`'s kind, for the trigger.
    kind: String,
    triggers: Arc<Triggers>,
}

impl<C: Resource + 'static> EnqueueHandler<C> {
    fn passes(&self, change: &Change<'_, C>) -> bool {
        self.predicate.as_ref().is_none_or(|p| p.matches(change))
    }

    fn enqueue(&self, obj: &C, resync: bool) {
        self.add(obj, (self.mapper)(obj), resync);
    }

    /// Records why, then queues `keys` (the trigger is there before a worker can take a key).
    fn add(&self, obj: &C, keys: Vec<ObjectKey>, resync: bool) {
        for key in keys {
            self.triggers.record(&key, || self.trigger(obj, resync));
            self.queue.add(key);
        }
    }

    fn trigger(&self, obj: &C, resync: bool) -> Trigger {
        let object = || {
            let m = obj.meta();
            match &m.namespace {
                Some(ns) => format!("{ns}/{}", m.name.as_deref().unwrap_or_default()),
                None => m.name.clone().unwrap_or_default(),
            }
        };
        match self.relation {
            RelationKind::Primary if resync => Trigger::Resync,
            RelationKind::Primary => Trigger::Changed,
            RelationKind::Owned => Trigger::Owned {
                kind: self.kind.clone(),
                object: object(),
            },
            RelationKind::Watched => Trigger::Watched {
                kind: self.kind.clone(),
                object: object(),
            },
        }
    }
}

impl<C: Resource + Send + Sync + 'static> ResourceEventHandler<C> for EnqueueHandler<C> {
    fn on_add(&self, obj: Arc<C>, _is_initial_list: bool) {
        if self.passes(&Change::Create(&obj)) {
            self.enqueue(&obj, false);
        }
    }

    fn on_update(&self, old: Arc<C>, new: Arc<C>) {
        if self.passes(&Change::Update {
            old: &old,
            new: &new,
        }) {
            // Both, once each: a child whose owner changed must reconcile the old owner too, and
            // adding one key twice could queue it again behind a worker that already took it.
            let mut keys = (self.mapper)(&old);
            for key in (self.mapper)(&new) {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            let resync = old.meta().resource_version == new.meta().resource_version;
            self.add(&new, keys, resync);
        }
    }

    fn on_delete(&self, obj: DeletedObject<C>) {
        let last = match &obj {
            DeletedObject::Object(o) => Some(o.clone()),
            DeletedObject::Tombstone { last_known, .. } => last_known.clone(),
        };
        if let Some(last) = last
            && self.passes(&Change::Delete(&last))
        {
            self.enqueue(&last, false);
        }
    }
}

struct Instruments {
    success: Counter,
    error: Counter,
    requeue_after: Counter,
    errors: Counter,
    panics: Counter,
    time: Histogram,
    active: Gauge,
    max_concurrent: Gauge,
}

struct Shared<K, T> {
    name: String,
    queue: WorkQueue<ObjectKey>,
    primary: Lister<K>,
    reconcile: ReconcileFn<K, T>,
    context: Context<T>,
    timeout: Option<Duration>,
    instruments: Instruments,
    triggers: Arc<Triggers>,
}

/// The running controller: `concurrency` workers over one queue.
struct Runner<K, T> {
    shared: Arc<Shared<K, T>>,
    concurrency: usize,
}

/// How one reconcile ended.
enum Outcome {
    Done(Action),
    Failed(ReconcileError),
    Panicked(String),
    TimedOut(Duration),
}

impl<K, T> Runnable for Runner<K, T>
where
    K: Resource + Send + Sync + 'static,
    T: Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn start(self: Box<Self>, stop: CancellationToken) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let shared = self.shared;
            shared
                .instruments
                .max_concurrent
                .set(i64::try_from(self.concurrency).unwrap_or(i64::MAX));
            let mut workers = JoinSet::new();
            for _ in 0..self.concurrency {
                workers.spawn(worker(shared.clone(), stop.clone()));
            }
            // Dropping the set (when the manager aborts this future) aborts the workers.
            while workers.join_next().await.is_some() {}
            shared.queue.shutdown();
            tracing::info!(controller = %shared.name, "controller stopped");
        })
    }
}

async fn worker<K, T>(shared: Arc<Shared<K, T>>, stop: CancellationToken)
where
    K: Resource + Send + Sync + 'static,
    T: Send + Sync + 'static,
{
    loop {
        let key = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            key = shared.queue.get() => match key {
                Some(key) => key,
                None => return,
            },
        };
        if stop.is_cancelled() {
            shared.queue.done(&key);
            return;
        }
        shared.instruments.active.inc();
        process(&shared, &key).await;
        shared.instruments.active.dec();
        shared.queue.done(&key);
    }
}

async fn process<K, T>(shared: &Shared<K, T>, key: &ObjectKey)
where
    K: Resource + Send + Sync + 'static,
    T: Send + Sync + 'static,
{
    let Some(obj) = shared.primary.get_by_key(key) else {
        // Deleted (and its finalizers done): nothing left to reconcile.
        shared.queue.forget(key);
        shared.triggers.forget(key);
        return;
    };
    let started = tokio::time::Instant::now();
    // Every log line of the reconcile carries the controller, the object and why it runs.
    let trigger = shared.triggers.take(key);
    let span = tracing::info_span!("reconcile", controller = %shared.name, object = %key, trigger = %trigger);
    let fut = AssertUnwindSafe(tracing::Instrument::instrument(
        (shared.reconcile)(obj, shared.context.clone()),
        span,
    ))
    .catch_unwind();
    let outcome = match shared.timeout {
        Some(limit) => match tokio::time::timeout(limit, fut).await {
            Ok(result) => to_outcome(result),
            Err(_) => Outcome::TimedOut(limit),
        },
        None => to_outcome(fut.await),
    };
    let i = &shared.instruments;
    i.time.observe(started.elapsed().as_secs_f64());
    let name = &shared.name;
    match outcome {
        Outcome::Done(action) => {
            shared.queue.forget(key);
            match action.requeue_after() {
                Some(after) => {
                    i.requeue_after.inc();
                    shared.triggers.schedule(key, Trigger::Requeue);
                    shared.queue.add_after(key.clone(), after);
                }
                None => {
                    i.success.inc();
                }
            }
        }
        Outcome::Failed(err) if err.is_terminal() => {
            i.error.inc();
            i.errors.inc();
            shared.queue.forget(key);
            tracing::error!(controller = %name, %key, error = %err, "reconcile failed with a terminal error; not retrying until the object changes");
        }
        Outcome::Failed(err) => {
            i.error.inc();
            i.errors.inc();
            tracing::warn!(controller = %name, %key, error = %err, retries = shared.queue.num_requeues(key), "reconcile failed; retrying with backoff");
            shared.triggers.schedule(key, Trigger::Retry);
            shared.queue.add_rate_limited(key.clone());
        }
        Outcome::Panicked(message) => {
            i.error.inc();
            i.errors.inc();
            i.panics.inc();
            tracing::error!(controller = %name, %key, panic = %message, "reconcile panicked; retrying with backoff");
            shared.triggers.schedule(key, Trigger::Retry);
            shared.queue.add_rate_limited(key.clone());
        }
        Outcome::TimedOut(limit) => {
            i.error.inc();
            i.errors.inc();
            tracing::warn!(controller = %name, %key, timeout = ?limit, "reconcile timed out; retrying with backoff");
            shared.triggers.schedule(key, Trigger::Retry);
            shared.queue.add_rate_limited(key.clone());
        }
    }
}

fn to_outcome(result: Result<Result<Action, ReconcileError>, Box<dyn Any + Send>>) -> Outcome {
    match result {
        Ok(Ok(action)) => Outcome::Done(action),
        Ok(Err(err)) => Outcome::Failed(err),
        Err(panic) => Outcome::Panicked(
            panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_group_of_core_and_named_groups() {
        assert_eq!(api_group("v1"), "");
        assert_eq!(api_group("apps/v1"), "apps");
        assert_eq!(api_group("example.com/v1alpha1"), "example.com");
    }

    #[test]
    fn scope_detection() {
        use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
        assert!(is_cluster_scoped::<Namespace>());
        assert!(!is_cluster_scoped::<ConfigMap>());
    }

    #[test]
    fn panics_carry_their_message() {
        let outcome = to_outcome(Err(Box::new("boom")));
        assert!(matches!(outcome, Outcome::Panicked(m) if m == "boom"));
        let outcome = to_outcome(Err(Box::new(String::from("bang"))));
        assert!(matches!(outcome, Outcome::Panicked(m) if m == "bang"));
    }
}

//! The controller builder: `Controller::managed_by(manager).for_::<K>(…).owns::<C>(…)
//! .watches::<W>(…, mapper).complete(reconcile, data)`. Subscribes an enqueueing handler to each
//! related type's shared informer, registers the controller's RBAC with the manager, and adds the
//! [`super::runner`] to the manager's runnables. Called by operators' setup code and by the code
//! `#[kubeforge::controller]` generates.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kube::Resource;
use kube::api::PartialObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::enqueue::*;
use super::events::{Recorder, Reporter};
use super::reconcile::*;
use super::runner::*;
use super::trigger::{RelationKind, Triggers};
use super::watch::*;
use crate::informer::{
    IndexFn, IndexName, Indexers, InformerFactory, InformerOptions, Lister, ObjectKey,
    SharedIndexInformer,
};
use crate::manager::Manager;
use crate::manager::metrics::{ControllerLabels, ReconcileResultLabels};
use crate::workqueue::{RateLimiter, WorkQueue, default_controller_rate_limiter};

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
    /// The controller is also declared with `#[kubeforge::controller]`, whose attribute does not
    /// declare something the builder watches: the RBAC printed from the attribute would miss it.
    #[error(
        "controller {controller:?} watches {resource}, which its #[kubeforge::controller] attribute \
         does not declare: add it to the attribute (owns(..), watches(..) or reads(..)) and build \
         the controller with the generated setup(), so the watches and the RBAC come from one \
         declaration"
    )]
    UndeclaredWatch {
        /// Controller name.
        controller: String,
        /// The resource, `plural.group`.
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
        source: crate::informer::InformerError,
    },
}

/// Marker: no primary type yet. Only [`Builder::for_`] is available.
#[derive(Debug)]
pub struct NoPrimary;

/// Marker: the primary type is `K`.
pub struct Primary<K> {
    /// The primary watch's informer options before the controller's namespace applies.
    pub(super) options: Watch<K>,
}

impl<K> fmt::Debug for Primary<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Primary")
    }
}

pub(super) type Mapper<C> = Arc<dyn Fn(&C) -> Vec<ObjectKey> + Send + Sync>;
pub(super) type Relation = Box<
    dyn FnOnce(
            &mut Manager,
            &WorkQueue<ObjectKey>,
            &RelationScope,
        ) -> Result<RelationOut, BuildError>
        + Send,
>;
pub(super) type ReconcileFn<K, T> = Arc<
    dyn Fn(Arc<K>, Context<T>) -> BoxFuture<'static, Result<Action, ReconcileError>> + Send + Sync,
>;

/// What a relation needs to know about the controller when it subscribes.
pub(super) struct RelationScope {
    pub(super) controller: String,
    pub(super) namespace: Option<String>,
    pub(super) triggers: Arc<Triggers>,
}

/// What subscribing a relation yields: its lister (for the context) and a dedup key.
pub(super) struct RelationOut {
    pub(super) type_id: TypeId,
    pub(super) lister: Box<dyn Any + Send + Sync>,
    pub(super) dedup: String,
}

/// Builds a controller; see the [module docs](super). `S` is [`NoPrimary`] until
/// [`for_`](Builder::for_) names the primary type, so a controller without one, or with two,
/// does not compile.
pub struct Builder<'m, S> {
    pub(super) manager: &'m mut Manager,
    pub(super) name: Option<String>,
    pub(super) namespace: Option<String>,
    pub(super) concurrency: usize,
    pub(super) reconcile_timeout: Option<Duration>,
    pub(super) rate_limiter: Option<Box<dyn RateLimiter<ObjectKey>>>,
    pub(super) relations: Vec<Relation>,
    /// The RBAC rules of the relations declared so far (registered with the manager on
    /// `complete`).
    pub(super) rules: Vec<k8s_openapi::api::rbac::v1::PolicyRule>,
    pub(super) state: S,
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
///
/// ```no_run
/// # use std::sync::Arc;
/// # use std::time::Duration;
/// use k8s_openapi::api::apps::v1::Deployment;
/// use k8s_openapi::api::core::v1::Service;
/// use kubeforge::controller::{Action, Context, Controller, ReconcileError, Watch};
/// use kubeforge::manager::{Manager, ManagerConfig};
///
/// async fn reconcile(d: Arc<Deployment>, ctx: Context<()>) -> Result<Action, ReconcileError> {
///     // Converge the Service that exposes `d`…
///     Ok(Action::requeue(Duration::from_secs(300)))
/// }
///
/// # async fn example(client: kube::Client) -> anyhow::Result<()> {
/// let mut manager = Manager::new(client, ManagerConfig::default()).await?;
/// Controller::managed_by(&mut manager)
///     .for_::<Deployment>(Watch::new().labels("expose=true"))
///     .owns::<Service>(Watch::new())
///     .complete(reconcile, ())?;
/// manager.run().await?;
/// # Ok(())
/// # }
/// ```
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

/// The informer options of a watch in a controller's scope. The controller's namespace narrows
/// only namespaced kinds: a cluster-scoped one (Nodes, say) has no namespace to narrow to, so
/// its watch stays cluster-wide, as controller-runtime's cache does.
pub(super) fn informer_options<C: Resource>(
    watch: &Watch<C>,
    scope: &RelationScope,
) -> InformerOptions
where
    C::Scope: 'static,
{
    let mut options = watch.options.clone();
    if options.namespace.is_none() && !is_cluster_scoped::<C>() {
        options.namespace.clone_from(&scope.namespace);
    }
    options
}

/// Registers the watch's indexes on the shared informer, keeping those already there by name.
pub(super) fn add_indexes<C>(
    informer: &SharedIndexInformer<C>,
    indexes: &[(IndexName, IndexFn<C>)],
) -> Result<(), crate::informer::InformerError>
where
    C: Resource + Clone + Serialize + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
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

/// Where a relation's shared informer comes from: the factory's full-object or metadata-only
/// informer of the type.
pub(super) type Source<C> = fn(&InformerFactory, InformerOptions) -> SharedIndexInformer<C>;

/// The full-object informer of `C`.
pub(super) fn full_objects<C>(
    factory: &InformerFactory,
    options: InformerOptions,
) -> SharedIndexInformer<C>
where
    C: Resource + Clone + Serialize + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
    C::DynamicType: Default,
{
    factory.informer::<C>(options)
}

/// The metadata-only informer of `C`.
pub(super) fn metadata_only<C>(
    factory: &InformerFactory,
    options: InformerOptions,
) -> SharedIndexInformer<PartialObjectMeta<C>>
where
    C: Resource + Clone + fmt::Debug + Send + Sync + 'static,
    C::DynamicType: Default,
{
    factory.metadata_informer::<C>(options)
}

/// Subscribes `queue` to changes of `C` (from `source`'s informer), mapped to primary keys by
/// `mapper`.
pub(super) fn subscribe<C>(
    manager: &mut Manager,
    queue: &WorkQueue<ObjectKey>,
    scope: &RelationScope,
    (watch, source): (Watch<C>, Source<C>),
    mapper: Mapper<C>,
    relation: RelationKind,
) -> Result<RelationOut, BuildError>
where
    C: Resource + Clone + Serialize + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
    C::DynamicType: Default,
{
    let options = informer_options(&watch, scope);
    let dedup = format!(
        "{}|{:?}|{:?}|{:?}",
        std::any::type_name::<C>(),
        options.namespace,
        options.selector,
        options.projection
    );
    let informer = source(manager.informers(), options);
    if let Some(transform) = watch.transform {
        // Refused only once the informer runs: then it is a watch of the same projection
        // name, which applies the same projection.
        let _ = informer.set_transform(Some(transform));
    }
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
        K: Resource + Clone + Serialize + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
        K::DynamicType: Default,
    {
        let mapper: Mapper<K> = Arc::new(|obj: &K| ObjectKey::from_obj(obj).into_iter().collect());
        let options = Watch {
            options: watch.options.clone(),
            predicate: None,
            indexes: watch.indexes.clone(),
            transform: watch.transform.clone(),
        };
        let relation: Relation = Box::new(move |m, q, s| {
            subscribe(
                m,
                q,
                s,
                (watch, full_objects::<K>),
                mapper,
                RelationKind::Primary,
            )
        });
        let mut relations = self.relations;
        relations.insert(0, relation);
        let mut rules = self.rules;
        rules.extend(crate::crd::registry::primary_rules_of::<K>());
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

/// Maps a child to the key of its controller, when that is a `K` (same kind and API group).
fn owner_mapper<K, C>() -> Mapper<C>
where
    K: Resource,
    K::DynamicType: Default,
    K::Scope: 'static,
    C: Resource,
{
    let dt = K::DynamicType::default();
    let kind = K::kind(&dt).into_owned();
    let group = api_group(&K::api_version(&dt)).to_owned();
    let cluster_scoped = is_cluster_scoped::<K>();
    Arc::new(move |child: &C| {
        let Some(owner) = crate::controller::owner::controller_of(child) else {
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
    })
}

/// Whether `K` is cluster-scoped (its owner keys then have no namespace).
pub(super) fn is_cluster_scoped<K: Resource>() -> bool
where
    K::Scope: 'static,
{
    TypeId::of::<K::Scope>() == TypeId::of::<k8s_openapi::ClusterResourceScope>()
}

pub(super) fn api_group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

impl<'m, K> Builder<'m, Primary<K>>
where
    K: Resource + Clone + Serialize + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Default,
{
    /// Children of the primary: a change of a `C` reconciles the primary named by its controller
    /// ownerReference (same kind and API group as `K`).
    #[must_use]
    pub fn owns<C>(self, watch: Watch<C>) -> Self
    where
        C: Resource + Clone + Serialize + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
        C::DynamicType: Default,
    {
        let mapper = owner_mapper::<K, C>();
        let rules = crate::crd::registry::owned_rules_of::<C>();
        self.relate(
            (watch, full_objects::<C>),
            mapper,
            RelationKind::Owned,
            rules,
        )
    }

    /// Children of the primary cached as metadata only (controller-runtime's `OnlyMetadata`):
    /// the informer lists and watches `PartialObjectMetadata`, so the cache holds names, labels,
    /// annotations and owner references but no spec or status — for children the reconciler
    /// counts or deletes but does not read, e.g. Pods or Secrets of a large cluster. The
    /// reconciler reads them with `ctx.lister::<PartialObjectMeta<C>>()`.
    ///
    /// ```no_run
    /// # use kubeforge::controller::{Controller, Watch, Action, Context, ReconcileError};
    /// # use k8s_openapi::api::{apps::v1::ReplicaSet, core::v1::Pod};
    /// # use kube::api::PartialObjectMeta;
    /// async fn reconcile(rs: std::sync::Arc<ReplicaSet>, ctx: Context<()>) -> Result<Action, ReconcileError> {
    ///     let pods = ctx.lister::<PartialObjectMeta<Pod>>()?;
    ///     let _mine = pods.list().len();
    ///     Ok(Action::await_change())
    /// }
    /// # fn f(mgr: &mut kubeforge::manager::Manager) -> Result<(), kubeforge::controller::BuildError> {
    /// Controller::managed_by(mgr)
    ///     .for_::<ReplicaSet>(Watch::new())
    ///     .owns_metadata::<Pod>(Watch::new())
    ///     .complete(reconcile, ())
    /// # }
    /// ```
    #[must_use]
    pub fn owns_metadata<C>(self, watch: Watch<PartialObjectMeta<C>>) -> Self
    where
        C: Resource + Clone + fmt::Debug + Send + Sync + 'static,
        C::DynamicType: Default,
    {
        let mapper = owner_mapper::<K, PartialObjectMeta<C>>();
        let rules = crate::crd::registry::owned_rules_of::<C>();
        self.relate(
            (watch, metadata_only::<C>),
            mapper,
            RelationKind::Owned,
            rules,
        )
    }

    /// [`watches`](Self::watches) with a metadata-only cache of `W` (see
    /// [`owns_metadata`](Self::owns_metadata)): `mapper` sees each object's metadata.
    #[must_use]
    pub fn watches_metadata<W>(
        self,
        watch: Watch<PartialObjectMeta<W>>,
        mapper: impl Fn(&PartialObjectMeta<W>) -> Vec<ObjectKey> + Send + Sync + 'static,
    ) -> Self
    where
        W: Resource + Clone + fmt::Debug + Send + Sync + 'static,
        W::DynamicType: Default,
    {
        let mapper: Mapper<PartialObjectMeta<W>> = Arc::new(mapper);
        let rules = crate::crd::registry::watched_rules_of::<W>();
        self.relate(
            (watch, metadata_only::<W>),
            mapper,
            RelationKind::Watched,
            rules,
        )
    }

    /// Anything else: a change of a `W` reconciles the primary keys `mapper` returns.
    #[must_use]
    pub fn watches<W>(
        self,
        watch: Watch<W>,
        mapper: impl Fn(&W) -> Vec<ObjectKey> + Send + Sync + 'static,
    ) -> Self
    where
        W: Resource + Clone + Serialize + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
        W::DynamicType: Default,
    {
        let mapper: Mapper<W> = Arc::new(mapper);
        let rules = crate::crd::registry::watched_rules_of::<W>();
        self.relate(
            (watch, full_objects::<W>),
            mapper,
            RelationKind::Watched,
            rules,
        )
    }

    /// Adds a relation: changes of `C` from the watch's informer, mapped to primary keys, and
    /// the RBAC `rules` it needs.
    fn relate<C>(
        mut self,
        watch: (Watch<C>, Source<C>),
        mapper: Mapper<C>,
        kind: RelationKind,
        rules: Vec<k8s_openapi::api::rbac::v1::PolicyRule>,
    ) -> Self
    where
        C: Resource + Clone + Serialize + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
        C::DynamicType: Default,
    {
        self.relations.push(Box::new(move |m, q, s| {
            subscribe(m, q, s, watch, mapper, kind)
        }));
        self.rules.extend(rules);
        self
    }

    /// The cache of the primary type, as this controller will see it (the shared informer of its
    /// `for_` watch, in the controller's namespace). For [`watches`](Self::watches) mappers that
    /// look the primaries up, e.g. "which sites reference this Secret" or "every DaemonSet, when a
    /// Node changes". Call it after [`namespace`](Self::namespace), if that is set.
    ///
    /// ```no_run
    /// # use kubeforge::controller::{Controller, Watch, Action, Context, ReconcileError};
    /// # use kubeforge::informer::ObjectKey;
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
        self.rules
            .extend(crate::crd::registry::watched_rules_of::<R>());
        self
    }

    /// Declares RBAC `rules` for what the reconciler does beyond its relations — writing other
    /// kinds, subresources such as `*/scale`, non-resource APIs — so the operator's generated
    /// role covers them as it covers the watches.
    #[must_use]
    pub fn permits(mut self, rules: Vec<k8s_openapi::api::rbac::v1::PolicyRule>) -> Self {
        self.rules.extend(rules);
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
        check_declared(&name, &self.rules)?;
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
pub(super) struct BoxedLimiter(Box<dyn RateLimiter<ObjectKey>>);

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
/// Default number of concurrent reconciles per controller (controller-runtime's default).
pub const DEFAULT_CONCURRENCY: usize = 1;

/// When `#[kubeforge::controller]` also declares a controller of this name, everything the
/// builder watches must be in the attribute's rules: the watches and the RBAC come from one
/// declaration, and a controller built by hand cannot watch what the printed RBAC leaves out.
fn check_declared(
    name: &str,
    rules: &[k8s_openapi::api::rbac::v1::PolicyRule],
) -> Result<(), BuildError> {
    let Some(entry) = crate::crd::registry::controllers()
        .into_iter()
        .find(|e| e.name == name)
    else {
        return Ok(());
    };
    let resources = |rules: &[k8s_openapi::api::rbac::v1::PolicyRule]| {
        let mut out = std::collections::BTreeSet::new();
        for r in rules {
            for group in r.api_groups.iter().flatten() {
                for resource in r.resources.iter().flatten() {
                    out.insert((group.clone(), resource.clone()));
                }
            }
        }
        out
    };
    let declared = resources(&(entry.rules)());
    match resources(rules).difference(&declared).next() {
        None => Ok(()),
        Some((group, resource)) => Err(BuildError::UndeclaredWatch {
            controller: name.to_string(),
            resource: if group.is_empty() {
                resource.clone()
            } else {
                format!("{resource}.{group}")
            },
        }),
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
}

//! What a controller watches of one type ([`Watch`]): the informer options (namespace, selectors,
//! resync, …), field indexes on the cache, and an event filter. Given to the [`super::Builder`]'s
//! `for_`, `owns` and `watches`; its informer options go unchanged to the shared informer the
//! builder asks the factory for.

use std::fmt;
use std::sync::Arc;

use super::predicate::Predicate;
use crate::informer::{IndexFn, IndexName, IndexValue, InformerOptions, Transform};

/// What to watch of one type: which objects (namespace, selectors and the other
/// [`InformerOptions`], passed as they are to the shared informer), field indexes on its cache,
/// and an event filter.
pub struct Watch<K> {
    pub(super) options: InformerOptions,
    pub(super) predicate: Option<Predicate<K>>,
    pub(super) indexes: Vec<(IndexName, IndexFn<K>)>,
    /// The projection's transform (its name is `options.projection`).
    pub(super) transform: Option<Transform<K>>,
}

impl<K> fmt::Debug for Watch<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("options", &self.options)
            .field("predicate", &self.predicate.is_some())
            .field(
                "indexes",
                &self.indexes.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("projection", &self.options.projection)
            .finish()
    }
}

impl<K> Default for Watch<K> {
    fn default() -> Self {
        Self {
            options: InformerOptions::default(),
            predicate: None,
            indexes: Vec::new(),
            transform: None,
        }
    }
}

impl<K: 'static> Watch<K> {
    /// Every object of the type in the controller's namespace scope, every change.
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared informer's options: namespace, selectors, resync, page size, streaming list…
    /// Settings left unset take the manager's informer defaults; a namespace left unset takes
    /// the controller's (or the manager's). The namespace and selectors also say which shared
    /// informer this is: watches with equal ones share one.
    #[must_use]
    pub fn informer(mut self, options: InformerOptions) -> Self {
        self.options = options;
        self
    }

    /// Keep this cache compact ([`InformerOptions::compact`]): several times less memory for
    /// a decode on reads that miss its hot objects. For large caches such as every Pod or
    /// Secret of a cluster.
    #[must_use]
    pub fn compact(self) -> Self {
        let options = self.options.clone().compact();
        self.informer(options)
    }

    /// Caches only what `keep` leaves of each object: a typed projection, e.g. clearing a Pod's
    /// `spec` and everything in `status` but the phase and conditions. `managedFields` are
    /// dropped first, as by default. The projection is applied before the object is cached,
    /// so the whole process sees the projected objects of this informer: `name` is part of the
    /// shared informer's identity (watches with the same name share one cache, and must use
    /// the same `keep`; other watches of the type get their own full cache).
    ///
    /// ```no_run
    /// # use kubeforge::controller::Watch;
    /// # use k8s_openapi::api::core::v1::Pod;
    /// // Only what the controller reads: labels, the node and the phase.
    /// let pods = Watch::<Pod>::new().project("node-and-phase", |pod: &mut Pod| {
    ///     let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    ///     pod.spec = Some(k8s_openapi::api::core::v1::PodSpec { node_name: node, ..Default::default() });
    ///     if let Some(status) = pod.status.as_mut() {
    ///         *status = k8s_openapi::api::core::v1::PodStatus { phase: status.phase.take(), ..Default::default() };
    ///     }
    ///     pod.metadata.annotations = None;
    /// });
    /// ```
    #[must_use]
    pub fn project(
        mut self,
        name: impl Into<String>,
        keep: impl Fn(&mut K) + Send + Sync + 'static,
    ) -> Self
    where
        K: kube::Resource,
    {
        self.options.projection = Some(name.into());
        self.transform = Some(Arc::new(move |obj: &mut K| {
            crate::informer::strip_managed_fields(obj);
            keep(obj);
        }));
        self
    }

    /// Only objects in `namespace` (overrides the controller's and the manager's namespace).
    #[must_use]
    pub fn namespace(self, namespace: impl Into<String>) -> Self {
        let options = self.options.clone().namespace(namespace);
        self.informer(options)
    }

    /// Only objects matching the label selector (e.g. `app=web,tier!=cache`).
    #[must_use]
    pub fn labels(self, selector: impl Into<String>) -> Self {
        let options = self.options.clone().labels(selector);
        self.informer(options)
    }

    /// Only objects matching the field selector.
    #[must_use]
    pub fn fields(self, selector: impl Into<String>) -> Self {
        let options = self.options.clone().fields(selector);
        self.informer(options)
    }

    /// Indexes the cache of `K` by a field, as controller-runtime's `IndexField`: `values` gives
    /// the values an object is found under, and [`Lister::by_index`](crate::informer::Lister::by_index) finds the objects under one.
    /// The index lives on the shared informer, so every controller watching `K` the same way sees
    /// it; a name already registered there is kept (the same name means the same index).
    ///
    /// The usual use is a mapper answering "which primaries reference this object": index the
    /// primary by the reference, then look the changed object up in
    /// [`Builder::primary_lister`](super::Builder::primary_lister) by its `namespace/name`.
    ///
    /// ```no_run
    /// # use kubeforge::controller::{Controller, Watch, Action, Context, ReconcileError};
    /// # use kubeforge::informer::ObjectKey;
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

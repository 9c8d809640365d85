//! What a controller watches of one type ([`Watch`]): the informer options (namespace, selectors,
//! resync, …), field indexes on the cache, and an event filter. Given to the [`super::Builder`]'s
//! `for_`, `owns` and `watches`; its informer options go unchanged to the shared informer the
//! builder asks the factory for.

use std::fmt;
use std::sync::Arc;

use super::predicate::Predicate;
use crate::informer::{IndexFn, IndexName, IndexValue, InformerOptions};

/// What to watch of one type: which objects (namespace, selectors and the other
/// [`InformerOptions`], passed as they are to the shared informer), field indexes on its cache,
/// and an event filter.
pub struct Watch<K> {
    pub(super) options: InformerOptions,
    pub(super) predicate: Option<Predicate<K>>,
    pub(super) indexes: Vec<(IndexName, IndexFn<K>)>,
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
            .finish()
    }
}

impl<K> Default for Watch<K> {
    fn default() -> Self {
        Self {
            options: InformerOptions::default(),
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

    /// The shared informer's options: namespace, selectors, resync, page size, streaming list…
    /// Settings left unset take the manager's informer defaults; a namespace left unset takes
    /// the controller's (or the manager's). The namespace and selectors also say which shared
    /// informer this is: watches with equal ones share one.
    #[must_use]
    pub fn informer(mut self, options: InformerOptions) -> Self {
        self.options = options;
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

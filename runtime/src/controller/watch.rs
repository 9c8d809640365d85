//! What a controller watches of one type ([`Watch`]): namespace and selectors, field indexes on
//! the cache, and an event filter. Given to the [`super::Builder`]'s `for_`, `owns` and `watches`;
//! its informer settings go to the shared informer the builder asks the factory for.

use std::fmt;
use std::sync::Arc;

use super::predicate::Predicate;
use crate::informer::{IndexFn, IndexName, IndexValue};

/// What to watch of one type: selectors and an event filter.
pub struct Watch<K> {
    pub(super) namespace: Option<String>,
    pub(super) label_selector: Option<String>,
    pub(super) field_selector: Option<String>,
    pub(super) predicate: Option<Predicate<K>>,
    pub(super) indexes: Vec<(IndexName, IndexFn<K>)>,
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

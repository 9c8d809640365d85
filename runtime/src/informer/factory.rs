//! The informer factory: one shared informer per (type, namespace, selectors) in a process, so
//! every controller watching a type shares one list-watch and one cache (client-go's
//! `SharedInformerFactory`). Used by the manager and the controller builder.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use kube::api::{ApiResource, DynamicObject, PartialObjectMeta};
use kube::{Client, Resource};
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;

use std::time::Duration;

use super::list_watch::{ApiListWatch, ListWatch, MetadataListWatch};
use super::options::{InformerOptions, Selector};
use super::shared_informer::SharedIndexInformer;

/// Identifies a shared informer in a factory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FactoryKey {
    type_id: TypeId,
    api_version: String,
    plural: String,
    namespace: Option<String>,
    selector: Selector,
    projection: Option<String>,
}

struct Entry {
    informer: Arc<dyn Any + Send + Sync>,
    run: Box<dyn Fn() -> futures::future::BoxFuture<'static, ()> + Send + Sync>,
    stop: Box<dyn Fn() + Send + Sync>,
    wait_synced: Box<dyn Fn() -> futures::future::BoxFuture<'static, bool> + Send + Sync>,
    started: bool,
}

/// Hands out one [`SharedIndexInformer`] per (type, namespace, selectors), so every controller
/// of a process shares one list-watch and one cache per resource.
pub struct InformerFactory {
    client: Client,
    default_options: InformerOptions,
    entries: Mutex<HashMap<FactoryKey, Entry>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl fmt::Debug for InformerFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InformerFactory")
            .field("informers", &self.entries.lock().len())
            .finish()
    }
}

impl InformerFactory {
    /// A factory whose informers use `client`.
    pub fn new(client: Client) -> Self {
        Self::with_options(client, InformerOptions::default())
    }

    /// A factory whose informers default to `options`' resync, page size, backoff etc.
    pub fn with_options(client: Client, options: InformerOptions) -> Self {
        Self {
            client,
            default_options: options,
            entries: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// The client informers use.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The shared informer for full objects of `K` (a k8s-openapi or derived type) in
    /// `options.namespace` with `options`' selectors; created on first request, whose other
    /// settings win (those left at their default take the factory's).
    pub fn informer<K>(&self, options: InformerOptions) -> SharedIndexInformer<K>
    where
        K: Resource + Clone + Serialize + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
        K::DynamicType: Default,
    {
        let dt = K::DynamicType::default();
        self.get_or_create::<K, K, _>(&dt, options, |client, ns| {
            ApiListWatch::<K>::for_type(client, &dt, ns)
        })
    }

    /// The shared metadata-only informer for `K`.
    pub fn metadata_informer<K>(
        &self,
        options: InformerOptions,
    ) -> SharedIndexInformer<PartialObjectMeta<K>>
    where
        K: Resource + Clone + fmt::Debug + Send + Sync + 'static,
        K::DynamicType: Default,
    {
        let dt = K::DynamicType::default();
        self.get_or_create::<PartialObjectMeta<K>, K, _>(&dt, options, |client, ns| {
            MetadataListWatch::<K>::for_type(client, &dt, ns)
        })
    }

    /// The shared informer for a resource known only at run time.
    pub fn dynamic_informer(
        &self,
        resource: &ApiResource,
        options: InformerOptions,
    ) -> SharedIndexInformer<DynamicObject> {
        self.get_or_create::<DynamicObject, DynamicObject, _>(resource, options, |client, ns| {
            ApiListWatch::<DynamicObject>::for_type(client, resource, ns)
        })
    }

    fn get_or_create<K, T, L>(
        &self,
        dt: &T::DynamicType,
        options: InformerOptions,
        make: impl FnOnce(Client, Option<&str>) -> L,
    ) -> SharedIndexInformer<K>
    where
        K: Resource + Clone + Serialize + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
        T: Resource + 'static,
        L: ListWatch<Object = K>,
    {
        let key = FactoryKey {
            type_id: TypeId::of::<K>(),
            api_version: T::api_version(dt).into_owned(),
            plural: T::plural(dt).into_owned(),
            namespace: options.namespace.clone(),
            selector: options.selector.clone(),
            projection: options.projection.clone(),
        };
        let mut entries = self.entries.lock();
        if let Some(entry) = entries.get(&key)
            && let Some(inf) = entry.informer.downcast_ref::<SharedIndexInformer<K>>()
        {
            return inf.clone();
        }
        let options = options.or_defaults(&self.default_options);
        let lw = make(self.client.clone(), options.namespace.as_deref());
        let informer = SharedIndexInformer::from_list_watch(lw, options);
        let (a, b, c) = (informer.clone(), informer.clone(), informer.clone());
        entries.insert(
            key,
            Entry {
                informer: Arc::new(informer.clone()),
                run: Box::new(move || {
                    let a = a.clone();
                    Box::pin(async move { a.run().await })
                }),
                stop: Box::new(move || b.stop()),
                wait_synced: Box::new(move || {
                    let c = c.clone();
                    Box::pin(async move { c.wait_for_sync().await })
                }),
                started: false,
            },
        );
        informer
    }

    /// Starts every informer created so far that is not running yet (call again after
    /// requesting more informers).
    pub fn start(&self) {
        let mut entries = self.entries.lock();
        let mut tasks = self.tasks.lock();
        for entry in entries.values_mut().filter(|e| !e.started) {
            entry.started = true;
            tasks.push(tokio::spawn((entry.run)()));
        }
    }

    /// Waits until every started informer has synced. Returns false if `timeout` passed first
    /// (or an informer stopped before syncing).
    pub async fn wait_for_cache_sync(&self, timeout: Duration) -> bool {
        let waits: Vec<_> = self
            .entries
            .lock()
            .values()
            .filter(|e| e.started)
            .map(|e| (e.wait_synced)())
            .collect();
        tokio::time::timeout(timeout, futures::future::join_all(waits))
            .await
            .is_ok_and(|synced| synced.iter().all(|s| *s))
    }

    /// Stops every informer and waits for them to finish.
    pub async fn shutdown(&self) {
        for entry in self.entries.lock().values() {
            (entry.stop)();
        }
        let tasks: Vec<_> = self.tasks.lock().drain(..).collect();
        for t in tasks {
            let _ = t.await;
        }
    }
}

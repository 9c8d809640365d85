//! What a reconcile function gets and returns: the object and a [`Context`] (the client, the
//! caches of watched and read types, an event recorder, the user's data); the next [`Action`], or
//! a [`ReconcileError`] (transient: retried with per-key exponential backoff; terminal: not
//! retried until the object changes). The [`super::runner`] calls reconcile functions with these.

use std::error::Error as StdError;

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::events::Recorder;
use crate::informer::{InformerFactory, InformerOptions, Lister};

/// What a reconcile function gets besides the object: the client, the caches, the user data.
pub struct Context<T> {
    pub(super) inner: Arc<ContextInner<T>>,
}

pub(super) struct ContextInner<T> {
    pub(super) name: String,
    pub(super) client: Client,
    pub(super) recorder: Recorder,
    pub(super) data: T,
    pub(super) listers: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
    /// For [`Context::cache`]: the shared informers, the controller's namespace scope and how
    /// long a first sync may take.
    pub(super) informers: Arc<InformerFactory>,
    pub(super) namespace: Option<String>,
    pub(super) sync_timeout: Duration,
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
    /// needs get/list/watch on `R`: declare it with [`Builder::reads`](super::Builder::reads), or `rbac(...)` on the
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
        R: Resource + Clone + Serialize + DeserializeOwned + fmt::Debug + Send + Sync + 'static,
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
        match tokio::time::timeout(self.inner.sync_timeout, informer.wait_for_sync()).await {
            Ok(true) => Ok(informer.lister()),
            Ok(false) | Err(_) => Err(CacheNotSynced {
                controller: self.inner.name.clone(),
                resource: informer.resource().to_owned(),
                timeout: self.inner.sync_timeout,
            }),
        }
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
pub(super) fn short_type_name<K>() -> String {
    let full = std::any::type_name::<K>();
    let head = full.split('<').next().unwrap_or(full);
    let base = head.rsplit("::").next().unwrap_or(head);
    format!("{base}{}", &full[head.len()..])
}

/// What the controller does with a key after a successful reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    pub(super) requeue_after: Option<Duration>,
}

impl Action {
    /// Reconcile the key again after `after`, even if nothing changes (e.g. to poll external
    /// state). A change of the object before then reconciles it earlier.
    pub fn requeue(after: Duration) -> Self {
        Self {
            requeue_after: Some(after),
        }
    }

    /// Do nothing until the object (or something mapped to it) changes.
    pub fn await_change() -> Self {
        Self {
            requeue_after: None,
        }
    }

    /// The requested delay, if any.
    pub fn requeue_after(&self) -> Option<Duration> {
        self.requeue_after
    }
}

/// A failed reconcile. Any `std::error::Error` converts into a transient one with `?`; wrap it
/// with [`ReconcileError::terminal`] when retrying cannot help (invalid spec, …): the key is then
/// forgotten until the object changes again.
///
/// Like `anyhow::Error`, this type deliberately does not implement `std::error::Error`, which is
/// what lets every error type convert into it.
pub struct ReconcileError {
    pub(super) source: Box<dyn StdError + Send + Sync + 'static>,
    pub(super) terminal: bool,
}

impl ReconcileError {
    /// A transient error: the key is requeued with per-key exponential backoff.
    pub fn transient(err: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        Self {
            source: err.into(),
            terminal: false,
        }
    }

    /// A terminal error: logged and counted, not retried.
    pub fn terminal(err: impl Into<Box<dyn StdError + Send + Sync + 'static>>) -> Self {
        Self {
            source: err.into(),
            terminal: true,
        }
    }

    /// Whether the controller gives up on this key (until the object changes).
    pub fn is_terminal(&self) -> bool {
        self.terminal
    }

    /// The underlying error.
    pub fn inner(&self) -> &(dyn StdError + Send + Sync + 'static) {
        self.source.as_ref()
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for ReconcileError {
    fn from(err: E) -> Self {
        Self::transient(err)
    }
}

/// One error of the chain, on one line: an API error as the server's message with its reason
/// and code (kube's own `Display` appends a debug dump of the whole `Status`).
pub(super) fn one_line(err: &(dyn StdError + 'static)) -> String {
    match err.downcast_ref::<kube::Error>() {
        Some(kube::Error::Api(status)) => {
            format!("{} ({}, {})", status.message, status.reason, status.code)
        }
        _ => err.to_string(),
    }
}

impl fmt::Display for ReconcileError {
    /// The error and its causes joined by `: `, each API error once, as the server's message with
    /// its reason and code; a cause already spelled out by the error above it is not repeated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = String::new();
        let mut current: Option<&(dyn StdError + 'static)> = Some(self.source.as_ref());
        while let Some(err) = current {
            let text = one_line(err);
            let api = matches!(err.downcast_ref::<kube::Error>(), Some(kube::Error::Api(_)));
            if api {
                // A wrapper that printed the API error in full (`{0}`) gets the short form.
                line = line.replace(&err.to_string(), &text);
            }
            if !line.contains(&text) {
                if !line.is_empty() {
                    line.push_str(": ");
                }
                line.push_str(&text);
            }
            if api {
                break; // its source is the same Status again
            }
            current = err.source();
        }
        f.write_str(&line)
    }
}

impl fmt::Debug for ReconcileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReconcileError")
            .field("terminal", &self.terminal)
            .field("source", &self.source)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_mark_gives_transient_and_terminal_is_explicit() {
        fn parse(s: &str) -> Result<i32, ReconcileError> {
            Ok(s.parse::<i32>()?)
        }
        let err = parse("x").unwrap_err();
        assert!(!err.is_terminal());
        assert!(err.to_string().contains("invalid digit"), "{err}");
        let err = ReconcileError::terminal("spec.replicas must be positive");
        assert!(err.is_terminal());
        assert_eq!(err.to_string(), "spec.replicas must be positive");
    }

    #[test]
    fn api_errors_read_as_one_line_with_the_servers_message_and_code() {
        let status =
            kube::core::Status::failure("configmaps \"app\" not found", "NotFound").with_code(404);
        let err = ReconcileError::from(kube::Error::Api(Box::new(status.clone())));
        assert_eq!(
            err.to_string(),
            "configmaps \"app\" not found (NotFound, 404)"
        );

        #[derive(Debug, thiserror::Error)]
        #[error("failed to apply the Deployment app")]
        struct Wrapped(#[source] kube::Error);
        let err = ReconcileError::from(Wrapped(kube::Error::Api(Box::new(status))));
        let text = err.to_string();
        assert_eq!(
            text,
            "failed to apply the Deployment app: configmaps \"app\" not found (NotFound, 404)"
        );
        assert!(!text.contains("Status {") && !text.contains('\n'), "{text}");
    }
}

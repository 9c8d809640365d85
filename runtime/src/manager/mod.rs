//! The manager: runs many controllers in one process over one shared cache, with leader
//! election, `/metrics`, `/healthz`, `/readyz` and graceful shutdown.
//!
//! [`Manager::run`] starts, in controller-runtime's order:
//! 1. the HTTP servers (metrics, probes);
//! 2. the caches: one [`InformerFactory`] for all controllers, waited on until every controller's
//!    handlers have seen the initial lists (`/readyz` turns 200), or the cache-sync timeout fails
//!    the run with an error naming the resource and the likely cause;
//! 3. leader election, if configured: the controllers start only once this process holds the
//!    lease;
//! 4. the controllers ([`Runnable`]s).
//!
//! It then runs until a shutdown is requested — SIGTERM or SIGINT, or
//! [`ShutdownHandle::shutdown`] — or until leadership is lost. On shutdown the controllers stop
//! taking new keys and in-flight reconciles get `graceful_shutdown_timeout` to finish; a second
//! request (a second signal) stops waiting and aborts them. Then the lease is released, and
//! informers and servers stop. Losing leadership stops the controllers the same way and makes
//! `run` return [`ManagerError::LeaderElection`]: like controller-runtime, a process that lost the
//! lease exits and is restarted, rather than racing the new leader.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kube::Client;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub mod entry;
mod health;
mod leader_election;
pub mod metrics;

pub use health::{ReadyCheck, ReadyChecks, metrics_router, probes_router};
pub use leader_election::{LeaderElectionConfig, LeaderElectionError, LeaderElector};

use crate::informer::{InformerFactory, InformerOptions, Registration};
use crate::task::AbortOnDrop;
use health::serve;
use metrics::Metrics;

/// Why the manager could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// A listen address could not be bound.
    #[error(
        "failed to bind the {what} address {addr}: {source}; pick a free port or `0` to disable it"
    )]
    Bind {
        /// `metrics` or `health probe`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A cache did not sync in time.
    #[error(
        "timed out after {timeout:?} waiting for the cache of {resource} (controller {controller:?}) to sync: {cause}"
    )]
    CacheSyncTimeout {
        /// The controller that needs the cache.
        controller: String,
        /// The resource whose list did not complete.
        resource: String,
        /// The configured timeout.
        timeout: Duration,
        /// The likely cause, from the last list/watch error.
        cause: String,
    },
    /// Leader election failed or leadership was lost.
    #[error(transparent)]
    LeaderElection(#[from] leader_election::LeaderElectionError),
    /// The webhook server could not be set up.
    #[error(transparent)]
    Webhook(#[from] crate::webhook::WebhookError),
    /// Installing the signal handlers failed.
    #[error("failed to install SIGTERM/SIGINT handlers: {0}")]
    Signals(#[source] std::io::Error),
}

/// How a manager runs. Defaults: all namespaces, no leader election, no HTTP servers, 30 s
/// graceful shutdown, 2 min cache sync timeout, signals handled.
#[derive(Clone, Debug)]
pub struct ManagerConfig {
    /// Restrict every controller's caches to this namespace (`None`: all namespaces).
    pub namespace: Option<String>,
    /// Elect a leader on a Lease before starting controllers.
    pub leader_election: Option<LeaderElectionConfig>,
    /// Where `/metrics` is served (`None`: not served). Port 0 picks a free port, see
    /// [`Manager::metrics_addr`].
    pub metrics_bind_address: Option<SocketAddr>,
    /// Where `/healthz` and `/readyz` are served (`None`: not served).
    pub health_probe_bind_address: Option<SocketAddr>,
    /// How long in-flight reconciles may take to finish on shutdown (controller-runtime: 30 s).
    pub graceful_shutdown_timeout: Duration,
    /// How long to wait for the caches' initial lists (controller-runtime: 2 min).
    pub cache_sync_timeout: Duration,
    /// Shut down on SIGTERM / SIGINT (a second signal aborts in-flight reconciles).
    pub handle_signals: bool,
    /// Where webhooks are served, and their certificate, once [`Manager::webhooks`] is called.
    pub webhook: crate::webhook::WebhookServerConfig,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            namespace: None,
            leader_election: None,
            metrics_bind_address: None,
            health_probe_bind_address: None,
            graceful_shutdown_timeout: Duration::from_secs(30),
            cache_sync_timeout: Duration::from_secs(120),
            handle_signals: true,
            webhook: crate::webhook::WebhookServerConfig::default(),
        }
    }
}

/// Something the manager starts once this process leads, and stops on shutdown.
pub trait Runnable: Send + Sync + 'static {
    /// Name for logs.
    fn name(&self) -> &str;
    /// Runs until `stop` fires, then stops taking new work and returns once in-flight work is
    /// done. The manager aborts the future if that takes longer than the graceful timeout.
    fn start(self: Box<Self>, stop: CancellationToken) -> BoxFuture<'static, ()>;
    /// Whether it runs only while this replica leads (controllers: two replicas must not act on
    /// the same objects), or on every replica as soon as the caches have synced — a proxy serving
    /// traffic, a node agent (controller-runtime's `LeaderElectionRunnable`). Default: leader only.
    fn needs_leader_election(&self) -> bool {
        true
    }
}

/// Requests a shutdown of a running manager, like a signal: the first request is graceful, the
/// second aborts in-flight work. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    requests: Arc<watch::Sender<u32>>,
}

impl ShutdownHandle {
    fn new() -> Self {
        Self {
            requests: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Requests a shutdown (a second call: stop waiting for in-flight reconciles).
    pub fn shutdown(&self) {
        self.requests.send_modify(|n| *n += 1);
    }

    /// Waits until at least `n` shutdowns were requested.
    async fn requested(&self, n: u32) {
        let mut rx = self.requests.subscribe();
        // The sender lives in `self`, so `wait_for` cannot fail.
        let _ = rx.wait_for(|count| *count >= n).await;
    }
}

/// A cache a controller depends on.
struct CacheCheck {
    controller: String,
    resource: String,
    registration: Registration,
}

/// Runs controllers over one shared cache. See the [module docs](self).
///
/// ```no_run
/// # async fn example(client: kube::Client) -> anyhow::Result<()> {
/// use kubeforge::manager::{LeaderElectionConfig, Manager, ManagerConfig};
///
/// let config = ManagerConfig {
///     metrics_bind_address: Some("0.0.0.0:8080".parse()?),
///     health_probe_bind_address: Some("0.0.0.0:8081".parse()?),
///     // The Lease `my-operator` in namespace `my-operator-system`.
///     leader_election: Some(LeaderElectionConfig::new("my-operator-system", "my-operator")),
///     ..ManagerConfig::default()
/// };
/// let mut manager = Manager::new(client, config).await?;
/// // Controller::managed_by(&mut manager)… for each controller, then:
/// manager.run().await?; // until SIGTERM, or leadership is lost
/// # Ok(())
/// # }
/// ```
pub struct Manager {
    client: Client,
    config: ManagerConfig,
    factory: Arc<InformerFactory>,
    metrics: Metrics,
    runnables: Vec<Box<dyn Runnable>>,
    controller_names: HashSet<String>,
    /// The RBAC rules of the controllers added so far (what they watch, own and reconcile).
    rbac: Vec<k8s_openapi::api::rbac::v1::PolicyRule>,
    caches: Arc<Mutex<Vec<CacheCheck>>>,
    ready_checks: ReadyChecks,
    /// Last list/watch error per resource, for the cache-sync timeout message.
    watch_errors: Arc<Mutex<HashMap<String, LastWatchError>>>,
    shutdown: ShutdownHandle,
    metrics_listener: Option<TcpListener>,
    health_listener: Option<TcpListener>,
    webhooks: Option<crate::webhook::Webhooks>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("config", &self.config)
            .field("controllers", &self.controller_names)
            .finish_non_exhaustive()
    }
}

async fn bind(
    what: &'static str,
    addr: Option<SocketAddr>,
) -> Result<Option<TcpListener>, ManagerError> {
    match addr {
        None => Ok(None),
        Some(addr) => TcpListener::bind(addr)
            .await
            .map(Some)
            .map_err(|source| ManagerError::Bind { what, addr, source }),
    }
}

impl Manager {
    /// A manager talking to the cluster through `client`. Binds the HTTP addresses now, so that
    /// [`metrics_addr`](Self::metrics_addr) / [`health_probe_addr`](Self::health_probe_addr)
    /// are known before [`run`](Self::run).
    pub async fn new(client: Client, config: ManagerConfig) -> Result<Self, ManagerError> {
        let metrics_listener = bind("metrics", config.metrics_bind_address).await?;
        let health_listener = bind("health probe", config.health_probe_bind_address).await?;
        let options = InformerOptions {
            namespace: config.namespace.clone(),
            ..InformerOptions::default()
        };
        Ok(Self {
            factory: Arc::new(InformerFactory::with_options(client.clone(), options)),
            client,
            config,
            metrics: Metrics::new(),
            runnables: Vec::new(),
            controller_names: HashSet::new(),
            rbac: Vec::new(),
            caches: Arc::default(),
            ready_checks: Arc::default(),
            watch_errors: Arc::default(),
            shutdown: ShutdownHandle::new(),
            metrics_listener,
            health_listener,
            webhooks: None,
        })
    }

    /// The client controllers use.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The configuration.
    pub fn config(&self) -> &ManagerConfig {
        &self.config
    }

    /// The informer factory every controller shares.
    pub fn informers(&self) -> &Arc<InformerFactory> {
        &self.factory
    }

    /// The metrics registry served on `/metrics`; register operator metrics in it.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The bound `/metrics` address, if served.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The bound `/healthz` `/readyz` address, if served.
    pub fn health_probe_addr(&self) -> Option<SocketAddr> {
        self.health_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// A handle that shuts the manager down like SIGTERM does (tests, embedding).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Adds something to run while leading, or on every replica when its
    /// [`Runnable::needs_leader_election`] says so (controllers add themselves through their
    /// builder).
    pub fn add(&mut self, runnable: impl Runnable) {
        self.runnables.push(Box::new(runnable));
    }

    /// The webhooks this manager serves, to register handlers on. The first call binds
    /// [`ManagerConfig::webhook`]'s address and `/readyz` then waits for the webhook server;
    /// managers that never call it serve no webhooks.
    pub fn webhooks(&mut self) -> Result<&mut crate::webhook::Webhooks, ManagerError> {
        if self.webhooks.is_none() {
            self.webhooks = Some(crate::webhook::Webhooks::bind(&self.config.webhook)?);
        }
        Ok(self.webhooks.as_mut().expect("bound above"))
    }

    /// The bound webhook address, once [`webhooks`](Self::webhooks) was called.
    pub fn webhook_addr(&self) -> Option<SocketAddr> {
        self.webhooks
            .as_ref()
            .map(crate::webhook::Webhooks::local_addr)
    }

    /// Adds a `/readyz` check.
    pub fn add_ready_check(
        &self,
        name: impl Into<String>,
        check: impl Fn() -> bool + Send + Sync + 'static,
    ) {
        self.ready_checks
            .lock()
            .push((name.into(), Arc::new(check)));
    }

    /// Reserves a controller name; false if taken.
    pub(crate) fn claim_controller_name(&mut self, name: &str) -> bool {
        self.controller_names.insert(name.to_owned())
    }

    /// Records that `controller` needs the cache of `resource` (readiness and sync timeout).
    /// The RBAC rules the controllers added so far need: get/list/watch/update/patch on each
    /// primary (plus its status and finalizers), full access to owned types, get/list/watch on
    /// watched ones — whether the controller was declared with `#[kubeforge::controller]` or
    /// built with the [`Controller`](crate::controller::Controller) builder alone. The operator's
    /// `rbac` subcommand prints them (merged with the attribute-registered ones).
    pub fn rbac_rules(&self) -> &[k8s_openapi::api::rbac::v1::PolicyRule] {
        &self.rbac
    }

    pub(crate) fn add_rbac(
        &mut self,
        rules: impl IntoIterator<Item = k8s_openapi::api::rbac::v1::PolicyRule>,
    ) {
        self.rbac.extend(rules);
    }

    pub(crate) fn track_cache(&self, controller: &str, resource: &str, registration: Registration) {
        let check = registration.clone();
        self.add_ready_check(format!("{controller}/{resource}"), move || {
            check.has_synced()
        });
        self.caches.lock().push(CacheCheck {
            controller: controller.to_owned(),
            resource: resource.to_owned(),
            registration,
        });
    }

    /// A watch-error hook recording the last list/watch error of `resource`.
    /// The hook informers of this manager report list/watch failures to: it logs the first
    /// failure of each kind (a warning naming what failed, why, and the fix — repeats of the same
    /// failure only at debug level, the reflector logs its backoff) and keeps the last one for
    /// the cache-sync timeout message.
    pub(crate) fn watch_error_hook(&self, resource: &str) -> crate::informer::WatchErrorHook {
        let errors = self.watch_errors.clone();
        let resource = resource.to_owned();
        Arc::new(move |err: &crate::informer::ReflectorError| {
            let last = LastWatchError {
                cause: Cause::of(err),
                text: explain_watch_error(err),
            };
            let text = &last.text;
            let mut errors = errors.lock();
            if errors.get(&resource) == Some(&last) {
                tracing::debug!(%resource, error = %text, "list/watch failing again");
            } else {
                tracing::warn!(%resource, "{text}");
            }
            errors.insert(resource.clone(), last);
        })
    }

    /// Runs until shutdown; see the [module docs](self).
    pub async fn run(mut self) -> Result<(), ManagerError> {
        let servers = CancellationToken::new();
        let mut server_tasks = JoinSet::new();
        if let Some(listener) = self.metrics_listener.take() {
            tracing::info!(addr = ?listener.local_addr().ok(), "serving /metrics");
            server_tasks.spawn(serve(
                listener,
                metrics_router(self.metrics.clone()),
                servers.clone(),
            ));
        }
        if let Some(listener) = self.health_listener.take() {
            tracing::info!(addr = ?listener.local_addr().ok(), "serving /healthz and /readyz");
            server_tasks.spawn(serve(
                listener,
                probes_router(self.ready_checks.clone()),
                servers.clone(),
            ));
        }
        if let Some(webhooks) = self.webhooks.take() {
            // Every replica serves webhooks, leader or not (kube-apiserver calls any of them).
            let serving = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let up = serving.clone();
            self.add_ready_check("webhook server", move || {
                up.load(std::sync::atomic::Ordering::SeqCst)
            });
            server_tasks.spawn(webhooks.server(&self.metrics, serving, servers.clone())?);
        }
        if self.config.handle_signals {
            spawn_signal_forwarder(self.shutdown.clone()).map_err(ManagerError::Signals)?;
        }

        let result = self.run_caches_and_controllers().await;

        self.factory.shutdown().await;
        servers.cancel();
        while server_tasks.join_next().await.is_some() {}
        tracing::info!("manager stopped");
        result
    }

    async fn run_caches_and_controllers(&mut self) -> Result<(), ManagerError> {
        self.factory.start();
        tokio::select! {
            synced = self.wait_for_caches() => synced?,
            () = self.shutdown.requested(1) => return Ok(()),
        }
        // Runnables that serve on every replica start now, whoever leads, and stop last.
        let (everywhere, leading): (Vec<_>, Vec<_>) = self
            .runnables
            .drain(..)
            .partition(|r| !r.needs_leader_election());
        self.runnables = leading;
        let stop_everywhere = CancellationToken::new();
        let mut unelected = JoinSet::new();
        for runnable in everywhere {
            tracing::info!(name = runnable.name(), "starting (on every replica)");
            unelected.spawn(runnable.start(stop_everywhere.clone()));
        }
        let result = self.lead_and_run().await;
        stop_everywhere.cancel();
        let deadline = Instant::now() + self.config.graceful_shutdown_timeout;
        let drained = tokio::select! {
            () = async { while unelected.join_next().await.is_some() {} } => true,
            () = tokio::time::sleep_until(deadline) => false,
        };
        if !drained {
            tracing::warn!(
                "runnables serving on every replica did not stop in time; aborting them"
            );
            unelected.abort_all();
            while unelected.join_next().await.is_some() {}
        }
        result
    }

    /// Waits to lead (with leader election), runs the leader-only runnables until shutdown or
    /// a lost lease, stops them, and releases the lease.
    async fn lead_and_run(&mut self) -> Result<(), ManagerError> {
        let elector = match &self.config.leader_election {
            Some(config) => Some(Arc::new(LeaderElector::new(
                self.client.clone(),
                config.clone(),
                Some(&self.metrics),
            )?)),
            None => None,
        };
        let not_leading = CancellationToken::new();
        let hold = match &elector {
            None => None,
            Some(elector) => {
                let cancel = CancellationToken::new();
                let acquired = tokio::select! {
                    acquired = elector.acquire(&cancel) => acquired,
                    () = self.shutdown.requested(1) => false,
                };
                if !acquired {
                    return Ok(());
                }
                let (elector, release) = (elector.clone(), not_leading.clone());
                Some(AbortOnDrop(tokio::spawn(async move {
                    elector.hold(&release).await
                })))
            }
        };

        let stop = CancellationToken::new();
        let mut controllers = JoinSet::new();
        for runnable in self.runnables.drain(..) {
            tracing::info!(name = runnable.name(), "starting controller");
            controllers.spawn(runnable.start(stop.clone()));
        }

        let mut hold = hold;
        let lost = tokio::select! {
            () = self.shutdown.requested(1) => None,
            Some(Ok(result)) = async { match hold.as_mut() { Some(h) => Some((&mut h.0).await), None => None } } => {
                hold = None;
                Some(result)
            }
        };
        // Cancel first: once "stopping controllers" is logged, no worker takes a new key (a test
        // under load saw a key taken between the log line and the cancel).
        stop.cancel();
        tracing::info!("stopping controllers");
        let deadline = Instant::now() + self.config.graceful_shutdown_timeout;
        let drained = tokio::select! {
            () = async { while controllers.join_next().await.is_some() {} } => true,
            () = tokio::time::sleep_until(deadline) => false,
            () = self.shutdown.requested(2) => false,
        };
        if !drained {
            tracing::warn!(
                timeout = ?self.config.graceful_shutdown_timeout,
                "in-flight reconciles did not finish in time (or a second shutdown signal arrived); aborting them"
            );
            controllers.abort_all();
            while controllers.join_next().await.is_some() {}
        }
        // Release the lease only now that no controller acts any more.
        not_leading.cancel();
        if let Some(mut hold) = hold
            && let Ok(Err(err)) = (&mut hold.0).await
        {
            return Err(err.into());
        }
        match lost {
            Some(Err(err)) => Err(err.into()),
            _ => Ok(()),
        }
    }

    /// Waits until every tracked cache has synced, or fails with the first unsynced one. Waits
    /// on each handler registration's synced signal, in registration order.
    async fn wait_for_caches(&self) -> Result<(), ManagerError> {
        let deadline = Instant::now() + self.config.cache_sync_timeout;
        let caches: Vec<_> = self
            .caches
            .lock()
            .iter()
            .map(|c| {
                (
                    c.controller.clone(),
                    c.resource.clone(),
                    c.registration.clone(),
                )
            })
            .collect();
        for (controller, resource, registration) in caches {
            if tokio::time::timeout_at(deadline, registration.wait_synced())
                .await
                .is_err()
            {
                let last = self.watch_errors.lock().get(&resource).cloned();
                return Err(ManagerError::CacheSyncTimeout {
                    cause: likely_cause(&resource, last.as_ref()),
                    controller,
                    resource,
                    timeout: self.config.cache_sync_timeout,
                });
            }
        }
        tracing::info!("all caches synced");
        Ok(())
    }
}

/// What the last list/watch error of a resource says about why its cache does not sync, read
/// from the error's type and HTTP status code (not its text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// 403: RBAC does not allow list/watch.
    Forbidden,
    /// 404: the API server does not serve the resource (a CRD not installed).
    NotServed,
    /// 401, or the client could not authenticate.
    Unauthorized,
    /// No HTTP answer: connection refused, DNS, TLS, timeout.
    Unreachable,
    /// Anything else.
    Other,
}

impl Cause {
    fn of(err: &crate::informer::ReflectorError) -> Self {
        use crate::informer::ReflectorError as E;
        let source = match err {
            E::List { source, .. } | E::Watch { source, .. } | E::WatchStream { source, .. } => {
                source
            }
            _ => return Self::Other,
        };
        match source {
            kube::Error::Api(status) => match status.code {
                403 => Self::Forbidden,
                404 => Self::NotServed,
                401 => Self::Unauthorized,
                _ => Self::Other,
            },
            kube::Error::Auth(_) => Self::Unauthorized,
            kube::Error::HyperError(_) | kube::Error::Service(_) => Self::Unreachable,
            _ => Self::Other,
        }
    }
}

/// The last list/watch error of a resource: its cause and the message the user saw.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LastWatchError {
    cause: Cause,
    text: String,
}

/// Turns the last list/watch error into a likely cause with what to do about it.
fn likely_cause(resource: &str, last: Option<&LastWatchError>) -> String {
    let Some(last) = last else {
        return "no list or watch error was seen; the initial list is slow or the API server does not answer".to_owned();
    };
    let hint = match last.cause {
        Cause::Forbidden => format!(
            "RBAC forbids listing/watching {resource}: grant `list` and `watch` on it to the operator's service account (the `rbac` subcommand prints the ClusterRole)"
        ),
        Cause::NotServed => format!(
            "the API server does not serve {resource}: is its CRD installed? (the `crds` subcommand prints them for `kubectl apply -f -`)"
        ),
        Cause::Unauthorized => {
            "the API server rejected the credentials: check --kubeconfig / the service account token"
                .to_owned()
        }
        Cause::Unreachable => {
            "the API server is unreachable: check --kubeconfig and the network".to_owned()
        }
        Cause::Other => "see the last error".to_owned(),
    };
    format!("{hint}; last error: {}", last.text)
}

/// Forwards SIGTERM and SIGINT to `handle` (each signal counts once).
fn spawn_signal_forwarder(handle: ShutdownHandle) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    s = term.recv() => { if s.is_none() { return; } "SIGTERM" }
                    s = int.recv() => { if s.is_none() { return; } "SIGINT" }
                };
                tracing::info!(
                    signal = name,
                    "shutdown requested; a second signal aborts in-flight reconciles"
                );
                handle.shutdown();
            }
        });
    }
    #[cfg(not(unix))]
    {
        tokio::spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                handle.shutdown();
            }
        });
    }
    Ok(())
}

/// A failed list or watch as the user needs to read it: what failed, why, and for the causes an
/// operator meets first (a CRD not installed, RBAC missing a rule, rejected credentials) the fix.
pub(crate) fn explain_watch_error(err: &crate::informer::ReflectorError) -> String {
    use crate::informer::ReflectorError as E;
    let (resource, source) = match err {
        E::List { resource, source }
        | E::Watch { resource, source }
        | E::WatchStream { resource, source } => (resource, source),
        other => return other.to_string(),
    };
    let kube::Error::Api(status) = source else {
        return err.to_string();
    };
    // `/apis/<group>/<version>/[namespaces/<ns>/]<plural>` or `/api/v1/...`
    let parts: Vec<&str> = resource.trim_start_matches('/').split('/').collect();
    let (group_version, plural) = match parts.as_slice() {
        ["api", v, .., plural] => (format!("core/{v}"), *plural),
        ["apis", g, v, .., plural] => (format!("{g}/{v}"), *plural),
        _ => (String::new(), resource.as_str()),
    };
    match status.code {
        404 => format!(
            "the server has no resource {plural} in {group_version} (list/watch {resource} got \
             404): is its CustomResourceDefinition installed? Apply the operator's CRDs: \
             `<operator> crds | kubectl apply -f -` (or `kubectl apply -k config/crd`)"
        ),
        403 => format!(
            "the operator may not list/watch {plural} in {group_version}: {} — its RBAC lacks a \
             rule; apply the role its `rbac` subcommand prints (`kubeforge generate` writes it to \
             config/rbac/role.yaml)",
            status.message
        ),
        401 => format!(
            "the server rejected the operator's credentials listing {resource}: {} — check the \
             kubeconfig, or the service account token in the cluster",
            status.message
        ),
        code => format!(
            "list/watch {resource} failed: {} ({}, {code})",
            status.message, status.reason
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_sync_cause_is_read_from_the_status_code() {
        let list_failed = |code: u16, message: &str| crate::informer::ReflectorError::List {
            resource: "/api/v1/configmaps".to_owned(),
            source: kube::Error::Api(Box::new(
                kube::core::Status::failure(message, "x").with_code(code),
            )),
        };
        let last = |err: &crate::informer::ReflectorError| LastWatchError {
            cause: Cause::of(err),
            text: explain_watch_error(err),
        };
        // The message does not say "forbidden"; the code does.
        let rbac = likely_cause("configmaps", Some(&last(&list_failed(403, "denied"))));
        assert!(
            rbac.starts_with("RBAC forbids listing/watching configmaps"),
            "{rbac}"
        );
        let crd = likely_cause(
            "widgets.example.com",
            Some(&last(&list_failed(404, "gone"))),
        );
        assert!(crd.contains("is its CRD installed?"), "{crd}");
        // A message that mentions 403 but comes with a 500 is not an RBAC problem.
        let other = likely_cause("pods", Some(&last(&list_failed(500, "proxy said 403"))));
        assert!(other.starts_with("see the last error"), "{other}");
        assert!(likely_cause("pods", None).contains("no list or watch error"));
    }

    #[test]
    fn the_first_watch_failure_says_what_failed_why_and_the_fix() {
        let failed = |resource: &str, code: u16, reason: &str, message: &str| {
            explain_watch_error(&crate::informer::ReflectorError::List {
                resource: resource.to_owned(),
                source: kube::Error::Api(Box::new(
                    kube::core::Status::failure(message, reason).with_code(code),
                )),
            })
        };
        let crd = failed(
            "/apis/web.example.com/v1/staticsites",
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
        assert!(
            crd.contains("no resource staticsites in web.example.com/v1")
                && crd.contains("CustomResourceDefinition installed?")
                && crd.contains("crds | kubectl apply -f -"),
            "{crd}"
        );
        let rbac = failed(
            "/api/v1/namespaces/ns/secrets",
            403,
            "Forbidden",
            "secrets is forbidden: User \"system:serviceaccount:op:op\" cannot list resource \"secrets\"",
        );
        assert!(
            rbac.contains("may not list/watch secrets in core/v1")
                && rbac.contains("`rbac` subcommand"),
            "{rbac}"
        );
        let other = failed("/api/v1/pods", 500, "InternalError", "etcd is down");
        assert_eq!(
            other,
            "list/watch /api/v1/pods failed: etcd is down (InternalError, 500)"
        );
    }

    #[tokio::test]
    async fn shutdown_handle_counts_requests() {
        let handle = ShutdownHandle::new();
        handle.shutdown();
        tokio::time::timeout(Duration::from_secs(1), handle.requested(1))
            .await
            .unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(50), handle.requested(2))
                .await
                .is_err()
        );
        handle.shutdown();
        tokio::time::timeout(Duration::from_secs(1), handle.requested(2))
            .await
            .unwrap();
    }
}

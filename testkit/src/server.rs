//! [`ApiServer`]: starting, stopping and reaching the embedded API server.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::error::Error;
use crate::faults::{FaultState, Faults};
use crate::resources::ResourceKey;
use crate::store::Store;
use crate::{kubeconfig, objects};

/// Default number of change events kept for watches and continue tokens.
pub const DEFAULT_HISTORY_WINDOW: usize = 10_000;
/// Default interval between watch bookmarks (the real server sends one about every minute;
/// tests want them sooner).
pub const DEFAULT_BOOKMARK_INTERVAL: Duration = Duration::from_secs(1);

/// State shared by the HTTP handlers, the fault handle and the server handle.
pub(crate) struct Shared {
    pub store: Mutex<Store>,
    pub faults: FaultState,
    pub bookmark_interval: Duration,
    /// Answer a watch from a too-old resourceVersion with 200 + an ERROR event instead of 410.
    pub expired_watch_as_event: bool,
    /// Sends `()` to every watch stream on shutdown.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// Options for [`ApiServer`]; start with [`ApiServer::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ApiServerBuilder {
    port: u16,
    history_window: usize,
    bookmark_interval: Duration,
    expired_watch_as_event: bool,
    data_dir: Option<std::path::PathBuf>,
}

impl Default for ApiServerBuilder {
    fn default() -> Self {
        ApiServerBuilder {
            port: 0,
            history_window: DEFAULT_HISTORY_WINDOW,
            bookmark_interval: DEFAULT_BOOKMARK_INTERVAL,
            expired_watch_as_event: false,
            data_dir: None,
        }
    }
}

impl ApiServerBuilder {
    /// Port on 127.0.0.1; 0 (the default) picks a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// How many change events are kept: watches from older resourceVersions get 410 Gone.
    pub fn history_window(mut self, events: usize) -> Self {
        self.history_window = events.max(1);
        self
    }

    /// How often a watch with `allowWatchBookmarks=true` receives a BOOKMARK.
    pub fn bookmark_interval(mut self, every: Duration) -> Self {
        self.bookmark_interval = every.max(Duration::from_millis(10));
        self
    }

    /// How a watch from a resourceVersion older than the history window is refused: `false`
    /// (default) answers HTTP 410 Gone before the stream starts; `true` answers 200 with one
    /// `ERROR` event carrying a 410 Status, as kube-apiserver's watch cache does. Clients must
    /// handle both.
    pub fn expired_watch_as_event(mut self, yes: bool) -> Self {
        self.expired_watch_as_event = yes;
        self
    }

    /// Keeps the objects in `dir` (created if missing), so they survive a restart, a crash or
    /// `SIGKILL`: every write is durable before it is answered, and resourceVersions continue
    /// from where they were. Without it the server is in memory only. See [`crate::persist`].
    pub fn data_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Binds the port and starts serving in the background of the current tokio runtime.
    pub async fn start(self) -> Result<ApiServer, Error> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .map_err(|source| Error::Bind {
                port: self.port,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            port: self.port,
            source,
        })?;
        let (stop_watches, shutdown) = tokio::sync::watch::channel(false);
        let mut store = Store::new(self.history_window);
        if let Some(dir) = &self.data_dir {
            let (persist, restored, rv) = crate::persist::Persist::open(dir)?;
            store.restore(persist, restored, rv);
            let crds = ResourceKey {
                group: "apiextensions.k8s.io".into(),
                plural: "customresourcedefinitions".into(),
            };
            for key in store.keys(&crds) {
                if let Some(crd) = store.get(&crds, &key) {
                    crate::crd::register(&mut store, &crd);
                }
            }
        }
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            objects::seed_namespace(&mut store, ns);
        }
        objects::seed_apiserver_service(&mut store, addr.port());
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            faults: FaultState::default(),
            bookmark_interval: self.bookmark_interval,
            expired_watch_as_event: self.expired_watch_as_event,
            shutdown,
        });
        let app = crate::handlers::router(shared.clone());
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "embedded API server stopped with an error");
            }
        });
        tracing::info!(%addr, "embedded API server listening");
        Ok(ApiServer {
            addr,
            shared,
            stop: Some(stop_tx),
            stop_watches,
            task: Some(task),
            kubeconfig_file: Default::default(),
        })
    }
}

/// An in-process Kubernetes API server on `127.0.0.1`. Dropping it stops the server.
pub struct ApiServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    stop_watches: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// A temporary kubeconfig file, written on first use and removed on drop.
    kubeconfig_file: std::sync::OnceLock<std::path::PathBuf>,
}

impl std::fmt::Debug for ApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiServer")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl ApiServer {
    /// Starts a server on a free port with default options.
    pub async fn start() -> Result<ApiServer, Error> {
        Self::builder().start().await
    }

    /// Configures a server (port, seed objects, CRDs) before starting it.
    pub fn builder() -> ApiServerBuilder {
        ApiServerBuilder::default()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A client for this server (default namespace `default`).
    pub fn client(&self) -> kube::Client {
        let uri: http::Uri = self.url().parse().unwrap_or_default();
        let mut config = kube::Config::new(uri);
        config.default_namespace = "default".into();
        config.read_timeout = None;
        // Building a client from a plain-HTTP config cannot fail for a well-formed URL.
        kube::Client::try_from(config)
            .unwrap_or_else(|e| panic!("failed to build a client for {}: {e}", self.url()))
    }

    /// A kubeconfig for this server (one cluster, one context, no credentials).
    pub fn kubeconfig(&self) -> kube::config::Kubeconfig {
        kubeconfig::for_url(&self.url())
    }

    /// Writes a kubeconfig for `kubectl --kubeconfig PATH` and operators.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        let yaml = kubeconfig::to_yaml(&self.kubeconfig()).map_err(std::io::Error::other)?;
        std::fs::write(path, yaml)
    }

    /// A kubeconfig file for this server in a temporary directory (written once, removed
    /// when the server is dropped).
    pub fn kubeconfig_path(&self) -> std::io::Result<&Path> {
        if let Some(p) = self.kubeconfig_file.get() {
            return Ok(p);
        }
        let dir = std::env::temp_dir().join(format!("kubeforge-testkit-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("kubeconfig");
        self.write_kubeconfig(&path)?;
        Ok(self.kubeconfig_file.get_or_init(|| path))
    }

    /// The fault injector: make requests fail, lag or drop their watches, and count them.
    pub fn faults(&self) -> Faults {
        Faults {
            shared: self.shared.clone(),
        }
    }

    /// Inserts objects directly (no HTTP), stamping metadata as a create does. For benchmarks
    /// that need 100k objects in place quickly. Namespaces named by the objects must exist.
    pub fn seed(&self, api_version: &str, kind: &str, objects: Vec<Value>) -> Result<(), Error> {
        let mut store = self.shared.store.lock();
        let info = store
            .registry
            .by_kind(api_version, kind)
            .ok_or_else(|| Error::UnknownKind {
                api_version: api_version.to_string(),
                kind: kind.to_string(),
            })?;
        for (index, mut obj) in objects.into_iter().enumerate() {
            if !obj.is_object() {
                return Err(Error::Seed {
                    index,
                    message: "not a JSON object".into(),
                });
            }
            obj["apiVersion"] = json!(api_version);
            obj["kind"] = json!(kind);
            let ns = obj["metadata"]["namespace"].as_str().map(str::to_string);
            let ns = if info.namespaced {
                Some(ns.unwrap_or_else(|| "default".into()))
            } else {
                None
            };
            objects::create(
                &mut store,
                &info,
                ns.as_deref(),
                obj,
                &objects::WriteOptions::default(),
            )
            .map_err(|e| Error::Seed {
                index,
                message: e.message,
            })?;
        }
        Ok(())
    }

    /// Stops accepting requests, ends open watches, and waits for the server task.
    pub async fn shutdown(mut self) {
        self.stop_now();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    fn stop_now(&mut self) {
        let _ = self.stop_watches.send(true);
        self.shared.store.lock().close_watches();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop_now();
        if let Some(dir) = self.kubeconfig_file.get().and_then(|p| p.parent()) {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

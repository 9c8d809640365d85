//! A real `kube-apiserver` and `etcd` for tests: controller-runtime's envtest, for Rust.
//!
//! The embedded [`ApiServer`](crate::ApiServer) is fast and can inject faults, but it is only
//! as good as its fidelity. [`ControlPlane`] runs the real thing: etcd and kube-apiserver as child processes on
//! free loopback ports, with their own CA and serving certificate, a `system:masters` admin
//! identity (a static bearer token), RBAC authorization, and a kubeconfig in a temp dir. When
//! `kube-controller-manager` was built too, it runs the garbage collector and the namespace
//! controller, so cascading and namespace deletions complete as on a real cluster (envtest
//! has no controllers; opt out with [`ControlPlaneBuilder::without_controller_manager`]).
//!
//! Binaries are found through `TEST_ASSET_KUBE_APISERVER` / `TEST_ASSET_ETCD` (paths of the
//! binaries), then `KUBEBUILDER_ASSETS` (a directory holding both, as for envtest), then the
//! cache that `bash scripts/control-plane.sh` fills
//! (`~/.cache/kubeforge/control-plane/<version>/`, or `$KUBEFORGE_CACHE/control-plane/...`).
//!
//! Suites share one plane per test process through [`ControlPlane::shared`];
//! [`TestCluster::from_env`](crate::TestCluster::from_env) uses it when
//! `KUBEFORGE_TEST_BACKEND=control-plane`, so the conformance suite runs against both servers.
//!
//! No orphans: the children are killed when the [`ControlPlane`] is dropped (also while a test
//! panics), and they are started through `setpriv --pdeathsig KILL`, so the kernel kills them
//! when the test process itself dies without unwinding (abort, SIGKILL). The workspace forbids
//! `unsafe_code`, which rules out a `pre_exec` hook calling `prctl`; `setpriv` (util-linux) sets
//! the same parent-death signal and then execs the binary under the same pid.
//!
//! This file holds the public API (the builder, [`ControlPlane`] and its errors); the rest is
//! split by concern: `binaries` finds the executables, `certificates` writes the CA, serving
//! certificate and tokens, `boot` starts the processes in order and waits until each is ready,
//! `process` spawns and supervises the children, and `crds` installs CRDs.

mod binaries;
mod boot;
mod certificates;
mod crds;
mod process;

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::config::Kubeconfig;

pub use binaries::{Binaries, cache_dir};
use process::{Spawner, Supervised};

/// The Kubernetes version `scripts/control-plane.sh` builds; the cache directory is named after it.
pub const CONTROL_PLANE_VERSION: &str = "v1.37.2";

/// The command that builds the binaries into the cache; named in every "not found" error.
pub const BUILD_COMMAND: &str = "bash scripts/control-plane.sh";

/// The user name of the admin identity (member of `system:masters`) the client and kubeconfig use.
pub const ADMIN_USER: &str = "kubeforge-admin";

/// What went wrong while starting, using or stopping a [`ControlPlane`].
#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    /// A binary was not found anywhere it is looked for.
    #[error(
        "{binary} not found (looked at: {searched}). Build the control plane with `{BUILD_COMMAND}` \
         from the kubeforge repository, or set {env} to the path of a {binary} binary \
         (or KUBEBUILDER_ASSETS to a directory holding kube-apiserver and etcd)"
    )]
    BinaryNotFound {
        /// `kube-apiserver` or `etcd`.
        binary: &'static str,
        /// The env var that names the binary directly.
        env: &'static str,
        /// Every place that was looked at, in order.
        searched: String,
    },
    /// A file-system or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Generating the CA, serving certificate or service-account key failed.
    #[error("generating the control plane's certificates: {0}")]
    Certificates(#[from] rcgen::Error),
    /// A child process exited while it should have been serving.
    #[error("{process} exited with {status} before it was ready; last lines of {log}:\n{tail}")]
    Exited {
        /// `etcd` or `kube-apiserver`.
        process: &'static str,
        /// Its exit status.
        status: ExitStatus,
        /// The log file holding its stdout and stderr.
        log: PathBuf,
        /// The last lines of that log.
        tail: String,
    },
    /// A child process did not become ready in time.
    #[error(
        "{process} was not ready after {waited:?} (last check: {last_error}); last lines of {log}:\n{tail}\n\
         On a busy machine raise the limit with ControlPlane::builder().start_timeout(..)"
    )]
    NotReady {
        /// `etcd` or `kube-apiserver`.
        process: &'static str,
        /// How long it was waited for.
        waited: Duration,
        /// The last readiness check's failure.
        last_error: String,
        /// The log file holding its stdout and stderr.
        log: PathBuf,
        /// The last lines of that log.
        tail: String,
    },
    /// The kubeconfig written for the control plane could not be loaded into a client.
    #[error("loading the control plane's kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The kubeconfig file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// A CRD manifest could not be read or is not a valid CustomResourceDefinition.
    #[error("CRD manifest {path}: {message}")]
    CrdManifest {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        message: String,
    },
    /// A CRD was accepted but did not report the `Established` condition in time.
    #[error("CRD {name} was not Established after {waited:?}; its conditions: {conditions}")]
    CrdNotEstablished {
        /// The CRD's name.
        name: String,
        /// How long it was waited for.
        waited: Duration,
        /// The conditions it had last.
        conditions: String,
    },
    /// A request to the API server failed.
    #[error("request to the control plane failed: {0}")]
    Kube(#[from] kube::Error),
    /// The process-wide shared control plane failed to start (the first caller saw why).
    #[error("the shared control plane failed to start: {0}")]
    Shared(String),
}

type Result<T, E = ControlPlaneError> = std::result::Result<T, E>;

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ControlPlaneError {
    let what = what.into();
    move |source| ControlPlaneError::Io { what, source }
}

/// Options for [`ControlPlane::builder`].
#[derive(Debug, Clone)]
pub struct ControlPlaneBuilder {
    binaries: Option<Binaries>,
    crd_paths: Vec<PathBuf>,
    apiserver_args: Vec<String>,
    start_timeout: Duration,
    controller_manager: bool,
    extra_controllers: Vec<String>,
}

impl Default for ControlPlaneBuilder {
    fn default() -> Self {
        ControlPlaneBuilder {
            binaries: None,
            crd_paths: Vec::new(),
            apiserver_args: Vec::new(),
            // Two cores shared with compilers: a cold kube-apiserver start can take half a minute.
            start_timeout: Duration::from_secs(120),
            controller_manager: true,
            extra_controllers: Vec::new(),
        }
    }
}

impl ControlPlaneBuilder {
    /// Use these binaries instead of discovering them.
    pub fn binaries(mut self, binaries: Binaries) -> Self {
        self.binaries = Some(binaries);
        self
    }

    /// Install the CRDs in this file or directory (`*.yaml`, `*.yml`, `*.json`; documents of
    /// other kinds are skipped) before `start` returns.
    pub fn crd_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.crd_paths.push(path.into());
        self
    }

    /// Pass an extra flag to kube-apiserver (later flags override earlier ones), e.g.
    /// `--feature-gates=...`.
    pub fn apiserver_arg(mut self, arg: impl Into<String>) -> Self {
        self.apiserver_args.push(arg.into());
        self
    }

    /// Do not run kube-controller-manager even if it was built (envtest's setup: deletions
    /// with dependents and namespace deletions then never complete).
    pub fn without_controller_manager(mut self) -> Self {
        self.controller_manager = false;
        self
    }

    /// Run these kube-controller-manager controllers too (its `--controllers` names, e.g.
    /// `replicaset`, `deployment`), besides the garbage collector and the namespace controller:
    /// for tests that compare kube-controller-manager's behaviour with an operator's.
    pub fn controllers<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.extra_controllers
            .extend(names.into_iter().map(Into::into));
        self
    }

    /// How long to wait for etcd and for kube-apiserver's `/readyz` (default 120 s each).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Starts etcd and kube-apiserver and waits until the API server is ready.
    pub async fn start(self) -> Result<ControlPlane> {
        let binaries = match self.binaries {
            Some(binaries) => binaries,
            None => Binaries::discover()?,
        };
        process::remove_stale_dirs();
        // A free port is only free until someone else binds it; a child that lost that race
        // exits with "address already in use", and a new attempt picks new ports.
        let mut attempt = 1;
        let plane = loop {
            match boot::boot_once(
                &binaries,
                &self.apiserver_args,
                self.start_timeout,
                self.controller_manager
                    .then_some(self.extra_controllers.as_slice()),
            )
            .await
            {
                Err(ControlPlaneError::Exited { ref tail, .. })
                    if attempt < 3 && tail.contains("address already in use") =>
                {
                    attempt += 1;
                }
                result => break result?,
            }
        };
        if !self.crd_paths.is_empty() {
            plane.install_crds(&self.crd_paths).await?;
        }
        Ok(plane)
    }
}

/// A shared plane once started: the runtime its client's connections live on, and the plane.
type Started = Result<(tokio::runtime::Runtime, ControlPlane), String>;

/// A running etcd + kube-apiserver pair; stopped (children killed and reaped) on drop.
pub struct ControlPlane {
    // Field order is drop order: the children go before the spawner thread and the temp dir.
    controller_manager: Option<Supervised>,
    apiserver: Option<Supervised>,
    etcd: Option<Supervised>,
    spawner: Spawner,
    client: Option<kube::Client>,
    url: String,
    /// etcd's plain-HTTP client port (for [`compact`](Self::compact)).
    etcd_port: u16,
    kubeconfig_path: PathBuf,
    dir: tempfile::TempDir,
}

impl fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlPlane")
            .field("url", &self.url)
            .field("kubeconfig", &self.kubeconfig_path)
            .field("pids", &self.pids())
            .finish()
    }
}

impl ControlPlane {
    /// Starts a control plane with the default options.
    pub async fn start() -> Result<ControlPlane> {
        ControlPlaneBuilder::default().start().await
    }

    /// One control plane for the whole test process, started on first use.
    ///
    /// A test suite that runs each test against the real server cannot afford a fresh
    /// kube-apiserver per test (seconds and hundreds of MiB each on a 2-core machine), so its
    /// tests share this one and isolate themselves by namespace. It is never dropped: its
    /// processes die with the test process (parent-death signal) and its temp dir is removed by
    /// the next start after this process is gone. Its [`client`](Self::client) works from any
    /// runtime (its connections live on a runtime owned by the shared plane).
    pub async fn shared() -> Result<&'static ControlPlane> {
        tokio::task::spawn_blocking(Self::shared_blocking)
            .await
            .map_err(|err| ControlPlaneError::Shared(format!("the starting task failed: {err}")))?
    }

    /// [`shared`](Self::shared) for code outside an async runtime.
    pub fn shared_blocking() -> Result<&'static ControlPlane> {
        static SHARED: std::sync::OnceLock<Started> = std::sync::OnceLock::new();
        Self::start_shared(&SHARED, ControlPlane::builder())
    }

    /// A second shared control plane whose kube-apiserver has its watch cache off, so lists and
    /// watches read etcd: the only place [`compact`](Self::compact) is seen (with the cache,
    /// kube-apiserver serves continued lists and recent watches from memory, which etcd
    /// compaction does not touch). For tests of 410 Gone after compaction.
    pub async fn shared_without_watch_cache() -> Result<&'static ControlPlane> {
        static UNCACHED: std::sync::OnceLock<Started> = std::sync::OnceLock::new();
        tokio::task::spawn_blocking(|| {
            Self::start_shared(
                &UNCACHED,
                ControlPlane::builder()
                    .apiserver_arg("--watch-cache=false")
                    .without_controller_manager(),
            )
        })
        .await
        .map_err(|err| ControlPlaneError::Shared(format!("the starting task failed: {err}")))?
    }

    /// Starts the plane `builder` describes once per process, in `cell`, on a runtime of its own.
    fn start_shared(
        cell: &'static std::sync::OnceLock<Started>,
        builder: ControlPlaneBuilder,
    ) -> Result<&'static ControlPlane> {
        let started = cell.get_or_init(|| {
            // A runtime of its own that lives as long as the plane: the plane's client runs its
            // connection tasks there, so it keeps working after the test that started it ends.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("kubeforge-shared-control-plane")
                .enable_all()
                .build()
                .map_err(|err| format!("building a runtime to start it: {err}"))?;
            let plane = runtime
                .block_on(builder.start())
                .map_err(|err| err.to_string())?;
            Ok((runtime, plane))
        });
        match started {
            Ok((_, plane)) => Ok(plane),
            Err(message) => Err(ControlPlaneError::Shared(message.clone())),
        }
    }

    /// Compacts etcd's history up to now, as kube-apiserver does every few minutes: lists
    /// continued from an older token, and watches from an older resourceVersion that the watch
    /// cache does not hold, then get 410 Gone. Returns the revision compacted to.
    ///
    /// # Errors
    /// When etcd cannot be reached.
    pub async fn compact(&self) -> std::io::Result<i64> {
        crate::etcd::compact(self.etcd_port).await
    }

    /// Options: CRDs to install, extra kube-apiserver flags, timeouts, explicit binaries.
    pub fn builder() -> ControlPlaneBuilder {
        ControlPlaneBuilder::default()
    }

    /// The API server's base URL, `https://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A client authenticated as the `system:masters` admin.
    pub fn client(&self) -> kube::Client {
        self.client
            .clone()
            .expect("ControlPlane::client is set before start() returns")
    }

    /// The kubeconfig file (CA, server URL, admin token); valid while the control plane runs.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// The kubeconfig as a value, e.g. to build a client with other options.
    pub fn kubeconfig(&self) -> Result<Kubeconfig> {
        Kubeconfig::read_from(&self.kubeconfig_path).map_err(|err| ControlPlaneError::Kubeconfig {
            path: self.kubeconfig_path.clone(),
            message: err.to_string(),
        })
    }

    /// Copies the kubeconfig to `path` (it names the CA by absolute path inside the temp dir).
    pub fn write_kubeconfig(&self, path: &Path) -> Result<()> {
        fs::copy(&self.kubeconfig_path, path)
            .map(|_| ())
            .map_err(io_err(format!(
                "copying the kubeconfig to {}",
                path.display()
            )))
    }

    /// The temp dir holding etcd's data, the certificates, the kubeconfig and the two logs
    /// (`etcd.log`, `kube-apiserver.log`). Removed when the control plane stops.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id of kube-controller-manager, when it runs.
    pub fn controller_manager_pid(&self) -> Option<u32> {
        self.controller_manager.as_ref().map(|c| c.child.id())
    }

    /// The process ids of (etcd, kube-apiserver) while they run.
    pub fn pids(&self) -> (Option<u32>, Option<u32>) {
        (
            self.etcd.as_ref().map(|c| c.child.id()),
            self.apiserver.as_ref().map(|c| c.child.id()),
        )
    }

    /// Installs every CustomResourceDefinition found in these files or directories (documents of
    /// other kinds are skipped) and waits until each is Established. Existing CRDs are updated
    /// (server-side apply).
    pub async fn install_crds<P: AsRef<Path>>(
        &self,
        paths: impl IntoIterator<Item = P>,
    ) -> Result<Vec<CustomResourceDefinition>> {
        let mut crds = Vec::new();
        for path in paths {
            crds.extend(crds::read_crds(path.as_ref())?);
        }
        let mut installed = Vec::with_capacity(crds.len());
        for crd in &crds {
            installed.push(self.apply_crd(crd).await?);
        }
        for crd in &mut installed {
            *crd = self.wait_established(crd).await?;
        }
        Ok(installed)
    }

    /// Installs one CRD (e.g. from a derived type's `crd()`) and waits until it is Established.
    pub async fn install_crd(
        &self,
        crd: &CustomResourceDefinition,
    ) -> Result<CustomResourceDefinition> {
        let applied = self.apply_crd(crd).await?;
        self.wait_established(&applied).await
    }

    /// Stops both processes and reaps them; the temp dir is removed.
    pub fn stop(mut self) {
        self.kill_children();
    }

    /// `stop` for async callers, shaped like the embedded server's `shutdown`.
    pub async fn shutdown(self) {
        // Killing and reaping blocks for a moment; keep it off the runtime's worker.
        let _ = tokio::task::spawn_blocking(move || self.stop()).await;
    }

    fn kill_children(&mut self) {
        // Clients before servers, so none logs a burst of connection errors.
        if let Some(mut child) = self.controller_manager.take() {
            child.kill();
        }
        if let Some(mut child) = self.apiserver.take() {
            child.kill();
        }
        if let Some(mut child) = self.etcd.take() {
            child.kill();
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.kill_children();
    }
}

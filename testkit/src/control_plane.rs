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

use std::collections::VecDeque;
use std::fmt;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The Kubernetes version `scripts/control-plane.sh` builds; the cache directory is named after it.
pub const CONTROL_PLANE_VERSION: &str = "v1.37.2";

/// The command that builds the binaries into the cache; named in every "not found" error.
pub const BUILD_COMMAND: &str = "bash scripts/control-plane.sh";

/// The user name of the admin identity (member of `system:masters`) the client and kubeconfig use.
pub const ADMIN_USER: &str = "kubeforge-admin";

const FIELD_MANAGER: &str = "kubeforge-testkit";

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

/// Where the binaries of a control plane are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    /// The `kube-apiserver` binary.
    pub kube_apiserver: PathBuf,
    /// The `etcd` binary.
    pub etcd: PathBuf,
    /// The `kube-controller-manager` binary, if built: it runs the garbage collector and the
    /// namespace controller, without which deletions with dependents and namespace deletions
    /// never finish (controller-runtime's envtest has neither).
    pub kube_controller_manager: Option<PathBuf>,
}

impl Binaries {
    /// Finds the binaries: `TEST_ASSET_KUBE_APISERVER` / `TEST_ASSET_ETCD` /
    /// `TEST_ASSET_KUBE_CONTROLLER_MANAGER` (optional), then
    /// `KUBEBUILDER_ASSETS`, then the cache filled by `bash scripts/control-plane.sh`.
    pub fn discover() -> Result<Binaries> {
        Ok(Binaries {
            kube_apiserver: find_binary("kube-apiserver", "TEST_ASSET_KUBE_APISERVER")?,
            etcd: find_binary("etcd", "TEST_ASSET_ETCD")?,
            kube_controller_manager: find_binary(
                "kube-controller-manager",
                "TEST_ASSET_KUBE_CONTROLLER_MANAGER",
            )
            .ok(),
        })
    }
}

/// The cache directory `scripts/control-plane.sh` writes to: `$KUBEFORGE_CACHE`, else
/// `$XDG_CACHE_HOME/kubeforge`, else `~/.cache/kubeforge`.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("KUBEFORGE_CACHE").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir).join("kubeforge"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|home| PathBuf::from(home).join(".cache").join("kubeforge"))
}

fn find_binary(binary: &'static str, env: &'static str) -> Result<PathBuf> {
    let mut searched = Vec::new();
    if let Some(path) = std::env::var_os(env).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        // An explicit setting that points nowhere is a mistake to report, not to route around.
        return Err(ControlPlaneError::BinaryNotFound {
            binary,
            env,
            searched: format!("{env}={} (no such file)", path.display()),
        });
    }
    searched.push(format!("${env} (unset)"));
    if let Some(dir) = std::env::var_os("KUBEBUILDER_ASSETS").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(dir).join(binary);
        if path.is_file() {
            return Ok(path);
        }
        searched.push(path.display().to_string());
    } else {
        searched.push("$KUBEBUILDER_ASSETS (unset)".to_string());
    }
    if let Some(cache) = cache_dir() {
        let root = cache.join("control-plane");
        let preferred = root.join(CONTROL_PLANE_VERSION).join(binary);
        if preferred.is_file() {
            return Ok(preferred);
        }
        searched.push(preferred.display().to_string());
        // Another version built by an older or newer checkout still beats failing.
        let mut others: Vec<PathBuf> = fs::read_dir(&root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path().join(binary))
            .filter(|path| path.is_file())
            .collect();
        others.sort();
        if let Some(path) = others.pop() {
            return Ok(path);
        }
    }
    Err(ControlPlaneError::BinaryNotFound {
        binary,
        env,
        searched: searched.join(", "),
    })
}

/// Options for [`ControlPlane::builder`].
#[derive(Debug, Clone)]
pub struct ControlPlaneBuilder {
    binaries: Option<Binaries>,
    crd_paths: Vec<PathBuf>,
    apiserver_args: Vec<String>,
    start_timeout: Duration,
    controller_manager: bool,
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
        remove_stale_dirs();
        // A free port is only free until someone else binds it; a child that lost that race
        // exits with "address already in use", and a new attempt picks new ports.
        let mut attempt = 1;
        let plane = loop {
            match boot_once(
                &binaries,
                &self.apiserver_args,
                self.start_timeout,
                self.controller_manager,
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

async fn boot_once(
    binaries: &Binaries,
    apiserver_args: &[String],
    timeout: Duration,
    controllers: bool,
) -> Result<ControlPlane> {
    let dir = tempfile::Builder::new()
        .prefix(DIR_PREFIX)
        .tempdir()
        .map_err(io_err("creating a temp dir for the control plane"))?;
    // Lets a later start recognise this dir as stale once this process is gone.
    fs::write(dir.path().join(OWNER_FILE), std::process::id().to_string())
        .map_err(io_err("writing the control plane's owner file"))?;
    let mut plane = ControlPlane {
        controller_manager: None,
        apiserver: None,
        etcd: None,
        spawner: Spawner::new(),
        client: None,
        url: String::new(),
        etcd_port: 0,
        kubeconfig_path: dir.path().join("kubeconfig"),
        dir,
    };
    plane
        .boot(binaries, apiserver_args, timeout, controllers)
        .await?;
    Ok(plane)
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
            crds.extend(read_crds(path.as_ref())?);
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

    async fn boot(
        &mut self,
        binaries: &Binaries,
        extra: &[String],
        timeout: Duration,
        controllers: bool,
    ) -> Result<()> {
        let dir = self.dir.path().to_path_buf();
        let etcd_port = free_port()?;
        self.etcd_port = etcd_port;
        let apiserver_port = free_port()?;

        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let etcd_args = vec![
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            // Port 0: no fixed peer port to collide with other control planes on the machine.
            "--listen-peer-urls=http://127.0.0.1:0".to_string(),
            // Test data is thrown away; fsync only slows every write down.
            "--unsafe-no-fsync=true".to_string(),
        ];
        self.etcd = Some(
            self.spawner
                .spawn("etcd", &binaries.etcd, &etcd_args, &dir)?,
        );
        self.wait_etcd(etcd_port, timeout).await?;

        let certs = write_certificates(&dir)?;
        self.url = format!("https://127.0.0.1:{apiserver_port}");
        let mut args = vec![
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".to_string(),
            "--advertise-address=127.0.0.1".to_string(),
            // 1.37 refuses a loopback advertise address while it maintains the `kubernetes`
            // Service's endpoints; nothing in a test routes to that Service anyway.
            "--endpoint-reconciler-type=none".to_string(),
            format!("--secure-port={apiserver_port}"),
            format!("--cert-dir={}", dir.join("apiserver-certs").display()),
            format!("--tls-cert-file={}", certs.serving_cert.display()),
            format!("--tls-private-key-file={}", certs.serving_key.display()),
            format!("--token-auth-file={}", certs.token_file.display()),
            "--authorization-mode=RBAC".to_string(),
            "--service-cluster-ip-range=10.0.0.0/24".to_string(),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_string(),
            format!(
                "--service-account-key-file={}",
                certs.sa_public_key.display()
            ),
            format!(
                "--service-account-signing-key-file={}",
                certs.sa_key.display()
            ),
            "--allow-privileged=true".to_string(),
            // Without a controller manager nothing creates service accounts; Pods must not need one.
            "--disable-admission-plugins=ServiceAccount".to_string(),
        ];
        args.extend(extra.iter().cloned());
        self.apiserver =
            Some(
                self.spawner
                    .spawn("kube-apiserver", &binaries.kube_apiserver, &args, &dir)?,
            );

        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kubeforge-control-plane\n  cluster:\n    \
             server: {url}\n    certificate-authority: {ca}\nusers:\n- name: {ADMIN_USER}\n  user:\n    \
             token: {token}\ncontexts:\n- name: kubeforge-control-plane\n  context:\n    \
             cluster: kubeforge-control-plane\n    user: {ADMIN_USER}\n    namespace: default\n\
             current-context: kubeforge-control-plane\n",
            url = self.url,
            ca = certs.ca_cert.display(),
            token = certs.token,
        );
        fs::write(&self.kubeconfig_path, kubeconfig).map_err(io_err(format!(
            "writing the kubeconfig {}",
            self.kubeconfig_path.display()
        )))?;
        let kubeconfig = self.kubeconfig()?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|err| ControlPlaneError::Kubeconfig {
                    path: self.kubeconfig_path.clone(),
                    message: err.to_string(),
                })?;
        let client = kube::Client::try_from(config)?;
        self.client = Some(client.clone());
        self.wait_apiserver(&client, timeout).await?;

        if let Some(kcm) = binaries
            .kube_controller_manager
            .as_ref()
            .filter(|_| controllers)
        {
            let kubeconfig = format!("--kubeconfig={}", self.kubeconfig_path.display());
            let args = vec![
                kubeconfig,
                // Only what a test can observe without nodes: garbage collection through
                // ownerReferences, and namespace deletion.
                "--controllers=garbagecollector,namespace".to_string(),
                "--leader-elect=false".to_string(),
                // No serving endpoint: nothing scrapes it, and it would need its own port.
                "--secure-port=0".to_string(),
            ];
            self.controller_manager =
                Some(
                    self.spawner
                        .spawn("kube-controller-manager", kcm, &args, &dir)?,
                );
            self.wait_garbage_collector(&client, timeout).await?;
        }
        Ok(())
    }

    async fn wait_etcd(&mut self, port: u16, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        let mut last_error = String::from("not checked yet");
        while started.elapsed() < timeout {
            self.check_alive()?;
            match http_get_plain(port, "/health").await {
                Ok(body) if body.contains("\"health\":\"true\"") => return Ok(()),
                Ok(body) => last_error = format!("/health answered {body:?}"),
                Err(err) => last_error = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(not_ready(self.etcd.as_ref(), started.elapsed(), last_error))
    }

    async fn wait_apiserver(&mut self, client: &kube::Client, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        let mut last_error = String::from("not checked yet");
        while started.elapsed() < timeout {
            self.check_alive()?;
            match get_text(client, "/readyz").await {
                // `ok` alone does not mean the bootstrap controller has created `default` yet,
                // and tests create objects there straight away.
                Ok(body) if body.trim() == "ok" => {
                    match get_text(client, "/api/v1/namespaces/default").await {
                        Ok(_) => return Ok(()),
                        Err(err) => last_error = format!("namespace default: {err}"),
                    }
                }
                Ok(body) => last_error = format!("/readyz answered {body:?}"),
                Err(err) => last_error = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(not_ready(
            self.apiserver.as_ref(),
            started.elapsed(),
            last_error,
        ))
    }

    /// Waits until the garbage collector deletes a dependent of a deleted owner: proof that the
    /// controller manager runs and its dependency graph has synced.
    async fn wait_garbage_collector(
        &mut self,
        client: &kube::Client,
        timeout: Duration,
    ) -> Result<()> {
        use k8s_openapi::api::core::v1::ConfigMap;
        use kube::api::{DeleteParams, PostParams};
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let owner_name = format!("kubeforge-gc-probe-owner-{}", &suffix[..8]);
        let dependent_name = format!("kubeforge-gc-probe-dependent-{}", &suffix[..8]);
        let mut owner = ConfigMap::default();
        owner.metadata.name = Some(owner_name.clone());
        let owner = api.create(&PostParams::default(), &owner).await?;
        let mut dependent = ConfigMap::default();
        dependent.metadata.name = Some(dependent_name.clone());
        dependent.metadata.owner_references = Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                api_version: "v1".to_string(),
                kind: "ConfigMap".to_string(),
                name: owner_name.clone(),
                uid: owner.metadata.uid.clone().unwrap_or_default(),
                ..Default::default()
            },
        ]);
        api.create(&PostParams::default(), &dependent).await?;
        api.delete(&owner_name, &DeleteParams::background()).await?;
        let started = Instant::now();
        let mut last_error = String::from("the dependent still exists");
        while started.elapsed() < timeout {
            self.check_alive()?;
            match api.get_opt(&dependent_name).await {
                Ok(None) => return Ok(()),
                Ok(Some(_)) => {}
                Err(err) => last_error = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(not_ready(
            self.controller_manager.as_ref(),
            started.elapsed(),
            format!("garbage collection of a probe ConfigMap: {last_error}"),
        ))
    }

    fn check_alive(&mut self) -> Result<()> {
        for child in [
            self.etcd.as_mut(),
            self.apiserver.as_mut(),
            self.controller_manager.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if let Ok(Some(status)) = child.child.try_wait() {
                return Err(ControlPlaneError::Exited {
                    process: child.name,
                    status,
                    log: child.log.clone(),
                    tail: tail(&child.log, 30),
                });
            }
        }
        Ok(())
    }

    async fn apply_crd(&self, crd: &CustomResourceDefinition) -> Result<CustomResourceDefinition> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client());
        let name = crd.metadata.name.clone().unwrap_or_default();
        // Status is the server's; an apply carrying one would be rejected or ignored.
        let mut body = crd.clone();
        body.status = None;
        body.metadata.resource_version = None;
        body.metadata.managed_fields = None;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        Ok(api.patch(&name, &params, &Patch::Apply(&body)).await?)
    }

    async fn wait_established(
        &self,
        crd: &CustomResourceDefinition,
    ) -> Result<CustomResourceDefinition> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client());
        let name = crd.metadata.name.clone().unwrap_or_default();
        let started = Instant::now();
        let waited_max = Duration::from_secs(30);
        loop {
            let current = api.get(&name).await?;
            let conditions = current
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            if conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
            {
                return Ok(current);
            }
            if started.elapsed() >= waited_max {
                return Err(ControlPlaneError::CrdNotEstablished {
                    name,
                    waited: started.elapsed(),
                    conditions: conditions
                        .iter()
                        .map(|c| {
                            format!(
                                "{}={} ({})",
                                c.type_,
                                c.status,
                                c.message.as_deref().unwrap_or("")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.kill_children();
    }
}

fn not_ready(
    child: Option<&Supervised>,
    waited: Duration,
    last_error: String,
) -> ControlPlaneError {
    let (process, log) = child
        .map(|c| (c.name, c.log.clone()))
        .unwrap_or(("control plane", PathBuf::new()));
    ControlPlaneError::NotReady {
        process,
        waited,
        last_error,
        tail: tail(&log, 30),
        log,
    }
}

async fn get_text(client: &kube::Client, path: &str) -> Result<String, String> {
    let request = http::Request::get(path)
        .body(Vec::new())
        .map_err(|err| err.to_string())?;
    client
        .request_text(request)
        .await
        .map_err(|err| err.to_string())
}

/// A minimal HTTP/1.0 GET against etcd's plain-HTTP client port (no client dependency needed).
async fn http_get_plain(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
        .await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "etcd /health timed out")
        })??;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

const DIR_PREFIX: &str = "kubeforge-control-plane-";
const OWNER_FILE: &str = "owner.pid";

/// Removes temp dirs of control planes whose process is gone (the shared plane is never
/// dropped, so its dir outlives it). Dirs without an owner file, or of live processes, stay.
fn remove_stale_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(DIR_PREFIX));
        if !is_ours {
            continue;
        }
        let Ok(owner) = fs::read_to_string(path.join(OWNER_FILE)) else {
            continue;
        };
        let Ok(pid) = owner.trim().parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(&path);
        }
    }
}

/// Asks the kernel for a free loopback port. Another process may take it before our child binds
/// it; the child then exits with "address in use" and the error says so.
fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind(("127.0.0.1", 0)).map_err(io_err("finding a free loopback port"))?;
    let port = listener
        .local_addr()
        .map_err(io_err("finding a free loopback port"))?
        .port();
    Ok(port)
}

struct Certificates {
    ca_cert: PathBuf,
    serving_cert: PathBuf,
    serving_key: PathBuf,
    sa_key: PathBuf,
    sa_public_key: PathBuf,
    token_file: PathBuf,
    token: String,
}

/// A fresh CA, a serving certificate for 127.0.0.1/localhost signed by it, a service-account
/// signing key, and a static token file with one `system:masters` admin.
fn write_certificates(dir: &Path) -> Result<Certificates> {
    let write = |name: &str, contents: &str| -> Result<PathBuf> {
        let path = dir.join(name);
        fs::write(&path, contents).map_err(io_err(format!("writing {}", path.display())))?;
        Ok(path)
    };

    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kubeforge-testkit-ca");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let serving_key = rcgen::KeyPair::generate()?;
    let mut serving_params = rcgen::CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
    ])?;
    serving_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kube-apiserver");
    serving_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let serving_cert = serving_params.signed_by(&serving_key, &issuer)?;

    let sa_key = rcgen::KeyPair::generate()?;
    let token = uuid::Uuid::new_v4().simple().to_string();

    Ok(Certificates {
        ca_cert: write("ca.crt", &ca_cert.pem())?,
        serving_cert: write("apiserver.crt", &serving_cert.pem())?,
        serving_key: write("apiserver.key", &serving_key.serialize_pem())?,
        sa_key: write("sa.key", &sa_key.serialize_pem())?,
        sa_public_key: write("sa.pub", &sa_key.public_key_pem())?,
        token_file: write(
            "tokens.csv",
            &format!("{token},{ADMIN_USER},{ADMIN_USER},\"system:masters\"\n"),
        )?,
        token,
    })
}

/// Reads the CRDs in a file or (non-recursively) a directory of manifests.
fn read_crds(path: &Path) -> Result<Vec<CustomResourceDefinition>> {
    let metadata = fs::metadata(path).map_err(|err| ControlPlaneError::CrdManifest {
        path: path.to_path_buf(),
        message: format!("{err} (pass a manifest file or a directory of them)"),
    })?;
    let files = if metadata.is_dir() {
        let mut files: Vec<PathBuf> = fs::read_dir(path)
            .map_err(io_err(format!("listing {}", path.display())))?
            .flatten()
            .map(|entry| entry.path())
            .filter(|p| {
                p.is_file()
                    && matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("yaml" | "yml" | "json")
                    )
            })
            .collect();
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut crds = Vec::new();
    for file in files {
        let text =
            fs::read_to_string(&file).map_err(io_err(format!("reading {}", file.display())))?;
        for (index, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
            let bad = |message: String| ControlPlaneError::CrdManifest {
                path: file.clone(),
                message: format!("document {}: {message}", index + 1),
            };
            let value = serde_json::Value::deserialize(document)
                .map_err(|err| bad(format!("invalid YAML/JSON: {err}")))?;
            if value.is_null() {
                continue;
            }
            let is_crd = value.get("kind").and_then(|k| k.as_str())
                == Some("CustomResourceDefinition")
                && value.get("apiVersion").and_then(|v| v.as_str())
                    == Some("apiextensions.k8s.io/v1");
            if !is_crd {
                continue;
            }
            let crd: CustomResourceDefinition = serde_json::from_value(value)
                .map_err(|err| bad(format!("not a valid apiextensions.k8s.io/v1 CRD: {err}")))?;
            if crd.metadata.name.as_deref().unwrap_or("").is_empty() {
                return Err(bad("the CRD has no metadata.name".to_string()));
            }
            crds.push(crd);
        }
    }
    Ok(crds)
}

fn tail(log: &Path, lines: usize) -> String {
    let Ok(file) = fs::File::open(log) else {
        return String::from("(no log)");
    };
    let mut last: VecDeque<String> = VecDeque::with_capacity(lines);
    for line in BufReader::new(file)
        .lines()
        .map_while(std::result::Result::ok)
    {
        if last.len() == lines {
            last.pop_front();
        }
        last.push_back(line);
    }
    Vec::from(last).join("\n")
}

/// A child process we started; killed and reaped on drop.
struct Supervised {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Supervised {
    fn kill(&mut self) {
        // SIGKILL: the data dir is thrown away, so a graceful shutdown buys nothing but time.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns the children from one dedicated thread that lives as long as the control plane.
///
/// The kernel's parent-death signal fires when the *thread* that forked the child exits, not
/// the process. Tests run on short-lived threads (and tokio reaps idle blocking threads), so
/// forking from the caller's thread could kill a control plane shared between tests early.
struct Spawner {
    requests: Option<mpsc::Sender<SpawnRequest>>,
    thread: Option<JoinHandle<()>>,
    pdeathsig: Option<PathBuf>,
}

impl Spawner {
    fn new() -> Spawner {
        let (requests, inbox) = mpsc::channel::<SpawnRequest>();
        let thread = std::thread::Builder::new()
            .name("kubeforge-control-plane".to_string())
            .spawn(move || {
                for (mut command, reply) in inbox {
                    let _ = reply.send(command.spawn());
                }
            })
            .ok();
        let pdeathsig = find_setpriv();
        if pdeathsig.is_none() {
            tracing::warn!(
                "setpriv (util-linux) is not on PATH: etcd and kube-apiserver are still killed when \
                 the ControlPlane is dropped, but would outlive a test process that aborts"
            );
        }
        Spawner {
            requests: Some(requests),
            thread,
            pdeathsig,
        }
    }

    fn spawn(
        &self,
        name: &'static str,
        binary: &Path,
        args: &[String],
        dir: &Path,
    ) -> Result<Supervised> {
        let log = dir.join(format!("{name}.log"));
        let out = fs::File::create(&log).map_err(io_err(format!("creating {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(io_err(format!("opening {}", log.display())))?;
        let mut command = match &self.pdeathsig {
            Some(setpriv) => {
                let mut command = Command::new(setpriv);
                command.arg("--pdeathsig").arg("KILL").arg("--").arg(binary);
                command
            }
            None => Command::new(binary),
        };
        command
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let what = format!("starting {name} ({})", binary.display());
        let spawn_failed = |message: &str| ControlPlaneError::Io {
            what: what.clone(),
            source: std::io::Error::other(message.to_string()),
        };
        let (reply, answer) = mpsc::channel();
        let requests = self
            .requests
            .as_ref()
            .ok_or_else(|| spawn_failed("spawner stopped"))?;
        requests
            .send((command, reply))
            .map_err(|_| spawn_failed("the spawner thread is gone"))?;
        let child = answer
            .recv()
            .map_err(|_| spawn_failed("the spawner thread is gone"))?
            .map_err(io_err(what.clone()))?;
        Ok(Supervised { name, child, log })
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn find_setpriv() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("setpriv"))
        .find(|candidate| candidate.is_file())
}

//! [`TestCluster`]: the server a test talks to, embedded or external, chosen by environment.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::faults::Faults;
use crate::proxy::CuttableProxy;
use crate::server::ApiServer;

/// Environment variable naming a kubeconfig of an external cluster to test against.
pub const KUBECONFIG_ENV: &str = "KUBEFORGE_TEST_KUBECONFIG";

/// Environment variable choosing the backend: `control-plane` runs against a real etcd +
/// kube-apiserver that the test process starts once and shares ([`crate::control_plane`];
/// binaries from `bash scripts/control-plane.sh`). It takes precedence over `KUBECONFIG_ENV`.
pub const BACKEND_ENV: &str = "KUBEFORGE_TEST_BACKEND";

/// The API server under test. Tests written against this run unchanged against the embedded
/// server and against a real kube-apiserver (or a control plane started by the testkit).
pub enum TestCluster {
    /// The in-process server (its kubeconfig is written to a temporary file).
    Embedded(ApiServer),
    /// A server given by a kubeconfig file.
    External {
        /// The kubeconfig file (`KUBEFORGE_TEST_KUBECONFIG` or the control plane's).
        kubeconfig_path: PathBuf,
        /// A client built from it.
        client: kube::Client,
        /// The control plane behind it, when the testkit started it (its etcd can be compacted).
        plane: Option<&'static crate::control_plane::ControlPlane>,
    },
}

impl std::fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TestCluster::Embedded(server) => f.debug_tuple("Embedded").field(server).finish(),
            TestCluster::External {
                kubeconfig_path, ..
            } => f
                .debug_struct("External")
                .field("kubeconfig_path", kubeconfig_path)
                .finish(),
        }
    }
}

impl TestCluster {
    /// A shared real control plane when `KUBEFORGE_TEST_BACKEND=control-plane`, else the cluster
    /// named by `KUBEFORGE_TEST_KUBECONFIG` when set, else a new embedded server.
    pub async fn from_env() -> Result<TestCluster, Error> {
        if std::env::var(BACKEND_ENV).is_ok_and(|backend| backend == "control-plane") {
            let plane = crate::control_plane::ControlPlane::shared()
                .await
                .map_err(|e| Error::Client {
                    url: format!("the real control plane ({BACKEND_ENV}=control-plane)"),
                    message: e.to_string(),
                })?;
            return Self::of_plane(plane).await;
        }
        match std::env::var_os(KUBECONFIG_ENV).filter(|v| !v.is_empty()) {
            Some(path) => Self::external(Path::new(&path)).await,
            None => Self::embedded(ApiServer::start().await?),
        }
    }

    /// Wraps a started embedded server, writing its kubeconfig to a temporary file.
    pub fn embedded(server: ApiServer) -> Result<TestCluster, Error> {
        server.kubeconfig_path().map_err(|e| Error::Kubeconfig {
            path: std::env::temp_dir().display().to_string(),
            message: e.to_string(),
        })?;
        Ok(TestCluster::Embedded(server))
    }

    /// Connects to the cluster of a kubeconfig file (its current context).
    pub async fn external(path: &Path) -> Result<TestCluster, Error> {
        let err = |message: String| Error::Kubeconfig {
            path: path.display().to_string(),
            message,
        };
        let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| err(e.to_string()))?;
        let config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| err(e.to_string()))?;
        let url = config.cluster_url.to_string();
        let client = kube::Client::try_from(config).map_err(|e| Error::Client {
            url,
            message: e.to_string(),
        })?;
        Ok(TestCluster::External {
            kubeconfig_path: path.to_path_buf(),
            client,
            plane: None,
        })
    }

    /// A client for the cluster.
    pub fn client(&self) -> kube::Client {
        match self {
            TestCluster::Embedded(server) => server.client(),
            TestCluster::External { client, .. } => client.clone(),
        }
    }

    /// A kubeconfig file for `kubectl` and child processes.
    pub fn kubeconfig_path(&self) -> &Path {
        match self {
            // Written by `embedded()`; an empty path only if that write failed, which it reports.
            TestCluster::Embedded(server) => server.kubeconfig_path().unwrap_or(Path::new("")),
            TestCluster::External {
                kubeconfig_path, ..
            } => kubeconfig_path,
        }
    }

    /// Fault injection, available only for the embedded server.
    pub fn faults(&self) -> Option<Faults> {
        match self {
            TestCluster::Embedded(server) => Some(server.faults()),
            TestCluster::External { .. } => None,
        }
    }

    /// Like [`from_env`](Self::from_env), but on the control-plane backend the shared plane
    /// without a watch cache ([`ControlPlane::shared_without_watch_cache`]), where etcd
    /// compaction shows: for tests of 410 Gone after [`compact`](Self::compact).
    ///
    /// [`ControlPlane::shared_without_watch_cache`]: crate::control_plane::ControlPlane::shared_without_watch_cache
    pub async fn from_env_uncached() -> Result<TestCluster, Error> {
        if std::env::var(BACKEND_ENV).is_ok_and(|backend| backend == "control-plane") {
            let plane = crate::control_plane::ControlPlane::shared_without_watch_cache()
                .await
                .map_err(|e| Error::Client {
                    url: format!(
                        "the real control plane without watch cache ({BACKEND_ENV}=control-plane)"
                    ),
                    message: e.to_string(),
                })?;
            return Self::of_plane(plane).await;
        }
        Self::from_env().await
    }

    /// The cluster of a testkit control plane (its etcd reachable for compaction).
    async fn of_plane(
        plane: &'static crate::control_plane::ControlPlane,
    ) -> Result<TestCluster, Error> {
        let mut cluster = Self::external(plane.kubeconfig_path()).await?;
        if let TestCluster::External { plane: p, .. } = &mut cluster {
            *p = Some(plane);
        }
        Ok(cluster)
    }

    /// Drops the server's history up to now (the embedded server's, or the testkit control
    /// plane's etcd), so older resourceVersions and continue tokens get 410 Gone. `Ok(false)`
    /// when the backend offers no way to (an external cluster named by a kubeconfig).
    ///
    /// # Errors
    /// When the control plane's etcd cannot be reached.
    pub async fn compact(&self) -> Result<bool, Error> {
        match self {
            TestCluster::Embedded(server) => {
                server.faults().compact();
                Ok(true)
            }
            TestCluster::External {
                plane: Some(plane), ..
            } => plane
                .compact()
                .await
                .map(|_| true)
                .map_err(|e| Error::Client {
                    url: "the control plane's etcd".into(),
                    message: e.to_string(),
                }),
            TestCluster::External { plane: None, .. } => Ok(false),
        }
    }

    /// A client that reaches the cluster through a new [`CuttableProxy`], returned with it:
    /// cutting the proxy's connections drops the client's watches, and taking it down makes the
    /// server unreachable for that client only — on either backend. Other clients (e.g.
    /// [`client`](Self::client), for the test's own writes) are not affected.
    ///
    /// # Errors
    /// When the kubeconfig cannot be read or no local port can be bound.
    pub async fn proxied_client(&self) -> Result<(CuttableProxy, kube::Client), Error> {
        let mut config = match self {
            TestCluster::Embedded(server) => {
                let mut config =
                    kube::Config::new(server.url().parse().map_err(|e| Error::Client {
                        url: server.url(),
                        message: format!("{e}"),
                    })?);
                config.default_namespace = "default".into();
                config
            }
            TestCluster::External {
                kubeconfig_path, ..
            } => {
                let err = |message: String| Error::Kubeconfig {
                    path: kubeconfig_path.display().to_string(),
                    message,
                };
                let kc = kube::config::Kubeconfig::read_from(kubeconfig_path)
                    .map_err(|e| err(e.to_string()))?;
                kube::Config::from_custom_kubeconfig(
                    kc,
                    &kube::config::KubeConfigOptions::default(),
                )
                .await
                .map_err(|e| err(e.to_string()))?
            }
        };
        config.read_timeout = None;
        let url = config.cluster_url.clone();
        let client_err = |message: String| Error::Client {
            url: url.to_string(),
            message,
        };
        let host = url.host().unwrap_or("127.0.0.1");
        let port = url
            .port_u16()
            .unwrap_or(if url.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        let upstream = tokio::net::lookup_host((host, port))
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| client_err(format!("cannot resolve {host}:{port}")))?;
        let proxy = CuttableProxy::start(upstream)
            .await
            .map_err(|e| client_err(format!("cannot start a proxy: {e}")))?;
        config.cluster_url = format!(
            "{}://{host}:{}",
            url.scheme_str().unwrap_or("http"),
            proxy.addr().port()
        )
        .parse()
        .map_err(|e| client_err(format!("{e}")))?;
        let client = kube::Client::try_from(config).map_err(|e| client_err(e.to_string()))?;
        Ok((proxy, client))
    }

    /// The embedded server, when that is what runs.
    pub fn server(&self) -> Option<&ApiServer> {
        match self {
            TestCluster::Embedded(server) => Some(server),
            TestCluster::External { .. } => None,
        }
    }
}

/// Creates a uniquely named namespace (`t-<random>`) and returns its name: how tests sharing
/// one real cluster keep out of each other's way.
///
/// # Errors
/// When the server refuses the namespace.
pub async fn unique_namespace(client: &kube::Client) -> Result<String, kube::Error> {
    use k8s_openapi::api::core::v1::Namespace;
    let name = format!("t-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let ns = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    kube::Api::<Namespace>::all(client.clone())
        .create(&kube::api::PostParams::default(), &ns)
        .await?;
    Ok(name)
}

/// Environment variable naming the file skipped tests are recorded in.
pub const SKIP_LOG_ENV: &str = "KUBEFORGE_SKIP_LOG";

/// Records that `test` did not run (or ran in part) on this backend, and why: on stderr, and as a
/// line `<test>: <reason>` in the file `KUBEFORGE_SKIP_LOG` names, which `scripts/test.sh` counts
/// and lists at the end, so that a skip is never a silent pass.
pub fn record_skip(test: &str, reason: &str) {
    eprintln!("note: {test} skipped: {reason}");
    if let Some(path) = std::env::var_os(SKIP_LOG_ENV) {
        use std::io::Write as _;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{test}: {reason}");
        }
    }
}

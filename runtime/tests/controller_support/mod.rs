//! Shared set-up of the controller and manager tests: the API server under test, a manager on it,
//! ConfigMap helpers and a tiny HTTP GET for the manager's endpoints.
//!
//! The server is the embedded one, or with `KUBEFORGE_TEST_BACKEND=control-plane` the testkit's
//! real kube-apiserver (shared by the tests of a binary, which `scripts/test.sh` then runs one at
//! a time): each test gets a fresh namespace there ([`ns`]) and its managers watch only it.
//! Tests that need the embedded server's fault handle record themselves as skipped on it.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kubeforge::manager::{Manager, ManagerConfig};
use kubeforge_testkit::TestCluster;
use kubeforge_testkit::faults::Faults;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The namespace of the running test: `default` on the embedded server (a server per test), a
/// fresh one per test on a real server (tests then run one at a time, see the module docs).
pub fn ns() -> &'static str {
    NAMESPACE.lock().map_or("default", |n| *n)
}

static NAMESPACE: Mutex<&'static str> = Mutex::new("default");

/// The API server a test talks to.
pub struct TestServer {
    cluster: TestCluster,
}

impl TestServer {
    pub fn client(&self) -> kube::Client {
        self.cluster.client()
    }

    /// The embedded server's fault handle; `None` on a real server, after recording `test` as
    /// skipped there (the caller returns).
    pub fn faults_or_skip(&self, test: &str) -> Option<Faults> {
        let faults = self.cluster.faults();
        if faults.is_none() {
            skipped(
                test,
                "needs the embedded server's fault handle (request counts or injected errors); this run uses a real kube-apiserver",
            );
        }
        faults
    }

    /// Whether this is a real kube-apiserver.
    pub fn is_real(&self) -> bool {
        self.cluster.faults().is_none()
    }

    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::copy(self.cluster.kubeconfig_path(), path).map(|_| ())
    }
}

/// Records a skipped test (see [`kubeforge_testkit::cluster::record_skip`]).
pub fn skipped(test: &str, reason: &str) {
    kubeforge_testkit::cluster::record_skip(&format!("runtime::{test}"), reason);
}

pub async fn server() -> TestServer {
    let cluster = TestCluster::from_env()
        .await
        .expect("the API server under test starts");
    let server = TestServer { cluster };
    if server.is_real() {
        let name = kubeforge_testkit::cluster::unique_namespace(&server.client())
            .await
            .expect("a namespace for the test");
        let name: &'static str = Box::leak(name.into_boxed_str());
        *NAMESPACE.lock().expect("namespace lock") = name;
    }
    server
}

/// Test defaults: no signal handlers, short timeouts.
pub fn config() -> ManagerConfig {
    ManagerConfig {
        handle_signals: false,
        cache_sync_timeout: Duration::from_secs(20),
        graceful_shutdown_timeout: Duration::from_secs(10),
        ..ManagerConfig::default()
    }
}

/// A manager on `server`; on a real server it watches only the test's namespace.
pub async fn manager(server: &TestServer, mut config: ManagerConfig) -> Manager {
    if server.is_real() && config.namespace.is_none() {
        config.namespace = Some(ns().to_owned());
    }
    Manager::new(server.client(), config)
        .await
        .expect("manager builds")
}

pub fn cm(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns().into()),
            ..ObjectMeta::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..ConfigMap::default()
    }
}

pub fn configmaps(server: &TestServer) -> Api<ConfigMap> {
    Api::namespaced(server.client(), ns())
}

pub async fn create_cm(server: &TestServer, name: &str, data: &[(&str, &str)]) -> ConfigMap {
    configmaps(server)
        .create(&PostParams::default(), &cm(name, data))
        .await
        .expect("configmap created")
}

pub async fn set_cm_data(server: &TestServer, name: &str, key: &str, value: &str) {
    let patch = serde_json::json!({ "data": { key: value } });
    configmaps(server)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("configmap patched");
}

/// Waits (up to 20 s) until `cond` holds, polling every 10 ms.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `GET path` on `addr`; returns (status code, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to manager endpoint");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Waits (up to 20 s) until every `(series, value)` in `want` reads exactly that value in the
/// manager's metrics, then returns the whole parsed exposition. Metrics are recorded after the
/// reconcile a test can observe returns, so a test asserts on a metric by waiting for it, never by
/// reading it right after waiting on something else.
pub async fn eventually_metrics(
    metrics: &kubeforge::manager::metrics::Metrics,
    want: &[(&str, f64)],
) -> BTreeMap<String, f64> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = metrics.encode();
        let parsed = parse_metrics(&text);
        if want.iter().all(|(k, v)| parsed.get(*k) == Some(v)) {
            return parsed;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for metrics {want:?}; last exposition:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Parses Prometheus/OpenMetrics text into `series → value` (`name{labels}` as written).
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// A manager running in the background until [`Running::stop`].
pub struct Running {
    handle: kubeforge::manager::ShutdownHandle,
    task: tokio::task::JoinHandle<Result<(), kubeforge::manager::ManagerError>>,
}

/// Runs `mgr` in the background.
pub fn start(mgr: Manager) -> Running {
    Running {
        handle: mgr.shutdown_handle(),
        task: tokio::spawn(mgr.run()),
    }
}

impl Running {
    /// Shuts the manager down and asserts that it stopped cleanly within 20 s.
    pub async fn stop(self) {
        self.handle.shutdown();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the manager stops within 20 s")
            .expect("the manager task did not panic")
            .expect("the manager stopped without error");
    }
}

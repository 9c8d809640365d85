//! Shared set-up of the controller and manager tests: an embedded API server, a manager on it,
//! ConfigMap helpers and a tiny HTTP GET for the manager's endpoints.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use kubeforge::manager::{Manager, ManagerConfig};
use kubeforge_testkit::ApiServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const NS: &str = "default";

pub async fn server() -> ApiServer {
    ApiServer::start()
        .await
        .expect("embedded API server starts")
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

pub async fn manager(server: &ApiServer, config: ManagerConfig) -> Manager {
    Manager::new(server.client(), config)
        .await
        .expect("manager builds")
}

pub fn cm(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
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

pub fn configmaps(server: &ApiServer) -> Api<ConfigMap> {
    Api::namespaced(server.client(), NS)
}

pub async fn create_cm(server: &ApiServer, name: &str, data: &[(&str, &str)]) -> ConfigMap {
    configmaps(server)
        .create(&PostParams::default(), &cm(name, data))
        .await
        .expect("configmap created")
}

pub async fn set_cm_data(server: &ApiServer, name: &str, key: &str, value: &str) {
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
    metrics: &kubeforge::metrics::Metrics,
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
    task: tokio::task::JoinHandle<Result<(), kubeforge::manager::Error>>,
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

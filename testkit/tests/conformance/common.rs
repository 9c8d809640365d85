//! Helpers shared by the integration tests: a cluster from the environment and a fresh
//! namespace per test, so the same tests run against a real kube-apiserver.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ObjectMeta;
use kubeforge_testkit::TestCluster;

pub async fn cluster() -> TestCluster {
    TestCluster::from_env()
        .await
        .expect("test cluster (embedded, or KUBEFORGE_TEST_KUBECONFIG)")
}

/// Creates a uniquely named namespace and returns its name.
pub async fn namespace(client: &kube::Client) -> String {
    kubeforge_testkit::cluster::unique_namespace(client)
        .await
        .expect("create namespace")
}

pub fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        data: Some([("k".to_string(), "v".to_string())].into()),
        ..Default::default()
    }
}

/// Records why a fault-injection test is skipped (a real server has no fault handle).
pub fn skip(test: &str) {
    skipped(
        test,
        "fault injection needs the embedded server, and this run uses a real API server",
    );
}

/// Records a skipped test (see [`kubeforge_testkit::cluster::record_skip`]).
pub fn skipped(test: &str, reason: &str) {
    kubeforge_testkit::cluster::record_skip(&format!("conformance::{test}"), reason);
}

/// Runs `f` with a timeout so a hanging watch fails the test instead of the CI job.
pub async fn within<T>(secs: u64, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("timed out")
}

/// A raw request: (HTTP status, parsed JSON body or Null).
pub async fn raw(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    raw_with(client, method, path, content_type, None, body).await
}

pub async fn raw_with(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    accept: Option<&str>,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let (code, _, bytes) = raw_bytes(client, method, path, content_type, accept, body).await;
    (
        code,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// A raw request: (HTTP status, the answer's Content-Type, its body).
pub async fn raw_bytes(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    accept: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, Vec<u8>) {
    let mut b = http::Request::builder().method(method).uri(path);
    if let Some(ct) = content_type {
        b = b.header(http::header::CONTENT_TYPE, ct);
    }
    if let Some(a) = accept {
        b = b.header(http::header::ACCEPT, a);
    }
    let req = b.body(kube::client::Body::from(body)).expect("request");
    let resp = client.send(req).await.expect("send");
    let code = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = resp.into_body().collect_bytes().await.expect("body");
    (code, content_type, bytes.to_vec())
}

/// The `kube::Error::Api` status code of a result, for asserting on failures.
pub fn code<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> u16 {
    match r {
        Err(kube::Error::Api(s)) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

pub fn api_err<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> Box<kube::core::Status> {
    match r {
        Err(kube::Error::Api(s)) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// The resourceVersion of a full list: the point a test's watch or exact read starts from.
pub async fn list_rv<K>(api: &kube::Api<K>) -> String
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&kube::api::ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("a list carries metadata.resourceVersion")
}

/// POSTs `obj` as JSON to `path`: (HTTP status, parsed body).
pub async fn post_json(
    client: &kube::Client,
    path: &str,
    obj: &serde_json::Value,
) -> (u16, serde_json::Value) {
    raw(
        client,
        "POST",
        path,
        Some("application/json"),
        obj.to_string().into_bytes(),
    )
    .await
}

/// The next event of a watch that is not a bookmark (within ten seconds).
pub async fn next_change<K>(
    events: &mut (impl futures::Stream<Item = Result<kube::api::WatchEvent<K>, kube::Error>> + Unpin),
) -> kube::api::WatchEvent<K> {
    use futures::TryStreamExt;
    within(10, async {
        loop {
            match events.try_next().await.expect("watch").expect("open watch") {
                kube::api::WatchEvent::Bookmark(_) => continue,
                other => break other,
            }
        }
    })
    .await
}

//! Fault injection: failing requests with a status (and Retry-After), latency, counters.
//! Skipped with a note on external clusters.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use kubeforge_testkit::RequestMatch;

use crate::common::*;

#[tokio::test]
async fn fail_next_fails_matching_requests_with_the_given_status() {
    let c = cluster().await;
    let Some(faults) = c.faults() else {
        return skip("fail_next_fails_matching_requests_with_the_given_status");
    };
    let api: Api<ConfigMap> = Api::namespaced(c.client(), "default");
    faults.fail_next(
        2,
        RequestMatch {
            verb: Some("list".into()),
            resource: Some("configmaps".into()),
        },
        500,
        None,
    );
    api.create(&PostParams::default(), &cm("unaffected", &[]))
        .await
        .expect("create is not a list");
    let s = api_err(api.list(&ListParams::default()).await);
    assert_eq!((s.code, s.reason.as_str()), (500, "InternalError"));
    assert_eq!(code(api.list(&ListParams::default()).await), 500);
    assert!(
        api.list(&ListParams::default()).await.is_ok(),
        "only the next two fail"
    );

    // kube's client retries 429/503/504 by itself, so those are checked over a bare connection.
    let url = c.server().expect("embedded").url();
    faults.fail_next(1, RequestMatch::default(), 504, None);
    let (code_, _, body) = bare_get(&url, "/api/v1/namespaces/default/configmaps/unaffected").await;
    assert_eq!(code_, 504);
    assert!(body.contains("\"reason\":\"Timeout\""), "{body}");
    let (code_, _, _) = bare_get(&url, "/api/v1/namespaces/default/configmaps/unaffected").await;
    assert_eq!(code_, 200);
}

/// One HTTP/1.1 GET without retries: (status, raw headers, body).
async fn bare_get(url: &str, path: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_string(), body.to_string())
}

#[tokio::test]
async fn too_many_requests_carries_retry_after() {
    let c = cluster().await;
    let Some(faults) = c.faults() else {
        return skip("too_many_requests_carries_retry_after");
    };
    faults.fail_next(
        1,
        RequestMatch {
            verb: Some("get".into()),
            resource: None,
        },
        429,
        Some(3),
    );
    let url = c.server().expect("embedded").url();
    let (code_, head, body) = bare_get(&url, "/api/v1/namespaces/default").await;
    assert_eq!(code_, 429);
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 3"),
        "{head}"
    );
    let body = body.trim();
    let json_start = body.find('{').unwrap_or(0);
    let json_end = body.rfind('}').map(|i| i + 1).unwrap_or(body.len());
    let body: serde_json::Value = serde_json::from_str(&body[json_start..json_end]).expect("json");
    assert_eq!(body["reason"], "TooManyRequests");
    assert_eq!(body["details"]["retryAfterSeconds"], 3);
    // kube's client honours Retry-After and retries on its own.
    faults.fail_next(
        1,
        RequestMatch {
            verb: Some("get".into()),
            resource: Some("namespaces".into()),
        },
        429,
        Some(1),
    );
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(c.client());
    let t = Instant::now();
    ns.get("default").await.expect("retried");
    assert!(t.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn latency_delays_every_request() {
    let c = cluster().await;
    let Some(faults) = c.faults() else {
        return skip("latency_delays_every_request");
    };
    let api: Api<ConfigMap> = Api::namespaced(c.client(), "default");
    faults.set_latency(Duration::from_millis(300));
    let t = Instant::now();
    api.list(&ListParams::default()).await.expect("list");
    assert!(t.elapsed() >= Duration::from_millis(300));
    faults.set_latency(Duration::ZERO);
}

#[tokio::test]
async fn request_counters_count_by_verb_and_resource() {
    let c = cluster().await;
    let Some(faults) = c.faults() else {
        return skip("request_counters_count_by_verb_and_resource");
    };
    let api: Api<ConfigMap> = Api::namespaced(c.client(), "default");
    let before = faults.request_count("create", Some("configmaps"));
    for i in 0..3 {
        api.create(&PostParams::default(), &cm(&format!("n{i}"), &[]))
            .await
            .expect("create");
    }
    api.list(&ListParams::default()).await.expect("list");
    assert_eq!(
        faults.request_count("create", Some("configmaps")) - before,
        3
    );
    assert!(faults.request_count("list", None) >= 1);
    assert_eq!(faults.request_count("delete", Some("configmaps")), 0);
}

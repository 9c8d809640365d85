//! Requests per second and latency through the Ingress controller's proxy, against the same
//! requests sent straight to the backend.
//!
//! One backend (hyper, HTTP/1.1, answering a 64-byte body) on loopback; the proxy serves one
//! Ingress routing `bench.example.com/` to it through a Service and an EndpointSlice. Both
//! contenders use the same client (hyper-util's pooled client, keep-alive), the same number of
//! concurrent connections and requests, on the same runtime: the only difference is the hop
//! through the proxy (routing, header rewriting, a second pooled connection).
//!
//! Prints, per contender: requests/s, p50 and p99 latency; then the proxy/direct ratios.
//! `cargo bench -p kubeforge-controllers --bench ingress_proxy` (KUBEFORGE_BENCH_REQUESTS,
//! default 20,000; KUBEFORGE_BENCH_CONNECTIONS, default 16).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kubeforge_controllers::ingress::proxy::Proxy;
use kubeforge_controllers::ingress::routes::{ClassSelection, RouteTable};
use serde_json::json;
use tokio::net::TcpListener;

const BODY: &[u8] = &[b'x'; 64];

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn start_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the backend");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = service_fn(|_req| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(BODY))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// The table: one Ingress of our class, `bench.example.com/` → Service `backend` → `addr`.
fn table(addr: SocketAddr) -> RouteTable {
    let class: IngressClass = serde_json::from_value(json!({
        "metadata": {"name": "bench"}, "spec": {"controller": "kubeforge.dev/bench"}}))
    .expect("an IngressClass");
    let ingress: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "bench", "namespace": "default"},
        "spec": {"ingressClassName": "bench", "rules": [{"host": "bench.example.com", "http": {
            "paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "backend", "port": {"number": 80}}}}]}}]}}))
    .expect("an Ingress");
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "backend", "namespace": "default"},
        "spec": {"ports": [{"port": 80, "targetPort": addr.port()}]}}))
    .expect("a Service");
    let slice: EndpointSlice = serde_json::from_value(json!({
        "metadata": {"name": "backend-1", "namespace": "default",
            "labels": {"kubernetes.io/service-name": "backend"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [addr.ip().to_string()], "conditions": {"ready": true}}],
        "ports": [{"port": addr.port(), "protocol": "TCP"}]}))
    .expect("an EndpointSlice");
    let (table, problems) = RouteTable::build(
        &ClassSelection {
            controller: "kubeforge.dev/bench".into(),
        },
        &[ingress],
        &[class],
        &[service],
        &[slice],
        &[],
    );
    assert!(
        problems.is_empty(),
        "the bench's Ingress routes: {problems:?}"
    );
    table
}

struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// `requests` GETs of `target` over `connections` concurrent keep-alive connections.
async fn drive(target: SocketAddr, requests: usize, connections: usize) -> Figures {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(connections)
        .build_http();
    let uri: hyper::Uri = format!("http://{target}/item").parse().expect("a URI");
    let began = Instant::now();
    let mut workers = Vec::new();
    for w in 0..connections {
        let (client, uri) = (client.clone(), uri.clone());
        let share = requests / connections + usize::from(w < requests % connections);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(share);
            for _ in 0..share {
                let request = hyper::Request::get(uri.clone())
                    .header("host", "bench.example.com")
                    .body(Empty::new())
                    .expect("a request");
                let sent = Instant::now();
                let response = client.request(request).await.expect("an answer");
                assert!(response.status().is_success(), "{}", response.status());
                let body = response.into_body().collect().await.expect("a body");
                assert_eq!(body.to_bytes().len(), BODY.len());
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    for w in workers {
        latencies.extend(w.await.expect("a worker"));
    }
    let elapsed = began.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Figures {
        per_second: requests as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn print(name: &str, f: &Figures) {
    println!(
        "{name:<44} {:>10.0} req/s   p50 {:>7.1} µs   p99 {:>7.1} µs",
        f.per_second,
        f.p50.as_secs_f64() * 1e6,
        f.p99.as_secs_f64() * 1e6
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let requests = env_number("KUBEFORGE_BENCH_REQUESTS", 20_000);
    let connections = env_number("KUBEFORGE_BENCH_CONNECTIONS", 16).max(1);
    let backend = start_backend().await;
    let proxy = Proxy::start(
        "127.0.0.1:0".parse().expect("an address"),
        None,
        Arc::new(table(backend)),
    )
    .await
    .expect("the proxy starts");
    println!("{requests} GETs over {connections} keep-alive connections, 2 runtime threads");
    // Warm both paths (pools, first connections) before measuring.
    drive(backend, 1_000, connections).await;
    drive(proxy.http_addr(), 1_000, connections).await;
    let direct = drive(backend, requests, connections).await;
    let proxied = drive(proxy.http_addr(), requests, connections).await;
    print("direct to the backend", &direct);
    print("through the kubeforge Ingress proxy", &proxied);
    println!(
        "proxy/direct: throughput {:.2}×, p50 {:.2}×, p99 {:.2}×",
        proxied.per_second / direct.per_second,
        proxied.p50.as_secs_f64() / direct.p50.as_secs_f64(),
        proxied.p99.as_secs_f64() / direct.p99.as_secs_f64()
    );
    proxy.shutdown().await;
}

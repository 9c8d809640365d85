//! The manager's webhook server under load: admission reviews of a 4 KiB ConfigMap posted over
//! TLS (HTTP/1.1, one kept-alive connection per client) by 1, 8 and 64 concurrent clients, for a
//! validating webhook (a verdict only) and a mutating one (the JSON patch computed).
//!
//! Prints, per case: reviews per second and the p50/p99 latency a client sees (request written
//! to answer read). Client and server share the machine's cores; there is no other contender
//! in this bench (controller-runtime's server is not run here), so the figures stand alone.
//!
//! `cargo bench -p kubeforge --bench webhook`

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::ConfigMap;
use kubeforge::manager::{Manager, ManagerConfig};
use kubeforge::webhook::{AdmissionRequest, DevCertificates, Verdict, WebhookServerConfig};
use kubeforge_testkit::ApiServer;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Reviews each client sends per case.
const PER_CLIENT: usize = 2_000;

fn review() -> Bytes {
    let data: serde_json::Map<String, serde_json::Value> = (0..64)
        .map(|i| (format!("key-{i:02}"), "v".repeat(56).into()))
        .collect();
    Bytes::from(
        serde_json::to_vec(&serde_json::json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "bench",
                "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
                "resource": {"group": "", "version": "v1", "resource": "configmaps"},
                "name": "bench", "namespace": "default", "operation": "CREATE",
                "userInfo": {"username": "bench"},
                "object": {"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "bench", "namespace": "default", "labels": {"a": "b"}},
                           "data": data},
                "dryRun": false,
            }
        }))
        .unwrap(),
    )
}

fn tls_client(ca_pem: &str) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// One client: a kept-alive connection posting `PER_CLIENT` reviews; the latency of each.
async fn client(
    addr: SocketAddr,
    tls: tokio_rustls::TlsConnector,
    path: &'static str,
    body: Bytes,
) -> Vec<Duration> {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let stream = tls.connect(name, tcp).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut latencies = Vec::with_capacity(PER_CLIENT);
    for _ in 0..PER_CLIENT {
        let request = hyper::Request::post(path)
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))
            .unwrap();
        let started = Instant::now();
        let response = send.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let answer = response.into_body().collect().await.unwrap().to_bytes();
        latencies.push(started.elapsed());
        assert!(answer.starts_with(b"{"), "an AdmissionReview");
    }
    latencies
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let server = ApiServer::start().await.unwrap();
    let ca = DevCertificates::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    ca.issue(dir.path(), &["127.0.0.1"]).unwrap();
    let local = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let mut manager = Manager::new(
        server.client(),
        ManagerConfig {
            handle_signals: false,
            health_probe_bind_address: local,
            webhook: WebhookServerConfig {
                bind_address: SocketAddr::from(([127, 0, 0, 1], 0)),
                cert_dir: dir.path().to_owned(),
            },
            ..ManagerConfig::default()
        },
    )
    .await
    .unwrap();
    manager
        .webhooks()
        .unwrap()
        .validate::<ConfigMap, _, _>(|req: AdmissionRequest<ConfigMap>| async move {
            match req
                .object
                .and_then(|cm| cm.data)
                .is_some_and(|d| d.contains_key("forbidden"))
            {
                true => Verdict::deny("forbidden"),
                false => Verdict::allow(),
            }
        })
        .unwrap()
        .mutate::<ConfigMap, _, _>(|req: AdmissionRequest<ConfigMap>| async move {
            let Some(mut cm) = req.object else {
                return Verdict::allow();
            };
            cm.metadata
                .labels
                .get_or_insert_default()
                .insert("defaulted".into(), "yes".into());
            Verdict::allow().with_object(&cm)
        })
        .unwrap();
    let addr = manager.webhook_addr().unwrap();
    let probes = manager.health_probe_addr().unwrap();
    let shutdown = manager.shutdown_handle();
    let running = tokio::spawn(manager.run());
    // Ready once /readyz answers 200.
    loop {
        if let Ok(mut s) = tokio::net::TcpStream::connect(probes).await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut text = String::new();
            let _ = s.read_to_string(&mut text).await;
            if text.starts_with("HTTP/1.1 200") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let body = review();
    println!(
        "webhook server: {} B AdmissionReview of a ConfigMap, {PER_CLIENT} reviews per client, TLS 1.3, HTTP/1.1 keep-alive",
        body.len()
    );
    println!(
        "{:<10} {:>8} {:>12} {:>10} {:>10}",
        "webhook", "clients", "reviews/s", "p50 µs", "p99 µs"
    );
    for (name, path) in [
        ("validate", "/validate--v1-configmap"),
        ("mutate", "/mutate--v1-configmap"),
    ] {
        for clients in [1usize, 8, 64] {
            let tls = tls_client(ca.ca_pem());
            let started = Instant::now();
            let tasks: Vec<_> = (0..clients)
                .map(|_| tokio::spawn(client(addr, tls.clone(), path, body.clone())))
                .collect();
            let mut latencies = Vec::new();
            for task in tasks {
                latencies.extend(task.await.unwrap());
            }
            let elapsed = started.elapsed();
            latencies.sort();
            println!(
                "{name:<10} {clients:>8} {:>12.0} {:>10} {:>10}",
                latencies.len() as f64 / elapsed.as_secs_f64(),
                percentile(&latencies, 0.50).as_micros(),
                percentile(&latencies, 0.99).as_micros(),
            );
        }
    }
    shutdown.shutdown();
    running.await.unwrap().unwrap();
}

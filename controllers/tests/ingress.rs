//! The Ingress controller end to end, on either backend: real HTTP backends on loopback,
//! published as EndpointSlices, and requests (HTTP and HTTPS with SNI) sent through the
//! controller's proxy — routing by host and path, round-robin with retry, the default backend,
//! IngressClass selection, TLS from Secrets, live reconfiguration with a request in flight,
//! and `status.loadBalancer`.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kubeforge_controllers::Options;
use kubeforge_controllers::ingress::{Addresses, IngressOptions};
use serde_json::json;
use support::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A backend answering every request with `<id> <path>`, after `delay`.
struct Backend {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An address of this machine that EndpointSlices accept: kube-apiserver refuses loopback
/// endpoints, so the backends listen on the address the default route leaves from (finding it
/// sends nothing).
fn host_ip() -> std::net::IpAddr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").expect("a UDP socket");
    probe
        .connect("192.0.2.255:9")
        .or_else(|_| probe.connect("10.255.255.255:9"))
        .expect("this machine has a non-loopback IPv4 route (the backends listen on its address)");
    probe.local_addr().expect("the route's source address").ip()
}

async fn backend(id: &'static str, delay: Duration) -> Backend {
    let listener = TcpListener::bind((host_ip(), 0))
        .await
        .expect("bind a backend");
    let addr = listener.local_addr().expect("its address");
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let head = read_head(&mut stream).await;
                let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
                tokio::time::sleep(delay).await;
                let body = format!("{id} {path}");
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    Backend { addr, task }
}

async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// `GET path` with `Host: host` over `stream`; the status code and body.
async fn get_over<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    path: &str,
) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .expect("read the answer");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn get(proxy: &Addresses, host: &str, path: &str) -> (u16, String) {
    let stream = TcpStream::connect(proxy.http)
        .await
        .expect("connect to the proxy");
    get_over(stream, host, path).await
}

/// `GET path` over TLS to `host` (its SNI), trusting only `ca_pem`.
async fn get_tls(
    proxy: &Addresses,
    host: &str,
    path: &str,
    ca_pem: &str,
) -> Result<(u16, String), String> {
    use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    let cert = CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("a PEM certificate");
    roots.add(cert).expect("a trusted certificate");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(proxy.https.expect("an HTTPS listener"))
        .await
        .expect("connect to the proxy");
    let name = ServerName::try_from(host.to_owned()).expect("a server name");
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    Ok(get_over(tls, host, path).await)
}

/// Starts the controller for a class of its own (tests share a real server), listening on
/// loopback, and creates that IngressClass (default for class-less Ingresses if `default`).
async fn start(default: bool) -> (Env, Addresses, String) {
    let options = IngressOptions {
        controller: format!("kubeforge.dev/ingress-test-{}", std::process::id()),
        http: "127.0.0.1:0".parse().expect("an address"),
        https: Some("127.0.0.1:0".parse().expect("an address")),
        ..IngressOptions::default()
    };
    let listening = options.listening.clone();
    let controller = options.controller.clone();
    let env = Env::with_options(
        &["ingress"],
        Options {
            ingress: options,
            ..Options::default()
        },
    )
    .await;
    let class = format!("kf-{}", env.ns);
    let mut annotations = BTreeMap::new();
    if default {
        annotations.insert(
            "ingressclass.kubernetes.io/is-default-class".to_owned(),
            "true".to_owned(),
        );
    }
    let ingress_class: IngressClass = serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": class, "annotations": annotations},
        "spec": {"controller": controller},
    }))
    .expect("an IngressClass");
    Api::<IngressClass>::all(env.client())
        .create(&PostParams::default(), &ingress_class)
        .await
        .expect("create the IngressClass");
    let addresses = tokio::time::timeout(Duration::from_secs(30), listening.wait())
        .await
        .expect("the proxy listens");
    (env, addresses, class)
}

async fn finish(env: Env, class: &str) {
    let _ = Api::<IngressClass>::all(env.client())
        .delete(class, &DeleteParams::default())
        .await;
    env.stop().await;
}

/// Service `name` (port 80, named `http`) with one EndpointSlice per backend address.
async fn service(env: &Env, name: &str, endpoints: &[SocketAddr]) {
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }))
    .expect("a Service");
    env.api::<Service>()
        .create(&PostParams::default(), &svc)
        .await
        .expect("create the Service");
    for (i, addr) in endpoints.iter().enumerate() {
        publish(env, name, &format!("{name}-{i}"), *addr, true).await;
    }
}

/// An EndpointSlice of `service` holding one endpoint `addr`, ready or not.
async fn publish(env: &Env, service: &str, slice: &str, addr: SocketAddr, ready: bool) {
    let slice: EndpointSlice = serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": slice, "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [addr.ip().to_string()], "conditions": {"ready": ready}}],
        "ports": [{"name": "http", "port": addr.port(), "protocol": "TCP"}],
    }))
    .expect("an EndpointSlice");
    env.api::<EndpointSlice>()
        .create(&PostParams::default(), &slice)
        .await
        .expect("create the EndpointSlice");
}

async fn ingress(env: &Env, body: serde_json::Value) {
    let ingress: Ingress = serde_json::from_value(body).expect("an Ingress");
    env.api::<Ingress>()
        .create(&PostParams::default(), &ingress)
        .await
        .expect("create the Ingress");
}

fn path(path: &str, kind: &str, service: &str) -> serde_json::Value {
    json!({"path": path, "pathType": kind,
        "backend": {"service": {"name": service, "port": {"name": "http"}}}})
}

/// Waits until `GET host path` through the proxy answers `status` with a body starting with
/// `body`.
async fn until_routed(proxy: &Addresses, host: &str, path: &str, status: u16, body: &str) {
    eventually(&format!("{host}{path} → {status} {body}"), || async {
        let (got, text) = get(proxy, host, path).await;
        (got == status && text.starts_with(body)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn hosts_and_paths_route_to_ready_endpoints_in_turn_and_the_status_names_the_proxy() {
    let (env, proxy, class) = start(false).await;
    let (web_a, web_b) = (
        backend("web-a", Duration::ZERO).await,
        backend("web-b", Duration::ZERO).await,
    );
    let api = backend("api", Duration::ZERO).await;
    let wild = backend("wild", Duration::ZERO).await;
    service(&env, "web", &[web_a.addr, web_b.addr]).await;
    service(&env, "api", &[api.addr]).await;
    service(&env, "wild", &[wild.addr]).await;
    ingress(
        &env,
        json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "shop"},
            "spec": {"ingressClassName": class, "rules": [
                {"host": "shop.example.com", "http": {"paths": [
                    path("/", "Prefix", "web"),
                    path("/api", "Prefix", "api"),
                    path("/api/v1/exact", "Exact", "web"),
                    path("/missing", "Prefix", "nope"),
                ]}},
                {"host": "*.example.com", "http": {"paths": [path("/", "Prefix", "wild")]}},
            ]},
        }),
    )
    .await;

    until_routed(
        &proxy,
        "shop.example.com",
        "/api/orders",
        200,
        "api /api/orders",
    )
    .await;
    // The longest match wins; Prefix matches whole path elements; Exact only itself.
    assert_eq!(
        get(&proxy, "shop.example.com", "/api/v1/exact")
            .await
            .1
            .split(' ')
            .nth(1),
        Some("/api/v1/exact")
    );
    assert!(
        get(&proxy, "shop.example.com", "/api/v1/exact")
            .await
            .1
            .starts_with("web-")
    );
    assert!(
        get(&proxy, "shop.example.com", "/api/v1/exact/more")
            .await
            .1
            .starts_with("api ")
    );
    assert!(
        get(&proxy, "shop.example.com", "/apis")
            .await
            .1
            .starts_with("web-")
    );
    assert!(
        get(&proxy, "SHOP.example.com:80", "/api")
            .await
            .1
            .starts_with("api ")
    );
    // A wildcard host matches one label; other hosts have no rule and no default backend.
    assert!(
        get(&proxy, "cart.example.com", "/x")
            .await
            .1
            .starts_with("wild ")
    );
    assert_eq!(get(&proxy, "a.cart.example.com", "/x").await.0, 404);
    assert_eq!(get(&proxy, "other.org", "/").await.0, 404);
    // Two endpoints take requests in turn.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let (status, body) = get(&proxy, "shop.example.com", "/").await;
        assert_eq!(status, 200);
        seen.insert(body.split(' ').next().unwrap_or_default().to_owned());
    }
    assert_eq!(seen, ["web-a", "web-b"].map(str::to_owned).into());

    // A backend Service that does not exist: its path answers 503, and the Ingress gets a
    // Warning Event naming it.
    let missing = get(&proxy, "shop.example.com", "/missing").await;
    assert_eq!(missing.0, 503, "{missing:?}");
    eventually("a Warning Event about the missing Service", || async {
        let events = env.api::<k8s_openapi::api::events::v1::Event>();
        let list = events.list(&Default::default()).await.ok()?;
        list.items.into_iter().find(|e| {
            e.reason.as_deref() == Some("ServiceNotFound")
                && e.note
                    .as_deref()
                    .is_some_and(|n| n.contains("default/nope") || n.contains("/nope not found"))
        })
    })
    .await;
    eventually("status.loadBalancer names the proxy", || async {
        let shop = env.api::<Ingress>().get("shop").await.ok()?;
        let ip = shop.status?.load_balancer?.ingress?.first()?.ip.clone()?;
        (ip == "127.0.0.1").then_some(())
    })
    .await;
    finish(env, &class).await;
}

#[tokio::test]
async fn the_default_class_a_default_backend_and_tls_by_sni_are_served() {
    let (env, proxy, class) = start(true).await;
    let site = backend("site", Duration::ZERO).await;
    let fallback = backend("fallback", Duration::ZERO).await;
    service(&env, "site", &[site.addr]).await;
    service(&env, "fallback", &[fallback.addr]).await;
    let cert_key = rcgen::KeyPair::generate().expect("a key");
    let cert = rcgen::CertificateParams::new(vec!["secure.example.com".to_owned()])
        .expect("certificate parameters")
        .self_signed(&cert_key)
        .expect("a certificate");
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("secure-tls".into()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            ("tls.crt".to_owned(), ByteString(cert.pem().into_bytes())),
            (
                "tls.key".to_owned(),
                ByteString(cert_key.serialize_pem().into_bytes()),
            ),
        ])),
        ..Secret::default()
    };
    env.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("create the Secret");
    // No class named: ours is the default class.
    ingress(&env, json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "secure"},
        "spec": {
            "defaultBackend": {"service": {"name": "fallback", "port": {"number": 80}}},
            "tls": [{"hosts": ["secure.example.com"], "secretName": "secure-tls"}],
            "rules": [{"host": "secure.example.com", "http": {"paths": [path("/", "Prefix", "site")]}}],
        },
    }))
    .await;
    // Another controller's class: never served.
    ingress(&env, json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "elsewhere"},
        "spec": {"ingressClassName": "someone-else",
            "rules": [{"host": "elsewhere.example.com", "http": {"paths": [path("/", "Prefix", "site")]}}]},
    }))
    .await;

    until_routed(&proxy, "secure.example.com", "/", 200, "site /").await;
    let (status, body) = get_tls(&proxy, "secure.example.com", "/page", &cert.pem())
        .await
        .expect("a TLS handshake for a host with a certificate");
    assert_eq!((status, body.as_str()), (200, "site /page"));
    let refused = get_tls(&proxy, "unknown.example.com", "/", &cert.pem()).await;
    assert!(
        refused.is_err(),
        "no certificate for that name: {refused:?}"
    );
    // Requests no rule matches reach the default backend, the other class's host included.
    assert!(
        get(&proxy, "elsewhere.example.com", "/")
            .await
            .1
            .starts_with("fallback ")
    );
    // Once ours has its status, the other class's Ingress still has none.
    eventually("status.loadBalancer on the served Ingress", || async {
        let secure = env.api::<Ingress>().get("secure").await.ok()?;
        secure.status?.load_balancer?.ingress?.first().map(drop)
    })
    .await;
    let elsewhere = env
        .api::<Ingress>()
        .get("elsewhere")
        .await
        .expect("the Ingress");
    let lb = elsewhere
        .status
        .and_then(|s| s.load_balancer)
        .and_then(|l| l.ingress);
    assert!(
        lb.unwrap_or_default().is_empty(),
        "not ours: no status written"
    );
    finish(env, &class).await;
}

#[tokio::test]
async fn changes_apply_live_without_dropping_a_request_in_flight_and_dead_endpoints_are_skipped() {
    let (env, proxy, class) = start(false).await;
    let slow = backend("slow", Duration::from_millis(1500)).await;
    let fast = backend("fast", Duration::ZERO).await;
    service(&env, "slow", &[slow.addr]).await;
    service(&env, "fast", &[fast.addr]).await;
    ingress(&env, json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "live"},
        "spec": {"ingressClassName": class,
            "rules": [{"host": "live.example.com", "http": {"paths": [path("/", "Prefix", "slow")]}}]},
    }))
    .await;
    until_routed(&proxy, "live.example.com", "/warm", 200, "slow ").await;

    // A request in flight on the old route finishes there while the route moves.
    let in_flight = tokio::spawn(async move { get(&proxy, "live.example.com", "/long").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let patch = json!({"spec": {"rules": [{"host": "live.example.com",
        "http": {"paths": [path("/", "Prefix", "fast")]}}]}});
    env.api::<Ingress>()
        .patch("live", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .expect("move the route");
    until_routed(&proxy, "live.example.com", "/now", 200, "fast /now").await;
    assert_eq!(
        in_flight.await.expect("the request"),
        (200, "slow /long".to_owned())
    );

    // An endpoint that refuses connections and one not ready (the slow backend) in place of
    // the live one: nothing reachable, 502.
    let dead = {
        let listener = TcpListener::bind((host_ip(), 0)).await.expect("bind");
        listener.local_addr().expect("address")
    };
    publish(&env, "fast", "fast-dead", dead, true).await;
    publish(&env, "fast", "fast-unready", slow.addr, false).await;
    env.api::<EndpointSlice>()
        .delete("fast-0", &DeleteParams::default())
        .await
        .expect("remove the live endpoint");
    until_routed(&proxy, "live.example.com", "/", 502, "").await;
    // The live endpoint back beside the dead one: every request reaches it, half of them after
    // the dead one refused (round-robin takes each in turn).
    publish(&env, "fast", "fast-1", fast.addr, true).await;
    until_routed(&proxy, "live.example.com", "/", 200, "fast /").await;
    for _ in 0..6 {
        assert_eq!(
            get(&proxy, "live.example.com", "/").await,
            (200, "fast /".to_owned())
        );
    }
    // The Ingress deleted: its host is gone.
    env.api::<Ingress>()
        .delete("live", &DeleteParams::default())
        .await
        .expect("delete the Ingress");
    until_routed(&proxy, "live.example.com", "/", 404, "").await;
    finish(env, &class).await;
}

//! The Ingress reverse proxy: HTTP and HTTPS listeners that route each request through the
//! current [`RouteTable`] and forward it over pooled HTTP/1.1 connections to one of the chosen
//! backend's endpoints, streaming bodies both ways.
//!
//! The table is held in an [`ArcSwap`]: [`ProxyHandle::update`] installs a new one for requests
//! and TLS handshakes that start afterwards, while requests in flight keep the backend they
//! were routed to, and no connection is closed. Endpoints are tried round-robin; an endpoint
//! that refuses the connection or does not accept it within [`CONNECT_TIMEOUT`] is skipped for
//! the next, each at most once per request — the request body is not read until a connection
//! is established, so it can be handed to the next attempt.
//!
//! Status codes: no rule and no default backend → 404; a backend without ready endpoints (or
//! not resolvable, see [`super::routes`]) → 503, as ingress-nginx; no endpoint reachable, or
//! the backend failing after the connection was made → 502.
//!
//! Left out compared with ingress-nginx: WebSocket and other protocol upgrades, HTTP/2 or TLS
//! to backends, the HTTP→HTTPS redirect for TLS hosts, read/send timeouts and retries after
//! the request was sent (`proxy-next-upstream`), body-size limits, trusting forwarded headers
//! from a load balancer in front (incoming `X-Forwarded-*` are replaced, not appended to),
//! `X-Request-ID`, access logs and metrics.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::routes::RouteTable;
use super::tls::{self, SniResolver};

/// How long an endpoint gets to accept a connection before the next one is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long requests in flight get to finish after [`ProxyHandle::shutdown`].
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long an idle pooled backend connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Response bodies: the backend's, streamed, or a short one of our own.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why not.
        source: std::io::Error,
    },
    /// rustls refused the server configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// The reverse proxy; [`Proxy::start`] runs it.
#[derive(Debug)]
pub struct Proxy;

impl Proxy {
    /// Binds the HTTP listener (and the HTTPS one, if asked for; port 0 picks a free port) and
    /// serves `table` on them until [`ProxyHandle::shutdown`] or the handle is dropped.
    pub async fn start(
        http_addr: SocketAddr,
        https_addr: Option<SocketAddr>,
        table: Arc<RouteTable>,
    ) -> Result<ProxyHandle, ProxyError> {
        let table = Arc::new(ArcSwap::new(table));
        let forwarder = Arc::new(Forwarder::new(table.clone()));
        let (stop, _) = watch::channel(false);
        let (http, bound_http) = bind(http_addr).await?;
        let mut listeners = vec![tokio::spawn(accept_loop(
            http,
            None,
            forwarder.clone(),
            stop.subscribe(),
        ))];
        let mut bound_https = None;
        if let Some(addr) = https_addr {
            let config = tls::server_config(Arc::new(SniResolver::new(table.clone())))?;
            let (https, bound) = bind(addr).await?;
            let acceptor = TlsAcceptor::from(Arc::new(config));
            listeners.push(tokio::spawn(accept_loop(
                https,
                Some(acceptor),
                forwarder,
                stop.subscribe(),
            )));
            bound_https = Some(bound);
        }
        tracing::info!(http = %bound_http, https = ?bound_https, "ingress proxy listening");
        Ok(ProxyHandle {
            http_addr: bound_http,
            https_addr: bound_https,
            table,
            stop,
            listeners,
        })
    }
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), ProxyError> {
    let bind_error = |source| ProxyError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener, bound))
}

/// Controls a running proxy. Dropping it stops the listeners (without waiting).
#[derive(Debug)]
pub struct ProxyHandle {
    http_addr: SocketAddr,
    https_addr: Option<SocketAddr>,
    table: Arc<ArcSwap<RouteTable>>,
    stop: watch::Sender<bool>,
    listeners: Vec<JoinHandle<()>>,
}

impl ProxyHandle {
    /// The address the HTTP listener is bound to (the real port when 0 was asked for).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The address the HTTPS listener is bound to, if there is one.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// Installs `table` for requests and handshakes from now on; requests in flight finish
    /// with the backend they were routed to.
    pub fn update(&self, table: Arc<RouteTable>) {
        self.table.store(table);
    }

    /// The table in force.
    pub fn table(&self) -> Arc<RouteTable> {
        self.table.load_full()
    }

    /// Stops accepting connections, lets requests in flight finish (for up to 10 s), and
    /// returns when the listeners are done.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        for listener in std::mem::take(&mut self.listeners) {
            if let Err(err) = listener.await {
                tracing::warn!(%err, "ingress proxy listener ended abnormally");
            }
        }
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// Accepts connections on `listener` (TLS if `tls`) until `stop` turns true, then waits for
/// the connections' requests in flight.
async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    forwarder: Arc<Forwarder>,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            () = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // e.g. out of file descriptors: wait rather than spin
                    tracing::warn!(%err, "ingress proxy: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (forwarder, tls, watcher) = (forwarder.clone(), tls.clone(), graceful.watcher());
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let scheme = if tls.is_some() { "https" } else { "http" };
            let service = service_fn(move |request| {
                let forwarder = forwarder.clone();
                async move { Ok::<_, Infallible>(forwarder.handle(request, peer, scheme).await) }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let served = match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(tcp), service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(acceptor) => {
                    let Some(stream) = handshake(&acceptor, tcp, peer).await else {
                        return;
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(err) = served {
                tracing::debug!(%peer, %err, "ingress proxy: connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("ingress proxy: requests still in flight at shutdown were cut off");
    }
}

/// Resolves once the proxy is told to stop (or its handle is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: as good as stopped.
    let _ = stop.wait_for(|stopped| *stopped).await.map(|_| ());
}

async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(err)) => {
            tracing::debug!(%peer, %err, "ingress proxy: TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "ingress proxy: TLS handshake timed out");
            None
        }
    }
}

/// Routes requests through the current table and forwards them.
struct Forwarder {
    table: Arc<ArcSwap<RouteTable>>,
    client: Client<HttpConnector, ReplayableBody>,
}

impl Forwarder {
    fn new(table: Arc<ArcSwap<RouteTable>>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        Self { table, client }
    }

    async fn handle(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
        scheme: &'static str,
    ) -> Response<ProxyBody> {
        // The table as of now; a concurrent update affects only later requests.
        let table = self.table.load_full();
        let host = request_host(&request).unwrap_or_default();
        let Some(backend) = table.route(&host, request.uri().path()).cloned() else {
            return reply(
                StatusCode::NOT_FOUND,
                "no Ingress rule matches this host and path",
            );
        };
        drop(table);
        if backend.endpoints().is_empty() {
            let why = format!("{} has no ready endpoints", backend.service());
            return reply(StatusCode::SERVICE_UNAVAILABLE, &why);
        }
        let (parts, body) = request.into_parts();
        let outgoing = Outgoing::new(parts, &host, peer, scheme);
        let body = Arc::new(Mutex::new(Some(body)));
        for endpoint in backend.attempt_order() {
            let attempt = match outgoing.request(endpoint, ReplayableBody::new(&body)) {
                Ok(attempt) => attempt,
                Err(err) => return reply(StatusCode::BAD_REQUEST, &err.to_string()),
            };
            match self.client.request(attempt).await {
                Ok(response) => return from_backend(response),
                Err(err) if err.is_connect() => {
                    let err = error_chain(&err);
                    tracing::debug!(%endpoint, backend = backend.service(), %err, "endpoint unreachable, trying the next");
                }
                Err(err) => {
                    let err = error_chain(&err);
                    tracing::warn!(%endpoint, backend = backend.service(), %err, "backend request failed");
                    let why = format!("{} failed to answer", backend.service());
                    return reply(StatusCode::BAD_GATEWAY, &why);
                }
            }
        }
        tracing::warn!(backend = backend.service(), "no endpoint reachable");
        let why = format!("no endpoint of {} could be reached", backend.service());
        reply(StatusCode::BAD_GATEWAY, &why)
    }
}

/// The host a request is for: the URI authority (HTTP/2, absolute-form), else `Host`.
fn request_host<B>(request: &Request<B>) -> Option<String> {
    if let Some(authority) = request.uri().authority() {
        return Some(match authority.port_u16() {
            Some(port) => format!("{}:{port}", authority.host()),
            None => authority.host().to_owned(),
        });
    }
    let host = request.headers().get(header::HOST)?;
    host.to_str().ok().map(str::to_owned)
}

/// What is sent to the backend, less the body and the endpoint: built once per request and
/// turned into a request for each endpoint tried.
struct Outgoing {
    method: Method,
    path_and_query: String,
    headers: HeaderMap,
}

impl Outgoing {
    fn new(parts: http::request::Parts, host: &str, peer: SocketAddr, scheme: &str) -> Self {
        let mut headers = parts.headers;
        remove_hop_by_hop(&mut headers);
        let ip = peer.ip().to_string();
        let mut set = |name: HeaderName, value: &str| {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        };
        // Host stays as the client sent it (HTTP/2 clients send it as the authority).
        if !host.is_empty() {
            set(header::HOST, host);
            set(HeaderName::from_static("x-forwarded-host"), host);
        }
        set(HeaderName::from_static("x-forwarded-for"), &ip);
        set(HeaderName::from_static("x-real-ip"), &ip);
        set(HeaderName::from_static("x-forwarded-proto"), scheme);
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_owned();
        Self {
            method: parts.method,
            path_and_query,
            headers,
        }
    }

    fn request(
        &self,
        endpoint: SocketAddr,
        body: ReplayableBody,
    ) -> Result<Request<ReplayableBody>, http::Error> {
        let uri = Uri::builder()
            .scheme("http")
            .authority(endpoint.to_string())
            .path_and_query(self.path_and_query.as_str())
            .build()?;
        let mut request = Request::builder()
            .method(self.method.clone())
            .uri(uri)
            .version(Version::HTTP_11)
            .body(body)?;
        *request.headers_mut() = self.headers.clone();
        Ok(request)
    }
}

/// The backend's response, minus hop-by-hop headers, body streamed.
fn from_backend(response: Response<Incoming>) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    remove_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, body.boxed())
}

/// A short plain-text response of the proxy's own.
fn reply(status: StatusCode, why: &str) -> Response<ProxyBody> {
    let reason = status.canonical_reason().unwrap_or_default();
    let body = format!("{} {reason}: {why}\n", status.as_u16());
    let mut response = Response::new(Full::new(Bytes::from(body)).map_err(|n| match n {}).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Removes the headers that describe one connection rather than the message (RFC 9110 §7.6.1),
/// including those the `Connection` header names.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

fn error_chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The client's request body, offered to each connection attempt in turn. An attempt that
/// fails to connect never polls its body, so the body is still in the shared slot for the
/// next attempt; the first poll takes it out.
struct ReplayableBody {
    slot: Arc<Mutex<Option<Incoming>>>,
    taken: Option<Incoming>,
    /// The body's end-of-stream flag and size when the attempt was made, so that hyper frames
    /// the request (no body, Content-Length, chunked) as the client did.
    end_stream: bool,
    size: SizeHint,
}

impl ReplayableBody {
    fn new(slot: &Arc<Mutex<Option<Incoming>>>) -> Self {
        let guard = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (end_stream, size) = match guard.as_ref() {
            Some(body) => (body.is_end_stream(), body.size_hint()),
            None => (true, SizeHint::with_exact(0)),
        };
        drop(guard);
        Self {
            slot: slot.clone(),
            taken: None,
            end_stream,
            size,
        }
    }
}

impl Body for ReplayableBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.taken.is_none() {
            let mut slot = this.slot.lock().unwrap_or_else(|p| p.into_inner());
            this.taken = slot.take();
        }
        match this.taken.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            None => Poll::Ready(Some(Err(
                "request body already sent to another endpoint".into()
            ))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.taken
            .as_ref()
            .map_or(self.end_stream, Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.taken.as_ref().map_or(self.size, Body::size_hint)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use http_body_util::Empty;
    use hyper_util::client::legacy::Client as TestClient;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::net::TcpStream;

    use super::super::routes::fixtures::*;
    use super::*;

    const QUICK: Duration = Duration::ZERO;

    /// A backend answering `id`, the request's host, path and forwarding headers, and the
    /// length of the body it received, after `delay`.
    async fn serve_backend(id: &'static str, delay: Duration) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let service = service_fn(move |request: Request<Incoming>| async move {
                    tokio::time::sleep(delay).await;
                    let header = |name: &str| {
                        let value = request.headers().get(name).and_then(|v| v.to_str().ok());
                        value.unwrap_or("-").to_owned()
                    };
                    let text = format!(
                        "{id} host={} path={} xff={} xfh={} xfp={}",
                        header("host"),
                        request.uri(),
                        header("x-forwarded-for"),
                        header("x-forwarded-host"),
                        header("x-forwarded-proto"),
                    );
                    let body = request.into_body().collect().await?.to_bytes();
                    let text = format!("{text} body={}", String::from_utf8_lossy(&body));
                    Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(text))))
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service);
                tokio::spawn(conn);
            }
        });
        addr
    }

    /// An address nothing listens on: bound, then released.
    async fn refused() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    }

    fn local() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    async fn send(
        proxy: SocketAddr,
        method: Method,
        host: &str,
        path: &str,
        body: &str,
    ) -> (StatusCode, String) {
        let client = TestClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let request = Request::builder()
            .method(method)
            .uri(format!("http://{proxy}{path}"))
            .header(header::HOST, host)
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let response = client.request(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn get(proxy: SocketAddr, host: &str, path: &str) -> (StatusCode, String) {
        send(proxy, Method::GET, host, path, "").await
    }

    /// The id a backend answered with, or the status when not 200.
    async fn answered(proxy: SocketAddr, host: &str, path: &str) -> String {
        let (status, body) = get(proxy, host, path).await;
        if status == StatusCode::OK {
            body.split(' ').next().unwrap().to_owned()
        } else {
            status.as_u16().to_string()
        }
    }

    fn table(world: World) -> Arc<RouteTable> {
        let (table, problems) = world.build();
        assert_eq!(problems, [], "test tables are meant to be clean");
        Arc::new(table)
    }

    #[tokio::test]
    async fn routes_by_host_path_wildcard_and_longest_match() {
        let (a, b, c) = (
            serve_backend("A", QUICK).await,
            serve_backend("B", QUICK).await,
            serve_backend("C", QUICK).await,
        );
        let world = World::new()
            .backend("a", &[a])
            .backend("b", &[b])
            .backend("c", &[c])
            .ingress(ingress("site").rule(
                Some("a.example.com"),
                &[
                    ("/", "Prefix", "a"),
                    ("/api", "Prefix", "b"),
                    ("/api/v2", "Prefix", "c"),
                    ("/exact", "Exact", "c"),
                ],
            ))
            .ingress(ingress("wild").rule(Some("*.w.example.com"), &[("/", "Prefix", "b")]));
        let proxy = Proxy::start(local(), None, table(world)).await.unwrap();
        let cases = [
            ("a.example.com", "/", "A"),
            ("A.Example.com:80", "/apix", "A"),
            ("a.example.com", "/api/x?q=1", "B"),
            ("a.example.com", "/api/v2/y", "C"),
            ("a.example.com", "/exact", "C"),
            ("a.example.com", "/exact/more", "A"),
            ("x.w.example.com", "/", "B"),
            ("y.x.w.example.com", "/", "404"),
            ("unknown.com", "/", "404"),
        ];
        for (host, path, expected) in cases {
            assert_eq!(
                answered(proxy.http_addr(), host, path).await,
                expected,
                "{host}{path}"
            );
        }
        let (status, body) = get(proxy.http_addr(), "a.example.com:80", "/api/x?q=1").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            "B host=a.example.com:80 path=/api/x?q=1 xff=127.0.0.1 xfh=a.example.com:80 xfp=http body="
        );
        let (status, body) = get(proxy.http_addr(), "unknown.com", "/").await;
        assert_eq!(
            (status, body.as_str()),
            (
                StatusCode::NOT_FOUND,
                "404 Not Found: no Ingress rule matches this host and path\n"
            )
        );
        proxy.shutdown().await;
    }

    #[tokio::test]
    async fn unmatched_requests_go_to_the_default_backend() {
        let (a, b) = (
            serve_backend("A", QUICK).await,
            serve_backend("B", QUICK).await,
        );
        let world = World::new()
            .backend("a", &[a])
            .backend("b", &[b])
            .ingress(ingress("site").rule(Some("a.example.com"), &[("/app", "Prefix", "a")]))
            .ingress(ingress("catch-all").default_backend(backend("b")));
        let proxy = Proxy::start(local(), None, table(world)).await.unwrap();
        assert_eq!(
            answered(proxy.http_addr(), "a.example.com", "/app").await,
            "A"
        );
        assert_eq!(
            answered(proxy.http_addr(), "a.example.com", "/other").await,
            "B"
        );
        assert_eq!(answered(proxy.http_addr(), "elsewhere.org", "/").await, "B");
    }

    #[tokio::test]
    async fn requests_alternate_between_endpoints() {
        let (a, b) = (
            serve_backend("A", QUICK).await,
            serve_backend("B", QUICK).await,
        );
        let world = World::new()
            .backend("web", &[a, b])
            .ingress(ingress("site").rule(None, &[("/", "Prefix", "web")]));
        let proxy = Proxy::start(local(), None, table(world)).await.unwrap();
        let mut ids = Vec::new();
        for _ in 0..4 {
            ids.push(answered(proxy.http_addr(), "any", "/").await);
        }
        assert!(
            ids == ["A", "B", "A", "B"] || ids == ["B", "A", "B", "A"],
            "{ids:?}"
        );
    }

    #[tokio::test]
    async fn a_refusing_endpoint_is_skipped_and_the_body_still_arrives() {
        let (alive, dead) = (serve_backend("A", QUICK).await, refused().await);
        let world = World::new()
            .backend("web", &[alive, dead])
            .ingress(ingress("site").rule(None, &[("/", "Prefix", "web")]));
        let proxy = Proxy::start(local(), None, table(world)).await.unwrap();
        for i in 0..6 {
            let payload = format!("payload-{i}");
            let (status, body) = send(proxy.http_addr(), Method::POST, "any", "/", &payload).await;
            assert_eq!(status, StatusCode::OK, "request {i}: {body}");
            assert!(
                body.starts_with("A ") && body.ends_with(&format!("body={payload}")),
                "{body}"
            );
        }
    }

    #[tokio::test]
    async fn unreachable_or_missing_endpoints_are_gateway_errors() {
        let (dead1, dead2) = (refused().await, refused().await);
        let mut world =
            World::new()
                .backend("dead", &[dead1, dead2])
                .ingress(ingress("site").rule(
                    None,
                    &[("/", "Prefix", "dead"), ("/idle", "Prefix", "idle")],
                ));
        world.services.push(service("idle"));
        let (table, problems) = world.build();
        assert_eq!(problems.len(), 1, "idle has no endpoints: {problems:?}");
        let proxy = Proxy::start(local(), None, Arc::new(table)).await.unwrap();
        let started = Instant::now();
        let (status, body) = get(proxy.http_addr(), "any", "/").await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(
            body,
            "502 Bad Gateway: no endpoint of default/dead:80 could be reached\n"
        );
        assert!(
            started.elapsed() < CONNECT_TIMEOUT,
            "refusals are immediate"
        );
        let (status, body) = get(proxy.http_addr(), "any", "/idle").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.contains("default/idle:80 has no ready endpoints"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn updates_reroute_new_requests_while_in_flight_ones_complete() {
        let (slow, fast) = (
            serve_backend("SLOW", Duration::from_millis(500)).await,
            serve_backend("FAST", QUICK).await,
        );
        let routed_to = |service: &str| {
            World::new()
                .backend("slow", &[slow])
                .backend("fast", &[fast])
                .ingress(ingress("site").rule(Some("app.com"), &[("/", "Prefix", service)]))
        };
        let proxy = Proxy::start(local(), None, table(routed_to("slow")))
            .await
            .unwrap();
        let addr = proxy.http_addr();
        let in_flight = tokio::spawn(async move { answered(addr, "app.com", "/").await });
        tokio::time::sleep(Duration::from_millis(150)).await;
        proxy.update(table(routed_to("fast")));
        assert_eq!(answered(addr, "app.com", "/").await, "FAST");
        assert_eq!(in_flight.await.unwrap(), "SLOW");

        // One kept-alive client connection sees each table in turn.
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (mut conn, driver) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(driver);
        let mut ask = async || {
            let request = Request::get("/")
                .header(header::HOST, "app.com")
                .body(Empty::<Bytes>::new())
                .unwrap();
            let body = conn
                .send_request(request)
                .await
                .unwrap()
                .into_body()
                .collect()
                .await
                .unwrap();
            String::from_utf8(body.to_bytes().to_vec()).unwrap()
        };
        assert!(ask().await.starts_with("FAST "));
        proxy.update(table(routed_to("slow")));
        assert!(ask().await.starts_with("SLOW "));
        proxy.shutdown().await;
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "shut down proxies accept nothing"
        );
    }

    /// A test CA issuing leaf certificates.
    struct TestCa {
        issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
        der: CertificateDer<'static>,
    }

    impl TestCa {
        fn new() -> Self {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "ingress test CA");
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.key_usages = vec![
                rcgen::KeyUsagePurpose::KeyCertSign,
                rcgen::KeyUsagePurpose::DigitalSignature,
            ];
            let der = params.self_signed(&key).unwrap().der().clone();
            Self {
                issuer: rcgen::Issuer::new(params, key),
                der,
            }
        }

        /// A leaf certificate for `names`: (cert PEM, key PEM, cert DER).
        fn leaf(&self, names: &[&str]) -> (String, String, CertificateDer<'static>) {
            let key = rcgen::KeyPair::generate().unwrap();
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            let params = rcgen::CertificateParams::new(names).unwrap();
            let cert = params.signed_by(&key, &self.issuer).unwrap();
            (cert.pem(), key.serialize_pem(), cert.der().clone())
        }
    }

    /// Opens a TLS connection for `sni`, trusting only `ca`; the stream and the certificate
    /// the proxy presented.
    async fn connect_tls(
        addr: SocketAddr,
        ca: &CertificateDer<'static>,
        sni: &str,
        alpn: &[&[u8]],
    ) -> Result<
        (
            tokio_rustls::client::TlsStream<TcpStream>,
            CertificateDer<'static>,
        ),
        BoxError,
    > {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.clone())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(addr).await?;
        let stream = connector
            .connect(ServerName::try_from(sni.to_owned())?, tcp)
            .await?;
        let presented = stream
            .get_ref()
            .1
            .peer_certificates()
            .ok_or("no certificate")?[0]
            .clone();
        Ok((stream, presented))
    }

    async fn https_get(
        addr: SocketAddr,
        ca: &CertificateDer<'static>,
        sni: &str,
    ) -> Result<(String, CertificateDer<'static>), BoxError> {
        let (stream, presented) = connect_tls(addr, ca, sni, &[]).await?;
        let (mut conn, driver) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(driver);
        let request = Request::get("/secure")
            .header(header::HOST, sni)
            .body(Empty::<Bytes>::new())?;
        let body = conn
            .send_request(request)
            .await?
            .into_body()
            .collect()
            .await?;
        Ok((String::from_utf8(body.to_bytes().to_vec())?, presented))
    }

    fn tls_world(
        a: SocketAddr,
        b: SocketAddr,
        a_pair: (&str, &str),
        w_pair: (&str, &str),
    ) -> World {
        let mut world = World::new().backend("a", &[a]).backend("b", &[b]).ingress(
            ingress("secure")
                .rule(Some("a.example.com"), &[("/", "Prefix", "a")])
                .rule(Some("*.w.example.com"), &[("/", "Prefix", "b")])
                .tls(&["a.example.com"], "a-tls")
                .tls(&["*.w.example.com"], "w-tls"),
        );
        world.secrets = vec![
            tls_secret("a-tls", a_pair.0, a_pair.1),
            tls_secret("w-tls", w_pair.0, w_pair.1),
        ];
        world
    }

    #[tokio::test]
    async fn https_serves_each_host_its_certificate_by_sni() {
        let (a, b) = (
            serve_backend("A", QUICK).await,
            serve_backend("B", QUICK).await,
        );
        let ca = TestCa::new();
        let (a_cert, a_key, a_der) = ca.leaf(&["a.example.com"]);
        let (w_cert, w_key, w_der) = ca.leaf(&["*.w.example.com"]);
        let world = tls_world(a, b, (&a_cert, &a_key), (&w_cert, &w_key));
        let proxy = Proxy::start(local(), Some(local()), table(world))
            .await
            .unwrap();
        let https = proxy.https_addr().unwrap();

        let (body, presented) = https_get(https, &ca.der, "a.example.com").await.unwrap();
        assert_eq!(presented, a_der);
        assert!(
            body.starts_with("A host=a.example.com path=/secure xff=127.0.0.1"),
            "{body}"
        );
        assert!(body.contains("xfp=https"), "{body}");
        let (body, presented) = https_get(https, &ca.der, "x.w.example.com").await.unwrap();
        assert_eq!(presented, w_der);
        assert!(body.starts_with("B host=x.w.example.com"), "{body}");
        assert!(
            https_get(https, &ca.der, "other.example.com")
                .await
                .is_err(),
            "no certificate, no handshake"
        );

        // HTTP/2 by ALPN: the host comes as the authority and still routes.
        let (stream, _) = connect_tls(https, &ca.der, "a.example.com", &[b"h2"])
            .await
            .unwrap();
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut conn, driver) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(driver);
        let request = Request::get("https://a.example.com/h2")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let body = conn
            .send_request(request)
            .await
            .unwrap()
            .into_body()
            .collect()
            .await
            .unwrap();
        let body = String::from_utf8(body.to_bytes().to_vec()).unwrap();
        assert!(body.starts_with("A host=a.example.com path=/h2"), "{body}");

        // A renewed certificate is served from the next handshake on.
        let (renewed_cert, renewed_key, renewed_der) = ca.leaf(&["a.example.com"]);
        proxy.update(table(tls_world(
            a,
            b,
            (&renewed_cert, &renewed_key),
            (&w_cert, &w_key),
        )));
        let (_, presented) = https_get(https, &ca.der, "a.example.com").await.unwrap();
        assert_eq!(presented, renewed_der);
    }

    #[test]
    fn hop_by_hop_headers_are_not_forwarded() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("accept", "text/html"),
        ] {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        remove_hop_by_hop(&mut headers);
        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["accept"]);
    }
}

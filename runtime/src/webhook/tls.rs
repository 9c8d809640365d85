//! The webhook server's TLS: the serving certificate read from a directory (`tls.crt`,
//! `tls.key`, as cert-manager and kubebuilder lay it out) and read again whenever those files
//! change, so a rotated certificate is served without a restart; and the HTTPS accept loop.
//!
//! Like controller-runtime's certwatcher, a change is noticed by polling (every second here);
//! files that do not parse are logged and the previous certificate stays in use.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use parking_lot::{Mutex, RwLock};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::WebhookError;

/// The certificate file in the certificate directory.
pub const CERT_FILE: &str = "tls.crt";
/// The private key file in the certificate directory.
pub const KEY_FILE: &str = "tls.key";

/// How often the certificate files are checked for changes.
const POLL: Duration = Duration::from_secs(1);

/// The serving certificate of a directory, kept current.
#[derive(Debug)]
pub(crate) struct CertWatcher {
    dir: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// The file contents the current certificate was made from.
    loaded: Mutex<(Vec<u8>, Vec<u8>)>,
}

impl CertWatcher {
    /// Reads the certificate and key of `dir`.
    pub(crate) fn load(dir: &Path) -> Result<Arc<Self>, WebhookError> {
        let (cert, key) = read_pair(dir)?;
        let certified = certified_key(dir, &cert, &key)?;
        Ok(Arc::new(Self {
            dir: dir.to_owned(),
            current: RwLock::new(Arc::new(certified)),
            loaded: Mutex::new((cert, key)),
        }))
    }

    /// Reads the files again; takes the new certificate when they changed and parse.
    fn reload(&self) {
        let Ok((cert, key)) = read_pair(&self.dir) else {
            return; // mid-rotation (one file written, the other not yet) or removed: keep serving
        };
        let mut loaded = self.loaded.lock();
        if *loaded == (cert.clone(), key.clone()) {
            return;
        }
        match certified_key(&self.dir, &cert, &key) {
            Ok(certified) => {
                *self.current.write() = Arc::new(certified);
                *loaded = (cert, key);
                tracing::info!(dir = %self.dir.display(), "webhook serving certificate reloaded");
            }
            Err(err) => tracing::warn!(%err, "keeping the previous webhook serving certificate"),
        }
    }

    /// Polls the files until `stop` fires.
    pub(crate) async fn watch(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                _ = tick.tick() => self.reload(),
                () = stop.cancelled() => return,
            }
        }
    }
}

impl ResolvesServerCert for CertWatcher {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }
}

fn read_pair(dir: &Path) -> Result<(Vec<u8>, Vec<u8>), WebhookError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|source| WebhookError::CertFile { path, source })
    };
    Ok((read(CERT_FILE)?, read(KEY_FILE)?))
}

fn certified_key(dir: &Path, cert: &[u8], key: &[u8]) -> Result<CertifiedKey, WebhookError> {
    let bad = |what: String| WebhookError::BadCertificate {
        dir: dir.to_owned(),
        what,
    };
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("{CERT_FILE} is not PEM certificates: {e}")))?;
    if chain.is_empty() {
        return Err(bad(format!("{CERT_FILE} holds no certificate")));
    }
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| bad(format!("{KEY_FILE} is not a PEM private key: {e}")))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| bad(format!("{KEY_FILE}: unsupported key: {e}")))?;
    let certified = CertifiedKey::new(chain, signer);
    certified
        .keys_match()
        .map_err(|e| bad(format!("{KEY_FILE} does not belong to {CERT_FILE}: {e}")))?;
    Ok(certified)
}

/// The rustls configuration serving `certs` over HTTP/2 and HTTP/1.1.
pub(crate) fn server_config(certs: Arc<CertWatcher>) -> Result<rustls::ServerConfig, WebhookError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WebhookError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// How long a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` over TLS on `listener` until `stop` fires; then stops accepting and waits
/// for the requests in flight.
pub(crate) async fn serve(
    listener: TcpListener,
    config: rustls::ServerConfig,
    router: Router,
    stop: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let tcp = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(err) => {
                    // e.g. out of file descriptors: wait rather than spin
                    tracing::warn!(%err, "webhook server: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (acceptor, router, watcher) = (acceptor.clone(), router.clone(), graceful.watcher());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => {
                    return tracing::debug!(%err, "webhook server: TLS handshake failed");
                }
                Err(_) => return tracing::debug!("webhook server: TLS handshake timed out"),
            };
            let builder = auto::Builder::new(TokioExecutor::new());
            let conn =
                builder.serve_connection(TokioIo::new(tls), TowerToHyperService::new(router));
            if let Err(err) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%err, "webhook server: connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
}
